"""Device slots count live connections; entry attempts are counted before they are checked."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from webinar.cli import main
from webinar.config import Config, TicketingConfig
from webinar.rooms.reasons import ByeReason
from webinar.storage import migrations as migrations_module
from webinar.storage.migrations import MIGRATIONS, SEALED_FROM
from webinar.storage.sealing import Sealer, SealingError, new_key
from webinar.storage.store import StoreError, SyncStore
from webinar.ticketing import Refusal, RefusalCode, SecondDevice, records
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


# ------------------------------------------------------------------------------ secrets at rest


def _raw(data: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(data / "webinar.sqlite3")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _make_version_8(data: Path) -> None:
    """A database as the release before sealing left it: plain keys, token and code."""
    data.mkdir(parents=True)
    conn = sqlite3.connect(data / "webinar.sqlite3", isolation_level=None)
    for script in MIGRATIONS[: SEALED_FROM - 1]:
        for statement in migrations_module._statements(script):
            conn.execute(statement)
    conn.execute(
        "INSERT INTO events (event_id, title, presenter_key, host_key, created_at, access_type)"
        " VALUES ('123456789', 'Old', 'plain-presenter-key', 'plain-host-key',"
        " '2026-01-01T00:00:00+00:00', 'paid')"
    )
    conn.execute(
        "INSERT INTO invitees (event_id, name, email, token, token_hash, created_at)"
        " VALUES ('123456789', 'Ada', 'ada@example.org', 'plain-token', 'h1', '2026-01-01')"
    )
    conn.execute(
        "INSERT INTO registrations (event_id, first_name, last_name, email, seats, status,"
        " amount_minor, currency, provider, code, code_hash, created_at, updated_at)"
        " VALUES ('123456789', 'G', 'H', 'g@example.org', 1, 'confirmed', 100, 'EUR',"
        " 'manual', '222233334444', 'h2', '2026-01-01', '2026-01-01')"
    )
    conn.execute(f"PRAGMA user_version = {SEALED_FROM - 1}")
    conn.close()


PLAIN = ("plain-presenter-key", "plain-host-key", "plain-token", "222233334444")


def _stored(data: Path) -> list[object]:
    return [
        *_raw(data, "SELECT presenter_key, host_key FROM events")[0],
        _raw(data, "SELECT token FROM invitees")[0][0],
        _raw(data, "SELECT code FROM registrations")[0][0],
    ]


def _opened(data: Path) -> list[object]:
    with SyncStore.open(data) as core:
        event = core.get_event("123456789")
        assert event is not None
        invitee = records.get_invitee(core.connection, 1)
        registration = records.get_registration(core.connection, 1)
    assert invitee is not None and registration is not None
    return [event.presenter_key, event.host_key, invitee.token, registration.code]


def test_the_migration_seals_existing_secrets_with_a_key_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _make_version_8(data)
    assert _opened(data) == list(PLAIN)  # the store reads them as before
    stored = _stored(data)
    assert all(isinstance(v, str) and v.startswith("s1.") for v in stored), stored
    assert not set(PLAIN) & set(stored)
    key = data / "secrets.key"
    assert key.stat().st_mode & 0o777 == 0o600
    dump = "\n".join(sqlite3.connect(data / "webinar.sqlite3").iterdump())
    assert not any(p in dump for p in PLAIN)
    # the database without its key opens nothing
    key.unlink()
    with pytest.raises(StoreError, match="secrets key is missing"):
        SyncStore.open(data)


def test_rotation_re_seals_every_secret_in_one_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    _make_version_8(data)
    _opened(data)
    old_key = (data / "secrets.key").read_text()
    before = _stored(data)
    assert main(["secrets", "rotate", "--data-dir", str(data)]) == 0
    assert "Re-sealed 4 secrets" in capsys.readouterr().out
    new_key = (data / "secrets.key").read_text()
    assert new_key != old_key and len(new_key.split()) == 1
    after = _stored(data)
    assert all(a != b for a, b in zip(after, before, strict=True))
    assert _opened(data) == list(PLAIN)
    old = Sealer.from_texts(old_key.split())
    with pytest.raises(SealingError):
        old.unseal("token", str(after[2]))


def test_the_key_may_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    _make_version_8(data)
    monkeypatch.setenv("WEBINAR_SECRETS_KEY", new_key())
    assert _opened(data) == list(PLAIN)
    assert not (data / "secrets.key").exists()
    monkeypatch.setenv("WEBINAR_SECRETS_KEY", new_key())
    with pytest.raises(StoreError, match="does not open with the secrets key"):
        SyncStore.open(data)


async def test_a_failed_check_in_write_holds_no_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check-in is written before the place is taken: when the write fails, the code's
    place is not left held by an entry that never happened."""
    from datetime import UTC, datetime, timedelta

    from webinar.storage.store import Store
    from webinar.ticketing import Ticketing
    from webinar.ticketing.records import EventAccess, PaymentProvider

    async with Store(tmp_path / "data") as store:
        now = datetime.now(UTC)
        event = await store.create_event(
            "Paid", now + timedelta(minutes=5), access_type="paid", join_window_minutes=10
        )
        await store.run(
            lambda core: records.put_access(
                core.connection,
                EventAccess(
                    event.event_id,
                    price_minor=100,
                    currency="EUR",
                    second_device=SecondDevice.REFUSE,
                ),
            )
        )
        reg = await store.run(
            lambda core: records.add_registration(
                core.connection,
                event.event_id,
                first_name="G",
                last_name="H",
                email="g@example.org",
                seats=1,
                amount_minor=100,
                currency="EUR",
                provider=PaymentProvider.MANUAL,
                capacity=None,
            )
        )
        confirmed = await store.run(
            lambda core: records.confirm_registration(core.connection, reg.registration_id)
        )
        assert confirmed is not None and confirmed.code
        ticketing = Ticketing(store)

        def broken(*_args: object) -> bool:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(records, "check_in", broken)
        with pytest.raises(sqlite3.OperationalError):
            await ticketing.admit(
                event, confirmed.code, client="10.0.0.1", client_key="a", holder=Holder()
            )
        monkeypatch.undo()
        grant = await ticketing.admit(
            event, confirmed.code, client="10.0.0.1", client_key="b", holder=Holder()
        )
        assert grant.registration_id == reg.registration_id


