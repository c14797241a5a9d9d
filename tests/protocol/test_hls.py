"""HLS out of a room over HTTP (webinar.http.hls): the playlist and segments need a content
pass of the event in the path; with it they are served with headers a CDN can cache."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import av
import pytest

from tests import protocol_fixtures
from tests.helpers import Person, RunningServer, make_config, running_server
from tests.hls_support import LivePattern
from webinar.accounts import hash_password
from webinar.app import HLS_STREAMS
from webinar.broadcast.encoder import TestPattern
from webinar.broadcast.hls import HlsSink
from webinar.config import AdminConfig
from webinar.ids import format_event_id
from webinar.storage.records import EventSettings
from webinar.storage.store import Event
from webinar.ticketing import records
from webinar.ticketing.records import EventAccess


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


people = protocol_fixtures.people
enter = protocol_fixtures.Entrance(Person)


async def hls_event(server: RunningServer, mode: str, after: int = 100) -> Event:
    event = await server.create_event("Big one")
    settings = EventSettings(title=event.title, hls_mode=mode, hls_overflow_after=after)
    return await server.store.update_event(event.event_id, settings)


async def password_event(server: RunningServer) -> Event:
    event = await server.create_event("Streamed", access_type="password")
    access = EventAccess(event.event_id, attendee_password_hash=hash_password("let-me", n=2**10))
    await server.store.run(lambda core: records.put_access(core.connection, access))
    return event


async def test_hls_needs_admission_and_is_cacheable(server: RunningServer, tmp_path: Path) -> None:
    event = await password_event(server)
    other = await server.create_event("Another")
    shown = format_event_id(event.event_id)
    sink = HlsSink()
    server.server.app[HLS_STREAMS].publish(event.event_id, sink)
    live = LivePattern(sink, width=320, height=180)
    try:
        async with aiohttp.ClientSession() as http:
            base = f"{server.base_url}/e/{shown}/hls"
            # no pass, a forged one, another event's: refused and never cached
            async with http.post(
                f"{server.base_url}/e/{format_event_id(other.event_id)}/content-pass", json={}
            ) as resp:
                assert resp.status == 200
                other_pass = (await resp.json())["pass"]
            for token in ("nothing", f"{event.event_id}.9999999999..forged", other_pass):
                for name in ("index.m3u8", f"init-{sink.stream_id}.mp4", f"{sink.stream_id}-0.m4s"):
                    async with http.get(f"{base}/{token}/{name}") as resp:
                        assert resp.status == 403, (token, name)
                        assert (await resp.json())["error"] == "not-admitted"
                        assert resp.headers["Cache-Control"] == "no-store"
            async with http.post(
                f"{server.base_url}/e/{shown}/content-pass", json={"credential": "let-me"}
            ) as resp:
                assert resp.status == 200, await resp.text()
                token = (await resp.json())["pass"]
            # admitted: the playlist once the first segments are cut
            for _ in range(100):
                async with http.get(f"{base}/{token}/index.m3u8") as resp:
                    if resp.status == 200 and (await resp.text()).count(".m4s") >= 3:
                        break
                    assert resp.status in (200, 404)
                await asyncio.sleep(0.1)
            async with http.get(f"{base}/{token}/index.m3u8") as resp:
                assert resp.status == 200
                assert resp.content_type == "application/vnd.apple.mpegurl"
                assert resp.headers["Cache-Control"] == "public, max-age=1"
                playlist = await resp.text()
            init_name = re.search(r'URI="([^"]+)"', playlist)
            assert init_name is not None
            names = [line for line in playlist.splitlines() if line.endswith(".m4s")]
            async with http.get(f"{base}/{token}/{init_name[1]}") as resp:
                assert resp.status == 200 and resp.content_type == "video/mp4"
                assert "immutable" in resp.headers["Cache-Control"]
                assert resp.headers["Cache-Control"].startswith("public")
                data = await resp.read()
            for name in names:
                async with http.get(f"{base}/{token}/{name}") as resp:
                    assert resp.status == 200, name
                    assert "immutable" in resp.headers["Cache-Control"]
                    data += await resp.read()
            # a segment of another stream, or long gone: 404, briefly cacheable
            for name in ("0000beef-1.m4s", f"{sink.stream_id}-999999.m4s", "x.m4s"):
                async with http.get(f"{base}/{token}/{name}") as resp:
                    assert resp.status == 404
                    assert resp.headers["Cache-Control"] == "public, max-age=1"
    finally:
        await asyncio.to_thread(live.stop)
    path = tmp_path / "joined.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as box:
        numbers = [TestPattern.frame_number(f) for f in box.decode(video=0)]
    assert len(numbers) >= 3 * 25 - 1
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


async def test_no_stream_is_404(server: RunningServer) -> None:
    event = await server.create_event("Quiet")
    shown = format_event_id(event.event_id)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.base_url}/e/{shown}/content-pass", json={}) as resp:
            token = (await resp.json())["pass"]
        async with http.get(f"{server.base_url}/e/{shown}/hls/{token}/index.m3u8") as resp:
            assert resp.status == 404 and (await resp.json())["error"] == "no-stream"


async def test_attendees_beyond_the_threshold_get_hls_and_chat(
    server: RunningServer, people: list[Person]
) -> None:
    event = await hls_event(server, "overflow", after=2)
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann")
    bob = await enter(server, people, event, "Bob")
    cid = await enter(server, people, event, "Cid")
    dee = await enter(server, people, event, "Dee")
    assert pres.joined.get("hls") is None  # presenters never
    assert ann.joined.get("hls") is None and bob.joined.get("hls") is None
    room = server.rooms.get(event.event_id)
    assert room is not None and room.hls_viewers == {cid.pid, dee.pid}
    assert room.webrtc_attendees() == 2
    playlist = cid.joined["hls"]["playlist"]
    assert playlist == dee.joined["hls"]["playlist"]  # one URL for all: a CDN caches it once
    assert re.fullmatch(rf"/e/{event.event_id}/hls/[^/]+/index\.m3u8", playlist)
    # the HLS attendee chats like everyone
    await cid.request("chat-send", text="hello from HLS")
    for person in (pres, ann, dee):
        await person.wait("chat-message", where=lambda m: m["message"]["text"] == "hello from HLS")
    # the playlist answers (no stream yet: 404, not 403) and serves once the room streams
    async with aiohttp.ClientSession() as http, http.get(server.base_url + playlist) as resp:
        assert resp.status == 404 and (await resp.json())["error"] == "no-stream"
    # a WebRTC attendee leaves: the next one takes the place in the room
    await ann.request("leave")
    await ann.close()
    eve = await enter(server, people, event, "Eve")
    assert eve.joined.get("hls") is None
    fay = await enter(server, people, event, "Fay")
    assert fay.joined["hls"]["playlist"] == playlist
    # an HLS viewer who leaves is no longer counted
    await cid.request("leave")
    await cid.close()
    assert cid.pid not in room.hls_viewers


@pytest.mark.parametrize(("mode", "expected"), [("off", False), ("all", True)])
async def test_hls_for_nobody_or_everybody(
    server: RunningServer, people: list[Person], mode: str, expected: bool
) -> None:
    event = await hls_event(server, mode, after=0)
    host = await enter(server, people, event, "Host", event.host_key)
    ann = await enter(server, people, event, "Ann")
    assert host.joined.get("hls") is None
    assert (ann.joined.get("hls") is not None) is expected


async def test_an_hls_viewer_given_the_floor_gets_webrtc(
    server: RunningServer, people: list[Person]
) -> None:
    event = await hls_event(server, "all")
    pres = await enter(server, people, event, "Host", event.host_key)
    ann = await enter(server, people, event, "Ann")
    bob = await enter(server, people, event, "Bob")
    room = server.rooms.get(event.event_id)
    assert room is not None and room.hls_viewers == {ann.pid, bob.pid}
    await ann.request("raise-hand")
    await pres.request("grant", participant_id=ann.pid, audio=True, video=False)
    await ann.wait("participant-updated", where=lambda m: m["participant"]["grant_audio"])
    assert room.hls_viewers == {bob.pid}  # the room offers Ann WebRTC from now on
    await pres.request("set-role", participant_id=bob.pid, role="presenter")
    await bob.wait("participant-updated", where=lambda m: m["participant"]["role"] == "presenter")
    assert room.hls_viewers == set()
    assert room.webrtc_attendees() == 1


async def test_the_setting_through_the_api(tmp_path: Path) -> None:
    token = "hls-admin-token-0123456789abcdef0123"
    data = tmp_path / "api"
    config = dataclasses.replace(make_config(data), admin=AdminConfig(token=token))
    headers = {"Authorization": f"Bearer {token}"}
    async with running_server(data, config) as srv, aiohttp.ClientSession(headers=headers) as http:
        url = f"{srv.base_url}/api/v1/events"
        async with http.post(url, json={"title": "Big", "hls_mode": "overflow"}) as resp:
            assert resp.status == 201, await resp.text()
            made = await resp.json()
        assert made["hls_mode"] == "overflow" and made["hls_overflow_after"] == 100
        one = f"{url}/{made['event_id']}"
        async with http.patch(one, json={"hls_overflow_after": 250}) as resp:
            assert resp.status == 200 and (await resp.json())["hls_overflow_after"] == 250
        for bad in ({"hls_mode": "sometimes"}, {"hls_overflow_after": -1}, {"hls_mode": 1}):
            async with http.patch(one, json=bad) as resp:
                assert resp.status in (400, 422), (bad, resp.status)
        async with http.get(one) as resp:
            got = await resp.json()
        assert (got["hls_mode"], got["hls_overflow_after"]) == ("overflow", 250)
