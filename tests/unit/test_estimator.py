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


# --------------------------------------------------------------------------- budget

from webinar.sfu.estimator import (  # noqa: E402
    FIRST_PROBE_SCALE,
    PROBE_BACKOFF_MAX,
    PROBE_HOLD,
    PROBE_INTERVAL,
    PROBE_MAX_STEP,
    PROBE_PAD_SECONDS,
    PROBE_STREAK_STEP,
    REMB_OVER_SENT,
    UP_HOLD,
    BudgetController,
    Estimate,
    RttSample,
)


def est(remb: int | None, loss: float = 0.0, at: float = 0.0) -> Estimate:
    """A REMB and, with ``loss``, a receiver report that came at ``at`` saying so."""
    if not loss:
        return Estimate(bitrate_bps=remb, loss=0.0, rtt=0.02)
    return Estimate(bitrate_bps=remb, loss=loss, rtt=0.02, report_loss=loss, report_at=at)


def run(
    c: BudgetController, samples: list[tuple[float, Estimate]], wanted: int | None = None
) -> list[int]:
    return [c.update(e, t, wanted) for t, e in samples]


def test_budget_does_not_flap_on_a_noisy_estimate() -> None:
    c = BudgetController(start_bps=1_000_000)
    noisy = [(t * 0.5, est(1_000_000 + (100_000 if t % 2 else -60_000))) for t in range(40)]
    assert set(run(c, noisy)) == {1_000_000}


def test_budget_drops_at_once_on_a_falling_remb_or_loss() -> None:
    c = BudgetController(start_bps=2_000_000)
    c.update(est(2_000_000), 0.0)
    assert c.update(est(1_200_000), 0.5) == 1_260_000  # REMB fell: queueing; ~the link
    c = BudgetController(start_bps=2_000_000)
    assert c.update(est(2_000_000, loss=0.2), 0.0) == 1_800_000  # heavy loss scales down


def test_budget_rises_only_after_the_estimate_held() -> None:
    c = BudgetController(start_bps=1_000_000)
    samples = [(t * 0.5, est(1_600_000)) for t in range(int(UP_HOLD / 0.5))]
    assert set(run(c, samples)) == {1_000_000}
    assert c.update(est(1_600_000), UP_HOLD + 0.1) == 1_600_000


def test_a_remb_far_beyond_what_was_sent_raises_the_budget_only_that_far() -> None:
    # Chrome's first REMB behind a 650 kbit/s link can say 2.7 Mbit/s (its start value
    # or a probe cluster timed through the shaper's burst), while 350 kbit/s flow.
    c = BudgetController(start_bps=600_000)
    t = 0.0
    while t <= UP_HOLD + 0.5:
        assert c.update(est(2_700_000), t, sending_bps=350_000) == 600_000
        t += 0.25
    # what is sent could justify more: the budget rises, but to 1.5x that, not the REMB
    c = BudgetController(start_bps=600_000)
    t = 0.0
    while t <= UP_HOLD + 0.5:
        c.update(est(2_700_000), t, sending_bps=500_000)
        t += 0.25
    assert c.budget_bps == int(500_000 * REMB_OVER_SENT)


def test_a_short_spike_does_not_raise_it() -> None:
    c = BudgetController(start_bps=1_000_000)
    c.update(est(3_000_000), 0.0)
    c.update(est(3_000_000), 1.0)
    assert c.update(est(1_050_000), 1.5) == 1_000_000
    assert c.update(est(3_000_000), 2.5) == 1_000_000


def test_probe_steps_up_when_more_is_wanted_and_keeps_it_when_clean() -> None:
    c = BudgetController(start_bps=300_000)
    assert c.update(est(300_000), 0.0, wanted_bps=None) == 300_000  # nothing more wanted: no probe
    # a probe: towards what the next rung needs, a bounded step at once
    first = int(300_000 * PROBE_MAX_STEP)
    assert c.update(est(300_000), 0.5, wanted_bps=1_300_000) == first
    assert c.probing
    assert c.update(est(330_000), 0.5 + PROBE_HOLD / 2, wanted_bps=1_300_000) == first
    assert c.update(est(360_000), 0.6 + PROBE_HOLD, wanted_bps=1_300_000) == first
    assert not c.probing and c.probes_ok == 1
    # the next probe after the interval, a bigger step after a good one
    t = 0.6 + PROBE_HOLD + PROBE_INTERVAL + 0.01
    second = int(first * (PROBE_MAX_STEP + PROBE_STREAK_STEP))
    assert c.update(est(400_000), t, wanted_bps=1_300_000) == second
    # a REMB that rises but lags behind what is sent does not undo a good probe
    assert c.update(est(450_000), t + PROBE_HOLD + 0.1, wanted_bps=None) == second


