"""The public pages: the home page (join by event ID), an event's attendee and presenter
rooms (also entered with a signed join token, and framed by the sites allowed to embed the
event), and the thank-you page."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from webinar.attendance.service import ENDED_FOR_ALL, sql_ending
from webinar.http.branding import event_brand
from webinar.http.headers import EVENT_ORIGINS
from webinar.http.language import use_event_language
from webinar.http.site import Pages, Site, route
from webinar.i18n import _
from webinar.ids import format_event_id, normalize_event_id, same_secret
from webinar.storage.store import Event
from webinar.ticketing import embedding, records
from webinar.ticketing.join_tokens import JoinTokens, TokenRefusal


class EventPages(Pages):
    def __init__(self, site: Site, *, embed_origins: tuple[str, ...] = ()) -> None:
        self.site = site
        #: The global ``http.embed_origins`` (each event may add its own).
        self.embed_origins = embed_origins
        self.join_tokens = JoinTokens(site.store)

    async def _framers(self, request: web.Request, event: Event) -> tuple[str, ...]:
        """Who may frame this event's room (the page posts its messages to them only); the
        security headers' middleware reads the event's own from the request."""
        event_id = event.event_id
        own = await self.site.store.run_sql(lambda db: embedding.sql_origins(db, event_id))
        request[EVENT_ORIGINS] = own
        return (*self.embed_origins, *(o for o in own if o not in self.embed_origins))

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
        """The attendee's room; with ``?jwt=<signed join token>`` the room of the token's
        person, entered at once (a presenter's token shows the presenter's room). A token
        that does not verify shows the attendee's room, whose join then says why."""
        event = await self._event_or_404(request)
        framers = await self._framers(request, event)
        token = request.query.get("jwt", "")
        role, name = "attendee", None
        if token:
            try:
                claims = await self.join_tokens.check(event, token, datetime.now(UTC))
            except TokenRefusal:
                pass
            else:
                role, name = claims.role, claims.name
        event_id = event.event_id
        access = await self.site.store.run(
            lambda core: records.get_access(core.connection, event_id)
        )
        ending = await self.site.store.run_sql(lambda db: sql_ending(db, event_id))
        return self.site.render(
            request,
            "room.html",
            brand=await event_brand(self.site.store, event),
            role=role,
            event_id=format_event_id(event.event_id),
            title=event.title,
            starts_at=event.starts_at.isoformat() if event.starts_at else None,
            presenter_key=None,
            access_type=event.access_type,
            join_token=bool(token),
            token_name=name,
            # registrants enter with their personal links; an open event admits nobody else
            registration_required=access.registration_required,
            # ended for all: the page says so at once instead of offering to join
            ended=ending is not None and ending.how == ENDED_FOR_ALL,
            embed_origins=framers,
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
        framers = await self._framers(request, event)
        return self.site.render(
            request,
            "room.html",
            brand=await event_brand(self.site.store, event),
            role=role,
            event_id=format_event_id(event.event_id),
            title=event.title,
            starts_at=event.starts_at.isoformat() if event.starts_at else None,
            presenter_key=key,
            embed_origins=framers,
        )

    @route("GET", "/thanks")
    async def thanks(self, request: web.Request) -> web.Response:
        return self.site.render(request, "thanks.html", title=_("Thank you"))
