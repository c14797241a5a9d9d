"""Rating tokens and ratings on a real SQLite store: a token names one event and one person,
cannot be changed or made up, expires; a person's second rating replaces the first (in the
room or from the e-mail, by their address); bad stars and long comments are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from webinar.attendance.ratings import (
    COMMENT_MAX_CHARS,
    Rater,
    RatingError,
    Ratings,
    checked,
    sign,
    summarise,
    verify,
)
from webinar.storage.store import Store

KEY = b"k" * 32
NOW = 1_800_000_000.0


def test_a_token_names_its_event_and_person_and_expires() -> None:
    ann = Rater("123456789", "Ann", email="Ann@Example.org", via="email")
    token = sign(KEY, ann, NOW + 60)
    back = verify(KEY, token, NOW)
    assert back == Rater("123456789", "Ann", email="ann@example.org", via="email")
    assert back.key == "e:ann@example.org"
    anonymous = verify(KEY, sign(KEY, Rater("123456789", "Bo", person_key="client:b"), NOW), 0)
    assert anonymous.key == "p:client:b" and anonymous.via == "room"
    with pytest.raises(RatingError) as expired:
        verify(KEY, token, NOW + 60)
    assert expired.value.code == "expired"
    body, signature = token.split(".")
    for bad in (
        token + "x",
        f"{body}x.{signature}",
        f"{body}.{signature[:-2]}AA",
        sign(b"another key" * 3, ann, NOW + 60),
        "",
        "no-dot",
        "a.b.c",
        "é." + signature,
        "x" * 3000,
    ):
        with pytest.raises(RatingError) as refused:
            verify(KEY, bad, NOW)
        assert refused.value.code == "invalid-token", bad
    with pytest.raises(ValueError):
        sign(KEY, Rater("123456789", "Nobody"), NOW)


@pytest.mark.parametrize(
    "stars", [0, 6, -1, "", "x", "4.5", None, True, 3.0, [4], {"n": 4}, "99999999999999999999"]
)
def test_stars_are_one_to_five(stars: object) -> None:
    with pytest.raises(RatingError) as refused:
        checked(stars, "")
    assert refused.value.code == "bad-input"


def test_comments_are_text_of_limited_length() -> None:
    assert checked("5", "  great\r\nthanks  ") == (5, "great\nthanks")
    assert checked(1, None) == (1, "")
    assert checked(3, "x" * COMMENT_MAX_CHARS) == (3, "x" * COMMENT_MAX_CHARS)
    for bad in ("x" * (COMMENT_MAX_CHARS + 1), 5, ["a"]):
        with pytest.raises(RatingError):
            checked(3, bad)


async def test_one_rating_per_person_and_event(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    await store.open()
    try:
        event = await store.create_event("Rated", None)
        other = await store.create_event("Other", None)
        ticks = iter(range(1000))
        ratings = Ratings(store, lambda: KEY, clock=lambda: NOW + next(ticks))
        ann_room = Rater(event.event_id, "Ann", email="ann@example.org", person_key="client:a")
        ann_mail = Rater(event.event_id, "Ann", email="ANN@example.org", via="email")
        bob = Rater(event.event_id, "Bob", person_key="client:b")
        await ratings.rate(ann_room, 4, "good")
        await ratings.rate(bob, "2", "")
        await ratings.rate(Rater(other.event_id, "Ann", email="ann@example.org"), 1, "")
        # from the e-mail later: the same person (by address), so it replaces the room's
        again = await ratings.rate(ann_mail, 5, "even better on second thought")
        assert again.via == "email" and again.person_key == "client:a"  # kept from before
        listed = await ratings.list(event.event_id)
        assert [(r.name, r.stars, r.via) for r in listed] == [
            ("Bob", 2, "room"),
            ("Ann", 5, "email"),
        ]
        summary = await ratings.summary(event.event_id)
        assert summary.count == 2 and summary.average == 3.5
        assert summary.distribution == {1: 0, 2: 1, 3: 0, 4: 0, 5: 1}
        assert (await ratings.of(ann_room)) == listed[1]
        with pytest.raises(RatingError):
            await ratings.rate(bob, 9, "")
        assert (await ratings.of(bob)) == listed[0]  # a refused rating changes nothing
        # a token made by the service verifies with it, and not after its time
        token = ratings.token(bob, valid_for=10)
        assert ratings.rater(token) == bob
        assert summarise([]).average is None
    finally:
        await store.close()