def test_failed_probe_reverts_and_backs_off() -> None:
    c = BudgetController(start_bps=400_000)
    t = 0.0
    c.update(est(450_000), t, wanted_bps=2_000_000)
    assert c.budget_bps == int(400_000 * PROBE_MAX_STEP)
    waits = []
    for _ in range(5):
        t += 0.5
        assert (
            c.update(est(450_000, loss=0.06), t, wanted_bps=2_000_000) == 400_000
        )  # probe lost packets
        started = t
        while c.update(est(450_000), t, wanted_bps=2_000_000) == 400_000:
            t += 0.1
        waits.append(round((t - started) * 2) / 2)
    assert waits[0] < waits[-1] and waits[:3] == sorted(waits[:3])  # each failure waits longer
    assert max(waits) <= PROBE_BACKOFF_MAX + PROBE_HOLD  # ... but never long: it may be back
    assert c.probes_failed == 5


def test_probes_that_closed_in_on_a_failed_level_test_it_again_after_the_backoff() -> None:
    c = BudgetController(start_bps=600_000)
    t, levels, started = 0.0, [], []

    def next_probe() -> None:
        nonlocal t
        while not c.probing:
            t += 0.1
            c.update(est(450_000), t, wanted_bps=2_000_000)
        levels.append(c.budget_bps)
        started.append(t)

    for _ in range(4):  # each fails: the steps halve towards the level that failed
        next_probe()
        t += 0.1
        assert c.update(est(450_000, loss=0.06), t, wanted_bps=2_000_000) == 600_000
    assert levels[:3] == [int(600_000 * PROBE_MAX_STEP), 705_000, 652_500]
    # halving would now be a step of under 5 %: the failed level itself, after the
    # backoff, not nothing until the hold on it ends
    assert levels[3] == 652_500 and started[3] - started[2] <= PROBE_BACKOFF_MAX + 0.3
    # the bandwidth came back: that probe holds, the hold is lifted, steps are normal
    next_probe()
    assert c.budget_bps == 652_500
    t += PROBE_HOLD + 0.01
    c.update(est(450_000), t, wanted_bps=2_000_000)
    assert not c.probing and c.probes_ok == 1 and c.budget_bps == 652_500
    next_probe()
    assert c.budget_bps >= int(652_500 * 1.25)


def test_no_probe_while_the_budget_is_not_used() -> None:
    c = BudgetController(start_bps=1_000_000)
    # a layer switch still waits: little is sent, so more budget would be a guess
    planned = 850_000
    assert (
        c.update(est(1_000_000), 0.0, 2_000_000, sending_bps=200_000, allocated_bps=planned)
        == 1_000_000
    )
    assert not c.probing
    assert c.update(
        est(1_000_000), 0.5, 2_000_000, sending_bps=600_000, allocated_bps=planned
    ) == int(1_000_000 * PROBE_MAX_STEP)
    assert c.probing


def test_congestion_keeps_what_got_through() -> None:
    c = BudgetController(start_bps=2_000_000)
    c.update(est(2_000_000), 0.0)
    # a 700 kbit/s link behind a 1 Mbit/s send: a report says 30 % was lost; the
    # browser's REMB trails far below (it climbs a few % a second): the budget keeps
    # what got through
    got = c.update(est(400_000, loss=0.3), 0.5, sending_bps=1_000_000)
    assert got == int(1_000_000 * 0.7 * 0.9)
    c = BudgetController(start_bps=2_000_000)
    got = c.update(est(900_000, loss=0.3), 0.5, sending_bps=1_000_000)  # REMB above: REMB
    assert got == int(int(900_000 * 1.05) * (1 - 0.15))  # ... scaled by the loss
    c = BudgetController(start_bps=2_000_000)
    got = c.update(est(None, loss=0.3), 0.5, sending_bps=1_000_000)  # no REMB: loss alone
    assert got == int(2_000_000 * (1 - 0.15))


def test_without_a_remb_no_probe_unless_no_video_flows() -> None:
    c = BudgetController(start_bps=800_000)
    assert c.update(est(None), 0.0, 2_000_000, video_flowing=True) == 800_000
    # everything paused: no video, so no REMB will come; probe to get one back
    assert c.update(est(None), 0.5, 2_000_000, video_flowing=False) == int(800_000 * PROBE_MAX_STEP)


def test_a_probe_that_makes_the_round_trip_longer_fails() -> None:
    c = BudgetController(start_bps=1_000_000)
    fast = Estimate(bitrate_bps=1_000_000, loss=0.0, rtt=0.010)
    c.update(fast, 0.0, 2_000_000)
    assert c.probing
    slow = Estimate(bitrate_bps=1_000_000, loss=0.0, rtt=0.045)  # a queue is building
    assert c.update(slow, 0.5, 2_000_000) == 1_000_000
    assert not c.probing and c.probes_failed == 1


def sample(rtt: float, sr_sent: float, arrived: float, lost: float = 0.0) -> Estimate:
    return Estimate(
        bitrate_bps=1_000_000,
        loss=0.0,
        rtt=0.02,
        sample=RttSample(rtt=rtt, sr_sent=sr_sent, arrived=arrived, lost=lost),
    )


