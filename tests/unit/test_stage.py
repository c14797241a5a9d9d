"""The stage's state machine (rooms/stage.py) and the slide timeline (content/stage.py)."""

from __future__ import annotations

import pytest

from webinar.content.stage import StageLogEntry, slide_timeline
from webinar.rooms import stage as st
from webinar.rooms.interaction_errors import InteractionError
from webinar.rooms.roles import Role
from webinar.rooms.state import Participant

PRES = Participant("p1", "Pres", Role.PRESENTER)
ANN = Participant("a1", "Ann", Role.ATTENDEE)


def test_a_planned_change_changes_nothing_until_applied() -> None:
    stage = st.StageContent()
    change = stage.show_presentation(
        PRES, content_id="cnt_x", name="deck.pdf", pages=10, page=1, now=100.0
    )
    assert stage.presentation is None and stage.layout == "cameras"
    stage.apply(change)
    assert stage.layout == "presentation" and stage.presentation is not None
    turn = stage.turn_page(PRES, 4, 105.0)
    assert stage.presentation.page == 1
    stage.apply(turn)
    assert stage.presentation.page == 4 and turn.log == ("page", {"content_id": "cnt_x", "page": 4})
    assert stage.turn_page(PRES, 4, 106.0) == st.StageChange()  # nothing to do, nothing kept
    with pytest.raises(InteractionError, match="1 to 10"):
        stage.turn_page(PRES, 11, 107.0)
    with pytest.raises(InteractionError) as refused:
        stage.turn_page(ANN, 2, 107.0)
    assert refused.value.code == "forbidden"


def test_the_video_position_runs_while_playing() -> None:
    stage = st.StageContent()
    stage.apply(stage.share_video(PRES, kind="youtube", source="dQw4w9WgXcQ", name="v", now=0.0))
    stage.apply(stage.control_video(PRES, "play", 10.0, 100.0))
    assert stage.video is not None and stage.video.position_at(103.5) == pytest.approx(13.5)
    stage.apply(stage.control_video(PRES, "pause", 13.0, 103.0))
    assert stage.video.position_at(200.0) == 13.0
    stage.apply(stage.stop_video(PRES))
    assert stage.video is None and stage.layout == "cameras"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=30", ("youtube", "dQw4w9WgXcQ")),
        ("youtu.be/dQw4w9WgXcQ", ("youtube", "dQw4w9WgXcQ")),
        ("https://www.youtube.com/live/dQw4w9WgXcQ?si=x", ("youtube", "dQw4w9WgXcQ")),
        ("https://vimeo.com/76979871", ("vimeo", "76979871")),
        ("https://player.vimeo.com/video/76979871?h=1", ("vimeo", "76979871")),
    ],
)
def test_video_links(url: str, expected: tuple[str, str]) -> None:
    assert st.video_source(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/watch?v=dQw4w9WgXcQ",
        "javascript:alert(1)",
        "https://www.youtube.com/watch?v=short",
        "https://user:pw@youtube.com/watch?v=dQw4w9WgXcQ",
        "https://vimeo.com/channels/staffpicks",
    ],
)
def test_other_links_are_refused(url: str) -> None:
    with pytest.raises(InteractionError) as refused:
        st.video_source(url)
    assert refused.value.code == "bad-url"


