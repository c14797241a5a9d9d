"""A cluster of nodes on this machine, as real processes: each node is a ``webinar serve``
supervisor with its workers, on its own loopback address (127.0.0.11, .12, ...), sharing a
real redis-server and a real PostgreSQL with the others (the fixtures of tests/redis_server.py
and tests/postgres_server.py). Every node keeps its own data folder; recordings and images go
to one shared folder, as a shared mount would hold them.

Logs go to files in the test's folder (a pipe nobody reads would stall a chatty node).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import Person
from tests.serving import free_port, free_port_run
from webinar.client.peer import SignallingClient

#: Every node of a cluster shares one secrets key (docs/deployment.md).
SECRETS_KEY = "bm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm4="


def node_address(index: int) -> str:
    """Node ``index`` (0, 1, 2, ...) listens on 127.0.0.<11 + index>."""
    return f"127.0.0.{11 + index}"


@dataclass
class Node:
    index: int
    address: str
    port: int
    proc: subprocess.Popen[bytes]
    data_dir: Path
    env: dict[str, str]
    log: Path
    #: Direct ports of the node's workers (``server.worker_port_base``), worker 1 first.
    worker_ports: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "ABCDEFGH"[self.index]

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def worker_url(self, k: int) -> str:
        """Worker k's own port (the supervisor's shared port spreads connections)."""
        return f"http://127.0.0.1:{self.worker_ports[k - 1]}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """The machine dies: the supervisor and (PR_SET_PDEATHSIG) its workers."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "webinar", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=True,
        )

    def create_event(self, title: str) -> dict[str, str]:
        return dict(json.loads(self.cli("event", "create", "--title", title, "--json").stdout))


def start_node(
    root: Path,
    index: int,
    *,
    redis_url: str,
    database_url: str | None,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    data_dir: Path | None = None,
) -> Node:
    address = node_address(index)
    data = data_dir or root / f"node{index}"
    data.mkdir(parents=True, exist_ok=True)
    shared = root / "shared"
    shared.mkdir(exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "WEBINAR_ICE_HOST_ADDRESSES": address,
        "WEBINAR_CLUSTER_REDIS_URL": redis_url,
        "WEBINAR_CLUSTER_NODE_ADDRESS": address,
        "WEBINAR_CLUSTER_SHARED_DIR": str(shared),
        "WEBINAR_SERVER_WORKERS": str(workers),
        "WEBINAR_SIGNALLING_HEARTBEAT_SECONDS": "5",
        "WEBINAR_SECRETS_KEY": SECRETS_KEY,
        **({"WEBINAR_CLUSTER_DATABASE_URL": database_url} if database_url else {}),
        **(extra_env or {}),
    }
    base = free_port_run(workers)  # the workers' direct ports: base, base + 1, ...
    env["WEBINAR_SERVER_WORKER_PORT_BASE"] = str(base)
    ports = [base + k for k in range(workers)]
    log = root / f"node{index}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "webinar", "serve"),
                *("--host", address, "--port", str(port), "--data-dir", str(data)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: kill() takes the workers too
        )
    return Node(index, address, port, proc, data, env, log, ports)


async def healthz(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url + "/healthz", timeout=aiohttp.ClientTimeout(total=5)) as resp:
        assert resp.status == 200
        return dict(await resp.json())


async def wait_ready(http: aiohttp.ClientSession, nodes: list[Node], within: float = 60) -> None:
    """Until every node answers /healthz with all its workers and sees every node."""
    deadline = time.monotonic() + within
    pending = list(nodes)
    last: Any = None
    while pending and time.monotonic() < deadline:
        for node in list(pending):
            if not node.alive():
                raise AssertionError(f"node {node.name} exited:\n{node.tail()}")
            try:
                body = await healthz(http, node.base_url)
            except (aiohttp.ClientError, TimeoutError, AssertionError) as exc:
                last = exc
                continue
            last = body
            workers = body.get("workers") or []
            if len(workers) >= len(node.worker_ports or [1]):
                pending.remove(node)
        await asyncio.sleep(0.25)
    if pending:
        raise AssertionError(
            f"nodes {[n.name for n in pending]} not ready in {within} s: {last}\n"
            + "\n".join(n.tail() for n in pending)
        )
    await asyncio.sleep(1.5)  # every registry entry written and read (1 s refresh)


async def metrics(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """``/metrics`` of a node as {sample (name with labels): value}."""
    async with http.get(url + "/metrics") as resp:
        text = await resp.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            found[name] = float(value)
    return found


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    out = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            out += value
    return out


async def join_anywhere(
    url: str,
    people: list[Any],
    cls: type[Person],
    event_id: str,
    name: str,
    credential: str | None = None,
    **extra: Any,
) -> Person:
    """A signalling participant who joins at ``url`` and follows a ``move`` to the node it
    names; ``person.moved_to`` is that node's WebSocket URL (None: not moved)."""
    http = aiohttp.ClientSession()
    fields: dict[str, Any] = {"event_id": event_id, "name": name, **extra}
    if credential is not None:
        fields["credential"] = credential
    client = SignallingClient(http, url.replace("http", "ws", 1) + "/ws")
    await client.connect()
    person = cls(http, client)
    people.append(person)
    await client.request("hello", protocol=1)
    reply = await client.request("join", **fields)
    person.moved_to = None  # type: ignore[attr-defined]
    if reply.get("type") == "move":
        await client.close()
        moved = str(reply["url"])
        client = SignallingClient(http, moved)
        await client.connect()
        person.client = client
        client.on_message(person.seen.append)
        await client.request("hello", protocol=1)
        reply = await client.request("join", **fields, placed=True)
        person.moved_to = moved  # type: ignore[attr-defined]
    person.joined = reply
    return person
