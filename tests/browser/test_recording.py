"""Recording a real Chromium presenter: REC in the room, the indicator everyone sees,
and the WebM read back with PyAV (streams, duration, decoding, audio/video offset);
presenters-only mode is never recorded."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import av
import pytest
from playwright.async_api import expect

from tests.browser.support import (
    OpenPage,
    go_live,
    inbound_stats,
    join_attendee,
    join_presenter,
    wait_for_media,
    wait_until,
)
from tests.helpers import RunningServer
from webinar.app import PUBLISHER, RECORDINGS
from webinar.recordings.library import RecordingInfo
from webinar.sfu.simulcast import LAYER_KEYFRAME_INTERVAL

pytestmark = pytest.mark.browser


async def stored_recording(server: RunningServer, event_id: str) -> RecordingInfo:
    service = server.server.app[RECORDINGS]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = await service.list(event_id=event_id)
        if found:
            return found[0]
        await asyncio.sleep(0.2)
    raise AssertionError("the recording was not stored")


def analyse(path: Path) -> dict[str, Any]:
    """Streams, duration, first timestamps, and every frame decoded (errors raise)."""
    with av.open(str(path)) as container:
        kinds = sorted(s.type for s in container.streams)
        duration = (container.duration or 0) / 1_000_000
        starts: dict[str, float] = {}
        decoded: dict[str, int] = {"video": 0, "audio": 0}
        for packet in container.demux():
            if packet.pts is None:
                continue
            kind = packet.stream.type
            starts.setdefault(kind, float(packet.pts * packet.time_base))
            for _frame in packet.decode():
                decoded[kind] += 1
    return {"kinds": kinds, "duration": duration, "starts": starts, "decoded": decoded}


async def test_a_presenter_is_recorded_into_a_playable_webm(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Recorded talk")
    host = await open_page("host")
    attendee = await open_page("attendee")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key)
    await go_live(host)
    await join_attendee(attendee, server, event, "Viewer")
    await wait_for_media(attendee)
    await expect(attendee.get_by_test_id("recording-indicator")).to_be_hidden()
    await expect(attendee.get_by_test_id("record-toggle")).to_be_hidden()  # no capability

    await host.get_by_test_id("record-toggle").click()
    started = time.monotonic()
    seen_before = (await inbound_stats(attendee))["video"]["framesDecoded"]
    await expect(attendee.get_by_test_id("recording-indicator")).to_have_attribute(
        "data-status", "recording"
    )
    await expect(host.get_by_test_id("recording-indicator")).to_be_visible()
    await host.wait_for_timeout(10_000)
    await host.get_by_test_id("record-toggle").click()
    elapsed = time.monotonic() - started
    seen = (await inbound_stats(attendee))["video"]["framesDecoded"] - seen_before
    await expect(attendee.get_by_test_id("recording-indicator")).to_be_hidden()

    info = await stored_recording(server, event.event_id)
    feeds = [f for f in info.files if f["feed"] != "composed"]  # beside composed.mp4
    assert len(feeds) == 1, info.files
    assert [f["name"] for f in info.files if f["feed"] == "composed"] == ["composed.mp4"]
    service = server.server.app[RECORDINGS]
    path = service.file_path(info, feeds[0]["name"])
    assert path is not None and 0 < path.stat().st_size < info.size
    result = await asyncio.to_thread(analyse, path)
    assert result["kinds"] == ["audio", "video"]
    assert abs(result["duration"] - elapsed) < 0.1 * elapsed, (result, elapsed)
    assert abs(info.duration - elapsed) < 0.1 * elapsed
    # every frame the attendee saw meanwhile is in the file (less a keyframe wait at the start)
    assert result["decoded"]["video"] >= 0.9 * seen > 0, (result, seen)
    assert result["decoded"]["audio"] > 0.9 * elapsed * 50  # 20 ms Opus frames
    # Audio is recorded from the press on; video from its first keyframe. The recorder
    # asks for one at once, but the publisher is asked at most once a second per encoding,
    # so when a subscriber's request for that encoding has just been sent the recorder's
    # waits for the end of that second (LAYER_KEYFRAME_INTERVAL), plus encoding and the
    # trip here.
    offset = result["starts"]["video"] - result["starts"]["audio"]
    assert -0.1 < offset < LAYER_KEYFRAME_INTERVAL + 0.2, result["starts"]

    # What a viewer of the published recording sees: the browser's own player plays it.
    publisher = server.server.app[PUBLISHER]
    publication = await publisher.publish(info.recording_id, days=1, require_email=False)
    await attendee.goto(f"{server.base_url}/r/{await publisher.token(publication)}")
    videos = attendee.get_by_test_id("watch-video")
    await expect(videos).to_have_count(2)  # the presenter's WebM and composed.mp4
    for i in range(2):
        video = videos.nth(i)
        await video.evaluate("v => { v.muted = true; return v.play(); }")
        state = await wait_until(
            lambda video=video: video.evaluate(
                "v => ({t: v.currentTime, w: v.videoWidth, d: v.duration,"
                " e: v.error && v.error.code})"
            ),
            lambda st: st["t"] > 1.5 and st["w"] > 0,
            within=10,
            what="the recording to play in the browser",
        )
        assert state["e"] is None
        assert abs(state["d"] - elapsed) < 0.1 * elapsed


async def test_presenters_only_mode_is_not_recorded(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Backstage first")
    host = await open_page("host")
    attendee = await open_page("attendee")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key)
    await go_live(host)
    await join_attendee(attendee, server, event, "Viewer")
    await wait_for_media(attendee)

    await host.get_by_test_id("mode-select").select_option("presenters-only")
    await expect(attendee.get_by_test_id("mode-badge")).to_have_text("Backstage")
    await host.get_by_test_id("record-toggle").click()
    indicator = attendee.get_by_test_id("recording-indicator")
    await expect(indicator).to_have_attribute("data-status", "paused")
    await expect(indicator).to_contain_text("paused")
    await host.wait_for_timeout(4_000)  # backstage talk: must not be in the file

    await host.get_by_test_id("mode-select").select_option("listen-only")
    resumed = time.monotonic()
    await expect(indicator).to_have_attribute("data-status", "recording")
    await host.wait_for_timeout(5_000)
    await host.get_by_test_id("record-toggle").click()
    on_air = time.monotonic() - resumed
    await expect(indicator).to_be_hidden()

    info = await stored_recording(server, event.event_id)
    service = server.server.app[RECORDINGS]
    feeds = [f for f in info.files if f["feed"] != "composed"]
    path = service.file_path(info, feeds[0]["name"])
    assert path is not None
    result = await asyncio.to_thread(analyse, path)
    # Only the time on air is in the file (not the 4 s backstage before it).
    assert abs(info.duration - on_air) < 0.1 * on_air + 0.3, (info.duration, on_air)
    assert result["duration"] < on_air + 0.5, (result, on_air)
    assert result["decoded"]["video"] > 0 and result["decoded"]["audio"] > 0
