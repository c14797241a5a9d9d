#!/usr/bin/env python3
"""Keyframe-storm benchmark: N subscribers join one publisher's stream within a minute;
how many keyframe requests (PLI) reach the publisher, per layer and second.

    python benchmarks/keyframe_storm.py [--subscribers 500] [--join-within 60]

Starts our server (``python -m webinar serve``, ``benchmarks/_server.py``) with a fresh
event, one publisher and N subscribers (``WebinarClient``, as ``fanout.py`` runs them: the
publisher replays a pre-encoded VP8 clip, subscribers only count RTP packets), each in
worker processes. Subscriber i joins at ``i * join_within / N`` seconds. Every new
subscriber needs a keyframe, which the server asks of the publisher.

The publisher is a single VP8 stream (aiortc cannot send simulcast), so it has one layer
(one SSRC); the per-layer limit is the same code for each simulcast encoding. It answers
keyframe requests as Chrome does: a PLI more than 300 ms after the last one it answered
restarts its clip (whose only keyframe is its first frame, so one comes every
``--clip-seconds`` otherwise); a PLI sooner is ignored. The PLIs are counted at the
publisher, from the RTCP its ``RTCRtpSender`` receives (``_handle_rtcp_packet``), with
their SSRC and arrival time.

Prints one JSON line on stdout (keys in benchmarks/README.md); everything else goes to
stderr. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import fanout  # benchmarks/fanout.py: the script's folder is on sys.path
from _server import start_server
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket
from join_storm import room_cap
from prometheus_client.parser import text_string_to_metric_families

from webinar.client.media import ClipTrack, EncodedClip, make_vp8_clip
from webinar.client.peer import WebinarClient

log = logging.getLogger("keyframe_storm")

LOOPBACK = fanout.LOOPBACK
CHROME_IGNORES = 0.3  # s: Chrome ignores a keyframe request this soon after one it answered
FIRST_FRAME_TIMEOUT = 20.0  # s after its join: a subscriber without video by then failed


# --------------------------------------------------------------------------- publisher


class KeyframeOnRequest(ClipTrack):
    """A clip whose next frame is its first (a keyframe) once asked: an encoder answering
    a PLI."""

    def __init__(self, clip: EncodedClip) -> None:
        super().__init__(clip)
        self.want_keyframe = False

    async def recv(self) -> Any:
        if self.want_keyframe:
            self.want_keyframe = False
            self._index = 0
        return await super().recv()


@dataclass(frozen=True)
class Spec:
    role: str  # "publisher" | "subscribers"
    url: str
    event_id: str
    credential: str | None = None
    clip: EncodedClip | None = None
    joins: tuple[tuple[int, float], ...] = ()  # (subscriber index, seconds after start)
    start: float = 0.0  # time.monotonic() (system-wide) of the storm's start
    log_level: int = logging.WARNING


async def _publisher(conn: Connection, spec: Spec) -> None:
    assert spec.clip is not None
    track = KeyframeOnRequest(spec.clip)
    client = WebinarClient(spec.url, mode="count", host_addresses=[LOOPBACK])
    plis: list[tuple[float, int]] = []  # (time.monotonic(), media SSRC)
    answered = [-1e9]
    try:
        await client.join(spec.event_id, "Publisher", spec.credential)
        await client.publish([(track, "camera")])
        assert client.publish_pc is not None
        (sender,) = client.publish_pc.getSenders()
        original = sender._handle_rtcp_packet

        async def watch(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
                now = time.monotonic()
                plis.append((now, packet.media_ssrc))
                if now - answered[0] >= CHROME_IGNORES:
                    answered[0] = now
                    track.want_keyframe = True
            await original(packet)

        sender._handle_rtcp_packet = watch  # type: ignore[method-assign]
        conn.send({"ready": True})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        conn.send({"plis": plis, "frames": track.frames_sent})
    except Exception as exc:
        log.exception("publisher failed")
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 10)
        track.stop()


class FirstVideo(Counter[str]):
    """A client's packet counter that notes when its first video packet came."""

    def __init__(self) -> None:
        super().__init__()
        self.first_video: float | None = None
        self.seen = asyncio.Event()

    def __setitem__(self, key: str, value: int) -> None:
        if key == "video" and self.first_video is None:
            self.first_video = time.monotonic()
            self.seen.set()
        super().__setitem__(key, value)


async def _subscribers(conn: Connection, spec: Spec) -> None:
    clients: list[WebinarClient] = []
    results: list[dict[str, Any]] = []

    async def one(index: int, at: float) -> None:
        delay = spec.start + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        client = WebinarClient(spec.url, mode="count", host_addresses=[LOOPBACK])
        counter = FirstVideo()
        client.stats.packets = counter
        clients.append(client)
        began = time.monotonic()
        row: dict[str, Any] = {"index": index, "late_s": began - spec.start - at}
        try:
            await client.join(spec.event_id, f"Viewer {index + 1}")
            row["joined_s"] = time.monotonic() - began
            with contextlib.suppress(TimeoutError):
                left = began + FIRST_FRAME_TIMEOUT - time.monotonic()
                await asyncio.wait_for(counter.seen.wait(), left)
            if counter.first_video is not None:
                row["first_frame_s"] = counter.first_video - began
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
        results.append(row)

    try:
        await asyncio.gather(*(one(i, at) for i, at in spec.joins))
        conn.send({"results": results})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"
    finally:
        await asyncio.gather(
            *(asyncio.wait_for(c.close(), 10) for c in clients), return_exceptions=True
        )
        with contextlib.suppress(Exception):
            conn.send({"stopped": True})


