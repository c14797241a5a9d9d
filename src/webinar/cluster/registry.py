"""The workers of one machine, as Redis knows them: each worker writes a key about itself
every second (with a 3-second TTL, so a dead worker drops out by itself) and its Prometheus
text next to it; any worker answering ``/healthz`` or ``/metrics`` reads every worker's.

Keys (all under :data:`webinar.cluster.redis.KEY_PREFIX`):

- ``webinar:worker:<id>``: JSON ``{"id", "pid", "rooms", "connections", "port", "pipe_host",
  "started_at", "draining"}``, TTL :data:`TTL_SECONDS`;
- ``webinar:metrics:<id>``: the worker's ``/metrics`` text, TTL :data:`METRICS_TTL_SECONDS`.

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
from webinar.cluster.worker import WorkerIdentity
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
        )


async def live_workers(redis: aioredis.Redis, workers: int) -> list[WorkerInfo]:
    """Every worker whose key has not expired, by ID. Raises RedisError/OSError."""
    keys = [worker_key(i) for i in range(1, workers + 1)]
    found: list[WorkerInfo] = []
    for raw in await redis.mget(keys):
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
        # Worker ID -> monotonic time its entry was last seen; every worker starts with the
        # whole grace (one that started first may not have written its entry yet).
        now = time.monotonic()
        self._seen: dict[int, float] = {wid: now for wid in range(1, identity.workers + 1)}
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
                found = await live_workers(self.redis, self.identity.workers)
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
                found = await live_workers(self.redis, self.identity.workers)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.debug("cannot read the workers from Redis: %s", exc)
            for wid in range(1, self.identity.workers + 1):
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

    async def metrics(self, own_text: str) -> str:
        """Every live worker's /metrics text, merged with a ``worker`` label."""
        wid = self.identity.worker_id
        texts: dict[int, str] = {wid: own_text}
        ids = [i for i in range(1, self.identity.workers + 1) if i != wid]
        try:
            async with asyncio.timeout(READ_TIMEOUT):
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
