"""The JSON admin API (docs/api.md, "Events and ticketing") over real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.helpers import RunningServer, make_config, running_server
from tests.protocol.test_ticketing import submit_registration, visitor_session
from webinar.accounts import hash_password
from webinar.cli import main
from webinar.config import TicketingConfig
from webinar.storage.store import Store
from webinar.ticketing import records


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    config = dataclasses.replace(make_config(tmp_path / "data"), ticketing=TicketingConfig())
    async with running_server(config.data_dir, config) as srv:
        yield srv


async def user_with_token(server: RunningServer, name: str, admin: bool = False) -> str:
    user = await server.store.run(
        lambda core: core.create_user(
            name, hash_password("x" * 12, n=2**10), "admin" if admin else "organiser"
        )
    )
    return await server.store.run(
        lambda core: records.add_api_token(core.connection, user.user_id, "test")
    )


class Api:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str | None) -> None:
        self.http, self.base = http, base + "/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method, self.base + path, json=body, headers=self.headers
        ) as resp:
            return resp.status, await resp.json()


def soon(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def test_api_events_registrations_invitees(server: RunningServer) -> None:
    olga = await user_with_token(server, "olga")
    ivan = await user_with_token(server, "ivan")
    root = await user_with_token(server, "root", admin=True)
    async with aiohttp.ClientSession() as http:
        anon, api = Api(http, server.base_url, None), Api(http, server.base_url, olga)
        assert (await anon.call("GET", "/events"))[0] == 401
        assert (await Api(http, server.base_url, "wbt_nope").call("GET", "/events"))[0] == 401

        status, body = await api.call(
            "POST", "/events", {"title": "Soon", "starts_at": soon(minutes=3)}
        )
        assert status == 422
        assert body["error"]["code"] == "booking-rule" and body["error"]["rule"] == "min-lead"
        status, body = await api.call(
            "POST",
            "/events",
            {"title": "Pricey", "starts_at": soon(days=2), "access_type": "paid", "price": "1001"},
        )
        assert status == 422 and "at most 1000 EUR" in body["error"]["message"]
        status, body = await api.call("POST", "/events", {"title": "X", "colour": "red"})
        assert status == 400 and body["error"]["code"] == "unknown-field"

        berlin = (datetime.now(UTC) + timedelta(days=2)).astimezone(ZoneInfo("Europe/Berlin"))
        status, event = await api.call(
            "POST",
            "/events",
            {
                "title": "Paid class",
                "starts_at": berlin.strftime("%Y-%m-%dT%H:%M"),  # local time in the zone
                "timezone": "Europe/Berlin",
                "access_type": "paid",
                "price": "19.90",
                "currency": "EUR",
                "capacity": 10,
                "second_device": "refuse",
                "form_fields": [{"label": "Company", "required": True}],
            },
        )
        assert status == 201, event
        utc = berlin.replace(second=0, microsecond=0).astimezone(UTC)
        assert event["starts_at"] == utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert event["access"] == {
            "has_attendee_password": False,
            "has_presenter_password": False,
            "price": "19.90",
            "currency": "EUR",
            "capacity": 10,
            "second_device": "refuse",
            "payment_provider": "manual",
            "form_fields": [{"label": "Company", "required": True}],
            "registration_required": False,
            "waiting_list": False,
            "registration_redirect_url": None,
            "privacy_text": "",
            "privacy_url": None,
        }
        assert event["links"]["register"].endswith(f"/e/{event['event_id']}/register")
        event_id = event["event_id"]

        # ownership: another organiser gets 404, an admin sees it
        assert (await Api(http, server.base_url, ivan).call("GET", f"/events/{event_id}"))[0] == 404
        status, listing = await Api(http, server.base_url, root).call("GET", "/events")
        assert status == 200 and [e["event_id"] for e in listing["events"]] == [event_id]

        status, patched = await api.call("PATCH", f"/events/{event_id}", {"title": "Paid class 2"})
        assert status == 200 and patched["title"] == "Paid class 2"
        assert patched["starts_at"] == event["starts_at"]

        # registrations: someone registers on the public page, the API confirms
        async with visitor_session() as visitor:
            status, _, _ = await submit_registration(
                visitor,
                f"{server.base_url}/e/{event_id}/register",
                {
                    "first_name": "Grace",
                    "last_name": "H",
                    "email": "g@example.org",
                    "seats": "2",
                    "q0": "ACME",
                },
            )
            assert status == 200
        status, regs = await api.call("GET", f"/events/{event_id}/registrations")
        assert status == 200
        (reg,) = regs["registrations"]
        assert (reg["status"], reg["seats"], reg["amount"], reg["code"]) == (
            "pending",
            2,
            "39.80",
            None,
        )
        assert reg["answers"] == {"Company": "ACME"}
        rid = reg["registration_id"]
        status, confirmed = await api.call(
            "POST", f"/events/{event_id}/registrations/{rid}/confirm"
        )
        assert status == 200 and confirmed["status"] == "confirmed" and confirmed["code"]
        status, again = await api.call("POST", f"/events/{event_id}/registrations/{rid}/confirm")
        assert status == 409 and "only a pending" in again["error"]["message"]
        status, cancelled = await api.call("POST", f"/events/{event_id}/registrations/{rid}/cancel")
        assert status == 200 and cancelled["status"] == "cancelled"

        # invitees on a token event
        status, token_event = await api.call(
            "POST",
            "/events",
            {"title": "Invite only", "starts_at": soon(days=1), "access_type": "token"},
        )
        assert status == 201
        tid = token_event["event_id"]
        status, ada = await api.call(
            "POST", f"/events/{tid}/invitees", {"name": "Ada", "email": "ada@example.org"}
        )
        assert status == 201 and ada["status"] == "active" and ada["sent_at"]
        status, dup = await api.call(
            "POST", f"/events/{tid}/invitees", {"name": "Ada", "email": "ADA@example.org"}
        )
        assert status == 422 and "invited already" in dup["error"]["message"]
        status, revoked = await api.call(
            "POST", f"/events/{tid}/invitees/{ada['invitee_id']}/revoke"
        )
        assert status == 200 and revoked["status"] == "revoked"
        status, listing = await api.call("GET", f"/events/{tid}/invitees")
        assert [i["status"] for i in listing["invitees"]] == ["revoked"]
        # No SMTP server configured: the messages are .eml files (registration received,
        # code, cancellation, invitation).
        subjects = sorted(
            next(line for line in p.read_text().splitlines() if line.startswith("Subject:"))
            for p in (server.store.data_dir / "outbox").glob("*.eml")
        )
        assert subjects == [
            "Subject: Cancelled: Paid class 2",
            "Subject: Invitation: Invite only",
            "Subject: Registration received: Paid class 2",
            "Subject: Your reservation code for Paid class 2",
        ]

        # the fourth active event of an organiser is refused by rule
        status, body = await api.call(
            "POST", "/events", {"title": "3rd", "starts_at": soon(days=3)}
        )
        assert status == 201
        status, body = await api.call(
            "POST", "/events", {"title": "4th", "starts_at": soon(days=3)}
        )
        assert status == 422 and body["error"]["rule"] == "max-active"


def test_cli_makes_api_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    assert main(["user", "token", "nobody", "--data-dir", data]) == 2
    with Store.open_sync(tmp_path / "data") as store:
        user = store.create_user("olga", hash_password("x" * 12, n=2**10), "organiser")
    capsys.readouterr()
    assert main(["user", "token", "olga", "--data-dir", data]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("wbt_")
    with Store.open_sync(tmp_path / "data") as store:
        assert records.user_id_for_api_token(store.connection, token) == user.user_id
    assert main(["user", "token", "olga", "--revoke-all", "--data-dir", data]) == 0
    assert "Revoked 1 API token of olga" in capsys.readouterr().out
    with Store.open_sync(tmp_path / "data") as store:
        assert records.user_id_for_api_token(store.connection, token) is None


async def test_an_event_s_language_is_set_and_cleared_through_the_api(
    server: RunningServer,
) -> None:
    token = await user_with_token(server, "lena")
    async with aiohttp.ClientSession() as http:
        api = Api(http, server.base_url, token)
        status, event = await api.call(
            "POST", "/events", {"title": "Seminář", "starts_at": soon(days=2)}
        )
        assert status == 201 and event["language"] is None  # none until the organiser picks
        path = f"/events/{event['event_id']}"
        status, event = await api.call("PATCH", path, {"language": "cs"})
        assert status == 200 and event["language"] == "cs"
        status, body = await api.call("PATCH", path, {"language": "de"})
        assert status == 422 and "language" in body["error"]["message"]
        status, event = await api.call("PATCH", path, {"title": "Seminář 2"})
        assert event["language"] == "cs"  # kept by a patch of something else
        status, event = await api.call("PATCH", path, {"language": None})
        assert status == 200 and event["language"] is None
