"""Defects found by probing the running server from outside (issue: hardening), each reproduced
here against a real server over real WebSockets."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import protocol_fixtures
from tests.helpers import RunningServer, make_config, running_server
from tests.serving import start_server
from webinar.client.peer import ClientError, SignallingClient
from webinar.storage.store import Event

SURROGATE = "\ud800"

server = protocol_fixtures.server


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
    # an attendee is shown the stage and themselves, and counted among everyone here
    assert [p["name"] for p in second["participants"]] == ["Second"]
    assert second["counts"]["total"] == 2 and second["counts"]["attendees"] == 2
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


# ----------------------------------------------------------------------------- idle limits


async def test_a_socket_that_says_no_hello_is_closed(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    config = dataclasses.replace(
        config, signalling=dataclasses.replace(config.signalling, hello_timeout_seconds=0.5)
    )
    async with running_server(tmp_path / "data", config) as srv, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(srv.base_url + "/ws", autoping=True)
        frame = await ws.receive(timeout=5)
        assert json.loads(frame.data) == {"type": "bye", "reason": "no-hello"}
        assert (await ws.receive(timeout=5)).type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
        )
        # one that does say hello in time stays
        ws2 = await http.ws_connect(srv.base_url + "/ws")
        await ws2.send_json({"type": "hello", "protocol": 1, "id": 1})
        assert json.loads((await ws2.receive(timeout=5)).data)["type"] == "welcome"
        await asyncio.sleep(0.8)
        await ws2.send_json({"type": "ping", "id": 2})
        assert json.loads((await ws2.receive(timeout=5)).data)["type"] == "pong"
        await ws2.close()


async def test_open_sockets_per_address_are_capped_even_when_opened_at_once(
    tmp_path: Path,
) -> None:
    config = make_config(tmp_path / "data")
    config = dataclasses.replace(
        config, signalling=dataclasses.replace(config.signalling, max_sockets_per_address=3)
    )
    async with running_server(tmp_path / "data", config) as srv, aiohttp.ClientSession() as http:
        url = srv.base_url + "/ws"
        tries = await asyncio.gather(
            *(http.ws_connect(url) for _ in range(8)), return_exceptions=True
        )
        opened = [t for t in tries if isinstance(t, aiohttp.ClientWebSocketResponse)]
        refused = [t for t in tries if isinstance(t, aiohttp.WSServerHandshakeError)]
        assert len(opened) == 3 and len(refused) == 5, tries
        assert all(r.status == 429 for r in refused)
        await opened[0].close()
        await asyncio.sleep(0.1)
        again = await http.ws_connect(url)  # a place is free again
        for ws in [*opened[1:], again]:
            await ws.close()


async def test_a_silent_or_slow_connection_is_closed_after_the_head_timeout(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path, {"WEBINAR_HTTP_HEADER_TIMEOUT_SECONDS": "1"})
    try:
        await server.wait_healthy()
        host, port = server.base_url.removeprefix("http://").split(":")
        silent = await asyncio.open_connection(host, int(port))
        slow = await asyncio.open_connection(host, int(port))
        slow[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never ends its headers
        loop = asyncio.get_running_loop()
        started = loop.time()
        for reader, writer in (silent, slow):
            assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
            writer.close()
        assert loop.time() - started < 5
        # an ordinary request is served
        async with aiohttp.ClientSession() as http, http.get(server.base_url + "/healthz") as r:
            assert r.status == 200
    finally:
        server.stop()


# ----------------------------------------------------------------------------- framing


async def test_pages_refuse_framing_and_run_only_our_scripts(
    server: RunningServer, event: Event
) -> None:
    room = f"/e/{event.event_id}"
    checked = []
    async with aiohttp.ClientSession() as http:
        for path in ("/login", "/dashboard/events/new", room, "/"):
            async with http.get(server.base_url + path, allow_redirects=False) as resp:
                if resp.status in (302, 303):
                    continue  # a redirect has no page to frame
                assert resp.status == 200, (path, resp.status)
                checked.append(path)
                csp = resp.headers["Content-Security-Policy"]
                assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
                assert resp.headers["X-Frame-Options"] == "DENY", path
                assert "onsubmit=" not in await resp.text()
        # not vacuous: the pages that matter were served, not all skipped as redirects
        assert {"/login", room} <= set(checked), checked
        async with http.get(server.base_url + "/static/js/room.js") as resp:
            assert resp.status == 200
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert "X-Frame-Options" not in resp.headers


async def test_the_room_is_embeddable_only_by_the_configured_origins(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data")
    config = dataclasses.replace(
        config, http=dataclasses.replace(config.http, embed_origins=("https://site.example",))
    )
    async with running_server(tmp_path / "data", config) as srv, aiohttp.ClientSession() as http:
        event = await srv.create_event("Embedded")
        async with http.get(f"{srv.base_url}/e/{event.event_id}") as resp:
            assert "frame-ancestors https://site.example" in resp.headers["Content-Security-Policy"]
            assert "X-Frame-Options" not in resp.headers
        async with http.get(srv.base_url + "/login") as resp:
            assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


# ----------------------------------------------------------------------------- failed writes


async def _rename(server: RunningServer, table: str, to: str) -> None:
    """A real write failure: the table the next write needs is not there."""
    await server.store.run(
        lambda core: core.connection.execute(f"ALTER TABLE {table} RENAME TO {to}")
    )


async def test_a_command_whose_write_fails_leaves_nothing_in_memory(
    server: RunningServer, event: Event, clients: list[SignallingClient]
) -> None:
    host, _ = await joined(server, clients, event, "Host", credential=event.host_key)
    attendee, _ = await joined(server, clients, event, "Ann")
    await host.request("chat-send", text="first")
    created = await host.request(
        "poll-create",
        title="Lunch?",
        questions=[{"text": "Pizza?", "options": [{"text": "yes"}, {"text": "no"}]}],
    )
    poll = created["poll"]
    await host.request("poll-launch", poll_id=poll["poll_id"])
    await _rename(server, "chat_messages", "chat_gone")
    await _rename(server, "poll_answers", "answers_gone")
    with pytest.raises(ClientError) as failed:
        await host.request("chat-send", text="lost")
    assert failed.value.code == "internal"
    question = poll["questions"][0]
    answer = {
        "question_id": question["question_id"],
        "option_ids": [question["options"][0]["option_id"]],
    }
    with pytest.raises(ClientError) as failed:
        await attendee.request("poll-answer", poll_id=poll["poll_id"], answers=[answer])
    assert failed.value.code == "internal"
    # Nobody sees what the store does not have: not a late joiner, not the poll's results.
    late, _ = await joined(server, clients, event, "Late")
    sync = await late.request("sync-interaction")
    assert [m["text"] for m in sync["messages"]] == ["first"]
    mine = await attendee.request("sync-interaction")
    assert mine["my_answers"] == {}
    # Once the store works again, so does everything, from where the store left off.
    await _rename(server, "chat_gone", "chat_messages")
    await _rename(server, "answers_gone", "poll_answers")
    sent = await host.request("chat-send", text="second")
    assert sent["type"] == "chat-sent"
    await attendee.request("poll-answer", poll_id=poll["poll_id"], answers=[answer])
    sync = await late.request("sync-interaction")
    assert [m["text"] for m in sync["messages"]] == ["first", "second"]


async def test_a_join_whose_attendance_write_fails_leaves_no_ghost(
    server: RunningServer, event: Event, clients: list[SignallingClient]
) -> None:
    _watcher, _ = await joined(server, clients, event, "Watcher")
    await _rename(server, "attendance", "attendance_gone")
    client = await connect(server, clients)
    with pytest.raises(ClientError) as failed:
        await client.request("join", event_id=event.event_id, name="Ghost")
    assert failed.value.code == "internal"
    await _rename(server, "attendance_gone", "attendance")
    _, second = await joined(server, clients, event, "Second")
    assert [p["name"] for p in second["participants"]] == ["Second"]
    assert second["counts"]["total"] == 2  # Watcher and Second: no ghost


# ------------------------------------------------------------------- one address, many people


async def test_an_open_event_admits_an_address_others_behind_it_mistyped_at(
    tmp_path: Path, clients: list[SignallingClient]
) -> None:
    """Behind one office NAT, someone mistyping the event ID (or a password elsewhere) must not
    lock the others out of an open event: there is nothing to guess there."""
    config = make_config(tmp_path / "data")
    config = dataclasses.replace(
        config, ticketing=dataclasses.replace(config.ticketing, wrong_entries_per_address=1)
    )
    async with running_server(tmp_path / "data", config) as srv:
        event = await srv.create_event("Open to all")
        typo = await connect(srv, clients)
        with pytest.raises(ClientError) as unknown:
            await typo.request("join", event_id="999999999", name="Typo")
        assert unknown.value.code == "unknown-event"
        results = await asyncio.gather(
            *(joined(srv, clients, event, f"Colleague {i}") for i in range(30))
        )
        assert all(reply["role"] == "attendee" for _, reply in results)


async def test_nul_characters_are_refused_at_every_door(
    server: RunningServer, event: Event, clients: list[SignallingClient]
) -> None:
    """A NUL character (PostgreSQL cannot store one) is a clear refusal in a WebSocket
    message, a JSON body, a path, a query and a form, never a 500 and never stored."""
    host, _ = await joined(server, clients, event, "Host", credential=event.host_key)
    await host.request("sync-interaction")
    with pytest.raises(ClientError) as refused:
        await host.request("chat-send", text="a\x00b")
    assert refused.value.code == "bad-message"
    async with aiohttp.ClientSession() as http:
        base = server.base_url
        async with http.post(
            f"{base}/api/v1/events",
            data=b'{"title": "a\\u0000b"}',
            headers={"Content-Type": "application/json", "Authorization": "Bearer nope"},
        ) as resp:
            assert resp.status in (400, 401), resp.status
        page = {"Accept": "text/html"}
        for url in (f"{base}/e/%00", f"{base}/e/{event.event_id}?key=%00"):
            async with http.get(url, headers=page) as resp:
                assert resp.status == 400, (url, resp.status)
                assert "NUL" in await resp.text()
        form = {"username": "a\x00", "password": "x"}
        async with http.post(f"{base}/login", data=form, headers=page) as resp:
            assert resp.status == 400
        async with http.get(f"{base}/api/v1/events/%00") as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "bad-request"
    sync = await host.request("sync-interaction")
    assert sync["messages"] == []
