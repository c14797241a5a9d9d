"""The stage's content as the compositor's picture (broadcast/picture.py): states built by
driving the real stage machine, pictures checked pixel by pixel; presentation pages rendered
from a real PDF by PDFium on a real store's content service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from PIL import Image

from tests.presentation_files import COLOURS, deck, near
from webinar import i18n
from webinar.broadcast import picture as pic
from webinar.broadcast.picture import StagePictures, card_lines, key
from webinar.content.library import ContentService
from webinar.content.render import render_pdf
from webinar.rooms import stage as st
from webinar.rooms.roles import Role
from webinar.rooms.state import Participant
from webinar.storage.store import Store

PRES = Participant("p1", "Pres", Role.PRESENTER)
ANN = Participant("a1", "Ann", Role.ATTENDEE)
W, H = pic.DEFAULT_SIZE
WHITE = (255, 255, 255)
RED = (255, 0, 0)
BLUE = (0, 0, 255)
MIB = 1024 * 1024


@pytest.fixture
async def pictures(tmp_path: Path) -> AsyncIterator[StagePictures]:
    async with Store(tmp_path / "data") as store:
        content = ContentService(
            store, tmp_path / "content", max_file_bytes=50 * MIB, quota_bytes=500 * MIB
        )
        yield StagePictures(content)


def board() -> st.StageContent:
    stage = st.StageContent()
    stage.apply(stage.board_to_page(PRES, 0))
    assert stage.layout == "whiteboard"
    return stage


def draw(
    stage: st.StageContent,
    stroke_id: str,
    tool: str,
    points: Sequence[Sequence[float]],
    *,
    color: str = "#ff0000",
    width: int = 5,
    text: str | None = None,
    done: bool = True,
    page: int = 0,
    by: Participant = PRES,
) -> None:
    stage.apply(
        stage.draw(
            by,
            stroke_id=stroke_id,
            page=page,
            tool=tool,
            color=color,
            width=width,
            points=[list(p) for p in points],
            text=text,
            done=done,
        )
    )


def at(image: Image.Image, x: float, y: float) -> tuple[int, int, int]:
    """The pixel at fractions ``x``, ``y`` of the picture."""
    got = image.getpixel((min(image.width - 1, round(x * image.width)), round(y * image.height)))
    assert isinstance(got, tuple)
    return got[0], got[1], got[2]


async def test_cameras_and_a_screen_share_have_no_content_picture(
    pictures: StagePictures,
) -> None:
    stage = st.StageContent()
    assert await pictures.picture("123456789", stage) is None
    stage.apply(stage.set_layout(PRES, "screen"))
    assert await pictures.picture("123456789", stage) is None


async def test_the_presentation_page_on_stage_is_the_picture(
    pictures: StagePictures, tmp_path: Path
) -> None:
    event_id, content_id = "123456789", "cnt_deck"
    source = tmp_path / "deck.pdf"
    source.write_bytes(deck(3))
    pages = pictures.content.renderer.pages_dir(event_id, content_id)
    pages.parent.mkdir(parents=True)  # the event's folder, made by its first upload
    render_pdf(source, pages)
    stage = st.StageContent()
    stage.apply(
        stage.show_presentation(
            PRES, content_id=content_id, name="deck.pdf", pages=3, page=2, now=1.0
        )
    )
    image = await pictures.picture(event_id, stage)
    assert image is not None and image.mode == "RGB"
    # the 1600x1200 page fitted into 1280x720, its aspect kept
    assert image.size == (960, 720)
    assert near(at(image, 0.02, 0.02), COLOURS[1])  # page 2's colour
    assert await pictures.picture(event_id, stage) is image  # kept decoded
    stage.apply(stage.turn_page(PRES, 3, 2.0))
    third = await pictures.picture(event_id, stage)
    assert third is not None and near(at(third, 0.02, 0.02), COLOURS[2])
    # a page whose image is gone (the file was deleted) shows no content, and says why
    gone = st.StageContent()
    gone.apply(
        gone.show_presentation(PRES, content_id="cnt_gone", name="x.pdf", pages=1, page=1, now=1)
    )
    assert await pictures.picture(event_id, gone) is None


async def test_a_red_pen_stroke_is_drawn_along_its_path_only(pictures: StagePictures) -> None:
    stage = board()
    empty = await pictures.picture("e", stage)
    assert empty is not None and empty.size == (W, H)
    assert empty.getcolors() == [(W * H, WHITE)]  # a white board
    draw(stage, "s1", "pen", [(0.1, 0.1), (0.9, 0.9)])
    image = await pictures.picture("e", stage)
    assert image is not None
    for i in range(1, 10):
        t = 0.1 + 0.8 * i / 10
        assert near(at(image, t, t), RED, 10), (t, at(image, t, t))
    for x, y in [(0.9, 0.1), (0.1, 0.9), (0.5, 0.3), (0.3, 0.5), (0.05, 0.05), (0.95, 0.95)]:
        assert at(image, x, y) == WHITE, (x, y)
    # the line is as wide as in the browser: 5 thousandths of the width (6.4 px), round ends
    row = [image.getpixel((x, H // 2)) for x in range(W)]
    red = [x for x, p in enumerate(row) if isinstance(p, tuple) and p[0] > 200 and p[1] < 100]
    across = (max(red) - min(red) + 1) * (H / W)  # a diagonal crosses a row at 45° by the ratio
    assert 6 <= len(red) <= 12 and across < 12, red


async def test_the_eraser_paints_the_board_white(pictures: StagePictures) -> None:
    stage = board()
    draw(stage, "line", "pen", [(0.1, 0.5), (0.9, 0.5)], width=10)
    draw(stage, "rub", "eraser", [(0.5, 0.3), (0.5, 0.7)], color="#000000", width=40)
    image = await pictures.picture("e", stage)
    assert image is not None
    assert at(image, 0.5, 0.5) == WHITE
    assert at(image, 0.49, 0.5) == WHITE  # 40 thousandths wide: ±25 px around x = 640
    assert near(at(image, 0.3, 0.5), RED, 10) and near(at(image, 0.7, 0.5), RED, 10)


async def test_a_rectangle_is_an_outline(pictures: StagePictures) -> None:
    stage = board()
    draw(stage, "box", "rect", [(0.6, 0.6), (0.2, 0.2)], color="#0000ff", width=4)
    image = await pictures.picture("e", stage)
    assert image is not None
    for x, y in [(0.4, 0.2), (0.4, 0.6), (0.2, 0.4), (0.6, 0.4), (0.2, 0.2), (0.6, 0.6)]:
        assert near(at(image, x, y), BLUE, 10), (x, y, at(image, x, y))
    for x, y in [(0.4, 0.4), (0.25, 0.25), (0.1, 0.1), (0.7, 0.4)]:
        assert at(image, x, y) == WHITE, (x, y)


async def test_an_ellipse_and_a_line(pictures: StagePictures) -> None:
    stage = board()
    draw(stage, "o", "ellipse", [(0.2, 0.2), (0.6, 0.6)], color="#0000ff", width=4)
    draw(stage, "l", "line", [(0.7, 0.1), (0.7, 0.9)], color="#ff0000", width=4)
    image = await pictures.picture("e", stage)
    assert image is not None
    for x, y in [(0.4, 0.2), (0.4, 0.6), (0.2, 0.4), (0.6, 0.4)]:
        assert near(at(image, x, y), BLUE, 10), (x, y)
    assert at(image, 0.4, 0.4) == WHITE and at(image, 0.22, 0.22) == WHITE  # not a box
    assert near(at(image, 0.7, 0.5), RED, 10) and at(image, 0.72, 0.5) == WHITE


async def test_text_is_drawn_where_it_was_typed(pictures: StagePictures) -> None:
    stage = board()
    draw(stage, "t", "text", [(0.1, 0.1)], color="#000000", width=10, text="Hello Жluťoučký")
    image = await pictures.picture("e", stage)
    assert image is not None
    # letters (12 + 3 * 10) thousandths of the width high: about 54 px, top at y = 72
    x0, y0 = round(0.1 * W), round(0.1 * H)
    dark = [
        (x, y)
        for y in range(0, H, 2)
        for x in range(0, W, 2)
        if sum(image.getpixel((x, y))) < 200  # type: ignore[arg-type]
    ]
    assert len(dark) > 200
    xs, ys = [x for x, _ in dark], [y for _, y in dark]
    assert x0 - 2 <= min(xs) <= x0 + 20 and y0 - 2 <= min(ys) <= y0 + 30
    assert max(ys) <= y0 + 80 and max(xs) > x0 + 300  # one line, about 15 letters long


def test_a_face_with_cyrillic_is_used_when_installed() -> None:
    installed = [
        Path(d) / name
        for d in ("/usr/share/fonts/truetype/liberation", "/usr/share/fonts/truetype/dejavu")
        for name in ("LiberationSans-Regular.ttf", "DejaVuSans.ttf")
        if (Path(d) / name).exists()
    ]
    if not installed:
        pytest.skip("neither Liberation Sans nor DejaVu Sans is installed here")
    font = pic.sans(20)
    assert str(getattr(font, "path", "")) == str(installed[0])
    # a Cyrillic word is as wide as its letters, not a row of equal "missing" boxes
    assert font.getlength("Ш") > font.getlength("г") > 0


async def test_strokes_being_drawn_show_and_dragged_shapes_lie_on_top(
    pictures: StagePictures,
) -> None:
    stage = board()
    draw(stage, "p", "pen", [(0.1, 0.5), (0.3, 0.5)], done=False)
    first = await pictures.picture("e", stage)
    assert first is not None and near(at(first, 0.2, 0.5), RED, 10)
    assert at(first, 0.5, 0.5) == WHITE
    draw(stage, "p", "pen", [(0.6, 0.5)], done=False)  # it grows
    grown = await pictures.picture("e", stage)
    assert grown is not None and near(at(grown, 0.5, 0.5), RED, 10)
    # a blue box being dragged, begun before a black pen stroke that crosses it: on top
    draw(stage, "box", "rect", [(0.7, 0.2), (0.9, 0.8)], color="#0000ff", width=10, done=False)
    draw(stage, "q", "pen", [(0.65, 0.4), (0.95, 0.4)], color="#000000", width=10)
    image = await pictures.picture("e", stage)
    assert image is not None and near(at(image, 0.7, 0.4), BLUE, 10)
    assert near(at(image, 0.8, 0.4), (0, 0, 0), 10)
    # once the box is done it is drawn in its order: under the later stroke
    draw(stage, "box", "rect", [(0.7, 0.2), (0.9, 0.8)], color="#0000ff", width=10)
    image = await pictures.picture("e", stage)
    assert image is not None and near(at(image, 0.7, 0.4), (0, 0, 0), 10)
    assert near(at(image, 0.7, 0.6), BLUE, 10)


async def test_the_page_shown_is_the_board_page_and_a_clear_empties_it(
    pictures: StagePictures,
) -> None:
    stage = board()
    draw(stage, "a", "pen", [(0.1, 0.5), (0.9, 0.5)])
    stage.apply(stage.board_to_page(PRES, 1))
    draw(stage, "b", "pen", [(0.5, 0.1), (0.5, 0.9)], color="#0000ff", page=1)
    image = await pictures.picture("e", stage)
    assert image is not None
    assert near(at(image, 0.5, 0.3), BLUE, 10) and at(image, 0.3, 0.5) == WHITE
    stage.apply(stage.board_to_page(PRES, 0))
    image = await pictures.picture("e", stage)
    assert image is not None
    assert near(at(image, 0.3, 0.5), RED, 10) and at(image, 0.5, 0.3) == WHITE
    stage.apply(stage.clear_board(PRES, 0))
    image = await pictures.picture("e", stage)
    assert image is not None and image.getcolors() == [(W * H, WHITE)]


def test_the_key_changes_with_what_is_shown_and_only_then() -> None:
    stage = st.StageContent()
    cameras = key(stage)
    stage.apply(stage.show_presentation(PRES, content_id="c", name="d", pages=5, page=1, now=1))
    one = key(stage)
    assert one != cameras
    stage.apply(stage.turn_page(PRES, 2, 2.0))
    two = key(stage)
    assert two != one
    stage.apply(stage.offer_file(PRES, st.OfferedFile("f", "a.pdf", 10, "application/pdf"), True))
    assert key(stage) == two  # a file offered: the page is the same
    stage.apply(stage.board_to_page(PRES, 0))
    empty = key(stage)
    assert empty != two
    draw(stage, "s", "pen", [(0.1, 0.1)], done=False)
    started = key(stage)
    assert started != empty
    draw(stage, "s", "pen", [(0.2, 0.2)], done=False)
    grown = key(stage)
    assert grown != started
    draw(stage, "s", "pen", [(0.3, 0.3)], done=True)
    done = key(stage)
    assert done != grown
    # nothing that is not on the page shown changes it
    stage.apply(stage.grant_board(PRES, ANN, True))
    stage.apply(stage.board_to_page(PRES, 1))
    stage.apply(stage.board_to_page(PRES, 0))
    assert key(stage) == done
    stage.apply(stage.offer_file(PRES, st.OfferedFile("g", "b.pdf", 10, "application/pdf"), True))
    assert key(stage) == done
    stage.apply(stage.board_to_page(PRES, 1))
    draw(stage, "other", "pen", [(0.5, 0.5)], page=1)
    stage.apply(stage.board_to_page(PRES, 0))
    assert key(stage) == done
    stage.apply(stage.clear_board(PRES, 0))
    assert key(stage) != done
    stage.apply(stage.share_video(PRES, kind="youtube", source="dQw4w9WgXcQ", name="Intro", now=3))
    video = key(stage)
    stage.apply(stage.control_video(PRES, "play", 0.0, 4.0))  # the card stays as it is
    assert key(stage) == video


async def test_a_shared_video_and_the_external_player_show_a_card(
    pictures: StagePictures,
) -> None:
    stage = st.StageContent()
    stage.apply(stage.share_video(PRES, kind="youtube", source="dQw4w9WgXcQ", name="Intro", now=3))
    heading, title, source, note = card_lines(stage)
    assert (heading, title, source) == ("Shared video", "Intro", "YouTube")
    assert "webinar room" in note
    card = await pictures.picture("e", stage)
    assert card is not None and card.size == (W, H)
    assert at(card, 0.02, 0.02) == pic.CARD_BACKGROUND
    colours = card.getcolors(W * H)
    assert colours is not None
    assert any(c == pic.CARD_TITLE for _, c in colours)  # the title is written
    assert any(c == pic.CARD_ACCENT for _, c in colours)  # the play sign
    assert await pictures.picture("e", stage) is card  # drawn once
    stage.apply(stage.share_video(PRES, kind="file", source="cnt_v", name="", now=4))
    assert card_lines(stage)[1:3] == ("Uploaded video", "Uploaded video")
    external = st.StageContent()
    external.external = True
    external.external_player = {
        "url": "https://us02web.zoom.us/w/123456789",
        "provider": "zoom",
        "framable": False,
        "link": "https://us02web.zoom.us/w/123456789",
    }
    external.restore(None, [])
    assert external.layout == "external"
    assert card_lines(external)[:2] == ("External player", "Zoom")
    other = {"url": "https://player.example.com/x", "provider": "other", "framable": True}
    external.external_player = other | {"link": "https://player.example.com/x"}
    assert card_lines(external)[1] == "player.example.com"
    assert await pictures.picture("e", external) is not None


async def test_cards_are_written_in_the_events_language(tmp_path: Path) -> None:
    stage = st.StageContent()
    stage.apply(stage.share_video(PRES, kind="vimeo", source="76979871", name="Demo", now=3))
    with i18n.using("en"):
        assert card_lines(stage)[0] == "Shared video"
    with i18n.using("cs"):
        assert card_lines(stage)[0] == "Sdílené video"
    asked: list[str] = []

    async def language_of(event_id: str) -> str | None:
        asked.append(event_id)
        return {"111111111": "cs"}.get(event_id)

    async with Store(tmp_path / "data") as store:
        content = ContentService(store, tmp_path / "c", max_file_bytes=MIB, quota_bytes=MIB)
        pictures = StagePictures(content, language_of=language_of)
        czech = await pictures.picture("111111111", stage)
        english = await pictures.picture("222222222", stage)
        assert asked == ["111111111", "222222222"]
        assert czech is not None and english is not None and czech is not english
        with i18n.using("cs"):
            assert czech.tobytes() == pic.draw_card(pic.DEFAULT_SIZE, *card_lines(stage)).tobytes()
        assert await pictures.picture("222222222", stage, language="en") is english


async def test_one_instance_serves_several_rooms(pictures: StagePictures) -> None:
    first, second = board(), board()
    draw(first, "a", "pen", [(0.1, 0.5), (0.9, 0.5)])
    draw(second, "b", "pen", [(0.5, 0.1), (0.5, 0.9)], color="#0000ff")
    for _ in range(2):  # in turns: each room's drawing is its own
        one = await pictures.picture("111111111", first)
        two = await pictures.picture("222222222", second)
        assert one is not None and two is not None
        assert near(at(one, 0.3, 0.5), RED, 10) and at(one, 0.5, 0.3) == WHITE
        assert near(at(two, 0.5, 0.3), BLUE, 10) and at(two, 0.3, 0.5) == WHITE
    assert pictures.key(first) == key(first) != pictures.key(second)
    pictures.forget("111111111")
    again = await pictures.picture("111111111", first)
    assert again is not None and near(at(again, 0.3, 0.5), RED, 10)


def test_long_titles_are_cut_to_fit() -> None:
    font = pic.sans(40)
    line = pic.fitted("word " * 200, font, 500)
    assert line.endswith("…") and font.getlength(line) <= 500
    assert pic.fitted("short", font, 500) == "short"
