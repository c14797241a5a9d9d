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
from pathlib import Path
from typing import Any, Protocol

from webinar.i18n import _
from webinar.sfu import (
    AllocationReport,
    CloseReason,
    Consumer,
    MediaKind,
    MediaSource,
    PlayTransport,
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
from . import replay
from .interaction import RoomInteraction
from .ops import (
    Op,
    participant_from,
    participant_json,
    reason_from,
    run_state_op,
    state_op,
    stream_from,
    stream_json,
)
from .reactions import RoomReactions, SaveReactions
from .reasons import ByeReason
from .recording import RecordingHooks, RoomRecording, StageComposer
from .roles import Role
from .roster import Counts, RoomRoster, RosterPeer
from .state import (
    RESUME_GRACE,
    LinkQuality,
    LiveStreamOutput,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    RecordingStatus,
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


class BroadcastDriver(Protocol):
    """The room's stage composed into one picture for its outputs (the composed recording, the
    live stream out, HLS), from the application (webinar.broadcast.room): ``sync`` after every
    change makes it follow the room (``state.live_stream``, the recording, the event's HLS
    setting) on the worker that records the room (``records``), off elsewhere (its work goes
    off the event loop); ``close`` when the room closes."""

    def sync(self) -> None: ...

    def output(self) -> dict[str, object] | None:
        """How the live stream's connection is doing now (None while there is none)."""
        ...

    def composer_for(self, directory: Path, *, paused: bool) -> StageComposer | None:
        """The composed MP4 of a recording starting now (None: the per-feed files only)."""
        ...

    @property
    def wants_media(self) -> bool:
        """Whether it composes now (with several workers, every stream is relayed here)."""
        ...

    async def close(self) -> None: ...


class RoomPeer(RosterPeer, Protocol):
    """What the room needs from a participant's connection."""

    def room_event(self, event: RoomEvent) -> None: ...

    def active_speaker(self, participant_id: str | None) -> None: ...

    async def subscriber_offer(self, sdp: str, streams: list[OfferedStream]) -> None: ...

    def disconnect(self, reason: ByeReason) -> None: ...

    def allocation(self, report: AllocationReport) -> None: ...

    def publisher_layers(self, producer_id: str, active: list[bool]) -> None: ...


class Replicator(Protocol):
    """Runs a room's ops through the log every worker with people in the room applies
    (:mod:`webinar.signalling.replication`); absent with one worker."""

    async def submit(self, room: LiveRoom, op: Op, peer: RoomPeer | None) -> list[RoomEvent]:
        """Apply ``op`` here first (raising what the state machine raises) and log it."""
        ...

    def later(self, room_id: str, op: Op) -> None:
        """Log ``op`` once the log can be reached again, even if this copy has closed by then
        (a leave must reach the other workers)."""
        ...


class Relays(Protocol):
    """Brings a stream published on another worker here (a media pipe)."""

    async def relay(self, room_id: str, stream_id: str, worker: int) -> Producer: ...

    def release(self, room_id: str, producer: Producer) -> None: ...


class _Member:
    __slots__ = (
        "consumers",
        "expiry",
        "offers",
        "participant_id",
        "peer",
        "player",
        "publish",
        "subscribe",
        "video_quality",
    )

    def __init__(self, participant_id: str, peer: RoomPeer | None, *, offers: bool = True) -> None:
        self.participant_id = participant_id
        self.peer = peer
        #: Whether the room offers this connection the streams it should receive (a browser,
        #: the Python client); False for an encoder (WHIP) or a player (WHEP): they
        #: negotiate once, with their own offer.
        self.offers = offers
        self.publish: PublishTransport | None = None
        #: The connection media goes out on: the room's offers, or a player's (``player``).
        self.subscribe: SubscribeTransport | None = None
        self.player: PlayTransport | None = None
        self.consumers: dict[str, Consumer] = {}  # by stream id
        self.expiry: asyncio.TimerHandle | None = None
        self.video_quality = VideoQuality.AUTO


_STREAM_CLASS = {
    Source.MICROPHONE: StreamClass.AUDIO,
    Source.SCREEN_AUDIO: StreamClass.AUDIO,
    Source.SCREEN: StreamClass.SCREEN,
    Source.CAMERA: StreamClass.CAMERA,
}


def on_the_floor(participant: Participant) -> bool:
    """Whether someone takes part beyond watching (staff, or granted the microphone or
    camera): never an HLS viewer."""
    return (
        participant.role is not Role.ATTENDEE or participant.grant_audio or participant.grant_video
    )


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
        broadcast: Callable[[LiveRoom], BroadcastDriver] | None = None,
        save_reactions: SaveReactions | None = None,
    ) -> None:
        self.room_id = room_id
        self.router = router
        self.state = state
        self.closed = False
        self._members: dict[str, _Member] = {}
        self._producers: dict[str, Producer] = {}
        self._resume_tokens: dict[str, str] = {}  # token -> participant id
        #: With several workers: set by the room manager (see :class:`Replicator`).
        self.replicator: Replicator | None = None
        self.relays: Relays | None = None
        self.worker_id = 0
        #: Which worker each participant's connection and each stream's publisher is on.
        self.worker_of: dict[str, int] = {}
        #: And which life of that worker (its process id): a restarted worker's former
        #: participants are gone although the worker's number is back.
        self.incarnation_of: dict[str, int] = {}
        self.incarnation = 0
        self.stream_worker: dict[str, int] = {}
        self._pending_producers: dict[str, Producer] = {}
        self._relaying: set[str] = set()  # streams whose pipe is being set up
        self._relayed: set[str] = set()  # streams whose local producer is a pipe's
        #: Participants entering now whose connection takes no offers (see ``_Member``).
        self._no_offers: set[str] = set()
        #: Attendees connected here who watch the room's HLS output instead of WebRTC (no
        #: offers): not counted against the overflow threshold (:meth:`webrtc_attendees`).
        self.hls_viewers: set[str] = set()
        #: Whether this worker runs the room's recorder (with several: one of them).
        self.records = True
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
        #: Emoji reactions: limited per person, sent as counts per interval to everyone.
        self.reactions = RoomReactions(room_id, self._connected_peers, save=save_reactions)
        #: The stage composed for the recording, the live stream out and HLS; it runs on the
        #: worker that records (see ``records``).
        self.broadcast = broadcast(self) if broadcast is not None else None
        composer_for = None
        if self.broadcast is not None:
            driver = self.broadcast

            def composer_for(directory: Path, paused: bool) -> StageComposer | None:
                return driver.composer_for(directory, paused=paused)

        self.recording = (
            RoomRecording(
                room_id,
                state,
                recording_hooks,
                producers=lambda: self._producers,
                name_of=self.name_of,
                composer_for=composer_for,
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
        """Admit a participant (one worker); returns their resume token."""
        op = self._join_op(participant, ban_key=ban_key, person_key=person_key, ban_keys=ban_keys)
        self.apply(op, origin=True, peer=peer)
        return str(op.args["token"])

    async def enter(
        self,
        participant: Participant,
        peer: RoomPeer,
        *,
        person_key: str | None = None,
        ban_keys: Collection[str] = (),
        offers: bool = True,
        hls: bool = False,
    ) -> str:
        """Admit a participant through the room's log; returns their resume token.

        ``offers=False``: the room sends this connection no subscriber offers (an encoder
        that only publishes, or a player that receives through :meth:`play`). ``hls``: an
        attendee who watches the room's HLS output (no offers either; :attr:`hls_viewers`).
        The count of :meth:`webrtc_attendees` and this admission happen without a pause
        between them (with one worker), so a threshold checked just before holds."""
        op = self._join_op(participant, ban_key=None, person_key=person_key, ban_keys=ban_keys)
        pid = participant.participant_id
        if not offers or hls:
            self._no_offers.add(pid)
        if hls:
            self.hls_viewers.add(pid)
        try:
            await self.submit(op, peer)
        except BaseException:
            self.hls_viewers.discard(pid)
            raise
        finally:
            self._no_offers.discard(pid)
        return str(op.args["token"])

    def webrtc_attendees(self) -> int:
        """Attendees in the room who are not known here to watch over HLS: what the overflow
        threshold counts. With several workers, HLS viewers of the others count too (the
        overflow starts early rather than late)."""
        return max(0, self.counts().attendees - len(self.hls_viewers))

    def _join_op(
        self,
        participant: Participant,
        *,
        ban_key: str | None,
        person_key: str | None,
        ban_keys: Collection[str],
    ) -> Op:
        keys = [*([ban_key] if ban_key else []), *ban_keys]
        args = {
            "participant": participant_json(participant),
            "person_key": person_key,
            "ban_keys": keys,
            "token": secrets.token_urlsafe(24),
            "pid": self.incarnation,
        }
        return Op("join", args, self.worker_id)

    # ------------------------------------------------------------------ ops

    async def submit(self, op: Op, peer: RoomPeer | None = None) -> list[RoomEvent]:
        """Run ``op``: at once with one worker, through the room's log with several."""
        if self.replicator is None:
            return self.apply(op, origin=True, peer=peer)
        return await self.replicator.submit(self, op, peer)

    def submit_soon(self, op: Op, *, failed: Callable[[], None] | None = None) -> None:
        """Run ``op`` from a callback: at once with one worker (a refusal raises), else in
        a task (``failed()`` when it is refused or cannot be logged)."""
        if self.replicator is None:
            self.apply(op, origin=True)
            return

        async def run() -> None:
            try:
                await self.submit(op)
            except Exception as exc:
                if not isinstance(exc, RoomError):
                    logger.warning("room op %s could not be logged: %s", op.name, exc)
                if failed is not None:
                    failed()

        self._spawn(run())

    async def do(self, method: str, *args: Any, **kwargs: Any) -> list[RoomEvent]:
        """A state command: ``await room.do("set_mode", actor, Mode.DISCUSSION)``."""
        return await self.submit(state_op(method, *args, worker=self.worker_id, **kwargs))

    def apply(self, op: Op, *, origin: bool, peer: RoomPeer | None = None) -> list[RoomEvent]:
        """Apply one op to this worker's copy of the room (``origin``: it started here)."""
        events = self.change(op, origin=origin, peer=peer)
        self._apply(events, origin=origin)
        return events

    def deliver(self, events: list[RoomEvent], *, origin: bool) -> None:
        """Tell this worker's participants and the SFU what :meth:`change` did."""
        self._apply(events, origin=origin)

    def change(self, op: Op, *, origin: bool, peer: RoomPeer | None = None) -> list[RoomEvent]:
        """The state change of an op, not yet told to anyone (see :meth:`deliver`)."""
        name = op.name
        if name == "state":
            events: list[RoomEvent] = run_state_op(self.state, op)
        elif name == "join":
            events = self._op_join(op, origin, peer)
        elif name == "resume":
            events = self._op_resume(op, origin, peer)
        elif name == "disconnect":
            pid = op.args["participant_id"]
            p = self.state.participants.get(pid)
            events = self.state.disconnect(pid) if p is not None and p.connected else []
        elif name == "leave":
            events = self._op_leave(op)
        elif name == "add_stream":
            events = self._op_add_stream(op, origin)
        elif name == "remove_stream":
            stream_id = op.args["stream_id"]
            events = (
                self.state.remove_stream(stream_id, op.args["reason"])
                if stream_id in self.state.streams
                else []
            )
        else:
            raise ValueError(f"unknown room op {name!r}")
        return events

    def _op_join(self, op: Op, origin: bool, peer: RoomPeer | None) -> list[RoomEvent]:
        if self.closed:
            raise RoomError(RoomErrorCode.ENDED, _("this event has ended"))
        participant = participant_from(op.args["participant"])
        pid = participant.participant_id
        events = self.state.join(
            participant,
            now=replay.now(self._clock),
            person_key=op.args.get("person_key"),
            ban_keys=op.args.get("ban_keys", ()),
        )
        if origin:
            self._members[pid] = _Member(pid, peer, offers=pid not in self._no_offers)
        self._resume_tokens[op.args["token"]] = pid
        self.worker_of[pid] = op.worker
        self.incarnation_of[pid] = int(op.args.get("pid", 0))
        return events

    def _op_resume(self, op: Op, origin: bool, peer: RoomPeer | None) -> list[RoomEvent]:
        pid = op.args["participant_id"]
        if pid not in self.state.participants:
            raise RoomError(RoomErrorCode.UNKNOWN_PARTICIPANT, _("not in the room"))
        member = self._members.get(pid)
        if origin:
            if member is None:  # back through this worker after another one
                member = self._members[pid] = _Member(pid, peer)
            old = member.peer
            member.peer = peer
            if member.expiry is not None:
                member.expiry.cancel()
                member.expiry = None
            if old is not None and old is not peer:
                old.disconnect(ByeReason.REPLACED)
                self._spawn(self._close_media(member))
        elif member is not None:  # it was here; its connection is now on another worker
            del self._members[pid]
            if member.expiry is not None:
                member.expiry.cancel()
            if member.peer is not None:
                member.peer.disconnect(ByeReason.REPLACED)
            self._spawn(self._close_media(member))
            self._spawn(self._release_if_empty())
        self.worker_of[pid] = op.worker
        self.incarnation_of[pid] = int(op.args.get("pid", 0))
        events = self.state.reconnect(pid)
        if origin and not events:
            # Still counted as connected (its worker died a moment ago, before anyone saw it):
            # no event will set up its media here, so do it once this op is delivered.
            self._loop.call_soon(self._reconcile_member, pid)
        return events

    def _reconcile_member(self, participant_id: str) -> None:
        member = self._members.get(participant_id)
        if member is not None and not self.closed:
            self._reconcile([member])

    def _op_leave(self, op: Op) -> list[RoomEvent]:
        pid = op.args["participant_id"]
        for token, holder in list(self._resume_tokens.items()):
            if holder == pid:
                del self._resume_tokens[token]
        self.worker_of.pop(pid, None)
        self.incarnation_of.pop(pid, None)
        self._spoke_at.pop(pid, None)
        self.hls_viewers.discard(pid)
        if pid not in self.state.participants:
            return []
        return self.state.leave(pid, reason_from(op.args["reason"]))

    def _op_add_stream(self, op: Op, origin: bool) -> list[RoomEvent]:
        stream = stream_from(op.args["stream"])
        producer = self._pending_producers.pop(stream.stream_id, None) if origin else None
        try:
            events = self.state.add_stream(stream)
        except RoomError:
            if producer is not None:
                producer.close(CloseReason.UNPUBLISHED)
            raise
        self.stream_worker[stream.stream_id] = op.worker
        if producer is not None:
            self._producers[producer.id] = producer
            producer.on_close(self._producer_closed)
        return events

    async def _release_if_empty(self) -> None:
        if not self._members and self._on_empty is not None and not self.closed:
            await self._on_empty(self)

    def has_resume_token(self, token: str) -> bool:
        return token in self._resume_tokens

    async def come_back(self, token: str, peer: RoomPeer) -> Participant | None:
        """Take a dropped (or stale) participant back with their role, grants and hand, on
        this worker, whichever worker their connection was on (it dropped, or that worker
        died). None for an unknown token."""
        pid = self._resume_tokens.get(token)
        if pid is None or pid not in self.state.participants:
            return None
        await self.submit(
            Op("resume", {"participant_id": pid, "pid": self.incarnation}, self.worker_id), peer
        )
        return self.state.get(pid)

    def _resume_op(self, participant_id: str) -> Op:
        args = {"participant_id": participant_id, "pid": self.incarnation}
        return Op("resume", args, self.worker_id)

    def disconnect(self, participant_id: str, peer: RoomPeer) -> None:
        """The participant's connection went away: media ends now, the place is kept
        for the grace period, then they leave."""
        member = self._members.get(participant_id)
        if member is None or member.peer is not peer:
            return  # already replaced by a resumed session
        member.peer = None
        self._spawn(self._close_media(member))
        self.submit_soon(Op("disconnect", {"participant_id": participant_id}, self.worker_id))
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
        op = Op("leave", {"participant_id": participant_id, "reason": reason.value}, self.worker_id)
        try:
            await self.submit(op)
        except RoomError:
            pass
        except Exception as exc:  # the log is unreachable: the others learn of it when it is back
            logger.warning("could not log that %s left (%s); will retry", participant_id, exc)
            if self.replicator is not None:
                self.replicator.later(self.room_id, op)
        await self._close_media(member)
        await self._release_if_empty()

    async def leave_remote(self, participant_id: str, reason: ByeReason) -> None:
        """End the place of someone whose worker is gone (no connection here)."""
        if participant_id in self._members or participant_id not in self.state.participants:
            return
        await self.submit(
            Op("leave", {"participant_id": participant_id, "reason": reason.value}, self.worker_id)
        )

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

    def producer(self, stream_id: str) -> Producer | None:
        """The producer of a stream published on this worker (not a pipe's copy)."""
        if stream_id in self._relayed:
            return None
        return self._producers.get(stream_id)

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

    def set_video_quality(self, participant_id: str, quality: VideoQuality) -> None:
        """What this participant receives: fit the connection, save data, or favour
        sharp pictures over many. Kept for the participant's later connections."""
        member = self._member(participant_id)
        member.video_quality = quality
        if member.subscribe is not None:
            self.router.tiers_of(member.subscribe).set_quality(quality)

    # ------------------------------------------------------------------ publishing

    async def publish(
        self,
        participant_id: str,
        sdp: str,
        tracks: list[tuple[str, Source]],
        *,
        on_state: Callable[[str], None] | None = None,
        encoder: bool = False,
    ) -> tuple[str, list[Published]]:
        """Apply a publisher's offer; the answer and the streams it adds. ``on_state`` hears
        the connection state of a new publish connection ("connected", "failed", "closed");
        ``encoder``: the publisher is an encoder (WHIP), answered as the DTLS server."""
        member = self._member(participant_id)
        self.state.authorize_publish(participant_id, [source for _, source in tracks])
        if member.publish is None or member.publish.closed:
            transport = self.router.create_publish_transport(
                on_producer=lambda p: self._producer_added(participant_id, p),
                on_layers=lambda p, active: self._publisher_layers(member, p, active),
                dtls_server=encoder,
            )
            member.publish = transport
            transport.on_state(lambda s: self._publish_state(member, transport, s))
            if on_state is not None:
                transport.on_state(on_state)
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
        self._pending_producers[producer.id] = producer

        def refused() -> None:
            pending = self._pending_producers.pop(producer.id, None)
            if pending is not None:
                pending.close(CloseReason.UNPUBLISHED)

        op = Op("add_stream", {"stream": stream_json(stream)}, self.worker_id)
        self.submit_soon(op, failed=refused)

    def _producer_closed(self, producer: Producer, reason: CloseReason) -> None:
        if self._producers.get(producer.id) is producer:
            del self._producers[producer.id]
        if producer.id in self._relayed:  # a pipe's producer: the stream is not ours to end
            self._relayed.discard(producer.id)
            if not self.closed and producer.id in self.state.streams:
                # the pipe closed under a live stream (its feeding worker went away or
                # stopped relaying it): ask for the stream again
                self._loop.call_later(0.2, self._reconcile_if_open)
            return
        if producer.id not in self.state.streams:  # ended by the room already
            return
        self.submit_soon(
            Op("remove_stream", {"stream_id": producer.id, "reason": reason.value}, self.worker_id)
        )

    def unpublish(self, participant_id: str, stream_id: str) -> None:
        member = self._member(participant_id)
        if not self.state.owns(participant_id, stream_id) or member.publish is None:
            raise RoomError(RoomErrorCode.UNKNOWN_STREAM, _("no such stream of yours"))
        producer = self._producers.get(stream_id)
        if producer is not None:
            member.publish.close_producer(producer, CloseReason.UNPUBLISHED)

    # ------------------------------------------------------------------ playing

    async def play(
        self,
        participant_id: str,
        sdp: str,
        *,
        on_state: Callable[[str], None] | None = None,
    ) -> str:
        """Answer a player's offer (WHEP): each audio and video m-line it receives on shows
        one of the streams this participant may receive, the most relevant first (see
        :meth:`_featured`), switched without renegotiation as the stage changes. Only for a
        participant that entered with ``offers=False``, once."""
        member = self._member(participant_id)
        if member.offers or member.subscribe is not None:
            raise RoomError(RoomErrorCode.INVALID, _("this connection receives already"))

        def consumer_closed(consumer: Consumer, _reason: CloseReason) -> None:
            if member.consumers.get(consumer.producer.id) is consumer:
                del member.consumers[consumer.producer.id]

        transport = self.router.create_play_transport(on_consumer_closed=consumer_closed)
        member.subscribe = member.player = transport
        tiers = self.router.tiers_of(transport)
        tiers.set_quality(member.video_quality)

        def report(allocation: AllocationReport) -> None:
            if member.peer is not None and member.subscribe is transport:
                member.peer.allocation(allocation)

        tiers.set_on_report(report)

        def closed() -> None:
            if member.subscribe is transport:
                member.subscribe = member.player = None
                member.consumers.clear()

        transport.on_close(closed)
        if on_state is not None:
            transport.on_state(on_state)
        try:
            answer = await transport.handle_offer(sdp)
        except BaseException:
            await transport.close()
            raise
        if not self.closed and member.player is transport:
            self._reconcile([member])
        return answer

    def _reconcile_player(self, member: _Member, player: PlayTransport) -> None:
        """Fill a player's slots with the most relevant streams it may receive; a stream
        already shown keeps its slot."""
        state = self.state
        participant = state.participants.get(member.participant_id)
        if participant is None:
            return
        visible = [
            st for st in state.streams.values() if state.receives(participant, st) and not st.paused
        ]
        shown: dict[str, Consumer] = {}
        for kind in (MediaKind.VIDEO, MediaKind.AUDIO):
            slots = player.slot_count(kind)
            if slots == 0:
                continue
            chosen: list[tuple[Stream, Producer]] = []
            for stream in self._featured(kind, visible):
                producer = self._producers.get(stream.stream_id)
                if producer is None:
                    self._relay(stream)  # published on another worker: bring it here
                    continue
                if producer.closed:
                    continue
                chosen.append((stream, producer))
                if len(chosen) == slots:
                    break
            wanted = {producer.id for _, producer in chosen}
            current = player.showing(kind)
            placed: list[Producer | None] = [
                p if p is not None and p.id in wanted else None for p in current
            ]
            kept = {p.id for p in placed if p is not None}
            waiting = [producer for _, producer in chosen if producer.id not in kept]
            for i, p in enumerate(placed):
                if p is None and waiting:
                    placed[i] = waiting.pop(0)
            for i, p in enumerate(placed):
                consumer = player.show(kind, i, p)
                if consumer is not None:
                    shown[consumer.producer.id] = consumer
        member.consumers = shown

    def _featured(self, kind: MediaKind, streams: list[Stream]) -> list[Stream]:
        """``streams`` of ``kind``, the most relevant to show first: video, the newest
        screen share, then the active speaker's camera, then cameras by recent speaking;
        audio, the active speaker's microphone, then shared screen audio, then microphones
        by recent speaking. Otherwise in the order they were published."""
        speaker = self._speaker
        spoke = self._spoke_at
        order = {st.stream_id: i for i, st in enumerate(streams)}

        def rank(st: Stream) -> tuple[int, float, int]:
            if st.source is Source.SCREEN:
                return (0, 0.0, -order[st.stream_id])  # the newest share first
            recent = -spoke.get(st.participant_id, 0.0)
            speaking = st.participant_id == speaker
            if st.source is Source.SCREEN_AUDIO:
                return (1, recent, order[st.stream_id])
            # video: screens, the speaker's camera, the others; audio: the speaker's
            # microphone, screen audio, the others
            group = (1 if speaking else 2) if kind is MediaKind.VIDEO else (0 if speaking else 2)
            return (group, recent, order[st.stream_id])

        return sorted((st for st in streams if st.kind == kind.value), key=rank)

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

    def _reconcile_if_open(self) -> None:
        if not self.closed:
            self._reconcile()

    def _reconcile(self, members: list[_Member] | None = None) -> None:
        """Make every participant's consumers (or those of ``members``) match what the
        state says they receive."""
        state = self.state
        for member in self._members.values() if members is None else members:
            participant = state.participants.get(member.participant_id)
            if participant is None or member.peer is None:
                continue
            if member.player is not None:
                self._reconcile_player(member, member.player)
                continue
            if member.participant_id in self.hls_viewers and on_the_floor(participant):
                # promoted, or given the microphone or camera: the delayed HLS picture is no
                # way to take part; from now on the room offers them WebRTC like anyone
                self.hls_viewers.discard(member.participant_id)
                member.offers = True
            if not member.offers:
                continue  # an encoder, a player that has not offered yet, an HLS viewer
            for stream in state.streams.values():
                wanted = state.receives(participant, stream)
                consumer = member.consumers.get(stream.stream_id)
                if consumer is None:
                    producer = self._producers.get(stream.stream_id)
                    if wanted and producer is None:
                        self._relay(stream)
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
        if self.relays is not None and self._records_here():  # the recorder wants every stream
            for stream in state.streams.values():
                if stream.stream_id not in self._producers:
                    self._relay(stream)
        if self._relayed:
            self._release_unused_relays()
        self._prioritise(members)

    def recording_changed(self) -> None:
        """This worker became (or stopped being) the room's recorder."""
        if not self.closed:
            self._reconcile()
            if self.recording is not None and self.records:
                self.recording.sync()
            if self.broadcast is not None:
                self.broadcast.sync()  # it runs where the recorder does

    def _records_here(self) -> bool:
        """This worker needs every stream: it records the room or composes its stage."""
        if not self.records:
            return False
        if self.broadcast is not None and self.broadcast.wants_media:
            return True
        return self.recording is not None and self.state.recording is not RecordingStatus.OFF

    def broadcast_changed(self) -> None:
        """The broadcast started or stopped composing here (streams relayed here, or not)."""
        if not self.closed:
            self._reconcile()

    def stage_producers(self) -> dict[str, Producer]:
        """The producers here by stream ID (a relayed stream's is its pipe's)."""
        return self._producers

    def _relay(self, stream: Stream) -> None:
        """Bring a stream published on another worker here, once, in the background."""
        stream_id = stream.stream_id
        worker = self.stream_worker.get(stream_id)
        if (
            self.relays is None
            or worker is None
            or worker == self.worker_id
            or stream_id in self._relaying
            or self.closed
        ):
            return
        self._relaying.add(stream_id)
        relays = self.relays

        async def run() -> None:
            try:
                producer = await relays.relay(self.room_id, stream_id, worker)
            except Exception as exc:
                logger.warning(
                    "could not relay stream %s from worker %d: %s", stream_id, worker, exc
                )
                await asyncio.sleep(1.0)
                self._relaying.discard(stream_id)
                if not self.closed:
                    self._reconcile()  # tries again while someone here should receive it
                return
            finally:
                self._relaying.discard(stream_id)
            if self.closed or stream_id not in self.state.streams:
                relays.release(self.room_id, producer)
                return
            self._producers[stream_id] = producer
            self._relayed.add(stream_id)
            producer.on_close(self._producer_closed)
            current = self.state.streams[stream_id]
            if current.paused:
                producer.pause()
            self._reconcile()
            if self.recording is not None and self.records:
                self.recording.sync()
            if self.broadcast is not None:
                self.broadcast.sync()

        self._spawn(run())

    def _release_unused_relays(self) -> None:
        """Close the pipe of a relayed stream nobody here receives any more."""
        used = {sid for m in self._members.values() for sid in m.consumers}
        if self._records_here():
            used |= set(self._producers)  # the recorder wants every stream
        for stream_id in list(self._relayed):
            if stream_id in used:
                continue
            producer = self._producers.pop(stream_id, None)
            self._relayed.discard(stream_id)
            if producer is not None and self.relays is not None:
                producer.off_close(self._producer_closed)  # its closing ends no stream
                self.relays.release(self.room_id, producer)

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
            raise SfuError(SfuErrorCode.NEGOTIATION, _("no subscriber connection is negotiating"))
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

    def _apply(self, events: list[RoomEvent], *, origin: bool = True) -> None:
        everyone = False  # whether every member's consumers may have changed
        concerned: dict[str, None] = {}  # else: those whose consumers may have changed
        for event in events:
            if isinstance(event, ParticipantJoined | ParticipantUpdated):
                concerned[event.participant.participant_id] = None
            elif not isinstance(event, ParticipantLeft | Removed):
                everyone = True
            seen = self.roster.apply(event)
            if isinstance(event, StreamRemoved):
                stream_id = event.stream.stream_id
                producer = self._producers.pop(stream_id, None)
                self.stream_worker.pop(stream_id, None)
                if producer is not None and stream_id in self._relayed:
                    self._relayed.discard(stream_id)
                    producer.off_close(self._producer_closed)
                    if self.relays is not None:
                        self.relays.release(self.room_id, producer)
                elif producer is not None:
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
            if self._on_event is not None and origin:
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
            if self.recording is not None and self.records:
                self.recording.sync()
            if self.broadcast is not None:
                self.broadcast.sync()

    def live_stream_output(self, output: dict[str, object]) -> None:
        """The live stream's driver tells how its connection is doing: to the presenters and
        hosts connected to this worker (on the event loop)."""
        event = LiveStreamOutput(output)
        for member in list(self._members.values()):
            if member.peer is None:
                continue
            try:
                member.peer.room_event(event)
            except Exception:
                logger.exception("delivering the live stream's state failed")

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
            raise RoomError(RoomErrorCode.UNKNOWN_PARTICIPANT, _("not in the room"))
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
                players = [m for m in self._members.values() if m.player is not None]
                if players and not self.closed:
                    self._reconcile(players)  # the speaker takes the players' slots
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
            quality = LinkQuality.from_loss(loss)
            participant = self.state.participants.get(member.participant_id)
            if participant is None or participant.quality == quality:
                continue
            if self.replicator is None:
                events += self.state.set_quality(member.participant_id, quality)
            else:
                self.submit_soon(
                    state_op("set_quality", member.participant_id, quality, worker=self.worker_id)
                )
        if events:
            self._apply(events)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.interaction.close()
        self.roster.close()
        await self.reactions.close()
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
        if self.broadcast is not None:
            await self.broadcast.close()
        await self.router.close()
