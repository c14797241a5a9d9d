"""Presentations rendered to page images: real PDFs made by Pillow, rendered by PDFium in the
child process, checked by decoding the WebP pages; the rendering's claims on a real SQLite
store (taken over when their worker died, handed back on close); failures worded."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from tests.presentation_files import (
    BLACK,
    COLOURS,
    ODP_TYPE,
    PAGE_W,
    block_centre,
    deck,
    encrypted_pdf,
    near,
    odp,
    truncated,
)
from webinar.content import presentations, render
from webinar.content.library import ContentFile, ContentService
from webinar.content.presentations import RenderStatus, describe, sql_claim, sql_waiting
from webinar.content.render import RenderFailure, page_size, render_in_child, render_pdf
from webinar.storage.store import Event, Store

MIB = 1024 * 1024
SCALE = render.WIDTH / PAGE_W


def test_page_size_keeps_the_aspect_and_caps_the_height() -> None:
    assert page_size(1000, 750, width=1600, max_height=2400) == pytest.approx(1.6)
    assert page_size(595, 842, width=1600, max_height=2400) == pytest.approx(1600 / 595)
    # a tall strip: its height is capped, its width follows
    scale = page_size(200, 2000, width=1600, max_height=2400)
    assert 2000 * scale == pytest.approx(2400) and 200 * scale == pytest.approx(240)
    with pytest.raises(ValueError):
        page_size(0, 100, width=1600, max_height=2400)


def check_page(path: Path, number: int) -> None:
    """``path`` is page ``number`` of :func:`deck`: 1600 px wide, its own colour, its block
    where it should be (and not where another page has it)."""
    with Image.open(path) as image:
        assert image.format == "WEBP"
        assert image.size == (1600, 1200)
        rgb = image.convert("RGB")
        assert near(rgb.getpixel((20, 20)), COLOURS[number - 1])  # type: ignore[arg-type]
        assert near(rgb.getpixel(block_centre(number, SCALE)), BLACK)  # type: ignore[arg-type]
        other = number + 5 if number <= 5 else number - 5  # blocks far apart
        assert near(rgb.getpixel(block_centre(other, SCALE)), COLOURS[number - 1])  # type: ignore[arg-type]


def test_render_pdf_in_process(tmp_path: Path) -> None:
    source = tmp_path / "deck.pdf"
    source.write_bytes(deck(10))
    seen: list[int] = []
    pages = render_pdf(source, tmp_path / "out", on_page=seen.append)
    assert pages == 10 and seen == list(range(1, 11))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{n}.webp" for n in range(1, 11)
    )
    check_page(tmp_path / "out" / "4.webp", 4)
    check_page(tmp_path / "out" / "10.webp", 10)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (encrypted_pdf(), "encrypted"),
        (truncated(deck(10)), "broken"),
        (b"%PDF-1.4\n" + b"not really a pdf\n" * 100, "broken"),
    ],
)
def test_render_pdf_refuses_what_it_cannot_read(tmp_path: Path, data: bytes, code: str) -> None:
    source = tmp_path / "bad.pdf"
    source.write_bytes(data)
    with pytest.raises(RenderFailure) as failure:
        render_pdf(source, tmp_path / "out")
    assert failure.value.code == code
    assert not (tmp_path / "out").exists()


def test_too_many_pages_is_refused_before_any_is_drawn(tmp_path: Path) -> None:
    source = tmp_path / "long.pdf"
    source.write_bytes(deck(10))
    with pytest.raises(RenderFailure) as failure:
        render_pdf(source, tmp_path / "out", max_pages=9)
    assert failure.value.code == "too-many-pages"
    assert failure.value.params == {"pages": 10, "max_pages": 9}
    assert not (tmp_path / "out").exists()


async def test_the_child_renders_and_reports(tmp_path: Path) -> None:
    source = tmp_path / "deck.pdf"
    source.write_bytes(deck(10))
    progress: list[tuple[int, int]] = []
    pages = await render_in_child(
        source, tmp_path / "out", on_progress=lambda n, of: progress.append((n, of))
    )
    assert pages == 10 and progress == [(n, 10) for n in range(1, 11)]
    check_page(tmp_path / "out" / "4.webp", 4)
    source.write_bytes(encrypted_pdf())
    with pytest.raises(RenderFailure) as failure:
        await render_in_child(source, tmp_path / "out2")
    assert failure.value.code == "encrypted"


async def test_a_child_that_takes_too_long_is_killed(tmp_path: Path) -> None:
    source = tmp_path / "deck.pdf"
    source.write_bytes(deck(10))
    # the child cannot even start Python within a millisecond: the watchdog kills it
    with pytest.raises(RenderFailure) as failure:
        await render_in_child(source, tmp_path / "out", page_seconds=0.001)
    assert failure.value.code == "page-timeout" and failure.value.params == {"page": 1}


async def test_pages_that_cannot_be_written_fail_as_storage(tmp_path: Path) -> None:
    source = tmp_path / "deck.pdf"
    source.write_bytes(deck(2))
    # the event's folder is gone (the event was deleted): the child does not make it again
    with pytest.raises(RenderFailure) as failure:
        await render_in_child(source, tmp_path / "gone" / "out")
    assert failure.value.code == "storage"
    assert not (tmp_path / "gone").exists()


def test_failures_are_worded_in_each_language() -> None:
    too_many = json.dumps({"code": "too-many-pages", "pages": 412, "max_pages": 300})
    assert describe(too_many) == (
        "this presentation has 412 pages, more than the 300 this server shows;"
        " split it into smaller files"
    )
    assert "password" in (describe(json.dumps({"code": "encrypted"})) or "")
    assert "LibreOffice" in (describe(presentations.NEEDS_LIBREOFFICE) or "")
    assert describe(json.dumps({"code": "bad-page", "page": 7})) == (
        "page 7 of this PDF cannot be drawn: the file is damaged"
    )
    assert describe(None) is None
    assert describe("not json") == "the pages of this presentation could not be made"


# ----------------------------------------------------------------------------- the service


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 64 * 1024):
        yield data[i : i + 64 * 1024]


async def upload(
    service: ContentService, event: Event, data: bytes, name: str, kind: str
) -> ContentFile:
    return await service.receive(
        event,
        _chunks(data),
        file_name=name,
        content_type=kind,
        declared_size=len(data),
        uploaded_by="organiser",
    )


async def settled(service: ContentService, content_id: str, within: float = 60) -> ContentFile:
    """The presentation once its rendering has ended (ready or failed)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        info = await service.presentation(content_id)
        assert info is not None
        if info.render_status in (RenderStatus.READY, RenderStatus.FAILED):
            return info
        assert asyncio.get_running_loop().time() < deadline, info
        await asyncio.sleep(0.05)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[ContentService, Event]]:
    async with Store(tmp_path / "data") as store:
        event = await store.create_event("Slides", None)
        service = ContentService(
            store, tmp_path / "content", max_file_bytes=50 * MIB, quota_bytes=500 * MIB
        )
        await service.start()
        try:
            yield service, event
        finally:
            await service.close()


