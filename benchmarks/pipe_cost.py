#!/usr/bin/env python3
"""Pipe benchmark: what one relayed packet costs on each end of a pipe.

    python benchmarks/pipe_cost.py --packets 20000 [--packets-per-frame 8] [--srtp] [--no-uvloop]

* **out** (origin): a real :class:`~webinar.sfu.pipe.PipeOut` on a producer relays
  VP8-sized packets (1,100-byte payloads, ``--packets-per-frame`` per frame, one frame
  every ``--gap`` seconds) to a UDP socket that a reader process drains. Measured:
  this thread's CPU time inside the relay call (header build, history, ``sendto``,
  including what the kernel charges the sender for delivering on loopback: waking
  the sleeping reader is most of it; ``..._no_wakeup``: the same to a socket read
  between frames, outside the measurement, i.e. without waking anyone).
* **in** (edge): a real :class:`~webinar.sfu.pipe.PipeIn` on a real
  :class:`~webinar.sfu.Router` receives the same stream from a sender process and
  takes it through the ingest (parse, sequence, duplicates, NACK state, keyframe and
  layer detection) to one consumer stand-in that only counts. Measured: this
  process's CPU time per packet over the run, event-loop wake-ups and the router's
  housekeeping included, minus nothing.

A local producer's ingest runs the same steps after SRTP decryption, so ``in`` is the
edge's price for a producer it does not host; ``out`` is what the origin pays per
edge on top of its local subscribers (compare a local forward: ~14 µs per send).

``--srtp``: both ends encrypted as a pipe between nodes is (SRTP AEAD_AES_128_GCM with
fresh :class:`~webinar.sfu.pipe.PipeKeys`): ``out`` then includes the protect call,
``in`` the unprotect call.

Prints one JSON line: ``packets``, ``srtp``, ``out_us_per_packet``,
``out_us_per_packet_no_wakeup``, ``in_us_per_packet``, ``in_received``, ``uvloop``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import time
from typing import Any

from aiortc.rtcrtpreceiver import NackGenerator

from webinar.sfu import MediaKind, MediaSource, Producer, Router, RouterConfig
from webinar.sfu.pipe import PipeIn, PipeKeys, PipeOut, pipe_descriptor
from webinar.sfu.producer import ProducerCodec
from webinar.sfu.rtp import MediaPacket

PAYLOAD = bytes([0x90, 0x80, 0x12, 0x34, 0x11]) + b"\x10" * 1095
SSRC = 0x12345678


class _OriginTap:
    """The origin producer's feed is not measured: a stand-in receiver."""

    def __init__(self) -> None:
        self.nack = NackGenerator()
        self.remb_filter = None
        self.rid_ssrcs: dict[str, list[int | None]] = {}

    def account(self, packet: Any, arrival_time_ms: int, clock_rate: int) -> None:
        pass

    def send_nack(self, media_ssrc: int, lost: Any) -> None:
        pass

    def send_pli(self, media_ssrc: int) -> None:
        pass

    def claim_ssrc(self, ssrc: int) -> None:
        pass


class _Counter:
    """A consumer stand-in on the edge producer: counts what it is handed."""

    id = "co-count"
    selects_layers = False

    def __init__(self) -> None:
        self.packets = 0

    def forward(self, mp: MediaPacket) -> None:
        self.packets += 1

    def restart(self) -> None:
        pass

    def producer_closed(self) -> None:
        pass


def drain(addrs: Any, stop: Any) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.settimeout(0.2)
    addrs.put(s.getsockname())
    while not stop.is_set():
        try:
            s.recv(2048)
        except TimeoutError:
            continue


