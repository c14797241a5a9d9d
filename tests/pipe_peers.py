"""Real aiortc peers straight on an SFU :class:`~webinar.sfu.Router` (no HTTP, no
signalling), for the pipe tests: a publisher on one router, subscribers on another.

Run as ``python -m tests.pipe_peers`` it is an edge worker of its own: a router, the
pipes of the descriptors it reads on stdin and subscribers on them (one JSON
message a line each way; see :func:`edge_main`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RtpPacket

from webinar.sfu import (
    CloseReason,
    Consumer,
    MediaSource,
    Producer,
    PublishTransport,
    Router,
    RouterConfig,
    TrackSpec,
    TransportConfig,
)
from webinar.sfu import _aiortc as hooks
from webinar.sfu.pipe import PipeIn
from webinar.tasks import stop_tasks

LOOPBACK = ["127.0.0.1"]


def make_router() -> Router:
    return Router(RouterConfig(transport=TransportConfig(host_addresses=LOOPBACK)))


def new_pc() -> RTCPeerConnection:
    pc = RTCPeerConnection()
    hooks.configure_gathering(
        pc, host_addresses=LOOPBACK, port_min=None, port_max=None, announced_ip=None
    )
    return pc


@dataclass
class Publisher:
    pc: RTCPeerConnection
    transport: PublishTransport
    producers: list[Producer]

    async def packets_sent(self) -> int:
        stats = await self.pc.getStats()
        return sum(s.packetsSent for s in stats.values() if s.type == "outbound-rtp")

    async def close(self) -> None:
        await self.pc.close()
        await self.transport.close()


async def publish(router: Router, tracks: list[tuple[MediaStreamTrack, str]]) -> Publisher:
    """A publisher's connection on ``router``; returns once every producer knows its
    codec (media flows)."""
    transport = router.create_publish_transport(on_producer=lambda _p: None)
    pc = new_pc()
    lines = [(pc.addTransceiver(t, direction="sendonly"), src) for t, src in tracks]
    await pc.setLocalDescription(await pc.createOffer())
    specs = [TrackSpec(str(tr.mid), MediaSource(src)) for tr, src in lines]
    answer, producers = await transport.handle_offer(pc.localDescription.sdp, specs)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    for _ in range(200):
        if all(p.codec is not None for p in producers):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the publisher's media did not start")
    return Publisher(pc, transport, producers)


@dataclass
class Subscriber:
    """A subscriber's connection on a router: counts packets (no decoder) or, with
    ``decode``, decodes like a browser and counts frames."""

    router: Router
    decode: bool = False
    rtp_filter: Callable[[RtpPacket], bool] | None = None  # loss on the way in
    packets: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)
    closed: list[tuple[Consumer, CloseReason]] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pc = new_pc()
        self._tasks: set[asyncio.Task[None]] = set()
        self._routes: dict[str, hooks.RtpHandler] = {}
        self.transport = self.router.create_subscribe_transport(
            send_offer=self._offer,
            on_consumer_closed=lambda c, r: self.closed.append((c, r)),
        )
        if self.decode:
            self.pc.on("track", self._on_track)

    def consume(self, producer: Producer) -> Consumer:
        consumer = self.transport.consume(producer, stream_id="s")
        self.consumers.append(consumer)
        return consumer

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _offer(self, sdp: str, _consumers: list[Consumer]) -> None:
        self._spawn(self._answer(sdp))

    async def _answer(self, sdp: str) -> None:
        pc = self.pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        if not self.decode:
            for transceiver in pc.getTransceivers():
                self._tap(transceiver.receiver, transceiver.mid or "")
        if self.rtp_filter is not None:
            for transceiver in pc.getTransceivers():
                hooks.install_rtp_filter(transceiver.receiver.transport, self.rtp_filter)
        await pc.setLocalDescription(await pc.createAnswer())
        await self.transport.handle_answer(pc.localDescription.sdp)

    def _tap(self, receiver: RTCRtpReceiver, mid: str) -> None:
        if getattr(receiver, "_pipe_tapped", False):
            return
        receiver._pipe_tapped = True  # type: ignore[attr-defined]
        clock: dict[int, int] = {}

        def started(parameters: Any) -> None:
            for codec in parameters.codecs:
                clock[codec.payloadType] = codec.clockRate

        tap = hooks.IngressTap(receiver, started)
        kind = receiver.track.kind if receiver.track else "video"
        packets = self.packets

        def on_packet(packet: RtpPacket, arrival_ms: int) -> None:
            tap.account(packet, arrival_ms, clock.get(packet.payload_type, 90000))
            if packet.payload:
                packets[kind] += 1

        self._routes[mid] = on_packet
        dtls = receiver.transport
        if not getattr(dtls, "_pipe_counting", False):
            dtls._pipe_counting = True
            routes = self._routes

            def route(packet: RtpPacket) -> hooks.RtpHandler | None:
                mid = packet.extensions.mid
                return routes.get(mid) if mid is not None else None

            hooks.install_ingress(dtls, route)

    def _on_track(self, track: MediaStreamTrack) -> None:
        kind = track.kind

        async def read() -> None:
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                self.frames[kind] += 1

        self._spawn(read())

    async def send_pli(self, consumer: Consumer) -> None:
        """A picture loss report about ``consumer``'s stream, as a browser sends it."""
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid == consumer.mid:
                await transceiver.receiver._send_rtcp_pli(consumer.ssrc)

    async def close(self) -> None:
        await stop_tasks(list(self._tasks))
        await self.pc.close()
        await self.transport.close()


