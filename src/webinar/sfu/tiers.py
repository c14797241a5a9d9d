"""Bandwidth tiers in the SFU: per subscriber, the budget and the allocation applied
to its consumers; per layered producer, which encodings anyone needs (dynacast).

The owner (a room) ranks streams with :meth:`SubscriberTiers.set_priority`; this
module knows no roles or speakers, only classes and ranks. What the subscriber
should be told (its tier, bandwidth, which streams are paused) comes out through
the ``on_report`` callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .allocator import HEADROOM, Allocation, Demand, Layer, Quality, StreamClass, Tier, allocate
from .estimator import BandwidthEstimator, BudgetController

logger = logging.getLogger(__name__)

ALLOCATE_INTERVAL = 0.5  # seconds between allocations of one subscriber
REPORT_INTERVAL = 2.0  # the numbers (bandwidth) are re-sent at most this often
REPORT_CHANGE = 0.15  # ... and only when they moved by more than this share
DYNACAST_HOLD = 5.0  # seconds a layer nobody needs keeps being sent
DEFAULT_RANK = 1000
# While probing, media plus padding fill this share of the probed budget (its media
# share and a little): a link that cannot carry it shows a longer round trip first,
# so the probe ends before the queue overflows into the picture.
PROBE_PAD = 0.9
RTX_SHARE = 0.5  # retransmissions may use this share of the budget, on average
# While the controller drains the queue after a congestion cut: temporal layers up to this
# (L1T3's TL0+TL1, half the frame rate and ~60 % of the rate; a quarter would be a freeze
# by Chrome's count at 15 fps)
DRAIN_TEMPORAL = 1


class Allocatable(Protocol):
    """What a consumer offers the allocator."""

    @property
    def producer_key(self) -> str: ...

    @property
    def allocatable(self) -> bool: ...  # negotiated, wanted by its owner, open

    @property
    def is_audio(self) -> bool: ...

    @property
    def sent_bytes(self) -> int: ...  # payload octets sent so far

    @property
    def switching(self) -> bool: ...  # a layer switch waits for its keyframe

    def send_padding(self, nbytes: int, now: float) -> int: ...  # redundant RTX; bytes sent

    def ladder(self) -> tuple[Layer, ...]: ...

    def set_allocation(self, layer: Layer | None) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamReport:
    producer_id: str
    paused: bool
    spatial: int | None
    temporal: int | None


@dataclass(frozen=True, slots=True)
class AllocationReport:
    quality: Quality
    estimate_bps: int | None
    budget_bps: int
    tier: Tier
    streams: tuple[StreamReport, ...]

    def shape(self) -> tuple[object, ...]:
        """What matters to the subscriber's UI apart from the numbers."""
        return (self.quality, self.tier.videos, self.streams)


