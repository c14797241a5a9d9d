"""Helpers for tests that run `webinar serve` as a real process, with TLS when asked."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_certificate(cert_file: Path, key_file: Path, *, serial: int) -> None:
    """A self-signed certificate for 127.0.0.1 and localhost, written as two PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webinar test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written under temporary names and renamed, as certbot's renewals appear atomically.
    for path, data in (
        (key_file, key_pem),
        (cert_file, cert.public_bytes(serialization.Encoding.PEM)),
    ):
        partial = path.with_suffix(".tmp")
        partial.write_bytes(data)
        partial.replace(path)


def client_context(cert_file: Path) -> ssl.SSLContext:
    """Trusts exactly the test certificate; verifies the host name like a browser."""
    return ssl.create_default_context(cafile=str(cert_file))


async def peer_serial(host: str, port: int, context: ssl.SSLContext) -> int:
    """Serial number of the certificate a new TLS connection is shown."""
    _reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
        return int(x509.load_der_x509_certificate(der).serial_number)
    finally:
        writer.close()
        await writer.wait_closed()


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    base_url: str
    data_dir: Path
    env: dict[str, str]
    ssl: ssl.SSLContext | None = None
    lines: list[str] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "webinar", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=True,
        )

    def create_event(self, title: str) -> dict[str, str]:
        return dict(json.loads(self.cli("event", "create", "--title", title, "--json").stdout))

    async def wait_healthy(self, within: float = 30) -> None:
        deadline = time.monotonic() + within
        connector = aiohttp.TCPConnector(ssl=self.ssl) if self.ssl else None
        async with aiohttp.ClientSession(connector=connector) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    _out, err = self.proc.communicate()
                    raise AssertionError(f"server exited early ({self.proc.returncode}): {err}")
                try:
                    async with http.get(self.base_url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError("server did not become healthy")

    async def wait_exit(self, within: float) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.proc.wait, within)

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            return self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            # a child of the server still holds its output open: fail this test, not a later
            # one whose garbage collection would find the pipes unclosed
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
            raise


def start_server(
    tmp_path: Path,
    extra_env: dict[str, str] | None = None,
    *,
    tls: ssl.SSLContext | None = None,
    args: list[str] | None = None,
) -> ServerProcess:
    """``webinar serve`` on a free port of 127.0.0.1 with ``args`` added (e.g. ``--workers``)."""
    env = {
        **os.environ,
        "WEBINAR_ICE_HOST_ADDRESSES": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    data = tmp_path / "data"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webinar",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            *(args or []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    scheme = "https" if tls is not None else "http"
    return ServerProcess(proc, f"{scheme}://127.0.0.1:{port}", data, env, tls)


def free_port_run(count: int) -> int:
    """A base port whose ``count - 1`` next ports are free too (workers' direct ports)."""
    for _ in range(100):
        base = free_port()
        if base + count > 65535:
            continue
        try:
            for k in range(1, count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", base + k))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} free ports in a row")
