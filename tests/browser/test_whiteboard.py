"""The whiteboard in real Chromium: strokes drawn with the mouse reach other browsers (read
back from their canvas's pixels), late joiners get the board, clear empties it everywhere, an
attendee allowed to draw draws, pages, and the PNG and PDF saved in the browser."""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest
from playwright.async_api import Page, expect

from tests.browser.support import (
    PHONE,
    SCREENSHOTS,
    OpenPage,
    join_attendee,
    join_presenter,
    participant_id,
    wait_until,
)
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser

RED = (0xE0, 0x31, 0x31)
BLUE = (0x19, 0x71, 0xC2)
GREEN = (0x2F, 0x9E, 0x44)
WHITE = (0xFF, 0xFF, 0xFF)

# The colours found in a small square around a point of the board (fractions 0..1) of the
# canvas's own pixels: [[r, g, b], ...].
CANVAS_PIXELS_JS = """
([x, y]) => {
  const canvas = document.querySelector("[data-testid=whiteboard]");
  const ctx = canvas.getContext("2d");
  const cx = Math.round(x * canvas.width), cy = Math.round(y * canvas.height);
  const r = 3;
  const data = ctx.getImageData(cx - r, cy - r, 2 * r + 1, 2 * r + 1).data;
  const out = [];
  for (let i = 0; i < data.length; i += 4) out.push([data[i], data[i + 1], data[i + 2]]);
  return out;
}
"""


def near(colour: tuple[int, int, int], want: tuple[int, int, int], slack: int = 40) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(colour, want, strict=True))


async def colours_at(page: Page, x: float, y: float) -> list[tuple[int, int, int]]:
    found: list[list[int]] = await page.evaluate(CANVAS_PIXELS_JS, [x, y])
    return [(c[0], c[1], c[2]) for c in found]


async def expect_colour(page: Page, x: float, y: float, want: tuple[int, int, int]) -> None:
    """The board shows ``want`` at (x, y): some pixel of the small square around it has it."""
    await wait_until(
        lambda: colours_at(page, x, y),
        lambda found: any(near(c, want) for c in found),
        within=5,
        what=f"{want} at ({x}, {y})",
    )


async def expect_blank(page: Page, x: float, y: float) -> None:
    await wait_until(
        lambda: colours_at(page, x, y),
        lambda found: all(c == WHITE for c in found),
        within=5,
        what=f"white at ({x}, {y})",
    )


async def open_whiteboard(page: Page) -> None:
    """What the presenter's content menu does: the whiteboard on stage."""
    await page.evaluate(
        "() => window.__webinar.room.content.request('stage-layout', {layout: 'whiteboard'})"
    )


async def board_box(page: Page) -> tuple[float, float, float, float]:
    canvas = page.get_by_test_id("whiteboard")
    await expect(canvas).to_be_visible()
    box = await canvas.bounding_box()
    assert box is not None
    return box["x"], box["y"], box["width"], box["height"]


