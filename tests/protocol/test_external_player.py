"""An event's external player over real HTTP and WebSockets: the link checked where it is
entered (dashboard, API), the pages' Content-Security-Policy ``frame-src``, and the link kept
off the event's public pages."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import RunningServer, make_config, running_server
from tests.protocol.test_dashboard import add_user, csrf_of, schedule, sign_in
from webinar.config import ContentConfig
from webinar.storage import api_tokens
from webinar.storage.api_tokens import Scope

YOUTUBE = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
EMBED = "https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ"
EXTRA = "player.example.com"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    config = dataclasses.replace(
        make_config(tmp_path / "data"), content=ContentConfig(external_providers=(EXTRA,))
    )
    async with running_server(config.data_dir, config) as srv:
        yield srv


async def test_the_dashboard_field_checks_the_link(server: RunningServer) -> None:
    add_user(server, "olga")
    http = await sign_in(server, "olga")
    base = server.base_url
    try:
        async with http.get(base + "/dashboard/events/new") as resp:
            page = await resp.text()
        assert 'data-testid="event-external-url-input"' in page
        hint = re.search(r'data-testid="event-external-url-hint">(.*?)</p>', page, re.S)
        assert hint and "YouTube, Vimeo, Zoom" in hint.group(1) and EXTRA in hint.group(1)
        event_id = await schedule(http, base, external_url=f" {YOUTUBE} ")
        event = await server.store.get_event(event_id)
        assert event is not None and event.external_url == YOUTUBE
        async with http.get(f"{base}/dashboard/events/{event_id}") as resp:
            page = await resp.text()
        assert f'value="{YOUTUBE}"' in page
        form = {
            "csrf": csrf_of(page),
            "title": "Launch",
            "timezone": "UTC",
            "duration_minutes": "60",
            "join_window_minutes": "5",
            "access_type": "open",
            "camera_limit": "4",
        }
        for bad, words in (
            ("javascript:alert(1)", "must be a web address starting with https://"),
            ("https://www.twitch.tv/somebody", "cannot be from www.twitch.tv"),
            ("http://player.example.com/embed/1", "must start with https:// for"),
        ):
            async with http.post(
                f"{base}/dashboard/events/{event_id}", data={**form, "external_url": bad}
            ) as resp:
                assert resp.status == 400
                text = await resp.text()
            assert 'data-testid="form-error"' in text and words in text, bad
            assert 'value="' + bad.replace("&", "&amp;") + '"' in text  # kept to correct
            kept = await server.store.get_event(event_id)
            assert kept is not None and kept.external_url == YOUTUBE
        player = "https://player.example.com/embed/1?autoplay=0"
        async with http.post(
            f"{base}/dashboard/events/{event_id}",
            data={**form, "external_url": player},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303, await resp.text()
        saved = await server.store.get_event(event_id)
        assert saved is not None and saved.external_url == player
        async with http.post(
            f"{base}/dashboard/events/{event_id}",
            data={**form, "external_url": ""},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        cleared = await server.store.get_event(event_id)
        assert cleared is not None and cleared.external_url is None
    finally:
        await http.close()


async def test_the_api_sets_and_checks_external_url(server: RunningServer) -> None:
    with server.store.connect_sync() as sync:
        user = sync.create_user("ada", "x", "organiser")
    _tok, secret = await server.store.run(
        lambda core: api_tokens.create(core.connection, user.user_id, "t", Scope.WRITE)
    )
    auth = {"Authorization": f"Bearer {secret}"}
    base = server.base_url + "/api/v1/events"
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.post(base, json={"title": "Launch", "external_url": YOUTUBE}) as resp:
            assert resp.status == 201, await resp.text()
            made = await resp.json()
        assert made["external_url"] == YOUTUBE
        url = f"{base}/{made['event_id']}"
        async with http.patch(url, json={"external_url": "https://zoom.us/pricing"}) as resp:
            assert resp.status == 422
            error = (await resp.json())["error"]
        assert error["code"] == "invalid" and error["at"] == "$.external_url"
        assert "not a Zoom meeting or webinar" in error["message"]
        async with http.patch(url, json={"external_url": 42}) as resp:
            assert resp.status == 422
        async with http.get(url) as resp:
            assert (await resp.json())["external_url"] == YOUTUBE
        async with http.patch(url, json={"title": "Launch 2"}) as resp:  # others stay
            assert (await resp.json())["external_url"] == YOUTUBE
        zoom = "https://us02web.zoom.us/j/81234567890?pwd=x"
        async with http.patch(url, json={"external_url": zoom}) as resp:
            assert resp.status == 200 and (await resp.json())["external_url"] == zoom
        async with http.patch(url, json={"external_url": None}) as resp:
            assert (await resp.json())["external_url"] is None
        async with http.get(server.base_url + "/api/openapi.json") as resp:
            spec = await resp.json()
        fields = spec["components"]["schemas"]["EventFields"]["properties"]
        assert "external_url" in fields
        assert "external_url" in spec["components"]["schemas"]["Event"]["properties"]


async def test_pages_frame_the_players_only(server: RunningServer) -> None:
    event = await server.create_event("Launch", external_url=YOUTUBE)
    async with aiohttp.ClientSession() as http:
        for path in ("/", f"/e/{event.display_id}", "/login"):
            async with http.get(server.base_url + path) as resp:
                assert resp.status == 200, path
                policy = resp.headers["Content-Security-Policy"]
            frame_src = [d.strip() for d in policy.split(";") if d.strip().startswith("frame-src")]
            assert frame_src == [
                "frame-src 'self' https://www.youtube-nocookie.com https://player.vimeo.com"
                " https://vimeo.com https://player.example.com"
            ], path


async def test_the_public_pages_do_not_carry_the_link(server: RunningServer) -> None:
    event = await server.create_event("Launch", external_url=YOUTUBE)
    async with aiohttp.ClientSession() as http:
        for path in (f"/e/{event.display_id}", f"/e/{event.display_id}/present"):
            async with http.get(server.base_url + path) as resp:
                html = await resp.text()
            assert "dQw4w9WgXcQ" not in html and "youtube" not in html.lower(), path
