"""After the event: the thank-you e-mail to every attendee with an address, once.

An event *ends* when its host ends it for everyone (the rooms tell :meth:`FollowUp.room_event`;
any worker records it) or when its scheduled end has passed with its room empty (the job
finds it). Then, once per event (``event_followup.queued_at``), the job plans one e-mail per
attendee with an e-mail address (registrants and invitees: attendance knows the address
their ticket admitted them with; someone who gave none gets nothing), due at the end plus the
organiser's delay, and sends each once (see :mod:`webinar.followup.records`): in the
recipient's language (the one they registered in, else the event's, else the one they used in
the room), HTML and plain text, with the organiser's text (or ours), a personal link to the
recording when one is published, and a signed link to rate the event.

The job runs where reminders do (the process; worker 1; the holder of the ``jobs`` lease on a
cluster of nodes): one owned task, woken at once when this worker saw an event end, else
every :data:`POLL_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from webinar.attendance.ratings import MAIL_TOKEN_SECONDS, STARS, Rater, Ratings
from webinar.attendance.service import ENDED_FOR_ALL, AttendanceService
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.recordings.sharing import Publication, Publisher
from webinar.rooms.state import Phase, RoomEnded, RoomEvent
from webinar.storage import branding
from webinar.storage.db import Database
from webinar.storage.store import Event, Store
from webinar.tasks import LeasedJob, stop_tasks
from webinar.ticketing import records as tickets
from webinar.ticketing.desk import mail_zone
from webinar.ticketing.mail import Mailer, MailError

from . import records

logger = logging.getLogger(__name__)

POLL_SECONDS = 15.0
#: On stop, a send under way gets this long to finish (and be recorded) before it is cut.
STOP_GRACE_SECONDS = 5.0
TEMPLATE = "thank_you"


@dataclass(frozen=True, slots=True)
class Recording:
    """The published recording a thank-you e-mail links to."""

    url: str
    until: datetime


def personal_text(text: str, *, name: str, title: str) -> str:
    """The organiser's text with ``{name}`` and ``{title}`` filled in (nothing else is)."""
    return text.replace("{name}", name).replace("{title}", title)


def sql_live_publication(db: Database, event_id: str, now: float) -> Publication | None:
    """The event's newest publication of a recording that has not expired."""
    row = db.execute(
        "SELECT p.publication_id, p.recording_id, p.expires_at, p.require_email, p.created_at"
        " FROM recording_publications p JOIN recordings r ON r.recording_id = p.recording_id"
        " WHERE r.event_id = ? AND p.expires_at > ? ORDER BY p.created_at DESC LIMIT 1",
        (event_id, now),
    ).fetchone()
    if row is None:
        return None
    return Publication(str(row[0]), str(row[1]), float(row[2]), bool(row[3]), float(row[4]))


