"""E-mail to an event's people, as kept in the database (migration 18).

Plain synchronous functions on the store's connection, like :mod:`.records`:

- per event (``event_mail``): the calendar entry's ``SEQUENCE`` — 0 in the first file, one
  more each time a change of the event's time, title or state is saved after people were
  told, so every ``.ics`` with the event's UID replaces the one before in a calendar — and
  when its reminders go out (60 minutes before the start unless the organiser chose another
  time, or none);
- the outbox (``mail_outbox``): one row per invitation, update or cancellation to one person.
  Rows are written in the same transaction as what they announce (the invitees of a CSV
  import, a moved start, a cancellation), so a restart loses none; one sender claims each
  (``pending`` → ``sending``), records its Message-ID before handing it to the SMTP server and
  marks it ``sent`` after (:meth:`webinar.ticketing.desk.TicketDesk.send_queued`). A send that
  a crash cut short is tried again at the next start with the same Message-ID; a graceful
  stop lets the send under way finish. A failed try waits 1, 2, 4, ... minutes, up to
  :data:`OUTBOX_ATTEMPTS` tries;
- CSV imports the organiser previewed (``invite_imports``): the good rows and the problems of
  the others, until sent — sending one twice (a double click, two tabs) invites nobody twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webinar.i18n import _
from webinar.storage.db import Database, transaction
from webinar.storage.records import Event

from . import records
from .imports import ImportRow, LineProblem, ParsedFile
from .records import (
    SINGLE_MESSAGE_WITHIN,
    Invitee,
    from_db,
    now_utc,
    to_db,
)

#: Reminders go out this long before the start unless the event says otherwise.
DEFAULT_REMINDER_MINUTES = 60
#: The longest an organiser may set (a week).
MAX_REMINDER_MINUTES = 7 * 24 * 60
#: What the event form offers (0: no reminders).
REMINDER_CHOICES = (0, 15, 30, 60, 120, 180, 1440, 2880, 10080)
#: Tries per outbox message (a send a restart interrupted counts as one) ...
OUTBOX_ATTEMPTS = 8
#: ... the n-th failed one waiting OUTBOX_RETRY_AFTER * 2 ** (n - 1) before the next.
OUTBOX_RETRY_AFTER = timedelta(minutes=1)
#: A message claimed this long ago and not finished was cut short (a request cancelled, a
#: worker lost): it is sent again (each step of the SMTP exchange times out in 20 s).
STALE_CLAIM = timedelta(minutes=2)
#: A preview that was never sent is forgotten after this long (it holds people's addresses).
IMPORT_KEPT = timedelta(days=1)


class Kind(enum.StrEnum):
    INVITATION = "invitation"
    UPDATE = "update"
    CANCEL = "cancel"


class State(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


@contextlib.contextmanager
def atomic(conn: Database) -> Iterator[None]:
    """One write transaction, or the caller's when one is open already (the CLI's)."""
    if conn.in_transaction:
        yield
        return
    with transaction(conn, immediate=True):
        yield


# ------------------------------------------------------------------------ per event


@dataclass(frozen=True, slots=True)
class MailSettings:
    event_id: str
    calendar_sequence: int = 0
    #: Minutes before the start; 0: no reminders.
    reminder_minutes: int = DEFAULT_REMINDER_MINUTES

    @property
    def reminder_lead(self) -> timedelta | None:
        return timedelta(minutes=self.reminder_minutes) if self.reminder_minutes else None


def get_settings(conn: Database, event_id: str) -> MailSettings:
    row = conn.execute(
        "SELECT calendar_sequence, reminder_minutes FROM event_mail WHERE event_id = ?",
        (event_id,),
    ).fetchone()
    if row is None:
        return MailSettings(event_id)
    minutes = DEFAULT_REMINDER_MINUTES if row[1] is None else int(row[1])
    return MailSettings(event_id, int(row[0]), minutes)


def calendar_sequence(conn: Database, event_id: str) -> int:
    return get_settings(conn, event_id).calendar_sequence


def reminder_lead(conn: Database, event_id: str) -> timedelta | None:
    """How long before the start the event's reminders go out (None: it sends none)."""
    return get_settings(conn, event_id).reminder_lead


