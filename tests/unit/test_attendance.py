"""Attendance statistics and the engagement export on a real SQLite store, from a
scripted event: several people join, drop, come back and leave at known times."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from webinar.attendance.service import (
    AttendanceService,
    SessionRow,
    compute_stats,
    parse_user_agent,
    recipients_of,
    to_csv,
    to_json,
)
from webinar.attendance.useragent import Client, parse_client
from webinar.storage.store import Store, SyncStore

T0 = 1_790_000_000.0
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
EDGE_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)


YANDEX_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36"
)
YANDEX_ANDROID = (
    "Mozilla/5.0 (Linux; arm_64; Android 13; SM-A525F) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.230 YaBrowser/24.1.6.88.00 SA/3 Mobile Safari/537.36"
)
SAMSUNG = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
)
EDGE_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.6099.224 Safari/537.36"
)


def test_user_agents() -> None:
    assert parse_user_agent(CHROME_LINUX) == ("Chrome 131", "Linux")
    assert parse_user_agent(FIREFOX_WIN) == ("Firefox 133", "Windows")
    assert parse_user_agent(SAFARI_IOS) == ("Safari 17", "iOS")
    assert parse_user_agent(EDGE_MAC) == ("Edge 131", "macOS")
    assert parse_user_agent("") == ("Unknown", "Unknown")


def test_the_maintained_rules_name_what_a_chrome_check_would_not() -> None:
    """Yandex Browser and Samsung Internet carry "Chrome/" in their header: a hand-written
    check called them Chrome; uap-core's rules name them, with the device."""
    assert parse_client(YANDEX_WIN) == Client("Yandex Browser 24", "Windows", "desktop", "")
    assert parse_client(YANDEX_ANDROID) == Client(
        "Yandex Browser 24", "Android", "phone", "Samsung SM-A525F"
    )
    assert parse_client(SAMSUNG) == Client(
        "Samsung Internet 25", "Android", "phone", "Samsung SM-S911B"
    )
    assert parse_client(EDGE_WIN) == Client("Edge 124", "Windows", "desktop", "")
    assert parse_client(EDGE_MAC) == Client("Edge 131", "macOS", "desktop", "")
    assert parse_client(FIREFOX_WIN) == Client("Firefox 133", "Windows", "desktop", "")
    assert parse_client(SAFARI_IOS) == Client("Safari 17", "iOS", "phone", "iPhone")
    assert parse_client(IPAD) == Client("Safari 17", "iOS", "tablet", "iPad")
    assert parse_client(ANDROID_TABLET).device == "tablet"  # Android without "Mobile"
    assert parse_client(HEADLESS).browser == "Chrome 120 (headless)"
    assert parse_client("").device == "unknown"
    assert parse_client("curl/8.5.0").device == "other"


def test_late_and_early_against_the_start_and_the_end() -> None:
    def row(pid: str, a: float, b: float | None, role: str = "attendee") -> SessionRow:
        return SessionRow(0, pid, pid, pid, None, role, T0 + a, None if b is None else T0 + b,
                          None, "Chrome 1", "Linux")  # fmt: skip

    rows = [
        row("on-time", -60, 3600),  # came before the start, stayed to the end
        row("late", 301, 3600),  # more than 5 minutes after the start
        row("grace", 299, 3400),  # within the grace both ways
        row("early", 0, 3000),  # left 10 minutes before the end
        row("here", 0, None),  # still in the room
    ]
    by = {
        p.person_key: p
        for p in compute_stats("e", rows, T0 + 4000, starts_at=T0, ends_at=T0 + 3600).people
    }
    assert [(k, by[k].joined_late, by[k].left_early) for k in by] == [
        ("on-time", False, False),
        ("early", False, True),
        ("here", False, None),
        ("grace", False, False),
        ("late", True, False),
    ]
    # before the end has come nobody has left early yet; without a start, nobody is late
    before = compute_stats("e", rows, T0 + 3500, starts_at=None, ends_at=T0 + 3600).people
    assert {(p.joined_late, p.left_early) for p in before} == {(None, None)}
    assert by["early"].minutes == 50


def test_recipients_are_attendees_with_an_address_once() -> None:
    def row(
        pid: str,
        key: str,
        email: str | None,
        role: str = "attendee",
        at: float = 0,
        language: str | None = None,
    ) -> SessionRow:
        return SessionRow(0, key, pid, pid.title(), email, role, T0 + at, T0 + at + 60, None,
                          "", "", language=language)  # fmt: skip

    rows = [
        row("ann", "k-ann", "Ann@Example.org", language="cs"),
        row("ann2", "k-ann", "ann@example.org", at=100),  # a reload: the same person
        row("bob", "k-bob", None),  # came by name only: nothing to send
        row("pres", "k-pres", "pres@example.org", role="presenter"),
        row("cy", "k-cy", "cy@example.org", at=50),
    ]
    found = recipients_of(rows)
    assert [(r.email, r.name, r.language) for r in found] == [
        ("ann@example.org", "Ann2", "cs"),
        ("cy@example.org", "Cy", None),
    ]


