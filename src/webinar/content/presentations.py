"""Presentations: uploaded PDF, PowerPoint and OpenDocument files rendered to page images in
the background, so a presenter can put them on stage and attendees load one small image a
page (:mod:`.render` does the rendering, in a child process).

A file is rendered once, after its upload was accepted (scanned clean, or kept unscanned).
Its row in ``content_files`` says how far it got (migration 15): ``render_status`` is
``none`` (not a presentation, or waiting), ``rendering``, ``ready`` (``pages`` pages) or
``failed`` (``render_message``, a code that :func:`describe` words for people). The pages are
``<root>/<event_id>/<content_id>.pages/<n>.webp`` (1-based); while they are made they go to a
folder of their own beside it, renamed into place when the last page is written.

Several workers share the store: a rendering is *claimed* (a random token in
``render_claim``) in a write transaction, and the worker holding the claim renews
``render_at`` every :data:`HEARTBEAT_SECONDS`. A claim not renewed for :data:`STALE_SECONDS`
was left by a worker that died mid-way; :meth:`Renderer.start` (at once when this process is
the only worker) and a watch every :data:`WATCH_SECONDS` take such renderings over and run
them again, and so does the first request for the presentation. Closing hands the renderings
that were running back (``none``) for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from webinar.content import sniff
from webinar.content.render import (
    MAX_PAGES,
    QUALITY,
    WIDTH,
    RenderFailure,
    convert_to_pdf,
    render_in_child,
)
from webinar.i18n import _, ngettext
from webinar.storage.db import Database, transaction
from webinar.storage.store import Store
from webinar.tasks import stop_task, stop_tasks

logger = logging.getLogger(__name__)

#: The kinds of file shown as pages, and the extension LibreOffice needs to read each
#: (None: a PDF, rendered as it is).
PRESENTATION_TYPES: dict[str, str | None] = {
    sniff.PDF: None,
    sniff.PPTX: ".pptx",
    sniff.ODP: ".odp",
}
#: How often the worker rendering a file renews its claim ...
HEARTBEAT_SECONDS = 20.0
#: ... and how old a claim is when its worker is taken for dead.
STALE_SECONDS = 120.0
#: How often renderings left by dead workers (or handed back) are looked for.
WATCH_SECONDS = 60.0
#: Renderings one process runs at once (each keeps a core busy).
RENDERS_AT_ONCE = 1
#: Half-made pages or conversions not changed for this long were left by a dead worker.
LEFTOVER_SECONDS = 3600.0
#: Part of every page image's ETag: changes when pages would come out differently.
RENDER_VERSION = f"w{WIDTH}q{QUALITY}"


class RenderStatus:
    NONE = "none"
    RENDERING = "rendering"
    READY = "ready"
    FAILED = "failed"


def is_presentation(detected_type: str) -> bool:
    return detected_type in PRESENTATION_TYPES


def describe(detail: str | None) -> str | None:
    """The stored failure ``detail`` (``{"code": ..., ...}``) in the current language."""
    if not detail:
        return None
    try:
        said = json.loads(detail)
    except ValueError:
        said = {}
    if not isinstance(said, dict):
        said = {}
    code = said.get("code")
    page = int(said.get("page") or 0)
    if code == "encrypted":
        return _(
            "this PDF is protected by a password: save it without the password and upload it again"
        )
    if code == "broken":
        return _("this PDF cannot be read: it is damaged or not a real PDF")
    if code == "no-pages":
        return _("this PDF has no pages")
    if code == "too-many-pages":
        pages = int(said.get("pages") or 0)
        return ngettext(
            "this presentation has %(num)d page, more than the %(max)d this server shows;"
            " split it into smaller files",
            "this presentation has %(num)d pages, more than the %(max)d this server shows;"
            " split it into smaller files",
            pages,
        ) % {"num": pages, "max": int(said.get("max_pages") or 0)}
    if code == "bad-page":
        return _("page %(page)d of this PDF cannot be drawn: the file is damaged") % {"page": page}
    if code == "page-timeout":
        return _("page %(page)d of this PDF took too long to draw") % {"page": page}
    if code == "crashed":
        return _("drawing the pages stopped at page %(page)d: the file may be damaged") % {
            "page": page
        }
    if code == "storage":
        return _("the page images could not be saved on the server; try again later")
    if code == "needs-libreoffice":
        return _(
            "PowerPoint and OpenDocument presentations are shown as slides only when LibreOffice"
            " is installed on the server, and it is not; the file can still be downloaded, or"
            " export it as PDF and upload that"
        )
    if code == "convert-failed":
        return _(
            "LibreOffice could not convert this presentation; export it as PDF and upload that"
        )
    if code == "convert-timeout":
        return _("converting this presentation took too long; export it as PDF and upload that")
    return _("the pages of this presentation could not be made")


# ----------------------------------------------------------------------------- SQL


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _stale_before() -> str:
    return (datetime.now(UTC) - timedelta(seconds=STALE_SECONDS)).isoformat(timespec="microseconds")


def _kinds() -> tuple[str, ...]:
    return tuple(PRESENTATION_TYPES)


def sql_claim(db: Database, content_id: str, claim: str, *, force: bool = False) -> bool:
    """Claim the rendering of ``content_id`` for ``claim``: when it waits (``none``), or
    its claim is stale (or ``force``: any ``rendering``, which nobody else runs)."""
    kinds = _kinds()
    marks = ", ".join("?" for _ in kinds)
    waits, params = _waits(force)
    with transaction(db, immediate=True):
        cur = db.execute(
            "UPDATE content_files SET render_status = ?, render_claim = ?, render_at = ?,"
            " pages = NULL, render_message = NULL"
            f" WHERE content_id = ? AND detected_type IN ({marks})"
            f" AND scan_status IN ('clean', 'unscanned') AND {waits}",
            (RenderStatus.RENDERING, claim, _now(), content_id, *kinds, *params),
        )
        return bool(cur.rowcount == 1)


def _waits(force: bool) -> tuple[str, tuple[str, ...]]:
    """The condition of a rendering that waits for a worker, and its parameters."""
    if force:
        return "render_status IN ('none', 'rendering')", ()
    return (
        "(render_status = 'none' OR (render_status = 'rendering'"
        " AND (render_at IS NULL OR render_at < ?)))",
        (_stale_before(),),
    )


def sql_waiting(db: Database, *, force: bool = False) -> list[tuple[str, str, str]]:
    """(content_id, event_id, detected_type) of the presentations waiting to be rendered,
    or whose rendering was left by a dead worker (``force``: every one in ``rendering``)."""
    kinds = _kinds()
    marks = ", ".join("?" for _ in kinds)
    waits, params = _waits(force)
    rows = db.execute(
        "SELECT content_id, event_id, detected_type FROM content_files"
        f" WHERE detected_type IN ({marks}) AND scan_status IN ('clean', 'unscanned')"
        f" AND {waits} ORDER BY created_at, content_id",
        (*kinds, *params),
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def sql_beat(db: Database, content_id: str, claim: str) -> bool:
    with transaction(db, immediate=True):
        cur = db.execute(
            "UPDATE content_files SET render_at = ?"
            " WHERE content_id = ? AND render_claim = ? AND render_status = ?",
            (_now(), content_id, claim, RenderStatus.RENDERING),
        )
        return bool(cur.rowcount == 1)


def sql_holds(db: Database, content_id: str, claim: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM content_files WHERE content_id = ? AND render_claim = ?"
        " AND render_status = ?",
        (content_id, claim, RenderStatus.RENDERING),
    ).fetchone()
    return row is not None


def sql_exists(db: Database, content_id: str) -> bool:
    row = db.execute("SELECT 1 FROM content_files WHERE content_id = ?", (content_id,)).fetchone()
    return row is not None


def sql_finish(
    db: Database, content_id: str, claim: str, *, pages: int | None, failure: str | None
) -> bool:
    """End the rendering ``claim`` holds: ready with ``pages``, or failed with ``failure``."""
    status = RenderStatus.READY if failure is None else RenderStatus.FAILED
    with transaction(db, immediate=True):
        cur = db.execute(
            "UPDATE content_files SET render_status = ?, pages = ?, render_message = ?,"
            " render_claim = NULL, render_at = ?"
            " WHERE content_id = ? AND render_claim = ? AND render_status = ?",
            (status, pages, failure, _now(), content_id, claim, RenderStatus.RENDERING),
        )
        return bool(cur.rowcount == 1)


def sql_release(db: Database, content_id: str, claim: str) -> None:
    """Hand a rendering this worker stops back (``none``: the next start takes it)."""
    with transaction(db, immediate=True):
        db.execute(
            "UPDATE content_files SET render_status = ?, render_claim = NULL, render_at = NULL"
            " WHERE content_id = ? AND render_claim = ? AND render_status = ?",
            (RenderStatus.NONE, content_id, claim, RenderStatus.RENDERING),
        )


def sql_retry(db: Database, content_id: str, claim: str, *, detail: str | None = None) -> bool:
    """Claim a failed rendering again (only those that failed with ``detail``, if given)."""
    sql = (
        "UPDATE content_files SET render_status = ?, render_claim = ?, render_at = ?,"
        " pages = NULL, render_message = NULL WHERE content_id = ? AND render_status = ?"
    )
    params: list[Any] = [RenderStatus.RENDERING, claim, _now(), content_id, RenderStatus.FAILED]
    if detail is not None:
        sql += " AND render_message = ?"
        params.append(detail)
    with transaction(db, immediate=True):
        return bool(db.execute(sql, params).rowcount == 1)


def sql_failed_with(db: Database, detail: str) -> list[tuple[str, str, str]]:
    rows = db.execute(
        "SELECT content_id, event_id, detected_type FROM content_files"
        " WHERE render_status = ? AND render_message = ?",
        (RenderStatus.FAILED, detail),
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


#: What a PowerPoint or OpenDocument presentation fails with when LibreOffice is missing.
NEEDS_LIBREOFFICE = json.dumps({"code": "needs-libreoffice"})


# ----------------------------------------------------------------------------- renderer


class Renderer:
    """Renders the presentations of ``<root>`` (the content folder) in owned background
    tasks, one at a time per process. ``soffice`` is LibreOffice (None: not installed);
    ``max_pages`` the longest presentation rendered."""

    def __init__(
        self,
        store: Store,
        root: Path,
        *,
        max_pages: int = MAX_PAGES,
        soffice: str | None = None,
        page_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.root = root
        self.max_pages = max_pages
        self.soffice = soffice
        self.page_seconds = page_seconds
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._claims: dict[str, str] = {}
        self._events: dict[str, str] = {}
        self._slots = asyncio.Semaphore(RENDERS_AT_ONCE)
        self._watch: asyncio.Task[None] | None = None
        self._closed = False
        #: Called after each rendering ends (content_id, status): tests and metrics.
        self.on_done: Callable[[str, str], None] | None = None

    # ------------------------------------------------------------------ paths

    def pages_dir(self, event_id: str, content_id: str) -> Path:
        return self.root / event_id / f"{content_id}.pages"

    def page_path(self, event_id: str, content_id: str, number: int) -> Path:
        return self.pages_dir(event_id, content_id) / f"{number}.webp"

    def _part_dir(self, event_id: str, content_id: str, claim: str) -> Path:
        return self.root / event_id / f"{content_id}.pages.{claim}.part"

    def _work_dir(self, content_id: str, claim: str) -> Path:
        return self.root / ".partial" / f"{content_id}.{claim}.convert"

    # ------------------------------------------------------------------ lifecycle

    @staticmethod
    def new_claim() -> str:
        return secrets.token_hex(12)

    def rendering_here(self, content_id: str) -> bool:
        return content_id in self._tasks

    async def start(self, *, exclusive: bool) -> None:
        """Take over the renderings left unfinished (all of them when this process is the
        only worker: ``exclusive``) and watch for more."""
        if self.soffice is not None:  # LibreOffice came: try those that needed it again
            for content_id, event_id, kind in await self.store.run_sql(
                lambda db: sql_failed_with(db, NEEDS_LIBREOFFICE)
            ):
                claim = self.new_claim()
                if await self.store.run_sql(
                    functools.partial(
                        sql_retry, content_id=content_id, claim=claim, detail=NEEDS_LIBREOFFICE
                    )
                ):
                    self.spawn(content_id, event_id, kind, claim)
        # conversions a dead worker left (a conversion takes at most a few minutes)
        await asyncio.to_thread(_remove_old, (self.root / ".partial").glob("*.convert"))
        await self.resume(force=exclusive)
        self._watch = asyncio.get_running_loop().create_task(self._watching())

    async def close(self) -> None:
        """Stop every rendering and hand the unfinished ones back."""
        self._closed = True
        await stop_task(self._watch)
        claims = dict(self._claims)
        await stop_tasks(list(self._tasks.values()))
        for content_id, claim in claims.items():
            with contextlib.suppress(Exception):
                await self.store.run_sql(
                    functools.partial(sql_release, content_id=content_id, claim=claim)
                )

    async def _watching(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                await self.resume()
            except Exception:
                logger.exception("looking for presentations to render failed")

    async def resume(self, *, force: bool = False) -> int:
        """Claim and start the renderings that wait or were left by a dead worker."""
        started = 0
        for content_id, event_id, kind in await self.store.run_sql(
            lambda db: sql_waiting(db, force=force)
        ):
            if await self.kick(content_id, event_id, kind, force=force):
                started += 1
        if started:
            logger.info("rendering %d presentation(s) left unfinished", started)
        return started

    async def kick(self, content_id: str, event_id: str, kind: str, *, force: bool = False) -> bool:
        """Start rendering ``content_id`` here if it waits or its worker died."""
        if self._closed or content_id in self._tasks:
            return False
        claim = self.new_claim()
        if not await self.store.run_sql(lambda db: sql_claim(db, content_id, claim, force=force)):
            return False
        return self.spawn(content_id, event_id, kind, claim)

    async def retry(self, content_id: str, event_id: str, kind: str) -> bool:
        """Render a presentation whose rendering failed once more."""
        if self._closed or content_id in self._tasks:
            return False
        claim = self.new_claim()
        if not await self.store.run_sql(lambda db: sql_retry(db, content_id, claim)):
            return False
        return self.spawn(content_id, event_id, kind, claim)

    def spawn(self, content_id: str, event_id: str, kind: str, claim: str) -> bool:
        """Render ``content_id`` (its rendering claimed by ``claim``) in an owned task."""
        if self._closed or content_id in self._tasks:
            return False
        task = asyncio.get_running_loop().create_task(
            self._run(content_id, event_id, kind, claim), name=f"render {content_id}"
        )
        self._tasks[content_id] = task
        self._claims[content_id] = claim
        self._events[content_id] = event_id

        def forget(done: asyncio.Task[None]) -> None:
            if self._tasks.get(content_id) is done:
                del self._tasks[content_id]
                self._claims.pop(content_id, None)
                self._events.pop(content_id, None)

        task.add_done_callback(forget)
        return True

    async def cancel(self, content_id: str) -> None:
        """Stop rendering ``content_id`` here (it was deleted)."""
        await stop_task(self._tasks.get(content_id))

    async def cancel_event(self, event_id: str) -> None:
        await stop_tasks([t for c, t in self._tasks.items() if self._events.get(c) == event_id])

    async def remove(self, event_id: str, content_id: str) -> None:
        """Delete the pages of ``content_id`` (and any half-made ones)."""
        folder = self.root / event_id

        def remove() -> None:
            if not folder.is_dir():
                return
            for path in folder.glob(f"{content_id}.pages*"):
                shutil.rmtree(path, ignore_errors=True)

        await asyncio.to_thread(remove)

    # ------------------------------------------------------------------ one rendering

    async def _beat(self, content_id: str, claim: str) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                if not await self.store.run_sql(lambda db: sql_beat(db, content_id, claim)):
                    logger.info("the rendering of %s is no longer ours", content_id)
                    return
            except Exception:
                logger.exception("renewing the rendering claim of %s failed", content_id)

    async def _run(self, content_id: str, event_id: str, kind: str, claim: str) -> None:
        beat = asyncio.get_running_loop().create_task(self._beat(content_id, claim))
        part = self._part_dir(event_id, content_id, claim)
        status: str | None = None
        try:
            async with self._slots:
                began = asyncio.get_running_loop().time()
                failure: str | None = None
                try:
                    pages = await self._render(content_id, event_id, kind, claim, part)
                except RenderFailure as failed:
                    logger.info("presentation %s of event %s: %s", content_id, event_id, failed)
                    failure = json.dumps(failed.as_json())
                except Exception:
                    logger.exception("rendering presentation %s failed", content_id)
                    failure = json.dumps({"code": "internal"})
                if failure is not None:
                    if await self.store.run_sql(
                        lambda db: sql_finish(db, content_id, claim, pages=None, failure=failure)
                    ):
                        status = RenderStatus.FAILED
                elif await self._publish(content_id, event_id, claim, part, pages):
                    status = RenderStatus.READY
                    logger.info(
                        "presentation %s of event %s: %d pages in %.1f s",
                        content_id,
                        event_id,
                        pages,
                        asyncio.get_running_loop().time() - began,
                    )
        except Exception:
            logger.exception("recording the rendering of presentation %s failed", content_id)
        finally:
            await stop_task(beat)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(shutil.rmtree, part, ignore_errors=True)
        if status is not None and self.on_done is not None:
            self.on_done(content_id, status)

    async def _render(
        self, content_id: str, event_id: str, kind: str, claim: str, part: Path
    ) -> int:
        source = self.root / event_id / content_id
        await asyncio.to_thread(self._clear_leftovers, event_id, content_id)
        timing: dict[str, Any] = {}
        if self.page_seconds is not None:
            timing["page_seconds"] = self.page_seconds
        extension = PRESENTATION_TYPES.get(kind)
        if extension is None:
            return await render_in_child(source, part, max_pages=self.max_pages, **timing)
        if self.soffice is None:
            raise RenderFailure("needs-libreoffice")
        work = self._work_dir(content_id, claim)
        try:
            named = work / f"presentation{extension}"
            await asyncio.to_thread(_link_or_copy, source, named)
            pdf = await convert_to_pdf(self.soffice, named, work)
            return await render_in_child(pdf, part, max_pages=self.max_pages, **timing)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)

    def _clear_leftovers(self, event_id: str, content_id: str) -> None:
        """Remove what renderings of ``content_id`` that died left: folders of pages half
        made that nobody added to for :data:`LEFTOVER_SECONDS` (blocking)."""
        folder = self.root / event_id
        if folder.is_dir():
            _remove_old(folder.glob(f"{content_id}.pages.*.part"))

    async def _publish(
        self, content_id: str, event_id: str, claim: str, part: Path, pages: int
    ) -> bool:
        """Put the pages made in ``part`` in place and mark the presentation ready, if it is
        still ours to render (not deleted, not taken over)."""
        if not await self.store.run_sql(lambda db: sql_holds(db, content_id, claim)):
            return False
        final = self.pages_dir(event_id, content_id)

        def move() -> None:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(part, final)

        await asyncio.to_thread(move)
        if await self.store.run_sql(
            lambda db: sql_finish(db, content_id, claim, pages=pages, failure=None)
        ):
            return True
        # deleted while the pages were moved: they go too (the delete may have missed them)
        if not await self.store.run_sql(lambda db: sql_exists(db, content_id)):
            await asyncio.to_thread(shutil.rmtree, final, ignore_errors=True)
        return False


def _remove_old(folders: Iterable[Path]) -> None:
    """Remove the folders not changed for :data:`LEFTOVER_SECONDS`."""
    before = time.time() - LEFTOVER_SECONDS
    for folder in folders:
        with contextlib.suppress(OSError):
            if folder.stat().st_mtime < before:
                shutil.rmtree(folder, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
