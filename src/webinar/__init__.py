"""A self-hosted webinar server with its own WebRTC SFU built on aiortc."""

__version__ = "0.1.0"
