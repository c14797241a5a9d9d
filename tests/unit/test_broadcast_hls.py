"""HLS out of the broadcast encoder (webinar.broadcast.hls): fMP4 segments at keyframes, a
sliding playlist, and what the segments hold read back with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from webinar.broadcast.encoder import Encoder, EncoderSettings, TestPattern
from webinar.broadcast.hls import HlsSink, HlsStreams


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


def test_another_process_serves_the_mirrored_files(tmp_path: Path) -> None:
    here, there = HlsStreams(tmp_path / "hls"), HlsStreams(tmp_path / "hls")
    stale = tmp_path / "hls" / "123456789" / "0badcafe-3.m4s"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an earlier output's")
    sink = here.start("123456789", window=3)
    pattern = TestPattern(320, 180, fps=30)
    encoder = Encoder(EncoderSettings(width=320, height=180, fps=30, keyframe_seconds=1.0))
    encoder.add_sink(sink)
    feed(encoder, pattern, 8.0)
    encoder.close()  # the mirror has written everything when the sink is closed
    assert not stale.exists()
    folder = sorted(p.name for p in (tmp_path / "hls" / "123456789").iterdir())
    kept = [f"{sink.stream_id}-{n}.m4s" for n in range(2, 8)]
    assert folder == sorted(["index.m3u8", f"init-{sink.stream_id}.mp4", *kept])
    assert there.get("123456789") is None
    for name in ("index.m3u8", f"init-{sink.stream_id}.mp4", *kept):
        assert there.read("123456789", name) == here.read("123456789", name) is not None
    assert there.read("123456789", f"{sink.stream_id}-1.m4s") is None
    for bad in ("../secret", "index.m3u8/..", "x.m4s", ".index.m3u8.tmp"):
        assert there.read("123456789", bad) is None
    assert there.read("../12345678", "index.m3u8") is None
    here.withdraw("123456789", sink)
    assert here.get("123456789") is None
    assert (here.read("123456789", "index.m3u8") or b"").endswith(b"#EXT-X-ENDLIST\n")
