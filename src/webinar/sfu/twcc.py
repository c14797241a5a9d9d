"""Transport-wide congestion control for subscribers: the send side of it.

A subscriber that negotiated the transport-wide sequence number header extension
(draft-holmer-rmcat-transport-wide-cc-extensions-01) and ``a=rtcp-fb:* transport-cc``
reports when each of our packets arrived (RTCP RTPFB FMT 15, every ~50-100 ms). Against
when we sent them, a growing queue shows as a rising one-way delay long before a
bottleneck queue overflows: :class:`TrendlineDetector` (libwebrtc's trendline estimator and
adaptive overuse threshold, as in GCC) turns the delay gradient into an overuse signal, and
:class:`TwccSender` (one per subscriber connection) stamps the sequence numbers, remembers
what it sent, reads the feedback and calls ``on_overuse(acked_bps)`` when the path starts
queueing, with the rate the subscriber received just before (what the link carries).

Pure logic with injected clocks but for :meth:`TwccSender.stamp` (``time.monotonic``).
"""

from __future__ import annotations

import itertools
import logging
import math
import struct
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .estimator import NackBurst

logger = logging.getLogger(__name__)

TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
RTCP_RTPFB = 205
TWCC_FMT = 15

HISTORY = 4096  # packets remembered by transport-wide sequence number (a power of two)
GROUP_MS = 5.0  # packets sent within this of a group's first are one burst (a group)
# libwebrtc fits 20 groups at 0.9 smoothing; at ~30-60 groups a second (a frame is a
# group) that saw a link fall to half of what was sent ~300 ms late in a simulation (and
# ~570 ms in a traced run), 10 at 0.7 saw it in ~70-100 ms, with no false overuse under
# 0-300 ms of random jitter (the noise gate below).
WINDOW = 10  # delay samples the trend is fitted over
SMOOTHING = 0.7  # of the accumulated delay
THRESHOLD_GAIN = 4.0
MAX_DELTAS = 60
OVERUSE_MS = 10.0  # over the threshold this long (and twice in a row): overuse
K_UP, K_DOWN = 0.0087, 0.039  # adaptive threshold (per ms)
THRESHOLD_START, THRESHOLD_MIN, THRESHOLD_MAX = 12.5, 6.0, 600.0
ADAPT_OFFSET = 15.0  # the threshold follows a sample at most this far above it
# A noisy path (jitter: packets reordered by up to 300 ms) makes the trend swing both ways
# every few groups: the threshold is at least this many times the mean size of a group's
# delay variation (~1-3 ms on a clean path, ~100 ms under 300 ms of jitter).
NOISE_GAIN = 4.0
NOISE_ALPHA = 0.05
# Under this much mean delay variation per group the detector judges probes; above it (a
# jittery path) it still warns of a queue, but its silence proves nothing.
CLEAN_NOISE_MS = 20.0
ACKED_WINDOW_MS = 500.0  # received rate over this much arrival time
# :meth:`TwccSender.delay_rise` keeps this much send time of delays, and needs this many
# packets before and late in the time asked about
DELAYS_KEPT_MS = 2500.0
RISE_PACKETS_BEFORE = 10
RISE_PACKETS_LATE = 6
# On a noisy path the gradient cannot see a queue that a budget a few per cent over the
# link builds slowly (300 ms of jitter: it filled a 150 ms queue in a few seconds and
# overflowed it, the loss judged half a second late). Jitter delays some packets a lot and
# others hardly at all, a queue delays all of them: the least one-way delay of what was
# sent in the last QUEUE_RECENT_MS, QUEUE_RISE_MS above the least of the first
# QUEUE_BASE_MS kept (at least QUEUE_PACKETS each), is an overuse.
QUEUE_RISE_MS = 60.0
QUEUE_RECENT_MS = 500.0
QUEUE_BASE_MS = 1000.0
QUEUE_PACKETS = 10
# On a clean path a link that falls to a third fills a 150 ms queue in ~0.1 s. The gradient
# (its threshold raised by keyframe bursts and the receiver's clock, twice over it in a row)
# spoke a feedback or more after the first that showed the queue, and the queue had
# overflowed by then: frames lost, a freeze until the lower layer's keyframe. A step: the
# one-way delay of a feedback's newest packet STEP_RISE_MS over the path's floor (the least
# of the feedbacks' least over STEP_FLOOR_MS, before this one and the previous), while the
# link (what the last packets took to arrive) carries less than STEP_OVER of what was sent
# over the last ACKED_WINDOW_MS. A keyframe's burst delays its last packets too, but on a
# link with room for the rate it drains: no step. The newest packet, not the feedback's
# least: a queue that began late in one feedback's span (~60 ms at 2 Mbit/s) shows only in
# its last packets, and the least of the next could still be low (the queue's own start):
# the verdict came a third feedback late, after the overflow. After a verdict, none until a
# feedback's least is back within STEP_REARM_MS of the floor (the queue drained).
STEP_RISE_MS = 10.0
STEP_REARM_MS = 10.0
STEP_OVER = 0.85
STEP_FLOOR_MS = 2000.0
STEP_PACKETS = 2  # a feedback's least counts with at least this many packets in it
# :meth:`TwccSender.delivery` needs at least this many packets over this long a send time
DELIVERY_PACKETS = 8
DELIVERY_SPAN_MS = 50.0
# At an overuse the queue paces the last packets at the bottleneck's rate: what this many
# took to arrive is what the link carries (the half-second rate still holds what came
# before the queue, ~1.6x the link seen in a simulation)
LINK_PACKETS = 12
# Loss from the feedback, not from NACKs: a browser NACKs every gap it sees at once, and on
# a path that reorders (0-300 ms of jitter) most gaps are packets still on their way; read
# as loss bursts, they pinned the budget at the one-video floor and then at audio only. The
# feedback reports a packet missing, and received once it comes (the receiver moves its
# window back for it), so a packet is lost when it is still missing this long after it was
# first reported so: LATE_MARGIN x the latest a reported-missing packet came lately (its
# lateness, halving every LATE_HALF_LIFE seconds), plus LOSS_WAIT_SLACK, within
# LOSS_WAIT_MIN .. LOSS_WAIT_MAX (the receiver reports late packets for 0.5 s at most).
LOSS_WAIT_MIN = 0.04  # s: a path that does not reorder decides at the next feedback
LOSS_WAIT_MAX = 0.5
LOSS_WAIT_SLACK = 0.03
LATE_MARGIN = 1.5
LATE_HALF_LIFE = 5.0
# Feedback this recent: the loss judgement is the feedback's (NACKs still get answered)
LOSS_JUDGE_SECONDS = 1.0
# ... and in place of receiver reports' loss figures, one over the packets judged in about
# this long (what Chromium's receiver reports cover)
LOSS_REPORT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Feedback:
    """One transport-wide feedback packet: per sequence number (16 bits, in order) the
    arrival time in ms on the receiver's clock, or None for a packet not received."""

    base_seq: int
    count: int
    fb_count: int
    arrivals: list[tuple[int, float | None]]


