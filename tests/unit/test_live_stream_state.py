"""The live stream part of the room state machine: who may start it, and how its status
follows the presenters' wish, the mode and the phase, beside the recording (pure)."""

from __future__ import annotations

import pytest

from webinar.rooms.ops import run_state_op, state_op
from webinar.rooms.roles import ROLE_CAPABILITIES, Capability, Role
from webinar.rooms.state import (
    LiveStreamChanged,
    LiveStreamStatus,
    Mode,
    Participant,
    RecordingChanged,
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


def changes(events: list[object]) -> list[tuple[LiveStreamStatus, str | None]]:
    return [(e.status, e.by) for e in events if isinstance(e, LiveStreamChanged)]


def test_stream_out_is_a_presenter_and_host_capability() -> None:
    assert Capability.STREAM_OUT in ROLE_CAPABILITIES[Role.HOST]
    assert Capability.STREAM_OUT in ROLE_CAPABILITIES[Role.PRESENTER]
    assert Capability.STREAM_OUT not in ROLE_CAPABILITIES[Role.ATTENDEE]
    state = room()
    with pytest.raises(RoomError) as err:
        state.set_live_stream("a", True)
    assert err.value.code is RoomErrorCode.FORBIDDEN
    assert state.live_stream is LiveStreamStatus.OFF and not state.live_stream_wanted


def test_on_paused_backstage_and_off_at_the_end() -> None:
    state = room()
    assert changes(state.set_live_stream("p", True)) == [(LiveStreamStatus.ON, "p")]
    assert state.set_live_stream("h", True) == []
    events = state.set_mode("h", Mode.PRESENTERS_ONLY)
    assert changes(events) == [(LiveStreamStatus.PAUSED, None)]
    assert not [e for e in events if isinstance(e, RecordingChanged)]  # not recording
    assert changes(state.set_mode("h", Mode.LISTEN_ONLY)) == [(LiveStreamStatus.ON, None)]
    state.set_recording("h", True)
    events = state.end_for_all("h")
    assert changes(events) == [(LiveStreamStatus.OFF, None)]
    assert [type(e) for e in events][-3:] == [RecordingChanged, LiveStreamChanged, RoomEnded]


def test_not_before_the_start_and_replicated_as_an_op() -> None:
    state = room(starts_at=100.0)
    with pytest.raises(RoomError) as err:
        state.set_live_stream("h", True)
    assert err.value.code is RoomErrorCode.INVALID
    state.start("h")
    other = room()
    op = state_op("set_live_stream", "p", True)
    assert changes(run_state_op(state, op)) == [(LiveStreamStatus.ON, "p")]
    assert changes(run_state_op(other, op)) == [(LiveStreamStatus.ON, "p")]
    assert changes(state.set_live_stream("h", False)) == [(LiveStreamStatus.OFF, "h")]
