"""Signed join tokens (JWT) over real WebSockets and HTTP: a token signed by a test backend
admits by name and role; expired, wrong-key, wrong-event and malformed tokens and a replay on
a second device are refused with distinct codes; RS256 and EdDSA keys; the event's capacity;
a participant whose token expired comes back after a dropped connection; the keys' dashboard
page and API (the HS256 secret shown once, kept sealed)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer
from tests.join_tokens import PASSWORD, backend, organiser
from tests.protocol.test_dashboard import csrf_of
from tests.protocol.test_interaction_http import png
from webinar.app import TICKETING
from webinar.client.peer import ClientError
from webinar.storage.store import Event
from webinar.ticketing import SecondDevice, records
from webinar.ticketing.records import EventAccess, PaymentProvider

server = protocol_fixtures.server
people = protocol_fixtures.people
Person = protocol_fixtures.MatchingPerson


async def enter(
    server: RunningServer,
    people: list[Person],
    event: Event | str,
    token: str,
    *,
    client_id: str | None = None,
    **extra: Any,
) -> Person:
    person = await helpers.connect_person(server, people, Person)
    event_id = event.event_id if isinstance(event, Event) else event
    fields: dict[str, Any] = {"event_id": event_id, "name": "typed name", "join_token": token}
    if client_id is not None:
        fields["client_id"] = client_id
    person.joined = await person.request("join", **fields, **extra)
    return person


async def refused(
    server: RunningServer, people: list[Person], event: Event, token: str, **kw: Any
) -> ClientError:
    with pytest.raises(ClientError) as err:
        await enter(server, people, event, token, **kw)
    return err.value


def me(person: Person) -> dict[str, Any]:
    joined = person.joined
    found = [p for p in joined["participants"] if p["participant_id"] == joined["participant_id"]]
    assert found, joined
    return dict(found[0])


def hs256_by_hand(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """An HS256 JWT made without pyjwt (which refuses a PEM as an HMAC secret)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    head = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    return head + "." + part(hmac.new(key, head.encode(), hashlib.sha256).digest())


async def event_of(server: RunningServer, owner: int, **settings: Any) -> Event:
    return await server.store.create_event("Members' webinar", None, owner_id=owner, **settings)


async def set_access(server: RunningServer, access: EventAccess) -> None:
    await server.store.run(lambda core: records.put_access(core.connection, access))


# ----------------------------------------------------------------------------- entry


async def test_a_signed_token_admits_by_name_and_role(
    server: RunningServer, people: list[Person]
) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    # a password event: the token is the credential, no password is asked
    event = await event_of(server, owner, access_type="password")
    await set_access(server, EventAccess(event.event_id, attendee_password_hash="x"))

    ann = await enter(server, people, event, site.sign(event, name="  Ann   Smith "))
    assert ann.joined["role"] == "attendee"
    assert me(ann)["name"] == "Ann Smith"  # the token's name (tidied), not the typed one
    bob = await enter(
        server,
        people,
        event,
        site.sign(event.event_id, name="Bob Presenter", role="presenter", email="bob@example.org"),
    )
    assert bob.joined["role"] == "presenter" and me(bob)["name"] == "Bob Presenter"
    # the presenter sees the attendee by the token's name
    assert "Ann Smith" in {p["name"] for p in bob.joined["participants"]}


def documented_code(lang: str, heading: str) -> str:
    """The first ``lang`` code block after ``heading`` in docs/api.md."""
    text = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    return text.split(heading, 1)[1].split(f"```{lang}\n", 1)[1].split("```", 1)[0]


async def test_the_documented_python_example_signs_links_the_door_takes(
    server: RunningServer, people: list[Person]
) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    event = await event_of(server, owner)
    example: dict[str, Any] = {}
    exec(documented_code("python", "### Signing a link: Python"), example)
    example["KEY_ID"], example["SECRET"] = site.key.key_id, site.key.secret
    link = example["join_link"](event.display_id, "Doc Reader", "presenter", "doc@example.org")
    assert link.startswith(f"https://webinar.example.org/e/{event.display_id}?jwt=")
    person = await enter(server, people, event, link.split("?jwt=", 1)[1])
    assert me(person)["name"] == "Doc Reader" and person.joined["role"] == "presenter"


