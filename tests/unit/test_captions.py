"""Live captions as a state machine: who may caption, the switch, lines kept and not kept,
the per-sender limit, and who sees them while the room is backstage."""

from __future__ import annotations

import pytest

from webinar.rooms.captions import (
    CAPTION_HISTORY,
    FINAL_BURST,
    FINAL_PER_SECOND,
    INTERIM_BURST,
    MAX_CAPTION_CHARS,
    Captions,
    reaches,
)
from webinar.rooms.interaction_errors import InteractionError, InteractionErrorCode
from webinar.rooms.roles import Role
from webinar.rooms.state import Mode, Participant, Phase, RoomState

ANN = Participant("pa_ann", "Ann", Role.ATTENDEE)
BOB = Participant("pa_bob", "Bob", Role.ATTENDEE)
PRES = Participant("pa_pres", "Piet", Role.PRESENTER)
HOST = Participant("pa_host", "Hana", Role.HOST)
E = InteractionErrorCode


def refused(code: InteractionErrorCode, call: object) -> None:
    with pytest.raises(InteractionError) as caught:
        assert callable(call)
        call()
    assert caught.value.code is code


def test_a_presenter_makes_an_attendee_captioner_and_takes_it_back() -> None:
    c = Captions()
    refused(E.FORBIDDEN, lambda: c.set_captioner(ANN, BOB, "k:bob", True))
    changed = c.set_captioner(HOST, ANN, "k:ann", True)
    assert (changed.participant_id, changed.captioner, changed.by) == ("pa_ann", True, "pa_host")
    assert c.is_captioner("k:ann") and c.may_caption(ANN, "k:ann")
    assert not c.may_caption(BOB, "k:bob")
    refused(E.INVALID, lambda: c.set_captioner(HOST, PRES, "k:pres", True))
    c.set_captioner(PRES, ANN, "k:ann", False)
    assert not c.may_caption(ANN, "k:ann")


def test_captions_go_on_by_a_presenter_or_a_captioner_and_lines_need_them_on() -> None:
    c = Captions()
    refused(E.FORBIDDEN, lambda: c.switch(ANN, "k:ann", True))
    c.set_captioner(HOST, ANN, "k:ann", True)
    refused(E.CAPTIONS_OFF, lambda: c.send(ANN, "k:ann", "hello", final=True, now=1.0))
    assert c.switch(ANN, "k:ann", True).enabled
    sent = c.send(ANN, "k:ann", "  hello\n  world ", final=True, now=2.0)
    assert sent.line.text == "hello world" and sent.line.final and sent.line.seq == 1
    assert sent.line.line_id.startswith("cl_") and sent.line.at == 2.0
    refused(E.FORBIDDEN, lambda: c.send(BOB, "k:bob", "me too", final=True, now=3.0))
    refused(E.EMPTY, lambda: c.send(ANN, "k:ann", " \n ", final=True, now=3.0))
    refused(
        E.TOO_LONG, lambda: c.send(ANN, "k:ann", "x" * (MAX_CAPTION_CHARS + 1), final=True, now=3.0)
    )
    assert c.switch(PRES, "k:pres", False).enabled is False


def test_interim_lines_are_shown_but_only_final_lines_are_kept() -> None:
    c = Captions()
    c.switch(PRES, "k:pres", True)
    interim = c.send(PRES, "k:pres", "hel", final=False, now=1.0)
    assert interim.line.final is False and interim.line.line_id == "" and interim.line.seq == 0
    assert c.history() == []
    for i in range(CAPTION_HISTORY + 2):
        c.send(PRES, "k:pres", f"line {i}", final=True, now=10.0 + i)
    kept = c.history()
    assert len(kept) == CAPTION_HISTORY  # what a late joiner gets
    assert [line.text for line in kept][-1] == f"line {CAPTION_HISTORY + 1}"
    assert [line.seq for line in kept] == list(range(3, CAPTION_HISTORY + 3))


def test_each_sender_has_a_limit_for_final_and_for_interim_lines() -> None:
    c = Captions()
    c.switch(PRES, "k:pres", True)
    c.set_captioner(PRES, ANN, "k:ann", True)
    for i in range(FINAL_BURST):
        c.send(ANN, "k:ann", f"a{i}", final=True, now=100.0)
    with pytest.raises(InteractionError) as caught:
        c.send(ANN, "k:ann", "one more", final=True, now=100.0)
    assert caught.value.code is E.RATE_LIMITED
    assert caught.value.retry_after == pytest.approx(1 / FINAL_PER_SECOND)
    c.send(PRES, "k:pres", "someone else", final=True, now=100.0)  # another sender's own limit
    for i in range(INTERIM_BURST):  # interim lines have their own
        c.send(ANN, "k:ann", f"typing {i}", final=False, now=100.0)
    refused(E.RATE_LIMITED, lambda: c.send(ANN, "k:ann", "x", final=False, now=100.0))
    c.send(ANN, "k:ann", "later", final=True, now=100.0 + 1 / FINAL_PER_SECOND)


def test_restore_takes_the_switch_captioners_and_lines() -> None:
    c = Captions()
    c.switch(PRES, "k:pres", True)
    lines = [c.send(PRES, "k:pres", f"l{i}", final=True, now=float(i)).line for i in range(3)]
    again = Captions()
    again.restore(lines, enabled=True, captioners={"k:ann"})
    assert again.enabled and again.is_captioner("k:ann") and again.history() == lines
    assert again.send(PRES, "k:pres", "next", final=True, now=9.0).line.seq == 4


def test_attendees_see_no_captions_backstage_unless_they_caption() -> None:
    state = RoomState(max_participants=100)
    state.phase = Phase.LOBBY
    assert not reaches(state, ANN, captioner=False)
    assert reaches(state, ANN, captioner=True)
    assert reaches(state, PRES, captioner=False)
    state.phase = Phase.LIVE
    state.mode = Mode.PRESENTERS_ONLY
    assert not reaches(state, ANN, captioner=False)
    state.mode = Mode.LISTEN_ONLY
    assert reaches(state, ANN, captioner=False)