class SubscriberTiers:
    """One subscriber's budget, quality choice and stream priorities."""

    def __init__(
        self,
        estimator: BandwidthEstimator,
        *,
        on_report: Callable[[AllocationReport], None] | None = None,
        controller: BudgetController | None = None,
    ) -> None:
        self.estimator = estimator
        self.controller = controller or BudgetController()
        self.quality = Quality.AUTO
        self.last: Allocation | None = None
        self.last_report: AllocationReport | None = None
        self._on_report = on_report
        self._priority: dict[str, tuple[StreamClass, int]] = {}
        self._next_at = 0.0
        self._reported_at = -1e9
        self._reported_shape: tuple[object, ...] | None = None
        # (budget, inputs) of the last allocation if it gave every stream its best rung
        self._full: tuple[int, tuple[object, ...]] | None = None
        self._shown: tuple[tuple[str, int | None, int | None], ...] = ()
        self._dirty = True
        self.sending_bps = 0  # what the consumers sent lately (payload, smoothed)
        self._sent: tuple[float, int] | None = None

    def set_on_report(self, on_report: Callable[[AllocationReport], None] | None) -> None:
        self._on_report = on_report
        self._dirty = True

    def set_quality(self, quality: Quality) -> None:
        if quality is not self.quality:
            self.quality = quality
            self._dirty = True
            self._next_at = 0.0

    def set_priority(self, producer_key: str, cls: StreamClass, rank: int) -> None:
        if self._priority.get(producer_key) != (cls, rank):
            self._priority[producer_key] = (cls, rank)
            self._dirty = True

    def forget(self, producer_key: str) -> None:
        self._priority.pop(producer_key, None)

    def urgent(self) -> None:
        """Allocate at the next :meth:`tick`, whenever the last one was."""
        self._dirty = True
        self._next_at = 0.0

    def tick(self, now: float, consumers: Iterable[Allocatable]) -> AllocationReport | None:
        """Re-allocate (at most every :data:`ALLOCATE_INTERVAL` unless priorities or
        the quality changed) and apply the result; returns the report when one is due."""
        if now < self._next_at and not self._dirty:
            return None
        self._next_at = now + ALLOCATE_INTERVAL
        shape_changed = self._dirty
        self._dirty = False
        live = [c for c in consumers if c.allocatable]
        demands: list[Demand] = []
        for c in live:
            key = c.producer_key
            cls, rank = self._priority.get(
                key, (StreamClass.AUDIO if c.is_audio else StreamClass.CAMERA, DEFAULT_RANK)
            )
            if c.is_audio:
                cls = StreamClass.AUDIO
            demands.append(Demand(key=key, cls=cls, rank=rank, layers=c.ladder()))
        estimate = self.estimator.estimate(now)
        wanted = self.last.next_bps if self.last is not None else None
        self._measure_sending(now, live)
        flowing = self.last is not None and self.last.tier.videos > 0
        if any(c.switching for c in live):
            wanted = None  # what was granted is not in use yet: no probe on top of it
        # What the last allocation planned: no probe while far less is sent (the probe's
        # padding would fill the gap, on top of a budget nobody uses: a link that just
        # fell to a third took a 2x probe's 3.8 Mbit/s and lost pictures with it).
        allocated = self.last.used_bps if self.last is not None else None
        self.controller.update(
            estimate, now, wanted, self.sending_bps, allocated, video_flowing=flowing
        )
        budget = self.controller.committed_bps
        if not self.controller.limited:
            budget = max(budget, _first_video_budget(demands))
        inputs = (self.quality, tuple(demands))
        full = self._full
        if full is not None and budget >= full[0] and full[1] == inputs and self.last is not None:
            # Everything at its best at a budget no higher, for the same streams: any
            # larger budget gives the same allocation (allocate is monotone: more videos
            # allowed, more room to fill, no next rung), so it is not worked out again.
            alloc, shown = self.last, self._shown
        else:
            alloc = allocate(budget, demands, self.quality)
            complete = alloc.next_bps is None and alloc.used_bps == alloc.wanted_bps
            if not complete:
                self._full = None
            elif full is not None and full[1] == inputs:  # complete at both: from the lower
                self._full = (min(full[0], budget), inputs)
            else:
                self._full = (budget, inputs)
            # What the subscriber's UI shows apart from the numbers (AllocationReport.shape),
            # compared before any report is built: most rounds change nothing worth telling.
            shown = self._shown = tuple(
                (d.key, None, None)
                if (rung := alloc.choices[d.key]) is None
                else (d.key, rung.spatial, rung.temporal)
                for d in sorted(demands, key=_demand_key)
                if d.cls is not StreamClass.AUDIO
            )
        self.estimator.rtx_bps = int(budget * RTX_SHARE)
        self.last = alloc
        draining = self.controller.draining(now)
        if draining:
            # Right after a congestion cut, at most half the frame rate (no keyframe needed,
            # at the next picture) while the queue drains; the next round after it restores it
            self._next_at = min(self._next_at, self.controller.drain_until)
        for c in live:
            choice = alloc.choices.get(c.producer_key)
            if draining and choice is not None and choice.temporal > DRAIN_TEMPORAL:
                choice = Layer(choice.spatial, DRAIN_TEMPORAL, choice.bitrate_bps)
            c.set_allocation(choice)
        shape = (self.quality, alloc.tier.videos, shown)
        previous = self.last_report
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "allocation: remb=%s loss=%.3f sending=%d budget=%d probing=%s -> %s",
                estimate.bitrate_bps,
                estimate.loss,
                self.sending_bps,
                budget,
                self.controller.probing,
                [(key[-4:], spatial, temporal) for key, spatial, temporal in shown],
            )
        due = (
            shape_changed
            or previous is None
            or shape != self._reported_shape
            or (
                now - self._reported_at >= REPORT_INTERVAL
                and _moved(previous, estimate.bitrate_bps, budget)
            )
        )
        if not due:
            return None
        report = AllocationReport(
            quality=self.quality,
            estimate_bps=estimate.bitrate_bps,
            budget_bps=budget,
            tier=alloc.tier,
            streams=tuple(
                StreamReport(
                    producer_id=key, paused=spatial is None, spatial=spatial, temporal=temporal
                )
                for key, spatial, temporal in shown
            ),
        )
        self._reported_shape = shape
        self.last_report = report
        self._reported_at = now
        if self._on_report is not None:
            try:
                self._on_report(report)
            except Exception:
                logger.exception("allocation report listener failed")
        return report

    def pad(self, now: float, consumers: Iterable[Allocatable], interval: float) -> int:
        """While probing, fill the gap between what media sends and the probed budget
        with redundant retransmissions: the probe tests the path, not the picture."""
        share = self.controller.padding_share(now)
        if share <= 0:
            return 0
        target = int(self.controller.budget_bps * PROBE_PAD)
        gap = int((target - self.sending_bps) * share)
        if gap <= 0:
            return 0
        want = int(gap * interval / 8)
        sent = 0
        for c in consumers:
            if c.is_audio or not c.allocatable:
                continue
            sent += c.send_padding(want - sent, now)
            if sent >= want:
                break
        return sent

    def _measure_sending(self, now: float, live: list[Allocatable]) -> None:
        total = sum(c.sent_bytes for c in live)
        previous = self._sent
        self._sent = (now, total)
        if previous is None or now <= previous[0] or total < previous[1]:
            return
        rate = int((total - previous[1]) * 8 / (now - previous[0]))
        self.sending_bps = rate if not self.sending_bps else (self.sending_bps + rate) // 2


