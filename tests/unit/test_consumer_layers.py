"""The consumer on the layered path: taking over from the plain path mid-stream,
dropping temporal layers, pausing for bandwidth and resuming, as the subscriber
sees the bytes (parsed back with aiortc's parser)."""

from __future__ import annotations

import itertools
import time

from aiortc.rtp import RtpPacket

from tests.unit.test_consumer import make_consumer, parse
from tests.unit.test_layers import Encoding
from webinar.sfu.allocator import Layer, video_ladder
from webinar.sfu.consumer import Consumer
from webinar.sfu.estimator import BandwidthEstimator
from webinar.sfu.rtp import MediaPacket
from webinar.sfu.tiers import SubscriberTiers
from webinar.sfu.types import MediaKind
from webinar.sfu.vp8 import scan


def sent(tap: object) -> list[RtpPacket]:
    return [parse(d) for d in tap._sink.rtp]  # type: ignore[attr-defined]


def pictures(enc: Encoding, n: int) -> list[MediaPacket]:
    out: list[MediaPacket] = []
    for _ in range(n):
        out += enc.picture(1.0)
    return out


def check_continuous(packets: list[RtpPacket]) -> None:
    for a, b in itertools.pairwise(packets):
        assert b.sequence_number == (a.sequence_number + 1) & 0xFFFF
        ia, ib = scan(a.payload), scan(b.payload)
        assert ia is not None and ib is not None
        if ib.begin:
            assert ib.picture_id == (ia.picture_id + 1) & 0x7FFF
            assert b.timestamp != a.timestamp


def test_a_lower_temporal_layer_takes_over_without_a_break() -> None:
    consumer, tap, _producer = make_consumer()
    consumer.resume()
    enc = Encoding(layer=0, seq=70000)
    for mp in pictures(enc, 8):  # the plain path: everything
        consumer.forward(mp)
    assert consumer.selector is None and len(tap._sink.rtp) == 16
    consumer.set_allocation(Layer(0, 0, 60_000))  # a quarter of the frame rate
    assert consumer.selector is not None
    for mp in pictures(enc, 16):
        consumer.forward(mp)
    out = sent(tap)
    check_continuous(out)
    after = [scan(p.payload) for p in out[16:]]
    assert {i.temporal_id for i in after if i is not None} == {0}
    assert len(out) == 16 + 8  # 4 of 16 pictures, 2 packets each
    # the history resends what was sent (rewritten PictureIDs included)
    last = out[-1]
    assert consumer.retransmit([last.sequence_number]) == 1
    again = parse(tap._sink.rtp[-1])
    resent = scan(again.payload[2:])
    assert resent is not None
    assert resent.picture_id == scan(last.payload).picture_id  # type: ignore[union-attr]


def test_paused_for_bandwidth_then_resumed_from_a_keyframe() -> None:
    consumer, tap, producer = make_consumer()
    consumer.resume()
    enc = Encoding(layer=0, seq=1000, keyframe_every=8)
    for mp in pictures(enc, 8):
        consumer.forward(mp)
    consumer.set_allocation(None)
    assert consumer.paused and consumer.bandwidth_paused
    for mp in pictures(enc, 4):
        consumer.forward(mp)
    assert len(tap._sink.rtp) == 16
    consumer.want(True)  # the room's wish alone does not override the allocation
    assert consumer.paused
    asked = producer.keyframe_requests
    consumer.set_allocation(Layer(0, 1, 90_000))
    assert not consumer.paused and producer.keyframe_requests > asked
    for mp in pictures(enc, 12):
        consumer.forward(mp)
    out = sent(tap)
    resumed = scan(out[16].payload)
    assert resumed is not None and resumed.keyframe  # started again at a keyframe
    check_continuous(out)


def test_full_frame_rate_single_stream_stays_on_the_plain_path() -> None:
    consumer, _tap, _producer = make_consumer()
    consumer.resume()
    consumer.set_allocation(Layer(0, 2, 800_000))
    assert consumer.selector is None


def test_after_a_resume_nothing_from_before_its_keyframe_is_resent() -> None:
    """NACKs for the last packets before a bandwidth pause, arriving once the stream
    resumed at a keyframe, are not answered: the subscriber's decoder began again at that
    keyframe. (Chromium, handed them, decoded the keyframe and then nothing for 3 s.)"""
    consumer, tap, _producer = make_consumer()
    consumer.resume()
    consumer.set_allocation(Layer(0, 1, 90_000))  # the layered path from the start
    enc = Encoding(layer=0, seq=1000, keyframe_every=8)
    for mp in pictures(enc, 8):
        consumer.forward(mp)
    before = sent(tap)
    assert before and consumer.selector is not None
    last_before = before[-1].sequence_number
    assert consumer.retransmit([last_before]) == 1  # in the epoch: resent
    consumer.set_allocation(None)
    for mp in pictures(enc, 4):
        consumer.forward(mp)
    consumer.set_allocation(Layer(0, 1, 90_000))
    for mp in pictures(enc, 12):
        consumer.forward(mp)
    out = [p for p in sent(tap) if p.payload_type == before[0].payload_type]
    resumed = out.index(next(p for p in out[len(before) :] if scan(p.payload).keyframe))  # type: ignore[union-attr]
    check_continuous(out[: len(before)] + out[resumed:])
    consumer._resent_at = [0.0] * len(consumer._resent_at)  # no once-per-round-trip limit here
    assert consumer.history_packet(last_before) is None
    assert consumer.retransmit([last_before, (last_before - 1) & 0xFFFF]) == 0
    first_after = out[resumed].sequence_number
    assert consumer.history_packet(first_after) is not None
    assert consumer.retransmit([first_after, out[-1].sequence_number]) == 2


