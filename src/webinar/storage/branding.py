"""Branding: an organiser's and an event's logo, accent colour, lobby/room background and
organiser name (tables ``user_branding`` and ``event_branding``, migration 26).

An event's value overrides its owner's; a NULL column means "not set here" (the owner's value,
else the product's own, applies). :func:`effective` merges the two into the :class:`Brand` the
pages and e-mails use.

Contrast (WCAG 2.x): text on the accent colour is always white (:data:`TEXT_ON_ACCENT`, what
the pages' primary buttons use), so one figure, the contrast ratio of the accent colour against
white, says whether it is readable (the same figure holds for the accent on the e-mails' white
page). Below :data:`AA_NORMAL_TEXT` (4.5:1, AA
for normal text) the organiser is warned (:func:`contrast_warning`); the colour is kept anyway:
it is the organiser's brand.

The image files themselves are :mod:`webinar.content.branding`'s (validated, re-encoded); this
module only keeps their ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from webinar.i18n import _, format_number
from webinar.storage.db import Database

#: The product's own accent (web/static/css, the e-mail buttons).
DEFAULT_ACCENT = "#2456d6"
#: The text colour on the accent colour (buttons, the registration page's header band).
TEXT_ON_ACCENT = "#ffffff"
#: WCAG 2.x AA, normal text.
AA_NORMAL_TEXT = 4.5
MAX_ORGANISER_NAME = 120
#: An image id: ``brand_`` + 24 hex digits of the re-encoded file's SHA-256 + the suffix.
IMAGE_ID = re.compile(r"^brand_[0-9a-f]{24}\.(png|jpg)$")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_SHORT_HEX = re.compile(r"^#[0-9a-fA-F]{3}$")
FIELDS = ("logo_id", "background_id", "accent_colour", "organiser_name")


class BrandingError(ValueError):
    """A value the organiser sent that cannot be kept (the message says why)."""


def parse_colour(value: str) -> str:
    """``#rrggbb`` (lower case) from ``#rrggbb`` or ``#rgb``; :class:`BrandingError` else."""
    text = value.strip()
    if _SHORT_HEX.match(text):
        text = "#" + "".join(c * 2 for c in text[1:])
    if not _HEX.match(text):
        raise BrandingError(_("the accent colour must be a hex colour such as #2456d6"))
    return text.lower()


