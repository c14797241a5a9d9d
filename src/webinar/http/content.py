"""Uploaded content over HTTP: the organiser's Content page, attendees' downloads, and the one
access check every content feature (presentations, shared videos, files in the room) uses.

- ``GET /dashboard/events/{event_id}/content``: the list, the upload form (``content-upload``),
  quota and scanner state; ``POST`` the same path uploads (multipart, streamed), ``POST
  .../content/{content_id}/delete`` deletes, ``GET .../content/{content_id}`` downloads.
- ``POST /e/{event_id}/content-pass``: the event's credential (password, invitation token,
  reservation code, or a signed join token) for a *content pass*, a signed, expiring proof
  of admission that content requests carry (``X-Content-Pass`` or ``?pass=``).
- ``GET /e/{event_id}/content`` (JSON list) and ``GET /e/{event_id}/content/{content_id}``
  (the file) for whoever :meth:`ContentAccess.allows`; a presentation's pages:
  ``GET /e/{event_id}/content/{content_id}/pages`` (how many, or how far the rendering is)
  and ``.../pages/{n}`` (page ``n`` as WebP).
- ``POST /e/{event_id}/content``: a presenter's upload during the event (multipart field
  ``file``, the presenter or host key in ``X-Presenter-Key``).

docs/api.md ("Content") documents them.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from webinar.content import passes
from webinar.content.library import MIB, ContentFile, ContentService, UploadRefused
from webinar.content.presentations import RENDER_VERSION, RenderStatus
from webinar.http.inputs import json_error, read_json
from webinar.http.site import Pages, Site, route
from webinar.i18n import _, ngettext
from webinar.ids import format_event_id, normalize_event_id
from webinar.rooms.manager import RoomManager
from webinar.storage.store import Event, Store
from webinar.ticketing import Ticketing
from webinar.ticketing.grants import AccessType, Refusal

logger = logging.getLogger(__name__)

#: Bytes read from the request per chunk of an upload.
READ_BYTES = 256 * 1024
#: Fetch destinations that are a person taking the file (a link followed, a download, a
#: script's fetch); a page showing it in an <img>/<video>/<audio> is not counted.
_DOWNLOAD_DESTINATIONS = frozenset({"", "document", "empty"})


def counts_as_download(request: web.Request) -> bool:
    """Does this request take the whole file for a person? Not a ranged request (a media
    player's, or a download resumed: counted when it started), not an element of a page, not
    a HEAD request."""
    if request.method != "GET" or "Range" in request.headers:
        return False
    return request.headers.get("Sec-Fetch-Dest", "").lower() in _DOWNLOAD_DESTINATIONS


class ContentAccess:
    """May this request fetch this event's content? One rule for every content feature:

    - the event's presenter or host key (or a presenter's join token) in ``X-Presenter-Key``;
    - a content pass for the event (``X-Content-Pass`` header or ``?pass=``), which
      :meth:`issue` gives to people admitted to the room and :meth:`pass_for` to anyone who
      shows the event's credential (checked like an entry, without taking a place);
    - a participant of the room here: its resume token in ``X-Resume-Token``;
    - an *open* event's content is for whoever has the event link.

    Password, token and paid events' content is refused to anyone else."""

    def __init__(
        self,
        *,
        store: Store,
        ticketing: Callable[[], Ticketing],
        secret: Callable[[], bytes],
        presenter: Callable[[web.Request, Event], Awaitable[bool]],
        rooms: Callable[[], RoomManager | None] = lambda: None,
    ) -> None:
        self._store = store
        self._ticketing = ticketing
        self._secret = secret
        self._presenter = presenter
        self._rooms = rooms

    def issue(self, event_id: str, *, who: str = "", now: float | None = None) -> tuple[str, int]:
        """A content pass for the event naming ``who`` (a person key; "" for nobody), and
        when it expires (Unix seconds); :mod:`webinar.content.passes`."""
        return passes.issue(self._secret(), event_id, who, now)

    def pass_holds(self, event_id: str, token: str, *, now: float | None = None) -> bool:
        return passes.check(self._secret(), event_id, token, now) is not None

    def pass_of(self, request: web.Request) -> str:
        return request.headers.get("X-Content-Pass") or request.query.get("pass", "")

    def holder(self, request: web.Request, event: Event) -> str:
        """Whom the request's content pass names: a person key, or "" (no pass, or a pass
        for nobody in particular)."""
        token = self.pass_of(request)
        return (passes.check(self._secret(), event.event_id, token) or "") if token else ""

    async def is_presenter(self, request: web.Request, event: Event) -> bool:
        """``X-Presenter-Key`` is the event's presenter or host key (or a presenter's join
        token): the request may upload and manage the event's content."""
        return bool(request.headers.get("X-Presenter-Key")) and await self._presenter(
            request, event
        )

    async def allows(self, request: web.Request, event: Event) -> bool:
        if await self.is_presenter(request, event):
            return True
        token = self.pass_of(request)
        if token and self.pass_holds(event.event_id, token):
            return True
        resume = request.headers.get("X-Resume-Token", "")
        rooms = self._rooms()
        room = rooms.get(event.event_id) if rooms is not None and resume else None
        if room is not None and len(resume) <= 100 and room.has_resume_token(resume):
            return True
        return AccessType(event.access_type) is AccessType.OPEN

    async def pass_for(
        self, event: Event, credential: str | None, join_token: str | None, client: str | None
    ) -> tuple[str, int]:
        """A content pass for whoever the credential admits; :class:`Refusal` otherwise."""
        await self._ticketing().vouch(event, credential, client=client, join_token=join_token)
        return self.issue(event.event_id)

    def require(self, allowed: bool) -> None:
        if not allowed:
            raise json_error(
                403,
                "not-admitted",
                _("this event's content is for its participants: enter the event first"),
            )


