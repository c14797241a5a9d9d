"""Formats of what leaves the server as files and JSON: ISO 8601 times and spreadsheet-safe CSV.

One place for both, so every export and API writes a time the same way for the same field and
no CSV cell can run as a spreadsheet formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, overload

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
