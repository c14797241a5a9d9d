"""Ticketing's tables (migrations 6 and 19): access settings, invitees, registrations,
webhooks, reminders.

Plain synchronous functions on the store's connection; async code runs them on the store's
thread with ``await store.run(lambda core: records.some_call(core.connection, ...))``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from webinar import i18n
from webinar.i18n import _, ngettext
from webinar.storage import api_tokens
from webinar.storage.db import Database, IntegrityError, recoverable, transaction
from webinar.storage.records import Event

from .codes import format_code, lookup_hash, new_code, new_token
from .grants import SecondDevice

NAME_MAX_CHARS = 100
#: The organiser's extra registration questions: how many, how long, how long an answer.
MAX_FORM_FIELDS = 10
FIELD_LABEL_MAX_CHARS = 80
ANSWER_MAX_CHARS = 500
EMAIL_MAX_CHARS = 254
MAX_SEATS = 100
#: The organiser's privacy text beside the registration form's consent checkbox.
PRIVACY_TEXT_MAX_CHARS = 2000
URL_MAX_CHARS = 2000
#: A personal join link's secret: this prefix and 24 URL-safe characters (144 bits).
PASS_PREFIX = "rp-"
_CODE_ATTEMPTS = 20


class RegistrationStatus(enum.StrEnum):
    PENDING = "pending"  # payment pending (or waiting for the organiser)
    CONFIRMED = "confirmed"  # registered (free), or paid or confirmed by hand: a code is issued
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    #: On the waiting list: every place was taken; promoted in order when one frees.
    WAITLISTED = "waitlisted"


class PaymentProvider(enum.StrEnum):
    MANUAL = "manual"
    STRIPE = "stripe"


def now_utc() -> datetime:
    return datetime.now(UTC)


def to_db(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_db(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class FormField:
    label: str
    required: bool = False


def parse_form_fields(text: str) -> tuple[FormField, ...]:
    """One question per line; a trailing ``*`` makes it required."""
    fields: list[FormField] = []
    for line in text.splitlines():
        label = " ".join(line.split())
        required = label.endswith("*")
        label = label.rstrip("*").strip()
        if not label:
            continue
        if len(label) > FIELD_LABEL_MAX_CHARS:
            raise ValueError(
                ngettext(
                    "a registration question has at most %(num)d character",
                    "a registration question has at most %(num)d characters",
                    FIELD_LABEL_MAX_CHARS,
                )
                % {"num": FIELD_LABEL_MAX_CHARS}
            )
        if label.lower() in {f.label.lower() for f in fields} | {
            "first name",
            "last name",
            "e-mail",
        }:
            raise ValueError(
                _("the registration question %(label)s is asked twice") % {"label": repr(label)}
            )
        fields.append(FormField(label, required))
    if len(fields) > MAX_FORM_FIELDS:
        raise ValueError(
            ngettext(
                "at most %(num)d extra registration question",
                "at most %(num)d extra registration questions",
                MAX_FORM_FIELDS,
            )
            % {"num": MAX_FORM_FIELDS}
        )
    return tuple(fields)


def form_fields_text(fields: tuple[FormField, ...]) -> str:
    return "\n".join(f.label + (" *" if f.required else "") for f in fields)


@dataclass(frozen=True, slots=True)
class EventAccess:
    """An event's ticketing settings (row of ``event_access``; defaults when absent)."""

    event_id: str
    attendee_password_hash: str | None = None
    presenter_password_hash: str | None = None
    price_minor: int | None = None
    currency: str | None = None
    capacity: int | None = None
    second_device: SecondDevice = SecondDevice.TAKEOVER
    payment_provider: PaymentProvider = PaymentProvider.MANUAL
    form_fields: tuple[FormField, ...] = ()
    cancelled_at: datetime | None = None
    #: People register first (open, password and token events; paid ones always do). An open
    #: event then admits only its registrants, by their personal links.
    registration_required: bool = False
    #: When every place (``capacity``) is taken, people join a waiting list instead of
    #: being refused; they are promoted in order as places free.
    waiting_list: bool = False
    #: Where the registration page sends people after they registered (None: our thank-you
    #: page).
    registration_redirect_url: str | None = None
    #: The organiser's privacy text: when set, registering needs its consent checkbox ticked.
    privacy_text: str = ""
    #: A link to the organiser's full privacy policy, shown with the text.
    privacy_url: str | None = None


_ACCESS_FIELDS = tuple(f.name for f in dataclasses.fields(EventAccess))
_BOOL_ACCESS_FIELDS = ("registration_required", "waiting_list")


def takes_registrations(access_type: str, access: EventAccess) -> bool:
    """Whether the event has a registration page: paid events always do, others when the
    organiser requires registration."""
    return access_type == "paid" or access.registration_required