class PollAnswers:
    """A stand-in interaction table, joined through the pluggable export."""

    name = "polls"
    columns = ("answers", "score")

    def rows(self, db: SyncStore, event_id: str) -> dict[str, dict[str, Any]]:
        return {"pa_ann1": {"answers": 2, "score": 1}, "pa_ann2": {"answers": 1, "score": 1}}


async def scripted(tmp_path: Path) -> tuple[Store, str, AttendanceService]:
    store = Store(tmp_path / "data")
    await store.open()
    event = await store.create_event("Stats", None)
    service = AttendanceService(store, clock=lambda: T0 + 3600, sources=[PollAnswers()])
    ev = event.event_id

    async def session(
        pid: str, key: str, name: str, role: str, ua: str, a: float, b: float | None
    ) -> None:
        sid = await service.joined(
            event_id=ev,
            participant_id=pid,
            person_key=key,
            name=name,
            role=role,
            user_agent=ua,
            at=T0 + a,
        )
        if b is not None:
            await service.left(sid, "left", at=T0 + b)

    await session("pa_host", "client:h", "Hana Host", "host", CHROME_LINUX, 0, 1800)
    # Ann: two sessions (a reconnect), overlapping by 10 s: merged to 0..600 + 900..1500
    await session("pa_ann1", "client:a", "Ann", "attendee", FIREFOX_WIN, 0, 310)
    await session("pa_ann2", "client:a", "Ann", "attendee", FIREFOX_WIN, 300, 600)
    await session("pa_ann3", "client:a", "Ann", "attendee", FIREFOX_WIN, 900, 1500)
    await session("pa_bob", "client:b", "Bob Ünicode", "attendee", SAFARI_IOS, 100, 400)
    await session("pa_cy", "pa_cy", "Cy", "attendee", EDGE_MAC, 200, 500)
    return store, ev, service


async def test_event_statistics_are_exact(tmp_path: Path) -> None:
    store, ev, service = await scripted(tmp_path)
    try:
        stats = await service.stats(ev)
        assert stats.attendees == 3
        assert stats.participants == 4
        # at t=300..310 host, Ann (twice), Bob and Cy are in: 5 sessions
        assert stats.peak_concurrency == 5
        assert stats.peak_at == T0 + 300
        ann = next(p for p in stats.people if p.name == "Ann")
        assert ann.sessions == 3
        assert ann.seconds == 600 + 600
        assert ann.first_join == T0 and ann.last_leave == T0 + 1500
        assert (ann.browser, ann.os) == ("Firefox 133", "Windows")
        # average over attendees: (1200 + 300 + 300) / 3
        assert stats.average_seconds == 600
        monthly = await service.events_per_month(None)
        assert [(m["events"], m["attendees"]) for m in monthly] == [(1, 3)]
    finally:
        await store.close()


async def test_engagement_export_joins_sources(tmp_path: Path) -> None:
    store, ev, service = await scripted(tmp_path)
    try:
        columns, rows = await service.engagement(ev)
        assert columns[-2:] == ["polls_answers", "polls_score"]
        by_name = {r["name"]: r for r in rows}
        # Ann's answers from two of her sessions are summed onto her one row
        assert by_name["Ann"]["polls_answers"] == 3
        assert by_name["Ann"]["polls_score"] == 2
        assert by_name["Bob Ünicode"]["polls_answers"] == ""
        data = to_csv(columns, rows, bom=True)
        assert data.startswith(b"\xef\xbb\xbf")
        parsed = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
        assert [r["name"] for r in parsed] == ["Ann", "Hana Host", "Bob Ünicode", "Cy"]
        assert parsed[0]["seconds"] == "1200.0" and parsed[0]["sessions"] == "3"
        assert not to_csv(columns, rows).startswith(b"\xef\xbb\xbf")
        doc = json.loads(to_json("123-456-789", columns, rows))
        assert doc["attendees"][2]["name"] == "Bob Ünicode"
        assert await service.delete_event_data(ev) == 6  # six sessions
        assert (await service.stats(ev)).participants == 0
    finally:
        await store.close()


def test_still_open_sessions_count_up_to_now() -> None:
    from webinar.attendance.service import SessionRow

    rows = [SessionRow(1, "k", "p", "A", None, "attendee", 100.0, None, None, "", "")]
    stats = compute_stats("e", rows, now=160.0)
    assert stats.people[0].seconds == 60 and stats.people[0].last_leave is None
    assert stats.peak_concurrency == 1


def test_month_range_fills_the_last_year() -> None:
    from datetime import UTC, datetime

    from webinar.http.stats import month_range

    months = [{"month": "2026-03", "events": 2}, {"month": "2027-02", "events": 1}]
    out = month_range(months, datetime(2026, 12, 5, tzinfo=UTC))
    assert out[0] == ("2026-01", 0) and ("2026-03", 2) in out
    assert out[-2] == ("2026-12", 0) and out[-1] == ("2027-02", 1)  # scheduled ahead
    assert len(out) == 13
