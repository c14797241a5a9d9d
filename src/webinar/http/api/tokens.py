"""API tokens in the API: which token is calling (``/api/v1/me``), and managing tokens
(``/api/v1/tokens``, admin scope: an admin account's token or the configured admin token)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from webinar.formats import iso_time
from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator
from webinar.http.api.errors import api_error
from webinar.http.api.paging import paginate
from webinar.http.api.table import PAGE_QUERY, ApiPages, Call, Query, operation
from webinar.i18n import _
from webinar.storage import api_tokens
from webinar.storage.api_tokens import ApiToken, Scope, TokenError
from webinar.storage.store import Store

TAG = "Tokens"


def token_json(t: ApiToken) -> s.Token:
    return s.Token(
        token_id=t.token_id,
        name=t.name,
        scope=t.scope.value,
        account=s.Account(username=t.username, role=t.role),  # type: ignore[arg-type]
        created_at=iso_time(t.created_at, zulu=True) or "",
        last_used_at=iso_time(t.last_used_at, zulu=True),
    )


@dataclass
class TokensApi(ApiPages):
    store: Store
    auth: Authenticator

    @operation(
        "GET",
        "/api/v1/me",
        scope=Scope.READ,
        summary="The token in use",
        description="Its scope and account: a quick check that a token works.",
        tag=TAG,
        response=s.Me,
    )
    async def me(self, request: web.Request, call: Call) -> s.Me:
        caller = call.who()
        user = caller.user
        return s.Me(
            token_id=caller.token_id,
            name=caller.token_name,
            scope=caller.scope.value,
            account=None if user is None else s.Account(username=user.username, role=user.role),  # type: ignore[arg-type]
            sees_all_events=caller.sees_all,
        )

    @operation(
        "GET",
        "/api/v1/tokens",
        scope=Scope.ADMIN,
        summary="List API tokens",
        description="Every account's (their secrets are never shown again), oldest first.",
        tag=TAG,
        response=s.TokenPage,
        query=(*PAGE_QUERY, Query("user", "Only this account's tokens (its user name).")),
        errors=(404,),
    )
    async def list_tokens(self, request: web.Request, call: Call) -> s.TokenPage:
        user_id = None
        if "user" in request.query:
            user = await self.store.get_user_by_name(request.query["user"][:64])
            if user is None:
                raise api_error(404, "not-found", _("no such account"))
            user_id = user.user_id
        found = await self.store.run(lambda core: api_tokens.list_tokens(core.connection, user_id))
        page = paginate(request, found, lambda t: (t.created_at.isoformat(), t.token_id))
        return s.TokenPage([token_json(t) for t in page.items], page.next_cursor)

    @operation(
        "POST",
        "/api/v1/tokens",
        scope=Scope.ADMIN,
        summary="Make an API token",
        description="For the caller's account, or the account named by user. An admin token "
        "needs an admin account. The secret is in this answer only.",
        tag=TAG,
        status=201,
        response=s.NewToken,
        body=s.TokenCreate,
        errors=(404, 422),
    )
    async def create_token(self, request: web.Request, call: Call) -> s.NewToken:
        body = call.body_as(s.TokenCreate)
        if isinstance(body.user, str):
            user = await self.store.get_user_by_name(body.user[:64])
            if user is None:
                raise api_error(404, "not-found", _("no such account"))
        elif call.who().user is not None:
            user = call.who().user
        else:
            raise api_error(
                422, "invalid", _("the configured admin token has no account: name a user")
            )
        assert user is not None
        user_id, scope = user.user_id, Scope(body.scope)
        try:
            token, secret = await self.store.run(
                lambda core: api_tokens.create(core.connection, user_id, body.name, scope)
            )
        except TokenError as exc:
            raise api_error(422, exc.code, str(exc)) from None
        return s.NewToken(token=token_json(token), secret=secret)

    @operation(
        "DELETE",
        "/api/v1/tokens/{token_id}",
        scope=Scope.ADMIN,
        summary="Revoke an API token",
        description="It stops working at once.",
        tag=TAG,
        status=204,
        errors=(404,),
    )
    async def revoke_token(self, request: web.Request, call: Call) -> None:
        token_id = request.match_info["token_id"][:64]
        if not await self.store.run(lambda core: api_tokens.revoke(core.connection, token_id)):
            raise api_error(404, "not-found", _("no such token"))
