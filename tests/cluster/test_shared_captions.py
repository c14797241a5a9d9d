"""Live captions in one room over two workers: a captioner made on one worker captions from
the other; every line reaches everyone once, in order; the line is kept once; a late joiner
on either worker gets the last lines."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests import protocol_fixtures
from tests.cluster.workers import two_workers
from tests.protocol_fixtures import MatchingPerson as Person
from tests.redis_server import RedisServer
from webinar.interaction import store as ist

people = protocol_fixtures.own_people
enter = protocol_fixtures.Entrance(Person)


def lines(p: Any) -> list[tuple[str, bool]]:
    return [(m["line"]["text"], m["line"]["final"]) for m in p.seen if m.get("type") == "caption"]


async def test_captions_cross_workers_once_and_in_order(
    tmp_path: Path, redis_server: RedisServer, people: list[Any]
) -> None:
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        host = await enter(w1, people, event, "Host", event.host_key, client_id="b-host")
        ann = await enter(w2, people, event, "Ann", client_id="b-ann")
        bob = await enter(w1, people, event, "Bob", client_id="b-bob")
        cat = await enter(w2, people, event, "Cat", client_id="b-cat")
        await host.request("captioner-set", participant_id=ann.pid, captioner=True)
        await ann.wait("captions-state", captioner=True)
        await ann.request("captions-set", enabled=True)
        await bob.wait("captions-state", enabled=True)
        await ann.request("caption-send", text="One", final=False)
        for text in ("One two.", "Three.", "Four."):
            await ann.request("caption-send", text=text)
        expected = [("One", False), ("One two.", True), ("Three.", True), ("Four.", True)]
        everyone = [host, ann, bob, cat]
        deadline = time.monotonic() + 10
        while any(lines(p) != expected for p in everyone):
            assert time.monotonic() < deadline, [lines(p) for p in everyone]
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # nothing comes twice
        assert [lines(p) for p in everyone] == [expected] * 4
        with w1.store.connect_sync() as sync:
            kept = [line.text for line in ist.caption_lines(sync, event.event_id)]
        assert kept == ["One two.", "Three.", "Four."]  # written once, by Ann's worker
        for worker, name in ((w1, "Late one"), (w2, "Late two")):
            late = await enter(worker, people, event, name)
            state = await late.request("sync-interaction")
            assert state["captions"]["enabled"] is True
            assert [line["text"] for line in state["caption_lines"]] == kept
