"""The organiser's dashboard over real HTTP: sign-in, CSRF, ownership, scheduling."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import RunningServer, running_server
from webinar.accounts import hash_password
from webinar.cli import main


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    data = tmp_path / "data"
    async with running_server(data) as srv:
        yield srv


def add_user(server: RunningServer, name: str, admin: bool = False) -> None:
    with server.store.connect_sync() as sync:
        sync.create_user(
            name, hash_password("correct horse battery", n=2**12), "admin" if admin else "organiser"
        )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def sign_in(server: RunningServer, name: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(server.base_url + "/login") as resp:
        token = csrf_of(await resp.text())
    async with http.post(
        server.base_url + "/login",
        data={"csrf": token, "username": name, "password": "correct horse battery"},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303, await resp.text()
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    return http


async def schedule(http: aiohttp.ClientSession, base: str, **fields: str) -> str:
    async with http.get(base + "/dashboard/events/new") as resp:
        token = csrf_of(await resp.text())
    form = {
        "csrf": token,
        "title": "Launch",
        "start": "2031-03-30T10:00",
        "timezone": "Europe/Berlin",
        "duration_minutes": "90",
        "join_window_minutes": "10",
        "access_type": "open",
        "camera_limit": "5",
        "agenda": "",
        "lobby_message": "",
        "thank_you_url": "",
        **fields,
    }
    async with http.post(base + "/dashboard/events", data=form, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()
        return resp.headers["Location"].split("/")[-1].split("?")[0]


async def test_sign_in_schedule_edit(server: RunningServer) -> None:
    add_user(server, "olga")
    async with (
        aiohttp.ClientSession() as anon,
        anon.get(server.base_url + "/dashboard", allow_redirects=False) as resp,
    ):
        assert resp.status == 303 and resp.headers["Location"] == "/login"
    http = await sign_in(server, "olga")
    try:
        event_id = await schedule(http, server.base_url, title="Launch")
        event = await server.store.get_event(event_id)
        assert event is not None
        # 10:00 in Berlin on the day summer time starts is 08:00 UTC
        assert event.starts_at == datetime(2031, 3, 30, 8, 0, tzinfo=UTC)
        assert (event.timezone, event.duration_minutes, event.camera_limit) == (
            "Europe/Berlin",
            90,
            5,
        )
        async with http.get(server.base_url + "/dashboard") as resp:
            page = await resp.text()
        assert "Launch" in page and event_id in page
        async with http.get(f"{server.base_url}/dashboard/events/{event_id}") as resp:
            page = await resp.text()
        assert event.presenter_key in page and event.host_key in page
        token = csrf_of(page)
        form = {
            "csrf": token,
            "title": "Launch v2",
            "start": "2031-03-30T10:00",
            "timezone": "Europe/Berlin",
            "duration_minutes": "60",
            "join_window_minutes": "5",
            "access_type": "password",
            "attendee_password": "let-me-in-2031",  # a password event needs one
            "camera_limit": "7",
            "thank_you_url": "https://example.org/thanks",
        }
        async with http.post(
            f"{server.base_url}/dashboard/events/{event_id}", data=form, allow_redirects=False
        ) as resp:
            assert resp.status == 303
        updated = await server.store.get_event(event_id)
        assert updated is not None
        assert (updated.title, updated.camera_limit, updated.access_type) == (
            "Launch v2",
            7,
            "password",
        )
        assert updated.presenter_key == event.presenter_key  # keys stay
        form["timezone"] = "Mars/Olympus"
        async with http.post(f"{server.base_url}/dashboard/events/{event_id}", data=form) as resp:
            assert resp.status == 400
            assert "unknown time zone" in await resp.text()
    finally:
        await http.close()


async def test_csrf_is_required(server: RunningServer) -> None:
    add_user(server, "olga")
    http = await sign_in(server, "olga")
    try:
        async with http.post(
            server.base_url + "/dashboard/events", data={"title": "No token"}
        ) as resp:
            assert resp.status == 403
        async with http.post(server.base_url + "/logout", data={"csrf": "forged"}) as resp:
            assert resp.status == 403
    finally:
        await http.close()
    async with (
        aiohttp.ClientSession() as anon,
        anon.post(
            server.base_url + "/login",
            data={"csrf": "x", "username": "olga", "password": "correct horse battery"},
        ) as resp,
    ):
        assert resp.status == 403  # no matching double-submit cookie


async def test_organisers_see_only_their_events(server: RunningServer) -> None:
    add_user(server, "olga")
    add_user(server, "piotr")
    add_user(server, "root", admin=True)
    olga = await sign_in(server, "olga")
    piotr = await sign_in(server, "piotr")
    root = await sign_in(server, "root")
    try:
        event_id = await schedule(olga, server.base_url, title="Olga's talk")
        async with piotr.get(f"{server.base_url}/dashboard/events/{event_id}") as resp:
            assert resp.status == 404
        async with piotr.get(server.base_url + "/dashboard") as resp:
            assert "Olga&#39;s talk" not in await resp.text()
        async with root.get(server.base_url + "/dashboard") as resp:
            assert "Olga&#39;s talk" in await resp.text()
    finally:
        for http in (olga, piotr, root):
            await http.close()


async def test_failed_sign_ins_are_rate_limited(server: RunningServer) -> None:
    add_user(server, "olga")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        statuses = []
        for _ in range(7):
            async with http.get(server.base_url + "/login") as resp:
                token = csrf_of(await resp.text())
            async with http.post(
                server.base_url + "/login",
                data={"csrf": token, "username": "olga", "password": "wrong password!"},
            ) as resp:
                statuses.append(resp.status)
                text = await resp.text()
        assert statuses[:5] == [401] * 5
        assert statuses[5:] == [429, 429]
        assert "Try again in" in text


async def test_logout_ends_the_session(server: RunningServer) -> None:
    add_user(server, "olga")
    http = await sign_in(server, "olga")
    try:
        async with http.get(server.base_url + "/dashboard") as resp:
            token = csrf_of(await resp.text())
        async with http.post(
            server.base_url + "/logout", data={"csrf": token}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
        async with http.get(server.base_url + "/dashboard", allow_redirects=False) as resp:
            assert resp.status == 303
    finally:
        await http.close()


def test_cli_user_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    data = str(tmp_path / "data")
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["user", "add", "ola", "--password-stdin", "--data-dir", data]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["user", "add", "bob", "--password-stdin", "--data-dir", data]) == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["user", "add", "OLA", "--password-stdin", "--data-dir", data]) == 2  # exists
    capsys.readouterr()
    assert main(["user", "list", "--json", "--data-dir", data]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"username": "ola", "role": "organiser", "email": None}
    ]
    # E-mail addresses: one account each, set on add or later, cleared with ''.
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    add = ["user", "add", "eva", "--password-stdin", "--email", "Eva@example.org"]
    assert main([*add, "--admin", "--data-dir", data]) == 0
    assert main(["user", "email", "ola", "EVA@example.org", "--data-dir", data]) == 2  # taken
    assert main(["user", "email", "ola", "not an address", "--data-dir", data]) == 2
    assert main(["user", "email", "ola", "ola@example.org", "--data-dir", data]) == 0
    assert main(["user", "email", "eva", "", "--data-dir", data]) == 0
    capsys.readouterr()
    assert main(["user", "list", "--json", "--data-dir", data]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"username": "eva", "role": "admin", "email": None},
        {"username": "ola", "role": "organiser", "email": "ola@example.org"},
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("another long password\n"))
    assert main(["user", "passwd", "ola", "--password-stdin", "--data-dir", data]) == 0
    assert main(["user", "remove", "ola", "--data-dir", data]) == 0
    assert main(["user", "remove", "ola", "--data-dir", data]) == 2
