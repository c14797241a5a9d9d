"""What the gate asks of its seat book and its attempt limiter, and the in-memory ones.

One worker keeps device slots (:class:`~webinar.ticketing.seats.Seats`) and entry attempts
(:class:`~webinar.ticketing.limiter.AttemptLimiter`) in memory: that is the default, and these
adapters give the gate the same (async) face as the Redis-backed books of
:mod:`webinar.ticketing.shared`, which several workers share. The rules live in ``seats.py``
and ``limiter.py``; the adapters only forward, so the in-memory behaviour is theirs.

A decision the shared books cannot make (Redis unreachable) raises :class:`Refusal` with
``unavailable``: nobody is let in on a decision that was not made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from webinar.rooms.reasons import ByeReason

from .grants import SecondDevice
from .limiter import Attempt, AttemptLimiter
from .seats import Holder, Seat, Seats

# ---------------------------------------------------------------------------- protocols


class Counted(Protocol):
    """One counted attempt: resolve it exactly once (later calls do nothing)."""

    async def failed(self, now: float) -> None:
        """A wrong credential: the attempt stays counted for the window."""

    async def forgive(self) -> None:
        """A right credential, or no check made: its place is given back."""


class Attempts(Protocol):
    """Count-before-check entry attempts per client address and per event (see limiter.py)."""

    per_client: int
    per_event: int
    window: float
    max_wait: float

    async def acquire(
        self, client: str | None, event_id: str | None, clock: Callable[[], float]
    ) -> Counted:
        """Count an attempt; wait while only attempts in flight hold it back; raise
        :class:`Refusal` (``rate-limited``, or ``unavailable``) otherwise."""

    async def reserve(self, client: str | None, event_id: str | None, now: float) -> Counted:
        """Count an attempt now or raise :class:`Refusal` (no waiting)."""

    def uncounted(self) -> Counted:
        """An attempt counted nowhere; resolving it does nothing."""


class SeatBook(Protocol):
    """Device slots of single-use and group credentials (the rules: seats.py)."""

    async def claim(
        self,
        ticket: str,
        *,
        capacity: int,
        policy: SecondDevice,
        client_key: str,
        holder: Holder,
        now: float,
        resumes: Callable[[Holder], bool] = ...,
    ) -> object:
        """Take a slot (the returned seat is the grant's ``seat``) or raise :class:`Refusal`;
        whoever the rules say must go is evicted."""

    async def holds(self, seat: object) -> bool:
        """Whether ``seat`` is still held (not taken over since it was claimed)."""

    def release(self, seat: object, now: float, *, dropped: bool) -> None:
        """The holder left, or lost its connection (then the slot is kept for the grace).
        Never fails: a shared book writes it in the background, retrying."""

    async def evict_all(self, ticket: str, reason: ByeReason) -> int:
        """End every connection holding ``ticket``; how many there were."""

    async def in_use(self, ticket: str, now: float) -> int:
        """Slots of ``ticket`` held or kept (dropped, within the grace)."""


# ---------------------------------------------------------------------------- in memory


@dataclass(slots=True)
class LocalAttempt:
    attempt: Attempt

    async def failed(self, now: float) -> None:
        self.attempt.failed(now)

    async def forgive(self) -> None:
        self.attempt.forgive()


class LocalAttempts:
    """:class:`AttemptLimiter` (one process) behind the :class:`Attempts` face."""

    def __init__(self, limiter: AttemptLimiter | None = None) -> None:
        self.limiter = limiter or AttemptLimiter()

    @property
    def per_client(self) -> int:
        return self.limiter.per_client

    @per_client.setter
    def per_client(self, value: int) -> None:
        self.limiter.per_client = value

    @property
    def per_event(self) -> int:
        return self.limiter.per_event

    @per_event.setter
    def per_event(self, value: int) -> None:
        self.limiter.per_event = value

    @property
    def window(self) -> float:
        return self.limiter.window

    @window.setter
    def window(self, value: float) -> None:
        self.limiter.window = value

    @property
    def max_wait(self) -> float:
        return self.limiter.max_wait

    @max_wait.setter
    def max_wait(self, value: float) -> None:
        self.limiter.max_wait = value

    async def acquire(
        self, client: str | None, event_id: str | None, clock: Callable[[], float]
    ) -> Counted:
        return LocalAttempt(await self.limiter.acquire(client, event_id, clock))

    async def reserve(self, client: str | None, event_id: str | None, now: float) -> Counted:
        return LocalAttempt(self.limiter.reserve(client, event_id, now))

    def uncounted(self) -> Counted:
        return LocalAttempt(self.limiter.uncounted())


def local_attempts(limiter: AttemptLimiter | Attempts | None) -> Attempts:
    """An :class:`Attempts`: the one given, or an in-memory limiter wrapped."""
    if limiter is None or isinstance(limiter, AttemptLimiter):
        return LocalAttempts(limiter)
    return limiter


class LocalSeats:
    """:class:`Seats` (one process) behind the :class:`SeatBook` face."""

    def __init__(self, seats: Seats | None = None) -> None:
        self.seats = seats or Seats()

    async def claim(
        self,
        ticket: str,
        *,
        capacity: int,
        policy: SecondDevice,
        client_key: str,
        holder: Holder,
        now: float,
        resumes: Callable[[Holder], bool] = lambda _old: False,
    ) -> object:
        return self.seats.claim(
            ticket,
            capacity=capacity,
            policy=policy,
            client_key=client_key,
            holder=holder,
            now=now,
            resumes=resumes,
        )

    async def holds(self, seat: object) -> bool:
        return not isinstance(seat, Seat) or self.seats.holds(seat)

    def release(self, seat: object, now: float, *, dropped: bool) -> None:
        if isinstance(seat, Seat):
            self.seats.release(seat, now, dropped=dropped)

    async def evict_all(self, ticket: str, reason: ByeReason) -> int:
        return self.seats.evict_all(ticket, reason)

    async def in_use(self, ticket: str, now: float) -> int:
        return self.seats.in_use(ticket, now)
