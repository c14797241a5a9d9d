"""Per-subscriber allocation applied to consumers, reports, dynacast; and the
simulcast SDP helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

from webinar.sfu.allocator import Allocation, Demand, Layer, Quality, StreamClass, video_ladder
from webinar.sfu.estimator import BandwidthEstimator, BudgetController, Estimate
from webinar.sfu.simulcast import (
    FLOWING_TIMEOUT,
    REPAIRED_RID_URI,
    RID_URI,
    STALLED_AFTER,
    ProducerLayer,
    answer_with_simulcast,
    extensions_with_rid,
    parse_simulcast,
)
from webinar.sfu.tiers import (
    ALLOCATE_INTERVAL,
    DYNACAST_HOLD,
    AllocationReport,
    Dynacast,
    SubscriberTiers,
)

LADDER = video_ladder([150_000, 500_000, 1_200_000])


@dataclass
class FakeConsumer:
    producer_key: str
    is_audio: bool = False
    allocatable: bool = True
    layers: tuple[Layer, ...] = LADDER
    applied: list[Layer | None] = field(default_factory=list)
    sent_bytes: int = 0
    padding: int = 0
    switching: bool = False

    def send_padding(self, nbytes: int, now: float) -> int:
        self.padding += nbytes
        return nbytes

    def ladder(self) -> tuple[Layer, ...]:
        return self.layers if not self.is_audio else (Layer(0, 0, 32_000),)

    def set_allocation(self, layer: Layer | None) -> None:
        self.applied.append(layer)


class FixedBudget(BudgetController):
    """The budget without probing, so allocations are easy to predict."""

    def update(
        self,
        estimate: Estimate,
        now: float,
        wanted_bps: int | None = None,
        sending_bps: int | None = None,
        allocated_bps: int | None = None,
        video_flowing: bool = False,
    ) -> int:
        return self.budget_bps


def make(budget: int) -> tuple[SubscriberTiers, list[AllocationReport]]:
    reports: list[AllocationReport] = []
    controller = FixedBudget(start_bps=budget)
    tiers = SubscriberTiers(BandwidthEstimator(), on_report=reports.append, controller=controller)
    return tiers, reports


def test_allocation_is_applied_and_reported() -> None:
    tiers, reports = make(600_000)
    cams = [FakeConsumer(f"cam{i}") for i in range(3)]
    mic = FakeConsumer("mic", is_audio=True)
    tiers.set_priority("cam2", StreamClass.CAMERA, 0)  # the active speaker
    tiers.tick(0.0, [*cams, mic])
    assert cams[2].applied[-1] is not None
    assert cams[0].applied[-1] is None and cams[1].applied[-1] is None
    assert mic.applied[-1] == Layer(0, 0, 32_000)
    (report,) = reports
    assert report.tier.videos == 1
    assert [(s.producer_id, s.paused) for s in report.streams] == [
        ("cam0", True),
        ("cam1", True),
        ("cam2", False),
    ]


def test_reports_only_when_something_changed() -> None:
    tiers, reports = make(600_000)
    cams = [FakeConsumer(f"cam{i}") for i in range(2)]
    tiers.tick(0.0, cams)
    tiers.tick(0.6, cams)
    tiers.tick(1.2, cams)
    assert len(reports) == 1
    tiers.set_priority("cam1", StreamClass.CAMERA, 0)  # the speaker changed
    tiers.tick(1.3, cams)  # at once, not waiting for the interval
    assert len(reports) == 2
    assert [s.producer_id for s in reports[-1].streams if not s.paused] == ["cam1"]
    tiers.set_quality(Quality.DATA_SAVER)
    tiers.tick(1.4, cams)
    assert reports[-1].quality is Quality.DATA_SAVER
    assert cams[1].applied[-1] == Layer(0, 1, 90_000)


def test_the_budget_probes_upward_with_padding_then_steps_up() -> None:
    reports: list[AllocationReport] = []
    tiers = SubscriberTiers(
        BandwidthEstimator(), on_report=reports.append, controller=BudgetController(1_000_000)
    )
    cams = [FakeConsumer("cam0")]
    tiers.tick(0.0, cams)
    first = cams[0].applied[-1]
    assert first is not None and first.spatial == 1
    cams[0].sent_bytes += 40_000  # the budget is being used: 530 kbit/s
    tiers.estimator.on_remb(700_000, 0.5)  # and the subscriber reports its estimate
    tiers.tick(0.6, cams)
    assert tiers.controller.probing
    assert cams[0].applied[-1] == first  # the picture does not change on a guess ...
    padded = tiers.pad(0.6, cams, 0.25)
    assert padded > 0 and cams[0].padding == padded  # ... padding tests the path
    t = 0.6
    for _ in range(40):  # a few probes, each a bounded step
        t += 0.5
        cams[0].sent_bytes += 40_000
        tiers.estimator.on_remb(1_500_000, t)
        tiers.tick(t, cams)
        if cams[0].applied[-1] != first:
            break
    assert cams[0].applied[-1] == LADDER[-1]  # the probes held: one rung up
    assert tiers.pad(t, cams, 0.25) == 0


def test_consumers_not_negotiated_yet_are_left_alone() -> None:
    tiers, _ = make(3_000_000)
    pending = FakeConsumer("cam0", allocatable=False)
    tiers.tick(0.0, [pending])
    assert pending.applied == []


def test_dynacast_turns_layers_on_at_once_and_off_after_a_while() -> None:
    d = Dynacast(3, now=0.0)
    assert d.update(1.0, [0]) is None  # everything runs at first
    assert d.update(DYNACAST_HOLD + 0.1, [0]) == [True, False, False]
    assert d.update(DYNACAST_HOLD + 0.2, [2]) == [True, False, True]
    assert d.update(DYNACAST_HOLD + 1.0, [1]) == [True, True, True]
    assert d.update(2 * DYNACAST_HOLD + 0.3, []) == [True, True, False]
    assert d.update(3 * DYNACAST_HOLD + 2, []) == [True, False, False]


CHROME_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:0",
        "a=sendonly",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "a=mid:1",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "a=sendonly",
        "a=rid:q send",
        "a=rid:h send",
        "a=rid:f send",
        "a=simulcast:send q;h;f",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:2",
        "a=sendonly",
        "",
    ]
)


def test_simulcast_offer_is_read_per_mid() -> None:
    offers = parse_simulcast(CHROME_OFFER)
    assert list(offers) == ["1"]  # mid 2 offers neither simulcast nor the RID extension
    assert offers["1"].rids == ("q", "h", "f")
    assert (offers["1"].rid_ext_id, offers["1"].repaired_rid_ext_id) == (10, 11)


def test_paused_and_unannounced_rids_are_ignored() -> None:
    offer = CHROME_OFFER.replace("a=simulcast:send q;h;f", "a=simulcast:send q;~h;f;x")
    assert parse_simulcast(offer)["1"].rids == ("q", "f")
    single = CHROME_OFFER.replace("a=simulcast:send q;h;f", "a=simulcast:send q")
    assert parse_simulcast(single)["1"].rids == ("q",)  # the RID extension is still taken
    plain = single.replace("a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n", "")
    assert parse_simulcast(plain) == {}


def test_answer_gets_rid_and_simulcast_lines() -> None:
    offers = parse_simulcast(CHROME_OFFER)
    answer = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=mid:0",
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
            "a=mid:1",
            "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            "a=rtpmap:96 VP8/90000",
            "a=rtpmap:97 rtx/90000",
            "a=fmtp:97 apt=96",
            "a=recvonly",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=mid:2",
            "",
        ]
    )
    out = answer_with_simulcast(answer, offers).split("\r\n")
    # the publisher's estimate starts high enough for the top encoding at once
    assert out[out.index("a=rtpmap:96 VP8/90000") + 1] == "a=fmtp:96 x-google-start-bitrate=1200"
    i = out.index("a=recvonly")
    assert out[i + 1 : i + 5] == [
        "a=rid:q recv",
        "a=rid:h recv",
        "a=rid:f recv",
        "a=simulcast:recv q;h;f",
    ]
    assert out[i + 5] == "m=video 9 UDP/TLS/RTP/SAVPF 96"
    assert out.count("a=simulcast:recv q;h;f") == 1
    assert out[-1] == ""


def test_no_simulcast_in_the_answer_without_the_rid_extension() -> None:
    offers = parse_simulcast(CHROME_OFFER)
    answer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n"
    assert "simulcast" not in answer_with_simulcast(answer, offers)


def test_rid_extensions_are_added_with_the_offers_ids() -> None:
    offers = parse_simulcast(CHROME_OFFER)
    common = [RTCRtpHeaderExtensionParameters(id=4, uri="urn:ietf:params:rtp-hdrext:sdes:mid")]
    ext = extensions_with_rid(common, offers["1"])
    assert [(e.id, e.uri) for e in ext] == [
        (4, "urn:ietf:params:rtp-hdrext:sdes:mid"),
        (10, RID_URI),
        (11, REPAIRED_RID_URI),
    ]


def test_layer_bitrate_is_measured_and_nominal_until_then() -> None:
    layer = ProducerLayer(index=1, rid="h")
    assert layer.cost_bps() == 500_000
    layer.measure(100.0)
    for i in range(10):
        layer.bytes += 40_000
        layer.packets += 40
        layer.last_arrival = 100.0 + (i + 1)
        layer.measure(100.0 + (i + 1))
    assert 300_000 < layer.bitrate_bps < 340_000
    assert layer.cost_bps() == layer.bitrate_bps
    layer.measure(120.0)  # nothing for a while
    assert layer.bitrate_bps == 0 and not layer.flowing(120.0)


# --------------------------------------------------------------------------- ingress

from aiortc.rtp import RtpPacket  # noqa: E402

from webinar.sfu.producer import ProducerStats  # noqa: E402
from webinar.sfu.rtp import MediaPacket  # noqa: E402
from webinar.sfu.simulcast import SimulcastIngress  # noqa: E402
from webinar.sfu.vp8 import build_descriptor  # noqa: E402

VP8, RTX = 96, 97


class FakeTap:
    def __init__(self) -> None:
        self.plis: list[int] = []
        self.nacks: list[tuple[int, list[int]]] = []
        self.accounted = 0
        self.rid_ssrcs: dict[str, list[int | None]] = {}
        self.claimed: list[int] = []  # SSRCs whose RTCP (sender reports) must reach us

    def claim_ssrc(self, ssrc: int) -> None:
        self.claimed.append(ssrc)

    def account(self, packet: RtpPacket, arrival_time_ms: int, clock_rate: int) -> None:
        self.accounted += 1

    def send_nack(self, media_ssrc: int, lost: set[int]) -> None:
        self.nacks.append((media_ssrc, sorted(lost)))

    def send_pli(self, media_ssrc: int) -> None:
        self.plis.append(media_ssrc)


@dataclass
class Listener:
    id: str
    got: list[MediaPacket] = field(default_factory=list)
    restarts: int = 0

    def forward(self, mp: MediaPacket) -> None:
        self.got.append(mp)

    def restart(self) -> None:
        self.restarts += 1


def rtp(ssrc: int, seq: int, *, rid: str | None = None, rrid: str | None = None,
        pt: int = VP8, payload: bytes | None = None, key: bool = False) -> RtpPacket:  # fmt: skip
    p = RtpPacket(payload_type=pt, sequence_number=seq, timestamp=seq * 3000, ssrc=ssrc)
    p.payload = payload if payload is not None else build_descriptor(picture_id=seq, keyframe=key)
    p.extensions.rtp_stream_id = rid
    p.extensions.repaired_rtp_stream_id = rrid
    return p


def make_ingress() -> tuple[SimulcastIngress, FakeTap, ProducerStats]:
    tap, stats = FakeTap(), ProducerStats()
    return SimulcastIngress(("q", "h", "f"), tap, stats), tap, stats  # type: ignore[arg-type]


def feed(ing: SimulcastIngress, packet: RtpPacket) -> None:
    ing.on_rtp(packet, 0, VP8, RTX, 90000, False)


def test_ingress_learns_rids_and_hands_each_layer_to_its_listeners() -> None:
    ing, tap, stats = make_ingress()
    low, high, both = Listener("low"), Listener("high"), Listener("both")
    ing.listen(low, (0,))
    ing.listen(high, (2,))
    ing.listen(both, (0, 2))
    feed(ing, rtp(111, 1))  # no RID yet: cannot tell the layer
    assert tap.accounted == 0
    feed(ing, rtp(111, 2, rid="q", key=True))
    feed(ing, rtp(333, 50, rid="f"))
    feed(ing, rtp(111, 3))  # the RID extension is only in the first packets
    feed(ing, rtp(333, 51))
    feed(ing, rtp(222, 7, rid="h"))
    assert [(m.layer, m.seq & 0xFFFF) for m in low.got] == [(0, 2), (0, 3)]
    assert [(m.layer, m.seq & 0xFFFF) for m in high.got] == [(2, 50), (2, 51)]
    assert len(both.got) == 4
    assert low.got[0].keyframe and ing.temporal_layers == 1
    assert stats.packets == 5
    assert tap.claimed == [111, 333, 222]  # their sender reports are routed to us
    # RTX of the high layer, known by its repaired RID; duplicates are dropped
    feed(ing, rtp(444, 900, rrid="f", pt=RTX, payload=b"\x00\x34" + build_descriptor()))
    assert [m.seq & 0xFFFF for m in high.got] == [50, 51, 52]
    feed(ing, rtp(333, 52))
    assert len(high.got) == 3 and stats.duplicates == 1
    # a gap on one layer NACKs that layer's SSRC
    feed(ing, rtp(222, 10))
    assert tap.nacks == [(222, [8, 9])]


def test_ingress_keyframe_requests_go_to_the_layer_and_are_throttled() -> None:
    ing, tap, _ = make_ingress()
    assert not ing.request_keyframe(1)  # SSRC not known yet
    feed(ing, rtp(222, 1, rid="h"))
    assert ing.request_keyframe(1) and not ing.request_keyframe(1)
    assert tap.plis == [222]


def test_a_keyframe_request_inside_the_interval_is_held_until_it_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import webinar.sfu.simulcast as simulcast
    from tests.unit.test_recorder import FakeClock

    clock = FakeClock(1000.0)
    monkeypatch.setattr(simulcast, "time", clock)
    ing, tap, stats = make_ingress()
    feed(ing, rtp(222, 1, rid="h"))
    assert ing.request_keyframe(1)  # the first after a quiet second: at once
    feed(ing, rtp(222, 2, rid="h", key=True))  # the keyframe it asked for
    clock.now += 0.1
    # A recorder attaches just after that keyframe: the layer had its PLI this second (and
    # Chrome would ignore one within 300 ms anyway), so ours waits, and goes with the first
    # packet of the layer once the layer's second is over.
    assert not ing.request_keyframe(1)
    feed(ing, rtp(222, 3))
    clock.now += simulcast.KEYFRAME_REQUEST_INTERVAL  # the publisher's window is over ...
    feed(ing, rtp(222, 4))
    assert tap.plis == [222]  # ... the layer's is not
    clock.now = 1000.001 + simulcast.LAYER_KEYFRAME_INTERVAL
    feed(ing, rtp(222, 5))
    assert tap.plis == [222, 222]
    feed(ing, rtp(222, 6))
    assert tap.plis == [222, 222]  # once
    # a held request that a keyframe answers first is not sent
    clock.now += 0.1
    assert not ing.request_keyframe(1)
    feed(ing, rtp(222, 7, key=True))
    clock.now += simulcast.LAYER_KEYFRAME_INTERVAL
    feed(ing, rtp(222, 8))
    assert tap.plis == [222, 222]
    # The 0.32 s window is the publisher's, not a layer's (Chrome ignores a request for any
    # encoding inside it): another layer's request waits too, for its own packets.
    feed(ing, rtp(111, 1, rid="q"))
    assert ing.request_keyframe(1)
    assert not ing.request_keyframe(0)
    feed(ing, rtp(111, 2))
    assert tap.plis == [222, 222, 222]
    clock.now += simulcast.KEYFRAME_REQUEST_INTERVAL + 0.001
    feed(ing, rtp(222, 9))  # another layer's packet does not send it
    feed(ing, rtp(111, 3))
    assert tap.plis == [222, 222, 222, 111]
    assert stats.keyframe_requests == 4 and stats.keyframe_requests_by_layer == [1, 3]


def test_a_new_ssrc_for_a_rid_restarts_its_listeners() -> None:
    ing, _, _ = make_ingress()
    listener = Listener("x")
    ing.listen(listener, (0,))
    feed(ing, rtp(111, 1, rid="q"))
    feed(ing, rtp(999, 40000, rid="q"))
    assert listener.restarts == 1 and len(listener.got) == 2


def test_ladder_leaves_out_layers_that_should_run_but_do_not() -> None:
    ing, _, _ = make_ingress()
    start = ing.layers[0].enabled_at
    assert [r.spatial for r in ing.ladder(start + 1)] == [0, 0, 0, 1, 2]  # all starting
    feed(ing, rtp(111, 1, rid="q", payload=build_descriptor(temporal_id=0, keyframe=True)))
    assert ing.temporal_layers == 3
    now = ing.layers[0].last_arrival
    assert [r.spatial for r in ing.ladder(now + 5)] == []  # nothing flows any more
    ing.layers[0].last_arrival = now + 5
    ing.set_enabled([True, False, True], now + 5)
    # q flows, h was turned off (can be turned on again), f should run but does not
    assert [r.spatial for r in ing.ladder(now + 5)] == [0, 0, 0, 1]


def test_ladder_leaves_out_a_layer_the_publisher_stopped_while_others_go_on() -> None:
    """A browser that stops its top encoding (a busy CPU) while the others go on: after
    STALLED_AFTER it is out of the ladder (the subscribers shown it move down), well
    before FLOWING_TIMEOUT; back when its packets are. A still picture that quiets every
    encoding, and a layer turned on again (dynacast) that has not sent since, are no
    stalls."""
    ing, _, _ = make_ingress()
    feed(ing, rtp(111, 1, rid="q", key=True))
    feed(ing, rtp(222, 1, rid="h", key=True))
    feed(ing, rtp(333, 1, rid="f", key=True))
    q, h, f = ing.layers
    t0 = f.last_arrival
    assert [r.spatial for r in ing.ladder(t0)][-1] == 2
    # all quiet for 1 s (a still picture, or the whole stream held up): f stays
    assert [r.spatial for r in ing.ladder(t0 + 1.0)][-1] == 2
    # q and h go on, f does not: out after STALLED_AFTER, not before
    assert STALLED_AFTER < FLOWING_TIMEOUT
    q.last_arrival = h.last_arrival = t0 + STALLED_AFTER - 0.1
    assert [r.spatial for r in ing.ladder(t0 + STALLED_AFTER - 0.1)][-1] == 2
    q.last_arrival = h.last_arrival = t0 + STALLED_AFTER + 0.01
    assert [r.spatial for r in ing.ladder(t0 + STALLED_AFTER + 0.01)][-1] == 1
    # f comes back
    feed(ing, rtp(333, 2, rid="f"))
    now = f.last_arrival
    assert [r.spatial for r in ing.ladder(now)][-1] == 2
    # dynacast turned f off, then on again: quiet since, but starting, not stalled
    ing.set_enabled([True, True, False], now + 1)
    ing.set_enabled([True, True, True], now + 2)
    q.last_arrival = h.last_arrival = now + 2.5
    assert [r.spatial for r in ing.ladder(now + 2.5)][-1] == 2


def test_remb_floor_lets_encodings_start_but_yields_to_a_falling_estimate() -> None:
    from webinar.sfu.simulcast import REMB_FLOOR_HOLD, RembFloor

    now = [0.0]
    floor = RembFloor(1_850_000, clock=lambda: now[0])
    assert floor(400_000) == 1_850_000  # capped by what arrives: say what is needed
    assert floor(420_000) == 1_850_000
    assert floor(2_500_000) == 2_500_000  # more than the floor passes unchanged
    assert floor(900_000) == 900_000  # falling: the uplink queues, pass it on
    now[0] = REMB_FLOOR_HOLD / 2
    assert floor(950_000) == 950_000  # still held off
    now[0] = REMB_FLOOR_HOLD + 0.1
    assert floor(960_000) == 1_850_000


def test_a_later_producer_on_the_m_line_knows_the_ssrcs() -> None:
    ing, tap, stats = make_ingress()
    feed(ing, rtp(111, 1, rid="q"))
    feed(ing, rtp(444, 9, rrid="q", pt=RTX, payload=b"\x00\x01" + build_descriptor()))
    # unpublished, published again on the same transceiver: no RID extension any more
    again = SimulcastIngress(("q", "h", "f"), tap, stats)  # type: ignore[arg-type]
    listener = Listener("x")
    again.listen(listener, (0,))
    feed(again, rtp(111, 500))
    assert [m.seq & 0xFFFF for m in listener.got] == [500]
    assert again.layers[0].rtx_ssrc == 444


def count_allocations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The budgets SubscriberTiers.tick works an allocation out at, from now on."""
    from webinar.sfu import tiers as tiers_module

    calls: list[int] = []
    real = tiers_module.allocate

    def counting(
        budget: int, streams: Sequence[Demand], quality: Quality = Quality.AUTO
    ) -> Allocation:
        calls.append(budget)
        return real(budget, streams, quality)

    monkeypatch.setattr(tiers_module, "allocate", counting)
    return calls


