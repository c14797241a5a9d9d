"""The signalling schema: every message of protocol version 1, typed.

Client messages are frozen dataclasses parsed and validated by
:func:`parse_client_message`; server messages are dataclasses encoded by
:func:`encode`. ``docs/protocol.md`` describes the same messages.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

PROTOCOL_VERSION = 1

RequestId = int | str


class ErrorCode(enum.StrEnum):
    BAD_JSON = "bad-json"
    BAD_MESSAGE = "bad-message"
    UNKNOWN_TYPE = "unknown-type"
    TOO_LARGE = "too-large"
    RATE_LIMITED = "rate-limited"
    PROTOCOL_VERSION = "protocol-version"
    HELLO_REQUIRED = "hello-required"
    NOT_JOINED = "not-joined"
    ALREADY_JOINED = "already-joined"
    UNKNOWN_EVENT = "unknown-event"
    NOT_STARTED = "not-started"
    ENDED = "ended"
    ROOM_LOCKED = "room-locked"
    BANNED = "banned"
    TOO_MANY_FOR_DISCUSSION = "too-many-for-discussion"
    UNKNOWN_PARTICIPANT = "unknown-participant"
    INVALID_REQUEST = "invalid-request"
    BAD_CREDENTIAL = "bad-credential"
    ROOM_FULL = "room-full"
    FORBIDDEN = "forbidden"
    CAMERA_LIMIT = "camera-limit"
    UNSUPPORTED_CODEC = "unsupported-codec"
    BAD_SDP = "bad-sdp"
    TRACK_MISMATCH = "track-mismatch"
    UNKNOWN_STREAM = "unknown-stream"
    NEGOTIATION_FAILED = "negotiation-failed"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A refused message: answered with an ``error``; the session goes on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _len(lo: int, hi: int) -> dict[str, int]:
    return {"min_len": lo, "max_len": hi}


MAX_SDP = 60_000

Source = Literal["camera", "microphone", "screen", "screen-audio"]

# --------------------------------------------------------------------------- client


@dataclass(frozen=True, slots=True)
class Hello:
    type: ClassVar[str] = "hello"
    protocol: int
    client: str | None = field(default=None, metadata=_len(0, 200))


@dataclass(frozen=True, slots=True)
class Join:
    type: ClassVar[str] = "join"
    event_id: str = field(metadata=_len(1, 32))
    name: str = field(metadata=_len(1, 200))
    credential: str | None = field(default=None, metadata=_len(1, 200))
    resume_token: str | None = field(default=None, metadata=_len(1, 100))
    client_id: str | None = field(default=None, metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class TrackInfo:
    mid: str = field(metadata=_len(1, 32))
    source: Source


@dataclass(frozen=True, slots=True)
class Publish:
    type: ClassVar[str] = "publish"
    sdp: str = field(metadata=_len(1, MAX_SDP))
    tracks: list[TrackInfo] = field(metadata=_len(0, 16))


@dataclass(frozen=True, slots=True)
class Unpublish:
    type: ClassVar[str] = "unpublish"
    producer_id: str = field(metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class SubscriberAnswer:
    type: ClassVar[str] = "subscriber-answer"
    sdp: str = field(metadata=_len(1, MAX_SDP))


@dataclass(frozen=True, slots=True)
class IceCandidate:
    type: ClassVar[str] = "ice-candidate"
    target: Literal["publish", "subscribe"]
    candidate: str = field(metadata=_len(0, 1000))
    sdp_mid: str | None = field(default=None, metadata=_len(0, 32))
    sdp_mline_index: int | None = field(default=None, metadata={"min": 0, "max": 64})


@dataclass(frozen=True, slots=True)
class Start:
    type: ClassVar[str] = "start"


ModeName = Literal["listen-only", "discussion", "presenters-only"]


@dataclass(frozen=True, slots=True)
class SetMode:
    type: ClassVar[str] = "set-mode"
    mode: ModeName


@dataclass(frozen=True, slots=True)
class Lock:
    type: ClassVar[str] = "lock"
    locked: bool


@dataclass(frozen=True, slots=True)
class EndForAll:
    type: ClassVar[str] = "end-for-all"


@dataclass(frozen=True, slots=True)
class RaiseHand:
    type: ClassVar[str] = "raise-hand"


@dataclass(frozen=True, slots=True)
class LowerHand:
    type: ClassVar[str] = "lower-hand"
    participant_id: str | None = field(default=None, metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class Grant:
    type: ClassVar[str] = "grant"
    participant_id: str = field(metadata=_len(1, 64))
    audio: bool
    video: bool


@dataclass(frozen=True, slots=True)
class NextSpeaker:
    type: ClassVar[str] = "next-speaker"


@dataclass(frozen=True, slots=True)
class Mute:
    type: ClassVar[str] = "mute"
    participant_id: str = field(metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class MuteAttendees:
    type: ClassVar[str] = "mute-attendees"


@dataclass(frozen=True, slots=True)
class SetStreamPaused:
    type: ClassVar[str] = "set-stream-paused"
    producer_id: str = field(metadata=_len(1, 64))
    paused: bool


@dataclass(frozen=True, slots=True)
class SetRole:
    type: ClassVar[str] = "set-role"
    participant_id: str = field(metadata=_len(1, 64))
    role: Literal["presenter", "attendee"]


@dataclass(frozen=True, slots=True)
class Remove:
    type: ClassVar[str] = "remove"
    participant_id: str = field(metadata=_len(1, 64))
    ban: bool = False


@dataclass(frozen=True, slots=True)
class SetVideoQuality:
    """What the sender of this message receives: ``auto`` fits the connection,
    ``data-saver`` one small video, ``high`` fewer but sharper videos."""

    type: ClassVar[str] = "set-video-quality"
    quality: Literal["auto", "data-saver", "high"]


@dataclass(frozen=True, slots=True)
class Ping:
    type: ClassVar[str] = "ping"


@dataclass(frozen=True, slots=True)
class Leave:
    type: ClassVar[str] = "leave"


ClientMessage = (
    Hello
    | Join
    | Publish
    | Unpublish
    | SubscriberAnswer
    | IceCandidate
    | Start
    | SetMode
    | Lock
    | EndForAll
    | RaiseHand
    | LowerHand
    | Grant
    | NextSpeaker
    | Mute
    | MuteAttendees
    | SetStreamPaused
    | SetRole
    | Remove
    | SetVideoQuality
    | Ping
    | Leave
)

CLIENT_MESSAGES: dict[str, type[Any]] = {
    cls.type: cls
    for cls in (
        Hello,
        Join,
        Publish,
        Unpublish,
        SubscriberAnswer,
        IceCandidate,
        Start,
        SetMode,
        Lock,
        EndForAll,
        RaiseHand,
        LowerHand,
        Grant,
        NextSpeaker,
        Mute,
        MuteAttendees,
        SetStreamPaused,
        SetRole,
        Remove,
        SetVideoQuality,
        Ping,
        Leave,
    )
}

# --------------------------------------------------------------------------- server


@dataclass(frozen=True, slots=True)
class ParticipantInfo:
    participant_id: str
    name: str
    role: str
    hand_raised: int | None = None  # order of raising; sort ascending for the queue
    grant_audio: bool = False
    grant_video: bool = False
    listen_only: bool = False
    connected: bool = True
    quality: str = "unknown"


@dataclass(frozen=True, slots=True)
class StreamInfo:
    producer_id: str
    participant_id: str
    name: str
    source: str
    kind: str
    paused: bool = False
    pause_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RoomInfo:
    mode: str
    phase: str
    locked: bool
    recordable: bool
    title: str
    agenda: str
    lobby_message: str
    starts_at: str | None
    join_window_minutes: int


@dataclass(frozen=True, slots=True)
class MidStream:
    mid: str
    producer_id: str
    participant_id: str
    name: str
    source: str
    kind: str


@dataclass(frozen=True, slots=True)
class EventInfo:
    event_id: str
    title: str
    starts_at: str | None


@dataclass(frozen=True, slots=True)
class Welcome:
    type: ClassVar[str] = "welcome"
    protocol: int
    server: str
    heartbeat_interval: float
    max_message_bytes: int


@dataclass(frozen=True, slots=True)
class Joined:
    type: ClassVar[str] = "joined"
    participant_id: str
    role: str
    event: EventInfo
    ice_servers: list[dict[str, Any]]
    max_cameras: int
    participants: list[ParticipantInfo]
    streams: list[StreamInfo]
    room: RoomInfo
    resume_token: str
    resumed: bool
    active_speaker: str | None


@dataclass(frozen=True, slots=True)
class PublishAnswer:
    type: ClassVar[str] = "publish-answer"
    sdp: str
    producers: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Unpublished:
    type: ClassVar[str] = "unpublished"
    producer_id: str


@dataclass(frozen=True, slots=True)
class SubscriberOffer:
    type: ClassVar[str] = "subscriber-offer"
    sdp: str
    streams: list[MidStream]


@dataclass(frozen=True, slots=True)
class StreamAdded:
    type: ClassVar[str] = "stream-added"
    stream: StreamInfo


@dataclass(frozen=True, slots=True)
class StreamEnded:
    type: ClassVar[str] = "stream-ended"
    producer_id: str
    participant_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    type: ClassVar[str] = "participant-joined"
    participant: ParticipantInfo


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    type: ClassVar[str] = "participant-left"
    participant_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ParticipantUpdated:
    type: ClassVar[str] = "participant-updated"
    participant: ParticipantInfo
    cause: str


@dataclass(frozen=True, slots=True)
class StreamUpdated:
    type: ClassVar[str] = "stream-updated"
    stream: StreamInfo


@dataclass(frozen=True, slots=True)
class RoomUpdated:
    type: ClassVar[str] = "room-updated"
    room: RoomInfo
    cause: str
    by: str | None


@dataclass(frozen=True, slots=True)
class ActiveSpeaker:
    type: ClassVar[str] = "active-speaker"
    participant_id: str | None


@dataclass(frozen=True, slots=True)
class RoomEnded:
    type: ClassVar[str] = "room-ended"
    thank_you_url: str


@dataclass(frozen=True, slots=True)
class TierInfo:
    videos: int  # videos the connection carries now
    down_kbps: int  # the tier table's row for that many
    label: str  # "audio only", "audio + 1 video", "audio + 3 videos"


@dataclass(frozen=True, slots=True)
class AllocatedStream:
    producer_id: str
    paused: bool  # paused to fit the connection: show the avatar, not a frozen picture
    spatial: int | None  # simulcast layer, 0 = smallest; None when paused
    temporal: int | None  # temporal layer, 2 = full frame rate; None when paused


@dataclass(frozen=True, slots=True)
class Allocation:
    type: ClassVar[str] = "allocation"
    quality: str
    estimate_bps: int | None  # the subscriber's measured downlink (REMB), None until known
    budget_bps: int  # what the server lets itself send
    tier: TierInfo
    streams: list[AllocatedStream]  # video streams only; audio is never paused


@dataclass(frozen=True, slots=True)
class PublisherLayers:
    """Dynacast: which encodings of one of the receiver's own producers anyone
    needs (lowest first); the browser turns the others off."""

    type: ClassVar[str] = "publisher-layers"
    producer_id: str
    active: list[bool]


@dataclass(frozen=True, slots=True)
class Ok:
    type: ClassVar[str] = "ok"


@dataclass(frozen=True, slots=True)
class Pong:
    type: ClassVar[str] = "pong"


@dataclass(frozen=True, slots=True)
class Bye:
    type: ClassVar[str] = "bye"
    reason: str


@dataclass(frozen=True, slots=True)
class Error:
    type: ClassVar[str] = "error"
    code: ErrorCode
    message: str


ServerMessage = (
    Welcome
    | Joined
    | PublishAnswer
    | Unpublished
    | SubscriberOffer
    | StreamAdded
    | StreamEnded
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantUpdated
    | StreamUpdated
    | RoomUpdated
    | ActiveSpeaker
    | RoomEnded
    | Allocation
    | PublisherLayers
    | Ok
    | Pong
    | Bye
    | Error
)


def encode(message: ServerMessage, request_id: RequestId | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": message.type}
    if request_id is not None:
        out["id"] = request_id
    out.update(_plain(dataclasses.asdict(message)))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- parsing

_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        hints.pop("type", None)
        _HINTS[cls] = hints
    return hints


def parse_client_message(obj: Any) -> tuple[ClientMessage, RequestId | None]:
    """Validate a decoded JSON value; raise :class:`ProtocolError` when refused."""
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_JSON, "a message must be a JSON object")
    request_id = obj.get("id")
    if request_id is not None and not (
        (isinstance(request_id, int) and not isinstance(request_id, bool))
        or (isinstance(request_id, str) and len(request_id) <= 64)
    ):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "id must be an integer or a short string")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "missing 'type'")
    cls = CLIENT_MESSAGES.get(kind)
    if cls is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")
    body = {k: v for k, v in obj.items() if k not in ("type", "id")}
    return typing.cast(ClientMessage, _build(cls, body, kind)), request_id


def _build(cls: type[Any], body: dict[str, Any], where: str) -> Any:
    hints = _hints(cls)
    unknown = set(body) - set(hints)
    if unknown:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where}: unknown field {sorted(unknown)[0]!r}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in body:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where}: missing field {f.name!r}")
            continue
        values[f.name] = _check(body[f.name], hints[f.name], f.metadata, f"{where}.{f.name}")
    return cls(**values)


def _check(value: Any, hint: Any, meta: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _check(value, inner[0], meta, where)
    if origin is Literal:
        if value not in get_args(hint):
            allowed = ", ".join(repr(a) for a in get_args(hint))
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where} must be one of {allowed}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where} must be a list")
        _bounds(len(value), meta, where, "items")
        (item,) = get_args(hint)
        return [_check(v, item, {}, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is str:
        if not isinstance(value, str):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where} must be a string")
        _bounds(len(value), meta, where, "characters")
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where} must be an integer")
        if ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, f"{where} must be in {meta['min']}..{meta['max']}"
            )
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where} must be true or false")
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where} must be an object")
        return _build(hint, value, where)
    raise TypeError(f"schema type {hint!r} not supported")  # a bug in this module


def _bounds(n: int, meta: Any, where: str, unit: str) -> None:
    lo = meta.get("min_len")
    hi = meta.get("max_len")
    if lo is not None and n < lo:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where} needs at least {lo} {unit}")
    if hi is not None and n > hi:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{where} allows at most {hi} {unit}")
