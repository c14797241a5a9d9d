"""The composed recording: the stage as one MP4 beside a recording's per-feed WebM files.

Its settings (``[recording] composed_*``) are those of the room's one encoder
(:class:`ComposedSettings`); the file itself is one output of the room's compositor,
:class:`webinar.broadcast.room.RecordingOutput`: ``composed.mp4`` in the recording's folder,
paused with the recording (presenters-only mode is never composed), listed, downloaded,
trimmed and published like the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from .encoder import EncoderSettings

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
