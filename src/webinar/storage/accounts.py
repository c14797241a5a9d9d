"""Accounts run from the browser: e-mail addresses, invitations of new accounts, password
resets, and who works on an event besides its owner: co-organisers (accounts that manage it)
and presenters (people e-mailed its presenter link).

Every link these tables back carries a random token (256 bits) that is never stored: only
its SHA-256 (:func:`webinar.accounts.token_hash`), so a copy of the database opens nothing. A
link works once (``used_at`` / ``accepted_at`` is written in the transaction that uses it, on
the condition that it was still empty) and only until it expires. A new link of the same kind
for the same person replaces the one before.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from webinar.accounts import token_hash
from webinar.i18n import _
from webinar.storage.db import Database, transaction
from webinar.storage.records import (
    USER_ROLES,
    User,
    to_db_time,
    validate_email,
    validate_username,
)

#: How long an invitation link works.
INVITATION_LIFETIME = timedelta(days=7)
#: How long a password-reset link works.
RESET_LIFETIME = timedelta(hours=1)
#: One account gets at most one reset e-mail in this span, ...
RESET_EVERY = timedelta(minutes=1)
#: ... and at most this many in an hour (a stranger cannot flood someone's mailbox).
RESETS_PER_HOUR = 5
#: Co-organisers and presenters one event may have.
MAX_CO_ORGANISERS = 20
MAX_PRESENTERS = 50
PRESENTER_NAME_MAX_CHARS = 200


class LinkError(Exception):
    """The link is unknown, used already or expired (the message says which, translated)."""


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _need_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ------------------------------------------------------------------------ e-mail addresses


def set_email(db: Database, user_id: int, email: str | None) -> str | None:
    """Give an account an e-mail address (None: none); ValueError when it does not look
    right or another account has it. The address as stored."""
    return update_account(db, user_id, email=email)


def set_role(db: Database, user_id: int, role: str) -> None:
    """Make an account an admin or an organiser; ValueError when that would leave no admin."""
    row = db.execute("SELECT email FROM users WHERE user_id = ?", (user_id,)).fetchone()
    if row is None:
        raise ValueError(_("no such account"))
    update_account(db, user_id, email=None if row[0] is None else str(row[0]), role=role)


def update_account(
    db: Database, user_id: int, *, email: str | None, role: str | None = None
) -> str | None:
    """Set an account's e-mail address (None or "": none) and, when given, its role, both or
    neither: ValueError (nothing changed) when the address looks wrong or another account has
    it, the role is not one, or the change would leave no admin. The address as stored."""
    address = None if email is None or not email.strip() else validate_email(email)
    if role is not None and role not in USER_ROLES:
        raise ValueError(_("choose the role admin or organiser"))
    with transaction(db, immediate=True):
        row = db.execute("SELECT role FROM users WHERE user_id = ?", (user_id,)).fetchone()
        if row is None:
            raise ValueError(_("no such account"))
        if (
            address is not None
            and db.execute(
                "SELECT 1 FROM users WHERE lower(email) = lower(?) AND user_id <> ?",
                (address, user_id),
            ).fetchone()
        ):
            raise ValueError(
                _("another account has the e-mail address %(email)s") % {"email": address}
            )
        if row[0] == "admin" and role not in (None, "admin") and _admins(db) <= 1:
            raise ValueError(_("the last admin cannot stop being one: make another admin first"))
        db.execute(
            "UPDATE users SET email = ?, role = ? WHERE user_id = ?",
            (address, role or row[0], user_id),
        )
    return address


def remove_account(db: Database, user_id: int) -> str:
    """Delete an account (its sessions, API tokens and co-organiser places go with it; its
    events stay, seen by admins); its user name. ValueError for the last admin."""
    with transaction(db, immediate=True):
        row = db.execute(
            "SELECT username, role FROM users WHERE user_id = ?", (user_id,)
        ).fetchone()
        if row is None:
            raise ValueError(_("no such account"))
        if row[1] == "admin" and _admins(db) <= 1:
            raise ValueError(_("the last admin cannot be removed: make another admin first"))
        db.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
    return str(row[0])


def _admins(db: Database) -> int:
    (count,) = db.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()
    return int(count)


def end_sessions(db: Database, user_id: int, *, keep: str | None = None) -> int:
    """End an account's dashboard sessions (all, or all but the one whose token hash is
    ``keep``); how many ended."""
    if keep is None:
        cursor = db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
    else:
        cursor = db.execute(
            "DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?", (user_id, keep)
        )
    return int(cursor.rowcount)


def change_password(
    db: Database, user_id: int, password_hash: str, *, keep_session: str | None = None
) -> None:
    """A new password hash for the account; every session but ``keep_session`` ends."""
    with transaction(db, immediate=True):
        cursor = db.execute(
            "UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id)
        )
        if cursor.rowcount != 1:
            raise ValueError(_("no such account"))
        end_sessions(db, user_id, keep=keep_session)
        db.execute("DELETE FROM password_resets WHERE user_id = ?", (user_id,))


# ------------------------------------------------------------------------ invitations


@dataclass(frozen=True, slots=True)
class Invitation:
    invitation_id: int
    email: str
    role: str
    invited_by: str | None  # the inviting admin's user name (None: removed since)
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None
    user_id: int | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now


_INVITATION_SELECT = (
    "SELECT i.invitation_id, i.email, i.role, u.username, i.created_at, i.expires_at,"
    " i.accepted_at, i.user_id FROM account_invitations i"
    " LEFT JOIN users u ON u.user_id = i.invited_by"
)


def _invitation(row: tuple[object, ...]) -> Invitation:
    return Invitation(
        invitation_id=int(str(row[0])),
        email=str(row[1]),
        role=str(row[2]),
        invited_by=None if row[3] is None else str(row[3]),
        created_at=_need_time(str(row[4])),
        expires_at=_need_time(str(row[5])),
        accepted_at=_time(None if row[6] is None else str(row[6])),
        user_id=None if row[7] is None else int(str(row[7])),
    )


def invite(
    db: Database,
    email: str,
    role: str,
    *,
    invited_by: int | None,
    now: datetime,
    lifetime: timedelta = INVITATION_LIFETIME,
) -> tuple[Invitation, str]:
    """Invite ``email`` to make an account with ``role``: the invitation and its link's token
    (shown once, never stored). An open invitation of the same address is replaced (its link
    stops working). ValueError when the address is taken by an account or looks wrong."""
    address = validate_email(email)
    if role not in USER_ROLES:
        raise ValueError(_("choose the role admin or organiser"))
    token, digest = _new_token()
    with transaction(db, immediate=True):
        taken = db.execute(
            "SELECT username FROM users WHERE lower(email) = lower(?)", (address,)
        ).fetchone()
        if taken is not None:
            raise ValueError(
                _("%(email)s has an account already (%(name)s)")
                % {"email": address, "name": taken[0]}
            )
        db.execute(
            "DELETE FROM account_invitations WHERE lower(email) = lower(?) AND accepted_at IS NULL",
            (address,),
        )
        (invitation_id,) = db.execute(
            "INSERT INTO account_invitations (email, role, token_hash, invited_by, created_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING invitation_id",
            (address, role, digest, invited_by, to_db_time(now), to_db_time(now + lifetime)),
        ).fetchone()
        row = db.execute(
            f"{_INVITATION_SELECT} WHERE i.invitation_id = ?", (invitation_id,)
        ).fetchone()
    return _invitation(row), token


def renew_invitation(
    db: Database, invitation_id: int, *, now: datetime, lifetime: timedelta = INVITATION_LIFETIME
) -> tuple[Invitation, str]:
    """A new link (and a new expiry) for an open invitation, to send again; the old link
    stops working. ValueError when there is no such open invitation."""
    token, digest = _new_token()
    cursor = db.execute(
        "UPDATE account_invitations SET token_hash = ?, created_at = ?, expires_at = ?"
        " WHERE invitation_id = ? AND accepted_at IS NULL",
        (digest, to_db_time(now), to_db_time(now + lifetime), invitation_id),
    )
    if cursor.rowcount != 1:
        raise ValueError(_("no such open invitation"))
    row = db.execute(f"{_INVITATION_SELECT} WHERE i.invitation_id = ?", (invitation_id,)).fetchone()
    return _invitation(row), token


def revoke_invitation(db: Database, invitation_id: int) -> bool:
    """Withdraw an open invitation (its link stops working); False if there was none."""
    cursor = db.execute(
        "DELETE FROM account_invitations WHERE invitation_id = ? AND accepted_at IS NULL",
        (invitation_id,),
    )
    return cursor.rowcount == 1


def open_invitations(db: Database) -> list[Invitation]:
    """Invitations not accepted yet (expired ones too: they can be sent again), newest first."""
    rows = db.execute(
        f"{_INVITATION_SELECT} WHERE i.accepted_at IS NULL"
        " ORDER BY i.created_at DESC, i.invitation_id DESC"
    ).fetchall()
    return [_invitation(row) for row in rows]


def get_invitation(db: Database, invitation_id: int) -> Invitation | None:
    row = db.execute(f"{_INVITATION_SELECT} WHERE i.invitation_id = ?", (invitation_id,)).fetchone()
    return None if row is None else _invitation(row)


def _usable_invitation(db: Database, token: str, now: datetime) -> Invitation:
    row = db.execute(
        f"{_INVITATION_SELECT} WHERE i.token_hash = ?", (token_hash(token),)
    ).fetchone()
    if row is None:
        raise LinkError(_("This invitation link is not valid (it may have been replaced)."))
    found = _invitation(row)
    if found.accepted_at is not None:
        raise LinkError(_("This invitation was used already: sign in instead."))
    if found.expired(now):
        raise LinkError(_("This invitation link has expired: ask for a new one."))
    return found


def check_invitation(db: Database, token: str, now: datetime) -> Invitation:
    """The open invitation of a link's token; :class:`LinkError` if it cannot be used."""
    return _usable_invitation(db, token, now)


