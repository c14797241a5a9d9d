"""What every dashboard page shares: the store, the renderer, the public URL and the signed-in
organiser (session cookie, per-form CSRF token, ownership of events).

Page classes (:mod:`.dashboard`, :mod:`.recordings`, :mod:`.stats`, :mod:`.tickets`,
:mod:`.webhooks`, :mod:`.interaction`) take one :class:`Site` and ask it who is signed in;
none of them reads the session cookie itself.
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from webinar.accounts import token_hash
from webinar.http.inputs import json_error
from webinar.i18n import _
from webinar.storage.store import Event, SessionRecord, Store, User

SESSION_COOKIE = "webinar_session"
LOGIN_CSRF_COOKIE = "webinar_login_csrf"

Render = Callable[..., web.Response]
SignedIn = tuple[SessionRecord, User]


@dataclass
class Site:
    store: Store
    render: Render
    public_url: str | None  # links use it, else the origin the request came to

    def base_url(self, request: web.Request) -> str:
        """Where links in pages and e-mails point: the public URL, else this request's origin."""
        return (self.public_url or str(request.url.origin())).rstrip("/")

    # ------------------------------------------------------------------ who is signed in

    async def session(self, request: web.Request) -> SignedIn | None:
        """The dashboard session of this request's cookie, if it is valid."""
        token = request.cookies.get(SESSION_COOKIE)
        if not token or len(token) > 100:
            return None
        return await self.store.get_session(token_hash(token), datetime.now(UTC))

    async def require(self, request: web.Request) -> SignedIn:
        """The signed-in organiser, or a redirect to the sign-in page."""
        found = await self.session(request)
        if found is None:
            raise web.HTTPSeeOther("/login")
        return found

    async def api_user(self, request: web.Request) -> User:
        """The signed-in organiser of a JSON request, or a JSON 401 (no redirect for scripts)."""
        found = await self.session(request)
        if found is None:
            raise json_error(401, "unauthorized", _("sign in first"))
        return found[1]

    @staticmethod
    def check_csrf(expected: str, form: Mapping[str, Any]) -> None:
        """Refuse a form whose CSRF token is not ``expected`` (403)."""
        given = str(form.get("csrf", ""))
        if not given or not hmac.compare_digest(given, expected):
            raise web.HTTPForbidden(text=_("The form expired or did not come from this site."))

    async def require_form(
        self, request: web.Request
    ) -> tuple[SessionRecord, User, Mapping[str, Any]]:
        """A form posted by the signed-in organiser, its CSRF token checked."""
        record, user = await self.require(request)
        form = await request.post()
        self.check_csrf(record.csrf_token, form)
        return record, user, form

    # ------------------------------------------------------------------ whose event

    async def own_event(self, request: web.Request, user: User) -> Event:
        """The event in the URL if ``user`` may see it (an admin sees all, an organiser their
        own and those they co-organise: :meth:`User.manages`), else 404."""
        event = await self.store.get_event(request.match_info["event_id"])
        if event is None or not user.manages(event):
            raise web.HTTPNotFound(text=_("No such event of yours."))
        return event

    async def owned_event(self, request: web.Request) -> tuple[Event, SessionRecord, User]:
        """The event in the URL if the signed-in user may see it (else a redirect or 404)."""
        record, user = await self.require(request)
        return await self.own_event(request, user), record, user

    async def visible_events(self, user: User) -> list[Event]:
        """The events ``user`` may see: an organiser their own and those they co-organise,
        an admin all."""
        return await self.store.list_events(None if user.is_admin else user.user_id)


# ----------------------------------------------------------------------------- routes

_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[web.StreamResponse]])
_ROUTE_ATTR = "_webinar_routes"
_declared = itertools.count()


def route(method: str, path: str) -> Callable[[_Handler], _Handler]:
    """Declare the route of a :class:`Pages` handler, beside the handler; stack it for more."""
    order = next(_declared)

    def mark(handler: _Handler) -> _Handler:
        routes = handler.__dict__.setdefault(_ROUTE_ATTR, [])
        routes.append((order, method, path))
        return handler

    return mark


class Pages:
    """A class of pages whose handlers carry their routes (:func:`route`)."""

    def routes(self) -> list[web.RouteDef]:
        """Every declared route, static paths before dynamic ones, else as declared."""
        found: list[tuple[int, str, str, str]] = []
        for cls in type(self).__mro__:
            for name, value in vars(cls).items():
                for order, method, path in getattr(value, _ROUTE_ATTR, ()):
                    found.append((order, method, path, name))
        found.sort(key=lambda r: (r[2].count("{"), r[0]))
        return [web.route(method, path, getattr(self, name)) for _, method, path, name in found]
