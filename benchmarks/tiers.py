#!/usr/bin/env python3
"""Bandwidth-tier benchmark: how fast a subscriber's quality follows its network.

    python benchmarks/tiers.py [--limit-kbit 700] [--hold 15]

Runs our server in-process, two presenters in headless Chromium (Alice speaks, Bob's
microphone is off; both send VP8 simulcast) and one attendee in a Chromium of its own
behind a veth pair in a private network namespace, shaped with ``tc`` (tbf) on the
server's side (tests/browser/shaping.py). Phases:

1. unlimited from the start: time until the attendee receives Alice's top layer;
2. limited to ``--limit-kbit``: time until the allocation drops (fewer cameras or a
   lower layer), then ``--hold`` seconds steady;
3. the limit lifted: time until Alice's top layer and both cameras are back.

Prints one JSON line on stdout: ``top_layer_after_start_s``, ``adapt_down_s``,
``adapt_up_s``, ``publisher_top_idle_s`` (how much of that climb Alice's browser itself sent
nothing on its active top encoding: a busy CPU's or its uplink's choice, no layer to climb
to), ``freezes`` (the attendee's inbound-rtp ``freezeCount`` growth per
phase, all videos), ``frames_decoded`` per phase, and ``bytes_per_tier``: the
attendee's received video kbit/s per phase with the tier the server reported.
Needs root; outside a private network namespace it re-runs itself in one
(``unshare -n``). Everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INNER = "WEBINAR_TIERS_BENCH_INNER"


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


async def run(
    limit_kbit: int,
    hold: float,
    trace: bool = False,
    loss_percent: float = 0.0,
    jitter_ms: int = 0,
) -> dict[str, Any]:
    from playwright.async_api import Page, async_playwright

    from tests.browser.shaping import SERVER_ADDRESS, ShapedNetwork
    from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, DESKTOP, go_live, join_presenter
    from tests.browser.test_tiers import (
        OUTBOUND_JS,
        allocation,
        camera_producer,
        layer_of,
        video_stats,
    )
    from tests.helpers import LOOPBACK, running_server
    from webinar.config import Config, IceConfig, RoomsConfig, SignallingConfig

    net = ShapedNetwork().start()
    if loss_percent:
        net.lose(loss_percent)
    if jitter_ms:
        net.jitter(jitter_ms)
    data = Path(tempfile.mkdtemp(prefix="webinar-tiers-"))
    config = Config(
        data_dir=data,
        ice=IceConfig(host_addresses=(LOOPBACK, SERVER_ADDRESS)),
        rooms=RoomsConfig(),
        signalling=SignallingConfig(),
    )
    out: dict[str, Any] = {
        "limit_kbit": limit_kbit,
        "hold_s": hold,
        "loss_percent": loss_percent,
        "jitter_ms": jitter_ms,
    }
    try:
        async with running_server(data, config, host="0.0.0.0") as server, async_playwright() as p:
            presenters = await p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            shaped = await p.chromium.launch(
                executable_path=str(net.chromium_wrapper), headless=True, args=CHROMIUM_ARGS
            )
            event = await server.create_event("Tiers benchmark")
            alice = await (await presenters.new_context(viewport=DESKTOP)).new_page()
            bob = await (await presenters.new_context(viewport=DESKTOP)).new_page()
            await join_presenter(alice, server, event, "Alice")
            await go_live(alice)
            await bob.goto(
                f"{server.base_url}/e/{event.event_id}/present?key={event.presenter_key}"
            )
            await bob.get_by_test_id("precheck-mic-toggle").click()
            await bob.get_by_test_id("prejoin-name-input").fill("Bob")
            await bob.get_by_test_id("enter-room-button").click()
            await go_live(bob)
            alice_cam, bob_cam = await camera_producer(alice), await camera_producer(bob)
            viewer: Page = await (await shaped.new_context(viewport=DESKTOP)).new_page()
            url = server.base_url.replace(LOOPBACK, SERVER_ADDRESS)
            start = time.monotonic()
            await viewer.goto(f"{url}/e/{event.event_id}")
            await viewer.get_by_test_id("prejoin-name-input").fill("Viewer")
            await viewer.get_by_test_id("enter-room-button").click()

            # Every ~0.3 s: each video's freeze count and total freeze time, so a phase's
            # longest freeze is known (bounded above: growth of the time in a sample
            # interval in which the count grew).
            freeze_log: list[tuple[float, dict[str, tuple[int, float]]]] = []

            async def watch_freezes() -> None:
                while True:
                    try:
                        stats = await video_stats(viewer)
                    except Exception:  # the page navigates or closes
                        stats = {}
                    freeze_log.append(
                        (
                            time.monotonic(),
                            {
                                pid: (s["freezeCount"], s.get("totalFreezesDuration", 0.0))
                                for pid, s in stats.items()
                            },
                        )
                    )
                    await asyncio.sleep(0.3)

            watcher = asyncio.get_running_loop().create_task(watch_freezes())

            def freeze_figures(t0: float, t1: float) -> tuple[float, float]:
                """(total freeze seconds, upper bound of the longest freeze) in [t0, t1]."""
                rows = [r for r in freeze_log if t0 <= r[0] <= t1]
                total = longest = 0.0
                for (_, a), (_, b) in itertools.pairwise(rows):
                    for pid, (count, dur) in b.items():
                        before = a.get(pid)
                        if before is None or count <= before[0]:
                            continue
                        grew = max(dur - before[1], 0.0)
                        total += grew
                        longest = max(longest, grew)
                return round(total, 2), round(longest, 2)

            async def sample() -> dict[str, Any]:
                stats = await video_stats(viewer)
                if trace:
                    alloc = await allocation(viewer) or {}
                    layers = {x["producer_id"]: x for x in alloc.get("streams", [])}
                    cams = ((alice_cam, "alice"), (bob_cam, "bob"))
                    print(
                        f"{time.monotonic() - start:6.2f} net={net.rate_kbit}"
                        f" budget={alloc.get('budget_bps')} est={alloc.get('estimate_bps')} "
                        + " ".join(
                            f"{name}: fz={stats.get(pid, {}).get('freezeCount')}"
                            f" dec={stats.get(pid, {}).get('framesDecoded')}"
                            f" lost={stats.get(pid, {}).get('packetsLost')}"
                            f" kf={stats.get(pid, {}).get('keyFramesDecoded')}"
                            f" s/t={layers.get(pid, {}).get('spatial')}"
                            f"/{layers.get(pid, {}).get('temporal')}"
                            for pid, name in cams
                        ),
                        file=sys.stderr,
                    )
                return {
                    "t": time.monotonic(),
                    "alloc": await allocation(viewer),
                    "freezes": sum(s["freezeCount"] for s in stats.values()),
                    "frames": sum(s["framesDecoded"] for s in stats.values()),
                    "bytes": sum(s["bytesReceived"] for s in stats.values()),
                    "alice_width": stats.get(alice_cam, {}).get("frameWidth", 0),
                }

            async def until(pred: Any, within: float) -> tuple[float | None, dict[str, Any]]:
                began = time.monotonic()
                s = await sample()
                while not pred(s):
                    if time.monotonic() - began > within:
                        return None, s
                    await asyncio.sleep(0.25)
                    s = await sample()
                return s["t"], s

            def top_reached(s: dict[str, Any]) -> bool:
                top = s.get("top", 0)
                return (
                    layer_of(s["alloc"], alice_cam) == (False, 2)
                    and layer_of(s["alloc"], bob_cam)[0] is False
                    and s["alice_width"] > 0
                    and s["alice_width"] >= top
                )

            async def with_top(s: dict[str, Any]) -> dict[str, Any]:
                sent = await alice.evaluate(OUTBOUND_JS)
                top = sent.get("f", {})
                s["top"] = top.get("width", 0)
                s["top_bytes"] = top.get("bytes", 0)
                s["top_active"] = top.get("active", True) is not False
                return s

            def top_idle(a: dict[str, Any], b: dict[str, Any]) -> float:
                """Seconds between two samples in which Alice's browser sent nothing on its
                top encoding although it was active (its own choice: a busy CPU or its
                uplink estimate; an encoding nobody wants is made inactive instead)."""
                idle = b["top_active"] and b["top_bytes"] == a.get("top_bytes")
                return b["t"] - a["t"] if idle else 0.0

            phases: dict[str, dict[str, Any]] = {}

            async def phase(name: str, first: dict[str, Any], last: dict[str, Any]) -> None:
                seconds = max(last["t"] - first["t"], 1e-6)
                alloc = last["alloc"] or {}
                freeze_s, longest = freeze_figures(first["t"], last["t"])
                phases[name] = {
                    "freeze_seconds": freeze_s,
                    "longest_freeze_s": longest,
                    "seconds": round(seconds, 1),
                    "video_kbps": round((last["bytes"] - first["bytes"]) * 8 / seconds / 1000),
                    "tier": (alloc.get("tier") or {}).get("label"),
                    "freezes": last["freezes"] - first["freezes"],
                    "frames_decoded": last["frames"] - first["frames"],
                }

            # 1. unlimited: the top layer
            s0 = await sample()
            reached, s1 = None, s0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                s1 = await with_top(await sample())
                if top_reached(s1):
                    reached = s1["t"]
                    break
                await asyncio.sleep(0.5)
            out["top_layer_after_start_s"] = round(reached - start, 1) if reached else None
            await phase("start", s0, s1)
            # 2. limited (the phase begins at the limit: adapting to it is part of it)
            if limit_kbit:
                net.limit(limit_kbit)
            limited_at = time.monotonic()
            down, _ = await until(
                lambda s: (
                    layer_of(s["alloc"], bob_cam)[0] is True
                    or (layer_of(s["alloc"], alice_cam)[1] or 0) < 2
                ),
                within=30 if limit_kbit else 0,
            )
            out["adapt_down_s"] = round(down - limited_at, 1) if down else None
            held = time.monotonic() + hold
            while time.monotonic() < held:
                await asyncio.sleep(0.5)
                if trace:
                    await sample()
            s3 = await sample()
            await phase("limited", s1, s3)
            # 3. lifted (from the lift: the climb back is part of it)
            net.unlimit()
            lifted_at = time.monotonic()
            up, s4 = None, await with_top(s3)
            idle = 0.0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                previous, s4 = s4, await with_top(await sample())
                idle += top_idle(previous, s4)
                if top_reached(s4):
                    up = s4["t"]
                    break
                await asyncio.sleep(0.25)
            out["adapt_up_s"] = round(up - lifted_at, 1) if up else None
            out["publisher_top_idle_s"] = round(idle, 1)
            await asyncio.sleep(3)
            s5 = await sample()
            await phase("lifted", s3, s5)
            watcher.cancel()
            out["freezes"] = {k: v["freezes"] for k, v in phases.items()}
            out["freeze_seconds"] = {k: v["freeze_seconds"] for k, v in phases.items()}
            out["longest_freeze_s"] = {k: v["longest_freeze_s"] for k, v in phases.items()}
            out["frames_decoded"] = {k: v["frames_decoded"] for k, v in phases.items()}
            out["bytes_per_tier"] = {
                k: {"tier": v["tier"], "video_kbps": v["video_kbps"], "seconds": v["seconds"]}
                for k, v in phases.items()
            }
            await shaped.close()
            await presenters.close()
    finally:
        net.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit-kbit", type=int, default=700)
    parser.add_argument("--hold", type=float, default=15.0)
    parser.add_argument(
        "--trace", action="store_true", help="print every sample (per stream) to stderr"
    )
    parser.add_argument(
        "--loss-percent",
        type=float,
        default=0.0,
        help="drop this share of the UDP datagrams to the attendee at random, in every phase"
        " (nftables numgen on the veth)",
    )
    parser.add_argument(
        "--jitter-ms",
        type=int,
        default=0,
        help="delay each UDP datagram to the attendee by a random 0..N ms, in every phase"
        " (a user-space relay: the kernel here has no netem)",
    )
    args = parser.parse_args()
    if os.environ.get(INNER) != "1":
        script = (
            "ip link set lo up && ip addr add 127.0.0.2/8 dev lo && "
            f'exec "{sys.executable}" "{Path(__file__).resolve()}" '
            f"--limit-kbit {args.limit_kbit} --hold {args.hold}"
            f" --loss-percent {args.loss_percent} --jitter-ms {args.jitter_ms}"
            + (" --trace" if args.trace else "")
        )
        env = {**os.environ, INNER: "1"}
        sys.exit(subprocess.run(["unshare", "-n", "sh", "-c", script], env=env).returncode)
    if args.trace:  # the budget controller's decisions and each allocation, by time
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(relativeCreated)8.0f %(name)s %(message)s"))
        for name in ("webinar.sfu.estimator", "webinar.sfu.tiers", "webinar.sfu.twcc"):
            logging.getLogger(name).setLevel(logging.DEBUG)
            logging.getLogger(name).addHandler(handler)
    result = asyncio.run(
        run(args.limit_kbit, args.hold, args.trace, args.loss_percent, args.jitter_ms)
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
