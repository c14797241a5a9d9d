"""Helpers for the browser tests: joining pages, polling WebRTC stats, judging frames."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import av
from playwright.async_api import ConsoleMessage, Page, expect

from tests.helpers import RunningServer
from webinar.storage.store import Event

T = TypeVar("T")

OpenPage = Callable[..., Awaitable[Page]]
"""``await open_page(label, viewport=DESKTOP)`` (the fixture in conftest.py)."""


@dataclass
class PageErrors:
    """Uncaught page errors and console errors of every page a test opened."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # every console message, for diagnosis

    def allow(self, pattern: str) -> None:
        """Expect console errors matching ``pattern`` (e.g. the 404 of a not-found page)."""
        self.allowed.append(re.compile(pattern))

    def watch(self, page: Page, label: str) -> None:
        def on_console(message: ConsoleMessage) -> None:
            self.log.append(f"[{label}] {message.type}: {message.text}")
            if message.type == "error":
                self.errors.append(f"[{label}] console error: {message.text} {message.location}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"[{label}] page error: {exc}"))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in [*self.log, *self.errors]))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CONSOLE_LOGS = ARTIFACTS / "console"  # every page's console output, one file per test

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    # a fake camera (moving test pattern) and a beeping fake microphone, no permission prompt
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    # the server gathers on 127.0.0.1 only: let WebRTC use loopback addresses
    "--allow-loopback-in-peer-connection",
    # raw host candidates instead of <uuid>.local names, which aioice cannot resolve
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    # attendees' <video> plays with sound without a click
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Sums of the subscribe connection's inbound-rtp stats, by kind. An async function:
# page.evaluate() awaits the promise it returns.
INBOUND_STATS_JS = """
async () => {
  const pc = window.__webinar && window.__webinar.connection
    && window.__webinar.connection.subscribeConnection;
  const out = {
    connection: pc ? pc.connectionState : null,
    video: {framesDecoded: 0, packetsReceived: 0, bytesReceived: 0, frameWidth: 0},
    audio: {packetsReceived: 0, bytesReceived: 0, totalAudioEnergy: 0},
  };
  if (!pc) return out;
  const report = await pc.getStats();
  report.forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    const sums = out[r.kind];
    if (!sums) return;
    for (const key of Object.keys(sums)) {
      if (key === "frameWidth") sums[key] = Math.max(sums[key], r.frameWidth || 0);
      else sums[key] += r[key] || 0;
    }
  });
  return out;
}
"""


# What the SFU's RTCP sender reports told the subscriber, per kind (remote-outbound-rtp),
# next to what it received (inbound-rtp): SRs must describe the forwarded stream.
SENDER_REPORTS_JS = """
async () => {
  const pc = window.__webinar.connection.subscribeConnection;
  const out = {};
  const report = await pc.getStats();
  const inbound = {};
  report.forEach((r) => { if (r.type === "inbound-rtp") inbound[r.id] = r; });
  report.forEach((r) => {
    if (r.type !== "remote-outbound-rtp") return;
    const local = [...Object.values(inbound)].find((i) => i.remoteId === r.id) || {};
    out[r.kind] = {
      reportsSent: r.reportsSent || 0,
      packetsSent: r.packetsSent || 0,
      remoteTimestamp: r.remoteTimestamp || 0,
      packetsReceived: local.packetsReceived || 0,
    };
  });
  return out;
}
"""


async def sender_reports(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(SENDER_REPORTS_JS)
    return result


# The same, per sending participant: {participant_id: {"audio": {...}, "video": {...}}}.
# A stats entry belongs to the remote stream whose track it carries (trackIdentifier).
INBOUND_BY_PARTICIPANT_JS = """
async () => {
  const conn = window.__webinar && window.__webinar.connection;
  const pc = conn && conn.subscribeConnection;
  const out = {};
  if (!pc) return out;
  const byTrack = new Map();
  for (const remote of conn.remoteStreams.values()) byTrack.set(remote.track.id, remote.info);
  const report = await pc.getStats();
  report.forEach((r) => {
    if (r.type !== "inbound-rtp") return;
    const info = byTrack.get(r.trackIdentifier);
    if (!info) return;
    const mine = out[info.participant_id] || (out[info.participant_id] = {
      video: {framesDecoded: 0, packetsReceived: 0, bytesReceived: 0},
      audio: {packetsReceived: 0, bytesReceived: 0},
    });
    const sums = mine[r.kind];
    if (!sums) return;
    for (const key of Object.keys(sums)) sums[key] += r[key] || 0;
  });
  return out;
}
"""


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    within: float,
    what: str,
    interval: float = 0.2,
) -> T:
    """Poll ``probe`` from Python until ``accept`` likes its value (page.wait_for_function
    does not await promises, so getStats() must be polled this way)."""
    deadline = time.monotonic() + within
    value = await probe()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}; last: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def wait_for_js(
    page: Page, expression: str, arg: Any = None, *, within: float = 30.0, what: str = ""
) -> Any:
    """``page.wait_for_function``, polled from Python: Playwright polls a string predicate with
    eval() inside the page, which our pages' Content-Security-Policy (``script-src 'self'``)
    refuses as soon as the first try is false. Returns the first truthy value."""
    return await wait_until(
        lambda: page.evaluate(expression, arg),
        bool,
        within=within,
        what=what or expression,
        interval=0.05,
    )


