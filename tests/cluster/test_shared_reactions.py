"""Reactions in one room over two workers: each worker's counts reach the whole room once,
and the engagement export counts each person once; the presenters' switch holds on both."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests import protocol_fixtures
from tests.cluster.workers import two_workers
from tests.protocol_fixtures import MatchingPerson as Person
from tests.protocol_fixtures import refused
from tests.redis_server import RedisServer
from webinar.app import ATTENDANCE

people = protocol_fixtures.own_people
enter = protocol_fixtures.Entrance(Person)


def totals(p: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in p.seen:
        if m.get("type") == "reactions":
            for reaction, n in m["counts"].items():
                out[reaction] = out.get(reaction, 0) + n
    return out


async def test_every_workers_reactions_reach_everyone_once(
    tmp_path: Path,
    redis_server: RedisServer,
    people: list[Any],
) -> None:
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        everyone = [
            await enter(w1, people, event, "Host", event.host_key, client_id="b-host"),
            await enter(w1, people, event, "Ann", client_id="b-ann"),
            await enter(w2, people, event, "Bob", client_id="b-bob"),
            await enter(w2, people, event, "Cat", client_id="b-cat"),
        ]
        host, ann, bob, cat = everyone
        await asyncio.gather(
            *(ann.request("react", reaction="clap") for _ in range(3)),
            *(bob.request("react", reaction="clap") for _ in range(2)),
            cat.request("react", reaction="heart"),
            host.request("react", reaction="party"),
        )
        expected = {"clap": 5, "heart": 1, "party": 1}
        deadline = time.monotonic() + 10
        while any(totals(p) != expected for p in everyone):
            assert time.monotonic() < deadline, [totals(p) for p in everyone]
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # nothing comes twice
        assert [totals(p) for p in everyone] == [expected] * 4
        for p in everyone:
            await p.request("leave")
        # each worker writes its own people's counts when its copy of the room closes
        deadline = time.monotonic() + 10
        while True:
            _columns, rows = await w1.server.app[ATTENDANCE].engagement(event.event_id)
            sent = {r["name"]: r["reactions_sent"] for r in rows}
            if sent == {"Host": 1, "Ann": 3, "Bob": 2, "Cat": 1}:
                break
            assert time.monotonic() < deadline, sent
            await asyncio.sleep(0.1)


async def test_the_reactions_switch_reaches_every_worker(
    tmp_path: Path,
    redis_server: RedisServer,
    people: list[Any],
) -> None:
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        host = await enter(w1, people, event, "Host", event.host_key, client_id="b-host")
        ann = await enter(w1, people, event, "Ann", client_id="b-ann")
        bob = await enter(w2, people, event, "Bob", client_id="b-bob")
        await host.request("reactions-settings", enabled=False)
        for p in (ann, bob):
            state = await p.wait("reactions-state", enabled=False)
            assert state["by"] == host.pid
        # refused on the other worker too, and a late joiner there learns it is off
        for p in (ann, bob):
            await refused("reactions-off", p.request("react", reaction="clap"))
        cat = await enter(w2, people, event, "Cat", client_id="b-cat")
        assert (await cat.request("sync-interaction"))["reactions"]["enabled"] is False
        # a presenter's reaction still reaches everyone
        await host.request("react", reaction="party")
        # back on, from the other worker's side of the room
        await host.request("reactions-settings", enabled=True)
        await bob.wait("reactions-state", enabled=True)
        await bob.request("react", reaction="clap")
        expected = {"party": 1, "clap": 1}
        deadline = time.monotonic() + 10
        while any(totals(p) != expected for p in (host, ann, bob, cat)):
            assert time.monotonic() < deadline, [totals(p) for p in (host, ann, bob, cat)]
            await asyncio.sleep(0.05)
