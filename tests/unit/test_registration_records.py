"""Registration's records on both dialects (SQLite and a real PostgreSQL server): the
migration that adds the waiting list and personal links keeps what was there; places and the
waiting list under two connections at once; promotion in order; erasure."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.postgres_server import ensure_key
from webinar.storage import migrations as migrations_module
from webinar.storage import store as store_module
from webinar.storage.db import Dialect
from webinar.storage.migrations import MIGRATIONS, script_for
from webinar.storage.store import SyncStore
from webinar.ticketing import records
from webinar.ticketing.records import PaymentProvider, RegistrationStatus


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    ensure_key(request.getfixturevalue("tmp_data_dir"))
    return url


@pytest.fixture
def core(tmp_data_dir: Path, database_url: str | None) -> Iterator[SyncStore]:
    store = SyncStore.open(tmp_data_dir, database_url)
    try:
        yield store
    finally:
        store.close()


def in_threads(
    data: Path, database_url: str | None, work: Callable[[SyncStore, int], Any]
) -> list[Any]:
    """``work`` at once on two threads, each with its own connection (two processes)."""
    start = threading.Barrier(2)

    def one(n: int) -> Any:
        store = SyncStore.open(data, database_url)
        try:
            start.wait()
            return work(store, n)
        finally:
            store.close()

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, range(2)))


def free(core: SyncStore, event_id: str, who: str, **kw: Any) -> records.Registration:
    return records.add_registration(
        core.connection,
        event_id,
        first_name=who,
        last_name="X",
        email=f"{who}@example.org",
        seats=kw.pop("seats", 1),
        amount_minor=kw.pop("amount_minor", 0),
        currency=kw.pop("currency", None),
        provider=PaymentProvider.MANUAL,
        capacity=kw.pop("capacity", None),
        status=kw.pop("status", RegistrationStatus.CONFIRMED),
        **kw,
    )


def _waiting_list_migration() -> int:
    """The schema version that brought the waiting list (its position in MIGRATIONS)."""
    for number, migration in enumerate(MIGRATIONS, start=1):
        if "waitlisted" in script_for(migration, Dialect.SQLITE):
            return number
    raise AssertionError("no migration adds 'waitlisted'")


def test_the_migration_keeps_registrations_and_their_reminders(
    tmp_data_dir: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = _waiting_list_migration()
    with monkeypatch.context() as patch:
        patch.setattr(migrations_module, "MIGRATIONS", MIGRATIONS[: number - 1])
        # (the columns sealed then: the personal link's came with the migration, the live
        # stream's key later)
        patch.setattr(
            store_module,
            "SEALED_COLUMNS",
            tuple(c for c in store_module.SEALED_COLUMNS if c[2] not in ("pass", "stream_key")),
        )
        with SyncStore.open(tmp_data_dir, database_url) as old:
            db = old.connection
            db.execute(
                "INSERT INTO events (event_id, title, presenter_key, host_key, created_at,"
                " access_type) VALUES ('123456789', 'Old', 'pk', 'hk', '2026-01-01T00:00:00Z',"
                " 'paid')"
            )
            db.execute(
                "INSERT INTO registrations (event_id, first_name, last_name, email, seats,"
                " status, amount_minor, currency, provider, created_at, updated_at)"
                " VALUES ('123456789', 'Grace', 'H', 'g@example.org', 2, 'confirmed', 100,"
                " 'EUR', 'manual', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
            )
            db.execute(
                "INSERT INTO reminders (event_id, registration_id, due_at)"
                " VALUES ('123456789', 1, '2030-01-01T00:00:00Z')"
            )
            with pytest.raises(Exception, match=r"(?i)check"):
                db.execute(
                    "INSERT INTO registrations (event_id, first_name, last_name, email, status,"
                    " created_at, updated_at) VALUES ('123456789', 'a', 'b', 'c@d.e',"
                    " 'waitlisted', 'x', 'x')"
                )
    with SyncStore.open(tmp_data_dir, database_url) as core:
        db = core.connection
        (old,) = records.list_registrations(db, "123456789")
        assert (old.name, old.seats, old.status, old.join_pass, old.consent) == (
            "Grace H",
            2,
            RegistrationStatus.CONFIRMED,
            None,
            None,
        )
        assert [r.registration_id for r in records.list_reminders(db, "123456789")] == [1]
        given = records.ensure_pass(db, old.registration_id)
        assert given is not None and given.join_pass is not None
        assert records.registration_by_pass(db, "123456789", given.join_pass) == given
        again = records.ensure_pass(db, old.registration_id)
        assert again is not None and again.join_pass == given.join_pass  # given once
        # the loosened check takes the new status and still refuses nonsense
        waiting = free(core, "123456789", "wait", capacity=1, waiting_list=True)
        assert waiting.status is RegistrationStatus.WAITLISTED
        with pytest.raises(Exception, match=r"(?i)check"):
            db.execute("UPDATE registrations SET status = 'bogus' WHERE registration_id = 1")
        access = records.get_access(db, "123456789")
        assert (access.registration_required, access.waiting_list, access.privacy_text) == (
            False,
            False,
            "",
        )


def test_places_and_the_waiting_list_under_two_connections(
    core: SyncStore, tmp_data_dir: Path, database_url: str | None
) -> None:
    """Two connections register at once: exactly ``capacity`` are confirmed, the others
    wait, and the list's order is the order they were written in."""
    event = core.create_event("Full", None)
    capacity, tries = 5, 12

    def book(store: SyncStore, n: int) -> list[str]:
        return [
            free(
                store, event.event_id, f"p{n}-{i}", capacity=capacity, waiting_list=True
            ).status.value
            for i in range(tries)
        ]

    statuses = [s for one in in_threads(tmp_data_dir, database_url, book) for s in one]
    assert statuses.count("confirmed") == capacity
    assert statuses.count("waitlisted") == 2 * tries - capacity
    regs = records.list_registrations(core.connection, event.event_id)
    waiting = [r for r in regs if r.status is RegistrationStatus.WAITLISTED]
    assert [records.waiting_position(core.connection, r) for r in waiting] == list(
        range(1, len(waiting) + 1)
    )
    # nobody jumps the queue: once people wait, a newcomer waits too, even with a place free
    first = next(r for r in regs if r.status is RegistrationStatus.CONFIRMED)
    records.end_registration(core.connection, first.registration_id, RegistrationStatus.CANCELLED)
    late = free(core, event.event_id, "late", capacity=capacity, waiting_list=True)
    assert late.status is RegistrationStatus.WAITLISTED
    promoted = records.promote_waiting(core.connection, event.event_id, capacity, paid=False)
    assert [r.registration_id for r in promoted] == [waiting[0].registration_id]
    assert promoted[0].status is RegistrationStatus.CONFIRMED and promoted[0].confirmed_at
    assert records.places_taken(core.connection, event.event_id) == capacity


