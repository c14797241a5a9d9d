"""A real RTMP ingest for tests: Debian's ``nginx`` with ``libnginx-mod-rtmp`` (``scripts/test``
installs both), started in the test's temporary folder on a free loopback port.

The ``live`` application accepts any stream key and records every publish to its own FLV
file in ``server.records`` (``<key>-<time>.flv``), which the test decodes with PyAV.
``kill()`` takes the server away abruptly (SIGKILL: connections reset, as when an ingest
fails) and ``start()`` brings it back on the same port.

:class:`TlsFront` puts TLS in front of it (RTMPS, as YouTube's and Facebook's ingests have):
a small TLS-terminating relay with a self-signed certificate for 127.0.0.1 on a thread.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import free_port, make_certificate

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
AVAILABLE = NGINX is not None and MODULE.exists()
SKIP_REASON = "nginx with libnginx-mod-rtmp is not installed (scripts/test installs it)"


class RtmpServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.records = folder / "records"
        self.records.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"rtmp://127.0.0.1:{self.port}/live"
        self.proc: subprocess.Popen[bytes] | None = None
        self.config = folder / "nginx-rtmp.conf"
        self.log = folder / "error.log"
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.config.write_text(
            f"load_module {MODULE};\n{user}daemon off;\nmaster_process off;\n"
            f"pid {folder / 'nginx.pid'};\nerror_log {self.log} info;\n"
            "events {}\n"
            f"rtmp {{\n  server {{\n    listen 127.0.0.1:{self.port};\n    chunk_size 4096;\n"
            "    application live {\n      live on;\n      record all;\n"
            f"      record_path {self.records};\n      record_unique on;\n    }}\n  }}\n}}\n"
        )

    def start(self) -> None:
        assert NGINX is not None and self.proc is None
        stderr = self.folder / "stderr.log"
        with stderr.open("ab") as err:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [NGINX, "-c", str(self.config), "-p", str(self.folder), "-e", str(self.log)],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                said = (self.folder / "stderr.log").read_text() + self.log.read_text()
                self.proc = None
                raise AssertionError(f"nginx-rtmp exited: {said}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx-rtmp did not listen")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def recordings(self) -> list[Path]:
        """The FLV files written so far, oldest first."""
        return sorted(self.records.glob("*.flv"), key=lambda p: p.stat().st_mtime_ns)


@pytest.fixture
def rtmp_server(tmp_path: Path) -> Iterator[RtmpServer]:
    if not AVAILABLE:
        pytest.skip(SKIP_REASON)
    server = RtmpServer(tmp_path / "rtmp")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TlsFront:
    """``rtmps://127.0.0.1:<port>/live`` relayed as plain RTMP to ``server``: an asyncio
    TLS server on a thread of its own (one SSL object per connection, one thread)."""

    def __init__(self, server: RtmpServer) -> None:
        cert, key = server.folder / "tls-cert.pem", server.folder / "tls-key.pem"
        make_certificate(cert, key, serial=2201)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.target = server.port
        self.handshakes = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        self.port: int = started.result(10)
        self.url = f"rtmps://127.0.0.1:{self.port}/live"

    async def _start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=self.context)
        return int(self.server.sockets[0].getsockname()[1])

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
