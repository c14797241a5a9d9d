"""The consumer's per-packet rewriting, history and feedback, without a network.

A fake egress captures what would be SRTP-protected and sent; packets are parsed
back with aiortc's own parser, so the bytes are checked as a receiver sees them.
"""

from __future__ import annotations

import dataclasses
import struct
import time
from collections.abc import Callable

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
)

from webinar.sfu.consumer import (
    RESEND_INTERVAL,
    RTX_BURST_SECONDS,
    Consumer,
    ConsumerLayout,
)
from webinar.sfu.estimator import BandwidthEstimator
from webinar.sfu.producer import HISTORY_SIZE
from webinar.sfu.rtp import MediaPacket
from webinar.sfu.twcc import TwccSender
from webinar.sfu.types import CloseReason, MediaKind

SSRC, RTX_SSRC = 0x11111111, 0x22222222


class FakeSink:
    """What the real sink offers the consumer: a buffer to write into and a send."""

    def __init__(self) -> None:
        self.rtp: list[bytes] = []
        self.out = memoryview(bytearray(1500))

    def send_out(self, n: int) -> bool:
        self.rtp.append(bytes(self.out[:n]))
        return True

    def send_rtcp(self, data: bytes) -> bool:
        return True


class FakeTransport:
    state = "connected"


class FakeSender:
    def __init__(self) -> None:
        self.transport = FakeTransport()


class FakeTap:
    def __init__(self) -> None:
        self.ssrc = SSRC
        self.rtx_ssrc = RTX_SSRC
        self.sender = FakeSender()
        self._sink = FakeSink()

    def sink(self) -> FakeSink:
        return self._sink


class FakeProducer:
    def __init__(self, kind: MediaKind) -> None:
        self.id = "pr_test"
        self.kind = kind
        self.keyframe_requests = 0
        self.codec = None
        self.sender_report = None
        self.removed = False
        self.simulcast = None
        self.temporal_layers = 3
        self.listening: tuple[int, ...] = ()
        # as Producer's: a single video stream's history, which plain-path consumers share
        self.history: list[MediaPacket | None] = [None] * HISTORY_SIZE

    def request_keyframe(self, layer: int = 0) -> bool:
        self.keyframe_requests += 1
        return True

    def listen(self, consumer: Consumer, layers: tuple[int, ...]) -> None:
        self.listening = layers

    def sender_report_of(self, layer: int) -> None:
        return None

    def remove_consumer(self, consumer: Consumer) -> None:
        self.removed = True


def make_consumer(
    kind: MediaKind = MediaKind.VIDEO,
    *,
    twcc: TwccSender | None = None,
    allocate: Callable[[], None] | None = None,
    estimator: BandwidthEstimator | None = None,
) -> tuple[Consumer, FakeTap, FakeProducer]:
    """A consumer on fake parts, with the default layout (MID id 1, abs-send-time id 3 /
    audio level id 2); with ``twcc``, video also takes the transport-wide number as id 5;
    with ``allocate``, it waits for its first allocation (as a subscriber's does)."""
    tap, producer = FakeTap(), FakeProducer(kind)
    closed: list[CloseReason] = []
    consumer = Consumer(
        producer=producer,  # type: ignore[arg-type]
        tap=tap,  # type: ignore[arg-type]
        estimator=estimator or BandwidthEstimator(),
        on_closed=lambda _c, r: closed.append(r),
        twcc=twcc,
        allocate=allocate,
    )
    video = kind is MediaKind.VIDEO
    consumer.set_layout(
        ConsumerLayout(
            payload_type=97 if video else 111,
            rtx_payload_type=98 if video else None,
            mid="3",
            mid_ext_id=1,
            abs_send_time_ext_id=3 if video else None,
            audio_level_ext_id=None if video else 2,
            twcc_ext_id=5 if twcc is not None else None,
        )
    )
    forward = consumer.forward

    def keep_and_forward(mp: MediaPacket) -> None:
        # what Producer.on_rtp does before forwarding a single video stream's packet
        producer.history[mp.seq & (HISTORY_SIZE - 1)] = mp
        forward(mp)

    consumer.forward = keep_and_forward  # type: ignore[method-assign]
    return consumer, tap, producer


