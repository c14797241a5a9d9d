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
from ..tasks import LeasedJob
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
        self._alone = alone
        self._senders = max(1, senders)
        self._job = LeasedJob(
            "outbox",
            self.send_due,
            self._resume,
            poll_seconds=poll_seconds,
            stop_grace_seconds=stop_grace_seconds,
            gate=gate,
            failure="sending queued e-mails failed",
            log=logger,
        )

    def wake(self) -> None:
        """Something was queued: send it now rather than at the next poll."""
        self._job.wake()

    async def start(self) -> None:
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def _resume(self) -> None:
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
            while queue and not self._job.stopping:
                item = queue.pop(0)
                with self._job.busy():
                    if await desk.send_queued(item.item_id, self._base_url) is not None:
                        sent += 1

        while not self._job.stopping:
            due = await self._due()
            if not due:
                break
            await asyncio.gather(*(sender(due) for _ in range(self._senders)))
        return sent
