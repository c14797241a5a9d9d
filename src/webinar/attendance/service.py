"""Attendance: who came, when, for how long, with what; statistics and the engagement export.

Every signalling session that joins a room is one row of ``attendance`` (join and
leave time, role, browser and OS from the user agent). Sessions of one person
(same ``client_id`` from the browser, so reconnects and reloads) share a
``person_key`` and are merged: time in room is the union of their intervals.

The engagement export joins attendance with whatever interaction data exists:
each :class:`EngagementSource` adds columns per person (chat, Q&A, polls and tests,
CTA clicks: :mod:`webinar.interaction.engagement`, passed in by the app). CSV (optionally with a
UTF-8 BOM for spreadsheet programs) or JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from webinar.formats import csv_text, iso_time
from webinar.storage.db import Database, transaction
from webinar.storage.store import Store, SyncStore

from .useragent import parse_client, parse_user_agent

__all__ = ["parse_user_agent"]  # kept here for older callers

USER_AGENT_MAX = 400
EXPORT_MAX_ROWS = 100_000
#: Joining this long after the scheduled start is joining late; leaving this long before
#: the end (the host's "end for all", else the scheduled end) is leaving early.
LATE_EARLY_GRACE_SECONDS = 300.0
ENDED_FOR_ALL = "ended-for-all"
SCHEDULED_END = "scheduled-end"


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: int
    person_key: str
    participant_id: str
    name: str
    email: str | None
    role: str
    joined_at: float
    left_at: float | None
    leave_reason: str | None
    browser: str
    os: str
    #: One of webinar.attendance.useragent.DEVICES, and the model the user agent names.
    device: str = "unknown"
    model: str = ""
    #: The language the person used in the room (None: not known).
    language: str | None = None


@dataclass(slots=True)
class PersonStats:
    person_key: str
    name: str
    email: str | None
    role: str
    first_join: float
    last_leave: float | None  # None while still in the room
    sessions: int
    seconds: float  # union of the sessions' intervals
    browser: str
    os: str
    device: str = "unknown"
    model: str = ""
    #: First joined more than the grace after the scheduled start (None: no fixed start).
    joined_late: bool | None = None
    #: Last left more than the grace before the end (None: the end is not known yet, or
    #: still in the room).
    left_early: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def minutes(self) -> int:
        """Time in the room in whole minutes (rounded)."""
        return round(self.seconds / 60)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["first_join"] = iso_time(self.first_join, timespec="seconds")
        out["last_leave"] = (
            iso_time(self.last_leave, timespec="seconds") if self.last_leave is not None else None
        )
        out["seconds"] = round(self.seconds, 1)
        extra = out.pop("extra")
        out.update(extra)
        return out


@dataclass(frozen=True, slots=True)
class EventStats:
    event_id: str
    attendees: int  # distinct people with the attendee role
    participants: int  # distinct people, presenters and hosts included
    peak_concurrency: int  # most sessions in the room at once (everyone)
    peak_at: float | None
    average_seconds: float  # mean time in room per attendee (all people if no attendee)
    people: list[PersonStats]
    concurrency: list[tuple[float, int]]  # step function: (time, sessions in the room)

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "attendees": self.attendees,
            "participants": self.participants,
            "peak_concurrency": self.peak_concurrency,
            "peak_at": iso_time(self.peak_at, timespec="seconds")
            if self.peak_at is not None
            else None,
            "average_seconds": round(self.average_seconds, 1),
            "people": [p.as_json() for p in self.people],
            "concurrency": [[iso_time(t, timespec="seconds"), n] for t, n in self.concurrency],
        }


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    total = 0.0
    end = float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def compute_stats(
    event_id: str,
    rows: Sequence[SessionRow],
    now: float,
    *,
    starts_at: float | None = None,
    ends_at: float | None = None,
) -> EventStats:
    """Pure: the statistics of one event from its session rows. ``starts_at`` is its scheduled
    start (who joined later than the grace joined late), ``ends_at`` its end (who left more
    than the grace before it, once it has passed, left early)."""
    by_person: dict[str, list[SessionRow]] = {}
    for row in rows:
        by_person.setdefault(row.person_key, []).append(row)
    people: list[PersonStats] = []
    for key, sessions in by_person.items():
        sessions.sort(key=lambda r: r.joined_at)
        latest = sessions[-1]
        open_now = any(s.left_at is None for s in sessions)
        intervals = [(s.joined_at, s.left_at if s.left_at is not None else now) for s in sessions]
        role = (
            "host"
            if any(s.role == "host" for s in sessions)
            else ("presenter" if any(s.role == "presenter" for s in sessions) else "attendee")
        )
        first = sessions[0].joined_at
        last = None if open_now else max(s.left_at or 0.0 for s in sessions)
        late = None if starts_at is None else first > starts_at + LATE_EARLY_GRACE_SECONDS
        early = (
            None
            if ends_at is None or ends_at > now or last is None
            else last < ends_at - LATE_EARLY_GRACE_SECONDS
        )
        people.append(
            PersonStats(
                person_key=key,
                name=latest.name,
                email=next((s.email for s in reversed(sessions) if s.email), None),
                role=role,
                first_join=first,
                last_leave=last,
                sessions=len(sessions),
                seconds=_union_seconds(intervals),
                browser=latest.browser,
                os=latest.os,
                device=latest.device,
                model=latest.model,
                joined_late=late,
                left_early=early,
            )
        )
    people.sort(key=lambda p: (p.first_join, p.name))
    changes: list[tuple[float, int]] = []
    for row in rows:
        changes.append((row.joined_at, 1))
        changes.append((row.left_at if row.left_at is not None else now, -1))
    changes.sort(key=lambda c: (c[0], c[1]))  # a leave at the same instant counts first
    current = peak = 0
    peak_at: float | None = None
    steps: list[tuple[float, int]] = []
    for t, delta in changes:
        current += delta
        if steps and steps[-1][0] == t:
            steps[-1] = (t, current)
        else:
            steps.append((t, current))
        if current > peak:
            peak, peak_at = current, t
    attendees = [p for p in people if p.role == "attendee"]
    basis = attendees or people
    average = sum(p.seconds for p in basis) / len(basis) if basis else 0.0
    return EventStats(
        event_id=event_id,
        attendees=len(attendees),
        participants=len(people),
        peak_concurrency=peak,
        peak_at=peak_at,
        average_seconds=average,
        people=people,
        concurrency=steps,
    )


class EngagementSource(Protocol):
    """A table of interaction data joined into the export, one dict per person.

    ``rows(db, event_id)`` runs in the store's thread and returns
    ``{person_key or participant_id: {column: value}}``; missing people get blanks."""

    name: str
    columns: tuple[str, ...]

    def rows(self, db: SyncStore, event_id: str) -> dict[str, dict[str, Any]]: ...


#: Sources joined into an export when the service is given none (the app passes
#: :func:`webinar.interaction.engagement.sources`).
ENGAGEMENT_SOURCES: tuple[EngagementSource, ...] = ()

_SESSION_COLUMNS = (
    "session_id, person_key, participant_id, name, email, role, joined_at, left_at,"
    " leave_reason, browser, os, device, device_model, language, user_agent"
)


def _session(row: Sequence[Any]) -> SessionRow:
    device, model, user_agent = row[11], row[12], row[14]
    if device is None:  # recorded before devices were: read the user agent again
        client = parse_client(str(user_agent))
        browser, os_name, device, model = client.browser, client.os, client.device, client.model
    else:
        browser, os_name = row[9], row[10]
    return SessionRow(
        session_id=int(row[0]),
        person_key=str(row[1]),
        participant_id=str(row[2]),
        name=str(row[3]),
        email=row[4],
        role=str(row[5]),
        joined_at=float(row[6]),
        left_at=row[7],
        leave_reason=row[8],
        browser=str(browser),
        os=str(os_name),
        device=str(device),
        model=str(model),
        language=row[13],
    )


@dataclass(frozen=True, slots=True)
class Ending:
    """When an event ended, and how: ``ended-for-all`` or ``scheduled-end``."""

    event_id: str
    ended_at: float
    how: str


def sql_mark_ended(db: Database, event_id: str, at: float, how: str) -> bool:
    """Record that the event ended (the first time counts); whether this was the first."""
    return bool(
        db.execute(
            "INSERT INTO event_endings (event_id, ended_at, how) VALUES (?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING",
            (event_id, at, how),
        ).rowcount
    )


def sql_ending(db: Database, event_id: str) -> Ending | None:
    row = db.execute(
        "SELECT event_id, ended_at, how FROM event_endings WHERE event_id = ?", (event_id,)
    ).fetchone()
    return None if row is None else Ending(str(row[0]), float(row[1]), str(row[2]))


def sql_scheduled_ends(db: Database, now: float, limit: int = 200) -> list[tuple[str, float]]:
    """Events whose scheduled end has passed, that have not ended yet and whose room is
    empty: (event ID, scheduled end). Cancelled events are the caller's to leave out."""
    cutoff = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows = db.execute(
        "SELECT e.event_id, e.starts_at, e.duration_minutes FROM events e"
        " WHERE e.starts_at IS NOT NULL AND e.starts_at < ?"
        " AND NOT EXISTS (SELECT 1 FROM event_endings n WHERE n.event_id = e.event_id)"
        " AND NOT EXISTS (SELECT 1 FROM attendance a WHERE a.event_id = e.event_id"
        " AND a.left_at IS NULL)"
        " ORDER BY e.starts_at LIMIT ?",
        (cutoff, limit * 4),
    ).fetchall()
    due: list[tuple[str, float]] = []
    for event_id, starts_at, minutes in rows:
        end = datetime.fromisoformat(str(starts_at)).timestamp() + int(minutes) * 60
        if end <= now:
            due.append((str(event_id), end))
    return due[:limit]


