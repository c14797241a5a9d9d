"""One connection type for the store's two dialects: embedded SQLite and shared PostgreSQL.

Every SQL statement of the server is written once, with ``?`` placeholders, in the SQL both
dialects understand (``ON CONFLICT``, ``RETURNING``, ``coalesce``...). :class:`Database` runs it:
on SQLite as it is, on PostgreSQL (psycopg 3, sync API) with ``?`` turned into ``%s`` and
literal ``%`` escaped (translations are cached). The store is synchronous code run in one
dedicated thread per process, so a DB-API driver serves both dialects with the same functions.

Differences the callers see only through this module:

* a constraint violation is :class:`IntegrityError` on both;
* a PostgreSQL server that cannot be reached is :class:`StoreUnavailable` (a
  :class:`StoreError`); the next call reconnects, so the store works again once it is back;
* :func:`transaction` with ``immediate=True`` takes SQLite's write lock (``BEGIN IMMEDIATE``)
  or, on PostgreSQL, one advisory lock (``pg_advisory_xact_lock``) right after ``BEGIN``: write
  transactions run one at a time across every node, as they do across the processes sharing
  one SQLite file, so read-then-write checks (seats left, single-use codes) stay correct;
* Python ``bool`` parameters are written as 0/1 on both (the schema keeps SQLite's INTEGER
  flags);
* secrets are sealed and opened in Python (:attr:`Database.sealer`), never by SQL functions.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from webinar.storage.records import StoreError, StoreUnavailable

if TYPE_CHECKING:
    import psycopg

    from webinar.storage.sealing import Sealer

logger = logging.getLogger(__name__)

#: The key of the advisory lock every PostgreSQL write transaction takes (any fixed bigint;
#: this one spells "webinar" in ASCII).
WRITE_LOCK_KEY = 0x77_65_62_69_6E_61_72
#: The key of the advisory lock migrations take, so nodes starting at once migrate one by one.
MIGRATE_LOCK_KEY = WRITE_LOCK_KEY + 1
CONNECT_TIMEOUT_SECONDS = 5
_POSTGRES_SCHEMES = ("postgresql", "postgres")


class Dialect(enum.StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class IntegrityError(StoreError):
    """A constraint refused the statement (unique, foreign key, check, not null)."""


class Cursor(Protocol):
    """What the store's code uses of a DB-API cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


