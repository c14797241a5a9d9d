"""The store on both dialects: the same API on SQLite and on a real PostgreSQL server.

The PostgreSQL server is tests/postgres_server.py's (one per run, a fresh database per test).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.postgres_server import PostgresServer, ensure_key
from webinar.interaction import store as ist
from webinar.rooms.chat import ChatMessage
from webinar.rooms.qa import Question, QuestionState
from webinar.storage import sealing
from webinar.storage.db import to_format_style, transaction
from webinar.storage.migrations import MIGRATIONS, ROWID_TABLES
from webinar.storage.records import SessionRecord, StoreUnavailable
from webinar.storage.store import DB_FILENAME, Store, SyncStore
from webinar.ticketing import records
from webinar.ticketing.records import PaymentProvider
from webinar.webhooks import records as hooks
from webinar.webhooks.signing import WebhookEvent


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None (the SQLite file) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    ensure_key(request.getfixturevalue("tmp_data_dir"))
    return url


@pytest.fixture
def opener(tmp_data_dir: Path, database_url: str | None) -> Iterator[Callable[[], SyncStore]]:
    """Opens connections to one store (each a SyncStore of its own), closed at the end."""
    opened: list[SyncStore] = []

    def open_one() -> SyncStore:
        core = SyncStore.open(tmp_data_dir, database_url)
        opened.append(core)
        return core

    yield open_one
    for core in opened:
        core.close()


@pytest.fixture
def core(opener: Callable[[], SyncStore]) -> SyncStore:
    return opener()


@pytest.fixture
def in_threads(
    tmp_data_dir: Path, database_url: str | None
) -> Callable[[Callable[[SyncStore], Any]], list[Any]]:
    """Runs ``work`` at once on two threads, each with its own connection (like two
    processes or two nodes); their results."""

    def run(work: Callable[[SyncStore], Any]) -> list[Any]:
        start = threading.Barrier(2)

        def one(_n: int) -> Any:
            core = SyncStore.open(tmp_data_dir, database_url)
            try:
                start.wait()
                return work(core)
            finally:
                core.close()

        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(one, range(2)))

    return run


def test_placeholders_become_format_style() -> None:
    assert to_format_style("SELECT ? , '?%' , \"a?\" WHERE x LIKE '5%' AND y = ?") == (
        "SELECT %s , '?%%' , \"a?\" WHERE x LIKE '5%%' AND y = %s"
    )


def test_events_users_and_sessions(core: SyncStore) -> None:
    assert core.schema_version() == len(MIGRATIONS)
    owner = core.create_user("Alice", "hash-1", "organiser")
    with pytest.raises(ValueError, match="exists already"):
        core.create_user("ALICE", "hash-2", "admin")  # user names ignore case on both
    assert core.get_user_by_name("alice") == owner
    core.create_user("bob", "hash-3", "admin")
    assert [u.username for u in core.list_users()] == ["Alice", "bob"]

    first = core.create_event("First", datetime(2031, 3, 30, 9, tzinfo=UTC), owner_id=owner.user_id)
    second = core.create_event("Second", None, access_type="token", camera_limit=7)
    assert core.get_event(first.event_id) == first
    assert core.get_event(first.display_id) == first
    assert [e.event_id for e in core.list_events()] == [first.event_id, second.event_id]
    assert core.list_events(owner.user_id) == [first]
    assert core.count_events() == 2
    # keys are sealed at rest: the stored text is not the key
    (stored,) = core.connection.execute(
        "SELECT presenter_key FROM events WHERE event_id = ?", (first.event_id,)
    ).fetchone()
    assert stored != first.presenter_key and stored.startswith("s1.")

    now = datetime.now(UTC)
    record = SessionRecord("token-hash", owner.user_id, "csrf", now, now + timedelta(hours=1))
    core.create_session(record)
    assert core.get_session("token-hash", now) == (record, owner)
    assert core.get_session("token-hash", now + timedelta(hours=2)) is None  # expired: gone
    core.create_session(record)
    core.set_password_hash("ALICE", "hash-4")  # a new password ends the sessions
    assert core.get_session("token-hash", now) is None
    core.delete_user("Bob")
    assert [u.username for u in core.list_users()] == ["Alice"]


def test_tickets_and_codes(core: SyncStore) -> None:
    event = core.create_event("Paid", None, access_type="paid")
    conn = core.connection
    invitee = records.add_invitee(conn, event.event_id, "Ann Example", "ann@example.org")
    with pytest.raises(ValueError, match="invited already"):
        records.add_invitee(conn, event.event_id, "Ann Again", "ANN@example.org")
    assert records.invitee_by_token(conn, event.event_id, invitee.token) == invitee

    reg = records.add_registration(
        conn,
        event.event_id,
        first_name="Ann",
        last_name="Example",
        email="ann@example.org",
        seats=2,
        amount_minor=1500,
        currency="EUR",
        provider=PaymentProvider.STRIPE,
        capacity=10,
        answers={"Company": "Example"},
    )
    assert reg.code is None
    outcome, confirmed = records.apply_payment_once(conn, "stripe", "wh-1", reg.registration_id)
    assert outcome == "applied" and confirmed is not None and confirmed.code is not None
    # the same webhook again changes nothing, and the store goes on working after it
    assert records.apply_payment_once(conn, "stripe", "wh-1", reg.registration_id) == (
        "duplicate",
        None,
    )
    assert records.record_webhook(conn, "stripe", "wh-2", "ignored")
    assert not records.record_webhook(conn, "stripe", "wh-2", "ignored")
    found = records.registration_by_code(conn, event.event_id, confirmed.code)
    assert found == confirmed and found.answers == {"Company": "Example"}
    at = datetime.now(UTC)
    assert records.check_in(conn, reg.registration_id, at)
    assert not records.check_in(conn, reg.registration_id, at)  # a code admits once


def test_seats_are_never_oversold_by_two_connections(
    core: SyncStore, in_threads: Callable[[Callable[[SyncStore], Any]], list[Any]]
) -> None:
    """Two connections (two processes, or two nodes) book at once: the read-then-write
    seat check runs under the write lock, so exactly ``capacity`` seats are sold."""
    event = core.create_event("Full", None, access_type="paid")
    capacity, tries = 7, 20
    who = iter("ab")

    def book(conn_core: SyncStore) -> int:
        name = next(who)
        sold = 0
        for n in range(tries):
            try:
                records.add_registration(
                    conn_core.connection,
                    event.event_id,
                    first_name=name,
                    last_name=str(n),
                    email=f"{name}{n}@example.org",
                    seats=1,
                    amount_minor=0,
                    currency=None,
                    provider=PaymentProvider.MANUAL,
                    capacity=capacity,
                )
                sold += 1
            except ValueError as exc:
                assert "sold out" in str(exc)
        return sold

    assert sum(in_threads(book)) == capacity
    assert len(records.list_registrations(core.connection, event.event_id)) == capacity


def test_a_code_checks_in_once_across_connections(
    core: SyncStore, in_threads: Callable[[Callable[[SyncStore], Any]], list[Any]]
) -> None:
    event = core.create_event("Once", None, access_type="paid")
    regs = []
    for n in range(30):
        reg = records.add_registration(
            core.connection,
            event.event_id,
            first_name="P",
            last_name=str(n),
            email=f"p{n}@example.org",
            seats=1,
            amount_minor=0,
            currency=None,
            provider=PaymentProvider.MANUAL,
            capacity=None,
        )
        regs.append(reg.registration_id)
    at = datetime.now(UTC)
    a, b = in_threads(lambda c: [r for r in regs if records.check_in(c.connection, r, at)])
    assert sorted(a + b) == regs and not set(a) & set(b)


def test_interaction_writes(core: SyncStore) -> None:
    event = core.create_event("Talk", None)
    eid = event.event_id
    for seq in (1, 2):
        ist.save_chat(
            core, eid, ChatMessage(f"m{seq}", seq, "p1", "Ann", "attendee", f"hi {seq}", 10.0 + seq)
        )
    ist.delete_chat(core, "m1", 20.0, "host")
    question = Question(
        question_id="q1",
        participant_id="p1",
        author_key="k1",
        name="Ann",
        text="Why?",
        anonymous=True,
        asked_at=12.5,
        message_id=None,
        state=QuestionState.NEW,
    )
    ist.save_question(core, eid, question)
    ist.set_vote(core, "q1", "k2", True, 13.0)
    ist.set_vote(core, "q1", "k2", True, 13.5)  # a second vote of one person counts once
    ist.save_settings(
        core,
        eid,
        chat_enabled=False,
        slow_mode_seconds=5,
        qa_open=True,
        published_question_id="q1",
        reactions_enabled=False,
    )
    snap = ist.load(core, eid, chat_limit=50)
    assert [m.message_id for m in snap.chat] == ["m2"]
    assert snap.chat_seq == 2
    assert [q.question_id for q in snap.questions] == ["q1"]
    assert snap.questions[0].anonymous is True
    assert snap.chat_enabled is False and snap.slow_mode_seconds == 5
    assert snap.reactions_enabled is False
    _header, rows = ist.export_rows(core, eid, "chat")
    assert len(rows) == 2 and rows[0][6] is True  # deleted, as a bool on both


def test_webhook_log(core: SyncStore) -> None:
    owner = core.create_user("hooks", "h", "organiser")
    event = core.create_event("Hooked", None, owner_id=owner.user_id)
    db = core.connection
    endpoint = hooks.sql_add_endpoint(
        db, owner.user_id, "https://hooks.example/in", frozenset(), 100.0
    )
    assert hooks.sql_endpoints(db, owner.user_id) == [endpoint]
    items = [
        hooks.Emitted(WebhookEvent.EVENT_STARTED, event.event_id, {"n": n}, 200.0) for n in range(3)
    ]
    assert hooks.sql_record(db, items) == 3
    deliveries = hooks.sql_deliveries(db, owner.user_id, limit=10)
    # equal times: newest first by insertion order (SQLite's rowid, PostgreSQL's rowid column)
    assert [json.loads(d.body)["data"]["n"] for d in deliveries] == [2, 1, 0]
    assert hooks.sql_next_due(db) == pytest.approx(200.0)
    assert hooks.sql_delete_event_deliveries(db, event.event_id) == 3


def _sqlite_shape(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        shape: dict[str, Any] = {}
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ):
            columns = conn.execute(f"PRAGMA table_info({table})").fetchall()
            shape[table] = {
                "columns": [c[1] for c in columns],
                # an INTEGER PRIMARY KEY is NOT NULL in fact (it is the rowid)
                "not_null": sorted(c[1] for c in columns if c[3] or c[5]),
                "primary_key": [c[1] for c in sorted(columns, key=lambda c: c[5]) if c[5]],
            }
        return shape
    finally:
        conn.close()


def _postgres_shape(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        shape: dict[str, Any] = {}
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_name <> 'schema_version'"
        ).fetchall()
        for (table,) in tables:
            columns = conn.execute(
                "SELECT column_name, is_nullable FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                (table,),
            ).fetchall()
            primary = conn.execute(
                "SELECT k.column_name FROM information_schema.table_constraints c"
                " JOIN information_schema.key_column_usage k USING (constraint_schema,"
                " constraint_name) WHERE c.table_name = %s AND c.constraint_type = 'PRIMARY KEY'"
                " ORDER BY k.ordinal_position",
                (table,),
            ).fetchall()
            # the explicit stand-in for SQLite's implicit rowid (ORDER BY ..., rowid)
            kept = [c for c in columns if not (c[0] == "rowid" and table in ROWID_TABLES)]
            shape[table] = {
                "columns": [c[0] for c in kept],
                "not_null": sorted(c[0] for c in kept if c[1] == "NO"),
                "primary_key": [p[0] for p in primary],
            }
        return shape


def test_schema_parity(tmp_data_dir: Path, postgres_url: str) -> None:
    """Both dialects end with the same tables, columns (in order), nullability and primary
    keys: a migration written for one only fails here."""
    SyncStore.open(tmp_data_dir).close()
    SyncStore.open(tmp_data_dir, postgres_url).close()
    sqlite_shape = _sqlite_shape(tmp_data_dir / DB_FILENAME)
    postgres_shape = _postgres_shape(postgres_url)
    assert sorted(sqlite_shape) == sorted(postgres_shape)
    for table, shape in sqlite_shape.items():
        assert postgres_shape[table] == shape, table
    for table in ROWID_TABLES:
        assert table in postgres_shape


def test_nodes_migrating_at_once_make_one_schema(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sealing.KEY_ENV, sealing.new_key())  # every node has the same key
    with ThreadPoolExecutor(4) as pool:
        cores = list(
            pool.map(lambda n: SyncStore.open(tmp_path / f"node{n}", postgres_url), range(4))
        )
    assert {c.schema_version() for c in cores} == {len(MIGRATIONS)}
    for c in cores:
        c.close()


def test_a_write_transaction_holds_the_lock_until_it_ends(
    core: SyncStore, in_threads: Callable[[Callable[[SyncStore], Any]], list[Any]]
) -> None:
    """While one connection's write transaction is open, the other's waits to begin."""
    event = core.create_event("Locked", None)
    order: list[str] = []
    lock = threading.Lock()

    def write(c: SyncStore) -> None:
        with transaction(c.connection, immediate=True):
            with lock:
                order.append("begin")
            c.connection.execute(
                "UPDATE events SET title = title || '.' WHERE event_id = ?", (event.event_id,)
            )
            time.sleep(0.2)
            with lock:
                order.append("end")

    in_threads(write)
    assert order == ["begin", "end", "begin", "end"]
    assert core.get_event(event.event_id).title == "Locked.."  # type: ignore[union-attr]


async def test_outage_raises_a_clear_error_then_the_store_works_again(
    tmp_data_dir: Path, own_postgres: PostgresServer
) -> None:
    url = own_postgres.url("webinar")
    ensure_key(tmp_data_dir)
    async with Store(tmp_data_dir, database_url=url) as store:
        before = await store.create_event("Before", None)
        own_postgres.stop()
        with pytest.raises(StoreUnavailable, match="PostgreSQL at "):
            await store.get_event(before.event_id)
        with pytest.raises(StoreUnavailable, match="unreachable"):
            await store.create_event("During", None)
        assert not await store.ping()
        own_postgres.start()
        assert await store.get_event(before.event_id) == before  # nothing committed was lost
        after = await store.create_event("After", None)
        assert [e.title for e in await store.list_events()] == ["Before", "After"]
        assert after.event_id != before.event_id
        assert await store.ping()
