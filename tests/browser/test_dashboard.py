"""The organiser's dashboard in a real browser: sign in, schedule, edit, share links."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import DESKTOP, PHONE, SCREENSHOTS, OpenPage, PageErrors
from tests.helpers import RunningServer
from webinar.accounts import hash_password
from webinar.storage.store import User

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
EVENT_URL = re.compile(r"/dashboard/events/(\d{3}-\d{3}-\d{3})$")


def add_user(server: RunningServer, name: str) -> User:
    with server.store.connect_sync() as sync:
        return sync.create_user(name, hash_password(PASSWORD, n=2**12), "organiser")


async def set_browser_zone(page: Page, zone: str) -> None:
    """Make the page's browser think it is in ``zone`` (what a new event defaults to)."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Emulation.setTimezoneOverride", {"timezoneId": zone})


async def sign_in(page: Page, server: RunningServer, name: str) -> None:
    await page.goto(server.base_url + "/login")
    await page.get_by_test_id("login-username").fill(name)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(server.base_url + "/dashboard")


async def test_organiser_schedules_edits_and_shares(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    olga = add_user(server, "olga")
    add_user(server, "piotr")
    page_errors.allow(r"status of 401")  # the wrong password's page comes with 401
    page = await open_page("olga")
    await set_browser_zone(page, "Asia/Tokyo")
    await page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=server.base_url
    )

    # Signed out, the dashboard sends you to sign in; a wrong password is said plainly.
    await page.goto(server.base_url + "/dashboard")
    await expect(page).to_have_url(server.base_url + "/login")
    await expect(page.get_by_role("heading", name="Organiser sign-in")).to_be_visible()
    await page.get_by_test_id("login-username").fill("olga")
    await page.get_by_test_id("login-password").fill("not the password")
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-error")).to_have_text("Wrong user name or password.")
    await expect(page.get_by_test_id("login-username")).to_have_value("olga")
    await expect(page.get_by_test_id("login-password")).to_be_focused()
    await expect(page.get_by_test_id("login-password")).to_have_attribute("aria-invalid", "true")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(server.base_url + "/dashboard")
    await expect(page.get_by_test_id("events-empty")).to_contain_text("No events yet")

    # Schedule: the time zone defaults to the browser's and is searchable by city.
    await page.get_by_test_id("new-event").click()
    await expect(page).to_have_url(server.base_url + "/dashboard/events/new")
    await expect(page.get_by_test_id("event-title-input")).to_be_focused()
    await expect(page.get_by_test_id("event-timezone-input")).to_have_value("Asia/Tokyo")
    assert await page.locator("#zones option").count() > 300  # Intl.supportedValuesOf
    await page.get_by_test_id("event-title-input").fill("Launch")
    await page.get_by_test_id("event-agenda-input").fill("1. What is new\n2. Questions")
    await page.get_by_test_id("event-start-input").fill("2031-03-30T10:00")
    await page.get_by_test_id("event-timezone-input").fill("new york")
    await page.get_by_test_id("event-duration-input").fill("90")
    await page.get_by_test_id("event-duration-input").focus()  # leaves the zone field
    await expect(page.get_by_test_id("event-timezone-input")).to_have_value("America/New_York")
    # 10:00 in New York on 30 March 2031 (daylight saving time, UTC-4) is 14:00 UTC
    await expect(page.get_by_test_id("start-preview")).to_have_text(
        "Sun 30 Mar 2031, 10:00 in New York is 14:00 UTC and 23:00 your time (Tokyo)."
    )

    # Inline validation: a camera limit out of range is said at the field, nothing is sent.
    camera = page.get_by_test_id("event-camera-limit-input")
    await camera.fill("9")
    await page.get_by_test_id("save-event").click()
    await expect(page.get_by_text("Choose 1 to 7 cameras.")).to_be_visible()
    await expect(camera).to_have_attribute("aria-invalid", "true")
    await expect(camera).to_be_focused()
    await expect(page).to_have_url(server.base_url + "/dashboard/events/new")
    await camera.fill("3")
    await expect(page.get_by_text("Choose 1 to 7 cameras.")).to_be_hidden()
    await page.get_by_test_id("save-event").click()

    # The event page: saved, with its ID and the three links.
    await expect(page).to_have_url(EVENT_URL)
    match = EVENT_URL.search(page.url)
    assert match
    display_id = match.group(1)
    await expect(page.get_by_test_id("saved-notice")).to_be_visible()
    await expect(page.get_by_test_id("saved-notice")).to_contain_text("Saved")
    await expect(page.get_by_test_id("event-id")).to_have_text(display_id)
    event = await server.store.get_event(display_id)
    assert event is not None
    # The start was converted from New York time to UTC, as the preview said.
    assert event.starts_at == datetime(2031, 3, 30, 14, 0, tzinfo=UTC)
    assert (event.title, event.timezone, event.duration_minutes, event.camera_limit) == (
        "Launch",
        "America/New_York",
        90,
        3,
    )
    # (a form sends line breaks as CRLF; the server stores them as sent)
    assert event.agenda.replace("\r\n", "\n") == "1. What is new\n2. Questions"
    assert event.owner_id == olga.user_id
    attendee_url = f"{server.base_url}/e/{display_id}"
    await expect(page.get_by_test_id("attendee-link")).to_have_value(attendee_url)
    await expect(page.get_by_test_id("presenter-link")).to_have_value(
        f"{attendee_url}/present?key={event.presenter_key}"
    )
    await expect(page.get_by_test_id("host-link")).to_have_value(
        f"{attendee_url}/present?key={event.host_key}"
    )
    copy = page.get_by_test_id("copy-presenter-link")
    await copy.click()
    await expect(copy).to_contain_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == (
        f"{attendee_url}/present?key={event.presenter_key}"
    )

    # The dashboard lists it under Upcoming, in its own time zone.
    await page.get_by_test_id("back-to-events").click()
    upcoming = page.get_by_test_id("events-upcoming")
    card = upcoming.get_by_test_id("event-card")
    await expect(card).to_have_count(1)
    await expect(card.get_by_test_id("event-card-title")).to_have_text("Launch")
    await expect(card.get_by_test_id("event-card-id")).to_have_text(display_id)
    await expect(card.get_by_test_id("event-card-start")).to_have_text("Sun 30 Mar 2031, 10:00")
    await expect(card).to_contain_text("America/New_York")
    await expect(card).to_contain_text("1 h 30 min")
    await expect(card.get_by_test_id("event-card-status")).to_have_text("Upcoming")
    await expect(page.get_by_test_id("events-live")).to_have_count(0)
    await card.get_by_test_id("copy-attendee-link").click()
    await expect(card.get_by_test_id("copy-attendee-link")).to_contain_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == attendee_url
    await expect(card.get_by_test_id("open-as-host")).to_have_attribute(
        "href", f"{attendee_url}/present?key={event.host_key}"
    )

    # Edit the title: saved, and the list shows the new one.
    await card.get_by_test_id("event-card-title").click()
    await expect(page.get_by_test_id("event-title-input")).to_have_value("Launch")
    await expect(page.get_by_test_id("event-start-input")).to_have_value("2031-03-30T10:00")
    await expect(page.get_by_test_id("event-timezone-input")).to_have_value("America/New_York")
    await expect(page.get_by_test_id("saved-notice")).to_be_hidden()
    await page.get_by_test_id("event-title-input").fill("Launch v2")
    await page.get_by_test_id("save-event").click()
    await expect(page.get_by_test_id("saved-notice")).to_be_visible()
    await expect(page.get_by_test_id("event-heading")).to_have_text("Launch v2")
    updated = await server.store.get_event(display_id)
    assert updated is not None
    assert updated.title == "Launch v2"
    assert updated.starts_at == event.starts_at  # the unchanged start stays 14:00 UTC
    assert updated.presenter_key == event.presenter_key
    await page.get_by_test_id("back-to-events").click()
    await expect(page.get_by_test_id("event-card-title")).to_have_text(["Launch v2"])

    # Sign out: the dashboard is closed again.
    await page.get_by_test_id("logout").click()
    await expect(page).to_have_url(server.base_url + "/login")
    await page.goto(server.base_url + "/dashboard")
    await expect(page).to_have_url(server.base_url + "/login")

    # Another organiser sees none of it.
    other = await open_page("piotr")
    await sign_in(other, server, "piotr")
    await expect(other.get_by_test_id("events-empty")).to_be_visible()
    await expect(other.get_by_test_id("event-card")).to_have_count(0)
    await expect(other.get_by_text("Launch v2")).to_have_count(0)
    page_errors.allow(r"status of 404")
    response = await other.goto(f"{server.base_url}/dashboard/events/{display_id}")
    assert response is not None and response.status == 404


