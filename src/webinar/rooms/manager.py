"""Live rooms by event: created on the first join, closed when the last one leaves."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Protocol

from webinar.i18n import _, ngettext
from webinar.sfu import MediaTotals, Router, RouterConfig

from .live import BroadcastDriver, LiveRoom, Relays, Replicator
from .reactions import RelayReactions, SaveReactions
from .recording import RecordingHooks
from .state import RESUME_GRACE, Phase, RoomError, RoomErrorCode, RoomEvent, RoomState

logger = logging.getLogger(__name__)


class RoomObserver(Protocol):
    """Told of every room's events (webhooks, statistics); must return quickly."""

    def room_event(self, room_id: str, event: RoomEvent) -> None: ...

    def room_opened(self, room_id: str, phase: Phase) -> None: ...

    def room_closed(self, room_id: str, phase: Phase) -> None: ...


class Replication(Replicator, Protocol):
    """One webinar over several workers (webinar.signalling.replication)."""

    worker_id: int
    #: This life of the worker (its process id).
    incarnation: int
    relays: Relays | None

    async def attach(self, room: LiveRoom) -> None:
        """Bring this worker's new copy of the room up to date with its log."""
        ...

    async def detach(self, room: LiveRoom) -> None:
        """This worker's copy closes (nobody here any more)."""
        ...


class RoomManager:
    def __init__(
        self,
        router_config: RouterConfig,
        *,
        max_participants: int,
        answer_timeout: float = 15.0,
        resume_grace: float = RESUME_GRACE,
        observer: RoomObserver | None = None,
        max_rooms: int | None = None,
        recording_hooks: RecordingHooks | None = None,
        media_totals: MediaTotals | None = None,
        broadcast: Callable[[LiveRoom], BroadcastDriver] | None = None,
        save_reactions: SaveReactions | None = None,
    ) -> None:
        #: What every room's media moved since the start (counted in /metrics).
        self.media_totals = media_totals if media_totals is not None else MediaTotals()
        self._max_rooms = max_rooms
        self._router_config = router_config
        self._observer = observer
        self._recording_hooks = recording_hooks
        self._broadcast = broadcast
        self._save_reactions = save_reactions
        #: With several workers (set by the app): a room's reactions counted here, handed to
        #: the room's other workers as (room, counts).
        self.relay_reactions: Callable[[LiveRoom, dict[str, int]], None] | None = None
        self._max_participants = max_participants
        self._answer_timeout = answer_timeout
        self._resume_grace = resume_grace
        self._rooms: dict[str, LiveRoom] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        #: Set by the app when the server runs several workers.
        self.replication: Replication | None = None
        self._ended: set[str] = set()  # ended for all: no new room for these events
        self.closed = False
        self._attaching: set[asyncio.Task[None]] = set()

    @property
    def max_cameras(self) -> int:
        return self._router_config.max_cameras

    def get_or_create(
        self,
        room_id: str,
        *,
        starts_at: float | None = None,
        join_window: float = 300.0,
        max_cameras: int | None = None,
        auto_record: bool = False,
    ) -> LiveRoom:
        room = self._rooms.get(room_id)
        if room is not None and room.state.phase is Phase.ENDED:
            self._ended.add(room_id)
        if room_id in self._ended:
            raise RoomError(RoomErrorCode.ENDED, _("this event has ended"))
        if room is None or room.closed:
            if self._max_rooms is not None and len(self._rooms) >= self._max_rooms:
                raise RoomError(
                    RoomErrorCode.SERVER_FULL,
                    ngettext(
                        "this server runs at most %(num)d live event at once",
                        "this server runs at most %(num)d live events at once",
                        self._max_rooms,
                    )
                    % {"num": self._max_rooms},
                )
            config = self._router_config
            if max_cameras is not None:
                config = dataclasses.replace(config, max_cameras=max_cameras)
            state = RoomState(
                max_participants=self._max_participants,
                starts_at=starts_at,
                join_window=join_window,
                recording_wanted=auto_record,
            )
            room = LiveRoom(
                room_id,
                Router(config, self.media_totals),
                state,
                answer_timeout=self._answer_timeout,
                resume_grace=self._resume_grace,
                on_empty=self._release,
                on_event=(
                    functools.partial(self._observer.room_event, room_id)
                    if self._observer is not None
                    else None
                ),
                recording_hooks=self._recording_hooks,
                broadcast=self._broadcast,
                save_reactions=self._save_reactions,
            )
            if self.relay_reactions is not None:
                room.reactions.relay = _relay_for(room, self.relay_reactions)
            self._rooms[room_id] = room
            if self.replication is not None:
                self._attach(room, self.replication)
            if self._observer is not None:
                try:
                    self._observer.room_opened(room_id, room.state.phase)
                except Exception:
                    logger.exception("room observer failed")
        return room

    def _attach(self, room: LiveRoom, replication: Replication) -> None:
        room.replicator = replication
        room.relays = replication.relays
        room.worker_id = replication.worker_id
        room.incarnation = replication.incarnation
        ready = self._ready[room.room_id] = asyncio.get_running_loop().create_future()

        async def attach() -> None:
            try:
                await replication.attach(room)
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(exc)
                if self._rooms.get(room.room_id) is room:
                    del self._rooms[room.room_id]
                await room.close()
                if isinstance(exc, Exception):
                    return
                raise
            else:
                if not ready.done():
                    ready.set_result(None)
            finally:
                if self._ready.get(room.room_id) is ready:
                    del self._ready[room.room_id]

        task = asyncio.get_running_loop().create_task(attach())
        self._attaching.add(task)
        task.add_done_callback(self._attaching.discard)

    async def ready(self, room: LiveRoom) -> None:
        """Wait until this worker's copy of ``room`` is up to date (at once with one)."""
        ready = self._ready.get(room.room_id)
        if ready is not None:
            await asyncio.shield(ready)

    def get(self, room_id: str) -> LiveRoom | None:
        return self._rooms.get(room_id)

    def rooms(self) -> list[LiveRoom]:
        return list(self._rooms.values())

    async def _release(self, room: LiveRoom) -> None:
        if room.state.phase is Phase.ENDED:
            self._ended.add(room.room_id)
        if self._rooms.get(room.room_id) is room and room.is_empty:
            del self._rooms[room.room_id]
            if self.replication is not None:
                try:
                    await self.replication.detach(room)
                except Exception:
                    logger.exception("detaching room %s failed", room.room_id)
            await room.close()
            self._closed(room)

    def _closed(self, room: LiveRoom) -> None:
        if self._observer is not None:
            try:
                self._observer.room_closed(room.room_id, room.state.phase)
            except Exception:
                logger.exception("room observer failed")

    async def release_if_empty(self, room_id: str) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            await self._release(room)

    async def close(self) -> None:
        self.closed = True
        for task in list(self._attaching):
            task.cancel()
        rooms = list(self._rooms.values())
        self._rooms.clear()
        await asyncio.gather(*(r.close() for r in rooms), return_exceptions=True)
        for room in rooms:
            self._closed(room)


def _relay_for(room: LiveRoom, relay: Callable[[LiveRoom, dict[str, int]], None]) -> RelayReactions:
    return lambda counts: relay(room, counts)