def accept_invitation(
    db: Database, token: str, username: str, password_hash: str, *, now: datetime
) -> int:
    """Make the account an invitation offers, with this user name and password hash; its
    ID. The link is used up in the same transaction. :class:`LinkError` when the link
    cannot be used, ValueError when the name is not allowed or taken."""
    name = validate_username(username)
    with transaction(db, immediate=True):
        found = _usable_invitation(db, token, now)
        if db.execute("SELECT 1 FROM users WHERE lower(username) = lower(?)", (name,)).fetchone():
            raise ValueError(_("the user name %(name)s is taken") % {"name": name})
        if db.execute(
            "SELECT 1 FROM users WHERE lower(email) = lower(?)", (found.email,)
        ).fetchone():
            raise LinkError(
                _("%(email)s has an account already: sign in instead.") % {"email": found.email}
            )
        (user_id,) = db.execute(
            "INSERT INTO users (username, password_hash, role, created_at, email)"
            " VALUES (?, ?, ?, ?, ?) RETURNING user_id",
            (name, password_hash, found.role, to_db_time(now), found.email),
        ).fetchone()
        cursor = db.execute(
            "UPDATE account_invitations SET accepted_at = ?, user_id = ?"
            " WHERE invitation_id = ? AND accepted_at IS NULL",
            (to_db_time(now), user_id, found.invitation_id),
        )
        if cursor.rowcount != 1:  # cannot happen under the write lock; never twice anyway
            raise LinkError(_("This invitation was used already: sign in instead."))
    return int(user_id)


