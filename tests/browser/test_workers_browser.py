"""Real Chromium with two workers: the presenter's WebSocket and media on worker 1, two
attendees on worker 2 (each page is opened on its worker's own address, which forces the
choice); the attendees play the presenter's video and audio, relayed through a pipe."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import expect

from tests.browser.support import (
    OpenPage,
    go_live,
    join_attendee,
    join_presenter,
    wait_for_media,
    wait_for_playing_video,
)
from tests.cluster.workers import two_workers
from tests.redis_server import RedisServer
from webinar.app import PIPES


async def test_presenter_on_one_worker_attendees_on_the_other(
    tmp_path: Path, redis_server: RedisServer, open_page: OpenPage
) -> None:
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event("Two workers")
        presenter = await open_page("presenter")
        first = await open_page("attendee-1")
        second = await open_page("attendee-2")
        await join_attendee(first, w2, event, "First")
        await join_presenter(presenter, w1, event, "Alice")
        await go_live(presenter)
        await join_attendee(second, w2, event, "Second")
        for attendee in (first, second):
            tile = attendee.get_by_test_id("video-tile")
            await expect(tile).to_have_count(1)
            await expect(tile).to_contain_text("Alice")
            stats = await wait_for_media(attendee, within=20)
            assert stats["video"]["frameWidth"] > 0
            await wait_for_playing_video(attendee, "[data-testid=video-tile] video")
            has_audio = await attendee.locator("[data-testid=video-tile] video").evaluate(
                "v => !v.muted && v.srcObject.getAudioTracks().length"
            )
            assert has_audio == 1
        # one copy of the camera and one of the microphone crossed to worker 2
        assert w2.server.app[PIPES].counts()["pipes_in"] == 2
        # the presenter sees both attendees arrive although they are on the other worker
        await expect(presenter.get_by_test_id("participant-count")).to_contain_text("3")
