"""Uploaded files of events: received as a stream within the size limit and the organiser's
quota, checked by content, scanned by clamd, then kept and listed.

Files live in ``<shared_dir>/content/<event_id>/<content_id>``; while one arrives it is
``<shared_dir>/content/.partial/<content_id>`` and never listed or served. The
``content_files`` table (migration 14) holds one row per file. An upload first *reserves*
its bytes against the quota in that table (a row in state ``uploading`` whose size grows
ahead of the bytes received, in a write transaction, so uploads running at once on any worker
cannot together pass the quota), then writes. Whatever fails — the size limit, the quota, a
file that is not what it claims, malware, a scanner that cannot be reached, a dropped
connection — deletes the partial file and the reservation.

The caller hands :meth:`ContentService.receive` an async iterator of the body's chunks; every
refusal is an :class:`UploadRefused` with a code for programs and a message for people.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import shutil
import time
import unicodedata
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from webinar.content import presentations, sniff
from webinar.content.clamd import Clamd, ScanError
from webinar.content.presentations import (
    Renderer,
    RenderStatus,
    describe,
    is_presentation,
)
from webinar.content.render import MAX_PAGES
from webinar.i18n import _
from webinar.storage.db import Database, transaction
from webinar.storage.store import Event, Store

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
#: How far a reservation runs ahead of the bytes received (one transaction per step).
RESERVE_STEP = 8 * MIB
#: Rendered presentations a process remembers (their rows do not change once ready).
READY_REMEMBERED = 512
#: A reservation older than this was left by a worker that died mid-upload: swept.
STALE_AFTER = timedelta(hours=6)
#: A person's downloads of one file closer together than this count once (a double click,
#: a browser that asks twice).
DOWNLOAD_DEDUP_SECONDS = 60.0
_CONTENT_ID = re.compile(r"^cnt_[0-9a-f]{24}$")
_COLUMNS = (
    "content_id, event_id, owner_id, file_name, declared_type, detected_type, size_bytes,"
    " sha256, scan_status, uploaded_by, created_at"
)
#: What a row read back has: the upload's columns, then its presentation's (migration 15).
_SELECT = _COLUMNS + ", pages, render_status, render_message, render_at"


class ScanStatus:
    UPLOADING = "uploading"
    CLEAN = "clean"
    INFECTED = "infected"
    UNSCANNED = "unscanned"


@dataclass(frozen=True, slots=True)
class ContentFile:
    content_id: str
    event_id: str
    owner_id: int | None
    file_name: str
    declared_type: str
    detected_type: str
    size: int
    sha256: str
    scan_status: str
    uploaded_by: str
    created_at: datetime
    #: A presentation's page count once rendered (``render_status`` ``ready``), else None.
    pages: int | None = None
    #: ``none`` (not a presentation, or waiting), ``rendering``, ``ready``, ``failed``.
    render_status: str = RenderStatus.NONE
    #: Why the rendering failed, as stored (:attr:`render_message` words it).
    render_detail: str | None = None
    #: When the worker rendering it last said it still is (ISO time; internal).
    render_at: str | None = None

    @property
    def servable(self) -> bool:
        """Scanned clean, or kept unscanned where no scanner is configured."""
        return self.scan_status in (ScanStatus.CLEAN, ScanStatus.UNSCANNED)

    @property
    def is_presentation(self) -> bool:
        """A PDF, PowerPoint or OpenDocument presentation: shown on stage page by page."""
        return is_presentation(self.detected_type)

    @property
    def render_message(self) -> str | None:
        """Why its pages could not be made, in the current language (None unless failed)."""
        if self.render_status != RenderStatus.FAILED:
            return None
        return describe(self.render_detail)

    def as_json(self) -> dict[str, Any]:
        return {
            "content_id": self.content_id,
            "event_id": self.event_id,
            "file_name": self.file_name,
            "declared_type": self.declared_type,
            "content_type": self.detected_type,
            "size_bytes": self.size,
            "sha256": self.sha256,
            "scan_status": self.scan_status,
            "uploaded_by": self.uploaded_by,
            "created_at": self.created_at.isoformat(),
            "pages": self.pages,
            "render_status": self.render_status,
            "render_message": self.render_message,
        }


class UploadRefused(Exception):
    """``status`` is the HTTP status to answer, ``code`` for programs, ``message`` for people."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def _row(row: tuple[Any, ...]) -> ContentFile:
    return ContentFile(
        content_id=row[0],
        event_id=row[1],
        owner_id=None if row[2] is None else int(row[2]),
        file_name=row[3],
        declared_type=row[4],
        detected_type=row[5],
        size=int(row[6]),
        sha256=row[7],
        scan_status=row[8],
        uploaded_by=row[9],
        created_at=datetime.fromisoformat(row[10]),
        pages=None if row[11] is None else int(row[11]),
        render_status=row[12],
        render_detail=row[13],
        render_at=row[14],
    )


