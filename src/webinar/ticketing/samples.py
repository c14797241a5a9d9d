"""Every e-mail the server sends, rendered with sample data: the organiser's E-mails page
(``/dashboard/events/{event_id}/emails``) reads them here.

The templates live in one place, ``web/templates/email/``: ``<name>.subject.txt``, the plain
text ``<name>.txt`` and the HTML ``<name>.html`` of each. :data:`CATALOG` says what each one
is, when it goes out and the sample values it needs beyond :func:`common_values`; a template
that is in the folder but not in the catalog is shown too, with the common values (and, when
those are not enough, what is missing — ``tests/unit/test_mail_templates.py`` fails then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2

from webinar import i18n
from webinar.i18n import N_, _, gettext
from webinar.ids import format_event_id
from webinar.links import attendee_path, presenter_path
from webinar.storage.records import Event

from . import mailing
from .calendar import CANCEL, REQUEST
from .desk import TicketDesk, attach_ics, mail_zone

SAMPLE_ADDRESS = "jane@example.org"
SAMPLE_CODE = "ABCD-EFGH-JKMN"
SAMPLE_TOKEN = "SampleInvitationToken123"


@dataclass(frozen=True, slots=True)
class Entry:
    """One e-mail of :data:`CATALOG`: its template, a variant's values, what it is and when
    it goes out (both marked for translation, translated when shown)."""

    template: str
    title: str
    when: str
    values: dict[str, Any] = field(default_factory=dict)
    #: The calendar file it carries (REQUEST, CANCEL) or None.
    calendar: str | None = None
    #: Which link the sample shows: "invitation", "presenter", "event", "recording".
    link: str = "event"


CATALOG: tuple[Entry, ...] = (
    Entry(
        "invitation",
        N_("Invitation"),
        N_(
            "When you invite someone to attend, one by one or from a CSV file. The personal"
            " link admits them by name, whatever the access type."
        ),
        calendar=REQUEST,
        link="invitation",
    ),
    Entry(
        "presenter",
        N_("Invitation to present"),
        N_(
            "When you add a presenter to the event's team. It carries the presenter link;"
            " presenters also get the reminder, the changes and the cancellation."
        ),
        {"role": "presenter"},
        calendar=REQUEST,
        link="presenter",
    ),
    Entry(
        "registered",
        N_("Registered"),
        N_(
            "When someone registers for a free event (or gets a place from the waiting"
            " list), with their personal link."
        ),
        calendar=REQUEST,
        link="registration",
    ),
    Entry(
        "waitlisted",
        N_("On the waiting list"),
        N_("When someone registers while every place is taken and the event has a waiting list."),
    ),
    Entry(
        "registration",
        N_("Registration received"),
        N_("When someone registers and the registration waits for payment or for you."),
    ),
    Entry(
        "confirmed",
        N_("Registration confirmed"),
        N_("When a registration is confirmed (paid, or confirmed by you), with the code."),
        calendar=REQUEST,
        link="registration",
    ),
    Entry(
        "reminder",
        N_("Reminder"),
        N_(
            "Before the start, at the time set in the event's settings, to everyone registered"
            " or invited and to the presenters, with the calendar file; not to people who"
            " booked less than 6 hours before the start (their first e-mail is then the only"
            " one)."
        ),
        calendar=REQUEST,
        link="invitation",
    ),
    Entry(
        "updated",
        N_("Event changed"),
        N_(
            "When the event's start or length changes: to everyone who has its details, with"
            " the calendar entry updated (the same UID, a higher SEQUENCE). Also when you"
            " resend the details to everyone."
        ),
        calendar=REQUEST,
        link="invitation",
    ),
    Entry(
        "cancelled",
        N_("Event cancelled"),
        N_(
            "When you cancel the event: to everyone registered or invited; the calendar file"
            " removes the entry (METHOD:CANCEL)."
        ),
        {"paid": True},
        calendar=CANCEL,
    ),
    Entry(
        "rejected",
        N_("Registration not confirmed"),
        N_("When you reject a registration that waits for payment."),
        {"cancelled": False, "event_cancelled": False, "paid": True},
    ),
    Entry(
        "rejected",
        N_("Registration cancelled"),
        N_("When you cancel one person's registration."),
        {"cancelled": True, "event_cancelled": False, "paid": True},
        calendar=CANCEL,
    ),
    Entry(
        "thank_you",
        N_("Thank you"),
        N_(
            "After the event, to everyone who came with an e-mail address, if it is on in the"
            " event's After the event settings (with your text and subject when you set"
            " them)."
        ),
    ),
    Entry(
        "recording",
        N_("Recording link"),
        N_("When you send a published recording to people from the Recordings page."),
        link="recording",
    ),
    Entry(
        "co_organiser",
        N_("Co-organiser added"),
        N_("When you add a co-organiser to the event's team."),
        link="dashboard",
    ),
    Entry(
        "account_invitation",
        N_("Account invitation"),
        N_("When an admin invites someone to organise webinars here (People page)."),
        link="account",
    ),
    Entry(
        "password_reset",
        N_("Password link"),
        N_("When someone asks for a link to set a new password, or an admin sends one."),
        {"minutes": 60},
        link="account",
    ),
    Entry(
        "password_changed",
        N_("Password changed"),
        N_("When an account's password was changed."),
        link="account",
    ),
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One rendered e-mail of the page."""

    template: str
    title: str
    when: str
    message: EmailMessage | None
    #: Why it could not be rendered (a template needing values nobody gave it).
    error: str | None = None

    @property
    def subject(self) -> str:
        return "" if self.message is None else str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        if self.message is None:
            return ""
        body = self.message.get_body(preferencelist=(subtype,))
        if body is None or body.get_content_subtype() != subtype:
            return ""
        return str(body.get_content())

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")

    @property
    def attachments(self) -> list[str]:
        if self.message is None:
            return []
        return [a.get_filename() or a.get_content_type() for a in self.message.iter_attachments()]


