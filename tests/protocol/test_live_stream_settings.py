"""The dashboard's live stream page (webinar.http.live_stream): the organiser saves an ingest
URL and stream key; the key is stored sealed and shown back only as its last four characters;
bad input is refused with the reason and keeps what was saved; another organiser's event is
not reachable; the settings can be removed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import RunningServer, running_server
from tests.protocol.test_dashboard import add_user, csrf_of, schedule, sign_in
from webinar.app import LIVE_STREAM_SETTINGS
from webinar.ids import normalize_event_id

KEY = "abcd-efgh-ijkl-9xq2"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


async def test_organiser_saves_keeps_and_removes_the_ingest(server: RunningServer) -> None:
    add_user(server, "olga")
    add_user(server, "ivan")
    http = await sign_in(server, "olga")
    other = await sign_in(server, "ivan")
    try:
        event_id = await schedule(http, server.base_url, title="Launch")
        page_url = f"{server.base_url}/dashboard/events/{event_id}/live-stream"
        canonical = normalize_event_id(event_id) or ""
        async with http.get(f"{server.base_url}/dashboard/events/{event_id}") as resp:
            assert f'/dashboard/events/{event_id}/live-stream"' in await resp.text()
        async with http.get(page_url) as resp:
            assert resp.status == 200
            page = await resp.text()
        assert 'data-testid="live-stream-form"' in page
        assert 'data-testid="live-stream-key-hint"' not in page
        token = csrf_of(page)
        form = {"csrf": token, "url": "rtmps://a.rtmps.youtube.com/live2", "key": KEY}
        async with http.post(page_url, data=form, allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"].endswith("/live-stream?notice=saved")
        service = server.server.app[LIVE_STREAM_SETTINGS]
        saved = await service.get(canonical)
        assert saved is not None and saved.key == KEY
        with server.store.connect_sync() as sync:
            raw = sync.connection.execute("SELECT stream_key FROM event_stream_out").fetchone()
        assert KEY not in raw[0]
        async with http.get(page_url) as resp:
            page = await resp.text()
        assert KEY not in page and "…9xq2" in page
        assert 'value="rtmps://a.rtmps.youtube.com/live2"' in page

        # a new URL with the key field empty keeps the key; a bad URL is refused, keeps all
        form = {"csrf": token, "url": "rtmp://live-api.facebook.com:80/rtmp", "key": ""}
        async with http.post(page_url, data=form, allow_redirects=False) as resp:
            assert resp.status == 303
        saved = await service.get(canonical)
        assert saved is not None and saved.key == KEY and saved.url.startswith("rtmp://live")
        form = {"csrf": token, "url": "https://example.org/live", "key": "new-key"}
        async with http.post(page_url, data=form) as resp:
            assert resp.status == 400
            page = await resp.text()
        assert "rtmp:// or rtmps://" in page and 'data-testid="live-stream-error"' in page
        assert await service.get(canonical) == saved

        # without the CSRF token nothing changes; another organiser does not see the event
        async with http.post(page_url, data={"url": "rtmp://x/y", "key": "k"}) as resp:
            assert resp.status in (400, 403)
        async with other.get(page_url, allow_redirects=False) as resp:
            assert resp.status == 404
        async with other.post(
            page_url, data={"csrf": token, "url": "rtmp://x/y", "key": "k"}
        ) as resp:
            assert resp.status in (403, 404)
        assert await service.get(canonical) == saved

        async with http.post(
            page_url + "/remove", data={"csrf": token}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
        assert await service.get(canonical) is None
    finally:
        await http.close()
        await other.close()


async def test_the_organiser_starts_and_stops_it_from_the_dashboard(
    server: RunningServer,
) -> None:
    from tests.protocol.test_room_rules import Person
    from tests.protocol_fixtures import Entrance

    add_user(server, "olga")
    http = await sign_in(server, "olga")
    people: list[Person] = []
    try:
        event_id = await schedule(http, server.base_url, title="Launch")
        canonical = normalize_event_id(event_id) or ""
        page_url = f"{server.base_url}/dashboard/events/{event_id}/live-stream"
        async with http.get(page_url) as resp:
            page = await resp.text()
        token = csrf_of(page)
        assert 'data-testid="live-stream-now"' not in page  # no room yet
        async with http.post(page_url + "/start", data={"csrf": token}) as resp:
            assert resp.status == 409
            assert "not live" in await resp.text()

        event = await server.store.get_event(canonical)
        assert event is not None
        host = await Entrance(Person)(server, people, event, "Host", event.host_key)
        await host.request("start")
        async with http.get(page_url) as resp:
            page = await resp.text()
        assert 'data-status="off"' in page and 'data-testid="live-stream-start"' in page
        # no ingest set: refused, saying so; the room stays off
        async with http.post(page_url + "/start", data={"csrf": token}) as resp:
            assert resp.status == 409
            text = await resp.text()
        assert 'data-testid="live-stream-error"' in text
        assert server.rooms.get(canonical).state.live_stream.value == "off"  # type: ignore[union-attr]
        # stopping works whatever the ingest; the presenters hear it (by: null)
        room = server.rooms.get(canonical)
        assert room is not None
        room.state.live_stream_wanted = True  # as if started (needs the compositor)
        async with http.post(page_url + "/stop", data={"csrf": token}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].endswith("notice=stopped")
        update = await host.wait("live-stream-updated", status="off")
        assert update["by"] is None
    finally:
        await asyncio.gather(*(p.close() for p in people))
        await http.close()


async def test_the_api_sets_shows_a_hint_and_refuses_bad_input(server: RunningServer) -> None:
    from webinar.storage import api_tokens
    from webinar.storage.api_tokens import Scope

    add_user(server, "olga")
    with server.store.connect_sync() as sync:
        olga = sync.get_user_by_name("olga")
        assert olga is not None
        event = sync.create_event("Launch", None, owner_id=olga.user_id)
        _made, secret = api_tokens.create(sync.connection, olga.user_id, "t", Scope.WRITE)
    url = f"{server.base_url}/api/v1/events/{event.event_id}/live-stream"
    auth = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(url) as resp:
            assert resp.status == 200
            assert await resp.json() == {
                "url": None,
                "key_set": False,
                "key_hint": None,
                "updated_at": None,
            }
        async with http.put(url, json={"url": "rtmp://x.example/live"}) as resp:
            assert resp.status == 422  # no key saved yet
            assert "stream key is empty" in (await resp.json())["error"]["message"]
        async with http.put(
            url, json={"url": "rtmps://a.rtmps.youtube.com/live2", "key": KEY}
        ) as r:
            assert r.status == 200
            body = await r.json()
        assert body["key_set"] and body["key_hint"] == "…9xq2" and KEY not in str(body)
        async with http.put(url, json={"url": "ftp://x/y", "key": "k"}) as resp:
            assert resp.status == 422
            assert "rtmp:// or rtmps://" in (await resp.json())["error"]["message"]
        async with http.put(url, json={"url": "rtmp://x.example/app"}) as resp:
            assert resp.status == 200 and (await resp.json())["key_hint"] == "…9xq2"
        async with http.get(url) as resp:
            assert (await resp.json())["url"] == "rtmp://x.example/app"
        async with http.delete(url) as resp:
            assert resp.status == 204
        async with http.get(url) as resp:
            assert (await resp.json())["key_set"] is False