def bump_sequence(conn: Database, event_id: str) -> int:
    """The event changed in a way its calendar entry shows: the next SEQUENCE (returned)."""
    (sequence,) = conn.execute(
        "INSERT INTO event_mail (event_id, calendar_sequence) VALUES (?, 1)"
        " ON CONFLICT (event_id) DO UPDATE"
        " SET calendar_sequence = event_mail.calendar_sequence + 1 RETURNING calendar_sequence",
        (event_id,),
    ).fetchone()
    return int(sequence)


def copy_settings(conn: Database, source_id: str, target_id: str) -> None:
    """A copy of an event (``webinar event duplicate``) sends its reminders at the same time;
    its calendar entry is a new one (its own UID, SEQUENCE 0)."""
    row = conn.execute(
        "SELECT reminder_minutes FROM event_mail WHERE event_id = ?", (source_id,)
    ).fetchone()
    if row is not None and row[0] is not None:
        conn.execute(
            "INSERT INTO event_mail (event_id, reminder_minutes) VALUES (?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET reminder_minutes = excluded.reminder_minutes",
            (target_id, int(row[0])),
        )


def check_reminder_minutes(value: int) -> int:
    if not 0 <= value <= MAX_REMINDER_MINUTES:
        raise ValueError(
            _("reminders go out 0 to %(max)d minutes before the start (0: none)")
            % {"max": MAX_REMINDER_MINUTES}
        )
    return value


def set_reminder_minutes(conn: Database, event: Event, minutes: int, now: datetime) -> None:
    """When the event's reminders go out (0: none); pending ones follow, and people without
    one get one when the rule allows (:func:`replan_reminders`)."""
    minutes = check_reminder_minutes(minutes)
    with atomic(conn):
        conn.execute(
            "INSERT INTO event_mail (event_id, reminder_minutes) VALUES (?, ?)"
            " ON CONFLICT (event_id) DO UPDATE SET reminder_minutes = excluded.reminder_minutes",
            (event.event_id, minutes),
        )
        replan_reminders(conn, event, now)


def plan_reminder(
    conn: Database,
    event: Event,
    now: datetime,
    *,
    registration_id: int | None = None,
    invitee_id: int | None = None,
    presenter_id: int | None = None,
) -> bool:
    """A reminder for one person, at the event's reminder time (see records.plan_reminder)."""
    return records.plan_reminder(
        conn,
        event.event_id,
        event.starts_at,
        now,
        registration_id=registration_id,
        invitee_id=invitee_id,
        presenter_id=presenter_id,
        lead=reminder_lead(conn, event.event_id),
    )


def replan_reminders(conn: Database, event: Event, now: datetime) -> None:
    """The event's start or reminder time changed: pending reminders follow it (or are
    skipped when it sends none), and every confirmed registrant, active invitee and presenter
    without a reminder gets one when the rule of :func:`records.plan_reminder` allows it now."""
    lead = reminder_lead(conn, event.event_id)
    records.move_reminders(conn, event.event_id, event.starts_at, lead)
    if lead is None or event.starts_at is None:
        return
    due = event.starts_at - lead
    if due > now:  # reminders an earlier "none" skipped are due again
        conn.execute(
            "UPDATE reminders SET state = 'pending', due_at = ?, retry_at = NULL"
            " WHERE event_id = ? AND state = 'skipped' AND attempts = 0",
            (to_db(due), event.event_id),
        )
    if event.starts_at - now < SINGLE_MESSAGE_WITHIN or due <= now:
        return
    for (registration_id,) in conn.execute(
        "SELECT registration_id FROM registrations r WHERE event_id = ? AND status = 'confirmed'"
        " AND NOT EXISTS (SELECT 1 FROM reminders m WHERE m.registration_id = r.registration_id)",
        (event.event_id,),
    ).fetchall():
        plan_reminder(conn, event, now, registration_id=int(registration_id))
    for (invitee_id,) in conn.execute(
        "SELECT invitee_id FROM invitees i WHERE event_id = ? AND revoked_at IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM reminders m WHERE m.invitee_id = i.invitee_id)",
        (event.event_id,),
    ).fetchall():
        plan_reminder(conn, event, now, invitee_id=int(invitee_id))
    for (presenter_id,) in conn.execute(
        "SELECT presenter_id FROM event_presenters p WHERE event_id = ? AND sent_at IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM reminders m WHERE m.presenter_id = p.presenter_id)",
        (event.event_id,),
    ).fetchall():
        plan_reminder(conn, event, now, presenter_id=int(presenter_id))


