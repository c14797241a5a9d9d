#!/usr/bin/env python3
"""HLS glass-to-glass latency: from the moment a frame is made to the HLS player showing it,
in real Chromium on loopback.

    python benchmarks/broadcast_hls.py [--seconds 20] [--keyframe-seconds 1] [--size 1280x720]

Runs our server in-process (a fresh data folder) with an event whose attendees all watch over
HLS; a TestPattern is fed in real time through the broadcast Encoder (libx264 + aac) into the
room's HlsSink (until the compositor exists, it stands in for the composed stage). An attendee
in headless Chromium enters the room and plays the stream on the attendee page (hls.js). Every
0.25 s for ``--seconds`` the page reads the frame number TestPattern burnt into the picture it
shows; frame ``n`` was made at ``start + n / fps`` on this machine's clock, which the page
shares (``performance.timeOrigin + performance.now()``), so the difference is the latency:
encoding, the segment being cut at the next keyframe, the player's live edge and decoding.

Prints one JSON line on stdout: ``{"hls_latency_s", "hls_latency_p90_s", "samples",
"keyframe_seconds", "size"}`` (``hls_latency_s`` the median); everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def measure(
    seconds: float, keyframe_seconds: float, width: int, height: int
) -> dict[str, object]:
    from playwright.async_api import async_playwright, expect

    from tests.browser.support import CHROMIUM, CHROMIUM_ARGS
    from tests.helpers import running_server
    from tests.hls_support import SHOWN_FRAME_JS, LivePattern
    from webinar.app import HLS_STREAMS
    from webinar.broadcast.hls import HlsSink
    from webinar.storage.records import EventSettings

    fps = 30
    data = Path(tempfile.mkdtemp(prefix="webinar-hls-"))
    try:
        async with running_server(data / "data") as server, async_playwright() as p:
            event = await server.create_event("HLS latency")
            event = await server.store.update_event(
                event.event_id, EventSettings(title=event.title, hls_mode="all")
            )
            sink = HlsSink()
            server.server.app[HLS_STREAMS].publish(event.event_id, sink)
            live = LivePattern(
                sink, width=width, height=height, fps=fps, keyframe_seconds=keyframe_seconds
            )
            browser = await p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page()
                await page.goto(f"{server.base_url}/e/{event.event_id}")
                await page.get_by_test_id("prejoin-name-input").fill("Latency")
                await page.get_by_test_id("enter-room-button").click()
                await expect(page.get_by_test_id("hls-video")).to_be_visible(timeout=30_000)
                for _ in range(240):
                    if await page.evaluate(SHOWN_FRAME_JS) is not None:
                        break
                    await asyncio.sleep(0.25)
                else:
                    raise SystemExit("the player showed no picture within a minute")
                await asyncio.sleep(3)  # past the start-up (the player settles on its edge)
                samples = []
                loop = asyncio.get_running_loop()
                end = loop.time() + seconds
                while loop.time() < end:
                    seen = await page.evaluate(SHOWN_FRAME_JS)
                    if seen is not None:
                        made = live.started + seen["frame"] / fps
                        samples.append(seen["at"] / 1000 - made)
                    await asyncio.sleep(0.25)
            finally:
                await browser.close()
                await asyncio.to_thread(live.stop)
                dropped = live.dropped
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if not samples:
        raise SystemExit("the player showed no picture")
    ordered = sorted(samples)
    return {
        "hls_latency_s": round(statistics.median(ordered), 2),
        "hls_latency_p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "samples": len(ordered),
        "keyframe_seconds": keyframe_seconds,
        "size": f"{width}x{height}",
        "frames_dropped": dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--keyframe-seconds", type=float, default=1.0)
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    result = asyncio.run(measure(args.seconds, args.keyframe_seconds, width, height))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
