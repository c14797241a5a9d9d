"""Signed join tokens and embedding in real Chromium: a test backend signs a JWT and the link
`/e/<id>?jwt=…` puts an attendee and a presenter straight into the room by the token's name
and role; a page served from another origin on loopback frames the room and hears
`webinar:joined`, `webinar:left`, `webinar:cta-clicked` and `webinar:ended`; a page from an
origin the event does not allow is refused the frame (CSP frame-ancestors)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Frame, Page, expect

from tests import helpers
from tests.browser.support import SCREENSHOTS, OpenPage, PageErrors
from tests.helpers import RunningServer
from tests.join_tokens import backend, organiser
from webinar.storage.store import Event
from webinar.ticketing import embedding

pytestmark = pytest.mark.browser

#: What the embedding page runs: it keeps every message the frame posts, with its origin.
HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Our members' area</title>
<link rel="icon" href="data:,"></head>
<body><h1>Members' area</h1>
<iframe id="room" src="%(src)s" title="Webinar" allow="%(allow)s" allowfullscreen
        style="width: 1100px; height: 700px; border: 0"></iframe>
<script>
window.received = [];
window.addEventListener("message", (event) => {
  window.received.push({origin: event.origin, data: event.data});
});
</script></body></html>
"""


@asynccontextmanager
async def host_site(host: str, page: Callable[[], str]) -> AsyncIterator[str]:
    """A tiny web site of the organiser's own on ``host`` (another loopback address: another
    origin); its origin."""

    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=page(), content_type="text/html")

    async def landing(_request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>Offer</title><p>Offer", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/offer", landing)
    site = TestServer(app, host=host)
    await site.start_server()
    try:
        yield f"http://{host}:{site.port}"
    finally:
        await site.close()


async def received(page: Page) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = await page.evaluate("() => window.received")
    return messages


async def wait_for_message(page: Page, kind: str, *, count: int = 1) -> list[dict[str, Any]]:
    """The messages of type ``kind`` once there are ``count`` of them."""
    await page.wait_for_function(
        "([kind, count]) => window.received.filter((m) => m.data && m.data.type === kind)"
        ".length >= count",
        arg=[kind, count],
        timeout=15_000,
    )
    return [m for m in await received(page) if m["data"].get("type") == kind]


async def room_frame(page: Page) -> Frame:
    for _ in range(100):
        for frame in page.frames:
            if "/e/" in frame.url:
                return frame
        await asyncio.sleep(0.1)
    raise AssertionError(f"no room frame in {[f.url for f in page.frames]}")


async def open_event(server: RunningServer) -> tuple[Event, Any]:
    owner = await organiser(server)
    site = await backend(server, owner)
    event = await server.store.create_event("Members' briefing", None, owner_id=owner)
    return event, site