class _HashedFile(web.FileResponse):
    """A file whose ETag is its content hash (aiohttp's own is its mtime and size)."""

    @property
    def etag(self) -> Any:
        return self.headers.get("ETag")

    @etag.setter
    def etag(self, value: Any) -> None:
        pass  # keep the hash given in the headers


def serve_file(request: web.Request, path: Any, info: ContentFile) -> web.StreamResponse:
    """The file with its type, its name to save as, and caching for ever: it never changes
    under its ID, and its ETag is its SHA-256 (``If-None-Match`` with it: 304)."""
    ascii_name = info.file_name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    etag = f'"{info.sha256}"'
    cache = {"ETag": etag, "Cache-Control": "private, max-age=31536000, immutable"}
    wanted = request.if_none_match
    if wanted is not None and any(e.value in (info.sha256, "*") for e in wanted):
        return web.Response(status=304, headers=cache)
    return _HashedFile(
        path,
        headers={
            **cache,
            "Content-Type": info.detected_type,
            "Content-Disposition": (
                f'attachment; filename="{ascii_name}"; '
                f"filename*=UTF-8''{quote(info.file_name, safe='')}"
            ),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def refusal_error(refused: UploadRefused) -> web.HTTPException:
    return json_error(refused.status, refused.code, refused.message, refused.extra)


#: Page images never change under their URL; open events' may be kept by shared caches.
PAGE_CACHE_OPEN = "public, max-age=31536000, immutable"
PAGE_CACHE_CLOSED = "private, max-age=31536000, immutable"
#: The longest page number a URL may carry.
_PAGE_DIGITS = 5


def serve_page(
    request: web.Request, path: Any, info: ContentFile, number: int, *, public: bool
) -> web.StreamResponse:
    """Page ``number`` of a presentation: WebP, cached for ever (``public`` for open
    events' pages, else ``private``), its ETag from the file's hash, the page and the
    rendering settings."""
    tag = f"{info.sha256[:32]}-{RENDER_VERSION}-{number}"
    cache = {
        "ETag": f'"{tag}"',
        "Cache-Control": PAGE_CACHE_OPEN if public else PAGE_CACHE_CLOSED,
    }
    wanted = request.if_none_match
    if wanted is not None and any(e.value in (tag, "*") for e in wanted):
        return web.Response(status=304, headers=cache)
    return _HashedFile(
        path,
        headers={
            **cache,
            "Content-Type": "image/webp",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The raw request body as it arrives."""
    while chunk := await request.content.read(READ_BYTES):
        yield chunk


async def part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(READ_BYTES):
        yield chunk


def content_json(event: Event, info: ContentFile, *, base: str = "") -> dict[str, Any]:
    shown = format_event_id(event.event_id)
    return {
        **info.as_json(),
        "event_id": shown,
        "url": f"{base}/e/{shown}/content/{info.content_id}",
    }


async def _nothing_offered(_event_id: str) -> frozenset[str]:
    return frozenset()


class ContentPages(Pages):
    def __init__(
        self,
        site: Site,
        service: ContentService,
        access: ContentAccess,
        offered: Callable[[str], Awaitable[frozenset[str]]] | None = None,
    ) -> None:
        self.site = site
        self.service = service
        self.access = access
        #: The files offered for download in an event's room now (webinar.content.stage).
        self.offered = offered or _nothing_offered

    # ------------------------------------------------------------------ dashboard

    async def _page(
        self,
        request: web.Request,
        *,
        error: str | None = None,
        status: int = 200,
    ) -> web.Response:
        event, record, user = await self.site.owned_event(request)
        files = await self.service.list(event.event_id)
        used = await self.service.used(event.owner_id)
        return self.site.render(
            request,
            "event_content.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            event={"event_id": format_event_id(event.event_id), "title": event.title},
            files=files,
            used_mb=round(used / MIB, 1),
            quota_mb=self.service.quota_bytes // MIB,
            max_file_mb=self.service.max_file_bytes // MIB,
            scanning=self.service.scanning,
            require_scan=self.service.require_scan,
            error=error,
            uploaded=request.query.get("uploaded") == "1",
        )

    @route("GET", "/dashboard/events/{event_id}/content")
    async def content_page(self, request: web.Request) -> web.Response:
        return await self._page(request)

    @route("POST", "/dashboard/events/{event_id}/content")
    async def dashboard_upload(self, request: web.Request) -> web.Response:
        event, record, _user = await self.site.owned_event(request)
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            return await self._page(request, error=_("choose a file to upload"), status=400)
        csrf_ok = False
        try:
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "csrf":
                    given = (await part.read(decode=True))[:200].decode("utf-8", "replace")
                    csrf_ok = bool(given) and hmac.compare_digest(given, record.csrf_token)
                    continue
                if part.name != "file":
                    await part.release()
                    continue
                if not csrf_ok:
                    raise web.HTTPForbidden(
                        text=_("The form expired or did not come from this site.")
                    )
                if not part.filename:
                    return await self._page(request, error=_("choose a file to upload"), status=400)
                await self.service.receive(
                    event,
                    part_chunks(part),
                    file_name=part.filename,
                    content_type=part.headers.get("Content-Type"),
                    declared_size=None,
                    uploaded_by="organiser",
                )
                raise web.HTTPSeeOther(
                    f"/dashboard/events/{format_event_id(event.event_id)}/content?uploaded=1"
                )
        except UploadRefused as refused:
            return await self._page(request, error=refused.message, status=refused.status)
        return await self._page(request, error=_("choose a file to upload"), status=400)

    @route("POST", "/dashboard/events/{event_id}/content/{content_id}/delete")
    async def dashboard_delete(self, request: web.Request) -> web.Response:
        _record, _user, _form = await self.site.require_form(request)
        event, _r, _u = await self.site.owned_event(request)
        info = await self.service.get(request.match_info["content_id"])
        if info is not None and info.event_id == event.event_id:
            await self.service.delete(info)
        raise web.HTTPSeeOther(f"/dashboard/events/{format_event_id(event.event_id)}/content")

    @route("POST", "/dashboard/events/{event_id}/content/{content_id}/render")
    async def dashboard_render_again(self, request: web.Request) -> web.Response:
        _record, _user, _form = await self.site.require_form(request)
        event, _r, _u = await self.site.owned_event(request)
        info = await self.service.get(request.match_info["content_id"])
        if info is not None and info.event_id == event.event_id and info.servable:
            await self.service.render_again(info)
        raise web.HTTPSeeOther(f"/dashboard/events/{format_event_id(event.event_id)}/content")

    @route("GET", "/dashboard/events/{event_id}/content/{content_id}")
    async def dashboard_download(self, request: web.Request) -> web.StreamResponse:
        event, _r, _u = await self.site.owned_event(request)
        info = await self.service.get(request.match_info["content_id"])
        if info is None or info.event_id != event.event_id or not info.servable:
            raise web.HTTPNotFound(text=_("No such file."))
        return serve_file(request, self.service.path_of(info), info)

    # ------------------------------------------------------------------ attendees

    async def _event(self, request: web.Request) -> Event:
        event_id = normalize_event_id(request.match_info["event_id"])
        event = await self.site.store.get_event(event_id) if event_id else None
        if event is None:
            raise json_error(404, "unknown-event", _("there is no such event"))
        return event

    @route("POST", "/e/{event_id}/content-pass")
    async def content_pass(self, request: web.Request) -> web.Response:
        event = await self._event(request)
        body = await read_json(request, json_error, max_bytes=8192, empty={})
        if not isinstance(body, dict):
            raise json_error(400, "bad-json", _("the body must be a JSON object"))
        credential = body.get("credential")
        join_token = body.get("join_token")
        if not isinstance(credential, str | None) or not isinstance(join_token, str | None):
            raise json_error(400, "bad-json", _("credential and join_token must be strings"))
        try:
            token, expires = await self.access.pass_for(
                event, credential or None, join_token or None, request.remote
            )
        except Refusal as refused:
            status = 429 if refused.retry_after is not None else 403
            raise json_error(status, str(refused.code), refused.message) from None
        return web.json_response(
            {"pass": token, "expires_at": expires}, headers={"Cache-Control": "no-store"}
        )

    @route("GET", "/e/{event_id}/content")
    async def attendee_list(self, request: web.Request) -> web.Response:
        event = await self._event(request)
        self.access.require(await self.access.allows(request, event))
        files = await self.service.list(event.event_id, servable_only=True)
        if not await self.access.is_presenter(request, event):
            # attendees see what presenters offer them in the room, not the whole library
            offered = await self.offered(event.event_id)
            files = [f for f in files if f.content_id in offered]
        return web.json_response(
            {"items": [content_json(event, f) for f in files]},
            headers={"Cache-Control": "private, no-cache"},
        )

    @route("POST", "/e/{event_id}/content")
    async def presenter_upload(self, request: web.Request) -> web.Response:
        """A presenter's (or host's) upload during the event: multipart, field ``file``,
        with the same limits, quota, checks and scan as the organiser's."""
        event = await self._event(request)
        if not await self.access.is_presenter(request, event):
            raise json_error(
                403,
                "forbidden",
                _("only the event's presenters and hosts upload files here (X-Presenter-Key)"),
            )
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            raise json_error(
                400, "no-file", _('send the file as multipart/form-data in the field "file"')
            ) from None
        try:
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name != "file":
                    await part.release()
                    continue
                info = await self.service.receive(
                    event,
                    part_chunks(part),
                    file_name=part.filename or "",
                    content_type=part.headers.get("Content-Type"),
                    declared_size=None,
                    uploaded_by="presenter",
                )
                return web.json_response(
                    content_json(event, info), status=201, headers={"Cache-Control": "no-store"}
                )
        except UploadRefused as refused:
            raise refusal_error(refused) from None
        raise json_error(
            400, "no-file", _('send the file as multipart/form-data in the field "file"')
        )

    async def _presentation(self, request: web.Request, event: Event) -> ContentFile:
        content_id = request.match_info["content_id"]
        shown = await self.service.presentation(content_id)
        if shown is not None and shown.event_id == event.event_id:
            return shown
        info = None if shown is not None else await self.service.get(content_id)
        if info is None or info.event_id != event.event_id or not info.servable:
            raise json_error(404, "not-found", _("no such file in this event"))
        raise json_error(
            404,
            "not-a-presentation",
            _(
                "this file is not a presentation: only PDF, PowerPoint and OpenDocument"
                " presentations are shown page by page"
            ),
        )

    @route("GET", "/e/{event_id}/content/{content_id}/pages")
    async def presentation_pages(self, request: web.Request) -> web.Response:
        event = await self._event(request)
        self.access.require(await self.access.allows(request, event))
        info = await self._presentation(request, event)
        return web.json_response(
            {
                "pages": info.pages or 0,
                "status": info.render_status,
                "message": info.render_message,
            },
            headers={"Cache-Control": "private, no-cache"},
        )

    @route("GET", "/e/{event_id}/content/{content_id}/pages/{n}")
    async def presentation_page(self, request: web.Request) -> web.StreamResponse:
        event = await self._event(request)
        self.access.require(await self.access.allows(request, event))
        info = await self._presentation(request, event)
        given = request.match_info["n"]
        number = int(given) if given.isdigit() and len(given) <= _PAGE_DIGITS else 0
        if info.render_status != RenderStatus.READY or not info.pages:
            if info.render_status == RenderStatus.FAILED:
                raise json_error(
                    404, "not-rendered", info.render_message or _("this presentation has no pages")
                )
            raise json_error(
                404,
                "not-rendered",
                _("the pages of this presentation are still being made; try again in a moment"),
            )
        if not 1 <= number <= info.pages:
            raise json_error(
                404,
                "no-such-page",
                ngettext(
                    "there is no such page: this presentation has %(num)d page",
                    "there is no such page: this presentation has %(num)d pages",
                    info.pages,
                )
                % {"num": info.pages},
            )
        path = self.service.page_path(info, number)
        if not await asyncio.to_thread(path.is_file):
            raise json_error(404, "no-such-page", _("this page image is missing on the server"))
        public = AccessType(event.access_type) is AccessType.OPEN
        return serve_page(request, path, info, number, public=public)

    @route("GET", "/e/{event_id}/content/{content_id}")
    async def attendee_download(self, request: web.Request) -> web.StreamResponse:
        event = await self._event(request)
        self.access.require(await self.access.allows(request, event))
        info = await self.service.get(request.match_info["content_id"])
        if info is None or info.event_id != event.event_id or not info.servable:
            raise json_error(404, "not-found", _("no such file in this event"))
        who = self.access.holder(request, event)
        if who and counts_as_download(request):
            try:
                await self.service.record_download(info, who)
            except Exception:  # the count is lost, not the file: it is served all the same
                logger.exception("a download of %s could not be counted", info.content_id)
        return serve_file(request, self.service.path_of(info), info)
