"""Presentations over real HTTP: a 10-page PDF uploaded, rendered by PDFium in the server's
child process, its pages served as WebP under the event's access rules and cache rules;
broken PDFs failing clearly; presenters uploading during the event with their key; the
dashboard showing each presentation's state (tests/presentation_files.py makes the files)."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.presentation_files import (
    BLACK,
    COLOURS,
    PAGE_W,
    block_centre,
    deck,
    encrypted_pdf,
    near,
    truncated,
)
from tests.protocol.test_content import Setup, _access_event, config, files_on_disk, start
from webinar.accounts import hash_password
from webinar.ids import format_event_id
from webinar.storage.store import Event

SCALE = 1600 / PAGE_W


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    """Files up to 2 MiB, 20 MiB per organiser, no scanner, at most 50 pages."""
    cfg = config(tmp_path / "data", max_file_mb=2, quota_mb=20, max_pages=50)
    async for running in start(tmp_path, cfg):
        yield running


def pages_url(setup: Setup, made: dict[str, Any], event: Event | None = None) -> str:
    shown = format_event_id((event or setup.event).event_id)
    return f"{setup.base}/e/{shown}/content/{made['content_id']}/pages"


async def rendered(
    setup: Setup,
    made: dict[str, Any],
    *,
    event: Event | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``/pages`` once the rendering has ended (ready or failed)."""
    for _ in range(1200):
        async with setup.http.get(pages_url(setup, made, event), headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Cache-Control"] == "private, no-cache"
            state: dict[str, Any] = await resp.json()
        assert state["status"] in ("rendering", "ready", "failed"), state
        if state["status"] != "rendering":
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"still rendering: {state}")


