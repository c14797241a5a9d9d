"""The stage's content in the composed output: a real PDF uploaded to a real store's content
service and rendered to pages by PDFium, the page on stage made the compositor's content
picture by StagePictures, a camera published as real VP8 RTP beside it, the presenter
turning a page half-way; the composed MP4 decoded with PyAV shows each page large (by its
colour) at its time and the camera in the strip. And through a room: the whiteboard drawn on
stage reaches the room's HLS output."""

from __future__ import annotations

import asyncio
import re
import statistics
from pathlib import Path

import aiohttp
import av
import pytest

from tests.helpers import Person, join_person, running_server
from tests.presentation_files import COLOURS, deck, near
from tests.unit.test_broadcast_compositor import FPS, bright_vp8, publish
from tests.unit.test_presentations import settled, upload
from tests.unit.test_recorder import opus_frames
from webinar.app import BROADCAST
from webinar.broadcast.compositor import Compositor, Mp4Sink, fit, layout
from webinar.broadcast.encoder import Encoder, EncoderSettings
from webinar.broadcast.picture import StagePictures, key
from webinar.broadcast.room import BroadcastSettings
from webinar.content.library import ContentService
from webinar.rooms import stage as st
from webinar.rooms.roles import Role
from webinar.rooms.state import Participant
from webinar.storage.records import EventSettings
from webinar.storage.store import Store

pytestmark = pytest.mark.media
PRES = Participant("p1", "Pres", Role.PRESENTER)
MIB = 1024 * 1024
WIDTH, HEIGHT = 640, 360
SECONDS = 4.0
TURN_AT = 2.0  # seconds after the start the presenter turns to page 3
CAMERA_LUMA = 200


