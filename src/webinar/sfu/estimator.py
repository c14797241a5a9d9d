"""Per-subscriber bandwidth and loss estimate from REMB and receiver reports.

Pure logic with an injected clock; the bandwidth tiers build on :attr:`estimate_bps`.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .allocator import TIER_SLACK, TIERS

logger = logging.getLogger(__name__)

LOSS_ALPHA = 0.3  # EWMA weight of a new receiver report
REMB_TIMEOUT = 5.0  # seconds after which a REMB value is considered stale
HIGH_LOSS = 0.10
LOW_LOSS = 0.02
COMPOUND_SECONDS = 0.02  # report blocks this close together came in one RTCP packet
LOSS_STALE = 1.5  # seconds without a receiver report after which the loss figure fades ...
LOSS_HALF_LIFE = 1.0  # ... halving every this many seconds (paused video sends no reports)
# A report about few packets is a noisy figure: 3 of 25 packets lost is 12 %, and on a
# path with 5 % random loss (Wi-Fi) one report in eight says that. A report's loss is
# congestion only when random loss at this rate would explain it less than once in
# ``SIGNIFICANCE`` reports (a binomial tail over the packets it covers).
RANDOM_LOSS = 0.05
SIGNIFICANCE = 0.001
EXACT_PACKETS = 1000  # above this many packets the 10 % rule alone is the stricter one
# Loss bursts from NACKs: the subscriber NACKs each gap as soon as it sees it, a round
# trip after the loss, where a receiver report comes up to a second later. A bottleneck
# queue that overflows (a link that just got slower) drops a share of every packet
# sent; NACKed sequence numbers within this window that are significantly (under
# RANDOM_LOSS, SIGNIFICANCE) and more than BURST_LOSS of the span they cover are one.
BURST_WINDOW = 0.5  # seconds of NACKed sequence numbers kept
BURST_LOSS = 0.10
BURST_LEAST = 4  # at least this many lost packets ...
# ... first NACKed over at least this long: a queue that overflows goes on losing while
# the sender sends too much; a run of packets lost at once (a keyframe's burst into a
# busy receiver's socket buffer, seen on an unlimited veth) is one NACK, and not a link
# that fell
BURST_SPREAD = 0.03
# Stricter than a report's test: every NACK tests the window again (many looks a
# second), and 5 % random loss must not read as congestion every minute.
BURST_SIGNIFICANCE = 1e-4


@dataclass(frozen=True, slots=True)
class RttSample:
    """One round trip measured from a receiver report (monotonic clock)."""

    rtt: float  # seconds, not smoothed
    sr_sent: float  # when the sender report it answers left us
    arrived: float  # when the receiver report came back
    lost: float = 0.0  # that report's fraction lost (0..1), not smoothed


@dataclass(frozen=True, slots=True)
class Estimate:
    bitrate_bps: int | None  # None until the subscriber sent a REMB
    loss: float  # smoothed fraction of packets lost, 0..1
    rtt: float | None  # seconds
    sample: RttSample | None = None  # the latest raw round trip
    # The latest receiver report's own loss (not smoothed) and when it came; None when
    # the source has no per-report figures (then ``loss`` stands for it).
    report_loss: float | None = None
    report_at: float | None = None
    # How many packets that report covers (None: unknown, the figure stands alone).
    report_packets: int | None = None
    # When the video report before it came: the latest covers what happened since
    # (None: it is the first).
    report_since: float | None = None
    # The latest loss burst read from NACKs (:class:`NackBurst`) and when it was seen.
    burst_loss: float | None = None
    burst_at: float | None = None
    # Transport-wide feedback flows (:mod:`webinar.sfu.twcc`): the browser's REMB leaves
    # out what carries transport-wide numbers, so it is ignored (``bitrate_bps`` None).
    twcc: bool = False
    # ... and its delay detector is not drowned in the path's jitter: it judges probes.
    twcc_clean: bool = False
    # The latest delay overuse it read and when, with the rate received just before it.
    delay_at: float | None = None
    delay_bps: int | None = None
    # Seconds after a packet went out that the feedback has judged it lost or received
    # (its wait for late packets, a feedback interval and a round trip); 0 without it.
    loss_lag: float = 0.0
    # ``delivery(since, until)``: how fast what went out between those (monotonic) times
    # left and arrived, ``(sent_bps, arrived_bps)``, or None while too little is known
    # (:meth:`webinar.sfu.twcc.TwccSender.delivery`); None without transport-wide feedback.
    delivery: Callable[[float, float], tuple[int, int] | None] | None = None
    # ``delay_rise(since, until)``: how much higher (ms) the least one-way delay of what went
    # out late in that time was than just before it (:meth:`TwccSender.delay_rise`).
    delay_rise: Callable[[float, float], float | None] | None = None

    def report_significant(self) -> bool:
        """Whether the latest report's loss is more than random loss on the path
        would explain (see :data:`SIGNIFICANCE`); True when its size is unknown."""
        if self.report_loss is None:
            return False
        if self.report_packets is None:
            return True
        return significant_loss(round(self.report_loss * self.report_packets), self.report_packets)


def significant_loss(lost: int, packets: int, significance: float = SIGNIFICANCE) -> bool:
    """``lost`` of ``packets`` is beyond what :data:`RANDOM_LOSS` would explain."""
    if packets <= 0:
        return False
    if packets > EXACT_PACKETS:
        return True
    return lost >= _least_significant(packets, significance)


@functools.lru_cache(maxsize=2 * EXACT_PACKETS)
def _least_significant(packets: int, significance: float) -> int:
    """The least lost count out of ``packets`` whose binomial tail under
    :data:`RANDOM_LOSS` is below ``significance``."""
    p, q = RANDOM_LOSS, 1 - RANDOM_LOSS
    pmf = [0.0] * (packets + 1)
    pmf[0] = q**packets
    for k in range(1, packets + 1):
        pmf[k] = pmf[k - 1] * (packets - k + 1) / k * p / q
    tail = 0.0
    for k in range(packets, -1, -1):
        tail += pmf[k]
        if tail >= significance:
            return k + 1
    return 0


class NackBurst:
    """One forwarded stream's NACKs, read as a loss rate over the sequence numbers they
    span: the earliest sign that a bottleneck queue overflows (a round trip after the
    first drop). Each sequence number counts once, when first NACKed (browsers NACK a
    missing packet again until it comes)."""

    __slots__ = ("_highest", "_lost")

    def __init__(self) -> None:
        self._highest: int | None = None  # highest 16-bit sequence number NACKed so far
        self._lost: deque[tuple[float, int]] = deque()  # (when NACKed, extended seq)

    def on_nack(self, seqs: list[int], now: float) -> float | None:
        """The sequence numbers of one NACK; returns the loss rate when the NACKs of the
        last :data:`BURST_WINDOW` seconds are a burst (else None)."""
        lost = self._lost
        while lost and now - lost[0][0] > BURST_WINDOW:
            lost.popleft()
        newest = lost[-1][1] if lost else None
        for seq in seqs:
            seq &= 0xFFFF
            hi = self._highest
            if hi is not None:
                delta = (seq - hi) & 0xFFFF
                if delta == 0 or delta >= 0x8000:
                    continue  # NACKed before (or older than what was)
            self._highest = seq
            ext = seq if newest is None else newest + ((seq - newest) & 0xFFFF)
            lost.append((now, ext))
            newest = ext
        if len(lost) < BURST_LEAST or lost[-1][0] - lost[0][0] < BURST_SPREAD:
            return None
        span = lost[-1][1] - lost[0][1] + 1
        count = len(lost)
        if count <= BURST_LOSS * span or not significant_loss(count, span, BURST_SIGNIFICANCE):
            return None
        rate = count / span
        lost.clear()  # one burst is reported once
        return rate


class BandwidthEstimator:
    """Combines the subscriber's REMB (what its receiver-side estimator allows) with
    loss from its receiver reports: heavy loss scales the estimate down, the way
    loss-based controllers do (RFC 8698 style), light loss leaves it alone."""

    __slots__ = (
        "_burst_at",
        "_burst_loss",
        "_delay_at",
        "_delay_bps",
        "_loss",
        "_loss_at",
        "_remb",
        "_remb_at",
        "_report_at",
        "_report_loss",
        "_report_lost",
        "_report_packets",
        "_report_since",
        "_rtt",
        "_sample",
        "_twcc_at",
        "_twcc_clean",
        "_twcc_lag",
        "delay_rise",
        "delivery",
        "on_alarm",
        "rtx_bps",
    )

    def __init__(self) -> None:
        self.on_alarm: Callable[[], None] | None = None  # a loss burst: act now
        self.rtx_bps: int | None = None  # what retransmissions may use (None: no limit)
        # how fast what went out when arrived (TwccSender.delivery); set with its feedback
        self.delivery: Callable[[float, float], tuple[int, int] | None] | None = None
        self.delay_rise: Callable[[float, float], float | None] | None = None
        self._burst_loss: float | None = None
        self._burst_at = 0.0
        self._delay_at: float | None = None
        self._delay_bps: int | None = None
        self._twcc_at: float | None = None
        self._twcc_clean = False
        self._twcc_lag = 0.0
        self._report_since: float | None = None
        self._remb: int | None = None
        self._remb_at = 0.0
        self._loss = 0.0
        self._loss_at = 0.0
        self._report_loss: float | None = None
        self._report_at = 0.0
        self._report_lost = 0.0
        self._report_packets: int | None = None
        self._rtt: float | None = None
        self._sample: RttSample | None = None

    def on_remb(self, bitrate_bps: int, now: float) -> None:
        if bitrate_bps < 0:
            return
        self._remb = bitrate_bps
        self._remb_at = now

    def on_loss_burst(self, loss: float, now: float) -> None:
        """A :class:`NackBurst` saw the path drop ``loss`` of what was sent, just now:
        the budget controller acts on it at once (through :attr:`on_alarm`)."""
        self._burst_loss = loss
        self._burst_at = now
        logger.debug("estimator %x: loss burst %.2f at %.3f", id(self), loss, now)
        self._alarm()

    def on_twcc(self, now: float, clean: bool = True, loss_wait: float = 0.0) -> None:
        """Transport-wide feedback came: the delay detector speaks for the path, and the
        browser's REMB (over what carries no transport-wide number: audio) is ignored.
        ``clean``: the detector's threshold is not raised by the path's jitter;
        ``loss_wait``: how long a packet reported missing may still come (twcc.py)."""
        self._twcc_at = now
        self._twcc_clean = clean
        self._twcc_lag = loss_wait + TWCC_LOSS_SLACK

    def on_delay_overuse(self, acked_bps: int, now: float) -> None:
        """The transport-wide delay gradient says the path queues (before it drops):
        ``acked_bps`` is what got through just before. Acted on at once, like a burst."""
        self._delay_at = now
        self._delay_bps = acked_bps
        logger.debug("estimator %x: delay overuse at %.3f, acked %d", id(self), now, acked_bps)
        self._alarm()

    def _alarm(self) -> None:
        """Congestion seen just now (a loss burst, a delay overuse): the budget
        controller acts at once, not at its next round."""
        if self.on_alarm is not None:
            try:
                self.on_alarm()
            except Exception:
                logger.exception("congestion alarm listener failed")

    def on_round_trip(self, now: float, rtt: float | None, sample: RttSample | None) -> None:
        """A receiver report's round trip alone: its loss figure is not the one to go by
        (transport-wide feedback reports loss, :meth:`on_receiver_report` from it)."""
        if rtt is not None and rtt >= 0:
            self._rtt = rtt
        if sample is not None:
            self._sample = sample

    def on_receiver_report(
        self,
        fraction_lost: int,
        now: float,
        rtt: float | None = None,
        sample: RttSample | None = None,
        video: bool = True,
        packets: int | None = None,
    ) -> None:
        """``fraction_lost`` as in RTCP: 0..255 for 0..100 %; ``packets`` how many the
        report covers (the extended highest sequence's advance), None if unknown.
        Audio's reports come every few seconds and so describe congestion long gone:
        they count in the smoothed loss only, never as the latest report."""
        frac = min(max(fraction_lost, 0), 255) / 256.0
        # One compound RTCP packet carries a block per stream (audio, each video): the
        # video blocks together are the report, not whichever came last (their packets
        # add up; when a block's size is unknown, the worst figure stands).
        self._loss = (1 - LOSS_ALPHA) * self._loss_now(now) + LOSS_ALPHA * frac
        if video:
            same = self._report_loss is not None and now - self._report_at < COMPOUND_SECONDS
            if same and packets is not None and self._report_packets is not None:
                # The videos of one subscriber share its path: their packets add up.
                self._report_lost += frac * packets
                self._report_packets += packets
                total = self._report_packets
                self._report_loss = self._report_lost / total if total else 0.0
            elif same:
                self._report_loss = max(frac, self._report_loss or 0.0)
                self._report_packets = None
            else:
                self._report_since = self._report_at if self._report_loss is not None else None
                self._report_loss = frac
                self._report_lost = frac * (packets or 0)
                self._report_packets = packets
            self._report_at = now
        self._loss_at = now
        if rtt is not None and rtt >= 0:
            self._rtt = rtt
        if sample is not None:
            self._sample = sample

    def _loss_now(self, now: float) -> float:
        """Loss from reports that stopped coming fades: once congestion paused the
        video, only sparse audio reports arrive, and an old figure must not block
        every probe for good."""
        silent = now - self._loss_at - LOSS_STALE
        if silent <= 0 or self._loss == 0:
            return self._loss
        return float(self._loss * 0.5 ** (silent / LOSS_HALF_LIFE))

    def estimate(self, now: float) -> Estimate:
        remb = self._remb if self._remb is not None and now - self._remb_at < REMB_TIMEOUT else None
        twcc = self._twcc_at is not None and now - self._twcc_at < REMB_TIMEOUT
        if twcc:
            remb = None
        loss = self._loss_now(now)
        if remb is not None and loss > HIGH_LOSS:
            remb = int(remb * (1 - 0.5 * loss))
        return Estimate(
            bitrate_bps=remb,
            loss=loss,
            rtt=self._rtt,
            sample=self._sample,
            report_loss=self._report_loss,
            report_at=self._report_at if self._report_loss is not None else None,
            report_packets=self._report_packets,
            report_since=self._report_since,
            burst_loss=self._burst_loss,
            burst_at=self._burst_at if self._burst_loss is not None else None,
            twcc=twcc,
            twcc_clean=twcc and self._twcc_clean,
            delay_at=self._delay_at,
            delay_bps=self._delay_bps,
            loss_lag=self._twcc_lag if twcc else 0.0,
            delivery=self.delivery if twcc else None,
            delay_rise=self.delay_rise if twcc else None,
        )


# A packet's loss is known from transport-wide feedback its wait for late packets plus this
# (the feedback interval, ~50-100 ms, and a round trip) after it went out
TWCC_LOSS_SLACK = 0.15

# --------------------------------------------------------------------------- budget

START_BUDGET = 600_000  # bits/s before the subscriber's first REMB ("audio + 1 video")
MIN_BUDGET = 100_000
PROBE_LOSS = 0.03  # loss above this during a probe: the probe failed ...
# ... above the path's steady loss: the smoothed loss outside probes, followed upwards at
# this rate per second and at once downwards, up to LOSS_BASE_MAX (5 % random loss on a
# Wi-Fi path blocked every probe, and the attendee stayed on one video for good)
LOSS_BASE_RISE = 0.3
LOSS_BASE_MAX = 0.08
PROBE_RTT_RISE = 0.02  # ... and so did one that made the round trip this much longer
REMB_FALL = 0.92  # a REMB below this share of the previous one: the path is queueing ...
DOWN_BAND = 0.9  # ... and below this share of the budget: lower the budget to it
UP_RATIO = 1.15  # REMB this far above the budget ...
UP_HOLD = 2.0  # ... for this long raises the budget to it
PROBE_LEAST_STEP = 1.05  # a step smaller than this is not worth a probe
PROBE_MIN_STEP = 1.25  # a probe raises the budget at least this much ...
PROBE_MAX_STEP = 1.35  # ... and at most this much (the allocator steps one rung);
PROBE_STREAK_STEP = 0.25  # each good probe in a row allows this much more, up to
PROBE_FAST_STEP = 2.0  # this (bandwidth came back: get there in a few steps)
PROBE_HOLD = 2.0  # seconds a probe is watched at most before it counts as good
PROBE_PAD_SECONDS = 0.4  # padding runs this long, then stops while the verdict comes:
# a 150 ms bottleneck queue absorbs a 35 % overshoot for that long without a drop, and
# the sender reports sent during it come back with the queueing delay in their RTT
PROBE_SR_AT = (0.2, 0.4)  # seconds into a probe: send a sender report
PROBE_VERDICT_SR = 0.3  # a report on an SR sent this late in the probe decides it
VERDICT_SLACK = 0.1  # seconds after the padding an SR still counts as the probe's
FIRST_PROBE_SCALE = 0.6  # the first probe (nothing verified yet) is this much shorter
RTT_FLOOR_RISE = 0.05  # the round-trip floor follows a longer path this fast per sample
REVERT_WINDOW = 6.0  # congestion this soon after a raise undoes the raise ...
CEILING_HOLD = 4.0  # ... and no probe reaches the level that failed for this long
PROBE_INTERVAL = 0.3  # seconds between a good probe and the next one
PROBE_BACKOFF_MAX = 1.0  # longest wait after failed probes (a lifted limit is found within it)
REMB_TO_LINK = 1.05  # budget per REMB bit when it fell (REMB ~ 0.85 x received, less margin)
DOWN_REPORT_LOSS = 0.10  # a receiver report this lossy, sent after the last decrease
DRAIN_SECONDS = 0.5  # ... took effect (the queue drained), is congestion
PEAK_DECAY = 0.6  # per second: how fast the remembered send rate before a cut fades
DELIVERED_SHARE = 0.9  # on congestion, the budget keeps this share of what got through
PROBE_USE = 0.5  # probe only while at least this share of what was allocated is sent
REMB_OVER_SENT = 1.5  # a REMB raises the budget to at most this much over what was sent
BURST_CUT = 0.5  # a loss burst (NACKs) counts as this share lost at most: halve what was sent
# The first cut of a congestion episode keeps at least the allocator's "audio + 1 video"
# row (512 kbit/s, with its slack); congestion that outlasts the cut's drain goes lower.
CUT_FLOOR = int(TIERS[1][1] * 1000 * TIER_SLACK) + 1
EPISODE_SECONDS = 3.0  # a cut this long after the last first one starts a new episode
# Transport-wide feedback (twcc.py): a delay overuse cuts to this share of what got through
# just before it (GCC's 0.85: the queue drains at the difference), and once a cut had
# this long to drain, the next overuse cuts again.
DELAY_CUT = 0.85
DELAY_DRAIN = 0.5
# A probe on a path with transport-wide feedback is judged by it: no overuse by this long
# after its padding stopped (the feedback's interval and a round trip) and it held.
# (0.1 s: a probe that overloads the path shows as overuse ~0.1-0.2 s into its padding;
# the verdict then falls in the allocation round 0.5 s after the probe began)
TWCC_VERDICT_SECONDS = 0.1
# ... and its padding ramps up from this share of the gap over the first PAD_RAMP of its
# padding time, so a link that fell under it shows a queue before the probe fills it (a
# 2.1 Mbit/s probe met a link just limited to 700 kbit/s and lost pictures with it)
PAD_RAMP_FROM = 0.3
PAD_RAMP = 0.6
# A probe whose packets sent from this share of its padding time on arrived at less than
# this share of the rate they left at was paced by a bottleneck: it did not hold, and the
# budget goes no higher than what arrived (GCC's probe result: the rate received)
DELIVERY_FROM = 0.25
PROBE_DELIVERED = 0.9
# ... and one whose packets from then on left at under this share of its level tested no
# more than what left, over this share (with its padding ramp and PROBE_PAD, a probe that
# sent all its padding leaves at ~0.8-0.9 of its level then)
PROBE_REACHED = 0.75
# On a path too jittery for the delay gradient, a probe whose late packets' least one-way
# delay was this much (ms) above that of the packets just before it queued: it failed
# (a 0.4 s probe 30 % over the link leaves ~60-90 ms of queue; the least of 15 delays
# under 0-300 ms of uniform jitter is over 60 ms once in ~30)
PROBE_QUEUE_RISE_MS = 60.0


class BudgetState(enum.Enum):
    """Where a :class:`BudgetController` is in its probe cycle; one at a time.

    The windows that overlap the cycle are deadlines of their own, not states: the
    revert window after a raise (:data:`REVERT_WINDOW`, it spans the next probes), the
    hold on a level that failed (:data:`CEILING_HOLD`, probes halve towards it meanwhile),
    the drain after a decrease (:data:`DRAIN_SECONDS`) and a high REMB's wait
    (:data:`UP_HOLD`). Whether a limit was ever seen is :attr:`BudgetController.limited`.
    """

    STEADY = "steady"  # the budget holds; a probe starts once more is wanted
    PROBING = "probing"  # a trial budget: padding tests it, media keeps the old one
    SETTLING = "settling"  # a probe held: the next one waits PROBE_INTERVAL
    BACKOFF = "backoff"  # a probe failed or went unverified, or congestion lowered the
    # budget: no probe until the backoff ends


_WAITS = (BudgetState.SETTLING, BudgetState.BACKOFF)  # states that end at _next_probe


class BudgetController:
    """What the allocator may spend on one subscriber: the estimate with hysteresis
    and careful upward probing.

    REMB alone never climbs much above what is being sent (Chrome caps it at ~1.5x
    the received rate), so staying put would freeze a subscriber at the low layer
    for good. Instead, when the path looks clean and the allocator wants more,
    the budget is raised for a trial (the allocator then steps one rung up); loss
    or a falling REMB during the trial reverts it and the next trial waits longer.
    Decreases are immediate, increases need evidence that lasts: it does not flap.

    The probe cycle is :attr:`state`; :meth:`_enter` alone changes it, and logs each
    transition at debug level. A wait (SETTLING, BACKOFF) ends at the first update at or
    after its deadline, so between updates :attr:`state` is as of the last one.
    """

    __slots__ = (
        "_backoff",
        "_base_rtt",
        "_before_probe",
        "_burst_cut_at",
        "_burst_seen",
        "_ceiling",
        "_ceiling_until",
        "_delay_cut_at",
        "_delay_seen",
        "_down_at",
        "_drain_until",
        "_episode_at",
        "_falling",
        "_last_good",
        "_last_remb",
        "_limited",
        "_loss_base",
        "_loss_base_at",
        "_next_probe",
        "_pad_seconds",
        "_probe_started",
        "_raised_at",
        "_ramp",
        "_rtt_floor",
        "_sample_seen",
        "_sent_peak",
        "_sent_peak_at",
        "_sr_marks",
        "_state",
        "_streak",
        "_up_since",
        "_verdict_after",
        "_verdict_held",
        "budget_bps",
        "probes_failed",
        "probes_ok",
    )

    def __init__(self, start_bps: int = START_BUDGET) -> None:
        self.budget_bps = start_bps
        self._state = BudgetState.STEADY
        self._limited = False  # seen evidence of a limit (loss, a falling REMB, a failed probe)
        self.probes_ok = 0
        self.probes_failed = 0
        self._last_remb: int | None = None
        self._falling = False
        self._up_since: float | None = None
        self._down_at = -1e9
        self._base_rtt: float | None = None
        self._streak = 0
        self._raised_at = -1e9
        self._last_good = start_bps
        self._ceiling = 0
        self._ceiling_until = -1e9
        self._probe_started = 0.0  # while PROBING: when the probe started
        self._sr_marks: list[float] = []
        self._sent_peak = 0
        self._sent_peak_at = 0.0
        self._pad_seconds = PROBE_PAD_SECONDS
        self._verdict_after = PROBE_VERDICT_SR
        self._verdict_held = False  # a verdict came while the loss of the probe was unknown
        self._rtt_floor: float | None = None
        self._sample_seen: RttSample | None = None
        self._before_probe = start_bps
        self._burst_seen = 0.0  # burst_at of the latest loss burst acted on (or skipped)
        self._episode_at = -1e9  # the first cut of the latest congestion episode
        self._burst_cut_at = -1e9  # the latest cut a loss burst made
        self._delay_seen = 0.0  # delay_at of the latest delay overuse acted on (or skipped)
        self._delay_cut_at = -1e9  # the latest cut a delay overuse made
        self._next_probe = 0.0  # while SETTLING or BACKOFF: when the wait ends
        self._loss_base = 0.0  # the path's steady loss (see LOSS_BASE_RISE)
        self._loss_base_at: float | None = None
        self._backoff = PROBE_INTERVAL
        self._ramp = False  # the running probe's padding ramps up (judged by TWCC)
        self._drain_until = -1e9  # see draining()

    @property
    def state(self) -> BudgetState:
        return self._state

    @property
    def probing(self) -> bool:
        return self._state is BudgetState.PROBING

    @property
    def limited(self) -> bool:
        """Whether evidence of a limit was ever seen (loss, a falling REMB, a failed
        probe); until then the allocator may grant the first video regardless."""
        return self._limited

    def draining(self, now: float) -> bool:
        """Whether the bottleneck's queue is to drain now: for :data:`DRAIN_SECONDS` after
        a cut that media's own loss (a burst) or a delay overuse caused (one that fails a
        probe only where the link carries less than media alone was given).
        The cut's new layers need a keyframe first, and what is sent meanwhile (the old
        layer, retransmissions) kept the queue full for 0.5 s after it: every frame lost
        packets in it. The allocation keeps video to half its frame rate meanwhile."""
        return now < self._drain_until

    @property
    def drain_until(self) -> float:
        """When the latest :meth:`draining` ends (in the past when none runs)."""
        return self._drain_until

    def padding(self, now: float) -> bool:
        """Whether probe padding should go out now (the first part of a probe)."""
        return self.probing and now < self._probe_started + self._pad_seconds

    def padding_share(self, now: float) -> float:
        """How much of the gap to the probed budget padding fills now (0: none)."""
        if not self.padding(now):
            return 0.0
        if not self._ramp:
            return 1.0
        ramp = (now - self._probe_started) / (self._pad_seconds * PAD_RAMP)
        return min(1.0, PAD_RAMP_FROM + (1.0 - PAD_RAMP_FROM) * max(ramp, 0.0))

    def take_sender_report(self, now: float) -> bool:
        """True once per :data:`PROBE_SR_AT` mark a running probe has passed: send a
        sender report now, so a receiver report measures the probe's queueing."""
        marks = self._sr_marks
        if not self.probing or not marks or now < self._probe_started + marks[0]:
            return False
        while marks and now >= self._probe_started + marks[0]:
            marks.pop(0)
        return True

    @property
    def committed_bps(self) -> int:
        """What media may use: during a probe the budget from before it (the probe
        itself is padding, so a failed one costs no picture)."""
        return self._before_probe if self.probing else self.budget_bps

    def update(
        self,
        estimate: Estimate,
        now: float,
        wanted_bps: int | None = None,
        sending_bps: int | None = None,
        allocated_bps: int | None = None,
        video_flowing: bool = False,
    ) -> int:
        """Fold in the latest estimate; ``wanted_bps`` is the budget the allocator
        needs for one more rung (``None``: nothing more to want, so no probe).
        ``sending_bps`` is what is actually sent and ``allocated_bps`` what the last
        allocation planned: no probe while far less is sent than planned (a layer
        switch still waits), so a budget nobody uses cannot grow."""
        if self._state in _WAITS and now >= self._next_probe:
            over = "backoff over" if self._state is BudgetState.BACKOFF else "interval over"
            self._enter(BudgetState.STEADY, over, now)
        if sending_bps:
            elapsed = max(now - self._sent_peak_at, 0.0)
            self._sent_peak = max(sending_bps, int(self._sent_peak * PEAK_DECAY**elapsed))
            self._sent_peak_at = now
        if not self.probing:
            base, at = self._loss_base, self._loss_base_at
            loss = estimate.loss
            if loss <= base or at is None:
                self._loss_base = min(loss, LOSS_BASE_MAX)
            else:
                rise = min(LOSS_BASE_RISE * max(now - at, 0.0), 1.0)
                self._loss_base = min(base + rise * (loss - base), LOSS_BASE_MAX)
            self._loss_base_at = now
        probe_loss = self._loss_base + PROBE_LOSS
        remb = estimate.bitrate_bps
        if remb is not None and remb != self._last_remb:
            self._falling = self._last_remb is not None and remb < self._last_remb * REMB_FALL
            self._last_remb = remb
        # Smoothed loss outlives the congestion it reports, and acting on it again
        # while less is sent spirals down to audio only: each report's own loss counts,
        # once the last decrease had time to drain the queue (a falling REMB is a fresh
        # signal every time).
        # No receiver report yet: no loss is known.
        report_loss, report_at = estimate.report_loss, estimate.report_at
        loss_now = report_loss if report_loss is not None else 0.0
        # A report covers the time since the one before it: loss from before the last
        # decrease drained is old news (it cut the budget already, or a burst did).
        covered_from = estimate.report_since if estimate.report_since is not None else report_at
        lossy = report_lossy = (
            report_loss is not None
            and report_at is not None
            and covered_from is not None
            and report_loss > DOWN_REPORT_LOSS
            and covered_from >= self._down_at + DRAIN_SECONDS
            and estimate.report_significant()
        )
        burst_loss, burst_at = estimate.burst_loss, estimate.burst_at
        burst = False
        if burst_loss is not None and burst_at is not None and burst_at > self._burst_seen:
            self._burst_seen = burst_at
            # Its own drain, not the one after any decrease: a failed probe holds off
            # report-driven cuts for a while, but a link that fell meanwhile must not
            # go on overflowing for seconds.
            if burst_at >= self._burst_cut_at + DRAIN_SECONDS:
                # NACKs a round trip after the drop: the queue overflows now. A burst's
                # rate is over the packets it spans (a full drop-tail queue loses runs),
                # not what the link carries: count it as at most BURST_CUT lost.
                burst_rate = min(burst_loss, BURST_CUT)
                loss_now = max(burst_rate, loss_now) if lossy else burst_rate
                lossy = burst = True
        delay_at, delay_bps = estimate.delay_at, estimate.delay_bps
        delay = False
        delay_target = self.budget_bps
        if delay_at is not None and delay_bps is not None and delay_at > self._delay_seen:
            self._delay_seen = delay_at
            if delay_at >= self._delay_cut_at + DELAY_DRAIN:
                # The queue grows now (a transport-wide delay gradient, before any drop):
                # what got through just before is what the link carries.
                delay = True
                delay_target = int(delay_bps * DELAY_CUT)
        remb_fell = self._falling and remb is not None and remb < self.budget_bps * DOWN_BAND
        congested = lossy or remb_fell or delay
        sample = estimate.sample
        fresh = sample is not None and sample is not self._sample_seen
        if fresh and sample is not None:
            self._sample_seen = sample
            floor = self._rtt_floor
            if floor is None or sample.rtt < floor:
                self._rtt_floor = sample.rtt
            elif not self.probing:
                self._rtt_floor = floor + RTT_FLOOR_RISE * (sample.rtt - floor)
        rtt = estimate.rtt
        # Without raw round trips (a source with smoothed figures only), a smoothed
        # one that grew during a probe stands for them.
        # A path whose delay varies by far more than a probe's queue would add (0-300 ms of
        # jitter: the transport-wide detector's noise gate says so) makes a round trip that
        # grew no sign of the probe: it is judged by its loss (the feedback's) alone.
        jittery = estimate.twcc and not estimate.twcc_clean
        queueing = (
            not jittery
            and estimate.sample is None
            and rtt is not None
            and self._base_rtt is not None
            and rtt > self._base_rtt + PROBE_RTT_RISE
        )
        if self.probing:
            # The report on a sender report sent late in the probe saw what the probe
            # did to the path: a longer round trip (a queue) or loss fails it.
            # (an SR sent after the padding stopped saw a drained queue: no verdict)
            verdict = (
                fresh
                and sample is not None
                and self._probe_started + self._verdict_after
                <= sample.sr_sent
                <= self._probe_started + self._pad_seconds + VERDICT_SLACK
            )
            slow = (
                verdict
                and sample is not None
                and self._base_rtt is not None
                and sample.rtt > self._base_rtt + PROBE_RTT_RISE
                and not jittery
            )
            lost = verdict and sample is not None and sample.lost > probe_loss
            if estimate.twcc_clean and not verdict:
                # Transport-wide feedback saw the probe's packets arrive: no overuse
                # since it started, once the feedback on its padding is in, and it held.
                verdict = (
                    now >= self._probe_started + self._pad_seconds + TWCC_VERDICT_SECONDS - 0.02
                    and (delay_at is None or delay_at < self._probe_started)
                )
            failed = [
                why
                for bad, why in (
                    (delay, "queueing delay"),
                    (estimate.loss > probe_loss, "loss"),
                    (congested, "congestion"),
                    (queueing, "a longer round trip"),
                    (slow, "its sender report queued"),
                    (lost, "its report counted loss"),
                )
                if bad
            ]
            if failed:
                self._fail_probe(now, ", ".join(failed))
                if burst:
                    # Media was lost, not only padding: the link fell under what media
                    # alone sends (the probe met a drop), so cut as well.
                    keep = self._cut_floor(now, reported=report_lossy)
                    target = self._cut_target(remb, lossy, loss_now, sending_bps)
                    self._set(min(self.budget_bps, max(target, keep)))
                    self._burst_cut_at = now
                    self._drain_until = now + DRAIN_SECONDS
                if delay:
                    self._delay_cut_at = now
                    if delay_bps is not None and delay_bps < self.budget_bps:
                        # The link carries less than media alone was given (it fell
                        # under the probe): cut as well, to what got through.
                        keep = self._cut_floor(now, reported=report_lossy)
                        self._set(min(self.budget_bps, max(delay_target, keep)))
                        self._drain_until = now + DRAIN_SECONDS
                return self.budget_bps
            verdict = verdict or self._verdict_held
            if jittery and now < self._probe_started + self._pad_seconds + estimate.loss_lag:
                # Nothing but loss judges a probe on this path, and the feedback judges a
                # packet lost only that long after it went out: no verdict before (a probe
                # into a link just limited held on its report, then its loss came).
                self._verdict_held = verdict
                return self.budget_bps
            if now < self._probe_started + PROBE_HOLD and not verdict:
                return self.budget_bps
            if not verdict and self._rtt_floor is not None:
                # No report on the probe's own sender reports came back: nothing says
                # the path took it. Back to the old budget, without counting a failure.
                self._set(self._before_probe)
                self._enter(BudgetState.BACKOFF, "no verdict", now, now + self._backoff)
                return self.budget_bps
            if jittery and estimate.delay_rise is not None:
                # The delay gradient is drowned here, and a probe that fits in the
                # bottleneck's queue loses nothing: it held, and the layer it let in
                # overflowed the queue (freezes of 1-2.5 s under 300 ms of jitter). Its
                # packets' least delay still shows the queue it built.
                start = self._probe_started
                queued = estimate.delay_rise(start, start + self._pad_seconds)
                if queued is not None and queued > PROBE_QUEUE_RISE_MS:
                    self._fail_probe(now, f"its packets queued ({queued:.0f} ms)")
                    return self.budget_bps
            took = self._probe_delivery(estimate)
            if took is not None and took[1] < took[0] * PROBE_DELIVERED:
                # No overuse seen, but its packets arrived slower than they left: a
                # bottleneck queue absorbed the probe and paced it (a 0.4 s probe 20 %
                # over the link fits in a 150 ms queue before the delay detector speaks).
                # Kept, the level would be the base of the next, larger probe, and that
                # one overflows the queue with media in it. What arrived is the evidence.
                sent, arrived = took
                self._fail_probe(now, f"arrived at {arrived} bps of {sent} sent")
                self._set(max(self.budget_bps, min(self._ceiling, int(arrived * DELIVERED_SHARE))))
                return self.budget_bps
            # The probe held. Its packets may have gone out well under the level it was to
            # test (its padding resends recent packets, and right after a layer switch there
            # are few): then it tested what went out, no more (a 2x probe that sent 60 % of
            # its level held, and the second camera it let in overflowed a 700 kbit/s link).
            reached = int(took[0] / PROBE_REACHED) if took is not None else self.budget_bps
            short = reached < self.budget_bps
            if short:
                self._set(max(self._before_probe, reached))
            elif self.budget_bps >= self._ceiling:
                self._ceiling_until = -1e9  # the level that failed holds now
            self._raised(now, self._before_probe)
            self.probes_ok += 1
            self._streak = 0 if short else self._streak + 1
            self._backoff = PROBE_INTERVAL
            self._up_since = None
            why = f"probe held at the {reached} bps it sent" if short else "probe held"
            self._enter(BudgetState.SETTLING, why, now, now + PROBE_INTERVAL)
        if congested:
            cut_floor = self._cut_floor(now, reported=report_lossy)
            if burst:
                self._burst_cut_at = now
            if delay:
                self._delay_cut_at = now
            if burst or delay:
                self._drain_until = now + DRAIN_SECONDS
        if congested and now - self._raised_at < REVERT_WINDOW:
            # The step up was one too many: back to where it was fine, and stay below.
            # (A burst says the link fell, maybe far below that: no higher than what
            # got through either.)
            self._ceiling, self._ceiling_until = self.budget_bps, now + CEILING_HOLD
            back = min(self.budget_bps, self._last_good)
            if burst:
                back = min(back, self._cut_target(remb, lossy, loss_now, sending_bps))
            if delay:
                back = min(back, delay_target)
            self._set(max(back, cut_floor))
            self._limited = True
            self._streak = 0  # the next probe steps from here as after any congestion
            self._raised_at = -1e9
            self._down_at = now
            self._falling = False
            self._up_since = None
            until = max(self._next_probe, now + self._backoff)
            self._enter(BudgetState.BACKOFF, "congestion after a raise: reverted", now, until)
            return self.budget_bps
        if congested:
            if lossy or remb_fell:
                target = self._cut_target(remb, lossy, loss_now, sending_bps)
                if delay:
                    target = min(target, delay_target)
            else:  # the delay alone: what got through is measured, no floor of what was sent
                target = delay_target
            self._set(min(self.budget_bps, max(target, cut_floor)))
            self._limited = True
            self._streak = 0
            self._down_at = now
            self._falling = False
            self._up_since = None
            until = max(self._next_probe, now + self._backoff)
            self._enter(BudgetState.BACKOFF, "congestion: lowered", now, until)
            return self.budget_bps
        if remb is not None:
            if remb > self.budget_bps * UP_RATIO:
                self._up_since = self._up_since if self._up_since is not None else now
                if now - self._up_since >= UP_HOLD:
                    # A browser measures at most ~1.5x what it receives; a REMB far
                    # beyond that is its estimator's start value or a probe cluster
                    # it timed through a shaper's burst (2.3-2.7 Mbit/s seen behind a
                    # 650 kbit/s link), not a measured path.
                    target = remb
                    if sending_bps:
                        target = min(target, int(self._sent_peak * REMB_OVER_SENT))
                    if target > self.budget_bps:
                        self._raised(now, self.budget_bps)
                        self._set(target)
                    self._up_since = None
            else:
                self._up_since = None
            # A REMB below the budget is no news while it does not fall: the browser
            # never reports much more than 1.5x what it receives.
        if (
            wanted_bps is not None
            and wanted_bps > self.budget_bps
            and self._state is BudgetState.STEADY
            and estimate.loss <= self._loss_base + PROBE_LOSS / 2
            and (
                sending_bps is None
                or allocated_bps is None
                or sending_bps >= allocated_bps * PROBE_USE
            )
            # without a REMB (or transport-wide feedback) there is no evidence yet,
            # unless no video flows to give one
            and (remb is not None or estimate.twcc or not video_flowing)
        ):
            bonus = PROBE_STREAK_STEP * self._streak
            most = min(PROBE_MAX_STEP + bonus, PROBE_FAST_STEP)
            least = min(PROBE_MIN_STEP + bonus, most)
            step = min(max(wanted_bps, self.budget_bps * least), self.budget_bps * most)
            # A probe failed above: halve the distance to it (unless the delay detector
            # judges probes: one that fails costs a little queueing, not lost media).
            if now < self._ceiling_until and not estimate.twcc_clean:
                step = min(step, (self.budget_bps + self._ceiling) / 2)
                if step <= self.budget_bps * PROBE_LEAST_STEP < self._ceiling:
                    # Halving has closed in on the failed level: test that level again
                    # (after the backoff) rather than stop probing until the hold ends,
                    # so bandwidth that came back shows within the backoff, not 4 s.
                    step = self._ceiling
            if step > self.budget_bps * PROBE_LEAST_STEP:
                # a probe must not make the round trip longer than the path's floor
                self._base_rtt = self._rtt_floor if self._rtt_floor is not None else estimate.rtt
                self._before_probe = self.budget_bps
                self._set(int(step))
                self._probe_started = now
                self._verdict_held = False
                self._ramp = estimate.twcc_clean
                # Before anything was verified the start budget is a guess, and what
                # flows may be far below it: a shorter first probe overshoots less.
                scale = FIRST_PROBE_SCALE if self.probes_ok == 0 and not self._limited else 1.0
                self._pad_seconds = PROBE_PAD_SECONDS * scale
                self._verdict_after = PROBE_VERDICT_SR * scale
                self._sr_marks = [mark * scale for mark in PROBE_SR_AT]
                self._enter(BudgetState.PROBING, "more wanted", now)
        return self.budget_bps

    def _probe_delivery(self, estimate: Estimate) -> tuple[int, int] | None:
        """How fast the running probe's packets (from :data:`DELIVERY_FROM` of its
        padding time on) left and arrived, where transport-wide feedback judges probes."""
        if estimate.delivery is None or not estimate.twcc_clean:
            return None
        start, pad = self._probe_started, self._pad_seconds
        return estimate.delivery(start + pad * DELIVERY_FROM, start + pad)

    def _cut_target(
        self, remb: int | None, lossy: bool, loss_now: float, sending_bps: int | None
    ) -> int:
        """What a congestion cut lowers the budget to (never raised by it)."""
        # A browser that sees queueing reports ~85 % of what it receives: the link.
        link = int(remb * REMB_TO_LINK) if remb is not None else None
        target = link if link is not None else self.budget_bps
        if lossy:
            target = int(min(target, self.budget_bps) * (1 - 0.5 * loss_now))
        if sending_bps:
            # What got through is a floor: a queue that drains makes REMB and loss
            # undershoot for a moment, and the link carried this much (smoothed loss
            # lags behind, so never trust it beyond what the browser says it got).
            # A browser's REMB can trail far below what it receives (it climbs a
            # few % a second), so it never pulls the budget under what got through.
            # What was sent before the loss showed, not what is sent now: a pause
            # of the video the last cut caused must not feed the next cut.
            delivered = int(max(sending_bps, self._sent_peak) * (1 - loss_now) * DELIVERED_SHARE)
            target = max(target, delivered)
        return target

    def _cut_floor(self, now: float, *, reported: bool) -> int:
        """The least a congestion cut now leaves (see :meth:`_first_reaction`). Only a
        receiver report's significant loss, once the first reaction had time to work,
        goes below :data:`CUT_FLOOR` (to audio only): the bursts that follow a cut may
        be its own leftovers (a layer switch waits for a keyframe meanwhile), and a
        REMB falls with delay alone (300 ms of jitter took it to ~260 kbit/s on an
        unlimited link) where a picture still gets through."""
        first = self._first_reaction(now)
        return min(self.budget_bps, CUT_FLOOR) if first or not reported else 0

    def _first_reaction(self, now: float) -> bool:
        """Whether a cut now is the first reaction to a congestion episode (or comes
        before that reaction could have drained the queue): it keeps the one-video
        row (:data:`CUT_FLOOR`). Only congestion that outlasts a cut goes below it:
        a REMB or report read while a queue overflows undershoots the link (a REMB of
        450 kbit/s behind 700 kbit/s was seen), and audio only is a big step."""
        since = now - self._episode_at
        if since > EPISODE_SECONDS:
            self._episode_at = now
            return True
        return since < DRAIN_SECONDS

    def _raised(self, now: float, good: int) -> None:
        self._raised_at = now
        self._last_good = good

    def _fail_probe(self, now: float, why: str) -> None:
        # The probe was padding: media never went above the old budget, so back to it.
        self.probes_failed += 1
        self._streak = 0
        self._limited = True
        self._ceiling, self._ceiling_until = self.budget_bps, now + CEILING_HOLD
        self._set(self._before_probe)
        self._down_at = now + PROBE_HOLD  # its loss still shows in the next reports
        self._falling = False
        self._backoff = min(self._backoff * 2, PROBE_BACKOFF_MAX)
        self._enter(BudgetState.BACKOFF, f"probe failed: {why}", now, now + self._backoff)

    def _enter(
        self, state: BudgetState, reason: str, now: float, until: float | None = None
    ) -> None:
        """The one place the state changes, and logs it; ``until``: when a wait
        (SETTLING, BACKOFF) ends, a deadline only waits have."""
        assert (state in _WAITS) == (until is not None), (state, until)
        previous, self._state = self._state, state
        if until is not None:
            if previous is state and until == self._next_probe:
                return  # a congested report in a backoff that already ends then
            self._next_probe = until
        if not logger.isEnabledFor(logging.DEBUG):
            return
        logger.debug(
            "budget %x: %s -> %s at %.3f (%s): budget %d, committed %d%s",
            id(self),
            previous.value,
            state.value,
            now,
            reason,
            self.budget_bps,
            self.committed_bps,
            "" if until is None else f", until {until:.3f}",
        )

    def _set(self, bps: int) -> None:
        self.budget_bps = max(int(bps), MIN_BUDGET)
