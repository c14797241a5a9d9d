"""Device slots of single-use and group credentials: pure bookkeeping, time passed in.

A single-use credential has one slot, a group code as many as its reservation's seats.
A slot is held by one live connection: the client key a browser sends is its own choice, so
two live connections never share a slot, whatever keys they send. A dropped connection keeps
its slot for ``grace`` seconds so that only its own device (same client key) can take it
back, then the slot is free; a resume of a live connection takes that connection's slot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from webinar.i18n import _, ngettext
from webinar.rooms.reasons import ByeReason

from .grants import Refusal, RefusalCode, SecondDevice


def in_use_message() -> str:
    """The refusal of a single-use credential held by another device (language in effect)."""
    return _(
        "this code or invitation is in use on another device; leave there first"
        " (or wait a minute after a lost connection)"
    )


def group_full_message(capacity: int) -> str:
    """The refusal of a group code whose places are all taken (language in effect)."""
    return ngettext(
        "the %(num)d place of this group code is in use right now",
        "all %(num)d places of this group code are in use right now",
        capacity,
    ) % {"num": capacity}


class Holder(Protocol):
    def evict(self, reason: ByeReason) -> None:
        """Leave the room now, telling the person ``reason``."""


@dataclass(eq=False, slots=True)
class Seat:
    ticket: str
    client_key: str
    holder: Holder | None
    dropped_at: float | None = None


@dataclass(slots=True)
class Seats:
    grace: float = 60.0
    _held: dict[str, list[Seat]] = field(default_factory=dict)

    def holding(self, ticket: str, now: float) -> list[Seat]:
        seats = [
            s
            for s in self._held.get(ticket, [])
            if s.dropped_at is None or now - s.dropped_at < self.grace
        ]
        if seats:
            self._held[ticket] = seats
        else:
            self._held.pop(ticket, None)
        return list(seats)

    def claim(
        self,
        ticket: str,
        *,
        capacity: int,
        policy: SecondDevice,
        client_key: str,
        holder: Holder,
        now: float,
        resumes: Callable[[Holder], bool] = lambda _old: False,
    ) -> Seat:
        """Take a slot or raise :class:`Refusal`; evicts whoever the rules say must go.

        A slot counts the *connection* holding it, whoever it claims to be: a second live
        connection with the same ``client_key`` is another device. Only two kinds of slot are
        this connection's own to take back: a dropped one of the same client (back after a
        lost connection), and the live one of the connection it resumes (``resumes``: it
        showed that connection's resume token; the room replaces the old connection).
        """
        seats = self.holding(ticket, now)

        def own(seat: Seat) -> bool:
            if seat.holder is None:
                return seat.client_key == client_key
            return seat.holder is holder or resumes(seat.holder)

        others = [s for s in seats if not own(s)]
        evict: list[Seat] = []
        if len(others) >= capacity:
            if capacity == 1 and policy is SecondDevice.TAKEOVER:
                evict, others = others, []
            elif capacity == 1:
                raise Refusal(RefusalCode.TICKET_IN_USE, in_use_message())
            else:
                raise Refusal(RefusalCode.GROUP_FULL, group_full_message(capacity))
        seat = Seat(ticket, client_key, holder)
        self._held[ticket] = [*others, seat]
        for old in evict:
            if old.holder is not None and old.holder is not holder:
                old.holder.evict(ByeReason.TAKEN_OVER)
        return seat

    def holds(self, seat: Seat) -> bool:
        """Whether ``seat`` is still held (not taken over since it was claimed)."""
        return any(s is seat for s in self._held.get(seat.ticket, []))

    def release(self, seat: Seat, now: float, *, dropped: bool) -> None:
        """The holder left (``dropped=False``) or lost its connection (kept for the grace)."""
        seats = self._held.get(seat.ticket, [])
        if not any(s is seat for s in seats):
            return
        if dropped:
            seat.holder = None
            seat.dropped_at = now
        else:
            self._held[seat.ticket] = [s for s in seats if s is not seat]
            if not self._held[seat.ticket]:
                del self._held[seat.ticket]

    def evict_all(self, ticket: str, reason: ByeReason) -> int:
        """End every connection holding ``ticket`` (revoked, cancelled); how many there were."""
        seats = self._held.pop(ticket, [])
        for seat in seats:
            if seat.holder is not None:
                seat.holder.evict(reason)
        return sum(1 for s in seats if s.holder is not None)

    def in_use(self, ticket: str, now: float) -> int:
        return len(self.holding(ticket, now))
