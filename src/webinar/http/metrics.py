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


def pipe_metrics_text(packets: Mapping[str, int]) -> str:
    """``webinar_pipe_packets_total`` (only with several workers): RTP packets this worker sent
    on its media pipes as a stream's origin (``direction="out"``) and took from them as an
    edge (``direction="in"``), closed pipes included."""
    lines = [
        "# HELP webinar_pipe_packets_total RTP packets relayed between workers, by direction.",
        "# TYPE webinar_pipe_packets_total counter",
    ]
    for direction in ("out", "in"):
        lines.append(f'webinar_pipe_packets_total{{direction="{direction}"}} {packets[direction]}')
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}"
