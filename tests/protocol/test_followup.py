"""After the event, over real HTTP, WebSockets and a real SMTP server (``tests/smtp.py``).

"End for all" records the end; every attendee who came with an address (invitees here) gets
one thank-you e-mail, in their language, HTML and plain text, with the organiser's text, the
published recording's personal link and a signed rating link; people who never came, people
without an address and presenters get none; a restarted server sends nothing again, and an
e-mail cut short by a crash goes out again with the same Message-ID. A scheduled end counts
once the room is empty. Attendees get a rating token with ``room-ended``; ratings are taken
from the room (JSON) and the e-mail's page (form), validated, limited, one per person; the
statistics page, the exports and the API show them with the registrants' attendance, devices,
poll and call-to-action results and the recording's leads.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import RunningServer, make_config, running_server
from tests.protocol.test_after_event import store_recording
from tests.protocol.test_dashboard import add_user, csrf_of, sign_in
from tests.protocol_fixtures import MatchingPerson
from tests.smtp import Inbox, html_of, smtp_server, text_of
from webinar.app import ATTENDANCE, FOLLOWUP, PUBLISHER, RATINGS, TICKET_DESK
from webinar.attendance.ratings import Rater
from webinar.config import MailConfig
from webinar.followup import records as followup_records
from webinar.storage import api_tokens, branding
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Event
from webinar.ticketing.mail import Mailer, Sent

SUBJECT = "Thank you for joining"
RATE_LINK = re.compile(r"https?://[^/\s]+/rate/([\w.-]+)")


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as box:
        yield box


def mail_config(data: Path, inbox: Inbox) -> Any:
    return dataclasses.replace(
        make_config(data),
        mail=MailConfig(smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_security="none"),
    )


@pytest.fixture
async def people() -> AsyncIterator[list[MatchingPerson]]:
    made: list[MatchingPerson] = []
    yield made
    await asyncio.gather(*(p.close() for p in made))


async def join(
    server: RunningServer,
    people: list[MatchingPerson],
    event: Event,
    name: str,
    credential: str | None = None,
    *,
    language: str | None = None,
    client_id: str | None = None,
) -> MatchingPerson:
    from tests.helpers import connect_person

    person = await connect_person(server, people, MatchingPerson)
    if language is not None:
        await person.request("set-language", language=language)
    fields: dict[str, Any] = {"event_id": event.event_id, "name": name}
    if credential is not None:
        fields["credential"] = credential
    if client_id is not None:
        fields["client_id"] = client_id
    person.joined = await person.request("join", **fields)
    return person


async def owned_event(server: RunningServer, title: str, **settings: Any) -> Event:
    with server.store.connect_sync() as sync:
        owner = sync.get_user_by_name("olga")
    if owner is None:
        add_user(server, "olga")
        with server.store.connect_sync() as sync:
            owner = sync.get_user_by_name("olga")
        assert owner is not None
    return await server.store.create_event(title, None, owner_id=owner.user_id, **settings)


async def invite(server: RunningServer, event: Event, name: str, email: str) -> str:
    invitee = await server.server.app[TICKET_DESK].invite(event, name, email, server.base_url)
    return invitee.token


def thanks_to(inbox: Inbox, address: str) -> list[EmailMessage]:
    return [m for m in inbox.to(address) if "/rate/" in text_of(m)]


async def until(check: Any, within: float = 10.0) -> Any:
    async with asyncio.timeout(within):
        while not (found := check()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return found


async def test_end_for_all_thanks_every_attendee_with_an_address_once(
    tmp_path: Path, inbox: Inbox, people: list[MatchingPerson]
) -> None:
    data = tmp_path / "data"
    async with running_server(data, mail_config(data, inbox)) as server:
        event = await owned_event(server, "Launch 🚀", access_type="token")
        ann = await invite(server, event, "Ann Novak", "ann@example.org")
        bob = await invite(server, event, "Bob", "Bob@Example.org")
        await invite(server, event, "Carl", "carl@example.org")  # never comes
        # A published recording: the e-mail links to it, personal to each recipient.
        recording_id = await store_recording(server, event)
        await server.server.app[PUBLISHER].publish(recording_id, days=7, require_email=True)
        # The organiser writes her own text.
        http = await sign_in(server, "olga")
        page = f"{server.base_url}/dashboard/events/{event.display_id}/after"
        async with http.get(page) as resp:
            assert resp.status == 200
            html = await resp.text()
            assert 'data-testid="event-not-ended"' in html
            assert "Ada Lovelace" in html  # the preview
        async with http.post(
            page,
            data={
                "csrf": csrf_of(html),
                "enabled": "on",
                "text": "Thanks for coming to {title}, {name}.\n\nThe slides follow.",
                "delay_minutes": "0",
            },
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303, await resp.text()

        host = await join(server, people, event, "Hana", event.host_key)
        pres = await join(server, people, event, "Pat", event.presenter_key)
        ann_in = await join(server, people, event, "Ann", ann, language="cs", client_id="ann")
        bob_in = await join(server, people, event, "Bob", bob)
        await host.request("end-for-all")
        ended = await ann_in.wait("room-ended")
        assert ended["thank_you_url"] == "/thanks" and ended["rating_token"]
        assert (await bob_in.wait("room-ended"))["rating_token"]
        assert (await pres.wait("room-ended"))["rating_token"] is None  # not an attendee
        assert (await host.wait("room-ended"))["rating_token"] is None

        to_ann = (await until(lambda: thanks_to(inbox, "ann@example.org")))[0]
        to_bob = (await until(lambda: thanks_to(inbox, "bob@example.org")))[0]
        assert str(to_ann["Content-Language"]) == "cs"  # the language she used in the room
        assert str(to_bob["Content-Language"]) == "en"
        text, html = text_of(to_ann).replace("\r\n", "\n"), html_of(to_ann)
        assert "Thanks for coming to Launch 🚀, Ann Novak.\n\nThe slides follow." in text
        assert "/r/" in text and "/r/" in html  # the recording, personal: no e-mail gate
        assert len(re.findall(r'href="[^"]+/rate/[\w.-]+\?stars=[1-5]"', html)) == 5
        assert "<p>Thanks for coming to Launch 🚀, Ann Novak.</p>" in html
        token = RATE_LINK.search(text)
        assert token is not None
        rater = server.server.app[RATINGS].rater(token.group(1))
        assert rater == Rater(event.event_id, "Ann Novak", email="ann@example.org", via="email")
        # the recording link opens for her without the gate, and she is no lead
        link = re.search(r"/r/([\w.-]+)", text)
        assert link is not None
        async with (
            aiohttp.ClientSession() as anon,
            anon.get(f"{server.base_url}/r/{link.group(1)}") as resp,
        ):
            assert resp.status == 200
            assert 'data-testid="lead-form"' not in await resp.text()
        assert await server.server.app[PUBLISHER].leads(event.event_id) == []
        # nobody else: Carl never came, presenters and hosts are not thanked
        await asyncio.sleep(0.3)
        assert thanks_to(inbox, "carl@example.org") == []
        assert len([m for m in inbox.messages if "/rate/" in text_of(m)]) == 2
        async with http.get(page) as resp:
            html = await resp.text()
        assert html.count('data-testid="thank-you-mail" data-state="sent"') == 2
        assert 'data-testid="event-ended"' in html
        await http.close()
    # A restart on the same data: nothing is sent again.
    async with running_server(data, mail_config(data, inbox)) as server:
        assert await server.server.app[FOLLOWUP].run_once() == 0
        await asyncio.sleep(0.3)
        assert len(thanks_to(inbox, "ann@example.org")) == 1
        assert len(thanks_to(inbox, "bob@example.org")) == 1


async def test_a_scheduled_end_counts_once_the_room_is_empty(
    tmp_path: Path, inbox: Inbox, people: list[MatchingPerson]
) -> None:
    data = tmp_path / "data"
    async with running_server(data, mail_config(data, inbox)) as server:
        event = await owned_event(server, "Scheduled", access_type="token", duration_minutes=60)
        eve = await invite(server, event, "Eve", "eve@example.org")
        eve_in = await join(server, people, event, "Eve", eve)
        # the event's scheduled end passed an hour ago; Eve is still in the room
        start = datetime.now(UTC) - timedelta(hours=2)
        await server.store.run(
            lambda core: core.connection.execute(
                "UPDATE events SET starts_at = ? WHERE event_id = ?",
                (start.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), event.event_id),
            )
        )
        followup = server.server.app[FOLLOWUP]
        attendance = server.server.app[ATTENDANCE]
        assert await followup.run_once() == 0
        assert await attendance.ending(event.event_id) is None  # not while someone is there
        await eve_in.request("leave")
        await until(lambda: thanks_to(inbox, "eve@example.org"))  # the room closing woke it
        ending = await attendance.ending(event.event_id)
        assert ending is not None and ending.how == "scheduled-end"
        assert ending.ended_at == pytest.approx(start.timestamp() + 3600, abs=1)
        # an open event's attendee who gave no address gets nothing
        open_event = await owned_event(server, "Open one")
        host = await join(server, people, open_event, "Host", open_event.host_key)
        await join(server, people, open_event, "Dan")
        await host.request("end-for-all")
        await until(lambda: followup_mails_planned(server, open_event))
        assert await followup.mails(open_event.event_id) == []


def followup_mails_planned(server: RunningServer, event: Event) -> bool:
    with server.store.connect_sync() as sync:
        settings = followup_records.get_settings(sync.connection, event.event_id)
    return settings.queued_at is not None


async def test_a_send_cut_short_goes_out_again_with_the_same_message_id(
    tmp_path: Path, inbox: Inbox, people: list[MatchingPerson], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    real_send = Mailer.send
    handed_over = asyncio.Event()

    async def send_then_die(self: Mailer, message: EmailMessage) -> Sent:
        sent = await real_send(self, message)
        if SUBJECT in str(message["Subject"]):
            handed_over.set()
            await asyncio.Event().wait()  # the process dies before it records "sent"
        return sent

    monkeypatch.setattr(Mailer, "send", send_then_die)
    async with running_server(data, mail_config(data, inbox)) as server:
        server.server.app[FOLLOWUP]._grace = 0.1
        event = await owned_event(server, "Crash", access_type="token")
        ann = await invite(server, event, "Ann", "ann@example.org")
        host = await join(server, people, event, "Host", event.host_key)
        await join(server, people, event, "Ann", ann)
        await host.request("end-for-all")
        async with asyncio.timeout(10):
            await handed_over.wait()
        for person in people:
            await person.close()
        people.clear()
    monkeypatch.setattr(Mailer, "send", real_send)
    async with running_server(data, mail_config(data, inbox)) as server:
        copies = await until(lambda: len(thanks_to(inbox, "ann@example.org")) >= 2 or None)
        assert copies
        followup = server.server.app[FOLLOWUP]
        assert await followup.run_once() == 0
        (mail,) = await followup.mails(event.event_id)
        assert mail.state == "sent" and mail.attempts == 2
        sent = thanks_to(inbox, "ann@example.org")
        assert [str(m["Message-ID"]).strip() for m in sent] == [mail.message_id] * 2


async def test_switched_off_and_bad_settings(
    tmp_path: Path, inbox: Inbox, people: list[MatchingPerson]
) -> None:
    data = tmp_path / "data"
    async with running_server(data, mail_config(data, inbox)) as server:
        event = await owned_event(server, "Quiet", access_type="token")
        ann = await invite(server, event, "Ann", "ann@example.org")
        http = await sign_in(server, "olga")
        page = f"{server.base_url}/dashboard/events/{event.display_id}/after"
        async with http.get(page) as resp:
            csrf = csrf_of(await resp.text())
        for bad in ({"delay_minutes": "-1"}, {"delay_minutes": "abc"}, {"text": "x" * 5001}):
            form = {"csrf": csrf, "enabled": "on", "delay_minutes": "0", **bad}
            async with http.post(page, data=form) as resp:
                assert resp.status == 400
                assert 'data-testid="thank-you-error"' in await resp.text()
        assert (await server.server.app[FOLLOWUP].settings(event.event_id)).enabled  # unchanged
        async with http.post(page, data={"csrf": "forged", "delay_minutes": "0"}) as resp:
            assert resp.status == 403
        async with http.post(page, data={"csrf": csrf, "delay_minutes": "5"}) as resp:
            assert resp.status == 200  # after the redirect
        settings = await server.server.app[FOLLOWUP].settings(event.event_id)
        assert (settings.enabled, settings.delay_minutes) == (False, 5)
        await http.close()
        async with (
            aiohttp.ClientSession() as stranger,  # not signed in
            stranger.get(page, allow_redirects=False) as resp,
        ):
            assert resp.status == 303
        host = await join(server, people, event, "Host", event.host_key)
        await join(server, people, event, "Ann", ann)
        await host.request("end-for-all")
        await until(lambda: followup_mails_planned(server, event))
        assert await server.server.app[FOLLOWUP].mails(event.event_id) == []
        await asyncio.sleep(0.3)
        assert thanks_to(inbox, "ann@example.org") == []


async def rate_json(
    http: aiohttp.ClientSession, base: str, token: str, body: Any
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{base}/rate/{token}", json=body) as resp:
        return resp.status, await resp.json()


async def test_ratings_statistics_exports_and_api(
    tmp_path: Path, inbox: Inbox, people: list[MatchingPerson]
) -> None:
    data = tmp_path / "data"
    async with running_server(data, mail_config(data, inbox)) as server:
        event = await owned_event(server, "Rated", access_type="token")
        await server.store.run(  # the event's brand is on the rating page
            lambda core: branding.sql_put_event_branding(
                core.connection, event.event_id, branding.Branding(organiser_name="Acme Academy")
            )
        )
        ann = await invite(server, event, "Ann", "ann@example.org")
        bob = await invite(server, event, "Bob", "bob@example.org")
        await invite(server, event, "Carl", "carl@example.org")
        host = await join(server, people, event, "Host", event.host_key)
        ann_in = await join(server, people, event, "Ann", ann, client_id="ann")
        bob_in = await join(server, people, event, "Bob", bob, client_id="bob")
        await host.request("end-for-all")
        room_token = (await ann_in.wait("room-ended"))["rating_token"]
        bob_token = (await bob_in.wait("room-ended"))["rating_token"]
        base = server.base_url
        async with aiohttp.ClientSession() as http:
            # from the room: JSON
            status, body = await rate_json(http, base, room_token, {"stars": 4, "comment": "Good"})
            assert (status, body) == (200, {"stars": 4, "comment": "Good"})
            status, body = await rate_json(http, base, bob_token, {"stars": 2})
            assert status == 200
            for bad in ({"stars": 7}, {"stars": "x"}, {"comment": "no stars"}, [], {"stars": 3,
                        "comment": "x" * 2001}):  # fmt: skip
                status, body = await rate_json(http, base, room_token, bad)
                assert status == 400 and body["error"] in ("bad-input",), body
            status, body = await rate_json(http, base, room_token[:-3] + "AAA", {"stars": 5})
            assert (status, body["error"]) == (404, "invalid-token")
            expired = server.server.app[RATINGS].token(
                Rater(event.event_id, "Ann", email="ann@example.org"), valid_for=-1
            )
            status, body = await rate_json(http, base, expired, {"stars": 5})
            assert (status, body["error"]) == (410, "expired")
            # from the e-mail: the small page, a form; it replaces the room's rating
            mail = (await until(lambda: thanks_to(inbox, "ann@example.org")))[0]
            found = RATE_LINK.search(text_of(mail))
            assert found is not None
            mail_token = found.group(1)
            async with http.get(f"{base}/rate/{mail_token}?stars=5") as resp:
                assert resp.status == 200
                page = await resp.text()
                assert 'data-testid="rating-before"' in page  # rated in the room already
                assert 'data-testid="brand-organiser">Acme Academy<' in page
                assert re.search(r'value="5" id="rate-star-5" checked', page)
                assert resp.headers["Referrer-Policy"] == "no-referrer"
            async with http.post(
                f"{base}/rate/{mail_token}", data={"stars": "5", "comment": "Loved the Q&A"}
            ) as resp:
                assert resp.status == 200
                assert 'data-testid="rating-thanks"' in await resp.text()
            async with http.post(f"{base}/rate/{mail_token}", data={"stars": "0"}) as resp:
                assert resp.status == 400
                assert 'data-testid="rating-error"' in await resp.text()
            async with http.get(f"{base}/rate/nonsense") as resp:
                assert resp.status == 404
            ratings = await server.server.app[RATINGS].list(event.event_id)
            assert sorted((r.name, r.stars, r.comment, r.via) for r in ratings) == [
                ("Ann", 5, "Loved the Q&A", "email"),
                ("Bob", 2, "", "room"),
            ]
            # limited: ten a person in ten minutes (the refused ones above counted too)
            statuses = [
                (await rate_json(http, base, bob_token, {"stars": 3}))[0] for _ in range(10)
            ]
            assert statuses.count(429) >= 1 and statuses[0] == 200

        olga = await sign_in(server, "olga")
        stats = f"{base}/dashboard/events/{event.display_id}/stats"
        async with olga.get(stats) as resp:
            html = await resp.text()
        assert 'data-testid="rating-average">4.0<' in html  # (5 + 3) / 2 after Bob's change
        assert 'data-testid="rating-comment-item" data-stars="5"' in html
        assert "Loved the Q&amp;A" in html
        rows = re.findall(
            r'data-testid="registrant-row" data-email="([^"]+)" data-attended="(\w+)"', html
        )
        assert sorted(rows) == [
            ("ann@example.org", "yes"),
            ("bob@example.org", "yes"),
            ("carl@example.org", "no"),
        ]
        assert 'data-testid="attendee-rating">5<' in html
        async with olga.get(f"{base}/dashboard/events/{event.display_id}/registrants.csv") as resp:
            table = list(csv.DictReader(io.StringIO(await resp.text())))
        by_email = {r["email"]: r for r in table}
        assert by_email["ann@example.org"]["attended"] == "true"
        assert by_email["ann@example.org"]["rating"] == "5"
        assert by_email["carl@example.org"]["attended"] == "false"
        assert by_email["carl@example.org"]["minutes"] == "0"
        async with olga.get(f"{base}/dashboard/events/{event.display_id}/ratings.csv") as resp:
            rated = list(csv.DictReader(io.StringIO(await resp.text())))
        assert {(r["name"], r["stars"], r["via"]) for r in rated} == {
            ("Ann", "5", "email"),
            ("Bob", "3", "room"),
        }
        async with olga.get(f"{base}/dashboard/events/{event.display_id}/export.json") as resp:
            exported = await resp.json()
        assert exported["rating"]["count"] == 2 and exported["rating"]["average"] == 4.0
        assert len(exported["registrants"]) == 3
        assert "rating_stars" in exported["columns"] and "device" in exported["columns"]
        async with olga.get(f"{base}/dashboard/events/{event.display_id}/export.csv") as resp:
            engagement = list(csv.DictReader(io.StringIO(await resp.text())))
        assert {r["name"]: r["rating_stars"] for r in engagement}["Ann"] == "5"
        await olga.close()

        # the API v1: the statistics carry the same
        with server.store.connect_sync() as sync:
            owner = sync.get_user_by_name("olga")
            assert owner is not None
            _made, secret = api_tokens.create(sync.connection, owner.user_id, "t", Scope.READ)
        auth = {"Authorization": f"Bearer {secret}"}
        async with aiohttp.ClientSession(headers=auth) as api:
            async with api.get(f"{base}/api/v1/events/{event.display_id}/stats") as resp:
                assert resp.status == 200
                body = await resp.json()
            assert body["rating"] == {
                "count": 2,
                "average": 4.0,
                "distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1},
            }
            assert {r["email"]: r["attended"] for r in body["registrants"]} == {
                "ann@example.org": True,
                "bob@example.org": True,
                "carl@example.org": False,
            }
            assert all(r["rated_at"].endswith("Z") for r in body["ratings"])
            url = f"{base}/api/v1/events/{event.display_id}/exports/ratings.csv"
            async with api.get(url) as resp:
                assert resp.status == 200 and "Loved the Q&A" in await resp.text()


async def test_leads_of_the_recording_gate(tmp_path: Path, inbox: Inbox) -> None:
    data = tmp_path / "data"
    async with running_server(data, mail_config(data, inbox)) as server:
        event = await owned_event(server, "Recorded")
        recording_id = await store_recording(server, event)
        publisher = server.server.app[PUBLISHER]
        publication = await publisher.publish(recording_id, days=3, require_email=True)
        general = await publisher.token(publication)
        personal = await publisher.token(publication, "known@example.org")
        base = server.base_url
        async with aiohttp.ClientSession() as viewer:
            async with viewer.post(
                f"{base}/r/{general}", data={"email": "Lead@Example.org"}, allow_redirects=False
            ) as resp:
                assert resp.status == 303
            async with viewer.get(f"{base}/r/{personal}") as resp:
                assert resp.status == 200  # the recipient of a personal link: not a lead
        leads = await publisher.leads(event.event_id)
        assert [lead.email for lead in leads] == ["lead@example.org"]
        olga = await sign_in(server, "olga")
        async with olga.get(f"{base}/dashboard/events/{event.display_id}/stats") as resp:
            html = await resp.text()
        assert re.findall(r'data-testid="lead-row"><td>([^<]+)<', html) == ["lead@example.org"]
        async with olga.get(f"{base}/dashboard/events/{event.display_id}/leads.csv?bom=1") as resp:
            text = (await resp.read()).decode("utf-8-sig")
        (row,) = csv.DictReader(io.StringIO(text))
        assert row["email"] == "lead@example.org"
        # deleting the event's personal data takes the leads too
        async with olga.get(f"{base}/dashboard/events/{event.display_id}/stats") as resp:
            csrf = csrf_of(await resp.text())
        async with olga.post(
            f"{base}/dashboard/events/{event.display_id}/delete-personal-data",
            data={"csrf": csrf},
        ) as resp:
            assert resp.status == 200
        assert await publisher.leads(event.event_id) == []
        await olga.close()
