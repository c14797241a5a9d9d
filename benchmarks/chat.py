"""Chat fan-out: N WebSocket clients in one room, some of them chatting; delivery latency.

    .venv/bin/python benchmarks/chat.py --clients 200 --senders 20 --seconds 10

Starts our server (``python -m webinar serve``) as a subprocess on a free 127.0.0.1 port
with a fresh data dir, joins ``--clients`` signalling-only clients (no media), then lets
``--senders`` of them each send one chat message per second (the per-person chat limit)
for ``--seconds``. Every client records when each message arrives; the message carries
its send time (all clients live in this process, so one clock). It checks that every
client received every message, in the same order, and prints the delivery latency
(send → receive, over all deliveries): median, 99th percentile, maximum.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from _server import start_server  # benchmarks/_server.py: the script's folder is on sys.path
from _wsclient import SignallingClient


class Client(SignallingClient):
    def __init__(self, http: aiohttp.ClientSession, url: str, index: int) -> None:
        super().__init__(http, url, index)
        self.seqs: list[int] = []
        self.latencies: list[float] = []

    def on_message(self, message: dict[str, Any], received: float) -> None:
        if message["type"] == "chat-message":
            chat = message["message"]
            self.seqs.append(chat["seq"])
            self.latencies.append(received - float(chat["text"].split()[-1]))


async def run(args: argparse.Namespace, url: str, event_id: str) -> int:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
        clients = [Client(http, url.replace("http", "ws") + "/ws", i) for i in range(args.clients)]
        started = time.perf_counter()
        for batch in range(0, len(clients), 20):
            await asyncio.gather(*(c.connect(event_id) for c in clients[batch : batch + 20]))
        print(f"{len(clients)} clients joined in {time.perf_counter() - started:.1f} s")
        await asyncio.sleep(1.0)
        senders = clients[: args.senders]

        async def chatter(client: Client, offset: float) -> int:
            await asyncio.sleep(offset)
            count = 0
            for i in range(args.seconds):
                await client.request(
                    "chat-send", text=f"msg {client.index}.{i} {time.perf_counter()!r}"
                )
                count += 1
                await asyncio.sleep(1.05)  # the per-person chat limit is 1/s
            return count

        counts = await asyncio.gather(
            *(chatter(c, i / max(1, len(senders))) for i, c in enumerate(senders))
        )
        sent = sum(counts)
        deadline = time.monotonic() + 30
        while any(len(c.seqs) < sent for c in clients) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        complete = all(len(c.seqs) == sent for c in clients)
        ordered = all(c.seqs == sorted(c.seqs) for c in clients)
        same = len({tuple(c.seqs) for c in clients}) == 1
        latencies = sorted(x for c in clients for x in c.latencies)
        await asyncio.gather(*(c.close() for c in clients))
    deliveries = len(latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(deliveries - 1, int(deliveries * 0.99))] * 1000
    print(
        f"messages sent: {sent}; deliveries: {deliveries} of {sent * args.clients} "
        f"(complete: {complete}, in order: {ordered}, same order everywhere: {same})"
    )
    print(
        f"delivery latency: median {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms"
    )
    return 0 if complete and ordered and same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=10, help="messages per sender (1/s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="webinar-chat-") as tmp:
        started = start_server(Path(tmp), "Chat benchmark")
        url, event_id = started.url, str(started.event["event_id"])
        try:
            return asyncio.run(run(args, url, event_id))
        finally:
            started.stop()


if __name__ == "__main__":
    sys.exit(main())
