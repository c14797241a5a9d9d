"""The recording part of the room state machine: who may record, and how the effective
status follows REC, the mode and the phase (pure, no media)."""

from __future__ import annotations

import pytest

from webinar.rooms.roles import ROLE_CAPABILITIES, Capability, Role
from webinar.rooms.state import (
    Mode,
    Participant,
    RecordingChanged,
    RecordingStatus,
    RoomEnded,
    RoomError,
    RoomErrorCode,
    RoomState,
)

HOST = Participant("h", "Host", Role.HOST)
PRES = Participant("p", "Pres", Role.PRESENTER)
ATT = Participant("a", "Att", Role.ATTENDEE)


def room(**kwargs: object) -> RoomState:
    state = RoomState(max_participants=10, **kwargs)  # type: ignore[arg-type]
    for p in (HOST, PRES, ATT):
        state.join(p, now=0.0)
    return state


def changes(events: list[object]) -> list[tuple[RecordingStatus, str | None]]:
    return [(e.status, e.by) for e in events if isinstance(e, RecordingChanged)]


def test_record_is_a_presenter_and_host_capability() -> None:
    assert Capability.RECORD in ROLE_CAPABILITIES[Role.HOST]
    assert Capability.RECORD in ROLE_CAPABILITIES[Role.PRESENTER]
    assert Capability.RECORD not in ROLE_CAPABILITIES[Role.ATTENDEE]
    state = room()
    with pytest.raises(RoomError) as err:
        state.set_recording("a", True)
    assert err.value.code is RoomErrorCode.FORBIDDEN
    assert state.recording is RecordingStatus.OFF


def test_rec_mode_and_end() -> None:
    state = room()
    assert changes(state.set_recording("p", True)) == [(RecordingStatus.RECORDING, "p")]
    assert state.set_recording("h", True) == []  # already on
    assert changes(state.set_mode("h", Mode.PRESENTERS_ONLY)) == [(RecordingStatus.PAUSED, None)]
    assert not state.recordable
    assert changes(state.set_mode("h", Mode.DISCUSSION)) == [(RecordingStatus.RECORDING, None)]
    assert changes(state.set_mode("h", Mode.LISTEN_ONLY)) == []  # recordable both ways
    events = state.end_for_all("h")
    assert changes(events) == [(RecordingStatus.OFF, None)]
    assert isinstance(events[-1], RoomEnded)  # the recording stops before the room ends


def test_started_in_presenters_only_is_paused_until_the_mode_changes() -> None:
    state = room()
    state.set_mode("h", Mode.PRESENTERS_ONLY)
    assert changes(state.set_recording("h", True)) == [(RecordingStatus.PAUSED, "h")]
    assert changes(state.set_mode("h", Mode.LISTEN_ONLY)) == [(RecordingStatus.RECORDING, None)]
    assert changes(state.set_recording("h", False)) == [(RecordingStatus.OFF, "h")]


def test_auto_start_waits_for_the_lobby_to_open() -> None:
    state = room(starts_at=100.0, recording_wanted=True)
    assert state.recording is RecordingStatus.OFF
    with pytest.raises(RoomError) as err:
        state.set_recording("h", True)
    assert err.value.code is RoomErrorCode.INVALID
    assert changes(state.start("p")) == [(RecordingStatus.RECORDING, None)]
    assert state.set_recording("h", False) and state.recording is RecordingStatus.OFF
