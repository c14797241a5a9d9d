"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(params=["native", "python"])
def native_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test on the SFU's native path (the compiled ``_fanout``: fan-out and
    receive) and on the pure-Python one (``native.use(True/False)``); skips the native run
    where the module is not built (``python -m webinar.sfu.build``)."""
    from webinar.sfu import native

    chosen: str = request.param
    if chosen == "native" and native.module() is None:
        pytest.skip("the native module is not built (python -m webinar.sfu.build)")
    on = native.forward() is not None
    native.use(chosen == "native")
    try:
        yield chosen
    finally:
        native.use(on)


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    """An empty data folder (not created yet: the store creates it on open)."""
    return tmp_path / "data"


# A real redis-server per test that asks for it (tests/redis_server.py).
# A real PostgreSQL server (tests/postgres_server.py): one per run, a fresh database per test.
from tests.postgres_server import (  # noqa: E402, F401
    close_shared_server,
    own_postgres,
    postgres_server,
    postgres_url,
)
from tests.redis_server import redis_server  # noqa: E402, F401

# A real RTMP ingest (nginx with libnginx-mod-rtmp) per test that asks (tests/rtmp_server.py).
from tests.rtmp_server import rtmp_server  # noqa: E402, F401


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    close_shared_server()
