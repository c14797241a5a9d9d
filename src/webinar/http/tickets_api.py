"""The JSON admin API for events, registrations and invitees (docs/api.md).

Authenticated by a bearer token (``webinar user token USERNAME`` makes one); an organiser's
token reaches only their own events, an admin's every event. The same rules as the
dashboard apply: booking limits, price caps, access settings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from webinar.formats import iso_time
from webinar.http.inputs import path_id, read_json
from webinar.http.site import Pages, route
from webinar.http.tickets import TicketingWeb
from webinar.i18n import N_, _, format_amount, gettext
from webinar.ids import format_event_id
from webinar.links import attendee_path, host_path, presenter_path
from webinar.storage.store import Event, EventSettings, Store, User
from webinar.ticketing import records
from webinar.ticketing.desk import DeskError
from webinar.ticketing.mail import MailError
from webinar.ticketing.records import Invitee, Registration, RegistrationStatus
from webinar.ticketing.rules import BookingRefused

MAX_BODY_BYTES = 64 * 1024
_SETTING_KEYS = (
    "title",
    "agenda",
    "lobby_message",
    "join_window_minutes",
    "thank_you_url",
    "timezone",
    "duration_minutes",
    "access_type",
    "camera_limit",
)
_ACCESS_KEYS = (
    "attendee_password",
    "presenter_password",
    "price",
    "currency",
    "capacity",
    "second_device",
    "payment_provider",
    "form_fields",
)


def _error(status: int, code: str, message: str, **extra: Any) -> web.HTTPException:
    body = json.dumps({"error": {"code": code, "message": message, **extra}})
    exc = web.HTTPException(text=body, content_type="application/json")
    exc.set_status(status)
    return exc


def _no_such(message: str) -> Callable[[], web.HTTPException]:
    """A 404 saying ``message`` (``N_()``-marked), in the language in effect."""
    return lambda: _error(404, "not-found", gettext(message))


@contextlib.contextmanager
def _desk_errors(invalid: int = 400) -> Iterator[None]:
    """The ticket desk's refusals as API errors: a state conflict 409, a bad value
    ``invalid``, a mail server that would not take the message 502."""
    try:
        yield
    except DeskError as exc:
        raise _error(409, "conflict", str(exc)) from None
    except ValueError as exc:
        raise _error(invalid, "invalid", str(exc)) from None
    except MailError as exc:
        raise _error(502, "mail-failed", str(exc)) from None


@dataclass
class AdminApi(Pages):
    web_part: TicketingWeb

    @property
    def store(self) -> Store:
        return self.web_part.site.store

    # ------------------------------------------------------------------ plumbing

    async def _user(self, request: web.Request) -> User:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        user = None
        if token and len(token) <= 200:
            user_id = await self.store.run(
                lambda core: records.user_id_for_api_token(core.connection, token)
            )
            user = await self.store.run(lambda core: core.get_user(user_id)) if user_id else None
        if user is None:
            exc = _error(401, "unauthorized", _("send Authorization: Bearer <API token>"))
            exc.headers["WWW-Authenticate"] = "Bearer"
            raise exc
        return user

    async def _event(self, request: web.Request, user: User) -> Event:
        event = await self.store.get_event(request.match_info["event_id"])
        if event is None or not (user.is_admin or event.owner_id == user.user_id):
            raise _error(404, "not-found", _("no such event of yours"))
        return event

    async def _own_event(self, request: web.Request) -> Event:
        """The event the path names, if the bearer's (any event for an admin)."""
        return await self._event(request, await self._user(request))

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        body = await read_json(request, _error, max_bytes=MAX_BODY_BYTES, empty={})
        if not isinstance(body, dict):
            raise _error(400, "bad-json", _("the body must be a JSON object"))
        unknown = set(body) - {
            *_SETTING_KEYS,
            *_ACCESS_KEYS,
            "starts_at",
            "language",
            "name",
            "email",
        }
        if unknown:
            raise _error(
                400,
                "unknown-field",
                _("unknown field %(field)s") % {"field": repr(sorted(unknown)[0])},
            )
        return body

    def _base(self, request: web.Request) -> str:
        return self.web_part.base(request)

    async def _event_json(self, request: web.Request, event: Event) -> dict[str, Any]:
        base = self._base(request)
        access = await self.web_part.desk.access(event.event_id)
        display = format_event_id(event.event_id)
        links = {
            "attendee": base + attendee_path(event),
            "presenter": base + presenter_path(event),
            "host": base + host_path(event),
        }
        if event.access_type == "paid":
            links["register"] = f"{base}/e/{display}/register"
        return {
            "event_id": display,
            "title": event.title,
            "starts_at": iso_time(event.starts_at, zulu=True),
            "timezone": event.timezone,
            "duration_minutes": event.duration_minutes,
            "join_window_minutes": event.join_window_minutes,
            "access_type": event.access_type,
            "camera_limit": event.camera_limit,
            "language": event.language,
            "agenda": event.agenda,
            "lobby_message": event.lobby_message,
            "thank_you_url": event.thank_you_url,
            "booking_ends_at": iso_time(self.web_part.ticketing.booking_end(event), zulu=True),
            "settings_changed_at": iso_time(
                await self.web_part.desk.settings_changed_at(event), zulu=True
            ),
            "cancelled_at": iso_time(access.cancelled_at, zulu=True),
            "access": {
                "has_attendee_password": access.attendee_password_hash is not None,
                "has_presenter_password": access.presenter_password_hash is not None,
                "price": (
                    format_amount(access.price_minor)
                    if access.price_minor is not None and access.currency
                    else None
                ),
                "currency": access.currency,
                "capacity": access.capacity,
                "second_device": access.second_device.value,
                "payment_provider": access.payment_provider.value,
                "form_fields": [
                    {"label": f.label, "required": f.required} for f in access.form_fields
                ],
            },
            "links": links,
        }

    # ------------------------------------------------------------------ events

    @route("GET", "/api/v1/events")
    async def list_events(self, request: web.Request) -> web.Response:
        user = await self._user(request)
        events = await self.store.list_events(None if user.is_admin else user.user_id)
        return web.json_response({"events": [await self._event_json(request, e) for e in events]})

    @route("GET", "/api/v1/events/{event_id}")
    async def get_event(self, request: web.Request) -> web.Response:
        event = await self._own_event(request)
        return web.json_response(await self._event_json(request, event))

    @route("POST", "/api/v1/events")
    async def create_event(self, request: web.Request) -> web.Response:
        user = await self._user(request)
        body = await self._body(request)
        saved = await self._save(user, body, None)
        return web.json_response(await self._event_json(request, saved), status=201)

    @route("PATCH", "/api/v1/events/{event_id}")
    async def update_event(self, request: web.Request) -> web.Response:
        user = await self._user(request)
        event = await self._event(request, user)
        body = await self._body(request)
        saved = await self._save(user, body, event)
        return web.json_response(await self._event_json(request, saved))

    async def _save(self, user: User, body: dict[str, Any], event: Event | None) -> Event:
        try:
            settings = _settings(body, event)
            form = {
                k: _text(body[k])
                for k in _ACCESS_KEYS
                if body.get(k) is not None and k != "form_fields"
            }
            if "form_fields" in body:
                form["registration_questions"] = _questions(body["form_fields"])
            after = await self.web_part.before_save(user, settings, form, event)
            if event is None:
                saved = await self.store.create_event_from(settings, owner_id=user.user_id)
            else:
                saved = await self.store.update_event(event.event_id, settings)
        except BookingRefused as refused:
            raise _error(422, "booking-rule", str(refused), rule=refused.rule.value) from None
        except (ValueError, TypeError) as exc:
            raise _error(422, "invalid", str(exc)) from None
        await after(saved)
        return saved

    @route("POST", "/api/v1/events/{event_id}/resend")
    async def resend_all(self, request: web.Request) -> web.Response:
        event = await self._own_event(request)
        with _desk_errors():
            count = await self.web_part.desk.resend_all(event, self._base(request))
        return web.json_response({"sent": count})

    @route("POST", "/api/v1/events/{event_id}/cancel")
    async def cancel_event(self, request: web.Request) -> web.Response:
        event = await self._own_event(request)
        with _desk_errors():
            told = await self.web_part.desk.cancel_event(event)
        return web.json_response({"cancelled": True, "told": told})

    # ------------------------------------------------------------------ registrations

    @route("GET", "/api/v1/events/{event_id}/registrations")
    async def list_registrations(self, request: web.Request) -> web.Response:
        event = await self._own_event(request)
        regs = await self.web_part.desk.registrations(event)
        return web.json_response({"registrations": [_registration(r) for r in regs]})

    @route("POST", "/api/v1/events/{event_id}/registrations/{registration_id}/{action}")
    async def registration_action(self, request: web.Request) -> web.Response:
        event = await self._own_event(request)
        desk, action = self.web_part.desk, request.match_info["action"]
        registration_id = path_id(
            request, "registration_id", _no_such(N_("no such registration on this event"))
        )
        with _desk_errors():
            if action == "confirm":
                reg = await desk.confirm(event, registration_id, self._base(request))
            elif action in ("reject", "cancel"):
                ended = {
                    "reject": RegistrationStatus.REJECTED,
                    "cancel": RegistrationStatus.CANCELLED,
                }
                status = ended[action]
                reg = await desk.end(event, registration_id, status)
            elif action == "resend":
                await desk.resend_code(event, registration_id, self._base(request))
                reg = await desk.registration(event, registration_id)
            else:
                raise _error(404, "not-found", _("no action %(action)s") % {"action": repr(action)})
        return web.json_response(_registration(reg))

    # ------------------------------------------------------------------ invitees

    @route("GET", "/api/v1/events/{event_id}/invitees")
    async def list_invitees(self, request: web.Request) -> web.Response:
        event = await self._own_event(request)
        found = await self.web_part.desk.invitees(event)
        return web.json_response({"invitees": [_invitee(i) for i in found]})

    @route("POST", "/api/v1/events/{event_id}/invitees")
    async def add_invitee(self, request: web.Request) -> web.Response:
        event = await self._own_event(request)
        body = await self._body(request)
        with _desk_errors(422):
            invitee = await self.web_part.desk.invite(
                event,
                _text(body.get("name", "")),
                _text(body.get("email", "")),
                self._base(request),
            )
        return web.json_response(_invitee(invitee), status=201)

    @route("POST", "/api/v1/events/{event_id}/invitees/{invitee_id}/{action}")
    async def invitee_action(self, request: web.Request) -> web.Response:
        event = await self._own_event(request)
        desk, action = self.web_part.desk, request.match_info["action"]
        invitee_id = path_id(request, "invitee_id", _no_such(N_("no such invitee on this event")))
        with _desk_errors():
            if action == "revoke":
                invitee = await desk.revoke(event, invitee_id)
            elif action == "resend":
                await desk.resend_invitation(event, invitee_id, self._base(request))
                invitee = next(i for i in await desk.invitees(event) if i.invitee_id == invitee_id)
            else:
                raise _error(404, "not-found", _("no action %(action)s") % {"action": repr(action)})
        return web.json_response(_invitee(invitee))


