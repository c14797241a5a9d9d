"""The public pages: the home page (join by event ID), an event's attendee and presenter
rooms, and the thank-you page."""

from __future__ import annotations

from aiohttp import web

from webinar.http.language import use_event_language
from webinar.http.site import Pages, Site, route
from webinar.i18n import _
from webinar.ids import format_event_id, normalize_event_id, same_secret
from webinar.storage.store import Event


class EventPages(Pages):
    def __init__(self, site: Site) -> None:
        self.site = site

    @route("GET", "/")
    async def home(self, request: web.Request) -> web.Response:
        return self.site.render(request, "home.html", prefill=request.query.get("event", ""))

    async def _event_or_404(self, request: web.Request) -> Event:
        raw = request.match_info["event_id"]
        event_id = normalize_event_id(raw)
        event = await self.site.store.get_event(event_id) if event_id else None
        if event is None:
            page = self.site.render(request, "not_found.html", status=404, event_id=raw[:32])
            raise web.HTTPNotFound(text=page.text, content_type="text/html")
        use_event_language(request, event.language)  # the organiser's choice, if any
        return event

    @route("GET", "/e/{event_id}")
    async def attendee(self, request: web.Request) -> web.Response:
        event = await self._event_or_404(request)
        return self.site.render(
            request,
            "room.html",
            role="attendee",
            event_id=format_event_id(event.event_id),
            title=event.title,
            starts_at=event.starts_at.isoformat() if event.starts_at else None,
            presenter_key=None,
            access_type=event.access_type,
        )

    @route("GET", "/e/{event_id}/present")
    async def presenter(self, request: web.Request) -> web.Response:
        event = await self._event_or_404(request)
        key = request.query.get("key", "")
        if key and event.host_key and same_secret(key, event.host_key):
            role = "host"
        elif key and same_secret(key, event.presenter_key):
            role = "presenter"
        else:
            raise web.HTTPForbidden(text=_("This presenter link is not valid."))
        return self.site.render(
            request,
            "room.html",
            role=role,
            event_id=format_event_id(event.event_id),
            title=event.title,
            starts_at=event.starts_at.isoformat() if event.starts_at else None,
            presenter_key=key,
        )

    @route("GET", "/thanks")
    async def thanks(self, request: web.Request) -> web.Response:
        return self.site.render(request, "thanks.html", title=_("Thank you"))
