"""Events, registrations and invitees in the API (``/api/v1/events``; docs/api.md).

The same rules as the dashboard apply: booking limits, price caps, access settings. An
organiser's token reaches their own events, an admin account's (and the configured admin
token) every event; someone else's event is 404, as if it did not exist.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from webinar.content.external import ExternalLinkError, check_external
from webinar.formats import iso_time
from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator, Caller
from webinar.http.api.errors import api_error, error_factory
from webinar.http.api.paging import paginate
from webinar.http.api.table import PAGE_QUERY, ApiPages, Call, Query, operation
from webinar.http.inputs import path_id, read_body
from webinar.http.tickets import TicketingWeb, import_json
from webinar.i18n import LANGUAGES, N_, _, format_amount, gettext
from webinar.ids import format_event_id
from webinar.links import attendee_path, host_path, presenter_path
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Event, EventSettings, Store, User
from webinar.ticketing import imports, mailing, records
from webinar.ticketing.desk import DeskError
from webinar.ticketing.mail import MailError
from webinar.ticketing.records import Invitee, Registration, RegistrationStatus
from webinar.ticketing.rules import BookingRefused

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
    "external_url",
    "hls_mode",
    "hls_overflow_after",
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
    "reminder_minutes",
)
#: The registration settings (webinar.http.tickets._registration_settings): two switches,
#: and texts where null clears.
_FLAG_KEYS = ("registration_required", "waiting_list")
_CLEARABLE_KEYS = ("registration_redirect_url", "privacy_text", "privacy_url")
#: The account the configured admin token acts as (it owns nothing it creates).
TOKEN_ADMIN = User(user_id=0, username="admin.token", password_hash="", role="admin")
TAG = "Events"
_BOM = Query(
    "bom",
    "1: start the file with a UTF-8 byte-order mark (for spreadsheet programs).",
    {"type": "string", "enum": ["0", "1"]},
)
_EVENT_ERRORS = (404,)


def no_such_event() -> web.HTTPException:
    return api_error(404, "not-found", _("no such event of yours"))


@contextlib.contextmanager
def _desk_errors(invalid: int = 422) -> Iterator[None]:
    """The ticket desk's refusals as API errors: a state conflict 409, a bad value
    ``invalid``, a mail server that would not take the message 502."""
    try:
        yield
    except DeskError as exc:
        raise api_error(409, "conflict", str(exc)) from None
    except ValueError as exc:
        raise api_error(invalid, "invalid", str(exc)) from None
    except MailError as exc:
        raise api_error(502, "mail-failed", str(exc)) from None


async def visible_event(store: Store, request: web.Request, caller: Caller) -> Event:
    """The event the path names, if the caller may see it; else 404."""
    event = await store.get_event(request.match_info["event_id"])
    if event is None or not caller.may_see(event):
        raise no_such_event()
    return event


def _given(body: msgspec.Struct) -> dict[str, Any]:
    """The fields a body set (an unset field is not in it; null is)."""
    return {
        f: msgspec.to_builtins(getattr(body, f))
        for f in body.__struct_fields__
        if getattr(body, f) is not msgspec.UNSET
    }


@dataclasses.dataclass
class EventsApi(ApiPages):
    web_part: TicketingWeb
    auth: Authenticator
    #: The administrator's extra external-player hosts (``[content] external_providers``).
    external_providers: tuple[str, ...] = ()

    @property
    def store(self) -> Store:
        return self.web_part.site.store

    async def _event(self, request: web.Request, call: Call) -> Event:
        return await visible_event(self.store, request, call.who())

    def _base(self, request: web.Request) -> str:
        return self.web_part.base(request)

    async def event_json(self, request: web.Request, event: Event) -> s.Event:
        base = self._base(request)
        access = await self.web_part.desk.access(event.event_id)
        mail = await self.web_part.desk.mail_settings(event)
        display = format_event_id(event.event_id)
        links = s.EventLinks(
            attendee=base + attendee_path(event),
            presenter=base + presenter_path(event),
            host=base + host_path(event),
        )
        if records.takes_registrations(event.access_type, access):
            links.register = f"{base}/e/{display}/register"
        return s.Event(
            event_id=display,
            title=event.title,
            starts_at=iso_time(event.starts_at, zulu=True),
            timezone=event.timezone,
            duration_minutes=event.duration_minutes,
            join_window_minutes=event.join_window_minutes,
            access_type=event.access_type,  # type: ignore[arg-type]
            camera_limit=event.camera_limit,
            language=event.language,
            agenda=event.agenda,
            lobby_message=event.lobby_message,
            thank_you_url=event.thank_you_url,
            external_url=event.external_url,
            hls_mode=event.hls_mode,  # type: ignore[arg-type]
            hls_overflow_after=event.hls_overflow_after,
            booking_ends_at=iso_time(self.web_part.ticketing.booking_end(event), zulu=True),
            settings_changed_at=iso_time(
                await self.web_part.desk.settings_changed_at(event), zulu=True
            ),
            cancelled_at=iso_time(access.cancelled_at, zulu=True),
            access=s.EventAccess(
                has_attendee_password=access.attendee_password_hash is not None,
                has_presenter_password=access.presenter_password_hash is not None,
                price=(
                    format_amount(access.price_minor)
                    if access.price_minor is not None and access.currency
                    else None
                ),
                currency=access.currency,
                capacity=access.capacity,
                second_device=access.second_device.value,
                payment_provider=access.payment_provider.value,
                form_fields=[s.FormField(f.label, f.required) for f in access.form_fields],
                registration_required=access.registration_required,
                waiting_list=access.waiting_list,
                registration_redirect_url=access.registration_redirect_url,
                privacy_text=access.privacy_text,
                privacy_url=access.privacy_url,
            ),
            links=links,
            reminder_minutes=mail.reminder_minutes,
            calendar_sequence=mail.calendar_sequence,
        )

    # ------------------------------------------------------------------ events

    @operation(
        "GET",
        "/api/v1/events",
        scope=Scope.READ,
        summary="List events",
        description="The caller's events (an admin's: every event), oldest first.",
        tag=TAG,
        response=s.EventPage,
        query=PAGE_QUERY,
    )
    async def list_events(self, request: web.Request, call: Call) -> s.EventPage:
        events = await self.store.list_events(call.who().owner_id)
        page = paginate(request, events, lambda e: (e.created_at.isoformat(), e.event_id))
        items = [await self.event_json(request, e) for e in page.items]
        return s.EventPage(items=items, next_cursor=page.next_cursor, events=items)

    @operation(
        "GET",
        "/api/v1/events/{event_id}",
        scope=Scope.READ,
        summary="Get an event",
        tag=TAG,
        response=s.Event,
        errors=_EVENT_ERRORS,
    )
    async def get_event(self, request: web.Request, call: Call) -> s.Event:
        return await self.event_json(request, await self._event(request, call))

    @operation(
        "POST",
        "/api/v1/events",
        scope=Scope.WRITE,
        summary="Schedule an event",
        description="Needs title; booking rules apply (422 booking-rule names the rule).",
        tag=TAG,
        status=201,
        response=s.Event,
        body=s.EventFields,
        errors=(422, 502),
    )
    async def create_event(self, request: web.Request, call: Call) -> s.Event:
        body = _given(call.body_as(s.EventFields))
        if "title" not in body:
            raise api_error(422, "invalid", _("an event needs a title"), at="$.title")
        saved = await self._save(call.who(), body, None)
        return await self.event_json(request, saved)

    @operation(
        "PATCH",
        "/api/v1/events/{event_id}",
        scope=Scope.WRITE,
        summary="Change an event",
        description="Only the fields sent change.",
        tag=TAG,
        response=s.Event,
        body=s.EventFields,
        errors=(404, 422, 502),
    )
    async def update_event(self, request: web.Request, call: Call) -> s.Event:
        event = await self._event(request, call)
        saved = await self._save(call.who(), _given(call.body_as(s.EventFields)), event)
        return await self.event_json(request, saved)

    async def _save(self, caller: Caller, body: dict[str, Any], event: Event | None) -> Event:
        user = caller.user or TOKEN_ADMIN
        try:
            settings = _settings(body, event)
        except (ValueError, TypeError) as exc:
            raise api_error(422, "invalid", str(exc)) from None
        if "external_url" in body:  # checked when set (a host taken off the list since
            try:  # makes the link not shown, not every other change refused)
                external = check_external(settings.external_url, self.external_providers)
            except ExternalLinkError as exc:
                raise api_error(422, "invalid", str(exc), at="$.external_url") from None
            settings = dataclasses.replace(settings, external_url=external)
        try:
            form = {
                k: _text(body[k])
                for k in _ACCESS_KEYS
                if body.get(k) is not None and k != "form_fields"
            }
            if "form_fields" in body:
                form["registration_questions"] = _questions(body["form_fields"])
            form.update(_registration_fields(body))
            after = await self.web_part.before_save(user, settings, form, event)
            if event is None:
                saved = await self.store.create_event_from(
                    settings, owner_id=caller.user.user_id if caller.user else None
                )
            else:
                saved = await self.store.update_event(event.event_id, settings)
        except BookingRefused as refused:
            raise api_error(422, "booking-rule", str(refused), rule=refused.rule.value) from None
        except (ValueError, TypeError) as exc:
            raise api_error(422, "invalid", str(exc)) from None
        with _desk_errors():
            await after(saved)
        return saved

    @operation(
        "POST",
        "/api/v1/events/{event_id}/resend",
        scope=Scope.WRITE,
        summary="E-mail everyone the event's new details",
        description="Every active invitee and confirmed registrant; clears settings_changed_at.",
        tag=TAG,
        response=s.Sent,
        errors=(404, 409, 502),
    )
    async def resend_all(self, request: web.Request, call: Call) -> s.Sent:
        event = await self._event(request, call)
        with _desk_errors(400):
            count = await self.web_part.desk.resend_all(event, self._base(request))
        return s.Sent(sent=count)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/cancel",
        scope=Scope.WRITE,
        summary="Cancel an event",
        description="Attendees are refused and leave; registrations are cancelled and "
        "invitations revoked, and each person is told by e-mail. 409 if cancelled already.",
        tag=TAG,
        response=s.Cancelled,
        errors=(404, 409, 502),
    )
    async def cancel_event(self, request: web.Request, call: Call) -> s.Cancelled:
        event = await self._event(request, call)
        with _desk_errors(400):
            told = await self.web_part.desk.cancel_event(event, self._base(request))
        return s.Cancelled(cancelled=True, told=told)

    # ------------------------------------------------------------------ registrations

    @operation(
        "GET",
        "/api/v1/events/{event_id}/registrations",
        scope=Scope.READ,
        summary="List an event's registrations",
        description="Oldest first.",
        tag=TAG,
        response=s.RegistrationPage,
        query=PAGE_QUERY,
        errors=_EVENT_ERRORS,
    )
    async def list_registrations(self, request: web.Request, call: Call) -> s.RegistrationPage:
        event = await self._event(request, call)
        regs = await self.web_part.desk.registrations(event)
        page = paginate(request, regs, lambda r: (r.registration_id,))
        items = [_registration(r) for r in page.items]
        return s.RegistrationPage(items=items, next_cursor=page.next_cursor, registrations=items)

    async def _registration_action(
        self, request: web.Request, call: Call, action: str
    ) -> s.Registration:
        event = await self._event(request, call)
        desk = self.web_part.desk
        registration_id = path_id(
            request,
            "registration_id",
            lambda: api_error(404, "not-found", gettext(N_("no such registration on this event"))),
        )
        with _desk_errors(400):
            if action == "confirm":
                reg = await desk.confirm(event, registration_id, self._base(request))
            elif action == "resend":
                await desk.resend_code(event, registration_id, self._base(request))
                reg = await desk.registration(event, registration_id)
            else:
                ended = {
                    "reject": RegistrationStatus.REJECTED,
                    "cancel": RegistrationStatus.CANCELLED,
                }
                reg = await desk.end(
                    event, registration_id, ended[action], base=self._base(request)
                )
        return _registration(reg)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/registrations/{registration_id}/confirm",
        scope=Scope.WRITE,
        summary="Confirm a pending registration",
        description="A reservation code is issued and e-mailed.",
        tag=TAG,
        response=s.Registration,
        errors=(404, 409, 502),
    )
    async def confirm_registration(self, request: web.Request, call: Call) -> s.Registration:
        return await self._registration_action(request, call, "confirm")

    @operation(
        "POST",
        "/api/v1/events/{event_id}/registrations/{registration_id}/reject",
        scope=Scope.WRITE,
        summary="Reject a pending registration",
        description="The person is told by e-mail.",
        tag=TAG,
        response=s.Registration,
        errors=(404, 409, 502),
    )
    async def reject_registration(self, request: web.Request, call: Call) -> s.Registration:
        return await self._registration_action(request, call, "reject")

    @operation(
        "POST",
        "/api/v1/events/{event_id}/registrations/{registration_id}/cancel",
        scope=Scope.WRITE,
        summary="Cancel a registration",
        description="The code stops working at once; the person is told. No automatic refund.",
        tag=TAG,
        response=s.Registration,
        errors=(404, 409, 502),
    )
    async def cancel_registration(self, request: web.Request, call: Call) -> s.Registration:
        return await self._registration_action(request, call, "cancel")

    @operation(
        "POST",
        "/api/v1/events/{event_id}/registrations/{registration_id}/resend",
        scope=Scope.WRITE,
        summary="E-mail a registration's code again",
        tag=TAG,
        response=s.Registration,
        errors=(404, 409, 502),
    )
    async def resend_registration(self, request: web.Request, call: Call) -> s.Registration:
        return await self._registration_action(request, call, "resend")

    @operation(
        "GET",
        "/api/v1/events/{event_id}/registrations.csv",
        scope=Scope.READ,
        summary="Export an event's registrations as CSV",
        description="Every registration whatever the event's access type (free, paid, the "
        "waiting list), oldest first: the columns of docs/api.md, then one per registration "
        "question. UTF-8, a header row, CRLF line ends; cells that would start a formula "
        "begin with '. No codes or links.",
        tag=TAG,
        media="text/csv",
        query=(_BOM,),
        errors=_EVENT_ERRORS,
    )
    async def registrations_csv(self, request: web.Request, call: Call) -> web.Response:
        event = await self._event(request, call)
        body = await self.web_part.registrations_export(
            event, bom=request.query.get("bom") in ("1", "true", "yes")
        )
        return web.Response(
            body=body,
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="event-{event.event_id}-registrations.csv"'
                ),
                "Cache-Control": "no-store",
            },
        )

    # ------------------------------------------------------------------ invitees

    @operation(
        "GET",
        "/api/v1/events/{event_id}/invitees",
        scope=Scope.READ,
        summary="List an event's invitees",
        description="Oldest first. The invitation tokens are never returned.",
        tag=TAG,
        response=s.InviteePage,
        query=PAGE_QUERY,
        errors=_EVENT_ERRORS,
    )
    async def list_invitees(self, request: web.Request, call: Call) -> s.InviteePage:
        event = await self._event(request, call)
        found = await self.web_part.desk.invitees(event)
        page = paginate(request, found, lambda i: (i.invitee_id,))
        deliveries = await self.web_part.desk.invitation_states(event)
        items = [_invitee(i, deliveries.get(i.invitee_id)) for i in page.items]
        return s.InviteePage(items=items, next_cursor=page.next_cursor, invitees=items)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/invitees",
        scope=Scope.WRITE,
        summary="Invite someone",
        description="Any access type: a personal link that admits them by name (presenters: "
        "POST …/presenters). The invitation is e-mailed at once (502: saved, the outbox tries "
        "again); an e-mail address once per event.",
        tag=TAG,
        status=201,
        response=s.Invitee,
        body=s.InviteeCreate,
        errors=(404, 409, 422, 502),
    )
    async def add_invitee(self, request: web.Request, call: Call) -> s.Invitee:
        event = await self._event(request, call)
        body = call.body_as(s.InviteeCreate)
        if body.language is not None and body.language not in LANGUAGES:
            raise api_error(422, "invalid", _("unknown language"), at="$.language")
        with _desk_errors(422):
            invitee = await self.web_part.desk.invite(
                event,
                body.name,
                body.email,
                self._base(request),
                language=body.language,
            )
        return _invitee(invitee)

    # ------------------------------------------------------------------ CSV imports

    def _import_path(self, event: Event, import_id: str) -> str:
        return f"/api/v1/events/{format_event_id(event.event_id)}/invitees/import/{import_id}"

    def _preview(self, event: Event, found: mailing.InviteImport) -> s.ImportPreview:
        send = self._import_path(event, found.import_id) + "/send"
        return msgspec.convert(import_json(event, found, send=send), s.ImportPreview)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/invitees/import",
        scope=Scope.WRITE,
        summary="Check a CSV file of invitees",
        description="The body is the file as it is (text/csv; UTF-8, UTF-16 with a BOM, "
        "Windows-1251 or -1250; commas, semicolons or tabs; an optional header row). Nothing "
        "is sent: the answer lists every row it would invite and every line it would not, "
        "and why; send it with POST …/send.",
        tag=TAG,
        status=201,
        response=s.ImportPreview,
        query=(Query("file_name", "The file's name, to show with the preview"),),
        errors=(404, 409, 413, 422),
        max_body_bytes=imports.MAX_FILE_BYTES,
        raw_body="text/csv",
    )
    async def import_invitees(self, request: web.Request, call: Call) -> s.ImportPreview:
        event = await self._event(request, call)
        data = await read_body(request, error_factory, max_bytes=imports.MAX_FILE_BYTES)
        with _desk_errors(422):
            found = await self.web_part.desk.preview_import(
                event,
                data,
                file_name=request.query.get("file_name", "")[:200],
            )
        return self._preview(event, found)

    async def _import(self, request: web.Request, call: Call) -> tuple[Event, str]:
        event = await self._event(request, call)
        import_id = request.match_info["import_id"]
        if not (import_id.startswith("imp_") and len(import_id) == 20):
            raise api_error(404, "not-found", _("no such import"))
        return event, import_id

    @operation(
        "GET",
        "/api/v1/events/{event_id}/invitees/import/{import_id}",
        scope=Scope.READ,
        summary="A CSV import's preview",
        description="Kept a day unless sent.",
        tag=TAG,
        response=s.ImportPreview,
        errors=(404,),
    )
    async def get_import(self, request: web.Request, call: Call) -> s.ImportPreview:
        event, import_id = await self._import(request, call)
        try:
            found = await self.web_part.desk.invite_import(event, import_id)
        except DeskError as exc:
            raise api_error(404, "not-found", str(exc)) from None
        return self._preview(event, found)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/invitees/import/{import_id}/send",
        scope=Scope.WRITE,
        summary="Send a CSV import's invitations",
        description="Invites its rows and queues their invitations in the outbox, once: a "
        "second send is 409. A restart of the server in the middle sends nobody twice.",
        tag=TAG,
        response=s.ImportSent,
        errors=(404, 409),
    )
    async def send_import(self, request: web.Request, call: Call) -> s.ImportSent:
        event, import_id = await self._import(request, call)
        with _desk_errors(422):
            await self.web_part.desk.invite_import(event, import_id)  # 409 when gone
            result = await self.web_part.desk.send_import(event, import_id, self._base(request))
        return s.ImportSent(
            invited=result.invited, already_invited=[row.email for row in result.already]
        )

    @operation(
        "GET",
        "/api/v1/events/{event_id}/outbox",
        scope=Scope.READ,
        summary="The event's queued e-mails",
        description="Invitations, updates and cancellations: how many wait and how many "
        "failed after every retry.",
        tag=TAG,
        response=s.Outbox,
        errors=(404,),
    )
    async def outbox(self, request: web.Request, call: Call) -> s.Outbox:
        event = await self._event(request, call)
        progress = await self.web_part.desk.mail_progress(event)
        return s.Outbox(
            waiting=progress.waiting(), failed=progress.failed(), outbox=progress.as_json()
        )

    async def _invitee_action(self, request: web.Request, call: Call, action: str) -> s.Invitee:
        event = await self._event(request, call)
        desk = self.web_part.desk
        invitee_id = path_id(
            request,
            "invitee_id",
            lambda: api_error(404, "not-found", gettext(N_("no such invitee on this event"))),
        )
        with _desk_errors(400):
            if action == "revoke":
                invitee = await desk.revoke(event, invitee_id)
            else:
                await desk.resend_invitation(event, invitee_id, self._base(request))
                invitee = next(i for i in await desk.invitees(event) if i.invitee_id == invitee_id)
        return _invitee(invitee)

    @operation(
        "POST",
        "/api/v1/events/{event_id}/invitees/{invitee_id}/resend",
        scope=Scope.WRITE,
        summary="E-mail an invitation again",
        description="The same link.",
        tag=TAG,
        response=s.Invitee,
        errors=(404, 409, 502),
    )
    async def resend_invitee(self, request: web.Request, call: Call) -> s.Invitee:
        return await self._invitee_action(request, call, "resend")

    @operation(
        "POST",
        "/api/v1/events/{event_id}/invitees/{invitee_id}/revoke",
        scope=Scope.WRITE,
        summary="Revoke an invitation",
        description="The token stops working at once; whoever is in with it leaves.",
        tag=TAG,
        response=s.Invitee,
        errors=(404, 409),
    )
    async def revoke_invitee(self, request: web.Request, call: Call) -> s.Invitee:
        return await self._invitee_action(request, call, "revoke")


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


def _registration_fields(body: dict[str, Any]) -> dict[str, str]:
    """The registration settings of a JSON body in the event form's terms (a switch is
    ``on``/``off``; null clears a text)."""
    form: dict[str, str] = {}
    for key in _FLAG_KEYS:
        if key in body:
            if not isinstance(body[key], bool):
                raise ValueError(_("%(field)s must be true or false") % {"field": key})
            form[key] = "on" if body[key] else "off"
    for key in _CLEARABLE_KEYS:
        if key in body:
            value = body[key]
            if value is not None and not isinstance(value, str):
                raise ValueError(_("%(field)s must be a string") % {"field": key})
            form[key] = value or ""
    return form


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(
            _("expected a string or a number, got %(value)s") % {"value": json.dumps(value)[:40]}
        )
    return str(value)


_INT_KEYS = ("join_window_minutes", "duration_minutes", "camera_limit", "hls_overflow_after")


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
        if key in ("thank_you_url", "external_url") and value is None:
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


def _registration(r: Registration) -> s.Registration:
    return s.Registration(
        registration_id=r.registration_id,
        first_name=r.first_name,
        last_name=r.last_name,
        email=r.email,
        seats=r.seats,
        status=r.status.value,
        amount=format_amount(r.amount_minor),
        currency=r.currency,
        provider=r.provider.value,
        code=r.display_code,
        created_at=iso_time(r.created_at, zulu=True),
        confirmed_at=iso_time(r.confirmed_at, zulu=True),
        checked_in_at=iso_time(r.checked_in_at, zulu=True),
        answers=dict(r.answers),
        consent=r.consent,
    )


def _invitee(i: Invitee, delivery: mailing.OutboxItem | None = None) -> s.Invitee:
    state = delivery.state.value if delivery else ("sent" if i.sent_at else None)
    return s.Invitee(
        invitee_id=i.invitee_id,
        name=i.name,
        email=i.email,
        status="revoked" if i.revoked else "active",
        sent_at=iso_time(i.sent_at, zulu=True),
        revoked_at=iso_time(i.revoked_at, zulu=True),
        language=i.language,
        fields=dict(i.fields),
        delivery=state,  # type: ignore[arg-type]
    )