# ------------------------------------------------------------------------ the outbox


@dataclass(frozen=True, slots=True)
class OutboxItem:
    item_id: int
    event_id: str
    kind: Kind
    invitee_id: int | None
    registration_id: int | None
    #: The calendar SEQUENCE the event had when the message was queued.
    seq: int
    state: State
    attempts: int
    message_id: str | None
    message_to: str | None
    error: str | None
    created_at: datetime
    retry_at: datetime | None
    sent_at: datetime | None
    #: The base of the message's links: the address the organiser used (None: the server's).
    base_url: str | None = None
    #: A presenter of the event's team (webinar.storage.accounts) as the recipient.
    presenter_id: int | None = None


_OUTBOX_COLUMNS = (
    "item_id, event_id, kind, invitee_id, registration_id, seq, state, attempts, message_id,"
    " message_to, error, created_at, retry_at, sent_at, base_url, presenter_id"
)


def _item(row: tuple[Any, ...]) -> OutboxItem:
    return OutboxItem(
        item_id=int(row[0]),
        event_id=row[1],
        kind=Kind(row[2]),
        invitee_id=row[3],
        registration_id=row[4],
        seq=int(row[5]),
        state=State(row[6]),
        attempts=int(row[7]),
        message_id=row[8],
        message_to=row[9],
        error=row[10],
        created_at=from_db(row[11]) or now_utc(),
        retry_at=from_db(row[12]),
        sent_at=from_db(row[13]),
        base_url=row[14],
        presenter_id=row[15],
    )


def enqueue(
    conn: Database,
    event_id: str,
    kind: Kind,
    *,
    invitee_id: int | None = None,
    registration_id: int | None = None,
    presenter_id: int | None = None,
    seq: int | None = None,
    base: str | None = None,
    claimed: bool = False,
) -> int:
    """Queue one message; its item ID. ``base``: the base URL of its links (the address the
    organiser used; None: the server's). ``claimed``: the caller sends it at once (it is
    written ``sending``, as claimed: the outbox's sender leaves it alone, and a crash before it
    is recorded sent leaves it for the next start). An update supersedes the person's updates
    still pending (the newest says everything)."""
    whom = {
        "invitee_id": invitee_id,
        "registration_id": registration_id,
        "presenter_id": presenter_id,
    }
    given = [(column, value) for column, value in whom.items() if value is not None]
    if len(given) != 1:
        raise ValueError("a message goes to one invitee, registrant or presenter")
    ((column, value),) = given
    if seq is None:
        seq = calendar_sequence(conn, event_id)
    if kind is Kind.UPDATE:
        conn.execute(
            f"UPDATE mail_outbox SET state = 'skipped' WHERE {column} = ? AND kind = 'update'"
            " AND state = 'pending'",
            (value,),
        )
    now = to_db(now_utc())
    state, attempts = (State.SENDING, 1) if claimed else (State.PENDING, 0)
    (item_id,) = conn.execute(
        "INSERT INTO mail_outbox (event_id, kind, invitee_id, registration_id, presenter_id,"
        " seq, created_at, base_url, state, attempts, claimed_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING item_id",
        (
            event_id,
            kind.value,
            invitee_id,
            registration_id,
            presenter_id,
            seq,
            now,
            base,
            state.value,
            attempts,
            now if claimed else None,
        ),
    ).fetchone()
    return int(item_id)


