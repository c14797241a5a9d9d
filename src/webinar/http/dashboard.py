"""The organiser's dashboard: sign in, list own events, schedule and edit them.

Server-rendered forms. Every state-changing request carries a CSRF token (the
session's, or a double-submit cookie on the sign-in form); the session cookie is
HttpOnly, SameSite=Lax and Secure behind TLS; an organiser sees and changes only
their own events, an admin all of them.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
import zoneinfo
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from webinar.accounts import new_session, token_hash, verify_password_async
from webinar.ids import format_event_id
from webinar.links import attendee_path, host_path, presenter_path
from webinar.storage.store import ACCESS_TYPES, Event, EventSettings, SessionRecord, Store, User

SESSION_COOKIE = "webinar_session"
LOGIN_CSRF_COOKIE = "webinar_login_csrf"
LOGIN_FAILURES_PER_MINUTE = 5

Render = Callable[..., web.Response]
AfterSave = Callable[[Event], Awaitable[None]]


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


class LoginLimiter:
    """At most N failed sign-ins per client address per minute."""

    def __init__(self, limit: int = LOGIN_FAILURES_PER_MINUTE, window: float = 60.0) -> None:
        self._limit = limit
        self._window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, key: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        failures = self._failures[key]
        while failures and now - failures[0] > self._window:
            failures.popleft()
        if len(failures) < self._limit:
            if not failures:
                self._failures.pop(key, None)
            return 0
        return int(self._window - (now - failures[0])) + 1

    def failed(self, key: str, now: float | None = None) -> None:
        self._failures[key].append(time.monotonic() if now is None else now)


@dataclasses.dataclass
class Dashboard:
    store: Store
    render: Render
    public_url: str | None  # links use it, else the origin the request came to
    limiter: LoginLimiter = dataclasses.field(default_factory=LoginLimiter)
    hooks: EventHooks | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/login", self.login_form),
            web.post("/login", self.login),
            web.post("/logout", self.logout),
            web.get("/dashboard", self.overview),
            web.get("/dashboard/events/new", self.new_event_form),
            web.post("/dashboard/events", self.create_event),
            web.get("/dashboard/events/{event_id}", self.edit_event_form),
            web.post("/dashboard/events/{event_id}", self.update_event),
        ]

    # ------------------------------------------------------------------ sessions

    async def _session(self, request: web.Request) -> tuple[SessionRecord, User] | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 100:
            return None
        return await self.store.get_session(token_hash(token), datetime.now(UTC))

    async def _require(self, request: web.Request) -> tuple[SessionRecord, User]:
        found = await self._session(request)
        if found is None:
            raise web.HTTPSeeOther("/login")
        return found

    @staticmethod
    def _check_csrf(expected: str, form: Any) -> None:
        given = str(form.get("csrf", ""))
        if not given or not hmac.compare_digest(given, expected):
            raise web.HTTPForbidden(text="The form expired or did not come from this site.")

    # ------------------------------------------------------------------ sign in/out

    async def login_form(self, request: web.Request) -> web.Response:
        if await self._session(request) is not None:
            raise web.HTTPSeeOther("/dashboard")
        return self._login_page(request, error=None, username="")

    def _login_page(
        self, request: web.Request, *, error: str | None, username: str, status: int = 200
    ) -> web.Response:
        csrf = secrets.token_urlsafe(24)
        response = self.render(
            request, "login.html", status=status, csrf=csrf, error=error, username=username
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            csrf,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            max_age=3600,
            path="/login",
        )
        return response

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        self._check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE, "") or "-", form)
        client = request.remote or "unknown"
        wait = self.limiter.retry_after(client)
        username = str(form.get("username", ""))[:64]
        if wait:
            return self._login_page(
                request,
                error=f"Too many failed sign-ins. Try again in {wait} s.",
                username=username,
                status=429,
            )
        user = await self.store.get_user_by_name(username) if username.strip() else None
        password = str(form.get("password", ""))[:1024]
        if not await verify_password_async(password, user.password_hash if user else None):
            self.limiter.failed(client)
            return self._login_page(
                request, error="Wrong user name or password.", username=username, status=401
            )
        assert user is not None
        session = new_session()
        await self.store.create_session(
            SessionRecord(
                token_hash=session.token_hash,
                user_id=user.user_id,
                csrf_token=session.csrf_token,
                created_at=session.created_at,
                expires_at=session.expires_at,
            )
        )
        response = web.HTTPSeeOther("/dashboard")
        response.set_cookie(
            SESSION_COOKIE,
            session.token,
            httponly=True,
            samesite="Lax",
            secure=request.secure,
            max_age=int((session.expires_at - session.created_at).total_seconds()),
            path="/",
        )
        response.del_cookie(LOGIN_CSRF_COOKIE, path="/login")
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        record, _ = await self._require(request)
        self._check_csrf(record.csrf_token, await request.post())
        await self.store.delete_session(record.token_hash)
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response

    # ------------------------------------------------------------------ events

    async def _visible_events(self, user: User) -> list[Event]:
        return await self.store.list_events(None if user.is_admin else user.user_id)

    async def owned_event(self, request: web.Request) -> tuple[Event, SessionRecord, User]:
        """The event in the URL if the signed-in user may see it (else a redirect or 404)."""
        record, user = await self._require(request)
        return await self._own_event(request, user), record, user

    async def _own_event(self, request: web.Request, user: User) -> Event:
        event = await self.store.get_event(request.match_info["event_id"])
        if event is None or not (user.is_admin or event.owner_id == user.user_id):
            raise web.HTTPNotFound(text="No such event of yours.")
        return event

    async def overview(self, request: web.Request) -> web.Response:
        record, user = await self._require(request)
        now = datetime.now(UTC)
        groups: dict[str, list[dict[str, Any]]] = {"live": [], "upcoming": [], "past": []}
        for event in await self._visible_events(user):
            groups[event.status(now)].append(self._event_view(request, event))
        groups["upcoming"].sort(key=lambda e: e["starts_at_utc"] or "")
        groups["past"].reverse()
        return self.render(
            request, "dashboard.html", user=user, csrf=record.csrf_token, groups=groups
        )

    def event_view(self, request: web.Request, event: Event) -> dict[str, Any]:
        """What templates show of an event (its ID, times, the three links)."""
        return self._event_view(request, event)

    def _event_view(self, request: web.Request, event: Event) -> dict[str, Any]:
        base = (self.public_url or str(request.url.origin())).rstrip("/")
        attendee = base + attendee_path(event)
        presenter = base + presenter_path(event)
        host = base + host_path(event)
        local = _local_start(event)
        return {
            "event_id": format_event_id(event.event_id),
            "title": event.title,
            "starts_at_utc": event.starts_at.isoformat() if event.starts_at else None,
            "starts_local": local.strftime("%a %d %b %Y, %H:%M") if local else "No start time",
            "timezone": event.timezone,
            "duration_minutes": event.duration_minutes,
            "access_type": event.access_type,
            "attendee_url": attendee,
            "presenter_url": presenter,
            "host_url": host,
        }

    async def new_event_form(self, request: web.Request) -> web.Response:
        record, user = await self._require(request)
        values = {**_form_values(None), **await self._extra_values(None)}
        return self._form(request, record, user, event=None, values=values, error=None)

    async def _extra_values(self, event: Event | None) -> dict[str, Any]:
        return await self.hooks.form_values(event) if self.hooks else {}

    async def _save(self, user: User, values: dict[str, str], event: Event | None) -> Event:
        settings = _settings_from_form(values)
        after = None
        if self.hooks is not None:
            after = await self.hooks.before_save(user, settings, values, event)
        if event is None:
            saved = await self.store.create_event_from(settings, owner_id=user.user_id)
        else:
            saved = await self.store.update_event(event.event_id, settings)
        if after is not None:
            await after(saved)
        return saved

    def _form(
        self,
        request: web.Request,
        record: SessionRecord,
        user: User,
        *,
        event: Event | None,
        values: dict[str, Any],
        error: str | None,
        status: int = 200,
    ) -> web.Response:
        return self.render(
            request,
            "event_form.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            event=self._event_view(request, event) if event else None,
            values=values,
            error=error,
            access_types=ACCESS_TYPES,
        )

    async def create_event(self, request: web.Request) -> web.Response:
        record, user = await self._require(request)
        form = await request.post()
        self._check_csrf(record.csrf_token, form)
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        try:
            event = await self._save(user, values, None)
        except ValueError as exc:
            values = {**await self._extra_values(None), **values}
            return self._form(
                request, record, user, event=None, values=values, error=str(exc), status=400
            )
        raise web.HTTPSeeOther(f"/dashboard/events/{format_event_id(event.event_id)}?saved=1")

    async def edit_event_form(self, request: web.Request) -> web.Response:
        record, user = await self._require(request)
        event = await self._own_event(request, user)
        values = {**_form_values(event), **await self._extra_values(event)}
        return self._form(request, record, user, event=event, values=values, error=None)

    async def update_event(self, request: web.Request) -> web.Response:
        record, user = await self._require(request)
        event = await self._own_event(request, user)
        form = await request.post()
        self._check_csrf(record.csrf_token, form)
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        try:
            updated = await self._save(user, values, event)
        except ValueError as exc:
            values = {**await self._extra_values(event), **values}
            return self._form(
                request, record, user, event=event, values=values, error=str(exc), status=400
            )
        raise web.HTTPSeeOther(f"/dashboard/events/{format_event_id(updated.event_id)}?saved=1")


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
    }


def _int(values: dict[str, str], name: str, label: str) -> int:
    try:
        return int(values.get(name, "").strip())
    except ValueError:
        raise ValueError(f"{label} must be a whole number") from None


def _settings_from_form(values: dict[str, str]) -> EventSettings:
    """Form fields to settings; the start is local time in the chosen IANA zone."""
    tz_name = values.get("timezone", "UTC").strip() or "UTC"
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz_name!r} (use an IANA name)") from None
    start_text = values.get("start", "").strip()
    starts_at = None
    if start_text:
        try:
            naive = datetime.fromisoformat(start_text)
        except ValueError:
            raise ValueError("the start must be a date and time") from None
        starts_at = naive.replace(tzinfo=tz).astimezone(UTC)
    return EventSettings(
        title=values.get("title", ""),
        starts_at=starts_at,
        agenda=values.get("agenda", ""),
        lobby_message=values.get("lobby_message", ""),
        join_window_minutes=_int(values, "join_window_minutes", "the join window"),
        thank_you_url=values.get("thank_you_url") or None,
        timezone=tz_name,
        duration_minutes=_int(values, "duration_minutes", "the duration"),
        access_type=values.get("access_type", "open"),
        camera_limit=_int(values, "camera_limit", "the camera limit"),
    )
