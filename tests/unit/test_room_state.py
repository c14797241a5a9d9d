"""The room state machine, rule by rule: every transition and every refusal."""

from __future__ import annotations

import pytest

from webinar.rooms.roles import ROLE_CAPABILITIES, Capability, Role
from webinar.rooms.state import (
    DISCUSSION_LIMIT,
    Mode,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    Phase,
    Removed,
    RoomEnded,
    RoomError,
    RoomErrorCode,
    RoomState,
    RoomUpdated,
    Source,
    Stream,
    StreamRemoved,
    StreamUpdated,
    person_key_for,
)

HOST = Participant("h", "Host", Role.HOST)
PRES = Participant("p", "Pres", Role.PRESENTER)
PRES2 = Participant("q", "Pres2", Role.PRESENTER)
ATT = Participant("a", "Att", Role.ATTENDEE)
ATT2 = Participant("b", "Att2", Role.ATTENDEE)
NOW = 1_000_000.0


def room(*people: Participant, limit: int = 500, **kwargs: object) -> RoomState:
    state = RoomState(max_participants=limit, **kwargs)  # type: ignore[arg-type]
    for p in people:
        state.join(p, now=NOW)
    return state


def refused(code: RoomErrorCode) -> pytest.RaisesExc[RoomError]:
    return pytest.raises(RoomError, check=lambda e: e.code is code)


def stream(pid: str, source: Source, sid: str | None = None) -> Stream:
    kind = "audio" if source in (Source.MICROPHONE, Source.SCREEN_AUDIO) else "video"
    return Stream(sid or f"{pid}-{source}", pid, source, kind)


# ----------------------------------------------------------------------------- roles


def test_capability_table_covers_every_role() -> None:
    assert set(ROLE_CAPABILITIES) == set(Role)
    assert ROLE_CAPABILITIES[Role.PRESENTER] < ROLE_CAPABILITIES[Role.HOST]
    assert ROLE_CAPABILITIES[Role.ATTENDEE] == {
        Capability.SUBSCRIBE,
        Capability.RAISE_HAND,
        Capability.CHAT,
        Capability.ASK_QUESTION,
        Capability.ANSWER_POLL,
        Capability.REACT,
    }
    for only_host in (Capability.PROMOTE, Capability.END_FOR_ALL):
        assert only_host not in ROLE_CAPABILITIES[Role.PRESENTER]


# ----------------------------------------------------------------------------- joining


def test_join_limits_duplicates_and_full() -> None:
    state = RoomState(max_participants=2)
    assert state.join(PRES, now=NOW) == [ParticipantJoined(PRES)]
    with refused(RoomErrorCode.DUPLICATE):
        state.join(PRES, now=NOW)
    state.join(ATT, now=NOW)
    with refused(RoomErrorCode.ROOM_FULL):
        state.join(HOST, now=NOW)


@pytest.mark.parametrize(
    ("who", "seconds_before_start", "outcome"),
    [
        (ATT, 301, RoomErrorCode.NOT_STARTED),  # earlier than the 5-minute window
        (ATT, 300, None),  # exactly at the window's edge: lobby
        (ATT, 10, None),
        (ATT, -3600, None),  # late: still lobby until a presenter starts
        (PRES, 86_400, None),  # presenters may enter any time to prepare
    ],
)
def test_join_window(
    who: Participant, seconds_before_start: int, outcome: RoomErrorCode | None
) -> None:
    state = RoomState(max_participants=10, starts_at=NOW + seconds_before_start, join_window=300)
    assert state.phase is Phase.LOBBY
    if outcome is None:
        state.join(who, now=NOW)
    else:
        with refused(outcome):
            state.join(who, now=NOW)


def test_lobby_attendees_receive_nothing_until_start() -> None:
    state = RoomState(max_participants=10, starts_at=NOW + 60)
    for p in (PRES, PRES2, ATT):
        state.join(p, now=NOW)
    cam = stream("p", Source.CAMERA)
    state.add_stream(cam)
    assert set(state.audience(cam)) == {"q"}  # presenters prepare backstage
    with refused(RoomErrorCode.FORBIDDEN):
        state.start("a")
    events = state.start("p")
    assert events == [RoomUpdated(Mode.LISTEN_ONLY, Phase.LIVE, False, "started", "p")]
    assert set(state.audience(cam)) == {"q", "a"}
    assert state.start("p") == []


