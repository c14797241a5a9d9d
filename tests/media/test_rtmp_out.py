"""The live stream out (webinar.broadcast.rtmp) to a real RTMP ingest (nginx-rtmp, started by
the ``rtmp_server`` fixture): TestPattern frames through the Encoder, in real time, reach the
ingest as a stream that decodes; an ingest killed mid-stream is reconnected to when it is
back, and the stream goes on from a keyframe."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import pytest

from tests.rtmp_server import RtmpServer, TlsFront
from webinar.broadcast.encoder import Encoder, EncoderSettings, TestPattern
from webinar.broadcast.rtmp import RtmpSink, RtmpStatus

pytestmark = pytest.mark.media
KEY = "test-key-9f3a"


class LiveFeed:
    """TestPattern into an Encoder at the wall clock's pace, on a thread of its own."""

    def __init__(self, encoder: Encoder, pattern: TestPattern, seconds: float = 120) -> None:
        self.encoder, self.pattern, self.seconds = encoder, pattern, seconds
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        sound: Iterator[tuple[av.AudioFrame, float]] = self.pattern.audio(self.seconds)
        pending = next(sound, None)
        started = time.monotonic()
        for frame, at in self.pattern.video(self.seconds):
            if self.stop.is_set():
                return
            while pending is not None and pending[1] <= at:
                self.encoder.push_audio(*pending)
                pending = next(sound, None)
            delay = started + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.encoder.push_video(frame, at)

    def __enter__(self) -> LiveFeed:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def wait_for(what: Callable[[], bool], within: float, message: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if what():
            return
        time.sleep(0.05)
    raise AssertionError(message)


def decoded_numbers(path: Path) -> tuple[list[int], float]:
    """The frame numbers burnt into the video of ``path`` and the seconds of its sound."""
    with av.open(str(path)) as box:
        assert box.streams.video[0].codec_context.name == "h264"
        numbers = [TestPattern.frame_number(f) for f in box.decode(video=0)]
    with av.open(str(path)) as box:
        sound = sum(f.samples for f in box.decode(audio=0)) / 48_000
    return numbers, sound


def test_stream_reaches_the_ingest_and_reconnects(rtmp_server: RtmpServer) -> None:
    statuses: list[RtmpStatus] = []
    encoder = Encoder(
        EncoderSettings(width=320, height=180, fps=30, video_kbit=500, keyframe_seconds=1.0)
    )
    sink = RtmpSink(
        rtmp_server.url, KEY, on_status=statuses.append, first_backoff=0.3, max_backoff=1.0
    )
    try:
        with LiveFeed(encoder, TestPattern(320, 180, fps=30)):
            encoder.add_sink(sink)
            wait_for(lambda: sink.status().state == "live", 15, "never went live")
            time.sleep(3)
            first = sink.status()
            assert first.reconnects == 0 and first.error is None
            assert 50 < first.bitrate_kbit < 2000, first

            rtmp_server.kill()
            wait_for(lambda: sink.status().state == "reconnecting", 15, "the break not seen")
            time.sleep(1.5)  # a few attempts against a closed port
            broken = sink.status()
            assert broken.state == "reconnecting" and broken.error, broken
            assert KEY not in broken.error

            rtmp_server.start()
            wait_for(lambda: sink.status().state == "live", 15, "never reconnected")
            time.sleep(3)
            again = sink.status()
            assert again.reconnects == 1 and again.error is None, again
    finally:
        encoder.close()
    assert sink.status().state == "stopped"
    assert [s.state for s in statuses][:2] == ["live", "reconnecting"]
    assert statuses[-1].state == "stopped"

    files = rtmp_server.recordings()
    assert len(files) == 2, files
    assert all(f.name.startswith(KEY) for f in files)
    before, sound_before = decoded_numbers(files[0])
    after, sound_after = decoded_numbers(files[1])
    # each publish decodes from its first frame: consecutive frames of the pattern, at least
    # the seconds on air, sound along
    for numbers, sound in ((before, sound_before), (after, sound_after)):
        assert len(numbers) >= 2.5 * 30, numbers
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
        assert abs(sound - len(numbers) / 30) < 1.0, (sound, len(numbers))
    # the second one starts later, and each starts with a keyframe
    assert after[0] > before[-1]
    for path in files:
        with av.open(str(path)) as box:
            first = next(p for p in box.demux(video=0) if p.size)
        assert first.is_keyframe, path


def test_rtmps_reaches_the_ingest_through_tls(rtmp_server: RtmpServer) -> None:
    front = TlsFront(rtmp_server)
    encoder = Encoder(
        EncoderSettings(width=320, height=180, fps=30, video_kbit=500, keyframe_seconds=1.0)
    )
    sink = RtmpSink(front.url, KEY)
    try:
        with LiveFeed(encoder, TestPattern(320, 180, fps=30)):
            encoder.add_sink(sink)
            wait_for(lambda: sink.status().state == "live", 15, "never went live")
            time.sleep(2.5)
    finally:
        encoder.close()
        front.close()
    assert front.handshakes >= 1
    [recorded] = rtmp_server.recordings()
    numbers, sound = decoded_numbers(recorded)
    assert len(numbers) >= 2 * 30
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert sound > 1.5