def get_item(conn: Database, item_id: int) -> OutboxItem | None:
    row = conn.execute(
        f"SELECT {_OUTBOX_COLUMNS} FROM mail_outbox WHERE item_id = ?", (item_id,)
    ).fetchone()
    return None if row is None else _item(row)


def due_items(conn: Database, now: datetime, limit: int = 50) -> list[OutboxItem]:
    """Pending messages whose back-off (if any) is over, oldest first."""
    rows = conn.execute(
        f"SELECT {_OUTBOX_COLUMNS} FROM mail_outbox WHERE state = 'pending'"
        " AND (retry_at IS NULL OR retry_at <= ?) ORDER BY item_id LIMIT ?",
        (to_db(now), limit),
    ).fetchall()
    return [_item(r) for r in rows]


def claim(conn: Database, item_id: int) -> bool:
    """pending -> sending; only one claimer wins (so nothing is sent twice)."""
    cursor = conn.execute(
        "UPDATE mail_outbox SET state = 'sending', attempts = attempts + 1, claimed_at = ?"
        " WHERE item_id = ? AND state = 'pending'",
        (to_db(now_utc()), item_id),
    )
    return cursor.rowcount == 1


def message_id_for(conn: Database, item_id: int, to: str, new_message_id: str) -> str:
    """The Message-ID of a claimed message to ``to``, recorded before it is sent: the one an
    earlier try used when it went to the same address, else ``new_message_id``."""
    row = conn.execute(
        "SELECT message_id, message_to FROM mail_outbox WHERE item_id = ?", (item_id,)
    ).fetchone()
    if row is not None and row[0] is not None and row[1] == to:
        return str(row[0])
    conn.execute(
        "UPDATE mail_outbox SET message_id = ?, message_to = ? WHERE item_id = ?",
        (new_message_id, to, item_id),
    )
    return new_message_id


def finish(
    conn: Database, item_id: int, state: State, now: datetime, error: str | None = None
) -> State:
    """sending -> sent / skipped, or back to pending after a back-off (failed once it has had
    OUTBOX_ATTEMPTS); the state it is in now."""
    if state is State.PENDING:
        row = conn.execute(
            "SELECT attempts FROM mail_outbox WHERE item_id = ?", (item_id,)
        ).fetchone()
        attempts = max(1, int(row[0])) if row is not None else OUTBOX_ATTEMPTS
        final = State.FAILED if attempts >= OUTBOX_ATTEMPTS else State.PENDING
        retry_at = now + OUTBOX_RETRY_AFTER * 2 ** (attempts - 1)
        conn.execute(
            "UPDATE mail_outbox SET state = ?, retry_at = ?, error = ? WHERE item_id = ?",
            (final.value, to_db(retry_at), (error or "")[:500], item_id),
        )
        return final
    conn.execute(
        "UPDATE mail_outbox SET state = ?, sent_at = ?, error = NULL WHERE item_id = ?",
        (state.value, to_db(now) if state is State.SENT else None, item_id),
    )
    return state


def resume_interrupted(conn: Database) -> tuple[int, int]:
    """At start: messages a crash left half-sent are tried again at once (with the Message-ID
    they were given), unless they have had all their attempts. (Retried, failed.)"""
    failed = conn.execute(
        "UPDATE mail_outbox SET state = 'failed' WHERE state = 'sending' AND attempts >= ?",
        (OUTBOX_ATTEMPTS,),
    ).rowcount
    retried = conn.execute(
        "UPDATE mail_outbox SET state = 'pending', retry_at = NULL WHERE state = 'sending'"
    ).rowcount
    return retried, failed


