"""The room's stage content as one picture for the compositor (the composed recording, the
live stream out and HLS): :class:`StagePictures` turns a room's
:class:`~webinar.rooms.stage.StageContent` into the image that
:meth:`webinar.broadcast.compositor.Compositor.set_content` shows large, with the cameras in
a strip beside it.

What each layout gives (:meth:`StagePictures.picture`):

* ``cameras`` and ``screen``: None. A screen share is a producer the compositor composes
  already; without content the cameras fill the stage.
* ``presentation``: the page on stage, its rendered WebP image
  (:mod:`webinar.content.presentations`), read and decoded on a thread, scaled to fit the
  picture size, the last :data:`PAGES_KEPT` pages kept decoded (turning back and forth costs
  nothing). A page whose image is gone (the file was deleted) gives None.
* ``whiteboard``: the board's page drawn as the browser draws it (``web/static/js/room/
  whiteboard.js``): white 16:9, every stroke of the page in the order drawn, strokes being
  drawn as far as the room has them, shapes still being dragged on top; widths in
  thousandths of the board's width, round caps and joins, the eraser painting white, text
  in a sans-serif face ``12 + 3 * width`` thousandths high, its top at the point. Drawn on a
  thread with Pillow at twice the size and reduced (smooth edges); finished strokes are
  kept drawn, so a new stroke costs only its own drawing.
* ``video`` and ``external``: a card (the video's name or the player's provider, and a line
  saying it plays in the room), in the room's language. A YouTube, Vimeo or other embedded
  player runs in each attendee's browser; the server never has its pictures.

:func:`key` is what a caller compares to know whether the picture changed (cheap: no
drawing, one pass over the board's strokes), so it draws again only on a change. A new or
growing stroke costs 5–15 ms of a thread at 1280x720; the first picture of a page of 1,000
long strokes about 0.25 s (once: finished strokes stay drawn; see
benchmarks/broadcast_picture.py). While someone draws, a caller redraws at most about 4
times a second (a stroke's growth shows within a quarter of a second)::

    pictures = StagePictures(content, size=(width, height), language_of=event_language)
    shown = None
    ...  # on each change of the room's stage (throttled to ~4 a second for the whiteboard):
    if pictures.key(stage) != shown:
        shown = pictures.key(stage)
        compositor.set_content(await pictures.picture(event_id, stage))
    ...  # when the room closes:
    pictures.forget(event_id)

The images returned are shared (kept for the next call): read them, never change them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from webinar import i18n
from webinar.content.external import PROVIDERS
from webinar.content.library import ContentService
from webinar.i18n import _
from webinar.rooms.stage import SHAPES, StageContent, Stroke

logger = logging.getLogger(__name__)

#: The picture's size: the composed output's (16:9, as the whiteboard).
DEFAULT_SIZE = (1280, 720)
#: Decoded presentation pages kept, of all rooms (each at most the picture's size: ~3 MB).
PAGES_KEPT = 16
#: Rooms whose whiteboard drawing is kept (each ~11 MB at 1280x720, drawn twice as large).
BOARDS_KEPT = 8
#: Cards kept (a shared video's, an external player's; ~3 MB each).
CARDS_KEPT = 8
#: The whiteboard is drawn this many times larger, then reduced: smooth edges.
SUPERSAMPLE = 2
#: The whiteboard's background and everything else as in whiteboard.js.
BOARD_BACKGROUND = (255, 255, 255)
#: The cards' colours: the room's dark stage, a light title, a muted line, an accent.
CARD_BACKGROUND = (24, 26, 32)
CARD_TITLE = (240, 240, 240)
CARD_TEXT = (170, 174, 184)
CARD_ACCENT = (90, 140, 255)
#: Fonts looked for (Pillow searches the system's font folders), faces with Cyrillic and
#: Czech letters: Liberation Sans first (Arial's metrics: what browsers mostly draw
#: "sans-serif" text of the whiteboard with), then DejaVu Sans; Pillow's own face (Latin
#: only) when none is installed.
SANS = ("LiberationSans-Regular.ttf", "DejaVuSans.ttf", "NotoSans-Regular.ttf", "Arial.ttf")
SANS_BOLD = ("LiberationSans-Bold.ttf", "DejaVuSans-Bold.ttf", "NotoSans-Bold.ttf", "Arial.ttf")


def key(stage: StageContent) -> Hashable:
    """What the content picture of ``stage`` depends on: equal keys, the same picture. For
    the whiteboard: the page, and its strokes' count, growth (messages) and last stroke."""
    layout = stage.layout
    if layout == "presentation":
        p = stage.presentation
        return (layout, None) if p is None else (layout, p.content_id, p.page)
    if layout == "whiteboard":
        page = stage.board_page
        count = parts = 0
        last = ""
        for stroke in stage.strokes.values():
            if stroke.page == page:
                count += 1
                parts += stroke.parts
                last = stroke.stroke_id
        return (layout, page, count, parts, last)
    if layout == "video":
        v = stage.video
        return (layout, None) if v is None else (layout, v.video_id, v.kind, v.name)
    if layout == "external":
        player = stage.external_player or {}
        return (layout, str(player.get("provider") or ""), str(player.get("link") or ""))
    return (layout,)