async def test_refusals_have_distinct_codes(server: RunningServer, people: list[Person]) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    other_owner = await organiser(server, "nina")
    stranger = await backend(server, other_owner)
    event = await event_of(server, owner)
    elsewhere = await event_of(server, owner)
    now = int(time.time())
    server.server.app[TICKETING].limiter.per_client = 1000  # forged tokens count: see below

    async def code(token: str) -> str:
        return (await refused(server, people, event, token)).code

    expired = site.sign(event, iat=now - 600, exp=now - 120)
    assert await code(expired) == "token-expired"
    wrong_key = site.sign(event, signing_key="x" * 43)
    assert await code(wrong_key) == "token-bad-signature"
    assert await code(site.sign(event, kid="jk_0000000000000000")) == "token-bad-signature"
    assert await code(stranger.sign(event)) == "token-bad-signature"  # another organiser's key
    assert await code(site.sign(elsewhere)) == "token-wrong-event"
    # malformed: what each says is the claim at fault
    for token, words in [
        (site.sign(event, iat=now, exp=now + 25 * 3600), "24 hours"),
        (site.sign(event, jti=None), "jti"),
        (site.sign(event, exp=None), "exp"),
        (site.sign(event, role="host"), "role"),
        (site.sign(event, name=" "), "name"),
        (site.sign(event, iat=now + 3600, exp=now + 3700), "not valid yet"),
        (site.sign(event, email="not an address"), "email"),
        ("not.a.jwt", "not a valid join token"),
    ]:
        err = await refused(server, people, event, token)
        assert (err.code, words in err.message) == ("token-invalid", True), (token, err)
    # an unsigned token ("alg": "none") names its key but not the key's algorithm
    unsigned = jwt.encode(
        {
            "event": event.event_id,
            "name": "X",
            "role": "presenter",
            "iat": now,
            "exp": now + 60,
            "jti": "j",
        },
        None,
        algorithm="none",
        headers={"kid": site.key.key_id},
    )
    assert await code(unsigned) == "token-bad-signature"
    # nobody got in; each refusal named what was wrong
    assert server.rooms.get(event.event_id) is None


async def test_a_replay_on_a_second_device(server: RunningServer, people: list[Person]) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    event = await event_of(server, owner)
    await set_access(server, EventAccess(event.event_id, second_device=SecondDevice.REFUSE))
    token = site.sign(event)
    first = await enter(server, people, event, token, client_id="laptop")
    err = await refused(server, people, event, token, client_id="phone")
    assert err.code == "ticket-in-use"
    # the same browser after a lost connection gets its place back
    await first.close()
    again = await enter(server, people, event, token, client_id="laptop")
    await again.request("leave")
    # once the first device left, the token works on another device
    await enter(server, people, event, token, client_id="phone")

    # takeover (the default): the new device gets in, the first is told and leaves
    await set_access(server, EventAccess(event.event_id))
    token = site.sign(event, name="Cy")
    laptop = await enter(server, people, event, token, client_id="laptop")
    await enter(server, people, event, token, client_id="phone")
    bye = await laptop.wait("bye")
    assert bye["reason"] == "taken-over"


async def test_a_ban_by_the_backends_user_id_holds_for_a_fresh_token(
    server: RunningServer, people: list[Person]
) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    event = await event_of(server, owner)
    host = await helpers.join_person(server, people, Person, event, "Host", event.host_key)
    troll = await enter(server, people, event, site.sign(event, name="Troll", sub="user-13"))
    await host.request("remove", participant_id=troll.joined["participant_id"], ban=True)
    err = await refused(server, people, event, site.sign(event, name="Troll 2", sub="user-13"))
    assert err.code == "banned"
    await enter(server, people, event, site.sign(event, name="Someone else", sub="user-14"))


