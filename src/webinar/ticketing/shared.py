"""Seats and entry attempts shared by worker processes through Redis.

The rules are those of the in-memory books (``seats.py``, ``limiter.py``); here each decision
is one Lua script, so it is atomic across workers, and it runs on the Redis server's clock
(``TIME``), so workers agree on grace periods and windows (the ``now`` the gate passes is
for the in-memory books and is not used).

:class:`RedisSeats` keeps, per worker, the holders of the seats claimed there (holders are
live objects; Redis knows only their worker and seat ID). When a rule ends a holder on another
worker (a TAKEOVER, a revoked ticket) it calls ``evict_remote(worker_id, seat_id, reason)``;
the bus between workers delivers that to the other worker's :meth:`RedisSeats.evict_local`.
:meth:`RedisSeats.forget_worker` turns a dead worker's live seats into dropped ones.

:class:`RedisAttempts` counts attempts before they are checked, like :class:`AttemptLimiter`:
an attempt in flight is an entry in a sorted set with an expiry (``pending_ttl``), so a worker
that dies mid-check does not hold places forever. An attempt held back only by attempts in
flight polls with a short backoff, up to ``max_wait``; an answer on its own worker wakes the
first waiter there at once (one per answer; one woken for a place it does not take passes the
wake-up on, so a refusal reaches them all quickly).

Redis unreachable (or slower than ``timeout``): a decision raises :class:`Refusal` with
``unavailable`` (retryable); nobody is let in on a decision that was not made. Releases are
written in the background and retried until Redis answers.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from webinar.i18n import _
from webinar.ids import client_key
from webinar.rooms.reasons import ByeReason
from webinar.tasks import stop_tasks

from .books import Counted
from .grants import Refusal, RefusalCode, SecondDevice
from .limiter import FAILURES_PER_CLIENT, FAILURES_PER_EVENT, WINDOW_SECONDS, WaitQueues
from .seats import Holder, group_full_message, in_use_message

logger = logging.getLogger(__name__)

#: Delivers an eviction to the worker holding a seat (the bus calls its ``evict_local``).
EvictRemote = Callable[[int, str, ByeReason], Awaitable[None]]

#: Seconds a refused ``unavailable`` entry is told to wait.
UNAVAILABLE_RETRY_AFTER = 3
#: Longest a decision waits for Redis before it is refused as ``unavailable``.
REDIS_TIMEOUT = 2.0


class Unavailable(Exception):
    """Redis could not be reached (or did not answer in time)."""


def unavailable() -> Refusal:
    return Refusal(
        RefusalCode.UNAVAILABLE,
        _(
            "entry cannot be checked right now (the shared ticketing store is unreachable);"
            " try again in %(seconds)s s"
        )
        % {"seconds": UNAVAILABLE_RETRY_AFTER},
        retry_after=UNAVAILABLE_RETRY_AFTER,
    )


@contextmanager
def _refusing() -> Iterator[None]:
    try:
        yield
    except Unavailable:
        raise unavailable() from None


async def _run(script: Any, keys: list[str], args: list[str | int | float], within: float) -> Any:
    """Run a registered script; :class:`Unavailable` when Redis cannot answer."""
    try:
        async with asyncio.timeout(within):
            return await script(keys=keys, args=args)
    except (RedisError, OSError, TimeoutError) as exc:
        raise Unavailable(str(exc) or type(exc).__name__) from exc


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be more than 0, not {value!r}")


def _not_negative(**values: float) -> None:
    for name, value in values.items():
        if not value >= 0:
            raise ValueError(f"{name} must be 0 or more, not {value!r}")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# Shared by the scripts: the Redis clock in milliseconds.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ------------------------------------------------------------------------------------ seats

# The seats' epoch, "born:token": set when missing, i.e. on a fresh Redis or one restarted
# without its data, which lost every seat. Workers put their live seats back when they see a
# new epoch (they look every ``check_interval``); while it is younger than ``settle``, no
# admission is decided.
_EPOCH = """
local function epoch(key, token, settle)
  local e = redis.call('GET', key)
  if not e then
    e = string.format('%d', now) .. ':' .. token
    redis.call('SET', key, e)
  end
  local born = tonumber(string.match(e, '^(%d+):'))
  return e, now - born < settle, settle - (now - born)
