"""A live room: applies :class:`RoomState` to the forwarding engine and tells each
participant's connection what happened. Signalling calls in; the SFU is called
from here; nothing here knows about WebSockets or JSON.

After every command the room *reconciles*: for each participant it compares the
streams the state says they should receive with the consumers they have, adds
the missing ones and pauses or resumes the rest. Pausing is SFU-level (no
packets), so presenters-only mode and the lobby cost no renegotiation.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from webinar.sfu import (
    AllocationReport,
    CloseReason,
    Consumer,
    MediaSource,
    Producer,
    PublishTransport,
    Router,
    SfuError,
    SfuErrorCode,
    StreamClass,
    SubscribeTransport,
    TrackSpec,
    VideoQuality,
)

from ..tasks import stop_task, stop_tasks
from .interaction import RoomInteraction
from .reasons import ByeReason
from .recording import RecordingHooks, RoomRecording
from .roster import Counts, RoomRoster, RosterPeer
from .state import (
    RESUME_GRACE,
    LinkQuality,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    Removed,
    RoomEnded,
    RoomError,
    RoomErrorCode,
    RoomEvent,
    RoomState,
    Source,
    Stream,
    StreamRemoved,
    StreamUpdated,
)

logger = logging.getLogger(__name__)

SPEAKER_INTERVAL = 0.4  # seconds between active-speaker decisions
SPEAKING_LEVEL = 60  # -dBov: louder than this counts as speaking
QUALITY_INTERVAL = 2.0


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


class RoomPeer(RosterPeer, Protocol):
    """What the room needs from a participant's connection."""

    def room_event(self, event: RoomEvent) -> None: ...

    def active_speaker(self, participant_id: str | None) -> None: ...

    async def subscriber_offer(self, sdp: str, streams: list[OfferedStream]) -> None: ...

    def disconnect(self, reason: ByeReason) -> None: ...

    def allocation(self, report: AllocationReport) -> None: ...

    def publisher_layers(self, producer_id: str, active: list[bool]) -> None: ...


class _Member:
    __slots__ = (
        "consumers",
        "expiry",
        "participant_id",
        "peer",
        "publish",
        "subscribe",
        "video_quality",
    )

    def __init__(self, participant_id: str, peer: RoomPeer | None) -> None:
        self.participant_id = participant_id
        self.peer = peer
        self.publish: PublishTransport | None = None
        self.subscribe: SubscribeTransport | None = None
        self.consumers: dict[str, Consumer] = {}  # by stream id
        self.expiry: asyncio.TimerHandle | None = None
        self.video_quality = VideoQuality.AUTO


