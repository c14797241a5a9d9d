"""Ticketing's HTTP side, mounted on the app by :func:`setup_ticketing`:

- the event form's access settings and booking rules (hooks of the dashboard),
- the organiser's page of registrants and invitees (confirm, reject, cancel, resend, revoke)
  and the registrants' CSV export,
- the public registration page of paid events and of every event that requires registration,
  its thank-you page and the event's calendar file; the room page's look-up of a personal link,
- Stripe's webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from webinar import i18n
from webinar.accounts import hash_password_async, verify_password
from webinar.config import Config
from webinar.http.branding import event_brand
from webinar.http.dashboard import AfterSave
from webinar.http.inputs import path_id, read_body, read_json
from webinar.http.language import of_request, use_event_language
from webinar.http.site import Pages, Site, route
from webinar.i18n import LANGUAGES, N_, NATIVE_NAMES, _, format_amount, gettext, ngettext
from webinar.ids import format_event_id, normalize_event_id
from webinar.links import attendee_path
from webinar.storage.store import Event, EventSettings, Store, User
from webinar.ticketing import imports, mailing, records, registrants
from webinar.ticketing.books import Attempts, local_attempts
from webinar.ticketing.desk import DeskError, TicketDesk, local_time
from webinar.ticketing.gate import Ticketing
from webinar.ticketing.grants import Refusal, RefusalCode, SecondDevice
from webinar.ticketing.limiter import AttemptLimiter
from webinar.ticketing.mail import Mailer, MailError
from webinar.ticketing.outbox import Outbox
from webinar.ticketing.payments import (
    MAX_WEBHOOK_BYTES,
    ManualProvider,
    PaymentError,
    Provider,
    StripeCheckout,
    WebhookRefused,
)
from webinar.ticketing.records import EventAccess, PaymentProvider, RegistrationStatus
from webinar.ticketing.reminders import Reminders
from webinar.ticketing.rules import (
    PRICE_CAPS,
    BookingLimits,
    BookingRefused,
    BookingRule,
    check_booking,
    check_price_minor,
    format_price,
    parse_price,
)
from webinar.ticketing.samples import sample_messages
from webinar.ticketing.shared import SharedTicketing

logger = logging.getLogger(__name__)

Render = Callable[..., web.Response]
REMINDERS = web.AppKey("reminders", Reminders)
OUTBOX = web.AppKey("outbox", Outbox)
#: The import preview's path: ``imp_`` and 16 URL-safe characters.
_IMPORT_ID = r"{import_id:imp_[A-Za-z0-9_-]{16}}"
#: How many of an import's good rows its preview page lists (the JSON has them all).
PREVIEW_ROWS = 50
EVENT_PASSWORD_MIN_CHARS = 6
EVENT_PASSWORD_MAX_CHARS = 200
MAX_CAPACITY = 100_000
#: Registrations one client address may submit in 10 minutes (per event: 1000).
REGISTRATIONS_PER_CLIENT = 10
REGISTER_CSRF_COOKIE = "webinar_register_csrf"
#: A password of the wrong length, per kind (``%(min)d`` and ``%(max)d`` characters).
_ATTENDEE_PASSWORD = N_("the attendee password needs %(min)d to %(max)d characters")
_PRESENTER_PASSWORD = N_("the presenter password needs %(min)d to %(max)d characters")
#: What the tickets page says after a registration was rejected or cancelled.
_ENDED: dict[RegistrationStatus, str] = {
    RegistrationStatus.REJECTED: N_("%(name)s is rejected; %(email)s was told."),
    RegistrationStatus.CANCELLED: N_("%(name)s is cancelled; %(email)s was told."),
}


def booking_limits(config: Config) -> BookingLimits:
    t = config.ticketing
    return BookingLimits(
        min_lead=timedelta(minutes=t.min_lead_minutes),
        max_lead=timedelta(days=t.max_lead_days),
        max_active_events=t.max_active_events,
        usable_for=timedelta(days=t.usable_days),
    )


def registration_limiter(shared: SharedTicketing | None = None) -> AttemptLimiter | Attempts:
    """At most N registrations per address in 10 minutes (in Redis with ``shared``)."""
    if shared is not None:
        return shared.attempts(
            "registration", per_client=REGISTRATIONS_PER_CLIENT, per_event=1000, window=600.0
        )
    return AttemptLimiter(per_client=REGISTRATIONS_PER_CLIENT, per_event=1000, window=600.0)


def make_ticketing(
    config: Config, store: Store, shared: SharedTicketing | None = None
) -> Ticketing:
    """The gate; with ``shared``, its seats and entry limits are kept in Redis for every
    worker (else in this process's memory)."""
    per_client = config.ticketing.wrong_entries_per_address
    per_event = config.ticketing.wrong_entries_per_event
    return Ticketing(
        store,
        limits=booking_limits(config),
        code_early=timedelta(minutes=config.ticketing.code_early_minutes),
        code_late=timedelta(minutes=config.ticketing.code_late_minutes),
        attempts=AttemptLimiter(per_client=per_client, per_event=per_event)
        if shared is None
        else shared.attempts("entry", per_client=per_client, per_event=per_event),
        seats=None if shared is None else shared.seats(),
    )


@dataclasses.dataclass
class TicketingWeb(Pages):
    config: Config
    site: Site
    ticketing: Ticketing
    desk: TicketDesk
    #: Registrations per address (every one counts); in memory unless given a shared one.
    registrations: Attempts = dataclasses.field(
        default_factory=lambda: local_attempts(registration_limiter())
    )

    def base(self, request: web.Request) -> str:
        return (self.config.http.public_url or str(request.url.origin())).rstrip("/")

    # ------------------------------------------------------------------ event form hooks

    async def form_values(self, event: Event | None) -> dict[str, Any]:
        access = await self.desk.access(event.event_id) if event else EventAccess("")
        price = ""
        if access.price_minor is not None and access.currency is not None:
            price = format_amount(access.price_minor)
        return {
            "price": price,
            "currency": access.currency or "EUR",
            "currencies": list(PRICE_CAPS),
            "price_caps": PRICE_CAPS,
            "capacity": "" if access.capacity is None else str(access.capacity),
            "second_device": access.second_device.value,
            "payment_provider": access.payment_provider.value,
            "stripe_enabled": self.config.payments.stripe_enabled,
            "has_attendee_password": access.attendee_password_hash is not None,
            "has_presenter_password": access.presenter_password_hash is not None,
            "settings_changed": bool(event and await self.desk.settings_changed_at(event)),
            "registration_questions": records.form_fields_text(access.form_fields),
            "registration_required": access.registration_required,
            "waiting_list": access.waiting_list,
            "registration_redirect_url": access.registration_redirect_url or "",
            "privacy_text": access.privacy_text,
            "privacy_url": access.privacy_url or "",
            **await self._mail_values(event),
        }

    async def _mail_values(self, event: Event | None) -> dict[str, Any]:
        """The event form's reminder setting (event_mail_fields.html)."""
        minutes = (
            await self.desk.reminder_minutes(event) if event else mailing.DEFAULT_REMINDER_MINUTES
        )
        choices = sorted({*mailing.REMINDER_CHOICES, minutes})
        return {"reminder_minutes": minutes, "reminder_choices": choices}

    async def before_save(
        self, user: User, settings: EventSettings, form: dict[str, str], event: Event | None
    ) -> AfterSave:
        """Booking rules, then the access settings; ValueError names what is wrong."""
        checked = settings.validated()
        now = self.ticketing.clock()
        limits = self.ticketing.limits
        active = 0
        if not user.is_admin:
            active = await self.site.store.run(
                lambda core: records.count_active_events(
                    core.connection, user.user_id, now - limits.usable_for, now=now
                )
            )
        check_booking(
            checked.starts_at,
            now,
            limits,
            active_events=active,
            editing=event is not None,
            previous_start=event.starts_at if event else None,
        )
        old = await self.desk.access(event.event_id) if event else EventAccess("")
        access = await self._access_from_form(checked, form, old)
        reminder = _reminder_minutes(form)

        async def after(saved: Event) -> None:
            await self.desk.put_access(dataclasses.replace(access, event_id=saved.event_id))
            if reminder is not None:
                await self.desk.set_reminder_minutes(saved, reminder)
            if event is not None:
                await self.desk.event_changed(event, saved)
                await self.desk.promote(saved)  # more places: the waiting list moves up

        return after

    async def _access_from_form(
        self, settings: EventSettings, form: dict[str, str], old: EventAccess
    ) -> EventAccess:
        def text(name: str) -> str:
            return form.get(name, "").strip()

        second = text("second_device") or old.second_device.value
        if second not in ("takeover", "refuse"):
            raise ValueError(_("a second device must either take over or be refused"))
        provider = text("payment_provider") or old.payment_provider.value
        if provider not in ("manual", "stripe"):
            raise ValueError(_("payment must be manual or stripe"))
        if provider == "stripe" and not self.config.payments.stripe_enabled:
            raise ValueError(_("Stripe is not configured on this server (payments.stripe_*)"))
        capacity: int | None = None
        if text("capacity"):
            try:
                capacity = int(text("capacity"))
            except ValueError:
                raise ValueError(_("the places must be a whole number")) from None
            if not 1 <= capacity <= MAX_CAPACITY:
                raise ValueError(_("the places must be 1 to %(max)d") % {"max": MAX_CAPACITY})
        price_minor, currency = old.price_minor, old.currency
        if text("price"):
            currency = (text("currency") or old.currency or "EUR").upper()
            price_minor = parse_price(text("price"), currency)
        elif price_minor is not None and text("currency"):
            currency = text("currency").upper()
            check_price_minor(price_minor, currency)
        if settings.access_type == "paid" and price_minor is None:
            raise ValueError(_("a paid event needs a ticket price"))
        if settings.access_type == "paid" and settings.starts_at is None:
            raise BookingRefused(
                BookingRule.START_REQUIRED,
                _("a paid event needs a start date and time (its codes work around it)"),
            )
        attendee_hash, presenter_hash = old.attendee_password_hash, old.presenter_password_hash
        attendee_pw, presenter_pw = (
            form.get("attendee_password", ""),
            form.get("presenter_password", ""),
        )
        for wrong, value in (
            (_ATTENDEE_PASSWORD, attendee_pw),
            (_PRESENTER_PASSWORD, presenter_pw),
        ):
            if value and not EVENT_PASSWORD_MIN_CHARS <= len(value) <= EVENT_PASSWORD_MAX_CHARS:
                raise ValueError(
                    gettext(wrong)
                    % {"min": EVENT_PASSWORD_MIN_CHARS, "max": EVENT_PASSWORD_MAX_CHARS}
                )
        if attendee_pw and presenter_pw and hmac.compare_digest(attendee_pw, presenter_pw):
            raise ValueError(_("the presenter password must differ from the attendee password"))
        clash = (
            attendee_pw
            and presenter_hash
            and not presenter_pw
            and await _verify_async(attendee_pw, presenter_hash)
        ) or (
            presenter_pw
            and attendee_hash
            and not attendee_pw
            and await _verify_async(presenter_pw, attendee_hash)
        )
        if clash:
            raise ValueError(_("the attendee and presenter passwords must differ"))
        if attendee_pw:
            attendee_hash = await hash_password_async(attendee_pw)
        if presenter_pw:
            presenter_hash = await hash_password_async(presenter_pw)
        if settings.access_type == "password" and attendee_hash is None:
            raise ValueError(_("a password event needs an attendee password"))
        questions = old.form_fields
        if "registration_questions" in form:
            questions = records.parse_form_fields(form["registration_questions"])
        registration = _registration_settings(form, old)
        return EventAccess(
            **registration,
            event_id=old.event_id,
            cancelled_at=old.cancelled_at,
            form_fields=questions,
            attendee_password_hash=attendee_hash,
            presenter_password_hash=presenter_hash,
            price_minor=price_minor,
            currency=currency,
            capacity=capacity,
            second_device=SecondDevice(second),
            payment_provider=PaymentProvider(provider),
        )

    # ------------------------------------------------------------------ organiser pages

    async def _posted(self, request: web.Request) -> tuple[Event, dict[str, str]]:
        """The organiser's own event and the text fields of their form (CSRF checked)."""
        event, record, _user = await self.site.owned_event(request)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        return event, {k: str(v) for k, v in form.items() if isinstance(v, str)}

    def _back(self, event: Event, message: str, *, error: bool = False) -> web.HTTPSeeOther:
        key = "error" if error else "done"
        return web.HTTPSeeOther(
            f"/dashboard/events/{format_event_id(event.event_id)}/tickets?{key}={quote(message)}"
        )

    @contextlib.contextmanager
    def _refusals_back(self, event: Event, *refusals: type[Exception]) -> Iterator[None]:
        """An organiser action's refusal (one of ``refusals``) goes back to the tickets page
        as its error."""
        try:
            yield
        except refusals as exc:
            raise self._back(event, str(exc), error=True) from None

    @route("GET", "/dashboard/events/{event_id}/tickets")
    async def tickets_page(self, request: web.Request) -> web.Response:
        event, record, user = await self.site.owned_event(request)
        access = await self.desk.access(event.event_id)
        registrations = await self.desk.registrations(event)
        invitees = await self.desk.invitees(event)
        progress = await self.desk.mail_progress(event)
        waiting: dict[int, int] = {}
        for reg in registrations:
            if reg.status is RegistrationStatus.WAITLISTED:
                waiting[reg.registration_id] = len(waiting) + 1
        taken = sum(
            r.seats
            for r in registrations
            if r.status in (RegistrationStatus.PENDING, RegistrationStatus.CONFIRMED)
        )
        return self.site.render(
            request,
            "tickets.html",
            user=user,
            csrf=record.csrf_token,
            event=event,
            event_id=format_event_id(event.event_id),
            when=local_time(event, event.starts_at),
            access=access,
            price=_price(access),
            registrations=registrations,
            waiting=waiting,
            places_taken=taken,
            registering=records.takes_registrations(event.access_type, access),
            invitees=invitees,
            deliveries=await self.desk.invitation_states(event),
            progress=progress,
            settings_changed=await self.desk.settings_changed_at(event),
            register_url=f"{self.base(request)}/e/{format_event_id(event.event_id)}/register",
            local=lambda when: local_time(event, when),
            done=request.query.get("done", "")[:300],
            error=request.query.get("error", "")[:300],
        )

    @route("POST", "/dashboard/events/{event_id}/registrations/{registration_id}/{action}")
    async def registration_action(self, request: web.Request) -> web.Response:
        event, _form = await self._posted(request)
        action = request.match_info["action"]
        registration_id = path_id(
            request, "registration_id", lambda: web.HTTPNotFound(text=_("No such registration."))
        )
        with self._refusals_back(event, DeskError, ValueError, MailError):
            if action == "confirm":
                reg = await self.desk.confirm(event, registration_id, self.base(request))
                message = _(
                    "%(name)s is confirmed; the reservation code was sent to %(email)s."
                ) % {"name": reg.name, "email": reg.email}
            elif action in ("reject", "cancel"):
                status = (
                    RegistrationStatus.REJECTED
                    if action == "reject"
                    else RegistrationStatus.CANCELLED
                )
                reg = await self.desk.end(event, registration_id, status, base=self.base(request))
                message = gettext(_ENDED.get(reg.status, _ENDED[status])) % {
                    "name": reg.name,
                    "email": reg.email,
                }
            elif action == "resend":
                reg = await self.desk.registration(event, registration_id)
                sent = await self.desk.resend_code(event, registration_id, self.base(request))
                message = (
                    _("The reservation code was sent again to %(email)s.")
                    if reg.code is not None
                    else _("The confirmation was sent again to %(email)s.")
                ) % {"email": sent.to}
            else:
                raise web.HTTPNotFound(text=_("No such action."))
        raise self._back(event, message)

    @route("POST", "/dashboard/events/{event_id}/resend-all")
    async def resend_all(self, request: web.Request) -> web.Response:
        event, _form = await self._posted(request)
        with self._refusals_back(event, MailError):
            count = await self.desk.resend_all(event, self.base(request))
        raise self._back(
            event,
            ngettext(
                "The new details went to %(num)d person.",
                "The new details went to %(num)d people.",
                count,
            )
            % {"num": count},
        )

    @route("POST", "/dashboard/events/{event_id}/cancel-event")
    async def cancel_event(self, request: web.Request) -> web.Response:
        event, _form = await self._posted(request)
        with self._refusals_back(event, DeskError, MailError):
            count = await self.desk.cancel_event(event, self.base(request))
        raise self._back(
            event,
            ngettext(
                "The event is cancelled; %(num)d person was told.",
                "The event is cancelled; %(num)d people were told.",
                count,
            )
            % {"num": count},
        )

    @route("POST", "/dashboard/events/{event_id}/invitees")
    async def add_invitee(self, request: web.Request) -> web.Response:
        event, form = await self._posted(request)
        language = form.get("language", "") or None
        if language is not None and language not in LANGUAGES:
            raise self._back(event, _("unknown language"), error=True)
        with self._refusals_back(event, DeskError, ValueError):
            try:
                invitee = await self.desk.invite(
                    event,
                    form.get("name", ""),
                    form.get("email", ""),
                    self.base(request),
                    language=language,
                )
            except MailError:
                raise self._back(
                    event,
                    _(
                        "The invitation is saved but the mail server did not take it; it is"
                        " tried again in a few minutes."
                    ),
                    error=True,
                ) from None
        raise self._back(
            event,
            _("%(name)s is invited; the invitation went to %(email)s.")
            % {"name": invitee.name, "email": invitee.email},
        )

    # ------------------------------------------------------------------ CSV imports

    def _import_path(self, event: Event, import_id: str) -> str:
        return f"/dashboard/events/{format_event_id(event.event_id)}/invitees/import/{import_id}"

    @route("POST", "/dashboard/events/{event_id}/invitees/import")
    async def upload_import(self, request: web.Request) -> web.Response:
        """A CSV file of invitees (multipart: ``csrf``, ``file``): read, checked line by line
        and kept as a preview; nothing is sent yet."""
        event, record, _user = await self.site.owned_event(request)
        fields, file_name, data = await _read_upload(request)
        self.site.check_csrf(record.csrf_token, fields)
        if data is None:
            raise self._back(event, _("choose a CSV file to import"), error=True)
        with self._refusals_back(event, DeskError, ValueError):
            found = await self.desk.preview_import(event, data, file_name=file_name)
        raise web.HTTPSeeOther(self._import_path(event, found.import_id))

    async def _import(self, request: web.Request) -> tuple[Event, str, User, mailing.InviteImport]:
        event, record, user = await self.site.owned_event(request)
        try:
            found = await self.desk.invite_import(event, request.match_info["import_id"])
        except DeskError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        return event, record.csrf_token, user, found

    @route("GET", f"/dashboard/events/{{event_id}}/invitees/import/{_IMPORT_ID}")
    async def import_page(self, request: web.Request) -> web.Response:
        event, csrf, user, found = await self._import(request)
        return self.site.render(
            request,
            "invite_import.html",
            user=user,
            csrf=csrf,
            event=event,
            event_id=format_event_id(event.event_id),
            found=found,
            shown=found.rows[:PREVIEW_ROWS],
            path=self._import_path(event, found.import_id),
            local=lambda when: local_time(event, when),
            language_names=NATIVE_NAMES,
            error=request.query.get("error", "")[:300],
        )

    @route("GET", f"/dashboard/events/{{event_id}}/invitees/import/{_IMPORT_ID}.json")
    async def import_json(self, request: web.Request) -> web.Response:
        event, _csrf, _user, found = await self._import(request)
        return web.json_response(
            import_json(event, found, send=self._import_path(event, found.import_id) + "/send")
        )

    @route("POST", f"/dashboard/events/{{event_id}}/invitees/import/{_IMPORT_ID}/send")
    async def send_import(self, request: web.Request) -> web.Response:
        event, _form = await self._posted(request)
        import_id = request.match_info["import_id"]
        try:
            result = await self.desk.send_import(event, import_id, self.base(request))
        except DeskError as exc:
            raise web.HTTPSeeOther(
                f"{self._import_path(event, import_id)}?error={quote(str(exc))}"
            ) from None
        count = result.invited
        message = ngettext(
            "%(num)d invitation is being sent.", "%(num)d invitations are being sent.", count
        ) % {"num": count}
        if result.already:
            message += " " + ngettext(
                "%(num)d person was invited meanwhile and is left out.",
                "%(num)d people were invited meanwhile and are left out.",
                len(result.already),
            ) % {"num": len(result.already)}
        raise self._back(event, message)

    @route("POST", "/dashboard/events/{event_id}/mail/retry")
    async def retry_mail(self, request: web.Request) -> web.Response:
        event, _form = await self._posted(request)
        count = await self.desk.retry_failed(event)
        raise self._back(
            event,
            ngettext("%(num)d e-mail is tried again.", "%(num)d e-mails are tried again.", count)
            % {"num": count},
        )

    @route("GET", "/dashboard/events/{event_id}/mail/progress")
    async def mail_progress(self, request: web.Request) -> web.Response:
        """How the event's queued e-mails stand (the tickets page follows it while sending)."""
        event, _record, _user = await self.site.owned_event(request)
        progress = await self.desk.mail_progress(event)
        return web.json_response(
            {
                "event_id": format_event_id(event.event_id),
                "waiting": progress.waiting(),
                "failed": progress.failed(),
                "outbox": progress.as_json(),
            }
        )

    # ------------------------------------------------------------------ e-mails

    @route("GET", "/dashboard/events/{event_id}/emails")
    async def emails_page(self, request: web.Request) -> web.Response:
        """Every e-mail the event's people may get, rendered with sample data in the event's
        language (or the one asked with ``?lang=``)."""
        event, _record, user = await self.site.owned_event(request)
        language = i18n.supported(request.query.get("lang")) or event.language or "en"
        samples = await sample_messages(self.desk, event, language, self.base(request))
        return self.site.render(
            request,
            "emails.html",
            user=user,
            event=event,
            event_id=format_event_id(event.event_id),
            samples=samples,
            sample_language=language,
            sender=self.config.mail.from_address,
        )

    @route("POST", "/dashboard/events/{event_id}/invitees/{invitee_id}/{action}")
    async def invitee_action(self, request: web.Request) -> web.Response:
        event, _form = await self._posted(request)
        action = request.match_info["action"]
        invitee_id = path_id(
            request, "invitee_id", lambda: web.HTTPNotFound(text=_("No such invitee."))
        )
        with self._refusals_back(event, DeskError, ValueError, MailError):
            if action == "revoke":
                invitee = await self.desk.revoke(event, invitee_id)
                message = _("The invitation of %(name)s is revoked.") % {"name": invitee.name}
            elif action == "resend":
                sent = await self.desk.resend_invitation(event, invitee_id, self.base(request))
                message = _("The invitation was sent again to %(email)s.") % {"email": sent.to}
            else:
                raise web.HTTPNotFound(text=_("No such action."))
        raise self._back(event, message)

    # ------------------------------------------------------------------ registration

    async def _registering_event(self, request: web.Request) -> tuple[Event, EventAccess]:
        """The event of the path if it takes registrations (paid, or registration required),
        and its access settings; else 404."""
        raw = request.match_info["event_id"]
        canonical = normalize_event_id(raw)
        event = await self.site.store.get_event(canonical) if canonical else None
        access = await self.desk.access(event.event_id) if event is not None else None
        if (
            event is None
            or access is None
            or not records.takes_registrations(event.access_type, access)
        ):
            raise web.HTTPNotFound(text=_("This event takes no registrations."))
        use_event_language(request, event.language)  # the organiser's choice, if any
        return event, access

    async def _register_page(
        self,
        request: web.Request,
        event: Event,
        access: EventAccess,
        *,
        values: dict[str, str],
        error: str | None = None,
        done: str | None = None,
        status: int = 200,
    ) -> web.Response:
        csrf = secrets.token_urlsafe(24)
        places_left: int | None = None
        if access.capacity is not None:
            taken = await self.site.store.run(
                lambda core: records.places_taken(core.connection, event.event_id)
            )
            places_left = max(0, access.capacity - taken)
        brand = await event_brand(self.site.store, event)
        response = self.site.render(
            request,
            "register.html",
            status=status,
            brand=brand,
            csrf=csrf,
            event=event,
            event_id=format_event_id(event.event_id),
            when=local_time(event, event.starts_at),
            paid=event.access_type == "paid",
            price=_price(access),
            questions=list(enumerate(access.form_fields)),
            privacy_text=access.privacy_text,
            privacy_url=access.privacy_url,
            places_left=places_left,
            waiting_list=access.waiting_list,
            cancelled=access.cancelled_at is not None,
            values=values,
            error=error,
            done=done,
        )
        # Double-submit: the form's token must match this cookie (another site cannot read
        # it, so it cannot post the form in a visitor's name).
        response.set_cookie(
            REGISTER_CSRF_COOKIE,
            csrf,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            max_age=3600,
            path=f"/e/{format_event_id(event.event_id)}/register",
        )
        return response

    @route("GET", "/e/{event_id}/register")
    async def register_form(self, request: web.Request) -> web.Response:
        event, access = await self._registering_event(request)
        done = None
        if request.query.get("paid"):
            done = _(
                "Thank you: your payment is being confirmed."
                " Your reservation code follows by e-mail."
            )
        elif request.query.get("registered"):
            done = _(
                "Thank you for registering. Your registration waits for payment confirmation;"
                " your reservation code follows by e-mail once it is confirmed."
            )
        elif request.query.get("cancelled"):
            done = _("The payment was cancelled; you have not been charged.")
        return await self._register_page(request, event, access, values={"seats": "1"}, done=done)

    @route("POST", "/e/{event_id}/register")
    async def register(self, request: web.Request) -> web.Response:
        event, access = await self._registering_event(request)
        form = await request.post()
        given, expected = str(form.get("csrf", "")), request.cookies.get(REGISTER_CSRF_COOKIE, "")
        if not given or not expected or not hmac.compare_digest(given, expected):
            raise web.HTTPForbidden(text=_("The form expired or did not come from this site."))
        values = {k: str(v)[:600] for k, v in form.items() if isinstance(v, str) and k != "csrf"}
        tick = time.monotonic()
        try:
            counted = await self.registrations.reserve(request.remote, event.event_id, tick)
        except Refusal as refusal:
            unavailable = refusal.code is RefusalCode.UNAVAILABLE
            return await self._register_page(
                request,
                event,
                access,
                values=values,
                error=_("Registration is unavailable for a moment; try again in a few seconds.")
                if unavailable
                else _("Too many registrations from your address; try again in %(seconds)s s.")
                % {"seconds": refusal.retry_after},
                status=503 if unavailable else 429,
            )
        await counted.failed(tick)  # counts every one
        try:
            seats = int(values.get("seats", "1") or "1")
        except ValueError:
            seats = 0
        try:
            registration, checkout = await self.desk.register(
                event,
                first_name=values.get("first_name", ""),
                last_name=values.get("last_name", ""),
                email=values.get("email", ""),
                seats=seats,
                base=self.base(request),
                answers={k: v for k, v in values.items() if k.startswith("q")},
                language=of_request(request),  # the page's: their e-mails go out in it
                consent=values.get("consent", "") in ("on", "1", "yes"),
            )
        except (DeskError, ValueError) as exc:
            return await self._register_page(
                request, event, access, values=values, error=str(exc), status=400
            )
        except (PaymentError, MailError) as exc:
            logger.warning("registration for event %s: %s", event.event_id, exc)
            return await self._register_page(
                request,
                event,
                access,
                values=values,
                error=_(
                    "Your registration is saved, but the next step failed; the organiser will"
                    " contact you."
                ),
                status=502,
            )
        if checkout is not None:
            raise web.HTTPSeeOther(checkout.url)
        if access.registration_redirect_url:
            raise web.HTTPSeeOther(access.registration_redirect_url)
        raise web.HTTPSeeOther(
            f"/e/{format_event_id(event.event_id)}/registered"
            f"?status={registration.status.value}&seats={registration.seats}"
        )

    @route("GET", "/e/{event_id}/registered")
    async def registered(self, request: web.Request) -> web.Response:
        """The thank-you page after registering: what happens next, by the registration's
        status (``?status=confirmed|waitlisted|pending``; nothing personal in the address)."""
        event, _access = await self._registering_event(request)
        state = request.query.get("status", "")
        if state not in ("confirmed", "waitlisted", "pending"):
            state = "pending" if event.access_type == "paid" else "confirmed"
        return self.site.render(
            request,
            "registered.html",
            brand=await event_brand(self.site.store, event),
            event=event,
            event_id=format_event_id(event.event_id),
            when=local_time(event, event.starts_at),
            state=state,
            paid=event.access_type == "paid",
            calendar=event.starts_at is not None,
        )

    @route("GET", "/e/{event_id}/calendar.ics")
    async def calendar(self, request: web.Request) -> web.Response:
        """The event's calendar file (no personal link in it: the e-mailed one has that)."""
        raw = request.match_info["event_id"]
        canonical = normalize_event_id(raw)
        event = await self.site.store.get_event(canonical) if canonical else None
        ics = (
            None
            if event is None
            else await self.desk.calendar_file(  # its current SEQUENCE
                event, url=f"{self.base(request)}{attendee_path(event)}"
            )
        )
        if event is None or ics is None:
            raise web.HTTPNotFound(text=_("This event has no time to put in a calendar."))
        return web.Response(
            body=ics,
            content_type="text/calendar",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="event-{event.event_id}.ics"',
                "Cache-Control": "no-cache",
            },
        )

    @route("POST", "/e/{event_id}/pass")
    async def whose_pass(self, request: web.Request) -> web.Response:
        """The room page's look-up of a personal link (``{"pass": "rp-…"}``): the name it
        admits and its registration's status, to greet its holder before they enter.
        Rate-limited like an entry; a wrong one is ``404 {"error", "message"}``."""
        raw = request.match_info["event_id"]
        canonical = normalize_event_id(raw)
        event = await self.site.store.get_event(canonical) if canonical else None
        if event is None:
            return web.json_response(
                {"error": "unknown-event", "message": _("There is no such event.")}, status=404
            )
        use_event_language(request, event.language)
        body = await read_json(request, _json_error, max_bytes=1024)
        given = body.get("pass") if isinstance(body, dict) else None
        if not isinstance(given, str) or not 1 <= len(given) <= 100:
            message = _("Send the personal link's secret as pass.")
            return web.json_response({"error": "bad-request", "message": message}, status=400)
        try:
            found = await self.ticketing.whose_pass(event, given, client=request.remote)
        except Refusal as refusal:
            status = 429 if refusal.code is RefusalCode.RATE_LIMITED else 404
            if refusal.code is RefusalCode.UNAVAILABLE:
                status = 503
            return web.json_response(
                {"error": refusal.code.value, "message": refusal.message}, status=status
            )
        return web.json_response({"name": found.name, "status": found.status.value})

    @route("GET", "/dashboard/events/{event_id}/registrations.csv")
    async def registrations_csv(self, request: web.Request) -> web.Response:
        """Every registrant of the event, whatever its access type (registrants.COLUMNS)."""
        event, _record, _user = await self.site.owned_event(request)
        body = await self.registrations_export(event, bom=request.query.get("bom") in _YES)
        return web.Response(
            body=body,
            content_type="text/csv",
            charset="utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="registrations-{event.event_id}.csv"'
            },
        )

    async def registrations_export(self, event: Event, *, bom: bool = False) -> bytes:
        access = await self.desk.access(event.event_id)
        return registrants.to_csv(access, await self.desk.registrations(event), bom=bom)

    # ------------------------------------------------------------------ Stripe

    @route("POST", "/payments/stripe/webhook")
    async def stripe_webhook(self, request: web.Request) -> web.Response:
        payload = await read_body(request, _stripe_error, max_bytes=MAX_WEBHOOK_BYTES)
        try:
            outcome = await self.desk.stripe_webhook(
                payload, request.headers.get("Stripe-Signature"), self.base(request)
            )
        except WebhookRefused as refused:
            logger.warning(
                "Stripe webhook from %s refused: %s", request.remote or "?", refused.reason
            )
            return web.json_response({"error": refused.reason}, status=400)
        except MailError:
            outcome = "applied"  # the payment counts; the organiser can resend the code
        return web.json_response({"received": True, "outcome": outcome})


