"""Webhook signatures and the endpoint guard: how a request is signed and verified, and which
URLs an endpoint may have (public addresses only, checked again at connect time).

Requests are signed per the Standard Webhooks specification (https://www.standardwebhooks.com):
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">``, keyed with the base64-decoded part of the endpoint's ``whsec_``
secret, so receivers can verify them with any Standard Webhooks library.

For one release the old headers are sent too (deprecated): ``Webinar-Webhook-Signature:
v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`` keyed with the secret's text as stored, with
``Webinar-Webhook-Timestamp`` and ``Webinar-Webhook-Id``.

Secrets made before the switch (``whsec_`` and 43 URL-safe base64 characters, used as text)
are not valid ``whsec_`` secrets: their base64 part is not padded and uses ``-``/``_``. They
are converted when read, not by a migration (:func:`standard_secret`): the standard form is
``whsec_`` + base64 of the old secret's text, so its decoded key is that very text, and the
new signature and the old header are keyed with the same bytes. The stored text stays as it
was, so the old header goes on verifying with what receivers configured.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from webinar.i18n import _


class WebhookEvent(enum.StrEnum):
    """Every event name a webhook can carry (docs/api.md lists their ``data``)."""

    EVENT_STARTED = "event.started"
    EVENT_ENDED = "event.ended"
    PARTICIPANT_JOINED = "participant.joined"
    PARTICIPANT_LEFT = "participant.left"
    RECORDING_READY = "recording.ready"
    REGISTRATION_CREATED = "registration.created"
    REGISTRATION_UPDATED = "registration.updated"
    REGISTRATION_CANCELLED = "registration.cancelled"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"
    #: Sent by the dashboard's "Send test" button to one endpoint only.
    TEST = "webhook.test"


#: Standard Webhooks headers: the delivery ID (the same on every retry), Unix seconds of this
#: attempt, and the space-separated ``v1,<base64>`` signatures.
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
#: The event name (not part of the signature; the body's ``type`` says the same).
EVENT_HEADER = "Webinar-Webhook-Event"
#: Deprecated: what receivers verified before Standard Webhooks; sent for one more release.
LEGACY_ID_HEADER = "Webinar-Webhook-Id"
LEGACY_TIMESTAMP_HEADER = "Webinar-Webhook-Timestamp"
LEGACY_SIGNATURE_HEADER = "Webinar-Webhook-Signature"

SECRET_PREFIX = "whsec_"
#: Random bytes in a new endpoint's secret (the specification asks for 24 to 64).
SECRET_BYTES = 32

#: Endpoints one account may have.
MAX_ENDPOINTS_PER_OWNER = 10
#: Largest JSON body of one webhook.
MAX_BODY_BYTES = 64 * 1024
#: Events waiting to be written to the log; beyond that new ones are dropped (and logged).
MAX_QUEUED = 10_000
#: Deliveries attempted at once.
BATCH = 16
#: Longest wait between retries, whatever the back-off says.
MAX_RETRY_DELAY = 3600.0
#: How often finished deliveries older than the retention are deleted.
PRUNE_INTERVAL = 3600.0
#: Receivers should refuse signatures older than this (what :func:`verify` does).
SIGNATURE_TOLERANCE = 300
#: How much of an error message the log keeps.
MAX_ERROR_CHARS = 300


# ----------------------------------------------------------------------------- signing


def new_secret() -> str:
    """A new endpoint's secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def _standard_key(secret: str) -> bytes | None:
    """The key of a ``whsec_`` secret in the standard form (strict, padded base64 of 24 to 64
    bytes), else None."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if 24 <= len(key) <= 64 else None


def standard_secret(stored: str) -> str:
    """The endpoint's secret in the Standard Webhooks form, shown to organisers and used to sign.

    A secret made since the switch is that already. One made before (its text was the key) is
    ``whsec_`` + base64 of its text: the same key bytes, so nothing about it changes but how
    it is written."""
    if _standard_key(stored) is not None:
        return stored
    return SECRET_PREFIX + base64.b64encode(stored.encode()).decode("ascii")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret (either form: see :func:`standard_secret`)."""
    key = _standard_key(standard_secret(secret))
    assert key is not None
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` and the base64 HMAC-SHA256, keyed with the
    secret's key, of ``<id>.<timestamp>.<body>``."""
    if "." in msg_id:
        raise ValueError("a webhook ID must not contain a full stop")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE,
) -> bool:
    """What a Standard Webhooks receiver does: one of the signatures matches the ID, the
    timestamp and the raw body, and the timestamp is within ``tolerance`` seconds of now."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get(ID_HEADER, "")
    signatures = lower.get(SIGNATURE_HEADER, "")
    try:
        ts = int(lower.get(TIMESTAMP_HEADER, ""))
    except ValueError:
        return False
    now = time.time() if now is None else now
    if not msg_id or "." in msg_id or abs(now - ts) > tolerance:
        return False
    expected = sign(secret, msg_id, ts, body).encode()
    return any(hmac.compare_digest(expected, part.encode()) for part in signatures.split(" "))


def sign_legacy(secret: str, timestamp: int, body: bytes) -> str:
    """Deprecated ``Webinar-Webhook-Signature``: ``v1=`` and the hex HMAC-SHA256, keyed with
    the secret's text as stored, of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_legacy(
    secret: str,
    timestamp: str,
    signature: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE,
) -> bool:
    """What a receiver written for the deprecated headers does (docs/api.md until this release)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - ts) > tolerance:
        return False
    expected = sign_legacy(secret, ts, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in signature.split(","))


def request_headers(
    stored_secret: str, delivery_id: str, event: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every header of one attempt: the Standard Webhooks three, the event name, and the
    deprecated ones (``stored_secret``: the endpoint's secret as stored, either form)."""
    return {
        "Content-Type": "application/json",
        ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(stored_secret, delivery_id, timestamp, body),
        EVENT_HEADER: event,
        LEGACY_ID_HEADER: delivery_id,
        LEGACY_TIMESTAMP_HEADER: str(timestamp),
        LEGACY_SIGNATURE_HEADER: sign_legacy(stored_secret, timestamp, body),
    }


def retry_delay(attempts: int, base: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: base, 2·base, 4·base, …"""
    return float(min(base * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY))


# ----------------------------------------------------------------------------- endpoints


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Names that never leave the machine or the LAN, however they are spelled.
_PRIVATE_NAMES = ("localhost", "localhost.localdomain")
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
#: What ``inet_aton`` reads as IPv4: ``127.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``.
_IPV4_LIKE = re.compile(r"[0-9a-fx.]+")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    packed = address.packed
    if address in _NAT64 or (packed[:12] == bytes(12) and int(address) > 1):
        found.append(ipaddress.IPv4Address(packed[12:]))  # NAT64, or IPv4-compatible ::a.b.c.d
    return found


def _is_public(address: Address) -> bool:
    """A globally reachable unicast address, and so is every IPv4 address it embeds."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if address.ipv4_mapped is not None:
            return _is_public(address.ipv4_mapped)
        if any(not _is_public(v4) for v4 in inner):
            return False
    return address.is_global and not address.is_multicast


def canonical_host(host: str) -> str | Address:
    """The host of a URL as what it names: an IP address, however it is spelled (``127.1``,
    ``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``, ``[fe80::1%eth0]``), else the DNS name
    in lower case without its trailing dot (``LOCALHOST.`` is ``localhost``)."""
    name = host.strip().lower().strip("[]").rstrip(".")
    if ":" in name:
        try:
            return ipaddress.IPv6Address(name.split("%", 1)[0])
        except ValueError:
            return name
    if _IPV4_LIKE.fullmatch(name):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            pass
    return name


def check_endpoint_url(url: str, *, allow_private: bool) -> str:
    """A webhook URL: absolute http(s), no credentials; ValueError says what is wrong.

    Unless ``allow_private``, its host must not name or spell a private, loopback,
    link-local or otherwise non-public address (:func:`canonical_host` reads every spelling);
    names are resolved again when a delivery connects (:class:`PublicResolver`)."""
    url = url.strip()
    if len(url) > 2000:
        raise ValueError(_("the URL must have at most 2000 characters"))
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(_("the URL must start with https:// (or http://) and name a host"))
    if parts.username or parts.password:
        raise ValueError(_("put no user name or password in the URL; the signature authenticates"))
    if parts.fragment:
        raise ValueError(_("the URL must not have a #fragment"))
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(_("the URL has an invalid port")) from None
    if not allow_private:
        host = canonical_host(parts.hostname)
        if isinstance(host, str):
            if not host or host in _PRIVATE_NAMES or host.endswith(_PRIVATE_SUFFIXES):
                raise ValueError(_("the URL must point to a public host"))
        elif not _is_public(host):
            raise ValueError(_("the URL must point to a public address, not a private one"))
    return url


class PublicResolver(AbstractResolver):
    """Resolves names to public addresses only: a webhook cannot reach into the server's LAN."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if _is_public(ipaddress.ip_address(r["host"]))]
        if not public:
            raise OSError(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()
