"""Paid entry in real Chromium: register → the organiser confirms in the dashboard → the
code arrives by e-mail (a real SMTP server) → the code opens the room; a wrong code, a
second device with the same single-use code, and a code outside its window."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import SCREENSHOTS, OpenPage
from tests.helpers import RunningServer, make_config, running_server
from tests.smtp import Inbox, code_in, smtp_server
from webinar.accounts import hash_password
from webinar.config import MailConfig
from webinar.ticketing import records
from webinar.ticketing.records import EventAccess

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


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as box:
        yield box


@pytest.fixture
async def shop(tmp_path: Path, inbox: Inbox) -> AsyncIterator[RunningServer]:
    config = dataclasses.replace(
        make_config(tmp_path / "data"),
        mail=MailConfig(smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_security="none"),
    )
    async with running_server(config.data_dir, config) as srv:
        yield srv


async def test_register_confirm_and_enter_with_the_code(
    shop: RunningServer, inbox: Inbox, open_page: OpenPage
) -> None:
    server = shop
    olga = await server.store.run(
        lambda core: core.create_user("olga", hash_password(PASSWORD, n=2**12), "organiser")
    )
    now = datetime.now(UTC)
    event = await server.store.create_event(
        "Paid masterclass",
        now + timedelta(minutes=4),
        owner_id=olga.user_id,
        access_type="paid",
        lobby_message="Welcome, ticket holders!",
    )
    await server.store.run(
        lambda core: records.put_access(
            core.connection, EventAccess(event.event_id, price_minor=2500, currency="EUR")
        )
    )

    # The attendee registers on our page.
    attendee = await open_page("attendee")
    await attendee.goto(f"{server.base_url}/e/{event.display_id}/register")
    # the price as Babel writes it for the page's language
    await expect(attendee.get_by_test_id("register-price")).to_have_text("€25.00")
    await shot(attendee, "ticketing-register-desktop")
    await attendee.get_by_test_id("register-first-name").fill("Grace")
    await attendee.get_by_test_id("register-last-name").fill("Hopper")
    await attendee.get_by_test_id("register-email").fill("grace@example.org")
    await attendee.get_by_test_id("register-submit").click()
    await expect(attendee.get_by_test_id("register-done")).to_contain_text(
        "waits for payment confirmation"
    )

    # The organiser sees the registrant as payment pending and confirms by hand.
    organiser = await open_page("organiser")
    await organiser.goto(f"{server.base_url}/login")
    await organiser.get_by_test_id("login-username").fill("olga")
    await organiser.get_by_test_id("login-password").fill(PASSWORD)
    await organiser.get_by_test_id("login-submit").click()
    await organiser.goto(f"{server.base_url}/dashboard/events/{event.display_id}/tickets")
    row = organiser.get_by_test_id("registration-row")
    await expect(row.get_by_test_id("registration-status")).to_have_text("payment pending")
    await shot(organiser, "ticketing-tickets-pending-desktop")
    await row.get_by_test_id("registration-confirm").click()
    await expect(organiser.get_by_test_id("tickets-done")).to_contain_text("is confirmed")
    await expect(row.get_by_test_id("registration-status")).to_have_text("confirmed")

    # The e-mail with the code arrives; a wrong code gets a clear message first.
    code = code_in(await inbox.wait_for("grace@example.org", "reservation code"))
    await attendee.goto(f"{server.base_url}/e/{event.display_id}")
    await attendee.get_by_test_id("access-code-input").fill("2222-3333-4444")
    await attendee.get_by_test_id("access-code-submit").click()
    error = attendee.get_by_test_id("prejoin-error")
    await expect(error).to_contain_text("This reservation code is not valid for this event")
    await shot(attendee, "ticketing-code-wrong-desktop")
    await attendee.get_by_test_id("access-code-input").fill(code.lower().replace("-", " "))
    await attendee.get_by_test_id("access-code-submit").click()
    room = attendee.get_by_test_id("room")
    await expect(room).to_have_attribute("data-view", "lobby")
    await expect(attendee.get_by_test_id("lobby-message")).to_have_text("Welcome, ticket holders!")
    await expect(attendee.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")

    # The organiser sees the check-in.
    await organiser.reload()
    await expect(row.get_by_test_id("registration-checked-in")).to_contain_text("UTC")
    await shot(organiser, "ticketing-tickets-checked-in-desktop")
    await organiser.goto(f"{server.base_url}/dashboard/events/{event.display_id}")
    await expect(organiser.get_by_test_id("event-ticket-fields")).to_be_visible()
    await expect(organiser.get_by_test_id("event-price-input")).to_have_value("25.00")
    await shot(organiser, "ticketing-event-form-desktop")

    # A second device with the same single-use code takes over (the event's default);
    # the first one is told why.
    second = await open_page("second device")
    await second.goto(f"{server.base_url}/e/{event.display_id}#code={code}")
    await expect(second.get_by_test_id("access-code-input")).to_have_value(code)
    await second.get_by_test_id("access-code-submit").click()
    await expect(second.get_by_test_id("room")).to_have_attribute("data-view", "lobby")
    await expect(room).to_have_attribute("data-view", "ended")
    await expect(attendee.locator("#ended-text")).to_contain_text("used to enter on another device")
    # rejoining takes the place back from the other device, and says so
    await expect(attendee.get_by_test_id("rejoin")).to_have_text("Continue here instead")
    await expect(attendee.get_by_test_id("rejoin-note")).to_contain_text("the other device leaves")
    await shot(attendee, "ticketing-taken-over-desktop")


async def test_code_outside_its_window_shows_the_window(
    shop: RunningServer, open_page: OpenPage
) -> None:
    server = shop
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=3)
    event = await server.store.create_event(
        "Evening show", start, access_type="paid", join_window_minutes=5
    )
    reg = await server.store.run(
        lambda core: records.add_registration(
            core.connection,
            event.event_id,
            first_name="Ada",
            last_name="L",
            email="ada@example.org",
            seats=1,
            amount_minor=1000,
            currency="EUR",
            provider=records.PaymentProvider.MANUAL,
            capacity=None,
        )
    )
    confirmed = await server.store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code
    page = await open_page("early bird")
    await page.goto(f"{server.base_url}/e/{event.display_id}")
    await page.get_by_test_id("access-code-input").fill(confirmed.code)
    await page.get_by_test_id("access-code-submit").click()
    opens = start - timedelta(minutes=5 + 10)
    closes = start + timedelta(minutes=60 + 15)
    end = closes.strftime("%H:%M" if closes.date() == opens.date() else "%Y-%m-%d %H:%M")
    await expect(page.get_by_test_id("prejoin-error")).to_contain_text(
        f"works only around the event's time: too early: this code works from"
        f" {opens:%Y-%m-%d %H:%M} to {end} UTC"
    )
    await expect(page.get_by_test_id("room")).to_have_attribute("data-view", "prejoin")


async def test_invitation_link_and_password_pages(
    server: RunningServer, open_page: OpenPage
) -> None:
    """The invitation link's fragment carries the token (and leaves the address bar); a
    password event asks for the password and says plainly when it is wrong."""
    start = datetime.now(UTC) + timedelta(minutes=3)
    invited = await server.store.create_event("By invitation", start, access_type="token")
    ada = await server.store.run(
        lambda core: records.add_invitee(
            core.connection, invited.event_id, "Ada Lovelace", "ada@example.org"
        )
    )
    page = await open_page("ada")
    await page.goto(f"{server.base_url}/e/{invited.display_id}#token={ada.token}")
    await expect(page).to_have_url(f"{server.base_url}/e/{invited.display_id}")
    await page.get_by_test_id("prejoin-name-input").fill("A.")
    await page.get_by_test_id("enter-room-button").click()
    await expect(page.get_by_test_id("room")).to_have_attribute("data-view", "lobby")
    bound = await page.evaluate(
        "() => { const c = window.__webinar.connection;"
        " return c.participants.get(c.joined.participant_id).name; }"
    )
    assert bound == "Ada Lovelace"  # the token's invitee, not what was typed
    # Without the link, the page says the webinar is by invitation.
    stranger = await open_page("stranger")
    await stranger.goto(f"{server.base_url}/e/{invited.display_id}")
    await stranger.get_by_test_id("prejoin-name-input").fill("Eve")
    await stranger.get_by_test_id("enter-room-button").click()
    await expect(stranger.get_by_test_id("prejoin-error")).to_contain_text(
        "by invitation only: open the personal link from your invitation e-mail"
    )

    guarded = await server.store.create_event("Guarded", start, access_type="password")
    await server.store.run(
        lambda core: records.put_access(
            core.connection,
            EventAccess(
                guarded.event_id, attendee_password_hash=hash_password("open-sesame", n=2**10)
            ),
        )
    )
    guest = await open_page("guest")
    await guest.goto(f"{server.base_url}/e/{guarded.display_id}")
    await guest.get_by_test_id("prejoin-name-input").fill("Guest")
    await guest.get_by_test_id("access-password-input").fill("open-barley")
    await guest.get_by_test_id("enter-room-button").click()
    await expect(guest.get_by_test_id("prejoin-error")).to_contain_text(
        "That password is not right"
    )
    await guest.get_by_test_id("access-password-input").fill("open-sesame")
    await guest.get_by_test_id("enter-room-button").click()
    await expect(guest.get_by_test_id("room")).to_have_attribute("data-view", "lobby")


async def test_second_device_is_refused_when_the_event_says_so(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.store.create_event(
        "One seat each", datetime.now(UTC) + timedelta(minutes=3), access_type="paid"
    )
    await server.store.run(
        lambda core: records.put_access(
            core.connection,
            EventAccess(
                event.event_id,
                price_minor=500,
                currency="EUR",
                second_device=records.SecondDevice.REFUSE,
            ),
        )
    )
    reg = await server.store.run(
        lambda core: records.add_registration(
            core.connection,
            event.event_id,
            first_name="Lin",
            last_name="Q",
            email="lin@example.org",
            seats=1,
            amount_minor=500,
            currency="EUR",
            provider=records.PaymentProvider.MANUAL,
            capacity=None,
        )
    )
    confirmed = await server.store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code
    first = await open_page("laptop")
    await first.goto(f"{server.base_url}/e/{event.display_id}#code={confirmed.code}")
    await first.get_by_test_id("access-code-submit").click()
    await expect(first.get_by_test_id("room")).to_have_attribute("data-view", "lobby")
    second = await open_page("phone")
    await second.goto(f"{server.base_url}/e/{event.display_id}#code={confirmed.code}")
    await second.get_by_test_id("access-code-submit").click()
    await expect(second.get_by_test_id("prejoin-error")).to_contain_text("in use on another device")
    await expect(first.get_by_test_id("room")).to_have_attribute("data-view", "lobby")
