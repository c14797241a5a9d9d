"""The outbox's sender: invitations, updates and cancellations queued in ``mail_outbox``.

One owned task sends what is due, oldest first, :data:`SENDERS` messages at a time, through
:meth:`TicketDesk.send_queued <webinar.ticketing.desk.TicketDesk.send_queued>` (claimed in
the store first, so a message an HTTP request is sending at once, or another worker, is never
sent twice). It wakes when something is queued in this process (:meth:`Outbox.wake`) and
polls every few seconds for what other processes queued (the CLI, other workers).

Exactly once across restarts: a graceful stop lets the send under way finish and be
recorded; a message a crash cut short (left ``sending``) goes out again at the next start with
the Message-ID recorded before its first try, so a copy that did arrive is recognisable.
With several workers only the holder of the jobs lease sends (``gate``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..storage.store import SyncStore
from ..tasks import stop_task
from . import mailing
from .desk import TicketDesk

logger = logging.getLogger(__name__)

POLL_SECONDS = 5.0
#: Messages handed to the SMTP server at once (each on its own connection): a mail server
#: that takes 100 ms per message then takes 10,000 invitations in about 4 minutes.
SENDERS = 4
#: On stop, a send under way gets this long to finish (and be recorded) before it is cut.
STOP_GRACE_SECONDS = 10.0


class Outbox:
    def __init__(
        self,
        desk: TicketDesk,
        base_url: str,
        poll_seconds: float = POLL_SECONDS,
        stop_grace_seconds: float = STOP_GRACE_SECONDS,
        gate: Callable[[], bool] | None = None,
        senders: int = SENDERS,
        alone: bool = True,
    ) -> None:
        """``gate``: on a cluster of nodes, whether this worker holds the jobs lease now;
        messages are sent (and interrupted ones taken up again) only while it does.
        ``alone``: no other process of the server runs (a single ``webinar serve``), so
        messages left ``sending`` at start were cut short by the last stop and go out again at
        once; with several workers, one may be sending them now (an invitation sent during a
        request): they go out again once their claim is stale (mailing.STALE_CLAIM)."""
        self._desk = desk
        self._base_url = base_url
        self._poll = poll_seconds
        self._grace = stop_grace_seconds
        self._gate = gate
        self._resumed = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._alone = alone
        self._senders = max(1, senders)
        #: Sends under way (a stop lets them finish).
        self._busy = 0

    def wake(self) -> None:
        """Something was queued: send it now rather than at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        if self._gate is None:
            await self._resume()
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox")

    async def _resume(self) -> None:
        self._resumed = True
        if not self._alone:
            return  # each round takes up the stale ones (see _due)
        retried, failed = await self._desk.store.run(
            lambda core: mailing.resume_interrupted(core.connection)
        )
        if retried:
            logger.warning(
                "%d e-mails were interrupted while sending; sending them again with the same"
                " Message-ID",
                retried,
            )
        if failed:
            logger.warning("%d interrupted e-mails had no attempt left; given up", failed)

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        if task is not None and self._busy:
            # Let the send under way finish and be recorded; cut short, it goes out again
            # (with the same Message-ID) at the next start.
            await asyncio.wait({task}, timeout=self._grace)
        await stop_task(task)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                if self._gate is not None:
                    if not self._gate():
                        self._resumed = False
                        await asyncio.sleep(min(self._poll, 1.0))
                        continue
                    if not self._resumed:
                        await self._resume()
                await self.send_due()
            except Exception:
                logger.exception("sending queued e-mails failed")
            if not self._stopping:
                try:
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def _due(self) -> list[mailing.OutboxItem]:
        now = self._desk.ticketing.clock()

        def due(core: SyncStore) -> list[mailing.OutboxItem]:
            stale = mailing.resume_stale(core.connection, now)
            if stale:
                logger.warning("%d e-mails were left half sent; sending them again", stale)
            return mailing.due_items(core.connection, now)

        return await self._desk.store.run(due)

    async def send_due(self) -> int:
        """Send every message that is due now, ``senders`` at a time, oldest first; how
        many went out."""
        desk = self._desk
        sent = 0

        async def sender(queue: list[mailing.OutboxItem]) -> None:
            nonlocal sent
            while queue and not self._stopping:
                item = queue.pop(0)
                self._busy += 1
                try:
                    if await desk.send_queued(item.item_id, self._base_url) is not None:
                        sent += 1
                finally:
                    self._busy -= 1

        while not self._stopping:
            due = await self._due()
            if not due:
                break
            await asyncio.gather(*(sender(due) for _ in range(self._senders)))
        return sent
