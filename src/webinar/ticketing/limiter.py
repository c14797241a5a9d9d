"""Entry attempts, rate-limited per client address and per event.

An attempt is counted *before* it is checked: :meth:`AttemptLimiter.acquire` takes a place
(attempts in flight count like failures: when only they fill the limit, it waits for their
answers; when failures do, it refuses), and the attempt then either :meth:`Attempt.failed`
(kept for the window) or :meth:`Attempt.forgive` (a right credential, or a check that never
happened: the place is given back). So a burst of parallel attempts cannot all be checked
before the first failure is written down.

Client addresses count under :func:`webinar.ids.client_key` (IPv6 by /64).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from webinar.i18n import _
from webinar.ids import client_key

from .grants import Refusal, RefusalCode

#: Failed attempts one client address may make in :data:`WINDOW_SECONDS`.
FAILURES_PER_CLIENT = 10
#: Failed attempts on one event (from any address) in :data:`WINDOW_SECONDS`.
FAILURES_PER_EVENT = 100
WINDOW_SECONDS = 300.0
#: Keys tracked at most (oldest dropped first), so a flood cannot grow memory without bound.
MAX_KEYS = 50_000


@dataclass(slots=True)
class _Count:
    failures: deque[float] = field(default_factory=deque)
    pending: int = 0


@dataclass(slots=True)
class Attempt:
    """One counted attempt: resolve it exactly once with :meth:`failed` or :meth:`forgive`."""

    limiter: AttemptLimiter
    keys: tuple[str, ...]
    done: bool = False

    def failed(self, now: float) -> None:
        """A wrong credential (or an unknown event): the attempt stays counted."""
        if not self.done:
            self.done = True
            self.limiter._resolve(self.keys, failed_at=now)

    def forgive(self) -> None:
        """A right credential, or no check made: the attempt's place is given back."""
        if not self.done:
            self.done = True
            self.limiter._resolve(self.keys, failed_at=None)


