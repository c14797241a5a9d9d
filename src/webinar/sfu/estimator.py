"""Per-subscriber bandwidth and loss estimate from REMB and receiver reports.

Pure logic with an injected clock; the bandwidth tiers build on :attr:`estimate_bps`.
"""

from __future__ import annotations

from dataclasses import dataclass

LOSS_ALPHA = 0.3  # EWMA weight of a new receiver report
REMB_TIMEOUT = 5.0  # seconds after which a REMB value is considered stale
HIGH_LOSS = 0.10
LOW_LOSS = 0.02


@dataclass(frozen=True, slots=True)
class Estimate:
    bitrate_bps: int | None  # None until the subscriber sent a REMB
    loss: float  # smoothed fraction of packets lost, 0..1
    rtt: float | None  # seconds


class BandwidthEstimator:
    """Combines the subscriber's REMB (what its receiver-side estimator allows) with
    loss from its receiver reports: heavy loss scales the estimate down, the way
    loss-based controllers do (RFC 8698 style), light loss leaves it alone."""

    __slots__ = ("_loss", "_remb", "_remb_at", "_rtt")

    def __init__(self) -> None:
        self._remb: int | None = None
        self._remb_at = 0.0
        self._loss = 0.0
        self._rtt: float | None = None

    def on_remb(self, bitrate_bps: int, now: float) -> None:
        if bitrate_bps < 0:
            return
        self._remb = bitrate_bps
        self._remb_at = now

    def on_receiver_report(self, fraction_lost: int, now: float, rtt: float | None = None) -> None:
        """``fraction_lost`` as in RTCP: 0..255 for 0..100 %."""
        frac = min(max(fraction_lost, 0), 255) / 256.0
        self._loss = (1 - LOSS_ALPHA) * self._loss + LOSS_ALPHA * frac
        if rtt is not None and rtt >= 0:
            self._rtt = rtt

    def estimate(self, now: float) -> Estimate:
        remb = self._remb if self._remb is not None and now - self._remb_at < REMB_TIMEOUT else None
        if remb is not None and self._loss > HIGH_LOSS:
            remb = int(remb * (1 - 0.5 * self._loss))
        return Estimate(bitrate_bps=remb, loss=self._loss, rtt=self._rtt)
