"""Robustness of the HTTP layer against hostile input, over a real server: deeply nested JSON
and lone surrogates in bodies, oversized integer IDs in paths, malformed (but signed) Stripe
events; and the webhook URL guard's canonical host check."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import webinar.http
from tests.helpers import RunningServer, make_config, running_server
from tests.protocol.test_dashboard import add_user, csrf_of, sign_in
from tests.protocol.test_ticketing import (
    WHSEC,
    checkout_completed,
    paid_event,
    registration,
    sign,
)
from tests.protocol.test_ticketing_api import user_with_token
from webinar.config import AdminConfig, PaymentsConfig, TicketingConfig
from webinar.interaction import store as ist
from webinar.storage.db import SqliteDatabase, transaction
from webinar.storage.store import Event
from webinar.ticketing import records
from webinar.ticketing.records import PaymentProvider, RegistrationStatus
from webinar.webhooks.signing import check_endpoint_url

ADMIN = "admin-token-for-robustness-0123456789"
SRC_HTTP = Path(webinar.http.__file__).parent  # the code under test
HUGE = "99999999999999999999999"
#: 1,000 levels of nesting in 2 KB: once a RecursionError and a 500.
DEEP = "[" * 1000 + "]" * 1000
#: A lone surrogate: valid JSON, but text no UTF-8 store can keep.
SURROGATE_TITLE = '{"title": "\\ud800"}'


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    config = dataclasses.replace(
        make_config(tmp_path / "data"),
        admin=AdminConfig(token=ADMIN),
        ticketing=TicketingConfig(max_lead_days=3660, max_active_events=1000),
        payments=PaymentsConfig(stripe_secret_key="sk_test_x", stripe_webhook_secret=WHSEC),
    )
    async with running_server(config.data_dir, config) as srv:
        yield srv


async def _send(
    http: aiohttp.ClientSession, method: str, url: str, body: str | bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    async with http.request(
        method, url, data=body, headers={**headers, "Content-Type": "application/json"}
    ) as resp:
        assert resp.content_type == "application/json", (resp.status, await resp.text())
        return resp.status, await resp.json()


# ----------------------------------------------------------------------------- JSON bodies


def test_no_handler_parses_json_or_path_ids_by_itself() -> None:
    """Every JSON body goes through inputs.read_json, every integer path ID through
    inputs.path_id: nothing else in src/webinar/http reads them."""
    offenders = []
    for path in sorted(SRC_HTTP.glob("*.py")):
        if path.name == "inputs.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(
                r"request\.json\(|json\.loads\(\s*(await\s+)?request|"
                r"int\(\s*request\.match_info|await request\.text\(\)",
                line,
            ):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert not offenders, offenders


async def test_deep_json_and_surrogates_are_refused_with_400(server: RunningServer) -> None:
    token = await user_with_token(server, "olga")
    api = {"Authorization": f"Bearer {token}"}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    base = server.base_url
    async with aiohttp.ClientSession() as http:
        status, created = await _send(
            http, "POST", base + "/api/v1/events", json.dumps({"title": "Kept"}), api
        )
        assert status == 201, created
        event_id = created["event_id"]
        event = await server.store.get_event(event_id.replace("-", ""))
        assert event is not None
        cases = [
            ("PATCH", f"/api/v1/events/{event_id}", api, "nested"),
            ("POST", "/api/v1/events", api, "nested"),
            ("POST", f"/api/v1/events/{event_id}/invitees", api, "nested"),
            ("POST", f"/api/admin/events/{event_id}/polls", admin, "nested"),
            ("POST", f"/api/admin/events/{event_id}/ctas", admin, "nested"),
        ]
        for method, path, headers, _ in cases:
            status, body = await _send(http, method, base + path, DEEP, headers)
            assert status == 400, (path, body)
            error = body["error"]
            code = error["code"] if isinstance(error, dict) else error
            message = error["message"] if isinstance(error, dict) else body["message"]
            assert code == "bad-json" and "nested" in message, (path, body)

        for method, path, headers, _ in cases:
            status, body = await _send(http, method, base + path, SURROGATE_TITLE, headers)
            assert status == 400, (path, body)
            assert "Unicode" in json.dumps(body), (path, body)
        status, body = await _send(
            http,
            "POST",
            base + f"/api/admin/events/{event_id}/ctas",
            '{"message": "\\udfff", "button": "Go", "url": "https://example.com/"}',
            admin,
        )
        assert status == 400 and body["error"] == "bad-json", body
        # Not UTF-8 at all: the same clear refusal.
        status, body = await _send(
            http, "PATCH", base + f"/api/v1/events/{event_id}", b'{"title": "\xff"}', api
        )
        assert status == 400 and body["error"]["code"] == "bad-json", body

    # Nothing was stored: the event is as it was, no other event, no poll, no CTA.
    again = await server.store.get_event(event.event_id)
    assert again is not None and again.title == "Kept"
    assert len(await server.store.list_events(None)) == 1
    polls = await server.store.run(lambda core: ist.list_polls(core, event.event_id))
    ctas = await server.store.run(lambda core: ist.list_prepared_ctas(core, event.event_id))
    invitees = await server.store.run(
        lambda core: records.list_invitees(core.connection, event.event_id)
    )
    assert polls == [] and ctas == [] and invitees == []


# ----------------------------------------------------------------------------- path IDs


async def test_oversized_and_malformed_path_ids_are_404(server: RunningServer) -> None:
    token = await user_with_token(server, "boss", admin=True)
    api = {"Authorization": f"Bearer {token}"}
    event = await paid_event(server)
    reg = await registration(server, event, confirm=False)
    base, shown = server.base_url, event.event_id
    bad_ids = [HUGE, str(2**63), "-1", "0", "abc", "1e3", "\u0661"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/v1/events/{shown}", headers=api) as resp:
            assert resp.status == 200  # the token reaches the event: the 404s are the IDs'
        for bad in bad_ids:
            for path in (
                f"/registrations/{bad}/confirm",
                f"/registrations/{bad}/reject",
                f"/registrations/{bad}/resend",
                f"/invitees/{bad}/revoke",
                f"/invitees/{bad}/resend",
            ):
                url = f"{base}/api/v1/events/{shown}{path}"
                async with http.post(url, headers=api) as resp:
                    body = await resp.json()
                    assert resp.status == 404, (path, resp.status, body)
                    assert body["error"]["code"] == "not-found", body

    # The dashboard's forms, and the Webhooks page (CSRF tokens in hand).
    add_user(server, "root", admin=True)
    http = await sign_in(server, "root")
    try:
        async with http.get(f"{base}/dashboard/events/{shown}/tickets") as resp:
            csrf = csrf_of(await resp.text())
        async with http.get(f"{base}/dashboard/webhooks") as resp:
            hooks_csrf = csrf_of(await resp.text())
        for bad in bad_ids:
            for path, form_token in (
                (f"/dashboard/events/{shown}/registrations/{bad}/confirm", csrf),
                (f"/dashboard/events/{shown}/registrations/{bad}/cancel", csrf),
                (f"/dashboard/events/{shown}/invitees/{bad}/revoke", csrf),
                (f"/dashboard/events/{shown}/invitees/{bad}/resend", csrf),
                (f"/dashboard/webhooks/{bad}/delete", hooks_csrf),
                (f"/dashboard/webhooks/{bad}/test", hooks_csrf),
                (f"/dashboard/webhooks/deliveries/{bad}/retry", hooks_csrf),
            ):
                async with http.post(
                    base + path, data={"csrf": form_token}, allow_redirects=False
                ) as resp:
                    assert resp.status == 404, (path, resp.status, await resp.text())
        found = await server.store.run(
            lambda core: records.get_registration(core.connection, reg.registration_id)
        )
        assert found is not None and found.status is RegistrationStatus.PENDING
        # The control: the same form with a real ID is not a 404 (the route and the CSRF
        # token work, so the 404s above are the IDs').
        path = f"/dashboard/events/{shown}/registrations/{reg.registration_id}/confirm"
        async with http.post(base + path, data={"csrf": csrf}, allow_redirects=False) as resp:
            assert resp.status in (302, 303), (resp.status, await resp.text())
    finally:
        await http.close()
    found = await server.store.run(
        lambda core: records.get_registration(core.connection, reg.registration_id)
    )
    assert found is not None and found.status is RegistrationStatus.CONFIRMED, found


# ----------------------------------------------------------------------------- Stripe


async def test_signed_stripe_event_of_the_wrong_shape_is_400(server: RunningServer) -> None:
    event: Event = await paid_event(server)
    reg = await registration(server, event, confirm=False, provider=PaymentProvider.STRIPE)
    await server.store.run(
        lambda core: records.set_provider_ref(core.connection, reg.registration_id, "cs_1")
    )
    reg = dataclasses.replace(reg, provider_ref="cs_1")
    good: dict[str, Any] = json.loads(checkout_completed("evt_ok", reg, 2500))

    def shaped(**changes: Any) -> dict[str, Any]:
        body = json.loads(json.dumps(good))
        for dotted, value in changes.items():
            *parents, last = dotted.split("__")
            target = body
            for key in parents:
                target = target[key]
            target[last] = value
        return body

    malformed: list[Any] = [
        shaped(data__object=[1, 2]),
        shaped(data__object="cs_1"),
        shaped(data=[{"object": {}}]),
        shaped(data=None),
        shaped(id={"x": 1}),
        shaped(id="e" * 1000),
        shaped(type=["checkout.session.completed"]),
        shaped(data__object__client_reference_id=HUGE),
        shaped(data__object__client_reference_id=[reg.registration_id]),
        shaped(data__object__amount_total=10**30),
        shaped(data__object__amount_total="2500"),
        shaped(data__object__currency=["eur"]),
        shaped(data__object__id=7),
        {**shaped(type="checkout.session.expired"), "data": {"object": [1]}},
        [good],
        "evt",
    ]
    url = server.base_url + "/payments/stripe/webhook"
    async with aiohttp.ClientSession() as http:
        for body in [*(json.dumps(b).encode() for b in malformed), DEEP.encode(), b"\xff{"]:
            async with http.post(
                url,
                data=body,
                headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
            ) as resp:
                answer = await resp.json()
                assert resp.status == 400, (body[:80], resp.status, answer)
                assert isinstance(answer["error"], str)
        found = await server.store.run(
            lambda core: records.get_registration(core.connection, reg.registration_id)
        )
        assert found is not None and found.status is RegistrationStatus.PENDING
        seen = await server.store.run(
            lambda core: core.connection.execute("SELECT COUNT(*) FROM payment_webhooks").fetchone()
        )
        assert seen == (0,)
        # The well-formed event still applies.
        body = json.dumps(good).encode()
        async with http.post(url, data=body, headers={"Stripe-Signature": sign(body)}) as resp:
            answer = await resp.json()
            assert (resp.status, answer.get("outcome")) == (200, "applied"), answer


# ----------------------------------------------------------------------------- webhook URLs

PRIVATE_SPELLINGS = [
    "http://127.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0x7F.0.0.1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.000.000.001/",
    "http://0/",
    "http://0.0.0.0/",
    "http://10.1/",
    "http://167772161/",
    "http://192.168.1.1./",
    "http://169.254.169.254/",
    "http://0xa9fea9fe/",
    "http://localhost/",
    "http://localhost./",
    "http://LOCALHOST/",
    "http://LocalHost.:8080/x",
    "http://api.localhost/",
    "http://api.LOCALHOST./",
    "http://printer.local./",
    "http://db.INTERNAL/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://[fe80::1%25eth0]/",
    "http://[fc00::1]/",
    "http://[::]/",
    "https://224.0.0.1/",
    "http://100.64.0.1/",
]

PUBLIC_SPELLINGS = [
    "https://hooks.example.com/x",
    "https://93.184.216.34/",
    "http://8.8.8.8:8080/",
    "https://[2606:4700:4700::1111]/",
    "https://Example.COM./hook",
]


@pytest.mark.parametrize("url", PRIVATE_SPELLINGS)
def test_webhook_url_guard_refuses_every_spelling_of_a_private_host(url: str) -> None:
    with pytest.raises(ValueError, match="public"):
        check_endpoint_url(url, allow_private=False)
    assert check_endpoint_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", PUBLIC_SPELLINGS)
def test_webhook_url_guard_keeps_public_hosts(url: str) -> None:
    assert check_endpoint_url(url, allow_private=False) == url


# ----------------------------------------------------------------------------- transactions


def test_transaction_commits_or_rolls_back(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "t.sqlite3", isolation_level=None)
    conn = SqliteDatabase(raw, None, "t.sqlite3")
    other = sqlite3.connect(tmp_path / "t.sqlite3", isolation_level=None, timeout=0)
    try:
        conn.execute("CREATE TABLE t (x INTEGER)")
        with transaction(conn) as db:
            db.execute("INSERT INTO t VALUES (1)")
            assert conn.in_transaction
        assert not conn.in_transaction
        with pytest.raises(KeyError), transaction(conn):
            conn.execute("INSERT INTO t VALUES (2)")
            raise KeyError("x")
        assert not conn.in_transaction
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]
        # IMMEDIATE takes the write lock at BEGIN: another writer is locked out at once.
        with (
            transaction(conn, immediate=True),
            pytest.raises(sqlite3.OperationalError, match="locked"),
        ):
            other.execute("BEGIN IMMEDIATE")
        with transaction(conn):  # a plain BEGIN takes no lock until the first write
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        conn.close()
        other.close()


def test_feature_stores_use_the_transaction_helper() -> None:
    root = SRC_HTTP.parent
    for name in (
        "ticketing/records.py",
        "webhooks/records.py",
        "interaction/store.py",
        "interaction/engagement.py",
    ):
        text = (root / name).read_text()
        assert 'execute("BEGIN' not in text and 'execute("COMMIT' not in text, name
        assert "with transaction(" in text, name


async def test_session_json_api_answers_json_without_a_session(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/api/recordings", "/api/stats/monthly", "/api/events/123456789/stats"):
            async with http.get(server.base_url + path) as resp:
                assert resp.status == 401 and resp.content_type == "application/json", path
                assert (await resp.json())["error"] == "unauthorized"


async def test_delivery_log_refusals_are_json(server: RunningServer) -> None:
    url = server.base_url + "/api/admin/webhooks/deliveries"
    async with aiohttp.ClientSession() as http:
        for token in ("", "wrong", ADMIN[:-1]):
            async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
                assert (await resp.json())["error"] == "unauthorized"
        async with http.get(url, headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
            assert resp.status == 200 and (await resp.json()) == {"deliveries": []}
