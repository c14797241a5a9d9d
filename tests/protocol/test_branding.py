"""Branding over real HTTP (docs/api.md, "Branding"): set through the API at the organiser's
and the event's level, the event's overriding; the registration page, the room and the e-mails
carry the logo and the accent colour; the image is served re-encoded from our origin; a colour
with too little contrast is warned about; bad input is refused and changes nothing."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.helpers import RunningServer, make_config, running_server
from tests.protocol.test_dashboard import add_user, csrf_of, schedule, sign_in
from tests.protocol.test_ticketing import submit_registration, visitor_session
from tests.protocol.test_ticketing_api import user_with_token
from webinar.config import TicketingConfig


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    config = dataclasses.replace(make_config(tmp_path / "data"), ticketing=TicketingConfig())
    async with running_server(config.data_dir, config) as srv:
        yield srv


def png(colour: tuple[int, int, int] = (20, 90, 200), size: tuple[int, int] = (120, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


class Api:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http, self.base = http, base + "/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method, self.base + path, json=body, headers=self.headers
        ) as resp:
            return resp.status, await resp.json()

    async def upload(self, path: str, data: bytes) -> tuple[int, Any]:
        headers = {**self.headers, "Content-Type": "application/octet-stream"}
        async with self.http.put(self.base + path, data=data, headers=headers) as resp:
            return resp.status, await resp.json()


def html_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no HTML part")


async def test_branding_reaches_the_pages_and_the_e_mails(server: RunningServer) -> None:
    token = await user_with_token(server, "olga")
    other = await user_with_token(server, "ivan")
    async with aiohttp.ClientSession() as http:
        api = Api(http, server.base_url, token)
        starts = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        status, event = await api.call(
            "POST",
            "/events",
            {"title": "Launch", "starts_at": starts, "registration_required": True},
        )
        assert status == 201, event
        event_id = event["event_id"]

        # nothing set: the product's own look, no warning
        status, got = await api.call("GET", f"/events/{event_id}/branding")
        assert status == 200
        assert got["accent_colour"] is None and got["logo_url"] is None
        assert got["effective"]["accent_colour"] == "#2456d6"
        assert got["contrast"]["ok"] is True and got["contrast"]["warning"] is None

        # the organiser's level: name, colour and logo for every event of theirs
        status, mine = await api.call(
            "PUT", "/me/branding", {"organiser_name": "Acme Academy", "accent_colour": "#1A3D8F"}
        )
        assert status == 200, mine
        assert mine["accent_colour"] == "#1a3d8f" and mine["contrast"]["ok"] is True
        assert mine["contrast"]["text_colour"] == "#ffffff"
        assert mine["contrast"]["ratio"] > 4.5
        status, mine = await api.upload("/me/branding/logo", png())
        assert status == 200, mine
        owner_logo = mine["logo_url"]
        assert owner_logo.startswith("/branding/brand_") and owner_logo.endswith(".png")
        status, got = await api.call("GET", f"/events/{event_id}/branding")
        assert got["accent_colour"] is None  # not set on the event itself
        assert got["effective"]["logo_url"] == owner_logo
        assert got["effective"]["organiser_name"] == "Acme Academy"

        # the event's own colour and logo override the organiser's
        status, got = await api.call(
            "PUT", f"/events/{event_id}/branding", {"accent_colour": "#0b6e4f"}
        )
        assert status == 200 and got["effective"]["accent_colour"] == "#0b6e4f"
        status, got = await api.upload(f"/events/{event_id}/branding/logo", png((200, 0, 0)))
        assert status == 200, got
        logo = got["effective"]["logo_url"]
        assert logo != owner_logo and got["effective"]["organiser_name"] == "Acme Academy"

        # served from our origin, re-encoded, with no sniffing
        async with http.get(server.base_url + logo) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "image/png"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            with Image.open(io.BytesIO(await resp.read())) as img:
                assert img.size == (120, 40)
        async with http.get(server.base_url + "/branding/..%2Fwebinar.sqlite3") as resp:
            assert resp.status == 404

        # bad input: refused with the reason, nothing changes
        status, bad = await api.call(
            "PUT", f"/events/{event_id}/branding", {"accent_colour": "red"}
        )
        assert status == 422 and "hex colour" in bad["error"]["message"]
        status, bad = await api.upload(f"/events/{event_id}/branding/logo", b"<svg></svg>")
        assert status == 415 and bad["error"]["code"] == "unsupported-type"
        status, bad = await api.upload(f"/events/{event_id}/branding/banner", png())
        assert status == 404
        status, got = await api.call("GET", f"/events/{event_id}/branding")
        assert got["accent_colour"] == "#0b6e4f" and got["effective"]["logo_url"] == logo
        # another organiser does not see the event
        status, _ = await Api(http, server.base_url, other).call(
            "GET", f"/events/{event_id}/branding"
        )
        assert status == 404

        # the registration page and the room carry the logo and the colour
        async with http.get(f"{server.base_url}/e/{event_id}/register") as resp:
            page = await resp.text()
        assert f'src="{logo}"' in page and 'data-testid="brand-logo"' in page
        assert "--accent:#0b6e4f" in page and "Acme Academy" in page
        async with http.get(f"{server.base_url}/e/{event_id}") as resp:
            room = await resp.text()
        assert f'src="{logo}"' in room and "--accent:#0b6e4f" in room

        # a background for the lobby and the room
        status, got = await api.upload(
            f"/events/{event_id}/branding/background", png((30, 30, 30), (640, 360))
        )
        assert status == 200 and got["background_url"].endswith(".jpg")
        async with http.get(f"{server.base_url}/e/{event_id}") as resp:
            room = await resp.text()
        assert f'--brand-background:url("{got["background_url"]}")' in room
        assert "data-branded-background" in room

        # a registration's e-mail carries them too (the logo by its absolute address)
        async with visitor_session() as visitor:
            status, _, _ = await submit_registration(
                visitor,
                f"{server.base_url}/e/{event_id}/register",
                {"first_name": "Ana", "last_name": "Novak", "email": "ana@example.org"},
                allow_redirects=False,
            )
            assert status == 303
        mails = list((server.store.data_dir / "outbox").glob("*.eml"))
        assert mails
        html = html_part(message_from_bytes(mails[0].read_bytes()))
        assert f'src="{server.base_url}{logo}"' in html
        assert "#0b6e4f" in html and "Sent on behalf of Acme Academy." in html
        text = message_from_bytes(mails[0].read_bytes())
        plain = next(p for p in text.walk() if p.get_content_type() == "text/plain")
        payload = plain.get_payload(decode=True)
        assert isinstance(payload, bytes)
        assert payload.decode().rstrip().endswith("Sent on behalf of Acme Academy.")

        # too little contrast: kept, and the answer warns
        status, got = await api.call(
            "PUT", f"/events/{event_id}/branding", {"accent_colour": "#ffcc00"}
        )
        assert status == 200 and got["accent_colour"] == "#ffcc00"
        assert got["contrast"]["ok"] is False and got["contrast"]["ratio"] < 4.5
        assert "#ffcc00" in got["contrast"]["warning"]

        # a duplicate takes the event's own branding along
        status, copy = await api.call("POST", f"/events/{event_id}/duplicate", {"title": "Again"})
        assert status == 201, copy
        status, copied = await api.call("GET", f"/events/{copy['event']['event_id']}/branding")
        assert copied["accent_colour"] == "#ffcc00" and copied["logo_url"] == logo

        # clearing: the event falls back to the organiser's settings
        status, got = await api.call("PUT", f"/events/{event_id}/branding", {"accent_colour": None})
        assert got["effective"]["accent_colour"] == "#1a3d8f"
        async with http.delete(
            f"{api.base}/events/{event_id}/branding/logo", headers=api.headers
        ) as resp:
            got = await resp.json()
        assert got["logo_url"] is None and got["effective"]["logo_url"] == owner_logo


def branding_form(csrf: str, **fields: str | bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    for name, value in fields.items():
        if isinstance(value, bytes):
            form.add_field(
                name, io.BytesIO(value), filename=f"{name}.png", content_type="image/png"
            )
        else:
            form.add_field(name, value)
    return form


@pytest.fixture
async def plain_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


async def test_the_dashboard_sets_branding_and_warns_about_contrast(
    plain_server: RunningServer,
) -> None:
    server = plain_server
    add_user(server, "olga")
    add_user(server, "ivan")
    http = await sign_in(server, "olga")
    other = await sign_in(server, "ivan")
    try:
        event_id = await schedule(http, server.base_url, title="Launch")
        page_url = f"{server.base_url}/dashboard/events/{event_id}/branding"
        async with http.get(f"{server.base_url}/dashboard/events/{event_id}") as resp:
            assert f'/dashboard/events/{event_id}/branding"' in await resp.text()
        async with http.get(page_url) as resp:
            assert resp.status == 200
            page = await resp.text()
        assert 'data-testid="branding-form"' in page
        assert 'data-testid="branding-contrast-warning"' not in page
        csrf = csrf_of(page)

        # colour, name and a 2 MiB-plus logo (more than the app's 1 MiB form limit)
        big = png(size=(1200, 1200))
        noisy = io.BytesIO()
        Image.effect_noise((1100, 1100), 90).convert("RGB").save(noisy, "PNG")
        assert len(noisy.getvalue()) > 1024 * 1024
        form = branding_form(
            csrf, accent_colour="#0B6E4F", organiser_name="Acme Academy", logo=noisy.getvalue()
        )
        async with http.post(page_url, data=form, allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
            assert resp.headers["Location"].endswith("/branding?notice=saved")
        async with http.get(page_url) as resp:
            page = await resp.text()
        assert 'value="#0b6e4f"' in page and 'data-testid="branding-logo-preview"' in page
        assert 'data-testid="branding-contrast-warning"' not in page

        # a bad file and a bad colour are refused with the reason and change nothing
        form = branding_form(csrf, accent_colour="#0b6e4f", logo=b"%PDF-1.4 not a picture")
        async with http.post(page_url, data=form) as resp:
            assert resp.status == 400
            assert 'data-testid="branding-error"' in await resp.text()
        form = branding_form(csrf, accent_colour="teal", logo=big)
        async with http.post(page_url, data=form) as resp:
            assert resp.status == 400
            assert "hex colour" in await resp.text()
        async with http.get(page_url) as resp:
            assert 'value="#0b6e4f"' in await resp.text()

        # a low-contrast colour is kept and warned about
        form = branding_form(csrf, accent_colour="#ffcc00", organiser_name="Acme Academy")
        async with http.post(page_url, data=form) as resp:
            page = await resp.text()
        assert 'data-testid="branding-contrast-warning"' in page and "#ffcc00" in page
        assert 'data-testid="branding-logo-preview"' in page  # the logo stays

        # without the CSRF token nothing changes; another organiser does not reach it
        form = branding_form("nope", accent_colour="#000000")
        async with http.post(page_url, data=form) as resp:
            assert resp.status == 403
        async with other.get(page_url, allow_redirects=False) as resp:
            assert resp.status == 404

        # the account's own page
        async with http.get(f"{server.base_url}/dashboard/branding") as resp:
            assert resp.status == 200
            assert 'data-testid="branding-form"' in await resp.text()
    finally:
        await http.close()
        await other.close()
