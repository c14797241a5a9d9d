"""One participant's signalling session: validated messages in, room calls out.

Each message type maps to one small handler (see ``_HANDLERS``); handlers translate
between the wire schema and the room, nothing more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from webinar import __version__, i18n, logs
from webinar.attendance.ratings import Rater, Ratings
from webinar.attendance.service import AttendanceService
from webinar.content.stage import StageService
from webinar.ids import format_event_id, normalize_event_id, same_secret
from webinar.interaction.service import InteractionService
from webinar.rooms import state as rs
from webinar.rooms.interaction import InteractionEvent
from webinar.rooms.interaction_errors import InteractionError
from webinar.rooms.live import LiveRoom, OfferedStream
from webinar.rooms.manager import RoomManager
from webinar.rooms.reactions import ReactionBurst
from webinar.rooms.reasons import ByeReason
from webinar.rooms.roles import Capability, Role
from webinar.rooms.roster import Counts
from webinar.rooms.state import (
    Mode,
    Participant,
    RoomError,
    RoomEvent,
    Stream,
    person_key_for,
)
from webinar.sfu import AllocationReport, SfuError, VideoQuality
from webinar.storage.records import Event, StoreUnavailable
from webinar.ticketing import Grant, Refusal, Ticketing

from . import captions as captions_
from . import interaction as ia
from . import reactions as reactions_
from . import roster
from . import schema as s
from . import stage as stage_handlers
from .errors import wire_code
from .replication import Replication, Unavailable

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class SignallingTraffic:
    """Signalling messages since the start (plain ints on the hot path; only grow)."""

    received: int = 0
    sent: int = 0


@dataclass(frozen=True, slots=True)
class Services:
    #: Looks an event up by its canonical ID (the store's ``get_event``).
    get_event: Callable[[str], Awaitable[Event | None]]
    rooms: RoomManager
    ice_servers: Callable[[str], list[dict[str, Any]]]  # per participant (TURN credentials)
    heartbeat_interval: float
    max_message_bytes: int
    #: Seconds a new WebSocket has to send ``hello`` before it is closed.
    hello_timeout: float
    ticketing: Ticketing
    #: Persists chat, Q&A, polls and calls-to-action (and counts them for /metrics).
    interaction: InteractionService
    #: Keeps what is on stage (presentation, video, files, whiteboard) and checks its files.
    stage: StageService
    on_error: Callable[[str], None] = lambda _code: None
    #: Told each successful join (not a move to another node): the role and the seconds
    #: from the ``join`` message to the ``joined`` reply.
    on_joined: Callable[[str, float], None] = lambda _role, _seconds: None
    #: Told the seconds each chat message took to reach every connection here.
    on_chat_delivered: Callable[[float], None] = lambda _seconds: None
    #: Messages in and out of every WebSocket (counted as they pass, for /metrics).
    traffic: SignallingTraffic = field(default_factory=SignallingTraffic)
    is_draining: Callable[[], bool] = lambda: False
    #: Signs call-to-action click links (one per process; see docs/api.md).
    interaction_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    recordings: RecordingPolicy | None = None
    #: The live stream out (RTMP to YouTube etc.); None: not available on this server.
    live_stream: LiveStreamPolicy | None = None
    attendance: AttendanceService | None = None
    #: Signs the rating link each attendee gets with ``room-ended`` (None: no rating asked).
    ratings: Ratings | None = None
    #: On a cluster of nodes: the WebSocket URL of the node that serves a join of this role
    #: into this room instead of this one, or None (webinar.cluster.placement).
    placement: Callable[[LiveRoom, Role], Awaitable[str | None]] | None = None
    #: A content pass for (event ID, person key): page images, videos and files of events
    #: that are not open (webinar.http.content); None: URLs go without one.
    content_pass: Callable[[str, str], str] | None = None
    #: What attendees are shown of an event's external player (webinar.content.external).
    external_player: Callable[[Event], dict[str, Any] | None] = lambda _event: None


Send = Callable[[dict[str, Any]], None]


class RecordingPolicy(Protocol):
    """What signalling asks the recording service (webinar.recordings.library)."""

    async def refusal(self, event: Event) -> str | None:
        """Why a new recording of ``event`` may not start (quota), or None."""
        ...

    async def auto_record(self, event: Event) -> bool: ...


class LiveStreamPolicy(Protocol):
    """What signalling asks the live stream out (webinar.broadcast.live)."""

    async def refusal(self, event: Event) -> str | None:
        """Why ``event``'s room may not stream out now (no ingest set), or None."""
        ...