async def test_a_pdf_is_rendered_and_served_page_by_page(setup: Setup) -> None:
    status, made = await setup.upload(deck(10), name="deck.pdf")
    assert status == 201, made
    assert made["render_status"] == "rendering" and made["pages"] is None
    state = await rendered(setup, made)
    assert state == {"pages": 10, "status": "ready", "message": None}
    url = pages_url(setup, made)
    async with setup.http.get(f"{url}/4") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/webp"
        # an open event's pages may be kept by any cache, for ever
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        etag = resp.headers["ETag"]
        body = await resp.read()
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "WEBP" and image.width == 1600
        rgb = image.convert("RGB")
        assert near(rgb.getpixel((30, 30)), COLOURS[3])  # type: ignore[arg-type]
        assert near(rgb.getpixel(block_centre(4, SCALE)), BLACK)  # type: ignore[arg-type]
        assert near(rgb.getpixel(block_centre(9, SCALE)), COLOURS[3])  # type: ignore[arg-type]
    async with setup.http.get(f"{url}/4", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
    async with setup.http.get(f"{url}/5") as resp:
        assert resp.status == 200 and resp.headers["ETag"] != etag
        assert await resp.read() != body
    for wrong in ("11", "0", "abc", "999999999"):
        async with setup.http.get(f"{url}/{wrong}") as resp:
            assert resp.status == 404, wrong
            error = await resp.json()
            assert error["error"] == "no-such-page", error
            assert "10 pages" in error["message"]
    # the lists say how many pages it has
    (item,) = await setup.listed()
    assert (item["pages"], item["render_status"], item["render_message"]) == (10, "ready", None)
    shown = format_event_id(setup.event.event_id)
    presenter = {"X-Presenter-Key": setup.event.presenter_key}
    async with setup.http.get(f"{setup.base}/e/{shown}/content", headers=presenter) as resp:
        (item,) = (await resp.json())["items"]
        assert (item["pages"], item["render_status"]) == (10, "ready")


async def test_broken_pdfs_fail_clearly_and_stay_downloadable(setup: Setup) -> None:
    _s, locked = await setup.upload(encrypted_pdf(), name="locked.pdf")
    _s, cut = await setup.upload(truncated(deck(10)), name="cut.pdf")
    for made, words in ((locked, "password"), (cut, "damaged")):
        state = await rendered(setup, made)
        assert state["status"] == "failed" and state["pages"] == 0, state
        assert words in state["message"], state
        async with setup.http.get(f"{pages_url(setup, made)}/1") as resp:
            assert resp.status == 404
            error = await resp.json()
            assert error["error"] == "not-rendered" and words in error["message"]
        async with setup.http.get(setup.base + made["url"]) as resp:
            assert resp.status == 200 and (await resp.read()).startswith(b"%PDF-")
    listed = {f["content_id"]: f for f in await setup.listed()}
    assert listed[locked["content_id"]]["render_status"] == "failed"
    assert "password" in listed[locked["content_id"]]["render_message"]
    assert listed[cut["content_id"]]["render_status"] == "failed"


async def test_a_presentation_longer_than_max_pages_says_so(tmp_path: Path) -> None:
    cfg = config(tmp_path / "data", max_pages=4)
    async for setup in start(tmp_path, cfg):
        _s, made = await setup.upload(deck(5), name="long.pdf")
        state = await rendered(setup, made)
        assert state["status"] == "failed"
        assert "5 pages, more than the 4" in state["message"]


async def test_other_files_are_not_presentations(setup: Setup) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    status, made = await setup.upload(png, name="a.png", content_type="image/png")
    assert status == 201 and made["render_status"] == "none" and made["pages"] is None
    for suffix in ("", "/1"):
        async with setup.http.get(pages_url(setup, made) + suffix) as resp:
            assert resp.status == 404 and (await resp.json())["error"] == "not-a-presentation"
    shown = format_event_id(setup.event.event_id)
    async with setup.http.get(f"{setup.base}/e/{shown}/content/cnt_{'0' * 24}/pages/1") as resp:
        assert resp.status == 404 and (await resp.json())["error"] == "not-found"


@pytest.mark.parametrize("kind", ["password", "token", "paid"])
async def test_page_images_of_a_closed_event_need_admission(setup: Setup, kind: str) -> None:
    event, credential = await _access_event(setup, kind)
    status, made = await setup.upload(deck(3), name="deck.pdf", event=event)
    assert status == 201, made
    presenter = {"X-Presenter-Key": event.presenter_key}
    assert (await rendered(setup, made, event=event, headers=presenter))["pages"] == 3
    url = pages_url(setup, made, event)
    for headers in ({}, {"X-Content-Pass": f"{event.event_id}.9999999999.forged"}):
        for target in (url, f"{url}/1"):
            async with setup.http.get(target, headers=headers) as resp:
                assert resp.status == 403, target
                assert (await resp.json())["error"] == "not-admitted"
    shown = format_event_id(event.event_id)
    async with setup.http.post(
        f"{setup.base}/e/{shown}/content-pass", json={"credential": credential}
    ) as resp:
        assert resp.status == 200, await resp.text()
        content_pass = (await resp.json())["pass"]
    async with setup.http.get(f"{url}?pass={content_pass}") as resp:
        assert resp.status == 200 and (await resp.json())["pages"] == 3
    async with setup.http.get(f"{url}/2?pass={content_pass}") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/webp"
        # the pages of a closed event are kept by the browser only
        assert resp.headers["Cache-Control"] == "private, max-age=31536000, immutable"
        with Image.open(io.BytesIO(await resp.read())) as image:
            assert image.width == 1600
    async with setup.http.get(f"{url}/2", headers=presenter) as resp:
        assert resp.status == 200


async def test_presenters_upload_during_the_event(setup: Setup) -> None:
    shown = format_event_id(setup.event.event_id)
    url = f"{setup.base}/e/{shown}/content"

    async def post(data: bytes, name: str, key: str | None) -> tuple[int, dict[str, Any]]:
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(data), filename=name, content_type="application/pdf")
        headers = {} if key is None else {"X-Presenter-Key": key}
        async with setup.http.post(url, data=form, headers=headers) as resp:
            return resp.status, await resp.json()

    status, body = await post(deck(2), "late.pdf", None)
    assert status == 403 and body["error"] == "forbidden", body
    status, body = await post(deck(2), "late.pdf", "not-the-key")
    assert status == 403 and body["error"] == "forbidden", body
    assert files_on_disk(setup) == []
    status, made = await post(deck(2), "late.pdf", setup.event.presenter_key)
    assert status == 201, made
    assert made["uploaded_by"] == "presenter" and made["file_name"] == "late.pdf"
    assert made["url"] == f"/e/{shown}/content/{made['content_id']}"
    assert made["render_status"] == "rendering"
    # the same shape as the room's list
    async with setup.http.get(url, headers={"X-Presenter-Key": setup.event.presenter_key}) as resp:
        (item,) = (await resp.json())["items"]
    assert set(item) == set(made) and item["content_id"] == made["content_id"]
    assert (await rendered(setup, made))["pages"] == 2
    # the limits, the type check: the organiser's
    status, body = await post(
        b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024 + 10), "huge.pdf", setup.event.presenter_key
    )
    assert status == 413 and body["error"] == "file-too-large", body
    assert body["max_bytes"] == 2 * 1024 * 1024 and "2 MB" in body["message"]
    status, body = await post(b"<html>no</html>", "fake.pdf", setup.event.presenter_key)
    assert status == 415 and body["error"] == "type-mismatch", body
    async with setup.http.post(
        url, data=b"raw", headers={"X-Presenter-Key": setup.event.presenter_key}
    ) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "no-file"
    assert len(await setup.listed()) == 1
    on_disk = [p.name for p in files_on_disk(setup)]
    assert sorted(on_disk) == ["1.webp", "2.webp", made["content_id"]]


