"""deploy/caddy/Caddyfile in front of a real server: HTTPS, the WebSocket, X-Forwarded-Proto."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import ssl
import time
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import make_config, running_server
from tests.serving import free_port
from webinar.client.peer import SignallingClient
from webinar.config import HttpConfig

CADDY = shutil.which("caddy")
CADDYFILE = Path(__file__).parents[2] / "deploy" / "caddy" / "Caddyfile"

pytestmark = pytest.mark.skipif(CADDY is None, reason="caddy is not installed (scripts/test does)")


def caddyfile(tmp: Path, upstream: int, https: int, http: int) -> str:
    """The shipped file, with a local certificate authority instead of Let's Encrypt."""
    site = CADDYFILE.read_text()
    site = site.replace("webinar.example.org {", f"localhost:{https} {{\n\ttls internal")
    site = site.replace("127.0.0.1:8080", f"127.0.0.1:{upstream}")
    return (
        "{\n\tadmin off\n\tskip_install_trust\n\tlocal_certs\n"
        f"\tstorage file_system {tmp / 'caddy-data'}\n\thttp_port {http}\n\thttps_port {https}\n"
        "}\n\n" + site
    )


async def wait_for_file(path: Path, proc: asyncio.subprocess.Process, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise AssertionError(f"caddy exited: {proc.returncode}")
        if await asyncio.to_thread(path.exists):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} did not appear")


async def test_caddyfile_proxies_https_and_websockets(tmp_path: Path) -> None:
    assert CADDY is not None
    config = dataclasses.replace(
        make_config(tmp_path / "data"), http=HttpConfig(trusted_proxies=("127.0.0.1", "::1"))
    )
    async with running_server(tmp_path / "data", config) as server:
        upstream = int(server.base_url.rsplit(":", 1)[1])
        https, http_port = free_port(), free_port()
        conf = tmp_path / "Caddyfile"
        conf.write_text(caddyfile(tmp_path, upstream, https, http_port))
        env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
        proc = await asyncio.create_subprocess_exec(
            CADDY, "run", "--config", str(conf), "--adapter", "caddyfile", env=env
        )
        try:
            root = tmp_path / "caddy-data" / "pki" / "authorities" / "local" / "root.crt"
            await wait_for_file(root, proc)
            trust = ssl.create_default_context(cafile=str(root))
            event = await server.create_event("Through Caddy")
            base = f"https://localhost:{https}"
            connector = aiohttp.TCPConnector(ssl=trust)
            async with aiohttp.ClientSession(connector=connector) as http:
                deadline = time.monotonic() + 20
                while True:  # the site certificate is issued a moment after the root
                    try:
                        async with http.get(f"{base}/e/{event.display_id}") as page:
                            assert page.status == 200
                            assert "Through Caddy" in await page.text()
                            break
                    except aiohttp.ClientConnectorError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.2)
                async with http.get(f"{base}/login") as login:
                    assert "Secure" in login.headers["Set-Cookie"]
                ws = SignallingClient(http, f"wss://localhost:{https}/ws")
                await ws.connect()
                assert (await ws.request("hello", protocol=1))["type"] == "welcome"
                joined = await ws.request("join", event_id=event.event_id, name="Via Caddy")
                assert joined["type"] == "joined"
                assert (await ws.request("ping"))["type"] == "pong"
                await ws.close()
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)
