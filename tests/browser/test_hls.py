"""HLS for large audiences in real Chromium: an attendee beyond the event's overflow threshold
enters the room, gets the HLS stage (hls.js, vendored), whose video plays the room's stream
(TestPattern through the Encoder into the HlsSink, until the compositor exists) with the
burnt-in frame numbers advancing, and chats with the room; the stream's URLs refuse a request
without the event's pass."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import SCREENSHOTS, OpenPage, join_attendee, wait_until
from tests.helpers import Person, RunningServer, join_person
from tests.hls_support import SHOWN_FRAME_JS, LivePattern
from webinar.app import HLS_STREAMS
from webinar.broadcast.hls import HlsSink
from webinar.storage.records import EventSettings

pytestmark = pytest.mark.browser


async def open_tab(page: Page, tab: str) -> None:
    if await page.get_by_test_id(tab).is_hidden():
        await page.get_by_test_id("people-toggle").click()
    await page.get_by_test_id(tab).click()


def shown(page: Page) -> Callable[[], Awaitable[Any]]:
    async def probe() -> Any:
        return await page.evaluate(SHOWN_FRAME_JS)

    return probe


async def test_an_attendee_beyond_the_threshold_watches_hls_and_chats(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Big launch")
    event = await server.store.update_event(
        event.event_id,
        EventSettings(title=event.title, hls_mode="overflow", hls_overflow_after=1),
    )
    sink = HlsSink()
    server.server.app[HLS_STREAMS].publish(event.event_id, sink)
    live = LivePattern(sink, width=640, height=360, fps=25)
    people: list[Person] = []
    try:
        host = await join_person(server, people, Person, event, "Host", event.host_key)
        await host.request("start")
        first = await join_person(server, people, Person, event, "First")
        assert first.joined.get("hls") is None  # the first attendee is in the WebRTC room

        page = await open_page("overflow attendee")
        await join_attendee(page, server, event, "Olga Overflow")
        await expect(page.get_by_test_id("hls-view")).to_be_visible()
        await expect(page.get_by_test_id("hls-video")).to_be_visible()
        playlist: str = await page.evaluate("() => window.__webinar.connection.joined.hls.playlist")
        # the picture plays, and the frames the encoder numbered keep advancing
        before = await wait_until(
            shown(page), lambda s: s is not None, within=30, what="the first HLS picture"
        )
        await asyncio.sleep(3)
        after = await shown(page)()
        assert after["time"] - before["time"] > 2.0, (before, after)
        advanced = after["frame"] - before["frame"]
        assert 2.0 * 25 <= advanced <= 4.5 * 25, (before, after)
        assert await page.get_by_test_id("hls-video").evaluate("v => !v.paused")
        # the room's tiles are not shown to an HLS attendee, nor a "waiting" line over it
        await expect(page.locator("#grid")).to_be_hidden()
        await expect(page.get_by_test_id("room-status")).to_be_hidden()
        await expect(page.get_by_test_id("connection-panel-toggle")).to_be_hidden()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "hls-attendee.png"))

        # chat both ways
        await open_tab(page, "tab-chat")
        await page.get_by_test_id("chat-input").fill("Hello from the overflow")
        await page.get_by_test_id("chat-send").click()
        await first.wait(
            "chat-message", where=lambda m: m["message"]["text"] == "Hello from the overflow"
        )
        await host.request("chat-send", text="Welcome, overflow!")
        await expect(page.get_by_test_id("chat-messages")).to_contain_text("Welcome, overflow!")

        # the stream's URLs need the pass: another pass in the same place is refused
        forged = playlist.replace("/hls/", "/hls/x")
        response = await page.request.get(server.base_url + forged)
        assert response.status == 403
        assert (await response.json())["error"] == "not-admitted"
        response = await page.request.get(server.base_url + playlist)
        assert response.status == 200 and "#EXTM3U" in await response.text()
    finally:
        await asyncio.gather(*(p.close() for p in people))
        await asyncio.to_thread(live.stop)
