#!/usr/bin/env python3
"""Join to first frame: how long an attendee waits, from the Join click to the presenter's
first video frame on screen.

    python benchmarks/join.py [--joins 12] [--attendees 0]
    python benchmarks/join.py --joins 12 --attendees 200

Starts our server (``python -m webinar serve``, through ``_server.py``: fresh data folder, one
event without a start time, so it is live at once) inside a private network namespace (the
script re-runs itself under ``unshare -n``, loopback only, as the browser tests do; needs
root). A presenter in a headless Chromium of its own (fake camera 640x480, about 20 fps;
VP8 simulcast, as the web client publishes a camera) enters the studio and goes live.
``--attendees`` signalling-only attendees (WebSocket, ``hello`` and ``join``, no media;
``_wsclient.py``) are seated next and stay for the whole run. Then ``--joins`` attendees
join one after the other in a second Chromium, each in a new browser context: open the
event page, type a name, click Join, wait for the presenter's first frame, close the context
(the page's ``pagehide`` sends ``leave``), pause ``--gap`` seconds.

``--signalling-delay-ms D`` puts a proxy between the joining page and the server that
delivers every chunk of its HTTP and WebSocket traffic D ms late, both ways (a signalling
round trip of 2D; ICE, DTLS and media stay on plain loopback: the machine has no netem).

Every time is taken in the attendee's page with ``performance.now()`` (no Python-side
latency): an init script (``JOIN_PROBE_JS``, added with ``context.add_init_script``, which
the page's Content-Security-Policy does not govern; nothing changes in the page's own code)
notes the click's ``event.timeStamp``, wraps ``WebSocket`` and ``RTCPeerConnection`` to note
when messages arrive or leave and when connection states change, and calls
``requestVideoFrameCallback`` on every ``<video>`` the page adds: the first callback of a
video with a video track is the first frame (its ``now``: the start of the rendering frame
that shows it).

Prints exactly one JSON line on stdout (progress goes to stderr): ``joins``,
``attendees``, ``median_ms``, ``p90_ms``, ``min_ms``, ``max_ms`` (click → first frame),
``join_ms`` (every join's, in order), and the medians of the steps, each from the click:
``click_to_ws_open_ms`` (the socket open), ``click_to_joined_ms`` (the ``joined`` reply
arrived), ``click_to_offer_ms`` (the first ``subscriber-offer`` arrived),
``click_to_answer_ms`` (``subscriber-answer`` sent), ``click_to_ice_ms`` (ICE
``connected``), ``click_to_dtls_ms`` (the connection ``connected``: DTLS done),
``click_to_frame_received_ms`` (the first frame's ``receiveTime``: when its last packet
arrived; the SFU forwards no video before a keyframe, so this is the first video packet too,
give or take the keyframe's own burst; it can be a few ms after the frame's ``now``),
``click_to_frame_ms``; ``step_<name>_ms``: the median of each step's own duration (from the
step before it in that order; negative when the order flips, e.g. an offer that arrived
before ``joined``); ``signalling_delay_ms``, ``loadavg_1m`` (at the first join) and
``server_tracebacks``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
from _server import start_server  # benchmarks/_server.py: the script's folder is on sys.path
from _wsclient import SignallingClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.browser
from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, DESKTOP

INNER = "WEBINAR_JOIN_BENCH_INNER"
DEFAULT_MAX_PARTICIPANTS = 500  # rooms.max_participants; the host counts too

# Runs in every attendee page before its own scripts (add_init_script is not subject to the
# page's Content-Security-Policy). Marks are performance.now() times; the first of each kept.
JOIN_PROBE_JS = r"""
(() => {
  const probe = (window.__joinProbe = { click: null, marks: {}, frame: null });
  const mark = (key, at) => {
    if (!(key in probe.marks)) probe.marks[key] = at ?? performance.now();
  };
  document.addEventListener(
    "click",
    (event) => {
      const target = event.target;
      const button = target && target.closest && target.closest("[data-testid=enter-room-button]");
      if (probe.click === null && button) {
        probe.click = event.timeStamp;
      }
    },
    true,
  );
  const NativeSocket = window.WebSocket;
  window.WebSocket = class extends NativeSocket {
    constructor(...args) {
      super(...args);
      mark("ws_created");
      this.addEventListener("open", () => mark("ws_open"));
      this.addEventListener("message", (event) => {
        const at = performance.now();
        try {
          mark("recv_" + JSON.parse(event.data).type, at);
        } catch (_) {}
      });
    }
    send(data) {
      try {
        mark("sent_" + JSON.parse(data).type);
      } catch (_) {}
      return super.send(data);
    }
  };
  const NativePeerConnection = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends NativePeerConnection {
    constructor(...args) {
      super(...args);
      mark("pc_created");
      this.addEventListener("iceconnectionstatechange", () =>
        mark("ice_" + this.iceConnectionState)
      );
      this.addEventListener("connectionstatechange", () => mark("pc_" + this.connectionState));
      this.addEventListener("track", (event) => mark("track_" + event.track.kind));
    }
  };
  const watched = new WeakSet();
  const watch = (video) => {
    if (watched.has(video) || !video.requestVideoFrameCallback) return;
    watched.add(video);
    const onFrame = (now, meta) => {
      const source = video.srcObject;
      const isVideo = source && source.getVideoTracks && source.getVideoTracks().length > 0;
      if (probe.frame === null && isVideo) {
        probe.frame = {
          now,
          presentationTime: meta.presentationTime,
          receiveTime: meta.receiveTime ?? null,
          width: meta.width,
          height: meta.height,
        };
        return;
      }
      if (probe.frame === null) video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  };
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.tagName === "VIDEO") watch(node);
        else node.querySelectorAll?.("video").forEach(watch);
      }
    }
  }).observe(document, { childList: true, subtree: true });
})();
"""

# (key in the JSON, mark in the page), in the order they happen
STEPS = (
    ("ws_open", "ws_open"),
    ("joined", "recv_joined"),
    ("offer", "recv_subscriber-offer"),
    ("answer", "sent_subscriber-answer"),
    ("ice", "ice_connected"),
    ("dtls", "pc_connected"),
    ("frame_received", "frame_received"),
    ("frame", "frame"),
)


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class DelayProxy:
    """A TCP proxy on 127.0.0.1 that delivers every chunk, both ways, ``delay`` seconds after
    it arrived (in order): the joining page's signalling as if over a longer path."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = loop.create_task(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + self.delay, data))
        finally:
            queue.put_nowait((0.0, b""))
            await sender