def check_database_url(url: str) -> str:
    """``url`` if it is a postgresql:// or postgres:// URL, else ValueError saying so."""
    parts = urlsplit(url)
    if parts.scheme not in _POSTGRES_SCHEMES:
        raise ValueError(f"must be a postgresql:// or postgres:// URL, got {redact(url)!r}")
    if not (parts.netloc or parts.query or parts.path.strip("/")):
        raise ValueError(f"names no server or database: {redact(url)!r}")
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@functools.lru_cache(maxsize=2048)
def to_format_style(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s``, with literal ``%`` doubled; ``?`` and ``%``
    inside quoted literals or identifiers stay as they are (apart from the doubling)."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if char == "%":
            out.append("%%")
        elif quote is not None:
            out.append(char)
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


class Database:
    """A connection of either dialect, used only by the thread that opened it.

    Statements run in autocommit unless inside :func:`transaction` (explicit ``BEGIN``)."""

    def __init__(self, dialect: Dialect, sealer: Sealer | None, where: str) -> None:
        self.dialect = dialect
        self._sealer = sealer
        #: The file or the (password-less) URL, for messages.
        self.where = where

    @property
    def sealer(self) -> Sealer:
        """Seals and opens the secrets at rest (webinar.storage.sealing)."""
        if self._sealer is None:
            raise StoreError(f"{self.where}: the secrets key is not loaded yet")
        return self._sealer

    @sealer.setter
    def sealer(self, sealer: Sealer) -> None:
        self._sealer = sealer

    @property
    def is_postgresql(self) -> bool:
        return self.dialect is Dialect.POSTGRESQL

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def begin(self, *, immediate: bool) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    def __init__(self, conn: sqlite3.Connection, sealer: Sealer | None, where: str) -> None:
        super().__init__(Dialect.SQLITE, sealer, where)
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.raw.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.raw.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def begin(self, *, immediate: bool) -> None:
        self.raw.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    def close(self) -> None:
        self.raw.close()


def _bool_as_int_dumper() -> type[Any]:
    from psycopg.adapt import Dumper
    from psycopg.postgres import types

    class BoolAsInt(Dumper):
        """Python bool as a PostgreSQL integer (the schema's flags are 0/1 as in SQLite)."""

        oid = types["int4"].oid

        def dump(self, obj: Any) -> bytes:
            return b"1" if obj else b"0"

    return BoolAsInt


class PostgresDatabase(Database):
    """A psycopg connection in autocommit mode, reopened on the call after it was lost."""

    def __init__(self, url: str, sealer: Sealer | None = None) -> None:
        super().__init__(Dialect.POSTGRESQL, sealer, redact(url))
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._closed:
            raise StoreError("store is closed")
        try:
            conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"PostgreSQL at {self.where} is unreachable: {_first_line(exc)}"
            ) from None
        conn.adapters.register_dumper(bool, _bool_as_int_dumper())
        if self._conn is not None:
            logger.info("reconnected to PostgreSQL at %s", self.where)
        self._conn = conn
        return conn

    def _live(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            conn = self._connect()
        return conn

    @contextlib.contextmanager
    def _errors(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.IntegrityError as exc:
            raise IntegrityError(_first_line(exc)) from exc
        except psycopg.OperationalError as exc:
            if conn.closed or conn.broken:
                raise StoreUnavailable(
                    f"lost the connection to PostgreSQL at {self.where}: {_first_line(exc)}"
                ) from None
            raise StoreError(_first_line(exc)) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        conn = self._live()
        with self._errors(conn):
            return conn.execute(to_format_style(sql), tuple(params))
        raise AssertionError("unreachable")  # pragma: no cover (mypy: _errors re-raises)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        conn = self._live()
        with self._errors(conn), conn.cursor() as cursor:
            cursor.executemany(to_format_style(sql), [tuple(r) for r in rows])

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            return False
        return conn.info.transaction_status is not TransactionStatus.IDLE

    def begin(self, *, immediate: bool) -> None:
        if immediate:
            # READ COMMITTED: every statement after the lock sees what earlier writers
            # committed (a snapshot taken before the wait would not).
            self.execute("BEGIN")
            self.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK_KEY,))
        else:  # one snapshot for the whole read, as a SQLite read transaction has
            self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")

    def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def transaction(conn: Database, *, immediate: bool = False) -> Iterator[Database]:
    """One explicit transaction: ``BEGIN``, then ``COMMIT`` when the block ends, or
    ``ROLLBACK`` and the exception raised again when it fails.

    A transaction that writes must be ``immediate``: SQLite takes the write lock at once
    (several processes share the file), PostgreSQL takes the store's advisory write lock, so
    write transactions run one at a time on every node (see the module)."""
    conn.begin(immediate=immediate)
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def recoverable(conn: Database) -> Iterator[None]:
    """Run a statement whose :class:`IntegrityError` the caller handles and goes on from.

    Inside a PostgreSQL transaction a failed statement aborts the whole transaction, so the
    statement runs under a savepoint that is rolled back when it fails; elsewhere (SQLite, or
    autocommit) nothing is needed."""
    if not (conn.is_postgresql and conn.in_transaction):
        yield
        return
    conn.execute("SAVEPOINT recoverable")
    try:
        yield
    except IntegrityError:
        conn.execute("ROLLBACK TO SAVEPOINT recoverable")
        raise
    conn.execute("RELEASE SAVEPOINT recoverable")