# ------------------------------------------------------------------------ password resets


def new_reset(
    db: Database, user_id: int, *, now: datetime, lifetime: timedelta = RESET_LIFETIME
) -> str | None:
    """A password-reset link's token for the account, or None when it had one made less
    than :data:`RESET_EVERY` ago or :data:`RESETS_PER_HOUR` in the last hour (the e-mail is
    not sent again so soon). Earlier unused links of the account stop working."""
    token, digest = _new_token()
    with transaction(db, immediate=True):
        rows = db.execute(
            "SELECT created_at FROM password_resets WHERE user_id = ? AND created_at > ?",
            (user_id, to_db_time(now - timedelta(hours=1))),
        ).fetchall()
        made = [_need_time(str(r[0])) for r in rows]
        if len(made) >= RESETS_PER_HOUR or any(t > now - RESET_EVERY for t in made):
            return None
        db.execute(
            "UPDATE password_resets SET expires_at = ? WHERE user_id = ? AND used_at IS NULL"
            " AND expires_at > ?",
            (to_db_time(now), user_id, to_db_time(now)),
        )
        db.execute(
            "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (digest, user_id, to_db_time(now), to_db_time(now + lifetime)),
        )
        # Rows older than a day serve no limit and open nothing: forget them.
        db.execute(
            "DELETE FROM password_resets WHERE user_id = ? AND created_at < ?",
            (user_id, to_db_time(now - timedelta(days=1))),
        )
    return token


