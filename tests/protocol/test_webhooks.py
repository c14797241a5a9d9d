"""Webhooks end to end: a real aiohttp receiver, the dashboard, a live room, retries, the log."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.helpers import RunningServer, make_config, open_sync_store, running_server
from tests.metrics_support import value
from webinar.accounts import hash_password
from webinar.app import WEBHOOKS
from webinar.client.peer import SignallingClient
from webinar.config import AdminConfig, Config, WebhooksConfig
from webinar.webhooks.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookEvent,
    verify,
)

ADMIN_TOKEN = "admin-token-0123456789"


@dataclass
class Receiver:
    """An HTTP endpoint that records what it is sent; answers from ``statuses`` in turn."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "broken")

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    async def wait_for(self, event: str, count: int = 1, within: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = [b for b in self.bodies() if b["event"] == event]
            if len(found) >= count:
                return found[count - 1]
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 0.2)
        raise AssertionError(f"no {event} #{count}; got {[b['event'] for b in self.bodies()]}")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    recv.url = f"http://127.0.0.1:{server.port}/hook"
    try:
        yield recv
    finally:
        await server.close()


def webhook_config(tmp_path: Path, **settings: Any) -> Config:
    config = make_config(tmp_path / "data")
    hooks = WebhooksConfig(
        **{"allow_private_addresses": True, "retry_base_seconds": 0.2, **settings}
    )
    return dataclasses.replace(config, webhooks=hooks, admin=AdminConfig(token=ADMIN_TOKEN))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def sign_in(server: RunningServer, name: str, admin: bool = False) -> aiohttp.ClientSession:
    with server.store.connect_sync() as sync:
        sync.create_user(
            name, hash_password("correct horse battery", n=2**12), "admin" if admin else "organiser"
        )
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(server.base_url + "/login") as resp:
        token = csrf_of(await resp.text())
    async with http.post(
        server.base_url + "/login",
        data={"csrf": token, "username": name, "password": "correct horse battery"},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303
    return http


async def add_endpoint(
    http: aiohttp.ClientSession, base: str, url: str, events: tuple[str, ...] = ()
) -> tuple[int, str]:
    """Through the dashboard's form; returns (status, page html)."""
    async with http.get(base + "/dashboard/webhooks") as page:
        token = csrf_of(await page.text())
    form = aiohttp.FormData()
    form.add_field("csrf", token)
    form.add_field("url", url)
    for event in events:
        form.add_field("events", event)
    async with http.post(base + "/dashboard/webhooks", data=form) as resp:
        return resp.status, await resp.text()


def secret_in(html: str) -> str:
    match = re.search(r'data-testid="webhook-secret">([^<]+)<', html)
    assert match, html
    return match.group(1)


async def joined(
    server: RunningServer,
    http: aiohttp.ClientSession,
    event_id: str,
    name: str,
    credential: str | None = None,
) -> SignallingClient:
    ws = SignallingClient(http, server.base_url.replace("http", "ws", 1) + "/ws")
    await ws.connect()
    await ws.request("hello", protocol=1)
    extra = {"credential": credential} if credential else {}
    await ws.request("join", event_id=event_id, name=name, **extra)
    return ws


async def api_deliveries(server: RunningServer, **query: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            server.base_url + "/api/admin/webhooks/deliveries",
            params=query,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["deliveries"])


async def test_room_events_signed_retried_and_logged(tmp_path: Path, receiver: Receiver) -> None:
    receiver.statuses = [500]  # the very first request fails
    async with running_server(tmp_path / "data", webhook_config(tmp_path)) as server:
        olga = await sign_in(server, "olga")
        status, html = await add_endpoint(olga, server.base_url, receiver.url)
        assert status == 200 and 'data-testid="webhook-endpoint"' in html
        secret = secret_in(html)
        soon = datetime.now(UTC) + timedelta(minutes=2)  # the lobby is open; the host starts
        event = await server.store.create_event("Hooked", soon, owner_id=1)
        async with aiohttp.ClientSession() as http:
            host = await joined(server, http, event.event_id, "Host", event.host_key)
            first = await receiver.wait_for("participant.joined")
            await host.request("start")
            await receiver.wait_for("event.started")
            viewer = await joined(server, http, event.event_id, "Viewer")
            await receiver.wait_for("participant.joined", 2)
            await host.request("end-for-all")
            ended = await receiver.wait_for("event.ended")
            await receiver.wait_for("participant.left", 2)
            await host.close()
            await viewer.close()

        # Every request verifies with the endpoint's secret; nothing else verifies it.
        for headers, body in receiver.received:
            assert verify(secret, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body)
            assert not verify(
                "whsec_wrong", headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body
            )
            assert json.loads(body)["id"] == headers[ID_HEADER]
        assert first["event_id"] == event.display_id
        assert first["data"]["name"] == "Host" and first["data"]["role"] == "host"
        assert ended["data"]["reason"] == "ended"

        # The failed first request was retried with the same delivery ID.
        first_id = receiver.received[0][0][ID_HEADER]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            log = await api_deliveries(server)
            if all(d["status"] == "delivered" for d in log):
                break
            await asyncio.sleep(0.1)
        assert [h[ID_HEADER] for h, _ in receiver.received].count(first_id) == 2
        retried = next(d for d in log if d["delivery_id"] == first_id)
        assert retried["status"] == "delivered" and retried["attempts"] == 2
        assert [a["http_status"] for a in retried["history"]] == [500, 200]
        assert retried["history"][0]["error"] == "HTTP 500"
        assert {d["event"] for d in log} >= {
            "participant.joined",
            "event.started",
            "event.ended",
            "participant.left",
        }

        async with (
            aiohttp.ClientSession() as http,
            http.get(
                server.base_url + "/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            ) as metrics,
        ):
            text = await metrics.text()
        assert value(text, "webinar_webhook_attempts_total", outcome="will_retry") == 1
        assert value(text, "webinar_webhook_attempts_total", outcome="delivered") == len(log)

        # The organiser sees the same log in the dashboard.
        async with olga.get(server.base_url + "/dashboard/webhooks") as page:
            text = await page.text()
        assert text.count('data-testid="webhook-delivery"') == len(log)
        assert f'data-delivery-id="{first_id}" data-status="delivered"' in text
        await olga.close()


async def test_gives_up_after_max_attempts_and_retry_button(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.statuses = [503, 500, 500]
    config = webhook_config(tmp_path, max_attempts=2)
    async with running_server(tmp_path / "data", config) as server:
        olga = await sign_in(server, "olga")
        await add_endpoint(olga, server.base_url, receiver.url, ("recording.ready",))
        event = await server.create_event("Recorded", owner_id=1)
        hooks = server.server.app[WEBHOOKS]
        # What another module (recordings) does when a file is ready:
        hooks.emit(
            WebhookEvent.RECORDING_READY,
            {"recording_id": "rec_1", "url": "https://example.org/r/1"},
            event_id=event.event_id,
        )
        hooks.emit(WebhookEvent.PAYMENT_SUCCEEDED, {"amount": 10}, event_id=event.event_id)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            log = await api_deliveries(server)
            if log and log[0]["status"] == "failed":
                break
            await asyncio.sleep(0.1)
        assert len(log) == 1  # payment.succeeded was not subscribed
        assert log[0]["event"] == "recording.ready"
        assert log[0]["payload"]["data"]["recording_id"] == "rec_1"
        assert [a["http_status"] for a in log[0]["history"]] == [503, 500]
        assert await api_deliveries(server, status="failed") == log

        async with olga.get(server.base_url + "/dashboard/webhooks") as page:
            html = await page.text()
        assert 'data-testid="webhook-retry"' in html
        delivery_id = log[0]["delivery_id"]
        async with olga.post(
            server.base_url + f"/dashboard/webhooks/deliveries/{delivery_id}/retry",
            data={"csrf": csrf_of(html)},
        ) as resp:
            assert resp.status == 200
        await receiver.wait_for("recording.ready", 3)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            (again,) = await api_deliveries(server)
            if again["status"] != "pending":
                break
            await asyncio.sleep(0.1)
        assert again["status"] == "failed" and again["attempts"] == 3  # the third 500
        await olga.close()


async def test_test_button_and_other_organisers_do_not_see_each_other(
    tmp_path: Path, receiver: Receiver
) -> None:
    async with running_server(tmp_path / "data", webhook_config(tmp_path)) as server:
        olga = await sign_in(server, "olga")
        await add_endpoint(olga, server.base_url, receiver.url)
        async with olga.get(server.base_url + "/dashboard/webhooks") as page:
            html = await page.text()
        endpoint_id = re.search(r'data-endpoint-id="(\d+)"', html)
        assert endpoint_id
        async with olga.post(
            server.base_url + f"/dashboard/webhooks/{endpoint_id.group(1)}/test",
            data={"csrf": csrf_of(html)},
        ) as resp:
            assert resp.status == 200
        test = await receiver.wait_for("webhook.test")
        assert test["event_id"] is None

        # Ivan's events and page are his own; he cannot delete Olga's endpoint.
        ivan = await sign_in(server, "ivan")
        ivan_event = await server.create_event("Ivan's", owner_id=2)
        server.server.app[WEBHOOKS].emit(
            WebhookEvent.REGISTRATION_CREATED,
            {"email": "a@example.org"},
            event_id=ivan_event.event_id,
        )
        await asyncio.sleep(0.5)
        assert all(b["event"] != "registration.created" for b in receiver.bodies())
        async with ivan.get(server.base_url + "/dashboard/webhooks") as page:
            ivan_html = await page.text()
        assert 'data-testid="webhooks-empty"' in ivan_html
        assert receiver.url not in ivan_html
        async with ivan.post(
            server.base_url + f"/dashboard/webhooks/{endpoint_id.group(1)}/delete",
            data={"csrf": csrf_of(ivan_html)},
        ) as resp:
            assert resp.status == 404

        # An admin's endpoint hears every organiser's events.
        root = await sign_in(server, "root", admin=True)
        await add_endpoint(root, server.base_url, receiver.url, ("registration.updated",))
        server.server.app[WEBHOOKS].emit(
            WebhookEvent.REGISTRATION_UPDATED, {"status": "confirmed"}, event_id=ivan_event.event_id
        )
        got = await receiver.wait_for("registration.updated")
        assert got["data"] == {"status": "confirmed"}
        for client in (olga, ivan, root):
            await client.close()


async def test_private_addresses_refused_by_default(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        olga = await sign_in(server, "olga")
        for url in (
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data",
            "ftp://example.org/",
            "https://user:pw@example.org/",
        ):
            status, html = await add_endpoint(olga, server.base_url, url)
            assert status == 400, url
            assert 'data-testid="webhook-error"' in html
        await olga.close()
        # Without admin.token the admin API is closed.
        async with (
            aiohttp.ClientSession() as http,
            http.get(server.base_url + "/api/admin/webhooks/deliveries") as resp,
        ):
            assert resp.status == 403


async def test_pending_deliveries_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    config = webhook_config(tmp_path, retry_base_seconds=3600)
    receiver.statuses = [500]
    async with running_server(tmp_path / "data", config) as server:
        olga = await sign_in(server, "olga")
        await add_endpoint(olga, server.base_url, receiver.url)
        await olga.close()
        event = await server.create_event("Persisted", owner_id=1)
        server.server.app[WEBHOOKS].emit(
            WebhookEvent.PAYMENT_REFUNDED, {"amount": 5}, event_id=event.event_id
        )
        await receiver.wait_for("payment.refunded")  # failed; next try in an hour
        # Stop only once the failed attempt is in the log: the receiver has the request
        # before the server has stored its answer.
        deadline = time.monotonic() + 10
        while not (await api_deliveries(server))[0]["attempts"]:
            assert time.monotonic() < deadline, "the failed attempt was never logged"
            await asyncio.sleep(0.05)
    # A new process with a short back-off: the due delivery is sent once it is due.
    with open_sync_store(tmp_path / "data") as sync:  # as if the hour had passed
        sync.connection.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE status = 'pending'"
        )
    async with running_server(tmp_path / "data", webhook_config(tmp_path)) as server:
        await receiver.wait_for("payment.refunded", 2)
        log = await api_deliveries(server)
        assert log[0]["status"] == "delivered" and log[0]["attempts"] == 2


async def test_recording_ready_is_sent(tmp_path: Path, receiver: Receiver) -> None:
    from tests.protocol.test_after_event import store_recording

    async with running_server(tmp_path / "data", webhook_config(tmp_path)) as server:
        olga = await sign_in(server, "olga")
        await add_endpoint(olga, server.base_url, receiver.url, ("recording.ready",))
        await olga.close()
        event = await server.create_event("Recorded for real", owner_id=1)
        recording_id = await store_recording(server, event)  # the real recorder's files
        ready = await receiver.wait_for("recording.ready")
        assert ready["event_id"] == event.display_id
        assert ready["data"]["recording_id"] == recording_id
        assert ready["data"]["duration_seconds"] > 1
        assert ready["data"]["size_bytes"] > 0 and ready["data"]["files"]


async def test_registration_changes_are_sent(tmp_path: Path, receiver: Receiver) -> None:
    from webinar.app import TICKET_DESK
    from webinar.ticketing.records import EventAccess, RegistrationStatus

    async with running_server(tmp_path / "data", webhook_config(tmp_path)) as server:
        olga = await sign_in(server, "olga")
        await add_endpoint(
            olga,
            server.base_url,
            receiver.url,
            ("registration.created", "registration.updated", "registration.cancelled"),
        )
        await olga.close()
        start = datetime.now(UTC) + timedelta(days=2)
        event = await server.create_event("Paid talk", owner_id=1, access_type="paid")
        event = dataclasses.replace(event, starts_at=start)
        desk = server.server.app[TICKET_DESK]
        await desk.put_access(EventAccess(event.event_id, price_minor=2500, currency="EUR"))
        first, _ = await desk.register(
            event, first_name="Ada", last_name="L", email="ada@example.org", seats=2, base="x"
        )
        second, _ = await desk.register(
            event, first_name="Bo", last_name="K", email="bo@example.org", seats=1, base="x"
        )
        created = await receiver.wait_for("registration.created")
        assert created["event_id"] == event.display_id
        assert created["data"]["email"] == "ada@example.org"
        assert created["data"]["status"] == "pending"
        assert created["data"]["amount_minor"] == 5000 and created["data"]["currency"] == "EUR"
        assert "code" not in created["data"]
        await desk.confirm(event, first.registration_id, "http://x")
        updated = await receiver.wait_for("registration.updated")
        assert updated["data"]["registration_id"] == first.registration_id
        assert updated["data"]["status"] == "confirmed"
        await desk.end(event, second.registration_id, RegistrationStatus.CANCELLED)
        cancelled = await receiver.wait_for("registration.cancelled")
        assert cancelled["data"]["registration_id"] == second.registration_id
        assert cancelled["data"]["status"] == "cancelled"
