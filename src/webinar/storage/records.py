"""The store's records: what an event, a user and a dashboard sign-in are, and the rules their
fields obey. No SQL here (that is :mod:`webinar.storage.store`), so any layer may use these types.
"""

from __future__ import annotations

import dataclasses
import functools
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from webinar.i18n import LANGUAGES, N_, _, gettext
from webinar.ids import format_event_id

TITLE_MAX_CHARS = 200
EXTERNAL_URL_MAX_CHARS = 2000
AGENDA_MAX_CHARS = 4000
LOBBY_MESSAGE_MAX_CHARS = 1000


class StoreError(Exception):
    """The store cannot do what was asked (closed, newer schema, no free event ID, ...)."""


class StoreUnavailable(StoreError):
    """The database server cannot be reached now; the next call tries again."""


@dataclass(frozen=True, slots=True)
class Event:
    """A scheduled webinar."""

    #: Canonical 9-digit ID, without separators; see :attr:`display_id`.
    event_id: str
    title: str
    #: Secret that lets its holder present.
    presenter_key: str
    #: When the event is announced to start (timezone-aware, UTC), if set.
    starts_at: datetime | None
    #: When the event was created (timezone-aware, UTC).
    created_at: datetime
    #: Secret that makes its holder the host (presenter rights plus running the room).
    host_key: str = ""
    agenda: str = ""
    #: The organiser's message shown in the lobby.
    lobby_message: str = ""
    #: How many minutes before the start attendees may enter the lobby.
    join_window_minutes: int = 5
    #: Where attendees go when the event is ended for all (None: our thank-you page).
    thank_you_url: str | None = None
    owner_id: int | None = None
    #: IANA name the organiser schedules in; times are stored in UTC.
    timezone: str = "UTC"
    duration_minutes: int = 60
    access_type: str = "open"
    camera_limit: int = 4
    #: The organiser's choice of language for the event's pages and e-mails (one of
    #: :data:`webinar.i18n.LANGUAGES`); None: each attendee's own.
    language: str | None = None
    #: The external player's link as the organiser entered it (webinar.content.external),
    #: shown to admitted attendees in the room; None: no external player.
    external_url: str | None = None
    #: Who watches over HLS instead of WebRTC: one of :data:`HLS_MODES` ("off": nobody, "all":
    #: every attendee, "overflow": attendees beyond the first :attr:`hls_overflow_after`).
    hls_mode: str = "off"
    hls_overflow_after: int = 100

    @property
    def display_id(self) -> str:
        """The event ID as people read it: ``123-456-789``."""
        return format_event_id(self.event_id)

    def status(self, now: datetime) -> str:
        """``upcoming``, ``live`` (inside start..start+duration) or ``past``."""
        if self.starts_at is None:
            return "live"
        end = self.starts_at + timedelta(minutes=self.duration_minutes)
        if now < self.starts_at:
            return "upcoming"
        return "live" if now < end else "past"


@dataclass(frozen=True, slots=True)
class EventSettings:
    """What an organiser sets on an event; validated by :meth:`validated`."""

    title: str
    starts_at: datetime | None = None
    agenda: str = ""
    lobby_message: str = ""
    join_window_minutes: int = 5
    thank_you_url: str | None = None
    timezone: str = "UTC"
    duration_minutes: int = 60
    access_type: str = "open"
    camera_limit: int = 4
    language: str | None = None
    #: Checked against the providers where it is entered (webinar.content.external); here
    #: only stripped ("" is None) and limited in length.
    external_url: str | None = None
    hls_mode: str = "off"
    hls_overflow_after: int = 100

    def validated(self) -> EventSettings:
        """A normalised copy; ValueError names the first field that is wrong."""
        if self.timezone not in _zones():
            raise ValueError(
                _("unknown time zone %(zone)s (use an IANA name)") % {"zone": repr(self.timezone)}
            )
        if not 1 <= self.duration_minutes <= 1440:
            raise ValueError(_("the duration must be 1 to 1440 minutes"))
        if not 0 <= self.join_window_minutes <= 1440:
            raise ValueError(_("the join window must be 0 to 1440 minutes"))
        if self.access_type not in ACCESS_TYPES:
            raise ValueError(
                _("access type must be one of %(types)s") % {"types": ", ".join(ACCESS_TYPES)}
            )
        if not 1 <= self.camera_limit <= 7:
            raise ValueError(_("the camera limit must be 1 to 7"))
        if self.hls_mode not in HLS_MODES:
            raise ValueError(
                _("the HLS setting must be one of %(modes)s") % {"modes": ", ".join(HLS_MODES)}
            )
        if not 0 <= self.hls_overflow_after <= HLS_OVERFLOW_MAX:
            raise ValueError(
                _("the HLS threshold must be 0 to %(max)d attendees") % {"max": HLS_OVERFLOW_MAX}
            )
        if self.language is not None and self.language not in LANGUAGES:
            raise ValueError(
                _("language must be one of %(languages)s, or none")
                % {"languages": ", ".join(LANGUAGES)}
            )
        if self.starts_at is not None:
            to_db_time(self.starts_at)
        return dataclasses.replace(
            self,
            title=validate_title(self.title),
            agenda=check_text(N_("the agenda"), self.agenda, AGENDA_MAX_CHARS),
            lobby_message=check_text(
                N_("the lobby message"), self.lobby_message, LOBBY_MESSAGE_MAX_CHARS
            ),
            thank_you_url=check_url(self.thank_you_url),
            external_url=check_external_length(self.external_url),
        )