async def test_deleting_a_presentation_deletes_its_pages(setup: Setup) -> None:
    _s, made = await setup.upload(deck(10), name="deck.pdf")
    assert (await rendered(setup, made))["pages"] == 10
    assert len(files_on_disk(setup)) == 11
    async with setup.http.delete(
        f"{setup.base}/api/v1/content/{made['content_id']}", headers=setup.auth
    ) as resp:
        assert resp.status == 204
    assert files_on_disk(setup) == []
    async with setup.http.get(f"{pages_url(setup, made)}/1") as resp:
        assert resp.status == 404
    # deleted while it is being rendered: nothing is left either
    _s, made = await setup.upload(deck(10), name="deck.pdf")
    await asyncio.sleep(0.3)
    async with setup.http.delete(
        f"{setup.base}/api/v1/content/{made['content_id']}", headers=setup.auth
    ) as resp:
        assert resp.status == 204
    await asyncio.sleep(0.5)
    assert files_on_disk(setup) == []


async def test_the_dashboard_shows_each_presentations_state(setup: Setup) -> None:
    _s, good = await setup.upload(deck(3), name="good.pdf")
    _s, locked = await setup.upload(encrypted_pdf(), name="locked.pdf")
    await rendered(setup, good)
    await rendered(setup, locked)
    with setup.server.store.connect_sync() as sync:
        sync.set_password_hash("olga", hash_password("correct horse battery", n=2**10))
    base = setup.base
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(base + "/login") as resp:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
            assert csrf
        async with http.post(
            base + "/login",
            data={"csrf": csrf.group(1), "username": "olga", "password": "correct horse battery"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        page = f"{base}/dashboard/events/{format_event_id(setup.event.event_id)}/content"
        async with http.get(page) as resp:
            html = await resp.text()
        assert 'data-render-status="ready" data-pages="3"' in html
        assert "Presentation: 3 pages" in html
        assert 'data-render-status="failed"' in html and "protected by a password" in html
        assert html.count('data-testid="content-item-render-again"') == 1
        token = re.search(r'name="csrf" value="([^"]+)"', html)
        assert token
        # trying again renders it again (and it fails again, the same way)
        async with http.post(
            f"{page}/{locked['content_id']}/render",
            data={"csrf": token.group(1)},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        async with http.get(page) as resp:
            html = await resp.text()
        assert 'data-render-status="rendering"' in html or "protected by a password" in html
        assert (await rendered(setup, locked))["status"] == "failed"