def resume_stale(conn: Database, now: datetime) -> int:
    """Messages claimed more than STALE_CLAIM ago and never finished (the request that was
    sending one was cancelled, ...) go back to pending, to be sent with their Message-ID."""
    return conn.execute(
        "UPDATE mail_outbox SET state = 'pending', retry_at = NULL WHERE state = 'sending'"
        " AND claimed_at IS NOT NULL AND claimed_at < ?",
        (to_db(now - STALE_CLAIM),),
    ).rowcount


def retry_failed(conn: Database, event_id: str) -> int:
    """The organiser asks for the event's failed messages to be tried again (afresh)."""
    return conn.execute(
        "UPDATE mail_outbox SET state = 'pending', attempts = 0, retry_at = NULL"
        " WHERE event_id = ? AND state = 'failed'",
        (event_id,),
    ).rowcount


@dataclass(frozen=True, slots=True)
class Progress:
    """How an event's queued messages stand, per kind: {state: count}."""

    counts: dict[str, dict[str, int]]

    def of(self, kind: Kind, state: State) -> int:
        return self.counts.get(kind.value, {}).get(state.value, 0)

    def waiting(self, kind: Kind | None = None) -> int:
        kinds = [kind] if kind else list(Kind)
        return sum(self.of(k, s) for k in kinds for s in (State.PENDING, State.SENDING))

    def failed(self, kind: Kind | None = None) -> int:
        kinds = [kind] if kind else list(Kind)
        return sum(self.of(k, State.FAILED) for k in kinds)

    def as_json(self) -> dict[str, dict[str, int]]:
        return {kind.value: {state.value: self.of(kind, state) for state in State} for kind in Kind}


def progress(conn: Database, event_id: str) -> Progress:
    counts: dict[str, dict[str, int]] = {}
    for kind, state, count in conn.execute(
        "SELECT kind, state, count(*) FROM mail_outbox WHERE event_id = ? GROUP BY kind, state",
        (event_id,),
    ).fetchall():
        counts.setdefault(str(kind), {})[str(state)] = int(count)
    return Progress(counts)


def invitation_states(conn: Database, event_id: str) -> dict[int, OutboxItem]:
    """The latest invitation message of each of the event's invitees, by invitee ID."""
    rows = conn.execute(
        f"SELECT {_OUTBOX_COLUMNS} FROM mail_outbox WHERE event_id = ? AND kind = 'invitation'"
        " ORDER BY item_id",
        (event_id,),
    ).fetchall()
    latest: dict[int, OutboxItem] = {}
    for row in rows:
        item = _item(row)
        if item.invitee_id is not None:
            latest[item.invitee_id] = item
    return latest


# ------------------------------------------------------------------------ presenters


@dataclass(frozen=True, slots=True)
class PresenterContact:
    """A presenter of an event's team (``event_presenters``, webinar.storage.accounts)."""

    presenter_id: int
    event_id: str
    name: str
    email: str


def presenter_contact(conn: Database, presenter_id: int) -> PresenterContact | None:
    row = conn.execute(
        "SELECT presenter_id, event_id, name, email FROM event_presenters WHERE presenter_id = ?",
        (presenter_id,),
    ).fetchone()
    return None if row is None else PresenterContact(int(row[0]), row[1], row[2], row[3])


# ------------------------------------------------------------------------ invitations