def parse_feedback(data: bytes) -> Feedback:
    """One RTPFB FMT 15 packet (header included). Raises ValueError when malformed."""
    if len(data) < 20:
        raise ValueError("transport-cc feedback too short")
    first, pt, _length = struct.unpack_from("!BBH", data, 0)
    if first >> 6 != 2 or pt != RTCP_RTPFB or first & 0x1F != TWCC_FMT:
        raise ValueError("not a transport-cc feedback packet")
    end = len(data)
    if first & 0x20:  # padding
        end -= data[-1]
    base_seq, count = struct.unpack_from("!HH", data, 12)
    ref = int.from_bytes(data[16:19], "big")
    if ref & 0x800000:
        ref -= 0x1000000
    fb_count = data[19]
    pos = 20
    symbols: list[int] = []
    while len(symbols) < count:
        if pos + 2 > end:
            raise ValueError("transport-cc feedback: chunks truncated")
        chunk = (data[pos] << 8) | data[pos + 1]
        pos += 2
        if not chunk & 0x8000:  # run length
            symbol = (chunk >> 13) & 0x3
            run = chunk & 0x1FFF
            symbols.extend([symbol] * min(run, count - len(symbols)))
        elif chunk & 0x4000:  # 7 two-bit symbols
            for i in range(7):
                symbols.append((chunk >> (12 - 2 * i)) & 0x3)
        else:  # 14 one-bit symbols
            for i in range(14):
                symbols.append((chunk >> (13 - i)) & 0x1)
    del symbols[count:]
    arrivals: list[tuple[int, float | None]] = []
    at = ref * 64.0  # ms
    for i, symbol in enumerate(symbols):
        seq = (base_seq + i) & 0xFFFF
        if symbol == 0:
            arrivals.append((seq, None))
            continue
        if symbol == 1:
            if pos + 1 > end:
                raise ValueError("transport-cc feedback: deltas truncated")
            delta = data[pos]
            pos += 1
        elif symbol == 2:
            if pos + 2 > end:
                raise ValueError("transport-cc feedback: deltas truncated")
            delta = struct.unpack_from("!h", data, pos)[0]
            pos += 2
        else:
            raise ValueError("transport-cc feedback: reserved symbol")
        at += delta * 0.25
        arrivals.append((seq, at))
    return Feedback(base_seq=base_seq, count=count, fb_count=fb_count, arrivals=arrivals)


