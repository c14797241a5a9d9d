"""The live stream out as a host uses it in real Chromium: **Stream out** in the room sends
the composed stage (their own fake camera, through the server's compositor and encoder) to a
real RTMP ingest (nginx-rtmp); the state and bitrate show beside the button, backstage
(presenters-only) shows as paused, **Stop the stream** ends it, attendees see no control; what
the ingest received decodes and shows the camera on the stage."""

from __future__ import annotations

import av
import pytest
from playwright.async_api import expect

from tests.browser.support import OpenPage, go_live, join_attendee, join_presenter
from tests.helpers import RunningServer
from tests.rtmp_server import RtmpServer
from webinar.app import BROADCAST, LIVE_STREAM
from webinar.broadcast.compositor import BACKGROUND_LUMA
from webinar.broadcast.encoder import EncoderSettings
from webinar.broadcast.room import BroadcastSettings

pytestmark = pytest.mark.browser
KEY = "browser-key-5e2a"


async def test_a_host_streams_the_stage_out_from_the_room(
    server: RunningServer, open_page: OpenPage, rtmp_server: RtmpServer
) -> None:
    server.server.app[BROADCAST].settings = BroadcastSettings(
        encoder=EncoderSettings(width=640, height=360, fps=25, video_kbit=600)
    )
    event = await server.create_event("Streamed launch")
    host = await open_page("host")
    attendee = await open_page("attendee")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key)
    await go_live(host)
    await join_attendee(attendee, server, event, "Viewer")
    await expect(attendee.get_by_test_id("live-stream-toggle")).to_be_hidden()

    toggle = host.get_by_test_id("live-stream-toggle")
    status = host.get_by_test_id("live-stream-status")
    # no ingest yet: refused, said plainly
    await toggle.click()
    await expect(host.get_by_test_id("error")).to_contain_text("dashboard")
    await expect(toggle).to_have_attribute("aria-pressed", "false")

    await server.server.app[LIVE_STREAM].settings.save(event.event_id, rtmp_server.url, KEY)
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(status).to_have_attribute("data-state", "live", timeout=20_000)
    await expect(status).to_contain_text("kbit/s", timeout=15_000)  # the bitrate moves
    await host.wait_for_timeout(3_000)

    # backstage: paused for the presenters, the connection kept
    await host.get_by_test_id("mode-select").select_option("presenters-only")
    await expect(status).to_have_attribute("data-state", "paused")
    await host.get_by_test_id("mode-select").select_option("listen-only")
    await expect(status).to_have_attribute("data-state", "live", timeout=10_000)
    await host.wait_for_timeout(2_000)

    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(status).to_be_hidden(timeout=10_000)

    (received,) = rtmp_server.recordings()
    assert received.name.startswith(KEY)
    with av.open(str(received)) as box:
        frames = [f.reformat(format="gray") for f in box.decode(video=0)]
    assert len(frames) > 4 * 25
    assert {(f.width, f.height) for f in frames} == {(640, 360)}
    # the host's camera fills the stage (Chromium's fake camera: a white disc on black), not
    # the empty stage's even background
    last = frames[-1].planes[0]
    data = bytes(last)
    centre = [data[y * last.line_size + x] for y in range(90, 270, 6) for x in range(160, 480, 6)]
    assert min(centre) < BACKGROUND_LUMA - 10 and max(centre) > 200, (min(centre), max(centre))
