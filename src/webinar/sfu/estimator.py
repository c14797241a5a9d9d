"""Per-subscriber bandwidth and loss estimate from REMB and receiver reports.

Pure logic with an injected clock; the bandwidth tiers build on :attr:`estimate_bps`.
"""

from __future__ import annotations

import enum
import functools
import logging
from dataclasses import dataclass

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

    def report_significant(self) -> bool:
        """Whether the latest report's loss is more than random loss on the path
        would explain (see :data:`SIGNIFICANCE`); True when its size is unknown."""
        if self.report_loss is None:
            return False
        if self.report_packets is None:
            return True
        return significant_loss(round(self.report_loss * self.report_packets), self.report_packets)


def significant_loss(lost: int, packets: int) -> bool:
    """``lost`` of ``packets`` is beyond what :data:`RANDOM_LOSS` would explain."""
    if packets <= 0:
        return False
    if packets > EXACT_PACKETS:
        return True
    return lost >= _least_significant(packets)


@functools.lru_cache(maxsize=EXACT_PACKETS)
def _least_significant(packets: int) -> int:
    """The least lost count out of ``packets`` whose binomial tail under
    :data:`RANDOM_LOSS` is below :data:`SIGNIFICANCE`."""
    p, q = RANDOM_LOSS, 1 - RANDOM_LOSS
    pmf = [0.0] * (packets + 1)
    pmf[0] = q**packets
    for k in range(1, packets + 1):
        pmf[k] = pmf[k - 1] * (packets - k + 1) / k * p / q
    tail = 0.0
    for k in range(packets, -1, -1):
        tail += pmf[k]
        if tail >= SIGNIFICANCE:
            return k + 1
    return 0


class BandwidthEstimator:
    """Combines the subscriber's REMB (what its receiver-side estimator allows) with
    loss from its receiver reports: heavy loss scales the estimate down, the way
    loss-based controllers do (RFC 8698 style), light loss leaves it alone."""

    __slots__ = (
        "_loss",
        "_loss_at",
        "_remb",
        "_remb_at",
        "_report_at",
        "_report_loss",
        "_report_lost",
        "_report_packets",
        "_rtt",
        "_sample",
    )

    def __init__(self) -> None:
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
        )


# --------------------------------------------------------------------------- budget

