"""The embedded SQLite store, ``<data_dir>/webinar.sqlite3``.

:class:`SyncStore` is the synchronous core: one connection, used only by the thread that opened
it. :class:`Store` is the asyncio facade used by the server: it runs a ``SyncStore`` in one
dedicated worker thread, so no SQLite call ever blocks the event loop. The CLI uses
:meth:`Store.open_sync` directly; WAL mode makes a CLI and a running server safe on one file.

The schema is the ordered list :data:`MIGRATIONS`; ``PRAGMA user_version`` records how many of
them a database has had. Never edit a released migration: append a new one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from webinar.ids import format_event_id, new_event_id, new_presenter_key, normalize_event_id

DB_FILENAME = "webinar.sqlite3"
TITLE_MAX_CHARS = 200
_ID_ATTEMPTS = 20
_BUSY_TIMEOUT_SECONDS = 10.0

MIGRATIONS: tuple[str, ...] = (
    # 1: events.
    """
    CREATE TABLE events (
        event_id      TEXT PRIMARY KEY
                      CHECK (length(event_id) = 9 AND event_id NOT GLOB '*[^0-9]*'),
        title         TEXT NOT NULL,
        presenter_key TEXT NOT NULL,
        starts_at     TEXT NULL,   -- ISO-8601, UTC
        created_at    TEXT NOT NULL  -- ISO-8601, UTC
    );
    CREATE INDEX events_created_at ON events (created_at);
    """,
    # 2: what a live room needs: a host key, the lobby's texts, the join window, the
    # thank-you page.
    """
    ALTER TABLE events ADD COLUMN host_key TEXT NOT NULL DEFAULT '';
    UPDATE events SET host_key = lower(hex(randomblob(18))) WHERE host_key = '';
    ALTER TABLE events ADD COLUMN agenda TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN lobby_message TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN join_window_minutes INTEGER NOT NULL DEFAULT 5
        CHECK (join_window_minutes BETWEEN 0 AND 1440);
    ALTER TABLE events ADD COLUMN thank_you_url TEXT NULL;
    """,
)

T = TypeVar("T")


class StoreError(Exception):
    """The store cannot do what was asked (closed, newer schema, no free event ID, ...)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A scheduled webinar."""

    #: Canonical 9-digit ID, without separators; see :attr:`display_id`.
    event_id: str
    title: str
    #: Secret that lets its holder present.
    presenter_key: str
    #: When the event is announced to start (timezone-aware, UTC), if set.
    starts_at: datetime | None
    #: When the event was created (timezone-aware, UTC).
    created_at: datetime
    #: Secret that makes its holder the host (presenter rights plus running the room).
    host_key: str = ""
    agenda: str = ""
    #: The organiser's message shown in the lobby.
    lobby_message: str = ""
    #: How many minutes before the start attendees may enter the lobby.
    join_window_minutes: int = 5
    #: Where attendees go when the event is ended for all (None: our thank-you page).
    thank_you_url: str | None = None

    @property
    def display_id(self) -> str:
        """The event ID as people read it: ``123-456-789``."""
        return format_event_id(self.event_id)


def validate_title(title: str) -> str:
    """Return ``title`` stripped; raise ValueError unless it has 1 to 200 characters."""
    stripped = title.strip()
    if not 1 <= len(stripped) <= TITLE_MAX_CHARS:
        raise ValueError(f"title must have 1 to {TITLE_MAX_CHARS} characters")
    return stripped


def _to_db_time(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_db_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (semicolons in literals stay put)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement: {pending.strip()!r}")
    return statements


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date, all pending migrations in one transaction."""
    conn.execute("BEGIN IMMEDIATE")  # also serialises two processes migrating at once
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database schema version {version} is newer than this program knows "
                f"({len(MIGRATIONS)}); upgrade webinar"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number:d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


_EVENT_COLUMNS = (
    "event_id, title, presenter_key, starts_at, created_at,"
    " host_key, agenda, lobby_message, join_window_minutes, thank_you_url"
)
AGENDA_MAX_CHARS = 4000
LOBBY_MESSAGE_MAX_CHARS = 1000


def _event_from_row(row: tuple[Any, ...]) -> Event:
    (
        event_id,
        title,
        presenter_key,
        starts_at,
        created_at,
        host_key,
        agenda,
        lobby_message,
        join_window,
        thank_you_url,
    ) = row
    return Event(
        event_id=event_id,
        title=title,
        presenter_key=presenter_key,
        starts_at=None if starts_at is None else _from_db_time(starts_at),
        created_at=_from_db_time(created_at),
        host_key=host_key,
        agenda=agenda,
        lobby_message=lobby_message,
        join_window_minutes=int(join_window),
        thank_you_url=thank_you_url,
    )


def _check_text(name: str, value: str, limit: int) -> str:
    value = value.strip()
    if len(value) > limit:
        raise ValueError(f"{name} must have at most {limit} characters")
    return value


def _check_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.startswith(("https://", "http://")) or len(value) > 2000:
        raise ValueError("the thank-you URL must be an http(s) URL of at most 2000 characters")
    return value


