"""Content passes (webinar.content.passes): whom they name, their expiry, forgeries, and the
earlier three-part form still accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac

from webinar.content import passes

SECRET = b"s" * 32


def test_a_pass_names_its_holder_and_holds_for_its_event_only() -> None:
    token, expires = passes.issue(SECRET, "123456789", "client:ab.cd", now=1000.0)
    # at least PASS_SECONDS on, rounded up to the hour: one person's passes within an hour are
    # the same (stable URLs, cached page images)
    assert expires == 46800 and expires - 1000 >= passes.PASS_SECONDS
    assert passes.issue(SECRET, "123456789", "client:ab.cd", now=3000.0)[0] == token
    assert passes.issue(SECRET, "123456789", "client:ab.cd", now=4000.0)[0] != token
    assert token.count(".") == 3
    assert passes.check(SECRET, "123456789", token, now=2000.0) == "client:ab.cd"
    assert passes.check(SECRET, "987654321", token, now=2000.0) is None
    assert passes.check(b"t" * 32, "123456789", token, now=2000.0) is None
    assert passes.check(SECRET, "123456789", token, now=expires + 1.0) is None


def test_a_pass_for_nobody_in_particular() -> None:
    token, _expires = passes.issue(SECRET, "123456789", now=1000.0)
    assert passes.check(SECRET, "123456789", token, now=1000.0) == ""


def test_changing_whom_a_pass_names_breaks_it() -> None:
    token, _expires = passes.issue(SECRET, "123456789", "client:ann", now=1000.0)
    event, expires, _who, sig = token.split(".")
    bob = base64.urlsafe_b64encode(b"client:bob").rstrip(b"=").decode()
    for forged in (
        f"{event}.{expires}.{bob}.{sig}",
        f"{event}.{int(expires) + 1}.{_who}.{sig}",
        f"{event}.{expires}.{sig}",  # dropping the name does not make a valid old pass
        token + "x",
        token[:-1],
        "x" * 400,
    ):
        assert passes.check(SECRET, "123456789", forged, now=1000.0) is None, forged


def test_passes_of_the_earlier_form_stay_valid() -> None:
    body = "123456789.99999"
    mac = hmac.new(SECRET, b"content-pass:" + body.encode(), hashlib.sha256).digest()[:18]
    old = f"{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert passes.check(SECRET, "123456789", old, now=1000.0) == ""
    assert passes.check(SECRET, "123456789", old, now=100000.0) is None
