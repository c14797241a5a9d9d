"""Polls and tests as a pure state machine.

A *poll* has no right answers; a *test* marks them and scores each attendee.
Questions are single choice, multiple choice or short text. One poll is open at
a time; the server keeps one answer per attendee per question (answering again
replaces it) until the poll closes.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from typing import Any

from webinar.i18n import N_, _, ngettext

from . import replay
from .chat import clean_text
from .interaction_errors import InteractionError, InteractionErrorCode
from .roles import Capability, may_not
from .state import Participant

MAX_POLLS = 100  # per event
MAX_QUESTIONS_PER_POLL = 20
MIN_OPTIONS = 2
MAX_OPTIONS_PER_QUESTION = 10
MAX_ACCEPTED_TEXTS = 10  # accepted answers of a scored text question
POLL_TITLE_CHARS = 200
QUESTION_TEXT_CHARS = 500
OPTION_TEXT_CHARS = 200
TEXT_ANSWER_CHARS = 500
IMAGE_ID = re.compile(r"^img_[0-9a-f]{24}$")

E = InteractionErrorCode


class PollKind(enum.StrEnum):
    POLL = "poll"
    TEST = "test"


class QuestionKind(enum.StrEnum):
    SINGLE = "single"
    MULTIPLE = "multiple"
    TEXT = "text"


class PollState(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Option:
    option_id: str
    text: str
    image_id: str | None = None
    correct: bool = False


@dataclass(frozen=True, slots=True)
class PollQuestion:
    question_id: str
    text: str
    kind: QuestionKind
    options: tuple[Option, ...] = ()
    accepted: tuple[str, ...] = ()  # a test's accepted text answers (case-insensitive)

    @property
    def scored(self) -> bool:
        if self.kind is QuestionKind.TEXT:
            return bool(self.accepted)
        return any(o.correct for o in self.options)

    def is_correct(self, option_ids: tuple[str, ...], text: str | None) -> bool:
        if self.kind is QuestionKind.TEXT:
            given = " ".join((text or "").split()).casefold()
            return given in {" ".join(a.split()).casefold() for a in self.accepted}
        return set(option_ids) == {o.option_id for o in self.options if o.correct}


@dataclass(frozen=True, slots=True)
class Poll:
    poll_id: str
    title: str
    kind: PollKind
    questions: tuple[PollQuestion, ...]
    state: PollState = PollState.DRAFT
    results_shown: bool = False
    created_at: float = 0.0
    launched_at: float | None = None
    closed_at: float | None = None

    def question(self, question_id: str) -> PollQuestion:
        for q in self.questions:
            if q.question_id == question_id:
                return q
        raise InteractionError(E.NOT_FOUND, _("no such question in this poll"))


@dataclass(frozen=True, slots=True)
class Answer:
    poll_id: str
    question_id: str
    key: str  # who answered, across reconnects
    participant_id: str
    name: str
    option_ids: tuple[str, ...]
    text: str | None
    at: float
    correct: bool | None  # None: not scored


@dataclass(frozen=True, slots=True)
class QuestionResult:
    question_id: str
    responses: int
    counts: dict[str, int]  # option id -> answers choosing it
    texts: tuple[str, ...] = ()  # text answers (presenters only)


@dataclass(frozen=True, slots=True)
class Score:
    correct: int
    total: int  # scored questions


@dataclass(frozen=True, slots=True)
class PollChanged:
    poll: Poll
    cause: str  # "created" | "updated" | "launched" | "closed" | "results" | "deleted"


@dataclass(frozen=True, slots=True)
class PollAnswered:
    poll: Poll
    answers: tuple[Answer, ...]


PollEvent = PollChanged | PollAnswered


def build_poll(spec: dict[str, Any], *, now: float, poll_id: str | None = None) -> Poll:
    """Validate a poll definition (the shape of ``poll-create`` and the admin API)."""
    try:
        kind = PollKind(spec.get("kind", "poll"))
    except ValueError:
        raise InteractionError(E.INVALID, _("kind must be 'poll' or 'test'")) from None
    # TRANSLATORS: a poll's title, named in a refusal ("title must be text").
    title = _text(spec.get("title"), POLL_TITLE_CHARS, _("title"))
    raw_questions = spec.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        raise InteractionError(E.INVALID, _("a poll needs at least one question"))
    if len(raw_questions) > MAX_QUESTIONS_PER_POLL:
        raise InteractionError(
            E.LIMIT,
            ngettext(
                "at most %(num)d question per poll",
                "at most %(num)d questions per poll",
                MAX_QUESTIONS_PER_POLL,
            )
            % {"num": MAX_QUESTIONS_PER_POLL},
        )
    questions = tuple(_question(q, kind, i + 1) for i, q in enumerate(raw_questions))
    return Poll(
        poll_id=poll_id or f"po_{replay.token_hex(8)}",
        title=title,
        kind=kind,
        questions=questions,
        created_at=now,
    )


def polls_limit_message() -> str:
    """The refusal of one poll too many, in the language in effect."""
    return ngettext(
        "at most %(num)d poll per event", "at most %(num)d polls per event", MAX_POLLS
    ) % {"num": MAX_POLLS}


def _text(value: Any, limit: int, what: str) -> str:
    """``value`` as clean text; ``what`` (translated) names it in a refusal."""
    if not isinstance(value, str):
        raise InteractionError(E.INVALID, _("%(where)s must be text") % {"where": what})
    try:
        return clean_text(value, limit)
    except InteractionError as exc:
        raise InteractionError(exc.code, _where(what, exc.message)) from None


def _where(where: str, problem: str) -> str:
    # TRANSLATORS: %(where)s names a part of a poll ("question 2 option 3"), %(problem)s
    # says what is wrong with it.
    return _("%(where)s: %(problem)s") % {"where": where, "problem": problem}


def _question(spec: Any, kind: PollKind, number: int) -> PollQuestion:
    where = _("question %(num)d") % {"num": number}
    if not isinstance(spec, dict):
        raise InteractionError(E.INVALID, _("%(where)s must be an object") % {"where": where})
    text = _text(spec.get("text"), QUESTION_TEXT_CHARS, where)
    try:
        qkind = QuestionKind(spec.get("kind", "single"))
    except ValueError:
        raise InteractionError(
            E.INVALID, _where(where, _("kind must be 'single', 'multiple' or 'text'"))
        ) from None
    qid = f"q{number}"
    if qkind is QuestionKind.TEXT:
        if spec.get("options"):
            raise InteractionError(E.INVALID, _where(where, _("a text question has no options")))
        accepted_raw = spec.get("accepted") or []
        if not isinstance(accepted_raw, list) or len(accepted_raw) > MAX_ACCEPTED_TEXTS:
            raise InteractionError(
                E.LIMIT,
                _where(
                    where,
                    ngettext(
                        "at most %(num)d accepted answer",
                        "at most %(num)d accepted answers",
                        MAX_ACCEPTED_TEXTS,
                    )
                    % {"num": MAX_ACCEPTED_TEXTS},
                ),
            )
        # TRANSLATORS: the answers a text question of a test accepts as right.
        accepted_where = _("%(where)s accepted") % {"where": where}
        accepted = tuple(_text(a, TEXT_ANSWER_CHARS, accepted_where) for a in accepted_raw)
        if accepted and kind is PollKind.POLL:
            raise InteractionError(E.INVALID, _where(where, _("a poll has no right answers")))
        return PollQuestion(qid, text, qkind, accepted=accepted)
    raw_options = spec.get("options")
    if not isinstance(raw_options, list) or len(raw_options) < MIN_OPTIONS:
        raise InteractionError(
            E.INVALID,
            ngettext(
                "%(where)s needs at least %(num)d option",
                "%(where)s needs at least %(num)d options",
                MIN_OPTIONS,
            )
            % {"where": where, "num": MIN_OPTIONS},
        )
    if len(raw_options) > MAX_OPTIONS_PER_QUESTION:
        raise InteractionError(
            E.LIMIT,
            _where(
                where,
                ngettext(
                    "at most %(num)d option per question",
                    "at most %(num)d options per question",
                    MAX_OPTIONS_PER_QUESTION,
                )
                % {"num": MAX_OPTIONS_PER_QUESTION},
            ),
        )
    options: list[Option] = []
    for j, raw in enumerate(raw_options):
        owhere = _("question %(num)d option %(option)d") % {"num": number, "option": j + 1}
        if not isinstance(raw, dict):
            raise InteractionError(E.INVALID, _("%(where)s must be an object") % {"where": owhere})
        image = raw.get("image_id")
        if image is not None and (not isinstance(image, str) or not IMAGE_ID.match(image)):
            raise InteractionError(
                E.INVALID, _where(owhere, _("image_id is not an uploaded image"))
            )
        correct = raw.get("correct", False)
        if not isinstance(correct, bool):
            raise InteractionError(E.INVALID, _where(owhere, _("correct must be true or false")))
        if correct and kind is PollKind.POLL:
            raise InteractionError(E.INVALID, _where(where, _("a poll has no right answers")))
        options.append(
            Option(
                f"{qid}o{j + 1}", _text(raw.get("text"), OPTION_TEXT_CHARS, owhere), image, correct
            )
        )
    right = sum(o.correct for o in options)
    if kind is PollKind.TEST and right == 0:
        raise InteractionError(
            E.INVALID, _where(where, _("a test question needs a correct option"))
        )
    if qkind is QuestionKind.SINGLE and right > 1:
        raise InteractionError(
            E.INVALID, _where(where, _("a single-choice question has one answer"))
        )
    return PollQuestion(qid, text, qkind, tuple(options))


@dataclass(slots=True)
class PollBook:
    polls: dict[str, Poll] = field(default_factory=dict)
    open_id: str | None = None
    # poll id -> question id -> person key -> answer
    answers: dict[str, dict[str, dict[str, Answer]]] = field(default_factory=dict)

    # ------------------------------------------------------------------ queries

    def get(self, poll_id: str) -> Poll:
        poll = self.polls.get(poll_id)
        if poll is None:
            raise InteractionError(E.NOT_FOUND, _("no such poll"))
        return poll

    @property
    def open_poll(self) -> Poll | None:
        return self.polls.get(self.open_id) if self.open_id else None

    def results(self, poll_id: str) -> list[QuestionResult]:
        poll = self.get(poll_id)
        by_question = self.answers.get(poll_id, {})
        out: list[QuestionResult] = []
        for q in poll.questions:
            answers = by_question.get(q.question_id, {})
            counts = {o.option_id: 0 for o in q.options}
            texts: list[str] = []
            for a in answers.values():
                for oid in a.option_ids:
                    counts[oid] = counts.get(oid, 0) + 1
                if a.text is not None:
                    texts.append(a.text)
            out.append(QuestionResult(q.question_id, len(answers), counts, tuple(texts)))
        return out

    def answers_of(self, poll_id: str, key: str) -> list[Answer]:
        return [
            a
            for per_key in self.answers.get(poll_id, {}).values()
            if (a := per_key.get(key)) is not None
        ]

    def score(self, poll_id: str, key: str) -> Score:
        poll = self.get(poll_id)
        mine = {a.question_id: a for a in self.answers_of(poll_id, key)}
        scored = [q for q in poll.questions if q.scored]
        correct = sum(1 for q in scored if (a := mine.get(q.question_id)) and a.correct)
        return Score(correct, len(scored))

    # ------------------------------------------------------------------ commands

    def add(self, actor: Participant, poll: Poll) -> PollChanged:
        self._runner(actor, N_("prepare polls"))
        return self.add_prepared(poll)

    def add_prepared(self, poll: Poll) -> PollChanged:
        """A poll prepared outside the room (dashboard/API) or restored from the store."""
        if poll.poll_id not in self.polls and len(self.polls) >= MAX_POLLS:
            raise InteractionError(E.LIMIT, polls_limit_message())
        self.polls[poll.poll_id] = poll
        if poll.state is PollState.OPEN:
            self.open_id = poll.poll_id
        return PollChanged(poll, "created")

    def delete(self, actor: Participant, poll_id: str) -> PollChanged:
        self._runner(actor, N_("delete polls"))
        return self.remove_prepared(poll_id)

    def remove_prepared(self, poll_id: str) -> PollChanged:
        """Delete a poll that never ran (from the room, the dashboard or the API)."""
        poll = self.get(poll_id)
        if poll.state is not PollState.DRAFT:
            raise InteractionError(E.INVALID, _("only a poll that never ran can be deleted"))
        del self.polls[poll_id]
        return PollChanged(poll, "deleted")

    def replace_prepared(self, poll: Poll) -> PollChanged:
        """A new definition (title, kind, questions) of a poll that never ran; answers
        were never given to it, so nothing is lost."""
        current = self.get(poll.poll_id)
        if current.state is not PollState.DRAFT:
            raise InteractionError(E.INVALID, _("only a poll that never ran can be changed"))
        return self._keep(replace(poll, created_at=current.created_at), "updated")

    def launch(self, actor: Participant, poll_id: str, now: float) -> PollChanged:
        self._runner(actor, N_("launch polls"))
        poll = self.get(poll_id)
        if self.open_id is not None:
            raise InteractionError(E.POLL_OPEN, _("close the running poll first"))
        if poll.state is not PollState.DRAFT:
            raise InteractionError(E.POLL_CLOSED, _("this poll has run already"))
        self.open_id = poll_id
        return self._keep(replace(poll, state=PollState.OPEN, launched_at=now), "launched")

    def close(self, actor: Participant, poll_id: str, now: float) -> PollChanged:
        self._runner(actor, N_("close polls"))
        poll = self.get(poll_id)
        if poll.state is not PollState.OPEN:
            raise InteractionError(E.POLL_CLOSED, _("this poll is not open"))
        self.open_id = None
        return self._keep(replace(poll, state=PollState.CLOSED, closed_at=now), "closed")

    def show_results(self, actor: Participant, poll_id: str, shown: bool) -> PollChanged:
        self._runner(actor, N_("show results"))
        poll = self.get(poll_id)
        if poll.state is PollState.DRAFT:
            raise InteractionError(E.POLL_CLOSED, _("this poll has not run yet"))
        return self._keep(replace(poll, results_shown=shown), "results")

    def _keep(self, poll: Poll, change: str) -> PollChanged:
        """Keep the new version of a poll; what the room is told."""
        self.polls[poll.poll_id] = poll
        return PollChanged(poll, change)

    def answer(
        self,
        participant: Participant,
        key: str,
        poll_id: str,
        answers: list[tuple[str, tuple[str, ...], str | None]],
        now: float,
    ) -> PollAnswered:
        """``answers``: (question id, chosen option ids, text). All or nothing."""
        answered = self.check_answer(participant, key, poll_id, answers, now)
        self.record(answered)
        return answered

    def check_answer(
        self,
        participant: Participant,
        key: str,
        poll_id: str,
        answers: list[tuple[str, tuple[str, ...], str | None]],
        now: float,
    ) -> PollAnswered:
        """The answers :meth:`answer` would record, checked; nothing changes until
        :meth:`record` (after the write that keeps them)."""
        if not participant.can(Capability.ANSWER_POLL):
            raise InteractionError(E.FORBIDDEN, may_not(participant.role, N_("answer polls")))
        poll = self.get(poll_id)
        if poll.state is not PollState.OPEN:
            raise InteractionError(E.POLL_CLOSED, _("this poll is not open for answers"))
        if not answers:
            raise InteractionError(E.BAD_ANSWER, _("no answers given"))
        checked: dict[str, Answer] = {}
        for question_id, option_ids, text in answers:
            if question_id in checked:
                raise InteractionError(
                    E.BAD_ANSWER, _("%(question)s is answered twice") % {"question": question_id}
                )
            q = poll.question(question_id)
            option_ids, text = _check_answer(q, option_ids, text)
            checked[question_id] = Answer(
                poll_id=poll_id,
                question_id=question_id,
                key=key,
                participant_id=participant.participant_id,
                name=participant.name,
                option_ids=option_ids,
                text=text,
                at=now,
                correct=q.is_correct(option_ids, text) if q.scored else None,
            )
        return PollAnswered(poll, tuple(checked.values()))

    def record(self, answered: PollAnswered) -> None:
        """Keep checked answers; each replaces the person's earlier answer to its question."""
        per_poll = self.answers.setdefault(answered.poll.poll_id, {})
        for a in answered.answers:
            per_poll.setdefault(a.question_id, {})[a.key] = a

    def restore_answer(self, answer: Answer) -> None:
        self.answers.setdefault(answer.poll_id, {}).setdefault(answer.question_id, {})[
            answer.key
        ] = answer

    def _runner(self, actor: Participant, what: str) -> None:
        """Refuse unless ``actor`` runs polls; ``what`` is ``N_()``-marked."""
        if not actor.can(Capability.RUN_POLLS):
            raise InteractionError(E.FORBIDDEN, may_not(actor.role, what))