def test_locked_room_and_bans() -> None:
    state = room(HOST, PRES)
    with refused(RoomErrorCode.FORBIDDEN):
        room(ATT).lock("a", True)
    state.lock("p", True)
    with refused(RoomErrorCode.ROOM_LOCKED):
        state.join(ATT, now=NOW)
    state.join(PRES2, now=NOW)  # presenters still get in
    state.lock("h", False)
    state.join(ATT, now=NOW, ban_key="client:abc")
    events = state.remove("p", "a", ban=True)
    assert isinstance(events[0], Removed) and events[0].banned
    assert isinstance(events[-1], ParticipantLeft) and events[-1].reason == "removed"
    with refused(RoomErrorCode.BANNED):
        state.join(ATT, now=NOW, ban_key="client:abc")
    state.join(ATT2, now=NOW, ban_key="client:other")
    state.remove("p", "b", ban=False)
    state.join(ATT2, now=NOW, ban_key="client:other")  # removal without a ban: may return
    with refused(RoomErrorCode.INVALID):
        state.remove("p", "h", ban=False)  # nobody removes the host
    with refused(RoomErrorCode.FORBIDDEN):
        state.remove("b", "p", ban=False)


# ----------------------------------------------------------------------------- publishing


@pytest.mark.parametrize(
    ("mode", "who", "grants", "source", "allowed"),
    [
        (Mode.LISTEN_ONLY, PRES, (), Source.CAMERA, True),
        (Mode.LISTEN_ONLY, HOST, (), Source.SCREEN, True),
        (Mode.LISTEN_ONLY, ATT, (), Source.MICROPHONE, False),
        (Mode.LISTEN_ONLY, ATT, (), Source.CAMERA, False),
        (Mode.LISTEN_ONLY, ATT, ("audio",), Source.MICROPHONE, True),
        (Mode.LISTEN_ONLY, ATT, ("audio",), Source.CAMERA, False),
        (Mode.LISTEN_ONLY, ATT, ("video",), Source.CAMERA, True),
        (Mode.DISCUSSION, ATT, (), Source.MICROPHONE, True),
        (Mode.DISCUSSION, ATT, (), Source.CAMERA, True),
        (Mode.DISCUSSION, ATT, (), Source.SCREEN, False),
        (Mode.PRESENTERS_ONLY, ATT, ("audio",), Source.MICROPHONE, False),
        (Mode.PRESENTERS_ONLY, PRES, (), Source.MICROPHONE, True),
    ],
)
def test_who_may_publish(
    mode: Mode, who: Participant, grants: tuple[str, ...], source: Source, allowed: bool
) -> None:
    state = room(HOST, PRES, ATT)
    if grants:
        state.grant("p", "a", audio="audio" in grants, video="video" in grants)
    if mode is not Mode.LISTEN_ONLY:
        state.set_mode("h", mode)
    if allowed:
        state.authorize_publish(who.participant_id, [source])
        state.add_stream(stream(who.participant_id, source))
    else:
        with refused(RoomErrorCode.FORBIDDEN):
            state.authorize_publish(who.participant_id, [source])


def test_discussion_refused_above_25_and_26th_joins_listen_only() -> None:
    people = [Participant(f"x{i}", f"X{i}", Role.ATTENDEE) for i in range(DISCUSSION_LIMIT - 1)]
    state = room(PRES, *people)
    assert len(state.participants) == DISCUSSION_LIMIT
    state.set_mode("p", Mode.DISCUSSION)  # 25 people: allowed
    state.join(Participant("late", "Late", Role.ATTENDEE), now=NOW)  # the 26th
    late = state.get("late")
    assert late.listen_only
    with refused(RoomErrorCode.FORBIDDEN):
        state.authorize_publish("late", [Source.MICROPHONE])
    state.authorize_publish("x0", [Source.MICROPHONE])
    state.set_mode("p", Mode.LISTEN_ONLY)
    with refused(RoomErrorCode.TOO_MANY_FOR_DISCUSSION):
        state.set_mode("p", Mode.DISCUSSION)  # 26 people now
    assert state.mode is Mode.LISTEN_ONLY