async def test_an_upload_is_rendered_and_its_pages_deleted_with_it(
    setup: tuple[ContentService, Event],
) -> None:
    service, event = setup
    made = await upload(service, event, deck(10), "deck.pdf", "application/pdf")
    assert made.render_status == RenderStatus.RENDERING and made.pages is None
    info = await settled(service, made.content_id)
    assert info.render_status == RenderStatus.READY and info.pages == 10, info.render_message
    assert info.render_message is None
    check_page(service.page_path(info, 4), 4)
    folder = service.page_path(info, 1).parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.webp" for n in range(1, 11))
    # nothing half-made is left beside it
    assert sorted(p.name for p in folder.parent.iterdir()) == [
        made.content_id,
        f"{made.content_id}.pages",
    ]
    listed = await service.list(event.event_id)
    assert [(f.pages, f.render_status) for f in listed] == [(10, "ready")]
    assert await service.delete(info)
    assert not folder.exists() and list(folder.parent.iterdir()) == []
    assert await service.presentation(made.content_id) is None


async def test_leftovers_of_dead_renderings_are_cleared(
    setup: tuple[ContentService, Event],
) -> None:
    service, event = setup
    made = await upload(service, event, deck(2), "deck.pdf", "application/pdf")
    await settled(service, made.content_id)
    folder = service.root / event.event_id
    old, fresh = (
        folder / f"{made.content_id}.pages.dead.part",
        folder / f"{made.content_id}.pages.busy.part",
    )
    for leftover in (old, fresh):
        leftover.mkdir()
        (leftover / "1.webp").write_bytes(b"x")
    long_ago = time.time() - 2 * presentations.LEFTOVER_SECONDS
    os.utime(old, (long_ago, long_ago))
    await asyncio.to_thread(_set, service.store, made.content_id, "render_status = 'failed'")
    info = await service.get(made.content_id)
    assert info is not None and await service.render_again(info)
    info = await settled(service, made.content_id)
    assert info.render_status == RenderStatus.READY
    assert not old.exists() and fresh.exists()  # another worker may still be on that one


