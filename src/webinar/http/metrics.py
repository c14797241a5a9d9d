"""``/metrics``: Prometheus series of one process, with ``prometheus-client``.

Each process (the single server, or each worker) has its own
:class:`~prometheus_client.CollectorRegistry` (:attr:`Metrics.registry`) holding:

* a collector of this module (:class:`WebinarCollector`) that reads, at scrape time, the
  counters kept as plain ints where things happen: the media totals
  (:mod:`webinar.sfu.totals`: retired objects' final counts + live objects' counts, so a
  ``*_total`` never falls when people leave), signalling errors by code, messages,
  joins, interaction, webhooks and media pipes; and the gauges of what is live (rooms,
  participants, connections, producers, consumers, event-loop lag);
* histograms observed when an event ends (a join, a chat message's fan-out, a bandwidth
  allocation run), never per packet;
* ``webinar_build_info{version}``, and the process's CPU, memory, file descriptors, Python
  and GC series (``process_*``, ``python_*``).

Nothing here runs per packet: a ``prometheus_client`` ``Counter.inc()`` takes a lock, too
slow for the forwarding path, so the hot path keeps plain ints and this collector turns
them into ``CounterMetricFamily`` samples when Prometheus asks.

With several workers each worker's text goes to Redis and any worker's ``/metrics`` merges
them with a ``worker`` label (:func:`webinar.cluster.registry.merge_metrics`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector

from webinar import __version__
from webinar.rooms.manager import RoomManager
from webinar.sfu import MediaTotals, native
from webinar.tasks import stop_task

# ``*_created`` series (the Unix time each counter and histogram was made) add a gauge per
# family that no dashboard here reads; a restart already shows in process_start_time_seconds.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: What ``/metrics`` answers with: the Prometheus text format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

BANDWIDTH_BUCKETS = (
    128_000,
    256_000,
    512_000,
    1_024_000,
    2_048_000,
    3_072_000,
    4_096_000,
    6_144_000,
)
#: Seconds from a ``join`` message to the ``joined`` reply.
JOIN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Seconds to hand one chat message to every connection of a room on this process.
CHAT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
#: Seconds of one subscriber's bandwidth allocation run.
ALLOCATION_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
)
ROLES = ("host", "presenter", "attendee")

#: Interaction counters (name -> help), counted as things happen; a kind not listed
#: here is refused, so a typo cannot make a new metric.
INTERACTION_COUNTERS = {
    "chat_messages": "Chat messages posted.",
    "questions": "Questions asked (or chat messages marked as questions).",
    "question_votes": "Question upvotes given (a repeated vote does not count).",
    "poll_answers": "Answers to poll and test questions accepted (a re-answer counts again).",
    "cta_clicks": "Call-to-action clicks counted (within the per-attendee bound).",
    "reactions": "Emoji reactions accepted (within the per-person limit).",
    "caption_lines": "Final live caption lines kept (interim ones are not counted).",
}


class Traffic(Protocol):
    """Signalling messages since the start (``webinar.signalling.session.SignallingTraffic``)."""

    @property
    def received(self) -> int: ...

    @property
    def sent(self) -> int: ...


class WebhookCounts(Protocol):
    """What ``webinar.webhooks.service.Webhooks`` counts."""

    @property
    def counts(self) -> Mapping[str, int]: ...

    @property
    def dropped(self) -> int: ...


class PipeTotals(Protocol):
    """One (direction, scope)'s counters of a worker's pipes (``Pipes.totals``)."""

    packets: int
    wire_bytes: int
    retransmitted: int
    lost: int
    unauthenticated: int
    refused: int
    cpu_ns: int
    ingest_ns: int


class PipeCounts(Protocol):
    """A worker's media pipes (``webinar.cluster.pipes.Pipes``)."""

    def packets(self) -> Mapping[str, int]: ...

    def totals(self) -> Mapping[tuple[str, str], PipeTotals]: ...

    def open_pipes(self) -> Mapping[tuple[str, str], int]: ...


@dataclass(frozen=True)
class Sources:
    """Where the collector reads what lives elsewhere (each may be absent: None)."""

    rooms: Callable[[], RoomManager | None] = lambda: None
    connections: Callable[[], int] = lambda: 0
    traffic: Callable[[], Traffic | None] = lambda: None
    webhooks: Callable[[], WebhookCounts | None] = lambda: None
    pipes: Callable[[], PipeCounts | None] = lambda: None


