"""Webhook signing, back-off and the address rules (no network beyond loopback)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
import standardwebhooks

from webinar.webhooks.signing import (
    EVENT_HEADER,
    ID_HEADER,
    LEGACY_ID_HEADER,
    LEGACY_SIGNATURE_HEADER,
    LEGACY_TIMESTAMP_HEADER,
    MAX_RETRY_DELAY,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    PublicResolver,
    check_endpoint_url,
    new_secret,
    request_headers,
    retry_delay,
    sign,
    sign_legacy,
    signing_key,
    standard_secret,
    verify,
    verify_legacy,
)

#: A secret as the server made them before Standard Webhooks: "whsec_" + token_urlsafe(32).
OLD_SECRET = "whsec_q3Vx-8Zt1w_YbRkq0m4H2cJf9uN7eLrTgA5sDpWoKiE"
BODY = b'{"id":"whd_1","event":"webhook.test"}'
TS = 1_900_000_000


def headers_at(secret: str, ts: int = TS, msg_id: str = "whd_1") -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, BODY),
    }


def test_new_secrets_are_standard_whsec_secrets() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) == 6 + 44
    assert len(base64.b64decode(secret[6:], validate=True)) == 32
    assert standard_secret(secret) == secret
    assert signing_key(secret) == base64.b64decode(secret[6:])
    assert new_secret() != secret


def test_old_secrets_are_converted_to_the_same_key() -> None:
    converted = standard_secret(OLD_SECRET)
    assert converted.startswith("whsec_") and converted != OLD_SECRET
    # The key of the shown form is the old text: both signatures use the same bytes.
    assert base64.b64decode(converted[6:], validate=True) == OLD_SECRET.encode()
    assert signing_key(OLD_SECRET) == signing_key(converted) == OLD_SECRET.encode()
    assert standard_secret(converted) == converted  # stable: shown the same every time


def test_signature_is_the_standard_webhooks_one() -> None:
    """Byte for byte what the reference library computes, for both kinds of secret."""
    for secret in (new_secret(), standard_secret(OLD_SECRET)):
        reference = standardwebhooks.Webhook(secret)
        at = datetime.fromtimestamp(TS, UTC)
        assert sign(secret, "whd_1", TS, BODY) == reference.sign("whd_1", at, BODY)
    signature = sign(OLD_SECRET, "whd_1", TS, BODY)
    assert signature.startswith("v1,") and len(base64.b64decode(signature[3:])) == 32
    with pytest.raises(ValueError, match="full stop"):
        sign(OLD_SECRET, "whd.1", TS, BODY)


def test_verify_covers_id_timestamp_and_body() -> None:
    secret = new_secret()
    good = headers_at(secret)
    assert verify(secret, good, BODY, now=TS + 10)
    assert verify(secret, {k.upper(): v for k, v in good.items()}, BODY, now=TS + 10)
    assert not verify(secret, good, BODY + b" ", now=TS + 10)
    assert not verify(secret, {**good, "webhook-id": "whd_2"}, BODY, now=TS + 10)
    assert not verify(secret, {**good, "webhook-timestamp": str(TS + 1)}, BODY, now=TS + 10)
    assert not verify(new_secret(), good, BODY, now=TS + 10)
    # Old or future timestamps are refused (replays), missing or garbage headers too.
    assert not verify(secret, good, BODY, now=TS + 301)
    assert not verify(secret, good, BODY, now=TS - 301)
    assert not verify(secret, {**good, "webhook-timestamp": "soon"}, BODY)
    assert not verify(secret, {"webhook-timestamp": str(TS)}, BODY, now=TS)
    # Several signatures (secret rotation), space-separated: any may match.
    rotated = {**good, "webhook-signature": "v1,AAAA " + good["webhook-signature"]}
    assert verify(secret, rotated, BODY, now=TS)


def test_request_carries_standard_and_deprecated_headers() -> None:
    headers = request_headers(OLD_SECRET, "whd_1", "webhook.test", TS, BODY)
    assert headers["Content-Type"] == "application/json"
    assert headers[ID_HEADER] == headers[LEGACY_ID_HEADER] == "whd_1"
    assert headers[TIMESTAMP_HEADER] == headers[LEGACY_TIMESTAMP_HEADER] == str(TS)
    assert headers[EVENT_HEADER] == "webhook.test"
    assert headers[SIGNATURE_HEADER] == sign(OLD_SECRET, "whd_1", TS, BODY)
    assert verify(standard_secret(OLD_SECRET), headers, BODY, now=TS)
    # The deprecated header is exactly what receivers verified before, with the old text.
    old_mac = hmac.new(OLD_SECRET.encode(), f"{TS}.".encode() + BODY, hashlib.sha256)
    assert headers[LEGACY_SIGNATURE_HEADER] == "v1=" + old_mac.hexdigest()
    assert headers[LEGACY_SIGNATURE_HEADER] == sign_legacy(OLD_SECRET, TS, BODY)
    legacy = headers[LEGACY_SIGNATURE_HEADER]
    assert verify_legacy(OLD_SECRET, str(TS), legacy, BODY, now=TS + 10)
    assert not verify_legacy(OLD_SECRET, str(TS), legacy, BODY + b" ", now=TS + 10)
    assert not verify_legacy(OLD_SECRET, str(TS), legacy, BODY, now=TS + 301)
    assert not verify_legacy("whsec_other", str(TS), legacy, BODY, now=TS)
    assert not verify_legacy(OLD_SECRET, "soon", legacy, BODY)
    assert verify_legacy(OLD_SECRET, str(TS), f"v1=00, {legacy}", BODY, now=TS)
    # A new endpoint's deprecated header is keyed with its whsec_ text, as the old docs said.
    fresh = new_secret()
    fresh_headers = request_headers(fresh, "whd_1", "webhook.test", TS, BODY)
    assert verify_legacy(fresh, str(TS), fresh_headers[LEGACY_SIGNATURE_HEADER], BODY, now=TS)
    assert verify(fresh, fresh_headers, BODY, now=TS)


def test_back_off_doubles_up_to_an_hour() -> None:
    assert [retry_delay(n, 10) for n in range(1, 6)] == [10, 20, 40, 80, 160]
    assert retry_delay(30, 10) == MAX_RETRY_DELAY


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://[::1]/x",
        "http://localhost:8080/",
        "http://db.internal/",
        "http://10.0.0.7/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_targets_refused(url: str) -> None:
    with pytest.raises(ValueError, match="public"):
        check_endpoint_url(url, allow_private=False)
    assert check_endpoint_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.org/", "https://"),
        ("example.org/hook", "https://"),
        ("https://user:pw@example.org/", "no user name or password"),
        ("https://example.org/#frag", "fragment"),
        ("https://example.org:99999/", "invalid port"),
        ("https://example.org/" + "a" * 2000, "2000 characters"),
    ],
)
def test_malformed_urls_refused(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_endpoint_url(url, allow_private=True)


def test_public_urls_pass() -> None:
    assert check_endpoint_url(" https://hooks.example.org/w?x=1 ", allow_private=False) == (
        "https://hooks.example.org/w?x=1"
    )
    assert check_endpoint_url("http://8.8.8.8:8080/", allow_private=False)  # never contacted


async def test_resolver_drops_private_answers() -> None:
    resolver = PublicResolver()
    try:
        with pytest.raises(OSError, match="no public address"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
