"""Uploaded content's pure parts: type sniffing and claims, file names, the INSTREAM framing
and replies, and the quota arithmetic of reservations (on a real SQLite store)."""

from __future__ import annotations

import asyncio
import io
import struct
import zipfile
from pathlib import Path

import pytest

from webinar.content import sniff
from webinar.content.clamd import Clamd, ScanError, frame, parse_reply
from webinar.content.library import clean_file_name, sql_reserve, sql_used
from webinar.storage.store import Store

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"%PDF-1.7\n%\xe2\xe3", sniff.PDF),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", sniff.PNG),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", sniff.JPEG),
        (b"GIF89a\x01\0\x01\0", sniff.GIF),
        (b"RIFF\x24\0\0\0WEBPVP8 ", sniff.WEBP),
        (b"\0\0\0\x20ftypisom\0\0\x02\0", sniff.MP4),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", sniff.WEBM),
        (b"PK\x03\x04\x14\0\0\0", sniff.ZIP),
        (b"<svg xmlns=", None),
        (b"MZ\x90\0\x03\0\0\0", None),
        (b"hello, I am a PDF", None),
        (b"", None),
    ],
)
def test_sniff_by_magic_bytes(head: bytes, kind: str | None) -> None:
    assert sniff.sniff(head) == kind


def test_claimed_type_from_header_or_name() -> None:
    assert sniff.claimed_type("application/pdf; charset=binary", "x.bin") == sniff.PDF
    assert sniff.claimed_type("application/octet-stream", "Slides.PDF") == sniff.PDF
    assert sniff.claimed_type(None, "talk.webm") == sniff.WEBM
    assert sniff.claimed_type("", "notes") == ""


def test_check_claim() -> None:
    assert sniff.check_claim(sniff.PDF, sniff.PDF) == sniff.PDF
    assert sniff.check_claim("", sniff.PNG) == sniff.PNG  # nothing claimed: content decides
    with pytest.raises(sniff.Mismatch, match="mismatch"):
        sniff.check_claim(sniff.PDF, sniff.PNG)  # claims PDF, is a PNG
    with pytest.raises(sniff.Mismatch, match="unknown"):
        sniff.check_claim(sniff.PDF, None)  # claims PDF, is nothing we know
    with pytest.raises(sniff.Mismatch, match="not-accepted"):
        sniff.check_claim("text/html", sniff.PDF)
    with pytest.raises(sniff.Mismatch, match="zip"):
        sniff.check_claim("", sniff.ZIP)  # a bare ZIP is not a document
    assert sniff.check_claim(sniff.PPTX, sniff.ZIP) == sniff.PPTX


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


def test_office_documents_are_checked_inside(tmp_path: Path) -> None:
    pptx = _zip(
        tmp_path / "a.pptx", {"[Content_Types].xml": b"<x/>", "ppt/presentation.xml": b"<p/>"}
    )
    assert sniff.office_type(pptx, sniff.PPTX)
    assert not sniff.office_type(pptx, sniff.DOCX)
    odp = _zip(tmp_path / "b.odp", {"mimetype": sniff.ODP.encode(), "content.xml": b"<x/>"})
    assert sniff.office_type(odp, sniff.ODP)
    assert not sniff.office_type(odp, sniff.ODT)
    other = _zip(tmp_path / "c.zip", {"evil.exe": b"MZ"})
    assert not sniff.office_type(other, sniff.PPTX)
    (tmp_path / "d.pptx").write_bytes(b"PK\x03\x04 truncated")
    assert not sniff.office_type(tmp_path / "d.pptx", sniff.PPTX)


def test_clean_file_name() -> None:
    assert clean_file_name("../../etc/passwd") == "passwd"
    assert clean_file_name("C:\\Users\\a\\Slides.pdf") == "Slides.pdf"
    assert clean_file_name('a"b\r\n.pdf') == "ab.pdf"
    assert clean_file_name("...") == ""
    long = clean_file_name("x" * 300 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf")


def test_instream_framing_and_replies() -> None:
    assert frame(b"abc") == b"\0\0\0\x03abc"
    assert frame(b"") == struct.pack(">I", 0)  # the terminator
    assert frame(b"x" * 70000)[:4] == struct.pack(">I", 70000)
    assert parse_reply(b"stream: OK\0").clean
    found = parse_reply(b"stream: Eicar-Test FOUND\0")
    assert not found.clean and found.found == "Eicar-Test"
    with pytest.raises(ScanError, match="size limit"):
        parse_reply(b"INSTREAM size limit exceeded. ERROR\0")


async def test_instream_bytes_on_the_wire(tmp_path: Path) -> None:
    """What a clamd stand-in on a Unix socket receives, byte for byte."""
    got = bytearray()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readexactly(10) == b"zINSTREAM\0"
        while True:
            (n,) = struct.unpack(">I", await reader.readexactly(4))
            if n == 0:
                break
            got.extend(await reader.readexactly(n))
        writer.write(b"stream: OK\0")
        await writer.drain()
        writer.close()

    sock = tmp_path / "c.sock"
    server = await asyncio.start_unix_server(handle, path=str(sock))
    async with server:
        data = bytes(range(256)) * 3000  # three chunks
        (tmp_path / "f").write_bytes(data)
        verdict = await Clamd(str(sock)).scan_file(tmp_path / "f")
        assert verdict.clean and bytes(got) == data
    with pytest.raises(ScanError):
        await Clamd(str(tmp_path / "nobody.sock")).scan_file(tmp_path / "f")


async def test_reservations_respect_the_quota(tmp_path: Path) -> None:
    async with Store(tmp_path) as store:
        event = await store.create_event("Quota", None)
        now = "2026-01-01T00:00:00+00:00"

        def add(content_id: str, size: int, status: str) -> None:
            with store.connect_sync() as core:
                core.connection.execute(
                    "INSERT INTO content_files (content_id, event_id, owner_id, file_name,"
                    " declared_type, detected_type, size_bytes, sha256, scan_status, created_at)"
                    " VALUES (?, ?, NULL, 'f', '', '', ?, '', ?, ?)",
                    (content_id, event.event_id, size, status, now),
                )

        a, b = "cnt_" + "a" * 24, "cnt_" + "b" * 24
        await asyncio.to_thread(add, "cnt_" + "c" * 24, 6 * MIB, "clean")
        await asyncio.to_thread(add, a, 0, "uploading")
        await asyncio.to_thread(add, b, 0, "uploading")
        quota = 10 * MIB
        reserve = store.run_sql
        assert await reserve(lambda db: sql_reserve(db, a, None, 3 * MIB, quota))
        # b may take only what is left: 10 - 6 - 3 = 1 MiB
        assert not await reserve(lambda db: sql_reserve(db, b, None, 2 * MIB, quota))
        assert await reserve(lambda db: sql_reserve(db, b, None, 1 * MIB, quota))
        assert await reserve(lambda db: sql_used(db, None)) == quota
        # growing a's own reservation counts a's bytes once
        assert not await reserve(lambda db: sql_reserve(db, a, None, 3 * MIB + 1, quota))
        assert await reserve(lambda db: sql_reserve(db, a, None, 3 * MIB, quota))
