"""Join storm: hundreds of attendees arriving on the hour, at most ``--concurrency`` at a time.

    .venv/bin/python benchmarks/join_storm.py --clients 1000 --concurrency 100
    .venv/bin/python benchmarks/join_storm.py --clients 300 --concurrency 100

Starts our server (``python -m webinar serve``) as a subprocess through ``_server.py`` (free
127.0.0.1 port, fresh data dir, one event without a start time, so it is live at once), joins
the host first (with the host key from the event's host link), then lets ``--clients``
signalling-only attendees (no media) arrive, ``--concurrency`` of them at a time: each one
opens its WebSocket, sends ``hello`` and ``join``, and the next one starts as soon as one is
``joined`` (``--preconnect``: every socket is opened and past ``hello`` first, and only the
joins storm). All attendees come from 127.0.0.1 unless ``--addresses N`` spreads them over N
source addresses (127.1.x.y): the server's entry-attempt limiter (``ticketing/limiter.py``)
lets one address have at most 10 join look-ups in flight, and makes the rest wait (up to 10 s,
then ``rate-limited``). Every attendee stays connected and counts what it receives until the
storm is over and the room has been quiet for ``--settle`` seconds; then all close and the
server is stopped.
Any ``error`` reply, an unsolicited ``error`` or ``bye``, a dropped socket or a join reply that
is not a seated attendee in a live room fails the run (exit 1, no JSON line).

Prints exactly one JSON line on stdout (progress goes to stderr):

* ``total_s``: first ``join`` sent to last ``joined`` received; ``joins_per_s`` = clients ÷ that;
* ``join_p50_ms``, ``join_p99_ms``, ``join_max_ms``: per attendee, ``join`` sent → ``joined``;
* ``arrival_p50_ms``, ``arrival_p99_ms``: per attendee, opening its WebSocket → ``joined``
  (the socket's upgrade and ``hello`` too; ``null`` with ``--preconnect``);
* ``server_cpu_ms_per_join``: the server process's user+system CPU (``/proc/PID/stat``, all
  threads) from the first arrival until the room went quiet (every announcement written),
  ÷ clients; ``server_cpu_ms_per_join_to_last_joined`` stops the clock at the last ``joined``;
* ``msgs_per_client_median`` (and ``_max``): frames an attendee received from sending its
  ``join`` until the end (its ``joined`` reply included); ``msgs_total``: the same summed over
  every attendee and the host (the host from the first arrival); ``msgs_by_type``;
* ``server_rss_mb`` (VmRSS once settled), ``loadavg_1m`` (before the storm) and
  ``loadavg_1m_end``, ``client_cpu_s`` (this process: the clients' own share of the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from _server import (
    rss_mb,
    start_server,
)  # benchmarks/_server.py: the script's folder is on sys.path

DEFAULT_MAX_PARTICIPANTS = 500  # rooms.max_participants; the host counts too
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_s(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; state is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def source_address(index: int) -> str:
    """The ``index``-th client address: 127.1.0.1, 127.1.0.2, ... (all of 127/8 is loopback)."""
    return f"127.1.{index // 250}.{index % 250 + 1}"


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


class Storm:
    """What every client shares: the failures, and when anything last arrived."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.last_frame = time.perf_counter()
        self.by_type: Counter[str] = Counter()

    def fail(self, text: str) -> None:
        if len(self.failures) < 20:
            print(f"FAILURE: {text}", file=sys.stderr)
        self.failures.append(text)


