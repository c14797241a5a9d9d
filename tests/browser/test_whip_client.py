"""A WebRTC stack we did not write publishes into a room: Debian's ``simple-whip-client``
(GStreamer's webrtcbin, libnice) sends a GStreamer test pattern and tone through
``/whip/{event}``; a Chromium attendee decodes its frames and hears it; stopping the client
(SIGINT: it sends DELETE) removes the tile; a bad token is refused with 401.

Two things the machine needs, both set up here:

- libnice leaves loopback addresses out of its candidates, and the tests' private network
  namespace has nothing else: a veth pair gives it an address (created only where there is
  no non-loopback IPv4 address at all, i.e. never on a real host), and the server gathers on
  that address too.
- bookworm's whip-client aborts at start ("libsoup2 symbols detected"): it links libsoup 2,
  libnice pulls in libsoup 3. ``tests/tools/soup_shim.c``, preloaded, lets it run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser.support import OpenPage, expect_plays_presenter, join_attendee
from tests.helpers import LOOPBACK, RunningServer, make_config, running_server
from webinar.config import IceConfig

pytestmark = pytest.mark.browser

SHIM_SOURCE = Path(__file__).resolve().parents[1] / "tools" / "soup_shim.c"
VETH = ("whiptest0", "whiptest1")
VETH_ADDRESS = "10.213.0.1"
AUDIO = (
    "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! queue"
    " ! opusenc ! rtpopuspay pt=100 ssrc=1 ! queue"
    " ! application/x-rtp,media=audio,encoding-name=OPUS,payload=100"
)
VIDEO = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1"
    " ! videoconvert ! queue ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96 ssrc=2"
    " ! queue ! application/x-rtp,media=video,encoding-name=VP8,payload=96"
)


def _global_ipv4() -> str | None:
    found = subprocess.run(
        ["ip", "-j", "-4", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    )
    for link in json.loads(found.stdout or "[]"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet" and info.get("local"):
                return str(info["local"])
    return None


def _wait_until_up(link: str, within: float = 10.0) -> None:
    """The veth has its carrier and its address is no longer tentative: the network has
    settled before any browser looks at it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["ip", "-j", "addr", "show", "dev", link], capture_output=True, text=True, check=True
        )
        [info] = json.loads(found.stdout)
        settled = info.get("operstate") == "UP" and not any(
            a.get("tentative") for a in info.get("addr_info", [])
        )
        if settled:
            time.sleep(0.5)
            return
        time.sleep(0.1)
    pytest.fail(f"{link} did not come up within {within} s")


@pytest.fixture(scope="module")
def media_address() -> Iterator[str]:
    """A non-loopback IPv4 address libnice gathers on (a veth pair in a network namespace
    that has only loopback, removed afterwards)."""
    if shutil.which("ip") is None:
        pytest.fail("ip (iproute2) is missing: apt-get install iproute2")
    address = _global_ipv4()
    if address is not None:
        yield address
        return
    a, b = VETH
    try:
        subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
        for end in (a, b):
            # No IPv6 link-local addresses appearing a moment later: Chromium takes each new
            # address for a network change and aborts the page's loads (ERR_NETWORK_CHANGED).
            subprocess.run(["ip", "link", "set", end, "addrgenmode", "none"], check=True)
        subprocess.run(["ip", "addr", "add", f"{VETH_ADDRESS}/30", "dev", a], check=True)
        subprocess.run(["ip", "link", "set", a, "up"], check=True)
        subprocess.run(["ip", "link", "set", b, "up"], check=True)
        _wait_until_up(a)
    except subprocess.CalledProcessError as exc:
        pytest.fail(
            f"this network namespace has only loopback and a veth pair cannot be made ({exc});"
            " run the tests as scripts/test does (unshare -n as root)"
        )
    try:
        yield VETH_ADDRESS
    finally:
        subprocess.run(["ip", "link", "del", a], check=False)


@pytest.fixture(scope="module")
def whip_client(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """The whip-client command and the environment it starts in (the libsoup shim)."""
    binary = shutil.which("whip-client")
    if binary is None:
        pytest.fail("whip-client is missing: apt-get install simple-whip-client (scripts/test)")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("a C compiler is missing for tests/tools/soup_shim.c: apt-get install gcc")
    shim = tmp_path_factory.mktemp("whip") / "soup_shim.so"
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(shim), str(SHIM_SOURCE), "-ldl"], check=True
    )
    return binary, {**os.environ, "LD_PRELOAD": str(shim)}


@pytest.fixture
async def server(tmp_path: Path, media_address: str) -> AsyncIterator[RunningServer]:
    """The server gathering on loopback (Chromium) and on ``media_address`` (libnice)."""
    config = make_config(tmp_path / "data")
    ice = IceConfig(host_addresses=(LOOPBACK, media_address))
    async with running_server(tmp_path / "data", dataclasses.replace(config, ice=ice)) as srv:
        yield srv


