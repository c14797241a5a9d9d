"""Behind a reverse proxy: X-Forwarded-For/-Proto believed from trusted proxies only."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import aiohttp

from tests.helpers import make_config, running_server
from webinar.accounts import hash_password
from webinar.config import Config, HttpConfig
from webinar.storage import api_tokens
from webinar.storage.api_tokens import Scope


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def _failed_logins(base: str, headers: dict[str, str], count: int) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for _ in range(count):
            async with http.get(base + "/login", headers=headers) as form:
                token = _csrf(await form.text())
            async with http.post(
                base + "/login",
                data={"csrf": token, "username": "nobody", "password": "wrong password"},
                headers=headers,
            ) as resp:
                statuses.append(resp.status)
    return statuses


def _config(tmp_path: Path, trusted: tuple[str, ...]) -> Config:
    config = make_config(tmp_path / "data")
    return dataclasses.replace(config, http=HttpConfig(trusted_proxies=trusted))


async def test_forwarded_client_address_from_a_trusted_proxy(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", _config(tmp_path, ("127.0.0.0/8",))) as srv:
        one = {"X-Forwarded-For": "198.51.100.1"}
        two = {"X-Forwarded-For": "203.0.113.9, 198.51.100.2"}  # the proxy appended the client
        # The sign-in rate limit counts per real client, not per proxy.
        assert await _failed_logins(srv.base_url, one, 6) == [401] * 5 + [429]
        assert await _failed_logins(srv.base_url, two, 1) == [401]
        # A client cannot dodge the limit by prepending addresses: the rightmost untrusted
        # entry is the one the proxy saw.
        spoofed = {"X-Forwarded-For": "192.0.2.77, 198.51.100.1"}
        assert await _failed_logins(srv.base_url, spoofed, 1) == [429]


async def test_forwarded_headers_ignored_from_untrusted_peers(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", _config(tmp_path, ("192.0.2.0/24",))) as srv:
        # The loopback peer is not a trusted proxy: every "client" is 127.0.0.1.
        statuses = []
        for n in range(6):
            statuses += await _failed_logins(
                srv.base_url, {"X-Forwarded-For": f"198.51.100.{n + 1}"}, 1
            )
        assert statuses == [401] * 5 + [429]
        async with (
            aiohttp.ClientSession() as http,
            http.get(srv.base_url + "/login", headers={"X-Forwarded-Proto": "https"}) as resp,
        ):
            assert "Secure" not in resp.headers["Set-Cookie"]


async def test_forwarded_proto_makes_cookies_secure_and_links_https(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", _config(tmp_path, ("127.0.0.1",))) as srv:
        with srv.store.connect_sync() as sync:
            sync.create_user("olga", hash_password("correct horse battery", n=2**12), "organiser")
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.5"}
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(srv.base_url + "/login", headers=headers) as form:
                assert "Secure" in form.headers["Set-Cookie"]
                token = _csrf(await form.text())
                login_cookie = form.cookies["webinar_login_csrf"].value
            # The jar keeps Secure cookies off plain HTTP; the proxy's client sent it over TLS.
            async with http.post(
                srv.base_url + "/login",
                data={"csrf": token, "username": "olga", "password": "correct horse battery"},
                headers={**headers, "Cookie": f"webinar_login_csrf={login_cookie}"},
                allow_redirects=False,
            ) as resp:
                assert resp.status == 303
                assert "Secure" in resp.headers["Set-Cookie"]
                session = resp.cookies["webinar_session"].value
        event = await srv.create_event("Proxied", owner_id=1)
        async with (
            aiohttp.ClientSession(cookies={"webinar_session": session}) as http,
            http.get(srv.base_url + "/dashboard", headers=headers) as page,
        ):
            html = await page.text()
            port = srv.base_url.rsplit(":", 1)[1]
            assert f"https://127.0.0.1:{port}/e/{event.display_id}" in html


async def test_metrics_from_loopback_refused_when_forwarded(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as srv, aiohttp.ClientSession() as http:
        async with http.get(srv.base_url + "/metrics") as direct:
            assert direct.status == 200
        # A proxy on the same machine must not turn the loopback rule into "public".
        forwarded = {"X-Forwarded-For": "198.51.100.1"}
        async with http.get(srv.base_url + "/metrics", headers=forwarded) as proxied:
            assert proxied.status == 403


async def test_metrics_from_elsewhere_with_an_admin_scoped_api_token(tmp_path: Path) -> None:
    """Prometheus elsewhere sends an admin-scoped API token; a read token is not enough."""
    async with running_server(tmp_path / "data") as srv, aiohttp.ClientSession() as http:
        admin = await srv.store.run(
            lambda core: core.create_user("root", hash_password("x" * 12, n=2**10), "admin")
        )
        secrets = {}
        for scope in (Scope.ADMIN, Scope.READ):
            _token, secrets[scope] = await srv.store.run(
                lambda core, scope=scope: api_tokens.create(
                    core.connection, admin.user_id, f"prometheus {scope}", scope
                )
            )
        forwarded = {"X-Forwarded-For": "198.51.100.1"}
        for scope, status in ((Scope.ADMIN, 200), (Scope.READ, 401)):
            headers = {**forwarded, "Authorization": f"Bearer {secrets[scope]}"}
            async with http.get(srv.base_url + "/metrics", headers=headers) as resp:
                assert resp.status == status, scope
        async with http.get(srv.base_url + "/metrics", headers=forwarded) as resp:
            assert resp.status == 403
