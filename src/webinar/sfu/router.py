"""Router: the media of one room. Owns its transports, knows its producers,
enforces the camera limit and runs the periodic housekeeping (truthful RTCP
sender reports, keyframe retries). Closing it closes everything below it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..tasks import stop_tasks
from .consumer import Consumer
from .producer import Producer
from .tiers import Dynacast, SubscriberTiers
from .totals import MediaTotals
from .transport import (
    OfferSender,
    PlayTransport,
    PublishTransport,
    SubscribeTransport,
    TrackSpec,
    TransportConfig,
)
from .types import CloseReason, MediaSource, SfuError, SfuErrorCode

logger = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 0.25
PAD_INTERVAL = 0.02  # probe padding goes out in slices this far apart, never as one burst
MEASURE_INTERVAL = 1.0  # seconds between layer bitrate measurements and dynacast rounds
MAX_CAMERAS_LIMIT = 7


@dataclass(frozen=True, slots=True)
class RouterConfig:
    max_cameras: int = 4
    transport: TransportConfig = field(default_factory=TransportConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.max_cameras <= MAX_CAMERAS_LIMIT:
            raise ValueError(f"max_cameras must be 1..{MAX_CAMERAS_LIMIT}")


class Router:
    def __init__(self, config: RouterConfig, totals: MediaTotals | None = None) -> None:
        """``totals``: the process's media counters (:mod:`webinar.sfu.totals`) this router's
        producers and consumers are counted in; its own if None."""
        self.config = config
        self.totals = totals if totals is not None else MediaTotals()
        self.closed = False
        self.producers: dict[str, Producer] = {}
        self._publishers: set[PublishTransport] = set()
        self._subscribers: set[SubscribeTransport] = set()
        self._tiers: dict[SubscribeTransport, SubscriberTiers] = {}
        self._layer_listeners: dict[PublishTransport, Callable[[Producer, list[bool]], None]] = {}
        self._publisher_of: dict[str, PublishTransport] = {}  # producer id -> its transport
        # producers fed from elsewhere (a pipe): who is told which layers anyone needs
        self._relayed: dict[str, Callable[[Producer, list[bool]], None] | None] = {}
        self._dynacast: dict[str, Dynacast] = {}
        self._measured_at = 0.0
        loop = asyncio.get_running_loop()
        self._probing = asyncio.Event()  # set when a subscriber's probe may need padding
        self._task = loop.create_task(self._housekeeping())
        self._pacer = loop.create_task(self._pace())

    # ------------------------------------------------------------------ transports

    def create_publish_transport(
        self,
        *,
        on_producer: Callable[[Producer], None],
        on_layers: Callable[[Producer, list[bool]], None] | None = None,
        dtls_server: bool = False,
    ) -> PublishTransport:
        """``on_layers(producer, active)``: tell the publisher which of a simulcast
        producer's encodings (lowest first) anyone needs (dynacast). ``dtls_server``: answer
        as the DTLS server when the peer lets us choose (an encoder, WHIP)."""
        self._check_open()

        def added(producer: Producer) -> None:
            self.producers[producer.id] = producer
            self.totals.producer_opened(producer)
            self._publisher_of[producer.id] = transport
            producer.on_close(self._forget_producer)
            on_producer(producer)

        transport = PublishTransport(
            self.config.transport,
            may_add=self._check_limits,
            on_producer=added,
            dtls_server=dtls_server,
        )
        self._publishers.add(transport)
        if on_layers is not None:
            self._layer_listeners[transport] = on_layers

        def closed() -> None:
            self._publishers.discard(transport)
            self._layer_listeners.pop(transport, None)

        transport.on_close(closed)
        return transport

    def create_subscribe_transport(
        self,
        *,
        send_offer: OfferSender,
        on_consumer_closed: Callable[[Consumer, CloseReason], None],
        answer_timeout: float = 15.0,
    ) -> SubscribeTransport:
        self._check_open()
        transport = SubscribeTransport(
            self.config.transport,
            send_offer=send_offer,
            on_consumer_closed=on_consumer_closed,
            answer_timeout=answer_timeout,
            totals=self.totals,
        )
        self._subscribers.add(transport)
        self._tiers[transport] = self._new_tiers(transport)

        def closed() -> None:
            self._subscribers.discard(transport)
            self._tiers.pop(transport, None)

        transport.on_close(closed)
        return transport

    def create_play_transport(
        self, *, on_consumer_closed: Callable[[Consumer, CloseReason], None]
    ) -> PlayTransport:
        """A connection to a player that makes the offer (WHEP): fixed slots, no
        renegotiation; sender reports, feedback and its allocation as any subscriber's."""
        self._check_open()
        transport = PlayTransport(self.config.transport, on_consumer_closed=on_consumer_closed)
        self._subscribers.add(transport)
        self._tiers[transport] = self._new_tiers(transport)

        def closed() -> None:
            self._subscribers.discard(transport)
            self._tiers.pop(transport, None)

        transport.on_close(closed)
        return transport

    def add_producer(
        self,
        producer: Producer,
        *,
        on_layers: Callable[[Producer, list[bool]], None] | None = None,
    ) -> None:
        """Make a producer fed from outside this router's transports (a pipe from
        another worker: :class:`~webinar.sfu.pipe.PipeIn`) one of its producers:
        consumed, measured and dynacast like a local one. ``on_layers`` is told which
        of a simulcast producer's encodings anyone here needs. The camera limit is the
        origin's to enforce, not checked again. ``ValueError`` if a producer with its ID
        is here already (one copy per router)."""
        self._check_open()
        if producer.id in self.producers:
            raise ValueError(f"{producer.id} is already a producer of this router")
        self.producers[producer.id] = producer
        self._relayed[producer.id] = on_layers
        self.totals.producer_opened(producer)
        producer.on_close(self._forget_producer)

    @property
    def subscribers(self) -> tuple[SubscribeTransport, ...]:
        """The open subscribe transports."""
        return tuple(self._subscribers)

    def tiers_of(self, transport: SubscribeTransport) -> SubscriberTiers:
        """The subscriber's bandwidth allocation: its quality choice, the priorities
        of what it receives and where its reports go."""
        tiers = self._tiers.get(transport)
        if tiers is None:
            tiers = self._tiers[transport] = self._new_tiers(transport)
        return tiers

    def _new_tiers(self, transport: SubscribeTransport) -> SubscriberTiers:
        """A subscriber's tiers; a loss burst its NACKs show re-allocates at once, not
        at the next housekeeping round: a queue that overflows takes pictures with it
        every few milliseconds. So do new consumers, once negotiated: they forward nothing
        until allocated (the first frame waits for no round)."""
        tiers = SubscriberTiers(transport.estimator)

        def alarm() -> None:
            if transport.closed or self._tiers.get(transport) is not tiers:
                return
            started = time.perf_counter()
            tiers.urgent()
            now = time.monotonic()
            tiers.tick(now, list(transport.consumers.values()))
            self.totals.allocation_ran(started)
            # a lower layer dynacast turned off is asked for now, not at the next round
            self._run_dynacast(now)

        transport.estimator.on_alarm = alarm
        if not isinstance(transport, PlayTransport):
            transport.on_allocate = alarm  # (a player's slots are shown as they come)
        return tiers

    def _forget_producer(self, producer: Producer, _reason: CloseReason) -> None:
        self.producers.pop(producer.id, None)
        self._publisher_of.pop(producer.id, None)
        self._dynacast.pop(producer.id, None)
        self._relayed.pop(producer.id, None)

    def camera_count(self) -> int:
        return sum(1 for p in self.producers.values() if p.source is MediaSource.CAMERA)

    def _check_limits(self, specs: list[TrackSpec]) -> None:
        new_cameras = sum(1 for s in specs if s.source is MediaSource.CAMERA)
        if new_cameras and self.camera_count() + new_cameras > self.config.max_cameras:
            raise SfuError(
                SfuErrorCode.CAMERA_LIMIT,
                f"this room allows {self.config.max_cameras} cameras and "
                f"{self.camera_count()} are on",
            )

    def _check_open(self) -> None:
        if self.closed:
            raise SfuError(SfuErrorCode.CLOSED, "router is closed")

    # ------------------------------------------------------------------ upkeep

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            now_wall, now_mono = time.time(), time.monotonic()
            measure = now_mono - self._measured_at >= MEASURE_INTERVAL
            if measure:
                self._measured_at = now_mono
                for producer in list(self.producers.values()):
                    producer.measure(now_wall)
            for transport in list(self._subscribers):
                try:
                    transport.housekeeping(now_wall, now_mono)
                    tiers = self._tiers.get(transport)
                    if tiers is not None and not transport.closed:
                        consumers = list(transport.consumers.values())
                        last, started = tiers.last, time.perf_counter()
                        tiers.tick(now_mono, consumers)
                        if tiers.last is not last:  # it allocated (not only checked)
                            self.totals.allocation_ran(started)
                        if tiers.controller.probing:
                            self._probing.set()
                except Exception:
                    logger.exception("housekeeping failed for %s", transport.id)
            if measure:
                self._run_dynacast(now_mono)

    async def _pace(self) -> None:
        """Send probe padding in small slices: a quarter second of padding sent at once
        would overflow a shallow bottleneck queue and take media packets with it.

        Only probes start in housekeeping, so while none runs this task waits for
        housekeeping to start one instead of waking every slice for nothing."""
        last = time.monotonic()
        while True:
            if not self._probing.is_set():
                await self._probing.wait()
                last = time.monotonic()
            await asyncio.sleep(PAD_INTERVAL)
            now = time.monotonic()
            interval, last = min(now - last, 2 * PAD_INTERVAL), now  # a stall is not caught up
            self._probing.clear()
            for transport, tiers in list(self._tiers.items()):
                if transport.closed or not tiers.controller.probing:
                    continue
                self._probing.set()
                try:
                    tiers.pad(now, list(transport.consumers.values()), interval)
                    if tiers.controller.take_sender_report(now):
                        transport.send_probe_reports(time.time())
                except Exception:
                    logger.exception("probe padding failed for %s", transport.id)

    def _run_dynacast(self, now: float) -> None:
        """Tell publishers which simulcast encodings anybody aims at."""
        for producer in list(self.producers.values()):
            if producer.simulcast is None or producer.closed:
                continue
            dynacast = self._dynacast.get(producer.id)
            if dynacast is None:
                dynacast = self._dynacast[producer.id] = Dynacast(producer.layer_count, now)
            needed: set[int] = producer.pinned_layers()
            for consumer in producer.consumers:
                sel = consumer.selector
                if sel is None or consumer.paused:
                    continue
                needed.add(sel.target_spatial)
                if sel.spatial >= 0:
                    needed.add(sel.spatial)
            active = dynacast.update(now, needed)
            if active is None:
                continue
            producer.set_active_layers(active)
            transport = self._publisher_of.get(producer.id)
            listener = (
                self._layer_listeners.get(transport)
                if transport is not None
                else self._relayed.get(producer.id)
            )
            if listener is not None:
                try:
                    listener(producer, active)
                except Exception:
                    logger.exception("publisher layers listener failed")

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await stop_tasks((self._task, self._pacer))
        await asyncio.gather(
            *(t.close() for t in list(self._publishers)),
            *(t.close(CloseReason.ROUTER_CLOSED) for t in list(self._subscribers)),
            return_exceptions=True,
        )
        for producer in list(self.producers.values()):  # the relayed ones are left
            producer.close(CloseReason.ROUTER_CLOSED)
        self.producers.clear()
