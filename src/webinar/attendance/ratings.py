"""Ratings of an event: 1 to 5 stars and an optional comment, one per person.

People rate through a *rating token*: the room hands one to each attendee with ``room-ended``
(webinar.signalling), the thank-you e-mail carries one in its link (webinar.followup). A token
names the event and the person, and is signed (HMAC-SHA256, a key derived from the server's
secrets key, the same on every worker and after a restart) with an expiry, so it cannot be
made up, moved to another event or person, or used for ever. The person is their e-mail
address when the event knows it (a registrant, an invitee: ``e:<address>``), else attendance's
person key (``p:<key>``, the browser's own ID): a second rating of the same person, in the
room or from the e-mail, replaces the first.

The statistics show the average, the count, how many gave each number of stars and the
comments; :class:`RatingSource` puts each person's rating into the engagement export.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webinar.formats import iso_time
from webinar.i18n import _
from webinar.storage.db import Database
from webinar.storage.store import Store, SyncStore

STARS = (1, 2, 3, 4, 5)
COMMENT_MAX_CHARS = 2000
NAME_MAX_CHARS = 100
TOKEN_MAX_CHARS = 2000
#: How long a rating link works: the room's, from the end; the e-mail's, from its sending.
ROOM_TOKEN_SECONDS = 14 * 86400
MAIL_TOKEN_SECONDS = 60 * 86400
VIA = ("room", "email")


class RatingError(ValueError):
    """A rating that cannot be taken; ``code``: ``invalid-token``, ``expired``, ``bad-input``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Rater:
    """Who rates which event (what a rating token carries)."""

    event_id: str
    name: str
    email: str | None = None
    person_key: str | None = None
    #: Where the rating was asked: "room" (the ended view) or "email" (the thank-you e-mail).
    via: str = "room"

    @property
    def key(self) -> str:
        """One rating per key and event: the e-mail address, else the person key."""
        if self.email:
            return "e:" + self.email.strip().lower()
        return "p:" + (self.person_key or "")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: bytes, rater: Rater, expires_at: float) -> str:
    """A rating token for ``rater``, valid until ``expires_at`` (Unix time)."""
    if not rater.email and not rater.person_key:
        raise ValueError("a rater needs an e-mail address or a person key")
    claims: dict[str, Any] = {
        "e": rater.event_id,
        "n": rater.name[:NAME_MAX_CHARS],
        "x": int(expires_at),
        "v": rater.via,
    }
    if rater.email:
        claims["m"] = rater.email.strip().lower()
    else:
        claims["p"] = rater.person_key
    body = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{body}.{_signature(secret, body)}"


def _signature(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, b"rating:" + body.encode(), hashlib.sha256).digest()[:20])


def verify(secret: bytes, token: str, now: float) -> Rater:
    """The rater a token names; :class:`RatingError` when it is not one of ours or expired."""
    invalid = RatingError("invalid-token", _("This rating link is not valid."))
    if not token or len(token) > TOKEN_MAX_CHARS or token.count(".") != 1:
        raise invalid
    body, signature = token.split(".")
    if not hmac.compare_digest(signature, _signature(secret, body)):
        raise invalid
    try:
        claims = json.loads(_unb64(body))
        rater = Rater(
            event_id=str(claims["e"]),
            name=str(claims["n"]),
            email=str(claims["m"]) if "m" in claims else None,
            person_key=str(claims["p"]) if "p" in claims else None,
            via=str(claims["v"]),
        )
        expires = int(claims["x"])
    except (ValueError, KeyError, TypeError):
        raise invalid from None
    if rater.via not in VIA or not (rater.email or rater.person_key):
        raise invalid
    if now >= expires:
        raise RatingError("expired", _("This rating link has expired."))
    return rater


def checked(stars: object, comment: object) -> tuple[int, str]:
    """Stars (1 to 5) and the comment (stripped, at most :data:`COMMENT_MAX_CHARS`), or
    :class:`RatingError` ``bad-input`` saying what is wrong."""
    if isinstance(stars, bool) or not isinstance(stars, int | str):
        raise RatingError("bad-input", _("Choose 1 to 5 stars."))
    try:
        value = int(stars)
    except ValueError:
        raise RatingError("bad-input", _("Choose 1 to 5 stars.")) from None
    if value not in STARS:
        raise RatingError("bad-input", _("Choose 1 to 5 stars."))
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise RatingError("bad-input", _("The comment must be text."))
    text = comment.strip().replace("\r\n", "\n")
    if len(text) > COMMENT_MAX_CHARS:
        raise RatingError(
            "bad-input",
            _("The comment may have at most %(max)d characters.") % {"max": COMMENT_MAX_CHARS},
        )
    return value, text


