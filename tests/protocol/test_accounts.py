"""Accounts run from the browser, over real HTTP with the real SMTP server of the tests:
invitations (an invited organiser sets a password and sees only their events), password
resets (single-use, expiring, stored as hashes; the old password refused; every session
ended; the same answer for unknown addresses; limited), co-organisers and presenters, and
duplicating and deleting events (dashboard and API copy what the CLI copies), and the
active-events limit without cancelled and ended events."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import icalendar
import pytest

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer, make_config, running_server
from tests.smtp import Inbox, html_of, smtp_server, text_of
from webinar.accounts import hash_password
from webinar.config import Config, MailConfig
from webinar.interaction import store as ist
from webinar.rooms.cta import PreparedCta
from webinar.rooms.polls import Option, Poll, PollKind, PollQuestion, QuestionKind
from webinar.storage import accounts, api_tokens
from webinar.storage.api_tokens import Scope
from webinar.storage.records import to_db_time
from webinar.storage.store import Event, User
from webinar.ticketing import records
from webinar.ticketing.records import EventAccess, FormField

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new password 2031"
LINK = re.compile(r"(https?://\S+/login/(?:welcome|reset)#token=([\w-]+))")

Person = protocol_fixtures.MatchingPerson
people = protocol_fixtures.own_people


def mail_config(data: Path, inbox: Inbox, **ticketing: int) -> Config:
    base = make_config(data)
    return dataclasses.replace(
        base,
        mail=MailConfig(
            smtp_host="127.0.0.1",
            smtp_port=inbox.port,
            smtp_security="none",
            from_address="events@example.org",
        ),
        ticketing=dataclasses.replace(base.ticketing, **ticketing) if ticketing else base.ticketing,
    )


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as box:
        yield box


@pytest.fixture
async def server(tmp_path: Path, inbox: Inbox) -> AsyncIterator[RunningServer]:
    config = mail_config(tmp_path / "data", inbox)
    async with running_server(config.data_dir, config) as srv:
        yield srv


async def add_user(
    server: RunningServer, name: str, role: str = "organiser", email: str | None = None
) -> User:
    digest = hash_password(PASSWORD, n=2**12)
    return await server.store.run(lambda core: core.create_user(name, digest, role, email=email))


def browser() -> aiohttp.ClientSession:
    """Keeps cookies for 127.0.0.1, as a browser does (the forms' CSRF cookies)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def sign_in(
    server: RunningServer, name: str, password: str = PASSWORD, *, expect: int = 303
) -> aiohttp.ClientSession:
    http = browser()
    async with http.get(server.base_url + "/login") as resp:
        token = csrf_of(await resp.text())
    async with http.post(
        server.base_url + "/login",
        data={"csrf": token, "username": name, "password": password},
        allow_redirects=False,
    ) as resp:
        assert resp.status == expect, await resp.text()
    return http


async def submit(
    http: aiohttp.ClientSession, server: RunningServer, page: str, action: str, **fields: str
) -> tuple[int, str, str]:
    """Open ``page`` (for its CSRF token), post the form to ``action``: (status, body,
    Location)."""
    async with http.get(server.base_url + page) as resp:
        assert resp.status == 200, (page, resp.status)
        token = csrf_of(await resp.text())
    async with http.post(
        server.base_url + action, data={"csrf": token, **fields}, allow_redirects=False
    ) as resp:
        return resp.status, await resp.text(), resp.headers.get("Location", "")


def link_in(message: EmailMessage) -> tuple[str, str]:
    """(link, token) of an account e-mail, the same in its plain-text and HTML parts."""
    match = LINK.search(text_of(message))
    assert match, text_of(message)
    assert match.group(1) in html_of(message)
    return match.group(1), match.group(2)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def dashboard_ids(http: aiohttp.ClientSession, server: RunningServer) -> set[str]:
    async with http.get(server.base_url + "/dashboard", allow_redirects=False) as resp:
        assert resp.status == 200, resp.status
        return set(re.findall(r'data-event-id="(\d{3}-\d{3}-\d{3})"', await resp.text()))


async def check_link(
    http: aiohttp.ClientSession, server: RunningServer, kind: str, token: str
) -> Any:
    async with http.post(
        server.base_url + "/login/link", json={"kind": kind, "token": token}
    ) as resp:
        return resp.status, await resp.json()


