"""The dashboard's live stream page: where an event's stream goes (an RTMP or RTMPS ingest
URL and the stream key, as YouTube, Facebook or any ingest shows them).

Routes (the signed-in organiser of the event, or an admin):
``GET /dashboard/events/{event_id}/live-stream`` (the form; the saved key shown only as its
last four characters; while the event's room is live here, the stream's state and a start or
stop button), ``POST /dashboard/events/{event_id}/live-stream`` (save: an empty key field keeps
the saved key), ``POST /dashboard/events/{event_id}/live-stream/remove`` and
``POST /dashboard/events/{event_id}/live-stream/{start,stop}``.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from webinar.broadcast.live import LiveStreamService
from webinar.broadcast.rtmp import MAX_KEY_LENGTH, MAX_URL_LENGTH, IngestError
from webinar.broadcast.settings import LiveStreamSettings, LiveStreamSettingsService
from webinar.http.site import Pages, Site, route
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.rooms.live import LiveRoom
from webinar.rooms.manager import RoomManager
from webinar.rooms.state import DASHBOARD, Phase, RoomError
from webinar.storage.store import Event


class LiveStreamPages(Pages):
    def __init__(
        self,
        site: Site,
        service: LiveStreamService,
        rooms: Callable[[], RoomManager | None] = lambda: None,
    ) -> None:
        self.site = site
        self.service = service
        self.settings: LiveStreamSettingsService = service.settings
        self._rooms = rooms

    def _room(self, event: Event) -> LiveRoom | None:
        """The event's room if it is live on this worker."""
        rooms = self._rooms()
        room = rooms.get(event.event_id) if rooms is not None else None
        if room is None or room.closed or room.state.phase is not Phase.LIVE:
            return None
        return room

    @route("GET", "/dashboard/events/{event_id}/live-stream")
    async def page(self, request: web.Request) -> web.Response:
        event, _record, _user = await self.site.owned_event(request)
        saved = await self.settings.get(event.event_id)
        notice = request.query.get("notice")
        return await self._page(
            request, event, saved, url=saved.url if saved else "", notice=notice
        )

    async def _page(
        self,
        request: web.Request,
        event: Event,
        saved: LiveStreamSettings | None,
        *,
        url: str,
        error: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> web.Response:
        record, user = await self.site.require(request)
        room = self._room(event)
        live: dict[str, object] | None = None
        if room is not None:
            output = room.broadcast.output() if room.broadcast is not None else None
            live = {"status": room.state.live_stream.value, "output": output}
        return self.site.render(
            request,
            "live_stream.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            event={"id": format_event_id(event.event_id), "title": event.title},
            saved=saved,
            url=url,
            limits={"url": MAX_URL_LENGTH, "key": MAX_KEY_LENGTH},
            error=error,
            notice=notice if notice in ("saved", "removed", "started", "stopped") else None,
            live=live,
        )

    @route("POST", "/dashboard/events/{event_id}/live-stream")
    async def save(self, request: web.Request) -> web.Response:
        event, record, _user = await self.site.owned_event(request)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        url = str(form.get("url", ""))[: MAX_URL_LENGTH * 2]
        key = str(form.get("key", ""))[: MAX_KEY_LENGTH * 2]
        try:
            await self.settings.save(event.event_id, url, key or None)
        except IngestError as exc:
            saved = await self.settings.get(event.event_id)
            return await self._page(request, event, saved, url=url, error=str(exc), status=400)
        raise web.HTTPSeeOther(
            f"/dashboard/events/{format_event_id(event.event_id)}/live-stream?notice=saved"
        )

    @route("POST", "/dashboard/events/{event_id}/live-stream/remove")
    async def remove(self, request: web.Request) -> web.Response:
        event, record, _user = await self.site.owned_event(request)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        await self.settings.clear(event.event_id)
        raise web.HTTPSeeOther(
            f"/dashboard/events/{format_event_id(event.event_id)}/live-stream?notice=removed"
        )

    @route("POST", "/dashboard/events/{event_id}/live-stream/{action:start|stop}")
    async def start_stop(self, request: web.Request) -> web.Response:
        event, record, _user = await self.site.owned_event(request)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        on = request.match_info["action"] == "start"
        room = self._room(event)
        saved = await self.settings.get(event.event_id)
        error = None
        if room is None:
            error = _("the event is not live on this server")
        elif on and (refusal := await self.service.refusal(event)) is not None:
            error = refusal
        else:
            try:
                await room.do("set_live_stream", DASHBOARD, on)
            except RoomError as exc:
                error = exc.message
        if error is not None:
            url = saved.url if saved else ""
            return await self._page(request, event, saved, url=url, error=error, status=409)
        raise web.HTTPSeeOther(
            f"/dashboard/events/{format_event_id(event.event_id)}/live-stream"
            f"?notice={'started' if on else 'stopped'}"
        )
