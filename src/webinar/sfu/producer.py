"""Producer: one published track entering the SFU, fanned out to its consumers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiortc.rtp import RtcpSrPacket, RtpPacket

from . import native
from .allocator import Layer
from .ingest import Ingest, ProducerStats, Relay
from .rtp import MediaPacket
from .simulcast import KeyframeRequests, ProducerLayer, SimulcastIngress, layer_ladder
from .types import (
    CloseReason,
    MediaKind,
    MediaSource,
    PacketConsumer,
    ProducerId,
    SubscriberConsumer,
    new_id,
)

if TYPE_CHECKING:
    from .ingest import Tap

logger = logging.getLogger(__name__)

HISTORY_SIZE = 1024  # packets of a single video stream kept for retransmission (~8 s at 1 Mbps)
AUDIO_BPS = 40_000  # what the allocator plans for an audio stream
SINGLE_STREAM_BPS = 800_000  # ... and for a video without simulcast, until measured


@dataclass(frozen=True, slots=True)
class ProducerCodec:
    mime_type: str  # "video/VP8", "audio/opus"
    clock_rate: int
    payload_type: int
    rtx_payload_type: int | None
    channels: int | None = None
    parameters: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class SenderReportMapping:
    """The publisher's latest RTP↔NTP mapping, with our clock at its arrival."""

    ntp: int
    rtp: int
    arrived: float  # time.time()


