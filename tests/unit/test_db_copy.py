"""`webinar db copy --to postgresql://…` moves a populated single-machine install to PostgreSQL
without losing a row: every table is compared row by row, then the copy is read back through
the server's own store code."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from webinar.broadcast import settings as stream_out
from webinar.interaction import store as ist
from webinar.rooms.chat import ChatMessage
from webinar.rooms.cta import CallToAction, PreparedCta
from webinar.rooms.polls import (
    Answer,
    Option,
    Poll,
    PollKind,
    PollQuestion,
    PollState,
    QuestionKind,
)
from webinar.rooms.qa import Question, QuestionState
from webinar.storage import accounts, branding
from webinar.storage.copy import tables_in_foreign_key_order
from webinar.storage.migrations import ROWID_TABLES
from webinar.storage.records import SessionRecord
from webinar.storage.store import DB_FILENAME, MIGRATIONS, Store, SyncStore
from webinar.ticketing import embedding, imports, join_tokens, mailing, records
from webinar.ticketing.records import PaymentProvider
from webinar.webhooks import records as hooks
from webinar.webhooks.signing import WebhookEvent

SRC = Path(__file__).resolve().parents[2] / "src"


def populate(core: SyncStore) -> list[str]:
    """An install with a row in every table, made through the store's own code (the
    recordings' metadata, attendance and publications as their services write them)."""
    conn = core.connection
    admin = core.create_user("Admin", "hash-a", "admin")
    olga = core.create_user("olga", "hash-o", "organiser")
    now = datetime.now(UTC)
    core.create_session(SessionRecord("tok", olga.user_id, "csrf", now, now + timedelta(days=1)))
    records.add_api_token(conn, olga.user_id, "ci")
    events = [
        core.create_event(
            f"{kind} event",
            now + timedelta(days=10),
            owner_id=olga.user_id,
            access_type=kind,
            agenda="Agenda with 100% of the ? marks",
        )
        for kind in ("open", "password", "token", "paid")
    ]
    core.create_event("Unowned", None)
    paid, token = events[3].event_id, events[2].event_id
    access = records.get_access(conn, paid)
    records.put_access(
        conn, records.dataclasses.replace(access, price_minor=1200, currency="EUR", capacity=50)
    )
    invitee = records.add_invitee(conn, token, "Ivy Invited", "ivy@example.org")
    records.plan_reminder(conn, token, events[2].starts_at, now, invitee_id=invitee.invitee_id)
    # e-mail: the calendar's SEQUENCE, a queued invitation, a previewed CSV import
    mailing.bump_sequence(conn, token)
    mailing.enqueue(conn, token, mailing.Kind.INVITATION, invitee_id=invitee.invitee_id)
    mailing.save_import(
        conn, token, imports.parse_invitees(b"name,email\nZoe,zoe@example.org\nx\n")
    )
    reg = records.add_registration(
        conn,
        paid,
        first_name="Paula",
        last_name="Paid",
        email="paula@example.org",
        seats=3,
        amount_minor=3600,
        currency="EUR",
        provider=PaymentProvider.STRIPE,
        capacity=50,
        answers={"Company": "Example Ltd"},
    )
    records.apply_payment_once(conn, "stripe", "evt_1", reg.registration_id)
    records.plan_reminder(conn, paid, events[3].starts_at, now, registration_id=reg.registration_id)
    # interaction, on the open event
    eid = events[0].event_id
    for seq in (1, 2, 3):
        ist.save_chat(
            core, eid, ChatMessage(f"m{seq}", seq, "p1", "Ann", "attendee", f"hello {seq}", 100.5)
        )
    ist.delete_chat(core, "m2", 101.0, "host")
    ist.save_question(
        core,
        eid,
        Question("q1", "p1", "k1", "Ann", "Why?", False, 102.25, None, QuestionState.ANSWERED),
    )
    ist.set_vote(core, "q1", "k2", True, 103.0)
    ist.save_settings(
        core,
        eid,
        chat_enabled=True,
        slow_mode_seconds=3,
        qa_open=False,
        published_question_id="q1",
        reactions_enabled=False,  # the reactions switch (migration 28) is copied too
    )
    ist.save_image(core, "img1", eid, "image/png", 1234, 104.0)
    poll = Poll(
        "poll1",
        "Which?",
        PollKind.TEST,
        (
            PollQuestion(
                "pq1",
                "Pick",
                QuestionKind.SINGLE,
                (Option("o1", "A", "img1", True), Option("o2", "B")),
            ),
        ),
        PollState.CLOSED,
        True,
        105.0,
        106.0,
        107.0,
    )
    ist.save_poll(core, eid, poll)
    ist.save_poll(core, eid, Poll("poll2", "Draft", PollKind.POLL, (), created_at=105.0))
    ist.save_answers(core, (Answer("poll1", "pq1", "k1", "p1", "Ann", ("o1",), None, 106.5, True),))
    ist.save_cta(
        core, eid, CallToAction("cta1", "Buy now", "Buy", "https://x.example", 60, 108.0, "h")
    )
    ist.record_click(core, "cta1", "p1", "Ann", 109.0)
    ist.save_prepared_cta(
        core, eid, PreparedCta("pre1", "Later", "Go", "https://y.example", None, 1.0), 10
    )
    # after the event
    conn.execute(
        "INSERT INTO recordings (recording_id, event_id, started_at, ended_at, duration_seconds,"
        " size_bytes, files) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("rec1", eid, "2031-01-01T10:00:00Z", "2031-01-01T11:00:00Z", 3600.25, 10**10, "[]"),
    )
    conn.execute("INSERT INTO event_recording (event_id, auto_record) VALUES (?, ?)", (eid, True))
    conn.execute(
        "INSERT INTO recording_publications (publication_id, recording_id, expires_at,"
        " require_email, created_at) VALUES ('pub1', 'rec1', 2e9, 1, 110.0)"
    )
    conn.execute(
        "INSERT INTO recording_viewers (publication_id, event_id, email, first_viewed)"
        " VALUES ('pub1', ?, 'v@example.org', 111.0)",
        (eid,),
    )
    conn.execute(
        "INSERT INTO attendance (event_id, person_key, participant_id, name, email, role,"
        " joined_at, left_at, leave_reason) VALUES (?, 'k1', 'p1', 'Ann', NULL, 'attendee',"
        " 100.0, 200.0, 'left')",
        (eid,),
    )
    conn.execute("INSERT INTO server_secrets (name, value) VALUES ('links', ?)", (b"\x00\xffkey",))
    # webhooks, with a delivery log
    endpoint = hooks.sql_add_endpoint(
        conn, admin.user_id, "https://hooks.example", frozenset(), 1.0
    )
    hooks.sql_record(
        conn,
        [hooks.Emitted(WebhookEvent.EVENT_STARTED, eid, {"n": n}, 112.0) for n in range(3)],
    )
    delivery, _secret = hooks.sql_due(conn, 1e12, 1)[0]
    hooks.sql_attempted(conn, delivery, hooks.Attempt(1, 113.0, 500, "boom", 12), "pending", 114.0)
    assert endpoint.endpoint_id
    # join-token keys (an HS256 secret, sealed) and an event's embedding origins
    join_tokens.sql_add_key(conn, admin.user_id, "CRM")
    embedding.sql_set_origins(conn, eid, ("https://site.example", "http://127.0.0.3:8080"))
    # where the event's live stream goes (the stream key sealed)
    stream_out.sql_save(conn, eid, "rtmp://a.rtmp.youtube.com/live2", "abcd-efgh-ijkl")
    # branding: the organiser's and the event's (webinar.storage.branding)
    brand_logo = "brand_" + "0" * 24 + ".png"
    branding.sql_put_user_branding(
        conn, olga.user_id, branding.Branding(logo_id=brand_logo, organiser_name="Acme")
    )
    branding.sql_put_event_branding(conn, eid, branding.Branding(accent_colour="#1a3d8f"))
    # an uploaded file (webinar.content): its row; the file itself is on disk, not copied
    conn.execute(
        "INSERT INTO content_files (content_id, event_id, owner_id, file_name, declared_type,"
        " detected_type, size_bytes, sha256, scan_status, uploaded_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "cnt_" + "ab" * 12,
            eid,
            admin.user_id,
            "slides.pdf",
            "application/pdf",
            "application/pdf",
            1234,
            "0" * 64,
            "clean",
            "organiser",
            "2026-01-02T03:04:05+00:00",
        ),
    )
    # a download of it counted for a person (the engagement export)
    conn.execute(
        "INSERT INTO content_downloads (event_id, content_id, file_name, person_key, at)"
        " VALUES (?, ?, ?, ?, ?)",
        (eid, "cnt_" + "ab" * 12, "slides.pdf", "client:ann", 1700000000.25),
    )
    # her reactions in the room, counted (the engagement export)
    conn.execute(
        "INSERT INTO reaction_counts (event_id, person_key, reaction, count) VALUES (?, ?, ?, ?)",
        (eid, "client:ann", "clap", 12),
    )
    # a live caption line she typed as a captioner, and the room's captions switch
    conn.execute(
        "INSERT INTO caption_lines (line_id, event_id, seq, participant_id, name, text, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("cl_0123456789abcdef", eid, 1, "pa_ann", "Ann", "Welcome, everyone.", 1_700_000_100.25),
    )
    conn.execute(
        "INSERT INTO caption_settings (event_id, enabled, captioners) VALUES (?, ?, ?)",
        (eid, 1, '["client:ann"]'),
    )
    # what the live room showed on stage (webinar.content.stage): the state, a page turn, a
    # whiteboard stroke's first part
    conn.execute(
        "INSERT INTO stage_state (event_id, data, updated_at) VALUES (?, ?, ?)",
        (eid, '{"layout":"presentation"}', 1767322000.25),
    )
    conn.execute(
        "INSERT INTO stage_log (event_id, at, kind, by, data) VALUES (?, ?, ?, ?, ?)",
        (eid, 1767322000.25, "page", "p_1", '{"page":4}'),
    )
    conn.execute(
        "INSERT INTO whiteboard_parts (event_id, stroke_id, part, page, at, data)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (eid, "s1", 0, 0, 1767322001.5, '{"points":[[0.1,0.2]]}'),
    )
    # after the event (webinar.attendance, webinar.followup): its end, a rating, the
    # thank-you e-mail's settings and one recipient's e-mail
    conn.execute(
        "INSERT INTO event_endings (event_id, ended_at, how) VALUES (?, ?, 'ended-for-all')",
        (eid, 1767325600.5),
    )
    conn.execute(
        "INSERT INTO ratings (event_id, rater, name, email, person_key, stars, comment, via,"
        " rated_at) VALUES (?, 'e:ann@example.org', 'Ann', 'ann@example.org', 'client:ann', 4,"
        " 'Zoë liked it', 'room', 1767325700.25)",
        (eid,),
    )
    conn.execute(
        "INSERT INTO event_followup (event_id, thank_you, thank_you_text, queued_at)"
        " VALUES (?, 1, 'Thanks, {name}!', 1767325601.0) ON CONFLICT (event_id) DO UPDATE"
        " SET thank_you_text = excluded.thank_you_text, queued_at = excluded.queued_at",
        (eid,),
    )
    conn.execute(
        "INSERT INTO thank_you_mails (event_id, email, name, language, state, attempts, due_at,"
        " message_id, sent_at) VALUES (?, 'ann@example.org', 'Ann', 'cs', 'sent', 1,"
        " 1767325601.0, '<t.1@example.org>', 1767325602.0)",
        (eid,),
    )
    # accounts run from the browser (webinar.storage.accounts): an e-mail address, an open
    # invitation, a password reset, a co-organiser and a presenter
    accounts.set_email(conn, olga.user_id, "olga@example.org")
    accounts.invite(conn, "new@example.org", "organiser", invited_by=admin.user_id, now=now)
    accounts.new_reset(conn, olga.user_id, now=now)
    accounts.add_organiser(conn, eid, admin, owner_id=olga.user_id, added_by=olga.user_id, now=now)
    accounts.add_presenter(conn, eid, "Linus", "linus@example.org", now=now)
    return [e.event_id for e in events]


