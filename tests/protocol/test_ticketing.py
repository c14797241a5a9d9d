"""Ticketing end to end over real HTTP and WebSockets: entry with every access type,
device rules, the code window, booking rules, invitations and paid registrations through a
real SMTP server, Stripe webhooks, and a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer, make_config, running_server
from tests.smtp import Inbox, code_in, smtp_server, text_of, token_link_in
from webinar.accounts import hash_password
from webinar.app import ATTENDANCE
from webinar.client.peer import ClientError, SignallingClient
from webinar.config import Config, MailConfig, PaymentsConfig, TicketingConfig
from webinar.storage.store import Event
from webinar.ticketing import SecondDevice, records
from webinar.ticketing.codes import format_code
from webinar.ticketing.records import EventAccess, PaymentProvider, RegistrationStatus

PASSWORD = "correct horse battery"


Person = protocol_fixtures.MatchingPerson
people = protocol_fixtures.own_people


async def connect(server: RunningServer, people: list[Person]) -> Person:
    return await helpers.connect_person(server, people, Person)


async def enter(
    server: RunningServer,
    people: list[Person],
    event: Event,
    credential: str | None = None,
    name: str = "Someone",
    client_id: str | None = None,
) -> Person:
    extra = {} if client_id is None else {"client_id": client_id}
    return await helpers.join_person(server, people, Person, event, name, credential, **extra)


async def refused(
    server: RunningServer,
    people: list[Person],
    event: Event,
    credential: str | None,
    client_id: str | None = None,
) -> ClientError:
    with pytest.raises(ClientError) as err:
        await enter(server, people, event, credential, client_id=client_id)
    return err.value


async def set_access(server: RunningServer, access: EventAccess) -> None:
    await server.store.run(lambda core: records.put_access(core.connection, access))


async def registration(
    server: RunningServer, event: Event, *, seats: int = 1, confirm: bool = True, **kw: Any
) -> records.Registration:
    reg = await server.store.run(
        lambda core: records.add_registration(
            core.connection,
            event.event_id,
            first_name=kw.get("first_name", "Grace"),
            last_name=kw.get("last_name", "Hopper"),
            email=kw.get("email", "grace@example.org"),
            seats=seats,
            amount_minor=kw.get("amount_minor", 2500 * seats),
            currency="EUR",
            provider=kw.get("provider", PaymentProvider.MANUAL),
            capacity=None,
        )
    )
    if not confirm:
        return reg
    confirmed = await server.store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None
    return confirmed


async def paid_event(server: RunningServer, **settings: Any) -> Event:
    now = datetime.now(UTC)
    event = await server.store.create_event(
        "Paid talk", now + timedelta(minutes=5), access_type="paid", **settings
    )
    await set_access(server, EventAccess(event.event_id, price_minor=2500, currency="EUR"))
    return event


def visitor_session() -> aiohttp.ClientSession:
    """A browser-like visitor: keeps cookies for 127.0.0.1 (the form's CSRF cookie)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def submit_registration(
    visitor: aiohttp.ClientSession, url: str, data: dict[str, str], **kw: Any
) -> tuple[int, str, dict[str, str]]:
    """Open the registration page (for its CSRF token), then submit the form."""
    async with visitor.get(url) as resp:
        match = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert match
    async with visitor.post(url, data={"csrf": match.group(1), **data}, **kw) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


def with_config(data: Path, **sections: Any) -> Config:
    return dataclasses.replace(make_config(data), **sections)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


# ------------------------------------------------------------------------------ entry


async def test_entry_with_each_access_type(server: RunningServer, people: list[Person]) -> None:
    open_event = await server.create_event("Open")
    assert (await enter(server, people, open_event)).joined["role"] == "attendee"
    assert (await refused(server, people, open_event, "guess")).code == "bad-credential"

    pw_event = await server.create_event("Password", access_type="password")
    await set_access(
        server,
        EventAccess(
            pw_event.event_id,
            attendee_password_hash=hash_password("attend-me", n=2**10),
            presenter_password_hash=hash_password("present-me", n=2**10),
        ),
    )
    assert (await refused(server, people, pw_event, None)).code == "credential-required"
    assert (await refused(server, people, pw_event, "attend-you")).code == "bad-credential"
    assert (await enter(server, people, pw_event, "attend-me")).joined["role"] == "attendee"
    assert (await enter(server, people, pw_event, "present-me")).joined["role"] == "presenter"
    assert (await enter(server, people, pw_event, pw_event.host_key)).joined["role"] == "host"

    token_event = await server.create_event("Token", access_type="token")
    ada = await server.store.run(
        lambda core: records.add_invitee(
            core.connection, token_event.event_id, "Ada Lovelace", "ada@example.org"
        )
    )
    assert (await refused(server, people, token_event, None)).code == "credential-required"
    joined = (await enter(server, people, token_event, ada.token, name="Not Ada")).joined
    assert joined["role"] == "attendee"
    me = next(p for p in joined["participants"] if p["participant_id"] == joined["participant_id"])
    assert me["name"] == "Ada Lovelace"  # the token is bound to its invitee

    paid = await paid_event(server)
    reg = await registration(server, paid)
    assert reg.code is not None
    assert (await refused(server, people, paid, None)).code == "credential-required"
    assert (await refused(server, people, paid, "2222-3333-4444")).code == "bad-credential"
    person = await enter(server, people, paid, format_code(reg.code).lower(), name="x")
    assert person.joined["role"] == "attendee" and person.joined["room"]["phase"] == "lobby"
    checked = await server.store.run(
        lambda core: records.get_registration(core.connection, reg.registration_id)
    )
    assert checked is not None and checked.checked_in_at is not None


