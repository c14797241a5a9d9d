"""A scheduled event end to end: an attendee joins by its ID from the home page, waits
in the lobby, is moved in when a presenter starts the event, sees and hears the
presenter, and sees a screen share spotlighted; the host ends it for everyone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from tests.browser.support import (
    SCREENSHOTS,
    OpenPage,
    go_live,
    inbound_stats,
    join_presenter,
    wait_for_media,
    wait_until,
)
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser


async def test_lobby_start_and_screen_spotlight(server: RunningServer, open_page: OpenPage) -> None:
    starts = datetime.now(UTC) + timedelta(minutes=3)
    event = await server.store.create_event(
        "Launch day",
        starts,
        agenda="1. Welcome\n2. Demo",
        lobby_message="We start on time. Grab a coffee!",
    )
    attendee = await open_page("attendee")
    alice = await open_page("alice")
    bob = await open_page("bob")

    # The attendee types the event ID on the home page (attendees have no device check:
    # they listen; the name typed there is used at once).
    await attendee.goto(server.base_url + "/")
    await attendee.get_by_test_id("event-id-input").fill(event.display_id)
    await attendee.get_by_test_id("name-input").fill("Grace")
    await attendee.get_by_test_id("join-button").click()
    lobby = attendee.get_by_test_id("lobby")
    await expect(lobby).to_be_visible()
    await expect(attendee.get_by_test_id("lobby-title")).to_have_text("Launch day")
    await expect(attendee.get_by_test_id("lobby-message")).to_have_text(
        "We start on time. Grab a coffee!"
    )
    await expect(attendee.get_by_test_id("lobby-agenda")).to_have_text("1. Welcome\n2. Demo")
    await expect(attendee.get_by_test_id("lobby-when")).to_contain_text("Starts")
    countdown = attendee.get_by_test_id("lobby-countdown")
    await expect(countdown).to_have_text(re.compile(r"^[23]:\d\d$"))
    first = await countdown.text_content()
    await expect(countdown).not_to_have_text(first or "", timeout=3000)  # it counts down
    await expect(attendee.get_by_test_id("controls")).to_be_hidden()

    # A presenter prepares: goes live backstage; the attendee receives nothing yet.
    await join_presenter(alice, server, event, "Alice")
    await expect(alice.get_by_test_id("stage-banner")).to_contain_text(
        "1 attendee is waiting in the lobby"
    )
    await go_live(alice)
    await expect(alice.get_by_test_id("room-status")).to_contain_text("live backstage")
    await attendee.wait_for_timeout(1000)
    stats = await inbound_stats(attendee)
    assert stats["video"]["framesDecoded"] == 0 and stats["audio"]["packetsReceived"] == 0
    await expect(lobby).to_be_visible()

    # Start: the attendee is moved in by itself and sees and hears Alice.
    await alice.get_by_test_id("start-event").click()
    await expect(alice.get_by_test_id("stage-banner")).to_be_hidden()
    await expect(lobby).to_be_hidden()
    await expect(attendee.get_by_test_id("toast").last).to_contain_text("The webinar has started")
    tiles = attendee.get_by_test_id("video-tile")
    await expect(tiles).to_have_count(1)
    await expect(tiles).to_contain_text("Alice")
    await wait_for_media(attendee)

    # A second presenter shares a screen: it is the big tile, cameras beside it.
    await join_presenter(bob, server, event, "Bob", preview=False)
    await bob.get_by_test_id("screen-share-toggle").click()
    await expect(bob.get_by_test_id("screen-share-toggle")).to_have_attribute(
        "aria-pressed", "true"
    )
    screen = attendee.locator("[data-testid=video-tile][data-source=screen]")
    await expect(tiles).to_have_count(2)
    await expect(screen).to_have_attribute("data-spotlight", "true")
    await expect(attendee.locator("#grid")).to_have_attribute("data-layout", "spotlight")
    await wait_until(
        lambda: inbound_stats(attendee),
        lambda s: s["video"]["framesDecoded"] > 60,
        within=10,
        what="frames of both videos",
    )
    camera = attendee.locator("[data-testid=video-tile][data-source=camera]")
    big = await screen.bounding_box()
    small = await camera.bounding_box()
    assert big and small
    assert big["width"] * big["height"] > 4 * small["width"] * small["height"], (big, small)
    assert small["x"] >= big["x"] + big["width"], "the camera strip is beside the screen"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await attendee.screenshot(path=str(SCREENSHOTS / "attendee-spotlight-desktop.png"))

    # Sharing stops: the grid is a grid again.
    await bob.get_by_test_id("screen-share-toggle").click()
    await expect(tiles).to_have_count(1)
    await expect(attendee.locator("#grid")).to_have_attribute("data-layout", "grid")


async def test_host_ends_the_event_for_everyone(server: RunningServer, open_page: OpenPage) -> None:
    event = await server.create_event("Short one")
    host = await open_page("host")
    presenter = await open_page("presenter")
    attendee = await open_page("attendee")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key, preview=False)
    await join_presenter(presenter, server, event, "Pat", preview=False)
    await attendee.goto(f"{server.base_url}/e/{event.event_id}")
    await attendee.get_by_test_id("prejoin-name-input").fill("Viewer")
    await attendee.get_by_test_id("enter-room-button").click()
    await expect(attendee.get_by_test_id("room-status")).to_have_text("Waiting for the presenter…")
    await expect(host.get_by_test_id("role-badge")).to_have_text("Host")
    # Only the host may end it for everyone.
    await expect(presenter.get_by_test_id("end-for-all")).to_be_hidden()

    end = host.get_by_test_id("end-for-all")
    await end.click()
    dialog = host.get_by_test_id("end-for-all-dialog")
    await expect(dialog).to_be_visible()
    await host.get_by_test_id("end-for-all-cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(end).to_be_focused()
    await expect(attendee.get_by_test_id("room-status")).to_be_visible()

    await end.click()
    await host.get_by_test_id("end-for-all-confirm").click()
    for page in (presenter, host):
        await expect(page).to_have_url(f"{server.base_url}/thanks")
        await expect(page.get_by_test_id("thank-you")).to_be_visible()
    # The attendee stays in the ended view, asked for a rating (tests/browser/test_rating.py).
    await expect(attendee.get_by_test_id("ended")).to_contain_text("The webinar has ended")
    await expect(attendee.get_by_test_id("rating")).to_be_visible()
