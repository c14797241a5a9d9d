"""Event content in the API: upload (the raw body, streamed), list, get, delete, download.
The rules are the dashboard Content page's (:mod:`webinar.http.content`)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from aiohttp import web

from webinar.content.library import ContentFile, ContentService, UploadRefused
from webinar.formats import iso_time
from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator, Caller
from webinar.http.api.errors import api_error
from webinar.http.api.events import visible_event
from webinar.http.api.paging import paginate
from webinar.http.api.table import PAGE_QUERY, ApiPages, Call, Query, operation
from webinar.http.content import body_chunks, content_json, serve_file
from webinar.http.interaction import InteractionHttp
from webinar.i18n import _
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Event, Store

TAG = "Content"


def _json(event: Event, info: ContentFile) -> s.ContentFile:
    data = content_json(event, info)
    data["created_at"] = iso_time(info.created_at, zulu=True) or ""
    data["download"] = f"/api/v1/content/{info.content_id}/download"
    return msgspec.convert(data, s.ContentFile)


@dataclass
class ContentApi(ApiPages):
    store: Store
    auth: Authenticator
    service: ContentService
    interaction: InteractionHttp

    async def _content(self, request: web.Request, caller: Caller) -> tuple[Event, ContentFile]:
        info = await self.service.get(request.match_info["content_id"])
        event = None if info is None else await self.store.get_event(info.event_id)
        if info is None or event is None or not caller.may_see(event) or not info.servable:
            raise api_error(404, "not-found", _("no such file of yours"))
        return event, info

    @operation(
        "POST",
        "/api/v1/events/{event_id}/content",
        scope=Scope.WRITE,
        summary="Upload a file to an event",
        description=(
            "The raw file as the body, its type in `Content-Type` (or"
            " `application/octet-stream`: the content decides), its name in `?name=`."
            " Checked by content (a file that claims a type it is not is refused, 415"
            " `type-mismatch`), against the size limit (413 `file-too-large`) and the"
            " organiser's quota (413 `quota-exceeded`) while it arrives, then scanned for"
            " malware (422 `malware-found`; 503 `scan-failed` or `scanner-required`)."
            " Presenters upload with the event's presenter key in `X-Presenter-Key`."
            " A PDF, PowerPoint or OpenDocument presentation is then rendered to page images"
            " in the background (`render_status` rendering, then ready with `pages`, or"
            " failed with `render_message`)."
        ),
        tag=TAG,
        status=201,
        response=s.ContentFile,
        query=(
            Query(
                "name",
                "The file's name, as attendees will save it (default `upload` with the"
                " extension of its type).",
            ),
        ),
        errors=(404, 413, 415, 422, 503),
        presenter_key=True,
        raw_body="application/octet-stream",
    )
    async def upload_content(self, request: web.Request, call: Call) -> s.ContentFile:
        if call.caller is None:  # a presenter key instead of a token
            event = await self.store.get_event(request.match_info["event_id"])
            if event is None or not await self.interaction.presenter_may_upload(request, event):
                raise api_error(
                    403, "forbidden", _("this key is not the event's presenter or host key")
                )
            by = "presenter"
        else:
            event = await visible_event(self.store, request, call.who())
            by = "organiser"
        try:
            info = await self.service.receive(
                event,
                body_chunks(request),
                file_name=request.query.get("name") or "upload",
                content_type=request.headers.get("Content-Type"),
                declared_size=request.content_length,
                uploaded_by=by,
            )
        except UploadRefused as refused:
            raise api_error(
                refused.status, refused.code, refused.message, **refused.extra
            ) from None
        return _json(event, info)

    @operation(
        "GET",
        "/api/v1/events/{event_id}/content",
        scope=Scope.READ,
        summary="List an event's files",
        description=(
            "Oldest first, with the organiser's quota and whether uploads are scanned;"
            " presentations with their page count or rendering state."
        ),
        tag=TAG,
        response=s.ContentPage,
        query=PAGE_QUERY,
        errors=(404,),
    )
    async def list_content(self, request: web.Request, call: Call) -> s.ContentPage:
        event = await visible_event(self.store, request, call.who())
        found = await self.service.list(event.event_id, servable_only=True)
        page = paginate(request, found, lambda f: (f.created_at.isoformat(), f.content_id))
        return s.ContentPage(
            [_json(event, f) for f in page.items],
            page.next_cursor,
            quota_bytes=self.service.quota_bytes,
            used_bytes=await self.service.used(event.owner_id),
            scanning=self.service.scanning,
        )

    @operation(
        "GET",
        "/api/v1/content/{content_id}",
        scope=Scope.READ,
        summary="Get a file's details",
        tag=TAG,
        response=s.ContentFile,
        errors=(404,),
    )
    async def get_content(self, request: web.Request, call: Call) -> s.ContentFile:
        event, info = await self._content(request, call.who())
        return _json(event, info)

    @operation(
        "GET",
        "/api/v1/content/{content_id}/download",
        scope=Scope.READ,
        summary="Download a file",
        description="With its own type (`content_type`), as an attachment named as uploaded.",
        tag=TAG,
        media="*/*",
        errors=(404,),
    )
    async def download_content(self, request: web.Request, call: Call) -> web.StreamResponse:
        _event, info = await self._content(request, call.who())
        return serve_file(request, self.service.path_of(info), info)

    @operation(
        "DELETE",
        "/api/v1/content/{content_id}",
        scope=Scope.WRITE,
        summary="Delete a file",
        description="Its bytes leave the organiser's quota at once.",
        tag=TAG,
        status=204,
        errors=(404,),
    )
    async def delete_content(self, request: web.Request, call: Call) -> None:
        _event, info = await self._content(request, call.who())
        await self.service.delete(info)