_YES = ("1", "true", "yes", "on")


def _json_error(status: int, code: str, message: str) -> web.HTTPException:
    """A refusal of a JSON request of the public pages: ``{"error": code, "message": …}``."""
    exc = web.HTTPException(
        text=json.dumps({"error": code, "message": message}), content_type="application/json"
    )
    exc.set_status(status)
    return exc


def _flag(form: dict[str, str], name: str, old: bool, *, whole_form: bool) -> bool:
    """A checkbox of the event form: on when sent as ``on``/``1``/``true``/``yes``; absent,
    off when the whole form was sent (the dashboard's, which sends no unticked box) and
    unchanged otherwise (the API's, which sends only what changes)."""
    if name in form:
        value = form[name].strip().lower()
        if value in _YES:
            return True
        if value in ("", "0", "false", "no", "off"):
            return False
        raise ValueError(_("%(field)s must be on or off") % {"field": name})
    return False if whole_form else old


def _registration_settings(form: dict[str, str], old: EventAccess) -> dict[str, Any]:
    """The registration settings of the event form (or of the API's changes), checked:
    registration required, the waiting list, the page after registering, the privacy text
    and its link. Fields not sent keep their values."""
    whole = "registration_settings" in form  # the dashboard's form has every field
    redirect, privacy_url = old.registration_redirect_url, old.privacy_url
    if "registration_redirect_url" in form:
        redirect = records.check_registration_url(form["registration_redirect_url"])
    if "privacy_url" in form:
        privacy_url = records.check_privacy_url(form["privacy_url"])
    privacy_text = old.privacy_text
    if "privacy_text" in form:
        privacy_text = records.check_privacy_text(form["privacy_text"])
    return {
        "registration_required": _flag(
            form, "registration_required", old.registration_required, whole_form=whole
        ),
        "waiting_list": _flag(form, "waiting_list", old.waiting_list, whole_form=whole),
        "registration_redirect_url": redirect,
        "privacy_text": privacy_text,
        "privacy_url": privacy_url,
    }


