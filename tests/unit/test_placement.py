"""Placement on a cluster of nodes (webinar.cluster.placement): which node serves a join."""

from __future__ import annotations

import random
import time

import pytest

from webinar.cluster import placement as pl
from webinar.cluster.placement import CpuMeter, NodeLoad, Placement, node_loads
from webinar.cluster.registry import WorkerInfo
from webinar.http.headers import policy


def info(
    worker_id: int,
    participants: int = 0,
    *,
    capacity: int = 10,
    cpu: float = 0.0,
    draining: bool = False,
    cpu_limit: float = 0.85,
) -> WorkerInfo:
    node = worker_id // 1000
    return WorkerInfo(
        worker_id=worker_id,
        pid=worker_id,
        rooms=0,
        connections=participants + 1,
        participants=participants,
        port=None,
        pipe_host="10.0.0.1",
        started_at=time.time(),
        draining=draining,
        node_url=f"https://n{node}.example.org" if node else "",
        capacity=capacity,
        cpu=cpu,
        cpu_limit=cpu_limit,
    )


def test_loads_sum_the_workers_of_each_node_and_leave_single_machines_out() -> None:
    loads = node_loads([info(1001, 3), info(1002, 4, cpu=0.5), info(2001, 1), info(7, 9)])
    assert sorted(loads) == [1, 2]
    one = loads[1]
    assert (one.workers, one.participants, one.free, one.url) == (2, 7, 3, "https://n1.example.org")
    assert not one.full
    assert loads[2].free == 9


@pytest.mark.parametrize(
    ("load", "full"),
    [
        (NodeLoad(1, "u", 10, workers=1, participants=10), True),
        (NodeLoad(1, "u", 10, workers=1, participants=9), False),
        (NodeLoad(1, "u", 10, workers=2, participants=0, cpu=1.8), True),  # 90 % of 2 cores
        (NodeLoad(1, "u", 10, workers=2, participants=0, cpu=1.6), False),
        (NodeLoad(1, "u", 10, workers=2, participants=0, cpu=1.9, cpu_limit=0.0), False),
        (NodeLoad(1, "u", 10, workers=1, draining=True), True),
    ],
)
def test_a_node_is_full_by_attendees_cpu_or_draining(load: NodeLoad, full: bool) -> None:
    assert load.full is full


def test_choice_is_weighted_by_free_places_and_none_when_all_are_full() -> None:
    rng = random.Random(7)
    loads = [NodeLoad(2, "b", 100, workers=1, participants=90), NodeLoad(3, "c", 100, workers=1)]
    picks = [pl.choose(loads, rng).node for _ in range(2000)]  # type: ignore[union-attr]
    share = picks.count(3) / len(picks)
    assert 0.87 < share < 0.95  # 100 free against 10
    assert pl.choose([NodeLoad(2, "b", 1, workers=1, participants=1)], rng) is None


def placement(workers: list[WorkerInfo], node: int = 1) -> Placement:
    async def read() -> list[WorkerInfo]:
        return workers

    return Placement(node, read, rng=random.Random(1))


async def test_the_floor_goes_to_the_stage_and_stays_when_the_stage_is_gone() -> None:
    workers = [info(1001), info(2001), info(3001)]
    here = placement(workers, node=1)
    assert await here.stage_move([]) is None  # no stage yet: this node becomes it
    assert await here.stage_move([2, 2, 3]) == "https://n2.example.org"  # most of the floor
    assert await here.stage_move([2, 1]) is None  # part of the floor is here already
    assert await here.stage_move([9]) is None  # the stage's node died: stay, be the stage


async def test_an_attendee_stays_until_the_node_is_full_then_goes_where_there_is_room() -> None:
    workers = [info(1001, 8, capacity=10), info(2001, 10, capacity=10), info(3001, 0, capacity=10)]
    here = placement(workers, node=1)
    assert await here.attendee_move() is None  # 9 of 10
    assert await here.attendee_move() is None  # 10 of 10, counted before the next read
    assert await here.attendee_move() == "https://n3.example.org"  # node 2 is full too
    full = placement([info(1001, 10, capacity=10), info(2001, 10, capacity=10)])
    assert await full.attendee_move() is None  # everyone full: taken here anyway


def test_socket_urls_and_origins_of_nodes() -> None:
    assert pl.socket_url("https://b.example.org/") == "wss://b.example.org/ws"
    assert pl.socket_url("http://10.0.0.2:8080") == "ws://10.0.0.2:8080/ws"
    assert pl.origin_of("https://b.example.org") == "wss://b.example.org"
    text = policy((), ["wss://b.example.org", "evil; script-src *"])
    assert "connect-src 'self' wss://b.example.org;" in text
    assert "evil" not in text


def test_the_cpu_meter_smooths_a_burst() -> None:
    meter = CpuMeter()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # half a second of one busy core
        pass
    busy = meter.sample()
    assert 0.0 < busy < 0.2  # a burst moves the 10-second average a little
