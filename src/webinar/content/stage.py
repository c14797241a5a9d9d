"""What a live room shows on stage, kept: the stage's state, its timeline, the whiteboard.

:class:`StageService` restores a room's :class:`webinar.rooms.stage.StageContent` the first
time the room needs it, writes each planned change before the room applies it (one
transaction: the state, the timeline entry, the stroke part or the cleared page), and looks up
the uploaded files a command names (a presentation's pages, a video, a file to offer) so that
only this event's servable files reach the stage. Tables: migration 15.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from webinar.content import sniff
from webinar.content.library import ContentFile, ContentService
from webinar.content.presentations import RenderStatus
from webinar.i18n import _
from webinar.rooms.interaction_errors import InteractionError, InteractionErrorCode
from webinar.rooms.stage import OfferedFile, StageChange, StageContent, Stroke, StrokeDrawn
from webinar.storage.db import Database, transaction
from webinar.storage.store import Store

logger = logging.getLogger(__name__)

E = InteractionErrorCode
VIDEO_TYPES = frozenset({sniff.MP4, sniff.WEBM})


@dataclass(frozen=True, slots=True)
class StageLogEntry:
    at: float
    kind: str
    by: str | None
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "by": self.by, **self.data}


def _part(stroke: Stroke, change: StageChange) -> dict[str, Any]:
    """One kept message of a stroke: its new points (``append``) or all of them."""
    drawn = next((e for e in change.events if isinstance(e, StrokeDrawn)), None)
    append = drawn is not None and drawn.append and stroke.parts > 1
    points = drawn.points if drawn is not None and append else stroke.points
    return {
        "by": stroke.by,
        "tool": stroke.tool,
        "color": stroke.color,
        "width": stroke.width,
        "text": stroke.text,
        "done": stroke.done,
        "append": append,
        "points": [list(p) for p in points],
    }


def sql_write(
    db: Database, event_id: str, stage: StageContent, change: StageChange, by: str, now: float
) -> None:
    with transaction(db, immediate=True):
        if change.values:
            data = json.dumps(stage.to_json(change.values), separators=(",", ":"))
            updated = db.execute(
                "UPDATE stage_state SET data = ?, updated_at = ? WHERE event_id = ?",
                (data, now, event_id),
            ).rowcount
            if not updated:
                db.execute(
                    "INSERT INTO stage_state (event_id, data, updated_at) VALUES (?, ?, ?)",
                    (event_id, data, now),
                )
        if change.log is not None:
            kind, details = change.log
            db.execute(
                "INSERT INTO stage_log (event_id, at, kind, by, data) VALUES (?, ?, ?, ?, ?)",
                (event_id, now, kind, by or None, json.dumps(details, separators=(",", ":"))),
            )
        if change.cleared is not None:
            db.execute(
                "DELETE FROM whiteboard_parts WHERE event_id = ? AND page = ?",
                (event_id, change.cleared),
            )
        stroke = change.stroke
        if stroke is not None:
            db.execute(
                "INSERT INTO whiteboard_parts (event_id, stroke_id, part, page, at, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    event_id,
                    stroke.stroke_id,
                    stroke.parts - 1,
                    stroke.page,
                    now,
                    json.dumps(_part(stroke, change), separators=(",", ":")),
                ),
            )


def sql_load(db: Database, event_id: str) -> tuple[dict[str, Any] | None, list[Stroke]]:
    row = db.execute("SELECT data FROM stage_state WHERE event_id = ?", (event_id,)).fetchone()
    state = json.loads(row[0]) if row is not None else None
    strokes: dict[str, Stroke] = {}
    for stroke_id, part, page, data in db.execute(
        "SELECT stroke_id, part, page, data FROM whiteboard_parts WHERE event_id = ?"
        " ORDER BY at, stroke_id, part",
        (event_id,),
    ).fetchall():
        value = json.loads(data)
        points = tuple((float(x), float(y)) for x, y in value["points"])
        known = strokes.get(stroke_id)
        if known is None:
            strokes[stroke_id] = Stroke(
                stroke_id=stroke_id,
                page=int(page),
                by=str(value.get("by") or ""),
                tool=str(value["tool"]),
                color=str(value["color"]),
                width=int(value["width"]),
                points=points,
                text=value.get("text"),
                done=bool(value.get("done")),
                parts=int(part) + 1,
            )
            continue
        strokes[stroke_id] = Stroke(
            stroke_id=stroke_id,
            page=known.page,
            by=known.by,
            tool=known.tool,
            color=known.color,
            width=known.width,
            points=known.points + points if value.get("append") else points,
            text=value.get("text", known.text),
            done=bool(value.get("done")),
            parts=int(part) + 1,
        )
    return state, list(strokes.values())


def sql_log(db: Database, event_id: str, limit: int) -> list[StageLogEntry]:
    rows = db.execute(
        "SELECT at, kind, by, data FROM stage_log WHERE event_id = ? ORDER BY at LIMIT ?",
        (event_id, limit),
    ).fetchall()
    return [StageLogEntry(float(a), str(k), b, json.loads(d)) for a, k, b, d in rows]


class StageService:
    """Keeps rooms' stages in the store and checks the files their commands name."""

    def __init__(self, store: Store, content: ContentService) -> None:
        self._store = store
        self.content = content

    def replica(self) -> StageService:
        """The same reads, no writes: for replaying another worker's command here."""
        return _ReplayStage(self._store, self.content)

    async def load(
        self, stage: StageContent, event_id: str, external: dict[str, Any] | None
    ) -> None:
        if stage.loaded:
            return
        state, strokes = await self._store.run_sql(lambda db: sql_load(db, event_id))
        if stage.loaded:  # another session loaded it meanwhile
            return
        stage.external = external is not None
        stage.external_player = external
        stage.restore(state, strokes)
        stage.loaded = True

    async def write(
        self, event_id: str, stage: StageContent, change: StageChange, by: str, now: float
    ) -> None:
        if not change.values and change.log is None and change.stroke is None is change.cleared:
            return  # a pointer, or nothing changed
        await self._store.run_sql(lambda db: sql_write(db, event_id, stage, change, by, now))

    async def offered_now(self, event_id: str) -> frozenset[str]:
        """The files offered for download in the event's room now (read from the store, so
        the same on every worker)."""

        def read(db: Database) -> frozenset[str]:
            row = db.execute(
                "SELECT data FROM stage_state WHERE event_id = ?", (event_id,)
            ).fetchone()
            files = json.loads(row[0]).get("files", []) if row is not None else []
            return frozenset(str(f["content_id"]) for f in files)

        return await self._store.run_sql(read)

    async def log(self, event_id: str, limit: int = 10_000) -> list[StageLogEntry]:
        return await self._store.run_sql(lambda db: sql_log(db, event_id, limit))

    async def slides(self, event_id: str, end: float | None) -> list[SlideShown]:
        """Which page of which presentation was on stage when (statistics, recordings)."""
        return slide_timeline(await self.log(event_id), end)

    # -------------------------------------------------------------- the files commands name

    async def _file(self, event_id: str, content_id: str) -> ContentFile:
        info = await self.content.get(content_id)
        if info is None or info.event_id != event_id:
            raise InteractionError(E.NOT_FOUND, _("no such file in this event"))
        if not info.servable:
            raise InteractionError(E.INVALID, _("this file has not passed the malware scan"))
        return info

    async def presentation(self, event_id: str, content_id: str) -> tuple[ContentFile, int]:
        """A presentation's file and its page count, once its pages are rendered."""
        await self._file(event_id, content_id)  # this event's, and scanned
        info = await self.content.presentation(content_id)
        if info is None:
            raise InteractionError(E.INVALID, _("this file is not a presentation with pages"))
        if info.render_status == RenderStatus.FAILED:
            raise InteractionError(
                E.INVALID,
                info.render_message or _("this presentation's pages could not be made"),
            )
        if info.render_status != RenderStatus.READY or not info.pages:
            raise InteractionError(
                E.INVALID, _("this presentation's pages are still being prepared")
            )
        return info, int(info.pages)

    async def video(self, event_id: str, content_id: str) -> ContentFile:
        info = await self._file(event_id, content_id)
        if info.detected_type not in VIDEO_TYPES:
            raise InteractionError(E.INVALID, _("only MP4 and WebM videos can be played"))
        return info

    async def offered(self, event_id: str, content_id: str) -> OfferedFile:
        info = await self._file(event_id, content_id)
        return OfferedFile(info.content_id, info.file_name, info.size, info.detected_type)


