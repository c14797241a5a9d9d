"""Per-subscriber bandwidth and loss estimate."""

from __future__ import annotations

import pytest

from webinar.sfu.estimator import REMB_TIMEOUT, BandwidthEstimator


def test_remb_is_the_estimate_until_stale() -> None:
    e = BandwidthEstimator()
    assert e.estimate(0).bitrate_bps is None
    e.on_remb(1_500_000, now=10.0)
    assert e.estimate(11.0).bitrate_bps == 1_500_000
    assert e.estimate(10.0 + REMB_TIMEOUT + 0.1).bitrate_bps is None


def test_loss_is_smoothed_and_heavy_loss_scales_down() -> None:
    e = BandwidthEstimator()
    e.on_remb(1_000_000, now=0.0)
    e.on_receiver_report(0, now=0.0)
    assert e.estimate(0.0).loss == 0
    for _ in range(20):
        e.on_receiver_report(77, now=0.0, rtt=0.08)  # 30 % loss
    est = e.estimate(0.0)
    assert est.loss == pytest.approx(77 / 256, rel=0.01)
    assert est.rtt == 0.08
    assert est.bitrate_bps is not None and est.bitrate_bps < 1_000_000
    for _ in range(20):
        e.on_receiver_report(0, now=0.0)
    assert e.estimate(0.0).bitrate_bps == 1_000_000
