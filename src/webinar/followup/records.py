"""The thank-you e-mail's tables (migration 20): its settings per event and one row per
recipient. Plain synchronous functions on the store's connection.

A recipient's row goes ``pending`` -> ``sending`` (claimed, before the send; its Message-ID is
recorded then) -> ``sent``; a failed try goes back to ``pending`` with a later ``due_at`` (1,
2, 4, 8 minutes), ``failed`` after :data:`ATTEMPTS`. A row left ``sending`` by a stop or a
crash goes out again at the next start with the same Message-ID (it may have reached the
mail server already; the copy is recognised by it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from webinar.attendance.service import Recipient
from webinar.i18n import _
from webinar.storage.db import Database, transaction

SUBJECT_MAX_CHARS = 200
TEXT_MAX_CHARS = 5000
DELAY_MAX_MINUTES = 7 * 24 * 60
ATTEMPTS = 5
STATES = ("pending", "sending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class Settings:
    """An event's thank-you e-mail (the defaults when the organiser set nothing)."""

    event_id: str
    enabled: bool = True
    #: The organiser's subject and text ("" : ours, in each recipient's language); the text
    #: may say {name} and {title}.
    subject: str = ""
    text: str = ""
    #: Minutes after the end it goes out (time to publish the recording first).
    delay_minutes: int = 0
    #: When its e-mails were planned (the event had ended); None: not yet.
    queued_at: float | None = None

    def validated(self) -> Settings:
        """A normalised copy; ValueError says what is wrong."""
        subject = " ".join(self.subject.split())
        text = self.text.replace("\r\n", "\n").strip()
        if len(subject) > SUBJECT_MAX_CHARS:
            raise ValueError(
                _("the subject may have at most %(max)d characters") % {"max": SUBJECT_MAX_CHARS}
            )
        if len(text) > TEXT_MAX_CHARS:
            raise ValueError(
                _("the text may have at most %(max)d characters") % {"max": TEXT_MAX_CHARS}
            )
        if not 0 <= self.delay_minutes <= DELAY_MAX_MINUTES:
            raise ValueError(
                _("the delay must be 0 to %(max)d minutes") % {"max": DELAY_MAX_MINUTES}
            )
        return dataclasses.replace(self, subject=subject, text=text)


def get_settings(db: Database, event_id: str) -> Settings:
    row = db.execute(
        "SELECT thank_you, thank_you_subject, thank_you_text, delay_minutes, queued_at"
        " FROM event_followup WHERE event_id = ?",
        (event_id,),
    ).fetchone()
    if row is None:
        return Settings(event_id)
    return Settings(event_id, bool(row[0]), str(row[1]), str(row[2]), int(row[3]), row[4])


def put_settings(db: Database, settings: Settings) -> None:
    """Save what the organiser sets (``queued_at`` is kept as it is)."""
    s = settings.validated()
    db.execute(
        "INSERT INTO event_followup (event_id, thank_you, thank_you_subject, thank_you_text,"
        " delay_minutes) VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET"
        " thank_you = excluded.thank_you, thank_you_subject = excluded.thank_you_subject,"
        " thank_you_text = excluded.thank_you_text, delay_minutes = excluded.delay_minutes",
        (s.event_id, s.enabled, s.subject, s.text, s.delay_minutes),
    )


def copy_settings(db: Database, source_id: str, target_id: str) -> bool:
    """A duplicated event takes its source's thank-you settings (not when it was queued);
    whether the source had its own."""
    row = db.execute("SELECT 1 FROM event_followup WHERE event_id = ?", (source_id,)).fetchone()
    if row is None:
        return False
    source = get_settings(db, source_id)
    put_settings(db, dataclasses.replace(source, event_id=target_id, queued_at=None))
    return True


@dataclass(frozen=True, slots=True)
class Mail:
    """One recipient's thank-you e-mail."""

    event_id: str
    email: str
    name: str
    language: str | None
    state: str
    attempts: int
    due_at: float
    message_id: str | None
    sent_at: float | None
    error: str | None


_MAIL_COLUMNS = (
    "event_id, email, name, language, state, attempts, due_at, message_id, sent_at, error"
)


def _mail(row: Sequence[Any]) -> Mail:
    return Mail(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        row[3],
        str(row[4]),
        int(row[5]),
        float(row[6]),
        row[7],
        row[8],
        row[9],
    )


def unplanned(db: Database, limit: int = 100) -> list[tuple[str, float]]:
    """Events that have ended and whose thank-you e-mails are not planned yet:
    (event ID, when it ended)."""
    rows = db.execute(
        "SELECT n.event_id, n.ended_at FROM event_endings n"
        " LEFT JOIN event_followup f ON f.event_id = n.event_id"
        " WHERE f.queued_at IS NULL ORDER BY n.ended_at LIMIT ?",
        (limit,),
    ).fetchall()
    return [(str(e), float(t)) for e, t in rows]