def _check_answer(
    q: PollQuestion, option_ids: tuple[str, ...], text: str | None
) -> tuple[tuple[str, ...], str | None]:
    where = q.question_id
    if q.kind is QuestionKind.TEXT:
        if option_ids:
            raise InteractionError(
                E.BAD_ANSWER, _("%(where)s takes a text answer") % {"where": where}
            )
        if text is None:
            raise InteractionError(
                E.BAD_ANSWER, _("%(where)s needs a text answer") % {"where": where}
            )
        try:
            return (), clean_text(text, TEXT_ANSWER_CHARS)
        except InteractionError as exc:
            raise InteractionError(E.BAD_ANSWER, _where(where, exc.message)) from None
    if text is not None:
        raise InteractionError(
            E.BAD_ANSWER, _("%(where)s takes options, not text") % {"where": where}
        )
    valid = {o.option_id for o in q.options}
    if len(set(option_ids)) != len(option_ids) or not set(option_ids) <= valid:
        raise InteractionError(E.BAD_ANSWER, _where(where, _("unknown or repeated option")))
    if q.kind is QuestionKind.SINGLE and len(option_ids) != 1:
        raise InteractionError(E.BAD_ANSWER, _where(where, _("choose exactly one option")))
    if q.kind is QuestionKind.MULTIPLE and not option_ids:
        raise InteractionError(E.BAD_ANSWER, _where(where, _("choose at least one option")))
    order = [o.option_id for o in q.options]
    return tuple(sorted(option_ids, key=order.index)), None
