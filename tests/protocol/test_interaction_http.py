"""Interaction over HTTP: CTA click redirect and counting, poll images, CSV/JSON exports."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import RunningServer, make_config, running_server
from tests.protocol.test_dashboard import add_user, sign_in
from tests.protocol.test_interaction import POLL, Person, enter, refused
from webinar.config import AdminConfig
from webinar.http.interaction import MAX_IMAGE_BYTES
from webinar.interaction import store as ist

ADMIN = "admin-token-for-tests-0123456789"


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


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
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_cta_click_redirects_and_counts_per_attendee(
    server: RunningServer, people: list[Person], http: aiohttp.ClientSession
) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann")
    bob = await enter(server, people, event, "Bob")
    await pres.request(
        "cta-show", message="Buy the book", button="Buy", url="https://shop.example.com/b?x=1"
    )
    ann_cta = (await ann.wait("cta"))["cta"]
    bob_cta = (await bob.wait("cta"))["cta"]
    assert ann_cta["click_url"] != bob_cta["click_url"]
    for link in (ann_cta["click_url"], ann_cta["click_url"], bob_cta["click_url"]):
        async with http.get(server.base_url + link, allow_redirects=False) as resp:
            assert resp.status == 302
            assert resp.headers["Location"] == "https://shop.example.com/b?x=1"
    clicks = await pres.wait("cta-clicks", where=lambda m: m["clicks"] == 3)
    assert clicks["cta_id"] == ann_cta["cta_id"]
    assert not [m for m in ann.seen if m["type"] == "cta-clicks"]
    # a forged token still goes to the stored URL, but is not counted
    forged = ann_cta["click_url"][:-4] + "AAAA"
    async with http.get(server.base_url + forged, allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "https://shop.example.com/b?x=1"
    async with http.get(
        server.base_url + "/cta/ct_0000000000000000?t=x", allow_redirects=False
    ) as resp:
        assert resp.status == 404
    cta_id = ann_cta["cta_id"]
    assert await server.store.run(lambda core: ist.click_count(core, cta_id)) == 3
    assert (await pres.request("sync-interaction"))["cta"]["clicks"] == 3  # after a reload
    assert (await ann.request("sync-interaction"))["cta"]["clicks"] is None
    async with http.get(
        f"{server.base_url}/api/admin/events/{event.event_id}/export/cta.csv",
        headers={"Authorization": f"Bearer {ADMIN}"},
    ) as resp:
        assert resp.status == 200
        exported = rows(await resp.text())
    assert sorted(r["name"] for r in exported) == ["Ann", "Ann", "Bob"]
    assert {r["participant_id"] for r in exported} == {ann.pid, bob.pid}


async def test_poll_images_are_checked_and_served_from_our_origin(
    server: RunningServer, people: list[Person], http: aiohttp.ClientSession
) -> None:
    event = await server.create_event()
    other = await server.create_event("Other")
    url = f"{server.base_url}/api/events/{event.event_id}/images"
    key = {"X-Presenter-Key": event.presenter_key}
    async with http.post(url, data=png()) as resp:
        assert resp.status == 403
    async with http.post(url, data=b"<svg onload=alert(1)></svg>", headers=key) as resp:
        assert resp.status == 415
        assert (await resp.json())["error"] == "unsupported-type"
    big = png()[:16] + b"\x00" * MAX_IMAGE_BYTES
    async with http.post(url, data=io.BytesIO(big), headers=key) as resp:
        assert resp.status == 413
    async with http.post(url, data=png(), headers=key) as resp:
        assert resp.status == 201
        uploaded = await resp.json()
    async with http.get(server.base_url + uploaded["url"]) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert await resp.read() == png()
    async with http.get(server.base_url + "/images/img_" + "0" * 24) as resp:
        assert resp.status == 404
    async with http.get(server.base_url + "/images/..%2Fwebinar.sqlite3") as resp:
        assert resp.status == 404

    pres = await enter(server, people, event, "Pres", event.presenter_key)
    spec: dict[str, Any] = {
        "title": "Pick a cover",
        "questions": [
            {
                "text": "Which?",
                "options": [{"text": "Red", "image_id": uploaded["image_id"]}, {"text": "Plain"}],
            }
        ],
    }
    poll = (await pres.request("poll-create", **spec))["poll"]
    assert poll["questions"][0]["options"][0]["image_url"] == uploaded["url"]
    elsewhere = await enter(server, people, other, "Pres2", other.presenter_key)
    await refused("invalid-request", elsewhere.request("poll-create", **spec))


async def test_exports_from_admin_api_and_dashboard(
    server: RunningServer, people: list[Person], http: aiohttp.ClientSession
) -> None:
    add_user(server, "olga")
    organiser = await sign_in(server, "olga")
    try:
        user = await server.store.get_user_by_name("olga")
        assert user is not None
        event = await server.create_event(owner_id=user.user_id)
        base = f"{server.base_url}/api/admin/events/{event.event_id}"
        auth = {"Authorization": f"Bearer {ADMIN}"}
        # prepared before the event through the API
        async with http.post(base + "/polls", json=POLL, headers=auth) as resp:
            assert resp.status == 201, await resp.text()
            prepared = (await resp.json())["poll"]
        async with http.post(base + "/polls", json={"title": "x"}, headers=auth) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"] == "invalid-request"
        async with http.post(base + "/polls", json=POLL) as resp:
            assert resp.status == 401

        pres = await enter(server, people, event, "Pres", event.presenter_key)
        ann = await enter(server, people, event, "=Ann")  # a formula-looking name
        state = await pres.request("sync-interaction")
        assert [p["poll_id"] for p in state["polls"]] == [prepared["poll_id"]]
        msg = await ann.request("chat-send", text="Hello, world")
        await ann.request("question-mark", message_id=msg["message_id"])
        q = (await ann.request("question-ask", text="Anonymous one", anonymous=True))["question"]
        await pres.request("question-state", question_id=q["question_id"], state="answered")
        await pres.request("poll-launch", poll_id=prepared["poll_id"])
        await ann.request(
            "poll-answer",
            poll_id=prepared["poll_id"],
            answers=[
                {"question_id": "q1", "option_ids": ["q1o2"]},
                {"question_id": "q2", "text": "because"},
            ],
        )
        # admin JSON
        async with http.get(base + "/interaction", headers=auth) as resp:
            assert resp.status == 200
            data = await resp.json()
        assert [m["text"] for m in data["chat"]] == ["Hello, world"]
        assert {x["text"]: x["state"] for x in data["questions"]} == {
            "Hello, world": "new",
            "Anonymous one": "answered",
        }
        anon = next(x for x in data["questions"] if x["anonymous"])
        assert anon["name"] == "=Ann"  # kept for the organiser
        assert [(a["question_id"], a["answer"]) for a in data["polls"]] == [
            ("q1", "Friday"),
            ("q2", "because"),
        ]
        # dashboard CSV, owner only
        url = f"{server.base_url}/dashboard/events/{event.event_id}/export"
        async with organiser.get(url + "/chat.csv") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/csv")
            assert "attachment" in resp.headers["Content-Disposition"]
            chat = rows(await resp.text())
        assert chat[0]["text"] == "Hello, world" and chat[0]["name"] == "'=Ann"
        assert chat[0]["time"].endswith("+00:00")
        async with organiser.get(url + "/polls.csv") as resp:
            polls = rows(await resp.text())
        assert [r["answer"] for r in polls] == ["Friday", "because"]
        async with organiser.get(url + "/questions.csv") as resp:
            questions = rows(await resp.text())
        assert {r["text"]: r["votes"] for r in questions} == {
            "Hello, world": "0",
            "Anonymous one": "0",
        }
        async with organiser.get(url + "/nope.csv") as resp:
            assert resp.status == 404
        async with http.get(url + "/chat.csv", allow_redirects=False) as resp:
            assert resp.status in (302, 303)  # not signed in
    finally:
        await organiser.close()


async def test_organiser_prepares_polls_on_the_dashboard(
    server: RunningServer, people: list[Person], http: aiohttp.ClientSession
) -> None:
    add_user(server, "olga")
    add_user(server, "mallory")
    organiser = await sign_in(server, "olga")
    other = await sign_in(server, "mallory")
    try:
        user = await server.store.get_user_by_name("olga")
        assert user is not None
        event = await server.create_event(owner_id=user.user_id)
        page = f"{server.base_url}/dashboard/events/{event.display_id}"
        async with organiser.get(page) as resp:
            html = await resp.text()
        for kind in ist.EXPORT_KINDS:
            assert f'href="/dashboard/events/{event.display_id}/export/{kind}.csv"' in html
        async with organiser.get(page + "/polls") as resp:
            assert resp.status == 200
            html = await resp.text()
        assert 'data-testid="no-prepared-polls"' in html
        csrf = html.split('data-csrf="', 1)[1].split('"', 1)[0]
        async with organiser.post(page + "/polls", json=POLL) as resp:
            assert resp.status == 403  # no CSRF token
        async with other.post(page + "/polls", json=POLL, headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 404  # not mallory's event
        async with organiser.post(
            page + "/polls", json={**POLL, "questions": []}, headers={"X-CSRF-Token": csrf}
        ) as resp:
            assert resp.status == 400
        async with organiser.post(
            page + "/polls", json=POLL, headers={"X-CSRF-Token": csrf}
        ) as resp:
            assert resp.status == 201, await resp.text()
            poll_id = (await resp.json())["poll"]["poll_id"]
        async with organiser.get(page + "/polls") as resp:
            assert f'data-poll-id="{poll_id}"' in await resp.text()
        pres = await enter(server, people, event, "Pres", event.presenter_key)
        state = await pres.request("sync-interaction")
        assert [p["poll_id"] for p in state["polls"]] == [poll_id]
    finally:
        await organiser.close()
        await other.close()