class StagePictures:
    """The content pictures of every live room of this process (one instance serves them
    all; webinar.broadcast.room's ``StagePictures`` protocol). ``content`` finds
    presentations' page images; ``size`` is the picture's (the compositor fits it into its
    large region); cards are written in the event's language: ``language_of(event_id)``
    (None: ``language``, else English)."""

    def __init__(
        self,
        content: ContentService,
        *,
        size: tuple[int, int] = DEFAULT_SIZE,
        language: str | None = None,
        language_of: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self.content = content
        self.size = size
        self.language = language
        self.language_of = language_of
        self._pages: OrderedDict[tuple[str, str, int], Image.Image] = OrderedDict()
        #: One painter per room whose whiteboard is drawn (each keeps its page drawn).
        self._boards: OrderedDict[str, BoardPainter] = OrderedDict()
        self._cards: OrderedDict[tuple[str, ...], Image.Image] = OrderedDict()

    def key(self, stage: StageContent) -> Hashable:
        """:func:`key`: equal keys, the same picture."""
        return key(stage)

    async def picture(
        self, event_id: str, stage: StageContent, *, language: str | None = None
    ) -> Image.Image | None:
        """The content shown large for ``stage`` now, or None (cameras, a screen share)."""
        layout = stage.layout
        if layout == "presentation" and stage.presentation is not None:
            p = stage.presentation
            return await self.page(event_id, p.content_id, p.page)
        if layout == "whiteboard":
            # the strokes are read here, on the loop: the room changes them meanwhile
            strokes = stage.page_strokes(stage.board_page)
            painter = self._boards.pop(event_id, None) or BoardPainter(self.size)
            self._boards[event_id] = painter
            while len(self._boards) > BOARDS_KEPT:
                self._boards.popitem(last=False)
            return await asyncio.to_thread(painter.paint, stage.board_page, strokes)
        if layout in ("video", "external"):
            if language is None and self.language_of is not None:
                try:
                    language = await self.language_of(event_id)
                except Exception:  # the store is away: the card in the default language
                    logger.exception("the language of event %s is not known", event_id)
            return await self._card(stage, language or self.language)
        return None

    def forget(self, event_id: str) -> None:
        """The room closed: its whiteboard's drawing goes (pages and cards age out)."""
        self._boards.pop(event_id, None)

    # -------------------------------------------------------------- presentation pages

    async def page(self, event_id: str, content_id: str, number: int) -> Image.Image | None:
        """Page ``number`` (1-based) of a rendered presentation, fitted to the picture's
        size; None when its image is not there."""
        name = (event_id, content_id, number)
        known = self._pages.get(name)
        if known is not None:
            self._pages.move_to_end(name)
            return known
        path = self.content.renderer.page_path(event_id, content_id, number)
        try:
            image = await asyncio.to_thread(_load_page, path, self.size)
        except OSError as exc:  # gone (deleted), or not an image we can read
            logger.warning("page %d of %s cannot be shown: %s", number, content_id, exc)
            return None
        self._pages[name] = image
        while len(self._pages) > PAGES_KEPT:
            self._pages.popitem(last=False)
        return image

    # -------------------------------------------------------------- cards

    async def _card(self, stage: StageContent, language: str | None) -> Image.Image:
        with i18n.using(language):
            lines = card_lines(stage)
        known = self._cards.get(lines)
        if known is not None:
            self._cards.move_to_end(lines)
            return known
        image = await asyncio.to_thread(draw_card, self.size, *lines)
        self._cards[lines] = image
        while len(self._cards) > CARDS_KEPT:
            self._cards.popitem(last=False)
        return image


def _load_page(path: Path, size: tuple[int, int]) -> Image.Image:
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    if image.width > size[0] or image.height > size[1]:
        image.thumbnail(size, Image.Resampling.LANCZOS)
    return image


# ----------------------------------------------------------------------------- cards


def card_lines(stage: StageContent) -> tuple[str, str, str, str]:
    """(heading, title, source, note) of the card for a shared video or the external
    player, in the language in effect."""
    note = _("It plays in the webinar room: recordings and live streams cannot show it.")
    if stage.layout == "video" and stage.video is not None:
        v = stage.video
        source = {"youtube": "YouTube", "vimeo": "Vimeo"}.get(v.kind) or _("Uploaded video")
        return _("Shared video"), v.name or source, source, note
    player = stage.external_player or {}
    provider = str(player.get("provider") or "")
    label = next((p.label for p in PROVIDERS if p.name == provider), "")
    if not label:
        link = str(player.get("link") or player.get("url") or "")
        label = urllib.parse.urlsplit(link).hostname or ""
    return _("External player"), label, "", note


def draw_card(
    size: tuple[int, int], heading: str, title: str, source: str, note: str
) -> Image.Image:
    """A dark card: a play sign, the heading in the accent colour, the title large, the
    source and the note below; long texts are cut with an ellipsis."""
    w, h = size
    image = Image.new("RGB", size, CARD_BACKGROUND)
    draw = ImageDraw.Draw(image)
    unit = h / 720
    margin = round(80 * unit)
    room = w - 2 * margin
    # the play sign: a ring with a triangle
    r = round(56 * unit)
    cx, cy = w // 2, round(h * 0.3)
    draw.ellipse(
        (cx - r, cy - r, cx + r, cy + r), outline=CARD_ACCENT, width=max(2, round(6 * unit))
    )
    t = r * 0.45
    draw.polygon(
        [(cx - t * 0.8, cy - t), (cx - t * 0.8, cy + t), (cx + t * 1.1, cy)], fill=CARD_ACCENT
    )
    y = cy + r + round(40 * unit)
    for text, face, px, colour in (
        (heading, SANS_BOLD, 30, CARD_ACCENT),
        (title, SANS_BOLD, 52, CARD_TITLE),
        (source, SANS, 30, CARD_TEXT),
        (note, SANS, 26, CARD_TEXT),
    ):
        if not text:
            continue
        font = sans(max(8, round(px * unit)), bold=face is SANS_BOLD)
        line = fitted(text, font, room)
        draw.text((w / 2, y), line, fill=colour, font=font, anchor="ma")
        y += round(px * unit * 1.6)
    return image


def fitted(text: str, font: Any, width: float) -> str:
    """``text`` on one line, cut with an ellipsis to fit ``width`` pixels."""
    text = " ".join(text.split())
    if font.getlength(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest start that fits with its ellipsis
        mid = (low + high + 1) // 2
        if font.getlength(text[:mid].rstrip() + "…") <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + "…"


@functools.lru_cache(maxsize=64)
def sans(size: int, *, bold: bool = False) -> Any:
    """A sans-serif face of ``size`` pixels (the em), one with Cyrillic when installed."""
    for name in SANS_BOLD if bold else SANS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


# ----------------------------------------------------------------------------- the whiteboard


def _rgb(colour: str) -> tuple[int, int, int]:
    try:
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    except ValueError:
        return (0, 0, 0)


class BoardPainter:
    """Draws whiteboard pages at ``size``. Finished strokes never change (a page is only
    cleared whole), so the page drawn up to its last finished stroke is kept and the next
    picture only adds what is new. Thread-safe (one drawing at a time)."""

    def __init__(self, size: tuple[int, int] = DEFAULT_SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        #: The board page and the IDs of the finished strokes already drawn on ``_base``.
        self._base_of: tuple[int, tuple[str, ...]] = (-1, ())
        self._base: Image.Image | None = None

    def paint(self, page: int, strokes: Sequence[Stroke]) -> Image.Image:
        """The page with ``strokes`` (its strokes, in the order drawn)."""
        with self._lock:
            big = (self.size[0] * SUPERSAMPLE, self.size[1] * SUPERSAMPLE)
            done = 0
            while done < len(strokes) and strokes[done].done:
                done += 1
            ids = tuple(s.stroke_id for s in strokes[:done])
            kept_page, kept = self._base_of
            if self._base is None or kept_page != page or ids[: len(kept)] != kept:
                self._base = Image.new("RGB", big, BOARD_BACKGROUND)
                kept = ()
            draw = ImageDraw.Draw(self._base)
            for stroke in strokes[len(kept) : done]:
                draw_stroke(draw, stroke, *big)
            self._base_of = (page, ids)
            rest = strokes[done:]
            if rest:
                image = self._base.copy()
                draw = ImageDraw.Draw(image)
                # as the browser: strokes in order, shapes being dragged on top
                for stroke in sorted(rest, key=lambda s: s.tool in SHAPES and not s.done):
                    draw_stroke(draw, stroke, *big)
            else:
                image = self._base
            return image.reduce(SUPERSAMPLE) if SUPERSAMPLE > 1 else image.copy()


def draw_stroke(draw: ImageDraw.ImageDraw, stroke: Stroke, w: int, h: int) -> None:
    """One stroke as ``drawStroke`` of whiteboard.js draws it on a ``w`` x ``h`` board."""
    points = [(x * w, y * h) for x, y in stroke.points]
    if not points:
        return
    colour = BOARD_BACKGROUND if stroke.tool == "eraser" else _rgb(stroke.color)
    line = stroke.width / 1000 * w
    width = max(1, round(line))
    half = line / 2

    def dot(x: float, y: float) -> None:  # a round cap (or a one-point stroke)
        draw.ellipse((x - half, y - half, x + half, y + half), fill=colour)

    tool = stroke.tool
    if tool in ("pen", "eraser"):
        if len(points) == 1:
            dot(*points[0])
            return
        draw.line(points, fill=colour, width=width)
        # round caps and joins: a dot at every point (Pillow's "curve" joint is slower)
        for x, y in points if width > 2 else (points[0], points[-1]):
            dot(x, y)
    elif tool == "line":
        if len(points) < 2:
            return
        draw.line(points[:2], fill=colour, width=width)
        dot(*points[0])
        dot(*points[1])
    elif tool == "rect":
        if len(points) < 2:
            return
        (x0, y0), (x1, y1) = points[:2]
        # the canvas strokes along the edge (half out, half in), its outer corners round
        box = (min(x0, x1) - half, min(y0, y1) - half, max(x0, x1) + half, max(y0, y1) + half)
        draw.rounded_rectangle(box, radius=half, outline=colour, width=width)
    elif tool == "ellipse":
        if len(points) < 2:
            return
        (x0, y0), (x1, y1) = points[:2]
        if x0 == x1 and y0 == y1:
            return
        box = (min(x0, x1) - half, min(y0, y1) - half, max(x0, x1) + half, max(y0, y1) + half)
        draw.ellipse(box, outline=colour, width=width)
    elif tool == "text":
        if not stroke.text:
            return
        size = max(1, round((12 + 3 * stroke.width) / 1000 * w))
        text = " ".join(stroke.text.splitlines())  # the canvas draws one line
        draw.text(points[0], text, fill=colour, font=sans(size), anchor="la")
