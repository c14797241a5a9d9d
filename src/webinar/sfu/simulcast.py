"""Simulcast on the publish side: negotiating it, and the layers of a producer.

aiortc does not negotiate simulcast. What browsers need (RFC 8853): the RID and
repaired-RID header extensions accepted in the answer, and ``a=rid:<rid> recv``
plus ``a=simulcast:recv <rid>;<rid>;...`` in the answer's m-section. Chrome then
sends each encoding on its own SSRC, with the RID extension in each stream's
first packets only (and the repaired RID on its RTX stream): the producer learns
RID -> SSRC from those and routes by SSRC afterwards.

The encodings of one m-line are the producer's *layers*, lowest first (the
order of the offer's ``a=simulcast`` list, which the web client sends lowest
first). A browser that sends one stream (no simulcast) has a single layer 0.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import RtpPacket

from .allocator import Layer, video_ladder
from .ingest import Ingest, ProducerStats
from .rtp import DuplicateFilter, MediaPacket, SeqUnwrapper

if TYPE_CHECKING:
    from .ingest import Tap

logger = logging.getLogger(__name__)

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MAX_LAYERS = 3
MAX_RID_LENGTH = 16  # RFC 8851 allows more; browsers use one or two characters
# What each encoding of the web client sends at most (web/static/js/tiers.js); other
# clients' layers get these by position until their bitrate is measured.
NOMINAL_BPS = (150_000, 500_000, 1_200_000)
NOMINAL_BY_RID = {"q": 150_000, "h": 500_000, "f": 1_200_000}
# The publisher's send-side estimate starts here (Chrome's x-google-start-bitrate, kbit/s)
# rather than at 300 kbit/s: with REMB alone the top encoding would start after 15-20 s.
START_BITRATE_KBPS = 1200
BITRATE_ALPHA = 0.5  # EWMA weight of the latest second's bitrate
FLOWING_TIMEOUT = 1.5  # seconds without a packet after which a layer is not flowing
# ... and it is stalled after this long while another encoding of the same publisher sent
# just now (within a third of it): the browser stopped this one itself (Chrome drops its top
# encoding while its CPU is busy, for seconds at a time). Subscribers and the recorder move
# off it at once; left in their ladder until it timed out, it froze them for 2 s and more.
STALLED_AFTER = 0.6

_RID_TOKEN = re.compile(rf"^[A-Za-z0-9_-]{{1,{MAX_RID_LENGTH}}}$")


@dataclass(frozen=True, slots=True)
class SimulcastOffer:
    """The sending encodings one m-line of an offer announces."""

    mid: str
    rids: tuple[str, ...]  # lowest first
    rid_ext_id: int | None
    repaired_rid_ext_id: int | None


def parse_simulcast(sdp: str) -> dict[str, SimulcastOffer]:
    """The m-lines of an offer that send simulcast (two or more RIDs) or offer the RID
    extension, by MID. Paused (``~``) and alternative encodings are ignored; more
    than :data:`MAX_LAYERS` are cut. The RID extension is accepted wherever it is
    offered: a browser refuses its own later offer to simulcast on an m-line whose
    answer did not take it."""
    found: dict[str, SimulcastOffer] = {}
    for section in _sections(sdp):
        mid = None
        send_rids: list[str] = []
        listed: list[str] = []
        ext: dict[str, int] = {}
        for line in section:
            if line.startswith("a=mid:"):
                mid = line[6:].strip()
            elif line.startswith("a=rid:"):
                parts = line[6:].split()
                if len(parts) >= 2 and parts[1] == "send" and _RID_TOKEN.match(parts[0]):
                    send_rids.append(parts[0])
            elif line.startswith("a=simulcast:"):
                parts = line[12:].split()
                if len(parts) >= 2 and parts[0] == "send":
                    for alt in parts[1].split(";"):
                        rid = alt.split(",")[0]
                        if rid and not rid.startswith("~") and _RID_TOKEN.match(rid):
                            listed.append(rid)
            elif line.startswith("a=extmap:"):
                head, _, rest = line[9:].partition(" ")
                uri = rest.split()[0] if rest else ""
                try:
                    ext[uri] = int(head.split("/")[0])
                except ValueError:
                    continue
        rids = tuple(r for r in (listed or send_rids) if r in send_rids)[:MAX_LAYERS]
        if mid is not None and (len(rids) >= 2 or RID_URI in ext):
            found[mid] = SimulcastOffer(
                mid=mid,
                rids=rids,
                rid_ext_id=ext.get(RID_URI),
                repaired_rid_ext_id=ext.get(REPAIRED_RID_URI),
            )
    return found


def _sections(sdp: str) -> list[list[str]]:
    sections: list[list[str]] = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
    return sections


def extensions_with_rid(
    common: list[RTCRtpHeaderExtensionParameters], offer: SimulcastOffer
) -> list[RTCRtpHeaderExtensionParameters]:
    """The m-line's negotiated header extensions plus the RID ones the offer used."""
    out = [e for e in common if e.uri not in (RID_URI, REPAIRED_RID_URI)]
    if offer.rid_ext_id is not None:
        out.append(RTCRtpHeaderExtensionParameters(id=offer.rid_ext_id, uri=RID_URI))
    if offer.repaired_rid_ext_id is not None:
        out.append(
            RTCRtpHeaderExtensionParameters(id=offer.repaired_rid_ext_id, uri=REPAIRED_RID_URI)
        )
    return out