async def test_the_presentation_page_is_large_and_the_camera_in_the_strip(
    tmp_path: Path,
) -> None:
    async with Store(tmp_path / "data") as store:
        event = await store.create_event("Slides", None)
        content = ContentService(
            store, tmp_path / "content", max_file_bytes=50 * MIB, quota_bytes=500 * MIB
        )
        await content.start()
        try:
            made = await upload(content, event, deck(3), "deck.pdf", "application/pdf")
            info = await settled(content, made.content_id)
            assert info.pages == 3, info.render_message
            stage = st.StageContent()
            stage.apply(
                stage.show_presentation(
                    PRES, content_id=info.content_id, name="deck.pdf", pages=3, page=2, now=0.0
                )
            )
            pictures = StagePictures(content, size=(WIDTH, HEIGHT))
            page2 = await pictures.picture(event.event_id, stage)
            assert page2 is not None

            # the camera's clip is made before the output's clock starts
            frames = bright_vp8(int(SECONDS * FPS), CAMERA_LUMA, (320, 240))
            encoder = Encoder(
                EncoderSettings(width=WIDTH, height=HEIGHT, fps=FPS, keyframe_seconds=1.0)
            )
            sink = Mp4Sink(tmp_path / "composed.mp4")
            encoder.add_sink(sink)
            compositor = Compositor(encoder, delay=0.3)
            compositor.set_content(page2)
            shown = key(stage)

            async def presenter() -> None:
                nonlocal shown
                await asyncio.sleep(TURN_AT)
                stage.apply(stage.turn_page(PRES, 3, TURN_AT))
                assert key(stage) != shown
                shown = key(stage)
                compositor.set_content(await pictures.picture(event.event_id, stage))

            await asyncio.gather(
                publish(frames, opus_frames(int(SECONDS * 50)), compositor), presenter()
            )
            await asyncio.sleep(0.4)  # the output runs behind by its delay
            await asyncio.to_thread(compositor.close)
        finally:
            await content.close()
    assert sink.error is None, sink.error
    assert compositor.stats.decode_errors == 0

    plan = layout(WIDTH, HEIGHT, 1, main=True)
    assert plan.main is not None
    page_box = fit(plan.main, 4, 3)  # the deck's pages are 4:3
    camera_box = fit(plan.cameras[0], 320, 240)
    seen: list[tuple[float, tuple[int, ...], float, tuple[int, ...]]] = []
    with av.open(str(sink.path)) as box:
        assert box.streams.video[0].codec_context.width == WIDTH
        for frame in box.decode(video=0):
            rgb = frame.to_image()
            # the page's own colour, away from its black block (top left, then bottom right)
            corner = rgb.getpixel((page_box.x + page_box.w - 12, page_box.y + page_box.h - 12))
            camera = [
                sum(rgb.getpixel((camera_box.x + camera_box.w * i // 5, camera_box.y + 4)))  # type: ignore[arg-type]
                / 3
                for i in range(1, 5)
            ]
            beside = rgb.getpixel((page_box.x - 4, HEIGHT // 2)) if page_box.x >= 4 else None
            assert isinstance(corner, tuple)
            seen.append((float(frame.time or 0.0), corner, statistics.fmean(camera), beside or ()))
    assert len(seen) > SECONDS * FPS * 0.7, len(seen)
    # the camera's picture arrives within a moment; from then on it is in the strip
    # (before it, the page alone fills the stage)
    with_camera = [s for s in seen if abs(s[2] - CAMERA_LUMA) < 25]
    assert with_camera and with_camera[0][0] < 0.8, seen[:5]
    seen = [s for s in seen if s[0] >= with_camera[0][0] + 0.1]
    assert all(abs(s[2] - CAMERA_LUMA) < 25 for s in seen)
    # page 2 (green) large until the turn, page 3 (blue) after it
    before = [s for s in seen if s[0] < TURN_AT - 0.6]
    after = [s for s in seen if s[0] > TURN_AT + 0.3]
    assert before and after
    assert all(near(s[1], COLOURS[1], 30) for s in before), [s[1] for s in before[:5]]
    assert all(near(s[1], COLOURS[2], 30) for s in after), [s[1] for s in after[:5]]
    # the page keeps its 4:3 shape: the stage's dark background beside it, not the page
    assert all(len(s[3]) == 3 and sum(s[3]) < 150 for s in seen), seen[0][3]


async def test_the_rooms_whiteboard_reaches_its_hls_output(tmp_path: Path) -> None:
    """Through the room: a presenter puts the whiteboard on stage and draws a thick red
    diagonal; the room's own compositor (RoomBroadcast with the app's StagePictures) shows
    it large in the HLS output an attendee gets."""
    async with running_server(tmp_path / "data") as server:
        server.server.app[BROADCAST].settings = BroadcastSettings(
            encoder=EncoderSettings(width=WIDTH, height=HEIGHT, fps=25, keyframe_seconds=1)
        )
        event = await server.create_event("Board")
        event = await server.store.update_event(
            event.event_id, EventSettings(title=event.title, hls_mode="all")
        )
        people: list[Person] = []
        try:
            host = await join_person(server, people, Person, event, "Host", event.host_key)
            await host.request("start")
            await host.request("stage-layout", layout="whiteboard")
            await host.request(
                "whiteboard-stroke", stroke_id="d1", page=0, tool="pen", color="#ff0000",
                width=30, points=[[0.05, 0.05], [0.5, 0.5], [0.95, 0.95]], done=True,
            )  # fmt: skip
            viewer = await join_person(server, people, Person, event, "Vera")
            playlist = server.base_url + viewer.joined["hls"]["playlist"]
            data = b""
            async with aiohttp.ClientSession() as http:
                names: list[str] = []
                text = ""
                for _ in range(100):
                    async with http.get(playlist) as resp:
                        text = await resp.text() if resp.status == 200 else ""
                    names = [line for line in text.splitlines() if line.endswith(".m4s")]
                    if len(names) >= 3:
                        break
                    await asyncio.sleep(0.2)
                init = re.search(r'URI="([^"]+)"', text)
                assert init is not None and names, text
                base = playlist.rsplit("/", 1)[0]
                for name in [init[1], names[-1]]:
                    async with http.get(f"{base}/{name}") as resp:
                        assert resp.status == 200
                        data += await resp.read()
        finally:
            await asyncio.gather(*(p.close() for p in people))
    path = tmp_path / "hls.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as box:
        last = [f.reformat(format="rgb24") for f in box.decode(video=0)][-1]
    plan = layout(WIDTH, HEIGHT, 0, main=True)
    assert plan.main is not None
    board = fit(plan.main, 16, 9)  # the board keeps its 16:9 in the large area
    plane, size = bytes(last.planes[0]), last.planes[0].line_size

    def rgb(fx: float, fy: float) -> tuple[int, ...]:
        x, y = board.x + round(board.w * fx), board.y + round(board.h * fy)
        return tuple(plane[y * size + 3 * x : y * size + 3 * x + 3])

    for f in (0.3, 0.5, 0.7):  # on the stroke: red
        r, g, b = rgb(f, f)
        assert r > 170 and g < 90 and b < 90, (f, (r, g, b))
    r, g, b = rgb(0.8, 0.2)  # off it: the white board
    assert min(r, g, b) > 200, (r, g, b)
