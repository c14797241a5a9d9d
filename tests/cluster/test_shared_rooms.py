"""One room over two workers: what a participant on one sees of the other's (signalling)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests import protocol_fixtures
from tests.cluster.workers import two_workers
from tests.protocol_fixtures import MatchingPerson as Person
from tests.protocol_fixtures import refused
from tests.redis_server import RedisServer

people = protocol_fixtures.own_people
enter = protocol_fixtures.Entrance(Person)


async def test_room_state_and_commands_reach_both_workers(
    tmp_path: Path,
    redis_server: RedisServer,
    people: list[Any],
) -> None:
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        host = await enter(w1, people, event, "Host", event.host_key)
        att = await enter(w2, people, event, "Att")
        assert host.pid in {p["participant_id"] for p in att.joined["participants"]}
        await host.wait("participant-joined")
        await host.request("set-mode", mode="discussion")
        update = await att.wait("room-updated", cause="mode-changed")
        assert update["room"]["mode"] == "discussion"
        await att.request("raise-hand")
        await host.wait("participant-updated")
        await refused("forbidden", att.request("set-mode", mode="listen-only"))
        await host.request("end-for-all")
        await att.wait("room-ended")
        await host.wait("room-ended")
        late = await protocol_fixtures.refused("ended", enter(w2, people, event, "Late"))
        assert late.code == "ended"


async def test_chat_order_is_the_same_on_both_workers(
    tmp_path: Path,
    redis_server: RedisServer,
    people: list[Any],
) -> None:
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        host = await enter(w1, people, event, "Host", event.host_key)
        a1 = await enter(w1, people, event, "A1")
        a2 = await enter(w2, people, event, "A2")
        b2 = await enter(w2, people, event, "B2")
        for p in (host, a1, a2, b2):
            await p.request("sync-interaction")
        senders = [host, a1, a2, b2]
        await asyncio.gather(
            *(
                p.request("chat-send", text=f"{i}-{n}")
                for i, p in enumerate(senders)
                for n in range(5)
            )
        )
        orders = []
        for p in senders:
            for _ in range(50):
                texts = [m["message"]["text"] for m in p.seen if m.get("type") == "chat-message"]
                if len(texts) == 20:
                    break
                await asyncio.sleep(0.05)
            orders.append(texts)
        assert all(len(o) == 20 for o in orders), [len(o) for o in orders]
        assert all(o == orders[0] for o in orders)
