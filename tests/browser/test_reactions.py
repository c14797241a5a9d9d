"""Reactions in real Chromium: an attendee claps, everyone else sees it float over the stage."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.support import OpenPage, join_attendee, join_presenter
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser


async def test_an_attendees_clap_floats_over_everyones_stage(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Launch")
    pres = await open_page("presenter")
    ann = await open_page("ann")
    bob = await open_page("bob")
    await bob.emulate_media(reduced_motion="reduce")
    await join_presenter(pres, server, event, "Piet Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")
    await join_attendee(bob, server, event, "Bob Attendee")

    # presenters see reactions but have no React button; attendees do
    await expect(pres.get_by_test_id("reactions-toggle")).to_be_hidden()
    toggle = ann.get_by_test_id("reactions-toggle")
    await expect(toggle).to_be_visible()
    await expect(toggle).to_have_accessible_name("React")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    picker = ann.get_by_test_id("reaction-picker")
    await expect(picker.get_by_test_id("reaction-button")).to_have_count(6)
    clap = picker.locator("[data-reaction=clap]")
    await expect(clap).to_have_accessible_name("Applause")
    await clap.click()

    # Ann sees her own at once; Bob and the presenter see it come from the server
    await expect(ann.locator("[data-testid=reaction-float][data-own=true]").first).to_be_attached()
    for page in (bob, pres):
        floated = page.locator("[data-testid=reaction-float][data-reaction=clap][data-own=false]")
        await expect(floated.first).to_be_attached()
    # Bob asked for less motion: his emoji fade where they are instead of rising
    animation = await bob.locator("[data-testid=reaction-float]").first.evaluate(
        "el => getComputedStyle(el).animationName"
    )
    assert animation == "reaction-pop"
    rising = await pres.locator("[data-testid=reaction-float]").first.evaluate(
        "el => getComputedStyle(el).animationName"
    )
    assert rising == "reaction-rise"
    # Ann's own clap, counted back by the server, does not float a second time for her
    await pres.wait_for_function("window.__webinar.room.reactions.received >= 1")
    await ann.wait_for_function("window.__webinar.room.reactions.received >= 1")
    assert await ann.locator("[data-testid=reaction-float][data-own=false]").count() == 0
    # the floats go away by themselves
    await expect(bob.get_by_test_id("reaction-float")).to_have_count(0, timeout=6000)

    # Escape closes the picker, back on the button
    await ann.keyboard.press("Escape")
    await expect(picker).to_be_hidden()
    await expect(toggle).to_be_focused()
