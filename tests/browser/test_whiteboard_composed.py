"""The whiteboard in the composed picture looks as the room draws it: the same strokes drawn
by the room's own code (whiteboard.js ``drawPage``) on a canvas in real Chromium and by
webinar.broadcast.picture with Pillow, compared pixel by pixel."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image, ImageChops

from tests.browser.support import SCREENSHOTS, OpenPage
from tests.helpers import RunningServer
from webinar.broadcast.picture import BoardPainter
from webinar.rooms.stage import Stroke

pytestmark = pytest.mark.browser
W, H = 1280, 720


def strokes() -> list[Stroke]:
    def s(
        sid: str,
        tool: str,
        points: list[tuple[float, float]],
        color: str = "#1e1e1e",
        width: int = 5,
        text: str | None = None,
        done: bool = True,
    ) -> Stroke:
        return Stroke(sid, 0, "p", tool, color, width, tuple(points), text, done)

    zigzag = [
        (0.05 + 0.01 * i, 0.1 + (0.1 if i % 10 < 5 else 0.0) + 0.004 * (i % 5)) for i in range(35)
    ]
    return [
        s("a", "pen", zigzag, "#e03131", 10),
        s("b", "pen", [(0.5, 0.1), (0.7, 0.35), (0.9, 0.1)], "#1971c2", 5),
        s("c", "line", [(0.05, 0.5), (0.45, 0.9)], "#2f9e44", 10),
        s("d", "rect", [(0.55, 0.45), (0.95, 0.9)], "#1e1e1e", 5),
        s("e", "ellipse", [(0.1, 0.45), (0.4, 0.7)], "#f08c00", 5),
        s("f", "eraser", [(0.75, 0.3), (0.75, 0.6)], "#ffffff", 20),
        s("g", "pen", [(0.3, 0.95)], "#e03131", 10),  # a dot
        s("h", "text", [(0.6, 0.55)], "#1971c2", 5, "Hello, board"),
        s("i", "rect", [(0.2, 0.75), (0.35, 0.85)], "#e03131", 2, done=False),  # dragged
    ]


async def test_the_composed_whiteboard_matches_the_rooms_drawing(
    server: RunningServer, open_page: OpenPage
) -> None:
    page = await open_page("board")
    await page.goto(f"{server.base_url}/")  # the origin: the room's scripts are served there
    listed = [s.to_json() for s in strokes()]
    data_url = await page.evaluate(
        """async ([strokes, w, h]) => {
            const { drawPage, drawStroke } = await import("/static/js/room/whiteboard.js");
            const canvas = document.createElement("canvas");
            canvas.width = w;
            canvas.height = h;
            const ctx = canvas.getContext("2d");
            const floating = (s) => ["line", "rect", "ellipse"].includes(s.tool) && !s.done;
            drawPage(ctx, strokes, w, h, floating);
            for (const s of strokes) if (floating(s)) drawStroke(ctx, s, w, h);
            return canvas.toDataURL("image/png");
        }""",
        [listed, W, H],
    )
    browser = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB")
    ours = BoardPainter((W, H)).paint(0, strokes())
    assert browser.size == ours.size == (W, H)
    diff = ImageChops.difference(browser, ours).convert("L")
    histogram = diff.histogram()
    total = W * H
    # inked in one and not the other: differences beyond anti-aliasing at the edges
    far = sum(histogram[96:]) / total
    inked = sum(browser.convert("L").histogram()[:200]) / total
    assert inked > 0.02  # the browser drew the strokes
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save(SCREENSHOTS / "whiteboard-composed-browser.png")
    ours.save(SCREENSHOTS / "whiteboard-composed-pillow.png")
    assert far < 0.1 * inked, (far, inked)
