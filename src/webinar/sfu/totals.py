"""What one process's SFU has moved since it started, in counters that only grow.

The hot path keeps counting in each object's own plain-int stats
(:class:`~webinar.sfu.types.ConsumerStats`, :class:`~webinar.sfu.ingest.ProducerStats`);
nothing here runs per packet. A :class:`MediaTotals` knows the live consumers and
producers (told when each opens and closes) and, when one closes, adds its final counts to
its *retired* sums. A reading (:meth:`MediaTotals.read`) is retired + live, so a total never
falls when people leave (which a sum over the live objects alone does). Closing and reading
both run on the event loop without an await between them, so an object is counted either as
live or as retired, never both, never neither.

One instance per process (the app's, handed to every :class:`~webinar.sfu.router.Router`); a
router made without one (tests, benchmarks) gets its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .consumer import Consumer
    from .producer import Producer
    from .types import CloseReason


@dataclass(slots=True)
class MediaCounts:
    """One reading of the totals (every field only grows over a process's life)."""

    #: RTP packets and payload bytes taken from publishers (and from pipes, on an edge).
    packets_received: int = 0
    bytes_received: int = 0
    #: RTP packets and payload bytes sent to subscribers (retransmissions not included).
    packets_forwarded: int = 0
    bytes_forwarded: int = 0
    #: Packets resent on a subscriber's NACK.
    retransmitted: int = 0
    #: NACK messages from subscribers.
    nacks: int = 0
    #: PLI and FIR from subscribers.
    keyframe_requests: int = 0
    #: PLIs sent to publishers, by layer (simulcast encoding, lowest first; a single stream
    #: is layer 0): what the subscribers' requests became after the throttle.
    publisher_keyframe_requests: list[int] = field(default_factory=list)

    def add_consumer(self, consumer: Consumer) -> None:
        st = consumer.stats
        self.packets_forwarded += st.packets
        self.bytes_forwarded += st.bytes
        self.retransmitted += st.retransmitted
        self.nacks += st.nacks
        self.keyframe_requests += st.plis + st.firs

    def add_producer(self, producer: Producer) -> None:
        st = producer.stats
        self.packets_received += st.packets
        self.bytes_received += st.bytes
        sent = self.publisher_keyframe_requests
        for layer, n in enumerate(st.keyframe_requests_by_layer):
            if layer == len(sent):
                sent.append(0)
            sent[layer] += n

    def copy(self) -> MediaCounts:
        return MediaCounts(
            packets_received=self.packets_received,
            bytes_received=self.bytes_received,
            packets_forwarded=self.packets_forwarded,
            bytes_forwarded=self.bytes_forwarded,
            retransmitted=self.retransmitted,
            nacks=self.nacks,
            keyframe_requests=self.keyframe_requests,
            publisher_keyframe_requests=list(self.publisher_keyframe_requests),
        )


class MediaTotals:
    def __init__(self) -> None:
        self._retired = MediaCounts()
        self._consumers: set[Consumer] = set()
        self._producers: set[Producer] = set()
        #: Told the seconds of each bandwidth allocation run (a subscriber's, a few times a
        #: second), e.g. a Prometheus histogram's ``observe``; None: not measured.
        self.on_allocation: Callable[[float], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def consumer_opened(self, consumer: Consumer) -> None:
        self._consumers.add(consumer)

    def consumer_closed(self, consumer: Consumer) -> None:
        """Retire a subscriber's consumer (once: a second call does nothing)."""
        if consumer in self._consumers:
            self._consumers.discard(consumer)
            self._retired.add_consumer(consumer)

    def producer_opened(self, producer: Producer) -> None:
        """Count a producer (a publisher's, or a pipe's copy) until it closes; one counted
        already (the same copy in a second router) is not counted twice."""
        if producer in self._producers or producer.closed:
            return
        self._producers.add(producer)
        producer.on_close(self._producer_closed)

    def _producer_closed(self, producer: Producer, _reason: CloseReason) -> None:
        if producer in self._producers:
            self._producers.discard(producer)
            self._retired.add_producer(producer)

    # ------------------------------------------------------------------ reading

    @property
    def live_consumers(self) -> int:
        return len(self._consumers)

    @property
    def live_producers(self) -> int:
        return len(self._producers)

    def read(self) -> MediaCounts:
        """Everything since the start: the retired objects' final counts plus the live
        ones' counts now."""
        counts = self._retired.copy()
        for consumer in self._consumers:
            counts.add_consumer(consumer)
        for producer in self._producers:
            counts.add_producer(producer)
        return counts

    def allocation_ran(self, started: float) -> None:
        """An allocation run that began at ``time.perf_counter()`` ``started`` ended now."""
        observe = self.on_allocation
        if observe is not None:
            observe(time.perf_counter() - started)
