"""Transport-wide congestion control: feedback parsing, the delay detector, SDP."""

from __future__ import annotations

import math
import random
import struct
import time
from collections.abc import Callable

import pytest

from webinar.sfu import twcc as twcc_mod
from webinar.sfu.estimator import CUT_FLOOR, BandwidthEstimator, BudgetController, NackBurst
from webinar.sfu.twcc import (
    TWCC_URI,
    DelayState,
    TrendlineDetector,
    TwccSender,
    answered_twcc,
    build_feedback,
    offer_twcc,
    parse_feedback,
    split_rtcp,
)


def test_feedback_round_trip_with_losses_and_large_deltas() -> None:
    arrivals: list[float | None] = [1000.0, 1000.25, None, 1010.0, 1200.0, None, 900.0, 905.5]
    fb = parse_feedback(build_feedback(65534, arrivals, fb_count=7))
    assert fb.base_seq == 65534 and fb.count == 8 and fb.fb_count == 7
    assert [s for s, _ in fb.arrivals] == [65534, 65535, 0, 1, 2, 3, 4, 5]
    got = [a for _, a in fb.arrivals]
    for want, have in zip(arrivals, got, strict=True):
        if want is None:
            assert have is None
        else:
            assert have == pytest.approx(want, abs=0.25)


