"""Screenshots of every page at desktop and phone size, in artifacts/screenshots/.

They are for people to look at (layout reviews); the test also checks that nothing
overflows the viewport horizontally and that the controls are on screen.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    OpenPage,
    PageErrors,
    go_live,
    join_attendee,
    join_presenter,
    mic_level,
    wait_for_playing_video,
    wait_until,
)
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser

AGENDA = "1. Welcome and introductions\n2. What's new in 2.0\n3. Live demo\n4. Your questions"
MESSAGE = "Grab a coffee: we start on time. Questions are welcome at the end."


async def _check_fits(page: Page, name: str) -> None:
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the viewport"


async def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await _check_fits(page, name)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_screenshots(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors, size: str
) -> None:
    viewport = DESKTOP if size == "desktop" else PHONE
    event = await server.create_event("Product launch: what's new in 2.0")
    later = await server.store.create_event(
        "Quarterly all-hands",
        datetime.now(UTC) + timedelta(minutes=4),
        agenda=AGENDA,
        lobby_message=MESSAGE,
    )

    home = await open_page("home", viewport)
    await home.goto(server.base_url + "/")
    await home.get_by_test_id("event-id-input").fill("123-45")
    await home.get_by_test_id("name-input").fill("Grace Hopper")
    await home.get_by_test_id("join-button").click()
    await _shot(home, f"home-error-{size}")
    await home.get_by_test_id("event-id-input").fill(event.display_id)
    await _shot(home, f"home-{size}")

    # The waiting room of a scheduled event: title, time, countdown, message, agenda.
    early = await open_page("early", viewport)
    await join_attendee(early, server, later, "Ada Lovelace")
    await expect(early.get_by_test_id("lobby")).to_be_visible()
    await expect(early.get_by_test_id("lobby-countdown")).to_have_text(re.compile(r"^[34]:\d\d$"))
    await _shot(early, f"attendee-lobby-{size}")
    await early.close()

    attendee = await open_page("attendee", viewport)
    await attendee.goto(f"{server.base_url}/e/{event.event_id}")
    await _shot(attendee, f"attendee-prejoin-{size}")
    await join_attendee(attendee, server, event, "Grace Hopper")
    await _shot(attendee, f"attendee-waiting-{size}")

    # The presenter's device check: camera preview, level meter, device choice.
    presenter = await open_page("presenter", viewport)
    await presenter.goto(f"{server.base_url}/e/{event.event_id}/present?key={event.presenter_key}")
    await wait_for_playing_video(presenter, "[data-testid=device-preview]")
    await presenter.get_by_test_id("prejoin-name-input").fill("Alice Presenter")
    await wait_until(lambda: mic_level(presenter), lambda v: v > 0, within=5, what="mic level")
    await _shot(presenter, f"presenter-device-check-{size}")

    await join_presenter(presenter, server, event, "Alice Presenter")
    await wait_for_playing_video(presenter, "[data-testid=self-view] video")
    await _shot(presenter, f"presenter-preview-{size}")
    await go_live(presenter)
    await expect(presenter.get_by_test_id("room-status")).to_contain_text("You are live")
    await presenter.get_by_test_id("device-settings").click()
    await _shot(presenter, f"presenter-devices-{size}")
    await presenter.get_by_test_id("device-settings").click()
    await _shot(presenter, f"presenter-live-{size}")

    # A raised hand: the presenter's participant list shows the queue and the actions.
    await attendee.get_by_test_id("raise-hand").click()
    if size == "phone":
        await presenter.get_by_test_id("people-toggle").click()
    row = presenter.get_by_test_id("participant-row").filter(has_text="Grace Hopper")
    await expect(row.get_by_test_id("hand-position")).to_have_text("1st in the queue")
    await presenter.wait_for_timeout(300)  # let the toasts finish fading in
    await _shot(presenter, f"presenter-people-{size}")
    if size == "phone":
        await presenter.get_by_test_id("side-panel-close").click()

    await expect(attendee.get_by_test_id("video-tile")).to_have_count(1)
    await wait_for_playing_video(attendee, "[data-testid=video-tile] video")
    await _shot(attendee, f"attendee-live-{size}")
    for page in (attendee, presenter):
        await expect(page.get_by_test_id("leave")).to_be_in_viewport()
    await expect(presenter.get_by_test_id("stop-live")).to_be_in_viewport()
    await expect(presenter.get_by_test_id("mode-select")).to_be_in_viewport()
    await expect(attendee.get_by_test_id("raise-hand")).to_be_in_viewport()

    await presenter.get_by_test_id("stop-live").click()
    await expect(attendee.get_by_test_id("toast").first).to_be_visible()
    await attendee.wait_for_timeout(300)  # let the toast finish fading in
    await _shot(attendee, f"attendee-stopped-{size}")

    page_errors.allow(r"status of 404")
    missing = await open_page("not-found", viewport)
    await missing.goto(f"{server.base_url}/e/999-999-999")
    await _shot(missing, f"not-found-{size}")
