"""Recordings in the API (``/api/v1/recordings``): list, download, trim, delete, publish
links, and the per-event automatic recording. The rules are the dashboard's recordings page's
(:mod:`webinar.http.recordings`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from webinar.formats import iso_time
from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator, Caller
from webinar.http.api.errors import api_error
from webinar.http.api.events import visible_event
from webinar.http.api.paging import paginate
from webinar.http.api.table import PAGE_QUERY, ApiPages, Call, Query, operation
from webinar.http.captions_vtt import recording_vtt, vtt_response
from webinar.i18n import _
from webinar.ids import format_event_id, normalize_event_id
from webinar.recordings.library import RecordingInfo, RecordingService, media_type
from webinar.recordings.sharing import Publication, Publisher, valid_email
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Store
from webinar.ticketing.mail import MailError

TAG = "Recordings"


def _file(recording_id: str, f: dict[str, Any]) -> s.RecordingFile:
    return s.RecordingFile(
        name=str(f["name"]),
        feed=str(f.get("feed", "")),
        label=str(f.get("label") or f.get("feed", "")),
        part=int(f.get("part", 1)),
        offset=round(float(f.get("offset", 0.0)), 3),
        duration=round(float(f.get("duration", 0.0)), 3),
        size=int(f.get("size", 0)),
        streams=[
            s.RecordedStream(
                slot=str(x.get("slot", "")),
                kind=x["kind"],
                codec=str(x["codec"]),
                frames=int(x.get("frames", 0)),
                first_ms=x.get("first_ms"),
                last_ms=x.get("last_ms"),
            )
            for x in f.get("streams", ())
        ],
        error=f.get("error"),
        download=f"/api/v1/recordings/{recording_id}/files/{f['name']}",
    )


def recording_json(info: RecordingInfo) -> s.Recording:
    return s.Recording(
        recording_id=info.recording_id,
        event_id=format_event_id(info.event_id),
        started_at=iso_time(info.started_at, zulu=True) or "",
        ended_at=iso_time(info.ended_at, zulu=True) or "",
        duration_seconds=round(info.duration, 3),
        size_bytes=info.size,
        files=[_file(info.recording_id, f) for f in info.files],
    )


@dataclass
class RecordingsApi(ApiPages):
    store: Store
    auth: Authenticator
    service: RecordingService
    publisher: Publisher
    public_url: str | None

    def _base(self, request: web.Request) -> str:
        return (self.public_url or str(request.url.origin())).rstrip("/")

    async def _recording(self, request: web.Request, caller: Caller) -> RecordingInfo:
        info = await self.service.get(request.match_info["recording_id"])
        if info is not None and not caller.sees_all:
            event = await self.store.get_event(info.event_id)
            if event is None or not caller.may_see(event):
                info = None
        if info is None:
            raise api_error(404, "not-found", _("no such recording of yours"))
        return info

    async def _publication_json(
        self, request: web.Request, p: Publication, sent: int = 0
    ) -> s.Publication:
        return s.Publication(
            publication_id=p.publication_id,
            recording_id=p.recording_id,
            link=f"{self._base(request)}/r/{await self.publisher.token(p)}",
            expires_at=iso_time(p.expires, zulu=True) or "",
            expired=p.expires <= datetime.now(UTC),
            require_email=p.require_email,
            viewers=p.viewers,
            sent=sent,
        )

    @operation(
        "GET",
        "/api/v1/recordings",
        scope=Scope.READ,
        summary="List recordings",
        description="Newest first; the caller's events' (an admin's: all).",
        tag=TAG,
        response=s.RecordingPage,
        query=(*PAGE_QUERY, Query("event_id", "Only this event's recordings.")),
    )
    async def list_recordings(self, request: web.Request, call: Call) -> s.RecordingPage:
        event_id = request.query.get("event_id")
        found = await self.service.list(
            owner_id=call.who().owner_id,
            event_id=(normalize_event_id(event_id) or "-") if event_id else None,
        )
        page = paginate(
            request, found, lambda r: (r.started_at.isoformat(), r.recording_id), descending=True
        )
        return s.RecordingPage([recording_json(r) for r in page.items], page.next_cursor)

    @operation(
        "GET",
        "/api/v1/recordings/{recording_id}",
        scope=Scope.READ,
        summary="Get a recording",
        tag=TAG,
        response=s.Recording,
        errors=(404,),
    )
    async def get_recording(self, request: web.Request, call: Call) -> s.Recording:
        return recording_json(await self._recording(request, call.who()))

    @operation(
        "GET",
        "/api/v1/recordings/{recording_id}/files/{name}",
        scope=Scope.READ,
        summary="Download one of a recording's files",
        description=(
            "A WebM file (one publisher's camera or screen with its sound, video/webm) or"
            " composed.mp4 (the stage as one picture, video/mp4)."
        ),
        tag=TAG,
        media="video/webm",
        errors=(404,),
    )
    async def download(self, request: web.Request, call: Call) -> web.StreamResponse:
        info = await self._recording(request, call.who())
        path = self.service.file_path(info, request.match_info["name"])
        if path is None:
            raise api_error(404, "not-found", _("no such file in this recording"))
        return web.FileResponse(
            path,
            headers={
                "Content-Type": media_type(path.name),
                "Content-Disposition": f'attachment; filename="{info.recording_id}-{path.name}"',
            },
        )

    @operation(
        "GET",
        "/api/v1/recordings/{recording_id}/captions.vtt",
        scope=Scope.READ,
        summary="A recording's live captions as WebVTT",
        description=(
            "The event's kept live caption lines on the recording's time (paused spans cut"
            " out, trimming taken off), text/vtt; `file` puts them on that file's time (it"
            " starts `offset` seconds into the recording). No lines: a WebVTT with no cues."
        ),
        tag=TAG,
        media="text/vtt",
        query=(Query("file", "One of the recording's files: cues on its time."),),
        errors=(404,),
    )
    async def captions(self, request: web.Request, call: Call) -> web.StreamResponse:
        info = await self._recording(request, call.who())
        try:
            text = await recording_vtt(self.store, info, request.query.get("file"))
        except KeyError:
            raise api_error(404, "not-found", _("no such file in this recording")) from None
        return vtt_response(text)

    @operation(
        "DELETE",
        "/api/v1/recordings/{recording_id}",
        scope=Scope.WRITE,
        summary="Delete a recording",
        description="Its files and its published links.",
        tag=TAG,
        status=204,
        errors=(404,),
    )
    async def delete_recording(self, request: web.Request, call: Call) -> None:
        info = await self._recording(request, call.who())
        await self.service.delete(info.recording_id)

    @operation(
        "POST",
        "/api/v1/recordings/{recording_id}/trim",
        scope=Scope.WRITE,
        summary="Trim a recording",
        description="Keeps start..end seconds, cut at keyframes, without re-encoding.",
        tag=TAG,
        response=s.Recording,
        body=s.Trim,
        errors=(404, 422),
    )
    async def trim(self, request: web.Request, call: Call) -> s.Recording:
        info = await self._recording(request, call.who())
        body = call.body_as(s.Trim)
        end = info.duration if body.end is None else body.end
        try:
            trimmed = await self.service.trim(info.recording_id, body.start, end)
        except ValueError as exc:
            raise api_error(422, "invalid", str(exc)) from None
        return recording_json(trimmed)

    @operation(
        "GET",
        "/api/v1/recordings/{recording_id}/publications",
        scope=Scope.READ,
        summary="List a recording's published links",
        tag=TAG,
        response=s.PublicationPage,
        query=PAGE_QUERY,
        errors=(404,),
    )
    async def list_publications(self, request: web.Request, call: Call) -> s.PublicationPage:
        info = await self._recording(request, call.who())
        found = await self.publisher.publications(info.recording_id)
        page = paginate(request, found, lambda p: (p.created_at, p.publication_id))
        return s.PublicationPage(
            [await self._publication_json(request, p) for p in page.items], page.next_cursor
        )

    @operation(
        "POST",
        "/api/v1/recordings/{recording_id}/publications",
        scope=Scope.WRITE,
        summary="Publish a recording by link",
        description="A link that plays it until it expires, optionally behind a form asking "
        "for an e-mail address; each recipient is sent a personal link.",
        tag=TAG,
        status=201,
        response=s.Publication,
        body=s.PublicationCreate,
        errors=(404, 422, 502),
    )
    async def publish(self, request: web.Request, call: Call) -> s.Publication:
        info = await self._recording(request, call.who())
        body = call.body_as(s.PublicationCreate)
        event = await self.store.get_event(info.event_id)
        try:
            for recipient in body.recipients:
                valid_email(recipient)
            publication = await self.publisher.publish(
                info.recording_id, days=body.days, require_email=body.require_email
            )
        except ValueError as exc:
            raise api_error(422, "invalid", str(exc)) from None
        sent = 0
        if body.recipients:
            try:
                sent = await self.publisher.send(
                    publication,
                    body.recipients,
                    base_url=self._base(request),
                    title=event.title if event else _("the event"),
                )
            except ValueError as exc:
                raise api_error(422, "invalid", str(exc)) from None
            except MailError as exc:
                raise api_error(502, "mail-failed", str(exc)) from None
        return await self._publication_json(request, publication, sent)

    @operation(
        "DELETE",
        "/api/v1/recordings/{recording_id}/publications/{publication_id}",
        scope=Scope.WRITE,
        summary="Revoke a published link",
        tag=TAG,
        status=204,
        errors=(404,),
    )
    async def revoke_publication(self, request: web.Request, call: Call) -> None:
        info = await self._recording(request, call.who())
        publication_id = request.match_info["publication_id"]
        known = {p.publication_id for p in await self.publisher.publications(info.recording_id)}
        if publication_id not in known:
            raise api_error(404, "not-found", _("no such link of this recording"))
        await self.publisher.revoke(publication_id)

    @operation(
        "GET",
        "/api/v1/events/{event_id}/recording-settings",
        scope=Scope.READ,
        summary="Whether an event records by itself",
        tag=TAG,
        response=s.RecordingSettings,
        errors=(404,),
    )
    async def get_settings(self, request: web.Request, call: Call) -> s.RecordingSettings:
        event = await visible_event(self.store, request, call.who())
        return s.RecordingSettings(auto_record=await self.service.auto_record(event))

    @operation(
        "PUT",
        "/api/v1/events/{event_id}/recording-settings",
        scope=Scope.WRITE,
        summary="Make an event record by itself, or not",
        description="auto_record: recording starts when the event starts.",
        tag=TAG,
        response=s.RecordingSettings,
        body=s.RecordingSettings,
        errors=(404,),
    )
    async def put_settings(self, request: web.Request, call: Call) -> s.RecordingSettings:
        event = await visible_event(self.store, request, call.who())
        wanted = call.body_as(s.RecordingSettings).auto_record
        await self.service.set_auto_record(event.event_id, wanted)
        return s.RecordingSettings(auto_record=await self.service.auto_record(event))
