"""``webinar db copy --to postgresql://…``: a single-machine install's SQLite store into PostgreSQL.

Every table of the schema is copied as it is, parents before children (the foreign keys'
order), in one PostgreSQL transaction: IDs keep their values, sealed secrets stay sealed
(the nodes need the same secrets key as the SQLite install), the tie-breaking insertion order
of the tables that have one (SQLite's rowid) is kept in PostgreSQL's ``rowid`` column, and
every identity sequence is moved past the copied IDs. The target must be empty (``replace``
deletes what it holds first).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from webinar.storage.db import Database, SqliteDatabase, redact, transaction
from webinar.storage.migrations import ROWID_TABLES
from webinar.storage.records import StoreError
from webinar.storage.store import SyncStore

_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Copied:
    table: str
    rows: int


def tables_in_foreign_key_order(conn: sqlite3.Connection) -> list[str]:
    """The schema's tables, each after the tables its foreign keys point to."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]
    parents = {
        name: {row[2] for row in conn.execute(f"PRAGMA foreign_key_list({name})")} - {name}
        for name in names
    }
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        if not ready:
            raise StoreError("the schema's foreign keys form a cycle")
        ordered.extend(ready)
    return ordered


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _count(db: Database, table: str) -> int:
    (n,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(n)


def copy_to_postgresql(
    data_dir: Path,
    url: str,
    *,
    replace: bool = False,
    progress: Callable[[Copied], None] | None = None,
) -> list[Copied]:
    """Copy ``<data_dir>/webinar.sqlite3`` into the PostgreSQL database at ``url`` (migrated to
    the same schema version first); the rows per table. StoreError if the target holds
    anything and not ``replace``."""
    with SyncStore.open(data_dir) as source, SyncStore.open(data_dir, url) as target:
        if source.schema_version() != target.schema_version():
            raise StoreError(
                f"schema versions differ: {source.schema_version()} in {source.where},"
                f" {target.schema_version()} in {target.where}"
            )
        src = source.connection
        assert isinstance(src, SqliteDatabase)
        dst = target.connection
        tables = tables_in_foreign_key_order(src.raw)
        copied: list[Copied] = []
        with transaction(dst, immediate=True):
            held = [t for t in tables if _count(dst, t)]
            if held and not replace:
                raise StoreError(
                    f"{redact(url)} is not empty ({', '.join(held)} have rows):"
                    " copy into an empty database, or pass --replace to delete what it holds"
                )
            if held:
                dst.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            for table in tables:
                columns = _columns(src.raw, table)
                if table in ROWID_TABLES:
                    columns.append("rowid")  # the insertion order the queries break ties by
                names = ", ".join(columns)
                insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"
                rows = src.raw.execute(f"SELECT {names} FROM {table} ORDER BY rowid")
                count = 0
                while batch := rows.fetchmany(_BATCH):
                    dst.executemany(insert, batch)
                    count += len(batch)
                _reset_identities(dst, table)
                copied.append(Copied(table, count))
                if progress is not None:
                    progress(copied[-1])
        return copied


def _reset_identities(db: Database, table: str) -> None:
    """Move the table's identity sequences past the IDs just copied."""
    identities = db.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ? AND is_identity = 'YES'",
        (table,),
    ).fetchall()
    for (column,) in identities:
        db.execute(
            f"SELECT setval(pg_get_serial_sequence(?, ?), coalesce(max({column}), 0) + 1, false)"
            f" FROM {table}",
            (table, column),
        )
