"""Seats and entry attempts shared by workers through a real redis-server.

Two workers are two seat books (and limiters) with their own Redis connections and their own
local holders, in one process; a worker's ``evict_remote`` calls the other's ``evict_local``,
the same call the bus between worker processes makes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.redis_server import RedisServer, redis_server  # noqa: F401
from webinar.http.auth import login_limiter
from webinar.rooms.reasons import ByeReason
from webinar.rooms.roles import Role
from webinar.signalling.errors import wire_code
from webinar.signalling.schema import ErrorCode
from webinar.storage.store import Event, Store
from webinar.ticketing import Grant, Refusal, RefusalCode, SecondDevice, Ticketing, records
from webinar.ticketing.books import Counted
from webinar.ticketing.records import EventAccess
from webinar.ticketing.shared import RedisAttempts, RedisSeats, SharedSeat, SharedTicketing


@dataclass(eq=False)
class Holder:
    evicted: list[ByeReason] = field(default_factory=list)

    def evict(self, reason: ByeReason) -> None:
        self.evicted.append(reason)


#: How long a fresh (or emptied) Redis takes no seat decisions, while workers put theirs back.
SETTLE = 0.3


@dataclass
class Cluster:
    """Two workers' seat books on one Redis."""

    books: dict[int, RedisSeats]
    clients: list[aioredis.Redis]

    def __getitem__(self, worker_id: int) -> RedisSeats:
        return self.books[worker_id]


async def _client(server: RedisServer) -> aioredis.Redis:
    return aioredis.Redis.from_url(server.url)


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[Cluster]:  # noqa: F811
    books: dict[int, RedisSeats] = {}

    async def bus(worker_id: int, seat_id: str, reason: ByeReason) -> None:
        await books[worker_id].evict_local(seat_id, reason)

    clients = [await _client(redis_server) for _ in range(2)]
    for worker_id, client in zip((1, 2), clients, strict=True):
        books[worker_id] = RedisSeats(
            client,
            worker_id=worker_id,
            evict_remote=bus,
            grace=0.6,
            timeout=1.0,
            settle=SETTLE,
            check_interval=0.05,
        )
        await books[worker_id].start()
    await asyncio.sleep(SETTLE)  # a fresh Redis: the seats' first epoch settles
    try:
        yield Cluster(books, clients)
    finally:
        for book in books.values():
            await book.close()
        for client in clients:
            await client.aclose()


async def claim(
    book: RedisSeats,
    holder: Holder,
    client_key: str,
    *,
    ticket: str = "reg:1",
    capacity: int = 1,
    policy: SecondDevice = SecondDevice.REFUSE,
) -> SharedSeat:
    seat = await book.claim(
        ticket, capacity=capacity, policy=policy, client_key=client_key, holder=holder, now=0.0
    )
    assert isinstance(seat, SharedSeat)
    return seat


async def refusal(coro: object) -> RefusalCode:
    with pytest.raises(Refusal) as info:
        await coro  # type: ignore[misc]
    return info.value.code


async def decided(attempt: Callable[[], Awaitable[object]]) -> RefusalCode | None:
    """Retry while Redis is away (or settling), as a client told ``unavailable`` does:
    the first decision's refusal, or None when it admitted."""
    for _ in range(100):
        try:
            await attempt()
        except Refusal as refused:
            if refused.code is not RefusalCode.UNAVAILABLE:
                return refused.code
        else:
            return None
        await asyncio.sleep(0.05)
    raise AssertionError("Redis did not come back")


# ------------------------------------------------------------------------------ seats


async def test_a_single_use_code_held_on_one_worker_is_refused_on_the_other(
    cluster: Cluster,
) -> None:
    first = Holder()
    seat = await claim(cluster[2], first, "laptop")
    assert await refusal(claim(cluster[1], Holder(), "phone")) is RefusalCode.TICKET_IN_USE
    # the same client key on another live connection is another device
    assert await refusal(claim(cluster[1], Holder(), "laptop")) is RefusalCode.TICKET_IN_USE
    assert await cluster[1].in_use("reg:1", 0.0) == 1
    assert first.evicted == [] and await cluster[2].holds(seat)
    cluster[2].release(seat, 0.0, dropped=False)  # left: free at once, on every worker
    await cluster[2].flush()
    await claim(cluster[1], Holder(), "phone")


