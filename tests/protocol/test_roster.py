"""Who hears of whom: attendees get the stage and counts, those who run the floor the roster.

A join must cost the same in a room of 10,000 as in a room of 10 (issue #16, item 5): an
attendee's arrival is counted (``participant-count``, coalesced) and batched into
``roster-delta`` for presenters and hosts, never announced to every attendee.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer, make_config, running_server
from tests.protocol_fixtures import refused, roster_shows
from webinar.client.peer import SignallingClient
from webinar.rooms.interaction import VOTES_INTERVAL
from webinar.rooms.roster import COUNT_INTERVAL, DELTA_INTERVAL
from webinar.storage.store import Event

CROWD = 200


class Person(helpers.Person):
    """A signalling-only participant; ``wait`` matches fields (``a__b`` digs in)."""

    async def wait(  # type: ignore[override]
        self, type_: str, within: float = 5.0, **match: Any
    ) -> dict[str, Any]:
        def where(m: dict[str, Any]) -> bool:
            for dotted, expected in match.items():
                value: Any = m
                for part in dotted.split("__"):
                    value = value.get(part) if isinstance(value, dict) else None
                if value != expected:
                    return False
            return True

        return await self.client.wait_for(type_, within=within, where=where)


people = protocol_fixtures.people
enter = protocol_fixtures.Entrance(Person)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server that lets a crowd in from one loopback address."""
    config = make_config(tmp_path / "data")
    config = dataclasses.replace(
        config, signalling=dataclasses.replace(config.signalling, max_sockets_per_address=0)
    )
    async with running_server(tmp_path / "data", config) as srv:
        yield srv


async def crowd(
    server: RunningServer, http: aiohttp.ClientSession, event: Event, n: int
) -> list[tuple[SignallingClient, str]]:
    """``n`` signalling-only attendees, 20 joining at a time; (client, participant id)."""
    gate = asyncio.Semaphore(20)

    async def one(i: int) -> tuple[SignallingClient, str]:
        async with gate:
            client = SignallingClient(http, server.base_url.replace("http", "ws") + "/ws")
            await client.connect()
            await client.request("hello", protocol=1)
            joined = await client.request("join", event_id=event.event_id, name=f"Crowd {i}")
            return client, str(joined["participant_id"])

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def kinds(person: helpers.Person) -> Counter[str]:
    return Counter(str(m.get("type")) for m in person.seen)


async def settled(person: helpers.Person, total: int, within: float = 10.0) -> None:
    """Until the person's last count says ``total`` are here."""
    deadline = time.monotonic() + within
    while True:
        counts = [m["counts"] for m in person.seen if m.get("type") == "participant-count"]
        if counts and counts[-1]["total"] == total:
            return
        assert time.monotonic() < deadline, f"counts never reached {total}: {counts[-1:]}"
        await asyncio.sleep(0.05)