class Session:
    """Implements :class:`webinar.rooms.live.RoomPeer` for one WebSocket."""

    def __init__(
        self,
        services: Services,
        send: Send,
        close: Callable[[ByeReason], None],
        remote: str | None = None,
    ) -> None:
        self._services = services
        self._send = send
        self._close = close
        self._remote = remote
        self._greeted = False
        self._grant: Grant | None = None
        self._expiry: asyncio.TimerHandle | None = None
        #: Set when ticketing ends this session: the socket's close then leaves the room.
        self.leaves_on_close = False
        self.participant: Participant | None = None
        self.room: LiveRoom | None = None
        self.event: Event | None = None
        self.user_agent = ""  # set by the WebSocket handler, for attendance statistics
        #: The person's language (the page's, from hello / set-language, else the upgrade
        #: request's cookie or Accept-Language): texts sent to them are in it.
        self.language = i18n.DEFAULT
        self._attendance_id: int | None = None
        #: The attendance's end begun by :meth:`disconnect` (awaited by :meth:`closed`).
        self._ending: asyncio.Task[None] | None = None
        #: The room's resume token of this session (set when it has joined).
        self._resume_token: str | None = None

    # ------------------------------------------------------------------ dispatch

    async def handle(self, message: s.ClientMessage, request_id: s.RequestId | None) -> None:
        # Texts sent to this person (error messages) are in their language.
        with i18n.using(self.language):
            await self._handle(message, request_id)

    async def _handle(self, message: s.ClientMessage, request_id: s.RequestId | None) -> None:
        try:
            if not self._greeted and not isinstance(message, s.Hello):
                raise s.ProtocolError(s.ErrorCode.HELLO_REQUIRED, i18n._("send 'hello' first"))
            handler = _HANDLERS[type(message)]
            room = self.room
            if (
                room is not None
                and room.replicator is not None
                and type(message) in _LOGGED_INTERACTION
                and self.participant is not None
            ):
                replication = typing.cast(Replication, room.replicator)
                logged = {"type": message.type, **dataclasses.asdict(message)}
                async with replication.interaction(room, self.participant.participant_id, logged):
                    reply = await handler(self, message)
            else:
                reply = await handler(self, message)
            if reply is not None:
                self.send(reply, request_id)
                if isinstance(reply, s.Bye):
                    self._close(reply.reason)
            elif request_id is not None:
                self.send(s.Ok(), request_id)
        except s.ProtocolError as exc:
            self.error(exc.code, exc.message, request_id)
        except RoomError as exc:
            self.error(wire_code(exc.code), exc.message, request_id)
        except SfuError as exc:
            self.error(wire_code(exc.code), exc.message, request_id)
        except InteractionError as exc:
            err = ia.to_protocol_error(exc)
            self.error(err.code, err.message, request_id)
        except Unavailable as exc:
            self.error(s.ErrorCode.UNAVAILABLE, str(exc), request_id)
        except StoreUnavailable:
            # The shared database (PostgreSQL) is down for a moment: nothing was done.
            logger.warning("the database is unreachable: %s refused", message.type)
            self.error(
                s.ErrorCode.UNAVAILABLE,
                i18n._("the database cannot be reached just now; try again in a moment"),
                request_id,
            )

    @property
    def greeted(self) -> bool:
        """Whether the client has said ``hello``."""
        return self._greeted

    def send(self, message: s.ServerMessage, request_id: s.RequestId | None = None) -> None:
        self._send(s.encode(message, request_id))

    def send_frame(self, frame: dict[str, Any]) -> None:
        """A frame encoded once for many connections (:func:`webinar.signalling.roster.
        count_message`, the stage's events): sent as it is, never changed."""
        self._send(frame)

    def error(self, code: s.ErrorCode, message: str, request_id: s.RequestId | None) -> None:
        self._services.on_error(code.value)
        self.send(s.Error(code=code, message=message), request_id)

    # ------------------------------------------------------------------ handlers

    async def on_hello(self, msg: s.Hello) -> s.ServerMessage:
        if msg.protocol != s.PROTOCOL_VERSION:
            raise s.ProtocolError(
                s.ErrorCode.PROTOCOL_VERSION,
                i18n._("this server speaks protocol %(ours)s, not %(theirs)s")
                % {"ours": s.PROTOCOL_VERSION, "theirs": msg.protocol},
            )
        self._greeted = True
        if msg.language is not None:
            self.language = i18n.supported(msg.language) or self.language
        return s.Welcome(
            protocol=s.PROTOCOL_VERSION,
            server=f"webinar/{__version__}",
            heartbeat_interval=self._services.heartbeat_interval,
            max_message_bytes=self._services.max_message_bytes,
        )

    async def on_join(self, msg: s.Join) -> s.ServerMessage:
        started = time.perf_counter()
        reply = await self._join(msg)
        if isinstance(reply, s.Joined):
            self._services.on_joined(reply.role, time.perf_counter() - started)
        return reply

    async def _join(self, msg: s.Join) -> s.ServerMessage:
        if self.participant is not None:
            raise s.ProtocolError(
                s.ErrorCode.ALREADY_JOINED, i18n._("this session has joined already")
            )
        name = " ".join(msg.name.split())
        if not 1 <= len(name) <= 64:
            raise s.ProtocolError(s.ErrorCode.BAD_MESSAGE, i18n._("name must be 1-64 characters"))
        ticketing = self._services.ticketing
        # A look-up is counted against the address before it is made, and an unknown ID
        # stays counted like a wrong credential: event IDs cannot be probed in bulk. An
        # address held back still finds a real event (the host and presenter keys are never
        # held back; ticketing refuses anything else), but learns nothing of unknown ones.
        # The ID of a room that is live is no guess (hundreds arrive on the hour, often
        # behind one address): such a look-up is not counted.
        held_back: Refusal | None = None
        lookup = ticketing.limiter.uncounted()
        event_id = normalize_event_id(msg.event_id)
        if event_id is None or self._services.rooms.get(event_id) is None:
            try:
                lookup = await ticketing.lookup(self._remote)
            except Refusal as refusal:
                held_back = refusal
        try:
            event = await self._services.get_event(event_id) if event_id else None
        except BaseException:
            await lookup.forgive()
            raise
        if event is None:
            await lookup.failed(ticketing.monotonic())
            if held_back is not None:
                raise s.ProtocolError(wire_code(held_back.code), held_back.message)
            raise s.ProtocolError(
                s.ErrorCode.UNKNOWN_EVENT,
                i18n._("there is no event with ID %(id)s") % {"id": repr(msg.event_id[:32])},
            )
        await lookup.forgive()
        if self._services.is_draining() and not self._resumable(event.event_id, msg.resume_token):
            raise s.ProtocolError(
                s.ErrorCode.DRAINING,
                i18n._("the server is shutting down; join again in a moment"),
            )
        resume_token = msg.resume_token
        try:
            grant = await ticketing.admit(
                event,
                msg.credential,
                client=self._remote,
                client_key=msg.client_id or f"session:{id(self)}",
                holder=self,
                resumes=lambda old: isinstance(old, Session) and old.resumed_by(resume_token),
                join_token=msg.join_token,
                resuming=self._resumable(event.event_id, resume_token),
            )
        except Refusal as refusal:
            raise s.ProtocolError(wire_code(refusal.code), refusal.message) from None
        role, name = grant.role, grant.name or name
        policy = self._services.recordings
        auto_record = (
            policy is not None
            and self._services.rooms.get(event.event_id) is None
            and await policy.auto_record(event)
            and await policy.refusal(event) is None
        )
        if not await ticketing.holds(grant):  # another connection took the place meanwhile
            ticketing.release(grant, dropped=False)
            raise s.ProtocolError(
                s.ErrorCode.TICKET_IN_USE,
                i18n._("this code or invitation was just used to enter on another device"),
            )
        try:
            room = self._services.rooms.get_or_create(
                event.event_id,
                starts_at=event.starts_at.timestamp() if event.starts_at else None,
                join_window=ticketing.lobby_window_seconds(event),
                max_cameras=event.camera_limit,
                auto_record=auto_record,
            )
        except RoomError:
            ticketing.release(grant, dropped=False)
            raise
        try:
            await self._services.rooms.ready(room)
        except Exception:
            ticketing.release(grant, dropped=False)
            raise
        placement = self._services.placement
        if placement is not None and not msg.placed:
            try:
                move_to = await placement(room, role)
            except Exception:
                ticketing.release(grant, dropped=False)
                await self._services.rooms.release_if_empty(event.event_id)
                raise
            if move_to is not None:
                ticketing.release(grant, dropped=False)
                await self._services.rooms.release_if_empty(event.event_id)
                logger.info("join moved to %s", move_to)
                return s.Move(url=move_to)
        resumed = None
        if msg.resume_token is not None:
            resumed = await room.come_back(msg.resume_token, self)
        if resumed is not None:
            participant, token = resumed, msg.resume_token
        else:
            participant = Participant(
                participant_id=f"pa_{secrets.token_hex(6)}", name=name, role=role
            )
            self.participant = participant  # set first: the room's events about us name us
            try:
                token = await room.enter(
                    participant,
                    self,
                    ban_keys=_ban_keys(grant, msg.client_id),
                    person_key=person_key_for(msg.client_id, participant.participant_id),
                    hls=watches_hls(event, role, room),
                )
            except RoomError:
                self.participant = None
                ticketing.release(grant, dropped=False)
                await self._services.rooms.release_if_empty(event.event_id)
                raise
            participant = room.state.get(participant.participant_id)  # may be listen-only
        assert token is not None
        self.participant, self.room, self.event = participant, room, event
        self._resume_token = token
        self._hold(grant)
        logs.bind(room_id=event.event_id, participant_id=participant.participant_id)
        logger.info("joined as %s%s", participant.role.value, " (resumed)" if resumed else "")
        attendance = self._services.attendance
        if attendance is not None:
            try:
                self._attendance_id = await attendance.joined(
                    event_id=event.event_id,
                    participant_id=participant.participant_id,
                    person_key=room.state.person_key(participant.participant_id),
                    name=participant.name,
                    role=participant.role.value,
                    user_agent=self.user_agent,
                    email=grant.email,
                    language=self.language,
                )
            except Exception:
                # The room has seated us, the store has no record of it: leave again, so
                # nobody sees a participant the attendance does not know (no ghost).
                await self.leave(ByeReason.DISCONNECTED)
                self.participant = self.event = None
                raise
        people, seen = roster.snapshot(room, participant)
        hls = None
        if participant.participant_id in room.hls_viewers and self._services.content_pass:
            # the pass naming nobody: everyone admitted within the hour gets the same URLs,
            # which a CDN in front caches once (webinar.http.hls serves them)
            hls_pass = self._services.content_pass(event.event_id, "")
            hls = s.HlsInfo(playlist=f"/e/{event.event_id}/hls/{hls_pass}/index.m3u8")
        return s.Joined(
            participant_id=participant.participant_id,
            role=participant.role.value,
            event=s.EventInfo(
                event_id=format_event_id(event.event_id),
                title=event.title,
                starts_at=event.starts_at.isoformat() if event.starts_at else None,
            ),
            ice_servers=self._services.ice_servers(participant.participant_id),
            max_cameras=room.router.config.max_cameras,
            participants=people,
            streams=[_stream(st, room.name_of(st.participant_id)) for st in room.streams()],
            room=self._room_info(),
            resume_token=token,
            resumed=resumed is not None,
            active_speaker=room.active_speaker,
            counts=roster.counts_info(room.counts()),
            roster=seen,
            hls=hls,
        )

    async def on_publish(self, msg: s.Publish) -> s.ServerMessage:
        room, participant = self._joined()
        tracks = [(t.mid, t.source) for t in msg.tracks]
        answer, published = await room.publish(participant.participant_id, msg.sdp, tracks)
        return s.PublishAnswer(
            sdp=answer,
            producers=[
                {"producer_id": p.stream_id, "mid": p.mid, "source": p.source.value}
                for p in published
            ],
        )

    async def on_unpublish(self, msg: s.Unpublish) -> s.ServerMessage:
        room, participant = self._joined()
        room.unpublish(participant.participant_id, msg.producer_id)
        return s.Unpublished(producer_id=msg.producer_id)

    async def on_subscriber_answer(self, msg: s.SubscriberAnswer) -> None:
        room, participant = self._joined()
        await room.subscriber_answer(participant.participant_id, msg.sdp)

    async def on_ice_candidate(self, msg: s.IceCandidate) -> None:
        room, participant = self._joined()
        await room.add_ice_candidate(
            participant.participant_id, msg.target, msg.candidate, msg.sdp_mid, msg.sdp_mline_index
        )

    # Room commands: each is one state-machine call; the room applies its events.

    async def on_start(self, _msg: s.Start) -> None:
        room, me = self._joined()
        await room.do("start", me.participant_id)

    async def on_set_mode(self, msg: s.SetMode) -> None:
        room, me = self._joined()
        await room.do("set_mode", me.participant_id, Mode(msg.mode))

    async def on_lock(self, msg: s.Lock) -> None:
        room, me = self._joined()
        await room.do("lock", me.participant_id, msg.locked)

    async def on_end_for_all(self, _msg: s.EndForAll) -> None:
        room, me = self._joined()
        await room.do("end_for_all", me.participant_id)

    async def on_raise_hand(self, _msg: s.RaiseHand) -> None:
        room, me = self._joined()
        await room.do("raise_hand", me.participant_id)

    async def on_lower_hand(self, msg: s.LowerHand) -> None:
        room, me = self._joined()
        target = msg.participant_id or me.participant_id
        await room.do("lower_hand", me.participant_id, target)

    async def on_grant(self, msg: s.Grant) -> None:
        room, me = self._joined()
        await room.do(
            "grant", me.participant_id, msg.participant_id, audio=msg.audio, video=msg.video
        )

    async def on_next_speaker(self, _msg: s.NextSpeaker) -> None:
        room, me = self._joined()
        await room.do("next_speaker", me.participant_id)

    async def on_mute(self, msg: s.Mute) -> None:
        room, me = self._joined()
        await room.do("mute", me.participant_id, msg.participant_id)

    async def on_mute_attendees(self, _msg: s.MuteAttendees) -> None:
        room, me = self._joined()
        await room.do("mute_all_attendees", me.participant_id)

    async def on_set_stream_paused(self, msg: s.SetStreamPaused) -> None:
        room, me = self._joined()
        await room.do("set_stream_paused", me.participant_id, msg.producer_id, msg.paused)

    async def on_set_role(self, msg: s.SetRole) -> None:
        room, me = self._joined()
        await room.do("promote", me.participant_id, msg.participant_id, Role(msg.role))

    async def on_remove(self, msg: s.Remove) -> None:
        room, me = self._joined()
        await room.do("remove", me.participant_id, msg.participant_id, ban=msg.ban)

    async def on_set_video_quality(self, msg: s.SetVideoQuality) -> None:
        room, me = self._joined()
        room.set_video_quality(me.participant_id, VideoQuality(msg.quality))

    async def on_set_recording(self, msg: s.SetRecording) -> None:
        room, me = self._joined()
        policy = self._services.recordings
        if policy is None and msg.recording:
            raise s.ProtocolError(s.ErrorCode.FORBIDDEN, i18n._("recording is not enabled here"))
        if msg.recording and me.can(Capability.RECORD) and self.event is not None:
            assert policy is not None
            refusal = await policy.refusal(self.event)
            if refusal is not None and room.state.recording_wanted is False:
                raise s.ProtocolError(s.ErrorCode.QUOTA_EXCEEDED, refusal)
        await room.do("set_recording", me.participant_id, msg.recording)

    async def on_set_live_stream(self, msg: s.SetLiveStream) -> None:
        room, me = self._joined()
        policy = self._services.live_stream
        if msg.live and me.can(Capability.STREAM_OUT):
            if policy is None:
                raise s.ProtocolError(
                    s.ErrorCode.FORBIDDEN, i18n._("live streaming is not enabled here")
                )
            if self.event is not None:
                refusal = await policy.refusal(self.event)
                if refusal is not None:
                    raise s.ProtocolError(s.ErrorCode.INVALID_REQUEST, refusal)
        await room.do("set_live_stream", me.participant_id, msg.live)

    async def on_ping(self, _msg: s.Ping) -> s.ServerMessage:
        return s.Pong()

    async def on_set_language(self, msg: s.SetLanguage) -> None:
        found = i18n.supported(msg.language)
        if found is None:
            raise s.ProtocolError(
                s.ErrorCode.INVALID_REQUEST,
                i18n.gettext("That language is not available."),
            )
        self.language = found

    async def on_leave(self, _msg: s.Leave) -> s.ServerMessage:
        await self.leave(ByeReason.LEFT)
        return s.Bye(reason=ByeReason.LEFT)

    # ------------------------------------------------------------------ room peer

    def room_event(self, event: RoomEvent) -> None:
        me = self.participant.participant_id if self.participant else None
        room = self.room
        if room is None:
            return
        if isinstance(event, rs.ParticipantJoined):
            if event.participant.participant_id != me:
                self.send(s.ParticipantJoined(participant=_participant(event.participant)))
        elif isinstance(event, rs.ParticipantLeft):
            if event.participant.participant_id != me:
                self.send(
                    s.ParticipantLeft(
                        participant_id=event.participant.participant_id, reason=event.reason
                    )
                )
        elif isinstance(event, rs.ParticipantUpdated):
            if event.participant.participant_id == me:
                self.participant = event.participant
            self.send(
                s.ParticipantUpdated(participant=_participant(event.participant), cause=event.cause)
            )
        elif isinstance(event, rs.StreamAdded):
            if event.stream.participant_id != me:
                name = room.name_of(event.stream.participant_id)
                self.send(s.StreamAdded(stream=_stream(event.stream, name)))
        elif isinstance(event, rs.StreamRemoved):
            self.send(
                s.StreamEnded(
                    producer_id=event.stream.stream_id,
                    participant_id=event.stream.participant_id,
                    reason=event.reason,
                )
            )
        elif isinstance(event, rs.StreamUpdated):
            name = room.name_of(event.stream.participant_id)
            self.send(s.StreamUpdated(stream=_stream(event.stream, name)))
        elif isinstance(event, rs.RoomUpdated):
            self.send(s.RoomUpdated(room=self._room_info(), cause=event.cause, by=event.by))
        elif isinstance(event, rs.RecordingChanged):
            self.send(s.RecordingUpdated(status=event.status.value, by=event.by))
        elif isinstance(event, rs.LiveStreamChanged | rs.LiveStreamOutput):
            self._live_stream_event(event)
        elif isinstance(event, rs.RoomEnded):
            url = self.event.thank_you_url if self.event else None
            self.send(s.RoomEnded(thank_you_url=url or "/thanks", rating_token=self._rating()))

    def _live_stream_event(self, event: rs.LiveStreamChanged | rs.LiveStreamOutput) -> None:
        """Presenters and hosts hear how the live stream out is doing; attendees only see
        ``room.live_stream`` (in ``joined`` and ``room-updated``)."""
        room, me = self.room, self.participant
        if room is None or me is None or not me.can(Capability.STREAM_OUT):
            return
        if isinstance(event, rs.LiveStreamChanged):
            if event.status is rs.LiveStreamStatus.OFF:
                self._live_output = None  # the next report, if any, says it stopped
            self.send(
                s.LiveStreamUpdated(
                    status=event.status.value, by=event.by, output=self._live_output
                )
            )
        else:
            self._live_output = event.output
            self.send(
                s.LiveStreamUpdated(
                    status=room.state.live_stream.value, by=None, output=event.output
                )
            )

    _live_output: dict[str, Any] | None = None

    def _rating(self) -> str | None:
        """An attendee's rating link token (webinar.attendance.ratings): who they are is their
        ticket's e-mail address, else the browser's person key."""
        ratings, participant, room, event = (
            self._services.ratings,
            self.participant,
            self.room,
            self.event,
        )
        if ratings is None or participant is None or room is None or event is None:
            return None
        if participant.role is not Role.ATTENDEE:
            return None
        email = self._grant.email if self._grant is not None else None
        person_key = room.state.person_key(participant.participant_id)
        return ratings.token(Rater(event.event_id, participant.name, email, person_key))

    def active_speaker(self, participant_id: str | None) -> None:
        self.send(s.ActiveSpeaker(participant_id=participant_id))

    def participant_count(self, counts: Counts) -> None:
        if self.room is not None:
            self.send_frame(roster.count_message(counts))  # one encoding shared by all

    def reactions(self, burst: ReactionBurst) -> None:
        if self.room is not None:
            self.send_frame(reactions_.burst_message(burst))  # one encoding shared by all

    def roster_delta(
        self,
        joined: list[Participant],
        left: list[tuple[str, ByeReason]],
        updated: list[Participant],
    ) -> None:
        if self.room is not None:
            self.send(roster.delta(joined, left, updated))

    def allocation(self, report: AllocationReport) -> None:
        self.send(
            s.Allocation(
                quality=report.quality.value,
                estimate_bps=report.estimate_bps,
                budget_bps=report.budget_bps,
                tier=s.TierInfo(
                    videos=report.tier.videos,
                    down_kbps=report.tier.down_kbps,
                    label=report.tier.label,
                ),
                streams=[
                    s.AllocatedStream(
                        producer_id=st.producer_id,
                        paused=st.paused,
                        spatial=st.spatial,
                        temporal=st.temporal,
                    )
                    for st in report.streams
                ],
            )
        )

    def publisher_layers(self, producer_id: str, active: list[bool]) -> None:
        self.send(s.PublisherLayers(producer_id=producer_id, active=list(active)))

    def disconnect(self, reason: ByeReason) -> None:
        """The room ends this session (removed, ended, replaced by a resumed one). Its
        attendance ends now, not when the socket's end is noticed: the page may stay open
        (on the rating after End for all) and its socket's close come late, or never."""
        self.room = None  # the room has dealt with us already
        if self._attendance_id is not None and self._ending is None:
            self._ending = asyncio.get_running_loop().create_task(self._end_attendance(reason))
        try:
            self._let_go(dropped=False)
            self.send(s.Bye(reason=reason))
        finally:
            self._close(reason)

    def evict(self, reason: ByeReason) -> None:
        """Ticketing ends this session: ``taken-over`` (another device entered with the
        same single-use credential) or ``window-ended``. The room is left when it closes."""
        if self.room is None:
            return
        self.leaves_on_close = True
        self._let_go(dropped=False)
        self.send(s.Bye(reason=reason))
        self._close(reason)

    def resumed_by(self, token: str | None) -> bool:
        """Whether a join showing ``token`` is this session coming back (a resume)."""
        mine = self._resume_token
        return token is not None and mine is not None and same_secret(token, mine)

    def _hold(self, grant: Grant) -> None:
        """Keep the grant; end the session when it expires."""
        self._let_go(dropped=False)
        self._grant = grant
        if grant.expires_at is not None:
            delay = (grant.expires_at - self._services.ticketing.clock()).total_seconds()
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(max(0.0, delay), self.evict, ByeReason.WINDOW_ENDED)

    def _let_go(self, *, dropped: bool) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        grant, self._grant = self._grant, None
        if grant is not None:
            self._services.ticketing.release(grant, dropped=dropped)

    def _room_info(self) -> s.RoomInfo:
        room, event = self.room, self.event
        assert room is not None
        state = room.state
        return s.RoomInfo(
            mode=state.mode.value,
            phase=state.phase.value,
            locked=state.locked,
            recordable=state.recordable,
            title=event.title if event else "",
            agenda=event.agenda if event else "",
            lobby_message=event.lobby_message if event else "",
            starts_at=event.starts_at.isoformat() if event and event.starts_at else None,
            join_window_minutes=event.join_window_minutes if event else 0,
            recording=state.recording.value,
            live_stream=state.live_stream.value,
        )

    async def subscriber_offer(self, sdp: str, streams: list[OfferedStream]) -> None:
        self.send(
            s.SubscriberOffer(
                sdp=sdp,
                streams=[
                    s.MidStream(
                        mid=o.mid,
                        producer_id=o.stream.stream_id,
                        participant_id=o.stream.participant_id,
                        name=o.name,
                        source=o.stream.source.value,
                        kind=o.stream.kind,
                    )
                    for o in streams
                ],
            )
        )

    # ------------------------------------------------------------------ lifecycle

    def _resumable(self, room_id: str, token: str | None) -> bool:
        """While draining, only a participant of a live room may come back (after a drop)."""
        room = self._services.rooms.get(room_id)
        return token is not None and room is not None and room.has_resume_token(token)

    @property
    def services(self) -> Services:
        return self._services

    def joined(self) -> tuple[LiveRoom, Participant]:
        return self._joined()

    def interaction_event(self, event: InteractionEvent) -> None:
        ia.deliver(self, event)

    def _joined(self) -> tuple[LiveRoom, Participant]:
        if self.room is None or self.participant is None:
            raise s.ProtocolError(s.ErrorCode.NOT_JOINED, i18n._("join an event first"))
        return self.room, self.participant

    async def leave(self, reason: ByeReason) -> None:
        """Leave for good (the ``leave`` message)."""
        room, participant = self.room, self.participant
        self.room = None
        self._let_go(dropped=False)
        if room is None or participant is None:
            return
        await room.leave(participant.participant_id, reason)
        await self._end_attendance(reason)  # now, not when the socket is noticed gone

    async def closed(self, reason: ByeReason) -> None:
        """The socket is gone: the attendance session ends (a resume starts a new one)."""
        ending, self._ending = self._ending, None
        if ending is not None:
            # Begun by disconnect. Shielded: aiohttp cancels the handler of a lost connection,
            # and cancelling the await would cancel the write still queued for the store's
            # thread, leaving the attendance session open for good.
            await asyncio.shield(ending)
        await self._end_attendance(reason)

    async def _end_attendance(self, reason: ByeReason) -> None:
        session_id, self._attendance_id = self._attendance_id, None
        if session_id is not None and self._services.attendance is not None:
            await self._services.attendance.left(session_id, reason)

    def dropped(self) -> None:
        """The socket closed without ``leave``: keep the place for the resume grace."""
        room, participant = self.room, self.participant
        self.room = None
        self._let_go(dropped=True)
        if room is not None and participant is not None:
            room.disconnect(participant.participant_id, self)


