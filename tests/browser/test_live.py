"""A presenter goes live in Chromium; attendees in other browser contexts see and hear them."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.support import (
    SCREENSHOTS,
    OpenPage,
    go_live,
    inbound_stats,
    join_attendee,
    join_presenter,
    mean_luma,
    sender_reports,
    wait_for_media,
    wait_for_playing_video,
)
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser


async def test_presenter_live_to_two_attendees(server: RunningServer, open_page: OpenPage) -> None:
    event = await server.create_event("Browser demo")
    presenter = await open_page("presenter")
    early = await open_page("attendee-early")
    late = await open_page("attendee-late")

    # One attendee is there before the presenter goes live (the stream is added by
    # renegotiation), the other joins a live room (the stream is in the first offer).
    await join_attendee(early, server, event, "Early Bird")
    await expect(early.get_by_test_id("room-status")).to_have_text("Waiting for the presenter…")
    await join_presenter(presenter, server, event, "Alice")
    await go_live(presenter)
    await join_attendee(late, server, event, "Late Comer")

    for attendee in (early, late):
        tile = attendee.get_by_test_id("video-tile")
        await expect(tile).to_have_count(1)
        await expect(tile).to_contain_text("Alice")
        await expect(attendee.get_by_test_id("room-status")).to_be_hidden()
        stats = await wait_for_media(attendee)
        assert stats["connection"] == "connected"
        assert stats["video"]["frameWidth"] > 0

    # The SFU's compound RTCP sender reports reach the browser for both streams and
    # count what was forwarded (what lip sync and the browser's stats rest on).
    for _ in range(40):
        reports = await sender_reports(late)
        if all(reports.get(k, {}).get("reportsSent", 0) >= 2 for k in ("audio", "video")):
            break
        await late.wait_for_timeout(250)
    for kind in ("audio", "video"):
        got = reports[kind]
        assert got["reportsSent"] >= 2, reports
        assert got["remoteTimestamp"] > 0, reports
        assert 0 < got["packetsSent"] <= got["packetsReceived"] + 100, reports

    # The picture is a picture: the fake camera's pattern is far from black.
    await wait_for_playing_video(late, "[data-testid=video-tile] video")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "attendee-video-tile.png"
    await late.get_by_test_id("video-tile").locator("video").screenshot(path=str(shot))
    luma = mean_luma(shot)
    assert luma > 40, f"the attendee's video looks black (mean luma {luma:.1f})"
    # Audio plays through the presenter's tile (one MediaStream with both tracks).
    has_audio = await late.locator("[data-testid=video-tile] video").evaluate(
        "v => !v.muted && v.srcObject.getAudioTracks().length"
    )
    assert has_audio == 1

    # Stop: the tile goes away at once and a toast says why.
    await presenter.get_by_test_id("stop-live").click()
    for attendee in (early, late):
        await expect(attendee.get_by_test_id("video-tile")).to_have_count(0, timeout=3000)
        await expect(attendee.get_by_test_id("toast").first).to_contain_text(
            "Alice stopped their camera"
        )
        await expect(attendee.get_by_test_id("room-status")).to_have_text(
            "Waiting for the presenter…"
        )
    await expect(presenter.get_by_test_id("go-live")).to_be_visible()
    # The presenter's camera is released.
    live_tracks = await presenter.evaluate("() => window.__webinar.room.local.live.length")
    assert live_tracks == 0

    # After the stop no more media arrives.
    before = await inbound_stats(late)
    await late.wait_for_timeout(500)
    after = await inbound_stats(late)
    assert after["video"]["framesDecoded"] - before["video"]["framesDecoded"] <= 2

    # Live again (on the same m-lines); both attendees see Alice again.
    await go_live(presenter)
    for attendee in (early, late):
        await expect(attendee.get_by_test_id("video-tile")).to_have_count(1)
    await wait_for_media(late)
    # Switching the camera swaps the sent track without renegotiation; frames keep coming.
    await presenter.evaluate(
        "async () => { const room = window.__webinar.room;"
        " await room.switchDevice('video', room.local.currentDevice('video')); }"
    )
    await wait_for_media(late)


async def test_going_live_again_reuses_the_m_lines(
    server: RunningServer, open_page: OpenPage
) -> None:
    """Stop closes the producers; the next Go live sends new tracks on the same two
    m-lines (replaceTrack + sendonly) instead of adding two more every time."""
    event = await server.create_event("On and off")
    presenter = await open_page("presenter")
    attendee = await open_page("attendee")
    await join_presenter(presenter, server, event, "Alice")
    await join_attendee(attendee, server, event, "Viewer")
    transceivers = (
        "() => window.__webinar.connection.publishConnection.getTransceivers()"
        ".map((t) => [t.mid, t.receiver.track.kind, t.direction])"
    )
    seen: list[list[list[str]]] = []
    producer_ids: set[str] = set()
    for _round in range(3):
        await go_live(presenter)
        await expect(attendee.get_by_test_id("video-tile")).to_have_count(1)
        await wait_for_media(attendee)
        seen.append(await presenter.evaluate(transceivers))
        producer_ids |= set(
            await presenter.evaluate("() => [...window.__webinar.connection.producers.keys()]")
        )
        await presenter.get_by_test_id("stop-live").click()
        await expect(presenter.get_by_test_id("go-live")).to_be_visible()
        await expect(attendee.get_by_test_id("video-tile")).to_have_count(0)
    assert seen == [[["0", "video", "sendonly"], ["1", "audio", "sendonly"]]] * 3, seen
    assert len(producer_ids) == 6  # a new producer each time, on the same m-lines
    stopped = await presenter.evaluate(transceivers)
    assert [t[2] for t in stopped] == ["inactive", "inactive"]
