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

import re
from dataclasses import dataclass, field

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from aiortc.rtcrtpreceiver import NackGenerator

from .rtp import DuplicateFilter, SeqUnwrapper

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MAX_LAYERS = 3
MAX_RID_LENGTH = 16  # RFC 8851 allows more; browsers use one or two characters
# What each encoding of the web client sends at most (web/static/js/tiers.js); other
# clients' layers get these by position until their bitrate is measured.
NOMINAL_BPS = (150_000, 500_000, 1_200_000)
NOMINAL_BY_RID = {"q": 150_000, "h": 500_000, "f": 1_200_000}
BITRATE_ALPHA = 0.5  # EWMA weight of the latest second's bitrate
FLOWING_TIMEOUT = 1.5  # seconds without a packet after which a layer is not flowing

_RID_TOKEN = re.compile(rf"^[A-Za-z0-9_-]{{1,{MAX_RID_LENGTH}}}$")


@dataclass(frozen=True, slots=True)
class SimulcastOffer:
    """The sending encodings one m-line of an offer announces."""

    mid: str
    rids: tuple[str, ...]  # lowest first
    rid_ext_id: int | None
    repaired_rid_ext_id: int | None


def parse_simulcast(sdp: str) -> dict[str, SimulcastOffer]:
    """The m-lines of an offer that send simulcast, by MID. Paused (``~``) and
    alternative encodings are ignored; more than :data:`MAX_LAYERS` are cut."""
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
        if mid is not None and len(rids) >= 2:
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
    that carry an offered simulcast m-line (and take the RID extension)."""
    if not offers:
        return answer
    eol = "\r\n" if "\r\n" in answer else "\n"
    lines = answer.split(eol)
    out: list[str] = []
    current: SimulcastOffer | None = None
    has_rid_ext = False

    def close_section() -> None:
        if current is not None and has_rid_ext:
            out.extend(f"a=rid:{rid} recv" for rid in current.rids)
            out.append("a=simulcast:recv " + ";".join(current.rids))

    for line in lines:
        if line.startswith("m=") or (line == "" and current is not None):
            close_section()
            current, has_rid_ext = None, False
        elif line.startswith("a=mid:"):
            current = offers.get(line[6:].strip())
        elif line.startswith("a=extmap:") and RID_URI in line and REPAIRED_RID_URI not in line:
            has_rid_ext = True
        out.append(line)
    close_section()
    return eol.join(out)


@dataclass(slots=True)
class ProducerLayer:
    """One encoding of a producer: its SSRCs and its own sequence-number space."""

    index: int
    rid: str | None
    ssrc: int | None = None
    rtx_ssrc: int | None = None
    unwrap: SeqUnwrapper = field(default_factory=SeqUnwrapper)
    dupes: DuplicateFilter = field(default_factory=DuplicateFilter)
    nack: NackGenerator = field(default_factory=NackGenerator)
    bytes: int = 0  # payload octets received (counted by the producer)
    packets: int = 0
    last_arrival: float = 0.0  # time.time() of the latest packet
    bitrate_bps: int = 0  # measured, smoothed
    enabled: bool = True  # dynacast: whether the publisher was asked to send it
    enabled_at: float = 0.0
    _counted: int = 0
    _counted_at: float = 0.0

    @property
    def nominal_bps(self) -> int:
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
        """What forwarding this layer costs: measured once it is known, else nominal.
        A ramping encoder sends less than its cap; plan for the cap."""
        return (
            max(self.bitrate_bps, self.nominal_bps // 2) if self.bitrate_bps else self.nominal_bps
        )
