"""Prepared before the event, used in the room: polls changed and deleted on the dashboard
and the admin API (only while they never ran), calls-to-action prepared there and
launched by a presenter, with live updates to presenters already in the room."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import RunningServer, make_config, running_server
from tests.protocol.test_dashboard import add_user, csrf_of, sign_in
from tests.protocol.test_interaction import POLL, Person, enter, refused
from webinar.config import AdminConfig
from webinar.rooms.cta import MAX_PREPARED_CTAS
from webinar.storage.store import Event

ADMIN = "admin-token-for-tests-0123456789"
BEARER = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    data = tmp_path / "data"
    config = dataclasses.replace(make_config(data), admin=AdminConfig(token=ADMIN))
    async with running_server(data, config) as srv:
        yield srv


@pytest.fixture
async def people(server: RunningServer) -> AsyncIterator[list[Person]]:
    made: list[Person] = []
    yield made
    await asyncio.gather(*(p.close() for p in made))


@pytest.fixture
async def organiser(server: RunningServer) -> AsyncIterator[tuple[Event, aiohttp.ClientSession]]:
    add_user(server, "olga")
    user = await server.store.get_user_by_name("olga")
    assert user is not None
    event = await server.create_event(owner_id=user.user_id)
    http = await sign_in(server, "olga")
    yield event, http
    await http.close()


async def test_prepared_polls_are_changed_and_deleted_until_they_run(
    server: RunningServer, people: list[Person], organiser: tuple[Event, aiohttp.ClientSession]
) -> None:
    event, http = organiser
    page = f"{server.base_url}/dashboard/events/{event.display_id}/polls"
    async with http.get(page) as resp:
        csrf = (await resp.text()).split('data-csrf="', 1)[1].split('"', 1)[0]
    headers = {"X-CSRF-Token": csrf}
    async with http.post(page, json=POLL, headers=headers) as resp:
        first = (await resp.json())["poll"]["poll_id"]
    async with http.post(page, json={**POLL, "title": "Second"}, headers=headers) as resp:
        second = (await resp.json())["poll"]["poll_id"]

    # before anyone is in the room: change the first one (it stays where it was)
    changed = {**POLL, "title": "Which day suits you?", "kind": "test"}
    changed["questions"] = [
        {
            "text": "Pick",
            "kind": "single",
            "options": [{"text": "Mon", "correct": True}, {"text": "Fri"}],
        }
    ]
    async with http.put(f"{page}/{first}", json=changed) as resp:
        assert resp.status == 403  # no CSRF token
    async with http.put(f"{page}/{first}", json={"title": "x"}, headers=headers) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "invalid-request"
    async with http.put(f"{page}/{first}", json=changed, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        body = (await resp.json())["poll"]
        assert body["poll_id"] == first and body["kind"] == "test"
    async with http.put(f"{page}/po_missing", json=changed, headers=headers) as resp:
        assert resp.status == 404
    async with http.get(page) as resp:
        html = await resp.text()
    assert html.index("Which day suits you?") < html.index("Second")
    assert html.count('data-testid="prepared-poll-edit"') == 2

    # a presenter in the room sees changes and deletions as they happen
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann")
    state = await pres.request("sync-interaction")
    assert [p["title"] for p in state["polls"]] == ["Which day suits you?", "Second"]
    async with http.put(
        f"{server.base_url}/api/admin/events/{event.event_id}/polls/{second}",
        json={**POLL, "title": "Second, better"},
        headers=BEARER,
    ) as resp:
        assert resp.status == 200
    updated = await pres.wait("poll", where=lambda m: m["cause"] == "updated")
    assert updated["poll"]["title"] == "Second, better"
    async with http.delete(f"{page}/{second}", headers=headers) as resp:
        assert resp.status == 200
    await pres.wait("poll-deleted", where=lambda m: m["poll_id"] == second)
    assert not [m for m in ann.seen if m["type"] in ("poll", "poll-deleted")]  # drafts

    # once it ran, it holds answers: neither changed nor deleted
    await pres.request("poll-launch", poll_id=first)
    async with http.put(f"{page}/{first}", json=changed, headers=headers) as resp:
        assert resp.status == 400
        assert "never ran" in (await resp.json())["message"]
    async with http.delete(f"{page}/{first}", headers=headers) as resp:
        assert resp.status == 400
    async with http.delete(
        f"{server.base_url}/api/admin/events/{event.event_id}/polls/{first}", headers=BEARER
    ) as resp:
        assert resp.status == 400
    state = await pres.request("sync-interaction")
    assert [p["poll_id"] for p in state["polls"]] == [first]


async def test_prepared_ctas_are_launched_in_the_room(
    server: RunningServer, people: list[Person], organiser: tuple[Event, aiohttp.ClientSession]
) -> None:
    event, http = organiser
    page = f"{server.base_url}/dashboard/events/{event.display_id}/ctas"
    async with http.get(page) as resp:
        html = await resp.text()
        assert resp.status == 200 and 'data-testid="no-prepared-ctas"' in html
    csrf = csrf_of(html)
    cta = {"message": "Book a demo", "button": "Book", "url": "https://example.com/demo"}
    async with http.post(page, data={**cta, "csrf": "wrong"}) as resp:
        assert resp.status == 403
    async with http.post(page, data={**cta, "message": "x" * 55, "csrf": csrf}) as resp:
        assert resp.status == 400
        assert 'data-testid="prepare-cta-error"' in await resp.text()
    async with http.post(page, data={**cta, "url": "javascript:alert(1)", "csrf": csrf}) as resp:
        assert resp.status == 400 and "http" in await resp.text()
    async with http.post(
        page, data={**cta, "duration_seconds": "30", "csrf": csrf}, allow_redirects=False
    ) as resp:
        assert resp.status == 303
    async with http.get(page) as resp:
        html = await resp.text()
    assert html.count('data-testid="prepared-cta"') == 1 and "Book a demo" in html
    admin_url = f"{server.base_url}/api/admin/events/{event.event_id}/ctas"
    (prepared,) = (await (await http.get(admin_url, headers=BEARER)).json())["ctas"]
    assert prepared["duration_seconds"] == 30

    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann")
    state = await pres.request("sync-interaction")
    assert [p["message"] for p in state["prepared_ctas"]] == ["Book a demo"]
    assert (await ann.request("sync-interaction"))["prepared_ctas"] is None
    await refused("forbidden", ann.request("cta-launch", prepared_id=prepared["prepared_id"]))
    await refused("not-found", pres.request("cta-launch", prepared_id="cp_0000"))

    # prepared while the room is live (admin API): presenters get the new list
    async with http.post(
        admin_url, json={"message": "Get the slides", "button": "Slides", "url": "https://e.x/s"},
        headers=BEARER,
    ) as resp:  # fmt: skip
        assert resp.status == 201
        slides = (await resp.json())["cta"]
    pushed = await pres.wait("cta-prepared", where=lambda m: len(m["prepared"]) == 2)
    assert [p["message"] for p in pushed["prepared"]] == ["Book a demo", "Get the slides"]
    assert not [m for m in ann.seen if m["type"] == "cta-prepared"]
    async with http.post(admin_url, json={**cta, "url": "ftp://x"}, headers=BEARER) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "bad-url"

    # launched: attendees get it as prepared, with their own counted click link
    await pres.request("cta-launch", prepared_id=prepared["prepared_id"])
    shown = (await ann.wait("cta", where=lambda m: m["cta"] is not None))["cta"]
    assert (shown["message"], shown["button"], shown["url"]) == (
        "Book a demo",
        "Book",
        "https://example.com/demo",
    )
    assert shown["duration_seconds"] == 30 and shown["click_url"].startswith("/cta/")
    # the next one replaces it
    await pres.request("cta-launch", prepared_id=slides["prepared_id"])
    await ann.wait("cta", where=lambda m: m["cta"] is not None and m["cta"]["button"] == "Slides")

    # deleted on the dashboard: gone from the presenters' list
    async with http.post(
        f"{page}/{prepared['prepared_id']}/delete", data={"csrf": csrf}, allow_redirects=False
    ) as resp:
        assert resp.status == 303
    await pres.wait("cta-prepared", where=lambda m: len(m["prepared"]) == 1)
    async with http.delete(f"{admin_url}/{prepared['prepared_id']}", headers=BEARER) as resp:
        assert resp.status == 404


async def test_prepared_ctas_are_bounded(
    server: RunningServer, organiser: tuple[Event, aiohttp.ClientSession]
) -> None:
    event, http = organiser
    admin_url = f"{server.base_url}/api/admin/events/{event.event_id}/ctas"
    cta = {"message": "Hi", "button": "Go", "url": "https://example.com/"}
    for _ in range(MAX_PREPARED_CTAS):
        async with http.post(admin_url, json=cta, headers=BEARER) as resp:
            assert resp.status == 201
    async with http.post(admin_url, json=cta, headers=BEARER) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "limit-reached"
    async with http.post(admin_url, json={**cta, "duration_seconds": 2}, headers=BEARER) as resp:
        assert resp.status == 400
    async with http.post(admin_url, json=["not", "an", "object"], headers=BEARER) as resp:
        assert resp.status == 400