def check_registration_url(value: str | None) -> str | None:
    """The page to send registrants to: an http(s) URL (empty is None)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if (
        not value.startswith(("https://", "http://"))
        or len(value) > URL_MAX_CHARS
        or any(c.isspace() for c in value)
    ):
        raise ValueError(
            _("the page after registering must be an http(s) URL of at most %(max)d characters")
            % {"max": URL_MAX_CHARS}
        )
    return value


def check_privacy_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if (
        not value.startswith(("https://", "http://"))
        or len(value) > URL_MAX_CHARS
        or any(c.isspace() for c in value)
    ):
        raise ValueError(
            _("the privacy policy link must be an http(s) URL of at most %(max)d characters")
            % {"max": URL_MAX_CHARS}
        )
    return value


def check_privacy_text(value: str) -> str:
    """The privacy text with its lines' spaces tidied (blank lines between paragraphs kept)."""
    lines = [" ".join(line.split()) for line in value.strip().splitlines()]
    text = "\n".join(lines).strip()
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    if len(text) > PRIVACY_TEXT_MAX_CHARS:
        raise ValueError(
            _("the privacy text has at most %(max)d characters") % {"max": PRIVACY_TEXT_MAX_CHARS}
        )
    return text


@dataclass(frozen=True, slots=True)
class Invitee:
    invitee_id: int
    event_id: str
    name: str
    email: str
    token: str
    created_at: datetime
    sent_at: datetime | None
    revoked_at: datetime | None
    #: The language of this person's e-mails (None: the event's, else English).
    language: str | None = None
    #: The extra columns of the CSV the invitee was imported from ({label: value}).
    fields: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


# token and code are sealed at rest (webinar.storage.sealing): sealed on the way in, opened out.
_INVITEE_COLUMNS = (
    "invitee_id, event_id, name, email, token, created_at, sent_at, revoked_at, language, fields"
)


def _invitee(conn: Database, row: tuple[Any, ...]) -> Invitee:
    return Invitee(
        invitee_id=row[0],
        event_id=row[1],
        name=row[2],
        email=row[3],
        token=conn.sealer.unseal("token", row[4]) or "",
        created_at=from_db(row[5]) or now_utc(),
        sent_at=from_db(row[6]),
        revoked_at=from_db(row[7]),
        language=row[8],
        fields={str(k): str(v) for k, v in json.loads(row[9]).items()},
    )


@dataclass(frozen=True, slots=True)
class Registration:
    registration_id: int
    event_id: str
    first_name: str
    last_name: str
    email: str
    seats: int
    status: RegistrationStatus
    amount_minor: int
    currency: str | None
    provider: PaymentProvider
    provider_ref: str | None
    code: str | None
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    checked_in_at: datetime | None
    answers: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The language the person registered in (their e-mails go out in it); None: unknown.
    language: str | None = None
    #: The secret of the person's join link (``/e/<id>#pass=…``); None for registrations
    #: made before links existed until one is given (:func:`ensure_pass`), or erased.
    join_pass: str | None = None
    #: The organiser's privacy text the person agreed to; None: none was asked.
    consent: str | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def display_code(self) -> str | None:
        return format_code(self.code) if self.code else None

    @property
    def group(self) -> bool:
        return self.seats > 1


_REG_COLUMNS = (
    "registration_id, event_id, first_name, last_name, email, seats, status, amount_minor,"
    " currency, provider, provider_ref, code, created_at, updated_at,"
    " confirmed_at, checked_in_at, answers, language, pass, consent"
)


def _registration(conn: Database, row: tuple[Any, ...]) -> Registration:
    return Registration(
        registration_id=row[0],
        event_id=row[1],
        first_name=row[2],
        last_name=row[3],
        email=row[4],
        seats=row[5],
        status=RegistrationStatus(row[6]),
        amount_minor=row[7],
        currency=row[8],
        provider=PaymentProvider(row[9]),
        provider_ref=row[10],
        code=conn.sealer.unseal("code", row[11]),
        created_at=from_db(row[12]) or now_utc(),
        updated_at=from_db(row[13]) or now_utc(),
        confirmed_at=from_db(row[14]),
        checked_in_at=from_db(row[15]),
        answers={str(k): str(v) for k, v in json.loads(row[16]).items()},
        language=row[17],
        join_pass=conn.sealer.unseal("pass", row[18]),
        consent=row[19],
    )


def new_pass() -> str:
    """A fresh personal join link secret."""
    return PASS_PREFIX + new_token()


def looks_like_pass(credential: str) -> bool:
    """Whether ``credential`` has the form of a personal link's secret (entry checks such a
    credential against registrations first)."""
    return credential.startswith(PASS_PREFIX) and 20 <= len(credential) <= 64


def check_name(label: str, value: str) -> str:
    """``value`` with its spaces tidied; ``label`` (translated) names it in a refusal."""
    value = " ".join(value.split())
    if not 1 <= len(value) <= NAME_MAX_CHARS:
        raise ValueError(
            _("%(field)s must have 1 to %(max)d characters")
            % {"field": label, "max": NAME_MAX_CHARS}
        )
    return value


