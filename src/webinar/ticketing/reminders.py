"""Reminder e-mails, 1 hour before the start, from the persisted ``reminders`` table.

One owned task polls for due reminders. Each is claimed (``pending`` -> ``sending``) in the
store before it is sent and marked ``sent`` after; before the send, its Message-ID (one per
reminder and recipient) is recorded. A reminder a crash or restart left ``sending`` is tried
again at the next start with the same Message-ID: it may have reached the recipient's mail
server already, and that server (or the recipient's mail program) recognises the copy by
its Message-ID. So nothing is lost, and a repeat is never a new message. A failed try is
retried after a back-off (1, 2, 4, 8 minutes), up to ``records.REMINDER_ATTEMPTS`` tries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..tasks import LeasedJob
from . import records
from .desk import DeskError, TicketDesk
from .mail import MailError

logger = logging.getLogger(__name__)

POLL_SECONDS = 30.0
#: On stop, a send under way gets this long to finish (and be recorded) before it is cut.
STOP_GRACE_SECONDS = 5.0


class Reminders:
    def __init__(
        self,
        desk: TicketDesk,
        base_url: str,
        poll_seconds: float = POLL_SECONDS,
        stop_grace_seconds: float = STOP_GRACE_SECONDS,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        """``gate``: on a cluster of nodes, whether this worker holds the jobs lease now;
        reminders are sent (and interrupted ones taken up again) only while it does."""
        self._desk = desk
        self._base_url = base_url
        self._job = LeasedJob(
            "reminders",
            self.send_due,
            self._resume,
            poll_seconds=poll_seconds,
            stop_grace_seconds=stop_grace_seconds,
            gate=gate,
            failure="sending reminders failed",
            log=logger,
        )

    async def start(self) -> None:
        await self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def _resume(self) -> None:
        """Take up the reminders a stop cut short (only the one sender may: it would send
        again what another is sending)."""
        retried, failed = await self._desk.store.run(
            lambda core: records.resume_interrupted_reminders(core.connection)
        )
        if retried:
            logger.warning(
                "%d reminders were interrupted while sending; sending them again with the"
                " same Message-ID",
                retried,
            )
        if failed:
            logger.warning("%d interrupted reminders had no attempt left; given up", failed)

    async def send_due(self) -> int:
        """Send every reminder that is due now; how many went out."""
        desk = self._desk
        now = desk.ticketing.clock()
        due = await desk.store.run(lambda core: records.due_reminders(core.connection, now))
        sent = 0
        for reminder in due:
            if self._job.stopping:
                break
            with self._job.busy():
                sent += await self._send_one(reminder)
        return sent

    async def _send_one(self, reminder: records.Reminder) -> bool:
        desk, rid = self._desk, reminder.reminder_id
        if not await desk.store.run(lambda core: records.claim_reminder(core.connection, rid)):
            return False
        try:
            state = await desk.send_reminder(reminder, self._base_url)
        except (MailError, DeskError) as exc:
            logger.warning("reminder %s not sent: %s", rid, exc)
            state = "pending"  # tried again after a back-off, up to REMINDER_ATTEMPTS times
        now = desk.ticketing.clock()
        await desk.store.run(lambda core: records.finish_reminder(core.connection, rid, state, now))
        return state == "sent"