class Client:
    def __init__(self, http: aiohttp.ClientSession, ws_url: str, index: int, storm: Storm) -> None:
        self.http = http
        self.ws_url = ws_url
        self.index = index  # -1: the host
        self.storm = storm
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 0
        self.reader: asyncio.Task[None] | None = None
        self.counting = False  # from sending `join` (attendees) or the storm's start (host)
        self.received = 0
        self.connect_started = 0.0
        self.join_sent = 0.0
        self.joined_at = 0.0
        self.reply_at = 0.0  # when the last reply to one of our requests arrived
        self.closing = False

    async def connect(self) -> None:
        self.connect_started = time.perf_counter()
        self.ws = await self.http.ws_connect(self.ws_url, heartbeat=30, max_msg_size=0)
        self.reader = asyncio.get_running_loop().create_task(self.read())
        welcome = await self.request("hello", protocol=1)
        if welcome["type"] != "welcome":
            raise RuntimeError(f"client {self.index}: hello answered with {welcome}")

    async def join(self, event_id: str, host_key: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {"event_id": event_id, "name": f"Attendee {self.index}"}
        if host_key is not None:
            fields["credential"] = host_key
            fields["name"] = "Host"
        else:
            fields["client_id"] = f"storm-{self.index}"
        self.join_sent = time.perf_counter()
        self.counting = host_key is None
        reply = await self.request("join", **fields)
        self.joined_at = self.reply_at
        expected = "host" if host_key is not None else "attendee"
        if reply["type"] != "joined" or reply.get("role") != expected:
            raise RuntimeError(f"client {self.index}: join answered with {reply}")
        phase = reply.get("room", {}).get("phase")
        if phase != "live":
            raise RuntimeError(f"client {self.index}: joined a room in phase {phase!r}, not live")
        return reply

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        assert self.ws is not None
        self.next_id += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[self.next_id] = fut
        await self.ws.send_json({"type": type_, "id": self.next_id, **fields})
        reply = await asyncio.wait_for(fut, 300)
        if reply["type"] == "error":
            raise RuntimeError(
                f"client {self.index}: {type_} refused: {reply.get('code')} {reply.get('message')}"
            )
        return reply

    async def read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            now = self.storm.last_frame = time.perf_counter()
            message = json.loads(frame.data)
            kind = message.get("type")
            if self.counting:
                self.received += 1
                self.storm.by_type[str(kind)] += 1
            fut = self.replies.pop(message.get("id", -1), None)
            if fut is not None:
                self.reply_at = now
                if not fut.done():
                    fut.set_result(message)
            elif kind in ("error", "bye"):
                self.storm.fail(f"client {self.index} got {message}")
        if not self.closing:
            self.storm.fail(
                f"client {self.index}: the socket closed before the end ({self.ws.close_code})"
            )
        for fut in self.replies.values():
            if not fut.done():
                fut.set_exception(RuntimeError(f"client {self.index}: socket closed"))

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


async def run(
    args: argparse.Namespace, pid: int, url: str, event_id: str, host_key: str
) -> dict[str, Any]:
    storm = Storm()
    ws_url = url.replace("http", "ws") + "/ws"
    connector = aiohttp.TCPConnector(limit=0)
    async with (
        aiohttp.ClientSession(connector=connector, trust_env=False) as http,
        contextlib.AsyncExitStack() as stack,
    ):
        # Attendees come from `--addresses` source addresses: 127.0.0.1 (one address, as
        # behind one NAT), or one session per 127.1.x.y address (distinct people).
        sessions = [http]
        if args.addresses > 1:
            sessions = [
                await stack.enter_async_context(
                    aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=0, local_addr=(source_address(i), 0)),
                        trust_env=False,
                    )
                )
                for i in range(args.addresses)
            ]
        host = Client(http, ws_url, -1, storm)
        await host.connect()
        await host.join(event_id, host_key)
        clients = [
            Client(sessions[i % len(sessions)], ws_url, i, storm) for i in range(args.clients)
        ]
        gate = asyncio.Semaphore(args.concurrency)

        async def arrive(client: Client) -> None:
            async with gate:  # connect, hello and join: at most `concurrency` in flight
                if not args.preconnect:
                    await client.connect()
                await client.join(event_id, None)

        if args.preconnect:  # every socket open and past `hello` before the storm
            for batch in range(0, len(clients), args.concurrency):
                await asyncio.gather(
                    *(c.connect() for c in clients[batch : batch + args.concurrency])
                )

        loadavg_start = os.getloadavg()[0]
        await asyncio.sleep(0.5)  # the host's own join settles before the clock starts
        host.counting = True
        cpu_start, client_cpu_start = server_cpu_s(pid), time.process_time()
        started = time.perf_counter()
        results = await asyncio.gather(*(arrive(c) for c in clients), return_exceptions=True)
        cpu_joined = server_cpu_s(pid)
        errors = [r for r in results if isinstance(r, BaseException)]
        for error in errors[:10]:
            storm.fail(f"{type(error).__name__}: {error}")
        if errors:
            for c in (host, *clients):
                c.closing = True  # the sockets close on the way out; not a failure of theirs
            raise RuntimeError(f"{len(errors)} of {len(clients)} joins failed")
        first_join = min(c.join_sent for c in clients)
        last_joined = max(c.joined_at for c in clients)
        print(
            f"{len(clients)} joined in {last_joined - first_join:.2f} s; settling",
            file=sys.stderr,
        )
        # Settled: nothing has arrived anywhere for `settle` seconds (every announcement of
        # the storm delivered), at most `settle_max` seconds after the last join.
        deadline = time.perf_counter() + args.settle_max
        while time.perf_counter() - storm.last_frame < args.settle:
            if time.perf_counter() > deadline:
                storm.fail(f"still receiving {args.settle_max:.0f} s after the last join")
                break
            await asyncio.sleep(0.1)
        quiet_since = storm.last_frame
        cpu_end, client_cpu_end = server_cpu_s(pid), time.process_time()
        rss = rss_mb(pid)
        loadavg_end = os.getloadavg()[0]
        for c in (host, *clients):
            c.counting = False
        await asyncio.gather(host.close(), *(c.close() for c in clients))
    if storm.failures:
        raise RuntimeError(f"{len(storm.failures)} failures; the first: {storm.failures[0]}")
    total = last_joined - first_join
    waits = sorted((c.joined_at - c.join_sent) * 1000 for c in clients)
    per_client = sorted(c.received for c in clients)
    arrivals = sorted((c.joined_at - c.connect_started) * 1000 for c in clients)
    return {
        "benchmark": "join_storm",
        "clients": args.clients,
        "concurrency": args.concurrency,
        "preconnect": args.preconnect,
        "addresses": args.addresses,
        "total_s": round(total, 3),
        "joins_per_s": round(args.clients / total, 1),
        "join_p50_ms": round(statistics.median(waits), 1),
        "join_p99_ms": round(percentile(waits, 0.99), 1),
        "join_max_ms": round(waits[-1], 1),
        "arrival_p50_ms": None if args.preconnect else round(statistics.median(arrivals), 1),
        "arrival_p99_ms": None if args.preconnect else round(percentile(arrivals, 0.99), 1),
        "server_cpu_ms_per_join": round((cpu_end - cpu_start) * 1000 / args.clients, 2),
        "server_cpu_ms_per_join_to_last_joined": round(
            (cpu_joined - cpu_start) * 1000 / args.clients, 2
        ),
        "msgs_per_client_median": statistics.median(per_client),
        "msgs_per_client_max": per_client[-1],
        "msgs_total": sum(per_client) + host.received,
        "msgs_by_type": dict(sorted(storm.by_type.items())),
        "settled_s": round(quiet_since - started, 2),
        "server_rss_mb": rss,
        "loadavg_1m": round(loadavg_start, 2),
        "loadavg_1m_end": round(loadavg_end, 2),
        "client_cpu_s": round(client_cpu_end - client_cpu_start, 2),
    }


