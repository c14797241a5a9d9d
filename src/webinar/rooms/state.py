"""The room as a pure state machine: commands in, new state and events out.

No I/O, no clocks, no media: time is passed in, and :mod:`webinar.rooms.live`
applies the events to the forwarding engine and to the participants'
connections. Every rule of a live room is enforced here, so the browser only
ever shows what the server allows.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Collection
from dataclasses import dataclass, field

from webinar.i18n import N_, _, gettext, ngettext
from webinar.sfu.types import MediaSource

from .reasons import ByeReason
from .roles import Capability, Role, capabilities, may_not

DISCUSSION_LIMIT = 25  # participants allowed while the room is in discussion mode
RESUME_GRACE = 60.0  # seconds a dropped participant keeps their place


#: What a published track carries: the SFU's one type, under the name the room uses.
Source = MediaSource


class LinkQuality(enum.StrEnum):
    """How a participant's downlink looks to the server, from the loss it reports."""

    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"
    UNKNOWN = "unknown"  # nothing received yet

    @classmethod
    def from_loss(cls, loss: float) -> LinkQuality:
        """Under 2 % lost is good, under 8 % fair, more is poor."""
        return cls.GOOD if loss < 0.02 else cls.FAIR if loss < 0.08 else cls.POOR


class Mode(enum.StrEnum):
    LISTEN_ONLY = "listen-only"
    DISCUSSION = "discussion"
    PRESENTERS_ONLY = "presenters-only"


class Phase(enum.StrEnum):
    LOBBY = "lobby"  # before a presenter starts the event
    LIVE = "live"
    ENDED = "ended"


SOURCE_CAPABILITY: dict[Source, Capability] = {
    Source.MICROPHONE: Capability.PUBLISH_AUDIO,
    Source.CAMERA: Capability.PUBLISH_VIDEO,
    Source.SCREEN: Capability.PUBLISH_SCREEN,
    Source.SCREEN_AUDIO: Capability.PUBLISH_SCREEN,
}


class RoomErrorCode(enum.StrEnum):
    ROOM_FULL = "room-full"
    ROOM_LOCKED = "room-locked"
    BANNED = "banned"
    NOT_STARTED = "not-started"
    ENDED = "ended"
    FORBIDDEN = "forbidden"
    UNKNOWN_PARTICIPANT = "unknown-participant"
    UNKNOWN_STREAM = "unknown-stream"
    DUPLICATE = "duplicate"
    TOO_MANY_FOR_DISCUSSION = "too-many-for-discussion"
    INVALID = "invalid"
    SERVER_FULL = "server-full"


#: Refusals to publish, per source: (may not now, may not without the floor).
_MAY_NOT_PUBLISH: dict[Source, tuple[str, str]] = {
    Source.MICROPHONE: (
        N_("you may not publish microphone now"),
        N_("you may not publish microphone now (ask for the floor)"),
    ),
    Source.CAMERA: (
        N_("you may not publish camera now"),
        N_("you may not publish camera now (ask for the floor)"),
    ),
    Source.SCREEN: (
        N_("you may not publish screen now"),
        N_("you may not publish screen now (ask for the floor)"),
    ),
    Source.SCREEN_AUDIO: (
        N_("you may not publish screen-audio now"),
        N_("you may not publish screen-audio now (ask for the floor)"),
    ),
}


def _may_not_publish(source: Source, *, ask: bool) -> str:
    """Why ``source`` may not be published, in the language in effect."""
    now, floor = _MAY_NOT_PUBLISH[source]
    return gettext(floor if ask else now)


def _opens_before(minutes: int) -> str:
    return ngettext(
        "the event opens %(num)d minute before it starts",
        "the event opens %(num)d minutes before it starts",
        minutes,
    ) % {"num": minutes}


