"""Accounts run from the browser, in real Chromium with the real SMTP server of the tests: an
admin invites an organiser from People, the invited organiser opens the e-mailed link, sets a
password, signs in and sees only their events (the one they were made co-organiser of); a
password reset from the login page works end to end (the old password refused, a session
signed in elsewhere ended)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import DESKTOP, PHONE, SCREENSHOTS, OpenPage, PageErrors
from tests.helpers import RunningServer, make_config, running_server
from tests.smtp import Inbox, smtp_server, text_of
from webinar.accounts import hash_password
from webinar.config import MailConfig
from webinar.storage.store import User

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new password 2031"
LINK = re.compile(r"https?://\S+/login/(?:welcome|reset)#token=[\w-]+")


async def shot(page: Page, name: str) -> None:
    """Keep a picture for people to look at (artifacts/screenshots), and check it fits."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:  # name what sticks out (outside the tables' own scrolling)
        wide = await page.evaluate(
            """() => [...document.querySelectorAll("body *")]
                .filter((e) => !e.closest(".wh-table-wrap")
                    && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                .slice(0, 8).map((e) => `${e.tagName}.${e.className}`)"""
        )
        print(name, "too wide:", wide)
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the viewport"
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as box:
        yield box


@pytest.fixture
async def mailing(tmp_path: Path, inbox: Inbox) -> AsyncIterator[RunningServer]:
    config = dataclasses.replace(
        make_config(tmp_path / "data"),
        mail=MailConfig(smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_security="none"),
    )
    async with running_server(config.data_dir, config) as srv:
        yield srv


async def add_user(
    server: RunningServer, name: str, role: str = "organiser", email: str | None = None
) -> User:
    digest = hash_password(PASSWORD, n=2**12)
    return await server.store.run(lambda core: core.create_user(name, digest, role, email=email))


async def sign_in(page: Page, server: RunningServer, name: str, password: str = PASSWORD) -> None:
    await page.goto(server.base_url + "/login")
    await page.get_by_test_id("login-username").fill(name)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(server.base_url + "/dashboard")


def link_in(text: str) -> str:
    match = LINK.search(text)
    assert match, text
    return match.group(0)


async def test_an_invited_organiser_sets_a_password_and_sees_only_their_events(
    mailing: RunningServer, inbox: Inbox, open_page: OpenPage
) -> None:
    server = mailing
    await add_user(server, "root", "admin")
    olga = await add_user(server, "olga")
    soon = datetime.now(UTC) + timedelta(days=2)
    hers = await server.store.create_event("Olga's launch", soon, owner_id=olga.user_id)
    await server.store.create_event("Olga's other talk", soon, owner_id=olga.user_id)
    await server.store.create_event("Nobody's event", None)

    # The admin invites Ann from People.
    admin = await open_page("admin")
    await sign_in(admin, server, "root")
    await admin.get_by_test_id("nav-people").click()
    await expect(admin).to_have_url(server.base_url + "/dashboard/accounts")
    await admin.get_by_test_id("invite-email").fill("ann@example.org")
    await admin.get_by_test_id("invite-send").click()
    await expect(admin.get_by_test_id("people-notice")).to_contain_text(
        "Invitation sent to ann@example.org"
    )
    await expect(admin.get_by_test_id("invitation-row")).to_have_attribute(
        "data-email", "ann@example.org"
    )
    await shot(admin, "accounts-people-desktop")
    await admin.set_viewport_size(PHONE)
    await shot(admin, "accounts-people-phone")
    await admin.set_viewport_size(DESKTOP)
    message = await inbox.wait_for("ann@example.org", "invited")
    link = link_in(text_of(message))
    await expect(admin.get_by_test_id("invitation-link")).to_have_text(link)

    # Ann opens the link: the page knows whose invitation it is; the token leaves the address.
    ann = await open_page("ann")
    await ann.goto(link)
    await expect(ann.get_by_test_id("link-name")).to_have_text("ann@example.org")
    await expect(ann.get_by_test_id("welcome-username")).to_have_value("ann")
    await expect(ann).to_have_url(server.base_url + "/login/welcome")
    await shot(ann, "accounts-welcome-desktop")
    await ann.get_by_test_id("new-password").fill(NEW_PASSWORD)
    await ann.get_by_test_id("new-password2").fill(NEW_PASSWORD)
    await ann.get_by_test_id("password-submit").click()
    await expect(ann.get_by_test_id("login-notice")).to_contain_text("Your account is ready")
    await expect(ann.get_by_test_id("login-username")).to_have_value("ann")
    await ann.get_by_test_id("login-password").fill(NEW_PASSWORD)
    await ann.get_by_test_id("login-submit").click()
    await expect(ann).to_have_url(server.base_url + "/dashboard")
    await expect(ann.get_by_test_id("events-empty")).to_be_visible()  # none of the others'

    # The admin makes Ann a co-organiser of one of Olga's events: that one, and only it.
    await admin.goto(f"{server.base_url}/dashboard/events/{hers.display_id}")
    await admin.get_by_test_id("event-team").click()
    await admin.get_by_test_id("organiser-who").fill("ann")
    await admin.get_by_test_id("organiser-add").click()
    await expect(admin.get_by_test_id("team-notice")).to_contain_text("Co-organiser added")
    await expect(admin.get_by_test_id("organiser-row")).to_have_attribute("data-username", "ann")
    await shot(admin, "accounts-team-desktop")
    await ann.reload()
    cards = ann.get_by_test_id("event-card")
    await expect(cards).to_have_count(1)
    await expect(cards).to_have_attribute("data-event-id", hers.display_id)
    await expect(ann.get_by_test_id("nav-people")).to_have_count(0)  # an organiser
    await ann.get_by_test_id("event-card-title").click()
    await expect(ann.get_by_test_id("event-heading")).to_have_text("Olga's launch")
    await ann.set_viewport_size(PHONE)
    await ann.goto(f"{server.base_url}/dashboard/events/{hers.display_id}/team")
    await shot(ann, "accounts-team-phone")