def _questions(value: Any) -> str:
    """``[{"label": ..., "required": ...}]`` in the dashboard's one-per-line form."""
    if not isinstance(value, list):
        raise ValueError(_("form_fields must be a list of {label, required}"))
    lines = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("label"), str):
            raise ValueError(_("each form field needs a label"))
        label = " ".join(item["label"].split()).rstrip("*")
        lines.append(label + (" *" if item.get("required") is True else ""))
    return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(
            _("expected a string or a number, got %(value)s") % {"value": json.dumps(value)[:40]}
        )
    return str(value)


_INT_KEYS = ("join_window_minutes", "duration_minutes", "camera_limit")


def _settings(body: dict[str, Any], event: Event | None) -> EventSettings:
    """Settings from JSON: a full set for a new event, a patch over an existing one."""
    base = EventSettings(title="")
    if event is not None:
        base = EventSettings(
            title=event.title,
            starts_at=event.starts_at,
            language=event.language,
            **{k: getattr(event, k) for k in _SETTING_KEYS if k != "title"},
        )
    changes: dict[str, Any] = {}
    for key in _SETTING_KEYS:
        if key not in body:
            continue
        value = body[key]
        if key == "thank_you_url" and value is None:
            changes[key] = None
            continue
        expected = int if key in _INT_KEYS else str
        if not isinstance(value, expected) or isinstance(value, bool):
            raise ValueError(
                (
                    _("%(field)s must be an integer")
                    if expected is int
                    else _("%(field)s must be a string")
                )
                % {"field": key}
            )
        changes[key] = value
    if "starts_at" in body:
        changes["starts_at"] = _start(body["starts_at"], changes.get("timezone", base.timezone))
    if "language" in body:  # null: no language of its own (each person's own is used)
        language = body["language"]
        if language is not None and not isinstance(language, str):
            raise ValueError(_("%(field)s must be a string") % {"field": "language"})
        changes["language"] = language
    return dataclasses.replace(base, **changes)