async def test_takeover_evicts_the_holder_on_the_other_worker(cluster: Cluster) -> None:
    first, second = Holder(), Holder()
    old = await claim(cluster[2], first, "laptop", policy=SecondDevice.TAKEOVER)
    new = await claim(cluster[1], second, "phone", policy=SecondDevice.TAKEOVER)
    assert first.evicted == [ByeReason.TAKEN_OVER] and second.evicted == []
    assert not await cluster[2].holds(old) and await cluster[1].holds(new)
    assert await cluster[2].in_use("reg:1", 0.0) == 1
    # the evicted session's own release afterwards frees nothing of the new holder's
    cluster[2].release(old, 0.0, dropped=False)
    await cluster[2].flush()
    assert await cluster[1].holds(new)
    # and back again: the holder on worker 1 goes
    third = Holder()
    await claim(cluster[2], third, "tablet", policy=SecondDevice.TAKEOVER)
    assert second.evicted == [ByeReason.TAKEN_OVER] and third.evicted == []


async def test_a_resumed_connection_takes_its_own_seat_back_without_an_eviction(
    cluster: Cluster,
) -> None:
    first, resumed = Holder(), Holder()
    old = await claim(cluster[1], first, "laptop")
    seat = await cluster[1].claim(
        "reg:1",
        capacity=1,
        policy=SecondDevice.REFUSE,
        client_key="laptop",
        holder=resumed,
        now=0.0,
        resumes=lambda h: h is first,
    )
    assert first.evicted == []  # the room replaces a resumed connection, not ticketing
    assert not await cluster[1].holds(old) and await cluster[1].holds(seat)
    assert await cluster[2].in_use("reg:1", 0.0) == 1


async def test_a_group_codes_seats_are_shared_by_every_worker(cluster: Cluster) -> None:
    holders = [Holder() for _ in range(4)]
    on_1 = [
        await claim(cluster[1], h, f"d{i}", capacity=3, policy=SecondDevice.TAKEOVER)
        for i, h in enumerate(holders[:2])
    ]
    on_2 = await claim(cluster[2], holders[2], "d2", capacity=3, policy=SecondDevice.TAKEOVER)
    for book in (cluster[1], cluster[2]):
        full = claim(book, holders[3], "d3", capacity=3, policy=SecondDevice.TAKEOVER)
        assert await refusal(full) is RefusalCode.GROUP_FULL
    cluster[2].release(on_2, 0.0, dropped=False)
    await cluster[2].flush()
    await claim(cluster[1], holders[3], "d3", capacity=3, policy=SecondDevice.TAKEOVER)
    assert all(h.evicted == [] for h in holders) and len(on_1) == 2
    assert await cluster[2].in_use("reg:1", 0.0) == 3


async def test_a_dropped_seat_is_kept_for_the_grace_for_its_own_client_key_only(
    cluster: Cluster,
) -> None:
    seat = await claim(cluster[1], Holder(), "laptop")
    cluster[1].release(seat, 0.0, dropped=True)
    await cluster[1].flush()
    assert await cluster[2].in_use("reg:1", 0.0) == 1  # kept
    assert await refusal(claim(cluster[2], Holder(), "phone")) is RefusalCode.TICKET_IN_USE
    back = await claim(cluster[2], Holder(), "laptop")  # its own device, on another worker
    cluster[2].release(back, 0.0, dropped=True)
    await cluster[2].flush()
    assert await refusal(claim(cluster[1], Holder(), "phone")) is RefusalCode.TICKET_IN_USE
    await asyncio.sleep(0.7)  # the grace (0.6 s) on the Redis clock
    assert await cluster[1].in_use("reg:1", 0.0) == 0
    await claim(cluster[1], Holder(), "phone")


async def test_a_dead_workers_seats_are_dropped_then_free(cluster: Cluster) -> None:
    holder = Holder()
    await claim(cluster[2], holder, "laptop")
    await claim(cluster[2], Holder(), "g0", ticket="reg:2", capacity=2)
    assert await cluster[1].forget_worker(2) == 2
    assert holder.evicted == []  # it is gone with its worker; nobody is told
    assert await refusal(claim(cluster[1], Holder(), "phone")) is RefusalCode.TICKET_IN_USE
    await claim(cluster[1], Holder(), "laptop")  # the same device, reconnected elsewhere
    await asyncio.sleep(0.7)
    assert await cluster[1].in_use("reg:2", 0.0) == 0  # the group seat is free after the grace
    assert await cluster[1].forget_worker(2) == 0  # nothing left of it