def test_a_run_length_chunk_and_a_one_bit_vector() -> None:
    # base 100, 20 packets: a run of 10 "received, small delta", then a one-bit vector of
    # 14 (received, lost, received...; only 10 count); reference time 2 (128 ms).
    run = struct.pack("!H", (1 << 13) | 10)
    bits = [1, 0] * 7
    vector = 0x8000
    for i, b in enumerate(bits):
        vector |= b << (13 - i)
    received = 10 + 5
    body = (
        struct.pack("!IIHH", 1, 2, 100, 20)
        + (2).to_bytes(3, "big")
        + b"\x03"
        + run
        + struct.pack("!H", vector)
        + bytes([4] * received)  # 1 ms each
    )
    body += b"\x00" * (-len(body) % 4)
    data = struct.pack("!BBH", 0x8F, 205, (len(body) + 4) // 4 - 1) + body
    fb = parse_feedback(data)
    assert len(fb.arrivals) == 20
    assert fb.arrivals[0] == (100, 129.0)
    assert fb.arrivals[9] == (109, 138.0)
    assert fb.arrivals[10] == (110, 139.0)
    assert fb.arrivals[11] == (111, None)
    assert sum(a is not None for _, a in fb.arrivals) == received


def test_malformed_feedback_is_refused() -> None:
    good = build_feedback(1, [10.0, 11.0, 12.0])
    with pytest.raises(ValueError):
        parse_feedback(good[:18])
    with pytest.raises(ValueError):
        parse_feedback(good[:21])  # chunks promise deltas that are not there
    with pytest.raises(ValueError):
        parse_feedback(bytes([0x81]) + good[1:])  # FMT 1: a NACK


def test_split_rtcp_takes_out_the_feedback_packets() -> None:
    rr = bytes.fromhex("80c90001") + b"\x00\x00\x00\x01"
    fb = build_feedback(5, [1.0, 2.0])
    twcc, rest = split_rtcp(rr + fb + rr)
    assert twcc == [fb] and rest == rr + rr
    assert split_rtcp(rr) == ([], rr)
    assert split_rtcp(rr + rr) == ([], rr + rr)
    assert split_rtcp(fb + rr) == ([fb], rr)
    assert split_rtcp(rr + fb) == ([fb], rr)
    assert split_rtcp(fb + fb) == ([fb, fb], b"")


def _feed(det: TrendlineDetector, delays: list[float], interval: float = 10.0) -> list[int]:
    states = []
    for i, d in enumerate(delays):
        state = det.packet(i * interval, i * interval + d)
        if state is not None:
            states.append(state)
    return states


def test_a_steady_delay_is_no_overuse() -> None:
    det = TrendlineDetector()
    states = _feed(det, [20.0 + (i % 3) for i in range(300)])
    assert DelayState.OVERUSE not in states


def test_a_queue_that_builds_is_overuse_within_a_few_groups() -> None:
    det = TrendlineDetector()
    delays = [20.0 + (i % 3) for i in range(100)]
    # the link falls to half what is sent: the queue grows by 5 ms every 10 ms
    delays += [delays[-1] + 5.0 * (i + 1) for i in range(40)]
    states = _feed(det, delays)
    first = states.index(DelayState.OVERUSE)
    assert first >= 98 - 2  # not before the queue
    assert first - 98 <= 12  # within ~120 ms of it


@pytest.mark.parametrize(("jitter", "interval"), [(30.0, 10.0), (30.0, 33.0), (300.0, 33.0)])
def test_random_jitter_is_no_overuse(jitter: float, interval: float) -> None:
    import random

    rnd = random.Random(7)
    det = TrendlineDetector()
    states = _feed(det, [rnd.uniform(0.0, jitter) for _ in range(2000)], interval)
    episodes = sum(
        1 for a, b in zip([0, *states], states, strict=False) if b == DelayState.OVERUSE != a
    )
    assert episodes <= 2, episodes


def test_sender_calls_overuse_with_what_got_through(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(twcc_mod.time, "monotonic", lambda: clock[0])
    calls: list[int] = []
    sender = TwccSender(on_overuse=calls.append)
    arrivals: list[float] = []
    queue = 0.0
    for i in range(200):
        clock[0] = 100.0 + i * 0.010  # 1250 bytes every 10 ms: 1 Mbit/s
        seq = sender.stamp(1250)
        assert seq == i
        if i >= 100:  # then the link carries 500 kbit/s: 20 ms a packet
            queue += 10.0
        arrivals.append(5000.0 + i * 10.0 + 30.0 + queue)
    for start in range(0, 200, 10):
        sender.on_feedback(build_feedback(start, list(arrivals[start : start + 10])), 0.0)
    assert sender.feedbacks == 20
    assert len(calls) == 1
    assert 400_000 <= calls[0] <= 700_000


@pytest.mark.parametrize(("link_gap_ms", "expect_ratio"), [(10.0, 1.0), (12.5, 0.8)])
def test_delivery_is_how_fast_packets_left_and_arrived(
    monkeypatch: pytest.MonkeyPatch, link_gap_ms: float, expect_ratio: float
) -> None:
    """1 Mbit/s sent for 0.3 s: over a path that carries it, it arrives at 1 Mbit/s; behind
    an 800 kbit/s bottleneck (a queue that paces the packets) at 800 kbit/s. Only the
    packets sent in the window asked about count."""
    clock = [100.0]
    monkeypatch.setattr(twcc_mod.time, "monotonic", lambda: clock[0])
    sender = TwccSender()
    arrivals = []
    for i in range(40):
        clock[0] = 100.0 + i * 0.010  # 1250 bytes every 10 ms
        sender.stamp(1250)
        arrivals.append(5000.0 + i * link_gap_ms)
    for start in range(0, 40, 10):
        sender.on_feedback(build_feedback(start, arrivals[start : start + 10]), 0.0)
    took = sender.delivery(100.05, 100.35)
    assert took is not None
    sent, arrived = took
    assert sent == pytest.approx(1_000_000, rel=0.01)
    assert arrived / sent == pytest.approx(expect_ratio, rel=0.01)
    assert sender.delivery(100.50, 100.90) is None  # nothing sent then
    assert sender.delay_rise(100.5, 100.9) is None and not sender._delays  # clean: not kept
    assert sender.delivery(100.05, 100.07) is None  # too few packets to tell


@pytest.mark.parametrize("queue", [False, True])
def test_delay_rise_sees_a_queue_through_random_jitter(
    monkeypatch: pytest.MonkeyPatch, queue: bool
) -> None:
    """Under 0-300 ms of random jitter the least one-way delay of the packets late in a
    probe matches that of the packets before it, unless a queue built meanwhile (then it
    is higher by the queue)."""
    import random

    rnd = random.Random(11)
    clock = [100.0]
    monkeypatch.setattr(twcc_mod.time, "monotonic", lambda: clock[0])
    sender = TwccSender()
    arrivals = []
    for i in range(140):  # one packet every 10 ms: 1 s before the probe, 0.4 s of it
        clock[0] = 100.0 + i * 0.010
        sender.stamp(1200)
        queued = 3.0 * (i - 100) if queue and i >= 100 else 0.0  # +3 ms a packet
        arrivals.append(5000.0 + i * 10.0 + rnd.uniform(0.0, 300.0) + queued)
    for start in range(0, 140, 10):
        sender.on_feedback(build_feedback(start, arrivals[start : start + 10]), 0.0)
    rise = sender.delay_rise(101.0, 101.4)
    assert rise is not None
    if queue:
        assert rise > 60.0  # 60-120 ms of queue late in the probe
    else:
        assert rise < 60.0
    assert sender.delay_rise(103.0, 103.4) is None  # nothing known then


def test_a_delay_overuse_cuts_the_budget_to_what_got_through_not_below_one_video() -> None:
    e = BandwidthEstimator()
    alarms: list[int] = []
    e.on_alarm = lambda: alarms.append(1)
    c = BudgetController(start_bps=2_000_000)
    e.on_twcc(10.0)
    e.on_remb(100_000, 10.0)  # REMB leaves out what carries transport-wide numbers
    est = e.estimate(10.0)
    assert est.twcc and est.bitrate_bps is None
    c.update(est, 10.0, sending_bps=1_800_000)
    assert c.budget_bps == 2_000_000
    e.on_delay_overuse(1_000_000, 10.1)
    assert alarms == [1]
    c.update(e.estimate(10.1), 10.1, sending_bps=1_800_000)
    assert c.budget_bps == 850_000
    e.on_delay_overuse(300_000, 10.2)  # within the drain of the cut: no second one
    c.update(e.estimate(10.2), 10.2, sending_bps=900_000)
    assert c.budget_bps == 850_000
    e.on_delay_overuse(300_000, 11.0)
    c.update(e.estimate(11.0), 11.0, sending_bps=800_000)
    assert c.budget_bps == CUT_FLOOR  # the first reaction keeps one video


def test_offer_and_answer_sdp() -> None:
    offer = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96",
            "a=mid:0",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
            "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
            "a=mid:1",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "a=rtpmap:97 VP8/90000",
            "a=rtcp-fb:97 nack",
            "a=rtcp-fb:97 goog-remb",
            "a=rtpmap:98 rtx/90000",
            "",
        ]
    )
    munged = offer_twcc(offer)
    assert f"a=extmap:5 {TWCC_URI}" in munged
    assert "a=rtcp-fb:97 transport-cc" in munged
    assert munged.count(TWCC_URI) == 1  # not on audio
    assert offer_twcc(munged) == munged
    assert answered_twcc(munged) == {"1": 5}
    assert answered_twcc(munged.replace("a=rtcp-fb:97 transport-cc", "")) == {}


