"""The jobs lease on a real redis-server: one holder at a time across the cluster."""

from __future__ import annotations

import asyncio

from tests.redis_server import RedisServer, redis_server  # noqa: F401
from webinar.cluster import redis as cluster_redis
from webinar.cluster.leases import Lease


async def test_one_holder_renews_another_takes_over_when_it_stops(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    redis = await cluster_redis.connect(redis_server.url)
    changes: list[tuple[str, bool]] = []
    first = Lease(
        redis, "jobs", "a", ttl=1.0, renew=0.2, on_change=lambda h: changes.append(("a", h))
    )
    second = Lease(
        redis, "jobs", "b", ttl=1.0, renew=0.2, on_change=lambda h: changes.append(("b", h))
    )
    try:
        assert await first.try_take()
        assert not await second.try_take()
        assert await first.try_take()  # renewed
        first.start()
        second.start()
        await asyncio.sleep(1.5)
        assert first.held and not second.held
        await first.close()  # released at once: the other takes it at its next renewal
        await asyncio.sleep(0.5)
        assert second.held
        assert changes == [("a", True), ("a", False), ("b", True)]
    finally:
        await first.close()
        await second.close()
        await redis.aclose()


async def test_a_holder_that_cannot_reach_redis_stops_holding_before_the_ttl(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    redis = await cluster_redis.connect(redis_server.url)
    lease = Lease(redis, "jobs", "a", ttl=1.0, renew=0.3)
    try:
        assert await lease.try_take()
        redis_server.stop()
        assert not await lease.try_take() or lease.held  # held until its time is up
        await asyncio.sleep(1.0)
        assert not await lease.try_take()
    finally:
        redis_server.start()
        await lease.close()
        await redis.aclose()
