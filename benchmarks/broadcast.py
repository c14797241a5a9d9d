#!/usr/bin/env python3
"""Broadcast benchmark: what composing the stage costs, and what it takes from forwarding.

    python benchmarks/broadcast.py [--seconds 10] [--skip-hls] [--skip-fanout] [-v]

Prints exactly one JSON line on stdout (logs on stderr). Contract keys (benchmarks/README.md,
"broadcast.py", has every key and how each is measured):

* ``compositor_cpu_1``, ``compositor_cpu_4``, ``compositor_cpu_7``: cores used composing 1, 4
  and 7 cameras into 1280x720 at 30 fps — a synthetic talking-head camera published as the
  web client does (three simulcast VP8 encodings, benchmarks/_camera.py) as RTP in real time
  through real ``Producer`` objects into a ``Compositor`` (taps on the encoding that fits each
  tile, decode, layout, scale, mix) → ``Encoder`` (libx264 veryfast, 2.5 Mbit/s) →
  ``Mp4Sink``; the process's CPU per wall second minus the same feed without a compositor.
* ``encoder_realtime_factor``: media seconds the encoder alone makes per wall second
  (1280x720 30 fps test pattern, pushed as fast as it takes them).
* ``hls_latency_s``: glass to glass over HLS, from a camera through the compositor
  (benchmarks/broadcast_hls.py, in Chromium).
* ``sends_per_core_second_without`` / ``_with``: packets forwarded to subscribers per
  CPU-second of the event loop's thread, in one process, without and with a compositor on
  the same producers (alternating runs); ``sfu_loss_with_compositor`` is 1 − with/without
  (the target: at most 0.05).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import math
import multiprocessing
import os
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from aiortc.rtp import RtpPacket

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _camera  # benchmarks/_camera.py

from webinar.broadcast.compositor import Compositor, Mp4Sink
from webinar.broadcast.encoder import Encoder, EncoderSettings, TestPattern
from webinar.client.media import make_opus_clip
from webinar.sfu.producer import Producer, ProducerCodec, SenderReportMapping
from webinar.sfu.rtp import ntp_from_seconds
from webinar.sfu.types import MediaKind, MediaSource

logger = logging.getLogger("broadcast-bench")
COMPOSITOR_ARGS = inspect.signature(Compositor).parameters  # an older tree has fewer
MTU = 1200
FPS = 30


class _Nack:
    def __init__(self) -> None:
        self.missing: set[int] = set()

    def add(self, packet: Any) -> bool:
        return False


class _Tap:
    """The producers' feed is this script, not a browser: no receiver behind them."""

    def __init__(self) -> None:
        self.nack = _Nack()
        self.remb_filter: Any = None
        self.rid_ssrcs: dict[str, list[int | None]] = {}

    def account(self, packet: Any, arrival: int, clock_rate: int) -> None:
        pass

    def send_nack(self, ssrc: int, lost: Any) -> None:
        pass

    def send_pli(self, ssrc: int) -> None:
        pass

    def claim_ssrc(self, ssrc: int) -> None:
        pass


def rtp_frames(
    frames: tuple[bytes, ...], ssrc: int, rid: str | None = None
) -> list[list[RtpPacket]]:
    """Each VP8 frame as the RTP packets a browser sends (payload descriptor with a 15-bit
    PictureID, MTU); the first frame's packets carry the RID, as Chrome's first ones do."""
    out = []
    seq = 1000
    for i, frame in enumerate(frames):
        chunks = [frame[j : j + MTU] for j in range(0, len(frame), MTU)]
        packets = []
        for k, chunk in enumerate(chunks):
            desc = bytes([0x90 if k == 0 else 0x80, 0x80, 0x80 | ((i >> 8) & 0x7F), i & 0xFF])
            packet = RtpPacket(
                payload_type=96,
                marker=int(k == len(chunks) - 1),
                sequence_number=seq & 0xFFFF,
                ssrc=ssrc,
                payload=desc + chunk,
            )
            if rid is not None and i == 0:
                packet.extensions.rtp_stream_id = rid
            packets.append(packet)
            seq += 1
        out.append(packets)
    return out


