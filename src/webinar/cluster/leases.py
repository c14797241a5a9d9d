"""A lease in Redis: one holder across every node for work that must run once per cluster.

The periodic jobs (reminders, webhook delivery) run on one worker per cluster of nodes: worker
1 of every node competes for the ``jobs`` lease, and the holder runs them. The holder renews it
every :attr:`Lease.renew` seconds; it stops counting itself the holder when its last renewal is
older than the TTL less a margin (Redis unreachable, or someone else took it), so two holders
never overlap by more than clock drift within one process. A holder that dies lets the lease
expire; another takes it within the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from webinar.cluster.redis import KEY_PREFIX

logger = logging.getLogger(__name__)

_TAKE = """
local holder = redis.call('get', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def lease_key(name: str) -> str:
    return f"{KEY_PREFIX}lease:{name}"


class Lease:
    def __init__(
        self,
        redis: aioredis.Redis,
        name: str,
        holder: str,
        *,
        ttl: float = 10.0,
        renew: float = 2.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.redis = redis
        self.name = name
        self.holder = f"{holder}:{os.getpid()}"
        self.ttl = ttl
        self.renew = renew
        self.on_change = on_change
        self._take = redis.register_script(_TAKE)
        self._release = redis.register_script(_RELEASE)
        self._held_until = float("-inf")
        self._was = False
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return time.monotonic() < self._held_until

    async def try_take(self) -> bool:
        """Take or renew it now; whether it is held."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.renew):
                got = await self._take(
                    keys=[lease_key(self.name)], args=[self.holder, round(self.ttl * 1000)]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            logger.debug("lease %s not renewed: %s", self.name, exc)
            got = None  # held (if it was) until it would have expired
        if got == 1:  # counted from before the request: Redis's TTL started after it
            self._held_until = started + self.ttl - self.renew
        elif got == 0 and self._held_until > started:
            self._held_until = started  # someone else holds it
        self._changed()
        return self.held

    def _changed(self) -> None:
        held = self.held
        if held != self._was:
            self._was = held
            logger.info("%s the %s lease", "took" if held else "lost", self.name)
            if self.on_change is not None:
                self.on_change(held)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"lease-{self.name}")

    async def _run(self) -> None:
        while True:
            await self.try_take()
            await asyncio.sleep(self.renew)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.held:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._release(keys=[lease_key(self.name)], args=[self.holder])
        self._held_until = float("-inf")
        self._changed()
