"""Emoji reactions over real WebSockets: 200 people reacting at once cost each client a few
``reactions`` messages a second with the right totals; bad reactions and floods are refused
plainly; the engagement export counts each person's."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer, running_server
from tests.metrics_support import value
from tests.protocol.test_dashboard import add_user, sign_in
from tests.protocol_fixtures import refused
from webinar.app import ATTENDANCE
from webinar.client.peer import SignallingClient
from webinar.config import Config
from webinar.ids import format_event_id
from webinar.rooms.reactions import REACTION_BURST, REACTIONS_INTERVAL

CLIENTS = 200
ROUNDS = 8  # each of the 200 reacts this many times (within the burst), ROUND_GAP apart
ROUND_GAP = 0.1

server = protocol_fixtures.server
people = protocol_fixtures.people
enter = protocol_fixtures.Entrance(helpers.Person)


async def eventually(check: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def one_address_config(tmp_path: Path) -> Config:
    """All the clients come from loopback: lift the per-address socket cap."""
    config = helpers.make_config(tmp_path / "data")
    signalling = dataclasses.replace(config.signalling, max_sockets_per_address=0)
    return dataclasses.replace(config, signalling=signalling)


async def test_200_people_reacting_cost_each_client_a_few_messages_a_second(
    tmp_path: Path,
) -> None:
    async with (
        running_server(tmp_path / "data", one_address_config(tmp_path)) as srv,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        event = await srv.create_event("Big room")
        url = srv.base_url.replace("http", "ws") + "/ws"
        clients = [SignallingClient(http, url) for _ in range(CLIENTS)]
        got: list[list[tuple[float, dict[str, int]]]] = [[] for _ in clients]

        def listener(box: list[tuple[float, dict[str, int]]]) -> Any:
            def on_message(m: dict[str, Any]) -> None:
                if m["type"] == "reactions":
                    assert m["interval"] == REACTIONS_INTERVAL
                    box.append((time.monotonic(), m["counts"]))

            return on_message

        async def join(i: int) -> None:
            client = clients[i]
            await client.connect()
            client.on_message(listener(got[i]))
            await client.request("hello", protocol=1)
            await client.request("join", event_id=event.event_id, name=f"Person {i}")

        try:
            for start in range(0, CLIENTS, 25):
                await asyncio.gather(*(join(i) for i in range(start, min(CLIENTS, start + 25))))
            expected = {"clap": 0, "heart": 0}
            for round_ in range(ROUNDS):
                # everyone at once, for 0.8 s: mostly claps, some hearts
                sends = []
                for i, client in enumerate(clients):
                    reaction = "heart" if (i + round_) % 3 == 0 else "clap"
                    sends.append(client.send({"type": "react", "reaction": reaction}))
                    expected[reaction] += 1
                await asyncio.gather(*sends)
                await asyncio.sleep(ROUND_GAP)

            def totals(box: list[tuple[float, dict[str, int]]]) -> dict[str, int]:
                out = {"clap": 0, "heart": 0}
                for _at, counts in box:
                    for reaction, n in counts.items():
                        out[reaction] = out.get(reaction, 0) + n
                return out

            await eventually(lambda: all(totals(box) == expected for box in got))
            await asyncio.sleep(3 * REACTIONS_INTERVAL)
            for box in got:
                assert totals(box) == expected  # every reaction, once, for everyone
                times = [at for at, _counts in box]
                # at most ~5 a second (one per 0.25 s window; 5 allows for the loop's jitter)
                for k, at in enumerate(times):
                    assert sum(1 for t in times[k:] if t < at + 1.0) <= 5, times
                # 1,600 reactions reached this client in a handful of messages
                assert len(box) <= 8, len(box)
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def test_a_bad_reaction_and_a_flood_are_refused_plainly(
    server: RunningServer, people: list[helpers.Person]
) -> None:
    event = await server.create_event()
    ann = await enter(server, people, event, "Ann")
    bob = await enter(server, people, event, "Bob")
    err = await refused("bad-message", ann.request("react", reaction="thumbs-down"))
    assert "react.reaction must be one of" in err.message and "'clap'" in err.message
    await refused("bad-message", ann.request("react", reaction="👍"))
    await refused("bad-message", ann.request("react"))
    # a burst, then the per-person limit
    for _ in range(REACTION_BURST):
        await ann.request("react", reaction="party")
    err = await refused("rate-limited", ann.request("react", reaction="party"))
    assert "too many reactions" in err.message
    await bob.request("react", reaction="wow")  # Bob is not held back by Ann
    seen: dict[str, int] = {}

    def counted() -> bool:
        seen.clear()
        for m in bob.seen:
            if m["type"] == "reactions":
                for reaction, n in m["counts"].items():
                    seen[reaction] = seen.get(reaction, 0) + n
        return seen == {"party": REACTION_BURST, "wow": 1}

    await eventually(counted, within=5.0)  # the refused ones were not counted
    await asyncio.sleep(0.5)
    assert counted()
    async with aiohttp.ClientSession() as http, http.get(server.base_url + "/metrics") as resp:
        assert value(await resp.text(), "webinar_reactions_total") == REACTION_BURST + 1


async def test_the_engagement_export_counts_each_persons_reactions(
    server: RunningServer, people: list[helpers.Person]
) -> None:
    add_user(server, "olga")
    with server.store.connect_sync() as sync:
        owner = sync.get_user_by_name("olga")
        assert owner is not None
        event = sync.create_event("Launch", None, owner_id=owner.user_id)
    ann = await enter(server, people, event, "Ann", client_id="browser-ann")
    bob = await enter(server, people, event, "Bob", client_id="browser-bob")
    for reaction in ("clap", "clap", "heart", "clap"):
        await ann.request("react", reaction=reaction)
    await bob.request("react", reaction="party")
    # Ann reloads her page: a new participant, the same person
    await ann.request("leave")
    ann = await enter(server, people, event, "Ann", client_id="browser-ann")
    await ann.request("react", reaction="clap")
    # everyone leaves: the room closes and writes what it counted
    await ann.request("leave")
    await bob.request("leave")
    attendance = server.server.app[ATTENDANCE]

    async def rows() -> dict[str, dict[str, Any]]:
        columns, found = await attendance.engagement(event.event_id)
        assert "reactions_sent" in columns and "reactions_kinds" in columns
        return {r["name"]: r for r in found}

    deadline = time.monotonic() + 10
    while True:
        by_name = await rows()
        if by_name.get("Ann", {}).get("reactions_sent") == 5:
            break
        assert time.monotonic() < deadline, by_name
        await asyncio.sleep(0.1)
    assert by_name["Ann"]["reactions_kinds"] == "👏 4 | ❤️ 1"
    assert by_name["Bob"]["reactions_sent"] == 1
    assert by_name["Bob"]["reactions_kinds"] == "🎉 1"
    # the CSV export and the statistics page show them
    http = await sign_in(server, "olga")
    try:
        base, display = server.base_url, format_event_id(event.event_id)
        async with http.get(f"{base}/dashboard/events/{display}/export.csv") as resp:
            table = list(csv.DictReader(io.StringIO(await resp.text())))
        ann_row = next(r for r in table if r["name"] == "Ann")
        assert (ann_row["reactions_sent"], ann_row["reactions_kinds"]) == ("5", "👏 4 | ❤️ 1")
        async with http.get(
            f"{base}/dashboard/events/{display}/stats", headers={"Accept-Language": "en"}
        ) as resp:
            html = await resp.text()
        assert 'data-testid="attendee-reactions" title="👏 4 | ❤️ 1">5<' in html
    finally:
        await http.close()


def reaction_totals(person: helpers.Person) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in person.seen:
        if m["type"] == "reactions":
            for reaction, n in m["counts"].items():
                out[reaction] = out.get(reaction, 0) + n
    return out


async def test_presenters_switch_reactions_off_and_on_for_attendees(
    server: RunningServer, people: list[helpers.Person]
) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann")
    bob = await enter(server, people, event, "Bob")
    assert (await ann.request("sync-interaction"))["reactions"] == {"enabled": True, "by": None}
    err = await refused("forbidden", ann.request("reactions-settings", enabled=False))
    assert "may not switch reactions" in err.message
    await refused("bad-message", pres.request("reactions-settings"))
    await pres.request("reactions-settings", enabled=False)
    for person in (ann, bob, pres):  # everyone is told, with who switched
        state = await person.wait("reactions-state", where=lambda m: m["enabled"] is False)
        assert state["by"] == pres.pid
    err = await refused("reactions-off", ann.request("react", reaction="clap"))
    assert err.message == "the presenters switched reactions off"
    # presenters may still react, and everyone sees it
    await pres.request("react", reaction="heart")
    await eventually(lambda: reaction_totals(ann) == {"heart": 1}, within=5.0)
    # a late joiner learns it is off
    late = await enter(server, people, event, "Late")
    assert (await late.request("sync-interaction"))["reactions"]["enabled"] is False
    await refused("reactions-off", late.request("react", reaction="wow"))
    # back on: attendees' reactions count again
    await pres.request("reactions-settings", enabled=True)
    await ann.wait("reactions-state", where=lambda m: m["enabled"] is True)
    await ann.request("react", reaction="clap")
    await eventually(lambda: reaction_totals(bob) == {"heart": 1, "clap": 1}, within=5.0)
    await asyncio.sleep(3 * REACTIONS_INTERVAL)
    assert reaction_totals(bob) == {"heart": 1, "clap": 1}  # the refused ones never counted


async def test_the_reactions_switch_survives_the_room_closing_and_a_restart(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    config = helpers.make_config(data)
    async with running_server(data, config) as srv:
        event = await srv.create_event()
        made: list[helpers.Person] = []
        try:
            pres = await enter(srv, made, event, "Pres", event.presenter_key)
            await pres.request("reactions-settings", enabled=False)
            await pres.request("leave")
            await eventually(lambda: srv.rooms.get(event.event_id) is None)
            # the room opens again from the store
            ann = await enter(srv, made, event, "Ann")
            assert (await ann.request("sync-interaction"))["reactions"]["enabled"] is False
            await refused("reactions-off", ann.request("react", reaction="clap"))
        finally:
            await asyncio.gather(*(p.close() for p in made))
    # a new server process on the same data
    async with running_server(data, config) as srv:
        made = []
        try:
            ann = await enter(srv, made, event, "Ann")
            await refused("reactions-off", ann.request("react", reaction="clap"))
            assert (await ann.request("sync-interaction"))["reactions"]["enabled"] is False
            pres = await enter(srv, made, event, "Pres", event.presenter_key)
            await pres.request("reactions-settings", enabled=True)
            await ann.wait("reactions-state", where=lambda m: m["enabled"] is True)
            await ann.request("react", reaction="clap")
        finally:
            await asyncio.gather(*(p.close() for p in made))