async def test_a_password_reset_from_the_login_page(
    mailing: RunningServer, inbox: Inbox, open_page: OpenPage, page_errors: PageErrors
) -> None:
    server = mailing
    page_errors.allow(r"status of 401")  # the old password's page comes with 401
    await add_user(server, "olga", email="olga@example.org")
    elsewhere = await open_page("olga-elsewhere")
    await sign_in(elsewhere, server, "olga")

    page = await open_page("olga")
    await page.goto(server.base_url + "/login")
    await page.get_by_test_id("login-forgot").click()
    await expect(page).to_have_url(server.base_url + "/login/forgot")
    await page.get_by_test_id("forgot-email").fill("olga@example.org")
    await page.get_by_test_id("forgot-submit").click()
    await expect(page.get_by_test_id("forgot-sent")).to_contain_text("olga@example.org")
    await shot(page, "accounts-forgot-desktop")
    message = await inbox.wait_for("olga@example.org", "Set a new password")
    link = link_in(text_of(message))

    await page.goto(link)
    await expect(page.get_by_test_id("link-name")).to_have_text("olga")
    await expect(page).to_have_url(server.base_url + "/login/reset")
    await page.get_by_test_id("new-password").fill(NEW_PASSWORD)
    await page.get_by_test_id("new-password2").fill(NEW_PASSWORD)
    await shot(page, "accounts-reset-desktop")
    await page.get_by_test_id("password-submit").click()
    await expect(page.get_by_test_id("login-notice")).to_contain_text("Your new password is set")
    await expect(page.get_by_test_id("login-username")).to_have_value("olga")

    # The old password is refused; the new one signs in.
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-error")).to_have_text("Wrong user name or password.")
    await page.get_by_test_id("login-password").fill(NEW_PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page).to_have_url(server.base_url + "/dashboard")
    # The session signed in elsewhere with the old password has ended.
    await elsewhere.reload()
    await expect(elsewhere).to_have_url(server.base_url + "/login")

    # The link works once: opened again, it says so at once.
    page_errors.allow(r"status of 410")  # the check of a used link answers 410
    await page.goto(link)
    await expect(page.get_by_test_id("link-error")).to_contain_text("used already")
    await expect(page.get_by_test_id("password-form")).to_be_hidden()
