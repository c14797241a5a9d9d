"""One room over two workers: what a participant on one sees of the other's (signalling)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests import protocol_fixtures
from tests.cluster.workers import two_workers
from tests.helpers import RunningServer
from tests.join_tokens import backend, organiser
from tests.protocol.test_shared_ticketing import paid_code
from tests.protocol_fixtures import MatchingPerson as Person
from tests.protocol_fixtures import refused
from tests.redis_server import RedisServer
from webinar.app import TICKET_DESK
from webinar.storage.records import Event
from webinar.ticketing import SecondDevice, records
from webinar.ticketing.records import EventAccess

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
        # the host learns of the arrival on the other worker in the roster's batched deltas
        await host.client.wait_for(
            "roster-delta", where=lambda m: att.pid in {p["participant_id"] for p in m["joined"]}
        )
        await host.request("set-mode", mode="discussion")
        update = await att.wait("room-updated", cause="mode-changed")
        assert update["room"]["mode"] == "discussion"
        await att.request("raise-hand")
        await host.client.wait_for(
            "roster-delta",
            where=lambda m: any(
                p["participant_id"] == att.pid and p["hand_raised"] is not None
                for p in m["updated"]
            ),
        )
        await refused("forbidden", att.request("set-mode", mode="listen-only"))
        await host.request("end-for-all")
        await att.wait("room-ended")
        await host.wait("room-ended")
        late = await protocol_fixtures.refused("ended", enter(w2, people, event, "Late"))
        assert late.code == "ended"


async def two_and_two(
    w1: RunningServer, w2: RunningServer, people: list[Any], event: Event, key: str
) -> list[Any]:
    """Who leads (with ``key``) and an attendee on worker 1, two attendees on worker 2; all
    with the room's interaction synced."""
    joined = [
        await enter(w1, people, event, "Lead", key),
        await enter(w1, people, event, "Ann"),
        await enter(w2, people, event, "Bob"),
        await enter(w2, people, event, "Cat"),
    ]
    for p in joined:
        await p.request("sync-interaction")
    return joined


async def test_chat_order_is_the_same_on_both_workers(
    tmp_path: Path,
    redis_server: RedisServer,
    people: list[Any],
) -> None:
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        senders = await two_and_two(w1, w2, people, event, event.host_key)
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


POLL = {
    "title": "Which day?",
    "kind": "poll",
    "questions": [
        {"text": "Pick a day", "kind": "single", "options": [{"text": "Mon"}, {"text": "Fri"}]}
    ],
}


def _interaction(p: Any) -> list[tuple[str, str]]:
    """What a person saw of Q&A, polls and the call-to-action, in order (type, id)."""
    seen = []
    for m in p.seen:
        if m.get("type") == "question":
            seen.append(("question", m["question"]["question_id"]))
        elif m.get("type") == "poll":
            seen.append((f"poll-{m['cause']}", m["poll"]["poll_id"]))
        elif m.get("type") == "cta" and m.get("cta"):
            seen.append(("cta", m["cta"]["cta_id"]))
    return seen


