"""What ticketing hands the room: a grant, or a typed refusal."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from webinar.rooms.roles import Capability, Role, capabilities


class AccessType(enum.StrEnum):
    OPEN = "open"
    PASSWORD = "password"
    TOKEN = "token"
    PAID = "paid"


class SecondDevice(enum.StrEnum):
    """What a single-use credential does when a second device enters with it."""

    TAKEOVER = "takeover"  # the new device gets in; the old one is told why and leaves
    REFUSE = "refuse"  # the new device is refused while the first one is in


class RefusalCode(enum.StrEnum):
    CREDENTIAL_REQUIRED = "credential-required"
    BAD_CREDENTIAL = "bad-credential"
    REVOKED = "revoked"
    NOT_CONFIRMED = "not-confirmed"
    OUTSIDE_WINDOW = "outside-window"
    BOOKING_EXPIRED = "booking-expired"
    TICKET_IN_USE = "ticket-in-use"
    GROUP_FULL = "group-full"
    RATE_LIMITED = "rate-limited"
    EVENT_CANCELLED = "event-cancelled"
    #: Every place of the event (its capacity) is taken: join-token entries count against it.
    ROOM_FULL = "room-full"
    # Signed join tokens (webinar.ticketing.join_tokens.TokenCode): the same texts.
    TOKEN_EXPIRED = "token-expired"
    TOKEN_BAD_SIGNATURE = "token-bad-signature"
    TOKEN_WRONG_EVENT = "token-wrong-event"
    TOKEN_INVALID = "token-invalid"
    #: The shared ticketing state (Redis, when workers share it) cannot be reached: nobody is
    #: let in on a decision that could not be made; retryable.
    UNAVAILABLE = "unavailable"


class Refusal(Exception):
    """Entry refused; ``message`` is for people, ``code`` for programs."""

    def __init__(
        self,
        code: RefusalCode,
        message: str,
        *,
        retry_after: int | None = None,
        opens: datetime | None = None,
        closes: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.opens = opens
        self.closes = closes


@dataclass(frozen=True, slots=True)
class Grant:
    """Who may enter as what, until when."""

    role: Role
    capabilities: frozenset[Capability]
    #: When the room must let go of this person (None: no end).
    expires_at: datetime | None = None
    #: A display name the ticket is bound to (invitee, registrant); None: the one typed.
    name: str | None = None
    #: The e-mail address the ticket was issued to (invitee, registrant), for attendance.
    email: str | None = None
    #: Which access was used: "key", "open", "password", "token", "code", "registration" (a
    #: registrant's personal link) or "jwt" (a signed join token).
    via: str = "open"
    #: Registration or invitee row the entry belongs to.
    registration_id: int | None = None
    invitee_id: int | None = None
    #: The personal ticket a ban of this person bans (an invitation, a one-seat reservation);
    #: None when the credential is shared (a password, a key, a group code).
    ticket_key: str | None = None
    #: The device slot held for a single-use or group credential; release it on leave.
    seat: object | None = field(default=None, compare=False)
    #: The place among the event's capacity held by a join-token attendee; release it too.
    place: object | None = field(default=None, compare=False)
    #: A join token's ``sub``: the organiser's own ID of this person.
    external_id: str | None = None
    #: Attendees are tracked per event so that cancelling it lets them go.
    event_id: str | None = None
    holder: object | None = field(default=None, compare=False)

    @classmethod
    def for_role(cls, role: Role, **kw: object) -> Grant:
        return cls(role=role, capabilities=capabilities(role), **kw)  # type: ignore[arg-type]
