"""Server-wide limits: rooms.max_rooms refuses a room beyond the limit, with a typed error."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.helpers import make_config, running_server
from webinar.client.peer import ClientError, SignallingClient


async def test_max_rooms(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", max_rooms=1)
    async with running_server(tmp_path / "data", config) as server, aiohttp.ClientSession() as http:
        first = await server.create_event("First")
        second = await server.create_event("Second")
        clients = []
        for _ in range(3):
            ws = SignallingClient(http, server.base_url.replace("http", "ws", 1) + "/ws")
            await ws.connect()
            await ws.request("hello", protocol=1)
            clients.append(ws)
        await clients[0].request("join", event_id=first.event_id, name="A")
        with pytest.raises(ClientError) as refused:
            await clients[1].request("join", event_id=second.event_id, name="B")
        assert refused.value.code == "server-full"
        # The open room still takes people.
        await clients[2].request("join", event_id=first.event_id, name="C")
        for ws in clients:
            await ws.close()
