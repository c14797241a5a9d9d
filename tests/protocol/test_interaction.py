"""Chat, Q&A, polls and tests, call-to-action over real WebSockets with several clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import aiohttp

from tests import helpers, protocol_fixtures
from tests.helpers import RunningServer
from tests.protocol_fixtures import refused
from webinar.client.peer import ClientError, SignallingClient
from webinar.rooms.chat import CHAT_BURST


class Person(helpers.Person):
    def chat_texts(self) -> list[str]:
        return [m["message"]["text"] for m in self.seen if m["type"] == "chat-message"]


server = protocol_fixtures.server
people = protocol_fixtures.people
enter = protocol_fixtures.Entrance(Person)


async def eventually(check: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


POLL = {
    "title": "Which day?",
    "kind": "poll",
    "questions": [
        {
            "text": "Pick a day",
            "kind": "single",
            "options": [{"text": "Monday"}, {"text": "Friday"}],
        },
        {"text": "Why?", "kind": "text"},
    ],
}


def answer(
    person: Person, poll_id: str, *options: str, text: str | None = None
) -> Awaitable[dict[str, Any]]:
    """``person`` answers question q1 with ``options`` (and q2 with ``text``)."""
    answers: list[dict[str, Any]] = [{"question_id": "q1", "option_ids": list(options)}]
    if text is not None:
        answers.append({"question_id": "q2", "text": text})
    return person.request("poll-answer", poll_id=poll_id, answers=answers)


# ----------------------------------------------------------------------------- chat


async def test_chat_reaches_everyone_in_order(server: RunningServer, people: list[Person]) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann")
    bob = await enter(server, people, event, "Bob")
    sent = []
    for i in range(3):
        for who in (ann, bob, pres):
            reply = await who.request("chat-send", text=f"{who.joined['role']} {i}")
            sent.append(reply["seq"])
    assert sent == list(range(1, 10))
    for person in (pres, ann, bob):
        await eventually(lambda p=person: len(p.chat_texts()) == 9)
        seqs = [m["message"]["seq"] for m in person.seen if m["type"] == "chat-message"]
        assert seqs == list(range(1, 10))
    first = next(m for m in bob.seen if m["type"] == "chat-message")["message"]
    assert first["name"] == "Ann" and first["participant_id"] == ann.pid
    assert first["role"] == "attendee"
    await refused("bad-message", ann.request("chat-send", text="x" * 2001))
    await refused("empty", ann.request("chat-send", text="   "))
    await refused("not-joined", _unjoined_chat(server, people))


async def _unjoined_chat(server: RunningServer, people: list[Person]) -> Any:
    http = aiohttp.ClientSession()
    client = SignallingClient(http, server.base_url.replace("http", "ws") + "/ws")
    await client.connect()
    people.append(Person(http, client))
    await client.request("hello", protocol=1)
    return await client.request("chat-send", text="hello?")


async def test_chat_flood_is_limited_without_delaying_others(
    server: RunningServer, people: list[Person]
) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    flooder = await enter(server, people, event, "Flood")
    calm = await enter(server, people, event, "Calm")

    async def one(i: int) -> str:
        try:
            await flooder.request("chat-send", text=f"spam {i}")
            return "ok"
        except ClientError as exc:
            return exc.code

    flood = asyncio.gather(*(one(i) for i in range(30)))
    await asyncio.sleep(0)
    started = time.monotonic()
    await calm.request("chat-send", text="a calm question")
    await eventually(lambda: "a calm question" in pres.chat_texts(), within=2.0)
    delay = time.monotonic() - started
    outcomes = await flood
    assert outcomes.count("ok") <= CHAT_BURST + 1
    assert "rate-limited" in outcomes
    assert delay < 1.0
    # the refused ones were not delivered
    await asyncio.sleep(0.2)
    assert sum(t.startswith("spam") for t in pres.chat_texts()) == outcomes.count("ok")


async def test_chat_moderation(server: RunningServer, people: list[Person]) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann")
    bob = await enter(server, people, event, "Bob")
    await refused("forbidden", ann.request("chat-settings", enabled=False))
    await pres.request("chat-settings", enabled=False)
    state = await ann.wait("chat-state")
    assert state["enabled"] is False and state["by"] == pres.pid
    await refused("chat-off", ann.request("chat-send", text="hello"))
    await pres.request("chat-send", text="presenters may still write")
    await pres.request("chat-settings", enabled=True, slow_mode_seconds=30)
    await ann.request("chat-send", text="one")
    err = await refused("slow-mode", ann.request("chat-send", text="two"))
    assert "30" in err.message
    await pres.request("chat-settings", slow_mode_seconds=0)
    await refused("bad-message", pres.request("chat-settings", slow_mode_seconds=99999))
    # mute one attendee
    await refused("forbidden", bob.request("chat-mute", participant_id=ann.pid))
    await pres.request("chat-mute", participant_id=ann.pid, muted=True)
    muted = await ann.wait("chat-state", where=lambda m: m["muted"])
    assert muted["muted"] is True
    await refused("chat-muted", ann.request("chat-send", text="let me"))
    assert (await pres.request("sync-interaction"))["chat"]["muted_participants"] == [ann.pid]
    assert (await bob.request("sync-interaction"))["chat"]["muted_participants"] is None
    bob_msg = await bob.request("chat-send", text="I can still talk")
    # delete
    await refused("forbidden", ann.request("chat-delete", message_id=bob_msg["message_id"]))
    await pres.request("chat-delete", message_id=bob_msg["message_id"])
    gone = await ann.wait("chat-deleted")
    assert gone["message_id"] == bob_msg["message_id"]
    late = await enter(server, people, event, "Late")
    state = await late.request("sync-interaction")
    texts = [m["text"] for m in state["messages"]]
    assert "I can still talk" not in texts and "one" in texts
    await pres.request("chat-mute", participant_id=ann.pid, muted=False)
    await ann.request("chat-send", text="thanks")


# ----------------------------------------------------------------------------- polls


async def test_poll_answers_results_and_test_scores(
    server: RunningServer, people: list[Person]
) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann")
    bob = await enter(server, people, event, "Bob")
    await refused("forbidden", ann.request("poll-create", **POLL))
    created = (await pres.request("poll-create", **POLL))["poll"]
    assert created["state"] == "draft"
    pid = created["poll_id"]
    assert not [m for m in ann.seen if m["type"] == "poll"]  # drafts are the presenters'
    await refused("bad-message", ann.request("poll-answer", poll_id=pid, answers=[]))
    await refused("poll-closed", answer(ann, pid, "q1o1"))
    await refused("forbidden", ann.request("poll-launch", poll_id=pid))
    await pres.request("poll-launch", poll_id=pid)
    launched = await ann.wait("poll", where=lambda m: m["cause"] == "launched")
    assert [o["text"] for o in launched["poll"]["questions"][0]["options"]] == ["Monday", "Friday"]
    await answer(ann, pid, "q1o1")
    # re-answer replaces
    await answer(ann, pid, "q1o2", text="fun")
    await answer(bob, pid, "q1o2")
    await refused("bad-answer", answer(bob, pid, "q1o1", "q1o2"))

    def final(m: dict[str, Any]) -> bool:
        return m["questions"][0]["counts"] == {"q1o1": 0, "q1o2": 2}

    results = await pres.wait("poll-results", where=final)
    assert results["respondents"] == 2 and results["questions"][1]["texts"] == ["fun"]
    assert not [m for m in ann.seen if m["type"] == "poll-results"]  # not shown yet
    await pres.request("poll-show-results", poll_id=pid, shown=True)
    shown = await ann.wait("poll-results")
    assert shown["questions"][0]["counts"]["q1o2"] == 2 and shown["questions"][1]["texts"] is None
    # one poll at a time
    other = (await pres.request("poll-create", **POLL))["poll"]["poll_id"]
    await refused("poll-open", pres.request("poll-launch", poll_id=other))
    await pres.request("poll-close", poll_id=pid)
    await ann.wait("poll", where=lambda m: m["cause"] == "closed")
    await refused("poll-closed", answer(ann, pid, "q1o1"))
    await pres.request("poll-delete", poll_id=other)

    test = {
        "title": "Quiz",
        "kind": "test",
        "questions": [
            {
                "text": "2+2?",
                "kind": "single",
                "options": [{"text": "3"}, {"text": "4", "correct": True}],
            },
            {"text": "Capital of France?", "kind": "text", "accepted": ["Paris"]},
        ],
    }
    tid = (await pres.request("poll-create", **test))["poll"]["poll_id"]
    await pres.request("poll-launch", poll_id=tid)
    quiz = await ann.wait("poll", where=lambda m: m["poll"]["poll_id"] == tid)
    assert all(o["correct"] is None for o in quiz["poll"]["questions"][0]["options"])
    await answer(ann, tid, "q1o2", text="paris")
    await answer(bob, tid, "q1o1")
    await pres.request("poll-close", poll_id=tid)
    ann_score = await ann.wait("poll-score")
    bob_score = await bob.wait("poll-score")
    assert (ann_score["correct"], ann_score["total"]) == (2, 2)
    assert (bob_score["correct"], bob_score["total"]) == (0, 2)
    assert not [m for m in pres.seen if m["type"] == "poll-score"]


# ----------------------------------------------------------------------------- Q&A


async def test_questions_votes_anonymity_publish(
    server: RunningServer, people: list[Person]
) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann")
    bob = await enter(server, people, event, "Bob")
    msg = await ann.request("chat-send", text="Is there a recording?")
    marked = (await ann.request("question-mark", message_id=msg["message_id"]))["question"]
    assert marked["mine"] and marked["name"] == "Ann"
    await refused("invalid-request", ann.request("question-mark", message_id=msg["message_id"]))
    bob_msg = await bob.request("chat-send", text="Slides?")
    await refused("forbidden", ann.request("question-mark", message_id=bob_msg["message_id"]))
    by_pres = (await pres.request("question-mark", message_id=bob_msg["message_id"]))["question"]
    assert by_pres["name"] == "Bob"
    anon = (await ann.request("question-ask", text="A shy question", anonymous=True))["question"]
    seen_by_bob = await bob.wait(
        "question", where=lambda m: m["question"]["question_id"] == anon["question_id"]
    )
    assert seen_by_bob["question"]["name"] is None
    assert seen_by_bob["question"]["participant_id"] is None
    seen_by_pres = await pres.wait(
        "question", where=lambda m: m["question"]["question_id"] == anon["question_id"]
    )
    assert seen_by_pres["question"]["name"] == "Ann"
    # votes: one per attendee
    qid = marked["question_id"]
    await bob.request("question-vote", question_id=qid)
    await bob.request("question-vote", question_id=qid)
    await ann.request("question-vote", question_id=qid)
    voted = await pres.wait("question", where=lambda m: m["question"]["votes"] == 2)
    assert voted["cause"] == "vote"
    await asyncio.sleep(0.1)
    counts = [m["question"]["votes"] for m in pres.seen if m["type"] == "question"]
    assert max(counts) == 2
    await refused("forbidden", pres.request("question-vote", question_id=qid))
    # publish
    await refused("forbidden", ann.request("question-publish", question_id=qid))
    await pres.request("question-publish", question_id=qid)
    for person in (ann, bob):
        shown = await person.wait("question-published")
        assert shown["question"]["text"] == "Is there a recording?"
    await pres.request("question-state", question_id=by_pres["question_id"], state="dismissed")
    hidden = await ann.wait("question-hidden")
    assert hidden["question_id"] == by_pres["question_id"]
    await pres.request("question-state", question_id=qid, state="answered")
    # closing Q&A hides the list and clears the published question
    await pres.request("qa-settings", open=False)
    cleared = await ann.wait("question-published", where=lambda m: m["question"] is None)
    assert cleared["question"] is None
    closed = await ann.wait("qa-state")
    assert closed["open"] is False and closed["questions"] == []
    await refused("qa-closed", bob.request("question-ask", text="more?"))
    await pres.request("qa-settings", open=True)
    reopened = await bob.wait("qa-state", where=lambda m: m["open"])
    ids = {q["question_id"] for q in reopened["questions"]}
    assert ids == {qid, anon["question_id"], by_pres["question_id"]}  # his own dismissed one
    state = await ann.request("sync-interaction")
    assert {q["question_id"] for q in state["qa"]["questions"]} == {qid, anon["question_id"]}


# ----------------------------------------------------------------------------- CTA and late joiners


async def test_cta_shown_and_closed(server: RunningServer, people: list[Person]) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann")
    cta = {"message": "Get the slides", "button": "Download", "url": "https://example.com/s"}
    await refused("forbidden", ann.request("cta-show", **cta))
    await refused("bad-url", pres.request("cta-show", **{**cta, "url": "javascript:alert(1)"}))
    await refused("bad-message", pres.request("cta-show", **{**cta, "message": "x" * 55}))
    await pres.request("cta-show", **{**cta, "message": "y" * 54})
    shown = await ann.wait("cta", where=lambda m: m["cta"] is not None)
    assert shown["cta"]["message"] == "y" * 54
    assert shown["cta"]["click_url"].startswith(f"/cta/{shown['cta']['cta_id']}?t=")
    await pres.request("cta-close")
    closed = await ann.wait("cta", where=lambda m: m["cta"] is None)
    assert closed["reason"] == "closed"
    await pres.request("cta-show", **cta, duration_seconds=5)
    await ann.wait("cta", where=lambda m: m["cta"] is not None)
    expired = await ann.wait("cta", where=lambda m: m["cta"] is None, within=8)
    assert expired["reason"] == "expired"


async def test_late_and_reconnecting_clients_get_the_state(
    server: RunningServer, people: list[Person]
) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    ann = await enter(server, people, event, "Ann", client_id="browser-ann")
    for i in range(3):
        await ann.request("chat-send", text=f"hello {i}")
    poll_id = (await pres.request("poll-create", **POLL))["poll"]["poll_id"]
    await pres.request("poll-launch", poll_id=poll_id)
    await answer(ann, poll_id, "q1o2")
    question = (await ann.request("question-ask", text="What next?"))["question"]
    await pres.request("question-publish", question_id=question["question_id"])
    await pres.request(
        "cta-show", message="Book a demo", button="Book", url="https://example.com/demo"
    )
    token = ann.joined["resume_token"]
    await ann.client.close()  # a drop, not a leave

    late = await enter(server, people, event, "Late")
    state = await late.request("sync-interaction")
    assert [m["text"] for m in state["messages"]] == ["hello 0", "hello 1", "hello 2"]
    assert [p["poll_id"] for p in state["polls"] if p["state"] == "open"] == [poll_id]
    assert state["published"]["text"] == "What next?"
    assert state["cta"]["message"] == "Book a demo"
    assert state["my_answers"] == {}

    back = await enter(server, people, event, "Ann", resume_token=token, client_id="browser-ann")
    assert back.joined["resumed"] is True
    state = await back.request("sync-interaction")
    assert state["my_answers"][poll_id][0]["option_ids"] == ["q1o2"]
    assert state["published"]["mine"] is True
    assert state["cta"]["click_url"]


async def test_interaction_survives_the_room_closing(
    server: RunningServer, people: list[Person]
) -> None:
    event = await server.create_event()
    pres = await enter(server, people, event, "Pres", event.presenter_key)
    troll = await enter(server, people, event, "Troll", client_id="browser-troll")
    await pres.request("chat-send", text="before the break")
    poll_id = (await pres.request("poll-create", **POLL))["poll"]["poll_id"]
    await pres.request("chat-settings", slow_mode_seconds=10)
    await pres.request("chat-mute", participant_id=troll.pid)
    await troll.request("leave")
    await pres.request("leave")
    await eventually(lambda: server.rooms.get(event.event_id) is None)
    back = await enter(server, people, event, "Troll", client_id="browser-troll")
    assert (await back.request("sync-interaction"))["chat"]["muted"] is True
    await refused("chat-muted", back.request("chat-send", text="I am back"))
    again = await enter(server, people, event, "Pres again", event.presenter_key)
    state = await again.request("sync-interaction")
    assert [m["text"] for m in state["messages"]] == ["before the break"]
    assert [p["poll_id"] for p in state["polls"]] == [poll_id]
    assert state["chat"]["slow_mode_seconds"] == 10
    reply = await again.request("chat-send", text="after the break")
    assert reply["seq"] == 2