def test_steady_random_loss_does_not_block_probes() -> None:
    from webinar.sfu.estimator import BudgetState

    e = BandwidthEstimator()
    c = BudgetController(start_bps=600_000)
    probed = held = 0
    now = 0.0
    for _ in range(200):  # 20 s: a report every 0.1 s saying 5 % lost, TWCC clean
        now += 0.1
        e.on_receiver_report(13, now, packets=40)
        e.on_twcc(now, clean=True)
        was = c.state
        c.update(e.estimate(now), now, wanted_bps=5_000_000, sending_bps=c.budget_bps)
        probed += c.state is BudgetState.PROBING and was is not BudgetState.PROBING
        held += was is BudgetState.PROBING and c.state is BudgetState.SETTLING
    assert probed >= 5 and held >= 5
    assert c.budget_bps > 2_000_000


def test_a_consumer_with_twcc_stamps_each_packet() -> None:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    from webinar.sfu.rtp import MediaPacket

    from .test_consumer import make_consumer

    sender = TwccSender()
    consumer, tap, _producer = make_consumer(twcc=sender)
    # the native fan-out stamps in the sender's own arrays (test_native_fanout.py compares)
    assert consumer._native_layout is not None
    assert consumer._native_layout[7] is sender.native
    consumer.resume()
    ext = HeaderExtensionsMap()
    ext.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(id=5, uri=TWCC_URI),
            ]
        )
    )
    for i in range(3):
        mp = MediaPacket(
            seq=1000 + i,
            timestamp=90 * i,
            marker=i == 2,
            payload=bytes([0x10, 0, 0, 0]) + b"x" * 100,
            keyframe=True,
            audio_level=-1,
            arrival=0.0,
            abs_send_time=b"\x00\x00\x00",
        )
        consumer.forward(mp)  # (make_consumer's forward keeps it in the producer's history)
    assert consumer.retransmit([(consumer._n.highest_out - 1) & 0xFFFF]) == 1
    sent = tap._sink.rtp
    assert len(sent) == 4
    parsed = [RtpPacket.parse(p, ext) for p in sent]
    assert [p.extensions.transport_sequence_number for p in parsed] == [0, 1, 2, 3]
    assert all(p.extensions.mid == "3" for p in parsed)
    assert parsed[3].payload_type == 98  # the retransmission (RTX) is numbered too