def test_a_probe_pads_briefly_then_a_report_on_its_late_sender_report_decides() -> None:
    c = BudgetController(start_bps=1_000_000)
    c.update(sample(0.010, -1.0, -0.9), 0.0)  # the path's round-trip floor: 10 ms
    c.update(sample(0.010, -1.0, -0.9), 0.1, 2_000_000)
    assert c.probing and c.padding(0.2) and not c.padding(0.1 + PROBE_PAD_SECONDS + 0.01)
    # the sender reports the probe asks for, one per mark
    assert not c.take_sender_report(0.15)
    assert c.take_sender_report(0.31) and not c.take_sender_report(0.32)
    assert c.take_sender_report(0.55) and not c.take_sender_report(0.6)
    # a report on an early sender report says nothing yet ...
    c.update(sample(0.011, 0.15, 0.7), 0.7, 2_000_000)
    assert c.probing and c.committed_bps == 1_000_000  # media waits for the verdict
    # ... the one on the last says the queue did not grow: the probe holds at once
    raised = c.update(sample(0.012, 0.33, 0.9), 0.9, 2_000_000)
    assert raised == int(1_000_000 * PROBE_MAX_STEP) and not c.probing and c.probes_ok == 1


def test_a_probe_whose_late_sender_report_queued_fails_before_any_loss() -> None:
    c = BudgetController(start_bps=1_000_000)
    c.update(sample(0.010, -1.0, -0.9), 0.0)
    c.update(sample(0.010, -1.0, -0.9), 0.1, 2_000_000)
    assert c.probing
    # the sender report sent at the end of the padding waited 80 ms in a queue
    assert c.update(sample(0.090, 0.33, 0.9), 0.9, 2_000_000) == 1_000_000
    assert not c.probing and c.probes_failed == 1


def test_a_probe_whose_report_counts_loss_fails() -> None:
    c = BudgetController(start_bps=1_000_000)
    c.update(sample(0.010, -1.0, -0.9), 0.0)
    c.update(sample(0.010, -1.0, -0.9), 0.1, 2_000_000)
    # smoothed loss is still low, but the report covering the probe counted 10 %
    assert c.update(sample(0.011, 0.33, 0.9, lost=0.10), 0.9, 2_000_000) == 1_000_000
    assert c.probes_failed == 1


def test_the_first_probe_is_shorter_than_the_later_ones() -> None:
    c = BudgetController(start_bps=600_000)
    c.update(sample(0.010, -1.0, -0.9), 0.0)
    c.update(sample(0.010, -1.0, -0.9), 0.1, 2_000_000)  # the start budget is a guess
    assert c.probing and not c.padding(0.1 + PROBE_PAD_SECONDS * FIRST_PROBE_SCALE + 0.01)
    c.update(sample(0.011, 0.4, 0.8), 0.8, 2_000_000)  # clean: passed
    assert c.probes_ok == 1
    t = 0.8 + PROBE_INTERVAL + 0.01
    c.update(sample(0.011, 0.4, 0.8), t, 2_000_000)
    assert c.probing and c.padding(t + PROBE_PAD_SECONDS - 0.01)


def test_loss_fades_when_reports_stop_coming() -> None:
    e = BandwidthEstimator()
    for t in range(5):
        e.on_receiver_report(100, now=float(t))  # ~40 % lost, reports every second
    heavy = e.estimate(4.0).loss
    assert heavy > 0.3
    assert e.estimate(4.0 + 1.0).loss == heavy  # the usual report interval: unchanged
    # the video was paused: no more reports; the figure fades instead of blocking probes
    assert e.estimate(4.0 + 1.5 + 3.0).loss == pytest.approx(heavy / 8)
    assert e.estimate(30.0).loss < 0.001
    e.on_receiver_report(0, now=30.0)  # a new report starts from the faded figure
    assert e.estimate(30.0).loss < 0.001


def reported(loss: float, at: float, smoothed: float | None = None) -> Estimate:
    return Estimate(
        bitrate_bps=300_000,  # Chrome's REMB, trailing far below what it receives
        loss=loss if smoothed is None else smoothed,
        rtt=0.02,
        report_loss=loss,
        report_at=at,
    )


def test_a_lossy_report_lowers_the_budget_to_what_got_through_and_no_further() -> None:
    c = BudgetController(start_bps=2_000_000)
    c.update(reported(0.0, 0.0), 0.0, sending_bps=1_400_000)
    # a 700 kbit/s link behind a 1.4 Mbit/s send: the report says half was lost
    got = c.update(reported(0.5, 1.0), 1.0, sending_bps=1_400_000)
    assert got == int(1_400_000 * 0.5 * 0.9)
    # the next report still covers the time before the decrease: no second cut, even
    # though less is sent now and the smoothed loss is still high
    assert c.update(reported(0.4, 1.2, smoothed=0.3), 1.2, sending_bps=600_000) == got
    # a clean report after the queue drained: it fits
    assert c.update(reported(0.0, 2.2, smoothed=0.2), 2.2, sending_bps=600_000) == got
    # light loss in a fresh report is no congestion either
    assert c.update(reported(0.05, 3.2), 3.2, sending_bps=600_000) == got
    # heavy loss in a fresh report is
    assert c.update(reported(0.3, 4.2), 4.2, sending_bps=600_000) < got


