"""Formats at the server's edge: JSON coming in, ISO 8601 times and spreadsheet-safe CSV going out.

One place for each, so every WebSocket message and JSON request is parsed under the same limits
(depth, valid Unicode), every export writes a time the same way for the same field, and no CSV
cell can run as a spreadsheet formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, overload

from webinar.i18n import _, ngettext

#: Deepest nesting of arrays and objects a JSON input may have (messages need 4).
MAX_JSON_DEPTH = 32


class BadJson(ValueError):
    """Input that is not JSON we accept: malformed, nested too deeply, or text that is not
    valid Unicode (a lone surrogate such as ``"\\ud800"``, which no UTF-8 store can keep) or
    holds a NUL character (``"\\u0000"``, which PostgreSQL cannot keep)."""


def parse_json(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, texts: bool = True) -> Any:
    """Parse JSON input from a client; :class:`BadJson` says what is wrong with it.

    ``texts=False`` leaves the check of strings to the caller (the signalling schema checks each
    field, so a refusal can name it and answer the request by its ID)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadJson(_("JSON nested too deeply")) from None
    except ValueError:
        raise BadJson(_("not valid JSON")) from None
    check_json(value, max_depth=max_depth, texts=texts)
    return value


def check_json(value: Any, *, max_depth: int = MAX_JSON_DEPTH, texts: bool = True) -> None:
    """Refuse parsed JSON nested deeper than ``max_depth`` or (``texts``) holding invalid text;
    iterative, so no input can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if texts:
                check_text(item)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise BadJson(
                    ngettext(
                        "JSON nested deeper than %(num)d level",
                        "JSON nested deeper than %(num)d levels",
                        max_depth,
                    )
                    % {"num": max_depth}
                )
            if isinstance(item, dict):
                for key, inner in item.items():
                    if texts:
                        check_text(key)
                    stack.append((inner, depth + 1))
            else:
                stack.extend((inner, depth + 1) for inner in item)


def check_text(text: str) -> str:
    """``text`` if it is valid Unicode (no lone surrogates) without NUL characters (which
    PostgreSQL cannot store, nor a C string carry), else :class:`BadJson`."""
    if "\x00" in text:
        raise BadJson(_("text must not contain NUL characters"))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadJson(_("text must be valid Unicode (it has a lone surrogate)")) from None
    return text


#: What a spreadsheet takes for the start of a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@overload
def iso_time(value: None, *, timespec: str = ..., zulu: bool = ...) -> None: ...
@overload
def iso_time(value: float | datetime, *, timespec: str = ..., zulu: bool = ...) -> str: ...
def iso_time(
    value: float | datetime | None, *, timespec: str = "auto", zulu: bool = False
) -> str | None:
    """A Unix time or an aware datetime in UTC as ISO 8601 (``+00:00``, or ``Z`` if ``zulu``)."""
    if value is None:
        return None
    when = (
        value.astimezone(UTC) if isinstance(value, datetime) else datetime.fromtimestamp(value, UTC)
    )
    text = when.isoformat(timespec=timespec)
    return text.replace("+00:00", "Z") if zulu else text


def safe_cell(value: Any) -> Any:
    """A CSV cell: blank for None, ``true``/``false`` for booleans, and text that a spreadsheet
    would run as a formula made plain text with a leading ``'``."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV (CRLF line ends) of ``rows`` under ``header``, every cell :func:`safe_cell`."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()