@dataclass(frozen=True, slots=True)
class Recipient:
    """An attendee with an e-mail address (the thank-you e-mail's), with their latest name
    and the language they used in the room."""

    email: str
    name: str
    person_key: str
    language: str | None


def recipients_of(rows: Sequence[SessionRow]) -> list[Recipient]:
    """Pure: every attendee of the sessions with an e-mail address, once per address (in the
    order they first joined). Presenters and hosts are not among them."""
    stats = compute_stats("", rows, 0.0)
    by_person = {p.person_key: p for p in stats.people}
    out: dict[str, Recipient] = {}
    for row in sorted(rows, key=lambda r: r.joined_at):
        person = by_person[row.person_key]
        if person.role != "attendee" or not row.email:
            continue
        address = row.email.strip().lower()
        before = out.get(address)
        out[address] = Recipient(
            address,
            row.name,
            row.person_key,
            row.language or (before.language if before is not None else None),
        )
    return list(out.values())


def sql_people_in_room(db: Database, event_id: str) -> int:
    """People with a session in the event's room now (joined, not yet left): a live room.

    A server that stopped without closing its sessions leaves them open until it starts again
    (:meth:`AttendanceService.close_open_sessions`)."""
    (count,) = db.execute(
        "SELECT count(DISTINCT person_key) FROM attendance WHERE event_id = ? AND left_at IS NULL",
        (event_id,),
    ).fetchone()
    return int(count)