def ext_map(kind: MediaKind) -> HeaderExtensionsMap:
    m = HeaderExtensionsMap()
    exts = [RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid")]
    if kind is MediaKind.VIDEO:
        exts.append(
            RTCRtpHeaderExtensionParameters(
                id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
            )
        )
    else:
        exts.append(
            RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level")
        )
    m.configure(RTCRtpParameters(headerExtensions=exts))
    return m


def packet(seq: int, *, keyframe: bool = False, ts: int = 1000, level: int = -1) -> MediaPacket:
    payload = bytes([0x10, 0x00 if keyframe else 0x01]) + bytes(50)
    return MediaPacket(
        seq=seq,
        timestamp=ts,
        marker=1,
        payload=payload,
        keyframe=keyframe,
        audio_level=level,
        arrival=1.0,
        abs_send_time=b"\x01\x02\x03",
    )


def parse(data: bytes, kind: MediaKind = MediaKind.VIDEO) -> RtpPacket:
    return RtpPacket.parse(data, ext_map(kind))


def test_video_waits_for_keyframe_then_rewrites_everything() -> None:
    consumer, tap, producer = make_consumer()
    consumer.forward(packet(70000))  # paused: nothing
    assert tap._sink.rtp == []
    consumer.resume()
    assert producer.keyframe_requests == 1  # a new subscriber asks for a keyframe at once
    consumer.forward(packet(70001))  # not a keyframe: dropped
    assert tap._sink.rtp == []
    consumer.forward(packet(70002, keyframe=True, ts=5000))
    consumer.forward(packet(70003, ts=8000))
    first, second = (parse(d) for d in tap._sink.rtp)
    assert first.ssrc == second.ssrc == SSRC
    assert first.payload_type == 97
    assert second.sequence_number == (first.sequence_number + 1) & 0xFFFF
    assert (second.timestamp - first.timestamp) & 0xFFFFFFFF == 3000
    assert first.extensions.mid == "3"
    assert first.extensions.abs_send_time == 0x010203
    assert first.payload == packet(0, keyframe=True).payload


def test_pause_resume_never_reuses_a_sequence_number() -> None:
    consumer, tap, _ = make_consumer()
    consumer.resume()
    for i in range(5):
        consumer.forward(packet(100 + i, keyframe=i == 0))
    consumer.pause()
    consumer.resume()
    consumer.forward(packet(103))  # late packet from before: dropped while waiting
    consumer.forward(packet(200, keyframe=True))
    consumer.forward(packet(150))  # older than the restart point: never forwarded
    seqs = [parse(d).sequence_number for d in tap._sink.rtp]
    assert len(seqs) == len(set(seqs)) == 6
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(6)]


def test_sequence_numbers_wrap_around() -> None:
    consumer, tap, _ = make_consumer()
    consumer._n.highest_out = (1 << 16) + 65533  # next packet goes out as 65534
    consumer.resume()
    for i in range(4):
        consumer.forward(packet(10 + i, keyframe=i == 0))
    assert [parse(d).sequence_number for d in tap._sink.rtp] == [65534, 65535, 0, 1]