def answer_with_simulcast(answer: str, offers: dict[str, SimulcastOffer]) -> str:
    """Add ``a=rid:... recv`` and ``a=simulcast:recv ...`` to the answer's m-sections
    that carry an offered simulcast m-line (and take the RID extension), and the
    start bitrate for their VP8."""
    if not offers:
        return answer
    eol = "\r\n" if "\r\n" in answer else "\n"
    lines = answer.split(eol)
    out: list[str] = []
    current: SimulcastOffer | None = None
    has_rid_ext = False
    section_start = 0

    def close_section() -> None:
        if current is None or not has_rid_ext or len(current.rids) < 2:
            return
        out.extend(f"a=rid:{rid} recv" for rid in current.rids)
        out.append("a=simulcast:recv " + ";".join(current.rids))
        _start_bitrate(out, section_start)

    for line in lines:
        if line.startswith("m=") or (line == "" and current is not None):
            close_section()
            current, has_rid_ext = None, False
            section_start = len(out)
        elif line.startswith("a=mid:"):
            current = offers.get(line[6:].strip())
        elif line.startswith("a=extmap:") and RID_URI in line and REPAIRED_RID_URI not in line:
            has_rid_ext = True
        out.append(line)
    close_section()
    return eol.join(out)


def _start_bitrate(section: list[str], start: int) -> None:
    """``x-google-start-bitrate`` on the section's VP8 format (added, or appended)."""
    pts = [
        line[9:].split()[0]
        for line in section[start:]
        if line.startswith("a=rtpmap:") and "vp8/" in line.lower()
    ]
    param = f"x-google-start-bitrate={START_BITRATE_KBPS}"
    for pt in pts:
        prefix = f"a=fmtp:{pt} "
        for i in range(start, len(section)):
            if section[i].startswith(prefix):
                if "x-google-start-bitrate" not in section[i]:
                    section[i] += ";" + param
                break
        else:
            rtpmap = next(
                i for i in range(start, len(section)) if section[i].startswith(f"a=rtpmap:{pt} ")
            )
            section.insert(rtpmap + 1, prefix + param)


