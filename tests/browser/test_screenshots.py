"""Screenshots of every page at desktop and phone size, in artifacts/screenshots/.

They are for people to look at (layout reviews); the test also checks that nothing
overflows the viewport horizontally and that the controls are on screen.
"""

from __future__ import annotations

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
    wait_for_playing_video,
)
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser


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

    home = await open_page("home", viewport)
    await home.goto(server.base_url + "/")
    await home.get_by_test_id("event-id-input").fill("123-45")
    await home.get_by_test_id("name-input").fill("Grace Hopper")
    await home.get_by_test_id("join-button").click()
    await _shot(home, f"home-error-{size}")
    await home.get_by_test_id("event-id-input").fill(event.display_id)
    await _shot(home, f"home-{size}")

    attendee = await open_page("attendee", viewport)
    await attendee.goto(f"{server.base_url}/e/{event.event_id}")
    await _shot(attendee, f"attendee-lobby-{size}")
    await join_attendee(attendee, server, event, "Grace Hopper")
    await _shot(attendee, f"attendee-waiting-{size}")

    presenter = await open_page("presenter", viewport)
    await join_presenter(presenter, server, event, "Alice Presenter")
    await wait_for_playing_video(presenter, "[data-testid=self-view] video")
    await _shot(presenter, f"presenter-preview-{size}")
    await go_live(presenter)
    await expect(presenter.get_by_test_id("room-status")).to_contain_text("You are live")
    await presenter.get_by_test_id("device-settings").click()
    await _shot(presenter, f"presenter-devices-{size}")
    await presenter.get_by_test_id("device-settings").click()
    await _shot(presenter, f"presenter-live-{size}")

    await expect(attendee.get_by_test_id("video-tile")).to_have_count(1)
    await wait_for_playing_video(attendee, "[data-testid=video-tile] video")
    await _shot(attendee, f"attendee-live-{size}")
    for page in (attendee, presenter):
        await expect(page.get_by_test_id("leave")).to_be_in_viewport()
    await expect(presenter.get_by_test_id("stop-live")).to_be_in_viewport()

    await presenter.get_by_test_id("stop-live").click()
    await expect(attendee.get_by_test_id("toast").first).to_be_visible()
    await attendee.wait_for_timeout(300)  # let the toast finish fading in
    await _shot(attendee, f"attendee-stopped-{size}")

    page_errors.allow(r"status of 404")
    missing = await open_page("not-found", viewport)
    await missing.goto(f"{server.base_url}/e/999-999-999")
    await _shot(missing, f"not-found-{size}")