def _reminder_minutes(form: dict[str, str]) -> int | None:
    """The event form's reminder time (None: not in the form: unchanged)."""
    raw = form.get("reminder_minutes", "").strip()
    if not raw:
        return None
    try:
        minutes = int(raw)
    except ValueError:
        raise ValueError(_("the reminder time must be a whole number of minutes")) from None
    return mailing.check_reminder_minutes(minutes)


async def _read_upload(
    request: web.Request,
) -> tuple[dict[str, str], str, bytes | None]:
    """The fields and the file of a multipart form, the file read up to the import's limit
    (the app's body limit is smaller; a text field is at most 1 KiB)."""
    if not request.content_type.startswith("multipart/"):
        raise web.HTTPBadRequest(text=_("The form must be sent as multipart/form-data."))
    fields: dict[str, str] = {}
    file_name, data = "", None
    reader = await request.multipart()
    parts = 0
    while (part := await reader.next()) is not None:
        parts += 1
        if parts > 10 or not isinstance(part, BodyPartReader):
            raise web.HTTPBadRequest(text=_("The form has parts it should not have."))
        if part.filename is not None:
            chunks, size = [], 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
                if size > imports.MAX_FILE_BYTES:
                    raise web.HTTPRequestEntityTooLarge(
                        max_size=imports.MAX_FILE_BYTES, actual_size=size
                    )
                chunks.append(chunk)
            file_name, data = part.filename[:200], b"".join(chunks) or None
        elif part.name:
            value = await part.read(decode=True)
            if len(value) > 1024:
                raise web.HTTPBadRequest(text=_("A form field is too long."))
            fields[part.name] = value.decode("utf-8", errors="replace")
    return fields, file_name, data


