#!/usr/bin/env python3
"""Cluster benchmark: one webinar over N nodes on this machine, the stage cascaded by pipes.

    python benchmarks/cluster.py --nodes 3 --subscribers 90 [--seconds 20] [--pairs 2]

Starts a private redis-server and a private PostgreSQL (the test suite's own, as
tests/postgres_server.py runs it), then N nodes, each a real ``webinar serve`` supervisor with
one worker on its own loopback address (127.0.0.11, .12, ...; ``[cluster] node_address``),
and runs fanout.py's load against them: one publisher (pre-encoded VP8 + Opus) on node A,
subscriber g on node (g mod N). Node A sends one copy of each stream to every other node
(SRTP pipes); each node forwards to its own subscribers.

``pipe_cost_ratio`` = CPU spent on pipes ÷ CPU spent forwarding to subscribers, both measured:
each node's pipes count the CPU time of their per-packet work (``webinar_pipe_cpu_seconds_total``:
relaying out at the origin with its SRTP and ``sendto``; taking in at an edge with its SRTP and
the ingest the packet then takes), and forwarding is the rest of the nodes' workers' CPU. The
event loop's wake-up for a pipe datagram is not in it (a few µs, shared with whatever else is
ready). ``pipe_us_per_packet``: that CPU per pipe packet (out and in counted apiece).

``spread_cost_ratio`` is what spreading costs in all: the same load runs alternately on the
cluster and on node A alone (every subscriber on A, no pipe; the other nodes idle but running),
``--pairs`` times; it is the cluster's CPU per delivered packet over the single node's, minus
one. Besides the pipes it holds each node's own copy of the room (timers, RTCP, allocation)
and the smaller batches of a node with fewer subscribers.

Prints exactly one JSON line: ``nodes``, ``subscribers``, ``seconds``, ``per_node`` (a list:
``node``, ``subscribers``, ``cpu`` (cores), ``sends`` (packets forwarded to its subscribers in
the window), ``pipe_pps_in``, ``pipe_pps_out``, ``pipe_cpu`` (cores)), ``delivered_ratio`` (the
worst subscriber's share of what the publisher sent), ``pipe_cost_ratio``, ``pipe_cost_ratios``
(each cluster run), ``pipe_us_per_packet``, ``spread_cost_ratio``, ``spread_cost_ratios``,
``cluster_cpu`` and ``single_cpu`` (cores, medians),
``shared_cpu`` (Redis and PostgreSQL, cores), ``sends_per_core_second``. All traffic stays on
loopback. See benchmarks/README.md ("cluster.py").
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import fanout  # benchmarks/fanout.py: the script's folder is on sys.path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests/postgres_server.py: the suite's own PostgreSQL

from tests.postgres_server import PostgresServer  # noqa: E402
from webinar.client.media import make_opus_clip, make_vp8_clip  # noqa: E402
from webinar.cluster.redis import PrivateRedis  # noqa: E402
from webinar.storage.sealing import new_key  # noqa: E402

log = logging.getLogger("cluster")


class Node:
    def __init__(self, root: Path, index: int, env: dict[str, str]) -> None:
        self.index = index
        self.name = "ABCDEFGHIJKLMNOP"[index]
        self.address = f"127.0.0.{11 + index}"
        self.port = fanout.free_port()
        self.direct = fanout.free_port()
        self.data = root / f"node{index}"
        self.log_path = root / f"node{index}.log"
        env = {
            **env,
            "WEBINAR_ICE_HOST_ADDRESSES": self.address,
            "WEBINAR_CLUSTER_NODE_ADDRESS": self.address,
            "WEBINAR_SERVER_WORKERS": "1",
            "WEBINAR_SERVER_WORKER_PORT_BASE": str(self.direct),
        }
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "webinar", "serve", "--host", self.address),
                    *("--port", str(self.port), "--data-dir", str(self.data)),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.worker_pid = 0

    @property
    def url(self) -> str:
        """The node's worker, on its direct port (the one worker of the node)."""
        return f"http://127.0.0.1:{self.direct}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


