"""Signed join tokens (JWT): the keys organisers sign them with, and their check at the door.

An organiser registers a key in the dashboard (or the API): an HS256 secret the server makes
and shows once (kept sealed, webinar.storage.sealing, since checking an HMAC needs the secret
itself), or the public half of an RS256 (RSA, 2048 bits or more) or EdDSA (Ed25519) key pair
whose private half never leaves the organiser's backend. Each key has an ID, the ``kid`` of
the tokens it signs. The backend signs a short-lived token per person:

- header: ``alg`` (the key's algorithm, nothing else is accepted) and ``kid``;
- claims: ``event`` (the event ID, any spelling), ``name`` (shown in the room, 1–64
  characters), ``role`` (``attendee`` or ``presenter``), ``exp``, ``iat`` and ``jti``
  (required), ``email`` and ``sub`` (the backend's own user ID; optional), ``nbf``.

A token lives at most 24 hours (``exp - iat``, and ``exp`` at most that far ahead);
clocks may differ by :data:`LEEWAY`. A key works for the events of its owner; an admin's
for every event. Refusals are typed (:class:`TokenRefusal`), each with its own code, so an
integrator's developer can tell a clock problem from a key problem from a link to the wrong
event. Plain functions on the store's connection for the keys; :class:`JoinTokens` checks.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from webinar.i18n import _, ngettext
from webinar.ids import normalize_event_id
from webinar.storage.db import Database, transaction
from webinar.storage.records import Event
from webinar.storage.store import Store

from .records import EMAIL_MAX_CHARS, check_email, from_db, now_utc, to_db


class Algorithm(enum.StrEnum):
    HS256 = "HS256"
    RS256 = "RS256"
    EDDSA = "EdDSA"


#: The longest token accepted (a join message carries it; an RS-4096 token is ~1 KB).
MAX_TOKEN_CHARS = 8192
#: The longest a token may live: ``exp - iat``, and ``exp`` from now.
MAX_LIFETIME = timedelta(hours=24)
#: How far the clocks of the organiser's backend and this server may disagree.
LEEWAY = timedelta(seconds=60)
MAX_KEYS_PER_OWNER = 20
LABEL_MAX_CHARS = 100
PEM_MAX_CHARS = 10_000
RSA_MIN_BITS = 2048
#: Display names, as typed ones (signalling's join).
NAME_MAX_CHARS = 64
SUB_MAX_CHARS = 200
JTI_MAX_CHARS = 200


class TokenCode(enum.StrEnum):
    """Why a join token is refused (the wire codes of docs/protocol.md)."""

    #: ``exp`` has passed.
    EXPIRED = "token-expired"
    #: The signature does not verify: another key, an unknown or foreign ``kid``, another
    #: algorithm than the key's.
    BAD_SIGNATURE = "token-bad-signature"
    #: Signed right, but for another event.
    WRONG_EVENT = "token-wrong-event"
    #: Not a JWT, or a claim is missing or wrong (lifetime over 24 h, ``iat`` in the future,
    #: a bad role or name).
    INVALID = "token-invalid"


class TokenRefusal(Exception):
    def __init__(self, code: TokenCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class JoinKey:
    """A key join tokens are signed with (row of ``join_keys``)."""

    key_id: str
    owner_id: int
    label: str
    algorithm: Algorithm
    created_at: datetime
    #: HS256: the shared secret (opened from its sealed form); None for a public key.
    secret: str | None = field(default=None, repr=False)
    #: RS256 / EdDSA: the public key, PEM.
    public_key: str | None = None

    def as_json(self) -> dict[str, Any]:
        """What the API and the dashboard show of a key (never its secret)."""
        return {
            "key_id": self.key_id,
            "label": self.label,
            "algorithm": self.algorithm.value,
            "created_at": to_db(self.created_at),
            "public_key": self.public_key,
        }


@dataclass(frozen=True, slots=True)
class JoinClaims:
    """What a verified token says about its bearer."""

    event_id: str
    name: str
    role: str  # "attendee" or "presenter"
    jti: str
    expires_at: datetime
    key_id: str
    email: str | None = None
    sub: str | None = None

    @property
    def seat_ticket(self) -> str:
        """The device slot of this token (one device at a time, like a single-use code)."""
        return f"jwt:{self.key_id}:{self.jti}"

    @property
    def ticket_key(self) -> str:
        """What banning its bearer bans: the backend's user ID when the token names one
        (a fresh token for the same person stays banned), else this token."""
        if self.sub is not None:
            return f"jwt-sub:{self.key_id}:{self.sub}"
        return f"jwt:{self.key_id}:{self.jti}"


# ----------------------------------------------------------------------------- keys (SQL)

_COLUMNS = "key_id, owner_id, label, algorithm, secret, public_key, created_at"


def _key(conn: Database, row: tuple[Any, ...]) -> JoinKey:
    return JoinKey(
        key_id=row[0],
        owner_id=int(row[1]),
        label=row[2],
        algorithm=Algorithm(row[3]),
        secret=conn.sealer.unseal("secret", row[4]),
        public_key=row[5],
        created_at=from_db(row[6]) or now_utc(),
    )


def new_key_id() -> str:
    return "jk_" + secrets.token_hex(8)


def new_secret() -> str:
    """An HS256 secret: 256 random bits as 43 base64url characters (used as UTF-8 bytes)."""
    return secrets.token_urlsafe(32)


def check_label(label: str) -> str:
    label = " ".join(label.split())
    if not 1 <= len(label) <= LABEL_MAX_CHARS:
        raise ValueError(
            ngettext(
                "the key's label must have 1 to %(num)d character",
                "the key's label must have 1 to %(num)d characters",
                LABEL_MAX_CHARS,
            )
            % {"num": LABEL_MAX_CHARS}
        )
    return label


def public_key_algorithm(pem: str) -> tuple[Algorithm, str]:
    """The algorithm a public key (PEM) signs with, and the PEM tidied; ValueError saying
    what is wrong with it."""
    text = pem.strip().replace("\r\n", "\n")
    if not text or len(text) > PEM_MAX_CHARS:
        raise ValueError(_("paste a public key in PEM form (-----BEGIN PUBLIC KEY-----)"))
    if "PRIVATE KEY" in text:
        raise ValueError(
            _("that is a private key: paste only the public key, keep the private key secret")
        )
    try:
        key = load_pem_public_key(text.encode())
    except (ValueError, TypeError):
        raise ValueError(_("paste a public key in PEM form (-----BEGIN PUBLIC KEY-----)")) from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < RSA_MIN_BITS:
            raise ValueError(
                _("an RSA key needs at least %(bits)d bits (this one has %(has)d)")
                % {"bits": RSA_MIN_BITS, "has": key.key_size}
            )
        return Algorithm.RS256, text + "\n"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return Algorithm.EDDSA, text + "\n"
    raise ValueError(_("only RSA (RS256) and Ed25519 (EdDSA) public keys are accepted"))


def sql_add_key(
    conn: Database,
    owner_id: int,
    label: str,
    *,
    public_key: str | None = None,
    now: datetime | None = None,
) -> JoinKey:
    """A new key of ``owner_id``: an HS256 secret made here (``public_key`` None), or the
    registered public key. ValueError: a bad label or key, or too many keys."""
    label = check_label(label)
    if public_key is None:
        algorithm, secret, pem = Algorithm.HS256, new_secret(), None
    else:
        (algorithm, pem), secret = public_key_algorithm(public_key), None
    created = now or now_utc()
    with transaction(conn, immediate=True):
        (count,) = conn.execute(
            "SELECT count(*) FROM join_keys WHERE owner_id = ?", (owner_id,)
        ).fetchone()
        if int(count) >= MAX_KEYS_PER_OWNER:
            raise ValueError(
                ngettext(
                    "at most %(num)d join-token key per account: delete one first",
                    "at most %(num)d join-token keys per account: delete one first",
                    MAX_KEYS_PER_OWNER,
                )
                % {"num": MAX_KEYS_PER_OWNER}
            )
        key_id = new_key_id()
        conn.execute(
            f"INSERT INTO join_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key_id,
                owner_id,
                label,
                algorithm.value,
                conn.sealer.seal("secret", secret),
                pem,
                to_db(created),
            ),
        )
    return JoinKey(key_id, owner_id, label, algorithm, created, secret, pem)


def sql_keys(conn: Database, owner_id: int) -> list[JoinKey]:
    """The keys of ``owner_id``, oldest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM join_keys WHERE owner_id = ? ORDER BY created_at, key_id",
        (owner_id,),
    ).fetchall()
    return [_key(conn, row) for row in rows]