def check_email(value: str) -> str:
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(value) > EMAIL_MAX_CHARS
        or any(c.isspace() or c in "<>,;\"'" for c in value)
    ):
        raise ValueError(_("the e-mail address does not look right (name@example.org)"))
    return value


# ------------------------------------------------------------------------ access settings


def get_access(conn: Database, event_id: str) -> EventAccess:
    row = conn.execute(
        f"SELECT {', '.join(_ACCESS_FIELDS)} FROM event_access WHERE event_id = ?", (event_id,)
    ).fetchone()
    if row is None:
        return EventAccess(event_id)
    values = dict(zip(_ACCESS_FIELDS, row, strict=True))
    values["second_device"] = SecondDevice(values["second_device"])
    values["payment_provider"] = PaymentProvider(values["payment_provider"])
    values["cancelled_at"] = from_db(values["cancelled_at"])
    for name in _BOOL_ACCESS_FIELDS:
        values[name] = bool(values[name])
    values["form_fields"] = tuple(
        FormField(str(f["label"]), bool(f.get("required")))
        for f in json.loads(values["form_fields"])
    )
    return EventAccess(**values)


def put_access(conn: Database, access: EventAccess) -> None:
    values = [getattr(access, name) for name in _ACCESS_FIELDS]
    values = [v.value if isinstance(v, enum.Enum) else v for v in values]
    if access.cancelled_at is not None:
        values[_ACCESS_FIELDS.index("cancelled_at")] = to_db(access.cancelled_at)
    values[_ACCESS_FIELDS.index("form_fields")] = json.dumps(
        [dataclasses.asdict(f) for f in access.form_fields]
    )
    for name in _BOOL_ACCESS_FIELDS:  # INTEGER 0/1 on both dialects
        values[_ACCESS_FIELDS.index(name)] = int(bool(getattr(access, name)))
    updates = ", ".join(f"{n} = excluded.{n}" for n in _ACCESS_FIELDS[1:])
    conn.execute(
        f"INSERT INTO event_access ({', '.join(_ACCESS_FIELDS)})"
        f" VALUES ({', '.join('?' * len(_ACCESS_FIELDS))})"
        f" ON CONFLICT (event_id) DO UPDATE SET {updates}",
        values,
    )


def copy_access(conn: Database, source_id: str, target_id: str) -> EventAccess:
    """Give ``target_id`` (a new copy of the event ``source_id``) the source's access settings:
    passwords, price, places, the second-device rule, the payment provider and the registration
    questions; not its cancellation, nor the mark of a change its people were not yet told of."""
    from .mailing import copy_settings  # the reminder time goes along (not the SEQUENCE)

    copied = dataclasses.replace(get_access(conn, source_id), event_id=target_id, cancelled_at=None)
    put_access(conn, copied)
    copy_settings(conn, source_id, target_id)
    return copied


def count_people(conn: Database, event_id: str) -> tuple[int, int]:
    """(registrations, invitees) of an event, whatever their state."""
    (registrations,) = conn.execute(
        "SELECT count(*) FROM registrations WHERE event_id = ?", (event_id,)
    ).fetchone()
    (invitees,) = conn.execute(
        "SELECT count(*) FROM invitees WHERE event_id = ?", (event_id,)
    ).fetchone()
    return int(registrations), int(invitees)


# ------------------------------------------------------------------------ invitees


def add_invitee(
    conn: Database,
    event_id: str,
    name: str,
    email: str,
    *,
    language: str | None = None,
    fields: dict[str, str] | None = None,
) -> Invitee:
    """A new invitee; ValueError when the name or address is wrong or the address is invited
    already (nothing is written then, and a transaction around it can go on)."""
    name, email = check_name(_("the name"), name), check_email(email)
    token = new_token()
    row = conn.execute(
        "INSERT INTO invitees (event_id, name, email, token, token_hash, created_at,"
        " language, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING invitee_id",
        (
            event_id,
            name,
            email,
            conn.sealer.seal("token", token),
            lookup_hash(token),
            to_db(now_utc()),
            i18n.supported(language),
            json.dumps(fields or {}, ensure_ascii=False),
        ),
    ).fetchone()
    if row is None:
        raise ValueError(_("%(email)s is invited already") % {"email": email})
    found = get_invitee(conn, int(row[0]))
    assert found is not None
    return found


def _one_invitee(conn: Database, where: str, *params: Any) -> Invitee | None:
    row = conn.execute(f"SELECT {_INVITEE_COLUMNS} FROM invitees WHERE {where}", params).fetchone()
    return None if row is None else _invitee(conn, row)


def get_invitee(conn: Database, invitee_id: int) -> Invitee | None:
    return _one_invitee(conn, "invitee_id = ?", invitee_id)


def invitee_by_token(conn: Database, event_id: str, token: str) -> Invitee | None:
    return _one_invitee(conn, "token_hash = ? AND event_id = ?", lookup_hash(token), event_id)


