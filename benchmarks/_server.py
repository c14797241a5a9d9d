"""Our server as a subprocess for the signalling benchmarks (``chat.py``, ``soak.py``): a fresh
data folder, one event, a free port on 127.0.0.1, and no per-address socket cap, since every
client is on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """The process's resident memory (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmRSS")


@dataclass
class Started:
    proc: subprocess.Popen[bytes]
    url: str
    event: dict[str, Any]  # what `webinar event create --json` printed
    log: Path

    def stop(self) -> None:
        """SIGINT (a graceful stop), then SIGKILL if it takes over 10 s."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(tmp: Path, title: str, extra_env: Mapping[str, str] | None = None) -> Started:
    """Create one event titled ``title`` and serve it until the caller stops ``proc``.

    The server sees no ``WEBINAR_*`` variable of the caller's environment; ``extra_env``
    (e.g. ``WEBINAR_ROOMS_MAX_PARTICIPANTS``) is added to what it does see."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBINAR_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["WEBINAR_SIGNALLING_MAX_SOCKETS_PER_ADDRESS"] = "0"  # every client is on loopback
    env.update(extra_env or {})
    data_dir = tmp / "data"
    created = subprocess.run(
        [
            *(sys.executable, "-m", "webinar", "event", "create"),
            *("--title", title, "--json", "--data-dir", str(data_dir)),
        ],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    event = json.loads(created.stdout)
    port = free_port()
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "webinar", "serve", "--host", LOOPBACK),
                *("--port", str(port), "--data-dir", str(data_dir)),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{LOOPBACK}:{port}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 30
    while True:
        try:
            with opener.open(url + "/healthz", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not start:\n{log.read_text()[-2000:]}"
                ) from None
            time.sleep(0.1)
    return Started(proc, url, event, log)