async def test_single_use_code_takeover(server: RunningServer, people: list[Person]) -> None:
    event = await paid_event(server)
    reg = await registration(server, event)
    assert reg.code
    first = await enter(server, people, event, reg.code, client_id="laptop")
    watcher = await enter(server, people, event, event.presenter_key, client_id="p")
    second = await enter(server, people, event, reg.code, client_id="phone")
    bye = await first.wait("bye")
    assert bye["reason"] == "taken-over"
    left = await protocol_fixtures.roster_left(watcher, first.joined["participant_id"])
    assert left == "taken-over"
    assert second.joined["role"] == "attendee"


async def test_single_use_code_refusal_and_rejoin_after_a_drop(
    server: RunningServer, people: list[Person]
) -> None:
    event = await paid_event(server)
    await set_access(
        server,
        EventAccess(
            event.event_id, price_minor=2500, currency="EUR", second_device=SecondDevice.REFUSE
        ),
    )
    reg = await registration(server, event)
    assert reg.code
    first = await enter(server, people, event, reg.code, client_id="laptop")
    assert (await refused(server, people, event, reg.code, "phone")).code == "ticket-in-use"
    await first.client.close()  # a drop: no leave
    again = await connect(server, people)
    resumed = await again.client.request(
        "join",
        event_id=event.event_id,
        name="x",
        credential=reg.code,
        client_id="laptop",
        resume_token=first.joined["resume_token"],
    )
    assert resumed["resumed"] is True
    assert (await refused(server, people, event, reg.code, "phone")).code == "ticket-in-use"


async def test_group_code_admits_its_capacity(server: RunningServer, people: list[Person]) -> None:
    event = await paid_event(server)
    reg = await registration(server, event, seats=3)
    assert reg.code
    for device in ("a", "b", "c"):
        await enter(server, people, event, reg.code, client_id=device)
    assert (await refused(server, people, event, reg.code, "d")).code == "group-full"


async def test_code_window_refuses_and_ends(tmp_path: Path, people: list[Person]) -> None:
    config = with_config(
        tmp_path / "data",
        ticketing=TicketingConfig(code_early_minutes=0, code_late_minutes=0),
    )
    async with running_server(config.data_dir, config) as server:
        now = datetime.now(UTC)
        later = await paid_event(server, join_window_minutes=0)
        later = await server.store.update_event(
            later.event_id,
            dataclasses.replace(_settings(later), starts_at=now + timedelta(hours=2)),
        )
        code = (await registration(server, later)).code
        error = await refused(server, people, later, code)
        assert error.code == "outside-window"
        start = later.starts_at
        assert start is not None
        assert f"from {start:%Y-%m-%d %H:%M} to " in error.message

        # An event whose window closes in about a second: the viewer is let go then.
        ending = await server.store.create_event(
            "Ending",
            now - timedelta(seconds=58.5),
            access_type="paid",
            duration_minutes=1,
            join_window_minutes=0,
        )
        code = (await registration(server, ending)).code
        viewer = await enter(server, people, ending, code, client_id="v")
        presenter = await enter(server, people, ending, ending.presenter_key)
        bye = await viewer.wait("bye", within=5)
        assert bye["reason"] == "window-ended"
        await protocol_fixtures.roster_left(presenter, viewer.joined["participant_id"])
        assert (await refused(server, people, ending, code, "v")).code == "outside-window"


def _settings(event: Event) -> Any:
    from webinar.storage.store import EventSettings

    return EventSettings(
        title=event.title,
        starts_at=event.starts_at,
        join_window_minutes=event.join_window_minutes,
        duration_minutes=event.duration_minutes,
        access_type=event.access_type,
    )


