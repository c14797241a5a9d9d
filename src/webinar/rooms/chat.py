"""Room chat as a pure state machine: post, delete, on/off, slow mode, mute, flood limit.

Time is passed in; nothing here does I/O. Who may do what comes from capabilities:
``CHAT`` posts while chat is on; ``MODERATE_CHAT`` switches it, deletes, mutes, and is
exempt from the switch, slow mode and mutes (never from the flood limit).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import ClassVar

from webinar.i18n import N_, _, ngettext

from . import replay
from .interaction_errors import InteractionError, InteractionErrorCode
from .roles import Capability, may_not
from .state import Participant

MAX_CHAT_CHARS = 2000  # characters per message, after trimming
CHAT_HISTORY = 200  # recent messages kept in memory and sent to late joiners
CHAT_BURST = 5  # messages one participant may send at once ...
CHAT_PER_SECOND = 1.0  # ... refilled at this rate (the flood limit)
MAX_SLOW_MODE_SECONDS = 3600

E = InteractionErrorCode


@dataclass(frozen=True, slots=True)
class ChatMessage:
    message_id: str
    seq: int  # order in the room, 1, 2, 3, ...
    participant_id: str
    name: str
    role: str
    text: str
    at: float  # epoch seconds
    deleted: bool = False
    question_id: str | None = None  # set when it was marked as a question


@dataclass(frozen=True, slots=True)
class ChatPosted:
    message: ChatMessage


@dataclass(frozen=True, slots=True)
class ChatDeleted:
    message_id: str
    by: str


@dataclass(frozen=True, slots=True)
class ChatSettingsChanged:
    enabled: bool
    slow_mode_seconds: int
    by: str


@dataclass(frozen=True, slots=True)
class ChatMuteChanged:
    participant_id: str
    muted: bool
    by: str


ChatEvent = ChatPosted | ChatDeleted | ChatSettingsChanged | ChatMuteChanged


def clean_text(text: str, limit: int) -> str:
    """Trim, drop control characters except new lines, and check the length."""
    cleaned = "".join(ch for ch in text if ch in "\n\t" or (ch >= " " and ch != "\x7f"))
    cleaned = cleaned.replace("\t", " ").strip()
    if not cleaned:
        raise InteractionError(E.EMPTY, _("the text is empty"))
    if len(cleaned) > limit:
        raise InteractionError(
            E.TOO_LONG,
            ngettext(
                "at most %(num)d character, not %(given)d",
                "at most %(num)d characters, not %(given)d",
                limit,
            )
            % {"num": limit, "given": len(cleaned)},
        )
    return cleaned


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class Chat:
    enabled: bool = True  # for attendees; moderators may always post
    slow_mode_seconds: int = 0  # 0: off
    muted: set[str] = field(default_factory=set)  # participant keys (see ``post``)
    messages: OrderedDict[str, ChatMessage] = field(default_factory=OrderedDict)
    seq: int = 0
    _last_post: dict[str, float] = field(default_factory=dict)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    #: Rate-limit bookkeeping, one entry per person: an attempt whose write failed still
    #: counts, and a rollback need not copy them (RoomInteraction.change).
    NOT_UNDONE: ClassVar[frozenset[str]] = frozenset({"_last_post", "_buckets"})

    # ------------------------------------------------------------------ queries

    def history(self, limit: int = CHAT_HISTORY) -> list[ChatMessage]:
        live = [m for m in self.messages.values() if not m.deleted]
        return live[-limit:]

    def get(self, message_id: str) -> ChatMessage:
        message = self.messages.get(message_id)
        if message is None or message.deleted:
            raise InteractionError(E.NOT_FOUND, _("no such chat message"))
        return message

    def is_muted(self, key: str) -> bool:
        return key in self.muted

    # ------------------------------------------------------------------ commands

    def post(self, author: Participant, key: str, text: str, now: float) -> ChatPosted:
        """``key`` identifies the person across reconnects (mutes and limits follow it)."""
        if not author.can(Capability.CHAT):
            raise InteractionError(E.FORBIDDEN, may_not(author.role, N_("chat")))
        text = clean_text(text, MAX_CHAT_CHARS)
        moderator = author.can(Capability.MODERATE_CHAT)
        if not moderator:
            if not self.enabled:
                raise InteractionError(E.CHAT_OFF, _("the presenters switched chat off"))
            if key in self.muted:
                raise InteractionError(E.CHAT_MUTED, _("a presenter muted you in chat"))
            last = self._last_post.get(key)
            if self.slow_mode_seconds and last is not None:
                wait = last + self.slow_mode_seconds - now
                if wait > 0:
                    raise InteractionError(
                        E.SLOW_MODE,
                        _("slow mode: one message every %(every)s s; wait %(wait)s s")
                        % {"every": self.slow_mode_seconds, "wait": f"{wait:.0f}"},
                        retry_after=wait,
                    )
        self._take(key, now)
        self.seq += 1
        message = ChatMessage(
            message_id=f"cm_{replay.token_hex(8)}",
            seq=self.seq,
            participant_id=author.participant_id,
            name=author.name,
            role=author.role.value,
            text=text,
            at=now,
        )
        self._last_post[key] = now
        self._keep(message)
        return ChatPosted(message)

    def delete(self, actor: Participant, message_id: str) -> ChatDeleted:
        self._moderator(actor, N_("delete messages"))
        message = self.get(message_id)
        self.messages[message_id] = replace(message, deleted=True)
        return ChatDeleted(message_id, actor.participant_id)

    def configure(
        self, actor: Participant, *, enabled: bool | None, slow_mode_seconds: int | None
    ) -> ChatSettingsChanged:
        self._moderator(actor, N_("change the chat settings"))
        if slow_mode_seconds is not None:
            if not 0 <= slow_mode_seconds <= MAX_SLOW_MODE_SECONDS:
                raise InteractionError(
                    E.INVALID,
                    _("slow mode must be 0 to %(max)d seconds") % {"max": MAX_SLOW_MODE_SECONDS},
                )
            self.slow_mode_seconds = slow_mode_seconds
        if enabled is not None:
            self.enabled = enabled
        return ChatSettingsChanged(self.enabled, self.slow_mode_seconds, actor.participant_id)

    def set_muted(
        self, actor: Participant, target: Participant, target_key: str, muted: bool
    ) -> ChatMuteChanged:
        self._moderator(actor, N_("mute people in chat"))
        if target.can(Capability.MODERATE_CHAT):
            raise InteractionError(E.INVALID, _("presenters cannot be muted in chat"))
        if muted:
            self.muted.add(target_key)
        else:
            self.muted.discard(target_key)
        return ChatMuteChanged(target.participant_id, muted, actor.participant_id)

    def link_question(self, message_id: str, question_id: str) -> ChatMessage:
        message = self.get(message_id)
        if message.question_id is not None:
            raise InteractionError(E.INVALID, _("this message is a question already"))
        message = replace(message, question_id=question_id)
        self.messages[message_id] = message
        return message

    def restore(self, messages: list[ChatMessage], seq: int = 0) -> None:
        """Load persisted history (oldest first), e.g. when a room opens again."""
        self.seq = max(self.seq, seq)
        for message in messages:
            self._keep(message)
            self.seq = max(self.seq, message.seq)

    # ------------------------------------------------------------------ helpers

    def _keep(self, message: ChatMessage) -> None:
        self.messages[message.message_id] = message
        while len(self.messages) > CHAT_HISTORY:
            self.messages.popitem(last=False)

    def _take(self, key: str, now: float) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(CHAT_BURST), now)
        bucket.tokens = min(float(CHAT_BURST), bucket.tokens + (now - bucket.at) * CHAT_PER_SECOND)
        bucket.at = now
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / CHAT_PER_SECOND
            raise InteractionError(
                E.RATE_LIMITED,
                _("too many chat messages: at most %(burst)d at once and %(rate)s per second")
                % {"burst": CHAT_BURST, "rate": f"{CHAT_PER_SECOND:g}"},
                retry_after=wait,
            )
        bucket.tokens -= 1

    def _moderator(self, actor: Participant, what: str) -> None:
        """Refuse unless ``actor`` moderates chat; ``what`` is ``N_()``-marked."""
        if not actor.can(Capability.MODERATE_CHAT):
            raise InteractionError(E.FORBIDDEN, may_not(actor.role, what))