def room_cap(max_participants: int) -> dict[str, str]:
    """The environment that raises ``rooms.max_participants`` (default 500, the host
    included) to ``max_participants`` for the server ``_server.start_server`` starts."""
    if max_participants <= DEFAULT_MAX_PARTICIPANTS:
        return {}
    return {"WEBINAR_ROOMS_MAX_PARTICIPANTS": str(max_participants)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100, help="joins in flight at most")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds without any frame that end the storm"
    )
    parser.add_argument(
        "--preconnect",
        action="store_true",
        help="open every socket and send hello before the storm: only joins are timed",
    )
    parser.add_argument(
        "--addresses",
        type=int,
        default=1,
        help="client source addresses (1: all on 127.0.0.1; the server's entry-attempt limiter"
        " lets one address have 10 joins in flight)",
    )
    parser.add_argument("--settle-max", type=float, default=120.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="webinar-joinstorm-") as tmp:
        started = start_server(Path(tmp), "Join storm benchmark", room_cap(args.clients + 1))
        proc, url, log = started.proc, started.url, started.log
        event_id = str(started.event["event_id"])
        query = urllib.parse.urlsplit(started.event["host_url"]).query
        host_key = urllib.parse.parse_qs(query)["key"][0]
        try:
            try:
                loop_factory = __import__("uvloop").new_event_loop
            except ImportError:
                loop_factory = None
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                result = runner.run(run(args, proc.pid, url, event_id, host_key))
        except Exception as exc:
            print(f"join storm failed: {exc}", file=sys.stderr)
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
        finally:
            started.stop()
        tracebacks = log.read_text(errors="replace").count("Traceback (most recent call last)")
    result["server_tracebacks"] = tracebacks
    print(json.dumps(result))
    return 0 if tracebacks == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
