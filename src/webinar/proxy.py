"""Behind a reverse proxy: take the client's address and scheme from the proxy's headers.

Only with ``http.trust_proxy_headers`` set, and only for requests that come from a
loopback address (the proxy on the same machine): then ``request.remote`` is the last
address of ``X-Forwarded-For`` (what nginx's ``$proxy_add_x_forwarded_for`` appends) and
``request.scheme`` is ``X-Forwarded-Proto``, so rate limits count real clients and cookies
get ``Secure`` behind TLS.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web
from aiohttp.typedefs import Handler


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _forwarded_for(header: str) -> str | None:
    last = header.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return None


@web.middleware
async def proxy_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _loopback(request.remote):
        changes: dict[str, str] = {}
        remote = _forwarded_for(request.headers.get("X-Forwarded-For", ""))
        if remote is not None:
            changes["remote"] = remote
        proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        if proto in ("http", "https"):
            changes["scheme"] = proto
        if changes:
            request = request.clone(**changes)  # type: ignore[arg-type]
    return await handler(request)