async def one_join(browser: Any, url: str, event_id: str, index: int) -> dict[str, float]:
    """Join once in a new context; the page's marks, in ms after the click."""
    context = await browser.new_context(viewport=DESKTOP)
    try:
        await context.add_init_script(script=JOIN_PROBE_JS)
        page = await context.new_page()
        await page.goto(f"{url}/e/{event_id}")
        await page.get_by_test_id("prejoin-name-input").fill(f"Joiner {index}")
        await asyncio.sleep(0.3)  # the page settles: the click is the only thing going on
        await page.get_by_test_id("enter-room-button").click()
        deadline = time.monotonic() + 20
        probe: dict[str, Any] = {}
        while time.monotonic() < deadline:
            probe = await page.evaluate("window.__joinProbe")
            if probe.get("frame") is not None and probe.get("click") is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"join {index}: no frame within 20 s; marks {probe}")
        click = float(probe["click"])
        marks = {k: float(v) - click for k, v in probe["marks"].items()}
        frame = probe["frame"]
        marks["frame"] = float(frame["now"]) - click
        if frame.get("receiveTime") is not None:
            marks["frame_received"] = float(frame["receiveTime"]) - click
        await page.close(run_before_unload=True)
    finally:
        await context.close()
    return marks


async def seat_attendees(
    http: aiohttp.ClientSession, url: str, event_id: str, count: int
) -> list[SignallingClient]:
    ws_url = url.replace("http", "ws", 1) + "/ws"
    clients = [SignallingClient(http, ws_url, i) for i in range(count)]
    for batch in range(0, count, 25):
        await asyncio.gather(*(c.connect(event_id) for c in clients[batch : batch + 25]))
    return clients