def list_invitees(conn: Database, event_id: str) -> list[Invitee]:
    rows = conn.execute(
        f"SELECT {_INVITEE_COLUMNS} FROM invitees WHERE event_id = ? ORDER BY invitee_id",
        (event_id,),
    ).fetchall()
    return [_invitee(conn, r) for r in rows]


def revoke_invitee(conn: Database, invitee_id: int) -> None:
    conn.execute(
        "UPDATE invitees SET revoked_at = ? WHERE invitee_id = ? AND revoked_at IS NULL",
        (to_db(now_utc()), invitee_id),
    )


def mark_invitee_sent(conn: Database, invitee_id: int) -> None:
    conn.execute(
        "UPDATE invitees SET sent_at = ? WHERE invitee_id = ?", (to_db(now_utc()), invitee_id)
    )


# ------------------------------------------------------------------------ registrations


def add_registration(
    conn: Database,
    event_id: str,
    *,
    first_name: str,
    last_name: str,
    email: str,
    seats: int,
    amount_minor: int,
    currency: str | None,
    provider: PaymentProvider,
    capacity: int | None,
    answers: dict[str, str] | None = None,
    language: str | None = None,
    status: RegistrationStatus = RegistrationStatus.PENDING,
    waiting_list: bool = False,
    consent: str | None = None,
) -> Registration:
    """A new registration in ``status`` (pending: a paid one waits for its payment;
    confirmed: a free one is registered at once), with its personal link's secret.

    ``capacity``: the places for registrations (pending and confirmed hold theirs). When
    they are taken, or when people are waiting already (nobody jumps the queue), the
    registration is ``waitlisted`` with ``waiting_list``, else refused (ValueError).
    ``language``: the one the person registered in (anything not one of ours: None)."""
    first_name = check_name(_("the first name"), first_name)
    last_name = check_name(_("the last name"), last_name)
    email = check_email(email)
    if not 1 <= seats <= MAX_SEATS:
        raise ValueError(_("a reservation has 1 to %(max)d places") % {"max": MAX_SEATS})
    if status not in (RegistrationStatus.PENDING, RegistrationStatus.CONFIRMED):
        raise ValueError(f"a registration starts pending or confirmed, not {status}")
    now = to_db(now_utc())
    join_pass = new_pass()
    with transaction(conn, immediate=True):
        if capacity is not None or waiting_list:
            taken = places_taken(conn, event_id)
            waiting = waiting_count(conn, event_id)
            full = capacity is not None and taken + seats > capacity
            if waiting_list and (full or waiting):
                status = RegistrationStatus.WAITLISTED
            elif full:
                assert capacity is not None
                raise ValueError(
                    _full_text(capacity - taken, paid=status is RegistrationStatus.PENDING)
                )
        (registration_id,) = conn.execute(
            "INSERT INTO registrations (event_id, first_name, last_name, email, seats, status,"
            " amount_minor, currency, provider, created_at, updated_at, confirmed_at, answers,"
            " language, pass, pass_hash, consent)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " RETURNING registration_id",
            (
                event_id,
                first_name,
                last_name,
                email,
                seats,
                status.value,
                amount_minor,
                currency,
                provider.value,
                now,
                now,
                now if status is RegistrationStatus.CONFIRMED else None,
                json.dumps(answers or {}),
                i18n.supported(language),
                conn.sealer.seal("pass", join_pass),
                lookup_hash(join_pass),
                consent,
            ),
        ).fetchone()
    found = get_registration(conn, int(registration_id))
    assert found is not None
    return found


def _full_text(left: int, *, paid: bool) -> str:
    left = max(0, left)
    if not paid:
        if left:
            return ngettext(
                "the event is full (%(num)d place left)",
                "the event is full (%(num)d places left)",
                left,
            ) % {"num": left}
        return _("the event is full")
    if left:
        return ngettext(
            "the event is sold out (%(num)d place left)",
            "the event is sold out (%(num)d places left)",
            left,
        ) % {"num": left}
    return _("the event is sold out")


def waiting_count(conn: Database, event_id: str) -> int:
    """How many registrations of the event are on its waiting list."""
    (count,) = conn.execute(
        "SELECT count(*) FROM registrations WHERE event_id = ? AND status = 'waitlisted'",
        (event_id,),
    ).fetchone()
    return int(count)


def waiting_position(conn: Database, registration: Registration) -> int | None:
    """The registration's place in its event's waiting list (1: next); None if not on it."""
    if registration.status is not RegistrationStatus.WAITLISTED:
        return None
    (ahead,) = conn.execute(
        "SELECT count(*) FROM registrations WHERE event_id = ? AND status = 'waitlisted'"
        " AND registration_id < ?",
        (registration.event_id, registration.registration_id),
    ).fetchone()
    return int(ahead) + 1


