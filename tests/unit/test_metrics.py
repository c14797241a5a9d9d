"""The media totals (retired + live) and the /metrics collector, without a network: totals
that only grow when objects close, each family with its type, the process's own series."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.metrics_support import cumulative, value
from tests.unit.test_producer_batch import packet, producer
from webinar import __version__
from webinar.http.metrics import INTERACTION_COUNTERS, Metrics, Sources
from webinar.sfu import MediaTotals, native
from webinar.sfu.types import CloseReason, ConsumerStats


@dataclass(eq=False)
class FakeConsumer:
    """What the totals read of a subscriber's consumer: its stats."""

    stats: ConsumerStats = field(default_factory=ConsumerStats)


def sent(consumer: FakeConsumer, packets: int, size: int = 1000) -> None:
    consumer.stats.packets += packets
    consumer.stats.bytes += packets * size


def test_a_closed_consumer_stays_counted_once() -> None:
    totals = MediaTotals()
    a, b = FakeConsumer(), FakeConsumer()
    totals.consumer_opened(a)  # type: ignore[arg-type]
    totals.consumer_opened(b)  # type: ignore[arg-type]
    sent(a, 10)
    sent(b, 5)
    a.stats.nacks, a.stats.plis, a.stats.firs, a.stats.retransmitted = 2, 1, 1, 3
    assert totals.live_consumers == 2
    first = totals.read()
    assert (first.packets_forwarded, first.bytes_forwarded) == (15, 15_000)
    assert (first.nacks, first.keyframe_requests, first.retransmitted) == (2, 2, 3)
    totals.consumer_closed(a)  # a leaves: what it was sent stays in the total
    totals.consumer_closed(a)  # told twice: counted once
    sent(a, 100)  # a closed consumer's later counts are not looked at
    sent(b, 1)
    second = totals.read()
    assert totals.live_consumers == 1
    assert second.packets_forwarded == 16 and second.nacks == 2
    totals.consumer_closed(b)
    assert totals.read().packets_forwarded == 16 and totals.live_consumers == 0
    totals.consumer_closed(FakeConsumer())  # type: ignore[arg-type]  # never opened: nothing
    assert totals.read().packets_forwarded == 16


async def test_a_producer_counts_until_it_closes_and_after() -> None:
    totals = MediaTotals()
    p = producer(batch=False)
    totals.producer_opened(p)
    totals.producer_opened(p)  # the same copy in a second router: counted once
    for seq in range(1, 4):
        p.on_rtp(packet(seq), 0)
    assert totals.live_producers == 1
    assert (totals.read().packets_received, totals.read().bytes_received) == (3, 120)
    p.stats.keyframe_requests_by_layer[:] = [2, 0, 5]  # PLIs sent to its publisher
    assert totals.read().publisher_keyframe_requests == [2, 0, 5]
    p.close(CloseReason.UNPUBLISHED)
    assert totals.live_producers == 0
    assert totals.read().packets_received == 3
    assert totals.read().publisher_keyframe_requests == [2, 0, 5]
    q = producer(batch=False)
    q.close(CloseReason.UNPUBLISHED)
    totals.producer_opened(q)  # closed already: never live
    assert totals.live_producers == 0


def test_allocation_runs_are_observed_when_asked() -> None:
    totals = MediaTotals()
    totals.allocation_ran(0.0)  # nobody listens: nothing happens
    seen: list[float] = []
    totals.on_allocation = seen.append
    totals.allocation_ran(time.perf_counter())
    assert len(seen) == 1 and 0 <= seen[0] < 1


@dataclass
class Traffic:
    received: int = 0
    sent: int = 0


@dataclass
class Hooks:
    counts: dict[str, int] = field(
        default_factory=lambda: {"delivered": 4, "failed": 1, "retried": 2}
    )
    dropped: int = 3


