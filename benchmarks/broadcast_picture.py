"""What the stage's content pictures cost the thread that draws them
(``webinar.broadcast.picture``): the whiteboard's first picture of a full page, a picture
after one more stroke (finished strokes are kept drawn), a picture while a stroke grows, and
a presentation page read and decoded from its WebP.

    PYTHONPATH=src .venv/bin/python benchmarks/broadcast_picture.py [--strokes 1000] [--runs 7]

One JSON line: ``board_first_ms`` (a page of ``strokes`` pen strokes of 100 points each),
``board_stroke_ms`` (one more finished stroke), ``board_growing_ms`` (a stroke being drawn),
``page_decode_ms`` (a 1600x1200 page fitted to 1280x720); medians over ``runs``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from webinar.broadcast.picture import DEFAULT_SIZE, BoardPainter, _load_page
from webinar.rooms.stage import Stroke


def stroke(n: int, points: int = 100, *, done: bool = True) -> Stroke:
    rng = random.Random(n)
    x, y = rng.random(), rng.random()
    path = []
    for _ in range(points):
        x = min(1.0, max(0.0, x + rng.uniform(-0.01, 0.01)))
        y = min(1.0, max(0.0, y + rng.uniform(-0.01, 0.01)))
        path.append((round(x, 4), round(y, 4)))
    return Stroke(f"s{n}", 0, "p", "pen", "#e03131", 5, tuple(path), None, done)


def ms(run: float) -> float:
    return round(run * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strokes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    page = [stroke(i) for i in range(args.strokes)]
    first, more, growing, decode = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        webp = Path(folder) / "1.webp"
        slide = Image.new("RGB", (1600, 1200), (40, 80, 220))
        ImageDraw.Draw(slide).rectangle((200, 200, 800, 700), fill=(0, 0, 0))
        slide.save(webp, "WEBP", quality=80)
        for run in range(args.runs):
            painter = BoardPainter(DEFAULT_SIZE)
            t = time.perf_counter()
            painter.paint(0, page)
            first.append(time.perf_counter() - t)
            extra = [*page, stroke(100_000 + run)]
            t = time.perf_counter()
            painter.paint(0, extra)
            more.append(time.perf_counter() - t)
            t = time.perf_counter()
            painter.paint(0, [*extra, stroke(200_000 + run, 300, done=False)])
            growing.append(time.perf_counter() - t)
            t = time.perf_counter()
            _load_page(webp, DEFAULT_SIZE)
            decode.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "board_first_ms": ms(statistics.median(first)),
                "board_stroke_ms": ms(statistics.median(more)),
                "board_growing_ms": ms(statistics.median(growing)),
                "page_decode_ms": ms(statistics.median(decode)),
                "strokes": args.strokes,
            }
        )
    )


if __name__ == "__main__":
    main()
