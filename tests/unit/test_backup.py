"""`webinar backup`: an online SQLite copy, restorable by putting the file in place."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from webinar.cli import main
from webinar.storage.backup import backup_database, backup_database_async
from webinar.storage.store import DB_FILENAME, MIGRATIONS, Store, StoreError


def test_backup_and_restore_with_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    with Store.open_sync(data) as store:
        store.create_event("Kept in the backup", None)
    output = tmp_path / "backups" / "webinar-2030-01-31.sqlite3"
    assert main(["backup", "--data-dir", str(data), "--output", str(output)]) == 0
    said = capsys.readouterr().out
    assert f"to {output}" in said and f"schema version {len(MIGRATIONS)}" in said
    assert not list(output.parent.glob(".*partial"))

    # The copy is one self-contained file (no -wal needed), intact.
    conn = sqlite3.connect(output)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    assert output.stat().st_mode & 0o077 == 0  # private, like the data dir

    # Restore = put it in place as webinar.sqlite3 of a (stopped) server's data dir.
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / DB_FILENAME).write_bytes(output.read_bytes())
    # ... with the secrets key that sealed it (kept apart from the backups: docs/deployment.md)
    (restored / "secrets.key").write_bytes((data / "secrets.key").read_bytes())
    assert main(["event", "list", "--data-dir", str(restored), "--json"]) == 0
    assert "Kept in the backup" in capsys.readouterr().out


async def test_backup_while_the_server_writes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with Store(data) as store:
        for n in range(50):
            await store.create_event(f"Event {n}", None)
        writes = asyncio.gather(*(store.create_event(f"Late {n}", None) for n in range(50)))
        result = await backup_database_async(data, tmp_path / "copy.sqlite3")
        await writes
    conn = sqlite3.connect(result.path)
    (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
    conn.close()
    assert 50 <= count <= 100  # a consistent snapshot of some moment


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database"):
        backup_database(tmp_path / "empty", tmp_path / "out.sqlite3")
    data = tmp_path / "data"
    Store.open_sync(data).close()
    with pytest.raises(StoreError, match="must not overwrite the live database"):
        backup_database(data, data / DB_FILENAME)
    with pytest.raises(StoreError, match="is a folder"):
        backup_database(data, tmp_path)
    assert main(["backup", "--data-dir", str(tmp_path / "nothing"), "--output", "x"]) == 1
