#!/usr/bin/env python3
"""Send-path benchmark: the cost of one forwarded packet, without a network peer.

    python benchmarks/sendpath.py --consumers 50 --frames 600 [--order consumer] [--spin]

N real :class:`webinar.sfu.Consumer` objects, each with its own libsrtp session
(AES-128-GCM) and its own UDP socket of the event loop (uvloop), forward a VP8-like
stream (``--packets-per-frame`` packets of 1100 bytes per frame, one frame every
``--gap`` seconds) to N receiving sockets split over two reader processes. The
DTLS/ICE objects around each sink are stand-ins: nothing is negotiated, the numbers
are the forwarding path itself (header rewrite, SRTP, ``sendto``) and what the
kernel charges the sender for delivering on loopback.

* ``--order packet``: each packet to every consumer, then the next (a producer
  without batching); ``--order consumer``: one frame's packets to a consumer, then
  the next consumer (a batching producer).
* ``--native``: each frame goes through the native fan-out (``_fanout.forward``: one
  call for every consumer, one ``sendmmsg`` per consumer), as a producer's flush does;
  ``--order`` does not apply. Without it, the Python path (``Consumer.forward``).
* ``--spin``: the readers poll their sockets without ever sleeping. The difference
  to a run without it is what waking sleeping receivers costs the sender: on
  loopback the sender's ``sendto`` runs the receiver's side of the kernel path,
  wake-up included.

Prints one JSON line: ``consumers``, ``order``, ``native``, ``spin``, ``sends``, ``received``,
``native_sent`` (packets the native fan-out sent in the measured frames),
``us_per_send`` (sender thread CPU microseconds per packet sent).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import selectors
import socket
import sys
import time
import types
from typing import Any

import aioice.ice
import pylibsrtp

from webinar.sfu import _aiortc as hooks
from webinar.sfu import native
from webinar.sfu.consumer import Consumer, ConsumerLayout
from webinar.sfu.estimator import BandwidthEstimator
from webinar.sfu.rtp import MediaPacket
from webinar.sfu.types import MediaKind

PAYLOAD = bytes([0x90, 0x80, 0x12, 0x34]) + b"\x10" * 1096


def reader(n: int, spin: bool, addrs: Any, counts: Any, stop: Any) -> None:
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    addrs.put([s.getsockname() for s in socks])
    got = 0

    def drain(sock: socket.socket) -> int:
        k = 0
        while True:
            try:
                sock.recv(2048)
            except BlockingIOError:
                return k
            k += 1

    while not stop.is_set():
        if spin:
            for s in socks:
                got += drain(s)
        else:
            for key, _ in sel.select(0.2):
                got += drain(key.fileobj)  # type: ignore[arg-type]
    for s in socks:
        got += drain(s)
    counts.put(got)


class _Producer:
    id = "pr-bench"
    kind = MediaKind.VIDEO
    codec = None
    sender_report = None
    simulcast = None
    temporal_layers = 1

    def request_keyframe(self, layer: int = 0) -> bool:
        return True

    def remove_consumer(self, consumer: Any) -> None:
        pass


async def sender_tap(ssrc: int, rtx_ssrc: int, addr: tuple[str, int]) -> hooks.SenderTap:
    """A sender tap that sends through a real SRTP session (AES-128-GCM) and UDP socket to
    ``addr``: stand-ins for the negotiated DTLS/ICE around it (also benchmarks/broadcast.py's)."""
    loop = asyncio.get_running_loop()
    policy = pylibsrtp.Policy(
        key=os.urandom(28),
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    )
    conn = types.SimpleNamespace()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: aioice.ice.StunProtocol(conn),  # type: ignore[arg-type]
        local_addr=("127.0.0.1", 0),
    )
    conn._nominated = {1: types.SimpleNamespace(protocol=protocol, remote_addr=addr)}
    ice = types.SimpleNamespace(iceGatherer=types.SimpleNamespace(_connection=conn))
    dtls = types.SimpleNamespace(
        _state=hooks._CONNECTED,
        _tx_srtp=pylibsrtp.Session(policy),
        transport=ice,
        state="connected",
    )
    sender = types.SimpleNamespace(
        transport=dtls,
        _ssrc=ssrc,
        _rtx_ssrc=rtx_ssrc,
        _RTCRtpSender__rtcp_started=asyncio.Event(),
        _RTCRtpSender__rtcp_exited=asyncio.Event(),
    )
    return hooks.SenderTap(types.SimpleNamespace(sender=sender))  # type: ignore[arg-type]