async def test_a_worker_started_again_under_its_id_drops_the_seats_of_its_former_life(
    cluster: Cluster,
) -> None:
    await claim(cluster[2], Holder(), "laptop")
    assert await refusal(claim(cluster[1], Holder(), "laptop")) is RefusalCode.TICKET_IN_USE
    again = RedisSeats(
        cluster.clients[1], worker_id=2, evict_remote=cluster[2].evict_remote, grace=0.6
    )
    await again.start()  # worker 2 died and came back
    try:
        assert await cluster[1].in_use("reg:1", 0.0) == 1  # kept for its device ...
        assert await refusal(claim(cluster[1], Holder(), "phone")) is RefusalCode.TICKET_IN_USE
        await claim(cluster[1], Holder(), "laptop")  # ... which gets back in anywhere
    finally:
        await again.close()


async def test_a_revoked_ticket_ends_its_holders_on_every_worker(cluster: Cluster) -> None:
    holders = [Holder() for _ in range(3)]
    await claim(cluster[1], holders[0], "a", capacity=3)
    await claim(cluster[2], holders[1], "b", capacity=3)
    dropped = await claim(cluster[2], holders[2], "c", capacity=3)
    cluster[2].release(dropped, 0.0, dropped=True)
    await cluster[2].flush()
    assert await cluster[1].evict_all("reg:1", ByeReason.REVOKED) == 2
    assert [h.evicted for h in holders] == [[ByeReason.REVOKED], [ByeReason.REVOKED], []]
    assert await cluster[2].in_use("reg:1", 0.0) == 0


async def test_parallel_claims_on_two_workers_seat_exactly_the_capacity(cluster: Cluster) -> None:
    async def one(i: int) -> bool:
        try:
            await claim(cluster[1 + i % 2], Holder(), f"d{i}", capacity=5)
        except Refusal as refused:
            assert refused.code is RefusalCode.GROUP_FULL
            return False
        return True

    admitted = await asyncio.gather(*(one(i) for i in range(40)))
    assert sum(admitted) == 5
    assert await cluster[1].in_use("reg:1", 0.0) == 5


# ------------------------------------------------------------------------------ attempts


@pytest.fixture
async def limiters(redis_server: RedisServer) -> AsyncIterator[list[RedisAttempts]]:  # noqa: F811
    clients = [await _client(redis_server) for _ in range(2)]
    try:
        yield [
            RedisAttempts(c, per_client=10, per_event=100, window=60, timeout=1.0) for c in clients
        ]
    finally:
        for client in clients:
            await client.aclose()


def never() -> float:
    raise AssertionError("the shared limiter runs on the Redis clock")


async def test_parallel_wrong_guesses_on_two_workers_are_counted_before_checking(
    limiters: list[RedisAttempts],
) -> None:
    checked = 0

    async def guess(i: int) -> bool:
        nonlocal checked
        try:
            attempt = await limiters[i % 2].acquire("10.0.0.1", "e", never)
        except Refusal as refused:
            assert refused.code is RefusalCode.RATE_LIMITED and refused.retry_after
            return False
        checked += 1
        await asyncio.sleep(0.05)  # the check (a password hash) takes a while
        await attempt.failed(0.0)
        return True

    results = await asyncio.gather(*(guess(i) for i in range(50)))
    assert checked == sum(results) == 10
    # another address on the event is not held back, this one is (on both workers)
    await (await limiters[1].acquire("10.0.0.2", "e", never)).forgive()
    assert await limiters[0].retry_after("10.0.0.1", "e") > 50
    assert await limiters[1].retry_after("10.0.0.1", "other") > 50


async def test_attempts_in_flight_on_another_worker_are_waited_for(
    limiters: list[RedisAttempts],
) -> None:
    one, two = limiters
    one.per_client = two.per_client = 2
    held = [await one.acquire("10.0.0.1", "e", never) for _ in range(2)]
    with pytest.raises(Refusal):
        await two.reserve("10.0.0.1", "e", 0.0)  # no waiting: refused
    waiting = asyncio.ensure_future(two.acquire("10.0.0.1", "e", never))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # waits for the answers
    await held[0].forgive()  # a right credential: the place is given back
    third = await asyncio.wait_for(waiting, 2)
    await held[1].failed(0.0)
    await third.failed(0.0)
    started = time.monotonic()
    with pytest.raises(Refusal) as info:
        await two.acquire("10.0.0.1", "e", never)
    assert info.value.code is RefusalCode.RATE_LIMITED and info.value.retry_after == 60
    assert time.monotonic() - started < 1  # failures refuse at once


