"""The ticket desk: what organisers and attendees do with tickets, for the dashboard and
the JSON API alike (invite, revoke, resend; register, confirm, reject, cancel; payments)."""

from __future__ import annotations

import dataclasses
import logging
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webinar import i18n
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.links import attendee_path
from webinar.storage.store import Event, Store

from . import records
from .calendar import REQUEST, attach_calendar, event_calendar
from .codes import format_code
from .gate import Ticketing
from .mail import Mailer, MailError, Sent
from .payments import (
    Checkout,
    CheckoutRequest,
    ExpiredCheckout,
    PaymentError,
    Provider,
    WebhookRefused,
    check_paid_matches,
    parse_stripe_event,
    verify_stripe_signature,
)
from .records import EventAccess, Invitee, PaymentProvider, Registration, RegistrationStatus

logger = logging.getLogger(__name__)


class DeskError(ValueError):
    """The request cannot be done (unknown row, wrong state); the message says why."""


def local_time(event: Event, when: datetime | None) -> str:
    """``when`` in the event's time zone, for the language in effect, the zone named as
    organisers set it: ``6 Dec 2026, 14:00 Europe/Prague``."""
    if when is None:
        return _("no fixed time")
    try:
        zone = zoneinfo.ZoneInfo(event.timezone)
    except zoneinfo.ZoneInfoNotFoundError:
        zone = zoneinfo.ZoneInfo("UTC")
    return f"{i18n.format_time_of_day(when, zone)} {event.timezone}"