def clean_file_name(name: str) -> str:
    """A file name fit to keep and to send back in ``Content-Disposition``: the last path
    part, control characters and quotes dropped, at most 200 characters; "" when nothing
    is left."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in '"')
    name = name.strip().strip(".").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 199 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    return name


# ----------------------------------------------------------------------------- SQL


def sql_used(db: Database, owner_id: int | None) -> int:
    """Bytes the organiser's files and running uploads take (reservations included)."""
    where = "owner_id IS NULL" if owner_id is None else "owner_id = ?"
    params: tuple[Any, ...] = () if owner_id is None else (owner_id,)
    row = db.execute(
        f"SELECT COALESCE(SUM(size_bytes), 0) FROM content_files WHERE {where}", params
    ).fetchone()
    return int(row[0])


def sql_reserve(
    db: Database, content_id: str, owner_id: int | None, total: int, quota: int
) -> bool:
    """Grow the upload's reservation to ``total`` bytes if the quota allows (one write
    transaction: reservations of uploads running at once are counted one after the other)."""
    with transaction(db, immediate=True):
        row = db.execute(
            "SELECT size_bytes FROM content_files WHERE content_id = ?", (content_id,)
        ).fetchone()
        if row is None:
            return False
        if sql_used(db, owner_id) - int(row[0]) + total > quota:
            return False
        db.execute(
            "UPDATE content_files SET size_bytes = ? WHERE content_id = ?", (total, content_id)
        )
        return True


def sql_list(db: Database, event_id: str, *, servable_only: bool = False) -> list[ContentFile]:
    sql = f"SELECT {_SELECT} FROM content_files WHERE event_id = ? AND scan_status <> ?"
    params: list[Any] = [event_id, ScanStatus.UPLOADING]
    if servable_only:
        sql += " AND scan_status IN (?, ?)"
        params += [ScanStatus.CLEAN, ScanStatus.UNSCANNED]
    sql += " ORDER BY created_at, content_id"
    return [_row(r) for r in db.execute(sql, params).fetchall()]


def sql_get(db: Database, content_id: str) -> ContentFile | None:
    if not _CONTENT_ID.match(content_id):
        return None
    row = db.execute(
        f"SELECT {_SELECT} FROM content_files WHERE content_id = ?", (content_id,)
    ).fetchone()
    return None if row is None else _row(row)


def sql_record_download(
    db: Database, info: ContentFile, person_key: str, at: float, *, within: float
) -> bool:
    """Count a download of ``info`` by ``person_key`` at ``at`` unless the same person's last
    one of this file was less than ``within`` seconds before (one write transaction, so two
    requests at once count once). True if counted."""
    with transaction(db, immediate=True):
        recent = db.execute(
            "SELECT 1 FROM content_downloads WHERE content_id = ? AND person_key = ? AND at > ?"
            " LIMIT 1",
            (info.content_id, person_key, at - within),
        ).fetchone()
        if recent is not None:
            return False
        db.execute(
            "INSERT INTO content_downloads (event_id, content_id, file_name, person_key, at)"
            " VALUES (?, ?, ?, ?, ?)",
            (info.event_id, info.content_id, info.file_name, person_key, at),
        )
        return True


