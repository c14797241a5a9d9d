"""Chat, Q&A, polls and tests, call-to-action: the pure state machines."""

from __future__ import annotations

from typing import Any

import pytest

from webinar.rooms.chat import CHAT_BURST, CHAT_HISTORY, MAX_CHAT_CHARS, Chat
from webinar.rooms.cta import (
    CTA_MESSAGE_CHARS,
    CtaBoard,
    CtaClosed,
    CtaShown,
    prepare_cta,
    validate_url,
)
from webinar.rooms.interaction_errors import InteractionError
from webinar.rooms.polls import (
    MAX_OPTIONS_PER_QUESTION,
    MAX_QUESTIONS_PER_POLL,
    PollBook,
    PollState,
    Score,
    build_poll,
)
from webinar.rooms.qa import QuestionBoard, QuestionOrder, QuestionState
from webinar.rooms.roles import Role
from webinar.rooms.state import Participant

HOST = Participant("pa_host", "Hana", Role.HOST)
PRES = Participant("pa_pres", "Piet", Role.PRESENTER)
ANN = Participant("pa_ann", "Ann", Role.ATTENDEE)
BOB = Participant("pa_bob", "Bob", Role.ATTENDEE)


def refused(code: str) -> Any:
    class _Check:
        def __enter__(self) -> None:
            return None

        def __exit__(self, tp: Any, exc: Any, tb: Any) -> bool:
            assert isinstance(exc, InteractionError), f"expected {code}, got {exc!r}"
            assert exc.code == code, (exc.code, exc.message)
            return True

    return _Check()


# ----------------------------------------------------------------------------- chat


def test_chat_posts_in_order_and_cleans_text() -> None:
    chat = Chat()
    a = chat.post(ANN, "k_ann", "  hello\x00 world \n", now=1.0).message
    b = chat.post(BOB, "k_bob", "hi", now=1.1).message
    assert (a.seq, b.seq) == (1, 2)
    assert a.text == "hello world" and a.name == "Ann" and a.role == "attendee"
    assert [m.message_id for m in chat.history()] == [a.message_id, b.message_id]


def test_chat_length_limit_and_empty() -> None:
    chat = Chat()
    chat.post(ANN, "k", "x" * MAX_CHAT_CHARS, now=0)
    with refused("too-long"):
        chat.post(ANN, "k", "x" * (MAX_CHAT_CHARS + 1), now=10)
    with refused("empty"):
        chat.post(ANN, "k", " \n\t ", now=20)


def test_chat_off_for_attendees_not_for_presenters() -> None:
    chat = Chat()
    with refused("forbidden"):
        chat.configure(ANN, enabled=False, slow_mode_seconds=None)
    chat.configure(PRES, enabled=False, slow_mode_seconds=None)
    with refused("chat-off"):
        chat.post(ANN, "k", "hi", now=0)
    chat.post(PRES, "kp", "still here", now=0)
    chat.configure(PRES, enabled=True, slow_mode_seconds=None)
    chat.post(ANN, "k", "hi", now=1)


def test_slow_mode_one_message_per_n_seconds() -> None:
    chat = Chat()
    chat.configure(PRES, enabled=None, slow_mode_seconds=10)
    chat.post(ANN, "k", "one", now=100)
    with pytest.raises(InteractionError) as err:
        chat.post(ANN, "k", "two", now=105)
    assert err.value.code == "slow-mode" and err.value.retry_after == pytest.approx(5)
    chat.post(BOB, "kb", "other people are not held up", now=105)
    chat.post(PRES, "kp", "presenters are exempt", now=105)
    chat.post(PRES, "kp", "twice", now=105.1)
    chat.post(ANN, "k", "two", now=110)
    with refused("invalid-request"):
        chat.configure(PRES, enabled=None, slow_mode_seconds=-1)