async def run(args: argparse.Namespace, url: str, event: dict[str, Any]) -> dict[str, Any]:
    from playwright.async_api import async_playwright, expect

    event_id = str(event["event_id"])
    query = urllib.parse.urlsplit(str(event["presenter_url"])).query
    presenter_key = urllib.parse.parse_qs(query)["key"][0]
    results: list[dict[str, float]] = []
    async with (
        async_playwright() as p,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), trust_env=False) as http,
    ):
        launch = {"executable_path": str(CHROMIUM), "headless": True, "args": CHROMIUM_ARGS}
        studio = await p.chromium.launch(**launch)
        viewers = await p.chromium.launch(**launch)
        presenter = await (await studio.new_context(viewport=DESKTOP)).new_page()
        await presenter.goto(f"{url}/e/{event_id}/present?key={presenter_key}")
        await expect(presenter.get_by_test_id("device-preview")).to_be_visible()
        await presenter.get_by_test_id("prejoin-name-input").fill("Presenter")
        await presenter.get_by_test_id("enter-room-button").click()
        await expect(presenter.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "ok"
        )
        await presenter.get_by_test_id("go-live").click()
        await expect(presenter.get_by_test_id("stop-live")).to_be_visible()
        log("presenter live")
        join_url = url
        proxy = None
        if args.signalling_delay_ms > 0:
            port = int(urllib.parse.urlsplit(url).port or 80)
            proxy = DelayProxy(port, args.signalling_delay_ms / 1000)
            await proxy.start()
            join_url = f"http://127.0.0.1:{proxy.port}"
        clients = await seat_attendees(http, url, event_id, args.attendees)
        log(f"{len(clients)} signalling-only attendees seated")
        await asyncio.sleep(args.warmup)  # the presenter's encoder ramps up
        loadavg = os.getloadavg()[0]
        try:
            for i in range(args.joins):
                marks = await one_join(viewers, join_url, event_id, i)
                results.append(marks)
                log(
                    f"join {i + 1}/{args.joins}: frame {marks['frame']:.0f} ms "
                    + " ".join(f"{k}={marks[m]:.0f}" for k, m in STEPS[:-1] if m in marks)
                )
                await asyncio.sleep(args.gap)
        finally:
            await asyncio.gather(*(c.close() for c in clients))
            if proxy is not None:
                await proxy.close()
            await viewers.close()
            await studio.close()
    frames = [r["frame"] for r in results]
    out: dict[str, Any] = {
        "benchmark": "join",
        "joins": len(results),
        "attendees": args.attendees,
        "median_ms": round(statistics.median(frames), 1),
        "p90_ms": round(percentile(frames, 0.9), 1),
        "min_ms": round(min(frames), 1),
        "max_ms": round(max(frames), 1),
        "join_ms": [round(f) for f in frames],
    }
    previous: str | None = None
    for key, mark in STEPS:
        values = [r[mark] for r in results if mark in r]
        out[f"click_to_{key}_ms"] = round(statistics.median(values), 1) if values else None
        if previous is not None:
            steps = [r[mark] - r[previous] for r in results if mark in r and previous in r]
            out[f"step_{key}_ms"] = round(statistics.median(steps), 1) if steps else None
        previous = mark
    out["signalling_delay_ms"] = args.signalling_delay_ms
    out["loadavg_1m"] = round(loadavg, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--joins", type=int, default=12)
    parser.add_argument("--attendees", type=int, default=0, help="signalling-only, seated first")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between two joins")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before the first join")
    parser.add_argument(
        "--signalling-delay-ms",
        type=float,
        default=0.0,
        help="one-way delay on the joining page's HTTP and WebSocket traffic (a proxy;"
        " media is not delayed): its signalling RTT is twice this",
    )
    args = parser.parse_args(argv)
    if os.environ.get(INNER) != "1":
        script = 'ip link set lo up && ip addr add 127.0.0.2/8 dev lo && exec "$0" "$@"'
        env = {**os.environ, INNER: "1"}
        command = ["unshare", "-n", "sh", "-c", script, sys.executable, *sys.argv]
        return subprocess.run(command, env=env).returncode
    extra = {"WEBINAR_ICE_HOST_ADDRESSES": "127.0.0.1"}
    if args.attendees + 2 > DEFAULT_MAX_PARTICIPANTS:
        extra["WEBINAR_ROOMS_MAX_PARTICIPANTS"] = str(args.attendees + 10)
    with tempfile.TemporaryDirectory(prefix="webinar-join-") as tmp:
        started = start_server(Path(tmp), "Join benchmark", extra)
        try:
            result = asyncio.run(run(args, started.url, started.event))
        except Exception as exc:
            print(f"join benchmark failed: {exc}", file=sys.stderr)
            print(started.log.read_text(errors="replace")[-3000:], file=sys.stderr)
            return 1
        finally:
            with contextlib.suppress(Exception):
                started.stop()
        tracebacks = started.log.read_text(errors="replace").count("Traceback (most recent")
    result["server_tracebacks"] = tracebacks
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
