"""Layer switching: what the subscriber receives stays one continuous VP8 stream
(sequence numbers, timestamps, PictureID, TL0PICIDX) across temporal and spatial
switches, duplicates, reordering and wrap-around."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from webinar.sfu import layers
from webinar.sfu.layers import LayerSelector
from webinar.sfu.rtp import MediaPacket
from webinar.sfu.vp8 import build_descriptor, scan

PATTERN = (0, 2, 1, 2)  # L1T3 as Chrome sends it
SYNC = (False, True, True, False)  # the first TL2 and the TL1 only reference TL0


@dataclass
class Encoding:
    """One simulcast encoding of a fake publisher: L1T3, 2 packets per picture."""

    layer: int
    seq: int = 100  # unwrapped, as the producer hands it on
    ts: int = 1000
    pid: int = 10
    tl0: int = 0
    wide: bool = True
    frame: int = 0
    keyframe_every: int = 1_000_000
    force_key: bool = False
    ts_step: int = 3000

    def picture(self, now: float) -> list[MediaPacket]:
        index = self.frame % len(PATTERN)
        key = self.force_key or self.frame % self.keyframe_every == 0
        self.force_key = False
        if key:
            index = 0
        tid = PATTERN[index]
        if tid == 0 and self.frame:
            self.tl0 = (self.tl0 + 1) & 0xFF
        packets = []
        for part in range(2):
            payload = build_descriptor(
                begin=part == 0,
                picture_id=self.pid & (0x7FFF if self.wide else 0x7F),
                wide=self.wide,
                tl0picidx=self.tl0,
                temporal_id=tid,
                layer_sync=SYNC[index] and not key,
                keyframe=key and part == 0,
                body=bytes([0x00, 0x10 + self.layer, part, self.frame & 0xFF]),
            )
            info = scan(payload)
            packets.append(
                MediaPacket(
                    seq=self.seq,
                    timestamp=self.ts & 0xFFFFFFFF,
                    marker=int(part == 1),
                    payload=payload,
                    keyframe=bool(info and info.keyframe),
                    audio_level=-1,
                    arrival=now,
                    abs_send_time=b"\x00\x00\x00",
                    layer=self.layer,
                    vp8=info,
                )
            )
            self.seq += 1
        self.ts += self.ts_step
        self.pid += 1
        self.frame += 1
        return packets


@dataclass
class Out:
    seq: int
    ts: int
    pid: int
    tl0: int
    tid: int
    keyframe: bool
    begin: bool
    layer: int


@dataclass
class Harness:
    selector: LayerSelector = field(init=False)
    asked: list[int] = field(default_factory=list)
    listening: list[tuple[int, ...]] = field(default_factory=list)
    out: list[Out] = field(default_factory=list)
    now: float = 0.0

    def __post_init__(self) -> None:
        self.selector = LayerSelector(
            request_keyframe=self.asked.append,
            on_listen=self.listening.append,
            clock=lambda: self.now,
        )

    def feed(self, packets: list[MediaPacket]) -> None:
        for mp in packets:
            payload = self.selector.process(mp)
            if payload is None:
                continue
            info = scan(payload)
            assert info is not None
            self.out.append(
                Out(
                    self.selector.out_seq,
                    self.selector.out_ts,
                    info.picture_id,
                    info.tl0picidx,
                    info.temporal_id,
                    info.keyframe,
                    info.begin,
                    payload[-3] - 0x10,
                )
            )

    def run(self, encodings: list[Encoding], pictures: int) -> None:
        for _ in range(pictures):
            self.now += 1 / 30
            for enc in encodings:
                self.feed(enc.picture(self.now))


def assert_continuous(out: list[Out], *, pid_mod: int = 1 << 15) -> None:
    """What a decoder needs: no sequence gap, time never runs backwards, PictureID
    +1 per picture, TL0PICIDX +1 per base-layer picture, references present."""
    assert out, "nothing was forwarded"
    for a, b in itertools.pairwise(out):
        assert b.seq == (a.seq + 1) & 0xFFFF, f"sequence gap {a} -> {b}"
        dts = (b.ts - a.ts) & 0xFFFFFFFF
        assert dts < 1 << 31, f"timestamp went backwards {a} -> {b}"
        if b.begin:
            assert dts > 0, f"a new picture needs a new timestamp {a} -> {b}"
            assert b.pid == (a.pid + 1) % pid_mod, f"PictureID not continuous {a} -> {b}"
            expected_tl0 = (a.tl0 + 1) & 0xFF if b.tid == 0 else a.tl0
            assert b.tl0 == expected_tl0, f"TL0PICIDX not continuous {a} -> {b}"
        else:
            assert (b.pid, b.tl0, b.ts) == (a.pid, a.tl0, a.ts), f"picture split {a} -> {b}"


def tids(out: list[Out]) -> list[int]:
    return [o.tid for o in out if o.begin]


def test_waits_for_a_keyframe_then_forwards_everything_unchanged() -> None:
    h = Harness()
    enc = Encoding(layer=0, keyframe_every=8, frame=1)  # starts mid-GOP
    h.run([enc], 20)
    assert h.out[0].keyframe
    assert len(h.out) == 2 * 13  # frames 8..20
    assert_continuous(h.out)
    # first start keeps the publisher's PictureID and TL0PICIDX: no rewrite needed
    assert h.out[0].pid == 10 + 7


@pytest.mark.parametrize(
    ("target", "expected_pattern"),
    [(2, [0, 2, 1, 2]), (1, [0, 1]), (0, [0])],
)
def test_temporal_target_drops_higher_layers_without_gaps(
    target: int, expected_pattern: list[int]
) -> None:
    h = Harness()
    h.selector.set_target(0, target)
    enc = Encoding(layer=0, keyframe_every=1000)
    h.run([enc], 40)
    assert tids(h.out)[:8] == (expected_pattern * 8)[:8]
    assert_continuous(h.out)
    fps_share = len(tids(h.out)) / 40
    assert fps_share == pytest.approx({2: 1, 1: 0.5, 0: 0.25}[target])


def test_temporal_down_is_immediate_and_up_waits_for_sync() -> None:
    h = Harness()
    enc = Encoding(layer=0)
    h.run([enc], 8)  # all layers
    h.selector.set_target(0, 0)
    h.run([enc], 8)
    assert set(tids(h.out)[-2:]) == {0}
    h.selector.set_target(0, 2)
    before = len(h.out)
    h.run([enc], 12)
    up = tids(h.out[before:])
    # goes 0 -> 1 at the TL1 sync picture, then 2 at the next TL2 sync picture
    assert up[:4] == [0, 1, 0, 2]
    assert up[-4:] == [0, 2, 1, 2]
    assert_continuous(h.out)
    assert h.asked == []  # temporal switches need no keyframe


def test_spatial_switch_waits_for_the_targets_keyframe() -> None:
    h = Harness()
    low = Encoding(layer=0, seq=5000, ts=77, pid=300, tl0=40)
    high = Encoding(layer=2, seq=60000, ts=4_000_000_000, pid=32700, tl0=250)
    h.run([low, high], 10)
    assert {o.layer for o in h.out} == {0}
    h.selector.set_target(2, 2)
    assert h.asked == [2]
    assert h.listening[-1] == (0, 2)
    h.run([low, high], 5)
    assert {o.layer for o in h.out} == {0}  # still low: no keyframe on the high layer yet
    h.now += 1.5
    h.selector.housekeeping()
    assert h.asked == [2, 2]  # asked again
    high.force_key = True
    h.run([low, high], 10)
    layers = [o.layer for o in h.out]
    switch = layers.index(2)
    assert set(layers[switch:]) == {2} and h.out[switch].keyframe
    assert h.listening[-1] == (2,)
    assert_continuous(h.out)
    # and back down, continuing where the high layer left off (wrap-around included)
    h.selector.set_target(0, 1)
    low.force_key = True
    h.run([low, high], 12)
    assert h.out[-1].layer == 0
    assert_continuous(h.out)
    assert h.selector.switches == 3


def test_first_picture_may_come_from_a_lower_layer_than_the_target() -> None:
    """A new subscriber aims at a layer that is not running yet (dynacast turned it off):
    it starts at the keyframe of a lower one and moves up at the target's first keyframe;
    when the target's keyframe is in the same burst, it moves up within that picture."""
    h = Harness()
    h.selector.set_target(1, 2)
    assert h.listening[-1] == (0, 1)  # before the first picture: every layer up to the target
    low = Encoding(layer=0, seq=5000, ts=77, pid=300, tl0=40)
    mid = Encoding(layer=1, seq=9000, ts=9_000_000, pid=1200, tl0=9)
    h.run([low], 4)  # only the lowest runs
    assert {o.layer for o in h.out} == {0} and h.out[0].keyframe
    assert h.listening[-1] == (0, 1)  # started low, still waiting for the target
    mid.force_key = True  # the target starts (with a keyframe)
    h.run([low, mid], 6)
    layers = [o.layer for o in h.out]
    switch = layers.index(1)
    assert set(layers[switch:]) == {1} and h.out[switch].keyframe
    assert h.listening[-1] == (1,)
    assert_continuous(h.out)
    # both keyframes in one burst (the publisher answers a PLI on every layer): the
    # target's follows the lower one's at once
    h2 = Harness()
    h2.selector.set_target(1, 2)
    h2.run([Encoding(layer=0), Encoding(layer=1, seq=7000, ts=123_456)], 3)
    assert [o.layer for o in h2.out][:2] == [0, 0] and h2.out[2].layer == 1
    assert {o.layer for o in h2.out[2:]} == {1}
    assert_continuous(h2.out)


