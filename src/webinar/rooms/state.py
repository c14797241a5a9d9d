"""The room as a pure state machine: commands in, new state and events out.

No I/O and no media here: :mod:`webinar.rooms.live` applies the events to the
forwarding engine and to the participants' connections.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .roles import Capability, Role, capabilities


class Source(enum.StrEnum):
    MICROPHONE = "microphone"
    CAMERA = "camera"
    SCREEN = "screen"
    SCREEN_AUDIO = "screen-audio"


SOURCE_CAPABILITY: dict[Source, Capability] = {
    Source.MICROPHONE: Capability.PUBLISH_AUDIO,
    Source.CAMERA: Capability.PUBLISH_VIDEO,
    Source.SCREEN: Capability.PUBLISH_SCREEN,
    Source.SCREEN_AUDIO: Capability.PUBLISH_SCREEN,
}


class RoomErrorCode(enum.StrEnum):
    ROOM_FULL = "room-full"
    FORBIDDEN = "forbidden"
    UNKNOWN_PARTICIPANT = "unknown-participant"
    UNKNOWN_STREAM = "unknown-stream"
    DUPLICATE = "duplicate"


class RoomError(Exception):
    def __init__(self, code: RoomErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Participant:
    participant_id: str
    name: str
    role: Role

    @property
    def capabilities(self) -> frozenset[Capability]:
        return capabilities(self.role)


@dataclass(frozen=True, slots=True)
class Stream:
    stream_id: str  # the producer's id
    participant_id: str
    source: Source
    kind: str  # "audio" | "video"


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    participant: Participant


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    participant: Participant
    reason: str


@dataclass(frozen=True, slots=True)
class StreamAdded:
    stream: Stream
    audience: tuple[str, ...]  # participant ids that should receive it


@dataclass(frozen=True, slots=True)
class StreamRemoved:
    stream: Stream
    reason: str


RoomEvent = ParticipantJoined | ParticipantLeft | StreamAdded | StreamRemoved


@dataclass(slots=True)
class RoomState:
    max_participants: int
    participants: dict[str, Participant] = field(default_factory=dict)
    streams: dict[str, Stream] = field(default_factory=dict)

    def join(self, participant: Participant) -> list[RoomEvent]:
        if participant.participant_id in self.participants:
            raise RoomError(RoomErrorCode.DUPLICATE, "already in the room")
        if len(self.participants) >= self.max_participants:
            raise RoomError(
                RoomErrorCode.ROOM_FULL, f"the room is full ({self.max_participants} people)"
            )
        self.participants[participant.participant_id] = participant
        return [ParticipantJoined(participant)]

    def leave(self, participant_id: str, reason: str) -> list[RoomEvent]:
        participant = self.participants.pop(participant_id, None)
        if participant is None:
            return []
        events: list[RoomEvent] = [
            StreamRemoved(s, reason)
            for s in list(self.streams.values())
            if s.participant_id == participant_id
        ]
        for event in events:
            assert isinstance(event, StreamRemoved)
            del self.streams[event.stream.stream_id]
        events.append(ParticipantLeft(participant, reason))
        return events

    def authorize_publish(self, participant_id: str, sources: list[Source]) -> None:
        """Refuse before any media is touched when the role may not publish."""
        participant = self._get(participant_id)
        for source in sources:
            if SOURCE_CAPABILITY[source] not in participant.capabilities:
                raise RoomError(
                    RoomErrorCode.FORBIDDEN, f"a {participant.role} may not publish {source}"
                )

    def add_stream(self, stream: Stream) -> list[RoomEvent]:
        self.authorize_publish(stream.participant_id, [stream.source])
        if stream.stream_id in self.streams:
            raise RoomError(RoomErrorCode.DUPLICATE, "stream already published")
        self.streams[stream.stream_id] = stream
        return [StreamAdded(stream, self.audience(stream))]

    def remove_stream(self, stream_id: str, reason: str) -> list[RoomEvent]:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return []
        return [StreamRemoved(stream, reason)]

    def audience(self, stream: Stream) -> tuple[str, ...]:
        """Who receives ``stream``: everyone allowed to subscribe but its publisher."""
        return tuple(
            p.participant_id
            for p in self.participants.values()
            if p.participant_id != stream.participant_id and Capability.SUBSCRIBE in p.capabilities
        )

    def receivable(self, participant_id: str) -> list[Stream]:
        """Streams a (new) participant should receive."""
        participant = self._get(participant_id)
        if Capability.SUBSCRIBE not in participant.capabilities:
            return []
        return [s for s in self.streams.values() if s.participant_id != participant_id]

    def owns(self, participant_id: str, stream_id: str) -> bool:
        stream = self.streams.get(stream_id)
        return stream is not None and stream.participant_id == participant_id

    def _get(self, participant_id: str) -> Participant:
        participant = self.participants.get(participant_id)
        if participant is None:
            raise RoomError(RoomErrorCode.UNKNOWN_PARTICIPANT, "not in the room")
        return participant
