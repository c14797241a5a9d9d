"""Pre-encoded media for headless clients, tests and benchmarks.

A clip is encoded once (VP8 with libvpx, Opus) and then replayed as ``av.Packet``
objects: aiortc's sender packetizes pre-encoded packets without encoding, so a
publisher costs almost no CPU and measurements see the SFU, not the client.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import time
from dataclasses import dataclass
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

VIDEO_CLOCK = 90000
AUDIO_CLOCK = 48000


@dataclass(frozen=True, slots=True)
class EncodedClip:
    kind: str  # "video" | "audio"
    frames: tuple[bytes, ...]
    keyframes: tuple[bool, ...]
    frame_duration: float  # seconds
    bitrate_bps: int  # measured mean


def make_vp8_clip(
    *,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    seconds: float = 4.0,
    bitrate: int = 1_000_000,
    keyframe_interval: int = 60,
    pattern: str = "gradient",
    colour: tuple[int, int, int] = (80, 128, 128),
) -> EncodedClip:
    """Encode a test picture to VP8 (realtime, CBR). ``pattern``: ``"gradient"``, a moving
    diagonal gradient; ``"flash"``, a flat picture of ``colour`` (Y, U, V) that is white in
    the first frame of every second (with :func:`make_opus_clip`'s ``beep``, for measuring
    audio/video sync); ``"solid"``, ``colour`` throughout."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width = width
    codec.height = height
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = bitrate
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    codec.gop_size = keyframe_interval
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
        "partitions": "0",
    }
    n = int(seconds * fps)
    frames: list[bytes] = []
    keys: list[bool] = []
    ramp = bytes(range(256)) * (width // 256 + 2)
    chroma = width // 2 * (height // 2)
    for i in range(n):
        if pattern == "gradient":
            # A diagonal gradient that moves: compressible, never static, never black.
            y = b"".join(
                ramp[(row + i * 4) % 256 : (row + i * 4) % 256 + width] for row in range(height)
            )
            u = bytes([(i * 3) % 256]) * chroma
            v = bytes([128]) * chroma
        elif pattern == "flash" and i % fps == 0:
            y, u, v = bytes([235]) * (width * height), bytes([128]) * chroma, bytes([128]) * chroma
        else:
            y = bytes([colour[0]]) * (width * height)
            u, v = bytes([colour[1]]) * chroma, bytes([colour[2]]) * chroma
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane, data in zip(frame.planes, (y, u, v), strict=True):
            _fill_plane(plane, data, plane.width)
        frame.pts = i
        frame.time_base = codec.time_base
        if i % keyframe_interval == 0:
            frame.pict_type = av.video.frame.PictureType.I
        for packet in codec.encode(frame):
            frames.append(bytes(packet))
            keys.append(bool(packet.is_keyframe))
    for packet in codec.encode(None):
        frames.append(bytes(packet))
        keys.append(bool(packet.is_keyframe))
    total = sum(len(f) for f in frames)
    return EncodedClip(
        kind="video",
        frames=tuple(frames),
        keyframes=tuple(keys),
        frame_duration=1 / fps,
        bitrate_bps=int(total * 8 / (len(frames) / fps)) if frames else 0,
    )


def make_opus_clip(
    *, seconds: float = 4.0, frequency: float = 440.0, beep: bool = False
) -> EncodedClip:
    """Encode a tone to Opus, 20 ms per packet; ``beep``: silence but for the tone in the first
    100 ms of every second (with the ``"flash"`` video clip)."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_CLOCK
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 64000
    codec.time_base = fractions.Fraction(1, AUDIO_CLOCK)
    samples = 960
    n = int(seconds / 0.02)
    frames: list[bytes] = []
    for i in range(n):
        pcm = array.array("h")
        quiet = beep and (i % 50) >= 5
        for k in range(samples):
            t = (k + i * samples) / AUDIO_CLOCK
            value = 0 if quiet else int(math.sin(2 * math.pi * frequency * t) * 8000)
            pcm.append(value)
            pcm.append(value)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = AUDIO_CLOCK
        frame.pts = i * samples
        frame.time_base = codec.time_base
        for packet in codec.encode(frame):
            frames.append(bytes(packet))
    for packet in codec.encode(None):
        frames.append(bytes(packet))
    if beep:
        frames = frames[:n]  # the flush's extra packet would make each loop 20 ms longer
    total = sum(len(f) for f in frames)
    return EncodedClip(
        kind="audio",
        frames=tuple(frames),
        keyframes=tuple(True for _ in frames),
        frame_duration=0.02,
        bitrate_bps=int(total * 8 / (len(frames) * 0.02)) if frames else 0,
    )


def _fill_plane(plane: av.video.plane.VideoPlane, data: bytes, width: int) -> None:
    stride = plane.line_size
    if stride == width:
        plane.update(data)
        return
    rows = len(data) // width
    padded = b"".join(
        data[r * width : (r + 1) * width] + b"\x00" * (stride - width) for r in range(rows)
    )
    plane.update(padded)


class ClipTrack(MediaStreamTrack):
    """Replays an :class:`EncodedClip` in real time, looping, as ``av.Packet``s.

    ``frames_sent`` counts frames handed to the sender (the loss test compares
    decoded frames against it). :meth:`pause` and :meth:`resume` let a measurement
    start and end at quiet moments, when no packet is in flight."""

    def __init__(self, clip: EncodedClip) -> None:
        super().__init__()
        self._open = asyncio.Event()
        self._open.set()
        self._paused_at: float | None = None
        self.kind = clip.kind
        self._clip = clip
        self._index = 0
        self._start: float | None = None
        self.frames_sent = 0
        clock = VIDEO_CLOCK if clip.kind == "video" else AUDIO_CLOCK
        self._time_base = fractions.Fraction(1, clock)
        self._ticks = round(clip.frame_duration * clock)

    def pause(self) -> None:
        if self._open.is_set():
            self._open.clear()
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self._paused_at is not None and self._start is not None:
            self._start += time.monotonic() - self._paused_at  # no catch-up burst
        self._paused_at = None
        self._open.set()

    async def recv(self) -> Any:
        await self._open.wait()
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        n = self.frames_sent
        due = self._start + n * self._clip.frame_duration
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frames = self._clip.frames
        data = frames[self._index]
        self._index = (self._index + 1) % len(frames)
        if self._index == 0 and self.kind == "video":
            # Loop from a keyframe: clips start with one.
            pass
        packet = av.Packet(data)
        packet.pts = n * self._ticks
        packet.time_base = self._time_base
        self.frames_sent = n + 1
        return packet
