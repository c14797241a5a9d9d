"""Publishing a recording: signed, expiring links, sent by e-mail, optional lead capture.

An organiser *publishes* a recording for N days (at most :data:`LINK_MAX_DAYS`). A link
is ``/r/<token>`` with ``token = <publication>.<expiry>.<recipient>.<signature>``:
the signature is an HMAC-SHA256 (server secret kept in SQLite) over the rest, so a link
cannot be forged, extended or moved to another recipient; deleting the publication
revokes every link of it at once. Links sent by e-mail carry their recipient; the
general link has none and, when the publication asks for it, the viewer gives an
e-mail address before watching (lead capture). Viewers' addresses are stored with
the event (``recording_viewers``) and deleted with its personal data.

Mail goes through a :class:`Mailer`: :class:`SmtpMailer` (stdlib ``smtplib`` in a
thread) or :class:`OutboxMailer` (``.eml`` files, for servers without SMTP). Each e-mail is
in its recipient's language: the one they registered for the event in, else the event's
(its organiser's choice), else English.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

from webinar.recordings.library import RecordingInfo, RecordingService
from webinar.storage import branding
from webinar.storage.store import Store, SyncStore

LINK_MAX_DAYS = 90
MAX_RECIPIENTS = 500
EMAIL_MAX = 254
_EMAIL = re.compile(
    r"^[^@\s<>,;\"']{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?\.[A-Za-z]{2,63}$"
)


class LinkError(Exception):
    """A link that does not open: ``reason`` is ``invalid``, ``expired`` or ``revoked``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def valid_email(value: str) -> str:
    value = value.strip()
    if len(value) > EMAIL_MAX or not _EMAIL.match(value):
        raise ValueError(f"{value[:60]!r} is not an e-mail address")
    return value.lower()


#: The languages an event's registrants registered in, by lower-case e-mail address (ticketing
#: knows them; the app passes :meth:`webinar.ticketing.desk.TicketDesk.registrant_languages`).
RegistrantLanguages = Callable[[str], Awaitable[Mapping[str, str]]]


class Mailer(Protocol):
    """What sends the links: :class:`webinar.ticketing.mail.Mailer` (SMTP per the
    ``[mail]`` settings, or ``.eml`` files in the outbox), from its templates
    (``web/templates/email/recording.*``)."""

    def compose(
        self, template: str, to: str, *, language: str | None, **context: Any
    ) -> EmailMessage: ...

    async def send(self, message: EmailMessage) -> object: ...


@dataclass(frozen=True, slots=True)
class Publication:
    publication_id: str
    recording_id: str
    expires_at: float
    require_email: bool
    created_at: float
    viewers: int = 0

    @property
    def expires(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)


@dataclass(frozen=True, slots=True)
class Lead:
    """An address given at a recording's e-mail gate."""

    email: str
    first_viewed: float
    #: Links of the event's recordings it was given at.
    publications: int


