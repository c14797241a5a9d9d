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
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest

from tests.protocol.test_workers import start_workers, wait_workers
from webinar.client.peer import SignallingClient
from webinar.storage.store import DB_FILENAME


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        yield s


class Person:
    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[dict[str, Any]] = []
        self.http = aiohttp.ClientSession()
        self.client: SignallingClient | None = None
        self.joined: dict[str, Any] = {}

    async def join(
        self, event_id: str, name: str, credential: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        self.client = SignallingClient(self.http, self.url.replace("http", "ws") + "/ws")
        await self.client.connect()
        self.client.on_message(self.seen.append)
        await self.client.request("hello", protocol=1)
        fields: dict[str, Any] = {"event_id": event_id, "name": name, **extra}
        if credential is not None:
            fields["credential"] = credential
        self.joined = await self.client.request("join", **fields)
        return self.joined

    @property
    def pid(self) -> str:
        return str(self.joined["participant_id"])

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
        await self.http.close()


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
        host = Person(w2)
        pres = Person(w1)
        ann = Person(w1)
        gone = Person(w1)
        people += [host, pres, ann, gone]
        await host.join(event["event_id"], "Host", host_key, client_id="host-browser")
        await pres.join(event["event_id"], "Pres", pres_key, client_id="pres-browser")
        await ann.join(event["event_id"], "Ann", client_id="ann-browser")
        await gone.join(event["event_id"], "Gone", client_id="gone-browser")
        assert host.client is not None
        await host.client.request("set-mode", mode="discussion")
        await host.client.request("grant", participant_id=ann.pid, audio=True, video=False)

        os.kill(pids[1], signal.SIGKILL)  # worker 1 dies with three participants
        killed = time.monotonic()
        back = []
        for person, role in ((pres, "presenter"), (ann, "attendee")):
            token = person.joined["resume_token"]
            again = Person(w2)  # the browser reconnects; it lands on the other worker
            people.append(again)
            name = "Pres" if person is pres else "Ann"
            credential = pres_key if person is pres else None
            joined = await again.join(
                event["event_id"],
                name,
                credential,
                resume_token=token,
                client_id=f"{name.lower()}-browser",
            )
            assert joined["resumed"] is True, joined
            assert joined["participant_id"] == person.pid
            assert joined["role"] == role
            back.append(again)
        assert time.monotonic() - killed < 60
        me = {p["participant_id"]: p for p in back[1].joined["participants"]}[ann.pid]
        assert me["grant_audio"] is True and me["connected"] is True
        # the room goes on: chat between the host and the resumed ones
        for p in (host, *back):
            assert p.client is not None
            await p.client.request("sync-interaction")
        assert back[0].client is not None
        await back[0].client.request("chat-send", text="still here")
        await host.client.wait_for(
            "chat-message", where=lambda m: m["message"]["text"] == "still here"
        )

        # the one who does not come back: disconnected, then gone after the resume grace
        def counts() -> dict[str, Any]:
            got = [m for m in host.seen if m.get("type") in ("participant-count", "roster-delta")]
            return got[-1] if got else {}

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
            assert time.monotonic() < deadline, counts()
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
