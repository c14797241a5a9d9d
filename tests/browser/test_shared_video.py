"""The shared video in real Chromium: an uploaded WebM (made here with PyAV) shared by a
presenter, played, paused and sought; attendees' players stay within 1 s of the presenter's,
an attendee's seek is undone, a late joiner starts at the current position (muted, with the
Unmute button, in a browser that refuses sound without a click), and a password event's video
is refused without the content pass. YouTube and Vimeo cannot load here (no internet): their
players are stood in for by pages that speak the same postMessage protocols, served in place
of the real embed URLs by Playwright's routing."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import av
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect
from playwright.async_api import Error as PlaywrightError

from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    OpenPage,
    PageErrors,
    join_attendee,
    join_presenter,
    wait_until,
)
from tests.helpers import RunningServer
from tests.join_tokens import backend, organiser
from webinar.accounts import hash_password
from webinar.storage.store import Event
from webinar.ticketing import records
from webinar.ticketing.records import EventAccess

pytestmark = pytest.mark.browser

CLIP_SECONDS = 30.0

# The shared <video> of a page, as the test reads it (null before there is one).
SAMPLE_JS = """
() => {
  const v = document.querySelector('[data-testid=shared-video]');
  if (!v || v.tagName !== 'VIDEO') return null;
  return {t: v.currentTime, wall: Date.now() / 1000, paused: v.paused, muted: v.muted,
          ready: v.readyState, rate: v.playbackRate, src: v.currentSrc};
}
"""


def make_webm(seconds: float = CLIP_SECONDS, width: int = 320, height: int = 240) -> bytes:
    """A VP8 + Opus WebM: a white bar moving over a grey that brightens each second, and
    silence (PyAV, libvpx and libopus; about 0.5 s to make)."""
    fps = 30

    def plane(row: bytes, rows: int, stride: int) -> bytes:
        return (row + bytes(stride - len(row))) * rows

    out = io.BytesIO()
    with av.open(out, mode="w", format="webm") as container:
        video = container.add_stream("libvpx", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.bit_rate = 400_000
        video.options = {"deadline": "realtime", "cpu-used": "8", "g": str(fps)}
        audio = container.add_stream("libopus", rate=48000)
        audio.layout = "mono"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame(width, height, "yuv420p")
            x0 = (i * 4) % (width - 40)
            shade = 40 + (i // fps) * 6 % 160
            row = bytes([shade]) * x0 + b"\xeb" * 40 + bytes([shade]) * (width - x0 - 40)
            y, u, v = frame.planes
            y.update(plane(row, height, y.line_size))
            u.update(plane(b"\x80" * (width // 2), height // 2, u.line_size))
            v.update(plane(b"\x80" * (width // 2), height // 2, v.line_size))
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        samples = 960
        for n in range(int(seconds * 48000 / samples)):
            silence = av.AudioFrame(format="s16", layout="mono", samples=samples)
            silence.planes[0].update(bytes(silence.planes[0].buffer_size))
            silence.sample_rate = 48000
            silence.pts = n * samples
            for packet in audio.encode(silence):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return out.getvalue()


async def upload_video(server: RunningServer, event: Event, data: bytes) -> dict[str, Any]:
    """Upload as a presenter does during the event (the API with the presenter key)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.base_url}/api/v1/events/{event.display_id}/content?name=clip.webm",
            data=data,
            headers={"Content-Type": "video/webm", "X-Presenter-Key": event.presenter_key},
        ) as resp,
    ):
        made: dict[str, Any] = await resp.json()
        assert resp.status == 201, made
        return made


async def share(page: Page, fields: dict[str, Any]) -> None:
    """The presenter shares a video (what the content menu's `video-share-start` sends)."""
    await page.evaluate("f => window.__webinar.connection.request('video-share', f)", fields)


