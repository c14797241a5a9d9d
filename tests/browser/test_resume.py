"""A dropped signalling socket: the page reconnects by itself, resumes the same
participant (raised hand included) and gets its media back; a presenter republishes."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.support import (
    OpenPage,
    go_live,
    inbound_stats,
    join_attendee,
    join_presenter,
    participant_id,
    wait_for_media,
    wait_until,
)
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser

# Record the presenter's view of the attendee's connection state (an attendee off the stage
# reaches presenters in the roster's batched deltas).
WATCH_CONNECTION_JS = """
(pid) => {
  window.__seen = [];
  window.__webinar.connection.addEventListener("roster-delta", (e) => {
    for (const { participant: p, previous } of e.detail.changes) {
      if (p.participant_id === pid && previous && previous.connected !== p.connected) {
        window.__seen.push(p.connected);
      }
    }
  });
}
"""


async def test_dropped_socket_resumes_hand_and_media(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Flaky network")
    presenter = await open_page("presenter")
    attendee = await open_page("attendee")
    await join_presenter(presenter, server, event, "Alice")
    await go_live(presenter)
    await join_attendee(attendee, server, event, "Wanderer")
    await wait_for_media(attendee)
    me = await participant_id(attendee)
    client_id = await attendee.evaluate("() => localStorage.getItem('webinar.clientId')")
    assert client_id
    await attendee.get_by_test_id("raise-hand").click()
    row = presenter.locator(f"[data-testid=participant-row][data-participant-id={me}]")
    await expect(row.get_by_test_id("hand-position")).to_have_text("1st in the queue")
    await presenter.evaluate(WATCH_CONNECTION_JS, me)

    # The network drops (the socket closes without 'leave').
    await attendee.evaluate("() => window.__webinar.dropConnection()")
    banner = attendee.get_by_test_id("reconnecting")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Reconnecting")
    await expect(banner).to_be_hidden(timeout=10_000)
    await expect(attendee.get_by_test_id("toast").last).to_contain_text("Reconnected")
    await expect(attendee.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")

    # The same participant, the same place in the queue, and the video decodes again
    # (on a new subscribe connection, whose counters start at zero).
    assert await participant_id(attendee) == me
    resumed = await attendee.evaluate(
        "() => { const c = window.__webinar.connection; return [c.resumeCount, c.joined.resumed]; }"
    )
    assert resumed == [1, True]
    await expect(attendee.get_by_test_id("raise-hand")).to_have_attribute("aria-pressed", "true")
    await expect(row.get_by_test_id("hand-position")).to_have_text("1st in the queue")
    await expect(presenter.get_by_test_id("participant-row")).to_have_count(2)
    await expect(attendee.get_by_test_id("video-tile")).to_have_count(1)
    await wait_for_media(attendee)
    seen = await presenter.evaluate("() => window.__seen")
    assert seen == [False, True], seen

    # The presenter drops: it resumes and publishes its camera and microphone again.
    await presenter.evaluate("() => window.__webinar.dropConnection()")
    await expect(attendee.get_by_test_id("video-tile")).to_have_count(0)
    await expect(presenter.get_by_test_id("reconnecting")).to_be_hidden(timeout=10_000)
    await expect(presenter.get_by_test_id("stop-live")).to_be_visible()
    await expect(attendee.get_by_test_id("video-tile")).to_have_count(1)
    before = await inbound_stats(attendee)
    await wait_until(
        lambda: inbound_stats(attendee),
        lambda s: (
            s["video"]["framesDecoded"] > before["video"]["framesDecoded"] + 10
            and s["audio"]["packetsReceived"] > before["audio"]["packetsReceived"] + 25
        ),
        within=10,
        what="the republished video and audio",
    )
    producers = await presenter.evaluate(
        "() => [...window.__webinar.connection.producers.values()].map((p) => p.source).sort()"
    )
    assert producers == ["camera", "microphone"]


async def test_removed_does_not_reconnect(server: RunningServer, open_page: OpenPage) -> None:
    event = await server.create_event("Strict")
    presenter = await open_page("presenter")
    attendee = await open_page("attendee")
    await join_presenter(presenter, server, event, "Alice", preview=False)
    await join_attendee(attendee, server, event, "Gone")
    me = await participant_id(attendee)
    row = presenter.locator(f"[data-testid=participant-row][data-participant-id={me}]")
    await row.get_by_test_id("more-actions").click()
    await row.get_by_test_id("remove").click()
    await presenter.get_by_test_id("remove-confirm").click()
    await expect(attendee.get_by_test_id("ended")).to_contain_text("You were removed")
    await attendee.wait_for_timeout(1500)  # longer than the first reconnect delay
    state = await attendee.evaluate("() => window.__webinar.connection.state")
    assert state == "closed"
    await expect(attendee.get_by_test_id("reconnecting")).to_be_hidden()
