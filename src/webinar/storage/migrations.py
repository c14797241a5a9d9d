"""The store's schema, as the ordered list :data:`MIGRATIONS`, for both dialects.

SQLite: ``PRAGMA user_version`` records how many of them a database has had. PostgreSQL:
the table ``schema_version`` does; a new PostgreSQL database starts from
:data:`POSTGRESQL_BASELINE`, the schema of version :data:`POSTGRESQL_BASELINE_VERSION` written
for it, and takes the later migrations from there. A later migration is one text both run, or
a :class:`Migration` with one text each. ``tests/unit/test_pg_store.py`` checks that both
dialects end with the same tables, columns, nullability and primary keys.

Never edit a released migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from webinar.storage.db import MIGRATE_LOCK_KEY, Database, Dialect
from webinar.storage.records import StoreError

#: The first schema version whose secrets are sealed (webinar.storage.sealing).
SEALED_FROM = 9


@dataclass(frozen=True, slots=True)
class Migration:
    """A migration whose text differs between the dialects (a plain ``str`` in
    :data:`MIGRATIONS` serves both)."""

    sqlite: str
    postgresql: str


MIGRATIONS: tuple[str | Migration, ...] = (
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
    # 9: secrets at rest (webinar.storage.sealing). Presenter and host keys, invitation tokens
    # and reservation codes, kept beside their hashes for resends, are encrypted with the key
    # kept outside the database; the store registers seal() on its connection first.
    """
    UPDATE events SET presenter_key = seal('presenter_key', presenter_key),
        host_key = seal('host_key', host_key);
    UPDATE invitees SET token = seal('token', token);
    UPDATE registrations SET code = seal('code', code) WHERE code IS NOT NULL;
    """,
    # 10: reminders are sent idempotently (webinar.ticketing.reminders): the Message-ID and
    # the address it was made for are recorded before the send, so a send a crash cut short
    # is repeated with the same Message-ID; a failed try waits until retry_at.
    """
    ALTER TABLE reminders ADD COLUMN message_id TEXT NULL;
    ALTER TABLE reminders ADD COLUMN message_to TEXT NULL;
    ALTER TABLE reminders ADD COLUMN retry_at TEXT NULL;
    """,
    # 11: languages (webinar.i18n): the event's, when its organiser chose one (NULL: each
    # attendee's own), and the one a registrant used on the registration page (their
    # e-mails go out in it; NULL: registered before, or by the API).
    """
    ALTER TABLE events ADD COLUMN language TEXT NULL;
    ALTER TABLE registrations ADD COLUMN language TEXT NULL;
    """,
    # 12: signed join tokens and embedding (webinar.ticketing.join_tokens, .embedding): the
    # keys organisers sign join tokens (JWT) with, by key ID (the token's `kid`): an HS256
    # secret (sealed, webinar.storage.sealing) or a registered public key (PEM); and the
    # origins allowed to frame an event's pages, besides the global http.embed_origins.
    Migration(
        sqlite="""
    CREATE TABLE join_keys (
        key_id     TEXT PRIMARY KEY CHECK (length(key_id) BETWEEN 1 AND 64),
        owner_id   INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        label      TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
        algorithm  TEXT NOT NULL CHECK (algorithm IN ('HS256', 'RS256', 'EdDSA')),
        secret     TEXT NULL,
        public_key TEXT NULL,
        created_at TEXT NOT NULL,
        CHECK ((secret IS NULL) <> (public_key IS NULL))
    );
    CREATE INDEX join_keys_owner ON join_keys (owner_id);
    CREATE TABLE embed_origins (
        event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        origin   TEXT NOT NULL CHECK (length(origin) BETWEEN 8 AND 200),
        PRIMARY KEY (event_id, origin)
    );
    """,
        postgresql="""
    CREATE TABLE join_keys (
        key_id     TEXT PRIMARY KEY CHECK (length(key_id) BETWEEN 1 AND 64),
        owner_id   BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        label      TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
        algorithm  TEXT NOT NULL CHECK (algorithm IN ('HS256', 'RS256', 'EdDSA')),
        secret     TEXT NULL,
        public_key TEXT NULL,
        created_at TEXT NOT NULL,
        CHECK ((secret IS NULL) <> (public_key IS NULL))
    );
    CREATE INDEX join_keys_owner ON join_keys (owner_id);
    CREATE TABLE embed_origins (
        event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        origin   TEXT NOT NULL CHECK (length(origin) BETWEEN 8 AND 200),
        PRIMARY KEY (event_id, origin)
    );
    """,
    ),
    # 13: API tokens with a scope (webinar.storage.api_tokens): a public ID to list and revoke
    # them by (tokens made before get one from their hash), what they may do (those made before
    # could change things: write), and when each was last used.
    """
    ALTER TABLE api_tokens ADD COLUMN token_id TEXT NOT NULL DEFAULT '';
    UPDATE api_tokens SET token_id = 'tok_' || substr(token_hash, 1, 16);
    CREATE UNIQUE INDEX api_tokens_token_id ON api_tokens (token_id);
    ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'write'
        CHECK (scope IN ('read', 'write', 'admin'));
    ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT NULL;
    CREATE INDEX api_tokens_user ON api_tokens (user_id);
    """,
    # 14: uploaded content per event (webinar.content): the file is under
    # <shared_dir>/content/<event_id>/<content_id>; size_bytes is what the upload has reserved
    # against its organiser's quota while scan_status is 'uploading', the file's size after.
    # owner_id is the event's organiser when it was uploaded (the quota's account; NULL: events
    # nobody owns, which share one account).
    """
    CREATE TABLE content_files (
        content_id    TEXT PRIMARY KEY CHECK (length(content_id) = 28),
        event_id      TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        owner_id      BIGINT NULL REFERENCES users (user_id) ON DELETE SET NULL,
        file_name     TEXT NOT NULL CHECK (length(file_name) BETWEEN 1 AND 200),
        declared_type TEXT NOT NULL,
        detected_type TEXT NOT NULL,
        size_bytes    BIGINT NOT NULL CHECK (size_bytes >= 0),
        sha256        TEXT NOT NULL,
        scan_status   TEXT NOT NULL
                      CHECK (scan_status IN ('uploading', 'clean', 'infected', 'unscanned')),
        uploaded_by   TEXT NOT NULL DEFAULT 'organiser',
        created_at    TEXT NOT NULL
    );
    CREATE INDEX content_files_event ON content_files (event_id, created_at);
    CREATE INDEX content_files_owner ON content_files (owner_id);
    """,
    # 15: content on stage (webinar.content.stage): what a live room shows besides cameras
    # (stage_state, one JSON document per event), its timeline (stage_log: page turns, videos
    # played, layouts, with their Unix times) and the whiteboard's strokes, kept one message of
    # a stroke at a time (whiteboard_parts: part 0 starts the stroke, later parts add points
    # or, for shapes, replace them).
    """
    CREATE TABLE stage_state (
        event_id   TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        data       TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE stage_log (
        event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        at       DOUBLE PRECISION NOT NULL,
        kind     TEXT NOT NULL,
        by       TEXT NULL,
        data     TEXT NOT NULL
    );
    CREATE INDEX stage_log_event ON stage_log (event_id, at);
    CREATE TABLE whiteboard_parts (
        event_id  TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        stroke_id TEXT NOT NULL,
        part      INTEGER NOT NULL,
        page      INTEGER NOT NULL,
        at        DOUBLE PRECISION NOT NULL,
        data      TEXT NOT NULL,
        PRIMARY KEY (event_id, stroke_id, part)
    );
    CREATE INDEX whiteboard_parts_page ON whiteboard_parts (event_id, page);
    """,
    # 16: an event's external player (webinar.content.external): the YouTube, Vimeo, Zoom or
    # other allowed player link as the organiser entered it; NULL: none.
    """
    ALTER TABLE events ADD COLUMN external_url TEXT NULL;
    """,
    # 17: downloads of an event's files by people in its room (webinar.content.library),
    # counted for the engagement export: one row per download, at most one per person and
    # file a minute. person_key is attendance's (webinar.rooms.state.person_key_for); the row
    # stays when the file is deleted (file_name keeps what it was called).
    Migration(
        sqlite="""
    CREATE TABLE content_downloads (
        download_id INTEGER PRIMARY KEY,
        event_id    TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        content_id  TEXT NOT NULL,
        file_name   TEXT NOT NULL,
        person_key  TEXT NOT NULL CHECK (length(person_key) BETWEEN 1 AND 200),
        at          REAL NOT NULL
    );
    CREATE INDEX content_downloads_event ON content_downloads (event_id, person_key);
    CREATE INDEX content_downloads_file ON content_downloads (content_id, person_key, at);
    """,
        postgresql="""
    CREATE TABLE content_downloads (
        download_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        event_id    TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        content_id  TEXT NOT NULL,
        file_name   TEXT NOT NULL,
        person_key  TEXT NOT NULL CHECK (length(person_key) BETWEEN 1 AND 200),
        at          DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX content_downloads_event ON content_downloads (event_id, person_key);
    CREATE INDEX content_downloads_file ON content_downloads (content_id, person_key, at);
    """,
    ),
    # 18: presentations rendered to page images (webinar.content.presentations): the pages
    # are <shared_dir>/content/<event_id>/<content_id>.pages/<n>.webp. pages is NULL until
    # render_status is 'ready'; render_message is the failure ({"code": ..., ...} JSON,
    # worded for people when shown). A rendering is claimed by one worker (render_claim, a
    # random token) which renews render_at while it works: a claim whose render_at is old
    # was left by a worker that died, and is taken over.
    """
    ALTER TABLE content_files ADD COLUMN pages INTEGER NULL CHECK (pages > 0);
    ALTER TABLE content_files ADD COLUMN render_status TEXT NOT NULL DEFAULT 'none'
        CHECK (render_status IN ('none', 'rendering', 'ready', 'failed'));
    ALTER TABLE content_files ADD COLUMN render_message TEXT NULL;
    ALTER TABLE content_files ADD COLUMN render_claim TEXT NULL;
    ALTER TABLE content_files ADD COLUMN render_at TEXT NULL;
    CREATE INDEX content_files_render ON content_files (render_status);
    """,
    # 19: registration for every event (webinar.ticketing.records): an event may require it
    # (free or paid), with a waiting list when its places are taken, a page to send people to
    # after registering, and the organiser's privacy text for a consent checkbox; each
    # registration gets a personal join link's secret (``pass``, sealed, looked up by its
    # hash), the privacy text the person agreed to, and the status 'waitlisted'.
    # SQLite cannot alter a CHECK: the table's text in sqlite_master is edited in place, the
    # documented way to loosen one (sqlite.org/lang_altertable.html, "other kinds of table
    # schema changes"); the RENAME COLUMN after it makes this connection read the new text.
    Migration(
        sqlite="""
    ALTER TABLE registrations ADD COLUMN pass_new TEXT NULL;
    PRAGMA writable_schema = ON;
    UPDATE sqlite_master SET sql = replace(sql,
        'CHECK (status IN (''pending'', ''confirmed'', ''rejected'', ''cancelled''))',
        'CHECK (status IN (''pending'', ''confirmed'', ''rejected'', ''cancelled'','
        || ' ''waitlisted''))')
        WHERE type = 'table' AND name = 'registrations';
    PRAGMA writable_schema = OFF;
    ALTER TABLE registrations RENAME COLUMN pass_new TO pass;
    ALTER TABLE registrations ADD COLUMN pass_hash TEXT NULL;
    CREATE UNIQUE INDEX registrations_pass_hash ON registrations (pass_hash);
    ALTER TABLE registrations ADD COLUMN consent TEXT NULL;
    CREATE INDEX registrations_status ON registrations (event_id, status, registration_id);
    ALTER TABLE event_access ADD COLUMN registration_required INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE event_access ADD COLUMN waiting_list INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE event_access ADD COLUMN registration_redirect_url TEXT NULL;
    ALTER TABLE event_access ADD COLUMN privacy_text TEXT NOT NULL DEFAULT '';
    ALTER TABLE event_access ADD COLUMN privacy_url TEXT NULL;
    """,
        postgresql="""
    ALTER TABLE registrations DROP CONSTRAINT registrations_status_check;
    ALTER TABLE registrations ADD CONSTRAINT registrations_status_check
        CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled', 'waitlisted'));
    ALTER TABLE registrations ADD COLUMN pass TEXT NULL;
    ALTER TABLE registrations ADD COLUMN pass_hash TEXT NULL;
    CREATE UNIQUE INDEX registrations_pass_hash ON registrations (pass_hash);
    ALTER TABLE registrations ADD COLUMN consent TEXT NULL;
    CREATE INDEX registrations_status ON registrations (event_id, status, registration_id);
    ALTER TABLE event_access ADD COLUMN registration_required INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE event_access ADD COLUMN waiting_list INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE event_access ADD COLUMN registration_redirect_url TEXT NULL;
    ALTER TABLE event_access ADD COLUMN privacy_text TEXT NOT NULL DEFAULT '';
    ALTER TABLE event_access ADD COLUMN privacy_url TEXT NULL;
    """,
    ),
    # 20: after the event (webinar.attendance, webinar.followup). Attendance keeps the device
    # (desktop, phone, tablet, other, unknown; NULL: recorded before, read again from the
    # user agent) and its model, and the language the person used in the room. When an event
    # ended (event_endings: ended for all by its host, or its scheduled end passed with the
    # room empty; once). Ratings: one per person and event (rater: "e:" + their e-mail
    # address, else "p:" + attendance's person key), a later one replaces it. The thank-you
    # e-mail's settings per event (event_followup; no row: the defaults, on) and one row per
    # recipient (thank_you_mails), claimed before it is sent and marked after, so each goes out
    # once, also across a restart; queued_at says the event's e-mails were planned. Events
    # made before keep their old behaviour: no thank-you e-mail unless switched on. Recording
    # viewers who gave their address at the e-mail gate (a lead) are told from those who
    # opened a personal link (gate); earlier viewers of gated publications count as leads.
    """
    ALTER TABLE attendance ADD COLUMN device TEXT NULL;
    ALTER TABLE attendance ADD COLUMN device_model TEXT NOT NULL DEFAULT '';
    ALTER TABLE attendance ADD COLUMN language TEXT NULL;
    CREATE TABLE event_endings (
        event_id TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        ended_at DOUBLE PRECISION NOT NULL,
        how      TEXT NOT NULL CHECK (how IN ('ended-for-all', 'scheduled-end'))
    );
    CREATE TABLE ratings (
        event_id   TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        rater      TEXT NOT NULL CHECK (length(rater) BETWEEN 3 AND 300),
        name       TEXT NOT NULL,
        email      TEXT NULL,
        person_key TEXT NULL,
        stars      INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
        comment    TEXT NOT NULL DEFAULT '',
        via        TEXT NOT NULL CHECK (via IN ('room', 'email')),
        rated_at   DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (event_id, rater)
    );
    CREATE TABLE event_followup (
        event_id          TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        thank_you         INTEGER NOT NULL DEFAULT 1 CHECK (thank_you IN (0, 1)),
        thank_you_subject TEXT NOT NULL DEFAULT '',
        thank_you_text    TEXT NOT NULL DEFAULT '',
        delay_minutes     INTEGER NOT NULL DEFAULT 0 CHECK (delay_minutes BETWEEN 0 AND 10080),
        queued_at         DOUBLE PRECISION NULL
    );
    INSERT INTO event_followup (event_id, thank_you) SELECT event_id, 0 FROM events;
    CREATE TABLE thank_you_mails (
        event_id   TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        email      TEXT NOT NULL,
        name       TEXT NOT NULL,
        language   TEXT NULL,
        state      TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
        attempts   INTEGER NOT NULL DEFAULT 0,
        due_at     DOUBLE PRECISION NOT NULL,
        message_id TEXT NULL,
        sent_at    DOUBLE PRECISION NULL,
        error      TEXT NULL,
        PRIMARY KEY (event_id, email)
    );
    CREATE INDEX thank_you_mails_due ON thank_you_mails (state, due_at);
    ALTER TABLE recording_viewers ADD COLUMN gate INTEGER NOT NULL DEFAULT 0
        CHECK (gate IN (0, 1));
    UPDATE recording_viewers SET gate = 1 WHERE publication_id IN
        (SELECT publication_id FROM recording_publications WHERE require_email = 1);
    """,
    # 21: accounts run from the browser (webinar.storage.accounts): an account's e-mail
    # address (unique, any case; NULL: none yet), invitations of new accounts and password
    # resets (only the SHA-256 of each link's token is kept; single-use: used_at /
    # accepted_at), the co-organisers of an event (accounts that manage it besides its
    # owner) and its presenters (people e-mailed the presenter link).
    Migration(
        sqlite="""
    ALTER TABLE users ADD COLUMN email TEXT NULL;
    CREATE UNIQUE INDEX users_email ON users (lower(email));
    CREATE TABLE account_invitations (
        invitation_id INTEGER PRIMARY KEY,
        email         TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
        role          TEXT NOT NULL CHECK (role IN ('admin', 'organiser')),
        token_hash    TEXT NOT NULL UNIQUE,
        invited_by    INTEGER NULL REFERENCES users (user_id) ON DELETE SET NULL,
        created_at    TEXT NOT NULL,
        expires_at    TEXT NOT NULL,
        accepted_at   TEXT NULL,
        user_id       INTEGER NULL REFERENCES users (user_id) ON DELETE SET NULL
    );
    CREATE UNIQUE INDEX account_invitations_open ON account_invitations (lower(email))
        WHERE accepted_at IS NULL;
    CREATE TABLE password_resets (
        token_hash TEXT PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at    TEXT NULL
    );
    CREATE INDEX password_resets_user ON password_resets (user_id, created_at);
    CREATE TABLE event_organisers (
        event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        user_id  INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        added_by INTEGER NULL REFERENCES users (user_id) ON DELETE SET NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (event_id, user_id)
    );
    CREATE INDEX event_organisers_user ON event_organisers (user_id);
    CREATE TABLE event_presenters (
        presenter_id INTEGER PRIMARY KEY,
        event_id     TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        email        TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
        added_at     TEXT NOT NULL,
        sent_at      TEXT NULL
    );
    CREATE UNIQUE INDEX event_presenters_email ON event_presenters (event_id, lower(email));
    """,
        postgresql="""
    ALTER TABLE users ADD COLUMN email TEXT NULL;
    CREATE UNIQUE INDEX users_email ON users (lower(email));
    CREATE TABLE account_invitations (
        invitation_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        email         TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
        role          TEXT NOT NULL CHECK (role IN ('admin', 'organiser')),
        token_hash    TEXT NOT NULL UNIQUE,
        invited_by    BIGINT NULL REFERENCES users (user_id) ON DELETE SET NULL,
        created_at    TEXT NOT NULL,
        expires_at    TEXT NOT NULL,
        accepted_at   TEXT NULL,
        user_id       BIGINT NULL REFERENCES users (user_id) ON DELETE SET NULL
    );
    CREATE UNIQUE INDEX account_invitations_open ON account_invitations (lower(email))
        WHERE accepted_at IS NULL;
    CREATE TABLE password_resets (
        token_hash TEXT PRIMARY KEY,
        user_id    BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at    TEXT NULL
    );
    CREATE INDEX password_resets_user ON password_resets (user_id, created_at);
    CREATE TABLE event_organisers (
        event_id TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        user_id  BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        added_by BIGINT NULL REFERENCES users (user_id) ON DELETE SET NULL,
        added_at TEXT NOT NULL,
        PRIMARY KEY (event_id, user_id)
    );
    CREATE INDEX event_organisers_user ON event_organisers (user_id);
    CREATE TABLE event_presenters (
        presenter_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        event_id     TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        email        TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
        added_at     TEXT NOT NULL,
        sent_at      TEXT NULL
    );
    CREATE UNIQUE INDEX event_presenters_email ON event_presenters (event_id, lower(email));
    """,
    ),
    # 22: e-mail to an event's people (webinar.ticketing.mailing, .outbox): per event, the
    # calendar entry's SEQUENCE (grows with each change people are sent) and when reminders go
    # out (NULL: 60 minutes before the start; 0: none); invitees of every access type in a
    # language of their own, with the extra columns of the CSV they came from; the outbox, one
    # row per message (an invitation, an update after the event moved, a cancellation) to an
    # invitee, a registrant or a presenter, sent by one worker and recorded so that a restart
    # sends each exactly once (claimed_at: when its sender took it), its links under the
    # address the organiser used (base_url; NULL: the server's); the CSV imports an organiser
    # previewed (their good rows and their problems) until they are sent; presenters' reminders.
    Migration(
        sqlite="""
    CREATE TABLE event_mail (
        event_id          TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        calendar_sequence INTEGER NOT NULL DEFAULT 0 CHECK (calendar_sequence >= 0),
        reminder_minutes  INTEGER NULL
                          CHECK (reminder_minutes IS NULL OR reminder_minutes BETWEEN 0 AND 10080)
    );
    ALTER TABLE invitees ADD COLUMN language TEXT NULL;
    ALTER TABLE invitees ADD COLUMN fields TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE mail_outbox (
        item_id         INTEGER PRIMARY KEY,
        event_id        TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        kind            TEXT NOT NULL CHECK (kind IN ('invitation', 'update', 'cancel')),
        invitee_id      INTEGER NULL REFERENCES invitees (invitee_id) ON DELETE CASCADE,
        registration_id INTEGER NULL
                        REFERENCES registrations (registration_id) ON DELETE CASCADE,
        presenter_id    INTEGER NULL
                        REFERENCES event_presenters (presenter_id) ON DELETE CASCADE,
        seq             INTEGER NOT NULL DEFAULT 0,
        state           TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'sending', 'sent', 'skipped', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        message_id      TEXT NULL,
        message_to      TEXT NULL,
        error           TEXT NULL,
        created_at      TEXT NOT NULL,
        retry_at        TEXT NULL,
        sent_at         TEXT NULL,
        base_url        TEXT NULL,
        claimed_at      TEXT NULL
    );
    CREATE INDEX mail_outbox_due ON mail_outbox (state, retry_at);
    CREATE INDEX mail_outbox_event ON mail_outbox (event_id, kind, state);
    CREATE INDEX mail_outbox_invitee ON mail_outbox (invitee_id);
    CREATE INDEX mail_outbox_registration ON mail_outbox (registration_id);
    CREATE INDEX mail_outbox_presenter ON mail_outbox (presenter_id);
    CREATE TABLE invite_imports (
        import_id  TEXT PRIMARY KEY,
        event_id   TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        file_name  TEXT NOT NULL DEFAULT '',
        line_count INTEGER NOT NULL,
        entries    TEXT NOT NULL,
        problems   TEXT NOT NULL,
        created_at TEXT NOT NULL,
        sent_at    TEXT NULL
    );
    CREATE INDEX invite_imports_event ON invite_imports (event_id, created_at);
    ALTER TABLE reminders ADD COLUMN presenter_id INTEGER NULL
        REFERENCES event_presenters (presenter_id) ON DELETE CASCADE;
    CREATE UNIQUE INDEX reminders_presenter ON reminders (presenter_id);
    """,
        postgresql="""
    CREATE TABLE event_mail (
        event_id          TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        calendar_sequence BIGINT NOT NULL DEFAULT 0 CHECK (calendar_sequence >= 0),
        reminder_minutes  BIGINT NULL
                          CHECK (reminder_minutes IS NULL OR reminder_minutes BETWEEN 0 AND 10080)
    );
    ALTER TABLE invitees ADD COLUMN language TEXT NULL;
    ALTER TABLE invitees ADD COLUMN fields TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE mail_outbox (
        item_id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        event_id        TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        kind            TEXT NOT NULL CHECK (kind IN ('invitation', 'update', 'cancel')),
        invitee_id      BIGINT NULL REFERENCES invitees (invitee_id) ON DELETE CASCADE,
        registration_id BIGINT NULL
                        REFERENCES registrations (registration_id) ON DELETE CASCADE,
        presenter_id    BIGINT NULL
                        REFERENCES event_presenters (presenter_id) ON DELETE CASCADE,
        seq             BIGINT NOT NULL DEFAULT 0,
        state           TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'sending', 'sent', 'skipped', 'failed')),
        attempts        BIGINT NOT NULL DEFAULT 0,
        message_id      TEXT NULL,
        message_to      TEXT NULL,
        error           TEXT NULL,
        created_at      TEXT NOT NULL,
        retry_at        TEXT NULL,
        sent_at         TEXT NULL,
        base_url        TEXT NULL,
        claimed_at      TEXT NULL
    );
    CREATE INDEX mail_outbox_due ON mail_outbox (state, retry_at);
    CREATE INDEX mail_outbox_event ON mail_outbox (event_id, kind, state);
    CREATE INDEX mail_outbox_invitee ON mail_outbox (invitee_id);
    CREATE INDEX mail_outbox_registration ON mail_outbox (registration_id);
    CREATE INDEX mail_outbox_presenter ON mail_outbox (presenter_id);
    CREATE TABLE invite_imports (
        import_id  TEXT PRIMARY KEY,
        event_id   TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        file_name  TEXT NOT NULL DEFAULT '',
        line_count BIGINT NOT NULL,
        entries    TEXT NOT NULL,
        problems   TEXT NOT NULL,
        created_at TEXT NOT NULL,
        sent_at    TEXT NULL
    );
    CREATE INDEX invite_imports_event ON invite_imports (event_id, created_at);
    ALTER TABLE reminders ADD COLUMN presenter_id BIGINT NULL
        REFERENCES event_presenters (presenter_id) ON DELETE CASCADE;
    CREATE UNIQUE INDEX reminders_presenter ON reminders (presenter_id);
    """,
    ),
    # 23: who watches the event over HLS (webinar.broadcast.hls) instead of WebRTC: nobody
    # ('off'), every attendee ('all'), or the attendees beyond the first hls_overflow_after
    # ('overflow').
    """
    ALTER TABLE events ADD COLUMN hls_mode TEXT NOT NULL DEFAULT 'off'
        CHECK (hls_mode IN ('off', 'all', 'overflow'));
    ALTER TABLE events ADD COLUMN hls_overflow_after INTEGER NOT NULL DEFAULT 100
        CHECK (hls_overflow_after BETWEEN 0 AND 100000);
    """,
    # 24: where an event's live stream goes (webinar.broadcast.settings): the RTMP(S) ingest
    # URL and the stream key, sealed (webinar.storage.sealing, column stream_key).
    """
    CREATE TABLE event_stream_out (
        event_id   TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        url        TEXT NOT NULL,
        stream_key TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    # 25: emoji reactions sent in an event's room (webinar.rooms.reactions), per person and
    # reaction, for the engagement export: counts added in batches (one row each, summed);
    # person_key is attendance's (webinar.rooms.state.person_key_for).
    """
    CREATE TABLE reaction_counts (
        event_id   TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        person_key TEXT NOT NULL CHECK (length(person_key) BETWEEN 1 AND 200),
        reaction   TEXT NOT NULL CHECK (length(reaction) BETWEEN 1 AND 40),
        count      INTEGER NOT NULL CHECK (count >= 0),
        PRIMARY KEY (event_id, person_key, reaction)
    );
    """,
    # 26: branding (webinar.storage.branding): an organiser's and an event's logo, accent
    # colour, lobby/room background and organiser name; an event's value overrides its
    # owner's, NULL means "not set here". The images are files named by their id under
    # <data_dir>/branding (webinar.content.branding).
    """
    CREATE TABLE user_branding (
        user_id        BIGINT PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
        logo_id        TEXT NULL,
        background_id  TEXT NULL,
        accent_colour  TEXT NULL,
        organiser_name TEXT NULL,
        updated_at     TEXT NOT NULL
    );
    CREATE TABLE event_branding (
        event_id       TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        logo_id        TEXT NULL,
        background_id  TEXT NULL,
        accent_colour  TEXT NULL,
        organiser_name TEXT NULL,
        updated_at     TEXT NOT NULL
    );
    """,
    # 27: live captions (webinar.rooms.captions): the final lines with their wall-clock
    # times, the room's switch and its captioners (person keys, a JSON list); a recording's
    # wall-clock spans (it ran; paused time left out, a JSON list of [start, end]) and how
    # many seconds trimming took off its start, to map captions onto its time
    # (webinar.recordings.captions).
    """
    CREATE TABLE caption_lines (
        line_id        TEXT PRIMARY KEY,
        event_id       TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
        seq            BIGINT NOT NULL,
        participant_id TEXT NOT NULL,
        name           TEXT NOT NULL,
        text           TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 500),
        at             DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX caption_lines_event ON caption_lines (event_id, seq);
    CREATE TABLE caption_settings (
        event_id   TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
        enabled    INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
        captioners TEXT NOT NULL DEFAULT '[]'
    );
    ALTER TABLE recordings ADD COLUMN spans TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE recordings ADD COLUMN trimmed_seconds DOUBLE PRECISION NOT NULL DEFAULT 0;
    """,
    # 28: the room's reactions switch (webinar.rooms.reactions.ReactionSettings): whether
    # attendees may send emoji reactions, kept with the chat's and Q&A's switches.
    """
    ALTER TABLE interaction_settings ADD COLUMN reactions_enabled INTEGER NOT NULL DEFAULT 1
        CHECK (reactions_enabled IN (0, 1));
    """,
)


