"""Stopping owned tasks: cancel, and wait until they really have finished.

``task.cancel(); await task`` can wait forever: on Python 3.11, ``asyncio.wait_for`` swallows
a cancellation that arrives in the same step as the result it was waiting for
(CPython gh-86296, fixed in 3.12), and aiosmtplib, aiohttp helpers and others use it. A loop
task that lost its cancellation that way goes back to its ``sleep(30)`` — and a plain
``await task`` hangs shutdown. :func:`stop_tasks` cancels again until the task is done.

:class:`LeasedJob` is the periodic job that one worker of a cluster runs at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
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


class LeasedJob:
    """A periodic job that one worker of a cluster runs at a time (the outbox, the
    reminders, the thank-you e-mails): a task that runs ``round`` every ``poll_seconds``, or
    at once when :meth:`wake` is called.

    ``gate`` (None: always) says whether this worker holds the jobs lease now: without it no
    round runs; each time the lease is gained, ``resume`` first takes up what a stop cut short
    (with no gate, at :meth:`start`). A round counts its sends under way with :meth:`busy`:
    :meth:`stop` lets such a send finish, and be recorded, for up to ``stop_grace_seconds``;
    a round checks :attr:`stopping` between sends. A round that fails is logged as
    ``failure`` and the job goes on."""

    def __init__(
        self,
        name: str,
        round: Callable[[], Awaitable[Any]],
        resume: Callable[[], Awaitable[None]],
        *,
        poll_seconds: float,
        stop_grace_seconds: float,
        gate: Callable[[], bool] | None,
        failure: str,
        log: logging.Logger = logger,
    ) -> None:
        self.name = name
        self._round = round
        self._resume = resume
        self._poll = poll_seconds
        self._grace = stop_grace_seconds
        self._gate = gate
        self._failure = failure
        self._log = log
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resumed = False
        self._busy = 0
        self.stopping = False

    def wake(self) -> None:
        """Something is due: run a round now rather than at the next poll."""
        self._wake.set()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """A send under way (a stop lets it finish)."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1

    async def start(self) -> None:
        if self._gate is None:
            await self._take_up()
        self.stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        self.stopping = True
        self._wake.set()
        if task is not None and self._busy:
            # Let the send under way finish and be recorded; cut short, it goes out again
            # (with the same Message-ID) at the next start.
            await asyncio.wait({task}, timeout=self._grace)
        await stop_task(task)

    async def _take_up(self) -> None:
        self._resumed = True
        await self._resume()

    async def _run(self) -> None:
        while not self.stopping:
            self._wake.clear()
            try:
                if self._gate is not None and not self._gate():
                    self._resumed = False
                    await asyncio.sleep(min(self._poll, 1.0))
                    continue
                if not self._resumed:
                    await self._take_up()
                await self._round()
            except Exception:
                self._log.exception("%s", self._failure)
            if not self.stopping:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
