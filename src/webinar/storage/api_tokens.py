"""API tokens (migrations 6 and 12): bearer tokens of the JSON API with a scope.

A token belongs to one account and carries one scope: ``read`` (look), ``write`` (look and
change what the account may change) or ``admin`` (that, and managing tokens; admin accounts
only). Only the SHA-256 hash of the secret is stored; the secret (``wbt_…``) is shown once,
when it is made. Each token also has a public ID (``tok_…``) to list and revoke it by.

Plain synchronous functions on the store's connection (``await store.run(lambda core:
api_tokens.create(core.connection, ...))``).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webinar.i18n import _, ngettext
from webinar.storage.db import Database, IntegrityError

#: What a token may do; each scope includes the ones before it.
SCOPE_ORDER = ("read", "write", "admin")
NAME_MAX_CHARS = 100
#: At most this many live tokens per account.
MAX_TOKENS_PER_USER = 50
_ID_ATTEMPTS = 10


class Scope(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        """Whether a token of this scope may do what ``needed`` is required for."""
        return SCOPE_ORDER.index(self.value) >= SCOPE_ORDER.index(needed.value)


class TokenError(ValueError):
    """A token cannot be made; ``code`` for programs, the message (in the language in
    effect) for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class ApiToken:
    token_id: str
    user_id: int
    username: str
    role: str
    name: str
    scope: Scope
    created_at: datetime
    last_used_at: datetime | None


def secret_hash(secret: str) -> str:
    """What the table indexes a token by (the same hash as every token made before scopes)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return "wbt_" + secrets.token_urlsafe(24)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def _db_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_COLUMNS = (
    "t.token_id, t.user_id, u.username, u.role, t.label, t.scope, t.created_at, t.last_used_at"
)
_FROM = " FROM api_tokens t JOIN users u ON u.user_id = t.user_id"


def _token(row: tuple[Any, ...]) -> ApiToken:
    created = _time(row[6])
    assert created is not None
    return ApiToken(
        token_id=row[0],
        user_id=int(row[1]),
        username=row[2],
        role=row[3],
        name=row[4],
        scope=Scope(row[5]),
        created_at=created,
        last_used_at=_time(row[7]),
    )


def create(conn: Database, user_id: int, name: str, scope: Scope) -> tuple[ApiToken, str]:
    """A new token for the account ``user_id``; returns it and its secret (shown only now).

    An ``admin`` token needs an admin account; at most :data:`MAX_TOKENS_PER_USER` per
    account."""
    name = " ".join(name.split())
    if not 1 <= len(name) <= NAME_MAX_CHARS:
        raise TokenError(
            "invalid",
            _("a token's name needs 1 to %(num)d characters") % {"num": NAME_MAX_CHARS},
        )
    row = conn.execute("SELECT role FROM users WHERE user_id = ?", (user_id,)).fetchone()
    if row is None:
        raise TokenError("not-found", _("no such account"))
    if scope is Scope.ADMIN and row[0] != "admin":
        raise TokenError(
            "admin-account-required", _("only an admin account can hold an admin token")
        )
    (count,) = conn.execute(
        "SELECT count(*) FROM api_tokens WHERE user_id = ?", (user_id,)
    ).fetchone()
    if count >= MAX_TOKENS_PER_USER:
        raise TokenError(
            "limit-reached",
            ngettext(
                "an account may hold at most %(num)d API token",
                "an account may hold at most %(num)d API tokens",
                MAX_TOKENS_PER_USER,
            )
            % {"num": MAX_TOKENS_PER_USER},
        )
    secret = new_secret()
    now = _db_time(datetime.now(UTC))
    for _attempt in range(_ID_ATTEMPTS):
        token_id = "tok_" + secrets.token_hex(8)
        try:
            conn.execute(
                "INSERT INTO api_tokens (token_hash, user_id, label, created_at, token_id, scope)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (secret_hash(secret), user_id, name, now, token_id, scope.value),
            )
        except IntegrityError:  # an ID taken already (2**64 of them): draw another
            continue
        found = get(conn, token_id)
        assert found is not None
        return found, secret
    raise TokenError("conflict", _("could not find a free token ID"))  # pragma: no cover


def get(conn: Database, token_id: str) -> ApiToken | None:
    row = conn.execute(f"SELECT {_COLUMNS}{_FROM} WHERE t.token_id = ?", (token_id,)).fetchone()
    return None if row is None else _token(row)


def find(conn: Database, secret: str) -> ApiToken | None:
    """The token whose secret this is, if it is live."""
    row = conn.execute(
        f"SELECT {_COLUMNS}{_FROM} WHERE t.token_hash = ?", (secret_hash(secret),)
    ).fetchone()
    return None if row is None else _token(row)


def list_tokens(conn: Database, user_id: int | None = None) -> list[ApiToken]:
    """One account's tokens, or (None) every account's; oldest first."""
    if user_id is None:
        rows = conn.execute(f"SELECT {_COLUMNS}{_FROM} ORDER BY t.created_at, t.token_id")
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS}{_FROM} WHERE t.user_id = ? ORDER BY t.created_at, t.token_id",
            (user_id,),
        )
    return [_token(row) for row in rows]


def revoke(conn: Database, token_id: str, user_id: int | None = None) -> bool:
    """Delete one token (of ``user_id`` only, when given); False if there is none."""
    if user_id is None:
        cursor = conn.execute("DELETE FROM api_tokens WHERE token_id = ?", (token_id,))
    else:
        cursor = conn.execute(
            "DELETE FROM api_tokens WHERE token_id = ? AND user_id = ?", (token_id, user_id)
        )
    return cursor.rowcount > 0


def revoke_all(conn: Database, user_id: int) -> int:
    return conn.execute("DELETE FROM api_tokens WHERE user_id = ?", (user_id,)).rowcount


def touch(conn: Database, token_id: str, at: datetime) -> None:
    """Record that the token was used (the tokens page shows when)."""
    conn.execute(
        "UPDATE api_tokens SET last_used_at = ? WHERE token_id = ?", (_db_time(at), token_id)
    )
