"""The store under several worker processes: the writes of a join storm, from 1 and 2 processes.

    .venv/bin/python benchmarks/store_contention.py
    .venv/bin/python benchmarks/store_contention.py --joins 1000 --processes 1,2,4 --concurrency 50
    .venv/bin/python benchmarks/store_contention.py --database-url postgresql://…/bench

SQLite by default; with ``--database-url`` the PostgreSQL database at that URL (emptied before
each run: use a database of its own), where every write transaction takes the store's advisory
write lock (webinar.storage.db), the counterpart of SQLite's ``BEGIN IMMEDIATE``.

A fresh data dir with one event and one webhook endpoint (so every join records a delivery, as
with an organiser who listens to ``participant.joined``). For each count P of ``--processes``,
P processes (spawned, like ``webinar serve --workers P``'s workers) each open the server's
asyncio ``Store`` (its own SQLite thread) and, all at once, make ``--joins`` ÷ P joins'
writes, ``--concurrency`` at a time per process, through the code the join path runs:
``AttendanceService.joined`` (one ``INSERT`` into ``attendance``, autocommit) and the
webhook delivery log's ``sql_record`` (a ``BEGIN IMMEDIATE`` transaction that reads the
endpoints and inserts one delivery). Nothing else runs: this is the worst case of a storm, all
writes back to back, with the processes fighting for SQLite's one write lock.

Prints exactly one JSON line: ``{"joins", "concurrency", "commit", "runs": [{...}, ...]}``,
one run per P:

* ``joins_per_s``: joins ÷ wall time (first write started → last finished, all processes);
  ``writes_per_s``: write transactions per second, two per join;
* ``p50_ms``, ``p99_ms``, ``max_ms``: per join, both writes, as the caller waits for them
  (queueing behind the other joins of its process included);
* ``sql_p99_ms``, ``sql_max_ms``: per write, only the time on the store's thread (the
  SQL, and the wait for the write lock when another process holds it);
* ``busy_errors``: writes that failed with ``database is locked`` (SQLITE_BUSY): must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from webinar.attendance.service import AttendanceService  # noqa: E402
from webinar.storage.sealing import KEY_ENV, new_key  # noqa: E402
from webinar.storage.store import Store, SyncStore  # noqa: E402
from webinar.webhooks.records import Emitted, sql_add_endpoint, sql_record  # noqa: E402
from webinar.webhooks.signing import WebhookEvent  # noqa: E402

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def prepare(data_dir: Path, database_url: str | None) -> str:
    """Migrations, one event, one webhook endpoint for every event; the event ID."""
    with SyncStore.open(data_dir, database_url) as store:
        if database_url is not None:
            store.connection.execute("TRUNCATE events, users RESTART IDENTITY CASCADE")
        event = store.create_event("Storm", None)
        user = store.create_user("admin", "x", "admin")
        sql_add_endpoint(store.connection, user.user_id, "https://hooks.example/in", frozenset(), 0)
        return event.event_id


async def _joins(
    data_dir: Path,
    database_url: str | None,
    event_id: str,
    worker: int,
    count: int,
    concurrency: int,
    start_at: float,
) -> dict[str, Any]:
    store = Store(data_dir, database_url=database_url)
    await store.open()
    attendance = AttendanceService(store)
    sql_times: list[float] = []
    run = store.run

    async def timed_run(call: Any) -> Any:
        def timed(core: SyncStore) -> Any:
            began = time.perf_counter()
            try:
                return call(core)
            finally:
                sql_times.append(time.perf_counter() - began)

        return await run(timed)

    store.run = timed_run  # type: ignore[method-assign]
    latencies: list[float] = []
    busy = 0
    queue = list(range(count))
    first = last = 0.0

    async def one(index: int) -> None:
        nonlocal busy
        began = time.perf_counter()
        pid = f"w{worker}p{index}"
        try:
            await attendance.joined(
                event_id=event_id,
                participant_id=pid,
                person_key=pid,
                name=f"Attendee {index}",
                role="attendee",
                user_agent=UA,
            )
            emitted = Emitted(
                WebhookEvent.PARTICIPANT_JOINED,
                event_id,
                {"participant_id": pid, "name": f"Attendee {index}", "role": "attendee"},
                time.time(),
            )
            await store.run_sql(lambda db: sql_record(db, [emitted]))
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            busy += 1
        latencies.append(time.perf_counter() - began)

    async def client() -> None:
        while queue:
            await one(queue.pop())

    await asyncio.sleep(max(0.0, start_at - time.time()))
    first = time.time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    last = time.time()
    await store.close()
    return {
        "first": first,
        "last": last,
        "latencies": latencies,
        "sql_times": sql_times,
        "busy": busy,
    }


def _process(args: tuple[Path, str | None, str, int, int, int, float], out: Any) -> None:
    out.put(asyncio.run(_joins(*args)))


def measure(
    data_dir: Path,
    database_url: str | None,
    event_id: str,
    processes: int,
    joins: int,
    concurrency: int,
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 2.0 + processes  # after every process has opened its store
    share = [joins // processes + (1 if i < joins % processes else 0) for i in range(processes)]
    workers = [
        ctx.Process(
            target=_process,
            args=(
                (data_dir, database_url, event_id, i + 1, share[i], concurrency, start_at),
                results,
            ),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    parts = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(30)
    latencies = [v for p in parts for v in p["latencies"]]
    sql_times = [v for p in parts for v in p["sql_times"]]
    wall = max(p["last"] for p in parts) - min(p["first"] for p in parts)
    return {
        "processes": processes,
        "joins_per_s": round(joins / wall, 1),
        "writes_per_s": round(2 * joins / wall, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
        "sql_p99_ms": round(percentile(sql_times, 0.99) * 1000, 2),
        "sql_max_ms": round(max(sql_times) * 1000, 2),
        "busy_errors": sum(p["busy"] for p in parts),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--joins", type=int, default=1000)
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts")
    parser.add_argument("--concurrency", type=int, default=50, help="joins in flight per process")
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL database of its own (emptied)"
    )
    args = parser.parse_args()
    if args.database_url is not None:  # one key for the run's data dirs and processes
        os.environ.setdefault(KEY_ENV, new_key())
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    runs = []
    for count in (int(p) for p in args.processes.split(",")):
        with tempfile.TemporaryDirectory(prefix="store-contention-") as tmp:
            data_dir = Path(tmp) / "data"
            event_id = prepare(data_dir, args.database_url)
            run = measure(
                data_dir, args.database_url, event_id, count, args.joins, args.concurrency
            )
            print(f"{count} process(es): {run}", file=sys.stderr)
            runs.append(run)
    print(
        json.dumps(
            {
                "joins": args.joins,
                "concurrency": args.concurrency,
                "database": "postgresql" if args.database_url else "sqlite",
                "commit": commit,
                "runs": runs,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