@dataclass(frozen=True, slots=True)
class Camera:
    """A camera's encodings, lowest first (one: a single stream)."""

    name: str
    clips: tuple[_camera.Vp8Clip, ...]

    @property
    def rids(self) -> tuple[str, ...]:
        return tuple(rid for rid, _d, _b in _camera.ENCODINGS) if len(self.clips) > 1 else ()


def make_camera(content: str, simulcast: bool) -> Camera:
    """The encoded clip, cached in the temp folder (encoding it takes ~10 s)."""
    key = f"{content}-{'simulcast' if simulcast else 'single'}-v2-av{av.__version__}"
    cache = Path(tempfile.gettempdir()) / f"webinar-bench-camera-{key}.pickle"
    if cache.exists():
        with contextlib.suppress(Exception):
            clips = pickle.loads(cache.read_bytes())
            return Camera(key, clips)
    draw = _camera.talking_head if content == "talking" else _camera.gradient
    frames = draw(1280, 720, FPS, 4.0)
    if simulcast:
        clips = _camera.simulcast_clips(frames, FPS)
    else:  # the old benchmark's camera: one 1280x720 stream at 1.5 Mbit/s
        clips = (_camera.encode_vp8(frames, 1280, 720, 1_500_000, FPS),)
    cache.write_bytes(pickle.dumps(clips))
    return Camera(key, clips)


async def feed(
    cameras: int,
    seconds: float,
    compose: bool,
    camera: Camera,
    opus: Any,
    settings: EncoderSettings,
    fit_layers: bool,
) -> tuple[float, dict[str, Any]]:
    """Feed ``cameras`` cameras (and one microphone) in real time; CPU cores used, and
    what the compositor did."""
    start = time.time()
    producers = []
    layers = len(camera.clips)
    for n in range(cameras + 1):
        video = n < cameras
        p = Producer(
            kind=MediaKind.VIDEO if video else MediaKind.AUDIO,
            source=MediaSource.CAMERA if video else MediaSource.MICROPHONE,
            mid=str(n),
            tap=_Tap(),  # type: ignore[arg-type]
            rids=camera.rids if video else (),
        )
        codec = (
            ProducerCodec("video/VP8", 90000, 96, None)
            if video
            else ProducerCodec("audio/opus", 48000, 111, None, channels=2)
        )
        p.set_codec(codec, None if video and layers > 1 else 5000 + 10 * n)
        p.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=0, arrived=start)
        producers.append(p)
    video_rtp = [
        [
            rtp_frames(clip.frames, 5000 + 10 * n + k, camera.rids[k] if camera.rids else None)
            for k, clip in enumerate(camera.clips)
        ]
        for n in range(cameras)
    ]
    seqs = [[0] * layers for _ in range(cameras)]

    def send_video(v: int) -> None:
        for n in range(cameras):
            for k in range(layers):
                stream = video_rtp[n][k]
                for packet in stream[v % len(stream)]:
                    packet.sequence_number = seqs[n][k] & 0xFFFF
                    packet.timestamp = (v * 3000) & 0xFFFFFFFF
                    seqs[n][k] += 1
                    producers[n].on_rtp(packet, 0)

    # The first frame of every encoding, so the producers know them, and their sender
    # reports (each encoding has its own).
    send_video(0)
    for n in range(cameras):
        if producers[n].simulcast is not None:
            for k in range(layers):
                producers[n].simulcast.on_sender_report(  # type: ignore[union-attr]
                    5000 + 10 * n + k, ntp_from_seconds(start), 0, start
                )
    compositor = None
    if compose:
        encoder = Encoder(settings)
        tmp = tempfile.mkdtemp(prefix="webinar-composebench-")
        mp4 = Mp4Sink(Path(tmp) / "composed.mp4")
        encoder.add_sink(mp4)
        kwargs = {"fit_layers": fit_layers} if "fit_layers" in COMPOSITOR_ARGS else {}
        compositor = Compositor(encoder, **kwargs)
        for n, p in enumerate(producers):
            compositor.attach(p, feed=f"p{n}", label=f"Presenter {n + 1}")
    v, a = 1, 0
    cpu0, wall0 = time.process_time(), time.monotonic()
    while (now := time.monotonic() - wall0) < seconds:
        while v / FPS <= now + 1 / FPS:
            send_video(v)
            v += 1
        while a * 0.02 <= now:
            packet = RtpPacket(
                payload_type=111,
                sequence_number=a & 0xFFFF,
                timestamp=(a * 960) & 0xFFFFFFFF,
                ssrc=5000 + 10 * cameras,
                payload=opus.frames[a % len(opus.frames)],
            )
            producers[cameras].on_rtp(packet, 0)
            a += 1
        await asyncio.sleep(0.004)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    info: dict[str, Any] = {}
    if compositor is not None:
        stats = compositor.stats
        taps = list(compositor._taps.values())
        info = {
            "thread": stats.busy_seconds / wall,
            "pinned": [p.pinned_layer(t.id) for p, t in zip(producers, taps, strict=False)][
                :cameras
            ],
            "frames_in": stats.frames_in,
            "dropped_in": stats.dropped_in,
            "video_out": stats.video_out,
            "skipped": stats.skipped,
            "encoder_dropped": compositor.encoder.dropped,
        }
        await asyncio.to_thread(compositor.close)
        if mp4.duration:
            info["mp4_kbit_s"] = round(mp4.size * 8 / mp4.duration / 1000)
        shutil.rmtree(tmp, ignore_errors=True)
        logger.info("%d cameras: %s", cameras, info)
    return cpu / wall, info


