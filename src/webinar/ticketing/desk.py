"""The ticket desk: what organisers and attendees do with tickets, for the dashboard and
the JSON API alike (invite, revoke, resend; register, confirm, reject, cancel; payments)."""

from __future__ import annotations

import asyncio
import logging
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from webinar import i18n
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.links import attendee_path, presenter_path
from webinar.storage import branding
from webinar.storage.store import Event, Store

from . import imports, mailing, records
from .calendar import CANCEL, REQUEST, attach_calendar, event_calendar
from .codes import format_code
from .gate import Ticketing
from .mail import Mailer, MailError, Sent
from .mailing import Kind, State
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
from .records import (
    EventAccess,
    Invitee,
    PaymentProvider,
    Registration,
    RegistrationStatus,
)

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


def language_of(
    event: Event, registration: Registration | None = None, invitee: Invitee | None = None
) -> str | None:
    """The language of an e-mail: the one the registrant registered in (or the invitee's own,
    from the CSV they came from), else the event's (the organiser's choice), else None
    (English)."""
    if registration is not None and registration.language:
        return registration.language
    if invitee is not None and invitee.language:
        return invitee.language
    return event.language


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom a queued message goes to, and what it says to them."""

    to: str
    name: str
    language: str | None
    #: The person's own way in: an invitee's or a registrant's personal link, a presenter's
    #: the event's presenter link.
    link: str
    presenter: bool = False
    #: A paid registration's reservation code (formatted).
    code: str | None = None
    #: Whether the person was given the event's calendar entry (a cancellation's .ics
    #: removes it; nobody else needs one).
    has_calendar: bool = True
    paid: bool = False
    invitee: Invitee | None = None


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
    #: Called when messages were queued in the outbox (its sender starts at once).
    wake_outbox: Callable[[], None] = lambda: None
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

    async def _check_open(self, event: Event) -> None:
        access = await self.access(event.event_id)
        if access.cancelled_at is not None:
            raise DeskError(_("the organiser cancelled this event"))

    async def invite(
        self,
        event: Event,
        name: str,
        email: str,
        base: str,
        *,
        language: str | None = None,
    ) -> Invitee:
        """Invite one person, whatever the event's access type: a personal link that admits
        them by name (presenters are the event team's, webinar.http.team). The invitation is
        queued in the outbox and sent at once; MailError when the SMTP server refused it (the
        invitee is saved and the outbox tries again after a back-off)."""
        await self._check_open(event)
        now = self.ticketing.clock()
        invitee, item_id = await self.store.run(
            lambda core: mailing.invite(
                core.connection,
                event,
                name,
                email,
                now,
                language=language,
                base=base,
                claimed=True,  # sent here and now, not by the outbox's sender as well
            )
        )
        await self.send_queued(item_id, base, raise_errors=True, claimed=True)
        return await self._invitee(event, invitee.invitee_id)

    async def _plan(
        self,
        event: Event,
        *,
        registration_id: int | None = None,
        invitee_id: int | None = None,
        presenter_id: int | None = None,
    ) -> None:
        """Plan a person's reminder at the event's reminder time (none when the event sends
        none, or is less than 6 hours away: the message that booked them is then the one)."""
        now = self.ticketing.clock()
        await self.store.run(
            lambda core: mailing.plan_reminder(
                core.connection,
                event,
                now,
                registration_id=registration_id,
                invitee_id=invitee_id,
                presenter_id=presenter_id,
            )
        )

    async def plan_presenter_reminder(self, event: Event, presenter_id: int) -> None:
        """A presenter of the event's team was sent the presenter link: they are reminded
        like everyone else (and told when the event moves or is cancelled)."""
        await self._plan(event, presenter_id=presenter_id)

    async def resend_invitation(self, event: Event, invitee_id: int, base: str) -> Sent:
        invitee = await self._invitee(event, invitee_id)
        if invitee.revoked:
            raise DeskError(_("this invitation was revoked; invite the person again instead"))
        await self._check_open(event)
        item_id = await self.store.run(
            lambda core: mailing.queue_invitation(core.connection, invitee, base, claimed=True)
        )
        sent = await self.send_queued(item_id, base, raise_errors=True, claimed=True)
        if sent is None:  # revoked meanwhile
            raise DeskError(_("this invitation was revoked; invite the person again instead"))
        return sent

    async def revoke(self, event: Event, invitee_id: int) -> Invitee:
        await self._invitee(event, invitee_id)
        await self.store.run(lambda core: records.revoke_invitee(core.connection, invitee_id))
        await self.ticketing.end_ticket(invitee_id=invitee_id)
        return await self._invitee(event, invitee_id)

    # ------------------------------------------------------------------ CSV imports

    async def preview_import(
        self,
        event: Event,
        data: bytes,
        *,
        file_name: str = "",
    ) -> mailing.InviteImport:
        """Read a CSV of invitees and keep what it would do (nothing is sent yet);
        :class:`imports.FileRefused` (a ValueError) when the file as a whole cannot be used."""
        await self._check_open(event)
        event_id = event.event_id
        invited = await self.store.run(
            lambda core: mailing.invited_addresses(core.connection, event_id)
        )
        language = i18n.current()
        parsed = await asyncio.to_thread(_parse_in, language, data, invited)
        return await self.store.run(
            lambda core: mailing.save_import(core.connection, event_id, parsed, file_name=file_name)
        )

    async def invite_import(self, event: Event, import_id: str) -> mailing.InviteImport:
        found = await self.store.run(
            lambda core: mailing.get_import(core.connection, event.event_id, import_id)
        )
        if found is None:
            raise DeskError(_("this import is not there any more; upload the file again"))
        return found

    async def send_import(
        self, event: Event, import_id: str, base: str | None = None
    ) -> mailing.ImportSent:
        """Invite a previewed file's good rows (once: a second send is refused) and queue
        their invitations (their links under ``base``); the outbox sends them, a restart in
        the middle notwithstanding."""
        await self._check_open(event)
        now = self.ticketing.clock()
        try:
            result = await self.store.run(
                lambda core: mailing.send_import(core.connection, event, import_id, now, base)
            )
        except mailing.ImportGone:
            raise DeskError(
                _("this file was sent already, or its preview expired; upload it again")
            ) from None
        logger.info(
            "event %s: %d invitations from a CSV import queued", event.event_id, result.invited
        )
        self.wake_outbox()
        return result

    # ------------------------------------------------------------------ the outbox

    async def mail_progress(self, event: Event) -> mailing.Progress:
        return await self.store.run(lambda core: mailing.progress(core.connection, event.event_id))

    async def invitation_states(self, event: Event) -> dict[int, mailing.OutboxItem]:
        """The latest invitation message of each invitee (queued, sent, failed ...)."""
        return await self.store.run(
            lambda core: mailing.invitation_states(core.connection, event.event_id)
        )

    async def retry_failed(self, event: Event) -> int:
        """Try the event's failed messages again, afresh; how many."""
        count = await self.store.run(
            lambda core: mailing.retry_failed(core.connection, event.event_id)
        )
        if count:
            self.wake_outbox()
        return count

    async def send_queued(
        self, item_id: int, base: str, *, raise_errors: bool = False, claimed: bool = False
    ) -> Sent | None:
        """Send one queued message if nobody else is: claimed, its Message-ID recorded,
        handed to the SMTP server, marked sent. None when it was not this call's to send or
        there was nothing to send (the person was revoked, the event deleted). A failure puts
        it back for a retry after a back-off (``raise_errors``: and raises it: MailError, or
        DeskError). Cut short (a stop), it stays ``sending`` and goes out again at the next
        start with the same Message-ID. ``claimed``: it was queued as this call's to send."""
        store = self.store
        if not claimed and not await store.run(
            lambda core: mailing.claim(core.connection, item_id)
        ):
            return None
        item = await store.run(lambda core: mailing.get_item(core.connection, item_id))
        assert item is not None
        sent: Sent | None = None
        failure: Exception | None = None
        try:
            sent = await self._deliver(item, item.base_url or base)
        except (MailError, DeskError) as exc:
            failure = exc
        except Exception as exc:  # a bug must not leave it claimed for ever: retried later
            logger.exception("outbox message %s could not be made", item_id)
            failure = exc
        now = self.ticketing.clock()
        state = State.PENDING if failure else (State.SENT if sent else State.SKIPPED)
        error = str(failure) if failure else None
        final = await store.run(
            lambda core: mailing.finish(core.connection, item_id, state, now, error)
        )
        if failure is not None:
            logger.warning("outbox message %s (%s) not sent: %s", item_id, item.kind, failure)
            if final is State.FAILED:
                logger.error("outbox message %s given up after %d tries", item_id, item.attempts)
            if raise_errors:
                raise failure
        return sent

    async def _deliver(self, item: mailing.OutboxItem, base: str) -> Sent | None:
        event = await self.store.get_event(item.event_id)
        if event is None:
            return None
        person = await self._recipient(event, item, base)
        if person is None:
            return None
        item_id = item.item_id
        fresh = self.mailer.new_message_id(f"{item.kind.value}.{item_id}")
        to = person.to
        message_id = await self.store.run(
            lambda core: mailing.message_id_for(core.connection, item_id, to, fresh)
        )
        calendar: str | None = REQUEST
        if item.kind is Kind.INVITATION:
            template = "invitation"
        elif item.kind is Kind.UPDATE:
            template = "updated"
        else:
            template, calendar = "cancelled", CANCEL if person.has_calendar else None
        sent = await self._mail(
            template,
            event,
            person.to,
            person.name,
            language=person.language,
            calendar=calendar,
            message_id=message_id,
            agenda=event.agenda,
            link=person.link,
            code=person.code,
            role="presenter" if person.presenter else "attendee",
            paid=person.paid,
            access_type=event.access_type,
        )
        if item.kind is Kind.INVITATION and person.invitee is not None:
            invitee_id = person.invitee.invitee_id
            await self.store.run(
                lambda core: records.mark_invitee_sent(core.connection, invitee_id)
            )
        return sent

    def invitee_link(self, event: Event, invitee: Invitee, base: str) -> str:
        """An invitee's own way in: a personal link (the token rides in the fragment: it never
        reaches a server log)."""
        return f"{base}{attendee_path(event)}#token={invitee.token}"

    async def _recipient(
        self, event: Event, item: mailing.OutboxItem, base: str
    ) -> Recipient | None:
        """Whom a queued message goes to now; None when nobody should get it any more."""
        if item.invitee_id is not None:
            invitee_id = item.invitee_id
            found = await self.store.run(
                lambda core: records.get_invitee(core.connection, invitee_id)
            )
            if found is None or found.event_id != event.event_id:
                return None
            if found.revoked and item.kind is not Kind.CANCEL:
                return None
            return Recipient(
                to=found.email,
                name=found.name,
                language=language_of(event, invitee=found),
                link=self.invitee_link(event, found, base),
                invitee=found,
            )
        if item.presenter_id is not None:
            presenter_id = item.presenter_id
            contact = await self.store.run(
                lambda core: mailing.presenter_contact(core.connection, presenter_id)
            )
            if contact is None or contact.event_id != event.event_id:
                return None  # removed from the team
            return Recipient(
                to=contact.email,
                name=contact.name,
                language=event.language,
                link=f"{base}{presenter_path(event)}",
                presenter=True,
            )
        if item.registration_id is None:
            return None
        registration_id = item.registration_id
        reg = await self.store.run(
            lambda core: records.get_registration(core.connection, registration_id)
        )
        if reg is None or reg.event_id != event.event_id or not reg.email:
            return None  # erased (the event's personal data was deleted)
        wanted = (
            RegistrationStatus.CANCELLED
            if item.kind is Kind.CANCEL
            else RegistrationStatus.CONFIRMED
        )
        if reg.status is not wanted:
            return None
        return Recipient(
            to=reg.email,
            name=reg.name,
            language=language_of(event, reg),
            link=f"{base}{attendee_path(event)}"
            if item.kind is Kind.CANCEL  # its link works no more
            else self.personal_link(event, await self._with_pass(reg), base),
            code=format_code(reg.code) if reg.code and item.kind is Kind.UPDATE else None,
            has_calendar=reg.confirmed_at is not None,
            paid=reg.amount_minor > 0,
        )

    # ------------------------------------------------------------------ e-mails

    async def calendar_file(
        self,
        event: Event,
        *,
        to: str | None = None,
        name: str | None = None,
        url: str | None = None,
        language: str | None = None,
        method: str = REQUEST,
    ) -> bytes | None:
        """The event's current ``.ics`` (its stored SEQUENCE) for ``to``; None for an event
        without a start."""
        event_id = event.event_id
        sequence = await self.store.run(
            lambda core: mailing.calendar_sequence(core.connection, event_id)
        )
        return calendar_for(
            event,
            sequence=sequence,
            organizer=self.mailer.config.from_address,
            to=to,
            name=name,
            url=url,
            language=language,
            method=method,
        )

    async def attach_event_calendar(
        self,
        message: EmailMessage,
        event: Event,
        *,
        url: str | None = None,
        name: str | None = None,
        language: str | None = None,
        method: str = REQUEST,
    ) -> bool:
        """Attach the event's current calendar entry to any message about it: an ``.ics``
        with the same UID in every message about the event and its stored SEQUENCE (so a
        calendar updates the entry it has), the recipient from ``To`` as its attendee, ``url``
        (their own link) as its place. False when the event has no start (nothing to attach).
        ``method``: ``calendar.REQUEST`` (add or update) or ``calendar.CANCEL`` (remove)."""
        ics = await self.calendar_file(
            event,
            to=str(message["To"]),
            name=name,
            url=url,
            language=language or str(message.get("Content-Language") or "") or None,
            method=method,
        )
        if ics is None:
            return False
        attach_ics(message, ics, method=method)
        return True

    def compose(
        self,
        template: str,
        event: Event,
        to: str,
        name: str,
        *,
        language: str | None,
        message_id: str | None = None,
        **context: Any,
    ) -> EmailMessage:
        """One of the event's e-mails to one person, in ``language``, not sent yet; every
        template gets the event, its display ID, its start (``starts_at``, None when it has
        no fixed time) and its time zone (``zone``) besides ``context``, and formats times and
        prices itself (``|datetime(zone)``, ``|price(currency)``) in the recipient's
        language."""
        return self.mailer.compose(
            template,
            to,
            language=language,
            message_id=message_id,
            name=name,
            event=event,
            event_id=format_event_id(event.event_id),
            starts_at=event.starts_at,
            zone=mail_zone(event),
            **context,
        )

    async def brand(self, event: Event) -> branding.Brand:
        """The event's branding for its e-mails (its settings over its organiser's)."""
        event_id, owner_id = event.event_id, event.owner_id
        return await self.store.run(
            lambda core: branding.sql_brand(core.connection, event_id, owner_id)
        )

    async def _mail(
        self,
        template: str,
        event: Event,
        to: str,
        name: str,
        *,
        language: str | None,
        calendar: str | None = None,
        message_id: str | None = None,
        **context: Any,
    ) -> Sent:
        """Compose (:meth:`compose`) and send. ``calendar``: attach the event's current
        ``.ics`` with that method (``calendar.REQUEST`` or ``calendar.CANCEL``; the context's
        ``link`` is its URL); None: no calendar file."""
        # the templates mention the calendar file when there is one
        context.setdefault("ics", calendar is not None and event.starts_at is not None)
        if "brand" not in context:
            context["brand"] = await self.brand(event)
            link = context.get("link")
            context["brand_origin"] = _origin(link) if isinstance(link, str) else None
        message = self.compose(
            template, event, to, name, language=language, message_id=message_id, **context
        )
        if calendar is not None:
            link = context.get("link")
            await self.attach_event_calendar(
                message,
                event,
                url=link if isinstance(link, str) else None,
                name=name,
                language=language,
                method=calendar,
            )
        return await self.mailer.send(message)

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
        """One of a registrant's e-mails with the event's current calendar entry attached
        (its URL the person's own link), in the language they registered in."""
        return await self._mail(
            template,
            event,
            registration.email,
            registration.name,
            language=language_of(event, registration),
            calendar=REQUEST,
            link=link,
            **context,
        )

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
                # a confirmed person had the event's calendar entry: this one removes it
                calendar=CANCEL
                if status is RegistrationStatus.CANCELLED and ended.confirmed_at is not None
                else None,
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

    async def mail_settings(self, event: Event) -> mailing.MailSettings:
        """The event's calendar SEQUENCE and reminder time."""
        return await self.store.run(
            lambda core: mailing.get_settings(core.connection, event.event_id)
        )

    async def reminder_minutes(self, event: Event) -> int:
        """How long before the start the event's reminders go out (0: none)."""
        settings = await self.store.run(
            lambda core: mailing.get_settings(core.connection, event.event_id)
        )
        return settings.reminder_minutes

    async def set_reminder_minutes(self, event: Event, minutes: int) -> None:
        """When the event's reminders go out (0: none); ValueError outside 0 to a week."""
        now = self.ticketing.clock()
        await self.store.run(
            lambda core: mailing.set_reminder_minutes(core.connection, event, minutes, now)
        )

    async def send_reminder(self, reminder: records.Reminder, base: str) -> str:
        """Send one claimed reminder, with the event's calendar entry; the state it ends in
        (sent, skipped). Its Message-ID is recorded before the send, and a retry to the same
        address reuses it."""
        event = await self.store.get_event(reminder.event_id)
        if event is None:
            return "skipped"
        access = await self.access(event.event_id)
        if access.cancelled_at is not None:
            return "skipped"
        if reminder.registration_id is not None:
            reg = await self.registration(event, reminder.registration_id)
            if reg.status is not RegistrationStatus.CONFIRMED or not reg.email:
                return "skipped"
            to, name = reg.email, reg.name
            code: str | None = format_code(reg.code) if reg.code else None
            link = self.personal_link(event, await self._with_pass(reg), base)
            language = language_of(event, reg)
            role = "attendee"
        elif reminder.invitee_id is not None:
            invitee = await self._invitee(event, reminder.invitee_id)
            if invitee.revoked:
                return "skipped"
            to, name, code = invitee.email, invitee.name, None
            link = self.invitee_link(event, invitee, base)
            language = language_of(event, invitee=invitee)
            role = "attendee"
        elif reminder.presenter_id is not None:
            presenter_id = reminder.presenter_id
            contact = await self.store.run(
                lambda core: mailing.presenter_contact(core.connection, presenter_id)
            )
            if contact is None or contact.event_id != event.event_id:
                return "skipped"
            to, name, code = contact.email, contact.name, None
            link = f"{base}{presenter_path(event)}"
            language = event.language
            role = "presenter"
        else:
            return "skipped"
        rid = reminder.reminder_id
        fresh = self.mailer.new_message_id(f"reminder.{rid}")
        message_id = await self.store.run(
            lambda core: records.reminder_message_id(core.connection, rid, to, fresh)
        )
        minutes = await self.reminder_minutes(event)
        await self._mail(
            "reminder",
            event,
            to,
            name,
            language=language,
            calendar=REQUEST,
            code=code,
            link=link,
            role=role,
            minutes=minutes or mailing.DEFAULT_REMINDER_MINUTES,
            message_id=message_id,
        )
        return "sent"

    # ------------------------------------------------------------------ cancelling

    async def cancel_event(self, event: Event, base: str | None = None) -> int:
        """Cancel the event: attendees are refused from now on; every pending or confirmed
        registration is cancelled and every active invitation revoked (their tickets stop
        working, whoever is in the room leaves), and each of those people is sent the
        cancellation with a calendar file that removes the entry (``METHOD:CANCEL``), queued
        in the outbox. How many people are told."""
        now = self.ticketing.clock()
        try:
            done = await self.store.run(
                lambda core: mailing.cancel_event(core.connection, event, now, base)
            )
        except mailing.AlreadyCancelled:
            raise DeskError(_("this event is cancelled already")) from None
        logger.info("event %s cancelled by its organiser", event.event_id)
        self.ticketing.end_event(event.event_id)
        for reg in done.registrations:
            await self.ticketing.end_ticket(registration_id=reg.registration_id)
            self._tell("registration.cancelled", reg)
        for invitee_id in done.invitee_ids:
            await self.ticketing.end_ticket(invitee_id=invitee_id)
        self.wake_outbox()
        return done.told

    # ------------------------------------------------------------------ settings changed

    async def event_changed(self, before: Event, after: Event) -> int:
        """The event's settings were saved: reminders follow a moved start; when its start or
        length changed, everyone told is sent an update with the calendar entry's next
        SEQUENCE (queued; how many is returned); after a new title only, they are offered a
        resend (``settings_changed_at``)."""
        now = self.ticketing.clock()
        count = await self.store.run(
            lambda core: records.note_event_change(core.connection, before, after, now)
        )
        if count:
            logger.info("event %s moved: %d updates queued", after.event_id, count)
            self.wake_outbox()
        return count

    async def settings_changed_at(self, event: Event) -> datetime | None:
        return await self.store.run(
            lambda core: records.settings_changed_at(core.connection, event.event_id)
        )

    async def resend_all(self, event: Event, base: str) -> int:
        """Send every active invitee, confirmed registrant and presenter the event's current
        details and calendar entry (queued in the outbox); how many."""
        await self._check_open(event)
        event_id = event.event_id

        def queue(core: Any) -> int:
            with mailing.atomic(core.connection):
                count = mailing.queue_updates(core.connection, event_id, base)
                records.mark_settings_changed(core.connection, event_id, None)
            return count

        count = await self.store.run(queue)
        self.wake_outbox()
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


def calendar_for(
    event: Event,
    *,
    sequence: int,
    organizer: str,
    to: str | None = None,
    name: str | None = None,
    url: str | None = None,
    language: str | None = None,
    method: str = REQUEST,
) -> bytes | None:
    """The event's ``.ics`` for one recipient, its description (the link, the agenda) in
    ``language``."""
    with i18n.using(language):
        description = "\n\n".join(
            part
            for part in (
                _("Join the webinar: %(link)s") % {"link": url} if url else "",
                event.agenda.strip(),
            )
            if part
        )
    return event_calendar(
        event,
        sequence=sequence,
        organizer=organizer,
        attendee=to,
        attendee_name=name,
        url=url,
        description=description,
        method=method,
    )


def attach_ics(message: EmailMessage, ics: bytes, *, method: str = REQUEST) -> None:
    """:func:`calendar.attach_calendar`, keeping the message's ``Content-Language`` at its
    top (making it multipart/mixed moves every ``Content-*`` header to the inner part)."""
    language = message["Content-Language"]
    attach_calendar(message, ics, method=method)
    if language is not None and message["Content-Language"] is None:
        message["Content-Language"] = language


def _parse_in(language: str, data: bytes, invited: frozenset[str]) -> imports.ParsedFile:
    """Parse an import in a worker thread, its texts in the organiser's language."""
    with i18n.using(language):
        return imports.parse_invitees(data, invited=invited)


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


def _origin(link: str) -> str | None:
    """``scheme://host[:port]`` of an absolute link: where the e-mail's images are fetched."""
    scheme, sep, rest = link.partition("://")
    if not sep or scheme not in ("http", "https"):
        return None
    return f"{scheme}://{rest.split('/', 1)[0]}"
