"""HTTP side of interaction: the call-to-action redirect, poll images, exports, the admin API.

- ``GET /cta/{cta_id}?t=...`` counts a click for the attendee the signed token names and
  redirects to the call-to-action's stored, validated URL (nowhere else).
- ``POST /api/events/{event_id}/images`` stores a poll option's image (PNG, JPEG, GIF or
  WebP, checked by content, at most :data:`MAX_IMAGE_BYTES`); ``GET /images/{id}`` serves
  it from our origin.
- Exports as CSV from the dashboard and the admin API, and the admin API's JSON view and
  poll preparation. ``docs/api.md`` ("Interaction export") documents them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from webinar.formats import csv_text, iso_time
from webinar.http.inputs import read_json
from webinar.http.site import Pages, route
from webinar.i18n import _, ngettext
from webinar.ids import normalize_event_id, same_secret
from webinar.interaction import service as glue
from webinar.interaction import store as ist
from webinar.rooms import cta as ct
from webinar.rooms import polls as pl
from webinar.rooms.interaction_errors import InteractionError, InteractionErrorCode
from webinar.rooms.live import LiveRoom
from webinar.rooms.manager import RoomManager
from webinar.storage.store import Event, SessionRecord, Store, SyncStore, User
from webinar.ticketing.join_tokens import JoinTokens, TokenRefusal

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_IMAGES_PER_EVENT = 200
#: Largest JSON body of the admin API (a poll of 20 questions with 10 options each fits).
MAX_JSON_BODY_BYTES = 1024 * 1024
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
_IMAGE_ID = re.compile(r"^img_[0-9a-f]{24}$")
_TIME_COLUMNS = {"time", "asked_at", "published_at", "answered_at", "shown_at", "clicked_at"}


def sniff_image(head: bytes) -> str | None:
    """The image type by its first bytes; None for anything else (SVG included)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _iso(value: Any) -> Any:
    """A time column's cell: Unix seconds as ISO 8601 (ms), anything else as it is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return iso_time(value, timespec="milliseconds")
    return value


def to_csv(header: list[str], rows: list[list[Any]]) -> str:
    times = [i for i, name in enumerate(header) if name in _TIME_COLUMNS]

    def cells(row: list[Any]) -> list[Any]:
        cells = list(row)
        for i in times:
            cells[i] = _iso(cells[i])
        return cells

    return csv_text(header, map(cells, rows))


def export_json(core: SyncStore, event_id: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for kind in ist.EXPORT_KINDS:
        header, rows = ist.export_rows(core, event_id, kind)
        times = {name for name in header if name in _TIME_COLUMNS}
        result[kind] = [
            {
                k: (_iso(v) if k in times and v is not None else v)
                for k, v in zip(header, r, strict=True)
            }
            for r in rows
        ]
    return result


class InteractionHttp(Pages):
    def __init__(
        self,
        *,
        store: Store,
        data_dir: Path,
        admin_token: str | None,
        rooms: Callable[[], RoomManager | None],
        secret: Callable[[], bytes],
        owned_event: Callable[[web.Request], Awaitable[tuple[Event, SessionRecord, User]]],
        render: Callable[..., web.Response],
        event_links: Callable[[web.Request, Event], dict[str, Any]],
        count: Callable[[str, int], None] = lambda _kind, _n: None,
    ) -> None:
        self._count = count
        #: With several workers: tells the others of a click (their presenters' counts).
        self.tell_others: Callable[[str, str, int], None] | None = None
        self._store = store
        self._images = data_dir / "images"
        self._admin_token = admin_token
        self._rooms = rooms
        self._secret = secret
        self._owned_event = owned_event
        self._render = render
        self._event_links = event_links

    # ------------------------------------------------------------------ helpers

    async def _event(self, request: web.Request) -> Event:
        event_id = normalize_event_id(request.match_info["event_id"])
        event = await self._store.get_event(event_id) if event_id else None
        if event is None:
            raise _json_error(404, "unknown-event", _("there is no such event"))
        return event

    def _check_admin(self, request: web.Request) -> None:
        if self._admin_token is None:
            raise _json_error(403, "forbidden", _("set admin.token to use the admin API"))
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not same_secret(given, self._admin_token):
            raise web.HTTPUnauthorized(
                text=json.dumps(
                    {"error": "unauthorized", "message": _("a bearer token is needed")}
                ),
                content_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def _csv(self, event: Event, kind: str, *, bom: bool = False) -> web.Response:
        if kind not in ist.EXPORT_KINDS:
            kinds = ", ".join(ist.EXPORT_KINDS)
            raise _json_error(404, "not-found", _("exports are %(kinds)s") % {"kinds": kinds})
        event_id = event.event_id
        text = await self._store.run(lambda core: to_csv(*ist.export_rows(core, event_id, kind)))
        if bom:  # a UTF-8 byte-order mark, for spreadsheet programs
            text = "\ufeff" + text
        return web.Response(
            text=text,
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="event-{event_id}-{kind}.csv"',
                "Cache-Control": "no-store",
            },
        )

    # ------------------------------------------------------------------ call-to-action

    @route("GET", "/cta/{cta_id}")
    async def cta_click(self, request: web.Request) -> web.Response:
        cta_id = request.match_info["cta_id"]
        if not re.fullmatch(r"ct_[0-9a-f]{16}", cta_id):
            raise web.HTTPNotFound(text=_("No such link."))
        target = await self._store.run(lambda core: ist.cta_target(core, cta_id))
        if target is None:
            raise web.HTTPNotFound(text=_("No such link."))
        event_id, url = target
        who = glue.read_click_token(self._secret(), cta_id, request.query.get("t", ""))
        if who is not None:
            pid, name = who
            now = time.time()

            def record(core: SyncStore) -> int | None:
                if not ist.record_click(core, cta_id, pid, name, now):
                    return None
                return ist.click_count(core, cta_id)

            clicks = await self._store.run(record)
            rooms = self._rooms()
            if clicks is not None:
                self._count("cta_clicks", 1)
                glue.cta_clicked(rooms.get(event_id) if rooms else None, cta_id, clicks)
                if self.tell_others is not None:
                    self.tell_others(event_id, cta_id, clicks)
        raise web.HTTPFound(
            url, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        )

    # ------------------------------------------------------------------ prepared CTAs

    async def _prepare_cta(self, event: Event, fields: Any) -> ct.PreparedCta:
        """Check and store one prepared call-to-action (InteractionError when refused)."""
        if not isinstance(fields, dict):
            raise InteractionError(InteractionErrorCode.INVALID, _("send a JSON object"))
        texts = {k: fields.get(k) for k in ("message", "button", "url")}
        for key, value in texts.items():
            if not isinstance(value, str):
                raise InteractionError(
                    InteractionErrorCode.INVALID, _("%(field)s must be text") % {"field": key}
                )
        raw = fields.get("duration_seconds")
        if raw in (None, ""):
            duration = None
        elif isinstance(raw, int) and not isinstance(raw, bool):
            duration = raw
        elif isinstance(raw, str) and raw.strip().isdigit():
            duration = int(raw.strip())
        else:
            raise InteractionError(
                InteractionErrorCode.INVALID, _("duration_seconds must be a whole number")
            )
        prepared = ct.prepare_cta(
            message=str(texts["message"]),
            button=str(texts["button"]),
            url=str(texts["url"]),
            duration_seconds=duration,
            now=time.time(),
        )
        event_id = event.event_id
        if not await self._store.run(
            lambda core: ist.save_prepared_cta(core, event_id, prepared, ct.MAX_PREPARED_CTAS)
        ):
            raise InteractionError(
                InteractionErrorCode.LIMIT,
                ngettext(
                    "at most %(num)d prepared call-to-action per event",
                    "at most %(num)d prepared calls-to-action per event",
                    ct.MAX_PREPARED_CTAS,
                )
                % {"num": ct.MAX_PREPARED_CTAS},
            )
        await self._prepared_changed(event_id)
        return prepared

    async def _prepared_changed(self, event_id: str) -> None:
        """Presenters in the live room get the new list at once."""
        room = self._loaded_room(event_id)
        if room is None:
            return
        prepared = await self._store.run(lambda core: ist.list_prepared_ctas(core, event_id))
        room.interaction.emit([ct.CtaPreparedChanged(tuple(prepared))])

    async def _delete_prepared(self, event: Event, prepared_id: str) -> bool:
        event_id = event.event_id
        deleted = await self._store.run(
            lambda core: ist.delete_prepared_cta(core, event_id, prepared_id)
        )
        if deleted:
            await self._prepared_changed(event_id)
        return deleted

    async def _cta_page(
        self,
        request: web.Request,
        event: Event,
        record: SessionRecord,
        user: User,
        *,
        error: str | None = None,
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> web.Response:
        event_id = event.event_id
        prepared = await self._store.run(lambda core: ist.list_prepared_ctas(core, event_id))
        response = self._render(
            request,
            "event_ctas.html",
            user=user,
            csrf=record.csrf_token,
            event=self._event_links(request, event),
            prepared=[_prepared_json(p) for p in prepared],
            limits={
                "message": ct.CTA_MESSAGE_CHARS,
                "button": ct.CTA_BUTTON_CHARS,
                "url": ct.CTA_URL_CHARS,
                "min_duration": ct.MIN_DURATION_SECONDS,
                "max_duration": ct.MAX_DURATION_SECONDS,
            },
            error=error,
            form=form or {},
        )
        response.set_status(status)
        return response

    @route("GET", "/dashboard/events/{event_id}/ctas")
    async def dashboard_ctas(self, request: web.Request) -> web.Response:
        """The organiser prepares calls-to-action; presenters launch them in the room."""
        event, record, user = await self._owned_event(request)
        return await self._cta_page(request, event, record, user)

    async def _form(self, request: web.Request, record: SessionRecord) -> dict[str, str]:
        data = await request.post()
        given = data.get("csrf")
        if not isinstance(given, str) or not same_secret(given, record.csrf_token):
            raise web.HTTPForbidden(text=_("The page expired or did not come from this site."))
        return {k: v for k, v in data.items() if isinstance(v, str)}

    @route("POST", "/dashboard/events/{event_id}/ctas")
    async def dashboard_create_cta(self, request: web.Request) -> web.Response:
        event, record, user = await self._owned_event(request)
        form = await self._form(request, record)
        try:
            await self._prepare_cta(event, form)
        except InteractionError as exc:
            return await self._cta_page(
                request, event, record, user, error=exc.message, form=form, status=400
            )
        raise web.HTTPSeeOther(f"/dashboard/events/{event.display_id}/ctas")

    @route("POST", "/dashboard/events/{event_id}/ctas/{prepared_id}/delete")
    async def dashboard_delete_cta(self, request: web.Request) -> web.Response:
        event, record, _user = await self._owned_event(request)
        await self._form(request, record)
        await self._delete_prepared(event, request.match_info["prepared_id"])
        raise web.HTTPSeeOther(f"/dashboard/events/{event.display_id}/ctas")

    @route("GET", "/api/admin/events/{event_id}/ctas")
    async def admin_ctas(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        event_id = (await self._event(request)).event_id
        prepared = await self._store.run(lambda core: ist.list_prepared_ctas(core, event_id))
        return web.json_response({"ctas": [_prepared_json(p) for p in prepared]})

    @route("POST", "/api/admin/events/{event_id}/ctas")
    async def admin_create_cta(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        event = await self._event(request)
        with _refused_as_json():
            prepared = await self._prepare_cta(event, await _json_object(request))
        return web.json_response({"cta": _prepared_json(prepared)}, status=201)

    @route("DELETE", "/api/admin/events/{event_id}/ctas/{prepared_id}")
    async def admin_delete_cta(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        event = await self._event(request)
        prepared_id = request.match_info["prepared_id"]
        if not await self._delete_prepared(event, prepared_id):
            raise _json_error(404, "not-found", _("no such prepared call-to-action"))
        return web.json_response({"deleted": prepared_id})

    # ------------------------------------------------------------------ images

    @staticmethod
    def presenter_key_fits(request: web.Request, event: Event) -> bool:
        """The request's ``X-Presenter-Key`` is the event's presenter or host key."""
        key = request.headers.get("X-Presenter-Key", "")
        return bool(key) and (
            same_secret(key, event.presenter_key)
            or bool(event.host_key and same_secret(key, event.host_key))
        )

    async def presenter_may_upload(self, request: web.Request, event: Event) -> bool:
        """``X-Presenter-Key`` is the event's presenter or host key, or the signed join token
        (still valid) a presenter entered with."""
        if self.presenter_key_fits(request, event):
            return True
        key = request.headers.get("X-Presenter-Key", "")
        if key.count(".") == 2:  # a presenter's signed join token
            try:
                claims = await JoinTokens(self._store).check(event, key, datetime.now(UTC))
            except TokenRefusal:
                return False
            return claims.role == "presenter"
        return False

    async def _may_upload(self, request: web.Request, event: Event) -> bool:
        if await self.presenter_may_upload(request, event):
            return True
        auth = request.headers.get("Authorization", "")
        if auth and self._admin_token is not None:
            return same_secret(auth.removeprefix("Bearer ").strip(), self._admin_token)
        return False

    @route("POST", "/api/events/{event_id}/images")
    async def upload_image(self, request: web.Request) -> web.Response:
        event = await self._event(request)
        if not await self._may_upload(request, event):
            raise _json_error(403, "forbidden", _("only presenters upload poll images"))
        return web.json_response(await self.store_image(request, event), status=201)

    async def store_image(self, request: web.Request, event: Event) -> dict[str, str]:
        """Keep the request's body as a poll image of the event (refusals in JSON)."""
        event_id = event.event_id
        if await self._store.run(lambda core: ist.image_count(core, event_id)) >= (
            MAX_IMAGES_PER_EVENT
        ):
            raise _json_error(
                400,
                "limit-reached",
                ngettext(
                    "at most %(num)d image per event",
                    "at most %(num)d images per event",
                    MAX_IMAGES_PER_EVENT,
                )
                % {"num": MAX_IMAGES_PER_EVENT},
            )
        declared = request.content_length
        if declared is not None and declared > MAX_IMAGE_BYTES:
            raise _too_large()
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(64 * 1024):
            size += len(chunk)
            if size > MAX_IMAGE_BYTES:
                raise _too_large()
            chunks.append(chunk)
        body = b"".join(chunks)
        content_type = sniff_image(body[:16])
        if content_type is None:
            raise _json_error(
                415, "unsupported-type", _("poll images must be PNG, JPEG, GIF or WebP")
            )
        image_id = await asyncio.to_thread(_save_image_file, self._images, body)
        now = time.time()
        await self._store.run(
            lambda core: ist.save_image(core, image_id, event_id, content_type, size, now)
        )
        return {"image_id": image_id, "url": f"/images/{image_id}", "content_type": content_type}

    @route("GET", "/images/{image_id}")
    async def image(self, request: web.Request) -> web.StreamResponse:
        image_id = request.match_info["image_id"]
        if not _IMAGE_ID.match(image_id):
            raise web.HTTPNotFound()
        found = await self._store.run(lambda core: ist.get_image(core, image_id))
        path = self._images / image_id
        if found is None:
            raise web.HTTPNotFound()
        _event_id, content_type = found
        if not await asyncio.to_thread(path.is_file):
            raise web.HTTPNotFound()
        return web.FileResponse(
            path,
            headers={
                "Content-Type": content_type,
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'",
                "Cache-Control": "public, max-age=31536000, immutable",
            },
        )

    # ------------------------------------------------------------------ exports

    @route("GET", "/dashboard/events/{event_id}/export/{kind}.csv")
    async def dashboard_export(self, request: web.Request) -> web.Response:
        event, _record, _user = await self._owned_event(request)
        return await self._csv(event, request.match_info["kind"], bom=wants_bom(request))

    @route("GET", "/dashboard/events/{event_id}/polls")
    async def dashboard_polls(self, request: web.Request) -> web.Response:
        """The organiser prepares polls and tests before the event."""
        event, record, user = await self._owned_event(request)
        event_id = event.event_id
        polls = await self._store.run(lambda core: ist.list_polls(core, event_id))
        return self._render(
            request,
            "event_polls.html",
            user=user,
            csrf=record.csrf_token,
            event=self._event_links(request, event),
            presenter_key=event.presenter_key,
            polls=[_poll_json(p) for p in polls],
        )

    async def _dashboard_json_event(self, request: web.Request) -> Event:
        """The organiser's own event, for a script call carrying the page's CSRF token (its
        refusals in JSON: the caller is a script)."""
        try:
            event, record, _user = await self._owned_event(request)
        except web.HTTPNotFound:
            raise _json_error(404, "unknown-event", _("there is no such event of yours")) from None
        given = request.headers.get("X-CSRF-Token", "")
        if not given or not same_secret(given, record.csrf_token):
            raise _json_error(
                403, "forbidden", _("the page expired or did not come from this site")
            )
        return event

    @route("POST", "/dashboard/events/{event_id}/polls")
    async def dashboard_create_poll(self, request: web.Request) -> web.Response:
        return await self._create_poll(request, await self._dashboard_json_event(request))

    @route("PUT", "/dashboard/events/{event_id}/polls/{poll_id}")
    async def dashboard_update_poll(self, request: web.Request) -> web.Response:
        return await self._update_poll(request, await self._dashboard_json_event(request))

    @route("DELETE", "/dashboard/events/{event_id}/polls/{poll_id}")
    async def dashboard_delete_poll(self, request: web.Request) -> web.Response:
        return await self._delete_poll(request, await self._dashboard_json_event(request))

    @route("GET", "/api/admin/events/{event_id}/export/{kind}.csv")
    async def admin_export(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        event = await self._event(request)
        return await self._csv(event, request.match_info["kind"], bom=wants_bom(request))

    @route("GET", "/api/admin/events/{event_id}/interaction")
    async def admin_interaction(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        event = await self._event(request)
        event_id = event.event_id
        data = await self._store.run(lambda core: export_json(core, event_id))
        return web.json_response({"event_id": event.display_id, **data})

    @route("GET", "/api/admin/events/{event_id}/polls")
    async def admin_polls(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        event = await self._event(request)
        event_id = event.event_id
        polls = await self._store.run(lambda core: ist.list_polls(core, event_id))
        return web.json_response({"polls": [_poll_json(p) for p in polls]})

    @route("POST", "/api/admin/events/{event_id}/polls")
    async def admin_create_poll(self, request: web.Request) -> web.Response:
        """Prepare a poll or test before (or during) the event."""
        self._check_admin(request)
        return await self._create_poll(request, await self._event(request))

    @route("PUT", "/api/admin/events/{event_id}/polls/{poll_id}")
    async def admin_update_poll(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        return await self._update_poll(request, await self._event(request))

    @route("DELETE", "/api/admin/events/{event_id}/polls/{poll_id}")
    async def admin_delete_poll(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        return await self._delete_poll(request, await self._event(request))

    def _loaded_room(self, event_id: str) -> LiveRoom | None:
        rooms = self._rooms()
        room = rooms.get(event_id) if rooms else None
        return room if room is not None and room.interaction.loaded else None

    async def _update_poll(self, request: web.Request, event: Event) -> web.Response:
        spec = await _json_object(request)
        with _refused_as_json():
            poll = await self.update_poll(event, request.match_info["poll_id"], spec)
        return web.json_response({"poll": _poll_json(poll)})

    async def update_poll(self, event: Event, poll_id: str, spec: dict[str, Any]) -> pl.Poll:
        """A new definition for a prepared poll that never ran (same id, same place);
        InteractionError when refused, a 404 when there is no such poll."""
        event_id = event.event_id
        found = await self._prepared_poll(event_id, poll_id)
        poll = pl.build_poll(spec, now=found.created_at, poll_id=poll_id)
        await glue.check_images(self._store, event_id, poll)
        changed = await self._change_draft(
            event_id,
            lambda polls: polls.replace_prepared(poll),
            lambda core: ist.update_draft_poll(core, event_id, poll),
            _("only a poll that never ran can be changed"),
        )
        return changed.poll if changed else poll

    async def _delete_poll(self, request: web.Request, event: Event) -> web.Response:
        poll_id = request.match_info["poll_id"]
        with _refused_as_json():
            await self.delete_poll(event, poll_id)
        return web.json_response({"deleted": poll_id})

    async def delete_poll(self, event: Event, poll_id: str) -> None:
        """Delete a prepared poll that never ran (one that ran holds answers: the
        event's personal-data deletion removes those)."""
        event_id = event.event_id
        await self._prepared_poll(event_id, poll_id)
        await self._change_draft(
            event_id,
            lambda polls: polls.remove_prepared(poll_id),
            lambda core: ist.delete_draft_poll(core, event_id, poll_id),
            _("only a poll that never ran can be deleted"),
        )

    async def _prepared_poll(self, event_id: str, poll_id: str) -> pl.Poll:
        found = await self._store.run(lambda core: ist.get_poll(core, event_id, poll_id))
        if found is None:
            raise _json_error(404, "not-found", _("no such poll"))
        return found

    async def _change_draft(
        self,
        event_id: str,
        in_room: Callable[[pl.PollBook], pl.PollChanged],
        in_store: Callable[[SyncStore], bool],
        refused: str,
    ) -> pl.PollChanged | None:
        """Change a poll that never ran in the live room (if loaded) and in the store, or
        refuse with ``refused`` when the store's copy ran; the room's change (announced)."""
        room = self._loaded_room(event_id)
        if room is None:
            if not await self._store.run(in_store):
                raise InteractionError(InteractionErrorCode.INVALID, refused)
            return None
        async with room.interaction.change():  # undone in the room if the store refuses
            changed = in_room(room.interaction.polls)
            if not await self._store.run(in_store):
                raise InteractionError(InteractionErrorCode.INVALID, refused)
            room.interaction.emit([changed])
        return changed

    async def _create_poll(self, request: web.Request, event: Event) -> web.Response:
        spec = await _json_object(request)
        with _refused_as_json():
            poll = await self.create_poll(event, spec)
        return web.json_response({"poll": _poll_json(poll)}, status=201)

    async def create_poll(self, event: Event, spec: dict[str, Any]) -> pl.Poll:
        """Prepare a poll or test (InteractionError when refused)."""
        event_id = event.event_id
        poll = pl.build_poll(spec, now=time.time())
        await glue.check_images(self._store, event_id, poll)
        room = self._loaded_room(event_id)
        if room is not None:
            async with room.interaction.change():  # undone in the room if the write fails
                room.interaction.polls.add_prepared(poll)  # checks the count bound
                await self._store.run(lambda core: ist.save_poll(core, event_id, poll))
                room.interaction.emit([pl.PollChanged(poll, "created")])
        else:
            count = await self._store.run(lambda core: len(ist.list_polls(core, event_id)))
            if count >= pl.MAX_POLLS:
                raise InteractionError(InteractionErrorCode.LIMIT, pl.polls_limit_message())
            await self._store.run(lambda core: ist.save_poll(core, event_id, poll))
        return poll


async def _json_object(request: web.Request) -> dict[str, Any]:
    spec = await read_json(request, _json_error, max_bytes=MAX_JSON_BODY_BYTES)
    if not isinstance(spec, dict):
        raise _json_error(400, "bad-message", _("the body must be a JSON object"))
    return spec


@contextlib.contextmanager
def _refused_as_json() -> Iterator[None]:
    """A refusal (InteractionError) inside is the admin API's 400 answer with its code."""
    try:
        yield
    except InteractionError as exc:
        raise _json_error(400, exc.code.value, exc.message) from None


def wants_bom(request: web.Request) -> bool:
    """``?bom=1``: the CSV starts with a UTF-8 byte-order mark, for spreadsheet programs."""
    return request.query.get("bom") in ("1", "true", "yes")


def _prepared_json(p: ct.PreparedCta) -> dict[str, Any]:
    return {
        "prepared_id": p.prepared_id,
        "message": p.message,
        "button": p.button,
        "url": p.url,
        "duration_seconds": p.duration_seconds,
    }


def _poll_json(p: pl.Poll) -> dict[str, Any]:
    return {
        "poll_id": p.poll_id,
        "title": p.title,
        "kind": p.kind.value,
        "state": p.state.value,
        "results_shown": p.results_shown,
        "questions": json.loads(ist.poll_definition(p)),
    }


def _save_image_file(folder: Path, body: bytes) -> str:
    """Store the image under its content's hash (off the event loop); returns its id."""
    image_id = "img_" + hashlib.sha256(body).hexdigest()[:24]
    path = folder / image_id
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():  # same content, same name
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.part")
        tmp.write_bytes(body)
        tmp.replace(path)
    return image_id


def _too_large() -> web.HTTPException:
    return _json_error(
        413,
        "too-large",
        _("poll images are limited to %(num)d MiB") % {"num": MAX_IMAGE_BYTES // (1024 * 1024)},
    )


def _json_error(status: int, code: str, message: str) -> web.HTTPException:
    body = json.dumps({"error": code, "message": message})
    classes: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest,
        403: web.HTTPForbidden,
        404: web.HTTPNotFound,
        413: web.HTTPRequestEntityTooLarge,
        415: web.HTTPUnsupportedMediaType,
    }
    cls = classes[status]
    if cls is web.HTTPRequestEntityTooLarge:
        return web.HTTPRequestEntityTooLarge(
            max_size=MAX_IMAGE_BYTES, actual_size=0, text=body, content_type="application/json"
        )
    return cls(text=body, content_type="application/json")
