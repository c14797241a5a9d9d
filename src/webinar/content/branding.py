"""Branding images: validated and re-encoded, kept under ``<data_dir>/branding``.

An upload is refused unless its content is a PNG, JPEG, GIF or WebP (by its bytes, not its
name or declared type; SVG never: it can carry script), within :data:`MAX_BYTES` and
:data:`MAX_PIXELS`. Pillow then decodes it and writes a new file — a logo as PNG (transparency
kept) scaled to fit :data:`LOGO_BOX`, a background as JPEG scaled to fit
:data:`BACKGROUND_BOX` — so nothing of the uploaded file (metadata, trailing data, polyglot
content, animation) survives. Files are named by the SHA-256 of what was written (same picture,
same file) and served by ``GET /branding/{image_id}`` with ``nosniff`` and a ``default-src
'none'`` policy.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import warnings
from enum import StrEnum
from pathlib import Path

from PIL import Image, ImageOps

from webinar.i18n import _
from webinar.storage.branding import IMAGE_ID

#: Largest upload (either kind).
MAX_BYTES = 5 * 1024 * 1024
#: Largest decoded picture (width x height) accepted: a decompression bomb is refused before
#: it is decoded.
MAX_PIXELS = 40_000_000
#: A logo is scaled down to fit this box (pixels), a background to fit its own.
LOGO_BOX = (800, 400)
BACKGROUND_BOX = (2560, 1600)
#: Smallest sides accepted (a 1x1 "image" is no logo).
MIN_SIDE = 16


class ImageKind(StrEnum):
    LOGO = "logo"
    BACKGROUND = "background"


class ImageRefused(ValueError):
    """Why an upload is not kept: ``status`` (413, 415 or 422), ``code`` and the message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def sniff(head: bytes) -> str | None:
    """The image format by its first bytes (Pillow's name); None for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def too_large() -> ImageRefused:
    return ImageRefused(
        413,
        "too-large",
        _("branding images are limited to %(num)d MiB") % {"num": MAX_BYTES // (1024 * 1024)},
    )


def reencode(body: bytes, kind: ImageKind) -> tuple[bytes, str]:
    """Blocking: the validated, re-encoded picture and its suffix (``png`` or ``jpg``)."""
    if len(body) > MAX_BYTES:
        raise too_large()
    fmt = sniff(body[:16])
    if fmt is None:
        raise ImageRefused(
            415, "unsupported-type", _("branding images must be PNG, JPEG, GIF or WebP")
        )
    unreadable = ImageRefused(422, "invalid", _("the file is not a readable image"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(body), formats=[fmt]) as probe:
                width, height = probe.size
                if width * height > MAX_PIXELS:
                    raise ImageRefused(
                        413,
                        "too-large",
                        _("the image is too large: at most %(num)d megapixels")
                        % {"num": MAX_PIXELS // 1_000_000},
                    )
                probe.verify()
            with Image.open(io.BytesIO(body), formats=[fmt]) as img:
                img.seek(0)  # the first frame of an animation
                img.load()
                picture = ImageOps.exif_transpose(img) or img
                picture = picture.copy()
    except ImageRefused:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning):
        raise unreadable from None
    if min(picture.size) < MIN_SIDE:
        raise ImageRefused(
            422,
            "too-small",
            _("the image is too small: at least %(num)d pixels on each side") % {"num": MIN_SIDE},
        )
    out = io.BytesIO()
    if kind is ImageKind.LOGO:
        picture = picture.convert("RGBA")
        picture.thumbnail(LOGO_BOX, Image.Resampling.LANCZOS)
        picture.save(out, "PNG", optimize=True)
        return out.getvalue(), "png"
    if picture.mode in ("RGBA", "LA", "P"):
        rgba = picture.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        picture = flat
    else:
        picture = picture.convert("RGB")
    picture.thumbnail(BACKGROUND_BOX, Image.Resampling.LANCZOS)
    picture.save(out, "JPEG", quality=85, optimize=True, progressive=True)
    return out.getvalue(), "jpg"


def save(folder: Path, body: bytes, kind: ImageKind) -> str:
    """Blocking: validate, re-encode and keep the picture; returns its image id."""
    data, suffix = reencode(body, kind)
    image_id = f"brand_{hashlib.sha256(data).hexdigest()[:24]}.{suffix}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / image_id
    if not path.exists():
        tmp = folder / f".{image_id}.{secrets.token_hex(4)}.part"
        tmp.write_bytes(data)
        tmp.replace(path)
    return image_id


def path_of(folder: Path, image_id: str) -> Path | None:
    """The file of a valid image id (None for anything else: no path tricks)."""
    if not IMAGE_ID.match(image_id):
        return None
    return folder / image_id


#: A file no branding names is removed once it is this old (seconds): younger ones may belong
#: to an upload whose row is being written right now.
SWEEP_AFTER = 3600.0


def sweep(folder: Path, used: set[str], now: float) -> int:
    """Blocking: remove the images (and stale partial writes) no branding names and older
    than :data:`SWEEP_AFTER`; how many went."""
    removed = 0
    if not folder.is_dir():
        return 0
    for path in folder.iterdir():
        name = path.name
        ours = IMAGE_ID.match(name) is not None or name.endswith(".part")
        if not ours or name in used:
            continue
        try:
            if now - path.stat().st_mtime < SWEEP_AFTER:
                continue
            path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


def content_type(image_id: str) -> str:
    return "image/png" if image_id.endswith(".png") else "image/jpeg"