async def test_a_presentation_deleted_by_another_worker_is_forgotten(
    setup: tuple[ContentService, Event],
) -> None:
    service, event = setup
    made = await upload(service, event, deck(2), "deck.pdf", "application/pdf")
    assert (await settled(service, made.content_id)).pages == 2
    assert await service.presentation(made.content_id) is not None  # remembered now
    other = ContentService(
        service.store, service.root, max_file_bytes=50 * MIB, quota_bytes=500 * MIB
    )
    info = await other.get(made.content_id)
    assert info is not None and await other.delete(info)
    assert await service.presentation(made.content_id) is None
    await other.close()


async def test_broken_files_fail_clearly_and_stay_listed(
    setup: tuple[ContentService, Event],
) -> None:
    service, event = setup
    locked = await upload(service, event, encrypted_pdf(), "locked.pdf", "application/pdf")
    cut = await upload(service, event, truncated(deck(10)), "cut.pdf", "application/pdf")
    for made, words in ((locked, "password"), (cut, "damaged")):
        info = await settled(service, made.content_id)
        assert info.render_status == RenderStatus.FAILED and info.pages is None
        assert words in (info.render_message or ""), info.render_message
        assert service.path_of(info).is_file()  # still there to download
    assert [f.content_id for f in await service.list(event.event_id, servable_only=True)] == [
        locked.content_id,
        cut.content_id,
    ]
    # another kind of file is not a presentation
    png = await upload(service, event, b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "a.png", "image/png")
    assert png.render_status == RenderStatus.NONE
    assert await service.presentation(png.content_id) is None


async def test_trying_again_renders_a_failed_presentation_once_more(
    setup: tuple[ContentService, Event],
) -> None:
    service, event = setup
    service.renderer.max_pages = 5
    made = await upload(service, event, deck(10), "long.pdf", "application/pdf")
    info = await settled(service, made.content_id)
    assert info.render_status == RenderStatus.FAILED
    assert "10 pages, more than the 5" in (info.render_message or "")
    service.renderer.max_pages = 300
    assert await service.render_again(info)
    info = await settled(service, made.content_id)
    assert info.render_status == RenderStatus.READY and info.pages == 10
    assert not await service.render_again(info)  # nothing to try again


async def test_powerpoint_without_libreoffice_says_so(
    setup: tuple[ContentService, Event],
) -> None:
    service, event = setup
    assert service.renderer.soffice is None
    made = await upload(service, event, odp(3), "talk.odp", ODP_TYPE)
    info = await settled(service, made.content_id)
    assert info.render_status == RenderStatus.FAILED
    assert "LibreOffice" in (info.render_message or "")
    assert "downloaded" in (info.render_message or "")
    assert service.path_of(info).is_file()


PPTX_TYPE = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