def plan(
    db: Database, event_id: str, recipients: Sequence[Recipient], due_at: float, now: float
) -> int:
    """Plan the event's thank-you e-mails, once: one per recipient when it is switched on,
    none when off; how many were planned (0 also when another worker planned them first)."""
    with transaction(db, immediate=True):
        settings = get_settings(db, event_id)
        if settings.queued_at is not None:
            return 0
        db.execute(
            "INSERT INTO event_followup (event_id, queued_at) VALUES (?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET queued_at = excluded.queued_at",
            (event_id, now),
        )
        if not settings.enabled:
            return 0
        planned = 0
        for r in recipients:
            planned += db.execute(
                "INSERT INTO thank_you_mails (event_id, email, name, language, due_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id, email) DO NOTHING",
                (event_id, r.email, r.name, r.language, due_at),
            ).rowcount
        return planned


def due(db: Database, now: float, limit: int = 100) -> list[Mail]:
    rows = db.execute(
        f"SELECT {_MAIL_COLUMNS} FROM thank_you_mails WHERE state = 'pending' AND due_at <= ?"
        " ORDER BY due_at, event_id, email LIMIT ?",
        (now, limit),
    ).fetchall()
    return [_mail(row) for row in rows]


def claim(db: Database, event_id: str, email: str) -> bool:
    """Take a pending e-mail for sending (only one sender gets it)."""
    return bool(
        db.execute(
            "UPDATE thank_you_mails SET state = 'sending', attempts = attempts + 1"
            " WHERE event_id = ? AND email = ? AND state = 'pending'",
            (event_id, email),
        ).rowcount
    )


def message_id(db: Database, event_id: str, email: str, fresh: str) -> str:
    """The e-mail's Message-ID: the one recorded by an earlier try, else ``fresh`` (recorded)."""
    db.execute(
        "UPDATE thank_you_mails SET message_id = ? WHERE event_id = ? AND email = ?"
        " AND message_id IS NULL",
        (fresh, event_id, email),
    )
    (value,) = db.execute(
        "SELECT message_id FROM thank_you_mails WHERE event_id = ? AND email = ?",
        (event_id, email),
    ).fetchone()
    return str(value)


def finish(
    db: Database, event_id: str, email: str, *, sent: bool, now: float, error: str | None = None
) -> str:
    """After a try: ``sent``, or back to ``pending`` after a back-off (``failed`` when no
    attempt is left). The state it is in."""
    if sent:
        db.execute(
            "UPDATE thank_you_mails SET state = 'sent', sent_at = ?, error = NULL"
            " WHERE event_id = ? AND email = ?",
            (now, event_id, email),
        )
        return "sent"
    (attempts,) = db.execute(
        "SELECT attempts FROM thank_you_mails WHERE event_id = ? AND email = ?",
        (event_id, email),
    ).fetchone()
    state = "failed" if int(attempts) >= ATTEMPTS else "pending"
    db.execute(
        "UPDATE thank_you_mails SET state = ?, due_at = ?, error = ?"
        " WHERE event_id = ? AND email = ?",
        (state, now + 60 * 2 ** (int(attempts) - 1), (error or "")[:300], event_id, email),
    )
    return state


def skip(db: Database, event_id: str, email: str, reason: str) -> None:
    """A claimed e-mail that will not be sent (the event is gone, switched off since)."""
    db.execute(
        "UPDATE thank_you_mails SET state = 'failed', error = ? WHERE event_id = ? AND email = ?",
        (reason[:300], event_id, email),
    )


def resume_interrupted(db: Database) -> tuple[int, int]:
    """E-mails a stop left ``sending`` go out again (same Message-ID), or fail when they had
    every attempt already: (how many again, how many failed)."""
    failed = db.execute(
        "UPDATE thank_you_mails SET state = 'failed', error = 'interrupted'"
        " WHERE state = 'sending' AND attempts >= ?",
        (ATTEMPTS,),
    ).rowcount
    again = db.execute(
        "UPDATE thank_you_mails SET state = 'pending' WHERE state = 'sending'"
    ).rowcount
    return again, failed


def list_mails(db: Database, event_id: str) -> list[Mail]:
    rows = db.execute(
        f"SELECT {_MAIL_COLUMNS} FROM thank_you_mails WHERE event_id = ? ORDER BY email",
        (event_id,),
    ).fetchall()
    return [_mail(row) for row in rows]


def delete_people(db: Database, event_id: str) -> int:
    """Forget the event's recipients (their addresses and names): the personal data."""
    return db.execute("DELETE FROM thank_you_mails WHERE event_id = ?", (event_id,)).rowcount
