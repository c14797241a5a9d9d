"""The control plane of media pipes between workers (the media side is webinar.sfu.pipe).

A worker whose participants should receive a stream published on another worker asks that
worker (the *origin*) over the bus for one copy:

1. edge → origin ``pipe-open`` {room, stream}: the origin opens a :class:`PipeOut` on the
   producer and answers its descriptor and address;
2. the edge opens a :class:`PipeIn` (a producer on its own router, connected to that address)
   and tells its address: ``pipe-connect`` {pipe, address}; the origin starts sending.

One pipe per stream and edge: every subscriber of the stream on the edge consumes the edge's
copy. The edge closes its end when nobody there receives the stream any more (the room tells
it: :meth:`Pipes.release`), which tells the origin (RTCP BYE, and ``pipe-close`` in case that
datagram is lost); a producer that closes at the origin closes its copies. Pipes towards a
worker that died are closed by :meth:`Pipes.forget_worker`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any

from webinar.sfu import Producer, Router
from webinar.sfu.pipe import PipeIn, PipeOut, pipe_descriptor

from .bus import Bus

logger = logging.getLogger(__name__)

#: (room id, stream id) → the local producer of that stream, if published here.
ProducerOf = Callable[[str, str], Producer | None]
RouterOf = Callable[[str], Router | None]


class Pipes:
    def __init__(
        self,
        bus: Bus,
        *,
        producer_of: ProducerOf,
        router_of: RouterOf,
        host: str = "127.0.0.1",
        ports: tuple[int, int] | None = None,
    ) -> None:
        self._bus = bus
        self._producer_of = producer_of
        self._router_of = router_of
        self._host = host
        self._ports = ports
        self._outs: dict[str, tuple[PipeOut, int]] = {}  # pipe id -> (pipe, edge worker)
        self._ins: dict[int, tuple[PipeIn, int, str]] = {}  # id(producer) -> (pipe, origin, id)
        self._tasks: set[asyncio.Task[None]] = set()
        # Packets of pipes already closed, so that :meth:`packets` only grows.
        self._closed_packets = {"out": 0, "in": 0}
        bus.on("pipe-open", self._on_open)
        bus.on("pipe-connect", self._on_connect)
        bus.on("pipe-close", self._on_close)

    # ------------------------------------------------------------------ edge side

    async def relay(self, room_id: str, stream_id: str, worker: int) -> Producer:
        """A local copy of ``stream_id``, published on ``worker``, for this worker's room."""
        router = self._router_of(room_id)
        if router is None:
            raise LookupError(f"no room {room_id} on this worker")
        answer = await self._bus.request(
            worker, "pipe-open", {"room": room_id, "stream": stream_id}
        )
        pipe_id = str(answer["pipe"])
        origin = _address(answer["address"])
        try:
            pipe = await PipeIn.open(
                router, answer["descriptor"], host=self._host, ports=self._ports, peer=origin
            )
        except BaseException:
            self._spawn(self._bus.send(worker, "pipe-close", {"pipe": pipe_id}))
            raise
        key = id(pipe.producer)
        self._ins[key] = (pipe, worker, pipe_id)
        pipe.on_close(lambda closed: self._forget_in(key, closed.stats.packets))
        try:
            await self._bus.request(
                worker, "pipe-connect", {"pipe": pipe_id, "address": list(pipe.address)}
            )
        except BaseException:
            self.release(room_id, pipe.producer)
            raise
        return pipe.producer

    def release(self, room_id: str, producer: Producer) -> None:
        entry = self._ins.pop(id(producer), None)
        if entry is None:
            producer.close()
            return
        pipe, worker, pipe_id = entry
        pipe.close()
        self._closed_packets["in"] += pipe.stats.packets
        self._spawn(self._tell(worker, "pipe-close", {"pipe": pipe_id}))

    # ------------------------------------------------------------------ origin side

    async def _on_open(self, body: dict[str, Any], sender: int) -> dict[str, Any]:
        producer = self._producer_of(str(body["room"]), str(body["stream"]))
        if producer is None or producer.closed:
            raise LookupError(f"stream {body['stream']} is not published here")
        for _ in range(40):  # its codec is known once the publisher's media flows
            if producer.codec is not None or producer.closed:
                break
            await asyncio.sleep(0.05)
        pipe = await PipeOut.open(producer, host=self._host, ports=self._ports)
        pipe_id = secrets.token_hex(8)
        self._outs[pipe_id] = (pipe, sender)
        pipe.on_close(lambda closed: self._forget_out(pipe_id, closed.stats.packets))
        return {
            "pipe": pipe_id,
            "descriptor": pipe_descriptor(producer),
            "address": list(pipe.address),
        }

    async def _on_connect(self, body: dict[str, Any], sender: int) -> dict[str, Any]:
        entry = self._outs.get(str(body["pipe"]))
        if entry is None or entry[1] != sender:
            raise LookupError("no such pipe")
        entry[0].connect(_address(body["address"]))
        return {}

    async def _on_close(self, body: dict[str, Any], sender: int) -> None:
        entry = self._outs.get(str(body["pipe"]))
        if entry is not None and entry[1] == sender:
            entry[0].close()

    def _forget_in(self, key: int, packets: int) -> None:
        if self._ins.pop(key, None) is not None:
            self._closed_packets["in"] += packets

    def _forget_out(self, pipe_id: str, packets: int) -> None:
        if self._outs.pop(pipe_id, None) is not None:
            self._closed_packets["out"] += packets

    # ------------------------------------------------------------------ upkeep

    def forget_worker(self, worker: int) -> None:
        """``worker`` died: close the pipes to and from it."""
        for out, edge in list(self._outs.values()):
            if edge == worker:
                out.close()
        for pipe, origin, _pipe_id in list(self._ins.values()):
            if origin == worker:
                pipe.close()

    def workers(self) -> set[int]:
        """The workers this one has pipes with."""
        return {edge for _out, edge in self._outs.values()} | {
            origin for _pipe, origin, _id in self._ins.values()
        }

    def counts(self) -> dict[str, int]:
        return {"pipes_out": len(self._outs), "pipes_in": len(self._ins)}

    def packets_out(self) -> int:
        return sum(pipe.stats.packets for pipe, _edge in self._outs.values())

    def packets(self) -> dict[str, int]:
        """RTP packets sent on this worker's pipes (``out``, as origin) and taken from them
        (``in``, as edge) since it started: monotonic, closed pipes included."""
        return {
            "out": self._closed_packets["out"] + self.packets_out(),
            "in": self._closed_packets["in"]
            + sum(pipe.stats.packets for pipe, _origin, _id in self._ins.values()),
        }

    async def close(self) -> None:
        for out, _edge in list(self._outs.values()):
            out.close()
        for pipe, _origin, _id in list(self._ins.values()):
            pipe.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _tell(self, worker: int, kind: str, body: dict[str, Any]) -> None:
        try:
            await self._bus.send(worker, kind, body)
        except Exception:
            logger.debug("could not tell worker %d %s", worker, kind)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _address(value: Any) -> tuple[str, int]:
    host, port = value
    return str(host), int(port)
