"""Reminder e-mails, 1 hour before the start, from the persisted ``reminders`` table.

One owned task polls for due reminders. Each is claimed (``pending`` -> ``sending``) in the
store before it is sent and marked ``sent`` after, so a restart neither loses a reminder
that was not sent yet nor sends one twice; a reminder a crash left half-sent is not retried.
"""

from __future__ import annotations

import asyncio
import logging

from ..tasks import stop_task
from . import records
from .desk import DeskError, TicketDesk
from .mail import MailError

logger = logging.getLogger(__name__)

POLL_SECONDS = 30.0


class Reminders:
    def __init__(self, desk: TicketDesk, base_url: str, poll_seconds: float = POLL_SECONDS) -> None:
        self._desk = desk
        self._base_url = base_url
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        dropped = await self._desk.store.run(
            lambda core: records.abandon_interrupted_reminders(core.connection)
        )
        if dropped:
            logger.warning("%d reminders were interrupted while sending; not sent again", dropped)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="reminders")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        while True:
            try:
                await self.send_due()
            except Exception:
                logger.exception("sending reminders failed")
            await asyncio.sleep(self._poll)

    async def send_due(self) -> int:
        """Send every reminder that is due now; how many went out."""
        desk = self._desk
        now = desk.ticketing.clock()
        due = await desk.store.run(lambda core: records.due_reminders(core.connection, now))
        sent = 0
        for reminder in due:
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
            state = "pending"  # tried again later, up to REMINDER_ATTEMPTS times
        await desk.store.run(lambda core: records.finish_reminder(core.connection, rid, state))
        return state == "sent"
