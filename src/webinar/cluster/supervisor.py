"""The supervisor of ``webinar serve --workers N``: it runs N worker processes (each a
``webinar serve`` with its :class:`~webinar.cluster.worker.WorkerIdentity` in the environment)
and, when no ``[cluster] redis_url`` is set, a private ``redis-server``.

- A worker that dies is started again (after 0.5 s, doubling up to 30 s while it keeps dying
  within 10 s of its start). One that exits with code 2 (bad configuration) is not: the
  supervisor stops everything and exits 2.
- The private redis-server is started again if it dies, and stopped after the last worker.
- ``SIGTERM`` is passed to every worker (each drains, docs/deployment.md); the supervisor exits
  when they all have. A second ``SIGTERM``, or ``SIGINT``, is passed on too (stop now).
  ``SIGHUP`` is passed on (the workers read the TLS pair again).
- Workers and the private redis-server get ``SIGINT``/``SIGTERM`` from the kernel if the
  supervisor itself dies (``PR_SET_PDEATHSIG``), so nothing is left behind.

The supervisor itself serves nothing, opens no database and needs no Redis client: migrations
and other once-per-start work happen before it starts (``webinar.cli``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence

from webinar.cluster.redis import PrivateRedis
from webinar.cluster.worker import WorkerIdentity

logger = logging.getLogger(__name__)

RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
#: A worker that ran this long before dying is restarted after RESTART_DELAY again.
STABLE_SECONDS = 10.0
#: How often the private redis-server is looked at.
REDIS_WATCH_SECONDS = 0.5
#: A worker's exit code for bad configuration: not restarted.
EXIT_USAGE = 2

_PR_SET_PDEATHSIG = 1
try:  # loaded now: the child side of fork must not load libraries
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """``preexec_fn``: the kernel sends ``signum`` to the child when the supervisor dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signum))


def check_port_free(host: str, port: int) -> None:
    """OSError (with a clear message) if ``host:port`` is taken; the workers share it later."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None


class Supervisor:
    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        identities: Sequence[WorkerIdentity],
        redis: PrivateRedis | None = None,
        *,
        restart_delay: float = RESTART_DELAY,
    ) -> None:
        self.command = list(command)
        self.env = dict(env)
        self.identities = list(identities)
        self.redis = redis
        self.restart_delay = restart_delay
        #: The live process of each worker, by worker ID.
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = False
        self.exit_code = 0
        self._stop: asyncio.Event | None = None
        self._terms = 0

    # ------------------------------------------------------------------ signals

    def _forward(self, signum: int) -> None:
        for process in list(self.processes.values()):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)

    def _stop_all(self, signum: int) -> None:
        self.stopping = True
        assert self._stop is not None
        self._stop.set()
        self._forward(signum)

    def terminate(self) -> None:
        self._terms += 1
        logger.info(
            "SIGTERM: %s every worker",
            "draining" if self._terms == 1 else "stopping now",
        )
        self._stop_all(signal.SIGTERM)

    def interrupt(self) -> None:
        logger.info("SIGINT: stopping every worker now")
        self._stop_all(signal.SIGINT)

    def hangup(self) -> None:
        logger.info("SIGHUP: passed on to every worker")
        self._forward(signal.SIGHUP)

    # ------------------------------------------------------------------ running

    async def run(self) -> int:
        """Run until told to stop and every worker has exited; the exit code."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        handlers = {
            signal.SIGTERM: self.terminate,
            signal.SIGINT: self.interrupt,
            signal.SIGHUP: self.hangup,
        }
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
        keepers = [
            loop.create_task(self._keep(identity), name=f"worker-{identity.worker_id}")
            for identity in self.identities
        ]
        watcher = loop.create_task(self._watch_redis(), name="redis-watch")
        try:
            await asyncio.gather(*keepers)
        finally:
            for signum in handlers:
                loop.remove_signal_handler(signum)
                if signum != signal.SIGHUP:
                    # Stopping already: a late SIGINT/SIGTERM (the process group's copy of a
                    # Ctrl-C arriving after ours) must not raise KeyboardInterrupt in the middle
                    # of closing the event loop (seen once: a half-closed loop's traceback at
                    # exit). The workers are told to stop, Redis is stopped after us.
                    signal.signal(signum, signal.SIG_IGN)
            self.stopping = True
            for task in (*keepers, watcher):
                task.cancel()
            await asyncio.gather(*keepers, watcher, return_exceptions=True)
            for process in list(self.processes.values()):  # only if cancelled mid-way
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        logger.info("every worker has exited")
        return self.exit_code

    async def _spawn(self, identity: WorkerIdentity) -> asyncio.subprocess.Process:
        env = {**self.env, **identity.to_env()}
        return await asyncio.create_subprocess_exec(
            *self.command,
            env=env,
            stdin=subprocess.DEVNULL,
            preexec_fn=functools.partial(die_with_parent, signal.SIGINT),
        )

    async def _keep(self, identity: WorkerIdentity) -> None:
        """Run one worker until the supervisor stops, starting it again when it dies."""
        loop = asyncio.get_running_loop()
        assert self._stop is not None
        delay = self.restart_delay
        wid = identity.worker_id
        while not self.stopping:
            started = loop.time()
            process = await self._spawn(identity)
            self.processes[wid] = process
            logger.info("worker %d started (pid %d)", wid, process.pid)
            code = await process.wait()
            del self.processes[wid]
            if self.stopping:
                stopped = (signal.SIGINT, signal.SIGTERM)
                if code != 0 and -code not in stopped and code - 128 not in stopped:
                    logger.warning("worker %d exited with code %d", wid, code)
                return
            if code == EXIT_USAGE:
                logger.error("worker %d refused its configuration; stopping every worker", wid)
                self.exit_code = EXIT_USAGE
                self._stop_all(signal.SIGINT)
                return
            if loop.time() - started >= STABLE_SECONDS:
                delay = self.restart_delay
            logger.error(
                "worker %d (pid %d) exited with code %d; starting it again in %.1f s",
                wid,
                process.pid,
                code,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()
            delay = min(delay * 2, MAX_RESTART_DELAY)

    async def _watch_redis(self) -> None:
        redis = self.redis
        if redis is None:
            return
        while not self.stopping:
            await asyncio.sleep(REDIS_WATCH_SECONDS)
            if self.stopping or redis.alive():
                continue
            logger.error("the private redis-server died; starting it again")
            try:
                await redis.restart()
            except (OSError, RuntimeError) as exc:
                logger.error("could not start redis-server again: %s", exc)


def run(
    command: Sequence[str],
    env: Mapping[str, str],
    identities: Sequence[WorkerIdentity],
    redis: PrivateRedis | None,
) -> int:
    """Start the private Redis (if any), supervise the workers until stopped, stop Redis."""
    if redis is not None:
        redis.start()
    try:
        supervisor = Supervisor(command, env, identities, redis)
        logger.info(
            "supervisor (pid %d): %d workers, Redis at %s",
            os.getpid(),
            len(identities),
            identities[0].redis_url if identities else "-",
        )
        return asyncio.run(supervisor.run())
    finally:
        if redis is not None:
            redis.stop()
