"""A real ``redis-server`` (the Debian package; ``scripts/test`` installs it) for tests.

It is the supervisor's own :class:`webinar.cluster.redis.PrivateRedis`: a Unix socket in the
test's temporary folder, no persistence, stopped at the end of the test. ``stop()`` and
``start()`` take it away and bring it back on the same socket (the "Redis restarted
mid-room" tests); data is lost in between, as with a real restart without persistence.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from webinar.cluster.redis import PrivateRedis


class RedisServer(PrivateRedis):
    def __init__(self, folder: Path) -> None:
        super().__init__(folder)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
