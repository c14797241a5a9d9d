"""Cursor pagination of every list: ``?limit=&cursor=`` → ``{"items", "next_cursor"}``.

A cursor is opaque to clients: the URL-safe base64 of the last item's sort key and ID. The next
page starts after that item, or, if it has gone meanwhile, after where its key would sort, so
an item added or removed between two pages does not shift the rest (none is shown twice or
skipped, except the ones added behind the cursor).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import web

from webinar.http.api.errors import api_error
from webinar.i18n import _

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_CURSOR_CHARS = 512
Key = tuple[str | int | float, ...]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def limit_of(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise api_error(
            400,
            "bad-query",
            _("limit must be a whole number from 1 to %(num)d") % {"num": MAX_LIMIT},
        )
    return int(raw)


def encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Key:
    bad = api_error(400, "bad-cursor", _("this cursor is not one this list gave"))
    if len(cursor) > MAX_CURSOR_CHARS:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if not isinstance(value, list) or not value:
        raise bad
    if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
        raise bad
    return tuple(value)


def paginate(
    request: web.Request,
    items: Sequence[T],
    key: Callable[[T], Key],
    *,
    descending: bool = False,
) -> Page[T]:
    """One page of ``items`` (sorted by ``key``, ascending or ``descending``; the key's last
    part must tell items apart) by the request's ``limit`` and ``cursor``."""
    limit = limit_of(request)
    cursor = request.query.get("cursor")
    start = 0
    if cursor:
        after = decode_cursor(cursor)
        try:
            # the first item that sorts after the cursor's (descending: with a smaller key)
            def beyond(k: Key) -> bool:
                return _before(k, after) if descending else _before(after, k)

            start = next((i for i, it in enumerate(items) if beyond(key(it))), len(items))
        except TypeError:  # a key of another shape (another list's cursor)
            raise api_error(400, "bad-cursor", _("this cursor is not one this list gave")) from None
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    return Page(page, encode_cursor(key(page[-1])) if more and page else None)


def _before(a: Key, b: Key) -> bool:
    """``a`` sorts before ``b`` (TypeError if they cannot be compared)."""
    if len(a) != len(b):
        raise TypeError("keys of different shapes")
    return a < b
