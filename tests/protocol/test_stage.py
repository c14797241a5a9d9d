"""Content on stage over real WebSockets: layout, shared video, files, whiteboard, pointer.

Presentations (rendered pages) are in tests/protocol/test_presentations.py."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests import helpers, protocol_fixtures
from tests.presentation_files import deck
from tests.protocol.test_content import Setup, config, pdf_of, start
from tests.protocol.test_presentations import rendered
from tests.protocol_fixtures import refused
from webinar.content.stage import sql_load, sql_log
from webinar.ids import format_event_id

enter = protocol_fixtures.Entrance(helpers.Person)


def webm(seconds: float = 1.0) -> bytes:
    """A small real VP8 WebM (PyAV)."""
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as box:
        stream = box.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([i * 20 % 256]) * plane.buffer_size)
            frame.pts = i
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return out.getvalue()


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async for s in start(tmp_path, config(tmp_path / "data", max_file_mb=5, quota_mb=20)):
        yield s


@pytest.fixture
async def people() -> AsyncIterator[list[helpers.Person]]:
    made: list[helpers.Person] = []
    yield made
    await asyncio.gather(*(p.close() for p in made))


async def synced(person: helpers.Person) -> dict[str, Any]:
    state = await person.request("sync-interaction")
    stage: dict[str, Any] = state["stage"]
    return stage


async def test_whiteboard_strokes_reach_everyone_and_late_joiners(
    setup: Setup, people: list[helpers.Person]
) -> None:
    event = setup.event
    pres = await enter(setup.server, people, event, "Pres", event.presenter_key)
    ann = await enter(setup.server, people, event, "Ann")
    assert (await synced(ann))["layout"] == "cameras"
    await pres.request("stage-layout", layout="whiteboard")
    changed = await ann.wait("stage", lambda m: m["cause"] == "layout")
    assert changed["layout"] == "whiteboard" and changed["by"] == pres.pid

    # a pen stroke in three messages, a rectangle replaced as it is dragged
    await pres.request(
        "whiteboard-stroke", stroke_id="s1", page=0, tool="pen", color="#FF0000", width=4,
        points=[[0.1, 0.1], [0.2, 0.2]],
    )  # fmt: skip
    await pres.request("whiteboard-stroke", stroke_id="s1", page=0, points=[[0.3, 0.3]])
    await pres.request("whiteboard-stroke", stroke_id="s1", page=0, points=[], done=True)
    await pres.request(
        "whiteboard-stroke", stroke_id="r1", page=0, tool="rect", points=[[0.5, 0.5], [0.6, 0.6]]
    )
    await pres.request(
        "whiteboard-stroke", stroke_id="r1", page=0, points=[[0.5, 0.5], [0.9, 0.8]], done=True
    )
    first = await ann.wait("whiteboard-stroke", lambda m: m["stroke"]["stroke_id"] == "s1")
    assert first["stroke"]["color"] == "#ff0000" and first["append"] is False
    grown = await ann.wait("whiteboard-stroke", lambda m: m["append"])
    assert grown["stroke"]["points"] == [[0.3, 0.3]]
    await ann.wait(
        "whiteboard-stroke", lambda m: m["stroke"]["stroke_id"] == "r1" and m["stroke"]["done"]
    )
    assert not [m for m in pres.seen if m["type"] == "whiteboard-stroke"]  # not echoed

    late = await enter(setup.server, people, event, "Late")
    board = (await synced(late))["whiteboard"]
    strokes = {s["stroke_id"]: s for s in board["strokes"]}
    assert strokes["s1"]["points"] == [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]
    assert strokes["s1"]["done"] is True
    assert strokes["r1"]["points"] == [[0.5, 0.5], [0.9, 0.8]]

    # attendees may not draw until granted; then they may, and clear
    await refused(
        "forbidden",
        ann.request("whiteboard-stroke", stroke_id="a1", page=0, points=[[0.4, 0.4]]),
    )
    await pres.request("whiteboard-grant", participant_id=ann.pid, granted=True)
    granted = await ann.wait("stage", lambda m: m["cause"] == "whiteboard")
    assert granted["whiteboard"]["granted"] == [ann.pid]
    await ann.request("whiteboard-stroke", stroke_id="a1", page=0, points=[[0.4, 0.4]], done=True)
    await pres.wait("whiteboard-stroke", lambda m: m["stroke"]["by"] == ann.pid)
    await refused(
        "invalid-request",
        ann.request("whiteboard-stroke", stroke_id="a2", page=0, points=[[1.5, 0]]),
    )
    await refused(
        "invalid-request",
        ann.request("whiteboard-stroke", stroke_id="s1", page=0, points=[[0.1, 0.1]]),
    )

    # a second page; clearing page 0 empties it for everyone and for later joiners
    await pres.request("whiteboard-page", page=1)
    assert (await ann.wait("stage", lambda m: m["whiteboard"]["pages"] == 2))["whiteboard"][
        "page"
    ] == 1
    await pres.request("whiteboard-stroke", stroke_id="p2", page=1, points=[[0.5, 0.5]], done=True)
    await ann.request("whiteboard-clear", page=0)
    await pres.wait("whiteboard-cleared", lambda m: m["page"] == 0)
    after = await enter(setup.server, people, event, "After")
    board = (await synced(after))["whiteboard"]
    assert [s["stroke_id"] for s in board["strokes"]] == ["p2"]
    assert board["page"] == 1 and board["pages"] == 2


async def test_shared_video_position_follows_the_presenter(
    setup: Setup, people: list[helpers.Person]
) -> None:
    event = setup.event
    pres = await enter(setup.server, people, event, "Pres", event.presenter_key)
    ann = await enter(setup.server, people, event, "Ann")
    await refused("bad-url", pres.request("video-share", url="https://example.com/v.mp4"))
    await refused("forbidden", ann.request("video-share", url="https://youtu.be/dQw4w9WgXcQ"))
    await pres.request("video-share", url="https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=3")
    shared = (await ann.wait("stage", lambda m: m["cause"] == "video"))["video"]
    assert shared["kind"] == "youtube" and shared["playing"] is False
    assert shared["src"].startswith("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?")
    await pres.request("video-control", action="play", position=10.0)
    await asyncio.sleep(0.3)
    late = await enter(setup.server, people, event, "Late")
    stage = await synced(late)
    video = stage["video"]
    now_position = video["position"] + (stage["now"] - video["at"]) * video["rate"]
    assert video["playing"] is True and 10.25 <= now_position < 11.5, video
    await pres.request("video-control", action="pause", position=11.0)
    paused = (await ann.wait("stage", lambda m: m["video"] and not m["video"]["playing"]))["video"]
    assert paused["position"] == 11.0

    # an uploaded WebM plays from its content URL; other files are refused
    status, made = await setup.upload(webm(), name="clip.webm", content_type="video/webm")
    assert status == 201, made
    status, pdf = await setup.upload(pdf_of(2000))
    assert status == 201, pdf
    await refused("invalid-request", pres.request("video-share", content_id=pdf["content_id"]))
    await pres.request("video-share", content_id=made["content_id"])
    video = (await ann.wait("stage", lambda m: m["video"] and m["video"]["kind"] == "file"))[
        "video"
    ]
    assert video["src"] == f"/e/{event.event_id}/content/{made['content_id']}"
    await pres.request("video-stop")
    stopped = await ann.wait("stage", lambda m: m["cause"] == "video" and m["video"] is None)
    assert stopped["layout"] == "cameras"


async def test_offered_files_are_listed_for_attendees(
    setup: Setup, people: list[helpers.Person]
) -> None:
    event = setup.event
    pres = await enter(setup.server, people, event, "Pres", event.presenter_key)
    ann = await enter(setup.server, people, event, "Ann")
    status, made = await setup.upload(pdf_of(3000), name="handout.pdf")
    assert status == 201, made
    await refused("not-found", pres.request("file-offer", content_id="cnt_" + "0" * 24))
    await refused("forbidden", ann.request("file-offer", content_id=made["content_id"]))
    await pres.request("file-offer", content_id=made["content_id"])
    files = (await ann.wait("stage", lambda m: m["cause"] == "files"))["files"]
    assert files == [
        {
            "content_id": made["content_id"],
            "name": "handout.pdf",
            "size": 3000,
            "type": "application/pdf",
            "url": f"/e/{event.event_id}/content/{made['content_id']}",
        }
    ]
    url = f"{setup.base}/e/{format_event_id(event.event_id)}/content/{made['content_id']}"
    async with setup.http.get(url) as resp:  # an open event's files: the link is enough
        assert resp.status == 200 and len(await resp.read()) == 3000
    status, other = await setup.upload(pdf_of(2000), name="notes.pdf")  # not offered
    assert status == 201, other
    async with setup.http.get(url.rpartition("/")[0]) as resp:  # what attendees list
        assert [f["content_id"] for f in (await resp.json())["items"]] == [made["content_id"]]
    await pres.request("file-offer", content_id=made["content_id"], offered=False)
    assert (await ann.wait("stage", lambda m: m["cause"] == "files" and not m["files"]))[
        "files"
    ] == []


async def test_pointer_is_relayed_not_kept(setup: Setup, people: list[helpers.Person]) -> None:
    event = setup.event
    pres = await enter(setup.server, people, event, "Pres", event.presenter_key)
    ann = await enter(setup.server, people, event, "Ann")
    await pres.request("pointer", x=0.25, y=0.75)
    moved = await ann.wait("pointer")
    assert (moved["x"], moved["y"], moved["by"]) == (0.25, 0.75, pres.pid)
    await pres.request("pointer")
    assert (await ann.wait("pointer", lambda m: m["x"] is None))["y"] is None
    await refused("forbidden", ann.request("pointer", x=0.5, y=0.5))
    await refused("bad-message", pres.request("pointer", x=2, y=0.5))


async def test_layout_needs_what_it_shows_and_the_stage_is_kept(
    setup: Setup, people: list[helpers.Person]
) -> None:
    event = setup.event
    pres = await enter(setup.server, people, event, "Pres", event.presenter_key)
    await refused("invalid-request", pres.request("stage-layout", layout="presentation"))
    await refused("invalid-request", pres.request("stage-layout", layout="external"))
    await refused("bad-message", pres.request("stage-layout", layout="everything"))
    await pres.request("whiteboard-stroke", stroke_id="k1", page=0, points=[[0.5, 0.5]], done=True)
    await pres.request("stage-layout", layout="whiteboard")
    # what a room restored after a restart reads (webinar.content.stage)
    state, strokes = await setup.server.store.run_sql(lambda db: sql_load(db, event.event_id))
    assert state is not None and state["layout"] == "whiteboard"
    assert [(s.stroke_id, s.points, s.done) for s in strokes] == [("k1", ((0.5, 0.5),), True)]
    log = await setup.server.store.run_sql(lambda db: sql_log(db, event.event_id, 100))
    assert [(e.kind, e.data, e.by) for e in log] == [("layout", {"layout": "whiteboard"}, pres.pid)]


async def test_the_api_tells_what_was_on_stage_when(
    setup: Setup, people: list[helpers.Person]
) -> None:
    event = setup.event
    pres = await enter(setup.server, people, event, "Pres", event.presenter_key)
    await pres.request("video-share", url="https://vimeo.com/76979871")
    await pres.request("video-control", action="play", position=0)
    await pres.request("stage-layout", layout="whiteboard")
    url = f"{setup.base}/api/v1/events/{format_event_id(event.event_id)}/stage"
    async with setup.http.get(url, headers=setup.auth) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert [
        (i["kind"], i["details"].get("action") or i["details"].get("layout")) for i in body["items"]
    ] == [
        ("video", "share"),
        ("video", "play"),
        ("layout", "whiteboard"),
    ]
    assert body["items"][0]["by"] == pres.pid and body["items"][0]["at"].endswith("Z")
    assert body["slides"] == []
    async with setup.http.get(url) as resp:
        assert resp.status == 401


async def test_a_presentation_on_stage_page_by_page_and_when_each_page_was_up(
    setup: Setup, people: list[helpers.Person]
) -> None:
    event = setup.event
    pres = await enter(setup.server, people, event, "Pres", event.presenter_key)
    ann = await enter(setup.server, people, event, "Ann")
    status, made = await setup.upload(deck(5), name="deck.pdf")
    assert status == 201, made
    state = await rendered(setup, made)
    assert state == {"pages": 5, "status": "ready", "message": None}
    await refused(
        "invalid-request",
        pres.request("presentation-show", content_id=made["content_id"], page=6),
    )
    await pres.request("presentation-show", content_id=made["content_id"])
    shown = (await ann.wait("stage", lambda m: m["cause"] == "presentation"))["presentation"]
    assert (shown["pages"], shown["page"], shown["name"]) == (5, 1, "deck.pdf")
    url = setup.base + shown["page_url"].replace("{page}", "4")
    async with setup.http.get(url) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/webp"
    for page in (2, 3, 4):
        await pres.request("presentation-page", page=page)
    await ann.wait("stage", lambda m: m["presentation"]["page"] == 4)
    await refused("forbidden", ann.request("presentation-page", page=1))
    late = await enter(setup.server, people, event, "Late")
    stage = await synced(late)
    assert stage["layout"] == "presentation" and stage["presentation"]["page"] == 4

    url = f"{setup.base}/api/v1/events/{format_event_id(event.event_id)}/stage"
    async with setup.http.get(url, headers=setup.auth) as resp:
        slides = (await resp.json())["slides"]
    assert [s["page"] for s in slides] == [1, 2, 3, 4]
    assert all(s["seconds"] is not None for s in slides[:3]) and slides[3]["seconds"] is None
    await pres.request("presentation-stop")
    await ann.wait("stage", lambda m: m["presentation"] is None and m["layout"] == "cameras")
