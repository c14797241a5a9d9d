"""Device slots of single-use and group credentials: pure bookkeeping, time passed in.

A single-use credential has one slot, a group code as many as its reservation's seats.
The same device (same client key) always gets back in, taking over its own older slot;
a dropped connection keeps its slot for ``grace`` seconds so that only its own device
can take it back, then the slot is free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from webinar.rooms.reasons import ByeReason

from .grants import Refusal, RefusalCode, SecondDevice


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
    ) -> Seat:
        """Take a slot or raise :class:`Refusal`; evicts whoever the rules say must go."""
        seats = self.holding(ticket, now)
        # The same device (another tab, or back after a drop) takes its own slot over;
        # its older connection is not evicted here (a resume replaces it in the room).
        others = [s for s in seats if s.client_key != client_key]
        evict: list[Seat] = []
        if len(others) >= capacity:
            if capacity == 1 and policy is SecondDevice.TAKEOVER:
                evict, others = others, []
            elif capacity == 1:
                raise Refusal(
                    RefusalCode.TICKET_IN_USE,
                    "this code or invitation is in use on another device; leave there first"
                    " (or wait a minute after a lost connection)",
                )
            else:
                raise Refusal(
                    RefusalCode.GROUP_FULL,
                    f"all {capacity} places of this group code are in use right now",
                )
        seat = Seat(ticket, client_key, holder)
        self._held[ticket] = [*others, seat]
        for old in evict:
            if old.holder is not None and old.holder is not holder:
                old.holder.evict(ByeReason.TAKEN_OVER)
        return seat

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
