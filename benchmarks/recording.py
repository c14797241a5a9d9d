#!/usr/bin/env python3
"""Recording benchmark: CPU of recording one ~1 Mbit/s VP8 stream vs CPU of decoding it.

    python benchmarks/recording.py [--seconds 30] [--kbps 1000]

Encodes a test pattern once (640x480, 30 fps, CBR, keyframe every 2 s; not measured),
packetizes it as RTP the way a browser does (VP8 payload descriptor, 1200-byte
packets) and then measures, with the process's CPU clock (all threads):

* **record**: the packets go through a real ``Producer`` into the recorder (the same
  path a live room uses: depacketize, map time by the sender report, queue to the
  writer thread, mux into WebM), until the file is closed;
* **decode**: the same frames decoded by libvpx (what any transcoding recorder or
  compositor would have to do first, before even encoding).

Media time is simulated (no sleeping), so both figures are CPU per ``--seconds`` of
media. Prints exactly one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
from aiortc.rtp import RtpPacket

from webinar.client.media import make_vp8_clip
from webinar.sfu import recorder as rec
from webinar.sfu.producer import Producer, ProducerCodec, SenderReportMapping
from webinar.sfu.rtp import ntp_from_seconds
from webinar.sfu.types import MediaKind, MediaSource

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


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def packetize(frames: list[bytes], seconds: float) -> list[tuple[float, list[RtpPacket]]]:
    out = []
    seq = 1000
    n = int(seconds * FPS)
    for i in range(n):
        frame = frames[i % len(frames)]
        chunks = [frame[j : j + MTU] for j in range(0, len(frame), MTU)]
        packets = []
        for k, chunk in enumerate(chunks):
            desc = bytes([0x90 if k == 0 else 0x80, 0x80, 0x80 | ((i >> 8) & 0x7F), i & 0xFF])
            packets.append(
                RtpPacket(
                    payload_type=96,
                    marker=int(k == len(chunks) - 1),
                    sequence_number=seq & 0xFFFF,
                    timestamp=(i * 3000) & 0xFFFFFFFF,
                    ssrc=4242,
                    payload=desc + chunk,
                )
            )
            seq += 1
        out.append((i / FPS, packets))
    return out


async def measure_record(schedule: list[tuple[float, list[RtpPacket]]], folder: Path) -> float:
    start = time.time()
    clock = _Clock(start)
    real = rec.time
    rec.time = clock  # type: ignore[assignment]
    try:
        producer = Producer(
            kind=MediaKind.VIDEO,
            source=MediaSource.CAMERA,
            mid="0",
            tap=_Tap(),  # type: ignore[arg-type]
        )
        producer.set_codec(ProducerCodec("video/VP8", 90000, 96, None), 4242)
        producer.sender_report = SenderReportMapping(
            ntp=ntp_from_seconds(start), rtp=0, arrived=start
        )
        cpu0 = time.process_time()
        recorder = rec.Recorder(folder)
        recorder.attach(producer, feed="bench")
        for t, packets in schedule:
            clock.now = start + t
            for packet in packets:
                producer.on_rtp(packet, 0)
        result = await recorder.stop()
        cpu = time.process_time() - cpu0
    finally:
        rec.time = real  # type: ignore[assignment]
    if not result.files or result.files[0].streams[0].frames != len(schedule):
        raise SystemExit(f"recording incomplete: {result.files}")
    return cpu


def measure_decode(frames: list[bytes], n: int) -> float:
    decoder = av.CodecContext.create("vp8", "r")
    cpu0 = time.process_time()
    decoded = 0
    for i in range(n):
        for _frame in decoder.decode(av.Packet(frames[i % len(frames)])):
            decoded += 1
    cpu = time.process_time() - cpu0
    if decoded < n - 2:
        raise SystemExit(f"decoded only {decoded} of {n} frames")
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kbps", type=int, default=1000)
    args = parser.parse_args()
    clip = make_vp8_clip(
        width=640, height=480, fps=FPS, seconds=4, bitrate=args.kbps * 1000, keyframe_interval=60
    )
    frames = list(clip.frames)
    schedule = packetize(frames, args.seconds)
    n = len(schedule)
    packets = sum(len(p) for _t, p in schedule)
    media_bytes = sum(len(frames[i % len(frames)]) for i in range(n))
    with tempfile.TemporaryDirectory(prefix="webinar-recbench-") as tmp:
        record = min(asyncio.run(measure_record(schedule, Path(tmp) / f"r{k}")) for k in range(3))
    decode = min(measure_decode(frames, n) for _ in range(3))
    print(
        json.dumps(
            {
                "benchmark": "recording",
                "media_seconds": args.seconds,
                "stream_kbps": round(media_bytes * 8 / args.seconds / 1000),
                "resolution": "640x480",
                "fps": FPS,
                "frames": n,
                "rtp_packets": packets,
                "record_cpu_seconds": round(record, 4),
                "decode_cpu_seconds": round(decode, 4),
                "record_cpu_per_media_second": round(record / args.seconds, 5),
                "decode_cpu_per_media_second": round(decode / args.seconds, 5),
                "record_to_decode_ratio": round(record / decode, 4),
                "python": sys.version.split()[0],
                "pyav": av.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
