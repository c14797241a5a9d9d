"""The presenters' view of their audience in real Chromium (room/audience.js): the picture-in-
picture copy of what attendees see, made from the streams the page already receives, and the
strip with the attendee count, raised hands and new questions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.slides import make_pdf, upload_and_render
from tests.browser.support import (
    DESKTOP,
    PHONE,
    OpenPage,
    go_live,
    join_attendee,
    join_presenter,
    wait_for_playing_video,
    wait_until,
)
from tests.browser.test_shared_video import make_webm, share, upload_video
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser

# One frame of the first <video> in `root` drawn small: its mean brightness, a fingerprint of
# its pixels and the video's clock (a moving fake camera changes both).
FRAME_JS = """
(root) => {
  const video = root.querySelector("video");
  if (!video || video.readyState < 2 || !video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 36;
  const g = canvas.getContext("2d", {willReadFrequently: true});
  g.drawImage(video, 0, 0, 64, 36);
  const data = g.getImageData(0, 0, 64, 36).data;
  let sum = 0;
  let print = 0;
  for (let i = 0; i < data.length; i += 4) {
    const y = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    sum += y;
    print = (print * 31 + Math.round(y)) % 1000000007;
  }
  const quality = video.getVideoPlaybackQuality();
  return {luma: sum / (data.length / 4), print, time: video.currentTime,
          frames: quality.totalVideoFrames, width: video.videoWidth};
}
"""

# When an attribute of an element turns to a value: Date.now() is kept in window.__flips[name].
WATCH_JS = """
([selector, attribute, value, name]) => {
  window.__flips = window.__flips || {};
  const node = document.querySelector(selector);
  const seen = () => {
    if (node.getAttribute(attribute) === value && !(name in window.__flips)) {
      window.__flips[name] = Date.now();
    }
  };
  new MutationObserver(seen).observe(node, {attributes: true, attributeFilter: [attribute]});
  seen();
}
"""


async def frame(page: Page, selector: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await page.locator(selector).first.evaluate(FRAME_JS)
    return result


async def watch(page: Page, selector: str, attribute: str, value: str, name: str) -> None:
    await page.evaluate(WATCH_JS, [selector, attribute, value, name])


async def flipped_at(page: Page, name: str) -> float:
    at = await wait_until(
        lambda: page.evaluate(f"() => (window.__flips || {{}})['{name}'] || 0"),
        bool,
        within=10,
        what=f"{name} to happen",
    )
    return float(at)


async def test_the_host_sees_what_attendees_see_and_who_waits_for_an_answer(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Town hall")
    host = await open_page("host", DESKTOP)
    petr = await open_page("presenter", PHONE)
    ann = await open_page("attendee", DESKTOP)
    await join_presenter(host, server, event, "Hana Host", key=event.host_key)
    await join_presenter(petr, server, event, "Petr Presenter")
    await join_attendee(ann, server, event, "Ann Attendee")

    # On a laptop the audience view is open from the start; nobody is live: attendees wait,
    # and the copy says what their page says.
    view = host.get_by_test_id("audience-view")
    await expect(view).to_be_visible()
    await expect(view.get_by_text("What attendees see")).to_be_visible()
    await expect(view).to_have_attribute("data-screen", "waiting")
    await expect(ann.locator("#stage")).to_have_attribute("data-empty", "true")
    waiting = await ann.get_by_test_id("room-status").text_content()
    assert waiting and "Waiting for the presenter" in waiting
    await expect(host.get_by_test_id("audience-view-status")).to_have_text(waiting)
    # the host's own preview tile (not live) is no part of it
    await expect(view.get_by_test_id("audience-tile")).to_have_count(0)

    # The presenter goes live: the attendee gets the video, and so does the host's copy, made
    # from the very track the host already receives, with frames that keep coming.
    await go_live(petr)
    await expect(ann.get_by_test_id("video-tile")).to_have_count(1)
    tile = view.get_by_test_id("audience-tile")
    await expect(tile).to_have_count(1)
    await expect(tile).to_contain_text("Petr Presenter")
    await expect(view).to_have_attribute("data-screen", "stage")
    await expect(host.get_by_test_id("audience-view-status")).to_be_hidden()
    await wait_for_playing_video(host, "[data-testid=audience-tile] video")
    same_track = await host.evaluate(
        """() => {
          const video = document.querySelector("[data-testid=audience-tile] video");
          const shown = video.srcObject.getVideoTracks()[0];
          const received = [...window.__webinar.connection.remoteStreams.values()]
            .map((r) => r.track).filter((t) => t.kind === "video");
          return received.length === 1 && received[0] === shown && video.muted;
        }"""
    )
    assert same_track, "the copy plays the received track itself (muted), no other stream"
    first = await wait_until(
        lambda: frame(host, "[data-testid=audience-tile]"),
        lambda f: f is not None and f["luma"] > 20,
        within=10,
        what="a bright frame in the audience view",
    )
    assert first is not None
    later = await wait_until(
        lambda: frame(host, "[data-testid=audience-tile]"),
        lambda f: (
            f is not None
            and f["time"] > first["time"] + 0.5
            and f["frames"] > first["frames"] + 5
            and f["print"] != first["print"]
        ),
        within=10,
        what="the audience view's video to move on",
    )
    assert later is not None and later["width"] > 0
    # the copy is a small picture on the host's stage, clear of the tiles' names
    box = await view.bounding_box()
    assert box is not None and box["width"] < 400
    labels = host.locator("#grid .tile-label")
    for label in await labels.all():
        lb = await label.bounding_box()
        assert lb is not None
        apart = (
            lb["x"] + lb["width"] <= box["x"]
            or box["x"] + box["width"] <= lb["x"]
            or lb["y"] + lb["height"] <= box["y"]
            or box["y"] + box["height"] <= lb["y"]
        )
        assert apart, f"the audience view {box} covers a tile's name {lb}"

    # The presenter's own phone: the copy starts closed; one tap opens it, showing their own
    # published camera as attendees get it.
    petr_view = petr.get_by_test_id("audience-view")
    toggle = petr.get_by_test_id("audience-view-toggle")
    await expect(petr.get_by_test_id("presenter-strip")).to_be_in_viewport()
    await expect(petr_view).to_be_hidden()
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(toggle).to_have_accessible_name("What attendees see")
    await toggle.click()
    await expect(petr_view).to_be_visible()
    await expect(petr_view).to_be_in_viewport(ratio=1)
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    own = petr_view.get_by_test_id("audience-tile")
    await expect(own).to_have_count(1)
    await expect(own).to_contain_text("Petr Presenter")
    await expect(own).not_to_contain_text("(you")
    await wait_for_playing_video(petr, "[data-testid=audience-tile] video")
    await petr.get_by_test_id("audience-view-hide").click()
    await expect(petr_view).to_be_hidden()
    await expect(toggle).to_be_focused()

    # Presenters only: the copy shows the backstage notice exactly when the attendee's page
    # does (both follow the same room-updated), and the video again when the mode goes back.
    await watch(ann, "#stage", "data-backstage", "true", "backstage")
    await watch(host, "#audience-view", "data-screen", "backstage", "backstage")
    await host.get_by_test_id("mode-select").select_option("presenters-only")
    attendee_at = await flipped_at(ann, "backstage")
    host_at = await flipped_at(host, "backstage")
    assert abs(attendee_at - host_at) < 500, (attendee_at, host_at)
    backstage = await ann.get_by_test_id("room-status").text_content()
    assert backstage and "backstage" in backstage
    await expect(host.get_by_test_id("audience-view-status")).to_have_text(backstage)
    await expect(view.get_by_test_id("audience-view-stage")).to_have_attribute(
        "data-backstage", "true"
    )
    await expect(tile).to_be_hidden()
    await watch(ann, "#stage", "data-backstage", "false", "on-air")
    await watch(host, "#audience-view", "data-screen", "stage", "on-air")
    await host.get_by_test_id("mode-select").select_option("listen-only")
    attendee_at = await flipped_at(ann, "on-air")
    host_at = await flipped_at(host, "on-air")
    assert abs(attendee_at - host_at) < 500, (attendee_at, host_at)
    await expect(tile).to_be_visible()
    await expect(host.get_by_test_id("audience-view-status")).to_be_hidden()
    await wait_for_playing_video(host, "[data-testid=audience-tile] video")

    # An attendee's reaction floats over the copy too (reactions.js's float, copied).
    await ann.get_by_test_id("reactions-toggle").click()
    await ann.get_by_test_id("reaction-picker").locator("[data-reaction=heart]").click()
    await expect(
        view.locator(".reaction-layer [data-copy-of=reaction-float][data-reaction=heart]").first
    ).to_be_attached()
    await ann.keyboard.press("Escape")

    # The strip: the attendee raises a hand and asks a question while the host's side panel
    # shows the chat. The strip counts them without any tab opened.
    await host.get_by_test_id("tab-chat").click()
    attendees = host.get_by_test_id("strip-attendees")
    hands = host.get_by_test_id("strip-hands")
    questions = host.get_by_test_id("strip-questions")
    await expect(attendees).to_have_attribute("data-count", "1")
    await expect(attendees).to_contain_text("1 attendee")
    await expect(hands).to_have_attribute("data-count", "0")
    await expect(questions).to_have_attribute("data-count", "0")
    await ann.get_by_test_id("raise-hand").click()
    await ann.get_by_test_id("tab-qa").click()
    await ann.get_by_test_id("qa-input").fill("Will the slides be shared?")
    await ann.get_by_test_id("qa-ask").click()
    await expect(hands).to_have_attribute("data-count", "1")
    await expect(hands).to_have_accessible_name("1 raised hand")
    await expect(questions).to_have_attribute("data-count", "1")
    await expect(questions).to_have_accessible_name("1 new question")
    await expect(host.locator("#panel-qa")).to_be_hidden()
    await expect(host.locator("#panel-people")).to_be_hidden()
    await expect(attendees).to_have_attribute("data-count", "1")
    # the presenter's phone strip says the same, in numbers
    await expect(petr.get_by_test_id("strip-hands").locator(".strip-short")).to_have_text("1")
    await expect(petr.get_by_test_id("strip-questions")).to_have_attribute("data-count", "1")

    # One click on the questions opens Q&A: they are seen, the count goes back to nought.
    await questions.click()
    await expect(host.locator("#panel-qa")).to_be_visible()
    await expect(host.get_by_test_id("qa-item")).to_have_count(1)
    await expect(questions).to_have_attribute("data-count", "0")
    await expect(questions).to_have_accessible_name("0 new questions")
    # ...and on the hands: the people tab with the queue
    await hands.click()
    await expect(host.get_by_test_id("tab-people")).to_have_attribute("aria-selected", "true")
    row = host.get_by_test_id("participant-row").filter(has_text="Ann Attendee")
    await expect(row.get_by_test_id("hand-position")).to_be_visible()

    # A second attendee comes: the count follows. Lowering the hand empties the hands.
    bob = await open_page("second attendee", DESKTOP)
    await join_attendee(bob, server, event, "Bob Attendee")
    await expect(attendees).to_have_attribute("data-count", "2")
    await expect(attendees).to_contain_text("2 attendees")
    await ann.get_by_test_id("raise-hand").click()
    await expect(hands).to_have_attribute("data-count", "0")

    # A published question and a call-to-action appear in the copy as on the attendee's stage.
    await host.evaluate(
        """async () => {
          const conn = window.__webinar.connection;
          const q = [...window.__webinar.room.interaction.qa.questions.values()][0];
          await conn.request('question-publish', {question_id: q.question_id});
          await conn.request('cta-show', {message: 'Get the slides', button: 'Download',
            url: 'https://example.org/slides'});
        }"""
    )
    await expect(ann.get_by_test_id("published-question")).to_be_visible()
    copy = view.locator("[data-copy-of=published-question]")
    await expect(copy).to_be_visible()
    await expect(copy).to_contain_text("Will the slides be shared?")
    await expect(view.get_by_test_id("audience-view-cta")).to_contain_text("Get the slides")
    await expect(ann.get_by_test_id("cta-popup")).to_be_visible()
    # the copy is seen, not used: nothing in it takes focus or a click
    screen = view.get_by_test_id("audience-view-screen")
    assert await screen.locator("button, a, input").count() == 0
    assert await screen.locator(".audience-canvas").evaluate("(n) => n.inert")


async def test_the_audience_view_shows_the_waiting_room_and_the_content_on_stage(
    server: RunningServer, open_page: OpenPage
) -> None:
    later = await server.store.create_event(
        "Quarterly all-hands", datetime.now(UTC) + timedelta(minutes=4)
    )
    host = await open_page("host", DESKTOP)
    ann = await open_page("attendee", DESKTOP)
    await join_presenter(host, server, later, "Hana Host", preview=False, key=later.host_key)
    await join_attendee(ann, server, later, "Ann Attendee")

    # Before the start attendees wait in the lobby: the copy shows its card, as they see it.
    await expect(ann.get_by_test_id("lobby")).to_be_visible()
    view = host.get_by_test_id("audience-view")
    await expect(view).to_have_attribute("data-screen", "lobby")
    lobby = view.get_by_test_id("audience-view-lobby")
    await expect(lobby).to_be_visible()
    await expect(lobby).to_contain_text("Quarterly all-hands")
    await expect(lobby.locator("[data-part=lobby-countdown]")).to_have_text(
        re.compile(r"^[34]:\d\d$")
    )
    await expect(host.get_by_test_id("strip-attendees")).to_have_attribute("data-count", "1")

    # The event starts; the host puts the whiteboard on stage and draws: the copy shows the
    # board with the drawing, as the attendee's stage does.
    await host.get_by_test_id("start-event").click()
    await expect(ann.get_by_test_id("lobby")).to_be_hidden()
    await host.evaluate(
        "() => window.__webinar.room.content.request('stage-layout', {layout: 'whiteboard'})"
    )
    await expect(view).to_have_attribute("data-screen", "whiteboard")
    await expect(ann.get_by_test_id("whiteboard")).to_be_visible()
    board = host.get_by_test_id("whiteboard")
    await expect(board).to_be_visible()
    box = await board.bounding_box()
    assert box is not None
    await host.get_by_test_id("whiteboard-tool-rect").click()
    await host.get_by_test_id("whiteboard-color-red").click()
    await host.get_by_test_id("whiteboard-width-thick").click()
    await host.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.3 * box["height"])
    await host.mouse.down()
    await host.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.7 * box["height"], steps=10)
    await host.mouse.up()
    await expect(ann.get_by_test_id("whiteboard")).to_have_attribute("data-strokes", "1")
    copy = view.locator(".audience-content canvas")
    await expect(copy).to_have_count(1)
    red = await wait_until(
        lambda: copy.evaluate(
            """(c) => {
              const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
              let n = 0;
              for (let i = 0; i < d.length; i += 4)
                if (d[i] > 150 && d[i] - d[i + 1] > 60 && d[i] - d[i + 2] > 60) n += 1;
              return n;
            }"""
        ),
        lambda n: n > 50,
        within=5,
        what="the red rectangle in the audience view's copy of the board",
    )
    assert red > 50
    # the presenters' tools are not on the attendees' stage, nor in the copy
    await expect(view.locator(".wb-bar")).to_have_count(0)


async def test_the_audience_view_plays_a_copy_of_the_shared_video(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Product video")
    made = await upload_video(server, event, make_webm())
    host = await open_page("host", DESKTOP)
    ann = await open_page("attendee", DESKTOP)
    await join_presenter(host, server, event, "Hana Host", preview=False, key=event.host_key)
    await join_attendee(ann, server, event, "Ann Attendee")
    await share(host, {"content_id": made["content_id"]})
    await expect(ann.get_by_test_id("shared-video")).to_be_visible()
    view = host.get_by_test_id("audience-view")
    await expect(view).to_have_attribute("data-screen", "video")
    # the shared video's picture, drawn into the copy a few times a second, and moving on
    copy = view.locator(".audience-content canvas")
    await expect(copy).to_have_count(1)
    look = """(c) => {
      if (!c.width) return null;
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let sum = 0;
      for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
      return sum / (d.length / 4) / 3;
    }"""
    first = await wait_until(
        lambda: copy.evaluate(look), lambda v: v is not None and v > 10, within=10, what="a frame"
    )
    await wait_until(
        lambda: copy.evaluate(look),
        lambda v: v is not None and abs(v - first) > 3,
        within=10,
        what="the copied video to change (the clip brightens each second)",
    )
    # the presenters' controls (play, pause, seek, stop) are not in the attendees' copy
    await expect(view.locator("[data-copy-of=shared-video-pause]")).to_have_count(0)
    await expect(view.locator("[data-copy-of=shared-video-mute]")).to_have_count(1)


async def test_the_audience_view_follows_the_slides(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Quarterly numbers")
    content_id = await upload_and_render(
        server, event.event_id, event.presenter_key, make_pdf(3), name="numbers.pdf"
    )
    host = await open_page("host", DESKTOP)
    ann = await open_page("attendee", DESKTOP)
    await join_presenter(host, server, event, "Hana Host", preview=False, key=event.host_key)
    await join_attendee(ann, server, event, "Ann Attendee")
    await host.evaluate(
        "(id) => window.__webinar.room.content.request('presentation-show', {content_id: id})",
        content_id,
    )
    await expect(ann.get_by_test_id("slide-image")).to_have_attribute("data-page", "1")
    view = host.get_by_test_id("audience-view")
    await expect(view).to_have_attribute("data-screen", "presentation")
    slide = view.locator("[data-copy-of=slide-image]")
    await expect(slide).to_have_attribute("data-page", "1")
    # the same page image the attendee's page shows, loaded, filling the copy's stage
    shown = await slide.evaluate(
        "(img) => ({src: img.getAttribute('src'), w: img.naturalWidth, box: img.clientWidth})"
    )
    theirs = await ann.get_by_test_id("slide-image").get_attribute("src")
    assert theirs and shown["src"].split("?")[0] == theirs.split("?")[0]  # (each has its pass)
    assert shown["w"] > 0 and shown["box"] > 300, shown
    # the presenters' page buttons and tools are not in the copy; the page number is
    await expect(
        view.locator("[data-copy-of=slide-next], [data-copy-of=presentation-stop]")
    ).to_have_count(0)
    await host.get_by_test_id("slide-next").click()
    await expect(ann.get_by_test_id("slide-image")).to_have_attribute("data-page", "2")
    await expect(slide).to_have_attribute("data-page", "2")
    await expect(view.locator("[data-copy-of=slide-page-number]")).to_contain_text("2")