def test_flood_limit_per_person() -> None:
    chat = Chat()
    for i in range(CHAT_BURST):
        chat.post(ANN, "k", f"m{i}", now=0)
    with refused("rate-limited"):
        chat.post(ANN, "k", "too many", now=0)
    chat.post(BOB, "kb", "Bob is not limited by Ann", now=0)
    chat.post(ANN, "k", "refilled", now=1.0)


def test_delete_and_mute() -> None:
    chat = Chat()
    msg = chat.post(ANN, "k_ann", "spam", now=0).message
    with refused("forbidden"):
        chat.delete(BOB, msg.message_id)
    deleted = chat.delete(PRES, msg.message_id)
    assert deleted.message_id == msg.message_id
    assert chat.history() == []
    with refused("not-found"):
        chat.delete(PRES, msg.message_id)
    with refused("forbidden"):
        chat.set_muted(BOB, ANN, "k_ann", True)
    with refused("invalid-request"):
        chat.set_muted(HOST, PRES, "k_pres", True)
    chat.set_muted(PRES, ANN, "k_ann", True)
    with refused("chat-muted"):
        chat.post(ANN, "k_ann", "let me talk", now=10)
    chat.post(BOB, "k_bob", "I can", now=10)
    chat.set_muted(PRES, ANN, "k_ann", False)
    chat.post(ANN, "k_ann", "thanks", now=11)


def test_history_is_bounded_and_restorable() -> None:
    chat = Chat()
    for i in range(CHAT_HISTORY + 5):
        chat.post(PRES, f"k{i}", f"m{i}", now=float(i))
    history = chat.history()
    assert len(history) == CHAT_HISTORY and history[0].text == "m5"
    again = Chat()
    again.restore(history)
    assert again.post(ANN, "k", "next", now=1000).message.seq == CHAT_HISTORY + 6


# ----------------------------------------------------------------------------- Q&A


def test_questions_votes_are_deduplicated_and_sorted() -> None:
    qa = QuestionBoard()
    q1 = qa.ask(ANN, "k_ann", "First?", now=1).question
    q2 = qa.ask(BOB, "k_bob", "Second?", now=2, anonymous=True).question
    assert q2.anonymous and q2.name == "Bob"  # kept for the organiser
    qa.vote(ANN, "k_ann", q2.question_id, True)
    qa.vote(ANN, "k_ann", q2.question_id, True)  # a second vote by the same person
    assert qa.get(q2.question_id).votes == 1
    qa.vote(BOB, "k_bob", q2.question_id, True)
    assert [q.question_id for q in qa.ordered(QuestionOrder.VOTES)] == [
        q2.question_id,
        q1.question_id,
    ]
    assert [q.question_id for q in qa.ordered(QuestionOrder.TIME)] == [
        q1.question_id,
        q2.question_id,
    ]
    qa.vote(BOB, "k_bob", q2.question_id, False)
    assert qa.get(q2.question_id).votes == 1
    with refused("forbidden"):
        qa.vote(PRES, "k_pres", q1.question_id, True)


def test_marking_messages_and_states() -> None:
    qa = QuestionBoard()
    q = qa.ask(ANN, "k_ann", "mine", now=1, message_id="cm_1").question
    with refused("invalid-request"):
        qa.ask(ANN, "k_ann", "mine", now=1, message_id="cm_1")
    with refused("forbidden"):
        qa.ask(ANN, "k_ann", "Bob's", now=1, message_id="cm_2", on_behalf=BOB)
    marked = qa.ask(PRES, "", "Bob's", now=2, message_id="cm_2", on_behalf=BOB).question
    assert marked.participant_id == BOB.participant_id and marked.author_key == BOB.participant_id
    with refused("forbidden"):
        qa.set_state(ANN, q.question_id, QuestionState.ANSWERED)
    (changed,) = qa.set_state(PRES, q.question_id, QuestionState.ANSWERED)
    assert changed.question.state is QuestionState.ANSWERED


