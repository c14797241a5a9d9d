"""The organiser's dashboard: list own events, schedule and edit them.

Server-rendered forms; every state-changing request carries the session's CSRF token
(:class:`webinar.http.site.Site`); an organiser sees and changes only their own events, an admin
all of them. Signing in and out is :mod:`webinar.http.auth`.
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from webinar import i18n
from webinar.content.external import ExternalLinkError, check_external, provider_labels
from webinar.http.site import Pages, Site, route
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.links import attendee_path, host_path, presenter_path
from webinar.storage.records import HLS_OVERFLOW_DEFAULT
from webinar.storage.store import ACCESS_TYPES, Event, EventSettings, SessionRecord, User

AfterSave = Callable[[Event], Awaitable[None]]

#: The time zones the event form suggests (its field takes any IANA name).
ZONE_SUGGESTIONS = (
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Prague",
    "Europe/Vienna",
    "Europe/Zurich",
    "Europe/Athens",
    "Europe/Helsinki",
    "Europe/Kyiv",
    "Europe/Istanbul",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Perth",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "America/Buenos_Aires",
    "America/Mexico_City",
    "America/New_York",
    "America/Toronto",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)


class EventHooks(Protocol):
    """What ticketing adds to the event form: booking rules and access settings."""

    async def before_save(
        self, user: User, settings: EventSettings, form: dict[str, str], event: Event | None
    ) -> AfterSave:
        """Check the form (ValueError names the problem); the result stores the rest."""
        ...

    async def form_values(self, event: Event | None) -> dict[str, Any]:
        """Extra form values (and template context) for the event form."""
        ...


class EventEmbed(Protocol):
    """What the event page shows and saves of embedding (webinar.http.embed)."""

    async def event_embed(self, request: web.Request, event: Event) -> dict[str, Any]:
        """The snippet and the allowed origins of ``event``."""
        ...

    async def save_origins(self, event: Event, text: str) -> tuple[str, ...]:
        """Replace the allowed origins (one per line); ValueError names what is wrong."""
        ...


@dataclasses.dataclass
class Dashboard(Pages):
    """The organiser's event pages: the overview, and the form that schedules and edits."""

    site: Site
    hooks: EventHooks | None = None
    embed: EventEmbed | None = None
    #: The administrator's extra external-player hosts (``[content] external_providers``).
    external_providers: tuple[str, ...] = ()

    # ------------------------------------------------------------------ events

    @route("GET", "/dashboard")
    async def overview(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        now = datetime.now(UTC)
        groups: dict[str, list[dict[str, Any]]] = {"live": [], "upcoming": [], "past": []}
        for event in await self.site.visible_events(user):
            groups[event.status(now)].append(self._event_view(request, event))
        groups["upcoming"].sort(key=lambda e: e["starts_at_utc"] or "")
        groups["past"].reverse()
        return self.site.render(
            request,
            "dashboard.html",
            user=user,
            csrf=record.csrf_token,
            groups=groups,
            notice="deleted" if request.query.get("notice") == "deleted" else None,
        )

    def event_view(self, request: web.Request, event: Event) -> dict[str, Any]:
        """What templates show of an event (its ID, times, the three links)."""
        return self._event_view(request, event)

    def _event_view(self, request: web.Request, event: Event) -> dict[str, Any]:
        base = (self.site.public_url or str(request.url.origin())).rstrip("/")
        attendee = base + attendee_path(event)
        presenter = base + presenter_path(event)
        host = base + host_path(event)
        local = _local_start(event)
        return {
            "event_id": format_event_id(event.event_id),
            "title": event.title,
            "starts_at_utc": event.starts_at.isoformat() if event.starts_at else None,
            "starts_local": _start_text(local) if local else _("No start time"),
            "timezone": event.timezone,
            "duration_minutes": event.duration_minutes,
            "access_type": event.access_type,
            "attendee_url": attendee,
            "presenter_url": presenter,
            "host_url": host,
        }

    @route("GET", "/dashboard/events/new")
    async def new_event_form(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        values = {**_form_values(None), **await self._extra_values(None)}
        return await self._form(request, record, user, event=None, values=values, error=None)

    async def _extra_values(self, event: Event | None) -> dict[str, Any]:
        return await self.hooks.form_values(event) if self.hooks else {}

    async def _save(self, user: User, values: dict[str, str], event: Event | None) -> Event:
        settings = _settings_from_form(values)
        entered = (settings.external_url or "").strip() or None
        if event is None or entered != event.external_url:  # checked when set or changed
            try:
                entered = check_external(entered, self.external_providers)
            except ExternalLinkError as exc:
                raise ValueError(str(exc)) from None
        settings = dataclasses.replace(settings, external_url=entered)
        after = None
        if self.hooks is not None:
            after = await self.hooks.before_save(user, settings, values, event)
        if event is None:
            saved = await self.site.store.create_event_from(settings, owner_id=user.user_id)
        else:
            saved = await self.site.store.update_event(event.event_id, settings)
        if after is not None:
            await after(saved)
        return saved

    async def _form(
        self,
        request: web.Request,
        record: SessionRecord,
        user: User,
        *,
        event: Event | None,
        values: dict[str, Any],
        error: str | None,
        status: int = 200,
        embed_error: str | None = None,
        origins_text: str | None = None,
    ) -> web.Response:
        embed = None
        if event is not None and self.embed is not None:
            embed = await self.embed.event_embed(request, event)
            if origins_text is not None:  # what was typed, refused: shown again to correct
                embed["origins"] = origins_text.splitlines()
        return self.site.render(
            request,
            "event_form.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            event=self._event_view(request, event) if event else None,
            values=values,
            error=error,
            access_types=ACCESS_TYPES,
            event_languages=[(code, i18n.NATIVE_NAMES[code]) for code in i18n.LANGUAGES],
            zones=ZONE_SUGGESTIONS,
            embed=embed,
            embed_error=embed_error,
            embed_saved=request.query.get("embed") == "saved",
            external_providers=provider_labels(),
            external_hosts=self.external_providers,
            copied=event is not None and request.query.get("copied") == "1",
        )

    @route("POST", "/dashboard/events")
    async def create_event(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        try:
            event = await self._save(user, values, None)
        except ValueError as exc:
            values = {**await self._extra_values(None), **values}
            return await self._form(
                request, record, user, event=None, values=values, error=str(exc), status=400
            )
        raise web.HTTPSeeOther(f"/dashboard/events/{format_event_id(event.event_id)}?saved=1")

    @route("GET", "/dashboard/events/{event_id}")
    async def edit_event_form(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        event = await self.site.own_event(request, user)
        values = {**_form_values(event), **await self._extra_values(event)}
        return await self._form(request, record, user, event=event, values=values, error=None)

    @route("POST", "/dashboard/events/{event_id}")
    async def update_event(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        event = await self.site.own_event(request, user)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        try:
            updated = await self._save(user, values, event)
        except ValueError as exc:
            values = {**await self._extra_values(event), **values}
            return await self._form(
                request, record, user, event=event, values=values, error=str(exc), status=400
            )
        raise web.HTTPSeeOther(f"/dashboard/events/{format_event_id(updated.event_id)}?saved=1")

    @route("POST", "/dashboard/events/{event_id}/embed")
    async def save_embed(self, request: web.Request) -> web.Response:
        """The sites allowed to embed the event (one origin per line)."""
        record, user, form = await self.site.require_form(request)
        event = await self.site.own_event(request, user)
        if self.embed is None:
            raise web.HTTPNotFound()
        text = str(form.get("origins", ""))[:10_000]
        try:
            await self.embed.save_origins(event, text)
        except ValueError as exc:
            values = {**_form_values(event), **await self._extra_values(event)}
            return await self._form(
                request,
                record,
                user,
                event=event,
                values=values,
                error=None,
                status=400,
                embed_error=str(exc),
                origins_text=text,
            )
        raise web.HTTPSeeOther(
            f"/dashboard/events/{format_event_id(event.event_id)}?embed=saved#embed"
        )


def _start_text(local: datetime) -> str:
    """An event's start as the dashboard shows it, in the language in effect."""
    if i18n.current() == i18n.DEFAULT:
        return local.strftime("%a %d %b %Y, %H:%M")  # the dashboard's own English form
    return i18n.format_time_of_day(local, local.tzinfo)


def _local_start(event: Event) -> datetime | None:
    if event.starts_at is None:
        return None
    try:
        return event.starts_at.astimezone(zoneinfo.ZoneInfo(event.timezone))
    except zoneinfo.ZoneInfoNotFoundError:
        return event.starts_at


def _form_values(event: Event | None) -> dict[str, Any]:
    if event is None:
        return {
            "title": "",
            "agenda": "",
            "lobby_message": "",
            "start": "",
            "timezone": "UTC",
            "duration_minutes": "60",
            "join_window_minutes": "5",
            "access_type": "open",
            "camera_limit": "4",
            "thank_you_url": "",
            "language": "",
            "external_url": "",
            "hls_mode": "off",
            "hls_overflow_after": "100",
        }
    local = _local_start(event)
    return {
        "title": event.title,
        "agenda": event.agenda,
        "lobby_message": event.lobby_message,
        "start": local.strftime("%Y-%m-%dT%H:%M") if local else "",
        "timezone": event.timezone,
        "duration_minutes": str(event.duration_minutes),
        "join_window_minutes": str(event.join_window_minutes),
        "access_type": event.access_type,
        "camera_limit": str(event.camera_limit),
        "thank_you_url": event.thank_you_url or "",
        "language": event.language or "",
        "external_url": event.external_url or "",
        "hls_mode": event.hls_mode,
        "hls_overflow_after": str(event.hls_overflow_after),
    }


def _int(values: dict[str, str], name: str, error: str) -> int:
    try:
        return int(values.get(name, "").strip())
    except ValueError:
        raise ValueError(error) from None


def _language(values: dict[str, str]) -> str | None:
    """The event's language from the form: one of ours, or None (each attendee's own)."""
    chosen = values.get("language", "").strip()
    if not chosen:
        return None
    if chosen not in i18n.LANGUAGES:
        raise ValueError(_("choose the event's language from the list"))
    return chosen


def _settings_from_form(values: dict[str, str]) -> EventSettings:
    """Form fields to settings; the start is local time in the chosen IANA zone."""
    tz_name = values.get("timezone", "UTC").strip() or "UTC"
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            _("unknown time zone %(zone)s (use an IANA name)") % {"zone": repr(tz_name)}
        ) from None
    start_text = values.get("start", "").strip()
    starts_at = None
    if start_text:
        try:
            naive = datetime.fromisoformat(start_text)
        except ValueError:
            raise ValueError(_("the start must be a date and time")) from None
        starts_at = naive.replace(tzinfo=tz).astimezone(UTC)
    return EventSettings(
        title=values.get("title", ""),
        starts_at=starts_at,
        agenda=values.get("agenda", ""),
        lobby_message=values.get("lobby_message", ""),
        join_window_minutes=_int(
            values, "join_window_minutes", _("the join window must be a whole number")
        ),
        thank_you_url=values.get("thank_you_url") or None,
        timezone=tz_name,
        duration_minutes=_int(values, "duration_minutes", _("the duration must be a whole number")),
        access_type=values.get("access_type", "open"),
        camera_limit=_int(values, "camera_limit", _("the camera limit must be a whole number")),
        language=_language(values),
        external_url=values.get("external_url") or None,
        hls_mode=values.get("hls_mode", "off"),
        hls_overflow_after=(
            _int(values, "hls_overflow_after", _("the HLS threshold must be a whole number"))
            if "hls_overflow_after" in values  # forms from before the setting: its default
            else HLS_OVERFLOW_DEFAULT
        ),
    )
