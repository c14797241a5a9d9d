"""The pure parts of join tokens and embedding: origins as browsers write them, the claims a
token must have, and the times it is judged by (this server's clock, 60 s of leeway)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from webinar.http.headers import event_of
from webinar.storage.records import Event
from webinar.ticketing.embedding import MAX_ORIGINS_PER_EVENT, check_origin, parse_origins
from webinar.ticketing.join_tokens import (
    Algorithm,
    JoinKey,
    TokenCode,
    TokenRefusal,
    check_token,
)

NOW = datetime(2031, 3, 30, 10, 0, tzinfo=UTC)
SECRET = "s" * 43
KEY = JoinKey("jk_1", 7, "CRM", Algorithm.HS256, NOW, SECRET)
EVENT = Event("123456789", "Talk", "pk", None, NOW, owner_id=7)


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://www.example.org", "https://www.example.org"),
        ("  HTTPS://WWW.Example.ORG/ ", "https://www.example.org"),
        ("http://127.0.0.3:8080", "http://127.0.0.3:8080"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_origins_are_written_as_browsers_send_them(text: str, origin: str) -> None:
    assert check_origin(text) == origin


@pytest.mark.parametrize(
    "text",
    [
        "www.example.org",
        "https://www.example.org/members",
        "https://*.example.org",
        "javascript:alert(1)",
        "https://user:pw@example.org",
        "https://example.org?x=1",
        "https://example.org;script-src *",
        "https://example.org 'unsafe-inline'",
        "ftp://example.org",
        "https://example.org:99999",
        "https://",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an origin"):
        check_origin(text)


def test_a_list_of_origins() -> None:
    assert parse_origins(["https://a.org", "", "https://A.org/", "https://b.org"]) == (
        "https://a.org",
        "https://b.org",
    )
    with pytest.raises(ValueError, match="at most"):
        parse_origins([f"https://s{i}.example" for i in range(MAX_ORIGINS_PER_EVENT + 1)])


def test_the_event_of_a_page() -> None:
    assert event_of("/e/123-456-789") == "123456789"
    assert event_of("/e/123456789/register") == "123456789"
    assert event_of("/e/nope") is None and event_of("/dashboard") is None


def sign(**claims: object) -> str:
    now = int(NOW.timestamp())
    body = {"event": "123-456-789", "name": "Ann", "role": "attendee", "iat": now,
            "exp": now + 300, "jti": "j1", **claims}  # fmt: skip
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None},
        SECRET,
        algorithm="HS256",
        headers={"kid": "jk_1"},
    )


def refusal(token: str, now: datetime = NOW, **kw: bool) -> TokenCode:
    with pytest.raises(TokenRefusal) as err:
        check_token(token, EVENT, (KEY, False), now, **kw)
    return err.value.code


def test_a_good_token_and_its_claims() -> None:
    claims = check_token(sign(sub="u-1", email="ann@example.org"), EVENT, (KEY, False), NOW)
    assert (claims.name, claims.role, claims.sub, claims.email) == (
        "Ann",
        "attendee",
        "u-1",
        "ann@example.org",
    )
    assert claims.seat_ticket == "jwt:jk_1:j1" and claims.ticket_key == "jwt-sub:jk_1:u-1"
    assert check_token(sign(), EVENT, (KEY, False), NOW).ticket_key == "jwt:jk_1:j1"


def test_times_are_judged_by_this_servers_clock_with_a_minutes_leeway() -> None:
    token = sign()  # exp: NOW + 5 min
    assert check_token(token, EVENT, (KEY, False), NOW + timedelta(minutes=5, seconds=59))
    assert refusal(token, NOW + timedelta(minutes=6)) is TokenCode.EXPIRED
    # a participant coming back after a drop is let back in
    assert check_token(token, EVENT, (KEY, False), NOW + timedelta(hours=1), allow_expired=True)
    # issued up to a minute "in the future" (clocks differ) is fine, more is not
    assert check_token(token, EVENT, (KEY, False), NOW - timedelta(seconds=59))
    assert refusal(token, NOW - timedelta(seconds=61)) is TokenCode.INVALID
    # 24 hours at most, however it is spelled
    now = int(NOW.timestamp())
    assert refusal(sign(exp=now + 24 * 3600 + 1)) is TokenCode.INVALID
    assert refusal(sign(iat=now - 3600, exp=now + 23 * 3600 + 1)) is TokenCode.INVALID
    assert check_token(sign(exp=now + 24 * 3600), EVENT, (KEY, False), NOW)
    assert refusal(sign(iat=True)) is TokenCode.INVALID  # a boolean is no time
    assert refusal(sign(nbf=now + 120)) is TokenCode.INVALID


def test_whose_key() -> None:
    stranger = Event("123456789", "Talk", "pk", None, NOW, owner_id=8)
    with pytest.raises(TokenRefusal) as err:
        check_token(sign(), stranger, (KEY, False), NOW)
    assert err.value.code is TokenCode.BAD_SIGNATURE
    assert check_token(sign(), stranger, (KEY, True), NOW)  # an admin's key: every event
    with pytest.raises(TokenRefusal) as err:
        check_token(sign(), EVENT, None, NOW)
    assert err.value.code is TokenCode.BAD_SIGNATURE
    assert refusal(sign(event="987-654-321")) is TokenCode.WRONG_EVENT
    assert refusal(sign(event=123456789)) is TokenCode.INVALID
