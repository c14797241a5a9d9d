"""Reminder e-mails are sent at least once, and every try carries the same Message-ID.

A real SMTP server (``tests/smtp.py``) receives them. A crash is simulated by a mailer that
hands the message to the SMTP server and then never returns (the process "dies" before it
can mark the reminder sent): the Reminders service is stopped there, and a new one is
started on the same store, as a restarted server would.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import RunningServer, make_config, running_server
from tests.smtp import Inbox, smtp_server
from webinar.config import MailConfig
from webinar.http.tickets import REMINDERS, TICKETS
from webinar.storage.store import Event
from webinar.ticketing import records
from webinar.ticketing.mail import Mailer, MailError, Sent
from webinar.ticketing.reminders import Reminders

SUBJECT = "Starting in 1 hour"


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
        await srv.server.app[REMINDERS].stop()  # each test drives its own services
        yield srv


async def invite_with_due_reminder(server: RunningServer) -> tuple[Event, int]:
    desk = server.server.app[TICKETS].desk
    event = await server.store.create_event(
        "Invited", datetime.now(UTC) + timedelta(days=2), access_type="token"
    )
    await desk.invite(event, "Ada", "ada@example.org", server.base_url)
    now = records.to_db(datetime.now(UTC))
    await server.store.run(
        lambda core: core.connection.execute("UPDATE reminders SET due_at = ?", (now,))
    )
    (reminder,) = await reminders_of(server, event)
    return event, reminder.reminder_id


async def reminders_of(server: RunningServer, event: Event) -> list[records.Reminder]:
    return await server.store.run(
        lambda core: records.list_reminders(core.connection, event.event_id)
    )


def reminders_in(inbox: Inbox) -> list[EmailMessage]:
    return [m for m in inbox.to("ada@example.org") if SUBJECT in str(m["Subject"])]


def service(server: RunningServer, stop_grace_seconds: float = 5.0) -> Reminders:
    desk = server.server.app[TICKETS].desk
    return Reminders(desk, server.base_url, 3600, stop_grace_seconds)


async def test_a_reminder_cut_short_by_a_crash_is_sent_again_with_the_same_message_id(
    server: RunningServer, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    event, _ = await invite_with_due_reminder(server)
    real_send = Mailer.send
    handed_over = asyncio.Event()

    async def send_then_die(self: Mailer, message: EmailMessage) -> Sent:
        sent = await real_send(self, message)
        if SUBJECT in str(message["Subject"]):
            handed_over.set()
            await asyncio.Event().wait()  # the process dies before it records "sent"
        return sent

    monkeypatch.setattr(Mailer, "send", send_then_die)
    first = service(server, stop_grace_seconds=0.1)
    await first.start()  # its first round sends the due reminder
    async with asyncio.timeout(10):
        await handed_over.wait()
    await first.stop()
    assert [r.state for r in await reminders_of(server, event)] == ["sending"]
    assert len(reminders_in(inbox)) == 1

    monkeypatch.setattr(Mailer, "send", real_send)
    second = service(server)
    await second.start()  # a restart on the same store
    try:
        async with asyncio.timeout(10):
            while len(reminders_in(inbox)) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        # Sent again, and once only: later rounds find nothing.
        assert await second.send_due() == 0
    finally:
        await second.stop()
    copies = reminders_in(inbox)
    assert len(copies) == 2
    (reminder,) = await reminders_of(server, event)
    assert reminder.state == "sent"
    assert reminder.message_id is not None and reminder.message_to == "ada@example.org"
    assert [str(m["Message-ID"]) for m in copies] == [reminder.message_id] * 2
    # The invitation before it had a Message-ID of its own.
    assert len({str(m["Message-ID"]) for m in inbox.to("ada@example.org")}) == 2


async def test_a_failed_reminder_is_retried_after_a_back_off_with_the_same_message_id(
    server: RunningServer, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    event, rid = await invite_with_due_reminder(server)
    real_send = Mailer.send
    ids: list[str] = []

    async def refused(self: Mailer, message: EmailMessage) -> Sent:
        ids.append(str(message["Message-ID"]))
        raise MailError("the SMTP server is down")

    async def due_now() -> None:
        now = records.to_db(datetime.now(UTC))
        await server.store.run(
            lambda core: core.connection.execute("UPDATE reminders SET retry_at = ?", (now,))
        )

    reminders = service(server)
    monkeypatch.setattr(Mailer, "send", refused)
    assert await reminders.send_due() == 0
    (reminder,) = await reminders_of(server, event)
    assert (reminder.state, reminder.attempts) == ("pending", 1)
    assert await reminders.send_due() == 0  # waiting out its back-off
    assert len(ids) == 1
    await due_now()
    assert await reminders.send_due() == 0
    assert len(ids) == 2
    monkeypatch.setattr(Mailer, "send", real_send)
    await due_now()
    assert await reminders.send_due() == 1
    (copy,) = reminders_in(inbox)
    assert str(copy["Message-ID"]) == ids[0] == ids[1]
    (reminder,) = await reminders_of(server, event)
    assert (reminder.state, reminder.attempts, reminder.message_id) == ("sent", 3, ids[0])
    assert rid == reminder.reminder_id


async def test_a_reminder_gives_up_after_its_attempts(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    event, _ = await invite_with_due_reminder(server)

    async def refused(self: Mailer, message: EmailMessage) -> Any:
        raise MailError("the SMTP server is down")

    monkeypatch.setattr(Mailer, "send", refused)
    reminders = service(server)
    for _ in range(records.REMINDER_ATTEMPTS):
        await server.store.run(
            lambda core: core.connection.execute("UPDATE reminders SET retry_at = NULL")
        )
        assert await reminders.send_due() == 0
    (reminder,) = await reminders_of(server, event)
    assert (reminder.state, reminder.attempts) == ("failed", records.REMINDER_ATTEMPTS)


async def test_stopping_lets_a_send_under_way_finish(
    server: RunningServer, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    event, _ = await invite_with_due_reminder(server)
    real_send = Mailer.send
    started = asyncio.Event()

    async def slow(self: Mailer, message: EmailMessage) -> Sent:
        started.set()
        await asyncio.sleep(0.5)
        return await real_send(self, message)

    monkeypatch.setattr(Mailer, "send", slow)
    reminders = service(server)
    await reminders.start()
    async with asyncio.timeout(10):
        await started.wait()
    await reminders.stop()  # a graceful shutdown while the SMTP exchange is under way
    assert [r.state for r in await reminders_of(server, event)] == ["sent"]
    assert len(reminders_in(inbox)) == 1
