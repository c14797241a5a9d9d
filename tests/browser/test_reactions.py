"""Reactions in real Chromium: an attendee claps, everyone else sees it float over the stage;
a presenter turns attendees' reactions off and on, and reacts too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser.support import OpenPage, join_attendee, join_presenter, wait_for_js
from tests.helpers import RunningServer, running_server
from tests.protocol.test_reactions import one_address_config
from webinar.client.peer import SignallingClient

pytestmark = pytest.mark.browser

CROWD = 200


@pytest.fixture
async def big_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server that takes the crowd's 200 sockets from one address."""
    async with running_server(tmp_path / "data", one_address_config(tmp_path)) as srv:
        yield srv


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

    # everyone has the React button: attendees, and presenters too
    await expect(pres.get_by_test_id("reactions-toggle")).to_be_visible()
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
    await wait_for_js(pres, "window.__webinar.room.reactions.received >= 1")
    await wait_for_js(ann, "window.__webinar.room.reactions.received >= 1")
    assert await ann.locator("[data-testid=reaction-float][data-own=false]").count() == 0
    # the floats go away by themselves
    await expect(bob.get_by_test_id("reaction-float")).to_have_count(0, timeout=6000)

    # Escape closes the picker, back on the button
    await ann.keyboard.press("Escape")
    await expect(picker).to_be_hidden()
    await expect(toggle).to_be_focused()


async def test_a_host_turns_reactions_off_and_on_and_a_presenter_reacts_too(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Town hall")
    host = await open_page("host")
    pres = await open_page("presenter")
    ann = await open_page("ann")
    await join_presenter(host, server, event, "Hana Host", preview=False, key=event.host_key)
    await join_presenter(pres, server, event, "Piet Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")
    toggle = ann.get_by_test_id("reactions-toggle")
    await expect(toggle).to_be_enabled()

    # the host's React bubble holds the switch: reactions off for attendees
    await host.get_by_test_id("reactions-toggle").click()
    switch = host.get_by_test_id("reactions-enabled-toggle")
    await expect(switch).to_be_checked()
    await expect(switch).to_have_accessible_name("Attendees may react")
    await switch.uncheck()
    # Ann's button says so and cannot be used
    await expect(toggle).to_be_disabled()
    await expect(toggle).to_have_accessible_name("Reactions off")
    await expect(toggle).to_have_attribute("data-enabled", "false")
    await expect(toggle).to_have_attribute("title", "The presenters turned reactions off")
    # the presenter's own switch follows; presenters may still react
    await expect(pres.get_by_test_id("reactions-toggle")).to_be_enabled()
    await pres.get_by_test_id("reactions-toggle").click()
    await expect(pres.get_by_test_id("reactions-enabled-toggle")).not_to_be_checked()
    # coming back (a late joiner) sees it off too
    await join_attendee(ann, server, event, "Ann Attendee")
    toggle = ann.get_by_test_id("reactions-toggle")
    await expect(toggle).to_have_accessible_name("Reactions off")
    await expect(toggle).to_be_disabled()

    # back on: Ann may react again
    await switch.check()
    await expect(toggle).to_be_enabled()
    await expect(toggle).to_have_accessible_name("React")
    await expect(pres.get_by_test_id("reactions-enabled-toggle")).to_be_checked()
    # the presenter reacts from the same bubble: it floats on Ann's stage
    await pres.get_by_test_id("reaction-picker").locator("[data-reaction=party]").click()
    await expect(pres.locator("[data-testid=reaction-float][data-own=true]").first).to_be_attached()
    floated = ann.locator("[data-testid=reaction-float][data-reaction=party][data-own=false]")
    await expect(floated.first).to_be_attached()
    await toggle.click()  # and Ann's reaction goes through again
    await ann.get_by_test_id("reaction-picker").locator("[data-reaction=clap]").click()
    mine = pres.locator("[data-testid=reaction-float][data-reaction=clap][data-own=false]")
    await expect(mine.first).to_be_attached()


async def test_200_people_clapping_reach_a_browser_in_a_few_messages_a_second(
    big_server: RunningServer, open_page: OpenPage
) -> None:
    server = big_server
    event = await server.create_event("Keynote")
    page = await open_page("watcher")
    await join_attendee(page, server, event, "Wendy Watcher")
    # the page notes when each `reactions` message arrives, and what it counts
    await page.evaluate(
        """() => {
          window.__reactionMessages = [];
          window.__webinar.connection.addEventListener("server-message", (event) => {
            const m = event.detail;
            if (m.type === "reactions") {
              const n = Object.values(m.counts).reduce((a, b) => a + b, 0);
              window.__reactionMessages.push({at: performance.now(), n});
            }
          });
        }"""
    )
    url = server.base_url.replace("http", "ws") + "/ws"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        crowd = [SignallingClient(http, url) for _ in range(CROWD)]

        async def join(i: int) -> None:
            await crowd[i].connect()
            await crowd[i].request("hello", protocol=1)
            await crowd[i].request("join", event_id=event.event_id, name=f"Fan {i}")

        try:
            for start in range(0, CROWD, 25):
                await asyncio.gather(*(join(i) for i in range(start, start + 25)))
            # everyone claps 6 times over 1.2 s, all at once
            for _round in range(6):
                await asyncio.gather(
                    *(c.send({"type": "react", "reaction": "clap"}) for c in crowd)
                )
                await asyncio.sleep(0.2)
            await wait_for_js(
                page, "window.__reactionMessages.reduce((a, m) => a + m.n, 0) >= 1200"
            )
        finally:
            await asyncio.gather(*(c.close() for c in crowd), return_exceptions=True)
    messages = await page.evaluate("window.__reactionMessages")
    assert sum(m["n"] for m in messages) == CROWD * 6  # every clap counted once
    times = [m["at"] for m in messages]
    for k, at in enumerate(times):  # at most ~5 a second, however many clap
        assert sum(1 for t in times[k:] if t < at + 1000) <= 5, times
    # and the page keeps the number of floating emoji bounded
    assert await page.get_by_test_id("reaction-float").count() <= 40
