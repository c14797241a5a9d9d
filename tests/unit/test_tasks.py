"""stop_tasks: stopping an owned task never hangs, even when the task loses a cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from webinar.tasks import stop_task, stop_tasks


async def test_a_task_whose_wait_for_swallowed_the_cancel_is_still_stopped() -> None:
    """The shape of the shutdown hang: asyncio.wait_for returns its result although the task
    was cancelled in the same step (Python 3.11), and the loop goes back to a long sleep."""
    reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    rounds: list[str] = []

    async def poller() -> None:
        while True:
            try:
                rounds.append(await asyncio.wait_for(reply, 10.0))
            except asyncio.CancelledError:
                rounds.append("cancelled")
                raise
            await asyncio.sleep(30.0)

    task = asyncio.get_running_loop().create_task(poller())
    await asyncio.sleep(0)  # the poller waits on the reply
    reply.set_result("answer")
    task.cancel()  # arrives in the same step as the reply
    async with asyncio.timeout(5.0):
        await stop_task(task)
    assert task.cancelled()


async def test_a_task_that_ignores_one_cancel_is_cancelled_again() -> None:
    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as a buggy library would
            await asyncio.sleep(30.0)
        await asyncio.sleep(30.0)

    task = asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5.0):
        await stop_task(task)
    assert task.cancelled()


async def test_failures_are_logged_not_raised_and_the_others_still_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails() -> None:
        raise RuntimeError("broken")

    failing = asyncio.get_running_loop().create_task(fails())
    sleeping = asyncio.get_running_loop().create_task(asyncio.sleep(30.0))
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="webinar.tasks"):
        await stop_tasks([failing, sleeping])
    assert sleeping.cancelled()
    assert "broken" in caplog.text


async def test_the_callers_own_cancellation_propagates() -> None:
    async def slow_cleanup() -> None:
        try:
            await asyncio.sleep(30.0)
        finally:
            await asyncio.shield(asyncio.sleep(0.2))

    inner = asyncio.get_running_loop().create_task(slow_cleanup())
    outer = asyncio.get_running_loop().create_task(stop_task(inner))
    await asyncio.sleep(0.05)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    await stop_task(inner)


async def test_the_current_task_is_not_waited_on() -> None:
    me = asyncio.current_task()
    assert me is not None
    other = asyncio.get_running_loop().create_task(asyncio.sleep(30.0))
    await stop_tasks([me, other])
    assert other.cancelled()
    await stop_task(None)
