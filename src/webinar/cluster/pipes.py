"""The control plane of media pipes between workers (the media side is webinar.sfu.pipe).

A worker whose participants should receive a stream published on another worker asks that
worker (the *origin*) over the bus for one copy:

1. edge → origin ``pipe-open`` {room, stream}: the origin opens a :class:`PipeOut` on the
   producer and answers its descriptor and address (and, between nodes, the pipe's keys);
2. the edge opens a :class:`PipeIn` (a producer on its own router, connected to that address)
   and tells its address: ``pipe-connect`` {pipe, address}; the origin starts sending.

One pipe per stream and edge: every subscriber of the stream on the edge consumes the edge's
copy. The edge closes its end when nobody there receives the stream any more (the room tells
it: :meth:`Pipes.release`), which tells the origin (RTCP BYE, and ``pipe-close`` in case that
datagram is lost); a producer that closes at the origin closes its copies. Pipes towards a
worker that died (or started again: another life) are closed by :meth:`Pipes.forget_dead`.

**Between nodes** (``node_of`` of the two workers differs; node 0 is the workers of one
machine, which keep plain pipes straight from the origin):

* the pipe is encrypted: the origin makes a fresh random SRTP master key and salt per pipe
  and per direction (:meth:`PipeKeys.fresh`) and hands them to the edge in its ``pipe-open``
  answer, i.e. through Redis (the bus); a pipe between nodes whose answer carries no keys is
  refused;
* one copy per node: the first worker of node B to need a stream of node A claims
  ``webinar:pipe-claim:<room>:<stream>:<B>`` in Redis (``SET NX``, value its worker ID, a TTL
  refreshed while it holds the copy) and pipes the stream from the origin: it is the node's
  *gateway* for that stream. Any other worker of B pipes it (plain, on B) from the gateway,
  whose ``pipe-open`` serves its :class:`PipeIn`'s producer, waiting for it while it is still
  being opened. A claim whose holder is not among the live workers is taken over. The
  gateway keeps its copy while it feeds local pipes even if its own subscribers left; when
  the copy closes (the stream ended, the origin or the gateway went away) the claim is
  deleted and the pipes fed from it close, so their workers ask again.

Keyframe requests from B's subscribers merge on each worker's producer (at most one PLI per
interval), then again on the gateway's copy, so at most one request per interval crosses to
A; NACKs from subscribers are answered by their own consumer's history on their own worker,
a loss on a pipe by the history of the pipe's sending end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from webinar.sfu import Producer, Router
from webinar.sfu.pipe import PipeIn, PipeKeys, PipeOut, PipeStats, pipe_descriptor

from .bus import Bus, BusError, Gone
from .registry import LiveWorkers
from .worker import node_of

logger = logging.getLogger(__name__)

#: (room id, stream id) → the local producer of that stream, if published here.
ProducerOf = Callable[[str, str], Producer | None]
RouterOf = Callable[[str], Router | None]
#: The live workers and the life (process) of each (the registry's ``live()``).
LiveWorkersOf = Callable[[], Awaitable[LiveWorkers]]

CLAIM_PREFIX = "webinar:pipe-claim:"
CLAIM_TTL = 10.0  # seconds; refreshed every third of it while held
GATEWAY_WAIT = 5.0  # how long a gateway's pipe-open waits for its copy being opened

# Delete a key only if it still holds the given value.
_DELETE_IF = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
# Refresh the TTLs of the keys that still hold the given value.
_REFRESH_IF = (
    "local n = 0 for i, key in ipairs(KEYS) do "
    "if redis.call('get', key) == ARGV[1] then redis.call('pexpire', key, ARGV[2]) n = n + 1 end "
    "end return n"
)

SCOPES = ("node", "worker")


def claim_key(room_id: str, stream_id: str, node: int) -> str:
    return f"{CLAIM_PREFIX}{room_id}:{stream_id}:{node}"


@dataclass(eq=False)
class _Copy:
    """This worker is its node's gateway for a stream: the cross-node PipeIn, held by the
    room (its own subscribers) and/or feeding local pipes."""

    claim: str
    ready: asyncio.Future[PipeIn]
    pipe: PipeIn | None = None
    held: bool = True
    feeds: set[str] = field(default_factory=set)  # ids of local PipeOuts fed from it


@dataclass(slots=True)
class _Totals:
    """Counters of closed pipes, per (direction, scope), so the totals only grow."""

    packets: int = 0
    wire_bytes: int = 0
    retransmitted: int = 0
    lost: int = 0
    unauthenticated: int = 0
    refused: int = 0
    cpu_ns: int = 0
    ingest_ns: int = 0

    def add(self, stats: PipeStats) -> None:
        self.cpu_ns += stats.cpu_ns
        self.ingest_ns += stats.ingest_ns
        self.packets += stats.packets
        self.wire_bytes += stats.wire_bytes
        self.retransmitted += stats.retransmitted
        self.lost += stats.lost
        self.unauthenticated += stats.unauthenticated
        self.refused += stats.refused


class Pipes:
    def __init__(
        self,
        bus: Bus,
        *,
        producer_of: ProducerOf,
        router_of: RouterOf,
        host: str = "127.0.0.1",
        ports: tuple[int, int] | None = None,
        redis: aioredis.Redis | None = None,
        live_workers: LiveWorkersOf | None = None,
        claim_ttl: float = CLAIM_TTL,
    ) -> None:
        self._bus = bus
        self._me = bus.worker_id
        #: This life of this worker ("id:pid"): a worker started again under the same ID is
        #: another life, whose pipes and claims are not the former one's.
        self._life = f"{bus.worker_id}:{os.getpid()}"
        self._node = node_of(bus.worker_id)
        self._producer_of = producer_of
        self._router_of = router_of
        self._host = host
        self._ports = ports
        self._redis = redis
        self._live_workers = live_workers
        self._claim_ttl = claim_ttl
        self._outs: dict[str, tuple[PipeOut, int]] = {}  # pipe id -> (pipe, edge worker)
        self._ins: dict[int, tuple[PipeIn, int, str]] = {}  # id(producer) -> (pipe, origin, id)
        self._out_pid: dict[str, int] = {}  # pipe id -> the edge's process (0: not known)
        self._in_pid: dict[int, int] = {}  # id(producer) -> the origin's process
        self._copies: dict[tuple[str, str], _Copy] = {}  # (room, stream) -> gateway copy
        self._fed_by: dict[str, tuple[str, str]] = {}  # PipeOut id -> the copy feeding it
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None
        # Counters of pipes already closed, so that the totals only grow.
        self._closed = {(d, s): _Totals() for d in ("out", "in") for s in SCOPES}
        bus.on("pipe-open", self._on_open)
        bus.on("pipe-connect", self._on_connect)
        bus.on("pipe-close", self._on_close)

    def _cross(self, worker: int) -> bool:
        """Whether a pipe with ``worker`` goes between nodes."""
        return node_of(worker) != self._node

    def _scope(self, worker: int) -> str:
        return "node" if self._cross(worker) else "worker"

    # ------------------------------------------------------------------ edge side

    async def relay(self, room_id: str, stream_id: str, worker: int) -> Producer:
        """A local copy of ``stream_id``, published on ``worker``, for this worker's room.
        From another node: through this node's gateway for the stream (maybe this worker)."""
        if not self._cross(worker) or self._redis is None:
            return await self._open_in(room_id, stream_id, worker)
        for _attempt in range(3):
            copy = self._copies.get((room_id, stream_id))
            if copy is not None:  # this worker is (becoming) the node's gateway
                pipe = await asyncio.wait_for(asyncio.shield(copy.ready), GATEWAY_WAIT)
                if pipe.closed:
                    continue
                copy.held = True
                return pipe.producer
            claim = claim_key(room_id, stream_id, self._node)
            ttl = int(self._claim_ttl * 1000)
            if await self._redis.set(claim, self._life, nx=True, px=ttl):
                return await self._gateway(room_id, stream_id, worker, claim)
            raw = await self._redis.get(claim)
            if raw is None:
                continue
            value = raw.decode() if isinstance(raw, bytes) else str(raw)
            holder_text, _, pid_text = value.partition(":")
            holder, pid = int(holder_text), int(pid_text or 0)
            if value == self._life or not await self._alive(holder, pid):
                await self._unclaim(claim, value)  # a stale claim: take it over
                continue
            try:
                return await self._open_in(room_id, stream_id, holder)
            except (BusError, LookupError) as exc:  # it stopped being the gateway
                logger.debug("gateway %d of %s: %s", holder, stream_id, exc)
                await asyncio.sleep(0.2)
        raise Gone(f"no gateway for {stream_id} on node {self._node}")

    async def _gateway(self, room_id: str, stream_id: str, origin: int, claim: str) -> Producer:
        """Claimed: pipe the stream from its origin, and serve it to this node's workers."""
        key = (room_id, stream_id)
        copy = _Copy(claim, asyncio.get_running_loop().create_future())
        self._copies[key] = copy
        self._keep_claims()
        try:
            producer = await self._open_in(room_id, stream_id, origin)
        except BaseException as exc:
            if self._copies.get(key) is copy:
                del self._copies[key]
            copy.ready.set_exception(LookupError(f"could not relay {stream_id}: {exc}"))
            copy.ready.exception()  # retrieved: nobody else may be waiting
            await self._unclaim(claim, self._life)
            raise
        pipe = self._ins[id(producer)][0]
        copy.pipe = pipe
        pipe.on_close(lambda _pipe: self._copy_closed(key, copy))
        copy.ready.set_result(pipe)
        return producer

    def _copy_closed(self, key: tuple[str, str], copy: _Copy) -> None:
        if self._copies.get(key) is copy:
            del self._copies[key]
        self._spawn(self._unclaim(copy.claim, self._life))

    async def _open_in(self, room_id: str, stream_id: str, worker: int) -> Producer:
        """A pipe from ``worker`` (the origin, or this node's gateway) into this worker."""
        router = self._router_of(room_id)
        if router is None:
            raise Gone(f"no room {room_id} on this worker")
        answer = await self._bus.request(
            worker, "pipe-open", {"room": room_id, "stream": stream_id, "pid": os.getpid()}
        )
        pipe_id = str(answer["pipe"])
        origin = _address(answer["address"])
        try:
            keys = PipeKeys.from_json(answer["keys"]).swapped() if "keys" in answer else None
            if keys is None and self._cross(worker):
                raise ValueError(f"worker {worker} offered a pipe between nodes without keys")
            pipe = await PipeIn.open(
                router,
                answer["descriptor"],
                host=self._host,
                ports=self._ports,
                peer=origin,
                keys=keys,
            )
        except BaseException:
            self._spawn(self._tell(worker, "pipe-close", {"pipe": pipe_id}))
            raise
        key = id(pipe.producer)
        self._ins[key] = (pipe, worker, pipe_id)
        self._in_pid[key] = int(answer.get("pid", 0))
        scope = self._scope(worker)
        pipe.on_close(lambda closed: self._forget_in(key, closed, scope))
        try:
            await self._bus.request(
                worker, "pipe-connect", {"pipe": pipe_id, "address": list(pipe.address)}
            )
        except BaseException:
            self._close_in(key)
            raise
        return pipe.producer

    def release(self, room_id: str, producer: Producer) -> None:
        """Nobody here receives ``producer`` (a copy from :meth:`relay`) any more."""
        key = id(producer)
        entry = self._ins.get(key)
        if entry is None:
            producer.close()
            return
        copy = self._copies.get((room_id, producer.id))
        if copy is not None and copy.pipe is entry[0]:
            copy.held = False
            if copy.feeds:
                return  # other workers of this node still get it through this one
        self._close_in(key)

    def _close_in(self, key: int) -> None:
        entry = self._ins.get(key)
        if entry is None:
            return
        pipe, worker, pipe_id = entry
        pipe.close()  # _forget_in counts it
        self._spawn(self._tell(worker, "pipe-close", {"pipe": pipe_id}))

    # ------------------------------------------------------------------ origin side

    async def _on_open(self, body: dict[str, Any], sender: int) -> dict[str, Any]:
        room_id, stream_id = str(body["room"]), str(body["stream"])
        copy = None if self._cross(sender) else self._copies.get((room_id, stream_id))
        if copy is not None:  # this node's gateway: serve the copy
            pipe_in = await asyncio.wait_for(asyncio.shield(copy.ready), GATEWAY_WAIT)
            producer: Producer | None = pipe_in.producer
        else:
            producer = self._producer_of(room_id, stream_id)
        if producer is None or producer.closed:
            raise Gone(f"stream {stream_id} is not published here")
        for _ in range(40):  # its codec is known once the publisher's media flows
            if producer.codec is not None or producer.closed:
                break
            await asyncio.sleep(0.05)
        keys = PipeKeys.fresh() if self._cross(sender) else None
        pipe = await PipeOut.open(producer, host=self._host, ports=self._ports, keys=keys)
        pipe_id = secrets.token_hex(8)
        self._outs[pipe_id] = (pipe, sender)
        self._out_pid[pipe_id] = int(body.get("pid", 0))
        if copy is not None:
            copy.feeds.add(pipe_id)
            self._fed_by[pipe_id] = (room_id, stream_id)
        scope = self._scope(sender)
        pipe.on_close(lambda closed: self._forget_out(pipe_id, closed, scope))
        answer = {
            "pipe": pipe_id,
            "descriptor": pipe_descriptor(producer),
            "address": list(pipe.address),
            "pid": os.getpid(),
        }
        if keys is not None:
            answer["keys"] = keys.to_json()
        return answer

    async def _on_connect(self, body: dict[str, Any], sender: int) -> dict[str, Any]:
        entry = self._outs.get(str(body["pipe"]))
        if entry is None or entry[1] != sender:
            raise Gone("no such pipe")
        entry[0].connect(_address(body["address"]))
        return {}

    async def _on_close(self, body: dict[str, Any], sender: int) -> None:
        entry = self._outs.get(str(body["pipe"]))
        if entry is not None and entry[1] == sender:
            entry[0].close()

    def _forget_in(self, key: int, pipe: PipeIn, scope: str) -> None:
        self._in_pid.pop(key, None)
        if self._ins.pop(key, None) is not None:
            pipe.settle_losses()
            self._closed["in", scope].add(pipe.stats)

    def _forget_out(self, pipe_id: str, pipe: PipeOut, scope: str) -> None:
        self._out_pid.pop(pipe_id, None)
        if self._outs.pop(pipe_id, None) is not None:
            self._closed["out", scope].add(pipe.stats)
        fed_by = self._fed_by.pop(pipe_id, None)
        copy = self._copies.get(fed_by) if fed_by is not None else None
        if copy is not None:
            copy.feeds.discard(pipe_id)
            if not copy.held and not copy.feeds and copy.pipe is not None:
                self._close_in(id(copy.pipe.producer))  # nobody on this node needs it

    # ------------------------------------------------------------------ claims

    async def _alive(self, worker: int, pid: int = 0) -> bool:
        if self._live_workers is None:
            return True
        try:
            return (await self._live_workers()).alive(worker, pid)
        except Exception:
            logger.debug("could not read the live workers")
            return True

    async def _unclaim(self, claim: str, holder: str) -> None:
        """Drop ``claim`` if it still holds ``holder`` (a life, "id:pid")."""
        if self._redis is None:
            return
        try:
            await self._redis.eval(_DELETE_IF, 1, claim, holder)  # type: ignore[misc]
        except RedisError as exc:
            logger.debug("could not drop the claim %s: %s", claim, exc)  # its TTL will

    def _keep_claims(self) -> None:
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_claims())
            self._tasks.add(self._refresher)
            self._refresher.add_done_callback(self._tasks.discard)

    async def _refresh_claims(self) -> None:
        """Keep the claims of the copies this worker holds while it holds them."""
        assert self._redis is not None
        while self._copies:
            await asyncio.sleep(self._claim_ttl / 3)
            claims = [copy.claim for copy in self._copies.values()]
            if not claims:
                break
            try:
                await self._redis.eval(  # type: ignore[misc]
                    _REFRESH_IF, len(claims), *claims, self._life, int(self._claim_ttl * 1000)
                )
            except RedisError as exc:
                logger.warning("could not refresh pipe claims: %s", exc)

    # ------------------------------------------------------------------ upkeep

    def forget_worker(self, worker: int) -> None:
        """``worker`` died: close the pipes to and from it."""
        for out, edge in list(self._outs.values()):
            if edge == worker:
                out.close()
        for pipe, origin, _pipe_id in list(self._ins.values()):
            if origin == worker:
                pipe.close()

    def forget_dead(self, live: LiveWorkers) -> None:
        """Close the pipes to and from workers that died, or whose life (process) is not
        the one the pipe was opened with: a worker started again under the same ID holds
        none of its former life's pipes."""
        for pipe_id, (out, edge) in list(self._outs.items()):
            if not live.alive(edge, self._out_pid.get(pipe_id, 0)):
                out.close()
        for key, (pipe, origin, _pipe_id) in list(self._ins.items()):
            if not live.alive(origin, self._in_pid.get(key, 0)):
                pipe.close()

    def workers(self) -> set[int]:
        """The workers this one has pipes with."""
        return {edge for _out, edge in self._outs.values()} | {
            origin for _pipe, origin, _id in self._ins.values()
        }

    def counts(self) -> dict[str, int]:
        return {"pipes_out": len(self._outs), "pipes_in": len(self._ins)}

    def open_pipes(self) -> dict[tuple[str, str], int]:
        """Open pipes by (direction, scope): ``scope`` is ``node`` between nodes."""
        counts = dict.fromkeys(self._closed, 0)
        for _out, edge in self._outs.values():
            counts["out", self._scope(edge)] += 1
        for _pipe, origin, _id in self._ins.values():
            counts["in", self._scope(origin)] += 1
        return counts

    def pipes_out(self) -> list[PipeOut]:
        return [pipe for pipe, _edge in self._outs.values()]

    def pipes_in(self) -> list[PipeIn]:
        return [pipe for pipe, _origin, _id in self._ins.values()]

    def gateway_of(self) -> set[tuple[str, str]]:
        """The (room, stream) pairs this worker is its node's gateway for."""
        return set(self._copies)

    def packets_out(self) -> int:
        return sum(pipe.stats.packets for pipe, _edge in self._outs.values())

    def packets(self) -> dict[str, int]:
        """RTP packets sent on this worker's pipes (``out``, as origin) and taken from them
        (``in``, as edge) since it started: monotonic, closed pipes included."""
        totals = self.totals()
        return {d: sum(totals[d, s].packets for s in SCOPES) for d in ("out", "in")}

    def totals(self) -> dict[tuple[str, str], _Totals]:
        """Counters by (direction, scope) since this worker started, closed pipes included:
        RTP packets and datagram bytes sent (out) or taken (in), retransmissions sent (out),
        packets lost (in: NACKed and not arrived within a second), datagrams refused (from
        anyone but the peer) or unauthenticated (refused by SRTP)."""
        totals = {key: dataclasses.replace(t) for key, t in self._closed.items()}
        for out, edge in self._outs.values():
            totals["out", self._scope(edge)].add(out.stats)
        for pipe, origin, _id in self._ins.values():
            pipe.settle_losses()
            totals["in", self._scope(origin)].add(pipe.stats)
        return totals

    async def close(self) -> None:
        claims = [copy.claim for copy in self._copies.values()]
        for out, _edge in list(self._outs.values()):
            out.close()
        for pipe, _origin, _id in list(self._ins.values()):
            pipe.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._copies.clear()
        with contextlib.suppress(Exception):  # else their TTL ends them
            async with asyncio.timeout(2.0):
                for claim in claims:
                    await self._unclaim(claim, self._life)

    async def _tell(self, worker: int, kind: str, body: dict[str, Any]) -> None:
        try:
            await self._bus.send(worker, kind, body)
        except Exception:
            logger.debug("could not tell worker %d %s", worker, kind)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _address(value: Any) -> tuple[str, int]:
    host, port = value
    return str(host), int(port)
