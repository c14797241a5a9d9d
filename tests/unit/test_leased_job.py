"""webinar.tasks.LeasedJob: the periodic job one worker runs at a time (outbox, reminders,
thank-you e-mails)."""

from __future__ import annotations

import asyncio

from webinar.tasks import LeasedJob


async def test_rounds_run_only_with_the_lease_each_gain_taking_up_what_was_cut_short() -> None:
    lease = False
    log: list[str] = []

    async def round_() -> None:
        log.append("round")

    async def resume() -> None:
        log.append("resume")

    job = LeasedJob(
        "test",
        round_,
        resume,
        poll_seconds=0.02,
        stop_grace_seconds=1,
        gate=lambda: lease,
        failure="the test round failed",
    )
    await job.start()
    await asyncio.sleep(0.1)
    assert log == []  # no lease, nothing
    lease = True
    await asyncio.sleep(1.2)
    assert log[0] == "resume" and log.count("resume") == 1 and "round" in log
    lease = False
    await asyncio.sleep(1.1)
    lease = True
    log.clear()
    await asyncio.sleep(1.2)
    assert log[0] == "resume"  # gained again: taken up again
    await job.stop()


async def test_stop_lets_a_send_under_way_finish_and_a_failing_round_does_not_end_it() -> None:
    rounds = 0
    finished = asyncio.Event()

    async def round_() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise RuntimeError("the first round fails")
        with job.busy():
            await asyncio.sleep(0.3)
            finished.set()

    async def resume() -> None:
        pass

    job = LeasedJob(
        "test",
        round_,
        resume,
        poll_seconds=60,
        stop_grace_seconds=5,
        gate=None,
        failure="the test round failed",
    )
    await job.start()
    await asyncio.sleep(0.05)
    job.wake()  # the second round, at once rather than after the poll
    await asyncio.sleep(0.1)
    await job.stop()
    assert rounds == 2 and finished.is_set() and job.stopping
