"""Security headers on every response.

Every HTML page gets a Content-Security-Policy that lets scripts, styles, images and media come
from this origin only (no inline scripts: forms ask for confirmation through ``confirm.js``),
WebSockets to this origin, and no framing: ``frame-ancestors 'none'`` and
``X-Frame-Options: DENY``, so no other site can lay a page of ours under its own buttons. The
attendee and presenter rooms (``/e/...``) may be framed by the origins in ``http.embed_origins``
and by nobody else. On a cluster of nodes a page may also open its WebSocket to the other
nodes (a join moved to another node, webinar.cluster.placement): ``connect`` names them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_POLICY = "; ".join(
    (
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
)


def policy(frame_ancestors: tuple[str, ...] = (), connect: Iterable[str] = ()) -> str:
    """The Content-Security-Policy of an HTML page framed only by ``frame_ancestors`` that
    may connect to this origin and the origins in ``connect``."""
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    text = f"{_POLICY}; frame-ancestors {ancestors}"
    extra = " ".join(origin for origin in connect if origin and ";" not in origin)
    return text.replace("connect-src 'self'", f"connect-src 'self' {extra}") if extra else text


def middleware(
    embed_origins: tuple[str, ...] = (), connect: Callable[[], Iterable[str]] | None = None
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The security headers of every response (see the module's description)."""
    closed, embeddable = policy(), policy(embed_origins)

    def add(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not (response.content_type or "").startswith("text/html"):
            return
        room = request.path.startswith("/e/") and bool(embed_origins)
        others = tuple(connect()) if connect is not None else ()
        if others:
            text = policy(embed_origins if room else (), others)
        else:
            text = embeddable if room else closed
        response.headers["Content-Security-Policy"] = text
        if not room:
            response.headers["X-Frame-Options"] = "DENY"

    @web.middleware
    async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            add(request, exc)
            raise
        if not response.prepared:
            add(request, response)
        return response

    return security_headers