async def inbound_stats(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(INBOUND_STATS_JS)
    return result


async def inbound_from(page: Page, participant_id: str) -> dict[str, Any]:
    """What ``page`` receives from one participant (zeros when nothing)."""
    every: dict[str, Any] = await page.evaluate(INBOUND_BY_PARTICIPANT_JS)
    return every.get(
        participant_id,
        {
            "video": {"framesDecoded": 0, "packetsReceived": 0, "bytesReceived": 0},
            "audio": {"packetsReceived": 0, "bytesReceived": 0},
        },
    )


async def growth(
    probe: Callable[[], Awaitable[dict[str, Any]]], kind: str, key: str, seconds: float
) -> int:
    """How much ``probe()[kind][key]`` grows in ``seconds``."""
    before = await probe()
    await asyncio.sleep(seconds)
    after = await probe()
    return int(after[kind][key] - before[kind][key])


async def participant_id(page: Page) -> str:
    pid: str = await page.evaluate("() => window.__webinar.connection.participantId")
    return pid


async def join_attendee(page: Page, server: RunningServer, event: Event, name: str) -> None:
    await page.goto(f"{server.base_url}/e/{event.event_id}")
    await page.get_by_test_id("prejoin-name-input").fill(name)
    await page.get_by_test_id("enter-room-button").click()
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")


async def join_presenter(
    page: Page,
    server: RunningServer,
    event: Event,
    name: str,
    *,
    preview: bool = True,
    key: str | None = None,
) -> None:
    """Open the presenter link (or the host link with ``key=event.host_key``), pass the
    device check and enter the studio."""
    await page.goto(
        f"{server.base_url}/e/{event.event_id}/present?key={key or event.presenter_key}"
    )
    if preview:  # the device check shows the camera before entering
        await expect(page.get_by_test_id("device-preview")).to_be_visible()
        await wait_for_playing_video(page, "[data-testid=device-preview]")
    await page.get_by_test_id("prejoin-name-input").fill(name)
    await page.get_by_test_id("enter-room-button").click()
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")
    await expect(page.get_by_test_id("self-view")).to_be_visible()
    if preview:  # the camera is on: the self view shows it, not the placeholder
        await expect(page.get_by_test_id("self-view")).not_to_have_class(re.compile("tile-off"))


async def go_live(page: Page) -> None:
    await page.get_by_test_id("go-live").click()
    await expect(page.get_by_test_id("stop-live")).to_be_visible()


async def wait_for_media(page: Page, *, within: float = 10.0) -> dict[str, Any]:
    """Video frames are decoded and audio packets arrive, and both keep coming."""
    first = await wait_until(
        lambda: inbound_stats(page),
        lambda s: s["video"]["framesDecoded"] > 0 and s["audio"]["packetsReceived"] > 0,
        within=within,
        what="the first decoded video frame and audio packet",
    )
    return await wait_until(
        lambda: inbound_stats(page),
        lambda s: (
            s["video"]["framesDecoded"] >= first["video"]["framesDecoded"] + 10
            and s["audio"]["packetsReceived"] >= first["audio"]["packetsReceived"] + 25
        ),
        within=within,
        what="video frames and audio packets to keep arriving",
    )


async def wait_for_playing_video(page: Page, selector: str, *, within: float = 10.0) -> None:
    """The <video> has a decoded frame to show (so a screenshot shows the picture)."""
    video = page.locator(selector).first
    await wait_until(
        lambda: video.evaluate(
            "v => v.readyState >= 2 && v.videoWidth > 0 && !v.paused ? v.videoWidth : 0"
        ),
        bool,
        within=within,
        what=f"{selector} to play",
    )


async def expect_plays_presenter(page: Page, name: str, *, within: float = 20.0) -> None:
    """The attendee page shows one presenter tile named ``name`` whose video frames are
    decoded and keep coming, whose <video> plays, and which plays the presenter's audio."""
    tile = page.get_by_test_id("video-tile")
    await expect(tile).to_have_count(1)
    await expect(tile).to_contain_text(name)
    stats = await wait_for_media(page, within=within)
    assert stats["video"]["frameWidth"] > 0
    await wait_for_playing_video(page, "[data-testid=video-tile] video")
    has_audio = await page.locator("[data-testid=video-tile] video").evaluate(
        "v => !v.muted && v.srcObject.getAudioTracks().length"
    )
    assert has_audio == 1


def mean_luma(png: Path) -> float:
    """Mean brightness (0-255) of an image file, decoded with PyAV (no numpy here)."""
    with av.open(str(png)) as container:
        frame = next(container.decode(video=0))
        gray = frame.reformat(format="gray")
        plane = gray.planes[0]
        data = bytes(plane)
        width, height, stride = gray.width, gray.height, plane.line_size
        total = 0
        for row in range(height):
            start = row * stride
            total += sum(data[start : start + width])
        return total / (width * height)


async def mic_level(page: Page) -> float:
    """The microphone level meter's value (0..1) on a page with a device check."""
    level: float = await page.evaluate("() => window.__webinar.room.meter.level")
    return level