def test_publish_and_close_qa() -> None:
    qa = QuestionBoard()
    q = qa.ask(ANN, "k", "What?", now=1).question
    with refused("forbidden"):
        qa.publish(ANN, q.question_id)
    assert qa.publish(PRES, q.question_id).question == q
    assert qa.published == q
    events = qa.set_state(PRES, q.question_id, QuestionState.DISMISSED)
    assert events[-1].question is None  # type: ignore[union-attr]
    assert qa.published is None
    with refused("invalid-request"):
        qa.publish(PRES, q.question_id)
    q2 = qa.ask(BOB, "kb", "Why?", now=2).question
    qa.publish(PRES, q2.question_id)
    events = qa.set_open(PRES, False)
    assert qa.published is None and not qa.open and len(events) == 2
    with refused("qa-closed"):
        qa.ask(ANN, "k", "more?", now=3)
    with refused("qa-closed"):
        qa.vote(ANN, "k", q2.question_id, True)


# ----------------------------------------------------------------------------- polls


def _poll_spec(kind: str = "poll", **extra: Any) -> dict[str, Any]:
    correct = kind == "test"
    return {
        "title": "Quick check",
        "kind": kind,
        "questions": [
            {
                "text": "Pick one",
                "kind": "single",
                "options": [{"text": "A", "correct": correct}, {"text": "B"}],
            },
            {
                "text": "Pick some",
                "kind": "multiple",
                "options": [
                    {"text": "X", "correct": correct},
                    {"text": "Y", "correct": correct},
                    {"text": "Z"},
                ],
            },
            {"text": "Say", "kind": "text", **({"accepted": ["Paris"]} if correct else {})},
        ],
        **extra,
    }


def test_poll_bounds_are_enforced() -> None:
    many = [{"text": f"o{i}"} for i in range(MAX_OPTIONS_PER_QUESTION + 1)]
    with refused("limit-reached"):
        build_poll(
            {"title": "t", "questions": [{"text": "q", "kind": "single", "options": many}]}, now=0
        )
    questions = [{"text": "q", "kind": "single", "options": [{"text": "a"}, {"text": "b"}]}] * (
        MAX_QUESTIONS_PER_POLL + 1
    )
    with refused("limit-reached"):
        build_poll({"title": "t", "questions": questions}, now=0)
    with refused("invalid-request"):
        build_poll({"title": "t", "questions": [{"text": "q", "options": [{"text": "a"}]}]}, now=0)
    with refused("invalid-request"):  # a poll has no right answers
        build_poll(
            _poll_spec("poll", title="t") | {"questions": _poll_spec("test")["questions"]}, now=0
        )
    with refused("invalid-request"):  # a test question needs one
        build_poll(_poll_spec("test") | {"questions": _poll_spec("poll")["questions"][:1]}, now=0)
    with refused("invalid-request"):
        build_poll(
            {
                "title": "t",
                "questions": [
                    {
                        "text": "q",
                        "options": [{"text": "a", "image_id": "../etc/passwd"}, {"text": "b"}],
                    }
                ],
            },
            now=0,
        )


