"""A CSV of 200 invitees with 3 bad lines, through real `webinar serve` processes and a real
SMTP server (aiosmtpd, slowed down so that sending takes seconds): the preview (the dashboard
page and its JSON) names the 3 lines and why; sending invites the other 197 exactly once,
though the server is stopped while the outbox is half sent and started again on the same data.

A graceful stop (SIGTERM) lets the messages under way finish and be recorded: 197 messages in
all. A crash (SIGKILL) may cut a message off between the mail server's "250 OK" and the
record of it: that one is sent again with the Message-ID it had, so at most one copy more
per message under way (the outbox sends a few at once) arrives, and every copy is
recognisable as the same message.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import icalendar
import pytest

from tests.serving import ServerProcess, start_server
from tests.smtp import Inbox, calendar_of, smtp_server, text_of
from webinar.storage.store import SyncStore
from webinar.ticketing.outbox import SENDERS

PASSWORD = "correct horse battery"
#: Seconds the test's mail server takes per message: 197 take about 7 s (4 at a time).
SMTP_DELAY = 0.1
#: The file's bad lines (line 1 is the header): (line, code).
BAD_LINES = [(43, "invalid-email"), (101, "missing-email"), (152, "duplicate")]


def invitees_csv() -> tuple[bytes, set[str]]:
    """200 invitees (guest n on line n + 1) of whom 3 are on bad lines; the 197 addresses
    that can be invited."""
    lines = ["name,email,company,language"]
    for n in range(1, 201):
        language = ("", "ru", "cs")[n % 3]
        lines.append(f"Guest {n:03d},guest{n:03d}@example.org,Firm {n % 7},{language}")
    lines[42] = "Guest 042,guest042(at)example.org,Firm 0,"  # line 43: not an address
    lines[100] = '"Svoboda, Petr",,Firm 2,'  # line 101: no address
    lines[151] = "Guest 151,GUEST011@example.org,Firm 4,"  # line 152: guest 011 again (line 12)
    good = {f"guest{n:03d}@example.org" for n in range(1, 201)} - {
        "guest042@example.org",
        "guest100@example.org",
        "guest151@example.org",
    }
    return ("\n".join(lines) + "\n").encode(), good


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server(delay=SMTP_DELAY) as box:
        yield box


def mail_env(inbox: Inbox) -> dict[str, str]:
    return {
        "WEBINAR_MAIL_SMTP_HOST": "127.0.0.1",
        "WEBINAR_MAIL_SMTP_PORT": str(inbox.port),
        "WEBINAR_MAIL_SMTP_SECURITY": "none",
        "WEBINAR_MAIL_FROM_ADDRESS": "events@example.org",
    }


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def sign_in(http: aiohttp.ClientSession, base: str, name: str) -> None:
    async with http.get(base + "/login") as resp:
        token = csrf_of(await resp.text())
    async with http.post(
        base + "/login",
        data={"csrf": token, "username": name, "password": PASSWORD},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303, await resp.text()


def add_admin(server: ServerProcess) -> None:
    subprocess.run(
        [
            *(sys.executable, "-m", "webinar", "user", "add", "root", "--admin"),
            *("--password-stdin", "--data-dir", str(server.data_dir)),
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=server.env,
        timeout=60,
        check=True,
    )


def outbox_states(server: ServerProcess) -> Counter[str]:
    """The outbox's rows by state, read from the database while no server runs."""
    with SyncStore.open(server.data_dir) as core:  # the process's own SQLite file
        rows = core.connection.execute("SELECT state FROM mail_outbox").fetchall()
    return Counter(str(state) for (state,) in rows)


async def stop(server: ServerProcess, how: signal.Signals) -> None:
    server.proc.send_signal(how)
    code = await server.wait_exit(60)
    if how is signal.SIGTERM:
        assert code == 0, server.stop()[1][-3000:]
    server.stop()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "crash"])