def sql_delete_key(conn: Database, owner_id: int, key_id: str) -> bool:
    """Delete a key of ``owner_id``: tokens it signed stop working at once."""
    cursor = conn.execute(
        "DELETE FROM join_keys WHERE owner_id = ? AND key_id = ? RETURNING key_id",
        (owner_id, key_id),
    )
    return cursor.fetchone() is not None


def sql_signing_key(conn: Database, key_id: str) -> tuple[JoinKey, bool] | None:
    """The key with this ID and whether its owner is an admin (their keys reach every event)."""
    row = conn.execute(
        f"SELECT {', '.join('k.' + c for c in _COLUMNS.split(', '))}, u.role"
        " FROM join_keys k JOIN users u ON u.user_id = k.owner_id WHERE k.key_id = ?",
        (key_id,),
    ).fetchone()
    if row is None:
        return None
    return _key(conn, row[:-1]), row[-1] == "admin"


# ----------------------------------------------------------------------------- the check


def _bad_signature(message: str | None = None) -> TokenRefusal:
    return TokenRefusal(
        TokenCode.BAD_SIGNATURE,
        message or _("this join link was not signed by a key of this event's organiser"),
    )


def _invalid(message: str) -> TokenRefusal:
    return TokenRefusal(TokenCode.INVALID, message)


