"""What a file is, by its content (magic bytes), not by what it claims.

:func:`sniff` reads the first :data:`HEAD_BYTES` of a file; :func:`check_claim` decides
whether an upload's declared type (its ``Content-Type`` or file name) fits what it is.
Office documents are ZIP files: :func:`office_type` opens the whole file to tell a
PowerPoint presentation from an OpenDocument one (or from any other ZIP, refused).
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

#: How many bytes of a file's start :func:`sniff` needs.
HEAD_BYTES = 64

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
MP4 = "video/mp4"
WEBM = "video/webm"
ZIP = "application/zip"  # only ever detected; office_type says which office format
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODP = "application/vnd.oasis.opendocument.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"

OFFICE_TYPES = frozenset({PPTX, DOCX, XLSX, ODP, ODT, ODS})
#: Every type an upload may be.
ACCEPTED = frozenset({PDF, PNG, JPEG, GIF, WEBP, MP4, WEBM, *OFFICE_TYPES})

#: The type a file name's extension claims.
EXTENSIONS: dict[str, str] = {
    ".pdf": PDF,
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".gif": GIF,
    ".webp": WEBP,
    ".mp4": MP4,
    ".m4v": MP4,
    ".webm": WEBM,
    ".pptx": PPTX,
    ".docx": DOCX,
    ".xlsx": XLSX,
    ".odp": ODP,
    ".odt": ODT,
    ".ods": ODS,
}
#: Declared types that claim nothing (the file's content decides).
_VAGUE = frozenset({"", "application/octet-stream", "binary/octet-stream"})
#: The OOXML part a document of each type has.
_OOXML_PART = {PPTX: "ppt/presentation.xml", DOCX: "word/document.xml", XLSX: "xl/workbook.xml"}


def sniff(head: bytes) -> str | None:
    """The type the first bytes of a file say it is; None for anything else."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, and WebM
        return WEBM
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    return None


def claimed_type(content_type: str | None, file_name: str) -> str:
    """The type an upload claims: its ``Content-Type`` (parameters dropped), else what its
    file name's extension says ("" when neither claims anything)."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    if declared in _VAGUE:
        declared = EXTENSIONS.get(PurePosixPath(file_name.lower()).suffix, "")
    return declared


class Mismatch(ValueError):
    """The file is not what it claims to be, or not a type we accept."""


def check_claim(declared: str, detected: str | None) -> str:
    """The type to keep the file as, when ``detected`` (by :func:`sniff`) fits ``declared``;
    :class:`Mismatch` otherwise. A ZIP stays ZIP here: :func:`office_type` checks it later."""
    if detected is None:
        raise Mismatch("unknown")
    if declared and declared not in ACCEPTED:
        raise Mismatch("not-accepted")
    if detected == ZIP:
        if declared not in OFFICE_TYPES:
            raise Mismatch("zip")
        return declared
    if declared and declared != detected:
        # WebM and Matroska share EBML; an MP4 may be declared as QuickTime-ish .m4v
        raise Mismatch("mismatch")
    return detected


def office_type(path: Path, declared: str) -> bool:
    """Whether the ZIP file at ``path`` is the office document ``declared`` says (reads the
    archive's directory, blocking: run it in a thread)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if declared in _OOXML_PART:
                return "[Content_Types].xml" in names and _OOXML_PART[declared] in names
            if "mimetype" not in names:
                return False
            return archive.read("mimetype").decode("ascii", "replace").strip() == declared
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return False
