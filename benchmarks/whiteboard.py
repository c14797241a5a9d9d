#!/usr/bin/env python3
"""Whiteboard stroke latency: from a presenter pressing the mouse on the board to the stroke
drawn on an attendee's canvas, in real Chromium on loopback; and what a long stroke costs in
messages.

    python benchmarks/whiteboard.py [--strokes 30] [--attendees 1] [--long-seconds 6]

Runs our server in-process (a fresh data folder); a presenter and ``--attendees`` attendees in
headless Chromium (one browser, a context each) join, the presenter puts the whiteboard on
stage and draws ``--strokes`` short pen strokes with the mouse (press, three moves, release
after 0.3 s). Each is timed from the press (taken inside the presenter's page just before it)
to the first attendee's animation frame after its canvas counted the new stroke (the frame
that draws it), on one clock: ``performance.timeOrigin + performance.now()`` of both pages,
which run on this machine. Then one stroke is drawn for ``--long-seconds`` (a move every
20 ms) and the ``whiteboard-stroke`` messages the presenter's page sent for it are counted:
the page sends at most 8 a second after a burst of 10 (the server refuses a client over 20 a
second), and the attendee must end up with every point.

Prints one JSON line on stdout: ``{"stroke_ms_median", "stroke_ms_p90", "strokes",
"attendees", "samples_ms", "long_stroke_messages", "long_stroke_seconds",
"long_stroke_messages_per_second", "long_stroke_points", "long_stroke_points_seen"}``;
everything else goes to stderr.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOW_JS = "() => performance.timeOrigin + performance.now()"

# On the attendee's page: the time of the frame after each new stroke count.
WATCH_JS = """
() => {
  const canvas = document.querySelector("[data-testid=whiteboard]");
  window.__strokesSeen = {};
  new MutationObserver(() => {
    const count = canvas.dataset.strokes;
    if (count in window.__strokesSeen) return;
    window.__strokesSeen[count] = null;
    requestAnimationFrame(() => {
      window.__strokesSeen[count] = performance.timeOrigin + performance.now();
    });
  }).observe(canvas, { attributes: true, attributeFilter: ["data-strokes"] });
}
"""

# On the presenter's page: count the whiteboard-stroke requests (time, points, done).
COUNT_JS = """
() => {
  const content = window.__webinar.room.content;
  const request = content.request.bind(content);
  window.__strokeMessages = [];
  content.request = (type, fields) => {
    if (type === "whiteboard-stroke") {
      window.__strokeMessages.push([performance.now(), fields.points.length, fields.done]);
    }
    return request(type, fields);
  };
}
"""


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


async def run(strokes: int, attendees: int, long_seconds: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright, expect

    from tests.browser.support import (
        CHROMIUM,
        CHROMIUM_ARGS,
        DESKTOP,
        join_attendee,
        join_presenter,
    )
    from tests.helpers import running_server

    data = Path(tempfile.mkdtemp(prefix="webinar-whiteboard-"))
    try:
        async with running_server(data / "data") as server, async_playwright() as p:
            event = await server.create_event("Whiteboard benchmark")
            browser = await p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                presenter = await (await browser.new_context(viewport=DESKTOP)).new_page()
                await join_presenter(presenter, server, event, "Presenter", preview=False)
                viewers = []
                for n in range(attendees):
                    page = await (await browser.new_context(viewport=DESKTOP)).new_page()
                    await join_attendee(page, server, event, f"Attendee {n + 1}")
                    viewers.append(page)
                await presenter.evaluate(
                    "() => window.__webinar.room.content.request("
                    "'stage-layout', {layout: 'whiteboard'})"
                )
                first = viewers[0]
                await expect(first.get_by_test_id("whiteboard")).to_be_visible()
                await first.evaluate(WATCH_JS)
                await presenter.evaluate(COUNT_JS)
                canvas = presenter.get_by_test_id("whiteboard")
                box = await canvas.bounding_box()
                assert box is not None
                x, y, w, h = box["x"], box["y"], box["width"], box["height"]
                samples: list[float] = []
                for i in range(strokes):
                    row = 0.05 + 0.9 * (i % 20) / 20
                    column = 0.1 + 0.3 * (i // 20)
                    await presenter.mouse.move(x + column * w, y + row * h)
                    pressed = await presenter.evaluate(NOW_JS)
                    await presenter.mouse.down()
                    await presenter.mouse.move(x + (column + 0.15) * w, y + row * h, steps=3)
                    await asyncio.sleep(0.3)
                    await presenter.mouse.up()
                    seen = None
                    for _ in range(100):
                        seen = await first.evaluate(
                            "(n) => window.__strokesSeen[String(n)] ?? null", i + 1
                        )
                        if seen is not None:
                            break
                        await asyncio.sleep(0.02)
                    if seen is None:
                        raise RuntimeError(f"stroke {i + 1} never reached the attendee")
                    samples.append(round(seen - pressed, 1))
                    log(f"stroke {i + 1}: {samples[-1]} ms")

                # one long stroke
                before = await presenter.evaluate("() => window.__strokeMessages.length")
                await presenter.mouse.move(x + 0.7 * w, y + 0.1 * h)
                await presenter.mouse.down()
                moves = int(long_seconds / 0.02)
                for i in range(moves):
                    fx = 0.7 + 0.25 * ((i % 60) / 60)
                    fy = 0.1 + 0.8 * (i / moves)
                    await presenter.mouse.move(x + fx * w, y + fy * h)
                    await asyncio.sleep(0.02)
                await presenter.mouse.up()
                messages = (await presenter.evaluate("() => window.__strokeMessages"))[before:]
                elapsed = (messages[-1][0] - messages[0][0]) / 1000 if messages else 0.0
                mine = await presenter.evaluate(
                    "() => window.__webinar.room.whiteboard.shown.at(-1).points.length"
                )
                await expect(first.get_by_test_id("whiteboard")).to_have_attribute(
                    "data-strokes", str(strokes + 1)
                )
                await asyncio.sleep(0.5)
                theirs = await first.evaluate(
                    "() => window.__webinar.room.whiteboard.shown.at(-1).points.length"
                )
            finally:
                await browser.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    ordered = sorted(samples)
    return {
        "stroke_ms_median": statistics.median(samples),
        "stroke_ms_p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "strokes": strokes,
        "attendees": attendees,
        "samples_ms": samples,
        "long_stroke_messages": len(messages),
        "long_stroke_seconds": round(elapsed, 2),
        "long_stroke_messages_per_second": round(len(messages) / elapsed, 1) if elapsed else None,
        "long_stroke_points": mine,
        "long_stroke_points_seen": theirs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=30)
    parser.add_argument("--attendees", type=int, default=1)
    parser.add_argument("--long-seconds", type=float, default=6.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.strokes, args.attendees, args.long_seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