def watches_hls(event: Event, role: Role, room: LiveRoom) -> bool:
    """Whether an attendee entering ``room`` now watches over HLS (the event's setting):
    every attendee, or those who arrive when ``hls_overflow_after`` watch over WebRTC.
    Hosts and presenters never do."""
    if role is not Role.ATTENDEE or event.hls_mode == "off":
        return False
    return event.hls_mode == "all" or room.webrtc_attendees() >= event.hls_overflow_after


def _ban_keys(grant: Grant, client_id: str | None) -> list[str]:
    """What banning this participant bans: the person, never a shared secret.

    Their browser's client id and their own ticket (an invitation or a one-seat reservation,
    which are personal: ``grant.ticket_key``); not an event password, presenter key or group
    code, which others share. The connection itself is ended by the removal.
    """
    keys = [f"client:{client_id}"] if client_id else []
    if grant.ticket_key is not None:
        keys.append(f"ticket:{grant.ticket_key}")
    return keys


def _participant(p: Participant) -> s.ParticipantInfo:
    return roster.participant_info(p)


def _stream(st: Stream, name: str) -> s.StreamInfo:
    return s.StreamInfo(
        producer_id=st.stream_id,
        participant_id=st.participant_id,
        name=name,
        source=st.source.value,
        kind=st.kind,
        paused=st.paused,
        pause_reason=st.pause_reason,
    )


