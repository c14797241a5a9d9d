"""Messages between the workers of one machine, over Redis pub/sub.

Each worker listens on its own channel (``webinar:bus:<id>``). A message is a JSON object
``{"kind", "body", "from", "rid"}``; :meth:`Bus.request` waits for the answer the handler of
``kind`` returns on the asking worker's channel. Pub/sub keeps no history: a message to a
worker that is not listening (dead, or Redis is down) is lost, and a request then times out
with :class:`BusError` — callers treat that as "try again later", never as an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], int], Awaitable[dict[str, Any] | None]]

PREFIX = "webinar:bus:"


class Gone(LookupError):
    """A handler was asked for what is not, or no longer, here (a stream that just ended, a
    room that closed): answered as an error, logged without a traceback."""


class BusError(Exception):
    """A request got no answer (the worker is gone, Redis is down, or the handler failed)."""


def channel(worker_id: int) -> str:
    return f"{PREFIX}{worker_id}"


class Bus:
    def __init__(self, redis: aioredis.Redis, worker_id: int) -> None:
        self._redis = redis
        self.worker_id = worker_id
        self._handlers: dict[str, Handler] = {}
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._handling: set[asyncio.Task[None]] = set()

    def on(self, kind: str, handler: Handler) -> None:
        """``handler(body, from_worker)`` answers a request (its return value) or a message."""
        self._handlers[kind] = handler

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen())
        try:
            await asyncio.wait_for(self._listening.wait(), 10.0)
        except TimeoutError:
            logger.warning("the bus is not listening yet (Redis unreachable); it keeps trying")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for pending in list(self._handling):
            pending.cancel()
        await asyncio.gather(*self._handling, return_exceptions=True)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(BusError("the bus closed"))

    async def send(self, worker_id: int, kind: str, body: dict[str, Any]) -> None:
        """Fire and forget (lost if nobody listens)."""
        await self._publish(worker_id, {"kind": kind, "body": body, "from": self.worker_id})

    async def request(
        self, worker_id: int, kind: str, body: dict[str, Any], *, wait: float = 5.0
    ) -> dict[str, Any]:
        rid = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        try:
            await self._publish(
                worker_id, {"kind": kind, "body": body, "from": self.worker_id, "rid": rid}
            )
            return await asyncio.wait_for(future, wait)
        except TimeoutError:
            raise BusError(f"worker {worker_id} did not answer {kind!r}") from None
        finally:
            self._waiting.pop(rid, None)

    async def _publish(self, worker_id: int, message: dict[str, Any]) -> None:
        try:
            await self._redis.publish(channel(worker_id), json.dumps(message))
        except RedisError as exc:
            raise BusError(f"cannot reach Redis: {exc}") from exc

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel(self.worker_id))
                self._listening.set()
                delay = 0.1
                while True:
                    raw = await pubsub.get_message(timeout=5.0)
                    if raw is not None:
                        self._dispatch(raw["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._listening.clear()
                logger.warning("bus: Redis connection lost (%s); reconnecting", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):  # already broken
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
            kind = str(message["kind"])
        except (ValueError, KeyError, TypeError):
            logger.warning("bus: a malformed message was dropped")
            return
        if kind == "reply":
            future = self._waiting.get(str(message.get("rid")))
            if future is not None and not future.done():
                body = message.get("body")
                if isinstance(body, dict) and "error" in body and len(body) == 1:
                    future.set_exception(BusError(str(body["error"])))
                else:
                    future.set_result(body if isinstance(body, dict) else {})
            return
        handler = self._handlers.get(kind)
        if handler is None:
            logger.warning("bus: no handler for %r", kind)
            return
        task = asyncio.get_running_loop().create_task(self._handle(handler, message))
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _handle(self, handler: Handler, message: dict[str, Any]) -> None:
        sender = int(message.get("from", 0))
        rid = message.get("rid")
        try:
            answer = await handler(message.get("body") or {}, sender)
        except Gone as exc:  # asked for what is no longer here (a stream just ended)
            logger.info("bus: %r: %s", message.get("kind"), exc)
            answer = {"error": str(exc) or type(exc).__name__}
        except Exception as exc:
            logger.exception("bus: handling %r failed", message.get("kind"))
            answer = {"error": str(exc) or type(exc).__name__}
        if rid is not None:
            try:
                await self._publish(sender, {"kind": "reply", "rid": rid, "body": answer or {}})
            except BusError:
                logger.warning("bus: could not answer worker %d", sender)
