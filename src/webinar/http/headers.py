"""Security headers on every response.

Every HTML page gets a Content-Security-Policy that lets scripts, styles, images and media come
from this origin only (no inline scripts: forms ask for confirmation through ``confirm.js``),
WebSockets to this origin, and no framing: ``frame-ancestors 'none'`` and
``X-Frame-Options: DENY``, so no other site can lay a page of ours under its own buttons. The
attendee and presenter rooms (``/e/...``) may be framed by the origins in ``http.embed_origins``
and by the event's own allowed origins (webinar.ticketing.embedding: a handler that has read
them leaves them in ``request[EVENT_ORIGINS]``, else they are looked up), and by nobody else.
On a cluster of nodes a page may also open its WebSocket to the other nodes (a join moved to
another node, webinar.cluster.placement): ``connect`` names them. Pages may frame this origin
and the external players' embed origins only (``frame-src``, from
:func:`webinar.content.external.frame_sources`: YouTube's no-cookie player, Vimeo's, and the
administrator's extra hosts).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from webinar.ids import normalize_event_id

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: An event's own origins allowed to frame its pages (canonical event ID → origins).
OriginsOf = Callable[[str], Awaitable[tuple[str, ...]]]
#: The origins a room handler found for its event (set by the handler, read here).
EVENT_ORIGINS = web.RequestKey("event_origins", tuple[str, ...])

_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",  # style attributes set by the server's templates
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
)
_POLICY = "; ".join(_DIRECTIVES)


def policy(
    frame_ancestors: tuple[str, ...] = (),
    connect: Iterable[str] = (),
    frames: tuple[str, ...] = ("'self'",),
) -> str:
    """The Content-Security-Policy of an HTML page framed only by ``frame_ancestors`` that
    may connect to this origin and the origins in ``connect``, and frame ``frames``."""
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    sources = " ".join(f for f in frames if f and ";" not in f and "," not in f) or "'self'"
    text = f"{_POLICY}; frame-src {sources}; frame-ancestors {ancestors}"
    extra = " ".join(origin for origin in connect if origin and ";" not in origin)
    return text.replace("connect-src 'self'", f"connect-src 'self' {extra}") if extra else text


def event_of(path: str) -> str | None:
    """The canonical event ID of an event's page (``/e/<id>`` and below), else None."""
    if not path.startswith("/e/"):
        return None
    return normalize_event_id(path[3:].split("/", 1)[0][:32])


def middleware(
    embed_origins: tuple[str, ...] = (),
    connect: Callable[[], Iterable[str]] | None = None,
    origins_of: OriginsOf | None = None,
    frames: tuple[str, ...] = ("'self'",),
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The security headers of every response (see the module's description); ``frames``
    the ``frame-src`` sources."""
    closed = policy(frames=frames)

    async def ancestors(request: web.Request) -> tuple[str, ...]:
        """Who may frame this page: nobody, or for an event's page the global origins and
        the event's own."""
        event_id = event_of(request.path)
        if event_id is None:
            return ()
        own = request.get(EVENT_ORIGINS)
        if own is None and origins_of is not None:
            try:
                own = await origins_of(event_id)
            except Exception:  # the store is down: framed by the global origins only
                logger.warning("the embed origins of event %s could not be read", event_id)
                own = ()
        return (*embed_origins, *(o for o in own or () if o not in embed_origins))

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not (response.content_type or "").startswith("text/html"):
            return
        framers = await ancestors(request)
        others = tuple(connect()) if connect is not None else ()
        text = policy(framers, others, frames) if framers or others else closed
        response.headers["Content-Security-Policy"] = text
        if not framers:
            response.headers["X-Frame-Options"] = "DENY"

    @web.middleware
    async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            await add(request, exc)
            raise
        if not response.prepared:
            await add(request, response)
        return response

    return security_headers
