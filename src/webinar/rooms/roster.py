"""Who is in a room, for those who watch it: the stage, the counts and the full roster.

A room of 10,000 must seat its next attendee as cheaply as a room of 10, so a join is not
announced to everyone. Three audiences:

* **the stage** (anyone who may publish: hosts, presenters, attendees granted the microphone
  or camera) is shown to everyone, as it changes (``participant-*`` messages);
* **the counts** (people per role, raised hands) go to everyone, coalesced: at most every
  :data:`COUNT_INTERVAL` seconds, and that long after the change that started them;
* **the roster** (everyone, with hands, grants and connection) goes to those who manage
  the floor, as batched deltas at most every :data:`DELTA_INTERVAL` seconds, and a page at
  a time on request.

:class:`RosterIndex` is the pure part (no I/O, no clock): what the room's events change in
the counts, the stage and the join order used for paging; each operation is O(1) in the
size of the room (a page is O(log N + its length)). :class:`RoomRoster` owns the two timers
and the fan-out to the room's connections, like :class:`webinar.rooms.interaction.RoomInteraction`;
:class:`webinar.rooms.live.LiveRoom` creates one and closes it with itself.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .reasons import ByeReason
from .roles import Capability, Role
from .state import Participant, ParticipantJoined, ParticipantLeft, ParticipantUpdated, RoomEvent

logger = logging.getLogger(__name__)

COUNT_INTERVAL = 0.5  # seconds: participant counts go out at most this often
#: ...and in a big room less often: at most this many count messages a second in all
#: (every 2.5 s in a room of 10,000)
COUNT_MESSAGES_PER_SECOND = 4000
DELTA_INTERVAL = 0.25  # seconds: roster deltas go to those who manage the floor at most this often
PAGE_LIMIT = 500  # participants in one roster page at most


def on_stage(p: Participant) -> bool:
    """Whether everyone sees this participant: they may publish (a standing right or a grant)."""
    return (
        p.can(Capability.PUBLISH_AUDIO)
        or p.can(Capability.PUBLISH_VIDEO)
        or p.grant_audio
        or p.grant_video
    )


def sees_roster(p: Participant) -> bool:
    """Whether this participant gets the full roster (deltas and pages): they run the floor."""
    return p.can(Capability.MANAGE_FLOOR)


@dataclass(frozen=True, slots=True)
class Counts:
    total: int
    hosts: int
    presenters: int
    attendees: int
    hands: int


@dataclass(frozen=True, slots=True)
class Seen:
    """What an event about one participant means for who hears of it."""

    stage: bool  # the participant was or is on the stage: everyone hears of it at once
    roster: bool  # the roster changed (a join, a leave, an update): deltas for roster viewers


@dataclass(frozen=True, slots=True)
class Page:
    participants: list[Participant]
    next_cursor: str | None  # pass as ``after`` for the next page; None on the last one


class RosterIndex:
    """Counts, stage, roster viewers and join order, kept up to date from the room's events."""

    def __init__(self) -> None:
        self._roles: dict[Role, int] = dict.fromkeys(Role, 0)
        self._role_of: dict[str, Role] = {}
        self._hands: set[str] = set()
        self.stage: dict[str, None] = {}  # ordered set of participant ids on the stage
        self.viewers: set[str] = set()  # participant ids that see the whole roster
        self._seq_of: dict[str, int] = {}
        self._pid_at: dict[int, str] = {}
        self._order: list[int] = []  # join sequence numbers of those present, ascending
        self._next = 0

    def __len__(self) -> int:
        return len(self._role_of)

    def counts(self) -> Counts:
        r = self._roles
        return Counts(
            total=len(self._role_of),
            hosts=r[Role.HOST],
            presenters=r[Role.PRESENTER],
            attendees=r[Role.ATTENDEE],
            hands=len(self._hands),
        )

    def apply(self, event: RoomEvent) -> Seen | None:
        """Take one room event in; None when it is not about a participant's presence."""
        if isinstance(event, ParticipantJoined):
            p = event.participant
            self._next += 1
            self._seq_of[p.participant_id] = self._next
            self._pid_at[self._next] = p.participant_id
            self._order.append(self._next)
            self._set(p)
            return Seen(stage=p.participant_id in self.stage, roster=True)
        if isinstance(event, ParticipantLeft):
            pid = event.participant.participant_id
            was_stage = pid in self.stage
            self._unset(pid)
            seq = self._seq_of.pop(pid, None)
            if seq is not None:
                del self._pid_at[seq]
                i = bisect.bisect_left(self._order, seq)
                if i < len(self._order) and self._order[i] == seq:
                    del self._order[i]
            return Seen(stage=was_stage, roster=True)
        if isinstance(event, ParticipantUpdated):
            p = event.participant
            was_stage = p.participant_id in self.stage
            self._unset(p.participant_id)
            self._set(p)
            stage = was_stage or p.participant_id in self.stage
            # Connection quality moves every few seconds for everyone: never a broadcast.
            return Seen(stage=stage and event.cause != "quality", roster=True)
        return None

    def page(self, participants: dict[str, Participant], after: str | None, limit: int) -> Page:
        """Up to ``limit`` participants in join order, after the cursor ``after``."""
        limit = max(1, min(limit, PAGE_LIMIT))
        start = 0
        if after:
            try:
                start = bisect.bisect_right(self._order, int(after))
            except ValueError:
                start = 0
        seqs = self._order[start : start + limit]
        found = [participants.get(self._pid_at[seq]) for seq in seqs]
        more = start + limit < len(self._order)
        return Page(
            participants=[p for p in found if p is not None],
            next_cursor=str(seqs[-1]) if more and seqs else None,
        )

    def _set(self, p: Participant) -> None:
        pid = p.participant_id
        self._role_of[pid] = p.role
        self._roles[p.role] += 1
        if p.hand_raised is not None:
            self._hands.add(pid)
        if on_stage(p):
            self.stage[pid] = None
        if sees_roster(p):
            self.viewers.add(pid)

    def _unset(self, pid: str) -> None:
        role = self._role_of.pop(pid, None)
        if role is not None:
            self._roles[role] -= 1
        self._hands.discard(pid)
        self.stage.pop(pid, None)
        self.viewers.discard(pid)


