"""The signalling schema: every message of protocol version 1, typed.

Client messages are frozen dataclasses parsed and validated by
:func:`parse_client_message`; server messages are dataclasses encoded by
:func:`encode`. ``docs/protocol.md`` describes the same messages.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from webinar.formats import BadJson, check_text
from webinar.i18n import _, ngettext
from webinar.rooms.captions import MAX_CAPTION_CHARS
from webinar.rooms.chat import MAX_CHAT_CHARS, MAX_SLOW_MODE_SECONDS
from webinar.rooms.cta import (
    CTA_BUTTON_CHARS,
    CTA_MESSAGE_CHARS,
    CTA_URL_CHARS,
    MAX_DURATION_SECONDS,
    MIN_DURATION_SECONDS,
)
from webinar.rooms.polls import (
    MAX_ACCEPTED_TEXTS,
    MAX_OPTIONS_PER_QUESTION,
    MAX_QUESTIONS_PER_POLL,
    OPTION_TEXT_CHARS,
    POLL_TITLE_CHARS,
    QUESTION_TEXT_CHARS,
    TEXT_ANSWER_CHARS,
)
from webinar.rooms.qa import MAX_QUESTION_CHARS
from webinar.rooms.reasons import ByeReason
from webinar.sfu.types import MediaSource

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
    QUOTA_EXCEEDED = "quota-exceeded"
    INTERNAL = "internal"
    CHAT_OFF = "chat-off"
    CHAT_MUTED = "chat-muted"
    SLOW_MODE = "slow-mode"
    TOO_LONG = "too-long"
    EMPTY = "empty"
    NOT_FOUND = "not-found"
    POLL_OPEN = "poll-open"
    POLL_CLOSED = "poll-closed"
    BAD_ANSWER = "bad-answer"
    QA_CLOSED = "qa-closed"
    BAD_URL = "bad-url"
    LIMIT_REACHED = "limit-reached"
    CAPTIONS_OFF = "captions-off"
    REACTIONS_OFF = "reactions-off"
    # entry refusals from ticketing (webinar.ticketing.RefusalCode)
    CREDENTIAL_REQUIRED = "credential-required"
    REVOKED = "revoked"
    NOT_CONFIRMED = "not-confirmed"
    OUTSIDE_WINDOW = "outside-window"
    BOOKING_EXPIRED = "booking-expired"
    TICKET_IN_USE = "ticket-in-use"
    GROUP_FULL = "group-full"
    EVENT_CANCELLED = "event-cancelled"
    # signed join tokens (webinar.ticketing.join_tokens.TokenCode)
    TOKEN_EXPIRED = "token-expired"
    TOKEN_BAD_SIGNATURE = "token-bad-signature"
    TOKEN_WRONG_EVENT = "token-wrong-event"
    TOKEN_INVALID = "token-invalid"
    DRAINING = "draining"
    SERVER_FULL = "server-full"
    #: The room's coordination between workers (Redis) is unreachable: try again shortly.
    UNAVAILABLE = "unavailable"


class ProtocolError(Exception):
    """A refused message: answered with an ``error``; the session goes on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _len(lo: int, hi: int) -> dict[str, int]:
    return {"min_len": lo, "max_len": hi}


MAX_SDP = 60_000
#: The longest signed join token (webinar.ticketing.join_tokens.MAX_TOKEN_CHARS).
MAX_JOIN_TOKEN = 8192


# --------------------------------------------------------------------------- client


@dataclass(frozen=True, slots=True)
class Hello:
    type: ClassVar[str] = "hello"
    protocol: int
    client: str | None = field(default=None, metadata=_len(0, 200))
    #: The page's language (``en``, ``ru``, ``cs``): texts the server sends are in it.
    language: str | None = field(default=None, metadata=_len(0, 35))


@dataclass(frozen=True, slots=True)
class SetLanguage:
    """The person switched language in the page: texts the server sends follow it."""

    type: ClassVar[str] = "set-language"
    language: str = field(metadata=_len(1, 35))


@dataclass(frozen=True, slots=True)
class Join:
    type: ClassVar[str] = "join"
    event_id: str = field(metadata=_len(1, 32))
    name: str = field(metadata=_len(1, 200))
    credential: str | None = field(default=None, metadata=_len(1, 200))
    resume_token: str | None = field(default=None, metadata=_len(1, 100))
    client_id: str | None = field(default=None, metadata=_len(1, 64))
    #: This join follows a ``move``: the node it reached takes it (it is never moved again).
    placed: bool = False
    #: A signed join token (JWT) from the organiser's backend, instead of ``credential``:
    #: the name and role come from it (docs/api.md, "Signed join tokens").
    join_token: str | None = field(default=None, metadata=_len(1, MAX_JOIN_TOKEN))


