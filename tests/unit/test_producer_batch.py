"""A batching producer forwards one event-loop turn's packets together, consumer by
consumer, at the end of the turn; nothing is lost, reordered or sent after a pause."""

from __future__ import annotations

import asyncio

from aiortc.rtp import RtpPacket

from tests.unit.test_recorder import FakeTap
from webinar.sfu.producer import Producer, ProducerCodec
from webinar.sfu.rtp import MediaPacket
from webinar.sfu.types import MediaKind, MediaSource


class Recording:
    """A consumer that writes down what it is handed, into one shared log."""

    def __init__(self, name: str, log: list[tuple[str, int]], selects_layers: bool = True) -> None:
        self.id = name
        self.log = log
        self.selects_layers = selects_layers

    def forward(self, mp: MediaPacket) -> None:
        self.log.append((self.id, mp.seq))

    def restart(self) -> None:
        pass

    def producer_closed(self) -> None:
        pass


def producer(batch: bool) -> Producer:
    p = Producer(
        kind=MediaKind.AUDIO,
        source=MediaSource.MICROPHONE,
        mid="0",
        tap=FakeTap(),  # type: ignore[arg-type]
        batch=batch,
    )
    p.set_codec(ProducerCodec("audio/opus", 48000, 111, None, channels=2), 5678)
    return p


def packet(seq: int) -> RtpPacket:
    return RtpPacket(
        payload_type=111, sequence_number=seq, timestamp=960 * seq, ssrc=5678, payload=b"\x01" * 40
    )


async def test_one_turn_goes_out_together_consumer_by_consumer() -> None:
    log: list[tuple[str, int]] = []
    p = producer(batch=True)
    p.add_consumer(Recording("a", log))  # type: ignore[arg-type]
    p.add_consumer(Recording("b", log))  # type: ignore[arg-type]
    for seq in (10, 11, 12):
        p.on_rtp(packet(seq), 0)
    assert log == []  # held for the end of this turn
    await asyncio.sleep(0)
    assert [name for name, _ in log] == ["a", "a", "a", "b", "b", "b"]
    assert [seq for name, seq in log if name == "a"] == sorted(s for n, s in log if n == "a")
    assert [seq for name, seq in log if name == "b"] == [seq for name, seq in log if name == "a"]
    for seq in (13, 14):  # the next turn is a batch of its own
        p.on_rtp(packet(seq), 0)
    await asyncio.sleep(0)
    assert len(log) == 10 and log[6][0] == "a" and log[8][0] == "b"


async def test_paused_or_closed_before_the_end_of_the_turn_sends_nothing() -> None:
    log: list[tuple[str, int]] = []
    p = producer(batch=True)
    p.add_consumer(Recording("a", log))  # type: ignore[arg-type]
    p.on_rtp(packet(10), 0)
    p.pause()
    await asyncio.sleep(0)
    assert log == []
    p.resume()
    p.on_rtp(packet(11), 0)
    p.close()
    await asyncio.sleep(0)
    assert log == []


def test_without_batching_every_packet_goes_out_at_once() -> None:
    log: list[tuple[str, int]] = []
    p = producer(batch=False)
    p.add_consumer(Recording("a", log))  # type: ignore[arg-type]
    p.add_consumer(Recording("b", log))  # type: ignore[arg-type]
    p.on_rtp(packet(10), 0)
    assert [name for name, _ in log] == ["a", "b"]
    p.on_rtp(packet(11), 0)
    assert [name for name, _ in log] == ["a", "b", "a", "b"]


def test_consumers_without_a_layer_selector_are_pinned_and_not_listed() -> None:
    """The consumer protocol's ``selects_layers`` tells a subscriber's consumer (asks
    for layers itself) from a recorder's track (pinned to one encoding)."""
    from tests.unit.test_tiers import FakeTap as LayerTap
    from tests.unit.test_tiers import rtp

    p = Producer(
        kind=MediaKind.VIDEO,
        source=MediaSource.CAMERA,
        mid="0",
        tap=LayerTap(),  # type: ignore[arg-type]
        rids=("q", "h", "f"),
    )
    p.set_codec(ProducerCodec("video/VP8", 90000, 96, 97), None)
    log: list[tuple[str, int]] = []
    subscriber = Recording("sub", log)
    recorder = Recording("rec", log, selects_layers=False)
    p.add_consumer(subscriber)  # type: ignore[arg-type]
    p.on_rtp(rtp(222, 1, rid="h"), 0)  # the best encoding flowing: the middle one
    p.add_consumer(recorder)  # type: ignore[arg-type]
    assert p.consumers == (subscriber,)
    assert p.pinned_layers() == {1} and p.pinned_layer("rec") == 1
    p.on_rtp(rtp(222, 2), 0)  # the subscriber listens to no layer until it asks
    p.on_rtp(rtp(111, 1, rid="q"), 0)
    assert [(name, seq & 0xFFFF) for name, seq in log] == [("rec", 2)]
    p.listen(subscriber, (0,))  # type: ignore[arg-type]
    p.on_rtp(rtp(111, 2), 0)
    assert [(name, seq & 0xFFFF) for name, seq in log] == [("rec", 2), ("sub", 2)]
