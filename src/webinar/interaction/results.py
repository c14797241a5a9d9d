"""The results of an event's polls, tests and calls-to-action, for its statistics and exports.

Per poll (drafts that never ran are left out): who answered it, and per question the votes of
each option (a multiple-choice answer counts for each option chosen), the share of the people
who answered that question, which options are correct (tests), how many answered right, and
the text answers. Per call-to-action shown: when, for how long, clicks and the people who
clicked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from webinar.formats import iso_time
from webinar.interaction import store as ist
from webinar.rooms.polls import PollKind, PollState, QuestionKind
from webinar.storage.store import SyncStore

#: Text answers listed per question at most (the polls export has them all).
TEXT_ANSWERS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class OptionResult:
    text: str
    votes: int
    percent: int  # of the people who answered the question
    correct: bool


@dataclass(frozen=True, slots=True)
class QuestionResult:
    text: str
    kind: str  # single, multiple, text
    answered: int
    options: list[OptionResult] = field(default_factory=list)
    #: Tests: how many answered this question right (None: not scored).
    right: int | None = None
    texts: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PollResult:
    poll_id: str
    title: str
    kind: str  # poll, test
    state: str
    answered: int  # people who answered at least one question
    questions: list[QuestionResult]

    def as_json(self) -> dict[str, Any]:
        return {
            "poll_id": self.poll_id,
            "title": self.title,
            "kind": self.kind,
            "state": self.state,
            "answered": self.answered,
            "questions": [
                {
                    "text": q.text,
                    "kind": q.kind,
                    "answered": q.answered,
                    "right": q.right,
                    "options": [
                        {
                            "text": o.text,
                            "votes": o.votes,
                            "percent": o.percent,
                            "correct": o.correct,
                        }
                        for o in q.options
                    ],
                    "texts": q.texts,
                }
                for q in self.questions
            ],
        }


@dataclass(frozen=True, slots=True)
class CtaResult:
    cta_id: str
    message: str
    button: str
    url: str
    shown_at: float
    closed_at: float | None
    clicks: int
    people: int  # distinct participants who clicked

    def as_json(self, *, zulu: bool = False) -> dict[str, Any]:
        return {
            "cta_id": self.cta_id,
            "message": self.message,
            "button": self.button,
            "url": self.url,
            "shown_at": iso_time(self.shown_at, timespec="seconds", zulu=zulu),
            "closed_at": iso_time(self.closed_at, timespec="seconds", zulu=zulu),
            "clicks": self.clicks,
            "people": self.people,
        }


def poll_results(db: SyncStore, event_id: str) -> list[PollResult]:
    out = []
    for poll in ist.list_polls(db, event_id):
        if poll.state is PollState.DRAFT:
            continue
        answers: dict[str, list[tuple[str, list[str], str | None, bool | None]]] = {}
        voters: set[str] = set()
        for key, qid, option_ids, text, correct in db.connection.execute(
            "SELECT voter_key, question_id, option_ids, text, correct FROM poll_answers"
            " WHERE poll_id = ? ORDER BY answered_at",
            (poll.poll_id,),
        ):
            voters.add(str(key))
            answers.setdefault(str(qid), []).append(
                (
                    str(key),
                    list(json.loads(option_ids)),
                    text,
                    None if correct is None else bool(correct),
                )
            )
        questions = []
        for q in poll.questions:
            given = answers.get(q.question_id, [])
            answered = len(given)
            options = []
            for o in q.options:
                votes = sum(1 for _k, chosen, _t, _c in given if o.option_id in chosen)
                options.append(
                    OptionResult(
                        o.text,
                        votes,
                        round(100 * votes / answered) if answered else 0,
                        o.correct,
                    )
                )
            scored = poll.kind is PollKind.TEST and q.scored
            questions.append(
                QuestionResult(
                    text=q.text,
                    kind=q.kind.value,
                    answered=answered,
                    options=options,
                    right=sum(1 for *_x, c in given if c) if scored else None,
                    texts=[t for _k, _o, t, _c in given if t][:TEXT_ANSWERS_SHOWN]
                    if q.kind is QuestionKind.TEXT
                    else [],
                )
            )
        out.append(
            PollResult(
                poll.poll_id, poll.title, poll.kind.value, poll.state.value, len(voters), questions
            )
        )
    return out


def cta_results(db: SyncStore, event_id: str) -> list[CtaResult]:
    rows = db.connection.execute(
        "SELECT c.cta_id, c.message, c.button, c.url, c.shown_at, c.closed_at,"
        " (SELECT count(*) FROM cta_clicks k WHERE k.cta_id = c.cta_id),"
        " (SELECT count(DISTINCT k.participant_id) FROM cta_clicks k WHERE k.cta_id = c.cta_id)"
        " FROM ctas c WHERE c.event_id = ? ORDER BY c.shown_at",
        (event_id,),
    ).fetchall()
    return [
        CtaResult(
            str(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4]), r[5], int(r[6]), int(r[7])
        )
        for r in rows
    ]