def compositor_cpu(
    cameras: int,
    seconds: float,
    camera: Camera,
    opus: Any,
    settings: EncoderSettings,
    fit_layers: bool = True,
) -> tuple[float, dict[str, Any]]:
    base, _ = asyncio.run(feed(cameras, seconds, False, camera, opus, settings, fit_layers))
    used, info = asyncio.run(feed(cameras, seconds, True, camera, opus, settings, fit_layers))
    logger.info("%d cameras: %.3f cores with, %.3f without", cameras, used, base)
    return max(0.0, used - base), info


def encoder_realtime_factor(seconds: float, settings: EncoderSettings) -> float:
    pattern = TestPattern(1280, 720, FPS)
    frames = [f for f, _t in pattern.video(1.0)]
    sounds = [f for f, _t in pattern.audio(1.0)]
    encoder = Encoder(settings)
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


# ----------------------------------------------------------------------------- presets


class _Collect:
    """A sink that keeps the encoder's video packets."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def open(self, fmt: Any) -> None:
        pass

    def write(self, packet: Any, kind: str) -> None:
        if kind == "video":
            self.packets.append(bytes(packet))

    def close(self) -> None:
        pass


def composed_grid(seconds: float) -> list[av.VideoFrame]:
    """What the compositor makes of four talking heads: a 2x2 grid (each tile another
    moment of the clip, so they move differently), 1280x720 yuv420p."""
    from PIL import Image

    heads = _camera.talking_head(1280, 720, FPS, 4.0)
    small = [f.to_image().resize((636, 358), Image.Resampling.BOX) for f in heads]
    out = []
    for i in range(round(seconds * FPS)):
        canvas = Image.new("RGB", (1280, 720), (30, 30, 30))
        for k, (x, y) in enumerate(((0, 0), (642, 0), (0, 362), (642, 362))):
            canvas.paste(small[(i + k * 37) % len(small)], (x, y))
        out.append(av.VideoFrame.from_image(canvas).reformat(format="yuv420p"))  # type: ignore[no-untyped-call]
    return out


def _luma(frame: av.VideoFrame) -> Any:
    from PIL import Image

    plane = frame.planes[0]
    rows = bytes(plane)
    stride = plane.line_size
    data = b"".join(rows[r * stride : r * stride + frame.width] for r in range(frame.height))
    return Image.frombytes("L", (frame.width, frame.height), data)


def encoder_presets(presets: list[str], kbit: int, seconds: float) -> dict[str, Any]:
    """Each libx264 preset (with the Encoder's live options) on the composed grid of four
    talking heads at ``kbit``: cores used at 30 fps, bitrate, and quality (PSNR of the
    luma, decoded against what went in)."""
    from PIL import ImageChops, ImageStat

    frames = composed_grid(seconds)
    sources = [_luma(f) for f in frames]
    out: dict[str, Any] = {}
    for preset in presets:
        sink = _Collect()
        encoder = Encoder(EncoderSettings(preset=preset, video_kbit=kbit))
        encoder.add_sink(sink)
        cpu0 = time.process_time()
        for i, frame in enumerate(frames):
            encoder.push_video(frame, i / FPS, block=True)
        encoder.close()
        cores = (time.process_time() - cpu0) / seconds
        decoder = av.CodecContext.create("h264", "r")
        decoded = []
        for data in sink.packets:
            decoded += decoder.decode(av.Packet(data))
        decoded += decoder.decode(None)
        errors = []
        for source, frame in zip(sources, decoded, strict=False):
            diff = ImageChops.difference(source, _luma(frame))
            errors.append(ImageStat.Stat(diff).rms[0] ** 2)
        mse = max(1e-9, statistics.mean(errors))
        out[preset] = {
            "cores": round(cores, 3),
            "kbit_s": round(sum(len(p) for p in sink.packets) * 8 / seconds / 1000),
            "psnr_y_db": round(10 * math.log10(255**2 / mse), 2),
        }
        logger.info("preset %s: %s", preset, out[preset])
    return out


class _Keep:
    """A sink that keeps the encoder's packets, both kinds, for replaying into another."""

    def __init__(self) -> None:
        self.packets: list[tuple[Any, str]] = []

    def open(self, fmt: Any) -> None:
        pass

    def write(self, packet: Any, kind: str) -> None:
        self.packets.append((packet, kind))

    def close(self) -> None:
        pass


def output_costs(seconds: float, settings: EncoderSettings) -> dict[str, float]:
    """What each output adds to the one encode: the encoder's packets of the composed grid
    (and sound) replayed into an ``Mp4Sink`` (the composed recording, its own thread) and an
    ``HlsSink`` (fMP4 segments, on the encoder's thread); cores per second of stream."""
    from webinar.broadcast.hls import HlsSink

    frames = composed_grid(seconds)
    pattern = TestPattern(1280, 720, FPS)
    sounds = [f for f, _t in pattern.audio(seconds)]
    out: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix="webinar-outputbench-"))
    try:
        for name in ("mp4", "hls"):
            keep = _Keep()
            encoder = Encoder(settings)
            encoder.add_sink(keep)
            a = 0
            for i, frame in enumerate(frames):
                while a < len(sounds) and a * 0.02 <= i / FPS:
                    encoder.push_audio(sounds[a], a * 0.02, block=True)
                    a += 1
                encoder.push_video(frame, i / FPS, block=True)
            encoder.close()
            sink: Any = Mp4Sink(tmp / "composed.mp4") if name == "mp4" else HlsSink()
            cpu0 = time.process_time()
            sink.open(encoder.format)
            for packet, kind in keep.packets:
                sink.write(packet, kind)
            sink.close()
            out[f"output_cpu_{name}"] = round((time.process_time() - cpu0) / seconds, 4)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------- forwarding