async def test_keyboard_only(server: RunningServer, open_page: OpenPage) -> None:
    add_user(server, "olga")
    page = await open_page("olga")
    await page.goto(server.base_url + "/login")
    await expect(page.get_by_test_id("login-username")).to_be_focused()
    await page.keyboard.type("olga")
    await page.keyboard.press("Tab")
    await expect(page.get_by_test_id("login-password")).to_be_focused()
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(server.base_url + "/dashboard")

    # Skip link, brand, one's account, sign out, the language, then the primary action.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(page.get_by_test_id("nav-account")).to_be_focused()
    for _ in range(2):
        await page.keyboard.press("Tab")
    await expect(page.get_by_test_id("language-switcher")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_test_id("new-event")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("event-title-input")).to_be_focused()
    # An empty title is refused at the field; the message is tied to it.
    await page.keyboard.press("Enter")
    title = page.get_by_test_id("event-title-input")
    await expect(title).to_have_attribute("aria-invalid", "true")
    await expect(title).to_have_accessible_description(re.compile("Give the event a title"))
    await page.keyboard.type("Keyboard only")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(EVENT_URL)
    await expect(page.get_by_test_id("saved-notice")).to_be_visible()


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
async def test_dashboard_screenshots(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors, size: str
) -> None:
    viewport = DESKTOP if size == "desktop" else PHONE
    olga = add_user(server, "olga")
    add_user(server, "newcomer")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for title, start, settings in [
        ("Weekly all-hands", now - timedelta(minutes=20), {"timezone": "America/New_York"}),
        (
            "Product launch: what's new in 2.0",
            now + timedelta(days=3),
            {"timezone": "Europe/Berlin", "duration_minutes": 90, "access_type": "password"},
        ),
        ("Customer training", now + timedelta(days=9), {"timezone": "Asia/Tokyo"}),
        ("Q3 results briefing", now - timedelta(days=10), {"duration_minutes": 45}),
    ]:
        await server.store.create_event(title, start, owner_id=olga.user_id, **settings)

    page_errors.allow(r"status of 401")
    page = await open_page("olga", viewport)
    await page.goto(server.base_url + "/login")
    await _shot(page, f"dashboard-login-{size}")
    await page.get_by_test_id("login-username").fill("olga")
    await page.get_by_test_id("login-password").fill("wrong")
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-error")).to_be_visible()
    await _shot(page, f"dashboard-login-error-{size}")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("event-card")).to_have_count(4)
    await _shot(page, f"dashboard-list-{size}")
    await page.screenshot(path=str(SCREENSHOTS / f"dashboard-list-full-{size}.png"), full_page=True)

    await page.get_by_test_id("new-event").click()
    await _shot(page, f"dashboard-new-event-{size}")
    await page.get_by_test_id("event-title-input").fill("Team demo")
    await page.get_by_test_id("event-start-input").fill("2031-03-30T10:00")
    await page.get_by_test_id("event-timezone-input").fill("Mars/Olympus")
    await page.get_by_test_id("event-camera-limit-input").fill("9")
    await page.get_by_test_id("save-event").click()
    await expect(page.get_by_test_id("event-timezone-input")).to_be_focused()
    await _shot(page, f"dashboard-new-event-invalid-{size}")
    # Past the page's checks (as without scripts), the server's message lands at the field.
    page_errors.allow(r"status of 400")
    await page.evaluate("document.querySelector('form[data-event-form]').submit()")
    await expect(page.get_by_test_id("form-error")).to_contain_text("unknown time zone")
    zone = page.get_by_test_id("event-timezone-input")
    await expect(zone).to_have_value("Mars/Olympus")
    await expect(zone).to_be_focused()
    await expect(zone).to_have_attribute("aria-invalid", "true")
    await expect(zone).to_have_accessible_description(re.compile("Unknown time zone"))
    await expect(page.get_by_text("Choose 1 to 7 cameras.")).to_be_visible()  # the page's own
    await _shot(page, f"dashboard-new-event-server-error-{size}")
    await page.get_by_test_id("event-timezone-input").fill("Europe/Berlin")
    await page.get_by_test_id("event-camera-limit-input").fill("2")
    await page.get_by_test_id("save-event").click()
    await expect(page.get_by_test_id("saved-notice")).to_be_visible()
    await _shot(page, f"dashboard-event-saved-{size}")
    await page.get_by_test_id("event-thank-you-input").scroll_into_view_if_needed()
    await _shot(page, f"dashboard-event-saved-bottom-{size}")

    newcomer = await open_page("newcomer", viewport)
    await sign_in(newcomer, server, "newcomer")
    await expect(newcomer.get_by_test_id("events-empty")).to_be_visible()
    await _shot(newcomer, f"dashboard-empty-{size}")
