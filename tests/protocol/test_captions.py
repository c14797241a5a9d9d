"""Live captions over real WebSockets: a presenter makes an attendee captioner, the captioner's
lines reach everyone (interim ones shown, final ones kept), others are refused, floods are
limited, attendees get nothing backstage, late joiners get the last lines, and the lines are
kept with their times and deleted with the event's personal data."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer
from tests.protocol.test_dashboard import add_user, sign_in
from tests.protocol_fixtures import refused
from webinar.interaction import store as ist
from webinar.interaction.engagement import delete_personal_data
from webinar.rooms.captions import CAPTION_HISTORY, FINAL_BURST, CaptionLine

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

    # Ann reloads her page (the same browser): still a captioner; the presenter's list follows
    await ann.request("leave")
    ann = await enter(server, people, event, "Ann", client_id="browser-ann")
    state = (await ann.request("sync-interaction"))["captions"]
    assert state["captioner"] is True and state["enabled"] is True
    await pres.wait("captions-state", where=lambda m: m["captioners"] == [ann.pid])

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


async def test_the_recordings_captions_are_served_as_webvtt_to_its_organiser(
    server: RunningServer,
) -> None:
    add_user(server, "olga")
    add_user(server, "otto")
    with server.store.connect_sync() as sync:
        owner = sync.get_user_by_name("olga")
        assert owner is not None
        event = sync.create_event("Launch", None, owner_id=owner.user_id)
        t0 = 1_750_000_000.0
        # ran 10 s, paused 20 s (backstage), ran 10 s; 2 s trimmed off its start
        sync.connection.execute(
            "INSERT INTO recordings (recording_id, event_id, started_at, ended_at,"
            " duration_seconds, size_bytes, files, spans, trimmed_seconds)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                "rec_0123456789ab",
                event.event_id,
                datetime.fromtimestamp(t0, UTC).isoformat(),
                datetime.fromtimestamp(t0 + 40, UTC).isoformat(),
                18.0,
                1000,
                '[{"name": "pa_x.webm", "feed": "pa_x", "label": "Piet", "part": 1,'
                ' "offset": 3.0, "duration": 15.0, "size": 1000, "streams": []}]',
                f"[[{t0}, {t0 + 10}], [{t0 + 30}, {t0 + 40}]]",
                2.0,
            ),
        )
        for seq, (at, text) in enumerate(
            [
                (t0 + 1, "cut away"),
                (t0 + 5, "Hello & <welcome>"),
                (t0 + 20, "backstage"),
                (t0 + 31, "after the break"),
            ],
            start=1,
        ):
            ist.save_caption(
                sync,
                event.event_id,
                CaptionLine(f"cl_{seq:016x}", seq, "pa_x", "Piet", text, at, True),
            )
    base = server.base_url
    olga = await sign_in(server, "olga")
    otto = await sign_in(server, "otto")
    try:
        async with olga.get(f"{base}/dashboard/recordings/rec_0123456789ab/captions.vtt") as resp:
            assert resp.status == 200 and resp.content_type == "text/vtt"
            assert await resp.text() == (
                "WEBVTT\n\n"
                "1\n00:00:03.000 --> 00:00:04.500\nHello &amp; &lt;welcome&gt;\n\n"
                "2\n00:00:09.000 --> 00:00:10.500\nafter the break\n"
            )
        # on the time of a file that starts 3 s in, and as a download
        async with olga.get(
            f"{base}/dashboard/recordings/rec_0123456789ab/captions.vtt?file=pa_x.webm&download=1"
        ) as resp:
            assert "00:00:00.000 --> 00:00:01.500" in await resp.text()
            assert resp.headers["Content-Disposition"].endswith('-captions.vtt"')
        async with olga.get(
            f"{base}/dashboard/recordings/rec_0123456789ab/captions.vtt?file=nope.webm"
        ) as resp:
            assert resp.status == 404
        async with olga.get(f"{base}/dashboard/recordings") as resp:
            assert 'data-testid="recording-captions"' in await resp.text()
        # another organiser, and nobody signed in, get nothing
        async with otto.get(f"{base}/dashboard/recordings/rec_0123456789ab/captions.vtt") as resp:
            assert resp.status == 404
        async with (
            aiohttp.ClientSession() as anon,
            anon.get(
                f"{base}/dashboard/recordings/rec_0123456789ab/captions.vtt", allow_redirects=False
            ) as resp,
        ):
            assert resp.status in (302, 303, 401)
    finally:
        await olga.close()
        await otto.close()
