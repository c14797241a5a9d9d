"""The embedded SQLite store, ``<data_dir>/webinar.sqlite3``.

:class:`SyncStore` is the synchronous core: one connection, used only by the thread that opened
it. :class:`Store` is the asyncio facade used by the server: it runs a ``SyncStore`` in one
dedicated worker thread, so no SQLite call ever blocks the event loop. The CLI uses
:meth:`Store.open_sync` directly; WAL mode makes a CLI and a running server safe on one file.

The schema is the ordered list :data:`MIGRATIONS`; ``PRAGMA user_version`` records how many of
them a database has had. Never edit a released migration: append a new one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import sqlite3
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from webinar.ids import format_event_id, new_event_id, new_presenter_key, normalize_event_id

DB_FILENAME = "webinar.sqlite3"
TITLE_MAX_CHARS = 200
_ID_ATTEMPTS = 20
_BUSY_TIMEOUT_SECONDS = 10.0

MIGRATIONS: tuple[str, ...] = (
    # 1: events.
    """
    CREATE TABLE events (
        event_id      TEXT PRIMARY KEY
                      CHECK (length(event_id) = 9 AND event_id NOT GLOB '*[^0-9]*'),
        title         TEXT NOT NULL,
        presenter_key TEXT NOT NULL,
        starts_at     TEXT NULL,   -- ISO-8601, UTC
        created_at    TEXT NOT NULL  -- ISO-8601, UTC
    );
    CREATE INDEX events_created_at ON events (created_at);
    """,
    # 2: what a live room needs: a host key, the lobby's texts, the join window, the
    # thank-you page.
    """
    ALTER TABLE events ADD COLUMN host_key TEXT NOT NULL DEFAULT '';
    UPDATE events SET host_key = lower(hex(randomblob(18))) WHERE host_key = '';
    ALTER TABLE events ADD COLUMN agenda TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN lobby_message TEXT NOT NULL DEFAULT '';
    ALTER TABLE events ADD COLUMN join_window_minutes INTEGER NOT NULL DEFAULT 5
        CHECK (join_window_minutes BETWEEN 0 AND 1440);
    ALTER TABLE events ADD COLUMN thank_you_url TEXT NULL;
    """,
    # 3: organiser accounts, their sign-in sessions, and who owns which event.
    """
    CREATE TABLE users (
        user_id       INTEGER PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE COLLATE NOCASE
                      CHECK (length(username) BETWEEN 1 AND 64),
        password_hash TEXT NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ('admin', 'organiser')),
        created_at    TEXT NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions (user_id);
    ALTER TABLE events ADD COLUMN owner_id INTEGER NULL
        REFERENCES users (user_id) ON DELETE SET NULL;
    ALTER TABLE events ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
    ALTER TABLE events ADD COLUMN duration_minutes INTEGER NOT NULL DEFAULT 60
        CHECK (duration_minutes BETWEEN 1 AND 1440);
    ALTER TABLE events ADD COLUMN access_type TEXT NOT NULL DEFAULT 'open'
        CHECK (access_type IN ('open', 'password', 'token', 'paid'));
    ALTER TABLE events ADD COLUMN camera_limit INTEGER NOT NULL DEFAULT 4
        CHECK (camera_limit BETWEEN 1 AND 7);
    CREATE INDEX events_owner ON events (owner_id);
    """,
    # 4: interaction (webinar.interaction.store): chat, Q&A, polls and tests, call-to-action.
    # Times are epoch seconds (REAL).
    """
    CREATE TABLE chat_messages (
        message_id     TEXT PRIMARY KEY,
        event_id       TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        seq            INTEGER NOT NULL,
        participant_id TEXT NOT NULL,
        name           TEXT NOT NULL,
        role           TEXT NOT NULL,
        text           TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
        at             REAL NOT NULL,
        deleted_at     REAL NULL,
        deleted_by     TEXT NULL,
        question_id    TEXT NULL
    );
    CREATE INDEX chat_messages_event ON chat_messages (event_id, seq);
    CREATE TABLE questions (
        question_id    TEXT PRIMARY KEY,
        event_id       TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        participant_id TEXT NOT NULL,
        author_key     TEXT NOT NULL,
        name           TEXT NOT NULL,
        text           TEXT NOT NULL,
        anonymous      INTEGER NOT NULL CHECK (anonymous IN (0, 1)),
        asked_at       REAL NOT NULL,
        message_id     TEXT NULL,
        state          TEXT NOT NULL CHECK (state IN ('new', 'answered', 'dismissed')),
        published_at   REAL NULL
    );
    CREATE INDEX questions_event ON questions (event_id, asked_at);
    CREATE TABLE question_votes (
        question_id TEXT NOT NULL REFERENCES questions (question_id) ON DELETE CASCADE,
        voter_key   TEXT NOT NULL,
        voted_at    REAL NOT NULL,
        PRIMARY KEY (question_id, voter_key)
    );
    CREATE TABLE polls (
        poll_id       TEXT PRIMARY KEY,
        event_id      TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        title         TEXT NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('poll', 'test')),
        definition    TEXT NOT NULL,  -- JSON: the questions and options
        state         TEXT NOT NULL CHECK (state IN ('draft', 'open', 'closed')),
        results_shown INTEGER NOT NULL DEFAULT 0,
        created_at    REAL NOT NULL,
        launched_at   REAL NULL,
        closed_at     REAL NULL
    );
    CREATE INDEX polls_event ON polls (event_id, created_at);
    CREATE TABLE poll_answers (
        poll_id        TEXT NOT NULL REFERENCES polls (poll_id) ON DELETE CASCADE,
        question_id    TEXT NOT NULL,
        voter_key      TEXT NOT NULL,
        participant_id TEXT NOT NULL,
        name           TEXT NOT NULL,
        option_ids     TEXT NOT NULL,  -- JSON list
        text           TEXT NULL,
        correct        INTEGER NULL,
        answered_at    REAL NOT NULL,
        PRIMARY KEY (poll_id, question_id, voter_key)
    );
    CREATE TABLE ctas (
        cta_id           TEXT PRIMARY KEY,
        event_id         TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        message          TEXT NOT NULL CHECK (length(message) BETWEEN 1 AND 54),
        button           TEXT NOT NULL,
        url              TEXT NOT NULL,
        duration_seconds INTEGER NULL,
        shown_at         REAL NOT NULL,
        shown_by         TEXT NOT NULL,
        closed_at        REAL NULL
    );
    CREATE INDEX ctas_event ON ctas (event_id, shown_at);
    CREATE TABLE cta_clicks (
        click_id       INTEGER PRIMARY KEY,
        cta_id         TEXT NOT NULL REFERENCES ctas (cta_id) ON DELETE CASCADE,
        participant_id TEXT NOT NULL,
        name           TEXT NOT NULL,
        clicked_at     REAL NOT NULL
    );
    CREATE INDEX cta_clicks_cta ON cta_clicks (cta_id);
    CREATE TABLE interaction_settings (
        event_id          TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        chat_enabled      INTEGER NOT NULL DEFAULT 1,
        slow_mode_seconds INTEGER NOT NULL DEFAULT 0,
        qa_open           INTEGER NOT NULL DEFAULT 1,
        published_question_id TEXT NULL,
        chat_muted        TEXT NOT NULL DEFAULT '[]'  -- JSON list of person keys
    );
    CREATE TABLE poll_images (
        image_id     TEXT PRIMARY KEY,
        event_id     TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        content_type TEXT NOT NULL,
        size         INTEGER NOT NULL,
        created_at   REAL NOT NULL
    );
    """,
    # 5: after the event: recordings (files listed as JSON), per-event recording settings,
    # attendance (one row per participant session; person_key merges one person's), and
    # published recordings (signed expiring links) with the e-mails of their viewers.
    """
    CREATE TABLE recordings (
        recording_id     TEXT PRIMARY KEY,
        event_id         TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        started_at       TEXT NOT NULL,
        ended_at         TEXT NOT NULL,
        duration_seconds REAL NOT NULL CHECK (duration_seconds >= 0),
        size_bytes       INTEGER NOT NULL CHECK (size_bytes >= 0),
        files            TEXT NOT NULL
    );
    CREATE INDEX recordings_event ON recordings (event_id, started_at);
    CREATE TABLE event_recording (
        event_id    TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        auto_record INTEGER NOT NULL DEFAULT 0 CHECK (auto_record IN (0, 1))
    );
    CREATE TABLE attendance (
        session_id     INTEGER PRIMARY KEY,
        event_id       TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        person_key     TEXT NOT NULL,
        participant_id TEXT NOT NULL,
        name           TEXT NOT NULL,
        email          TEXT NULL,
        role           TEXT NOT NULL,
        joined_at      REAL NOT NULL,
        left_at        REAL NULL,
        leave_reason   TEXT NULL,
        user_agent     TEXT NOT NULL DEFAULT '',
        browser        TEXT NOT NULL DEFAULT '',
        os             TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX attendance_event ON attendance (event_id, joined_at);
    CREATE INDEX attendance_participant ON attendance (participant_id);
    CREATE TABLE server_secrets (
        name  TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE recording_publications (
        publication_id TEXT PRIMARY KEY,
        recording_id   TEXT NOT NULL REFERENCES recordings (recording_id) ON DELETE CASCADE,
        expires_at     REAL NOT NULL,
        require_email  INTEGER NOT NULL CHECK (require_email IN (0, 1)),
        created_at     REAL NOT NULL
    );
    CREATE INDEX recording_publications_recording ON recording_publications (recording_id);
    CREATE TABLE recording_viewers (
        viewer_id      INTEGER PRIMARY KEY,
        publication_id TEXT NOT NULL
                       REFERENCES recording_publications (publication_id) ON DELETE CASCADE,
        event_id       TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        email          TEXT NOT NULL,
        first_viewed   REAL NOT NULL,
        UNIQUE (publication_id, email)
    );
    CREATE INDEX recording_viewers_event ON recording_viewers (event_id);
    """,
    # 6: ticketing: access settings per event, invitees, registrations, payment webhooks,
    # API tokens (see webinar.ticketing.records).
    """
    CREATE TABLE event_access (
        event_id                TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        attendee_password_hash  TEXT NULL,
        presenter_password_hash TEXT NULL,
        price_minor             INTEGER NULL CHECK (price_minor IS NULL OR price_minor > 0),
        currency                TEXT NULL,
        capacity                INTEGER NULL CHECK (capacity IS NULL OR capacity >= 1),
        second_device           TEXT NOT NULL DEFAULT 'takeover'
                                CHECK (second_device IN ('takeover', 'refuse')),
        payment_provider        TEXT NOT NULL DEFAULT 'manual'
                                CHECK (payment_provider IN ('manual', 'stripe')),
        -- when a change of time or title was saved after people got their e-mail
        settings_changed_at     TEXT NULL,
        -- the organiser's extra registration questions: JSON [{"label": ..., "required": ...}]
        form_fields             TEXT NOT NULL DEFAULT '[]',
        -- the organiser cancelled the event: attendees are refused, everyone was told
        cancelled_at            TEXT NULL
    );
    CREATE TABLE invitees (
        invitee_id INTEGER PRIMARY KEY,
        event_id   TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        email      TEXT NOT NULL COLLATE NOCASE,
        token      TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        sent_at    TEXT NULL,
        revoked_at TEXT NULL,
        UNIQUE (event_id, email)
    );
    CREATE TABLE registrations (
        registration_id INTEGER PRIMARY KEY,
        event_id        TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        first_name      TEXT NOT NULL,
        last_name       TEXT NOT NULL,
        email           TEXT NOT NULL COLLATE NOCASE,
        seats           INTEGER NOT NULL DEFAULT 1 CHECK (seats BETWEEN 1 AND 100),
        status          TEXT NOT NULL
                        CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
        amount_minor    INTEGER NOT NULL DEFAULT 0,
        currency        TEXT NULL,
        provider        TEXT NOT NULL DEFAULT 'manual',
        provider_ref    TEXT NULL UNIQUE,
        code            TEXT NULL,
        code_hash       TEXT NULL UNIQUE,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        confirmed_at    TEXT NULL,
        checked_in_at   TEXT NULL,
        answers         TEXT NOT NULL DEFAULT '{}'  -- JSON {label: answer}
    );
    CREATE INDEX registrations_event ON registrations (event_id);
    CREATE TABLE payment_webhooks (
        provider    TEXT NOT NULL,
        webhook_id  TEXT NOT NULL,
        received_at TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        PRIMARY KEY (provider, webhook_id)
    );
    CREATE TABLE reminders (
        reminder_id     INTEGER PRIMARY KEY,
        event_id        TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        registration_id INTEGER NULL UNIQUE
                        REFERENCES registrations (registration_id) ON DELETE CASCADE,
        invitee_id      INTEGER NULL UNIQUE REFERENCES invitees (invitee_id) ON DELETE CASCADE,
        due_at          TEXT NOT NULL,
        state           TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'sending', 'sent', 'skipped', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        sent_at         TEXT NULL
    );
    CREATE INDEX reminders_due ON reminders (state, due_at);
        CREATE TABLE api_tokens (
        token_hash TEXT PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        label      TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
    # 7: calls-to-action prepared before the event (webinar.interaction.store), launched
    # in the room by a presenter.
    """
    CREATE TABLE cta_prepared (
        prepared_id      TEXT PRIMARY KEY,
        event_id         TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        message          TEXT NOT NULL,
        button           TEXT NOT NULL,
        url              TEXT NOT NULL,
        duration_seconds INTEGER NULL,
        created_at       REAL NOT NULL
    );
    CREATE INDEX cta_prepared_event ON cta_prepared (event_id, created_at);
    """,
    # 8: webhooks: organisers' endpoints, and the delivery log with every attempt.
    """
    CREATE TABLE webhook_endpoints (
        endpoint_id INTEGER PRIMARY KEY,
        owner_id    INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        url         TEXT NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
        secret      TEXT NOT NULL,
        events      TEXT NOT NULL DEFAULT '*',  -- comma-separated event names, or '*'
        created_at  REAL NOT NULL               -- Unix time
    );
    CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (owner_id);
    CREATE TABLE webhook_deliveries (
        delivery_id     TEXT PRIMARY KEY,
        endpoint_id     INTEGER NOT NULL
                        REFERENCES webhook_endpoints (endpoint_id) ON DELETE CASCADE,
        event           TEXT NOT NULL,
        event_id        TEXT NULL,              -- the webinar event it is about, if any
        body            TEXT NOT NULL,          -- the exact JSON that is signed and sent
        status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NULL,
        created_at      REAL NOT NULL,
        finished_at     REAL NULL
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
    CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
    CREATE TABLE webhook_attempts (
        delivery_id TEXT NOT NULL
                    REFERENCES webhook_deliveries (delivery_id) ON DELETE CASCADE,
        attempt     INTEGER NOT NULL,
        at          REAL NOT NULL,
        http_status INTEGER NULL,
        error       TEXT NULL,
        duration_ms INTEGER NOT NULL,
        PRIMARY KEY (delivery_id, attempt)
    );
    """,
)

T = TypeVar("T")


class StoreError(Exception):
    """The store cannot do what was asked (closed, newer schema, no free event ID, ...)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A scheduled webinar."""

    #: Canonical 9-digit ID, without separators; see :attr:`display_id`.
    event_id: str
    title: str
    #: Secret that lets its holder present.
    presenter_key: str
    #: When the event is announced to start (timezone-aware, UTC), if set.
    starts_at: datetime | None
    #: When the event was created (timezone-aware, UTC).
    created_at: datetime
    #: Secret that makes its holder the host (presenter rights plus running the room).
    host_key: str = ""
    agenda: str = ""
    #: The organiser's message shown in the lobby.
    lobby_message: str = ""
    #: How many minutes before the start attendees may enter the lobby.
    join_window_minutes: int = 5
    #: Where attendees go when the event is ended for all (None: our thank-you page).
    thank_you_url: str | None = None
    owner_id: int | None = None
    #: IANA name the organiser schedules in; times are stored in UTC.
    timezone: str = "UTC"
    duration_minutes: int = 60
    access_type: str = "open"
    camera_limit: int = 4

    @property
    def display_id(self) -> str:
        """The event ID as people read it: ``123-456-789``."""
        return format_event_id(self.event_id)

    def status(self, now: datetime) -> str:
        """``upcoming``, ``live`` (inside start..start+duration) or ``past``."""
        if self.starts_at is None:
            return "live"
        end = self.starts_at + timedelta(minutes=self.duration_minutes)
        if now < self.starts_at:
            return "upcoming"
        return "live" if now < end else "past"


@dataclass(frozen=True, slots=True)
class EventSettings:
    """What an organiser sets on an event; validated by :meth:`validated`."""

    title: str
    starts_at: datetime | None = None
    agenda: str = ""
    lobby_message: str = ""
    join_window_minutes: int = 5
    thank_you_url: str | None = None
    timezone: str = "UTC"
    duration_minutes: int = 60
    access_type: str = "open"
    camera_limit: int = 4

    def validated(self) -> EventSettings:
        """A normalised copy; ValueError names the first field that is wrong."""
        if self.timezone not in _zones():
            raise ValueError(f"unknown time zone {self.timezone!r} (use an IANA name)")
        if not 1 <= self.duration_minutes <= 1440:
            raise ValueError("the duration must be 1 to 1440 minutes")
        if not 0 <= self.join_window_minutes <= 1440:
            raise ValueError("the join window must be 0 to 1440 minutes")
        if self.access_type not in ACCESS_TYPES:
            raise ValueError(f"access type must be one of {', '.join(ACCESS_TYPES)}")
        if not 1 <= self.camera_limit <= 7:
            raise ValueError("the camera limit must be 1 to 7")
        if self.starts_at is not None:
            _to_db_time(self.starts_at)
        return dataclasses.replace(
            self,
            title=validate_title(self.title),
            agenda=_check_text("agenda", self.agenda, AGENDA_MAX_CHARS),
            lobby_message=_check_text("lobby message", self.lobby_message, LOBBY_MESSAGE_MAX_CHARS),
            thank_you_url=_check_url(self.thank_you_url),
        )


ACCESS_TYPES = ("open", "password", "token", "paid")
USER_ROLES = ("admin", "organiser")
_USER_COLUMNS = "user_id, username, password_hash, role"
USERNAME_MAX_CHARS = 64


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    password_hash: str
    role: str  # "admin" sees every event; "organiser" their own

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A dashboard sign-in; only a hash of the cookie's token is stored."""

    token_hash: str
    user_id: int
    csrf_token: str
    created_at: datetime
    expires_at: datetime


def validate_username(username: str) -> str:
    name = username.strip()
    if not 1 <= len(name) <= USERNAME_MAX_CHARS or any(c.isspace() for c in name):
        raise ValueError(f"a user name has 1 to {USERNAME_MAX_CHARS} characters and no spaces")
    return name


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def validate_title(title: str) -> str:
    """Return ``title`` stripped; raise ValueError unless it has 1 to 200 characters."""
    stripped = title.strip()
    if not 1 <= len(stripped) <= TITLE_MAX_CHARS:
        raise ValueError(f"title must have 1 to {TITLE_MAX_CHARS} characters")
    return stripped


def _to_db_time(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_db_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _statements(script: str) -> list[str]:
    """Split an SQL script into complete statements (semicolons in literals stay put)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement: {pending.strip()!r}")
    return statements


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date, all pending migrations in one transaction."""
    conn.execute("BEGIN IMMEDIATE")  # also serialises two processes migrating at once
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database schema version {version} is newer than this program knows "
                f"({len(MIGRATIONS)}); upgrade webinar"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number:d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


_EVENT_FIELDS = (
    "event_id",
    "title",
    "presenter_key",
    "starts_at",
    "created_at",
    "host_key",
    "agenda",
    "lobby_message",
    "join_window_minutes",
    "thank_you_url",
    "owner_id",
    "timezone",
    "duration_minutes",
    "access_type",
    "camera_limit",
)
_EVENT_COLUMNS = ", ".join(_EVENT_FIELDS)
_SETTINGS_FIELDS = tuple(f.name for f in dataclasses.fields(EventSettings))
AGENDA_MAX_CHARS = 4000
LOBBY_MESSAGE_MAX_CHARS = 1000


def _event_from_row(row: tuple[Any, ...]) -> Event:
    values = dict(zip(_EVENT_FIELDS, row, strict=True))
    starts = values["starts_at"]
    values["starts_at"] = None if starts is None else _from_db_time(starts)
    values["created_at"] = _from_db_time(values["created_at"])
    return Event(**values)


def _settings_row(settings: EventSettings) -> dict[str, Any]:
    row = {name: getattr(settings, name) for name in _SETTINGS_FIELDS}
    row["starts_at"] = None if settings.starts_at is None else _to_db_time(settings.starts_at)
    return row


def _check_text(name: str, value: str, limit: int) -> str:
    value = value.strip()
    if len(value) > limit:
        raise ValueError(f"{name} must have at most {limit} characters")
    return value


def _check_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.startswith(("https://", "http://")) or len(value) > 2000:
        raise ValueError("the thank-you URL must be an http(s) URL of at most 2000 characters")
    return value


class SyncStore:
    """Synchronous store on one SQLite connection; use it only from the thread that opened it."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path

    @classmethod
    def open(cls, data_dir: Path) -> SyncStore:
        """Open (creating if needed) ``<data_dir>/webinar.sqlite3`` and apply migrations."""
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = data_dir / DB_FILENAME
        # isolation_level=None: no implicit transactions; every write here is one statement
        # (autocommit) or an explicit BEGIN ... COMMIT.
        conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                raise StoreError(f"{path}: cannot switch to WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    @property
    def connection(self) -> sqlite3.Connection:
        """For modules with tables of their own (interaction, recordings, ticketing)."""
        return self._db

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("store is closed")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def schema_version(self) -> int:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        return int(version)

    def create_event(
        self,
        title: str,
        starts_at: datetime | None,
        *,
        owner_id: int | None = None,
        **settings: Any,
    ) -> Event:
        """Create an event with a fresh unique ID, presenter key and host key.

        ``settings`` are :class:`EventSettings` fields; ValueError names a bad one.
        """
        return self.create_event_from(
            EventSettings(title=title, starts_at=starts_at, **settings), owner_id=owner_id
        )

    def create_event_from(self, settings: EventSettings, *, owner_id: int | None) -> Event:
        values = _settings_row(settings.validated())
        values["created_at"] = _to_db_time(datetime.now(UTC))
        values["owner_id"] = owner_id
        for _ in range(_ID_ATTEMPTS):
            values["event_id"] = new_event_id()
            values["presenter_key"] = new_presenter_key()
            values["host_key"] = new_presenter_key()
            row = tuple(values[name] for name in _EVENT_FIELDS)
            marks = ", ".join("?" * len(_EVENT_FIELDS))
            # ON CONFLICT DO NOTHING: an ID collision inserts nothing, and we draw again.
            cursor = self._db.execute(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({marks})"
                " ON CONFLICT (event_id) DO NOTHING",
                row,
            )
            if cursor.rowcount == 1:
                return _event_from_row(row)
        raise StoreError(f"no free event ID after {_ID_ATTEMPTS} attempts")

    def update_event(self, event_id: str, settings: EventSettings) -> Event:
        """Replace an event's settings (IDs and keys stay); ValueError for bad ones."""
        values = _settings_row(settings.validated())
        assignments = ", ".join(f"{name} = ?" for name in values)
        cursor = self._db.execute(
            f"UPDATE events SET {assignments} WHERE event_id = ?",
            (*values.values(), event_id),
        )
        if cursor.rowcount != 1:
            raise StoreError(f"no event {event_id}")
        event = self.get_event(event_id)
        assert event is not None
        return event

    def get_event(self, event_id: str) -> Event | None:
        """Return the event, or None. ``event_id`` may be in any form people type."""
        canonical = normalize_event_id(event_id)
        if canonical is None:
            return None
        row = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = ?", (canonical,)
        ).fetchone()
        return None if row is None else _event_from_row(row)

    def list_events(self, owner_id: int | None = None) -> list[Event]:
        """All events (or one owner's), oldest first."""
        if owner_id is None:
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY created_at, rowid"
            ).fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE owner_id = ?"
                " ORDER BY created_at, rowid",
                (owner_id,),
            ).fetchall()
        return [_event_from_row(row) for row in rows]

    def count_events(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM events").fetchone()
        return int(count)

    # users -----------------------------------------------------------------------------

    def create_user(self, username: str, password_hash: str, role: str) -> User:
        username = validate_username(username)
        if role not in USER_ROLES:
            raise ValueError(f"role must be one of {', '.join(USER_ROLES)}")
        try:
            cursor = self._db.execute(
                "INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
                (username, password_hash, role, _to_db_time(datetime.now(UTC))),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"a user named {username!r} exists already") from None
        user = self.get_user(int(cursor.lastrowid or 0))
        assert user is not None
        return user

    def get_user(self, user_id: int) -> User | None:
        row = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = ?", (user_id,)
        ).fetchone()
        return None if row is None else User(*row)

    def get_user_by_name(self, username: str) -> User | None:
        row = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", (username.strip(),)
        ).fetchone()
        return None if row is None else User(*row)

    def list_users(self) -> list[User]:
        rows = self._db.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username").fetchall()
        return [User(*row) for row in rows]

    def set_password_hash(self, username: str, password_hash: str) -> None:
        cursor = self._db.execute(
            "UPDATE users SET password_hash = ? WHERE username = ?", (password_hash, username)
        )
        if cursor.rowcount != 1:
            raise ValueError(f"no user named {username!r}")
        self._db.execute(
            "DELETE FROM sessions WHERE user_id = (SELECT user_id FROM users WHERE username = ?)",
            (username,),
        )

    def delete_user(self, username: str) -> None:
        cursor = self._db.execute("DELETE FROM users WHERE username = ?", (username,))
        if cursor.rowcount != 1:
            raise ValueError(f"no user named {username!r}")

    # sign-in sessions ------------------------------------------------------------------

    def create_session(self, session: SessionRecord) -> None:
        self._db.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                session.token_hash,
                session.user_id,
                session.csrf_token,
                _to_db_time(session.created_at),
                _to_db_time(session.expires_at),
            ),
        )

    def get_session(self, token_hash: str, now: datetime) -> tuple[SessionRecord, User] | None:
        row = self._db.execute(
            "SELECT token_hash, user_id, csrf_token, created_at, expires_at FROM sessions"
            " WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        if row is None:
            return None
        record = SessionRecord(
            token_hash=row[0],
            user_id=row[1],
            csrf_token=row[2],
            created_at=_from_db_time(row[3]),
            expires_at=_from_db_time(row[4]),
        )
        if record.expires_at <= now:
            self.delete_session(token_hash)
            return None
        user = self.get_user(record.user_id)
        return None if user is None else (record, user)

    def delete_session(self, token_hash: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def ping(self) -> bool:
        """True if the database answers a query."""
        try:
            return bool(self._db.execute("SELECT 1").fetchone() == (1,))
        except (sqlite3.Error, StoreError):
            return False


class Store:
    """Asyncio facade over :class:`SyncStore`, running it in one dedicated worker thread.

    Use ``await store.open()`` / ``await store.close()``, or ``async with Store(path) as store``.
    Calls are executed one at a time, in order.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._core: SyncStore | None = None

    @property
    def path(self) -> Path:
        return self.data_dir / DB_FILENAME

    @staticmethod
    def open_sync(data_dir: Path) -> SyncStore:
        """Open the store synchronously, for code without an event loop (the CLI)."""
        return SyncStore.open(data_dir)

    @property
    def is_open(self) -> bool:
        return self._core is not None

    async def open(self) -> None:
        if self._executor is not None:
            raise StoreError("store is already open")
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="webinar-store"
        )
        self._executor = executor
        try:
            core = await asyncio.get_running_loop().run_in_executor(
                executor, SyncStore.open, self.data_dir
            )
        except BaseException:
            self._executor = None
            executor.shutdown(wait=False)
            raise
        self._core = core

    async def close(self) -> None:
        """Close the connection and stop the worker thread. Closing twice is harmless."""
        executor, core = self._executor, self._core
        self._executor = self._core = None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        try:
            if core is not None:
                # Queued behind any calls already submitted, which finish first.
                await loop.run_in_executor(executor, core.close)
        finally:
            await loop.run_in_executor(None, executor.shutdown)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def run(self, call: Callable[[SyncStore], T]) -> T:
        """Run ``call(sync_store)`` in the store's thread (for feature modules)."""
        return await self._run(call)

    async def _run(self, call: Callable[[SyncStore], T]) -> T:
        executor, core = self._executor, self._core
        if executor is None or core is None:
            raise StoreError("store is not open")
        return await asyncio.get_running_loop().run_in_executor(executor, call, core)

    async def create_event(
        self,
        title: str,
        starts_at: datetime | None,
        *,
        owner_id: int | None = None,
        **settings: Any,
    ) -> Event:
        """Create an event; ValueError names a bad setting (see :class:`EventSettings`)."""
        checked = EventSettings(title=title, starts_at=starts_at, **settings).validated()
        return await self._run(lambda core: core.create_event_from(checked, owner_id=owner_id))

    async def create_event_from(self, settings: EventSettings, *, owner_id: int | None) -> Event:
        checked = settings.validated()
        return await self._run(lambda core: core.create_event_from(checked, owner_id=owner_id))

    async def update_event(self, event_id: str, settings: EventSettings) -> Event:
        checked = settings.validated()
        return await self._run(lambda core: core.update_event(event_id, checked))

    async def get_event(self, event_id: str) -> Event | None:
        return await self._run(lambda core: core.get_event(event_id))

    async def list_events(self, owner_id: int | None = None) -> list[Event]:
        return await self._run(lambda core: core.list_events(owner_id))

    # users and sessions

    async def get_user_by_name(self, username: str) -> User | None:
        return await self._run(lambda core: core.get_user_by_name(username))

    async def create_session(self, session: SessionRecord) -> None:
        await self._run(lambda core: core.create_session(session))

    async def get_session(
        self, token_hash: str, now: datetime
    ) -> tuple[SessionRecord, User] | None:
        return await self._run(lambda core: core.get_session(token_hash, now))

    async def delete_session(self, token_hash: str) -> None:
        await self._run(lambda core: core.delete_session(token_hash))

    async def count_events(self) -> int:
        return await self._run(SyncStore.count_events)

    async def run_sql(self, call: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``call(connection)`` on the store's thread, in order with every other call."""
        return await self._run(lambda core: call(core.connection))

    async def ping(self) -> bool:
        """True if the store is open and the database answers."""
        if self._core is None:
            return False
        try:
            return await self._run(SyncStore.ping)
        except (StoreError, RuntimeError):
            return False
