#!/usr/bin/env python3
"""Slide-turn latency: from a presenter's click on "next page" to an attendee's image of that
page loaded, in real Chromium on loopback.

    python benchmarks/slides.py [--turns 30] [--gap 0.5] [--attendees 1]

Runs our server in-process (a fresh data folder), uploads a 10-page PDF as the presenter
(``POST /api/v1/events/{id}/content`` with the presenter key) and waits until its pages are
rendered; then a presenter and ``--attendees`` attendees in headless Chromium (one browser,
a context each) join the room, the presenter puts the presentation on stage, and turns pages
``--turns`` times (through the deck and back), ``--gap`` seconds apart (a presenter talks
between turns; the room loads the next pages meanwhile, as it does in a real talk). Each
turn is timed from the click (taken inside the presenter's page) to the moment the first
attendee's slide image has that page loaded (its ``data-page`` is set on the image's load),
on one clock: ``performance.timeOrigin + performance.now()`` of both pages, which run on
this machine (tests/browser/slides.py).

Prints one JSON line on stdout: ``{"slide_turn_ms_median", "slide_turn_ms_p90", "turns",
"attendees", "gap_s", "samples_ms"}``; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


async def run(turns: int, gap: float, attendees: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright, expect

    from tests.browser.slides import make_pdf, summary, turn_and_time, upload_and_render
    from tests.browser.support import (
        CHROMIUM,
        CHROMIUM_ARGS,
        DESKTOP,
        join_attendee,
        join_presenter,
    )
    from tests.helpers import running_server

    pages = 10
    data = Path(tempfile.mkdtemp(prefix="webinar-slides-"))
    try:
        async with running_server(data / "data") as server, async_playwright() as p:
            event = await server.create_event("Slides benchmark")
            content_id = await upload_and_render(
                server, event.event_id, event.presenter_key, make_pdf(pages)
            )
            log("pages rendered:", content_id)
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
                    "(id) => window.__webinar.room.content.request("
                    "'presentation-show', {content_id: id, page: 1})",
                    content_id,
                )
                first = viewers[0]
                await expect(first.get_by_test_id("slide-image")).to_have_attribute(
                    "data-page", "1", timeout=20_000
                )
                await asyncio.sleep(1.0)  # the first pages ahead are loaded
                samples: list[float] = []
                page_now, forward = 1, True
                for _ in range(turns):
                    if page_now == pages:
                        forward = False
                    elif page_now == 1:
                        forward = True
                    samples.append(await turn_and_time(presenter, first, forward=forward))
                    page_now += 1 if forward else -1
                    await asyncio.sleep(gap)
                log("samples (ms):", [round(s, 1) for s in samples])
            finally:
                await browser.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return {
        **summary(samples),
        "attendees": attendees,
        "gap_s": gap,
        "samples_ms": [round(s, 1) for s in samples],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between turns")
    parser.add_argument("--attendees", type=int, default=1)
    args = parser.parse_args()
    result = asyncio.run(run(args.turns, args.gap, args.attendees))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