def test_sequence_picture_id_and_tl0_wrap_around(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layers, "_random_seq_start", lambda: (1 << 16) + 65520)
    h = Harness()
    h.selector.set_target(0, 1)
    enc = Encoding(layer=0, seq=(1 << 16) + 65500, ts=0xFFFFF000, pid=0x7FF0, tl0=250)
    h.run([enc], 60)
    seqs = [o.seq for o in h.out]
    assert min(seqs) < 100 and max(seqs) > 65000  # wrapped
    pids = [o.pid for o in h.out]
    assert min(pids) < 100 and max(pids) > 32000
    assert {o.tl0 for o in h.out} >= {255, 0}
    assert_continuous(h.out)


def test_seven_bit_picture_ids_wrap_at_128() -> None:
    h = Harness()
    h.selector.set_target(0, 0)
    enc = Encoding(layer=0, pid=120, wide=False)
    h.run([enc], 80)
    assert_continuous(h.out, pid_mod=128)
    assert max(o.pid for o in h.out) <= 127


def test_duplicates_are_dropped_and_reordered_packets_keep_their_numbers() -> None:
    h = Harness()
    h.selector.set_target(0, 1)
    enc = Encoding(layer=0)
    h.run([enc], 4)
    pictures = [enc.picture(h.now) for _ in range(8)]
    flat = [p for pic in pictures for p in pic]
    # swap two packets of one forwarded picture, repeat some (RTX probes), and a
    # late duplicate of a dropped TL2 packet
    flat[4], flat[5] = flat[5], flat[4]
    flat += [flat[0], flat[4], flat[2]]
    h.feed(flat)
    assert h.selector.duplicates >= 2
    by_seq = sorted(h.out, key=lambda o: o.seq if o.seq > 1000 else o.seq + 65536)
    assert_continuous(by_seq)
    assert len({o.seq for o in h.out}) == len(h.out)  # no number sent twice


