#!/usr/bin/env python3
"""What a paused stream costs the ingest (presenters-only mode pauses attendees' streams).

    python benchmarks/paused_ingest.py

Feeds 50,000 Opus packets into ``Producer.on_rtp`` of a paused producer with no consumer
and no pipe, 15 times, and prints one JSON line: ``paused_on_rtp_us``, the best run's
microseconds per packet.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import RtpPacket

from webinar.sfu.producer import Producer, ProducerCodec
from webinar.sfu.types import MediaKind, MediaSource

PACKETS = 50_000
RUNS = 15


class Tap:
    """A publisher's receiver that asks for nothing (the ingest's feedback goes nowhere)."""

    def __init__(self) -> None:
        self.nack = NackGenerator()
        self.remb_filter = None
        self.rid_ssrcs: dict[str, list[int | None]] = {}

    def account(self, *_args: object) -> None:
        pass

    def send_nack(self, *_args: object) -> None:
        pass

    def send_pli(self, *_args: object) -> None:
        pass

    def claim_ssrc(self, *_args: object) -> None:
        pass


def paused_producer() -> Producer:
    p = Producer(kind=MediaKind.AUDIO, source=MediaSource.MICROPHONE, mid="0", tap=Tap())
    p.set_codec(ProducerCodec("audio/opus", 48000, 111, None, 2), 1234)
    p.pause()
    return p


async def main() -> None:
    packets = [
        RtpPacket(
            payload_type=111,
            sequence_number=i & 0xFFFF,
            timestamp=i * 960,
            ssrc=1234,
            payload=b"x" * 120,
        )
        for i in range(PACKETS)
    ]
    runs = []
    for _ in range(RUNS):
        producer = paused_producer()  # fresh: the same sequence numbers again are duplicates
        start = time.perf_counter()
        for i, packet in enumerate(packets):
            producer.on_rtp(packet, i)
        runs.append((time.perf_counter() - start) / PACKETS * 1e6)
    print(json.dumps({"paused_on_rtp_us": round(min(runs), 3)}))


if __name__ == "__main__":
    asyncio.run(main())
