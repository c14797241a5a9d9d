from __future__ import annotations

from datetime import UTC, datetime

from webinar.formats import csv_text, iso_time, safe_cell


def test_iso_time_from_unix_seconds_and_datetimes() -> None:
    t = 1_900_000_000.5
    assert iso_time(None) is None
    assert iso_time(t) == "2030-03-17T17:46:40.500000+00:00"
    assert iso_time(t, timespec="seconds") == "2030-03-17T17:46:40+00:00"
    assert iso_time(t, timespec="milliseconds", zulu=True) == "2030-03-17T17:46:40.500Z"
    when = datetime(2030, 1, 31, 18, 0, tzinfo=UTC)
    assert iso_time(when, zulu=True) == "2030-01-31T18:00:00Z"


def test_no_csv_cell_runs_as_a_formula() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(text) == "'" + text
    assert safe_cell(None) == "" and safe_cell(True) == "true" and safe_cell(3) == 3
    assert csv_text(["a", "b"], [["=x", None], [False, 'say "hi"']]) == (
        'a,b\r\n\'=x,\r\nfalse,"say ""hi"""\r\n'
    )
