"""What a live room showed on stage, in the API: its timeline and which slide was up when."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from webinar.content.stage import StageService
from webinar.formats import iso_time
from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator
from webinar.http.api.events import visible_event
from webinar.http.api.table import ApiPages, Call, operation
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Store

TAG = "Content"


@dataclass
class StageApi(ApiPages):
    store: Store
    auth: Authenticator
    stage: StageService

    @operation(
        "GET",
        "/api/v1/events/{event_id}/stage",
        scope=Scope.READ,
        summary="What the room showed on stage, when",
        description=(
            "The stage's timeline (layouts, presentations opened and closed, page turns, the"
            " shared video's plays, pauses and seeks, files offered, whiteboard pages and"
            " clears) with their times, oldest first; and, from it, which page of which"
            " presentation was on stage when and for how long (`seconds` null: still up)."
        ),
        tag=TAG,
        response=s.StageHistory,
        errors=(404,),
    )
    async def stage_history(self, request: web.Request, call: Call) -> s.StageHistory:
        event = await visible_event(self.store, request, call.who())
        entries = await self.stage.log(event.event_id)
        slides = await self.stage.slides(event.event_id, None)
        return s.StageHistory(
            [
                s.StageLogItem(
                    at=iso_time(e.at, zulu=True) or "",
                    kind=e.kind,
                    by=e.by,
                    details=e.data,
                )
                for e in entries
            ],
            [
                s.SlideItem(
                    at=iso_time(x.at, zulu=True) or "",
                    content_id=x.content_id,
                    name=x.name,
                    page=x.page,
                    seconds=round(x.seconds, 3) if x.seconds is not None else None,
                )
                for x in slides
            ],
        )
