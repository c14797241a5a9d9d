"""The dashboard's *API tokens* page (``/dashboard/tokens``): make and revoke the bearer
tokens of the JSON API.

An organiser sees and manages their own tokens; an admin also every account's (to revoke
them). A new token's secret is shown once, on the page the form answers with (never in a
URL, never again); only its hash is stored. Scopes: read, write, and admin for admin accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from webinar.http.site import Pages, Site, route
from webinar.i18n import _
from webinar.storage import api_tokens
from webinar.storage.api_tokens import ApiToken, Scope, TokenError
from webinar.storage.store import SessionRecord, User

#: ``?notice=`` codes the page understands.
_NOTICES = ("revoked",)


@dataclass
class TokenPages(Pages):
    site: Site

    async def _visible(self, user: User) -> list[ApiToken]:
        owner = None if user.is_admin else user.user_id
        return await self.site.store.run(
            lambda core: api_tokens.list_tokens(core.connection, owner)
        )

    async def _page(
        self,
        request: web.Request,
        record: SessionRecord,
        user: User,
        *,
        error: str | None = None,
        made: tuple[ApiToken, str] | None = None,
        name: str = "",
        status: int = 200,
    ) -> web.Response:
        tokens = await self._visible(user)
        scopes = [Scope.READ, Scope.WRITE] + ([Scope.ADMIN] if user.is_admin else [])
        notice = request.query.get("notice")
        return self.site.render(
            request,
            "tokens.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            tokens=[
                {
                    "id": t.token_id,
                    "name": t.name,
                    "scope": t.scope.value,
                    "username": t.username,
                    "own": t.user_id == user.user_id,
                    "created": t.created_at.strftime("%Y-%m-%d %H:%M"),
                    "used": t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else None,
                }
                for t in tokens
            ],
            scopes=[s.value for s in scopes],
            made={"id": made[0].token_id, "secret": made[1], "scope": made[0].scope.value}
            if made
            else None,
            error=error,
            token_name=name,
            notice=notice if notice in _NOTICES else None,
        )

    @route("GET", "/dashboard/tokens")
    async def page(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        return await self._page(request, record, user)

    @route("POST", "/dashboard/tokens")
    async def create(self, request: web.Request) -> web.Response:
        record, user, form = await self.site.require_form(request)
        name = str(form.get("name", ""))[:200]
        try:
            scope = Scope(str(form.get("scope", "")))
        except ValueError:
            return await self._page(
                request,
                record,
                user,
                error=_("Choose what the token may do."),
                name=name,
                status=400,
            )
        try:
            made = await self.site.store.run(
                lambda core: api_tokens.create(core.connection, user.user_id, name, scope)
            )
        except TokenError as exc:
            return await self._page(request, record, user, error=str(exc), name=name, status=400)
        return await self._page(request, record, user, made=made)

    @route("POST", "/dashboard/tokens/{token_id}/revoke")
    async def revoke(self, request: web.Request) -> web.Response:
        _record, user, _form = await self.site.require_form(request)
        token_id = request.match_info["token_id"][:64]
        owner = None if user.is_admin else user.user_id
        if not await self.site.store.run(
            lambda core: api_tokens.revoke(core.connection, token_id, owner)
        ):
            raise web.HTTPNotFound(text=_("No such token of yours."))
        raise web.HTTPSeeOther("/dashboard/tokens?notice=revoked")
