"""A live room's recording: follows the room state and drives the SFU's recorder.

The state machine says whether recording is wanted (REC, or auto-start) and
whether the room may be recorded now (never in presenters-only mode); after
every command :meth:`RoomRecording.sync` makes the recorder match: start it,
pause or resume its clock, attach new producers, stop it and hand the files to
the application's :class:`RecordingHooks` (which stores them).

Beside the per-feed WebM files, a recording can hold the stage composed into one picture
(one MP4): ``composer_for`` (the room's broadcast driver's, when the application has one)
gives a :class:`StageComposer` (:class:`webinar.broadcast.room.RecordingOutput`), which
pauses with the recording and adds its file to the recording's files when it stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from webinar.sfu import Producer
from webinar.sfu.recorder import RecordedFile, Recorder, RecordingResult

from ..tasks import stop_tasks
from .state import RecordingStatus, RoomState, Source, Stream

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    recording_id: str
    room_id: str
    directory: Path
    started_at: float


class StageComposer(Protocol):
    """The stage composed into one file of the recording (what attendees saw); the room's
    compositor follows the producers itself."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    async def finish(self) -> RecordedFile | None:
        """Stop; the file to list with the recording's others (None: nothing usable)."""
        ...


class RecordingHooks(Protocol):
    """What the application provides: where files go and what happens to them."""

    def directory_for(self, room_id: str, recording_id: str) -> Path: ...

    async def finished(self, started: RecordingStarted, result: RecordingResult) -> None: ...


def feed_of(stream: Stream) -> str:
    """Tracks of one feed share a WebM file: camera + microphone; screen + its audio."""
    if stream.source in (Source.SCREEN, Source.SCREEN_AUDIO):
        return f"{stream.participant_id}-screen"
    return stream.participant_id


class RoomRecording:
    def __init__(
        self,
        room_id: str,
        state: RoomState,
        hooks: RecordingHooks,
        *,
        producers: Callable[[], dict[str, Producer]],
        name_of: Callable[[str], str],
        composer_for: Callable[[Path, bool], StageComposer | None] | None = None,
    ) -> None:
        """``composer_for(directory, paused)``: the composed MP4 of a recording starting in
        ``directory`` (None, or no ``composer_for``: the per-feed files only)."""
        self.room_id = room_id
        self._composer_for = composer_for
        self._state = state
        self._hooks = hooks
        self._producers = producers
        self._name_of = name_of
        self._recorder: Recorder | None = None
        self._composer: StageComposer | None = None
        self._started: RecordingStarted | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.finished: list[RecordingStarted] = []

    @property
    def active(self) -> Recorder | None:
        return self._recorder

    @property
    def current(self) -> RecordingStarted | None:
        return self._started

    def sync(self) -> None:
        status = self._state.recording
        recorder = self._recorder
        if status is RecordingStatus.OFF:
            if recorder is not None:
                self._stop()
            return
        if recorder is None:
            recording_id = f"rec_{secrets.token_hex(6)}"
            directory = self._hooks.directory_for(self.room_id, recording_id)
            paused = status is RecordingStatus.PAUSED
            recorder = Recorder(directory, paused=paused)
            self._recorder = recorder
            try:
                make = self._composer_for
                self._composer = make(directory, paused) if make is not None else None
            except Exception:  # the per-feed files are recorded all the same
                logger.exception("the composed recording of %s could not start", recording_id)
                self._composer = None
            self._started = RecordingStarted(recording_id, self.room_id, directory, time.time())
            logger.info("recording %s of %s started", recording_id, self.room_id)
        composer = self._composer
        if status is RecordingStatus.PAUSED:
            recorder.pause()
            if composer is not None:
                composer.pause()
        else:
            recorder.resume()
            if composer is not None:
                composer.resume()
        producers = self._producers()
        for stream in self._state.streams.values():
            producer = producers.get(stream.stream_id)
            if producer is None or producer.closed:
                continue
            name = self._name_of(stream.participant_id)
            screen = stream.source in (Source.SCREEN, Source.SCREEN_AUDIO)
            if recorder.is_attached(producer.id):
                continue
            label = name + " (screen)" if screen else name
            recorder.attach(producer, feed=feed_of(stream), label=label)

    def _stop(self) -> None:
        recorder, started, composer = self._recorder, self._started, self._composer
        self._recorder = self._started = self._composer = None
        if recorder is None or started is None:
            return

        async def finish() -> None:
            result = await recorder.stop()
            if composer is not None:
                try:
                    composed = await composer.finish()
                except Exception:
                    logger.exception("the composed recording of %s failed", started.recording_id)
                    composed = None
                if composed is not None:
                    result = dataclasses.replace(
                        result, files=[*result.files, composed], size=result.size + composed.size
                    )
            logger.info(
                "recording %s stopped: %d files, %.1f s",
                started.recording_id,
                len(result.files),
                result.duration,
            )
            self.finished.append(started)
            try:
                await self._hooks.finished(started, result)
            except Exception:
                logger.exception("storing recording %s failed", started.recording_id)

        task = asyncio.get_running_loop().create_task(finish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """The room closes: stop recording and wait until the files are stored."""
        self._stop()
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=30.0)
            await stop_tasks(pending)
