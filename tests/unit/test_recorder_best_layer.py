"""A recording started before a simulcast camera's top encoding flows moves up to it.

Real VP8 encodings of three sizes and real Opus (made with PyAV here), packetized as a
browser sends them, through a real simulcast Producer into a real Recorder and its WebM
writer; the file is read back and decoded with PyAV. Each encoding has its own RTP
timestamps and its own sender reports, as in a browser; the top one starts 3 s after
the others. A fake clock drives time; nothing touches a network."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc.rtp import RtpPacket

from tests.unit.test_frame_tap_layers import encoding as vp8_encoding
from tests.unit.test_recorder import audio_producer, opus_frames, packetize_vp8
from tests.unit.test_tiers import FakeTap
from webinar.sfu import ingest, producer, recorder, simulcast
from webinar.sfu.producer import Producer, ProducerCodec, SenderReportMapping
from webinar.sfu.recorder import Recorder
from webinar.sfu.rtp import ntp_from_seconds
from webinar.sfu.types import MediaKind, MediaSource

SIZES = ((160, 90), (320, 180), (640, 360))
RIDS = ("q", "h", "f")
FPS = 15
GOP = 15  # a keyframe a second, in each encoding
FRAMES = 30  # encoded once, sent in a loop (a loop starts at a keyframe)
TS0 = (1_000, 2_000_000_000, 4_200_000_000)  # each encoding's own RTP clock (the top wraps)
SKEW = 77.7  # the publisher's NTP clock is ahead of ours


class Clock:
    """time.time()/monotonic() of the SFU modules, moved by the test."""

    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock(1_800_000_000.0)
    for module in (recorder, ingest, simulcast, producer):
        monkeypatch.setattr(module, "time", c)
    return c


def encoding(size: tuple[int, int]) -> list[bytes]:
    return vp8_encoding(size, frames=FRAMES, gop=GOP, fps=FPS)


class Camera:
    """A publisher's simulcast camera: encoding ``layer`` sends from ``starts[layer]`` s on,
    each with its own SSRC, sequence numbers, RTP timestamps and sender report."""

    def __init__(self, clock: Clock, starts: tuple[float, float, float]) -> None:
        self.clock = clock
        self.t0 = clock.now
        self.starts = starts
        self.pub = FakeTap()
        self.producer = Producer(
            kind=MediaKind.VIDEO,
            source=MediaSource.CAMERA,
            mid="0",
            tap=self.pub,  # type: ignore[arg-type]
            rids=RIDS,
        )
        self.producer.set_codec(ProducerCodec("video/VP8", 90000, 96, 97), None)
        self.streams = [encoding(size) for size in SIZES]
        self.seq = [100, 5000, 9000]
        self.started = [False] * 3
        self.pos = [0, 0, 0]  # the frame of each encoding's loop it sends next
        self.answered = 0  # keyframe requests seen
        self.answer_requests = False

    def answer_keyframe_requests(self) -> None:
        """From now on, answer a keyframe request (PLI) with a keyframe in the next frame,
        as a browser does."""
        self.answer_requests = True
        self.answered = len(self.pub.plis)

    def send_frame(self, i: int) -> None:
        t = i / FPS
        if self.answer_requests:
            for ssrc in self.pub.plis[self.answered :]:
                layer = ssrc - 1000
                self.pos[layer] = -(-self.pos[layer] // GOP) * GOP  # its next keyframe
            self.answered = len(self.pub.plis)
        for layer, stream in enumerate(self.streams):
            pos = self.pos[layer]
            self.pos[layer] += 1
            if t < self.starts[layer]:
                continue
            ts = (TS0[layer] + i * (90000 // FPS)) & 0xFFFFFFFF
            for payload, last in packetize_vp8(stream[pos % FRAMES], i):
                packet = RtpPacket(
                    payload_type=96,
                    marker=int(last),
                    sequence_number=self.seq[layer] & 0xFFFF,
                    timestamp=ts,
                    ssrc=1000 + layer,
                    payload=payload,
                )
                if not self.started[layer]:
                    packet.extensions.rtp_stream_id = RIDS[layer]
                self.seq[layer] += 1
                self.producer.on_rtp(packet, 0)
            if not self.started[layer]:  # its first sender report, soon after it starts
                self.started[layer] = True
                ingress = self.producer.simulcast
                assert ingress is not None
                ntp = ntp_from_seconds(self.t0 + SKEW + t)
                ingress.on_sender_report(1000 + layer, ntp, ts, self.clock.now)


def read_file(path: Path) -> dict[str, Any]:
    """Every frame decoded: video sizes and times, audio times, decoder errors raise."""
    video: list[tuple[float, int, int]] = []
    audio: list[float] = []
    with av.open(str(path)) as container:
        header = (container.streams.video[0].width, container.streams.video[0].height)
        last_pts: dict[str, int] = {}
        for packet in container.demux():
            if packet.pts is None:
                continue
            kind = packet.stream.type
            assert packet.pts > last_pts.get(kind, -1), "timestamps must go forward"
            last_pts[kind] = packet.pts
            t = float(packet.pts * packet.time_base)
            for frame in packet.decode():
                if kind == "video":
                    video.append((t, frame.width, frame.height))
                else:
                    audio.append(t)
    return {"header": header, "video": video, "audio": audio}


async def test_a_recording_moves_up_to_the_top_encoding_when_it_starts(
    tmp_path: Path, clock: Clock
) -> None:
    seconds = 6.0
    camera = Camera(clock, starts=(0.0, 0.0, 3.0))
    mic = audio_producer()
    opus = opus_frames(int(seconds * 50))
    a_ts0 = 3_000_000_000
    start = clock.now
    mic.sender_report = SenderReportMapping(
        ntp=ntp_from_seconds(start + SKEW), rtp=a_ts0, arrived=start
    )
    camera.send_frame(0)  # the presenter is live: the two lower encodings flow
    rec = Recorder(tmp_path / "rec")
    track = rec.attach(camera.producer, feed="alice", label="Alice")
    rec.attach(mic, feed="alice", label="Alice")
    assert track is not None and camera.producer.pinned_layer(track.id) == 1
    # The top encoding is kept on for the recorder (dynacast) before it flows.
    assert 2 in camera.producer.pinned_layers()

    events = sorted(
        [(i / FPS, "v", i) for i in range(1, int(seconds * FPS))]
        + [(i * 0.02, "a", i) for i in range(int(seconds * 50))]
    )
    for t, kind, i in events:
        clock.now = start + t + 0.005
        if kind == "v":
            camera.send_frame(i)
        else:
            mic.on_rtp(
                RtpPacket(
                    payload_type=111,
                    sequence_number=(7 + i) & 0xFFFF,
                    timestamp=(a_ts0 + i * 960) & 0xFFFFFFFF,
                    ssrc=mic.ssrc or 0,
                    payload=opus[i],
                ),
                0,
            )
        rec.tick()
    assert camera.producer.pinned_layer(track.id) == 2 and track.switches == 1
    assert camera.pub.plis.count(1002) >= 1  # its keyframe was asked for
    result = await rec.stop()

    assert len(result.files) == 1
    got = read_file(result.directory / result.files[0].name)
    video = got["video"]
    sizes = [(w, h) for _t, w, h in video]
    first_top = sizes.index(SIZES[2])
    # 640x360 until the top encoding's first keyframe after it started, then 1280x720-like
    assert set(sizes[:first_top]) == {SIZES[1]} and set(sizes[first_top:]) == {SIZES[2]}
    assert 3.0 <= video[first_top][0] <= 4.5
    assert sizes[-1] == SIZES[2]
    # The whole file decodes, nothing lost from the first keyframe (the publisher here does
    # not answer keyframe requests: its next one comes 1 s in) to the end.
    assert len(video) >= (seconds - 1) * FPS - 2
    # One timeline across the switch: the new encoding's RTP times are mapped by its own
    # sender report, so frames stay 1/15 s apart (no jump, no overlap) ...
    steps = [b[0] - a[0] for a, b in itertools.pairwise(video)]
    assert all(0 < step <= 1 / FPS + 0.01 for step in steps), steps
    # ... and the camera stays in sync with the microphone (both end at the same instant).
    assert abs(video[-1][0] - got["audio"][-1]) < 0.1
    assert abs(video[0][0] - got["audio"][0] - 1.0) < 0.1


async def test_a_recording_moves_down_when_the_top_encoding_stops(
    tmp_path: Path, clock: Clock
) -> None:
    camera = Camera(clock, starts=(0.0, 0.0, 0.0))
    camera.answer_keyframe_requests()
    camera.send_frame(0)
    rec = Recorder(tmp_path / "rec")
    track = rec.attach(camera.producer, feed="bob", label="Bob")
    assert track is not None and camera.producer.pinned_layer(track.id) == 2
    start = clock.now
    for i in range(1, 7 * FPS):
        clock.now = start + i / FPS
        if i == 2 * FPS:  # the publisher's bandwidth drops: the top encoding stops
            camera.starts = (0.0, 0.0, 1e9)
        camera.send_frame(i)
        rec.tick()
    assert camera.producer.pinned_layer(track.id) == 1
    result = await rec.stop()
    video = read_file(result.directory / result.files[0].name)["video"]
    assert video[-1][1:] == SIZES[1]
    # The picture stood still no longer than it takes to see the top encoding paused (while
    # the lower ones go on), to ask for a keyframe of the next one and get it.
    steps = [b[0] - a[0] for a, b in itertools.pairwise(video)]
    assert max(steps) <= recorder.BEST_STALL + 3 / FPS + 0.01, max(steps)
    assert video[-1][0] - video[0][0] > 5.5  # frames of the lower one to the end
