"""Janus VideoRoom as the reference SFU for ``fanout.py --peer janus``.

Everything stays on loopback: Janus gathers ICE candidates on ``lo`` only (no STUN,
no other interface), its HTTP API listens on 127.0.0.1 only, every other transport,
plugin, logger and event handler is disabled, and the client drops any candidate of
Janus's that is not in 127.0.0.0/8 before it reaches aiortc.

The clients are the same aiortc peers the benchmark uses against our server: a
publisher replaying pre-encoded VP8/Opus, and subscribers that count RTP packets
through :mod:`webinar.sfu._aiortc`'s ingress hooks without ever decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtpPacket

from webinar.sfu import _aiortc as hooks

logger = logging.getLogger("fanout.janus")

ROOM_ID = 1234
INSTALL_HINT = "Janus is not installed; on Debian/Ubuntu: apt-get install -y janus"
_LIB_ROOTS = ("/usr/lib/x86_64-linux-gnu/janus", "/usr/lib/aarch64-linux-gnu/janus")
_LIB_GLOBS = ("/usr/lib/*/janus", "/usr/lib/janus", "/usr/local/lib/janus", "/opt/janus/lib/janus")


class JanusError(RuntimeError):
    pass


def janus_binary() -> str:
    """Path of the ``janus`` executable, or :class:`JanusError` with how to install it."""
    path = shutil.which("janus") or ("/usr/bin/janus" if Path("/usr/bin/janus").exists() else None)
    if path is None:
        raise JanusError(INSTALL_HINT)
    return path


def janus_lib_dir() -> Path:
    """The folder holding Janus's ``plugins/`` and ``transports/``."""
    candidates = [Path(p) for p in _LIB_ROOTS]
    for pattern in _LIB_GLOBS:
        if "*" in pattern:
            candidates.extend(Path("/").glob(pattern.lstrip("/")))
        else:
            candidates.append(Path(pattern))
    for folder in candidates:
        if (folder / "plugins" / "libjanus_videoroom.so").exists() and (
            folder / "transports" / "libjanus_http.so"
        ).exists():
            return folder
    raise JanusError(
        "Janus's videoroom plugin or HTTP transport was not found; " + INSTALL_HINT.split("; ")[1]
    )


def _shared_objects(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.so")) if folder.is_dir() else []


def write_config(
    folder: Path,
    *,
    http_port: int,
    rtp_ports: tuple[int, int],
    event_loops: int | None,
    publishers: int = 3,
) -> None:
    """Write janus.jcfg, the HTTP transport and the VideoRoom config into ``folder``.

    Only ``event_loops`` departs from Janus's defaults (None keeps its default of one
    thread per handle); the rest is what loopback-only, one-room operation needs."""
    lib = janus_lib_dir()
    folder.mkdir(parents=True, exist_ok=True)
    plugins_off = [n for n in _shared_objects(lib / "plugins") if n != "libjanus_videoroom.so"]
    transports_off = [n for n in _shared_objects(lib / "transports") if n != "libjanus_http.so"]
    loggers_off = _shared_objects(lib / "loggers")
    events_off = _shared_objects(lib / "events")
    loops = f"\tevent_loops = {event_loops}\n" if event_loops else ""
    (folder / "janus.jcfg").write_text(
        "general: {\n"
        f'\tconfigs_folder = "{folder}"\n'
        f'\tplugins_folder = "{lib / "plugins"}"\n'
        f'\ttransports_folder = "{lib / "transports"}"\n'
        f'\tevents_folder = "{lib / "events"}"\n'
        f'\tloggers_folder = "{lib / "loggers"}"\n'
        "\tdebug_level = 4\n"
        f"{loops}"
        "}\n"
        "certificates: {\n}\n"
        "media: {\n"
        "\tipv6 = false\n"
        f'\trtp_port_range = "{rtp_ports[0]}-{rtp_ports[1]}"\n'
        "}\n"
        "nat: {\n"
        "\tnice_debug = false\n"
        '\tice_enforce_list = "lo"\n'
        "\tignore_mdns = true\n"
        "}\n"
        f'plugins: {{\n\tdisable = "{",".join(plugins_off)}"\n}}\n'
        f'transports: {{\n\tdisable = "{",".join(transports_off)}"\n}}\n'
        f'loggers: {{\n\tdisable = "{",".join(loggers_off)}"\n}}\n'
        f'events: {{\n\tbroadcast = false\n\tdisable = "{",".join(events_off)}"\n}}\n'
    )
    (folder / "janus.transport.http.jcfg").write_text(
        "general: {\n"
        '\tjson = "compact"\n'
        '\tbase_path = "/janus"\n'
        "\thttp = true\n"
        f"\tport = {http_port}\n"
        '\tip = "127.0.0.1"\n'
        "\thttps = false\n"
        '\tacl = "127."\n'
        "}\n"
        "admin: {\n\tadmin_http = false\n\tadmin_https = false\n}\n"
        "cors: {\n}\n"
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text(
        "general: {\n}\n"
        f"room-{ROOM_ID}: {{\n"
        '\tdescription = "fanout benchmark"\n'
        f"\tpublishers = {publishers}\n"
        "\tbitrate = 0\n"
        "\tfir_freq = 0\n"
        '\taudiocodec = "opus"\n'
        '\tvideocodec = "vp8"\n'
        "\trecord = false\n"
        "}\n"
    )


# Janus 1.1 never gathers ICE candidates on a loopback interface: janus_ice_setup_local()
# skips every interface flagged IFF_LOOPBACK before it even looks at ice_enforce_list,
# and libnice, given no address, falls back to the non-loopback ones. So Janus runs with
# this getifaddrs() wrapper preloaded: it presents ``lo`` as an ordinary interface and
# every other interface as down, so the only candidate Janus can gather is 127.0.0.1.
_SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>

int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = 0;
    if (!real)
        real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int rc = real(ifap);
    if (rc != 0)
        return rc;
    for (struct ifaddrs *ifa = *ifap; ifa; ifa = ifa->ifa_next) {
        if (ifa->ifa_flags & IFF_LOOPBACK)
            ifa->ifa_flags = (ifa->ifa_flags & ~IFF_LOOPBACK) | IFF_UP | IFF_RUNNING;
        else
            ifa->ifa_flags &= ~(IFF_UP | IFF_RUNNING);
    }
    return 0;
}
"""


def build_loopback_shim(folder: Path) -> Path:
    """Compile the getifaddrs() wrapper (needs a C compiler) into ``folder``."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise JanusError(
            "a C compiler is needed to build the loopback shim for Janus: apt-get install -y gcc"
        )
    source = folder / "loopback_shim.c"
    library = folder / "loopback_shim.so"
    source.write_text(_SHIM_C)
    done = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise JanusError(f"building the loopback shim failed: {done.stderr.decode()[-500:]}")
    return library


