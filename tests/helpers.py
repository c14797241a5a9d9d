"""Shared test helpers: a real server on a loopback port with a real SQLite store."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestServer

from webinar.app import ROOMS, create_app
from webinar.config import Config, IceConfig, RoomsConfig, SignallingConfig, TicketingConfig
from webinar.rooms.manager import RoomManager
from webinar.store import Event, Store

LOOPBACK = "127.0.0.1"


@dataclass
class RunningServer:
    base_url: str
    store: Store
    server: TestServer

    async def create_event(self, title: str = "Test webinar", **settings: object) -> Event:
        return await self.store.create_event(title, None, **settings)

    @property
    def rooms(self) -> RoomManager:
        return self.server.app[ROOMS]


def make_config(data_dir: Path, **rooms: int) -> Config:
    return Config(
        data_dir=data_dir,
        ice=IceConfig(host_addresses=(LOOPBACK,)),
        rooms=dataclasses.replace(RoomsConfig(), **rooms),
        signalling=SignallingConfig(),
        # Tests schedule far ahead (DST days in 2031) and many events per organiser; the
        # booking rules' defaults are tested in tests/protocol/test_ticketing.py.
        ticketing=TicketingConfig(max_lead_days=3660, max_active_events=1000),
    )


@contextlib.asynccontextmanager
async def running_server(
    data_dir: Path, config: Config | None = None, *, host: str = LOOPBACK
) -> AsyncIterator[RunningServer]:
    """``host`` is where HTTP listens (``base_url`` always names the loopback address)."""
    config = config or make_config(data_dir)
    store = Store(config.data_dir)
    await store.open()
    app = create_app(config, store)
    server = TestServer(app, host=host)
    await server.start_server()
    try:
        yield RunningServer(f"http://{LOOPBACK}:{server.port}", store, server)
    finally:
        await server.close()
        if store.is_open:
            await store.close()