async def make_subscriber(producer: Producer, index: int, addr: tuple[str, int]) -> Any:
    """A real :class:`~webinar.sfu.consumer.Consumer` on ``producer`` whose sink sends
    through a real SRTP session (AES-128-GCM) and UDP socket (benchmarks/sendpath.py's
    stand-ins for the negotiated DTLS/ICE around it)."""
    from sendpath import sender_tap  # benchmarks/sendpath.py

    from webinar.sfu.consumer import Consumer, ConsumerLayout
    from webinar.sfu.estimator import BandwidthEstimator

    tap = await sender_tap(100_000 + index, 200_000 + index, addr)
    video = producer.kind is MediaKind.VIDEO
    consumer = Consumer(
        producer=producer,
        tap=tap,
        estimator=BandwidthEstimator(),
        on_closed=lambda c, r: None,
    )
    consumer.set_layout(
        ConsumerLayout(
            payload_type=96 if video else 111,
            rtx_payload_type=97 if video else None,
            mid=str(index),
            mid_ext_id=4,
            abs_send_time_ext_id=2 if video else None,
            audio_level_ext_id=None if video else 1,
        )
    )
    producer.add_consumer(consumer)
    consumer.resume()
    return consumer


async def forwarding_run(
    compose: bool, cameras: int, camera: Camera, opus: Any, addrs: list[Any], seconds: float
) -> dict[str, Any]:
    """``cameras`` publishers (a single VP8 stream each) and one microphone forwarded to
    every subscriber (one socket each) for ``seconds``, with or without a compositor on
    the same producers; what the event loop's thread spent, and its lag."""
    start = time.time()
    producers = []
    for n in range(cameras + 1):
        video = n < cameras
        p = Producer(
            kind=MediaKind.VIDEO if video else MediaKind.AUDIO,
            source=MediaSource.CAMERA if video else MediaSource.MICROPHONE,
            mid=str(n),
            tap=_Tap(),  # type: ignore[arg-type]
            batch=True,  # as the server's producers do
        )
        codec = (
            ProducerCodec("video/VP8", 90000, 96, 97)
            if video
            else ProducerCodec("audio/opus", 48000, 111, None, channels=2)
        )
        p.set_codec(codec, 5000 + 10 * n)
        p.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=0, arrived=start)
        producers.append(p)
    consumers = []
    for i, addr in enumerate(addrs):
        for p in producers:
            consumers.append(await make_subscriber(p, i * 10 + len(consumers) % 10, addr))
    clip = camera.clips[-1]
    video_rtp = [rtp_frames(clip.frames, 5000 + 10 * n) for n in range(cameras)]
    compositor = None
    if compose:
        encoder = Encoder(EncoderSettings())
        tmp = tempfile.mkdtemp(prefix="webinar-composebench-")
        encoder.add_sink(Mp4Sink(Path(tmp) / "composed.mp4"))
        compositor = Compositor(encoder)
        for n, p in enumerate(producers):
            compositor.attach(p, feed=f"p{n}", label=f"Presenter {n + 1}")
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:  # how late the loop runs a 5 ms timer
        while not stop.is_set():
            t0 = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - t0 - 0.005)

    seqs = [0] * cameras
    v = a = 0
    wall0 = time.monotonic()

    async def publish(until: float) -> None:
        nonlocal v, a
        while (now := time.monotonic() - wall0) < until:
            while v / FPS <= now:
                for n in range(cameras):
                    stream = video_rtp[n]
                    for packet in stream[v % len(stream)]:
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
                    ssrc=5000 + 10 * cameras,
                    payload=opus.frames[a % len(opus.frames)],
                )
                producers[cameras].on_rtp(packet, 0)
                a += 1
            await asyncio.sleep(0.002)

    warmup = 2.0
    await publish(warmup)  # subscribers and the compositor past their first keyframe
    tick = asyncio.create_task(ticker())
    sent0 = sum(c.stats.packets for c in consumers)
    thread0, cpu0, t0 = time.thread_time(), time.process_time(), time.monotonic()
    await publish(warmup + seconds)
    thread1, cpu1, t1 = time.thread_time(), time.process_time(), time.monotonic()
    sent = sum(c.stats.packets for c in consumers) - sent0
    stop.set()
    await tick
    wall = t1 - t0
    out: dict[str, Any] = {
        "sends": sent,
        "sends_per_core_second": sent / (thread1 - thread0),
        "loop_cpu": (thread1 - thread0) / wall,
        "process_cpu": (cpu1 - cpu0) / wall,
        "loop_lag_max_ms": max(lags) * 1000,
        "loop_lag_p99_ms": sorted(lags)[int(0.99 * (len(lags) - 1))] * 1000,
    }
    if compositor is not None:
        stats = compositor.stats
        out["compositor_video_out"] = stats.video_out
        out["compositor_skipped"] = stats.skipped
        await asyncio.to_thread(compositor.close)
        shutil.rmtree(tmp, ignore_errors=True)
    out["sent_total"] = sum(c.stats.packets for c in consumers)  # warm-up included
    for p in producers:
        p.close()
    return out