def test_one_answer_per_person_per_question_replaced_until_closed() -> None:
    book = PollBook()
    poll = build_poll(_poll_spec(), now=0)
    with refused("forbidden"):
        book.add(ANN, poll)
    book.add(PRES, poll)
    with refused("poll-closed"):
        book.answer(ANN, "k_ann", poll.poll_id, [("q1", ("q1o1",), None)], now=1)
    with refused("forbidden"):
        book.launch(ANN, poll.poll_id, now=1)
    book.launch(PRES, poll.poll_id, now=1)
    assert book.open_poll is not None and book.open_poll.state is PollState.OPEN
    with refused("forbidden"):
        book.answer(PRES, "k_pres", poll.poll_id, [("q1", ("q1o1",), None)], now=2)
    book.answer(ANN, "k_ann", poll.poll_id, [("q1", ("q1o1",), None)], now=2)
    book.answer(ANN, "k_ann", poll.poll_id, [("q1", ("q1o2",), None)], now=3)  # replaces
    book.answer(BOB, "k_bob", poll.poll_id, [("q1", ("q1o2",), None), ("q3", (), "hi")], now=3)
    results = {r.question_id: r for r in book.results(poll.poll_id)}
    assert results["q1"].responses == 2
    assert results["q1"].counts == {"q1o1": 0, "q1o2": 2}
    assert results["q3"].texts == ("hi",)
    for bad in (
        [("q1", ("q1o1", "q1o2"), None)],  # single choice
        [("q2", (), None)],  # multiple needs one
        [("q2", ("q2o1", "q2o1"), None)],  # repeated
        [("q1", ("nope",), None)],
        [("q3", (), None)],
        [("q3", ("q1o1",), "x")],
        [("q1", ("q1o1",), None), ("q1", ("q1o2",), None)],
    ):
        with refused("bad-answer"):
            book.answer(ANN, "k_ann", poll.poll_id, bad, now=4)
    with refused("not-found"):
        book.answer(ANN, "k_ann", poll.poll_id, [("q9", ("x",), None)], now=4)
    assert book.results(poll.poll_id)[0].counts == {"q1o1": 0, "q1o2": 2}  # nothing half-kept
    book.close(PRES, poll.poll_id, now=5)
    with refused("poll-closed"):
        book.answer(ANN, "k_ann", poll.poll_id, [("q1", ("q1o1",), None)], now=6)
    with refused("poll-closed"):
        book.launch(PRES, poll.poll_id, now=7)


def test_one_poll_open_at_a_time() -> None:
    book = PollBook()
    a, b = build_poll(_poll_spec(), now=0), build_poll(_poll_spec(), now=0)
    book.add(PRES, a)
    book.add(PRES, b)
    book.launch(PRES, a.poll_id, now=1)
    with refused("poll-open"):
        book.launch(PRES, b.poll_id, now=1)
    book.close(PRES, a.poll_id, now=2)
    book.launch(HOST, b.poll_id, now=3)
    with refused("invalid-request"):
        book.delete(PRES, b.poll_id)


def test_prepared_polls_change_only_until_they_run() -> None:
    book = PollBook()
    draft = build_poll(_poll_spec(), now=5)
    book.add_prepared(draft)
    new = build_poll(_poll_spec("test", title="Quiz"), now=99, poll_id=draft.poll_id)
    changed = book.replace_prepared(new)
    assert changed.cause == "updated" and changed.poll.title == "Quiz"
    assert book.get(draft.poll_id).created_at == 5  # it keeps its place
    with refused("not-found"):
        book.replace_prepared(build_poll(_poll_spec(), now=0, poll_id="po_missing"))
    book.launch(PRES, draft.poll_id, now=6)
    with refused("invalid-request"):
        book.replace_prepared(new)
    with refused("invalid-request"):
        book.remove_prepared(draft.poll_id)
    other = build_poll(_poll_spec(), now=7)
    book.add_prepared(other)
    assert book.remove_prepared(other.poll_id).cause == "deleted"
    assert list(book.polls) == [draft.poll_id]


def test_prepared_cta_has_the_live_rules() -> None:
    ok = prepare_cta(
        message="y" * CTA_MESSAGE_CHARS, button="Go", url="https://e.x/", duration_seconds=None,
        now=1,
    )  # fmt: skip
    assert ok.prepared_id.startswith("cp_") and ok.message == "y" * CTA_MESSAGE_CHARS
    with refused("too-long"):
        prepare_cta(
            message="y" * (CTA_MESSAGE_CHARS + 1), button="Go", url="https://e.x/",
            duration_seconds=None, now=1,
        )  # fmt: skip
    with refused("bad-url"):
        prepare_cta(message="Hi", button="Go", url="javascript:x", duration_seconds=None, now=1)
    with refused("invalid-request"):
        prepare_cta(message="Hi", button="Go", url="https://e.x/", duration_seconds=1, now=1)