# ------------------------------------------------------------------ loss from the feedback


class Receiver:
    """A browser's side of a path, for the loss judgement: packets sent every
    ``interval`` ms arrive ``delay(i)`` ms later unless ``dropped(i)``; transport-wide
    feedback goes out every ``every`` ms, covering the numbers from where the last one
    ended (moved back to a late packet, as libwebrtc's receiver does) to the highest
    received; and each gap is NACKed the moment it shows (Chromium's NACK module)."""

    def __init__(
        self,
        sender: TwccSender,
        delay: Callable[[int], float],
        dropped: Callable[[int], bool] = lambda _i: False,
        interval: float = 5.0,
        every: float = 50.0,
    ) -> None:
        self.sender, self.delay, self.dropped = sender, delay, dropped
        self.interval, self.every = interval, every
        self.nack_bursts: list[float] = []
        self._nacks = NackBurst()

    def run(self, packets: int, padding: Callable[[int], bool] = lambda _i: False) -> None:
        stamped = 0
        arrivals = sorted(
            (i * self.interval + self.delay(i), i) for i in range(packets) if not self.dropped(i)
        )
        received: dict[int, float] = {}
        window = 0
        highest = -1
        t = 0.0
        k = 0
        end = packets * self.interval + 1000.0
        while t < end:
            t += self.every
            while stamped < packets and stamped * self.interval <= t:
                assert self.sender.stamp(1200, padding(stamped)) & 0xFFFF == stamped & 0xFFFF
                stamped += 1
            while k < len(arrivals) and arrivals[k][0] <= t:
                at, seq = arrivals[k]
                k += 1
                if seq < window:
                    window = seq  # a late packet: the next feedback covers it again
                received[seq] = at
                if seq > highest + 1:
                    gap = [s for s in range(highest + 1, seq) if s not in received]
                    rate = self._nacks.on_nack(gap, at / 1000.0) if gap else None
                    if rate is not None:
                        self.nack_bursts.append(rate)
                highest = max(highest, seq)
            if highest >= window:
                covered = [received.get(s) for s in range(window, highest + 1)]
                self.sender.on_feedback(build_feedback(window & 0xFFFF, covered), t / 1000.0)
                window = highest + 1


def test_reordered_packets_are_no_loss_even_though_every_gap_is_nacked() -> None:
    """0-300 ms of jitter, nothing lost: Chromium NACKs what the reordering delays, and
    those NACKs read as loss bursts (the budget was pinned at one video, then audio only);
    the feedback reports the late packets received, so it sees no loss."""
    rng = random.Random(24)
    bursts: list[float] = []
    sender = TwccSender(on_loss_burst=bursts.append)
    path = Receiver(sender, delay=lambda _i: rng.uniform(0.0, 300.0))
    path.run(2000)  # 10 s at 200 packets a second
    assert path.nack_bursts  # what the NACKs said
    assert sender.reordered > 100
    assert bursts == []
    # (a few in the first moments, before any packet had come late: no burst)
    assert sender.lost < 10
    assert sender.loss_wait(10.0) > 0.3  # it learned how late packets come


def test_packets_never_received_are_a_loss_burst_and_padding_is_left_out() -> None:
    """A queue that overflows drops a share of everything: that is a burst, read as soon
    as the feedback after the wait says so; lost padding (a probe's) is no media lost."""
    bursts: list[float] = []
    sender = TwccSender(on_loss_burst=bursts.append)
    path = Receiver(
        sender,
        delay=lambda _i: 20.0,
        dropped=lambda i: 1000 <= i < 1100 and i % 3 == 0,  # 33 % of half a second
    )
    path.run(2000)
    assert path.nack_bursts
    assert sender.lost == 33 and sender.reordered == 0
    assert bursts and 0.2 < bursts[0] < 0.5
    assert sender.loss_wait(10.0) == twcc_mod.LOSS_WAIT_MIN

    quiet: list[float] = []
    padded = TwccSender(on_loss_burst=quiet.append)
    probe = Receiver(padded, delay=lambda _i: 20.0, dropped=lambda i: 1000 <= i < 1100 and i % 2)
    probe.run(2000, padding=lambda i: bool(1000 <= i < 1100 and i % 2))
    assert padded.lost == 0 and quiet == []