def invite(
    conn: Database,
    event: Event,
    name: str,
    email: str,
    now: datetime,
    *,
    language: str | None = None,
    fields: dict[str, str] | None = None,
    base: str | None = None,
    claimed: bool = False,
) -> tuple[Invitee, int]:
    """A new invitee, their invitation queued (``claimed``: see :func:`enqueue`) and their
    reminder planned, in one transaction; (the invitee, the invitation's outbox item).
    ValueError: see records.add_invitee."""
    with atomic(conn):
        invitee = records.add_invitee(
            conn, event.event_id, name, email, language=language, fields=fields
        )
        item_id = enqueue(
            conn,
            event.event_id,
            Kind.INVITATION,
            invitee_id=invitee.invitee_id,
            base=base,
            claimed=claimed,
        )
        plan_reminder(conn, event, now, invitee_id=invitee.invitee_id)
    return invitee, item_id


def queue_invitation(
    conn: Database, invitee: Invitee, base: str | None = None, *, claimed: bool = False
) -> int:
    """Send an invitee's invitation again (the same link)."""
    return enqueue(
        conn,
        invitee.event_id,
        Kind.INVITATION,
        invitee_id=invitee.invitee_id,
        base=base,
        claimed=claimed,
    )


def invited_addresses(conn: Database, event_id: str) -> frozenset[str]:
    rows = conn.execute(
        "SELECT lower(email) FROM invitees WHERE event_id = ?", (event_id,)
    ).fetchall()
    return frozenset(str(r[0]) for r in rows)


# ------------------------------------------------------------------------ CSV imports


@dataclass(frozen=True, slots=True)
class InviteImport:
    import_id: str
    event_id: str
    file_name: str
    line_count: int
    rows: tuple[ImportRow, ...]
    problems: tuple[LineProblem, ...]
    created_at: datetime
    sent_at: datetime | None
    #: The extra columns the file had, in its order.
    extra_columns: tuple[str, ...] = ()


def save_import(
    conn: Database,
    event_id: str,
    parsed: ParsedFile,
    *,
    file_name: str = "",
) -> InviteImport:
    """Keep a previewed file until it is sent (older previews nobody sent are forgotten)."""
    import_id = "imp_" + secrets.token_urlsafe(12)
    now = now_utc()
    entries = {
        "rows": [r.as_json() for r in parsed.rows],
        "extra_columns": list(parsed.extra_columns),
    }
    with atomic(conn):
        conn.execute(
            "DELETE FROM invite_imports WHERE sent_at IS NULL AND created_at < ?",
            (to_db(now - IMPORT_KEPT),),
        )
        conn.execute(
            "INSERT INTO invite_imports (import_id, event_id, file_name, line_count, entries,"
            " problems, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                import_id,
                event_id,
                file_name[:200],
                parsed.line_count,
                json.dumps(entries, ensure_ascii=False),
                json.dumps([p.as_json() for p in parsed.problems], ensure_ascii=False),
                to_db(now),
            ),
        )
    found = get_import(conn, event_id, import_id)
    assert found is not None
    return found


def get_import(conn: Database, event_id: str, import_id: str) -> InviteImport | None:
    row = conn.execute(
        "SELECT import_id, event_id, file_name, line_count, entries, problems, created_at,"
        " sent_at FROM invite_imports WHERE import_id = ? AND event_id = ?",
        (import_id, event_id),
    ).fetchone()
    if row is None:
        return None
    entries = json.loads(row[4])
    return InviteImport(
        import_id=row[0],
        event_id=row[1],
        file_name=row[2],
        line_count=int(row[3]),
        rows=tuple(ImportRow.from_json(r) for r in entries["rows"]),
        problems=tuple(LineProblem.from_json(p) for p in json.loads(row[5])),
        created_at=from_db(row[6]) or now_utc(),
        sent_at=from_db(row[7]),
        extra_columns=tuple(entries.get("extra_columns", ())),
    )


@dataclass(frozen=True, slots=True)
class ImportSent:
    invited: int
    #: Rows whose address was invited between the preview and the send (by hand, another
    #: file): not invited again.
    already: tuple[ImportRow, ...]


class ImportGone(ValueError):
    """No such preview (expired), or it was sent already."""


