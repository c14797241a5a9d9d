"""Branding (webinar.storage.branding, webinar.content.branding): the WCAG contrast math against
known values, the colour and name checks, the merge of an event's settings over its
organiser's, and the image checks (refused: not an image, too large; kept: re-encoded)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from webinar.content import branding as images
from webinar.storage import branding as b


@pytest.mark.parametrize(
    ("a", "c", "ratio"),
    [
        ("#000000", "#ffffff", 21.0),  # the largest
        ("#ffffff", "#ffffff", 1.0),
        ("#777777", "#ffffff", 4.48),  # the famous just-below-AA grey
        ("#767676", "#ffffff", 4.54),  # the lightest grey passing AA on white
        ("#0000ff", "#ffffff", 8.59),
        ("#ff0000", "#ffffff", 4.0),
        ("#008000", "#ffffff", 5.14),
        ("#ffff00", "#000000", 19.56),
    ],
)
def test_contrast_ratio_matches_wcag_values(a: str, c: str, ratio: float) -> None:
    assert b.contrast_ratio(a, c) == pytest.approx(ratio, abs=0.01)
    assert b.contrast_ratio(c, a) == pytest.approx(ratio, abs=0.01)


def test_relative_luminance_ends() -> None:
    assert b.relative_luminance("#000") == 0.0
    assert b.relative_luminance("#FFFFFF") == pytest.approx(1.0)


def test_contrast_warning_below_aa_names_white_text() -> None:
    low = b.contrast_of("#ffcc00")
    assert low.text_colour == "#ffffff" and not low.ok
    warning = low.warning()
    assert warning is not None and "#ffcc00" in warning and "4.5:1" in warning
    good = b.contrast_of("#1a3d8f")
    assert good.ok and good.warning() is None
    assert good.as_json()["required"] == 4.5


@pytest.mark.parametrize("bad", ["red", "#12345", "#gggggg", "", "javascript:1", "#1234567"])
def test_colours_are_checked(bad: str) -> None:
    with pytest.raises(b.BrandingError):
        b.parse_colour(bad)


def test_colour_forms() -> None:
    assert b.parse_colour(" #ABC ") == "#aabbcc"
    assert b.parse_colour("#A1B2C3") == "#a1b2c3"


def test_organiser_name() -> None:
    assert b.clean_organiser_name("  Acme   Ltd ") == "Acme Ltd"
    assert b.clean_organiser_name("   ") is None
    with pytest.raises(b.BrandingError):
        b.clean_organiser_name("x" * 121)


def test_event_overrides_organiser() -> None:
    owner = b.Branding(
        logo_id="brand_" + "a" * 24 + ".png", accent_colour="#112233", organiser_name="Acme"
    )
    event = b.Branding(accent_colour="#445566")
    brand = b.effective(owner, event)
    assert brand.accent_colour == "#445566" and brand.custom_accent
    assert brand.logo_url == "/branding/brand_" + "a" * 24 + ".png"
    assert brand.organiser_name == "Acme"
    plain = b.effective(None, None)
    assert plain.accent_colour == b.DEFAULT_ACCENT and not plain.custom_accent
    assert plain.logo_url is None


def _png(size: tuple[int, int] = (64, 32), extra: bytes = b"") -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (200, 30, 30, 128)).save(out, "PNG")
    return out.getvalue() + extra


def test_a_non_image_is_refused() -> None:
    for body in (
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>1</script></svg>",
        b"%PDF-1.7 ...",
        b"GIF89a not really a gif",
    ):
        with pytest.raises(images.ImageRefused) as refused:
            images.reencode(body, images.ImageKind.LOGO)
        assert refused.value.status in (415, 422)
    with pytest.raises(images.ImageRefused) as refused:
        images.reencode(b"\x89PNG\r\n\x1a\n" + b"\0" * 100, images.ImageKind.LOGO)
    assert refused.value.status == 422


def test_an_oversized_image_is_refused() -> None:
    with pytest.raises(images.ImageRefused) as refused:
        images.reencode(_png(extra=b"\0" * (images.MAX_BYTES + 1)), images.ImageKind.LOGO)
    assert refused.value.status == 413 and refused.value.code == "too-large"
    # small in bytes, huge in pixels: refused before decoding
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, "PNG")
    assert len(out.getvalue()) < images.MAX_BYTES
    with pytest.raises(images.ImageRefused) as refused:
        images.reencode(out.getvalue(), images.ImageKind.BACKGROUND)
    assert refused.value.status == 413
    with pytest.raises(images.ImageRefused) as refused:
        images.reencode(_png((4, 4)), images.ImageKind.LOGO)
    assert refused.value.code == "too-small"


def test_images_are_reencoded_without_trailing_content(tmp_path: Path) -> None:
    polyglot = _png(extra=b"<script>alert(1)</script>")
    data, suffix = images.reencode(polyglot, images.ImageKind.LOGO)
    assert suffix == "png" and b"<script>" not in data
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and img.size == (64, 32) and img.mode == "RGBA"
    big = io.BytesIO()
    Image.new("RGB", (3000, 1000), (10, 20, 30)).save(big, "JPEG")
    data, suffix = images.reencode(big.getvalue(), images.ImageKind.LOGO)
    with Image.open(io.BytesIO(data)) as img:
        assert img.size[0] <= images.LOGO_BOX[0] and img.size[1] <= images.LOGO_BOX[1]
    image_id = images.save(tmp_path, polyglot, images.ImageKind.BACKGROUND)
    assert b.IMAGE_ID.match(image_id) and image_id.endswith(".jpg")
    assert images.path_of(tmp_path, image_id) == tmp_path / image_id
    assert images.path_of(tmp_path, "../webinar.sqlite3") is None


def test_sweep_removes_only_old_unnamed_images(tmp_path: Path) -> None:
    kept = images.save(tmp_path, _png(), images.ImageKind.LOGO)
    old = images.save(tmp_path, _png((32, 32)), images.ImageKind.LOGO)
    young = images.save(tmp_path, _png((48, 48)), images.ImageKind.LOGO)
    (tmp_path / "notes.txt").write_text("not ours")
    now = (tmp_path / young).stat().st_mtime
    for name in (kept, old):
        os.utime(tmp_path / name, (now - 2 * images.SWEEP_AFTER, now - 2 * images.SWEEP_AFTER))
    assert images.sweep(tmp_path, {kept}, now) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kept, young, "notes.txt"])
