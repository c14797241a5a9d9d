"""RTP helpers for the forwarding path: the packet as the SFU keeps it, VP8 payload
descriptor parsing, sequence-number unwrapping, duplicate detection and header
building. Pure functions and small classes, no I/O; everything here is on the hot
path, so it stays allocation-light."""

from __future__ import annotations

from dataclasses import dataclass

from .vp8 import Vp8Info

NTP_EPOCH_OFFSET = 2208988800  # seconds between 1900-01-01 and 1970-01-01


def ntp_from_seconds(t: float) -> int:
    t += NTP_EPOCH_OFFSET
    return (int(t) << 32) | int((t % 1) * (1 << 32))


def abs_send_time_bytes(now: float) -> bytes:
    """abs-send-time header extension value: 6.18 fixed point seconds, 24 bits."""
    v = int(now * (1 << 18)) & 0xFFFFFF
    return bytes(((v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF))


@dataclass(slots=True)
class MediaPacket:
    """One incoming media packet (RTX already unwrapped), shared by all consumers.

    ``seq`` is the publisher's sequence number unwrapped to 64 bits so consumers
    can compute their own 16-bit numbers with a plain offset.
    """

    seq: int
    timestamp: int
    marker: int
    payload: bytes
    keyframe: bool  # first packet of a VP8 keyframe (always False for audio)
    audio_level: int  # raw ssrc-audio-level byte, -1 when absent
    arrival: float  # time.monotonic() at arrival
    abs_send_time: bytes  # 3 bytes, stamped once when forwarded
    layer: int = 0  # simulcast layer (encoding index, 0 = lowest); 0 for a single stream
    vp8: Vp8Info | None = None  # the VP8 descriptor, read once for layer switching


@dataclass(frozen=True, slots=True)
class Vp8Descriptor:
    start_of_partition: bool
    partition_id: int
    picture_id: int  # -1 when absent
    tl0picidx: int  # -1 when absent
    temporal_id: int  # -1 when absent
    layer_sync: bool
    header_size: int


def parse_vp8_descriptor(payload: bytes) -> Vp8Descriptor:
    """Parse the VP8 payload descriptor (RFC 7741 section 4.2)."""
    n = len(payload)
    if n < 1:
        raise ValueError("empty VP8 payload")
    b0 = payload[0]
    pos = 1
    picture_id = tl0 = tid = -1
    sync = False
    if b0 & 0x80:
        if n < 2:
            raise ValueError("truncated VP8 descriptor")
        b1 = payload[1]
        pos = 2
        if b1 & 0x80:  # I: picture id
            if n < pos + 1:
                raise ValueError("truncated VP8 picture id")
            if payload[pos] & 0x80:
                if n < pos + 2:
                    raise ValueError("truncated VP8 picture id")
                picture_id = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                pos += 2
            else:
                picture_id = payload[pos] & 0x7F
                pos += 1
        if b1 & 0x40:  # L: TL0PICIDX
            if n < pos + 1:
                raise ValueError("truncated VP8 TL0PICIDX")
            tl0 = payload[pos]
            pos += 1
        if b1 & 0x30:  # T or K
            if n < pos + 1:
                raise ValueError("truncated VP8 TID/KEYIDX")
            if b1 & 0x20:
                tid = payload[pos] >> 6
                sync = bool(payload[pos] & 0x20)
            pos += 1
    return Vp8Descriptor(
        start_of_partition=bool(b0 & 0x10),
        partition_id=b0 & 0x07,
        picture_id=picture_id,
        tl0picidx=tl0,
        temporal_id=tid,
        layer_sync=sync,
        header_size=pos,
    )


def vp8_is_keyframe_start(payload: bytes) -> bool:
    """True when ``payload`` is the first packet of a VP8 keyframe.

    Hot path: one call per incoming video packet, so no descriptor object."""
    n = len(payload)
    if n < 1:
        return False
    b0 = payload[0]
    if not (b0 & 0x10) or (b0 & 0x07):  # not S=1 with partition 0
        return False
    pos = 1
    if b0 & 0x80:
        if n < 2:
            return False
        b1 = payload[1]
        pos = 2
        if b1 & 0x80:
            if n <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if b1 & 0x40:
            pos += 1
        if b1 & 0x30:
            pos += 1
    if n <= pos:
        return False
    return not (payload[pos] & 0x01)  # VP8 payload header: P bit 0 means keyframe


def vp8_frame_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe's header (RFC 6386 section 9.1); ``None`` for
    anything else."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


def vp8_keyframe_size(payload: bytes) -> tuple[int, int] | None:
    """:func:`vp8_frame_size` of the first packet of a VP8 keyframe (``None`` otherwise).
    Called for keyframes only, so not on the hot path."""
    if not vp8_is_keyframe_start(payload):
        return None
    return vp8_frame_size(payload[parse_vp8_descriptor(payload).header_size :])


class SeqUnwrapper:
    """Extend 16-bit RTP sequence numbers to a monotonic 64-bit space."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = -1

    def unwrap(self, seq: int) -> int:
        last = self._last
        if last < 0:
            self._last = seq + (1 << 16)  # headroom so early reordering stays positive
            return self._last
        delta = (seq - last) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        ext = last + delta
        if delta > 0:
            self._last = ext
        return ext


class DuplicateFilter:
    """Remembers which of the last ``size`` unwrapped sequence numbers were seen."""

    __slots__ = ("_highest", "_mask", "_seen", "_size")

    def __init__(self, size: int = 2048) -> None:
        if size & (size - 1):
            raise ValueError("size must be a power of two")
        self._size = size
        self._mask = size - 1
        self._seen = [-1] * size
        self._highest = -1

    def first_time(self, seq: int) -> bool:
        """True the first time ``seq`` is seen; False for duplicates and for packets
        too old to tell (older than the window)."""
        if seq <= self._highest - self._size:
            return False
        slot = seq & self._mask
        if self._seen[slot] == seq:
            return False
        self._seen[slot] = seq
        if seq > self._highest:
            self._highest = seq
        return True


def one_byte_extension(ext_id: int, value: bytes) -> bytes:
    if not 1 <= ext_id <= 14:
        raise ValueError("one-byte header extension id must be 1..14")
    if not 1 <= len(value) <= 16:
        raise ValueError("one-byte header extension value must be 1..16 bytes")
    return bytes([(ext_id << 4) | (len(value) - 1)]) + value


def pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)
