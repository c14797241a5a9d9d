"""Reactions: N WebSocket clients in one room all clapping; what each receives, what it costs.

    .venv/bin/python benchmarks/reactions.py --clients 1000 --seconds 10

Starts our server (``python -m webinar serve``) as a subprocess through ``_server.py`` (a free
127.0.0.1 port, a fresh data dir, ``rooms.max_participants`` raised to the clients), joins
``--clients`` signalling-only clients (no media), then lets every one of them send ``react``
``clap`` at the per-person limit (3 a second, after a first burst of 8) for ``--seconds``.
Every client records the ``reactions`` messages it receives. It checks that every client
counted every accepted clap exactly once, and prints the most ``reactions`` messages any
client received in one second (the target: at most ~5, one per 0.25 s window, whatever the
size of the room), the messages per client per second on average, and the server's CPU
seconds (``/proc/PID/stat``) while the room clapped — against the N×rate messages per client
a message per reaction would have cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _server import start_server  # benchmarks/_server.py: the script's folder is on sys.path
from _wsclient import SignallingClient

BURST = 8
PER_SECOND = 3


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Client(SignallingClient):
    def __init__(self, http: aiohttp.ClientSession, url: str, index: int) -> None:
        super().__init__(http, url, index)
        self.received: list[tuple[float, int]] = []  # (when, claps counted)
        self.refused = 0

    def on_message(self, message: dict[str, Any], received: float) -> None:
        if message["type"] == "reactions":
            self.received.append((time.monotonic(), int(message["counts"].get("clap", 0))))
        elif message["type"] == "error" and message.get("code") == "rate-limited":
            self.refused += 1

    def claps(self) -> int:
        return sum(n for _at, n in self.received)

    def most_in_a_second(self) -> int:
        times = [at for at, _n in self.received]
        return max(
            (sum(1 for t in times[k:] if t < at + 1.0) for k, at in enumerate(times)), default=0
        )


async def run(args: argparse.Namespace, url: str, event_id: str, pid: int) -> int:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
        clients = [Client(http, url.replace("http", "ws") + "/ws", i) for i in range(args.clients)]
        started = time.perf_counter()
        for batch in range(0, len(clients), 25):
            await asyncio.gather(*(c.connect(event_id) for c in clients[batch : batch + 25]))
        print(f"{len(clients)} clients joined in {time.perf_counter() - started:.1f} s")
        await asyncio.sleep(1.0)
        cpu_before, wall_before = cpu_seconds(pid), time.monotonic()

        async def clapper(client: Client, offset: float) -> int:
            assert client.ws is not None
            await asyncio.sleep(offset)
            sent = 0
            for _ in range(BURST):  # the burst at once ...
                await client.ws.send_json({"type": "react", "reaction": "clap"})
                sent += 1
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:  # ... then at the per-person rate
                await asyncio.sleep(1 / PER_SECOND + 0.01)
                await client.ws.send_json({"type": "react", "reaction": "clap"})
                sent += 1
            return sent

        sent = sum(
            await asyncio.gather(
                *(clapper(c, (i % 100) / 100 / PER_SECOND) for i, c in enumerate(clients))
            )
        )
        wall = time.monotonic() - wall_before
        cpu = cpu_seconds(pid) - cpu_before
        refused = sum(c.refused for c in clients)
        accepted = sent - refused
        deadline = time.monotonic() + 30
        while any(c.claps() < accepted for c in clients) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        exact = all(c.claps() == accepted for c in clients)
        most = max(c.most_in_a_second() for c in clients)
        average = sum(len(c.received) for c in clients) / len(clients) / wall
        await asyncio.gather(*(c.close() for c in clients))
    print(
        f"claps sent: {sent} ({refused} refused by the per-person limit), "
        f"{accepted / wall:.0f} accepted a second; every client counted each once: {exact}"
    )
    print(
        f"reactions messages per client: at most {most} in one second, {average:.2f} a second "
        f"on average (one message per reaction would be {accepted / wall:.0f} a second each)"
    )
    print(f"server CPU while clapping: {cpu:.2f} s in {wall:.1f} s ({100 * cpu / wall:.0f} %)")
    return 0 if exact and most <= 5 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10, help="how long everyone claps")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="webinar-reactions-") as tmp:
        env = {"WEBINAR_ROOMS_MAX_PARTICIPANTS": str(max(500, args.clients + 1))}
        started = start_server(Path(tmp), "Reactions benchmark", env)
        proc, url, event_id = started.proc, started.url, str(started.event["event_id"])
        try:
            return asyncio.run(run(args, url, event_id, proc.pid))
        finally:
            started.stop()


if __name__ == "__main__":
    sys.exit(main())