def build_feedback(
    base_seq: int, arrivals_ms: list[float | None], fb_count: int = 0, ssrc: int = 1
) -> bytes:
    """A feedback packet (one-bit/two-bit status vectors): tests and simulations."""
    ref_ms = next((a for a in arrivals_ms if a is not None), 0.0)
    ref = int(ref_ms // 64)
    symbols: list[int] = []
    deltas = b""
    at = ref * 64.0
    for a in arrivals_ms:
        if a is None:
            symbols.append(0)
            continue
        d = round((a - at) / 0.25)
        if 0 <= d <= 255:
            symbols.append(1)
            deltas += bytes([d])
        else:
            d = max(min(d, 32767), -32768)
            symbols.append(2)
            deltas += struct.pack("!h", d)
        at += d * 0.25
    chunks = b""
    for i in range(0, len(symbols), 7):
        part = symbols[i : i + 7] + [0] * (7 - len(symbols[i : i + 7]))
        word = 0xC000
        for j, s in enumerate(part):
            word |= s << (12 - 2 * j)
        chunks += struct.pack("!H", word)
    body = (
        struct.pack("!IIHH", ssrc, 0, base_seq & 0xFFFF, len(arrivals_ms))
        + (ref & 0xFFFFFF).to_bytes(3, "big")
        + bytes([fb_count & 0xFF])
        + chunks
        + deltas
    )
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!BBH", 0x80 | TWCC_FMT, RTCP_RTPFB, (len(body) + 4) // 4 - 1) + body


def split_rtcp(data: bytes) -> tuple[list[bytes], bytes]:
    """A compound RTCP packet's transport-cc feedback packets, and the rest of it (what
    aiortc parses: it would read FMT 15 as a NACK list)."""
    pos, n = 0, len(data)
    while pos + 4 <= n:  # most compound packets have none (and aiortc clients never send
        if data[pos + 1] == RTCP_RTPFB and data[pos] & 0x1F == TWCC_FMT:  # it): no copies then
            break
        pos += (struct.unpack_from("!H", data, pos + 2)[0] + 1) * 4
    else:
        return [], data
    twcc: list[bytes] = []
    rest: list[bytes] = [data[:pos]] if pos else []
    while pos + 4 <= n:
        length = (struct.unpack_from("!H", data, pos + 2)[0] + 1) * 4
        part = data[pos : pos + length]
        if data[pos + 1] == RTCP_RTPFB and data[pos] & 0x1F == TWCC_FMT:
            twcc.append(part)
        else:
            rest.append(part)
        pos += length
    if not twcc:
        return twcc, data
    return twcc, b"".join(rest)


class DelayState:
    NORMAL = 0
    OVERUSE = 1
    UNDERUSE = -1


class TrendlineDetector:
    """libwebrtc's TrendlineEstimator with its adaptive threshold: the slope of the
    smoothed accumulated one-way delay variation over the last :data:`WINDOW` packet groups
    against an adaptive threshold. Feed it packets in send order."""

    __slots__ = (
        "_acc",
        "_first_arrival",
        "_group",
        "_hist",
        "_last_update",
        "_noise",
        "_num",
        "_over_count",
        "_over_ms",
        "_prev",
        "_prev_trend",
        "_smoothed",
        "state",
        "threshold",
        "trend",
    )

    def __init__(self) -> None:
        self._group: list[float] | None = None  # [first send, last send, last arrival, size]
        self._prev: list[float] | None = None  # the completed group before
        self._acc = 0.0
        self._smoothed = 0.0
        self._hist: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self._first_arrival: float | None = None
        self._num = 0
        self._over_ms = -1.0
        self._over_count = 0
        self._prev_trend = 0.0
        self._last_update: float | None = None
        self._noise = 0.0
        self.threshold = THRESHOLD_START
        self.trend = 0.0
        self.state = DelayState.NORMAL

    @property
    def noise(self) -> float:
        """Mean size of a group's delay variation (ms, smoothed)."""
        return self._noise

    @property
    def clean(self) -> bool:
        return self._noise < CLEAN_NOISE_MS

    def packet(self, send_ms: float, arrival_ms: float) -> int | None:
        """One received packet; returns the state when a group completed (else None)."""
        g = self._group
        if g is None:
            self._group = [send_ms, send_ms, arrival_ms]
            return None
        if send_ms < g[0]:
            return None  # sent before this group began (reordered feedback): skip
        if send_ms - g[0] <= GROUP_MS:
            g[1] = max(g[1], send_ms)
            g[2] = max(g[2], arrival_ms)
            return None
        prev, self._prev, self._group = self._prev, g, [send_ms, send_ms, arrival_ms]
        if prev is None:
            return None
        send_delta = g[1] - prev[1]
        arrival_delta = g[2] - prev[2]
        return self._update(arrival_delta - send_delta, send_delta, g[2])

    def _update(self, delta: float, send_delta: float, arrival: float) -> int:
        self._num = min(self._num + 1, 1000)
        if self._first_arrival is None:
            self._first_arrival = arrival
        self._acc += delta
        self._noise += NOISE_ALPHA * (abs(delta) - self._noise)
        self._smoothed = SMOOTHING * self._smoothed + (1 - SMOOTHING) * self._acc
        self._hist.append((arrival - self._first_arrival, self._smoothed))
        if len(self._hist) == WINDOW:
            slope = _slope(self._hist)
            if slope is not None:
                self.trend = slope
        self._detect(send_delta, arrival)
        return self.state

    def _detect(self, send_delta: float, now: float) -> None:
        if self._num < 2:
            self.state = DelayState.NORMAL
            return
        modified = min(self._num, MAX_DELTAS) * self.trend * THRESHOLD_GAIN
        threshold = max(self.threshold, NOISE_GAIN * self._noise)
        if modified > threshold:
            if self._over_ms < 0:
                self._over_ms = send_delta / 2
            else:
                self._over_ms += send_delta
            self._over_count += 1
            if (
                self._over_ms > OVERUSE_MS
                and self._over_count > 1
                and self.trend >= self._prev_trend
            ):
                self._over_ms = 0.0
                self._over_count = 0
                self.state = DelayState.OVERUSE
        elif modified < -threshold:
            self._over_ms = -1.0
            self._over_count = 0
            self.state = DelayState.UNDERUSE
        else:
            self._over_ms = -1.0
            self._over_count = 0
            self.state = DelayState.NORMAL
        self._prev_trend = self.trend
        self._adapt(modified, now)

    def _adapt(self, modified: float, now: float) -> None:
        if self._last_update is None:
            self._last_update = now
        # libwebrtc skips samples beyond threshold + 15 (a spike must not drag it up); here
        # they count as threshold + 15, so a path whose delay is noisy (300 ms of jitter)
        # raises it within a second or two, while a queue that builds crosses it at once.
        level = min(abs(modified), self.threshold + ADAPT_OFFSET)
        k = K_DOWN if level < self.threshold else K_UP
        dt = min(max(now - self._last_update, 0.0), 100.0)
        self.threshold += k * (level - self.threshold) * dt
        self.threshold = min(max(self.threshold, THRESHOLD_MIN), THRESHOLD_MAX)
        self._last_update = now


def _slope(points: deque[tuple[float, float]]) -> float | None:
    n = len(points)
    sx = sum(p[0] for p in points) / n
    sy = sum(p[1] for p in points) / n
    num = den = 0.0
    for x, y in points:
        num += (x - sx) * (y - sy)
        den += (x - sx) * (x - sx)
    return num / den if den else None


class TwccSender:
    """One subscriber connection's transport-wide sequence numbers, what went out under
    them, and the reading of the subscriber's feedback. ``on_overuse(acked_bps)`` is called
    when the delay gradient says the path queues (at most once per overuse episode);
    :attr:`acked_bps` is what the subscriber received over the last half second.
    ``on_loss_burst(rate)`` is called when packets the feedback reported missing and never
    received (see :data:`LOSS_WAIT_MIN`; padding aside) are a burst as :class:`NackBurst`
    reads one: while feedback flows it stands for the NACKs' (:meth:`judges_loss`)."""

    __slots__ = (
        "_acked",
        "_acked_bytes",
        "_burst",
        "_delays",
        "_detector",
        "_got_sent",
        "_last_fb",
        "_late",
        "_late_at",
        "_miss_at",
        "_miss_sent",
        "_missing",
        "_pad_sent",
        "_queue_since",
        "_recent",
        "_report_at",
        "_report_got",
        "_report_lost",
        "_sent_at",
        "_sent_seq",
        "_seq",
        "_size",
        "_step_armed",
        "_step_floor",
        "acked_bps",
        "feedbacks",
        "last_feedback_at",
        "lost",
        "native",
        "on_loss_burst",
        "on_loss_report",
        "on_overuse",
        "overuses",
        "reordered",
    )

    def __init__(
        self,
        on_overuse: Callable[[int], None] | None = None,
        on_loss_burst: Callable[[float], None] | None = None,
        on_loss_report: Callable[[int, int], None] | None = None,
    ) -> None:
        self.on_overuse = on_overuse
        self.on_loss_burst = on_loss_burst
        # ``on_loss_report(lost, packets)``: every LOSS_REPORT_SECONDS, the media (and
        # retransmissions) judged since: received or lost
        self.on_loss_report = on_loss_report
        self._report_at: float | None = None
        self._report_got = 0
        self._report_lost = 0
        # Per slot, the send time of the packet it marks as padding / reported received /
        # reported missing (and when): a mark holds for the packet in the slot while the
        # slot's send time is the one marked. Every stamp writes a new send time (the native
        # fan-out's too, which writes only the arrays in ``native``), so a mark from an
        # earlier packet, one whose 16-bit number came round again included, never reads
        # as the new one's.
        self._pad_sent = array("d", [-1.0]) * HISTORY
        self._got_sent = array("d", [-1.0]) * HISTORY
        self._miss_sent = array("d", [-1.0]) * HISTORY
        self._miss_at = array("d", bytes(8 * HISTORY))
        self._missing: deque[int] = deque()  # reported missing, not judged yet (in order)
        self._late = 0.0  # s: how late a reported-missing packet came, at most, lately
        self._late_at = 0.0
        self._burst = NackBurst()
        self.lost = 0  # packets judged lost
        self.reordered = 0  # packets reported missing that came after all
        # Arrays, not lists: the native fan-out (_fanout.c) stamps the packets it sends in
        # the same memory (``native``: next number, send times, numbers, sizes).
        self._seq = array("q", [0])  # the next number
        self._sent_at = array("d", bytes(8 * HISTORY))  # ms, CLOCK_MONOTONIC
        self._sent_seq = array("q", [-1]) * HISTORY
        self._size = array("q", bytes(8 * HISTORY))
        self.native = (self._seq, self._sent_at, self._sent_seq, self._size)
        self._detector = TrendlineDetector()
        self._acked: deque[tuple[float, int, float]] = deque()  # (arrival ms, bytes, sent ms)
        # (sent ms, arrival - sent ms) of what was reported received, over DELAYS_KEPT_MS,
        # while the detector finds the path noisy (see delay_rise)
        self._delays: deque[tuple[float, float]] = deque()
        self._queue_since = 0.0  # send ms: the queue watch's baseline starts here
        # The step watch (clean paths): (newest send ms, least delay) of recent feedbacks
        self._step_floor: deque[tuple[float, float]] = deque()
        self._step_armed = True
        self._acked_bytes = 0
        self._last_fb: int | None = None  # highest sequence number reported so far
        self._recent: deque[tuple[float, int]] = deque(maxlen=LINK_PACKETS)
        self.acked_bps: int | None = None
        self.feedbacks = 0
        self.overuses = 0
        self.last_feedback_at: float | None = None

    def stamp(self, size: int, padding: bool = False) -> int:
        """The next transport-wide sequence number, for a packet of ``size`` bytes sent now
        (``padding``: a probe's, whose loss is no media's)."""
        next_seq = self._seq
        seq = next_seq[0]
        next_seq[0] = (seq + 1) & 0xFFFF
        slot = seq & (HISTORY - 1)
        sent_at = time.monotonic() * 1000.0
        self._sent_at[slot] = sent_at
        self._sent_seq[slot] = seq
        self._size[slot] = size
        if padding:
            self._pad_sent[slot] = sent_at
        return seq

    def judges_loss(self, now: float) -> bool:
        """Whether feedback flows, so loss bursts are read from it, not from NACKs."""
        at = self.last_feedback_at
        return at is not None and now - at < LOSS_JUDGE_SECONDS

    def loss_wait(self, now: float) -> float:
        """How long a packet reported missing may still come before it counts as lost."""
        late = self._lateness(now)
        return float(min(max(LATE_MARGIN * late + LOSS_WAIT_SLACK, LOSS_WAIT_MIN), LOSS_WAIT_MAX))

    def _lateness(self, now: float) -> float:
        """The latest a reported-missing packet came lately, halving every LATE_HALF_LIFE."""
        return float(self._late * 0.5 ** (max(now - self._late_at, 0.0) / LATE_HALF_LIFE))

    @property
    def state(self) -> int:
        return self._detector.state

    @property
    def detector(self) -> TrendlineDetector:
        return self._detector

    def link_bps(self) -> int | None:
        """What the last :data:`LINK_PACKETS` received took to arrive (None: too few, or
        they came at once)."""
        recent = self._recent
        if len(recent) < LINK_PACKETS // 2:
            return None
        first = min(a for a, _ in recent)
        last = max(a for a, _ in recent)
        if last - first < 10.0:
            return None
        return int((sum(size for _, size in recent) - recent[0][1]) * 8000 / (last - first))

    def delivery(self, since: float, until: float) -> tuple[int, int] | None:
        """How fast the packets sent between ``since`` and ``until`` (monotonic seconds)
        left and arrived, as ``(sent_bps, arrived_bps)``, from the feedback on them so far
        (what came in the last :data:`ACKED_WINDOW_MS` of arrival time); None while fewer
        than :data:`DELIVERY_PACKETS` are known or they span too little time. Behind a
        bottleneck slower than they left, they arrive at its rate (a queue paces them):
        a probe the path took arrives as fast as it went out (GCC's probe estimate)."""
        lo, hi = since * 1000.0, until * 1000.0
        got = [(sent, arrival, size) for arrival, size, sent in self._acked if lo <= sent <= hi]
        if len(got) < DELIVERY_PACKETS:
            return None
        total = sum(size for _, _, size in got)
        first_sent = min(got)
        first_arrival = min(got, key=lambda g: g[1])
        send_span = max(sent for sent, _, _ in got) - first_sent[0]
        arrival_span = max(arrival for _, arrival, _ in got) - first_arrival[1]
        if send_span < DELIVERY_SPAN_MS or arrival_span <= 0:
            return None
        # n packets are n - 1 intervals: the first one's bytes were on their way before
        sent_bps = int((total - first_sent[2]) * 8000 / send_span)
        arrived_bps = int((total - first_arrival[2]) * 8000 / max(arrival_span, 1.0))
        return sent_bps, arrived_bps

    def delay_rise(self, since: float, until: float) -> float | None:
        """How much higher (ms) the least one-way delay of the packets sent in the second
        half of ``since``..``until`` (monotonic seconds) was than that of the packets sent
        in the second before ``since``; None while too few are known. Random jitter delays
        some packets of either set a lot and some hardly at all, so their least delays
        match; a queue that builds delays every one (0-300 ms of jitter drowns the delay
        gradient, not this). Known only while the delay detector finds the path noisy
        (not :attr:`TrendlineDetector.clean`), the one place it is asked."""
        lo, hi = since * 1000.0, until * 1000.0
        return self._least_delay_rise(
            (lo - 1000.0, lo), RISE_PACKETS_BEFORE, ((lo + hi) / 2, hi), RISE_PACKETS_LATE
        )

    def queue_rise(self) -> float | None:
        """On a noisy path: how much higher (ms) the least one-way delay of the packets
        sent in the last :data:`QUEUE_RECENT_MS` is than that of the first
        :data:`QUEUE_BASE_MS` of those kept since the last verdict (None: too few)."""
        delays = self._delays
        if len(delays) < 2 * QUEUE_PACKETS:
            return None
        start = max(delays[0][0], self._queue_since)
        base_end, recent_start = start + QUEUE_BASE_MS, delays[-1][0] - QUEUE_RECENT_MS
        if recent_start < base_end:
            return None
        return self._least_delay_rise(
            (start, base_end), QUEUE_PACKETS, (recent_start, math.inf), QUEUE_PACKETS
        )

    def _least_delay_rise(
        self, before: tuple[float, float], n_before: int, late: tuple[float, float], n_late: int
    ) -> float | None:
        """How much higher the least one-way delay of the packets sent in ``late`` (send
        ms, both ends in) is than that of those sent in ``before`` (its end out); None
        unless at least ``n_before`` and ``n_late`` are known."""
        (b0, b1), (l0, l1) = before, late
        early = [d for sent, d in self._delays if b0 <= sent < b1]
        recent = [d for sent, d in self._delays if l0 <= sent <= l1]
        if len(early) < n_before or len(recent) < n_late:
            return None
        return min(recent) - min(early)

    def on_feedback(self, data: bytes, now: float) -> None:
        """One FMT 15 packet from the subscriber (``now``: monotonic seconds)."""
        try:
            fb = parse_feedback(data)
        except ValueError:
            return
        self.feedbacks += 1
        self.last_feedback_at = now
        det = self._detector
        before = det.state
        overuse = False
        acked = self._acked
        newest_arrival: float | None = None
        sent_seq, sent_at = self._sent_seq, self._sent_at
        got, missed, pad = self._got_sent, self._miss_sent, self._pad_sent
        # Kept only where delay_rise is asked (a path too noisy for the gradient): not per
        # packet of every clean path
        delays = self._delays if not det.clean else None
        queued = False  # an overuse the queue watch found (not the gradient)
        first_acked = len(acked)
        for seq, arrival in fb.arrivals:
            slot = seq & (HISTORY - 1)
            if sent_seq[slot] != seq:
                continue
            sent = sent_at[slot]
            if arrival is None:
                if got[slot] != sent and missed[slot] != sent and pad[slot] != sent:
                    missed[slot] = sent
                    self._miss_at[slot] = now
                    self._missing.append(seq)
                continue
            if got[slot] != sent:
                got[slot] = sent
                if pad[slot] != sent:
                    self._report_got += 1
                if missed[slot] == sent:  # reported missing before: it was late
                    self.reordered += 1
                    late = now - self._miss_at[slot]
                    self._late, self._late_at = max(late, self._lateness(now)), now
            last = self._last_fb
            if last is not None and (seq - last) & 0xFFFF >= 0x8000:
                continue  # reported before (feedback repeats after loss)
            self._last_fb = seq
            size = self._size[slot]
            acked.append((arrival, size, sent))
            if delays is not None:
                delays.append((sent, arrival - sent))
            self._recent.append((arrival, size))
            self._acked_bytes += size
            if newest_arrival is None or arrival > newest_arrival:
                newest_arrival = arrival
            state = det.packet(sent, arrival)
            if state == DelayState.OVERUSE and before != DelayState.OVERUSE:
                overuse = True
            if state is not None:
                before = state
        if delays:
            newest_sent = delays[-1][0]
            while newest_sent - delays[0][0] > DELAYS_KEPT_MS:
                delays.popleft()
            rise = self.queue_rise()
            if rise is not None and rise > QUEUE_RISE_MS:
                logger.debug("twcc %x: queue on a noisy path (+%.0f ms)", id(self), rise)
                self._queue_since = newest_sent  # the next verdict needs a new baseline
                queued = overuse = before != DelayState.OVERUSE
        fresh = len(acked) - first_acked  # what this feedback acknowledged, in send order
        if delays is None and fresh >= STEP_PACKETS:
            least = min(a - sent for a, _, sent in itertools.islice(reversed(acked), fresh))
            arrival, _, sent = acked[-1]
            if self._step(least, arrival - sent, sent):
                logger.debug(
                    "twcc %x: a step in the delay (newest %.1f, least %.1f ms)",
                    id(self),
                    arrival - sent,
                    least,
                )
                overuse = overuse or before != DelayState.OVERUSE
        if newest_arrival is not None:
            while acked and newest_arrival - acked[0][0] > ACKED_WINDOW_MS:
                self._acked_bytes -= acked.popleft()[1]
            span = max(newest_arrival - acked[0][0], 100.0) if acked else 0.0
            if span:
                self.acked_bps = int(self._acked_bytes * 8000 / span)
        if self._missing:
            self._judge(now)
        self._report(now)
        if overuse:
            self.overuses += 1
            # (what the last few packets took to arrive is the link's rate behind a queue
            # the gradient saw build fast; under jitter it is noise)
            link = self.link_bps() if not queued else None
            if link is not None and self.acked_bps is not None:
                self.acked_bps = min(self.acked_bps, link)
            logger.debug(
                "twcc %x: overuse (trend %.3f, threshold %.1f, noise %.1f ms, acked %s bps)",
                id(self),
                det.trend,
                det.threshold,
                det.noise,
                self.acked_bps,
            )
            if self.on_overuse is not None and self.acked_bps is not None:
                try:
                    self.on_overuse(self.acked_bps)
                except Exception:
                    logger.exception("overuse listener failed")

    def _step(self, least: float, newest_delay: float, newest_sent: float) -> bool:
        """The step watch (see :data:`STEP_RISE_MS`): one feedback's least one-way delay
        and its newest packet's (ms; that packet sent at ``newest_sent``); True when it is
        a verdict."""
        floor_log = self._step_floor
        while floor_log and newest_sent - floor_log[0][0] > STEP_FLOOR_MS:
            floor_log.popleft()
        # the floor: before the previous feedback (which the rise may have begun in)
        floor = min(
            (d for _, d in itertools.islice(floor_log, max(len(floor_log) - 1, 0))), default=None
        )
        floor_log.append((newest_sent, least))
        if floor is None:
            return False
        if not self._step_armed:
            self._step_armed = least < floor + STEP_REARM_MS
            return False
        if newest_delay >= floor + STEP_RISE_MS and self._under_rate():
            self._step_armed = False
            return True
        return False

    def _under_rate(self) -> bool:
        """Does the link carry less than :data:`STEP_OVER` of what was sent lately (the
        packets acknowledged over the last :data:`ACKED_WINDOW_MS`: :meth:`delivery`)?"""
        link, took = self.link_bps(), self.delivery(-math.inf, math.inf)
        return link is not None and took is not None and link < STEP_OVER * took[0]

    def _report(self, now: float) -> None:
        if self._report_at is None:
            self._report_at = now
            return
        if now - self._report_at < LOSS_REPORT_SECONDS:
            return
        lost, packets = self._report_lost, self._report_got + self._report_lost
        self._report_at, self._report_got, self._report_lost = now, 0, 0
        if packets and self.on_loss_report is not None:
            try:
                self.on_loss_report(lost, packets)
            except Exception:
                logger.exception("loss report listener failed")

    def _judge(self, now: float) -> None:
        """Packets reported missing longer than :meth:`loss_wait` ago, still not received,
        are lost: a burst of them is reported (as the NACKs' would be)."""
        missing, wait = self._missing, self.loss_wait(now)
        sent_seq, sent_at, got, missed, miss_at = (
            self._sent_seq,
            self._sent_at,
            self._got_sent,
            self._miss_sent,
            self._miss_at,
        )
        burst: float | None = None
        at = 0.0
        while missing:
            seq = missing[0]
            slot = seq & (HISTORY - 1)
            sent = sent_at[slot]
            if sent_seq[slot] != seq or missed[slot] != sent:
                missing.popleft()  # the slot went to a later packet: long gone
                continue
            first = miss_at[slot]
            if now - first < wait:
                break
            missing.popleft()
            if got[slot] == sent:
                continue
            self.lost += 1
            self._report_lost += 1
            rate = self._burst.on_nack([seq], first)
            if rate is not None:
                burst, at = rate, first
        if burst is not None:
            logger.debug(
                "twcc %x: loss burst %.2f (first reported %.3f, waited %.3f s)",
                id(self),
                burst,
                at,
                wait,
            )
            if self.on_loss_burst is not None:
                try:
                    self.on_loss_burst(burst)
                except Exception:
                    logger.exception("loss burst listener failed")


# --------------------------------------------------------------------------- SDP

ENV = "WEBINAR_TWCC"  # 0: offer subscribers no transport-wide congestion control


def offer_twcc(sdp: str, ext_id: int = 5) -> str:
    """An offer's video m-sections with the transport-wide sequence number extension (as
    ``ext_id``, when the section does not use that id already) and ``transport-cc``
    feedback on each payload type that has ``goog-remb``. aiortc offers neither; its
    answer handling drops what it does not know, so the answer is read with
    :func:`answered_twcc`."""
    lines = sdp.split("\r\n")
    out: list[str] = []
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    for section in sections:
        if (
            not section
            or not section[0].startswith("m=video")
            or any(TWCC_URI in line for line in section)
        ):
            out.extend(section)
            continue
        if any(line.startswith(f"a=extmap:{ext_id} ") for line in section):
            out.extend(section)
            continue
        last_ext = max(
            (i for i, line in enumerate(section) if line.startswith("a=extmap:")), default=None
        )
        for i, line in enumerate(section):
            out.append(line)
            if line.startswith("a=rtcp-fb:") and line.endswith(" goog-remb"):
                out.append(line[: -len(" goog-remb")] + " transport-cc")
            if i == last_ext:
                out.append(f"a=extmap:{ext_id} {TWCC_URI}")
    return "\r\n".join(out)


def answered_twcc(sdp: str) -> dict[str, int]:
    """The mids whose m-section in ``sdp`` took the transport-wide extension, with its id
    (only where ``transport-cc`` feedback was taken too)."""
    found: dict[str, int] = {}
    mid: str | None = None
    ext: int | None = None
    feedback = False

    def close() -> None:
        if mid is not None and ext is not None and feedback:
            found[mid] = ext

    for line in sdp.splitlines():
        if line.startswith("m="):
            close()
            mid, ext, feedback = None, None, False
        elif line.startswith("a=mid:"):
            mid = line[6:].strip()
        elif line.startswith("a=extmap:") and line.rstrip().endswith(TWCC_URI):
            try:
                ext = int(line[9:].split()[0].split("/")[0])
            except ValueError:
                ext = None
        elif line.startswith("a=rtcp-fb:") and line.rstrip().endswith(" transport-cc"):
            feedback = True
    close()
    return found