#: PostgreSQL starts at this version: :data:`POSTGRESQL_BASELINE` is the schema SQLite has
#: after the first ``POSTGRESQL_BASELINE_VERSION`` migrations, written for PostgreSQL.
POSTGRESQL_BASELINE_VERSION = 10


def script_for(migration: str | Migration, dialect: Dialect) -> str:
    if isinstance(migration, str):
        return migration
    return migration.postgresql if dialect is Dialect.POSTGRESQL else migration.sqlite


#: The tables whose queries order by SQLite's implicit ``rowid`` (insertion order, the tie
#: breaker of equal times): on PostgreSQL they have an explicit ``rowid`` identity column.
ROWID_TABLES = ("events", "polls", "cta_prepared", "webhook_deliveries")

# Types: TEXT as in SQLite (times are ISO-8601 text, as there); REAL is DOUBLE PRECISION;
# INTEGER is BIGINT (SQLite's integers are 64-bit); an INTEGER PRIMARY KEY (SQLite's rowid) is
# a BIGINT identity, BY DEFAULT so that `webinar db copy` can keep the IDs it copies.
# COLLATE NOCASE becomes a unique index on lower(...) and lower() in the queries.
POSTGRESQL_BASELINE = """
CREATE TABLE users (
    user_id       BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    username      TEXT NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'organiser')),
    created_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (lower(username));
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE TABLE events (
    event_id      TEXT PRIMARY KEY CHECK (event_id ~ '^[0-9]{9}$'),
    title         TEXT NOT NULL,
    presenter_key TEXT NOT NULL,
    starts_at     TEXT NULL,
    created_at    TEXT NOT NULL,
    host_key      TEXT NOT NULL DEFAULT '',
    agenda        TEXT NOT NULL DEFAULT '',
    lobby_message TEXT NOT NULL DEFAULT '',
    join_window_minutes BIGINT NOT NULL DEFAULT 5 CHECK (join_window_minutes BETWEEN 0 AND 1440),
    thank_you_url TEXT NULL,
    owner_id      BIGINT NULL REFERENCES users (user_id) ON DELETE SET NULL,
    timezone      TEXT NOT NULL DEFAULT 'UTC',
    duration_minutes BIGINT NOT NULL DEFAULT 60 CHECK (duration_minutes BETWEEN 1 AND 1440),
    access_type   TEXT NOT NULL DEFAULT 'open'
                  CHECK (access_type IN ('open', 'password', 'token', 'paid')),
    camera_limit  BIGINT NOT NULL DEFAULT 4 CHECK (camera_limit BETWEEN 1 AND 7),
    rowid         BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE
);
CREATE INDEX events_created_at ON events (created_at);
CREATE INDEX events_owner ON events (owner_id);
CREATE TABLE chat_messages (
    message_id     TEXT PRIMARY KEY,
    event_id       TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    seq            BIGINT NOT NULL,
    participant_id TEXT NOT NULL,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL,
    text           TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
    at             DOUBLE PRECISION NOT NULL,
    deleted_at     DOUBLE PRECISION NULL,
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
    anonymous      BIGINT NOT NULL CHECK (anonymous IN (0, 1)),
    asked_at       DOUBLE PRECISION NOT NULL,
    message_id     TEXT NULL,
    state          TEXT NOT NULL CHECK (state IN ('new', 'answered', 'dismissed')),
    published_at   DOUBLE PRECISION NULL
);
CREATE INDEX questions_event ON questions (event_id, asked_at);
CREATE TABLE question_votes (
    question_id TEXT NOT NULL REFERENCES questions (question_id) ON DELETE CASCADE,
    voter_key   TEXT NOT NULL,
    voted_at    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (question_id, voter_key)
);
CREATE TABLE polls (
    poll_id       TEXT PRIMARY KEY,
    event_id      TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    title         TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('poll', 'test')),
    definition    TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('draft', 'open', 'closed')),
    results_shown BIGINT NOT NULL DEFAULT 0,
    created_at    DOUBLE PRECISION NOT NULL,
    launched_at   DOUBLE PRECISION NULL,
    closed_at     DOUBLE PRECISION NULL,
    rowid         BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE
);
CREATE INDEX polls_event ON polls (event_id, created_at);
CREATE TABLE poll_answers (
    poll_id        TEXT NOT NULL REFERENCES polls (poll_id) ON DELETE CASCADE,
    question_id    TEXT NOT NULL,
    voter_key      TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    name           TEXT NOT NULL,
    option_ids     TEXT NOT NULL,
    text           TEXT NULL,
    correct        BIGINT NULL,
    answered_at    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (poll_id, question_id, voter_key)
);
CREATE TABLE ctas (
    cta_id           TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    message          TEXT NOT NULL CHECK (length(message) BETWEEN 1 AND 54),
    button           TEXT NOT NULL,
    url              TEXT NOT NULL,
    duration_seconds BIGINT NULL,
    shown_at         DOUBLE PRECISION NOT NULL,
    shown_by         TEXT NOT NULL,
    closed_at        DOUBLE PRECISION NULL
);
CREATE INDEX ctas_event ON ctas (event_id, shown_at);
CREATE TABLE cta_clicks (
    click_id       BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    cta_id         TEXT NOT NULL REFERENCES ctas (cta_id) ON DELETE CASCADE,
    participant_id TEXT NOT NULL,
    name           TEXT NOT NULL,
    clicked_at     DOUBLE PRECISION NOT NULL
);
CREATE INDEX cta_clicks_cta ON cta_clicks (cta_id);
CREATE TABLE interaction_settings (
    event_id          TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
    chat_enabled      BIGINT NOT NULL DEFAULT 1,
    slow_mode_seconds BIGINT NOT NULL DEFAULT 0,
    qa_open           BIGINT NOT NULL DEFAULT 1,
    published_question_id TEXT NULL,
    chat_muted        TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE poll_images (
    image_id     TEXT PRIMARY KEY,
    event_id     TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL
);
CREATE TABLE recordings (
    recording_id     TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    started_at       TEXT NOT NULL,
    ended_at         TEXT NOT NULL,
    duration_seconds DOUBLE PRECISION NOT NULL CHECK (duration_seconds >= 0),
    size_bytes       BIGINT NOT NULL CHECK (size_bytes >= 0),
    files            TEXT NOT NULL
);
CREATE INDEX recordings_event ON recordings (event_id, started_at);
CREATE TABLE event_recording (
    event_id    TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
    auto_record BIGINT NOT NULL DEFAULT 0 CHECK (auto_record IN (0, 1))
);
CREATE TABLE attendance (
    session_id     BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    event_id       TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    person_key     TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    name           TEXT NOT NULL,
    email          TEXT NULL,
    role           TEXT NOT NULL,
    joined_at      DOUBLE PRECISION NOT NULL,
    left_at        DOUBLE PRECISION NULL,
    leave_reason   TEXT NULL,
    user_agent     TEXT NOT NULL DEFAULT '',
    browser        TEXT NOT NULL DEFAULT '',
    os             TEXT NOT NULL DEFAULT ''
);
CREATE INDEX attendance_event ON attendance (event_id, joined_at);
CREATE INDEX attendance_participant ON attendance (participant_id);
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE recording_publications (
    publication_id TEXT PRIMARY KEY,
    recording_id   TEXT NOT NULL REFERENCES recordings (recording_id) ON DELETE CASCADE,
    expires_at     DOUBLE PRECISION NOT NULL,
    require_email  BIGINT NOT NULL CHECK (require_email IN (0, 1)),
    created_at     DOUBLE PRECISION NOT NULL
);
CREATE INDEX recording_publications_recording ON recording_publications (recording_id);
CREATE TABLE recording_viewers (
    viewer_id      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    publication_id TEXT NOT NULL
                   REFERENCES recording_publications (publication_id) ON DELETE CASCADE,
    event_id       TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    first_viewed   DOUBLE PRECISION NOT NULL,
    UNIQUE (publication_id, email)
);
CREATE INDEX recording_viewers_event ON recording_viewers (event_id);
CREATE TABLE event_access (
    event_id                TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
    attendee_password_hash  TEXT NULL,
    presenter_password_hash TEXT NULL,
    price_minor             BIGINT NULL CHECK (price_minor IS NULL OR price_minor > 0),
    currency                TEXT NULL,
    capacity                BIGINT NULL CHECK (capacity IS NULL OR capacity >= 1),
    second_device           TEXT NOT NULL DEFAULT 'takeover'
                            CHECK (second_device IN ('takeover', 'refuse')),
    payment_provider        TEXT NOT NULL DEFAULT 'manual'
                            CHECK (payment_provider IN ('manual', 'stripe')),
    settings_changed_at     TEXT NULL,
    form_fields             TEXT NOT NULL DEFAULT '[]',
    cancelled_at            TEXT NULL
);
CREATE TABLE invitees (
    invitee_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    event_id   TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    email      TEXT NOT NULL,
    token      TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    sent_at    TEXT NULL,
    revoked_at TEXT NULL
);
CREATE UNIQUE INDEX invitees_event_email ON invitees (event_id, lower(email));
CREATE TABLE registrations (
    registration_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    first_name      TEXT NOT NULL,
    last_name       TEXT NOT NULL,
    email           TEXT NOT NULL,
    seats           BIGINT NOT NULL DEFAULT 1 CHECK (seats BETWEEN 1 AND 100),
    status          TEXT NOT NULL
                    CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
    amount_minor    BIGINT NOT NULL DEFAULT 0,
    currency        TEXT NULL,
    provider        TEXT NOT NULL DEFAULT 'manual',
    provider_ref    TEXT NULL UNIQUE,
    code            TEXT NULL,
    code_hash       TEXT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    confirmed_at    TEXT NULL,
    checked_in_at   TEXT NULL,
    answers         TEXT NOT NULL DEFAULT '{}'
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
    reminder_id     BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    registration_id BIGINT NULL UNIQUE
                    REFERENCES registrations (registration_id) ON DELETE CASCADE,
    invitee_id      BIGINT NULL UNIQUE REFERENCES invitees (invitee_id) ON DELETE CASCADE,
    due_at          TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'skipped', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    sent_at         TEXT NULL,
    message_id      TEXT NULL,
    message_to      TEXT NULL,
    retry_at        TEXT NULL
);
CREATE INDEX reminders_due ON reminders (state, due_at);
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE cta_prepared (
    prepared_id      TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events (event_id) ON DELETE CASCADE,
    message          TEXT NOT NULL,
    button           TEXT NOT NULL,
    url              TEXT NOT NULL,
    duration_seconds BIGINT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    rowid            BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE
);
CREATE INDEX cta_prepared_event ON cta_prepared (event_id, created_at);
CREATE TABLE webhook_endpoints (
    endpoint_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    owner_id    BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    url         TEXT NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    secret      TEXT NOT NULL,
    events      TEXT NOT NULL DEFAULT '*',
    created_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (owner_id);
CREATE TABLE webhook_deliveries (
    delivery_id     TEXT PRIMARY KEY,
    endpoint_id     BIGINT NOT NULL
                    REFERENCES webhook_endpoints (endpoint_id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    event_id        TEXT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    finished_at     DOUBLE PRECISION NULL,
    rowid           BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (delivery_id) ON DELETE CASCADE,
    attempt     BIGINT NOT NULL,
    at          DOUBLE PRECISION NOT NULL,
    http_status BIGINT NULL,
    error       TEXT NULL,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
"""


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


