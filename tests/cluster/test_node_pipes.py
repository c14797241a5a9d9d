"""Media across nodes: a presenter on node 1 (worker 1001), subscribers on two workers of
node 2 (2001, 2002). One encrypted pipe per stream crosses from node 1 to node 2, to the
node's gateway for that stream; the other worker of node 2 gets the stream from the gateway
over a plain local pipe."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests import media_support
from tests.cluster.workers import cluster_workers
from tests.helpers import RunningServer
from tests.media_support import assert_delivered_like_reference, publish_camera_and_mic, until
from tests.metrics_support import value
from tests.redis_server import RedisServer
from webinar.app import PIPES, metrics_text
from webinar.client.peer import WebinarClient
from webinar.cluster.pipes import CLAIM_PREFIX, Pipes

pytestmark = pytest.mark.media
clients = media_support.clients
client = media_support.client


def pipes(w: RunningServer) -> Pipes:
    return w.server.app[PIPES]


def sample(text: str, series: str) -> float:
    """``series`` as written in the text format (labels in any order)."""
    name, _, labels = series.partition("{")
    return value(text, name, **dict(re.findall(r'(\w+)="([^"]*)"', labels)))


async def test_one_encrypted_pipe_per_stream_and_node(
    tmp_path: Path, redis_server: RedisServer, clients: list[WebinarClient]
) -> None:
    async with cluster_workers(tmp_path / "data", redis_server, (1001, 2001, 2002)) as servers:
        origin, b1, b2 = servers
        event = await origin.create_event()
        pres = client(clients, origin.base_url)
        await pres.join(event.event_id, "Pres", event.presenter_key)
        local = client(clients, origin.base_url)  # the reference: no pipe
        await local.join(event.event_id, "Local")
        edge = {b1.base_url: [client(clients, b1.base_url) for _ in range(3)]}
        edge[b2.base_url] = [client(clients, b2.base_url) for _ in range(3)]
        everyone = [c for group in edge.values() for c in group]
        await asyncio.gather(*(c.join(event.event_id, f"E{i}") for i, c in enumerate(everyone)))
        await publish_camera_and_mic(pres)
        counted = [local, *everyone]
        await assert_delivered_like_reference(counted, 4.0, min_video=80)

        # node 1 sends one encrypted copy of each stream, to node 2
        outs = pipes(origin).pipes_out()
        assert len(outs) == 2 and all(o.encrypted for o in outs)
        assert pipes(origin).counts()["pipes_in"] == 0
        streams = {o.producer.id for o in outs}
        gateway_of = {}
        for stream in streams:
            (gw,) = [w for w in (b1, b2) if any(s == stream for _r, s in pipes(w).gateway_of())]
            gateway_of[stream] = gw
        for w in (b1, b2):
            other = b2 if w is b1 else b1
            ins = {p.producer.id: p for p in pipes(w).pipes_in()}
            assert set(ins) == streams  # one copy of each stream on each worker
            for stream, pipe in ins.items():
                # from node 1, encrypted, on the gateway; from the gateway, plain, elsewhere
                assert pipe.encrypted is (gateway_of[stream] is w)
                assert pipe.stats.unauthenticated == pipe.stats.refused == 0
            fed = {o.producer.id for o in pipes(w).pipes_out()}
            assert fed == {s for s in streams if gateway_of[s] is w}
            assert not any(o.encrypted for o in pipes(w).pipes_out())
            assert pipes(w).workers() <= {1001, other.server.app[PIPES]._me}
        # the claims in Redis name the gateways
        redis = aioredis.Redis.from_url(redis_server.url)
        try:
            claims = {
                k.decode(): int((await redis.get(k)).split(b":")[0])
                async for k in redis.scan_iter(CLAIM_PREFIX + "*")
            }
            assert sorted(claims.values()) == sorted(pipes(gateway_of[s])._me for s in streams), (
                claims
            )
            assert all(k.endswith(":2") for k in claims)  # node 2's

            # /metrics: the pipes by scope
            text = metrics_text(origin.server.app)
            assert sample(text, 'webinar_pipe_open{direction="out",scope="node"}') == 2
            assert sample(text, 'webinar_pipe_open{direction="out",scope="worker"}') == 0
            sent = sample(text, 'webinar_pipe_bytes_total{direction="out",scope="node"}')
            assert sent > 100_000
            for w in (b1, b2):
                text = metrics_text(w.server.app)
                crossing = sum(gateway_of[s] is w for s in streams)
                assert sample(text, 'webinar_pipe_open{direction="in",scope="node"}') == crossing
                assert sample(text, 'webinar_pipe_open{direction="in",scope="worker"}') == (
                    2 - crossing
                )
                assert sample(text, 'webinar_pipe_packets_lost_total{scope="node"}') == 0
                assert (
                    sample(
                        text, 'webinar_pipe_refused_total{scope="node",reason="unauthenticated"}'
                    )
                    == 0
                )
                assert "webinar_pipe_retransmissions_total" in text
            taken = sum(
                sample(
                    metrics_text(w.server.app),
                    'webinar_pipe_bytes_total{direction="in",scope="node"}',
                )
                for w in (b1, b2)
            )
            assert 0.95 * sent <= taken <= sent

            # the video gateway's own subscribers leave: it keeps feeding the other worker
            video_id = next(o.producer.id for o in outs if o.producer.kind.value == "video")
            gw = gateway_of[video_id]
            other = b2 if gw is b1 else b1
            await asyncio.gather(*(c.close() for c in edge[gw.base_url]))
            await asyncio.sleep(1.0)
            assert video_id in {p.producer.id for p in pipes(gw).pipes_in()}
            assert len(pipes(origin).pipes_out()) == 2
            still = [c.stats.packets["video"] for c in [local, *edge[other.base_url]]]
            await asyncio.sleep(1.5)
            assert all(
                c.stats.packets["video"] > n + 40
                for c, n in zip([local, *edge[other.base_url]], still, strict=True)
            )
            # the last subscribers of node 2 leave: every pipe and every claim goes
            await asyncio.gather(*(c.close() for c in edge[other.base_url]))
            await until(lambda: not pipes(origin).pipes_out(), within=10)
            await until(lambda: not pipes(b1).pipes_in() and not pipes(b2).pipes_in(), 10)
            await until(lambda: not pipes(b1).pipes_out() and not pipes(b2).pipes_out(), 10)
            for _ in range(30):
                if not [k async for k in redis.scan_iter(CLAIM_PREFIX + "*")]:
                    break
                await asyncio.sleep(0.1)
            assert not [k async for k in redis.scan_iter(CLAIM_PREFIX + "*")]
            # the stream was never ended by a pipe closing: the local subscriber still gets it
            n = local.stats.packets["video"]
            await asyncio.sleep(0.5)
            assert local.stats.packets["video"] > n
        finally:
            await redis.aclose()