class _ReplayStage(StageService):
    async def write(
        self, event_id: str, stage: StageContent, change: StageChange, by: str, now: float
    ) -> None:
        return None


# ------------------------------------------------------------------ which slide was up when


@dataclass(frozen=True, slots=True)
class SlideShown:
    """A page of a presentation on stage from ``at`` for ``seconds`` (None: still up)."""

    at: float
    content_id: str
    name: str
    page: int
    seconds: float | None


def slide_timeline(entries: list[StageLogEntry], end: float | None) -> list[SlideShown]:
    """Which page was on stage when, from the stage's timeline: a page is up while its
    presentation is open *and* the layout shows it; ``end`` closes the last one (the time
    the room emptied), or it is left open (``seconds`` None)."""
    shown: list[SlideShown] = []
    current: dict[str, Any] | None = None  # the open presentation: content_id, name, page
    visible = False
    start: float | None = None

    def close(at: float) -> None:
        nonlocal start
        if start is not None and current is not None:
            shown.append(
                SlideShown(
                    start, current["content_id"], current["name"], current["page"], at - start
                )
            )
        start = None

    for entry in sorted(entries, key=lambda e: e.at):
        data = entry.data
        if entry.kind == "presentation":
            close(entry.at)
            if data.get("content_id"):
                current = {
                    "content_id": data["content_id"],
                    "name": data.get("name", ""),
                    "page": int(data.get("page", 1)),
                }
                visible = True
                start = entry.at
            else:
                current = None
        elif entry.kind == "page" and current is not None:
            close(entry.at)
            current = {**current, "page": int(data.get("page", 1))}
            visible = True
            start = entry.at
        elif entry.kind == "layout":
            now_visible = data.get("layout") == "presentation"
            if visible and not now_visible:
                close(entry.at)
            elif now_visible and not visible and current is not None:
                start = entry.at
            visible = now_visible
    if start is not None and current is not None:
        seconds = None if end is None or end < start else end - start
        shown.append(
            SlideShown(start, current["content_id"], current["name"], current["page"], seconds)
        )
    return shown
