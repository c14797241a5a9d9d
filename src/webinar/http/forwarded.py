"""Behind a reverse proxy: believe X-Forwarded-For / X-Forwarded-Proto from trusted peers only.

With ``http.trusted_proxies`` set, a request whose TCP peer is one of those addresses (or inside
one of those networks) is rewritten before any handler sees it: ``request.remote`` becomes the
client's address (the rightmost X-Forwarded-For entry that is not itself a trusted proxy) and
``request.scheme`` the X-Forwarded-Proto value (so ``request.secure``, cookies' Secure flag and
links built from the request's origin say https). From any other peer the headers are ignored:
a client cannot choose its own address for the logs or the sign-in rate limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Most X-Forwarded-For entries looked at (a longer chain is cut from the left).
MAX_FORWARDED_HOPS = 20


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """``"10.0.0.1"`` and ``"10.0.0.0/8"`` alike; validated by the config already."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(peer: str | None, networks: tuple[Network, ...]) -> bool:
    address = _address(peer) if peer else None
    return address is not None and any(address in network for network in networks)


def client_address(
    peer: str | None, forwarded_for: list[str], networks: tuple[Network, ...]
) -> str | None:
    """The client behind a chain of proxies, or None when the header says nothing usable.

    Walks the X-Forwarded-For list from the right (the hop nearest to us) and returns the first
    address that is not a trusted proxy; proxies we do not trust may have been fed anything by
    the client, so nothing left of that is believed.
    """
    if not is_trusted(peer, networks):
        return None
    hops = [part for header in forwarded_for for part in header.split(",") if part.strip()]
    hops = hops[-MAX_FORWARDED_HOPS:]
    found: str | None = None
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return found  # garbage: stop believing here
        found = str(address)
        if not any(address in network for network in networks):
            return found
    return found


def forwarded_proto(values: list[str]) -> str | None:
    """The scheme the client used: the first entry of the (last) X-Forwarded-Proto header."""
    if not values:
        return None
    proto = values[-1].split(",")[0].strip().lower()
    return proto if proto in ("http", "https") else None


def middleware(trusted_proxies: Iterable[str]) -> Middleware:
    networks = parse_networks(trusted_proxies)

    @web.middleware
    async def trusted_forwarding(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not networks or not is_trusted(request.remote, networks):
            return await handler(request)
        remote = client_address(
            request.remote, request.headers.getall("X-Forwarded-For", []), networks
        )
        scheme = forwarded_proto(request.headers.getall("X-Forwarded-Proto", []))
        if remote is not None and scheme is not None:
            request = request.clone(remote=remote, scheme=scheme)
        elif remote is not None:
            request = request.clone(remote=remote)
        elif scheme is not None:
            request = request.clone(scheme=scheme)
        return await handler(request)

    return trusted_forwarding
