"""HLS out of the broadcast encoder (webinar.broadcast.hls): fMP4 segments at keyframes, a
sliding playlist, and what the segments hold read back with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from webinar.broadcast.encoder import Encoder, EncoderSettings, TestPattern
from webinar.broadcast.hls import HlsSink


def feed(encoder: Encoder, pattern: TestPattern, seconds: float) -> None:
    sound = list(pattern.audio(seconds))
    i = 0
    for frame, at in pattern.video(seconds):
        while i < len(sound) and sound[i][1] <= at:
            encoder.push_audio(*sound[i], block=True)
            i += 1
        encoder.push_video(frame, at, block=True)


def test_segments_at_keyframes_sliding_playlist_and_decodable(tmp_path: Path) -> None:
    pattern = TestPattern(320, 180, fps=30)
    encoder = Encoder(EncoderSettings(width=320, height=180, fps=30, keyframe_seconds=1.0))
    sink = HlsSink(window=3)
    assert sink.playlist() is None and not sink.ready
    encoder.add_sink(sink)
    feed(encoder, pattern, 8.0)
    encoder.close()
    playlist = sink.playlist("?t=abc")
    assert playlist is not None
    lines = playlist.splitlines()
    assert lines[0] == "#EXTM3U" and "#EXT-X-VERSION:7" in lines
    stream = sink.stream_id
    assert f'#EXT-X-MAP:URI="init-{stream}.mp4?t=abc"' in lines
    assert "#EXT-X-TARGETDURATION:1" in lines
    assert lines[-1] == "#EXT-X-ENDLIST"
    listed = [line for line in lines if line.endswith(".m4s?t=abc")]
    assert listed == [f"{stream}-{n}.m4s?t=abc" for n in (5, 6, 7)]
    assert "#EXT-X-MEDIA-SEQUENCE:5" in lines
    durations = [float(line[8:-1]) for line in lines if line.startswith("#EXTINF:")]
    assert durations == pytest.approx([1.0, 1.0, 1.0], abs=0.05)
    # beyond the window and its grace segments are dropped from memory
    assert sink.segment(1) is None and sink.segment(2) is not None
    init = sink.init()
    assert init is not None and init[4:8] == b"ftyp"
    path = tmp_path / "joined.mp4"
    parts = [sink.segment(n) for n in (5, 6, 7)]
    assert all(p is not None and p.data[4:8] == b"moof" for p in parts)
    path.write_bytes(init + b"".join(p.data for p in parts if p is not None))
    with av.open(str(path)) as box:
        numbers = [TestPattern.frame_number(f) for f in box.decode(video=0)]
    assert numbers == list(range(150, 240))
    with av.open(str(path)) as box:
        samples = sum(f.samples for f in box.decode(audio=0))
    assert abs(samples / 48_000 - 3.0) < 0.1


def test_window_must_hold_two_segments() -> None:
    with pytest.raises(ValueError):
        HlsSink(window=1)