def start_janus(
    folder: Path, log_path: Path, preexec_fn: Callable[[], None] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LD_PRELOAD": str(build_loopback_shim(folder))}
    log = log_path.open("wb")
    try:
        return subprocess.Popen(
            [janus_binary(), "-F", str(folder), "-C", str(folder / "janus.jcfg"), "-o"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(folder),
            preexec_fn=preexec_fn,
        )
    finally:
        log.close()


# --------------------------------------------------------------------------- HTTP API


def loopback_only_sdp(sdp: str) -> str:
    """Drop every candidate outside 127.0.0.0/8; refuse an SDP left with none."""
    kept: list[str] = []
    candidates = 0
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            try:
                loopback = ipaddress.ip_address(parts[4]).is_loopback and ":" not in parts[4]
            except (IndexError, ValueError):
                loopback = False
            if not loopback:
                logger.warning("dropping a non-loopback candidate of Janus: %s", line)
                continue
            candidates += 1
        kept.append(line)
    if candidates == 0:
        found = [line for line in sdp.splitlines() if line.startswith("a=candidate")]
        raise JanusError(f"Janus offered no loopback ICE candidate, only {found}")
    return "\r\n".join(kept) + "\r\n"


class JanusSession:
    """One Janus session over the HTTP API with a long-poll reader; handles share it."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._tx = itertools.count(1)
        self.session_id: int | None = None
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": body.get("transaction") or f"t{next(self._tx)}"}
        timeout = aiohttp.ClientTimeout(total=20)
        async with self._http.post(self._base + path, json=body, timeout=timeout) as response:
            reply: dict[str, Any] = await response.json(content_type=None)
        if reply.get("janus") == "error":
            raise JanusError(f"{body.get('janus')}: {reply.get('error')}")
        return reply

    async def create(self) -> None:
        reply = await self._post("", {"janus": "create"})
        self.session_id = int(reply["data"]["id"])
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def attach(self, plugin: str = "janus.plugin.videoroom") -> int:
        reply = await self._post(f"/{self.session_id}", {"janus": "attach", "plugin": plugin})
        return int(reply["data"]["id"])

    async def message(
        self,
        handle: int,
        body: dict[str, Any],
        jsep: dict[str, Any] | None = None,
        wait: float = 20.0,
    ) -> dict[str, Any]:
        """Send a plugin request and wait for its asynchronous event (or sync reply)."""
        tx = f"t{next(self._tx)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters[tx] = fut
        request: dict[str, Any] = {"janus": "message", "body": body, "transaction": tx}
        if jsep is not None:
            request["jsep"] = jsep
        try:
            reply = await self._post(f"/{self.session_id}/{handle}", request)
            if reply.get("janus") == "success":  # synchronous request
                return reply
            event = await asyncio.wait_for(fut, wait)
        finally:
            self._waiters.pop(tx, None)
        data = event.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise JanusError(f"{body.get('request')}: {data['error']}")
        return event

    async def _poll(self) -> None:
        url = f"{self._base}/{self.session_id}?maxev=10"
        timeout = aiohttp.ClientTimeout(total=45)
        while True:
            try:
                async with self._http.get(url, timeout=timeout) as response:
                    events = await response.json(content_type=None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.debug("long poll failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for event in events if isinstance(events, list) else [events]:
                fut = self._waiters.get(str(event.get("transaction")))
                if fut is not None and not fut.done() and event.get("janus") == "event":
                    fut.set_result(event)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.session_id is not None:
            with contextlib.suppress(Exception):
                await self._post(f"/{self.session_id}", {"janus": "destroy"})


def _new_pc() -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    hooks.configure_gathering(
        pc, host_addresses=["127.0.0.1"], port_min=None, port_max=None, announced_ip=None
    )
    return pc


def _jsep(pc: RTCPeerConnection) -> dict[str, Any]:
    desc = pc.localDescription
    return {"type": desc.type, "sdp": desc.sdp, "trickle": False}


class JanusPublisher:
    def __init__(self, session: JanusSession) -> None:
        self.session = session
        self.pc = _new_pc()
        self.feed_id: int | None = None

    async def publish(self, tracks: list[MediaStreamTrack]) -> None:
        handle = await self.session.attach()
        joined = await self.session.message(
            handle, {"request": "join", "ptype": "publisher", "room": ROOM_ID, "display": "pub"}
        )
        self.feed_id = int(joined["plugindata"]["data"]["id"])
        for track in tracks:
            self.pc.addTransceiver(track, direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        event = await self.session.message(
            handle, {"request": "publish", "audio": True, "video": True}, jsep=_jsep(self.pc)
        )
        answer = event["jsep"]
        await self.pc.setRemoteDescription(
            RTCSessionDescription(loopback_only_sdp(answer["sdp"]), answer["type"])
        )

    async def close(self) -> None:
        await self.pc.close()


class JanusSubscriber:
    """Receives one Janus feed and counts packets by kind, never decoding."""

    def __init__(self, session: JanusSession) -> None:
        self.session = session
        self.pc = _new_pc()
        self.packets: Counter[str] = Counter()

    async def subscribe(self, feed_id: int) -> None:
        handle = await self.session.attach()
        event = await self.session.message(
            handle,
            {
                "request": "join",
                "ptype": "subscriber",
                "room": ROOM_ID,
                "streams": [{"feed": feed_id}],
            },
        )
        offer = event["jsep"]
        await self.pc.setRemoteDescription(
            RTCSessionDescription(loopback_only_sdp(offer["sdp"]), offer["type"])
        )
        self._tap()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.session.message(handle, {"request": "start"}, jsep=_jsep(self.pc))

    def _tap(self) -> None:
        """Count each RTP packet with a payload, by kind: the same tap as WebinarClient's
        count mode (IngressTap keeps the receiver reports truthful, no decoder runs),
        routed by MID when Janus sends it and by payload type otherwise."""
        by_mid: dict[str, hooks.RtpHandler] = {}
        by_pt: dict[int, hooks.RtpHandler] = {}
        packets = self.packets
        dtls = None
        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            kind = transceiver.kind
            clock: dict[int, int] = {}

            def started(parameters: Any, clock: dict[int, int] = clock) -> None:
                for codec in parameters.codecs:
                    clock[codec.payloadType] = codec.clockRate

            tap = hooks.IngressTap(receiver, started)

            def on_packet(
                packet: RtpPacket,
                arrival_ms: int,
                tap: hooks.IngressTap = tap,
                clock: dict[int, int] = clock,
                kind: str = kind,
            ) -> None:
                tap.account(packet, arrival_ms, clock.get(packet.payload_type, 90000))
                if packet.payload:
                    packets[kind] += 1

            if transceiver.mid is not None:
                by_mid[transceiver.mid] = on_packet
            for codec in hooks.negotiated_codecs(transceiver):
                by_pt[codec.payloadType] = on_packet
            dtls = receiver.transport
        if dtls is None:
            raise JanusError("Janus's offer has no m-line")

        def route(packet: RtpPacket) -> hooks.RtpHandler | None:
            mid = packet.extensions.mid
            if mid is not None:
                handler = by_mid.get(mid)
                if handler is not None:
                    return handler
            return by_pt.get(packet.payload_type)

        hooks.install_ingress(dtls, route)

    async def close(self) -> None:
        await self.pc.close()
