"""Live captions as a pure state machine: on/off, who captions, lines, the per-sender limit.

Captions come from a presenter's browser (the Web Speech API) or from a person a presenter
made a *captioner* (typed). A line is *interim* (speech still being recognised, or text still
being typed: shown, replaced by the next, never kept) or *final* (kept with its time, shown
to late joiners, exported beside recordings as WebVTT: :mod:`webinar.recordings.captions`).

Time is passed in; nothing here does I/O. Who may do what: ``MANAGE_CAPTIONS`` (presenters
and hosts) makes and unmakes captioners, switches captions and sends lines; a captioner
(by person key, so the right survives a reconnect) switches captions and sends lines.
Attendees do not see captions while the room is backstage (lobby, presenters-only mode):
:func:`reaches`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import ClassVar

from webinar.i18n import N_, _

from . import replay
from .chat import clean_text
from .interaction_errors import InteractionError, InteractionErrorCode
from .roles import Capability, may_not
from .state import Mode, Participant, Phase, RoomState

MAX_CAPTION_CHARS = 500  # characters per line, after trimming
CAPTION_HISTORY = 5  # final lines kept in memory and sent to late joiners
#: Final lines one sender may send at once, refilled at FINAL_PER_SECOND (a typist's
#: Enter, a recogniser's end of phrase: a few a second at most).
FINAL_BURST = 5
FINAL_PER_SECOND = 2.0
#: Interim lines (the browser sends one at most every 200 ms while someone speaks or types).
INTERIM_BURST = 10
INTERIM_PER_SECOND = 6.0

E = InteractionErrorCode


@dataclass(frozen=True, slots=True)
class CaptionLine:
    line_id: str  # "" for an interim line
    seq: int  # order of final lines in the room; 0 for an interim line
    participant_id: str
    name: str
    text: str
    at: float  # epoch seconds, when the server accepted it
    final: bool


@dataclass(frozen=True, slots=True)
class CaptionSent:
    line: CaptionLine


@dataclass(frozen=True, slots=True)
class CaptionsSwitched:
    enabled: bool
    by: str


@dataclass(frozen=True, slots=True)
class CaptionerChanged:
    participant_id: str
    key: str
    captioner: bool
    by: str


CaptionsEvent = CaptionSent | CaptionsSwitched | CaptionerChanged


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


def reaches(state: RoomState, viewer: Participant, captioner: bool) -> bool:
    """Whether ``viewer`` sees captions now: not attendees while the room is backstage
    (the lobby, presenters-only mode), as they do not get its media then either."""
    backstage = state.phase is Phase.LOBBY or state.mode is Mode.PRESENTERS_ONLY
    return not backstage or captioner or viewer.can(Capability.SEE_BACKSTAGE)


@dataclass(slots=True)
class Captions:
    enabled: bool = False
    captioners: set[str] = field(default_factory=set)  # person keys
    lines: OrderedDict[str, CaptionLine] = field(default_factory=OrderedDict)
    seq: int = 0
    _buckets: dict[tuple[str, bool], _Bucket] = field(default_factory=dict)
    #: Rate-limit bookkeeping: an attempt whose write failed still counts.
    NOT_UNDONE: ClassVar[frozenset[str]] = frozenset({"_buckets"})

    # ------------------------------------------------------------------ queries

    def history(self) -> list[CaptionLine]:
        return list(self.lines.values())

    def is_captioner(self, key: str) -> bool:
        return key in self.captioners

    def may_caption(self, who: Participant, key: str) -> bool:
        return who.can(Capability.MANAGE_CAPTIONS) or key in self.captioners

    # ------------------------------------------------------------------ commands

    def set_captioner(
        self, actor: Participant, target: Participant, target_key: str, on: bool
    ) -> CaptionerChanged:
        if not actor.can(Capability.MANAGE_CAPTIONS):
            raise InteractionError(E.FORBIDDEN, may_not(actor.role, N_("choose captioners")))
        if on and target.can(Capability.MANAGE_CAPTIONS):
            raise InteractionError(E.INVALID, _("presenters may caption already"))
        if on:
            self.captioners.add(target_key)
        else:
            self.captioners.discard(target_key)
        return CaptionerChanged(target.participant_id, target_key, on, actor.participant_id)

    def switch(self, actor: Participant, key: str, on: bool) -> CaptionsSwitched:
        if not self.may_caption(actor, key):
            raise InteractionError(E.FORBIDDEN, may_not(actor.role, N_("switch captions")))
        self.enabled = on
        return CaptionsSwitched(on, actor.participant_id)

    def send(
        self, author: Participant, key: str, text: str, *, final: bool, now: float
    ) -> CaptionSent:
        if not self.may_caption(author, key):
            raise InteractionError(E.FORBIDDEN, may_not(author.role, N_("send captions")))
        if not self.enabled:
            raise InteractionError(E.CAPTIONS_OFF, _("captions are off; turn them on first"))
        text = " ".join(clean_text(text, MAX_CAPTION_CHARS).split())
        self._take(key, final, now)
        if not final:
            return CaptionSent(
                CaptionLine("", 0, author.participant_id, author.name, text, now, False)
            )
        self.seq += 1
        line = CaptionLine(
            line_id=f"cl_{replay.token_hex(8)}",
            seq=self.seq,
            participant_id=author.participant_id,
            name=author.name,
            text=text,
            at=now,
            final=True,
        )
        self._keep(line)
        return CaptionSent(line)

    def restore(self, lines: list[CaptionLine], *, enabled: bool, captioners: set[str]) -> None:
        """Load what the store holds (oldest line first) when a room opens again."""
        self.enabled = enabled
        self.captioners = set(captioners)
        for line in lines:
            self._keep(line)
            self.seq = max(self.seq, line.seq)

    # ------------------------------------------------------------------ helpers

    def _keep(self, line: CaptionLine) -> None:
        self.lines[line.line_id] = line
        while len(self.lines) > CAPTION_HISTORY:
            self.lines.popitem(last=False)

    def _take(self, key: str, final: bool, now: float) -> None:
        burst, rate = (
            (FINAL_BURST, FINAL_PER_SECOND) if final else (INTERIM_BURST, INTERIM_PER_SECOND)
        )
        bucket = self._buckets.get((key, final))
        if bucket is None:
            bucket = self._buckets[(key, final)] = _Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1:
            raise InteractionError(
                E.RATE_LIMITED,
                _("too many caption lines: at most %(burst)d at once and %(rate)s per second")
                % {"burst": burst, "rate": f"{rate:g}"},
                retry_after=(1 - bucket.tokens) / rate,
            )
        bucket.tokens -= 1
