"""Real Chromium on a cluster of three nodes (real processes, tests/cluster/nodes.py): the
presenter's page on node A, attendee pages on nodes B and C play the presenter's video and
audio, relayed node to node; a page opened on C once C is full is moved by the server to
another node and plays there too (the client follows ``move``; the page's
Content-Security-Policy lets it reach the other nodes)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import parse_qs, urlparse

import aiohttp
from playwright.async_api import expect

from tests.browser.support import (
    OpenPage,
    expect_plays_presenter,
    go_live,
    join_attendee,
    join_presenter,
)
from tests.cluster import nodes as cluster
from tests.redis_server import RedisServer


async def test_attendees_on_two_nodes_play_a_presenter_on_a_third(
    tmp_path: Path,
    open_page: OpenPage,
    redis_server: RedisServer,
    postgres_url: str,
) -> None:
    started: list[cluster.Node] = []
    try:
        for index, env in ((0, {}), (1, {}), (2, {"WEBINAR_CLUSTER_NODE_CAPACITY": "1"})):
            started.append(
                cluster.start_node(
                    tmp_path,
                    index,
                    redis_url=redis_server.url,
                    database_url=postgres_url,
                    extra_env=env,
                )
            )
        a, _b, c = started
        async with aiohttp.ClientSession() as http:
            await cluster.wait_ready(http, started)
        created = a.create_event("Three nodes")
        key = parse_qs(urlparse(created["presenter_url"]).query)["key"][0]
        event: Any = SimpleNamespace(event_id=created["event_id"], presenter_key=key)
        at = {n.name: cast(Any, SimpleNamespace(base_url=n.base_url)) for n in started}
        presenter = await open_page("presenter")
        on_b = await open_page("attendee-b")
        on_c = await open_page("attendee-c")
        moved = await open_page("attendee-moved")
        await join_presenter(presenter, at["A"], event, "Alice")
        await go_live(presenter)
        await join_attendee(on_b, at["B"], event, "Bea")
        await join_attendee(on_c, at["C"], event, "Cid")
        await join_attendee(moved, at["C"], event, "Moved")  # C is full: moved to A or B
        for attendee in (on_b, on_c, moved):
            await expect_plays_presenter(attendee, "Alice", within=30)
        async with aiohttp.ClientSession() as http:
            # the moved page is not on C: C's one worker holds one connection (Cid's)
            body = await cluster.healthz(http, c.base_url)
            on_c_workers = [w for w in body["workers"] if w["node_url"] == c.base_url]
            assert [w["connections"] for w in on_c_workers] == [1], body["workers"]
            samples = await cluster.metrics(http, a.base_url)
        relayed = cluster.total(samples, "webinar_pipe_packets_total", direction="out")
        assert relayed > 100, relayed
        await expect(presenter.get_by_test_id("participant-count")).to_contain_text("4")
        for page in (presenter, on_b, on_c, moved):
            await page.close()
        for node in started:
            node.proc.send_signal(signal.SIGINT)
    finally:
        for node in started:
            node.stop()
        for node in started:
            assert "Traceback" not in node.tail(400), node.tail(60)
