"""Registration for every event, over real HTTP and WebSockets with a real SMTP server:
an open event that requires registration (custom questions, consent with the organiser's
privacy text) → the confirmation e-mail with the personal join link and a calendar file
(parsed back with icalendar) → the link admits its holder by name; capacity and the waiting
list (promoted in order, told by e-mail); the organiser's page after registering;
registrants of open, password and token events in one registrations list and CSV export; a
paid event's reservation code as before, and its personal link besides."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import pytest

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer, running_server
from tests.protocol.test_ticketing import (
    add_user,
    csrf_of,
    post_form,
    sign_in,
    submit_registration,
    visitor_session,
    with_config,
)
from tests.smtp import Inbox, code_in, html_of, smtp_server, text_of
from webinar.client.peer import ClientError
from webinar.config import MailConfig
from webinar.storage.store import Event
from webinar.ticketing import records

Person = protocol_fixtures.MatchingPerson
people = protocol_fixtures.own_people
PRAGUE = ZoneInfo("Europe/Prague")
PRIVACY = "We use your name and e-mail to run this webinar.\nNothing else."


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as box:
        yield box


@pytest.fixture
async def server(tmp_path: Path, inbox: Inbox) -> AsyncIterator[RunningServer]:
    config = with_config(
        tmp_path / "data",
        mail=MailConfig(
            smtp_host="127.0.0.1",
            smtp_port=inbox.port,
            smtp_security="none",
            from_address="events@example.org",
        ),
    )
    async with running_server(config.data_dir, config) as srv:
        yield srv


@pytest.fixture
async def olga(server: RunningServer) -> AsyncIterator[aiohttp.ClientSession]:
    """The organiser, signed in to the dashboard."""
    await add_user(server, "olga")
    async with await sign_in(server, "olga") as http:
        yield http


def prague_start(delta: timedelta) -> tuple[str, datetime]:
    """A start ``delta`` from now as the event form takes it (local time in Prague), and the
    instant it means."""
    when = (datetime.now(UTC) + delta).astimezone(PRAGUE).replace(second=0, microsecond=0)
    return when.strftime("%Y-%m-%dT%H:%M"), when


async def schedule(http: aiohttp.ClientSession, base: str, **fields: str) -> str:
    """An event scheduled in the dashboard (the whole form, as the browser sends it); its ID."""
    async with http.get(base + "/dashboard/events/new") as resp:
        token = csrf_of(await resp.text())
    start, _ = prague_start(timedelta(minutes=12))
    form = {
        "csrf": token,
        "title": "Open house",
        "start": start,
        "timezone": "Europe/Prague",
        "duration_minutes": "60",
        "join_window_minutes": "15",
        "access_type": "open",
        "camera_limit": "4",
        "registration_settings": "1",
        "registration_required": "on",
        **fields,
    }
    async with http.post(base + "/dashboard/events", data=form, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()
        return resp.headers["Location"].split("/")[-1].split("?")[0]


async def edit(http: aiohttp.ClientSession, base: str, event: Event, **fields: str) -> None:
    """Save the event's form again with ``fields`` changed (every other value as shown)."""
    url = f"{base}/dashboard/events/{event.display_id}"
    async with http.get(url) as resp:
        page = await resp.text()
    form: dict[str, str] = {"csrf": csrf_of(page), "registration_settings": "1"}
    for name in ("title", "start", "timezone", "duration_minutes", "join_window_minutes"):
        match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)
        assert match, name
        form[name] = match.group(1)
    form.update(access_type=event.access_type, camera_limit="4")
    if 'id="registration_required" name="registration_required" value="on" checked' in page:
        form["registration_required"] = "on"
    form.update(fields)
    async with http.post(url, data=form, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()


async def event_of(server: RunningServer, event_id: str) -> Event:
    event = await server.store.get_event(event_id)
    assert event is not None
    return event


async def register(
    server: RunningServer, event: Event, first: str, email: str, **fields: str
) -> tuple[int, str, dict[str, str]]:
    """Register on the public page as a new visitor (redirects not followed)."""
    async with visitor_session() as visitor:
        return await submit_registration(
            visitor,
            f"{server.base_url}/e/{event.display_id}/register",
            {"first_name": first, "last_name": "Hopper", "email": email, **fields},
            allow_redirects=False,
        )


def pass_in(message: EmailMessage) -> str:
    """The personal link's secret in an e-mail (its text and its HTML button agree)."""
    match = re.search(r"https?://\S+/e/(\d{3}-\d{3}-\d{3})#pass=(rp-[\w-]+)", text_of(message))
    assert match, text_of(message)
    assert f"#pass={match.group(2)}" in html_of(message)
    return match.group(2)


def calendar_of(message: EmailMessage) -> icalendar.Calendar:
    (part,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REQUEST"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return icalendar.Calendar.from_ical(payload)


async def enter(
    server: RunningServer, people: list[Person], event: Event, credential: str | None, **kw: Any
) -> Person:
    return await helpers.join_person(
        server, people, Person, event, kw.pop("name", "Someone"), credential, **kw
    )


async def refused(
    server: RunningServer, people: list[Person], event: Event, credential: str | None
) -> ClientError:
    with pytest.raises(ClientError) as err:
        await enter(server, people, event, credential)
    return err.value


def my_name(person: Person) -> str:
    me = person.joined["participant_id"]
    (name,) = [p["name"] for p in person.joined["participants"] if p["participant_id"] == me]
    return str(name)


async def api_token(server: RunningServer, name: str) -> str:
    user = await server.store.get_user_by_name(name)
    assert user is not None
    user_id = user.user_id
    return await server.store.run(
        lambda core: records.add_api_token(core.connection, user_id, "test")
    )


def csv_rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


# ------------------------------------------------------------------------------ open events


async def test_open_event_registration_link_and_calendar(
    server: RunningServer, olga: aiohttp.ClientSession, inbox: Inbox, people: list[Person]
) -> None:
    event_id = await schedule(
        olga,
        server.base_url,
        registration_questions="Company *\nRole",
        privacy_text=PRIVACY,
        privacy_url="https://example.org/privacy",
    )
    event = await event_of(server, event_id)
    url = f"{server.base_url}/e/{event_id}"

    # The room sends people to register; nobody enters an open event without registering.
    async with aiohttp.ClientSession() as anyone:
        async with anyone.get(url) as resp:
            room = await resp.text()
        assert 'data-registration="required"' in room
        assert f'href="/e/{event_id}/register" data-testid="prejoin-register-link"' in room
        async with anyone.get(f"{url}/register") as resp:
            page = await resp.text()
    assert resp.status == 200 and "We use your name and e-mail to run this webinar." in page
    assert 'data-testid="register-consent"' in page and "https://example.org/privacy" in page
    assert 'data-testid="register-seats"' not in page  # one person, one link
    assert (await refused(server, people, event, None)).code == "credential-required"

    # The form checks the organiser's questions and the consent before anything is saved.
    grace = {"q0": "ACME", "q1": "Admiral"}
    status, text, _ = await register(server, event, "Grace", "grace@example.org", **grace)
    assert status == 400 and "please agree to the privacy terms" in text
    status, text, _ = await register(server, event, "Grace", "grace@example.org", consent="on")
    assert status == 400 and "please answer: Company" in text
    assert (
        await server.store.run(
            lambda core: records.list_registrations(core.connection, event.event_id)
        )
        == []
    )
    status, _, headers = await register(
        server, event, "Grace", "grace@example.org", consent="on", **grace
    )
    assert status == 303
    assert headers["Location"] == f"/e/{event_id}/registered?status=confirmed&seats=1"
    async with aiohttp.ClientSession() as anyone:
        async with anyone.get(server.base_url + headers["Location"]) as resp:
            thanks = await resp.text()
        async with anyone.get(f"{url}/calendar.ics") as resp:
            assert resp.status == 200 and resp.content_type == "text/calendar"
            public = icalendar.Calendar.from_ical(await resp.read())
    assert 'data-testid="register-thanks" data-status="confirmed"' in thanks
    assert "personal join link" in thanks and 'data-testid="register-calendar"' in thanks
    assert "#pass=" not in str(public.to_ical())  # the public file has no personal link

    # The confirmation: the personal link, and a calendar file in the event's own zone.
    message = await inbox.wait_for("grace@example.org", "You are registered: Open house")
    secret = pass_in(message)
    assert f"/e/{event_id}#pass={secret}" in text_of(message)
    cal = calendar_of(message)
    assert str(cal["method"]) == "REQUEST"
    (entry,) = cal.walk("VEVENT")
    start = entry["dtstart"].dt
    assert str(start.tzinfo) == "Europe/Prague"
    assert event.starts_at is not None and start == event.starts_at
    assert start.utcoffset() == event.starts_at.astimezone(PRAGUE).utcoffset()
    assert (entry["dtend"].dt - start) == timedelta(minutes=60)
    assert [c["tzid"] for c in cal.walk("VTIMEZONE")] == ["Europe/Prague"]
    assert str(entry["summary"]) == "Open house"
    assert str(entry["url"]).endswith(f"/e/{event_id}#pass={secret}")
    assert str(entry["attendee"]) == "mailto:grace@example.org"
    assert entry["attendee"].params["cn"] == "Grace Hopper"
    assert str(entry["uid"]) == str(public.walk("VEVENT")[0]["uid"])

    # The room page greets the link's holder by name; a made-up link is refused.
    async with aiohttp.ClientSession() as browser:
        async with browser.post(f"{url}/pass", json={"pass": secret}) as resp:
            assert (resp.status, await resp.json()) == (
                200,
                {"name": "Grace Hopper", "status": "confirmed"},
            )
        async with browser.post(f"{url}/pass", json={"pass": "rp-" + "x" * 24}) as resp:
            assert resp.status == 404 and (await resp.json())["error"] == "bad-credential"

    # The link admits her by her registration's name (whatever the form says); a link of
    # nobody's is a wrong credential. The organiser sees her checked in.
    grace_in = await enter(server, people, event, secret, name="Typed Name", client_id="g")
    assert grace_in.joined["role"] == "attendee" and my_name(grace_in) == "Grace Hopper"
    assert (await refused(server, people, event, "rp-" + "y" * 24)).code == "bad-credential"

    # Registering again with the same address sends the same link again (no second row).
    status, _, _ = await register(
        server, event, "Grace", "GRACE@example.org", consent="on", **grace
    )
    assert status == 303
    await asyncio.sleep(0.2)
    again = [m for m in inbox.to("grace@example.org") if "registered" in str(m["Subject"])]
    assert len(again) == 2 and pass_in(again[1]) == secret

    tickets = f"{server.base_url}/dashboard/events/{event_id}/tickets"
    async with olga.get(tickets) as resp:
        page = await resp.text()
    assert page.count('data-testid="registration-row"') == 1
    assert 'data-status="confirmed" data-email="grace@example.org"' in page
    assert 'data-testid="registration-answer">Company: ACME<' in page
    checked_in = re.search(r'data-testid="registration-checked-in">([^<]+)<', page)
    assert checked_in and "Europe/Prague" in checked_in.group(1)
    async with olga.get(f"{server.base_url}/dashboard/events/{event_id}/registrations.csv") as resp:
        assert resp.status == 200 and resp.content_type == "text/csv"
        (row,) = csv_rows(await resp.text())
    assert (row["first_name"], row["email"], row["status"]) == (
        "Grace",
        "grace@example.org",
        "confirmed",
    )
    assert (row["Company"], row["Role"], row["consent"]) == ("ACME", "Admiral", PRIVACY)
    assert row["checked_in_at"].endswith("Z") and row["amount"] == ""
    assert secret not in str(row)

    # Cancelled by the organiser: the link stops working and whoever is in with it leaves.
    registration_id = re.search(r'data-registration-id="(\d+)"', page)
    assert registration_id
    page = await post_form(
        olga,
        f"{server.base_url}/dashboard/events/{event_id}/registrations/"
        f"{registration_id.group(1)}/cancel",
    )
    assert "is cancelled" in page
    assert (await grace_in.wait("bye"))["reason"] == "revoked"
    told = await inbox.wait_for("grace@example.org", "Cancelled: Open house")
    assert "your personal link no longer works" in text_of(told)
    assert "Refunds" not in text_of(told)
    assert (await refused(server, people, event, secret)).code == "not-confirmed"


async def test_a_redirect_after_registering(
    server: RunningServer, olga: aiohttp.ClientSession, inbox: Inbox
) -> None:
    event_id = await schedule(
        olga,
        server.base_url,
        registration_redirect_url="https://example.org/see-you-there",
    )
    event = await event_of(server, event_id)
    status, _, headers = await register(server, event, "Ada", "ada@example.org")
    assert (status, headers["Location"]) == (303, "https://example.org/see-you-there")
    await inbox.wait_for("ada@example.org", "You are registered")
    # a page that is no http(s) URL is refused by the form
    async with olga.get(f"{server.base_url}/dashboard/events/new") as resp:
        token = csrf_of(await resp.text())
    async with olga.post(
        f"{server.base_url}/dashboard/events",
        data={
            "csrf": token,
            "title": "Bad",
            "timezone": "UTC",
            "duration_minutes": "60",
            "join_window_minutes": "5",
            "access_type": "open",
            "camera_limit": "4",
            "registration_redirect_url": "javascript:alert(1)",
        },
    ) as resp:
        assert resp.status == 400
        assert "the page after registering must be an http(s) URL" in await resp.text()


async def test_new_details_go_to_registrants_with_their_links(
    server: RunningServer, olga: aiohttp.ClientSession, inbox: Inbox
) -> None:
    event_id = await schedule(olga, server.base_url)
    event = await event_of(server, event_id)
    assert (await register(server, event, "Ada", "ada@example.org"))[0] == 303
    secret = pass_in(await inbox.wait_for("ada@example.org", "You are registered"))
    later, _ = prague_start(timedelta(minutes=40))
    await edit(olga, server.base_url, event, start=later)
    # a new time goes out at once (tests/protocol/test_mail.py), with the personal link
    update = await inbox.wait_for("ada@example.org", "Changed:")
    assert pass_in(update) == secret
    (entry,) = calendar_of(update).walk("VEVENT")
    moved = await event_of(server, event_id)
    assert entry["dtstart"].dt == moved.starts_at != event.starts_at
    page = await post_form(olga, f"{server.base_url}/dashboard/events/{event_id}/resend-all")
    assert "The new details went to 1 person." in page
    await asyncio.sleep(0.5)
    mails = [m for m in inbox.to("ada@example.org") if "Changed:" in str(m["Subject"])]
    assert len(mails) == 2 and pass_in(mails[1]) == secret


# ------------------------------------------------------------------------------ waiting list


async def test_capacity_and_the_waiting_list(
    server: RunningServer, olga: aiohttp.ClientSession, inbox: Inbox, people: list[Person]
) -> None:
    event_id = await schedule(olga, server.base_url, capacity="2", waiting_list="on")
    event = await event_of(server, event_id)
    links: dict[str, str] = {}
    for first in ("ann", "bob"):
        status, _, headers = await register(server, event, first.title(), f"{first}@example.org")
        assert status == 303 and "status=confirmed" in headers["Location"]
        links[first] = pass_in(await inbox.wait_for(f"{first}@example.org", "You are registered"))

    # The third and fourth wait, in order, and are told where they are.
    for place, first in enumerate(("cy", "di"), start=1):
        status, _, headers = await register(server, event, first.title(), f"{first}@example.org")
        assert status == 303
        assert headers["Location"] == f"/e/{event_id}/registered?status=waitlisted&seats=1"
        waiting = await inbox.wait_for(f"{first}@example.org", "On the waiting list: Open house")
        assert f"You are number {place} on the list." in text_of(waiting)
        assert "#pass=" not in text_of(waiting)
        assert not [p for p in waiting.iter_attachments()]  # no calendar entry yet
    async with aiohttp.ClientSession() as anyone:
        async with anyone.get(server.base_url + headers["Location"]) as resp:
            assert 'data-status="waitlisted"' in await resp.text()
        async with anyone.get(f"{server.base_url}/e/{event_id}/register") as resp:
            page = await resp.text()
    assert 'data-left="0"' in page and "Join the waiting list" in page

    regs = await server.store.run(
        lambda core: records.list_registrations(core.connection, event.event_id)
    )
    by_email = {r.email: r for r in regs}
    cy = by_email["cy@example.org"]
    assert [r.status.value for r in regs] == ["confirmed", "confirmed", "waitlisted", "waitlisted"]
    assert cy.join_pass is not None
    # A waiting registrant's link does not admit yet (and says why).
    error = await refused(server, people, event, cy.join_pass)
    assert error.code == "not-confirmed" and "waiting list" in error.message
    ann = await enter(server, people, event, links["ann"], client_id="ann")

    # Ann is cancelled: her place goes to Cy (the first waiting), who is told with his link.
    tickets = f"{server.base_url}/dashboard/events/{event_id}"
    page = await post_form(
        olga, f"{tickets}/registrations/{by_email['ann@example.org'].registration_id}/cancel"
    )
    assert "is cancelled" in page
    assert (await ann.wait("bye"))["reason"] == "revoked"
    promoted = await inbox.wait_for("cy@example.org", "A place is free for you: Open house")
    assert "off the waiting list" in text_of(promoted)
    assert pass_in(promoted) == cy.join_pass
    (entry,) = calendar_of(promoted).walk("VEVENT")
    assert str(entry["dtstart"].dt.tzinfo) == "Europe/Prague"
    cy_in = await enter(server, people, event, cy.join_pass, client_id="cy")
    assert my_name(cy_in) == "Cy Hopper"
    async with olga.get(f"{tickets}/tickets") as resp:
        page = await resp.text()
    rows = re.findall(r'data-status="(\w+)" data-email="([^"]+)"', page)
    assert rows == [
        ("cancelled", "ann@example.org"),
        ("confirmed", "bob@example.org"),
        ("confirmed", "cy@example.org"),
        ("waitlisted", "di@example.org"),
    ]
    assert re.search(r'data-testid="registration-waiting-position">no\. 1<', page)
    assert "di@example.org" not in {
        str(m["To"]) for m in inbox.messages if "free" in str(m["Subject"])
    }

    # More places: Di moves up too.
    await edit(olga, server.base_url, event, capacity="3", waiting_list="on")
    di = await inbox.wait_for("di@example.org", "A place is free for you")
    assert pass_in(di) == by_email["di@example.org"].join_pass

    # Without a waiting list a full event refuses, and says so.
    await edit(olga, server.base_url, event, capacity="3")
    status, text, _ = await register(server, event, "Ed", "ed@example.org")
    assert status == 400 and "the event is full" in text
    async with olga.get(f"{tickets}/registrations.csv") as resp:
        rows_csv = csv_rows(await resp.text())
    assert [(r["email"], r["status"], r["waiting_position"]) for r in rows_csv] == [
        ("ann@example.org", "cancelled", ""),
        ("bob@example.org", "confirmed", ""),
        ("cy@example.org", "confirmed", ""),
        ("di@example.org", "confirmed", ""),
    ]


# ------------------------------------------------------------------------------ every type


async def test_registrants_of_every_access_type_in_one_list_and_export(
    server: RunningServer, olga: aiohttp.ClientSession, inbox: Inbox, people: list[Person]
) -> None:
    ids = {
        "open": await schedule(olga, server.base_url, title="Open one"),
        "password": await schedule(
            olga,
            server.base_url,
            title="Password one",
            access_type="password",
            attendee_password="let-me-in-now",
        ),
        "token": await schedule(olga, server.base_url, title="Token one", access_type="token"),
    }
    token = await api_token(server, "olga")
    api = {"Authorization": f"Bearer {token}"}
    for kind, event_id in ids.items():
        event = await event_of(server, event_id)
        email = f"{kind}@example.org"
        status, _, headers = await register(server, event, kind.title(), email)
        assert status == 303 and "status=confirmed" in headers["Location"]
        secret = pass_in(await inbox.wait_for(email, "You are registered"))
        # The personal link admits without the event's password or an invitation.
        person = await enter(server, people, event, secret, client_id=kind)
        assert my_name(person) == f"{kind.title()} Hopper"
        # The same list and the same export as a paid event's, in the dashboard and the API.
        async with olga.get(f"{server.base_url}/dashboard/events/{event_id}/tickets") as resp:
            page = await resp.text()
        assert f'data-status="confirmed" data-email="{email}"' in page
        assert 'data-testid="registrations-export"' in page
        async with olga.get(
            f"{server.base_url}/api/v1/events/{event_id}/registrations", headers=api
        ) as resp:
            listed = await resp.json()
        assert [(r["email"], r["status"], r["code"]) for r in listed["items"]] == [
            (email, "confirmed", None)
        ]
        async with olga.get(
            f"{server.base_url}/api/v1/events/{event_id}/registrations.csv?bom=1", headers=api
        ) as resp:
            body = await resp.text()
        assert body.startswith("\ufeff")
        (row,) = csv_rows(body.lstrip("\ufeff"))
        assert (row["email"], row["status"], row["checked_in_at"] != "") == (
            email,
            "confirmed",
            True,
        )
        async with olga.get(f"{server.base_url}/api/v1/events/{event_id}", headers=api) as resp:
            described = await resp.json()
        assert described["access"]["registration_required"] is True
        assert described["links"]["register"].endswith(f"/e/{event_id}/register")

    # The password still works on the password event; the token event still wants one.
    password_event = await event_of(server, ids["password"])
    walk_in = await enter(server, people, password_event, "let-me-in-now")
    assert walk_in.joined["role"] == "attendee"
    token_event = await event_of(server, ids["token"])
    assert (await refused(server, people, token_event, None)).code == "credential-required"
    # An event that does not take registrations has no registration page.
    plain = await server.create_event("Plain")
    async with (
        aiohttp.ClientSession() as anyone,
        anyone.get(f"{server.base_url}/e/{plain.display_id}/register") as resp,
    ):
        assert resp.status == 404


async def test_the_api_turns_registration_on_with_a_waiting_list(
    server: RunningServer, inbox: Inbox
) -> None:
    await add_user(server, "olga")
    token = await api_token(server, "olga")
    api = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        start = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        async with http.post(
            f"{server.base_url}/api/v1/events",
            headers=api,
            json={"title": "API one", "starts_at": start, "registration_required": True},
        ) as resp:
            assert resp.status == 201
            event_id = (await resp.json())["event_id"]
        async with http.patch(
            f"{server.base_url}/api/v1/events/{event_id}",
            headers=api,
            json={"capacity": 1, "waiting_list": True, "privacy_text": "Be nice."},
        ) as resp:
            access = (await resp.json())["access"]
        assert (access["registration_required"], access["waiting_list"]) == (True, True)
        assert (access["capacity"], access["privacy_text"]) == (1, "Be nice.")
        async with http.patch(
            f"{server.base_url}/api/v1/events/{event_id}",
            headers=api,
            json={"waiting_list": "yes"},
        ) as resp:
            assert resp.status == 422
        event = await event_of(server, event_id)
        assert (await register(server, event, "Ann", "ann@example.org", consent="on"))[0] == 303
        assert (await register(server, event, "Bob", "bob@example.org", consent="on"))[0] == 303
        async with http.get(
            f"{server.base_url}/api/v1/events/{event_id}/registrations", headers=api
        ) as resp:
            items = (await resp.json())["items"]
        assert [(r["email"], r["status"], r["consent"]) for r in items] == [
            ("ann@example.org", "confirmed", "Be nice."),
            ("bob@example.org", "waitlisted", "Be nice."),
        ]
        async with http.post(
            f"{server.base_url}/api/v1/events/{event_id}/registrations/"
            f"{items[0]['registration_id']}/cancel",
            headers=api,
        ) as resp:
            assert resp.status == 200
    await inbox.wait_for("bob@example.org", "A place is free for you")


# ------------------------------------------------------------------------------ paid events


async def test_a_paid_event_keeps_its_code_and_gets_a_personal_link(
    server: RunningServer, olga: aiohttp.ClientSession, inbox: Inbox, people: list[Person]
) -> None:
    event_id = await schedule(
        olga,
        server.base_url,
        title="Masterclass",
        access_type="paid",
        price="25",
        currency="EUR",
        capacity="1",
        waiting_list="on",
        registration_required="",  # paid events register whatever the box says
    )
    event = await event_of(server, event_id)
    status, _, headers = await register(server, event, "Grace", "grace@example.org", seats="1")
    assert (status, headers["Location"]) == (
        303,
        f"/e/{event_id}/registered?status=pending&seats=1",
    )
    async with (
        aiohttp.ClientSession() as anyone,
        anyone.get(server.base_url + headers["Location"]) as resp,
    ):
        assert "waits for payment confirmation" in await resp.text()
    await inbox.wait_for("grace@example.org", "Registration received")
    # the only place is held by the pending one: the next waits
    _, _, headers = await register(server, event, "Mal", "mal@example.org", seats="1")
    assert "status=waitlisted" in headers["Location"]
    waiting = await inbox.wait_for("mal@example.org", "On the waiting list")
    assert "how to pay for it" in text_of(waiting)

    regs = await server.store.run(
        lambda core: records.list_registrations(core.connection, event.event_id)
    )
    grace, mal = regs
    tickets = f"{server.base_url}/dashboard/events/{event_id}"
    page = await post_form(olga, f"{tickets}/registrations/{grace.registration_id}/confirm")
    assert "Grace Hopper is confirmed" in page
    confirmed = await inbox.wait_for("grace@example.org", "Your reservation code for Masterclass")
    code = code_in(confirmed)
    secret = pass_in(confirmed)
    assert f"enter the code: {server.base_url}/e/{event_id}\r\n" in text_of(confirmed)
    (entry,) = calendar_of(confirmed).walk("VEVENT")
    assert str(entry["dtstart"].dt.tzinfo) == "Europe/Prague"
    # The code admits as before; the personal link admits by name without it (one device:
    # the second takes over).
    by_code = await enter(server, people, event, code, client_id="a")
    assert my_name(by_code) == "Grace Hopper"
    by_link = await enter(server, people, event, secret, client_id="b")
    assert my_name(by_link) == "Grace Hopper"
    assert (await by_code.wait("bye"))["reason"] == "taken-over"

    # A place frees (Grace cancelled): Mal moves up to pay for it.
    await post_form(olga, f"{tickets}/registrations/{grace.registration_id}/cancel")
    told = await inbox.wait_for("grace@example.org", "Cancelled: Masterclass")
    assert "reservation code no longer works" in text_of(told) and "Refunds" in text_of(told)
    moved = await inbox.wait_for("mal@example.org", "Registration received")
    assert "off the waiting list" in text_of(moved)
    async with olga.get(f"{tickets}/tickets") as resp:
        page = await resp.text()
    assert f'data-registration-id="{mal.registration_id}" data-status="pending"' in page
    async with olga.get(f"{tickets}/registrations.csv") as resp:
        rows = csv_rows(await resp.text())
    assert [(r["email"], r["status"], r["amount"], r["currency"]) for r in rows] == [
        ("grace@example.org", "cancelled", "25.00", "EUR"),
        ("mal@example.org", "pending", "25.00", "EUR"),
    ]
    assert code not in str(rows)


async def test_the_link_look_up_refuses_garbage_and_guessing(server: RunningServer) -> None:
    event = await server.create_event("Open", access_type="open")
    url = f"{server.base_url}/e/{event.display_id}/pass"
    async with aiohttp.ClientSession() as http:
        for body, status in (
            (b"not json", 400),
            (b"[1, 2]", 400),
            (b'{"pass": 5}', 400),
            (b'{"pass": ""}', 400),
            (b"{}", 400),
            (b'{"pass": "' + b"x" * 2000 + b'"}', 413),
        ):
            async with http.post(url, data=body) as resp:
                assert resp.status == status, (body[:20], await resp.text())
                assert "error" in await resp.json()
        async with http.post(f"{server.base_url}/e/000-000-000/pass", json={"pass": "x"}) as resp:
            assert resp.status == 404
        statuses = []
        for n in range(12):
            async with http.post(url, json={"pass": f"rp-{n:024d}"}) as resp:
                statuses.append(resp.status)
                body = await resp.json()
        assert statuses[:10] == [404] * 10 and statuses[10:] == [429, 429]
        assert body["error"] == "rate-limited"
