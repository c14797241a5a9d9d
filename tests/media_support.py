"""What media tests with aiortc clients share: the clients a test makes, closed at its end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from webinar.client.peer import WebinarClient

LOOPBACK = ["127.0.0.1"]


@pytest.fixture
async def clients() -> AsyncIterator[list[WebinarClient]]:
    made: list[WebinarClient] = []
    yield made
    await asyncio.gather(*(c.close() for c in made))


def client(made: list[WebinarClient], base: str, mode: str = "count") -> WebinarClient:
    """A client of the server at ``base`` (``count``: counts packets; ``decode``: frames)."""
    c = WebinarClient(base, mode=mode, host_addresses=LOOPBACK)  # type: ignore[arg-type]
    made.append(c)
    return c