async def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at ``start``, move to ``end`` in small steps, release (fractions of the board)."""
    x, y, w, h = await board_box(page)
    await page.mouse.move(x + start[0] * w, y + start[1] * h)
    await page.mouse.down()
    await page.mouse.move(x + end[0] * w, y + end[1] * h, steps=12)
    await page.mouse.up()


async def draw_pen_and_rectangle(page: Page) -> None:
    """A red pen stroke across (0.2..0.4, 0.3) and a blue rectangle (0.55, 0.5)-(0.8, 0.8)."""
    await page.get_by_test_id("whiteboard-tool-pen").click()
    await page.get_by_test_id("whiteboard-color-red").click()
    await page.get_by_test_id("whiteboard-width-thick").click()
    await drag(page, (0.2, 0.3), (0.4, 0.3))
    await page.get_by_test_id("whiteboard-tool-rect").click()
    await page.get_by_test_id("whiteboard-color-blue").click()
    await drag(page, (0.55, 0.5), (0.8, 0.8))


async def expect_pen_and_rectangle(page: Page) -> None:
    canvas = page.get_by_test_id("whiteboard")
    await expect(canvas).to_be_visible()
    await expect(canvas).to_have_attribute("data-strokes", "2")
    await expect_colour(page, 0.3, 0.3, RED)  # the middle of the pen stroke
    await expect_colour(page, 0.675, 0.5, BLUE)  # the rectangle's top edge
    await expect_colour(page, 0.55, 0.65, BLUE)  # its left edge
    await expect_blank(page, 0.675, 0.65)  # inside it
    await expect_blank(page, 0.3, 0.15)  # above the stroke


async def test_strokes_reach_attendees_and_late_joiners_and_clear_empties_the_board(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Whiteboard session")
    pres = await open_page("presenter")
    ann = await open_page("ann")
    await join_presenter(pres, server, event, "Piet Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")

    await open_whiteboard(pres)
    for page in (pres, ann):
        await expect(page.get_by_test_id("whiteboard")).to_be_visible()
        await expect(page.get_by_test_id("whiteboard-page-label")).to_have_text("1 / 1")
    # Attendees watch: no tools, no page buttons, but saving.
    await expect(pres.get_by_test_id("whiteboard-toolbar")).to_be_visible()
    await expect(ann.get_by_test_id("whiteboard-toolbar")).to_be_hidden()
    await expect(ann.get_by_test_id("whiteboard-page-next")).to_be_hidden()
    await expect(ann.get_by_test_id("whiteboard-save-png")).to_be_visible()

    await draw_pen_and_rectangle(pres)
    await expect_pen_and_rectangle(pres)
    await expect_pen_and_rectangle(ann)

    # A late joiner gets the board as it is.
    bob = await open_page("bob")
    await join_attendee(bob, server, event, "Bob Attendee")
    await expect_pen_and_rectangle(bob)
    await pres.screenshot(path=str(SCREENSHOTS / "whiteboard-presenter-desktop.png"))

    # Clearing asks first; Cancel keeps the page.
    await pres.get_by_test_id("whiteboard-clear").click()
    dialog = pres.get_by_test_id("whiteboard-clear-dialog")
    await expect(dialog).to_be_visible()
    await pres.get_by_test_id("whiteboard-clear-cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(pres.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "2")
    await pres.get_by_test_id("whiteboard-clear").click()
    await pres.get_by_test_id("whiteboard-clear-confirm").click()
    for page in (pres, ann, bob):
        await expect(page.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "0")
        await expect_blank(page, 0.3, 0.3)
        await expect_blank(page, 0.675, 0.5)

    # On a phone the board comes first and fits the screen.
    await bob.set_viewport_size(PHONE)
    x, _y, w, h = await board_box(bob)
    assert w <= PHONE["width"] and x >= 0
    assert abs(w / h - 16 / 9) < 0.02
    await bob.screenshot(path=str(SCREENSHOTS / "whiteboard-attendee-phone.png"))


def pixels(path: Path, points: list[tuple[float, float]]) -> list[tuple[int, int, int]]:
    """The colours of an image file at points given as fractions of its size (PyAV decodes)."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).reformat(format="rgb24")
    plane = frame.planes[0]
    data = bytes(plane)
    out = []
    for fx, fy in points:
        x, y = round(fx * (frame.width - 1)), round(fy * (frame.height - 1))
        at = y * plane.line_size + 3 * x
        out.append((data[at], data[at + 1], data[at + 2]))
    return out


def pdf_pages(data: bytes) -> list[bytes]:
    """The JPEG of each page of a PDF as the whiteboard writes it (checked as it goes)."""
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    count = re.search(rb"/Type /Pages /Kids \[[^\]]*\] /Count (\d+)", data)
    assert count is not None
    pages = re.findall(rb"/Type /Page /Parent", data)
    images = []
    for match in re.finditer(rb"/Filter /DCTDecode /Length (\d+) >>\nstream\n", data):
        jpeg = data[match.end() : match.end() + int(match.group(1))]
        assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")
        images.append(jpeg)
    assert int(count.group(1)) == len(pages) == len(images)
    # the cross-reference table points at every object
    start = int(data.rsplit(b"startxref\n", 1)[1].split()[0])
    assert data[start:].startswith(b"xref\n")
    for number, entry in enumerate(re.findall(rb"(\d{10}) 00000 n ", data[start:]), start=1):
        assert data[int(entry) :].startswith(f"{number} 0 obj".encode())
    return images


