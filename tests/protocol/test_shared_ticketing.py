"""Seats and entry limits shared through Redis, through the real server's WebSocket.

The server is worker 1: its gate is given Redis-backed books. Worker 2 is a second seat book
on the same Redis in this process, with its own holders; each worker's ``evict_remote`` calls
the other's ``evict_local``, as the bus between worker processes does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer, running_server
from tests.redis_server import RedisServer, redis_server  # noqa: F401
from webinar.app import TICKETING
from webinar.client.peer import ClientError
from webinar.rooms.reasons import ByeReason
from webinar.storage.store import Event, Store
from webinar.ticketing import SecondDevice, records
from webinar.ticketing.records import EventAccess, PaymentProvider
from webinar.ticketing.shared import RedisAttempts, RedisSeats

Person = protocol_fixtures.MatchingPerson
people = protocol_fixtures.own_people
SETTLE = 0.3


@dataclass(eq=False)
class Holder:
    evicted: list[ByeReason] = field(default_factory=list)

    def evict(self, reason: ByeReason) -> None:
        self.evicted.append(reason)


@dataclass
class Workers:
    server: RunningServer  # worker 1
    other: RedisSeats  # worker 2's seat book


@pytest.fixture
async def workers(
    tmp_path: Path,
    redis_server: RedisServer,  # noqa: F811
) -> AsyncIterator[Workers]:
    books: dict[int, RedisSeats] = {}

    async def bus(worker_id: int, seat_id: str, reason: ByeReason) -> None:
        await books[worker_id].evict_local(seat_id, reason)

    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    for worker_id, client in zip((1, 2), clients, strict=True):
        books[worker_id] = RedisSeats(
            client,
            worker_id=worker_id,
            evict_remote=bus,
            timeout=1.0,
            settle=SETTLE,
            check_interval=0.05,
        )
        await books[worker_id].start()
    async with running_server(tmp_path / "data") as server:
        ticketing = server.server.app[TICKETING]
        ticketing.seats = books[1]
        ticketing.limiter = RedisAttempts(clients[0], timeout=1.0)
        await asyncio.sleep(SETTLE)
        try:
            yield Workers(server, books[2])
        finally:
            for book in books.values():
                await book.close()
    for client in clients:
        await client.aclose()


async def paid_code(server: RunningServer, policy: SecondDevice) -> tuple[Event, str, str]:
    """A paid event, a confirmed single-use code, and the code's ticket name."""
    return await paid_code_in(server.store, policy)


async def paid_code_in(store: Store, policy: SecondDevice) -> tuple[Event, str, str]:
    """:func:`paid_code`, written straight to ``store`` (a cluster's shared database)."""
    event = await store.create_event(
        "Paid talk", datetime.now(UTC) + timedelta(minutes=5), access_type="paid"
    )
    await store.run(
        lambda core: records.put_access(
            core.connection,
            EventAccess(event.event_id, price_minor=2500, currency="EUR", second_device=policy),
        )
    )
    reg = await store.run(
        lambda core: records.add_registration(
            core.connection,
            event.event_id,
            first_name="Grace",
            last_name="Hopper",
            email="grace@example.org",
            seats=1,
            amount_minor=2500,
            currency="EUR",
            provider=PaymentProvider.MANUAL,
            capacity=None,
        )
    )
    confirmed = await store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code
    return event, confirmed.code, f"reg:{reg.registration_id}"


async def join(
    server: RunningServer, people: list[Any], event: Event, code: str, client_id: str
) -> Any:
    return await helpers.join_person(
        server, people, Person, event, "Grace", code, client_id=client_id
    )


async def join_error(
    server: RunningServer, people: list[Any], event: Event, code: str, client_id: str
) -> str:
    with pytest.raises(ClientError) as err:
        await join(server, people, event, code, client_id)
    return err.value.code


async def test_a_code_in_use_on_another_worker_is_refused(
    workers: Workers, people: list[Any]
) -> None:
    event, code, ticket = await paid_code(workers.server, SecondDevice.REFUSE)
    elsewhere = await workers.other.claim(
        ticket,
        capacity=1,
        policy=SecondDevice.REFUSE,
        client_key="laptop",
        holder=Holder(),
        now=0.0,
    )
    assert await join_error(workers.server, people, event, code, "phone") == "ticket-in-use"
    workers.other.release(elsewhere, 0.0, dropped=False)
    await workers.other.flush()
    person = await join(workers.server, people, event, code, "phone")
    assert person.joined["type"] == "joined"


async def test_a_takeover_on_another_worker_ends_the_session_here(
    workers: Workers, people: list[Any]
) -> None:
    event, code, ticket = await paid_code(workers.server, SecondDevice.TAKEOVER)
    person = await join(workers.server, people, event, code, "laptop")
    newcomer = Holder()
    await workers.other.claim(
        ticket,
        capacity=1,
        policy=SecondDevice.TAKEOVER,
        client_key="phone",
        holder=newcomer,
        now=0.0,
    )
    await person.wait("bye", reason="taken-over")
    assert newcomer.evicted == []
    # and back: joining here again takes the place over from worker 2
    await join(workers.server, people, event, code, "laptop")
    assert newcomer.evicted == [ByeReason.TAKEN_OVER]


async def test_redis_down_answers_unavailable_and_back_up_entry_works(
    workers: Workers,
    people: list[Any],
    redis_server: RedisServer,  # noqa: F811
) -> None:
    event, code, _ticket = await paid_code(workers.server, SecondDevice.REFUSE)
    redis_server.stop()
    assert await join_error(workers.server, people, event, code, "laptop") == "unavailable"
    host = await join(workers.server, people, event, event.host_key or "", "host")
    assert host.joined["type"] == "joined"  # a key needs no shared decision
    redis_server.start()
    for _ in range(100):  # as a client told "unavailable" does: try again
        try:
            person = await join(workers.server, people, event, code, "laptop")
        except ClientError as err:
            assert err.code == "unavailable"
            await asyncio.sleep(0.05)
        else:
            break
    assert person.joined["type"] == "joined"
    assert await join_error(workers.server, people, event, code, "phone") == "ticket-in-use"
