"""The one entry point: may this credential enter this event, and as what?

:meth:`Ticketing.admit` checks an entry attempt against the event's access type and
returns a :class:`Grant` (role, capabilities, expiry) or raises a typed :class:`Refusal`.
Presenter and host keys work on every event; then:

- *open*: anyone enters as an attendee;
- *password*: the attendee password, or the presenter password (presenter role);
- *token*: an invitee's own token (bound to their name, one device at a time);
- *paid*: a confirmed reservation's code, inside the event's window; a single-use code
  admits one device at a time, a group code as many as the reservation's seats.

A registrant's personal link (``/e/<id>#pass=rp-…``, sent as the credential) works on every
event: it admits a confirmed registration by its name, like its code would on a paid event
(inside the code window there, as many devices as its seats); an open event that requires
registration admits nobody else (but key holders, invitees and signed join tokens).

An invitee's token (the personal link of an invitation) works on every event, whatever its
access type: the organiser invited that person by name (on a paid event it is a free ticket;
an open event that requires registration lets its invitees in too).

A signed join token (JWT, :mod:`.join_tokens`) works on every event, whatever its access
type: the organiser's backend vouches for the person, their name and role. It admits one
device at a time (its ``jti`` is the ticket, the event's second-device rule applies), and its
attendees count against the event's capacity (places left after registrations), like any
booking's.

Password hashes are verified off the event loop; every secret is compared in constant
time; failed attempts are rate-limited per client address and per event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from webinar.accounts import verify_password
from webinar.i18n import N_, _, gettext, ngettext
from webinar.ids import same_secret
from webinar.rooms.reasons import ByeReason
from webinar.rooms.roles import Role
from webinar.storage.store import Event, Store

from . import records
from .books import Attempts, Counted, LocalSeats, SeatBook, local_attempts
from .codes import looks_like_token, normalize_code, same
from .grants import AccessType, Grant, Refusal, RefusalCode, SecondDevice
from .join_tokens import JoinTokens, TokenCode, TokenRefusal
from .limiter import AttemptLimiter
from .records import EventAccess, RegistrationStatus
from .rules import BookingLimits, Window, booking_end, code_window
from .seats import Holder, Seats

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Ticketing:
    def __init__(
        self,
        store: Store,
        *,
        limits: BookingLimits | None = None,
        code_early: timedelta = timedelta(minutes=10),
        code_late: timedelta = timedelta(minutes=15),
        seat_grace: float = 60.0,
        attempts: AttemptLimiter | Attempts | None = None,
        seats: SeatBook | None = None,
        clock: Clock = _utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``attempts`` and ``seats`` default to in-memory books (one worker); give the Redis
        ones of :mod:`webinar.ticketing.shared` when several workers share the decisions."""
        self.store = store
        self.limits = limits or BookingLimits()
        self.code_early = code_early
        self.code_late = code_late
        self.seats: SeatBook = seats or LocalSeats(Seats(grace=seat_grace))
        self.limiter: Attempts = local_attempts(attempts)
        self.join_tokens = JoinTokens(store)
        self.clock = clock
        self._monotonic = monotonic
        #: Attendees (not key holders) in each event's room, by event ID.
        self._present: dict[str, dict[int, Holder]] = {}  # by id() of the holder
        #: With several workers: tells the others an event was cancelled (the bus).
        self.tell_others: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ windows

    def code_window(self, event: Event) -> Window:
        return code_window(
            event.starts_at,
            timedelta(minutes=event.duration_minutes),
            timedelta(minutes=event.join_window_minutes),
            early=self.code_early,
            late=self.code_late,
        )

    def lobby_window_seconds(self, event: Event) -> float:
        """How long before the start the room lets attendees in (code events: plus early)."""
        extra = self.code_early if event.access_type == AccessType.PAID else timedelta(0)
        return event.join_window_minutes * 60.0 + extra.total_seconds()

    def booking_end(self, event: Event) -> datetime:
        return booking_end(event.starts_at, event.created_at, self.limits)

    # ------------------------------------------------------------------ entry

    async def admit(
        self,
        event: Event,
        credential: str | None,
        *,
        client: str | None,
        client_key: str,
        holder: Holder,
        resumes: Callable[[Holder], bool] = lambda _old: False,
        join_token: str | None = None,
        resuming: bool = False,
    ) -> Grant:
        """Check one entry attempt; a :class:`Grant` or :class:`Refusal`.

        ``client`` is the address the attempt counts under in the rate limits; ``client_key``
        the device the browser says it is (its own choice: a hint, not a proof); ``resumes``
        tells which live holder this attempt resumes (see :meth:`Seats.claim`).
        ``join_token``: a signed join token, checked instead of ``credential``; ``resuming``:
        the attempt showed the resume token of a place still kept in the room, so a join
        token that expired meanwhile still lets its bearer back in.
        """
        now = self.clock()
        tick = self._monotonic()
        if join_token is not None:
            credential = None
        # The 144-bit keys cannot be guessed: checked before the rate limit, so a flood of
        # wrong codes never locks the host or a presenter out.
        if credential is not None:
            if event.host_key and same_secret(credential, event.host_key):
                return Grant.for_role(Role.HOST, via="key")
            if same_secret(credential, event.presenter_key):
                return Grant.for_role(Role.PRESENTER, via="key")
        # Counted before it is checked, so parallel attempts cannot all be checked at once.
        # An open event's attendee guesses nothing: not counted (an office arriving on the
        # hour behind one address must all get in).
        guesses = (
            credential is not None
            or join_token is not None
            or AccessType(event.access_type) is not AccessType.OPEN
        )
        attempt = (
            await self.limiter.acquire(client, event.event_id, self._monotonic)
            if guesses
            else self.limiter.uncounted()
        )
        try:
            grant = await self._check(
                _Attempt(
                    event,
                    EventAccess(event.event_id),
                    credential,
                    now,
                    client_key,
                    holder,
                    resumes,
                    join_token,
                    resuming,
                )
            )
        except _Wrong as wrong:
            await attempt.failed(tick)
            logger.info("entry refused for event %s: %s", event.event_id, wrong.refusal.code)
            raise wrong.refusal from None
        finally:
            await attempt.forgive()  # a right credential, or a refusal that was not a guess
        self._present.setdefault(event.event_id, {})[id(holder)] = holder
        return dataclasses.replace(grant, event_id=event.event_id, holder=holder)

    async def vouch(
        self,
        event: Event,
        credential: str | None,
        *,
        client: str | None,
        join_token: str | None = None,
    ) -> Grant:
        """Whether ``credential`` (or a signed ``join_token``) would admit its bearer to the
        event now, without entering: no device slot or place is taken and no check-in is
        written. For what an admitted person may fetch besides the room (the event's content,
        :mod:`webinar.http.content`). Rate-limited like :meth:`admit`; the same refusals."""
        if credential is not None and join_token is None:
            if event.host_key and same_secret(credential, event.host_key):
                return Grant.for_role(Role.HOST, via="key")
            if same_secret(credential, event.presenter_key):
                return Grant.for_role(Role.PRESENTER, via="key")
        if join_token is not None:
            credential = None
        tick = self._monotonic()
        guesses = (
            credential is not None
            or join_token is not None
            or AccessType(event.access_type) is not AccessType.OPEN
        )
        attempt = (
            await self.limiter.acquire(client, event.event_id, self._monotonic)
            if guesses
            else self.limiter.uncounted()
        )
        try:
            return await self._check(
                _Attempt(
                    event,
                    EventAccess(event.event_id),
                    credential,
                    self.clock(),
                    "",
                    _NOBODY,
                    lambda _old: False,
                    join_token,
                    vouch=True,
                )
            )
        except _Wrong as wrong:
            await attempt.failed(tick)
            raise wrong.refusal from None
        finally:
            await attempt.forgive()

    async def _check(self, attempt: _Attempt) -> Grant:
        event, credential = attempt.event, attempt.credential
        kind = AccessType(event.access_type)
        access = await self.store.run(
            lambda core: records.get_access(core.connection, event.event_id)
        )
        if access.cancelled_at is not None:
            raise Refusal(RefusalCode.EVENT_CANCELLED, _("the organiser cancelled this event"))
        attempt = dataclasses.replace(attempt, access=access)
        if attempt.join_token is not None:
            return await self._jwt(attempt, attempt.join_token)
        if credential is not None and records.looks_like_pass(credential):
            found = await self._registrant(event, credential)
            if found is not None:
                return await self._registered(attempt, found)
            # (a password may look like one, and so may an invitation's token, rarely)
            if kind is not AccessType.PASSWORD and not looks_like_token(credential):
                raise self._wrong(_("this personal link is not valid for this webinar"))
        if kind is not AccessType.TOKEN and credential is not None and looks_like_token(credential):
            invited = await self._invitation(attempt, credential)
            if invited is not None:
                return invited
        if kind is AccessType.OPEN:
            if credential is not None:
                raise self._wrong(_("the presenter key is not right"))
            if access.registration_required:
                raise Refusal(
                    RefusalCode.CREDENTIAL_REQUIRED,
                    _(
                        "this webinar needs registration: register, then open the personal"
                        " link from your confirmation e-mail"
                    ),
                )
            return Grant.for_role(Role.ATTENDEE, via="open")
        if kind is AccessType.PASSWORD:
            return await self._password(attempt)
        if kind is AccessType.TOKEN:
            return await self._token(attempt)
        return await self._code(attempt)

    def monotonic(self) -> float:
        """The clock the rate limits and device slots run on."""
        return self._monotonic()

    async def lookup(self, client: str | None) -> Counted:
        """Count a look-up of an event by its ID (rate-limited like a wrong credential):
        call ``failed`` on the result when there is no such event, else ``forgive``."""
        return await self.limiter.acquire(client, None, self._monotonic)

    async def holds(self, grant: Grant) -> bool:
        """Whether the grant still holds its device slot (another connection may have taken
        it over while this one was on its way into the room)."""
        return grant.seat is None or await self.seats.holds(grant.seat)

    @staticmethod
    def _wrong(message: str) -> _Wrong:
        return _Wrong(Refusal(RefusalCode.BAD_CREDENTIAL, message))

    def _check_booking(self, event: Event, now: datetime) -> datetime:
        end = self.booking_end(event)
        if now >= end:
            raise Refusal(
                RefusalCode.BOOKING_EXPIRED,
                _("this booking ended on %(end)s UTC; ask the organiser for a new one")
                % {"end": f"{end:%Y-%m-%d %H:%M}"},
                closes=end,
            )
        return end

    async def _password(self, attempt: _Attempt) -> Grant:
        credential = attempt.required(_("this webinar needs a password"))
        end = self._check_booking(attempt.event, attempt.now)
        presenter_hash, attendee_hash = (
            attempt.access.presenter_password_hash,
            attempt.access.attendee_password_hash,
        )
        if presenter_hash is not None and await _verify(credential, presenter_hash):
            return Grant.for_role(Role.PRESENTER, via="password")
        if attendee_hash is not None and await _verify(credential, attendee_hash):
            return Grant.for_role(Role.ATTENDEE, expires_at=end, via="password")
        raise self._wrong(_("the password is not right"))

    async def _token(self, attempt: _Attempt) -> Grant:
        credential = attempt.required(
            _("this webinar is by invitation: open the link in your invitation e-mail")
        )
        granted = await self._invitation(attempt, credential)
        if granted is None:
            raise self._wrong(_("this invitation is not valid for this webinar"))
        return granted

    async def _invitation(self, attempt: _Attempt, credential: str) -> Grant | None:
        """The grant of an invitee's token (None: no attendee of this event has it)."""
        event = attempt.event
        invitee = await self.store.run(
            lambda core: records.invitee_by_token(core.connection, event.event_id, credential)
        )
        if invitee is None or not same(invitee.token, credential):
            return None
        if invitee.revoked:
            raise Refusal(RefusalCode.REVOKED, _("this invitation was withdrawn by the organiser"))
        end = self._check_booking(event, attempt.now)
        if attempt.vouch:
            return Grant.for_role(Role.ATTENDEE, expires_at=end, via="token")
        seat = await self._claim(attempt, f"inv:{invitee.invitee_id}", 1)
        return Grant.for_role(
            Role.ATTENDEE,
            expires_at=end,
            name=invitee.name,
            email=invitee.email,
            via="token",
            invitee_id=invitee.invitee_id,
            ticket_key=f"invitee:{invitee.invitee_id}",
            seat=seat,
        )

    async def _registrant(self, event: Event, credential: str) -> records.Registration | None:
        """The registration of the event whose personal link has ``credential``."""
        found = await self.store.run(
            lambda core: records.registration_by_pass(core.connection, event.event_id, credential)
        )
        if found is None or not same(found.join_pass or "", credential):
            return None
        return found

    async def whose_pass(
        self, event: Event, credential: str, *, client: str | None
    ) -> records.Registration:
        """The registration a personal link belongs to, for the room page to greet its
        holder by name before they enter (rate-limited like an entry: a wrong one counts);
        a :class:`Refusal` when it is no link of this event's."""
        tick = self._monotonic()
        attempt = await self.limiter.acquire(client, event.event_id, self._monotonic)
        try:
            found = (
                await self._registrant(event, credential)
                if records.looks_like_pass(credential)
                else None
            )
            if found is None:
                await attempt.failed(tick)
                raise Refusal(
                    RefusalCode.BAD_CREDENTIAL,
                    _("this personal link is not valid for this webinar"),
                )
            return found
        finally:
            await attempt.forgive()

    async def _registered(self, attempt: _Attempt, registration: records.Registration) -> Grant:
        """Entry by a registrant's personal link: their confirmed registration, by name."""
        event, now = attempt.event, attempt.now
        if registration.status is not RegistrationStatus.CONFIRMED:
            raise Refusal(RefusalCode.NOT_CONFIRMED, _not_admitted(registration.status))
        end: datetime | None = None
        if event.access_type == AccessType.PAID:
            window = self.code_window(event)
            if not window.contains(now):
                raise _outside(window, now)
            end = window.closes
        elif event.access_type != AccessType.OPEN:
            end = self._check_booking(event, now)
        registration_id = registration.registration_id
        if attempt.vouch:
            return Grant.for_role(Role.ATTENDEE, expires_at=end, via="registration")
        first = await self.store.run(
            lambda core: records.check_in(core.connection, registration_id, now)
        )
        if first:
            logger.info("registrant %s of event %s checked in", registration_id, event.event_id)
        seat = await self._claim(attempt, f"reg:{registration_id}", registration.seats)
        return Grant.for_role(
            Role.ATTENDEE,
            expires_at=end,
            name=registration.name,
            email=registration.email,
            via="registration",
            registration_id=registration_id,
            ticket_key=f"registration:{registration_id}" if registration.seats == 1 else None,
            seat=seat,
        )

    async def _code(self, attempt: _Attempt) -> Grant:
        code = normalize_code(attempt.required(_("enter your reservation code")))
        event, now = attempt.event, attempt.now
        registration = (
            None
            if code is None
            else await self.store.run(
                lambda core: records.registration_by_code(core.connection, event.event_id, code)
            )
        )
        if code is None or registration is None or not same(registration.code or "", code):
            raise self._wrong(_("this reservation code is not valid for this event"))
        if registration.status is not RegistrationStatus.CONFIRMED:
            raise Refusal(
                RefusalCode.NOT_CONFIRMED,
                _not_admitted(registration.status),
            )
        window = self.code_window(event)
        if not window.contains(now):
            raise _outside(window, now)
        registration_id = registration.registration_id
        if attempt.vouch:
            return Grant.for_role(Role.ATTENDEE, expires_at=window.closes, via="code")
        # The check-in is written before the place is taken (in memory, where it may evict
        # someone): a failed write leaves no place held. A first entry never finds its places
        # taken, so a check-in is not written for an entry that is then refused.
        first = await self.store.run(
            lambda core: records.check_in(core.connection, registration_id, now)
        )
        if first:
            logger.info("reservation %s of event %s checked in", registration_id, event.event_id)
        seat = await self._claim(attempt, f"reg:{registration_id}", registration.seats)
        return Grant.for_role(
            Role.ATTENDEE,
            expires_at=window.closes,
            name=registration.name,
            email=registration.email,
            via="code",
            registration_id=registration_id,
            # a group code is shared by its group: banning one of them bans that one only
            ticket_key=f"registration:{registration_id}" if registration.seats == 1 else None,
            seat=seat,
        )

    async def _jwt(self, attempt: _Attempt, token: str) -> Grant:
        event = attempt.event
        try:
            claims = await self.join_tokens.check(
                event, token, attempt.now, allow_expired=attempt.resuming
            )
        except TokenRefusal as refused:
            refusal = Refusal(RefusalCode(refused.code.value), refused.message)
            if refused.code in (TokenCode.BAD_SIGNATURE, TokenCode.INVALID):
                raise _Wrong(refusal) from None  # a forged or garbled token: a guess
            raise refusal from None
        role = Role.PRESENTER if claims.role == "presenter" else Role.ATTENDEE
        # Attendees keep the rules of every booking: its end, and the event's places.
        end = self._check_booking(event, attempt.now) if role is Role.ATTENDEE else None
        if attempt.vouch:
            return Grant.for_role(role, expires_at=end, via="jwt")
        seat = await self._claim(attempt, claims.seat_ticket, 1)
        place = None
        if role is Role.ATTENDEE and attempt.access.capacity is not None:
            try:
                place = await self._take_place(attempt, attempt.access.capacity)
            except BaseException:
                self.seats.release(seat, self._monotonic(), dropped=False)
                raise
        logger.info("join token %s of key %s admitted", claims.jti[:40], claims.key_id)
        return Grant.for_role(
            role,
            expires_at=end,
            name=claims.name,
            email=claims.email,
            via="jwt",
            ticket_key=claims.ticket_key,
            seat=seat,
            place=place,
            external_id=claims.sub,
        )

    async def _take_place(self, attempt: _Attempt, capacity: int) -> object:
        """One of the event's places not sold to registrations, held while the attendee is
        in (kept for the grace after a lost connection, like a device slot)."""
        event_id = attempt.event.event_id
        sold = await self.store.run(lambda core: records.places_taken(core.connection, event_id))
        try:
            return await self.seats.claim(
                f"places:{event_id}",
                capacity=max(0, capacity - sold),
                policy=SecondDevice.REFUSE,
                client_key=attempt.client_key,
                holder=attempt.holder,
                now=self._monotonic(),
                resumes=attempt.resumes,
            )
        except Refusal as refusal:
            if refusal.code not in (RefusalCode.GROUP_FULL, RefusalCode.TICKET_IN_USE):
                raise
            raise Refusal(
                RefusalCode.ROOM_FULL,
                ngettext(
                    "the event's %(num)d place is taken right now",
                    "all %(num)d places of this event are taken right now",
                    capacity,
                )
                % {"num": capacity},
            ) from None

    async def _claim(self, attempt: _Attempt, ticket: str, capacity: int) -> object:
        return await self.seats.claim(
            ticket,
            capacity=capacity,
            policy=attempt.access.second_device,
            client_key=attempt.client_key,
            holder=attempt.holder,
            now=self._monotonic(),
            resumes=attempt.resumes,
        )

    async def end_ticket(
        self, *, registration_id: int | None = None, invitee_id: int | None = None
    ) -> int:
        """A reservation was cancelled or an invitation revoked: whoever is in leaves now
        (on every worker, with shared seats)."""
        ticket = f"reg:{registration_id}" if registration_id is not None else f"inv:{invitee_id}"
        return await self.seats.evict_all(ticket, ByeReason.REVOKED)

    def end_event(self, event_id: str, *, everywhere: bool = True) -> int:
        """The event was cancelled: every attendee in its room leaves now (on every worker;
        ``everywhere=False``: only here, told by another worker)."""
        if everywhere and self.tell_others is not None:
            self.tell_others(event_id)
        holders = self._present.pop(event_id, {})
        for holder in list(holders.values()):
            holder.evict(ByeReason.CANCELLED)
        return len(holders)

    def release(self, grant: Grant, *, dropped: bool) -> None:
        """The grant's holder left (or lost the connection): free its device slot."""
        if grant.seat is not None:
            self.seats.release(grant.seat, self._monotonic(), dropped=dropped)
        if grant.place is not None:
            self.seats.release(grant.place, self._monotonic(), dropped=dropped)
        if grant.event_id is not None:
            present = self._present.get(grant.event_id)
            if present is not None:
                present.pop(id(grant.holder), None)
                if not present:
                    del self._present[grant.event_id]


