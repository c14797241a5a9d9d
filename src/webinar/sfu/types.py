"""Small shared types of the forwarding engine."""

from __future__ import annotations

import enum
import secrets
from typing import TYPE_CHECKING, NewType, Protocol

if TYPE_CHECKING:
    from .layers import LayerSelector
    from .rtp import MediaPacket

ProducerId = NewType("ProducerId", str)
ConsumerId = NewType("ConsumerId", str)
TransportId = NewType("TransportId", str)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


class MediaKind(enum.StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


class MediaSource(enum.StrEnum):
    """What a published track carries; the camera limit counts ``CAMERA``."""

    MICROPHONE = "microphone"
    CAMERA = "camera"
    SCREEN = "screen"
    SCREEN_AUDIO = "screen-audio"

    @property
    def kind(self) -> MediaKind:
        if self in (MediaSource.MICROPHONE, MediaSource.SCREEN_AUDIO):
            return MediaKind.AUDIO
        return MediaKind.VIDEO


class CloseReason(enum.StrEnum):
    PRODUCER_CLOSED = "producer-closed"
    TRANSPORT_CLOSED = "transport-closed"
    ROUTER_CLOSED = "router-closed"
    UNPUBLISHED = "unpublished"
    UNSUBSCRIBED = "unsubscribed"
    CONNECTION_FAILED = "connection-failed"


class SfuErrorCode(enum.StrEnum):
    BAD_SDP = "bad-sdp"
    UNSUPPORTED_CODEC = "unsupported-codec"
    CAMERA_LIMIT = "camera-limit"
    TRACK_MISMATCH = "track-mismatch"
    CLOSED = "closed"
    NEGOTIATION = "negotiation-failed"


class SfuError(Exception):
    """A refusal of the forwarding engine, with a stable code for signalling."""

    def __init__(self, code: SfuErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- consumers


class SentCounts(Protocol):
    """Where a consumer's packet and byte counts live: with the native fan-out built, the
    consumer's numbering struct (:func:`webinar.sfu.native.numbers`), which the C code
    writes directly."""

    packets: int
    bytes: int


class _Counts:
    __slots__ = ("bytes", "packets")

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0


class ConsumerStats:
    """What a subscriber's consumer sent and was told (see :mod:`webinar.sfu.consumer`)."""

    __slots__ = (
        "counts",
        "dropped_waiting_keyframe",
        "firs",
        "fraction_lost",
        "nack_items",
        "nacks",
        "padding_bytes",
        "plis",
        "resend_suppressed",
        "retransmitted",
    )

    def __init__(self, counts: SentCounts | None = None) -> None:
        self.counts: SentCounts = counts if counts is not None else _Counts()
        self.retransmitted = 0
        self.nacks = 0
        self.nack_items = 0
        self.resend_suppressed = 0
        self.plis = 0
        self.firs = 0
        self.dropped_waiting_keyframe = 0
        self.fraction_lost = 0  # last receiver report, 0..255
        self.padding_bytes = 0  # redundant retransmissions sent to probe the path

    @property
    def packets(self) -> int:
        return self.counts.packets

    @packets.setter
    def packets(self, value: int) -> None:
        self.counts.packets = value

    @property
    def bytes(self) -> int:
        """Payload octets (what RTCP SR counts)."""
        return self.counts.bytes

    @bytes.setter
    def bytes(self, value: int) -> None:
        self.counts.bytes = value

    def __repr__(self) -> str:
        fields = ("packets", "bytes", *sorted(set(self.__slots__) - {"counts"}))
        return "ConsumerStats(" + ", ".join(f"{f}={getattr(self, f)}" for f in fields) + ")"


class PacketConsumer(Protocol):
    """What a producer forwards to: a subscriber's consumer, or a recorder's track.

    ``selects_layers`` tells them apart. A subscriber's consumer (True) has a layer
    selector and asks a simulcast producer for the layers it wants
    (``Producer.listen``); a recorder's track (False) has none: the producer pins it to
    one encoding (one sequence space, one picture size) and dynacast keeps that on."""

    @property
    def id(self) -> str: ...

    @property
    def selects_layers(self) -> bool: ...

    def forward(self, mp: MediaPacket) -> None: ...

    def restart(self) -> None: ...

    def producer_closed(self) -> None: ...


class SubscriberConsumer(PacketConsumer, Protocol):
    """A consumer with ``selects_layers`` true: a subscriber's (what metrics and
    dynacast read of it)."""

    @property
    def stats(self) -> ConsumerStats: ...

    @property
    def paused(self) -> bool: ...

    @property
    def selector(self) -> LayerSelector | None: ...