def _sqlite_rows(path: Path, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        extra = ", rowid" if table in ROWID_TABLES else ""
        return conn.execute(
            f"SELECT {', '.join(columns)}{extra} FROM {table} ORDER BY {', '.join(columns)}"
        ).fetchall()
    finally:
        conn.close()


def _postgres_rows(url: str, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        extra = ", rowid" if table in ROWID_TABLES else ""
        rows = conn.execute(
            f"SELECT {', '.join(columns)}{extra} FROM {table} ORDER BY {', '.join(columns)}"
        ).fetchall()
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "webinar", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


async def test_copy_moves_every_row_and_the_server_reads_the_copy(
    tmp_data_dir: Path, postgres_url: str
) -> None:
    with SyncStore.open(tmp_data_dir) as core:
        event_ids = populate(core)
        expected_events = core.list_events()
        reg = records.list_registrations(core.connection, event_ids[3])[0]
        keys = join_tokens.sql_keys(core.connection, 1)
    done = run_cli("db", "copy", "--to", postgres_url, "--data-dir", str(tmp_data_dir))
    assert done.returncode == 0, done.stderr
    assert "  events: 5 rows" in done.stdout and "  webhook_attempts: 1 rows" in done.stdout

    sqlite_path = tmp_data_dir / DB_FILENAME
    conn = sqlite3.connect(sqlite_path)
    tables = tables_in_foreign_key_order(conn)
    conn.close()
    empty = []
    for table in tables:
        conn = sqlite3.connect(sqlite_path)
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        conn.close()
        source = _sqlite_rows(sqlite_path, table, columns)
        assert _postgres_rows(postgres_url, table, columns) == source, table
        if not source:
            empty.append(table)
    assert empty == [], "every table should have a row to compare"

    # The server's store opens the copy (same secrets key: the same data dir) and reads it.
    async with Store(tmp_data_dir, database_url=postgres_url) as store:
        assert await store.list_events() == expected_events
        copied = await store.run(
            lambda c: records.registration_by_code(c.connection, event_ids[3], reg.code or "")
        )
        assert copied == reg
        # the sealed HS256 secret of a join-token key opens on the copy
        assert await store.run_sql(lambda db: join_tokens.sql_keys(db, 1)) == keys
        assert keys and keys[0].secret
        # and so does the stream key of a live stream
        out = await store.run_sql(lambda db: stream_out.sql_get(db, event_ids[0]))
        assert out is not None and out.key == "abcd-efgh-ijkl"
        # new rows get IDs past the copied ones
        user = await store.run(lambda c: c.create_user("new", "h", "organiser"))
        assert user.user_id == 3
        poll_order = await store.run(lambda c: [p.poll_id for p in ist.list_polls(c, event_ids[0])])
        assert poll_order == ["poll1", "poll2"]
        # the room's switches, as a room opening on the copy reads them
        snap = await store.run(lambda c: ist.load(c, event_ids[0], 200))
        assert (snap.slow_mode_seconds, snap.reactions_enabled) == (3, False)
    migrated = run_cli("db", "migrate", "--data-dir", str(tmp_data_dir))
    assert migrated.returncode == 0 and f"schema version {len(MIGRATIONS)}" in migrated.stdout


def test_copy_refuses_a_database_that_is_not_empty(tmp_data_dir: Path, postgres_url: str) -> None:
    with SyncStore.open(tmp_data_dir) as core:
        core.create_event("One", None)
    assert (
        run_cli("db", "copy", "--to", postgres_url, "--data-dir", str(tmp_data_dir)).returncode == 0
    )
    again = run_cli("db", "copy", "--to", postgres_url, "--data-dir", str(tmp_data_dir))
    assert again.returncode == 1
    assert "is not empty (events have rows)" in again.stderr and "--replace" in again.stderr
    replaced = run_cli(
        "db", "copy", "--to", postgres_url, "--replace", "--data-dir", str(tmp_data_dir)
    )
    assert replaced.returncode == 0, replaced.stderr
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)
    wrong = run_cli("db", "copy", "--to", "mysql://db/x", "--data-dir", str(tmp_data_dir))
    assert wrong.returncode == 2 and "postgresql://" in wrong.stderr
