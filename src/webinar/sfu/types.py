"""Small shared types of the forwarding engine."""

from __future__ import annotations

import enum
import secrets
from typing import NewType

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
