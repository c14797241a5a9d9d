"""One participant's signalling session: validated messages in, room calls out.

Each message type maps to one small handler (see ``_HANDLERS``); handlers translate
between the wire schema and the room, nothing more.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from webinar import __version__
from webinar.ids import format_event_id, normalize_event_id, same_secret
from webinar.rooms.live import LiveRoom, OfferedStream
from webinar.rooms.manager import RoomManager
from webinar.rooms.roles import Role
from webinar.rooms.state import (
    Participant,
    RoomError,
    RoomErrorCode,
    RoomEvent,
    Source,
    Stream,
)
from webinar.rooms.state import ParticipantJoined as RoomParticipantJoined
from webinar.rooms.state import ParticipantLeft as RoomParticipantLeft
from webinar.rooms.state import StreamAdded as RoomStreamAdded
from webinar.rooms.state import StreamRemoved as RoomStreamRemoved
from webinar.sfu import SfuError, SfuErrorCode
from webinar.store import Event, Store

from . import schema as s

logger = logging.getLogger(__name__)

_SFU_ERRORS = {
    SfuErrorCode.BAD_SDP: s.ErrorCode.BAD_SDP,
    SfuErrorCode.UNSUPPORTED_CODEC: s.ErrorCode.UNSUPPORTED_CODEC,
    SfuErrorCode.CAMERA_LIMIT: s.ErrorCode.CAMERA_LIMIT,
    SfuErrorCode.TRACK_MISMATCH: s.ErrorCode.TRACK_MISMATCH,
    SfuErrorCode.CLOSED: s.ErrorCode.NEGOTIATION_FAILED,
    SfuErrorCode.NEGOTIATION: s.ErrorCode.NEGOTIATION_FAILED,
}
_ROOM_ERRORS = {
    RoomErrorCode.ROOM_FULL: s.ErrorCode.ROOM_FULL,
    RoomErrorCode.FORBIDDEN: s.ErrorCode.FORBIDDEN,
    RoomErrorCode.UNKNOWN_PARTICIPANT: s.ErrorCode.NOT_JOINED,
    RoomErrorCode.UNKNOWN_STREAM: s.ErrorCode.UNKNOWN_STREAM,
    RoomErrorCode.DUPLICATE: s.ErrorCode.BAD_MESSAGE,
}


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    rooms: RoomManager
    ice_servers: list[dict[str, Any]]
    heartbeat_interval: float
    max_message_bytes: int


Send = Callable[[dict[str, Any]], None]


class Session:
    """Implements :class:`webinar.rooms.live.RoomPeer` for one WebSocket."""

    def __init__(self, services: Services, send: Send, close: Callable[[str], None]) -> None:
        self._services = services
        self._send = send
        self._close = close
        self._greeted = False
        self.participant: Participant | None = None
        self.room: LiveRoom | None = None
        self.event: Event | None = None

    # ------------------------------------------------------------------ dispatch

    async def handle(self, message: s.ClientMessage, request_id: s.RequestId | None) -> None:
        try:
            if not self._greeted and not isinstance(message, s.Hello):
                raise s.ProtocolError(s.ErrorCode.HELLO_REQUIRED, "send 'hello' first")
            handler = _HANDLERS[type(message)]
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
            self.error(_ROOM_ERRORS[exc.code], exc.message, request_id)
        except SfuError as exc:
            self.error(_SFU_ERRORS[exc.code], exc.message, request_id)

    def send(self, message: s.ServerMessage, request_id: s.RequestId | None = None) -> None:
        self._send(s.encode(message, request_id))

    def error(self, code: s.ErrorCode, message: str, request_id: s.RequestId | None) -> None:
        self.send(s.Error(code=code, message=message), request_id)

    # ------------------------------------------------------------------ handlers

    async def on_hello(self, msg: s.Hello) -> s.ServerMessage:
        if msg.protocol != s.PROTOCOL_VERSION:
            raise s.ProtocolError(
                s.ErrorCode.PROTOCOL_VERSION,
                f"this server speaks protocol {s.PROTOCOL_VERSION}, not {msg.protocol}",
            )
        self._greeted = True
        return s.Welcome(
            protocol=s.PROTOCOL_VERSION,
            server=f"webinar/{__version__}",
            heartbeat_interval=self._services.heartbeat_interval,
            max_message_bytes=self._services.max_message_bytes,
        )

    async def on_join(self, msg: s.Join) -> s.ServerMessage:
        if self.participant is not None:
            raise s.ProtocolError(s.ErrorCode.ALREADY_JOINED, "this session has joined already")
        name = " ".join(msg.name.split())
        if not 1 <= len(name) <= 64:
            raise s.ProtocolError(s.ErrorCode.BAD_MESSAGE, "name must be 1-64 characters")
        event_id = normalize_event_id(msg.event_id)
        event = await self._services.store.get_event(event_id) if event_id else None
        if event is None:
            raise s.ProtocolError(
                s.ErrorCode.UNKNOWN_EVENT, f"there is no event with ID {msg.event_id[:32]!r}"
            )
        if msg.credential is None:
            role = Role.ATTENDEE
        elif same_secret(msg.credential, event.presenter_key):
            role = Role.PRESENTER
        else:
            raise s.ProtocolError(s.ErrorCode.BAD_CREDENTIAL, "the presenter key is not right")
        participant = Participant(participant_id=f"pa_{secrets.token_hex(6)}", name=name, role=role)
        room = self._services.rooms.get_or_create(event.event_id)
        self.participant = participant  # set first: the room's events about us name us
        try:
            room.join(participant, self)
        except RoomError:
            self.participant = None
            await self._services.rooms.release_if_empty(event.event_id)
            raise
        self.room, self.event = room, event
        return s.Joined(
            participant_id=participant.participant_id,
            role=role.value,
            event=s.EventInfo(
                event_id=format_event_id(event.event_id),
                title=event.title,
                starts_at=event.starts_at.isoformat() if event.starts_at else None,
            ),
            ice_servers=self._services.ice_servers,
            max_cameras=self._services.rooms.max_cameras,
            participants=[_participant(p) for p in room.participants()],
            streams=[_stream(st, room.name_of(st.participant_id)) for st in room.streams()],
        )

    async def on_publish(self, msg: s.Publish) -> s.ServerMessage:
        room, participant = self._joined()
        tracks = [(t.mid, Source(t.source)) for t in msg.tracks]
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

    async def on_ping(self, _msg: s.Ping) -> s.ServerMessage:
        return s.Pong()

    async def on_leave(self, _msg: s.Leave) -> s.ServerMessage:
        await self.leave("left")
        return s.Bye(reason="left")

    # ------------------------------------------------------------------ room peer

    def room_event(self, event: RoomEvent) -> None:
        me = self.participant.participant_id if self.participant else None
        if isinstance(event, RoomParticipantJoined):
            if event.participant.participant_id != me:
                self.send(s.ParticipantJoined(participant=_participant(event.participant)))
        elif isinstance(event, RoomParticipantLeft):
            if event.participant.participant_id != me:
                self.send(
                    s.ParticipantLeft(
                        participant_id=event.participant.participant_id, reason=event.reason
                    )
                )
        elif isinstance(event, RoomStreamAdded):
            if event.stream.participant_id != me and self.room is not None:
                name = self.room.name_of(event.stream.participant_id)
                self.send(s.StreamAdded(stream=_stream(event.stream, name)))
        elif isinstance(event, RoomStreamRemoved):
            self.send(
                s.StreamEnded(
                    producer_id=event.stream.stream_id,
                    participant_id=event.stream.participant_id,
                    reason=event.reason,
                )
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

    def _joined(self) -> tuple[LiveRoom, Participant]:
        if self.room is None or self.participant is None:
            raise s.ProtocolError(s.ErrorCode.NOT_JOINED, "join an event first")
        return self.room, self.participant

    async def leave(self, reason: str) -> None:
        room, participant = self.room, self.participant
        self.room = None
        if room is None or participant is None:
            return
        await room.leave(participant.participant_id, reason)
        await self._services.rooms.release_if_empty(room.room_id)


def _participant(p: Participant) -> s.ParticipantInfo:
    return s.ParticipantInfo(participant_id=p.participant_id, name=p.name, role=p.role.value)


def _stream(st: Stream, name: str) -> s.StreamInfo:
    return s.StreamInfo(
        producer_id=st.stream_id,
        participant_id=st.participant_id,
        name=name,
        source=st.source.value,
        kind=st.kind,
    )


_Handler = Callable[[Session, Any], Awaitable[s.ServerMessage | None]]
_HANDLERS: dict[type[Any], _Handler] = {
    s.Hello: Session.on_hello,
    s.Join: Session.on_join,
    s.Publish: Session.on_publish,
    s.Unpublish: Session.on_unpublish,
    s.SubscriberAnswer: Session.on_subscriber_answer,
    s.IceCandidate: Session.on_ice_candidate,
    s.Ping: Session.on_ping,
    s.Leave: Session.on_leave,
}
