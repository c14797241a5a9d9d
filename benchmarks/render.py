"""Presentation rendering: seconds per page of a 10-page PDF, as the server renders it.

    .venv/bin/python benchmarks/render.py [--pages 10] [--runs 3]

Makes a PDF of ``--pages`` slide-like pages with Pillow (1280x720 points: a coloured
background, a title bar, bullet lines of text, a chart of bars and a photo-like gradient,
stored as JPEG inside the PDF as exported slides often are), then renders it ``--runs``
times the way the server does (:func:`webinar.content.render.render_in_child`: a child
process started per document, PDFium, WebP 1600 px wide at quality 85, written to disk) and
once more in this process (:func:`~webinar.content.render.render_pdf`, without the child's
start). Prints one JSON line: ``pages``, ``render_seconds_per_page`` (the median run through
the child, its start included, divided by the pages), ``in_process_seconds_per_page``,
``child_start_seconds`` (the difference, per document), ``webp_kib_per_page``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from webinar.content.render import render_in_child, render_pdf


def slides(pages: int) -> bytes:
    images = []
    for n in range(pages):
        hue = (n * 47) % 256
        image = Image.new("RGB", (1280, 720), (240, 240 - hue // 4, 230))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 0, 1280, 110), fill=(20, 40 + hue // 2, 90))
        draw.text((60, 40), f"Quarterly review - slide {n + 1}", fill=(255, 255, 255))
        for line in range(8):
            y = 160 + line * 52
            draw.ellipse((70, y + 6, 82, y + 18), fill=(30, 30, 30))
            draw.text((100, y), f"Point {line + 1}: revenue, reach and retention " * 2, fill=0)
        for bar in range(6):
            height = 60 + ((n + 1) * (bar + 3) * 37) % 300
            draw.rectangle(
                (760 + bar * 80, 660 - height, 820 + bar * 80, 660), fill=(200, 80 + bar * 25, 40)
            )
        for x in range(0, 400, 4):  # a gradient patch: photo-like content for the JPEG
            draw.line((860 + x // 2, 130, 860 + x // 2, 380), fill=(x % 256, (x * 3) % 256, 128))
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=72.0)
    return out.getvalue()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="render-bench-") as folder:
        root = Path(folder)
        source = root / "deck.pdf"
        source.write_bytes(slides(args.pages))
        child_runs = []
        for run in range(args.runs):
            began = time.perf_counter()
            pages = await render_in_child(source, root / f"child-{run}", max_pages=args.pages)
            child_runs.append(time.perf_counter() - began)
            assert pages == args.pages
        began = time.perf_counter()
        await asyncio.to_thread(render_pdf, source, root / "inline", max_pages=args.pages)
        inline = time.perf_counter() - began
        sizes = [p.stat().st_size for p in (root / "child-0").iterdir()]
        child = statistics.median(child_runs)
        print(
            json.dumps(
                {
                    "pages": args.pages,
                    "render_seconds_per_page": round(child / args.pages, 4),
                    "in_process_seconds_per_page": round(inline / args.pages, 4),
                    "child_start_seconds": round(child - inline, 3),
                    "webp_kib_per_page": round(statistics.mean(sizes) / 1024, 1),
                    "runs": [round(r, 3) for r in child_runs],
                }
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
