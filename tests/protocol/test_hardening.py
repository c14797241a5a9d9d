"""Defects found by probing the running server from outside (issue: hardening), each reproduced
here against a real server over real WebSockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import RunningServer, running_server
from webinar.client.peer import ClientError, SignallingClient
from webinar.storage.store import Event

SURROGATE = "\ud800"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
async def event(server: RunningServer) -> Event:
    return await server.create_event("Hardening")


@pytest.fixture
async def clients(server: RunningServer) -> AsyncIterator[list[SignallingClient]]:
    """Connected clients, closed at the end; ``await make()`` adds one."""
    made: list[SignallingClient] = []
    yield made
    for client in made:
        await client.close()


async def connect(server: RunningServer, clients: list[SignallingClient]) -> SignallingClient:
    http = aiohttp.ClientSession()
    client = SignallingClient(http, server.base_url.replace("http", "ws") + "/ws")
    await client.connect()
    await client.request("hello", protocol=1)
    clients.append(client)
    original_close = client.close

    async def close() -> None:
        await original_close()
        await http.close()

    client.close = close  # type: ignore[method-assign]
    return client


async def joined(
    server: RunningServer, clients: list[SignallingClient], event: Event, name: str, **extra: Any
) -> tuple[SignallingClient, dict[str, Any]]:
    client = await connect(server, clients)
    reply = await client.request("join", event_id=event.event_id, name=name, **extra)
    return client, reply


# ----------------------------------------------------------------------------- lone surrogates


@pytest.mark.parametrize(
    ("type_", "fields"),
    [
        ("chat-send", {"text": "hi " + SURROGATE}),
        ("question-ask", {"text": SURROGATE + "?"}),
        (
            "poll-create",
            {
                "title": "Poll " + SURROGATE,
                "questions": [{"text": "Q", "options": [{"text": "a"}, {"text": "b"}]}],
            },
        ),
        ("cta-show", {"message": SURROGATE, "button": "Go", "url": "https://example.org/"}),
    ],
)
async def test_text_with_a_lone_surrogate_is_refused_and_nothing_is_kept(
    server: RunningServer,
    event: Event,
    clients: list[SignallingClient],
    type_: str,
    fields: dict[str, Any],
) -> None:
    host, _ = await joined(server, clients, event, "Host", credential=event.host_key)
    with pytest.raises(ClientError) as refused:
        await host.request(type_, **fields)
    assert refused.value.code == "bad-message"
    # The session works on, and a late joiner's sync holds nothing of the refused message.
    late, _ = await joined(server, clients, event, "Late")
    sync = await late.request("sync-interaction")
    text = json.dumps(sync)
    assert "\\ud800" not in text
    assert sync["messages"] == [] and sync["qa"]["questions"] == []
    assert sync["polls"] == [] and sync["cta"] is None


async def test_a_join_with_a_lone_surrogate_leaves_no_ghost(
    server: RunningServer, event: Event, clients: list[SignallingClient]
) -> None:
    _watcher, first = await joined(server, clients, event, "Watcher")
    for fields in ({"name": "Ghost " + SURROGATE}, {"name": "Ghost", "client_id": SURROGATE}):
        client = await connect(server, clients)
        with pytest.raises(ClientError) as refused:
            await client.request("join", event_id=event.event_id, **fields)
        assert refused.value.code == "bad-message"
    _, second = await joined(server, clients, event, "Second")
    names = sorted(p["name"] for p in second["participants"])
    assert names == ["Second", "Watcher"], names
    assert len(first["participants"]) == 1


# ----------------------------------------------------------------------------- deep nesting


async def test_deeply_nested_json_is_answered_bad_json_and_the_socket_stays(
    server: RunningServer, clients: list[SignallingClient]
) -> None:
    client = await connect(server, clients)
    for text in ("[" * 1000 + "]" * 1000, '{"type": "ping", "x": ' + "[" * 40 + "]" * 40 + "}"):
        await client.send_raw(text)
        reply = await client.wait_for("error")
        assert reply["code"] == "bad-json", reply
    assert (await client.request("ping"))["type"] == "pong"
