"""Event IDs and presenter keys.

An event ID is 9 decimal digits (about 30 bits), shown as ``123-456-789`` so that it is easy
to read aloud and to type on any keyboard. It identifies an event; it is *not* a secret.
Presenting needs the presenter key, a 144-bit random URL-safe token.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

EVENT_ID_DIGITS = 9
_EVENT_ID_SPACE = 10**EVENT_ID_DIGITS
_DIGITS = frozenset("0123456789")
# Characters people put between digit groups when typing or pasting an ID.
_SEPARATORS = frozenset(" \t-._\u00a0\u2010\u2011\u2012\u2013\u2014\u2212")
# Longest input worth looking at: 9 digits with generous separators around them.
_MAX_INPUT_CHARS = 40

PRESENTER_KEY_BYTES = 18


def new_event_id() -> str:
    """Return a fresh random event ID in canonical form (9 digits, no separators)."""
    return f"{secrets.randbelow(_EVENT_ID_SPACE):0{EVENT_ID_DIGITS}d}"


def normalize_event_id(text: str) -> str | None:
    """Return the canonical 9-digit form of a typed event ID, or None if it is not one.

    Accepts ``"123-456-789"``, ``"123 456 789"``, ``"123456789"`` and similar: separators
    (spaces, hyphens, dashes, dots) anywhere are ignored; only ASCII digits count.
    """
    if len(text) > _MAX_INPUT_CHARS:
        return None
    digits = []
    for char in text:
        if char in _DIGITS:
            digits.append(char)
        elif char not in _SEPARATORS:
            return None
    if len(digits) != EVENT_ID_DIGITS:
        return None
    return "".join(digits)


def format_event_id(event_id: str) -> str:
    """Return an event ID for display, as ``123-456-789``.

    Raises ValueError if ``event_id`` is not an event ID in any accepted form.
    """
    canonical = normalize_event_id(event_id)
    if canonical is None:
        raise ValueError(f"not an event ID: {event_id!r}")
    return f"{canonical[0:3]}-{canonical[3:6]}-{canonical[6:9]}"


def new_presenter_key() -> str:
    """Return a fresh presenter key (24 URL-safe characters)."""
    return secrets.token_urlsafe(PRESENTER_KEY_BYTES)


def same_secret(a: str, b: str) -> bool:
    """Compare two secrets in time independent of where they differ."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def client_key(address: str | None) -> str:
    """The key a client's address counts under in limits: an IPv4 address as it is, an IPv6
    address by its /64 (one subscriber's whole prefix is one client), anything else as given."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
