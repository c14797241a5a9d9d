"""A player's slot changes producer (WHEP): the next consumer on the m-line continues the
last one's sequence numbers, timestamps, PictureIDs and sender-report counters, so the
subscriber sees one stream; checked as the subscriber parses the bytes."""

from __future__ import annotations

import dataclasses

from tests.unit.test_consumer import FakeProducer, FakeTap, parse
from tests.unit.test_consumer_layers import check_continuous, pictures, sent
from tests.unit.test_layers import Encoding
from webinar.sfu.consumer import Consumer, ConsumerLayout, Handover
from webinar.sfu.estimator import BandwidthEstimator
from webinar.sfu.rtp import MediaPacket
from webinar.sfu.types import MediaKind
from webinar.sfu.vp8 import scan

VIDEO = ConsumerLayout(
    payload_type=97,
    rtx_payload_type=98,
    mid="3",
    mid_ext_id=1,
    abs_send_time_ext_id=3,
    audio_level_ext_id=None,
)
AUDIO = dataclasses.replace(
    VIDEO, payload_type=111, rtx_payload_type=None, abs_send_time_ext_id=None, audio_level_ext_id=2
)


def on_tap(
    tap: FakeTap, kind: MediaKind, handover: Handover | None, producer_id: str
) -> tuple[Consumer, FakeProducer]:
    producer = FakeProducer(kind)
    producer.id = producer_id
    consumer = Consumer(
        producer=producer,  # type: ignore[arg-type]
        tap=tap,  # type: ignore[arg-type]
        estimator=BandwidthEstimator(),
        on_closed=lambda _c, _r: None,
        handover=handover,
    )
    consumer.set_layout(VIDEO if kind is MediaKind.VIDEO else AUDIO)
    consumer.resume()
    return consumer, producer


def opus(seq: int, ts: int, arrival: float) -> MediaPacket:
    return MediaPacket(
        seq=seq,
        timestamp=ts,
        marker=0,
        payload=b"\xfc" + bytes(40),
        keyframe=False,
        audio_level=30,
        arrival=arrival,
        abs_send_time=b"\x00\x00\x00",
    )


def test_audio_continues_numbering_and_clock_across_producers() -> None:
    tap = FakeTap()
    first, _ = on_tap(tap, MediaKind.AUDIO, None, "pr_a")
    for i in range(10):
        first.forward(opus(500 + i, 90_000 + 960 * i, 10.0 + 0.02 * i))
    handover = first.handover()
    first.close()
    assert handover.packets == 10 and handover.last_ts is not None
    # another speaker: unrelated sequence numbers and clock, 0.5 s later
    second, _ = on_tap(tap, MediaKind.AUDIO, handover, "pr_b")
    for i in range(5):
        second.forward(opus(40_000 + i, 7_000_000 + 960 * i, 10.68 + 0.02 * i))
    out = [parse(d, MediaKind.AUDIO) for d in tap._sink.rtp]
    assert len(out) == 15
    seqs = [p.sequence_number for p in out]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(15)]
    gap = (out[10].timestamp - out[9].timestamp) & 0xFFFFFFFF
    assert abs(gap - 24_000) <= 1  # the time that passed, at Opus's 48 kHz
    assert (out[11].timestamp - out[10].timestamp) & 0xFFFFFFFF == 960
    assert {p.ssrc for p in out} == {tap.ssrc}
    assert second.stats.packets == 15  # sender reports keep counting up
    assert second.stats.bytes == 15 * 41


