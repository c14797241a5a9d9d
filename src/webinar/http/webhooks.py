"""The dashboard's Webhooks page, and the admin API's delivery log."""

from __future__ import annotations

import dataclasses
import hmac
import time
from collections.abc import Callable

from aiohttp import web

from webinar.http.inputs import json_error, path_id
from webinar.http.site import Pages, Site, route
from webinar.i18n import _
from webinar.storage.store import SessionRecord, User
from webinar.webhooks.records import (
    sql_add_endpoint,
    sql_delete_endpoint,
    sql_deliveries,
    sql_endpoints,
    sql_retry,
)
from webinar.webhooks.service import Webhooks
from webinar.webhooks.signing import WebhookEvent, check_endpoint_url

# ----------------------------------------------------------------------------- web: dashboard + API


@dataclasses.dataclass
class WebhookPages(Pages):
    """The dashboard's Webhooks page, and the admin API's delivery log."""

    webhooks: Callable[[], Webhooks]
    site: Site
    allow_private: bool
    admin_token: str | None

    @route("GET", "/dashboard/webhooks")
    async def page(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        return await self._page(request, record, user, error=None, url="")

    async def _page(
        self,
        request: web.Request,
        record: SessionRecord,
        user: User,
        *,
        error: str | None,
        url: str,
        status: int = 200,
    ) -> web.Response:
        owner = user.user_id
        endpoints = await self.site.store.run_sql(lambda db: sql_endpoints(db, owner))
        scope = None if user.is_admin else owner
        deliveries = await self.site.store.run_sql(lambda db: sql_deliveries(db, scope, limit=50))
        return self.site.render(
            request,
            "webhooks.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            endpoints=endpoints,
            deliveries=[d.as_json() for d in deliveries],
            events=[e.value for e in WebhookEvent if e is not WebhookEvent.TEST],
            error=error,
            url=url,
            notice=request.query.get("notice", ""),
        )

    @route("POST", "/dashboard/webhooks")
    async def add(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        form = await request.post()
        self.site.check_csrf(record.csrf_token, form)
        url = str(form.get("url", ""))[:2100]
        chosen = frozenset(str(v) for v in form.getall("events", []))
        valid = {e.value for e in WebhookEvent} - {WebhookEvent.TEST.value}
        try:
            checked = check_endpoint_url(url, allow_private=self.allow_private)
            if chosen - valid:
                raise ValueError(_("unknown event name"))
            events = frozenset() if chosen in (frozenset(), valid) else chosen
            now = time.time()
            await self.site.store.run_sql(
                lambda db: sql_add_endpoint(db, user.user_id, checked, events, now)
            )
        except ValueError as exc:
            return await self._page(request, record, user, error=str(exc), url=url, status=400)
        raise web.HTTPSeeOther("/dashboard/webhooks?notice=added")

    def _endpoint_id(self, request: web.Request) -> int:
        return path_id(
            request, "endpoint_id", lambda: web.HTTPNotFound(text=_("No such endpoint of yours."))
        )

    @route("POST", "/dashboard/webhooks/{endpoint_id}/delete")
    async def delete(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        self.site.check_csrf(record.csrf_token, await request.post())
        endpoint_id = self._endpoint_id(request)
        if not await self.site.store.run_sql(
            lambda db: sql_delete_endpoint(db, user.user_id, endpoint_id)
        ):
            raise web.HTTPNotFound(text=_("No such endpoint of yours."))
        raise web.HTTPSeeOther("/dashboard/webhooks?notice=deleted")

    @route("POST", "/dashboard/webhooks/{endpoint_id}/test")
    async def test(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        self.site.check_csrf(record.csrf_token, await request.post())
        endpoint_id = self._endpoint_id(request)
        mine = await self.site.store.run_sql(lambda db: sql_endpoints(db, user.user_id))
        if not any(e.endpoint_id == endpoint_id for e in mine):
            raise web.HTTPNotFound(text=_("No such endpoint of yours."))
        self.webhooks().send_test(endpoint_id)
        raise web.HTTPSeeOther("/dashboard/webhooks?notice=test-sent")

    @route("POST", "/dashboard/webhooks/deliveries/{delivery_id}/retry")
    async def retry(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        self.site.check_csrf(record.csrf_token, await request.post())
        delivery_id = request.match_info["delivery_id"][:64]
        scope = None if user.is_admin else user.user_id
        now = time.time()
        if not await self.site.store.run_sql(lambda db: sql_retry(db, scope, delivery_id, now)):
            raise web.HTTPNotFound(text=_("No failed delivery of yours with that ID."))
        self.webhooks().retry_now()
        raise web.HTTPSeeOther("/dashboard/webhooks?notice=retrying")

    @route("GET", "/api/admin/webhooks/deliveries")
    async def api_deliveries(self, request: web.Request) -> web.Response:
        """``GET /api/admin/webhooks/deliveries?status=&limit=``: Bearer admin.token."""
        if self.admin_token is None:
            raise json_error(403, "forbidden", _("set admin.token to use the admin API"))
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.admin_token.encode()):
            refused = json_error(401, "unauthorized", _("a bearer token is needed"))
            refused.headers["WWW-Authenticate"] = "Bearer"
            raise refused
        status = request.query.get("status") or None
        if status not in (None, "pending", "delivered", "failed"):
            return web.json_response(
                {
                    "error": "bad-request",
                    "message": _("status must be pending, delivered or failed"),
                },
                status=400,
            )
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 1000:
            return web.json_response(
                {"error": "bad-request", "message": _("limit must be 1 to 1000")}, status=400
            )
        deliveries = await self.site.store.run_sql(
            lambda db: sql_deliveries(db, None, limit=limit, status=status)
        )
        return web.json_response({"deliveries": [d.as_json() for d in deliveries]})