class AttendanceService:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        sources: Sequence[EngagementSource] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sources = tuple(ENGAGEMENT_SOURCES if sources is None else sources)

    async def joined(
        self,
        *,
        event_id: str,
        participant_id: str,
        person_key: str,
        name: str,
        role: str,
        user_agent: str,
        email: str | None = None,
        at: float | None = None,
        language: str | None = None,
    ) -> int:
        """Record a session's start; ``language``: the one the person uses in the room (their
        thank-you e-mail goes out in it when nothing better is known)."""
        ua = user_agent[:USER_AGENT_MAX]
        when = self.clock() if at is None else at

        def insert(db: SyncStore) -> int:
            client = parse_client(ua)  # on the store's thread: never on the event loop
            (session_id,) = db.connection.execute(
                "INSERT INTO attendance (event_id, person_key, participant_id, name, email,"
                " role, joined_at, user_agent, browser, os, device, device_model, language)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING session_id",
                (
                    event_id,
                    person_key,
                    participant_id,
                    name,
                    email,
                    role,
                    when,
                    ua,
                    client.browser,
                    client.os,
                    client.device,
                    client.model,
                    language,
                ),
            ).fetchone()
            return int(session_id)

        return await self.store.run(insert)

    async def left(self, session_id: int, reason: str, *, at: float | None = None) -> None:
        when = self.clock() if at is None else at

        def update(db: SyncStore) -> None:
            db.connection.execute(
                "UPDATE attendance SET left_at = ?, leave_reason = ?"
                " WHERE session_id = ? AND left_at IS NULL",
                (when, reason[:40], session_id),
            )

        await self.store.run(update)

    async def participant_lost(
        self, event_id: str, participant_id: str, reason: str, *, at: float | None = None
    ) -> None:
        """A participant's worker died with their session open: it ends now (the worker that
        would have ended it is gone; a resume elsewhere starts a new session)."""
        when = self.clock() if at is None else at

        def update(db: SyncStore) -> None:
            db.connection.execute(
                "UPDATE attendance SET left_at = ?, leave_reason = ?"
                " WHERE event_id = ? AND participant_id = ? AND left_at IS NULL",
                (when, reason[:40], event_id, participant_id),
            )

        await self.store.run(update)

    async def role_changed(self, session_id: int, role: str) -> None:
        def update(db: SyncStore) -> None:
            db.connection.execute(
                "UPDATE attendance SET role = ? WHERE session_id = ?", (role, session_id)
            )

        await self.store.run(update)

    async def close_open_sessions(self, reason: str = "server-restart") -> None:
        """At start-up: sessions a crashed server left open end where they began (their
        real length is unknown, and counting them up to now would inflate the numbers)."""

        def update(db: SyncStore) -> None:
            db.connection.execute(
                "UPDATE attendance SET left_at = joined_at, leave_reason = ? WHERE left_at IS NULL",
                (reason,),
            )

        await self.store.run(update)

    async def sessions(self, event_id: str) -> list[SessionRow]:
        def get(db: SyncStore) -> list[SessionRow]:
            rows = db.connection.execute(
                f"SELECT {_SESSION_COLUMNS} FROM attendance WHERE event_id = ?"
                " ORDER BY joined_at, session_id LIMIT ?",
                (event_id, EXPORT_MAX_ROWS),
            ).fetchall()
            return [_session(row) for row in rows]

        return await self.store.run(get)

    async def _bounds(self, event_id: str) -> tuple[float | None, float | None]:
        """The event's scheduled start and its end (when it ended, else the scheduled end)."""
        event = await self.store.get_event(event_id)
        ending = await self.ending(event_id)
        if event is None or event.starts_at is None:
            return None, ending.ended_at if ending is not None else None
        start = event.starts_at.timestamp()
        if ending is not None and ending.how == ENDED_FOR_ALL:
            return start, ending.ended_at
        return start, start + event.duration_minutes * 60

    async def stats(self, event_id: str) -> EventStats:
        starts_at, ends_at = await self._bounds(event_id)
        return compute_stats(
            event_id,
            await self.sessions(event_id),
            self.clock(),
            starts_at=starts_at,
            ends_at=ends_at,
        )

    # ------------------------------------------------------------------ the end

    async def ended(self, event_id: str, how: str, *, at: float | None = None) -> bool:
        """The event ended (``ended-for-all``, ``scheduled-end``); the first call counts.
        Whether this was it."""
        when = self.clock() if at is None else at
        return await self.store.run_sql(lambda db: sql_mark_ended(db, event_id, when, how))

    async def ending(self, event_id: str) -> Ending | None:
        return await self.store.run_sql(lambda db: sql_ending(db, event_id))

    async def end_scheduled(self, skip: Callable[[str], bool] = lambda _id: False) -> list[str]:
        """Mark every event whose scheduled end has passed with its room empty as ended (at
        its scheduled end); the IDs marked. ``skip``: events never to mark (cancelled)."""
        now = self.clock()

        def mark(db: SyncStore) -> list[str]:
            conn = db.connection
            marked = []
            with transaction(conn, immediate=True):
                for event_id, end in sql_scheduled_ends(conn, now):
                    if not skip(event_id) and sql_mark_ended(conn, event_id, end, SCHEDULED_END):
                        marked.append(event_id)
            return marked

        return await self.store.run(mark)

    async def recipients(self, event_id: str) -> list[Recipient]:
        """The attendees with an e-mail address (registrants, invitees), once per address."""
        return recipients_of(await self.sessions(event_id))

    async def events_per_month(self, owner_id: int | None) -> list[dict[str, Any]]:
        """Per month of the events' start (or creation): events held and distinct attendees."""

        def get(db: SyncStore) -> list[dict[str, Any]]:
            sql = (
                "SELECT substr(coalesce(e.starts_at, e.created_at), 1, 7) AS month,"
                " count(DISTINCT e.event_id),"
                " count(DISTINCT CASE WHEN a.role = 'attendee' THEN a.event_id || ' ' ||"
                " a.person_key END)"
                " FROM events e LEFT JOIN attendance a ON a.event_id = e.event_id"
            )
            params: list[Any] = []
            if owner_id is not None:  # its own events and those it co-organises
                sql += (
                    " WHERE e.owner_id = ? OR e.event_id IN"
                    " (SELECT event_id FROM event_organisers WHERE user_id = ?)"
                )
                params += [owner_id, owner_id]
            sql += " GROUP BY month ORDER BY month"
            return [
                {"month": m, "events": int(n), "attendees": int(a)}
                for m, n, a in db.connection.execute(sql, params).fetchall()
            ]

        return await self.store.run(get)

    async def delete_event_data(self, event_id: str) -> int:
        def delete(db: SyncStore) -> int:
            db.connection.execute("DELETE FROM ratings WHERE event_id = ?", (event_id,))
            return db.connection.execute(
                "DELETE FROM attendance WHERE event_id = ?", (event_id,)
            ).rowcount

        return await self.store.run(delete)

    # ------------------------------------------------------------------ export

    def engagement_columns(self) -> list[str]:
        """The sources' columns, each prefixed with its source's name."""
        return [f"{source.name}_{c}" for source in self.sources for c in source.columns]

    async def detailed_stats(self, event_id: str) -> EventStats:
        """The statistics with every source's columns in each person's ``extra``.

        A source's row keyed by a participant id counts for the person whose session
        had that id; several keys of one person add up (numbers) or join (texts)."""
        sessions = await self.sessions(event_id)
        starts_at, ends_at = await self._bounds(event_id)
        stats = compute_stats(
            event_id, sessions, self.clock(), starts_at=starts_at, ends_at=ends_at
        )
        pid_to_person = {s.participant_id: s.person_key for s in sessions}
        sources = list(self.sources)

        def collect(db: SyncStore) -> list[dict[str, dict[str, Any]]]:
            return [source.rows(db, event_id) for source in sources]

        extra = await self.store.run(collect) if sources else []
        merged: dict[str, dict[str, Any]] = {}
        for source, data in zip(sources, extra, strict=True):
            for key, values in data.items():
                into = merged.setdefault(pid_to_person.get(key, key), {})
                for c, v in values.items():
                    _merge(into, f"{source.name}_{c}", v)
        columns = self.engagement_columns()
        for person in stats.people:
            found = merged.get(person.person_key, {})
            person.extra = {c: found.get(c, "") for c in columns}
        return stats

    async def engagement(self, event_id: str) -> tuple[list[str], list[dict[str, Any]]]:
        """One row per person: attendance plus every source's columns."""
        stats = await self.detailed_stats(event_id)
        columns = [
            "name",
            "email",
            "role",
            "first_join",
            "last_leave",
            "sessions",
            "seconds",
            "browser",
            "os",
            "device",
            "model",
            "joined_late",
            "left_early",
            *self.engagement_columns(),
        ]
        rows = []
        for person in stats.people:
            row = person.as_json()
            rows.append({c: row.get(c, "") for c in columns})
        return columns, rows