async def test_rs256_and_eddsa_keys(server: RunningServer, people: list[Person]) -> None:
    owner = await organiser(server)
    event = await event_of(server, owner)
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_private = ed25519.Ed25519PrivateKey.generate()
    for private, alg in [(rsa_private, "RS256"), (ed_private, "EdDSA")]:
        pem = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        site = await backend(server, owner, public_key=pem, private=private)
        assert site.key.algorithm.value == alg and site.key.secret is None
        person = await enter(server, people, event, site.sign(event, name=f"By {alg}"))
        assert me(person)["name"] == f"By {alg}"
        # the classic confusion: HS256 "signed" with the public key as the secret
        forged = hs256_by_hand(
            {"alg": "HS256", "typ": "JWT", "kid": site.key.key_id},
            {
                "event": event.event_id,
                "name": "Mallory",
                "role": "presenter",
                "jti": "x",
                "iat": int(time.time()),
                "exp": int(time.time()) + 60,
            },
            pem.encode(),
        )
        assert (await refused(server, people, event, forged)).code == "token-bad-signature"
    # an RSA key under 2048 bits, or a private key, is not registered
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="2048"):
        await backend(
            server,
            owner,
            public_key=small.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode(),
        )
    private_pem = ed_private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ValueError, match="private key"):
        await backend(server, owner, public_key=private_pem)


async def test_an_admins_key_reaches_every_event(
    server: RunningServer, people: list[Person]
) -> None:
    admin = await organiser(server, "root", admin=True)
    owner = await organiser(server)
    site = await backend(server, admin)
    event = await event_of(server, owner)
    person = await enter(server, people, event, site.sign(event, name="Via admin"))
    assert person.joined["role"] == "attendee"


async def test_token_attendees_count_against_the_events_places(
    server: RunningServer, people: list[Person]
) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    event = await server.store.create_event(
        "Paid talk", datetime.now(UTC) + timedelta(minutes=3), owner_id=owner, access_type="paid"
    )
    await set_access(
        server, EventAccess(event.event_id, price_minor=2500, currency="EUR", capacity=3)
    )
    # two of the three places are sold to a registration
    await server.store.run(
        lambda core: records.add_registration(
            core.connection,
            event.event_id,
            first_name="Grace",
            last_name="Hopper",
            email="grace@example.org",
            seats=2,
            amount_minor=5000,
            currency="EUR",
            provider=PaymentProvider.MANUAL,
            capacity=3,
        )
    )
    first = await enter(server, people, event, site.sign(event, name="First"))
    err = await refused(server, people, event, site.sign(event, name="Second"))
    assert err.code == "room-full" and "3" in err.message
    # presenters are not attendees: they need no place
    await enter(server, people, event, site.sign(event, name="Speaker", role="presenter"))
    # a place is given back when its attendee leaves
    await first.request("leave")
    await enter(server, people, event, site.sign(event, name="Second"))


async def test_a_token_that_expired_in_the_room_still_brings_its_bearer_back(
    server: RunningServer, people: list[Person]
) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    event = await event_of(server, owner)
    ticketing = server.server.app[TICKETING]
    token = site.sign(event, lifetime=120)
    person = await enter(server, people, event, token, client_id="tablet")
    resume = person.joined["resume_token"]
    await person.client.close()  # the connection drops: the place is kept for the grace
    later = datetime.now(UTC) + timedelta(minutes=10)
    ticketing.clock = lambda: later
    # a new device cannot use the expired token …
    err = await refused(server, people, event, token, client_id="phone")
    assert err.code == "token-expired"
    # … its bearer, coming back with the resume token, can
    back = await enter(server, people, event, token, client_id="tablet", resume_token=resume)
    assert back.joined["resumed"] is True


async def test_forged_tokens_count_as_wrong_guesses(
    server: RunningServer, people: list[Person]
) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    event = await event_of(server, owner)
    limit = server.server.app[TICKETING].limiter.per_client
    for _ in range(limit):
        forged = site.sign(event, signing_key="guess" * 9)
        assert (await refused(server, people, event, forged)).code == "token-bad-signature"
    assert (await refused(server, people, event, site.sign(event))).code == "rate-limited"


