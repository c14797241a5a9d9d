"""Random delay for the datagrams to one address, in user space (the kernel here has
no netem): a TUN device the route to that address points at, a process that reads
each IP packet from it, holds a UDP datagram for a random 0..N ms (each on its own,
so they may overtake each other, as netem's jitter does) and writes it out on the
veth as an Ethernet frame (a packet socket: through the veth's qdisc, so a ``tc``
limit still applies, but past the routing that sent it to the TUN). Anything else
(TCP: the pages, signalling) goes out at once.

    python tests/browser/jitter_relay.py TUN OUT_DEV SRC_MAC DST_MAC MAX_MS

Started and stopped by :meth:`tests.browser.shaping.ShapedNetwork.jitter`; prints
``ready`` on stdout once the TUN is open, then on exit the datagrams it delayed.
"""

from __future__ import annotations

import errno
import fcntl
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def main() -> None:
    tun_name, out_dev, src_mac, dst_mac = sys.argv[1:5]
    most_ms = int(sys.argv[5])
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", tun_name.encode(), IFF_TUN | IFF_NO_PI))
    out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    out.bind((out_dev, 0))
    header = bytes.fromhex(dst_mac.replace(":", "") + src_mac.replace(":", "")) + b"\x08\x00"
    rng = random.Random()
    held: list[tuple[float, int, bytes]] = []
    count = delayed = refused = 0
    stop = False

    def send(packet: bytes) -> None:
        # A full qdisc (the tc limit's queue) refuses a packet socket's frame with ENOBUFS
        # where a routed datagram would just be dropped: drop it (it used to end the relay,
        # and with it the jitter, at the first overflow under the limit)
        nonlocal refused
        try:
            out.send(header + packet)
        except OSError as exc:
            if exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                raise
            refused += 1

    def finish(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, finish)
    print("ready", flush=True)
    while not stop:
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, packet = heapq.heappop(held)
            send(packet)
        timeout = max(held[0][0] - now, 0.0) if held else 0.5
        try:
            ready, _, _ = select.select([tun], [], [], timeout)
        except InterruptedError:
            continue
        if not ready:
            continue
        packet = os.read(tun, 65535)
        if len(packet) < 20 or packet[0] >> 4 != 4:
            continue  # IPv4 only
        if packet[9] != 17:  # not UDP: at once
            send(packet)
            continue
        count += 1
        delay = rng.uniform(0, most_ms / 1000)
        if delay > 0.0005:
            delayed += 1
        heapq.heappush(held, (time.monotonic() + delay, count, packet))
    print(f"datagrams {count} delayed {delayed} dropped by a full queue {refused}", flush=True)


if __name__ == "__main__":
    main()
