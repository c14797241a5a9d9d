"""A test backend's side of signed join tokens: an organiser with a key, and tokens signed
the way an organiser's site signs them (pyjwt, as docs/api.md shows)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from tests.helpers import RunningServer
from webinar.accounts import hash_password
from webinar.storage.store import Event
from webinar.ticketing.join_tokens import JoinKey, sql_add_key

PASSWORD = "correct horse battery"


@dataclass
class Backend:
    """An organiser's backend: its account and the key it signs with."""

    user_id: int
    key: JoinKey
    #: What signs: the HS256 secret, or the private key (PEM) of a registered public key.
    signing_key: str | bytes

    def sign(
        self,
        event: Event | str,
        *,
        name: str = "Ann Smith",
        role: str = "attendee",
        lifetime: int = 300,
        kid: str | None = None,
        headers: dict[str, Any] | None = None,
        algorithm: str | None = None,
        signing_key: str | bytes | None = None,
        **claims: Any,
    ) -> str:
        """A token for ``event`` (an Event or an ID); ``claims`` add or override (None drops)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "event": event.display_id if isinstance(event, Event) else event,
            "name": name,
            "role": role,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_hex(8),
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(
            body,
            signing_key if signing_key is not None else self.signing_key,
            algorithm=algorithm or self.key.algorithm.value,
            headers={"kid": kid or self.key.key_id, **(headers or {})},
        )


async def organiser(server: RunningServer, name: str = "olga", *, admin: bool = False) -> int:
    """An account (password ``PASSWORD``); its user ID."""
    user = await server.store.run(
        lambda core: core.create_user(
            name, hash_password(PASSWORD, n=2**12), "admin" if admin else "organiser"
        )
    )
    return user.user_id


async def backend(
    server: RunningServer, user_id: int, *, public_key: str | None = None, private: Any = None
) -> Backend:
    """A key of ``user_id``: an HS256 secret, or the given public key (signed with
    ``private``)."""
    key = await server.store.run_sql(
        lambda db: sql_add_key(db, user_id, "Members area", public_key=public_key)
    )
    return Backend(user_id, key, key.secret if private is None else private)
