"""The worker registry on a real redis-server: entries, expiry, merged metrics, Redis gone."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.redis_server import RedisServer, redis_server  # noqa: F401
from webinar.cluster import redis as cluster_redis
from webinar.cluster import registry as reg
from webinar.cluster.registry import Registry, WorkerInfo
from webinar.cluster.worker import WorkerIdentity


def sample(worker_id: int, connections: int = 0) -> WorkerInfo:
    return WorkerInfo(
        worker_id=worker_id,
        pid=1000 + worker_id,
        rooms=0,
        connections=connections,
        port=9100 + worker_id,
        pipe_host="127.0.0.1",
        started_at=time.time(),
    )


def metrics(worker_id: int) -> str:
    head = "# HELP webinar_rooms Live rooms.\n# TYPE webinar_rooms gauge\n"
    return f"{head}webinar_rooms {worker_id}\n"


async def test_workers_see_each_other_and_leave(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    redis = await cluster_redis.connect(redis_server.url)
    registries = [
        Registry(
            redis,
            WorkerIdentity(worker_id=k, workers=2, redis_url=redis_server.url),
            sample=lambda k=k: sample(k, connections=k),
            metrics_text=lambda k=k: metrics(k),
        )
        for k in (1, 2)
    ]
    try:
        for registry in registries:
            await registry.start()
        seen = await registries[0].live_workers()
        assert [(w.worker_id, w.connections, w.port) for w in seen] == [
            (1, 1, 9101),
            (2, 2, 9102),
        ]
        text = await registries[1].metrics(metrics(2))
        assert 'webinar_rooms{worker="1"} 1' in text and 'webinar_rooms{worker="2"} 2' in text
        await registries[1].close()  # a worker that stops takes its entry away
        assert [w.worker_id for w in await registries[0].live_workers()] == [1]
    finally:
        for registry in registries:
            await registry.close()
        await redis.aclose()


async def test_a_dead_workers_entry_expires(
    redis_server: RedisServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reg, "TTL_SECONDS", 1)
    redis = await cluster_redis.connect(redis_server.url)
    try:
        dead = Registry(redis, WorkerIdentity(worker_id=2, workers=2), sample=lambda: sample(2))
        await dead.publish()  # written once, never refreshed: as if killed
        assert [w.worker_id for w in await reg.live_workers(redis)] == [2]
        await asyncio.sleep(1.3)
        assert await reg.live_workers(redis) == []
    finally:
        await redis.aclose()


async def test_without_redis_a_worker_reports_itself(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    redis = await cluster_redis.connect(redis_server.url)
    registry = Registry(redis, WorkerIdentity(worker_id=1, workers=2), sample=lambda: sample(1))
    try:
        await registry.start()
        redis_server.stop()
        started = time.monotonic()
        assert [w.worker_id for w in await registry.live_workers()] == [1]
        assert await registry.metrics(metrics(1)) == (
            "# HELP webinar_rooms Live rooms.\n# TYPE webinar_rooms gauge\n"
            'webinar_rooms{worker="1"} 1\n'
        )
        await registry.publish()  # logged, not raised
        assert time.monotonic() - started < 5
    finally:
        await registry.close()
        await redis.aclose()


async def test_live_ids_never_declare_a_worker_dead_for_want_of_redis(
    redis_server: RedisServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reg, "TTL_SECONDS", 1)
    monkeypatch.setattr(reg, "DEAD_AFTER_SECONDS", 0.5)
    redis = await cluster_redis.connect(redis_server.url)
    one = Registry(redis, WorkerIdentity(worker_id=1, workers=2), sample=lambda: sample(1))
    two = Registry(redis, WorkerIdentity(worker_id=2, workers=2), sample=lambda: sample(2))
    try:
        await one.publish()
        await two.publish()
        assert await one.live_ids() == {1, 2}
        redis_server.stop()
        await asyncio.sleep(0.7)
        assert await one.live_ids() == {1, 2}  # Redis cannot say: nobody is dead
        redis_server.start()  # empty: every entry was lost with it
        assert await one.live_ids() == {1, 2}  # still within the grace
        await two.publish()
        await asyncio.sleep(0.3)
        assert await one.live_ids() == {1, 2}
        await asyncio.sleep(1.5)  # worker 2's entry expired and it wrote no other: dead
        assert await one.live_ids() == {1}
    finally:
        await redis.aclose()


async def test_live_ids_give_every_worker_the_grace_at_start(
    redis_server: RedisServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reg, "DEAD_AFTER_SECONDS", 0.5)
    redis = await cluster_redis.connect(redis_server.url)
    one = Registry(redis, WorkerIdentity(worker_id=1, workers=3), sample=lambda: sample(1))
    try:
        redis_server.stop()
        assert await one.live_ids() == {1, 2, 3}  # never seen, but Redis cannot say
        redis_server.start()
        assert await one.live_ids() == {1, 2, 3}  # not seen yet: within the grace
        await asyncio.sleep(0.6)
        assert await one.live_ids() == {1}
    finally:
        await redis.aclose()