async def test_qa_polls_and_cta_reach_both_workers_in_one_order(
    tmp_path: Path, redis_server: RedisServer, people: list[Any]
) -> None:
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        pres, ann, bob, cat = await two_and_two(w1, w2, people, event, event.presenter_key)
        # questions from both workers at once, votes across workers
        asked = await asyncio.gather(
            *(p.request("question-ask", text=f"Q from {p.pid}") for p in (ann, bob, cat))
        )
        qids = [a["question"]["question_id"] for a in asked]
        await bob.request("question-vote", question_id=qids[0], up=True)
        await ann.request("question-vote", question_id=qids[1], up=True)
        # a poll made on worker 1, answered on both
        poll = (await pres.request("poll-create", **POLL))["poll"]["poll_id"]
        await pres.request("poll-launch", poll_id=poll)
        await bob.wait("poll", cause="launched")
        answers = [{"question_id": "q1", "option_ids": ["q1o2"]}]
        await asyncio.gather(
            *(p.request("poll-answer", poll_id=poll, answers=answers) for p in (ann, bob, cat))
        )

        def counted(m: dict[str, Any]) -> bool:
            return bool(m["questions"][0]["counts"] == {"q1o1": 0, "q1o2": 3})

        await pres.client.wait_for("poll-results", where=counted)
        await pres.request("poll-close", poll_id=poll)
        await cat.wait("poll", cause="closed")
        cta = {"message": "Slides", "button": "Get", "url": "https://example.com/s"}
        await pres.request("cta-show", **cta)
        shown = await cat.client.wait_for("cta", where=lambda m: m["cta"] is not None)
        # the click link made on worker 2 works on worker 1 (one secret for all workers)
        async with aiohttp.ClientSession() as http:
            url = w1.base_url + shown["cta"]["click_url"]
            async with http.get(url, allow_redirects=False) as response:
                assert response.status in (302, 303), response.status
        await pres.client.wait_for("cta-clicks", where=lambda m: m["clicks"] == 1)
        # a click served by worker 2 reaches the presenter's count on worker 1
        bobs = await bob.client.wait_for("cta", where=lambda m: m["cta"] is not None)
        async with aiohttp.ClientSession() as http:
            url = w2.base_url + bobs["cta"]["click_url"]
            async with http.get(url, allow_redirects=False) as response:
                assert response.status in (302, 303), response.status
        await pres.client.wait_for("cta-clicks", where=lambda m: m["clicks"] == 2)
        # every attendee saw the same interaction in the same order (drafts are the presenter's)
        await asyncio.sleep(0.3)
        # (vote counts are coalesced per question and viewer: compared as sets below)
        seen = [_interaction(p) for p in (ann, bob, cat)]
        orders = [[x for x in o if x[0] != "question"] for o in seen]
        assert ("cta", shown["cta"]["cta_id"]) in orders[0]
        assert all(
            {x for x in o if x[0] == "question"} == {("question", q) for q in qids} for o in seen
        ), seen
        assert all(o == orders[0] for o in orders[1:]), orders
        state_w1 = await ann.request("sync-interaction")
        state_w2 = await cat.request("sync-interaction")
        votes = lambda s: {q["question_id"]: q["votes"] for q in s["qa"]["questions"]}  # noqa: E731
        assert votes(state_w1) == votes(state_w2)
        assert votes(state_w1)[qids[0]] == 1 and votes(state_w1)[qids[1]] == 1
        polls_w2 = {p["poll_id"]: p["state"] for p in state_w2["polls"]}
        assert polls_w2[poll] == "closed"
        assert state_w2["cta"]["cta_id"] == shown["cta"]["cta_id"]


async def test_redis_restarted_mid_room(
    tmp_path: Path, redis_server: RedisServer, people: list[Any]
) -> None:
    """Redis goes away: commands are refused with ``unavailable`` (nothing is lost or
    half-done), the room and its connections stay; Redis back: interaction resumes."""
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        pres = await enter(w1, people, event, "Pres", event.presenter_key)
        att = await enter(w2, people, event, "Att")
        for p in (pres, att):
            await p.request("sync-interaction")
        await att.request("chat-send", text="before")
        await pres.client.wait_for("chat-message", where=lambda m: m["message"]["text"] == "before")
        redis_server.stop()
        await refused("unavailable", pres.request("chat-send", text="during"))
        await refused("unavailable", pres.request("set-mode", mode="discussion"))
        redis_server.start()
        for _ in range(100):  # the workers reconnect by themselves
            try:
                await pres.request("chat-send", text="after")
                break
            except Exception:
                await asyncio.sleep(0.1)
        got = await att.client.wait_for(
            "chat-message", where=lambda m: m["message"]["text"] == "after"
        )
        assert got["message"]["text"] == "after"
        await att.request("chat-send", text="reply")
        await pres.client.wait_for("chat-message", where=lambda m: m["message"]["text"] == "reply")
        await pres.request("set-mode", mode="discussion")
        await att.wait("room-updated", cause="mode-changed")
        texts = [m["text"] for m in (await att.request("sync-interaction"))["messages"]]
        assert texts == ["before", "after", "reply"]


