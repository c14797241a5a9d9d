"""Failed entry attempts, rate-limited per client address and per event."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: Failed attempts one client address may make in :data:`WINDOW_SECONDS`.
FAILURES_PER_CLIENT = 10
#: Failed attempts on one event (from anywhere) in :data:`WINDOW_SECONDS`.
FAILURES_PER_EVENT = 100
WINDOW_SECONDS = 300.0
#: Keys tracked at most (oldest dropped first), so a flood cannot grow memory without bound.
MAX_KEYS = 50_000


@dataclass(slots=True)
class AttemptLimiter:
    per_client: int = FAILURES_PER_CLIENT
    per_event: int = FAILURES_PER_EVENT
    window: float = WINDOW_SECONDS
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _wait(self, key: str, limit: int, now: float) -> int:
        failures = self._failures.get(key)
        if failures is None:
            return 0
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return 0
        if len(failures) < limit:
            return 0
        return max(1, int(self.window - (now - failures[0]) + 0.999))

    def retry_after(self, client: str | None, event_id: str, now: float) -> int:
        """Seconds to wait before the next attempt may be made (0: go ahead).

        The per-event limit holds back only clients that have failed themselves (or are
        unknown): while someone floods an event with guesses, people who have not mistyped
        still get in, and each guessing address gets one try per window.
        """
        own = self._wait(f"client:{client}", self.per_client, now) if client else 0
        if client and f"client:{client}" not in self._failures:
            return own
        return max(own, self._wait(f"event:{event_id}", self.per_event, now))

    def failed(self, client: str | None, event_id: str, now: float) -> None:
        keys = [f"event:{event_id}"] + ([f"client:{client}"] if client else [])
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
        while len(self._failures) > MAX_KEYS:
            del self._failures[next(iter(self._failures))]