def test_mode_switch_pauses_other_presenters_microphones() -> None:
    state = room(PRES, PRES2, ATT)
    mine, theirs, cam = (
        stream("p", Source.MICROPHONE),
        stream("q", Source.MICROPHONE),
        stream("q", Source.CAMERA),
    )
    for s in (mine, theirs, cam):
        state.add_stream(s)
    events = state.set_mode("p", Mode.PRESENTERS_ONLY)
    assert events[0] == RoomUpdated(Mode.PRESENTERS_ONLY, Phase.LIVE, False, "mode-changed", "p")
    paused = [e.stream for e in events if isinstance(e, StreamUpdated)]
    assert [(s.stream_id, s.paused, s.pause_reason) for s in paused] == [
        (theirs.stream_id, True, "mode-changed")
    ]
    assert not state.streams[mine.stream_id].paused
    assert not state.streams[cam.stream_id].paused  # only microphones
    # they must switch it on again themselves, and may
    assert state.set_stream_paused("q", theirs.stream_id, False) == [
        StreamUpdated(theirs)  # back to unpaused
    ]
    with refused(RoomErrorCode.UNKNOWN_STREAM):
        state.set_stream_paused("p", theirs.stream_id, True)  # not theirs to switch


def test_presenters_only_forwards_nothing_to_attendees() -> None:
    state = room(HOST, PRES, ATT, ATT2)
    cam = stream("p", Source.CAMERA)
    state.add_stream(cam)
    assert set(state.audience(cam)) == {"h", "a", "b"}
    assert state.recordable
    state.set_mode("p", Mode.PRESENTERS_ONLY)
    assert set(state.audience(cam)) == {"h"}
    assert not state.recordable  # the flag recording reads
    state.set_mode("p", Mode.LISTEN_ONLY)
    assert set(state.audience(cam)) == {"h", "a", "b"}


def test_leaving_discussion_removes_attendee_streams() -> None:
    state = room(PRES, ATT)
    state.set_mode("p", Mode.DISCUSSION)
    mic = stream("a", Source.MICROPHONE)
    state.add_stream(mic)
    events = state.set_mode("p", Mode.LISTEN_ONLY)
    assert StreamRemoved(mic, "mode-changed") in events
    assert mic.stream_id not in state.streams


# ----------------------------------------------------------------------------- floor


def test_hands_queue_in_order() -> None:
    state = room(PRES, ATT, ATT2)
    state.raise_hand("b")
    state.raise_hand("a")
    assert state.raise_hand("a") == []  # already up
    assert [p.participant_id for p in state.hand_queue()] == ["b", "a"]
    with refused(RoomErrorCode.FORBIDDEN):
        state.raise_hand("p")  # presenters have the floor already
    with refused(RoomErrorCode.FORBIDDEN):
        state.lower_hand("a", "b")  # only your own
    state.lower_hand("b", "b")
    state.lower_hand("p", "a")  # a presenter may lower anyone's
    assert state.hand_queue() == []


def test_grant_and_revoke() -> None:
    state = room(PRES, ATT)
    state.raise_hand("a")
    with refused(RoomErrorCode.FORBIDDEN):
        state.grant("a", "a", audio=True, video=False)
    events = state.grant("p", "a", audio=True, video=False)
    assert events == [ParticipantUpdated(state.get("a"), "grant")]
    assert state.get("a").hand_raised is None  # granted: the hand goes down
    mic = stream("a", Source.MICROPHONE)
    state.add_stream(mic)
    events = state.grant("p", "a", audio=False, video=False)
    assert StreamRemoved(mic, "grant-revoked") in events
    with refused(RoomErrorCode.INVALID):
        state.grant("p", "p", audio=True, video=True)


def test_let_next_speak_grants_first_and_revokes_previous() -> None:
    state = room(PRES, ATT, ATT2)
    state.raise_hand("a")
    state.raise_hand("b")
    state.next_speaker("p")
    assert state.get("a").grant_audio and not state.get("b").grant_audio
    assert state.current_speaker == "a"
    state.add_stream(stream("a", Source.MICROPHONE))
    events = state.next_speaker("p")
    assert not state.get("a").grant_audio
    assert state.get("b").grant_audio
    assert any(isinstance(e, StreamRemoved) and e.stream.participant_id == "a" for e in events)
    state.next_speaker("p")  # empty queue: the previous speaker is revoked, nobody new
    assert not state.get("b").grant_audio and state.current_speaker is None


def test_mute_one_and_mute_all_attendees() -> None:
    state = room(PRES, PRES2, ATT, ATT2)
    state.set_mode("p", Mode.DISCUSSION)
    mics = [stream(pid, Source.MICROPHONE) for pid in ("q", "a", "b")]
    for m in mics:
        state.add_stream(m)
    [ev] = state.mute("p", "a")
    assert isinstance(ev, StreamUpdated) and ev.stream.pause_reason == "muted"
    events = state.mute_all_attendees("p")
    assert [e.stream.participant_id for e in events if isinstance(e, StreamUpdated)] == ["b"]
    assert not state.streams[mics[0].stream_id].paused  # presenters are not attendees
    with refused(RoomErrorCode.FORBIDDEN):
        state.mute("a", "b")


