"""Poll, test and call-to-action results for the statistics, on a real SQLite store: votes
per option (a multiple-choice answer counts for each option), shares of those who answered
the question, right answers of a test, text answers; drafts left out; clicks and clickers."""

from __future__ import annotations

from pathlib import Path

from webinar.interaction import store as ist
from webinar.interaction.results import cta_results, poll_results
from webinar.rooms.cta import CallToAction
from webinar.rooms.polls import (
    Answer,
    Option,
    Poll,
    PollKind,
    PollQuestion,
    PollState,
    QuestionKind,
)
from webinar.storage.store import Store, SyncStore


def _answer(poll: str, q: str, key: str, options: tuple[str, ...] = (), text: str | None = None,
            correct: bool | None = None) -> Answer:  # fmt: skip
    return Answer(poll, q, key, f"pa_{key}", key.title(), options, text, 100.0, correct)


async def test_results_of_polls_tests_and_calls_to_action(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    await store.open()
    try:
        event = await store.create_event("Results", None)
        ev = event.event_id
        colour = PollQuestion(
            "q1",
            "Favourite colour?",
            QuestionKind.MULTIPLE,
            (Option("o1", "Red"), Option("o2", "Blue"), Option("o3", "Green")),
        )
        why = PollQuestion("q2", "Why?", QuestionKind.TEXT)
        poll = Poll("p1", "Survey", PollKind.POLL, (colour, why), PollState.CLOSED)
        capital = PollQuestion(
            "t1",
            "Capital of Czechia?",
            QuestionKind.SINGLE,
            (Option("a", "Brno"), Option("b", "Prague", correct=True)),
        )
        test = Poll("p2", "Quiz", PollKind.TEST, (capital,), PollState.OPEN)
        draft = Poll("p3", "Later", PollKind.POLL, (colour,), PollState.DRAFT)

        def fill(core: SyncStore) -> None:
            for p in (poll, test, draft):
                ist.save_poll(core, ev, p)
            ist.save_answers(
                core,
                (
                    _answer("p1", "q1", "ann", ("o1", "o2")),
                    _answer("p1", "q1", "bob", ("o2",)),
                    _answer("p1", "q2", "ann", text="Calm"),
                    _answer("p1", "q1", "cy", ("o2",)),
                    _answer("p2", "t1", "ann", ("b",), correct=True),
                    _answer("p2", "t1", "bob", ("a",), correct=False),
                ),
            )
            cta = CallToAction(
                "c1", "Get the slides", "Open", "https://example.org", None, 5.0, "h"
            )
            ist.save_cta(core, ev, cta)
            for pid in ("pa_ann", "pa_ann", "pa_bob"):
                ist.record_click(core, "c1", pid, pid, 6.0)

        await store.run(fill)
        polls = await store.run(lambda core: poll_results(core, ev))
        assert [p.title for p in polls] == ["Survey", "Quiz"]  # the draft never ran
        survey, quiz = polls
        assert survey.answered == 3
        first, second = survey.questions
        assert first.answered == 3
        assert [(o.text, o.votes, o.percent) for o in first.options] == [
            ("Red", 1, 33),
            ("Blue", 3, 100),
            ("Green", 0, 0),
        ]
        assert first.right is None
        assert second.texts == ["Calm"] and second.answered == 1
        (q,) = quiz.questions
        assert q.right == 1 and [o.correct for o in q.options] == [False, True]
        assert quiz.as_json()["questions"][0]["options"][1] == {
            "text": "Prague",
            "votes": 1,
            "percent": 50,
            "correct": True,
        }
        (clicked,) = await store.run(lambda core: cta_results(core, ev))
        assert (clicked.message, clicked.clicks, clicked.people) == ("Get the slides", 3, 2)
    finally:
        await store.close()
