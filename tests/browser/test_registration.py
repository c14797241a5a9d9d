"""Registration for an open event in real Chromium: the organiser requires registration in
the event's settings (a question, a privacy text) → a visitor who opens the room is sent to
register → registers on the registration page (consent ticked) → lands on the thank-you page
→ the confirmation e-mail (a real SMTP server) has the personal link and a calendar file →
the link opens the room with the name filled and admits them by it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest
from playwright.async_api import Page, expect

from tests.browser.support import PHONE, SCREENSHOTS, OpenPage, PageErrors
from tests.helpers import RunningServer, make_config, running_server
from tests.smtp import Inbox, smtp_server, text_of
from webinar.accounts import hash_password
from webinar.config import MailConfig

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
PRIVACY = "We use your name and e-mail address only to run this webinar."


async def shot(page: Page, name: str) -> None:
    """Keep a picture for people to look at (artifacts/screenshots), and check it fits."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the viewport"
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as box:
        yield box


@pytest.fixture
async def server(tmp_path: Path, inbox: Inbox) -> AsyncIterator[RunningServer]:
    config = dataclasses.replace(
        make_config(tmp_path / "data"),
        mail=MailConfig(smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_security="none"),
    )
    async with running_server(config.data_dir, config) as srv:
        yield srv


async def test_register_on_the_page_and_enter_with_the_personal_link(
    server: RunningServer, inbox: Inbox, open_page: OpenPage, page_errors: PageErrors
) -> None:
    page_errors.allow(r"\[stranger\] console error: Failed to load resource: .* 404")
    olga = await server.store.run(
        lambda core: core.create_user("olga", hash_password(PASSWORD, n=2**12), "organiser")
    )
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=6)
    event = await server.store.create_event(
        "Open webinar",
        start,
        owner_id=olga.user_id,
        timezone="Europe/Prague",
        join_window_minutes=10,
        lobby_message="Welcome, registrants!",
    )

    # The organiser requires registration, with a question and a privacy text.
    organiser = await open_page("organiser")
    await organiser.goto(f"{server.base_url}/login")
    await organiser.get_by_test_id("login-username").fill("olga")
    await organiser.get_by_test_id("login-password").fill(PASSWORD)
    await organiser.get_by_test_id("login-submit").click()
    await organiser.goto(f"{server.base_url}/dashboard/events/{event.display_id}")
    await organiser.get_by_test_id("event-registration-required-input").check()
    await organiser.get_by_test_id("event-registration-questions-input").fill("Company *")
    await organiser.get_by_test_id("event-privacy-text-input").fill(PRIVACY)
    await organiser.get_by_test_id("save-event").click()
    await expect(organiser.get_by_test_id("saved-notice")).to_be_visible()
    await expect(organiser.get_by_test_id("event-registration-required-input")).to_be_checked()
    await shot(organiser, "registration-event-form-desktop")

    # A visitor who opens the room is asked to register first.
    visitor = await open_page("visitor")
    await visitor.goto(f"{server.base_url}/e/{event.display_id}")
    await expect(visitor.get_by_test_id("prejoin-register")).to_be_visible()
    await expect(visitor.locator("#prejoin-form")).to_be_hidden()
    await shot(visitor, "registration-room-asks-to-register-desktop")
    await visitor.get_by_test_id("prejoin-register-link").click()
    await expect(visitor).to_have_url(f"{server.base_url}/e/{event.display_id}/register")
    await expect(visitor.get_by_test_id("register-privacy-text")).to_have_text(PRIVACY)
    await expect(visitor.get_by_test_id("register-seats")).to_have_count(0)
    await visitor.get_by_test_id("register-first-name").fill("Grace")
    await visitor.get_by_test_id("register-last-name").fill("Hopper")
    await visitor.get_by_test_id("register-email").fill("grace@example.org")
    await visitor.get_by_test_id("register-question").fill("ACME")
    await shot(visitor, "registration-form-desktop")
    # the browser will not send the form without the consent box ticked
    await visitor.get_by_test_id("register-submit").click()
    await expect(visitor).to_have_url(f"{server.base_url}/e/{event.display_id}/register")
    await visitor.get_by_test_id("register-consent").check()
    await visitor.get_by_test_id("register-submit").click()

    # The thank-you page.
    thanks = visitor.get_by_test_id("register-thanks")
    await expect(thanks).to_have_attribute("data-status", "confirmed")
    await expect(visitor.get_by_test_id("register-done")).to_contain_text(
        "We e-mailed you your personal join link and a calendar file"
    )
    await expect(visitor.get_by_test_id("register-calendar")).to_be_visible()
    await shot(visitor, "registration-thanks-desktop")

    # The e-mail: the personal link and the event in the calendar, in Prague time.
    message = await inbox.wait_for("grace@example.org", "You are registered: Open webinar")
    found = re.search(r"(http://\S+/e/\d{3}-\d{3}-\d{3}#pass=rp-[\w-]+)", text_of(message))
    assert found, text_of(message)
    link = found.group(1)
    (part,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    ics = part.get_payload(decode=True)
    assert isinstance(ics, bytes)
    (entry,) = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    assert str(entry["dtstart"].dt.tzinfo) == "Europe/Prague" and entry["dtstart"].dt == start

    # The link opens the room with her name filled (the secret leaves the address bar) ...
    grace = await open_page("grace")
    await grace.goto(link)
    await expect(grace).to_have_url(f"{server.base_url}/e/{event.display_id}")
    await expect(grace.get_by_test_id("prejoin-pass")).to_contain_text("Grace Hopper")
    name = grace.get_by_test_id("prejoin-name-input")
    await expect(name).to_have_value("Grace Hopper")
    await expect(name).to_have_attribute("readonly", "")
    await expect(grace.get_by_test_id("prejoin-register")).to_be_hidden()
    await shot(grace, "registration-personal-link-desktop")
    # ... and admits her by it.
    await grace.get_by_test_id("enter-room-button").click()
    await expect(grace.get_by_test_id("room")).to_have_attribute("data-view", "lobby")
    await expect(grace.get_by_test_id("lobby-message")).to_have_text("Welcome, registrants!")
    bound = await grace.evaluate(
        "() => { const c = window.__webinar.connection;"
        " return c.participants.get(c.joined.participant_id).name; }"
    )
    assert bound == "Grace Hopper"

    # The organiser sees her registered and checked in.
    await organiser.goto(f"{server.base_url}/dashboard/events/{event.display_id}/tickets")
    row = organiser.get_by_test_id("registration-row")
    await expect(row).to_have_attribute("data-email", "grace@example.org")
    await expect(row.get_by_test_id("registration-status")).to_have_text("confirmed")
    await expect(row.get_by_test_id("registration-checked-in")).to_contain_text("Europe/Prague")
    await expect(row.get_by_test_id("registration-answer")).to_have_text("Company: ACME")
    await shot(organiser, "registration-tickets-desktop")

    # A link of nobody's is said so plainly.
    stranger = await open_page("stranger")
    await stranger.goto(f"{server.base_url}/e/{event.display_id}#pass=rp-{'x' * 24}")
    await expect(stranger.get_by_test_id("prejoin-error")).to_contain_text(
        "This personal link is not valid for this webinar"
    )
    await expect(stranger.get_by_test_id("prejoin-register")).to_be_visible()
    # The registration page fits a phone.
    phone = await open_page("phone", viewport=PHONE)
    await phone.goto(f"{server.base_url}/e/{event.display_id}/register")
    await expect(phone.get_by_test_id("register-consent")).to_be_visible()
    await shot(phone, "registration-form-phone")
