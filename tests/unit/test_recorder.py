"""The recorder on synthetic RTP: real VP8/Opus bitstreams (made with PyAV here),
packetized as a browser does, fed through a real Producer, muxed into WebM and
read back with PyAV. A fake clock drives time; nothing touches a network."""

from __future__ import annotations

import fractions
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc.rtp import RtpPacket

from webinar.sfu import recorder as rec
from webinar.sfu.producer import Producer, ProducerCodec, SenderReportMapping
from webinar.sfu.recorder import (
    OpusDepacketizer,
    Recorder,
    Vp8Depacketizer,
)
from webinar.sfu.rtp import MediaPacket, ntp_from_seconds, vp8_frame_size
from webinar.sfu.types import MediaKind, MediaSource

FPS = 30


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


class FakeNack:
    def __init__(self) -> None:
        self.missing: set[int] = set()

    def add(self, packet: Any) -> bool:
        return False


class FakeTap:
    def __init__(self) -> None:
        self.nack = FakeNack()
        self.plis = 0

    def account(self, packet: Any, arrival: int, clock_rate: int) -> None:
        pass

    def send_nack(self, ssrc: int, lost: Any) -> None:
        pass

    def send_pli(self, ssrc: int) -> None:
        self.plis += 1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    c = FakeClock(1_800_000_000.0)
    monkeypatch.setattr(rec, "time", c)
    return c


def vp8_frames(n: int, gop: int = 30, size: tuple[int, int] = (320, 240)) -> list[bytes]:
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height = size
    enc.pix_fmt = "yuv420p"
    enc.time_base = fractions.Fraction(1, FPS)
    enc.gop_size = gop
    enc.bit_rate = 400_000
    out: list[bytes] = []
    for i in range(n):
        frame = av.VideoFrame(size[0], size[1], "yuv420p")
        for j, plane in enumerate(frame.planes):
            plane.update(bytes([(i * 7 + j * 50) % 256]) * plane.buffer_size)
        frame.pts = i
        out += [bytes(p) for p in enc.encode(frame)]
    out += [bytes(p) for p in enc.encode(None)]
    return out


def opus_frames(n: int) -> list[bytes]:
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = 48000
    enc.layout = "stereo"
    enc.format = "s16"
    enc.time_base = fractions.Fraction(1, 48000)
    out: list[bytes] = []
    for i in range(n):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes(960 * 4))
        frame.sample_rate = 48000
        frame.pts = i * 960
        out += [bytes(p) for p in enc.encode(frame)]
    return out[:n]


def packetize_vp8(frame: bytes, picture_id: int, mtu: int = 400) -> Iterator[tuple[bytes, bool]]:
    chunks = [frame[i : i + mtu] for i in range(0, len(frame), mtu)]
    for i, chunk in enumerate(chunks):
        b0 = 0x90 if i == 0 else 0x80  # X=1, S=1 on the first packet, partition 0
        desc = bytes([b0, 0x80, 0x80 | ((picture_id >> 8) & 0x7F), picture_id & 0xFF])
        yield desc + chunk, i == len(chunks) - 1


def video_producer(ssrc: int = 1234) -> Producer:
    p = Producer(kind=MediaKind.VIDEO, source=MediaSource.CAMERA, mid="0", tap=FakeTap())  # type: ignore[arg-type]
    p.set_codec(ProducerCodec("video/VP8", 90000, 96, None), ssrc)
    return p


def audio_producer(ssrc: int = 5678) -> Producer:
    p = Producer(kind=MediaKind.AUDIO, source=MediaSource.MICROPHONE, mid="1", tap=FakeTap())  # type: ignore[arg-type]
    p.set_codec(ProducerCodec("audio/opus", 48000, 111, None, channels=2), ssrc)
    return p


class VideoSender:
    """Sends VP8 frames as RTP into a producer, one frame per 1/30 s of fake time."""

    def __init__(self, producer: Producer, frames: list[bytes], ts0: int, seq0: int = 100) -> None:
        self.producer = producer
        self.frames = frames
        self.ts0 = ts0
        self.seq = seq0
        self.index = 0

    def packets(self, i: int) -> list[RtpPacket]:
        ts = (self.ts0 + i * 3000) & 0xFFFFFFFF
        out = []
        for payload, last in packetize_vp8(self.frames[i], i):
            out.append(
                RtpPacket(
                    payload_type=96,
                    marker=int(last),
                    sequence_number=self.seq & 0xFFFF,
                    timestamp=ts,
                    ssrc=self.producer.ssrc or 0,
                    payload=payload,
                )
            )
            self.seq += 1
        return out


