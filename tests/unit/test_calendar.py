"""Calendar files (webinar.ticketing.calendar), read back with the icalendar library."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import icalendar

from webinar.storage.records import Event
from webinar.ticketing.calendar import CANCEL, attach_calendar, event_calendar, uid_of

EVENT = Event(
    "123456789",
    "Launch; a, test\\ — " + "long " * 30,
    "key",
    datetime(2026, 12, 6, 13, 0, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    timezone="Europe/Prague",
    duration_minutes=90,
)


def _event(ics: bytes) -> icalendar.Event:
    cal = icalendar.Calendar.from_ical(ics)
    (entry,) = cal.walk("VEVENT")
    return entry


def test_the_event_in_its_own_zone_with_folding_and_escaping() -> None:
    ics = event_calendar(
        EVENT,
        sequence=0,
        organizer="noreply@example.org",
        attendee="ann@example.com",
        attendee_name="Ann, B",
        url="https://w.example/e/123456789?t=abc",
        description="Line 1\nLine 2; with, marks",
    )
    assert ics is not None
    assert all(len(line) <= 75 for line in ics.split(b"\r\n"))  # folded (octets)
    cal = icalendar.Calendar.from_ical(ics)
    assert str(cal["method"]) == "REQUEST"
    entry = _event(ics)
    start = entry["dtstart"].dt
    assert str(start.tzinfo) == "Europe/Prague" and start.hour == 14  # 13:00 UTC in winter
    assert (entry["dtend"].dt - start).total_seconds() == 90 * 60
    assert str(entry["summary"]) == EVENT.title
    assert str(entry["description"]) == "Line 1\nLine 2; with, marks"
    assert str(entry["uid"]) == uid_of(EVENT, "example.org")
    assert [c["tzid"] for c in cal.walk("VTIMEZONE")] == ["Europe/Prague"]
    assert entry["attendee"].params["cn"] == "Ann, B"


def test_a_moved_event_keeps_its_uid_with_a_higher_sequence_and_a_cancel_cancels() -> None:
    first = _event(event_calendar(EVENT, sequence=0, organizer="n@example.org") or b"")
    moved = dataclasses.replace(EVENT, starts_at=datetime(2026, 12, 6, 14, tzinfo=UTC))
    second = _event(event_calendar(moved, sequence=1, organizer="n@example.org") or b"")
    assert first["uid"] == second["uid"] and second["sequence"] > first["sequence"]
    assert second["dtstart"].dt.hour == 15
    cancel = event_calendar(moved, sequence=2, organizer="n@example.org", method=CANCEL)
    assert cancel is not None
    assert str(icalendar.Calendar.from_ical(cancel)["method"]) == "CANCEL"
    assert str(_event(cancel)["status"]) == "CANCELLED"


def test_no_file_without_a_start_time_and_the_attachment_names_its_method() -> None:
    undated = dataclasses.replace(EVENT, starts_at=None)
    assert event_calendar(undated, sequence=0, organizer="n@example.org") is None
    message = EmailMessage()
    message.set_content("hello")
    ics = event_calendar(EVENT, sequence=3, organizer="n@example.org", method=CANCEL)
    assert ics is not None
    attach_calendar(message, ics, method=CANCEL)
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    (part,) = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "CANCEL" and part.get_filename() == "cancel.ics"
    assert _event(part.get_payload(decode=True))["sequence"] == 3
