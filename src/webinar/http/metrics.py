"""Prometheus metrics in the text exposition format, without a client library.

Most values are read from the live objects when scraped (rooms, participants,
producer and consumer counters), so the hot path pays nothing for them; only
signalling errors are counted as they happen, and event-loop lag is sampled by
a small owned task.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Protocol

from webinar.rooms.manager import RoomManager
from webinar.tasks import stop_task

BANDWIDTH_BUCKETS = (
    128_000,
    256_000,
    512_000,
    1_024_000,
    2_048_000,
    3_072_000,
    4_096_000,
    6_144_000,
    float("inf"),
)


#: Interaction counters (name -> help), counted as things happen; a kind not listed
#: here is refused, so a typo cannot make a new metric.
INTERACTION_COUNTERS = {
    "chat_messages": "Chat messages posted.",
    "questions": "Questions asked (or chat messages marked as questions).",
    "question_votes": "Question upvotes given (a repeated vote does not count).",
    "poll_answers": "Answers to poll and test questions accepted (a re-answer counts again).",
    "cta_clicks": "Call-to-action clicks counted (within the per-attendee bound).",
}


class Metrics:
    def __init__(self) -> None:
        self.signalling_errors: Counter[str] = Counter()
        self.interaction: Counter[str] = Counter()
        self.loop_lag_seconds = 0.0
        self.loop_lag_max_seconds = 0.0
        self._task: asyncio.Task[None] | None = None

    def count_error(self, code: str) -> None:
        self.signalling_errors[code] += 1

    def count_interaction(self, kind: str, n: int = 1) -> None:
        if kind not in INTERACTION_COUNTERS:
            raise ValueError(f"no interaction counter {kind!r}")
        self.interaction[kind] += n

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

    def render(self, rooms: RoomManager | None, connections: int) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: Iterable[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{labels} {_num(value)}")

        live = rooms.rooms() if rooms is not None else []
        roles: Counter[str] = Counter()
        producers = consumers = 0
        packets = octets = nacks = plis = retransmitted = 0
        received = 0
        estimates: list[int] = []
        now = time.monotonic()
        for room in live:
            for participant in room.participants():
                roles[participant.role.value] += 1
            for producer in room.router.producers.values():
                producers += 1
                received += producer.stats.packets
                for consumer in producer.consumers:
                    consumers += 1
                    packets += consumer.stats.packets
                    octets += consumer.stats.bytes
                    nacks += consumer.stats.nacks
                    plis += consumer.stats.plis + consumer.stats.firs
                    retransmitted += consumer.stats.retransmitted
            for estimate in room.subscriber_estimates(now):
                if estimate is not None:
                    estimates.append(estimate)

        metric("webinar_rooms", "gauge", "Live rooms.", [("", len(live))])
        metric(
            "webinar_participants",
            "gauge",
            "Participants in live rooms, by role.",
            [(f'{{role="{r}"}}', roles.get(r, 0)) for r in ("host", "presenter", "attendee")],
        )
        metric("webinar_connections", "gauge", "Open signalling WebSockets.", [("", connections)])
        metric("webinar_producers", "gauge", "Published tracks.", [("", producers)])
        metric(
            "webinar_consumers", "gauge", "Forwarded (subscriber, track) pairs.", [("", consumers)]
        )
        metric(
            "webinar_rtp_packets_received_total",
            "counter",
            "RTP packets received from publishers (live producers).",
            [("", received)],
        )
        metric(
            "webinar_rtp_packets_forwarded_total",
            "counter",
            "RTP packets forwarded to subscribers (live consumers).",
            [("", packets)],
        )
        metric(
            "webinar_rtp_bytes_forwarded_total",
            "counter",
            "RTP payload bytes forwarded to subscribers (live consumers).",
            [("", octets)],
        )
        metric("webinar_nacks_total", "counter", "NACKs from subscribers.", [("", nacks)])
        metric(
            "webinar_retransmissions_total",
            "counter",
            "Packets resent on NACK.",
            [("", retransmitted)],
        )
        metric(
            "webinar_keyframe_requests_total", "counter", "PLI/FIR from subscribers.", [("", plis)]
        )
        buckets = []
        for bound in BANDWIDTH_BUCKETS:
            le = "+Inf" if bound == float("inf") else str(int(bound))
            buckets.append((f'_bucket{{le="{le}"}}', sum(1 for e in estimates if e <= bound)))
        out.append("# HELP webinar_subscriber_bandwidth_bps Estimated downlink per subscriber.")
        out.append("# TYPE webinar_subscriber_bandwidth_bps histogram")
        for suffix, value in buckets:
            out.append(f"webinar_subscriber_bandwidth_bps{suffix} {value}")
        out.append(f"webinar_subscriber_bandwidth_bps_sum {sum(estimates)}")
        out.append(f"webinar_subscriber_bandwidth_bps_count {len(estimates)}")
        metric(
            "webinar_event_loop_lag_seconds",
            "gauge",
            "How late the event loop woke up, last sample.",
            [("", self.loop_lag_seconds)],
        )
        metric(
            "webinar_event_loop_lag_max_seconds",
            "gauge",
            "Largest event-loop lag seen since start.",
            [("", self.loop_lag_max_seconds)],
        )
        metric(
            "webinar_signalling_errors_total",
            "counter",
            "Error replies sent to clients, by code.",
            [(f'{{code="{c}"}}', n) for c, n in sorted(self.signalling_errors.items())],
        )
        for kind, help_ in INTERACTION_COUNTERS.items():
            metric(f"webinar_{kind}_total", "counter", help_, [("", self.interaction[kind])])
        return "\n".join(out) + "\n"


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


PIPE_SCOPES = ("node", "worker")


def pipe_metrics_text(
    packets: Mapping[str, int],
    totals: Mapping[tuple[str, str], PipeTotals],
    open_pipes: Mapping[tuple[str, str], int],
) -> str:
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
    lines = [
        "# HELP webinar_pipe_packets_total RTP packets relayed between workers, by direction.",
        "# TYPE webinar_pipe_packets_total counter",
    ]
    for direction in ("out", "in"):
        lines.append(f'webinar_pipe_packets_total{{direction="{direction}"}} {packets[direction]}')

    def series(
        name: str, kind: str, help_: str, samples: list[tuple[str, int]] | list[tuple[str, float]]
    ) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{{{labels}}} {value}" for labels, value in samples)

    both = [(d, s) for d in ("out", "in") for s in PIPE_SCOPES]
    series(
        "webinar_pipe_bytes_total",
        "counter",
        "RTP datagram bytes sent and taken on media pipes, by direction and scope.",
        [(f'direction="{d}",scope="{s}"', totals[d, s].wire_bytes) for d, s in both],
    )
    series(
        "webinar_pipe_retransmissions_total",
        "counter",
        "Packets resent on media pipes on the receiving end's NACK, by scope.",
        [(f'scope="{s}"', totals["out", s].retransmitted) for s in PIPE_SCOPES],
    )
    series(
        "webinar_pipe_packets_lost_total",
        "counter",
        "Packets missing on media pipes and not repaired within a second, by scope.",
        [(f'scope="{s}"', totals["in", s].lost) for s in PIPE_SCOPES],
    )
    refused = []
    for s in PIPE_SCOPES:
        by_address = totals["out", s].refused + totals["in", s].refused
        by_srtp = totals["out", s].unauthenticated + totals["in", s].unauthenticated
        refused.append((f'scope="{s}",reason="address"', by_address))
        refused.append((f'scope="{s}",reason="unauthenticated"', by_srtp))
    series(
        "webinar_pipe_refused_total",
        "counter",
        "Datagrams refused by media pipes: from anyone but the peer, or not authenticated.",
        refused,
    )
    series(
        "webinar_pipe_cpu_seconds_total",
        "counter",
        "CPU time spent relaying (out) and taking in (in) packets on media pipes.",
        [(f'direction="{d}",scope="{s}"', round(totals[d, s].cpu_ns / 1e9, 6)) for d, s in both],
    )
    series(
        "webinar_pipe_ingest_cpu_seconds_total",
        "counter",
        "CPU time of the ingest that packets taken from media pipes go through at the edge.",
        [(f'scope="{s}"', round(totals["in", s].ingest_ns / 1e9, 6)) for s in PIPE_SCOPES],
    )
    series(
        "webinar_pipe_open",
        "gauge",
        "Media pipes open, by direction and scope.",
        [(f'direction="{d}",scope="{s}"', open_pipes.get((d, s), 0)) for d, s in both],
    )
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}"
