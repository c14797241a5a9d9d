"""Q&A as a pure state machine: questions, upvotes, states, publishing, open/closed.

A question comes from a chat message (its author marks it, or anyone holding
``MANAGE_QA`` marks anyone's) or is asked directly, optionally anonymously: the
name is then hidden from other attendees but kept for the organiser's export.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from webinar.i18n import N_, _, ngettext

from . import replay
from .chat import MAX_CHAT_CHARS, clean_text
from .interaction_errors import InteractionError, InteractionErrorCode
from .roles import Capability, may_not
from .state import Participant

MAX_QUESTION_CHARS = MAX_CHAT_CHARS
MAX_QUESTIONS = 1000  # per event

E = InteractionErrorCode


class QuestionState(enum.StrEnum):
    NEW = "new"
    ANSWERED = "answered"
    DISMISSED = "dismissed"


class QuestionOrder(enum.StrEnum):
    VOTES = "votes"
    TIME = "time"


@dataclass(frozen=True, slots=True)
class Question:
    question_id: str
    participant_id: str
    author_key: str
    name: str  # kept even when anonymous; only renderers hide it
    text: str
    anonymous: bool
    asked_at: float
    message_id: str | None = None  # the chat message it came from
    state: QuestionState = QuestionState.NEW
    voters: frozenset[str] = frozenset()  # participant keys

    @property
    def votes(self) -> int:
        return len(self.voters)


@dataclass(frozen=True, slots=True)
class QuestionChanged:
    question: Question
    cause: str  # "asked" | "vote" | "state"


@dataclass(frozen=True, slots=True)
class QuestionPublished:
    question: Question | None  # None: cleared
    by: str


@dataclass(frozen=True, slots=True)
class QaSettingsChanged:
    open: bool
    by: str


QaEvent = QuestionChanged | QuestionPublished | QaSettingsChanged


@dataclass(slots=True)
class QuestionBoard:
    open: bool = True
    questions: dict[str, Question] = field(default_factory=dict)
    published_id: str | None = None

    # ------------------------------------------------------------------ queries

    def get(self, question_id: str) -> Question:
        question = self.questions.get(question_id)
        if question is None:
            raise InteractionError(E.NOT_FOUND, _("no such question"))
        return question

    @property
    def published(self) -> Question | None:
        return self.questions.get(self.published_id) if self.published_id else None

    def ordered(self, order: QuestionOrder = QuestionOrder.VOTES) -> list[Question]:
        """Most votes first (older first among equals), or oldest first."""
        items = list(self.questions.values())
        if order is QuestionOrder.TIME:
            return sorted(items, key=lambda q: q.asked_at)
        return sorted(items, key=lambda q: (-q.votes, q.asked_at))

    # ------------------------------------------------------------------ commands

    def ask(
        self,
        author: Participant,
        key: str,
        text: str,
        now: float,
        *,
        anonymous: bool = False,
        message_id: str | None = None,
        on_behalf: Participant | None = None,
        on_behalf_key: str | None = None,
    ) -> QuestionChanged:
        """``author`` asks (or, with ``on_behalf``, a Q&A manager marks someone's message)."""
        if on_behalf is not None:
            self._manager(author, N_("mark someone's message as a question"))
            asker, asker_key = on_behalf, on_behalf_key or on_behalf.participant_id
        else:
            if not author.can(Capability.ASK_QUESTION) and not author.can(Capability.MANAGE_QA):
                raise InteractionError(E.FORBIDDEN, may_not(author.role, N_("ask questions")))
            asker, asker_key = author, key
        if not self.open:
            raise InteractionError(E.QA_CLOSED, _("Q&A is closed"))
        if len(self.questions) >= MAX_QUESTIONS:
            raise InteractionError(
                E.LIMIT,
                ngettext(
                    "at most %(num)d question per event",
                    "at most %(num)d questions per event",
                    MAX_QUESTIONS,
                )
                % {"num": MAX_QUESTIONS},
            )
        if message_id is not None and any(
            q.message_id == message_id for q in self.questions.values()
        ):
            raise InteractionError(E.INVALID, _("this message is a question already"))
        question = Question(
            question_id=f"qu_{replay.token_hex(8)}",
            participant_id=asker.participant_id,
            author_key=asker_key,
            name=asker.name,
            text=clean_text(text, MAX_QUESTION_CHARS),
            anonymous=anonymous,
            asked_at=now,
            message_id=message_id,
        )
        return self._keep(question, "asked")

    def vote(self, voter: Participant, key: str, question_id: str, up: bool) -> QuestionChanged:
        """One vote per person per question; voting twice changes nothing."""
        if not voter.can(Capability.ASK_QUESTION):
            raise InteractionError(E.FORBIDDEN, may_not(voter.role, N_("vote on questions")))
        if not self.open:
            raise InteractionError(E.QA_CLOSED, _("Q&A is closed"))
        question = self.get(question_id)
        if question.state is QuestionState.DISMISSED:
            raise InteractionError(E.NOT_FOUND, _("no such question"))
        voters = question.voters | {key} if up else question.voters - {key}
        return self._keep(replace(question, voters=voters), "vote")

    def set_state(
        self, actor: Participant, question_id: str, state: QuestionState
    ) -> list[QaEvent]:
        self._manager(actor, N_("answer or dismiss questions"))
        events: list[QaEvent] = [self._keep(replace(self.get(question_id), state=state), "state")]
        if state is QuestionState.DISMISSED and self.published_id == question_id:
            self.published_id = None
            events.append(QuestionPublished(None, actor.participant_id))
        return events

    def publish(self, actor: Participant, question_id: str | None) -> QuestionPublished:
        """Show one question in everyone's main view (None clears it)."""
        self._manager(actor, N_("publish questions"))
        if question_id is None:
            self.published_id = None
            return QuestionPublished(None, actor.participant_id)
        if not self.open:
            raise InteractionError(E.QA_CLOSED, _("Q&A is closed"))
        question = self.get(question_id)
        if question.state is QuestionState.DISMISSED:
            raise InteractionError(E.INVALID, _("a dismissed question cannot be published"))
        self.published_id = question_id
        return QuestionPublished(question, actor.participant_id)

    def set_open(self, actor: Participant, open_: bool) -> list[QaEvent]:
        """Closing Q&A hides the list from attendees and clears the published question."""
        self._manager(actor, N_("open or close Q&A"))
        events: list[QaEvent] = []
        if not open_ and self.published_id is not None:
            self.published_id = None
            events.append(QuestionPublished(None, actor.participant_id))
        self.open = open_
        events.append(QaSettingsChanged(open_, actor.participant_id))
        return events

    def restore(self, questions: list[Question]) -> None:
        for question in questions:
            self.questions[question.question_id] = question

    def _keep(self, question: Question, cause: str) -> QuestionChanged:
        """Keep the new version of a question; what the room is told."""
        self.questions[question.question_id] = question
        return QuestionChanged(question, cause)

    def _manager(self, actor: Participant, what: str) -> None:
        """Refuse unless ``actor`` manages Q&A; ``what`` is ``N_()``-marked."""
        if not actor.can(Capability.MANAGE_QA):
            raise InteractionError(E.FORBIDDEN, may_not(actor.role, what))
