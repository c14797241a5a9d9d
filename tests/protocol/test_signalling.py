"""The signalling protocol end to end: a real server, real WebSockets, real SQLite."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import RunningServer, make_config, running_server
from webinar.client.peer import ClientError, SignallingClient, WebinarClient
from webinar.ids import format_event_id
from webinar.storage.store import Event

H264_ONLY_OFFER = """v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
m=video 9 UDP/TLS/RTP/SAVPF 102
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 {FINGERPRINT}
a=setup:actpass
a=mid:0
a=sendonly
a=rtcp-mux
a=rtpmap:102 H264/90000
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=ssrc:1001 cname:x
""".replace("{FINGERPRINT}", ":".join(["AB"] * 32))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
async def event(server: RunningServer) -> Event:
    return await server.create_event("Protocol test")


async def connect(server: RunningServer) -> tuple[aiohttp.ClientSession, SignallingClient]:
    http = aiohttp.ClientSession()
    client = SignallingClient(http, server.base_url.replace("http", "ws") + "/ws")
    await client.connect()
    return http, client


@pytest.fixture
async def raw(server: RunningServer) -> AsyncIterator[SignallingClient]:
    http, client = await connect(server)
    yield client
    await client.close()
    await http.close()


async def greeted(client: SignallingClient) -> dict[str, Any]:
    return await client.request("hello", protocol=1)


async def test_hello_join_and_roles(
    raw: SignallingClient, server: RunningServer, event: Event
) -> None:
    welcome = await greeted(raw)
    assert welcome["type"] == "welcome" and welcome["protocol"] == 1
    assert welcome["max_message_bytes"] == 65536
    joined = await raw.request("join", event_id=event.event_id, name="  Ann   Lee ")
    assert joined["role"] == "attendee"
    assert joined["event"] == {
        "event_id": format_event_id(event.event_id),
        "title": "Protocol test",
        "starts_at": None,
    }
    assert joined["ice_servers"] == []  # never a public STUN server by default
    assert joined["max_cameras"] == 4
    assert [p["name"] for p in joined["participants"]] == ["Ann Lee"]

    http, presenter = await connect(server)
    try:
        await greeted(presenter)
        # the ID may be typed with separators
        joined2 = await presenter.request(
            "join",
            event_id=format_event_id(event.event_id),
            name="Bo",
            credential=event.presenter_key,
        )
        assert joined2["role"] == "presenter"
        note = await raw.wait_for("participant-joined")
        assert note["participant"] == {
            "participant_id": joined2["participant_id"],
            "name": "Bo",
            "role": "presenter",
            "hand_raised": None,
            "grant_audio": False,
            "grant_video": False,
            "listen_only": False,
            "connected": True,
            "quality": "unknown",
        }
        await presenter.request("leave")
    finally:
        await presenter.close()
        await http.close()
    left = await raw.wait_for("participant-left")
    assert left["participant_id"] == joined2["participant_id"] and left["reason"] == "left"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "nope"}, "unknown-type"),
        ({"id": 1}, "bad-message"),
        ({"type": "hello"}, "bad-message"),
        ({"type": "hello", "protocol": "1"}, "bad-message"),
        ({"type": "hello", "protocol": 1, "extra": True}, "bad-message"),
        ({"type": "hello", "protocol": 2}, "protocol-version"),
        ({"type": "join", "event_id": "123", "name": "x"}, "hello-required"),
        ([1, 2], "bad-json"),
    ],
)
async def test_malformed_messages_get_typed_errors(
    raw: SignallingClient, message: Any, code: str
) -> None:
    await raw.send_raw(json.dumps(message))
    reply = await raw.wait_for("error")
    assert reply["code"] == code
    # the session is still usable afterwards
    assert (await greeted(raw))["type"] == "welcome"


async def test_not_json_too_large_and_binary(raw: SignallingClient) -> None:
    await raw.send_raw("{not json")
    assert (await raw.wait_for("error"))["code"] == "bad-json"
    await raw.send_raw(json.dumps({"type": "ping", "pad": "x" * 70_000}))
    assert (await raw.wait_for("error"))["code"] == "too-large"
    assert raw._ws is not None
    await raw._ws.send_bytes(b"\x00\x01")
    assert (await raw.wait_for("error"))["code"] == "bad-message"
    assert (await greeted(raw))["type"] == "welcome"


async def test_errors_echo_the_request_id(raw: SignallingClient, event: Event) -> None:
    await greeted(raw)
    with pytest.raises(ClientError) as err:
        await raw.request("join", event_id="999-999-999", name="x")
    assert err.value.code == "unknown-event"
    with pytest.raises(ClientError) as err:
        await raw.request("join", event_id=event.event_id, name="x", credential="wrong")
    assert err.value.code == "bad-credential"
    with pytest.raises(ClientError) as err:
        await raw.request("join", event_id=event.event_id, name="   ")
    assert err.value.code == "bad-message"
    with pytest.raises(ClientError) as err:
        await raw.request("publish", sdp="v=0", tracks=[])
    assert err.value.code == "not-joined"
    await raw.request("join", event_id=event.event_id, name="x")
    with pytest.raises(ClientError) as err:
        await raw.request("join", event_id=event.event_id, name="x")
    assert err.value.code == "already-joined"
    assert (await raw.request("ping"))["type"] == "pong"


async def test_join_sent_with_hello_is_handled_after_it(
    raw: SignallingClient, event: Event
) -> None:
    """The web client sends ``join`` right behind ``hello`` (one round trip less): the
    server handles a socket's messages in order, so both are answered, in order."""
    hello = asyncio.ensure_future(raw.request("hello", protocol=1))
    join = asyncio.ensure_future(raw.request("join", event_id=event.event_id, name="Quick"))
    assert (await hello)["type"] == "welcome"
    assert (await join)["type"] == "joined"


