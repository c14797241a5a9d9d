"""Interaction joined into attendance: the engagement export's sources, and deleting an
event's interaction personal data.

Each source reads one interaction table on the store's thread and returns, per person,
the numbers (and short texts) of one row of the engagement export. Rows are keyed by the
person key where the table has one (``author_key``, ``voter_key``: the same key
attendance records, see :func:`webinar.rooms.state.person_key_for`) and by participant id
otherwise (chat, clicks); :meth:`webinar.attendance.service.AttendanceService.engagement` maps a
participant id to its person through the attendance rows, so several sessions of one
person (reloads, reconnects) add up on one row.

The detail files (every chat message, question, answer, click) are the interaction CSV
exports (``/dashboard/events/{id}/export/{kind}.csv``, :data:`DETAIL_FILES`), linked from
the same statistics page.
"""

from __future__ import annotations

import json
from typing import Any

from webinar.attendance.service import EngagementSource
from webinar.i18n import N_
from webinar.interaction import store as ist
from webinar.rooms.polls import PollKind
from webinar.rooms.reactions import EMOJI, REACTIONS
from webinar.storage.store import SyncStore, transaction

ANSWER_SUMMARY_MAX = 2000  # characters of the per-attendee answers cell (the detail file has all)


class ChatSource:
    name: str = "chat"
    columns: tuple[str, ...] = ("messages",)

    def rows(self, db: SyncStore, event_id: str) -> dict[str, dict[str, Any]]:
        """Messages sent (a message a moderator deleted later was still sent)."""
        return {
            pid: {"messages": int(n)}
            for pid, n in db.connection.execute(
                "SELECT participant_id, count(*) FROM chat_messages WHERE event_id = ?"
                " GROUP BY participant_id",
                (event_id,),
            )
        }


class QuestionSource:
    name: str = "questions"
    columns: tuple[str, ...] = (
        "asked",
        "votes_received",
        "new",
        "answered",
        "dismissed",
        "votes_given",
    )

    def rows(self, db: SyncStore, event_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}

        def of(key: str) -> dict[str, Any]:
            return out.setdefault(key, dict.fromkeys(self.columns, 0))

        for key, state, votes in db.connection.execute(
            "SELECT coalesce(q.author_key, q.participant_id), q.state,"
            " (SELECT count(*) FROM question_votes v WHERE v.question_id = q.question_id)"
            " FROM questions q WHERE q.event_id = ?",
            (event_id,),
        ):
            row = of(key)
            row["asked"] += 1
            row["votes_received"] += int(votes)
            if state in ("new", "answered", "dismissed"):
                row[state] += 1
        for key, n in db.connection.execute(
            "SELECT v.voter_key, count(*) FROM question_votes v JOIN questions q"
            " USING (question_id) WHERE q.event_id = ? GROUP BY v.voter_key",
            (event_id,),
        ):
            of(key)["votes_given"] += int(n)
        return out


class PollSource:
    name: str = "polls"
    columns: tuple[str, ...] = ("answered", "answers", "test_correct", "test_total", "test_scores")

    def rows(self, db: SyncStore, event_id: str) -> dict[str, dict[str, Any]]:
        """Per person: polls and tests answered, every answer as ``poll › question: answer``
        and, for tests, the score per test (correct of the test's scored questions)."""
        people: dict[str, dict[str, Any]] = {}
        for poll in ist.list_polls(db, event_id):
            questions = {q.question_id: q for q in poll.questions}
            order = {q.question_id: i for i, q in enumerate(poll.questions)}
            total = sum(1 for q in poll.questions if q.scored)
            answers: dict[str, list[tuple[int, str, bool | None]]] = {}
            for key, qid, option_ids, text, correct in db.connection.execute(
                "SELECT voter_key, question_id, option_ids, text, correct FROM poll_answers"
                " WHERE poll_id = ?",
                (poll.poll_id,),
            ):
                q = questions.get(qid)
                labels = {o.option_id: o.text for o in q.options} if q else {}
                value = (
                    text
                    if text is not None
                    else "; ".join(labels.get(o, o) for o in json.loads(option_ids))
                )
                label = f"{poll.title} › {q.text if q else qid}: {value}"
                answers.setdefault(key, []).append(
                    (order.get(qid, 999), label, None if correct is None else bool(correct))
                )
            for key, given in answers.items():
                row = people.setdefault(
                    key,
                    {"answered": 0, "answers": [], "test_correct": 0, "test_total": 0,
                     "test_scores": []},
                )  # fmt: skip
                row["answered"] += 1
                row["answers"] += [label for _i, label, _c in sorted(given)]
                if poll.kind is PollKind.TEST:
                    right = sum(1 for _i, _l, c in given if c)
                    row["test_correct"] += right
                    row["test_total"] += total
                    row["test_scores"].append(f"{poll.title}: {right}/{total}")
        return {
            key: {
                **row,
                "answers": _cap(" | ".join(row["answers"])),
                "test_scores": " | ".join(row["test_scores"]),
                # blank, not 0/0, for people who took no test
                "test_correct": row["test_correct"] if row["test_scores"] else "",
                "test_total": row["test_total"] if row["test_scores"] else "",
            }
            for key, row in people.items()
        }


