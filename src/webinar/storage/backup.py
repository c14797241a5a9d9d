"""Online backup of the SQLite store (the sqlite3 backup API), safe while the server runs.

The copy is written next to the destination under a temporary name, checked with
``PRAGMA integrity_check`` and renamed into place, so a backup file is either complete or absent.
It is a single self-contained database file (no ``-wal``/``-shm`` companions needed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from webinar.storage.store import DB_FILENAME, StoreError

#: Pages copied per step; between steps the server may write (the backup API restarts then).
PAGES_PER_STEP = 1024


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    size_bytes: int
    schema_version: int


def backup_database(data_dir: Path, output: Path) -> BackupResult:
    """Copy ``<data_dir>/webinar.sqlite3`` to ``output`` (blocking; run it in a thread)."""
    source_path = data_dir / DB_FILENAME
    if not source_path.is_file():
        raise StoreError(f"no database at {source_path}")
    output = output.expanduser()
    if output.resolve() == source_path.resolve():
        raise StoreError("the backup must not overwrite the live database")
    if output.is_dir():
        raise StoreError(f"{output} is a folder; give a file name")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    source = sqlite3.connect(source_path, timeout=10.0)
    try:
        fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        target = sqlite3.connect(partial)
        try:
            source.backup(target, pages=PAGES_PER_STEP)
            (check,) = target.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                raise StoreError(f"the copy failed its integrity check: {check}")
            (version,) = target.execute("PRAGMA user_version").fetchone()
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
        os.replace(partial, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    finally:
        source.close()
    return BackupResult(output, output.stat().st_size, int(version))


async def backup_database_async(data_dir: Path, output: Path) -> BackupResult:
    """The same, off the event loop."""
    return await asyncio.to_thread(backup_database, data_dir, output)