async def test_a_signed_token_admits_by_name_and_role(
    server: RunningServer, open_page: OpenPage
) -> None:
    event, site = await open_event(server)
    presenter = await open_page("presenter")
    await presenter.goto(
        f"{server.base_url}/e/{event.display_id}?jwt="
        + site.sign(event, name="Pat Presenter", role="presenter")
    )
    # straight in: no name form, the presenter's room (the device check's preview moves in)
    await expect(presenter.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")
    await expect(presenter.get_by_test_id("room")).to_have_attribute("data-role", "presenter")
    await expect(presenter.get_by_test_id("role-badge")).to_be_visible()
    await expect(presenter.get_by_test_id("go-live")).to_be_visible()
    assert await presenter.evaluate("() => window.__webinar.connection.joined.role") == (
        "presenter"
    )

    attendee = await open_page("attendee")
    await attendee.goto(
        f"{server.base_url}/e/{event.display_id}?jwt=" + site.sign(event, name="Ann Attendee")
    )
    await expect(attendee.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")
    await expect(attendee.get_by_test_id("room")).to_have_attribute("data-role", "attendee")
    assert await attendee.evaluate("() => window.__webinar.connection.joined.role") == "attendee"
    await expect(attendee.get_by_test_id("prejoin")).to_be_hidden()
    # everyone sees them by the tokens' names
    people = presenter.get_by_test_id("participant-row")
    await expect(people.filter(has_text="Ann Attendee")).to_have_attribute("data-role", "attendee")
    await expect(people.filter(has_text="Pat Presenter")).to_have_attribute(
        "data-role", "presenter"
    )
    # the presenter goes live and the attendee's page shows them by name
    await presenter.get_by_test_id("go-live").click()
    await expect(attendee.get_by_test_id("video-tile")).to_contain_text("Pat Presenter")


async def test_a_refused_token_says_why(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    event, site = await open_event(server)
    page = await open_page("late")
    await page.goto(
        f"{server.base_url}/e/{event.display_id}?jwt="
        + site.sign(event, iat=1_700_000_000, exp=1_700_000_300)
    )
    error = page.get_by_test_id("prejoin-error")
    await expect(error).to_contain_text("expired")
    await expect(page.get_by_test_id("prejoin-name-input")).to_be_hidden()


async def test_the_embedded_room_tells_the_host_page(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    event, site = await open_event(server)
    token = site.sign(event, name="Embedded Ann", email="ann@example.org", sub="member-7")
    src = f"{server.base_url}/e/{event.display_id}?jwt={token}"

    def page() -> str:
        return HOST_PAGE % {"src": src, "allow": "camera; microphone; display-capture; autoplay"}

    async with host_site("127.0.0.3", page) as allowed, host_site("127.0.0.4", page) as other:
        await server.store.run_sql(
            lambda db: embedding.sql_set_origins(db, event.event_id, (allowed,))
        )
        # a host with a signalling connection runs the room: a call-to-action, then the end
        people: list[helpers.Person] = []
        host = await helpers.join_person(
            server, people, helpers.Person, event, "Host", event.host_key
        )
        try:
            members = await open_page("members-area")
            await members.goto(allowed + "/")
            joined = (await wait_for_message(members, "webinar:joined"))[0]
            assert joined["origin"] == server.base_url
            assert joined["data"]["name"] == "Embedded Ann"
            assert joined["data"]["role"] == "attendee"
            assert joined["data"]["event_id"] == event.display_id
            assert joined["data"]["participant_id"].startswith("pa_")
            frame = await room_frame(members)
            await expect(frame.get_by_test_id("connection-state")).to_have_attribute(
                "data-state", "ok"
            )
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await members.screenshot(path=str(SCREENSHOTS / "embedded-room-desktop.png"))

            # leaving in the frame, then coming back
            await frame.get_by_test_id("leave").click()
            left = (await wait_for_message(members, "webinar:left"))[0]["data"]
            assert left["reason"] == "left"
            assert left["participant_id"] == joined["data"]["participant_id"]
            await frame.get_by_test_id("rejoin").click()
            rejoined = (await wait_for_message(members, "webinar:joined", count=2))[1]["data"]

            # a call-to-action clicked in the frame
            await host.request(
                "cta-show",
                message="Members get 20% off",
                button="See the offer",
                url=allowed + "/offer",
            )
            async with members.context.expect_page() as opened:
                await frame.get_by_test_id("cta-popup-button").click()
            await (await opened.value).close()
            clicked = (await wait_for_message(members, "webinar:cta-clicked"))[0]["data"]
            assert clicked["url"] == allowed + "/offer"
            assert clicked["message"] == "Members get 20% off" and clicked["cta_id"]

            # the host ends the event for everyone
            await host.request("end-for-all")
            ended = (await wait_for_message(members, "webinar:ended"))[0]["data"]
            assert ended["participant_id"] == rejoined["participant_id"]
            # every message went to this origin, none elsewhere
            assert {m["origin"] for m in await received(members)} == {server.base_url}

            # a site the event does not allow cannot frame the room at all
            page_errors.allow(r"frame-ancestors")
            outsider = await open_page("outsider")
            await outsider.goto(other + "/")
            await asyncio.sleep(2)
            assert await received(outsider) == []
            assert any(
                "frame-ancestors" in line and "[outsider]" in line for line in page_errors.log
            ), page_errors.log
            framed = [f for f in outsider.frames if f is not outsider.main_frame]
            for f in framed:
                assert await f.locator("[data-testid=room]").count() == 0
        finally:
            await asyncio.gather(*(p.close() for p in people))