@dataclass(slots=True)
class WaitQueues:
    """Attempts waiting for a place, per key: one woken per freed place, in turn."""

    _queues: dict[str, deque[asyncio.Future[None]]] = field(default_factory=dict)

    def __len__(self) -> int:
        """Keys with attempts waiting."""
        return len(self._queues)

    async def wait(self, key: str, seconds: float, *, first: bool = False) -> bool:
        """Wait at most ``seconds`` for :meth:`wake` on ``key``; whether woken. ``first``:
        at the head of the queue (a turn kept)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues.setdefault(key, deque())
        if first:
            queue.appendleft(waiter)
        else:
            queue.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), seconds)
        except TimeoutError:
            pass
        except BaseException:
            self.leave(key, waiter)
            raise
        if waiter.done():
            return True
        self.leave(key, waiter)
        return False

    def wake(self, key: str) -> None:
        """Wake the first attempt waiting on ``key``."""
        queue = self._queues.get(key)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        if queue is not None and not queue:
            del self._queues[key]

    def leave(self, key: str, waiter: asyncio.Future[None]) -> None:
        """A waiter gives up: out of the queue, or its wake-up passed on if it had one."""
        if waiter.done():
            self.wake(key)
            return
        waiter.cancel()
        queue = self._queues.get(key)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._queues[key]


@dataclass(slots=True)
class AttemptLimiter:
    per_client: int = FAILURES_PER_CLIENT
    per_event: int = FAILURES_PER_EVENT
    window: float = WINDOW_SECONDS
    #: Longest an attempt waits for attempts in flight to be answered before it is refused.
    max_wait: float = 10.0
    _counts: dict[str, _Count] = field(default_factory=dict)
    #: Attempts waiting for a place, per key whose attempts in flight hold them back.
    _waiters: WaitQueues = field(default_factory=lambda: WaitQueues())

    def _used(self, key: str, now: float) -> tuple[int, int, float | None]:
        """Failures in the window, attempts in flight, and the oldest failure's time."""
        count = self._counts.get(key)
        if count is None:
            return 0, 0, None
        failures = count.failures
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        if not failures and not count.pending:
            del self._counts[key]
            return 0, 0, None
        return len(failures), count.pending, failures[0] if failures else None

    def _wait(self, key: str, limit: int, now: float) -> tuple[int, bool]:
        """Seconds to wait (0: go ahead), and whether only attempts in flight hold it back."""
        failed, pending, oldest = self._used(key, now)
        if failed + pending < limit:
            return 0, False
        if failed < limit or oldest is None:
            return 1, True  # answered within moments: wait for them
        return max(1, int(self.window - (now - oldest) + 0.999)), False

    def _check(
        self, client: str | None, event_id: str | None, now: float
    ) -> tuple[int, str | None]:
        """Seconds to wait (0: go ahead), and the key whose attempts in flight alone hold
        it back (None: failures do, so it is refused)."""
        own_key = f"client:{client_key(client)}" if client else None
        own = self._wait(own_key, self.per_client, now) if own_key else (0, False)
        # The per-event limit holds back only addresses that have failed (or are trying)
        # themselves, or are unknown: while someone floods an event with guesses, people who
        # have not mistyped still get in, and each guessing address gets one try per window.
        if event_id is None or (own_key is not None and own_key not in self._counts):
            return own[0], own_key if own[1] else None
        event_key = f"event:{event_id}"
        event = self._wait(event_key, self.per_event, now)
        if own[0] and not own[1]:
            return own[0], None
        if event[0] and not event[1]:
            return event[0], None
        if own[0]:
            return 1, own_key
        return (1, event_key) if event[0] else (0, None)

    def retry_after(self, client: str | None, event_id: str | None, now: float) -> int:
        """Seconds to wait before the next attempt may be made (0: go ahead)."""
        return self._check(client, event_id, now)[0]

    def reserve(self, client: str | None, event_id: str | None, now: float) -> Attempt:
        """Count an attempt, or raise :class:`Refusal` (``rate-limited``) when none is left
        (attempts in flight included)."""
        wait = self.retry_after(client, event_id, now)
        if wait:
            raise _limited(wait)
        return self._take(client, event_id)

    async def acquire(
        self, client: str | None, event_id: str | None, clock: Callable[[], float]
    ) -> Attempt:
        """Count an attempt once the limits allow it. When only attempts in flight hold it
        back (a burst of people behind one address), wait for their answers rather than
        refuse; when failures do, raise :class:`Refusal` (``rate-limited``).

        Waiters queue per key and are woken one per answer on that key (not all of them on
        every answer); one woken for a place it does not take passes the wake-up on."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        woken: str | None = None  # the key whose answer woke this attempt
        while True:
            wait, key = self._check(client, event_id, clock())
            if not wait:
                return self._take(client, event_id)
            left = deadline - loop.time()
            if woken is not None and (key != woken or left <= 0):
                self._waiters.wake(woken)  # not taking that place: the next waiter may
            if key is None or left <= 0:
                raise _limited(wait)
            # someone else took the place we were woken for: keep our turn
            woken = key if await self._waiters.wait(key, left, first=key == woken) else None

    def uncounted(self) -> Attempt:
        """An attempt that guesses nothing (an open event's attendee): counted nowhere, so
        it never waits and never holds a place; resolving it does nothing."""
        return Attempt(self, (), done=True)

    def _take(self, client: str | None, event_id: str | None) -> Attempt:
        keys = _keys(client, event_id)
        for key in keys:
            self._counts.setdefault(key, _Count()).pending += 1
        while len(self._counts) > MAX_KEYS:
            del self._counts[next(iter(self._counts))]
        return Attempt(self, keys)

    def _resolve(self, keys: tuple[str, ...], *, failed_at: float | None) -> None:
        for key in keys:
            count = self._counts.get(key)
            if count is None:  # dropped by MAX_KEYS meanwhile
                count = self._counts[key] = _Count(pending=1)
            count.pending = max(0, count.pending - 1)
            if failed_at is not None:
                count.failures.append(failed_at)
            elif not count.failures and not count.pending:
                del self._counts[key]
            self._waiters.wake(key)

    def failed(self, client: str | None, event_id: str | None, now: float) -> None:
        """Count a failure that was not reserved first."""
        self._take(client, event_id).failed(now)


def _keys(client: str | None, event_id: str | None) -> tuple[str, ...]:
    return tuple(
        ([f"event:{event_id}"] if event_id is not None else [])
        + ([f"client:{client_key(client)}"] if client else [])
    )


def _limited(wait: int) -> Refusal:
    return Refusal(
        RefusalCode.RATE_LIMITED,
        _("too many wrong attempts; try again in %(seconds)s s") % {"seconds": wait},
        retry_after=wait,
    )
