"""The paths the one API replaces, answering for one more release.

Each answers as it did (its own authentication and error envelope), with the headers that say
it is deprecated: ``Deprecation`` (RFC 9745: since when), ``Sunset`` (RFC 8594: when it goes)
and ``Link`` to its successor under ``/api/v1`` (``rel="successor-version"``) and to the API's
documentation (``rel="deprecation"``). The OpenAPI description lists them as deprecated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote

from aiohttp import web

from webinar.http.api import schema as s

#: This release deprecates them; the next one removes them.
DEPRECATED_ON = datetime(2026, 12, 7, tzinfo=UTC)
SUNSET_ON = datetime(2027, 6, 30, 23, 59, 59, tzinfo=UTC)
DOCS_PATH = "/api/docs"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Legacy:
    method: str
    path: str
    successor: str
    #: How it is authenticated: "adminToken" (admin.token or any admin-scoped token's
    #: bearer scheme), "sessionCookie" (the dashboard's sign-in) or "presenterKey".
    security: tuple[str, ...]
    summary: str
    status: int = 200
    #: The request body's type (documented; these paths read it as they always did).
    body: type | None = None
    raw_body: str | None = None
    media: str | None = None


_ADMIN = ("adminToken",)
_SESSION = ("sessionCookie",)
_EVENT = "/api/admin/events/{event_id}"
_V1 = "/api/v1/events/{event_id}"

LEGACY: tuple[Legacy, ...] = (
    Legacy("GET", f"{_EVENT}/polls", f"{_V1}/polls", _ADMIN, "List polls"),
    Legacy("POST", f"{_EVENT}/polls", f"{_V1}/polls", _ADMIN, "Prepare a poll", 201, s.PollSpec),
    Legacy(
        "PUT",
        f"{_EVENT}/polls/{{poll_id}}",
        f"{_V1}/polls/{{poll_id}}",
        _ADMIN,
        "Replace a prepared poll",
        body=s.PollSpec,
    ),
    Legacy(
        "DELETE", f"{_EVENT}/polls/{{poll_id}}", f"{_V1}/polls/{{poll_id}}", _ADMIN, "Delete a poll"
    ),
    Legacy("GET", f"{_EVENT}/ctas", f"{_V1}/ctas", _ADMIN, "List prepared calls-to-action"),
    Legacy(
        "POST", f"{_EVENT}/ctas", f"{_V1}/ctas", _ADMIN, "Prepare a call-to-action", 201, s.CtaSpec
    ),
    Legacy(
        "DELETE",
        f"{_EVENT}/ctas/{{prepared_id}}",
        f"{_V1}/ctas/{{prepared_id}}",
        _ADMIN,
        "Delete a prepared call-to-action",
    ),
    Legacy("GET", f"{_EVENT}/interaction", f"{_V1}/interaction", _ADMIN, "The interaction export"),
    Legacy(
        "GET",
        f"{_EVENT}/export/{{kind}}.csv",
        f"{_V1}/exports/{{kind}}.csv",
        _ADMIN,
        "An interaction export as CSV",
        media="text/csv",
    ),
    Legacy(
        "POST",
        "/api/events/{event_id}/images",
        f"{_V1}/images",
        ("presenterKey", "adminToken"),
        "Upload a poll image",
        201,
        raw_body="application/octet-stream",
    ),
    Legacy(
        "GET",
        "/api/admin/webhooks/deliveries",
        "/api/v1/webhooks/deliveries",
        _ADMIN,
        "The webhook delivery log",
    ),
    Legacy("GET", "/api/recordings", "/api/v1/recordings", _SESSION, "List recordings"),
    Legacy("GET", "/api/stats/monthly", "/api/v1/stats/monthly", _SESSION, "Events per month"),
    Legacy(
        "GET",
        "/api/events/{event_id}/stats",
        f"{_V1}/stats",
        _SESSION,
        "An event's statistics",
    ),
)
_BY_ROUTE = {(entry.method, entry.path): entry for entry in LEGACY}


def headers_for(entry: Legacy, request: web.Request) -> dict[str, str]:
    # Path values come back percent-encoded: a hostile one cannot break the header.
    successor = entry.successor.format(
        **{k: quote(v, safe="-_.~") for k, v in request.match_info.items()}
    )
    return {
        "Deprecation": f"@{int(DEPRECATED_ON.timestamp())}",
        "Sunset": format_datetime(SUNSET_ON, usegmt=True),
        "Link": f'<{successor}>; rel="successor-version", <{DOCS_PATH}>; rel="deprecation"',
    }


def _entry(request: web.Request) -> Legacy | None:
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return _BY_ROUTE.get((request.method, resource.canonical))


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The deprecation headers on every answer of a path in :data:`LEGACY`."""
    entry = _entry(request) if request.path.startswith("/api/") else None
    if entry is None:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(headers_for(entry, request))
        raise
    if not response.prepared:
        response.headers.update(headers_for(entry, request))
    return response