@pytest.mark.skipif(render.find_soffice() is None, reason="LibreOffice is not installed")
@pytest.mark.parametrize("kind", ["odp", "pptx"])
async def test_office_presentations_are_converted_by_libreoffice(
    setup: tuple[ContentService, Event], tmp_path: Path, kind: str
) -> None:
    service, event = setup
    soffice = render.find_soffice()
    assert soffice is not None
    service.renderer.soffice = soffice
    data = odp(3)
    if kind == "pptx":  # LibreOffice makes the PowerPoint file from the OpenDocument one
        (tmp_path / "talk.odp").write_bytes(data)
        made_by = await asyncio.create_subprocess_exec(
            soffice,
            f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
            "--headless",
            "--convert-to",
            "pptx",
            "--outdir",
            str(tmp_path),
            str(tmp_path / "talk.odp"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert await asyncio.wait_for(made_by.wait(), 180) == 0
        data = (tmp_path / "talk.pptx").read_bytes()
    made = await upload(
        service, event, data, f"talk.{kind}", ODP_TYPE if kind == "odp" else PPTX_TYPE
    )
    assert made.render_status == RenderStatus.RENDERING
    info = await settled(service, made.content_id, within=240)
    assert info.render_status == RenderStatus.READY and info.pages == 3, info.render_message
    with Image.open(service.page_path(info, 2)) as image:
        assert image.width == 1600
        assert image.convert("L").getextrema()[0] < 128  # the slide's text is drawn
    # the conversion's private profile and files are gone
    assert not any((service.root / ".partial").glob("*.convert"))


def _set(store: Store, content_id: str, sql: str, *params: object) -> None:
    with store.connect_sync() as core:
        core.connection.execute(
            f"UPDATE content_files SET {sql} WHERE content_id = ?", (*params, content_id)
        )


async def test_closing_hands_renderings_back_and_a_new_start_takes_them(tmp_path: Path) -> None:
    async with Store(tmp_path / "data") as store:
        event = await store.create_event("Slides", None)
        root = tmp_path / "content"
        service = ContentService(store, root, max_file_bytes=50 * MIB, quota_bytes=500 * MIB)
        await upload(service, event, deck(10), "first.pdf", "application/pdf")
        # one rendering at a time: this one waits for the first when the service closes
        made = await upload(service, event, deck(3), "second.pdf", "application/pdf")
        await service.close()
        info = await service.get(made.content_id)
        assert info is not None and info.render_status == RenderStatus.NONE  # handed back
        assert not (root / event.event_id / f"{made.content_id}.pages").exists()
        again = ContentService(store, root, max_file_bytes=50 * MIB, quota_bytes=500 * MIB)
        await again.start(exclusive=True)
        try:
            info = await settled(again, made.content_id)
            assert info.render_status == RenderStatus.READY and info.pages == 3
        finally:
            await again.close()


async def test_renderings_left_by_a_dead_worker_are_taken_over(tmp_path: Path) -> None:
    async with Store(tmp_path / "data") as store:
        event = await store.create_event("Slides", None)
        root = tmp_path / "content"
        dead = ContentService(store, root, max_file_bytes=50 * MIB, quota_bytes=500 * MIB)
        await dead.close()  # a worker that claims the rendering and never does it
        made = await upload(dead, event, deck(2), "deck.pdf", "application/pdf")
        assert made.render_status == RenderStatus.RENDERING
        cid = made.content_id
        # its claim is fresh: nobody else takes it, unless this is the only worker
        assert await store.run_sql(lambda db: sql_waiting(db)) == []
        assert not await store.run_sql(lambda db: sql_claim(db, cid, "other"))
        assert [w[0] for w in await store.run_sql(lambda db: sql_waiting(db, force=True))] == [cid]
        live = ContentService(store, root, max_file_bytes=50 * MIB, quota_bytes=500 * MIB)
        try:
            # a request for it does not start it again while the claim is fresh ...
            info = await live.presentation(cid)
            assert info is not None and info.render_status == RenderStatus.RENDERING
            await asyncio.sleep(0.3)
            assert not live.renderer.rendering_here(cid)
            # ... but once its worker has been silent too long, the first request does
            old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
            await asyncio.to_thread(_set, store, cid, "render_at = ?", old)
            assert [w[0] for w in await store.run_sql(lambda db: sql_waiting(db))] == [cid]
            info = await settled(live, cid)
            assert info.render_status == RenderStatus.READY and info.pages == 2
            # and one waiting (uploaded before presentations were rendered) starts the same way
            await asyncio.to_thread(
                _set, store, cid, "render_status = 'none', pages = NULL, render_claim = NULL"
            )
            info = await settled(live, cid)
            assert info.render_status == RenderStatus.READY and info.pages == 2
        finally:
            await live.close()


async def test_the_watch_takes_over_without_a_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presentations, "WATCH_SECONDS", 0.2)
    async with Store(tmp_path / "data") as store:
        event = await store.create_event("Slides", None)
        root = tmp_path / "content"
        dead = ContentService(store, root, max_file_bytes=50 * MIB, quota_bytes=500 * MIB)
        await dead.close()
        made = await upload(dead, event, deck(2), "deck.pdf", "application/pdf")
        live = ContentService(store, root, max_file_bytes=50 * MIB, quota_bytes=500 * MIB)
        await live.start(exclusive=False)  # one of several workers: the claim looks alive
        try:
            await asyncio.sleep(0.5)
            info = await live.get(made.content_id)
            assert info is not None and info.render_status == RenderStatus.RENDERING
            old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
            await asyncio.to_thread(_set, store, made.content_id, "render_at = ?", old)
            for _ in range(200):
                info = await live.get(made.content_id)
                assert info is not None
                if info.render_status == RenderStatus.READY:
                    break
                await asyncio.sleep(0.05)
            assert info.render_status == RenderStatus.READY and info.pages == 2
        finally:
            await live.close()
