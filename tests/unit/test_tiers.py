"""Per-subscriber allocation applied to consumers, reports, dynacast; and the
simulcast SDP helpers."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

from webinar.sfu.allocator import Layer, Quality, StreamClass, video_ladder
from webinar.sfu.estimator import BandwidthEstimator, BudgetController, Estimate
from webinar.sfu.simulcast import (
    REPAIRED_RID_URI,
    RID_URI,
    ProducerLayer,
    answer_with_simulcast,
    extensions_with_rid,
    parse_simulcast,
)
from webinar.sfu.tiers import DYNACAST_HOLD, AllocationReport, Dynacast, SubscriberTiers

LADDER = video_ladder([150_000, 500_000, 1_200_000])


@dataclass
class FakeConsumer:
    producer_key: str
    is_audio: bool = False
    allocatable: bool = True
    layers: tuple[Layer, ...] = LADDER
    applied: list[Layer | None] = field(default_factory=list)

    def ladder(self) -> tuple[Layer, ...]:
        return self.layers if not self.is_audio else (Layer(0, 0, 32_000),)

    def set_allocation(self, layer: Layer | None) -> None:
        self.applied.append(layer)


class FixedBudget(BudgetController):
    """The budget without probing, so allocations are easy to predict."""

    def update(self, estimate: Estimate, now: float, wanted_bps: int | None = None) -> int:
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


def test_the_budget_probes_upward_when_more_is_wanted() -> None:
    reports: list[AllocationReport] = []
    tiers = SubscriberTiers(
        BandwidthEstimator(), on_report=reports.append, controller=BudgetController(600_000)
    )
    cams = [FakeConsumer("cam0")]
    tiers.tick(0.0, cams)
    first = cams[0].applied[-1]
    tiers.tick(0.6, cams)
    assert tiers.controller.probing
    assert first is not None and cams[0].applied[-1] is not None
    assert cams[0].applied[-1].bitrate_bps > first.bitrate_bps  # one rung up, on trial


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
    assert list(offers) == ["1"]
    assert offers["1"].rids == ("q", "h", "f")
    assert (offers["1"].rid_ext_id, offers["1"].repaired_rid_ext_id) == (10, 11)


def test_paused_and_unannounced_rids_are_ignored() -> None:
    offer = CHROME_OFFER.replace("a=simulcast:send q;h;f", "a=simulcast:send q;~h;f;x")
    assert parse_simulcast(offer)["1"].rids == ("q", "f")
    single = CHROME_OFFER.replace("a=simulcast:send q;h;f", "a=simulcast:send q")
    assert parse_simulcast(single) == {}


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
            "a=recvonly",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
            "a=mid:2",
            "",
        ]
    )
    out = answer_with_simulcast(answer, offers).split("\r\n")
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
