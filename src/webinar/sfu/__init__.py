"""The forwarding engine: RTP in, RTP out, no decoding, no encoding.

Nouns as in mediasoup: a :class:`Router` per room, a :class:`Producer` per
published track, a :class:`Consumer` per (subscriber, producer). This package
imports nothing from rooms, signalling or ticketing.
"""

from ._aiortc import HookError, check_hooks, running_decoder_threads
from .allocator import Quality as VideoQuality
from .allocator import StreamClass, Tier
from .consumer import Consumer
from .estimator import BandwidthEstimator, Estimate
from .pipe import PipeIn, PipeOut, PipeStats, pipe_descriptor
from .producer import Producer
from .router import MAX_CAMERAS_LIMIT, Router, RouterConfig
from .tiers import AllocationReport, StreamReport, SubscriberTiers
from .totals import MediaCounts, MediaTotals
from .transport import (
    IceServer,
    OfferedLine,
    OfferSummary,
    PlayTransport,
    PublishTransport,
    SubscribeTransport,
    TrackSpec,
    TransportConfig,
    describe_offer,
)
from .types import (
    CloseReason,
    ConsumerId,
    MediaKind,
    MediaSource,
    ProducerId,
    SfuError,
    SfuErrorCode,
)

__all__ = [
    "MAX_CAMERAS_LIMIT",
    "AllocationReport",
    "BandwidthEstimator",
    "CloseReason",
    "Consumer",
    "ConsumerId",
    "Estimate",
    "HookError",
    "IceServer",
    "MediaCounts",
    "MediaKind",
    "MediaSource",
    "MediaTotals",
    "OfferSummary",
    "OfferedLine",
    "PipeIn",
    "PipeOut",
    "PipeStats",
    "PlayTransport",
    "Producer",
    "ProducerId",
    "PublishTransport",
    "Router",
    "RouterConfig",
    "SfuError",
    "SfuErrorCode",
    "StreamClass",
    "StreamReport",
    "SubscribeTransport",
    "SubscriberTiers",
    "Tier",
    "TrackSpec",
    "TransportConfig",
    "VideoQuality",
    "check_hooks",
    "describe_offer",
    "pipe_descriptor",
    "running_decoder_threads",
]