def clean_organiser_name(value: str) -> str | None:
    """The name trimmed (None when empty); :class:`BrandingError` when too long."""
    text = " ".join(value.split())
    if len(text) > MAX_ORGANISER_NAME:
        raise BrandingError(
            _("the organiser's name is limited to %(num)d characters") % {"num": MAX_ORGANISER_NAME}
        )
    return text or None


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of ``#rrggbb`` (0 black .. 1 white)."""
    hex_ = parse_colour(colour)
    r, g, b = (int(hex_[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2.x contrast ratio of two colours, 1.0 .. 21.0."""
    la, lb = relative_luminance(a), relative_luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


@dataclass(frozen=True, slots=True)
class Contrast:
    accent_colour: str
    text_colour: str
    ratio: float

    @property
    def ok(self) -> bool:
        return self.ratio >= AA_NORMAL_TEXT

    def warning(self) -> str | None:
        """The organiser's warning when the ratio is below AA; None when it is fine."""
        if self.ok:
            return None
        return _(
            "White text on the accent colour %(colour)s has a contrast of only %(ratio)s:1;"
            " WCAG AA asks for at least 4.5:1. Choose a darker colour so the text on buttons"
            " stays readable."
        ) % {"colour": self.accent_colour, "ratio": self.ratio_text}

    @property
    def ratio_text(self) -> str:
        """The ratio with two decimals at most, in the current language's number format."""
        return format_number(Decimal(f"{self.ratio:.2f}"))

    def as_json(self) -> dict[str, Any]:
        return {
            "accent_colour": self.accent_colour,
            "text_colour": self.text_colour,
            "ratio": round(self.ratio, 2),
            "required": AA_NORMAL_TEXT,
            "ok": self.ok,
            "warning": self.warning(),
        }


def contrast_of(accent: str) -> Contrast:
    colour = parse_colour(accent)
    return Contrast(colour, TEXT_ON_ACCENT, contrast_ratio(colour, TEXT_ON_ACCENT))


@dataclass(frozen=True, slots=True)
class Branding:
    """One level's settings (an organiser's or an event's); None: not set at this level."""

    logo_id: str | None = None
    background_id: str | None = None
    accent_colour: str | None = None
    organiser_name: str | None = None
    updated_at: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f) is None for f in FIELDS)


def image_url(image_id: str | None) -> str | None:
    return None if image_id is None else f"/branding/{image_id}"


@dataclass(frozen=True, slots=True)
class Brand:
    """What the pages and e-mails show: the event's settings over its owner's over ours."""

    logo_id: str | None
    background_id: str | None
    accent_colour: str
    organiser_name: str | None
    custom_accent: bool

    @property
    def logo_url(self) -> str | None:
        return image_url(self.logo_id)

    @property
    def background_url(self) -> str | None:
        return image_url(self.background_id)

    @property
    def text_colour(self) -> str:
        return TEXT_ON_ACCENT

    @property
    def contrast(self) -> Contrast:
        return contrast_of(self.accent_colour)

    def absolute(self, origin: str, url: str | None) -> str | None:
        """``url`` (one of ours, path only) under ``origin`` (scheme://host[:port])."""
        return None if url is None else origin.rstrip("/") + url

    def as_json(self) -> dict[str, Any]:
        return {
            "logo_url": self.logo_url,
            "background_url": self.background_url,
            "accent_colour": self.accent_colour,
            "text_colour": self.text_colour,
            "organiser_name": self.organiser_name,
        }


PLAIN = Brand(None, None, DEFAULT_ACCENT, None, False)


def effective(owner: Branding | None, event: Branding | None) -> Brand:
    levels = [b for b in (event, owner) if b is not None]

    def first(field: str) -> Any:
        for level in levels:
            value = getattr(level, field)
            if value is not None:
                return value
        return None

    accent = first("accent_colour")
    return Brand(
        logo_id=first("logo_id"),
        background_id=first("background_id"),
        accent_colour=accent or DEFAULT_ACCENT,
        organiser_name=first("organiser_name"),
        custom_accent=accent is not None,
    )


# ----------------------------------------------------------------------------- SQL

_COLUMNS = "logo_id, background_id, accent_colour, organiser_name, updated_at"


def _row(row: tuple[Any, ...] | None) -> Branding | None:
    if row is None:
        return None
    return Branding(*row)


def sql_user_branding(db: Database, user_id: int) -> Branding | None:
    return _row(
        db.execute(f"SELECT {_COLUMNS} FROM user_branding WHERE user_id = ?", (user_id,)).fetchone()
    )


def sql_event_branding(db: Database, event_id: str) -> Branding | None:
    return _row(
        db.execute(
            f"SELECT {_COLUMNS} FROM event_branding WHERE event_id = ?", (event_id,)
        ).fetchone()
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def sql_put_user_branding(db: Database, user_id: int, branding: Branding) -> Branding:
    saved = replace(branding, updated_at=_now())
    db.execute(
        f"INSERT INTO user_branding (user_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (user_id) DO UPDATE SET logo_id = excluded.logo_id,"
        " background_id = excluded.background_id, accent_colour = excluded.accent_colour,"
        " organiser_name = excluded.organiser_name, updated_at = excluded.updated_at",
        (user_id, *(getattr(saved, f) for f in (*FIELDS, "updated_at"))),
    )
    return saved


def sql_put_event_branding(db: Database, event_id: str, branding: Branding) -> Branding:
    saved = replace(branding, updated_at=_now())
    db.execute(
        f"INSERT INTO event_branding (event_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (event_id) DO UPDATE SET logo_id = excluded.logo_id,"
        " background_id = excluded.background_id, accent_colour = excluded.accent_colour,"
        " organiser_name = excluded.organiser_name, updated_at = excluded.updated_at",
        (event_id, *(getattr(saved, f) for f in (*FIELDS, "updated_at"))),
    )
    return saved


def sql_brand(db: Database, event_id: str, owner_id: int | None) -> Brand:
    """The event's effective brand (its settings over its owner's)."""
    owner = None if owner_id is None else sql_user_branding(db, owner_id)
    return effective(owner, sql_event_branding(db, event_id))


def sql_used_image_ids(db: Database) -> set[str]:
    """Every image id some branding still names (the rest may be swept)."""
    used: set[str] = set()
    for table in ("user_branding", "event_branding"):
        for logo, background in db.execute(f"SELECT logo_id, background_id FROM {table}"):
            used.update(i for i in (logo, background) if i is not None)
    return used
