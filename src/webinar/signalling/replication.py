"""One room over several workers: every change goes through one ordered log in Redis.

The rule (docs/architecture.md, "Several workers"): **whoever holds the room's lock decides;
the log orders.** A worker that receives a command (a join, a mode change, a chat message)

1. takes the room's lock in Redis and, in the same round trip, reads the log entries it has
   not applied yet, and applies them;
2. runs the command on its own copy of the room, exactly as a single server would (the state
   machine may refuse it; a chat message is written to the store before anyone sees it);
3. appends the command to the log and releases the lock in one script.

Every other worker with people in the room reads the log (``XREAD``) and applies each entry
in order, with the entry's time and random seed (:mod:`webinar.rooms.replay`) and without
writing to the store again, so every copy holds the same state and every participant sees
the same messages in the same order. A command that fails leaves no entry. A worker that
opens its copy later replays the room's ops from the log; chat, Q&A, polls and the
call-to-action come from the store, read under the lock, so nothing is applied twice.

Redis holds only the log, the lock and an "ended" mark per room (``webinar:room:<id>:*``,
expiring a day after the last entry). When Redis is unreachable, media keeps flowing (it
never touches Redis) and commands are refused with ``unavailable`` until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from webinar.i18n import _
from webinar.rooms import replay
from webinar.rooms.live import LiveRoom, Relays, RoomPeer
from webinar.rooms.ops import Op
from webinar.rooms.reasons import ByeReason
from webinar.rooms.roles import Role
from webinar.rooms.state import RoomEnded, RoomError, RoomErrorCode, RoomEvent

logger = logging.getLogger(__name__)

LOCK_TTL_MS = 10_000  # a crashed holder's lock lapses after this
LOCK_WAIT = 5.0  # seconds a command waits for the room's lock before it is refused
LOG_TTL_MS = 24 * 3600 * 1000
QUIET_OPS = frozenset({"disconnect", "leave", "remove_stream", "state"})

# Take the lock; if taken, return the entries after ARGV[3] (the caller's last applied id).
_ACQUIRE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('xrange', KEYS[2], '(' .. ARGV[3], '+')}
end
return {0}
"""
# Append one entry and release the lock, if it is still ours.
_APPEND = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LOCKLOST the room lock lapsed')
end
local id = redis.call('xadd', KEYS[2], '*', 'e', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('xadd', KEYS[2], '*', 'e', ARGV[4])
end
redis.call('pexpire', KEYS[2], ARGV[3])
redis.call('del', KEYS[1])
return id
"""
# The room's recorder runs on one worker: who holds this lease (renewed, or taken when free).
_RECORDER = """
local holder = redis.call('get', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
RECORDER_TTL_MS = 5_000
#: How long one read of a room's log waits for new entries.
READ_BLOCK_MS = 2_000
# Append without applying (this worker has no copy of the room any more), under the lock.
_APPEND_DETACHED = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local id = redis.call('xadd', KEYS[2], '*', 'e', ARGV[3])
  redis.call('del', KEYS[1])
  return id
end
return false
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Unavailable(Exception):
    """The room's log cannot be reached (Redis down) or its lock not taken in time."""


def _key(room_id: str, what: str) -> str:
    return f"webinar:room:{room_id}:{what}"


def _after(entry_id: str, last: str) -> bool:
    a, _sep, b = entry_id.partition("-")
    c, _sep, d = last.partition("-")
    return (int(a), int(b or 0)) > (int(c), int(d or 0))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(fields: Any) -> dict[str, Any]:
    if isinstance(fields, list):  # from a script: [field, value, ...]
        fields = {_text(k): v for k, v in zip(fields[::2], fields[1::2], strict=True)}
    raw = fields[b"e"] if b"e" in fields else fields["e"]
    entry: dict[str, Any] = json.loads(_text(raw))
    return entry


@dataclass(eq=False)
class _Replica:
    room: LiveRoom
    last_id: str = "0-0"
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reader: asyncio.Task[None] | None = None
    #: Set when the copy is closed: the reader stops at its next turn even if the
    #: cancellation was lost (redis-py can swallow one that lands mid-command).
    detached: bool = False
    #: Participants of workers that died, and since when (seconds, monotonic).
    orphaned: dict[str, float] = field(default_factory=dict)


ReplayInteraction = Callable[[LiveRoom, str, dict[str, Any]], Awaitable[None]]


class Replication:
    """This worker's side of the room logs (one per process, with several workers)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        worker_id: int,
        *,
        replay_interaction: ReplayInteraction,
        load_interaction: Callable[[LiveRoom], Awaitable[object]],
        relays: Relays | None = None,
        resume_grace: float = 60.0,
        lost: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self._redis = redis
        self.worker_id = worker_id
        self.incarnation = os.getpid()
        self.relays = relays
        self._replay_interaction = replay_interaction
        self._load_interaction = load_interaction
        self._resume_grace = resume_grace
        #: Told (room id, participant id) of each participant found on a dead worker.
        self._lost = lost
        self._replicas: dict[str, _Replica] = {}
        self._acquire = redis.register_script(_ACQUIRE)
        self._append = redis.register_script(_APPEND)
        self._release = redis.register_script(_RELEASE)
        self._recorder = redis.register_script(_RECORDER)
        self._append_detached = redis.register_script(_APPEND_DETACHED)
        self._later: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ copies of rooms

    async def attach(self, room: LiveRoom) -> None:
        replica = _Replica(room)
        self._replicas[room.room_id] = replica
        room.records = False  # until this worker holds the room's recorder lease
        try:
            async with replica.lock:
                if await self._redis.exists(_key(room.room_id, "ended")):
                    raise RoomError(RoomErrorCode.ENDED, _("this event has ended"))
                token, entries = await self._lock(replica)
                appended = False
                try:
                    await self._load_interaction(room)  # under the lock: what the log has done
                    history = [(_text(i), f) for i, f in entries]
                    start = 0
                    for index, (_id, fields) in enumerate(history):
                        if _entry(fields)["t"] == "open":
                            start = index
                    for entry_id, fields in history[start:]:
                        await self._apply_entry(replica, entry_id, fields, history=True)
                    if history:
                        replica.last_id = history[-1][0]
                    await self._hold_recorder(room)
                    if not room.state.participants:  # a new session of the room starts here
                        replica.last_id = await self._append_entry(
                            room, token, {"t": "open", "w": self.worker_id}
                        )
                        appended = True
                finally:
                    if not appended:
                        await self._unlock(room, token)
        except BaseException:
            self._replicas.pop(room.room_id, None)
            raise
        replica.reader = asyncio.get_running_loop().create_task(self._read(replica))

    async def detach(self, room: LiveRoom) -> None:
        replica = self._replicas.get(room.room_id)
        if replica is None or replica.room is not room:
            return
        del self._replicas[room.room_id]
        replica.detached = True
        if replica.reader is not None:
            replica.reader.cancel()
            # Bounded: a reader whose cancellation redis-py swallowed returns after its
            # blocking read (READ_BLOCK_MS) and sees ``detached``; a join never waits for it.
            await asyncio.wait({replica.reader}, timeout=READ_BLOCK_MS / 1000 + 1.0)
        if room.records:  # let another worker with people in the room record it
            with contextlib.suppress(RedisError, OSError):
                await self._release(keys=[_key(room.room_id, "recorder")], args=[self._me])

    async def close(self) -> None:
        for replica in list(self._replicas.values()):
            await self.detach(replica.room)
        for task in list(self._later):
            task.cancel()
        await asyncio.gather(*self._later, return_exceptions=True)

    def later(self, room_id: str, op: Op) -> None:
        task = asyncio.get_running_loop().create_task(self._log_later(room_id, op))
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _log_later(self, room_id: str, op: Op, within: float = 300.0) -> None:
        entry = {"t": "op", "op": op.to_json(), "at": time.time(), "seed": 0}
        keys = [_key(room_id, "lock"), _key(room_id, "log")]
        deadline = time.monotonic() + within
        delay = 0.2
        while time.monotonic() < deadline:
            replica = self._replicas.get(room_id)
            if replica is not None:  # a copy is open again here: the normal way
                try:
                    await replica.room.submit(op)
                    return
                except RoomError:
                    return
                except Unavailable:
                    pass
            else:
                try:
                    args: list[str | int] = [secrets.token_hex(8), LOCK_TTL_MS, json.dumps(entry)]
                    if await self._append_detached(keys=keys, args=args):
                        return
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        logger.warning("gave up logging %s of room %s", op.name, room_id)

    # ------------------------------------------------------------------ commands

    async def submit(self, room: LiveRoom, op: Op, peer: RoomPeer | None) -> list[RoomEvent]:
        replica = self._replica(room)
        async with replica.lock, self._turn(replica) as turn:
            events = turn.run(lambda: room.change(op, origin=True, peer=peer))
            if events or op.name not in QUIET_OPS:
                await turn.append({"t": "op", "op": op.to_json()})
            if any(isinstance(e, RoomEnded) for e in events):
                await mark_ended(self._redis, room.room_id)
            # Told once logged, and last: a removal's disconnect follows the command's reply.
            room.deliver(events, origin=True)
        return events

    @contextlib.asynccontextmanager
    async def interaction(
        self, room: LiveRoom, actor: str, message: dict[str, Any]
    ) -> AsyncIterator[None]:
        """Run one interaction command (the body of the ``with``) in the room's turn; log it
        when the body succeeds (its write done), so every other worker replays it."""
        replica = self._replica(room)
        async with replica.lock, self._turn(replica) as turn:
            with replay.fixed(turn.at, turn.seed):
                yield
            await turn.append({"t": "ia", "actor": actor, "msg": message})

    def _replica(self, room: LiveRoom) -> _Replica:
        replica = self._replicas.get(room.room_id)
        if replica is None or replica.room is not room:
            raise Unavailable(_("this worker's copy of the room is not open"))
        return replica

    @contextlib.asynccontextmanager
    async def _turn(self, replica: _Replica) -> AsyncIterator[_Turn]:
        token, entries = await self._lock(replica)
        turn = _Turn(self, replica, token)
        try:
            for entry_id, fields in entries:
                await self._apply_entry(replica, _text(entry_id), fields)
            yield turn
        finally:
            if not turn.appended:
                await self._unlock(replica.room, token)

    async def _lock(self, replica: _Replica) -> tuple[str, list[Any]]:
        room_id = replica.room.room_id
        token = secrets.token_hex(8)
        keys = [_key(room_id, "lock"), _key(room_id, "log")]
        deadline = time.monotonic() + LOCK_WAIT
        delay = 0.0005
        while True:
            try:
                answer = await self._acquire(keys=keys, args=[token, LOCK_TTL_MS, replica.last_id])
            except (RedisError, OSError) as exc:
                raise Unavailable(
                    _("the room's coordination is unreachable: %(error)s") % {"error": exc}
                ) from exc
            if answer[0] == 1:
                return token, list(answer[1])
            if time.monotonic() > deadline:
                raise Unavailable(_("the room is busy; try again in a moment"))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)

    async def _unlock(self, room: LiveRoom, token: str) -> None:
        with contextlib.suppress(RedisError, OSError):  # else it lapses by itself
            await self._release(keys=[_key(room.room_id, "lock")], args=[token])

    async def _append_entry(
        self, room: LiveRoom, token: str, entry: dict[str, Any], then: dict[str, Any] | None = None
    ) -> str:
        keys = [_key(room.room_id, "lock"), _key(room.room_id, "log")]
        args: list[str | int] = [
            token,
            json.dumps(entry),
            LOG_TTL_MS,
            json.dumps(then) if then else "",
        ]
        try:
            entry_id = _text(await self._append(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            raise Unavailable(
                _("the room's log is unreachable: %(error)s") % {"error": exc}
            ) from exc
        if then is not None:  # the second entry's id is the log's last
            last = await self._redis.xrevrange(keys[1], count=1)
            if last:
                entry_id = _text(last[0][0])
        return entry_id

    # ------------------------------------------------------------------ applying the log

    async def _read(self, replica: _Replica) -> None:
        key = _key(replica.room.room_id, "log")
        delay = 0.1
        while not replica.detached:
            try:
                answer = await self._redis.xread(
                    {key: replica.last_id}, block=READ_BLOCK_MS, count=500
                )
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if replica.detached:
                    return
                logger.warning("room log of %s unreachable (%s); retrying", key, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if replica.detached:
                return
            for _stream, entries in answer or []:
                async with replica.lock:
                    for entry_id, fields in entries:
                        if _after(_text(entry_id), replica.last_id):
                            await self._apply_entry(replica, _text(entry_id), fields)

    async def _apply_entry(
        self, replica: _Replica, entry_id: str, fields: Any, *, history: bool = False
    ) -> None:
        replica.last_id = entry_id
        room = replica.room
        try:
            entry = _entry(fields)
            kind = entry["t"]
            if kind == "open":
                return
            with replay.fixed(float(entry["at"]), int(entry["seed"])):
                if kind == "op":
                    room.apply(Op.from_json(entry["op"]), origin=False)
                elif kind == "ia" and not history:
                    await self._replay_interaction(room, entry["actor"], entry["msg"])
        except RoomError as exc:
            logger.debug("log entry %s refused here too: %s", entry_id, exc)
        except Exception:
            logger.exception("applying log entry %s of room %s failed", entry_id, room.room_id)

    # ------------------------------------------------------------------ the recorder

    @property
    def _me(self) -> str:
        return str(self.worker_id)

    async def _hold_recorder(self, room: LiveRoom) -> None:
        """Renew (or take, when free) the room's recorder lease; record here iff held.

        Only a worker of the room's stage competes for it (one with a host or presenter
        connected here), unless no host or presenter is connected anywhere: recordings are
        made where the stage's media originates, not from a copy on an edge node."""
        floor = [
            p
            for p in room.state.participants.values()
            if p.connected and p.role in (Role.HOST, Role.PRESENTER)
        ]
        if floor and not any(room.worker_of.get(p.participant_id) == self.worker_id for p in floor):
            if room.records:
                room.records = False
                room.recording_changed()
                with contextlib.suppress(RedisError, OSError):  # the stage takes it at once
                    await self._release(keys=[_key(room.room_id, "recorder")], args=[self._me])
            return
        try:
            held = await self._recorder(
                keys=[_key(room.room_id, "recorder")], args=[self._me, RECORDER_TTL_MS]
            )
        except (RedisError, OSError):
            return  # keep doing what we did until Redis answers again
        was, room.records = room.records, held == 1
        if room.records and not was:
            room.recording_changed()

    async def keep_recorders(self) -> None:
        for replica in list(self._replicas.values()):
            await self._hold_recorder(replica.room)

    # ------------------------------------------------------------------ workers that died

    async def sweep(self, alive: Callable[[int, int], bool], now: float) -> None:
        """End the places of participants whose worker died (or restarted: ``alive(worker,
        incarnation)``): disconnected at once (their media is gone), gone after the resume
        grace unless they came back through another worker."""
        for replica in list(self._replicas.values()):
            room = replica.room
            for pid, worker in list(room.worker_of.items()):
                incarnation = room.incarnation_of.get(pid, 0)
                if worker == self.worker_id:  # here: this life, or a former one (gone)
                    gone = incarnation not in (0, self.incarnation)
                else:
                    gone = not alive(worker, incarnation)
                if not gone:
                    replica.orphaned.pop(pid, None)
                    continue
                since = replica.orphaned.setdefault(pid, now)
                try:
                    participant = room.state.participants.get(pid)
                    if participant is not None and participant.connected:
                        await room.submit(Op("disconnect", {"participant_id": pid}, worker))
                        if self._lost is not None:
                            await self._lost(room.room_id, pid)
                    elif now - since >= self._resume_grace:
                        replica.orphaned.pop(pid, None)
                        await room.leave_remote(pid, ByeReason.DISCONNECTED)
                except (Unavailable, RoomError) as exc:
                    logger.debug("sweeping %s: %s", pid, exc)


class _Turn:
    """One command in a room's turn: run it at a fixed time and seed, then log it."""

    def __init__(self, replication: Replication, replica: _Replica, token: str) -> None:
        self._replication = replication
        self._replica = replica
        self._token = token
        self.at = time.time()
        self.seed = replay.new_seed()
        self.appended = False

    def run(self, command: Callable[[], list[RoomEvent]]) -> list[RoomEvent]:
        with replay.fixed(self.at, self.seed):
            return command()

    async def append(self, entry: dict[str, Any]) -> None:
        entry = {**entry, "at": self.at, "seed": self.seed, "w": self._replication.worker_id}
        room = self._replica.room
        reset = None
        if not room.state.participants:  # the last one left: the next join starts afresh
            reset = {"t": "open", "w": self._replication.worker_id}
        entry_id = await self._replication._append_entry(room, self._token, entry, reset)
        self.appended = True
        self._replica.last_id = entry_id


async def mark_ended(redis: aioredis.Redis, room_id: str) -> None:
    """No new copy of an ended room opens on any worker (for a day)."""
    try:
        await redis.set(_key(room_id, "ended"), "1", px=LOG_TTL_MS)
    except (RedisError, OSError):
        logger.warning("could not mark room %s ended in Redis", room_id)