@dataclass(slots=True)
class ProducerLayer:
    """One encoding of a producer: its SSRCs, its own sequence-number space and what
    :class:`~webinar.sfu.ingest.Ingest` keeps per encoding (a single stream is one
    of these too)."""

    index: int
    rid: str | None
    ssrc: int | None = None
    rtx_ssrc: int | None = None
    unwrap: SeqUnwrapper = field(default_factory=SeqUnwrapper)
    dupes: DuplicateFilter = field(default_factory=DuplicateFilter)
    nack: NackGenerator = field(default_factory=NackGenerator)
    pli_held: bool = False  # a keyframe request inside the interval waits
    pli_at: float = -math.inf  # time.monotonic() of the last PLI sent for it
    bytes: int = 0  # payload octets received (counted by the ingest)
    packets: int = 0
    last_arrival: float = 0.0  # time.time() of the latest packet
    bitrate_bps: int = 0  # measured, smoothed
    enabled: bool = True  # dynacast: whether the publisher was asked to send it
    enabled_at: float = 0.0
    nominal: int = 0  # planned bitrate before it is measured; 0: by RID / position
    width: int = 0  # the picture size of its latest keyframe (0: none seen yet)
    height: int = 0
    _counted: int = 0
    _counted_at: float = 0.0

    @property
    def nominal_bps(self) -> int:
        if self.nominal:
            return self.nominal
        if self.rid in NOMINAL_BY_RID:
            return NOMINAL_BY_RID[self.rid]
        return NOMINAL_BPS[min(self.index, len(NOMINAL_BPS) - 1)]

    def flowing(self, now: float) -> bool:
        return self.packets > 0 and now - self.last_arrival < FLOWING_TIMEOUT

    def measure(self, now: float) -> None:
        """Fold the bytes since the last call into :attr:`bitrate_bps`."""
        elapsed = now - self._counted_at
        if self._counted_at == 0.0:
            self._counted, self._counted_at = self.bytes, now
            return
        if elapsed < 0.5:
            return
        rate = (self.bytes - self._counted) * 8 / elapsed
        self._counted, self._counted_at = self.bytes, now
        if not self.flowing(now):
            self.bitrate_bps = 0
        elif self.bitrate_bps == 0:
            self.bitrate_bps = int(rate)
        else:
            self.bitrate_bps = int((1 - BITRATE_ALPHA) * self.bitrate_bps + BITRATE_ALPHA * rate)

    def cost_bps(self) -> int:
        """What forwarding this layer costs: measured once it is known, else nominal
        (at least half of it: a still picture costs little until it moves, and each
        switch brings a keyframe)."""
        if not self.bitrate_bps:
            return self.nominal_bps
        return max(self.bitrate_bps, self.nominal_bps // 2)


# --------------------------------------------------------------------------- uplink

REMB_FLOOR_HOLD = 10.0  # seconds the floor stays off after the estimate fell
REMB_FALL = 0.95


class RembFloor:
    """The REMB a simulcast publisher is sent.

    aiortc's receive-side estimate never exceeds ~1.5x what arrives, so an encoding
    that is not running (not started yet, or turned off by dynacast) could never
    start: the browser only enables it once its estimate covers it. While the
    estimate is not falling, the publisher is told at least ``floor_bps`` (what its
    encodings need); a falling estimate (its uplink queueing) is passed on as is,
    and the floor stays off for a while. The browser's own loss-based control
    still backs off on a lossy uplink."""

    def __init__(self, floor_bps: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.floor_bps = floor_bps
        self._clock = clock
        self._last: int | None = None
        self._off_until = -1.0

    def __call__(self, bitrate_bps: int) -> int:
        now = self._clock()
        last, self._last = self._last, bitrate_bps
        if last is not None and bitrate_bps < last * REMB_FALL:
            self._off_until = now + REMB_FLOOR_HOLD
        if now < self._off_until:
            return bitrate_bps
        return max(bitrate_bps, self.floor_bps)


# --------------------------------------------------------------------------- ingress

# Keyframe requests (PLI) to one publisher, however many subscribers ask. Two limits, both
# enforced by :class:`KeyframeRequests`:
#
# * KEYFRAME_REQUEST_INTERVAL: seconds between any two PLIs to one publisher, whichever
#   encodings they are for. Chrome ignores a keyframe request that comes within 300 ms of
#   the last one it answered, whichever encoding either was for (libwebrtc's
#   EncoderRtcpFeedback, kMinKeyframeSendIntervalMs), and answers one with keyframes on
#   all its encodings: a PLI sooner is wasted.
# * LAYER_KEYFRAME_INTERVAL: seconds between two PLIs for one encoding (one SSRC): at
#   most one a second, so 500 subscribers joining within a minute cost the publisher at
#   most one keyframe request a second per encoding, not one per joiner. A little over a
#   second, so that the publisher sees at most one in any second though their trip varies
#   (benchmarks/keyframe_storm.py, loopback on a loaded 2-core machine: the publisher's
#   process noted PLIs up to ~70 ms closer together than they were sent). This is
#   LiveKit's per-SSRC PLI throttle (pkg/rtc/plithrottle.go, later buffer.SendPLI with a
#   per-layer ``pli_throttle``: 1 s for the mid and high qualities), with one difference:
#   LiveKit drops a request inside the window and relies on the subscriber asking again;
#   here it is held and sent when the window ends, unless a keyframe of its layer came
#   meanwhile (then what it wanted came, and it is dropped). The first request after a
#   quiet second goes out at once, so a joiner's first frame is as fast as before; in a
#   storm a joiner waits for the next keyframe of its layer (half a second on average, at
#   most LAYER_KEYFRAME_INTERVAL), which is the price of the limit.
#
# A layer switch under a falling bandwidth estimate needs a keyframe of the lower layer
# soon (until it comes the subscriber keeps getting the higher one, over a link that can no
# longer carry it). The per-layer window does not delay it in the common case: the window
# is the lower layer's own, and a storm of joiners asks for the layer they watch, not the
# one others move down to. And a PLI for any layer brings (from Chrome) keyframes of all of
# them, so a request held for the lower layer is usually answered, and dropped, by the
# keyframe the last PLI for another layer brings. At worst it waits for the end of its
# layer's second. Sending it on another layer's SSRC instead (whose window is open) would
# be quicker with Chrome, but would bring keyframes of every layer up to three times a
# second in a storm, which is what the limit is for; it would also do nothing for a sender
# that answers per layer (``x-google-per-layer-pli``).
KEYFRAME_REQUEST_INTERVAL = 0.32
LAYER_KEYFRAME_INTERVAL = 1.05
STARTING_GRACE = 3.0  # seconds a layer that should run may take to start flowing


class KeyframeRequests:
    """The PLIs one publisher is sent, for its layers (a single stream is layer 0):
    at most one per :data:`KEYFRAME_REQUEST_INTERVAL` for the publisher and one per
    :data:`LAYER_KEYFRAME_INTERVAL` for each layer. A request inside either window is
    held (``layer.pli_held``): the ingest asks again with each of the layer's packets that
    is not a keyframe, and a keyframe of the layer drops it. Counted in the producer's
    ``keyframe_requests`` and ``keyframe_requests_by_layer``."""

    __slots__ = ("_last", "_stats", "_tap")

    def __init__(self, tap: Tap, stats: ProducerStats) -> None:
        self._tap = tap
        self._stats = stats
        self._last = -math.inf  # the last PLI for any layer

    def request(self, layer: ProducerLayer) -> bool:
        """Ask for a keyframe of ``layer``; True if a PLI went out now."""
        ssrc = layer.ssrc
        if ssrc is None:
            return False
        now = time.monotonic()
        if (
            now - self._last < KEYFRAME_REQUEST_INTERVAL
            or now - layer.pli_at < LAYER_KEYFRAME_INTERVAL
        ):
            layer.pli_held = True
            return False
        layer.pli_held = False
        self._last = layer.pli_at = now
        by_layer = self._stats.keyframe_requests_by_layer
        while len(by_layer) <= layer.index:
            by_layer.append(0)
        by_layer[layer.index] += 1
        self._tap.send_pli(ssrc)
        return True


class LayerListener(Protocol):
    """What the ingress hands a layer's packets to (a consumer)."""

    @property
    def id(self) -> str: ...

    def forward(self, mp: MediaPacket) -> None: ...

    def restart(self) -> None: ...


class SimulcastIngress:
    """The layers of one simulcast producer: learns RID -> SSRC, keeps each layer's
    sequence space, NACKs, keyframe requests and sender reports, and hands each
    packet only to the consumers listening to its layer."""

    def __init__(self, rids: tuple[str, ...], tap: Tap, stats: ProducerStats) -> None:
        self.layers = [ProducerLayer(index=i, rid=rid) for i, rid in enumerate(rids)]
        self.by_layer: list[tuple[LayerListener, ...]] = [() for _ in rids]
        self.sender_reports: list[tuple[int, int, float] | None] = [None] * len(rids)
        self._tap = tap
        self._stats = stats
        self._ingest = Ingest(tap, stats, video=True, request_keyframe=self.request_keyframe)
        self.ingest = self._ingest
        tap.remb_filter = RembFloor(sum(layer.nominal_bps for layer in self.layers))
        self._by_rid = {layer.rid: layer for layer in self.layers}
        self._media: dict[int, ProducerLayer] = {}
        self._rtx: dict[int, ProducerLayer] = {}
        self._listening: dict[str, tuple[LayerListener, tuple[int, ...]]] = {}
        self._keyframes = KeyframeRequests(tap, stats)
        created = time.time()  # wall clock, like arrival times: layers may start till then
        for layer in self.layers:
            layer.enabled_at = created
            known = tap.rid_ssrcs.get(layer.rid or "")
            if known is not None:  # an earlier producer on this m-line learned them
                layer.ssrc, layer.rtx_ssrc = known
                if layer.ssrc is not None:
                    self._media[layer.ssrc] = layer
                if layer.rtx_ssrc is not None:
                    self._rtx[layer.rtx_ssrc] = layer

    # ------------------------------------------------------------------ listeners

    def listen(self, listener: LayerListener, layers: tuple[int, ...]) -> None:
        self._listening[listener.id] = (listener, layers)
        self._rebuild()

    def forget(self, listener: LayerListener) -> None:
        if self._listening.pop(listener.id, None) is not None:
            self._rebuild()

    def clear(self) -> None:
        self._listening.clear()
        self._rebuild()

    def _rebuild(self) -> None:
        self.by_layer = [
            tuple(lst for lst, layers in self._listening.values() if index in layers)
            for index in range(len(self.layers))
        ]

    # ------------------------------------------------------------------ hot path

    @property
    def temporal_layers(self) -> int:
        """0 until a keyframe told: 1 (none) or 3 (L1T3)."""
        return self._ingest.temporal_layers

    def on_rtp(
        self,
        packet: RtpPacket,
        arrival_time_ms: int,
        codec_pt: int,
        rtx_pt: int | None,
        clock_rate: int,
        paused: bool,
    ) -> None:
        layer = self._media.get(packet.ssrc)
        rtx = False
        if layer is None:
            layer = self._rtx.get(packet.ssrc)
            if layer is not None:
                rtx = True
            else:
                learned = self._learn(packet, codec_pt, rtx_pt)
                if learned is None:
                    return
                layer, rtx = learned
        mp = self._ingest.receive(
            layer,
            packet,
            arrival_time_ms,
            clock_rate,
            rtx_pt if rtx else codec_pt,
            rtx,
            paused,
        )
        if mp is None:
            return
        for listener in self.by_layer[layer.index]:
            try:
                listener.forward(mp)
            except Exception:  # one subscriber's trouble never stops the others
                logger.exception("forwarding to %s failed", listener)

    def _learn(
        self, packet: RtpPacket, codec_pt: int, rtx_pt: int | None
    ) -> tuple[ProducerLayer, bool] | None:
        """A new SSRC: which layer (and whether its RTX) from the RID extensions."""
        ext = packet.extensions
        if ext.rtp_stream_id is not None and packet.payload_type == codec_pt:
            layer = self._by_rid.get(ext.rtp_stream_id)
            if layer is None:
                return None
            if layer.ssrc is not None and layer.ssrc != packet.ssrc:
                self._media.pop(layer.ssrc, None)  # a new encoder: a new sequence space
                layer.unwrap = SeqUnwrapper()
                layer.dupes = DuplicateFilter()
                layer.nack = NackGenerator()
                for listener in self.by_layer[layer.index]:
                    listener.restart()
            layer.ssrc = packet.ssrc
            self._media[packet.ssrc] = layer
            self._tap.rid_ssrcs[layer.rid or ""] = [layer.ssrc, layer.rtx_ssrc]
            self._tap.claim_ssrc(packet.ssrc)  # its sender reports must reach us too
            return layer, False
        if ext.repaired_rtp_stream_id is not None and packet.payload_type == rtx_pt:
            layer = self._by_rid.get(ext.repaired_rtp_stream_id)
            if layer is None:
                return None
            if layer.rtx_ssrc is not None:
                self._rtx.pop(layer.rtx_ssrc, None)
            layer.rtx_ssrc = packet.ssrc
            self._rtx[packet.ssrc] = layer
            self._tap.rid_ssrcs[layer.rid or ""] = [layer.ssrc, layer.rtx_ssrc]
            return layer, True
        return None

    # ------------------------------------------------------------------ control

    def request_keyframe(self, index: int) -> bool:
        """Ask for a keyframe of a layer (see :class:`KeyframeRequests`); True if a PLI
        went out now."""
        if not 0 <= index < len(self.layers):
            return False
        return self._keyframes.request(self.layers[index])

    def on_sender_report(self, ssrc: int, ntp: int, rtp: int, arrived: float) -> bool:
        layer = self._media.get(ssrc)
        if layer is None:
            return False
        self.sender_reports[layer.index] = (ntp, rtp, arrived)
        return True

    def set_enabled(self, active: list[bool], now: float) -> None:
        for layer, on in zip(self.layers, active, strict=False):
            if on and not layer.enabled:
                layer.enabled_at = now
            layer.enabled = on

    def measure(self, now: float) -> None:
        for layer in self.layers:
            layer.measure(now)

    def ladder(self, now: float) -> tuple[Layer, ...]:
        """What a subscriber may be given (``now`` is ``time.time()``): running layers,
        layers dynacast turned off (turned on again on demand), and ones still
        starting; not ones that should run but do not (the publisher's uplink or
        camera cannot carry them)."""
        usable = [
            layer
            for layer in self.layers
            if not layer.enabled
            or (
                (
                    layer.flowing(now)
                    or now - max(layer.enabled_at, self._started_at(layer)) < STARTING_GRACE
                )
                and not self.stalled(layer, now)
            )
        ]
        return layer_ladder(
            [(layer.index, layer.cost_bps()) for layer in usable], self.temporal_layers or 3
        )

    def _started_at(self, layer: ProducerLayer) -> float:
        return layer.last_arrival if layer.packets else 0.0

    def stalled(self, layer: ProducerLayer, now: float) -> bool:
        """Did the publisher stop sending this layer after it had started (since it was
        last turned on), quiet for :data:`STALLED_AFTER` while another of its encodings
        sent just now (``now`` is ``time.time()``)? Its own quiet start, and a still
        picture or a stall of the whole stream that quiets them all, are not."""
        if not layer.packets or layer.last_arrival <= layer.enabled_at:
            return False
        if now - layer.last_arrival < STALLED_AFTER:
            return False
        return any(
            other is not layer and other.packets and now - other.last_arrival < STALLED_AFTER / 3
            for other in self.layers
        )


def layer_ladder(costs: list[tuple[int, int]], temporal_layers: int) -> tuple[Layer, ...]:
    """Rungs from (spatial index, bitrate) pairs, lowest first: the lowest at each
    frame rate, the others at full frame rate (indices need not be contiguous)."""
    return _layer_ladder(tuple(costs), temporal_layers)


@functools.lru_cache(maxsize=1024)
def _layer_ladder(costs: tuple[tuple[int, int], ...], temporal_layers: int) -> tuple[Layer, ...]:
    """(Every subscriber's allocation asks each producer for its ladder twice a second,
    and the costs change about once a second: one immutable answer for all of them.)"""
    if not costs:
        return ()
    rungs = video_ladder([bps for _, bps in costs], temporal_layers)
    indices = [index for index, _ in costs]
    return tuple(Layer(indices[r.spatial], r.temporal, r.bitrate_bps) for r in rungs)