end
"""

# A ticket's seats: hash KEYS[1], seat ID -> {w: worker, c: client key, d: dropped at (ms)}.
# Each worker's set of the seat hashes where it holds a live seat: forget_worker reads it.
# tidy(): a hash with live seats never expires; one with only dropped ones expires with them.
_SEATS_TIDY = """
local function tidy(key, grace, worker_key, worker)
  local flat = redis.call('HGETALL', key)
  local live, mine = false, false
  for i = 1, #flat, 2 do
    local s = cjson.decode(flat[i + 1])
    if not s.d then
      live = true
      if s.w == worker then mine = true end
    end
  end
  if #flat == 0 then
  elseif live then redis.call('PERSIST', key)
  else redis.call('PEXPIRE', key, grace) end
  if worker_key ~= nil and not mine then redis.call('SREM', worker_key, key) end
end
"""

# KEYS: the ticket's seats, the worker's set, the epoch. ARGV: capacity, takeover (1/0),
# client key, worker, new seat ID, grace (ms), epoch token, settle (ms), own live IDs...
# Returns {'ok', epoch, worker, seat, worker, seat, ...} (the live seats to evict), or
# {'in-use' | 'full' | 'settling', epoch}.
_CLAIM = (
    _NOW
    + _EPOCH
    + """
local e, settling = epoch(KEYS[3], ARGV[7], tonumber(ARGV[8]))
if settling then return {'settling', e} end
local capacity, takeover, client, worker = tonumber(ARGV[1]), ARGV[2] == '1', ARGV[3], ARGV[4]
local grace = tonumber(ARGV[6])
local mine = {}
for i = 9, #ARGV do mine[ARGV[i]] = true end
local flat = redis.call('HGETALL', KEYS[1])
local own, others = {}, {}
-- A live seat of a worker that registered (webinar.cluster.registry) and whose entry has
-- expired is a dropped one: its worker died (a node lost) before it could say so.
local prefix = string.gsub(KEYS[2], 'worker:[^:]*:seats$', '')
local function dead(w)
  if w == worker then return false end
  local id = tostring(w)
  return redis.call('ZSCORE', prefix .. 'workers', id) ~= false
    and redis.call('EXISTS', prefix .. 'worker:' .. id) == 0
end
for i = 1, #flat, 2 do
  local id, s = flat[i], cjson.decode(flat[i + 1])
  if not s.d and not mine[id] and dead(s.w) then
    s.d = now
    redis.call('HSET', KEYS[1], id, cjson.encode(s))
  end
  if s.d and now - s.d >= grace then
    redis.call('HDEL', KEYS[1], id)
  elseif (s.d and s.c == client) or (not s.d and mine[id]) then
    table.insert(own, id)
  else
    table.insert(others, {id, s})
  end
end
local evict = {'ok', e}
if #others >= capacity then
  if capacity == 1 and takeover then
    for _, o in ipairs(others) do
      redis.call('HDEL', KEYS[1], o[1])
      if not o[2].d then
        table.insert(evict, o[2].w)
        table.insert(evict, o[1])
      end
    end
  elseif capacity == 1 then
    return {'in-use', e}
  else
    return {'full', e}
  end
end
for _, id in ipairs(own) do redis.call('HDEL', KEYS[1], id) end
redis.call('HSET', KEYS[1], ARGV[5], cjson.encode({w = worker, c = client}))
redis.call('PERSIST', KEYS[1])
redis.call('SADD', KEYS[2], KEYS[1])
return evict
"""
)

# ARGV: seat ID, dropped (1/0), grace (ms), worker.
_RELEASE = (
    _NOW
    + _SEATS_TIDY
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  if ARGV[2] == '1' then
    local s = cjson.decode(raw)
    s.d = now
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(s))
  else
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
tidy(KEYS[1], tonumber(ARGV[3]), KEYS[2], ARGV[4])
return raw and 1 or 0
"""
)

# ARGV: grace (ms). Returns how many seats are held or kept.
_IN_USE = (
    _NOW
    + """
local grace = tonumber(ARGV[1])
local flat = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #flat, 2 do
  local s = cjson.decode(flat[i + 1])
  if s.d and now - s.d >= grace then redis.call('HDEL', KEYS[1], flat[i]) else n = n + 1 end
end
return n
"""
)

