"""Invitees from a CSV file: parsed and checked line by line before anything is sent.

Pure functions (no database): :func:`parse_invitees` turns the file's bytes into the rows that
can be invited and the problems of the others, each named by its line in the file, so the
organiser sees what is wrong before sending (the preview), fixes the file or sends the rest.

What a file may be (docs/api.md, "Importing invitees"):

* UTF-8 (with or without a byte-order mark) or UTF-16 with one; a file that is not UTF-8 is
  read as Windows-1251 when that makes Cyrillic words of it, else Windows-1250 (what Excel
  writes for Russian and Czech);
* cells separated by commas, semicolons or tabs (whichever the first line uses most), quoted
  the CSV way;
* a header row, when the first line has no e-mail address in it: its cells name the columns
  (``name`` / ``full name``, or ``first name`` and ``last name``; ``e-mail`` / ``email``;
  ``language``; in English, Russian or Czech), every other column is kept as an extra field of
  the invitee ({header: value}); without one the columns are name, e-mail, then extra fields;
* at most :data:`MAX_ROWS` rows and :data:`MAX_FILE_BYTES`.
"""

from __future__ import annotations

import codecs
import csv
import enum
import io
import re
from dataclasses import dataclass, field
from typing import Any

from webinar import i18n
from webinar.i18n import N_, gettext

from .records import EMAIL_MAX_CHARS, NAME_MAX_CHARS, check_email

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_ROWS = 10_000
#: Extra columns kept per invitee, and their sizes.
MAX_FIELDS = 10
FIELD_LABEL_MAX_CHARS = 80
FIELD_VALUE_MAX_CHARS = 500
#: How much of a bad line the preview shows.
LINE_EXCERPT_CHARS = 200