async def test_an_uncounted_attempt_holds_no_place_and_resolves_to_nothing() -> None:
    limiter = AttemptLimiter(per_client=1, per_event=100, window=60)
    free = limiter.uncounted()
    free.failed(0.0)
    free.forgive()
    assert limiter.retry_after("10.0.0.1", "e", 0.0) == 0  # nothing was counted
    held = await limiter.acquire("10.0.0.1", "e", lambda: 0.0)
    limiter.uncounted().forgive()  # does not give back anyone else's place
    assert limiter.retry_after("10.0.0.1", "e", 0.0) == 1
    held.forgive()


async def test_each_answer_wakes_one_waiter_and_a_refusal_reaches_them_all() -> None:
    limiter = AttemptLimiter(per_client=2, per_event=100, window=60)
    now = 0.0
    held = [await limiter.acquire("10.0.0.1", "e", lambda: now) for _ in range(2)]
    waiting = [
        asyncio.ensure_future(limiter.acquire("10.0.0.1", "e", lambda: now)) for _ in range(5)
    ]
    await asyncio.sleep(0)
    held[0].forgive()  # one place back: one waiter (the first) takes it, the rest sleep
    for _ in range(3):
        await asyncio.sleep(0)
    assert [w.done() for w in waiting] == [True, False, False, False, False]
    held[1].failed(now)
    (await waiting[0]).failed(now)  # two failures fill the limit: every waiter is refused
    for w in waiting[1:]:
        with pytest.raises(Refusal):
            await asyncio.wait_for(w, 1)
    assert not limiter._waiters
