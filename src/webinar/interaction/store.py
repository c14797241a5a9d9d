"""Persistence of interaction: chat, Q&A, polls and tests, CTA and its clicks.

Plain functions on a :class:`~webinar.storage.store.SyncStore`; the server calls them on the
store's thread with ``await store.run(lambda core: save_chat(core, ...))``. The tables
are migration 4 of :data:`webinar.storage.store.MIGRATIONS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from webinar.rooms.captions import CAPTION_HISTORY, CaptionLine
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
from webinar.storage.db import transaction
from webinar.storage.store import SyncStore


def _one_row(core: SyncStore, sql: str, params: tuple[Any, ...]) -> bool:
    """Run an UPDATE or DELETE; whether it changed exactly one row."""
    return core.connection.execute(sql, params).rowcount == 1


# ----------------------------------------------------------------------------- captions


def save_caption(core: SyncStore, event_id: str, line: CaptionLine) -> None:
    """A final caption line (interim ones are never kept)."""
    core.connection.execute(
        "INSERT INTO caption_lines (line_id, event_id, seq, participant_id, name, text, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (line.line_id, event_id, line.seq, line.participant_id, line.name, line.text, line.at),
    )


def save_caption_settings(
    core: SyncStore, event_id: str, *, enabled: bool, captioners: frozenset[str]
) -> None:
    core.connection.execute(
        "INSERT INTO caption_settings (event_id, enabled, captioners) VALUES (?, ?, ?)"
        " ON CONFLICT (event_id) DO UPDATE SET"
        " enabled = excluded.enabled, captioners = excluded.captioners",
        (event_id, int(enabled), json.dumps(sorted(captioners))),
    )


def caption_lines(
    core: SyncStore,
    event_id: str,
    *,
    limit: int | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[CaptionLine]:
    """An event's final caption lines, oldest first: the last ``limit``, or those between
    ``since`` and ``until`` (epoch seconds)."""
    sql = (
        "SELECT line_id, seq, participant_id, name, text, at FROM caption_lines WHERE event_id = ?"
    )
    params: list[Any] = [event_id]
    if since is not None:
        sql += " AND at >= ?"
        params.append(since)
    if until is not None:
        sql += " AND at <= ?"
        params.append(until)
    sql += " ORDER BY seq DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = core.connection.execute(sql, params).fetchall()
    return [
        CaptionLine(r[0], int(r[1]), r[2], r[3], r[4], float(r[5]), True) for r in reversed(rows)
    ]


# ----------------------------------------------------------------------------- chat


def save_chat(core: SyncStore, event_id: str, m: ChatMessage) -> None:
    core.connection.execute(
        "INSERT INTO chat_messages (message_id, event_id, seq, participant_id, name, role, text,"
        " at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (m.message_id, event_id, m.seq, m.participant_id, m.name, m.role, m.text, m.at),
    )


def delete_chat(core: SyncStore, message_id: str, at: float, by: str) -> None:
    core.connection.execute(
        "UPDATE chat_messages SET deleted_at = ?, deleted_by = ? WHERE message_id = ?",
        (at, by, message_id),
    )


def link_chat_question(core: SyncStore, message_id: str, question_id: str) -> None:
    core.connection.execute(
        "UPDATE chat_messages SET question_id = ? WHERE message_id = ?", (question_id, message_id)
    )


def save_settings(
    core: SyncStore,
    event_id: str,
    *,
    chat_enabled: bool,
    slow_mode_seconds: int,
    qa_open: bool,
    published_question_id: str | None,
    chat_muted: frozenset[str] = frozenset(),
    reactions_enabled: bool = True,
) -> None:
    core.connection.execute(
        "INSERT INTO interaction_settings (event_id, chat_enabled, slow_mode_seconds, qa_open,"
        " published_question_id, chat_muted, reactions_enabled) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (event_id) DO UPDATE SET"
        " chat_enabled = excluded.chat_enabled, slow_mode_seconds = excluded.slow_mode_seconds,"
        " qa_open = excluded.qa_open, published_question_id = excluded.published_question_id,"
        " chat_muted = excluded.chat_muted, reactions_enabled = excluded.reactions_enabled",
        (
            event_id,
            int(chat_enabled),
            slow_mode_seconds,
            int(qa_open),
            published_question_id,
            json.dumps(sorted(chat_muted)),
            int(reactions_enabled),
        ),
    )


# ----------------------------------------------------------------------------- Q&A


def save_question(core: SyncStore, event_id: str, q: Question) -> None:
    core.connection.execute(
        "INSERT INTO questions (question_id, event_id, participant_id, author_key, name, text,"
        " anonymous, asked_at, message_id, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (question_id) DO UPDATE SET state = excluded.state",
        (
            q.question_id,
            event_id,
            q.participant_id,
            q.author_key,
            q.name,
            q.text,
            int(q.anonymous),
            q.asked_at,
            q.message_id,
            q.state.value,
        ),
    )


def set_vote(core: SyncStore, question_id: str, voter_key: str, up: bool, at: float) -> None:
    if up:
        core.connection.execute(
            "INSERT INTO question_votes (question_id, voter_key, voted_at)"
            " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (question_id, voter_key, at),
        )
    else:
        core.connection.execute(
            "DELETE FROM question_votes WHERE question_id = ? AND voter_key = ?",
            (question_id, voter_key),
        )


def mark_published(core: SyncStore, question_id: str, at: float) -> None:
    core.connection.execute(
        "UPDATE questions SET published_at = ? WHERE question_id = ?", (at, question_id)
    )


# ----------------------------------------------------------------------------- polls


def poll_definition(poll: Poll) -> str:
    return json.dumps(
        [
            {
                "question_id": q.question_id,
                "text": q.text,
                "kind": q.kind.value,
                "accepted": list(q.accepted),
                "options": [
                    {
                        "option_id": o.option_id,
                        "text": o.text,
                        "image_id": o.image_id,
                        "correct": o.correct,
                    }
                    for o in q.options
                ],
            }
            for q in poll.questions
        ]
    )


def _questions_from(definition: str) -> tuple[PollQuestion, ...]:
    return tuple(
        PollQuestion(
            question_id=q["question_id"],
            text=q["text"],
            kind=QuestionKind(q["kind"]),
            accepted=tuple(q.get("accepted", ())),
            options=tuple(
                Option(o["option_id"], o["text"], o.get("image_id"), bool(o.get("correct")))
                for o in q["options"]
            ),
        )
        for q in json.loads(definition)
    )


def save_poll(core: SyncStore, event_id: str, p: Poll) -> None:
    core.connection.execute(
        "INSERT INTO polls (poll_id, event_id, title, kind, definition, state, results_shown,"
        " created_at, launched_at, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (poll_id) DO UPDATE SET state = excluded.state,"
        " results_shown = excluded.results_shown, launched_at = excluded.launched_at,"
        " closed_at = excluded.closed_at",
        (
            p.poll_id,
            event_id,
            p.title,
            p.kind.value,
            poll_definition(p),
            p.state.value,
            int(p.results_shown),
            p.created_at,
            p.launched_at,
            p.closed_at,
        ),
    )


def delete_poll(core: SyncStore, poll_id: str) -> None:
    core.connection.execute("DELETE FROM polls WHERE poll_id = ?", (poll_id,))


def get_poll(core: SyncStore, event_id: str, poll_id: str) -> Poll | None:
    return next((p for p in list_polls(core, event_id) if p.poll_id == poll_id), None)


def update_draft_poll(core: SyncStore, event_id: str, p: Poll) -> bool:
    """Replace the definition of a poll that never ran; False if it ran (or is gone)."""
    return _one_row(
        core,
        "UPDATE polls SET title = ?, kind = ?, definition = ? WHERE poll_id = ?"
        " AND event_id = ? AND state = 'draft'",
        (p.title, p.kind.value, poll_definition(p), p.poll_id, event_id),
    )


def delete_draft_poll(core: SyncStore, event_id: str, poll_id: str) -> bool:
    """Delete a poll that never ran; False if it ran (or is gone)."""
    return _one_row(
        core,
        "DELETE FROM polls WHERE poll_id = ? AND event_id = ? AND state = 'draft'",
        (poll_id, event_id),
    )


def list_polls(core: SyncStore, event_id: str) -> list[Poll]:
    rows = core.connection.execute(
        "SELECT poll_id, title, kind, definition, state, results_shown, created_at, launched_at,"
        " closed_at FROM polls WHERE event_id = ? ORDER BY created_at, rowid",
        (event_id,),
    ).fetchall()
    return [
        Poll(
            poll_id=r[0],
            title=r[1],
            kind=PollKind(r[2]),
            questions=_questions_from(r[3]),
            state=PollState(r[4]),
            results_shown=bool(r[5]),
            created_at=r[6],
            launched_at=r[7],
            closed_at=r[8],
        )
        for r in rows
    ]


def save_answers(core: SyncStore, answers: tuple[Answer, ...]) -> None:
    conn = core.connection
    with transaction(conn, immediate=True):
        conn.executemany(
            "INSERT INTO poll_answers (poll_id, question_id, voter_key, participant_id, name,"
            " option_ids, text, correct, answered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (poll_id, question_id, voter_key) DO UPDATE SET"
            " participant_id = excluded.participant_id, name = excluded.name,"
            " option_ids = excluded.option_ids, text = excluded.text,"
            " correct = excluded.correct, answered_at = excluded.answered_at",
            [
                (
                    a.poll_id,
                    a.question_id,
                    a.key,
                    a.participant_id,
                    a.name,
                    json.dumps(list(a.option_ids)),
                    a.text,
                    None if a.correct is None else int(a.correct),
                    a.at,
                )
                for a in answers
            ],
        )


# ----------------------------------------------------------------------------- reactions


def add_reactions(core: SyncStore, event_id: str, counts: Mapping[tuple[str, str], int]) -> None:
    """Add a batch of per-person reaction counts ({(person key, reaction): n}) to the totals."""
    conn = core.connection
    with transaction(conn, immediate=True):
        conn.executemany(
            "INSERT INTO reaction_counts (event_id, person_key, reaction, count)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (event_id, person_key, reaction)"
            " DO UPDATE SET count = reaction_counts.count + excluded.count",
            [(event_id, key, reaction, n) for (key, reaction), n in counts.items() if n > 0],
        )


def reaction_totals(core: SyncStore, event_id: str) -> dict[str, dict[str, int]]:
    """{person key: {reaction: count}} of one event."""
    out: dict[str, dict[str, int]] = {}
    for key, reaction, n in core.connection.execute(
        "SELECT person_key, reaction, count FROM reaction_counts WHERE event_id = ?",
        (event_id,),
    ):
        out.setdefault(str(key), {})[str(reaction)] = int(n)
    return out


# ----------------------------------------------------------------------------- CTA


def save_cta(core: SyncStore, event_id: str, c: CallToAction) -> None:
    core.connection.execute(
        "INSERT INTO ctas (cta_id, event_id, message, button, url, duration_seconds, shown_at,"
        " shown_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            c.cta_id,
            event_id,
            c.message,
            c.button,
            c.url,
            c.duration_seconds,
            c.shown_at,
            c.shown_by,
        ),
    )


def close_cta(core: SyncStore, cta_id: str, at: float) -> None:
    core.connection.execute(
        "UPDATE ctas SET closed_at = ? WHERE cta_id = ? AND closed_at IS NULL", (at, cta_id)
    )


def cta_target(core: SyncStore, cta_id: str) -> tuple[str, str] | None:
    """(event id, validated URL) of a call-to-action."""
    row = core.connection.execute(
        "SELECT event_id, url FROM ctas WHERE cta_id = ?", (cta_id,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def _prepared(row: tuple[Any, ...]) -> PreparedCta:
    return PreparedCta(*row)


_PREPARED_SELECT = (
    "SELECT prepared_id, message, button, url, duration_seconds, created_at FROM cta_prepared"
)


def list_prepared_ctas(core: SyncStore, event_id: str) -> list[PreparedCta]:
    rows = core.connection.execute(
        f"{_PREPARED_SELECT} WHERE event_id = ? ORDER BY created_at, rowid", (event_id,)
    ).fetchall()
    return [_prepared(r) for r in rows]


def get_prepared_cta(core: SyncStore, event_id: str, prepared_id: str) -> PreparedCta | None:
    row = core.connection.execute(
        f"{_PREPARED_SELECT} WHERE event_id = ? AND prepared_id = ?", (event_id, prepared_id)
    ).fetchone()
    return None if row is None else _prepared(row)


def save_prepared_cta(core: SyncStore, event_id: str, c: PreparedCta, limit: int) -> bool:
    """Store a prepared call-to-action; False when the event has ``limit`` already."""
    (n,) = core.connection.execute(
        "SELECT count(*) FROM cta_prepared WHERE event_id = ?", (event_id,)
    ).fetchone()
    if n >= limit:
        return False
    core.connection.execute(
        "INSERT INTO cta_prepared (prepared_id, event_id, message, button, url,"
        " duration_seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (c.prepared_id, event_id, c.message, c.button, c.url, c.duration_seconds, c.created_at),
    )
    return True


def delete_prepared_cta(core: SyncStore, event_id: str, prepared_id: str) -> bool:
    return _one_row(
        core,
        "DELETE FROM cta_prepared WHERE event_id = ? AND prepared_id = ?",
        (event_id, prepared_id),
    )


MAX_CLICKS_PER_ATTENDEE = 100  # per call-to-action; later clicks still redirect


def record_click(core: SyncStore, cta_id: str, participant_id: str, name: str, at: float) -> bool:
    """Count one click; False (not counted) past MAX_CLICKS_PER_ATTENDEE."""
    (n,) = core.connection.execute(
        "SELECT count(*) FROM cta_clicks WHERE cta_id = ? AND participant_id = ?",
        (cta_id, participant_id),
    ).fetchone()
    if n >= MAX_CLICKS_PER_ATTENDEE:
        return False
    core.connection.execute(
        "INSERT INTO cta_clicks (cta_id, participant_id, name, clicked_at) VALUES (?, ?, ?, ?)",
        (cta_id, participant_id, name, at),
    )
    return True


def click_count(core: SyncStore, cta_id: str) -> int:
    (n,) = core.connection.execute(
        "SELECT count(*) FROM cta_clicks WHERE cta_id = ?", (cta_id,)
    ).fetchone()
    return int(n)


# ----------------------------------------------------------------------------- images


def save_image(
    core: SyncStore, image_id: str, event_id: str, content_type: str, size: int, at: float
) -> None:
    core.connection.execute(
        "INSERT INTO poll_images (image_id, event_id, content_type, size, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (image_id, event_id, content_type, size, at),
    )


def image_count(core: SyncStore, event_id: str) -> int:
    (n,) = core.connection.execute(
        "SELECT count(*) FROM poll_images WHERE event_id = ?", (event_id,)
    ).fetchone()
    return int(n)


def get_image(core: SyncStore, image_id: str) -> tuple[str, str] | None:
    """(event id, content type) of an uploaded image."""
    row = core.connection.execute(
        "SELECT event_id, content_type FROM poll_images WHERE image_id = ?", (image_id,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def images_of(core: SyncStore, event_id: str, image_ids: set[str]) -> set[str]:
    if not image_ids:
        return set()
    marks = ", ".join("?" * len(image_ids))
    rows = core.connection.execute(
        f"SELECT image_id FROM poll_images WHERE event_id = ? AND image_id IN ({marks})",
        (event_id, *sorted(image_ids)),
    ).fetchall()
    return {r[0] for r in rows}


def list_images(core: SyncStore, event_id: str) -> list[tuple[str, str, int]]:
    """(image id, content type, size) of every image uploaded for an event."""
    rows = core.connection.execute(
        "SELECT image_id, content_type, size FROM poll_images WHERE event_id = ?"
        " ORDER BY created_at, image_id",
        (event_id,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


# ----------------------------------------------------------------------------- duplicating


@dataclass(frozen=True, slots=True)
class CopiedSetup:
    """What :func:`copy_setup` copied to the new event."""

    polls: int
    calls_to_action: int
    images: int
    settings: bool


def copy_setup(
    core: SyncStore,
    source_id: str,
    target_id: str,
    *,
    now: float,
    new_id: Callable[[str], str],
    images: Mapping[str, str],
) -> CopiedSetup:
    """Give ``target_id``, a new copy of the event ``source_id``, the source's preparation:
    its polls and tests (each as a draft again, without answers), its prepared calls-to-action,
    and its chat and Q&A settings (chat on or off, slow mode, Q&A open; not who was muted or
    which question was shown). ``images`` maps the source's image IDs to the copies' IDs (the
    caller copied the files first); options naming an image not in it lose the image.
    ``new_id(prefix)`` makes a fresh ID. Nothing of what people said or did is copied. Run it in
    the transaction that created ``target_id``."""
    db = core.connection
    copied_images = 0
    for old_id, image_id in images.items():
        row = db.execute(
            "SELECT content_type, size FROM poll_images WHERE image_id = ? AND event_id = ?",
            (old_id, source_id),
        ).fetchone()
        if row is not None:
            save_image(core, image_id, target_id, str(row[0]), int(row[1]), now)
            copied_images += 1
    polls = list_polls(core, source_id)
    for k, poll in enumerate(polls):
        questions = tuple(
            replace(
                q,
                options=tuple(
                    replace(o, image_id=images.get(o.image_id) if o.image_id else None)
                    for o in q.options
                ),
            )
            for q in poll.questions
        )
        save_poll(
            core,
            target_id,
            Poll(
                poll_id=new_id("po_"),
                title=poll.title,
                kind=poll.kind,
                questions=questions,
                created_at=now + k * 1e-3,  # keeps their order
            ),
        )
    ctas = list_prepared_ctas(core, source_id)
    for k, cta in enumerate(ctas):
        db.execute(
            "INSERT INTO cta_prepared (prepared_id, event_id, message, button, url,"
            " duration_seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                new_id("cp_"),
                target_id,
                cta.message,
                cta.button,
                cta.url,
                cta.duration_seconds,
                now + k * 1e-3,
            ),
        )
    row = db.execute(
        "SELECT chat_enabled, slow_mode_seconds, qa_open, reactions_enabled"
        " FROM interaction_settings WHERE event_id = ?",
        (source_id,),
    ).fetchone()
    if row is not None:
        save_settings(
            core,
            target_id,
            chat_enabled=bool(row[0]),
            slow_mode_seconds=int(row[1]),
            qa_open=bool(row[2]),
            published_question_id=None,
            reactions_enabled=bool(row[3]),
        )
    return CopiedSetup(
        polls=len(polls),
        calls_to_action=len(ctas),
        images=copied_images,
        settings=row is not None,
    )


def count_setup(core: SyncStore, event_id: str) -> tuple[int, int]:
    """(polls and tests, prepared calls-to-action) of an event."""
    (polls,) = core.connection.execute(
        "SELECT count(*) FROM polls WHERE event_id = ?", (event_id,)
    ).fetchone()
    (ctas,) = core.connection.execute(
        "SELECT count(*) FROM cta_prepared WHERE event_id = ?", (event_id,)
    ).fetchone()
    return int(polls), int(ctas)


# ----------------------------------------------------------------------------- loading


@dataclass(slots=True)
class Snapshot:
    """What a room needs when it opens (again): recent chat, questions, polls, the CTA."""

    chat: list[ChatMessage] = field(default_factory=list)
    chat_seq: int = 0  # the last sequence number used (deleted messages count too)
    questions: list[Question] = field(default_factory=list)
    published_id: str | None = None
    polls: list[Poll] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    cta: CallToAction | None = None
    chat_enabled: bool = True
    slow_mode_seconds: int = 0
    qa_open: bool = True
    chat_muted: frozenset[str] = frozenset()
    reactions_enabled: bool = True
    captions: list[CaptionLine] = field(default_factory=list)  # the last final lines
    captions_seq: int = 0
    captions_enabled: bool = False
    captioners: frozenset[str] = frozenset()


def load(core: SyncStore, event_id: str, chat_limit: int) -> Snapshot:
    conn = core.connection
    snap = Snapshot()
    rows = conn.execute(
        "SELECT message_id, seq, participant_id, name, role, text, at, question_id"
        " FROM chat_messages WHERE event_id = ? AND deleted_at IS NULL"
        " ORDER BY seq DESC LIMIT ?",
        (event_id, chat_limit),
    ).fetchall()
    snap.chat = [
        ChatMessage(r[0], r[1], r[2], r[3], r[4], r[5], r[6], question_id=r[7])
        for r in reversed(rows)
    ]
    (max_seq,) = conn.execute(
        "SELECT coalesce(max(seq), 0) FROM chat_messages WHERE event_id = ?", (event_id,)
    ).fetchone()
    snap.chat_seq = int(max_seq)
    votes: dict[str, set[str]] = {}
    for qid, key in conn.execute(
        "SELECT v.question_id, v.voter_key FROM question_votes v JOIN questions q"
        " USING (question_id) WHERE q.event_id = ?",
        (event_id,),
    ):
        votes.setdefault(qid, set()).add(key)
    for r in conn.execute(
        "SELECT question_id, participant_id, author_key, name, text, anonymous, asked_at,"
        " message_id, state, published_at FROM questions WHERE event_id = ? ORDER BY asked_at",
        (event_id,),
    ):
        snap.questions.append(
            Question(
                question_id=r[0],
                participant_id=r[1],
                author_key=r[2],
                name=r[3],
                text=r[4],
                anonymous=bool(r[5]),
                asked_at=r[6],
                message_id=r[7],
                state=QuestionState(r[8]),
                voters=frozenset(votes.get(r[0], ())),
            )
        )
    settings = conn.execute(
        "SELECT chat_enabled, slow_mode_seconds, qa_open, published_question_id, chat_muted,"
        " reactions_enabled FROM interaction_settings WHERE event_id = ?",
        (event_id,),
    ).fetchone()
    if settings is not None:
        snap.chat_enabled = bool(settings[0])
        snap.slow_mode_seconds = int(settings[1])
        snap.qa_open = bool(settings[2])
        snap.published_id = settings[3]
        snap.chat_muted = frozenset(json.loads(settings[4]))
        snap.reactions_enabled = bool(settings[5])
    snap.polls = list_polls(core, event_id)
    for r in conn.execute(
        "SELECT a.poll_id, a.question_id, a.voter_key, a.participant_id, a.name, a.option_ids,"
        " a.text, a.correct, a.answered_at FROM poll_answers a JOIN polls p USING (poll_id)"
        " WHERE p.event_id = ?",
        (event_id,),
    ):
        snap.answers.append(
            Answer(
                poll_id=r[0],
                question_id=r[1],
                key=r[2],
                participant_id=r[3],
                name=r[4],
                option_ids=tuple(json.loads(r[5])),
                text=r[6],
                at=r[8],
                correct=None if r[7] is None else bool(r[7]),
            )
        )
    row = conn.execute(
        "SELECT cta_id, message, button, url, duration_seconds, shown_at, shown_by FROM ctas"
        " WHERE event_id = ? AND closed_at IS NULL ORDER BY shown_at DESC LIMIT 1",
        (event_id,),
    ).fetchone()
    if row is not None:
        snap.cta = CallToAction(*row)
    snap.captions = caption_lines(core, event_id, limit=CAPTION_HISTORY)
    (max_seq,) = conn.execute(
        "SELECT coalesce(max(seq), 0) FROM caption_lines WHERE event_id = ?", (event_id,)
    ).fetchone()
    snap.captions_seq = int(max_seq)
    row = conn.execute(
        "SELECT enabled, captioners FROM caption_settings WHERE event_id = ?", (event_id,)
    ).fetchone()
    if row is not None:
        snap.captions_enabled = bool(row[0])
        snap.captioners = frozenset(json.loads(row[1]))
    return snap


# ----------------------------------------------------------------------------- export


def export_rows(core: SyncStore, event_id: str, kind: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one export (see :data:`EXPORT_KINDS`)."""
    conn = core.connection
    if kind == "chat":
        header = ["seq", "time", "participant_id", "name", "role", "text", "deleted", "question_id"]
        rows = conn.execute(
            "SELECT seq, at, participant_id, name, role, text, deleted_at IS NOT NULL,"
            " question_id FROM chat_messages WHERE event_id = ? ORDER BY seq",
            (event_id,),
        ).fetchall()
        return header, [[r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7]] for r in rows]
    if kind == "questions":
        header = [
            "question_id",
            "asked_at",
            "participant_id",
            "name",
            "anonymous",
            "text",
            "state",
            "votes",
            "published_at",
            "message_id",
        ]
        rows = conn.execute(
            "SELECT q.question_id, q.asked_at, q.participant_id, q.name, q.anonymous, q.text,"
            " q.state, (SELECT count(*) FROM question_votes v WHERE v.question_id ="
            " q.question_id), q.published_at, q.message_id FROM questions q"
            " WHERE q.event_id = ? ORDER BY q.asked_at",
            (event_id,),
        ).fetchall()
        return header, [[*r[:4], bool(r[4]), *r[5:]] for r in rows]
    if kind == "polls":
        header = [
            "poll_id",
            "poll_title",
            "kind",
            "question_id",
            "question",
            "participant_id",
            "name",
            "answer",
            "correct",
            "answered_at",
        ]
        out: list[list[Any]] = []
        for poll in list_polls(core, event_id):
            questions = {q.question_id: q for q in poll.questions}
            for r in conn.execute(
                "SELECT question_id, participant_id, name, option_ids, text, correct, answered_at"
                " FROM poll_answers WHERE poll_id = ? ORDER BY name, participant_id, question_id",
                (poll.poll_id,),
            ):
                q = questions.get(r[0])
                labels = {o.option_id: o.text for o in q.options} if q else {}
                answer = (
                    r[4]
                    if r[4] is not None
                    else "; ".join(labels.get(o, o) for o in json.loads(r[3]))
                )
                correct = "" if r[5] is None else bool(r[5])
                out.append(
                    [poll.poll_id, poll.title, poll.kind.value, r[0], q.text if q else "",
                     r[1], r[2], answer, correct, r[6]]
                )  # fmt: skip
        return header, out
    if kind == "scores":
        header = ["poll_id", "poll_title", "participant_id", "name", "correct", "total"]
        scored: list[list[Any]] = []
        for poll in list_polls(core, event_id):
            if poll.kind is not PollKind.TEST:
                continue
            total = sum(1 for q in poll.questions if q.scored)
            people: dict[str, list[Any]] = {}
            for key, pid, name, correct in conn.execute(
                "SELECT voter_key, participant_id, name, correct FROM poll_answers"
                " WHERE poll_id = ? ORDER BY answered_at",
                (poll.poll_id,),
            ):
                row = people.setdefault(key, [poll.poll_id, poll.title, pid, name, 0, total])
                row[2], row[3] = pid, name  # the latest name they answered with
                row[4] += 1 if correct == 1 else 0
            scored.extend(sorted(people.values(), key=lambda r: (-r[4], str(r[3]))))
        return header, scored
    if kind == "cta":
        header = ["cta_id", "message", "url", "shown_at", "participant_id", "name", "clicked_at"]
        rows = conn.execute(
            "SELECT c.cta_id, c.message, c.url, c.shown_at, k.participant_id, k.name,"
            " k.clicked_at FROM cta_clicks k JOIN ctas c USING (cta_id) WHERE c.event_id = ?"
            " ORDER BY k.clicked_at",
            (event_id,),
        ).fetchall()
        return header, [list(r) for r in rows]
    raise ValueError(f"unknown export {kind!r}")


EXPORT_KINDS = ("chat", "questions", "polls", "scores", "cta")