def test_steady_random_loss_is_no_loss_burst() -> None:
    rng = random.Random(5)
    bursts: list[float] = []
    sender = TwccSender(on_loss_burst=bursts.append)
    Receiver(sender, delay=lambda _i: 20.0, dropped=lambda _i: rng.random() < 0.05).run(20000)
    assert 800 < sender.lost < 1200
    assert len(bursts) <= 1  # (NackBurst's 1e-4 test: ~1 false burst in 5 minutes)


def test_with_feedback_flowing_a_consumer_leaves_loss_to_it() -> None:
    """The same NACKs make a loss burst without transport-wide feedback (REMB-only
    subscribers, WEBINAR_TWCC=0) and none while its feedback flows."""
    from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket

    from webinar.sfu.rtp import MediaPacket

    from .test_consumer import make_consumer

    for twcc in (False, True):
        estimator = BandwidthEstimator()
        sender = TwccSender()
        consumer, _tap, _producer = make_consumer(
            twcc=sender if twcc else None, estimator=estimator
        )
        consumer.resume()
        for i in range(60):
            consumer.forward(
                MediaPacket(
                    seq=1000 + i,
                    timestamp=3000 * (i // 2),
                    marker=i % 2 == 1,
                    payload=bytes([0x10, 0, 0, 0]) + b"x" * 100,
                    keyframe=i < 2,
                    audio_level=-1,
                    arrival=0.0,
                    abs_send_time=b"\x00\x00\x00",
                )
            )
        if twcc:
            sender.on_feedback(build_feedback(0, [1.0, 2.0]), time.monotonic())
        first = (consumer._n.highest_out - 59) & 0xFFFF
        for n in range(4):
            consumer.handle_rtcp(
                RtcpRtpfbPacket(
                    fmt=RTCP_RTPFB_NACK,
                    ssrc=1,
                    media_ssrc=consumer.ssrc,
                    lost=[(first + 10 * n + j) & 0xFFFF for j in range(4)],
                )
            )
            time.sleep(0.012)
        burst = estimator.estimate(time.monotonic()).burst_loss
        assert (burst is None) if twcc else (burst is not None), (twcc, burst)


def test_with_feedback_flowing_loss_figures_come_from_it_not_from_receiver_reports() -> None:
    """A receiver report counts a packet a reordering path delays past its end as lost
    (10-35 % under 0-300 ms of jitter with nothing lost, which cut the budget to audio
    only); while transport-wide feedback flows, its own loss reports stand in for them,
    and a report gives its round trip alone."""
    from aiortc.rtp import RtcpReceiverInfo

    from .test_consumer import make_consumer

    reports: list[tuple[int, int]] = []
    sender = TwccSender(on_loss_report=lambda lost, n: reports.append((lost, n)))
    path = Receiver(sender, delay=lambda _i: 20.0, dropped=lambda i: i % 10 == 0)
    path.run(1000)  # 5 s
    assert len(reports) >= 4
    lost, packets = map(sum, zip(*reports, strict=True))
    assert packets > 700 and 0.08 < lost / packets < 0.12

    for flowing in (False, True):
        estimator = BandwidthEstimator()
        sender = TwccSender()
        consumer, _tap, _producer = make_consumer(twcc=sender, estimator=estimator)
        if flowing:
            sender.on_feedback(build_feedback(0, [1.0]), time.monotonic())
        for highest in (1000, 1100):
            consumer.on_report(
                RtcpReceiverInfo(
                    ssrc=consumer.ssrc,
                    fraction_lost=64,
                    packets_lost=25,
                    highest_sequence=highest,
                    jitter=0,
                    lsr=0,
                    dlsr=0,
                )
            )
        estimate = estimator.estimate(time.monotonic())
        if flowing:
            assert estimate.report_loss is None and estimate.loss == 0.0
        else:
            assert estimate.report_loss == 0.25 and estimate.loss > 0.0


def native_stamp(sender: TwccSender, size: int) -> int:
    """What ``_fanout.c`` does to stamp a packet: it writes only the arrays in ``native``."""
    next_seq, sent_at, sent_seq, sizes = sender.native
    seq = next_seq[0]
    next_seq[0] = (seq + 1) & 0xFFFF
    slot = seq & (len(sent_at) - 1)
    sent_at[slot] = time.monotonic() * 1000.0
    sent_seq[slot] = seq
    sizes[slot] = size
    return seq


def test_a_padding_mark_does_not_outlive_its_packet_when_the_native_path_reuses_the_number() -> (
    None
):
    """Padding (a probe's, stamped in Python) is left out of the loss; the native fan-out
    stamps media without touching the padding marks. When the 16-bit number comes round
    again on a media packet it stamps, that packet's loss counts (a mark keyed by the number
    took it for the old padding and left it out)."""
    bursts: list[float] = []
    sender = TwccSender(on_loss_burst=bursts.append)
    assert sender.stamp(1200, padding=True) == 0
    for _ in range(0xFFFF):
        native_stamp(sender, 1200)
    assert native_stamp(sender, 1200) == 0  # a media packet with the padding's number
    sender.on_feedback(build_feedback(0, [None]), 100.0)  # reported missing ...
    sender.on_feedback(build_feedback(0, [None]), 101.0)  # ... and still missing a second on
    assert sender.lost == 1


@pytest.mark.parametrize("growth_ms_per_s", [0.0, 30.0])
def test_a_slow_queue_under_random_jitter_is_an_overuse(
    monkeypatch: pytest.MonkeyPatch, growth_ms_per_s: float
) -> None:
    """Under 0-300 ms of random jitter the gradient sees nothing; a budget a few per cent
    over the link builds a queue slowly (30 ms a second: 4 % over), which raises the least
    one-way delay of everything sent: an overuse well before a 150 ms queue would overflow
    (5 s), one per building queue, and none without one."""
    rnd = random.Random(5)
    clock = [100.0]
    monkeypatch.setattr(twcc_mod.time, "monotonic", lambda: clock[0])
    calls: list[tuple[float, int]] = []
    sender = TwccSender(on_overuse=lambda bps: calls.append((clock[0], bps)))
    arrivals: list[float] = []
    n = 1200  # 12 s, a 1000-byte packet every 10 ms: 800 kbit/s
    for i in range(n):
        clock[0] = 100.0 + i * 0.010
        sender.stamp(1000)
        queue = growth_ms_per_s * max(0.0, i * 0.010 - 2.0)  # builds from 2 s on
        arrivals.append(5000.0 + i * 10.0 + 20.0 + queue + rnd.uniform(0.0, 300.0))
        if i % 10 == 9:  # feedback every 100 ms, on what was sent ~400 ms before
            end = i - 40
            if end >= 10:
                clock_now = clock[0]
                clock[0] = 100.0 + end * 0.010  # the verdict's time is what it covers
                sender.on_feedback(build_feedback(end - 9, arrivals[end - 9 : end + 1]), 0.0)
                clock[0] = clock_now
    assert not sender.detector.clean  # the gradient's own verdicts are not to be trusted
    if not growth_ms_per_s:
        assert calls == []
        return
    assert calls, "the queue was never seen"
    first_at, acked = calls[0]
    assert first_at < 100.0 + 2.0 + 3.0  # before it held 90 ms (of a 150 ms queue)
    assert 500_000 < acked < 1_100_000  # what got through, about the link's rate
    assert len(calls) <= 4  # a verdict needs a new baseline each time (~1.5 s)


def _bursty_path(
    monkeypatch: pytest.MonkeyPatch,
    *,
    fall_ms: float | None,
    after_kbit: float = 600.0,
    link_kbit: float = 4000.0,
    keyframe_packets: int = 20,
    noise_ms: float = 10.0,
    seed: int = 1,
    when_made: bool = False,
) -> tuple[list[float], float | None]:
    """A camera's traffic through a FIFO bottleneck: a 5-packet picture every ~50 ms
    (1.2 Mbit/s; every 40th a keyframe of ``keyframe_packets``), audio every 20 ms, and
    0-``noise_ms`` of arrival noise (a real receiver's clock); the link falls from
    ``link_kbit`` to ``after_kbit`` at ``fall_ms``. Feedback every 60 ms of arrival time,
    30 ms on its way back. Returns the times (send ms) of the overuse verdicts (of the newest
    packet each covers; with ``when_made``, when it was made) and the send time at which the
    queue first held 150 ms (None: never)."""
    rnd = random.Random(seed)
    sends: list[tuple[float, int]] = []
    t, n = 0.0, 0
    while t < 5000.0:
        for j in range(keyframe_packets if n % 40 == 10 else 5):
            sends.append((t + j * 0.2, 1200))
        n += 1
        t += 50.0 + rnd.uniform(-3.0, 3.0)
    a = 0.3
    while a < 5000.0:
        sends.append((a, 120))
        a += 20.0
    sends.sort()
    arrivals: list[float] = []
    last, full_at = -1e9, None
    for sent, size in sends:
        kbit = after_kbit if fall_ms is not None and sent >= fall_ms else link_kbit
        last = max(sent + 30.0, last + size * 8 / kbit)
        if full_at is None and last - sent - 30.0 >= 150.0:
            full_at = sent
        arrivals.append(last + rnd.uniform(0.0, noise_ms))
    clock = [0.0]
    monkeypatch.setattr(twcc_mod.time, "monotonic", lambda: clock[0])
    verdicts: list[float] = []
    sender = TwccSender(
        on_overuse=lambda _bps: verdicts.append(clock[0] * 1000 if when_made else newest_sent[0])
    )
    newest_sent = [0.0]
    reported, k = 0, 1
    for i, (sent, size) in enumerate(sends):
        while k * 60.0 + 30.0 <= sent:
            hi = reported
            while hi < i and arrivals[hi] < k * 60.0:
                hi += 1
            if hi > reported:
                clock[0] = (k * 60.0 + 30.0) / 1000
                newest_sent[0] = sends[hi - 1][0]
                sender.on_feedback(build_feedback(reported, arrivals[reported:hi]), clock[0])
                reported = hi
            k += 1
        clock[0] = sent / 1000
        sender.stamp(size)
    return verdicts, full_at


def test_a_link_that_falls_is_seen_a_feedback_before_the_gradient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A link that falls from 4 to 0.6 Mbit/s under 1.2 Mbit/s of pictures: the step watch
    speaks on the first feedback whose newest packet stands 10 ms over the floor, before the
    gradient alone (whose threshold the arrival noise raised), and before the queue held
    150 ms of what was sent."""
    verdicts, full_at = _bursty_path(monkeypatch, fall_ms=3000.0)
    with monkeypatch.context() as m:
        m.setattr(twcc_mod, "STEP_RISE_MS", math.inf)  # the gradient alone
        gradient, _ = _bursty_path(m, fall_ms=3000.0)
    assert full_at is not None and gradient
    assert 3000.0 < verdicts[0] <= full_at
    assert verdicts[0] < gradient[0]


def test_bursts_a_link_drains_are_no_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """No fall: keyframes of 60 packets (72 kB: 140 ms of queue at 4 Mbit/s) on a link with
    room for the rate add no verdict to the gradient's. They do lift a feedback's least
    delay far enough: without the rate check they would be steps."""
    with monkeypatch.context() as m:
        m.setattr(twcc_mod, "STEP_RISE_MS", math.inf)  # the gradient alone
        gradient, _ = _bursty_path(m, fall_ms=None, keyframe_packets=60)
    with_step, _ = _bursty_path(monkeypatch, fall_ms=None, keyframe_packets=60)
    assert with_step == gradient
    with monkeypatch.context() as m:
        m.setattr(twcc_mod, "STEP_OVER", math.inf)  # any link reads "under the rate"
        unchecked, _ = _bursty_path(m, fall_ms=None, keyframe_packets=60)
    assert len(unchecked) > len(gradient)


@pytest.mark.parametrize("fall_ms", [2900.0 + 6.0 * i for i in range(20)])
def test_a_link_that_falls_anywhere_in_a_feedback_is_seen_before_the_queue_is_full(
    monkeypatch: pytest.MonkeyPatch, fall_ms: float
) -> None:
    """Wherever in a feedback's span (60 ms) the link falls (4 to 0.6 Mbit/s under 1.2), the
    verdict is made before the queue holds 150 ms. A queue that began in a feedback's last
    milliseconds shows only in its newest packets, and the next feedback's least is still
    the queue's own start: judged by the feedbacks' least, 12 of these 20 were late."""
    verdicts, full_at = _bursty_path(monkeypatch, fall_ms=fall_ms, when_made=True)
    assert full_at is not None
    after = [v for v in verdicts if v >= fall_ms]
    assert after and after[0] <= full_at, (after[:1], full_at)