async def test_nack_resends_as_rtx_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer, tap, _ = make_consumer()
    consumer.resume()
    for i in range(10):
        consumer.forward(packet(500 + i, keyframe=i == 0, ts=100 * i))
    sent = [parse(d) for d in tap._sink.rtp]
    lost = [sent[3].sequence_number, sent[4].sequence_number, 4242]  # 4242 never sent
    nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=SSRC)
    nack.lost = lost
    now = [100.0]
    monkeypatch.setattr("webinar.sfu.consumer.time.monotonic", lambda: now[0])
    consumer.handle_rtcp(nack)
    rtx = [parse(d) for d in tap._sink.rtp[10:]]
    assert [p.ssrc for p in rtx] == [RTX_SSRC, RTX_SSRC]
    assert [p.payload_type for p in rtx] == [98, 98]
    assert [struct.unpack("!H", p.payload[:2])[0] for p in rtx] == lost[:2]
    assert rtx[0].payload[2:] == sent[3].payload
    assert rtx[1].sequence_number == (rtx[0].sequence_number + 1) & 0xFFFF
    assert rtx[0].timestamp == sent[3].timestamp
    # a storm of repeated NACKs inside 100 ms resends nothing more
    for _ in range(50):
        consumer.handle_rtcp(nack)
    assert len(tap._sink.rtp) == 12
    assert consumer.stats.resend_suppressed == 100
    now[0] += RESEND_INTERVAL + 0.01
    consumer.handle_rtcp(nack)
    assert len(tap._sink.rtp) == 14


async def test_a_paused_consumer_resends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paused (a congestion cut took the stream off), its tile shows no picture and its
    resume starts at a keyframe: a NACK for what was lost before resends nothing (it kept
    the bottleneck's queue full for the streams still shown)."""
    consumer, tap, _ = make_consumer()
    consumer.resume()
    for i in range(10):
        consumer.forward(packet(500 + i, keyframe=i == 0, ts=100 * i))
    sent = [parse(d) for d in tap._sink.rtp]
    nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=SSRC)
    nack.lost = [sent[3].sequence_number]
    consumer.handle_rtcp(nack)  # forwarding: resent
    assert len(tap._sink.rtp) == 11 and consumer.stats.retransmitted == 1
    nack.lost = [sent[4].sequence_number]
    consumer.pause()
    consumer.handle_rtcp(nack)
    assert len(tap._sink.rtp) == 11 and consumer.stats.retransmitted == 1


def test_plain_path_history_is_the_producers_by_offset() -> None:
    """A plain-path consumer keeps no history of its own: a NACKed output number maps to the
    producer's packet by the consumer's offset, across a 16-bit wrap, and numbers sent before
    a restart (another offset) map to nothing rather than to the wrong packet."""
    consumer, tap, producer = make_consumer()
    assert consumer._hist_mp == []  # (only the layered path keeps one)
    consumer._n.highest_out = (1 << 16) + 65530
    consumer.resume()
    for i in range(10):
        consumer.forward(packet(900 + i, keyframe=i == 0))
    first = [parse(d) for d in tap._sink.rtp]
    assert [p.sequence_number for p in first][5:7] == [0, 1]  # wrapped
    for p in first:
        mp = consumer.history_packet(p.sequence_number)
        assert mp is not None and mp.payload == p.payload
    assert consumer.history_packet((first[-1].sequence_number + 1) & 0xFFFF) is None
    consumer.pause()
    consumer.resume()  # a restart: new offset from the next keyframe
    for i in range(3):
        consumer.forward(packet(2000 + i, keyframe=i == 0))
    after = [parse(d) for d in tap._sink.rtp[10:]]
    assert after[0].sequence_number == (first[-1].sequence_number + 1) & 0xFFFF
    assert consumer.history_packet(after[1].sequence_number) is producer.history[2001 & 1023]
    assert consumer.history_packet(first[3].sequence_number) is None  # before the restart
    assert consumer.retransmit([first[3].sequence_number, after[2].sequence_number]) == 1


