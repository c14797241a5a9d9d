"""Device slots count live connections; entry attempts are counted before they are checked."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from webinar.config import Config, TicketingConfig
from webinar.rooms.reasons import ByeReason
from webinar.ticketing import Refusal, RefusalCode, SecondDevice
from webinar.ticketing.limiter import AttemptLimiter
from webinar.ticketing.seats import Seats


class Holder:
    def __init__(self) -> None:
        self.evicted: list[ByeReason] = []

    def evict(self, reason: ByeReason) -> None:
        self.evicted.append(reason)


def claim(seats: Seats, holder: Holder, key: str, **kw: object) -> object:
    args: dict[str, object] = {"capacity": 1, "policy": SecondDevice.REFUSE, "now": 0.0}
    args.update(kw)
    return seats.claim("t", client_key=key, holder=holder, **args)  # type: ignore[arg-type]


def test_a_second_live_connection_with_the_same_client_key_is_another_device() -> None:
    seats = Seats()
    first = Holder()
    claim(seats, first, "same")
    with pytest.raises(Refusal) as info:
        claim(seats, Holder(), "same")
    assert info.value.code is RefusalCode.TICKET_IN_USE
    assert seats.in_use("t", 0.0) == 1

    second = Holder()
    claim(seats, second, "same", policy=SecondDevice.TAKEOVER)
    assert first.evicted == [ByeReason.TAKEN_OVER]
    assert seats.in_use("t", 0.0) == 1

    group = Seats()
    for _ in range(2):
        claim(group, Holder(), "same", capacity=2)
    with pytest.raises(Refusal) as info:
        claim(group, Holder(), "same", capacity=2)
    assert info.value.code is RefusalCode.GROUP_FULL


def test_a_dropped_slot_or_a_resumed_connection_is_taken_back() -> None:
    seats = Seats(grace=60)
    first = Holder()
    seat = claim(seats, first, "laptop")
    seats.release(seat, 1.0, dropped=True)  # type: ignore[arg-type]
    with pytest.raises(Refusal):
        claim(seats, Holder(), "phone", now=2.0)
    back = Holder()
    claim(seats, back, "laptop", now=2.0)
    resumed = Holder()
    claim(seats, resumed, "laptop", now=3.0, resumes=lambda old: old is back)
    assert back.evicted == []  # the room replaces a resumed connection, not ticketing
    assert seats.in_use("t", 3.0) == 1


async def test_attempts_in_flight_count_and_wait_rather_than_pass() -> None:
    limiter = AttemptLimiter(per_client=2, per_event=100, window=60)
    now = 0.0
    a = await limiter.acquire("10.0.0.1", "e", lambda: now)
    b = await limiter.acquire("10.0.0.1", "e", lambda: now)
    assert limiter.retry_after("10.0.0.1", "e", now) == 1  # both places taken while checked
    with pytest.raises(Refusal):
        limiter.reserve("10.0.0.1", "e", now)
    third = asyncio.ensure_future(limiter.acquire("10.0.0.1", "e", lambda: now))
    await asyncio.sleep(0)
    assert not third.done()  # waits for the answers
    a.forgive()  # right: given back
    c = await asyncio.wait_for(third, 1)
    b.failed(now)
    c.failed(now)
    with pytest.raises(Refusal) as info:
        await limiter.acquire("10.0.0.1", "e", lambda: now)
    assert info.value.code is RefusalCode.RATE_LIMITED and info.value.retry_after == 60


async def test_ipv6_addresses_share_their_64_and_events_have_a_ceiling() -> None:
    limiter = AttemptLimiter(per_client=2, per_event=3, window=60)
    limiter.failed("2001:db8::1", "e", 0)
    limiter.failed("2001:db8::2", "e", 0)
    assert limiter.retry_after("2001:db8::3", "e", 1) == 59
    assert limiter.retry_after("2001:db8:0:1::1", "e", 1) == 0
    limiter.failed("2001:db8:0:1::1", "e", 0)  # the event has had 3 now
    assert limiter.retry_after("2001:db8:0:1::1", "e", 1) == 59  # failed here: held back
    assert limiter.retry_after("192.0.2.1", "e", 1) == 0  # never failed: one try


def test_limits_come_from_the_configuration(tmp_path: Path) -> None:
    from webinar.http.tickets import make_ticketing

    config = dataclasses.replace(
        Config(data_dir=tmp_path),
        ticketing=TicketingConfig(wrong_entries_per_address=3, wrong_entries_per_event=7),
    )
    ticketing = make_ticketing(config, None)  # type: ignore[arg-type]
    assert (ticketing.limiter.per_client, ticketing.limiter.per_event) == (3, 7)
    with pytest.raises(ValueError):
        TicketingConfig(wrong_entries_per_event=0)
