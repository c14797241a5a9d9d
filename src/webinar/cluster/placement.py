"""Where a join is served, on a cluster of nodes (``[cluster] node_address``).

Every node serves every URL; a join that reaches a node is answered there unless:

- the participant runs the floor (host, presenter) and the room's stage is on another node:
  the stage is where the room's floor is connected (its presenters' media originates there,
  and one copy of each stream goes to each other node: docs/architecture.md). A stage node
  that died has no live worker, so it is no stage: the presenter stays and becomes the stage;
- the participant is an attendee and this node is full (``cluster.node_capacity`` attendees,
  or its workers' CPU nearly spent): the least loaded node with room takes them, drawn at
  random weighted by free places, so that a thousand people arriving in one second, all
  reading the same one-second-old loads, spread over the nodes instead of flooding one.

The join is then answered ``move`` with the WebSocket URL of the chosen node; the client
connects there and joins again with ``placed``, which is never moved a second time. Loads come
from the registry's entries (each worker's seated participants and CPU, every second), read at most
every :data:`REFRESH_SECONDS`; between reads, the moves this worker made count on the target.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from webinar.cluster.registry import WorkerInfo
from webinar.cluster.worker import node_of

logger = logging.getLogger(__name__)

#: Loads are read again after this long.
REFRESH_SECONDS = 0.5
#: A node whose workers use this share of their cores is full, whatever its attendees
#: (``cluster.node_cpu_limit``, its default).
CPU_FULL = 0.85
#: Seconds over which a worker's CPU is averaged (exponentially) for placement.
CPU_SMOOTHING = 10.0


def socket_url(node_url: str) -> str:
    """The signalling WebSocket of a node reached at ``node_url``."""
    base = node_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/ws"
    return "ws://" + base.removeprefix("http://") + "/ws"


def origin_of(node_url: str) -> str:
    """The WebSocket origin of a node's URL, for the pages' Content-Security-Policy."""
    parts = urlsplit(socket_url(node_url))
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(slots=True)
class NodeLoad:
    """One node, summed over its live workers."""

    node: int
    url: str
    capacity: int
    workers: int = 0
    #: People seated on the node's workers (a joining one is not yet).
    participants: int = 0
    cpu: float = 0.0
    draining: bool = False
    #: The share of its workers' cores at which it counts as full (0: never for CPU).
    cpu_limit: float = CPU_FULL

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.participants)

    @property
    def full(self) -> bool:
        return (
            self.draining
            or self.free == 0
            or (self.workers > 0 and 0 < self.cpu_limit <= self.cpu / self.workers)
        )


def node_loads(workers: Iterable[WorkerInfo]) -> dict[int, NodeLoad]:
    """The live nodes, from their workers' registry entries (workers of node 0, a single
    machine's, are not a node of a cluster and are left out)."""
    loads: dict[int, NodeLoad] = {}
    for info in workers:
        node = node_of(info.worker_id)
        if node == 0 or not info.node_url:
            continue
        load = loads.setdefault(
            node, NodeLoad(node, info.node_url, info.capacity, cpu_limit=info.cpu_limit)
        )
        load.workers += 1
        load.participants += info.participants
        load.cpu += info.cpu
        load.draining = load.draining or info.draining
    return loads


def choose(loads: Iterable[NodeLoad], rng: random.Random) -> NodeLoad | None:
    """A node with room, drawn with a chance proportional to its free places; None if all
    are full."""
    open_nodes = [load for load in loads if not load.full]
    if not open_nodes:
        return None
    return rng.choices(open_nodes, weights=[load.free for load in open_nodes])[0]


@dataclass(slots=True)
class Placement:
    """This worker's side of placement; :meth:`stage_move` and :meth:`attendee_move`."""

    node: int
    read_workers: Callable[[], Awaitable[list[WorkerInfo]]]
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    _loads: dict[int, NodeLoad] = field(default_factory=dict)
    _read_at: float = float("-inf")

    async def loads(self) -> dict[int, NodeLoad]:
        now = self.clock()
        if now - self._read_at >= REFRESH_SECONDS:
            self._loads = node_loads(await self.read_workers())
            self._read_at = now
        return self._loads

    async def watch(self) -> None:
        """Keep the loads fresh (the pages' connect-src needs the nodes before any join)."""
        while True:
            try:
                await self.loads()
            except Exception:
                logger.exception("cannot read the nodes' loads")
            await asyncio.sleep(REFRESH_SECONDS * 2)

    def urls(self) -> list[str]:
        """The URLs of the nodes last seen alive (for the pages' connect-src)."""
        return sorted({load.url for load in self._loads.values()})

    async def stage_move(self, floor_nodes: Iterable[int]) -> str | None:
        """A host or presenter joins: the node URL of the room's stage if it is another live
        node (``floor_nodes``: the nodes the room's connected hosts and presenters are on,
        one entry per person), else None (stay: this node is, or becomes, the stage)."""
        loads = await self.loads()
        counts: dict[int, int] = {}
        for node in floor_nodes:
            if node in loads:
                counts[node] = counts.get(node, 0) + 1
        if not counts or self.node in counts:
            return None
        stage = max(sorted(counts), key=lambda node: counts[node])
        return loads[stage].url

    async def attendee_move(self) -> str | None:
        """An attendee joins: None to stay, or the URL of the node that takes them instead
        (this node is full and another has room)."""
        loads = await self.loads()
        own = loads.get(self.node)
        if own is None or not own.full:
            if own is not None:
                own.participants += 1  # counted until the next read
            return None
        target = choose((load for node, load in loads.items() if node != self.node), self.rng)
        if target is None:
            logger.warning("every node is full; node %d takes the attendee anyway", self.node)
            return None
        target.participants += 1
        return target.url


class CpuMeter:
    """The CPU this process uses, in cores, smoothed over about :data:`CPU_SMOOTHING`
    seconds (a burst of joins is no reason to send people elsewhere; a sustained load is)."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._cpu = time.process_time()
        self._value = 0.0

    def sample(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        elapsed = wall - self._wall
        if elapsed >= 0.2:  # shorter spans say little; keep the last figure
            now = max(0.0, (cpu - self._cpu) / elapsed)
            weight = 1.0 - math.exp(-elapsed / CPU_SMOOTHING)
            self._value += weight * (now - self._value)
            self._wall, self._cpu = wall, cpu
        return self._value