def import_json(event: Event, found: mailing.InviteImport, *, send: str) -> dict[str, Any]:
    """A CSV import's preview as JSON (the dashboard's and the API's): what sending would
    invite and every line it would not, with the reason in the request's language."""
    return {
        "import_id": found.import_id,
        "event_id": format_event_id(event.event_id),
        "file_name": found.file_name,
        "lines": found.line_count,
        "extra_columns": list(found.extra_columns),
        "to_invite": len(found.rows),
        "invitees": [row.as_json() for row in found.rows],
        "problems": [{**p.as_json(), "reason": p.reason} for p in found.problems],
        "created_at": found.created_at.isoformat().replace("+00:00", "Z"),
        "sent_at": found.sent_at.isoformat().replace("+00:00", "Z") if found.sent_at else None,
        "send": send,
    }


def _stripe_error(status: int, _code: str, message: str) -> web.HTTPException:
    """A refusal of the Stripe webhook, in its JSON shape (``{"error": reason}``)."""
    exc = web.HTTPException(text=json.dumps({"error": message}), content_type="application/json")
    exc.set_status(status)
    return exc


def _price(access: EventAccess) -> str | None:
    """The ticket price as the pages show it; None until the organiser sets one."""
    if access.price_minor is None or not access.currency:
        return None
    return format_price(access.price_minor, access.currency)  # in the language in effect


