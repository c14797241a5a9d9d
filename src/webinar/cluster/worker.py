"""Who this process is: the single-process server, or worker k of N under the supervisor.

The supervisor (:mod:`webinar.cluster.supervisor`) starts each worker as ``webinar serve``
with the environment variables below; :func:`current` reads them back. Without them the
process is the single-process server: worker 0 of 1, no Redis.

==========================  ==================================================================
``WEBINAR_WORKER_ID``       1..N on one machine, ``n * 1000 + k`` for worker k of node n of a
                            multi-node cluster (absent: the single-process server, worker 0)
``WEBINAR_WORKERS``         N
``WEBINAR_REDIS_URL``       the Redis every worker of the machine shares
``WEBINAR_PIPE_HOST``       the address media pipes between workers use
``WEBINAR_WORKER_PORT``     this worker's own loopback HTTP port (absent: none)
``WEBINAR_WORKER_UDP_MIN``  this worker's share of ``ice.udp_port_min..udp_port_max``
``WEBINAR_WORKER_UDP_MAX``  (both absent: any free UDP port)
==========================  ==================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ID_ENV = "WEBINAR_WORKER_ID"
WORKERS_ENV = "WEBINAR_WORKERS"
REDIS_URL_ENV = "WEBINAR_REDIS_URL"
PIPE_HOST_ENV = "WEBINAR_PIPE_HOST"
PORT_ENV = "WEBINAR_WORKER_PORT"
UDP_MIN_ENV = "WEBINAR_WORKER_UDP_MIN"
UDP_MAX_ENV = "WEBINAR_WORKER_UDP_MAX"
#: Every variable the supervisor sets for a worker (and nothing else reads).
ENV_VARS = (ID_ENV, WORKERS_ENV, REDIS_URL_ENV, PIPE_HOST_ENV, PORT_ENV, UDP_MIN_ENV, UDP_MAX_ENV)

#: The loopback address every direct worker port listens on.
DIRECT_HOST = "127.0.0.1"

#: Worker IDs of a multi-node cluster: node n's worker k is ``n * NODE_STRIDE + k``; the workers
#: of a single machine (1..N, below the stride) are node 0.
NODE_STRIDE = 1000


def node_of(worker_id: int) -> int:
    """The node a worker belongs to (0: the workers of a single machine)."""
    return worker_id // NODE_STRIDE


class WorkerError(ValueError):
    """The supervisor's variables are inconsistent (a bug, or someone set them by hand)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerIdentity:
    """One process of the server.

    ``worker_id`` is 0 for the single-process server (``workers == 1``, no Redis) and 1..N
    for the workers a supervisor runs. On node n of a multi-node cluster (``[cluster]
    node_address``) worker k is ``n * NODE_STRIDE + k``: IDs are unique across the cluster, and
    :func:`node_of` tells a worker's node from its ID alone. Worker 0 or 1 runs the periodic
    jobs (on a cluster of nodes, the worker 1 that holds the jobs lease in Redis).
    """

    worker_id: int = 0
    workers: int = 1
    redis_url: str | None = None
    pipe_host: str = "127.0.0.1"
    #: This worker's own loopback HTTP port (``[server] worker_port_base``), if any.
    direct_port: int | None = None
    #: This worker's share of the configured UDP media range; None: any free port.
    udp_port_min: int | None = None
    udp_port_max: int | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise WorkerError(f"{WORKERS_ENV} must be at least 1, got {self.workers}")
        if self.worker_id == 0 and self.workers != 1:
            raise WorkerError(f"{ID_ENV} is missing but {WORKERS_ENV} is {self.workers}")
        if self.worker_id != 0 and not 1 <= self.local_id <= self.workers:
            raise WorkerError(
                f"{ID_ENV} must be between 1 and {self.workers} (plus n * {NODE_STRIDE} on"
                f" node n): {self.worker_id}"
            )
        if (self.udp_port_min is None) != (self.udp_port_max is None):
            raise WorkerError(f"{UDP_MIN_ENV} and {UDP_MAX_ENV} go together")

    @property
    def clustered(self) -> bool:
        """A worker under a supervisor (even if it is the only one)."""
        return self.worker_id != 0

    @property
    def node(self) -> int:
        """The node this worker belongs to: 0 on a single machine."""
        return node_of(self.worker_id)

    @property
    def local_id(self) -> int:
        """k of "worker k of N" on this machine (0 for the single-process server)."""
        return self.worker_id % NODE_STRIDE

    @property
    def runs_jobs(self) -> bool:
        """This process may run the periodic jobs (reminders, webhook delivery): the single
        process, or worker 1 of a machine. On a cluster of nodes, worker 1 of every node may,
        and the one holding the jobs lease does (webinar.cluster.leases)."""
        return self.local_id in (0, 1)

    def to_env(self) -> dict[str, str]:
        """The variables that make a ``webinar serve`` process this worker."""
        env = {ID_ENV: str(self.worker_id), WORKERS_ENV: str(self.workers)}
        env[PIPE_HOST_ENV] = self.pipe_host
        if self.redis_url is not None:
            env[REDIS_URL_ENV] = self.redis_url
        if self.direct_port is not None:
            env[PORT_ENV] = str(self.direct_port)
        if self.udp_port_min is not None and self.udp_port_max is not None:
            env[UDP_MIN_ENV] = str(self.udp_port_min)
            env[UDP_MAX_ENV] = str(self.udp_port_max)
        return env


SINGLE = WorkerIdentity()


def _int(env: Mapping[str, str], name: str) -> int | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text, 10)
    except ValueError:
        raise WorkerError(f"{name} must be a whole number, got {text!r}") from None


def current(env: Mapping[str, str] | None = None) -> WorkerIdentity:
    """This process's identity, from the supervisor's variables (none: :data:`SINGLE`)."""
    env = os.environ if env is None else env
    worker_id = _int(env, ID_ENV)
    if worker_id is None:
        return SINGLE
    return WorkerIdentity(
        worker_id=worker_id,
        workers=_int(env, WORKERS_ENV) or 1,
        redis_url=env.get(REDIS_URL_ENV) or None,
        pipe_host=env.get(PIPE_HOST_ENV) or "127.0.0.1",
        direct_port=_int(env, PORT_ENV),
        udp_port_min=_int(env, UDP_MIN_ENV),
        udp_port_max=_int(env, UDP_MAX_ENV),
    )


def split_udp_range(
    low: int | None, high: int | None, workers: int
) -> list[tuple[int, int] | None]:
    """Cut ``low..high`` into ``workers`` contiguous shares, worker 1's first; the first
    shares get one port more when it does not divide evenly. No range: None for each."""
    if low is None or high is None:
        return [None] * workers
    size = high - low + 1
    if size < workers:
        raise ValueError(
            f"ice.udp_port_min..udp_port_max has {size} port(s), fewer than the {workers} workers"
        )
    shares: list[tuple[int, int] | None] = []
    start = low
    for index in range(workers):
        count = size // workers + (1 if index < size % workers else 0)
        shares.append((start, start + count - 1))
        start += count
    return shares


def direct_port(base: int | None, worker_id: int) -> int | None:
    """Worker ``worker_id``'s own port: ``base + worker_id - 1`` (None without a base)."""
    if base is None:
        return None
    port = base + worker_id - 1
    if port > 65535:
        raise ValueError(f"server.worker_port_base {base} leaves no port for worker {worker_id}")
    return port
