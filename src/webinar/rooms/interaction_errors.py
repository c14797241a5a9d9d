"""Typed refusals shared by the interaction state machines (chat, polls, Q&A, CTA)."""

from __future__ import annotations

import enum


class InteractionErrorCode(enum.StrEnum):
    FORBIDDEN = "forbidden"  # the capability is missing
    CHAT_OFF = "chat-off"  # presenters switched chat off for attendees
    CHAT_MUTED = "chat-muted"  # this attendee is muted in chat
    SLOW_MODE = "slow-mode"  # one message per N seconds
    RATE_LIMITED = "rate-limited"  # a flood: more than the burst of messages
    TOO_LONG = "too-long"
    EMPTY = "empty"
    NOT_FOUND = "not-found"
    POLL_OPEN = "poll-open"  # another poll is running
    POLL_CLOSED = "poll-closed"  # not open for answers (draft or closed)
    BAD_ANSWER = "bad-answer"
    QA_CLOSED = "qa-closed"
    BAD_URL = "bad-url"
    LIMIT = "limit-reached"  # a count bound (polls per event, questions per event, ...)
    INVALID = "invalid-request"
    CAPTIONS_OFF = "captions-off"  # live captions are switched off
    REACTIONS_OFF = "reactions-off"  # presenters switched reactions off for attendees


class InteractionError(Exception):
    """A refused interaction command; the room is unchanged."""

    def __init__(
        self, code: InteractionErrorCode, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def require(ok: bool, code: InteractionErrorCode, message: str) -> None:
    if not ok:
        raise InteractionError(code, message)
