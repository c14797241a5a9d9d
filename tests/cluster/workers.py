"""Two workers of one machine inside one test process: two apps with their own stores on one
data folder, sharing a real redis-server. Each is reached on its own port, so a test chooses
which worker each participant lands on (the supervisor's shared port is tested with real
processes in tests/protocol/test_workers.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp.test_utils import TestServer

from tests.helpers import LOOPBACK, RunningServer, make_config
from tests.redis_server import RedisServer
from webinar.app import Peers, create_app
from webinar.cluster.registry import LiveWorkers
from webinar.storage.store import Store


@contextlib.asynccontextmanager
async def two_workers(
    data_dir: Path, redis: RedisServer, *, live: set[int] | None = None
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    config = make_config(data_dir)
    live_set = live if live is not None else {1, 2}

    async def live_workers() -> LiveWorkers:
        return LiveWorkers(frozenset(live_set))

    servers: list[RunningServer] = []
    async with contextlib.AsyncExitStack() as stack:
        for worker_id in (1, 2):
            store = Store(config.data_dir)
            await store.open()
            stack.push_async_callback(store.close)
            peers = Peers(worker_id=worker_id, redis_url=redis.url, live_workers=live_workers)
            server = TestServer(create_app(config, store, peers=peers), host=LOOPBACK)
            await server.start_server()
            stack.push_async_callback(server.close)
            servers.append(RunningServer(f"http://{LOOPBACK}:{server.port}", store, server))
        yield servers[0], servers[1]