class SyncStore:
    """Synchronous store on one SQLite connection; use it only from the thread that opened it."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path

    @classmethod
    def open(cls, data_dir: Path) -> SyncStore:
        """Open (creating if needed) ``<data_dir>/webinar.sqlite3`` and apply migrations."""
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = data_dir / DB_FILENAME
        # isolation_level=None: no implicit transactions; every write here is one statement
        # (autocommit) or an explicit BEGIN ... COMMIT.
        conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: cannot switch to WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("store is closed")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def schema_version(self) -> int:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        return int(version)

    def create_event(
        self,
        title: str,
        starts_at: datetime | None,
        *,
        agenda: str = "",
        lobby_message: str = "",
        join_window_minutes: int = 5,
        thank_you_url: str | None = None,
    ) -> Event:
        """Create an event with a fresh unique ID, presenter key and host key.

        Raises ValueError for a bad title, text, URL or window, or a naive ``starts_at``.
        """
        title = validate_title(title)
        agenda = _check_text("agenda", agenda, AGENDA_MAX_CHARS)
        lobby_message = _check_text("lobby message", lobby_message, LOBBY_MESSAGE_MAX_CHARS)
        thank_you_url = _check_url(thank_you_url)
        if not 0 <= join_window_minutes <= 1440:
            raise ValueError("the join window must be 0 to 1440 minutes")
        starts_text = None if starts_at is None else _to_db_time(starts_at)
        created_text = _to_db_time(datetime.now(UTC))
        for _ in range(_ID_ATTEMPTS):
            row = (
                new_event_id(),
                title,
                new_presenter_key(),
                starts_text,
                created_text,
                new_presenter_key(),
                agenda,
                lobby_message,
                join_window_minutes,
                thank_you_url,
            )
            # ON CONFLICT DO NOTHING: an ID collision inserts nothing, and we draw again.
            cursor = self._db.execute(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (event_id) DO NOTHING",
                row,
            )
            if cursor.rowcount == 1:
                return _event_from_row(row)
        raise StoreError(f"no free event ID after {_ID_ATTEMPTS} attempts")

    def get_event(self, event_id: str) -> Event | None:
        """Return the event, or None. ``event_id`` may be in any form people type."""
        canonical = normalize_event_id(event_id)
        if canonical is None:
            return None
        row = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = ?", (canonical,)
        ).fetchone()
        return None if row is None else _event_from_row(row)

    def list_events(self) -> list[Event]:
        """All events, oldest first."""
        rows = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY created_at, rowid"
        ).fetchall()
        return [_event_from_row(row) for row in rows]

    def count_events(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM events").fetchone()
        return int(count)

    def ping(self) -> bool:
        """True if the database answers a query."""
        try:
            return bool(self._db.execute("SELECT 1").fetchone() == (1,))
        except (sqlite3.Error, StoreError):
            return False


class Store:
    """Asyncio facade over :class:`SyncStore`, running it in one dedicated worker thread.

    Use ``await store.open()`` / ``await store.close()``, or ``async with Store(path) as store``.
    Calls are executed one at a time, in order.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._core: SyncStore | None = None

    @property
    def path(self) -> Path:
        return self.data_dir / DB_FILENAME

    @staticmethod
    def open_sync(data_dir: Path) -> SyncStore:
        """Open the store synchronously, for code without an event loop (the CLI)."""
        return SyncStore.open(data_dir)

    @property
    def is_open(self) -> bool:
        return self._core is not None

    async def open(self) -> None:
        if self._executor is not None:
            raise StoreError("store is already open")
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="webinar-store"
        )
        self._executor = executor
        try:
            core = await asyncio.get_running_loop().run_in_executor(
                executor, SyncStore.open, self.data_dir
            )
        except BaseException:
            self._executor = None
            executor.shutdown(wait=False)
            raise
        self._core = core

    async def close(self) -> None:
        """Close the connection and stop the worker thread. Closing twice is harmless."""
        executor, core = self._executor, self._core
        self._executor = self._core = None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        try:
            if core is not None:
                # Queued behind any calls already submitted, which finish first.
                await loop.run_in_executor(executor, core.close)
        finally:
            await loop.run_in_executor(None, executor.shutdown)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _run(self, call: Callable[[SyncStore], T]) -> T:
        executor, core = self._executor, self._core
        if executor is None or core is None:
            raise StoreError("store is not open")
        return await asyncio.get_running_loop().run_in_executor(executor, call, core)

    async def create_event(
        self,
        title: str,
        starts_at: datetime | None,
        *,
        agenda: str = "",
        lobby_message: str = "",
        join_window_minutes: int = 5,
        thank_you_url: str | None = None,
    ) -> Event:
        """Create an event; raises ValueError for bad input (see :meth:`SyncStore.create_event`)."""
        # Validate here too, so bad input fails before reaching the worker thread.
        validate_title(title)
        if starts_at is not None:
            _to_db_time(starts_at)
        return await self._run(
            lambda core: core.create_event(
                title,
                starts_at,
                agenda=agenda,
                lobby_message=lobby_message,
                join_window_minutes=join_window_minutes,
                thank_you_url=thank_you_url,
            )
        )

    async def get_event(self, event_id: str) -> Event | None:
        return await self._run(lambda core: core.get_event(event_id))

    async def list_events(self) -> list[Event]:
        return await self._run(SyncStore.list_events)

    async def count_events(self) -> int:
        return await self._run(SyncStore.count_events)

    async def ping(self) -> bool:
        """True if the store is open and the database answers."""
        if self._core is None:
            return False
        try:
            return await self._run(SyncStore.ping)
        except (StoreError, RuntimeError):
            return False
