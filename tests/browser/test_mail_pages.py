"""The organiser's e-mail pages in real Chromium, with a real SMTP server (tests/smtp.py): a CSV
file chosen in the tickets page's form → the preview names the bad lines → sent → the page
follows the outbox until every invitation is out; the invitee of a paid event enters with the
personal link from the e-mail (no code asked); the E-mails page shows each e-mail's HTML in a
frame beside its plain text."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import SCREENSHOTS, OpenPage
from tests.helpers import RunningServer, make_config, running_server
from tests.smtp import Inbox, calendar_of, smtp_server, token_link_in
from webinar.accounts import hash_password
from webinar.config import MailConfig
from webinar.ticketing import records
from webinar.ticketing.records import EventAccess

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
CSV = (
    "Name;E-mail;Company\n"
    "Ada Lovelace;ada@example.org;Analytical Engines\n"
    "Grace Hopper;grace(at)example.org;Navy\n"
    "Alan Turing;alan@example.org;Bletchley\n"
    "Ada again;ADA@example.org;\n"
)


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the viewport"
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server(delay=0.2) as box:  # slow enough to see the page follow it
        yield box


@pytest.fixture
async def mail_server(tmp_path: Path, inbox: Inbox) -> AsyncIterator[RunningServer]:
    config = dataclasses.replace(
        make_config(tmp_path / "data"),
        mail=MailConfig(smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_security="none"),
    )
    async with running_server(config.data_dir, config) as srv:
        yield srv


async def sign_in(page: Page, server: RunningServer) -> None:
    await page.goto(server.base_url + "/login")
    await page.get_by_test_id("login-username").fill("olga")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(server.base_url + "/dashboard")


async def test_a_csv_import_previewed_sent_and_followed_then_the_link_lets_in(
    mail_server: RunningServer, inbox: Inbox, open_page: OpenPage
) -> None:
    server = mail_server
    olga = await server.store.run(
        lambda core: core.create_user("olga", hash_password(PASSWORD, n=2**12), "organiser")
    )
    event = await server.store.create_event(
        "Paid masterclass",
        datetime.now(UTC) + timedelta(minutes=4),
        owner_id=olga.user_id,
        access_type="paid",
    )
    await server.store.run(
        lambda core: records.put_access(
            core.connection, EventAccess(event.event_id, price_minor=2500, currency="EUR")
        )
    )
    page = await open_page("organiser")
    await sign_in(page, server)
    await page.goto(f"{server.base_url}/dashboard/events/{event.display_id}/tickets")
    await expect(page.get_by_test_id("invite-hint")).to_contain_text("free ticket")
    await page.get_by_test_id("import-file-input").set_input_files(
        files=[{"name": "guests.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    await page.get_by_test_id("import-submit").click()

    # The preview: 2 people, 2 lines left out and why.
    await expect(page.get_by_test_id("import-page")).to_be_visible()
    await expect(page.get_by_test_id("import-count")).to_have_attribute("data-count", "2")
    problems = page.get_by_test_id("import-problem")
    await expect(problems).to_have_count(2)
    await expect(problems.nth(0)).to_have_attribute("data-line", "3")
    await expect(problems.nth(0).get_by_test_id("import-problem-reason")).to_have_text(
        "the e-mail address grace(at)example.org does not look right"
    )
    await expect(problems.nth(1)).to_have_attribute("data-code", "duplicate")
    await expect(page.get_by_test_id("import-row")).to_have_count(2)
    await shot(page, "mail-import-preview")
    assert inbox.messages == []
    await page.get_by_test_id("import-send").click()

    # Back on the tickets page, which follows the outbox until both are out.
    await expect(page.get_by_test_id("tickets-done")).to_have_text("2 invitations are being sent.")
    rows = page.get_by_test_id("invitee-row")
    await expect(rows).to_have_count(2)
    await expect(page.get_by_test_id("mail-progress")).to_have_count(0, timeout=15_000)
    for index in range(2):
        await expect(rows.nth(index)).to_have_attribute("data-delivery", "sent")
    await expect(page.get_by_test_id("invitee-field").first).to_have_text(
        "Company: Analytical Engines"
    )
    await shot(page, "mail-tickets-invitees")

    # Ada opens her link: the invitation is her ticket, no code is asked.
    message = await inbox.wait_for("ada@example.org", "Invitation: Paid masterclass")
    assert calendar_of(message) is not None
    ada = await open_page("ada")
    await ada.goto(token_link_in(message))
    await expect(ada).to_have_url(f"{server.base_url}/e/{event.display_id}")
    await expect(ada.get_by_test_id("prejoin-invited")).to_be_visible()
    await expect(ada.get_by_test_id("access-code-input")).to_be_hidden()
    await ada.get_by_test_id("access-code-submit").click()
    await expect(ada.get_by_test_id("room")).to_have_attribute("data-view", "lobby")
    name = await ada.evaluate(
        "() => { const c = window.__webinar.connection;"
        " return c.participants.get(c.joined.participant_id).name; }"
    )
    assert name == "Ada Lovelace"


async def test_the_emails_page_shows_each_html_part_beside_its_text(
    mail_server: RunningServer, open_page: OpenPage
) -> None:
    server = mail_server
    olga = await server.store.run(
        lambda core: core.create_user("olga", hash_password(PASSWORD, n=2**12), "organiser")
    )
    event = await server.store.create_event(
        "Webinář o e-mailech",
        datetime.now(UTC) + timedelta(days=2),
        owner_id=olga.user_id,
        language="cs",
        timezone="Europe/Prague",
    )
    page = await open_page("organiser")
    await sign_in(page, server)
    await page.goto(f"{server.base_url}/dashboard/events/{event.display_id}/tickets")
    await page.get_by_test_id("emails-link").click()
    await expect(page.get_by_test_id("emails-page")).to_have_attribute("data-language", "cs")
    invitation = page.locator('[data-testid="email-sample"][data-template="invitation"]')
    await expect(invitation.get_by_test_id("email-subject")).to_have_text(
        "Pozvánka: Webinář o e-mailech"
    )
    await expect(invitation.get_by_test_id("email-attachments")).to_have_text("invite.ics")
    frame = invitation.frame_locator('[data-testid="email-html"]')
    await expect(frame.locator("body")).to_contain_text("Webinář o e-mailech")
    await expect(frame.locator("a").first).to_have_attribute(
        "href", f"{server.base_url}/e/{event.display_id}#token=SampleInvitationToken123"
    )
    await expect(invitation.get_by_test_id("email-text")).to_contain_text("#token=")
    await page.get_by_test_id("emails-language-en").click()
    await expect(invitation.get_by_test_id("email-subject")).to_have_text(
        "Invitation: Webinář o e-mailech"
    )
    await shot(page, "mail-emails-page")


async def test_an_invitation_to_a_password_event_needs_no_password_until_withdrawn(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.store.create_event(
        "Guarded", datetime.now(UTC) + timedelta(minutes=3), access_type="password"
    )
    await server.store.run(
        lambda core: records.put_access(
            core.connection,
            EventAccess(event.event_id, attendee_password_hash=hash_password("attend-me", n=2**10)),
        )
    )
    invitees = []
    for name in ("Ada", "Bob"):
        invitees.append(
            await server.store.run(
                lambda core, name=name: records.add_invitee(
                    core.connection, event.event_id, name, f"{name.lower()}@example.org"
                )
            )
        )
    ada, bob = invitees
    page = await open_page("ada")
    await page.goto(f"{server.base_url}/e/{event.display_id}#token={ada.token}")
    await expect(page.get_by_test_id("prejoin-invited")).to_be_visible()
    await expect(page.get_by_test_id("access-password-input")).to_be_hidden()
    await page.get_by_test_id("prejoin-name-input").fill("A.")
    await page.get_by_test_id("enter-room-button").click()
    await expect(page.get_by_test_id("room")).to_have_attribute("data-view", "lobby")

    # A withdrawn invitation: the page says so and asks for the password instead.
    await server.store.run(lambda core: records.revoke_invitee(core.connection, bob.invitee_id))
    other = await open_page("bob")
    await other.goto(f"{server.base_url}/e/{event.display_id}#token={bob.token}")
    await other.get_by_test_id("prejoin-name-input").fill("Bob")
    await other.get_by_test_id("enter-room-button").click()
    await expect(other.get_by_test_id("prejoin-error")).to_be_visible()
    await expect(other.get_by_test_id("access-password-input")).to_be_visible()
    await expect(other.get_by_test_id("prejoin-invited")).to_be_hidden()
    await other.get_by_test_id("access-password-input").fill("attend-me")
    await other.get_by_test_id("enter-room-button").click()
    await expect(other.get_by_test_id("room")).to_have_attribute("data-view", "lobby")
