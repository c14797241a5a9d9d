"""A live room's interaction: chat, Q&A, polls and the call-to-action together.

The four state machines are pure; this object owns what is not: the timers (a
call-to-action closing by itself, live poll results sent at most every
:data:`RESULTS_INTERVAL`) and the fan-out of events to the room's connections.
The :class:`webinar.rooms.live.LiveRoom` creates one and closes it with itself.

A command and the write that backs it run under :meth:`RoomInteraction.change`: one at a time
per room, and when the write fails, the state machines go back to what they held before the
command, so nobody (a late joiner's sync included) ever sees a change the store does not have.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from . import replay
from .captions import Captions, CaptionsEvent
from .chat import Chat, ChatEvent
from .cta import CtaBoard, CtaClosed, CtaEvent, CtaShown
from .polls import PollBook, PollEvent
from .qa import QaEvent, QuestionBoard, QuestionChanged
from .reactions import ReactionSettings, ReactionsEvent
from .stage import StageContent, StageEvent

logger = logging.getLogger(__name__)

RESULTS_INTERVAL = 0.5  # seconds: live poll results are sent at most this often
#: seconds: a question's vote count goes to everyone at most this often (the voter at once)
VOTES_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class PollResultsChanged:
    poll_id: str


InteractionEvent = (
    ChatEvent
    | QaEvent
    | PollEvent
    | CtaEvent
    | PollResultsChanged
    | StageEvent
    | CaptionsEvent
    | ReactionsEvent
)


def _fields(machine: object) -> tuple[str, ...]:
    if dataclasses.is_dataclass(machine):
        return tuple(f.name for f in dataclasses.fields(machine))
    return tuple(type(machine).__slots__)  # type: ignore[attr-defined]


def _copied(value: Any) -> Any:
    return copy.copy(value) if isinstance(value, dict | set | list) else value


@runtime_checkable
class InteractionPeer(Protocol):
    """A connection that shows interaction (each renders events for its viewer)."""

    def interaction_event(self, event: InteractionEvent) -> None: ...


class RoomInteraction:
    def __init__(
        self, peers: Callable[[], Iterable[object]], *, clock: Callable[[], float] = time.time
    ) -> None:
        self.chat = Chat()
        self.qa = QuestionBoard()
        self.polls = PollBook()
        self.cta = CtaBoard()
        self.captions = Captions()  # live captions (webinar.rooms.captions)
        #: The reactions switch (the reactions themselves: LiveRoom.reactions); like the
        #: stage, applied after its write (``react`` reads it without the lock).
        self.reaction_settings = ReactionSettings()
        #: What is on stage besides cameras: not undone by ``change`` (its commands are planned,
        #: written, then applied; see webinar.rooms.stage).
        self.stage = StageContent()
        self.loaded = False  # persisted state restored (see webinar.signalling.interaction)
        self.closed = False
        self._peers = peers
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._cta_timer: asyncio.TimerHandle | None = None
        self._results_timer: asyncio.TimerHandle | None = None
        self._results_due: set[str] = set()
        self._votes_timer: asyncio.TimerHandle | None = None
        self._votes_due: dict[str, None] = {}
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def change(self, *, undo: bool = True) -> AsyncIterator[None]:
        """Run one command and its write: alone in this room, and undone if anything raises.

        ``undo=False`` for what changes nothing before its write: a reader that must not see
        a change before its write (a sync), or poll answers (checked, then recorded after
        their write); they skip the checkpoint, whose cost grows with the room."""
        async with self._lock:
            if not undo:
                yield
                return
            saved = self._checkpoint()
            try:
                yield
            except BaseException:
                self._rollback(saved)
                raise

    #: (Not ``reaction_settings``: a switch is applied after its write, never undone.)
    _MACHINES = ("chat", "qa", "polls", "cta", "captions")

    def _checkpoint(self) -> dict[str, dict[str, Any]]:
        # One level of containers is copied: their values are frozen records, replaced rather
        # than changed (poll answers, two levels down, are recorded after their write). A
        # machine's NOT_UNDONE fields (rate-limit bookkeeping) are kept as they are.
        saved: dict[str, dict[str, Any]] = {}
        for name in self._MACHINES:
            machine = getattr(self, name)
            kept: frozenset[str] = getattr(type(machine), "NOT_UNDONE", frozenset())
            saved[name] = {
                field: _copied(getattr(machine, field))
                for field in _fields(machine)
                if field not in kept
            }
        return saved

    def _rollback(self, saved: dict[str, dict[str, Any]]) -> None:
        for name, values in saved.items():
            machine = getattr(self, name)
            for field_name, value in values.items():
                setattr(machine, field_name, value)

    def now(self) -> float:
        return replay.now(self._clock)

    def emit(self, events: Iterable[InteractionEvent]) -> None:
        """Deliver events to every connection, in order."""
        if self.closed:
            return
        peers = [p for p in self._peers() if isinstance(p, InteractionPeer)]
        for event in events:
            if isinstance(event, CtaShown):
                self._arm_cta(event)
            elif isinstance(event, CtaClosed) and self.cta.current is None:
                self._disarm_cta()
            for peer in peers:
                try:
                    peer.interaction_event(event)
                except Exception:
                    logger.exception("delivering %s failed", type(event).__name__)

    def results_changed(self, poll_id: str) -> None:
        """New answers: send results soon, at most every RESULTS_INTERVAL."""
        if self.closed:
            return
        self._results_due.add(poll_id)
        if self._results_timer is None:
            self._results_timer = self._loop.call_later(RESULTS_INTERVAL, self._flush_results)

    def _flush_results(self) -> None:
        self._results_timer = None
        due, self._results_due = sorted(self._results_due), set()
        self.emit(PollResultsChanged(poll_id) for poll_id in due)

    def votes_changed(self, question_id: str) -> None:
        """A vote: everyone gets the question's new count soon, at most every
        VOTES_INTERVAL (a vote storm then costs O(N) a question a tick, not a vote)."""
        if self.closed:
            return
        self._votes_due[question_id] = None
        if self._votes_timer is None:
            self._votes_timer = self._loop.call_later(VOTES_INTERVAL, self._flush_votes)

    def _flush_votes(self) -> None:
        self._votes_timer = None
        due, self._votes_due = list(self._votes_due), {}
        questions = self.qa.questions
        self.emit(QuestionChanged(questions[qid], "vote") for qid in due if qid in questions)

    def _arm_cta(self, shown: CtaShown) -> None:
        self._disarm_cta()
        closes_at = shown.cta.closes_at
        if closes_at is not None:
            delay = max(0.0, closes_at - self._clock())
            self._cta_timer = self._loop.call_later(delay, self._expire_cta)

    def _disarm_cta(self) -> None:
        if self._cta_timer is not None:
            self._cta_timer.cancel()
            self._cta_timer = None

    def _expire_cta(self) -> None:
        self._cta_timer = None
        self.emit(self.cta.expire(self._clock() + 0.01))

    def arm_restored_cta(self) -> None:
        """After loading a live call-to-action from the store, close it on time."""
        if self.cta.current is not None:
            self._arm_cta(CtaShown(self.cta.current))

    def close(self) -> None:
        self.closed = True
        self._disarm_cta()
        if self._results_timer is not None:
            self._results_timer.cancel()
            self._results_timer = None
        if self._votes_timer is not None:
            self._votes_timer.cancel()
            self._votes_timer = None
