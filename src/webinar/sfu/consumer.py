"""Consumer: one producer forwarded to one subscriber.

Per packet it rewrites SSRC, sequence number, timestamp, payload type, MID and
abs-send-time for its subscriber, keeps a history for retransmission and sends.
It answers the subscriber's NACKs from that history (each packet at most once per
100 ms), turns PLI/FIR into throttled keyframe requests to the publisher and
feeds REMB and receiver reports into the subscriber's bandwidth estimate.
"""

from __future__ import annotations

import logging
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from .rtp import MediaPacket, ntp_from_seconds, one_byte_extension, pad4
from .types import CloseReason, ConsumerId, MediaKind, new_id

if TYPE_CHECKING:
    from ._aiortc import PacketSink, SenderTap
    from .estimator import BandwidthEstimator
    from .producer import Producer

logger = logging.getLogger(__name__)

HISTORY_SIZE = 1024  # packets kept per video consumer for retransmission (~8 s at 1 Mbps)
RESEND_INTERVAL = 0.1  # a sequence number is resent at most once per 100 ms
MAX_NACK_ITEMS = 128  # bound on the work done for one NACK
_HDR = struct.Struct("!BBHIIHH")


@dataclass(frozen=True, slots=True)
class ConsumerLayout:
    """How this subscriber's m-line was negotiated."""

    payload_type: int
    rtx_payload_type: int | None
    mid: str
    mid_ext_id: int
    abs_send_time_ext_id: int | None  # video
    audio_level_ext_id: int | None  # audio


@dataclass(slots=True)
class ConsumerStats:
    packets: int = 0
    bytes: int = 0  # payload octets (what RTCP SR counts)
    retransmitted: int = 0
    nacks: int = 0
    nack_items: int = 0
    resend_suppressed: int = 0
    plis: int = 0
    firs: int = 0
    dropped_waiting_keyframe: int = 0
    fraction_lost: int = 0  # last receiver report, 0..255


