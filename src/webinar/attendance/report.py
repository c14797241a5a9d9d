"""The organiser's questions per registrant and invitee: did they come, for how long, late or
early, on what, and what did they think.

Registrants and invitees are ticketing's (the HTTP layer hands them in as
:class:`Registrant`); they are matched to attendance by e-mail address (what their ticket
admitted them with), and to ratings by address too. Pure functions: the statistics page, the
exports and the API all call :func:`registrant_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from webinar.formats import iso_time

from .ratings import Rating
from .service import EventStats, PersonStats

#: The columns of the registrants export, in order.
REGISTRANT_COLUMNS = (
    "kind",
    "name",
    "email",
    "status",
    "registered_at",
    "attended",
    "minutes",
    "first_join",
    "last_leave",
    "joined_late",
    "left_early",
    "device",
    "model",
    "browser",
    "os",
    "rating",
    "rating_comment",
)


@dataclass(frozen=True, slots=True)
class Registrant:
    """A registration or an invitation of the event."""

    kind: str  # "registration" or "invitation"
    name: str
    email: str
    status: str  # the registration's status, or "active" / "revoked" for an invitation
    registered_at: float


@dataclass(frozen=True, slots=True)
class RegistrantRow:
    registrant: Registrant
    person: PersonStats | None  # None: never in the room
    rating: Rating | None

    @property
    def attended(self) -> bool:
        return self.person is not None

    def as_json(self, *, zulu: bool = False) -> dict[str, Any]:
        p, r = self.person, self.rating
        return {
            "kind": self.registrant.kind,
            "name": self.registrant.name,
            "email": self.registrant.email,
            "status": self.registrant.status,
            "registered_at": iso_time(self.registrant.registered_at, timespec="seconds", zulu=zulu),
            "attended": p is not None,
            "minutes": p.minutes if p is not None else 0,
            "first_join": iso_time(p.first_join, timespec="seconds", zulu=zulu) if p else None,
            "last_leave": iso_time(p.last_leave, timespec="seconds", zulu=zulu) if p else None,
            "joined_late": p.joined_late if p is not None else None,
            "left_early": p.left_early if p is not None else None,
            "device": p.device if p is not None else None,
            "model": p.model if p is not None else None,
            "browser": p.browser if p is not None else None,
            "os": p.os if p is not None else None,
            "rating": r.stars if r is not None else None,
            "rating_comment": r.comment if r is not None else None,
        }


def registrant_rows(
    registrants: Sequence[Registrant], stats: EventStats, ratings: Sequence[Rating]
) -> list[RegistrantRow]:
    """One row per registrant or invitee, in the order given, joined with what attendance
    and the ratings say of their address."""
    by_email: dict[str, PersonStats] = {}
    for person in stats.people:
        if person.email:
            by_email.setdefault(person.email.strip().lower(), person)
    rated = {r.email: r for r in ratings if r.email}
    rows = []
    for registrant in registrants:
        address = registrant.email.strip().lower()
        rows.append(RegistrantRow(registrant, by_email.get(address), rated.get(address)))
    return rows


def device_counts(people: Sequence[PersonStats]) -> list[tuple[str, int]]:
    """How many attendees came on each kind of device, most first."""
    return _counts(p.device for p in people if p.role == "attendee")


def browser_counts(people: Sequence[PersonStats]) -> list[tuple[str, int]]:
    """How many attendees came with each browser (its name without the version), most first."""
    return _counts(_family(p.browser) for p in people if p.role == "attendee")


def _family(browser: str) -> str:
    """``Samsung Internet 25`` -> ``Samsung Internet``; ``Chrome 120 (headless)`` -> Chrome."""
    words = browser.removesuffix(" (headless)").split(" ")
    if len(words) > 1 and words[-1].isdigit():
        words = words[:-1]
    return " ".join(words)


def _counts(values: Any) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
