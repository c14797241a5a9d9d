"""The attendee's room page of an event ended for all says so from the start (data-ended:
the page opens on its ended view, with no form and no Join button); an event that only
passed its scheduled end, or has not ended, still offers to join."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import RunningServer, running_server
from webinar.attendance.service import ENDED_FOR_ALL, SCHEDULED_END, sql_mark_ended


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


async def _page(server: RunningServer, path: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(server.base_url + path) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_an_event_ended_for_all_opens_on_its_end(server: RunningServer) -> None:
    ended = await server.create_event("Over")
    running = await server.create_event("Running")
    timed_out = await server.create_event("Past its end")
    now = time.time()
    await server.store.run_sql(lambda db: sql_mark_ended(db, ended.event_id, now, ENDED_FOR_ALL))
    await server.store.run_sql(
        lambda db: sql_mark_ended(db, timed_out.event_id, now, SCHEDULED_END)
    )

    assert " data-ended" in await _page(server, f"/e/{ended.event_id}")
    assert " data-ended" not in await _page(server, f"/e/{running.event_id}")
    assert " data-ended" not in await _page(server, f"/e/{timed_out.event_id}")
    # the presenter's page is not the attendee's: it keeps its own view
    page = await _page(server, f"/e/{ended.event_id}/present?key={ended.presenter_key}")
    assert " data-ended" not in page
