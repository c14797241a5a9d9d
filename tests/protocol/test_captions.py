"""Live captions over real WebSockets: a presenter makes an attendee captioner, the captioner's
lines reach everyone (interim ones shown, final ones kept), others are refused, floods are
limited, attendees get nothing backstage, late joiners get the last lines, and the lines are
kept with their times and deleted with the event's personal data."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer
from tests.protocol_fixtures import refused
from webinar.interaction import store as ist
from webinar.interaction.engagement import delete_personal_data
from webinar.rooms.captions import CAPTION_HISTORY, FINAL_BURST

server = protocol_fixtures.server
people = protocol_fixtures.people
enter = protocol_fixtures.Entrance(helpers.Person)


def captions_of(person: helpers.Person) -> list[dict[str, Any]]:
    return [m["line"] for m in person.seen if m["type"] == "caption"]


async def eventually(check: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_a_captioner_s_lines_reach_everyone_and_the_final_ones_are_kept(
    server: RunningServer, people: list[helpers.Person]
) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann", client_id="browser-ann")
    bob = await enter(server, people, event, "Bob")
    # nobody but presenters may caption or choose captioners
    await refused("forbidden", ann.request("captions-set", enabled=True))
    await refused("forbidden", ann.request("captioner-set", participant_id=bob.pid, captioner=True))
    await refused("forbidden", ann.request("caption-send", text="hello"))
    await refused(
        "invalid-request", pres.request("captioner-set", participant_id=pres.pid, captioner=True)
    )
    await refused("bad-message", pres.request("caption-send", text="x" * 501))

    await pres.request("captioner-set", participant_id=ann.pid, captioner=True)
    state = await ann.wait("captions-state")
    assert (state["enabled"], state["captioner"], state["captioners"]) == (False, True, None)
    told = await pres.wait("captions-state")
    assert told["captioners"] == [ann.pid] and told["captioner"] is True
    await refused("captions-off", ann.request("caption-send", text="too early"))

    await ann.request("captions-set", enabled=True)  # a captioner may switch them on
    state = await bob.wait("captions-state")
    assert (state["enabled"], state["captioner"], state["by"]) == (True, False, ann.pid)

    await ann.request("caption-send", text="Welc", final=False)
    await ann.request("caption-send", text="Welcome,   everyone.")
    await eventually(lambda: len(captions_of(bob)) == 2)
    interim, final = captions_of(bob)
    assert (interim["final"], interim["line_id"], interim["seq"], interim["text"]) == (
        False,
        "",
        0,
        "Welc",
    )
    assert final["final"] is True and final["text"] == "Welcome, everyone."
    assert final["name"] == "Ann" and final["participant_id"] == ann.pid and final["seq"] == 1
    assert abs(final["at"] - time.time()) < 5
    await eventually(lambda: len(captions_of(pres)) == 2 and len(captions_of(ann)) == 2)

    # only the final line is kept, with its time
    with server.store.connect_sync() as sync:
        kept = ist.caption_lines(sync, event.event_id)
    assert [(k.line_id, k.text, k.at) for k in kept] == [
        (final["line_id"], "Welcome, everyone.", final["at"])
    ]

    # the right is taken back: refused from then on
    await pres.request("captioner-set", participant_id=ann.pid, captioner=False)
    await ann.wait("captions-state", where=lambda m: m["captioner"] is False)
    await refused("forbidden", ann.request("caption-send", text="still here?"))


async def test_the_per_sender_limit_and_late_joiners(
    server: RunningServer, people: list[helpers.Person]
) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    await pres.request("captions-set", enabled=True)
    for i in range(FINAL_BURST):
        await pres.request("caption-send", text=f"line {i}")
    err = await refused("rate-limited", pres.request("caption-send", text="one too many"))
    assert "too many caption lines" in err.message
    late = await enter(server, people, event, "Late")
    state = await late.request("sync-interaction")
    assert state["captions"]["enabled"] is True and state["captions"]["captioner"] is False
    assert [line["text"] for line in state["caption_lines"]] == [
        f"line {i}" for i in range(FINAL_BURST - CAPTION_HISTORY, FINAL_BURST)
    ]


async def test_attendees_get_no_captions_backstage(
    server: RunningServer, people: list[helpers.Person]
) -> None:
    event = await server.create_event()
    host = await enter(server, people, event, "Host", event.host_key)
    ann = await enter(server, people, event, "Ann")
    cap = await enter(server, people, event, "Cap")
    await host.request("captioner-set", participant_id=cap.pid, captioner=True)
    await host.request("captions-set", enabled=True)
    await host.request("set-mode", mode="presenters-only")
    await cap.request("caption-send", text="only backstage")
    await host.request("caption-send", text="the host too")
    await eventually(lambda: len(captions_of(host)) == 2 and len(captions_of(cap)) == 2)
    state = await ann.request("sync-interaction")
    assert state["caption_lines"] == []
    await host.request("set-mode", mode="listen-only")
    await host.request("caption-send", text="on air")
    await eventually(lambda: len(captions_of(ann)) == 1)
    assert [line["text"] for line in captions_of(ann)] == ["on air"]  # nothing from backstage


async def test_caption_lines_go_with_the_personal_data(
    server: RunningServer, people: list[helpers.Person]
) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann", client_id="browser-ann")
    await pres.request("captioner-set", participant_id=ann.pid, captioner=True)
    await pres.request("captions-set", enabled=True)
    await ann.request("caption-send", text="Hello")
    for person in (pres, ann):
        await person.request("leave")
    with server.store.connect_sync() as sync:
        assert len(ist.caption_lines(sync, event.event_id)) == 1
        counts = delete_personal_data(sync, event.event_id)
        assert counts["caption_lines"] == 1
        assert ist.caption_lines(sync, event.event_id) == []
        snap = ist.load(sync, event.event_id, 10)
        assert snap.captioners == frozenset() and snap.captions_enabled is True