async def test_granted_attendee_draws_pages_and_saving(
    server: RunningServer, open_page: OpenPage, tmp_path: Path
) -> None:
    event = await server.create_event("Workshop")
    pres = await open_page("presenter")
    ann = await open_page("ann")
    await join_presenter(pres, server, event, "Piet Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")
    ann_id = await participant_id(ann)
    await open_whiteboard(pres)
    await expect(ann.get_by_test_id("whiteboard")).to_be_visible()
    await expect(ann.get_by_test_id("whiteboard")).to_have_attribute("data-can-draw", "false")

    # The presenter lets Ann draw from the people list.
    row = pres.locator(f"[data-testid=participant-row][data-participant-id='{ann_id}']")
    await row.get_by_test_id("more-actions").click()
    await row.get_by_test_id("whiteboard-grant").click()
    await expect(ann.get_by_test_id("whiteboard-toolbar")).to_be_visible()
    await expect(ann.get_by_test_id("whiteboard")).to_have_attribute("data-can-draw", "true")
    await expect(row).to_contain_text("May draw")

    # Ann draws a green line; the presenter sees it.
    await ann.get_by_test_id("whiteboard-tool-line").click()
    await ann.get_by_test_id("whiteboard-color-green").click()
    await ann.get_by_test_id("whiteboard-width-thick").click()
    await drag(ann, (0.1, 0.7), (0.5, 0.7))
    await expect(pres.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "1")
    await expect_colour(pres, 0.3, 0.7, GREEN)

    # Text, typed in place.
    await pres.get_by_test_id("whiteboard-tool-text").click()
    await pres.get_by_test_id("whiteboard-color-red").click()
    x, y, w, h = await board_box(pres)
    await pres.mouse.click(x + 0.1 * w, y + 0.1 * h)
    await pres.get_by_test_id("whiteboard-text-input").fill("Agenda")
    await pres.keyboard.press("Enter")
    await expect(pres.get_by_test_id("whiteboard-text-input")).to_be_hidden()
    await expect(ann.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "2")
    found = await colours_at(ann, 0.11, 0.12)
    found += await colours_at(ann, 0.12, 0.13)
    assert any(near(c, RED, 60) for c in found), found

    # A second page: everyone turns to it; the first keeps its strokes.
    await pres.get_by_test_id("whiteboard-page-add").click()
    for page in (pres, ann):
        await expect(page.get_by_test_id("whiteboard-page-label")).to_have_text("2 / 2")
        await expect(page.get_by_test_id("whiteboard")).to_have_attribute("data-page", "1")
        await expect(page.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "0")
    await pres.get_by_test_id("whiteboard-tool-ellipse").click()
    await pres.get_by_test_id("whiteboard-color-blue").click()
    await drag(pres, (0.3, 0.3), (0.7, 0.7))
    await expect_colour(ann, 0.5, 0.3, BLUE)  # the ellipse's top
    await expect_blank(ann, 0.3, 0.7)  # page 1's line is not here

    # Saving: the page shown as PNG, every page as PDF.
    async with ann.expect_download() as info:
        await ann.get_by_test_id("whiteboard-save-png").click()
    png = tmp_path / "page.png"
    await (await info.value).save_as(png)
    assert (await info.value).suggested_filename.endswith("-page-2.png")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    top, corner = pixels(png, [(0.5, 0.3), (0.02, 0.02)])
    assert near(top, BLUE, 60) and corner == WHITE, (top, corner)

    async with pres.expect_download() as info:
        await pres.get_by_test_id("whiteboard-save-pdf").click()
    pdf = tmp_path / "board.pdf"
    await (await info.value).save_as(pdf)
    jpegs = pdf_pages(pdf.read_bytes())
    assert len(jpegs) == 2
    for number, jpeg in enumerate(jpegs, start=1):
        (tmp_path / f"page{number}.jpg").write_bytes(jpeg)
    line, blank = pixels(tmp_path / "page1.jpg", [(0.3, 0.7), (0.5, 0.4)])
    assert near(line, GREEN) and near(blank, WHITE, 8), (line, blank)
    ellipse_top, left_of_it = pixels(tmp_path / "page2.jpg", [(0.5, 0.3), (0.3, 0.7)])
    assert near(ellipse_top, BLUE, 60) and near(left_of_it, WHITE, 8)

    # Back to page 1; then the presenter stops Ann drawing.
    await pres.get_by_test_id("whiteboard-page-prev").click()
    await expect(ann.get_by_test_id("whiteboard-page-label")).to_have_text("1 / 2")
    await expect_colour(ann, 0.3, 0.7, GREEN)
    await row.get_by_test_id("more-actions").click()
    await row.get_by_test_id("whiteboard-revoke").click()
    await expect(ann.get_by_test_id("whiteboard-toolbar")).to_be_hidden()
    await expect(ann.get_by_test_id("whiteboard")).to_have_attribute("data-can-draw", "false")
