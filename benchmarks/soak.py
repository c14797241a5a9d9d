"""Soak: N signalling clients doing everything a webinar audience does, for minutes on end.

    .venv/bin/python benchmarks/soak.py --minutes 10 --clients 200
    .venv/bin/python benchmarks/soak.py --minutes 0.5          # a quick check

Starts our server (``python -m webinar serve``) as a subprocess on a free 127.0.0.1 port
with a fresh data dir (like ``chat.py``), joins one host and ``--clients`` signalling-only
attendees (no media) to one event and lets them act at random for ``--minutes``: chat,
answer the open poll, ask questions and vote on them, ping, leave and rejoin on a new
socket, and (``--garbage``, 5 % of actions) send garbage: non-JSON text, unknown types,
wrong field types, unknown fields, lone surrogates, huge numbers. The host launches a new
poll every 10 s. The server's RSS (VmRSS) and open file descriptors are read from
``/proc/<pid>`` after the warm-up (every client joined, 10 s of load) and at the end.

Prints exactly one JSON line on stdout (progress goes to stderr). Exits 1 when the server
answered any message with ``internal`` or logged a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from _server import (
    rss_mb,
    start_server,
)  # benchmarks/_server.py: the script's folder is on sys.path

WARMUP_SECONDS = 10.0
POLL_EVERY_SECONDS = 10.0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Stats:
    def __init__(self) -> None:
        self.sent = 0
        self.replies = 0
        self.received = 0
        self.errors: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.rejoins = 0


def garbage(rng: random.Random) -> str:
    """One frame a broken or hostile client might send."""
    choices: list[Any] = [
        "not json at all",
        "{",
        "[1, 2, 3]",
        '{"type": "chat-send", "text": "\\ud800"}',
        '{"type": "chat-send", "text": 12345}',
        '{"type": "chat-send", "text": "x", "extra": true}',
        '{"type": "no-such-type"}',
        '{"type": "poll-answer", "poll_id": "po_x", "answers": [{"question_id": "q1",'
        ' "option_ids": ["q1o1"], "surprise": [[[[]]]]}]}',
        '{"type": "question-vote", "question_id": 1e400}',
        '{"type": "question-vote", "question_id": ' + "9" * 5000 + "}",
        '{"type": "chat-settings", "slow_mode_seconds": -1}',
        '{"type": "grant", "participant_id": "pa_x", "audio": true, "video": true}',
        json.dumps({"type": "chat-send", "text": "y" * 70000}),
        json.dumps({"type": "question-ask", "text": "[" * 500}),
        "[" * 2000 + "]" * 2000,
        '{"type": null}',
        "",
    ]
    return str(rng.choice(choices))


class Client:
    def __init__(
        self, http: aiohttp.ClientSession, ws_url: str, index: int, stats: Stats, host_key: str
    ) -> None:
        self.http = http
        self.ws_url = ws_url
        self.index = index
        self.stats = stats
        self.host_key = host_key
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 0
        self.reader: asyncio.Task[None] | None = None
        self.client_id = f"soak-{index}"
        self.open_poll: dict[str, Any] | None = None
        self.questions: list[str] = []

    async def connect(self, event_id: str) -> None:
        self.ws = await self.http.ws_connect(self.ws_url, heartbeat=30, max_msg_size=0)
        self.reader = asyncio.get_running_loop().create_task(self.read())
        await self.request("hello", protocol=1)
        fields: dict[str, Any] = {"event_id": event_id, "name": f"Client {self.index}"}
        if self.index < 0:
            fields["credential"] = self.host_key
        else:
            fields["client_id"] = self.client_id
        reply = await self.request("join", **fields)
        if reply["type"] != "joined":
            raise RuntimeError(f"join: {reply}")
        state = await self.request("sync-interaction")
        self.open_poll = next((p for p in state.get("polls", []) if p["state"] == "open"), None)
        self.questions = [q["question_id"] for q in state["qa"].get("questions", [])]

    async def request(self, type_: str, **fields: Any) -> dict[str, Any]:
        return await self.send_raw(json.dumps({"type": type_, **fields}), with_id=True)

    async def send_raw(self, text: str, with_id: bool = False) -> dict[str, Any]:
        assert self.ws is not None
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if with_id:
            self.next_id += 1
            self.replies[self.next_id] = fut
            text = text[:-1] + f', "id": {self.next_id}}}'
        self.stats.sent += 1
        await self.ws.send_str(text)
        if not with_id:
            return {}
        reply = await asyncio.wait_for(fut, 60)
        self.stats.replies += 1
        return reply

    async def read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            self.stats.received += 1
            message = json.loads(frame.data)
            kind = message.get("type")
            if kind == "error":
                self.stats.errors[str(message.get("code"))] += 1
            fut = self.replies.pop(message.get("id", -1), None)
            if fut is not None and not fut.done():
                fut.set_result(message)
            elif kind == "poll":
                poll = message["poll"]
                if poll["state"] == "open":
                    self.open_poll = poll
                elif self.open_poll is not None and poll["poll_id"] == self.open_poll["poll_id"]:
                    self.open_poll = None
            elif kind == "question" and message.get("cause") == "asked":
                self.questions.append(message["question"]["question_id"])
                del self.questions[:-50]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        for fut in self.replies.values():
            fut.cancel()
        self.replies.clear()

    async def act(self, rng: random.Random, event_id: str, garbage_share: float) -> None:
        roll = rng.random()
        if roll < garbage_share:
            self.stats.actions["garbage"] += 1
            await self.send_raw(garbage(rng))
            return
        roll = rng.random()
        if roll < 0.35:
            self.stats.actions["chat-send"] += 1
            await self.request("chat-send", text=f"hello {self.index} {rng.random():.6f}")
        elif roll < 0.55 and self.open_poll is not None:
            self.stats.actions["poll-answer"] += 1
            question = self.open_poll["questions"][0]
            option = rng.choice(question["options"])["option_id"]
            await self.request(
                "poll-answer",
                poll_id=self.open_poll["poll_id"],
                answers=[{"question_id": question["question_id"], "option_ids": [option]}],
            )
        elif roll < 0.60:
            self.stats.actions["question-ask"] += 1
            await self.request("question-ask", text=f"Question from {self.index}?")
        elif roll < 0.80 and self.questions:
            self.stats.actions["question-vote"] += 1
            await self.request(
                "question-vote", question_id=rng.choice(self.questions), up=rng.random() < 0.8
            )
        elif roll < 0.95:
            self.stats.actions["ping"] += 1
            await self.request("ping")
        else:
            self.stats.actions["rejoin"] += 1
            await self.send_raw('{"type": "leave"}')
            await asyncio.sleep(0.2)
            await self.close()
            await self.connect(event_id)
            self.stats.rejoins += 1


async def host_loop(host: Client, stop: float) -> None:
    polls = 0
    while time.monotonic() < stop:
        if host.open_poll is not None:
            await host.request("poll-close", poll_id=host.open_poll["poll_id"])
        polls += 1
        created = await host.request(
            "poll-create",
            title=f"Poll {polls}",
            questions=[
                {"text": "Which one?", "kind": "single", "options": [{"text": "A"}, {"text": "B"}]}
            ],
        )
        if created["type"] == "poll":
            await host.request("poll-launch", poll_id=created["poll"]["poll_id"])
        if rng_host.random() < 0.3:
            await host.request("chat-send", text=f"host note {polls}")
        await asyncio.sleep(POLL_EVERY_SECONDS)


rng_host = random.Random(7)


async def run(
    args: argparse.Namespace, pid: int, url: str, event_id: str, host_key: str
) -> dict[str, Any]:
    stats = Stats()
    connector = aiohttp.TCPConnector(limit=0)
    ws_url = url.replace("http", "ws") + "/ws"
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
        host = Client(http, ws_url, -1, stats, host_key)
        await host.connect(event_id)
        clients = [Client(http, ws_url, i, stats, host_key) for i in range(args.clients)]
        started = time.monotonic()
        for batch in range(0, len(clients), 20):
            await asyncio.gather(*(c.connect(event_id) for c in clients[batch : batch + 20]))
        print(
            f"{len(clients)} clients joined in {time.monotonic() - started:.1f} s", file=sys.stderr
        )
        duration = args.minutes * 60
        begin = time.monotonic()
        stop = begin + duration
        measured: dict[str, Any] = {}

        async def measure_start() -> None:
            await asyncio.sleep(min(args.warmup, duration / 3))
            measured["rss_start_mb"] = rss_mb(pid)
            measured["fds_start"] = fd_count(pid)
            measured["messages_start"] = stats.sent

        async def client_loop(client: Client, seed: int) -> None:
            rng = random.Random(seed)
            await asyncio.sleep(rng.uniform(0, args.interval))
            while time.monotonic() < stop:
                await client.act(rng, event_id, args.garbage)
                await asyncio.sleep(rng.uniform(0.5, 1.5) * args.interval)

        async def progress() -> None:
            while time.monotonic() < stop:
                await asyncio.sleep(60)
                print(
                    f"{time.monotonic() - begin:.0f} s: {stats.sent} sent, rss {rss_mb(pid)} MB,"
                    f" fds {fd_count(pid)}, errors {dict(stats.errors)}",
                    file=sys.stderr,
                )

        reporter = asyncio.get_running_loop().create_task(progress())
        await asyncio.gather(
            measure_start(),
            host_loop(host, stop),
            *(client_loop(c, args.seed * 100_000 + i) for i, c in enumerate(clients)),
        )
        reporter.cancel()
        await asyncio.sleep(2.0)  # the last replies and broadcasts
        elapsed = time.monotonic() - begin
        # Every client still answers.
        pongs = await asyncio.gather(*(c.request("ping") for c in clients), return_exceptions=True)
        alive = sum(1 for p in pongs if isinstance(p, dict) and p.get("type") == "pong")
        rss_end, fds_before_close = rss_mb(pid), fd_count(pid)
        await asyncio.gather(host.close(), *(c.close() for c in clients))
    return {
        "messages": stats.sent,
        "replies": stats.replies,
        "received": stats.received,
        "errors_by_code": dict(sorted(stats.errors.items())),
        "internal_errors": stats.errors.get("internal", 0),
        "actions": dict(sorted(stats.actions.items())),
        "rejoins": stats.rejoins,
        "clients_answering_at_end": alive,
        "warmup_s": min(args.warmup, duration / 3),
        "rss_start_mb": measured["rss_start_mb"],
        "rss_end_mb": rss_end,
        "rss_growth_pct": round((rss_end / measured["rss_start_mb"] - 1) * 100, 1),
        "fds_start": measured["fds_start"],
        "fds_end": fds_before_close,
        "messages_per_second": round(stats.sent / elapsed, 1),
        "duration_s": round(elapsed, 1),
        "clients": args.clients,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--interval", type=float, default=2.0, help="mean seconds between actions")
    parser.add_argument("--garbage", type=float, default=0.05, help="share of garbage frames")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--warmup",
        type=float,
        default=WARMUP_SECONDS,
        help="seconds of load before the start figures (RSS, descriptors) are read",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="webinar-soak-") as tmp:
        started = start_server(Path(tmp), "Soak benchmark")
        proc, url, log = started.proc, started.url, started.log
        event_id = str(started.event["event_id"])
        host_key = urllib.parse.parse_qs(urllib.parse.urlsplit(started.event["host_url"]).query)[
            "key"
        ][0]
        try:
            result = asyncio.run(run(args, proc.pid, url, event_id, host_key))
        finally:
            started.stop()
        text = log.read_text(errors="replace")
        result["server_tracebacks"] = text.count("Traceback (most recent call last)")
    print(json.dumps(result))
    ok = result["internal_errors"] == 0 and result["server_tracebacks"] == 0
    return 0 if ok and result["clients_answering_at_end"] == args.clients else 1


if __name__ == "__main__":
    sys.exit(main())