_Handler = Callable[[Session, Any], Awaitable[s.ServerMessage | None]]
_HANDLERS: dict[type[Any], _Handler] = {
    s.Hello: Session.on_hello,
    s.Join: Session.on_join,
    s.Publish: Session.on_publish,
    s.Unpublish: Session.on_unpublish,
    s.SubscriberAnswer: Session.on_subscriber_answer,
    s.IceCandidate: Session.on_ice_candidate,
    s.Start: Session.on_start,
    s.SetMode: Session.on_set_mode,
    s.Lock: Session.on_lock,
    s.EndForAll: Session.on_end_for_all,
    s.RaiseHand: Session.on_raise_hand,
    s.LowerHand: Session.on_lower_hand,
    s.RosterPage: roster.on_roster_page,
    s.Grant: Session.on_grant,
    s.NextSpeaker: Session.on_next_speaker,
    s.Mute: Session.on_mute,
    s.MuteAttendees: Session.on_mute_attendees,
    s.SetStreamPaused: Session.on_set_stream_paused,
    s.SetRole: Session.on_set_role,
    s.Remove: Session.on_remove,
    s.SetVideoQuality: Session.on_set_video_quality,
    s.SetRecording: Session.on_set_recording,
    s.SetLiveStream: Session.on_set_live_stream,
    s.Ping: Session.on_ping,
    s.SetLanguage: Session.on_set_language,
    s.Leave: Session.on_leave,
    # interaction: chat, Q&A, polls and tests, call-to-action (signalling/interaction.py)
    s.SyncInteraction: ia.on_sync,
    s.ChatSend: ia.on_chat_send,
    s.ChatDelete: ia.on_chat_delete,
    s.ChatSettings: ia.on_chat_settings,
    s.ChatMute: ia.on_chat_mute,
    s.ReactionsSettings: ia.on_reactions_settings,
    s.QuestionAsk: ia.on_question_ask,
    s.QuestionMark: ia.on_question_mark,
    s.QuestionVote: ia.on_question_vote,
    s.QuestionSetState: ia.on_question_state,
    s.QuestionPublish: ia.on_question_publish,
    s.QaSettings: ia.on_qa_settings,
    s.PollCreate: ia.on_poll_create,
    s.PollDelete: ia.on_poll_delete,
    s.PollLaunch: ia.on_poll_launch,
    s.PollClose: ia.on_poll_close,
    s.PollShowResults: ia.on_poll_show_results,
    s.PollAnswer: ia.on_poll_answer,
    s.CtaShow: ia.on_cta_show,
    s.CtaClose: ia.on_cta_close,
    s.CtaLaunch: ia.on_cta_launch,
    # live captions, logged like chat (signalling/captions.py)
    s.CaptionsSet: captions_.on_captions_set,
    s.CaptionerSet: captions_.on_captioner_set,
    s.CaptionSend: captions_.on_caption_send,
    # emoji reactions: counted per worker, not logged (signalling/reactions.py)
    s.React: reactions_.on_react,
    # content on stage: layout, presentation, video, files, whiteboard (signalling/stage.py)
    **stage_handlers.HANDLERS,
}


