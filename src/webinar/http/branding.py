"""Branding over HTTP: the images (``GET /branding/{image_id}``), the effective brand of an
event for the pages (:func:`event_brand`), and the changes the API and the dashboard share
(:class:`BrandingService`). docs/api.md ("Branding") documents the contract."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from webinar.content import branding as images
from webinar.content.branding import ImageKind, ImageRefused
from webinar.http.site import Pages, Site, route
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.storage import branding as b
from webinar.storage.db import transaction
from webinar.storage.store import Event, Store, SyncStore


async def event_brand(store: Store, event: Event) -> b.Brand:
    """The event's effective brand (its settings over its owner's over the product's)."""
    event_id, owner_id = event.event_id, event.owner_id
    return await store.run(lambda core: b.sql_brand(core.connection, event_id, owner_id))


def origin_of(link: str) -> str | None:
    """``scheme://host[:port]`` of an absolute link (None for anything else)."""
    scheme, sep, rest = link.partition("://")
    if not sep or scheme not in ("http", "https"):
        return None
    return f"{scheme}://{rest.split('/', 1)[0]}"


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose branding: an organiser's (``user_id``) or an event's (``event_id``)."""

    user_id: int | None = None
    event_id: str | None = None


@dataclass
class BrandingService:
    store: Store
    folder: Path

    async def get(self, scope: Scope) -> b.Branding:
        def read(core: SyncStore) -> b.Branding | None:
            if scope.event_id is not None:
                return b.sql_event_branding(core.connection, scope.event_id)
            assert scope.user_id is not None
            return b.sql_user_branding(core.connection, scope.user_id)

        return await self.store.run(read) or b.Branding()

    async def _put(self, scope: Scope, change: dict[str, Any]) -> b.Branding:
        """Apply ``change`` (field -> value, None clears) in one transaction."""

        def write(core: SyncStore) -> b.Branding:
            db = core.connection
            with transaction(db, immediate=True):
                if scope.event_id is not None:
                    now = b.sql_event_branding(db, scope.event_id) or b.Branding()
                    return b.sql_put_event_branding(db, scope.event_id, replace(now, **change))
                assert scope.user_id is not None
                now = b.sql_user_branding(db, scope.user_id) or b.Branding()
                return b.sql_put_user_branding(db, scope.user_id, replace(now, **change))

        return await self.store.run(write)

    async def save_form(
        self,
        scope: Scope,
        *,
        accent_colour: str,
        organiser_name: str,
        logo: bytes | None,
        background: bytes | None,
        remove_logo: bool,
        remove_background: bool,
    ) -> b.Branding:
        """The dashboard's form: every value is checked (colour, name, images re-encoded)
        before the one write; a refusal (:class:`BrandingError`, :class:`ImageRefused`)
        changes nothing."""
        change: dict[str, Any] = {
            "accent_colour": b.parse_colour(accent_colour) if accent_colour.strip() else None,
            "organiser_name": b.clean_organiser_name(organiser_name),
        }
        for kind, body, remove in (
            (ImageKind.LOGO, logo, remove_logo),
            (ImageKind.BACKGROUND, background, remove_background),
        ):
            if body:
                change[f"{kind.value}_id"] = await asyncio.to_thread(
                    images.save, self.folder, body, kind
                )
            elif remove:
                change[f"{kind.value}_id"] = None
        saved = await self._put(scope, change)
        if logo or background or remove_logo or remove_background:
            await self.sweep()
        return saved

    async def set_fields(
        self, scope: Scope, *, accent_colour: Any = ..., organiser_name: Any = ...
    ) -> b.Branding:
        """Set the texts; ``...`` leaves a field, None or "" clears it. Everything is checked
        before anything is written (:class:`~webinar.storage.branding.BrandingError`)."""
        change: dict[str, Any] = {}
        if accent_colour is not ...:
            change["accent_colour"] = (
                b.parse_colour(accent_colour) if accent_colour not in (None, "") else None
            )
        if organiser_name is not ...:
            change["organiser_name"] = (
                None if organiser_name is None else b.clean_organiser_name(organiser_name)
            )
        return await self._put(scope, change)

    async def set_image(self, scope: Scope, kind: ImageKind, body: bytes) -> b.Branding:
        """Validate, re-encode and keep ``body`` as the logo or background (refusals:
        :class:`~webinar.content.branding.ImageRefused`)."""
        image_id = await asyncio.to_thread(images.save, self.folder, body, kind)
        saved = await self._put(scope, {f"{kind.value}_id": image_id})
        await self.sweep()
        return saved

    async def clear_image(self, scope: Scope, kind: ImageKind) -> b.Branding:
        saved = await self._put(scope, {f"{kind.value}_id": None})
        await self.sweep()
        return saved

    async def sweep(self) -> int:
        """Remove image files no branding names any more (replaced, removed, or of deleted
        events and accounts) once they are an hour old; run after every image change."""
        used = await self.store.run(lambda core: b.sql_used_image_ids(core.connection))
        return await asyncio.to_thread(images.sweep, self.folder, used, time.time())

    async def effective(self, scope: Scope) -> b.Brand:
        """What the scope's pages show: an event's over its owner's; an organiser's alone."""
        if scope.event_id is not None:
            event = await self.store.get_event(scope.event_id)
            assert event is not None
            return await event_brand(self.store, event)
        return b.effective(await self.get(scope), None)

    async def as_json(self, scope: Scope) -> dict[str, Any]:
        """The API's answer: this level's settings, the effective brand and its contrast."""
        own = await self.get(scope)
        brand = await self.effective(scope)
        return {
            "accent_colour": own.accent_colour,
            "organiser_name": own.organiser_name,
            "logo_url": b.image_url(own.logo_id),
            "background_url": b.image_url(own.background_id),
            "updated_at": own.updated_at,
            "effective": brand.as_json(),
            "contrast": brand.contrast.as_json(),
        }


async def read_image_body(request: web.Request) -> bytes:
    """The raw body, refused past :data:`~webinar.content.branding.MAX_BYTES` while reading."""
    declared = request.content_length
    if declared is not None and declared > images.MAX_BYTES:
        raise images.too_large()
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > images.MAX_BYTES:
            raise images.too_large()
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class BrandingFiles(Pages):
    """``GET /branding/{image_id}``: a branding image, public (registration pages and e-mails
    show it to anyone), served only from its validated id, never sniffed."""

    folder: Path

    @route("GET", "/branding/{image_id}")
    async def image(self, request: web.Request) -> web.StreamResponse:
        image_id = request.match_info["image_id"]
        path = images.path_of(self.folder, image_id)
        if path is None or not await asyncio.to_thread(path.is_file):
            raise web.HTTPNotFound()
        return web.FileResponse(
            path,
            headers={
                "Content-Type": images.content_type(image_id),
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'",
                "Cache-Control": "public, max-age=31536000, immutable",
            },
        )


#: The dashboard form's text fields and their largest accepted sizes (bytes).
_TEXT_FIELDS = {
    "csrf": 200,
    "accent_colour": 64,
    "organiser_name": 4 * b.MAX_ORGANISER_NAME,
    "remove_logo": 8,
    "remove_background": 8,
}


async def read_branding_form(request: web.Request) -> tuple[dict[str, str], dict[str, bytes]]:
    """The multipart form, streamed with a limit per field (the app's body limit of 1 MiB
    would refuse a 5 MiB logo): texts and files (``logo``, ``background``; empty: none)."""
    texts: dict[str, str] = {}
    files: dict[str, bytes] = {}
    if request.content_type != "multipart/form-data":  # a form without a file field
        posted = await request.post()
        for name, value in posted.items():
            if name not in _TEXT_FIELDS or not isinstance(value, str):
                raise web.HTTPBadRequest(text=_("The form is not what this page sends."))
            texts[name] = value[: _TEXT_FIELDS[name]]
        return texts, files
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise web.HTTPBadRequest(text=_("The form is not what this page sends."))
        if part.name in ("logo", "background"):
            chunks: list[bytes] = []
            size = 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
                if size > images.MAX_BYTES:
                    raise images.too_large()
                chunks.append(chunk)
            files[part.name] = b"".join(chunks)
        elif part.name in _TEXT_FIELDS:
            raw = await part.read_chunk(_TEXT_FIELDS[part.name] + 1)
            if len(raw) > _TEXT_FIELDS[part.name]:
                raise web.HTTPBadRequest(text=_("The form is not what this page sends."))
            texts[part.name] = raw.decode("utf-8", "replace")
        else:
            raise web.HTTPBadRequest(text=_("The form is not what this page sends."))
    return texts, files


class BrandingPages(Pages):
    """The dashboard's branding pages: ``/dashboard/branding`` (the signed-in organiser's,
    for all their events) and ``/dashboard/events/{event_id}/branding`` (one event's, over
    the organiser's). docs/api.md ("Branding") lists the routes, docs/testing.md the
    data-testids."""

    def __init__(self, site: Site, service: BrandingService) -> None:
        self.site = site
        self.service = service

    async def _page(
        self,
        request: web.Request,
        scope: Scope,
        *,
        event: Event | None,
        error: str | None = None,
        status: int = 200,
        values: dict[str, str] | None = None,
    ) -> web.Response:
        record, user = await self.site.require(request)
        own = await self.service.get(scope)
        brand = await self.service.effective(scope)
        owner = None
        if event is not None and event.owner_id is not None:
            owner_id = event.owner_id
            owner = b.effective(
                await self.service.store.run(
                    lambda core: b.sql_user_branding(core.connection, owner_id)
                ),
                None,
            )
        notice = request.query.get("notice")
        saved = {
            "accent_colour": own.accent_colour or "",
            "organiser_name": own.organiser_name or "",
        }
        return self.site.render(
            request,
            "branding.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            event=(
                None
                if event is None
                else {"id": format_event_id(event.event_id), "title": event.title}
            ),
            own=own,
            own_logo=b.image_url(own.logo_id),
            own_background=b.image_url(own.background_id),
            shown=brand,
            owner=owner,
            contrast=brand.contrast,
            values=values or saved,
            error=error,
            notice=notice if notice == "saved" else None,
            limits={"name": b.MAX_ORGANISER_NAME, "mib": images.MAX_BYTES // (1024 * 1024)},
        )

    def _where(self, event: Event | None) -> str:
        if event is None:
            return "/dashboard/branding"
        return f"/dashboard/events/{format_event_id(event.event_id)}/branding"

    async def _save(
        self, request: web.Request, scope: Scope, event: Event | None, csrf: str
    ) -> web.Response:
        try:
            texts, files = await read_branding_form(request)
        except ImageRefused as exc:
            return await self._page(request, scope, event=event, error=str(exc), status=400)
        self.site.check_csrf(csrf, texts)
        try:
            await self.service.save_form(
                scope,
                accent_colour=texts.get("accent_colour", ""),
                organiser_name=texts.get("organiser_name", ""),
                logo=files.get("logo"),
                background=files.get("background"),
                remove_logo=bool(texts.get("remove_logo")),
                remove_background=bool(texts.get("remove_background")),
            )
        except (b.BrandingError, ImageRefused) as exc:
            return await self._page(
                request, scope, event=event, error=str(exc), status=400, values=texts
            )
        raise web.HTTPSeeOther(self._where(event) + "?notice=saved")

    @route("GET", "/dashboard/branding")
    async def mine(self, request: web.Request) -> web.Response:
        _record, user = await self.site.require(request)
        return await self._page(request, Scope(user_id=user.user_id), event=None)

    @route("POST", "/dashboard/branding")
    async def save_mine(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        return await self._save(request, Scope(user_id=user.user_id), None, record.csrf_token)

    @route("GET", "/dashboard/events/{event_id}/branding")
    async def for_event(self, request: web.Request) -> web.Response:
        event, _record, _user = await self.site.owned_event(request)
        return await self._page(request, Scope(event_id=event.event_id), event=event)

    @route("POST", "/dashboard/events/{event_id}/branding")
    async def save_for_event(self, request: web.Request) -> web.Response:
        event, record, _user = await self.site.owned_event(request)
        return await self._save(request, Scope(event_id=event.event_id), event, record.csrf_token)


__all__ = [
    "BrandingFiles",
    "BrandingPages",
    "BrandingService",
    "ImageRefused",
    "Scope",
    "event_brand",
]
