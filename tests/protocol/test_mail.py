"""E-mail to an event's people through a real SMTP server (aiosmtpd, tests/smtp.py), over real
HTTP and WebSockets: invitations on every access type (the personal link admits by name),
presenters invited with the presenter link, the calendar entry (.ics, read back with the
icalendar library) on every invitation, reminder and update — the same UID throughout, a
higher SEQUENCE after the event moved, METHOD:CANCEL when it is cancelled — reminders at the
event's own time, once (a restart notwithstanding), and the organiser's E-mails page.
The CSV import across a process restart is tests/protocol/test_mail_import.py."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
import zoneinfo
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import icalendar
import pytest

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer, make_config, running_server
from tests.protocol.test_ticketing import add_user, csrf_of, registration, sign_in
from tests.smtp import Inbox, calendar_of, html_of, smtp_server, text_of, token_link_in
from webinar.client.peer import ClientError
from webinar.config import MailConfig
from webinar.http.tickets import OUTBOX, REMINDERS, TICKETS
from webinar.links import presenter_path
from webinar.storage.store import Event
from webinar.ticketing import mailing, records
from webinar.ticketing.records import EventAccess
from webinar.ticketing.samples import templates_in

Person = protocol_fixtures.MatchingPerson
people = protocol_fixtures.own_people
FROM = "events@example.org"
EMAIL_TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates" / "email"


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as box:
        yield box


def mail_config(data: Path, inbox: Inbox) -> Any:
    return dataclasses.replace(
        make_config(data),
        mail=MailConfig(
            smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_security="none", from_address=FROM
        ),
    )


@pytest.fixture
async def server(tmp_path: Path, inbox: Inbox) -> AsyncIterator[RunningServer]:
    config = mail_config(tmp_path / "data", inbox)
    async with running_server(config.data_dir, config) as srv:
        yield srv


def entry_of(message: EmailMessage) -> tuple[str, icalendar.Event]:
    """The calendar file's METHOD and its one VEVENT."""
    ics = calendar_of(message)
    assert ics is not None, f"no .ics in {message['Subject']}"
    cal = icalendar.Calendar.from_ical(ics)
    (entry,) = cal.walk("VEVENT")
    return str(cal["method"]), entry