# --------------------------------------------------------------------------- edge process


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _read() -> dict[str, Any]:
    line = await asyncio.to_thread(sys.stdin.readline)
    if not line:
        raise EOFError
    message: dict[str, Any] = json.loads(line)
    return message


async def edge_main() -> None:
    """An edge worker: reads ``{"descriptors": [...], "subscribers": n, "decode": k}``,
    answers ``{"addresses": [...]}`` (its pipe ends), reads ``{"origins": [...]}``,
    subscribes its ``n`` subscribers (the first ``k`` decoding) to every pipe's
    producer; then answers ``{"measure": true}`` with the subscribers' counts and
    ``{"stop": true}`` by closing everything and reporting what the pipes saw (``refused``:
    datagrams refused after ``connect``)."""
    router = make_router()
    setup = await _read()
    pipes = [await PipeIn.open(router, d) for d in setup["descriptors"]]
    _send({"addresses": [list(p.address) for p in pipes]})
    origins = (await _read())["origins"]
    for pipe, origin in zip(pipes, origins, strict=True):
        pipe.connect((origin[0], origin[1]))
    # The origin's pipe sends from the moment it opens; what came before connect (while this
    # process read the origins) is refused by design. Only refusals after it count.
    refused_before = [p.stats.refused for p in pipes]
    decoding = int(setup.get("decode", 0))
    subscribers = [Subscriber(router, decode=i < decoding) for i in range(setup["subscribers"])]
    for subscriber in subscribers:
        for pipe in pipes:
            subscriber.consume(pipe.producer)
    try:
        while True:
            message = await _read()
            if message.get("measure"):
                _send(
                    {
                        "packets": [sum(s.packets.values()) for s in subscribers[decoding:]],
                        "frames": [s.frames["video"] for s in subscribers[:decoding]],
                        "pipes": [p.stats.packets for p in pipes],
                    }
                )
            elif message.get("stop"):
                break
    finally:
        stats = [
            {"refused": p.stats.refused - before, "nacks": p.stats.nacks, "closed": p.closed}
            for p, before in zip(pipes, refused_before, strict=True)
        ]
        await asyncio.gather(*(s.close() for s in subscribers))
        for pipe in pipes:
            pipe.close()
        await router.close()
        _send({"stopped": True, "stats": stats})


if __name__ == "__main__":
    asyncio.run(edge_main())
