"""Shared test helpers: a real server on a loopback port with a real SQLite store."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp.test_utils import TestServer

from tests.postgres_server import database_for_tests
from webinar.app import ROOMS, create_app
from webinar.client.peer import SignallingClient
from webinar.config import Config, IceConfig, RoomsConfig, SignallingConfig, TicketingConfig
from webinar.rooms.manager import RoomManager
from webinar.storage.store import Event, Store, SyncStore

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


def open_sync_store(data_dir: Path) -> SyncStore:
    """A synchronous connection to the store of the install at ``data_dir`` (the one
    :func:`running_server` opens there)."""
    return SyncStore.open(data_dir, database_for_tests(data_dir))


@contextlib.asynccontextmanager
async def running_server(
    data_dir: Path, config: Config | None = None, *, host: str = LOOPBACK
) -> AsyncIterator[RunningServer]:
    """``host`` is where HTTP listens (``base_url`` always names the loopback address)."""
    config = config or make_config(data_dir)
    url = database_for_tests(config.data_dir)
    if config.cluster.database_url is None and url is not None:
        config = dataclasses.replace(
            config, cluster=dataclasses.replace(config.cluster, database_url=url)
        )
    store = Store.from_config(config)
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


class Person:
    """One signalling-only participant (a WebSocket, no media). Keeps every message."""

    def __init__(self, http: aiohttp.ClientSession, client: SignallingClient) -> None:
        self.http = http
        self.client = client
        self.joined: dict[str, Any] = {}
        self.seen: list[dict[str, Any]] = []
        client.on_message(self.seen.append)

    @property
    def pid(self) -> str:
        return str(self.joined["participant_id"])

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        return await self.client.request(type_, **fields)

    async def wait(self, type_: str, where: Any = None, within: float = 5.0) -> dict[str, Any]:
        return await self.client.wait_for(type_, within=within, where=where)

    async def close(self) -> None:
        await self.client.close()
        await self.http.close()


P = TypeVar("P", bound=Person)


async def connect_person(server: RunningServer, people: list[P], cls: type[P]) -> P:
    """A new signalling client that has said hello; closed by whoever owns ``people``."""
    http = aiohttp.ClientSession()
    client = SignallingClient(http, server.base_url.replace("http", "ws") + "/ws")
    await client.connect()
    person = cls(http, client)
    people.append(person)
    await client.request("hello", protocol=1)
    return person


async def join_person(
    server: RunningServer,
    people: list[P],
    cls: type[P],
    event: Event,
    name: str,
    credential: str | None = None,
    **extra: Any,
) -> P:
    """A participant who has joined ``event`` (``joined`` holds the answer)."""
    person = await connect_person(server, people, cls)
    fields: dict[str, Any] = {"event_id": event.event_id, "name": name, **extra}
    if credential is not None:
        fields["credential"] = credential
    person.joined = await person.request("join", **fields)
    return person
