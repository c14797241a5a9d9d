"""Webhook signing, back-off and the address rules (no network beyond loopback)."""

from __future__ import annotations

import pytest

from webinar.webhooks.signing import (
    MAX_RETRY_DELAY,
    PublicResolver,
    check_endpoint_url,
    retry_delay,
    sign,
    verify,
)

SECRET = "whsec_test"
BODY = b'{"id":"whd_1","event":"webhook.test"}'


def test_signature_covers_timestamp_and_body() -> None:
    signature = sign(SECRET, 1_900_000_000, BODY)
    assert signature.startswith("v1=") and len(signature) == 3 + 64
    assert verify(SECRET, "1900000000", signature, BODY, now=1_900_000_010)
    assert not verify(SECRET, "1900000000", signature, BODY + b" ", now=1_900_000_010)
    assert not verify(SECRET, "1900000001", signature, BODY, now=1_900_000_010)
    assert not verify("whsec_other", "1900000000", signature, BODY, now=1_900_000_010)
    # Old or future timestamps are refused (replays), garbage too.
    assert not verify(SECRET, "1900000000", signature, BODY, now=1_900_000_000 + 301)
    assert not verify(SECRET, "1900000000", signature, BODY, now=1_900_000_000 - 301)
    assert not verify(SECRET, "soon", signature, BODY)
    # Several signatures (secret rotation) in one header: any may match.
    assert verify(SECRET, "1900000000", f"v1=00, {signature}", BODY, now=1_900_000_000)


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