def test_a_reports_loss_is_its_worst_block() -> None:
    e = BandwidthEstimator()
    e.on_receiver_report(128, now=1.0)  # the video block: half lost
    e.on_receiver_report(0, now=1.001)  # the audio block of the same RTCP packet
    assert e.estimate(1.001).report_loss == 0.5
    e.on_receiver_report(0, now=2.0)  # the next packet
    assert e.estimate(2.0).report_loss == 0.0


def test_audio_reports_do_not_stand_for_the_latest_report() -> None:
    e = BandwidthEstimator()
    e.on_receiver_report(0, now=1.0)  # video: clean
    e.on_receiver_report(128, now=1.5, video=False)  # audio, 5 s late, about old loss
    assert e.estimate(1.5).report_loss == 0.0 and e.estimate(1.5).report_at == 1.0
    assert e.estimate(1.5).loss > 0  # it still counts in the smoothed figure


def test_no_report_on_the_probes_own_sender_reports_means_no_raise() -> None:
    c = BudgetController(start_bps=1_000_000)
    c.update(sample(0.010, -1.0, -0.9), 0.0)
    c.update(sample(0.010, -1.0, -0.9), 0.1, 2_000_000)
    assert c.probing
    # a report on an SR sent after the padding stopped (a drained queue) is no verdict
    c.update(sample(0.010, 1.0, 1.2), 1.2, 2_000_000)
    assert c.probing
    # the probe times out without one: back to the old budget, not counted as failed
    assert c.update(sample(0.010, 1.0, 1.2), 0.1 + PROBE_HOLD + 0.01, 2_000_000) == 1_000_000
    assert not c.probing and c.probes_ok == 0 and c.probes_failed == 0


# ------------------------------------------------------------- loss against packet count

from webinar.sfu.estimator import RANDOM_LOSS, SIGNIFICANCE, significant_loss  # noqa: E402


def test_a_loss_figure_counts_only_beyond_what_random_loss_explains() -> None:
    # 3 of 25 is 12 %: on a path with 5 % random loss one report in eight says so
    assert not significant_loss(3, 25)
    assert not significant_loss(6, 25)
    assert significant_loss(7, 25)  # 28 %: random loss says that once in >1000 reports
    assert not significant_loss(16, 150)  # 10.7 %
    assert significant_loss(18, 150)
    assert significant_loss(30, 150)
    assert significant_loss(150, 2000)  # many packets: the 10 % rule alone decides
    assert not significant_loss(0, 0)
    # the threshold is the binomial tail it claims to be
    from math import comb

    def tail(n: int, k: int) -> float:
        p = RANDOM_LOSS
        return sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))

    for n, k in ((25, 7), (40, 8), (150, 18)):
        assert tail(n, k) < SIGNIFICANCE <= tail(n, k - 1)


def test_a_lossy_report_about_few_packets_does_not_cut_the_budget() -> None:
    c = BudgetController(start_bps=600_000)
    c.update(reported(0.0, 0.0), 0.0, sending_bps=250_000)

    def small(loss: float, at: float, packets: int) -> Estimate:
        return Estimate(
            bitrate_bps=300_000,
            loss=0.05,
            rtt=0.02,
            report_loss=loss,
            report_at=at,
            report_packets=packets,
        )

    # 12 % of 25 packets: what a 5 %-lossy Wi-Fi link says now and then
    assert c.update(small(0.12, 1.0, 25), 1.0, sending_bps=250_000) == 600_000
    assert not c.limited
    # 40 % of 25 packets is congestion
    assert c.update(small(0.4, 2.0, 25), 2.0, sending_bps=250_000) < 600_000
    assert c.limited


def test_the_videos_of_one_report_add_up_their_packets() -> None:
    e = BandwidthEstimator()
    e.on_receiver_report(64, now=1.0, packets=20)  # a small video: 25 % of 20 lost
    e.on_receiver_report(0, now=1.001, packets=180)  # the big one of the same packet: none
    got = e.estimate(1.001)
    assert got.report_packets == 200
    assert got.report_loss == pytest.approx(0.025)
    assert not got.report_significant()
    e.on_receiver_report(64, now=2.0, packets=200)  # the next report: 25 % of 200
    got = e.estimate(2.0)
    assert got.report_packets == 200 and got.report_significant()
    # a block of unknown size: the worst figure stands alone, as before
    e.on_receiver_report(0, now=3.0, packets=10)
    e.on_receiver_report(128, now=3.001)
    got = e.estimate(3.001)
    assert got.report_loss == 0.5 and got.report_packets is None and got.report_significant()


# ------------------------------------------------------------------ the probe cycle's states

import itertools  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402

from webinar.sfu.estimator import BudgetState  # noqa: E402


def state(c: BudgetController) -> BudgetState:
    """``c.state``, not narrowed by a type checker from one update to the next."""
    return c.state


TRANSITION = re.compile(r": (\w+) -> (\w+) at ")


