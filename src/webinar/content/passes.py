"""Content passes: a signed, expiring proof that its holder was admitted to an event, which
content requests carry (``X-Content-Pass`` or ``?pass=``), and whom it was given to.

A pass is ``<event_id>.<expires>.<who>.<signature>``: ``expires`` in Unix seconds, ``who`` the
attendance person key of the participant it was handed to (webinar.rooms.state.person_key_for),
base64url without padding, or empty (a pass for whoever showed the event's credential), and the
signature an HMAC-SHA256 of the rest under the server's secret (the first 18 bytes, base64url).
Downloads with a pass that names someone are counted for that person (the engagement export).

Passes of the earlier form ``<event_id>.<expires>.<signature>`` stay valid until they expire:
they name nobody.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from webinar.ids import same_secret

#: How long a content pass proves admission (a day's event, with some slack).
PASS_SECONDS = 12 * 3600
#: Expiry times are rounded up to this: the passes one person gets within it are the same, so
#: the URLs of what they load (page images above all) stay the same and browsers' caches hit.
ROUND_SECONDS = 3600
#: The longest pass accepted (a person key is at most ~70 characters).
MAX_CHARS = 300


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _sign(secret: bytes, body: str) -> str:
    mac = hmac.new(secret, b"content-pass:" + body.encode(), hashlib.sha256)
    return _b64(mac.digest()[:18])


def issue(secret: bytes, event_id: str, who: str = "", now: float | None = None) -> tuple[str, int]:
    """A pass for ``event_id`` naming ``who`` (a person key, or "" for nobody), and when it
    expires (Unix seconds)."""
    earliest = int(now if now is not None else time.time()) + PASS_SECONDS
    expires = -(-earliest // ROUND_SECONDS) * ROUND_SECONDS
    body = f"{event_id}.{expires}.{_b64(who.encode('utf-8'))}"
    return f"{body}.{_sign(secret, body)}", expires


def check(secret: bytes, event_id: str, token: str, now: float | None = None) -> str | None:
    """Whom the pass names ("" for nobody) if it is a valid, unexpired pass of ``event_id``;
    None otherwise."""
    if len(token) > MAX_CHARS:
        return None
    parts = token.split(".")
    if len(parts) not in (3, 4) or parts[0] != event_id or not parts[1].isdigit():
        return None
    if int(parts[1]) < (now if now is not None else time.time()):
        return None
    if not same_secret(parts[-1], _sign(secret, ".".join(parts[:-1]))):
        return None
    if len(parts) == 3:
        return ""
    return _unb64(parts[2])
