"""Emoji reactions: a per-person flood limit and counts aggregated per interval.

A thousand people clapping must not cost a thousand messages to each of them. Each reaction
is counted into the room's current window; at most every :data:`REACTIONS_INTERVAL` seconds
the window's counts go to everyone as one message (``reactions`` ``{counts, interval}``),
encoded once for the whole room, so each connection receives at most
``1 / REACTIONS_INTERVAL`` reaction messages a second whatever the size of the room.

:class:`ReactionLimiter` and :class:`ReactionTally` are pure (time is passed in).
:class:`RoomReactions` owns the window's timer, the fan-out to the room's connections, the
hand-over of this worker's counts to the other workers of the room (``relay``) and the
per-person totals for the engagement export, saved in batches (``save``) every
:data:`SAVE_INTERVAL` seconds and when the room closes — one write per batch, never one per
reaction; a batch whose write fails is kept and tried again with the next.

:class:`ReactionSettings` is the room's switch (presenters turn reactions off for attendees):
a pure state machine kept with the room's interaction (``RoomInteraction.reaction_settings``),
so it is written with the chat's switches, undone when its write fails, logged for the other
workers and restored when the room opens again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from webinar.i18n import N_, _

from .interaction_errors import InteractionError, InteractionErrorCode
from .roles import Capability, may_not
from .state import Participant

logger = logging.getLogger(__name__)

#: The reactions, by their wire names, and the emoji each stands for (in this order on screen).
EMOJI: dict[str, str] = {
    "thumbs-up": "\N{THUMBS UP SIGN}",
    "clap": "\N{CLAPPING HANDS SIGN}",
    "heart": "\N{HEAVY BLACK HEART}\N{VARIATION SELECTOR-16}",
    "laugh": "\N{FACE WITH TEARS OF JOY}",
    "wow": "\N{FACE WITH OPEN MOUTH}",
    "party": "\N{PARTY POPPER}",
}
REACTIONS: tuple[str, ...] = tuple(EMOJI)

REACTION_BURST = 8  # reactions one person may send at once ...
REACTIONS_PER_SECOND = 3.0  # ... refilled at this rate
REACTIONS_INTERVAL = 0.25  # seconds: the room's counts go out at most this often
SAVE_INTERVAL = 5.0  # seconds: per-person totals are written at most this often
#: The largest count one worker's window may report for one reaction (a remote window's
#: count above it is capped: a worker never has more than its people's bursts).
MAX_WINDOW_COUNT = 1_000_000

E = InteractionErrorCode


def check_reaction(reaction: str) -> str:
    if reaction not in EMOJI:
        raise InteractionError(
            E.INVALID,
            _("unknown reaction %(given)s; one of %(allowed)s")
            % {"given": repr(reaction[:20]), "allowed": ", ".join(REACTIONS)},
        )
    return reaction


@dataclass(frozen=True, slots=True)
class ReactionSettingsChanged:
    """The room's reactions switch changed (``by``: the participant who switched it)."""

    enabled: bool
    by: str


ReactionsEvent = ReactionSettingsChanged


