"""Presentations in the browser: a PDF whose pages can be told apart by their pixels, reading a
slide's pixels in the page, and timing a page turn from the presenter's click to the
attendee's loaded image (tests/browser/test_presentation.py, benchmarks/slides.py)."""

from __future__ import annotations

import io
import statistics
from dataclasses import dataclass
from typing import Any

import aiohttp
from PIL import Image, ImageDraw
from playwright.async_api import Page

from tests.browser.support import wait_until
from tests.helpers import RunningServer
from webinar.ids import format_event_id

#: The PDF's page size, in points (16:9).
PAGE_W, PAGE_H = 960, 540
BLOCK = 120
#: One solid colour per page, far apart from each other.
COLOURS = [
    (220, 40, 40),
    (40, 160, 60),
    (40, 80, 220),
    (240, 200, 30),
    (160, 50, 200),
    (30, 190, 200),
    (240, 130, 30),
    (120, 120, 120),
    (250, 120, 180),
    (120, 70, 30),
]


@dataclass(frozen=True)
class PageLook:
    """What page ``number`` looks like: its colour, and where its black block is (fractions
    of the page: the block's centre)."""

    number: int
    colour: tuple[int, int, int]
    block_x: float
    block_y: float


def page_look(number: int) -> PageLook:
    i = number - 1
    left, top = 60 + i * 80, 60 + (i % 3) * 140
    return PageLook(
        number,
        COLOURS[i % len(COLOURS)],
        (left + BLOCK / 2) / PAGE_W,
        (top + BLOCK / 2) / PAGE_H,
    )


def make_pdf(pages: int = 10) -> bytes:
    """A PDF of ``pages`` pages: each a solid colour of its own with a black block at a place
    of its own (page_look)."""
    images = []
    for n in range(1, pages + 1):
        look = page_look(n)
        image = Image.new("RGB", (PAGE_W, PAGE_H), look.colour)
        left = round(look.block_x * PAGE_W - BLOCK / 2)
        top = round(look.block_y * PAGE_H - BLOCK / 2)
        corners = (left, top, left + BLOCK - 1, top + BLOCK - 1)
        ImageDraw.Draw(image).rectangle(corners, fill=(0, 0, 0))
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=72.0)
    return out.getvalue()


# The colour (r, g, b) of the shown slide at fractions of the image, read through a canvas.
SLIDE_PIXELS_JS = """
([spots]) => {
  const img = document.querySelector("[data-testid=slide-image]");
  if (!img || !img.complete || !img.naturalWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const g = canvas.getContext("2d");
  g.drawImage(img, 0, 0);
  return spots.map(([fx, fy]) => {
    const x = Math.min(canvas.width - 1, Math.floor(fx * canvas.width));
    const y = Math.min(canvas.height - 1, Math.floor(fy * canvas.height));
    return Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
  });
}
"""


def near(seen: list[int] | tuple[int, ...], want: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(seen, want, strict=True))


async def slide_shows(page: Page, number: int) -> tuple[bool, Any]:
    """Whether the slide image shows page ``number`` as rendered: black at its block, its
    colour beside it and where the neighbouring pages have their blocks."""
    look = page_look(number)
    others = [page_look(n) for n in (number - 1, number + 1) if n >= 1]
    spots = [(look.block_x, look.block_y), (0.97, 0.95), *((o.block_x, o.block_y) for o in others)]
    pixels = await page.evaluate(SLIDE_PIXELS_JS, [spots])
    if not pixels:
        return False, pixels
    block, ground, *elsewhere = pixels
    ok = (
        near(block, (0, 0, 0))
        and near(ground, look.colour)
        and all(near(p, look.colour) for p in elsewhere)
    )
    return ok, pixels


# Resolves with the time (ms since the epoch, sub-millisecond) at which the slide image's
# data-page becomes `want`, i.e. that page's image has loaded.
WATCH_PAGE_JS = """
(want) => {
  window.__slideShownAt = new Promise((resolve) => {
    const img = document.querySelector("[data-testid=slide-image]");
    const done = () => {
      if (img.dataset.page !== String(want)) return false;
      resolve(performance.timeOrigin + performance.now());
      return true;
    };
    if (done()) return;
    const watch = new MutationObserver(() => { if (done()) watch.disconnect(); });
    watch.observe(img, { attributes: true, attributeFilter: ["data-page"] });
  });
}
"""

# Clicks a page button and answers when (same clock as above) it did.
CLICK_JS = """
(testid) => {
  const at = performance.timeOrigin + performance.now();
  document.querySelector(`[data-testid=${testid}]`).click();
  return at;
}
"""


async def turn_and_time(presenter: Page, attendee: Page, *, forward: bool = True) -> float:
    """One page turn: the presenter clicks slide-next (or slide-prev); ms until the
    attendee's image of the new page has loaded. Both pages run on this machine, so their
    clocks (``performance.timeOrigin + performance.now()``) are the same clock."""
    page = int(await attendee.get_by_test_id("slide-image").get_attribute("data-page") or 0)
    want = page + (1 if forward else -1)
    await attendee.evaluate(WATCH_PAGE_JS, want)
    clicked: float = await presenter.evaluate(CLICK_JS, "slide-next" if forward else "slide-prev")
    shown: float = await attendee.evaluate("() => window.__slideShownAt")
    return shown - clicked


def summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "slide_turn_ms_median": round(statistics.median(ordered), 1),
        "slide_turn_ms_p90": round(p90, 1),
        "turns": len(ordered),
    }


async def upload_and_render(
    server: RunningServer, event_id: str, key: str, pdf: bytes, *, name: str = "deck.pdf"
) -> str:
    """Upload ``pdf`` as a presenter (the API) and wait until its pages are made."""
    shown = format_event_id(event_id)
    headers = {"X-Presenter-Key": key}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.base_url}/api/v1/events/{shown}/content?name={name}",
            data=pdf,
            headers={**headers, "Content-Type": "application/pdf"},
        ) as resp:
            made = await resp.json()
            assert resp.status == 201, made
        content_id = str(made["content_id"])

        async def status() -> dict[str, Any]:
            async with http.get(
                f"{server.base_url}/e/{shown}/content/{content_id}/pages", headers=headers
            ) as resp:
                body: dict[str, Any] = await resp.json()
                return body

        await wait_until(status, lambda s: s.get("status") == "ready", within=30, what="pages")
    return content_id