def send(producer: Producer, packets: list[RtpPacket]) -> None:
    for packet in packets:
        producer.on_rtp(packet, 0)


def read_back(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        info: dict[str, Any] = {
            "kinds": [s.type for s in container.streams],
            "duration": (container.duration or 0) / 1_000_000,
        }
        starts: dict[str, float] = {}
        counts: dict[str, int] = {}
        for packet in container.demux():
            if packet.pts is None:
                continue
            kind = packet.stream.type
            t = float(packet.pts * packet.time_base)
            starts.setdefault(kind, t)
            counts[kind] = counts.get(kind, 0) + 1
            for _frame in packet.decode():
                pass
        info["starts"] = starts
        info["counts"] = counts
    return info


# ----------------------------------------------------------------------------- depacketizers


def mp(seq: int, ts: int, payload: bytes, marker: bool, keyframe: bool = False) -> MediaPacket:
    return MediaPacket(
        seq=seq,
        timestamp=ts,
        marker=int(marker),
        payload=payload,
        keyframe=keyframe,
        audio_level=-1,
        arrival=0.0,
        abs_send_time=b"\0\0\0",
    )


def test_vp8_depacketizer_reorders_and_starts_at_a_keyframe() -> None:
    frames = vp8_frames(3)
    asked: list[int] = []
    d = Vp8Depacketizer(lambda: asked.append(1))
    packets = []
    seq = 10
    for i, frame in enumerate(frames):
        for payload, last in packetize_vp8(frame, i, mtu=200):
            packets.append(mp(seq, i * 3000, payload, last, keyframe=(i == 0 and seq == 10)))
            seq += 1
    # a delta frame before any keyframe is ignored
    assert d.push(mp(5, 0, packets[-1].payload, True), 0.0) == []
    # the keyframe's packets arrive in reverse order
    k = [p for p in packets if p.timestamp == 0]
    out = []
    for p in reversed(k):
        out += d.push(p, 0.0)
    assert len(out) == 1 and out[0].keyframe and out[0].data == frames[0]
    for p in packets[len(k) :]:
        out += d.push(p, 0.0)
    assert [f.data for f in out] == frames
    assert not asked


def test_vp8_depacketizer_waits_for_a_keyframe_after_an_unrepaired_loss() -> None:
    frames = vp8_frames(40, gop=30)
    asked: list[int] = []
    d = Vp8Depacketizer(lambda: asked.append(1))
    seq = 0
    out = []
    now = 0.0
    for i, frame in enumerate(frames):
        pk = list(packetize_vp8(frame, i, mtu=200))
        for j, (payload, last) in enumerate(pk):
            key = j == 0 and frame[0] & 1 == 0
            if i == 5 and j == 0:
                seq += 1  # lost for good
                continue
            out += d.push(mp(seq, i * 3000, payload, last, key), now)
            seq += 1
        now += 1 / FPS
    got = [f.rtp_timestamp // 3000 for f in out]
    # frames 6..29 depend on the lost one: skipped until the keyframe at 30
    assert got == [*range(5), *range(30, len(frames))]
    assert [f.data for f in out[5:]] == frames[30:]
    assert asked, "a keyframe was requested"
    assert d.dropped_frames >= 1


def test_opus_depacketizer_drops_repeats() -> None:
    d = OpusDepacketizer()
    assert len(d.push(mp(1, 0, b"a", True), 0)) == 1
    assert d.push(mp(1, 0, b"a", True), 0) == []
    assert d.push(mp(0, 0, b"a", True), 0) == []
    assert len(d.push(mp(2, 960, b"b", True), 0)) == 1


def test_vp8_frame_size_reads_the_keyframe_header() -> None:
    frames = vp8_frames(2, size=(176, 144))
    assert vp8_frame_size(frames[0]) == (176, 144)
    assert vp8_frame_size(frames[1]) is None


# ----------------------------------------------------------------------------- the recorder


async def record(
    tmp_path: Path,
    clock: FakeClock,
    *,
    seconds: float = 3.0,
    audio_lead: float = 0.0,
    pause: tuple[float, float] | None = None,
) -> tuple[Recorder, Any]:
    """A publisher with camera and microphone whose clocks differ from ours; the
    microphone's RTP clock starts ``audio_lead`` s before the camera's."""
    n_video = int(seconds * FPS)
    n_audio = int(seconds * 50)
    frames = vp8_frames(n_video)
    opus = opus_frames(n_audio)
    video, audio = video_producer(), audio_producer()
    recorder = Recorder(tmp_path / "rec")
    recorder.attach(video, feed="alice", label="Alice")
    recorder.attach(audio, feed="alice", label="Alice")
    start = clock.now
    publisher_skew = 123.456  # the publisher's NTP clock is ahead of ours
    v_ts0, a_ts0 = 1_000_000, 4_000_000_000  # the audio timestamps wrap mid-way
    video.sender_report = SenderReportMapping(
        ntp=ntp_from_seconds(start + publisher_skew), rtp=v_ts0, arrived=start
    )
    audio.sender_report = SenderReportMapping(
        ntp=ntp_from_seconds(start + publisher_skew - audio_lead), rtp=a_ts0, arrived=start
    )
    vs = VideoSender(video, frames, v_ts0)
    a_seq = 7
    events: list[tuple[float, str, int]] = []
    events += [(i / FPS, "v", i) for i in range(n_video)]
    events += [(i * 0.02 - audio_lead, "a", i) for i in range(n_audio)]
    events.sort()
    paused = False
    for t, kind, i in events:
        if t < 0:
            continue
        clock.now = start + t + 0.01
        if pause is not None:
            if not paused and pause[0] <= t < pause[1]:
                recorder.pause()
                paused = True
            elif paused and t >= pause[1]:
                recorder.resume()
                paused = False
        if kind == "v":
            send(video, vs.packets(i))
        else:
            packet = RtpPacket(
                payload_type=111,
                marker=0,
                sequence_number=a_seq,
                timestamp=(a_ts0 + i * 960) & 0xFFFFFFFF,
                ssrc=audio.ssrc or 0,
                payload=opus[i],
            )
            a_seq += 1
            audio.on_rtp(packet, 0)
        recorder.tick()
        if kind == "v" and paused and i % 10 == 0:
            # while paused the publisher is asked for keyframes later: emulate its answer
            pass
    result = await recorder.stop()
    return recorder, result


async def test_camera_and_microphone_land_in_one_webm_in_sync(
    tmp_path: Path, clock: FakeClock
) -> None:
    _recorder, result = await record(tmp_path, clock, seconds=3.0, audio_lead=0.3)
    assert len(result.files) == 1
    file = result.files[0]
    assert file.error is None
    assert [s.kind for s in file.streams] == ["video", "audio"]
    path = result.directory / file.name
    info = read_back(path)
    assert info["kinds"] == ["video", "audio"]
    assert info["counts"]["video"] == 90
    assert info["counts"]["audio"] == 150 - 15  # the first 0.3 s were sent before t=0
    assert abs(info["duration"] - 3.0) < 0.15
    # Both were captured from t=0 on the publisher's clock, whatever their RTP bases.
    assert abs(info["starts"]["audio"]) < 0.02
    assert abs(info["starts"]["video"]) < 0.02
    assert result.size == path.stat().st_size > 0


async def test_frames_are_placed_by_sender_reports_not_arrival(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The microphone's first frame is stamped 0.3 s after the camera's by the sender
    reports although both arrive together: the file keeps that offset."""
    n = 30
    frames = vp8_frames(n)
    opus = opus_frames(50)
    video, audio = video_producer(), audio_producer()
    recorder = Recorder(tmp_path / "rec")
    recorder.attach(video, feed="bob")
    recorder.attach(audio, feed="bob")
    start = clock.now
    video.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=0, arrived=start)
    # RTP timestamp 0 of the audio is 0.3 s later on the publisher's clock
    audio.sender_report = SenderReportMapping(
        ntp=ntp_from_seconds(start + 0.3), rtp=0, arrived=start
    )
    vs = VideoSender(video, frames, 0)
    for i in range(n):
        clock.now = start + i / FPS
        send(video, vs.packets(i))
        audio.on_rtp(
            RtpPacket(
                payload_type=111, sequence_number=i, timestamp=i * 960, ssrc=5678, payload=opus[i]
            ),
            0,
        )
    result = await recorder.stop()
    info = read_back(result.directory / result.files[0].name)
    assert abs(info["starts"]["video"] - 0.0) < 0.005
    assert abs(info["starts"]["audio"] - 0.3) < 0.005


async def test_a_pause_cuts_the_paused_span_out(tmp_path: Path, clock: FakeClock) -> None:
    _recorder, result = await record(tmp_path, clock, seconds=4.0, pause=(1.0, 2.0))
    file = result.files[0]
    info = read_back(result.directory / file.name)
    assert abs(result.duration - 3.0) < 0.1
    assert abs(info["duration"] - 3.0) < 0.2
    # after the pause video restarts at the next keyframe (frame 30 at t=1 s was
    # skipped, so the next is at frame 60 = t 2 s): nothing that was paused is in it
    assert info["counts"]["video"] == 30 + 60
    assert info["counts"]["audio"] < 200 - 45


async def test_a_recording_started_paused_holds_nothing_until_resumed(
    tmp_path: Path, clock: FakeClock
) -> None:
    video = video_producer()
    recorder = Recorder(tmp_path / "rec", paused=True)
    recorder.attach(video, feed="carol")
    start = clock.now
    video.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=0, arrived=start)
    frames = vp8_frames(90)
    vs = VideoSender(video, frames, 0)
    for i in range(90):
        clock.now = start + i / FPS
        if i == 30:
            recorder.resume()
        send(video, vs.packets(i))
        recorder.tick()
    result = await recorder.stop()
    info = read_back(result.directory / result.files[0].name)
    assert info["counts"]["video"] == 60  # from the keyframe at frame 30 on
    assert abs(info["starts"]["video"]) < 0.05
    assert abs(result.duration - 2.0) < 0.1


async def test_a_reconnected_publisher_continues_the_same_track(
    tmp_path: Path, clock: FakeClock
) -> None:
    recorder = Recorder(tmp_path / "rec")
    frames = vp8_frames(60)
    start = clock.now
    first = video_producer(ssrc=1)
    recorder.attach(first, feed="dave")
    first.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=0, arrived=start)
    vs = VideoSender(first, frames, 0)
    for i in range(30):
        clock.now = start + i / FPS
        send(first, vs.packets(i))
    first.close()
    # one second later a new producer (new SSRC, new timestamps) for the same camera
    second = video_producer(ssrc=2)
    recorder.attach(second, feed="dave")
    t1 = start + 2.0
    second.sender_report = SenderReportMapping(ntp=ntp_from_seconds(t1), rtp=777_777, arrived=t1)
    vs2 = VideoSender(second, vp8_frames(30), 777_777, seq0=9000)
    for i in range(30):
        clock.now = t1 + i / FPS
        send(second, vs2.packets(i))
    result = await recorder.stop()
    assert len(result.files) == 1
    info = read_back(result.directory / result.files[0].name)
    assert info["counts"]["video"] == 60
    assert 2.9 < info["duration"] < 3.2  # the gap while they were away stays in


async def test_a_new_source_starts_a_new_part(tmp_path: Path, clock: FakeClock) -> None:
    recorder = Recorder(tmp_path / "rec")
    start = clock.now
    video = video_producer()
    recorder.attach(video, feed="erin")
    video.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=0, arrived=start)
    vs = VideoSender(video, vp8_frames(120), 0)
    audio = audio_producer()
    opus = opus_frames(100)
    for i in range(120):
        clock.now = start + i / FPS
        if i == 70:  # long after the gather window: the microphone comes on
            recorder.attach(audio, feed="erin")
            audio.sender_report = SenderReportMapping(
                ntp=ntp_from_seconds(clock.now), rtp=0, arrived=clock.now
            )
        send(video, vs.packets(i))
        if i >= 70:
            audio.on_rtp(
                RtpPacket(
                    payload_type=111,
                    sequence_number=i,
                    timestamp=(i - 70) * 1600,
                    ssrc=5678,
                    payload=opus[i - 70],
                ),
                0,
            )
        recorder.tick()
    result = await recorder.stop()
    assert [f.part for f in result.files] == [1, 2]
    assert [s.kind for s in result.files[0].streams] == ["video"]
    assert [s.kind for s in result.files[1].streams] == ["video", "audio"]
    second = read_back(result.directory / result.files[1].name)
    assert second["counts"]["video"] == 30  # from the keyframe at frame 90
    assert result.files[1].offset > result.files[0].offset


async def test_frames_waiting_for_a_sender_report_fall_back_to_arrival(
    tmp_path: Path, clock: FakeClock
) -> None:
    recorder = Recorder(tmp_path / "rec")
    video = video_producer()
    recorder.attach(video, feed="f")
    vs = VideoSender(video, vp8_frames(30), 55)
    start = clock.now
    for i in range(30):
        clock.now = start + i / FPS
        send(video, vs.packets(i))
    result = await recorder.stop()  # no sender report ever came
    info = read_back(result.directory / result.files[0].name)
    assert info["counts"]["video"] == 30
    assert abs(info["duration"] - 1.0) < 0.1


async def test_the_recorder_is_a_consumer_and_leaves_the_producer(
    tmp_path: Path, clock: FakeClock
) -> None:
    video = video_producer()
    recorder = Recorder(tmp_path / "rec")
    recorder.attach(video, feed="g")
    assert video.consumers == ()  # metrics see subscribers' consumers only
    assert len(video._active) == 1
    assert video._tap.plis == 1  # type: ignore[attr-defined]  # asked for a keyframe at once
    await recorder.stop()
    assert video._active == ()


async def test_on_a_simulcast_producer_the_keyframe_request_is_for_the_pinned_encoding(
    tmp_path: Path,
) -> None:
    from tests.unit.test_tiers import FakeTap as LayerTap
    from tests.unit.test_tiers import rtp

    tap = LayerTap()
    video = Producer(
        kind=MediaKind.VIDEO,
        source=MediaSource.CAMERA,
        mid="0",
        tap=tap,
        rids=("q", "h", "f"),  # type: ignore[arg-type]
    )
    video.set_codec(ProducerCodec("video/VP8", 90000, 96, 97), None)
    video.on_rtp(rtp(111, 1, rid="q"), 0)
    video.on_rtp(rtp(222, 1, rid="h"), 0)  # the best encoding flowing: the middle one
    recorder = Recorder(tmp_path / "rec")
    track = recorder.attach(video, feed="s")
    assert track is not None and video.pinned_layer(track.id) == 1
    # one request, for that encoding (a keyframe of another is of no use to the file)
    assert tap.plis == [222]
    await recorder.stop()


async def test_a_track_attached_before_its_codec_is_known_is_recorded(
    tmp_path: Path, clock: FakeClock
) -> None:
    video = Producer(kind=MediaKind.VIDEO, source=MediaSource.CAMERA, mid="0", tap=FakeTap())  # type: ignore[arg-type]
    recorder = Recorder(tmp_path / "rec")
    assert recorder.attach(video, feed="h") is not None  # as soon as it is published
    video.set_codec(ProducerCodec("video/VP8", 90000, 96, None), 99)
    start = clock.now
    video.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=0, arrived=start)
    vs = VideoSender(video, vp8_frames(30), 0)
    for i in range(30):
        clock.now = start + i / FPS
        send(video, vs.packets(i))
    result = await recorder.stop()
    assert read_back(result.directory / result.files[0].name)["counts"]["video"] == 30


async def test_other_codecs_are_not_recorded(tmp_path: Path, clock: FakeClock) -> None:
    video = Producer(kind=MediaKind.VIDEO, source=MediaSource.CAMERA, mid="0", tap=FakeTap())  # type: ignore[arg-type]
    video.set_codec(ProducerCodec("video/H264", 90000, 96, None), 99)
    recorder = Recorder(tmp_path / "rec")
    recorder.attach(video, feed="h264")
    send(video, VideoSender(video, vp8_frames(3), 0).packets(0))
    assert video._active == ()
    result = await recorder.stop()
    assert result.files == []


async def test_a_muted_microphone_switched_on_later_continues_the_file(
    tmp_path: Path, clock: FakeClock
) -> None:
    recorder = Recorder(tmp_path / "rec")
    start = clock.now
    video, audio = video_producer(), audio_producer()
    recorder.attach(video, feed="m")
    recorder.attach(audio, feed="m")
    for p in (video, audio):
        p.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=0, arrived=start)
    vs = VideoSender(video, vp8_frames(120), 0)
    opus = opus_frames(50)
    for i in range(120):
        clock.now = start + i / FPS
        send(video, vs.packets(i))
        if 90 <= i < 90 + 50:  # the microphone comes on at 3 s
            j = i - 90
            audio.on_rtp(
                RtpPacket(
                    payload_type=111,
                    sequence_number=j,
                    timestamp=int((i / FPS) * 48000),
                    ssrc=5678,
                    payload=opus[j],
                ),
                0,
            )
    result = await recorder.stop()
    assert len(result.files) == 1
    info = read_back(result.directory / result.files[0].name)
    assert info["kinds"] == ["video", "audio"]
    assert info["counts"]["video"] == 120 and info["counts"]["audio"] == 30
    assert abs(info["starts"]["audio"] - 3.0) < 0.02
