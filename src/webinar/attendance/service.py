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
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from webinar.formats import csv_text, iso_time
from webinar.storage.db import Database
from webinar.storage.store import Store, SyncStore

USER_AGENT_MAX = 400
EXPORT_MAX_ROWS = 100_000


def parse_user_agent(ua: str) -> tuple[str, str]:
    """(browser, OS) from a User-Agent header, e.g. ("Chrome 120", "Windows")."""

    def version(token: str) -> str:
        m = re.search(re.escape(token) + r"/(\d+)", ua)
        return m.group(1) if m else ""

    if "Edg/" in ua:
        browser = f"Edge {version('Edg')}"
    elif "OPR/" in ua:
        browser = f"Opera {version('OPR')}"
    elif "Firefox/" in ua:
        browser = f"Firefox {version('Firefox')}"
    elif "HeadlessChrome/" in ua:
        browser = f"Chrome {version('HeadlessChrome')} (headless)"
    elif "Chrome/" in ua or "CriOS/" in ua:
        browser = f"Chrome {version('Chrome') or version('CriOS')}"
    elif "Safari/" in ua and "Version/" in ua:
        browser = f"Safari {version('Version')}"
    else:
        browser = "Other" if ua else "Unknown"
    if "Windows" in ua:
        os_name = "Windows"
    elif "Android" in ua:
        os_name = "Android"
    elif "iPhone" in ua or "iPad" in ua:
        os_name = "iOS"
    elif "CrOS" in ua:
        os_name = "ChromeOS"
    elif "Mac OS X" in ua or "Macintosh" in ua:
        os_name = "macOS"
    elif "Linux" in ua:
        os_name = "Linux"
    else:
        os_name = "Other" if ua else "Unknown"
    return browser.strip(), os_name


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
    extra: dict[str, Any] = field(default_factory=dict)

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


def compute_stats(event_id: str, rows: Sequence[SessionRow], now: float) -> EventStats:
    """Pure: the statistics of one event from its session rows."""
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
        people.append(
            PersonStats(
                person_key=key,
                name=latest.name,
                email=next((s.email for s in reversed(sessions) if s.email), None),
                role=role,
                first_join=sessions[0].joined_at,
                last_leave=None if open_now else max(s.left_at or 0.0 for s in sessions),
                sessions=len(sessions),
                seconds=_union_seconds(intervals),
                browser=latest.browser,
                os=latest.os,
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
    " leave_reason, browser, os"
)


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
    ) -> int:
        ua = user_agent[:USER_AGENT_MAX]
        browser, os_name = parse_user_agent(ua)
        when = self.clock() if at is None else at

        def insert(db: SyncStore) -> int:
            (session_id,) = db.connection.execute(
                "INSERT INTO attendance (event_id, person_key, participant_id, name, email,"
                " role, joined_at, user_agent, browser, os) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " RETURNING session_id",
                (
                    event_id,
                    person_key,
                    participant_id,
                    name,
                    email,
                    role,
                    when,
                    ua,
                    browser,
                    os_name,
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
            return [SessionRow(*row) for row in rows]

        return await self.store.run(get)

    async def stats(self, event_id: str) -> EventStats:
        return compute_stats(event_id, await self.sessions(event_id), self.clock())

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
        stats = compute_stats(event_id, sessions, self.clock())
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
