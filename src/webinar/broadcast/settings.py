"""Where an event's live stream goes: the ingest URL and stream key the organiser entered
(YouTube, Facebook, any RTMP(S) ingest), one per event (an event has one room).

The stream key is a secret — whoever has it can broadcast on the organiser's channel — so it
is stored sealed (:mod:`webinar.storage.sealing`, column ``stream_key``), never shown back in
full (the dashboard and the API show its last four characters) and never logged. The URL is
stored as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from webinar.i18n import _
from webinar.storage.db import Database
from webinar.storage.store import Store

from .rtmp import IngestError, validate_ingest

__all__ = ["IngestError", "LiveStreamSettings", "LiveStreamSettingsService"]

#: The sealed column (its name is the sealing's associated data).
KEY_COLUMN = "stream_key"


@dataclass(frozen=True, slots=True)
class LiveStreamSettings:
    event_id: str
    url: str
    key: str
    updated_at: datetime

    @property
    def key_hint(self) -> str:
        """The key as it may be shown: ``…`` and its last four characters."""
        return "…" + self.key[-4:] if len(self.key) > 8 else "…"

    def public_json(self) -> dict[str, object]:
        """What the dashboard and the API show: never the key itself."""
        return {
            "url": self.url,
            "key_set": True,
            "key_hint": self.key_hint,
            "updated_at": self.updated_at.isoformat(),
        }


def sql_get(db: Database, event_id: str) -> LiveStreamSettings | None:
    row = db.execute(
        "SELECT url, stream_key, updated_at FROM event_stream_out WHERE event_id = ?",
        (event_id,),
    ).fetchone()
    if row is None:
        return None
    key = db.sealer.unseal(KEY_COLUMN, row[1]) or ""
    return LiveStreamSettings(event_id, row[0], key, datetime.fromisoformat(row[2]))


def sql_save(db: Database, event_id: str, url: str, key: str | None) -> LiveStreamSettings:
    """Validate and store; ``key`` None keeps the key stored (IngestError when none is)."""
    if key is None or not key.strip():
        before = sql_get(db, event_id)
        if before is None:
            raise IngestError(_("the stream key is empty"))
        key = before.key
    url, key = validate_ingest(url, key)
    now = datetime.now(UTC).replace(microsecond=0)
    db.execute(
        "INSERT INTO event_stream_out (event_id, url, stream_key, updated_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET url = excluded.url,"
        " stream_key = excluded.stream_key, updated_at = excluded.updated_at",
        (event_id, url, db.sealer.seal(KEY_COLUMN, key), now.isoformat()),
    )
    return LiveStreamSettings(event_id, url, key, now)


def sql_clear(db: Database, event_id: str) -> bool:
    cursor = db.execute("DELETE FROM event_stream_out WHERE event_id = ?", (event_id,))
    return bool(cursor.rowcount)


class LiveStreamSettingsService:
    """The store's side of the live stream's settings, for the dashboard, the API and rooms."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, event_id: str) -> LiveStreamSettings | None:
        return await self.store.run(lambda s: sql_get(s.connection, event_id))

    async def save(self, event_id: str, url: str, key: str | None) -> LiveStreamSettings:
        return await self.store.run(lambda s: sql_save(s.connection, event_id, url, key))

    async def clear(self, event_id: str) -> bool:
        return await self.store.run(lambda s: sql_clear(s.connection, event_id))