async def sample(page: Page) -> dict[str, Any]:
    value: dict[str, Any] | None = await page.evaluate(SAMPLE_JS)
    assert value is not None, "no shared <video> on the page"
    return value


async def playing_everywhere(pages: list[Page]) -> None:
    for page in pages:
        await wait_until(
            lambda page=page: page.evaluate(SAMPLE_JS),
            lambda s: s is not None and s["ready"] >= 2 and not s["paused"],
            within=10,
            what="the shared video to play",
        )


async def drifts(presenter: Page, others: list[Page]) -> list[float]:
    """How far each other page's video is from the presenter's (s), read at the same moment
    (each reading is moved to a common wall-clock time: all pages run on this machine)."""
    readings = await asyncio.gather(*(sample(p) for p in [presenter, *others]))
    first = readings[0]
    return [
        (r["t"] + (0 if r["paused"] else first["wall"] - r["wall"])) - first["t"]
        for r in readings[1:]
    ]


def no_gesture(page: Page) -> Callable[[str], Awaitable[Any]]:
    """Evaluate on ``page`` without handing it a user activation (Playwright's own evaluate,
    and even its expect(), count as a click for the browser's autoplay rules)."""
    session: list[Any] = []

    async def run(expression: str) -> Any:
        if not session:
            session.append(await page.context.new_cdp_session(page))
        reply = await session[0].send(
            "Runtime.evaluate",
            {"expression": expression, "userGesture": False, "returnByValue": True},
        )
        return reply["result"].get("value")

    return run