class Metrics:
    """One process's metrics: its registry, the counters kept as things happen, the
    histograms, and the event-loop lag sampler (an owned task: :meth:`start`/:meth:`stop`)."""

    def __init__(self, version: str = __version__) -> None:
        self.registry = CollectorRegistry()
        #: What the media of every room moved (given to the RoomManager).
        self.media = MediaTotals()
        self.signalling_errors: Counter[str] = Counter()
        self.interaction: Counter[str] = Counter()
        self.joins: Counter[str] = Counter()
        self.loop_lag_seconds = 0.0
        self.loop_lag_max_seconds = 0.0
        self.sources = Sources()
        self._task: asyncio.Task[None] | None = None
        registry = self.registry
        self.join_seconds = Histogram(
            "webinar_join_seconds",
            "Seconds from a join message to the joined reply (event look-up, ticket check, "
            "room entry, attendance record).",
            buckets=JOIN_BUCKETS,
            registry=registry,
        )
        self.chat_delivery_seconds = Histogram(
            "webinar_chat_delivery_seconds",
            "Seconds to hand one chat message to every connection of its room on this process.",
            buckets=CHAT_BUCKETS,
            registry=registry,
        )
        self.allocation_seconds = Histogram(
            "webinar_allocation_seconds",
            "Seconds of one subscriber's bandwidth allocation run (layers for every stream).",
            buckets=ALLOCATION_BUCKETS,
            registry=registry,
        )
        self.media.on_allocation = self.allocation_seconds.observe
        Info("webinar_build", "The running server's version.", registry=registry).info(
            {"version": version}
        )
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        registry.register(WebinarCollector(self))

    # ------------------------------------------------------------------ counting

    def count_error(self, code: str) -> None:
        self.signalling_errors[code] += 1

    def count_interaction(self, kind: str, n: int = 1) -> None:
        if kind not in INTERACTION_COUNTERS:
            raise ValueError(f"no interaction counter {kind!r}")
        self.interaction[kind] += n

    def joined(self, role: str, seconds: float) -> None:
        self.joins[role] += 1
        self.join_seconds.observe(seconds)

    def chat_delivered(self, seconds: float) -> None:
        self.chat_delivery_seconds.observe(seconds)

    # ------------------------------------------------------------------ the loop lag

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch_loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _watch_loop(self, interval: float = 0.5) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(interval)
            lag = max(0.0, time.monotonic() - start - interval)
            self.loop_lag_seconds = lag
            self.loop_lag_max_seconds = max(self.loop_lag_max_seconds, lag)

    # ------------------------------------------------------------------ reading

    def render(self) -> str:
        """This process's series in the Prometheus text format (0.0.4)."""
        return generate_latest(self.registry).decode()