# Every seat of a ticket goes. KEYS: its seats, the epoch. ARGV: epoch token, settle (ms).
# Returns {'ok', epoch, worker, seat, ...} (the live ones) or {'settling', epoch, ms left}.
_EVICT_ALL = (
    _NOW
    + _EPOCH
    + """
local e, settling, left = epoch(KEYS[2], ARGV[1], tonumber(ARGV[2]))
if settling then return {'settling', e, left} end
local flat = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
local live = {'ok', e}
for i = 1, #flat, 2 do
  local s = cjson.decode(flat[i + 1])
  if not s.d then
    table.insert(live, s.w)
    table.insert(live, flat[i])
  end
end
return live
"""
)

# KEYS: the seats, the epoch. ARGV: seat ID, epoch token, settle (ms). Returns {held, epoch}:
# held 1/0, or 2 while settling (the seat may not be back yet).
_HOLDS = (
    _NOW
    + _EPOCH
    + """
local e, settling = epoch(KEYS[2], ARGV[2], tonumber(ARGV[3]))
if settling then return {2, e} end
return {redis.call('HEXISTS', KEYS[1], ARGV[1]), e}
"""
)

# KEYS: the epoch. ARGV: epoch token. Returns the epoch (set if missing).
_WATCH = (
    _NOW
    + _EPOCH
    + """
local e = epoch(KEYS[1], ARGV[1], 0)
return e
"""
)

# A worker puts its live seats back (after Redis lost them). KEYS: the worker's set, then one
# seat hash per seat; ARGV: worker, then seat ID and client key per seat.
_REASSERT = """
for i = 2, #KEYS do
  local id, client = ARGV[2 * i - 2], ARGV[2 * i - 1]
  if redis.call('HEXISTS', KEYS[i], id) == 0 then
    redis.call('HSET', KEYS[i], id, cjson.encode({w = ARGV[1], c = client}))
  end
  redis.call('PERSIST', KEYS[i])
  redis.call('SADD', KEYS[1], KEYS[i])
end
return #KEYS - 1
"""

# A dead worker's live seats become dropped (kept for the grace for their own client keys).
# KEYS[1]: its set of seat hashes. ARGV: worker, grace (ms). Returns how many were live.
_FORGET_WORKER = (
    _NOW
    + _SEATS_TIDY
    + """
local n = 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    local s = cjson.decode(flat[i + 1])
    if s.w == ARGV[1] and not s.d then
      s.d = now
      redis.call('HSET', key, flat[i], cjson.encode(s))
      n = n + 1
    end
  end
  tidy(key, tonumber(ARGV[2]), nil, nil)
end
redis.call('DEL', KEYS[1])
return n
"""
)


@dataclass(eq=False, slots=True)
class SharedSeat:
    """A seat claimed on this worker (the grant's ``seat``)."""

    seat_id: str
    ticket: str
    client_key: str
    holder: Holder | None
    #: Released, evicted or replaced here: later releases write nothing.
    gone: bool = False


