"""Workers inside one test process: apps with their own stores on one data folder, sharing a
real redis-server. Each is reached on its own port, so a test chooses which worker each
participant lands on (the supervisor's shared port is tested with real processes in
tests/protocol/test_workers.py).

:func:`two_workers` is two workers of one machine (node 0); :func:`cluster_workers` takes any
worker IDs, node n's worker k being ``n * 1000 + k``: the workers of one node share a pipe
host, each node its own loopback address (``127.0.0.<node>``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from aiohttp.test_utils import TestServer

from tests.helpers import LOOPBACK, RunningServer, make_config
from tests.redis_server import RedisServer
from webinar.app import Peers, create_app
from webinar.cluster.registry import LiveWorkers
from webinar.cluster.worker import node_of
from webinar.storage.store import Store


@contextlib.asynccontextmanager
async def cluster_workers(
    data_dir: Path,
    redis: RedisServer,
    worker_ids: Iterable[int],
    *,
    live: set[int] | None = None,
) -> AsyncIterator[list[RunningServer]]:
    """One app per worker ID, in that order. ``live``: the registry's answer (a set the
    test may change); default every worker."""
    config = make_config(data_dir)
    ids = list(worker_ids)
    live_set = live if live is not None else set(ids)

    async def live_workers() -> LiveWorkers:
        return LiveWorkers(frozenset(live_set))

    servers: list[RunningServer] = []
    async with contextlib.AsyncExitStack() as stack:
        for worker_id in ids:
            store = Store(config.data_dir)
            await store.open()
            stack.push_async_callback(store.close)
            node = node_of(worker_id)
            peers = Peers(
                worker_id=worker_id,
                redis_url=redis.url,
                workers=len(ids),
                pipe_host=f"127.0.0.{node}" if node else LOOPBACK,
                live_workers=live_workers,
            )
            server = TestServer(create_app(config, store, peers=peers), host=LOOPBACK)
            await server.start_server()
            stack.push_async_callback(server.close)
            servers.append(RunningServer(f"http://{LOOPBACK}:{server.port}", store, server))
        yield servers


@contextlib.asynccontextmanager
async def two_workers(
    data_dir: Path, redis: RedisServer, *, live: set[int] | None = None
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    live_set = live if live is not None else {1, 2}
    async with cluster_workers(data_dir, redis, (1, 2), live=live_set) as (w1, w2):
        yield w1, w2
