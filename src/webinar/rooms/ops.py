"""A room command as data: what one worker runs and every other worker applies the same way.

With one worker an :class:`Op` is applied at once. With several, it goes through the room's
ordered log (:mod:`webinar.signalling.replication`) and every worker with people in the room
applies it in log order (:meth:`webinar.rooms.live.LiveRoom.apply`). An op carries only
JSON values; the enums of the state machine's arguments are named in :data:`_ENUMS`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .reasons import ByeReason
from .roles import Role
from .state import LinkQuality, Mode, Participant, RoomState, Source, Stream

#: The state commands an op may name, and which positional argument is which enum.
_ENUMS: dict[str, dict[int, type[enum.Enum]]] = {
    "start": {},
    "set_mode": {1: Mode},
    "lock": {},
    "end_for_all": {},
    "raise_hand": {},
    "lower_hand": {},
    "grant": {},
    "next_speaker": {},
    "mute": {},
    "mute_all_attendees": {},
    "set_stream_paused": {},
    "promote": {2: Role},
    "remove": {},
    "set_recording": {},
    "set_live_stream": {},
    "set_quality": {1: LinkQuality},
}


@dataclass(frozen=True, slots=True)
class Op:
    #: join | resume | disconnect | leave | state | add_stream | remove_stream
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    #: The worker that ran it first (the participant's or the publisher's worker).
    worker: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "args": self.args, "worker": self.worker}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Op:
        return cls(str(value["name"]), dict(value.get("args") or {}), int(value.get("worker", 0)))


def state_op(method: str, *args: Any, worker: int = 0, **kwargs: Any) -> Op:
    """``state_op("set_mode", actor, Mode.DISCUSSION)``: a call of a RoomState command."""
    if method not in _ENUMS:
        raise ValueError(f"not a room command: {method}")
    plain = [a.value if isinstance(a, enum.Enum) else a for a in args]
    return Op("state", {"method": method, "args": plain, "kwargs": kwargs}, worker)


def run_state_op(state: RoomState, op: Op) -> list[Any]:
    method = op.args["method"]
    enums = _ENUMS[method]  # KeyError: an op this code does not know
    args = [enums[i](a) if i in enums else a for i, a in enumerate(op.args.get("args", []))]
    result: list[Any] = getattr(state, method)(*args, **op.args.get("kwargs", {}))
    return result


def participant_json(p: Participant) -> dict[str, Any]:
    return {"participant_id": p.participant_id, "name": p.name, "role": p.role.value}


def participant_from(value: dict[str, Any]) -> Participant:
    return Participant(str(value["participant_id"]), str(value["name"]), Role(value["role"]))


def stream_json(st: Stream) -> dict[str, Any]:
    return {
        "stream_id": st.stream_id,
        "participant_id": st.participant_id,
        "source": st.source.value,
        "kind": st.kind,
    }


def stream_from(value: dict[str, Any]) -> Stream:
    return Stream(
        str(value["stream_id"]),
        str(value["participant_id"]),
        Source(value["source"]),
        str(value["kind"]),
    )


def reason_from(value: str) -> ByeReason:
    return ByeReason(value)
