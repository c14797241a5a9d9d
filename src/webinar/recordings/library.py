"""Recordings after the event: stored, listed, downloaded, trimmed, deleted, within quota.

Files live in ``<data_dir>/recordings/<recording_id>/`` (one WebM per feed, see
``webinar.sfu.recorder``, and ``composed.mp4``, the stage as one picture, see
``webinar.broadcast.recording``); the ``recordings`` table holds duration, size and the
file manifest. SQLite goes through the Store's thread, file work through
``asyncio.to_thread``. The per-organiser quota is checked when a recording starts:
one already running finishes past it; new ones are refused until space is freed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import av

from webinar.formats import iso_time
from webinar.i18n import _
from webinar.rooms.recording import RecordingStarted
from webinar.sfu.recorder import RecordingResult
from webinar.storage.db import Database
from webinar.storage.store import Event, Store, SyncStore

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
_FILE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,120}\.(webm|mp4)$")


def media_type(name: str) -> str:
    """The Content-Type of a recording's file: the composed MP4 or a per-feed WebM."""
    return "video/mp4" if name.endswith(".mp4") else "video/webm"


_RECORDING_ID = re.compile(r"^rec_[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    recording_id: str
    event_id: str
    started_at: datetime
    ended_at: datetime
    duration: float
    size: int
    files: list[dict[str, Any]]
    #: The wall-clock spans it ran (paused time left out), and how many seconds trimming took
    #: off its start: what maps a wall-clock time onto it (webinar.recordings.captions).
    spans: list[tuple[float, float]] = field(default_factory=list)
    trimmed_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "recording_id": self.recording_id,
            "event_id": self.event_id,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "duration_seconds": round(self.duration, 3),
            "size_bytes": self.size,
            "files": self.files,
        }


class QuotaExceeded(Exception):
    pass


_COLUMNS = (
    "recording_id, event_id, started_at, ended_at, duration_seconds, size_bytes, files,"
    " spans, trimmed_seconds"
)


def _row(row: tuple[Any, ...]) -> RecordingInfo:
    return RecordingInfo(
        recording_id=row[0],
        event_id=row[1],
        started_at=datetime.fromisoformat(row[2]),
        ended_at=datetime.fromisoformat(row[3]),
        duration=float(row[4]),
        size=int(row[5]),
        files=json.loads(row[6]),
        spans=[(float(a), float(b)) for a, b in json.loads(row[7] or "[]")],
        trimmed_seconds=float(row[8] or 0.0),
    )


def list_recordings(
    db: Database, *, owner_id: int | None = None, event_id: str | None = None
) -> list[RecordingInfo]:
    """Newest first; ``owner_id`` None lists every organiser's (else that account's events'
    and those it co-organises'), ``event_id`` one event's."""
    sql = f"SELECT {', '.join('r.' + c.strip() for c in _COLUMNS.split(','))}"
    sql += " FROM recordings r JOIN events e ON e.event_id = r.event_id WHERE 1 = 1"
    params: list[Any] = []
    if owner_id is not None:
        sql += (
            " AND (e.owner_id = ? OR e.event_id IN"
            " (SELECT event_id FROM event_organisers WHERE user_id = ?))"
        )
        params += [owner_id, owner_id]
    if event_id is not None:
        sql += " AND r.event_id = ?"
        params.append(event_id)
    sql += " ORDER BY r.started_at DESC"
    return [_row(r) for r in db.execute(sql, params).fetchall()]


def get_recording(db: Database, recording_id: str) -> RecordingInfo | None:
    if not _RECORDING_ID.match(recording_id):
        return None
    row = db.execute(
        f"SELECT {_COLUMNS} FROM recordings WHERE recording_id = ?", (recording_id,)
    ).fetchone()
    return None if row is None else _row(row)


def file_path(root: Path, info: RecordingInfo, name: str) -> Path | None:
    """The path of one of the recording's files under ``root`` (``<shared_dir>/recordings``);
    None unless it is in the recording's manifest."""
    if not _FILE_NAME.match(name) or name not in {f["name"] for f in info.files}:
        return None
    return root / info.recording_id / name


def sql_auto_record(db: Database, event_id: str) -> bool:
    row = db.execute(
        "SELECT auto_record FROM event_recording WHERE event_id = ?", (event_id,)
    ).fetchone()
    return bool(row and row[0])


