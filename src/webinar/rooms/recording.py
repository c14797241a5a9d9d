"""A live room's recording: follows the room state and drives the SFU's recorder.

The state machine says whether recording is wanted (REC, or auto-start) and
whether the room may be recorded now (never in presenters-only mode); after
every command :meth:`RoomRecording.sync` makes the recorder match: start it,
pause or resume its clock, attach new producers, stop it and hand the files to
the application's :class:`RecordingHooks` (which stores them).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from webinar.sfu import Producer
from webinar.sfu.recorder import Recorder, RecordingResult

from ..tasks import stop_tasks
from .state import RecordingStatus, RoomState, Source, Stream

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    recording_id: str
    room_id: str
    directory: Path
    started_at: float


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
    ) -> None:
        self.room_id = room_id
        self._state = state
        self._hooks = hooks
        self._producers = producers
        self._name_of = name_of
        self._recorder: Recorder | None = None
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
            recorder = Recorder(directory, paused=status is RecordingStatus.PAUSED)
            self._recorder = recorder
            self._started = RecordingStarted(recording_id, self.room_id, directory, time.time())
            logger.info("recording %s of %s started", recording_id, self.room_id)
        if status is RecordingStatus.PAUSED:
            recorder.pause()
        else:
            recorder.resume()
        producers = self._producers()
        for stream in self._state.streams.values():
            producer = producers.get(stream.stream_id)
            if producer is None or producer.closed or recorder.is_attached(producer.id):
                continue
            label = self._name_of(stream.participant_id)
            if stream.source in (Source.SCREEN, Source.SCREEN_AUDIO):
                label += " (screen)"
            recorder.attach(producer, feed=feed_of(stream), label=label)

    def _stop(self) -> None:
        recorder, started = self._recorder, self._started
        self._recorder = self._started = None
        if recorder is None or started is None:
            return

        async def finish() -> None:
            result = await recorder.stop()
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
