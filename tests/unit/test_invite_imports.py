"""Reading invitees from CSV files (webinar.ticketing.imports): every line that cannot be
invited is named with its reason before anything is sent."""

from __future__ import annotations

import codecs

import pytest

from webinar.ticketing.imports import (
    MAX_ROWS,
    FileRefused,
    Problem,
    parse_invitees,
)


def test_a_header_names_the_columns_and_extra_ones_are_kept() -> None:
    parsed = parse_invitees(
        "E-mail,Name,Company,Language\n"
        "ada@example.org,Ada Lovelace,Analytical Engines,en\n"
        "  ivan@example.org , Ivan  Petrov ,,русский\n".encode()
    )
    assert parsed.header and parsed.line_count == 3 and not parsed.problems
    ada, ivan = parsed.rows
    assert (ada.line, ada.name, ada.email, ada.language) == (
        2,
        "Ada Lovelace",
        "ada@example.org",
        "en",
    )
    assert ada.fields == {"Company": "Analytical Engines"}
    assert (ivan.name, ivan.email, ivan.language, ivan.fields) == (
        "Ivan Petrov",
        "ivan@example.org",
        "ru",
        {},
    )
    assert parsed.extra_columns == ("Company",)


def test_first_and_last_name_columns_make_the_name() -> None:
    parsed = parse_invitees("Jméno;Příjmení;E-mail\nJana;Nováková;jana@example.cz\n".encode())
    (row,) = parsed.rows
    assert (row.name, row.email) == ("Jana Nováková", "jana@example.cz")


def test_without_a_header_the_columns_are_name_then_address() -> None:
    parsed = parse_invitees(b"Ada Lovelace,ada@example.org,VIP\nbob@example.org,Bob\n")
    assert not parsed.header
    assert [(r.line, r.name, r.email, r.fields) for r in parsed.rows] == [
        (1, "Ada Lovelace", "ada@example.org", {"Column 3": "VIP"})
    ]
    # a line with its columns the other way round is named, not guessed at
    assert [(p.line, p.code) for p in parsed.problems] == [(2, Problem.INVALID_EMAIL)]


def test_every_bad_line_is_named_with_its_reason() -> None:
    text = "\n".join(
        [
            "name,email,language",
            "Ada,ada@example.org,",  # 2: fine
            "Bob,bob(at)example.org,",  # 3: invalid
            "Cleo,,",  # 4: no address
            ",dan@example.org,",  # 5: no name
            "Eve,ADA@example.org,",  # 6: twice in the file
            "Fay,fay@example.org,de",  # 7: a language we do not speak
            "Gus,gus@example.org,",  # 8: invited already
            "",  # blank lines are not lines with problems
            "Hal," + "h" * 250 + "@example.org,",  # 10: too long for an address
            "I" * 101 + ",ivy@example.org,",  # 11: too long a name
        ]
    ).encode()
    parsed = parse_invitees(text, invited=frozenset({"gus@example.org"}))
    assert [r.email for r in parsed.rows] == ["ada@example.org"]
    found = {p.line: p for p in parsed.problems}
    assert {line: p.code for line, p in found.items()} == {
        3: Problem.INVALID_EMAIL,
        4: Problem.MISSING_EMAIL,
        5: Problem.MISSING_NAME,
        6: Problem.DUPLICATE,
        7: Problem.UNKNOWN_LANGUAGE,
        8: Problem.ALREADY_INVITED,
        10: Problem.INVALID_EMAIL,
        11: Problem.NAME_TOO_LONG,
    }
    assert found[3].reason == "the e-mail address bob(at)example.org does not look right"
    assert found[6].reason == "ADA@example.org is on line 2 already"
    assert found[8].reason == "gus@example.org is invited already"
    assert found[7].reason == "the language de is not one of en, ru, cs"
    assert found[3].text == "Bob,bob(at)example.org,"


def test_a_quoted_cell_may_hold_the_separator_and_a_line_break() -> None:
    parsed = parse_invitees(
        b'name,email,note\n"Lovelace, Ada",ada@example.org,"two\nlines"\nBob,bob@x,\n'
    )
    (ada,) = parsed.rows
    assert ada.name == "Lovelace, Ada" and ada.fields == {"note": "two lines"}
    (bad,) = parsed.problems
    assert bad.line == 4  # the quoted line break counts: Bob is on the file's fourth line


@pytest.mark.parametrize(
    "encoded",
    [
        codecs.BOM_UTF8 + "имя;почта\nИван Петров;ivan@example.org\n".encode(),
        "имя;почта\nИван Петров;ivan@example.org\n".encode("utf-16"),
        "Имя;Почта\nИван Петров;ivan@example.org\n".encode("cp1251"),
    ],
    ids=["utf-8 with a BOM", "utf-16", "windows-1251"],
)
def test_russian_files_in_the_encodings_excel_writes(encoded: bytes) -> None:
    (row,) = parse_invitees(encoded).rows
    assert (row.name, row.email) == ("Иван Петров", "ivan@example.org")


@pytest.mark.parametrize("name", ["Žofie Černá", "Jana Nováková", "Jiří Dvořák"])
def test_a_czech_windows_1250_file(name: str) -> None:
    """Few accented letters, all of them Cyrillic ones when read as Windows-1251."""
    (row,) = parse_invitees(f"Jméno;E-mail\n{name};a@example.cz\n".encode("cp1250")).rows
    assert row.name == name


def test_tabs_separate_cells_too() -> None:
    (row,) = parse_invitees(b"Ada Lovelace\tada@example.org\n").rows
    assert row.email == "ada@example.org"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\n \n", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not text"),
        (b"name,email\n" + b"a,a@example.org\n" * (MAX_ROWS + 1), "split it"),
    ],
)
def test_files_that_cannot_be_used_are_refused_whole(data: bytes, message: str) -> None:
    with pytest.raises(FileRefused, match=message):
        parse_invitees(data)