@dataclass(slots=True)
class ReactionSettings:
    """Whether attendees may react. Those with ``MODERATE_REACTIONS`` switch it and are exempt
    from it (as presenters are from the chat's switch).

    A switch is planned (checked), written, then applied: ``react`` reads ``enabled`` without
    waiting for the room's interaction lock, so it must never see a value not yet written."""

    enabled: bool = True

    def plan(self, actor: Participant, *, enabled: bool) -> ReactionSettingsChanged:
        """Check a switch; nothing changes until :meth:`apply`."""
        if not actor.can(Capability.MODERATE_REACTIONS):
            raise InteractionError(E.FORBIDDEN, may_not(actor.role, N_("switch reactions")))
        return ReactionSettingsChanged(enabled, actor.participant_id)

    def apply(self, changed: ReactionSettingsChanged) -> None:
        self.enabled = changed.enabled

    def check(self, who: Participant) -> None:
        """Refuse ``who``'s reaction while reactions are off for them."""
        if not self.enabled and not who.can(Capability.MODERATE_REACTIONS):
            raise InteractionError(E.REACTIONS_OFF, _("the presenters switched reactions off"))


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class ReactionLimiter:
    """Each person may react :data:`REACTION_BURST` times at once, then
    :data:`REACTIONS_PER_SECOND` a second. An attempt takes its token before anything else
    is looked at (refused attempts therefore never leave a token behind for a parallel one)."""

    def __init__(
        self, burst: int = REACTION_BURST, per_second: float = REACTIONS_PER_SECOND
    ) -> None:
        self.burst = burst
        self.per_second = per_second
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(
            float(self.burst), bucket.tokens + max(0.0, now - bucket.at) * self.per_second
        )
        bucket.at = now
        bucket.tokens -= 1  # counted first ...
        if bucket.tokens < 0:  # ... then checked
            bucket.tokens += 1  # a refused attempt costs nothing more: the limit stays fair
            raise InteractionError(
                E.RATE_LIMITED,
                _("too many reactions: at most %(burst)d at once and %(rate)s per second")
                % {"burst": self.burst, "rate": f"{self.per_second:g}"},
                retry_after=(1 - bucket.tokens) / self.per_second,
            )

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)


class ReactionTally:
    """Counts per reaction, taken (and emptied) once per window."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, reaction: str, n: int = 1) -> None:
        self._counts[reaction] = min(MAX_WINDOW_COUNT, self._counts.get(reaction, 0) + n)

    def __bool__(self) -> bool:
        return bool(self._counts)

    def take(self) -> dict[str, int]:
        counts, self._counts = self._counts, {}
        return counts


@dataclass(frozen=True, slots=True)
class ReactionBurst:
    """One window's counts as everyone in the room gets them (hashable: encoded once)."""

    counts: tuple[tuple[str, int], ...]  # in :data:`REACTIONS` order, zeros left out
    interval: float

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)

    @property
    def total(self) -> int:
        return sum(n for _r, n in self.counts)


def burst_of(*windows: Mapping[str, int], interval: float = REACTIONS_INTERVAL) -> ReactionBurst:
    """Several windows' counts (this worker's, the others') added up into one burst."""
    total: dict[str, int] = {}
    for window in windows:
        for reaction, n in window.items():
            if reaction in EMOJI and n > 0:
                total[reaction] = total.get(reaction, 0) + n
    return ReactionBurst(
        counts=tuple((r, total[r]) for r in REACTIONS if r in total), interval=interval
    )