def test_video_switches_at_a_keyframe_with_continuous_picture_ids() -> None:
    tap = FakeTap()
    first, _ = on_tap(tap, MediaKind.VIDEO, None, "pr_camera")
    camera = Encoding(layer=0, seq=1000, pid=300, ts=50_000)
    for mp in pictures(camera, 6):
        first.forward(mp)
    handover = first.handover()
    first.close()
    second, producer = on_tap(tap, MediaKind.VIDEO, handover, "pr_screen")
    assert second.selector is not None  # PictureIDs are rewritten from the first packet
    asked = producer.keyframe_requests
    assert asked >= 1  # the new picture starts at a keyframe, asked for at once
    screen = Encoding(layer=0, seq=9000, pid=20_000, ts=4_000_000, frame=5)
    for mp in pictures(screen, 3):  # not keyframes: the subscriber could not decode them
        second.forward(mp)
    assert len(tap._sink.rtp) == 12
    screen.force_key = True
    for mp in pictures(screen, 4):
        second.forward(mp)
    out = sent(tap)
    assert len(out) == 12 + 8
    check_continuous(out)  # sequence numbers and PictureIDs as one stream
    first_new = scan(out[12].payload)
    assert first_new is not None and first_new.keyframe
    assert ((out[12].timestamp - out[11].timestamp) & 0xFFFFFFFF) < 0x80000000  # forward


def test_a_consumer_that_never_sent_passes_its_handover_on() -> None:
    tap = FakeTap()
    first, _ = on_tap(tap, MediaKind.AUDIO, None, "pr_a")
    for i in range(3):
        first.forward(opus(10 + i, 1000 + 960 * i, 1.0 + 0.02 * i))
    handover = first.handover()
    first.close()
    idle, _ = on_tap(tap, MediaKind.AUDIO, handover, "pr_b")  # shown, but nothing came
    passed = idle.handover()
    idle.close()
    assert passed.highest_out == handover.highest_out and passed.last_ts == handover.last_ts
    third, _ = on_tap(tap, MediaKind.AUDIO, passed, "pr_c")
    third.forward(opus(77, 123, 2.0))
    out = [parse(d, MediaKind.AUDIO) for d in tap._sink.rtp]
    assert out[3].sequence_number == (out[2].sequence_number + 1) & 0xFFFF


def test_without_the_mid_extension_packets_carry_no_mid() -> None:
    tap = FakeTap()
    producer = FakeProducer(MediaKind.AUDIO)
    consumer = Consumer(
        producer=producer,  # type: ignore[arg-type]
        tap=tap,  # type: ignore[arg-type]
        estimator=BandwidthEstimator(),
        on_closed=lambda _c, _r: None,
    )
    consumer.set_layout(dataclasses.replace(AUDIO, mid_ext_id=None))
    consumer.resume()
    consumer.forward(opus(1, 1000, 1.0))
    packet = parse(tap._sink.rtp[0], MediaKind.AUDIO)
    assert packet.extensions.mid is None
    assert packet.extensions.audio_level == (False, 30)
    assert packet.payload == b"\xfc" + bytes(40)


def test_a_switch_keeps_the_old_picture_until_the_new_keyframe() -> None:
    tap = FakeTap()
    first, _ = on_tap(tap, MediaKind.VIDEO, None, "pr_camera")
    camera = Encoding(layer=0, seq=1000, pid=300, ts=50_000)
    for mp in pictures(camera, 4):
        first.forward(mp)
    taken: list[bool] = []

    def take_over() -> Handover:
        taken.append(True)
        handover = first.handover()
        first.close()
        return handover

    producer = FakeProducer(MediaKind.VIDEO)
    producer.id = "pr_screen"
    second = Consumer(
        producer=producer,  # type: ignore[arg-type]
        tap=tap,  # type: ignore[arg-type]
        estimator=BandwidthEstimator(),
        on_closed=lambda _c, _r: None,
        take_over=take_over,
    )
    second.set_layout(VIDEO)
    second.resume()
    screen = Encoding(layer=0, seq=9000, pid=20_000, ts=4_000_000, frame=5)
    for _ in range(3):  # the new picture has no keyframe yet: the camera goes on
        for mp in screen.picture(1.0):
            second.forward(mp)
        for mp in camera.picture(1.0):
            first.forward(mp)
    assert taken == [] and len(tap._sink.rtp) == 8 + 6
    screen.force_key = True
    for mp in pictures(screen, 3):
        second.forward(mp)
    for mp in camera.picture(1.0):
        first.forward(mp)  # stopped: nothing more from the camera
    assert taken == [True] and first.closed
    out = sent(tap)
    assert len(out) == 14 + 6
    check_continuous(out)  # one stream: the camera's pictures, then the screen's
    new = scan(out[14].payload)
    assert new is not None and new.keyframe
