"""Presentation files for tests, made on the spot: a PDF whose pages can be told apart in
their rendered images (each a colour of its own, with a black block in a place of its own),
a PDF that needs a password, a truncated one, and a small OpenDocument presentation."""

from __future__ import annotations

import io
import os
import zipfile

from PIL import Image, ImageDraw

#: Page size of :func:`deck`, in PDF points (Pillow writes images at 72 dpi: a pixel a point).
PAGE_W, PAGE_H = 1000, 750
BLOCK = 200
#: Page n's background is COLOURS[n - 1].
COLOURS: tuple[tuple[int, int, int], ...] = (
    (220, 40, 40),
    (40, 170, 60),
    (40, 80, 220),
    (240, 200, 30),
    (150, 60, 190),
    (30, 190, 200),
    (240, 130, 30),
    (120, 120, 120),
    (250, 120, 170),
    (90, 60, 30),
)
BLACK = (0, 0, 0)


def block_box(page: int) -> tuple[int, int, int, int]:
    """Where page ``page``'s black block is, in points (left, top, right, bottom)."""
    left, top = 60 + 80 * (page - 1), 40 + 45 * (page - 1)
    return left, top, left + BLOCK, top + BLOCK


def block_centre(page: int, scale: float) -> tuple[int, int]:
    """The centre of page ``page``'s block in an image rendered at ``scale`` pixels a point."""
    left, top, right, bottom = block_box(page)
    return round((left + right) / 2 * scale), round((top + bottom) / 2 * scale)


def deck(pages: int = 10) -> bytes:
    """A PDF of ``pages`` pages, PAGE_W x PAGE_H points each, told apart by colour and block."""
    images = []
    for n in range(1, pages + 1):
        image = Image.new("RGB", (PAGE_W, PAGE_H), COLOURS[(n - 1) % len(COLOURS)])
        ImageDraw.Draw(image).rectangle(block_box(n), fill=BLACK)
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=72.0)
    return out.getvalue()


def near(got: tuple[int, ...], want: tuple[int, int, int], slack: int = 24) -> bool:
    """A pixel of a lossy image is this colour (within ``slack`` per channel)."""
    return all(abs(int(a) - b) <= slack for a, b in zip(got[:3], want, strict=True))


def _pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        trailer,
        xref,
    )
    return bytes(out)


def encrypted_pdf() -> bytes:
    """A one-page PDF of the standard security handler whose user password is not empty:
    it cannot be opened without the password."""
    owner, user, file_id = (os.urandom(n).hex().encode() for n in (32, 32, 16))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -44 >>" % (owner, user),
    ]
    return _pdf(objects, b"/Encrypt 4 0 R /ID [<%s> <%s>] " % (file_id, file_id))


def truncated(pdf: bytes) -> bytes:
    """The first half of ``pdf`` (an upload cut off: still starts with ``%PDF-``)."""
    return pdf[: len(pdf) // 2]


ODP_TYPE = "application/vnd.oasis.opendocument.presentation"


def odp(slides: int = 3) -> bytes:
    """An OpenDocument presentation of ``slides`` slides, each with its number as text."""
    pages = "".join(
        f'<draw:page draw:name="page{n}" draw:master-page-name="Default">'
        '<draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="5cm">'
        f"<draw:text-box><text:p>Slide {n}</text:p></draw:text-box></draw:frame></draw:page>"
        for n in range(1, slides + 1)
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
        ' xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"'
        ' office:version="1.2"><office:body><office:presentation>'
        f"{pages}</office:presentation></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"'
        ' manifest:version="1.2">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{ODP_TYPE}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", ODP_TYPE, compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()
