"""HTTPS served directly by `webinar serve`, and the certificate reloaded on SIGHUP."""

from __future__ import annotations

import asyncio
import signal
import ssl
import time
from pathlib import Path

import aiohttp

from tests.serving import client_context, make_certificate, peer_serial, start_server
from webinar.client.peer import SignallingClient


async def wait_serial(host: str, port: int, cert: Path, serial: int, within: float = 10) -> None:
    """Until a new connection is shown ``serial``; then it must also verify against ``cert``."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE  # the old certificate is still served for a moment
    deadline = time.monotonic() + within
    seen = None
    while time.monotonic() < deadline:
        seen = await peer_serial(host, port, probe)
        if seen == serial:
            assert await peer_serial(host, port, client_context(cert)) == serial
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"serial {seen}, expected {serial}")


async def test_https_and_wss_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    make_certificate(cert, key, serial=1001)
    server = start_server(
        tmp_path,
        {"WEBINAR_TLS_CERT_FILE": str(cert), "WEBINAR_TLS_KEY_FILE": str(key)},
        tls=client_context(cert),
    )
    try:
        await server.wait_healthy()
        event = server.create_event("Over TLS")
        assert event["attendee_url"].startswith("https://")  # links follow the scheme
        connector = aiohttp.TCPConnector(ssl=client_context(cert))
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(server.base_url + "/e/" + event["event_id"]) as page:
                assert page.status == 200
                assert "Over TLS" in await page.text()
            ws = SignallingClient(http, server.base_url.replace("https", "wss", 1) + "/ws")
            await ws.connect()
            welcome = await ws.request("hello", protocol=1)
            assert welcome["type"] == "welcome"
            joined = await ws.request("join", event_id=event["event_id"], name="Secure attendee")
            assert joined["type"] == "joined"
            await ws.close()
        # A plain-HTTP client gets no answer from the TLS port.
        async with aiohttp.ClientSession() as plain:
            try:
                async with plain.get(server.base_url.replace("https", "http", 1) + "/healthz"):
                    raise AssertionError("plain HTTP was answered on the TLS port")
            except aiohttp.ClientError:
                pass
    finally:
        _out, err = server.stop()
    assert "Traceback" not in err, err


async def test_sighup_reloads_the_certificate_and_keeps_websockets(tmp_path: Path) -> None:
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    make_certificate(cert, key, serial=2001)
    server = start_server(
        tmp_path,
        {"WEBINAR_TLS_CERT_FILE": str(cert), "WEBINAR_TLS_KEY_FILE": str(key)},
        tls=client_context(cert),
    )
    host, port = "127.0.0.1", int(server.base_url.rsplit(":", 1)[1])
    try:
        await server.wait_healthy()
        event = server.create_event("Renewal")
        assert await peer_serial(host, port, client_context(cert)) == 2001
        connector = aiohttp.TCPConnector(ssl=client_context(cert), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            ws = SignallingClient(http, f"wss://{host}:{port}/ws")
            await ws.connect()
            await ws.request("hello", protocol=1)
            await ws.request("join", event_id=event["event_id"], name="Stays")

            make_certificate(cert, key, serial=2002)  # a renewal: new key, new certificate
            server.proc.send_signal(signal.SIGHUP)
            await wait_serial(host, port, cert, 2002)

            # The WebSocket opened before the reload is still up and answered.
            assert not ws.closed
            pong = await ws.request("ping")
            assert pong["type"] == "pong"

            # A broken pair on SIGHUP is refused; the good certificate stays in use.
            good = tmp_path / "good.pem"
            good.write_bytes(cert.read_bytes())
            cert.write_text("not a certificate")
            server.proc.send_signal(signal.SIGHUP)
            await asyncio.sleep(1.0)
            assert await peer_serial(host, port, client_context(good)) == 2002
            assert (await ws.request("ping"))["type"] == "pong"
            await ws.close()
    finally:
        _out, err = server.stop()
    assert "Traceback" not in err, err
    assert "keeping the old certificate" in err