class CtaSource:
    name: str = "cta"
    columns: tuple[str, ...] = ("clicks", "clicked")

    def rows(self, db: SyncStore, event_id: str) -> dict[str, dict[str, Any]]:
        """Clicks counted, and which calls-to-action (by message) were clicked."""
        out: dict[str, dict[str, Any]] = {}
        for pid, message, n in db.connection.execute(
            "SELECT k.participant_id, c.message, count(*) FROM cta_clicks k JOIN ctas c"
            " USING (cta_id) WHERE c.event_id = ? GROUP BY k.participant_id, c.cta_id"
            " ORDER BY min(k.clicked_at)",
            (event_id,),
        ):
            row = out.setdefault(pid, {"clicks": 0, "clicked": []})
            row["clicks"] += int(n)
            row["clicked"].append(message)
        return {
            pid: {"clicks": r["clicks"], "clicked": " | ".join(r["clicked"])}
            for pid, r in out.items()
        }


class FileSource:
    """Files of the event downloaded in the room (webinar.content: counted per person key,
    a person's downloads of one file within a minute count once)."""

    name: str = "files"
    columns: tuple[str, ...] = ("downloaded", "names")

    def rows(self, db: SyncStore, event_id: str) -> dict[str, dict[str, Any]]:
        """Downloads counted, and the names of the files downloaded (first download first)."""
        out: dict[str, dict[str, Any]] = {}
        for key, file_name, n in db.connection.execute(
            "SELECT person_key, file_name, count(*) FROM content_downloads WHERE event_id = ?"
            " GROUP BY person_key, content_id, file_name ORDER BY min(at)",
            (event_id,),
        ):
            row = out.setdefault(key, {"downloaded": 0, "names": []})
            row["downloaded"] += int(n)
            row["names"].append(file_name)
        return {
            key: {"downloaded": r["downloaded"], "names": _cap(" | ".join(r["names"]))}
            for key, r in out.items()
        }


class ReactionSource:
    """Emoji reactions sent in the room (webinar.rooms.reactions), per person: how many in
    all, and how many of each (``👏 12 | 👍 3``, most first)."""

    name: str = "reactions"
    columns: tuple[str, ...] = ("sent", "kinds")

    def rows(self, db: SyncStore, event_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, counts in ist.reaction_totals(db, event_id).items():
            order = sorted(
                counts.items(),
                key=lambda item: (
                    -item[1],
                    REACTIONS.index(item[0]) if item[0] in REACTIONS else 99,
                ),
            )
            out[key] = {
                "sent": sum(counts.values()),
                "kinds": " | ".join(f"{EMOJI.get(r, r)} {n}" for r, n in order),
            }
        return out


def _cap(text: str) -> str:
    return text if len(text) <= ANSWER_SUMMARY_MAX else text[: ANSWER_SUMMARY_MAX - 1] + "…"


def sources() -> list[EngagementSource]:
    """The interaction tables joined into every engagement export, in column order."""
    return [
        ChatSource(),
        QuestionSource(),
        PollSource(),
        CtaSource(),
        FileSource(),
        ReactionSource(),
    ]


#: The detail files next to the engagement export: the interaction CSV exports.
#: The labels are marked, not translated (the page translates them with ``gettext``).
DETAIL_FILES = (
    ("chat", N_("Chat log")),
    ("questions", N_("Questions (votes, states)")),
    ("polls", N_("Poll and test answers")),
    ("scores", N_("Test scores")),
    ("cta", N_("Call-to-action clicks")),
)


def delete_personal_data(db: SyncStore, event_id: str) -> dict[str, int]:
    """Delete what interaction keeps about people in one event: chat messages, questions
    (their votes go with them), poll and test answers, call-to-action clicks, file
    downloads counted, reactions counted, live caption lines and who were captioners, chat
    mutes and the published question. The
    organiser's content stays: prepared polls and tests, their images, the calls-to-action
    shown, the files. One transaction: all or nothing."""
    conn = db.connection
    counts: dict[str, int] = {}
    with transaction(conn, immediate=True):
        counts["chat_messages"] = conn.execute(
            "DELETE FROM chat_messages WHERE event_id = ?", (event_id,)
        ).rowcount
        (counts["question_votes"],) = conn.execute(
            "SELECT count(*) FROM question_votes WHERE question_id IN"
            " (SELECT question_id FROM questions WHERE event_id = ?)",
            (event_id,),
        ).fetchone()
        counts["questions"] = conn.execute(
            "DELETE FROM questions WHERE event_id = ?", (event_id,)
        ).rowcount
        counts["poll_answers"] = conn.execute(
            "DELETE FROM poll_answers WHERE poll_id IN"
            " (SELECT poll_id FROM polls WHERE event_id = ?)",
            (event_id,),
        ).rowcount
        counts["cta_clicks"] = conn.execute(
            "DELETE FROM cta_clicks WHERE cta_id IN (SELECT cta_id FROM ctas WHERE event_id = ?)",
            (event_id,),
        ).rowcount
        counts["content_downloads"] = conn.execute(
            "DELETE FROM content_downloads WHERE event_id = ?", (event_id,)
        ).rowcount
        counts["reaction_counts"] = conn.execute(
            "DELETE FROM reaction_counts WHERE event_id = ?", (event_id,)
        ).rowcount
        counts["caption_lines"] = conn.execute(
            "DELETE FROM caption_lines WHERE event_id = ?", (event_id,)
        ).rowcount
        conn.execute(
            "UPDATE caption_settings SET captioners = '[]' WHERE event_id = ?", (event_id,)
        )
        conn.execute(
            "UPDATE interaction_settings SET chat_muted = '[]', published_question_id = NULL"
            " WHERE event_id = ?",
            (event_id,),
        )
    return counts