def promote_waiting(
    conn: Database, event_id: str, capacity: int | None, *, paid: bool
) -> list[Registration]:
    """Move people from the waiting list into the places that are free, in the order they
    registered (one that does not fit stops the queue: nobody behind them jumps it); free
    events' are confirmed, paid events' wait for their payment (pending). The promoted."""
    promoted: list[int] = []
    now = to_db(now_utc())
    with transaction(conn, immediate=True):
        taken = places_taken(conn, event_id)
        rows = conn.execute(
            "SELECT registration_id, seats FROM registrations WHERE event_id = ?"
            " AND status = 'waitlisted' ORDER BY registration_id",
            (event_id,),
        ).fetchall()
        for registration_id, seats in rows:
            if capacity is not None and taken + int(seats) > capacity:
                break
            if paid:
                conn.execute(
                    "UPDATE registrations SET status = 'pending', updated_at = ?"
                    " WHERE registration_id = ? AND status = 'waitlisted'",
                    (now, registration_id),
                )
            else:
                conn.execute(
                    "UPDATE registrations SET status = 'confirmed', confirmed_at = ?,"
                    " updated_at = ? WHERE registration_id = ? AND status = 'waitlisted'",
                    (now, now, registration_id),
                )
            taken += int(seats)
            promoted.append(int(registration_id))
    found = [get_registration(conn, registration_id) for registration_id in promoted]
    return [r for r in found if r is not None]


def registration_by_pass(conn: Database, event_id: str, join_pass: str) -> Registration | None:
    return _one_registration(
        conn, "pass_hash = ? AND event_id = ?", lookup_hash(join_pass), event_id
    )


def active_registration_by_email(conn: Database, event_id: str, email: str) -> Registration | None:
    """The person's registration of the event that still counts (confirmed, pending or on
    the waiting list), the latest if several."""
    return _one_registration(
        conn,
        "event_id = ? AND lower(email) = lower(?) AND status IN"
        " ('confirmed', 'pending', 'waitlisted') ORDER BY registration_id DESC LIMIT 1",
        event_id,
        email.strip(),
    )


def ensure_pass(conn: Database, registration_id: int) -> Registration | None:
    """The registration, given a personal link's secret if it has none (registrations made
    before links existed); an erased one (no e-mail address) gets none."""
    join_pass = new_pass()
    conn.execute(
        "UPDATE registrations SET pass = ?, pass_hash = ? WHERE registration_id = ?"
        " AND pass_hash IS NULL AND email <> ''",
        (conn.sealer.seal("pass", join_pass), lookup_hash(join_pass), registration_id),
    )
    return get_registration(conn, registration_id)


def places_taken(conn: Database, event_id: str) -> int:
    """Places held by registrations (pending and confirmed count, as when booking)."""
    (taken,) = conn.execute(
        "SELECT coalesce(sum(seats), 0) FROM registrations"
        " WHERE event_id = ? AND status IN ('pending', 'confirmed')",
        (event_id,),
    ).fetchone()
    return int(taken)


def _one_registration(conn: Database, where: str, *params: Any) -> Registration | None:
    row = conn.execute(f"SELECT {_REG_COLUMNS} FROM registrations WHERE {where}", params).fetchone()
    return None if row is None else _registration(conn, row)


def get_registration(conn: Database, registration_id: int) -> Registration | None:
    return _one_registration(conn, "registration_id = ?", registration_id)


def registration_by_code(conn: Database, event_id: str, code: str) -> Registration | None:
    return _one_registration(conn, "code_hash = ? AND event_id = ?", lookup_hash(code), event_id)


def registration_by_ref(conn: Database, provider_ref: str) -> Registration | None:
    return _one_registration(conn, "provider_ref = ?", provider_ref)


def list_registrations(conn: Database, event_id: str) -> list[Registration]:
    rows = conn.execute(
        f"SELECT {_REG_COLUMNS} FROM registrations WHERE event_id = ? ORDER BY registration_id",
        (event_id,),
    ).fetchall()
    return [_registration(conn, r) for r in rows]


def registrant_languages(conn: Database, event_id: str) -> dict[str, str]:
    """The language each of an event's registrants registered in, by lower-case e-mail
    address (the latest registration of an address decides)."""
    rows = conn.execute(
        "SELECT lower(email), language FROM registrations"
        " WHERE event_id = ? AND language IS NOT NULL ORDER BY registration_id",
        (event_id,),
    ).fetchall()
    return {str(email): str(language) for email, language in rows}


def set_provider_ref(conn: Database, registration_id: int, ref: str) -> None:
    conn.execute(
        "UPDATE registrations SET provider_ref = ?, updated_at = ? WHERE registration_id = ?",
        (ref, to_db(now_utc()), registration_id),
    )


def confirm_registration(conn: Database, registration_id: int) -> Registration | None:
    """pending -> confirmed with a fresh code. None if it was not pending (nothing changes)."""
    now = to_db(now_utc())
    for _attempt in range(_CODE_ATTEMPTS):
        code = new_code()
        try:
            with recoverable(conn):
                cursor = conn.execute(
                    "UPDATE registrations SET status = 'confirmed', code = ?,"
                    " code_hash = ?, confirmed_at = ?, updated_at = ?"
                    " WHERE registration_id = ? AND status = 'pending'",
                    (
                        conn.sealer.seal("code", code),
                        lookup_hash(code),
                        now,
                        now,
                        registration_id,
                    ),
                )
        except IntegrityError:  # a code collision (about 2^-59): draw again
            continue
        if cursor.rowcount != 1:
            return None
        return get_registration(conn, registration_id)
    raise RuntimeError("no free reservation code")