async def test_a_single_use_code_holds_across_workers(
    tmp_path: Path, redis_server: RedisServer, people: list[Any]
) -> None:
    """A code in use on worker 2 is refused on worker 1 (refuse policy), or worker 1 takes
    it over and the holder on worker 2 is told ``taken-over`` (takeover policy); cancelling
    the event on one worker ends it for attendees on the other."""
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event, code, _ticket = await paid_code(w1, SecondDevice.REFUSE)
        await asyncio.sleep(3.2)  # a fresh Redis: the seat books settle first
        first = await enter(w2, people, event, "Grace", code, client_id="laptop")
        assert first.joined["role"] == "attendee"
        await refused("ticket-in-use", enter(w1, people, event, "Grace", code, client_id="phone"))
        event2, code2, _ = await paid_code(w1, SecondDevice.TAKEOVER)
        laptop = await enter(w2, people, event2, "Ada", code2, client_id="laptop")
        phone = await enter(w1, people, event2, "Ada", code2, client_id="phone")
        bye = await laptop.wait("bye")
        assert bye["reason"] == "taken-over"
        assert phone.joined["type"] == "joined"
        # the organiser cancels the event on worker 2: the attendee on worker 1 is told
        await w2.server.app[TICKET_DESK].cancel_event(event2)
        cancelled = await phone.wait("bye")
        assert cancelled["reason"] == "cancelled"


async def test_a_join_token_holds_one_device_and_the_places_across_workers(
    tmp_path: Path, redis_server: RedisServer, people: list[Any]
) -> None:
    """A join token in use on worker 2 is refused on worker 1 (refuse policy); the event's
    places are counted over both workers."""
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        owner = await organiser(w1)
        site = await backend(w1, owner)
        event = await w1.store.create_event("Members", None, owner_id=owner)
        await w1.store.run(
            lambda core: records.put_access(
                core.connection,
                EventAccess(event.event_id, second_device=SecondDevice.REFUSE, capacity=2),
            )
        )
        await asyncio.sleep(3.2)  # a fresh Redis: the seat books settle first
        token = site.sign(event, name="Ann")
        first = await enter(w2, people, event, "x", None, join_token=token, client_id="laptop")
        assert first.joined["role"] == "attendee"
        await refused(
            "ticket-in-use",
            enter(w1, people, event, "x", None, join_token=token, client_id="phone"),
        )
        await enter(w1, people, event, "x", None, join_token=site.sign(event, name="Bob"))
        # two places, both taken: one on each worker
        await refused("room-full", enter(w2, people, event, "x", None, join_token=site.sign(event)))
        await first.request("leave")
        await enter(w2, people, event, "x", None, join_token=site.sign(event, name="Cy"))


async def test_the_stage_reaches_both_workers(
    tmp_path: Path, redis_server: RedisServer, people: list[Any]
) -> None:
    """Content on stage (docs/protocol.md, "Stage") over two workers: commands made on one are
    replayed on the other, and a late joiner there gets the same stage."""
    async with two_workers(tmp_path / "data", redis_server) as (w1, w2):
        event = await w1.create_event()
        pres = await enter(w1, people, event, "Pres", event.presenter_key)
        ann = await enter(w2, people, event, "Ann")
        await pres.request("stage-layout", layout="whiteboard")
        await ann.client.wait_for("stage", where=lambda m: m["layout"] == "whiteboard")
        await pres.request(
            "whiteboard-stroke", stroke_id="w1", page=0, points=[[0.1, 0.1], [0.2, 0.2]]
        )
        await pres.request(
            "whiteboard-stroke", stroke_id="w1", page=0, points=[[0.3, 0.3]], done=True
        )
        await ann.client.wait_for("whiteboard-stroke", where=lambda m: m["stroke"]["done"])
        await pres.request("whiteboard-grant", participant_id=ann.pid, granted=True)
        await ann.client.wait_for("stage", where=lambda m: ann.pid in m["whiteboard"]["granted"])
        await ann.request(
            "whiteboard-stroke", stroke_id="w2", page=0, points=[[0.5, 0.5]], done=True
        )
        await pres.client.wait_for(
            "whiteboard-stroke", where=lambda m: m["stroke"]["by"] == ann.pid
        )
        await pres.request("video-share", url="https://youtu.be/dQw4w9WgXcQ")
        await pres.request("video-control", action="play", position=5.0)
        await ann.client.wait_for(
            "stage", where=lambda m: m["video"] is not None and m["video"]["playing"]
        )
        late = await enter(w2, people, event, "Late")
        stage = (await late.request("sync-interaction"))["stage"]
        assert stage["layout"] == "video" and stage["video"]["position"] == 5.0
        strokes = {s["stroke_id"]: s["points"] for s in stage["whiteboard"]["strokes"]}
        assert strokes == {"w1": [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]], "w2": [[0.5, 0.5]]}
        mine = (await pres.request("sync-interaction"))["stage"]
        assert mine["whiteboard"] == stage["whiteboard"] and mine["video"] == stage["video"]