def _usable_reset(db: Database, token: str, now: datetime) -> tuple[int, str, str | None]:
    row = db.execute(
        "SELECT r.user_id, r.expires_at, r.used_at, u.username, u.email FROM password_resets r"
        " JOIN users u ON u.user_id = r.user_id WHERE r.token_hash = ?",
        (token_hash(token),),
    ).fetchone()
    if row is None:
        raise LinkError(_("This password link is not valid (a newer one may have replaced it)."))
    if row[2] is not None:
        raise LinkError(_("This password link was used already: ask for a new one."))
    if _need_time(str(row[1])) <= now:
        raise LinkError(_("This password link has expired: ask for a new one."))
    return int(row[0]), str(row[3]), None if row[4] is None else str(row[4])


def check_reset(db: Database, token: str, now: datetime) -> tuple[int, str, str | None]:
    """(user ID, user name, e-mail) of a usable reset link; :class:`LinkError` if not."""
    return _usable_reset(db, token, now)


def use_reset(db: Database, token: str, password_hash: str, *, now: datetime) -> int:
    """Set the account's new password from a reset link, in one transaction: the link is
    used up, the old password stops working, every dashboard session of the account ends
    and its other reset links stop working. The account's ID; :class:`LinkError` if the link
    cannot be used."""
    with transaction(db, immediate=True):
        user_id, _name, _email = _usable_reset(db, token, now)
        cursor = db.execute(
            "UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
            (to_db_time(now), token_hash(token)),
        )
        if cursor.rowcount != 1:
            raise LinkError(_("This password link was used already: ask for a new one."))
        db.execute("UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id))
        end_sessions(db, user_id)
        db.execute(
            "UPDATE password_resets SET expires_at = ? WHERE user_id = ? AND used_at IS NULL",
            (to_db_time(now), user_id),
        )
    return user_id


# ------------------------------------------------------------------------ co-organisers


@dataclass(frozen=True, slots=True)
class Organiser:
    user_id: int
    username: str
    email: str | None
    added_at: datetime


def organisers(db: Database, event_id: str) -> list[Organiser]:
    """The event's co-organisers, in the order they were added."""
    rows = db.execute(
        "SELECT u.user_id, u.username, u.email, o.added_at FROM event_organisers o"
        " JOIN users u ON u.user_id = o.user_id WHERE o.event_id = ?"
        " ORDER BY o.added_at, u.user_id",
        (event_id,),
    ).fetchall()
    return [
        Organiser(int(r[0]), str(r[1]), None if r[2] is None else str(r[2]), _need_time(str(r[3])))
        for r in rows
    ]


def add_organiser(
    db: Database,
    event_id: str,
    user: User,
    *,
    owner_id: int | None,
    added_by: int | None,
    now: datetime,
) -> None:
    """Make ``user`` a co-organiser of the event; ValueError when they own it, are one
    already, or the event has :data:`MAX_CO_ORGANISERS`."""
    if owner_id is not None and user.user_id == owner_id:
        raise ValueError(_("%(name)s owns this event already") % {"name": user.username})
    with transaction(db, immediate=True):
        if db.execute(
            "SELECT 1 FROM event_organisers WHERE event_id = ? AND user_id = ?",
            (event_id, user.user_id),
        ).fetchone():
            raise ValueError(
                _("%(name)s co-organises this event already") % {"name": user.username}
            )
        (count,) = db.execute(
            "SELECT count(*) FROM event_organisers WHERE event_id = ?", (event_id,)
        ).fetchone()
        if int(count) >= MAX_CO_ORGANISERS:
            raise ValueError(
                _("an event may have at most %(max)d co-organisers") % {"max": MAX_CO_ORGANISERS}
            )
        db.execute(
            "INSERT INTO event_organisers (event_id, user_id, added_by, added_at)"
            " VALUES (?, ?, ?, ?)",
            (event_id, user.user_id, added_by, to_db_time(now)),
        )


def remove_organiser(db: Database, event_id: str, user_id: int) -> bool:
    cursor = db.execute(
        "DELETE FROM event_organisers WHERE event_id = ? AND user_id = ?", (event_id, user_id)
    )
    return cursor.rowcount == 1


def copy_organisers(db: Database, source_id: str, target_id: str, now: datetime) -> int:
    """The source event's co-organisers also co-organise the target (``event duplicate``);
    how many. Run it inside the caller's transaction."""
    cursor = db.execute(
        "INSERT INTO event_organisers (event_id, user_id, added_by, added_at)"
        " SELECT ?, user_id, added_by, ? FROM event_organisers WHERE event_id = ?",
        (target_id, to_db_time(now), source_id),
    )
    return int(cursor.rowcount)


# ------------------------------------------------------------------------ presenters


@dataclass(frozen=True, slots=True)
class Presenter:
    presenter_id: int
    event_id: str
    name: str
    email: str
    added_at: datetime
    sent_at: datetime | None = None


_PRESENTER_COLUMNS = "presenter_id, event_id, name, email, added_at, sent_at"


def _presenter(row: tuple[object, ...]) -> Presenter:
    return Presenter(
        presenter_id=int(str(row[0])),
        event_id=str(row[1]),
        name=str(row[2]),
        email=str(row[3]),
        added_at=_need_time(str(row[4])),
        sent_at=_time(None if row[5] is None else str(row[5])),
    )


def presenters(db: Database, event_id: str) -> list[Presenter]:
    rows = db.execute(
        f"SELECT {_PRESENTER_COLUMNS} FROM event_presenters WHERE event_id = ?"
        " ORDER BY added_at, presenter_id",
        (event_id,),
    ).fetchall()
    return [_presenter(r) for r in rows]


def get_presenter(db: Database, event_id: str, presenter_id: int) -> Presenter | None:
    row = db.execute(
        f"SELECT {_PRESENTER_COLUMNS} FROM event_presenters"
        " WHERE event_id = ? AND presenter_id = ?",
        (event_id, presenter_id),
    ).fetchone()
    return None if row is None else _presenter(row)


def add_presenter(
    db: Database, event_id: str, name: str, email: str, *, now: datetime
) -> Presenter:
    """Add a presenter (the caller e-mails them the link); ValueError for a bad name or
    address, an address already on the list, or :data:`MAX_PRESENTERS` reached."""
    name = " ".join(name.split())
    if not 1 <= len(name) <= PRESENTER_NAME_MAX_CHARS:
        raise ValueError(
            _("a presenter's name has 1 to %(max)d characters") % {"max": PRESENTER_NAME_MAX_CHARS}
        )
    address = validate_email(email)
    with transaction(db, immediate=True):
        if db.execute(
            "SELECT 1 FROM event_presenters WHERE event_id = ? AND lower(email) = lower(?)",
            (event_id, address),
        ).fetchone():
            raise ValueError(
                _("%(email)s is a presenter of this event already") % {"email": address}
            )
        (count,) = db.execute(
            "SELECT count(*) FROM event_presenters WHERE event_id = ?", (event_id,)
        ).fetchone()
        if int(count) >= MAX_PRESENTERS:
            raise ValueError(
                _("an event may have at most %(max)d presenters") % {"max": MAX_PRESENTERS}
            )
        (presenter_id,) = db.execute(
            "INSERT INTO event_presenters (event_id, name, email, added_at) VALUES (?, ?, ?, ?)"
            " RETURNING presenter_id",
            (event_id, name, address, to_db_time(now)),
        ).fetchone()
    found = get_presenter(db, event_id, int(presenter_id))
    assert found is not None
    return found


def mark_presenter_sent(db: Database, presenter_id: int, now: datetime) -> None:
    db.execute(
        "UPDATE event_presenters SET sent_at = ? WHERE presenter_id = ?",
        (to_db_time(now), presenter_id),
    )


def remove_presenter(db: Database, event_id: str, presenter_id: int) -> bool:
    cursor = db.execute(
        "DELETE FROM event_presenters WHERE event_id = ? AND presenter_id = ?",
        (event_id, presenter_id),
    )
    return cursor.rowcount == 1