async def api_token(
    server: RunningServer, user: User, scope: Scope = Scope.WRITE
) -> dict[str, str]:
    _made, secret = await server.store.run(
        lambda core: api_tokens.create(core.connection, user.user_id, "test", scope)
    )
    return {"Authorization": f"Bearer {secret}"}


# ------------------------------------------------------------------------------ invitations


async def test_an_invited_organiser_sets_a_password_and_sees_only_their_events(
    server: RunningServer, inbox: Inbox
) -> None:
    root = await add_user(server, "root", "admin", "root@example.org")
    olga = await add_user(server, "olga")
    olgas = await server.store.create_event("Olga's talk", None, owner_id=olga.user_id)
    shared = await server.store.create_event("Olga's second talk", None, owner_id=olga.user_id)
    roots = await server.store.create_event("Root's talk", None, owner_id=root.user_id)
    admin = await sign_in(server, "root")
    visitor = browser()
    ann: aiohttp.ClientSession | None = None
    try:
        # An organiser may not open People.
        olga_http = await sign_in(server, "olga")
        async with olga_http.get(server.base_url + "/dashboard/accounts") as resp:
            assert resp.status == 403
        await olga_http.close()

        status, page, _loc = await submit(
            admin,
            server,
            "/dashboard/accounts",
            "/dashboard/accounts/invite",
            email="Ann@Example.org",
            role="organiser",
        )
        assert status == 200, page
        assert 'data-testid="invitation-row" data-email="Ann@Example.org"' in page
        message = await inbox.wait_for("Ann@Example.org", "invited")
        link, token = link_in(message)
        assert link in page  # shown once to the admin as well
        assert message.get_content_type() == "multipart/alternative"
        assert "root invites you" in text_of(message)
        stored = await server.store.run_sql(
            lambda db: db.execute("SELECT token_hash FROM account_invitations").fetchall()
        )
        assert [tuple(r) for r in stored] == [(sha256(token),)]  # only the hash is kept

        # The page the link opens learns whose invitation it is.
        async with visitor.get(server.base_url + "/login/welcome") as resp:
            assert resp.status == 200
            assert resp.headers["Referrer-Policy"] == "no-referrer"
            csrf = csrf_of(await resp.text())
        assert await check_link(visitor, server, "welcome", token) == (
            200,
            {"email": "Ann@Example.org", "username": "Ann", "role": "organiser"},
        )
        assert (await check_link(visitor, server, "welcome", "x" * 43))[0] == 410
        form = {"csrf": csrf, "token": token, "username": "ann", "password": NEW_PASSWORD}
        async with visitor.post(
            server.base_url + "/login/welcome",
            data={**form, "password2": "something else entirely"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 400
            assert "the two passwords differ" in await resp.text()
        async with visitor.post(
            server.base_url + "/login/welcome",
            data={**form, "username": "olga", "password2": NEW_PASSWORD},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 400
            assert "is taken" in await resp.text()
        async with visitor.post(
            server.base_url + "/login/welcome",
            data={**form, "password2": NEW_PASSWORD},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/login?notice=welcome&username=ann"
        # The link works once.
        async with visitor.post(
            server.base_url + "/login/welcome",
            data={**form, "username": "ann2", "password2": NEW_PASSWORD},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 410
            assert "used already" in await resp.text()
        assert (await check_link(visitor, server, "welcome", token))[0] == 410

        # Ann signs in (by e-mail address too) and sees no event; then the one she is added to.
        ann = await sign_in(server, "ann@example.org", NEW_PASSWORD)
        assert await dashboard_ids(ann, server) == set()
        status, _page, _loc = await submit(
            admin,
            server,
            f"/dashboard/events/{shared.display_id}/team",
            f"/dashboard/events/{shared.display_id}/team/organisers",
            who="ann",
        )
        assert status == 303
        told = await inbox.wait_for("Ann@Example.org", "You co-organise")
        assert f"/dashboard/events/{shared.display_id}" in text_of(told)
        assert await dashboard_ids(ann, server) == {shared.display_id}
        for other in (olgas, roots):
            async with ann.get(f"{server.base_url}/dashboard/events/{other.display_id}") as resp:
                assert resp.status == 404
        async with ann.get(f"{server.base_url}/dashboard/events/{shared.display_id}") as resp:
            assert resp.status == 200
        async with ann.get(server.base_url + "/dashboard/accounts") as resp:
            assert resp.status == 403
        # The API sees the same.
        ann_user = await server.store.find_user("ann")
        assert ann_user is not None and ann_user.role == "organiser"
        headers = await api_token(server, ann_user, Scope.READ)
        async with ann.get(server.base_url + "/api/v1/events", headers=headers) as resp:
            listed = [e["event_id"] for e in (await resp.json())["items"]]
        assert listed == [shared.display_id]
        async with ann.get(
            f"{server.base_url}/api/v1/events/{olgas.display_id}", headers=headers
        ) as resp:
            assert resp.status == 404
    finally:
        await admin.close()
        await visitor.close()
        if ann is not None:
            await ann.close()


async def test_an_invitation_link_expires_and_a_new_one_replaces_it(
    server: RunningServer, inbox: Inbox
) -> None:
    await add_user(server, "root", "admin")
    admin = await sign_in(server, "root")
    visitor = browser()
    try:
        await submit(
            admin,
            server,
            "/dashboard/accounts",
            "/dashboard/accounts/invite",
            email="bob@example.org",
            role="admin",
        )
        _link, first = link_in(await inbox.wait_for("bob@example.org", "invited"))
        # Expired: the stored time is moved, not slept.
        past = to_db_time(datetime.now(UTC) - timedelta(seconds=1))
        await server.store.run_sql(
            lambda db: db.execute("UPDATE account_invitations SET expires_at = ?", (past,))
        )
        status, body = await check_link(visitor, server, "welcome", first)
        assert status == 410 and "expired" in body["message"]
        async with visitor.get(server.base_url + "/login/welcome") as resp:
            csrf = csrf_of(await resp.text())
        async with visitor.post(
            server.base_url + "/login/welcome",
            data={
                "csrf": csrf,
                "token": first,
                "username": "bob",
                "password": NEW_PASSWORD,
                "password2": NEW_PASSWORD,
            },
            allow_redirects=False,
        ) as resp:
            assert resp.status == 410
        # Sent again: a new link, the old one stays dead; bob becomes an admin.
        inbox.messages.clear()
        page = await admin.get(server.base_url + "/dashboard/accounts")
        html = await page.text()
        (invitation_id,) = re.findall(r"/dashboard/accounts/invitations/(\d+)/resend", html)
        async with admin.post(
            f"{server.base_url}/dashboard/accounts/invitations/{invitation_id}/resend",
            data={"csrf": csrf_of(html)},
        ) as resp:
            assert resp.status == 200
        _link, second = link_in(await inbox.wait_for("bob@example.org", "invited"))
        assert second != first
        assert (await check_link(visitor, server, "welcome", first))[0] == 410
        assert (await check_link(visitor, server, "welcome", second))[0] == 200
        async with visitor.post(
            server.base_url + "/login/welcome",
            data={
                "csrf": csrf,
                "token": second,
                "username": "bob",
                "password": NEW_PASSWORD,
                "password2": NEW_PASSWORD,
            },
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        bob = await server.store.find_user("bob@example.org")
        assert bob is not None and (bob.username, bob.role) == ("bob", "admin")
        # An address with an account cannot be invited again.
        status, page_text, _loc = await submit(
            admin,
            server,
            "/dashboard/accounts",
            "/dashboard/accounts/invite",
            email="BOB@example.org",
            role="organiser",
        )
        assert status == 400 and "has an account already" in page_text
    finally:
        await admin.close()
        await visitor.close()


# ------------------------------------------------------------------------------ password reset


async def request_reset(
    visitor: aiohttp.ClientSession, server: RunningServer, email: str
) -> tuple[int, str]:
    async with visitor.get(server.base_url + "/login/forgot") as resp:
        csrf = csrf_of(await resp.text())
    async with visitor.post(
        server.base_url + "/login/forgot", data={"csrf": csrf, "email": email}
    ) as resp:
        return resp.status, await resp.text()


async def set_password(
    visitor: aiohttp.ClientSession, server: RunningServer, token: str, password: str
) -> aiohttp.ClientResponse:
    async with visitor.get(server.base_url + "/login/reset") as resp:
        csrf = csrf_of(await resp.text())
    resp = await visitor.post(
        server.base_url + "/login/reset",
        data={"csrf": csrf, "token": token, "password": password, "password2": password},
        allow_redirects=False,
    )
    await resp.read()
    resp.release()
    return resp


async def test_a_password_reset_is_single_use_expires_and_ends_every_session(
    server: RunningServer, inbox: Inbox
) -> None:
    olga = await add_user(server, "olga", email="olga@example.org")
    laptop = await sign_in(server, "olga")
    phone = await sign_in(server, "olga@example.org")
    visitor = browser()
    try:
        assert await dashboard_ids(laptop, server) == set()
        status, known = await request_reset(visitor, server, "olga@example.org")
        assert status == 200 and 'data-testid="forgot-sent"' in known
        # No account enumeration: an unknown address gets the same answer (its own address
        # in it), and no e-mail goes anywhere.
        status, unknown = await request_reset(visitor, server, "nobody@example.org")
        assert status == 200
        assert unknown.replace("nobody@example.org", "olga@example.org") == known
        message = await inbox.wait_for("olga@example.org", "Set a new password")
        link, token = link_in(message)
        assert link.startswith(server.base_url + "/login/reset#token=")
        assert "olga" in text_of(message)
        await asyncio.sleep(0.2)
        assert inbox.to("nobody@example.org") == []
        stored = await server.store.run_sql(
            lambda db: db.execute("SELECT token_hash FROM password_resets").fetchall()
        )
        assert [tuple(r) for r in stored] == [(sha256(token),)]
        assert await check_link(visitor, server, "reset", token) == (
            200,
            {"email": "olga@example.org", "username": "olga"},
        )

        # Too short, then the new password.
        resp = await set_password(visitor, server, token, "short")
        assert resp.status == 400
        resp = await set_password(visitor, server, token, NEW_PASSWORD)
        assert resp.status == 303
        assert resp.headers["Location"] == "/login?notice=password-set&username=olga"
        # Every session of the account ended.
        for http in (laptop, phone):
            async with http.get(server.base_url + "/dashboard", allow_redirects=False) as got:
                assert (got.status, got.headers["Location"]) == (303, "/login")
        # The old password is refused, the new one works.
        refused = await sign_in(server, "olga", PASSWORD, expect=401)
        await refused.close()
        fresh = await sign_in(server, "olga", NEW_PASSWORD)
        await fresh.close()
        # The link works once.
        resp = await set_password(visitor, server, token, "yet another password 1")
        assert resp.status == 410
        assert (await check_link(visitor, server, "reset", token))[1]["message"].startswith(
            "This password link was used already"
        )
        notice = await inbox.wait_for("olga@example.org", "Your password was changed")
        assert "/login/forgot" in text_of(notice)

        # Another link right away is not sent (one a minute per account); a minute later it is.
        inbox.messages.clear()
        await request_reset(visitor, server, "olga")  # the user name works too
        await asyncio.sleep(0.3)
        assert inbox.to("olga@example.org") == []
        earlier = to_db_time(datetime.now(UTC) - timedelta(minutes=2))
        await server.store.run_sql(
            lambda db: db.execute("UPDATE password_resets SET created_at = ?", (earlier,))
        )
        await request_reset(visitor, server, "olga@example.org")
        _link, second = link_in(await inbox.wait_for("olga@example.org", "Set a new password"))
        # A newer link replaces the one before.
        await server.store.run_sql(
            lambda db: db.execute("UPDATE password_resets SET created_at = ?", (earlier,))
        )
        inbox.messages.clear()
        await request_reset(visitor, server, "olga@example.org")  # the fifth from here
        _link, third = link_in(await inbox.wait_for("olga@example.org", "Set a new password"))
        assert (await check_link(visitor, server, "reset", second))[0] == 410
        assert (await set_password(visitor, server, second, "the replaced one 1234")).status == 410
        # Expired: the stored time is moved, not slept.
        past = to_db_time(datetime.now(UTC) - timedelta(seconds=1))
        await server.store.run_sql(
            lambda db: db.execute(
                "UPDATE password_resets SET expires_at = ? WHERE token_hash = ?",
                (past, sha256(third)),
            )
        )
        resp = await set_password(visitor, server, third, "the expired one 1234")
        assert resp.status == 410
        status, body = await check_link(visitor, server, "reset", third)
        assert status == 410 and "expired" in body["message"]
        again = await sign_in(server, "olga", NEW_PASSWORD)  # unchanged
        await again.close()
        assert olga.user_id == (await server.store.find_user("olga")).user_id  # type: ignore[union-attr]
    finally:
        await laptop.close()
        await phone.close()
        await visitor.close()


async def test_password_link_requests_are_limited_per_address(
    server: RunningServer, inbox: Inbox
) -> None:
    await add_user(server, "olga", email="olga@example.org")
    visitor = browser()
    try:
        for _ in range(5):
            status, _page = await request_reset(visitor, server, "olga@example.org")
            assert status == 200
        status, page = await request_reset(visitor, server, "olga@example.org")
        assert status == 429 and "Too many requests" in page
        await asyncio.sleep(0.3)
        assert len(inbox.to("olga@example.org")) == 1  # one e-mail a minute per account
    finally:
        await visitor.close()


async def test_the_own_account_page_changes_the_password_and_ends_other_sessions(
    server: RunningServer, inbox: Inbox
) -> None:
    await add_user(server, "olga")
    here = await sign_in(server, "olga")
    there = await sign_in(server, "olga")
    try:
        status, page, _loc = await submit(
            here, server, "/dashboard/account", "/dashboard/account/email", email="olga@example.org"
        )
        assert status == 303
        status, page, _loc = await submit(
            here,
            server,
            "/dashboard/account",
            "/dashboard/account/password",
            current="not my password",
            password=NEW_PASSWORD,
            password2=NEW_PASSWORD,
        )
        assert status == 400 and "current password is not right" in page
        status, page, location = await submit(
            here,
            server,
            "/dashboard/account",
            "/dashboard/account/password",
            current=PASSWORD,
            password=NEW_PASSWORD,
            password2=NEW_PASSWORD,
        )
        assert (status, location) == (303, "/dashboard/account?notice=password")
        async with here.get(server.base_url + "/dashboard", allow_redirects=False) as resp:
            assert resp.status == 200  # this session stays
        async with there.get(server.base_url + "/dashboard", allow_redirects=False) as resp:
            assert resp.status == 303  # the other one ended
        await inbox.wait_for("olga@example.org", "Your password was changed")
    finally:
        await here.close()
        await there.close()


async def test_people_roles_and_the_last_admin(server: RunningServer, inbox: Inbox) -> None:
    await add_user(server, "root", "admin")
    olga = await add_user(server, "olga")
    admin = await sign_in(server, "root")
    try:
        status, _page, _loc = await submit(
            admin,
            server,
            "/dashboard/accounts",
            f"/dashboard/accounts/{olga.user_id}",
            email="olga@example.org",
            role="admin",
        )
        assert status == 303
        promoted = await server.store.find_user("olga")
        assert promoted is not None and (promoted.role, promoted.email) == (
            "admin",
            "olga@example.org",
        )
        # An admin sends a password link; demotes; removes.
        status, _page, location = await submit(
            admin, server, "/dashboard/accounts", f"/dashboard/accounts/{olga.user_id}/reset"
        )
        assert location == "/dashboard/accounts?notice=reset-sent"
        await inbox.wait_for("olga@example.org", "Set a new password")
        root = await server.store.find_user("root")
        assert root is not None
        status, page, _loc = await submit(
            admin, server, "/dashboard/accounts", f"/dashboard/accounts/{root.user_id}/remove"
        )
        assert status == 400 and "your own account" in page
        status, _page, _loc = await submit(
            admin, server, "/dashboard/accounts", f"/dashboard/accounts/{olga.user_id}/remove"
        )
        assert status == 303
        assert await server.store.find_user("olga") is None
        # The last admin stays one; a refused change changes nothing.
        with pytest.raises(ValueError, match="last admin"):
            await server.store.run(
                lambda core: accounts.set_role(core.connection, root.user_id, "organiser")
            )
        with pytest.raises(ValueError, match="last admin"):
            await server.store.run(
                lambda core: accounts.update_account(
                    core.connection, root.user_id, email="root@example.org", role="organiser"
                )
            )
        still = await server.store.find_user("root")
        assert still is not None and (still.role, still.email) == ("admin", None)
        status, page, _loc = await submit(
            admin,
            server,
            "/dashboard/accounts",
            f"/dashboard/accounts/{root.user_id}",
            email="root@example.org",
            role="organiser",
        )
        assert status == 400 and "your own role" in page
    finally:
        await admin.close()


# ------------------------------------------------------------------------------ team


async def test_co_organisers_and_presenters(server: RunningServer, inbox: Inbox) -> None:
    olga = await add_user(server, "olga", email="olga@example.org")
    ann = await add_user(server, "ann", email="ann@example.org")
    await add_user(server, "eve")
    starts = datetime.now(UTC) + timedelta(days=2)
    event = await server.store.create_event(
        "Team talk", starts, owner_id=olga.user_id, timezone="Europe/Prague", agenda="1. Hi"
    )
    base = f"/dashboard/events/{event.display_id}/team"
    owner = await sign_in(server, "olga")
    helper: aiohttp.ClientSession | None = None
    try:
        status, page, _loc = await submit(owner, server, base, base + "/organisers", who="nobody")
        assert status == 400 and "no account is called nobody" in page
        status, page, _loc = await submit(owner, server, base, base + "/organisers", who="olga")
        assert status == 400 and "owns this event" in page
        status, _page, _loc = await submit(
            owner, server, base, base + "/organisers", who="ann@example.org"
        )
        assert status == 303
        status, page, _loc = await submit(owner, server, base, base + "/organisers", who="ann")
        assert status == 400 and "co-organises this event already" in page

        helper = await sign_in(server, "ann")
        # A co-organiser adds a presenter: the link goes out by e-mail with the .ics.
        status, _page, location = await submit(
            helper, server, base, base + "/presenters", name="Linus", email="linus@example.org"
        )
        assert (status, location) == (303, base + "?notice=presenter-sent")
        message = await inbox.wait_for("linus@example.org", "Presenting: Team talk")
        link = f"{server.base_url}/e/{event.display_id}/present?key={event.presenter_key}"
        assert link in text_of(message) and link.replace("&", "&amp;") in html_of(message)
        assert "ann invites you to present" in text_of(message)
        (ics,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
        calendar = icalendar.Calendar.from_ical(ics.get_content())
        (vevent,) = calendar.walk("VEVENT")
        assert vevent.decoded("DTSTART") == starts.replace(microsecond=0).astimezone(
            vevent.decoded("DTSTART").tzinfo
        )
        async with helper.get(server.base_url + base) as resp:
            page = await resp.text()
        assert 'data-testid="presenter-row" data-email="linus@example.org"' in page
        # ... but chooses no co-organisers and deletes nothing.
        status, _page, _loc = await submit(helper, server, base, base + "/organisers", who="eve")
        assert status == 403
        status, _page, _loc = await submit(
            helper,
            server,
            base,
            f"/dashboard/events/{event.display_id}/delete",
            confirm=event.event_id,
        )
        assert status == 403
        headers = await api_token(server, ann)
        async with helper.delete(
            f"{server.base_url}/api/v1/events/{event.display_id}", headers=headers
        ) as resp:
            assert resp.status == 403
        async with helper.get(
            f"{server.base_url}/api/v1/events/{event.display_id}/organisers", headers=headers
        ) as resp:
            body = await resp.json()
        assert body["owner"] == {"username": "olga", "role": "organiser"}
        assert [o["username"] for o in body["items"]] == ["ann"]
        # A co-organiser may leave.
        status, _page, location = await submit(
            helper, server, base, base + f"/organisers/{ann.user_id}/remove"
        )
        assert (status, location) == (303, "/dashboard")
        async with helper.get(server.base_url + base) as resp:
            assert resp.status == 404
    finally:
        await owner.close()
        if helper is not None:
            await helper.close()


# ------------------------------------------------------------------------------ copy, delete


async def prepared_event(server: RunningServer, owner: User, co: User) -> Event:
    event = await server.store.create_event(
        "Prepared", datetime.now(UTC) + timedelta(days=3), owner_id=owner.user_id
    )
    event_id = event.event_id

    def prepare(core: Any) -> None:
        db = core.connection
        records.put_access(
            db, EventAccess(event_id, capacity=50, form_fields=(FormField("Company", True),))
        )
        ist.save_poll(
            core,
            event_id,
            Poll(
                poll_id="po_" + "1" * 16,
                title="Which?",
                kind=PollKind.POLL,
                questions=(
                    PollQuestion(
                        "q1", "Pick", QuestionKind.SINGLE, (Option("o1", "A"), Option("o2", "B"))
                    ),
                ),
                created_at=1.0,
            ),
        )
        ist.save_prepared_cta(
            core,
            event_id,
            PreparedCta("cp_" + "1" * 16, "Buy", "Go", "https://shop.example", 30, 1.0),
            limit=10,
        )
        now = datetime.now(UTC)
        accounts.add_organiser(
            db, event_id, co, owner_id=owner.user_id, added_by=owner.user_id, now=now
        )
        accounts.add_presenter(db, event_id, "Linus", "linus@example.org", now=now)
        records.add_invitee(db, event_id, "Grace", "grace@example.org")

    await server.store.run(prepare)
    return event


async def copy_holds(server: RunningServer, event_id: str) -> dict[str, Any]:
    def read(core: Any) -> dict[str, Any]:
        db = core.connection
        access = records.get_access(db, event_id)
        return {
            "polls": [p.title for p in ist.list_polls(core, event_id)],
            "ctas": [c.url for c in ist.list_prepared_ctas(core, event_id)],
            "form": [(f.label, f.required) for f in access.form_fields],
            "capacity": access.capacity,
            "organisers": [o.username for o in accounts.organisers(db, event_id)],
            "presenters": accounts.presenters(db, event_id),
            "invitees": records.count_people(db, event_id),
        }

    return await server.store.run(read)


async def test_duplicate_and_delete_from_the_dashboard_and_the_api(
    server: RunningServer, inbox: Inbox
) -> None:
    olga = await add_user(server, "olga")
    ann = await add_user(server, "ann")
    source = await prepared_event(server, olga, ann)
    owner = await sign_in(server, "olga")
    team = f"/dashboard/events/{source.display_id}/team"
    try:
        status, _page, location = await submit(
            owner,
            server,
            team,
            f"/dashboard/events/{source.display_id}/duplicate",
            title="Prepared again",
            start="2031-05-01T18:30",
        )
        assert status == 303 and location.endswith("?copied=1")
        copy_id = location.split("/")[-1].split("?")[0]
        copy = await server.store.get_event(copy_id)
        assert copy is not None and copy.event_id != source.event_id
        assert (copy.title, copy.owner_id, copy.presenter_key != source.presenter_key) == (
            "Prepared again",
            olga.user_id,
            True,
        )
        assert copy.starts_at == datetime(2031, 5, 1, 18, 30, tzinfo=UTC)  # the event's zone: UTC
        expected = {
            "polls": ["Which?"],
            "ctas": ["https://shop.example"],
            "form": [("Company", True)],
            "capacity": 50,
            "organisers": ["ann"],
            "presenters": [],
            "invitees": (0, 0),
        }
        assert await copy_holds(server, copy.event_id) == expected
        async with owner.get(f"{server.base_url}/dashboard/events/{copy_id}?copied=1") as resp:
            assert 'data-testid="copied-notice"' in await resp.text()
        # A start in the past is refused with the booking rule's words.
        status, page, _loc = await submit(
            owner,
            server,
            team,
            f"/dashboard/events/{source.display_id}/duplicate",
            start="2020-01-01T10:00",
        )
        assert status == 400 and "the start must be at least" in page

        # The API copies the same.
        headers = await api_token(server, olga)
        async with owner.post(
            f"{server.base_url}/api/v1/events/{source.display_id}/duplicate",
            json={"title": "By the API", "starts_at": None},
            headers=headers,
        ) as resp:
            assert resp.status == 201, await resp.text()
            body = await resp.json()
        assert body["copied_from"] == source.display_id
        assert body["copied"] == {
            "polls": 1,
            "images": 0,
            "calls_to_action": 1,
            "interaction_settings": False,
            "auto_record": False,
            "co_organisers": 1,
        }
        assert body["event"]["title"] == "By the API" and body["event"]["starts_at"] is None
        api_copy = await server.store.get_event(body["event"]["event_id"])
        assert api_copy is not None
        assert await copy_holds(server, api_copy.event_id) == expected

        # Deleting: the ID must be typed; a room with people in it is not deleted.
        delete = f"/dashboard/events/{source.display_id}/delete"
        status, page, _loc = await submit(owner, server, team, delete, confirm="123")
        assert status == 400 and "Type the event ID" in page
        await server.store.run_sql(
            lambda db: db.execute(
                "INSERT INTO attendance (event_id, person_key, participant_id, name, role,"
                " joined_at) VALUES (?, 'k1', 'p1', 'Ada', 'attendee', 1.0)",
                (source.event_id,),
            )
        )
        status, page, _loc = await submit(owner, server, team, delete, confirm=source.display_id)
        assert status == 409 and "room is open" in page
        async with owner.delete(
            f"{server.base_url}/api/v1/events/{source.display_id}", headers=headers
        ) as resp:
            assert resp.status == 409
        await server.store.run_sql(
            lambda db: db.execute("UPDATE attendance SET left_at = 2.0, leave_reason = 'left'")
        )
        status, _page, location = await submit(
            owner, server, team, delete, confirm=source.display_id
        )
        assert (status, location) == (303, "/dashboard?notice=deleted")
        assert await server.store.get_event(source.event_id) is None
        left = await server.store.run_sql(
            lambda db: [
                db.execute(
                    f"SELECT count(*) FROM {table} WHERE event_id = ?", (source.event_id,)
                ).fetchone()[0]
                for table in (
                    "event_presenters",
                    "event_organisers",
                    "invitees",
                    "attendance",
                    "polls",
                )
            ]
        )
        assert left == [0, 0, 0, 0, 0]  # people's data went with it
        async with owner.get(server.base_url + "/dashboard?notice=deleted") as resp:
            assert 'data-testid="dashboard-notice"' in await resp.text()
        # The API deletes the copy.
        async with owner.delete(
            f"{server.base_url}/api/v1/events/{api_copy.display_id}", headers=headers
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["deleted"] == api_copy.display_id
        assert await server.store.get_event(api_copy.event_id) is None
    finally:
        await owner.close()


async def test_cancelled_and_ended_events_leave_the_active_events_limit(
    tmp_path: Path, inbox: Inbox, people: list[Person]
) -> None:
    config = mail_config(tmp_path / "data", inbox, max_active_events=2)
    async with running_server(config.data_dir, config) as server:
        olga = await add_user(server, "olga")
        headers = await api_token(server, olga)
        soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        async with aiohttp.ClientSession(headers=headers) as api:

            async def create(title: str, starts_at: str | None = soon) -> tuple[int, Any]:
                async with api.post(
                    server.base_url + "/api/v1/events",
                    json={"title": title, "starts_at": starts_at},
                ) as resp:
                    return resp.status, await resp.json()

            status, first = await create("One")
            assert status == 201
            status, second = await create("Two", None)  # no start: a room open at once
            assert status == 201
            status, refused = await create("Three")
            assert (status, refused["error"]["rule"]) == (422, "max-active")
            # Duplicating is a new event: the same limit.
            async with api.post(
                f"{server.base_url}/api/v1/events/{first['event_id']}/duplicate", json={}
            ) as resp:
                assert resp.status == 422
                assert (await resp.json())["error"]["rule"] == "max-active"

            # A cancelled event no longer counts.
            async with api.post(
                f"{server.base_url}/api/v1/events/{first['event_id']}/cancel"
            ) as resp:
                assert resp.status == 200
            status, third = await create("Three")
            assert status == 201
            status, _refused = await create("Four")
            assert status == 422

            # An event ended for everyone no longer counts (the real room, the host's button).
            ended = await server.store.get_event(second["event_id"])
            assert ended is not None
            host = await helpers.join_person(server, people, Person, ended, "Host", ended.host_key)
            await helpers.join_person(server, people, Person, ended, "Att")
            await host.request("end-for-all")
            await host.wait("bye")
            for _ in range(50):
                status, fourth = await create("Four")
                if status == 201:
                    break
                await asyncio.sleep(0.1)
            assert status == 201, fourth
            status, _refused = await create("Five")
            assert status == 422

            # An event whose scheduled end is past no longer counts.
            over = to_db_time(datetime.now(UTC) - timedelta(hours=3))
            event_id = third["event_id"].replace("-", "")
            await server.store.run_sql(
                lambda db: db.execute(
                    "UPDATE events SET starts_at = ? WHERE event_id = ?", (over, event_id)
                )
            )
            status, _five = await create("Five")
            assert status == 201
            assert json.dumps(_five)  # a full event
