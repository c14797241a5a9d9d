"""Files downloaded in the room, counted per attendee: content passes that name their holder,
downloads over real HTTP (ranged requests, page elements and repeats within a minute not
counted), ``ContentService.downloads`` and the engagement export's columns (JSON, CSV, the
statistics page), and deleting them with the event's personal data."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import Person, join_person
from tests.protocol.test_content import Setup, _access_event, config, pdf_of, start
from webinar.app import CONTENT, CONTENT_ACCESS
from webinar.ids import format_event_id
from webinar.storage.store import Event

ANN, BOB = "client:ann-laptop", "client:bob-phone"


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async for made in start(tmp_path, config(tmp_path / "data", max_file_mb=1, quota_mb=3)):
        yield made


async def fetch(setup: Setup, url: str, token: str, **headers: str) -> int:
    async with setup.http.get(f"{url}?pass={token}", headers=headers) as resp:
        await resp.read()
        return resp.status


async def engagement(setup: Setup, event: Event) -> dict[str, dict[str, object]]:
    shown = format_event_id(event.event_id)
    async with setup.http.get(
        f"{setup.base}/api/v1/events/{shown}/engagement", headers=setup.auth
    ) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert "files_downloaded" in body["columns"] and "files_names" in body["columns"]
    return {row["name"]: row for row in body["attendees"]}


async def test_downloads_are_counted_per_person_and_exported(setup: Setup) -> None:
    event, credential = await _access_event(setup, "password")
    files = []
    for name in ("deck.pdf", "notes.pdf"):
        status, made = await setup.upload(pdf_of(4000), name=name, event=event)
        assert status == 201, made
        files.append(setup.base + made["url"])
    deck, notes = files
    people: list[Person] = []
    try:
        # Ann and Bob are in the room (their person keys are their browsers' client ids)
        await join_person(setup.server, people, Person, event, "Ann", credential,
                          client_id="ann-laptop")  # fmt: skip
        await join_person(setup.server, people, Person, event, "Bob", credential,
                          client_id="bob-phone")  # fmt: skip
        access = setup.server.server.app[CONTENT_ACCESS]
        ann_pass, _expires = access.issue(event.event_id, who=ANN)
        bob_pass, _expires = access.issue(event.event_id, who=BOB)
        nobody_pass, _expires = access.issue(event.event_id)
        # Ann takes the deck twice at once and once more (a minute has not passed: once),
        # and the notes; Bob the deck
        statuses = await asyncio.gather(fetch(setup, deck, ann_pass), fetch(setup, deck, ann_pass))
        assert statuses == [200, 200]
        assert await fetch(setup, deck, ann_pass) == 200
        assert await fetch(setup, notes, ann_pass, **{"Sec-Fetch-Dest": "document"}) == 200
        assert await fetch(setup, deck, bob_pass) == 200
        # not counted: a media element's ranged requests, an image in a page, a pass for
        # nobody, a HEAD request, a forged pass (refused)
        assert await fetch(setup, notes, bob_pass, Range="bytes=0-") == 206
        assert await fetch(setup, notes, bob_pass, **{"Sec-Fetch-Dest": "video"}) == 200
        assert await fetch(setup, notes, bob_pass, **{"Sec-Fetch-Dest": "image"}) == 200
        assert await fetch(setup, notes, nobody_pass) == 200
        async with setup.http.head(f"{notes}?pass={bob_pass}") as resp:
            assert resp.status == 200
        forged = bob_pass.replace(bob_pass.split(".")[2], ann_pass.split(".")[2])
        assert await fetch(setup, notes, forged) == 403
        service = setup.server.server.app[CONTENT]
        assert await service.downloads(event.event_id) == {ANN: 2, BOB: 1}
        # a minute later the same file counts again
        (info,) = [f for f in await service.list(event.event_id) if f.file_name == "deck.pdf"]
        assert await service.record_download(info, ANN, at=time.time() + 61.0)
        assert await service.downloads(event.event_id) == {ANN: 3, BOB: 1}

        rows = await engagement(setup, event)
        assert (rows["Ann"]["files_downloaded"], rows["Bob"]["files_downloaded"]) == (3, 1)
        assert rows["Ann"]["files_names"] == "deck.pdf | notes.pdf"
        assert rows["Bob"]["files_names"] == "deck.pdf"
        shown = format_event_id(event.event_id)
        async with setup.http.get(
            f"{setup.base}/api/v1/events/{shown}/exports/engagement.csv", headers=setup.auth
        ) as resp:
            table = list(csv.DictReader(io.StringIO(await resp.text())))
        by_name = {row["name"]: row for row in table}
        assert (by_name["Ann"]["files_downloaded"], by_name["Bob"]["files_downloaded"]) == (
            "3",
            "1",
        )
        # the organiser's statistics page: a translated column
        async with setup.http.get(
            f"{setup.base}/api/v1/events/{shown}/stats", headers=setup.auth
        ) as resp:
            stats = await resp.json()
        engaged = {p["name"]: p["engagement"] for p in stats["people"]}
        assert engaged["Ann"]["files_downloaded"] == 3
        for person in people:
            await person.request("leave")
    finally:
        await asyncio.gather(*(p.close() for p in people))
    # the event's personal data goes with the downloads counted
    async with setup.http.delete(
        f"{setup.base}/api/v1/events/{shown}/personal-data", headers=setup.auth
    ) as resp:
        assert resp.status == 204, await resp.text()
    assert await setup.server.server.app[CONTENT].downloads(event.event_id) == {}


async def test_the_statistics_page_shows_files_downloaded(setup: Setup) -> None:
    event = setup.event  # open event: anyone with the link; a pass still names its holder
    status, made = await setup.upload(pdf_of(3000), name="handout.pdf")
    assert status == 201, made
    people: list[Person] = []
    try:
        await join_person(setup.server, people, Person, event, "Cleo", client_id="cleo")
        token, _expires = setup.server.server.app[CONTENT_ACCESS].issue(
            event.event_id, who="client:cleo"
        )
        assert await fetch(setup, setup.base + made["url"], token) == 200
        # an open event's file without a pass: served, nobody counted
        async with setup.http.get(setup.base + made["url"]) as resp:
            assert resp.status == 200
        await sign_in_and_check(setup, event)
    finally:
        await asyncio.gather(*(p.close() for p in people))


async def sign_in_and_check(setup: Setup, event: Event) -> None:
    from tests.protocol.test_dashboard import csrf_of
    from webinar.accounts import hash_password

    with setup.server.store.connect_sync() as sync:
        sync.set_password_hash("olga", hash_password("correct horse battery", n=2**10))
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(setup.base + "/login") as resp:
            token = csrf_of(await resp.text())
        async with http.post(
            setup.base + "/login",
            data={"csrf": token, "username": "olga", "password": "correct horse battery"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        page = f"{setup.base}/dashboard/events/{format_event_id(event.event_id)}/stats"
        async with http.get(page, headers={"Accept-Language": "en"}) as resp:
            html = await resp.text()
    assert "Files downloaded" in html
    assert 'data-testid="attendee-downloads" title="handout.pdf">1<' in html