class RoomError(Exception):
    def __init__(self, code: RoomErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def person_key_for(client_id: str | None, participant_id: str) -> str:
    """The one key that names a person in attendance and in interaction alike.

    A participant id lasts one join (a resume keeps it, a reload does not); the browser's
    client id (kept in its local storage) survives reloads, so sessions, chat, votes,
    answers and clicks of one browser join up. Without a client id: the participant."""
    return f"client:{client_id}" if client_id else participant_id


@dataclass(frozen=True, slots=True)
class Participant:
    participant_id: str
    name: str
    role: Role
    hand_raised: int | None = None  # order of raising (smaller = earlier), None when down
    grant_audio: bool = False
    grant_video: bool = False
    listen_only: bool = False  # admitted while discussion was full: may not publish
    connected: bool = True
    quality: LinkQuality = LinkQuality.UNKNOWN

    @property
    def capabilities(self) -> frozenset[Capability]:
        return capabilities(self.role)

    def can(self, capability: Capability) -> bool:
        return capability in capabilities(self.role)


@dataclass(frozen=True, slots=True)
class Stream:
    stream_id: str  # the producer's id
    participant_id: str
    source: Source
    kind: str  # "audio" | "video"
    paused: bool = False
    pause_reason: str | None = None  # "mode-changed" | "muted" | "self"


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    participant: Participant


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    participant: Participant
    reason: ByeReason


@dataclass(frozen=True, slots=True)
class ParticipantUpdated:
    participant: Participant
    cause: str  # "hand" | "grant" | "role" | "connection" | "quality"


@dataclass(frozen=True, slots=True)
class StreamAdded:
    stream: Stream


@dataclass(frozen=True, slots=True)
class StreamRemoved:
    stream: Stream
    reason: str


@dataclass(frozen=True, slots=True)
class StreamUpdated:
    stream: Stream


@dataclass(frozen=True, slots=True)
class RoomUpdated:
    mode: Mode
    phase: Phase
    locked: bool
    cause: str  # "mode-changed" | "started" | "locked" | "unlocked"
    by: str | None  # participant id of whoever did it


@dataclass(frozen=True, slots=True)
class Removed:
    participant: Participant
    banned: bool


@dataclass(frozen=True, slots=True)
class RoomEnded:
    by: str


class RecordingStatus(enum.StrEnum):
    OFF = "off"
    RECORDING = "recording"
    PAUSED = "paused"  # wanted, but the room is in presenters-only mode


@dataclass(frozen=True, slots=True)
class RecordingChanged:
    status: RecordingStatus
    by: str | None  # who pressed REC, or None when the mode or phase changed it


#: The actor of a command the event's organiser gives from the dashboard (not a participant).
DASHBOARD = "dashboard"


class LiveStreamStatus(enum.StrEnum):
    """Whether the room streams out (webinar.broadcast): what presenters asked for, as the
    room's phase and mode allow it."""

    OFF = "off"
    ON = "on"
    PAUSED = "paused"  # wanted, but the room is in presenters-only mode: nothing is sent


@dataclass(frozen=True, slots=True)
class LiveStreamChanged:
    status: LiveStreamStatus
    by: str | None  # who started or stopped it, or None when the mode or phase changed it


@dataclass(frozen=True, slots=True)
class LiveStreamOutput:
    """How the live stream out is doing (not a state change: the worker that runs the
    stream tells its presenters): ``output`` is ``RtmpStatus.as_json()``."""

    output: dict[str, object]


RoomEvent = (
    ParticipantJoined
    | ParticipantLeft
    | ParticipantUpdated
    | StreamAdded
    | StreamRemoved
    | StreamUpdated
    | RoomUpdated
    | Removed
    | RoomEnded
    | RecordingChanged
    | LiveStreamChanged
    | LiveStreamOutput
)


@dataclass(slots=True)
class RoomState:
    max_participants: int
    starts_at: float | None = None  # epoch seconds; None: no lobby, live at once
    join_window: float = 300.0  # seconds before ``starts_at`` attendees may enter
    mode: Mode = Mode.LISTEN_ONLY
    phase: Phase = Phase.LIVE
    locked: bool = False
    participants: dict[str, Participant] = field(default_factory=dict)
    streams: dict[str, Stream] = field(default_factory=dict)
    banned: set[str] = field(default_factory=set)
    # participant id -> what a ban of them bans: keys of the person (their client id, their
    # own ticket), never a secret others share (an event password, the presenter key)
    ban_keys: dict[str, frozenset[str]] = field(default_factory=dict)
    # participant id -> person key (see person_key_for); kept after a leave for as long as
    # the room lives, so what someone did before a reload stays theirs
    person_keys: dict[str, str] = field(default_factory=dict)
    current_speaker: str | None = None  # granted by "let next speak"
    recording_wanted: bool = False  # REC pressed (or auto-start); effective per mode
    live_stream_wanted: bool = False  # the live stream out started; effective per mode
    _hand_counter: int = 0

    def __post_init__(self) -> None:
        if self.starts_at is not None:
            self.phase = Phase.LOBBY

    # ------------------------------------------------------------------ queries

    def person_key(self, participant_id: str) -> str:
        """Who someone is across reconnects and reloads (attendance and interaction alike)."""
        return self.person_keys.get(participant_id, participant_id)

    def get(self, participant_id: str) -> Participant:
        participant = self.participants.get(participant_id)
        if participant is None:
            raise RoomError(RoomErrorCode.UNKNOWN_PARTICIPANT, _("no such participant here"))
        return participant

    @property
    def recordable(self) -> bool:
        """What a recorder reads: presenters-only (backstage) is never recorded."""
        return self.phase is Phase.LIVE and self.mode is not Mode.PRESENTERS_ONLY

    @property
    def recording(self) -> RecordingStatus:
        if not self.recording_wanted or self.phase is not Phase.LIVE:
            return RecordingStatus.OFF
        return RecordingStatus.RECORDING if self.recordable else RecordingStatus.PAUSED

    def set_recording(self, actor_id: str, on: bool) -> list[RoomEvent]:
        self._require(actor_id, Capability.RECORD, N_("start or stop the recording"))
        if self.phase is not Phase.LIVE and on:
            raise RoomError(RoomErrorCode.INVALID, _("start the event before recording it"))
        before = self._outputs()
        self.recording_wanted = on
        return self._recording_changed(before, actor_id)

    @property
    def live_stream(self) -> LiveStreamStatus:
        if not self.live_stream_wanted or self.phase is not Phase.LIVE:
            return LiveStreamStatus.OFF
        return LiveStreamStatus.ON if self.recordable else LiveStreamStatus.PAUSED

    def set_live_stream(self, actor_id: str, on: bool) -> list[RoomEvent]:
        """``actor_id`` is a participant with ``stream-out``, or :data:`DASHBOARD` (the
        event's organiser, signed in to the dashboard: not in the room)."""
        if actor_id != DASHBOARD:
            self._require(actor_id, Capability.STREAM_OUT, N_("start or stop the live stream"))
        if self.phase is not Phase.LIVE and on:
            raise RoomError(RoomErrorCode.INVALID, _("start the event before streaming it"))
        before = self._outputs()
        self.live_stream_wanted = on
        return self._recording_changed(before, None if actor_id == DASHBOARD else actor_id)

    def _outputs(self) -> tuple[RecordingStatus, LiveStreamStatus]:
        return self.recording, self.live_stream

    def _recording_changed(
        self, before: tuple[RecordingStatus, LiveStreamStatus], by: str | None
    ) -> list[RoomEvent]:
        """What changed of the room's outputs (the recording, the live stream out)."""
        events: list[RoomEvent] = []
        if self.recording is not before[0]:
            events.append(RecordingChanged(self.recording, by))
        if self.live_stream is not before[1]:
            events.append(LiveStreamChanged(self.live_stream, by))
        return events

    def hand_queue(self) -> list[Participant]:
        raised = [p for p in self.participants.values() if p.hand_raised is not None]
        return sorted(raised, key=lambda p: p.hand_raised or 0)

    def may_publish(self, participant: Participant, source: Source) -> bool:
        if participant.can(SOURCE_CAPABILITY[source]):
            return True
        if self.phase is not Phase.LIVE or self.mode is Mode.PRESENTERS_ONLY:
            return False
        if source is Source.MICROPHONE:
            allowed = participant.grant_audio
        elif source is Source.CAMERA:
            allowed = participant.grant_video
        else:
            return False
        return allowed or (self.mode is Mode.DISCUSSION and not participant.listen_only)

    def receives(self, participant: Participant, stream: Stream) -> bool:
        """Whether ``participant`` should get ``stream`` forwarded right now."""
        if stream.participant_id == participant.participant_id or not participant.connected:
            return False
        if not participant.can(Capability.SUBSCRIBE):
            return False
        backstage = self.phase is Phase.LOBBY or self.mode is Mode.PRESENTERS_ONLY
        return not backstage or participant.can(Capability.SEE_BACKSTAGE)

    def audience(self, stream: Stream) -> tuple[str, ...]:
        return tuple(
            p.participant_id for p in self.participants.values() if self.receives(p, stream)
        )

    def owns(self, participant_id: str, stream_id: str) -> bool:
        stream = self.streams.get(stream_id)
        return stream is not None and stream.participant_id == participant_id

    # ------------------------------------------------------------------ membership

    def join(
        self,
        participant: Participant,
        *,
        now: float,
        ban_key: str | None = None,
        person_key: str | None = None,
        ban_keys: Collection[str] = (),
    ) -> list[RoomEvent]:
        keys = frozenset([*ban_keys, *([ban_key] if ban_key is not None else [])])
        if participant.participant_id in self.participants:
            raise RoomError(RoomErrorCode.DUPLICATE, _("already in the room"))
        if self.phase is Phase.ENDED:
            raise RoomError(RoomErrorCode.ENDED, _("this event has ended"))
        if not keys.isdisjoint(self.banned):
            raise RoomError(RoomErrorCode.BANNED, _("you were removed from this event"))
        early = participant.can(Capability.ENTER_EARLY)
        if self.locked and not early:
            raise RoomError(RoomErrorCode.ROOM_LOCKED, _("the room is locked"))
        if (
            not early
            and self.phase is Phase.LOBBY
            and self.starts_at is not None
            and now < self.starts_at - self.join_window
        ):
            raise RoomError(
                RoomErrorCode.NOT_STARTED,
                _opens_before(int(self.join_window // 60)),
            )
        if len(self.participants) >= self.max_participants:
            raise RoomError(
                RoomErrorCode.ROOM_FULL,
                ngettext(
                    "the room is full (%(num)d person)",
                    "the room is full (%(num)d people)",
                    self.max_participants,
                )
                % {"num": self.max_participants},
            )
        if (
            self.mode is Mode.DISCUSSION
            and len(self.participants) >= DISCUSSION_LIMIT
            and not participant.can(Capability.PUBLISH_AUDIO)
        ):
            participant = dataclasses.replace(participant, listen_only=True)
        self.participants[participant.participant_id] = participant
        if keys:
            self.ban_keys[participant.participant_id] = keys
        self.person_keys[participant.participant_id] = person_key or participant.participant_id
        return [ParticipantJoined(participant)]

    def leave(self, participant_id: str, reason: ByeReason) -> list[RoomEvent]:
        participant = self.participants.pop(participant_id, None)
        if participant is None:
            return []
        self.ban_keys.pop(participant_id, None)
        if self.current_speaker == participant_id:
            self.current_speaker = None
        events: list[RoomEvent] = self._drop_streams(
            lambda s: s.participant_id == participant_id, reason
        )
        events.append(ParticipantLeft(participant, reason))
        return events

    def disconnect(self, participant_id: str) -> list[RoomEvent]:
        """The connection dropped: media goes at once, the place is kept for a while."""
        participant = self.get(participant_id)
        if not participant.connected:
            return []
        events = self._drop_streams(lambda s: s.participant_id == participant_id, "disconnected")
        events.append(self._update(participant, "connection", connected=False))
        return events

    def reconnect(self, participant_id: str) -> list[RoomEvent]:
        participant = self.get(participant_id)
        if participant.connected:
            return []
        return [self._update(participant, "connection", connected=True)]

    # ------------------------------------------------------------------ phase and mode

    def start(self, actor_id: str) -> list[RoomEvent]:
        self._require(actor_id, Capability.START_EVENT, N_("start the event"))
        if self.phase is not Phase.LOBBY:
            return []
        before = self._outputs()
        self.phase = Phase.LIVE
        return [self._room_updated("started", actor_id), *self._recording_changed(before, None)]

    def set_mode(self, actor_id: str, mode: Mode) -> list[RoomEvent]:
        actor = self._require(actor_id, Capability.SWITCH_MODE, N_("change the mode"))
        if mode is self.mode:
            return []
        if mode is Mode.DISCUSSION and len(self.participants) > DISCUSSION_LIMIT:
            raise RoomError(
                RoomErrorCode.TOO_MANY_FOR_DISCUSSION,
                ngettext(
                    "discussion mode allows at most %(num)d people; %(here)d is here",
                    "discussion mode allows at most %(num)d people; %(here)d are here",
                    len(self.participants),
                )
                % {"num": DISCUSSION_LIMIT, "here": len(self.participants)},
            )
        before = self._outputs()
        self.mode = mode
        events: list[RoomEvent] = [self._room_updated("mode-changed", actor.participant_id)]
        events += self._recording_changed(before, None)
        # A deliberate safety step: every other presenter's microphone is paused.
        for stream in list(self.streams.values()):
            owner = self.participants.get(stream.participant_id)
            if (
                stream.source is Source.MICROPHONE
                and owner is not None
                and owner.participant_id != actor_id
                and owner.can(Capability.PUBLISH_AUDIO)
                and not stream.paused
            ):
                events.append(self._pause(stream, "mode-changed"))
        events += self._enforce_publishing("mode-changed")
        return events

    def lock(self, actor_id: str, locked: bool) -> list[RoomEvent]:
        self._require(actor_id, Capability.MODERATE, N_("lock the room"))
        if locked is self.locked:
            return []
        self.locked = locked
        return [self._room_updated("locked" if locked else "unlocked", actor_id)]

    def end_for_all(self, actor_id: str) -> list[RoomEvent]:
        self._require(actor_id, Capability.END_FOR_ALL, N_("end the event for everyone"))
        before = self._outputs()
        self.phase = Phase.ENDED
        events: list[RoomEvent] = self._drop_streams(lambda s: True, "ended")
        events += self._recording_changed(before, None)
        events.append(RoomEnded(by=actor_id))
        return events

    # ------------------------------------------------------------------ floor control

    def raise_hand(self, participant_id: str) -> list[RoomEvent]:
        participant = self._require(participant_id, Capability.RAISE_HAND, N_("raise a hand"))
        if participant.hand_raised is not None:
            return []
        self._hand_counter += 1
        return [self._update(participant, "hand", hand_raised=self._hand_counter)]

    def lower_hand(self, actor_id: str, target_id: str) -> list[RoomEvent]:
        if actor_id != target_id:
            self._require(actor_id, Capability.MANAGE_FLOOR, N_("lower someone's hand"))
        target = self.get(target_id)
        if target.hand_raised is None:
            return []
        return [self._update(target, "hand", hand_raised=None)]

    def grant(self, actor_id: str, target_id: str, *, audio: bool, video: bool) -> list[RoomEvent]:
        self._require(actor_id, Capability.MANAGE_FLOOR, N_("grant the floor"))
        target = self.get(target_id)
        if target.can(Capability.PUBLISH_AUDIO):
            raise RoomError(RoomErrorCode.INVALID, _("presenters need no grant"))
        if (target.grant_audio, target.grant_video) == (audio, video):
            return []
        lower = target.hand_raised if not (audio or video) else None
        events: list[RoomEvent] = [
            self._update(target, "grant", grant_audio=audio, grant_video=video, hand_raised=lower)
        ]
        if not (audio or video) and self.current_speaker == target_id:
            self.current_speaker = None
        events += self._enforce_publishing("grant-revoked")
        return events

    def next_speaker(self, actor_id: str) -> list[RoomEvent]:
        """Grant the microphone to the first raised hand, take it from the previous one."""
        self._require(actor_id, Capability.MANAGE_FLOOR, N_("let the next person speak"))
        events: list[RoomEvent] = []
        previous = self.current_speaker
        if previous is not None and previous in self.participants:
            events += self.grant(actor_id, previous, audio=False, video=False)
        self.current_speaker = None
        queue = [p for p in self.hand_queue() if not p.can(Capability.PUBLISH_AUDIO)]
        if queue:
            nxt = queue[0]
            events += self.grant(actor_id, nxt.participant_id, audio=True, video=nxt.grant_video)
            self.current_speaker = nxt.participant_id
        return events

    def mute(self, actor_id: str, target_id: str) -> list[RoomEvent]:
        self._require(actor_id, Capability.MANAGE_FLOOR, N_("mute someone"))
        self.get(target_id)
        return [
            self._pause(s, "muted")
            for s in list(self.streams.values())
            if s.participant_id == target_id and s.source is Source.MICROPHONE and not s.paused
        ]

    def mute_all_attendees(self, actor_id: str) -> list[RoomEvent]:
        self._require(actor_id, Capability.MANAGE_FLOOR, N_("mute attendees"))
        events: list[RoomEvent] = []
        for stream in list(self.streams.values()):
            owner = self.participants.get(stream.participant_id)
            if (
                owner is not None
                and not owner.can(Capability.PUBLISH_AUDIO)
                and stream.source is Source.MICROPHONE
                and not stream.paused
            ):
                events.append(self._pause(stream, "muted"))
        return events

    # ------------------------------------------------------------------ streams

    def authorize_publish(self, participant_id: str, sources: list[Source]) -> None:
        """Refuse before any media is touched when the participant may not publish."""
        participant = self.get(participant_id)
        for source in sources:
            if not self.may_publish(participant, source):
                raise RoomError(
                    RoomErrorCode.FORBIDDEN,
                    _may_not_publish(source, ask=not participant.can(SOURCE_CAPABILITY[source])),
                )

    def add_stream(self, stream: Stream) -> list[RoomEvent]:
        self.authorize_publish(stream.participant_id, [stream.source])
        if stream.stream_id in self.streams:
            raise RoomError(RoomErrorCode.DUPLICATE, _("stream already published"))
        self.streams[stream.stream_id] = stream
        return [StreamAdded(stream)]

    def remove_stream(self, stream_id: str, reason: str) -> list[RoomEvent]:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return []
        return [StreamRemoved(stream, reason)]

    def set_stream_paused(self, actor_id: str, stream_id: str, paused: bool) -> list[RoomEvent]:
        """The owner switches their own stream off and on again."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.participant_id != actor_id:
            raise RoomError(RoomErrorCode.UNKNOWN_STREAM, _("no such stream of yours"))
        if paused == stream.paused:
            return []
        if not paused and not self.may_publish(self.get(actor_id), stream.source):
            raise RoomError(RoomErrorCode.FORBIDDEN, _may_not_publish(stream.source, ask=False))
        updated = dataclasses.replace(
            stream, paused=paused, pause_reason="self" if paused else None
        )
        self.streams[stream_id] = updated
        return [StreamUpdated(updated)]

    # ------------------------------------------------------------------ people

    def promote(self, actor_id: str, target_id: str, role: Role) -> list[RoomEvent]:
        self._require(actor_id, Capability.PROMOTE, N_("change roles"))
        target = self.get(target_id)
        if role is Role.HOST or target.role is Role.HOST:
            raise RoomError(RoomErrorCode.INVALID, _("the host role cannot be given or taken"))
        if target.role is role:
            return []
        events: list[RoomEvent] = [
            self._update(
                target,
                "role",
                role=role,
                grant_audio=False,
                grant_video=False,
                hand_raised=None,
                listen_only=False,
            )
        ]
        if self.current_speaker == target_id:
            self.current_speaker = None
        events += self._enforce_publishing("role-changed")
        return events

    def remove(self, actor_id: str, target_id: str, *, ban: bool) -> list[RoomEvent]:
        self._require(actor_id, Capability.MODERATE, N_("remove people"))
        target = self.get(target_id)
        if target.role is Role.HOST or actor_id == target_id:
            raise RoomError(RoomErrorCode.INVALID, _("the host cannot be removed"))
        keys = self.ban_keys.get(target_id, frozenset())
        if ban:
            self.banned.update(keys)
        events = self.leave(target_id, ByeReason.REMOVED)
        events.insert(0, Removed(target, banned=ban and bool(keys)))
        return events

    def set_quality(self, participant_id: str, quality: LinkQuality) -> list[RoomEvent]:
        participant = self.participants.get(participant_id)
        if participant is None or participant.quality == quality:
            return []
        return [self._update(participant, "quality", quality=quality)]

    # ------------------------------------------------------------------ helpers

    def _require(self, actor_id: str, capability: Capability, what: str) -> Participant:
        """The actor, if they have ``capability``; ``what`` (``N_()``-marked) names the
        refused action ("change the mode")."""
        actor = self.get(actor_id)
        if not actor.can(capability):
            raise RoomError(RoomErrorCode.FORBIDDEN, may_not(actor.role, what))
        return actor

    def _update(
        self, participant: Participant, cause: str, **changes: object
    ) -> ParticipantUpdated:
        updated = dataclasses.replace(participant, **changes)  # type: ignore[arg-type]
        self.participants[participant.participant_id] = updated
        return ParticipantUpdated(updated, cause)

    def _pause(self, stream: Stream, reason: str) -> StreamUpdated:
        updated = dataclasses.replace(stream, paused=True, pause_reason=reason)
        self.streams[stream.stream_id] = updated
        return StreamUpdated(updated)

    def _room_updated(self, cause: str, by: str | None) -> RoomUpdated:
        return RoomUpdated(self.mode, self.phase, self.locked, cause, by)

    def _drop_streams(self, which: object, reason: str) -> list[RoomEvent]:
        assert callable(which)
        gone = [s for s in self.streams.values() if which(s)]
        for stream in gone:
            del self.streams[stream.stream_id]
        return [StreamRemoved(s, reason) for s in gone]

    def _enforce_publishing(self, reason: str) -> list[RoomEvent]:
        """Remove every stream its owner may no longer publish."""

        def forbidden(stream: Stream) -> bool:
            owner = self.participants.get(stream.participant_id)
            return owner is None or not self.may_publish(owner, stream.source)

        return self._drop_streams(forbidden, reason)