#: The letters beyond ASCII of Czech (and Slovak) text, lower case.
_CZECH_LETTERS = frozenset("áäčďéěíĺľňóôŕřšťúůýž")
_EMAIL = re.compile(r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+$")


class Problem(enum.StrEnum):
    """Why a line is not imported (the JSON's ``code``; :func:`problem_text` says it)."""

    MISSING_EMAIL = "missing-email"
    INVALID_EMAIL = "invalid-email"
    MISSING_NAME = "missing-name"
    NAME_TOO_LONG = "name-too-long"
    DUPLICATE = "duplicate"
    ALREADY_INVITED = "already-invited"
    UNKNOWN_LANGUAGE = "unknown-language"
    FIELD_TOO_LONG = "field-too-long"


_PROBLEM_TEXTS: dict[Problem, str] = {
    Problem.MISSING_EMAIL: N_("no e-mail address"),
    Problem.INVALID_EMAIL: N_("the e-mail address %(email)s does not look right"),
    Problem.MISSING_NAME: N_("no name"),
    Problem.NAME_TOO_LONG: N_("the name is longer than %(max)d characters"),
    Problem.DUPLICATE: N_("%(email)s is on line %(first)d already"),
    Problem.ALREADY_INVITED: N_("%(email)s is invited already"),
    Problem.UNKNOWN_LANGUAGE: N_("the language %(language)s is not one of en, ru, cs"),
    Problem.FIELD_TOO_LONG: N_("%(column)s is longer than %(max)d characters"),
}


class FileRefused(ValueError):
    """The file as a whole cannot be read (too big, not text, no rows); the message says why."""


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    name: str
    email: str
    language: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "name": self.name,
            "email": self.email,
            "language": self.language,
            "fields": dict(self.fields),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportRow:
        return cls(
            line=int(data["line"]),
            name=str(data["name"]),
            email=str(data["email"]),
            language=data.get("language"),
            fields={str(k): str(v) for k, v in dict(data.get("fields") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class LineProblem:
    line: int
    code: Problem
    #: The line as it was in the file (cut at LINE_EXCERPT_CHARS).
    text: str
    #: What :func:`problem_text` fills in (the address, the first line, ...).
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return problem_text(self.code, self.params)

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code.value, "text": self.text, **self.params}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LineProblem:
        params = {k: v for k, v in data.items() if k not in ("line", "code", "text")}
        return cls(int(data["line"]), Problem(data["code"]), str(data["text"]), params)


def problem_text(code: Problem, params: dict[str, Any]) -> str:
    """Why a line is not imported, in the language in effect."""
    values = {"max": 0, "email": "", "first": 0, "language": "", "column": "", **params}
    return gettext(_PROBLEM_TEXTS[code]) % values


@dataclass(frozen=True, slots=True)
class ParsedFile:
    rows: tuple[ImportRow, ...]
    problems: tuple[LineProblem, ...]
    #: Lines with something on them (the header counts).
    line_count: int
    header: bool
    #: The extra fields' labels, in the file's order.
    extra_columns: tuple[str, ...]


_NAME_ALIASES = {"name", "full name", "fullname", "имя", "фио", "имя и фамилия", "jméno",
                 "celé jméno", "jméno a příjmení", "display name"}  # fmt: skip
_FIRST_ALIASES = {"first name", "firstname", "given name", "имя", "křestní jméno", "jméno"}
_LAST_ALIASES = {"last name", "lastname", "surname", "family name", "фамилия", "příjmení"}
_EMAIL_ALIASES = {"email", "e-mail", "e-mail address", "email address", "mail", "почта",
                  "эл. почта", "электронная почта", "адрес электронной почты", "e-mailová adresa",
                  "emailová adresa"}  # fmt: skip
_LANGUAGE_ALIASES = {"language", "lang", "язык", "jazyk"}
_LANGUAGE_NAMES = {
    "en": "en", "english": "en", "английский": "en", "angličtina": "en",
    "ru": "ru", "russian": "ru", "русский": "ru", "ruština": "ru",
    "cs": "cs", "cz": "cs", "czech": "cs", "čeština": "cs", "чешский": "cs",
}  # fmt: skip


def decode(data: bytes) -> str:
    """The file's text (see the module for the encodings tried)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Windows-1250 (Czech) or -1251 (Russian)? The letters beyond ASCII tell: Czech text has
    # Czech ones; Russian read as 1250 makes odd ones (ŕ, ĺ, đ ...), and as 1251 Cyrillic.
    central = data.decode("cp1250", errors="replace")
    letters = [c.lower() for c in central if c.isalpha() and not c.isascii()]
    if letters and sum(c in _CZECH_LETTERS for c in letters) / len(letters) >= 0.8:
        return central
    cyrillic = data.decode("cp1251", errors="replace")
    letters = [c for c in cyrillic if c.isalpha() and not c.isascii()]
    if letters and sum("\u0400" <= c <= "\u04ff" for c in letters) / len(letters) >= 0.8:
        return cyrillic
    return central


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _label(cell: str) -> str:
    return " ".join(cell.replace("_", " ").split()).strip().lower().rstrip(":*")


def _excerpt(cells: list[str], delimiter: str) -> str:
    text = delimiter.join(cells)
    return text if len(text) <= LINE_EXCERPT_CHARS else text[: LINE_EXCERPT_CHARS - 1] + "…"


def parse_invitees(data: bytes, *, invited: frozenset[str] = frozenset()) -> ParsedFile:
    """The rows of a CSV file to invite and the problems of the others; ``invited`` are the
    lower-case addresses the event has invited already. FileRefused when the file as a whole
    cannot be used."""
    if len(data) > MAX_FILE_BYTES:
        raise FileRefused(
            gettext(N_("the file is larger than %(max)d MB")) % {"max": MAX_FILE_BYTES >> 20}
        )
    if b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRefused(gettext(N_("this is not a CSV file (it is not text)")))
    text = decode(data).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise FileRefused(gettext(N_("the file is empty")))
    delimiter = _delimiter(first)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True)
    records: list[tuple[int, list[str]]] = []
    next_line = 1
    try:
        for cells in reader:
            start, next_line = next_line, reader.line_num + 1
            cells = [c.strip() for c in cells]
            if any(cells):
                records.append((start, cells))
    except csv.Error as exc:
        raise FileRefused(
            gettext(N_("line %(line)d cannot be read: %(error)s"))
            % {"line": reader.line_num, "error": exc}
        ) from None
    if not records:
        raise FileRefused(gettext(N_("the file is empty")))
    header = not any("@" in cell for cell in records[0][1])
    body = records[1:] if header else records
    if len(body) > MAX_ROWS:
        raise FileRefused(
            gettext(N_("the file has more than %(max)d rows; split it")) % {"max": MAX_ROWS}
        )
    columns = _columns(records[0][1] if header else None, body)
    rows: list[ImportRow] = []
    problems: list[LineProblem] = []
    seen: dict[str, int] = {}
    for line, cells in body:
        parsed = _row(line, cells, columns, delimiter, seen, invited)
        if isinstance(parsed, LineProblem):
            problems.append(parsed)
        else:
            rows.append(parsed)
            seen[parsed.email.lower()] = line
    return ParsedFile(
        rows=tuple(rows),
        problems=tuple(problems),
        line_count=len(records),
        header=header,
        extra_columns=tuple(label for _i, label in columns.extra),
    )


@dataclass(frozen=True, slots=True)
class _Columns:
    email: int
    name: int | None = None
    first: int | None = None
    last: int | None = None
    language: int | None = None
    extra: tuple[tuple[int, str], ...] = ()


def _columns(head: list[str] | None, body: list[tuple[int, list[str]]]) -> _Columns:
    width = max((len(cells) for _line, cells in body), default=0)
    if head is None:
        # name, e-mail, then extra fields; a file whose first column has the addresses is
        # read the other way round
        at_first = sum("@" in cells[0] for _line, cells in body if cells)
        at_second = sum("@" in cells[1] for _line, cells in body if len(cells) > 1)
        extra = tuple(
            (i, gettext(N_("Column %(num)d")) % {"num": i + 1})
            for i in range(2, min(width, 2 + MAX_FIELDS))
        )
        if at_first > at_second:
            return _Columns(email=0, name=1, extra=extra)
        return _Columns(email=1, name=0, extra=extra)
    labels = [_label(cell) for cell in head]
    named = next((i for i, label in enumerate(labels) if label in _EMAIL_ALIASES), None)
    if named is None:  # an unnamed address column: the one with the most addresses
        counts = [
            sum("@" in cells[i] for _line, cells in body if len(cells) > i)
            for i in range(max(width, len(labels)))
        ]
        named = max(range(len(counts)), key=lambda i: counts[i]) if counts else 0
    email: int = named
    used = {email}
    first = next((i for i, lb in enumerate(labels) if lb in _FIRST_ALIASES and i not in used), None)
    last = next((i for i, lb in enumerate(labels) if lb in _LAST_ALIASES and i not in used), None)
    name: int | None = None
    if first is None or last is None:
        first = last = None
        name = next(
            (i for i, lb in enumerate(labels) if lb in _NAME_ALIASES and i not in used), None
        )
        if name is None:  # the first other column
            name = next((i for i in range(len(labels)) if i not in used), None)
    used |= {i for i in (name, first, last) if i is not None}
    language = next(
        (i for i, lb in enumerate(labels) if lb in _LANGUAGE_ALIASES and i not in used), None
    )
    if language is not None:
        used.add(language)
    extra = tuple(
        (i, " ".join(head[i].split())[:FIELD_LABEL_MAX_CHARS])
        for i in range(len(head))
        if i not in used and head[i].strip()
    )[:MAX_FIELDS]
    return _Columns(email=email, name=name, first=first, last=last, language=language, extra=extra)


def _email_ok(email: str) -> bool:
    try:
        check_email(email)
    except ValueError:
        return False
    return True


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index] if index is not None and index < len(cells) else ""


def _row(
    line: int,
    cells: list[str],
    columns: _Columns,
    delimiter: str,
    seen: dict[str, int],
    invited: frozenset[str],
) -> ImportRow | LineProblem:
    excerpt = _excerpt(cells, delimiter)

    def problem(code: Problem, **params: Any) -> LineProblem:
        return LineProblem(line, code, excerpt, params)

    email = _cell(cells, columns.email).strip().strip("<>").strip()
    if columns.first is not None or columns.last is not None:
        name = f"{_cell(cells, columns.first)} {_cell(cells, columns.last)}"
    else:
        name = _cell(cells, columns.name)
    name = " ".join(name.split())
    if not email:
        return problem(Problem.MISSING_EMAIL)
    if len(email) > EMAIL_MAX_CHARS or not _EMAIL.match(email) or not _email_ok(email):
        return problem(Problem.INVALID_EMAIL, email=email[:EMAIL_MAX_CHARS])
    if not name:
        return problem(Problem.MISSING_NAME)
    if len(name) > NAME_MAX_CHARS:
        return problem(Problem.NAME_TOO_LONG, max=NAME_MAX_CHARS)
    key = email.lower()
    if key in seen:
        return problem(Problem.DUPLICATE, email=email, first=seen[key])
    if key in invited:
        return problem(Problem.ALREADY_INVITED, email=email)
    language: str | None = None
    raw_language = _cell(cells, columns.language)
    if raw_language:
        language = _LANGUAGE_NAMES.get(_label(raw_language)) or i18n.supported(raw_language)
        if language is None:
            return problem(Problem.UNKNOWN_LANGUAGE, language=raw_language[:40])
    fields: dict[str, str] = {}
    for index, label in columns.extra:
        value = " ".join(_cell(cells, index).split())
        if len(value) > FIELD_VALUE_MAX_CHARS:
            return problem(Problem.FIELD_TOO_LONG, column=label, max=FIELD_VALUE_MAX_CHARS)
        if value:
            fields[label] = value
    return ImportRow(line, name, email, language, fields)
