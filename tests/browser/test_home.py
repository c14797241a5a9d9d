"""The home page: joining by event ID."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.support import OpenPage, PageErrors
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser


async def test_id_with_separators_and_name_land_in_the_room(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Quarterly update")
    page = await open_page("home")
    await page.goto(server.base_url + "/")
    await expect(page).to_have_title(re.compile("Join a webinar"))
    digits = event.event_id
    await page.get_by_test_id("event-id-input").fill(f" {digits[:3]} {digits[3:6]}-{digits[6:]} ")
    await page.get_by_test_id("name-input").fill("Grace Hopper")
    await page.get_by_test_id("join-button").click()

    await expect(page).to_have_url(f"{server.base_url}/e/{digits}")
    await expect(page.get_by_test_id("room")).to_be_visible()
    await expect(page).to_have_title(re.compile("Quarterly update"))
    await expect(page.get_by_role("heading", name="Quarterly update")).to_be_visible()
    # The name typed on the home page is used: the attendee is in the room at once.
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")
    await expect(page.get_by_test_id("room-status")).to_have_text("Waiting for the presenter…")
    joined = await page.evaluate(
        "() => { const c = window.__webinar.connection;"
        " return [c.joined.event.event_id, c.participants.get(c.participantId).name]; }"
    )
    assert joined == [event.display_id, "Grace Hopper"]


async def test_keyboard_only_join(server: RunningServer, open_page: OpenPage) -> None:
    event = await server.create_event("Keyboard")
    page = await open_page("home")
    await page.goto(server.base_url + "/")
    # The event ID field has focus when the page opens; Tab moves on to the name.
    await page.keyboard.type(event.display_id)
    await page.keyboard.press("Tab")
    await expect(page.get_by_test_id("name-input")).to_be_focused()
    await page.keyboard.type("Ada")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{server.base_url}/e/{event.event_id}")


async def test_bad_and_unknown_ids(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    await server.create_event("Exists")
    page = await open_page("home")
    await page.goto(server.base_url + "/")

    # Not an ID: said on the page, no navigation.
    await page.get_by_test_id("event-id-input").fill("12-34")
    await page.get_by_test_id("name-input").fill("Ada")
    await page.get_by_test_id("join-button").click()
    await expect(page.get_by_text("An event ID has 9 digits")).to_be_visible()
    await expect(page.get_by_test_id("event-id-input")).to_have_attribute("aria-invalid", "true")
    await expect(page).to_have_url(server.base_url + "/")

    # A well-formed ID of no event: the not-found page says so.
    page_errors.allow(r"status of 404")  # Chromium logs the 404 document as a console error
    await page.get_by_test_id("event-id-input").fill("000-000-001")
    await page.get_by_test_id("join-button").click()
    await expect(page).to_have_url(f"{server.base_url}/e/000000001")
    await expect(page.get_by_role("heading", name="Event not found")).to_be_visible()
    await expect(page.get_by_test_id("not-found")).to_contain_text("000-000-001")
    await expect(page).to_have_title(re.compile("not found"))
    await page.get_by_role("link", name="Enter another event ID").click()
    await expect(page.get_by_test_id("event-id-input")).to_be_visible()
