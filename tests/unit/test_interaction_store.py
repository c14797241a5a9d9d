"""Interaction persistence on a real SQLite file, CSV export, image sniffing, click tokens."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from webinar.http.interaction import sniff_image, to_csv
from webinar.interaction import store as ist
from webinar.interaction.service import click_token, read_click_token
from webinar.rooms.chat import Chat
from webinar.rooms.cta import CtaBoard
from webinar.rooms.polls import PollBook, build_poll
from webinar.rooms.qa import QuestionBoard, QuestionState
from webinar.rooms.roles import Role
from webinar.rooms.state import Participant
from webinar.storage.store import SyncStore

PRES = Participant("pa_pres", "Piet", Role.PRESENTER)
ANN = Participant("pa_ann", "=cmd|' /C calc'!A0", Role.ATTENDEE)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[SyncStore]:
    with SyncStore.open(tmp_path / "data") as store:
        yield store


def test_round_trip_of_everything_a_room_restores(core: SyncStore) -> None:
    event = core.create_event("Webinar", None)
    eid = event.event_id
    chat = Chat()
    kept = chat.post(ANN, "k_ann", "hello", now=10).message
    gone = chat.post(ANN, "k_ann", "oops", now=11).message
    ist.save_chat(core, eid, kept)
    ist.save_chat(core, eid, gone)
    ist.delete_chat(core, gone.message_id, 12, PRES.participant_id)

    qa = QuestionBoard()
    q = qa.ask(ANN, "k_ann", "why?", now=20, anonymous=True, message_id=kept.message_id).question
    ist.save_question(core, eid, q)
    ist.link_chat_question(core, kept.message_id, q.question_id)
    ist.set_vote(core, q.question_id, "k_bob", True, 21)
    ist.set_vote(core, q.question_id, "k_bob", True, 22)  # one vote per person
    ist.set_vote(core, q.question_id, "k_cy", True, 22)
    ist.set_vote(core, q.question_id, "k_cy", False, 23)
    (changed,) = qa.set_state(PRES, q.question_id, QuestionState.ANSWERED)
    ist.save_question(core, eid, changed.question)
    ist.save_settings(
        core,
        eid,
        chat_enabled=False,
        slow_mode_seconds=30,
        qa_open=True,
        published_question_id=q.question_id,
        reactions_enabled=False,
    )

    book = PollBook()
    spec = {
        "title": "T",
        "kind": "test",
        "questions": [
            {"text": "2+2", "options": [{"text": "4", "correct": True}, {"text": "5"}]},
            {"text": "Say hi", "kind": "text", "accepted": ["hi"]},
        ],
    }
    poll = build_poll(spec, now=30)
    book.add(PRES, poll)
    launched = book.launch(PRES, poll.poll_id, now=31).poll
    ist.save_poll(core, eid, launched)
    answered = book.answer(
        ANN, "k_ann", poll.poll_id, [("q1", ("q1o1",), None), ("q2", (), "HI")], now=32
    )
    ist.save_answers(core, answered.answers)
    again = book.answer(ANN, "k_ann", poll.poll_id, [("q1", ("q1o2",), None)], now=33)
    ist.save_answers(core, again.answers)  # replaces

    board = CtaBoard()
    (shown,) = board.show(
        PRES, message="Buy", button="Go", url="https://e.com/x", duration_seconds=None, now=40
    )
    cta = shown.cta  # type: ignore[union-attr]
    ist.save_cta(core, eid, cta)
    ist.record_click(core, cta.cta_id, ANN.participant_id, ANN.name, 41)
    ist.record_click(core, cta.cta_id, ANN.participant_id, ANN.name, 42)
    assert ist.click_count(core, cta.cta_id) == 2
    assert ist.cta_target(core, cta.cta_id) == (eid, "https://e.com/x")

    snap = ist.load(core, eid, 200)
    assert [m.text for m in snap.chat] == ["hello"]
    assert snap.chat[0].question_id == q.question_id
    assert snap.chat_seq == 2  # the deleted one keeps its number
    assert (snap.chat_enabled, snap.slow_mode_seconds, snap.qa_open) == (False, 30, True)
    assert snap.reactions_enabled is False
    (loaded_q,) = snap.questions
    assert loaded_q.voters == {"k_bob"} and loaded_q.anonymous and loaded_q.name == ANN.name
    assert loaded_q.state is QuestionState.ANSWERED
    assert snap.published_id == q.question_id
    (loaded_poll,) = snap.polls
    assert loaded_poll == launched
    assert {(a.question_id, a.option_ids, a.text, a.correct) for a in snap.answers} == {
        ("q1", ("q1o2",), None, False),
        ("q2", (), "HI", True),
    }
    assert snap.cta == cta
    ist.close_cta(core, cta.cta_id, 50)
    assert ist.load(core, eid, 200).cta is None

    restored = PollBook()
    for p in snap.polls:
        restored.add_prepared(p)
    for a in snap.answers:
        restored.restore_answer(a)
    assert restored.open_id == poll.poll_id
    assert restored.score(poll.poll_id, "k_ann") == book.score(poll.poll_id, "k_ann")

    header, rows = ist.export_rows(core, eid, "polls")
    text = to_csv(header, rows)
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["question_id"], r["answer"], r["correct"]) for r in table] == [
        ("q1", "5", "false"),
        ("q2", "HI", "true"),
    ]
    assert table[0]["name"].startswith("'=")  # no formula for spreadsheets
    assert table[0]["answered_at"] == "1970-01-01T00:00:33.000+00:00"
    chat_rows = list(csv.DictReader(io.StringIO(to_csv(*ist.export_rows(core, eid, "chat")))))
    assert [(r["text"], r["deleted"]) for r in chat_rows] == [("hello", "false"), ("oops", "true")]
    _, score_rows = ist.export_rows(core, eid, "scores")
    assert score_rows == [[poll.poll_id, "T", ANN.participant_id, ANN.name, 1, 2]]
    _, cta_rows = ist.export_rows(core, eid, "cta")
    assert len(cta_rows) == 2
    _, q_rows = ist.export_rows(core, eid, "questions")
    assert q_rows[0][7] == 1  # votes
    with pytest.raises(ValueError):
        ist.export_rows(core, eid, "nope")


def test_deleting_an_event_deletes_its_interaction(core: SyncStore) -> None:
    event = core.create_event("Webinar", None)
    msg = Chat().post(ANN, "k", "hi", now=1).message
    ist.save_chat(core, event.event_id, msg)
    core.connection.execute("DELETE FROM events WHERE event_id = ?", (event.event_id,))
    assert ist.load(core, event.event_id, 10).chat == []


def test_image_types_are_recognised_by_content() -> None:
    assert sniff_image(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_image(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_image(b"GIF89a") == "image/gif"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    for other in (b"<svg xmlns=", b"<html>", b"%PDF-1.7", b"", b"RIFF\x00\x00\x00\x00WAVE"):
        assert sniff_image(other) is None


def test_click_tokens_are_signed_per_cta_and_participant() -> None:
    secret = b"s" * 32
    token = click_token(secret, "ct_1", "pa_ann", "Ann Ångström")
    assert read_click_token(secret, "ct_1", token) == ("pa_ann", "Ann Ångström")
    assert read_click_token(secret, "ct_2", token) is None  # another CTA
    assert read_click_token(b"x" * 32, "ct_1", token) is None  # another server
    payload, sig = token.split(".")
    forged = click_token(secret, "ct_1", "pa_bob", "Bob").split(".")[0] + "." + sig
    assert read_click_token(secret, "ct_1", forged) is None
    for junk in ("", ".", "abc", "a.b", payload + ".!!", "x" * 700):
        assert read_click_token(secret, "ct_1", junk) is None


def test_clicks_per_attendee_are_bounded(core: SyncStore) -> None:
    event = core.create_event("Webinar", None)
    (shown,) = CtaBoard().show(
        PRES, message="Buy", button="Go", url="https://e.com/", duration_seconds=None, now=1
    )
    cta = shown.cta  # type: ignore[union-attr]
    ist.save_cta(core, event.event_id, cta)
    results = [
        ist.record_click(core, cta.cta_id, "pa_ann", "Ann", float(i))
        for i in range(ist.MAX_CLICKS_PER_ATTENDEE + 2)
    ]
    assert results.count(True) == ist.MAX_CLICKS_PER_ATTENDEE and results[-1] is False
    assert ist.record_click(core, cta.cta_id, "pa_bob", "Bob", 1.0)
    assert ist.click_count(core, cta.cta_id) == ist.MAX_CLICKS_PER_ATTENDEE + 1
