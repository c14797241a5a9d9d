"""The command line beside a running server: `webinar event delete` refuses a room people are
in (joined over the real signalling WebSocket) and takes it once they left; `webinar
healthcheck` asks the server's real /healthz."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

import webinar.cli as cli
from tests import protocol_fixtures
from tests.helpers import Person, RunningServer
from tests.postgres_server import database_for_tests
from tests.serving import free_port

server = protocol_fixtures.server
people = protocol_fixtures.people
enter = protocol_fixtures.Entrance(Person)


@pytest.fixture(autouse=True)
def same_store(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line reaches the running server's store (its PostgreSQL database too,
    when the suite runs on one)."""
    url = database_for_tests(server.store.data_dir)  # before WEBINAR_TEST_DATABASE goes
    for var in list(os.environ):
        if var.startswith("WEBINAR_"):
            monkeypatch.delenv(var)
    if url is not None:
        monkeypatch.setenv("WEBINAR_CLUSTER_DATABASE_URL", url)


async def command(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``webinar ARGV`` in a thread (it blocks; the server runs on this loop)."""
    code = await asyncio.to_thread(cli.main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def in_room(capsys: pytest.CaptureFixture[str], data: Path, event_id: str) -> int:
    code, out, err = await command(
        capsys, "event", "show", event_id, "--json", "--data-dir", str(data)
    )
    assert code == 0, err
    shown: dict[str, Any] = json.loads(out)
    return int(shown["counts"]["in_room"])


async def until_in_room(
    capsys: pytest.CaptureFixture[str], data: Path, event_id: str, count: int
) -> None:
    deadline = time.monotonic() + 10
    while (now := await in_room(capsys, data, event_id)) != count:
        assert time.monotonic() < deadline, f"{now} in the room, not {count}"
        await asyncio.sleep(0.1)


async def test_delete_refuses_a_live_room(
    server: RunningServer, people: list[Person], capsys: pytest.CaptureFixture[str]
) -> None:
    data = server.store.data_dir
    event = await server.create_event("Live one")
    ada = await enter(server, people, event, "Ada")
    await enter(server, people, event, "Grace")
    await until_in_room(capsys, data, event.display_id, 2)

    code, out, err = await command(
        capsys, "event", "delete", event.display_id, "--yes", "--data-dir", str(data)
    )
    assert (code, out) == (2, "")
    assert f"event {event.display_id} is live: 2 people are in its room" in err
    assert await server.store.get_event(event.event_id) is not None

    for person in people:  # `leave` ends the session at once (a dropped socket may resume)
        await person.request("leave")
    await until_in_room(capsys, data, event.display_id, 0)
    code, out, err = await command(
        capsys, "event", "delete", event.display_id, "--yes", "--data-dir", str(data)
    )
    assert code == 0, err
    assert f"Deleted event {event.display_id} (Live one)" in out
    assert await server.store.get_event(event.event_id) is None
    # The deleted event's ID admits nobody any more.
    assert ada.pid
    late: list[Person] = []
    try:
        await protocol_fixtures.refused("unknown-event", enter(server, late, event, "Late comer"))
    finally:
        await asyncio.gather(*(p.close() for p in late))


async def test_healthcheck_asks_the_running_server(
    server: RunningServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = server.server.port
    assert port is not None
    monkeypatch.setenv("WEBINAR_HTTP_HOST", "127.0.0.1")
    monkeypatch.setenv("WEBINAR_HTTP_PORT", str(port))
    code, out, err = await command(capsys, "healthcheck")
    assert code == 0, err
    assert out == f"http://127.0.0.1:{port}/healthz: OK\n"
    code, out, _err = await command(capsys, "healthcheck", "--quiet")
    assert (code, out) == (0, "")

    monkeypatch.setenv("WEBINAR_HTTP_PORT", str(free_port()))
    code, out, err = await command(capsys, "healthcheck", "--timeout", "2")
    assert (code, out) == (1, "")
    assert "/healthz:" in err