async def form_of(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        assert resp.status == 200, url
        return csrf_of(await resp.text())


async def post(http: aiohttp.ClientSession, url: str, page: str, **fields: str) -> str:
    """Post a dashboard form (the CSRF token from ``page``); the page it leads to."""
    token = await form_of(http, page)
    async with http.post(url, data={"csrf": token, **fields}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.text()


def event_form(event: Event, **changes: str) -> dict[str, str]:
    """The event form as the dashboard would post it, with ``changes``."""
    zone = zoneinfo.ZoneInfo(event.timezone)
    assert event.starts_at is not None
    return {
        "title": event.title,
        "start": event.starts_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        "timezone": event.timezone,
        "duration_minutes": str(event.duration_minutes),
        "join_window_minutes": str(event.join_window_minutes),
        "access_type": event.access_type,
        "camera_limit": str(event.camera_limit),
        **changes,
    }


async def owned_event(
    server: RunningServer, title: str, start: timedelta, **settings: Any
) -> Event:
    owner = await server.store.run(lambda core: core.get_user_by_name("olga"))
    assert owner is not None
    return await server.store.create_event(
        title,
        (datetime.now(UTC) + start).replace(second=0, microsecond=0),
        owner_id=owner.user_id,
        **settings,
    )


async def reminders_of(server: RunningServer, event: Event) -> list[records.Reminder]:
    return await server.store.run(
        lambda core: records.list_reminders(core.connection, event.event_id)
    )


async def wait_sent(server: RunningServer, event: Event) -> None:
    """Until the event's outbox has nothing waiting."""
    for _ in range(200):
        progress = await server.store.run(
            lambda core: mailing.progress(core.connection, event.event_id)
        )
        if not progress.waiting():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still waiting: {progress}")


# ------------------------------------------------------------------------------ moved, cancelled


async def test_a_moved_event_sends_an_updated_ics_and_a_cancelled_one_a_cancel(
    server: RunningServer, inbox: Inbox
) -> None:
    await add_user(server, "olga")
    event = await owned_event(
        server, "Launch", timedelta(days=3), access_type="paid", timezone="Europe/Prague"
    )
    await server.store.run(
        lambda core: records.put_access(
            core.connection, EventAccess(event.event_id, price_minor=1000, currency="EUR")
        )
    )
    desk = server.server.app[TICKETS].desk
    base = f"{server.base_url}/dashboard/events/{event.display_id}"
    async with await sign_in(server, "olga") as http:
        page = await post(
            http,
            base + "/invitees",
            base + "/tickets",
            name="Ada Lovelace",
            email="ada@example.org",
        )
        assert "Ada Lovelace is invited" in page
        await add_presenter(http, base, "Pia Presenter", "pia@example.org")
        reg = await registration(server, event, confirm=False, email="grace@example.org")
        await desk.confirm(event, reg.registration_id, server.base_url)
        invited = {
            "ada": await inbox.wait_for("ada@example.org", "Invitation"),
            "pia": await inbox.wait_for("pia@example.org", "Presenting"),
            "grace": await inbox.wait_for("grace@example.org", "reservation code"),
        }
        first_method, first = entry_of(invited["ada"])
        assert first_method == "REQUEST" and int(first["sequence"]) == 0
        uid = str(first["uid"])
        for whom in ("pia", "grace"):  # one UID per event, in every message about it
            assert str(entry_of(invited[whom])[1]["uid"]) == uid

        # Moved by an hour, from the dashboard's event form.
        assert event.starts_at is not None
        later = (event.starts_at + timedelta(hours=1)).astimezone(zoneinfo.ZoneInfo(event.timezone))
        page = await post(http, base, base, **event_form(event, start=f"{later:%Y-%m-%dT%H:%M}"))
        assert 'data-testid="settings-changed-notice"' not in page  # sent, nothing to offer
        moved = await server.store.get_event(event.event_id)
        assert moved is not None and moved.starts_at == event.starts_at + timedelta(hours=1)
        for address in ("ada@example.org", "pia@example.org", "grace@example.org"):
            update = await inbox.wait_for(address, "Changed: Launch")
            method, entry = entry_of(update)
            assert method == "REQUEST" and str(entry["uid"]) == uid
            assert int(entry["sequence"]) == 1
            start = entry["dtstart"].dt
            assert str(start.tzinfo) == "Europe/Prague"
            assert start == moved.starts_at
            assert str(entry["attendee"]).lower() == f"mailto:{address}"
        assert "#token=" in text_of(await inbox.wait_for("ada@example.org", "Changed"))
        pia_update = await inbox.wait_for("pia@example.org", "Changed")
        assert presenter_path(event) in unescape(text_of(pia_update))
        grace = text_of(await inbox.wait_for("grace@example.org", "Changed"))
        assert "Reservation code:" in grace
        # the reminders follow the new start
        assert {r.due_at for r in await reminders_of(server, event)} == {
            moved.starts_at - timedelta(hours=1)
        }

        # A change people need not be told of (the agenda) sends nothing.
        before = len(inbox.messages)
        await post(http, base, base, **event_form(moved, agenda="More"))
        await wait_sent(server, event)
        assert len(inbox.messages) == before

        # Cancelled: METHOD:CANCEL, the same UID, a higher SEQUENCE, to everyone told.
        page = await post(http, base + "/cancel-event", base + "/tickets")
        assert "The event is cancelled; 3 people were told" in page
        for address in ("ada@example.org", "pia@example.org", "grace@example.org"):
            told = await inbox.wait_for(address, "Event cancelled: Launch")
            method, entry = entry_of(told)
            assert method == "CANCEL" and str(entry["uid"]) == uid
            assert int(entry["sequence"]) == 2 and str(entry["status"]) == "CANCELLED"
            assert "will not take place" in text_of(told)
        assert "Refunds are not automatic" in text_of(
            await inbox.wait_for("grace@example.org", "Event cancelled")
        )
        await wait_sent(server, event)
        # every message went to one of the three, once per kind
        kinds = Counter((str(m["To"]), str(m["Subject"]).split(":")[0]) for m in inbox.messages)
        assert kinds == Counter(
            [
                ("ada@example.org", "Invitation"),
                ("pia@example.org", "Presenting"),
                ("grace@example.org", "Your reservation code for Launch"),
                *(
                    (address, kind)
                    for address in ("ada@example.org", "pia@example.org", "grace@example.org")
                    for kind in ("Changed", "Event cancelled")
                ),
            ]
        )
        assert all(r.state == "skipped" for r in await reminders_of(server, event))


# ------------------------------------------------------------------------------ every access type


async def enter(
    server: RunningServer, people: list[Any], event: Event, credential: str | None, who: str
) -> dict[str, Any]:
    person = await helpers.join_person(
        server, people, Person, event, "Somebody", credential, client_id=who
    )
    me = next(
        p
        for p in person.joined["participants"]
        if p["participant_id"] == person.joined["participant_id"]
    )
    return {"role": person.joined["role"], "name": me["name"]}


async def refused(
    server: RunningServer, people: list[Any], event: Event, credential: str | None
) -> str:
    with pytest.raises(ClientError) as err:
        await helpers.join_person(server, people, Person, event, "Somebody", credential)
    return err.value.code


@pytest.mark.parametrize("access", ["open", "registration", "password", "token", "paid"])
async def test_an_invitation_admits_its_invitee_by_name_whatever_the_access_type(
    server: RunningServer, inbox: Inbox, people: list[Any], access: str
) -> None:
    """("registration": an open event that requires registration.)"""
    from webinar.accounts import hash_password

    event = await server.store.create_event(
        "Talk",
        datetime.now(UTC) + timedelta(minutes=30),
        access_type="open" if access == "registration" else access,
        join_window_minutes=60,  # the lobby is open
    )
    await server.store.run(
        lambda core: records.put_access(
            core.connection,
            EventAccess(
                event.event_id,
                attendee_password_hash=hash_password("attend-me", n=2**10),
                price_minor=900,
                currency="EUR",
                registration_required=access == "registration",
            ),
        )
    )
    desk = server.server.app[TICKETS].desk
    ada = await desk.invite(event, "Ada Lovelace", "ada@example.org", server.base_url)
    message = await inbox.wait_for("ada@example.org", "Invitation: Talk")
    link = token_link_in(message)
    assert link.endswith(f"/e/{event.display_id}#token={ada.token}")
    words = {
        "password": "without the webinar's password",
        "paid": "free ticket",
        "open": "personal link",
        "registration": "personal link",
        "token": "personal link",
    }
    assert words[access] in text_of(message)
    assert entry_of(message)[0] == "REQUEST"
    token = link.split("#token=")[1]
    assert await enter(server, people, event, token, "ada") == {
        "role": "attendee",
        "name": "Ada Lovelace",
    }
    assert await refused(server, people, event, "A" * 24) == "bad-credential"
    # a revoked invitation stops working (an open event still lets anyone in as themselves)
    await desk.revoke(event, ada.invitee_id)
    assert await refused(server, people, event, token) == "revoked"


async def add_presenter(http: aiohttp.ClientSession, base: str, name: str, email: str) -> str:
    """Add a presenter on the event's team page (``base``: the event's dashboard URL)."""
    return await post(http, base + "/team/presenters", base + "/team", name=name, email=email)


async def test_a_presenter_gets_the_presenter_link_the_reminder_and_the_changes(
    server: RunningServer, inbox: Inbox, people: list[Any]
) -> None:
    """Presenters are the event team's (webinar.http.team): their e-mail carries the presenter
    link and the event's current calendar entry, and they are reminded, told of a new time
    and of the cancellation like everyone else."""
    await add_user(server, "olga")
    event = await owned_event(server, "Panel", timedelta(days=2), access_type="token")
    base = f"{server.base_url}/dashboard/events/{event.display_id}"
    await server.store.run(lambda core: mailing.bump_sequence(core.connection, event.event_id))
    async with await sign_in(server, "olga") as http:
        await add_presenter(http, base, "Pia Presenter", "pia@example.org")
        message = await inbox.wait_for("pia@example.org", "Presenting: Panel")
        link = f"{server.base_url}{presenter_path(event)}"
        assert link in unescape(text_of(message)) and link in unescape(html_of(message))
        method, entry = entry_of(message)
        assert method == "REQUEST" and str(entry["url"]) == link
        assert int(entry["sequence"]) == 1  # the event's current SEQUENCE
        # the link opens the presenter's room, and its key enters as a presenter
        async with aiohttp.ClientSession() as visitor, visitor.get(link) as resp:
            assert resp.status == 200 and 'data-role="presenter"' in await resp.text()
        entered = await enter(server, people, event, event.presenter_key, "pia")
        assert entered["role"] == "presenter"
        # reminded, with the presenter link
        (reminder,) = await reminders_of(server, event)
        assert reminder.presenter_id is not None
        await make_due(server, event)
        assert await server.server.app[REMINDERS].send_due() == 1
        reminded = await inbox.wait_for("pia@example.org", "Starting in")
        assert presenter_path(event) in unescape(text_of(reminded))  # (the configured base)
        assert "presenter link" in text_of(reminded)
        # a new time, then the cancellation
        assert event.starts_at is not None
        later = event.starts_at + timedelta(hours=2)
        await post(http, base, base, **event_form(event, start=f"{later:%Y-%m-%dT%H:%M}"))
        update = await inbox.wait_for("pia@example.org", "Changed: Panel")
        assert int(entry_of(update)[1]["sequence"]) == 2
        assert presenter_path(event) in unescape(text_of(update))  # (the configured base)
        assert "The event is cancelled; 1 person was told" in await post(
            http, base + "/cancel-event", base + "/tickets"
        )
        cancelled = await inbox.wait_for("pia@example.org", "Event cancelled: Panel")
        assert entry_of(cancelled)[0] == "CANCEL"


# ------------------------------------------------------------------------------ reminders


async def make_due(server: RunningServer, event: Event) -> None:
    now = records.to_db(datetime.now(UTC))
    await server.store.run(
        lambda core: core.connection.execute(
            "UPDATE reminders SET due_at = ? WHERE event_id = ? AND state = 'pending'",
            (now, event.event_id),
        )
    )


async def test_reminders_an_hour_before_once_with_the_calendar_entry_across_a_restart(
    tmp_path: Path, inbox: Inbox
) -> None:
    config = mail_config(tmp_path / "data", inbox)
    async with running_server(config.data_dir, config) as server:
        await server.server.app[REMINDERS].stop()  # the test says when they run
        desk = server.server.app[TICKETS].desk
        far = await server.store.create_event(
            "Far", datetime.now(UTC) + timedelta(days=2), timezone="America/New_York"
        )
        near = await server.store.create_event("Near", datetime.now(UTC) + timedelta(hours=5))
        await desk.invite(far, "Ada", "ada@example.org", server.base_url)
        await desk.invite(near, "Ada", "ada@example.org", server.base_url)
        assert far.starts_at is not None
        (planned,) = await reminders_of(server, far)
        assert planned.due_at == far.starts_at - timedelta(hours=1)  # the default
        assert await reminders_of(server, near) == []  # < 6 hours: the invitation is all
        invitation = await inbox.wait_for("ada@example.org", "Invitation: Far")
        uid = str(entry_of(invitation)[1]["uid"])
        await make_due(server, far)
    # due while the server is down; sent once by the next, not again by the one after
    for _round in range(2):
        async with running_server(config.data_dir, config) as server:
            reminder = await inbox.wait_for("ada@example.org", "Starting in 1 hour: Far")
            await asyncio.sleep(0.2)
            assert await server.server.app[REMINDERS].send_due() == 0
    reminders = [m for m in inbox.messages if "Starting in" in str(m["Subject"])]
    assert len(reminders) == 1
    method, entry = entry_of(reminder)
    assert method == "REQUEST" and str(entry["uid"]) == uid and int(entry["sequence"]) == 0
    assert str(entry["dtstart"].dt.tzinfo) == "America/New_York"
    assert "#token=" in text_of(reminder)
    assert "starts in about 1 hour" in text_of(reminder)
    assert not [
        m for m in inbox.messages if "Near" in str(m["Subject"]) and "Starting" in str(m["Subject"])
    ]


async def test_the_reminder_time_is_set_per_event(server: RunningServer, inbox: Inbox) -> None:
    await add_user(server, "olga")
    event = await owned_event(server, "Course", timedelta(days=4), access_type="open")
    assert event.starts_at is not None
    base = f"{server.base_url}/dashboard/events/{event.display_id}"
    desk = server.server.app[TICKETS].desk
    await desk.invite(event, "Ada", "ada@example.org", server.base_url)
    async with await sign_in(server, "olga") as http:
        async with http.get(base) as resp:
            page = await resp.text()
        assert 'data-testid="event-reminder-input"' in page
        assert '<option value="60" selected>1 hour before the start</option>' in page
        await post(http, base, base, **event_form(event, reminder_minutes="1440"))
        (reminder,) = await reminders_of(server, event)
        assert reminder.due_at == event.starts_at - timedelta(days=1)
        await post(http, base, base, **event_form(event, reminder_minutes="0"))
        assert [r.state for r in await reminders_of(server, event)] == ["skipped"]
        # people invited while there are no reminders get one when they are back
        await desk.invite(event, "Bob", "bob@example.org", server.base_url)
        await post(http, base, base, **event_form(event, reminder_minutes="120"))
        reminders = await reminders_of(server, event)
        assert [(r.state, r.due_at) for r in reminders] == [
            ("pending", event.starts_at - timedelta(hours=2))
        ] * 2
        async with http.get(base) as resp:
            assert '<option value="120" selected>2 hours before the start</option>' in (
                await resp.text()
            )
        # a value the form does not offer is refused with the reason, and changes nothing
        async with http.post(
            base,
            data={"csrf": await form_of(http, base), **event_form(event, reminder_minutes="20000")},
        ) as resp:
            assert resp.status == 400
            assert "reminders go out 0 to 10080 minutes before the start" in await resp.text()
    assert await desk.reminder_minutes(event) == 120
    await make_due(server, event)
    assert await server.server.app[REMINDERS].send_due() == 2
    message = await inbox.wait_for("bob@example.org", "Starting in 2 hours: Course")
    assert "starts in about 2 hours" in text_of(message)


# ------------------------------------------------------------------------------ the E-mails page


async def test_the_emails_page_shows_every_template_in_the_event_s_language(
    server: RunningServer,
) -> None:
    await add_user(server, "olga")
    event = await owned_event(
        server, "Вебинар", timedelta(days=2), access_type="paid", language="ru"
    )
    page_url = f"{server.base_url}/dashboard/events/{event.display_id}/emails"
    templates = templates_in(EMAIL_TEMPLATES)
    async with await sign_in(server, "olga") as http:
        async with http.get(page_url) as resp:
            assert resp.status == 200
            page = await resp.text()
        assert 'data-testid="emails-page" data-language="ru"' in page
        shown = set(re.findall(r'data-testid="email-sample" data-template="(\w+)"', page))
        assert shown == set(templates)
        assert 'data-testid="email-error"' not in page
        # each with its subject, its HTML (in a sandboxed frame) and its plain text
        assert page.count('data-testid="email-subject"') >= len(templates)
        assert page.count('data-testid="email-html"') == page.count('data-testid="email-text"')
        assert "Приглашение: Вебинар" in page  # the invitation's subject, in Russian
        assert re.search(r'<iframe[^>]* sandbox [^>]*srcdoc="&lt;!doctype html&gt;', page)
        assert "invite.ics" in page and "cancel.ics" in page
        async with http.get(page_url + "?lang=en") as resp:
            english = await resp.text()
        assert "Invitation: Вебинар" in english and "Changed: Вебинар" in english
        # the calendar file people get
        async with http.get(f"{server.base_url}/e/{event.display_id}/calendar.ics") as resp:
            assert resp.status == 200 and resp.content_type == "text/calendar"
            cal = icalendar.Calendar.from_ical(await resp.read())
        (entry,) = cal.walk("VEVENT")
        assert str(entry["summary"]) == "Вебинар"
    # someone else's event is not shown
    await add_user(server, "ivan")
    async with await sign_in(server, "ivan") as http, http.get(page_url) as resp:
        assert resp.status == 404


# ------------------------------------------------------------------------------ the JSON API


async def test_the_api_imports_invitees_and_follows_the_outbox(
    server: RunningServer, inbox: Inbox
) -> None:
    user = await server.store.run(
        lambda core: core.create_user("olga", "x", "organiser")  # a token, no password
    )
    token = await server.store.run(
        lambda core: records.add_api_token(core.connection, user.user_id, "crm")
    )
    api = f"{server.base_url}/api/v1"
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        starts = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        async with http.post(
            api + "/events",
            json={"title": "Webinar", "starts_at": starts, "reminder_minutes": 30},
        ) as resp:
            assert resp.status == 201
            event = await resp.json()
        assert (event["reminder_minutes"], event["calendar_sequence"]) == (30, 0)
        path = f"/events/{event['event_id']}"
        csv = "Jméno;E-mail;Jazyk;Firma\nJana Nováková;jana@example.cz;cs;ACME\nBob;bob@;;\n"
        async with http.post(
            api + path + "/invitees/import?file_name=team.csv",
            data=csv.encode("cp1250"),
            headers={"Content-Type": "text/csv"},
        ) as resp:
            assert resp.status == 201, await resp.text()
            preview = await resp.json()
        assert preview["file_name"] == "team.csv" and preview["to_invite"] == 1
        assert preview["invitees"] == [
            {
                "line": 2,
                "name": "Jana Nováková",
                "email": "jana@example.cz",
                "language": "cs",
                "fields": {"Firma": "ACME"},
            }
        ]
        assert preview["problems"] == [
            {
                "line": 3,
                "code": "invalid-email",
                "email": "bob@",
                "reason": "the e-mail address bob@ does not look right",
                "text": "Bob;bob@;;",
            }
        ]
        async with http.get(api + path + f"/invitees/import/{preview['import_id']}") as resp:
            assert resp.status == 200 and (await resp.json()) == preview
        async with http.post(server.base_url + preview["send"]) as resp:
            assert resp.status == 200
            assert await resp.json() == {"invited": 1, "already_invited": []}
        async with http.post(server.base_url + preview["send"]) as resp:
            assert resp.status == 409  # sent already: nobody is invited twice
        message = await inbox.wait_for("jana@example.cz", "")
        assert message["Content-Language"] == "cs"
        for _ in range(100):
            async with http.get(api + path + "/outbox") as resp:
                outbox = await resp.json()
            if not outbox["waiting"]:
                break
            await asyncio.sleep(0.05)
        assert outbox["outbox"]["invitation"]["sent"] == 1 and outbox["failed"] == 0
        async with http.get(api + path + "/invitees") as resp:
            (jana,) = (await resp.json())["items"]
        assert (jana["language"], jana["fields"], jana["delivery"]) == (
            "cs",
            {"Firma": "ACME"},
            "sent",
        )
        async with http.post(
            api + path + "/presenters", json={"name": "Pia", "email": "pia@example.org"}
        ) as resp:
            assert resp.status == 201, await resp.text()
        # the start moves: the SEQUENCE grows, updates are queued for both
        later = (datetime.now(UTC) + timedelta(days=2, hours=1)).isoformat()
        async with http.patch(api + path, json={"starts_at": later, "reminder_minutes": 0}) as resp:
            moved = await resp.json()
        assert (moved["calendar_sequence"], moved["reminder_minutes"]) == (1, 0)
        for address in ("jana@example.cz", "pia@example.org"):
            update = await inbox.wait_for(address, "")
            assert update is not None
        # a file the API cannot use is refused whole, with the reason
        async with http.post(
            api + path + "/invitees/import", data=b"", headers={"Content-Type": "text/csv"}
        ) as resp:
            assert resp.status == 422 and "empty" in (await resp.json())["error"]["message"]
        async with http.get(api + path + "/invitees/import/imp_nope") as resp:
            assert resp.status == 404


async def test_cancelling_one_confirmed_registration_removes_its_calendar_entry(
    server: RunningServer, inbox: Inbox
) -> None:
    from webinar.ticketing.records import RegistrationStatus

    event = await server.store.create_event(
        "Class", datetime.now(UTC) + timedelta(days=2), access_type="paid"
    )
    await server.store.run(
        lambda core: records.put_access(
            core.connection, EventAccess(event.event_id, price_minor=500, currency="EUR")
        )
    )
    desk = server.server.app[TICKETS].desk
    confirmed = await registration(server, event, email="grace@example.org")
    pending = await registration(server, event, confirm=False, email="lin@example.org")
    await desk.end(event, confirmed.registration_id, RegistrationStatus.CANCELLED)
    await desk.end(event, pending.registration_id, RegistrationStatus.REJECTED)
    method, entry = entry_of(await inbox.wait_for("grace@example.org", "Cancelled: Class"))
    assert method == "CANCEL" and str(entry["status"]) == "CANCELLED"
    # a rejected registration never had the entry: nothing to remove
    assert calendar_of(await inbox.wait_for("lin@example.org", "Not confirmed: Class")) is None


async def test_a_message_left_half_sent_goes_out_again_with_its_message_id(
    server: RunningServer, inbox: Inbox
) -> None:
    """A message whose sender went away (a request cancelled while it was sending) is taken
    up by the outbox once its claim is stale, with the Message-ID it was given."""
    from webinar.ticketing.outbox import Outbox

    await server.server.app[OUTBOX].stop()  # the test runs its own
    desk = server.server.app[TICKETS].desk
    event = await server.store.create_event("Talk", datetime.now(UTC) + timedelta(days=2))
    ada = await desk.invite(event, "Ada", "ada@example.org", server.base_url)
    await inbox.wait_for("ada@example.org", "Invitation")

    def half_sent(core: Any) -> int:
        item_id = mailing.queue_invitation(core.connection, ada, claimed=True)
        mailing.message_id_for(core.connection, item_id, "ada@example.org", "<again@example.org>")
        return item_id

    item_id = await server.store.run(half_sent)
    outbox = Outbox(desk, server.base_url, alone=False)
    await outbox.start()  # with other workers about, nothing is taken at start ...
    try:
        assert await outbox.send_due() == 0
        stale = records.to_db(datetime.now(UTC) - mailing.STALE_CLAIM - timedelta(seconds=1))
        await server.store.run(
            lambda core: core.connection.execute(
                "UPDATE mail_outbox SET claimed_at = ? WHERE item_id = ?", (stale, item_id)
            )
        )
        assert await outbox.send_due() == 1  # ... but once its claim is stale
    finally:
        await outbox.stop()
    again = [m for m in inbox.to("ada@example.org") if m["Message-ID"] == "<again@example.org>"]
    assert len(again) == 1 and len(inbox.to("ada@example.org")) == 2
    item = await server.store.run(lambda core: mailing.get_item(core.connection, item_id))
    assert item is not None and (item.state, item.attempts) == (mailing.State.SENT, 2)


async def test_the_import_form_refuses_what_it_cannot_use(server: RunningServer) -> None:
    from webinar.ticketing.imports import MAX_FILE_BYTES

    await add_user(server, "olga")
    await add_user(server, "ivan")
    event = await owned_event(server, "Talk", timedelta(days=2))
    tickets = f"{server.base_url}/dashboard/events/{event.display_id}/tickets"
    upload = f"{server.base_url}/dashboard/events/{event.display_id}/invitees/import"

    def form(csrf: str, data: bytes | None) -> aiohttp.FormData:
        made = aiohttp.FormData()
        made.add_field("csrf", csrf)
        if data is not None:
            made.add_field("file", io.BytesIO(data), filename="people.csv", content_type="text/csv")
        return made

    async with await sign_in(server, "olga") as http:
        csrf = await form_of(http, tickets)
        async with http.post(upload, data=form("wrong", b"A,a@example.org\n")) as resp:
            assert resp.status == 403
        async with http.post(upload, data=form(csrf, b"")) as resp:
            assert "choose a CSV file to import" in await resp.text()
        async with http.post(upload, data=form(csrf, b"\x89PNG\x00\x00")) as resp:
            assert "this is not a CSV file" in await resp.text()
        big = b"a,a@example.org\n" * (MAX_FILE_BYTES // 16 + 1)
        async with http.post(upload, data=form(csrf, big)) as resp:
            assert resp.status == 413
        async with http.post(
            upload, data=form(csrf, b"Bo,bo@example.org\n"), allow_redirects=False
        ) as resp:
            assert resp.status == 303
            preview = server.base_url + resp.headers["Location"]
        async with http.post(upload, data={"csrf": csrf}) as resp:
            assert resp.status == 400  # not multipart
    async with await sign_in(server, "ivan") as http:  # someone else's
        async with http.get(preview) as resp:
            assert resp.status == 404
        async with http.get(preview + ".json") as resp:
            assert resp.status == 404
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(preview + ".json", allow_redirects=False) as resp,
    ):
        assert resp.status in (302, 303, 401)
