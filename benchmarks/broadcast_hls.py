#!/usr/bin/env python3
"""HLS glass-to-glass latency: from the moment a frame is made to the HLS player showing it,
in real Chromium on loopback.

    python benchmarks/broadcast_hls.py [--seconds 20] [--keyframe-seconds 1] [--size 1280x720]
        [--through encoder|compositor]

Runs our server in-process (a fresh data folder) with an event whose attendees all watch over
HLS; a TestPattern is fed in real time through the broadcast Encoder (libx264 + aac) into the
room's HlsSink. ``--through compositor`` makes the whole way a camera's picture takes: the
pattern encoded to VP8 (640x360) as a browser would, sent as RTP into a Producer, composed
full-picture by the Compositor (its output runs ``DEFAULT_DELAY`` behind the clock), then the
Encoder and the HlsSink (benchmarks/broadcast.py measures it so). An attendee
in headless Chromium enters the room and plays the stream on the attendee page (hls.js). Every
0.25 s for ``--seconds`` the page reads the frame number TestPattern burnt into the picture it
shows; frame ``n`` was made at ``start + n / fps`` on this machine's clock, which the page
shares (``performance.timeOrigin + performance.now()``), so the difference is the latency:
encoding, the segment being cut at the next keyframe, the player's live edge and decoding.

Prints one JSON line on stdout: ``{"hls_latency_s", "hls_latency_p90_s", "samples",
"keyframe_seconds", "size", "frames_dropped", "through"}`` (``hls_latency_s`` the median);
everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


class LiveCamera:
    """A camera through the compositor: TestPattern frames (the frame number burnt in) made
    at the wall clock's pace on a thread, encoded to VP8 as a browser would (640x360,
    realtime), sent as RTP into a real ``Producer`` on the event loop (its sender report maps
    frame ``n`` to ``started + n / fps``), composed full-picture by a real ``Compositor`` into
    the ``Encoder`` whose packets go to ``sink``. ``started`` and ``dropped`` as LivePattern's."""

    def __init__(
        self,
        sink: object,
        loop: asyncio.AbstractEventLoop,
        *,
        width: int,
        height: int,
        fps: int,
        keyframe_seconds: float,
    ) -> None:
        import fractions
        import threading
        import time

        import av
        from broadcast import _Tap

        from webinar.broadcast.compositor import Compositor
        from webinar.broadcast.encoder import Encoder, EncoderSettings, TestPattern
        from webinar.sfu.producer import Producer, ProducerCodec, SenderReportMapping
        from webinar.sfu.rtp import ntp_from_seconds
        from webinar.sfu.types import MediaKind, MediaSource

        self.fps = fps
        self.started = time.time()
        self.producer = Producer(
            kind=MediaKind.VIDEO,
            source=MediaSource.CAMERA,
            mid="0",
            tap=_Tap(),  # type: ignore[arg-type]
        )
        self.producer.set_codec(ProducerCodec("video/VP8", 90000, 96, None), 4242)
        self.producer.sender_report = SenderReportMapping(
            ntp=ntp_from_seconds(self.started), rtp=0, arrived=self.started
        )
        self.encoder = Encoder(
            EncoderSettings(width=width, height=height, fps=fps, keyframe_seconds=keyframe_seconds)
        )
        self.encoder.add_sink(sink)  # type: ignore[arg-type]
        self.compositor = Compositor(self.encoder)
        self.compositor.attach(self.producer, feed="camera", label="")
        self._loop = loop
        self._stop = threading.Event()
        vp8 = av.CodecContext.create("libvpx", "w")
        assert isinstance(vp8, av.VideoCodecContext)
        vp8.width, vp8.height, vp8.pix_fmt = 640, 360, "yuv420p"
        vp8.bit_rate = 800_000
        vp8.time_base = fractions.Fraction(1, fps)
        vp8.gop_size = fps  # a keyframe a second: nothing here answers a request
        vp8.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        self._vp8 = vp8
        self._pattern = TestPattern(640, 360, fps)
        self._time = time
        self._thread = threading.Thread(target=self._run, name="live-camera", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from aiortc.rtp import RtpPacket

        time = self._time
        seq = 0
        for frame, at in self._pattern.video(3600):
            if self._stop.is_set():
                break
            delay = self.started + at - time.time()
            if delay > 0:
                time.sleep(delay)
            n = round(at * self.fps)
            frame.pts = n
            packets = []
            for data in (bytes(p) for p in self._vp8.encode(frame)):
                chunks = [data[j : j + 1200] for j in range(0, len(data), 1200)]
                for k, chunk in enumerate(chunks):
                    b0 = 0x90 if k == 0 else 0x80
                    desc = bytes([b0, 0x80, 0x80 | ((n >> 8) & 0x7F), n & 0xFF])
                    packets.append(
                        RtpPacket(
                            payload_type=96,
                            marker=int(k == len(chunks) - 1),
                            sequence_number=seq & 0xFFFF,
                            timestamp=(n * 3000) & 0xFFFFFFFF,
                            ssrc=4242,
                            payload=desc + chunk,
                        )
                    )
                    seq += 1
            self._loop.call_soon_threadsafe(self._feed, packets)

    def _feed(self, packets: list[object]) -> None:
        for packet in packets:
            self.producer.on_rtp(packet, 0)  # type: ignore[arg-type]

    @property
    def dropped(self) -> int:
        return self.encoder.dropped + self.compositor.stats.skipped

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.compositor.close()


async def measure(
    seconds: float,
    keyframe_seconds: float,
    width: int,
    height: int,
    through: str = "encoder",
) -> dict[str, object]:
    from playwright.async_api import async_playwright, expect

    from tests.browser.support import CHROMIUM, CHROMIUM_ARGS
    from tests.helpers import running_server
    from tests.hls_support import SHOWN_FRAME_JS, LivePattern
    from webinar.app import BROADCAST, HLS_STREAMS
    from webinar.broadcast.hls import HlsSink
    from webinar.storage.records import EventSettings

    fps = 30
    data = Path(tempfile.mkdtemp(prefix="webinar-hls-"))
    try:
        async with running_server(data / "data") as server, async_playwright() as p:
            event = await server.create_event("HLS latency")
            event = await server.store.update_event(
                event.event_id, EventSettings(title=event.title, hls_mode="all")
            )
            # this benchmark's own pipeline feeds the event's HLS, not the room's compositor
            # (which would replace the published sink with its own as soon as the room is live)
            server.server.app[BROADCAST].hls = None
            sink = HlsSink()
            server.server.app[HLS_STREAMS].publish(event.event_id, sink)
            live: LivePattern | LiveCamera
            if through == "compositor":
                live = LiveCamera(
                    sink,
                    asyncio.get_running_loop(),
                    width=width,
                    height=height,
                    fps=fps,
                    keyframe_seconds=keyframe_seconds,
                )
            else:
                live = LivePattern(
                    sink, width=width, height=height, fps=fps, keyframe_seconds=keyframe_seconds
                )
            browser = await p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = await browser.new_page()
                await page.goto(f"{server.base_url}/e/{event.event_id}")
                await page.get_by_test_id("prejoin-name-input").fill("Latency")
                await page.get_by_test_id("enter-room-button").click()
                await expect(page.get_by_test_id("hls-video")).to_be_visible(timeout=30_000)
                for _ in range(240):
                    if await page.evaluate(SHOWN_FRAME_JS) is not None:
                        break
                    await asyncio.sleep(0.25)
                else:
                    raise SystemExit("the player showed no picture within a minute")
                await asyncio.sleep(3)  # past the start-up (the player settles on its edge)
                samples = []
                loop = asyncio.get_running_loop()
                end = loop.time() + seconds
                while loop.time() < end:
                    seen = await page.evaluate(SHOWN_FRAME_JS)
                    if seen is not None:
                        made = live.started + seen["frame"] / fps
                        samples.append(seen["at"] / 1000 - made)
                    await asyncio.sleep(0.25)
            finally:
                await browser.close()
                await asyncio.to_thread(live.stop)
                dropped = live.dropped
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if not samples:
        raise SystemExit("the player showed no picture")
    ordered = sorted(samples)
    return {
        "hls_latency_s": round(statistics.median(ordered), 2),
        "hls_latency_p90_s": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "samples": len(ordered),
        "keyframe_seconds": keyframe_seconds,
        "size": f"{width}x{height}",
        "frames_dropped": dropped,
        "through": through,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--keyframe-seconds", type=float, default=1.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument(
        "--through",
        choices=("encoder", "compositor"),
        default="encoder",
        help="the pattern straight into the encoder, or as a VP8 camera through the compositor",
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    result = asyncio.run(measure(args.seconds, args.keyframe_seconds, width, height, args.through))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