class Consumer:
    """Created paused: the subscriber must have the m-line before media flows."""

    def __init__(
        self,
        *,
        producer: Producer,
        tap: SenderTap,
        estimator: BandwidthEstimator,
        on_closed: Callable[[Consumer, CloseReason], None],
    ) -> None:
        self.id = ConsumerId(new_id("co"))
        self.producer = producer
        self.kind = producer.kind
        self.stats = ConsumerStats()
        self.closed = False
        self.paused = True
        self.wanted = True  # the owner's wish; forwarding needs it and a negotiated m-line
        self._tap = tap
        self._estimator = estimator
        self._on_closed = on_closed
        self._sink: PacketSink | None = None
        self._layout: ConsumerLayout | None = None
        self._ssrc = tap.ssrc
        self._rtx_ssrc = tap.rtx_ssrc
        self._pt = 0
        self._rtx_pt: int | None = None
        self._ext_fixed = b""  # extension elements that are the same for every packet
        self._ext_words = 0
        self._need_keyframe = producer.kind is MediaKind.VIDEO
        self._started = False
        self._seq_offset = 0
        self._base_seq = 0  # first (unwrapped) input sequence number forwarded
        self._highest_out = _random_start()  # highest extended output sequence sent
        self._ts_offset = int.from_bytes(_randbytes(4), "big")
        self._last_out_ts = 0
        self._last_sent_at = 0.0
        self._rtx_seq = int.from_bytes(_randbytes(2), "big") & 0x7FFF
        self._video = producer.kind is MediaKind.VIDEO
        self._history: list[tuple[int, int, MediaPacket] | None] = (
            [None] * HISTORY_SIZE if self._video else []
        )
        self._resent_at: list[float] = [0.0] * HISTORY_SIZE if self._video else []
        self._keyframe_asked = 0.0
        tap.intercept_rtcp(self._handle_rtcp)

    # ------------------------------------------------------------------ setup

    def set_layout(self, layout: ConsumerLayout) -> None:
        """Called once the subscriber's answer fixed payload types and extensions."""
        self._layout = layout
        self._pt = layout.payload_type
        self._rtx_pt = layout.rtx_payload_type
        ext = one_byte_extension(layout.mid_ext_id, layout.mid.encode())
        self._ext_fixed = ext
        variable = 0
        if self._video and layout.abs_send_time_ext_id is not None:
            variable = 4
        elif not self._video and layout.audio_level_ext_id is not None:
            variable = 2
        total = len(pad4(ext + b"\x00" * variable))
        self._ext_words = total // 4
        self._ext_pad = b"\x00" * (total - len(ext) - variable)
        self._ast_id = (
            bytes([(layout.abs_send_time_ext_id << 4) | 2])
            if self._video and layout.abs_send_time_ext_id is not None
            else None
        )
        self._level_id = (
            bytes([layout.audio_level_ext_id << 4])
            if not self._video and layout.audio_level_ext_id is not None
            else None
        )
        self._sink = self._tap.sink()

    @property
    def mid(self) -> str | None:
        return self._layout.mid if self._layout else None

    def resume(self) -> None:
        """Start (or restart) forwarding if wanted; video waits for a keyframe."""
        if self.closed or not self.paused or self._layout is None or not self.wanted:
            return
        self.paused = False
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
        if self._need_keyframe:
            if not mp.keyframe or not self._sink_ready():
                self.stats.dropped_waiting_keyframe += 1
                return
            self._restart_at(mp)
        elif not self._started:
            self._restart_at(mp)
        elif mp.seq < self._base_seq:
            return  # from before this consumer started: never reuse a sequence number
        out_ext = mp.seq + self._seq_offset
        if out_ext > self._highest_out:
            self._highest_out = out_ext
        out_seq = out_ext & 0xFFFF
        out_ts = (mp.timestamp + self._ts_offset) & 0xFFFFFFFF
        data = self._build(mp, self._pt, out_seq, out_ts, self._ssrc, mp.payload)
        sink = self._sink
        assert sink is not None
        if sink.send_rtp(data):
            st = self.stats
            st.packets += 1
            st.bytes += len(mp.payload)
            self._last_out_ts = out_ts
            self._last_sent_at = mp.arrival
        if self._video:
            self._history[out_seq & (HISTORY_SIZE - 1)] = (out_seq, out_ts, mp)

    def _build(
        self, mp: MediaPacket, pt: int, seq: int, ts: int, ssrc: int, payload: bytes
    ) -> bytes:
        head = _HDR.pack(0x90, (mp.marker << 7) | pt, seq, ts, ssrc, 0xBEDE, self._ext_words)
        if self._ast_id is not None:
            return b"".join(
                (head, self._ext_fixed, self._ast_id, mp.abs_send_time, self._ext_pad, payload)
            )
        if self._level_id is not None and mp.audio_level >= 0:
            return b"".join(
                (
                    head,
                    self._ext_fixed,
                    self._level_id,
                    bytes((mp.audio_level,)),
                    self._ext_pad,
                    payload,
                )
            )
        if self._level_id is not None:  # keep the layout: a padding byte and a zero-length-0 slot
            return b"".join((head, self._ext_fixed, b"\x00\x00", self._ext_pad, payload))
        return b"".join((head, self._ext_fixed, self._ext_pad, payload))

    def _restart_at(self, mp: MediaPacket) -> None:
        self._need_keyframe = False
        self._started = True
        self._base_seq = mp.seq
        self._seq_offset = self._highest_out + 1 - mp.seq

    def _sink_ready(self) -> bool:
        sink = self._sink
        return sink is not None and self._tap.sender.transport.state == "connected"

    # ------------------------------------------------------------------ feedback

    async def _handle_rtcp(self, packet: AnyRtcpPacket) -> None:
        if self.closed:
            return
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self.stats.nacks += 1
            self.retransmit(packet.lost)
        elif isinstance(packet, RtcpPsfbPacket):
            if packet.fmt == RTCP_PSFB_PLI:
                self.stats.plis += 1
                self.producer.request_keyframe()
            elif packet.fmt == RTCP_PSFB_FIR:
                self.stats.firs += 1
                self.producer.request_keyframe()
            elif packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, _ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                self._estimator.on_remb(bitrate, time.monotonic())
        elif isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == self._ssrc:
                    self.stats.fraction_lost = report.fraction_lost
                    self._estimator.on_receiver_report(
                        report.fraction_lost, time.monotonic(), self._tap.rtt()
                    )

    def retransmit(self, lost: list[int]) -> int:
        """Resend what the subscriber reported lost; returns how many were sent."""
        if not self._video or self._sink is None:
            return 0
        now = time.monotonic()
        sent = 0
        history = self._history
        resent_at = self._resent_at
        for seq in lost[:MAX_NACK_ITEMS]:
            self.stats.nack_items += 1
            slot = seq & (HISTORY_SIZE - 1)
            entry = history[slot]
            if entry is None or entry[0] != seq:
                continue
            if now - resent_at[slot] < RESEND_INTERVAL:
                self.stats.resend_suppressed += 1
                continue
            resent_at[slot] = now
            out_seq, out_ts, mp = entry
            if self._rtx_pt is not None:
                rtx_seq = self._rtx_seq
                self._rtx_seq = (rtx_seq + 1) & 0xFFFF
                data = self._build(
                    mp,
                    self._rtx_pt,
                    rtx_seq,
                    out_ts,
                    self._rtx_ssrc,
                    struct.pack("!H", out_seq) + mp.payload,
                )
            else:
                data = self._build(mp, self._pt, out_seq, out_ts, self._ssrc, mp.payload)
            if self._sink.send_rtp(data):
                sent += 1
        self.stats.retransmitted += sent
        return sent

    def request_keyframe(self) -> None:
        if self._video:
            self._keyframe_asked = time.monotonic()
            self.producer.request_keyframe()

    def housekeeping(self, now_wall: float, now_mono: float) -> None:
        """Called a few times per second by the router: keep RTCP SRs truthful and
        re-ask for a keyframe while still waiting for one."""
        if self.closed or self._layout is None:
            return
        if not self.paused and self._need_keyframe and now_mono - self._keyframe_asked > 1.0:
            self.request_keyframe()
        if not self._started:
            return
        codec = self.producer.codec
        sr = self.producer.sender_report
        if sr is not None and codec is not None:
            elapsed = now_wall - sr.arrived
            ntp = sr.ntp + int(elapsed * (1 << 32))
            rtp = (sr.rtp + self._ts_offset + int(elapsed * codec.clock_rate)) & 0xFFFFFFFF
        else:
            ntp = ntp_from_seconds(self._last_sent_at or now_wall)
            rtp = self._last_out_ts
        self._tap.sync_sender_report(
            self.stats.packets & 0xFFFFFFFF, self.stats.bytes & 0xFFFFFFFF, ntp, rtp
        )

    # ------------------------------------------------------------------ closing

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
        self._history = []
        try:
            self._on_closed(self, reason)
        except Exception:
            logger.exception("consumer close listener failed")

    def __repr__(self) -> str:
        return f"Consumer({self.id} of {self.producer.id}, mid={self.mid})"


def _randbytes(n: int) -> bytes:
    return secrets.token_bytes(n)


def _random_start() -> int:
    # Start in the lower half of the 16-bit space (as browsers do) so an early wrap
    # does not trip SRTP's replay window; the value is "the one before the first".
    return (int.from_bytes(_randbytes(2), "big") % 32768) - 1 + (1 << 16)
