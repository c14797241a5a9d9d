"""The receive pipeline of a published stream, written once.

A single-stream producer (:class:`~webinar.sfu.producer.Producer`) and each encoding
of a simulcast one (:class:`~webinar.sfu.simulcast.SimulcastIngress`) run the same
steps on a packet once its encoding is known: receiver statistics and REMB, RTX
unwrapping, sequence unwrapping, the duplicate filter, counters, NACKs, keyframe
detection (and a held keyframe request), the temporal-layer count, the audio level,
and the :class:`~webinar.sfu.rtp.MediaPacket` every consumer shares. Where the
packet goes next (batched to every consumer, or to one layer's listeners) is the
caller's; so is telling the encoding apart (by payload type for a single stream, by
SSRC and RID for simulcast).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import RtpPacket

from .rtp import MediaPacket, abs_send_time_bytes, vp8_is_keyframe_start, vp8_keyframe_size
from .vp8 import scan

if TYPE_CHECKING:
    from .simulcast import ProducerLayer

logger = logging.getLogger(__name__)


class Tap(Protocol):
    """Where a producer's packets come from and its feedback goes: a publisher's
    aiortc receiver (:class:`~webinar.sfu._aiortc.IngressTap`) or the receiving end
    of a pipe from another worker (:class:`~webinar.sfu.pipe.PipeIn`)."""

    nack: NackGenerator  # a single stream's NACK state (it outlives a producer on an m-line)
    remb_filter: Callable[[int], int] | None
    rid_ssrcs: dict[str, list[int | None]]  # RID -> [media SSRC, RTX SSRC] learned

    def account(self, packet: RtpPacket, arrival_time_ms: int, clock_rate: int) -> None: ...

    def send_nack(self, media_ssrc: int, lost: Iterable[int]) -> None: ...

    def send_pli(self, media_ssrc: int) -> None: ...

    def claim_ssrc(self, ssrc: int) -> None: ...


# A relay (a pipe to another worker) gets every packet of every layer once the ingest
# took it (after duplicates, before pausing): the layer it came on, and the packet.
Relay = Callable[["ProducerLayer", MediaPacket], None]


@dataclass(slots=True)
class ProducerStats:
    packets: int = 0
    bytes: int = 0
    duplicates: int = 0
    retransmissions: int = 0
    keyframes: int = 0
    #: PLIs sent to the publisher for each layer (simulcast encoding, lowest first; a single
    #: stream is 0)
    keyframe_requests_by_layer: list[int] = field(default_factory=list)
    nacks_sent: int = 0

    @property
    def keyframe_requests(self) -> int:
        """PLIs sent to the publisher, all layers."""
        return sum(self.keyframe_requests_by_layer)


class Ingest:
    """One producer's receive pipeline; the per-encoding state (sequence space,
    duplicate filter, NACK generator, held keyframe request, counters) lives in the
    :class:`~webinar.sfu.simulcast.ProducerLayer` each packet is received on."""

    __slots__ = (
        "_request_keyframe",
        "_tap",
        "_video",
        "loudest",
        "relays",
        "stats",
        "temporal_layers",
    )

    def __init__(
        self,
        tap: Tap,
        stats: ProducerStats,
        *,
        video: bool,
        request_keyframe: Callable[[int], object],
    ) -> None:
        """``request_keyframe(layer)``: ask for a keyframe of a layer again (a request
        held inside the publisher's keyframe interval, sent by the layer's next packet
        that is not a keyframe)."""
        self.stats = stats
        self.temporal_layers = 0  # 0 until a keyframe told: 1 (none) or 3 (L1T3)
        self.loudest = 127  # lowest -dBov seen since the producer last took it
        self._tap = tap
        self._video = video
        self._request_keyframe = request_keyframe
        self.relays: tuple[Relay, ...] = ()  # pipes to other workers

    def receive(
        self,
        layer: ProducerLayer,
        packet: RtpPacket,
        arrival_time_ms: int,
        clock_rate: int,
        payload_type: int | None,
        rtx: bool,
        paused: bool,
    ) -> MediaPacket | None:
        """One packet of ``layer`` (its RTX stream if ``rtx``), which must carry
        ``payload_type``; the packet to forward, or ``None`` (padding, a duplicate, a
        wrong payload type, or ``paused``: counted, not forwarded)."""
        self._tap.account(packet, arrival_time_ms, clock_rate)
        if packet.payload_type != payload_type:
            return None
        payload = packet.payload
        if rtx:
            if len(payload) < 2:  # RTX padding probe
                return None
            seq = (payload[0] << 8) | payload[1]
            payload = payload[2:]
        else:
            seq = packet.sequence_number
            layer.ssrc = packet.ssrc  # first packet, or a new track on a reused m-line
        if not payload:  # padding only
            return None
        ext = layer.unwrap.unwrap(seq)
        stats = self.stats
        if not layer.dupes.first_time(ext):
            stats.duplicates += 1
            return None
        n = len(payload)
        stats.packets += 1
        stats.bytes += n
        layer.packets += 1
        layer.bytes += n
        now = time.time()
        layer.last_arrival = now
        if rtx:
            stats.retransmissions += 1
        keyframe = False
        audio_level = -1
        if self._video:
            nack = layer.nack
            if rtx:
                nack.missing.discard(seq)
            elif nack.add(packet):
                stats.nacks_sent += 1
                self._tap.send_nack(packet.ssrc, nack.missing)
            keyframe = vp8_is_keyframe_start(payload)
            if keyframe:
                stats.keyframes += 1
                layer.pli_held = False  # what a held request wanted came
                size = vp8_keyframe_size(payload)
                if size is not None:  # what a tap choosing an encoding by size reads
                    layer.width, layer.height = size
                if not self.temporal_layers:
                    info = scan(payload)
                    self.temporal_layers = 3 if info is not None and info.temporal_id >= 0 else 1
            elif layer.pli_held:
                self._request_keyframe(layer.index)
        else:  # the audio-level extension is negotiated on audio m-lines only
            level = packet.extensions.audio_level
            if level is not None:
                if level[1] < self.loudest:
                    self.loudest = level[1]
                audio_level = (0x80 if level[0] else 0) | level[1]
        relays = self.relays
        if paused and not relays:  # nobody here or elsewhere takes it: build nothing
            return None
        mp = MediaPacket(
            seq=ext,
            timestamp=packet.timestamp,
            marker=packet.marker,
            payload=payload,
            keyframe=keyframe,
            audio_level=audio_level,
            arrival=now,
            abs_send_time=abs_send_time_bytes(now),
            layer=layer.index,
        )
        if relays:
            for relay in relays:
                try:
                    relay(layer, mp)
                except Exception:  # one pipe's trouble never stops the local consumers
                    logger.exception("relaying to %s failed", relay)
        return None if paused else mp