class Producer:
    """Receives one track's RTP (via a :class:`~webinar.sfu.ingest.Tap`: a publisher's
    receiver, or a pipe from another worker) and forwards each packet, once, to every
    consumer. Closing it closes its consumers."""

    def __init__(
        self,
        *,
        kind: MediaKind,
        source: MediaSource,
        mid: str,
        tap: Tap,
        app_data: dict[str, Any] | None = None,
        rids: tuple[str, ...] = (),
        batch: bool = False,
        producer_id: str | None = None,
    ) -> None:
        """``rids``: the simulcast encodings of the m-line, lowest first (none or one:
        a single stream).

        ``batch``: a single stream's packets that arrive in one turn of the event
        loop (the packets of a video frame come back to back) are forwarded together
        at the end of that turn, consumer by consumer: each subscriber's socket gets
        them back to back, so its receiver wakes once per frame, not once per packet.
        Without it (tests that drive a producer by hand) every packet goes out before
        :meth:`on_rtp` returns. Simulcast layers are always forwarded at once: a
        consumer switching layers must see the two layers in arrival order.

        ``producer_id``: keep an ID given elsewhere (the copy of another worker's
        producer keeps the original's); a new one by default."""
        self.id = ProducerId(producer_id or new_id("pr"))
        self.kind = kind
        self.source = source
        self.mid = mid
        self.app_data: dict[str, Any] = app_data or {}
        self.codec: ProducerCodec | None = None
        self.stats = ProducerStats()
        self.closed = False
        self.paused = False
        self.sender_report: SenderReportMapping | None = None
        self._tap = tap
        self._consumers: dict[str, PacketConsumer] = {}
        self._pinned: dict[str, int] = {}  # recorder id -> the simulcast layer it gets
        # A selector-less consumer switching encodings gets the next one's packets too.
        self._switching: dict[str, int] = {}
        # Selector-less consumers that follow the best encoding (recorders): dynacast keeps
        # the top one on for them, so that it can start and they can move up to it.
        self._best: set[str] = set()
        self._active: tuple[PacketConsumer, ...] = ()
        self._batching = batch
        self._batch: list[MediaPacket] = []
        self._close_listeners: list[Callable[[Producer, CloseReason], None]] = []
        self._idle_listeners: list[Callable[[Producer], None]] = []
        self._relay_layers: dict[Relay, set[int]] = {}  # pipes -> the layers they need
        # Layers: a simulcast producer's encodings; a single stream is layer 0.
        self.simulcast = (
            SimulcastIngress(rids, tap, self.stats)
            if len(rids) > 1 and kind is MediaKind.VIDEO
            else None
        )
        self._single = ProducerLayer(index=0, rid=None, nominal=SINGLE_STREAM_BPS)
        if self.simulcast is None and kind is MediaKind.VIDEO:
            self._single.nack = tap.nack  # the m-line's: it outlives a producer on it
        self._measured_packets = 0  # the single stream's packets at the last measure()
        # A single video stream's retransmission history, by (unwrapped) input sequence
        # number, shared by every plain-path consumer: each maps its output numbers to
        # these by its offset (Consumer.history_packet).
        self.history: list[MediaPacket | None] = (
            [None] * HISTORY_SIZE if self.simulcast is None and kind is MediaKind.VIDEO else []
        )
        self._keyframes = KeyframeRequests(tap, self.stats)  # the single stream's
        self._ingest = Ingest(
            tap,
            self.stats,
            video=kind is MediaKind.VIDEO,
            request_keyframe=self.request_keyframe,
        )

    @property
    def ssrc(self) -> int | None:
        """The single stream's media SSRC (the negotiated one, then the latest seen)."""
        return self._single.ssrc

    @ssrc.setter
    def ssrc(self, ssrc: int | None) -> None:
        self._single.ssrc = ssrc

    @property
    def temporal_layers(self) -> int:
        """Single stream: 0 until a keyframe told, then 1 or 3."""
        return self._ingest.temporal_layers

    # ------------------------------------------------------------------ wiring

    def set_codec(self, codec: ProducerCodec, ssrc: int | None) -> None:
        """The negotiated codec and the SSRC, when the SDP names it. A single stream's RTX is
        told by payload type (:meth:`on_rtp`), a simulcast encoding's by SSRC in
        :class:`SimulcastIngress`."""
        self.codec = codec
        if ssrc is not None:
            self.ssrc = ssrc

    def on_close(self, listener: Callable[[Producer, CloseReason], None]) -> None:
        self._close_listeners.append(listener)

    def off_close(self, listener: Callable[[Producer, CloseReason], None]) -> None:
        if listener in self._close_listeners:
            self._close_listeners.remove(listener)

    def on_idle(self, listener: Callable[[Producer], None]) -> None:
        """``listener(producer)`` when its last consumer leaves (not when it closes)."""
        self._idle_listeners.append(listener)

    # ------------------------------------------------------------------ relays

    def add_relay(self, relay: Relay) -> None:
        """Hand ``relay`` every packet of every layer, unchanged and unpaused (a pipe
        to another worker: :class:`~webinar.sfu.pipe.PipeOut`). Until it says
        otherwise (:meth:`relay_needs`) it needs every layer: dynacast keeps them on."""
        if self.closed:
            raise RuntimeError("producer is closed")
        self._relay_layers[relay] = set(range(self.layer_count))
        self._set_relays()

    def remove_relay(self, relay: Relay) -> None:
        if self._relay_layers.pop(relay, None) is not None:
            self._set_relays()

    def relay_needs(self, relay: Relay, layers: set[int]) -> None:
        """The simulcast layers a relay's far side has use for (its dynacast)."""
        if relay in self._relay_layers:
            self._relay_layers[relay] = set(layers)

    def _set_relays(self) -> None:
        relays = tuple(self._relay_layers)
        self._ingest.relays = relays
        if self.simulcast is not None:
            self.simulcast.ingest.relays = relays

    @property
    def relays(self) -> int:
        return len(self._relay_layers)

    def add_consumer(self, consumer: PacketConsumer) -> None:
        if self.closed:
            raise RuntimeError("producer is closed")
        self._consumers[consumer.id] = consumer
        self._active = tuple(self._consumers.values())
        if self.simulcast is not None and not consumer.selects_layers:
            # A recorder has no layer selector: it keeps one encoding (one sequence
            # space, one picture size), the best one flowing now, and dynacast keeps
            # that encoding on for it (see pinned_layers).
            layer = self.best_flowing_layer()
            self._pinned[consumer.id] = layer
            self.simulcast.listen(consumer, (layer,))

    def best_flowing_layer(self, within: float = 1.0) -> int:
        """The best encoding that sent in the last ``within`` seconds (the top one if
        none has yet); 0 for a single stream."""
        if self.simulcast is None:
            return 0
        now = time.time()
        layers = self.simulcast.layers
        for layer in reversed(layers):
            if layer.last_arrival and now - layer.last_arrival < within:
                return layer.index
        return len(layers) - 1

    def pinned_layer(self, consumer_id: str) -> int:
        """The encoding a selector-less consumer (a recorder) gets."""
        return self._pinned.get(consumer_id, 0)

    def pin_layer(
        self, consumer: PacketConsumer, layer: int, *, switching_to: int | None = None
    ) -> None:
        """Give a selector-less consumer (a compositor's tap that chose the encoding
        fitting its tile) ``layer``; with ``switching_to``, that encoding's packets too
        until it calls again (it switches at a keyframe of it). Simulcast only."""
        if self.simulcast is None or consumer.id not in self._consumers:
            return
        top = len(self.simulcast.layers) - 1
        layer = min(max(layer, 0), top)
        self._pinned[consumer.id] = layer
        if switching_to is None or switching_to == layer:
            self._switching.pop(consumer.id, None)
            self.simulcast.listen(consumer, (layer,))
        else:
            switching_to = min(max(switching_to, 0), top)
            self._switching[consumer.id] = switching_to
            self.simulcast.listen(consumer, (layer, switching_to))

    def keep_top_layer(self, consumer: PacketConsumer) -> None:
        """``consumer`` (a recorder) follows the best encoding: keep the top one on for it
        (dynacast), even before it flows. Simulcast only."""
        if self.simulcast is not None and consumer.id in self._consumers:
            self._best.add(consumer.id)

    def layer_sizes(self) -> list[tuple[int, int] | None]:
        """Each encoding's picture size from its latest keyframe, lowest first (``None``
        while none was seen); one entry for a single stream (``None``: not tracked)."""
        if self.simulcast is None:
            return [None]
        return [
            (layer.width, layer.height) if layer.width else None for layer in self.simulcast.layers
        ]

    def pinned_layers(self) -> set[int]:
        """Encodings that consumers without a selector (recorders) and relays to other
        workers need whatever the subscribers' allocations say."""
        pinned = set(self._pinned.values()) | set(self._switching.values())
        if self._best and self.simulcast is not None:
            pinned.add(len(self.simulcast.layers) - 1)
        for layers in self._relay_layers.values():
            pinned |= layers
        return pinned

    def remove_consumer(self, consumer: PacketConsumer) -> None:
        if self._consumers.pop(consumer.id, None) is not None:
            self._active = tuple(self._consumers.values())
            if not self._consumers and not self.closed:
                for listener in list(self._idle_listeners):
                    try:
                        listener(self)
                    except Exception:
                        logger.exception("producer idle listener failed")
        self._pinned.pop(consumer.id, None)
        self._switching.pop(consumer.id, None)
        self._best.discard(consumer.id)
        if self.simulcast is not None:
            self.simulcast.forget(consumer)

    @property
    def consumer_count(self) -> int:
        """Every consumer: subscribers' and recorders'."""
        return len(self._consumers)

    def listen(self, consumer: PacketConsumer, layers: tuple[int, ...]) -> None:
        """Simulcast: which layers' packets ``consumer`` gets (its selector asks)."""
        if self.simulcast is not None and consumer.id in self._consumers:
            self.simulcast.listen(consumer, layers)

    @property
    def layer_count(self) -> int:
        return len(self.simulcast.layers) if self.simulcast is not None else 1

    @property
    def consumers(self) -> tuple[SubscriberConsumer, ...]:
        """The subscribers' consumers (not the recorder's tracks)."""
        return tuple(cast("SubscriberConsumer", c) for c in self._active if c.selects_layers)

    # ------------------------------------------------------------------ hot path

    def on_rtp(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        codec = self.codec
        if codec is None or self.closed:
            return
        if self.simulcast is not None:
            self.simulcast.on_rtp(
                packet,
                arrival_time_ms,
                codec.payload_type,
                codec.rtx_payload_type,
                codec.clock_rate,
                self.paused,
            )
            return
        # A single stream's encoding is told by payload type: its own, or its RTX's.
        rtx = packet.payload_type != codec.payload_type
        mp = self._ingest.receive(
            self._single,
            packet,
            arrival_time_ms,
            codec.clock_rate,
            codec.rtx_payload_type if rtx else codec.payload_type,
            rtx,
            self.paused,
        )
        if mp is None:
            return
        history = self.history
        if history:
            history[mp.seq & (HISTORY_SIZE - 1)] = mp
        if self._batching:
            batch = self._batch
            batch.append(mp)
            if len(batch) == 1:
                asyncio.get_running_loop().call_soon(self.flush)
            return
        self._fan_out([mp])

    def flush(self) -> None:
        """Forward the packets held for the end of this event-loop turn (``batch``)."""
        batch, self._batch = self._batch, []
        if not batch or self.paused or self.closed:
            return
        self._fan_out(batch)

    def _fan_out(self, batch: list[MediaPacket]) -> None:
        """Every consumer gets ``batch``: the plain-path subscribers in steady state from
        the native fan-out when it is built and on (:mod:`webinar.sfu.native`), the
        others (and all of them without it) packet by packet in Python."""
        active: tuple[PacketConsumer, ...] = self._active
        fan = native.forward()
        if fan is not None:
            try:
                active = fan(batch, active)
            except Exception:  # never expected; nothing was sent then
                logger.exception("native fan-out failed")
        for consumer in active:
            try:
                for mp in batch:
                    consumer.forward(mp)
            except Exception:  # one subscriber's trouble never stops the others
                logger.exception("forwarding to %s failed", consumer)

    # ------------------------------------------------------------------ control

    def pause(self) -> None:
        """Stop forwarding to every consumer (the publisher keeps sending)."""
        self.paused = True

    def resume(self) -> None:
        """Forward again; each consumer restarts cleanly (continuous sequence numbers,
        video from a keyframe)."""
        if not self.paused or self.closed:
            return
        self.paused = False
        for consumer in self._active:
            consumer.restart()

    def take_loudest(self) -> int:
        """The loudest audio level (-dBov, 0 loudest, 127 silence) since the last call."""
        ingest = self._ingest
        loudest, ingest.loudest = ingest.loudest, 127
        return 127 if self.paused else loudest

    # ------------------------------------------------------------------ feedback

    def request_keyframe(self, layer: int = 0) -> bool:
        """Ask the publisher for a keyframe (PLI) of a layer: at once after a quiet second
        of that layer, else when its window ends unless a keyframe of it came first
        (:class:`~webinar.sfu.simulcast.KeyframeRequests`). True if a PLI went out now."""
        if self.simulcast is not None:
            return not self.closed and self.simulcast.request_keyframe(layer)
        if self.kind is not MediaKind.VIDEO or self.closed:
            return False
        return self._keyframes.request(self._single)

    def on_sender_report(self, packet: RtcpSrPacket) -> None:
        if self.simulcast is not None:
            info = packet.sender_info
            self.simulcast.on_sender_report(
                packet.ssrc, info.ntp_timestamp, info.rtp_timestamp, time.time()
            )
            return
        if self.ssrc is not None and packet.ssrc != self.ssrc:
            return
        info = packet.sender_info
        self.sender_report = SenderReportMapping(
            ntp=info.ntp_timestamp, rtp=info.rtp_timestamp, arrived=time.time()
        )

    def sender_report_of(self, layer: int) -> SenderReportMapping | None:
        """The RTP/NTP mapping of one layer (the producer's own for a single stream)."""
        if self.simulcast is None:
            return self.sender_report
        reports = self.simulcast.sender_reports
        if not 0 <= layer < len(reports) or reports[layer] is None:
            return None
        ntp, rtp, arrived = reports[layer]  # type: ignore[misc]
        return SenderReportMapping(ntp=ntp, rtp=rtp, arrived=arrived)

    # ------------------------------------------------------------------ layers

    def measure(self, now_wall: float) -> None:
        """Bitrate of each layer, for the allocator (called about once a second)."""
        if self.simulcast is not None:
            self.simulcast.measure(now_wall)
            return
        # The single stream counts as flowing while packets came since the last call.
        single = self._single
        if single.packets != self._measured_packets:
            self._measured_packets = single.packets
            single.last_arrival = now_wall
        single.measure(now_wall)

    def ladder(self, now_wall: float) -> tuple[Layer, ...]:
        """The rungs a subscriber may be given, cheapest first."""
        if self.kind is MediaKind.AUDIO:
            return (Layer(0, 0, self._single.bitrate_bps or AUDIO_BPS),)
        if self.simulcast is not None:
            return self.simulcast.ladder(now_wall)
        return layer_ladder([(0, self._single.cost_bps())], self.temporal_layers or 1)

    def set_active_layers(self, active: list[bool]) -> None:
        """Dynacast: which encodings the publisher was asked to send."""
        if self.simulcast is not None:
            self.simulcast.set_enabled(active, time.time())

    # ------------------------------------------------------------------ closing

    def close(self, reason: CloseReason = CloseReason.UNPUBLISHED) -> None:
        if self.closed:
            return
        self.closed = True
        for consumer in list(self._consumers.values()):
            consumer.producer_closed()
        self._consumers.clear()
        self._active = ()
        self._relay_layers.clear()
        self._set_relays()
        self._idle_listeners.clear()
        if self.simulcast is not None:
            self.simulcast.clear()
        for listener in self._close_listeners:
            try:
                listener(self, reason)
            except Exception:
                logger.exception("producer close listener failed")
        self._close_listeners.clear()

    def __repr__(self) -> str:
        return f"Producer({self.id}, {self.source}, mid={self.mid})"
