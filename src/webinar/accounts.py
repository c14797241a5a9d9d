"""Organiser accounts: password hashing, sign-in sessions, CSRF tokens.

Passwords are hashed with scrypt (memory-hard: 32 MiB and ~0.1 s per hash with
the parameters below), a random salt each; comparisons are constant-time.
Hashing runs in a worker thread from async code so it never blocks the loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 1024
SESSION_LIFETIME = timedelta(days=7)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_password_rules(password: str) -> None:
    if not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
        raise ValueError(
            f"a password needs {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"
        )


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """``scrypt$n$r$p$salt$hash``, everything needed to verify it later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=32
    )
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash to verify against when the user does not exist, so a wrong user name takes
# as long as a wrong password (no user enumeration by timing).
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


async def verify_password_async(password: str, stored: str | None) -> bool:
    ok = await asyncio.to_thread(verify_password, password, stored or _DUMMY_HASH)
    return ok and stored is not None


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


def token_hash(token: str) -> str:
    """Sessions are stored by the hash of their cookie token, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # goes into the cookie, once
    token_hash: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime


def new_session(now: datetime | None = None) -> NewSession:
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    return NewSession(
        token=token,
        token_hash=token_hash(token),
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
