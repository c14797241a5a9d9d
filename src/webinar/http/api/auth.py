"""Who calls the API: one bearer-token scheme with scopes.

``Authorization: Bearer <token>`` carries either an API token (``wbt_…``, made in the
dashboard's *API tokens* page, by ``webinar token create`` or by ``POST /api/v1/tokens``) or
the configured ``admin.token``, which is an ``admin``-scoped token of no account: it reaches
every event and account. An organiser's token reaches that organiser's events; an admin
account's token every event. The scope limits what the token may do there: ``read`` looks,
``write`` also changes, ``admin`` also manages tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from webinar.http.api.errors import api_error
from webinar.i18n import _
from webinar.ids import same_secret
from webinar.storage import api_tokens
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Event, Store, User

#: Longest bearer token looked up (API tokens are 36 characters).
MAX_TOKEN_CHARS = 200
#: "Last used" is written at most this often per token (seconds).
TOUCH_EVERY = 60.0
_CALLER = web.RequestKey("api_caller", object)


@dataclass(frozen=True, slots=True)
class Caller:
    """The bearer of a valid token."""

    scope: Scope
    #: The token's account; None for the configured ``admin.token``.
    user: User | None
    #: The API token's ID; None for the configured ``admin.token``.
    token_id: str | None
    token_name: str = ""

    @property
    def sees_all(self) -> bool:
        """Every event and account: an admin account, or the configured admin token."""
        return self.user is None or self.user.is_admin

    @property
    def owner_id(self) -> int | None:
        """Whose events a list shows (None: everyone's)."""
        return None if self.sees_all or self.user is None else self.user.user_id

    def may_see(self, event: Event) -> bool:
        """Its own events and those it co-organises; every event for an admin."""
        return self.sees_all or (self.user is not None and self.user.manages(event))

    def may_own(self, event: Event) -> bool:
        """What only an event's owner (or an admin) may do: delete it, choose its
        co-organisers."""
        return self.sees_all or (self.user is not None and self.user.owns(event))


class Authenticator:
    def __init__(self, store: Store, admin_token: str | None) -> None:
        self.store = store
        self.admin_token = admin_token
        self._touched: dict[str, float] = {}

    async def caller(self, request: web.Request) -> Caller:
        """The caller of this request, or a 401 in the API's envelope."""
        known = request.get(_CALLER)
        if isinstance(known, Caller):
            return known
        header = request.headers.get("Authorization", "")
        scheme, _space, given = header.partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given or len(given) > MAX_TOKEN_CHARS:
            raise api_error(401, "unauthorized", _("send Authorization: Bearer <API token>"))
        found = await self.lookup(given)
        if found is None:
            raise api_error(401, "unauthorized", _("this token is not valid (revoked?)"))
        request[_CALLER] = found
        return found

    async def is_admin(self, secret: str) -> bool:
        """Whether ``secret`` is an admin-scoped token (``admin.token`` included)."""
        caller = await self.lookup(secret)
        return caller is not None and caller.scope is Scope.ADMIN

    async def lookup(self, secret: str) -> Caller | None:
        """The caller a token names, or None."""
        if self.admin_token is not None and same_secret(secret, self.admin_token):
            return Caller(Scope.ADMIN, None, None, "admin.token")
        token = await self.store.run(lambda core: api_tokens.find(core.connection, secret))
        if token is None:
            return None
        user_id = token.user_id
        user = await self.store.run(lambda core: core.get_user(user_id))
        if user is None:
            return None
        scope = token.scope
        if scope is Scope.ADMIN and not user.is_admin:  # an account that is no longer admin
            scope = Scope.WRITE
        await self._touch(token.token_id)
        return Caller(scope, user, token.token_id, token.name)

    async def _touch(self, token_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(token_id, -TOUCH_EVERY) < TOUCH_EVERY:
            return
        self._touched[token_id] = now
        if len(self._touched) > 10_000:  # forget the oldest half
            for key in sorted(self._touched, key=self._touched.__getitem__)[:5_000]:
                del self._touched[key]
        at = datetime.now(UTC)
        await self.store.run(lambda core: api_tokens.touch(core.connection, token_id, at))

    @staticmethod
    def require(caller: Caller, needed: Scope) -> None:
        """403 ``insufficient-scope`` unless the caller's token allows ``needed``."""
        if not caller.scope.allows(needed):
            exc = api_error(
                403,
                "insufficient-scope",
                _("this token's scope is %(scope)s; this needs %(needed)s")
                % {"scope": caller.scope.value, "needed": needed.value},
                scope=caller.scope.value,
                needed=needed.value,
            )
            exc.headers["WWW-Authenticate"] = (
                f'Bearer realm="webinar", error="insufficient_scope", scope="{needed.value}"'
            )
            raise exc