class RedisSeats:
    """Device slots in Redis, shared by every worker (a :class:`SeatBook`)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        worker_id: int,
        evict_remote: EvictRemote,
        grace: float = 60.0,
        prefix: str = "webinar:",
        timeout: float = REDIS_TIMEOUT,
        settle: float = 3.0,
        check_interval: float = 1.0,
    ) -> None:
        """``settle``: after Redis lost its data (a restart without persistence), how long
        no admission is decided while every worker puts its live seats back; workers look
        for that every ``check_interval`` seconds (keep it well under ``settle``)."""
        _positive(timeout=timeout, check_interval=check_interval)
        _not_negative(grace=grace, settle=settle)
        self.redis = redis
        self.worker_id = worker_id
        self.evict_remote = evict_remote
        self.grace = grace
        self.prefix = prefix
        self.timeout = timeout
        self.settle = settle
        self.check_interval = check_interval
        #: The epoch of the seats in Redis this worker's live seats are written in.
        self._epoch: str | None = None
        self._token = secrets.token_hex(6)
        self._stale = asyncio.Event()  # a newer epoch was seen: put the seats back now
        self._watcher: asyncio.Task[None] | None = None
        self._started = False
        #: Live seats claimed on this worker, by seat ID.
        self._local: dict[str, SharedSeat] = {}
        #: Seats of this worker evicted before their claim's answer arrived (bounded).
        self._evicted_early: dict[str, None] = {}
        #: Releases being written (retried while Redis is away).
        self._unwritten: dict[str, tuple[SharedSeat, bool]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._in_use = redis.register_script(_IN_USE)
        self._holds = redis.register_script(_HOLDS)
        self._evict_all = redis.register_script(_EVICT_ALL)
        self._forget = redis.register_script(_FORGET_WORKER)
        self._watch = redis.register_script(_WATCH)
        self._reassert = redis.register_script(_REASSERT)

    @property
    def _epoch_key(self) -> str:
        return f"{self.prefix}seats:epoch"

    @property
    def _settle_ms(self) -> int:
        return max(0, round(self.settle * 1000))

    async def start(self) -> None:
        """Call at the worker's start. Live seats left under this worker's ID (a previous
        life of it that died) become dropped, as :meth:`forget_worker` does; then it watches
        for a Redis that lost its seats (on a fresh Redis the epoch is set now, before anyone
        joins). Never fails: Redis away, it is done when it is back (but for the former)."""
        if self._watcher is None or self._watcher.done():
            if not self._started and not self._local:
                try:
                    left = await self.forget_worker(self.worker_id)
                except Unavailable as exc:
                    logger.warning("seats of worker %d not checked (%s)", self.worker_id, exc)
                else:
                    if left:
                        logger.info("%d seats of a former worker %d dropped", left, self.worker_id)
            self._started = True
            with suppress(Unavailable):
                await self._look()
            self._watcher = asyncio.get_running_loop().create_task(self._watch_epoch())

    def _saw(self, epoch: object) -> None:
        seen = _text(epoch)
        if self._epoch is None and not self._local:
            self._epoch = seen
        elif seen != self._epoch:
            self._stale.set()
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch_epoch())

    async def _look(self) -> None:
        """Read the epoch; a new one: put this worker's live seats back first."""
        epoch = _text(await _run(self._watch, [self._epoch_key], [self._token], self.timeout))
        if epoch == self._epoch:
            return
        seats = list(self._local.values())
        if seats:
            await _run(
                self._reassert,
                [self._worker_key(self.worker_id), *(self._key(s.ticket) for s in seats)],
                [self.worker_id, *(x for s in seats for x in (s.seat_id, s.client_key))],
                self.timeout,
            )
            logger.warning(
                "Redis lost its seats: %d live seats of this worker put back", len(seats)
            )
        self._epoch = epoch

    async def _watch_epoch(self) -> None:
        while True:
            self._stale.clear()
            try:
                await self._look()
            except Unavailable as exc:
                logger.debug("seat epoch not read (%s)", exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stale.wait(), self.check_interval)

    def _key(self, ticket: str) -> str:
        return f"{self.prefix}seats:{ticket}"

    def _worker_key(self, worker_id: int) -> str:
        return f"{self.prefix}worker:{worker_id}:seats"

    @property
    def _grace_ms(self) -> int:
        return max(1, round(self.grace * 1000))

    async def claim(
        self,
        ticket: str,
        *,
        capacity: int,
        policy: SecondDevice,
        client_key: str,
        holder: Holder,
        now: float,
        resumes: Callable[[Holder], bool] = lambda _old: False,
    ) -> object:
        """See :meth:`Seats.claim`. Only this worker's live seats can be this connection's
        own (the same holder, or the one it resumes); a dropped one is by its client key."""
        mine = [
            s
            for s in self._local.values()
            if s.ticket == ticket
            and s.holder is not None
            and (s.holder is holder or resumes(s.holder))
        ]
        seat = SharedSeat(f"{self.worker_id}:{secrets.token_hex(8)}", ticket, client_key, holder)
        takeover = capacity == 1 and policy is SecondDevice.TAKEOVER
        try:
            reply = await _run(
                self._claim,
                [self._key(ticket), self._worker_key(self.worker_id), self._epoch_key],
                [
                    capacity,
                    int(takeover),
                    client_key,
                    self.worker_id,
                    seat.seat_id,
                    self._grace_ms,
                    self._token,
                    self._settle_ms,
                    *(s.seat_id for s in mine),
                ],
                self.timeout,
            )
        except Unavailable as exc:
            logger.warning("seat of %s not claimed: Redis unavailable (%s)", ticket, exc)
            # The script may have run with its answer lost: give the seat back when Redis can.
            seat.gone = True
            self._write_later(seat, dropped=False)
            raise unavailable() from None
        status = _text(reply[0])
        self._saw(reply[1])
        if status == "settling":
            raise unavailable()
        if status != "ok":
            if status == "in-use":
                raise Refusal(RefusalCode.TICKET_IN_USE, in_use_message())
            raise Refusal(RefusalCode.GROUP_FULL, group_full_message(capacity))
        for old in mine:  # replaced in Redis; the room replaces the resumed connection
            old.gone = True
            self._local.pop(old.seat_id, None)
        if self._evicted_early.pop(seat.seat_id, 1) is None:
            seat.gone = True  # taken over already: holds() says so
        else:
            self._local[seat.seat_id] = seat
        evicted = [_text(x) for x in reply[2:]]
        for worker, seat_id in zip(evicted[::2], evicted[1::2], strict=True):
            await self._evict(int(worker), seat_id, ByeReason.TAKEN_OVER)
        return seat

    async def _evict(self, worker_id: int, seat_id: str, reason: ByeReason) -> None:
        if worker_id == self.worker_id:
            await self.evict_local(seat_id, reason)
            return
        try:
            await self.evict_remote(worker_id, seat_id, reason)
        except Exception:
            logger.exception("could not tell worker %d to evict seat %s", worker_id, seat_id)

    async def evict_local(self, seat_id: str, reason: ByeReason) -> None:
        """End the holder of ``seat_id`` on this worker (its seat is gone from Redis already):
        what ``evict_remote`` of another worker calls, through the bus."""
        seat = self._local.pop(seat_id, None)
        if seat is None:
            if seat_id.startswith(f"{self.worker_id}:"):  # its claim may be under way here
                self._evicted_early[seat_id] = None
                while len(self._evicted_early) > 1000:
                    del self._evicted_early[next(iter(self._evicted_early))]
            return
        seat.gone = True
        if seat.holder is not None:
            seat.holder.evict(reason)

    async def holds(self, seat: object) -> bool:
        """Whether ``seat`` is still in Redis. When Redis cannot answer: whether it was not
        taken from this worker (an eviction still on its way ends the holder when it comes)."""
        if not isinstance(seat, SharedSeat):
            return True
        if seat.gone:
            return False
        try:
            reply = await _run(
                self._holds,
                [self._key(seat.ticket), self._epoch_key],
                [seat.seat_id, self._token, self._settle_ms],
                self.timeout,
            )
        except Unavailable as exc:
            logger.warning("seat %s not checked: Redis unavailable (%s)", seat.seat_id, exc)
            return True
        self._saw(reply[1])
        return int(reply[0]) != 0  # 2: settling, the seat may not be back yet

    def release(self, seat: object, now: float, *, dropped: bool) -> None:
        """See :meth:`Seats.release`; written in the background (retried while Redis is away)."""
        if not isinstance(seat, SharedSeat) or seat.gone:
            return
        seat.gone = True
        seat.holder = None
        self._local.pop(seat.seat_id, None)
        self._write_later(seat, dropped=dropped)

    def _write_later(self, seat: SharedSeat, *, dropped: bool) -> None:
        """Queue a release for the one writer task (which waits out a Redis outage)."""
        self._unwritten[seat.seat_id] = (seat, dropped)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_releases())

    async def _write_releases(self) -> None:
        delay = 0.05
        while self._unwritten:
            seat_id, (seat, dropped) = next(iter(self._unwritten.items()))
            try:
                await _run(
                    self._release,
                    [self._key(seat.ticket), self._worker_key(self.worker_id)],
                    [seat_id, int(dropped), self._grace_ms, self.worker_id],
                    self.timeout,
                )
            except Unavailable as exc:
                logger.warning("%d seats not released yet (%s)", len(self._unwritten), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.05
            if self._unwritten.get(seat_id) == (seat, dropped):
                del self._unwritten[seat_id]

    async def flush(self) -> None:
        """Wait until every release queued so far is written."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def close(self) -> None:
        """Stop writing and watching (a worker shutting down: releases not written yet are
        lost, and :meth:`forget_worker` of this worker frees its seats)."""
        writer, self._writer = self._writer, None
        watcher, self._watcher = self._watcher, None
        await stop_tasks([t for t in (writer, watcher) if t is not None])

    async def evict_all(self, ticket: str, reason: ByeReason) -> int:
        """See :meth:`Seats.evict_all`, on every worker. When Redis cannot be reached, the
        holders on this worker still leave (and their seats are freed once it is back)."""
        try:
            while True:
                reply = await _run(
                    self._evict_all,
                    [self._key(ticket), self._epoch_key],
                    [self._token, self._settle_ms],
                    self.timeout,
                )
                self._saw(reply[1])
                if _text(reply[0]) == "ok":
                    break
                await asyncio.sleep(int(reply[2]) / 1000)  # the seats are being put back
        except Unavailable as exc:
            logger.warning(
                "ticket %s ended on this worker only: Redis unavailable (%s)", ticket, exc
            )
            local = [s for s in self._local.values() if s.ticket == ticket]
            for seat in local:
                holder = seat.holder
                self.release(seat, 0.0, dropped=False)
                if holder is not None:
                    holder.evict(reason)
            return len(local)
        live = [_text(x) for x in reply[2:]]
        for worker, seat_id in zip(live[::2], live[1::2], strict=True):
            await self._evict(int(worker), seat_id, reason)
        return len(live) // 2

    async def in_use(self, ticket: str, now: float) -> int:
        with _refusing():
            return int(
                await _run(self._in_use, [self._key(ticket)], [self._grace_ms], self.timeout)
            )

    async def holders(self) -> set[int]:
        """The workers that hold seats (or held them and died). Raises :class:`Unavailable`."""
        pattern = f"{self.prefix}worker:*:seats"
        found: set[int] = set()
        try:
            async with asyncio.timeout(self.timeout):
                async for key in self.redis.scan_iter(match=pattern, count=500):
                    text = key.decode() if isinstance(key, bytes) else str(key)
                    middle = text[len(self.prefix) + len("worker:") : -len(":seats")]
                    if middle.isdigit():
                        found.add(int(middle))
        except (RedisError, OSError, TimeoutError) as exc:
            raise Unavailable(str(exc) or type(exc).__name__) from exc
        return found

    async def forget_worker(self, worker_id: int) -> int:
        """A worker died: its live seats become dropped (kept for the grace for their own
        client keys, then free). How many there were. Raises :class:`Unavailable`."""
        reply = await _run(
            self._forget, [self._worker_key(worker_id)], [worker_id, self._grace_ms], self.timeout
        )
        return int(reply)


# ------------------------------------------------------------------------------------ attempts

# KEYS: failures and pending of the client, failures and pending of the event (sorted sets:
# failures scored by time, pending by expiry). ARGV: has client, has event, per client,
# per event, window (ms), attempt ID, pending TTL (ms), take (1: count it when allowed).
# Returns {wait seconds, key}: wait 0 = counted (or allowed); else key 1/2 = only attempts in
# flight of the client/event hold it back (wait for them), 0 = failures do (refused).
# The logic is AttemptLimiter._check's.
_ACQUIRE = (
    _NOW
    + """
local window = tonumber(ARGV[5])
local function wait(f, p, limit)
  redis.call('ZREMRANGEBYSCORE', f, '-inf', now - window)
  redis.call('ZREMRANGEBYSCORE', p, '-inf', now)
  local failed, pending = redis.call('ZCARD', f), redis.call('ZCARD', p)
  if failed + pending < limit then return 0, false, failed + pending end
  local oldest = redis.call('ZRANGE', f, 0, 0, 'WITHSCORES')[2]
  if failed < limit or oldest == nil then return 1, true, failed + pending end
  local left = (window - (now - tonumber(oldest))) / 1000
  return math.max(1, math.floor(left + 0.999)), false, failed + pending
end
local has_client, has_event = ARGV[1] == '1', ARGV[2] == '1'
local own, own_pending, tracked = 0, false, 0
if has_client then
  own, own_pending, tracked = wait(KEYS[1], KEYS[2], tonumber(ARGV[3]))
end
local result, key
if not has_event or (has_client and tracked == 0) then
  result, key = own, (own_pending and 1 or 0)
else
  local event, event_pending = wait(KEYS[3], KEYS[4], tonumber(ARGV[4]))
  if own > 0 and not own_pending then result, key = own, 0
  elseif event > 0 and not event_pending then result, key = event, 0
  elseif own > 0 then result, key = 1, 1
  elseif event > 0 then result, key = 1, 2
  else result, key = 0, 0 end
end
if result == 0 and ARGV[8] == '1' then
  local ttl = tonumber(ARGV[7])
  for i, on in ipairs({has_client, has_event}) do
    if on then
      redis.call('ZADD', KEYS[2 * i], now + ttl, ARGV[6])
      redis.call('PEXPIRE', KEYS[2 * i], ttl)
    end
  end
end
return {result, key}
"""
)

# KEYS as for _ACQUIRE. ARGV: has client, has event, attempt ID, failed (1/0), window (ms).
_RESOLVE = (
    _NOW
    + """
for i, on in ipairs({ARGV[1] == '1', ARGV[2] == '1'}) do
  if on then
    redis.call('ZREM', KEYS[2 * i], ARGV[3])
    if ARGV[4] == '1' then
      redis.call('ZADD', KEYS[2 * i - 1], now, ARGV[3])
      redis.call('PEXPIRE', KEYS[2 * i - 1], tonumber(ARGV[5]))
    end
  end
end
return 1
"""
)


@dataclass(slots=True)
class RedisAttempt:
    """One attempt counted in Redis; resolve it once (see :class:`Counted`)."""

    limiter: RedisAttempts | None
    attempt_id: str
    keys: tuple[str | None, str | None]
    done: bool = False

    async def failed(self, now: float) -> None:
        await self._resolve(failed=True)

    async def forgive(self) -> None:
        await self._resolve(failed=False)

    async def _resolve(self, *, failed: bool) -> None:
        if self.done or self.limiter is None:
            return
        self.done = True
        await self.limiter._resolve(self, failed=failed)


@dataclass
class RedisAttempts:
    """Entry attempts counted in Redis, shared by every worker (an :class:`Attempts`).

    ``name`` keeps limiters apart (entries, sign-ins). ``clock`` and ``now`` arguments are
    not used: windows run on the Redis clock."""

    redis: aioredis.Redis
    name: str = "entry"
    per_client: int = FAILURES_PER_CLIENT
    per_event: int = FAILURES_PER_EVENT
    window: float = WINDOW_SECONDS
    #: Longest an attempt waits for attempts in flight to be answered before it is refused.
    max_wait: float = 10.0
    #: An attempt in flight not answered within this long no longer counts (its worker died).
    pending_ttl: float = 30.0
    prefix: str = "webinar:"
    timeout: float = REDIS_TIMEOUT
    #: Longest sleep between two looks while waiting for attempts in flight on other workers.
    poll: float = 0.25
    _acquire: Any = field(init=False, repr=False)
    _resolver: Any = field(init=False, repr=False)
    #: Attempts on this worker waiting for answers, by the key they wait on.
    _waiters: WaitQueues = field(init=False, repr=False, default_factory=lambda: WaitQueues())

    def __post_init__(self) -> None:
        _positive(
            per_client=self.per_client,
            per_event=self.per_event,
            window=self.window,
            pending_ttl=self.pending_ttl,
            timeout=self.timeout,
            poll=self.poll,
        )
        _not_negative(max_wait=self.max_wait)
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._resolver = self.redis.register_script(_RESOLVE)

    @staticmethod
    def _keys(client: str | None, event_id: str | None) -> tuple[str | None, str | None]:
        """The client's and the event's counting keys (as :class:`AttemptLimiter` names them)."""
        own = f"client:{client_key(client)}" if client else None
        return own, (f"event:{event_id}" if event_id is not None else None)

    def _names(self, keys: tuple[str | None, str | None]) -> list[str]:
        """Redis keys: failures and pending of the client, then of the event."""
        base = f"{self.prefix}limit:{self.name}:"
        return [f"{base}{kind}:{key or '-'}" for key in keys for kind in ("f", "p")]

    async def _try(
        self, client: str | None, event_id: str | None, attempt_id: str, *, take: bool
    ) -> tuple[int, int]:
        own, event = keys = self._keys(client, event_id)
        reply = await _run(
            self._acquire,
            self._names(keys),
            [
                int(own is not None),
                int(event is not None),
                self.per_client,
                self.per_event,
                max(1, round(self.window * 1000)),
                attempt_id,
                max(1, round(self.pending_ttl * 1000)),
                int(take),
            ],
            self.timeout,
        )
        return int(reply[0]), int(reply[1])

    async def retry_after(self, client: str | None, event_id: str | None) -> int:
        """Seconds to wait before the next attempt may be made (0: go ahead)."""
        with _refusing():
            return (await self._try(client, event_id, "-", take=False))[0]

    async def reserve(self, client: str | None, event_id: str | None, now: float) -> Counted:
        attempt = self._new(client, event_id)
        with _refusing():
            wait, _key = await self._try(client, event_id, attempt.attempt_id, take=True)
        if wait:
            raise _limited(wait)
        return attempt

    async def acquire(
        self, client: str | None, event_id: str | None, clock: Callable[[], float]
    ) -> Counted:
        """See :meth:`AttemptLimiter.acquire`: held back by attempts in flight only, it waits
        (woken by an answer on this worker, else looking again after a short backoff)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        attempt = self._new(client, event_id)
        delay = 0.02
        woken: str | None = None  # the key whose answer (on this worker) woke this attempt
        while True:
            try:
                with _refusing():
                    wait, which = await self._try(client, event_id, attempt.attempt_id, take=True)
            except Refusal:
                if woken is not None:
                    self._waiters.wake(woken)
                raise
            if not wait:
                return attempt
            left = deadline - loop.time()
            key = attempt.keys[which - 1] if which else None
            if woken is not None and (key != woken or left <= 0):
                self._waiters.wake(woken)  # not taking that place: the next waiter may
            if key is None or left <= 0:
                raise _limited(wait)
            # another worker took the place we were woken for: keep our turn
            woken = (
                key if await self._waiters.wait(key, min(delay, left), first=key == woken) else None
            )
            delay = min(delay * 2, self.poll)

    def uncounted(self) -> Counted:
        return RedisAttempt(None, "-", (None, None), done=True)

    def _new(self, client: str | None, event_id: str | None) -> RedisAttempt:
        return RedisAttempt(self, secrets.token_hex(8), self._keys(client, event_id))

    async def _resolve(self, attempt: RedisAttempt, *, failed: bool) -> None:
        own, event = attempt.keys
        try:
            await _run(
                self._resolver,
                self._names(attempt.keys),
                [
                    int(own is not None),
                    int(event is not None),
                    attempt.attempt_id,
                    int(failed),
                    max(1, round(self.window * 1000)),
                ],
                self.timeout,
            )
        except Unavailable as exc:
            # Its place stays taken until pending_ttl; a failure not written is not counted.
            logger.warning(
                "attempt %s not resolved: Redis unavailable (%s)", attempt.attempt_id, exc
            )
        for key in (own, event):
            if key is not None:
                self._waiters.wake(key)  # one waiter here per answer; the others look again anyway


def _limited(wait: int) -> Refusal:
    return Refusal(
        RefusalCode.RATE_LIMITED,
        _("too many wrong attempts; try again in %(seconds)s s") % {"seconds": wait},
        retry_after=wait,
    )


@dataclass(frozen=True, slots=True)
class SharedTicketing:
    """How one worker reaches the ticketing state every worker shares: give it to
    :func:`webinar.http.tickets.make_ticketing` and :func:`webinar.http.auth.login_limiter`,
    and route the bus's evictions for this worker to the seat book's ``evict_local``."""

    redis: aioredis.Redis
    worker_id: int
    #: Delivers an eviction to another worker (the bus); see :class:`RedisSeats`.
    evict_remote: EvictRemote
    prefix: str = "webinar:"

    def seats(self, *, grace: float = 60.0) -> RedisSeats:
        return RedisSeats(
            self.redis,
            worker_id=self.worker_id,
            evict_remote=self.evict_remote,
            grace=grace,
            prefix=self.prefix,
        )

    def attempts(
        self,
        name: str,
        *,
        per_client: int = FAILURES_PER_CLIENT,
        per_event: int = FAILURES_PER_EVENT,
        window: float = WINDOW_SECONDS,
    ) -> RedisAttempts:
        return RedisAttempts(
            self.redis,
            name=name,
            per_client=per_client,
            per_event=per_event,
            window=window,
            prefix=self.prefix,
        )
