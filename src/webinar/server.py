"""Running the server process: the listener (HTTP or HTTPS), signals, graceful drain.

Signals:

- ``SIGTERM`` (systemd's stop, ``docker stop``): *drain*. The server stops admitting (new joins
  get the ``draining`` error, ``/readyz`` answers 503 ``draining``), tells every connected
  client with a ``draining`` message, and waits up to ``lifecycle.drain_seconds`` for the live
  rooms to end. Then every session gets ``bye {reason: "shutdown"}`` and the process exits 0.
- ``SIGINT`` (Ctrl-C), or a second ``SIGTERM`` while draining: stop now (the same goodbye,
  without the wait).
- ``SIGHUP``: read the TLS certificate and key again; new connections get the new certificate,
  open ones (and so every live room) carry on. A bad pair is logged and the old one kept.

A worker of ``webinar serve --workers N`` is this same process: it shares the HTTP port with
the other workers (``SO_REUSEPORT``: the kernel spreads new connections over them) and, with
``[server] worker_port_base``, also listens on its own loopback port. The supervisor passes
the signals above on to every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from webinar.app import CONNECTIONS, DRAINING, ROOMS, WORKER, create_app
from webinar.cluster.worker import DIRECT_HOST
from webinar.config import Config, ConfigError
from webinar.signalling import schema as s
from webinar.storage.store import Store
from webinar.tls import TlsContext

from .tasks import stop_tasks

logger = logging.getLogger(__name__)

#: How long closing sockets may take once everyone has been told to go.
SHUTDOWN_TIMEOUT = 5.0
#: How often the drain looks whether the rooms have ended.
DRAIN_POLL = 0.2
#: Longest a worker's cleanup may take once it stops (after the drain), before it exits anyway.
WORKER_CLEANUP_LIMIT = 30.0
#: A worker whose supervisor died (its private Redis with it) has this long to stop.
ORPHAN_LIMIT = 5.0
#: How often a worker looks whether its supervisor is still its parent.
PARENT_POLL = 0.5


def head_timeout_factory(server: web.Server, timeout: float) -> Callable[[], asyncio.BaseProtocol]:
    """aiohttp's protocol factory, with a deadline for the first request's head: a connection
    that has not sent a whole request line and headers ``timeout`` seconds after it opened
    (a silent socket, or headers dribbled a byte at a time) is closed. Later requests on a
    kept-alive connection fall under aiohttp's own keep-alive timeout."""
    loop = asyncio.get_running_loop()

    def expire(handler: asyncio.BaseProtocol) -> None:
        # aiohttp counts a request once its head is parsed; none yet means none came in time.
        if getattr(handler, "_request_count", 1) == 0:
            transport = getattr(handler, "transport", None)
            if transport is not None and not transport.is_closing():
                logger.info("closed a connection that sent no request head in %.0f s", timeout)
                transport.close()

    def factory() -> asyncio.BaseProtocol:
        handler = server()
        loop.call_later(timeout, expire, handler)
        return handler

    return factory


