"""An event's external player over real HTTP and WebSockets: the link checked where it is
entered (dashboard, API), the pages' Content-Security-Policy ``frame-src``, the link kept off
the event's public pages, and given only to those the ticket check admits (the room's
``stage`` message)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import (
    Person,
    RunningServer,
    connect_person,
    join_person,
    make_config,
    running_server,
)
from tests.protocol.test_dashboard import add_user, csrf_of, schedule, sign_in
from tests.protocol_fixtures import refused
from webinar.app import SERVICES
from webinar.config import ContentConfig
from webinar.content import passes
from webinar.storage import api_tokens
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Event
from webinar.ticketing import records
from webinar.ticketing.codes import format_code
from webinar.ticketing.records import EventAccess, PaymentProvider

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


async def _reserved_event(server: RunningServer, external_url: str) -> tuple[Event, str]:
    """A paid event starting in five minutes with an external player, and a confirmed
    registration's reservation code."""
    start = datetime.now(UTC) + timedelta(minutes=5)
    event = await server.store.run(
        lambda core: core.create_event(
            "Launch", start, access_type="paid", external_url=external_url
        )
    )
    eid = event.event_id
    access = EventAccess(eid, price_minor=2500, currency="EUR")
    await server.store.run(lambda core: records.put_access(core.connection, access))
    reg = await server.store.run(
        lambda core: records.add_registration(
            core.connection,
            eid,
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.org",
            seats=1,
            amount_minor=2500,
            currency="EUR",
            provider=PaymentProvider.MANUAL,
            capacity=None,
        )
    )
    confirmed = await server.store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code is not None
    return event, format_code(confirmed.code)


async def test_the_player_is_only_for_those_the_ticket_check_admits(
    server: RunningServer,
) -> None:
    event, code = await _reserved_event(server, YOUTUBE)
    people: list[Person] = []
    try:
        # no code, a wrong code: refused, and nothing they were sent names the player
        nobody = await connect_person(server, people, Person)
        await refused("credential-required", nobody.request("join", event_id=event.event_id,
                                                            name="Eve"))  # fmt: skip
        await refused("not-joined", nobody.request("sync-interaction"))
        wrong = await connect_person(server, people, Person)
        await refused(
            "bad-credential",
            wrong.request("join", event_id=event.event_id, name="Eve", credential="AAAA-BBBB-CCCC"),
        )
        for person in (nobody, wrong):
            said = json.dumps(person.seen)
            assert "dQw4w9WgXcQ" not in said and "external" not in said, said
        # the reservation code admits: the stage carries the player
        ada = await join_person(server, people, Person, event, "Ada", code, client_id="ada")
        stage = (await ada.request("sync-interaction"))["stage"]
        assert stage["external"] == {
            "url": EMBED,
            "provider": "youtube",
            "framable": True,
            "link": YOUTUBE,
        }
        assert stage["layout"] == "external"  # the event's player is what its stage shows
        # the content pass the room hands Ada names her: her downloads count for her
        secret = server.server.app[SERVICES].interaction_secret
        assert passes.check(secret, event.event_id, stage["content_pass"]) == "client:ada"
    finally:
        await asyncio.gather(*(p.close() for p in people))


async def test_zoom_is_offered_as_a_link(server: RunningServer) -> None:
    zoom = "https://us02web.zoom.us/w/81234567890?tk=abc"
    event = await server.create_event("Town hall", external_url=zoom)
    people: list[Person] = []
    try:
        ann = await join_person(server, people, Person, event, "Ann")
        stage = (await ann.request("sync-interaction"))["stage"]
        assert stage["external"] == {
            "url": zoom,
            "provider": "zoom",
            "framable": False,
            "link": zoom,
        }
    finally:
        await asyncio.gather(*(p.close() for p in people))