def remote_counts(value: object) -> dict[str, int]:
    """Another worker's window as it came over the bus: known reactions, sane counts only."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, int] = {}
    for reaction, n in value.items():
        if reaction in EMOJI and isinstance(n, int) and not isinstance(n, bool) and n > 0:
            out[reaction] = min(n, MAX_WINDOW_COUNT)
    return out


@runtime_checkable
class ReactionPeer(Protocol):
    """A connection that shows reactions (the same burst for everyone)."""

    def reactions(self, burst: ReactionBurst) -> None: ...


#: Writes per-person totals: (event id, {(person key, reaction): count}) (webinar.interaction).
SaveReactions = Callable[[str, dict[tuple[str, str], int]], Awaitable[None]]
#: Hands this worker's window to the room's other workers (with several workers).
RelayReactions = Callable[[dict[str, int]], None]


class RoomReactions:
    """A live room's reactions: the limit, the window, the fan-out, the totals to save."""

    def __init__(
        self,
        room_id: str,
        peers: Callable[[], Iterable[object]],
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = REACTIONS_INTERVAL,
        save: SaveReactions | None = None,
        save_interval: float = SAVE_INTERVAL,
    ) -> None:
        self.room_id = room_id
        self.limiter = ReactionLimiter()
        self.relay: RelayReactions | None = None
        self._peers = peers
        self._clock = clock
        self._interval = interval
        self._save = save
        self._save_interval = save_interval
        self._local = ReactionTally()  # this worker's people, this window
        self._remote = ReactionTally()  # the other workers' windows that came meanwhile
        self._people: dict[tuple[str, str], int] = {}  # (person key, reaction): not yet saved
        self._sent_at = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._saving: asyncio.Task[None] | None = None
        self._save_timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self.closed = False
        #: Reactions counted here since the room opened (all workers' for what came here).
        self.sent_total = 0

    def now(self) -> float:
        return self._clock()

    def react(self, who: Participant, key: str, reaction: str, now: float) -> None:
        """``who`` (person ``key``) reacts: refused with an InteractionError, else counted."""
        if not who.can(Capability.REACT):
            raise InteractionError(E.FORBIDDEN, may_not(who.role, N_("send reactions")))
        self.limiter.take(key, now)
        check_reaction(reaction)
        if self.closed:
            return
        self._local.add(reaction)
        people_key = (key, reaction)
        self._people[people_key] = self._people.get(people_key, 0) + 1
        self._schedule()
        self._schedule_save()

    def merge(self, counts: Mapping[str, int]) -> None:
        """Another worker's window: its people see it from there, ours from our next burst."""
        if self.closed:
            return
        for reaction, n in remote_counts(dict(counts)).items():
            self._remote.add(reaction, n)
        if self._remote:
            self._schedule()

    # ------------------------------------------------------------------ the window

    def _schedule(self) -> None:
        if self._timer is not None:
            return
        delay = max(0.0, self._sent_at + self._interval - self._clock())
        self._timer = self._loop.call_later(delay, self.flush)

    def flush(self) -> None:
        """Send the window now: this worker's counts to the other workers, everything to
        everyone here, in one message encoded once."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        local, remote = self._local.take(), self._remote.take()
        if self.closed or not (local or remote):
            return
        self._sent_at = self._clock()
        if local and self.relay is not None:
            try:
                self.relay(local)
            except Exception:
                logger.exception("relaying reactions of room %s failed", self.room_id)
        burst = burst_of(local, remote, interval=self._interval)
        self.sent_total += burst.total
        for peer in list(self._peers()):
            if not isinstance(peer, ReactionPeer):
                continue
            try:
                peer.reactions(burst)
            except Exception:
                logger.exception("delivering reactions failed")

    # ------------------------------------------------------------------ the totals

    def _schedule_save(self) -> None:
        if self._save is None or self._save_timer is not None:
            return
        self._save_timer = self._loop.call_later(self._save_interval, self._start_save)

    def _start_save(self) -> None:
        self._save_timer = None
        if self._saving is not None and not self._saving.done():
            self._schedule_save()  # the last batch is still being written
            return
        self._saving = self._loop.create_task(self.save_now())

    async def save_now(self) -> None:
        """Write the per-person totals counted since the last write; on failure keep them
        for the next one."""
        if self._save is None or not self._people:
            return
        batch, self._people = self._people, {}
        try:
            await self._save(self.room_id, batch)
        except Exception:
            logger.warning(
                "could not save %d reaction counts of room %s; trying again later",
                len(batch),
                self.room_id,
                exc_info=True,
            )
            for k, n in batch.items():
                self._people[k] = self._people.get(k, 0) + n
            if not self.closed:
                self._schedule_save()

    def pending(self) -> dict[tuple[str, str], int]:
        """Per-person totals not written yet (tests, debugging)."""
        return dict(self._people)

    async def close(self) -> None:
        """Stop the window and write what is left (awaited by the room's close)."""
        if self.closed:
            return
        self.closed = True
        for timer in (self._timer, self._save_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._save_timer = None
        self._local.take()
        self._remote.take()
        saving = self._saving
        if saving is not None and not saving.done():
            with contextlib.suppress(Exception):
                await saving
        await self.save_now()
        if self._people:
            logger.warning(
                "room %s closed with %d reaction counts unsaved", self.room_id, len(self._people)
            )
