"""HLS for large audiences in real Chromium: an attendee beyond the event's overflow threshold
enters the room, gets the HLS stage (hls.js, vendored), whose video plays the room's own
composed stage (a presenter's camera, through the server's compositor, encoder and HLS output)
with its pictures advancing and the camera's colour where the layout puts it, and chats with
the room; the stream's URLs refuse a request without the event's pass."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests import media_support
from tests.browser.support import SCREENSHOTS, OpenPage, PageErrors, join_attendee, wait_until
from tests.helpers import Person, RunningServer, join_person
from webinar.app import BROADCAST
from webinar.broadcast.encoder import EncoderSettings
from webinar.broadcast.room import BroadcastSettings
from webinar.client.media import ClipTrack, make_vp8_clip
from webinar.client.peer import WebinarClient
from webinar.storage.records import EventSettings

pytestmark = pytest.mark.browser
clients = media_support.clients
RED = (81, 90, 240)  # Y, U, V

#: The picture now: its time, how many frames were shown, the centre pixel's colour.
SHOWN_JS = """
() => {
  const video = document.querySelector("[data-testid=hls-video]");
  if (!video || video.readyState < 2 || !video.videoWidth) return null;
  const w = video.videoWidth, h = video.videoHeight;
  const canvas = window.__hlsCanvas || (window.__hlsCanvas = document.createElement("canvas"));
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, w, h);
  const [r, g, b] = ctx.getImageData(Math.floor(w / 2), Math.floor(h / 2), 1, 1).data;
  const quality = video.getVideoPlaybackQuality();
  return { time: video.currentTime, frames: quality.totalVideoFrames, rgb: [r, g, b], w, h };
}
"""


async def open_tab(page: Page, tab: str) -> None:
    if await page.get_by_test_id(tab).is_hidden():
        await page.get_by_test_id("people-toggle").click()
    await page.get_by_test_id(tab).click()


def shown(page: Page) -> Callable[[], Awaitable[Any]]:
    async def probe() -> Any:
        return await page.evaluate(SHOWN_JS)

    return probe


async def test_an_attendee_beyond_the_threshold_watches_hls_and_chats(
    server: RunningServer,
    open_page: OpenPage,
    clients: list[WebinarClient],
    page_errors: PageErrors,
) -> None:
    # the page asks for the playlist at once and every 3 s until the room's output has its
    # first segments: "the live stream starts in a moment" (a 404 the browser logs)
    page_errors.allow(r"\[overflow attendee\] console error: Failed to load resource: .* 404")
    event = await server.create_event("Big launch")
    event = await server.store.update_event(
        event.event_id,
        EventSettings(title=event.title, hls_mode="overflow", hls_overflow_after=1),
    )
    # the room's own output, at a light size for this 2-core machine
    server.server.app[BROADCAST].settings = BroadcastSettings(
        encoder=EncoderSettings(width=640, height=360, fps=25, video_kbit=600, keyframe_seconds=1)
    )
    people: list[Person] = []
    try:
        host = await join_person(server, people, Person, event, "Host", event.host_key)
        await host.request("start")
        presenter = media_support.client(clients, server.base_url)
        await presenter.join(event.event_id, "Pia", event.presenter_key)
        red = make_vp8_clip(
            width=640, height=360, seconds=1, keyframe_interval=15, pattern="solid", colour=RED
        )
        await presenter.publish([(ClipTrack(red), "camera")])  # type: ignore[list-item]
        first = await join_person(server, people, Person, event, "First")
        assert first.joined.get("hls") is None  # the first attendee is in the WebRTC room

        page = await open_page("overflow attendee")
        await join_attendee(page, server, event, "Olga Overflow")
        await expect(page.get_by_test_id("hls-view")).to_be_visible()
        await expect(page.get_by_test_id("hls-video")).to_be_visible()
        playlist: str = await page.evaluate("() => window.__webinar.connection.joined.hls.playlist")
        # the picture plays and keeps advancing: the presenter's camera fills the stage
        before = await wait_until(
            shown(page),
            lambda s: s is not None and s["rgb"][0] > 150 and s["rgb"][1] < 100,
            within=30,
            what="the presenter's red camera over HLS",
        )
        await asyncio.sleep(3)
        after = await shown(page)()
        assert after["time"] - before["time"] > 2.0, (before, after)
        assert after["frames"] - before["frames"] >= 2.0 * 25, (before, after)
        assert (after["w"], after["h"]) == (640, 360)
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
