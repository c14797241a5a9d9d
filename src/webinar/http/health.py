"""What operators and load balancers ask: ``/healthz`` (alive, with counts), ``/readyz`` (the
store answers and the server is not draining) and ``/metrics`` (Prometheus text).

With several workers any of them answers for all: ``/healthz`` lists every live worker (from
the registry in Redis), ``/metrics`` merges every worker's series with a ``worker`` label. The
top-level ``rooms`` and ``connections`` of ``/healthz`` are the answering worker's own."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from webinar import __version__
from webinar.cluster.registry import Registry, WorkerInfo
from webinar.http.metrics import CONTENT_TYPE
from webinar.http.site import Pages, route
from webinar.rooms.manager import RoomManager
from webinar.storage.store import Store


@dataclass
class Health(Pages):
    store: Store
    admin_token: str | None
    rooms: Callable[[], RoomManager | None]
    connections: Callable[[], int]
    draining: Callable[[], bool]
    #: This process as a worker entry (the single-process server: worker 0).
    worker: Callable[[], WorkerInfo]
    #: Every worker's view, with several workers; None for the single-process server.
    registry: Callable[[], Registry | None]
    #: This worker's own /metrics text (the app's: rooms, connections, webhooks, media pipes).
    own_metrics: Callable[[], str]
    #: Whether a bearer secret is an admin-scoped token of the API (admin.token included).
    admin_bearer: Callable[[str], Awaitable[bool]]

    async def _workers(self) -> tuple[WorkerInfo, list[WorkerInfo]]:
        own = self.worker()
        registry = self.registry()
        return own, await registry.live_workers() if registry is not None else [own]

    @route("GET", "/healthz")
    async def healthz(self, _request: web.Request) -> web.Response:
        rooms = self.rooms()
        own, workers = await self._workers()
        return web.json_response(
            {
                "status": "ok",
                "version": __version__,
                "rooms": len(rooms.rooms()) if rooms else 0,
                "connections": self.connections(),
                "worker": own.worker_id,
                "pid": own.pid,
                "workers": [info.to_json() for info in workers],
            }
        )

    @route("GET", "/readyz")
    async def readyz(self, _request: web.Request) -> web.Response:
        """Ready: the store answers and this worker is not draining."""
        store_ok = await self.store.ping() if self.store.is_open else False
        draining = self.draining()
        ok = store_ok and not draining
        body: dict[str, object] = {"ready": ok, "store": store_ok, "draining": draining}
        if self.registry() is not None:  # several workers: say which answered, and list all
            own, workers = await self._workers()
            body["worker"] = own.worker_id
            body["workers"] = [info.to_json() for info in workers]
        return web.json_response(body, status=200 if ok else 503)

    @route("GET", "/metrics")
    async def metrics_endpoint(self, request: web.Request) -> web.Response:
        """Prometheus metrics: a bearer that is admin.token or an admin-scoped API token;
        without one, from loopback only (unless admin.token is set: then a bearer always)."""
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if given and await self.admin_bearer(given):
            pass
        elif self.admin_token is not None or given:
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})
        elif not _is_loopback(request.remote) or _is_forwarded(request):
            # An operator's endpoint (Prometheus), not a page: English, like the CLI.
            refusal = "Send an admin-scoped API token to read /metrics from elsewhere."
            raise web.HTTPForbidden(text=refusal)  # i18n-ignore
        text = self.own_metrics()
        registry = self.registry()
        if registry is not None:
            text = await registry.metrics(text)
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _is_forwarded(request: web.Request) -> bool:
    """Came through a proxy: a loopback peer then says nothing of where the client is."""
    return any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))