async def _verify(password: str, stored: str) -> bool:
    """scrypt is slow on purpose: off the event loop."""
    ok: bool = await asyncio.to_thread(verify_password, password, stored)
    return ok


@dataclasses.dataclass(frozen=True, slots=True)
class _Attempt:
    """One entry attempt at a password, token or code event, as each of their checks sees it."""

    event: Event
    access: EventAccess
    credential: str | None
    now: datetime
    client_key: str
    holder: Holder
    resumes: Callable[[Holder], bool]
    join_token: str | None = None
    resuming: bool = False
    #: Only check the credential (Ticketing.vouch): take no place, write no check-in.
    vouch: bool = False

    def required(self, message: str) -> str:
        """The credential; a :class:`Refusal` saying ``message`` when none was given."""
        if self.credential is None:
            raise Refusal(RefusalCode.CREDENTIAL_REQUIRED, message)
        return self.credential


#: Why a reservation that is not confirmed admits nobody, per status.
_NOT_ADMITTED: dict[RegistrationStatus, str] = {
    RegistrationStatus.PENDING: N_("this reservation is pending; it does not admit anyone"),
    RegistrationStatus.REJECTED: N_("this reservation is rejected; it does not admit anyone"),
    RegistrationStatus.CANCELLED: N_("this reservation is cancelled; it does not admit anyone"),
    RegistrationStatus.WAITLISTED: N_(
        "this registration is on the waiting list; you get an e-mail when a place frees"
    ),
}


def _not_admitted(status: RegistrationStatus) -> str:
    found = _NOT_ADMITTED.get(status)
    if found is not None:
        return gettext(found)
    return _("this reservation is %(status)s; it does not admit anyone") % {"status": status.value}


class _Nobody:
    """The holder of a vouching attempt: it never holds a place, so nothing evicts it."""

    def evict(self, reason: ByeReason) -> None:
        pass


_NOBODY = _Nobody()


class _Wrong(Exception):
    """A wrong credential: counted by the rate limiter."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def _outside(window: Window, now: datetime) -> Refusal:
    opens, closes = window.opens, window.closes
    span = ""
    if opens is not None and closes is not None:
        same_day = opens.date() == closes.date()
        end_format = "%H:%M" if same_day else "%Y-%m-%d %H:%M"
        span = _("%(opens)s to %(closes)s UTC") % {
            "opens": f"{opens:%Y-%m-%d %H:%M}",
            "closes": closes.strftime(end_format),
        }
    if opens is not None and now < opens:
        message = _("too early: this code works from %(span)s") % {"span": span}
    else:
        message = _("this event is over: the code worked from %(span)s") % {"span": span}
    return Refusal(RefusalCode.OUTSIDE_WINDOW, message, opens=opens, closes=closes)