class WebinarCollector:
    """Yields the server's own series at scrape time (a ``prometheus_client`` collector)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        src = m.sources
        rooms = src.rooms()
        yield from _live(rooms, src.connections(), m.media)
        yield from _media(m.media)
        yield from _native_fanout()
        yield GaugeMetricFamily(
            "webinar_event_loop_lag_seconds",
            "How late the event loop woke up, last sample.",
            value=m.loop_lag_seconds,
        )
        yield GaugeMetricFamily(
            "webinar_event_loop_lag_max_seconds",
            "Largest event-loop lag seen since start.",
            value=m.loop_lag_max_seconds,
        )
        errors = CounterMetricFamily(
            "webinar_signalling_errors_total",
            "Error replies sent to clients, by code.",
            labels=["code"],
        )
        for code, n in sorted(m.signalling_errors.items()):
            errors.add_metric([code], n)
        yield errors
        joins = CounterMetricFamily(
            "webinar_joins_total",
            "Participants admitted to a room (resumed sessions included), by role.",
            labels=["role"],
        )
        for role in sorted({*ROLES, *m.joins}):
            joins.add_metric([role], m.joins.get(role, 0))
        yield joins
        traffic = src.traffic()
        messages = CounterMetricFamily(
            "webinar_signalling_messages_total",
            "Signalling messages taken from clients (in) and queued to them (out).",
            labels=["direction"],
        )
        messages.add_metric(["in"], traffic.received if traffic is not None else 0)
        messages.add_metric(["out"], traffic.sent if traffic is not None else 0)
        yield messages
        for kind, help_ in INTERACTION_COUNTERS.items():
            yield CounterMetricFamily(f"webinar_{kind}_total", help_, value=m.interaction[kind])
        webhooks = src.webhooks()
        if webhooks is not None:
            yield from _webhooks(webhooks)
        pipes = src.pipes()
        if pipes is not None:
            yield from pipe_families(pipes.packets(), pipes.totals(), pipes.open_pipes())


def _live(rooms: RoomManager | None, connections: int, media: MediaTotals) -> Iterator[Metric]:
    live = rooms.rooms() if rooms is not None else []
    roles: Counter[str] = Counter()
    estimates: list[int] = []
    now = time.monotonic()
    for room in live:
        for participant in room.participants():
            roles[participant.role.value] += 1
        estimates.extend(e for e in room.subscriber_estimates(now) if e is not None)
    yield GaugeMetricFamily("webinar_rooms", "Live rooms.", value=len(live))
    participants = GaugeMetricFamily(
        "webinar_participants", "Participants in live rooms, by role.", labels=["role"]
    )
    for role in ROLES:
        participants.add_metric([role], roles.get(role, 0))
    yield participants
    yield GaugeMetricFamily("webinar_connections", "Open signalling WebSockets.", value=connections)
    yield GaugeMetricFamily(
        "webinar_producers", "Published tracks (and copies from pipes).", value=media.live_producers
    )
    yield GaugeMetricFamily(
        "webinar_consumers", "Forwarded (subscriber, track) pairs.", value=media.live_consumers
    )
    buckets = [(str(bound), sum(1 for e in estimates if e <= bound)) for bound in BANDWIDTH_BUCKETS]
    buckets.append(("+Inf", len(estimates)))
    yield GaugeHistogramMetricFamily(
        "webinar_subscriber_bandwidth_bps",
        "Estimated downlink of each subscriber now (a gauge histogram: live subscribers).",
        buckets=buckets,
        gsum_value=sum(estimates),
    )


def _media(media: MediaTotals) -> Iterable[Metric]:
    c = media.read()
    series = (
        (
            "webinar_rtp_packets_received_total",
            "RTP packets received from publishers (and from media pipes) since the start.",
            c.packets_received,
        ),
        (
            "webinar_rtp_bytes_received_total",
            "RTP payload bytes received from publishers (and from media pipes) since the start.",
            c.bytes_received,
        ),
        (
            "webinar_rtp_packets_forwarded_total",
            "RTP packets forwarded to subscribers since the start (retransmissions apart).",
            c.packets_forwarded,
        ),
        (
            "webinar_rtp_bytes_forwarded_total",
            "RTP payload bytes forwarded to subscribers since the start.",
            c.bytes_forwarded,
        ),
        ("webinar_nacks_total", "NACKs from subscribers.", c.nacks),
        ("webinar_retransmissions_total", "Packets resent on NACK.", c.retransmitted),
        ("webinar_keyframe_requests_total", "PLI/FIR from subscribers.", c.keyframe_requests),
    )
    families = [CounterMetricFamily(name, help_, value=value) for name, help_, value in series]
    plis = CounterMetricFamily(
        "webinar_publisher_keyframe_requests",
        "PLIs sent to publishers (at most one per layer a second), by layer.",
        labels=["layer"],
    )
    for layer, n in enumerate(c.publisher_keyframe_requests or [0]):
        plis.add_metric([str(layer)], n)
    return [*families, plis]


def _native_fanout() -> Iterator[Metric]:
    """The SFU's native fan-out (docs/architecture.md, "The path of a packet"): whether it
    forwards here, and what became of the datagrams it handed to the kernel."""
    on = native.forward() is not None
    yield GaugeMetricFamily(
        "webinar_native_fanout_enabled",
        "1 when the compiled fan-out forwards on this process, 0 when Python does it all.",
        value=int(on),
    )
    module = native.module()
    counts: dict[str, int] = module.counters() if module is not None else {}
    datagrams = CounterMetricFamily(
        "webinar_native_fanout_datagrams_total",
        "RTP datagrams of the native fan-out since the start, by outcome: sent (the kernel"
        " took them), dropped (a full socket buffer), refused (the kernel refused that one:"
        " a firewall rule), protect_failed (libsrtp refused to protect it).",
        labels=["outcome"],
    )
    refused = counts.get("refused", 0)
    datagrams.add_metric(["sent"], counts.get("sent", 0) - refused)
    datagrams.add_metric(["dropped"], counts.get("dropped", 0))
    datagrams.add_metric(["refused"], refused)
    datagrams.add_metric(["protect_failed"], counts.get("protect_failed", 0))
    yield datagrams


def _webhooks(webhooks: WebhookCounts) -> Iterator[Metric]:
    attempts = CounterMetricFamily(
        "webinar_webhook_attempts_total",
        "Webhook delivery attempts by outcome.",
        labels=["outcome"],
    )
    outcomes = {"delivered": "delivered", "failed": "gave_up", "retried": "will_retry"}
    for key, label in outcomes.items():
        attempts.add_metric([label], webhooks.counts.get(key, 0))
    yield attempts
    yield CounterMetricFamily(
        "webinar_webhook_dropped_total",
        "Emitted events dropped: the queue was full.",
        value=webhooks.dropped,
    )


PIPE_SCOPES = ("node", "worker")


def pipe_families(
    packets: Mapping[str, int],
    totals: Mapping[tuple[str, str], PipeTotals],
    open_pipes: Mapping[tuple[str, str], int],
) -> list[Metric]:
    """The media pipes' series (only with several workers), closed pipes included in the
    counters. ``direction``: ``out`` on a stream's origin (or a node's gateway feeding the
    other workers of its node), ``in`` on the receiving end; ``scope``: ``node`` for the
    (encrypted) pipes between nodes, ``worker`` for those between the workers of one node.

    * ``webinar_pipe_packets_total{direction}``: RTP packets sent and taken;
    * ``webinar_pipe_bytes_total{direction,scope}``: their datagram bytes (RTP header,
      payload, SRTP tag; no IP/UDP headers);
    * ``webinar_pipe_retransmissions_total{scope}``: packets the sending end resent on a NACK;
    * ``webinar_pipe_packets_lost_total{scope}``: on the receiving end, packets found missing
      (NACKed) that had not arrived a second after the first NACK: the pipe's residual loss;
    * ``webinar_pipe_refused_total{scope,reason}``: datagrams dropped, ``address`` from
      anyone but the peer, ``unauthenticated`` from the peer's address but refused by SRTP;
    * ``webinar_pipe_cpu_seconds_total{direction,scope}``: CPU time in the pipes' per-packet
      work (relaying out; taking in: SRTP, parsing), not the edge's ingest;
    * ``webinar_pipe_ingest_cpu_seconds_total{scope}``: the edge's ingest of those packets;
    * ``webinar_pipe_open{direction,scope}``: pipes open now."""
    both = [(d, s) for d in ("out", "in") for s in PIPE_SCOPES]

    def family(
        kind: type[CounterMetricFamily | GaugeMetricFamily],
        name: str,
        help_: str,
        labels: list[str],
        samples: Iterable[tuple[list[str], float]],
    ) -> Metric:
        metric = kind(name, help_, labels=labels)
        for values, value in samples:
            metric.add_metric(values, value)
        return metric

    refused: list[tuple[list[str], float]] = []
    for s in PIPE_SCOPES:
        by_address = totals["out", s].refused + totals["in", s].refused
        by_srtp = totals["out", s].unauthenticated + totals["in", s].unauthenticated
        refused.append(([s, "address"], by_address))
        refused.append(([s, "unauthenticated"], by_srtp))
    return [
        family(
            CounterMetricFamily,
            "webinar_pipe_packets_total",
            "RTP packets relayed between workers, by direction.",
            ["direction"],
            [([d], packets[d]) for d in ("out", "in")],
        ),
        family(
            CounterMetricFamily,
            "webinar_pipe_bytes_total",
            "RTP datagram bytes sent and taken on media pipes, by direction and scope.",
            ["direction", "scope"],
            [([d, s], totals[d, s].wire_bytes) for d, s in both],
        ),
        family(
            CounterMetricFamily,
            "webinar_pipe_retransmissions_total",
            "Packets resent on media pipes on the receiving end's NACK, by scope.",
            ["scope"],
            [([s], totals["out", s].retransmitted) for s in PIPE_SCOPES],
        ),
        family(
            CounterMetricFamily,
            "webinar_pipe_packets_lost_total",
            "Packets missing on media pipes and not repaired within a second, by scope.",
            ["scope"],
            [([s], totals["in", s].lost) for s in PIPE_SCOPES],
        ),
        family(
            CounterMetricFamily,
            "webinar_pipe_refused_total",
            "Datagrams refused by media pipes: from anyone but the peer, or not authenticated.",
            ["scope", "reason"],
            refused,
        ),
        family(
            CounterMetricFamily,
            "webinar_pipe_cpu_seconds_total",
            "CPU time spent relaying (out) and taking in (in) packets on media pipes.",
            ["direction", "scope"],
            [([d, s], totals[d, s].cpu_ns / 1e9) for d, s in both],
        ),
        family(
            CounterMetricFamily,
            "webinar_pipe_ingest_cpu_seconds_total",
            "CPU time of the ingest that packets taken from media pipes go through at the edge.",
            ["scope"],
            [([s], totals["in", s].ingest_ns / 1e9) for s in PIPE_SCOPES],
        ),
        family(
            GaugeMetricFamily,
            "webinar_pipe_open",
            "Media pipes open, by direction and scope.",
            ["direction", "scope"],
            [([d, s], open_pipes.get((d, s), 0)) for d, s in both],
        ),
    ]
