"""The broadcast encoder (webinar.broadcast.encoder): H.264 + AAC once, packets to outputs
that mux them as they are (the recipe of the module's docstring), read back with PyAV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av

from webinar.broadcast.encoder import Encoder, EncoderSettings, StreamFormat, TestPattern


class Mp4Sink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.packets = {"video": 0, "audio": 0}
        self.closed = False

    def open(self, fmt: StreamFormat) -> None:
        self.out = av.open(str(self.path), "w", format="mp4")
        self.video = self.out.add_mux_stream(
            fmt.video_codec, rate=fmt.fps, width=fmt.width, height=fmt.height
        )
        self.video.time_base = fmt.video_time_base
        self.audio = self.out.add_stream(fmt.audio_codec, rate=fmt.audio_rate)
        self.audio.time_base = fmt.audio_time_base

    def write(self, packet: av.Packet[Any], kind: str) -> None:
        packet.stream = self.video if kind == "video" else self.audio
        self.packets[kind] += 1
        self.out.mux(packet)

    def close(self) -> None:
        self.out.close()
        self.closed = True


def test_encoded_once_muxed_as_is_and_read_back(tmp_path: Path) -> None:
    pattern = TestPattern(320, 180, fps=30)
    encoder = Encoder(EncoderSettings(width=320, height=180, fps=30, keyframe_seconds=1.0))
    first, second = Mp4Sink(tmp_path / "a.mp4"), Mp4Sink(tmp_path / "b.mp4")
    encoder.add_sink(first)
    encoder.add_sink(second)
    sound = list(pattern.audio(2.0))
    i = 0
    for frame, at in pattern.video(2.0):
        while i < len(sound) and sound[i][1] <= at:
            encoder.push_audio(*sound[i], block=True)
            i += 1
        encoder.push_video(frame, at, block=True)
    for frame, at in sound[i:]:
        encoder.push_audio(frame, at, block=True)
    encoder.close()
    assert first.closed and second.closed and encoder.dropped == 0
    assert first.packets == second.packets
    with av.open(str(first.path)) as box:
        numbers = [TestPattern.frame_number(f) for f in box.decode(video=0)]
    assert numbers == list(range(60))
    with av.open(str(first.path)) as box:
        samples = sum(f.samples for f in box.decode(audio=0))
    assert abs(samples / 48_000 - 2.0) < 0.1


def test_dropped_frames_do_not_stop_the_encoder_and_close_returns(tmp_path: Path) -> None:
    """A full queue drops frames (counted); the audio FIFO takes the next ones anyway, and
    close() returns even with the queue full."""
    pattern = TestPattern(320, 180, fps=30)
    encoder = Encoder(EncoderSettings(width=320, height=180, fps=30))
    sink = Mp4Sink(tmp_path / "c.mp4")
    encoder.add_sink(sink)
    for frame, at in pattern.audio(6.0):  # far more than the queue holds, without waiting
        encoder.push_audio(frame, at)
    for frame, at in pattern.video(1.0):
        encoder.push_video(frame, at)
    encoder.close()
    assert sink.closed and encoder.dropped > 0 and sink.packets["audio"] > 0


def test_a_picture_pushed_again_is_not_a_keyframe_each_time() -> None:
    """The compositor pushes an unchanged picture again as the same frame object; a keyframe
    asked for once (an output added) must not stick to it."""

    class Keyframes:
        def __init__(self) -> None:
            self.at: list[float] = []

        def open(self, fmt: StreamFormat) -> None:
            pass

        def write(self, packet: av.Packet[Any], kind: str) -> None:
            if kind == "video" and packet.is_keyframe and packet.pts is not None:
                self.at.append(round(float(packet.pts * packet.time_base), 2))

        def close(self) -> None:
            pass

    encoder = Encoder(EncoderSettings(width=320, height=180, fps=25, keyframe_seconds=1.0))
    sink = Keyframes()
    encoder.add_sink(sink)
    frame, _at = next(TestPattern(320, 180, fps=25).video(1.0))
    for n in range(75):
        if n == 30:
            encoder.request_keyframe(1.5)  # an output starting at 1.5 s
        encoder.push_video(frame, n / 25, block=True)
    encoder.close()
    assert sink.at[:3] == [0.0, 1.0, 1.52] and len(sink.at) == 4, sink.at
