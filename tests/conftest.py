"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    """An empty data folder (not created yet: the store creates it on open)."""
    return tmp_path / "data"


# A real redis-server per test that asks for it (tests/redis_server.py).
from tests.redis_server import redis_server  # noqa: E402, F401
