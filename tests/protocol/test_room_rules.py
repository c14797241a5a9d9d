"""Room rules end to end over real WebSockets: modes, floor, moderation, lobby, resume."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer, running_server
from tests.protocol_fixtures import refused, roster_left, roster_shows


class Person(helpers.Person):
    """One signalling-only participant; ``wait`` matches fields (``a__b`` digs in)."""

    async def wait(  # type: ignore[override]
        self, type_: str, within: float = 5.0, **match: Any
    ) -> dict[str, Any]:
        def where(m: dict[str, Any]) -> bool:
            return all(_dig(m, k) == v for k, v in match.items())

        return await self.client.wait_for(type_, within=within, where=where)


def _dig(message: dict[str, Any], dotted: str) -> Any:
    value: Any = message
    for part in dotted.split("__"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


server = protocol_fixtures.server
people = protocol_fixtures.people
enter = protocol_fixtures.Entrance(Person)


async def test_roles_from_credentials(server: RunningServer, people: list[Person]) -> None:
    event = await server.create_event()
    host = await enter(server, people, event, "Host", event.host_key)
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    att = await enter(server, people, event, "Att")
    assert [p.joined["role"] for p in (host, pres, att)] == ["host", "presenter", "attendee"]
    assert att.joined["room"]["mode"] == "listen-only"
    assert att.joined["room"]["phase"] == "live"
    assert att.joined["room"]["recordable"] is True


async def test_mode_switch_rules(server: RunningServer, people: list[Person]) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    att = await enter(server, people, event, "Att")
    await refused("forbidden", att.request("set-mode", mode="discussion"))
    await refused("bad-message", pres.request("set-mode", mode="party"))
    await pres.request("set-mode", mode="presenters-only")
    update = await att.wait("room-updated", cause="mode-changed")
    assert update["room"]["mode"] == "presenters-only"
    assert update["room"]["recordable"] is False
    assert update["by"] == pres.pid


async def test_discussion_is_refused_above_25(server: RunningServer, people: list[Person]) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    for i in range(24):
        await enter(server, people, event, f"A{i}")
    await pres.request("set-mode", mode="discussion")  # 25 people
    late = await enter(server, people, event, "Late")  # the 26th
    me = next(p for p in late.joined["participants"] if p["participant_id"] == late.pid)
    assert me["listen_only"] is True
    await pres.request("set-mode", mode="listen-only")
    await refused("too-many-for-discussion", pres.request("set-mode", mode="discussion"))


async def test_floor_control(server: RunningServer, people: list[Person]) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    a = await enter(server, people, event, "A")
    b = await enter(server, people, event, "B")
    await b.request("raise-hand")
    await a.request("raise-hand")
    # the hand queue reaches those who run the floor, batched
    await roster_shows(pres, b.pid, hand_raised=1)
    await roster_shows(pres, a.pid, hand_raised=2)
    await refused("forbidden", a.request("grant", participant_id=b.pid, audio=True, video=False))
    await refused("forbidden", a.request("lower-hand", participant_id=b.pid))
    await pres.request("next-speaker")  # b raised first
    granted = await b.wait("participant-updated", participant__participant_id=b.pid, cause="grant")
    assert granted["participant"]["grant_audio"] is True
    assert granted["participant"]["hand_raised"] is None
    await pres.request("next-speaker")  # b's grant goes, a gets the microphone
    revoked = await b.wait(
        "participant-updated", participant__participant_id=b.pid, participant__grant_audio=False
    )
    assert revoked["cause"] == "grant"
    await a.wait(
        "participant-updated", participant__participant_id=a.pid, participant__grant_audio=True
    )
    await refused("unknown-participant", pres.request("mute", participant_id="pa_nobody"))
    await pres.request("mute-attendees")


async def test_lock_remove_ban(server: RunningServer, people: list[Person]) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    att = await enter(server, people, event, "Att", client_id="browser-1")
    await pres.request("remove", participant_id=att.pid, ban=True)
    bye = await att.wait("bye")
    assert bye["reason"] == "removed"
    assert await roster_left(pres, att.pid) == "removed"
    await refused("banned", enter(server, people, event, "Att again", client_id="browser-1"))
    await pres.request("lock", locked=True)
    await refused("room-locked", enter(server, people, event, "Other"))
    await enter(server, people, event, "Pres 2", event.presenter_key)  # presenters still enter
    await pres.request("lock", locked=False)
    await enter(server, people, event, "Other")


async def test_end_for_all(server: RunningServer, people: list[Person]) -> None:
    event = await server.store.create_event("Ends", None, thank_you_url="https://example.org/ty")
    host = await enter(server, people, event, "Host", event.host_key)
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    att = await enter(server, people, event, "Att")
    await refused("forbidden", pres.request("end-for-all"))
    await host.request("end-for-all")
    for person in (pres, att):
        ended = await person.wait("room-ended")
        assert ended["thank_you_url"] == "https://example.org/ty"
        assert (await person.wait("bye"))["reason"] == "ended"
    await asyncio.sleep(0.3)  # the emptied room is released
    await refused("ended", enter(server, people, event, "Latecomer"))


async def test_lobby_and_join_window(server: RunningServer, people: list[Person]) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=3)
    event = await server.store.create_event(
        "Later", soon, agenda="1. Hello", lobby_message="Grab a coffee", join_window_minutes=5
    )
    att = await enter(server, people, event, "Att")
    room = att.joined["room"]
    assert room["phase"] == "lobby"
    assert (room["agenda"], room["lobby_message"]) == ("1. Hello", "Grab a coffee")
    assert room["starts_at"] == soon.isoformat()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    await refused("forbidden", att.request("start"))
    await pres.request("start")
    started = await att.wait("room-updated", cause="started")
    assert started["room"]["phase"] == "live"

    far = await server.store.create_event(
        "Tomorrow", datetime.now(UTC) + timedelta(days=1), join_window_minutes=5
    )
    await refused("not-started", enter(server, people, far, "Early"))
    early_pres = await enter(server, people, far, "Prep", far.presenter_key)
    assert early_pres.joined["room"]["phase"] == "lobby"


async def test_resume_keeps_role_grants_and_hand(
    server: RunningServer, people: list[Person]
) -> None:
    event = await server.create_event()
    host = await enter(server, people, event, "Host", event.host_key)
    att = await enter(server, people, event, "Att")
    other = await enter(server, people, event, "Other")
    await other.request("raise-hand")
    await att.request("raise-hand")
    await host.request("set-role", participant_id=other.pid, role="presenter")
    await host.request("grant", participant_id=att.pid, audio=False, video=True)
    token = att.joined["resume_token"]
    await att.client.close()  # the network drops
    dropped = await roster_shows(host, att.pid, connected=False)  # still on the stage: a grant
    assert dropped["grant_video"] is True
    back = await enter(server, people, event, "Att", resume_token=token)
    assert back.joined["resumed"] is True
    assert back.pid == att.pid
    me = next(p for p in back.joined["participants"] if p["participant_id"] == att.pid)
    assert me["grant_video"] is True and me["connected"] is True
    assert me["role"] == "attendee"
    promoted = next(p for p in back.joined["participants"] if p["participant_id"] == other.pid)
    assert promoted["role"] == "presenter"
    # nobody was told the attendee left
    while not host.client.events.empty():
        message = host.client.events.get_nowait()
        assert message["type"] != "participant-left"


async def test_dropped_participant_leaves_after_the_grace(tmp_path: Path) -> None:
    from webinar.app import ROOMS

    async with running_server(tmp_path / "data") as server:
        server.server.app[ROOMS]._resume_grace = 0.5
        event = await server.create_event()
        made: list[Person] = []
        try:
            pres = await enter(server, made, event, "Pres", event.presenter_key)
            att = await enter(server, made, event, "Att")
            await att.client.close()
            assert await roster_left(pres, att.pid) == "disconnected"
            again = await enter(server, made, event, "Att", resume_token=att.joined["resume_token"])
            assert again.joined["resumed"] is False  # too late: a new participant
        finally:
            await asyncio.gather(*(p.close() for p in made))


async def test_second_socket_with_the_token_replaces_the_first(
    server: RunningServer, people: list[Person]
) -> None:
    event = await server.create_event()
    att = await enter(server, people, event, "Att")
    again = await enter(server, people, event, "Att", resume_token=att.joined["resume_token"])
    assert again.pid == att.pid and again.joined["resumed"]
    assert (await att.wait("bye"))["reason"] == "replaced"
