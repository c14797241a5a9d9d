"""A WebRTC client on aiortc that speaks the signalling protocol (tests and benchmarks)."""