class WhipClient:
    """One whip-client process; its output is kept."""

    def __init__(self, command: tuple[str, dict[str, str]]) -> None:
        self.binary, self.env = command
        self.process: asyncio.subprocess.Process | None = None
        self.output: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self, url: str, token: str) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.binary,
            "--url",
            url,
            "--token",
            token,
            "--audio",
            AUDIO,
            "--video",
            VIDEO,
            "--log-level",
            "5",
            "--disable-colors",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            self.output.append(line.decode(errors="replace").rstrip())

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.output)

    async def interrupt(self, within: float = 15.0) -> int:
        """Ctrl-C, as a person stops it (it sends DELETE first); its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.process.wait(), within)

    async def wait(self, within: float = 15.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), within)

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def log(self) -> str:
        return "\n".join(self.output[-60:])

    def resource_url(self) -> str | None:
        """The WHIP resource the server made for this client, as it printed it."""
        marker = "[WHIP] Resource URL: "
        for line in self.output:
            if marker in line:
                return line.split(marker, 1)[1].strip()
        return None

    async def connected_or_crashed(self, within: float = 20.0) -> bool:
        """Wait until it says its PeerConnection connected (True) or it died of a signal
        before that (False: the crash, not the server, is what went wrong); either way
        at most ``within`` seconds (then True: the caller's own checks report)."""
        assert self.process is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.saw("PeerConnection connected"):
                return True
            code = self.process.returncode
            if code is not None:
                return code >= 0
            await asyncio.sleep(0.1)
        return True


async def start_encoder(
    command: tuple[str, dict[str, str]], clients: list[WhipClient], url: str, token: str
) -> WhipClient:
    """A whip-client publishing at ``url``. Debian's build now and then aborts in its own
    heap while it applies the answer ("munmap_chunk(): invalid pointer", a few runs in a
    hundred, before it has gathered a candidate): once, its WHIP resource is deleted (as an
    operator would after an encoder crashed) and a second one started."""
    for attempt in (1, 2):
        encoder = WhipClient(command)
        clients.append(encoder)
        await encoder.start(url, token)
        if attempt == 2 or await encoder.connected_or_crashed():
            return encoder
        print("whip-client crashed before connecting; once more. It said:\n" + encoder.log())
        resource = encoder.resource_url()
        if resource is not None:
            async with (
                aiohttp.ClientSession() as http,
                http.delete(resource, headers={"Authorization": f"Bearer {token}"}) as gone,
            ):
                assert gone.status in (200, 204), gone.status
    raise AssertionError("unreachable")


@pytest.fixture
async def clients(whip_client: tuple[str, dict[str, str]]) -> AsyncIterator[list[WhipClient]]:
    made: list[WhipClient] = []
    yield made
    for c in made:
        await c.close()


async def test_simple_whip_client_goes_on_stage_and_leaves(
    server: RunningServer,
    open_page: OpenPage,
    whip_client: tuple[str, dict[str, str]],
    clients: list[WhipClient],
) -> None:
    event = await server.create_event("Launch")
    page = await open_page("attendee")
    await join_attendee(page, server, event, "Ann")
    encoder = await start_encoder(
        whip_client,
        clients,
        f"{server.base_url}/whip/{event.event_id}?name=GStreamer",
        event.presenter_key,
    )
    try:
        # the attendee's tile shows the test pattern's frames and plays its tone
        await expect_plays_presenter(page, "GStreamer", within=30)
    except AssertionError:
        raise AssertionError("whip-client said:\n" + encoder.log()) from None
    assert encoder.saw("PeerConnection connected"), encoder.log()
    room = server.rooms.get(event.event_id)
    assert room is not None
    assert sorted((p.name, p.role.value) for p in room.participants()) == [
        ("Ann", "attendee"),
        ("GStreamer", "presenter"),
    ]
    assert {s.source.value for s in room.streams()} == {"camera", "microphone"}
    status = await encoder.interrupt()
    assert status == 0, encoder.log()
    assert encoder.saw("Disconnecting from server"), encoder.log()
    # DELETE: the encoder left the room, its tile is gone
    await expect(page.get_by_test_id("video-tile")).to_have_count(0, timeout=10_000)
    assert [p.name for p in room.participants()] == ["Ann"]
    assert room.streams() == []


async def test_simple_whip_client_with_a_bad_token_is_refused(
    server: RunningServer,
    whip_client: tuple[str, dict[str, str]],
    clients: list[WhipClient],
) -> None:
    event = await server.create_event("Launch")
    encoder = WhipClient(whip_client)
    clients.append(encoder)
    await encoder.start(f"{server.base_url}/whip/{event.event_id}", "not-the-presenter-key")
    await encoder.wait()
    assert encoder.saw("[401]"), encoder.log()
    assert server.rooms.get(event.event_id) is None  # nobody entered, no room was opened
