"""Media over two workers: a presenter on worker 1, subscribers on worker 2, through one pipe."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests import media_support
from tests.cluster.workers import two_workers
from tests.media_support import assert_delivered_like_reference, publish_camera_and_mic, until
from tests.redis_server import RedisServer
from webinar.app import PIPES
from webinar.client.peer import WebinarClient

pytestmark = pytest.mark.media
clients = media_support.clients
client = media_support.client


async def test_twenty_subscribers_on_another_worker_get_the_stream_through_one_pipe(
    tmp_path: Path, redis_server: RedisServer, clients: list[WebinarClient]
) -> None:
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        pres = client(clients, w1.base_url)
        await pres.join(event.event_id, "Pres", event.presenter_key)
        local = client(clients, w1.base_url)  # the reference: no pipe
        await local.join(event.event_id, "Local")
        viewer = client(clients, w2.base_url, "decode")
        await viewer.join(event.event_id, "Viewer")
        edge = [client(clients, w2.base_url) for _ in range(20)]
        await asyncio.gather(*(c.join(event.event_id, f"Edge {i}") for i, c in enumerate(edge)))
        await publish_camera_and_mic(pres)
        counted = [local, *edge]  # the viewer decodes: it counts frames
        await assert_delivered_like_reference(counted, 5.0, min_video=100)
        assert viewer.stats.frames["video"] > 50 and viewer.stats.frames["audio"] > 100
        # exactly one copy of each stream crossed to worker 2
        pipes_in = w2.server.app[PIPES].counts()["pipes_in"]
        pipes_out = w1.server.app[PIPES].counts()["pipes_out"]
        assert (pipes_in, pipes_out) == (2, 2)
        # the pipes close when the last subscriber on worker 2 leaves
        await asyncio.gather(*(c.close() for c in [viewer, *edge]))
        await until(lambda: w1.server.app[PIPES].counts()["pipes_out"] == 0, within=10)


async def test_media_keeps_flowing_while_redis_is_down(
    tmp_path: Path, redis_server: RedisServer, clients: list[WebinarClient]
) -> None:
    """Redis stopped mid-room: the relayed stream goes on (no packet touches Redis)."""
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        pres = client(clients, w1.base_url)
        await pres.join(event.event_id, "Pres", event.presenter_key)
        viewers = [client(clients, w1.base_url), client(clients, w2.base_url)]
        for i, c in enumerate(viewers):
            await c.join(event.event_id, f"Viewer {i}")
        await publish_camera_and_mic(pres)
        await until(lambda: all(c.stats.packets["video"] for c in viewers))
        redis_server.stop()
        before = [c.stats.packets["video"] + c.stats.packets["audio"] for c in viewers]
        await asyncio.sleep(3.0)
        during = [c.stats.packets["video"] + c.stats.packets["audio"] for c in viewers]
        assert all(d - b > 200 for d, b in zip(during, before, strict=True)), (before, during)
        redis_server.start()
        await asyncio.sleep(1.0)
        after = [c.stats.packets["video"] + c.stats.packets["audio"] for c in viewers]
        assert all(a > d for a, d in zip(after, during, strict=True))
