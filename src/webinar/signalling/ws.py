"""The WebSocket endpoint: framing, size and rate limits, the outbound queue.

It decodes frames, enforces the limits and hands validated messages to the
:class:`Session`; it holds no protocol logic of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from webinar import i18n, logs
from webinar.formats import BadJson, parse_json
from webinar.ids import client_key
from webinar.rooms.reasons import ByeReason

from ..tasks import stop_task
from . import schema as s
from .session import Services, Session

logger = logging.getLogger(__name__)

RATE_BURST = 40
RATE_PER_SECOND = 20.0
MAX_REFUSED = 200  # refused messages before the connection is closed
OUTBOUND_QUEUE = 2000  # messages waiting for a slow client before it is dropped


class TokenBucket:
    __slots__ = ("_at", "_burst", "_rate", "_tokens")

    def __init__(self, burst: int, rate: float) -> None:
        self._burst = float(burst)
        self._rate = rate
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class AddressCount:
    """Open WebSockets per client address (:func:`webinar.ids.client_key`), with a cap.

    :meth:`take` counts the socket and checks the cap in one step, with no await between, so
    parallel upgrades from one address cannot all pass the check."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # 0: no limit
        self._open: dict[str, int] = {}

    def take(self, key: str) -> bool:
        n = self._open.get(key, 0) + 1
        if self.limit and n > self.limit:
            return False
        self._open[key] = n
        return True

    def give_back(self, key: str) -> None:
        n = self._open.get(key, 0) - 1
        if n > 0:
            self._open[key] = n
        else:
            self._open.pop(key, None)


