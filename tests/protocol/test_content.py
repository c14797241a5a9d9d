"""Uploaded content over real HTTP: limits and quota enforced while the bytes arrive (nothing
kept on disk), files checked by what they are, a real clamd refusing EICAR, and downloads
under the event's access rules (tests/clamd_server.py starts clamd)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.clamd_server import EICAR, SIGNATURE, ClamdServer, clamd_server
from tests.helpers import Person, RunningServer, join_person, make_config, running_server
from webinar.accounts import hash_password
from webinar.app import CONFIG
from webinar.config import Config, UploadsConfig
from webinar.content.clamd import Clamd, ScanError
from webinar.ids import format_event_id
from webinar.storage import api_tokens
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Event
from webinar.ticketing import records
from webinar.ticketing.codes import format_code
from webinar.ticketing.records import EventAccess, PaymentProvider

__all__ = ["clamd_server"]

MIB = 1024 * 1024
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def pdf_of(size: int, filler: bytes = b"0") -> bytes:
    return (PDF + filler * size)[:size] if size > len(PDF) else PDF


def config(data: Path, **uploads: Any) -> Config:
    return dataclasses.replace(make_config(data), uploads=UploadsConfig(**uploads))


@dataclasses.dataclass
class Setup:
    server: RunningServer
    http: aiohttp.ClientSession
    auth: dict[str, str]
    event: Event

    @property
    def base(self) -> str:
        return self.server.base_url

    def upload_url(self, event: Event | None = None, name: str = "slides.pdf") -> str:
        event = event or self.event
        return f"{self.base}/api/v1/events/{format_event_id(event.event_id)}/content?name={name}"

    async def upload(
        self,
        body: Any,
        *,
        name: str = "slides.pdf",
        content_type: str = "application/pdf",
        event: Event | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        if isinstance(body, bytes):
            body = io.BytesIO(body)
        async with self.http.post(
            self.upload_url(event, name),
            data=body,
            headers={"Content-Type": content_type, **(headers or self.auth)},
        ) as resp:
            return resp.status, await resp.json()

    async def listed(self, event: Event | None = None) -> list[dict[str, Any]]:
        event = event or self.event
        async with self.http.get(
            f"{self.base}/api/v1/events/{format_event_id(event.event_id)}/content",
            headers=self.auth,
        ) as resp:
            assert resp.status == 200
            return list((await resp.json())["items"])


async def start(tmp_path: Path, cfg: Config) -> AsyncIterator[Setup]:
    async with running_server(cfg.data_dir, cfg) as server, aiohttp.ClientSession() as http:
        with server.store.connect_sync() as sync:
            olga = sync.create_user("olga", hash_password("x" * 12, n=2**10), "organiser")
        _tok, secret = await server.store.run(
            lambda core: api_tokens.create(core.connection, olga.user_id, "t", Scope.WRITE)
        )
        event = await server.store.run(
            lambda core: core.create_event("Launch", None, owner_id=olga.user_id)
        )
        yield Setup(server, http, {"Authorization": f"Bearer {secret}"}, event)


def shared(setup: Setup) -> Path:
    return setup.server.server.app[CONFIG].shared_dir


def files_on_disk(setup: Setup) -> list[Path]:
    root = shared(setup) / "content"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def slow_body(first: bytes, then_wait: float) -> AsyncIterator[bytes]:
    """``first`` in 64 KiB pieces, then nothing for ``then_wait`` seconds, then more."""
    for i in range(0, len(first), 64 * 1024):
        yield first[i : i + 64 * 1024]
    await asyncio.sleep(then_wait)
    yield b"0" * 1024


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[Setup]:
    """Files up to 1 MiB, 3 MiB per organiser, no scanner."""
    async for setup in start(tmp_path, config(tmp_path / "data", max_file_mb=1, quota_mb=3)):
        yield setup


async def test_upload_list_get_download_delete(small: Setup) -> None:
    body = pdf_of(300_000)
    status, made = await small.upload(body, name="Q3 slides (final).pdf")
    assert status == 201, made
    assert made["content_type"] == "application/pdf" and made["size_bytes"] == len(body)
    assert made["scan_status"] == "unscanned"  # no scanner configured
    assert made["file_name"] == "Q3 slides (final).pdf"
    assert [f["content_id"] for f in await small.listed()] == [made["content_id"]]
    async with small.http.get(small.base + made["download"], headers=small.auth) as resp:
        assert resp.status == 200 and await resp.read() == body
        assert resp.headers["Content-Type"] == "application/pdf"
        assert "attachment" in resp.headers["Content-Disposition"]
        assert (
            "filename*=UTF-8''Q3%20slides%20%28final%29.pdf"
            in (resp.headers["Content-Disposition"])
        )
        assert "immutable" in resp.headers["Cache-Control"]
        assert resp.headers["ETag"] == f'"{made["sha256"]}"'
    # open event: whoever has the event link gets the file, with the same caching
    async with small.http.get(small.base + made["url"]) as resp:
        assert resp.status == 200 and await resp.read() == body
        etag = resp.headers["ETag"]
    async with small.http.get(small.base + made["url"], headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
    async with small.http.delete(
        f"{small.base}/api/v1/content/{made['content_id']}", headers=small.auth
    ) as resp:
        assert resp.status == 204
    assert await small.listed() == [] and files_on_disk(small) == []


async def test_over_the_size_limit_is_refused_before_it_is_stored(small: Setup) -> None:
    # declared too large: refused at once
    status, body = await small.upload(pdf_of(MIB + 1))
    assert status == 413 and body["error"]["code"] == "file-too-large", body
    # streamed without a length: refused as soon as the limit is passed, while the client
    # still holds back the rest (the answer comes long before the body could end)
    began = time.monotonic()
    status, body = await small.upload(slow_body(pdf_of(MIB + 200_000), then_wait=30))
    assert status == 413 and body["error"]["code"] == "file-too-large", body
    assert time.monotonic() - began < 20
    assert "1 MB" in body["error"]["message"]
    assert files_on_disk(small) == [] and await small.listed() == []


async def test_over_the_quota_is_refused_and_nothing_stays(small: Setup) -> None:
    for _ in range(3):
        status, made = await small.upload(pdf_of(900_000))
        assert status == 201, made
    # 2.6 MiB used of 3: a declared 0.9 MiB does not fit
    status, body = await small.upload(pdf_of(900_000))
    assert status == 413 and body["error"]["code"] == "quota-exceeded", body
    assert "3 MB" in body["error"]["message"]
    # streamed: refused once the bytes pass what is left, before the rest arrives
    began = time.monotonic()
    status, body = await small.upload(slow_body(pdf_of(700_000), then_wait=30))
    assert status == 413 and body["error"]["code"] == "quota-exceeded", body
    assert time.monotonic() - began < 20
    # a small one still fits
    status, made = await small.upload(pdf_of(100_000))
    assert status == 201, made
    assert len(files_on_disk(small)) == 4 and len(await small.listed()) == 4


async def test_concurrent_uploads_cannot_pass_the_quota(small: Setup) -> None:
    async def one() -> int:
        status, _body = await small.upload(slow_body(pdf_of(800_000), then_wait=0.2))
        return status

    statuses = await asyncio.gather(*(one() for _ in range(8)))
    assert sorted(set(statuses)) == [201, 413], statuses
    kept = await small.listed()
    total = sum(f["size_bytes"] for f in kept)
    assert len(kept) == statuses.count(201) and total <= 3 * MIB
    assert len(files_on_disk(small)) == len(kept)


async def test_a_file_that_is_not_what_it_claims_is_refused(small: Setup) -> None:
    status, body = await small.upload(b"<html><script>alert(1)</script></html>")
    assert status == 415 and body["error"]["code"] == "type-mismatch", body
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    status, body = await small.upload(png, name="x.pdf")  # a PNG calling itself a PDF
    assert status == 415 and body["error"]["code"] == "type-mismatch", body
    status, body = await small.upload(b"MZ\x90\0" + b"\0" * 100, content_type="", name="a.exe")
    assert status == 415 and body["error"]["code"] == "unsupported-type", body
    status, body = await small.upload(png, content_type="application/octet-stream", name="p")
    assert status == 201 and body["content_type"] == "image/png", body
    assert len(files_on_disk(small)) == 1


async def test_presenters_upload_with_their_key(small: Setup) -> None:
    status, made = await small.upload(
        pdf_of(1000), headers={"X-Presenter-Key": small.event.presenter_key}
    )
    assert status == 201 and made["uploaded_by"] == "presenter", made
    status, body = await small.upload(pdf_of(1000), headers={"X-Presenter-Key": "wrong"})
    assert status == 403, body


async def _access_event(setup: Setup, kind: str) -> tuple[Event, str]:
    """An event of ``kind`` owned by olga, and the credential that admits an attendee."""
    store = setup.server.store
    owner = setup.event.owner_id
    start = datetime.now(UTC) + timedelta(minutes=5)
    event = await store.run(
        lambda core: core.create_event(kind, start, owner_id=owner, access_type=kind)
    )
    eid = event.event_id
    if kind == "password":
        access = EventAccess(eid, attendee_password_hash=hash_password("attend-me", n=2**10))
        await store.run(lambda core: records.put_access(core.connection, access))
        return event, "attend-me"
    if kind == "token":
        ada = await store.run(
            lambda core: records.add_invitee(core.connection, eid, "Ada", "ada@example.org")
        )
        return event, ada.token
    access = EventAccess(eid, price_minor=2500, currency="EUR")
    await store.run(lambda core: records.put_access(core.connection, access))
    reg = await store.run(
        lambda core: records.add_registration(
            core.connection,
            eid,
            first_name="Grace",
            last_name="Hopper",
            email="grace@example.org",
            seats=1,
            amount_minor=2500,
            currency="EUR",
            provider=PaymentProvider.MANUAL,
            capacity=None,
        )
    )
    confirmed = await store.run(
        lambda core: records.confirm_registration(core.connection, reg.registration_id)
    )
    assert confirmed is not None and confirmed.code is not None
    return event, format_code(confirmed.code)


@pytest.mark.parametrize("kind", ["password", "token", "paid"])
async def test_content_of_a_closed_event_needs_admission(small: Setup, kind: str) -> None:
    event, credential = await _access_event(small, kind)
    status, made = await small.upload(pdf_of(5000), event=event)
    assert status == 201, made
    url = small.base + made["url"]
    shown = format_event_id(event.event_id)
    for headers in ({}, {"X-Content-Pass": f"{event.event_id}.9999999999.forged"}):
        async with small.http.get(url, headers=headers) as resp:
            assert resp.status == 403, await resp.text()
            assert (await resp.json())["error"] == "not-admitted"
    async with small.http.get(f"{small.base}/e/{shown}/content") as resp:
        assert resp.status == 403
    # a wrong credential gets no pass
    async with small.http.post(
        f"{small.base}/e/{shown}/content-pass", json={"credential": "wrong-one"}
    ) as resp:
        assert resp.status == 403 and (await resp.json())["error"] == "bad-credential"
    # the event's credential gets one; with it, the list and the file
    async with small.http.post(
        f"{small.base}/e/{shown}/content-pass", json={"credential": credential}
    ) as resp:
        assert resp.status == 200, await resp.text()
        content_pass = (await resp.json())["pass"]
    # attendees list what is offered in the room (nothing yet); presenters the whole library
    async with small.http.get(f"{small.base}/e/{shown}/content?pass={content_pass}") as resp:
        assert resp.status == 200 and (await resp.json())["items"] == []
    presenter = {"X-Presenter-Key": event.presenter_key}
    async with small.http.get(f"{small.base}/e/{shown}/content", headers=presenter) as resp:
        assert resp.status == 200
        assert [f["content_id"] for f in (await resp.json())["items"]] == [made["content_id"]]
    async with small.http.get(url, headers={"X-Content-Pass": content_pass}) as resp:
        assert resp.status == 200 and (await resp.read()).startswith(b"%PDF-")
        assert resp.headers["Cache-Control"].startswith("private")
    # a pass of another event does not open this one
    async with small.http.post(
        f"{small.base}/e/{format_event_id(small.event.event_id)}/content-pass", json={}
    ) as resp:
        other_pass = (await resp.json())["pass"]
    async with small.http.get(url, headers={"X-Content-Pass": other_pass}) as resp:
        assert resp.status == 403
    # presenters fetch with their key
    async with small.http.get(url, headers={"X-Presenter-Key": event.presenter_key}) as resp:
        assert resp.status == 200


async def test_require_scan_without_a_scanner_refuses_uploads(tmp_path: Path) -> None:
    cfg = config(tmp_path / "data", require_scan=True)
    async for setup in start(tmp_path, cfg):
        status, body = await setup.upload(pdf_of(1000))
        assert status == 503 and body["error"]["code"] == "scanner-required", body
        assert "scanner" in body["error"]["message"]
        assert files_on_disk(setup) == [] and await setup.listed() == []


async def test_real_clamd_refuses_eicar_and_accepts_a_clean_pdf(
    tmp_path: Path, clamd_server: ClamdServer
) -> None:
    cfg = config(tmp_path / "data", clamd_socket=str(clamd_server.socket))
    async for setup in start(tmp_path, cfg):
        status, clean = await setup.upload(pdf_of(200_000))
        assert status == 201 and clean["scan_status"] == "clean", clean
        # the EICAR test string inside a real-looking PDF: passes the type check, not the scan
        infected = PDF + b"% " + EICAR + b"\n" + b"0" * 5000
        status, body = await setup.upload(infected, name="invoice.pdf")
        assert status == 422 and body["error"]["code"] == "malware-found", body
        assert SIGNATURE in body["error"]["signature"]
        assert "malware" in body["error"]["message"]
        # the bare EICAR file: not a type we take, refused before it is even scanned
        status, body = await setup.upload(EICAR, content_type="", name="eicar.com")
        assert status == 415, body
        assert [f["content_id"] for f in await setup.listed()] == [clean["content_id"]]
        assert [p.name for p in files_on_disk(setup)] == [clean["content_id"]]


async def test_a_scanner_that_is_down_refuses_uploads(tmp_path: Path) -> None:
    cfg = config(tmp_path / "data", clamd_socket=str(tmp_path / "no-clamd.sock"))
    async for setup in start(tmp_path, cfg):
        status, body = await setup.upload(pdf_of(1000))
        assert status == 503 and body["error"]["code"] == "scan-failed", body
        assert files_on_disk(setup) == [] and await setup.listed() == []


async def test_dashboard_content_page_uploads_lists_and_warns(small: Setup) -> None:
    base = small.base
    with small.server.store.connect_sync() as sync:
        sync.set_password_hash("olga", hash_password("correct horse battery", n=2**10))
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(base + "/login") as resp:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
            assert csrf
        async with http.post(
            base + "/login",
            data={"csrf": csrf.group(1), "username": "olga", "password": "correct horse battery"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        page = f"{base}/dashboard/events/{format_event_id(small.event.event_id)}/content"
        async with http.get(page) as resp:
            html = await resp.text()
        assert 'data-testid="content-upload"' in html and 'data-testid="content-empty"' in html
        assert 'data-testid="content-not-scanned-warning"' in html  # no scanner configured
        token = re.search(r'name="csrf" value="([^"]+)"', html)
        assert token

        async def post(data: bytes, name: str, kind: str) -> tuple[int, str]:
            form = aiohttp.FormData()
            form.add_field("csrf", token.group(1))
            form.add_field("file", io.BytesIO(data), filename=name, content_type=kind)
            async with http.post(page, data=form) as resp:
                return resp.status, await resp.text()

        status, html = await post(pdf_of(20_000), "deck.pdf", "application/pdf")
        assert status == 200 and 'data-testid="content-uploaded"' in html
        assert html.count('data-testid="content-item"') == 1 and "deck.pdf" in html
        assert 'data-scan-status="unscanned"' in html
        status, html = await post(b"not a pdf at all", "fake.pdf", "application/pdf")
        assert status == 415 and 'data-testid="content-error"' in html
        assert html.count('data-testid="content-item"') == 1
        # a form without its CSRF token is refused, nothing kept
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(pdf_of(1000)), filename="x.pdf")
        async with http.post(page, data=form) as resp:
            assert resp.status == 403
        assert len(files_on_disk(small)) == 1


async def test_a_file_over_clamds_stream_limit_is_refused_not_passed(
    tmp_path: Path, clamd_server: ClamdServer
) -> None:
    """A file over clamd's own StreamMaxLength (64M in the fixture's conf): clamd drops the
    stream, the scan fails (an upload would be refused, 503 scan-failed), nothing passes as
    clean."""
    conf = clamd_server.log.parent / "clamd.conf"
    assert "StreamMaxLength 64M" in conf.read_text()
    big = tmp_path / "big.bin"
    big.write_bytes(b"0" * (65 * MIB))
    with pytest.raises(ScanError):
        await Clamd(str(clamd_server.socket)).scan_file(big)


async def test_a_participant_of_the_room_fetches_with_its_resume_token(small: Setup) -> None:
    event, credential = await _access_event(small, "password")
    status, made = await small.upload(pdf_of(5000), event=event)
    assert status == 201, made
    url = small.base + made["url"]
    people: list[Person] = []
    try:
        ann = await join_person(small.server, people, Person, event, "Ann", credential)
        token = str(ann.joined["resume_token"])
        async with small.http.get(url, headers={"X-Resume-Token": token}) as resp:
            assert resp.status == 200 and (await resp.read()).startswith(b"%PDF-")
        async with small.http.get(url, headers={"X-Resume-Token": token[:-2] + "xx"}) as resp:
            assert resp.status == 403
    finally:
        await asyncio.gather(*(p.close() for p in people))
