"""The allocator against the bandwidth tier table (product reference section 3)."""

from __future__ import annotations

import pytest

from webinar.sfu.allocator import (
    Demand,
    Layer,
    Quality,
    StreamClass,
    allocate,
    tier_for,
    video_ladder,
)

LADDER = video_ladder([150_000, 500_000, 1_200_000])  # 180p / 360p / 720p, each L1T3
AUDIO = (Layer(0, 0, 32_000),)


def room(cameras: int, *, screen: bool = False) -> list[Demand]:
    streams = [Demand(f"mic{i}", StreamClass.AUDIO, i, AUDIO) for i in range(cameras)]
    streams += [Demand(f"cam{i}", StreamClass.CAMERA, i, LADDER) for i in range(cameras)]
    if screen:
        streams.append(Demand("screen", StreamClass.SCREEN, 0, LADDER))
    return streams


def shown(alloc_choices: dict[str, Layer | None], prefix: str = "cam") -> list[str]:
    return sorted(k for k, v in alloc_choices.items() if k.startswith(prefix) and v is not None)


def test_ladder_rungs() -> None:
    assert [(r.spatial, r.temporal) for r in LADDER] == [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2)]
    assert [r.bitrate_bps for r in LADDER] == [60_000, 90_000, 150_000, 500_000, 1_200_000]
    single = video_ladder([800_000], temporal_layers=1)
    assert [(r.spatial, r.temporal, r.bitrate_bps) for r in single] == [(0, 0, 800_000)]


@pytest.mark.parametrize(
    ("kbps", "videos"),
    [
        (200, 0),
        (256, 0),
        (511, 0),
        (512, 1),
        (1023, 1),
        (1024, 2),
        (2048, 3),
        (3072, 4),
        (4096, 5),
        (5120, 6),
        (6144, 7),
        (20_000, 7),
    ],
)
def test_tier_table(kbps: int, videos: int) -> None:
    assert tier_for(kbps * 1000).videos == videos


@pytest.mark.parametrize(
    ("kbps", "cameras"),
    [(256, 0), (512, 1), (1024, 2), (2048, 3), (3072, 4), (4096, 5), (5120, 6), (6144, 7)],
)
def test_seven_cameras_the_count_follows_the_tier_table(kbps: int, cameras: int) -> None:
    alloc = allocate(kbps * 1000, room(7))
    assert shown(alloc.choices) == [f"cam{i}" for i in range(cameras)]  # best ranked first
    assert all(alloc.choices[f"mic{i}"] is not None for i in range(7))  # audio never paused
    assert alloc.tier.videos == cameras
    assert alloc.used_bps <= kbps * 1000 or cameras == 0


def test_600_kbps_gets_audio_and_the_active_speaker_in_low_quality() -> None:
    alloc = allocate(600_000, room(3))
    assert shown(alloc.choices) == ["cam0"]
    assert alloc.choices["cam0"] == Layer(0, 2, 150_000)


def test_2_mbps_gets_screen_and_active_speaker_in_good_quality() -> None:
    alloc = allocate(1_900_000, room(4, screen=True))
    assert alloc.choices["screen"] is not None
    assert shown(alloc.choices) == ["cam0"]
    assert alloc.choices["screen"].spatial >= 1 and alloc.choices["cam0"].spatial >= 1  # type: ignore[union-attr]
    assert alloc.tier.label == "audio + 2 videos"


def test_3_mbps_several_cameras_in_high_quality() -> None:
    alloc = allocate(3_072_000, room(2))
    assert all(alloc.choices[k] == LADDER[-1] for k in ("cam0", "cam1"))


def test_screen_share_comes_before_cameras() -> None:
    alloc = allocate(512_000, room(2, screen=True))
    assert alloc.choices["screen"] is not None
    assert shown(alloc.choices) == []
    assert alloc.paused() == ["cam0", "cam1"]


def test_a_budget_too_small_for_the_tier_row_drops_videos_not_audio() -> None:
    tiny = (Layer(0, 0, 400_000),)  # a single stream without layers, expensive
    streams = [Demand("mic", StreamClass.AUDIO, 0, AUDIO)] + [
        Demand(f"cam{i}", StreamClass.CAMERA, i, tiny) for i in range(3)
    ]
    alloc = allocate(1_024_000, streams)
    assert shown(alloc.choices) == ["cam0", "cam1"] or shown(alloc.choices) == ["cam0"]
    assert alloc.used_bps <= 1_024_000 * 0.85
    assert alloc.choices["mic"] is not None