class Connection:
    """One WebSocket: owns its writer task and its :class:`Session`."""

    def __init__(
        self, ws: web.WebSocketResponse, services: Services, remote: str | None = None
    ) -> None:
        self._ws = ws
        self._services = services
        self._hello_timer: asyncio.TimerHandle | None = None
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(OUTBOUND_QUEUE)
        self._closing: ByeReason | None = None
        self._refused = 0
        self._bucket = TokenBucket(RATE_BURST, RATE_PER_SECOND)
        self._traffic = services.traffic
        self.session = Session(services, self._enqueue, self.close, remote)

    def _enqueue(self, message: dict[str, Any]) -> None:
        if self._closing is not None:
            return
        try:
            self._queue.put_nowait(message)
            self._traffic.sent += 1
        except asyncio.QueueFull:
            logger.warning("client too slow; closing its connection")
            self.close(ByeReason.SLOW_CLIENT)

    def close(self, reason: ByeReason) -> None:
        if self._closing is None:
            self._closing = reason
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)

    async def _writer(self) -> None:
        while True:
            message = await self._queue.get()
            if message is None:
                await self._ws.close()
                return
            try:
                await self._ws.send_str(json.dumps(message, separators=(",", ":")))
            except (ConnectionError, RuntimeError):
                return

    def _no_hello(self) -> None:
        if not self.session.greeted:
            self.session.send(s.Bye(reason=ByeReason.NO_HELLO))
            self.close(ByeReason.NO_HELLO)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self._writer())
        self._hello_timer = loop.call_later(self._services.hello_timeout, self._no_hello)
        try:
            async for frame in self._ws:
                if frame.type is WSMsgType.TEXT:
                    await self._on_text(frame.data)
                elif frame.type is WSMsgType.BINARY:
                    with i18n.using(self.session.language):
                        message = i18n._("binary frames are not accepted")
                    self._refuse(s.ErrorCode.BAD_MESSAGE, message, None)
                elif frame.type is WSMsgType.ERROR:
                    break
                if self._closing is not None:
                    break
        finally:
            try:
                await self._finish(writer)
            finally:
                # Cancelled while finishing (aiohttp cancels the handler of a connection
                # lost when handler_cancellation is on): the writer must not be left pending.
                writer.cancel()

    async def _finish(self, writer: asyncio.Task[None]) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        try:
            if self._closing is ByeReason.SHUTDOWN or self.session.leaves_on_close:
                await self.session.leave(self._closing or ByeReason.LEFT)
            else:
                self.session.dropped()
        except Exception:
            logger.exception("leaving the room failed")
        try:
            await self.session.closed(self._closing or ByeReason.DISCONNECTED)
        except Exception:
            logger.exception("recording attendance failed")
        self.close(self._closing or ByeReason.DISCONNECTED)
        if self.session.participant is not None:
            logger.info("connection closed: %s", self._closing)
        try:
            await asyncio.wait_for(writer, 2.0)
        except (TimeoutError, asyncio.CancelledError):
            await stop_task(writer)
        if not self._ws.closed:
            await self._ws.close()

    async def _on_text(self, text: str) -> None:
        # Refusals of the message itself are in the person's language, like the replies.
        with i18n.using(self.session.language):
            await self._read_text(text)

    async def _read_text(self, text: str) -> None:
        self._traffic.received += 1
        limit = self._services.max_message_bytes
        if len(text) > limit and len(text.encode()) > limit:
            self._refuse(
                s.ErrorCode.TOO_LARGE,
                i18n.ngettext(
                    "messages are limited to %(num)d byte",
                    "messages are limited to %(num)d bytes",
                    limit,
                )
                % {"num": limit},
                None,
            )
            return
        if not self._bucket.take():
            self._refuse(s.ErrorCode.RATE_LIMITED, i18n._("too many messages; slow down"), None)
            return
        try:
            obj = parse_json(text, texts=False)  # the schema checks every string
        except BadJson as exc:
            self._refuse(s.ErrorCode.BAD_JSON, str(exc), None)
            return
        request_id = obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(request_id, int | str) or isinstance(request_id, bool):
            request_id = None
        try:
            message, request_id = s.parse_client_message(obj)
        except s.ProtocolError as exc:
            self._refuse(exc.code, exc.message, request_id)
            return
        try:
            await self.session.handle(message, request_id)
        except Exception:
            logger.exception("handling %s failed", type(message).__name__)
            self.session.error(s.ErrorCode.INTERNAL, i18n._("internal error"), request_id)

    def _refuse(self, code: s.ErrorCode, message: str, request_id: s.RequestId | None) -> None:
        self._refused += 1
        self.session.error(code, message, request_id)
        if self._refused > MAX_REFUSED:
            self.session.send(s.Bye(reason=ByeReason.PROTOCOL_VIOLATION))
            self.close(ByeReason.PROTOCOL_VIOLATION)


async def websocket_handler(
    request: web.Request,
    services: Services,
    connections: set[Connection],
    per_address: AddressCount,
) -> web.StreamResponse:
    key = client_key(request.remote)
    if not per_address.take(key):
        logger.warning("refused a WebSocket: %d open from %s", per_address.limit, key)
        raise web.HTTPTooManyRequests(text=i18n._("too many open connections from your address"))
    try:
        ws = web.WebSocketResponse(
            heartbeat=services.heartbeat_interval,
            max_msg_size=services.max_message_bytes * 4,
        )
        await ws.prepare(request)
        logs.bind(client=request.remote)
        connection = Connection(ws, services, request.remote)
        connection.session.user_agent = request.headers.get("User-Agent", "")
        connection.session.language = i18n.choose(
            request.cookies.get(i18n.COOKIE), None, request.headers.get("Accept-Language")
        )
        connections.add(connection)
        try:
            await connection.run()
        finally:
            connections.discard(connection)
    finally:
        per_address.give_back(key)
    return ws


async def shutdown_connections(connections: set[Connection]) -> None:
    """Tell every client the server is going away and close their sockets."""
    for connection in list(connections):
        connection.session.send(s.Bye(reason=ByeReason.SHUTDOWN))
        connection.close(ByeReason.SHUTDOWN)