@dataclass(frozen=True, slots=True)
class OpenedLink:
    publication: Publication
    recording: RecordingInfo
    recipient: str | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Publisher:
    def __init__(
        self,
        store: Store,
        recordings: RecordingService,
        mailer: Mailer,
        *,
        sender: str = "webinar@localhost",
        registrant_languages: RegistrantLanguages | None = None,
    ) -> None:
        self.store = store
        self.recordings = recordings
        self.mailer = mailer
        self.sender = sender
        self.registrant_languages = registrant_languages
        self._secret: bytes | None = None

    # ------------------------------------------------------------------ signing

    async def _key(self) -> bytes:
        if self._secret is None:

            def get(db: SyncStore) -> bytes:
                db.connection.execute(
                    "INSERT INTO server_secrets (name, value) VALUES ('recording-links', ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (secrets.token_bytes(32),),
                )
                (value,) = db.connection.execute(
                    "SELECT value FROM server_secrets WHERE name = 'recording-links'"
                ).fetchone()
                return bytes(value)

            self._secret = await self.store.run(get)
        return self._secret

    def _sign(self, key: bytes, body: str) -> str:
        return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest()[:18])

    async def token(self, publication: Publication, recipient: str | None = None) -> str:
        key = await self._key()
        who = _b64((recipient or "").encode())
        body = f"{publication.publication_id}.{int(publication.expires_at)}.{who}"
        return f"{body}.{self._sign(key, body)}"

    async def viewer_cookie(self, publication_id: str, email: str) -> str:
        key = await self._key()
        body = f"{publication_id}.{_b64(email.encode())}"
        return f"{body}.{self._sign(key, 'viewer:' + body)}"

    async def viewer_from_cookie(self, publication_id: str, value: str | None) -> str | None:
        if not value or len(value) > 600:
            return None
        parts = value.split(".")
        if len(parts) != 3 or parts[0] != publication_id:
            return None
        key = await self._key()
        if not hmac.compare_digest(parts[2], self._sign(key, "viewer:" + ".".join(parts[:2]))):
            return None
        try:
            return _unb64(parts[1]).decode()
        except (ValueError, UnicodeDecodeError):
            return None

    # ------------------------------------------------------------------ publications

    async def publish(self, recording_id: str, *, days: int, require_email: bool) -> Publication:
        if not 1 <= days <= LINK_MAX_DAYS:
            raise ValueError(f"a link may stay valid for 1 to {LINK_MAX_DAYS} days")
        if await self.recordings.get(recording_id) is None:
            raise KeyError(recording_id)
        now = time.time()
        publication = Publication(
            secrets.token_hex(12), recording_id, now + days * 86400, require_email, now
        )

        def insert(db: SyncStore) -> None:
            db.connection.execute(
                "INSERT INTO recording_publications (publication_id, recording_id, expires_at,"
                " require_email, created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    publication.publication_id,
                    recording_id,
                    publication.expires_at,
                    int(require_email),
                    now,
                ),
            )

        await self.store.run(insert)
        return publication

    async def publications(self, recording_id: str) -> list[Publication]:
        def get(db: SyncStore) -> list[Publication]:
            rows = db.connection.execute(
                "SELECT p.publication_id, p.recording_id, p.expires_at, p.require_email,"
                " p.created_at, (SELECT count(*) FROM recording_viewers v"
                " WHERE v.publication_id = p.publication_id)"
                " FROM recording_publications p WHERE p.recording_id = ? ORDER BY p.created_at",
                (recording_id,),
            ).fetchall()
            return [Publication(r[0], r[1], r[2], bool(r[3]), r[4], r[5]) for r in rows]

        return await self.store.run(get)

    async def revoke(self, publication_id: str) -> str | None:
        """Delete a publication (every link of it stops working); its recording's id."""

        def delete(db: SyncStore) -> str | None:
            row = db.connection.execute(
                "SELECT recording_id FROM recording_publications WHERE publication_id = ?",
                (publication_id,),
            ).fetchone()
            db.connection.execute(
                "DELETE FROM recording_publications WHERE publication_id = ?", (publication_id,)
            )
            return None if row is None else str(row[0])

        return await self.store.run(delete)

    async def open(self, token: str) -> OpenedLink:
        """Check a link: signature, expiry, not revoked."""
        parts = token.split(".")
        if len(token) > 600 or len(parts) != 4 or not re.fullmatch(r"[0-9a-f]{24}", parts[0]):
            raise LinkError("invalid")
        key = await self._key()
        if not hmac.compare_digest(parts[3], self._sign(key, ".".join(parts[:3]))):
            raise LinkError("invalid")
        try:
            expires = int(parts[1])
            recipient = _unb64(parts[2]).decode() or None
        except (ValueError, UnicodeDecodeError):
            raise LinkError("invalid") from None
        if time.time() >= expires:
            raise LinkError("expired")

        def get(db: SyncStore) -> Publication | None:
            row = db.connection.execute(
                "SELECT publication_id, recording_id, expires_at, require_email, created_at"
                " FROM recording_publications WHERE publication_id = ?",
                (parts[0],),
            ).fetchone()
            return (
                None if row is None else Publication(row[0], row[1], row[2], bool(row[3]), row[4])
            )

        publication = await self.store.run(get)
        if publication is None:
            raise LinkError("revoked")
        recording = await self.recordings.get(publication.recording_id)
        if recording is None:
            raise LinkError("revoked")
        return OpenedLink(publication, recording, recipient)

    async def viewed(self, link: OpenedLink, email: str, *, gate: bool = False) -> None:
        """Remember who watched: the recipient of a personal link, or (``gate``) a viewer who
        gave their address at the e-mail gate: a lead."""
        email = valid_email(email)

        def insert(db: SyncStore) -> None:
            db.connection.execute(
                "INSERT INTO recording_viewers (publication_id, event_id, email, first_viewed,"
                " gate) VALUES (?, ?, ?, ?, ?) ON CONFLICT (publication_id, email) DO NOTHING",
                (
                    link.publication.publication_id,
                    link.recording.event_id,
                    email,
                    time.time(),
                    gate,
                ),
            )

        await self.store.run(insert)

    async def leads(self, event_id: str) -> list[Lead]:
        """The addresses the e-mail gate of the event's recordings captured, first first."""

        def get(db: SyncStore) -> list[Lead]:
            rows = db.connection.execute(
                "SELECT v.email, min(v.first_viewed), count(DISTINCT v.publication_id)"
                " FROM recording_viewers v WHERE v.event_id = ? AND v.gate = 1"
                " GROUP BY v.email ORDER BY 2, 1",
                (event_id,),
            ).fetchall()
            return [Lead(str(e), float(t), int(n)) for e, t, n in rows]

        return await self.store.run(get)

    async def viewers(self, event_id: str) -> list[tuple[str, float]]:
        def get(db: SyncStore) -> list[tuple[str, float]]:
            rows = db.connection.execute(
                "SELECT email, min(first_viewed) FROM recording_viewers WHERE event_id = ?"
                " GROUP BY email ORDER BY 2",
                (event_id,),
            ).fetchall()
            return [(str(e), float(t)) for e, t in rows]

        return await self.store.run(get)

    async def delete_event_viewers(self, event_id: str) -> None:
        def delete(db: SyncStore) -> None:
            db.connection.execute("DELETE FROM recording_viewers WHERE event_id = ?", (event_id,))

        await self.store.run(delete)

    # ------------------------------------------------------------------ mail

    async def send(
        self,
        publication: Publication,
        recipients: list[str],
        *,
        base_url: str,
        title: str,
    ) -> int:
        """E-mail each recipient a personal link; returns how many were sent."""
        addresses = sorted({valid_email(r) for r in recipients})
        if len(addresses) > MAX_RECIPIENTS:
            raise ValueError(f"at most {MAX_RECIPIENTS} recipients at once")
        registrants, event_language = await self._languages(publication)
        brand = await self._brand(publication)
        for address in addresses:
            link = f"{base_url.rstrip('/')}/r/{await self.token(publication, address)}"
            message = self.mailer.compose(
                "recording",
                address,
                language=registrants.get(address) or event_language,
                title=title,
                link=link,
                until=publication.expires,
                brand=brand,
                brand_origin=base_url.rstrip("/"),
            )
            await self.mailer.send(message)
        return len(addresses)

    async def _brand(self, publication: Publication) -> branding.Brand | None:
        """The recording's event's branding (its settings over its organiser's)."""
        recording = await self.recordings.get(publication.recording_id)
        event = None if recording is None else await self.store.get_event(recording.event_id)
        if event is None:
            return None
        event_id, owner_id = event.event_id, event.owner_id
        return await self.store.run(
            lambda core: branding.sql_brand(core.connection, event_id, owner_id)
        )

    async def _languages(self, publication: Publication) -> tuple[Mapping[str, str], str | None]:
        """The languages the event's registrants registered in (by address), and the
        event's own language (None: each person's own, so English for an e-mail)."""
        recording = await self.recordings.get(publication.recording_id)
        if recording is None:
            return {}, None
        event = await self.store.get_event(recording.event_id)
        registrants: Mapping[str, str] = {}
        if self.registrant_languages is not None:
            registrants = await self.registrant_languages(recording.event_id)
        return registrants, event.language if event is not None else None
