"""A headless Python client of the signalling protocol, on aiortc.

Used by the tests and the benchmarks: it joins an event, publishes tracks (real
or pre-encoded) and receives the room's streams, either decoding them like a
browser (``mode="decode"``) or only counting packets (``mode="count"``: no
decoder thread at all, so a benchmark measures the server, not its clients).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtp import RtpPacket

from webinar.sfu import _aiortc as hooks

from ..tasks import stop_task, stop_tasks

logger = logging.getLogger(__name__)


class ClientError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(slots=True)
class ReceivedStats:
    packets: Counter[str] = field(default_factory=Counter)  # by kind
    bytes: Counter[str] = field(default_factory=Counter)
    packets_by_mid: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)  # decoded frames by kind


class SignallingClient:
    """JSON over one WebSocket; requests get their reply by ``id``."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._ws = await self._http.ws_connect(self._url, heartbeat=20)
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def on_message(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    async def _read(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            message = frame.json()
            request_id = message.get("id")
            fut = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
            if fut is not None and not fut.done():
                fut.set_result(message)
                continue
            for listener in self._listeners:
                listener(message)
            self.events.put_nowait(message)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("signalling closed"))

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_json(message)

    async def send_raw(self, text: str) -> None:
        assert self._ws is not None
        await self._ws.send_str(text)

    async def request(self, type_: str, within: float = 20.0, **fields: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        await self.send({"type": type_, "id": request_id, **fields})
        reply = await asyncio.wait_for(fut, within)
        if reply.get("type") == "error":
            raise ClientError(reply["code"], reply.get("message", ""))
        return reply

    async def wait_for(
        self,
        type_: str,
        within: float = 10.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {type_!r} message within {within} s")
            message = await asyncio.wait_for(self.events.get(), remaining)
            if message.get("type") == type_ and (where is None or where(message)):
                return message

    @property
    def closed(self) -> bool:
        return self._ws is None or self._ws.closed

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        await stop_task(self._reader)


class WebinarClient:
    def __init__(
        self,
        base_url: str,
        *,
        mode: Literal["decode", "count"] = "decode",
        host_addresses: list[str] | None = None,
        rtp_filter: Callable[[RtpPacket], bool] | None = None,
        relay_only: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.mode = mode
        self.stats = ReceivedStats()
        self.streams: dict[str, dict[str, Any]] = {}  # by mid, from the last offer
        self.joined: dict[str, Any] = {}
        self.socket_url = ""
        #: The join was moved to another node of a cluster (``move``).
        self.moved = False
        self._host_addresses = host_addresses or []
        self._rtp_filter = rtp_filter
        self._relay_only = relay_only
        self._http: aiohttp.ClientSession | None = None
        self.signalling: SignallingClient | None = None
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.offers_answered = 0
        self._count_routes: dict[str, hooks.RtpHandler] = {}

    # ------------------------------------------------------------------ session

    async def join(
        self,
        event_id: str,
        name: str,
        credential: str | None = None,
        *,
        resume_token: str | None = None,
        client_id: str | None = None,
    ) -> dict[str, Any]:
        """hello and join; a ``move`` (a cluster of nodes) is followed to the node it names,
        whose WebSocket URL is then :attr:`socket_url`."""
        self._http = aiohttp.ClientSession()
        self.socket_url = self.base_url.replace("http", "ws", 1) + "/ws"
        fields: dict[str, Any] = {"event_id": event_id, "name": name}
        if credential is not None:
            fields["credential"] = credential
        if resume_token is not None:
            fields["resume_token"] = resume_token
        if client_id is not None:
            fields["client_id"] = client_id
        reply = await self._handshake(fields)
        if reply.get("type") == "move":
            assert self.signalling is not None
            await self.signalling.close()
            self.socket_url = str(reply["url"])
            self.moved = True
            reply = await self._handshake({**fields, "placed": True})
        self.joined = reply
        self._spawn(self._offer_loop())
        return self.joined

    async def _handshake(self, fields: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        self.signalling = SignallingClient(self._http, self.socket_url)
        await self.signalling.connect()
        self.signalling.on_message(self._on_message)
        await self.signalling.request("hello", protocol=1, client="webinar-python")
        return await self.signalling.request("join", **fields)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "subscriber-offer":
            self._offers.put_nowait(message)

    def _new_pc(self) -> RTCPeerConnection:
        """A peer connection using the ICE servers the server handed out in ``joined``."""
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in self.joined.get("ice_servers", [])
        ]
        policy = RTCIceTransportPolicy.RELAY if self._relay_only else RTCIceTransportPolicy.ALL
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
        if self._host_addresses:
            hooks.configure_gathering(
                pc,
                host_addresses=self._host_addresses,
                port_min=None,
                port_max=None,
                announced_ip=None,
            )
        return pc

    # ------------------------------------------------------------------ publishing

    async def publish(self, tracks: list[tuple[MediaStreamTrack, str]]) -> list[dict[str, str]]:
        """Publish ``(track, source)`` pairs; returns the server's producers."""
        assert self.signalling is not None
        fresh = self.publish_pc is None
        if self.publish_pc is None:
            self.publish_pc = self._new_pc()
        pc = self.publish_pc
        transceivers = [(pc.addTransceiver(t, direction="sendonly"), src) for t, src in tracks]
        await pc.setLocalDescription(await pc.createOffer())
        specs = [{"mid": tr.mid, "source": src} for tr, src in transceivers]
        try:
            reply = await self.signalling.request(
                "publish", sdp=pc.localDescription.sdp, tracks=specs
            )
        except ClientError:
            if fresh:  # aiortc cannot roll back an offer: start over next time
                await pc.close()
                self.publish_pc = None
            raise
        await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        producers: list[dict[str, str]] = reply["producers"]
        return producers

    async def unpublish(self, producer_id: str) -> None:
        assert self.signalling is not None
        await self.signalling.request("unpublish", producer_id=producer_id)

    # ------------------------------------------------------------------ subscribing

    async def _offer_loop(self) -> None:
        while True:
            offer = await self._offers.get()
            try:
                await self._answer(offer)
            except Exception:
                logger.exception("answering the subscriber offer failed")

    async def _answer(self, offer: dict[str, Any]) -> None:
        assert self.signalling is not None
        if self.subscribe_pc is None:
            self.subscribe_pc = self._new_pc()
            if self.mode == "decode":
                self.subscribe_pc.on("track", self._on_track)
        pc = self.subscribe_pc
        self.streams = {s["mid"]: s for s in offer["streams"]}
        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        if self.mode == "count":
            for transceiver in pc.getTransceivers():
                self._tap(transceiver.receiver)
        if self._rtp_filter is not None:
            self._filter_ingress(pc)
        await pc.setLocalDescription(await pc.createAnswer())
        await self.signalling.send({"type": "subscriber-answer", "sdp": pc.localDescription.sdp})
        self.offers_answered += 1

    def _tap(self, receiver: RTCRtpReceiver) -> None:
        if getattr(receiver, "_webinar_tapped", False):
            return
        receiver._webinar_tapped = True  # type: ignore[attr-defined]
        clock: dict[int, int] = {}

        def started(parameters: Any) -> None:
            for codec in parameters.codecs:
                clock[codec.payloadType] = codec.clockRate

        tap = hooks.IngressTap(receiver, started)
        stats = self.stats
        kind = receiver.track.kind if receiver.track else "video"

        def on_packet(packet: RtpPacket, arrival_ms: int) -> None:
            tap.account(packet, arrival_ms, clock.get(packet.payload_type, 90000))
            if packet.payload:
                stats.packets[kind] += 1
                stats.bytes[kind] += len(packet.payload)
                if packet.extensions.mid:
                    stats.packets_by_mid[packet.extensions.mid] += 1

        mid = (
            next(
                (t.mid for t in self.subscribe_pc.getTransceivers() if t.receiver is receiver), None
            )
            if self.subscribe_pc is not None
            else None
        )
        if mid is not None:
            self._count_routes[mid] = on_packet
        dtls = receiver.transport
        if not getattr(dtls, "_webinar_counting", False):
            setattr(dtls, "_webinar_counting", True)  # noqa: B010
            routes = self._count_routes

            def route(packet: RtpPacket) -> hooks.RtpHandler | None:
                # the SFU writes the MID into every packet it forwards
                mid = packet.extensions.mid
                return routes.get(mid) if mid is not None else None

            hooks.install_ingress(dtls, route)

    def _filter_ingress(self, pc: RTCPeerConnection) -> None:
        """Drop incoming RTP the filter rejects (loss simulation) before aiortc sees it."""
        keep = self._rtp_filter
        assert keep is not None
        for transceiver in pc.getTransceivers():
            hooks.install_rtp_filter(transceiver.receiver.transport, keep)

    def _on_track(self, track: MediaStreamTrack) -> None:
        kind = track.kind

        async def read() -> None:
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                self.stats.frames[kind] += 1

        self._spawn(read())

    # ------------------------------------------------------------------ closing

    async def close(self) -> None:
        await stop_tasks(list(self._tasks))
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
                # A socket bound while the peer connection was still gathering (a client
                # closed right after an offer arrived) is ours to close, not aioice's.
                hooks.release_sockets(pc)
        if self.signalling is not None:
            await self.signalling.close()
        if self._http is not None:
            await self._http.close()
