"""Graceful drain: SIGTERM to a real `webinar serve` process with clients in a room."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest

from tests.serving import ServerProcess, start_server
from webinar.client.peer import ClientError, SignallingClient


async def joined_client(
    http: aiohttp.ClientSession, server: ServerProcess, event_id: str, name: str, **extra: str
) -> tuple[SignallingClient, dict[str, object]]:
    ws = SignallingClient(http, server.base_url.replace("http", "ws", 1) + "/ws")
    await ws.connect()
    await ws.request("hello", protocol=1)
    joined = await ws.request("join", event_id=event_id, name=name, **extra)
    return ws, joined


def host_key(event: dict[str, str]) -> str:
    return parse_qs(urlparse(event["host_url"]).query)["key"][0]


async def test_sigterm_drains_until_the_room_ends(tmp_path: Path) -> None:
    server = start_server(tmp_path, {"WEBINAR_LIFECYCLE_DRAIN_SECONDS": "30"})
    try:
        await server.wait_healthy()
        event = server.create_event("Drained")
        async with aiohttp.ClientSession() as http:
            host, _ = await joined_client(
                http, server, event["event_id"], "Host", credential=host_key(event)
            )
            viewer, joined = await joined_client(http, server, event["event_id"], "Viewer")
            resume_token = str(joined["resume_token"])

            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            for client in (host, viewer):
                told = await client.wait_for("draining", within=10)
                assert told["deadline_seconds"] == 30

            async with http.get(server.base_url + "/readyz") as ready:
                assert ready.status == 503
                assert (await ready.json())["draining"] is True
            async with http.get(server.base_url + "/healthz") as health:
                assert health.status == 200  # alive, just not taking new people

            # Nobody new gets in; the error is typed.
            with pytest.raises(ClientError) as refused:
                await joined_client(http, server, event["event_id"], "Latecomer")
            assert refused.value.code == "draining"

            # Someone who dropped may come back to the room they were in.
            await viewer.close()
            again, rejoined = await joined_client(
                http, server, event["event_id"], "Viewer", resume_token=resume_token
            )
            assert rejoined["resumed"] is True

            # The host ends the event: the room is gone, the process exits long before 30 s.
            await host.request("end-for-all")
            assert (await again.wait_for("room-ended", within=10))["type"] == "room-ended"
            code = await server.wait_exit(15)
            assert code == 0
            assert time.monotonic() - started < 15
            await host.close()
            await again.close()
    finally:
        _out, err = server.stop()
    assert "Traceback" not in err, err
    assert "drained: no live room is left" in err


async def test_sigterm_closes_what_is_left_when_the_time_is_up(tmp_path: Path) -> None:
    server = start_server(tmp_path, {"WEBINAR_LIFECYCLE_DRAIN_SECONDS": "2"})
    try:
        await server.wait_healthy()
        event = server.create_event("Stays open")
        async with aiohttp.ClientSession() as http:
            viewer, _ = await joined_client(http, server, event["event_id"], "Viewer")
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            await viewer.wait_for("draining", within=10)
            bye = await viewer.wait_for("bye", within=10)
            assert bye["reason"] == "shutdown"
            assert time.monotonic() - started >= 1.5  # it did wait for the room first
            code = await server.wait_exit(10)
            assert code == 0
            assert time.monotonic() - started < 2 + 8  # the limit plus closing sockets
            await viewer.close()
    finally:
        _out, err = server.stop()
    assert "Traceback" not in err, err


async def test_second_sigterm_stops_at_once(tmp_path: Path) -> None:
    server = start_server(tmp_path, {"WEBINAR_LIFECYCLE_DRAIN_SECONDS": "600"})
    try:
        await server.wait_healthy()
        event = server.create_event("Impatient")
        async with aiohttp.ClientSession() as http:
            viewer, _ = await joined_client(http, server, event["event_id"], "Viewer")
            server.proc.send_signal(signal.SIGTERM)
            await viewer.wait_for("draining", within=10)
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            bye = await viewer.wait_for("bye", within=10)
            assert bye["reason"] == "shutdown"
            assert await server.wait_exit(10) == 0
            assert time.monotonic() - started < 8
            await viewer.close()
    finally:
        _out, err = server.stop()
    assert "Traceback" not in err, err


async def test_readyz_is_ready_when_not_draining(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        await server.wait_healthy()
        async with aiohttp.ClientSession() as http, http.get(server.base_url + "/readyz") as ready:
            assert ready.status == 200
            assert await ready.json() == {"ready": True, "store": True, "draining": False}
        server.proc.send_signal(signal.SIGINT)
        assert await server.wait_exit(10) == 0
    finally:
        server.stop()
    await asyncio.sleep(0)