def _integer(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(_("the claim %(claim)s must be a number (Unix time)") % {"claim": name})
    return int(value)


def _text(claims: dict[str, Any], name: str, longest: int, *, required: bool) -> str | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= longest:
        raise _invalid(
            _("the claim %(claim)s must be text of 1 to %(num)d characters")
            % {"claim": name, "num": longest}
        )
    return value


def _time(unix: int) -> datetime:
    try:
        return datetime.fromtimestamp(unix, UTC)
    except (OverflowError, OSError, ValueError):
        raise _invalid(_("a time in the token is out of range")) from None


def check_token(
    token: str,
    event: Event,
    found: tuple[JoinKey, bool] | None,
    now: datetime,
    *,
    allow_expired: bool = False,
) -> JoinClaims:
    """Verify ``token`` for ``event`` with the key its ``kid`` named (``found``, from
    :func:`sql_signing_key`); the claims, or :class:`TokenRefusal`.

    ``allow_expired``: a participant coming back after a dropped connection (their resume
    token proves they were let in) is not turned away because the token expired meanwhile.
    """
    if found is None:
        raise _bad_signature()
    key, by_admin = found
    if not by_admin and key.owner_id != event.owner_id:
        raise _bad_signature()  # another organiser's key: as good as unknown here
    header = unverified_header(token)
    if header.get("alg") != key.algorithm.value:
        raise _bad_signature(
            _("the token is signed with %(alg)s, but its key is for %(key_alg)s")
            % {"alg": str(header.get("alg"))[:20], "key_alg": key.algorithm.value}
        )
    verifying: str | bytes = (
        (key.secret or "").encode() if key.algorithm is Algorithm.HS256 else key.public_key or ""
    )
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            verifying,
            algorithms=[key.algorithm.value],
            # times are checked below, on this server's clock and with our own codes
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
                "require": [],
            },
        )
    except jwt.InvalidSignatureError:
        raise _bad_signature(_("the join link's signature does not match its key")) from None
    except jwt.InvalidTokenError:
        raise _invalid(_("this is not a valid join token")) from None
    if not isinstance(claims, dict):
        raise _invalid(_("this is not a valid join token"))
    # the event first: a link to another event is wrong whenever it is used
    event_claim = claims.get("event")
    if not isinstance(event_claim, str) or normalize_event_id(event_claim) is None:
        raise _invalid(_("the claim %(claim)s must be an event ID") % {"claim": "event"})
    if normalize_event_id(event_claim) != event.event_id:
        raise TokenRefusal(TokenCode.WRONG_EVENT, _("this join link is for another event"))
    exp, iat, nbf = _integer(claims, "exp"), _integer(claims, "iat"), _integer(claims, "nbf")
    if exp is None or iat is None:
        raise _invalid(_("the token must have the claims exp and iat"))
    jti = _text(claims, "jti", JTI_MAX_CHARS, required=True)
    assert jti is not None
    expires, issued = _time(exp), _time(iat)
    if expires - issued > MAX_LIFETIME or expires - now > MAX_LIFETIME + LEEWAY:
        raise _invalid(_("a join token may live at most 24 hours (exp - iat)"))
    if issued > now + LEEWAY or (nbf is not None and _time(nbf) > now + LEEWAY):
        raise _invalid(
            _("this join token is not valid yet: is the clock of the server that signed it right?")
        )
    if expires <= now - LEEWAY and not allow_expired:
        raise TokenRefusal(TokenCode.EXPIRED, _("this join link has expired"))
    raw_name = claims.get("name")
    name = " ".join(raw_name.split()) if isinstance(raw_name, str) else ""
    if not 1 <= len(name) <= NAME_MAX_CHARS:
        raise _invalid(
            _("the claim %(claim)s must be text of 1 to %(num)d characters")
            % {"claim": "name", "num": NAME_MAX_CHARS}
        )
    role = claims.get("role")
    if role not in ("attendee", "presenter"):
        raise _invalid(_("the claim role must be attendee or presenter"))
    email = _text(claims, "email", EMAIL_MAX_CHARS, required=False)
    if email is not None:
        try:
            email = check_email(email)
        except ValueError:
            raise _invalid(_("the claim email is not an e-mail address")) from None
    sub = _text(claims, "sub", SUB_MAX_CHARS, required=False)
    return JoinClaims(
        event_id=event.event_id,
        name=name,
        role=str(role),
        jti=jti,
        expires_at=expires,
        key_id=key.key_id,
        email=email,
        sub=sub,
    )


def unverified_header(token: str) -> dict[str, Any]:
    """The token's header, before anything is verified; TokenRefusal when it is no JWT."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise _invalid(_("this is not a valid join token"))
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise _invalid(_("this is not a valid join token")) from None
    return header


class JoinTokens:
    """Checks join tokens against the keys in the store (stateless but for the store)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def check(
        self, event: Event, token: str, now: datetime, *, allow_expired: bool = False
    ) -> JoinClaims:
        """The verified claims of ``token`` for ``event``, or :class:`TokenRefusal`."""
        kid = unverified_header(token).get("kid")
        if not isinstance(kid, str) or not 1 <= len(kid) <= 64:
            raise _bad_signature(_("the token names no key (kid)"))
        found = await self.store.run_sql(lambda db: sql_signing_key(db, kid))
        return check_token(token, event, found, now, allow_expired=allow_expired)
