"""The organiser's funnel end to end in real Chromium (issue #21's walk): an open event that
requires registration → a visitor registers on its page → the confirmation e-mail (a real SMTP
server) has a personal join link and a valid calendar file in the event's zone → the reminder
is planned an hour before the start and sent once → the link admits the attendee by name →
after *End for all* the rating shows and is given → the thank-you e-mail arrives with a rating
link → the statistics page lists the registrant as attended, with minutes and the rating."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest
from playwright.async_api import expect

from tests.browser.support import OpenPage, PageErrors, join_presenter
from tests.browser.test_dashboard import add_user, sign_in
from tests.helpers import RunningServer, make_config, running_server
from tests.smtp import Inbox, smtp_server, text_of
from webinar.app import TICKET_DESK
from webinar.ticketing import records
from webinar.ticketing.reminders import Reminders

pytestmark = pytest.mark.browser


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as box:
        yield box


@pytest.fixture
async def server(tmp_path: Path, inbox: Inbox) -> AsyncIterator[RunningServer]:
    config = make_config(tmp_path / "data")
    config = dataclasses.replace(
        config,
        mail=dataclasses.replace(
            config.mail, smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_security="none"
        ),
    )
    async with running_server(config.data_dir, config) as srv:
        yield srv


async def test_register_be_reminded_attend_rate_be_thanked_and_counted(
    server: RunningServer, inbox: Inbox, open_page: OpenPage, page_errors: PageErrors
) -> None:
    page_errors.allow(r"\[visitor\] console error: Failed to load resource: .* 404")
    olga = add_user(server, "olga")
    # more than 6 hours ahead: the registrant gets a confirmation now and a reminder later
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=6, minutes=30)
    event = await server.store.create_event(
        "Funnel webinar",
        start,
        owner_id=olga.user_id,
        timezone="America/New_York",
        join_window_minutes=1440,
    )
    organiser = await open_page("olga")
    await sign_in(organiser, server, "olga")
    await organiser.goto(f"{server.base_url}/dashboard/events/{event.display_id}")
    await organiser.get_by_test_id("event-registration-required-input").check()
    await organiser.get_by_test_id("save-event").click()
    await expect(organiser.get_by_test_id("saved-notice")).to_be_visible()

    # A visitor registers on the registration page.
    visitor = await open_page("visitor")
    await visitor.goto(f"{server.base_url}/e/{event.display_id}/register")
    await visitor.get_by_test_id("register-first-name").fill("Ada")
    await visitor.get_by_test_id("register-last-name").fill("Lovelace")
    await visitor.get_by_test_id("register-email").fill("ada@example.org")
    await visitor.get_by_test_id("register-submit").click()
    await expect(visitor.get_by_test_id("register-thanks")).to_have_attribute(
        "data-status", "confirmed"
    )

    # The confirmation: a personal link and the event in New York time.
    confirmation = await inbox.wait_for("ada@example.org", "You are registered: Funnel webinar")
    found = re.search(r"(http://\S+/e/\d{3}-\d{3}-\d{3}#pass=rp-[\w-]+)", text_of(confirmation))
    assert found, text_of(confirmation)
    (part,) = [
        p for p in confirmation.iter_attachments() if p.get_content_type() == "text/calendar"
    ]
    ics = part.get_payload(decode=True)
    assert isinstance(ics, bytes)
    (entry,) = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    assert str(entry["dtstart"].dt.tzinfo) == "America/New_York" and entry["dtstart"].dt == start

    # The reminder is planned an hour before the start; when that time comes it goes out once.
    desk = server.server.app[TICKET_DESK]
    (reminder,) = await server.store.run(
        lambda core: records.list_reminders(core.connection, event.event_id)
    )
    assert reminder.due_at == start - timedelta(hours=1)
    now = datetime.now(UTC)
    await server.store.run(  # the clock moved on to the reminder's time
        lambda core: core.connection.execute(
            "UPDATE reminders SET due_at = ? WHERE event_id = ?",
            (records.to_db(now), event.event_id),
        )
    )
    before, total = len(inbox.to("ada@example.org")), len(inbox.messages)
    sender = Reminders(desk, server.base_url)
    assert await sender.send_due() == 1
    assert await sender.send_due() == 0  # once
    await inbox.wait_count(total + 1)
    reminders = inbox.to("ada@example.org")[before:]
    assert len(reminders) == 1, [str(m["Subject"]) for m in reminders]
    assert "Funnel webinar" in str(reminders[0]["Subject"])
    assert found.group(1).split("#")[1] in text_of(reminders[0])  # her link again

    # The personal link admits her by name; the host starts, then ends for everyone.
    ada = await open_page("ada")
    await ada.goto(found.group(1))
    await expect(ada.get_by_test_id("prejoin-name-input")).to_have_value("Ada Lovelace")
    await ada.get_by_test_id("enter-room-button").click()
    await expect(ada.get_by_test_id("room")).to_have_attribute("data-view", "lobby")
    host = await open_page("host")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key, preview=False)
    await host.get_by_test_id("start-event").click()
    await expect(ada.get_by_test_id("room")).to_have_attribute("data-view", "live")
    await host.wait_for_timeout(1500)  # she attends a while
    await host.get_by_test_id("end-for-all").click()
    await host.get_by_test_id("end-for-all-confirm").click()

    # The rating shows; she gives 5 stars.
    await expect(ada.get_by_test_id("rating")).to_be_visible()
    await ada.get_by_test_id("rating-star-5").click()
    await ada.get_by_test_id("rating-comment").fill("Worth every minute")
    await ada.get_by_test_id("rating-submit").click()
    await expect(ada.get_by_test_id("rating-thanks")).to_be_visible()

    # The thank-you e-mail, with its rating link.
    for _ in range(300):
        if any("/rate/" in text_of(m) for m in inbox.to("ada@example.org")):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("no thank-you e-mail")

    # The statistics: registered, attended, minutes, her rating.
    await organiser.goto(f"{server.base_url}/dashboard/events/{event.display_id}/stats")
    await expect(organiser.get_by_test_id("stat-rating")).to_have_text("5.0 of 5")
    row = organiser.get_by_test_id("registrant-row").and_(
        organiser.locator('[data-email="ada@example.org"]')
    )
    await expect(row).to_have_attribute("data-attended", "yes")
    await expect(row.get_by_test_id("registrant-minutes")).to_have_text("0")  # ~2 s, rounded
    # her session, ended by End for all, lasted what she was there (not a row left open):
    # End for all ends it at once, before the thank-you e-mail above was even planned
    export = await organiser.request.get(
        f"{server.base_url}/dashboard/events/{event.display_id}/export.json"
    )
    sessions = [
        x for x in (await export.json())["details"]["sessions"] if x["name"] == "Ada Lovelace"
    ]
    assert len(sessions) == 1 and sessions[0]["left_at"], sessions
    assert 1.0 <= sessions[0]["seconds"] < 60, sessions
    await expect(row.get_by_test_id("registrant-rating")).to_have_text("5")