async def test_pli_and_remb_and_receiver_reports() -> None:
    consumer, _tap, producer = make_consumer()
    consumer.resume()
    before = producer.keyframe_requests
    consumer.handle_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=SSRC))
    assert producer.keyframe_requests == before + 1
    consumer.handle_rtcp(
        RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(750_000, [SSRC]))
    )
    # RTT: the report names our last SR (LSR) and how long the subscriber held it (DLSR)
    consumer.forward(packet(1, keyframe=True))
    sr = consumer.sender_report(time.time() - 0.25)
    assert sr is not None
    lsr = (sr.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF
    report = RtcpReceiverInfo(
        ssrc=SSRC,
        fraction_lost=64,
        packets_lost=3,
        highest_sequence=1,
        jitter=0,
        lsr=lsr,
        dlsr=int(0.2 * 65536),
    )
    consumer.handle_rtcp(RtcpRrPacket(ssrc=1, reports=[report]))
    assert consumer.stats.fraction_lost == 64
    assert consumer.rtt == pytest.approx(0.05, abs=0.01)
    est = consumer._estimator.estimate(now=time.monotonic())
    assert est.bitrate_bps == 750_000
    assert est.loss == pytest.approx(0.3 * 0.25)
    assert est.rtt == pytest.approx(0.05, abs=0.01)
    # a report about another SR (or none) leaves the RTT as it was
    consumer.handle_rtcp(
        RtcpRrPacket(
            ssrc=1,
            reports=[
                report.__class__(
                    ssrc=SSRC,
                    fraction_lost=0,
                    packets_lost=3,
                    highest_sequence=2,
                    jitter=0,
                    lsr=0,
                    dlsr=0,
                )
            ],
        )
    )
    assert consumer.rtt == pytest.approx(0.05, abs=0.01)


def test_audio_starts_at_once_and_carries_level() -> None:
    consumer, tap, producer = make_consumer(MediaKind.AUDIO)
    consumer.resume()
    assert producer.keyframe_requests == 0
    consumer.forward(packet(9, level=0x80 | 30))
    consumer.forward(packet(10))
    first, second = (parse(d, MediaKind.AUDIO) for d in tap._sink.rtp)
    assert first.payload_type == 111
    assert first.extensions.audio_level == (True, 30)
    assert first.extensions.mid == "3"
    assert second.extensions.audio_level is None


def test_sender_report_counters_follow_forwarding() -> None:
    consumer, tap, _ = make_consumer()
    consumer.resume()
    consumer.forward(packet(1, keyframe=True, ts=90000))
    consumer.forward(packet(2, ts=93000))
    sr = consumer.sender_report(now_wall=1000.0)
    assert sr is not None
    assert sr.ssrc == SSRC
    info = sr.sender_info
    assert info.packet_count == 2
    assert info.octet_count == 2 * len(packet(0).payload)
    assert info.rtp_timestamp == parse(tap._sink.rtp[-1]).timestamp


def test_close_detaches_and_reports() -> None:
    consumer, _, producer = make_consumer()
    consumer.close()
    assert consumer.closed and producer.removed
    consumer.forward(packet(1, keyframe=True))  # closed consumers are paused


def test_audio_restart_continues_without_a_gap() -> None:
    consumer, tap, _ = make_consumer(MediaKind.AUDIO)
    consumer.resume()
    consumer.forward(packet(10))
    consumer.forward(packet(11))
    consumer.restart()  # the producer was paused and resumed: input jumped ahead
    consumer.forward(packet(500))
    seqs = [parse(d, MediaKind.AUDIO).sequence_number for d in tap._sink.rtp]
    assert seqs == [seqs[0], (seqs[0] + 1) & 0xFFFF, (seqs[0] + 2) & 0xFFFF]


def test_unwanted_consumer_stays_silent_until_wanted() -> None:
    consumer, tap, producer = make_consumer()
    consumer.want(False)
    consumer.resume()  # e.g. the subscriber answered: still not wanted
    consumer.forward(packet(1, keyframe=True))
    assert tap._sink.rtp == []
    consumer.want(True)
    assert producer.keyframe_requests == 1
    consumer.forward(packet(2, keyframe=True))
    assert len(tap._sink.rtp) == 1


def test_a_report_on_an_older_sr_gives_a_raw_round_trip_and_rtx_blocks_do_not_count() -> None:
    consumer, _tap, _producer = make_consumer()
    consumer.resume()
    consumer.forward(packet(1, keyframe=True))
    now = time.time()
    first = consumer.sender_report(now - 0.5)  # a probe's SR ...
    consumer.forward(dataclasses.replace(packet(2), arrival=2.0))  # (its NTP time moves on)
    later = consumer.sender_report(now - 0.1)  # ... and one sent after it
    assert first is not None and later is not None
    assert first.sender_info.ntp_timestamp != later.sender_info.ntp_timestamp
    assert first is not None and later is not None

    def block(ssrc: int, sr: RtcpSrPacket, held: float, lost: int) -> RtcpReceiverInfo:
        return RtcpReceiverInfo(
            ssrc=ssrc,
            fraction_lost=lost,
            packets_lost=0,
            highest_sequence=1,
            jitter=0,
            lsr=(sr.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF,
            dlsr=int(held * 65536),
        )

    # the RTX stream's block (old dropped padding) is no news about this stream
    consumer.on_report(block(consumer.rtx_ssrc, first, 0.3, 128))
    assert consumer._estimator.estimate(time.monotonic()).sample is None
    # the media block names the older SR: a round trip of ~0.2 s, and its own loss
    consumer.on_report(block(SSRC, first, 0.3, 26))
    sample = consumer._estimator.estimate(time.monotonic()).sample
    assert sample is not None
    assert sample.rtt == pytest.approx(0.2, abs=0.02)
    assert sample.lost == pytest.approx(26 / 256)
    assert time.monotonic() - sample.sr_sent == pytest.approx(0.5, abs=0.05)


def test_a_reports_packet_count_is_the_advance_of_its_highest_sequence() -> None:
    consumer, _tap, _producer = make_consumer()
    consumer.resume()

    def block(highest: int, lost: int) -> RtcpReceiverInfo:
        return RtcpReceiverInfo(
            ssrc=SSRC,
            fraction_lost=lost,
            packets_lost=0,
            highest_sequence=highest,
            jitter=0,
            lsr=0,
            dlsr=0,
        )

    def packets() -> int | None:
        return consumer._estimator.estimate(time.monotonic()).report_packets

    consumer.on_report(block(0xFFFFFFF0, 128))  # the first covers an unknown stretch
    assert packets() == 0
    assert not consumer._estimator.estimate(time.monotonic()).report_significant()
    time.sleep(0.03)  # another RTCP packet
    consumer.on_report(block(0x00000010, 64))  # across the 32-bit wrap: 32 packets
    assert packets() == 32
    time.sleep(0.03)
    consumer.on_report(block(0x00000008, 0))  # backwards: the receiver started over
    assert packets() == 0


async def test_retransmissions_keep_to_their_share_of_the_budget_and_a_round_trip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A NACK of many packets on a slow link is answered within the subscriber's
    retransmission allowance (a burst of retransmissions into a shallow bottleneck
    queue is lost again), and a packet is resent at most once per round trip."""
    consumer, tap, _ = make_consumer()
    now = [100.0]
    monkeypatch.setattr("webinar.sfu.consumer.time.monotonic", lambda: now[0])
    consumer.resume()
    for i in range(40):
        consumer.forward(packet(500 + i, keyframe=i == 0, ts=100 * i))
    sent = [parse(d) for d in tap._sink.rtp]
    size = len(sent[1].payload)
    # at once: what the rate allows in RTX_BURST_SECONDS, at least two full-size packets
    # (these test packets are small: full size is theirs here)
    monkeypatch.setattr("webinar.sfu.consumer.RTX_PACKET", size)
    burst = 2
    consumer._estimator.rtx_bps = int(2 * size * 8 / RTX_BURST_SECONDS)
    consumer._rtx_at = now[0] - 10  # a full allowance
    nack = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=SSRC)
    nack.lost = [p.sequence_number for p in sent[5:35]]
    consumer.handle_rtcp(nack)
    first = len(tap._sink.rtp) - 40
    assert 1 <= first <= burst
    consumer.rtt = 0.3
    now[0] += 0.2  # more allowance, but within a round trip of the first resends
    consumer.handle_rtcp(nack)
    resent = [struct.unpack("!H", parse(d).payload[:2])[0] for d in tap._sink.rtp[40:]]
    assert len(resent) == len(set(resent))  # none twice within the round trip
