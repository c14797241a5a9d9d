"""deploy/nginx/webinar.conf in front of a real server: HTTPS, the WebSocket upgrade, proto."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import shutil
import time
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import make_config, running_server
from tests.serving import client_context, free_port, make_certificate
from webinar.client.peer import SignallingClient
from webinar.config import HttpConfig

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SNIPPET = Path(__file__).parents[2] / "deploy" / "nginx" / "webinar.conf"

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/test does)")


def site_config(tmp: Path, upstream: int, https: int, http: int, cert: Path, key: Path) -> str:
    """The shipped snippet, with only addresses and certificate paths changed."""
    text = SNIPPET.read_text()
    text = re.sub(r"^\s*listen \[::\]:.*\n", "", text, flags=re.M)
    text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{https} ssl")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http};")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{upstream}")
    text = text.replace("/etc/letsencrypt/live/webinar.example.org/fullchain.pem", str(cert))
    text = text.replace("/etc/letsencrypt/live/webinar.example.org/privkey.pem", str(key))
    return text


def main_config(tmp: Path, site: Path) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    temps = "\n".join(
        f"    {name}_temp_path {tmp / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'};\n"
        f"events {{}}\nhttp {{\n    access_log off;\n{temps}\n    include {site};\n}}\n"
    )


async def wait_port(port: int, proc: asyncio.subprocess.Process, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise AssertionError(f"nginx exited: {proc.returncode}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError("nginx did not listen")


async def test_nginx_snippet_proxies_https_and_websockets(tmp_path: Path) -> None:
    assert NGINX is not None
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_certificate(cert, key, serial=77)
    config = dataclasses.replace(
        make_config(tmp_path / "data"), http=HttpConfig(trusted_proxies=("127.0.0.1",))
    )
    async with running_server(tmp_path / "data", config) as server:
        upstream = int(server.base_url.rsplit(":", 1)[1])
        https, http_port = free_port(), free_port()
        site = tmp_path / "webinar.conf"
        site.write_text(site_config(tmp_path, upstream, https, http_port, cert, key))
        main = tmp_path / "nginx.conf"
        main.write_text(main_config(tmp_path, site))
        check = await asyncio.create_subprocess_exec(
            NGINX, "-t", "-c", str(main), stderr=asyncio.subprocess.PIPE
        )
        _, errors = await check.communicate()
        assert check.returncode == 0, errors.decode()
        proc = await asyncio.create_subprocess_exec(NGINX, "-c", str(main), "-g", "daemon off;")
        try:
            await wait_port(https, proc)
            event = await server.create_event("Through nginx")
            base = f"https://127.0.0.1:{https}"
            connector = aiohttp.TCPConnector(ssl=client_context(cert))
            async with aiohttp.ClientSession(connector=connector) as http:
                async with http.get(f"{base}/e/{event.display_id}") as page:
                    assert page.status == 200
                    assert "Through nginx" in await page.text()
                # X-Forwarded-Proto from the trusted proxy: the server knows it is HTTPS.
                async with http.get(f"{base}/login") as login:
                    assert "Secure" in login.headers["Set-Cookie"]
                ws = SignallingClient(http, f"wss://127.0.0.1:{https}/ws")
                await ws.connect()
                assert (await ws.request("hello", protocol=1))["type"] == "welcome"
                joined = await ws.request("join", event_id=event.event_id, name="Proxied")
                assert joined["type"] == "joined"
                assert (await ws.request("ping"))["type"] == "pong"
                await ws.close()
            async with (
                aiohttp.ClientSession() as plain,
                plain.get(f"http://127.0.0.1:{http_port}/e/x", allow_redirects=False) as moved,
            ):
                assert moved.status == 301
                assert moved.headers["Location"].startswith("https://")
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
