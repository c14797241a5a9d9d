"""The composed recording end to end (issue #22's first must-show): a presenter with camera and
microphone and a second with a screen share, real aiortc clients through the SFU, recorded
for 20 s with a span of presenters-only mode in the middle. The composed MP4 decodes, has the
expected size and duration, its sound is in sync with its picture (a flash and a beep every
second, captured together), both sources are in their places of the layout, and nothing of
the presenters-only span is in it."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests.helpers import RunningServer, running_server
from webinar.app import RECORDINGS
from webinar.broadcast.compositor import fit, layout
from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.client.peer import WebinarClient

pytestmark = pytest.mark.media
LOOPBACK = ["127.0.0.1"]
RED = (81, 90, 240)  # Y, U, V
GREEN = (145, 54, 34)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
async def clients() -> AsyncIterator[list[WebinarClient]]:
    made: list[WebinarClient] = []
    yield made
    await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


def screen(colour: tuple[int, int, int]) -> ClipTrack:
    clip = make_vp8_clip(
        width=640, height=360, seconds=1, keyframe_interval=15, pattern="solid", colour=colour
    )
    return ClipTrack(clip)


def analyse(path: Path) -> dict[str, Any]:
    """Per picture: its time, the camera tile's mean luma, the screen area's colour; per
    10 ms of sound: its loudness."""
    plan = layout(1280, 720, 1, main=True)
    assert plan.main is not None
    cam = fit(plan.cameras[0], 640, 360)
    main = fit(plan.main, 640, 360)
    out: dict[str, Any] = {"pictures": [], "sound": []}
    with av.open(str(path)) as box:
        video = box.streams.video[0]
        out["size"] = (video.codec_context.width, video.codec_context.height)
        out["duration"] = (box.duration or 0) / 1e6
        for frame in box.decode(video=0):
            rgb = frame.reformat(format="rgb24")
            data, stride = bytes(rgb.planes[0]), rgb.planes[0].line_size

            def pixel(x: int, y: int, data: bytes = data, stride: int = stride) -> tuple[int, ...]:
                i = y * stride + 3 * x
                return tuple(data[i : i + 3])

            lumas = [
                sum(pixel(cam.x + cam.w * i // 6, cam.y + cam.h * j // 6)) / 3
                for i in range(1, 6)
                for j in range(1, 6)
            ]
            out["pictures"].append(
                (
                    float(frame.time or 0.0),
                    statistics.fmean(lumas),
                    pixel(main.x + main.w // 2, main.y + main.h // 2),
                )
            )
    with av.open(str(path)) as box:
        leftover: list[float] = []
        start: float | None = None
        for frame in box.decode(audio=0):
            if start is None:
                start = float(frame.time or 0.0)
            samples = list(memoryview(bytes(frame.planes[0])).cast("f"))[: frame.samples]
            leftover += samples
            while len(leftover) >= 480:
                window, leftover = leftover[:480], leftover[480:]
                out["sound"].append(math.sqrt(sum(v * v for v in window) / 480))
        out["sound_start"] = start or 0.0
    return out


def onsets(values: list[tuple[float, float]], threshold: float) -> list[float]:
    """Times where the value rises above ``threshold`` (at least 0.5 s apart)."""
    found: list[float] = []
    above = False
    for t, v in values:
        if v > threshold and not above and (not found or t - found[-1] > 0.5):
            found.append(t)
        above = v > threshold
    return found


async def test_camera_and_screen_share_composed_in_sync_without_presenters_only(
    server: RunningServer, clients: list[WebinarClient]
) -> None:
    event = await server.create_event()
    host = WebinarClient(server.base_url, mode="count", host_addresses=LOOPBACK)
    cam = WebinarClient(server.base_url, mode="count", host_addresses=LOOPBACK)
    sharer = WebinarClient(server.base_url, mode="count", host_addresses=LOOPBACK)
    clients += [host, cam, sharer]
    await host.join(event.event_id, "Host", event.host_key)
    await cam.join(event.event_id, "Camera Presenter", event.presenter_key)
    await sharer.join(event.event_id, "Screen Presenter", event.presenter_key)
    camera = ClipTrack(
        make_vp8_clip(width=640, height=360, seconds=1, keyframe_interval=15, pattern="flash")
    )
    microphone = ClipTrack(make_opus_clip(seconds=1, frequency=1000, beep=True))
    # One capture clock, as a real device has: the flash and the beep leave together.
    camera._start = microphone._start = time.monotonic() + 0.5
    await cam.publish([(camera, "camera"), (microphone, "microphone")])  # type: ignore[list-item]
    await sharer.publish([(screen(RED), "screen")])  # type: ignore[list-item]
    assert host.signalling is not None and cam.signalling is not None
    assert sharer.publish_pc is not None
    await asyncio.sleep(2)  # media flowing

    started = time.monotonic()
    await host.signalling.request("set-recording", recording=True)
    await asyncio.sleep(8)
    # Presenters-only: not composed. The screen turns green inside the span only.
    paused_at = time.monotonic()
    await cam.signalling.request("set-mode", mode="presenters-only")
    await asyncio.sleep(1)
    sender = next(t for t in sharer.publish_pc.getTransceivers() if t.kind == "video").sender
    sender.replaceTrack(screen(GREEN))
    await asyncio.sleep(3)
    sender.replaceTrack(screen(RED))
    await asyncio.sleep(1)
    await cam.signalling.request("set-mode", mode="listen-only")
    resumed_at = time.monotonic()
    await asyncio.sleep(12)
    await host.signalling.request("set-recording", recording=False)
    stopped = time.monotonic()
    expected = (stopped - started) - (resumed_at - paused_at)

    service = server.server.app[RECORDINGS]
    deadline = time.monotonic() + 30
    while not (found := await service.list(event_id=event.event_id)):
        assert time.monotonic() < deadline, "the recording was not stored"
        await asyncio.sleep(0.2)
    (info,) = found
    (composed,) = [f for f in info.files if f["feed"] == "composed"]
    assert composed["name"] == "composed.mp4" and composed["offset"] == 0
    path = service.file_path(info, "composed.mp4")
    assert path is not None and path.stat().st_size == composed["size"] > 0
    result = await asyncio.to_thread(analyse, path)

    # size and duration
    assert result["size"] == (1280, 720)
    assert abs(result["duration"] - expected) <= 0.5, (result["duration"], expected)
    assert abs(composed["duration"] - expected) <= 0.5, (composed, expected)

    # both sources in their regions (after the first seconds: keyframes, sender reports)
    pictures = [p for p in result["pictures"] if p[0] > 3.0]
    red = [p for p in pictures if p[2][0] > 150 and p[2][1] < 90 and p[2][2] < 90]
    assert len(red) > 0.9 * len(pictures), pictures[:5]
    camera_seen = [p for p in pictures if p[1] > 40]
    assert len(camera_seen) > 0.9 * len(pictures)
    # presenters-only never composed: no green screen at all
    green = [p for p in result["pictures"] if p[2][1] > 150 and p[2][0] < 120]
    assert not green, green[:3]

    # A/V sync: each flash with the beep captured with it
    flashes = onsets([(t, luma) for t, luma, _c in pictures], 160)
    sound = [(result["sound_start"] + i * 0.01, v) for i, v in enumerate(result["sound"])]
    beeps = onsets([(t, v) for t, v in sound if t > 3.0], 0.05)
    assert len(flashes) >= 12 and len(beeps) >= 12, (flashes, beeps)
    offsets = []
    for flash in flashes:
        nearest = min(beeps, key=lambda b: abs(b - flash))
        if abs(nearest - flash) < 0.5:
            offsets.append(nearest - flash)
    assert len(offsets) >= 12, (flashes, beeps)
    skew = statistics.median(offsets)
    print(
        f"composed: {result['duration']:.3f} s for {expected:.3f} s expected;"
        f" A/V skew median {skew * 1000:.0f} ms, worst {max(offsets, key=abs) * 1000:.0f} ms"
        f" over {len(offsets)} flashes"
    )
    assert abs(skew) <= 0.080, (skew, offsets)