_STREAM_CLASS = {
    Source.MICROPHONE: StreamClass.AUDIO,
    Source.SCREEN_AUDIO: StreamClass.AUDIO,
    Source.SCREEN: StreamClass.SCREEN,
    Source.CAMERA: StreamClass.CAMERA,
}


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
        state: RoomState,
        *,
        answer_timeout: float = 15.0,
        resume_grace: float = RESUME_GRACE,
        clock: Callable[[], float] = time.time,
        on_empty: Callable[[LiveRoom], Awaitable[None]] | None = None,
        on_event: Callable[[RoomEvent], None] | None = None,
        recording_hooks: RecordingHooks | None = None,
    ) -> None:
        self.room_id = room_id
        self.router = router
        self.state = state
        self.closed = False
        self._members: dict[str, _Member] = {}
        self._producers: dict[str, Producer] = {}
        self._resume_tokens: dict[str, str] = {}  # token -> participant id
        self._answer_timeout = answer_timeout
        self._resume_grace = resume_grace
        self._clock = clock
        self._on_empty = on_empty
        self._on_event = on_event
        self._speaker: str | None = None
        self._spoke_at: dict[str, float] = {}  # participant -> when last heard speaking
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker = self._loop.create_task(self._tick())
        self.interaction = RoomInteraction(self._connected_peers, clock=clock)
        self.roster = RoomRoster(
            lambda: self.state.participants, self._connected_peers, self._peer_of
        )
        self.recording = (
            RoomRecording(
                room_id,
                state,
                recording_hooks,
                producers=lambda: self._producers,
                name_of=self.name_of,
            )
            if recording_hooks is not None
            else None
        )

    @property
    def is_empty(self) -> bool:
        return not self._members

    @property
    def recordable(self) -> bool:
        """The flag a recorder reads: false in presenters-only mode and outside live."""
        return self.state.recordable

    # ------------------------------------------------------------------ membership

    def join(
        self,
        participant: Participant,
        peer: RoomPeer,
        *,
        ban_key: str | None = None,
        person_key: str | None = None,
        ban_keys: Collection[str] = (),
    ) -> str:
        """Admit a participant; returns their resume token."""
        if self.closed:
            raise RoomError(RoomErrorCode.ENDED, "this event has ended")
        events = self.state.join(
            participant,
            now=self._clock(),
            ban_key=ban_key,
            person_key=person_key,
            ban_keys=ban_keys,
        )
        self._members[participant.participant_id] = _Member(participant.participant_id, peer)
        token = secrets.token_urlsafe(24)
        self._resume_tokens[token] = participant.participant_id
        self._apply(events)
        return token

    def has_resume_token(self, token: str) -> bool:
        return token in self._resume_tokens

    def resume(self, token: str, peer: RoomPeer) -> Participant | None:
        """Take a dropped (or stale) participant back with their role, grants and hand."""
        pid = self._resume_tokens.get(token)
        member = self._members.get(pid) if pid else None
        if pid is None or member is None:
            return None
        old = member.peer
        member.peer = peer
        if member.expiry is not None:
            member.expiry.cancel()
            member.expiry = None
        if old is not None and old is not peer:
            old.disconnect(ByeReason.REPLACED)
            self._spawn(self._close_media(member))
        self._apply(self.state.reconnect(pid))
        return self.state.get(pid)

    def disconnect(self, participant_id: str, peer: RoomPeer) -> None:
        """The participant's connection went away: media ends now, the place is kept
        for the grace period, then they leave."""
        member = self._members.get(participant_id)
        if member is None or member.peer is not peer:
            return  # already replaced by a resumed session
        member.peer = None
        self._spawn(self._close_media(member))
        self._apply(self.state.disconnect(participant_id))
        member.expiry = self._loop.call_later(
            self._resume_grace,
            lambda: self._spawn(self.leave(participant_id, ByeReason.DISCONNECTED)),
        )

    async def leave(self, participant_id: str, reason: ByeReason) -> None:
        member = self._members.pop(participant_id, None)
        if member is None:
            return
        if member.expiry is not None:
            member.expiry.cancel()
        for token, pid in list(self._resume_tokens.items()):
            if pid == participant_id:
                del self._resume_tokens[token]
        self._spoke_at.pop(participant_id, None)
        self._apply(self.state.leave(participant_id, reason))
        await self._close_media(member)
        if not self._members and self._on_empty is not None and not self.closed:
            await self._on_empty(self)

    def _close_media(self, member: _Member) -> Awaitable[None]:
        """Detach the member's transports now; the returned awaitable closes them."""
        transports: list[Awaitable[None]] = []
        if member.publish is not None:
            transports.append(member.publish.close())
        if member.subscribe is not None:
            transports.append(member.subscribe.close())
        member.publish = member.subscribe = None
        member.consumers.clear()

        async def close() -> None:
            await asyncio.gather(*transports, return_exceptions=True)

        return close()

    def _connected_peers(self) -> list[RoomPeer]:
        return [m.peer for m in self._members.values() if m.peer is not None]

    def _peer_of(self, participant_id: str) -> RoomPeer | None:
        member = self._members.get(participant_id)
        return member.peer if member is not None else None

    def stage(self) -> list[Participant]:
        """Everyone on the stage (they may publish), in the order they got there."""
        participants = self.state.participants
        return [p for pid in self.roster.index.stage if (p := participants.get(pid)) is not None]

    def counts(self) -> Counts:
        return self.roster.counts()

    def participants(self) -> list[Participant]:
        return list(self.state.participants.values())

    def streams(self) -> list[Stream]:
        return list(self.state.streams.values())

    def name_of(self, participant_id: str) -> str:
        p = self.state.participants.get(participant_id)
        return p.name if p else ""

    @property
    def active_speaker(self) -> str | None:
        return self._speaker

    def subscriber_estimates(self, now: float) -> list[int | None]:
        """Each connected subscriber's estimated downlink (bits/s), for metrics."""
        return [
            m.subscribe.estimate(now).bitrate_bps
            for m in self._members.values()
            if m.subscribe is not None and not m.subscribe.closed
        ]

    # ------------------------------------------------------------------ commands

    def command(self, events: list[RoomEvent]) -> None:
        """Apply the events of a state command (``room.command(room.state.x(...))``)."""
        self._apply(events)

    def set_video_quality(self, participant_id: str, quality: VideoQuality) -> None:
        """What this participant receives: fit the connection, save data, or favour
        sharp pictures over many. Kept for the participant's later connections."""
        member = self._member(participant_id)
        member.video_quality = quality
        if member.subscribe is not None:
            self.router.tiers_of(member.subscribe).set_quality(quality)

    # ------------------------------------------------------------------ publishing

    async def publish(
        self, participant_id: str, sdp: str, tracks: list[tuple[str, Source]]
    ) -> tuple[str, list[Published]]:
        member = self._member(participant_id)
        self.state.authorize_publish(participant_id, [source for _, source in tracks])
        if member.publish is None or member.publish.closed:
            transport = self.router.create_publish_transport(
                on_producer=lambda p: self._producer_added(participant_id, p),
                on_layers=lambda p, active: self._publisher_layers(member, p, active),
            )
            member.publish = transport
            transport.on_state(lambda s: self._publish_state(member, transport, s))
        specs = [TrackSpec(mid=mid, source=source) for mid, source in tracks]
        answer, producers = await member.publish.handle_offer(sdp, specs)
        return answer, [Published(p.id, p.mid, p.source) for p in producers]

    def _publisher_layers(self, member: _Member, producer: Producer, active: list[bool]) -> None:
        if member.peer is not None:
            member.peer.publisher_layers(producer.id, active)

    def _publish_state(self, member: _Member, transport: PublishTransport, state: str) -> None:
        if state in ("failed", "closed") and member.publish is transport:
            member.publish = None
            self._spawn(transport.close())

    def _producer_added(self, participant_id: str, producer: Producer) -> None:
        stream = Stream(
            stream_id=producer.id,
            participant_id=participant_id,
            source=producer.source,
            kind=producer.kind.value,
        )
        try:
            events = self.state.add_stream(stream)
        except RoomError:
            producer.close(CloseReason.UNPUBLISHED)
            raise
        self._producers[producer.id] = producer
        producer.on_close(self._producer_closed)
        self._apply(events)

    def _producer_closed(self, producer: Producer, reason: CloseReason) -> None:
        self._producers.pop(producer.id, None)
        self._apply(self.state.remove_stream(producer.id, reason.value))

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

        async def send_offer(sdp: str, consumers: list[Consumer]) -> None:
            streams = []
            subscriber = member.subscribe
            for consumer in consumers:
                stream = self.state.streams.get(consumer.producer.id)
                mid = consumer.mid or (subscriber.mid_of(consumer) if subscriber else None)
                if stream is None or consumer.closed or mid is None:
                    continue
                streams.append(
                    OfferedStream(mid=mid, stream=stream, name=self.name_of(stream.participant_id))
                )
            if member.peer is not None:
                await member.peer.subscriber_offer(sdp, streams)

        def consumer_closed(consumer: Consumer, _reason: CloseReason) -> None:
            if member.consumers.get(consumer.producer.id) is consumer:
                del member.consumers[consumer.producer.id]

        transport = self.router.create_subscribe_transport(
            send_offer=send_offer,
            on_consumer_closed=consumer_closed,
            answer_timeout=self._answer_timeout,
        )
        member.subscribe = transport
        tiers = self.router.tiers_of(transport)
        tiers.set_quality(member.video_quality)

        def report(allocation: AllocationReport) -> None:
            if member.peer is not None and member.subscribe is transport:
                member.peer.allocation(allocation)

        tiers.set_on_report(report)

        def closed() -> None:
            if member.subscribe is transport:
                member.subscribe = None
                member.consumers.clear()
                if not self.closed and member.peer is not None:
                    self._reconcile()  # a fresh connection for what they should see

        transport.on_close(closed)
        return transport

    def _reconcile(self, members: list[_Member] | None = None) -> None:
        """Make every participant's consumers (or those of ``members``) match what the
        state says they receive."""
        state = self.state
        for member in self._members.values() if members is None else members:
            participant = state.participants.get(member.participant_id)
            if participant is None or member.peer is None:
                continue
            for stream in state.streams.values():
                wanted = state.receives(participant, stream)
                consumer = member.consumers.get(stream.stream_id)
                if consumer is None:
                    producer = self._producers.get(stream.stream_id)
                    if not wanted or producer is None or producer.closed:
                        continue
                    subscriber = self._ensure_subscriber(member)
                    if subscriber.needs_restart:
                        self._spawn(subscriber.close())
                        continue
                    consumer = subscriber.consume(producer, stream_id=sync_group(stream))
                    member.consumers[stream.stream_id] = consumer
                if consumer.wanted != wanted:
                    consumer.want(wanted)
        self._prioritise(members)

    def _prioritise(self, members: list[_Member] | None = None) -> None:
        """Tell each subscriber's allocation what matters most: audio, then screen
        shares, then the active speaker's camera, then cameras by recent speaking."""
        state = self.state
        if not state.streams:
            return
        speaker = self._speaker
        cameras = sorted(
            (s for s in state.streams.values() if s.source is Source.CAMERA),
            key=lambda s: (
                s.participant_id != speaker,
                -self._spoke_at.get(s.participant_id, 0.0),
                s.stream_id,
            ),
        )
        camera_rank = {s.stream_id: i for i, s in enumerate(cameras)}
        for member in self._members.values() if members is None else members:
            if member.subscribe is None or not member.consumers:
                continue
            tiers = self.router.tiers_of(member.subscribe)
            for stream_id in member.consumers:
                stream = state.streams.get(stream_id)
                if stream is None:
                    continue
                tiers.set_priority(
                    stream_id, _STREAM_CLASS[stream.source], camera_rank.get(stream_id, 0)
                )

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

    def _apply(self, events: list[RoomEvent]) -> None:
        everyone = False  # whether every member's consumers may have changed
        concerned: dict[str, None] = {}  # else: those whose consumers may have changed
        for event in events:
            if isinstance(event, ParticipantJoined | ParticipantUpdated):
                concerned[event.participant.participant_id] = None
            elif not isinstance(event, ParticipantLeft | Removed):
                everyone = True
            seen = self.roster.apply(event)
            if isinstance(event, StreamRemoved):
                producer = self._producers.pop(event.stream.stream_id, None)
                if producer is not None:
                    producer.close(CloseReason.UNPUBLISHED)
            elif isinstance(event, StreamUpdated):
                producer = self._producers.get(event.stream.stream_id)
                if producer is not None:
                    if event.stream.paused:
                        producer.pause()
                    else:
                        producer.resume()
            for member in self._recipients(event, everyone=seen is None or seen.stage):
                if member.peer is None:
                    continue
                try:
                    member.peer.room_event(event)
                except Exception:
                    logger.exception("delivering %s failed", type(event).__name__)
            if self._on_event is not None:
                try:
                    self._on_event(event)
                except Exception:
                    logger.exception("room observer failed on %s", type(event).__name__)
            if isinstance(event, Removed):
                self._kick(event.participant.participant_id, ByeReason.REMOVED)
            elif isinstance(event, RoomEnded):
                for pid in list(self._members):
                    self._kick(pid, ByeReason.ENDED)
        if events and not self.closed:
            if everyone:
                self._reconcile()
            elif concerned:
                members = self._members
                self._reconcile([m for pid in concerned if (m := members.get(pid)) is not None])
            if self.recording is not None:
                self.recording.sync()

    def _recipients(self, event: RoomEvent, *, everyone: bool) -> list[_Member]:
        """Who hears of an event at once. Everyone, unless it is about a participant off
        the stage (an attendee arriving, leaving, raising a hand, their connection quality):
        then only that participant; those who run the floor get it in the roster's batched
        deltas, everyone else in its coalesced counts (:mod:`webinar.rooms.roster`). A
        join then costs the same in a room of 10,000 as in a room of 10."""
        if everyone:
            return list(self._members.values())
        if isinstance(event, ParticipantUpdated):
            member = self._members.get(event.participant.participant_id)
            return [member] if member is not None else []
        return []

    def _kick(self, participant_id: str, reason: ByeReason) -> None:
        member = self._members.get(participant_id)
        if member is not None and member.peer is not None:
            # After the current command's reply has been queued.
            self._loop.call_soon(member.peer.disconnect, reason)
        self._spawn(self.leave(participant_id, reason))

    def _member(self, participant_id: str) -> _Member:
        member = self._members.get(participant_id)
        if member is None:
            raise RoomError(RoomErrorCode.UNKNOWN_PARTICIPANT, "not in the room")
        return member

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        task = self._loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ upkeep

    async def _tick(self) -> None:
        """Active speaker a few times a second, connection quality every 2 s."""
        last_quality = 0.0
        quiet_rounds = 0
        while True:
            await asyncio.sleep(SPEAKER_INTERVAL)
            loudest: tuple[int, str] | None = None
            heard_at = time.monotonic()
            for producer in list(self._producers.values()):
                if producer.source is not MediaSource.MICROPHONE:
                    continue
                stream = self.state.streams.get(producer.id)
                level = producer.take_loudest()
                if stream is None or level > SPEAKING_LEVEL:
                    continue
                self._spoke_at[stream.participant_id] = heard_at
                if loudest is None or level < loudest[0]:
                    loudest = (level, stream.participant_id)
            speaker = loudest[1] if loudest else None
            quiet_rounds = quiet_rounds + 1 if speaker is None else 0
            if speaker is None and quiet_rounds < 5:
                speaker = self._speaker  # hold the highlight through short pauses
            if speaker != self._speaker:
                self._speaker = speaker
                for member in list(self._members.values()):
                    if member.peer is not None:
                        member.peer.active_speaker(speaker)
                self._prioritise()
            now = time.monotonic()
            if now - last_quality >= QUALITY_INTERVAL:
                last_quality = now
                self._update_quality(now)
                self._prioritise()  # cameras by recent speaking

    def _update_quality(self, now: float) -> None:
        events: list[RoomEvent] = []
        for member in self._members.values():
            subscriber = member.subscribe
            if subscriber is None or not subscriber.consumers:
                continue
            loss = subscriber.estimate(now).loss
            events += self.state.set_quality(member.participant_id, LinkQuality.from_loss(loss))
        if events:
            self._apply(events)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.interaction.close()
        self.roster.close()
        await stop_task(self._ticker)
        members = list(self._members.values())
        self._members.clear()
        for member in members:
            if member.expiry is not None:
                member.expiry.cancel()
        await asyncio.gather(*(self._close_media(m) for m in members), return_exceptions=True)
        # Pending closes and leaves are short: let them finish, then stop what is left.
        current = asyncio.current_task()
        others = [t for t in self._tasks if t is not current]
        if others:
            _done, pending = await asyncio.wait(others, timeout=5.0)
            await stop_tasks(pending)
        if self.recording is not None:
            await self.recording.close()
        await self.router.close()