def test_a_complete_allocation_is_reused_only_for_the_same_streams_and_no_smaller_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tick skips allocate() when the last allocation gave every stream its best rung and
    the budget did not fall; any change of the streams allocates again."""
    tiers = SubscriberTiers(BandwidthEstimator())
    single = video_ladder([300_000], 1)
    consumers = [FakeConsumer("cam", layers=single), FakeConsumer("mic", is_audio=True)]
    calls = count_allocations(monkeypatch)
    now = 100.0
    for _ in range(4):
        tiers.tick(now, consumers)
        now += ALLOCATE_INTERVAL
    assert tiers.last is not None and tiers.last.next_bps is None
    assert len(calls) == 1  # the first allocation, reused three times
    assert consumers[0].applied == [single[0]] * 4  # still applied every round
    consumers.append(FakeConsumer("cam2", layers=single))
    tiers.tick(now, consumers)
    assert len(calls) == 2  # a new stream: allocated again


def test_a_complete_allocation_is_reused_down_to_the_lowest_budget_it_was_complete_at(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    controller = FixedBudget(start_bps=2_000_000)
    tiers = SubscriberTiers(BandwidthEstimator(), controller=controller)
    single = video_ladder([300_000], 1)
    consumers = [FakeConsumer("cam", layers=single), FakeConsumer("mic", is_audio=True)]
    now = 100.0
    calls = count_allocations(monkeypatch)
    for budget in (2_000_000, 1_000_000, 1_500_000, 1_000_000, 900_000, 3_000_000):
        controller.budget_bps = budget
        tiers.tick(now, consumers)
        now += ALLOCATE_INTERVAL
    # 2.0 M and 1.0 M worked out; 1.5 M and 1.0 M reused; 0.9 M below: worked out, reused above
    assert calls == [2_000_000, 1_000_000, 900_000]
    assert consumers[0].applied == [single[0]] * 6


class Draining(FixedBudget):
    """A fixed budget that drains the queue until ``drain_at``."""

    drain_at = -1e9

    def draining(self, now: float) -> bool:
        return now < self.drain_at

    @property
    def drain_until(self) -> float:
        return self.drain_at


def test_while_the_queue_drains_video_goes_at_half_the_frame_rate_then_back() -> None:
    """Right after a congestion cut the allocation keeps every video at temporal layer 1
    (TL0+TL1, no keyframe needed) until the drain ends; the round at its end restores the
    full frame rate. Audio is left alone, and what the subscriber is told is unchanged."""
    controller = Draining(start_bps=2_000_000)
    reports: list[AllocationReport] = []
    tiers = SubscriberTiers(BandwidthEstimator(), on_report=reports.append, controller=controller)
    cam = FakeConsumer("cam")
    mic = FakeConsumer("mic", is_audio=True)
    tiers.tick(0.0, [cam, mic])
    full = cam.applied[-1]
    assert full is not None and full.temporal == 2
    controller.drain_at = 1.3
    tiers.urgent()  # the cut's alarm allocates at once
    tiers.tick(1.0, [cam, mic])
    drained = cam.applied[-1]
    assert drained == Layer(full.spatial, 1, full.bitrate_bps)
    assert mic.applied[-1] == Layer(0, 0, 32_000)
    assert reports[-1].streams[0].temporal == 2  # the report shows the allocation
    assert tiers.tick(1.2, [cam, mic]) is None and cam.applied[-1] == drained  # not yet due
    tiers.tick(1.3, [cam, mic])  # its end: the next round, earlier than ALLOCATE_INTERVAL
    assert cam.applied[-1] == full