async def test_an_arrival_is_counted_for_attendees_and_batched_for_hosts(
    server: RunningServer, people: list[Any]
) -> None:
    event = await server.create_event()
    host = await enter(server, people, event, "Host", event.host_key)
    watcher = await enter(server, people, event, "Watcher")
    assert watcher.joined["roster"] == "stage" and host.joined["roster"] == "full"
    assert [p["name"] for p in watcher.joined["participants"]] == ["Host", "Watcher"]
    assert watcher.joined["counts"] == {
        "total": 2,
        "hosts": 1,
        "presenters": 0,
        "attendees": 1,
        "hands": 0,
    }
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        clients = await crowd(server, http, event, CROWD)
        try:
            elapsed = time.monotonic() - started
            await settled(watcher, CROWD + 2)
            await settled(host, CROWD + 2)
            await asyncio.sleep(2 * DELTA_INTERVAL)  # the last delta
            seen = kinds(watcher)
            # The attendee: no arrival announced, a count at most every COUNT_INTERVAL.
            assert seen["participant-joined"] == 0 and seen["roster-delta"] == 0
            most = (elapsed + 1.0) / COUNT_INTERVAL + 2
            assert 1 <= seen["participant-count"] <= most, (seen, elapsed)
            assert seen["participant-count"] < CROWD / 10  # O(1), not O(N)
            # The host: every arrival, in fewer deltas than arrivals.
            deltas = [m for m in host.seen if m.get("type") == "roster-delta"]
            arrived = [p["participant_id"] for d in deltas for p in d["joined"]]
            assert set(arrived) == {pid for _, pid in clients} | {watcher.pid}
            assert len(arrived) == len(set(arrived))  # each once
            assert len(deltas) <= (elapsed + 1.0) / DELTA_INTERVAL + 2, (len(deltas), elapsed)
            assert len(deltas) < CROWD / 4
            assert kinds(host)["participant-joined"] == 0  # attendees are not on the stage

            # The paged list: everyone exactly once, across pages.
            ids: list[str] = []
            after: str | None = None
            pages = 0
            while True:
                fields: dict[str, Any] = {"limit": 50}
                if after is not None:
                    fields["after"] = after
                page = await host.request("roster-page", **fields)
                assert page["type"] == "roster" and len(page["participants"]) <= 50
                ids += [p["participant_id"] for p in page["participants"]]
                pages += 1
                after = page["next_cursor"]
                if after is None:
                    break
            assert pages == 5  # 202 people, 50 a page
            assert len(ids) == len(set(ids)) == CROWD + 2
            assert set(ids) == {pid for _, pid in clients} | {host.pid, watcher.pid}
            assert page["counts"]["total"] == CROWD + 2
            await refused("forbidden", watcher.request("roster-page"))

            # Leaving: counted for the attendee, a delta's `left` for the host.
            gone = clients[:10]
            await asyncio.gather(*(c.request("leave") for c, _ in gone))
            await settled(watcher, CROWD + 2 - 10)
            for _, pid in gone:
                assert await protocol_fixtures.roster_left(host, pid) == "left"
            assert kinds(watcher)["participant-left"] == 0
        finally:
            await asyncio.gather(*(c.close() for c, _ in clients))


async def test_the_stage_is_shown_to_everyone(server: RunningServer, people: list[Any]) -> None:
    event = await server.create_event()
    host = await enter(server, people, event, "Host", event.host_key)
    watcher = await enter(server, people, event, "Watcher")
    ann = await enter(server, people, event, "Ann")
    bob = await enter(server, people, event, "Bob")
    assert [p["name"] for p in bob.joined["participants"]] == ["Host", "Bob"]
    await refused("forbidden", ann.request("roster-page"))

    # Promoted: everyone learns of her as a presenter; she may now page the roster.
    await host.request("set-role", participant_id=ann.pid, role="presenter")
    shown = await watcher.wait("participant-updated", participant__participant_id=ann.pid)
    assert shown["participant"]["role"] == "presenter"
    await ann.wait("participant-updated", participant__participant_id=ann.pid, cause="role")
    page = await ann.request("roster-page")
    assert {p["participant_id"] for p in page["participants"]} == {
        host.pid,
        watcher.pid,
        ann.pid,
        bob.pid,
    }
    # A presenter who joins later sees her on the stage.
    late = await enter(server, people, event, "Late")
    assert {p["name"] for p in late.joined["participants"]} == {"Host", "Ann", "Late"}

    # Granted the microphone: on the stage for everyone; taken back: off it again.
    await host.request("grant", participant_id=bob.pid, audio=True, video=False)
    on = await watcher.wait("participant-updated", participant__participant_id=bob.pid)
    assert on["participant"]["grant_audio"] is True
    await host.request("grant", participant_id=bob.pid, audio=False, video=False)
    off = await watcher.wait("participant-updated", participant__participant_id=bob.pid)
    assert off["participant"]["grant_audio"] is False  # the client forgets him now
    # Demoted: everyone sees her leave the stage.
    await host.request("set-role", participant_id=ann.pid, role="attendee")
    demoted = await watcher.wait("participant-updated", participant__participant_id=ann.pid)
    assert demoted["participant"]["role"] == "attendee"
    await refused("forbidden", ann.request("roster-page"))
    # Off the stage, Bob's leaving is only counted for attendees.
    await bob.request("leave")
    await settled(watcher, 4)
    assert all(
        m.get("participant_id") != bob.pid for m in watcher.seen if m["type"] == "participant-left"
    )


