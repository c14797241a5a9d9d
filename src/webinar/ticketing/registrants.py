"""The export of an event's registrants: one CSV row per registration, whatever the event's
access type (free registrations, paid reservations, the waiting list), for the dashboard
(``/dashboard/events/{id}/registrations.csv``) and the API
(``/api/v1/events/{id}/registrations.csv``).

Secrets stay out of it: neither the reservation code nor the personal link is exported.
"""

from __future__ import annotations

from typing import Any

from webinar.formats import csv_text, iso_time
from webinar.i18n import format_amount

from .records import EventAccess, Registration

#: The fixed columns, in order; one column per registration question follows (the event's
#: questions in form order, then any other question an older registration answered).
COLUMNS: tuple[str, ...] = (
    "registration_id",
    "first_name",
    "last_name",
    "email",
    "status",
    "waiting_position",
    "seats",
    "amount",
    "currency",
    "provider",
    "language",
    "created_at",
    "confirmed_at",
    "checked_in_at",
    "consent",
)


def question_labels(access: EventAccess, registrations: list[Registration]) -> list[str]:
    labels = [f.label for f in access.form_fields]
    for registration in registrations:
        for label in registration.answers:
            if label not in labels:
                labels.append(label)
    return labels


def rows(
    access: EventAccess, registrations: list[Registration]
) -> tuple[list[str], list[list[Any]]]:
    """The header and the rows, oldest registration first. ``consent`` is the privacy
    text the person agreed to (empty: none was asked)."""
    labels = question_labels(access, registrations)
    position = 0
    out: list[list[Any]] = []
    for r in sorted(registrations, key=lambda r: r.registration_id):
        waiting = ""
        if r.status.value == "waitlisted":
            position += 1
            waiting = str(position)
        out.append(
            [
                r.registration_id,
                r.first_name,
                r.last_name,
                r.email,
                r.status.value,
                waiting,
                r.seats,
                format_amount(r.amount_minor) if r.currency else "",
                r.currency or "",
                r.provider.value,
                r.language or "",
                iso_time(r.created_at, zulu=True),
                iso_time(r.confirmed_at, zulu=True) or "",
                iso_time(r.checked_in_at, zulu=True) or "",
                r.consent or "",
                *(r.answers.get(label, "") for label in labels),
            ]
        )
    return [*COLUMNS, *labels], out


def to_csv(access: EventAccess, registrations: list[Registration], *, bom: bool = False) -> bytes:
    """RFC 4180 CSV in UTF-8 (``bom``: with a byte-order mark, for spreadsheet programs);
    every cell is safe from formula injection (:func:`webinar.formats.safe_cell`)."""
    header, body = rows(access, registrations)
    text = csv_text(header, body)
    return ("\ufeff" + text if bom else text).encode("utf-8")