def test_lost_packet_leaves_a_hole_that_its_retransmission_fills() -> None:
    h = Harness()
    h.selector.set_target(0, 1)
    enc = Encoding(layer=0)
    h.run([enc], 4)
    a, b, c = enc.picture(h.now), enc.picture(h.now), enc.picture(h.now)  # TL0, TL2 (dropped), TL1
    lost = c[0]
    h.feed(a + b + c[1:])
    h.feed([lost])  # the retransmission arrives late
    out = sorted(h.out, key=lambda o: o.seq)
    assert_continuous(out)


def test_restart_after_pause_continues_the_numbering() -> None:
    h = Harness()
    enc = Encoding(layer=0, keyframe_every=6)
    h.run([enc], 10)
    h.selector.restart()
    assert h.asked == [0]
    h.run([enc], 10)
    assert_continuous(h.out)
    assert h.selector.switches == 2


def test_a_stream_without_picture_ids_is_forwarded_whole() -> None:
    h = Harness()
    enc = Encoding(layer=0)
    mps = enc.picture(0.0)
    for mp in mps:
        mp.payload = b"\x10" + mp.payload[-4:]  # no extension bits at all
        mp.vp8 = scan(mp.payload)
    h.feed(mps)
    assert len(h.out) == 2


@pytest.mark.parametrize("cut", [0, 1])  # take over at a picture start, or mid-picture
def test_taking_over_a_plain_stream_keeps_it_continuous(cut: int) -> None:
    h = Harness()
    enc = Encoding(layer=0)
    seq_offset = 7000
    ts_offset = 123
    plain: list[MediaPacket] = []
    for _ in range(6):
        plain += enc.picture(0.0)
    split = enc.picture(0.0)
    plain += split[:cut]
    for mp in plain:  # what the consumer's plain path sent: numbers shifted, payload as is
        info = scan(mp.payload)
        assert info is not None
        h.out.append(
            Out(
                (mp.seq + seq_offset) & 0xFFFF,
                (mp.timestamp + ts_offset) & 0xFFFFFFFF,
                info.picture_id,
                info.tl0picidx,
                info.temporal_id,
                info.keyframe,
                info.begin,
                0,
            )
        )
    last = plain[-1]
    h.selector.set_target(0, 0)
    h.selector.continue_from(
        highest_out=last.seq + seq_offset,
        seq_offset=seq_offset,
        base_seq=plain[0].seq,
        ts_offset=ts_offset,
        last_ts=last.timestamp + ts_offset,
        last_arrival=0.0,
    )
    h.feed(split[cut:])
    h.run([enc], 20)
    assert_continuous(h.out)
    assert h.selector.dropped_temporal > 0