async def test_hands_reach_those_who_run_the_floor(
    server: RunningServer, people: list[Any]
) -> None:
    event = await server.create_event()
    host = await enter(server, people, event, "Host", event.host_key)
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    attendees = [await enter(server, people, event, f"A{i}") for i in range(3)]
    for a in attendees:
        await a.request("raise-hand")
    for watcher in (host, pres):
        for order, a in enumerate(attendees, start=1):
            await roster_shows(watcher, a.pid, hand_raised=order)
    first = attendees[0]
    # An attendee sees their own hand at once, and the others' only as a count.
    mine = await first.wait("participant-updated", participant__participant_id=first.pid)
    assert mine["participant"]["hand_raised"] == 1
    assert not any(
        m["type"] == "participant-updated" and m["participant"]["participant_id"] != first.pid
        for m in first.seen
    )
    await asyncio.sleep(COUNT_INTERVAL * 2)
    counts = [m["counts"] for m in first.seen if m["type"] == "participant-count"]
    assert counts[-1]["hands"] == 3
    # Let the next speak: the first hand gets the microphone and joins the stage for all.
    await host.request("next-speaker")
    granted = await attendees[2].wait(
        "participant-updated", participant__participant_id=first.pid, cause="grant"
    )
    assert granted["participant"]["grant_audio"] is True
    await roster_shows(pres, first.pid, grant_audio=True, hand_raised=None)
    await host.request("lower-hand", participant_id=attendees[1].pid)
    await roster_shows(pres, attendees[1].pid, hand_raised=None)


async def test_a_vote_storm_reaches_others_coalesced(
    server: RunningServer, people: list[Any]
) -> None:
    event = await server.create_event()
    await enter(server, people, event, "Host", event.host_key)
    watcher = await enter(server, people, event, "Watcher")
    asker = await enter(server, people, event, "Asker")
    asked = await asker.request("question-ask", text="Will the slides be shared?")
    qid = asked["question"]["question_id"]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        clients = await crowd(server, http, event, 40)
        try:
            await asyncio.gather(*(c.request("question-vote", question_id=qid) for c, _ in clients))
            mine = await clients[0][0].wait_for("question", where=lambda m: m["cause"] == "vote")
            assert mine["question"]["voted"] is True  # the voter: at once
            await asyncio.sleep(3 * VOTES_INTERVAL)
            votes = [
                m["question"]["votes"]
                for m in watcher.seen
                if m["type"] == "question" and m["cause"] == "vote"
            ]
            assert votes and votes[-1] == 40
            assert len(votes) < 10  # coalesced, not one a vote
        finally:
            await asyncio.gather(*(c.close() for c, _ in clients))


async def test_in_a_big_room_a_host_pages_the_roster(
    server: RunningServer, people: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("webinar.signalling.roster.SNAPSHOT_LIMIT", 3)
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    small = {p["name"] for p in pres.joined["participants"]}
    assert pres.joined["roster"] == "full" and small == {"Pres"}
    attendees = [await enter(server, people, event, f"A{i}") for i in range(3)]
    host = await enter(server, people, event, "Host", event.host_key)  # the 5th
    assert host.joined["roster"] == "paged"
    assert {p["name"] for p in host.joined["participants"]} == {"Pres", "Host"}
    page = await host.request("roster-page", limit=500)
    assert page["next_cursor"] is None
    assert {p["participant_id"] for p in page["participants"]} == {
        pres.pid,
        host.pid,
        *(a.pid for a in attendees),
    }