async def forwarding_pairs(
    subscribers: int, seconds: float, pairs: int, cameras: int
) -> dict[str, Any]:
    import sendpath  # benchmarks/sendpath.py: the reader processes

    camera = make_camera("talking", True)
    camera = Camera(camera.name, (camera.clips[1],))  # 640x360, 500 kbit/s: a grid's tile
    opus = make_opus_clip(seconds=2)
    ctx = multiprocessing.get_context("spawn")
    queue_addrs, counts, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    half = subscribers // 2
    procs = [
        ctx.Process(target=sendpath.reader, args=(n, False, queue_addrs, counts, stop))
        for n in (half, subscribers - half)
    ]
    for proc in procs:
        proc.start()
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    try:
        groups = [queue_addrs.get(timeout=30) for _ in procs]
        addrs = [tuple(a) for pair in itertools.zip_longest(*groups) for a in pair if a]
        for _ in range(pairs):
            for compose in (False, True):
                result = await forwarding_run(compose, cameras, camera, opus, addrs, seconds)
                logger.info("forwarding, compositor %s: %s", compose, result)
                runs[compose].append(result)
    finally:
        stop.set()
        received = sum(counts.get(timeout=30) for _ in procs)
        for proc in procs:
            proc.join(timeout=10)
    sent_total = sum(r["sent_total"] for r in runs[False] + runs[True])

    def median(compose: bool, key: str) -> float:
        return float(statistics.median(r[key] for r in runs[compose]))

    without = median(False, "sends_per_core_second")
    with_ = median(True, "sends_per_core_second")
    return {
        "sends_per_core_second_without": round(without),
        "sends_per_core_second_with": round(with_),
        "sfu_loss_with_compositor": round(1 - with_ / without, 4),
        "sends_per_core_second_runs": [
            [round(a["sends_per_core_second"]), round(b["sends_per_core_second"])]
            for a, b in zip(runs[False], runs[True], strict=True)
        ],
        "loop_lag_max_ms_without": round(max(r["loop_lag_max_ms"] for r in runs[False]), 1),
        "loop_lag_max_ms_with": round(max(r["loop_lag_max_ms"] for r in runs[True]), 1),
        "loop_lag_p99_ms_without": round(median(False, "loop_lag_p99_ms"), 1),
        "loop_lag_p99_ms_with": round(median(True, "loop_lag_p99_ms"), 1),
        "loop_cpu_without": round(median(False, "loop_cpu"), 3),
        "loop_cpu_with": round(median(True, "loop_cpu"), 3),
        "process_cpu_without": round(median(False, "process_cpu"), 3),
        "process_cpu_with": round(median(True, "process_cpu"), 3),
        "forwarded_pps": round(median(False, "sends") / seconds),
        # what the subscribers' sockets got of every packet sent, all runs (RTCP included)
        "received_ratio": round(received / sent_total, 4) if sent_total else None,
        "fanout_subscribers": subscribers,
        "fanout_cameras": cameras,
    }


