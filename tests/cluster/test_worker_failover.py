"""A worker dies (SIGKILL) under a real supervisor: its participants come back through the
other worker with their resume tokens, within 60 s, keeping role and grants; the room goes
on; the places of those who do not come back end after the resume grace."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest

from tests.helpers import Person, RunningServer, join_person
from tests.protocol.test_workers import start_workers, wait_workers
from webinar.storage.records import Event
from webinar.storage.store import DB_FILENAME


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        yield s


def at(url: str) -> RunningServer:
    """A worker reached through its direct port, as the join helpers take a server."""
    return cast(RunningServer, SimpleNamespace(base_url=url))


async def test_a_killed_workers_participants_come_back_through_the_other(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    server, base = start_workers(tmp_path, {"WEBINAR_SIGNALLING_HEARTBEAT_SECONDS": "5"})
    w1, w2 = f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"
    people: list[Person] = []
    try:
        body = await wait_workers(http, server)
        pids = {w["id"]: w["pid"] for w in body["workers"]}
        event = server.create_event("Failover")
        host_key = parse_qs(urlparse(event["host_url"]).query)["key"][0]
        pres_key = parse_qs(urlparse(event["presenter_url"]).query)["key"][0]
        room = cast(Event, SimpleNamespace(event_id=event["event_id"]))
        host = await join_person(at(w2), people, Person, room, "Host", host_key, client_id="h")
        pres = await join_person(at(w1), people, Person, room, "Pres", pres_key, client_id="p")
        ann = await join_person(at(w1), people, Person, room, "Ann", client_id="ann")
        gone = await join_person(at(w1), people, Person, room, "Gone", client_id="gone")
        await host.request("set-mode", mode="discussion")
        await host.request("grant", participant_id=ann.pid, audio=True, video=False)

        os.kill(pids[1], signal.SIGKILL)  # worker 1 dies with three participants
        killed = time.monotonic()
        back = []
        for person, name, key, role in (
            (pres, "Pres", pres_key, "presenter"),
            (ann, "Ann", None, "attendee"),
        ):
            # the browser reconnects with its resume token; it lands on the other worker
            again = await join_person(
                at(w2),
                people,
                Person,
                room,
                name,
                key,
                resume_token=person.joined["resume_token"],
                client_id="p" if person is pres else "ann",
            )
            joined = again.joined
            assert joined["resumed"] is True, joined
            assert joined["participant_id"] == person.pid
            assert joined["role"] == role
            back.append(again)
        assert time.monotonic() - killed < 60
        me = {p["participant_id"]: p for p in back[1].joined["participants"]}[ann.pid]
        assert me["grant_audio"] is True and me["connected"] is True
        # the room goes on: chat between the host and the resumed ones
        for p in (host, *back):
            await p.request("sync-interaction")
        await back[0].request("chat-send", text="still here")
        await host.client.wait_for(
            "chat-message", where=lambda m: m["message"]["text"] == "still here"
        )

        # the one who does not come back: disconnected, then gone after the resume grace
        deadline = time.monotonic() + 90
        while True:
            lefts = {
                left["participant_id"]
                for m in host.seen
                if m.get("type") == "roster-delta"
                for left in m["left"]
            }
            if gone.pid in lefts:
                break
            assert time.monotonic() < deadline, host.seen[-3:]
            await asyncio.sleep(0.5)
        # the attendance session the dead worker left open was ended by the others
        db = sqlite3.connect(f"file:{server.data_dir / DB_FILENAME}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT left_at, leave_reason FROM attendance WHERE participant_id = ?",
                (gone.pid,),
            ).fetchall()
        finally:
            db.close()
        assert rows and all(left is not None for left, _reason in rows), rows
        server.proc.send_signal(signal.SIGINT)
        assert await server.wait_exit(30) == 0
    finally:
        await asyncio.gather(*(p.close() for p in people), return_exceptions=True)
        server.stop()