def test_a_switch_down_halves_the_frame_rate_until_the_lower_keyframe() -> None:
    """The budget fell: until the lower layer's keyframe comes, the higher layer goes on at
    TL0+TL1 (no keyframe needed), then the lower one at the full target."""
    h = Harness()
    low = Encoding(layer=0, seq=5000, ts=77, pid=300, tl0=40)
    high = Encoding(layer=2, seq=60000, ts=4_000_000_000, pid=32700, tl0=250)
    h.selector.set_target(2, 2)
    high.force_key = True
    h.run([low, high], 8)  # the first picture may be the low layer's, then the high one
    assert {o.layer for o in h.out[-8:]} == {2} and 2 in tids(h.out[-8:])
    h.selector.set_target(0, 2)
    before = len(h.out)
    h.run([low, high], 8)  # no keyframe on the low layer yet
    waiting = h.out[before:]
    assert {o.layer for o in waiting} == {2}
    assert set(tids(waiting)) == {0, 1}  # half the frame rate
    h.now += layers.STEP_DOWN_TL0_AFTER  # the keyframe is slow: a quarter of it
    before = len(h.out)
    h.run([low, high], 8)
    assert {o.layer for o in h.out[before:]} == {2} and set(tids(h.out[before:])) == {0}
    low.force_key = True
    before = len(h.out)
    h.run([low, high], 8)
    after = h.out[before:]
    assert {o.layer for o in after} == {0} and 2 in tids(after)  # the target's rate
    assert_continuous(h.out)
