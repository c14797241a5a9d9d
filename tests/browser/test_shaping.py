"""The impairments benchmarks/tiers.py and the tiers tests put between the server and a
subscriber, checked with plain UDP datagrams (no browser): the user-space jitter relay
delays every datagram by its own random 0..N ms and loses none, and the nftables rule
drops about the share asked. Both are what the kernel's netem would do, which this
kernel does not have; a figure measured through them is only as good as they are."""

from __future__ import annotations

import itertools
import json
import socket
import struct
import subprocess
import sys
import time

from tests.browser.shaping import CLIENT_ADDRESS, ShapedNetwork

PORT = 40_000

# Runs in the subscriber's namespace: receives until 1 s passes without a datagram and
# prints, for each, its number, when it was sent and when it came (one clock: CLOCK_MONOTONIC
# is the machine's, whatever the network namespace).
RECEIVER = f"""
import json, socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("{CLIENT_ADDRESS}", {PORT}))
s.settimeout(15.0)
print("ready", flush=True)
got = []
while True:
    try:
        data = s.recv(2048)
    except TimeoutError:
        break
    now = time.monotonic()
    s.settimeout(1.0)
    number, sent = struct.unpack("!Id", data[:12])
    got.append((number, sent, now))
print(json.dumps(got), flush=True)
"""


def _send(net: ShapedNetwork, count: int, every_s: float) -> list[tuple[int, float, float]]:
    """Send ``count`` numbered datagrams of 1,000 bytes to the subscriber's namespace,
    one every ``every_s``; what arrived, as (number, sent, received)."""
    receiver = subprocess.Popen(
        [*net.inside(), sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None
        assert receiver.stdout.readline().strip() == "ready"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            pad = bytes(988)
            start = time.monotonic()
            for number in range(count):
                wait = start + number * every_s - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                head = struct.pack("!Id", number, time.monotonic())
                sock.sendto(head + pad, (CLIENT_ADDRESS, PORT))
        out, _ = receiver.communicate(timeout=30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    return [(int(n), float(s), float(r)) for n, s, r in json.loads(out)]


def test_the_jitter_relay_delays_each_datagram_on_its_own_and_loses_none(
    network: ShapedNetwork,
) -> None:
    network.jitter(100)
    got = _send(network, count=400, every_s=0.004)

    assert sorted(n for n, _, _ in got) == list(range(400)), "the relay lost or doubled some"
    delays = sorted(received - sent for _, sent, received in got)
    # uniform over 0..100 ms: the median near 50 ms, the spread over most of the range
    assert 0.030 < delays[len(delays) // 2] < 0.070, delays[len(delays) // 2]
    assert delays[len(delays) // 10] < 0.025
    assert 0.075 < delays[len(delays) * 9 // 10] < 0.140
    # each on its own: a datagram sent 4 ms later often arrives first
    order = [n for n, _, _ in sorted(got, key=lambda item: item[2])]
    overtaken = sum(1 for a, b in itertools.pairwise(order) if b < a)
    assert overtaken > 40, overtaken
    network.close()
    assert network.relay_report.startswith("datagrams 400 "), network.relay_report


def test_random_loss_drops_about_the_share_asked(network: ShapedNetwork) -> None:
    network.lose(5)
    got = _send(network, count=4000, every_s=0.0005)

    lost = 4000 - len(got)
    # binomial(4000, 0.05): 200 ± 14 (one sigma); 130..270 is five sigma either side
    assert 130 <= lost <= 270, lost
    numbers = [n for n, _, _ in got]
    assert numbers == sorted(numbers), "loss alone must not reorder"
    # spread out, not in a block: losses in every quarter of the run
    missing = sorted(set(range(4000)) - set(numbers))
    assert {n * 4 // 4000 for n in missing} == {0, 1, 2, 3}
