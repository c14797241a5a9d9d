"""Webhooks in the API (``/api/v1/webhooks/…``): an account's endpoints and the delivery log.

The rules are the dashboard's Webhooks page's (:mod:`webinar.http.webhooks`): public URLs only
(unless ``webhooks.allow_private_addresses``), at most 10 endpoints per account. An account's
token manages that account's endpoints; the delivery log shows the deliveries to them (an
admin's: every account's). The configured admin token sees every account's endpoints and
deliveries; making an endpoint needs an account's token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from webinar.formats import iso_time
from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator
from webinar.http.api.errors import api_error
from webinar.http.api.paging import decode_cursor, encode_cursor, limit_of, paginate
from webinar.http.api.table import PAGE_QUERY, ApiPages, Call, Query, operation
from webinar.http.inputs import path_id
from webinar.i18n import _
from webinar.storage.api_tokens import Scope
from webinar.storage.db import Database
from webinar.storage.store import Store
from webinar.webhooks import records as wr
from webinar.webhooks.service import Webhooks
from webinar.webhooks.signing import WebhookEvent, check_endpoint_url

TAG = "Webhooks"
_STATUSES = ("pending", "delivered", "failed")


def endpoint_json(e: wr.Endpoint) -> s.WebhookEndpoint:
    return s.WebhookEndpoint(
        endpoint_id=e.endpoint_id,
        url=e.url,
        events=sorted(e.events),
        created_at=iso_time(e.created_at, timespec="milliseconds", zulu=True) or "",
    )


def delivery_json(d: wr.Delivery) -> s.Delivery:
    body: dict[str, Any] = d.as_json()
    return s.Delivery(
        delivery_id=d.delivery_id,
        endpoint_id=d.endpoint_id,
        url=d.url,
        event=d.event,
        event_id=body["event_id"],
        status=body["status"],
        attempts=d.attempts,
        next_attempt_at=body["next_attempt_at"],
        created_at=body["created_at"],
        finished_at=body["finished_at"],
        payload=body["payload"],
        history=[s.DeliveryAttempt(**a) for a in body["history"]],
    )


def deliveries_page(
    db: Database,
    owner_id: int | None,
    *,
    status: str | None,
    limit: int,
    before: tuple[float, int] | None,
) -> tuple[list[wr.Delivery], tuple[float, int] | None]:
    """Newest first, after ``before`` (created_at, rowid); and the key of the last one if
    there are more."""
    where: list[str] = []
    args: list[Any] = []
    if owner_id is not None:
        where.append("e.owner_id = ?")
        args.append(owner_id)
    if status is not None:
        where.append("d.status = ?")
        args.append(status)
    if before is not None:
        where.append("(d.created_at < ? OR (d.created_at = ? AND d.rowid < ?))")
        args += [before[0], before[0], before[1]]
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rows = db.execute(
        f"SELECT d.delivery_id, d.created_at, d.rowid FROM webhook_deliveries d"
        f" JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id{clause}"
        " ORDER BY d.created_at DESC, d.rowid DESC LIMIT ?",
        (*args, limit + 1),
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    found: list[wr.Delivery] = []
    for delivery_id, _created, _rowid in rows:
        found += wr.sql_deliveries(db, owner_id, limit=1, delivery_id=delivery_id)
    last = (float(rows[-1][1]), int(rows[-1][2])) if more and rows else None
    return found, last


@dataclass
class WebhooksApi(ApiPages):
    store: Store
    auth: Authenticator
    webhooks: Callable[[], Webhooks]
    allow_private: bool

    def _endpoint_id(self, request: web.Request) -> int:
        return path_id(
            request,
            "endpoint_id",
            lambda: api_error(404, "not-found", _("no such endpoint of yours")),
        )

    async def _endpoints(self, call: Call) -> list[wr.Endpoint]:
        """The caller's account's endpoints (the configured admin token: every one)."""
        user = call.who().user
        owner = None if user is None else user.user_id
        return await self.store.run_sql(lambda db: wr.sql_endpoints(db, owner))

    async def _own_endpoint(self, request: web.Request, call: Call) -> wr.Endpoint:
        endpoint_id = self._endpoint_id(request)
        for endpoint in await self._endpoints(call):
            if endpoint.endpoint_id == endpoint_id:
                return endpoint
        raise api_error(404, "not-found", _("no such endpoint of yours"))

    @operation(
        "GET",
        "/api/v1/webhooks/endpoints",
        scope=Scope.READ,
        summary="List the account's webhook endpoints",
        description="Their signing secrets are shown only when they are made (and on the "
        "dashboard's Webhooks page).",
        tag=TAG,
        response=s.WebhookEndpointPage,
        query=PAGE_QUERY,
    )
    async def list_endpoints(self, request: web.Request, call: Call) -> s.WebhookEndpointPage:
        page = paginate(request, await self._endpoints(call), lambda e: (e.endpoint_id,))
        return s.WebhookEndpointPage([endpoint_json(e) for e in page.items], page.next_cursor)

    @operation(
        "POST",
        "/api/v1/webhooks/endpoints",
        scope=Scope.WRITE,
        summary="Add a webhook endpoint",
        description="events: the event names it wants (none: all). Answers its signing "
        "secret, shown only now. 403 account-required for the configured admin token.",
        tag=TAG,
        status=201,
        response=s.NewWebhookEndpoint,
        body=s.WebhookEndpointCreate,
        errors=(422,),
    )
    async def add_endpoint(self, request: web.Request, call: Call) -> s.NewWebhookEndpoint:
        user = call.who().user
        if user is None:
            raise api_error(
                403, "account-required", _("endpoints belong to an account: use its token")
            )
        body = call.body_as(s.WebhookEndpointCreate)
        valid = {e.value for e in WebhookEvent} - {WebhookEvent.TEST.value}
        chosen = frozenset(body.events)
        try:
            checked = check_endpoint_url(body.url[:2100], allow_private=self.allow_private)
            unknown = sorted(chosen - valid)
            if unknown:
                raise ValueError(_("unknown event name %(name)s") % {"name": repr(unknown[0])})
            events = frozenset() if chosen in (frozenset(), valid) else chosen
            now = time.time()
            owner = user.user_id
            endpoint = await self.store.run_sql(
                lambda db: wr.sql_add_endpoint(db, owner, checked, events, now)
            )
        except ValueError as exc:
            raise api_error(422, "invalid", str(exc)) from None
        return s.NewWebhookEndpoint(endpoint=endpoint_json(endpoint), secret=endpoint.secret)

    @operation(
        "DELETE",
        "/api/v1/webhooks/endpoints/{endpoint_id}",
        scope=Scope.WRITE,
        summary="Delete a webhook endpoint",
        description="With its delivery log.",
        tag=TAG,
        status=204,
        errors=(404,),
    )
    async def delete_endpoint(self, request: web.Request, call: Call) -> None:
        endpoint = await self._own_endpoint(request, call)
        await self.store.run_sql(
            lambda db: wr.sql_delete_endpoint(db, endpoint.owner_id, endpoint.endpoint_id)
        )

    @operation(
        "POST",
        "/api/v1/webhooks/endpoints/{endpoint_id}/test",
        scope=Scope.WRITE,
        summary="Send a webhook.test to one endpoint",
        description="It appears in the delivery log a moment later.",
        tag=TAG,
        status=202,
        response=s.Queued,
        errors=(404,),
    )
    async def test_endpoint(self, request: web.Request, call: Call) -> s.Queued:
        endpoint = await self._own_endpoint(request, call)
        self.webhooks().send_test(endpoint.endpoint_id)
        return s.Queued(queued=True)

    @operation(
        "GET",
        "/api/v1/webhooks/deliveries",
        scope=Scope.READ,
        summary="The webhook delivery log",
        description="Newest first, with every attempt: the deliveries to the account's "
        "endpoints (an admin's, and the configured admin token's: every account's).",
        tag=TAG,
        response=s.DeliveryPage,
        query=(
            *PAGE_QUERY,
            Query("status", "Only deliveries in this state.", {"enum": list(_STATUSES)}),
        ),
    )
    async def deliveries(self, request: web.Request, call: Call) -> s.DeliveryPage:
        status = request.query.get("status") or None
        if status is not None and status not in _STATUSES:
            raise api_error(400, "bad-query", _("status must be pending, delivered or failed"))
        limit = limit_of(request)
        cursor = request.query.get("cursor")
        before: tuple[float, int] | None = None
        if cursor:
            key = decode_cursor(cursor)
            if len(key) != 2 or not all(isinstance(k, int | float) for k in key):
                raise api_error(400, "bad-cursor", _("this cursor is not one this list gave"))
            before = (float(key[0]), int(key[1]))
        owner = call.who().owner_id
        found, last = await self.store.run_sql(
            lambda db: deliveries_page(db, owner, status=status, limit=limit, before=before)
        )
        return s.DeliveryPage(
            [delivery_json(d) for d in found], encode_cursor(last) if last is not None else None
        )

    @operation(
        "POST",
        "/api/v1/webhooks/deliveries/{delivery_id}/retry",
        scope=Scope.WRITE,
        summary="Send a failed delivery again",
        description="Attempts go on counting. 404 unless it failed.",
        tag=TAG,
        status=202,
        response=s.Queued,
        errors=(404,),
    )
    async def retry(self, request: web.Request, call: Call) -> s.Queued:
        delivery_id = request.match_info["delivery_id"][:64]
        owner = call.who().owner_id
        now = time.time()
        if not await self.store.run_sql(lambda db: wr.sql_retry(db, owner, delivery_id, now)):
            raise api_error(404, "not-found", _("no failed delivery of yours with that ID"))
        self.webhooks().retry_now()
        return s.Queued(queued=True)