async def test_a_shared_webm_plays_pauses_and_seeks_in_sync(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    owner = await organiser(server)
    site = await backend(server, owner)
    event = await server.store.create_event("Product video", None, owner_id=owner)
    made = await upload_video(server, event, make_webm())
    presenter = await open_page("presenter")
    ann = await open_page("ann")
    bob = await open_page("bob")
    await join_presenter(presenter, server, event, "Piet Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")
    await join_attendee(bob, server, event, "Bob Attendee")
    attendees = [ann, bob]
    everyone = [presenter, *attendees]

    # Shared: the stage shows it to everyone and it starts (the sharer's player starts it).
    await share(presenter, {"content_id": made["content_id"]})
    for page in everyone:
        await expect(page.get_by_test_id("shared-video")).to_be_visible()
        await expect(page.get_by_test_id("shared-video")).to_have_attribute("data-kind", "file")
    await playing_everywhere(everyone)
    # Presenters have the controls; attendees do not (no native controls either).
    await expect(presenter.get_by_test_id("shared-video-pause")).to_be_visible()
    await expect(presenter.get_by_test_id("shared-video-seek")).to_be_visible()
    for page in attendees:
        for testid in ("shared-video-play", "shared-video-pause", "shared-video-seek"):
            await expect(page.get_by_test_id(testid)).to_be_hidden()
        await expect(page.get_by_test_id("shared-video-mute")).to_be_visible()
        await expect(page.get_by_test_id("shared-video-fullscreen")).to_be_visible()
        assert await page.get_by_test_id("shared-video").evaluate("v => v.controls") is False

    # Playing: every attendee within 1 s of the presenter, sampled over about 6 s.
    worst = 0.0
    for _ in range(7):
        for drift in await drifts(presenter, attendees):
            worst = max(worst, abs(drift))
        await asyncio.sleep(1.0)
    assert worst < 1.0, f"an attendee drifted {worst:.3f} s from the presenter"
    print(f"playing: worst drift {worst * 1000:.0f} ms over 7 samples")

    # Pause: all paused, at the same position (within 1 s).
    await presenter.get_by_test_id("shared-video-pause").click()
    clicked = time.monotonic()
    for page in everyone:
        await wait_until(
            lambda page=page: sample(page), lambda s: s["paused"], within=3, what="paused"
        )
    paused_after = time.monotonic() - clicked
    await asyncio.sleep(0.6)  # a tick to settle on the paused position
    readings = [await sample(p) for p in everyone]
    spread = max(r["t"] for r in readings) - min(r["t"] for r in readings)
    assert all(r["paused"] for r in readings), readings
    assert spread < 1.0, readings
    print(f"pause: all paused {paused_after * 1000:.0f} ms after the click, spread {spread:.3f} s")
    await expect(presenter.get_by_test_id("shared-video-play")).to_be_visible()

    # Seek to 12 s (paused): all there; then play on from there, in step.
    await presenter.get_by_test_id("shared-video-seek").fill("12")
    for page in everyone:
        await wait_until(
            lambda page=page: sample(page),
            lambda s: s["paused"] and abs(s["t"] - 12) < 1.0,
            within=3,
            what="the video at 12 s",
        )
    await presenter.get_by_test_id("shared-video-play").click()
    await playing_everywhere(everyone)
    await asyncio.sleep(1.0)
    for page in everyone:
        reading = await sample(page)
        assert 12.0 <= reading["t"] < 15.0, reading
    assert all(abs(d) < 1.0 for d in await drifts(presenter, attendees))

    # An attendee cannot skip ahead (nor pause for everyone): their player snaps back.
    await ann.evaluate(
        "() => { const v = document.querySelector('[data-testid=shared-video]');"
        " v.currentTime = v.currentTime + 8; }"
    )
    await wait_until(
        lambda: drifts(presenter, [ann]),
        lambda d: abs(d[0]) < 1.0,
        within=2,
        what="the attendee's seek to be undone",
    )
    await ann.evaluate("() => document.querySelector('[data-testid=shared-video]').pause()")
    await wait_until(lambda: sample(ann), lambda s: not s["paused"], within=2, what="playing on")
    assert all(abs(d) < 1.0 for d in await drifts(presenter, attendees))
    assert not (await sample(presenter))["paused"]

    # A late joiner, in a browser that refuses sound before a click (no autoplay flag),
    # entering through a signed link (no click on the page): at the current position, muted,
    # with the Unmute button; a click on it turns the sound on and it plays on in step.
    args = [a for a in CHROMIUM_ARGS if not a.startswith("--autoplay-policy")]
    async with async_playwright() as p:
        strict = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            carol = await (await strict.new_context(viewport=DESKTOP)).new_page()
            page_errors.watch(carol, "carol")
            await carol.goto(
                f"{server.base_url}/e/{event.display_id}?jwt=" + site.sign(event, name="Carol")
            )
            quiet = no_gesture(carol)
            deadline = time.monotonic() + 15
            state: dict[str, Any] | None = None
            while time.monotonic() < deadline:
                state = await quiet(
                    "(() => { const v = document.querySelector('[data-testid=shared-video]');"
                    " const b = document.querySelector('[data-testid=shared-video-unmute]');"
                    " return v && v.readyState >= 2 ? {paused: v.paused, muted: v.muted,"
                    " unmute: !b.hidden,"
                    " active: navigator.userActivation.hasBeenActive} : null })()"
                )
                if state and not state["paused"] and state["unmute"]:
                    break
                await asyncio.sleep(0.2)
            assert state == {"paused": False, "muted": True, "unmute": True, "active": False}, state
            late = await drifts(presenter, [carol])
            assert abs(late[0]) < 1.0, f"the late joiner is {late[0]:.3f} s off"
            await carol.screenshot(path=str(SCREENSHOTS / "shared-video-unmute-desktop.png"))
            await carol.get_by_test_id("shared-video-unmute").click()
            await expect(carol.get_by_test_id("shared-video-unmute")).to_be_hidden()
            reading = await sample(carol)
            assert not reading["muted"] and not reading["paused"], reading
            assert abs((await drifts(presenter, [carol]))[0]) < 1.0
        finally:
            await strict.close()

    await presenter.screenshot(path=str(SCREENSHOTS / "shared-video-presenter-desktop.png"))
    await ann.screenshot(path=str(SCREENSHOTS / "shared-video-attendee-desktop.png"))
    await ann.set_viewport_size(PHONE)  # on a phone the video comes first, its bar below
    await ann.screenshot(path=str(SCREENSHOTS / "shared-video-attendee-phone.png"))

    # Stop: the video leaves every stage.
    await presenter.get_by_test_id("shared-video-stop").click()
    for page in everyone:
        await expect(page.get_by_test_id("shared-video")).to_have_count(0)
        await expect(page.locator("#shared-video-view")).to_be_hidden()


async def test_a_password_events_video_needs_the_content_pass(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    event = await server.create_event("Members only", access_type="password")
    await server.store.run(
        lambda core: records.put_access(
            core.connection,
            EventAccess(event.event_id, attendee_password_hash=hash_password("let-me-in", n=2**10)),
        )
    )
    made = await upload_video(server, event, make_webm(8.0))
    presenter = await open_page("presenter")
    ann = await open_page("ann")
    await join_presenter(presenter, server, event, "Piet Presenter", preview=False)
    await ann.goto(f"{server.base_url}/e/{event.display_id}")
    await ann.get_by_test_id("prejoin-name-input").fill("Ann Attendee")
    await ann.get_by_test_id("access-password-input").fill("let-me-in")
    await ann.get_by_test_id("enter-room-button").click()
    await expect(ann.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")

    await share(presenter, {"content_id": made["content_id"]})
    await playing_everywhere([presenter, ann])
    src = (await sample(ann))["src"]
    assert "?pass=" in src, src
    bare = src.split("?", 1)[0]
    page_errors.allow("403")  # the bare fetch below is refused, and the console says so
    statuses = await ann.evaluate(
        """async ([bare, src]) => [
             (await fetch(bare)).status,
             (await fetch(src, {headers: {Range: 'bytes=0-99'}})).status]""",
        [bare, src],
    )
    assert statuses == [403, 206], statuses
    async with aiohttp.ClientSession() as http, http.get(bare) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"] == "not-admitted"


async def test_the_drift_rules(server: RunningServer, open_page: OpenPage) -> None:
    """The position and correction rules of room/video.js, run in Chromium (the module's
    own exports, imported on a page of the server)."""
    page = await open_page("rules")
    await page.goto(server.base_url + "/")
    result = await page.evaluate(
        """async () => {
          const m = await import('/static/js/room/video.js');
          const play = {playing: true, position: 10, at: 100, rate: 1};
          const fix = (local, target, current = 1, canNudge = true) =>
            m.correction(local, target, {rate: 1, current, canNudge});
          return {
            playing: m.sharedPosition(play, 103),
            paused: m.sharedPosition({...play, playing: false}, 103),
            clamped: m.sharedPosition(play, 200, 12),
            early: m.sharedPosition(play, 99),
            double: m.sharedPosition({...play, rate: 2}, 103),
            far: fix(10, 12), behind: fix(9.5, 10), ahead: fix(10.5, 10),
            close: fix(10.05, 10), finishing: fix(10.15, 10, 0.95), settled: fix(10.15, 10, 1),
            embedNear: fix(10.5, 10, 1, false), embedFar: fix(10.8, 10, 1, false),
            clocks: [m.clock(0), m.clock(65.9), m.clock(3723), m.clock(null)],
            youtube: m.embedUrl('youtube',
              'https://www.youtube-nocookie.com/embed/abc?enablejsapi=1&controls=0',
              'https://webinar.example'),
            vimeo: m.embedUrl('vimeo', 'https://player.vimeo.com/video/7?api=1',
              'https://webinar.example'),
            parsed: [m.parseEmbedMessage('{"event":"onReady"}'), m.parseEmbedMessage('nope'),
                     m.parseEmbedMessage({event: 'ready'}), m.parseEmbedMessage(7)],
          };
        }"""
    )
    assert result["playing"] == 13 and result["paused"] == 10 and result["double"] == 16
    assert result["clamped"] == 12 and result["early"] == 10
    assert result["far"] == {"seek": 12, "rate": 1}
    assert result["behind"] == {"seek": None, "rate": 1.05}
    assert result["ahead"] == {"seek": None, "rate": 0.95}
    assert result["close"] == {"seek": None, "rate": 1}
    assert result["finishing"] == {"seek": None, "rate": 0.95}
    assert result["settled"] == {"seek": None, "rate": 1}
    assert result["embedNear"] == {"seek": None, "rate": 1}
    assert result["embedFar"] == {"seek": 10, "rate": 1}
    assert result["clocks"] == ["0:00", "1:05", "1:02:03", "0:00"]
    youtube = result["youtube"]
    assert youtube.startswith("https://www.youtube-nocookie.com/embed/abc?"), youtube
    assert "enablejsapi=1" in youtube and "origin=https%3A%2F%2Fwebinar.example" in youtube
    assert "autopause=0" in result["vimeo"] and "api=1" in result["vimeo"]
    assert result["parsed"] == [{"event": "onReady"}, None, {"event": "ready"}, None]


# ------------------------------------------------------------------ YouTube and Vimeo stand-ins

# A page that answers YouTube's widget protocol as the real player does: it waits for
# {"event":"listening"}, then posts initialDelivery, onReady and an infoDelivery (currentTime,
# playerState, duration) every 250 ms, to the `origin` of its URL only; it takes the commands
# playVideo, pauseVideo, seekTo, mute, unMute, setVolume. REFUSE: like a browser that will
# not play with sound before a click, playVideo does nothing unless muted.
FAKE_YOUTUBE = """<!doctype html><meta charset=utf-8><title>player</title>
<body style="margin:0;background:#300;color:#fff;font:20px sans-serif">YouTube stand-in
<script>
const REFUSE = %(refuse)s, DURATION = 120;
const origin = new URL(location.href).searchParams.get("origin");
window.player = {t: 0, playing: false, muted: false, volume: 100, commands: [], since: 0};
const p = window.player;
let listening = false;
function now() {
  if (p.playing) p.t = Math.min(DURATION, p.t + (performance.now() - p.since) / 1000);
  p.since = performance.now();
  return p.t;
}
function post(event, info) {
  parent.postMessage(JSON.stringify({event, info, id: 1, channel: "widget"}), origin);
}
function deliver() {
  post("infoDelivery", {currentTime: now(), playerState: p.playing ? 1 : 2, duration: DURATION,
                        muted: p.muted, volume: p.volume});
}
window.jump = (t) => { now(); p.t = t; deliver(); };
window.addEventListener("message", (e) => {
  if (e.origin !== origin) return;
  const m = JSON.parse(e.data);
  if (m.event === "listening") {
    if (listening) return;
    listening = true;
    post("initialDelivery", {currentTime: 0, playerState: -1, duration: DURATION});
    post("onReady", null);
    setInterval(deliver, 250);
    return;
  }
  if (m.event !== "command") return;
  p.commands.push(m.func);
  now();
  if (m.func === "playVideo" && !(REFUSE && !p.muted)) p.playing = true;
  if (m.func === "pauseVideo") p.playing = false;
  if (m.func === "seekTo") p.t = m.args[0];
  if (m.func === "mute") p.muted = true;
  if (m.func === "unMute") p.muted = false;
  if (m.func === "setVolume") p.volume = m.args[0];
  deliver();
});
</script>"""

# Vimeo's player protocol: {"event":"ready"} to the parent once loaded; methods play, pause,
# setCurrentTime, getCurrentTime, getDuration, getPaused, setVolume, addEventListener; the
# events asked for (playProgress, play, pause, seeked) with {seconds, percent, duration}.
FAKE_VIMEO = """<!doctype html><meta charset=utf-8><title>player</title>
<body style="margin:0;background:#003;color:#fff;font:20px sans-serif">Vimeo stand-in
<script>
const DURATION = 90;
window.player = {t: 0, playing: false, volume: 1, methods: [], listeners: new Set(), since: 0};
const p = window.player;
function now() {
  if (p.playing) p.t = Math.min(DURATION, p.t + (performance.now() - p.since) / 1000);
  p.since = performance.now();
  return p.t;
}
function send(message) { parent.postMessage(message, "*"); }
function emit(event) {
  if (p.listeners.has(event)) {
    send({event, data: {seconds: now(), percent: now() / DURATION, duration: DURATION}});
  }
}
window.jump = (t) => { now(); p.t = t; emit("seeked"); };
setInterval(() => { if (p.playing) emit("playProgress"); }, 250);
window.addEventListener("message", (e) => {
  const m = typeof e.data === "string" ? JSON.parse(e.data) : e.data;
  p.methods.push(m.method);
  now();
  switch (m.method) {
    case "addEventListener": p.listeners.add(m.value); break;
    case "play": p.playing = true; emit("play"); break;
    case "pause": p.playing = false; emit("pause"); break;
    case "setCurrentTime": p.t = m.value; emit("seeked"); break;
    case "setVolume": p.volume = m.value; break;
    case "getCurrentTime": send({method: "getCurrentTime", value: now()}); break;
    case "getDuration": send({method: "getDuration", value: DURATION}); break;
    case "getPaused": send({method: "getPaused", value: !p.playing}); break;
  }
});
addEventListener("load", () => send({event: "ready", player_id: null}));
</script>"""


async def stand_in_players(page: Page, *, refuse: bool = False) -> None:
    """Serve the stand-ins at the real players' URLs on this page."""

    async def youtube(route: Route) -> None:
        body = FAKE_YOUTUBE % {"refuse": json.dumps(refuse)}
        await route.fulfill(status=200, content_type="text/html", body=body)

    async def vimeo(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body=FAKE_VIMEO)

    await page.route("https://www.youtube-nocookie.com/embed/**", youtube)
    await page.route("https://player.vimeo.com/video/**", vimeo)


PLAYER_STATE_JS = """
() => {
  const p = window.player;
  if (!p) return null;
  const t = p.t + (p.playing ? (performance.now() - p.since) / 1000 : 0);
  return {t, wall: Date.now() / 1000, playing: p.playing, muted: !!p.muted, volume: p.volume,
          commands: p.commands || p.methods};
}
"""


async def player_state(page: Page) -> dict[str, Any]:
    """The stand-in player's state in ``page``'s shared-video iframe (waiting up to 5 s for a
    new iframe to load its page)."""
    deadline = time.monotonic() + 5
    while True:
        for frame in page.frames:
            if "youtube" in frame.url or "vimeo" in frame.url:
                try:
                    state: dict[str, Any] | None = await frame.evaluate(PLAYER_STATE_JS)
                except PlaywrightError:  # the frame navigated or went away meanwhile
                    state = None
                if state is not None:
                    return state
        if time.monotonic() > deadline:
            raise AssertionError(f"no player frame in {[f.url for f in page.frames]}")
        await asyncio.sleep(0.1)


async def embed_drift(presenter: Page, attendee: Page) -> float:
    a, b = await asyncio.gather(player_state(presenter), player_state(attendee))
    moved = (a["wall"] - b["wall"]) if b["playing"] else 0.0
    return float(b["t"] + moved - a["t"])


async def jump_attendee(page: Page, seconds: float) -> None:
    for frame in page.frames:
        if "youtube" in frame.url or "vimeo" in frame.url:
            await frame.evaluate("t => window.jump(t)", seconds)


async def test_youtube_and_vimeo_are_driven_by_postmessage(
    server: RunningServer, browser: Browser, page_errors: PageErrors
) -> None:
    event = await server.create_event("Embedded videos")
    contexts = []

    async def open_(label: str, *, refuse: bool = False) -> Page:
        # the page's own CSP applies: its frame-src lets the providers' players in
        context = await browser.new_context(viewport=DESKTOP)
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(10_000)
        page_errors.watch(page, label)
        await stand_in_players(page, refuse=refuse)
        return page

    try:
        presenter = await open_("presenter")
        ann = await open_("ann")
        await join_presenter(presenter, server, event, "Piet Presenter", preview=False)
        await join_attendee(ann, server, event, "Ann Attendee")

        for url, kind in (
            ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "youtube"),
            ("https://vimeo.com/76979871", "vimeo"),
        ):
            await share(presenter, {"url": url})
            for page in (presenter, ann):
                frame = page.get_by_test_id("shared-video")
                await expect(frame).to_have_attribute("data-kind", kind)
                src = await frame.get_attribute("src") or ""
                if kind == "youtube":
                    assert "enablejsapi=1" in src and "origin=http%3A%2F%2F127.0.0.1" in src, src
            # the sharer starts it; both players play, in step
            for page in (presenter, ann):
                await wait_until(
                    lambda page=page: player_state(page),
                    lambda s: s["playing"],
                    within=8,
                    what=f"the {kind} player to play",
                )
            await asyncio.sleep(1.0)
            assert abs(await embed_drift(presenter, ann)) < 1.0
            # the attendee's player jumps ahead (as a click on it would): it is put back
            await jump_attendee(ann, 60.0)
            await wait_until(
                lambda: embed_drift(presenter, ann),
                lambda d: abs(d) < 1.0,
                within=3,
                what=f"the attendee's {kind} player back in step",
            )
            # pause, seek to 40 s: both there
            await presenter.get_by_test_id("shared-video-pause").click()
            for page in (presenter, ann):
                await wait_until(
                    lambda page=page: player_state(page),
                    lambda s: not s["playing"],
                    within=3,
                    what=f"the {kind} player paused",
                )
            await presenter.get_by_test_id("shared-video-seek").fill("40")
            for page in (presenter, ann):
                await wait_until(
                    lambda page=page: player_state(page),
                    lambda s: not s["playing"] and abs(s["t"] - 40) < 1.0,
                    within=3,
                    what=f"the {kind} player at 40 s",
                )
            # the attendee's own sound: mute reaches their player only
            await ann.get_by_test_id("shared-video-mute").click()
            youtube = kind == "youtube"
            await wait_until(
                lambda: player_state(ann),
                lambda s, youtube=youtube: s["muted"] if youtube else s["volume"] == 0,
                within=2,
                what=f"the attendee's {kind} player muted",
            )
            theirs = await player_state(presenter)
            assert not theirs["muted"] and theirs["volume"] != 0, theirs
            await ann.get_by_test_id("shared-video-mute").click()
            await presenter.get_by_test_id("shared-video-stop").click()
            for page in (presenter, ann):
                await expect(page.get_by_test_id("shared-video")).to_have_count(0)

        # A player that will not start with sound: muted, the Unmute button; its click unmutes.
        carol = await open_("carol", refuse=True)
        await join_attendee(carol, server, event, "Carol Attendee")
        await share(presenter, {"url": "https://youtu.be/dQw4w9WgXcQ"})
        await expect(carol.get_by_test_id("shared-video-unmute")).to_be_visible(timeout=15_000)
        state = await player_state(carol)
        assert state["playing"] and state["muted"], state
        await carol.get_by_test_id("shared-video-unmute").click()
        await wait_until(
            lambda: player_state(carol),
            lambda s: not s["muted"] and s["playing"],
            within=2,
            what="the player unmuted",
        )
        assert "unMute" in (await player_state(carol))["commands"]
    finally:
        for context in contexts:
            await context.close()