def forwarding(subscribers: int, seconds: float, pairs: int, cameras: int = 4) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of the server
        return asyncio.run(forwarding_pairs(subscribers, seconds, pairs, cameras))
    return uvloop.run(forwarding_pairs(subscribers, seconds, pairs, cameras))


def hls_latency(seconds: float, through: str) -> dict[str, Any]:
    """benchmarks/broadcast_hls.py's measure (real Chromium playing the HLS page), by
    default the whole way through the compositor."""
    import broadcast_hls  # benchmarks/broadcast_hls.py

    result = asyncio.run(broadcast_hls.measure(seconds, 1.0, 1280, 720, through))
    return {
        "hls_latency_s": result["hls_latency_s"],
        "hls_latency_p90_s": result["hls_latency_p90_s"],
        "hls_samples": result["samples"],
        "hls_frames_dropped": result["frames_dropped"],
        "hls_through": through,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cameras", default="1,4,7", help="compositor_cpu_N for these N")
    parser.add_argument("--preset", default=EncoderSettings().preset, help="libx264 preset")
    parser.add_argument("--video-kbit", type=int, default=EncoderSettings().video_kbit)
    parser.add_argument("--no-simulcast", action="store_true", help="cameras send one stream")
    parser.add_argument("--top-layer", action="store_true", help="compose the top encoding")
    parser.add_argument("--skip-gradient", action="store_true", help="no ..._gradient key")
    parser.add_argument("--fanout-subscribers", type=int, default=20)
    parser.add_argument("--fanout-cameras", type=int, default=4)
    parser.add_argument("--fanout-seconds", type=float, default=10.0)
    parser.add_argument("--fanout-pairs", type=int, default=3)
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-fanout", action="store_true")
    parser.add_argument("--skip-hls", action="store_true", help="no Chromium (~40 s)")
    parser.add_argument("--hls-seconds", type=float, default=20.0)
    parser.add_argument("--hls-through", choices=("compositor", "encoder"), default="compositor")
    parser.add_argument(
        "--presets",
        default="",
        help="also: these libx264 presets on four heads, e.g. "
        "ultrafast,superfast,veryfast (cores, bitrate, PSNR)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    opus = make_opus_clip(seconds=2)
    settings = EncoderSettings(preset=args.preset, video_kbit=args.video_kbit)
    out: dict[str, Any] = {"benchmark": "broadcast", "seconds": args.seconds}
    if not args.skip_cpu:
        camera = make_camera("talking", not args.no_simulcast)
        for n in (int(c) for c in args.cameras.split(",")):
            cores, info = compositor_cpu(
                n, args.seconds, camera, opus, settings, fit_layers=not args.top_layer
            )
            out[f"compositor_cpu_{n}"] = round(cores, 3)
            out[f"compositor_thread_{n}"] = round(info.get("thread", 0.0), 3)
            out[f"composed_layers_{n}"] = info.get("pinned")
            out[f"composed_kbit_s_{n}"] = info.get("mp4_kbit_s")
            # pictures not composed because the thread fell behind: >0, the machine was busy
            out[f"compositor_skipped_{n}"] = info.get("skipped")
        if not args.skip_gradient:
            hard = make_camera("gradient", False)
            cores, info = compositor_cpu(4, args.seconds, hard, opus, settings)
            out["compositor_cpu_4_gradient"] = round(cores, 3)
            out["compositor_thread_4_gradient"] = round(info.get("thread", 0.0), 3)
            out["compositor_skipped_4_gradient"] = info.get("skipped")
        out["encoder_realtime_factor"] = round(encoder_realtime_factor(args.seconds, settings), 2)
        out.update(output_costs(args.seconds, settings))
        out["preset"] = settings.preset
        out["video_kbit"] = settings.video_kbit
        out["camera"] = camera.name
    if args.presets:
        out["presets"] = encoder_presets(args.presets.split(","), args.video_kbit, args.seconds)
    if not args.skip_hls:
        out.update(hls_latency(args.hls_seconds, args.hls_through))
    if not args.skip_fanout:
        out.update(
            forwarding(
                args.fanout_subscribers, args.fanout_seconds, args.fanout_pairs, args.fanout_cameras
            )
        )
    out["cpus"] = os.cpu_count()
    out["loadavg_1m"] = os.getloadavg()[0]
    out["pyav"] = av.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