async def _verify_async(password: str, stored: str) -> bool:
    ok: bool = await asyncio.to_thread(verify_password, password, stored)
    return ok


TICKETS = web.AppKey("tickets", TicketingWeb)


def setup_ticketing(
    app: web.Application,
    config: Config,
    site: Site,
    templates: Any,
    shared: SharedTicketing | None = None,
    *,
    jobs: bool = True,
    jobs_gate: Callable[[], bool] | None = None,
    alone: bool = True,
) -> TicketingWeb:
    """Build ticketing for the app and add its pages; the result's hooks go to the dashboard
    (the JSON API, :class:`webinar.http.tickets_api.AdminApi`, builds on the result).
    With ``shared``, seats and limits are kept in Redis for every worker. ``alone``: this is
    the server's only process (see :class:`webinar.ticketing.outbox.Outbox`)."""
    store = site.store
    ticketing = make_ticketing(config, store, shared)
    outbox = config.mail.outbox_dir or (config.data_dir / "outbox")
    mailer = Mailer(config.mail, outbox, templates / "email")
    providers: dict[PaymentProvider, Provider] = {PaymentProvider.MANUAL: ManualProvider()}
    payments = config.payments
    if payments.stripe_secret_key is not None:
        providers[PaymentProvider.STRIPE] = StripeCheckout(
            payments.stripe_secret_key, payments.stripe_api_url
        )
    desk = TicketDesk(
        store=store,
        ticketing=ticketing,
        mailer=mailer,
        providers=providers,
        stripe_webhook_secret=payments.stripe_webhook_secret,
        webhook_tolerance=float(payments.webhook_tolerance_seconds),
        base_url=config.base_url,
    )
    part = TicketingWeb(config, site, ticketing, desk, local_attempts(registration_limiter(shared)))
    app.router.add_routes(part.routes())
    reminders = Reminders(desk, config.base_url, gate=jobs_gate)
    app[REMINDERS] = reminders
    sender = Outbox(desk, config.base_url, gate=jobs_gate, alone=alone)
    app[OUTBOX] = sender
    if jobs:  # elsewhere the jobs' worker polls for what this one queues
        desk.wake_outbox = sender.wake
    app[TICKETS] = part

    async def run_reminders(_app: web.Application) -> AsyncIterator[None]:
        await reminders.start()
        await sender.start()
        try:
            yield
        finally:
            await sender.stop()
            await reminders.stop()

    if jobs:  # with several workers, only the one that runs the periodic jobs sends them
        app.cleanup_ctx.append(run_reminders)
    return part
