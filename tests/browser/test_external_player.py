"""The event's external player in real Chromium: a reservation-code event's YouTube player
appears only after a valid code (never in the page before), beside the side panel; the
presenter's layout takes it off stage and back; a Zoom link is a card with "Open in Zoom".

There is no internet here: the YouTube frame does not load; its src and its box are checked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import PHONE, SCREENSHOTS, OpenPage, PageErrors
from tests.helpers import Person, RunningServer, join_person
from webinar.storage.store import Event
from webinar.ticketing import records
from webinar.ticketing.codes import format_code
from webinar.ticketing.records import EventAccess, PaymentProvider

pytestmark = pytest.mark.browser

YOUTUBE = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
EMBED = "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


async def reserved_event(server: RunningServer, external_url: str) -> tuple[Event, str]:
    """A paid event starting in three minutes with an external player, and a confirmed
    registration's reservation code."""
    start = datetime.now(UTC) + timedelta(minutes=3)
    event = await server.store.create_event(
        "Concert", start, access_type="paid", external_url=external_url
    )
    eid = event.event_id
    access = EventAccess(eid, price_minor=900, currency="EUR")
    await server.store.run(lambda core: records.put_access(core.connection, access))
    reg = await server.store.run(
        lambda core: records.add_registration(
            core.connection,
            eid,
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.org",
            seats=1,
            amount_minor=900,
            currency="EUR",
            provider=PaymentProvider.MANUAL,
            capacity=None,
        )
    )
    confirmed = await server.store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code is not None
    return event, format_code(confirmed.code)


async def test_the_player_shows_only_after_a_valid_reservation_code(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    # the frame cannot reach YouTube here (no internet): whatever Chromium says of that
    page_errors.allow(r"youtube-nocookie\.com|ERR_NAME_NOT_RESOLVED|ERR_INTERNET_DISCONNECTED")
    event, code = await reserved_event(server, YOUTUBE)
    people: list[Person] = []
    try:
        # the host starts the event (a signalling-only host: no camera needed)
        host = await join_person(server, people, Person, event, "Host", event.host_key)
        await host.request("start")
        page = await open_page("ticket holder")
        await page.goto(f"{server.base_url}/e/{event.display_id}")
        await expect(page.get_by_test_id("access-code-input")).to_be_visible()
        assert "dQw4w9WgXcQ" not in await page.content()  # not in the page before the check
        await expect(page.get_by_test_id("external-player")).to_have_count(0)

        await page.get_by_test_id("access-code-input").fill("2222-3333-4444")
        await page.get_by_test_id("access-code-submit").click()
        await expect(page.get_by_test_id("prejoin-error")).to_contain_text("not valid")
        await expect(page.get_by_test_id("external-player")).to_have_count(0)
        assert "dQw4w9WgXcQ" not in await page.content()

        await page.get_by_test_id("access-code-input").fill(code)
        await page.get_by_test_id("access-code-submit").click()
        await expect(page.get_by_test_id("room")).to_have_attribute("data-view", "live")
        player = page.get_by_test_id("external-player")
        await expect(player).to_be_visible()
        await expect(player).to_have_attribute("src", EMBED)
        await expect(player).to_have_attribute("data-provider", "youtube")
        await expect(player).to_have_attribute("title", "YouTube player")
        await expect(player).to_have_attribute(
            "sandbox", "allow-scripts allow-same-origin allow-presentation"
        )
        await expect(player).to_have_attribute("allow", "autoplay; fullscreen; picture-in-picture")
        await expect(player).to_have_attribute("referrerpolicy", "strict-origin-when-cross-origin")
        await expect(page.get_by_test_id("external-link")).to_have_attribute("href", YOUTUBE)
        await expect(page.locator("#stage")).to_have_attribute("data-content", "external")

        # chat, Q&A and polls stay beside it
        if await page.locator("#live").get_attribute("data-panel") != "open":
            await page.get_by_test_id("people-toggle").click()
        await page.get_by_test_id("tab-chat").click()
        panel = await page.locator("#side-panel").bounding_box()
        box = await player.bounding_box()
        assert panel is not None and box is not None
        assert box["width"] >= 480 and abs(box["width"] / box["height"] - 16 / 9) < 0.02, box
        assert box["x"] + box["width"] <= panel["x"] + 1, (box, panel)
        await shot(page, "external-player-desktop")

        # the presenter puts cameras on stage: the player goes (no stream playing unseen)
        await host.request("stage-layout", layout="cameras")
        await expect(page.get_by_test_id("external-player")).to_have_count(0)
        await host.request("stage-layout", layout="external")
        await expect(page.get_by_test_id("external-player")).to_have_attribute("src", EMBED)
    finally:
        await asyncio.gather(*(p.close() for p in people))


async def test_zoom_is_a_card_that_opens_zoom(server: RunningServer, open_page: OpenPage) -> None:
    zoom = "https://us02web.zoom.us/w/81234567890?tk=abc"
    event = await server.create_event("Town hall", external_url=zoom)
    page = await open_page("attendee", viewport=PHONE)
    await page.goto(f"{server.base_url}/e/{event.display_id}")
    await page.get_by_test_id("prejoin-name-input").fill("Ann")
    await page.get_by_test_id("enter-room-button").click()
    open_zoom = page.get_by_test_id("external-open")
    await expect(open_zoom).to_be_visible()
    await expect(open_zoom).to_have_text("Open in Zoom")
    await expect(open_zoom).to_have_attribute("href", zoom)
    await expect(open_zoom).to_have_attribute("target", "_blank")
    await expect(open_zoom).to_have_attribute("rel", "noopener noreferrer")
    await expect(page.get_by_test_id("external-player")).to_have_count(0)
    # on a phone the content comes first: the card is within the screen's width
    card = await page.get_by_test_id("external-card").bounding_box()
    assert card is not None and card["x"] >= 0 and card["x"] + card["width"] <= PHONE["width"]
    await shot(page, "external-zoom-phone")
