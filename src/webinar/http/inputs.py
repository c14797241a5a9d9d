"""What every HTTP handler reads from a request the same way: a JSON body and an integer ID in
the path.

- :func:`read_json` is the one way a handler reads a JSON body: size-limited, then
  :func:`webinar.formats.parse_json` (depth limit, valid Unicode), so a deeply nested body or a
  lone surrogate is a 400 in the endpoint's own error envelope, never a 500, and nothing of it
  is stored. No handler calls ``request.json()`` itself (a unit test greps for it).
- :func:`refuse_nul` (a middleware) answers 400 to a NUL character in the path, the query or
  a form field.
- :func:`path_id` is the one way a handler reads an integer from the path: anything that is not
  a positive integer SQLite can hold (below 2**63) is "no such thing" (404), never an
  ``OverflowError`` from SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from webinar.formats import BadJson, parse_json
from webinar.i18n import _, ngettext

#: Makes the endpoint's error answer from (status, code, message).
ErrorFactory = Callable[[int, str, str], web.HTTPException]
#: Largest JSON body a handler reads unless it says otherwise.
MAX_JSON_BYTES = 64 * 1024
#: Integer IDs in paths are SQLite rowids: 1 to 2**63 - 1.
MAX_PATH_ID = 2**63 - 1
_MISSING: Any = object()


async def read_json(
    request: web.Request,
    error: ErrorFactory,
    *,
    max_bytes: int = MAX_JSON_BYTES,
    empty: Any = _MISSING,
) -> Any:
    """The request's JSON body, parsed under :func:`webinar.formats.parse_json`'s limits.

    ``error(status, code, message)`` makes the refusal: 413 ``too-large`` for a body over
    ``max_bytes``, 400 ``bad-json`` for one that is not UTF-8, not JSON, nested too deeply or
    holding text that is not valid Unicode. An empty body is ``empty`` if given, else
    ``bad-json``."""
    raw = await read_body(request, error, max_bytes=max_bytes)
    if not raw.strip() and empty is not _MISSING:
        return empty
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(400, "bad-json", _("the body must be JSON in UTF-8")) from None
    try:
        return parse_json(text)
    except BadJson as exc:
        message = _("the body is not JSON this server accepts: %(reason)s") % {"reason": exc}
        raise error(400, "bad-json", message) from None


async def read_body(request: web.Request, error: ErrorFactory, *, max_bytes: int) -> bytes:
    """The raw body, or ``error(413, "too-large", ...)`` as soon as it is over ``max_bytes``
    (declared or sent: a chunked body is counted as it arrives)."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise error(413, "too-large", _too_large(max_bytes))
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise error(413, "too-large", _too_large(max_bytes))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> str:
    return ngettext(
        "bodies are limited to %(num)d byte", "bodies are limited to %(num)d bytes", max_bytes
    ) % {"num": max_bytes}


def path_id(request: web.Request, name: str, not_found: Callable[[], web.HTTPException]) -> int:
    """The integer ID ``name`` of the path, or ``not_found()`` raised for anything that is not
    a positive integer below 2**63 (``abc``, ``-1``, ``0``, ``١``, a 30-digit number)."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise not_found()
    value = int(raw)
    if not 1 <= value <= MAX_PATH_ID:
        raise not_found()
    return value


def json_error(
    status: int, code: str, message: str, extra: Mapping[str, Any] | None = None
) -> web.HTTPException:
    """``{"error": code, "message": message}``: the envelope of the session-signed JSON API
    (recordings, statistics), as the interaction admin API's; ``extra`` adds details."""
    exc = web.HTTPException(
        text=json.dumps({**(extra or {}), "error": code, "message": message}),
        content_type="application/json",
    )
    exc.set_status(status)
    return exc


#: Form bodies the middleware reads ahead (cached by aiohttp for the handler).
_FORM_TYPE = "application/x-www-form-urlencoded"


@web.middleware
async def refuse_nul(
    request: web.Request, handler: Callable[[web.Request], Any]
) -> web.StreamResponse:
    """A NUL character (``%00``) in the path, the query or a form field is refused with 400
    before any handler sees it: no store keeps it (PostgreSQL refuses text with one), and no
    name, code or ID of ours has one. JSON bodies are checked by :func:`read_json`, WebSocket
    messages by the signalling schema."""
    bad = "\x00" in request.path or "\x00" in request.query_string
    bad = bad or any("\x00" in k or "\x00" in v for k, v in request.query.items())
    if not bad and request.method == "POST" and request.content_type == _FORM_TYPE:
        form = await request.post()  # cached: the handler reads the same
        bad = any("\x00" in k or (isinstance(v, str) and "\x00" in v) for k, v in form.items())
    if bad:
        message = _("NUL characters are not accepted in requests")
        if "text/html" not in request.headers.get("Accept", ""):  # an API client: JSON
            v1 = request.path.startswith(("/api/v1/", "/api/admin/"))
            body = {"error": {"code": "bad-request", "message": message}} if v1 else None
            raise web.HTTPBadRequest(
                text=json.dumps(body or {"error": "bad-request", "message": message}),
                content_type="application/json",
            )
        raise web.HTTPBadRequest(text=message)
    response: web.StreamResponse = await handler(request)
    return response
