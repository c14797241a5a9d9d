"""Real Chromium with two workers of a real supervisor (`webinar serve --workers 2`): the
presenter's page, WebSocket and media on worker 1, two attendees on worker 2 (each page is
opened on its worker's direct address, which forces the choice); the attendees play the
presenter's video and audio, relayed through a media pipe between the processes."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import parse_qs, urlparse

import aiohttp
from playwright.async_api import expect

from tests.browser.support import (
    OpenPage,
    expect_plays_presenter,
    go_live,
    join_attendee,
    join_presenter,
)
from tests.protocol.test_workers import start_workers, wait_workers


async def metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        text = await resp.text()
    found = re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M)
    return sum(float(v) for v in found)


async def test_presenter_on_one_worker_attendees_on_the_other(
    tmp_path: Path, open_page: OpenPage
) -> None:
    server, base = start_workers(tmp_path)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            await wait_workers(http, server)
        created = server.create_event("Two workers")
        key = parse_qs(urlparse(created["presenter_url"]).query)["key"][0]
        event: Any = SimpleNamespace(event_id=created["event_id"], presenter_key=key)
        w1 = cast(Any, SimpleNamespace(base_url=f"http://127.0.0.1:{base}"))
        w2 = cast(Any, SimpleNamespace(base_url=f"http://127.0.0.1:{base + 1}"))
        presenter = await open_page("presenter")
        first = await open_page("attendee-1")
        second = await open_page("attendee-2")
        await join_attendee(first, w2, event, "First")
        await join_presenter(presenter, w1, event, "Alice")
        await go_live(presenter)
        await join_attendee(second, w2, event, "Second")
        for attendee in (first, second):
            await expect_plays_presenter(attendee, "Alice", within=20)
        # the media crossed from worker 1 to worker 2 through its pipes
        relayed = await metric(w1.base_url, "webinar_pipe_packets_total")
        assert relayed > 100, relayed
        # the presenter counts both attendees although they are on the other worker
        await expect(presenter.get_by_test_id("participant-count")).to_contain_text("3")
        for page in (presenter, first, second):  # before the server goes: no reconnecting
            await page.close()
        server.proc.send_signal(signal.SIGINT)
        assert await server.wait_exit(30) == 0
    finally:
        _out, err = server.stop()
    assert "Traceback" not in err, err
