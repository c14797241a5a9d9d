"""Operations seen in the browser: the drain notice, refused joins, the Webhooks page."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from tests.browser.support import OpenPage, join_attendee
from tests.helpers import RunningServer, make_config, running_server
from webinar.accounts import hash_password
from webinar.config import WebhooksConfig
from webinar.server import drain

pytestmark = pytest.mark.browser


async def test_drain_tells_the_room_and_refuses_newcomers(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Late night")
    inside = await open_page("inside")
    await join_attendee(inside, server, event, "Inside")

    stop = asyncio.Event()
    draining = asyncio.create_task(drain(server.server.app, 120, stop))
    try:
        toast = inside.get_by_test_id("toast").filter(has_text="The server is being restarted")
        await expect(toast).to_be_visible()
        await expect(toast).to_contain_text("up to 2 more minutes")
        await expect(inside.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "ok"
        )  # the room goes on

        late = await open_page("late")
        await late.goto(f"{server.base_url}/e/{event.event_id}")
        await late.get_by_test_id("prejoin-name-input").fill("Late")
        await late.get_by_test_id("enter-room-button").click()
        await expect(late.get_by_test_id("prejoin-error")).to_contain_text(
            "The server is restarting"
        )
    finally:
        stop.set()
        await draining


@pytest.fixture
async def hook_server(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, str, list[bytes]]]:
    received: list[bytes] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(text="ok")

    receiver_app = web.Application()
    receiver_app.router.add_post("/hook", handle)
    receiver = TestServer(receiver_app, host="127.0.0.1")
    await receiver.start_server()
    config = dataclasses.replace(
        make_config(tmp_path / "data"),
        webhooks=WebhooksConfig(allow_private_addresses=True, retry_base_seconds=0.2),
    )
    try:
        async with running_server(tmp_path / "data", config) as srv:
            with srv.store.connect_sync() as sync:
                sync.create_user(
                    "olga", hash_password("correct horse battery", n=2**12), "organiser"
                )
            yield srv, f"http://127.0.0.1:{receiver.port}/hook", received
    finally:
        with contextlib.suppress(Exception):
            await receiver.close()


async def test_webhooks_page(
    hook_server: tuple[RunningServer, str, list[bytes]], open_page: OpenPage
) -> None:
    server, url, received = hook_server
    page = await open_page("organiser")
    await page.goto(server.base_url + "/login")
    await page.get_by_test_id("login-username").fill("olga")
    await page.get_by_test_id("login-password").fill("correct horse battery")
    await page.get_by_test_id("login-password").press("Enter")
    await page.get_by_test_id("nav-webhooks").click()
    await expect(page.get_by_test_id("webhooks-empty")).to_be_visible()

    await page.get_by_test_id("webhook-url-input").fill("http://10.0.0.1/x")
    await page.get_by_label("participant.joined").check()
    await page.get_by_test_id("webhook-add").click()
    # Private addresses are allowed in this server's config: the endpoint is added.
    await expect(page.get_by_test_id("webhook-notice")).to_contain_text("Endpoint added")
    await page.get_by_test_id("webhook-delete").click()
    await expect(page.get_by_test_id("webhooks-empty")).to_be_visible()

    await page.get_by_test_id("webhook-url-input").fill(url)
    await page.get_by_test_id("webhook-add").click()
    endpoint = page.get_by_test_id("webhook-endpoint")
    await expect(endpoint.get_by_test_id("webhook-url")).to_have_text(url)
    await expect(endpoint).to_contain_text("All events")
    await endpoint.locator("summary").click()
    # A Standard Webhooks secret: whsec_ and the base64 of 32 bytes; no older form to show.
    secret = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")
    await expect(endpoint.get_by_test_id("webhook-secret")).to_have_text(secret)
    await expect(endpoint.get_by_test_id("webhook-previous-secret")).to_have_count(0)
    help_text = page.get_by_test_id("webhook-signing-help")
    await expect(help_text).to_contain_text("webhook-signature")
    await expect(help_text.get_by_role("link", name="Standard Webhooks")).to_be_visible()
    await endpoint.get_by_test_id("webhook-test").click()
    await expect(page.get_by_test_id("webhook-notice")).to_contain_text("Test event queued")
    for _ in range(50):
        if received:
            break
        await asyncio.sleep(0.1)
    assert received
    await page.reload()
    row = page.get_by_test_id("webhook-delivery")
    await expect(row).to_have_attribute("data-status", "delivered")
    await expect(row.get_by_test_id("webhook-delivery-attempts")).to_have_text("1")
    await expect(row).to_contain_text("webhook.test")