def end_registration(
    conn: Database, registration_id: int, status: RegistrationStatus
) -> Registration | None:
    """Reject (pending) or cancel (pending, confirmed or waitlisted); the code and the
    personal link stop working at once."""
    allowed = (
        ("pending",)
        if status is RegistrationStatus.REJECTED
        else ("pending", "confirmed", "waitlisted")
    )
    marks = ", ".join("?" * len(allowed))
    cursor = conn.execute(
        f"UPDATE registrations SET status = ?, updated_at = ? WHERE registration_id = ?"
        f" AND status IN ({marks})",
        (status.value, to_db(now_utc()), registration_id, *allowed),
    )
    return get_registration(conn, registration_id) if cursor.rowcount == 1 else None


def check_in(conn: Database, registration_id: int, at: datetime) -> bool:
    """Record the first entry; True if this was it."""
    cursor = conn.execute(
        "UPDATE registrations SET checked_in_at = ? WHERE registration_id = ?"
        " AND checked_in_at IS NULL",
        (to_db(at), registration_id),
    )
    return cursor.rowcount == 1


# ------------------------------------------------------------------------ payment webhooks


def apply_payment_once(
    conn: Database,
    provider: str,
    webhook_id: str,
    registration_id: int,
) -> tuple[str, Registration | None]:
    """Record the webhook and confirm the registration in one transaction.

    Returns ``("applied", registration)``, ``("duplicate", None)`` when this webhook was
    seen before, or ``("not-pending", None)`` when the registration was already settled.
    """
    with transaction(conn, immediate=True):
        inserted = conn.execute(
            "INSERT INTO payment_webhooks (provider, webhook_id, received_at, outcome)"
            " VALUES (?, ?, ?, 'applied') ON CONFLICT DO NOTHING",
            (provider, webhook_id, to_db(now_utc())),
        ).rowcount
        if inserted != 1:
            return "duplicate", None  # nothing written: the commit is empty
        confirmed = confirm_registration(conn, registration_id)
        if confirmed is None:
            conn.execute(
                "UPDATE payment_webhooks SET outcome = 'not-pending'"
                " WHERE provider = ? AND webhook_id = ?",
                (provider, webhook_id),
            )
    return ("applied", confirmed) if confirmed is not None else ("not-pending", None)


def record_webhook(conn: Database, provider: str, webhook_id: str, outcome: str) -> bool:
    """Remember a webhook that changed nothing; False if it was seen before."""
    try:
        conn.execute(
            "INSERT INTO payment_webhooks (provider, webhook_id, received_at, outcome)"
            " VALUES (?, ?, ?, ?)",
            (provider, webhook_id, to_db(now_utc()), outcome),
        )
    except IntegrityError:
        return False
    return True


# ------------------------------------------------------------------------ API tokens


def add_api_token(conn: Database, user_id: int, label: str) -> str:
    """A ``write`` token for the account (``webinar user token``); its secret."""
    _token, secret = api_tokens.create(conn, user_id, label[:100] or "api", api_tokens.Scope.WRITE)
    return secret


def revoke_api_tokens(conn: Database, user_id: int) -> int:
    return api_tokens.revoke_all(conn, user_id)


def user_id_for_api_token(conn: Database, token: str) -> int | None:
    found = api_tokens.find(conn, token)
    return None if found is None else found.user_id


def count_active_events(
    conn: Database, owner_id: int, since: datetime, *, now: datetime | None = None
) -> int:
    """Events of ``owner_id`` that count towards the active-events limit: their booking
    still runs (starting, or without a start created, after ``since``: now minus how long a
    booking lasts), and they are neither cancelled nor ended. An event has ended when its
    scheduled end (start plus duration) is past ``now``, or when its room was ended for
    everyone (the attendance kept someone leaving for that reason, or ``event_endings`` has it:
    webinar.followup)."""
    now = now or datetime.now(UTC)
    rows = conn.execute(
        "SELECT e.starts_at, e.duration_minutes FROM events e"
        " LEFT JOIN event_access a ON a.event_id = e.event_id"
        " WHERE e.owner_id = ?"
        " AND (e.starts_at > ? OR (e.starts_at IS NULL AND e.created_at > ?))"
        " AND a.cancelled_at IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM attendance t WHERE t.event_id = e.event_id"
        " AND t.leave_reason = 'ended')"
        " AND NOT EXISTS (SELECT 1 FROM event_endings n WHERE n.event_id = e.event_id)",
        (owner_id, to_db(since), to_db(since)),
    ).fetchall()
    count = 0
    for starts, minutes in rows:
        start = from_db(starts)
        if start is None or start + timedelta(minutes=int(minutes)) > now:
            count += 1
    return count