START_BUDGET = 600_000  # bits/s before the subscriber's first REMB ("audio + 1 video")
MIN_BUDGET = 100_000
PROBE_LOSS = 0.03  # loss above this during a probe: the probe failed ...
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
PROBE_BACKOFF_MAX = 2.0  # longest wait after failed probes
REMB_TO_LINK = 1.05  # budget per REMB bit when it fell (REMB ~ 0.85 x received, less margin)
DOWN_REPORT_LOSS = 0.10  # a receiver report this lossy, sent after the last decrease
DRAIN_SECONDS = 0.5  # ... took effect (the queue drained), is congestion
PEAK_DECAY = 0.6  # per second: how fast the remembered send rate before a cut fades
DELIVERED_SHARE = 0.9  # on congestion, the budget keeps this share of what got through
PROBE_USE = 0.5  # probe only while at least this share of what was allocated is sent
REMB_OVER_SENT = 1.5  # a REMB raises the budget to at most this much over what was sent


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
        "_ceiling",
        "_ceiling_until",
        "_down_at",
        "_falling",
        "_last_good",
        "_last_remb",
        "_limited",
        "_next_probe",
        "_pad_seconds",
        "_probe_started",
        "_raised_at",
        "_rtt_floor",
        "_sample_seen",
        "_sent_peak",
        "_sent_peak_at",
        "_sr_marks",
        "_state",
        "_streak",
        "_up_since",
        "_verdict_after",
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
        self._rtt_floor: float | None = None
        self._sample_seen: RttSample | None = None
        self._before_probe = start_bps
        self._next_probe = 0.0  # while SETTLING or BACKOFF: when the wait ends
        self._backoff = PROBE_INTERVAL

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

    def padding(self, now: float) -> bool:
        """Whether probe padding should go out now (the first part of a probe)."""
        return self.probing and now < self._probe_started + self._pad_seconds

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
        lossy = (
            report_loss is not None
            and report_at is not None
            and report_loss > DOWN_REPORT_LOSS
            and report_at >= self._down_at + DRAIN_SECONDS
            and estimate.report_significant()
        )
        congested = lossy or (
            self._falling and remb is not None and remb < self.budget_bps * DOWN_BAND
        )
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
        queueing = (
            estimate.sample is None
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
            )
            lost = verdict and sample is not None and sample.lost > PROBE_LOSS
            failed = [
                why
                for bad, why in (
                    (estimate.loss > PROBE_LOSS, "loss"),
                    (congested, "congestion"),
                    (queueing, "a longer round trip"),
                    (slow, "its sender report queued"),
                    (lost, "its report counted loss"),
                )
                if bad
            ]
            if failed:
                self._fail_probe(now, ", ".join(failed))
                return self.budget_bps
            if now < self._probe_started + PROBE_HOLD and not verdict:
                return self.budget_bps
            if not verdict and self._rtt_floor is not None:
                # No report on the probe's own sender reports came back: nothing says
                # the path took it. Back to the old budget, without counting a failure.
                self._set(self._before_probe)
                self._enter(BudgetState.BACKOFF, "no verdict", now, now + self._backoff)
                return self.budget_bps
            # the probe held: keep its budget
            self._raised(now, self._before_probe)
            if self.budget_bps >= self._ceiling:
                self._ceiling_until = -1e9  # the level that failed holds now
            self.probes_ok += 1
            self._streak += 1
            self._backoff = PROBE_INTERVAL
            self._up_since = None
            self._enter(BudgetState.SETTLING, "probe held", now, now + PROBE_INTERVAL)
        if congested and now - self._raised_at < REVERT_WINDOW:
            # The step up was one too many: back to where it was fine, and stay below.
            self._ceiling, self._ceiling_until = self.budget_bps, now + CEILING_HOLD
            self._set(min(self.budget_bps, self._last_good))
            self._limited = True
            self._raised_at = -1e9
            self._down_at = now
            self._falling = False
            self._up_since = None
            until = max(self._next_probe, now + self._backoff)
            self._enter(BudgetState.BACKOFF, "congestion after a raise: reverted", now, until)
            return self.budget_bps
        if congested:
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
                delivered = int(
                    max(sending_bps, self._sent_peak) * (1 - loss_now) * DELIVERED_SHARE
                )
                target = max(target, delivered)
            self._set(min(self.budget_bps, target))
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
            and estimate.loss <= PROBE_LOSS / 2
            and (
                sending_bps is None
                or allocated_bps is None
                or sending_bps >= allocated_bps * PROBE_USE
            )
            # without a REMB there is no evidence yet, unless no video flows to give one
            and (remb is not None or not video_flowing)
        ):
            bonus = PROBE_STREAK_STEP * self._streak
            most = min(PROBE_MAX_STEP + bonus, PROBE_FAST_STEP)
            least = min(PROBE_MIN_STEP + bonus, most)
            step = min(max(wanted_bps, self.budget_bps * least), self.budget_bps * most)
            if now < self._ceiling_until:  # a probe failed above: halve the distance to it
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
                # Before anything was verified the start budget is a guess, and what
                # flows may be far below it: a shorter first probe overshoots less.
                scale = FIRST_PROBE_SCALE if self.probes_ok == 0 and not self._limited else 1.0
                self._pad_seconds = PROBE_PAD_SECONDS * scale
                self._verdict_after = PROBE_VERDICT_SR * scale
                self._sr_marks = [mark * scale for mark in PROBE_SR_AT]
                self._enter(BudgetState.PROBING, "more wanted", now)
        return self.budget_bps

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
