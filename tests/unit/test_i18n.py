"""Choosing the language, plural forms and locale formatting (webinar.i18n)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from webinar import i18n


def test_accept_language_is_ranked_by_quality() -> None:
    header = "de;q=0.9, cs-CZ, en;q=0.5, ru;q=0.95, *;q=0.1, fr;q=0"
    assert i18n.parse_accept_language(header) == ["cs-CZ", "ru", "de", "en"]
    assert i18n.parse_accept_language("") == []
    assert i18n.parse_accept_language("en;q=x") == []


@pytest.mark.parametrize(
    ("chosen", "event", "accept", "expected"),
    [
        ("cs", "ru", "en", "cs"),  # the person's own choice first
        (None, "ru", "cs", "ru"),  # then the event's language
        (None, None, "de, ru-RU;q=0.8, cs;q=0.7", "ru"),  # then Accept-Language, first we have
        (None, None, "de, fr", "en"),  # then English
        ("xx", None, "cs", "cs"),  # a choice we do not ship is no choice
        (None, "", None, "en"),
    ],
)
def test_the_language_of_a_page(
    chosen: str | None, event: str | None, accept: str | None, expected: str
) -> None:
    assert i18n.choose(chosen, event, accept) == expected


def test_plural_categories_match_gettext_forms() -> None:
    # Russian: 1 участник / 2 участника / 5 участников;
    # Czech: 1 účastník / 2 účastníci / 5 účastníků
    ru = i18n.plural_categories("ru")
    assert (ru["one"], ru["few"], ru["many"]) == (0, 1, 2)
    cs = i18n.plural_categories("cs")
    assert (cs["one"], cs["few"], cs["other"]) == (0, 1, 2)


def test_python_plurals_follow_each_language() -> None:
    def people(n: int) -> str:
        return i18n.ngettext("%(num)d participant", "%(num)d participants", n) % {"num": n}

    with i18n.using("ru"):
        assert [people(n) for n in (1, 2, 5, 21)] == [
            "1 участник",
            "2 участника",
            "5 участников",
            "21 участник",
        ]
    with i18n.using("cs"):
        assert [people(n) for n in (1, 2, 5)] == ["1 účastník", "2 účastníci", "5 účastníků"]
    assert [people(n) for n in (1, 2)] == ["1 participant", "2 participants"]


def test_dates_and_prices_are_formatted_for_the_language() -> None:
    when = datetime(2026, 12, 6, 13, 0, tzinfo=UTC)
    with i18n.using("cs"):
        assert i18n.format_price(123400, "CZK") == "1\xa0234,00\xa0Kč"
        assert i18n.format_datetime(when, "Europe/Prague").startswith(
            "neděle 6. prosince 2026, 14:00"
        )
    with i18n.using("ru"):
        assert i18n.format_price(4990, "RUB") == "49,90\xa0₽"
        assert "6 декабря 2026" in i18n.format_datetime(when, "Europe/Moscow")
        assert "16:00" in i18n.format_datetime(when, "Europe/Moscow")
    with i18n.using("en"):
        assert i18n.format_price(4990, "EUR") == "€49.90"
        assert i18n.format_datetime(when, "Europe/London").startswith(
            "Sunday, 6 December 2026, 13:00"
        )
    assert i18n.format_amount(4990) == "49.90"


def test_using_restores_the_language_and_refuses_unknown_ones() -> None:
    with i18n.using("ru"):
        assert i18n.current() == "ru"
        with i18n.using("xx"):
            assert i18n.current() == "en"
        assert i18n.current() == "ru"
    assert i18n.current() == "en"
