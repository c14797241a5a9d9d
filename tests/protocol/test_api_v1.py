"""The one API (/api/v1) against its own OpenAPI description, over real HTTP.

- the description served at /api/openapi.json validates (openapi-spec-validator), and every
  /api/ route of the running app is in it, and every operation in it is a route;
- every documented operation, called with a token of exactly the scope it documents, answers
  its documented status, and its JSON body validates against its documented schema;
- a read-only token gets 403 insufficient-scope on every operation that changes something
  (and a write token on every admin operation), and nothing changes;
- lists page with cursors; errors are one envelope; the deprecated paths say so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from openapi_spec_validator import validate

from tests.helpers import RunningServer, make_config, running_server
from tests.protocol.test_after_event import store_recording
from tests.protocol.test_ticketing import registration, set_access
from webinar.accounts import hash_password
from webinar.app import API, CONTENT, INTERACTION_HTTP, PUBLISHER, RECORDINGS
from webinar.config import AdminConfig, TicketingConfig, WebhooksConfig
from webinar.http.tickets import TICKETS
from webinar.ids import format_event_id
from webinar.storage import accounts, api_tokens
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Event
from webinar.ticketing import join_tokens, records
from webinar.ticketing.records import EventAccess
from webinar.webhooks import records as wr
from webinar.webhooks.signing import WebhookEvent

ADMIN_TOKEN = "configured-admin-token-0123456789abcdef"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)
#: A picture big enough for a branding logo or background (at least 16 pixels a side).
BRAND_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00 \x00\x00\x00 "
    b"\x08\x02\x00\x00\x00\xfc\x18\xed\xa3\x00\x00\x00-IDATx\x9cc\x14\x89:\xc1"
    b"@K\xc0DS\xd3G-\x18\xb5`\xd4\x82Q\x0bF-\x18\xb5`\xd4\x82Q\x0b"
    b"F-\x18\xb5`\xd4\x02*\x02\x00<\xb0\x01vK(\x88H\x00\x00\x00\x00IE"
    b"ND\xaeB`\x82"
)
A_POLL = {
    "title": "Warm-up",
    "kind": "test",
    "questions": [
        {
            "text": "2 + 2?",
            "kind": "single",
            "options": [{"text": "4", "correct": True}, {"text": "5"}],
        }
    ],
}
#: An example body of each operation that takes one (method, path).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/tokens"): {"name": "CRM sync", "scope": "read"},
    ("POST", "/api/v1/events"): {"title": "Made by the API", "timezone": "Europe/Prague"},
    ("PATCH", "/api/v1/events/{event_id}"): {"title": "Renamed", "duration_minutes": 90},
    ("POST", "/api/v1/events/{event_id}/invitees"): {"name": "Ann", "email": "ann@example.org"},
    ("POST", "/api/v1/events/{event_id}/invitees/import"): b"name,email\nBo,bo@example.org\n",
    ("POST", "/api/v1/events/{event_id}/polls"): A_POLL,
    ("PUT", "/api/v1/events/{event_id}/polls/{poll_id}"): {**A_POLL, "title": "Changed"},
    ("POST", "/api/v1/events/{event_id}/ctas"): {
        "message": "Get the slides",
        "button": "Download",
        "url": "https://example.org/slides",
        "duration_seconds": 60,
    },
    ("POST", "/api/v1/events/{event_id}/images"): PNG,
    ("POST", "/api/v1/events/{event_id}/content"): PNG,
    ("PUT", "/api/v1/events/{event_id}/branding"): {"accent_colour": "#1a3d8f"},
    ("PUT", "/api/v1/events/{event_id}/branding/{image}"): BRAND_PNG,
    ("PUT", "/api/v1/me/branding"): {"organiser_name": "Acme"},
    ("PUT", "/api/v1/me/branding/{image}"): BRAND_PNG,
    ("POST", "/api/v1/recordings/{recording_id}/trim"): {"start": 0.5, "end": 1.5},
    ("POST", "/api/v1/recordings/{recording_id}/publications"): {"days": 3},
    ("PUT", "/api/v1/events/{event_id}/recording-settings"): {"auto_record": True},
    ("PUT", "/api/v1/events/{event_id}/live-stream"): {
        "url": "rtmps://a.rtmps.youtube.com/live2",
        "key": "abcd-efgh-ijkl-mnop",
    },
    ("POST", "/api/v1/webhooks/endpoints"): {
        "url": "http://127.0.0.1:9/hooks",
        "events": ["event.started"],
    },
    ("POST", "/api/v1/join-keys"): {"label": "CRM"},
    ("PUT", "/api/v1/events/{event_id}/embed"): {"origins": ["https://www.example.org"]},
    ("POST", "/api/v1/events/{event_id}/duplicate"): {"title": "A copy"},
    ("POST", "/api/v1/events/{event_id}/organisers"): {"account": "helper"},
    ("POST", "/api/v1/events/{event_id}/presenters"): {
        "name": "Linus",
        "email": "linus@example.org",
    },
    ("POST", "/api/v1/accounts/invitations"): {"email": "new@example.org"},
}
METHODS = ("get", "post", "put", "patch", "delete")


@dataclasses.dataclass
class Op:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def scope(self) -> str | None:
        return self.spec.get("x-scope")

    @property
    def status(self) -> int:
        return min(int(code) for code in self.spec["responses"] if code.startswith("2"))


def operations(doc: dict[str, Any], *, deprecated: bool = False) -> list[Op]:
    return [
        Op(method.upper(), path, item[method])
        for path, item in doc["paths"].items()
        for method in METHODS
        if method in item and item[method].get("deprecated", False) is deprecated
    ]


@dataclasses.dataclass
class World:
    server: RunningServer
    http: aiohttp.ClientSession
    doc: dict[str, Any]
    #: Olga's (an organiser's) read and write tokens; root's (an admin's) admin token.
    tokens: dict[str, str]
    olga_id: int
    made: int = 0
    events_made: int = 0

    def headers(self, scope: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"} if scope else {}

    async def event(self, title: str = "Fresh", **settings: Any) -> Event:
        self.made += 1
        self.events_made += 1
        return await self.server.store.create_event(
            f"{title} {self.made}", None, owner_id=self.olga_id, **settings
        )

    async def paid_event(self) -> Event:
        event = await self.event("Paid", access_type="paid")
        await set_access(self.server, EventAccess(event.event_id, price_minor=2500, currency="EUR"))
        return event

    async def params(self, op: Op) -> dict[str, str]:
        """Real values of the path's parameters, made fresh for this call."""
        app = self.server.server.app
        names = re.findall(r"\{([^}]+)\}", op.path)
        values: dict[str, str] = {}
        event: Event | None = None
        if "event_id" in names:
            if "/registrations" in op.path:
                event = await self.paid_event()
            elif "/invitees" in op.path:
                event = await self.event("Invited", access_type="token")
            else:
                event = await self.event()
            values["event_id"] = format_event_id(event.event_id)
        if "registration_id" in names:
            assert event is not None
            self.made += 1
            reg = await registration(
                self.server,
                event,
                confirm=op.path.endswith("/resend"),
                email=f"p{self.made}@example.org",
            )
            values["registration_id"] = str(reg.registration_id)
        if "invitee_id" in names:
            assert event is not None
            event_id = event.event_id
            invitee = await self.server.store.run(
                lambda core: records.add_invitee(
                    core.connection, event_id, "Ann", "ann@example.org"
                )
            )
            values["invitee_id"] = str(invitee.invitee_id)
        if "import_id" in names:
            assert event is not None
            found = await app[TICKETS].desk.preview_import(event, b"Cy,cy@example.org\n")
            values["import_id"] = found.import_id
        if "poll_id" in names:
            assert event is not None
            poll = await app[INTERACTION_HTTP].create_poll(event, A_POLL)
            values["poll_id"] = poll.poll_id
        if "prepared_id" in names:
            assert event is not None
            prepared = await app[INTERACTION_HTTP]._prepare_cta(
                event, {"message": "Hi", "button": "Go", "url": "https://example.org/"}
            )
            values["prepared_id"] = prepared.prepared_id
        if "kind" in names:
            values["kind"] = "chat"
        if "image" in names:
            values["image"] = "logo"
        if "recording_id" in names:
            recorded = await self.event("Recorded")
            await asyncio.sleep(0.002)  # recording IDs are made of the time in ms
            recording_id = await store_recording(self.server, recorded)
            values["recording_id"] = recording_id
            info = await app[RECORDINGS].get(recording_id)
            assert info is not None
            values["name"] = info.files[0]["name"]
            if "publication_id" in names:
                publication = await app[PUBLISHER].publish(
                    recording_id, days=1, require_email=False
                )
                values["publication_id"] = publication.publication_id
        if "endpoint_id" in names or "delivery_id" in names:
            olga = self.olga_id
            endpoint = await self.server.store.run_sql(
                lambda db: wr.sql_add_endpoint(
                    db, olga, "http://127.0.0.1:9/hook", frozenset(), time.time()
                )
            )
            values["endpoint_id"] = str(endpoint.endpoint_id)
            if "delivery_id" in names:
                values["delivery_id"] = await self.failed_delivery(endpoint.endpoint_id)
        if "content_id" in names:
            owned = await self.event("With content")

            async def pdf() -> AsyncIterator[bytes]:
                yield b"%PDF-1.4\n%%EOF\n"

            stored = await app[CONTENT].receive(
                owned,
                pdf(),
                file_name="a.pdf",
                content_type="application/pdf",
                declared_size=None,
                uploaded_by="organiser",
            )
            values["content_id"] = stored.content_id
        if "token_id" in names:
            olga = self.olga_id
            token, _secret = await self.server.store.run(
                lambda core: api_tokens.create(core.connection, olga, "to revoke", Scope.READ)
            )
            values["token_id"] = token.token_id
        if "user_id" in names:  # a co-organiser of the event
            assert event is not None
            helper = await self.server.store.find_user("helper")
            assert helper is not None
            event_id, olga = event.event_id, self.olga_id
            await self.server.store.run(
                lambda core: accounts.add_organiser(
                    core.connection,
                    event_id,
                    helper,
                    owner_id=olga,
                    added_by=olga,
                    now=datetime.now(UTC),
                )
            )
            values["user_id"] = str(helper.user_id)
        if "presenter_id" in names:
            assert event is not None
            event_id = event.event_id
            presenter = await self.server.store.run(
                lambda core: accounts.add_presenter(
                    core.connection, event_id, "Linus", "linus@example.org", now=datetime.now(UTC)
                )
            )
            values["presenter_id"] = str(presenter.presenter_id)
        if "key_id" in names:
            olga = self.olga_id
            key = await self.server.store.run_sql(
                lambda db: join_tokens.sql_add_key(db, olga, "to delete")
            )
            values["key_id"] = key.key_id
        assert set(values) >= set(names), (op.path, values)
        return values

    async def failed_delivery(self, endpoint_id: int) -> str:
        item = wr.Emitted(WebhookEvent.TEST, None, {"message": "t"}, time.time(), endpoint_id)

        def record(db: Any) -> str:
            wr.sql_record(db, [item])
            (delivery_id,) = db.execute(
                "SELECT delivery_id FROM webhook_deliveries WHERE endpoint_id = ?"
                " AND status = 'pending'",
                (endpoint_id,),
            ).fetchone()
            db.execute(
                "UPDATE webhook_deliveries SET status = 'failed', attempts = 8,"
                " next_attempt_at = NULL, finished_at = ? WHERE delivery_id = ?",
                (time.time(), delivery_id),
            )
            return str(delivery_id)

        return await self.server.store.run_sql(record)

    async def call(
        self, op: Op, scope: str | None, params: dict[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        params = params if params is not None else await self.params(op)
        path = re.sub(r"\{([^}]+)\}", lambda m: params[m.group(1)], op.path)
        body = BODIES.get((op.method, op.path))
        kwargs: dict[str, Any] = {"headers": self.headers(scope)}
        if isinstance(body, bytes):
            kwargs["data"] = body
        elif body is not None:
            kwargs["json"] = body
        return await self.http.request(op.method, self.server.base_url + path, **kwargs)

    def validate_body(self, op: Op, status: int, body: Any) -> None:
        answer = op.spec["responses"][str(status)]
        schema = answer.get("content", {}).get("application/json", {}).get("schema")
        if schema is None or "$ref" not in schema:
            return
        root = {**schema, "components": self.doc["components"]}
        jsonschema.Draft202012Validator(root).validate(body)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    data = tmp_path / "data"
    config = dataclasses.replace(
        make_config(data),
        admin=AdminConfig(token=ADMIN_TOKEN),
        ticketing=TicketingConfig(max_lead_days=3660, max_active_events=10_000),
        webhooks=WebhooksConfig(allow_private_addresses=True),
    )
    async with running_server(data, config) as server, aiohttp.ClientSession() as http:

        def user(name: str, role: str) -> int:
            with server.store.connect_sync() as sync:
                return sync.create_user(name, hash_password("x" * 12, n=2**10), role).user_id

        olga, root = user("olga", "organiser"), user("root", "admin")
        user("helper", "organiser")  # made a co-organiser of events

        async def token(user_id: int, scope: Scope) -> str:
            _token, secret = await server.store.run(
                lambda core: api_tokens.create(core.connection, user_id, scope.value, scope)
            )
            return secret

        tokens = {
            "read": await token(olga, Scope.READ),
            "write": await token(olga, Scope.WRITE),
            "admin": await token(root, Scope.ADMIN),
        }
        async with http.get(server.base_url + "/api/openapi.json") as resp:
            assert resp.status == 200
            doc = await resp.json()
        yield World(server, http, doc, tokens, olga)


# ----------------------------------------------------------------------------- the description


async def test_the_description_validates_and_names_every_route(world: World) -> None:
    doc = world.doc
    validate(doc)  # OpenAPI 3.1 (raises on any problem)
    assert doc["openapi"] == "3.1.0"
    routes = set()
    for route in world.server.server.app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if canonical.startswith("/api/") and route.method != "HEAD":
            routes.add((route.method, canonical))
    documented = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in METHODS
        if method in item
    }
    assert routes == documented, (routes - documented, documented - routes)
    ids = [op.spec["operationId"] for op in operations(doc) + operations(doc, deprecated=True)]
    assert len(ids) == len(set(ids))
    # Everything under /api/v1 needs a token; only the description itself is public.
    for op in operations(doc):
        if op.path.startswith("/api/v1/"):
            assert op.scope in ("read", "write", "admin"), op.path
            assert op.spec["security"][0] == {"bearerAuth": [op.scope]}
        else:
            assert op.spec["security"] == [], op.path
    # The description is the app's own: the same object the app built.
    assert doc == json.loads(json.dumps(world.server.server.app[API].description()))
    assert len(operations(doc)) >= 50, len(operations(doc))


async def test_the_reference_page_renders_the_description(world: World) -> None:
    async with world.http.get(world.server.base_url + "/api/docs") as resp:
        assert resp.status == 200
        html = await resp.text()
        policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "cdn" not in policy
    assert "<script" not in html.replace(
        '<script type="module" src="/static/js/', ""
    )  # only the site's own module scripts
    for op in operations(world.doc) + operations(world.doc, deprecated=True):
        assert f'data-method="{op.method}" data-path="{op.path}"' in html, op.path
    for name in world.doc["components"]["schemas"]:
        assert f'data-name="{name}"' in html
    async with world.http.get(
        world.server.base_url + "/api/docs", headers={"Accept-Language": "cs"}
    ) as resp:
        assert resp.status == 200
        assert '<html lang="cs"' in await resp.text()  # its headings in the reader's language


# ----------------------------------------------------------------------------- every operation


async def test_every_operation_answers_its_documented_status(world: World) -> None:
    """Each documented operation with a token of exactly its scope (or none when public)."""
    seen = []
    for op in operations(world.doc):
        async with await world.call(op, op.scope) as resp:
            raw = await resp.read()
            text = raw.decode() if resp.content_type != "video/webm" else ""
            assert resp.status == op.status, (op.method, op.path, resp.status, text)
            media = resp.content_type
            documented = next(iter(op.spec["responses"][str(op.status)].get("content", {})), None)
            if op.status == 204:
                assert raw == b""
            else:
                assert media == documented or documented == "*/*", (op.path, media, documented)
            if media == "application/json" and op.status != 204:
                world.validate_body(op, resp.status, json.loads(text))
        seen.append((op.method, op.path))
    assert len(seen) == len(operations(world.doc))


async def test_a_read_only_token_cannot_write(world: World) -> None:
    """Every operation that needs write (or admin) refuses a read token with 403, and a write
    token where it needs admin; what they would have changed is unchanged."""
    store = world.server.store
    before = len(await store.list_events()) - world.events_made
    refused = 0
    for op in operations(world.doc):
        if op.scope not in ("write", "admin"):
            continue
        weaker = ["read"] if op.scope == "write" else ["read", "write"]
        params = await world.params(op)
        for scope in weaker:
            async with await world.call(op, scope, params) as resp:
                body = await resp.json()
                assert resp.status == 403, (op.method, op.path, scope, body)
                assert body["error"]["code"] == "insufficient-scope"
                assert body["error"]["needed"] == op.scope
                assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
                world.validate_body(op, 403, body)
                refused += 1
        # the same parameters still work with the right scope: nothing was used up
        async with await world.call(op, op.scope, params) as resp:
            assert resp.status == op.status, (op.method, op.path, await resp.text())
    assert refused >= 30, refused
    # Only the write calls (POST /api/v1/events once) made events; the refused ones none.
    assert len(await store.list_events()) == before + world.events_made + 1


async def test_the_configured_admin_token_is_an_admin_token(world: World) -> None:
    base = world.server.base_url + "/api/v1"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with world.http.get(base + "/me", headers=admin) as resp:
        me = await resp.json()
    assert me == {
        "token_id": None,
        "name": "admin.token",
        "scope": "admin",
        "account": None,
        "sees_all_events": True,
    }
    olgas = await world.event("Olga's")
    async with world.http.get(f"{base}/events/{olgas.display_id}", headers=admin) as resp:
        assert resp.status == 200
    async with world.http.get(f"{base}/events/{olgas.display_id}/embed", headers=admin) as resp:
        assert resp.status == 200
    # join-token keys belong to an account, as webhook endpoints do
    async with world.http.post(base + "/join-keys", json={"label": "x"}, headers=admin) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "account-required"
    async with world.http.get(base + "/join-keys", headers=admin) as resp:
        assert resp.status == 403
    async with world.http.post(
        base + "/tokens", json={"name": "for olga", "scope": "write", "user": "olga"}, headers=admin
    ) as resp:
        assert resp.status == 201
        made = await resp.json()
    assert made["token"]["account"] == {"username": "olga", "role": "organiser"}
    olga = {"Authorization": f"Bearer {made['secret']}"}
    async with world.http.get(base + "/me", headers=olga) as resp:
        assert (await resp.json())["scope"] == "write"
    # an organiser cannot hold an admin token
    async with world.http.post(
        base + "/tokens", json={"name": "x", "scope": "admin", "user": "olga"}, headers=admin
    ) as resp:
        assert resp.status == 422
        assert (await resp.json())["error"]["code"] == "admin-account-required"
    async with world.http.delete(
        f"{base}/tokens/{made['token']['token_id']}", headers=admin
    ) as resp:
        assert resp.status == 204
    async with world.http.get(base + "/me", headers=olga) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_organisers_see_only_their_own(world: World) -> None:
    base = world.server.base_url + "/api/v1"
    mine = await world.event("Mine")
    theirs = await world.server.store.create_event("Not hers", None)
    read = world.headers("read")
    async with world.http.get(f"{base}/events/{theirs.display_id}", headers=read) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not-found"
    async with world.http.get(f"{base}/events?limit=1000", headers=read) as resp:
        ids = [e["event_id"] for e in (await resp.json())["items"]]
    assert mine.display_id in ids and theirs.display_id not in ids
    async with world.http.get(f"{base}/events?limit=1000", headers=world.headers("admin")) as resp:
        ids = [e["event_id"] for e in (await resp.json())["items"]]
    assert {mine.display_id, theirs.display_id} <= set(ids)


# ----------------------------------------------------------------------------- pages and errors


async def test_lists_page_with_cursors(world: World) -> None:
    made = [await world.event("Paged") for _ in range(5)]
    base = world.server.base_url + "/api/v1/events"
    read = world.headers("read")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        async with world.http.get(base + query, headers=read) as resp:
            assert resp.status == 200
            page = await resp.json()
        assert len(page["items"]) <= 2 and page["events"] == page["items"]
        seen += [e["event_id"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e.display_id for e in made] and pages == 3
    # an event added between two pages neither repeats nor hides the others
    async with world.http.get(base + "?limit=2", headers=read) as resp:
        first = await resp.json()
    late = await world.event("Late")
    async with world.http.get(f"{base}?limit=10&cursor={first['next_cursor']}", headers=read) as r:
        rest = [e["event_id"] for e in (await r.json())["items"]]
    assert rest == [e.display_id for e in made[2:]] + [late.display_id]
    for query, code in (
        ("?limit=0", "bad-query"),
        ("?limit=1001", "bad-query"),
        ("?limit=x", "bad-query"),
        ("?cursor=%%%", "bad-cursor"),
        ("?cursor=bm90LWpzb24", "bad-cursor"),
        ("?cursor=WyJ4Il0", "bad-cursor"),  # ["x"]: a key of another shape
    ):
        async with world.http.get(base + query, headers=read) as resp:
            assert resp.status == 400, query
            assert (await resp.json())["error"]["code"] == code, query
    # the delivery log pages by its own key
    endpoint = await world.params(Op("POST", "/api/v1/webhooks/endpoints/{endpoint_id}/test", {}))
    for _ in range(3):
        await world.failed_delivery(int(endpoint["endpoint_id"]))
    ids: list[str] = []
    cursor = None
    while True:
        query = "?limit=2&status=failed" + (f"&cursor={cursor}" if cursor else "")
        async with world.http.get(
            world.server.base_url + "/api/v1/webhooks/deliveries" + query, headers=read
        ) as resp:
            page = await resp.json()
        ids += [d["delivery_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(ids) == len(set(ids)) == 3


async def test_errors_are_one_envelope(world: World) -> None:
    base = world.server.base_url + "/api/v1"
    write = world.headers("write")
    cases: list[tuple[str, str, dict[str, str], Any, int, str]] = [
        ("GET", "/events", {}, None, 401, "unauthorized"),
        ("GET", "/events", {"Authorization": "Bearer wbt_nope"}, None, 401, "unauthorized"),
        ("GET", "/events", {"Authorization": "Basic abc"}, None, 401, "unauthorized"),
        ("GET", "/no/such/thing", write, None, 404, "not-found"),
        ("DELETE", "/events", write, None, 405, "method-not-allowed"),
        ("POST", "/events", write, {"title": "x", "colour": "red"}, 400, "unknown-field"),
        ("POST", "/events", write, {"title": 5}, 422, "invalid"),
        ("POST", "/events", write, {"duration_minutes": 0, "title": "x"}, 422, "invalid"),
        ("POST", "/events", write, {}, 422, "invalid"),
        ("POST", "/events", write, [1, 2], 400, "bad-json"),
        ("GET", "/events/123-456-789", write, None, 404, "not-found"),
        ("GET", "/recordings/rec_000000000000", write, None, 404, "not-found"),
        ("GET", "/events?limit=-1", write, None, 400, "bad-query"),
    ]
    for method, path, headers, body, status, code in cases:
        async with world.http.request(method, base + path, headers=headers, json=body) as resp:
            answer = await resp.json()
            assert resp.status == status, (method, path, answer)
            assert set(answer) == {"error"}, answer
            assert answer["error"]["code"] == code, (method, path, answer)
            assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    async with world.http.post(
        base + "/events", headers={**write, "Content-Type": "application/json"}, data=b"{" * 70_000
    ) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "too-large"
    # a message in the caller's language
    async with world.http.get(base + "/events", headers={"Accept-Language": "ru"}) as resp:
        message = (await resp.json())["error"]["message"]
    assert re.search("[а-я]", message), message


async def test_hostile_path_values_never_fail_the_server(world: World) -> None:
    """Every operation with every path parameter spelled hostile: a 4xx envelope, never 5xx."""
    hostile = ["..", "%2e%2e", "0", "-1", "9" * 30, "%C3%A9", "a%20b", "x" * 300]
    for op in operations(world.doc):
        if "{" not in op.path:
            continue
        real = await world.params(op)
        for name in real:
            if f"{{{name}}}" not in op.path:
                continue
            for value in hostile:
                params = {**real, name: value}
                async with await world.call(op, op.scope, params) as resp:
                    assert resp.status < 500, (op.path, name, value, resp.status)
                    if resp.status >= 400 and op.path.startswith("/api/v1/"):
                        assert "code" in (await resp.json())["error"]


# ----------------------------------------------------------------------------- deprecated paths


async def test_deprecated_paths_answer_with_their_successor(world: World) -> None:
    event = await world.event("Old client")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    url = f"{world.server.base_url}/api/admin/events/{event.display_id}/polls"
    async with world.http.get(url, headers=admin) as resp:
        assert resp.status == 200
        assert (await resp.json()) == {"polls": []}  # the shape it always had
        headers = resp.headers
    assert headers["Deprecation"].startswith("@")
    sunset = parsedate_to_datetime(headers["Sunset"])
    assert sunset.year >= 2027
    assert (
        f'</api/v1/events/{event.display_id}/polls>; rel="successor-version"' in (headers["Link"])
    )
    # refusals keep their old envelope and carry the headers too
    async with world.http.get(url) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "unauthorized"
        assert "Sunset" in resp.headers
    for op in operations(world.doc, deprecated=True):
        assert op.spec["deprecated"] is True
        assert "use /api/v1/" in op.spec["summary"]
    async with world.http.get(
        world.server.base_url + "/api/admin/webhooks/deliveries", headers=admin
    ) as resp:
        assert resp.status == 200 and "Deprecation" in resp.headers
        assert 'rel="successor-version"' in resp.headers["Link"]


async def test_presenter_key_uploads_images_to_the_new_path(world: World) -> None:
    event = await world.event("Images")
    url = f"{world.server.base_url}/api/v1/events/{event.display_id}/images"
    async with world.http.post(
        url, data=PNG, headers={"X-Presenter-Key": event.presenter_key}
    ) as resp:
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["content_type"] == "image/png"
    async with world.http.post(url, data=PNG, headers={"X-Presenter-Key": "wrong"}) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "forbidden"
    async with world.http.post(url, data=b"not an image", headers=world.headers("write")) as resp:
        assert resp.status == 415
        assert (await resp.json())["error"]["code"] == "unsupported-type"


# ----------------------------------------------------------------------------- the CLI


def test_cli_makes_lists_and_revokes_scoped_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from webinar.cli import main
    from webinar.storage.store import Store

    data = str(tmp_path / "data")
    with Store.open_sync(tmp_path / "data") as store:
        store.create_user("olga", hash_password("x" * 12, n=2**10), "organiser")
        store.create_user("root", hash_password("x" * 12, n=2**10), "admin")
    create = ["token", "create", "--data-dir", data]
    assert main([*create, "--user", "nobody", "--scope", "read"]) == 2
    assert "no account named 'nobody'" in capsys.readouterr().err
    assert main([*create, "--user", "olga", "--scope", "admin"]) == 2  # not an admin account
    assert "admin account" in capsys.readouterr().err
    assert main([*create, "--user", "olga", "--scope", "superuser"]) == 2  # argparse
    capsys.readouterr()
    assert main([*create, "--user", "olga", "--scope", "read", "--name", "CRM sync"]) == 0
    out = capsys.readouterr()
    secret = out.out.strip()
    assert secret.startswith("wbt_") and "tok_" in out.err and "read token of olga" in out.err
    assert main([*create, "--user", "root", "--scope", "admin", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["scope"] == "admin" and made["secret"].startswith("wbt_")
    with Store.open_sync(tmp_path / "data") as store:
        found = api_tokens.find(store.connection, secret)
    assert found is not None and found.scope is Scope.READ and found.name == "CRM sync"
    assert main(["token", "list", "--data-dir", data, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(t["user"], t["scope"]) for t in listed] == [("olga", "read"), ("root", "admin")]
    assert all("secret" not in t for t in listed)
    assert main(["token", "list", "--data-dir", data, "--user", "root"]) == 0
    assert made["token_id"] in capsys.readouterr().out
    assert main(["token", "revoke", found.token_id, "--data-dir", data]) == 0
    assert "Revoked" in capsys.readouterr().out
    assert main(["token", "revoke", found.token_id, "--data-dir", data]) == 2
    with Store.open_sync(tmp_path / "data") as store:
        assert api_tokens.find(store.connection, secret) is None


def test_docs_api_md_names_every_operation(tmp_path: Path) -> None:
    """docs/api.md's table of operations keeps up with the route table."""
    from webinar.app import create_app

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    doc = create_app(make_config(tmp_path / "data"))[API].description()
    missing = []
    for op in operations(doc) + operations(doc, deprecated=True):
        parent, _slash, last = op.path.rpartition("/")
        if op.path not in text and not (parent in text and f"`/{last}`" in text):
            missing.append(f"{op.method} {op.path}")
    assert not missing, missing
