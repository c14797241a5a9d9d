from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import webinar.storage.migrations as migrations_module
import webinar.storage.store as store_module
from webinar.storage.store import DB_FILENAME, MIGRATIONS, Event, Store, StoreError, SyncStore


async def test_create_get_list(tmp_data_dir: Path) -> None:
    async with Store(tmp_data_dir) as store:
        assert await store.count_events() == 0
        assert await store.list_events() == []
        starts = datetime(2030, 1, 31, 19, 0, tzinfo=timezone(timedelta(hours=1)))
        first = await store.create_event("  Quarterly update  ", starts)
        second = await store.create_event("Second", None)

        assert first.title == "Quarterly update"
        assert first.starts_at == datetime(2030, 1, 31, 18, 0, tzinfo=UTC)
        assert first.starts_at is not None and first.starts_at.utcoffset() == timedelta(0)
        assert first.created_at.tzinfo is not None
        assert len(first.event_id) == 9 and first.event_id.isdigit()
        assert (
            first.display_id == f"{first.event_id[:3]}-{first.event_id[3:6]}-{first.event_id[6:]}"
        )
        assert len(first.presenter_key) == 24
        assert first.presenter_key != second.presenter_key
        assert second.starts_at is None
        ids = {first.event_id, second.event_id}

        assert await store.get_event(first.event_id) == first
        assert await store.get_event(first.display_id) == first  # typed with separators
        unused = next(i for i in ("000000000", "000000001", "000000002") if i not in ids)
        assert await store.get_event(unused) is None
        assert await store.get_event("not an id") is None
        assert await store.list_events() == [first, second]
        assert await store.count_events() == 2
        assert await store.ping()
    assert (tmp_data_dir / DB_FILENAME).is_file()


async def test_persists_across_reopen_and_migrations_are_idempotent(tmp_data_dir: Path) -> None:
    async with Store(tmp_data_dir) as store:
        created = await store.create_event("Kept", None)
    for _ in range(2):
        async with Store(tmp_data_dir) as store:
            assert await store.list_events() == [created]
    with Store.open_sync(tmp_data_dir) as sync_store:
        assert sync_store.schema_version() == len(MIGRATIONS)
        assert sync_store.get_event(created.event_id) == created


def test_schema_and_pragmas(tmp_data_dir: Path) -> None:
    SyncStore.open(tmp_data_dir).close()
    conn = sqlite3.connect(tmp_data_dir / DB_FILENAME)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
        columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(events)"))
        # the table the migrations build is the one the store reads and writes, in order
        assert columns == store_module._EVENT_FIELDS
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO events (event_id, title, presenter_key, created_at)"
                " VALUES ('12345678x', 't', 'k', 'now')"
            )
    finally:
        conn.close()


def test_newer_schema_is_refused(tmp_data_dir: Path) -> None:
    SyncStore.open(tmp_data_dir).close()
    conn = sqlite3.connect(tmp_data_dir / DB_FILENAME)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this program knows"):
        SyncStore.open(tmp_data_dir)