def test_promotion_in_order_stops_at_one_that_does_not_fit(core: SyncStore) -> None:
    event = core.create_event("Paid", None, access_type="paid")
    paid: dict[str, Any] = {"amount_minor": 100, "currency": "EUR"}
    pending = RegistrationStatus.PENDING
    first = free(core, event.event_id, "a", capacity=3, seats=3, status=pending, **paid)
    group = free(
        core, event.event_id, "g", capacity=3, seats=2, status=pending, waiting_list=True, **paid
    )
    single = free(
        core, event.event_id, "s", capacity=3, seats=1, status=pending, waiting_list=True, **paid
    )
    assert (group.status, single.status) == (RegistrationStatus.WAITLISTED,) * 2
    records.end_registration(core.connection, first.registration_id, RegistrationStatus.CANCELLED)
    # 3 places free: the group of 2 and then the single fit, in that order; paid ones pend
    promoted = records.promote_waiting(core.connection, event.event_id, 3, paid=True)
    assert [(r.first_name, r.status) for r in promoted] == [("g", pending), ("s", pending)]
    # with one place, a group of two blocks the queue (the one behind it does not jump it)
    other = core.create_event("Paid 2", None, access_type="paid")
    big = free(core, other.event_id, "b", capacity=1, seats=1, status=pending, **paid)
    pair = free(
        core, other.event_id, "p", capacity=1, seats=2, status=pending, waiting_list=True, **paid
    )
    solo = free(
        core, other.event_id, "o", capacity=1, seats=1, status=pending, waiting_list=True, **paid
    )
    records.end_registration(core.connection, big.registration_id, RegistrationStatus.CANCELLED)
    assert records.promote_waiting(core.connection, other.event_id, 1, paid=True) == []
    assert [records.waiting_position(core.connection, r) for r in (pair, solo)] == [1, 2]


def test_a_full_event_without_a_waiting_list_refuses(core: SyncStore) -> None:
    event = core.create_event("Small", None)
    free(core, event.event_id, "a", capacity=1)
    with pytest.raises(ValueError, match="the event is full"):
        free(core, event.event_id, "b", capacity=1)
    paid = core.create_event("Paid", None, access_type="paid")
    free(core, paid.event_id, "a", capacity=1, status=RegistrationStatus.PENDING, amount_minor=5)
    with pytest.raises(ValueError, match="sold out"):
        free(core, paid.event_id, "b", capacity=1, status=RegistrationStatus.PENDING)


def test_erasing_people_forgets_links_and_consents(core: SyncStore) -> None:
    event = core.create_event("Gone", None)
    reg = free(core, event.event_id, "a", consent="We keep your e-mail.")
    assert reg.consent == "We keep your e-mail." and reg.join_pass is not None
    assert records.registration_by_pass(core.connection, event.event_id, reg.join_pass) == reg
    records.erase_people(core.connection, event.event_id)
    (erased,) = records.list_registrations(core.connection, event.event_id)
    assert (erased.email, erased.join_pass, erased.consent) == ("", None, None)
    assert records.registration_by_pass(core.connection, event.event_id, reg.join_pass) is None
    after = records.ensure_pass(core.connection, reg.registration_id)  # nobody to send it to
    assert after is not None and after.join_pass is None


def test_settings_round_trip_and_their_checks(core: SyncStore) -> None:
    event = core.create_event("Settings", None)
    access = records.EventAccess(
        event.event_id,
        registration_required=True,
        waiting_list=True,
        registration_redirect_url="https://example.org/next",
        privacy_text="Line one\nLine two",
        privacy_url="https://example.org/privacy",
    )
    records.put_access(core.connection, access)
    assert records.get_access(core.connection, event.event_id) == access
    assert records.check_privacy_text("  a   b \n\n\n\n c ") == "a b\n\nc"
    with pytest.raises(ValueError, match="at most 2000"):
        records.check_privacy_text("x" * 2001)
    for bad in ("javascript:alert(1)", "ftp://x", "https://a b", "https://" + "a" * 2000):
        with pytest.raises(ValueError, match="http\\(s\\) URL"):
            records.check_registration_url(bad)
    assert records.check_registration_url(" ") is None
    assert records.looks_like_pass(records.new_pass())
    assert not records.looks_like_pass("correct horse battery")