async def make_consumer(index: int, addr: tuple[str, int]) -> Consumer:
    """A consumer whose sink sends through a real SRTP session and UDP socket."""
    tap = await sender_tap(1000 + index, 2000 + index, addr)
    consumer = Consumer(
        producer=_Producer(),  # type: ignore[arg-type]
        tap=tap,
        estimator=BandwidthEstimator(),
        on_closed=lambda c, r: None,
    )
    consumer.set_layout(
        ConsumerLayout(
            payload_type=96,
            rtx_payload_type=97,
            mid=str(index),
            mid_ext_id=4,
            abs_send_time_ext_id=2,
            audio_level_ext_id=None,
        )
    )
    consumer.resume()
    return consumer


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    addrs, counts, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    half = args.consumers // 2
    sizes = [half, args.consumers - half]
    procs = [ctx.Process(target=reader, args=(n, args.spin, addrs, counts, stop)) for n in sizes]
    for p in procs:
        p.start()
    try:
        groups = [addrs.get(timeout=30) for _ in procs]
        # alternate between the two reader processes, as subscribers of two clients would
        order = [a for pair in itertools.zip_longest(*groups) for a in pair if a is not None]
        consumers = [await make_consumer(i, tuple(a)) for i, a in enumerate(order)]
        per = args.packets_per_frame
        frames = []
        seq = 100_000
        for f in range(args.frames + 1):
            frame = []
            for k in range(per):
                frame.append(
                    MediaPacket(
                        seq=seq,
                        timestamp=3000 * f,
                        marker=int(k == per - 1),
                        payload=PAYLOAD,
                        keyframe=seq == 100_000,
                        audio_level=-1,
                        arrival=time.time(),
                        abs_send_time=b"\x01\x02\x03",
                    )
                )
                seq += 1
            frames.append(frame)
        for c in consumers:  # start every consumer on the keyframe
            for mp in frames[0]:
                c.forward(mp)
        forward = native.forward() if args.native else None
        if args.native and forward is None:
            raise SystemExit("--native: the native fan-out is not built or is turned off")
        everyone = tuple(consumers)
        module = native.module()
        native_before = module.counters()["sent"] if module is not None else 0
        busy = 0.0
        for frame in frames[1:]:
            t0 = time.thread_time()
            if forward is not None:
                for c in forward(frame, everyone):  # what it leaves to Python
                    for mp in frame:
                        c.forward(mp)
            elif args.order == "packet":
                for mp in frame:
                    for c in consumers:
                        c.forward(mp)
            else:
                for c in consumers:
                    for mp in frame:
                        c.forward(mp)
            busy += time.thread_time() - t0
            await asyncio.sleep(args.gap)
        await asyncio.sleep(0.5)
        native_sent = (module.counters()["sent"] - native_before) if module is not None else 0
    finally:
        stop.set()
    received = sum(counts.get(timeout=30) for _ in procs)
    for p in procs:
        p.join(timeout=10)
    sends = args.frames * per * args.consumers
    sent = sum(c.stats.packets for c in consumers) - per * args.consumers
    return {
        "consumers": args.consumers,
        "order": args.order,
        "native": args.native,
        "spin": args.spin,
        "packets_per_frame": per,
        "sends": sends,
        "sent_ok": sent,
        "received": received - per * args.consumers,
        "native_sent": native_sent,
        "us_per_send": round(busy / sends * 1e6, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--consumers", type=int, default=50)
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--packets-per-frame", type=int, default=4)
    p.add_argument("--gap", type=float, default=0.01, help="seconds between frames")
    p.add_argument("--order", choices=["packet", "consumer"], default="packet")
    p.add_argument("--native", action="store_true", help="frames through the native fan-out")
    p.add_argument("--spin", action="store_true", help="readers never sleep")
    args = p.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of the server
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
