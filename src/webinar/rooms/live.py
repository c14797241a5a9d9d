"""A live room: applies :class:`RoomState` events to the forwarding engine and tells
each participant's connection what happened. Signalling calls in; the SFU is
called from here; nothing here knows about WebSockets or JSON."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from webinar.sfu import (
    CloseReason,
    Consumer,
    MediaSource,
    Producer,
    PublishTransport,
    Router,
    SfuError,
    SfuErrorCode,
    SubscribeTransport,
    TrackSpec,
)

from .state import (
    Participant,
    RoomError,
    RoomErrorCode,
    RoomEvent,
    RoomState,
    Source,
    Stream,
    StreamAdded,
    StreamRemoved,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OfferedStream:
    mid: str
    stream: Stream
    name: str


@dataclass(frozen=True, slots=True)
class Published:
    stream_id: str
    mid: str
    source: Source


class RoomPeer(Protocol):
    """What the room needs from a participant's connection."""

    def room_event(self, event: RoomEvent) -> None: ...

    async def subscriber_offer(self, sdp: str, streams: list[OfferedStream]) -> None: ...


class _Member:
    __slots__ = ("participant", "peer", "publish", "subscribe")

    def __init__(self, participant: Participant, peer: RoomPeer) -> None:
        self.participant = participant
        self.peer = peer
        self.publish: PublishTransport | None = None
        self.subscribe: SubscribeTransport | None = None


def sync_group(stream: Stream) -> str:
    """Tracks of one group share a browser MediaStream and are lip-synced."""
    if stream.source in (Source.SCREEN, Source.SCREEN_AUDIO):
        return f"{stream.participant_id}:screen"
    return stream.participant_id


