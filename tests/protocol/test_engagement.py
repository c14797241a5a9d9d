"""The engagement export over real WebSockets and HTTP: a scripted event with chat, a
question with votes, poll and test answers and CTA clicks, people reloading their page
on the way; then the per-attendee export (CSV with and without BOM, JSON), the detail
files, the statistics page and API, and deleting the event's personal data."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import RunningServer, running_server
from tests.metrics_support import value
from tests.protocol.test_dashboard import add_user, csrf_of, sign_in
from tests.protocol.test_interaction import POLL, Person, enter
from webinar.app import ATTENDANCE
from webinar.interaction import store as ist
from webinar.storage.store import Event
from webinar.ticketing import records
from webinar.webhooks import records as webhooks

TEST = {
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
CTA = {"message": "Get the slides", "button": "Download", "url": "https://example.com/s"}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
async def people(server: RunningServer) -> AsyncIterator[list[Person]]:
    made: list[Person] = []
    yield made
    for person in made:
        await person.close()


@pytest.fixture
async def owned(server: RunningServer) -> AsyncIterator[tuple[Event, aiohttp.ClientSession]]:
    add_user(server, "olga")
    with server.store.connect_sync() as sync:
        owner = sync.get_user_by_name("olga")
        assert owner is not None
        event = sync.create_event("Launch", None, owner_id=owner.user_id)
    http = await sign_in(server, "olga")
    yield event, http
    await http.close()


async def reload(
    server: RunningServer,
    people: list[Person],
    event: Event,
    person: Person,
    name: str,
    client_id: str,
    credential: str | None = None,
) -> Person:
    """Leave and join again from the same browser: a new participant, the same person."""
    await person.request("leave")
    await person.close()
    people.remove(person)
    again = await enter(server, people, event, name, credential, client_id=client_id)
    assert again.pid != person.pid
    return again


async def click(server: RunningServer, person: Person) -> None:
    cta = (await person.request("sync-interaction"))["cta"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.base_url + cta["click_url"], allow_redirects=False) as resp,
    ):
        assert resp.status == 302 and resp.headers["Location"] == CTA["url"]


async def scripted_event(server: RunningServer, people: list[Person], event: Event) -> None:
    async def join(name: str, credential: str | None = None, **extra: Any) -> Person:
        return await enter(server, people, event, name, credential, **extra)

    pres = await join("Pres", event.presenter_key, client_id="browser-pres")
    ann = await join('Zoë, "Ann"', client_id="browser-ann")
    bob = await join("Bob", client_id="browser-bob")
    carol = await join("=Carol")  # no client id: she is her participant
    await pres.request("chat-send", text="Welcome")
    msg = await ann.request("chat-send", text="Is there a recording?")
    qid = (await ann.request("question-mark", message_id=msg["message_id"]))["question"][
        "question_id"
    ]
    await bob.request("chat-send", text="Hi")
    anon = (await bob.request("question-ask", text="Shy?", anonymous=True))["question"]
    await bob.request("question-vote", question_id=qid)
    await carol.request("question-vote", question_id=qid)
    await pres.request("question-state", question_id=qid, state="answered")
    await pres.request("question-state", question_id=anon["question_id"], state="dismissed")

    poll_id = (await pres.request("poll-create", **POLL))["poll"]["poll_id"]
    await pres.request("poll-launch", poll_id=poll_id)
    await ann.request(
        "poll-answer",
        poll_id=poll_id,
        answers=[
            {"question_id": "q1", "option_ids": ["q1o2"]},
            {"question_id": "q2", "text": "Fun"},
        ],
    )
    await bob.request(
        "poll-answer", poll_id=poll_id, answers=[{"question_id": "q1", "option_ids": ["q1o1"]}]
    )
    await pres.request("poll-close", poll_id=poll_id)
    test_id = (await pres.request("poll-create", **TEST))["poll"]["poll_id"]
    await pres.request("poll-launch", poll_id=test_id)
    await ann.request(
        "poll-answer",
        poll_id=test_id,
        answers=[
            {"question_id": "q1", "option_ids": ["q1o2"]},
            {"question_id": "q2", "text": "paris"},
        ],
    )

    await pres.request("cta-show", **CTA)
    await ann.wait("cta")
    await click(server, ann)
    await click(server, ann)
    await click(server, bob)

    # Ann reloads: a new participant, the same person; her test answer is still hers
    ann = await reload(server, people, event, ann, 'Zoë, "Ann"', "browser-ann")
    state = await ann.request("sync-interaction")
    assert state["my_answers"][test_id][0]["option_ids"] == ["q1o2"]
    await ann.request(
        "poll-answer",
        poll_id=test_id,
        answers=[
            {"question_id": "q1", "option_ids": ["q1o2"]},
            {"question_id": "q2", "text": "Paris"},
        ],
    )  # re-answer replaces, it does not add a second answer
    await pres.request("poll-close", poll_id=test_id)
    await ann.request("chat-send", text="Back again")
    await click(server, ann)
    # Bob reloads and votes again: still one vote of his
    bob = await reload(server, people, event, bob, "Bob", "browser-bob")
    await bob.request("question-vote", question_id=qid)
    # the presenter reloads too (a credential and a client id): one person as well
    pres = await reload(server, people, event, pres, "Pres", "browser-pres", event.presenter_key)
    room = server.rooms.get(event.event_id)
    assert room is not None
    assert room.state.person_key(pres.pid) == "client:browser-pres"
    questions = await server.store.run(
        lambda core: ist.export_rows(core, event.event_id, "questions")[1]
    )
    assert {r[0]: r[7] for r in questions}[qid] == 2


def table(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_export_joins_everything_for_the_right_attendee(
    server: RunningServer,
    people: list[Person],
    owned: tuple[Event, aiohttp.ClientSession],
) -> None:
    event, http = owned
    await scripted_event(server, people, event)
    base, display = server.base_url, event.display_id
    sessions = await server.server.app[ATTENDANCE].sessions(event.event_id)
    assert {s.person_key for s in sessions if s.name == "Pres"} == {"client:browser-pres"}

    async with http.get(f"{base}/dashboard/events/{display}/export.csv") as resp:
        plain = await resp.read()
        assert resp.status == 200 and not plain.startswith(b"\xef\xbb\xbf")
    async with http.get(f"{base}/dashboard/events/{display}/export.csv?bom=1") as resp:
        with_bom = await resp.read()
        assert with_bom.startswith(b"\xef\xbb\xbf")
    # the same table (time in room grows while people are still in the room)
    assert [{**r, "seconds": ""} for r in table(with_bom)] == [
        {**r, "seconds": ""} for r in table(plain)
    ]
    rows = {r["name"]: r for r in table(plain)}
    assert set(rows) == {'Zoë, "Ann"', "Bob", "'=Carol", "Pres"}  # a formula is made text
    ann, bob, carol, pres = rows['Zoë, "Ann"'], rows["Bob"], rows["'=Carol"], rows["Pres"]
    assert ann["sessions"] == "2" and bob["sessions"] == "2" and pres["sessions"] == "2"
    assert (ann["chat_messages"], bob["chat_messages"], carol["chat_messages"]) == ("2", "1", "")
    assert pres["chat_messages"] == "1"
    assert (ann["questions_asked"], ann["questions_votes_received"]) == ("1", "2")
    assert (ann["questions_answered"], ann["questions_new"], ann["questions_dismissed"]) == (
        "1",
        "0",
        "0",
    )
    assert (bob["questions_asked"], bob["questions_dismissed"], bob["questions_votes_given"]) == (
        "1",
        "1",
        "1",
    )
    assert carol["questions_votes_given"] == "1" and carol["questions_asked"] == "0"
    assert ann["polls_answered"] == "2" and bob["polls_answered"] == "1"
    assert ann["polls_answers"] == (
        "Which day? › Pick a day: Friday | Which day? › Why?: Fun"
        " | Quiz › 2+2?: 4 | Quiz › Capital of France?: Paris"
    )
    assert bob["polls_answers"] == "Which day? › Pick a day: Monday"
    assert (ann["polls_test_correct"], ann["polls_test_total"]) == ("2", "2")
    assert ann["polls_test_scores"] == "Quiz: 2/2"
    assert bob["polls_test_scores"] == "" and bob["polls_test_total"] == ""
    assert (ann["cta_clicks"], bob["cta_clicks"], carol["cta_clicks"]) == ("3", "1", "")
    assert ann["cta_clicked"] == "Get the slides"

    async with http.get(f"{base}/dashboard/events/{display}/export.json") as resp:
        export = json.loads(await resp.read())
    by_name = {r["name"]: r for r in export["attendees"]}
    assert by_name['Zoë, "Ann"']["cta_clicks"] == 3
    assert by_name['Zoë, "Ann"']["questions_votes_received"] == 2
    assert len(export["details"]["chat"]) == 4 and len(export["details"]["cta"]) == 4
    assert len(export["details"]["sessions"]) == 7  # Ann, Bob and Pres came twice
    assert export["details"]["questions"][0]["votes"] == 2

    # the detail files are the interaction exports, reachable from the statistics page
    async with http.get(f"{base}/dashboard/events/{display}/stats") as resp:
        html = await resp.text()
    for kind in ("chat", "questions", "polls", "scores", "cta"):
        assert f'data-testid="export-detail-{kind}"' in html
        async with http.get(f"{base}/dashboard/events/{display}/export/{kind}.csv?bom=1") as resp:
            body = await resp.read()
            assert resp.status == 200 and body.startswith(b"\xef\xbb\xbf"), kind
    async with http.get(f"{base}/dashboard/events/{display}/export/chat.csv") as resp:
        chat = table(await resp.read())
    assert [r["text"] for r in chat if r["name"].startswith("Zoë")] == [
        "Is there a recording?",
        "Back again",
    ]
    # per attendee in the page and the API
    assert 'data-testid="attendee-clicks">3<' in html
    assert 'data-testid="attendee-score" title="Quiz: 2/2">2/2<' in html
    assert "Quiz › Capital of France?: Paris" in html
    stats = await (await http.get(f"{base}/api/events/{display}/stats")).json()
    api_ann = next(p for p in stats["people"] if p["name"] == 'Zoë, "Ann"')
    assert api_ann["questions_asked"] == 1 and api_ann["polls_test_correct"] == 2
    # and counted for Prometheus (Bob's second vote after his reload is no new vote)
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    assert value(text, "webinar_chat_messages_total") == 4
    assert value(text, "webinar_questions_total") == 2
    assert value(text, "webinar_question_votes_total") == 2
    assert value(text, "webinar_poll_answers_total") == 7  # 2 + 1 + 2, and 2 re-answered
    assert value(text, "webinar_cta_clicks_total") == 4


def seed_people(conn: sqlite3.Connection, event: Event) -> None:
    """A confirmed registration, an invitee and a webhook delivery naming a person."""
    ev = event.event_id
    reg = records.add_registration(
        conn,
        ev,
        first_name="Reg",
        last_name="Istrant",
        email="reg@example.org",
        seats=2,
        amount_minor=0,
        currency=None,
        provider=records.PaymentProvider.MANUAL,
        capacity=None,
        answers={},
    )
    records.confirm_registration(conn, reg.registration_id)
    records.add_invitee(conn, ev, "Ivy", "ivy@example.org")
    assert event.owner_id is not None
    endpoint = webhooks.sql_add_endpoint(
        conn, event.owner_id, "https://hooks.example.org/in", frozenset(), 0.0
    )
    conn.execute(
        "INSERT INTO webhook_deliveries (delivery_id, endpoint_id, event, event_id, body,"
        " status, attempts, created_at) VALUES ('whd_test', ?, 'participant.joined', ?,"
        ' \'{"data": {"name": "Reg Istrant"}}\', \'delivered\', 1, 0)',
        (endpoint.endpoint_id, ev),
    )


async def test_deleting_personal_data_removes_interaction_too(
    server: RunningServer,
    people: list[Person],
    owned: tuple[Event, aiohttp.ClientSession],
) -> None:
    event, http = owned
    await scripted_event(server, people, event)
    base, display = server.base_url, event.display_id
    async with http.get(f"{base}/dashboard/events/{display}/stats") as resp:
        token = csrf_of(await resp.text())
    url = f"{base}/dashboard/events/{display}/delete-personal-data"
    # refused while people are in the room: its memory holds chat and answers
    async with http.post(url, data={"csrf": token}, allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"].endswith("notice=room-open")
    async with http.get(base + resp.headers["Location"]) as page:
        assert "People are still in this event" in await page.text()
    ev = event.event_id
    assert await server.store.run(lambda core: len(ist.export_rows(core, ev, "chat")[1])) == 4
    for person in list(people):
        await person.request("leave")
    assert server.rooms.get(event.event_id) is None
    await server.store.run(lambda core: seed_people(core.connection, event))
    async with http.post(url, data={"csrf": token}, allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"].endswith("notice=deleted")
    # who registered or was invited is forgotten; the seats and the money stay
    (reg,) = await server.store.run(lambda core: records.list_registrations(core.connection, ev))
    assert (reg.first_name, reg.last_name, reg.email, reg.code) == ("", "", "", None)
    assert (reg.seats, reg.status) == (2, records.RegistrationStatus.CONFIRMED)
    assert await server.store.run(lambda core: records.list_invitees(core.connection, ev)) == []
    (deliveries,) = await server.store.run(
        lambda core: core.connection.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE event_id = ?", (ev,)
        ).fetchone()
    )
    assert deliveries == 0
    for kind in ist.EXPORT_KINDS:
        rows = await server.store.run(lambda core, k=kind: ist.export_rows(core, ev, k)[1])
        assert rows == [], kind
    left = await server.store.run(
        lambda core: core.connection.execute(
            "SELECT (SELECT count(*) FROM question_votes), (SELECT count(*) FROM polls"
            " WHERE event_id = ?), (SELECT count(*) FROM ctas WHERE event_id = ?)",
            (ev, ev),
        ).fetchone()
    )
    assert left == (0, 2, 1)  # the organiser's polls and CTA stay, nobody's answers
    _columns, rows = await server.server.app[ATTENDANCE].engagement(ev)
    assert rows == []
    # a new room starts clean
    again = await enter(server, people, event, "Dan")
    state = await again.request("sync-interaction")
    assert state["messages"] == [] and state["qa"]["questions"] == []
    assert [p["poll_id"] for p in state["polls"]] != []  # the prepared polls are still there
