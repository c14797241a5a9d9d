"""A recording started as a real Chromium presenter goes live ends at the best encoding.

Chromium's simulcast camera (1280x720, 640x360 and 320x180 encodings) starts its top
encoding seconds after the others, while its bandwidth estimate ramps up; REC pressed
within a second of going live first records 640x360, and the per-feed recorder moves up
to 1280x720 when that encoding flows. The WebM is decoded whole with PyAV and played in
Chromium's own player to its end."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest
from playwright.async_api import expect

from tests.browser.support import OpenPage, go_live, join_presenter, wait_until
from tests.browser.test_recording import stored_recording
from tests.browser.test_tiers import OUTBOUND_JS
from tests.helpers import RunningServer, make_config, running_server
from webinar.app import PUBLISHER, RECORDINGS

pytestmark = pytest.mark.browser

RECORD_FOR = 15.0  # seconds, as the must-show asks


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """Per-feed files only: the composed MP4 would encode beside Chromium's three."""
    config = make_config(tmp_path / "data")
    config = dataclasses.replace(
        config, recording=dataclasses.replace(config.recording, composed=False)
    )
    async with running_server(tmp_path / "data", config) as srv:
        yield srv


def frames_of(path: Path) -> dict[str, Any]:
    """Every video frame's time and size; decoding errors raise; times must go forward."""
    video: list[tuple[float, int, int]] = []
    last: dict[str, int] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is None:
                continue
            kind = packet.stream.type
            assert packet.pts > last.get(kind, -1), f"{kind} timestamps go back"
            last[kind] = packet.pts
            for frame in packet.decode():
                if kind == "video":
                    video.append((float(packet.pts * packet.time_base), frame.width, frame.height))
    return {"video": video, "audio": "audio" in last}


async def test_a_recording_started_at_go_live_ends_at_720p(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Recorded from the start")
    host = await open_page("host")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key)
    await go_live(host)
    live_at = time.monotonic()
    await host.get_by_test_id("record-toggle").click()
    assert time.monotonic() - live_at < 1.0
    await expect(host.get_by_test_id("recording-indicator")).to_be_visible()
    await host.wait_for_timeout((RECORD_FOR - (time.monotonic() - live_at)) * 1000)
    sent = await host.evaluate(OUTBOUND_JS)  # what each encoding had sent, should it fail
    await host.get_by_test_id("record-toggle").click()

    info = await stored_recording(server, event.event_id)
    assert len(info.files) == 1, info.files
    service = server.server.app[RECORDINGS]
    path = service.file_path(info, info.files[0]["name"])
    assert path is not None
    got = await asyncio.to_thread(frames_of, path)
    video = got["video"]
    assert got["audio"] and len(video) > 5 * RECORD_FOR, len(video)
    sizes = [(w, h) for _t, w, h in video]
    changes = [(t, w, h) for i, (t, w, h) in enumerate(video) if i == 0 or sizes[i - 1] != (w, h)]
    # The last frames are the top encoding's. It began smaller (in Chromium the top one
    # flows 3-5 s after going live) and moved up once, never back.
    assert sizes[-15:] == [(1280, 720)] * 15, (changes, sent)
    assert changes[-1][1:] == (1280, 720) and len(changes) <= 2, (changes, sent)
    switch_at = changes[-1][0]
    # One timeline across the switch: no frame goes back, none stalls for long.
    steps = [b[0] - a[0] for a, b in itertools.pairwise(video)]
    assert min(steps) > 0 and max(steps) < 1.0, (min(steps), max(steps))

    # Chromium's own player plays the file from before the switch to its end and ends at
    # the size the file ends with.
    publisher = server.server.app[PUBLISHER]
    publication = await publisher.publish(info.recording_id, days=1, require_email=False)
    await host.goto(f"{server.base_url}/r/{await publisher.token(publication)}")
    player = host.get_by_test_id("watch-video")
    await expect(player).to_have_count(1)
    await player.evaluate(
        """async (v, from) => {
          if (v.readyState < 1) {
            await new Promise((ok) => v.addEventListener("loadedmetadata", ok, {once: true}));
          }
          v.muted = true;
          v.currentTime = from;
          v.playbackRate = 2;
          await v.play();
        }""",
        max(0.0, switch_at - 1.0),
    )
    widths: set[int] = set()

    async def probe() -> dict[str, Any]:
        st: dict[str, Any] = await player.evaluate(
            "v => ({t: v.currentTime, w: v.videoWidth, h: v.videoHeight,"
            " e: v.error && v.error.code, ended: v.ended})"
        )
        widths.add(st["w"])
        return st

    state = await wait_until(
        probe,
        lambda st: st["ended"] or st["e"] is not None,
        within=RECORD_FOR,
        interval=0.1,
        what="the recording to play to its end in the browser",
    )
    assert state["e"] is None and (state["w"], state["h"]) == (1280, 720), state
    assert 1280 in widths, widths