def send_import(
    conn: Database, event: Event, import_id: str, now: datetime, base: str | None = None
) -> ImportSent:
    """Invite a previewed file's rows and queue their invitations, all in one transaction,
    once: a second send finds it sent (ImportGone) and invites nobody."""
    invited = 0
    already: list[ImportRow] = []
    with atomic(conn):
        found = get_import(conn, event.event_id, import_id)
        if found is None:
            raise ImportGone("no such import")
        claimed = conn.execute(
            "UPDATE invite_imports SET sent_at = ? WHERE import_id = ? AND sent_at IS NULL",
            (to_db(now), import_id),
        ).rowcount
        if claimed != 1:
            raise ImportGone("sent already")
        for row in found.rows:
            try:
                invite(
                    conn,
                    event,
                    row.name,
                    row.email,
                    now,
                    language=row.language,
                    fields=row.fields,
                    base=base,
                )
            except ValueError:
                already.append(row)
                continue
            invited += 1
    return ImportSent(invited, tuple(already))


# ------------------------------------------------------------------------ changes


@dataclass(frozen=True, slots=True)
class Told:
    """The people who have an event's details (and its calendar entry): active invitees whose
    invitation went out (or is going out now), confirmed registrants, and the presenters of
    its team who were sent the presenter link."""

    invitees: tuple[int, ...] = ()
    registrations: tuple[int, ...] = ()
    presenters: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.invitees) + len(self.registrations) + len(self.presenters)


def people_told(conn: Database, event_id: str) -> Told:
    def ids(sql: str) -> tuple[int, ...]:
        return tuple(int(r[0]) for r in conn.execute(sql, (event_id,)).fetchall())

    return Told(
        invitees=ids(
            "SELECT invitee_id FROM invitees i WHERE event_id = ? AND revoked_at IS NULL"
            " AND (sent_at IS NOT NULL OR EXISTS (SELECT 1 FROM mail_outbox o"
            " WHERE o.invitee_id = i.invitee_id AND o.kind = 'invitation'"
            " AND o.state = 'sending')) ORDER BY invitee_id"
        ),
        registrations=ids(
            "SELECT registration_id FROM registrations WHERE event_id = ? AND status = 'confirmed'"
            " ORDER BY registration_id"
        ),
        presenters=ids(
            "SELECT presenter_id FROM event_presenters WHERE event_id = ? AND sent_at IS NOT NULL"
            " ORDER BY presenter_id"
        ),
    )


def queue_to(
    conn: Database, event_id: str, kind: Kind, told: Told, *, seq: int, base: str | None
) -> int:
    """Queue ``kind`` to each of ``told``; how many."""
    for invitee_id in told.invitees:
        enqueue(conn, event_id, kind, invitee_id=invitee_id, seq=seq, base=base)
    for registration_id in told.registrations:
        enqueue(conn, event_id, kind, registration_id=registration_id, seq=seq, base=base)
    for presenter_id in told.presenters:
        enqueue(conn, event_id, kind, presenter_id=presenter_id, seq=seq, base=base)
    return len(told)


def queue_updates(conn: Database, event_id: str, base: str | None = None) -> int:
    """Queue an update (the event's current details and calendar entry) to everyone told;
    how many."""
    told = people_told(conn, event_id)
    return queue_to(
        conn, event_id, Kind.UPDATE, told, seq=calendar_sequence(conn, event_id), base=base
    )


def event_changed(conn: Database, before: Event, after: Event, now: datetime) -> int:
    """An event's settings were saved: its reminders follow; when its start or length changed
    after people were told, the calendar SEQUENCE grows and each of them is sent an update
    (queued; how many is returned); when only its title or time zone changed, the SEQUENCE
    grows and the organiser is offered to resend (``settings_changed_at``)."""
    moved = (before.starts_at, before.duration_minutes) != (after.starts_at, after.duration_minutes)
    renamed = (before.title, before.timezone) != (after.title, after.timezone)
    with atomic(conn):
        replan_reminders(conn, after, now)
        if not (moved or renamed):
            return 0
        if not people_told(conn, after.event_id):
            return 0
        bump_sequence(conn, after.event_id)
        cancelled = conn.execute(
            "SELECT 1 FROM event_access WHERE event_id = ? AND cancelled_at IS NOT NULL",
            (after.event_id,),
        ).fetchone()
        if cancelled is not None:
            return 0
        if moved:
            records.mark_settings_changed(conn, after.event_id, None)
            return queue_updates(conn, after.event_id)
        records.mark_settings_changed(conn, after.event_id, now)
        return 0