#: Interaction commands that change a room: logged for the other workers (a sync only reads).
_LOGGED_INTERACTION = frozenset(
    t
    for t, h in _HANDLERS.items()
    if getattr(h, "__module__", "") in (ia.__name__, stage_handlers.__name__, captions_.__name__)
    and t is not s.SyncInteraction
)


class _Replayed:
    """A participant on another worker, as an interaction handler needs them to replay their
    command here: no connection (replies go nowhere), and no second write to the store."""

    def __init__(self, services: Services, room: LiveRoom, participant: Participant) -> None:
        self.services = dataclasses.replace(
            services, interaction=services.interaction.replica(), stage=services.stage.replica()
        )
        self.room: LiveRoom | None = room
        self.participant: Participant | None = participant

    def joined(self) -> tuple[LiveRoom, Participant]:
        assert self.room is not None and self.participant is not None
        return self.room, self.participant

    def send(self, message: s.ServerMessage, request_id: s.RequestId | None = None) -> None:
        pass


def replayer(services: Services) -> Callable[[LiveRoom, str, dict[str, Any]], Awaitable[None]]:
    """Replays a logged interaction command of another worker on this worker's copy."""

    async def replay_interaction(room: LiveRoom, actor: str, logged: dict[str, Any]) -> None:
        participant = room.state.participants.get(actor)
        if participant is None:
            return
        message, _ = s.parse_client_message(logged)
        handler = _HANDLERS[type(message)]
        await handler(typing.cast(Session, _Replayed(services, room, participant)), message)

    return replay_interaction