async def test_join_behind_a_refused_hello_is_refused(raw: SignallingClient, event: Event) -> None:
    hello = asyncio.ensure_future(raw.request("hello", protocol=99))
    join = asyncio.ensure_future(raw.request("join", event_id=event.event_id, name="Quick"))
    with pytest.raises(ClientError) as refused:
        await hello
    assert refused.value.code == "protocol-version"
    with pytest.raises(ClientError) as refused:
        await join
    assert refused.value.code == "hello-required"


async def test_attendee_may_not_publish(raw: SignallingClient, event: Event) -> None:
    await greeted(raw)
    await raw.request("join", event_id=event.event_id, name="Att")
    with pytest.raises(ClientError) as err:
        await raw.request("publish", sdp=H264_ONLY_OFFER, tracks=[{"mid": "0", "source": "camera"}])
    assert err.value.code == "forbidden"


async def test_h264_only_offer_is_refused(raw: SignallingClient, event: Event) -> None:
    await greeted(raw)
    await raw.request("join", event_id=event.event_id, name="P", credential=event.presenter_key)
    with pytest.raises(ClientError) as err:
        await raw.request("publish", sdp=H264_ONLY_OFFER, tracks=[{"mid": "0", "source": "camera"}])
    assert err.value.code == "unsupported-codec"
    with pytest.raises(ClientError) as err:
        await raw.request("publish", sdp=H264_ONLY_OFFER, tracks=[])
    assert err.value.code == "track-mismatch"
    with pytest.raises(ClientError) as err:
        await raw.request("publish", sdp="garbage", tracks=[])
    assert err.value.code == "bad-sdp"


async def test_flood_is_rate_limited_without_disturbing_others(
    server: RunningServer, event: Event
) -> None:
    http1, flooder = await connect(server)
    http2, calm = await connect(server)
    try:
        await greeted(flooder)
        await greeted(calm)
        await calm.request("join", event_id=event.event_id, name="Calm")
        for _ in range(150):
            await flooder.send({"type": "ping"})
        replies: list[str] = []
        while True:
            try:
                message = await asyncio.wait_for(flooder.events.get(), 1.0)
            except TimeoutError:
                break
            replies.append(message["type"] if message["type"] != "error" else message["code"])
        assert "rate-limited" in replies
        assert replies.count("pong") < 150
        # the other participant is unaffected and answered promptly
        assert (await calm.request("ping", within=2.0))["type"] == "pong"
    finally:
        for client, http in ((flooder, http1), (calm, http2)):
            await client.close()
            await http.close()


async def test_persistent_flood_disconnects_the_offender(server: RunningServer) -> None:
    http, flooder = await connect(server)
    try:
        for _ in range(400):
            if flooder.closed:
                break
            await flooder.send_raw("not json")
        bye = await flooder.wait_for("bye", within=5.0)
        assert bye["reason"] == "protocol-violation"
    finally:
        await flooder.close()
        await http.close()


async def test_room_full(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", max_participants=2)
    async with running_server(tmp_path / "data", config) as srv:
        event = await srv.create_event()
        clients = [WebinarClient(srv.base_url, host_addresses=["127.0.0.1"]) for _ in range(3)]
        try:
            await clients[0].join(event.event_id, "a")
            await clients[1].join(event.event_id, "b")
            with pytest.raises(ClientError) as err:
                await clients[2].join(event.event_id, "c")
            assert err.value.code == "room-full"
        finally:
            for c in clients:
                await c.close()


async def test_healthz(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.base_url + "/healthz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ok"