def worker_main(conn: Connection, spec: Spec) -> None:
    """Entry point of a worker process (spawned)."""
    fanout._die_with_parent()
    main = _publisher if spec.role == "publisher" else _subscribers
    fanout.run_client_process(spec.role, spec.log_level, lambda: main(conn, spec))


class Worker:
    def __init__(self, ctx: Any, spec: Spec) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, spec), daemon=True)
        self.process.start()
        child.close()

    def receive(self, timeout: float) -> dict[str, Any]:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"a {self.process.name} did not answer within {timeout:.0f} s")
        reply: dict[str, Any] = self.conn.recv()
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def stop(self) -> dict[str, Any] | None:
        reply = None
        if self.process.is_alive():
            with contextlib.suppress(Exception):
                self.conn.send("stop")
                reply = self.receive(20)
            self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(3)
        return reply


# --------------------------------------------------------------------------- figures


def most_in_a_second(times: list[float]) -> int:
    """The most of ``times`` in any window [t, t + 1 s)."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def server_plis(url: str) -> dict[str, int] | None:
    """``webinar_publisher_keyframe_requests_total`` by layer (None: the server has no such
    series, e.g. an older tree)."""
    with fanout._HTTP.open(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "webinar_publisher_keyframe_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    found[sample.labels["layer"]] = int(sample.value)
    return found or None


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.subscribers
    ctx = multiprocessing.get_context("spawn")
    tmp = Path(tempfile.mkdtemp(prefix="webinar-keyframe-storm-"))
    t = time.monotonic()
    clip = make_vp8_clip(
        width=args.width,
        height=args.height,
        fps=args.fps,
        seconds=args.clip_seconds,
        bitrate=args.bitrate,
        keyframe_interval=10_000,  # the first frame only
    )
    log.info("clip: %d kbit/s, encoded in %.1f s", clip.bitrate_bps // 1000, time.monotonic() - t)
    env = {"WEBINAR_ICE_HOST_ADDRESSES": LOOPBACK, **room_cap(n + 1)}
    server = start_server(tmp, "Keyframe storm", env)
    event = server.event
    credential = urllib.parse.parse_qs(urllib.parse.urlsplit(event["presenter_url"]).query)["key"][
        0
    ]
    workers: list[Worker] = []
    try:
        publisher = Worker(
            ctx, Spec("publisher", server.url, event["event_id"], credential, clip=clip)
        )
        workers.append(publisher)
        publisher.receive(60)
        time.sleep(args.warmup)
        start = time.monotonic() + 3.0  # the subscriber processes start meanwhile
        spacing = args.join_within / n
        joins = [(i, i * spacing) for i in range(n)]
        processes = max(1, min(args.processes, n))
        subscribers = [
            Worker(
                ctx,
                Spec(
                    "subscribers",
                    server.url,
                    event["event_id"],
                    joins=tuple(joins[k::processes]),
                    start=start,
                ),
            )
            for k in range(processes)
        ]
        workers += subscribers
        wait = start - time.monotonic() + args.join_within + FIRST_FRAME_TIMEOUT + 60
        rows = [r for w in subscribers for r in w.receive(wait)["results"]]
        ended = time.monotonic()
        server_count = server_plis(server.url)
        published = publisher.stop()
        workers.remove(publisher)
        assert published is not None
        plis: list[tuple[float, int]] = published["plis"]
        in_storm = [(at, ssrc) for at, ssrc in plis if start <= at <= ended]
        by_ssrc: dict[int, list[float]] = {}
        for at, ssrc in in_storm:
            by_ssrc.setdefault(ssrc, []).append(at)
        gaps = [b - a for times in by_ssrc.values() for a, b in itertools.pairwise(sorted(times))]
        firsts = [r["first_frame_s"] for r in rows if "first_frame_s" in r]
        errors = Counter(r["error"].split(":")[0] for r in rows if "error" in r)
        storm_s = ended - start
        late = [r["late_s"] for r in rows]
        joined = [r["joined_s"] for r in rows if "joined_s" in r]
        return {
            "subscribers": n,
            "join_within_s": args.join_within,
            "joined": len(joined),
            "receiving": len(firsts),
            "join_errors": dict(errors),
            "max_pli_per_layer_second": max(
                (most_in_a_second(times) for times in by_ssrc.values()), default=0
            ),
            "min_pli_gap_s": _round(min(gaps, default=None)),
            "pli_gaps_under_1s": sum(1 for g in gaps if g < 1.0),
            "pli_total": len(in_storm),
            "pli_by_layer": sorted(len(times) for times in by_ssrc.values()),
            "pli_per_second": round(len(in_storm) / storm_s, 2),
            "server_pli_total": sum(server_count.values()) if server_count else None,
            "first_frame_median_s": _round(quantile(firsts, 0.5)),
            "first_frame_p90_s": _round(quantile(firsts, 0.9)),
            "first_frame_max_s": _round(max(firsts, default=None)),
            "join_median_s": _round(quantile(joined, 0.5)),
            "join_late_max_s": _round(max(late, default=None)),
            "storm_s": round(storm_s, 1),
            "clip": f"{args.width}x{args.height} {args.fps} fps {clip.bitrate_bps // 1000} kbit/s",
            "load_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        for w in workers:
            w.stop()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--join-within", type=float, default=60.0, help="seconds")
    parser.add_argument("--processes", type=int, default=2, help="subscriber client processes")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the first join")
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--bitrate", type=int, default=80_000)
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.setLevel(logging.INFO)
    result = run(args)
    print(json.dumps(result), flush=True)
    return 0 if result["receiving"] == result["subscribers"] else 1


if __name__ == "__main__":
    sys.exit(main())
