"""What media tests with aiortc clients share: the clients a test makes, closed at its end;
a presenter's camera and microphone; the check that every subscriber gets what a reference
subscriber gets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.client.peer import WebinarClient

LOOPBACK = ["127.0.0.1"]


@pytest.fixture
async def clients() -> AsyncIterator[list[WebinarClient]]:
    made: list[WebinarClient] = []
    yield made
    await asyncio.gather(*(c.close() for c in made))


def client(made: list[WebinarClient], base: str, mode: str = "count") -> WebinarClient:
    """A client of the server at ``base`` (``count``: counts packets; ``decode``: frames)."""
    c = WebinarClient(base, mode=mode, host_addresses=LOOPBACK)  # type: ignore[arg-type]
    made.append(c)
    return c


async def until(check: Callable[[], object], within: float = 20.0, what: str = "") -> None:
    """Wait until ``check()`` is true; AssertionError naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}" if what else "timed out")
        await asyncio.sleep(0.1)


async def publish_camera_and_mic(publisher: WebinarClient) -> None:
    """Publish a looped 320x240 VP8 clip (keyframe every 15 frames) and an Opus clip."""
    video = ClipTrack(make_vp8_clip(width=320, height=240, seconds=1, keyframe_interval=15))
    audio = ClipTrack(make_opus_clip(seconds=1))
    await publisher.publish([(video, "camera"), (audio, "microphone")])  # type: ignore[list-item]


async def assert_delivered_like_reference(
    counted: list[WebinarClient], seconds: float = 5.0, *, min_video: int = 80
) -> list[tuple[int, int]]:
    """Once every client of ``counted`` receives video and audio, count each one's packets
    over ``seconds``: each gets ≥ 99 % of what ``counted[0]`` (the reference, served without
    a pipe) gets. The (video, audio) packets of each."""
    await until(
        lambda: all(c.stats.packets["video"] and c.stats.packets["audio"] for c in counted),
        what="every subscriber receives video and audio",
    )
    await asyncio.sleep(1.0)
    before = [(c.stats.packets["video"], c.stats.packets["audio"]) for c in counted]
    await asyncio.sleep(seconds)
    after = [(c.stats.packets["video"], c.stats.packets["audio"]) for c in counted]
    got = [(a[0] - b[0], a[1] - b[1]) for a, b in zip(after, before, strict=True)]
    ref_video, ref_audio = got[0]
    assert ref_video > min_video and ref_audio > 150, got[0]
    for video, audio in got[1:]:
        assert video >= 0.99 * ref_video and audio >= 0.99 * ref_audio, (got[0], video, audio)
    return got
