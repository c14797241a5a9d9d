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
    mic_level,
    wait_for_playing_video,
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
    """Without the fake permission UI, headless Chromium denies camera and microphone:
    the device check says so, entering still works, Go live says it again."""
    event = await server.create_event("Denied")
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            page = await (await browser.new_context(viewport=DESKTOP)).new_page()
            page_errors.watch(page, "denied")
            await page.goto(
                f"{server.base_url}/e/{event.event_id}/present?key={event.presenter_key}"
            )
            check = page.get_by_test_id("device-error")
            await expect(check).to_contain_text("Permission to use your camera and microphone")
            await expect(check).to_contain_text("You can still enter without them")
            await check.get_by_test_id("device-retry").click()
            await expect(check).to_contain_text("was denied")
            await join_presenter(page, server, event, "Alice", preview=False)
            await expect(page.get_by_test_id("self-view")).to_have_class(re.compile("tile-off"))
            # Go live asks again, and says it again; nothing is published.
            error = page.get_by_test_id("error")
            await page.get_by_test_id("go-live").click()
            await expect(error).to_contain_text("was denied")
            await expect(page.get_by_test_id("go-live")).to_be_visible()
            assert await page.evaluate("() => window.__webinar.connection.producers.size") == 0
            await error.get_by_role("button", name="Dismiss").click()
            await expect(error).to_be_hidden()
        finally:
            await browser.close()
    assert page_errors.unexpected() == []


async def test_device_check_level_meter_and_joining_with_camera_off(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Prepared")
    presenter = await open_page("presenter")
    attendee = await open_page("attendee")
    await presenter.goto(f"{server.base_url}/e/{event.event_id}/present?key={event.presenter_key}")
    await expect(presenter.get_by_test_id("device-check")).to_be_visible()
    await wait_for_playing_video(presenter, "[data-testid=device-preview]")
    # The fake microphone beeps: the level meter moves.
    await wait_until(lambda: mic_level(presenter), lambda v: v > 0.05, within=5, what="mic level")
    await expect(presenter.get_by_test_id("mic-level")).not_to_have_attribute("aria-valuenow", "0")
    await expect(presenter.get_by_test_id("camera-select")).to_contain_text("fake_device_0")
    await expect(presenter.get_by_test_id("mic-select")).not_to_be_disabled()
    # Enter with the camera off: the preview shows the avatar; so will everyone else.
    camera = presenter.get_by_test_id("precheck-camera-toggle")
    await camera.click()
    await expect(camera).to_have_attribute("aria-pressed", "false")
    await expect(presenter.locator("#preview-box")).to_have_class(re.compile("tile-off"))
    await presenter.get_by_test_id("prejoin-name-input").fill("Alice")
    await presenter.get_by_test_id("enter-room-button").click()
    await expect(presenter.get_by_test_id("self-view")).to_have_class(re.compile("tile-off"))
    await expect(presenter.get_by_test_id("camera-toggle")).to_have_attribute(
        "aria-pressed", "false"
    )
    await expect(presenter.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "true")
    # The device choice moved into the Devices menu.
    await presenter.get_by_test_id("device-settings").click()
    await expect(presenter.get_by_test_id("camera-select")).to_be_visible()
    await presenter.get_by_test_id("device-settings").click()

    await go_live(presenter)
    await join_attendee(attendee, server, event, "Viewer")
    tile = attendee.get_by_test_id("video-tile")
    await expect(tile).to_have_attribute("data-paused", "true")  # an avatar, not a frozen frame
    await expect(tile).to_have_class(re.compile("tile-off"))
    await wait_until(
        lambda: inbound_stats(attendee),
        lambda s: s["audio"]["packetsReceived"] > 20,
        within=10,
        what="the presenter's audio",
    )
    # Camera on: everyone sees the picture.
    await presenter.get_by_test_id("camera-toggle").click()
    await expect(tile).to_have_attribute("data-paused", "false")
    await wait_until(
        lambda: inbound_stats(attendee),
        lambda s: s["video"]["framesDecoded"] > 10,
        within=10,
        what="the camera's frames",
    )


async def test_join_errors_say_what_is_wrong(server: RunningServer, open_page: OpenPage) -> None:
    """Too early: the start time in the user's own format; presenters may enter early."""
    starts = datetime.now(UTC) + timedelta(days=1)
    event = await server.store.create_event("Tomorrow", starts)
    early = await open_page("early")
    await early.goto(f"{server.base_url}/e/{event.event_id}")
    await early.get_by_test_id("prejoin-name-input").fill("Eager")
    await early.get_by_test_id("enter-room-button").click()
    when = await early.evaluate(
        # the page's language (English here, written the British way), the browser's time zone
        "(iso) => new Intl.DateTimeFormat('en-GB', {dateStyle: 'medium', timeStyle: 'short'})"
        ".format(new Date(iso))",
        starts.isoformat(),
    )
    error = early.get_by_test_id("prejoin-error")
    await expect(error).to_contain_text("has not opened yet")
    await expect(error).to_contain_text(when)
    await expect(early.get_by_test_id("prejoin-name-input")).to_be_visible()

    host = await open_page("host")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key, preview=False)
    assert await host.evaluate("() => window.__webinar.connection.joined.role") == "host"
    await expect(host.get_by_test_id("role-badge")).to_have_text("Host")
    await expect(host.get_by_test_id("stage-banner")).to_contain_text("has not started")
    await expect(host.get_by_test_id("start-event")).to_be_visible()
