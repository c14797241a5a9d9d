"""Calendar files (RFC 5545 iCalendar, iTIP methods of RFC 5546) for an event's e-mails.

Every invitation, registration confirmation and reminder carries one: the event in its own
time zone (a ``VTIMEZONE`` made from the IANA database, ``DTSTART;TZID=…``), with a stable
``UID`` per event and a ``SEQUENCE`` that grows each time the event's time or title changes,
so a calendar updates the entry it has rather than adding a second; a cancelled event's file
has ``METHOD:CANCEL`` and ``STATUS:CANCELLED``. Made with the ``icalendar`` library (line
folding, escaping and time zones are easy to get wrong by hand).
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import icalendar

from webinar.storage.records import Event

PRODID = "-//webinar-server//webinar//EN"
#: What a calendar file asks of its receiver: add or update the entry, or remove it.
REQUEST = "REQUEST"
CANCEL = "CANCEL"


def uid_of(event: Event, domain: str) -> str:
    """The event's calendar UID: the same in every file about it, for every recipient."""
    return f"webinar-{event.event_id}@{domain or 'localhost'}"


def _zone(event: Event) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(event.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def event_calendar(
    event: Event,
    *,
    sequence: int,
    organizer: str,
    attendee: str | None = None,
    attendee_name: str | None = None,
    url: str | None = None,
    description: str = "",
    method: str = REQUEST,
    now: datetime | None = None,
) -> bytes | None:
    """The ``.ics`` of ``event`` (None for an event without a start time: nothing to put in a
    calendar). ``organizer`` is the sender's address; ``attendee`` the recipient's."""
    if event.starts_at is None:
        return None
    zone = _zone(event)
    start = event.starts_at.astimezone(zone)
    end = start + timedelta(minutes=max(1, event.duration_minutes))
    domain = organizer.rpartition("@")[2]
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    entry = icalendar.Event()
    entry.add("uid", uid_of(event, domain))
    entry.add("sequence", sequence)
    entry.add("dtstamp", (now or datetime.now(UTC)).astimezone(UTC))
    entry.add("dtstart", start)
    entry.add("dtend", end)
    entry.add("summary", event.title)
    if description:
        entry.add("description", description)
    if url:
        entry.add("url", url)
        entry.add("location", url)
    organizer_value = icalendar.vCalAddress(f"mailto:{organizer}")
    entry.add("organizer", organizer_value)
    if attendee:
        who = icalendar.vCalAddress(f"mailto:{attendee}")
        if attendee_name:
            who.params["cn"] = icalendar.vText(attendee_name)
        who.params["role"] = icalendar.vText("REQ-PARTICIPANT")
        who.params["partstat"] = icalendar.vText("ACCEPTED")
        who.params["rsvp"] = icalendar.vText("FALSE")
        entry.add("attendee", who, encode=False)
    if method == CANCEL:
        entry.add("status", "CANCELLED")
    else:
        entry.add("status", "CONFIRMED")
        entry.add("transp", "OPAQUE")
    cal.add_component(entry)
    # the zone's rules around the event only (the whole database's history is kilobytes)
    cal.add_missing_timezones(
        first_date=start.date() - timedelta(days=366), last_date=start.date() + timedelta(days=731)
    )
    return bytes(cal.to_ical())


def attach_calendar(message: EmailMessage, ics: bytes, *, method: str = REQUEST) -> None:
    """Attach ``ics`` so mail programs offer it as a calendar entry (the ``text/calendar``
    part names its method, as iTIP mail does) and anyone can open it as a file."""
    message.add_attachment(
        ics,
        maintype="text",
        subtype="calendar",
        filename="cancel.ics" if method == CANCEL else "invite.ics",
        params={"method": method, "charset": "UTF-8"},
    )
