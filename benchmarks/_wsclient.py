"""A signalling-only WebSocket client for the benchmarks that fill a room with people
(chat.py, reactions.py): hello, join, requests with their replies; every other message goes
to :meth:`SignallingClient.on_message`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp


class SignallingClient:
    def __init__(self, http: aiohttp.ClientSession, url: str, index: int) -> None:
        self.http = http
        self.url = url
        self.index = index
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 0
        self.reader: asyncio.Task[None] | None = None

    async def connect(self, event_id: str) -> None:
        self.ws = await self.http.ws_connect(self.url, heartbeat=30, max_msg_size=0)
        self.reader = asyncio.get_running_loop().create_task(self.read())
        await self.request("hello", protocol=1)
        await self.request("join", event_id=event_id, name=f"Client {self.index}")

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        assert self.ws is not None
        self.next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[self.next_id] = fut
        await self.ws.send_json({"type": type_, "id": self.next_id, **fields})
        reply = await asyncio.wait_for(fut, 30)
        if reply["type"] == "error":
            raise RuntimeError(f"{type_}: {reply['code']} {reply['message']}")
        return reply

    async def read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            now = time.perf_counter()
            message = json.loads(frame.data)
            fut = self.replies.pop(message.get("id", -1), None)
            if fut is not None:
                fut.set_result(message)
            else:
                self.on_message(message, now)

    def on_message(self, message: dict[str, Any], received: float) -> None:
        """A message that is not a reply; ``received`` is its ``time.perf_counter()``."""

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
