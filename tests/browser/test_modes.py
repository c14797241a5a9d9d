"""Room modes from the presenter's mode switch: what attendees receive, and the
safety step that switches the other presenters' microphones off."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser.support import (
    OpenPage,
    go_live,
    growth,
    inbound_from,
    inbound_stats,
    join_attendee,
    join_presenter,
    participant_id,
    wait_for_media,
    wait_until,
)
from tests.helpers import RunningServer
from webinar.client.peer import SignallingClient

pytestmark = pytest.mark.browser


async def test_presenters_only_stops_media_to_attendees(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Backstage")
    host = await open_page("host")
    attendee = await open_page("attendee")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key)
    await go_live(host)
    await join_attendee(attendee, server, event, "Viewer")
    await wait_for_media(attendee)

    await host.get_by_test_id("mode-select").select_option("presenters-only")
    await expect(host.get_by_test_id("stage-banner")).to_contain_text("Backstage")
    await expect(attendee.get_by_test_id("mode-badge")).to_have_text("Backstage")
    await expect(attendee.get_by_test_id("toast").last).to_contain_text("Presenters only")
    await expect(attendee.get_by_test_id("room-status")).to_contain_text("backstage")
    await attendee.wait_for_timeout(500)  # packets already in flight
    stats = lambda: inbound_stats(attendee)  # noqa: E731
    assert await growth(stats, "video", "framesDecoded", 2.0) <= 2
    assert await growth(stats, "video", "bytesReceived", 0.5) <= 2000
    assert await growth(stats, "audio", "packetsReceived", 0.5) <= 2

    # Back on air: the picture returns at the next keyframe, the sound at once.
    await host.get_by_test_id("mode-select").select_option("listen-only")
    await expect(host.get_by_test_id("stage-banner")).to_be_hidden()
    await expect(attendee.get_by_test_id("video-tile")).to_be_visible()
    await wait_for_media(attendee)


async def test_mode_switch_pauses_the_other_presenters_microphone(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Panel")
    host = await open_page("host")
    bob = await open_page("bob")
    attendee = await open_page("attendee")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key)
    await join_presenter(bob, server, event, "Bob")
    await go_live(bob)
    await join_attendee(attendee, server, event, "Viewer")
    bob_id = await participant_id(bob)
    from_bob = lambda: inbound_from(attendee, bob_id)  # noqa: E731
    await wait_until(
        from_bob,
        lambda s: s["audio"]["packetsReceived"] > 20,
        within=10,
        what="Bob's audio at the attendee",
    )

    await host.get_by_test_id("mode-select").select_option("discussion")
    # In discussion attendees may speak: the attendee gets a microphone button.
    await expect(attendee.get_by_test_id("mic-toggle")).to_be_visible()
    await expect(attendee.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "false")
    # Bob is told why his microphone went off; his toggle shows it off.
    toast = bob.get_by_test_id("toast").filter(has_text="microphone was switched off")
    await expect(toast).to_contain_text("Discussion")
    mic = bob.get_by_test_id("mic-toggle")
    await expect(mic).to_have_attribute("aria-pressed", "false")
    assert await bob.evaluate("() => window.__webinar.room.local.audio.enabled") is False
    # Everyone sees the crossed-out microphone on Bob's tile and in the list.
    bob_tile = attendee.get_by_test_id("video-tile").filter(has_text="Bob")
    await expect(bob_tile.locator(".tile-mic")).to_be_visible()
    row = host.locator(f"[data-testid=participant-row][data-participant-id={bob_id}]")
    await expect(row.locator("[data-device=mic]")).to_have_attribute("data-state", "off")
    await attendee.wait_for_timeout(300)
    assert await growth(from_bob, "audio", "packetsReceived", 1.0) <= 2
    assert await growth(from_bob, "video", "framesDecoded", 1.0) > 5  # the camera goes on

    # The host's own microphone is not touched; Bob's toggle turns his on again.
    await mic.click()
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await expect(bob_tile.locator(".tile-mic")).to_be_hidden()
    await expect(row.locator("[data-device=mic]")).to_have_attribute("data-state", "on")
    await wait_until(
        lambda: growth(from_bob, "audio", "packetsReceived", 0.5),
        lambda n: n > 10,
        within=10,
        what="Bob's audio to flow again",
    )

    # Again, through the toast's button this time.
    await host.get_by_test_id("mode-select").select_option("listen-only")
    await expect(attendee.get_by_test_id("mic-toggle")).to_be_hidden()
    await expect(mic).to_have_attribute("aria-pressed", "false")
    await bob.get_by_test_id("toast-mic-on").last.click()
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await wait_until(
        lambda: growth(from_bob, "audio", "packetsReceived", 0.5),
        lambda n: n > 10,
        within=10,
        what="Bob's audio to flow again after the toast",
    )


async def test_discussion_is_refused_plainly_in_a_big_room(
    server: RunningServer, open_page: OpenPage
) -> None:
    """26 people (25 signalling-only attendees and the host): discussion is refused and
    the mode switch says why and stays on listen-only."""
    event = await server.create_event("Big room")
    host = await open_page("host")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key, preview=False)
    url = server.base_url.replace("http", "ws") + "/ws"
    async with aiohttp.ClientSession() as http:
        crowd: list[SignallingClient] = []
        try:
            for i in range(25):
                client = SignallingClient(http, url)
                crowd.append(client)
                await client.connect()
                await client.request("hello", protocol=1)
                await client.request("join", event_id=event.event_id, name=f"Attendee {i}")
            await expect(host.get_by_test_id("participant-count")).to_have_text("26 people here")
            select = host.get_by_test_id("mode-select")
            await select.select_option("discussion")
            error = host.get_by_test_id("error")
            await expect(error).to_contain_text("Discussion needs a smaller room")
            await expect(error).to_contain_text("at most 25 people; 26 are here")
            await expect(select).to_have_value("listen-only")
            await expect(select).to_be_enabled()
        finally:
            await asyncio.gather(*(client.close() for client in crowd))