@pytest.mark.parametrize(
    ("quality", "kbps", "expected"),
    [
        # data saver: one video, lowest layer, half frame rate, whatever the budget
        (Quality.DATA_SAVER, 10_000, {"cam0": Layer(0, 1, 90_000)}),
        (Quality.DATA_SAVER, 300, {}),
        (Quality.AUTO, 10_000, {f"cam{i}": LADDER[-1] for i in range(4)}),
        # high: fewer videos rather than a small picture of the active speaker
        (Quality.AUTO, 2_048, {f"cam{i}": Layer(1, 2, 500_000) for i in range(3)}),
        (Quality.HIGH, 2_048, {"cam0": LADDER[-1]}),
        (Quality.HIGH, 1_024, {"cam0": Layer(1, 2, 500_000), "cam1": Layer(0, 2, 150_000)}),
        (Quality.HIGH, 10_000, {f"cam{i}": LADDER[-1] for i in range(4)}),
    ],
)
def test_quality_caps(quality: Quality, kbps: int, expected: dict[str, Layer]) -> None:
    alloc = allocate(kbps * 1000, room(4), quality)
    got = {k: v for k, v in alloc.choices.items() if k.startswith("cam") and v is not None}
    assert got == expected


def test_wanted_is_what_the_best_allowed_rungs_cost() -> None:
    alloc = allocate(300_000, room(1))
    assert alloc.wanted_bps == 32_000 + 1_200_000
    saver = allocate(300_000, room(1), Quality.DATA_SAVER)
    assert saver.wanted_bps == 32_000 + 90_000


def test_streams_without_layers_known_yet_are_paused() -> None:
    alloc = allocate(5_000_000, [Demand("cam", StreamClass.CAMERA, 0, ())])
    assert alloc.choices == {"cam": None}


@pytest.mark.parametrize(
    ("kbps", "cameras", "quality", "expected_next"),
    [
        # no video yet: the first needs the 512 kbps row
        (300, 1, Quality.AUTO, 512_000),
        # one camera on the low rung: the middle one needs (32k + 500k) / 0.85
        (600, 1, Quality.AUTO, 625_883),
        # everything at the top: nothing more to want
        (3_000, 1, Quality.AUTO, None),
        # the second video needs the 1024 kbps row (the top rung would need more)
        (900, 2, Quality.AUTO, 1_024_000),
        # data saver: one video, capped rung reached: nothing more
        (5_000, 2, Quality.DATA_SAVER, None),
    ],
)
def test_next_budget_is_what_one_more_rung_needs(
    kbps: int, cameras: int, quality: Quality, expected_next: int | None
) -> None:
    streams = [Demand("mic", StreamClass.AUDIO, 0, AUDIO)] + [
        Demand(f"cam{i}", StreamClass.CAMERA, i, LADDER) for i in range(cameras)
    ]
    alloc = allocate(kbps * 1000, streams, quality)
    assert alloc.next_bps == expected_next


@pytest.mark.parametrize(("kbps", "shown_cams"), [(600, ["cam0"]), (1000, ["cam0"]), (300, [])])
def test_a_single_stream_is_not_paused_while_the_budget_reaches_the_one_video_row(
    kbps: int, shown_cams: list[str]
) -> None:
    """A camera without layers (~1 Mbit/s) and a budget from REMB that hovers around what
    is being sent: from the table's "audio + 1 video" row on, it stays on (pausing it would
    keep the receive-side estimate down); below the row, only audio."""
    single = (Layer(0, 0, 1_000_000),)
    streams = [
        Demand("mic", StreamClass.AUDIO, 0, AUDIO),
        Demand("cam0", StreamClass.CAMERA, 0, single),
        Demand("cam1", StreamClass.CAMERA, 1, single),
    ]
    alloc = allocate(kbps * 1000, streams)
    assert shown(alloc.choices) == shown_cams
    assert alloc.choices["mic"] is not None
    assert alloc.tier.videos == len(shown_cams)


def test_an_allocation_that_gives_everything_its_best_stays_the_same_at_any_larger_budget() -> None:
    """What SubscriberTiers.tick relies on to skip allocating again: once every stream has
    its best rung (nothing next, nothing paused), a larger budget changes nothing."""
    import random

    rng = random.Random(7)
    complete = 0
    for _ in range(400):
        cameras = rng.randint(0, 4)
        streams = room(cameras, screen=rng.random() < 0.3)
        if rng.random() < 0.3:  # single streams, measured at odd bitrates
            streams += [
                Demand(f"single{i}", StreamClass.CAMERA, 10 + i, video_ladder([b], 1))
                for i, b in enumerate(rng.sample(range(200_000, 2_000_000, 7), 2))
            ]
        quality = rng.choice(list(Quality))
        budget = rng.randint(30_000, 12_000_000)
        first = allocate(budget, streams, quality)
        if first.next_bps is not None or first.used_bps != first.wanted_bps:
            continue
        complete += 1
        for more in (budget, budget + 1, budget + rng.randint(1, 50_000_000)):
            assert allocate(more, streams, quality) == first
    assert complete > 50  # the property was tried often enough