async def test_an_answer_here_wakes_one_waiter_at_once_and_a_refusal_reaches_them_all(
    limiters: list[RedisAttempts],
) -> None:
    limiter = limiters[0]
    limiter.per_client, limiter.poll = 2, 10.0  # looking again is slow: wake-ups must do it
    held = [await limiter.acquire("10.0.0.1", "e", never) for _ in range(2)]
    waiting = [asyncio.ensure_future(limiter.acquire("10.0.0.1", "e", never)) for _ in range(5)]
    await asyncio.sleep(1.5)  # their backoff has grown to about a second
    assert not any(w.done() for w in waiting)
    await held[0].forgive()  # one place back: one waiter takes it at once, the rest sleep
    done, rest = await asyncio.wait(waiting, timeout=0.3, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.sleep(0.1)
    assert len(done) == 1 and not any(w.done() for w in rest)
    await held[1].failed(0.0)
    await done.pop().result().failed(0.0)  # two failures fill the limit: all are refused
    refused, late = await asyncio.wait(rest, timeout=0.3)
    assert not late and {type(w.exception()) for w in refused} == {Refusal}
    assert not limiter._waiters


async def test_the_event_limit_holds_back_only_addresses_that_failed(
    limiters: list[RedisAttempts],
) -> None:
    one, two = limiters
    for limiter in limiters:
        limiter.per_client, limiter.per_event = 3, 5

    async def fail(limiter: RedisAttempts, client: str | None) -> None:
        attempt: Counted = await limiter.reserve(client, "e", 0.0)
        await attempt.failed(0.0)

    for _ in range(3):
        await fail(one, "1.2.3.4")
    assert 55 <= await two.retry_after("1.2.3.4", "e") <= 60
    assert await two.retry_after("5.6.7.8", "e") == 0
    await fail(two, "5.6.7.8")
    await fail(one, "5.6.7.8")
    assert 55 <= await one.retry_after("5.6.7.8", "e") <= 60  # the event's limit
    assert await one.retry_after("9.9.9.9", "e") == 0  # has not mistyped: not held back
    await fail(two, "9.9.9.9")
    assert await one.retry_after("9.9.9.9", "e") > 0
    assert await one.retry_after(None, "e") > 0  # an unknown address counts as failed
    assert await one.retry_after("9.9.9.9", "other") == 0
    # IPv6 addresses count by /64
    await fail(one, "2001:db8::1")
    assert await two.retry_after("2001:db8::2", "e") > 0


async def test_pending_attempts_of_a_killed_worker_expire(redis_server: RedisServer) -> None:  # noqa: F811
    dying_client, client = await _client(redis_server), await _client(redis_server)
    dying = RedisAttempts(dying_client, per_client=2, pending_ttl=0.5, timeout=1.0)
    alive = RedisAttempts(client, per_client=2, pending_ttl=0.5, max_wait=5, timeout=1.0)
    try:
        for _ in range(2):
            await dying.acquire("10.0.0.1", "e", never)  # never answered: the worker dies
        await dying_client.aclose()
        with pytest.raises(Refusal):
            await alive.reserve("10.0.0.1", "e", 0.0)
        started = time.monotonic()
        attempt = await alive.acquire("10.0.0.1", "e", never)  # waits out their TTL
        assert 0.2 < time.monotonic() - started < 2
        await attempt.forgive()
        assert await alive.retry_after("10.0.0.1", "e") == 0
    finally:
        await client.aclose()


async def test_an_uncounted_attempt_touches_nothing(limiters: list[RedisAttempts]) -> None:
    limiter = limiters[0]
    limiter.per_client = 1
    free = limiter.uncounted()
    await free.failed(0.0)
    await free.forgive()
    assert await limiter.retry_after("10.0.0.1", "e") == 0
    held = await limiter.acquire("10.0.0.1", "e", never)
    await limiter.uncounted().forgive()
    assert await limiter.retry_after("10.0.0.1", "e") == 1
    await held.forgive()
    await held.failed(0.0)  # resolved once only
    assert await limiter.retry_after("10.0.0.1", "e") == 0


async def test_settings_that_cannot_work_are_refused(cluster: Cluster) -> None:
    client = cluster.clients[0]
    for bad in ({"check_interval": 0}, {"timeout": -1}, {"grace": -1}, {"settle": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            RedisSeats(client, worker_id=3, evict_remote=cluster[1].evict_remote, **bad)  # type: ignore[arg-type]
    for wrong in ({"per_client": 0}, {"window": 0}, {"pending_ttl": -1}, {"poll": 0}):
        with pytest.raises(ValueError, match=next(iter(wrong))):
            RedisAttempts(client, **wrong)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ Redis down


async def test_redis_down_refuses_with_a_retryable_code_and_back_it_works(
    cluster: Cluster,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    limiter = RedisAttempts(cluster.clients[0], timeout=1.0)
    held = await claim(cluster[1], Holder(), "laptop", ticket="reg:9")
    redis_server.stop()
    started = time.monotonic()
    for decision in (
        claim(cluster[1], Holder(), "phone"),
        limiter.acquire("10.0.0.1", "e", never),
        limiter.reserve("10.0.0.1", None, 0.0),
    ):
        with pytest.raises(Refusal) as info:
            await decision  # type: ignore[operator]
        assert info.value.code is RefusalCode.UNAVAILABLE and info.value.retry_after
        assert wire_code(info.value.code) is ErrorCode.UNAVAILABLE
    assert time.monotonic() - started < 5  # bounded: refused, not hung
    # a seat check that cannot be made trusts this worker's own knowledge; a release waits
    assert await cluster[1].holds(held)
    cluster[1].release(held, 0.0, dropped=False)
    redis_server.start()  # empty, as after a restart without persistence
    await asyncio.wait_for(cluster[1].flush(), 10)  # the release got through
    await asyncio.sleep(SETTLE)
    seat = await claim(cluster[1], Holder(), "phone")
    assert await cluster[2].holds(seat)
    await (await limiter.acquire("10.0.0.1", "e", never)).failed(0.0)
    assert await limiter.retry_after("10.0.0.1", "e") == 0  # 1 of 10


async def test_after_redis_lost_its_data_live_seats_are_put_back_before_decisions(
    cluster: Cluster,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    holder = Holder()
    seat = await claim(cluster[2], holder, "laptop")
    revoked = Holder()
    await claim(cluster[2], revoked, "x", ticket="inv:7")
    redis_server.stop()
    redis_server.start()  # restarted without persistence: every seat is gone
    # worker 1 decides first: no decision until worker 2 has had time to put its seat back
    assert await refusal(claim(cluster[1], Holder(), "phone")) is RefusalCode.UNAVAILABLE
    assert await cluster[2].holds(seat)  # meanwhile the holder is trusted
    # the first decision made is right
    assert await decided(lambda: claim(cluster[1], Holder(), "phone")) is RefusalCode.TICKET_IN_USE
    assert await cluster[1].in_use("reg:1", 0.0) == 1 and holder.evicted == []
    # a revocation reaches a seat that was put back, on the other worker
    assert await cluster[1].evict_all("inv:7", ByeReason.REVOKED) == 1
    assert revoked.evicted == [ByeReason.REVOKED]


# ------------------------------------------------------------------------------ the gate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "data") as s:
        yield s


@pytest.fixture
async def gates(cluster: Cluster, store: Store) -> AsyncIterator[dict[int, Ticketing]]:
    """Two workers' gates on one database, sharing seats and limits through Redis."""
    yield {
        worker_id: Ticketing(
            store,
            clock=lambda: NOW + timedelta(minutes=50),
            attempts=RedisAttempts(client, timeout=1.0),
            seats=cluster[worker_id],
        )
        for worker_id, client in zip((1, 2), cluster.clients, strict=True)
    }


async def paid_code(store: Store, policy: SecondDevice, seats: int = 1) -> tuple[Event, str]:
    event = await store.create_event(
        "Paid",
        NOW + timedelta(minutes=60),
        access_type="paid",
        duration_minutes=60,
        join_window_minutes=5,
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
            seats=seats,
            amount_minor=2500 * seats,
            currency="EUR",
            provider=records.PaymentProvider.MANUAL,
            capacity=None,
        )
    )
    confirmed = await store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code is not None
    return event, confirmed.code


async def enter(gate: Ticketing, event: Event, code: str | None, key: str, holder: Holder) -> Grant:
    return await gate.admit(event, code, client="10.0.0.1", client_key=key, holder=holder)


async def test_a_single_use_code_stays_single_use_across_workers(
    gates: dict[int, Ticketing], store: Store
) -> None:
    event, code = await paid_code(store, SecondDevice.REFUSE)
    first = await enter(gates[2], event, code, "laptop", Holder())
    with pytest.raises(Refusal) as info:
        await enter(gates[1], event, code, "phone", Holder())
    assert info.value.code is RefusalCode.TICKET_IN_USE
    gates[2].release(first, dropped=False)
    await gates[2].seats.flush()  # type: ignore[attr-defined]
    await enter(gates[1], event, code, "phone", Holder())


async def test_takeover_across_workers_through_the_gate(
    gates: dict[int, Ticketing], store: Store
) -> None:
    event, code = await paid_code(store, SecondDevice.TAKEOVER)
    first_holder = Holder()
    first = await enter(gates[2], event, code, "laptop", first_holder)
    second = await enter(gates[1], event, code, "phone", Holder())
    assert first_holder.evicted == [ByeReason.TAKEN_OVER]
    assert not await gates[2].holds(first) and await gates[1].holds(second)
    # the organiser cancels the reservation on worker 2: the holder on worker 1 leaves
    assert second.registration_id is not None
    assert await gates[2].end_ticket(registration_id=second.registration_id) == 1


async def test_wrong_codes_on_two_workers_share_one_limit(
    gates: dict[int, Ticketing], store: Store
) -> None:
    event, _code = await paid_code(store, SecondDevice.REFUSE)
    codes = []
    for i in range(12):
        with pytest.raises(Refusal) as info:
            await enter(gates[1 + i % 2], event, "AAAA-BBBB-CCCC", "x", Holder())
        codes.append(info.value.code)
    assert codes == [RefusalCode.BAD_CREDENTIAL] * 10 + [RefusalCode.RATE_LIMITED] * 2


async def test_redis_down_refuses_entries_that_need_it_and_recovers(
    gates: dict[int, Ticketing],
    store: Store,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    event, code = await paid_code(store, SecondDevice.REFUSE)
    open_event = await store.create_event("Open", None)
    redis_server.stop()
    with pytest.raises(Refusal) as info:
        await enter(gates[1], event, code, "laptop", Holder())
    assert info.value.code is RefusalCode.UNAVAILABLE
    assert "try again" in info.value.message
    # what needs no shared decision still works: keys, open events
    assert (await enter(gates[1], event, event.host_key, "h", Holder())).role is Role.HOST
    assert (await enter(gates[2], open_event, None, "o", Holder())).role is Role.ATTENDEE
    redis_server.start()
    with pytest.raises(Refusal) as info:  # the seats' new epoch settles first
        await enter(gates[1], event, code, "laptop", Holder())
    assert info.value.code is RefusalCode.UNAVAILABLE
    grants: list[Grant] = []

    async def laptop() -> None:
        grants.append(await enter(gates[1], event, code, "laptop", Holder()))

    assert await decided(laptop) is None
    grant = grants[0]
    assert await gates[2].holds(grant)
    with pytest.raises(Refusal) as info:
        await enter(gates[2], event, code, "phone", Holder())
    assert info.value.code is RefusalCode.TICKET_IN_USE


async def test_sign_ins_are_limited_across_workers(cluster: Cluster) -> None:
    async def bus(worker_id: int, seat_id: str, reason: ByeReason) -> None:
        raise AssertionError("no seats here")

    one, two = (
        login_limiter(SharedTicketing(client, worker_id, bus))
        for worker_id, client in enumerate(cluster.clients, 1)
    )
    assert isinstance(one, RedisAttempts) and (one.per_client, one.window) == (5, 60.0)
    for i in range(5):
        await (await (one, two)[i % 2].reserve("10.0.0.1", None, 0.0)).failed(0.0)
    with pytest.raises(Refusal) as info:
        await two.reserve("10.0.0.1", None, 0.0)  # type: ignore[union-attr]
    assert info.value.code is RefusalCode.RATE_LIMITED
    # the entry limiter counts apart
    assert await RedisAttempts(cluster.clients[0]).retry_after("10.0.0.1", None) == 0