# ------------------------------------------------------------------------ reminders

#: A reminder goes out this long before the start ...
REMINDER_BEFORE = timedelta(hours=1)
#: ... unless the booking came this close to the start: then its first e-mail is the only one.
SINGLE_MESSAGE_WITHIN = timedelta(hours=6)
#: Tries per reminder (a send a restart interrupted counts as one), ...
REMINDER_ATTEMPTS = 5
#: ... the n-th failed one waiting REMINDER_RETRY_AFTER * 2 ** (n - 1) before the next.
REMINDER_RETRY_AFTER = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Reminder:
    reminder_id: int
    event_id: str
    registration_id: int | None
    invitee_id: int | None
    due_at: datetime
    state: str
    attempts: int
    #: The Message-ID every try uses, made for ``message_to``, recorded before the first send.
    message_id: str | None = None
    message_to: str | None = None
    #: A presenter of the event's team (webinar.storage.accounts) instead of a registrant
    #: or an invitee.
    presenter_id: int | None = None


_REMINDER_COLUMNS = (
    "reminder_id, event_id, registration_id, invitee_id, due_at, state, attempts,"
    " message_id, message_to, presenter_id"
)


def _reminder(row: tuple[Any, ...]) -> Reminder:
    return Reminder(
        reminder_id=row[0],
        event_id=row[1],
        registration_id=row[2],
        invitee_id=row[3],
        due_at=from_db(row[4]) or now_utc(),
        state=row[5],
        attempts=row[6],
        message_id=row[7],
        message_to=row[8],
        presenter_id=row[9],
    )


def plan_reminder(
    conn: Database,
    event_id: str,
    starts_at: datetime | None,
    now: datetime,
    *,
    registration_id: int | None = None,
    invitee_id: int | None = None,
    lead: timedelta | None = REMINDER_BEFORE,
    presenter_id: int | None = None,
) -> bool:
    """Persist a reminder ``lead`` before the start (1 hour unless the event says otherwise,
    :func:`webinar.ticketing.mailing.reminder_lead`; None: the event sends none); none when
    the start is within 6 hours (the invitation or confirmation is then the single message)
    or the reminder's time has passed. True if one was planned."""
    if lead is None or starts_at is None or starts_at - now < SINGLE_MESSAGE_WITHIN:
        return False
    if starts_at - lead <= now:
        return False
    cursor = conn.execute(
        "INSERT INTO reminders (event_id, registration_id, invitee_id, presenter_id, due_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (event_id, registration_id, invitee_id, presenter_id, to_db(starts_at - lead)),
    )
    return cursor.rowcount == 1


def move_reminders(
    conn: Database,
    event_id: str,
    starts_at: datetime | None,
    lead: timedelta | None = REMINDER_BEFORE,
) -> None:
    """The event moved (or its reminders' time changed): pending reminders follow its start
    (or are dropped without one, or when the event sends none)."""
    if starts_at is None or lead is None:
        conn.execute(
            "UPDATE reminders SET state = 'skipped' WHERE event_id = ? AND state = 'pending'",
            (event_id,),
        )
        return
    conn.execute(
        "UPDATE reminders SET due_at = ? WHERE event_id = ? AND state = 'pending'",
        (to_db(starts_at - lead), event_id),
    )


def due_reminders(conn: Database, now: datetime, limit: int = 100) -> list[Reminder]:
    rows = conn.execute(
        f"SELECT {_REMINDER_COLUMNS} FROM reminders WHERE state = 'pending' AND due_at <= ?"
        " AND (retry_at IS NULL OR retry_at <= ?) ORDER BY due_at LIMIT ?",
        (to_db(now), to_db(now), limit),
    ).fetchall()
    return [_reminder(r) for r in rows]


def list_reminders(conn: Database, event_id: str) -> list[Reminder]:
    rows = conn.execute(
        f"SELECT {_REMINDER_COLUMNS} FROM reminders WHERE event_id = ? ORDER BY reminder_id",
        (event_id,),
    ).fetchall()
    return [_reminder(r) for r in rows]


def claim_reminder(conn: Database, reminder_id: int) -> bool:
    """pending -> sending; only one claimer wins (so nothing is sent twice)."""
    cursor = conn.execute(
        "UPDATE reminders SET state = 'sending', attempts = attempts + 1"
        " WHERE reminder_id = ? AND state = 'pending'",
        (reminder_id,),
    )
    return cursor.rowcount == 1


def reminder_message_id(conn: Database, reminder_id: int, to: str, new_message_id: str) -> str:
    """The Message-ID of a claimed reminder to ``to``, recorded before it is sent: the one
    an earlier try used when it went to the same address, else ``new_message_id``."""
    row = conn.execute(
        "SELECT message_id, message_to FROM reminders WHERE reminder_id = ?", (reminder_id,)
    ).fetchone()
    if row is not None and row[0] is not None and row[1] == to:
        return str(row[0])
    conn.execute(
        "UPDATE reminders SET message_id = ?, message_to = ? WHERE reminder_id = ?",
        (new_message_id, to, reminder_id),
    )
    return new_message_id