def two_cameras_of_one_subscriber() -> tuple[list[Consumer], list[object], SubscriberTiers]:
    """Two cameras' consumers of one subscriber, waiting for their allocation as the
    subscribe transport makes them, with an allocation that runs when one asks (the
    router's). The start budget affords one video (600 kbit/s: the "audio + 1 video" row)."""
    tiers = SubscriberTiers(BandwidthEstimator())
    consumers: list[Consumer] = []
    taps: list[object] = []

    def allocate() -> None:
        tiers.urgent()
        tiers.tick(time.monotonic(), consumers)

    for name in ("pr_alice", "pr_bob"):
        consumer, tap, producer = make_consumer(allocate=allocate)
        producer.id = name
        producer.ladder = lambda _now: video_ladder([150_000, 500_000])  # type: ignore[attr-defined]
        consumers.append(consumer)
        taps.append(tap)
    return consumers, taps, tiers


def test_a_camera_the_first_allocation_does_not_afford_is_never_shown() -> None:
    """A new subscriber's second camera forwarded its first frames and was then paused
    by the first allocation: the browser counted the pause as one freeze of 4-5 s (the
    start phase of every tiers run with 5 % loss). Video waits for its allocation now."""
    (alice, bob), (alice_tap, bob_tap), tiers = two_cameras_of_one_subscriber()
    for consumer in (alice, bob):
        consumer.resume()  # negotiated and connected: the transport lets it go
        assert consumer.paused and consumer.bandwidth_paused  # ... not before its allocation
    enc = {id(alice): Encoding(layer=0, seq=1000), id(bob): Encoding(layer=0, seq=5000)}
    for consumer in (alice, bob):
        for mp in pictures(enc[id(consumer)], 4):
            consumer.forward(mp)
    assert sent(alice_tap) == [] and sent(bob_tap) == []  # nothing before the allocation
    alice._ask_allocation()  # what the transport does once the answer laid them out
    assert tiers.last is not None and tiers.last.tier.videos == 1
    assert not alice.paused and bob.paused and bob.bandwidth_paused
    for consumer in (alice, bob):
        enc[id(consumer)].force_key = True
        for mp in pictures(enc[id(consumer)], 8):
            consumer.forward(mp)
    assert len(sent(alice_tap)) == 16
    assert sent(bob_tap) == []  # never shown, so never paused in the subscriber's eyes
    # once the budget affords him, Bob starts at a keyframe
    tiers.controller.budget_bps = 1_500_000
    tiers.controller._limited = True  # (a measured budget, not the start guess)
    tiers.urgent()
    tiers.tick(time.monotonic(), [alice, bob])
    assert not bob.paused
    enc[id(bob)].force_key = True
    for mp in pictures(enc[id(bob)], 2):
        bob.forward(mp)
    first = scan(sent(bob_tap)[0].payload)
    assert first is not None and first.keyframe


def test_an_allocation_before_the_connection_leaves_the_start_to_the_transport() -> None:
    """Allocated while ICE and DTLS still connect, a consumer does not start yet: the
    keyframe it would ask for would be dropped, and the next request waits a second. The
    transport's resume once connected starts it."""
    (alice, _bob), (alice_tap, _), _tiers = two_cameras_of_one_subscriber()
    alice._tap.sender.transport.state = "connecting"  # type: ignore[attr-defined]
    alice._ask_allocation()
    assert alice.paused and not alice.bandwidth_paused
    alice._tap.sender.transport.state = "connected"  # type: ignore[attr-defined]
    producer = alice.producer
    asked = producer.keyframe_requests  # type: ignore[attr-defined]
    alice.resume()
    assert not alice.paused and producer.keyframe_requests > asked  # type: ignore[attr-defined]
    for mp in pictures(Encoding(layer=0, seq=1000), 2):
        alice.forward(mp)
    assert len(sent(alice_tap)) == 4


def test_wanting_a_never_allocated_video_asks_for_its_allocation() -> None:
    asked: list[int] = []
    consumer, _tap, _producer = make_consumer(allocate=lambda: asked.append(1))
    consumer.want(False)
    assert asked == []
    consumer.want(True)
    assert asked == [1] and consumer.paused  # the allocation (here: none) decides
    consumer.set_allocation(Layer(0, 2, 500_000))
    assert not consumer.paused
    consumer.want(False)
    consumer.want(True)
    assert asked == [1]  # allocated once: from then on the rounds decide


def test_audio_never_waits_for_an_allocation() -> None:
    consumer, _tap, _producer = make_consumer(MediaKind.AUDIO, allocate=lambda: None)
    consumer.resume()
    assert not consumer.paused and not consumer.bandwidth_paused


def test_an_allocation_while_paused_asks_for_no_keyframe_its_resume_asks() -> None:
    """Allocated before the connection is up, a consumer asked for its layer's keyframe
    at once: it came into nothing, and the request its resume made once connected was
    held for the layer's keyframe interval (joins took ~1.2 s to the first frame)."""
    (alice, _bob), _taps, _tiers = two_cameras_of_one_subscriber()
    alice._tap.sender.transport.state = "connecting"  # type: ignore[attr-defined]
    producer = alice.producer
    producer.simulcast = object()  # type: ignore[attr-defined]  # (any: a layered producer)
    asked = producer.keyframe_requests  # type: ignore[attr-defined]
    alice.set_allocation(Layer(1, 2, 500_000))
    assert alice.selector is not None and alice.selector.target_spatial == 1
    assert producer.keyframe_requests == asked  # type: ignore[attr-defined]
    alice._tap.sender.transport.state = "connected"  # type: ignore[attr-defined]
    alice.resume()
    assert producer.keyframe_requests == asked + 1  # type: ignore[attr-defined]
