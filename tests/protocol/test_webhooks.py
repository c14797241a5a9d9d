"""Webhooks end to end: a real aiohttp receiver, the dashboard, a live room, retries, the log."""

from __future__ import annotations

import asyncio
import base64
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
import standardwebhooks
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.helpers import RunningServer, make_config, open_sync_store, running_server
from tests.metrics_support import value
from webinar.accounts import hash_password
from webinar.app import WEBHOOKS
from webinar.client.peer import SignallingClient
from webinar.config import AdminConfig, Config, WebhooksConfig
from webinar.webhooks.signing import (
    EVENT_HEADER,
    ID_HEADER,
    LEGACY_ID_HEADER,
    LEGACY_SIGNATURE_HEADER,
    LEGACY_TIMESTAMP_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookEvent,
    new_secret,
    verify,
    verify_legacy,
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
        headers = {k.lower(): v for k, v in request.headers.items()}  # names are case-blind
        self.received.append((headers, await request.read()))
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
            assert verify(secret, headers, body)
            assert not verify(new_secret(), headers, body)
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


def refusal(secret: str, body: bytes, headers: dict[str, str]) -> str:
    """Why the Standard Webhooks library refuses a request (fails the test if it accepts)."""
    with pytest.raises(standardwebhooks.WebhookVerificationError) as refused:
        standardwebhooks.Webhook(secret).verify(body, headers)
    return str(refused.value)


async def test_standard_webhooks_library_verifies_deliveries(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The reference library's verifier, fed what a real receiver got over HTTP, accepts every
    delivery (retries too) and refuses a changed body, an old timestamp and another secret."""
    receiver.statuses = [502]  # the first delivery is retried
    async with running_server(tmp_path / "data", webhook_config(tmp_path)) as server:
        olga = await sign_in(server, "olga")
        status, html = await add_endpoint(olga, server.base_url, receiver.url)
        assert status == 200
        await olga.close()
        secret = secret_in(html)
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
        assert 'data-testid="webhook-previous-secret"' not in html
        event = await server.create_event("Signed", owner_id=1)
        hooks = server.server.app[WEBHOOKS]
        hooks.emit(
            WebhookEvent.REGISTRATION_CREATED,
            {"name": "Zoë Ковалёва", "email": "zoe@example.org"},  # UTF-8 in the body
            event_id=event.event_id,
        )
        hooks.emit(WebhookEvent.PAYMENT_SUCCEEDED, {"amount_minor": 990}, event_id=event.event_id)
        await receiver.wait_for("registration.created", 2)  # the 502, then its retry
        await receiver.wait_for("payment.succeeded")

    webhook = standardwebhooks.Webhook(secret)
    assert len(receiver.received) == 3
    for headers, body in receiver.received:
        payload = webhook.verify(body, headers)
        assert payload == json.loads(body)
        assert payload["id"] == headers["webhook-id"] and payload["id"].startswith("whd_")
        assert payload["type"] == payload["event"] == headers[EVENT_HEADER.lower()]
        assert payload["timestamp"] == payload["created_at"]
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60  # seconds
        assert headers["content-type"] == "application/json"
    # A retry is the same message: the same webhook-id and body, signed again at its own time.
    by_event: dict[str, list[tuple[dict[str, str], bytes]]] = {}
    for headers, body in receiver.received:
        by_event.setdefault(json.loads(body)["event"], []).append((headers, body))
    (first, first_body), (again, again_body) = by_event["registration.created"]
    assert first["webhook-id"] == again["webhook-id"] and first_body == again_body
    assert json.loads(again_body)["data"]["name"] == "Zoë Ковалёва"

    ((headers, body),) = by_event["payment.succeeded"]
    assert headers["webhook-id"] != first["webhook-id"]
    assert "No matching signature" in refusal(secret, body.replace(b"990", b"999"), headers)
    assert "No matching signature" in refusal(secret, body + b" ", headers)
    assert "No matching signature" in refusal(new_secret(), body, headers)
    swapped = {**headers, "webhook-id": first["webhook-id"]}  # another message's ID
    assert "No matching signature" in refusal(secret, body, swapped)
    # A correctly signed message ten minutes old (a replay) is refused for its age, and
    # so is a real one whose timestamp header was moved back.
    old = int(headers["webhook-timestamp"]) - 600
    resigned = webhook.sign(headers["webhook-id"], datetime.fromtimestamp(old, UTC), body)
    stale = {**headers, "webhook-timestamp": str(old), "webhook-signature": resigned}
    assert "too old" in refusal(secret, body, stale)
    assert "too old" in refusal(secret, body, {**headers, "webhook-timestamp": str(old)})
    assert "Missing required headers" in refusal(
        secret, body, {k: v for k, v in headers.items() if k != "webhook-signature"}
    )


#: A secret as the server made them before Standard Webhooks: "whsec_" + token_urlsafe(32).
OLD_SECRET = "whsec_q3Vx-8Zt1w_YbRkq0m4H2cJf9uN7eLrTgA5sDpWoKiE"


async def test_endpoint_made_before_standard_webhooks_keeps_its_key(
    tmp_path: Path, receiver: Receiver
) -> None:
    """An endpoint stored with an old-style secret: the dashboard shows it in whsec_ form (the
    same key), the library verifies with that, and the deprecated header still verifies with
    the old text exactly as receivers check it today."""
    async with running_server(tmp_path / "data", webhook_config(tmp_path)) as server:
        olga = await sign_in(server, "olga")
        await add_endpoint(olga, server.base_url, receiver.url)
        await server.store.run_sql(
            lambda db: db.execute("UPDATE webhook_endpoints SET secret = ?", (OLD_SECRET,))
        )
        async with olga.get(server.base_url + "/dashboard/webhooks") as page:
            html = await page.text()
        await olga.close()
        shown = secret_in(html)
        assert shown.startswith("whsec_") and shown != OLD_SECRET
        assert base64.b64decode(shown.removeprefix("whsec_"), validate=True) == OLD_SECRET.encode()
        previous = re.search(
            r'data-testid="webhook-previous-secret">.*?<code class="mono">([^<]+)<', html
        )
        assert previous and previous.group(1) == OLD_SECRET
        event = await server.create_event("Upgraded", owner_id=1)
        server.server.app[WEBHOOKS].emit(
            WebhookEvent.REGISTRATION_UPDATED, {"status": "confirmed"}, event_id=event.event_id
        )
        await receiver.wait_for("registration.updated")

    ((headers, body),) = receiver.received
    assert standardwebhooks.Webhook(shown).verify(body, headers)["data"] == {"status": "confirmed"}
    assert verify(shown, headers, body) and verify(OLD_SECRET, headers, body)
    # Deprecated headers: the same delivery ID and timestamp, the old scheme and old text.
    assert headers[LEGACY_ID_HEADER.lower()] == headers[ID_HEADER]
    assert headers[LEGACY_TIMESTAMP_HEADER.lower()] == headers[TIMESTAMP_HEADER]
    legacy = headers[LEGACY_SIGNATURE_HEADER.lower()]
    assert legacy.startswith("v1=")
    assert verify_legacy(OLD_SECRET, headers[TIMESTAMP_HEADER], legacy, body)
    assert not verify_legacy(OLD_SECRET, headers[TIMESTAMP_HEADER], legacy, body + b"x")
    assert headers[SIGNATURE_HEADER] != legacy