def test_failed_migration_is_rolled_back(
    tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = (*MIGRATIONS, "CREATE TABLE extra (x INTEGER); INSERT INTO missing VALUES (1);")
    monkeypatch.setattr(migrations_module, "MIGRATIONS", broken)
    with pytest.raises(sqlite3.OperationalError, match="no such table: missing"):
        SyncStore.open(tmp_data_dir)
    conn = sqlite3.connect(tmp_data_dir / DB_FILENAME)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (0,)
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        assert tables == []
    finally:
        conn.close()


@pytest.mark.parametrize("title", ["", "   ", "x" * 201])
async def test_bad_title(tmp_data_dir: Path, title: str) -> None:
    async with Store(tmp_data_dir) as store:
        with pytest.raises(ValueError, match="1 to 200 characters"):
            await store.create_event(title, None)
        assert await store.count_events() == 0


async def test_naive_start_refused(tmp_data_dir: Path) -> None:
    async with Store(tmp_data_dir) as store:
        with pytest.raises(ValueError, match="timezone-aware"):
            await store.create_event("t", datetime(2030, 1, 1, 10, 0))


async def test_id_collision_is_retried(tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(["111111111", "111111111", "111111111", "222222222"])
    monkeypatch.setattr(store_module, "new_event_id", lambda: next(ids))
    async with Store(tmp_data_dir) as store:
        assert (await store.create_event("a", None)).event_id == "111111111"
        assert (await store.create_event("b", None)).event_id == "222222222"
        assert [e.title for e in await store.list_events()] == ["a", "b"]


def test_no_free_id(tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "new_event_id", lambda: "111111111")
    with SyncStore.open(tmp_data_dir) as store:
        store.create_event("a", None)
        with pytest.raises(StoreError, match="no free event ID"):
            store.create_event("b", None)


async def test_calls_run_in_one_worker_thread(
    tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[str] = set()
    original = SyncStore.count_events

    def spy(self: SyncStore) -> int:
        threads.add(threading.current_thread().name)
        return original(self)

    monkeypatch.setattr(SyncStore, "count_events", spy)
    async with Store(tmp_data_dir) as store:
        counts = await asyncio.gather(*(store.count_events() for _ in range(20)))
    assert counts == [0] * 20
    assert len(threads) == 1
    assert threading.current_thread().name not in threads
    assert next(iter(threads)).startswith("webinar-store")


async def test_a_write_waiting_its_turn_is_made_when_its_caller_is_cancelled(
    tmp_data_dir: Path,
) -> None:
    """A handler cancelled (its connection lost) while its write waits behind another call
    does not take the write back: attendance closed at End for all stayed open so."""
    release = threading.Event()

    def slow(core: SyncStore) -> None:
        release.wait(5)

    def write(core: SyncStore) -> None:
        core.connection.execute("CREATE TABLE marks (x INTEGER)")
        core.connection.execute("INSERT INTO marks VALUES (1)")

    async with Store(tmp_data_dir) as store:
        busy = asyncio.ensure_future(store.run(slow))
        caller = asyncio.ensure_future(store.run(write))
        await asyncio.sleep(0.05)  # both submitted; the write waits behind the slow call
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        release.set()
        await busy
        rows = await store.run_sql(lambda db: db.execute("SELECT x FROM marks").fetchall())
    assert [tuple(r) for r in rows] == [(1,)]


async def test_closed_store(tmp_data_dir: Path) -> None:
    store = Store(tmp_data_dir)
    assert not await store.ping()
    with pytest.raises(StoreError, match="not open"):
        await store.count_events()
    await store.open()
    with pytest.raises(StoreError, match="already open"):
        await store.open()
    await store.close()
    await store.close()  # harmless
    assert not await store.ping()
    with pytest.raises(StoreError, match="not open"):
        await store.list_events()


async def test_cli_and_server_share_the_file(tmp_data_dir: Path) -> None:
    async with Store(tmp_data_dir) as store:
        with Store.open_sync(tmp_data_dir) as cli_store:
            made_by_cli = cli_store.create_event("From the CLI", None)
        assert await store.get_event(made_by_cli.event_id) == made_by_cli


def test_event_is_frozen() -> None:
    event = Event("123456789", "t", "k", None, datetime.now(UTC))
    with pytest.raises(AttributeError):
        event.title = "x"  # type: ignore[misc]


def test_version_1_database_gets_host_keys(tmp_data_dir: Path) -> None:
    """Migration 2 on a database made by migration 1 gives old events a host key."""
    tmp_data_dir.mkdir(parents=True)
    conn = sqlite3.connect(tmp_data_dir / DB_FILENAME)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(
        "INSERT INTO events VALUES ('123456789', 'Old', 'pk', NULL, '2026-01-01T00:00:00Z')"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with SyncStore.open(tmp_data_dir) as store:
        event = store.get_event("123456789")
    assert event is not None
    assert len(event.host_key) == 36 and event.host_key != event.presenter_key
    assert event.join_window_minutes == 5 and event.agenda == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"agenda": "x" * 4001}, "agenda"),
        ({"lobby_message": "x" * 1001}, "lobby message"),
        ({"thank_you_url": "javascript:alert(1)"}, "thank-you URL"),
        ({"join_window_minutes": -1}, "join window"),
    ],
)
def test_event_fields_are_validated(
    tmp_data_dir: Path, kwargs: dict[str, object], message: str
) -> None:
    with SyncStore.open(tmp_data_dir) as store, pytest.raises(ValueError, match=message):
        store.create_event("T", None, **kwargs)  # type: ignore[arg-type]
