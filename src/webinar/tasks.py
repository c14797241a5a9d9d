"""Stopping owned tasks: cancel, and wait until they really have finished.

``task.cancel(); await task`` can wait forever: on Python 3.11, ``asyncio.wait_for`` swallows
a cancellation that arrives in the same step as the result it was waiting for
(CPython gh-86296, fixed in 3.12), and aiosmtplib, aiohttp helpers and others use it. A loop
task that lost its cancellation that way goes back to its ``sleep(30)`` — and a plain
``await task`` hangs shutdown. :func:`stop_tasks` cancels again until the task is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

RECANCEL_SECONDS = 1.0


async def stop_tasks(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has finished.

    A task that swallows its cancellation is cancelled again every ``RECANCEL_SECONDS``.
    The caller's own cancellation is not suppressed. A task that ended with an exception
    has it logged (not raised), so one failing task does not stop the others being stopped.
    The current task is never waited on (a task may stop the group it belongs to).
    """
    current = asyncio.current_task()
    owned = [t for t in tasks if t is not current]
    pending = set(owned)
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
        if pending:
            logger.debug("%d tasks did not stop on cancel; cancelling again", len(pending))
    for task in owned:
        if task.cancelled():
            continue
        exc = task.exception()
        if exc is not None:
            logger.error("task %r failed before it was stopped", task, exc_info=exc)


async def stop_task(task: asyncio.Future[Any] | None) -> None:
    """:func:`stop_tasks` for one task (``None`` is nothing to stop)."""
    if task is not None:
        await stop_tasks((task,))