def transitions(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """The state changes the controller logged, in order."""
    found = [TRANSITION.search(r.getMessage()) for r in caplog.records]
    return [(m[1], m[2]) for m in found if m is not None]


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="webinar.sfu.estimator")
    return caplog


def test_a_probe_start_enters_probing_and_logs_it_once(logged: pytest.LogCaptureFixture) -> None:
    c = BudgetController(start_bps=1_000_000)
    assert state(c) is BudgetState.STEADY
    c.update(est(1_000_000), 0.0, wanted_bps=None)  # nothing more wanted: no change
    assert state(c) is BudgetState.STEADY and transitions(logged) == []
    c.update(est(1_000_000), 0.5, wanted_bps=2_000_000)
    assert state(c) is BudgetState.PROBING and c.probing
    assert transitions(logged) == [("steady", "probing")]
    (record,) = logged.records
    assert record.levelno == logging.DEBUG
    assert f"budget {int(1_000_000 * PROBE_MAX_STEP)}, committed 1000000" in record.getMessage()
    c.update(est(1_000_000), 0.6, wanted_bps=2_000_000)  # the probe runs on: no news
    assert state(c) is BudgetState.PROBING and len(logged.records) == 1


def test_a_failed_probe_enters_backoff_until_it_ends(logged: pytest.LogCaptureFixture) -> None:
    c = BudgetController(start_bps=400_000)
    c.update(est(450_000), 0.0, wanted_bps=2_000_000)
    assert state(c) is BudgetState.PROBING
    c.update(est(450_000, loss=0.06), 0.5, wanted_bps=2_000_000)
    assert state(c) is BudgetState.BACKOFF and not c.probing and c.limited
    assert transitions(logged) == [("steady", "probing"), ("probing", "backoff")]
    assert "probe failed: loss" in logged.records[-1].getMessage()
    # the backoff doubled: still waiting just before it ends, steady once it did
    c.update(est(450_000), 0.5 + 2 * PROBE_INTERVAL - 0.01)
    assert state(c) is BudgetState.BACKOFF and len(logged.records) == 2
    c.update(est(450_000), 0.5 + 2 * PROBE_INTERVAL)
    assert state(c) is BudgetState.STEADY
    assert transitions(logged)[-1] == ("backoff", "steady")
    assert "backoff over" in logged.records[-1].getMessage()


def test_a_probe_that_held_settles_then_the_next_one_starts(
    logged: pytest.LogCaptureFixture,
) -> None:
    c = BudgetController(start_bps=1_000_000)
    c.update(sample(0.010, -1.0, -0.9), 0.0)
    c.update(sample(0.010, -1.0, -0.9), 0.1, 2_000_000)
    c.update(sample(0.012, 0.33, 0.9), 0.9, 2_000_000)  # a clean verdict
    assert state(c) is BudgetState.SETTLING and c.probes_ok == 1
    c.update(sample(0.012, 0.33, 0.9), 0.9 + PROBE_INTERVAL - 0.01, 2_000_000)
    assert state(c) is BudgetState.SETTLING
    # the interval is over: steady, and in the same update the next probe
    c.update(sample(0.012, 0.33, 0.9), 0.9 + PROBE_INTERVAL, 2_000_000)
    assert state(c) is BudgetState.PROBING
    assert transitions(logged) == [
        ("steady", "probing"),
        ("probing", "settling"),
        ("settling", "steady"),
        ("steady", "probing"),
    ]


def test_a_probe_without_a_verdict_backs_off_without_failing(
    logged: pytest.LogCaptureFixture,
) -> None:
    c = BudgetController(start_bps=1_000_000)
    c.update(sample(0.010, -1.0, -0.9), 0.0)
    c.update(sample(0.010, -1.0, -0.9), 0.1, 2_000_000)
    c.update(sample(0.010, 1.0, 1.2), 0.1 + PROBE_HOLD + 0.01, 2_000_000)
    assert state(c) is BudgetState.BACKOFF and c.probes_failed == 0 and not c.limited
    assert transitions(logged) == [("steady", "probing"), ("probing", "backoff")]
    assert "no verdict" in logged.records[-1].getMessage()


def test_congestion_backs_off_and_sets_limited(logged: pytest.LogCaptureFixture) -> None:
    c = BudgetController(start_bps=2_000_000)
    c.update(est(2_000_000), 0.0)
    assert not c.limited
    c.update(est(1_200_000), 0.5)  # REMB fell: lowered
    assert state(c) is BudgetState.BACKOFF and c.limited
    assert transitions(logged) == [("steady", "backoff")]
    assert "congestion: lowered" in logged.records[-1].getMessage()
    with pytest.raises(AttributeError):
        c.limited = False
    with pytest.raises(AttributeError):
        c.state = BudgetState.STEADY


