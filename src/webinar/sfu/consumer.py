"""Consumer: one producer forwarded to one subscriber.

Per packet it rewrites SSRC, sequence number, timestamp, payload type, MID and
abs-send-time for its subscriber, keeps a history for retransmission and sends.
It answers the subscriber's NACKs from that history (each packet at most once per
100 ms), turns PLI/FIR into throttled keyframe requests to the publisher and
feeds REMB and receiver reports into the subscriber's bandwidth estimate.

It forwards in one of two ways: the plain path (a single stream at full frame
rate: a fixed sequence and timestamp offset) and the layered path (a
:class:`~webinar.sfu.layers.LayerSelector` picks simulcast encodings and temporal
layers). Unlike mediasoup's SimpleConsumer / SimulcastConsumer this is one class,
because the way is not fixed when the consumer is made: a single stream's consumer
moves from the plain path to the layered one, continuing its numbering, the first
time its allocation asks for fewer temporal layers, and the consumer object is held
by the transport, the room and the producer by then. The hot path pays one
attribute test for it (``self._sel`` in :meth:`Consumer.forward`).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    unpack_remb_fci,
)

from . import native
from .allocator import Layer
from .estimator import NackBurst, RttSample
from .layers import MAX_TEMPORAL, LayerSelector
from .rtp import MediaPacket, abs_send_time_bytes, ntp_from_seconds, one_byte_extension, pad4
from .types import CloseReason, ConsumerId, ConsumerStats, MediaKind, new_id

if TYPE_CHECKING:
    from ._aiortc import PacketSink, SenderTap
    from .estimator import BandwidthEstimator
    from .producer import Producer
    from .twcc import TwccSender

logger = logging.getLogger(__name__)

HISTORY_SIZE = 1024  # packets kept per layered video consumer for retransmission (~8 s at 1 Mbps)
RESEND_INTERVAL = 0.1  # a sequence number is resent at most once per 100 ms
MAX_NACK_ITEMS = 128  # bound on the work done for one NACK
RTX_BURST_SECONDS = 0.1  # retransmissions sent at once: at most this long at their rate
RTX_PACKET = 1200  # ... and at least two packets of about this size
SR_HISTORY = 16  # sender reports remembered for round-trip times
RTT_ALPHA = 0.85  # smoothing of the round-trip time, as aiortc's sender does
MAX_PADDING_PACKETS = 64  # bound on one probing burst
_HDR = struct.Struct("!BBHIIHH")


@dataclass(frozen=True, slots=True)
class Handover:
    """Where a consumer's numbering stood when it let go of its m-line, so the next consumer
    on the same m-line (another producer shown in a player's slot) continues it: the
    subscriber sees one stream whose sequence numbers, timestamps, PictureIDs and sender
    report counters carry on, and decodes the new picture from its keyframe."""

    highest_out: int  # extended output sequence number of the last packet sent
    rtx_seq: int
    last_ts: int | None  # output timestamp of the last packet sent (None: nothing sent)
    last_arrival: float  # when that packet arrived (time.monotonic())
    last_payload: bytes | None  # its payload as sent (VP8: the PictureID to continue)
    packets: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ConsumerLayout:
    """How this subscriber's m-line was negotiated."""

    payload_type: int
    rtx_payload_type: int | None
    mid: str
    mid_ext_id: int | None  # None: the subscriber did not take the MID extension (SSRCs route)
    abs_send_time_ext_id: int | None  # video
    audio_level_ext_id: int | None  # audio
    # video: the transport-wide sequence number extension (then it replaces abs-send-time)
    twcc_ext_id: int | None = None


class Consumer:
    """Created paused: the subscriber must have the m-line before media flows."""

    selects_layers = True  # a subscriber's: it asks a simulcast producer for layers

    def __init__(
        self,
        *,
        producer: Producer,
        tap: SenderTap,
        estimator: BandwidthEstimator,
        on_closed: Callable[[Consumer, CloseReason], None],
        handover: Handover | None = None,
        take_over: Callable[[], Handover] | None = None,
        twcc: TwccSender | None = None,
        allocate: Callable[[], None] | None = None,
    ) -> None:
        """``handover``: continue the numbering another consumer left on this m-line.
        ``take_over`` (video): another consumer still sends on this m-line; this one starts
        at its producer's first keyframe, calling ``take_over()`` then: the other stops and
        hands its numbering over (a switch without a gap: make before break).
        ``allocate`` (video): the subscriber's allocation decides; the consumer forwards
        nothing until its first :meth:`set_allocation`, and ``allocate()`` asks for that
        allocation now (once it is negotiated and wanted). A subscriber whose budget affords
        fewer videos than it receives saw the others' first frames and then a pause, which
        a browser counts as a freeze of the whole pause (4-5 s in the tiers benchmark)."""
        self.id = ConsumerId(new_id("co"))
        self.producer = producer
        self.kind = producer.kind
        # Numbering and send counters in one struct the native fan-out reads and writes.
        self._n = native.numbers()
        self.stats = ConsumerStats(self._n)
        self.closed = False
        self.paused = True
        self.wanted = True  # the owner's wish; forwarding needs it and a negotiated m-line
        self._tap = tap
        self._estimator = estimator
        # The subscriber connection's transport-wide numbering, once the m-line took it.
        self._twcc_sender = twcc if producer.kind is MediaKind.VIDEO else None
        self._twcc: TwccSender | None = None
        # ... whose feedback, while it flows, reports the path's loss (audio's too)
        self._loss_judge = twcc
        self._nack_burst = NackBurst()
        self._rtx_tokens = 0.0
        self._rtx_at = time.monotonic()
        self._on_closed = on_closed
        self._sink: PacketSink | None = None
        self._layout: ConsumerLayout | None = None
        self._ssrc = tap.ssrc
        self._rtx_ssrc = tap.rtx_ssrc
        self._pt = 0
        self._rtx_pt: int | None = None
        self._need_keyframe = producer.kind is MediaKind.VIDEO
        self._started = False
        self._n.seq_offset = 0
        self._n.base_seq = 0  # first (unwrapped) input sequence number forwarded
        self._n.highest_out = _random_start()  # highest extended output sequence sent
        self._n.ts_offset = int.from_bytes(_randbytes(4), "big")
        self._rtx_seq = int.from_bytes(_randbytes(2), "big") & 0x7FFF
        self._video = producer.kind is MediaKind.VIDEO
        # Retransmission history. The plain path keeps none of its own: its output numbers
        # are the producer's plus an offset, so it finds a packet in the producer's
        # history (:meth:`history_packet`). The layered path rewrites numbers and payloads:
        # it keeps the packet and the output sequence number it went out with, by output
        # sequence number (a slot is reused after HISTORY_SIZE), made when it starts.
        self._hist_mp: list[MediaPacket | None] = []
        self._hist_seq: list[int] = []
        self._resent_at: list[float] = [0.0] * HISTORY_SIZE if self._video else []
        # (self._n.last: the last packet sent, for SRs without a publisher SR)
        self._head: struct.Struct = _HDR
        self._head_len = _HDR.size
        self._head_fixed: tuple[bytes, ...] = ()
        self._out: memoryview = memoryview(b"")
        self._mid_ext = b""
        self._ext_words = 0
        self._var_id = 0  # id byte of the per-packet extension element; 0: none
        self._has_level = False
        self._middle = b""
        self._middle_no_level = b""
        self._fast: struct.Struct = _HDR
        # What the native fan-out (_fanout.c) reads of the layout, in one attribute: PT,
        # video, extension id byte, audio level, header length, middle, middle without level.
        self._native_layout: tuple[int, bool, int, bool, int, bytes, bytes, Any] | None = None
        self._keyframe_asked = 0.0
        self.rtt: float | None = None  # seconds, smoothed, from receiver reports
        # our recent SRs: middle 32 bits of their NTP time -> when they were sent (wall)
        self._sr_sent: dict[int, float] = {}
        # the last receiver report's extended highest sequence: how many packets the
        # next one covers (its loss figure is only as good as that count)
        self._rr_highest: int | None = None
        # Layer switching (simulcast, temporal layers): a selector once one is needed;
        # until then (a single stream at full frame rate) the plain path above.
        self._sel: LayerSelector | None = None
        self.bandwidth_paused = False  # the allocation paused it to fit the connection
        self._allocate = allocate if self._video else None
        if self._allocate is not None:
            self.bandwidth_paused = True  # until its first allocation says otherwise
        self._handover: Handover | None = None
        self._take_over = take_over if self._video else None
        if handover is not None:
            self._continue(handover)

    def _continue(self, handover: Handover) -> None:
        """Carry on the numbering ``handover`` describes (before this consumer has sent)."""
        self._handover = handover
        self._n.highest_out = handover.highest_out
        self._rtx_seq = handover.rtx_seq
        self.stats.packets = handover.packets
        self.stats.bytes = handover.bytes
        sel = self._sel
        if sel is not None and handover.last_ts is not None:
            sel.seed_numbering(
                highest_out=handover.highest_out,
                ts_offset=self._n.ts_offset,
                last_ts=handover.last_ts,
                last_arrival=handover.last_arrival,
                last_payload=handover.last_payload,
            )

    # ------------------------------------------------------------------ setup

    def set_layout(self, layout: ConsumerLayout) -> None:
        """Called once the subscriber's answer fixed payload types and extensions.

        Fixes the header layout of every packet this consumer sends: the 12-byte RTP
        header, a one-byte-extension block with the MID and one per-packet element
        (abs-send-time for video, audio level for audio), padded to 32 bits. One
        ``struct`` writes it all into the sink's buffer per packet."""
        self._layout = layout
        self._pt = layout.payload_type
        self._rtx_pt = layout.rtx_payload_type
        mid = (
            one_byte_extension(layout.mid_ext_id, layout.mid.encode())
            if layout.mid_ext_id is not None
            else b""
        )
        if self._video and layout.twcc_ext_id is not None and self._twcc_sender is not None:
            # The subscriber reports when each packet arrived: its delay, read here, says
            # more than its REMB (which then leaves these packets out).
            var_fmt, var_id = "BH", bytes([(layout.twcc_ext_id << 4) | 1])
            self._twcc = self._twcc_sender
        elif self._video and layout.abs_send_time_ext_id is not None:
            var_fmt, var_id = "B3s", bytes([(layout.abs_send_time_ext_id << 4) | 2])
        elif not self._video and layout.audio_level_ext_id is not None:
            var_fmt, var_id = "BB", bytes([layout.audio_level_ext_id << 4])
        else:
            var_fmt, var_id = "", b""
        body = len(mid) + len(var_id) + {"B3s": 3, "BH": 2, "BB": 1, "": 0}[var_fmt]
        pad = len(pad4(b"\x00" * body)) - body
        self._ext_words = (body + pad) // 4
        self._var_id = var_id[0] if var_id else 0
        self._has_level = var_fmt == "BB"
        self._head = struct.Struct(f"!BBHIIHH{len(mid)}s{var_fmt}{pad}x")
        self._head_len = self._head.size
        self._mid_ext = mid
        # The forwarding path writes only what changes per packet, from byte 1 on:
        # marker|PT, sequence number, timestamp, then the constant SSRC, extension
        # header, MID and extension id as one string, then abs-send-time / level.
        # Byte 0 (V=2, X=1) and the padding stay as written here (every writer of
        # this buffer writes the same there).
        middle = struct.pack("!IHH", self._ssrc, 0xBEDE, self._ext_words) + mid + var_id
        self._middle = middle
        self._middle_no_level = middle[:-1] + b"\x00" if var_fmt == "BB" else middle
        tail = {"B3s": "3s", "BH": "H", "BB": "B", "": ""}[var_fmt]
        self._fast = struct.Struct(f"!BHI{len(middle)}s{tail}")
        # the native fan-out stamps transport-wide numbers in the sender's own arrays
        self._native_layout = (
            self._pt,
            self._video,
            self._var_id,
            self._has_level,
            self._head_len,
            self._middle,
            self._middle_no_level,
            self._twcc.native if self._twcc is not None else None,
        )
        self._sink = self._tap.sink()
        self._out = self._sink.out
        self._out[0 : self._head_len] = bytes([0x90]) + bytes(self._head_len - 1)
        if self.producer.simulcast is not None:
            self._selector()  # every packet of a simulcast producer goes through one
        elif self._video and (
            self._take_over is not None
            or (self._handover is not None and self._handover.last_ts is not None)
        ):
            # Another producer's picture on this m-line before: the selector continues its
            # PictureIDs, so the subscriber's decoder takes the new keyframe as what follows.
            self._selector()

    @property
    def ssrc(self) -> int:
        return self._ssrc

    @property
    def sending(self) -> bool:
        """Open and forwarding (it has sent and is not paused)."""
        return not self.closed and not self.paused and self._started

    @property
    def rtx_ssrc(self) -> int:
        return self._rtx_ssrc

    @property
    def mid(self) -> str | None:
        return self._layout.mid if self._layout else None

    def resume(self) -> None:
        """Start (or restart) forwarding if wanted; video waits for a keyframe."""
        if self.closed or not self.paused or self._layout is None or not self.wanted:
            return
        if self.bandwidth_paused:
            return
        self.paused = False
        if self._sel is not None:
            self._sel.restart()  # from a keyframe of the target layer, numbering unbroken
            self._keyframe_asked = time.monotonic()
            return
        self._started = False  # the next packet anchors a gap-free continuation
        if self._video:
            self._need_keyframe = True
            self.request_keyframe()

    def pause(self) -> None:
        self.paused = True

    def want(self, wanted: bool) -> None:
        """Set whether this subscriber should receive the stream now; no renegotiation."""
        self.wanted = wanted
        if wanted:
            if self.bandwidth_paused and self._allocate is not None and self._layout is not None:
                self._ask_allocation()  # never allocated yet: now, not at the next round
            self.resume()
        else:
            self.pause()

    def restart(self) -> None:
        """Continue after the producer paused: a fresh start point, no sequence gap."""
        if not self.paused:
            self.paused = True
            self.resume()

    # ------------------------------------------------------------------ hot path

    def forward(self, mp: MediaPacket) -> None:
        if self.paused:
            return
        sel = self._sel
        if sel is not None:
            self._forward_layered(sel, mp)
            return
        if self._need_keyframe:
            if not mp.keyframe or not self._sink_ready():
                self.stats.dropped_waiting_keyframe += 1
                return
            self._restart_at(mp)
        elif not self._started:
            self._restart_at(mp)
        nums = self._n
        if mp.seq < nums.base_seq:
            return  # from before this consumer started: never reuse a sequence number
        out_ext = mp.seq + nums.seq_offset
        if out_ext > nums.highest_out:
            nums.highest_out = out_ext
        out_seq = out_ext & 0xFFFF
        payload = mp.payload
        out = self._out
        ts = (mp.timestamp + nums.ts_offset) & 0xFFFFFFFF
        first = (mp.marker << 7) | self._pt
        if self._video:
            twcc = self._twcc
            if twcc is not None:
                seq = twcc.stamp(self._head_len + len(payload))
                self._fast.pack_into(out, 1, first, out_seq, ts, self._middle, seq)
            elif self._var_id:
                self._fast.pack_into(out, 1, first, out_seq, ts, self._middle, mp.abs_send_time)
            else:
                self._fast.pack_into(out, 1, first, out_seq, ts, self._middle)
        elif not self._has_level:
            self._fast.pack_into(out, 1, first, out_seq, ts, self._middle)
        elif mp.audio_level >= 0:
            self._fast.pack_into(out, 1, first, out_seq, ts, self._middle, mp.audio_level)
        else:  # keep the layout: padding where the level would be
            self._fast.pack_into(out, 1, first, out_seq, ts, self._middle_no_level, 0)
        head = self._head_len
        n = head + len(payload)
        out[head:n] = payload
        if self._sink.send_out(n):  # type: ignore[union-attr]
            nums.packets += 1
            nums.bytes += len(payload)
            nums.last = mp

    def _forward_layered(self, sel: LayerSelector, mp: MediaPacket) -> None:
        if self._take_over is not None:  # (a consumer taking over always has a selector)
            if not mp.keyframe or not self._sink_ready():
                self.stats.dropped_waiting_keyframe += 1
                return  # the consumer it replaces still sends meanwhile
            take_over, self._take_over = self._take_over, None
            self._continue(take_over())
        if sel.waiting and mp.keyframe and not self._sink_ready():
            self.stats.dropped_waiting_keyframe += 1
            return
        payload = sel.process(mp)
        if payload is None:
            return
        out_seq = sel.out_seq
        ts = (sel.out_ts - self._n.ts_offset) & 0xFFFFFFFF
        if payload is not mp.payload or ts != mp.timestamp:
            # This subscriber's own copy (rewritten descriptor, another layer's clock):
            # what the history resends must be what was sent.
            mp = MediaPacket(
                seq=mp.seq,
                timestamp=ts,
                marker=mp.marker,
                payload=payload,
                keyframe=mp.keyframe,
                audio_level=mp.audio_level,
                arrival=mp.arrival,
                abs_send_time=mp.abs_send_time,
                layer=mp.layer,
                vp8=mp.vp8,
            )
        self._started = True
        n = self._write(mp, self._pt, out_seq, self._ssrc, payload, -1)
        if self._sink.send_out(n):  # type: ignore[union-attr]
            nums = self._n
            nums.packets += 1
            nums.bytes += len(payload)
            nums.last = mp
        slot = out_seq & (HISTORY_SIZE - 1)
        self._hist_mp[slot] = mp
        self._hist_seq[slot] = out_seq

    # ------------------------------------------------------------------ layers

    @property
    def producer_key(self) -> str:
        return self.producer.id

    @property
    def is_audio(self) -> bool:
        return not self._video

    @property
    def sent_bytes(self) -> int:
        return self.stats.bytes

    @property
    def switching(self) -> bool:
        sel = self._sel
        return sel is not None and not self.paused and sel.switching

    @property
    def allocatable(self) -> bool:
        """Negotiated, wanted by its owner and open: the allocation may decide."""
        return not self.closed and self._layout is not None and self.wanted

    @property
    def selector(self) -> LayerSelector | None:
        return self._sel

    def ladder(self) -> tuple[Layer, ...]:
        return self.producer.ladder(time.time())

    def set_allocation(self, layer: Layer | None) -> None:
        """Apply the subscriber's allocation: a layer to aim at, or paused (``None``)."""
        if not self._video or self.closed:
            return
        self._allocate = None  # allocated: from now on the rounds decide
        if layer is None:
            if not self.bandwidth_paused:
                self.bandwidth_paused = True
                self.pause()
            return
        sel = self._sel
        if sel is None and (
            self.producer.simulcast is not None
            or (self.producer.temporal_layers > 1 and layer.temporal < MAX_TEMPORAL)
        ):
            sel = self._selector()
        if sel is not None:
            # Paused, it asks for the keyframe when it resumes: a request now (before the
            # connection is up, say) would be answered into nothing and hold the resume's
            # request back for the layer's keyframe interval (~1 s to the first frame)
            sel.set_target(layer.spatial, layer.temporal, ask=not self.paused)
        if self.bandwidth_paused:
            self.bandwidth_paused = False
            if self._sink_ready():
                self.resume()
            # else: the transport resumes it once connected (a keyframe asked for before
            # that would be dropped, and the next request waits a second)

    def _ask_allocation(self) -> None:
        allocate = self._allocate
        if allocate is not None:
            try:
                allocate()
            except Exception:
                logger.exception("allocation request failed")

    def _selector(self) -> LayerSelector:
        """Switch to the layered path, continuing what the plain path sent."""
        if self._sel is not None:
            return self._sel
        codec = self.producer.codec
        sel = LayerSelector(
            request_keyframe=self._layer_keyframe,
            on_listen=self._listen,
            clock_rate=codec.clock_rate if codec is not None else 90000,
        )
        last = self._n.last
        handover = self._handover if not self._started else None
        if handover is not None and handover.last_ts is not None:
            sel.seed_numbering(
                highest_out=self._n.highest_out,
                ts_offset=self._n.ts_offset,
                last_ts=handover.last_ts,
                last_arrival=handover.last_arrival,
                last_payload=handover.last_payload,
            )
            if not self.paused:
                sel.restart()
        elif self._started and not self.paused and not self._need_keyframe and last is not None:
            sel.continue_from(
                highest_out=self._n.highest_out,
                seq_offset=self._n.seq_offset,
                base_seq=self._n.base_seq,
                ts_offset=self._n.ts_offset,
                last_ts=(last.timestamp + self._n.ts_offset) & 0xFFFFFFFF,
                last_arrival=last.arrival,
            )
        else:
            sel.seed_numbering(
                highest_out=self._n.highest_out,
                ts_offset=self._n.ts_offset,
                last_ts=((last.timestamp + self._n.ts_offset) & 0xFFFFFFFF) if last else 0,
                last_arrival=last.arrival if last else 0.0,
                last_payload=last.payload if last else None,
            )
            if not self.paused:
                sel.restart()
        self._need_keyframe = False
        if self._video and not self._hist_mp:
            self._hist_mp = [None] * HISTORY_SIZE
            self._hist_seq = [-1] * HISTORY_SIZE
        self._sel = sel
        self._listen(sel.listening())
        return sel

    def send_padding(self, nbytes: int, now: float) -> int:
        """Probe the path: resend recent packets on the RTX stream (the subscriber
        already has them and drops them), stamped with a fresh send time so its
        bandwidth estimate counts them. Returns the payload bytes sent."""
        sink = self._sink
        if not self._video or sink is None or self._rtx_pt is None or self.paused:
            return 0
        sent = 0
        sel = self._sel
        out_seq = sel.out_seq if sel is not None else self._n.highest_out & 0xFFFF
        stamp = abs_send_time_bytes(time.time())
        for back in range(MAX_PADDING_PACKETS):
            if sent >= nbytes:
                break
            seq = (out_seq - back) & 0xFFFF
            mp = self.history_packet(seq)
            if mp is None:
                break
            probe = MediaPacket(
                seq=mp.seq,
                timestamp=mp.timestamp,
                marker=mp.marker,
                payload=mp.payload,
                keyframe=False,
                audio_level=mp.audio_level,
                arrival=mp.arrival,
                abs_send_time=stamp,
                layer=mp.layer,
                vp8=mp.vp8,
            )
            rtx_seq = self._rtx_seq
            self._rtx_seq = (rtx_seq + 1) & 0xFFFF
            n = self._write(
                probe, self._rtx_pt, rtx_seq, self._rtx_ssrc, mp.payload, seq, padding=True
            )
            if not sink.send_out(n):
                break
            sent += len(mp.payload)
        self.stats.padding_bytes += sent
        return sent

    def _listen(self, layers: tuple[int, ...]) -> None:
        self.producer.listen(self, layers)

    def _layer_keyframe(self, layer: int) -> None:
        self._keyframe_asked = time.monotonic()
        self.producer.request_keyframe(layer)

    def _write(
        self,
        mp: MediaPacket,
        pt: int,
        seq: int,
        ssrc: int,
        payload: bytes,
        osn: int,
        padding: bool = False,
    ) -> int:
        """Write header, extensions and payload into the sink's buffer; returns the
        length. ``osn`` >= 0 makes it an RTX packet carrying that original number
        (``padding``: a probe's, sent to be dropped)."""
        out = self._out
        head = self._head_len
        ts = (mp.timestamp + self._n.ts_offset) & 0xFFFFFFFF
        first = (mp.marker << 7) | pt
        tail: tuple[int | bytes, ...]
        if self._var_id == 0:
            tail = ()
        elif self._twcc is not None:
            size = head + len(payload) + (2 if osn >= 0 else 0)
            tail = (self._var_id, self._twcc.stamp(size, padding))
        elif not self._has_level:
            tail = (self._var_id, mp.abs_send_time)
        elif mp.audio_level >= 0:
            tail = (self._var_id, mp.audio_level)
        else:  # keep the layout: padding bytes where the level would be
            tail = (0, 0)
        self._head.pack_into(
            out, 0, 0x90, first, seq, ts, ssrc, 0xBEDE, self._ext_words, self._mid_ext, *tail
        )
        if osn >= 0:
            out[head] = osn >> 8
            out[head + 1] = osn & 0xFF
            head += 2
        end = head + len(payload)
        out[head:end] = payload
        return end

    def _restart_at(self, mp: MediaPacket) -> None:
        self._need_keyframe = False
        handover = self._handover
        if handover is not None and not self._started and handover.last_ts is not None:
            # The first packet after another producer's on this m-line: its timestamp
            # follows theirs by the time that passed (as the selector does on a switch).
            codec = self.producer.codec
            rate = codec.clock_rate if codec is not None else (90000 if self._video else 48000)
            gap = max(int((mp.arrival - handover.last_arrival) * rate), 1)
            self._n.ts_offset = (handover.last_ts + gap - mp.timestamp) & 0xFFFFFFFF
        self._handover = None
        self._started = True
        self._n.base_seq = mp.seq
        self._n.seq_offset = self._n.highest_out + 1 - mp.seq

    def _sink_ready(self) -> bool:
        sink = self._sink
        return sink is not None and self._tap.sender.transport.state == "connected"

    # ------------------------------------------------------------------ feedback

    def handle_rtcp(self, packet: AnyRtcpPacket) -> None:
        """The subscriber's feedback on this stream (the transport routes it here)."""
        if self.closed:
            return
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self.stats.nacks += 1
            self.retransmit(packet.lost)
            if self._video and not self.paused:
                # Only what was sent and is still held counts as lost: after a pause or
                # a restart a browser may NACK numbers that never went out.
                now = time.monotonic()
                twcc = self._twcc
                if twcc is None or not twcc.judges_loss(now):
                    # (with transport-wide feedback flowing, loss is read from it: a
                    # browser NACKs packets a reordering path only delays)
                    held = self.history_packet
                    sent = [s for s in packet.lost if held(s) is not None]
                    burst = self._nack_burst.on_nack(sent, now) if sent else None
                    if burst is not None:
                        self._estimator.on_loss_burst(burst, now)
        elif isinstance(packet, RtcpPsfbPacket):
            if packet.fmt == RTCP_PSFB_PLI:
                self.stats.plis += 1
                self.producer.request_keyframe(self._sel.spatial if self._sel else 0)
            elif packet.fmt == RTCP_PSFB_FIR:
                self.stats.firs += 1
                self.producer.request_keyframe(self._sel.spatial if self._sel else 0)
            elif packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, _ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                self._estimator.on_remb(bitrate, time.monotonic())
        elif isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == self._ssrc:
                    self.on_report(report)

    def on_report(self, report: RtcpReceiverInfo) -> None:
        """A report block about this stream: loss, and RTT against our last SR."""
        if self.closed or report.ssrc != self._ssrc:
            # The RTX stream's block counts padding and retransmissions dropped long
            # ago, not this stream's loss.
            return
        self.stats.fraction_lost = report.fraction_lost
        now = time.time()
        sample: RttSample | None = None
        sent = self._sr_sent.get(report.lsr) if report.lsr else None
        if sent is not None:
            # Any recent SR, not only the last: while probing they go out every few
            # hundred ms, and the one a report names is the one that crossed the queue.
            rtt = now - sent - report.dlsr / 65536
            if rtt >= 0:
                self.rtt = rtt if self.rtt is None else RTT_ALPHA * self.rtt + (1 - RTT_ALPHA) * rtt
                mono = time.monotonic()
                sample = RttSample(
                    rtt=rtt,
                    sr_sent=mono - (now - sent),
                    arrived=mono,
                    lost=min(max(report.fraction_lost, 0), 255) / 256.0,
                )
        # The first report covers an unknown stretch: it counts as covering nothing,
        # so its loss alone cuts no budget. A report going backwards (the receiver
        # restarted its statistics) likewise.
        highest = report.highest_sequence & 0xFFFFFFFF
        previous, self._rr_highest = self._rr_highest, highest
        packets = (highest - previous) & 0xFFFFFFFF if previous is not None else 0
        if packets >= 0x80000000:
            packets = 0
        judge = self._loss_judge
        if judge is not None and judge.judges_loss(time.monotonic()):
            # The transport-wide feedback reports loss (TwccSender.on_loss_report): a
            # report's own counts a packet a reordering path delays past the report's end
            # as lost (0-300 ms of jitter: 10-35 %, and the budget went to audio only).
            if sample is not None:
                sample = dataclasses.replace(sample, lost=0.0)
            self._estimator.on_round_trip(time.monotonic(), self.rtt, sample)
            return
        self._estimator.on_receiver_report(
            report.fraction_lost,
            time.monotonic(),
            self.rtt,
            sample,
            video=self._video,
            packets=packets,
        )

    def retransmit(self, lost: list[int]) -> int:
        """Resend what the subscriber reported lost; returns how many were sent."""
        if not self._video or self._sink is None or self.paused:
            # Paused (the allocation took the stream off, or its owner did), the tile shows
            # no picture, and its resume starts again at a keyframe: what was lost before
            # is of no use, and resending it after a congestion cut kept the bottleneck's
            # queue full while the streams still shown lost packets in it.
            return 0
        now = time.monotonic()
        sent = 0
        resent_at = self._resent_at
        sink = self._sink
        # Once per round trip (a browser NACKs again after one; a queue that overflows
        # makes it long), and within the subscriber's retransmission allowance: a burst
        # of retransmissions into a shallow bottleneck queue is lost again and NACKed
        # again (seen: loss went on for 2.5 s at 60 % of a 700 kbit/s link).
        again = max(RESEND_INTERVAL, self.rtt or 0.0)
        rate = self._estimator.rtx_bps
        tokens = 0.0
        if rate:
            cap = max(rate / 8 * RTX_BURST_SECONDS, 2 * RTX_PACKET)
            tokens = min(cap, self._rtx_tokens + (now - self._rtx_at) * rate / 8)
            self._rtx_at = now
        for seq in lost[:MAX_NACK_ITEMS]:
            self.stats.nack_items += 1
            slot = seq & (HISTORY_SIZE - 1)
            mp = self.history_packet(seq)
            if mp is None:
                continue
            if now - resent_at[slot] < again:
                self.stats.resend_suppressed += 1
                continue
            if rate:
                if tokens < len(mp.payload):
                    self.stats.resend_suppressed += 1
                    continue
                tokens -= len(mp.payload)
            resent_at[slot] = now
            if self._rtx_pt is not None:
                rtx_seq = self._rtx_seq
                self._rtx_seq = (rtx_seq + 1) & 0xFFFF
                n = self._write(mp, self._rtx_pt, rtx_seq, self._rtx_ssrc, mp.payload, seq)
            else:
                n = self._write(mp, self._pt, seq, self._ssrc, mp.payload, -1)
            if sink.send_out(n):
                sent += 1
        self.stats.retransmitted += sent
        if rate:
            self._rtx_tokens = tokens
        return sent

    def history_packet(self, seq: int) -> MediaPacket | None:
        """The packet this consumer sent with output sequence number ``seq`` (16 bits), if
        still in a history and still of use: the layered path's own (only numbers sent
        since its latest switch or restart at a keyframe), else the producer's, by offset
        (only numbers sent since the plain path last (re)started map there)."""
        sel = self._sel
        if sel is not None:
            slot = seq & (HISTORY_SIZE - 1)
            if not self._hist_mp or self._hist_seq[slot] != seq or not sel.in_epoch(seq):
                return None  # (from before the keyframe the subscriber started again at)
            return self._hist_mp[slot]
        history = self.producer.history
        if not self._started or not history:
            return None
        highest = self._n.highest_out
        in_seq = highest - ((highest - seq) & 0xFFFF) - self._n.seq_offset
        if in_seq < self._n.base_seq:
            return None
        mp = history[in_seq & (len(history) - 1)]
        if mp is None or mp.seq != in_seq:
            return None
        return mp

    def request_keyframe(self) -> None:
        if self._video:
            self._keyframe_asked = time.monotonic()
            sel = self._sel
            self.producer.request_keyframe(sel.target_spatial if sel is not None else 0)

    def housekeeping(self, now_mono: float) -> None:
        """Called a few times per second: re-ask for a keyframe while waiting for one."""
        if self.closed or self._layout is None:
            return
        sel = self._sel
        if not self.paused and self._need_keyframe and now_mono - self._keyframe_asked > 1.0:
            self.request_keyframe()
        if sel is not None and not self.paused:
            sel.housekeeping()

    def sender_report(self, now_wall: float) -> RtcpSrPacket | None:
        """A truthful RTCP SR for what this consumer forwarded (None before it starts).

        Its RTP/NTP mapping is the publisher's, shifted by this consumer's timestamp
        offset, so browsers can lip-sync audio and video; without a publisher SR yet,
        the last forwarded packet anchors it. On the layered path: the mapping of the
        layer being forwarded, in its epoch's offset."""
        if self.closed or self._layout is None or not self._started:
            return None
        sel = self._sel
        codec = self.producer.codec
        if sel is None:
            sr, offset = self.producer.sender_report, self._n.ts_offset
        else:  # the layer being forwarded, in its epoch's timestamp offset
            sr, offset = self.producer.sender_report_of(max(sel.spatial, 0)), sel.ts_offset
        if sr is not None and codec is not None:
            elapsed = now_wall - sr.arrived
            ntp = sr.ntp + int(elapsed * (1 << 32))
            rtp = (sr.rtp + offset + int(elapsed * codec.clock_rate)) & 0xFFFFFFFF
        elif self._n.last is not None:
            ntp = ntp_from_seconds(self._n.last.arrival)
            rtp = (self._n.last.timestamp + self._n.ts_offset) & 0xFFFFFFFF
        else:
            return None
        ntp &= 0xFFFFFFFFFFFFFFFF
        sr_sent = self._sr_sent
        sr_sent[(ntp >> 16) & 0xFFFFFFFF] = now_wall
        if len(sr_sent) > SR_HISTORY:
            del sr_sent[next(iter(sr_sent))]
        return RtcpSrPacket(
            ssrc=self._ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp,
                rtp_timestamp=rtp,
                packet_count=self.stats.packets & 0xFFFFFFFF,
                octet_count=self.stats.bytes & 0xFFFFFFFF,
            ),
        )

    # ------------------------------------------------------------------ closing

    def handover(self) -> Handover:
        """Where this consumer's numbering stands, for the next one on its m-line."""
        sel = self._sel
        last = self._n.last
        if sel is not None and sel.spatial >= 0:
            highest, last_ts, arrival = sel.highest_out, sel.last_ts, sel.last_arrival
        elif self._started and last is not None:
            highest = self._n.highest_out
            last_ts = (last.timestamp + self._n.ts_offset) & 0xFFFFFFFF
            arrival = last.arrival
        elif self._handover is not None:  # it never sent: pass on what it was handed
            return dataclasses.replace(
                self._handover,
                rtx_seq=self._rtx_seq,
                packets=self.stats.packets,
                bytes=self.stats.bytes,
            )
        else:
            return Handover(
                highest_out=self._n.highest_out,
                rtx_seq=self._rtx_seq,
                last_ts=None,
                last_arrival=0.0,
                last_payload=None,
                packets=self.stats.packets,
                bytes=self.stats.bytes,
            )
        return Handover(
            highest_out=highest,
            rtx_seq=self._rtx_seq,
            last_ts=last_ts,
            last_arrival=arrival,
            last_payload=last.payload if last is not None else None,
            packets=self.stats.packets,
            bytes=self.stats.bytes,
        )

    def producer_closed(self) -> None:
        self._close(CloseReason.PRODUCER_CLOSED, detach=False)

    def close(self, reason: CloseReason = CloseReason.UNSUBSCRIBED) -> None:
        self._close(reason, detach=True)

    def _close(self, reason: CloseReason, *, detach: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self.paused = True
        if detach:
            self.producer.remove_consumer(self)
        try:
            self._on_closed(self, reason)  # may take the handover: numbering still here
        except Exception:
            logger.exception("consumer close listener failed")
        self._hist_mp = []
        self._n.last = None

    def __repr__(self) -> str:
        return f"Consumer({self.id} of {self.producer.id}, mid={self.mid})"


def _randbytes(n: int) -> bytes:
    return secrets.token_bytes(n)


def _random_start() -> int:
    # Start in the lower half of the 16-bit space (as browsers do) so an early wrap
    # does not trip SRTP's replay window; the value is "the one before the first".
    return (int.from_bytes(_randbytes(2), "big") % 32768) - 1 + (1 << 16)