class Cluster(fanout.Target):
    """N nodes as one fanout target; ``spread`` False: every client joins node A."""

    def __init__(self, root: Path, nodes: int, redis: PrivateRedis, database_url: str) -> None:
        self.name = f"cluster of {nodes} nodes"
        env = fanout._server_env()
        env.update(
            {
                "WEBINAR_CLUSTER_REDIS_URL": redis.url,
                "WEBINAR_CLUSTER_DATABASE_URL": database_url,
                "WEBINAR_SECRETS_KEY": new_key(),
                "WEBINAR_CLUSTER_NODE_CAPACITY": "100000",  # nobody is moved: g mod N holds
                "WEBINAR_CLUSTER_NODE_CPU_LIMIT": "0",
            }
        )
        self.env = env
        self.redis = redis
        self.nodes = [Node(root, i, env) for i in range(nodes)]
        self.process = self.nodes[0].process
        self.log_path = self.nodes[0].log_path
        self.url = self.nodes[0].url
        self.ready_url = self.url + "/healthz"
        self.spread = True
        self.event_id, self.credential = fanout.create_event(env, root / "cli", "Cluster")

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while True:
                if node.process.poll() is not None:
                    raise RuntimeError(f"node {node.name} exited:\n{fanout.tail(node.log_path)}")
                try:
                    body = json.loads(fanout._fetch(node.url + "/healthz"))
                    node.worker_pid = int(body["pid"])
                    if len(body["workers"]) >= len(self.nodes):
                        break
                except (OSError, ValueError, KeyError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node {node.name} not ready within {timeout} s")
                time.sleep(0.2)

    def check_alive(self) -> None:
        for node in self.nodes:
            if node.process.poll() is not None:
                raise RuntimeError(f"node {node.name} exited:\n{fanout.tail(node.log_path)}")

    def stop(self) -> None:
        pass  # the nodes serve both kinds of run; stop_all() ends them

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop()

    def worker_urls(self) -> list[str]:
        return [n.url for n in self.nodes] if self.spread else [self.nodes[0].url]

    def worker_pids(self) -> list[int]:
        return [n.worker_pid for n in self.nodes] if self.spread else [self.nodes[0].worker_pid]

    def server_pids(self) -> list[int]:
        """Every node's supervisor and worker (idle nodes too: both kinds of run pay them)."""
        pids: list[int] = []
        for node in self.nodes:
            pids += [node.process.pid, *fanout._descendants(node.process.pid)]
        return pids

    def pipe_packets(self) -> list[dict[str, int]]:
        """Each node's pipe packets (``out``, ``in``) and the CPU its pipes' per-packet work
        took (``cpu``, seconds: ``webinar_pipe_cpu_seconds_total``)."""
        out: list[dict[str, Any]] = []
        for node in self.nodes if self.spread else self.nodes[:1]:
            counts: dict[str, Any] = {"out": 0, "in": 0, "cpu": 0.0, "ingest": 0.0}
            for line in fanout._fetch(node.url + "/metrics").splitlines():
                value = line.rsplit(" ", 1)[-1]
                if line.startswith("webinar_pipe_cpu_seconds_total{"):
                    counts["cpu"] += float(value)
                    continue
                if line.startswith("webinar_pipe_ingest_cpu_seconds_total{"):
                    counts["ingest"] += float(value)
                    continue
                for direction in ("out", "in"):
                    label = f'direction="{direction}"'
                    if line.startswith("webinar_pipe_packets_total{") and label in line:
                        counts[direction] += int(float(value))
            out.append(counts)
        return out


def shared_cpu(redis: PrivateRedis, pg: PostgresServer) -> float:
    processes = (redis.process, pg._proc)
    pids = [p.pid for p in processes if p is not None]
    found = list(pids)
    for pid in pids:
        found += fanout._descendants(pid)
    return sum(fanout.cpu_seconds(p) for p in found if Path(f"/proc/{p}").exists())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--subscribers", type=int, default=90)
    p.add_argument("--seconds", type=float, default=20.0, help="measuring window of each run")
    p.add_argument("--pairs", type=int, default=2, help="alternating (cluster, single) runs")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--workers", type=int, default=6, help="client processes")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = fanout.Settings(
        subscribers=args.subscribers,
        seconds=args.seconds,
        warmup=args.warmup,
        drain=0.5,
        workers=args.workers,
        join_concurrency=8,
        rcvbuf=1 << 20,
        interleave=False,
        setup_timeout=60 + 0.5 * args.subscribers,
        log_level=logging.INFO if args.verbose else logging.WARNING,
    )
    ctx = multiprocessing.get_context("spawn")
    root = Path(tempfile.mkdtemp(prefix="webinar-cluster-"))
    redis = PrivateRedis(root / "redis-data")
    pg = PostgresServer()
    cluster: Cluster | None = None
    try:
        redis.start()
        pg.start()
        database_url = pg.create_database()
        cluster = Cluster(root, args.nodes, redis, database_url)
        cluster.wait_ready()
        clips = (
            make_vp8_clip(width=640, height=480, fps=30, seconds=4.0, bitrate=1_000_000),
            make_opus_clip(seconds=4.0),
        )
        spread_runs: list[dict[str, Any]] = []
        single_runs: list[dict[str, Any]] = []
        shared: list[float] = []
        for pair in range(args.pairs):
            for spread in (True, False):
                cluster.spread = spread
                before = shared_cpu(redis, pg)
                began = time.monotonic()
                out = fanout.run_load(cluster, "ours", clips, settings, ctx, per_worker=True)
                shared.append((shared_cpu(redis, pg) - before) / (time.monotonic() - began))
                (spread_runs if spread else single_runs).append(out)
                log.info(
                    "pair %d, %s: %s",
                    pair + 1,
                    "cluster" if spread else "node A alone",
                    json.dumps(
                        {k: out[k] for k in ("sfu_cpu", "delivered_ratio", "forwarded_pps")}
                    ),
                )
                time.sleep(2.0)  # the last run's people leave; pipes close
        ratios: list[float] = []
        with_ingest: list[float] = []
        per_packet: list[float] = []
        spread_costs: list[float] = []
        for many, one in zip(spread_runs, single_runs, strict=True):
            pipe_cpu = sum(many["pipe_cpu"])  # cores, measured in the pipes' own work
            ingest = sum(many["pipe_ingest_cpu"])  # cores: the edges' ingest of piped packets
            workers_cpu = sum(w["cpu"] for w in many["per_worker"]) / many["window_s"]
            forwarding = workers_cpu - pipe_cpu - ingest
            ratios.append(pipe_cpu / forwarding)
            with_ingest.append((pipe_cpu + ingest) / forwarding)
            packets = sum(p["in"] + p["out"] for p in many["pipe_pps"])
            if packets:
                per_packet.append(pipe_cpu / packets * 1e6)
            # All the server's CPU per delivered packet, cluster against node A alone.
            many_cpu = many["sfu_cpu"] / many["forwarded_pps"]
            one_cpu = one["sfu_cpu"] / one["forwarded_pps"]
            spread_costs.append(many_cpu / one_cpu - 1)
        last = spread_runs[-1]
        result = {
            "nodes": args.nodes,
            "subscribers": args.subscribers,
            "seconds": args.seconds,
            "per_node": _per_node(last),
            "delivered_ratio": min(r["delivered_ratio"] for r in spread_runs),
            "pipe_cost_ratio": round(statistics.median(ratios), 4),
            "pipe_cost_ratios": [round(r, 4) for r in ratios],
            "pipe_cost_ratio_with_ingest": round(statistics.median(with_ingest), 4),
            "pipe_us_per_packet": round(statistics.median(per_packet), 2) if per_packet else None,
            "spread_cost_ratio": round(statistics.median(spread_costs), 4),
            "spread_cost_ratios": [round(r, 4) for r in spread_costs],
            "cluster_cpu": round(statistics.median(r["sfu_cpu"] for r in spread_runs), 4),
            "single_cpu": round(statistics.median(r["sfu_cpu"] for r in single_runs), 4),
            "shared_cpu": round(statistics.median(shared), 4),
            "sends_per_core_second": round(
                statistics.median(r["sends_per_core_second"] for r in spread_runs)
            ),
            "single_sends_per_core_second": round(
                statistics.median(r["sends_per_core_second"] for r in single_runs)
            ),
            "publisher_pps": last["publisher_pps"],
        }
        print(json.dumps(result), flush=True)
        return 0
    finally:
        if cluster is not None:
            cluster.stop_all()
        redis.stop()
        pg.close()
        shutil.rmtree(root, ignore_errors=True)


def _per_node(out: dict[str, Any]) -> list[dict[str, Any]]:
    wall = out["window_s"]
    nodes = []
    for index, worker in enumerate(out["per_worker"]):
        pipes = out.get("pipe_pps", [])
        cpu = out.get("pipe_cpu", [])
        ingest = out.get("pipe_ingest_cpu", [])
        nodes.append(
            {
                "node": "ABCDEFGHIJKLMNOP"[index],
                "subscribers": worker["subscribers"],
                "cpu": round(worker["cpu"] / wall, 4),
                "sends": worker["sends"],
                "pipe_pps_in": pipes[index]["in"] if index < len(pipes) else 0.0,
                "pipe_pps_out": pipes[index]["out"] if index < len(pipes) else 0.0,
                "pipe_cpu": cpu[index] if index < len(cpu) else 0.0,
                "pipe_ingest_cpu": ingest[index] if index < len(ingest) else 0.0,
            }
        )
    return nodes


if __name__ == "__main__":
    sys.exit(main())
