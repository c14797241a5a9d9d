"""One webinar over three nodes, as real processes on this machine (tests/cluster/nodes.py):
node A (127.0.0.11) holds the stage, node B (127.0.0.12, two workers) and node C (127.0.0.13)
have attendees; real Redis and real PostgreSQL are shared by all three.

- media: the presenter on A reaches subscribers on both workers of B and on C, ≥ 99 % of the
  packets a subscriber on A gets, through exactly one pipe per stream and node (B's second
  worker takes its copy from B's first, not from A);
- placement: a host joining at B is moved to A (the stage); C, full, moves newcomers on;
- interaction: chat, Q&A, a poll, a call-to-action, mode changes, a single-use code and
  end-for-all behave across nodes as on one;
- a node killed: its subscribers come back through another node within 60 s, with their
  resume tokens, and receive the stage again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests import media_support
from tests.cluster import nodes as cluster
from tests.cluster.nodes import Node, join_anywhere, metrics, total
from tests.media_support import assert_delivered_like_reference, publish_camera_and_mic, until
from tests.protocol.test_shared_ticketing import paid_code_in
from tests.protocol_fixtures import MatchingPerson, refused
from tests.redis_server import RedisServer
from webinar.client.media import ClipTrack, make_vp8_clip
from webinar.client.peer import ClientError, WebinarClient
from webinar.cluster.pipes import CLAIM_PREFIX
from webinar.storage.store import Store
from webinar.ticketing import SecondDevice

pytestmark = pytest.mark.media
clients = media_support.clients
client = media_support.client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        yield s


@pytest.fixture
def three_nodes(
    tmp_path: Path,
    redis_server: RedisServer,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[list[Node]]:
    """A (one worker), B (two workers), C (one worker, room for 3 attendees)."""
    url = postgres_url
    monkeypatch.setenv("WEBINAR_SECRETS_KEY", cluster.SECRETS_KEY)  # the test's own store
    started: list[Node] = []
    try:
        for index, workers, env in (
            (0, 1, {}),
            (1, 2, {}),
            (2, 1, {"WEBINAR_CLUSTER_NODE_CAPACITY": "3"}),
        ):
            started.append(
                cluster.start_node(
                    tmp_path,
                    index,
                    redis_url=redis_server.url,
                    database_url=url,
                    workers=workers,
                    extra_env=env,
                )
            )
        yield started
    finally:
        for node in started:
            node.stop()


def keys(event: dict[str, str]) -> tuple[str, str]:
    host = parse_qs(urlparse(event["host_url"]).query)["key"][0]
    pres = parse_qs(urlparse(event["presenter_url"]).query)["key"][0]
    return host, pres


def socket_of(node: Node) -> str:
    return f"ws://{node.address}:{node.port}/ws"


async def test_a_webinar_over_three_nodes(
    three_nodes: list[Node],
    http: aiohttp.ClientSession,
    clients: list[WebinarClient],
    postgres_url: str,
    tmp_path: Path,
) -> None:
    a, b, c = three_nodes
    await cluster.wait_ready(http, three_nodes)
    event = a.create_event("Across nodes")
    event_id = event["event_id"]
    host_key, pres_key = keys(event)
    people: list[Any] = []
    try:
        # -- the stage is where the floor connects: the presenter on A, then the host,
        # arriving at B, is moved to A
        pres = client(clients, a.base_url)
        await pres.join(event_id, "Pres", pres_key)
        assert not pres.moved
        host = await join_anywhere(b.base_url, people, MatchingPerson, event_id, "Host", host_key)
        assert host.moved_to == socket_of(a), host.moved_to  # type: ignore[attr-defined]
        assert host.joined["type"] == "joined" and host.joined["role"] == "host"

        # -- media: one subscriber on A (the reference), three on each of B's workers, three
        # on C (its capacity: nobody is moved yet)
        local = client(clients, a.base_url)
        await local.join(event_id, "Local")
        edge = [client(clients, b.worker_url(1)) for _ in range(3)]
        edge += [client(clients, b.worker_url(2)) for _ in range(3)]
        edge += [client(clients, c.base_url) for _ in range(3)]
        for i, sub in enumerate(edge):
            await sub.join(event_id, f"Edge {i}")
        assert [sub.socket_url for sub in edge if sub.moved] == []
        await publish_camera_and_mic(pres)
        await assert_delivered_like_reference([local, *edge], 5.0, min_video=100)
        # exactly one pipe per (stream, node): A sends each of the 2 streams to B and to C
        # (4 out across nodes), B's first worker feeds its second on the node
        seen = {n.name: await metrics(http, n.base_url) for n in three_nodes}
        pipes = {n: {k: v for k, v in m.items() if "pipe" in k} for n, m in seen.items()}
        assert total(seen["A"], "webinar_pipe_open", direction="out", scope="node") == 4, pipes
        assert total(seen["B"], "webinar_pipe_open", direction="in", scope="node") == 2
        assert total(seen["B"], "webinar_pipe_open", direction="in", scope="worker") == 2
        assert total(seen["C"], "webinar_pipe_open", direction="in", scope="node") == 2

        # -- placement: C is full (3 attendees): a newcomer there is moved to A or B
        late = await join_anywhere(c.base_url, people, MatchingPerson, event_id, "Late")
        assert late.moved_to in (socket_of(a), socket_of(b)), late.moved_to  # type: ignore[attr-defined]

        # -- interaction across nodes
        on_b = await join_anywhere(b.base_url, people, MatchingPerson, event_id, "Bea")
        on_c = await join_anywhere(c.base_url, people, MatchingPerson, event_id, "Cid", placed=True)
        for p in (host, on_b, on_c):
            await p.request("sync-interaction")
        await on_c.request("chat-send", text="hello from C")
        for p in (host, on_b):
            await p.client.wait_for(
                "chat-message", where=lambda m: m["message"]["text"] == "hello from C"
            )
        asked = await on_b.request("question-ask", text="From B?")
        qid = asked["question"]["question_id"]
        await on_c.request("question-vote", question_id=qid, up=True)
        for _ in range(50):  # the vote, cast on C, counted where the host is (A)
            state = await host.request("sync-interaction")
            votes = {q["question_id"]: q["votes"] for q in state["qa"]["questions"]}
            if votes.get(qid) == 1:
                break
            await asyncio.sleep(0.1)
        assert votes.get(qid) == 1, votes
        poll = {
            "title": "Where?",
            "kind": "poll",
            "questions": [
                {"text": "Node?", "kind": "single", "options": [{"text": "B"}, {"text": "C"}]}
            ],
        }
        poll_id = (await host.request("poll-create", **poll))["poll"]["poll_id"]
        await host.request("poll-launch", poll_id=poll_id)
        for p in (on_b, on_c):
            await p.wait("poll", cause="launched")
        await on_b.request(
            "poll-answer", poll_id=poll_id, answers=[{"question_id": "q1", "option_ids": ["q1o1"]}]
        )
        await on_c.request(
            "poll-answer", poll_id=poll_id, answers=[{"question_id": "q1", "option_ids": ["q1o2"]}]
        )
        await host.client.wait_for(
            "poll-results",
            where=lambda m: m["questions"][0]["counts"] == {"q1o1": 1, "q1o2": 1},
        )
        await host.request("cta-show", message="Slides", button="Get", url="https://example.com/s")
        shown = await on_c.client.wait_for("cta", where=lambda m: m["cta"] is not None)
        async with http.get(
            b.base_url + shown["cta"]["click_url"], allow_redirects=False
        ) as response:
            assert response.status in (302, 303)
        await host.client.wait_for("cta-clicks", where=lambda m: m["clicks"] == 1)
        await host.request("set-mode", mode="discussion")
        for p in (on_b, on_c):
            update = await p.wait("room-updated", cause="mode-changed")
            assert update["room"]["mode"] == "discussion"

        # -- a single-use code in use on B is refused on C
        paid, code = await paid_code(tmp_path, postgres_url)
        first = await join_anywhere(b.base_url, people, MatchingPerson, paid, "Grace", code)
        assert first.joined["type"] == "joined", first.joined
        await refused(
            "ticket-in-use",
            join_anywhere(
                c.base_url, people, MatchingPerson, paid, "Grace", code, client_id="phone"
            ),
        )

        # -- end for all, from A: everyone on B and C is told
        await host.request("end-for-all")
        for p in (on_b, on_c):
            await p.wait("room-ended")
    finally:
        await asyncio.gather(*(p.close() for p in people), return_exceptions=True)


def b_node(body: dict[str, Any], node: Node) -> int:
    """Node ``node``'s number, from the workers /healthz lists."""
    return int(next(w["id"] for w in body["workers"] if w["node_url"] == node.base_url) // 1000)


async def paid_code(tmp_path: Path, database_url: str) -> tuple[str, str]:
    """A paid event and a confirmed single-use code, written straight to the shared store."""
    store = Store(tmp_path / "test-store", database_url=database_url)
    await store.open()
    try:
        event, code, _ticket = await paid_code_in(store, SecondDevice.REFUSE)
        return event.event_id, code
    finally:
        await store.close()


async def test_a_node_dies_and_its_people_come_back_through_another(
    three_nodes: list[Node],
    http: aiohttp.ClientSession,
    clients: list[WebinarClient],
    postgres_url: str,
    tmp_path: Path,
) -> None:
    """B is killed (the machine dies: supervisor and workers at once). Its subscribers and
    attendees reconnect at C with their resume tokens, within 60 s: same participant, same
    role, the grant kept, the reservation-code seat theirs; media flows to them again."""
    a, b, c = three_nodes
    await cluster.wait_ready(http, three_nodes)
    event = a.create_event("Failover across nodes")
    event_id = event["event_id"]
    host_key, pres_key = keys(event)
    paid, code = await paid_code(tmp_path, postgres_url)
    await asyncio.sleep(3.2)  # a fresh Redis: the seat books settle first
    people: list[Any] = []
    try:
        pres = client(clients, a.base_url)
        await pres.join(event_id, "Pres", pres_key)
        host = await join_anywhere(a.base_url, people, MatchingPerson, event_id, "Host", host_key)
        viewer = client(clients, b.worker_url(1))
        await viewer.join(event_id, "Viewer", client_id="viewer")
        ann = await join_anywhere(
            b.worker_url(2), people, MatchingPerson, event_id, "Ann", client_id="ann"
        )
        grace = await join_anywhere(
            b.worker_url(1), people, MatchingPerson, paid, "Grace", code, client_id="grace"
        )
        await publish_camera_and_mic(pres)
        await until(lambda: viewer.stats.packets["video"] > 0, what="media reaches B")
        await host.request("set-mode", mode="discussion")
        await host.request("grant", participant_id=ann.pid, audio=True, video=False)
        await asyncio.sleep(0.5)  # the grant reached every copy of the room

        b.kill()
        killed = time.monotonic()
        # every one of them comes back at C (the address they first used is gone)
        again = client(clients, c.base_url)
        deadline = killed + 60
        while True:
            try:
                joined = await again.join(
                    event_id,
                    "Viewer",
                    resume_token=viewer.joined["resume_token"],
                    client_id="viewer",
                )
                break
            except Exception:
                assert time.monotonic() < deadline
                await again.close()
                again = client(clients, c.base_url)
                await asyncio.sleep(1.0)
        assert (
            joined["resumed"] is True
            and joined["participant_id"] == viewer.joined["participant_id"]
        )
        ann_back = await join_anywhere(
            c.base_url,
            people,
            MatchingPerson,
            event_id,
            "Ann",
            resume_token=ann.joined["resume_token"],
            client_id="ann",
        )
        assert ann_back.joined["resumed"] is True and ann_back.pid == ann.pid
        me = {p["participant_id"]: p for p in ann_back.joined["participants"]}[ann.pid]
        assert me["grant_audio"] is True and me["connected"] is True
        # Her code's seat was held on B: "in use" until B's registry entry expires (3 s),
        # which the browser retries through (protocol.js OWN_PLACE_MS), as here
        while True:
            try:
                grace_back = await join_anywhere(
                    c.base_url,
                    people,
                    MatchingPerson,
                    paid,
                    "Grace",
                    code,
                    resume_token=grace.joined["resume_token"],
                    client_id="grace",
                )
                break
            except ClientError as exc:
                assert exc.code == "ticket-in-use" and time.monotonic() < killed + 10, exc
                await asyncio.sleep(0.5)
        assert grace_back.joined["type"] == "joined" and grace_back.joined["resumed"] is True
        await until(lambda: again.stats.packets["video"] > 50, within=30, what="media again")
        assert time.monotonic() - killed < 60

        # -- now the stage's node dies: the attendees see the presenter reconnecting; the
        # presenter comes back through C, which becomes the stage, and the stage is seen again
        pres_pid = pres.joined["participant_id"]
        a.kill()
        stage_lost = time.monotonic()
        await ann_back.client.wait_for(
            "participant-updated",
            within=20,
            where=lambda m: (
                m["participant"]["participant_id"] == pres_pid
                and m["participant"]["connected"] is False
            ),
        )
        back_on_stage = client(clients, c.base_url)
        rejoined = await back_on_stage.join(
            event_id, "Pres", pres_key, resume_token=pres.joined["resume_token"]
        )
        assert rejoined["resumed"] is True and not back_on_stage.moved
        video2 = ClipTrack(make_vp8_clip(width=320, height=240, seconds=1, keyframe_interval=15))
        await back_on_stage.publish([(video2, "camera")])  # type: ignore[list-item]
        before = again.stats.packets["video"]
        await until(
            lambda: again.stats.packets["video"] > before + 50, within=30, what="the new stage"
        )
        assert time.monotonic() - stage_lost < 60
    finally:
        await asyncio.gather(*(p.close() for p in people), return_exceptions=True)


async def test_a_nodes_gateway_worker_dies_and_its_node_gets_the_stage_again(
    three_nodes: list[Node],
    http: aiohttp.ClientSession,
    clients: list[WebinarClient],
    redis_server: RedisServer,
) -> None:
    """Node B's copy of a stream comes to one of its workers (the gateway, claimed in Redis)
    and goes on to the other over a local pipe. The gateway worker is killed: the other
    worker's subscriber gets the stream again (it takes the claim over and pipes from A)."""
    a, b, _c = three_nodes
    await cluster.wait_ready(http, three_nodes)
    event = a.create_event("Gateway lost")
    event_id = event["event_id"]
    _host_key, pres_key = keys(event)
    pres = client(clients, a.base_url)
    await pres.join(event_id, "Pres", pres_key)
    on_b = {k: client(clients, b.worker_url(k)) for k in (1, 2)}
    for k, sub in on_b.items():
        await sub.join(event_id, f"B{k}")
    await publish_camera_and_mic(pres)
    await until(
        lambda: all(s.stats.packets["video"] and s.stats.packets["audio"] for s in on_b.values()),
        what="both of B's workers receive",
    )
    redis = aioredis.Redis.from_url(redis_server.url)
    try:
        claims = [
            int((await redis.get(k)).split(b":")[0])
            async for k in redis.scan_iter(CLAIM_PREFIX + "*")
        ]
    finally:
        await redis.aclose()
    body = await cluster.healthz(http, b.base_url)
    pid_of = {w["id"]: w["pid"] for w in body["workers"]}
    gateway = claims[0]
    assert gateway in pid_of and gateway // 1000 == b_node(body, b), (claims, pid_of)
    survivor = on_b[2] if gateway % 1000 == 1 else on_b[1]
    os.kill(pid_of[gateway], signal.SIGKILL)
    killed = time.monotonic()
    before = dict(survivor.stats.packets)
    await until(
        lambda: (
            survivor.stats.packets["video"] > before["video"] + 100
            and survivor.stats.packets["audio"] > before["audio"] + 100
        ),
        within=40,
        what="the stream again on the surviving worker",
    )
    assert time.monotonic() - killed < 40