def test_every_state_change_is_logged_once(logged: pytest.LogCaptureFixture) -> None:
    # failed probes, then good ones, then a falling REMB: each logged transition starts
    # where the one before ended, and the states updates showed are the ones logged
    c = BudgetController(start_bps=600_000)
    t, shown, remb = 0.0, [c.state.value], 450_000
    for i in range(150):
        t += 0.1
        lossy = c.probing and t < 4.0 and i % 7 == 3
        if state(c) is BudgetState.SETTLING and t > 9.0:
            remb = 200_000  # just after a raise: it is reverted
        c.update(est(remb, loss=0.06 if lossy else 0.0, at=t), t, wanted_bps=2_000_000)
        if c.state.value != shown[-1]:
            shown.append(c.state.value)
    changes = transitions(logged)
    assert len(changes) == len(logged.records)
    assert {to for _, to in changes} == {"probing", "backoff", "settling", "steady"}
    assert all(a[1] == b[0] for a, b in itertools.pairwise(changes))
    chain = [changes[0][0], *(to for _, to in changes)]
    assert chain[0] == shown[0] and chain[-1] == shown[-1]
    # an update can end a wait and start a probe at once: it shows only the last state
    it = iter(chain)
    assert all(s in it for s in shown)
    assert "congestion after a raise: reverted" in logged.text


# --------------------------------------------------------------------------- NACK bursts

from webinar.sfu.estimator import DRAIN_SECONDS, NackBurst  # noqa: E402


def test_a_nack_burst_is_heavy_loss_over_the_span_nacked() -> None:
    b = NackBurst()
    # a queue overflowing: every other packet from 65530 on (wrapping), NACKed one by one
    seqs = [(65530 + 2 * i) & 0xFFFF for i in range(8)]
    results = [b.on_nack([s], 0.01 * i) for i, s in enumerate(seqs)]
    fired = [r for r in results if r is not None]
    assert fired and 0.4 < fired[0] <= 1.0
    assert results.index(fired[0]) <= 6  # within a few NACKs of the first
    # NACKed again (the browser repeats its list): counted once, nothing new
    assert all(b.on_nack(seqs, 0.2) is None for _ in range(3))


def test_a_run_lost_at_once_is_no_burst() -> None:
    """A keyframe's packets lost together (a busy receiver's socket buffer) are NACKed
    at once: no link fell, the sender does not go on losing."""
    b = NackBurst()
    assert b.on_nack(list(range(100, 130)), 1.0) is None
    assert b.on_nack([131, 132], 1.01) is None


def test_random_loss_is_no_burst() -> None:
    import random

    rng = random.Random(7)
    b = NackBurst()
    now, fired = 0.0, 0
    for seq in range(30_000):  # 100 packets a second, 5 % lost at random: 5 minutes
        now += 0.01
        if rng.random() < 0.05 and b.on_nack([seq & 0xFFFF], now) is not None:
            fired += 1
    assert fired <= 1


def test_a_loss_burst_cuts_the_budget_to_what_got_through_once() -> None:
    c = BudgetController(start_bps=2_000_000)
    c.update(est(200_000), 0.0, sending_bps=1_500_000)  # a REMB far below (still ramping)
    burst = Estimate(bitrate_bps=200_000, loss=0.0, rtt=0.02, burst_loss=0.5, burst_at=0.1)
    cut = c.update(burst, 0.1, sending_bps=1_500_000)
    assert 600_000 <= cut <= 700_000  # what got through, not the stale REMB
    assert c.limited
    # the same burst again, or a report on loss from before the cut drained: no cut
    assert c.update(burst, 0.2, sending_bps=700_000) == cut
    old = Estimate(
        bitrate_bps=200_000,
        loss=0.3,
        rtt=0.02,
        report_loss=0.4,
        report_at=0.1 + DRAIN_SECONDS + 0.3,
        report_since=0.0,
    )
    assert c.update(old, 0.1 + DRAIN_SECONDS + 0.3, sending_bps=600_000) == cut
    # a new burst after the drain cuts again
    again = Estimate(bitrate_bps=200_000, loss=0.0, rtt=0.02, burst_loss=0.3, burst_at=1.0)
    assert c.update(again, 1.0, sending_bps=600_000) < cut


def test_a_cut_for_media_lost_or_queued_drains_the_queue_for_a_while() -> None:
    """A loss burst's cut, or a delay overuse's, leaves a full queue behind it: draining
    for DRAIN_SECONDS. A probe that fails on its queueing alone (its padding stops, the
    queue drains by itself) does not; one the link fell under media alone during does."""
    c = BudgetController(start_bps=2_000_000)
    c.update(est(200_000), 0.0, sending_bps=1_500_000)
    assert not c.draining(0.0)
    burst = Estimate(bitrate_bps=200_000, loss=0.0, rtt=0.02, burst_loss=0.5, burst_at=0.1)
    c.update(burst, 0.1, sending_bps=1_500_000)
    assert c.draining(0.1) and c.draining(0.1 + DRAIN_SECONDS - 0.01)
    assert not c.draining(0.1 + DRAIN_SECONDS) and c.drain_until == 0.1 + DRAIN_SECONDS
    import dataclasses

    base = dataclasses.replace(est(None), twcc=True, twcc_clean=True, rtt=None)
    c = BudgetController(start_bps=600_000)
    c.update(base, 0.0)
    c.update(base, 0.1, 1_000_000)
    assert c.probing
    overuse = dataclasses.replace(base, delay_at=0.2, delay_bps=900_000)
    c.update(overuse, 0.2, 1_000_000)
    assert c.probes_failed == 1 and not c.draining(0.2)
    # outside a probe, an overuse cuts and drains
    later = dataclasses.replace(base, delay_at=5.0, delay_bps=500_000)
    c.update(later, 5.0, 1_000_000)
    assert c.draining(5.0)
    # in a probe, an overuse that says the link carries less than media was given
    c = BudgetController(start_bps=600_000)
    c.update(base, 0.0)
    c.update(base, 0.1, 1_000_000)
    assert c.probing
    c.update(dataclasses.replace(base, delay_at=0.2, delay_bps=400_000), 0.2, 1_000_000)
    assert c.probes_failed == 1 and c.budget_bps < 600_000 and c.draining(0.2)


