"""Secrets at rest: presenter and host keys, invitation tokens, reservation codes, the
HS256 secrets of join-token keys and the stream keys of live streams out.

They are kept (not only their hashes) so that links and codes can be sent again, so they are
stored encrypted with AES-256-GCM under a key kept outside the database: the environment
variable ``WEBINAR_SECRETS_KEY``, or else the file ``<data_dir>/secrets.key`` (mode 0600,
made on first start). A copy of the database alone hands out no working ticket; a backup is
restorable only together with its key (docs/deployment.md).

A sealed value reads ``s1.<key id>.<base64url(nonce | ciphertext)>``; the column's name is
the associated data, so a value cannot be moved to another column. The store seals and opens
values in Python (``Database.sealer``), so PostgreSQL and SQLite store the same text; a SQLite
connection also gets the SQL function ``seal(column, value)`` (and ``unseal``) for the
migration that seals rows written before it. NULL stays NULL.

The key source holds one or more keys: the first seals, every one opens (a rotation that
stopped half-way still reads). :func:`rotate` re-seals every value in one transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from webinar.storage.db import Database

logger = logging.getLogger(__name__)

KEY_ENV = "WEBINAR_SECRETS_KEY"
KEY_FILENAME = "secrets.key"
PREFIX = "s1."
#: Every sealed column: (table, key column, sealed column).
SEALED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("events", "event_id", "presenter_key"),
    ("events", "event_id", "host_key"),
    ("invitees", "invitee_id", "token"),
    ("registrations", "registration_id", "code"),
    ("registrations", "registration_id", "pass"),
    ("join_keys", "key_id", "secret"),
    ("event_stream_out", "event_id", "stream_key"),
)


class SealingError(Exception):
    """A key is missing or malformed, or a value does not open with any key."""


def new_key() -> str:
    """A fresh key as text (base64url of 32 random bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise SealingError(
            f"a secrets key must be 32 bytes in base64url (as `webinar secrets rotate` makes)"
            f" — got {len(raw)} bytes"
        )
    return raw


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"webinar-secrets-key:" + key).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class Sealer:
    """AES-GCM with the first key; opens with any of them."""

    keys: tuple[bytes, ...]

    @classmethod
    def from_texts(cls, texts: list[str]) -> Sealer:
        keys = tuple(_decode_key(t) for t in texts if t.strip())
        if not keys:
            raise SealingError("no secrets key given")
        return cls(keys)

    def derive(self, purpose: str) -> bytes:
        """A secret for ``purpose`` (signing links), the same in every worker process."""
        return hmac.new(self.keys[0], purpose.encode(), hashlib.sha256).digest()

    def seal(self, column: str, value: str | None) -> str | None:
        if value is None:
            return None
        key = self.keys[0]
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(key).encrypt(nonce, value.encode("utf-8"), column.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}{_key_id(key)}.{body}"

    def unseal(self, column: str, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(PREFIX):
            return value  # written before sealing (the migration seals every such row)
        try:
            key_id, body = value[len(PREFIX) :].split(".", 1)
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (ValueError, binascii.Error):
            raise SealingError(f"a sealed {column} is malformed") from None
        for key in self.keys:
            if _key_id(key) != key_id:
                continue
            try:
                plain = AESGCM(key).decrypt(raw[:12], raw[12:], column.encode())
            except InvalidTag:
                break
            return plain.decode("utf-8")
        raise SealingError(
            f"a sealed {column} does not open with the secrets key: is {KEY_ENV} or"
            f" {KEY_FILENAME} the one this database was written with?"
        )

    def install(self, conn: sqlite3.Connection) -> None:
        """Give ``conn`` the SQL functions ``seal`` and ``unseal``."""
        conn.create_function("seal", 2, self.seal, deterministic=False)
        conn.create_function("unseal", 2, self.unseal, deterministic=True)


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILENAME


def _read_key_file(path: Path) -> list[str]:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning("%s is readable by others (mode %o); making it 0600", path, mode)
        path.chmod(0o600)
    return [line for line in path.read_text().splitlines() if line.strip()]


def write_key_file(path: Path, keys: list[str]) -> None:
    """Write the key file atomically, mode 0600 from the start."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("".join(f"{k}\n" for k in keys))
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def load_sealer(
    data_dir: Path, env: Mapping[str, str] | None = None, *, create: bool = False
) -> Sealer:
    """The key from the environment, else from the key file. ``create``: make the key file
    when there is none (a database with nothing sealed yet); else its absence is an error."""
    env = os.environ if env is None else env
    from_env = env.get(KEY_ENV, "")
    if from_env.strip():
        return Sealer.from_texts(from_env.split(","))
    path = key_path(data_dir)
    if not path.exists():
        if not create:
            raise SealingError(
                f"the secrets key is missing: restore {path} from the backup it belongs to,"
                f" or set {KEY_ENV}"
            )
        write_key_file(path, [new_key()])
        logger.info("made a new secrets key in %s: back it up with the database", path)
    return Sealer.from_texts(_read_key_file(path))


def rotate(conn: Database, old: Sealer, new: Sealer) -> int:
    """Re-seal every sealed value from ``old`` to ``new`` in one transaction; how many."""
    from webinar.storage.db import transaction

    count = 0
    with transaction(conn, immediate=True):
        for table, id_column, column in SEALED_COLUMNS:
            rows = conn.execute(
                f"SELECT {id_column}, {column} FROM {table} WHERE {column} IS NOT NULL"
            ).fetchall()
            for row_id, value in rows:
                plain = old.unseal(column, value)
                conn.execute(
                    f"UPDATE {table} SET {column} = ? WHERE {id_column} = ?",
                    (new.seal(column, plain), row_id),
                )
                count += 1
    return count
