"""Presenter features: the camera limit and rollback, audio-only, screen share, leaving."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import async_playwright, expect

from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    OpenPage,
    PageErrors,
    go_live,
    inbound_stats,
    join_attendee,
    join_presenter,
    wait_for_media,
    wait_until,
)
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser


async def test_camera_limit_rollback_audio_only_and_screen_share(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Panel", camera_limit=1)
    alice = await open_page("alice")
    bob = await open_page("bob")
    await join_presenter(alice, server, event, "Alice")
    await go_live(alice)
    await join_presenter(bob, server, event, "Bob")
    # Presenters see each other: Bob sees Alice's camera next to his own preview.
    await expect(bob.get_by_test_id("video-tile")).to_have_count(1)
    await expect(bob.get_by_test_id("video-tile")).to_contain_text("Alice")

    # The room allows one camera: Bob's camera is refused, plainly.
    await bob.get_by_test_id("go-live").click()
    error = bob.get_by_test_id("error")
    await expect(error).to_contain_text("maximum number of cameras (1)")
    await expect(bob.get_by_test_id("go-live")).to_be_visible()
    # The refused offer was rolled back: the publish connection is stable again and
    # its transceivers idle, sending nothing.
    state = await bob.evaluate(
        "() => { const pc = window.__webinar.connection.publishConnection;"
        " return [pc.signalingState, pc.getTransceivers().map(t => t.direction),"
        " pc.getSenders().filter(s => s.track).length]; }"
    )
    assert state == ["stable", ["inactive", "inactive"], 0], state

    # Offered way out: the microphone alone (a renegotiation after the rollback).
    await error.get_by_role("button", name="Go live with microphone only").click()
    await expect(bob.get_by_test_id("stop-live")).to_be_visible()
    await expect(error).to_be_hidden()
    # Alice hears Bob through an <audio> element: no tile for a stream without video.
    await wait_until(
        lambda: alice.evaluate("() => document.querySelectorAll('.audio-sinks audio').length"),
        lambda n: n == 1,
        within=10,
        what="Bob's audio element",
    )
    await expect(alice.get_by_test_id("video-tile")).to_have_count(0)
    await wait_until(
        lambda: inbound_stats(alice),
        lambda s: s["audio"]["packetsReceived"] > 20,
        within=10,
        what="Bob's audio packets at Alice",
    )

    # A screen share does not count as a camera.
    await bob.get_by_test_id("screen-share-toggle").click()
    await expect(bob.get_by_test_id("screen-share-toggle")).to_have_attribute(
        "aria-pressed", "true"
    )
    tiles = alice.get_by_test_id("video-tile")
    await expect(tiles).to_have_count(1)
    await expect(tiles).to_contain_text("Bob")
    await expect(tiles).to_have_attribute("data-source", "screen")
    await wait_until(
        lambda: inbound_stats(alice),
        lambda s: s["video"]["framesDecoded"] > 0,
        within=10,
        what="Bob's screen frames at Alice",
    )
    await bob.get_by_test_id("screen-share-toggle").click()
    await expect(tiles).to_have_count(0)
    await expect(alice.get_by_test_id("toast").last).to_contain_text(
        "Bob stopped sharing their screen"
    )

    # Alice leaves: her camera disappears from Bob's grid at once.
    await alice.get_by_test_id("leave").click()
    await expect(alice.get_by_test_id("ended")).to_contain_text("You left the webinar")
    await expect(bob.get_by_test_id("video-tile")).to_have_count(0)
    await expect(bob.get_by_test_id("toast").last).to_contain_text("Alice left the webinar")
    # and Alice can come back
    await alice.get_by_test_id("rejoin").click()
    await expect(alice.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")
    await expect(alice.get_by_test_id("self-view")).to_be_visible()


async def test_toggles_and_attendee_leave(server: RunningServer, open_page: OpenPage) -> None:
    event = await server.create_event("Toggles")
    presenter = await open_page("presenter")
    attendee = await open_page("attendee")
    await join_presenter(presenter, server, event, "Alice")
    await go_live(presenter)

    enabled = "() => ['video', 'audio'].map((k) => window.__webinar.room.local[k].enabled)"
    mic = presenter.get_by_test_id("mic-toggle")
    camera = presenter.get_by_test_id("camera-toggle")
    await mic.click()
    await expect(mic).to_have_attribute("aria-pressed", "false")
    assert await presenter.evaluate(enabled) == [True, False]
    await camera.click()
    await expect(camera).to_have_attribute("aria-pressed", "false")
    await expect(presenter.get_by_test_id("self-view")).to_have_class(
        "tile tile-camera tile-self tile-off"
    )
    assert await presenter.evaluate(enabled) == [False, False]
    # keyboard: Space on the focused toggle
    await mic.focus()
    await presenter.keyboard.press("Space")
    await expect(mic).to_have_attribute("aria-pressed", "true")
    assert await presenter.evaluate(enabled) == [False, True]

    await join_attendee(attendee, server, event, "Viewer")
    await expect(attendee.get_by_test_id("video-tile")).to_have_count(1)
    await expect(presenter.get_by_test_id("room-status")).to_contain_text("1 attendee watching")
    await attendee.get_by_test_id("leave").click()
    await expect(attendee.get_by_test_id("ended")).to_be_visible()
    await expect(attendee.get_by_test_id("video-tile")).to_have_count(0)
    await expect(presenter.get_by_test_id("room-status")).to_contain_text("0 attendees watching")


async def test_denied_camera_is_said_plainly(
    server: RunningServer, page_errors: PageErrors
) -> None:
    """Without the fake permission UI, headless Chromium denies camera and microphone."""
    event = await server.create_event("Denied")
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            page = await (await browser.new_context(viewport=DESKTOP)).new_page()
            page_errors.watch(page, "denied")
            await join_presenter(page, server, event, "Alice", preview=False)
            error = page.get_by_test_id("error")
            await expect(error).to_contain_text("Permission to use your camera and microphone")
            await expect(page.get_by_test_id("self-view")).to_have_class(re.compile("tile-off"))
            # Go live asks again, and says it again; nothing is published.
            await error.get_by_role("button", name="Dismiss").click()
            await expect(error).to_be_hidden()
            await page.get_by_test_id("go-live").click()
            await expect(error).to_contain_text("was denied")
            await expect(page.get_by_test_id("go-live")).to_be_visible()
            assert await page.evaluate("() => window.__webinar.connection.producers.size") == 0
        finally:
            await browser.close()
    assert page_errors.unexpected() == []


async def test_host_going_live_starts_a_scheduled_event(
    server: RunningServer, open_page: OpenPage
) -> None:
    """Before a presenter starts a scheduled event its room is a lobby: no media for
    attendees. The host link gives the presenter UI; Go live starts the event."""
    starts = datetime.now(UTC) + timedelta(minutes=3)
    event = await server.store.create_event("Scheduled", starts)
    attendee = await open_page("attendee")
    host = await open_page("host")
    await join_attendee(attendee, server, event, "Early")
    await expect(attendee.get_by_test_id("room-status")).to_contain_text("not started yet")

    await host.goto(f"{server.base_url}/e/{event.event_id}/present?key={event.host_key}")
    await expect(host.get_by_text("Host", exact=True)).to_be_visible()
    await host.get_by_test_id("lobby-name-input").fill("Hank Host")
    await host.get_by_test_id("lobby-join-button").click()
    await expect(host.get_by_test_id("self-view")).to_be_visible()
    assert await host.evaluate("() => window.__webinar.connection.joined.role") == "host"
    await go_live(host)
    await expect(attendee.get_by_test_id("video-tile")).to_have_count(1)
    await expect(attendee.get_by_test_id("video-tile")).to_contain_text("Hank Host")
    await wait_for_media(attendee)