@dataclass(frozen=True, slots=True)
class TrackInfo:
    mid: str = field(metadata=_len(1, 32))
    source: MediaSource


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
class RosterPage:
    """Those who manage the floor ask for the roster a page at a time (join order)."""

    type: ClassVar[str] = "roster-page"
    after: str | None = field(default=None, metadata=_len(1, 32))  # ``next_cursor`` of a page
    limit: int = field(default=200, metadata={"min": 1, "max": 500})


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
class SetRecording:
    type: ClassVar[str] = "set-recording"
    recording: bool


@dataclass(frozen=True, slots=True)
class SetLiveStream:
    """Start (``true``) or stop the live stream out to the event's RTMP(S) ingest."""

    type: ClassVar[str] = "set-live-stream"
    live: bool


@dataclass(frozen=True, slots=True)
class Ping:
    type: ClassVar[str] = "ping"


@dataclass(frozen=True, slots=True)
class Leave:
    type: ClassVar[str] = "leave"


# Interaction (docs/protocol.md, "Interaction"). Bounds are the state machines' own.


@dataclass(frozen=True, slots=True)
class React:
    """An emoji reaction (webinar.rooms.reactions): floats over everyone's stage."""

    type: ClassVar[str] = "react"
    reaction: Literal["thumbs-up", "clap", "heart", "laugh", "wow", "party"]


@dataclass(frozen=True, slots=True)
class ReactionsSettings:
    """Turn reactions on or off for the room's attendees (presenters and hosts)."""

    type: ClassVar[str] = "reactions-settings"
    enabled: bool


@dataclass(frozen=True, slots=True)
class ChatSend:
    type: ClassVar[str] = "chat-send"
    text: str = field(metadata=_len(1, MAX_CHAT_CHARS))