# ----------------------------------------------------------------------------- the room page


async def test_the_room_page_of_a_token_shows_its_role(server: RunningServer) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    event = await event_of(server, owner, access_type="paid")
    presenter = site.sign(event, role="presenter", name="Pat")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base_url}/e/{event.display_id}?jwt={presenter}") as resp:
            page = await resp.text()
        assert 'data-role="presenter"' in page and "data-join-token" in page
        assert "Pat" in page and 'data-testid="access-code-input"' not in page
        assert event.presenter_key not in page  # the permanent key is never handed out
        attendee = site.sign(event, name="Ann")
        async with http.get(f"{server.base_url}/e/{event.display_id}?jwt={attendee}") as resp:
            page = await resp.text()
        assert 'data-role="attendee"' in page and "data-join-token" in page
        # a token that does not verify: the attendee's page, whose join says why
        async with http.get(f"{server.base_url}/e/{event.display_id}?jwt=x.y.z") as resp:
            page = await resp.text()
        assert resp.status == 200 and 'data-role="attendee"' in page


# ----------------------------------------------------------------------------- keys


async def signed_in(server: RunningServer, name: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(server.base_url + "/login") as resp:
        token = csrf_of(await resp.text())
    async with http.post(
        server.base_url + "/login",
        data={"csrf": token, "username": name, "password": PASSWORD},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303, await resp.text()
    return http


async def test_keys_on_the_dashboard(server: RunningServer, people: list[Person]) -> None:
    owner = await organiser(server)
    event = await event_of(server, owner)
    http = await signed_in(server, "olga")
    async with http:
        async with http.get(server.base_url + "/dashboard/join-keys") as resp:
            page = await resp.text()
            assert resp.status == 200 and 'data-testid="join-keys-empty"' in page
        csrf = csrf_of(page)
        async with http.post(
            server.base_url + "/dashboard/join-keys",
            data={"csrf": csrf, "label": "Members area", "kind": "secret"},
        ) as resp:
            page = await resp.text()
        assert resp.status == 200
        secret = page.split('data-testid="join-key-secret">')[1].split("<")[0]
        kid = page.split('data-testid="join-key-created-id">')[1].split("<")[0]
        assert len(secret) == 43 and kid.startswith("jk_")
        # shown once: never on the page again, and sealed at rest
        async with http.get(server.base_url + "/dashboard/join-keys") as resp:
            page = await resp.text()
        assert secret not in page and kid in page
        (stored,) = await server.store.run_sql(
            lambda db: db.execute("SELECT secret FROM join_keys").fetchone()
        )
        assert stored.startswith("s1.") and secret not in stored
        # the secret signs tokens the door accepts
        now = int(time.time())
        token = jwt.encode(
            {
                "event": event.display_id,
                "name": "Ann",
                "role": "attendee",
                "iat": now,
                "exp": now + 300,
                "jti": "one",
            },
            secret,
            algorithm="HS256",
            headers={"kid": kid},
        )
        await enter(server, people, event, token)
        # a private key is refused with a reason, nothing is added
        private = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        async with http.post(
            server.base_url + "/dashboard/join-keys",
            data={"csrf": csrf, "label": "Oops", "kind": "public", "public_key": private.decode()},
        ) as resp:
            assert resp.status == 400 and "private key" in await resp.text()
        # deleting the key stops its tokens at once
        async with http.post(
            f"{server.base_url}/dashboard/join-keys/{kid}/delete",
            data={"csrf": csrf},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        err = await refused(server, people, event, token.replace("one", "two"))
        assert err.code in ("token-bad-signature", "token-invalid")
        token2 = jwt.encode(
            {
                "event": event.display_id,
                "name": "Ann",
                "role": "attendee",
                "iat": now,
                "exp": now + 300,
                "jti": "two",
            },
            secret,
            algorithm="HS256",
            headers={"kid": kid},
        )
        assert (await refused(server, people, event, token2)).code == "token-bad-signature"
        # someone else's key cannot be deleted
        other = await backend(server, await organiser(server, "nina"))
        async with http.post(
            f"{server.base_url}/dashboard/join-keys/{other.key.key_id}/delete",
            data={"csrf": csrf},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 404


async def api_token(server: RunningServer, user_id: int) -> dict[str, str]:
    token = await server.store.run(
        lambda core: records.add_api_token(core.connection, user_id, "test")
    )
    return {"Authorization": f"Bearer {token}"}


async def test_keys_and_embedding_through_the_api(
    server: RunningServer, people: list[Person]
) -> None:
    owner = await organiser(server)
    event = await event_of(server, owner)
    auth = await api_token(server, owner)
    base = server.base_url + "/api/v1"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/join-keys") as resp:
            assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await resp.json())["error"]["code"] == "unauthorized"
        async with http.post(base + "/join-keys", json={"label": "CRM"}, headers=auth) as resp:
            assert resp.status == 201
            made = await resp.json()
        assert made["algorithm"] == "HS256" and len(made["secret"]) == 43
        async with http.get(base + "/join-keys", headers=auth) as resp:
            page = await resp.json()
        listed = page["items"]
        assert [k["key_id"] for k in listed] == [made["key_id"]] and page["next_cursor"] is None
        assert "secret" not in listed[0]
        now = int(time.time())
        token = jwt.encode(
            {
                "event": event.event_id,
                "name": "Api",
                "role": "presenter",
                "iat": now,
                "exp": now + 60,
                "jti": "a",
            },
            made["secret"],
            algorithm="HS256",
            headers={"kid": made["key_id"]},
        )
        assert (await enter(server, people, event, token)).joined["role"] == "presenter"
        pem = (
            ed25519.Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        async with http.post(
            base + "/join-keys",
            json={"label": "Edge", "algorithm": "RS256", "public_key": pem},
            headers=auth,
        ) as resp:
            assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid"
        async with http.post(
            base + "/join-keys", json={"label": "Edge", "public_key": pem}, headers=auth
        ) as resp:
            assert resp.status == 201 and (await resp.json())["algorithm"] == "EdDSA"
        async with http.post(
            base + "/join-keys", json={"label": "Edge", "algorithm": "EdDSA"}, headers=auth
        ) as resp:  # a public-key algorithm without the public key
            assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid"
        async with http.post(base + "/join-keys", json={"label": " "}, headers=auth) as resp:
            assert resp.status == 422 and (await resp.json())["error"]["code"] == "invalid"
        async with http.post(base + "/join-keys", json={"lable": "x"}, headers=auth) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "unknown-field"
        async with http.get(base + "/join-keys?limit=1", headers=auth) as resp:
            first = await resp.json()
        async with http.get(
            base + "/join-keys?cursor=" + first["next_cursor"], headers=auth
        ) as resp:
            rest = (await resp.json())["items"]
        assert len(first["items"]) == len(rest) == 1  # oldest first
        assert first["items"][0]["key_id"] == made["key_id"] and rest[0]["algorithm"] == "EdDSA"
        async with http.delete(f"{base}/join-keys/{made['key_id']}", headers=auth) as resp:
            assert resp.status == 204 and await resp.read() == b""
        async with http.delete(f"{base}/join-keys/{made['key_id']}", headers=auth) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "not-found"

        # embedding
        url = f"{base}/events/{event.display_id}/embed"
        async with http.get(url, headers=auth) as resp:
            embed = await resp.json()
        assert embed["origins"] == [] and embed["snippet"].startswith("<iframe src=")
        assert (
            'allow="camera; microphone; display-capture; autoplay; fullscreen"'
            in (embed["snippet"])
        )
        async with http.put(
            url,
            json={"origins": ["https://WWW.Example.org/", "http://127.0.0.3:8080"]},
            headers=auth,
        ) as resp:
            assert resp.status == 200, await resp.text()
            saved = await resp.json()
        assert saved["origins"] == ["http://127.0.0.3:8080", "https://www.example.org"]
        async with http.put(url, json={"origins": ["https://x.org/path"]}, headers=auth) as resp:
            assert resp.status == 422
            assert (await resp.json())["error"]["code"] == "invalid"
        async with http.put(url, json={"origins": "https://x.org"}, headers=auth) as resp:
            assert resp.status == 422
            assert (await resp.json())["error"]["code"] == "invalid"
        async with http.get(url, headers=auth) as resp:
            assert (await resp.json())["origins"] == saved["origins"]  # nothing changed
        nina = await api_token(server, await organiser(server, "nina"))
        async with http.get(url, headers=nina) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "not-found"


# ----------------------------------------------------------------------------- embedding


async def test_frame_ancestors_are_the_global_and_the_events_origins(
    tmp_path: Any,
) -> None:
    config = helpers.make_config(tmp_path / "data")
    config = dataclasses.replace(
        config, http=dataclasses.replace(config.http, embed_origins=("https://all.example",))
    )
    async with helpers.running_server(tmp_path / "data", config) as srv:
        owner = await organiser(srv)
        event = await event_of(srv, owner)
        other = await event_of(srv, owner)
        http = await signed_in(srv, "olga")
        async with http:
            page_url = f"{srv.base_url}/dashboard/events/{event.display_id}"
            async with http.get(page_url) as resp:
                page = await resp.text()
            assert 'data-testid="embed-snippet"' in page and "https://all.example" in page
            csrf = csrf_of(page)
            async with http.post(
                page_url + "/embed",
                data={"csrf": csrf, "origins": "https://site.example\nhttp://127.0.0.3:8080/"},
                allow_redirects=False,
            ) as resp:
                assert resp.status == 303
            async with http.post(
                page_url + "/embed", data={"csrf": csrf, "origins": "javascript:alert(1)"}
            ) as resp:
                assert resp.status == 400 and 'data-testid="embed-error"' in await resp.text()
            # the dashboard itself is never framed
            async with http.get(page_url) as resp:
                assert resp.headers["X-Frame-Options"] == "DENY"
                assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        async with aiohttp.ClientSession() as anon:
            for path in (
                f"/e/{event.display_id}",
                f"/e/{event.event_id}/present?key=" + event.presenter_key,
            ):
                async with anon.get(srv.base_url + path) as resp:
                    policy = resp.headers["Content-Security-Policy"]
                    page = await resp.text()
                assert (
                    "frame-ancestors https://all.example http://127.0.0.3:8080"
                    " https://site.example" in policy
                ), policy
                assert "X-Frame-Options" not in resp.headers
                assert (
                    'data-embed-origins="https://all.example http://127.0.0.3:8080'
                    ' https://site.example"' in page
                )
            async with anon.get(f"{srv.base_url}/e/{other.display_id}") as resp:
                policy = resp.headers["Content-Security-Policy"]
            assert policy.endswith("frame-ancestors https://all.example"), policy
            assert "site.example" not in policy


async def test_an_event_without_origins_is_never_framed(server: RunningServer) -> None:
    owner = await organiser(server)
    event = await event_of(server, owner)
    async with (
        aiohttp.ClientSession() as anon,
        anon.get(f"{server.base_url}/e/{event.display_id}") as resp,
    ):
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert 'data-embed-origins=""' in await resp.text()


async def test_a_presenter_token_uploads_poll_images_while_it_is_valid(
    server: RunningServer,
) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    event = await event_of(server, owner)
    url = f"{server.base_url}/api/events/{event.event_id}/images"
    image = png()
    async with aiohttp.ClientSession() as http:
        for token, status in [
            (site.sign(event, role="presenter"), 201),
            (site.sign(event, role="attendee"), 403),
            (site.sign(event, role="presenter", iat=1_700_000_000, exp=1_700_000_300), 403),
            (site.sign(event, role="presenter", signing_key="forged" * 8), 403),
        ]:
            async with http.post(url, data=image, headers={"X-Presenter-Key": token}) as resp:
                assert resp.status == status, await resp.text()
