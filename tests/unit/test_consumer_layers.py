"""The consumer on the layered path: taking over from the plain path mid-stream,
dropping temporal layers, pausing for bandwidth and resuming, as the subscriber
sees the bytes (parsed back with aiortc's parser)."""

from __future__ import annotations

import itertools

from aiortc.rtp import RtpPacket

from tests.unit.test_consumer import make_consumer, parse
from tests.unit.test_layers import Encoding
from webinar.sfu.allocator import Layer
from webinar.sfu.rtp import MediaPacket
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
