"""The composed stage over two workers: the room is composed on the worker that holds its
recorder lease (worker 1, where the host is), the presenter publishes on worker 2, so their
camera is relayed to worker 1 for the compositor; the room's HLS output, written to the shared
folder, is served by worker 2 to its attendee and shows the camera."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import av
import pytest

from tests import media_support
from tests.cluster.workers import two_workers
from tests.helpers import Person, join_person
from tests.media_support import until
from tests.redis_server import RedisServer
from webinar.app import BROADCAST, ROOMS
from webinar.broadcast.encoder import EncoderSettings
from webinar.broadcast.room import BroadcastSettings, RoomBroadcast
from webinar.client.media import ClipTrack, make_vp8_clip
from webinar.client.peer import WebinarClient
from webinar.storage.records import EventSettings

pytestmark = pytest.mark.media
clients = media_support.clients
RED = (81, 90, 240)  # Y, U, V


async def test_hls_of_a_room_whose_presenter_is_on_another_worker(
    tmp_path: Path, redis_server: RedisServer, clients: list[WebinarClient]
) -> None:
    people: list[Person] = []
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        for w in (w1, w2):
            w.server.app[BROADCAST].settings = BroadcastSettings(
                encoder=EncoderSettings(width=320, height=180, fps=25, keyframe_seconds=1)
            )
        event = await w1.create_event("Streamed")
        event = await w1.store.update_event(
            event.event_id, EventSettings(title=event.title, hls_mode="all")
        )
        try:
            host = await join_person(w1, people, Person, event, "Host", event.host_key)
            await host.request("start")

            def composer(server_rooms: object) -> RoomBroadcast | None:
                room = w1.server.app[ROOMS].get(event.event_id)
                if room is None or not room.records:
                    return None
                assert isinstance(room.broadcast, RoomBroadcast)
                return room.broadcast

            await until(lambda: composer(None) is not None, within=10)
            pres = media_support.client(clients, w2.base_url)
            await pres.join(event.event_id, "Pia", event.presenter_key)
            red = make_vp8_clip(
                width=320, height=180, seconds=1, keyframe_interval=15, pattern="solid", colour=RED
            )
            await pres.publish([(ClipTrack(red), "camera")])  # type: ignore[list-item]
            viewer = await join_person(w2, people, Person, event, "Vera")
            playlist_path = viewer.joined["hls"]["playlist"]

            # worker 1 composes (the camera relayed from worker 2); worker 2 does not
            broadcast = composer(None)
            assert broadcast is not None
            await until(lambda: broadcast._hls is not None and broadcast.wants_media, within=10)
            room2 = w2.server.app[ROOMS].get(event.event_id)
            assert room2 is not None and not room2.records
            assert (
                isinstance(room2.broadcast, RoomBroadcast) and room2.broadcast._compositor is None
            )

            # worker 2 serves the output from the shared folder; it shows the red camera
            base = w2.base_url + playlist_path.rsplit("/", 1)[0]
            data = b""
            async with aiohttp.ClientSession() as http:
                deadline = asyncio.get_running_loop().time() + 30
                names: list[str] = []
                while asyncio.get_running_loop().time() < deadline:
                    async with http.get(w2.base_url + playlist_path) as resp:
                        text = await resp.text() if resp.status == 200 else ""
                    names = [line for line in text.splitlines() if line.endswith(".m4s")]
                    if len(names) >= 4:
                        break
                    await asyncio.sleep(0.3)
                assert len(names) >= 4, "no HLS segments from the composing worker"
                init = re.search(r'URI="([^"]+)"', text)
                assert init is not None
                for name in [init[1], *names[-2:]]:
                    async with http.get(f"{base}/{name}") as resp:
                        assert resp.status == 200, name
                        data += await resp.read()
            path = tmp_path / "seen.mp4"
            path.write_bytes(data)
            with av.open(str(path)) as box:
                frames = [f.reformat(format="rgb24") for f in box.decode(video=0)]
            assert len(frames) >= 25
            plane = frames[-1].planes[0]
            i = 90 * plane.line_size + 3 * 160  # the centre
            r, g, b = bytes(plane)[i : i + 3]
            assert r > 150 and g < 100 and b < 100, (r, g, b)  # the camera fills the stage
        finally:
            await asyncio.gather(*(p.close() for p in people))
