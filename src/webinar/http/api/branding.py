"""Branding over the API (docs/api.md, "Branding"): an organiser's (``/api/v1/me/branding``)
and an event's (``/api/v1/events/{event_id}/branding``) logo, background, accent colour and
organiser name, with the contrast check of the accent colour."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from aiohttp import web

from webinar.content.branding import ImageKind, ImageRefused
from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator
from webinar.http.api.errors import api_error
from webinar.http.api.events import visible_event
from webinar.http.api.table import ApiPages, Call, operation
from webinar.http.branding import BrandingService, Scope, read_image_body
from webinar.i18n import _
from webinar.storage.api_tokens import Scope as TokenScope
from webinar.storage.branding import BrandingError
from webinar.storage.store import Store

TAG = "Branding"
EVENT = "/api/v1/events/{event_id}/branding"
ME = "/api/v1/me/branding"
_IMAGE_HELP = (
    "The image is the raw body: PNG, JPEG, GIF or WebP (by content; SVG is refused), at most"
    " 5 MiB and 40 megapixels, at least 16 pixels a side. It is decoded and written anew"
    " (a logo as PNG within 800x400, a background as JPEG within 2560x1600), so nothing but"
    " the picture is kept."
)


def _kind(request: web.Request) -> ImageKind:
    try:
        return ImageKind(request.match_info["image"])
    except ValueError:
        raise api_error(404, "not-found", _("choose logo or background")) from None


@dataclass
class BrandingApi(ApiPages):
    store: Store
    auth: Authenticator
    branding: BrandingService

    async def _scope(self, request: web.Request, call: Call) -> Scope:
        if "event_id" in request.match_info:
            event = await visible_event(self.store, request, call.who())
            return Scope(event_id=event.event_id)
        user = call.who().user
        if user is None:
            raise api_error(
                422, "no-account", _("this token belongs to no account: use an account's token")
            )
        return Scope(user_id=user.user_id)

    async def _answer(self, scope: Scope) -> s.Branding:
        return msgspec.convert(await self.branding.as_json(scope), s.Branding)

    async def _put(self, request: web.Request, call: Call) -> s.Branding:
        scope = await self._scope(request, call)
        body = call.body_as(s.BrandingUpdate)
        given = {
            f: getattr(body, f)
            for f in body.__struct_fields__
            if getattr(body, f) is not msgspec.UNSET
        }
        try:
            await self.branding.set_fields(scope, **given)
        except BrandingError as exc:
            raise api_error(422, "invalid", str(exc)) from None
        return await self._answer(scope)

    async def _put_image(self, request: web.Request, call: Call) -> s.Branding:
        scope = await self._scope(request, call)
        kind = _kind(request)
        try:
            await self.branding.set_image(scope, kind, await read_image_body(request))
        except ImageRefused as exc:
            raise api_error(exc.status, exc.code, str(exc)) from None
        return await self._answer(scope)

    async def _delete_image(self, request: web.Request, call: Call) -> s.Branding:
        scope = await self._scope(request, call)
        await self.branding.clear_image(scope, _kind(request))
        return await self._answer(scope)

    # ------------------------------------------------------------------ an event's

    @operation(
        "GET",
        EVENT,
        scope=TokenScope.READ,
        summary="The event's branding",
        description="Its own settings (null: its organiser's apply), what its pages and"
        " e-mails show (effective) and the accent colour's contrast check.",
        tag=TAG,
        response=s.Branding,
        errors=(404,),
    )
    async def get_event_branding(self, request: web.Request, call: Call) -> s.Branding:
        return await self._answer(await self._scope(request, call))

    @operation(
        "PUT",
        EVENT,
        scope=TokenScope.WRITE,
        summary="Set the event's accent colour and organiser name",
        description="Fields left out stay; null or an empty string clears one (the"
        " organiser's applies). contrast.warning says when white text on the colour is"
        " below WCAG AA (4.5:1); the colour is kept anyway.",
        tag=TAG,
        response=s.Branding,
        body=s.BrandingUpdate,
        errors=(404, 422),
    )
    async def put_event_branding(self, request: web.Request, call: Call) -> s.Branding:
        return await self._put(request, call)

    @operation(
        "PUT",
        EVENT + "/{image}",
        scope=TokenScope.WRITE,
        summary="Upload the event's logo or background",
        description="image: logo or background. " + _IMAGE_HELP,
        tag=TAG,
        response=s.Branding,
        errors=(404, 413, 415, 422),
        raw_body="application/octet-stream",
    )
    async def put_event_image(self, request: web.Request, call: Call) -> s.Branding:
        return await self._put_image(request, call)

    @operation(
        "DELETE",
        EVENT + "/{image}",
        scope=TokenScope.WRITE,
        summary="Remove the event's logo or background",
        tag=TAG,
        response=s.Branding,
        errors=(404,),
    )
    async def delete_event_image(self, request: web.Request, call: Call) -> s.Branding:
        return await self._delete_image(request, call)

    # ------------------------------------------------------------------ the organiser's

    @operation(
        "GET",
        ME,
        scope=TokenScope.READ,
        summary="The token's account's branding (every event of theirs)",
        tag=TAG,
        response=s.Branding,
        errors=(422,),
    )
    async def get_my_branding(self, request: web.Request, call: Call) -> s.Branding:
        return await self._answer(await self._scope(request, call))

    @operation(
        "PUT",
        ME,
        scope=TokenScope.WRITE,
        summary="Set the account's accent colour and organiser name",
        description="As for an event; an event's own setting overrides these.",
        tag=TAG,
        response=s.Branding,
        body=s.BrandingUpdate,
        errors=(422,),
    )
    async def put_my_branding(self, request: web.Request, call: Call) -> s.Branding:
        return await self._put(request, call)

    @operation(
        "PUT",
        ME + "/{image}",
        scope=TokenScope.WRITE,
        summary="Upload the account's logo or background",
        description="image: logo or background. " + _IMAGE_HELP,
        tag=TAG,
        response=s.Branding,
        errors=(404, 413, 415, 422),
        raw_body="application/octet-stream",
    )
    async def put_my_image(self, request: web.Request, call: Call) -> s.Branding:
        return await self._put_image(request, call)

    @operation(
        "DELETE",
        ME + "/{image}",
        scope=TokenScope.WRITE,
        summary="Remove the account's logo or background",
        tag=TAG,
        response=s.Branding,
        errors=(404, 422),
    )
    async def delete_my_image(self, request: web.Request, call: Call) -> s.Branding:
        return await self._delete_image(request, call)
