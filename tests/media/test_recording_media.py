"""Recording real aiortc publishers through the SFU: a camera switch continues the same
track, a presenter who drops and comes back as a new connection gets a file of their own
in the same recording, and everything decodes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from tests.helpers import RunningServer, running_server
from webinar.app import RECORDINGS
from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.client.peer import WebinarClient

pytestmark = pytest.mark.media
LOOPBACK = ["127.0.0.1"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
async def clients() -> AsyncIterator[list[WebinarClient]]:
    made: list[WebinarClient] = []
    yield made
    await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


def camera(width: int, height: int) -> ClipTrack:
    return ClipTrack(make_vp8_clip(width=width, height=height, seconds=1, keyframe_interval=15))


def decode_all(path: Path) -> dict[str, int]:
    counts = {"video": 0, "audio": 0}
    sizes: set[tuple[int, int]] = set()
    with av.open(str(path)) as container:
        for packet in container.demux():
            for frame in packet.decode():
                counts[packet.stream.type] += 1
                if isinstance(frame, av.VideoFrame):
                    sizes.add((frame.width, frame.height))
    counts["sizes"] = len(sizes)
    return counts


async def test_recording_survives_a_camera_switch_and_a_reconnect(
    server: RunningServer, clients: list[WebinarClient]
) -> None:
    event = await server.create_event()
    host = WebinarClient(server.base_url, mode="count", host_addresses=LOOPBACK)
    pres = WebinarClient(server.base_url, mode="count", host_addresses=LOOPBACK)
    clients += [host, pres]
    await host.join(event.event_id, "Host", event.host_key)
    await pres.join(event.event_id, "Pres", event.presenter_key)
    producers = await pres.publish(
        [(camera(320, 240), "camera"), (ClipTrack(make_opus_clip(seconds=1)), "microphone")]  # type: ignore[list-item]
    )
    assert host.signalling is not None
    started = time.monotonic()
    await host.signalling.request("set-recording", recording=True)
    await asyncio.sleep(3)

    # camera switch as the browser does it: another camera (another size) on the same sender
    assert pres.publish_pc is not None and len(producers) == 2
    video = next(t for t in pres.publish_pc.getTransceivers() if t.kind == "video")
    video.sender.replaceTrack(camera(160, 120))
    await asyncio.sleep(3)

    # the presenter's connection drops; they come back as a new connection
    dropped = time.monotonic() - started
    await pres.close()
    clients.remove(pres)
    again = WebinarClient(server.base_url, mode="count", host_addresses=LOOPBACK)
    clients.append(again)
    await again.join(event.event_id, "Pres", event.presenter_key)
    await again.publish(
        [(camera(320, 240), "camera"), (ClipTrack(make_opus_clip(seconds=1)), "microphone")]  # type: ignore[list-item]
    )
    await asyncio.sleep(3)
    await host.signalling.request("set-recording", recording=False)
    elapsed = time.monotonic() - started

    service = server.server.app[RECORDINGS]
    deadline = time.monotonic() + 15
    while not (found := await service.list(event_id=event.event_id)):
        assert time.monotonic() < deadline, "the recording was not stored"
        await asyncio.sleep(0.2)
    (info,) = found
    assert abs(info.duration - elapsed) < 0.1 * elapsed
    feeds = [f for f in info.files if f["feed"] != "composed"]  # beside composed.mp4
    assert len(feeds) == 2, info.files  # the first connection's feed, then the second's
    first, second = sorted(feeds, key=lambda f: f["offset"])
    assert [s["kind"] for s in first["streams"]] == ["video", "audio"]
    assert second["offset"] > 5.0
    one = await asyncio.to_thread(decode_all, service.root / info.recording_id / first["name"])
    two = await asyncio.to_thread(decode_all, service.root / info.recording_id / second["name"])
    assert one["sizes"] == 2  # both cameras in one track: 320x240, then 160x120
    assert one["video"] > 5 * 20 and one["audio"] > 5 * 40
    assert two["video"] > 2 * 20 and two["audio"] > 2 * 40
    assert 5.5 < first["duration"] < dropped + 1.0, (first, dropped)