async def test_wrong_codes_are_rate_limited(server: RunningServer, people: list[Person]) -> None:
    event = await paid_event(server)
    for _ in range(10):
        assert (await refused(server, people, event, "2222-3333-4444")).code == "bad-credential"
    error = await refused(server, people, event, "2222-3333-4444")
    assert error.code == "rate-limited" and re.search(r"try again in \d+ s", error.message)
    # keys cannot be guessed: the host gets in even now, from the same address
    assert (await enter(server, people, event, event.host_key)).joined["role"] == "host"


# ------------------------------------------------------------------------------ dashboard


async def add_user(server: RunningServer, name: str, admin: bool = False) -> None:
    await server.store.run(
        lambda core: core.create_user(
            name, hash_password(PASSWORD, n=2**12), "admin" if admin else "organiser"
        )
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def sign_in(server: RunningServer, name: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(server.base_url + "/login") as resp:
        token = csrf_of(await resp.text())
    async with http.post(
        server.base_url + "/login",
        data={"csrf": token, "username": name, "password": PASSWORD},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303
    return http


def local_start(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M")


async def schedule(http: aiohttp.ClientSession, base: str, **fields: str) -> tuple[int, str]:
    async with http.get(base + "/dashboard/events/new") as resp:
        token = csrf_of(await resp.text())
    form = {
        "csrf": token,
        "title": "Talk",
        "start": local_start(timedelta(days=2)),
        "timezone": "UTC",
        "duration_minutes": "60",
        "join_window_minutes": "5",
        "access_type": "open",
        "camera_limit": "4",
        **fields,
    }
    async with http.post(base + "/dashboard/events", data=form, allow_redirects=False) as resp:
        text = await resp.text()
        if resp.status == 303:
            return 303, resp.headers["Location"].split("/")[-1].split("?")[0]
        error = re.search(r"data-form-error-text>([^<]*)<", text)
        return resp.status, error.group(1) if error else text


async def test_booking_rules_name_the_rule(tmp_path: Path) -> None:
    config = with_config(tmp_path / "data", ticketing=TicketingConfig())  # the defaults
    async with running_server(config.data_dir, config) as server:
        await add_user(server, "olga")
        http = await sign_in(server, "olga")
        async with http:
            base = server.base_url
            status, text = await schedule(http, base, start="", access_type="paid", price="5")
            assert (status, text) == (
                400,
                "a paid event needs a start date and time (its codes work around it)",
            )
            status, text = await schedule(http, base, start=local_start(timedelta(minutes=5)))
            assert (status, text) == (400, "the start must be at least 10 minutes from now")
            status, text = await schedule(http, base, start=local_start(timedelta(days=31)))
            assert (status, text) == (400, "the start must be at most 30 days from now")
            # a price above the cap is refused with the cap named
            status, text = await schedule(
                http, base, access_type="paid", price="1000.01", currency="EUR"
            )
            assert status == 400 and "at most 1000 EUR" in text
            ids = []
            for _ in range(3):
                status, event_id = await schedule(http, base)
                assert status == 303
                ids.append(event_id)
            status, text = await schedule(http, base)
            assert status == 400 and "at most 3 active events" in text
            # editing one of the three is not a new booking
            async with http.get(f"{base}/dashboard/events/{ids[0]}") as resp:
                token = csrf_of(await resp.text())
            form = {
                "csrf": token,
                "title": "Renamed",
                "start": local_start(timedelta(days=2)),
                "timezone": "UTC",
                "duration_minutes": "60",
                "join_window_minutes": "5",
                "access_type": "open",
                "camera_limit": "4",
            }
            async with http.post(
                f"{base}/dashboard/events/{ids[0]}", data=form, allow_redirects=False
            ) as resp:
                assert resp.status == 303


async def test_dashboard_stores_access_settings(server: RunningServer) -> None:
    await add_user(server, "olga")
    async with await sign_in(server, "olga") as http:
        status, event_id = await schedule(
            http,
            server.base_url,
            access_type="password",
            attendee_password="let-me-in",
            presenter_password="let-me-present",
        )
        assert status == 303
        status, text = await schedule(http, server.base_url, access_type="password")
        assert (status, text) == (400, "a password event needs an attendee password")
        status, paid_id = await schedule(
            http,
            server.base_url,
            access_type="paid",
            price="49.90",
            currency="PLN",
            capacity="2",
            second_device="refuse",
        )
        assert status == 303
    access = await server.store.run(
        lambda core: records.get_access(core.connection, event_id.replace("-", ""))
    )
    assert access.attendee_password_hash and access.presenter_password_hash
    assert "let-me-in" not in access.attendee_password_hash
    paid = await server.store.run(
        lambda core: records.get_access(core.connection, paid_id.replace("-", ""))
    )
    assert (paid.price_minor, paid.currency, paid.capacity, paid.second_device) == (
        4990,
        "PLN",
        2,
        SecondDevice.REFUSE,
    )


# ------------------------------------------------------------------------------ e-mail


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as box:
        yield box


@pytest.fixture
async def mailing(tmp_path: Path, inbox: Inbox) -> AsyncIterator[RunningServer]:
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


async def post_form(http: aiohttp.ClientSession, url: str, **fields: str) -> str:
    """Submit a dashboard form (with the page's CSRF token); the page it leads to."""
    async with http.get(
        re.sub(r"/(invitees/|registrations/|resend-all|cancel-event).*$", "/tickets", url)
    ) as resp:
        token = csrf_of(await resp.text())
    async with http.post(url, data={"csrf": token, **fields}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.text()


async def test_invitations_by_smtp(
    mailing: RunningServer, inbox: Inbox, people: list[Person]
) -> None:
    server = mailing
    await add_user(server, "olga")
    async with await sign_in(server, "olga") as http:
        status, event_id = await schedule(
            http,
            server.base_url,
            access_type="token",
            start=local_start(timedelta(minutes=12)),
            join_window_minutes="15",
        )
        assert status == 303
        tickets = f"{server.base_url}/dashboard/events/{event_id}/tickets"
        async with http.get(tickets) as resp:
            token = csrf_of(await resp.text())
        async with http.post(
            f"{server.base_url}/dashboard/events/{event_id}/invitees",
            data={"csrf": token, "name": "Ada Lovelace", "email": "ada@example.org"},
        ) as resp:
            page = await resp.text()
        assert "Ada Lovelace is invited" in page
        message = await inbox.wait_for("ada@example.org", "Invitation")
        assert message["From"] == "events@example.org"
        link = token_link_in(message)
        assert event_id in text_of(message)
        secret = link.split("#token=")[1]
        event = await server.store.get_event(event_id)
        assert event is not None
        ada = await enter(server, people, event, secret, client_id="ada")
        assert ada.joined["role"] == "attendee"
        # Attendance knows who came by the invitation's address (statistics, export).
        stats = await server.server.app[ATTENDANCE].stats(event.event_id)
        assert [(p.name, p.email) for p in stats.people] == [("Ada Lovelace", "ada@example.org")]
        invitee_id = re.search(r'data-invitee-id="(\d+)"', page)
        assert invitee_id
        base = f"{server.base_url}/dashboard/events/{event_id}/invitees/{invitee_id.group(1)}"
        page = await post_form(http, base + "/resend")
        assert "sent again to ada@example.org" in page
        await asyncio.sleep(0.1)
        assert len(inbox.to("ada@example.org")) == 2
        page = await post_form(http, base + "/revoke")
        assert "is revoked" in page and 'data-status="revoked"' in page
        assert (await ada.wait("bye"))["reason"] == "revoked"
        assert (await refused(server, people, event, secret, "ada")).code == "revoked"


async def test_paid_registration_confirm_and_reject_by_smtp(
    mailing: RunningServer, inbox: Inbox, people: list[Person]
) -> None:
    server = mailing
    await add_user(server, "olga")
    async with await sign_in(server, "olga") as http:
        status, event_id = await schedule(
            http,
            server.base_url,
            access_type="paid",
            price="25",
            currency="EUR",
            start=local_start(timedelta(minutes=12)),
            registration_questions="Company *\nHow did you hear of us?",
        )
        assert status == 303
        async with visitor_session() as visitor:
            register = f"{server.base_url}/e/{event_id}/register"
            person = {"first_name": "Grace", "last_name": "X", "email": "x@example.org"}
            status, text, _ = await submit_registration(visitor, register, person)
            assert status == 400 and "please answer: Company" in text
            async with visitor.post(register, data={"csrf": "forged", **person}) as resp:
                assert resp.status == 403  # no CSRF token from our page
            for first, email in (("Grace", "grace@example.org"), ("Mallory", "mal@example.org")):
                status, text, _ = await submit_registration(
                    visitor,
                    register,
                    {
                        "first_name": first,
                        "last_name": "X",
                        "email": email,
                        "seats": "1",
                        "q0": "ACME",
                    },
                )
                assert status == 200 and "waits for payment confirmation" in text
        received = await inbox.wait_for("grace@example.org", "Registration received")
        assert "€25.00" in text_of(received)  # Babel, in the registrant's language
        tickets = f"{server.base_url}/dashboard/events/{event_id}/tickets"
        async with http.get(tickets) as resp:
            page = await resp.text()
        rows = re.findall(
            r'data-registration-id="(\d+)" data-status="(\w+)" data-email="([^"]+)"', page
        )
        assert [(s, e) for _, s, e in rows] == [
            ("pending", "grace@example.org"),
            ("pending", "mal@example.org"),
        ]
        grace_id, mal_id = rows[0][0], rows[1][0]
        assert page.count('data-testid="registration-answer">Company: ACME<') == 2
        page = await post_form(
            http, f"{tickets.rsplit('/', 1)[0]}/registrations/{grace_id}/confirm"
        )
        assert "Grace X is confirmed" in page
        confirmed = await inbox.wait_for("grace@example.org", "reservation code")
        code = code_in(confirmed)
        assert f"/e/{event_id}" in text_of(confirmed)
        page = await post_form(http, f"{tickets.rsplit('/', 1)[0]}/registrations/{mal_id}/reject")
        assert "is rejected" in page
        rejection = await inbox.wait_for("mal@example.org", "Not confirmed")
        assert "could not confirm" in text_of(rejection)

        event = await server.store.get_event(event_id)
        assert event is not None
        grace = await enter(server, people, event, code, client_id="g")
        me = grace.joined["participant_id"]
        assert [p["name"] for p in grace.joined["participants"] if p["participant_id"] == me] == [
            "Grace X"
        ]
        async with http.get(tickets) as resp:
            page = await resp.text()
        assert 'data-status="confirmed"' in page and code in page
        checked_in = re.search(r'data-testid="registration-checked-in">([^<]+)<', page)
        assert checked_in and "UTC" in checked_in.group(1)


# ------------------------------------------------------------------------------ Stripe

WHSEC = "whsec_test_secret_for_webhooks"


def sign(payload: bytes, at: float | None = None, secret: str = WHSEC) -> str:
    t = int(time.time() if at is None else at)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def checkout_completed(webhook_id: str, reg: records.Registration, amount: int) -> bytes:
    return json.dumps(
        {
            "id": webhook_id,
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": reg.provider_ref,
                    "object": "checkout.session",
                    "client_reference_id": str(reg.registration_id),
                    "amount_total": amount,
                    "currency": "eur",
                    "payment_status": "paid",
                }
            },
        }
    ).encode()


async def test_stripe_webhook_is_verified_and_applied_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = with_config(
        tmp_path / "data",
        payments=PaymentsConfig(stripe_secret_key="sk_test_x", stripe_webhook_secret=WHSEC),
    )
    async with running_server(config.data_dir, config) as server, aiohttp.ClientSession() as http:
        event = await paid_event(server)
        reg = await registration(
            server, event, confirm=False, seats=2, provider=PaymentProvider.STRIPE
        )
        await server.store.run(
            lambda core: records.set_provider_ref(core.connection, reg.registration_id, "cs_1")
        )
        reg = dataclasses.replace(reg, provider_ref="cs_1")
        url = server.base_url + "/payments/stripe/webhook"

        async def post(body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
            headers = {"Content-Type": "application/json"}
            if signature is not None:
                headers["Stripe-Signature"] = signature
            async with http.post(url, data=body, headers=headers) as resp:
                return resp.status, await resp.json()

        async def status() -> records.Registration:
            found = await server.store.run(
                lambda core: records.get_registration(core.connection, reg.registration_id)
            )
            assert found is not None
            return found

        good = checkout_completed("evt_1", reg, 5000)
        caplog.set_level(logging.WARNING, "webinar.ticketing")
        assert (await post(good, None))[0] == 400
        assert (await post(good, sign(good, secret="whsec_other")))[0] == 400
        assert (await post(good, sign(good, at=time.time() - 3600)))[0] == 400  # replayed
        tampered = checkout_completed("evt_1", reg, 1)
        assert (await post(tampered, sign(good)))[0] == 400  # signed for another body
        cheap = checkout_completed("evt_2", reg, 2500)  # signed, but too little paid
        code, body = await post(cheap, sign(cheap))
        assert code == 400 and "amount mismatch" in body["error"]
        assert (await status()).status is RegistrationStatus.PENDING
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 5 and any("unsigned" in r for r in refusals)

        code, body = await post(good, sign(good))
        assert (code, body["outcome"]) == (200, "applied")
        paid = await status()
        assert paid.status is RegistrationStatus.CONFIRMED and paid.code
        # Stripe delivers again (or someone replays a fresh signature): applied only once.
        code, body = await post(good, sign(good))
        assert (code, body["outcome"]) == (200, "duplicate")
        assert (await status()).code == paid.code
        other = checkout_completed("evt_3", reg, 5000)
        code, body = await post(other, sign(other))
        assert (code, body["outcome"]) == (200, "not-pending")
        assert (await status()).code == paid.code
        outbox = list((config.data_dir / "outbox").glob("*.eml"))
        assert len(outbox) == 1 and format_code(paid.code) in outbox[0].read_text()

        # An abandoned checkout frees its place (once); a paid one is not touched by it.
        late = await registration(
            server, event, confirm=False, provider=PaymentProvider.STRIPE, email="l@example.org"
        )
        await server.store.run(
            lambda core: records.set_provider_ref(core.connection, late.registration_id, "cs_2")
        )
        for ref, outcome in (("cs_2", "expired"), ("cs_1", "ignored")):
            expired = json.dumps(
                {
                    "id": f"evt_x_{ref}",
                    "type": "checkout.session.expired",
                    "data": {"object": {"id": ref, "object": "checkout.session"}},
                }
            ).encode()
            code, body = await post(expired, sign(expired))
            assert (code, body["outcome"]) == (200, outcome)
            code, body = await post(expired, sign(expired))
            assert (code, body["outcome"]) == (200, "duplicate")
        gone = await server.store.run(
            lambda core: records.get_registration(core.connection, late.registration_id)
        )
        assert gone is not None and gone.status is RegistrationStatus.CANCELLED
        assert (await status()).status is RegistrationStatus.CONFIRMED


# ------------------------------------------------------------------------------ restart


async def test_restart_keeps_events_registrations_and_codes(
    tmp_path: Path, people: list[Person]
) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        event = await paid_event(server)
        reg = await registration(server, event)
        pending = await registration(server, event, confirm=False, email="later@example.org")
        token_event = await server.create_event("Token", access_type="token")
        ada = await server.store.run(
            lambda core: records.add_invitee(
                core.connection, token_event.event_id, "Ada", "ada@example.org"
            )
        )
    async with running_server(data) as server:
        assert reg.code
        assert (await enter(server, people, event, reg.code)).joined["role"] == "attendee"
        assert (await enter(server, people, token_event, ada.token)).joined["role"] == "attendee"
        regs = await server.store.run(
            lambda core: records.list_registrations(core.connection, event.event_id)
        )
        assert [(r.email, r.status) for r in regs] == [
            ("grace@example.org", RegistrationStatus.CONFIRMED),
            (pending.email, RegistrationStatus.PENDING),
        ]
        assert regs[0].checked_in_at is not None


async def test_rate_limit_counts_real_clients_behind_a_proxy(
    tmp_path: Path, people: list[Person]
) -> None:
    config = with_config(tmp_path / "data")
    config = dataclasses.replace(
        config, http=dataclasses.replace(config.http, trusted_proxies=("127.0.0.0/8",))
    )
    async with running_server(config.data_dir, config) as server:
        event = await paid_event(server)

        async def attempt(client: str) -> str:
            http = aiohttp.ClientSession(headers={"X-Forwarded-For": f"10.9.9.9, {client}"})
            ws = SignallingClient(http, server.base_url.replace("http", "ws") + "/ws")
            await ws.connect()
            people.append(Person(http, ws))
            await ws.request("hello", protocol=1)
            with pytest.raises(ClientError) as err:
                await ws.request(
                    "join", event_id=event.event_id, name="x", credential="2222-3333-4444"
                )
            return err.value.code

        for _ in range(10):
            assert await attempt("203.0.113.7") == "bad-credential"
        assert await attempt("203.0.113.7") == "rate-limited"
        assert await attempt("198.51.100.1") == "bad-credential"  # another client


# ------------------------------------------------------------------------------ reminders


async def test_reminders_survive_a_restart_and_go_out_once(tmp_path: Path, inbox: Inbox) -> None:
    from webinar.http.tickets import REMINDERS, TICKETS

    config = with_config(
        tmp_path / "data",
        mail=MailConfig(smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_security="none"),
    )
    now = datetime.now(UTC)
    async with running_server(config.data_dir, config) as server:
        desk = server.server.app[TICKETS].desk
        far = await paid_event(server)
        far = await server.store.update_event(
            far.event_id, dataclasses.replace(_settings(far), starts_at=now + timedelta(hours=7))
        )
        near = await paid_event(server)  # starts in 5 minutes: the code e-mail is all
        token_event = await server.store.create_event(
            "Invited", now + timedelta(days=2), access_type="token"
        )
        for event, email in ((far, "far@example.org"), (near, "near@example.org")):
            reg = await registration(server, event, confirm=False, email=email)
            await desk.confirm(event, reg.registration_id, server.base_url)
        await desk.invite(token_event, "Ada", "ada@example.org", server.base_url)
        planned = await server.store.run(
            lambda core: [
                (r.event_id, r.due_at, r.state)
                for e in (far, near, token_event)
                for r in records.list_reminders(core.connection, e.event_id)
            ]
        )
        assert far.starts_at and token_event.starts_at
        assert planned == [
            (far.event_id, far.starts_at - timedelta(hours=1), "pending"),
            (token_event.event_id, token_event.starts_at - timedelta(hours=1), "pending"),
        ]
        assert await server.server.app[REMINDERS].send_due() == 0  # not due yet
    # While the server is down, the reminders fall due.
    with server.store.connect_sync() as sync:
        sync.connection.execute("UPDATE reminders SET due_at = ?", (records.to_db(now),))
    async with running_server(config.data_dir, config) as server:
        await inbox.wait_for("far@example.org", "Starting in 1 hour")
        reminder = await inbox.wait_for("ada@example.org", "Starting in 1 hour")
        assert "#token=" in text_of(reminder)
        assert await server.server.app[REMINDERS].send_due() == 0
    async with running_server(config.data_dir, config) as server:
        assert await server.server.app[REMINDERS].send_due() == 0
        await asyncio.sleep(0.2)
    reminders = [m for m in inbox.messages if "Starting in 1 hour" in str(m["Subject"])]
    assert sorted(str(m["To"]) for m in reminders) == ["ada@example.org", "far@example.org"]
    assert not inbox.to("near@example.org")[1:]  # only the code e-mail


async def test_a_new_time_is_sent_and_a_new_title_offers_a_resend(
    mailing: RunningServer, inbox: Inbox
) -> None:
    """A moved start goes to everyone told at once (an update with the calendar entry's next
    SEQUENCE, tests/protocol/test_mail.py has the rest); a new title only is offered."""
    server = mailing
    await add_user(server, "olga")
    async with await sign_in(server, "olga") as http:
        status, event_id = await schedule(http, server.base_url, access_type="token")
        assert status == 303
        tickets = f"{server.base_url}/dashboard/events/{event_id}/tickets"
        async with http.get(tickets) as resp:
            token = csrf_of(await resp.text())
        async with http.post(
            f"{server.base_url}/dashboard/events/{event_id}/invitees",
            data={"csrf": token, "name": "Ada", "email": "ada@example.org"},
        ) as resp:
            assert 'data-testid="settings-changed"' not in await resp.text()
        await inbox.wait_for("ada@example.org", "Invitation")
        edit = f"{server.base_url}/dashboard/events/{event_id}"
        async with http.get(edit) as resp:
            page = await resp.text()
        form = {
            "csrf": csrf_of(page),
            "title": "Talk",
            "start": local_start(timedelta(days=3)),
            "timezone": "UTC",
            "duration_minutes": "60",
            "join_window_minutes": "5",
            "access_type": "token",
            "camera_limit": "4",
        }
        async with http.post(edit, data=form) as resp:
            assert 'data-testid="settings-changed-notice"' not in await resp.text()
        moved = await inbox.wait_for("ada@example.org", "Changed: Talk")
        assert "Talk" in text_of(moved)
        async with http.post(edit, data={**form, "title": "Talk (renamed)"}) as resp:
            assert 'data-testid="settings-changed-notice"' in await resp.text()
        async with http.get(tickets) as resp:
            assert 'data-testid="settings-changed"' in await resp.text()
        page = await post_form(http, f"{server.base_url}/dashboard/events/{event_id}/resend-all")
        assert "The new details went to 1 person" in page
        assert 'data-testid="settings-changed"' not in page
        again = await inbox.wait_for("ada@example.org", "Changed: Talk (renamed)")
        assert "Talk (renamed)" in text_of(again)
        assert len(inbox.to("ada@example.org")) == 3


async def test_registrations_are_rate_limited_per_client(server: RunningServer) -> None:
    event = await paid_event(server)
    url = f"{server.base_url}/e/{event.display_id}/register"
    async with visitor_session() as visitor:
        for n in range(10):
            form = {"first_name": "A", "last_name": "B", "email": f"p{n}@example.org"}
            assert (await submit_registration(visitor, url, form))[0] == 200
        status, text, _ = await submit_registration(visitor, url, form)
        assert status == 429 and re.search(r"try again in \d+ s", text)
    regs = await server.store.run(
        lambda core: records.list_registrations(core.connection, event.event_id)
    )
    assert len(regs) == 10


async def test_stripe_checkout_is_started_for_a_registration(tmp_path: Path) -> None:
    """Our side of creating a Checkout Session, against a stand-in for Stripe's API on
    loopback (tests have no network): the request Stripe documents, then the redirect."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    seen: list[tuple[dict[str, str], dict[str, str]]] = []

    async def create_session(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        seen.append((dict(request.headers), form))
        return web.json_response(
            {"id": "cs_test_123", "url": "https://checkout.stripe.com/c/pay/cs_test_123"}
        )

    stripe = web.Application()
    stripe.router.add_post("/v1/checkout/sessions", create_session)
    fake = TestServer(stripe, host="127.0.0.1")
    await fake.start_server()
    config = with_config(
        tmp_path / "data",
        payments=PaymentsConfig(
            stripe_secret_key="sk_test_abc",
            stripe_webhook_secret=WHSEC,
            stripe_api_url=f"http://127.0.0.1:{fake.port}",
        ),
    )
    try:
        async with running_server(config.data_dir, config) as server:
            event = await paid_event(server)
            await set_access(
                server,
                EventAccess(
                    event.event_id,
                    price_minor=1990,
                    currency="EUR",
                    payment_provider=PaymentProvider.STRIPE,
                ),
            )
            async with visitor_session() as visitor:
                status, _, headers = await submit_registration(
                    visitor,
                    f"{server.base_url}/e/{event.display_id}/register",
                    {"first_name": "G", "last_name": "H", "email": "g@example.org", "seats": "2"},
                    allow_redirects=False,
                )
            assert status == 303
            assert headers["Location"] == "https://checkout.stripe.com/c/pay/cs_test_123"
            ((headers, form),) = seen
            assert headers["Authorization"] == "Bearer sk_test_abc"
            (reg,) = await server.store.run(
                lambda core: records.list_registrations(core.connection, event.event_id)
            )
            assert headers["Idempotency-Key"] == f"registration-{reg.registration_id}"
            assert form["mode"] == "payment"
            assert form["client_reference_id"] == str(reg.registration_id)
            assert form["line_items[0][price_data][currency]"] == "eur"
            assert form["line_items[0][price_data][unit_amount]"] == "1990"
            assert form["line_items[0][quantity]"] == "2"
            assert form["success_url"].endswith(f"/e/{event.display_id}/register?paid=1")
            assert (reg.status, reg.provider_ref, reg.amount_minor) == (
                RegistrationStatus.PENDING,
                "cs_test_123",
                3980,
            )
    finally:
        await fake.close()


async def test_cancelling_the_event_tells_everyone(
    mailing: RunningServer, inbox: Inbox, people: list[Person]
) -> None:
    server = mailing
    await add_user(server, "olga")
    async with await sign_in(server, "olga") as http:
        status, event_id = await schedule(
            http,
            server.base_url,
            access_type="paid",
            price="10",
            currency="GBP",
            start=local_start(timedelta(minutes=12)),
            join_window_minutes="15",
        )
        assert status == 303
        event = await server.store.get_event(event_id)
        assert event is not None
        paid = await registration(server, event, email="paid@example.org")
        await registration(server, event, confirm=False, email="pending@example.org")
        assert paid.code
        viewer = await enter(server, people, event, paid.code, client_id="v")
        await server.store.update_event(
            event.event_id, dataclasses.replace(_settings(event), access_type="open")
        )
        walk_in = await enter(server, people, event, None, client_id="w")  # open now
        await server.store.update_event(event.event_id, _settings(event))
        page = await post_form(http, f"{server.base_url}/dashboard/events/{event_id}/cancel-event")
        assert "The event is cancelled; 2 people were told" in page
        assert 'data-testid="event-cancelled"' in page and 'data-testid="cancel-event"' not in page
        assert (await viewer.wait("bye"))["reason"] == "cancelled"
        assert (await walk_in.wait("bye"))["reason"] == "cancelled"
        for address in ("paid@example.org", "pending@example.org"):
            told = await inbox.wait_for(address, "Event cancelled")
            assert "will not take place" in text_of(told) and "Refunds" in text_of(told)
        assert (await refused(server, people, event, paid.code, "v")).code == "event-cancelled"
        assert (await refused(server, people, event, None)).code == "event-cancelled"
        host = await enter(server, people, event, event.host_key)
        assert host.joined["role"] == "host"
        async with visitor_session() as visitor:  # the page says so and has no form
            async with visitor.get(f"{server.base_url}/e/{event_id}/register") as resp:
                text = await resp.text()
            assert 'data-testid="register-cancelled"' in text and "register-form" not in text
        # editing the event afterwards keeps it cancelled
        async with http.get(f"{server.base_url}/dashboard/events/{event_id}") as resp:
            token = csrf_of(await resp.text())
        form = {
            "csrf": token,
            "title": "Renamed",
            "start": local_start(timedelta(minutes=30)),
            "timezone": "UTC",
            "duration_minutes": "60",
            "join_window_minutes": "5",
            "access_type": "open",
            "camera_limit": "4",
        }
        async with http.post(f"{server.base_url}/dashboard/events/{event_id}", data=form) as resp:
            assert resp.status == 200
        assert (await refused(server, people, event, None)).code == "event-cancelled"
