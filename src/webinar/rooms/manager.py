"""Live rooms by event: created on the first join, closed when the last one leaves."""

from __future__ import annotations

import asyncio
import dataclasses

from webinar.sfu import Router, RouterConfig

from .live import LiveRoom
from .recording import RecordingHooks
from .state import RESUME_GRACE, Phase, RoomError, RoomErrorCode, RoomState


class RoomManager:
    def __init__(
        self,
        router_config: RouterConfig,
        *,
        max_participants: int,
        answer_timeout: float = 15.0,
        resume_grace: float = RESUME_GRACE,
        recording_hooks: RecordingHooks | None = None,
    ) -> None:
        self._router_config = router_config
        self._recording_hooks = recording_hooks
        self._max_participants = max_participants
        self._answer_timeout = answer_timeout
        self._resume_grace = resume_grace
        self._rooms: dict[str, LiveRoom] = {}
        self._ended: set[str] = set()  # ended for all: no new room for these events
        self.closed = False

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
            raise RoomError(RoomErrorCode.ENDED, "this event has ended")
        if room is None or room.closed:
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
                Router(config),
                state,
                answer_timeout=self._answer_timeout,
                resume_grace=self._resume_grace,
                on_empty=self._release,
                recording_hooks=self._recording_hooks,
            )
            self._rooms[room_id] = room
        return room

    def get(self, room_id: str) -> LiveRoom | None:
        return self._rooms.get(room_id)

    def rooms(self) -> list[LiveRoom]:
        return list(self._rooms.values())

    async def _release(self, room: LiveRoom) -> None:
        if room.state.phase is Phase.ENDED:
            self._ended.add(room.room_id)
        if self._rooms.get(room.room_id) is room and room.is_empty:
            del self._rooms[room.room_id]
            await room.close()

    async def release_if_empty(self, room_id: str) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            await self._release(room)

    async def close(self) -> None:
        self.closed = True
        rooms = list(self._rooms.values())
        self._rooms.clear()
        await asyncio.gather(*(r.close() for r in rooms), return_exceptions=True)