class FollowUp:
    """Ends of events, and the thank-you e-mails. Also the rooms' observer for the end."""

    def __init__(
        self,
        store: Store,
        attendance: AttendanceService,
        ratings: Ratings,
        mailer: Mailer,
        base_url: str,
        *,
        publisher: Publisher | None = None,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = POLL_SECONDS,
        stop_grace_seconds: float = STOP_GRACE_SECONDS,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        """``gate``: on a cluster of nodes, whether this worker holds the jobs lease now."""
        self.store = store
        self.attendance = attendance
        self.ratings = ratings
        self.mailer = mailer
        self.base_url = base_url.rstrip("/")
        self.publisher = publisher
        self.clock = clock
        self._job = LeasedJob(
            "thank-you",
            self.run_once,
            self._resume,
            poll_seconds=poll_seconds,
            stop_grace_seconds=stop_grace_seconds,
            gate=gate,
            failure="the thank-you e-mails' round failed",
            log=logger,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # ------------------------------------------------------------------ the rooms' observer

    def room_event(self, room_id: str, event: RoomEvent) -> None:
        if isinstance(event, RoomEnded):
            self.event_ended(room_id)

    def room_opened(self, room_id: str, phase: Phase) -> None:
        pass

    def room_closed(self, room_id: str, phase: Phase) -> None:
        """The last person left: the scheduled end may have passed with the room now empty."""
        self.wake()

    def event_ended(self, event_id: str) -> None:
        """The host ended the event for everyone: record it (this worker saw it), wake the job."""
        self._spawn(self._record_end(event_id))

    async def _record_end(self, event_id: str) -> None:
        try:
            if await self.attendance.ended(event_id, ENDED_FOR_ALL):
                logger.info("event %s ended for everyone", event_id)
        except Exception:
            # The scheduled end still comes (the job finds it once the room is empty).
            logger.exception("recording the end of event %s failed", event_id)
        self.wake()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro, name="followup")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def wake(self) -> None:
        self._job.wake()

    # ------------------------------------------------------------------ the job

    async def start(self) -> None:
        """Run the job here (the worker that runs the periodic jobs)."""
        await self._job.start()

    async def close(self) -> None:
        """Stop the job (a send under way gets a grace to finish) and every task of ours."""
        self._closed = True
        await self._job.stop()
        await stop_tasks(self._tasks)

    async def _resume(self) -> None:
        again, failed = await self.store.run_sql(records.resume_interrupted)
        if again:
            logger.warning(
                "%d thank-you e-mails were interrupted while sending; sending them again"
                " with the same Message-ID",
                again,
            )
        if failed:
            logger.warning("%d interrupted thank-you e-mails had no attempt left", failed)

    async def run_once(self) -> int:
        """Find ended events, plan their e-mails, send what is due; how many were sent."""
        ended = await self.attendance.end_scheduled()
        if ended:
            logger.info("scheduled end passed with the room empty: %s", ", ".join(ended))
        await self.plan()
        return await self.send_due()

    async def plan(self) -> int:
        """Plan the e-mails of every event that ended and has none planned; how many."""
        planned = 0
        for event_id, ended_at in await self.store.run_sql(records.unplanned):
            count = await self._plan_one(event_id, ended_at)
            if count:
                logger.info("event %s: %d thank-you e-mails planned", event_id, count)
            planned += count
        return planned

    async def _plan_one(self, event_id: str, ended_at: float) -> int:
        recipients = await self.attendance.recipients(event_id)
        settings = await self.settings(event_id)
        due = ended_at + settings.delay_minutes * 60
        now = self.clock()

        def plan(db: Database) -> int:
            if tickets.get_access(db, event_id).cancelled_at is not None:
                return records.plan(db, event_id, [], due, now)  # nobody is thanked
            return records.plan(db, event_id, recipients, due, now)

        return await self.store.run_sql(plan)

    async def send_due(self) -> int:
        """Send every e-mail that is due now; how many went out."""
        now = self.clock()
        sent = 0
        for mail in await self.store.run_sql(lambda db: records.due(db, now)):
            if self._job.stopping:
                break
            with self._job.busy():
                sent += await self._send_one(mail)
        return sent

    async def _send_one(self, mail: records.Mail) -> bool:
        e, to = mail.event_id, mail.email
        if not await self.store.run_sql(lambda db: records.claim(db, e, to)):
            return False  # another sender took it
        event = await self.store.get_event(e)
        settings = await self.settings(e)
        if event is None or not settings.enabled:
            reason = "the event is gone" if event is None else "switched off"
            await self.store.run_sql(lambda db: records.skip(db, e, to, reason))
            return False
        fresh = self.mailer.new_message_id(f"thanks.{e}")
        message_id = await self.store.run_sql(lambda db: records.message_id(db, e, to, fresh))
        try:
            message = await self.compose(event, settings, mail, message_id=message_id)
            await self.mailer.send(message)
        except Exception as exc:
            if isinstance(exc, MailError | OSError):
                logger.warning("thank-you e-mail of event %s to %s not sent: %s", e, to, exc)
            else:
                logger.exception("thank-you e-mail of event %s to %s failed", e, to)
            now, error = self.clock(), str(exc)
            await self.store.run_sql(
                lambda db: records.finish(db, e, to, sent=False, now=now, error=error)
            )
            return False
        now = self.clock()
        await self.store.run_sql(lambda db: records.finish(db, e, to, sent=True, now=now))
        return True

    # ------------------------------------------------------------------ the e-mail

    async def settings(self, event_id: str) -> records.Settings:
        return await self.store.run_sql(lambda db: records.get_settings(db, event_id))

    async def save_settings(self, settings: records.Settings) -> records.Settings:
        """Save the organiser's settings (ValueError says what is wrong); e-mails planned and
        not tried yet follow a changed delay."""
        checked = settings.validated()

        def put(db: Database) -> None:
            records.put_settings(db, checked)
            ending = db.execute(
                "SELECT ended_at FROM event_endings WHERE event_id = ?", (checked.event_id,)
            ).fetchone()
            if ending is not None:
                db.execute(
                    "UPDATE thank_you_mails SET due_at = ? WHERE event_id = ?"
                    " AND state = 'pending' AND attempts = 0",
                    (float(ending[0]) + checked.delay_minutes * 60, checked.event_id),
                )

        await self.store.run_sql(put)
        return await self.settings(settings.event_id)

    async def mails(self, event_id: str) -> list[records.Mail]:
        return await self.store.run_sql(lambda db: records.list_mails(db, event_id))

    async def language_of(self, event: Event, mail: records.Mail) -> str | None:
        """The one they registered in, else the event's, else the one they used in the room."""
        registered: Mapping[str, str] = await self.store.run_sql(
            lambda db: tickets.registrant_languages(db, event.event_id)
        )
        return registered.get(mail.email) or event.language or mail.language

    async def recording(self, event_id: str, email: str | None) -> Recording | None:
        """A link to the event's published recording (personal to ``email``), if one is."""
        if self.publisher is None:
            return None
        now = self.clock()
        found = await self.store.run_sql(lambda db: sql_live_publication(db, event_id, now))
        if found is None:
            return None
        token = await self.publisher.token(found, email)
        return Recording(f"{self.base_url}/r/{token}", found.expires)

    async def compose(
        self,
        event: Event,
        settings: records.Settings,
        mail: records.Mail,
        *,
        message_id: str | None = None,
        language: str | None = None,
        sample: bool = False,
    ) -> EmailMessage:
        """The thank-you e-mail to ``mail``'s recipient (``language`` given: in that one;
        ``sample``: a preview, whose rating link rates nothing)."""
        lang = language if language is not None else await self.language_of(event, mail)
        token = (
            "example"
            if sample
            else self.ratings.token(
                Rater(event.event_id, mail.name, email=mail.email, via="email"),
                valid_for=MAIL_TOKEN_SECONDS,
            )
        )
        rating_url = f"{self.base_url}/rate/{token}"
        recording = await self.recording(event.event_id, None if sample else mail.email)
        event_id, owner_id = event.event_id, event.owner_id
        brand = await self.store.run(
            lambda core: branding.sql_brand(core.connection, event_id, owner_id)
        )
        return self.mailer.compose(
            TEMPLATE,
            mail.email,
            language=lang,
            message_id=message_id,
            name=mail.name,
            event=event,
            event_id=format_event_id(event.event_id),
            zone=mail_zone(event),
            starts_at=event.starts_at,
            subject=personal_text(settings.subject, name=mail.name, title=event.title),
            text=personal_text(settings.text, name=mail.name, title=event.title),
            recording=recording,
            rating_url=rating_url,
            stars=[(n, f"{rating_url}?stars={n}") for n in STARS],
            brand=brand,
            brand_origin=self.base_url,
        )

    async def preview(self, event: Event, settings: records.Settings, language: str | None) -> str:
        """The plain-text part of the e-mail as a sample attendee would get it."""
        example = records.Mail(
            event.event_id,
            "ada@example.org",
            "Ada Lovelace",
            language,
            "pending",
            0,
            self.clock(),
            None,
            None,
            None,
        )
        message = await self.compose(event, settings, example, language=language, sample=True)
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        label = _("Subject:")
        return f"{label} {message['Subject']}\n\n{part.get_content()}"