def test_strokes_grow_shapes_are_replaced_and_only_the_author_continues() -> None:
    stage = st.StageContent()
    start = stage.draw(
        PRES, stroke_id="s", page=0, tool="pen", color="#FF0000", width=3,
        points=[[0.1, 0.2]], text=None, done=False,
    )  # fmt: skip
    stage.apply(start)
    more = stage.draw(
        PRES, stroke_id="s", page=0, tool="pen", color="#000000", width=1,
        points=[[0.123456, 0.2]], text=None, done=True,
    )  # fmt: skip
    stage.apply(more)
    stroke = stage.strokes["s"]
    assert stroke.points == ((0.1, 0.2), (0.1235, 0.2)) and stroke.color == "#ff0000"
    assert stroke.done and stroke.parts == 2
    with pytest.raises(InteractionError, match="finished"):
        stage.draw(PRES, stroke_id="s", page=0, tool="pen", color="#000000", width=1,
                   points=[[0.5, 0.5]], text=None, done=False)  # fmt: skip
    stage.apply(stage.grant_board(PRES, ANN, True))
    stage.apply(
        stage.draw(
            ANN,
            stroke_id="r",
            page=0,
            tool="rect",
            color="#000000",
            width=2,
            points=[[0.1, 0.1], [0.2, 0.2]],
            text=None,
            done=False,
        )
    )
    stage.apply(
        stage.draw(
            ANN,
            stroke_id="r",
            page=0,
            tool="rect",
            color="#000000",
            width=2,
            points=[[0.1, 0.1], [0.5, 0.6]],
            text=None,
            done=True,
        )
    )
    assert stage.strokes["r"].points == ((0.1, 0.1), (0.5, 0.6))
    with pytest.raises(InteractionError, match="someone else"):
        stage.draw(PRES, stroke_id="r", page=0, tool="rect", color="#000000", width=2,
                   points=[[0.1, 0.1], [0.2, 0.2]], text=None, done=True)  # fmt: skip
    with pytest.raises(InteractionError, match="two points"):
        stage.draw(PRES, stroke_id="x", page=0, tool="line", color="#000000", width=2,
                   points=[[0.1, 0.1]], text=None, done=True)  # fmt: skip
    eraser = stage.draw(PRES, stroke_id="e", page=0, tool="eraser", color="#123456", width=9,
                        points=[[0.3, 0.3]], text=None, done=True)  # fmt: skip
    assert eraser.stroke is not None and eraser.stroke.color == "#ffffff"
    stage.apply(stage.clear_board(ANN, 0))
    assert stage.strokes == {}


def test_whiteboard_pages_grow_one_at_a_time_up_to_the_limit() -> None:
    stage = st.StageContent()
    for page in range(1, st.MAX_BOARD_PAGES):
        stage.apply(stage.board_to_page(PRES, page))
    assert stage.board_pages == st.MAX_BOARD_PAGES and stage.layout == "whiteboard"
    with pytest.raises(InteractionError):
        stage.board_to_page(PRES, st.MAX_BOARD_PAGES)
    with pytest.raises(InteractionError):
        stage.draw(PRES, stroke_id="z", page=st.MAX_BOARD_PAGES, tool="pen", color="#000000",
                   width=1, points=[[0, 0]], text=None, done=True)  # fmt: skip


def test_the_kept_state_round_trips() -> None:
    stage = st.StageContent()
    stage.apply(stage.show_presentation(PRES, content_id="c", name="d", pages=3, page=2, now=1.0))
    stage.apply(stage.offer_file(PRES, st.OfferedFile("f", "a.pdf", 10, "application/pdf"), True))
    again = st.StageContent()
    again.restore(stage.to_json(), [])
    assert again.to_json() == stage.to_json()
    fresh = st.StageContent()
    fresh.external = True
    fresh.restore(None, [])
    assert fresh.layout == "external"


def _entry(at: float, kind: str, **data: object) -> StageLogEntry:
    return StageLogEntry(at, kind, "p1", dict(data))


def test_slide_timeline_counts_the_time_each_page_was_on_stage() -> None:
    entries = [
        _entry(100.0, "presentation", content_id="c", name="deck.pdf", page=1),
        _entry(130.0, "page", content_id="c", page=2),
        _entry(190.0, "layout", layout="whiteboard"),  # page 2 hidden from 190 …
        _entry(200.0, "layout", layout="presentation"),  # … to 200
        _entry(220.0, "page", content_id="c", page=3),
        _entry(250.0, "presentation", content_id=None),
        _entry(260.0, "presentation", content_id="d", name="more.pdf", page=5),
    ]
    shown = slide_timeline(entries, end=300.0)
    assert [(s.name, s.page, s.at, s.seconds) for s in shown] == [
        ("deck.pdf", 1, 100.0, 30.0),
        ("deck.pdf", 2, 130.0, 60.0),
        ("deck.pdf", 2, 200.0, 20.0),
        ("deck.pdf", 3, 220.0, 30.0),
        ("more.pdf", 5, 260.0, 40.0),
    ]
    assert slide_timeline(entries, end=None)[-1].seconds is None