def mail_zone(event: Event) -> str:
    """The time zone an event's e-mails give its times in (UTC when its own is unknown)."""
    try:
        zoneinfo.ZoneInfo(event.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return event.timezone


def language_of(event: Event, registration: Registration | None = None) -> str | None:
    """The language of an e-mail: the one the registrant registered in, else the event's
    (the organiser's choice), else None (English)."""
    if registration is not None and registration.language:
        return registration.language
    return event.language


@dataclass
class TicketDesk:
    store: Store
    ticketing: Ticketing
    mailer: Mailer
    providers: dict[PaymentProvider, Provider]
    stripe_webhook_secret: str | None = None
    webhook_tolerance: float = 300.0
    #: Told of every registration and payment change: (kind, event ID, data). The app
    #: turns these into webhooks (``registration.*``, ``payment.*``).
    notify: Callable[[str, str, dict[str, Any]], None] = lambda _kind, _event, _data: None
    #: The server's public address, for links in e-mails sent without a request at hand
    #: (a place freed by an expired checkout goes to the next on the waiting list).
    base_url: str = ""

    def _tell(self, kind: str, registration: Registration) -> None:
        try:
            self.notify(kind, registration.event_id, registration_summary(registration))
        except Exception:  # a listener's trouble never undoes the change
            logger.exception("registration listener failed for %s", kind)

    # ------------------------------------------------------------------ lookups

    async def access(self, event_id: str) -> EventAccess:
        return await self.store.run(lambda core: records.get_access(core.connection, event_id))

    async def put_access(self, access: EventAccess) -> None:
        await self.store.run(lambda core: records.put_access(core.connection, access))

    async def invitees(self, event: Event) -> list[Invitee]:
        return await self.store.run(
            lambda core: records.list_invitees(core.connection, event.event_id)
        )

    async def registrations(self, event: Event) -> list[Registration]:
        return await self.store.run(
            lambda core: records.list_registrations(core.connection, event.event_id)
        )

    async def _invitee(self, event: Event, invitee_id: int) -> Invitee:
        found = await self.store.run(lambda core: records.get_invitee(core.connection, invitee_id))
        if found is None or found.event_id != event.event_id:
            raise DeskError(_("no invitee %(id)s on this event") % {"id": invitee_id})
        return found

    async def registration(self, event: Event, registration_id: int) -> Registration:
        found = await self.store.run(
            lambda core: records.get_registration(core.connection, registration_id)
        )
        if found is None or found.event_id != event.event_id:
            raise DeskError(_("no registration %(id)s on this event") % {"id": registration_id})
        return found

    async def registrant_languages(self, event_id: str) -> dict[str, str]:
        """The language each registrant of the event registered in, by lower-case address
        (for e-mails other features send them, such as recording links)."""
        return await self.store.run(
            lambda core: records.registrant_languages(core.connection, event_id)
        )

    # ------------------------------------------------------------------ invitations

    async def invite(self, event: Event, name: str, email: str, base: str) -> Invitee:
        if event.access_type != "token":
            raise DeskError(_("invitations with personal tokens need the access type 'token'"))
        invitee = await self.store.run(
            lambda core: records.add_invitee(core.connection, event.event_id, name, email)
        )
        await self._send_invitation(event, invitee, base)
        await self._plan(event, invitee_id=invitee.invitee_id)
        return await self._invitee(event, invitee.invitee_id)

    async def _plan(
        self, event: Event, *, registration_id: int | None = None, invitee_id: int | None = None
    ) -> None:
        now = self.ticketing.clock()
        await self.store.run(
            lambda core: records.plan_reminder(
                core.connection,
                event.event_id,
                event.starts_at,
                now,
                registration_id=registration_id,
                invitee_id=invitee_id,
            )
        )

    async def resend_invitation(self, event: Event, invitee_id: int, base: str) -> Sent:
        invitee = await self._invitee(event, invitee_id)
        if invitee.revoked:
            raise DeskError(_("this invitation was revoked; invite the person again instead"))
        return await self._send_invitation(event, invitee, base)

    async def revoke(self, event: Event, invitee_id: int) -> Invitee:
        await self._invitee(event, invitee_id)
        await self.store.run(lambda core: records.revoke_invitee(core.connection, invitee_id))
        await self.ticketing.end_ticket(invitee_id=invitee_id)
        return await self._invitee(event, invitee_id)

    async def _send_invitation(self, event: Event, invitee: Invitee, base: str) -> Sent:
        sent = await self._mail(
            "invitation",
            event,
            invitee.email,
            invitee.name,
            language=language_of(event),
            agenda=event.agenda,
            # The token rides in the fragment: it never reaches a server log.
            link=f"{base}{attendee_path(event)}#token={invitee.token}",
        )
        invitee_id = invitee.invitee_id
        await self.store.run(lambda core: records.mark_invitee_sent(core.connection, invitee_id))
        return sent

    async def _mail(
        self,
        template: str,
        event: Event,
        to: str,
        name: str,
        *,
        language: str | None,
        **context: Any,
    ) -> Sent:
        """One of the event's e-mails to one person, in ``language``; every template gets
        the event, its display ID, its start (``starts_at``, None when it has no fixed time)
        and its time zone (``zone``) besides ``context``, and formats times and prices
        itself (``|datetime(zone)``, ``|price(currency)``) in the recipient's language."""
        return await self.mailer.send_template(
            template,
            to,
            language=language,
            name=name,
            event=event,
            event_id=format_event_id(event.event_id),
            starts_at=event.starts_at,
            zone=mail_zone(event),
            **context,
        )

    # ------------------------------------------------------------------ registrations

    async def register(
        self,
        event: Event,
        *,
        first_name: str,
        last_name: str,
        email: str,
        seats: int,
        base: str,
        answers: dict[str, str] | None = None,
        language: str | None = None,
        consent: bool = False,
    ) -> tuple[Registration, Checkout | None]:
        """Register someone for the event (paid, or any event that requires registration).

        ``answers`` to the organiser's questions come keyed ``q0``, ``q1``, ... (form order);
        ``language``: the one the person registered in (their e-mails go out in it);
        ``consent``: they ticked the box of the organiser's privacy text (needed when the
        event has one). A free event's registrant is registered at once and e-mailed their
        personal link with a calendar file (``seats`` is 1); a paid event's waits for the
        payment (a Checkout when the provider takes it online). With every place taken and
        a waiting list, the registration is ``waitlisted`` (and the person told so); without
        one it is refused (ValueError). The same address registering again for a free event
        gets its registration's e-mail again instead of a second registration."""
        access = await self.access(event.event_id)
        if not records.takes_registrations(event.access_type, access):
            raise DeskError(_("this event takes no registrations"))
        if access.cancelled_at is not None:
            raise DeskError(_("the organiser cancelled this event"))
        self._check_registration_open(event)
        replies = _replies(access, answers or {})
        agreed: str | None = None
        if access.privacy_text:
            if not consent:
                raise DeskError(_("please agree to the privacy terms to register"))
            agreed = access.privacy_text
        if event.access_type == "paid":
            return await self._register_paid(
                event,
                access,
                first_name=first_name,
                last_name=last_name,
                email=email,
                seats=seats,
                base=base,
                replies=replies,
                language=language,
                agreed=agreed,
            )
        again = await self.store.run(
            lambda core: records.active_registration_by_email(
                core.connection, event.event_id, email
            )
        )
        if again is not None:
            logger.info(
                "registration %s of event %s: registered again, its e-mail is resent",
                again.registration_id,
                event.event_id,
            )
            await self.resend_code(event, again.registration_id, base)
            return again, None
        registration = await self.store.run(
            lambda core: records.add_registration(
                core.connection,
                event.event_id,
                first_name=first_name,
                last_name=last_name,
                email=email,
                seats=1,
                amount_minor=0,
                currency=None,
                provider=PaymentProvider.MANUAL,
                capacity=access.capacity,
                answers=replies,
                language=language,
                status=RegistrationStatus.CONFIRMED,
                waiting_list=access.waiting_list,
                consent=agreed,
            )
        )
        self._tell("registration.created", registration)
        if registration.status is RegistrationStatus.CONFIRMED:
            await self._plan(event, registration_id=registration.registration_id)
            await self.send_registered(event, registration, base)
        else:
            await self.send_waitlisted(event, registration)
        return registration, None

    def _check_registration_open(self, event: Event) -> None:
        """Paid events take registrations until their start; free ones until their end (a
        latecomer registers and enters at once)."""
        if event.starts_at is None:
            return
        now = self.ticketing.clock()
        if event.access_type == "paid":
            if now >= event.starts_at:
                raise DeskError(_("registration is closed: the event has started"))
        elif now >= event.starts_at + timedelta(minutes=event.duration_minutes):
            raise DeskError(_("registration is closed: the event is over"))

    async def _register_paid(
        self,
        event: Event,
        access: EventAccess,
        *,
        first_name: str,
        last_name: str,
        email: str,
        seats: int,
        base: str,
        replies: dict[str, str],
        language: str | None,
        agreed: str | None,
    ) -> tuple[Registration, Checkout | None]:
        if access.price_minor is None or access.currency is None:
            raise DeskError(_("the organiser has not set a price yet"))
        price, currency = access.price_minor, access.currency
        provider = self._provider(access)
        registration = await self.store.run(
            lambda core: records.add_registration(
                core.connection,
                event.event_id,
                first_name=first_name,
                last_name=last_name,
                email=email,
                seats=seats,
                amount_minor=price * seats,
                currency=currency,
                provider=provider.name,
                capacity=access.capacity,
                answers=replies,
                language=language,
                waiting_list=access.waiting_list,
                consent=agreed,
            )
        )
        if registration.status is RegistrationStatus.WAITLISTED:
            self._tell("registration.created", registration)
            await self.send_waitlisted(event, registration)
            return registration, None
        checkout = await self._checkout(event, access, registration, base)
        if checkout is not None:
            registration = await self.registration(event, registration.registration_id)
            self._tell("registration.created", registration)
        else:
            self._tell("registration.created", registration)
            await self._send_received(event, registration)
        return registration, checkout

    def _provider(self, access: EventAccess) -> Provider:
        return self.providers.get(access.payment_provider) or self.providers[PaymentProvider.MANUAL]

    async def _checkout(
        self, event: Event, access: EventAccess, registration: Registration, base: str
    ) -> Checkout | None:
        """Start the payment of a pending registration with its provider (None: it is
        settled by hand); the provider's reference is kept on the registration."""
        assert access.price_minor is not None and access.currency is not None
        page = f"{base}{attendee_path(event)}/register"
        checkout = await self._provider(access).start(
            CheckoutRequest(
                registration=registration,
                title=event.title,
                unit_amount_minor=access.price_minor,
                currency=access.currency,
                success_url=f"{page}?paid=1",
                cancel_url=f"{page}?cancelled=1",
            )
        )
        if checkout is not None:
            ref = checkout.reference
            await self.store.run(
                lambda core: records.set_provider_ref(
                    core.connection, registration.registration_id, ref
                )
            )
        return checkout

    async def _send_received(
        self, event: Event, registration: Registration, *, promoted: bool = False, pay: str = ""
    ) -> Sent:
        """A paid registration waits for its payment: the person is told (``pay``: where to
        pay online, for one promoted from the waiting list)."""
        return await self._mail(
            "registration",
            event,
            registration.email,
            registration.name,
            language=language_of(event, registration),
            seats=registration.seats,
            amount_minor=registration.amount_minor,
            currency=registration.currency,
            promoted=promoted,
            pay_link=pay,
        )

    def personal_link(self, event: Event, registration: Registration, base: str) -> str:
        """The registrant's own join link: it admits them by name, without a code (the secret
        rides in the fragment, which never reaches a server log)."""
        assert registration.join_pass is not None
        return f"{base}{attendee_path(event)}#pass={registration.join_pass}"

    async def _with_pass(self, registration: Registration) -> Registration:
        """The registration with its personal link's secret (given one if it was made before
        links existed)."""
        if registration.join_pass is not None:
            return registration
        registration_id = registration.registration_id
        found = await self.store.run(
            lambda core: records.ensure_pass(core.connection, registration_id)
        )
        if found is None or found.join_pass is None:
            raise DeskError(_("this registration has no e-mail address any more"))
        return found

    async def _mail_with_calendar(
        self,
        template: str,
        event: Event,
        registration: Registration,
        *,
        link: str,
        **context: Any,
    ) -> Sent:
        """One of a registrant's e-mails with the event's calendar file attached (its URL
        the person's own link), in the language they registered in."""
        language = language_of(event, registration)
        message = self.mailer.compose(
            template,
            registration.email,
            language=language,
            name=registration.name,
            event=event,
            event_id=format_event_id(event.event_id),
            starts_at=event.starts_at,
            zone=mail_zone(event),
            link=link,
            **context,
        )
        with i18n.using(language):
            description = _("Join with your personal link: %(link)s") % {"link": link}
        if event.agenda:
            description = f"{event.agenda}\n\n{description}"
        ics = event_calendar(
            event,
            sequence=0,  # TODO(mail): the event's SEQUENCE, once the desk keeps it
            organizer=self.mailer.config.from_address,
            attendee=registration.email,
            attendee_name=registration.name,
            url=link,
            description=description,
            method=REQUEST,
        )
        if ics is not None:
            attach_calendar(message, ics, method=REQUEST)
        return await self.mailer.send(message)

    async def send_registered(
        self, event: Event, registration: Registration, base: str, *, promoted: bool = False
    ) -> Sent:
        """A free registration's confirmation: the personal link and the calendar file
        (``promoted``: a place freed for someone on the waiting list)."""
        registration = await self._with_pass(registration)
        return await self._mail_with_calendar(
            "registered",
            event,
            registration,
            link=self.personal_link(event, registration, base),
            promoted=promoted,
        )

    async def send_waitlisted(self, event: Event, registration: Registration) -> Sent:
        """The person is on the waiting list (and where in it)."""
        registration_id = registration.registration_id
        current = await self.store.run(
            lambda core: records.get_registration(core.connection, registration_id)
        )
        position = await self.store.run(
            lambda core: records.waiting_position(core.connection, current or registration)
        )
        return await self._mail(
            "waitlisted",
            event,
            registration.email,
            registration.name,
            language=language_of(event, registration),
            position=position or 1,
            seats=registration.seats,
        )

    async def promote(self, event: Event, base: str | None = None) -> list[Registration]:
        """Give the places that are free to the people waiting for them, in order; each is
        told by e-mail (a free event's with their personal link, a paid one's to pay). A
        failed e-mail leaves the promotion in place (the organiser can resend it)."""
        access = await self.access(event.event_id)
        if access.cancelled_at is not None:
            return []
        paid = event.access_type == "paid"
        promoted = await self.store.run(
            lambda core: records.promote_waiting(
                core.connection, event.event_id, access.capacity, paid=paid
            )
        )
        link_base = (base or self.base_url).rstrip("/")
        for registration in promoted:
            logger.info(
                "registration %s of event %s: promoted from the waiting list",
                registration.registration_id,
                event.event_id,
            )
            self._tell("registration.updated", registration)
            try:
                if paid:
                    pay = ""
                    try:
                        checkout = await self._checkout(event, access, registration, link_base)
                    except PaymentError as exc:
                        logger.warning("promoted registration %s: %s", registration, exc)
                        checkout = None
                    if checkout is not None:
                        pay = checkout.url
                    await self._send_received(event, registration, promoted=True, pay=pay)
                else:
                    await self._plan(event, registration_id=registration.registration_id)
                    await self.send_registered(event, registration, link_base, promoted=True)
            except MailError:
                logger.warning(
                    "registration %s promoted, but its e-mail failed", registration.registration_id
                )
        return promoted

    async def confirm(self, event: Event, registration_id: int, base: str) -> Registration:
        await self.registration(event, registration_id)
        confirmed = await self.store.run(
            lambda core: records.confirm_registration(core.connection, registration_id)
        )
        if confirmed is None:
            current = await self.registration(event, registration_id)
            raise DeskError(
                _("only a pending registration can be confirmed (this one is %(status)s)")
                % {"status": current.status}
            )
        logger.info(
            "registration %s of event %s confirmed by hand", registration_id, event.event_id
        )
        self._tell("registration.updated", confirmed)
        await self._plan(event, registration_id=registration_id)
        await self.send_code(event, confirmed, base)
        return confirmed

    async def end(
        self,
        event: Event,
        registration_id: int,
        status: RegistrationStatus,
        *,
        event_cancelled: bool = False,
        base: str | None = None,
    ) -> Registration:
        """Reject (pending) or cancel (pending, confirmed or waitlisted); the person is told,
        and a place it freed goes to the next on the waiting list."""
        before = await self.registration(event, registration_id)
        ended = await self.store.run(
            lambda core: records.end_registration(core.connection, registration_id, status)
        )
        if ended is None:
            current = await self.registration(event, registration_id)
            text = (
                _("a registration that is %(status)s cannot be rejected")
                if status is RegistrationStatus.REJECTED
                else _("a registration that is %(status)s cannot be cancelled")
            )
            raise DeskError(text % {"status": current.status})
        await self.ticketing.end_ticket(registration_id=registration_id)
        self._tell(
            "registration.cancelled"
            if status is RegistrationStatus.CANCELLED
            else "registration.updated",
            ended,
        )
        try:
            await self._mail(
                "rejected",
                event,
                ended.email,
                ended.name,
                language=language_of(event, ended),
                cancelled=status is RegistrationStatus.CANCELLED,
                event_cancelled=event_cancelled,
                paid=event.access_type == "paid",
                waitlisted=before.status is RegistrationStatus.WAITLISTED,
            )
        finally:
            if not event_cancelled and before.status is not RegistrationStatus.WAITLISTED:
                await self.promote(event, base)
        return ended

    async def resend_code(self, event: Event, registration_id: int, base: str) -> Sent:
        """E-mail a registration's news again: a confirmed one's code or personal link, a
        waiting one's place on the list, a pending one's receipt."""
        registration = await self.registration(event, registration_id)
        if registration.status is RegistrationStatus.CONFIRMED:
            return await self.send_confirmation(event, registration, base)
        if registration.status is RegistrationStatus.WAITLISTED:
            return await self.send_waitlisted(event, registration)
        raise DeskError(_("only a confirmed registration has a code to send"))

    async def send_confirmation(self, event: Event, registration: Registration, base: str) -> Sent:
        """A confirmed registration's e-mail: a paid one's code, a free one's personal link
        (both with the link and the calendar file)."""
        if registration.code is None:
            return await self.send_registered(event, registration, base)
        return await self.send_code(event, registration, base)

    async def send_code(self, event: Event, registration: Registration, base: str) -> Sent:
        code = registration.code
        assert code is not None
        registration = await self._with_pass(registration)
        window = self.ticketing.code_window(event)
        return await self._mail_with_calendar(
            "confirmed",
            event,
            registration,
            link=self.personal_link(event, registration, base),
            page=f"{base}{attendee_path(event)}",
            code=format_code(code),
            seats=registration.seats,
            opens=window.opens,
            closes=window.closes,
        )

    # ------------------------------------------------------------------ Stripe

    async def stripe_webhook(self, payload: bytes, signature: str | None, base: str) -> str:
        """Verify and apply a Stripe webhook; WebhookRefused for anything not acted on."""
        secret = self.stripe_webhook_secret
        if secret is None:
            raise WebhookRefused("Stripe is not configured")
        verify_stripe_signature(
            payload, signature, secret, now=time.time(), tolerance=self.webhook_tolerance
        )
        paid = parse_stripe_event(payload)
        if isinstance(paid, str):
            webhook_id = paid
            await self.store.run(
                lambda core: records.record_webhook(
                    core.connection, "stripe", webhook_id, "ignored"
                )
            )
            return "ignored"
        if isinstance(paid, ExpiredCheckout):
            return await self._checkout_expired(paid)
        registration = await self.store.run(
            lambda core: records.registration_by_ref(core.connection, paid.session_id)
        )
        if registration is not None and registration.registration_id != paid.registration_id:
            registration = None
        check_paid_matches(paid, registration)
        assert registration is not None
        outcome, confirmed = await self.store.run(
            lambda core: records.apply_payment_once(
                core.connection, "stripe", paid.webhook_id, paid.registration_id
            )
        )
        if outcome == "duplicate":
            logger.warning("Stripe webhook %s delivered again: not applied twice", paid.webhook_id)
            return "duplicate"
        if confirmed is None:
            logger.warning(
                "Stripe webhook %s: registration %s is %s, nothing applied",
                paid.webhook_id,
                registration.registration_id,
                registration.status,
            )
            return outcome
        event = await self.store.get_event(confirmed.event_id)
        logger.info("registration %s paid through Stripe", confirmed.registration_id)
        self._tell("payment.succeeded", confirmed)
        self._tell("registration.updated", confirmed)
        if event is not None:
            await self._plan(event, registration_id=confirmed.registration_id)
            await self.send_code(event, confirmed, base)
        return "applied"

    async def _checkout_expired(self, expired: ExpiredCheckout) -> str:
        """An abandoned checkout: its pending registration is cancelled (the place is free
        again), once; nobody is e-mailed, nothing was paid."""
        first = await self.store.run(
            lambda core: records.record_webhook(
                core.connection, "stripe", expired.webhook_id, "expired"
            )
        )
        if not first:
            return "duplicate"
        registration = await self.store.run(
            lambda core: records.registration_by_ref(core.connection, expired.session_id)
        )
        if registration is None or registration.status is not RegistrationStatus.PENDING:
            return "ignored"
        registration_id = registration.registration_id
        await self.store.run(
            lambda core: records.end_registration(
                core.connection, registration_id, RegistrationStatus.CANCELLED
            )
        )
        logger.info("registration %s: its Stripe checkout expired unpaid", registration_id)
        self._tell("payment.failed", registration)
        self._tell("registration.cancelled", registration)
        event = await self.store.get_event(registration.event_id)
        if event is not None:  # its places go to the waiting list
            await self.promote(event)
        return "expired"

    # ------------------------------------------------------------------ reminders

    async def send_reminder(self, reminder: records.Reminder, base: str) -> str:
        """Send one claimed reminder; the state it ends in (sent, skipped). Its Message-ID
        is recorded before the send, and a retry to the same address reuses it."""
        event = await self.store.get_event(reminder.event_id)
        if event is None:
            return "skipped"
        if reminder.registration_id is not None:
            reg = await self.registration(event, reminder.registration_id)
            if reg.status is not RegistrationStatus.CONFIRMED or not reg.email:
                return "skipped"
            to, name = reg.email, reg.name
            code: str | None = format_code(reg.code) if reg.code else None
            link = self.personal_link(event, await self._with_pass(reg), base)
            language = language_of(event, reg)
        elif reminder.invitee_id is not None:
            invitee = await self._invitee(event, reminder.invitee_id)
            if invitee.revoked:
                return "skipped"
            to, name, code = invitee.email, invitee.name, None
            link = f"{base}{attendee_path(event)}#token={invitee.token}"
            language = language_of(event)
        else:
            return "skipped"
        rid = reminder.reminder_id
        fresh = self.mailer.new_message_id(f"reminder.{rid}")
        message_id = await self.store.run(
            lambda core: records.reminder_message_id(core.connection, rid, to, fresh)
        )
        await self._mail(
            "reminder",
            event,
            to,
            name,
            language=language,
            code=code,
            link=link,
            message_id=message_id,
        )
        return "sent"

    # ------------------------------------------------------------------ cancelling

    async def cancel_event(self, event: Event) -> int:
        """Cancel the event: attendees are refused from now on; every pending or confirmed
        registrant and every active invitee is told (and their tickets stop working)."""
        access = await self.access(event.event_id)
        if access.cancelled_at is not None:
            raise DeskError(_("this event is cancelled already"))
        await self.put_access(dataclasses.replace(access, cancelled_at=self.ticketing.clock()))
        logger.info("event %s cancelled by its organiser", event.event_id)
        self.ticketing.end_event(event.event_id)
        told = 0
        for reg in await self.registrations(event):
            if reg.status in (
                RegistrationStatus.PENDING,
                RegistrationStatus.CONFIRMED,
                RegistrationStatus.WAITLISTED,
            ):
                await self.end(
                    event, reg.registration_id, RegistrationStatus.CANCELLED, event_cancelled=True
                )
                told += 1
        for invitee in await self.invitees(event):
            if not invitee.revoked:
                await self.revoke(event, invitee.invitee_id)
                await self._mail(
                    "rejected",
                    event,
                    invitee.email,
                    invitee.name,
                    language=language_of(event),
                    cancelled=True,
                    event_cancelled=True,
                    paid=False,
                )
                told += 1
        return told

    # ------------------------------------------------------------------ settings changed

    async def event_changed(self, before: Event, after: Event) -> None:
        """Reminders follow a moved start; people already told are offered a resend."""
        now = self.ticketing.clock()
        await self.store.run(
            lambda core: records.note_event_change(core.connection, before, after, now)
        )

    async def settings_changed_at(self, event: Event) -> datetime | None:
        return await self.store.run(
            lambda core: records.settings_changed_at(core.connection, event.event_id)
        )

    async def resend_all(self, event: Event, base: str) -> int:
        """The event changed: send every active invitee and confirmed registrant the news."""
        count = 0
        for invitee in await self.invitees(event):
            if not invitee.revoked:
                await self._send_invitation(event, invitee, base)
                count += 1
        for reg in await self.registrations(event):
            if reg.status is RegistrationStatus.CONFIRMED:
                await self.send_confirmation(event, reg, base)
                count += 1
        event_id = event.event_id
        await self.store.run(
            lambda core: records.mark_settings_changed(core.connection, event_id, None)
        )
        return count


def _replies(access: EventAccess, given: dict[str, str]) -> dict[str, str]:
    """The answers to the organiser's questions (keyed ``q0``, ``q1``, ... in form order) by
    question, checked: a required one answered, none too long."""
    replies: dict[str, str] = {}
    for index, field in enumerate(access.form_fields):
        answer = " ".join(given.get(f"q{index}", "").split())
        if field.required and not answer:
            raise DeskError(_("please answer: %(question)s") % {"question": field.label})
        if len(answer) > records.ANSWER_MAX_CHARS:
            limit = records.ANSWER_MAX_CHARS
            raise DeskError(
                _("the answer to %(question)s has at most %(max)d characters")
                % {"question": repr(field.label), "max": limit}
            )
        if answer:
            replies[field.label] = answer
    return replies


def registration_summary(registration: Registration) -> dict[str, Any]:
    """What a webhook says of a registration (no code: it is a credential)."""
    return {
        "registration_id": registration.registration_id,
        "event_id": registration.event_id,
        "name": registration.name,
        "email": registration.email,
        "seats": registration.seats,
        "status": registration.status.value,
        "amount_minor": registration.amount_minor,
        "currency": registration.currency,
        "provider": registration.provider.value,
    }
