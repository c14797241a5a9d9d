"""The store: embedded SQLite, ``<data_dir>/webinar.sqlite3``, or a shared PostgreSQL database.

Without ``[cluster] database_url`` the store is the SQLite file (zero setup); with it, every
node of a cluster shares one PostgreSQL database. The same SQL serves both through
:mod:`webinar.storage.db` (placeholders, errors, the write lock, reconnecting).

:class:`SyncStore` is the synchronous core: one connection, used only by the thread that opened
it. :class:`Store` is the asyncio facade used by the server: it runs a ``SyncStore`` in one
dedicated worker thread, so no SQLite call ever blocks the event loop. The CLI uses
:meth:`Store.open_sync` directly; WAL mode makes a CLI and a running server safe on one file.

Several processes (the workers of ``webinar serve --workers N``, the CLI) share the file: WAL
lets readers run beside the one writer; a writer that finds the write lock taken waits for it
(SQLite's busy handler, up to :data:`_BUSY_TIMEOUT_SECONDS`). A transaction that writes must
start with ``BEGIN IMMEDIATE`` (``transaction(conn, immediate=True)``): a deferred one that
reads first and writes later fails at once with ``SQLITE_BUSY`` when another process wrote in
between, since the busy handler cannot help it. ``benchmarks/store_contention.py`` measures it.
On PostgreSQL the same ``transaction(conn, immediate=True)`` takes one advisory lock instead,
so write transactions run one at a time across every node.

The schema is the ordered list :data:`MIGRATIONS` (see :mod:`webinar.storage.migrations`).
Never edit a released migration: append a new one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from webinar.i18n import _
from webinar.ids import new_event_id, new_presenter_key, normalize_event_id
from webinar.storage.db import (
    Database,
    IntegrityError,
    PostgresDatabase,
    SqliteDatabase,
    check_database_url,
    redact,
    transaction,
)
from webinar.storage.migrations import (
    MIGRATIONS,
    SEALED_FROM,
    migrate,
    migrate_postgresql,
    postgresql_version,
)
from webinar.storage.records import (
    ACCESS_TYPES,
    AGENDA_MAX_CHARS,
    LOBBY_MESSAGE_MAX_CHARS,
    TITLE_MAX_CHARS,
    USER_ROLES,
    USERNAME_MAX_CHARS,
    Event,
    EventSettings,
    SessionRecord,
    StoreError,
    StoreUnavailable,
    User,
    to_db_time,
    validate_email,
    validate_title,
    validate_username,
)
from webinar.storage.sealing import SEALED_COLUMNS, Sealer, SealingError, load_sealer

__all__ = [
    "ACCESS_TYPES",
    "AGENDA_MAX_CHARS",
    "DB_FILENAME",
    "LOBBY_MESSAGE_MAX_CHARS",
    "MIGRATIONS",
    "TITLE_MAX_CHARS",
    "USERNAME_MAX_CHARS",
    "USER_ROLES",
    "Event",
    "EventSettings",
    "SessionRecord",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "SyncStore",
    "User",
    "transaction",
    "validate_title",
    "validate_username",
]

if TYPE_CHECKING:
    from webinar.config import Config

DB_FILENAME = "webinar.sqlite3"
_USER_COLUMNS = "user_id, username, password_hash, role, email"
_ID_ATTEMPTS = 20
_BUSY_TIMEOUT_SECONDS = 10.0
T = TypeVar("T")


def _from_db_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


_EVENT_FIELDS = (
    "event_id",
    "title",
    "presenter_key",
    "starts_at",
    "created_at",
    "host_key",
    "agenda",
    "lobby_message",
    "join_window_minutes",
    "thank_you_url",
    "owner_id",
    "timezone",
    "duration_minutes",
    "access_type",
    "camera_limit",
    "language",
    "external_url",
    "hls_mode",
    "hls_overflow_after",
)
_EVENT_COLUMNS = ", ".join(_EVENT_FIELDS)
#: The keys are sealed at rest (webinar.storage.sealing): sealed on the way in, opened out.
_SEALED_EVENT_FIELDS = ("presenter_key", "host_key")
_EVENT_SELECT = _EVENT_COLUMNS
_EVENT_MARKS = ", ".join("?" for _ in _EVENT_FIELDS)
_SETTINGS_FIELDS = tuple(f.name for f in dataclasses.fields(EventSettings))


def _event_from_row(row: tuple[Any, ...], sealer: Sealer | None = None) -> Event:
    values = dict(zip(_EVENT_FIELDS, row, strict=True))
    if sealer is not None:
        for name in _SEALED_EVENT_FIELDS:
            values[name] = sealer.unseal(name, values[name])
    starts = values["starts_at"]
    values["starts_at"] = None if starts is None else _from_db_time(starts)
    values["created_at"] = _from_db_time(values["created_at"])
    return Event(**values)


def _settings_row(settings: EventSettings) -> dict[str, Any]:
    row = {name: getattr(settings, name) for name in _SETTINGS_FIELDS}
    row["starts_at"] = None if settings.starts_at is None else to_db_time(settings.starts_at)
    return row


def _check_sealed(conn: Database, sealer: Sealer, where: str) -> None:
    """Open one sealed value of each column now: a wrong key fails at start, not mid-event."""
    for table, _id, column in SEALED_COLUMNS:
        row = conn.execute(
            f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL LIMIT 1"
        ).fetchone()
        if row is not None:
            try:
                sealer.unseal(column, row[0])
            except SealingError as exc:
                raise StoreError(f"{where}: {exc}") from None


class SyncStore:
    """Synchronous store on one connection; use it only from the thread that opened it."""

    def __init__(self, conn: Database, path: Path) -> None:
        self._conn: Database | None = conn
        #: The SQLite file (or, on PostgreSQL, the data dir's would-be file: unused).
        self.path = path

    @property
    def sealer(self) -> Sealer:
        return self._db.sealer

    @property
    def where(self) -> str:
        """The SQLite file or the PostgreSQL URL without its password, for messages."""
        return self._db.where

    @classmethod
    def open(cls, data_dir: Path, database_url: str | None = None) -> SyncStore:
        """Open the store: the PostgreSQL database at ``database_url`` if given, else
        (creating if needed) ``<data_dir>/webinar.sqlite3``; apply migrations."""
        if database_url is not None:
            return cls._open_postgresql(data_dir, database_url)
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
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            try:  # a new key only for a database that has nothing sealed yet
                sealer = load_sealer(data_dir, create=version < SEALED_FROM)
            except SealingError as exc:
                raise StoreError(f"{path}: {exc}") from None
            sealer.install(conn)  # migration 9 seals the rows written before it in SQL
            migrate(conn)
            db = SqliteDatabase(conn, sealer, str(path))
            _check_sealed(db, sealer, str(path))
        except BaseException:
            conn.close()
            raise
        return cls(db, path)

    @classmethod
    def _open_postgresql(cls, data_dir: Path, url: str) -> SyncStore:
        try:
            check_database_url(url)
        except ValueError as exc:
            raise StoreError(f"cluster.database_url {exc}") from None
        where = redact(url)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the key file may be made here
        # The secrets key is the same on every node (WEBINAR_SECRETS_KEY, or a copy of
        # <data_dir>/secrets.key). None is ever made here: two nodes starting on an empty
        # database would each make their own, and each seal what the other cannot open.
        probe = PostgresDatabase(url)
        try:
            try:
                sealer = load_sealer(data_dir, create=False)
            except SealingError as exc:
                raise StoreError(
                    f"{where}: {exc} (every node needs the same key: `webinar secrets new`"
                    " prints one)"
                ) from None
            probe.sealer = sealer
            migrate_postgresql(probe)
            _check_sealed(probe, sealer, where)
        except BaseException:
            probe.close()
            raise
        return cls(probe, data_dir / DB_FILENAME)

    @property
    def connection(self) -> Database:
        """For modules with tables of their own (interaction, recordings, ticketing)."""
        return self._db

    @property
    def is_postgresql(self) -> bool:
        return self._db.is_postgresql

    @property
    def _db(self) -> Database:
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
        if self._db.is_postgresql:
            return postgresql_version(self._db)
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        return int(version)

    def create_event(
        self,
        title: str,
        starts_at: datetime | None,
        *,
        owner_id: int | None = None,
        **settings: Any,
    ) -> Event:
        """Create an event with a fresh unique ID, presenter key and host key.

        ``settings`` are :class:`EventSettings` fields; ValueError names a bad one.
        """
        return self.create_event_from(
            EventSettings(title=title, starts_at=starts_at, **settings), owner_id=owner_id
        )

    def create_event_from(self, settings: EventSettings, *, owner_id: int | None) -> Event:
        values = _settings_row(settings.validated())
        values["created_at"] = to_db_time(datetime.now(UTC))
        values["owner_id"] = owner_id
        for _attempt in range(_ID_ATTEMPTS):
            values["event_id"] = new_event_id()
            values["presenter_key"] = new_presenter_key()
            values["host_key"] = new_presenter_key()
            row = tuple(values[name] for name in _EVENT_FIELDS)
            sealer = self._db.sealer
            stored = tuple(
                sealer.seal(name, values[name]) if name in _SEALED_EVENT_FIELDS else values[name]
                for name in _EVENT_FIELDS
            )
            # ON CONFLICT DO NOTHING: an ID collision inserts nothing, and we draw again.
            cursor = self._db.execute(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({_EVENT_MARKS})"
                " ON CONFLICT (event_id) DO NOTHING",
                stored,
            )
            if cursor.rowcount == 1:
                return _event_from_row(row)
        raise StoreError(f"no free event ID after {_ID_ATTEMPTS} attempts")

    def update_event(self, event_id: str, settings: EventSettings) -> Event:
        """Replace an event's settings (IDs and keys stay); ValueError for bad ones."""
        values = _settings_row(settings.validated())
        assignments = ", ".join(f"{name} = ?" for name in values)
        cursor = self._db.execute(
            f"UPDATE events SET {assignments} WHERE event_id = ?",
            (*values.values(), event_id),
        )
        if cursor.rowcount != 1:
            raise StoreError(f"no event {event_id}")
        event = self.get_event(event_id)
        assert event is not None
        return event

    def delete_event(self, event_id: str) -> bool:
        """Delete the event and, through the schema's ``ON DELETE CASCADE``, everything that
        belongs to it (chat, questions, polls, registrations, invitees, attendance, the
        recordings' rows, ...); files on disk are the caller's. False if there was none."""
        cursor = self._db.execute("DELETE FROM events WHERE event_id = ?", (event_id,))
        return cursor.rowcount == 1

    def get_event(self, event_id: str) -> Event | None:
        """Return the event, or None. ``event_id`` may be in any form people type."""
        canonical = normalize_event_id(event_id)
        if canonical is None:
            return None
        row = self._db.execute(
            f"SELECT {_EVENT_SELECT} FROM events WHERE event_id = ?", (canonical,)
        ).fetchone()
        return None if row is None else _event_from_row(row, self._db.sealer)

    def list_events(self, owner_id: int | None = None) -> list[Event]:
        """All events (or those of one account: its own and those it co-organises), oldest
        first."""
        if owner_id is None:
            rows = self._db.execute(
                f"SELECT {_EVENT_SELECT} FROM events ORDER BY created_at, rowid"
            ).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {_EVENT_SELECT} FROM events WHERE owner_id = ? OR event_id IN"
                " (SELECT event_id FROM event_organisers WHERE user_id = ?)"
                " ORDER BY created_at, rowid",
                (owner_id, owner_id),
            ).fetchall()
        return [_event_from_row(row, self._db.sealer) for row in rows]

    def count_events(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM events").fetchone()
        return int(count)

    # users -----------------------------------------------------------------------------

    def create_user(
        self, username: str, password_hash: str, role: str, *, email: str | None = None
    ) -> User:
        """A new account; ValueError when the name (or the e-mail address) is taken or
        not allowed."""
        username = validate_username(username)
        if role not in USER_ROLES:
            raise ValueError(f"role must be one of {', '.join(USER_ROLES)}")
        email = None if email is None else validate_email(email)
        if email is not None and self.get_user_by_email(email) is not None:
            raise ValueError(
                _("another account has the e-mail address %(email)s") % {"email": email}
            )
        try:
            (user_id,) = self._db.execute(
                "INSERT INTO users (username, password_hash, role, created_at, email)"
                " VALUES (?, ?, ?, ?, ?) RETURNING user_id",
                (username, password_hash, role, to_db_time(datetime.now(UTC)), email),
            ).fetchone()
        except IntegrityError:
            raise ValueError(
                _("a user named %(name)s exists already") % {"name": repr(username)}
            ) from None
        user = self.get_user(int(user_id))
        assert user is not None
        return user

    def _user(self, row: tuple[Any, ...] | None) -> User | None:
        """The account of a ``_USER_COLUMNS`` row, with the events it co-organises."""
        if row is None:
            return None
        found = self._db.execute(
            "SELECT event_id FROM event_organisers WHERE user_id = ?", (row[0],)
        ).fetchall()
        user_id, username, password_hash, role, email = row
        return User(
            user_id,
            username,
            password_hash,
            role,
            email,
            co_organised=frozenset(str(r[0]) for r in found),
        )

    def get_user(self, user_id: int) -> User | None:
        row = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = ?", (user_id,)
        ).fetchone()
        return self._user(row)

    def get_user_by_name(self, username: str) -> User | None:
        row = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE lower(username) = lower(?)",
            (username.strip(),),
        ).fetchone()
        return self._user(row)

    def get_user_by_email(self, email: str) -> User | None:
        row = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE lower(email) = lower(?)",
            (email.strip(),),
        ).fetchone()
        return self._user(row)

    def find_user(self, name_or_email: str) -> User | None:
        """The account with this user name, else (given an address) this e-mail address."""
        found = self.get_user_by_name(name_or_email)
        if found is None and "@" in name_or_email:
            found = self.get_user_by_email(name_or_email)
        return found

    def list_users(self) -> list[User]:
        rows = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users ORDER BY lower(username), username"
        ).fetchall()
        return [User(*row) for row in rows]

    def set_password_hash(self, username: str, password_hash: str) -> None:
        cursor = self._db.execute(
            "UPDATE users SET password_hash = ? WHERE lower(username) = lower(?)",
            (password_hash, username),
        )
        if cursor.rowcount != 1:
            raise ValueError(f"no user named {username!r}")
        self._db.execute(
            "DELETE FROM sessions WHERE user_id ="
            " (SELECT user_id FROM users WHERE lower(username) = lower(?))",
            (username,),
        )

    def delete_user(self, username: str) -> None:
        cursor = self._db.execute("DELETE FROM users WHERE lower(username) = lower(?)", (username,))
        if cursor.rowcount != 1:
            raise ValueError(f"no user named {username!r}")

    # sign-in sessions ------------------------------------------------------------------

    def create_session(self, session: SessionRecord) -> None:
        self._db.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                session.token_hash,
                session.user_id,
                session.csrf_token,
                to_db_time(session.created_at),
                to_db_time(session.expires_at),
            ),
        )

    def get_session(self, token_hash: str, now: datetime) -> tuple[SessionRecord, User] | None:
        row = self._db.execute(
            "SELECT token_hash, user_id, csrf_token, created_at, expires_at FROM sessions"
            " WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        if row is None:
            return None
        record = SessionRecord(
            token_hash=row[0],
            user_id=row[1],
            csrf_token=row[2],
            created_at=_from_db_time(row[3]),
            expires_at=_from_db_time(row[4]),
        )
        if record.expires_at <= now:
            self.delete_session(token_hash)
            return None
        user = self.get_user(record.user_id)
        return None if user is None else (record, user)

    def delete_session(self, token_hash: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def ping(self) -> bool:
        """True if the database answers a query."""
        try:
            return bool(self._db.execute("SELECT 1").fetchone() == (1,))
        except (sqlite3.Error, StoreError):
            return False

    def database_kind(self) -> str:
        return "PostgreSQL" if self._db.is_postgresql else "SQLite"


class Store:
    """Asyncio facade over :class:`SyncStore`, running it in one dedicated worker thread.

    Use ``await store.open()`` / ``await store.close()``, or ``async with Store(path) as store``.
    Calls are executed one at a time, in order.
    """

    def __init__(self, data_dir: Path, *, database_url: str | None = None) -> None:
        self.data_dir = data_dir
        #: PostgreSQL (``[cluster] database_url``), or None: ``<data_dir>/webinar.sqlite3``.
        self.database_url = database_url
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._core: SyncStore | None = None

    @classmethod
    def from_config(cls, config: Config) -> Store:
        """The store a configuration names: its PostgreSQL database, else its SQLite file."""
        return cls(config.data_dir, database_url=config.cluster.database_url)

    @property
    def path(self) -> Path:
        return self.data_dir / DB_FILENAME

    @property
    def where(self) -> str:
        """The SQLite file or the PostgreSQL URL without its password, for messages."""
        return str(self.path) if self.database_url is None else redact(self.database_url)

    @staticmethod
    def open_sync(data_dir: Path, database_url: str | None = None) -> SyncStore:
        """Open the store synchronously, for code without an event loop (the CLI)."""
        return SyncStore.open(data_dir, database_url)

    def connect_sync(self) -> SyncStore:
        """Another synchronous connection to this store's database, for code without an event
        loop (tests, tools); the caller closes it."""
        return SyncStore.open(self.data_dir, self.database_url)

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
                executor, SyncStore.open, self.data_dir, self.database_url
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

    async def run(self, call: Callable[[SyncStore], T]) -> T:
        """Run ``call(sync_store)`` in the store's thread (for feature modules)."""
        return await self._run(call)

    async def _run(self, call: Callable[[SyncStore], T]) -> T:
        executor, core = self._executor, self._core
        if executor is None or core is None:
            raise StoreError("store is not open")
        # The caller's context goes along: refusals raised in the store's thread are worded
        # in the caller's language (webinar.i18n).
        context = contextvars.copy_context()
        # Submitted now, and shielded: a caller cancelled while its call waits its turn (a
        # handler of a lost connection, a stopping task) does not take the call back, so a
        # write it began is made, in order with every other call, whoever still awaits it.
        done = asyncio.get_running_loop().run_in_executor(executor, context.run, call, core)
        return await asyncio.shield(done)

    async def create_event(
        self,
        title: str,
        starts_at: datetime | None,
        *,
        owner_id: int | None = None,
        **settings: Any,
    ) -> Event:
        """Create an event; ValueError names a bad setting (see :class:`EventSettings`)."""
        checked = EventSettings(title=title, starts_at=starts_at, **settings).validated()
        return await self._run(lambda core: core.create_event_from(checked, owner_id=owner_id))

    async def create_event_from(self, settings: EventSettings, *, owner_id: int | None) -> Event:
        checked = settings.validated()
        return await self._run(lambda core: core.create_event_from(checked, owner_id=owner_id))

    async def update_event(self, event_id: str, settings: EventSettings) -> Event:
        checked = settings.validated()
        return await self._run(lambda core: core.update_event(event_id, checked))

    async def get_event(self, event_id: str) -> Event | None:
        return await self._run(lambda core: core.get_event(event_id))

    async def list_events(self, owner_id: int | None = None) -> list[Event]:
        return await self._run(lambda core: core.list_events(owner_id))

    # users and sessions

    async def get_user_by_name(self, username: str) -> User | None:
        return await self._run(lambda core: core.get_user_by_name(username))

    async def find_user(self, name_or_email: str) -> User | None:
        """The account with this user name, else (given an address) this e-mail address."""
        return await self._run(lambda core: core.find_user(name_or_email))

    async def create_session(self, session: SessionRecord) -> None:
        await self._run(lambda core: core.create_session(session))

    async def get_session(
        self, token_hash: str, now: datetime
    ) -> tuple[SessionRecord, User] | None:
        return await self._run(lambda core: core.get_session(token_hash, now))

    async def delete_session(self, token_hash: str) -> None:
        await self._run(lambda core: core.delete_session(token_hash))

    async def count_events(self) -> int:
        return await self._run(SyncStore.count_events)

    async def run_sql(self, call: Callable[[Database], T]) -> T:
        """Run ``call(connection)`` on the store's thread, in order with every other call."""
        return await self._run(lambda core: call(core.connection))

    async def ping(self) -> bool:
        """True if the store is open and the database answers."""
        if self._core is None:
            return False
        try:
            return await self._run(SyncStore.ping)
        except (StoreError, RuntimeError):
            return False