def test_the_collector_yields_every_family_with_its_type() -> None:
    metrics = Metrics(version="9.8.7")
    traffic = Traffic(received=7, sent=11)
    metrics.sources = Sources(
        connections=lambda: 5, traffic=lambda: traffic, webhooks=lambda: Hooks()
    )
    metrics.count_error("bad-json")
    metrics.count_error("bad-json")
    metrics.count_interaction("chat_messages")
    metrics.joined("attendee", 0.03)
    metrics.joined("presenter", 0.2)
    metrics.chat_delivered(0.0004)
    consumer = FakeConsumer()
    metrics.media.consumer_opened(consumer)  # type: ignore[arg-type]
    sent(consumer, 42)
    metrics.media.allocation_ran(0.0)  # a long run (since perf_counter's zero)
    text = metrics.render()
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    for name in (
        "webinar_rtp_packets_received",
        "webinar_rtp_bytes_received",
        "webinar_rtp_packets_forwarded",
        "webinar_rtp_bytes_forwarded",
        "webinar_nacks",
        "webinar_retransmissions",
        "webinar_keyframe_requests",
        "webinar_publisher_keyframe_requests",
        "webinar_signalling_errors",
        "webinar_signalling_messages",
        "webinar_joins",
        "webinar_webhook_attempts",
        "webinar_webhook_dropped",
        "webinar_native_fanout_datagrams",
        "process_cpu_seconds",
        *(f"webinar_{kind}" for kind in INTERACTION_COUNTERS),
    ):
        assert types.get(name) == "counter", (name, types.get(name))
    for name in ("webinar_join_seconds", "webinar_chat_delivery_seconds"):
        assert types[name] == "histogram"
    assert types["webinar_allocation_seconds"] == "histogram"
    for name in (
        "webinar_rooms",
        "webinar_participants",
        "webinar_connections",
        "webinar_producers",
        "webinar_consumers",
        "webinar_event_loop_lag_seconds",
        "webinar_build_info",
        "webinar_native_fanout_enabled",
        "process_resident_memory_bytes",
        "process_open_fds",
    ):
        assert types[name] == "gauge", name
    assert "webinar_pipe_packets" not in types  # one process: no media pipes
    assert not any(name.endswith("_created") for name in types)

    assert value(text, "webinar_build_info", version="9.8.7") == 1
    assert value(text, "webinar_rtp_packets_forwarded_total") == 42
    assert value(text, "webinar_consumers") == 1
    assert value(text, "webinar_connections") == 5
    assert value(text, "webinar_signalling_errors_total", code="bad-json") == 2
    assert value(text, "webinar_signalling_messages_total", direction="in") == 7
    assert value(text, "webinar_signalling_messages_total", direction="out") == 11
    assert value(text, "webinar_joins_total", role="attendee") == 1
    assert value(text, "webinar_joins_total", role="host") == 0  # there from the start
    assert value(text, "webinar_join_seconds_count") == 2
    assert value(text, "webinar_join_seconds_bucket", le="0.05") == 1
    assert value(text, "webinar_join_seconds_sum") == pytest.approx(0.23)
    assert value(text, "webinar_chat_delivery_seconds_bucket", le="0.0005") == 1
    assert value(text, "webinar_allocation_seconds_count") == 1
    assert value(text, "webinar_chat_messages_total") == 1
    assert value(text, "webinar_webhook_attempts_total", outcome="gave_up") == 1
    assert value(text, "webinar_webhook_dropped_total") == 3
    assert value(text, "webinar_subscriber_bandwidth_bps_gcount") == 0  # no room
    assert value(text, "webinar_rooms") == 0
    assert value(text, "webinar_native_fanout_enabled") == int(native.forward() is not None)
    for outcome in ("sent", "dropped", "refused", "protect_failed"):
        assert value(text, "webinar_native_fanout_datagrams_total", outcome=outcome) >= 0
    assert value(text, "process_open_fds") > 0
    assert value(text, "process_resident_memory_bytes") > 1_000_000

    # a second reading after the consumer left: nothing cumulative fell
    metrics.media.consumer_closed(consumer)  # type: ignore[arg-type]
    metrics.joined("attendee", 0.01)
    later = metrics.render()
    assert value(later, "webinar_consumers") == 0
    before, after = cumulative(text), cumulative(later)
    assert ("webinar_join_seconds_count", ()) in before  # histograms are looked at too
    for key, was in before.items():
        assert after[key] >= was, key


def test_each_process_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.joined("attendee", 0.01)
    assert value(one.render(), "webinar_join_seconds_count") == 1
    assert value(two.render(), "webinar_join_seconds_count") == 0
    assert value(two.render(), "webinar_build_info", version=__version__) == 1


def test_an_unknown_interaction_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="no interaction counter"):
        Metrics().count_interaction("chat_mesages")


@dataclass
class PipeTotals:
    packets: int = 0
    wire_bytes: int = 0
    retransmitted: int = 0
    lost: int = 0
    unauthenticated: int = 0
    refused: int = 0
    cpu_ns: int = 0
    ingest_ns: int = 0


class FakePipes:
    """What the collector reads of a worker's media pipes."""

    def packets(self) -> dict[str, int]:
        return {"out": 12, "in": 0}

    def totals(self) -> dict[tuple[str, str], PipeTotals]:
        keys = [(d, s) for d in ("out", "in") for s in ("node", "worker")]
        out = {key: PipeTotals() for key in keys}
        out["out", "node"] = PipeTotals(packets=12, wire_bytes=12_000, cpu_ns=1_500_000_000)
        out["in", "worker"] = PipeTotals(unauthenticated=2)
        return out

    def open_pipes(self) -> dict[tuple[str, str], int]:
        return {("out", "node"): 1}


def test_media_pipes_are_counted_with_several_workers() -> None:
    metrics = Metrics()
    metrics.sources = Sources(pipes=lambda: FakePipes())
    text = metrics.render()
    assert value(text, "webinar_pipe_packets_total", direction="out") == 12
    assert value(text, "webinar_pipe_bytes_total", direction="out", scope="node") == 12_000
    assert value(text, "webinar_pipe_cpu_seconds_total", direction="out", scope="node") == 1.5
    assert value(text, "webinar_pipe_refused_total", scope="worker", reason="unauthenticated") == 2
    assert value(text, "webinar_pipe_open", direction="out", scope="node") == 1
    assert value(text, "webinar_pipe_open", direction="in", scope="worker") == 0
