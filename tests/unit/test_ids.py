from __future__ import annotations

import re

import pytest

from webinar.ids import (
    format_event_id,
    new_event_id,
    new_presenter_key,
    normalize_event_id,
    same_secret,
)


def test_new_event_id_is_nine_digits() -> None:
    ids = {new_event_id() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9]{9}", event_id) for event_id in ids)
    assert len(ids) > 190  # random, not a counter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123456789", "123456789"),
        ("123-456-789", "123456789"),
        ("123 456 789", "123456789"),
        ("  123 - 456 - 789 ", "123456789"),
        ("123.456.789", "123456789"),
        ("123\u2013456\u2013789", "123456789"),  # en dashes, as pasted from a document
        ("012-345-678", "012345678"),
        ("12345678", None),
        ("1234567890", None),
        ("123-456-78a", None),
        ("", None),
        ("---", None),
        ("١٢٣٤٥٦٧٨٩", None),  # non-ASCII digits
        ("1" * 9 + " " * 100, None),  # absurdly long input
    ],
)
def test_normalize_event_id(text: str, expected: str | None) -> None:
    assert normalize_event_id(text) == expected


def test_format_event_id() -> None:
    assert format_event_id("123456789") == "123-456-789"
    assert format_event_id("123 456 789") == "123-456-789"
    with pytest.raises(ValueError, match="not an event ID"):
        format_event_id("12345")


def test_format_and_normalize_round_trip() -> None:
    event_id = new_event_id()
    assert normalize_event_id(format_event_id(event_id)) == event_id


def test_presenter_key() -> None:
    keys = {new_presenter_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{24}", key) for key in keys)


def test_same_secret() -> None:
    assert same_secret("abc", "abc")
    assert not same_secret("abc", "abd")
    assert not same_secret("abc", "abcd")
    assert not same_secret("", "x")
    assert same_secret("ключ", "ключ")  # non-ASCII must not raise