# ----------------------------------------------------------------------------- people


def test_promote_and_demote_live() -> None:
    state = room(HOST, PRES, ATT)
    with refused(RoomErrorCode.FORBIDDEN):
        state.promote("p", "a", Role.PRESENTER)  # hosts only
    state.raise_hand("a")
    state.promote("h", "a", Role.PRESENTER)
    a = state.get("a")
    assert a.role is Role.PRESENTER and a.hand_raised is None
    state.add_stream(stream("a", Source.CAMERA))
    events = state.promote("h", "a", Role.ATTENDEE)
    assert any(isinstance(e, StreamRemoved) for e in events)  # the camera goes with the role
    with refused(RoomErrorCode.INVALID):
        state.promote("h", "a", Role.HOST)


def test_disconnect_keeps_role_grants_and_hand_then_reconnect() -> None:
    state = room(PRES, ATT, ATT2)
    state.raise_hand("b")
    state.grant("p", "a", audio=True, video=True)
    state.add_stream(stream("a", Source.CAMERA))
    events = state.disconnect("a")
    assert isinstance(events[0], StreamRemoved)  # media goes at once
    assert isinstance(events[-1], ParticipantUpdated) and not events[-1].participant.connected
    assert "a" in state.participants  # not announced as left
    cam = stream("p", Source.CAMERA)
    state.add_stream(cam)
    assert "a" not in state.audience(cam)
    state.reconnect("a")
    a = state.get("a")
    assert a.connected and a.grant_audio and a.grant_video
    assert [p.participant_id for p in state.hand_queue()] == ["b"]
    assert "a" in state.audience(cam)


def test_end_for_all() -> None:
    state = room(HOST, PRES, ATT)
    cam = stream("p", Source.CAMERA)
    state.add_stream(cam)
    with refused(RoomErrorCode.FORBIDDEN):
        state.end_for_all("p")  # presenters leave; the host ends
    events = state.end_for_all("h")
    assert events == [StreamRemoved(cam, "ended"), RoomEnded(by="h")]
    assert state.phase is Phase.ENDED
    with refused(RoomErrorCode.ENDED):
        state.join(ATT2, now=NOW)


def test_leave_cascades_streams() -> None:
    state = room(PRES, ATT)
    cam = stream("p", Source.CAMERA)
    state.add_stream(cam)
    assert state.leave("p", "left") == [StreamRemoved(cam, "left"), ParticipantLeft(PRES, "left")]
    assert state.leave("p", "left") == []


def test_quality_updates_only_on_change() -> None:
    state = room(ATT)
    assert len(state.set_quality("a", "good")) == 1
    assert state.set_quality("a", "good") == []


def test_one_person_key_across_reloads_and_credentials() -> None:
    """The key attendance and interaction share: the browser's client id, whatever the
    credential (a presenter key is a ban key, not a person), else the participant."""
    assert person_key_for("browser-1", "pa_1") == "client:browser-1"
    assert person_key_for(None, "pa_1") == "pa_1"
    state = room(HOST)
    pres = Participant("pa_2", "Pres", Role.PRESENTER)
    state.join(pres, now=NOW, ban_key="secret-key", person_key=person_key_for("b-2", "pa_2"))
    state.join(ATT, now=NOW)
    assert state.person_key("pa_2") == "client:b-2"
    assert state.person_key("a") == "a"
    state.leave("pa_2", "left")
    assert state.person_key("pa_2") == "client:b-2"  # what they did stays theirs


def test_link_quality_from_loss() -> None:
    from webinar.rooms.state import LinkQuality

    assert LinkQuality.from_loss(0.0) is LinkQuality.GOOD
    assert LinkQuality.from_loss(0.02) is LinkQuality.FAIR
    assert LinkQuality.from_loss(0.079) is LinkQuality.FAIR
    assert LinkQuality.from_loss(0.08) is LinkQuality.POOR


def test_a_refused_action_names_the_role_with_its_article() -> None:
    state = room(HOST, PRES, ATT)
    with pytest.raises(RoomError) as attendee:
        state.set_mode("a", Mode.DISCUSSION)
    assert attendee.value.message == "an attendee may not change the mode"
    with pytest.raises(RoomError) as presenter:
        state.end_for_all("p")
    assert presenter.value.message == "a presenter may not end the event for everyone"
    with pytest.raises(RoomError) as host:
        state.raise_hand("h")
    assert host.value.message == "a host may not raise a hand"