def test_a_loss_burst_calls_the_alarm() -> None:
    e = BandwidthEstimator()
    calls: list[int] = []
    e.on_alarm = lambda: calls.append(1)
    e.on_loss_burst(0.4, 3.0)
    assert calls == [1]
    got = e.estimate(3.1)
    assert (got.burst_loss, got.burst_at) == (0.4, 3.0)


def test_only_reported_loss_after_a_first_cut_goes_below_the_one_video_row() -> None:
    from webinar.sfu.estimator import CUT_FLOOR

    c = BudgetController(start_bps=1_000_000)
    c.update(est(1_000_000), 0.0)
    # a REMB that falls far (jitter, or a queue read mid-overflow) keeps one video
    assert c.update(est(250_000), 0.5) == CUT_FLOOR
    assert c.update(est(150_000), 1.5) == CUT_FLOOR  # and again later: REMB alone
    # significant loss in a report covering time after the cut drained: audio only
    lossy = Estimate(
        bitrate_bps=150_000,
        loss=0.3,
        rtt=0.02,
        report_loss=0.3,
        report_at=3.0,
        report_since=2.1,  # after the last cut (1.5) drained
        report_packets=200,
    )
    assert c.update(lossy, 3.0) < CUT_FLOOR


def test_on_a_jittery_path_a_probe_is_judged_by_loss_not_by_its_round_trip() -> None:
    """0-300 ms of jitter moves a report's round trip far more than a probe's queue
    would: with transport-wide feedback saying the path is that noisy (not clean), a
    longer round trip does not fail a probe; loss still does."""
    import dataclasses

    def jittery(e: Estimate) -> Estimate:
        return dataclasses.replace(e, bitrate_bps=None, twcc=True, twcc_clean=False)

    for noisy in (False, True):
        c = BudgetController(start_bps=1_000_000)
        wrap = jittery if noisy else (lambda e: e)
        c.update(wrap(sample(0.010, -1.0, -0.9)), 0.0)
        c.update(wrap(sample(0.010, -1.0, -0.9)), 0.1, 2_000_000)
        assert c.probing
        c.update(wrap(sample(0.250, 0.33, 0.9)), 0.9, 2_000_000)
        assert (c.probes_ok, c.probes_failed) == ((1, 0) if noisy else (0, 1))
    c = BudgetController(start_bps=1_000_000)
    c.update(jittery(sample(0.010, -1.0, -0.9)), 0.0)
    c.update(jittery(sample(0.010, -1.0, -0.9)), 0.1, 2_000_000)
    c.update(jittery(sample(0.250, 0.33, 0.9, lost=0.2)), 0.9, 2_000_000)
    assert c.probes_failed == 1


def test_on_a_jittery_path_a_probe_waits_until_its_packets_loss_is_known() -> None:
    """The feedback judges a packet lost only once it waited for late ones (up to 0.5 s
    under 300 ms of jitter): a probe's report coming back before that decides nothing (a
    probe into a link just limited held on it, and its loss came after)."""
    import dataclasses

    def jittery(e: Estimate) -> Estimate:
        return dataclasses.replace(e, bitrate_bps=None, twcc=True, twcc_clean=False, loss_lag=0.6)

    c = BudgetController(start_bps=1_000_000)
    c.update(jittery(sample(0.010, -1.0, -0.9)), 0.0)
    c.update(jittery(sample(0.010, -1.0, -0.9)), 0.1, 2_000_000)
    report = jittery(sample(0.250, 0.33, 0.9))
    c.update(report, 0.9, 2_000_000)
    assert c.probing and c.committed_bps == 1_000_000
    c.update(report, 1.0, 2_000_000)
    assert not c.probing and c.probes_ok == 1