class LiveRoom:
    def __init__(
        self,
        room_id: str,
        router: Router,
        *,
        max_participants: int,
        answer_timeout: float = 15.0,
    ) -> None:
        self.room_id = room_id
        self.router = router
        self.state = RoomState(max_participants=max_participants)
        self.closed = False
        self._members: dict[str, _Member] = {}
        self._producers: dict[str, Producer] = {}
        self._answer_timeout = answer_timeout

    @property
    def is_empty(self) -> bool:
        return not self._members

    # ------------------------------------------------------------------ membership

    def join(self, participant: Participant, peer: RoomPeer) -> None:
        if self.closed:
            raise RoomError(RoomErrorCode.UNKNOWN_PARTICIPANT, "the room has closed")
        events = self.state.join(participant)
        member = _Member(participant, peer)
        self._members[participant.participant_id] = member
        self._emit(events)
        receivable = self.state.receivable(participant.participant_id)
        if receivable:
            subscriber = self._ensure_subscriber(member)
            for stream in receivable:
                producer = self._producers.get(stream.stream_id)
                if producer is not None:
                    subscriber.consume(producer, stream_id=sync_group(stream))

    async def leave(self, participant_id: str, reason: str) -> None:
        member = self._members.pop(participant_id, None)
        if member is None:
            return
        self._emit(self.state.leave(participant_id, reason))
        await self._close_member(member)

    async def _close_member(self, member: _Member) -> None:
        transports: list[Awaitable[None]] = []
        if member.publish is not None:
            transports.append(member.publish.close())
        if member.subscribe is not None:
            transports.append(member.subscribe.close())
        member.publish = member.subscribe = None
        await asyncio.gather(*transports, return_exceptions=True)

    def participants(self) -> list[Participant]:
        return list(self.state.participants.values())

    def streams(self) -> list[Stream]:
        return list(self.state.streams.values())

    def name_of(self, participant_id: str) -> str:
        p = self.state.participants.get(participant_id)
        return p.name if p else ""

    # ------------------------------------------------------------------ publishing

    async def publish(
        self, participant_id: str, sdp: str, tracks: list[tuple[str, Source]]
    ) -> tuple[str, list[Published]]:
        member = self._member(participant_id)
        self.state.authorize_publish(participant_id, [source for _, source in tracks])
        if member.publish is None:
            member.publish = self.router.create_publish_transport(
                on_producer=lambda p: self._producer_added(member, p)
            )
        specs = [TrackSpec(mid=mid, source=MediaSource(source.value)) for mid, source in tracks]
        answer, producers = await member.publish.handle_offer(sdp, specs)
        return answer, [Published(p.id, p.mid, Source(p.source.value)) for p in producers]

    def _producer_added(self, member: _Member, producer: Producer) -> None:
        stream = Stream(
            stream_id=producer.id,
            participant_id=member.participant.participant_id,
            source=Source(producer.source.value),
            kind=producer.kind.value,
        )
        try:
            events = self.state.add_stream(stream)
        except RoomError:
            producer.close(CloseReason.UNPUBLISHED)
            raise
        self._producers[producer.id] = producer
        producer.on_close(self._producer_closed)
        self._emit(events)

    def _producer_closed(self, producer: Producer, reason: CloseReason) -> None:
        self._producers.pop(producer.id, None)
        self._emit(self.state.remove_stream(producer.id, reason.value))

    def unpublish(self, participant_id: str, stream_id: str) -> None:
        member = self._member(participant_id)
        if not self.state.owns(participant_id, stream_id) or member.publish is None:
            raise RoomError(RoomErrorCode.UNKNOWN_STREAM, "no such stream of yours")
        producer = self._producers.get(stream_id)
        if producer is not None:
            member.publish.close_producer(producer, CloseReason.UNPUBLISHED)

    # ------------------------------------------------------------------ subscribing

    def _ensure_subscriber(self, member: _Member) -> SubscribeTransport:
        if member.subscribe is not None and not member.subscribe.closed:
            return member.subscribe
        pid = member.participant.participant_id

        async def send_offer(sdp: str, consumers: list[Consumer]) -> None:
            streams = []
            for consumer in consumers:
                stream = self.state.streams.get(consumer.producer.id)
                if stream is None or consumer.closed:
                    continue
                mid = self._mid_of(member, consumer)
                if mid is not None:
                    streams.append(
                        OfferedStream(
                            mid=mid, stream=stream, name=self.name_of(stream.participant_id)
                        )
                    )
            await member.peer.subscriber_offer(sdp, streams)

        transport = self.router.create_subscribe_transport(
            send_offer=send_offer,
            on_consumer_closed=lambda _c, _r: None,
            answer_timeout=self._answer_timeout,
        )
        member.subscribe = transport

        def closed() -> None:
            if member.subscribe is transport:
                member.subscribe = None

        transport.on_close(closed)
        logger.debug("subscribe transport %s for %s", transport.id, pid)
        return transport

    @staticmethod
    def _mid_of(member: _Member, consumer: Consumer) -> str | None:
        if consumer.mid is not None:
            return consumer.mid
        subscriber = member.subscribe
        if subscriber is None:
            return None
        return subscriber.mid_of(consumer)

    async def subscriber_answer(self, participant_id: str, sdp: str) -> None:
        member = self._member(participant_id)
        if member.subscribe is None:
            raise SfuError(SfuErrorCode.NEGOTIATION, "no subscriber connection is negotiating")
        await member.subscribe.handle_answer(sdp)

    async def add_ice_candidate(
        self,
        participant_id: str,
        target: str,
        candidate: str,
        sdp_mid: str | None,
        index: int | None,
    ) -> None:
        member = self._member(participant_id)
        transport = member.publish if target == "publish" else member.subscribe
        if transport is not None:
            await transport.add_ice_candidate(candidate, sdp_mid, index)

    # ------------------------------------------------------------------ events

    def _emit(self, events: list[RoomEvent]) -> None:
        for event in events:
            if isinstance(event, StreamAdded):
                producer = self._producers.get(event.stream.stream_id)
                for pid in event.audience:
                    member = self._members.get(pid)
                    if member is not None and producer is not None:
                        self._ensure_subscriber(member).consume(
                            producer, stream_id=sync_group(event.stream)
                        )
            elif isinstance(event, StreamRemoved):
                producer = self._producers.pop(event.stream.stream_id, None)
                if producer is not None:
                    producer.close(CloseReason.UNPUBLISHED)
            for member in list(self._members.values()):
                try:
                    member.peer.room_event(event)
                except Exception:
                    logger.exception("delivering %s failed", type(event).__name__)

    def _member(self, participant_id: str) -> _Member:
        member = self._members.get(participant_id)
        if member is None:
            raise RoomError(RoomErrorCode.UNKNOWN_PARTICIPANT, "not in the room")
        return member

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        members = list(self._members.values())
        self._members.clear()
        await asyncio.gather(*(self._close_member(m) for m in members), return_exceptions=True)
        await self.router.close()
