"""Redis for the workers of one machine: the client connection, and the private
``redis-server`` the supervisor runs when no ``[cluster] redis_url`` is configured.

The connection has short socket timeouts, retries with back-off on connection errors and
checks its health before reuse, so a Redis that goes away makes calls fail fast (callers log and
carry on); it never takes a worker down. The private server listens only on a Unix socket
(mode 700) in the data dir, keeps nothing on disk, and lives and dies with the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

#: Every key the server writes starts with this.
KEY_PREFIX = "webinar:"
#: Seconds one Redis call (or connecting) may take before it fails.
SOCKET_TIMEOUT = 2.0
#: A pooled connection idle this long is pinged before it is used again.
HEALTH_CHECK_SECONDS = 5
#: What to install or configure, said when Redis is needed and missing.
MISSING_REDIS = (
    "more than one worker needs Redis: install redis-server (e.g. apt install redis-server)"
    " or set [cluster] redis_url (WEBINAR_CLUSTER_REDIS_URL)"
)
#: Longest path of a Unix socket (sun_path) with room to spare.
_MAX_SOCKET_PATH = 100


class RedisMissing(RuntimeError):
    """No Redis URL and no redis-server binary."""


def client(url: str) -> aioredis.Redis:
    """A client for ``url`` with the settings above; it connects on first use."""
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=2)
    return aioredis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=retry,
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        decode_responses=False,
    )


async def connect(url: str) -> aioredis.Redis:
    """A client for ``url``, pinged once: an unreachable Redis is logged, not raised (the
    client connects again by itself on the next call)."""
    redis = client(url)
    try:
        await cast(Awaitable[bool], redis.ping())  # redis-py types it for sync and async
    except (RedisError, OSError) as exc:
        logger.warning("Redis at %s does not answer yet: %s", url, exc)
    return redis


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class PrivateRedis:
    """A ``redis-server`` on a Unix socket, started and stopped by the supervisor."""

    def __init__(self, data_dir: Path, binary: str | None = None) -> None:
        found = binary or redis_server_binary()
        if found is None:
            raise RedisMissing(MISSING_REDIS)
        self.binary = found
        folder = data_dir.resolve() / "redis"
        self._temporary = len(str(folder / "redis.sock")) > _MAX_SOCKET_PATH
        if self._temporary:
            # A Unix socket's path is limited (108 bytes): a deep data dir gets a temp folder.
            folder = Path(tempfile.mkdtemp(prefix="webinar-redis-"))
        self.folder = folder
        self.socket = folder / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [
            self.binary,
            *("--port", "0"),
            *("--unixsocket", str(self.socket)),
            *("--unixsocketperm", "700"),
            *("--dir", str(self.folder)),
            *("--save", ""),
            *("--appendonly", "no"),
            *("--daemonize", "no"),
            *("--loglevel", "warning"),
        ]

    def spawn(self) -> None:
        """Start the process (from the thread that will outlive it: the kernel's
        ``PR_SET_PDEATHSIG`` follows the thread that forked, so the supervisor's main one)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        from webinar.cluster.supervisor import die_with_parent

        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None,  # its warnings join the server's own log
            preexec_fn=die_with_parent,
            start_new_session=True,  # a Ctrl-C on the terminal is for the supervisor to handle
        )

    def ready(self) -> bool:
        """True once its socket is there; RuntimeError if it exited."""
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise RuntimeError(f"redis-server exited with code {code}")
        return self.socket.exists()

    def _started(self) -> None:
        assert self.process is not None
        logger.info("started a private redis-server (pid %d) on %s", self.process.pid, self.url)

    def start(self, within: float = 10.0) -> None:
        """Start it and wait for its socket (blocking: before the supervisor's loop runs)."""
        self.spawn()
        deadline = time.monotonic() + within
        while not self.ready():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not open {self.socket} in {within:g} s")
            time.sleep(0.02)
        self._started()

    async def restart(self, within: float = 10.0) -> None:
        """Start it again from the event loop's thread, waiting for its socket without blocking."""
        self.stop()
        self.spawn()
        for _ in range(int(within / 0.02)):
            if self.ready():
                self._started()
                return
            await asyncio.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not open {self.socket} in {within:g} s")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            logger.info("stopped the private redis-server (pid %d)", process.pid)
        with contextlib.suppress(OSError):
            self.socket.unlink(missing_ok=True)
            if self._temporary:
                self.folder.rmdir()