@dataclass(frozen=True, slots=True)
class Rating:
    event_id: str
    rater: str
    name: str
    email: str | None
    person_key: str | None
    stars: int
    comment: str
    via: str  # "room" or "email"
    rated_at: float

    def as_json(self, *, zulu: bool = False) -> dict[str, Any]:
        return {
            "name": self.name,
            "email": self.email,
            "stars": self.stars,
            "comment": self.comment,
            "via": self.via,
            "rated_at": iso_time(self.rated_at, timespec="seconds", zulu=zulu),
        }


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    average: float | None  # None: no rating yet
    #: How many gave 1, 2, 3, 4 and 5 stars.
    distribution: dict[int, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "average": None if self.average is None else round(self.average, 2),
            "distribution": {str(k): v for k, v in self.distribution.items()},
        }


def summarise(ratings: list[Rating]) -> Summary:
    distribution = dict.fromkeys(STARS, 0)
    for rating in ratings:
        distribution[rating.stars] += 1
    count = len(ratings)
    average = sum(r.stars for r in ratings) / count if count else None
    return Summary(count, average, distribution)


_COLUMNS = "event_id, rater, name, email, person_key, stars, comment, via, rated_at"


def _rating(row: tuple[Any, ...]) -> Rating:
    return Rating(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        row[3],
        row[4],
        int(row[5]),
        str(row[6]),
        str(row[7]),
        float(row[8]),
    )


def sql_put(db: Database, rater: Rater, stars: int, comment: str, via: str, at: float) -> Rating:
    """Save a rating; a person's earlier rating of the event is replaced."""
    row = db.execute(
        f"INSERT INTO ratings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (event_id, rater) DO UPDATE SET name = excluded.name,"
        " email = excluded.email, person_key = coalesce(excluded.person_key,"
        " ratings.person_key), stars = excluded.stars, comment = excluded.comment,"
        " via = excluded.via, rated_at = excluded.rated_at"
        f" RETURNING {_COLUMNS}",
        (
            rater.event_id,
            rater.key,
            rater.name[:NAME_MAX_CHARS],
            rater.email.strip().lower() if rater.email else None,
            rater.person_key,
            stars,
            comment,
            via,
            at,
        ),
    ).fetchone()
    return _rating(row)


def sql_list(db: Database, event_id: str) -> list[Rating]:
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM ratings WHERE event_id = ? ORDER BY rated_at, rater",
        (event_id,),
    ).fetchall()
    return [_rating(row) for row in rows]


def sql_get(db: Database, event_id: str, rater: str) -> Rating | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM ratings WHERE event_id = ? AND rater = ?", (event_id, rater)
    ).fetchone()
    return None if row is None else _rating(row)


class Ratings:
    """Rating tokens and the ratings they give."""

    def __init__(
        self,
        store: Store,
        secret: Callable[[], bytes],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``secret`` gives the signing key (asked once, when first needed: the secrets key
        may only be there once the store is open)."""
        self.store = store
        self._get_secret = secret
        self._secret: bytes | None = None
        self.clock = clock

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = self._get_secret()
        return self._secret

    def token(self, rater: Rater, *, valid_for: float = ROOM_TOKEN_SECONDS) -> str:
        return sign(self.secret, rater, self.clock() + valid_for)

    def rater(self, token: str) -> Rater:
        """The rater of a token, or :class:`RatingError`."""
        return verify(self.secret, token, self.clock())

    async def rate(self, rater: Rater, stars: object, comment: object) -> Rating:
        """Save ``rater``'s rating (checked first: :class:`RatingError` ``bad-input``)."""
        value, text = checked(stars, comment)
        at = self.clock()
        return await self.store.run_sql(lambda db: sql_put(db, rater, value, text, rater.via, at))

    async def of(self, rater: Rater) -> Rating | None:
        return await self.store.run_sql(lambda db: sql_get(db, rater.event_id, rater.key))

    async def list(self, event_id: str) -> list[Rating]:
        return await self.store.run_sql(lambda db: sql_list(db, event_id))

    async def summary(self, event_id: str) -> Summary:
        return summarise(await self.list(event_id))


class RatingSource:
    """Each person's rating in the engagement export (``rating_stars``, ``rating_comment``):
    keyed by the rating's person key, or by the person key attendance has for its address."""

    name: str = "rating"
    columns: tuple[str, ...] = ("stars", "comment")

    def rows(self, db: SyncStore, event_id: str) -> dict[str, dict[str, Any]]:
        conn = db.connection
        keys: dict[str, str] = {}
        for email, key in conn.execute(
            "SELECT lower(email), person_key FROM attendance WHERE event_id = ?"
            " AND email IS NOT NULL ORDER BY joined_at",
            (event_id,),
        ):
            keys.setdefault(str(email), str(key))
        out: dict[str, dict[str, Any]] = {}
        for rating in sql_list(conn, event_id):
            key = rating.person_key or (keys.get(rating.email) if rating.email else None)
            if key is None:
                key = rating.rater  # rated from the e-mail, never in the room: its own row
            out[key] = {"stars": rating.stars, "comment": rating.comment}
        return out