def sql_set_auto_record(db: Database, event_id: str, on: bool) -> None:
    db.execute(
        "INSERT INTO event_recording (event_id, auto_record) VALUES (?, ?)"
        " ON CONFLICT (event_id) DO UPDATE SET auto_record = excluded.auto_record",
        (event_id, int(on)),
    )


class RecordingService:
    """The application's side of recording: implements the rooms' RecordingHooks and
    signalling's RecordingPolicy, and serves the dashboard."""

    def __init__(self, store: Store, root: Path, *, quota_bytes: int) -> None:
        self.store = store
        self.root = root
        self.quota_bytes = quota_bytes
        #: Told ``(event_id, data)`` when a recording is stored (the app sends a webhook).
        self.on_ready: Callable[[str, dict[str, Any]], None] | None = None

    # ------------------------------------------------------------------ rooms' hooks

    def directory_for(self, room_id: str, recording_id: str) -> Path:
        return self.root / recording_id

    async def finished(self, started: RecordingStarted, result: RecordingResult) -> None:
        files = [f.as_dict() for f in result.files if f.error is None and f.size > 0]
        if not files:
            await asyncio.to_thread(shutil.rmtree, result.directory, True)
            logger.info("recording %s held no media; discarded", started.recording_id)
            return
        payload = (
            started.recording_id,
            started.room_id,
            iso_time(started.started_at),
            iso_time(result.ended_at),
            result.duration,
            sum(f["size"] for f in files),
            json.dumps(files),
            json.dumps([[round(a, 3), round(b, 3)] for a, b in result.spans]),
            0.0,
        )

        def insert(db: SyncStore) -> None:
            db.connection.execute(
                f"INSERT INTO recordings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", payload
            )

        await self.store.run(insert)
        if self.on_ready is not None:
            self.on_ready(
                started.room_id,
                {
                    "recording_id": started.recording_id,
                    "started_at": payload[2],
                    "ended_at": payload[3],
                    "duration_seconds": round(result.duration, 3),
                    "size_bytes": payload[5],
                    "files": [f["name"] for f in files],
                },
            )

    # ------------------------------------------------------------------ signalling's policy

    async def refusal(self, event: Event) -> str | None:
        if self.quota_bytes <= 0:
            return _("recording is disabled on this server")
        if event.owner_id is None:
            return None
        used = await self.usage(event.owner_id)
        if used >= self.quota_bytes:
            return _(
                "the recording quota (%(quota)s MiB) is used up (%(used)s MiB stored):"
                " delete recordings in the dashboard to record again"
            ) % {"quota": self.quota_bytes // MIB, "used": f"{used / MIB:.0f}"}
        return None

    async def auto_record(self, event: Event) -> bool:
        return await self.store.run(lambda db: sql_auto_record(db.connection, event.event_id))

    async def set_auto_record(self, event_id: str, on: bool) -> None:
        await self.store.run(lambda db: sql_set_auto_record(db.connection, event_id, on))

    # ------------------------------------------------------------------ queries

    async def usage(self, owner_id: int) -> int:
        def get(db: SyncStore) -> int:
            (used,) = db.connection.execute(
                "SELECT coalesce(sum(r.size_bytes), 0) FROM recordings r"
                " JOIN events e ON e.event_id = r.event_id WHERE e.owner_id = ?",
                (owner_id,),
            ).fetchone()
            return int(used)

        return await self.store.run(get)

    async def list(
        self, *, owner_id: int | None = None, event_id: str | None = None
    ) -> list[RecordingInfo]:
        """Newest first; ``owner_id`` None lists every organiser's."""

        return await self.store.run(
            lambda db: list_recordings(db.connection, owner_id=owner_id, event_id=event_id)
        )

    async def get(self, recording_id: str) -> RecordingInfo | None:
        if not _RECORDING_ID.match(recording_id):
            return None
        return await self.store.run(lambda db: get_recording(db.connection, recording_id))

    def file_path(self, info: RecordingInfo, name: str) -> Path | None:
        """The path of one of the recording's files; None unless it is in the manifest."""
        return file_path(self.root, info, name)

    # ------------------------------------------------------------------ changes

    async def delete(self, recording_id: str) -> bool:
        info = await self.get(recording_id)
        if info is None:
            return False

        def remove(db: SyncStore) -> None:
            db.connection.execute("DELETE FROM recordings WHERE recording_id = ?", (recording_id,))

        await self.store.run(remove)
        await asyncio.to_thread(shutil.rmtree, self.root / recording_id, True)
        return True

    async def delete_event_recordings(self, event_id: str) -> int:
        recordings = await self.list(event_id=event_id)
        for info in recordings:
            await self.delete(info.recording_id)
        return len(recordings)

    async def trim(self, recording_id: str, start: float, end: float) -> RecordingInfo:
        """Keep ``start``..``end`` seconds of the recording, cut at keyframes, no re-encoding."""
        info = await self.get(recording_id)
        if info is None:
            raise KeyError(recording_id)
        if not (0 <= start < end) or start >= info.duration:
            raise ValueError(
                _("choose 0 <= start < end, and start before %(duration)s s")
                % {"duration": f"{info.duration:.1f}"}
            )
        end = min(end, info.duration)
        folder = self.root / recording_id
        files = await asyncio.to_thread(_trim_files, folder, info.files, start, end)
        if not files:
            raise ValueError(_("nothing of the recording lies in that span"))
        size = sum(int(f["size"]) for f in files)
        duration = max(float(f["offset"]) + float(f["duration"]) for f in files)

        def update(db: SyncStore) -> None:
            db.connection.execute(
                "UPDATE recordings SET files = ?, size_bytes = ?, duration_seconds = ?,"
                " trimmed_seconds = trimmed_seconds + ? WHERE recording_id = ?",
                (json.dumps(files), size, duration, start, recording_id),
            )

        await self.store.run(update)
        trimmed = await self.get(recording_id)
        assert trimmed is not None
        return trimmed


# ----------------------------------------------------------------------------- trimming


def _trim_files(
    folder: Path, files: list[dict[str, Any]], start: float, end: float
) -> list[dict[str, Any]]:
    """Blocking: rewrite each file to the span (recording time); returns the new manifest."""
    kept: list[dict[str, Any]] = []
    for entry in files:
        offset = float(entry["offset"])
        local_start = max(0.0, start - offset)
        local_end = end - offset
        path = folder / entry["name"]
        if local_end <= 0 or local_start >= float(entry["duration"]):
            path.unlink(missing_ok=True)
            continue
        tmp = path.with_suffix(".trim" + path.suffix)
        cut, duration = trim_webm(path, tmp, local_start, local_end)
        tmp.replace(path)
        new = dict(entry)
        new["offset"] = max(0.0, offset + cut - start)
        new["duration"] = duration
        new["size"] = path.stat().st_size
        kept.append(new)
    return kept


def trim_webm(src: Path, dst: Path, start: float, end: float) -> tuple[float, float]:
    """Copy ``src`` to ``dst`` keeping ``start``..``end`` seconds without decoding (a WebM, or
    the composed MP4 when ``dst`` ends in ``.mp4``).

    The cut falls on the last video keyframe at or before ``start`` (the first one if
    none is earlier), so the result begins with a decodable frame; audio starts at
    the same instant. Returns (the cut time in ``src``, the new duration)."""
    with av.open(str(src)) as inp:
        keys = (
            sorted(
                float(p.pts * p.time_base)
                for p in inp.demux(video=0)
                if p.pts is not None and p.is_keyframe
            )
            if inp.streams.video
            else []
        )
    if keys:
        earlier = [k for k in keys if k <= start + 1e-6]
        cut = earlier[-1] if earlier else keys[0]
    else:
        cut = start
    last = 0.0
    fmt = "mp4" if dst.suffix == ".mp4" else "webm"
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=fmt) as out:
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        waiting_key = {s.index for s in inp.streams.video}
        for packet in inp.demux():
            if packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base)
            if t < cut - 1e-6 or t > end:
                continue
            index = packet.stream.index
            if index in waiting_key:
                if not packet.is_keyframe:
                    continue
                waiting_key.discard(index)
            shift = round(cut / packet.time_base)
            packet.pts -= shift
            packet.dts = packet.pts
            packet.stream = mapping[index]
            out.mux(packet)
            last = max(last, t - cut + float((packet.duration or 0) * packet.time_base))
    return cut, last