def _first_video_budget(demands: list[Demand]) -> int:
    """Until a limit shows, the most important video is never paused: the budget that
    carries the audio and that video's cheapest rung."""
    audio = sum(d.layers[0].bitrate_bps for d in demands if d.cls is StreamClass.AUDIO and d.layers)
    videos = sorted(
        (d for d in demands if d.cls is not StreamClass.AUDIO and d.layers),
        key=lambda d: (d.cls, d.rank, d.key),
    )
    if not videos:
        return 0
    return int((audio + videos[0].layers[0].bitrate_bps) / HEADROOM) + 1


def _moved(a: AllocationReport, estimate_bps: int | None, budget_bps: int) -> bool:
    """Whether the numbers moved enough since ``a`` to be told again."""

    def far(x: int | None, y: int | None) -> bool:
        if x is None or y is None:
            return x != y
        return abs(x - y) > REPORT_CHANGE * max(x, y, 1)

    return far(a.budget_bps, budget_bps) or far(a.estimate_bps, estimate_bps)


def _demand_key(d: Demand) -> str:
    return d.key


class Dynacast:
    """Which encodings of one layered producer the publisher should send.

    A layer somebody's selector aims at is turned on at once; one nobody needs is
    turned off after :data:`DYNACAST_HOLD` seconds (so a subscriber stepping
    down and up again finds it still running). The lowest always runs, so a new
    subscriber starts without waiting for the encoder."""

    def __init__(self, layers: int, now: float) -> None:
        self.active = [True] * layers
        self._needed_at = [now] * layers  # everything runs at first

    def update(self, now: float, needed: Iterable[int]) -> list[bool] | None:
        """``needed``: the spatial layers consumers aim at now. Returns the new
        active list when it changed."""
        for index in needed:
            if 0 <= index < len(self.active):
                self._needed_at[index] = now
        changed = False
        for index in range(len(self.active)):
            want = index == 0 or now - self._needed_at[index] < DYNACAST_HOLD
            if want != self.active[index]:
                self.active[index] = want
                changed = True
        return list(self.active) if changed else None