ACCESS_TYPES = ("open", "password", "token", "paid")
#: Who watches an event over HLS (webinar.broadcast.hls) instead of WebRTC.
HLS_MODES = ("off", "all", "overflow")
HLS_OVERFLOW_MAX = 100_000
HLS_OVERFLOW_DEFAULT = 100
USER_ROLES = ("admin", "organiser")
USERNAME_MAX_CHARS = 64


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    password_hash: str
    role: str  # "admin" sees every event; "organiser" their own and those they co-organise
    #: Where invitations, password resets and notices go (None: none given yet).
    email: str | None = None
    #: The events this account co-organises (webinar.storage.accounts): it manages them as
    #: their owner does. Loaded by the store's ``get_user``, ``get_user_by_name`` and
    #: ``get_session``; empty in lists of accounts.
    co_organised: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def owns(self, event: Event) -> bool:
        """Whether ``event`` is this account's own (an admin counts as every event's owner:
        it may delete it and choose its co-organisers)."""
        return self.is_admin or (event.owner_id is not None and event.owner_id == self.user_id)

    def manages(self, event: Event) -> bool:
        """Whether this account may see and change ``event``: an admin every event, an
        organiser their own and those they co-organise."""
        return self.owns(event) or event.event_id in self.co_organised


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A dashboard sign-in; only a hash of the cookie's token is stored."""

    token_hash: str
    user_id: int
    csrf_token: str
    created_at: datetime
    expires_at: datetime


def validate_username(username: str) -> str:
    name = username.strip()
    if not 1 <= len(name) <= USERNAME_MAX_CHARS or any(c.isspace() for c in name):
        raise ValueError(
            _("a user name has 1 to %(max)d characters and no spaces") % {"max": USERNAME_MAX_CHARS}
        )
    return name


EMAIL_MAX_CHARS = 254


def validate_email(value: str) -> str:
    """An e-mail address stripped; ValueError unless it looks like ``name@example.org``."""
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or domain.startswith(".")
        or domain.endswith(".")
        or len(value) > EMAIL_MAX_CHARS
        or any(c.isspace() or c in "<>,;\"'()[]\\" for c in value)
    ):
        raise ValueError(_("the e-mail address does not look right (name@example.org)"))
    return value


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def validate_title(title: str) -> str:
    """Return ``title`` stripped; raise ValueError unless it has 1 to 200 characters."""
    stripped = title.strip()
    if not 1 <= len(stripped) <= TITLE_MAX_CHARS:
        raise ValueError(_("title must have 1 to %(max)d characters") % {"max": TITLE_MAX_CHARS})
    return stripped


def to_db_time(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_text(name: str, value: str, limit: int) -> str:
    """``value`` stripped; ``name`` is the field's message (marked with ``N_``)."""
    value = value.strip()
    if len(value) > limit:
        raise ValueError(
            _("%(field)s must have at most %(max)d characters")
            % {"field": gettext(name), "max": limit}
        )
    return value


def check_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.startswith(("https://", "http://")) or len(value) > 2000:
        raise ValueError(_("the thank-you URL must be an http(s) URL of at most 2000 characters"))
    return value


def check_external_length(value: str | None) -> str | None:
    """The external player's link stripped ("" is None), at most 2000 characters; whether
    it can be shown is :func:`webinar.content.external.check_external`'s to say."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > EXTERNAL_URL_MAX_CHARS:
        raise ValueError(
            _("the external player link may have at most %(max)d characters")
            % {"max": EXTERNAL_URL_MAX_CHARS}
        )
    return value
