"""VP8 payload descriptor (RFC 7741 section 4.2): what the layer switcher reads and
rewrites.

Layer switching needs, per packet: is it the first packet of a picture, of a
keyframe; the PictureID (7 or 15 bits), TL0PICIDX, temporal layer ID and the
layer-sync (Y) bit; and where PictureID and TL0PICIDX sit so they can be
rewritten in place for the subscriber. :func:`scan` reads all of it in one pass,
once per incoming packet; :func:`rewrite` makes the subscriber's copy.

Descriptor layout::

     X R N S R PID      X: extension present, S: start of partition, PID: partition
    [I L T K RSV   ]    I: PictureID, L: TL0PICIDX, T: TID/Y, K: KEYIDX present
    [M PictureID   ]    M: 15-bit PictureID (two bytes)
    [TL0PICIDX     ]
    [TID Y KEYIDX  ]
"""

from __future__ import annotations

PICTURE_ID_MOD_15 = 1 << 15
PICTURE_ID_MOD_7 = 1 << 7


class Vp8Info:
    """The layer facts of one VP8 packet. ``-1`` marks an absent field."""

    __slots__ = (
        "begin",
        "keyframe",
        "layer_sync",
        "picture_id",
        "pid_pos",
        "pid_wide",
        "temporal_id",
        "tl0_pos",
        "tl0picidx",
    )

    def __init__(
        self,
        *,
        begin: bool,
        keyframe: bool,
        picture_id: int = -1,
        pid_pos: int = -1,
        pid_wide: bool = False,
        tl0picidx: int = -1,
        tl0_pos: int = -1,
        temporal_id: int = -1,
        layer_sync: bool = False,
    ) -> None:
        self.begin = begin  # first packet of a picture (S=1, partition 0)
        self.keyframe = keyframe  # first packet of a keyframe
        self.picture_id = picture_id
        self.pid_pos = pid_pos  # offset of the PictureID in the payload
        self.pid_wide = pid_wide  # 15-bit PictureID (M=1)
        self.tl0picidx = tl0picidx
        self.tl0_pos = tl0_pos
        self.temporal_id = temporal_id
        self.layer_sync = layer_sync

    @property
    def picture_id_mod(self) -> int:
        return PICTURE_ID_MOD_15 if self.pid_wide else PICTURE_ID_MOD_7

    def __repr__(self) -> str:
        return (
            f"Vp8Info(begin={self.begin}, keyframe={self.keyframe}, pid={self.picture_id}, "
            f"tl0={self.tl0picidx}, tid={self.temporal_id}, sync={self.layer_sync})"
        )


def scan(payload: bytes) -> Vp8Info | None:
    """Read the descriptor of one packet; ``None`` when it is truncated or empty."""
    n = len(payload)
    if n < 1:
        return None
    b0 = payload[0]
    begin = bool(b0 & 0x10) and not (b0 & 0x07)
    pos = 1
    pid = pid_pos = tl0 = tl0_pos = tid = -1
    wide = sync = False
    if b0 & 0x80:
        if n < 2:
            return None
        b1 = payload[1]
        pos = 2
        if b1 & 0x80:  # I
            if n <= pos:
                return None
            pid_pos = pos
            if payload[pos] & 0x80:
                if n <= pos + 1:
                    return None
                pid = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
                wide = True
                pos += 2
            else:
                pid = payload[pos]
                pos += 1
        if b1 & 0x40:  # L
            if n <= pos:
                return None
            tl0_pos = pos
            tl0 = payload[pos]
            pos += 1
        if b1 & 0x30:  # T or K
            if n <= pos:
                return None
            if b1 & 0x20:
                tid = payload[pos] >> 6
                sync = bool(payload[pos] & 0x20)
            pos += 1
    keyframe = begin and n > pos and not (payload[pos] & 0x01)
    return Vp8Info(
        begin=begin,
        keyframe=keyframe,
        picture_id=pid,
        pid_pos=pid_pos,
        pid_wide=wide,
        tl0picidx=tl0,
        tl0_pos=tl0_pos,
        temporal_id=tid,
        layer_sync=sync,
    )


def rewrite(payload: bytes, info: Vp8Info, picture_id: int, tl0picidx: int) -> bytes:
    """A copy of ``payload`` carrying ``picture_id`` (reduced to the field's width)
    and ``tl0picidx`` (mod 256); fields the packet lacks are left alone. The
    descriptor keeps its size, so nothing else moves."""
    out = bytearray(payload)
    pos = info.pid_pos
    if pos >= 0:
        if info.pid_wide:
            v = picture_id & 0x7FFF
            out[pos] = 0x80 | (v >> 8)
            out[pos + 1] = v & 0xFF
        else:
            out[pos] = picture_id & 0x7F
    if info.tl0_pos >= 0:
        out[info.tl0_pos] = tl0picidx & 0xFF
    return bytes(out)


def build_descriptor(
    *,
    begin: bool = True,
    picture_id: int | None = None,
    wide: bool = True,
    tl0picidx: int | None = None,
    temporal_id: int | None = None,
    layer_sync: bool = False,
    keyframe: bool = False,
    body: bytes = b"\x00\x00\x00",
) -> bytes:
    """A VP8 payload with the given descriptor (tests and tools build packets with it).

    ``body`` follows the descriptor; its first byte's P bit is set for interframes."""
    b0 = 0x10 if begin else 0x00
    ext = 0
    fields = bytearray()
    if picture_id is not None:
        ext |= 0x80
        if wide:
            fields += bytes((0x80 | ((picture_id >> 8) & 0x7F), picture_id & 0xFF))
        else:
            fields.append(picture_id & 0x7F)
    if tl0picidx is not None:
        ext |= 0x40
        fields.append(tl0picidx & 0xFF)
    if temporal_id is not None:
        ext |= 0x20
        fields.append(((temporal_id & 0x03) << 6) | (0x20 if layer_sync else 0))
    head = bytearray((b0 | 0x80, ext)) + fields if ext else bytearray((b0,))
    first = body[0] if body else 0
    first = (first & ~0x01) if keyframe else (first | 0x01)
    return bytes(head) + bytes((first,)) + body[1:]