def drain_here(s: socket.socket) -> None:
    while True:
        try:
            s.recv(2048, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return


def send(datagrams: list[bytes], per: int, gap: float, target: Any, ready: Any) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    ready.put(s.getsockname())
    host, port = target.get()
    time.sleep(0.3)
    for i in range(0, len(datagrams), per):
        for data in datagrams[i : i + per]:
            s.sendto(data, (host, port))
        time.sleep(gap)


def packets(n: int, per: int) -> list[MediaPacket]:
    return [
        MediaPacket(
            seq=100_000 + i,
            timestamp=3000 * (i // per),
            marker=int(i % per == per - 1),
            payload=PAYLOAD,
            keyframe=False,
            audio_level=-1,
            arrival=time.time(),
            abs_send_time=b"\x01\x02\x03",
        )
        for i in range(n)
    ]


def origin_producer() -> Producer:
    producer = Producer(
        kind=MediaKind.VIDEO,
        source=MediaSource.CAMERA,
        mid="0",
        tap=_OriginTap(),
    )
    producer.set_codec(ProducerCodec("video/VP8", 90000, 96, None), SSRC)
    return producer


async def measure_out(args: argparse.Namespace, wakeup: bool) -> float:
    """``wakeup``: to a reader process asleep between packets; else to a socket of this
    thread, read between frames outside the measurement (no one to wake)."""
    ctx = multiprocessing.get_context("spawn")
    addrs, stop = ctx.Queue(), ctx.Event()
    reader = ctx.Process(target=drain, args=(addrs, stop))
    reader.start()
    local = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    local.bind(("127.0.0.1", 0))
    local.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    try:
        host, port = addrs.get(timeout=30) if wakeup else local.getsockname()
        producer = origin_producer()
        keys = PipeKeys.fresh() if args.srtp else None
        pipe = await PipeOut.open(producer, peer=(host, port), keys=keys)
        layer = producer._single
        layer.ssrc = SSRC
        relay = pipe._relay
        busy = 0.0
        mps = packets(args.packets, args.packets_per_frame)
        per = args.packets_per_frame
        for i in range(0, len(mps), per):
            t0 = time.thread_time()
            for mp in mps[i : i + per]:
                relay(layer, mp)
            busy += time.thread_time() - t0
            drain_here(local)
            await asyncio.sleep(args.gap)
        pipe.close()
        return busy / len(mps) * 1e6
    finally:
        local.close()
        stop.set()
        reader.join(10)


async def measure_in(args: argparse.Namespace) -> tuple[float, int]:
    # the datagrams a PipeOut sends, made by one (to a socket nobody reads)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    producer = origin_producer()
    out = PipeOut(producer)
    keys = PipeKeys.fresh() if args.srtp else None
    if keys is not None:
        out.secure(keys)
    plain = [out._packet(mp, SSRC, 0) for mp in packets(args.packets, args.packets_per_frame)]
    tx = out._tx
    datagrams = plain if tx is None else [tx.protect(d) for d in plain]
    sink.close()
    ctx = multiprocessing.get_context("spawn")
    ready, target = ctx.Queue(), ctx.Queue()
    sender = ctx.Process(
        target=send, args=(datagrams, args.packets_per_frame, args.gap, target, ready)
    )
    sender.start()
    router = Router(RouterConfig())
    try:
        origin = ready.get(timeout=30)
        pipe = await PipeIn.open(
            router,
            pipe_descriptor(producer),
            peer=tuple(origin),
            keys=keys.swapped() if keys is not None else None,
        )
        counter = _Counter()
        pipe.producer.add_consumer(counter)
        target.put(pipe.address)
        for _ in range(3000):  # the first packet: the sender started
            if pipe.stats.packets:
                break
            await asyncio.sleep(0.01)
        t0 = time.process_time()
        last, still = pipe.stats.packets, 0
        while still < 5:  # until nothing came for 0.5 s
            await asyncio.sleep(0.1)
            still = still + 1 if pipe.stats.packets == last else 0
            last = pipe.stats.packets
        busy = time.process_time() - t0
        received = pipe.stats.packets
        pipe.close()
        return busy / max(received, 1) * 1e6, received
    finally:
        await router.close()
        sender.join(30)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out_us = await measure_out(args, wakeup=True)
    out_own_us = await measure_out(args, wakeup=False)
    in_us, received = await measure_in(args)
    return {
        "packets": args.packets,
        "srtp": args.srtp,
        "out_us_per_packet": round(out_us, 2),
        "out_us_per_packet_no_wakeup": round(out_own_us, 2),
        "in_us_per_packet": round(in_us, 2),
        "in_received": received,
        "uvloop": not args.no_uvloop,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=20_000)
    parser.add_argument("--packets-per-frame", type=int, default=8)
    parser.add_argument("--gap", type=float, default=0.004, help="seconds between frames")
    parser.add_argument("--srtp", action="store_true", help="encrypted, as between nodes")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    if args.no_uvloop:
        result = asyncio.run(run(args))
    else:
        import uvloop

        result = uvloop.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
