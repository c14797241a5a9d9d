"""`webinar serve` as a real process: demo event, health, clean shutdown on signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest

from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.client.peer import WebinarClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webinar", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )


async def wait_healthy(url: str, proc: subprocess.Popen[str], within: float = 20) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited early: {proc.returncode}")
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("server did not become healthy")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_serve_shuts_down_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    env = {
        **os.environ,
        "WEBINAR_ICE_HOST_ADDRESSES": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        # SIGTERM drains first (tests/protocol/test_drain.py); keep the wait short here.
        "WEBINAR_LIFECYCLE_DRAIN_SECONDS": "1",
    }
    data = str(tmp_path / "data")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived server, waited for in a thread
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
            data,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    clients: list[WebinarClient] = []
    try:
        await wait_healthy(base, proc)
        created = json.loads(
            cli(
                "event", "create", "--title", "Signals", "--json", "--data-dir", data, env=env
            ).stdout
        )
        key = parse_qs(urlparse(created["presenter_url"]).query)["key"][0]
        presenter = WebinarClient(base, host_addresses=["127.0.0.1"])
        viewer = WebinarClient(base, mode="count", host_addresses=["127.0.0.1"])
        clients += [presenter, viewer]
        await presenter.join(created["event_id"], "P", key)
        await viewer.join(created["event_id"], "V")
        await presenter.publish(
            [
                (ClipTrack(make_vp8_clip(width=160, height=120, seconds=1)), "camera"),
                (ClipTrack(make_opus_clip(seconds=1)), "microphone"),
            ]
        )
        deadline = time.monotonic() + 15
        while viewer.stats.packets["video"] == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert viewer.stats.packets["video"] > 0
        started = time.monotonic()
        proc.send_signal(signum)
        assert viewer.signalling is not None
        bye = await viewer.signalling.wait_for("bye", within=10)
        assert bye["reason"] == "shutdown"
        code = await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15)
        assert code == 0
        assert time.monotonic() - started < 10
        out, err = proc.communicate(timeout=5)
        assert "Demo webinar" in out  # the first start made a demo event
        for bad in ("Traceback", "Task was destroyed", "Exception ignored"):
            assert bad not in err, err
    finally:
        for c in clients:
            await c.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
