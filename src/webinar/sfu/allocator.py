"""Bandwidth allocation for one subscriber: which layer of which stream, or paused.

A pure function of the subscriber's budget, the streams on offer (with their
layer ladders and priorities) and the subscriber's quality choice. It knows
nothing of rooms: the caller ranks the streams (audio first, then screen
share, then the active speaker, then other cameras by recent speaking).

The number of videos follows the bandwidth tiers of the product (down
direction):

    audio only               256 kbps
    audio + 1 video          512 kbps
    audio + video + screen  1024 kbps   (two videos)
    3 camera streams        2048 kbps
    4 .. 7 camera streams   3072 .. 6144 kbps (+1024 each)

Then the videos are raised, sharing first (one rung each in turn, up to the middle
encoding), then in priority order as far as the budget (less headroom for
retransmissions and RTCP) allows: the active speaker sharp first.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

# (videos, down kbps) rows of the tier table
TIERS: tuple[tuple[int, int], ...] = (
    (0, 256),
    (1, 512),
    (2, 1024),
    (3, 2048),
    (4, 3072),
    (5, 4096),
    (6, 5120),
    (7, 6144),
)
HEADROOM = 0.85  # share of the budget media may use (RTX, RTCP, estimate noise)
# A budget this close below a row of the table counts as that row: REMB reports about
# 85 % of a congested link: a 600 kbit/s link can show as ~500 kbit/s.
TIER_SLACK = 0.95
FAIR_SPATIAL = 1  # every shown video may reach this encoding before any goes higher
DATA_SAVER_VIDEOS = 1
DATA_SAVER_MAX_TEMPORAL = 1  # TL0+TL1: half the frame rate


class Quality(enum.StrEnum):
    """The subscriber's cap on what the allocator may choose."""

    AUTO = "auto"
    DATA_SAVER = "data-saver"
    HIGH = "high"


class StreamClass(enum.IntEnum):
    """Allocation order between kinds of stream (lower first)."""

    AUDIO = 0
    SCREEN = 1
    CAMERA = 2


@dataclass(frozen=True, slots=True)
class Layer:
    """One rung of a stream's ladder: spatial layer, temporal layer, cost."""

    spatial: int
    temporal: int
    bitrate_bps: int


@dataclass(frozen=True, slots=True)
class Demand:
    """A stream the subscriber may receive. ``rank`` orders streams of one class
    (0 = most important: the active speaker among cameras). ``layers`` is the
    ladder, cheapest first; audio has one rung."""

    key: str
    cls: StreamClass
    rank: int
    layers: tuple[Layer, ...]


@dataclass(frozen=True, slots=True)
class Tier:
    videos: int
    down_kbps: int

    @property
    def label(self) -> str:
        if self.videos == 0:
            return "audio only"
        if self.videos == 1:
            return "audio + 1 video"
        return f"audio + {self.videos} videos"


@dataclass(frozen=True, slots=True)
class Allocation:
    choices: dict[str, Layer | None]  # None: paused
    tier: Tier
    used_bps: int
    wanted_bps: int  # what everything at its best allowed rung would cost
    next_bps: int | None  # the smallest budget that would raise one stream a rung

    def paused(self) -> list[str]:
        return [k for k, v in self.choices.items() if v is None]


def tier_for(budget_bps: int) -> Tier:
    """The highest row of the tier table the budget reaches."""
    kbps = budget_bps / 1000
    best = TIERS[0]
    for row in TIERS:
        if kbps >= row[1]:
            best = row
    return Tier(videos=best[0], down_kbps=best[1])


def _ladder(demand: Demand, quality: Quality) -> tuple[Layer, ...]:
    layers = demand.layers
    if demand.cls is StreamClass.AUDIO or quality is not Quality.DATA_SAVER:
        return layers
    lowest = min((la.spatial for la in layers), default=0)
    capped = tuple(
        la for la in layers if la.spatial == lowest and la.temporal <= DATA_SAVER_MAX_TEMPORAL
    )
    return capped or layers[:1]


