"""The workers of a machine or of a cluster of nodes, as Redis knows them: each worker writes
a key about itself every second (with a 3-second TTL, so a dead worker drops out by itself) and
its Prometheus text next to it; any worker answering ``/healthz`` or ``/metrics`` reads the
others'. Membership is a sorted set, so workers of nodes started later are found too.

Keys (all under :data:`webinar.cluster.redis.KEY_PREFIX`):

- ``webinar:workers``: sorted set of worker IDs, scored by the Unix time of their last entry;
- ``webinar:worker:<id>``: JSON ``{"id", "pid", "rooms", "connections", "port", "pipe_host",
  "started_at", "draining", "node_url", "capacity", "cpu"}``, TTL :data:`TTL_SECONDS`;
- ``webinar:metrics:<id>``: the worker's ``/metrics`` text, TTL :data:`METRICS_TTL_SECONDS`.

Worker IDs carry their node (:func:`webinar.cluster.worker.node_of`); :func:`nodes` sums the
workers of each node for placement (webinar.cluster.placement).

Redis trouble is logged (once until it recovers) and never raised: a worker then reports
itself alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from webinar.cluster.redis import KEY_PREFIX
from webinar.cluster.worker import WorkerIdentity, node_of
from webinar.tasks import stop_task

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
TTL_SECONDS = 3
METRICS_TTL_SECONDS = 10
#: Longest wait for Redis while answering /healthz or /metrics.
READ_TIMEOUT = 1.0
#: A worker whose entry has been missing this long is dead, for :meth:`Registry.live_ids`
#: (on top of the entry's TTL: an entry lost with a restarted Redis is back within a second).
DEAD_AFTER_SECONDS = 3.0


MEMBERS_KEY = f"{KEY_PREFIX}workers"
#: Members not seen for this long are taken out of the membership set.
FORGET_SECONDS = 3600.0


def worker_key(worker_id: int) -> str:
    return f"{KEY_PREFIX}worker:{worker_id}"


def metrics_key(worker_id: int) -> str:
    return f"{KEY_PREFIX}metrics:{worker_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerInfo:
    worker_id: int
    pid: int
    rooms: int
    connections: int
    #: The worker's own loopback HTTP port, if it has one.
    port: int | None
    pipe_host: str
    #: Unix time the worker started.
    started_at: float
    draining: bool = False
    #: The URL browsers reach this worker's node at (a multi-node cluster), else "".
    node_url: str = ""
    #: The attendees this worker's node takes (``cluster.node_capacity``), 0: not a node.
    capacity: int = 0
    #: CPU this process uses (smoothed over ~10 s), in cores (1.0: one core busy).
    cpu: float = 0.0
    #: ``cluster.node_cpu_limit`` of its node.
    cpu_limit: float = 0.85
    #: People seated in rooms on this worker (joined, not merely connected).
    participants: int = 0

    @property
    def node(self) -> int:
        return node_of(self.worker_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.worker_id,
            "pid": self.pid,
            "rooms": self.rooms,
            "connections": self.connections,
            "port": self.port,
            "pipe_host": self.pipe_host,
            "started_at": self.started_at,
            "draining": self.draining,
            "node_url": self.node_url,
            "capacity": self.capacity,
            "cpu": round(self.cpu, 3),
            "cpu_limit": self.cpu_limit,
            "participants": self.participants,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkerInfo:
        port = data.get("port")
        return cls(
            worker_id=int(data["id"]),
            pid=int(data["pid"]),
            rooms=int(data["rooms"]),
            connections=int(data["connections"]),
            port=None if port is None else int(port),
            pipe_host=str(data.get("pipe_host", "")),
            started_at=float(data["started_at"]),
            draining=bool(data.get("draining", False)),
            node_url=str(data.get("node_url", "")),
            capacity=int(data.get("capacity", 0)),
            cpu=float(data.get("cpu", 0.0)),
            cpu_limit=float(data.get("cpu_limit", 0.85)),
            participants=int(data.get("participants", 0)),
        )


async def member_ids(redis: aioredis.Redis) -> list[int]:
    """The IDs of the workers that wrote an entry within :data:`FORGET_SECONDS` (alive or
    not: whether one is alive is whether its entry, kept by Redis's own clock, has expired,
    so the nodes' clocks need not agree)."""
    raw = await redis.zrange(MEMBERS_KEY, 0, -1)
    return sorted(int(member) for member in raw)


async def live_workers(redis: aioredis.Redis) -> list[WorkerInfo]:
    """Every worker whose key has not expired, by ID. Raises RedisError/OSError."""
    ids = await member_ids(redis)
    if not ids:
        return []
    found: list[WorkerInfo] = []
    for raw in await redis.mget([worker_key(i) for i in ids]):
        if raw is None:
            continue
        try:
            found.append(WorkerInfo.from_json(json.loads(raw)))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed worker entry in Redis: %r", raw[:200])
    return found


@dataclass(frozen=True, slots=True)
class LiveWorkers:
    """Which workers are alive, and which life (process id) of each, when known."""

    ids: frozenset[int]
    pids: Mapping[int, int] = field(default_factory=dict)

    def alive(self, worker_id: int, pid: int) -> bool:
        """Whether ``pid`` of ``worker_id`` lives (an unknown life counts as alive)."""
        if worker_id not in self.ids:
            return False
        known = self.pids.get(worker_id)
        return known is None or pid == 0 or known == pid


class Registry:
    """This worker's entry in Redis, kept fresh by one owned task; reads of every worker."""

    def __init__(
        self,
        redis: aioredis.Redis,
        identity: WorkerIdentity,
        sample: Callable[[], WorkerInfo],
        metrics_text: Callable[[], str] | None = None,
    ) -> None:
        self.redis = redis
        self.identity = identity
        self._sample = sample
        self._metrics_text = metrics_text
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        # Worker ID -> monotonic time its entry was last seen; the workers of this machine
        # start with the whole grace (one that started first may not have written its entry
        # yet); others count once seen.
        now = time.monotonic()
        base = identity.worker_id - identity.local_id
        self._seen: dict[int, float] = (
            {base + k: now for k in range(1, identity.workers + 1)} if identity.clustered else {}
        )
        self._pids: dict[int, int] = {}  # the process each worker last registered

    async def start(self) -> None:
        await self.publish()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="registry")

    async def close(self) -> None:
        """Stop refreshing and take this worker's keys away."""
        task, self._task = self._task, None
        await stop_task(task)
        wid = self.identity.worker_id
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                await self.redis.delete(worker_key(wid), metrics_key(wid))
        except (RedisError, OSError, TimeoutError):
            pass

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            await self.publish()

    async def publish(self) -> None:
        """Write this worker's entry (and metrics); False-free: failures are logged."""
        wid = self.identity.worker_id
        entry = json.dumps(self._sample().to_json())
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.set(worker_key(wid), entry, ex=TTL_SECONDS)
                now = time.time()
                pipe.zadd(MEMBERS_KEY, {str(wid): now})
                pipe.zremrangebyscore(MEMBERS_KEY, "-inf", now - FORGET_SECONDS)
                if self._metrics_text is not None:
                    pipe.set(metrics_key(wid), self._metrics_text(), ex=METRICS_TTL_SECONDS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            if not self._failing:
                logger.warning("cannot reach Redis to register worker %d: %s", wid, exc)
            self._failing = True
            return
        if self._failing:
            logger.info("Redis answers again; worker %d registered", wid)
        self._failing = False

    async def live_workers(self) -> list[WorkerInfo]:
        """Every live worker (this one with fresh numbers); only this one if Redis fails."""
        own = self._sample()
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                found = await live_workers(self.redis)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("cannot read the workers from Redis: %s", exc)
            return [own]
        others = [info for info in found if info.worker_id != own.worker_id]
        return sorted([own, *others], key=lambda info: info.worker_id)

    async def live_ids(self) -> set[int]:
        """The IDs of the workers alive now, for deciding that one died (and ending its
        participants' places): a worker counts as alive until its entry has been missing for
        :data:`DEAD_AFTER_SECONDS` (from this registry's start, for one never seen). While
        Redis cannot say, every worker counts as alive (and gets the whole grace again once
        Redis answers): nobody is declared dead for want of an answer."""
        now = time.monotonic()
        self._seen[self.identity.worker_id] = now
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                found = await live_workers(self.redis)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.debug("cannot read the workers from Redis: %s", exc)
            for wid in self._seen:
                self._seen[wid] = now
            return set(self._seen)
        for info in found:
            self._seen[info.worker_id] = now
            self._pids[info.worker_id] = info.pid
        return {wid for wid, seen in self._seen.items() if now - seen <= DEAD_AFTER_SECONDS}

    async def live(self) -> LiveWorkers:
        """:meth:`live_ids` with the process of each (a worker restarted under the same ID
        is another life: the participants of its former one are gone)."""
        ids = await self.live_ids()
        pids = {**self._pids, self.identity.worker_id: os.getpid()}
        return LiveWorkers(frozenset(ids), pids)

    def known(self) -> set[int]:
        """Every worker this registry has seen (alive or not)."""
        return set(self._seen)

    async def metrics(self, own_text: str) -> str:
        """The /metrics text of every live worker of this node (a node is scraped on its
        own), merged with a ``worker`` label."""
        wid = self.identity.worker_id
        texts: dict[int, str] = {wid: own_text}
        ids: list[int] = []
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                ids = [
                    i
                    for i in await member_ids(self.redis)
                    if i != wid and node_of(i) == self.identity.node
                ]
                values = await self.redis.mget([metrics_key(i) for i in ids]) if ids else []
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("cannot read the other workers' metrics from Redis: %s", exc)
            values = []
        for other, raw in zip(ids, values, strict=False):
            if raw is not None:
                texts[other] = raw.decode() if isinstance(raw, bytes) else str(raw)
        return merge_metrics(texts)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def merge_metrics(texts: Mapping[int, str]) -> str:
    """Prometheus texts of several workers as one: each family's ``# HELP``/``# TYPE`` once,
    then its samples from every worker (by worker ID) with a ``worker="<id>"`` label. Each
    worker's counters stay its own series, so they stay monotonic (a restarted worker's
    series start again from 0, like any restarted process's)."""
    order: list[str] = []
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for wid in sorted(texts):
        family = ""
        for line in texts[wid].splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    family = parts[2]
                    if family not in headers:
                        order.append(family)
                        headers[family] = []
                        samples[family] = []
                    if not any(h.split(None, 2)[1] == parts[1] for h in headers[family]):
                        headers[family].append(line)
                continue
            match = _SAMPLE.match(line)
            if match is None:
                continue
            name, labels, value = match.groups()
            inner = labels[1:-1] if labels else ""
            label = f'worker="{wid}"' + (f",{inner}" if inner else "")
            if family not in samples:
                order.append(family)
                headers[family] = []
                samples[family] = []
            samples[family].append(f"{name}{{{label}}} {value}")
    out: list[str] = []
    for family in order:
        out.extend(headers[family])
        out.extend(samples[family])
    return "\n".join(out) + "\n"