def test_a_probe_a_bottleneck_paced_does_not_hold_above_what_arrived() -> None:
    """Transport-wide feedback saw no overuse (a short probe a little over the link fits
    in a bottleneck's queue), but the probe's packets arrived slower than they left: the
    probe fails, and the budget goes no higher than what arrived. Kept, the level would
    be the base of the next, larger probe, which overflows the queue with media in it
    (a browser test's viewer behind 650 kbit/s lost pictures so)."""
    import dataclasses

    asked: list[tuple[float, float]] = []

    def clean(arrived: int) -> Estimate:
        def delivery(since: float, until: float) -> tuple[int, int]:
            asked.append((since, until))
            return 800_000, arrived

        return dataclasses.replace(
            est(None), twcc=True, twcc_clean=True, delivery=delivery, rtt=None
        )

    for arrived, held in ((790_000, True), (650_000, False)):
        c = BudgetController(start_bps=600_000)
        c.update(clean(arrived), 0.0)
        c.update(clean(arrived), 0.1, 1_000_000)
        assert c.probing
        target = c.budget_bps
        c.update(clean(arrived), 0.1 + PROBE_PAD_SECONDS + 0.1, 1_000_000)
        assert not c.probing
        if held:
            assert (c.probes_ok, c.probes_failed, c.budget_bps) == (1, 0, target)
        else:
            assert (c.probes_ok, c.probes_failed) == (0, 1)
            assert c.limited
            assert c.budget_bps == max(600_000, int(arrived * 0.9))  # what arrived, less margin
        # the packets asked about: from a quarter of the padding time (the first probe's,
        # a shorter one) to its end
        pad = PROBE_PAD_SECONDS * FIRST_PROBE_SCALE
        since, until = asked[-1]
        assert since == pytest.approx(0.1 + pad * 0.25)
        assert until == pytest.approx(0.1 + pad)
    # Where 700 kbit/s of 800 arrived, above the old budget: that much (less margin) is kept
    c = BudgetController(start_bps=600_000)
    c.update(clean(700_000), 0.0)
    c.update(clean(700_000), 0.1, 1_000_000)
    c.update(clean(700_000), 0.1 + PROBE_PAD_SECONDS + 0.1, 1_000_000)
    assert c.probes_failed == 1 and c.budget_bps == int(700_000 * 0.9)


def test_a_probe_whose_padding_fell_short_holds_only_what_it_sent() -> None:
    """Its padding resends recent packets, and right after a layer switch there are few:
    a probe whose packets left well under its level tested no more than what left (a 2x
    probe that sent 60 % of its level held, and the camera it let in overflowed the link).
    It holds at that, without growing the streak."""
    import dataclasses

    def clean(sent: int) -> Estimate:
        return dataclasses.replace(
            est(None), twcc=True, twcc_clean=True, rtt=None, delivery=lambda a, b: (sent, sent)
        )

    c = BudgetController(start_bps=600_000)
    c.update(clean(500_000), 0.0)
    c.update(clean(500_000), 0.1, 1_000_000)
    target = c.budget_bps
    c.update(clean(500_000), 0.1 + PROBE_PAD_SECONDS + 0.1, 1_000_000)
    assert (c.probes_ok, c.probes_failed) == (1, 0)
    assert c.budget_bps == int(500_000 / 0.75) < target
    assert c._streak == 0


def test_congestion_after_a_raise_ends_the_streak_of_good_probes() -> None:
    """The next probe after congestion steps as after any congestion, not 2x on the
    streak of the good probes before it (one such probe into a link just limited held)."""
    import dataclasses

    base = dataclasses.replace(est(None), twcc=True, twcc_clean=True, rtt=None)
    c = BudgetController(start_bps=600_000)
    t = 0.0
    c.update(base, t)
    for _ in range(3):  # three probes that hold
        t += 1.0
        c.update(base, t, 10_000_000)
        assert c.probing
        t += PROBE_PAD_SECONDS + 0.1
        c.update(base, t, 10_000_000)
        assert not c.probing
    assert c._streak == 3
    t += 0.1
    c.update(dataclasses.replace(base, delay_at=t, delay_bps=500_000), t, 10_000_000)
    assert c.limited and c._streak == 0


def test_on_a_jittery_path_a_probe_whose_packets_queued_fails() -> None:
    """The delay gradient is drowned in 300 ms of jitter, and a probe that fits in the
    bottleneck's queue loses nothing; the least delay of its late packets, risen by more
    than PROBE_QUEUE_RISE_MS over that of the packets before it, fails it."""
    import dataclasses

    from webinar.sfu.estimator import PROBE_QUEUE_RISE_MS

    for rise, held in ((10.0, True), (PROBE_QUEUE_RISE_MS + 20.0, False), (None, True)):

        def jittery(e: Estimate, rise: float | None = rise) -> Estimate:
            return dataclasses.replace(
                e,
                bitrate_bps=None,
                twcc=True,
                twcc_clean=False,
                loss_lag=0.2,
                delay_rise=lambda a, b: rise,
            )

        c = BudgetController(start_bps=1_000_000)
        c.update(jittery(sample(0.010, -1.0, -0.9)), 0.0)
        c.update(jittery(sample(0.010, -1.0, -0.9)), 0.1, 2_000_000)
        assert c.probing
        c.update(jittery(sample(0.010, 0.33, 0.9)), 1.0, 2_000_000)
        assert (c.probes_ok, c.probes_failed) == ((1, 0) if held else (0, 1)), rise