def _subject(event: RoomEvent) -> str | None:
    if isinstance(event, ParticipantJoined | ParticipantLeft | ParticipantUpdated):
        return event.participant.participant_id
    return None


class RosterPeer(Protocol):
    """What a connection shows of the roster (each renders it for its viewer)."""

    def participant_count(self, counts: Counts) -> None: ...

    def roster_delta(
        self,
        joined: list[Participant],
        left: list[tuple[str, ByeReason]],
        updated: list[Participant],
    ) -> None: ...


class RoomRoster:
    """The room's index plus the coalescing: counts to everyone, deltas to roster viewers."""

    def __init__(
        self,
        participants: Callable[[], dict[str, Participant]],
        everyone: Callable[[], Iterable[RosterPeer]],
        viewer: Callable[[str], RosterPeer | None],
        *,
        clock: Callable[[], float] = time.monotonic,
        count_interval: float = COUNT_INTERVAL,
        delta_interval: float = DELTA_INTERVAL,
    ) -> None:
        self.index = RosterIndex()
        self._participants = participants
        self._everyone = everyone
        self._viewer = viewer
        self._clock = clock
        self._count_interval = count_interval
        self._delta_interval = delta_interval
        self._loop = asyncio.get_running_loop()
        self._counts_sent: Counts | None = None
        self._counts_at = float("-inf")
        self._counts_timer: asyncio.TimerHandle | None = None
        # participant id -> "joined" | "updated" | the reason they left; in order of change
        self._pending: dict[str, str | ByeReason] = {}
        self._delta_at = float("-inf")
        self._delta_timer: asyncio.TimerHandle | None = None
        self.closed = False

    def counts(self) -> Counts:
        return self.index.counts()

    def apply(self, event: RoomEvent) -> Seen | None:
        seen = self.index.apply(event)
        if seen is None or self.closed:
            return seen
        if seen.stage:  # everyone, roster viewers included, hears of it at once
            subject = _subject(event)
            if subject is not None:
                self._pending.pop(subject, None)
        elif seen.roster:
            self._note(event)
        self._schedule_counts()
        return seen

    def page(self, after: str | None, limit: int) -> Page:
        return self.index.page(self._participants(), after, limit)

    # ------------------------------------------------------------------ deltas

    def _note(self, event: RoomEvent) -> None:
        if isinstance(event, ParticipantJoined):
            pid, change = event.participant.participant_id, "joined"
        elif isinstance(event, ParticipantLeft):
            pid, change = event.participant.participant_id, event.reason
        elif isinstance(event, ParticipantUpdated):
            pid, change = event.participant.participant_id, "updated"
            if self._pending.get(pid) == "joined":
                change = "joined"  # not told yet: still a join
        else:
            return
        self._pending.pop(pid, None)  # keep the order of the last change
        self._pending[pid] = change
        if not self.index.viewers:
            self._pending.clear()  # nobody to tell; a new viewer starts from a snapshot
            return
        if self._delta_timer is None:
            delay = max(0.0, self._delta_at + self._delta_interval - self._clock())
            self._delta_timer = self._loop.call_later(delay, self.flush_delta)

    def flush_delta(self) -> None:
        """Send what changed since the last delta to every roster viewer (now)."""
        if self._delta_timer is not None:
            self._delta_timer.cancel()
            self._delta_timer = None
        pending, self._pending = self._pending, {}
        if not pending or self.closed:
            return
        self._delta_at = self._clock()
        participants = self._participants()
        joined: list[Participant] = []
        updated: list[Participant] = []
        left: list[tuple[str, ByeReason]] = []
        for pid, change in pending.items():
            p = participants.get(pid)
            if p is None:
                reason = change if isinstance(change, ByeReason) else ByeReason.LEFT
                left.append((pid, reason))
            elif change == "joined":
                joined.append(p)  # as they are now: later changes are folded in
            else:
                updated.append(p)
        for vid in list(self.index.viewers):
            peer = self._viewer(vid)
            if peer is None:
                continue
            try:
                peer.roster_delta(joined, left, updated)
            except Exception:
                logger.exception("delivering a roster delta failed")

    # ------------------------------------------------------------------ counts

    def _schedule_counts(self) -> None:
        if self._counts_timer is not None:
            return
        interval = max(self._count_interval, len(self.index) / COUNT_MESSAGES_PER_SECOND)
        # Never at once: the change is most often somebody's join, whose own reply, offer
        # and first frame should not wait behind a message to everyone (benchmarks/join.py).
        delay = max(self._count_interval, self._counts_at + interval - self._clock())
        self._counts_timer = self._loop.call_later(delay, self._send_counts)

    def _send_counts(self) -> None:
        self._counts_timer = None
        if self.closed:
            return
        counts = self.index.counts()
        if counts == self._counts_sent:
            return
        self._counts_sent, self._counts_at = counts, self._clock()
        for peer in list(self._everyone()):
            try:
                peer.participant_count(counts)
            except Exception:
                logger.exception("delivering participant counts failed")

    def close(self) -> None:
        self.closed = True
        for timer in (self._counts_timer, self._delta_timer):
            if timer is not None:
                timer.cancel()
        self._counts_timer = self._delta_timer = None
        self._pending.clear()
