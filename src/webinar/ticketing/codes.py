"""Reservation codes and invitee tokens: generation, normalisation, lookup hashes.

A reservation code is 12 characters from a 31-letter alphabet without look-alikes
(no ``0 O 1 I L``), about 59 bits of entropy, shown as ``ABCD-EFGH-JKMN``. People may type
it in any case, with or without spaces or hyphens. An invitee token is a 144-bit random
URL-safe string that travels only in the invitation link's fragment.

Both are looked up by a SHA-256 hash (so a timing difference of the index lookup says
nothing about the secret) and then compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12
CODE_GROUP = 4
CODE_BITS = CODE_LENGTH * math.log2(len(CODE_ALPHABET))  # ~59.4
TOKEN_BYTES = 18
_CODE_SEPARATORS = frozenset(" \t-._\u00a0\u2010\u2011\u2012\u2013\u2014")
_MAX_CODE_INPUT = 40
_ALPHABET_SET = frozenset(CODE_ALPHABET)


def new_code() -> str:
    """A fresh reservation code in canonical form (12 characters, no separators)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str | None:
    """The canonical form of a typed code, or None when it cannot be one."""
    if len(text) > _MAX_CODE_INPUT:
        return None
    chars = [c for c in text.upper() if c not in _CODE_SEPARATORS]
    if len(chars) != CODE_LENGTH or not all(c in _ALPHABET_SET for c in chars):
        return None
    return "".join(chars)


def format_code(code: str) -> str:
    """``ABCD-EFGH-JKMN`` for people to read."""
    return "-".join(code[i : i + CODE_GROUP] for i in range(0, len(code), CODE_GROUP))


def new_token() -> str:
    """A fresh invitee token (24 URL-safe characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def looks_like_token(text: str) -> bool:
    """Whether ``text`` has the form of an invitee token (24 URL-safe characters), so entry
    checks it against the event's invitations before anything else."""
    return len(text) == 24 and all(c.isalnum() or c in "-_" for c in text) and text.isascii()


def lookup_hash(secret: str) -> str:
    """What the store indexes a code or token by."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