def allocate(
    budget_bps: int, streams: Sequence[Demand], quality: Quality = Quality.AUTO
) -> Allocation:
    """Pick a layer (or pause) for every stream so the total fits ``budget_bps``."""
    ordered = sorted(streams, key=lambda d: (d.cls, d.rank, d.key))
    ladders = {d.key: _ladder(d, quality) for d in ordered}
    choices: dict[str, Layer | None] = {}
    used = 0
    for d in ordered:  # audio is never paused
        if d.cls is StreamClass.AUDIO and ladders[d.key]:
            rung = ladders[d.key][0]
            choices[d.key] = rung
            used += rung.bitrate_bps
    videos = [d for d in ordered if d.cls is not StreamClass.AUDIO and ladders[d.key]]
    wanted = used + sum(ladders[d.key][-1].bitrate_bps for d in videos)
    limit = tier_for(int(budget_bps / TIER_SLACK)).videos
    if quality is Quality.DATA_SAVER:
        limit = min(limit, DATA_SAVER_VIDEOS)
    available = int(budget_bps * HEADROOM) - used
    shown = videos[:limit]
    levels = _fill(shown, ladders, available)
    while shown and levels is None:
        shown = shown[:-1]
        levels = _fill(shown, ladders, available)
    if limit >= 1 and videos and not shown:
        # The table's "audio + 1 video" row: at that budget the most important video
        # is shown on its lowest layer even when that layer (a single stream) costs
        # more than the budget's share. A receive-side estimate (REMB) only climbs
        # a little above what is being sent, so pausing the one video there would
        # keep it paused; a busy picture beats an avatar.
        shown, levels = videos[:1], [0]
    if quality is Quality.HIGH and shown and levels is not None:
        # Fewer videos rather than a small picture of the one that matters most:
        # the largest count at which the first video reaches its top encoding.
        first = ladders[shown[0].key]
        if first[levels[0]].spatial < _max_spatial(first):
            for n in range(len(shown) - 1, 0, -1):
                trial = _fill(shown[:n], ladders, available)
                if trial is not None and first[trial[0]].spatial == _max_spatial(first):
                    shown, levels = shown[:n], trial
                    break
    chosen = dict(zip((d.key for d in shown), levels or [], strict=False))
    for d in videos:
        level = chosen.get(d.key)
        if level is None:
            choices[d.key] = None
        else:
            rung = ladders[d.key][level]
            choices[d.key] = rung
            used += rung.bitrate_bps
    for d in ordered:
        choices.setdefault(d.key, None)
    shown_count = sum(1 for d in videos if choices[d.key] is not None)
    return Allocation(
        choices=choices,
        tier=Tier(videos=shown_count, down_kbps=_row(shown_count)),
        used_bps=used,
        wanted_bps=wanted,
        next_bps=_next_budget(
            videos,
            ladders,
            choices,
            used,
            DATA_SAVER_VIDEOS if quality is Quality.DATA_SAVER else len(TIERS) - 1,
            budget_bps,
        ),
    )


def _need(media_bps: int) -> int:
    """The least budget whose media share (after headroom) covers ``media_bps``."""
    budget = int(media_bps / HEADROOM)
    while int(budget * HEADROOM) < media_bps:
        budget += 1
    return budget


def _next_budget(
    videos: list[Demand],
    ladders: dict[str, tuple[Layer, ...]],
    choices: dict[str, Layer | None],
    used: int,
    hard_limit: int,
    budget_bps: int,
) -> int | None:
    """The least budget at which one more rung (or one more video) would fit."""
    steps: list[int] = []
    shown = 0
    for d in videos:
        ladder = ladders[d.key]
        current = choices.get(d.key)
        if current is None:
            continue
        shown += 1
        i = ladder.index(current)
        if i + 1 < len(ladder):
            steps.append(_need(used + ladder[i + 1].bitrate_bps - current.bitrate_bps))
    paused = [d for d in videos if choices.get(d.key) is None]
    if paused and shown < hard_limit:
        row = TIERS[shown + 1][1] * 1000
        first = ladders[paused[0].key][0].bitrate_bps
        steps.append(max(row, _need(used + first)))
    above = [b for b in steps if b > budget_bps]
    return min(above) if above else None


def _row(videos: int) -> int:
    return TIERS[min(videos, len(TIERS) - 1)][1]


def _max_spatial(ladder: tuple[Layer, ...]) -> int:
    return max((la.spatial for la in ladder), default=0)


def _fill(
    shown: list[Demand], ladders: dict[str, tuple[Layer, ...]], available: int
) -> list[int] | None:
    """Rung index per shown video: all at their cheapest; then raised one rung at a time
    in priority order up to the middle encoding (everyone shown gets a good picture
    before anyone gets more); then each raised as far as it fits, in priority order
    (the active speaker sharp first). ``None`` when even the cheapest do not fit."""
    levels = [0] * len(shown)
    total = sum(ladders[d.key][0].bitrate_bps for d in shown)
    if total > available:
        return None
    for cap in (FAIR_SPATIAL, None):
        raised = True
        while raised:
            raised = False
            for i, d in enumerate(shown):
                ladder = ladders[d.key]
                while levels[i] + 1 < len(ladder):
                    nxt = ladder[levels[i] + 1]
                    if cap is not None and nxt.spatial > cap:
                        break
                    step = nxt.bitrate_bps - ladder[levels[i]].bitrate_bps
                    if total + step > available:
                        break
                    levels[i] += 1
                    total += step
                    raised = True
                    if cap is not None:
                        break  # one rung each per round while sharing
    return levels


TEMPORAL_SHARE = (0.4, 0.6, 1.0)  # bitrate of TL0, TL0+1, TL0+1+2 (libwebrtc's split)


def video_ladder(spatial_bps: Sequence[int], temporal_layers: int = 3) -> tuple[Layer, ...]:
    """The rungs of a video: the lowest encoding at reduced frame rates, then each
    encoding at its full frame rate. ``spatial_bps`` is the bitrate of each
    encoding, lowest first (one entry for a single stream)."""
    if not spatial_bps:
        return ()
    top_t = max(min(temporal_layers, len(TEMPORAL_SHARE)), 1) - 1
    rungs = [
        Layer(0, t, max(int(spatial_bps[0] * TEMPORAL_SHARE[t] / TEMPORAL_SHARE[top_t]), 1))
        for t in range(top_t + 1)
    ]
    rungs += [Layer(s, top_t, bps) for s, bps in enumerate(spatial_bps) if s > 0]
    return tuple(rungs)
