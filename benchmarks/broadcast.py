#!/usr/bin/env python3
"""Broadcast benchmark: what composing the stage costs, and what it takes from forwarding.

    python benchmarks/broadcast.py [--seconds 10] [--fanout-subscribers 20] [--skip-fanout]

Prints exactly one JSON line on stdout (logs on stderr):

* ``compositor_cpu_1``, ``compositor_cpu_4``, ``compositor_cpu_7``: cores used composing 1, 4
  and 7 cameras into 1280x720 at 30 fps — the whole path of a live room's compositor in this
  process: RTP packets of a 1280x720 VP8 camera (~1.5 Mbit/s, a moving picture: every frame
  changes) fed in real time through real ``Producer``\\ s into the compositor's taps,
  decoded, laid out, scaled, encoded (libx264 veryfast, 2.5 Mbit/s) and muxed into an MP4.
  Measured as the process's CPU per wall second minus the same feed without a compositor.
* ``encoder_realtime_factor``: media seconds the encoder alone makes per wall second
  (1280x720 30 fps test pattern, pushed as fast as it takes them).
* ``sends_per_core_second_without`` / ``_with``: benchmarks/fanout.py's measure (packets
  forwarded to subscribers per CPU-second of the server) with one publisher and
  ``--fanout-subscribers`` subscribers in a room that is being recorded, without and with
  the composed recording (``WEBINAR_RECORDING_COMPOSED``); ``sfu_loss_with_compositor`` is
  1 − with/without (the target: at most 0.05). ``hls_latency_s`` comes from
  benchmarks/broadcast_hls.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
from aiortc.rtp import RtpPacket

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webinar.broadcast.compositor import Compositor, Mp4Sink
from webinar.broadcast.encoder import Encoder, EncoderSettings, TestPattern
from webinar.client.media import make_opus_clip, make_vp8_clip
from webinar.sfu.producer import Producer, ProducerCodec, SenderReportMapping
from webinar.sfu.rtp import ntp_from_seconds
from webinar.sfu.types import MediaKind, MediaSource

logger = logging.getLogger("broadcast-bench")
MTU = 1200
FPS = 30


class _Nack:
    def __init__(self) -> None:
        self.missing: set[int] = set()

    def add(self, packet: Any) -> bool:
        return False


class _Tap:
    def __init__(self) -> None:
        self.nack = _Nack()

    def account(self, packet: Any, arrival: int, clock_rate: int) -> None:
        pass

    def send_nack(self, ssrc: int, lost: Any) -> None:
        pass

    def send_pli(self, ssrc: int) -> None:
        pass


def rtp_frames(frames: tuple[bytes, ...], ssrc: int) -> list[list[RtpPacket]]:
    """Each VP8 frame as the RTP packets a browser sends (payload descriptor, MTU)."""
    out = []
    seq = 1000
    for i, frame in enumerate(frames):
        chunks = [frame[j : j + MTU] for j in range(0, len(frame), MTU)]
        packets = []
        for k, chunk in enumerate(chunks):
            desc = bytes([0x90 if k == 0 else 0x80, 0x80, 0x80 | ((i >> 8) & 0x7F), i & 0xFF])
            packets.append(
                RtpPacket(
                    payload_type=96,
                    marker=int(k == len(chunks) - 1),
                    sequence_number=seq & 0xFFFF,
                    ssrc=ssrc,
                    payload=desc + chunk,
                )
            )
            seq += 1
        out.append(packets)
    return out


async def feed(cameras: int, seconds: float, compose: bool, clip: Any, opus: Any) -> float:
    """Feed ``cameras`` cameras (and one microphone) in real time; CPU cores used."""
    start = time.time()
    producers = []
    for n in range(cameras + 1):
        video = n < cameras
        p = Producer(
            kind=MediaKind.VIDEO if video else MediaKind.AUDIO,
            source=MediaSource.CAMERA if video else MediaSource.MICROPHONE,
            mid=str(n),
            tap=_Tap(),  # type: ignore[arg-type]
        )
        codec = (
            ProducerCodec("video/VP8", 90000, 96, None)
            if video
            else ProducerCodec("audio/opus", 48000, 111, None, channels=2)
        )
        p.set_codec(codec, 5000 + n)
        p.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=0, arrived=start)
        producers.append(p)
    compositor = None
    if compose:
        encoder = Encoder(EncoderSettings())
        tmp = tempfile.mkdtemp(prefix="webinar-composebench-")
        encoder.add_sink(Mp4Sink(Path(tmp) / "composed.mp4"))
        compositor = Compositor(encoder)
        for n, p in enumerate(producers):
            compositor.attach(p, feed=f"p{n}", label=f"Presenter {n + 1}")
    video_rtp = [rtp_frames(clip.frames, 5000 + n) for n in range(cameras)]
    seqs = [0] * (cameras + 1)
    v = a = 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    while (now := time.monotonic() - wall0) < seconds:
        while v / FPS <= now:
            for n in range(cameras):
                frame = video_rtp[n][v % len(video_rtp[n])]
                for packet in frame:
                    packet.sequence_number = seqs[n] & 0xFFFF
                    packet.timestamp = (v * 3000) & 0xFFFFFFFF
                    seqs[n] += 1
                    producers[n].on_rtp(packet, 0)
            v += 1
        while a * 0.02 <= now:
            packet = RtpPacket(
                payload_type=111,
                sequence_number=a & 0xFFFF,
                timestamp=(a * 960) & 0xFFFFFFFF,
                ssrc=5000 + cameras,
                payload=opus.frames[a % len(opus.frames)],
            )
            producers[cameras].on_rtp(packet, 0)
            a += 1
        await asyncio.sleep(0.004)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    if compositor is not None:
        stats = compositor.stats
        await asyncio.to_thread(compositor.close)
        logger.info(
            "%d cameras: compositor thread %.3f cores; %d frames in, %d dropped,"
            " %d pictures out, encoder dropped %d",
            cameras,
            stats.busy_seconds / wall,
            stats.frames_in,
            stats.dropped_in,
            stats.video_out,
            compositor.encoder.dropped,
        )
    return cpu / wall


def compositor_cpu(cameras: int, seconds: float, clip: Any, opus: Any) -> float:
    base = asyncio.run(feed(cameras, seconds, False, clip, opus))
    used = asyncio.run(feed(cameras, seconds, True, clip, opus))
    logger.info("%d cameras: %.3f cores with, %.3f without", cameras, used, base)
    return max(0.0, used - base)


def encoder_realtime_factor(seconds: float) -> float:
    pattern = TestPattern(1280, 720, FPS)
    frames = [f for f, _t in pattern.video(1.0)]
    sounds = [f for f, _t in pattern.audio(1.0)]
    encoder = Encoder(EncoderSettings())
    wall0 = time.monotonic()
    n = round(seconds * FPS)
    a = 0
    for i in range(n):
        at = i / FPS
        while a * 0.02 <= at:
            encoder.push_audio(sounds[a % len(sounds)], a * 0.02, block=True)
            a += 1
        encoder.push_video(frames[i % len(frames)], at, block=True)
    encoder.close()
    return seconds / (time.monotonic() - wall0)


# ----------------------------------------------------------------------------- forwarding


def sends_per_core_second(composed: bool, subscribers: int, seconds: float) -> float:
    import fanout  # benchmarks/fanout.py

    class RecordedServer(fanout.OurServer):
        def __init__(self, tmp: Path) -> None:
            real_env = fanout._server_env

            def env() -> dict[str, str]:
                out = real_env()
                out["WEBINAR_RECORDING_COMPOSED"] = "true" if composed else "false"
                return out

            real_create = fanout.create_event

            def create(env_: dict[str, str], data_dir: Path, title: str) -> tuple[str, str]:
                event_id, key = real_create(env_, data_dir, title)
                with sqlite3.connect(data_dir / "webinar.sqlite3") as db:  # auto-record it
                    db.execute(
                        "INSERT INTO event_recording (event_id, auto_record) VALUES (?, 1)",
                        (event_id,),
                    )
                return event_id, key

            fanout._server_env, fanout.create_event = env, create
            try:
                super().__init__(tmp)
            finally:
                fanout._server_env, fanout.create_event = real_env, real_create

    settings = fanout.Settings(
        subscribers=subscribers,
        seconds=seconds,
        warmup=3.0,
        drain=1.0,
        workers=2,
        join_concurrency=10,
        rcvbuf=4 * 1024 * 1024,
        interleave=False,
        setup_timeout=60.0,
        log_level=logging.WARNING,
    )
    clips = (
        make_vp8_clip(width=640, height=480, seconds=4, bitrate=1_000_000, keyframe_interval=60),
        make_opus_clip(seconds=4),
    )
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="webinar-broadcastbench-") as tmp:
        target = RecordedServer(Path(tmp))
        try:
            target.wait_ready()
            result = fanout.run_load(target, "ours", clips, settings, ctx)
        finally:
            target.stop()
        recordings = list((Path(tmp) / "data" / "recordings").glob("*/composed.mp4"))
        logger.info("composed=%s: %s; composed files: %s", composed, result, recordings)
    return float(result["sends_per_core_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fanout-subscribers", type=int, default=20)
    parser.add_argument("--fanout-seconds", type=float, default=15.0)
    parser.add_argument("--skip-fanout", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    clip = make_vp8_clip(width=1280, height=720, seconds=2, bitrate=1_500_000, keyframe_interval=60)
    opus = make_opus_clip(seconds=2)
    out: dict[str, Any] = {"benchmark": "broadcast", "seconds": args.seconds}
    for n in (1, 4, 7):
        out[f"compositor_cpu_{n}"] = round(compositor_cpu(n, args.seconds, clip, opus), 3)
    out["encoder_realtime_factor"] = round(encoder_realtime_factor(args.seconds), 2)
    if not args.skip_fanout:
        without = sends_per_core_second(False, args.fanout_subscribers, args.fanout_seconds)
        with_ = sends_per_core_second(True, args.fanout_subscribers, args.fanout_seconds)
        out["sends_per_core_second_without"] = round(without)
        out["sends_per_core_second_with"] = round(with_)
        out["sfu_loss_with_compositor"] = round(1 - with_ / without, 4) if without else None
        out["fanout_subscribers"] = args.fanout_subscribers
    out["cpus"] = os.cpu_count()
    out["pyav"] = av.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
