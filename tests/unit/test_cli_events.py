"""`webinar event show|update|delete|duplicate`, `webinar recording list|download` and
``WEBINAR_CONFIG``, against a real store in a temporary data folder."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import webinar.cli as cli
from webinar.accounts import hash_password
from webinar.interaction import store as ist
from webinar.rooms.cta import PreparedCta
from webinar.rooms.polls import Option, Poll, PollKind, PollQuestion, PollState, QuestionKind
from webinar.storage import accounts
from webinar.storage.store import Store, SyncStore
from webinar.ticketing import mailing, records
from webinar.ticketing.records import EventAccess, PaymentProvider

EVENT_ID = r"[0-9]{3}-[0-9]{3}-[0-9]{3}"
START = datetime(2030, 1, 31, 18, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("WEBINAR_"):
            monkeypatch.delenv(var)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert out.count("\n") == 1, out
    return json.loads(out)


@pytest.fixture
def data(tmp_data_dir: Path) -> Path:
    return tmp_data_dir


def make_event(capsys: pytest.CaptureFixture[str], data: Path, *extra: str) -> dict[str, Any]:
    created = run_json(
        capsys, "event", "create", "--title", "Launch", "--json", *extra, "--data-dir", str(data)
    )
    assert isinstance(created, dict)
    return created


def canonical(display_id: str) -> str:
    return display_id.replace("-", "")


def open_store(data: Path) -> SyncStore:
    return Store.open_sync(data)


# --------------------------------------------------------------------------------- show


def test_show_json_and_text(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    created = make_event(capsys, data, "--start", "2030-01-31T18:00Z")
    shown = run_json(
        capsys, "event", "show", created["event_id"], "--json", "--data-dir", str(data)
    )
    for key in ("event_id", "title", "starts_at", "attendee_url", "presenter_url", "host_url"):
        assert shown[key] == created[key]
    assert shown["status"] == "upcoming"
    assert shown["timezone"] == "UTC"
    assert shown["duration_minutes"] == 60
    assert shown["access_type"] == "open"
    assert shown["language"] is None
    assert shown["owner"] is None
    assert shown["access"]["capacity"] is None
    assert shown["counts"] == {
        "in_room": 0,
        "registrations": 0,
        "invitees": 0,
        "polls": 0,
        "calls_to_action": 0,
        "recordings": 0,
        "recording_bytes": 0,
    }
    # Any form people type finds it.
    again = run_json(
        capsys, "event", "show", canonical(created["event_id"]), "--json", "--data-dir", str(data)
    )
    assert again["event_id"] == created["event_id"]

    code, out, _err = run(capsys, "event", "show", created["event_id"], "--data-dir", str(data))
    assert code == 0
    assert out.startswith(f"{created['event_id']}  Launch\n")
    assert f"Presenter link: {created['presenter_url']}" in out
    assert "Starts:         2030-01-31T18:00:00Z (UTC), 60 minutes" in out


def test_show_unknown_event(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_event(capsys, data)
    code, out, err = run(capsys, "event", "show", "111-222-333", "--data-dir", str(data))
    assert (code, out) == (2, "")
    assert "no event '111-222-333'" in err


# --------------------------------------------------------------------------------- update


def test_update_changes_only_what_is_given(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    created = make_event(capsys, data, "--start", "2030-01-31T18:00Z")
    updated = run_json(
        capsys,
        *("event", "update", created["event_id"], "--json", "--data-dir", str(data)),
        *("--title", "  Relaunch ", "--duration", "90", "--timezone", "Europe/Prague"),
        *("--language", "cs", "--camera-limit", "2", "--agenda", "1. hello"),
        *("--thank-you-url", "https://example.org/thanks", "--join-window", "15"),
    )
    assert updated["event_id"] == created["event_id"]
    assert updated["presenter_url"] == created["presenter_url"]  # the links stay
    assert updated["title"] == "Relaunch"
    assert updated["starts_at"] == "2030-01-31T18:00:00Z"  # not given: kept
    assert updated["duration_minutes"] == 90
    assert updated["timezone"] == "Europe/Prague"
    assert updated["language"] == "cs"
    assert updated["camera_limit"] == 2
    assert updated["agenda"] == "1. hello"
    assert updated["thank_you_url"] == "https://example.org/thanks"
    assert updated["join_window_minutes"] == 15

    cleared = run_json(
        capsys,
        *("event", "update", created["event_id"], "--json", "--data-dir", str(data)),
        *("--no-start", "--no-language", "--thank-you-url", ""),
    )
    assert cleared["starts_at"] is None
    assert cleared["language"] is None
    assert cleared["thank_you_url"] is None
    assert cleared["title"] == "Relaunch"
    with open_store(data) as store:
        event = store.get_event(created["event_id"])
        assert event is not None
        assert (event.starts_at, event.duration_minutes) == (None, 90)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to change"),
        (["--duration", "0"], "the duration must be 1 to 1440 minutes"),
        (["--timezone", "Mars/Base"], "unknown time zone 'Mars/Base'"),
        (["--title", " "], "title must have 1 to 200 characters"),
        (["--thank-you-url", "ftp://x"], "the thank-you URL must be an http(s) URL"),
        (["--camera-limit", "9"], "the camera limit must be 1 to 7"),
        (["--access-type", "password"], "the event has no attendee password"),
        (["--access-type", "paid"], "the event has no ticket price"),
        (["--start", "2030-01-31T18:00"], "has no UTC offset"),
        (["--start", "2030-01-31T18:00Z", "--no-start"], "not allowed with argument"),
        (["--language", "de"], "invalid choice: 'de'"),
    ],
)
def test_update_refusals_change_nothing(
    data: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    created = make_event(capsys, data)
    before = run_json(
        capsys, "event", "show", created["event_id"], "--json", "--data-dir", str(data)
    )
    code, out, err = run(
        capsys, "event", "update", created["event_id"], *args, "--data-dir", str(data)
    )
    assert code == 2
    assert out == ""
    assert message in err
    after = run_json(
        capsys, "event", "show", created["event_id"], "--json", "--data-dir", str(data)
    )
    assert after == before


def test_update_to_paid_and_password_with_their_settings(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = make_event(capsys, data)
    event_id = canonical(created["event_id"])
    with open_store(data) as store:
        records.put_access(
            store.connection,
            EventAccess(event_id, attendee_password_hash=hash_password("attendee-pass-1")),
        )
    assert run_json(
        capsys,
        *("event", "update", created["event_id"], "--access-type", "password", "--json"),
        *("--data-dir", str(data)),
    )["access"]["has_attendee_password"]
    with open_store(data) as store:
        records.put_access(
            store.connection, EventAccess(event_id, price_minor=1500, currency="EUR")
        )
    code, _out, err = run(
        capsys,
        *("event", "update", created["event_id"], "--access-type", "paid"),
        *("--data-dir", str(data)),
    )
    assert code == 2
    assert "a paid event needs a start date and time (--start)" in err
    paid = run_json(
        capsys,
        *("event", "update", created["event_id"], "--access-type", "paid", "--json"),
        *("--start", "2030-01-31T18:00Z", "--data-dir", str(data)),
    )
    assert paid["access_type"] == "paid"
    assert paid["access"]["price_minor"] == 1500


def test_update_moves_reminders_and_marks_the_change(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = make_event(capsys, data, "--start", "2030-01-31T18:00Z")
    event_id = canonical(created["event_id"])
    with open_store(data) as store:
        db = store.connection
        reg = records.add_registration(
            db,
            event_id,
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.org",
            seats=1,
            amount_minor=0,
            currency=None,
            provider=PaymentProvider.MANUAL,
            capacity=None,
        )
        assert records.confirm_registration(db, reg.registration_id) is not None
        now = datetime.now(UTC)
        assert records.plan_reminder(db, event_id, START, now, registration_id=reg.registration_id)
    # A change that people are not told of (the agenda) marks nothing.
    run_json(
        capsys,
        *("event", "update", created["event_id"], "--agenda", "more", "--json"),
        *("--data-dir", str(data)),
    )
    with open_store(data) as store:
        assert records.settings_changed_at(store.connection, event_id) is None
    moved = START + timedelta(days=1)
    run_json(
        capsys,
        *("event", "update", created["event_id"], "--start", "2030-02-01T18:00Z", "--json"),
        *("--data-dir", str(data)),
    )
    with open_store(data) as store:
        db = store.connection
        # the new time is queued for the confirmed registrant (the server's outbox sends it,
        # with the calendar entry's next SEQUENCE); nothing is left to offer
        assert records.settings_changed_at(db, event_id) is None
        assert mailing.calendar_sequence(db, event_id) == 1
        (update,) = mailing.due_items(db, datetime.now(UTC))
        assert (update.kind, update.registration_id, update.seq) == (
            mailing.Kind.UPDATE,
            reg.registration_id,
            1,
        )
        (due,) = db.execute(
            "SELECT due_at FROM reminders WHERE event_id = ?", (event_id,)
        ).fetchone()
        assert datetime.fromisoformat(due) == moved - records.REMINDER_BEFORE
    # A new title only is offered to resend (the SEQUENCE grows too).
    run_json(
        capsys,
        *("event", "update", created["event_id"], "--title", "Renamed", "--json"),
        *("--data-dir", str(data)),
    )
    with open_store(data) as store:
        assert records.settings_changed_at(store.connection, event_id) is not None
        assert mailing.calendar_sequence(store.connection, event_id) == 2


# --------------------------------------------------------------------------------- delete


def seed_everything(data: Path, event_id: str, shared: Path) -> dict[str, Any]:
    """Registrations, an invitee, a poll with an image, a prepared CTA, interaction settings,
    access settings, automatic recording and a recording with its files, as the server keeps
    them."""
    images = shared / "images"
    images.mkdir(parents=True, exist_ok=True)
    image_id = "img_" + "ab" * 12
    (images / image_id).write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    recording_id = "rec_0123456789ab"
    folder = shared / "recordings" / recording_id
    folder.mkdir(parents=True)
    (folder / "camera-1.webm").write_bytes(b"camera" * 1000)
    (folder / "audio-1.webm").write_bytes(b"audio" * 500)
    files = [
        {"name": "camera-1.webm", "size": 6000, "offset": 0.0, "duration": 12.5},
        {"name": "audio-1.webm", "size": 2500, "offset": 0.0, "duration": 12.5},
    ]
    now = time.time()
    with open_store(data) as store:
        db = store.connection
        records.put_access(
            db,
            EventAccess(
                event_id,
                attendee_password_hash=hash_password("attendee-pass-1"),
                capacity=40,
                form_fields=(records.FormField("Company", True),),
            ),
        )
        reg = records.add_registration(
            db,
            event_id,
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.org",
            seats=2,
            amount_minor=0,
            currency=None,
            provider=PaymentProvider.MANUAL,
            capacity=40,
        )
        records.add_invitee(db, event_id, "Grace", "grace@example.org")
        # A co-organiser (copied) and a presenter (people's data of the event: not copied).
        helper = store.create_user("helper", hash_password("helper-pass-1", n=2**10), "organiser")
        at = datetime.now(UTC)
        accounts.add_organiser(db, event_id, helper, owner_id=None, added_by=helper.user_id, now=at)
        accounts.add_presenter(db, event_id, "Linus", "linus@example.org", now=at)
        ist.save_image(store, image_id, event_id, "image/png", 108, now)
        poll = Poll(
            poll_id="po_0000000000000001",
            title="Which one?",
            kind=PollKind.POLL,
            questions=(
                PollQuestion(
                    "q1",
                    "Pick",
                    QuestionKind.SINGLE,
                    (Option("o1", "This", image_id), Option("o2", "That")),
                ),
            ),
            state=PollState.CLOSED,
            created_at=now,
            launched_at=now,
            closed_at=now,
        )
        ist.save_poll(store, event_id, poll)
        assert ist.save_prepared_cta(
            store,
            event_id,
            PreparedCta("cp_0000000000000001", "Buy now", "Buy", "https://shop.example", 30, now),
            limit=10,
        )
        ist.save_settings(
            store,
            event_id,
            chat_enabled=False,
            slow_mode_seconds=10,
            qa_open=False,
            published_question_id=None,
            chat_muted=frozenset({"someone"}),
            reactions_enabled=False,
        )
        db.execute("INSERT INTO event_recording (event_id, auto_record) VALUES (?, 1)", (event_id,))
        db.execute(
            "INSERT INTO recordings (recording_id, event_id, started_at, ended_at,"
            " duration_seconds, size_bytes, files) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                recording_id,
                event_id,
                "2030-01-31T18:00:00+00:00",
                "2030-01-31T18:00:12.500000+00:00",
                12.5,
                8500,
                json.dumps(files),
            ),
        )
    return {
        "image": images / image_id,
        "image_id": image_id,
        "recording": folder,
        "recording_id": recording_id,
        "registration_id": reg.registration_id,
    }


def test_delete_needs_yes_then_deletes_rows_and_files(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keep = make_event(capsys, data)
    created = make_event(capsys, data)
    event_id = canonical(created["event_id"])
    seeded = seed_everything(data, event_id, data)
    uploaded = data / "content" / event_id / ("cnt_" + "a" * 24)  # an uploaded file
    uploaded.parent.mkdir(parents=True)
    uploaded.write_bytes(b"%PDF-1.4\n")

    code, out, err = run(capsys, "event", "delete", created["event_id"], "--data-dir", str(data))
    assert (code, out) == (2, "")
    assert "1 registrations, 1 invitees, 1 polls" in err
    assert "1 recordings (8.3 KiB)" in err
    assert "add --yes to delete it" in err
    assert seeded["image"].is_file()
    assert seeded["recording"].is_dir()

    done = run_json(
        capsys, "event", "delete", created["event_id"], "--yes", "--json", "--data-dir", str(data)
    )
    assert done == {
        "deleted": created["event_id"],
        "title": "Launch",
        "recordings": 1,
        "recording_bytes": 8500,
    }
    assert not seeded["image"].exists()
    assert not seeded["recording"].exists()
    assert not uploaded.exists() and not uploaded.parent.exists()
    with open_store(data) as store:
        assert store.get_event(event_id) is None
        db = store.connection
        for table in (
            "registrations",
            "invitees",
            "polls",
            "cta_prepared",
            "interaction_settings",
            "poll_images",
            "recordings",
            "event_recording",
            "event_access",
        ):
            sql = f"SELECT count(*) FROM {table} WHERE event_id = ?"
            assert db.execute(sql, (event_id,)).fetchone() == (0,), table
        assert store.get_event(keep["event_id"]) is not None  # the other event stays
    code, _out, err = run(
        capsys, "event", "delete", created["event_id"], "--yes", "--data-dir", str(data)
    )
    assert code == 2
    assert "no event" in err


def test_delete_refuses_a_live_room(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from webinar.attendance.service import AttendanceService

    created = make_event(capsys, data)
    event_id = canonical(created["event_id"])

    async def join() -> int:
        async with Store(data) as store:
            return await AttendanceService(store).joined(
                event_id=event_id,
                participant_id="p1",
                person_key="k1",
                name="Ada",
                role="attendee",
                user_agent="test",
            )

    session = asyncio.run(join())
    code, out, err = run(
        capsys, "event", "delete", created["event_id"], "--yes", "--data-dir", str(data)
    )
    assert (code, out) == (2, "")
    assert f"event {created['event_id']} is live: 1 person is in its room" in err
    shown = run_json(
        capsys, "event", "show", created["event_id"], "--json", "--data-dir", str(data)
    )
    assert shown["counts"]["in_room"] == 1

    async def leave() -> None:
        async with Store(data) as store:
            await AttendanceService(store).left(session, "left")

    asyncio.run(leave())
    code, out, _err = run(
        capsys, "event", "delete", created["event_id"], "--yes", "--data-dir", str(data)
    )
    assert code == 0
    assert f"Deleted event {created['event_id']} (Launch)" in out


# --------------------------------------------------------------------------------- duplicate


def test_duplicate_copies_settings_not_people(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = make_event(capsys, data, "--start", "2030-01-31T18:00Z")
    run_json(
        capsys,
        *("event", "update", created["event_id"], "--json", "--data-dir", str(data)),
        *("--duration", "45", "--language", "ru", "--lobby-message", "Welcome"),
    )
    source_id = canonical(created["event_id"])
    seeded = seed_everything(data, source_id, data)
    with open_store(data) as store:  # reminders a day before; the calendar entry changed once
        source = store.get_event(source_id)
        assert source is not None
        mailing.set_reminder_minutes(store.connection, source, 1440, datetime.now(UTC))
        mailing.bump_sequence(store.connection, source_id)

    copy = run_json(
        capsys,
        *("event", "duplicate", created["event_id"], "--json", "--data-dir", str(data)),
        *("--title", "Launch again", "--start", "2030-03-01T10:00+01:00"),
    )
    assert re.fullmatch(EVENT_ID, copy["event_id"])
    assert copy["event_id"] != created["event_id"]
    assert copy["presenter_url"] != created["presenter_url"]
    assert copy["host_url"] != created["host_url"]
    assert copy["title"] == "Launch again"
    assert copy["starts_at"] == "2030-03-01T09:00:00Z"
    assert copy["copied_from"] == created["event_id"]
    assert copy["copied"] == {
        "polls": 1,
        "images": 1,
        "calls_to_action": 1,
        "interaction_settings": True,
        "auto_record": True,
        "co_organisers": 1,
    }

    shown = run_json(capsys, "event", "show", copy["event_id"], "--json", "--data-dir", str(data))
    assert (shown["duration_minutes"], shown["language"], shown["lobby_message"]) == (
        45,
        "ru",
        "Welcome",
    )
    assert shown["access"]["has_attendee_password"] is True
    assert shown["access"]["capacity"] == 40
    assert shown["access"]["form_fields"] == [{"label": "Company", "required": True}]
    assert shown["auto_record"] is True
    assert shown["counts"] == {
        "in_room": 0,
        "registrations": 0,
        "invitees": 0,
        "polls": 1,
        "calls_to_action": 1,
        "recordings": 0,
        "recording_bytes": 0,
    }
    copy_id = canonical(copy["event_id"])
    with open_store(data) as store:
        # the same reminder time; a calendar entry of its own
        assert mailing.get_settings(store.connection, copy_id) == mailing.MailSettings(
            copy_id, calendar_sequence=0, reminder_minutes=1440
        )
        assert [o.username for o in accounts.organisers(store.connection, copy_id)] == ["helper"]
        assert accounts.presenters(store.connection, copy_id) == []
        (poll,) = ist.list_polls(store, copy_id)
        assert poll.state is PollState.DRAFT  # ready to launch again
        assert poll.poll_id != "po_0000000000000001"
        assert poll.launched_at is None
        option = poll.questions[0].options[0]
        assert option.text == "This"
        assert option.image_id is not None
        assert option.image_id != seeded["image_id"]
        assert poll.questions[0].options[1].image_id is None
        assert ist.get_image(store, option.image_id) == (copy_id, "image/png")
        (cta,) = ist.list_prepared_ctas(store, copy_id)
        assert (cta.message, cta.url, cta.duration_seconds) == (
            "Buy now",
            "https://shop.example",
            30,
        )
        row = store.connection.execute(
            "SELECT chat_enabled, slow_mode_seconds, qa_open, chat_muted, reactions_enabled"
            " FROM interaction_settings WHERE event_id = ?",
            (copy_id,),
        ).fetchone()
        assert tuple(row) == (0, 10, 0, "[]", 0)  # who was muted is not copied
    copied_image = data / "images" / option.image_id
    assert copied_image.read_bytes() == seeded["image"].read_bytes()

    # The copy keeps its own image when the original event goes.
    run_json(
        capsys, "event", "delete", created["event_id"], "--yes", "--json", "--data-dir", str(data)
    )
    assert copied_image.is_file()
    assert not seeded["image"].exists()


def test_duplicate_keeps_the_start_unless_told(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = make_event(capsys, data, "--start", "2030-01-31T18:00Z")
    same = run_json(
        capsys, "event", "duplicate", created["event_id"], "--json", "--data-dir", str(data)
    )
    assert (same["title"], same["starts_at"]) == ("Launch", "2030-01-31T18:00:00Z")
    assert same["copied"]["polls"] == 0
    none = run_json(
        capsys,
        *("event", "duplicate", created["event_id"], "--no-start", "--json"),
        *("--data-dir", str(data)),
    )
    assert none["starts_at"] is None
    code, out, err = run(
        capsys, "event", "duplicate", created["event_id"], "--title", "", "--data-dir", str(data)
    )
    assert (code, out) == (2, "")
    assert "title must have 1 to 200 characters" in err
    listed = run_json(capsys, "event", "list", "--json", "--data-dir", str(data))
    assert len(listed) == 3  # the refused copy made nothing


# --------------------------------------------------------------------------------- recordings


def test_recording_list_and_download(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = make_event(capsys, data)
    other = make_event(capsys, data)
    seeded = seed_everything(data, canonical(created["event_id"]), data)

    listed = run_json(capsys, "recording", "list", "--json", "--data-dir", str(data))
    assert [r["recording_id"] for r in listed] == [seeded["recording_id"]]
    (rec,) = listed
    assert rec["event_id"] == canonical(created["event_id"])
    assert rec["event_title"] == "Launch"
    assert rec["size_bytes"] == 8500
    assert rec["duration_seconds"] == 12.5
    assert [f["name"] for f in rec["files"]] == ["camera-1.webm", "audio-1.webm"]
    assert (
        run_json(
            capsys,
            *("recording", "list", "--event", other["event_id"], "--json"),
            *("--data-dir", str(data)),
        )
        == []
    )
    code, out, _err = run(capsys, "recording", "list", "--data-dir", str(data))
    assert code == 0
    assert f"{seeded['recording_id']}  {created['event_id']}  Launch" in out
    assert "camera-1.webm, audio-1.webm" in out

    target = tmp_path / "out"
    code, out, err = run(
        capsys,
        *("recording", "download", seeded["recording_id"], "--output", str(target)),
        *("--data-dir", str(data)),
    )
    assert code == 0, err
    assert out.splitlines() == [str(target / "camera-1.webm"), str(target / "audio-1.webm")]
    for name in ("camera-1.webm", "audio-1.webm"):
        assert (target / name).read_bytes() == (seeded["recording"] / name).read_bytes()

    code, out, err = run(
        capsys,
        *("recording", "download", seeded["recording_id"], "--output", str(target)),
        *("--file", "audio-1.webm", "--data-dir", str(data)),
    )
    assert (code, out) == (2, "")
    assert "exists already (--force replaces it)" in err
    (target / "audio-1.webm").write_bytes(b"changed")
    code, out, _err = run(
        capsys,
        *("recording", "download", seeded["recording_id"], "--output", str(target)),
        *("--file", "audio-1.webm", "--force", "--data-dir", str(data)),
    )
    assert out.splitlines() == [str(target / "audio-1.webm")]
    assert (target / "audio-1.webm").read_bytes() == b"audio" * 500

    for args, message in (
        (["rec_ffffffffffff"], "no recording 'rec_ffffffffffff'"),
        (["../../etc"], "no recording '../../etc'"),
        ([seeded["recording_id"], "--file", "../x.webm"], "has no file '../x.webm'"),
    ):
        code, out, err = run(capsys, "recording", "download", *args, "--data-dir", str(data))
        assert (code, out) == (2, ""), args
        assert message in err

    # Default target: ./<recording_id>/ in the working directory.
    os.chdir(tmp_path)
    code, _out, err = run(
        capsys, "recording", "download", seeded["recording_id"], "--data-dir", str(data)
    )
    assert code == 0, err
    assert (tmp_path / seeded["recording_id"] / "camera-1.webm").is_file()


# --------------------------------------------------------------------------------- WEBINAR_CONFIG


def test_webinar_config_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = tmp_path / "env.toml"
    from_env.write_text(
        f'data_dir = "{tmp_path / "env-data"}"\n[http]\npublic_url = "https://env.example"\n'
    )
    from_flag = tmp_path / "flag.toml"
    from_flag.write_text(
        f'data_dir = "{tmp_path / "flag-data"}"\n[http]\npublic_url = "https://flag.example"\n'
    )
    monkeypatch.setenv("WEBINAR_CONFIG", str(from_env))
    created = run_json(capsys, "event", "create", "--title", "T", "--json")
    assert created["attendee_url"].startswith("https://env.example/e/")
    assert (tmp_path / "env-data" / "webinar.sqlite3").is_file()
    shown = run_json(capsys, "event", "show", created["event_id"], "--json")
    assert shown["event_id"] == created["event_id"]

    # --config wins over the variable.
    flagged = run_json(
        capsys, "event", "create", "--title", "T", "--json", "--config", str(from_flag)
    )
    assert flagged["attendee_url"].startswith("https://flag.example/e/")

    code, out, _err = run(capsys, "config", "check")
    assert code == 0
    assert f"Configuration OK ({from_env} (from WEBINAR_CONFIG)" in out

    monkeypatch.setenv("WEBINAR_CONFIG", str(tmp_path / "missing.toml"))
    code, _out, err = run(capsys, "event", "list")
    assert code == 2
    assert f"config file {tmp_path / 'missing.toml'}: not found" in err

    monkeypatch.setenv("WEBINAR_CONFIG", "")  # empty: no file, the defaults
    code, out, _err = run(capsys, "config", "check")
    assert code == 0
    assert "Configuration OK (built-in defaults" in out


def test_healthcheck_without_a_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.serving import free_port

    port = free_port()  # nothing listens there
    monkeypatch.setenv("WEBINAR_HTTP_PORT", str(port))
    code, out, err = run(capsys, "healthcheck", "--timeout", "2")
    assert (code, out) == (1, "")
    assert f"http://127.0.0.1:{port}/healthz" in err
