"""Branding in real Chromium: an organiser sets a logo and an accent colour on the event's
branding page; the registration page and the room show the logo (loaded: it has pixels) and
the colour; a colour with too little contrast under white text is warned about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Page, expect

from tests.browser.support import PHONE, SCREENSHOTS, OpenPage, PageErrors, wait_for_js
from tests.helpers import RunningServer
from webinar.accounts import hash_password

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


async def shot(page: Page, name: str) -> None:
    """Keep a picture for people to look at (artifacts/screenshots), and check it fits."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the viewport"
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def logo_loaded(page: Page) -> None:
    logo = page.get_by_test_id("brand-logo")
    await expect(logo).to_be_visible()
    assert "/branding/brand_" in (await logo.get_attribute("src") or "")
    await wait_for_js(
        page,
        "() => { const i = document.querySelector('[data-testid=brand-logo]');"
        " return i && i.complete && i.naturalWidth === 240 && i.naturalHeight === 80; }",
    )


async def test_organiser_brands_an_event(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors, tmp_path: Path
) -> None:
    olga = await server.store.run(
        lambda core: core.create_user("olga", hash_password(PASSWORD, n=2**12), "organiser")
    )
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
    event = await server.store.create_event("Branded launch", start, owner_id=olga.user_id)
    logo_file = tmp_path / "acme-logo.png"
    Image.new("RGBA", (240, 80), (11, 110, 79, 255)).save(logo_file)
    background_file = tmp_path / "backdrop.jpg"
    Image.linear_gradient("L").resize((1280, 720)).convert("RGB").save(background_file)

    organiser = await open_page("organiser")
    await organiser.goto(f"{server.base_url}/login")
    await organiser.get_by_test_id("login-username").fill("olga")
    await organiser.get_by_test_id("login-password").fill(PASSWORD)
    await organiser.get_by_test_id("login-submit").click()
    await organiser.goto(f"{server.base_url}/dashboard/events/{event.display_id}")
    await organiser.get_by_test_id("event-registration-required-input").check()
    await organiser.get_by_test_id("save-event").click()
    await expect(organiser.get_by_test_id("saved-notice")).to_be_visible()

    # The event's branding page: logo, colour and name.
    await organiser.get_by_test_id("event-branding").click()
    await expect(organiser.get_by_test_id("branding-heading")).to_be_visible()
    await expect(organiser.get_by_test_id("branding-contrast-warning")).to_have_count(0)
    await organiser.get_by_test_id("branding-organiser-name").fill("Acme Academy")
    await organiser.get_by_test_id("branding-accent").fill("#0b6e4f")
    await organiser.get_by_test_id("branding-logo").set_input_files(str(logo_file))
    await organiser.get_by_test_id("branding-background").set_input_files(str(background_file))
    await organiser.get_by_test_id("branding-save").click()
    await expect(organiser.get_by_test_id("branding-notice")).to_be_visible()
    await expect(organiser.get_by_test_id("branding-logo-preview")).to_be_visible()
    await expect(organiser.get_by_test_id("branding-accent")).to_have_value("#0b6e4f")
    await expect(organiser.get_by_test_id("branding-contrast")).to_have_attribute("data-ok", "true")
    await expect(organiser.get_by_test_id("branding-contrast-warning")).to_have_count(0)
    await shot(organiser, "branding-dashboard-desktop")

    # The registration page shows the logo, the name and the colour.
    visitor = await open_page("visitor")
    await visitor.goto(f"{server.base_url}/e/{event.display_id}/register")
    await logo_loaded(visitor)
    await expect(visitor.get_by_test_id("brand-organiser")).to_have_text("Acme Academy")
    await expect(visitor.get_by_test_id("register-submit")).to_have_css(
        "background-color", "rgb(11, 110, 79)"
    )
    await shot(visitor, "branding-registration-desktop")

    # The room (its pre-join and lobby) shows the logo in the top bar, over the background.
    await visitor.goto(f"{server.base_url}/e/{event.display_id}")
    await logo_loaded(visitor)
    background = await visitor.evaluate("() => getComputedStyle(document.body).backgroundImage")
    assert "/branding/brand_" in background and ".jpg" in background
    await shot(visitor, "branding-room-desktop")

    # A light colour under white text is kept, and the organiser is warned.
    await organiser.get_by_test_id("branding-accent").fill("#ffcc00")
    await organiser.get_by_test_id("branding-save").click()
    warning = organiser.get_by_test_id("branding-contrast-warning")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("#ffcc00")
    await expect(warning).to_contain_text("4.5:1")
    await expect(organiser.get_by_test_id("branding-contrast")).to_have_attribute(
        "data-ok", "false"
    )
    await shot(organiser, "branding-contrast-warning-desktop")

    # On a phone: the registration page's branded header, the room's top bar, the dashboard's
    # branding page and the events list (with its Branding button) all fit the width.
    phone = await open_page("phone", PHONE)
    await phone.goto(f"{server.base_url}/e/{event.display_id}/register")
    await logo_loaded(phone)
    await shot(phone, "branding-registration-phone")
    await phone.goto(f"{server.base_url}/e/{event.display_id}")
    await logo_loaded(phone)
    await shot(phone, "branding-room-phone")
    await phone.goto(f"{server.base_url}/login")
    await phone.get_by_test_id("login-username").fill("olga")
    await phone.get_by_test_id("login-password").fill(PASSWORD)
    await phone.get_by_test_id("login-submit").click()
    await expect(phone.get_by_test_id("nav-branding")).to_be_visible()
    await shot(phone, "branding-events-list-phone")
    await phone.get_by_test_id("nav-branding").click()
    await expect(phone.get_by_test_id("branding-heading")).to_be_visible()
    await shot(phone, "branding-account-phone")
