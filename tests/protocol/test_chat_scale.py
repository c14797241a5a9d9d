"""200 signalling-only clients in one room: every chat message reaches every client, in order.

Latency is measured by ``benchmarks/chat.py``, not here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import make_config, running_server
from webinar.client.peer import SignallingClient
from webinar.config import Config

CLIENTS = 200


def one_address_config(tmp_path: Path) -> Config:
    """All the clients come from loopback: lift the per-address socket cap, as an organiser
    whose audience sits behind one office NAT would."""
    config = make_config(tmp_path / "data")
    signalling = dataclasses.replace(config.signalling, max_sockets_per_address=0)
    return dataclasses.replace(config, signalling=signalling)


async def test_every_message_reaches_every_one_of_200_clients(tmp_path: Path) -> None:
    async with (
        running_server(tmp_path / "data", one_address_config(tmp_path)) as server,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        event = await server.create_event("Big room")
        url = server.base_url.replace("http", "ws") + "/ws"
        clients = [SignallingClient(http, url) for _ in range(CLIENTS)]
        received: list[list[int]] = [[] for _ in clients]

        def counter(box: list[int]) -> Any:
            def on_message(m: dict[str, Any]) -> None:
                if m["type"] == "chat-message":
                    box.append(m["message"]["seq"])

            return on_message

        async def enter(i: int) -> None:
            client = clients[i]
            await client.connect()
            client.on_message(counter(received[i]))
            await client.request("hello", protocol=1)
            await client.request("join", event_id=event.event_id, name=f"Person {i}")

        try:
            for start in range(0, CLIENTS, 25):
                await asyncio.gather(*(enter(i) for i in range(start, min(CLIENTS, start + 25))))
            # everyone says something, all at once
            replies = await asyncio.gather(
                *(c.request("chat-send", text=f"hello from {i}") for i, c in enumerate(clients))
            )
            assert sorted(r["seq"] for r in replies) == list(range(1, CLIENTS + 1))
            deadline = time.monotonic() + 60
            while any(len(r) < CLIENTS for r in received):
                assert time.monotonic() < deadline, sorted(len(r) for r in received)[:5]
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            expected = list(range(1, CLIENTS + 1))
            assert all(r == expected for r in received)  # all of them, once each, in order
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