def templates_in(folder: Path) -> list[str]:
    """Every e-mail template of the folder (each has a ``<name>.subject.txt``)."""
    return sorted(p.name.removesuffix(".subject.txt") for p in folder.glob("*.subject.txt"))


def common_values(
    desk: TicketDesk, event: Event, base: str, access: Any, reminder_minutes: int
) -> dict[str, Any]:
    """What every sample gets: the values the desk passes its templates, made up for a sample
    person, the event's own where it has them."""
    window = desk.ticketing.code_window(event)
    now = desk.ticketing.clock()
    return {
        "name": _("Jane Doe"),
        "event": event,
        "event_id": format_event_id(event.event_id),
        "starts_at": event.starts_at,
        "zone": mail_zone(event),
        "agenda": event.agenda,
        "link": f"{base}{attendee_path(event)}",
        "code": SAMPLE_CODE,
        "seats": 1,
        "amount_minor": access.price_minor or 2500,
        "currency": access.currency or "EUR",
        "opens": window.opens,
        "closes": window.closes,
        "role": "attendee",
        "paid": event.access_type == "paid",
        "access_type": event.access_type,
        "minutes": reminder_minutes or mailing.DEFAULT_REMINDER_MINUTES,
        "cancelled": False,
        "event_cancelled": False,
        "waitlisted": False,
        "promoted": False,
        "title": event.title,
        "until": now + timedelta(days=7),
        # registration
        "page": f"{base}{attendee_path(event)}",
        "pay_link": "",
        "position": 3,
        # after the event
        "text": "",
        "subject": "",
        "recording": None,
        "rating_url": f"{base}/rate/sample",
        "stars": [(n, f"{base}/rate/sample?stars={n}") for n in range(1, 6)],
        # accounts and teams
        "username": _("jane"),
        "organiser": _("Olga Organiser"),
        "added_by": _("Olga Organiser"),
        "invited_by": _("Olga Organiser"),
        "admin": False,
        "expires_at": now + timedelta(days=7),
        "site": base,
        "forgot": f"{base}/login/forgot",
    }


async def sample_messages(desk: TicketDesk, event: Event, language: str, base: str) -> list[Sample]:
    """Every e-mail, in the catalog's order then the folder's others, rendered in
    ``language`` for a sample person of ``event``."""
    access = await desk.access(event.event_id)
    minutes = await desk.reminder_minutes(event)
    folder = Path(desk.mailer.templates)
    links = {
        "event": f"{base}{attendee_path(event)}",
        "invitation": f"{base}{attendee_path(event)}#token={SAMPLE_TOKEN}",
        "registration": f"{base}{attendee_path(event)}#pass=rp-{SAMPLE_TOKEN}",
        "presenter": f"{base}{presenter_path(event)}",
        "recording": f"{base}/r/sample",
        "dashboard": f"{base}/dashboard/events/{format_event_id(event.event_id)}",
        "account": f"{base}/login/sample",
    }
    known = templates_in(folder)
    entries = [e for e in CATALOG if e.template in known]
    listed = {e.template for e in entries}
    entries += [Entry(name, name, "") for name in known if name not in listed]
    samples: list[Sample] = []
    brand = await desk.brand(event)  # the event's e-mails carry its branding
    with i18n.using(language):
        common = common_values(desk, event, base, access, minutes)
        common.update(brand=brand, brand_origin=base)
        for entry in entries:
            title = gettext(entry.title) if entry.template != entry.title else entry.title
            when = gettext(entry.when) if entry.when else ""
            values = {
                **common,
                "link": links[entry.link],
                "code": SAMPLE_CODE if entry.template in ("confirmed", "reminder") else None,
                "ics": entry.calendar is not None and event.starts_at is not None,
                **entry.values,
            }
            if entry.template == "reminder" and event.access_type == "paid":
                values["code"], values["link"] = SAMPLE_CODE, links["event"]
            elif entry.template == "reminder":
                values["code"] = None
            try:
                message = desk.mailer.compose(
                    entry.template, SAMPLE_ADDRESS, language=language, **values
                )
            except (jinja2.TemplateError, KeyError, TypeError, ValueError) as exc:
                samples.append(Sample(entry.template, title, when, None, error=str(exc)))
                continue
            if entry.calendar is not None:
                ics = await desk.calendar_file(
                    event,
                    to=SAMPLE_ADDRESS,
                    name=str(values["name"]),
                    url=str(values["link"]),
                    language=language,
                    method=entry.calendar,
                )
                if ics is not None:
                    attach_ics(message, ics, method=entry.calendar)
            samples.append(Sample(entry.template, title, when, message))
    return samples
