"""The publisher's REMB estimator with our cheaper parts answers as aiortc's own."""

from __future__ import annotations

import random

from aiortc.rate import RateCounter, RemoteBitrateEstimator

from webinar.sfu._aiortc import WindowRate, speed_up_remb


def _arrivals(rng: random.Random, packets: int) -> list[tuple[int, int, int]]:
    """(arrival ms, abs-send-time, size): frames of 1-8 packets at 10-60 fps, queueing
    that grows and drains, and now and then a gap longer than the rate window."""
    out = []
    send_ms = 1_000.0
    arrival_ms = 5_000
    queue = 0.0
    while len(out) < packets:
        send_ms += rng.choice((16.6, 33.3, 33.3, 50.0, 100.0))
        if rng.random() < 0.01:
            send_ms += rng.uniform(1_000, 3_000)  # the publisher paused
        queue = max(0.0, queue + rng.uniform(-6, 8))
        for k in range(rng.randint(1, 8)):
            sent = send_ms + k * rng.uniform(0, 1.5)
            arrival_ms = max(arrival_ms, int(sent + 20 + queue + rng.uniform(0, 3)))
            abs_send = int(sent * (1 << 18) / 1000) & 0xFFFFFF
            out.append((arrival_ms, abs_send, rng.randint(80, 1_200)))
    return out


def test_window_rate_matches_aiortc_rate_counter() -> None:
    rng = random.Random(7)
    for _ in range(20):
        window = rng.choice((50, 200, 1_000))
        ours, theirs = WindowRate(window, 8_000), RateCounter(window, 8_000)
        now = rng.randint(0, 10_000)
        for _ in range(2_000):
            now += rng.choice((0, 0, 1, 2, 5, 30, 120, window - 1, window, 3 * window))
            if rng.random() < 0.5:
                size = rng.randint(1, 1_500)
                ours.add(size, now)
                theirs.add(size, now)
            assert ours.rate(now) == theirs.rate(now)
            if rng.random() < 0.002:
                ours.reset()
                theirs.reset()


def test_sped_up_estimator_sends_the_same_rembs() -> None:
    for seed in range(6):
        ours, theirs = RemoteBitrateEstimator(), RemoteBitrateEstimator()
        speed_up_remb(ours)
        rembs = 0
        for arrival, abs_send, size in _arrivals(random.Random(seed), 6_000):
            expected = theirs.add(arrival, abs_send, size, 1234)
            assert ours.add(arrival, abs_send, size, 1234) == expected
            rembs += expected is not None
        assert rembs > 20  # the comparison covered estimates, not only silence


def test_a_wall_clock_step_back_is_counted_not_lost() -> None:
    rate = WindowRate(1_000, 8_000)
    rate.add(1_000, 10_000)
    rate.add(1_000, 9_000)  # the clock stepped back a second
    assert rate.rate(10_500) == round(8_000 * 2_000 / 501)
    assert rate.rate(10_999) == round(8_000 * 2_000 / 1_000)
    assert rate.rate(11_000) is None  # both left the window together