def _too_new(version: int) -> StoreError:
    return StoreError(
        f"database schema version {version} is newer than this program knows "
        f"({len(MIGRATIONS)}); upgrade webinar"
    )


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a SQLite schema up to date, all pending migrations in one transaction."""
    conn.execute("BEGIN IMMEDIATE")  # also serialises two processes migrating at once
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > len(MIGRATIONS):
            raise _too_new(version)
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in _statements(script_for(migration, Dialect.SQLITE)):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number:d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def postgresql_version(db: Database) -> int:
    """The schema version of a PostgreSQL database (0: nothing created yet)."""
    (exists,) = db.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists:
        return 0
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def migrate_postgresql(db: Database) -> int:
    """Bring a PostgreSQL schema up to date in one transaction; the version it is at.

    An advisory lock makes nodes that start at once migrate one after the other (the
    second finds the work done). A new database gets :data:`POSTGRESQL_BASELINE` first."""
    db.execute("BEGIN")
    try:
        db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATE_LOCK_KEY,))
        version = postgresql_version(db)
        if version > len(MIGRATIONS):
            raise _too_new(version)
        if version == 0:
            db.execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
            for statement in _statements(POSTGRESQL_BASELINE):
                db.execute(statement)
            version = POSTGRESQL_BASELINE_VERSION
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in _statements(script_for(migration, Dialect.POSTGRESQL)):
                db.execute(statement)
            db.execute("UPDATE schema_version SET version = ?", (number,))
            version = number
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return version