async def test_a_csv_import_is_previewed_then_sent_once_across_a_restart(
    tmp_path: Path, inbox: Inbox, how: signal.Signals
) -> None:
    data, good = invitees_csv()
    first = start_server(tmp_path, mail_env(inbox))
    second: ServerProcess | None = None
    try:
        await first.wait_healthy()
        add_admin(first)
        start = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%MZ")
        event = json.loads(
            first.cli("event", "create", "--title", "Launch", "--start", start, "--json").stdout
        )
        event_id = event["event_id"]
        tickets = f"/dashboard/events/{event_id}/tickets"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await sign_in(http, first.base_url, "root")
            async with http.get(first.base_url + tickets) as resp:
                page = await resp.text()
                assert 'data-testid="import-form"' in page
            form = aiohttp.FormData()
            form.add_field("csrf", csrf_of(page))
            form.add_field("role", "attendee")
            form.add_field("file", data, filename="guests.csv", content_type="text/csv")
            async with http.post(
                f"{first.base_url}/dashboard/events/{event_id}/invitees/import",
                data=form,
                allow_redirects=False,
            ) as resp:
                assert resp.status == 303, await resp.text()
                preview = resp.headers["Location"]
            assert re.fullmatch(
                rf"/dashboard/events/{event_id}/invitees/import/imp_[\w-]+", preview
            )

            # The preview page names the 3 lines and why; nothing has been sent.
            async with http.get(first.base_url + preview) as resp:
                page = await resp.text()
            found = re.findall(
                r'data-testid="import-problem" data-line="(\d+)" data-code="([\w-]+)"', page
            )
            assert [(int(line), code) for line, code in found] == BAD_LINES
            assert 'data-testid="import-count" data-count="197"' in page
            assert "the e-mail address guest042(at)example.org does not look right" in page
            assert "no e-mail address" in page
            assert "GUEST011@example.org is on line 12 already" in page
            # ... and so does its JSON
            async with http.get(first.base_url + preview + ".json") as resp:
                assert resp.status == 200
                doc = await resp.json()
            assert (doc["lines"], doc["to_invite"], doc["sent_at"]) == (201, 197, None)
            assert [(p["line"], p["code"]) for p in doc["problems"]] == BAD_LINES
            assert doc["problems"][2]["first"] == 12 and doc["problems"][2]["reason"]
            assert {row["email"] for row in doc["invitees"]} == good
            assert doc["invitees"][0] == {
                "line": 2,
                "name": "Guest 001",
                "email": "guest001@example.org",
                "language": "ru",
                "fields": {"company": "Firm 1"},
            }
            assert inbox.messages == []

            # Send; stop the server while the outbox is half sent.
            async with http.post(
                first.base_url + doc["send"], data={"csrf": csrf_of(page)}
            ) as resp:
                assert resp.status == 200
                assert "197 invitations are being sent." in await resp.text()
            await inbox.wait_count(40, within=60)
        await stop(first, how)
        received = len(inbox.messages)
        assert 40 <= received < 197, "the outbox was not half sent when the server stopped"
        states = outbox_states(first)
        assert sum(states.values()) == 197
        if how is signal.SIGTERM:  # every message that arrived is recorded sent, none half
            assert (states["sent"], states["sending"]) == (received, 0)
        else:  # at most those under way arrived unrecorded
            assert states["sent"] <= received <= states["sent"] + states["sending"]
            assert states["sending"] <= SENDERS

        # The same data, a new process: the rest goes out, nothing twice.
        second = start_server(tmp_path, mail_env(inbox))
        await second.wait_healthy()
        await inbox.wait_count(197, within=90)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await sign_in(http, second.base_url, "root")
            for _ in range(100):  # until the last one is recorded
                async with http.get(
                    f"{second.base_url}/dashboard/events/{event_id}/mail/progress"
                ) as resp:
                    progress = await resp.json()
                if progress["waiting"] == 0:
                    break
                await asyncio.sleep(0.1)
            assert (progress["waiting"], progress["failed"]) == (0, 0)
            assert progress["outbox"]["invitation"]["sent"] == 197
            # A second send of the same preview (a double click, another tab) invites nobody.
            async with http.get(second.base_url + preview) as resp:
                page = await resp.text()
                assert 'data-testid="import-sent"' in page
                assert 'data-testid="import-send"' not in page
            async with http.post(
                f"{second.base_url}{preview}/send", data={"csrf": csrf_of(page)}
            ) as resp:
                assert "sent already" in await resp.text()
            async with http.get(second.base_url + tickets) as resp:
                page = await resp.text()
            assert page.count('data-testid="invitee-row"') == 197
            assert 'data-testid="mail-progress"' not in page
        await asyncio.sleep(0.5)  # anything more would arrive now

        messages = inbox.messages
        by_address = Counter(str(m["To"]) for m in messages)
        assert set(by_address) == good
        if how is signal.SIGTERM:
            assert len(messages) == 197 and max(by_address.values()) == 1
        else:
            assert len(messages) <= 197 + SENDERS
        ids: dict[str, set[str]] = {}
        for message in messages:
            ids.setdefault(str(message["To"]), set()).add(str(message["Message-ID"]))
        assert all(len(v) == 1 for v in ids.values()), "a copy with another Message-ID"
        assert len({next(iter(v)) for v in ids.values()}) == 197

        # Each is an invitation in the invitee's language, with its personal link and the
        # event's calendar entry.
        uids = set()
        for message in messages:
            number = int(str(message["To"])[5:8])
            assert message["Content-Language"] == (("en", "ru", "cs")[number % 3])
            assert f"/e/{event_id}#token=" in text_of(message)
            ics = calendar_of(message)
            assert ics is not None
            cal = icalendar.Calendar.from_ical(ics)
            assert str(cal["method"]) == "REQUEST"
            (entry,) = cal.walk("VEVENT")
            assert int(entry["sequence"]) == 0
            assert str(entry["attendee"]).lower() == f"mailto:{message['To']}"
            uids.add(str(entry["uid"]))
        assert len(uids) == 1
    finally:
        for server in (first, second):
            if server is not None:
                server.stop()