class AlreadyCancelled(ValueError):
    """The event is cancelled already."""


@dataclass(frozen=True, slots=True)
class Cancellation:
    """What cancelling an event ended, for the caller to act on after the commit."""

    registrations: tuple[records.Registration, ...]
    invitee_ids: tuple[int, ...]
    #: How many people are sent the cancellation.
    told: int


def cancel_event(
    conn: Database, event: Event, now: datetime, base: str | None = None
) -> Cancellation:
    """Cancel the event in one transaction: marked cancelled, the calendar SEQUENCE grows,
    every pending, confirmed or waiting registration is cancelled and every active invitation
    revoked, and each of those people who heard of the event, and the presenters who were sent
    its link, are sent the cancellation (queued; it carries ``METHOD:CANCEL`` to those who had
    the calendar entry); messages and reminders not sent yet are dropped."""
    ended: list[records.Registration] = []
    revoked: list[int] = []
    told = 0
    with atomic(conn):
        access = records.get_access(conn, event.event_id)
        if access.cancelled_at is not None:
            raise AlreadyCancelled(event.event_id)
        records.put_access(conn, _cancelled(access, now))
        seq = bump_sequence(conn, event.event_id)
        never_told = {
            int(r[0])
            for r in conn.execute(
                "SELECT invitee_id FROM invitees i WHERE event_id = ? AND sent_at IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM mail_outbox o WHERE o.invitee_id = i.invitee_id"
                " AND o.state IN ('sending', 'sent'))",
                (event.event_id,),
            ).fetchall()
        }
        conn.execute(
            "UPDATE mail_outbox SET state = 'skipped' WHERE event_id = ? AND state = 'pending'",
            (event.event_id,),
        )
        conn.execute(
            "UPDATE reminders SET state = 'skipped' WHERE event_id = ? AND state = 'pending'",
            (event.event_id,),
        )
        for reg in records.list_registrations(conn, event.event_id):
            if reg.status not in (
                records.RegistrationStatus.PENDING,
                records.RegistrationStatus.CONFIRMED,
                records.RegistrationStatus.WAITLISTED,
            ):
                continue
            done = records.end_registration(
                conn, reg.registration_id, records.RegistrationStatus.CANCELLED
            )
            if done is None:
                continue
            ended.append(done)
            if done.email:
                enqueue(
                    conn,
                    event.event_id,
                    Kind.CANCEL,
                    registration_id=done.registration_id,
                    seq=seq,
                    base=base,
                )
                told += 1
        for invitee in records.list_invitees(conn, event.event_id):
            if invitee.revoked:
                continue
            records.revoke_invitee(conn, invitee.invitee_id)
            revoked.append(invitee.invitee_id)
            if invitee.invitee_id not in never_told:
                enqueue(
                    conn,
                    event.event_id,
                    Kind.CANCEL,
                    invitee_id=invitee.invitee_id,
                    seq=seq,
                    base=base,
                )
                told += 1
        presenters = people_told(conn, event.event_id).presenters
        told += queue_to(
            conn, event.event_id, Kind.CANCEL, Told(presenters=presenters), seq=seq, base=base
        )
    return Cancellation(tuple(ended), tuple(revoked), told)


def _cancelled(access: records.EventAccess, now: datetime) -> records.EventAccess:
    return dataclasses.replace(access, cancelled_at=now)
