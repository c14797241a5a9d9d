"""Ticket security through the real server: one live connection per seat whatever client id
it sends, bans that hit the person and not a shared secret, and rate limits that hold under
parallel attempts (counted before they are checked, IPv6 by /64, per event, unknown IDs)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer, make_config, running_server
from webinar.accounts import hash_password
from webinar.app import TICKETING
from webinar.cli import main
from webinar.client.peer import ClientError, SignallingClient
from webinar.storage.store import Event
from webinar.ticketing import SecondDevice, records
from webinar.ticketing.records import EventAccess, PaymentProvider

PASSWORD = "correct horse battery"


Person = protocol_fixtures.MatchingPerson
people = protocol_fixtures.own_people


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


def proxied(tmp_path: Path) -> Any:
    """A server behind a trusted proxy on loopback: X-Forwarded-For names the client."""
    config = make_config(tmp_path / "data")
    config = dataclasses.replace(
        config, http=dataclasses.replace(config.http, trusted_proxies=("127.0.0.0/8",))
    )
    return running_server(config.data_dir, config)


async def enter(
    server: RunningServer,
    people: list[Person],
    event: Event,
    credential: str | None = None,
    *,
    name: str = "Someone",
    client_id: str | None = None,
    **extra: Any,
) -> Person:
    if client_id is not None:
        extra["client_id"] = client_id
    return await helpers.join_person(server, people, Person, event, name, credential, **extra)


async def refused(
    server: RunningServer,
    people: list[Person],
    event: Event,
    credential: str | None,
    client_id: str | None = None,
) -> str:
    with pytest.raises(ClientError) as err:
        await enter(server, people, event, credential, client_id=client_id)
    return err.value.code


async def still_in(person: Person) -> None:
    """The connection is open and still in the room."""
    assert not any(m.get("type") == "bye" for m in person.seen), person.seen
    await person.request("ping")


async def set_access(server: RunningServer, access: EventAccess) -> None:
    await server.store.run(lambda core: records.put_access(core.connection, access))


async def paid_event(server: RunningServer, policy: SecondDevice = SecondDevice.REFUSE) -> Event:
    event = await server.store.create_event(
        "Paid talk", datetime.now(UTC) + timedelta(minutes=5), access_type="paid"
    )
    await set_access(
        server,
        EventAccess(event.event_id, price_minor=2500, currency="EUR", second_device=policy),
    )
    return event


async def code_for(server: RunningServer, event: Event, seats: int = 1) -> str:
    reg = await server.store.run(
        lambda core: records.add_registration(
            core.connection,
            event.event_id,
            first_name="Grace",
            last_name="Hopper",
            email="grace@example.org",
            seats=seats,
            amount_minor=2500 * seats,
            currency="EUR",
            provider=PaymentProvider.MANUAL,
            capacity=None,
        )
    )
    confirmed = await server.store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code
    return confirmed.code


async def token_event(server: RunningServer, policy: SecondDevice) -> tuple[Event, str]:
    event = await server.create_event("By invitation", access_type="token")
    await set_access(server, EventAccess(event.event_id, second_device=policy))
    ada = await server.store.run(
        lambda core: records.add_invitee(
            core.connection, event.event_id, "Ada Lovelace", "ada@example.org"
        )
    )
    return event, ada.token


async def password_event(server: RunningServer) -> Event:
    event = await server.create_event("Password", access_type="password")
    await set_access(
        server,
        EventAccess(event.event_id, attendee_password_hash=hash_password("attend-me", n=2**10)),
    )
    return event


def attendees_in(server: RunningServer, event: Event) -> int:
    room = server.rooms.get(event.event_id)
    if room is None:
        return 0
    return sum(1 for p in room.participants() if p.role.value == "attendee" and p.connected)


# ------------------------------------------------------------------------------ seats


async def test_copied_client_id_does_not_share_a_single_use_code(
    server: RunningServer, people: list[Person]
) -> None:
    event = await paid_event(server)
    code = await code_for(server, event)
    first = await enter(server, people, event, code, client_id="copied")
    for _ in range(2):
        assert await refused(server, people, event, code, "copied") == "ticket-in-use"
    await still_in(first)
    assert attendees_in(server, event) == 1


async def test_copied_client_id_does_not_share_an_invitation(
    server: RunningServer, people: list[Person]
) -> None:
    event, token = await token_event(server, SecondDevice.REFUSE)
    first = await enter(server, people, event, token, client_id="copied")
    assert await refused(server, people, event, token, "copied") == "ticket-in-use"
    await still_in(first)

    # Under "takeover" the copy gets in and the first connection leaves: never both.
    other, other_token = await token_event(server, SecondDevice.TAKEOVER)
    first = await enter(server, people, other, other_token, client_id="copied")
    second = await enter(server, people, other, other_token, client_id="copied")
    assert (await first.wait("bye"))["reason"] == "taken-over"
    await still_in(second)
    assert attendees_in(server, other) == 1


async def test_copied_client_id_does_not_widen_a_group_code(
    server: RunningServer, people: list[Person]
) -> None:
    event = await paid_event(server)
    code = await code_for(server, event, seats=2)
    await enter(server, people, event, code, client_id="copied")
    await enter(server, people, event, code, client_id="copied")
    assert await refused(server, people, event, code, "copied") == "group-full"
    assert attendees_in(server, event) == 2


async def test_a_resume_takes_back_its_own_seat(
    server: RunningServer, people: list[Person]
) -> None:
    """The same connection coming back with its resume token (its old socket not yet seen
    gone) takes its seat over; the old socket is replaced, never kept beside it."""
    event = await paid_event(server)
    code = await code_for(server, event)
    first = await enter(server, people, event, code, client_id="laptop")
    again = await enter(
        server,
        people,
        event,
        code,
        client_id="laptop",
        resume_token=first.joined["resume_token"],
    )
    assert again.joined["resumed"] is True
    assert (await first.wait("bye"))["reason"] == "replaced"
    await still_in(again)
    assert await refused(server, people, event, code, "laptop") == "ticket-in-use"
    # A resume token that is not the seat holder's does not take the seat.
    assert attendees_in(server, event) == 1


async def test_parallel_entries_leave_one_connection_per_seat(
    server: RunningServer, people: list[Person]
) -> None:
    event = await paid_event(server, SecondDevice.TAKEOVER)
    code = await code_for(server, event)
    attempts = await asyncio.gather(
        *(enter(server, people, event, code, client_id=f"d{i}") for i in range(6)),
        return_exceptions=True,
    )
    entered = [a for a in attempts if isinstance(a, Person)]
    assert entered, attempts
    # the others were refused by the server, not failed some other way (a timeout, a crash)
    assert all(isinstance(a, (Person, ClientError)) for a in attempts), attempts
    await asyncio.sleep(0.5)
    assert attendees_in(server, event) == 1
    # and on the client side: one connection holds the seat, every other one was told to go
    live = [p for p in entered if not any(m.get("type") == "bye" for m in p.seen)]
    assert len(live) == 1, [p.seen for p in entered]
    await still_in(live[0])


# ------------------------------------------------------------------------------ bans


async def test_a_ban_does_not_hit_others_with_the_same_password(
    server: RunningServer, people: list[Person]
) -> None:
    event = await password_event(server)
    host = await enter(server, people, event, event.host_key, client_id="host")
    anna = await enter(server, people, event, "attend-me", client_id="anna")
    bert = await enter(server, people, event, "attend-me", client_id="bert")
    await host.request("remove", participant_id=anna.pid, ban=True)
    assert (await anna.wait("bye"))["reason"] == "removed"
    assert await refused(server, people, event, "attend-me", "anna") == "banned"
    await still_in(bert)
    await enter(server, people, event, "attend-me", client_id="carl")  # the password works


async def test_a_banned_presenter_does_not_ban_the_presenter_key(
    server: RunningServer, people: list[Person]
) -> None:
    event = await server.create_event()
    host = await enter(server, people, event, event.host_key, client_id="host")
    pia = await enter(server, people, event, event.presenter_key, client_id="pia")
    await host.request("remove", participant_id=pia.pid, ban=True)
    await pia.wait("bye")
    assert await refused(server, people, event, event.presenter_key, "pia") == "banned"
    other = await enter(server, people, event, event.presenter_key, client_id="paul")
    assert other.joined["role"] == "presenter"


async def test_a_ban_follows_the_personal_ticket_to_another_device(
    server: RunningServer, people: list[Person]
) -> None:
    event, token = await token_event(server, SecondDevice.TAKEOVER)
    host = await enter(server, people, event, event.host_key, client_id="host")
    ada = await enter(server, people, event, token, client_id="laptop")
    await host.request("remove", participant_id=ada.pid, ban=True)
    await ada.wait("bye")
    assert await refused(server, people, event, token, "phone") == "banned"


# ------------------------------------------------------------------------------ rate limits


async def parallel_joins(
    server: RunningServer, people: list[Person], event: Event, credentials: list[str]
) -> list[str]:
    """Connect first, then send every join at once; the error code of each."""
    persons = await asyncio.gather(
        *(helpers.connect_person(server, people, Person) for _ in credentials)
    )

    async def join(person: Person, credential: str) -> str:
        try:
            await person.request("join", event_id=event.event_id, name="x", credential=credential)
        except ClientError as err:
            return err.code
        return "joined"

    return list(
        await asyncio.gather(*(join(p, c) for p, c in zip(persons, credentials, strict=True)))
    )


async def test_parallel_wrong_passwords_are_counted_before_they_are_checked(
    server: RunningServer, people: list[Person]
) -> None:
    event = await password_event(server)
    codes = await parallel_joins(server, people, event, [f"guess-{i}" for i in range(30)])
    assert codes.count("bad-credential") == 10, codes
    assert codes.count("rate-limited") == 20


async def test_parallel_wrong_codes_are_counted_before_they_are_checked(
    server: RunningServer, people: list[Person]
) -> None:
    event = await paid_event(server)
    codes = await parallel_joins(server, people, event, ["2222-3333-4444"] * 30)
    assert codes.count("bad-credential") == 10, codes


async def test_a_right_credential_does_not_use_up_the_limit(
    server: RunningServer, people: list[Person]
) -> None:
    """An attempt counts while it is checked and is given back when it was right: more
    people than the limit behind one address, entering at once, all get in."""
    event = await password_event(server)
    codes = await parallel_joins(server, people, event, ["attend-me"] * 25)
    assert codes == ["joined"] * 25
    assert await refused(server, people, event, "wrong") == "bad-credential"


async def attempt_from(
    server: RunningServer, people: list[Person], address: str, **join: Any
) -> str:
    http = aiohttp.ClientSession(headers={"X-Forwarded-For": address})
    ws = SignallingClient(http, server.base_url.replace("http", "ws") + "/ws")
    await ws.connect()
    people.append(Person(http, ws))
    await ws.request("hello", protocol=1)
    try:
        await ws.request("join", name="x", **join)
    except ClientError as err:
        return err.code
    return "joined"


async def test_ipv6_addresses_count_by_their_64(tmp_path: Path, people: list[Person]) -> None:
    async with proxied(tmp_path) as server:
        event = await paid_event(server)
        wrong = {"event_id": event.event_id, "credential": "2222-3333-4444"}
        for i in range(10):
            assert await attempt_from(server, people, f"2001:db8::{i + 1}", **wrong) == (
                "bad-credential"
            )
        assert await attempt_from(server, people, "2001:db8::ff", **wrong) == "rate-limited"
        assert await attempt_from(server, people, "2001:db8:0:1::1", **wrong) == "bad-credential"


async def test_an_event_has_a_ceiling_across_addresses(
    tmp_path: Path, people: list[Person]
) -> None:
    async with proxied(tmp_path) as server:
        server.server.app[TICKETING].limiter.per_event = 20
        event = await paid_event(server)
        wrong = {"event_id": event.event_id, "credential": "2222-3333-4444"}
        addresses = [f"203.0.113.{i}" for i in range(1, 11)]
        first = await asyncio.gather(*(attempt_from(server, people, a, **wrong) for a in addresses))
        assert first == ["bad-credential"] * 10
        more = await asyncio.gather(
            *(attempt_from(server, people, a, **wrong) for a in addresses for _ in range(4))
        )
        assert more.count("bad-credential") == 10, more  # 20 in all on this event
        # An address that has not failed still gets its one try; people who type right get in.
        assert await attempt_from(server, people, "198.51.100.1", **wrong) == "bad-credential"
        code = await code_for(server, event)
        assert (
            await attempt_from(
                server, people, "198.51.100.2", event_id=event.event_id, credential=code
            )
            == "joined"
        )


async def test_unknown_event_ids_count_like_wrong_guesses(
    server: RunningServer, people: list[Person]
) -> None:
    person = await helpers.connect_person(server, people, Person)
    answers = []
    for _ in range(15):
        try:
            await person.request("join", event_id=secrets.token_hex(5), name="x")
        except ClientError as err:
            answers.append(err.code)
    assert answers == ["unknown-event"] * 10 + ["rate-limited"] * 5
    event = await server.create_event("Open", access_type="password")
    assert await refused(server, people, event, "attend-me") == "rate-limited"
    # keys cannot be guessed: the host still gets in from this address
    assert (await enter(server, people, event, event.host_key)).joined["role"] == "host"


async def test_parallel_dashboard_sign_ins_are_counted_before_they_are_checked(
    server: RunningServer,
) -> None:
    await server.store.run(
        lambda core: core.create_user("olga", hash_password(PASSWORD, n=2**12), "organiser")
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(server.base_url + "/login") as resp:
            match = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
            assert match
        token = match.group(1)

        async def sign_in(password: str) -> int:
            async with http.post(
                server.base_url + "/login",
                data={"csrf": token, "username": "olga", "password": password},
                allow_redirects=False,
            ) as resp:
                return resp.status

        statuses = await asyncio.gather(*(sign_in(f"wrong-{i}") for i in range(20)))
        assert statuses.count(401) == 5, statuses
        assert statuses.count(429) == 15


# ------------------------------------------------------------------------------ secrets at rest


async def test_tickets_work_but_the_database_holds_them_sealed(
    tmp_path: Path, people: list[Person], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        event, token = await token_event(server, SecondDevice.REFUSE)
        paid = await paid_event(server)
        code = await code_for(server, paid)
        assert (await enter(server, people, event, token, client_id="a")).joined["role"] == (
            "attendee"
        )
        assert (await enter(server, people, paid, code, client_id="b")).joined["role"] == (
            "attendee"
        )
        host = await enter(server, people, event, event.host_key, client_id="h")
        assert host.joined["role"] == "host"
        await asyncio.gather(*(p.close() for p in people))
        people.clear()
    plain = [event.presenter_key, event.host_key, paid.presenter_key, token, code]
    conn = sqlite3.connect(data / "webinar.sqlite3")
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    assert not [p for p in plain if p in dump]
    assert (data / "secrets.key").stat().st_mode & 0o777 == 0o600
    # the presenter links the CLI prints still carry the key
    assert main(["event", "list", "--data-dir", str(data), "--json"]) == 0
    assert quote(event.presenter_key, safe="") in capsys.readouterr().out