@dataclass(frozen=True, slots=True)
class ChatDelete:
    type: ClassVar[str] = "chat-delete"
    message_id: str = field(metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class ChatSettings:
    type: ClassVar[str] = "chat-settings"
    enabled: bool | None = None
    slow_mode_seconds: int | None = field(
        default=None, metadata={"min": 0, "max": MAX_SLOW_MODE_SECONDS}
    )


@dataclass(frozen=True, slots=True)
class ChatMute:
    type: ClassVar[str] = "chat-mute"
    participant_id: str = field(metadata=_len(1, 64))
    muted: bool = True


@dataclass(frozen=True, slots=True)
class QuestionAsk:
    type: ClassVar[str] = "question-ask"
    text: str = field(metadata=_len(1, MAX_QUESTION_CHARS))
    anonymous: bool = False


@dataclass(frozen=True, slots=True)
class QuestionMark:
    type: ClassVar[str] = "question-mark"
    message_id: str = field(metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class QuestionVote:
    type: ClassVar[str] = "question-vote"
    question_id: str = field(metadata=_len(1, 64))
    up: bool = True


@dataclass(frozen=True, slots=True)
class QuestionSetState:
    type: ClassVar[str] = "question-state"
    question_id: str = field(metadata=_len(1, 64))
    state: Literal["new", "answered", "dismissed"]


@dataclass(frozen=True, slots=True)
class QuestionPublish:
    type: ClassVar[str] = "question-publish"
    question_id: str | None = field(default=None, metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class QaSettings:
    type: ClassVar[str] = "qa-settings"
    open: bool


@dataclass(frozen=True, slots=True)
class PollOptionSpec:
    text: str = field(metadata=_len(1, OPTION_TEXT_CHARS))
    image_id: str | None = field(default=None, metadata=_len(1, 40))
    correct: bool = False


@dataclass(frozen=True, slots=True)
class PollQuestionSpec:
    text: str = field(metadata=_len(1, QUESTION_TEXT_CHARS))
    kind: Literal["single", "multiple", "text"] = "single"
    options: list[PollOptionSpec] = field(
        default_factory=list, metadata=_len(0, MAX_OPTIONS_PER_QUESTION)
    )
    accepted: list[str] = field(default_factory=list, metadata=_len(0, MAX_ACCEPTED_TEXTS))


@dataclass(frozen=True, slots=True)
class PollCreate:
    type: ClassVar[str] = "poll-create"
    title: str = field(metadata=_len(1, POLL_TITLE_CHARS))
    kind: Literal["poll", "test"] = "poll"
    questions: list[PollQuestionSpec] = field(
        default_factory=list, metadata=_len(1, MAX_QUESTIONS_PER_POLL)
    )


@dataclass(frozen=True, slots=True)
class PollDelete:
    type: ClassVar[str] = "poll-delete"
    poll_id: str = field(metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class PollLaunch:
    type: ClassVar[str] = "poll-launch"
    poll_id: str = field(metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class PollClose:
    type: ClassVar[str] = "poll-close"
    poll_id: str = field(metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class PollShowResults:
    type: ClassVar[str] = "poll-show-results"
    poll_id: str = field(metadata=_len(1, 64))
    shown: bool = True


@dataclass(frozen=True, slots=True)
class AnswerSpec:
    question_id: str = field(metadata=_len(1, 16))
    option_ids: list[str] = field(default_factory=list, metadata=_len(0, MAX_OPTIONS_PER_QUESTION))
    text: str | None = field(default=None, metadata=_len(0, TEXT_ANSWER_CHARS))


@dataclass(frozen=True, slots=True)
class PollAnswer:
    type: ClassVar[str] = "poll-answer"
    poll_id: str = field(metadata=_len(1, 64))
    answers: list[AnswerSpec] = field(
        default_factory=list, metadata=_len(1, MAX_QUESTIONS_PER_POLL)
    )


@dataclass(frozen=True, slots=True)
class CtaShow:
    type: ClassVar[str] = "cta-show"
    message: str = field(metadata=_len(1, CTA_MESSAGE_CHARS))
    button: str = field(metadata=_len(1, CTA_BUTTON_CHARS))
    url: str = field(metadata=_len(1, CTA_URL_CHARS))
    duration_seconds: int | None = field(
        default=None, metadata={"min": MIN_DURATION_SECONDS, "max": MAX_DURATION_SECONDS}
    )


@dataclass(frozen=True, slots=True)
class CtaClose:
    type: ClassVar[str] = "cta-close"


@dataclass(frozen=True, slots=True)
class CtaLaunch:
    """Show a call-to-action prepared before the event (dashboard or admin API)."""

    type: ClassVar[str] = "cta-launch"
    prepared_id: str = field(metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class SyncInteraction:
    type: ClassVar[str] = "sync-interaction"


# Live captions (webinar.rooms.captions; docs/protocol.md, "Captions").


@dataclass(frozen=True, slots=True)
class CaptionsSet:
    """Turn the room's live captions on or off (a presenter or a captioner)."""

    type: ClassVar[str] = "captions-set"
    enabled: bool


@dataclass(frozen=True, slots=True)
class CaptionerSet:
    """Make a participant a captioner (``true``) or take the right back (a presenter)."""

    type: ClassVar[str] = "captioner-set"
    participant_id: str = field(metadata=_len(1, 64))
    captioner: bool


@dataclass(frozen=True, slots=True)
class CaptionSend:
    """One caption line: ``final`` ones are kept and exported; interim ones only shown."""

    type: ClassVar[str] = "caption-send"
    text: str = field(metadata=_len(1, MAX_CAPTION_CHARS))
    final: bool = True


# --------------------------------------------------------------------------- stage content
# docs/protocol.md, "Stage": presentations, shared video, files, whiteboard, layout.

STAGE_LAYOUTS = Literal["cameras", "screen", "presentation", "video", "whiteboard", "external"]


@dataclass(frozen=True, slots=True)
class StageLayout:
    type: ClassVar[str] = "stage-layout"
    layout: STAGE_LAYOUTS


@dataclass(frozen=True, slots=True)
class PresentationShow:
    type: ClassVar[str] = "presentation-show"
    content_id: str = field(metadata=_len(1, 64))
    page: int = field(default=1, metadata={"min": 1, "max": 100_000})


@dataclass(frozen=True, slots=True)
class PresentationPage:
    type: ClassVar[str] = "presentation-page"
    page: int = field(metadata={"min": 1, "max": 100_000})


@dataclass(frozen=True, slots=True)
class PresentationStop:
    type: ClassVar[str] = "presentation-stop"


@dataclass(frozen=True, slots=True)
class Pointer:
    type: ClassVar[str] = "pointer"
    x: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})
    y: float | None = field(default=None, metadata={"min": 0.0, "max": 1.0})


@dataclass(frozen=True, slots=True)
class VideoShare:
    """Share a YouTube or Vimeo link (``url``) or an uploaded MP4/WebM (``content_id``)."""

    type: ClassVar[str] = "video-share"
    url: str | None = field(default=None, metadata=_len(1, 2000))
    content_id: str | None = field(default=None, metadata=_len(1, 64))


@dataclass(frozen=True, slots=True)
class VideoControl:
    type: ClassVar[str] = "video-control"
    action: Literal["play", "pause", "seek"]
    position: float = field(metadata={"min": 0.0, "max": 86_400.0})


@dataclass(frozen=True, slots=True)
class VideoStop:
    type: ClassVar[str] = "video-stop"


@dataclass(frozen=True, slots=True)
class FileOffer:
    type: ClassVar[str] = "file-offer"
    content_id: str = field(metadata=_len(1, 64))
    offered: bool = True


@dataclass(frozen=True, slots=True)
class WhiteboardStroke:
    type: ClassVar[str] = "whiteboard-stroke"
    stroke_id: str = field(metadata=_len(1, 40))
    page: int = field(metadata={"min": 0, "max": 19})
    tool: Literal["pen", "line", "rect", "ellipse", "text", "eraser"] = "pen"
    color: str = field(default="#000000", metadata=_len(7, 7))
    width: int = field(default=4, metadata={"min": 1, "max": 40})
    points: list[list[float]] = field(default_factory=list, metadata=_len(0, 500))
    text: str | None = field(default=None, metadata=_len(0, 500))
    done: bool = False


@dataclass(frozen=True, slots=True)
class WhiteboardClear:
    type: ClassVar[str] = "whiteboard-clear"
    page: int = field(metadata={"min": 0, "max": 19})


@dataclass(frozen=True, slots=True)
class WhiteboardPage:
    type: ClassVar[str] = "whiteboard-page"
    page: int = field(metadata={"min": 0, "max": 19})


@dataclass(frozen=True, slots=True)
class WhiteboardGrant:
    type: ClassVar[str] = "whiteboard-grant"
    participant_id: str = field(metadata=_len(1, 64))
    granted: bool = True


STAGE_MESSAGES: tuple[type[Any], ...] = (
    StageLayout,
    PresentationShow,
    PresentationPage,
    PresentationStop,
    Pointer,
    VideoShare,
    VideoControl,
    VideoStop,
    FileOffer,
    WhiteboardStroke,
    WhiteboardClear,
    WhiteboardPage,
    WhiteboardGrant,
)


INTERACTION_MESSAGES: tuple[type[Any], ...] = (
    ChatSend,
    ChatDelete,
    ChatSettings,
    ChatMute,
    QuestionAsk,
    QuestionMark,
    QuestionVote,
    QuestionSetState,
    QuestionPublish,
    QaSettings,
    PollCreate,
    PollDelete,
    PollLaunch,
    PollClose,
    PollShowResults,
    PollAnswer,
    CtaShow,
    CtaClose,
    CtaLaunch,
    SyncInteraction,
    CaptionsSet,
    CaptionerSet,
    CaptionSend,
    ReactionsSettings,
)

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
    | RosterPage
    | Grant
    | NextSpeaker
    | Mute
    | MuteAttendees
    | SetStreamPaused
    | SetRole
    | Remove
    | SetVideoQuality
    | SetRecording
    | SetLiveStream
    | Ping
    | SetLanguage
    | Leave
    | ChatSend
    | ChatDelete
    | ChatSettings
    | ChatMute
    | QuestionAsk
    | QuestionMark
    | QuestionVote
    | QuestionSetState
    | QuestionPublish
    | QaSettings
    | PollCreate
    | PollDelete
    | PollLaunch
    | PollClose
    | PollShowResults
    | PollAnswer
    | CtaShow
    | CtaClose
    | CtaLaunch
    | SyncInteraction
    | CaptionsSet
    | CaptionerSet
    | CaptionSend
    | ReactionsSettings
    | React
    | StageLayout
    | PresentationShow
    | PresentationPage
    | PresentationStop
    | Pointer
    | VideoShare
    | VideoControl
    | VideoStop
    | FileOffer
    | WhiteboardStroke
    | WhiteboardClear
    | WhiteboardPage
    | WhiteboardGrant
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
        RosterPage,
        Grant,
        NextSpeaker,
        Mute,
        MuteAttendees,
        SetStreamPaused,
        SetRole,
        Remove,
        SetVideoQuality,
        SetRecording,
        SetLiveStream,
        Ping,
        SetLanguage,
        Leave,
        React,
    )
}
CLIENT_MESSAGES.update({cls.type: cls for cls in INTERACTION_MESSAGES})
CLIENT_MESSAGES.update({cls.type: cls for cls in STAGE_MESSAGES})

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
class ParticipantCounts:
    total: int
    hosts: int
    presenters: int
    attendees: int
    hands: int  # raised hands


@dataclass(frozen=True, slots=True)
class LeftInfo:
    participant_id: str
    reason: str


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
    recording: str = "off"  # "off" | "recording" | "paused"
    live_stream: str = "off"  # "off" | "on" | "paused"


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
class HlsInfo:
    """This attendee watches the room's HLS output (the event's HLS setting), not WebRTC:
    the room sends no subscriber offers; ``playlist`` is the path of the media playlist
    (a content pass in it, so the player needs no header)."""

    playlist: str


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
    counts: ParticipantCounts | None = None
    #: "full": ``participants`` is everyone (those who manage the floor); "paged": the same,
    #: in a big room: the stage and oneself, the rest by ``roster-page``; "stage": the stage
    #: and oneself (attendees), the rest is only counted
    roster: str = "stage"
    #: Set when this attendee watches over HLS (see :class:`HlsInfo`).
    hls: HlsInfo | None = None


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
class ParticipantCount:
    """How many are here, to everyone, at most every ``rooms.roster.COUNT_INTERVAL``."""

    type: ClassVar[str] = "participant-count"
    counts: ParticipantCounts


@dataclass(frozen=True, slots=True)
class Reactions:
    """The room's reactions of one interval, to everyone, at most every
    ``rooms.reactions.REACTIONS_INTERVAL``: ``counts`` by reaction (zeros left out)."""

    type: ClassVar[str] = "reactions"
    counts: dict[str, int]
    interval: float


@dataclass(frozen=True, slots=True)
class ReactionsState:
    """Whether attendees may react now (presenters and hosts always may); ``by``: who
    switched it (``None`` in a sync)."""

    type: ClassVar[str] = "reactions-state"
    enabled: bool
    by: str | None = None


@dataclass(frozen=True, slots=True)
class RosterDelta:
    """What changed in the roster, to those who manage the floor, batched."""

    type: ClassVar[str] = "roster-delta"
    joined: list[ParticipantInfo]
    left: list[LeftInfo]
    updated: list[ParticipantInfo]


@dataclass(frozen=True, slots=True)
class Roster:
    """The reply to ``roster-page``."""

    type: ClassVar[str] = "roster"
    participants: list[ParticipantInfo]
    next_cursor: str | None
    counts: ParticipantCounts


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
class RecordingUpdated:
    type: ClassVar[str] = "recording-updated"
    status: str  # "off" | "recording" | "paused" (presenters-only mode)
    by: str | None  # who pressed REC; None when the mode or the phase changed it


@dataclass(frozen=True, slots=True)
class LiveStreamUpdated:
    """To presenters and hosts: the live stream out. ``status`` is what the room wants
    (``off``, ``on``, ``paused`` in presenters-only mode); ``output`` how the connection to
    the ingest is doing (``state``: ``connecting``, ``live``, ``reconnecting``, ``stopped``;
    ``bitrate_kbit``, ``reconnects``, ``error``, ``dropped_packets``, ``bytes_sent``,
    ``live_seconds``), null until the worker running it has told."""

    type: ClassVar[str] = "live-stream-updated"
    status: str
    by: str | None
    output: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RoomEnded:
    type: ClassVar[str] = "room-ended"
    thank_you_url: str
    #: Attendees: the token of their rating link (``POST /rate/{token}``); else null.
    rating_token: str | None = None


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
class Move:
    """The answer to a ``join`` on a cluster of nodes when another node serves it: connect
    to ``url`` (that node's WebSocket) and send hello and the same join with ``placed``."""

    type: ClassVar[str] = "move"
    url: str


@dataclass(frozen=True, slots=True)
class Bye:
    type: ClassVar[str] = "bye"
    reason: ByeReason


@dataclass(frozen=True, slots=True)
class Draining:
    """The server is stopping: no new joins; it closes every session within the deadline."""

    type: ClassVar[str] = "draining"
    deadline_seconds: float


@dataclass(frozen=True, slots=True)
class Error:
    type: ClassVar[str] = "error"
    code: ErrorCode
    message: str


# Interaction (docs/protocol.md, "Interaction").


@dataclass(frozen=True, slots=True)
class ChatInfo:
    message_id: str
    seq: int
    participant_id: str
    name: str
    role: str
    text: str
    at: float
    question_id: str | None = None


@dataclass(frozen=True, slots=True)
class CaptionInfo:
    line_id: str  # "" for an interim line
    seq: int  # 0 for an interim line
    participant_id: str
    name: str
    text: str
    at: float
    final: bool


@dataclass(frozen=True, slots=True)
class Caption:
    """A caption line, to everyone who sees captions (not attendees while backstage)."""

    type: ClassVar[str] = "caption"
    line: CaptionInfo


@dataclass(frozen=True, slots=True)
class CaptionsState:
    """Whether captions are on and whether the receiver may send them; to managers of
    captions also who the captioners here are."""

    type: ClassVar[str] = "captions-state"
    enabled: bool
    captioner: bool  # the receiver may send captions (a presenter, or made a captioner)
    by: str | None = None
    captioners: list[str] | None = None  # to presenters: participant ids of captioners here


@dataclass(frozen=True, slots=True)
class ChatMessage:
    type: ClassVar[str] = "chat-message"
    message: ChatInfo


@dataclass(frozen=True, slots=True)
class ChatSent:
    type: ClassVar[str] = "chat-sent"
    message_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class ChatDeleted:
    type: ClassVar[str] = "chat-deleted"
    message_id: str
    by: str


@dataclass(frozen=True, slots=True)
class ChatState:
    type: ClassVar[str] = "chat-state"
    enabled: bool
    slow_mode_seconds: int
    muted: bool  # the receiver is muted in chat
    by: str | None = None
    muted_participants: list[str] | None = None  # for moderators: who here is muted


@dataclass(frozen=True, slots=True)
class ChatMuteChanged:
    type: ClassVar[str] = "chat-mute-changed"
    participant_id: str
    muted: bool
    by: str


@dataclass(frozen=True, slots=True)
class QuestionInfo:
    question_id: str
    text: str
    name: str | None  # None: asked anonymously (shown to Q&A managers with anonymous=true)
    participant_id: str | None
    anonymous: bool
    state: str
    votes: int
    voted: bool  # the receiver voted for it
    mine: bool
    asked_at: float
    message_id: str | None


@dataclass(frozen=True, slots=True)
class QuestionUpdate:
    type: ClassVar[str] = "question"
    question: QuestionInfo
    cause: str


@dataclass(frozen=True, slots=True)
class QuestionHidden:
    type: ClassVar[str] = "question-hidden"
    question_id: str


@dataclass(frozen=True, slots=True)
class QuestionPublished:
    type: ClassVar[str] = "question-published"
    question: QuestionInfo | None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class QaState:
    type: ClassVar[str] = "qa-state"
    open: bool
    questions: list[QuestionInfo]
    by: str | None = None


@dataclass(frozen=True, slots=True)
class OptionInfo:
    option_id: str
    text: str
    image_url: str | None
    correct: bool | None  # None: not revealed to the receiver


@dataclass(frozen=True, slots=True)
class PollQuestionInfo:
    question_id: str
    text: str
    kind: str
    options: list[OptionInfo]
    accepted: list[str] | None


@dataclass(frozen=True, slots=True)
class PollInfo:
    poll_id: str
    title: str
    kind: str
    state: str
    results_shown: bool
    questions: list[PollQuestionInfo]
    launched_at: float | None
    closed_at: float | None


@dataclass(frozen=True, slots=True)
class PollUpdate:
    type: ClassVar[str] = "poll"
    poll: PollInfo
    cause: str


@dataclass(frozen=True, slots=True)
class PollDeleted:
    type: ClassVar[str] = "poll-deleted"
    poll_id: str


@dataclass(frozen=True, slots=True)
class ResultInfo:
    question_id: str
    responses: int
    counts: dict[str, int]
    texts: list[str] | None  # text answers, for those who run polls


@dataclass(frozen=True, slots=True)
class PollResults:
    type: ClassVar[str] = "poll-results"
    poll_id: str
    respondents: int
    questions: list[ResultInfo]


@dataclass(frozen=True, slots=True)
class AnswerInfo:
    question_id: str
    option_ids: list[str]
    text: str | None
    correct: bool | None  # revealed once a test is closed


@dataclass(frozen=True, slots=True)
class PollAnswered:
    type: ClassVar[str] = "poll-answered"
    poll_id: str
    answers: list[AnswerInfo]


@dataclass(frozen=True, slots=True)
class PollScore:
    type: ClassVar[str] = "poll-score"
    poll_id: str
    correct: int
    total: int
    answers: list[AnswerInfo]


@dataclass(frozen=True, slots=True)
class CtaInfo:
    cta_id: str
    message: str
    button: str
    url: str  # shown as text; the button opens click_url
    click_url: str
    duration_seconds: int | None
    shown_at: float
    closes_at: float | None
    clicks: int | None = None  # for those who run call-to-actions


@dataclass(frozen=True, slots=True)
class Cta:
    type: ClassVar[str] = "cta"
    cta: CtaInfo | None
    reason: str | None = None  # on closing: "closed" | "expired" | "replaced"


@dataclass(frozen=True, slots=True)
class CtaClicks:
    type: ClassVar[str] = "cta-clicks"
    cta_id: str
    clicks: int


@dataclass(frozen=True, slots=True)
class PreparedCtaInfo:
    prepared_id: str
    message: str
    button: str
    url: str
    duration_seconds: int | None


@dataclass(frozen=True, slots=True)
class CtaPrepared:
    """To those who run calls-to-action: the prepared list changed."""

    type: ClassVar[str] = "cta-prepared"
    prepared: list[PreparedCtaInfo]


@dataclass(frozen=True, slots=True)
class Stage:
    """What is on stage (docs/protocol.md, "Stage"): sent whole on each change, and as
    ``stage`` in the ``sync-interaction`` reply (with the whiteboard's strokes)."""

    type: ClassVar[str] = "stage"
    layout: str
    presentation: dict[str, Any] | None
    video: dict[str, Any] | None
    files: list[dict[str, Any]]
    whiteboard: dict[str, Any]
    external: dict[str, Any] | None
    content_pass: str | None
    now: float
    cause: str
    by: str | None = None


@dataclass(frozen=True, slots=True)
class PointerAt:
    type: ClassVar[str] = "pointer"
    x: float | None
    y: float | None
    by: str


@dataclass(frozen=True, slots=True)
class StrokeUpdate:
    type: ClassVar[str] = "whiteboard-stroke"
    stroke: dict[str, Any]
    append: bool


@dataclass(frozen=True, slots=True)
class WhiteboardCleared:
    type: ClassVar[str] = "whiteboard-cleared"
    page: int
    by: str


@dataclass(frozen=True, slots=True)
class InteractionState:
    type: ClassVar[str] = "interaction-state"
    chat: ChatState
    messages: list[ChatInfo]
    qa: QaState
    published: QuestionInfo | None
    polls: list[PollInfo]
    results: list[PollResults]
    my_answers: dict[str, list[AnswerInfo]]
    scores: list[PollScore]
    cta: CtaInfo | None
    prepared_ctas: list[PreparedCtaInfo] | None = None  # to those who run calls-to-action
    stage: Stage | None = None  # what is on stage, with the whiteboard's strokes
    captions: CaptionsState | None = None  # live captions' switch and the receiver's right
    caption_lines: list[CaptionInfo] | None = None  # the last final lines (if seen now)
    reactions: ReactionsState | None = None  # the reactions switch


ServerMessage = (
    Welcome
    | Stage
    | PointerAt
    | StrokeUpdate
    | WhiteboardCleared
    | Joined
    | PublishAnswer
    | Unpublished
    | SubscriberOffer
    | StreamAdded
    | StreamEnded
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantUpdated
    | ParticipantCount
    | Reactions
    | ReactionsState
    | RosterDelta
    | Roster
    | StreamUpdated
    | RoomUpdated
    | ActiveSpeaker
    | RoomEnded
    | Allocation
    | PublisherLayers
    | RecordingUpdated
    | LiveStreamUpdated
    | Ok
    | Pong
    | Move
    | Bye
    | Draining
    | Error
    | ChatMessage
    | ChatSent
    | ChatDeleted
    | ChatState
    | ChatMuteChanged
    | QuestionUpdate
    | QuestionHidden
    | QuestionPublished
    | QaState
    | PollUpdate
    | PollDeleted
    | PollResults
    | PollAnswered
    | PollScore
    | Cta
    | CtaClicks
    | CtaPrepared
    | InteractionState
    | Caption
    | CaptionsState
)


def encode(message: ServerMessage, request_id: RequestId | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": message.type}
    if request_id is not None:
        out["id"] = request_id
    out.update(_plain(message))
    return out


_LEAVES = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as dicts of their fields, enums as their
    values, containers rebuilt. What ``dataclasses.asdict`` gave, without its deep copy of
    every leaf (an allocation report, sent to each subscriber every few seconds, spent
    ~140 us in it)."""
    cls = type(value)
    if cls in _LEAVES:
        return value
    names = _FIELDS.get(cls)
    if names is None and dataclasses.is_dataclass(cls):
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
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
        raise ProtocolError(ErrorCode.BAD_JSON, _("a message must be a JSON object"))
    request_id = obj.get("id")
    if request_id is not None and not (
        (isinstance(request_id, int) and not isinstance(request_id, bool))
        or (isinstance(request_id, str) and len(request_id) <= 64)
    ):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, _("id must be an integer or a short string"))
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, _("missing 'type'"))
    cls = CLIENT_MESSAGES.get(kind)
    if cls is None:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, _("unknown message type %(type)s") % {"type": repr(kind[:40])}
        )
    body = {k: v for k, v in obj.items() if k not in ("type", "id")}
    return typing.cast(ClientMessage, _build(cls, body, kind)), request_id


def _build(cls: type[Any], body: dict[str, Any], where: str) -> Any:
    hints = _hints(cls)
    unknown = set(body) - set(hints)
    if unknown:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE,
            _("%(where)s: unknown field %(field)s")
            % {"where": where, "field": repr(sorted(unknown)[0])},
        )
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in body:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProtocolError(
                    ErrorCode.BAD_MESSAGE,
                    _("%(where)s: missing field %(field)s")
                    % {"where": where, "field": repr(f.name)},
                )
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
    if isinstance(hint, type) and issubclass(hint, enum.StrEnum):
        if value not in hint._value2member_map_:
            allowed = ", ".join(repr(m.value) for m in hint)
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                _("%(where)s must be one of %(allowed)s") % {"where": where, "allowed": allowed},
            )
        return hint(value)
    if origin is Literal:
        if value not in get_args(hint):
            allowed = ", ".join(repr(a) for a in get_args(hint))
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                _("%(where)s must be one of %(allowed)s") % {"where": where, "allowed": allowed},
            )
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, _("%(where)s must be a list") % {"where": where}
            )
        _bounds(len(value), meta, where, characters=False)
        (item,) = get_args(hint)
        return [_check(v, item, {}, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is str:
        if not isinstance(value, str):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, _("%(where)s must be a string") % {"where": where}
            )
        try:
            check_text(value)
        except BadJson as exc:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                _("%(where)s: %(problem)s") % {"where": where, "problem": exc},
            ) from None
        _bounds(len(value), meta, where, characters=True)
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, _("%(where)s must be an integer") % {"where": where}
            )
        if ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                _("%(where)s must be in %(min)s..%(max)s")
                % {"where": where, "min": meta["min"], "max": meta["max"]},
            )
        return value
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, _("%(where)s must be a number") % {"where": where}
            )
        number = float(value)
        if not math.isfinite(number) or (
            ("min" in meta and number < meta["min"]) or ("max" in meta and number > meta["max"])
        ):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE,
                _("%(where)s must be in %(min)s..%(max)s")
                % {"where": where, "min": meta.get("min", "-"), "max": meta.get("max", "-")},
            )
        return number
    if hint is bool:
        if not isinstance(value, bool):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, _("%(where)s must be true or false") % {"where": where}
            )
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, _("%(where)s must be an object") % {"where": where}
            )
        return _build(hint, value, where)
    raise TypeError(f"schema type {hint!r} not supported")  # a bug in this module


def _bounds(n: int, meta: Any, where: str, *, characters: bool) -> None:
    """Refuse a length out of ``meta``'s bounds: of a text (``characters``) or a list."""
    lo = meta.get("min_len")
    hi = meta.get("max_len")
    if lo is not None and n < lo:
        if characters:
            text = ngettext(
                "%(where)s needs at least %(num)d character",
                "%(where)s needs at least %(num)d characters",
                lo,
            )
        else:
            text = ngettext(
                "%(where)s needs at least %(num)d item",
                "%(where)s needs at least %(num)d items",
                lo,
            )
        raise ProtocolError(ErrorCode.BAD_MESSAGE, text % {"where": where, "num": lo})
    if hi is not None and n > hi:
        if characters:
            text = ngettext(
                "%(where)s allows at most %(num)d character",
                "%(where)s allows at most %(num)d characters",
                hi,
            )
        else:
            text = ngettext(
                "%(where)s allows at most %(num)d item",
                "%(where)s allows at most %(num)d items",
                hi,
            )
        raise ProtocolError(ErrorCode.BAD_MESSAGE, text % {"where": where, "num": hi})