def sql_downloads(db: Database, event_id: str) -> dict[str, int]:
    """Downloads counted per person key in the event."""
    return {
        str(key): int(n)
        for key, n in db.execute(
            "SELECT person_key, count(*) FROM content_downloads WHERE event_id = ?"
            " GROUP BY person_key",
            (event_id,),
        ).fetchall()
    }


# ----------------------------------------------------------------------------- service


class ContentService:
    """``root`` is ``<shared_dir>/content``; ``quota_bytes`` per organiser, ``max_file_bytes``
    per file; ``scanner`` None: files are kept unscanned, or refused with ``require_scan``.
    Presentations are rendered to pages in the background (:mod:`.presentations`; at most
    ``max_pages`` pages; PowerPoint and OpenDocument through LibreOffice's ``soffice``, None:
    not installed) between :meth:`start` and :meth:`close`."""

    def __init__(
        self,
        store: Store,
        root: Path,
        *,
        max_file_bytes: int,
        quota_bytes: int,
        scanner: Clamd | None = None,
        require_scan: bool = False,
        max_pages: int = MAX_PAGES,
        soffice: str | None = None,
    ) -> None:
        self.store = store
        self.root = root
        self.partial = root / ".partial"
        self.max_file_bytes = max_file_bytes
        self.quota_bytes = quota_bytes
        self.scanner = scanner
        self.require_scan = require_scan
        self.renderer = Renderer(store, root, max_pages=max_pages, soffice=soffice)
        #: Rendered presentations by ID, least recently asked for first.
        self._ready: OrderedDict[str, ContentFile] = OrderedDict()

    async def start(self, *, exclusive: bool = True) -> None:
        """Start rendering presentations: those left unfinished first (every one when this
        process is the only worker, ``exclusive``; else those whose worker died)."""
        await self.renderer.start(exclusive=exclusive)

    async def close(self) -> None:
        """Stop rendering (unfinished renderings are handed back for the next start)."""
        await self.renderer.close()

    # ------------------------------------------------------------------ presentations

    async def presentation(self, content_id: str) -> ContentFile | None:
        """The presentation ``content_id`` (its ``pages`` and ``render_status``), or None when
        there is no such servable file or it is not a presentation. One waiting to be
        rendered, or whose renderer died, is started here. A rendered one is remembered
        (every attendee asks for each page as it comes on stage; it does not change)."""
        known = self._ready.get(content_id)
        if known is not None:
            # deleted by another worker: its file is gone from the shared folder
            if await asyncio.to_thread(self.path_of(known).is_file):
                self._ready.move_to_end(content_id)
                return known
            self._ready.pop(content_id, None)
        info = await self.get(content_id)
        if info is None or not info.servable or not info.is_presentation:
            return None
        if self._stalled(info) and await self.renderer.kick(
            info.content_id, info.event_id, info.detected_type
        ):
            info = await self.get(content_id)
        if info is not None and info.render_status == RenderStatus.READY:
            self._ready[content_id] = info
            while len(self._ready) > READY_REMEMBERED:
                self._ready.popitem(last=False)
        return info

    def _stalled(self, info: ContentFile) -> bool:
        if info.render_status == RenderStatus.NONE:
            return True
        if info.render_status != RenderStatus.RENDERING or self.renderer.rendering_here(
            info.content_id
        ):
            return False
        if info.render_at is None:
            return True
        age = datetime.now(UTC) - datetime.fromisoformat(info.render_at)
        return age.total_seconds() > presentations.STALE_SECONDS

    def page_path(self, info: ContentFile, n: int) -> Path:
        """Where page ``n`` (1-based) of the presentation is, once it is ``ready``."""
        return self.renderer.page_path(info.event_id, info.content_id, n)

    async def render_again(self, info: ContentFile) -> bool:
        """Render a presentation whose rendering failed once more (False: it did not fail)."""
        self._ready.pop(info.content_id, None)
        if not info.is_presentation or info.render_status != RenderStatus.FAILED:
            return False
        return await self.renderer.retry(info.content_id, info.event_id, info.detected_type)

    @property
    def scanning(self) -> bool:
        return self.scanner is not None

    def path_of(self, info: ContentFile) -> Path:
        return self.root / info.event_id / info.content_id

    async def used(self, owner_id: int | None) -> int:
        return await self.store.run_sql(lambda db: sql_used(db, owner_id))

    async def list(self, event_id: str, *, servable_only: bool = False) -> list[ContentFile]:
        return await self.store.run_sql(
            lambda db: sql_list(db, event_id, servable_only=servable_only)
        )

    async def get(self, content_id: str) -> ContentFile | None:
        return await self.store.run_sql(lambda db: sql_get(db, content_id))

    async def record_download(
        self, info: ContentFile, person_key: str, *, at: float | None = None
    ) -> bool:
        """Count a download of ``info`` by the person (an attendance person key), at most
        once a :data:`DOWNLOAD_DEDUP_SECONDS`; True if this one counted."""
        if not person_key or len(person_key) > 200:
            return False
        when = time.time() if at is None else at
        return await self.store.run_sql(
            lambda db: sql_record_download(
                db, info, person_key, when, within=DOWNLOAD_DEDUP_SECONDS
            )
        )

    async def downloads(self, event_id: str) -> dict[str, int]:
        """``{person_key: downloads counted}`` of the event's files."""
        return await self.store.run_sql(lambda db: sql_downloads(db, event_id))

    async def delete(self, info: ContentFile) -> bool:
        content_id = info.content_id

        def forget(db: Database) -> bool:
            cur = db.execute(
                "DELETE FROM content_files WHERE content_id = ? AND scan_status <> ?",
                (content_id, ScanStatus.UPLOADING),
            )
            return bool(cur.rowcount == 1)

        self._ready.pop(content_id, None)
        gone = await self.store.run_sql(forget)
        if gone:
            await self.renderer.cancel(content_id)
            await asyncio.to_thread(self.path_of(info).unlink, missing_ok=True)
            await self.renderer.remove(info.event_id, content_id)
        return gone

    async def delete_event_files(self, event_id: str) -> None:
        """Remove an event's folder (its rows go with the event)."""
        for content_id in [c for c, f in self._ready.items() if f.event_id == event_id]:
            del self._ready[content_id]
        await self.renderer.cancel_event(event_id)
        await asyncio.to_thread(shutil.rmtree, self.root / event_id, ignore_errors=True)

    async def sweep(self) -> int:
        """Forget reservations of uploads a dead worker left (and their partial files)."""
        before = (datetime.now(UTC) - STALE_AFTER).isoformat()

        def stale(db: Database) -> list[str]:
            with transaction(db, immediate=True):
                ids = [
                    str(r[0])
                    for r in db.execute(
                        "SELECT content_id FROM content_files"
                        " WHERE scan_status = ? AND created_at < ?",
                        (ScanStatus.UPLOADING, before),
                    ).fetchall()
                ]
                for content_id in ids:
                    db.execute("DELETE FROM content_files WHERE content_id = ?", (content_id,))
                return ids

        ids = await self.store.run_sql(stale)
        for content_id in ids:
            await asyncio.to_thread((self.partial / content_id).unlink, missing_ok=True)
        return len(ids)

    # ------------------------------------------------------------------ upload

    def _too_large(self) -> UploadRefused:
        return UploadRefused(
            413,
            "file-too-large",
            _("files may be at most %(mb)d MB") % {"mb": self.max_file_bytes // MIB},
            max_bytes=self.max_file_bytes,
        )

    def _over_quota(self, used: int) -> UploadRefused:
        return UploadRefused(
            413,
            "quota-exceeded",
            _(
                "this upload does not fit in the organiser's storage of %(quota)d MB"
                " (%(used)d MB used); delete files to make room"
            )
            % {"quota": self.quota_bytes // MIB, "used": -(-used // MIB)},
            quota_bytes=self.quota_bytes,
            used_bytes=used,
        )

    async def receive(
        self,
        event: Event,
        chunks: AsyncIterator[bytes],
        *,
        file_name: str,
        content_type: str | None,
        declared_size: int | None,
        uploaded_by: str,
    ) -> ContentFile:
        """Store one upload of ``event`` from ``chunks``; the stored file, or
        :class:`UploadRefused` (nothing kept then)."""
        if self.scanner is None and self.require_scan:
            raise UploadRefused(
                503,
                "scanner-required",
                _(
                    "uploads are refused: this server requires a malware scan and no scanner"
                    " is configured; ask its administrator"
                ),
            )
        if self.quota_bytes == 0:
            raise UploadRefused(403, "uploads-disabled", _("uploads are turned off on this server"))
        name = clean_file_name(file_name)
        if not name:
            raise UploadRefused(400, "bad-name", _("the file needs a name"))
        declared = sniff.claimed_type(content_type, name)
        if declared and declared not in sniff.ACCEPTED:
            raise self._unsupported()
        if declared_size is not None and declared_size > self.max_file_bytes:
            raise self._too_large()
        owner_id = event.owner_id
        content_id = "cnt_" + secrets.token_hex(12)
        now = datetime.now(UTC).isoformat()
        first = min(declared_size or 0, self.max_file_bytes)

        def reserve_row(db: Database) -> int | None:
            """Create the reservation (``first`` bytes, the declared size); None if it fits,
            else the bytes used."""
            with transaction(db, immediate=True):
                used = sql_used(db, owner_id)
                if used + first > self.quota_bytes:
                    return used
                db.execute(
                    f"INSERT INTO content_files ({_COLUMNS}) VALUES"
                    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        content_id,
                        event.event_id,
                        owner_id,
                        name,
                        declared,
                        "",
                        first,
                        "",
                        ScanStatus.UPLOADING,
                        uploaded_by,
                        now,
                    ),
                )
                return None

        used = await self.store.run_sql(reserve_row)
        if used is not None:
            raise self._over_quota(used)
        partial = self.partial / content_id
        try:
            info = await self._receive(
                content_id, partial, chunks, event, name, declared, first, uploaded_by, now
            )
        except BaseException:
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            with contextlib.suppress(Exception):
                await self.store.run_sql(
                    lambda db: db.execute(
                        "DELETE FROM content_files WHERE content_id = ?", (content_id,)
                    )
                )
            raise
        return info

    def _unsupported(self) -> UploadRefused:
        return UploadRefused(
            415,
            "unsupported-type",
            _(
                "this kind of file is not accepted: upload PDF, PNG, JPEG, GIF, WebP, MP4,"
                " WebM, PowerPoint (.pptx), Word (.docx), Excel (.xlsx) or OpenDocument files"
            ),
        )

    async def _receive(
        self,
        content_id: str,
        partial: Path,
        chunks: AsyncIterator[bytes],
        event: Event,
        name: str,
        declared: str,
        reserved: int,
        uploaded_by: str,
        now: str,
    ) -> ContentFile:
        owner_id = event.owner_id
        await asyncio.to_thread(partial.parent.mkdir, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        head = b""
        kept_as: str | None = None
        out: BinaryIO = await asyncio.to_thread(partial.open, "xb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_file_bytes:
                    raise self._too_large()
                if size > reserved:
                    step = min(self.max_file_bytes, max(size, reserved + RESERVE_STEP))
                    # the step ahead, else (the file may end soon) exactly what arrived
                    for want in (step, size):
                        if await self._reserve(content_id, owner_id, want):
                            reserved = want
                            break
                    else:
                        used = await self.used(owner_id)
                        raise self._over_quota(used - reserved)
                if kept_as is None:
                    head += chunk[: sniff.HEAD_BYTES - len(head)]
                    if len(head) >= 16:
                        kept_as = self._check(declared, head)
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)
        if size == 0:
            raise UploadRefused(400, "empty-file", _("the file is empty"))
        if kept_as is None:
            kept_as = self._check(declared, head)
        if kept_as in sniff.OFFICE_TYPES and not await asyncio.to_thread(
            sniff.office_type, partial, kept_as
        ):
            raise self._not_what_it_claims(kept_as)
        if "." not in name:  # a name without an extension gets its type's
            name += next((ext for ext, kind in sniff.EXTENSIONS.items() if kind == kept_as), "")
        status = await self._scan(partial, name, event)
        final = self.root / event.event_id / content_id
        await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(partial.replace, final)
        sha = digest.hexdigest()
        # a presentation is claimed for rendering here as it becomes visible
        claim = self.renderer.new_claim() if is_presentation(kept_as) else None
        rendering = RenderStatus.NONE if claim is None else RenderStatus.RENDERING
        render_at = None if claim is None else datetime.now(UTC).isoformat(timespec="microseconds")

        def keep(db: Database) -> None:
            with transaction(db, immediate=True):
                db.execute(
                    "UPDATE content_files SET file_name = ?, detected_type = ?, size_bytes = ?,"
                    " sha256 = ?, scan_status = ?, render_status = ?, render_claim = ?,"
                    " render_at = ? WHERE content_id = ?",
                    (name, kept_as, size, sha, status, rendering, claim, render_at, content_id),
                )

        try:
            await self.store.run_sql(keep)
        except BaseException:
            await asyncio.to_thread(final.unlink, missing_ok=True)
            raise
        logger.info(
            "content %s of event %s stored: %s, %d bytes, %s",
            content_id,
            event.event_id,
            kept_as,
            size,
            status,
        )
        if claim is not None:
            self.renderer.spawn(content_id, event.event_id, kept_as, claim)
        return ContentFile(
            content_id=content_id,
            event_id=event.event_id,
            owner_id=owner_id,
            file_name=name,
            declared_type=declared,
            detected_type=kept_as,
            size=size,
            sha256=sha,
            scan_status=status,
            uploaded_by=uploaded_by,
            created_at=datetime.fromisoformat(now),
            render_status=rendering,
            render_at=render_at,
        )

    async def _reserve(self, content_id: str, owner_id: int | None, total: int) -> bool:
        quota = self.quota_bytes
        return await self.store.run_sql(
            lambda db: sql_reserve(db, content_id, owner_id, total, quota)
        )

    def _not_what_it_claims(self, declared: str) -> UploadRefused:
        return UploadRefused(
            415,
            "type-mismatch",
            _("this file is not what it claims to be (%(type)s): its content is something else")
            % {"type": declared},
        )

    def _check(self, declared: str, head: bytes) -> str:
        detected = sniff.sniff(head)
        try:
            return sniff.check_claim(declared, detected)
        except sniff.Mismatch as exc:
            if declared and str(exc) in ("mismatch", "unknown", "zip"):
                raise self._not_what_it_claims(declared) from None
            raise self._unsupported() from None

    async def _scan(self, path: Path, name: str, event: Event) -> str:
        if self.scanner is None:
            return ScanStatus.UNSCANNED
        try:
            verdict = await self.scanner.scan_file(path)
        except ScanError as exc:
            logger.warning("malware scan of an upload to event %s failed: %s", event.event_id, exc)
            raise UploadRefused(
                503,
                "scan-failed",
                _("the malware scanner could not check this file; try again later"),
            ) from None
        if not verdict.clean:
            logger.warning(
                "upload %r to event %s refused: malware %s", name, event.event_id, verdict.found
            )
            raise UploadRefused(
                422,
                "malware-found",
                _("this file contains malware (%(name)s) and was deleted")
                % {"name": verdict.found},
                signature=verdict.found,
            )
        return ScanStatus.CLEAN
