"""The room state machine: joins, leaves, publishing rights, audiences."""

from __future__ import annotations

import pytest

from webinar.rooms.roles import ROLE_CAPABILITIES, Capability, Role
from webinar.rooms.state import (
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    RoomError,
    RoomErrorCode,
    RoomState,
    Source,
    Stream,
    StreamAdded,
    StreamRemoved,
)

HOST = Participant("h", "Host", Role.HOST)
PRES = Participant("p", "Pres", Role.PRESENTER)
ATT = Participant("a", "Att", Role.ATTENDEE)


def room(*people: Participant, limit: int = 10) -> RoomState:
    state = RoomState(max_participants=limit)
    for p in people:
        state.join(p)
    return state


def test_capability_table_covers_every_role() -> None:
    assert set(ROLE_CAPABILITIES) == set(Role)
    assert Capability.PUBLISH_VIDEO not in ROLE_CAPABILITIES[Role.ATTENDEE]
    assert Capability.SUBSCRIBE in ROLE_CAPABILITIES[Role.ATTENDEE]


def test_join_and_limits() -> None:
    state = RoomState(max_participants=2)
    assert state.join(PRES) == [ParticipantJoined(PRES)]
    with pytest.raises(RoomError) as err:
        state.join(PRES)
    assert err.value.code is RoomErrorCode.DUPLICATE
    state.join(ATT)
    with pytest.raises(RoomError) as err:
        state.join(HOST)
    assert err.value.code is RoomErrorCode.ROOM_FULL


@pytest.mark.parametrize(
    ("who", "source", "allowed"),
    [
        (PRES, Source.CAMERA, True),
        (PRES, Source.SCREEN, True),
        (HOST, Source.MICROPHONE, True),
        (ATT, Source.CAMERA, False),
        (ATT, Source.MICROPHONE, False),
        (ATT, Source.SCREEN, False),
    ],
)
def test_publish_rights(who: Participant, source: Source, allowed: bool) -> None:
    state = room(HOST, PRES, ATT)
    if allowed:
        state.authorize_publish(who.participant_id, [source])
    else:
        with pytest.raises(RoomError) as err:
            state.authorize_publish(who.participant_id, [source])
        assert err.value.code is RoomErrorCode.FORBIDDEN


def test_stream_audience_and_leave_cascade() -> None:
    state = room(HOST, PRES, ATT)
    cam = Stream("s1", "p", Source.CAMERA, "video")
    [added] = state.add_stream(cam)
    assert isinstance(added, StreamAdded)
    assert set(added.audience) == {"h", "a"}
    assert [s.stream_id for s in state.receivable("a")] == ["s1"]
    assert state.receivable("p") == []
    assert state.owns("p", "s1") and not state.owns("a", "s1")
    events = state.leave("p", "left")
    assert events == [StreamRemoved(cam, "left"), ParticipantLeft(PRES, "left")]
    assert state.streams == {}
    assert state.leave("p", "left") == []
    assert state.remove_stream("s1", "x") == []


def test_unknown_participant() -> None:
    with pytest.raises(RoomError) as err:
        room().authorize_publish("nobody", [Source.CAMERA])
    assert err.value.code is RoomErrorCode.UNKNOWN_PARTICIPANT