def finish_reminder(
    conn: Database, reminder_id: int, state: str, now: datetime | None = None
) -> None:
    """sending -> sent / skipped / failed, or back to pending for another attempt after a
    back-off (failed once it has had REMINDER_ATTEMPTS)."""
    if state == "pending":
        row = conn.execute(
            "SELECT attempts FROM reminders WHERE reminder_id = ?", (reminder_id,)
        ).fetchone()
        attempts = max(1, int(row[0])) if row is not None else REMINDER_ATTEMPTS
        retry_at = (now or now_utc()) + REMINDER_RETRY_AFTER * 2 ** (attempts - 1)
        conn.execute(
            "UPDATE reminders SET state = CASE WHEN attempts >= ? THEN 'failed' ELSE 'pending'"
            " END, retry_at = ? WHERE reminder_id = ?",
            (REMINDER_ATTEMPTS, to_db(retry_at), reminder_id),
        )
        return
    conn.execute(
        "UPDATE reminders SET state = ?, sent_at = ? WHERE reminder_id = ?",
        (state, to_db(now_utc()) if state == "sent" else None, reminder_id),
    )


def resume_interrupted_reminders(conn: Database) -> tuple[int, int]:
    """At start: reminders a crash left half-sent are tried again at once (with the
    Message-ID they were given, so a copy that did arrive can be recognised), unless
    they have had all their attempts. (How many will be retried, how many failed.)"""
    failed = conn.execute(
        "UPDATE reminders SET state = 'failed' WHERE state = 'sending' AND attempts >= ?",
        (REMINDER_ATTEMPTS,),
    ).rowcount
    retried = conn.execute(
        "UPDATE reminders SET state = 'pending', retry_at = NULL WHERE state = 'sending'"
    ).rowcount
    return retried, failed


def erase_people(conn: Database, event_id: str) -> dict[str, int]:
    """Forget who registered for or was invited to one event, in one transaction.

    Registrations keep their seats, status and payment (the organiser's accounts and
    capacity) but lose the person: names, e-mail, answers to the form's questions, the
    consent, the entry code and the personal link (which then admit nobody). Invitees are
    deleted: their links stop working and their reminders go with them. Reminders of
    registrations not yet sent are skipped (there is nobody to send them to)."""
    counts: dict[str, int] = {}
    with transaction(conn, immediate=True):
        conn.execute(
            "UPDATE reminders SET state = 'skipped'"
            " WHERE event_id = ? AND state = 'pending' AND registration_id IS NOT NULL",
            (event_id,),
        )
        counts["registrations"] = conn.execute(
            "UPDATE registrations SET first_name = '', last_name = '', email = '',"
            " answers = '{}', code = NULL, code_hash = NULL, pass = NULL, pass_hash = NULL,"
            " consent = NULL, updated_at = ?"
            " WHERE event_id = ? AND NOT (first_name = '' AND last_name = '' AND email = ''"
            " AND code_hash IS NULL AND pass_hash IS NULL)",
            (to_db(now_utc()), event_id),
        ).rowcount
        counts["invitees"] = conn.execute(
            "DELETE FROM invitees WHERE event_id = ?", (event_id,)
        ).rowcount
        # their queued e-mails go with the invitees; the registrants' lose the address, and
        # the CSV previews (names and addresses) are dropped
        conn.execute(
            "UPDATE mail_outbox SET message_to = NULL, state = CASE WHEN state = 'pending'"
            " THEN 'skipped' ELSE state END WHERE event_id = ?",
            (event_id,),
        )
        conn.execute("DELETE FROM invite_imports WHERE event_id = ?", (event_id,))
    return counts


def mark_settings_changed(conn: Database, event_id: str, at: datetime | None) -> None:
    conn.execute(
        "INSERT INTO event_access (event_id, settings_changed_at) VALUES (?, ?)"
        " ON CONFLICT (event_id) DO UPDATE SET settings_changed_at = excluded.settings_changed_at",
        (event_id, None if at is None else to_db(at)),
    )


def note_event_change(conn: Database, before: Event, after: Event, now: datetime) -> int:
    """An event's settings were saved (by the dashboard, the API or the CLI): reminders follow
    its start; a new time is sent to everyone told (an update with the calendar entry's next
    SEQUENCE, queued in the outbox); after a new title only, the organiser is offered to resend.
    How many updates were queued (see :func:`webinar.ticketing.mailing.event_changed`)."""
    from .mailing import event_changed  # the mail side of ticketing builds on these tables

    return event_changed(conn, before, after, now)


def settings_changed_at(conn: Database, event_id: str) -> datetime | None:
    row = conn.execute(
        "SELECT settings_changed_at FROM event_access WHERE event_id = ?", (event_id,)
    ).fetchone()
    return None if row is None else from_db(row[0])