def _start(value: Any, timezone: str) -> datetime | None:
    """ISO 8601 with an offset (``2026-05-01T09:00:00Z``), or local time in ``timezone``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(_("starts_at must be an ISO 8601 date-time string"))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(_("starts_at must be an ISO 8601 date-time string")) from None
    if parsed.tzinfo is None:
        try:
            parsed = parsed.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                _("unknown time zone %(zone)s (use an IANA name)") % {"zone": repr(timezone)}
            ) from None
    return parsed.astimezone(UTC)


def _registration(r: Registration) -> dict[str, Any]:
    return {
        "registration_id": r.registration_id,
        "first_name": r.first_name,
        "last_name": r.last_name,
        "email": r.email,
        "seats": r.seats,
        "status": r.status.value,
        "amount": format_amount(r.amount_minor),
        "currency": r.currency,
        "provider": r.provider.value,
        "code": r.display_code,
        "created_at": iso_time(r.created_at, zulu=True),
        "confirmed_at": iso_time(r.confirmed_at, zulu=True),
        "checked_in_at": iso_time(r.checked_in_at, zulu=True),
        "answers": r.answers,
    }


def _invitee(i: Invitee) -> dict[str, Any]:
    return {
        "invitee_id": i.invitee_id,
        "name": i.name,
        "email": i.email,
        "status": "revoked" if i.revoked else "active",
        "sent_at": iso_time(i.sent_at, zulu=True),
        "revoked_at": iso_time(i.revoked_at, zulu=True),
    }
