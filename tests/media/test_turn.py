"""A client that may only use a TURN relay still gets media (real coturn on loopback)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import make_config, running_server
from webinar.client.media import ClipTrack, make_vp8_clip
from webinar.client.peer import WebinarClient
from webinar.config import TurnConfig
from webinar.turn import turn_credentials

pytestmark = pytest.mark.media
SECRET = "turn-shared-secret-for-tests"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[int]:
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("coturn is not installed (scripts/test installs the Debian package coturn)")
    port = free_udp_port()
    proc = subprocess.Popen(
        [
            binary,
            "-n",
            "--listening-ip=127.0.0.1",
            f"--listening-port={port}",
            "--relay-ip=127.0.0.1",
            "--min-port=49700",
            "--max-port=49800",
            "--use-auth-secret",
            f"--static-auth-secret={SECRET}",
            "--realm=webinar.test",
            "--allow-loopback-peers",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--fingerprint",
            f"--log-file={tmp_path / 'turn.log'}",
            f"--pidfile={tmp_path / 'turn.pid'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    assert proc.poll() is None, (tmp_path / "turn.log").read_text(errors="replace")[-2000:]
    yield port
    proc.terminate()
    proc.wait(timeout=10)


def test_turn_credentials_follow_the_rest_scheme() -> None:
    username, credential = turn_credentials("secret", "pa_1", 600, now=1_000_000)
    assert username == "1000600:pa_1"
    assert credential == "BDehBxOvF6RrYmqZzLG1hcXok+4="


async def test_relay_only_client_receives_media(tmp_path: Path, coturn: int) -> None:
    config = dataclasses.replace(
        make_config(tmp_path / "data"),
        turn=TurnConfig(urls=(f"turn:127.0.0.1:{coturn}?transport=udp",), secret=SECRET),
    )
    async with running_server(tmp_path / "data", config) as srv:
        event = await srv.create_event()
        presenter = WebinarClient(srv.base_url, host_addresses=["127.0.0.1"])
        viewer = WebinarClient(srv.base_url, mode="count", relay_only=True)
        try:
            await presenter.join(event.event_id, "P", event.presenter_key)
            joined = await viewer.join(event.event_id, "Behind a firewall")
            [turn] = joined["ice_servers"]
            assert turn["urls"] == [f"turn:127.0.0.1:{coturn}?transport=udp"]
            assert turn["username"].endswith(":" + joined["participant_id"])
            await presenter.publish(
                [(ClipTrack(make_vp8_clip(width=160, height=120, seconds=1)), "camera")]
            )
            deadline = time.monotonic() + 20
            while viewer.stats.packets["video"] < 30:
                assert time.monotonic() < deadline, "no media through the relay"
                await asyncio.sleep(0.2)
            assert viewer.subscribe_pc is not None
            [transport] = {t.receiver.transport for t in viewer.subscribe_pc.getTransceivers()}
            pair = transport.transport.iceGatherer._connection._nominated[1]
            assert pair.local_candidate.type == "relay"
        finally:
            await asyncio.gather(presenter.close(), viewer.close())
