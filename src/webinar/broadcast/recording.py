"""The composed recording: the stage as one MP4 beside a recording's per-feed WebM files.

:class:`ComposedRecording` is the rooms' :class:`~webinar.rooms.recording.StageComposer`: a
:class:`~webinar.broadcast.compositor.Compositor` over the recorded room's stage producers,
one :class:`~webinar.broadcast.encoder.Encoder`, and an
:class:`~webinar.broadcast.compositor.Mp4Sink` writing ``composed.mp4`` in the recording's
folder. It pauses with the recording (presenters-only mode is never composed) and, when it
stops, gives the file's entry for the recording's manifest (listed, downloaded, trimmed and
published like the others).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from webinar.sfu.producer import Producer
from webinar.sfu.recorder import RecordedFile, RecordedStream

from .compositor import DEFAULT_DELAY, Compositor, Mp4Sink
from .encoder import Encoder, EncoderSettings

#: The composed file's name in a recording's folder.
COMPOSED_NAME = "composed.mp4"
#: Its ``feed`` in the recording's manifest (the per-feed files have a participant's ID).
COMPOSED_FEED = "composed"


@dataclass(frozen=True, slots=True)
class ComposedSettings:
    """``[recording]`` composed_*: docs/configuration.md."""

    enabled: bool = True
    height: int = 720  # 720 (1280x720) or 1080 (1920x1080)
    fps: int = 30
    preset: str = "veryfast"
    video_kbit: int = 2500

    def encoder(self) -> EncoderSettings:
        width = 1920 if self.height == 1080 else 1280
        return EncoderSettings(
            width=width,
            height=self.height,
            fps=self.fps,
            video_kbit=self.video_kbit,
            preset=self.preset,
        )


class ComposedRecording:
    def __init__(
        self,
        directory: Path,
        settings: ComposedSettings = ComposedSettings(),
        *,
        paused: bool = False,
        delay: float = DEFAULT_DELAY,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.sink = Mp4Sink(directory / COMPOSED_NAME)
        encoder = Encoder(settings.encoder())
        encoder.add_sink(self.sink)
        self.compositor = Compositor(encoder, paused=paused, delay=delay)
        self._finished: RecordedFile | None = None
        self._done = False

    def is_attached(self, producer_id: str) -> bool:
        return self.compositor.is_attached(producer_id)

    def attach(self, producer: Producer, *, feed: str, label: str, screen: bool) -> None:
        self.compositor.attach(producer, feed=feed, label=label, screen=screen)

    def pause(self) -> None:
        self.compositor.pause()

    def resume(self) -> None:
        self.compositor.resume()

    async def finish(self) -> RecordedFile | None:
        if not self._done:
            self._done = True
            await asyncio.to_thread(self.compositor.close)
            sink = self.sink
            if sink.error is not None or sink.size == 0:
                sink.path.unlink(missing_ok=True)
                return None
            self._finished = RecordedFile(
                name=COMPOSED_NAME,
                feed=COMPOSED_FEED,
                label="",
                part=1,
                offset=0.0,
                streams=[
                    RecordedStream(slot="composed", kind="video", codec="h264"),
                    RecordedStream(slot="composed", kind="audio", codec="aac"),
                ],
                size=sink.size,
                duration=round(sink.duration, 3),
            )
        return self._finished
