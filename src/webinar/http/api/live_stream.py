"""An event's live stream settings over the API (docs/api.md, "Live stream settings"): the
RTMP(S) ingest URL and the stream key; the key is write-only (the answer shows its last four
characters)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from webinar.broadcast.rtmp import IngestError
from webinar.broadcast.settings import LiveStreamSettings, LiveStreamSettingsService
from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator
from webinar.http.api.errors import api_error
from webinar.http.api.events import visible_event
from webinar.http.api.table import ApiPages, Call, operation
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Store

TAG = "Live stream"
PATH = "/api/v1/events/{event_id}/live-stream"


def _answer(saved: LiveStreamSettings | None) -> s.LiveStreamSettings:
    if saved is None:
        return s.LiveStreamSettings(url=None, key_set=False, key_hint=None, updated_at=None)
    return s.LiveStreamSettings(
        url=saved.url,
        key_set=True,
        key_hint=saved.key_hint,
        updated_at=saved.updated_at.isoformat(),
    )


@dataclass
class LiveStreamApi(ApiPages):
    store: Store
    auth: Authenticator
    settings: LiveStreamSettingsService

    @operation(
        "GET",
        PATH,
        scope=Scope.READ,
        summary="Where the event's live stream goes",
        tag=TAG,
        response=s.LiveStreamSettings,
        errors=(404,),
    )
    async def get_live_stream(self, request: web.Request, call: Call) -> s.LiveStreamSettings:
        event = await visible_event(self.store, request, call.who())
        return _answer(await self.settings.get(event.event_id))

    @operation(
        "PUT",
        PATH,
        scope=Scope.WRITE,
        summary="Set the event's ingest URL and stream key",
        description=(
            "url: rtmp:// or rtmps://host[:port]/app; key: the stream key (omit it or send"
            " null to keep the saved one). The key is stored encrypted and never returned."
        ),
        tag=TAG,
        response=s.LiveStreamSettings,
        body=s.LiveStreamSettingsUpdate,
        errors=(404, 422),
    )
    async def put_live_stream(self, request: web.Request, call: Call) -> s.LiveStreamSettings:
        event = await visible_event(self.store, request, call.who())
        body = call.body_as(s.LiveStreamSettingsUpdate)
        try:
            saved = await self.settings.save(event.event_id, body.url, body.key)
        except IngestError as exc:
            raise api_error(422, "invalid", str(exc)) from None
        return _answer(saved)

    @operation(
        "DELETE",
        PATH,
        scope=Scope.WRITE,
        summary="Forget the event's ingest URL and stream key",
        tag=TAG,
        status=204,
        errors=(404,),
    )
    async def delete_live_stream(self, request: web.Request, call: Call) -> None:
        event = await visible_event(self.store, request, call.who())
        await self.settings.clear(event.event_id)