def _exit_now(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


def _exit_if_stuck(seconds: float) -> None:
    """A worker whose cleanup hangs (e.g. on a Redis that died with its supervisor) is ended
    after ``seconds``: it must never linger holding the shared port. A thread, not the event
    loop, keeps the time, so a blocked loop cannot stop it."""

    def expire() -> None:
        logger.error("cleanup still running after %.0f s: exiting", seconds)
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def _exit_when_orphaned(parent: int) -> None:
    """A worker whose supervisor is gone stops within :data:`ORPHAN_LIMIT`. The kernel's
    "parent died" signal starts the stop; this thread makes sure it ends, since the cleanup
    talks to the private Redis, which died with the supervisor, and under load a call to it
    can hang until its socket timeout. A thread, so a blocked loop cannot stop it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        time.sleep(ORPHAN_LIMIT)
        logger.error("the supervisor is gone and the stop took %.0f s: exiting", ORPHAN_LIMIT)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Stop(enum.Enum):
    DRAIN = "drain"
    NOW = "now"


class Signals:
    """Turns signals into a stop request; owns the reload tasks SIGHUP starts."""

    def __init__(self, reload: Callable[[], Awaitable[object]] | None) -> None:
        self._reload = reload
        self.requested: asyncio.Future[Stop] = asyncio.get_running_loop().create_future()
        self.now = asyncio.Event()  # stop at once, even in the middle of a drain
        self._tasks: set[asyncio.Task[None]] = set()

    def terminate(self) -> None:
        if self.requested.done():
            logger.info("second SIGTERM: stopping now")
            self.now.set()
        else:
            logger.info("SIGTERM: draining")
            self.requested.set_result(Stop.DRAIN)

    def interrupt(self) -> None:
        logger.info("SIGINT: stopping now")
        self.now.set()
        if not self.requested.done():
            self.requested.set_result(Stop.NOW)

    def hangup(self) -> None:
        if self._reload is None:
            logger.info("SIGHUP: no TLS certificate to reload")
            return
        task = asyncio.get_running_loop().create_task(self._run_reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_reload(self) -> None:
        assert self._reload is not None
        try:
            await self._reload()
        except ConfigError as exc:
            logger.error("SIGHUP: keeping the old certificate: %s", exc)

    async def close(self) -> None:
        await stop_tasks(list(self._tasks))


async def drain(app: web.Application, seconds: float, now: asyncio.Event) -> bool:
    """Stop admitting, tell the clients, wait for the rooms to end. True if they all did."""
    app[DRAINING][0] = True
    rooms = app[ROOMS]
    connections = app[CONNECTIONS]
    for connection in list(connections):
        connection.session.send(s.Draining(deadline_seconds=seconds))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while rooms.rooms() and not now.is_set():
        left = deadline - loop.time()
        if left <= 0:
            break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(DRAIN_POLL, left)):
                await now.wait()
    ended = not rooms.rooms()
    if ended:
        logger.info("drained: no live room is left")
    else:
        logger.info("drain over: closing %d live room(s)", len(rooms.rooms()))
    return ended


async def serve(
    config: Config, store: Store | None = None, *, on_listening: Callable[[], None] | None = None
) -> None:
    """Serve until SIGTERM (drain) or SIGINT (now); then close every connection and room."""
    tls = await TlsContext.create(config.tls) if config.tls.enabled else None
    app = create_app(config, store)
    if app[WORKER].clustered:  # under a supervisor, from before the startup talks to Redis
        _exit_when_orphaned(os.getppid())
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    loop = asyncio.get_running_loop()
    signals = Signals(tls.reload if tls is not None else None)
    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    identity = app[WORKER]
    listeners: list[asyncio.Server] = []
    try:
        assert runner.server is not None
        factory = head_timeout_factory(runner.server, config.http.header_timeout_seconds)
        ssl_context = tls.context if tls is not None else None
        listeners.append(
            await loop.create_server(
                factory,
                config.http.host,
                config.http.port,
                ssl=ssl_context,
                reuse_address=True,
                reuse_port=True if identity.clustered else None,
            )
        )
        if identity.direct_port is not None:
            listeners.append(
                await loop.create_server(
                    factory, DIRECT_HOST, identity.direct_port, ssl=ssl_context, reuse_address=True
                )
            )
        loop.add_signal_handler(signal.SIGTERM, signals.terminate)
        loop.add_signal_handler(signal.SIGINT, signals.interrupt)
        loop.add_signal_handler(signal.SIGHUP, signals.hangup)
        scheme = "https" if tls is not None else "http"
        logger.info("listening on %s://%s:%d", scheme, config.http.host, config.http.port)
        if identity.direct_port is not None:
            logger.info(
                "worker %d also on %s://%s:%d",
                identity.worker_id,
                scheme,
                DIRECT_HOST,
                identity.direct_port,
            )
        if on_listening is not None:
            on_listening()
        stop = await signals.requested
        if stop is Stop.DRAIN:
            await drain(app, config.lifecycle.drain_seconds, signals.now)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
            if identity.clustered and signum != signal.SIGHUP:
                # A worker is stopping already: one more SIGINT/SIGTERM (the supervisor's
                # second, or a late copy of the kernel's "parent died" signal, which comes once
                # for each of the supervisor's threads) ends it at once, without the
                # KeyboardInterrupt traceback the default handler would raise mid-cleanup.
                signal.signal(signum, _exit_now)
        await signals.close()
        for listener in listeners:
            listener.close()  # no new connections; runner.cleanup() closes the open ones
        if identity.clustered:
            _exit_if_stuck(WORKER_CLEANUP_LIMIT)
        await runner.cleanup()


def run(config: Config, store: Store | None = None) -> None:
    """Run :func:`serve` on a fresh (uvloop) event loop."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(config, store))