def _merge(into: dict[str, Any], column: str, value: Any) -> None:
    before = into.get(column)
    if before is None or before == "":
        into[column] = value
    elif isinstance(value, int | float) and isinstance(before, int | float):
        into[column] = before + value
    elif value != "" and value != before:
        into[column] = f"{before} | {value}"


SESSION_COLUMNS = (
    "name",
    "email",
    "role",
    "joined_at",
    "left_at",
    "seconds",
    "leave_reason",
    "browser",
    "os",
    "device",
    "model",
)


def session_rows(sessions: Sequence[SessionRow], now: float) -> list[dict[str, Any]]:
    """The detail file: one row per session (a person may have several)."""
    return [
        {
            "name": r.name,
            "email": r.email or "",
            "role": r.role,
            "joined_at": iso_time(r.joined_at, timespec="seconds"),
            "left_at": iso_time(r.left_at, timespec="seconds") if r.left_at is not None else "",
            "seconds": round((r.left_at if r.left_at is not None else now) - r.joined_at, 1),
            "leave_reason": r.leave_reason or "",
            "browser": r.browser,
            "os": r.os,
            "device": r.device,
            "model": r.model,
        }
        for r in sessions
    ]


def to_csv(
    columns: list[str] | tuple[str, ...], rows: list[dict[str, Any]], *, bom: bool = False
) -> bytes:
    text = csv_text(columns, ([row.get(c) for c in columns] for row in rows))
    return ("\ufeff" + text if bom else text).encode("utf-8")


def to_json(event_id: str, columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {"event_id": event_id, "columns": columns, "attendees": rows}, ensure_ascii=False
    ).encode("utf-8")