def test_test_scoring() -> None:
    book = PollBook()
    test = build_poll(_poll_spec("test"), now=0)
    book.add(PRES, test)
    book.launch(PRES, test.poll_id, now=1)
    book.answer(
        ANN,
        "k_ann",
        test.poll_id,
        [("q1", ("q1o1",), None), ("q2", ("q2o2", "q2o1"), None), ("q3", (), "  paris ")],
        now=2,
    )
    book.answer(
        BOB, "k_bob", test.poll_id, [("q1", ("q1o2",), None), ("q2", ("q2o1",), None)], now=2
    )
    assert book.score(test.poll_id, "k_ann") == Score(3, 3)
    assert book.score(test.poll_id, "k_bob") == Score(0, 3)
    # re-answering changes the score
    book.answer(BOB, "k_bob", test.poll_id, [("q1", ("q1o1",), None)], now=3)
    assert book.score(test.poll_id, "k_bob").correct == 1


def test_show_results() -> None:
    book = PollBook()
    poll = build_poll(_poll_spec(), now=0)
    book.add(PRES, poll)
    with refused("poll-closed"):
        book.show_results(PRES, poll.poll_id, True)
    book.launch(PRES, poll.poll_id, now=1)
    with refused("forbidden"):
        book.show_results(ANN, poll.poll_id, True)
    assert book.show_results(PRES, poll.poll_id, True).poll.results_shown


# ----------------------------------------------------------------------------- CTA


def test_cta_message_limit_is_54_characters_spaces_included() -> None:
    board = CtaBoard()
    ok = "a b " * 13 + "cd"  # 54 characters with spaces
    assert len(ok) == CTA_MESSAGE_CHARS == 54
    (shown,) = board.show(
        PRES, message=ok, button="Buy", url="https://example.com/x", duration_seconds=None, now=0
    )
    assert isinstance(shown, CtaShown) and shown.cta.message == ok
    with refused("too-long"):
        board.show(
            PRES, message=ok + "!", button="Buy", url="https://e.com", duration_seconds=None, now=0
        )
    with refused("forbidden"):
        board.show(
            ANN, message="Hi", button="Go", url="https://e.com", duration_seconds=None, now=0
        )


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "ftp://example.com/",
        "//example.com",
        "https://",
        "https://exa mple.com",
        "https://user:pw@example.com/",
        'https://example.com/"onmouseover',
        "http://example.com:99999/",
        "https://example.com/" + "x" * 2000,
        "",
    ],
)
def test_cta_url_validation_refuses(url: str) -> None:
    with refused("bad-url"):
        validate_url(url)


def test_cta_url_validation_accepts() -> None:
    assert validate_url(" https://shop.example.com/a?b=c#d ") == "https://shop.example.com/a?b=c#d"
    assert validate_url("HTTP://example.com") == "HTTP://example.com"


def test_cta_replace_close_and_expire() -> None:
    board = CtaBoard()
    board.show(PRES, message="One", button="Go", url="https://e.com", duration_seconds=30, now=0)
    events = board.show(
        PRES, message="Two", button="Go", url="https://e.com", duration_seconds=30, now=10
    )
    assert isinstance(events[0], CtaClosed) and events[0].reason == "replaced"
    assert board.expire(now=39) == []
    (expired,) = board.expire(now=40)
    assert isinstance(expired, CtaClosed) and expired.reason == "expired"
    assert board.current is None
    with refused("invalid-request"):
        board.show(PRES, message="x", button="Go", url="https://e.com", duration_seconds=1, now=0)
    board.show(PRES, message="x", button="Go", url="https://e.com", duration_seconds=None, now=0)
    with refused("forbidden"):
        board.close(ANN)
    (closed,) = board.close(PRES)
    assert isinstance(closed, CtaClosed) and closed.reason == "closed"
    assert board.close(PRES) == []
