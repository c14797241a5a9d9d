#!/usr/bin/env python3
"""Fan-out benchmark: one publisher, N subscribers, SFU CPU per forwarded packet.

    python benchmarks/fanout.py --subscribers 50 --seconds 20 [--peer janus]
    python benchmarks/fanout.py --subscribers 100 --server-workers 1,2

Starts our server (``python -m webinar serve``) as a subprocess on a free loopback
port with a fresh temporary data dir, creates an event, and runs one publisher that
replays pre-encoded VP8 + Opus (no client-side encoding) and N subscribers that only
count RTP packets (no decoding). The clients run in worker processes (the publisher
in its own). After every subscriber receives both audio and video and a warm-up,
it measures a window of ``--seconds``: packets the publisher sent, packets every
subscriber received, and the SFU process's CPU time from /proc.

Prints exactly one JSON line on stdout; everything else goes to stderr. With
``--peer janus`` the same load also runs against Janus VideoRoom (with its default
threading and with ``event_loops`` set) and the results are nested in that line.
With ``--server-workers 1,2`` our server runs once per count, in that order (``--workers N``
with a direct port per worker; 1 is the plain single process): the publisher joins worker 1,
subscriber i joins worker (i mod N) + 1, the server's CPU is the supervisor's, every worker's
and the private redis-server's, and the results are nested under ``by_workers``.
All traffic stays on 127.0.0.1. See benchmarks/README.md for the keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import _janus  # benchmarks/_janus.py: the script's folder is on sys.path
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from webinar.client.media import ClipTrack, EncodedClip, make_opus_clip, make_vp8_clip
from webinar.client.peer import WebinarClient

log = logging.getLogger("fanout")

LOOPBACK = "127.0.0.1"
NOISE_CPU = 0.25  # cores used by other processes during the window: warn above this
CLK_TCK = os.sysconf("SC_CLK_TCK")
Peer = Literal["ours", "janus"]
Role = Literal["publisher", "subscribers"]


# --------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def host_busy_seconds() -> float:
    """CPU-seconds all cores of the machine spent not idle (from /proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    guest = sum(values[8:10]) if len(values) > 9 else 0  # already counted in user/nice
    return (sum(values) - idle - guest) / CLK_TCK


def udp_drops(pids: list[int]) -> int:
    """Datagrams the kernel dropped on the UDP sockets of ``pids`` (full receive buffer),
    from the ``drops`` column of /proc/net/udp; cumulative per open socket."""
    drops: dict[int, int] = {}
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    drops[int(fields[9])] = int(fields[12])
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    total = 0
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                total += drops.get(int(target[8:-1]), 0)
    return total


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


# No proxy, ever: every request of this script goes to 127.0.0.1.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url: str, body: bytes | None = None) -> bool:
    try:
        with _HTTP.open(urllib.request.Request(url, data=body), timeout=2) as response:
            return bool(200 <= response.status < 300)
    except (OSError, urllib.error.URLError):
        return False


def _die_with_parent() -> None:
    """Child side of Popen: get SIGTERM if the benchmark dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- workers


def enlarge_receive_buffers(pcs: list[Any], size: int) -> int:
    """Give the clients' UDP sockets a large receive buffer (the kernel caps it at
    net.core.rmem_max), so a client process that a busy machine deschedules for a
    moment does not drop what the SFU delivered. Returns the effective size."""
    effective = 0
    seen: set[int] = set()
    for pc in pcs:
        if pc is None:
            continue
        for transceiver in pc.getTransceivers():
            conn = transceiver.receiver.transport.transport.iceGatherer._connection
            for protocol in conn._protocols:
                transport = getattr(protocol, "transport", None)
                sock = transport.get_extra_info("socket") if transport is not None else None
                if sock is None or sock.fileno() in seen:
                    continue
                seen.add(sock.fileno())
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                    effective = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    return effective


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    role: Role
    peer: Peer
    url: str  # our server's base URL, or Janus's HTTP API URL
    event_id: str = ""
    #: Our server with several workers: subscriber g joins urls[g % len(urls)] (each a
    #: worker's direct port); empty: every subscriber joins ``url``.
    urls: tuple[str, ...] = ()
    credential: str | None = None
    count: int = 1
    first: int = 0  # index of the first subscriber (for names)
    stride: int = 1  # the i-th subscriber is subscriber first + i * stride
    clips: tuple[EncodedClip, EncodedClip] | None = None  # publisher: (video, audio)
    feed_id: int | None = None  # Janus: the publisher's feed
    join_concurrency: int = 8
    rcvbuf: int = 0  # SO_RCVBUF for the clients' sockets; 0 keeps the default
    log_level: int = logging.WARNING

    def subscriber_url(self, i: int) -> str:
        """The URL the worker's ``i``-th subscriber joins."""
        return self.urls[self.subscriber(i) % len(self.urls)] if self.urls else self.url

    def subscriber(self, i: int) -> int:
        """The index (over all client processes) of this process's ``i``-th subscriber."""
        return self.first + i * self.stride


class Clients:
    """The peers of one worker process."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.error: str | None = None
        self.started = False  # publishing / all joined
        self.feed_id: int | None = None
        self.rcvbuf = 0
        self._ours: list[WebinarClient] = []
        self._janus_session: _janus.JanusSession | None = None
        self._janus_pub: _janus.JanusPublisher | None = None
        self._janus_subs: list[_janus.JanusSubscriber] = []
        self._tracks: list[ClipTrack] = []
        self._http: Any = None

    # ---- setup

    async def start(self) -> None:
        try:
            if self.spec.role == "publisher":
                await self._start_publisher()
            else:
                await self._start_subscribers()
            self.started = True
        except Exception as exc:
            log.exception("worker %d: setup failed", self.spec.index)
            self.error = f"{type(exc).__name__}: {exc}"

    async def _start_publisher(self) -> None:
        spec = self.spec
        assert spec.clips is not None
        self._tracks = [ClipTrack(spec.clips[0]), ClipTrack(spec.clips[1])]
        if spec.peer == "ours":
            client = WebinarClient(spec.url, mode="count", host_addresses=[LOOPBACK])
            self._ours.append(client)
            await client.join(spec.event_id, "Publisher", spec.credential)
            await client.publish([(self._tracks[0], "camera"), (self._tracks[1], "microphone")])
        else:
            session = await self._janus()
            self._janus_pub = _janus.JanusPublisher(session)
            await self._janus_pub.publish(list(self._tracks))
            self.feed_id = self._janus_pub.feed_id

    async def _start_subscribers(self) -> None:
        spec = self.spec
        gate = asyncio.Semaphore(spec.join_concurrency)
        if spec.peer == "ours":
            clients = [
                WebinarClient(spec.subscriber_url(i), mode="count", host_addresses=[LOOPBACK])
                for i in range(spec.count)
            ]
            self._ours.extend(clients)

            async def join(i: int, client: WebinarClient) -> None:
                async with gate:
                    await client.join(spec.event_id, f"Viewer {spec.subscriber(i) + 1}")

            await asyncio.gather(*(join(i, c) for i, c in enumerate(clients)))
        else:
            assert spec.feed_id is not None
            session = await self._janus()
            feed = spec.feed_id
            subs = [_janus.JanusSubscriber(session) for _ in range(spec.count)]
            self._janus_subs.extend(subs)

            async def subscribe(sub: _janus.JanusSubscriber) -> None:
                async with gate:
                    await sub.subscribe(feed)

            await asyncio.gather(*(subscribe(s) for s in subs))

    async def _janus(self) -> _janus.JanusSession:
        import aiohttp

        self._http = aiohttp.ClientSession()
        self._janus_session = _janus.JanusSession(self._http, self.spec.url)
        await self._janus_session.create()
        return self._janus_session

    # ---- measuring

    def _received(self) -> list[tuple[int, int]]:
        if self.spec.peer == "ours":
            return [(c.stats.packets["video"], c.stats.packets["audio"]) for c in self._ours]
        return [(s.packets["video"], s.packets["audio"]) for s in self._janus_subs]

    def _pcs(self) -> list[Any]:
        pcs: list[Any] = [c.subscribe_pc for c in self._ours] + [c.publish_pc for c in self._ours]
        pcs += [s.pc for s in self._janus_subs]
        if self._janus_pub is not None:
            pcs.append(self._janus_pub.pc)
        return pcs

    def status(self) -> dict[str, Any]:
        receiving = sum(1 for v, a in self._received() if v > 0 and a > 0)
        if self.spec.rcvbuf and self.started and receiving == self.spec.count:
            self.rcvbuf = enlarge_receive_buffers(self._pcs(), self.spec.rcvbuf)
        return {
            "error": self.error,
            "started": self.started,
            "receiving": receiving,
            "feed_id": self.feed_id,
            "pid": os.getpid(),
            "rcvbuf": self.rcvbuf,
        }

    async def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": time.monotonic()}
        if self.spec.role == "subscribers":
            out["received"] = self._received()
            return out
        pc = self._ours[0].publish_pc if self._ours else None
        if pc is None and self._janus_pub is not None:
            pc = self._janus_pub.pc
        sent = {"video": 0, "audio": 0}
        if pc is not None:
            for sender in pc.getSenders():
                report = await sender.getStats()
                for stat in report.values():
                    if getattr(stat, "type", None) == "outbound-rtp":
                        sent[stat.kind] += int(stat.packetsSent)
        out["sent"] = sent
        out["frames"] = {t.kind: t.frames_sent for t in self._tracks}
        return out

    def pause(self, paused: bool) -> dict[str, Any]:
        for track in self._tracks:
            if paused:
                track.pause()
            else:
                track.resume()
        return {"t": time.monotonic()}

    async def close(self) -> None:
        closers = [c.close() for c in self._ours]
        closers += [s.close() for s in self._janus_subs]
        if self._janus_pub is not None:
            closers.append(self._janus_pub.close())
        await asyncio.gather(*closers, return_exceptions=True)
        for track in self._tracks:
            track.stop()
        if self._janus_session is not None:
            await self._janus_session.close()
        if self._http is not None:
            await self._http.close()


async def _worker(conn: Connection, spec: WorkerSpec) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[str, ...]] = asyncio.Queue()

    def readable() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            loop.remove_reader(conn.fileno())
            message = ("stop",)
        commands.put_nowait(message)

    loop.add_reader(conn.fileno(), readable)
    clients = Clients(spec)
    setup = loop.create_task(clients.start())
    try:
        while True:
            command = (await commands.get())[0]
            if command == "status":
                conn.send(clients.status())
            elif command == "snapshot":
                conn.send(await clients.snapshot())
            elif command in ("pause", "resume"):
                conn.send(clients.pause(command == "pause"))
            elif command == "stop":
                break
    finally:
        setup.cancel()
        with contextlib.suppress(BaseException):
            await setup
        with contextlib.suppress(Exception):
            await asyncio.wait_for(clients.close(), 10)
        with contextlib.suppress(Exception):
            conn.send({"stopped": True})


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a worker process (spawned)."""
    run_client_process(f"w{spec.index}", spec.log_level, lambda: _worker(conn, spec))


def run_client_process(
    label: str, log_level: int, main: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Run a client worker process's ``main`` (on uvloop when installed): Ctrl-C is left to
    the parent, logs go to stderr marked ``label``, aioice and aiortc only from warnings."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops us
    logging.basicConfig(
        stream=sys.stderr,
        level=log_level,
        format=f"%(asctime)s {label} %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(max(log_level, logging.WARNING))
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    except ImportError:
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


class Worker:
    def __init__(self, ctx: Any, spec: WorkerSpec) -> None:
        self.spec = spec
        self.conn, child = multiprocessing.Pipe()
        self.process = ctx.Process(
            target=worker_main, args=(child, spec), name=f"fanout-w{spec.index}", daemon=True
        )
        self.process.start()
        child.close()

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def ask(self, command: str, timeout: float = 10.0) -> dict[str, Any]:
        self.conn.send((command,))
        return self.receive(timeout)

    def receive(self, timeout: float) -> dict[str, Any]:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"worker {self.spec.index} did not answer within {timeout} s")
        reply: dict[str, Any] = self.conn.recv()
        return reply

    def stop(self, timeout: float = 12.0) -> None:
        if self.process.is_alive():
            with contextlib.suppress(Exception):
                self.conn.send(("stop",))
                self.receive(timeout)
            self.process.join(3)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(3)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(3)
        self.conn.close()


# --------------------------------------------------------------------------- targets


class Target:
    """An SFU under test: a subprocess on loopback."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str
    ready_url: str
    event_id = ""
    credential: str | None = None

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not http_ok(self.ready_url):
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not answer {self.ready_url}")
            time.sleep(0.1)

    def stop(self) -> None:
        proc = self.process
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{tail(self.log_path)}"
            )

    def worker_urls(self) -> list[str]:
        """Where the clients of each server worker join (worker 1 first)."""
        return [self.url]

    def worker_pids(self) -> list[int]:
        """The process of each server worker (worker 1 first)."""
        return [self.process.pid]

    def server_pids(self) -> list[int]:
        """Every process whose CPU counts as the server's."""
        return [self.process.pid]

    def pipe_packets(self) -> list[dict[str, int]]:
        """Each worker's ``webinar_pipe_packets_total`` by direction (none with one worker)."""
        return [{"out": 0, "in": 0} for _ in self.worker_pids()]

    def metrics_sends(self) -> int | None:
        """The server's own count of packets forwarded to subscribers since it started
        (``webinar_rtp_packets_forwarded_total`` of ``/metrics``, every worker), or None
        where there is no such counter (Janus)."""
        return None


# Passed on to the server (A/B runs of the native fan-out: WEBINAR_NATIVE_FANOUT=0 is the
# pure-Python path, WEBINAR_NATIVE_GSO=1 the native one with UDP GSO); no other WEBINAR_*.
PASSED_ENV = ("WEBINAR_NATIVE_FANOUT", "WEBINAR_NATIVE_GSO")


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBINAR_") or k in PASSED_ENV}
    env["WEBINAR_ICE_HOST_ADDRESSES"] = LOOPBACK  # gather ICE candidates on loopback only
    env["PYTHONUNBUFFERED"] = "1"
    env["WEBINAR_SIGNALLING_MAX_SOCKETS_PER_ADDRESS"] = "0"  # every subscriber is on loopback
    return env


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children of all its threads, recursively)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            with contextlib.suppress(OSError), open(f"/proc/{parent}/task/{task}/children") as f:
                kids = [int(p) for p in f.read().split()]
                found += kids
                todo += kids
    return found


def _free_port_run(count: int) -> int:
    """A port whose next ``count - 1`` ports are free too (the workers' direct ports)."""
    for _ in range(100):
        base = free_port()
        if base + count - 1 > 65535:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for k in range(1, count):
                    probe = stack.enter_context(socket.socket())
                    probe.bind((LOOPBACK, base + k))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} free ports in a row")


def _pinned(cpus: frozenset[int]) -> Callable[[], None]:
    def child() -> None:
        _die_with_parent()
        os.sched_setaffinity(0, cpus)

    return child


def _cpu_list(text: str) -> frozenset[int]:
    """``0-3,8`` -> {0, 1, 2, 3, 8}."""
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(cpus)


def create_event(env: dict[str, str], data_dir: Path, title: str) -> tuple[str, str]:
    """``webinar event create`` in ``data_dir`` (or the database ``env`` names): the event's
    ID and its presenter key."""
    created = subprocess.run(
        [
            *(sys.executable, "-m", "webinar", "event", "create"),
            *("--title", title, "--json", "--data-dir", str(data_dir)),
        ],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    event = json.loads(created.stdout)
    key = parse_qs(urlsplit(event["presenter_url"]).query)["key"][0]
    return str(event["event_id"]), key


def _fetch(url: str) -> str:
    with _HTTP.open(url, timeout=5) as response:
        return str(response.read().decode())


class OurServer(Target):
    name = "webinar server"

    def __init__(
        self, tmp: Path, workers: int | None = None, cpus: frozenset[int] | None = None
    ) -> None:
        """``workers`` None: the plain server as always; 1: the same, in its own folder
        (``--server-workers``); more: ``--workers N`` with a direct port per worker.
        ``cpus``: the server (and every process it starts) runs on these CPUs only."""
        self.workers = workers or 1
        if workers is not None:
            tmp = tmp / f"workers-{workers}"
            tmp.mkdir()
            self.name = f"webinar server ({workers} worker{'s' if workers > 1 else ''})"
        data_dir = tmp / "data"
        env = _server_env()
        extra: list[str] = []
        self.port_base: int | None = None
        if self.workers > 1:
            self.port_base = _free_port_run(self.workers)
            env["WEBINAR_SERVER_WORKER_PORT_BASE"] = str(self.port_base)
            extra = ["--workers", str(self.workers)]
        self.event_id, self.credential = create_event(env, data_dir, "Fanout benchmark")
        port = free_port()
        self.url = f"http://{LOOPBACK}:{port}"
        self.log_path = tmp / "server.log"
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "webinar", "serve", "--host", LOOPBACK),
                    *("--port", str(port), "--data-dir", str(data_dir), *extra),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if cpus is None else _pinned(cpus),
            )
        self.ready_url = self.url + "/healthz"
        self._worker_pids: list[int] = [self.process.pid]

    def wait_ready(self, timeout: float = 30.0) -> None:
        super().wait_ready(timeout)
        if self.workers == 1:
            return
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                # Every worker answers on its direct port and lists all of them.
                bodies = [json.loads(_fetch(u + "/healthz")) for u in self.worker_urls()]
                pids = {w["id"]: w["pid"] for w in bodies[0]["workers"]}
                if all(len(b["workers"]) == self.workers for b in bodies):
                    self._worker_pids = [pids[k] for k in range(1, self.workers + 1)]
                    return
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: not {self.workers} workers within {timeout} s")
            time.sleep(0.2)

    def worker_urls(self) -> list[str]:
        if self.port_base is None:
            return [self.url]
        return [f"http://{LOOPBACK}:{self.port_base + k}" for k in range(self.workers)]

    def worker_pids(self) -> list[int]:
        return list(self._worker_pids)

    def server_pids(self) -> list[int]:
        return [self.process.pid, *_descendants(self.process.pid)]

    def _own_samples(self) -> list[list[Sample]]:
        """Each worker's own samples of its ``/metrics`` (worker 1 first). A worker's own
        samples are fresh; the others' that it shows come from Redis (up to 1 s old), so
        each worker is read on its own direct port and only its own samples are kept."""
        out: list[list[Sample]] = []
        for k, url in enumerate(self.worker_urls(), 1):
            text = _fetch(url + "/metrics")
            out.append(
                [
                    s
                    for family in text_string_to_metric_families(text)
                    for s in family.samples
                    if s.labels.get("worker", str(k)) == str(k)  # no label: one process
                ]
            )
        return out

    def pipe_packets(self) -> list[dict[str, int]]:
        if self.workers == 1:
            return super().pipe_packets()
        out: list[dict[str, int]] = []
        for samples in self._own_samples():
            counts = {"out": 0, "in": 0}
            for s in samples:
                if s.name == "webinar_pipe_packets_total" and s.labels["direction"] in counts:
                    counts[s.labels["direction"]] = int(s.value)
            out.append(counts)
        return out

    def metrics_sends(self) -> int:
        return sum(
            int(s.value)
            for samples in self._own_samples()
            for s in samples
            if s.name == "webinar_rtp_packets_forwarded_total"
        )


class JanusServer(Target):
    def __init__(self, tmp: Path, event_loops: int | None, rtp_ports: tuple[int, int]) -> None:
        self.name = "janus" + (f" (event_loops={event_loops})" if event_loops else "")
        folder = tmp / ("janus-loops" if event_loops else "janus")
        port = free_port()
        _janus.write_config(folder, http_port=port, rtp_ports=rtp_ports, event_loops=event_loops)
        self.url = f"http://{LOOPBACK}:{port}/janus"
        self.log_path = folder / "janus.log"
        self.process = _janus.start_janus(folder, self.log_path, preexec_fn=_die_with_parent)
        self.ready_url = self.url + "/info"


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class Settings:
    subscribers: int
    seconds: float
    warmup: float
    drain: float
    workers: int
    join_concurrency: int
    rcvbuf: int
    interleave: bool
    setup_timeout: float
    log_level: int


def _wait_until(
    workers: list[Worker],
    target: Target,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float,
    what: str,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        target.check_alive()
        statuses = [w.ask("status") for w in workers]
        for w, status in zip(workers, statuses, strict=True):
            if status["error"]:
                raise RuntimeError(f"worker {w.spec.index}: {status['error']}")
        if done(statuses):
            return statuses
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s: {statuses}")
        time.sleep(0.2)


def run_load(
    target: Target,
    peer: Peer,
    clips: tuple[EncodedClip, EncodedClip],
    settings: Settings,
    ctx: Any,
    *,
    per_worker: bool = False,
) -> dict[str, Any]:
    """One load against ``target``. ``per_worker``: also the keys of ``--server-workers``
    (``server_workers``, ``per_worker``, ``relay_pps``, ``supervisor_redis_cpu``)."""
    n = settings.subscribers
    workers: list[Worker] = []
    began = time.monotonic()
    urls = target.worker_urls()
    server_workers = len(urls)
    try:
        publisher = Worker(
            ctx,
            WorkerSpec(
                index=0,
                role="publisher",
                peer=peer,
                url=urls[0],
                event_id=target.event_id,
                credential=target.credential,
                clips=clips,
                log_level=settings.log_level,
            ),
        )
        workers.append(publisher)
        status = _wait_until(
            [publisher], target, lambda s: bool(s[0]["started"]), 30, "the publisher did not start"
        )
        feed_id = status[0]["feed_id"]
        processes = max(1, min(settings.workers, n))
        subscriber_workers: list[Worker] = []
        first = 0
        specs: list[WorkerSpec] = []
        for i in range(processes):
            count = n // processes + (1 if i < n % processes else 0)
            stride = 1
            if settings.interleave:  # process i has subscribers i, i + P, i + 2P, ...
                first, stride, count = i, processes, len(range(i, n, processes))
            subscriber_workers.append(
                Worker(
                    ctx,
                    WorkerSpec(
                        index=i + 1,
                        role="subscribers",
                        peer=peer,
                        url=target.url,
                        urls=tuple(urls) if server_workers > 1 else (),
                        event_id=target.event_id,
                        count=count,
                        first=first,
                        stride=stride,
                        feed_id=feed_id,
                        join_concurrency=settings.join_concurrency,
                        rcvbuf=settings.rcvbuf,
                        log_level=settings.log_level,
                    ),
                )
            )
            specs.append(subscriber_workers[-1].spec)
            first += count
        workers.extend(subscriber_workers)
        ready = _wait_until(
            subscriber_workers,
            target,
            lambda s: sum(x["receiving"] for x in s) >= n,
            settings.setup_timeout,
            "not every subscriber received audio and video",
        )
        rcvbuf = min(x["rcvbuf"] for x in ready)
        setup_s = time.monotonic() - began
        log.info("%s: %d subscribers receive media after %.1f s", target.name, n, setup_s)
        time.sleep(settings.warmup)

        server_pids = target.server_pids()  # with workers: supervisor, workers, redis-server
        worker_pids = target.worker_pids()
        client_pids = [w.pid for w in workers]

        def snapshot() -> tuple[float, float, dict[str, Any], list[dict[str, Any]]]:
            """Pause the publisher, let in-flight packets arrive, then read every counter."""
            target.check_alive()
            paused_at = float(publisher.ask("pause")["t"])
            time.sleep(settings.drain)
            cpus = {p: cpu_seconds(p) for p in server_pids}
            for w in workers:
                w.conn.send(("snapshot",))
            other = {
                "clients": sum(cpu_seconds(p) for p in client_pids),
                "host": host_busy_seconds(),
                "sfu_drops": udp_drops(server_pids),
                "client_drops": udp_drops(client_pids),
                "workers": [cpus[p] for p in worker_pids],
                "pipes": target.pipe_packets() if per_worker else [],
                "metrics_sends": target.metrics_sends(),
            }
            return paused_at, sum(cpus.values()), other, [w.receive(10) for w in workers]

        _, cpu0, o0, s0 = snapshot()
        t0 = float(publisher.ask("resume")["t"])
        time.sleep(settings.seconds)
        t1, cpu1, o1, s1 = snapshot()
        rss = sum(rss_mb(p) for p in server_pids)
        load = os.getloadavg()[0]
    finally:
        for w in reversed(workers):
            w.stop()

    wall = t1 - t0
    sent = {k: s1[0]["sent"][k] - s0[0]["sent"][k] for k in ("video", "audio")}
    expected = sent["video"] + sent["audio"]
    received = [
        (v1 - v0, a1 - a0)
        for a, b in zip(s0[1:], s1[1:], strict=True)
        for (v0, a0), (v1, a1) in zip(a["received"], b["received"], strict=True)
    ]
    subscriber_ids = [spec.subscriber(i) for spec in specs for i in range(spec.count)]
    ratios = [(v + a) / expected if expected else 0.0 for v, a in received]
    forwarded = sum(v + a for v, a in received)
    cpu = cpu1 - cpu0
    sends = forwarded / cpu if cpu > 0 else float("inf")
    frames = {k: s1[0]["frames"][k] - s0[0]["frames"][k] for k in ("video", "audio")}
    out = {
        "subscribers": n,
        "seconds": settings.seconds,
        "publisher_pps": round(expected / wall, 1),
        "delivered_ratio": round(min(ratios), 5),
        "sfu_cpu": round(cpu / wall, 4),
        "sends_per_core_second": round(sends),
        "sfu_rss_mb": round(rss, 1),
        "median_subscriber_ratio": round(statistics.median(ratios), 5),
        "delivered_ratio_video": round(min(v / sent["video"] for v, _ in received), 5)
        if sent["video"]
        else 0.0,
        "delivered_ratio_audio": round(min(a / sent["audio"] for _, a in received), 5)
        if sent["audio"]
        else 0.0,
        "us_per_send": round(1e6 / sends, 2) if forwarded else None,
        "publisher_video_pps": round(sent["video"] / wall, 1),
        "publisher_audio_pps": round(sent["audio"] / wall, 1),
        "video_packets_per_frame": round(sent["video"] / frames["video"], 3)
        if frames["video"]
        else None,
        "forwarded_pps": round(forwarded / wall, 1),
        "client_cpu": round((o1["clients"] - o0["clients"]) / wall, 3),
        "host_cpu": round((o1["host"] - o0["host"]) / wall, 3),
        "other_cpu": round(
            (o1["host"] - o0["host"] - (o1["clients"] - o0["clients"]) - cpu) / wall, 3
        ),
        "loadavg_1m": round(load, 2),
        "sfu_udp_drops": int(o1["sfu_drops"] - o0["sfu_drops"]),
        "client_udp_drops": int(o1["client_drops"] - o0["client_drops"]),
        "client_processes": len(workers),
        "client_rcvbuf": rcvbuf,
        "window_s": round(wall, 3),
        "setup_s": round(setup_s, 1),
    }
    if o0["metrics_sends"] is not None and o1["metrics_sends"] is not None:
        # The server's own counter over the same window, against the subscribers' count.
        counted = o1["metrics_sends"] - o0["metrics_sends"]
        out["metrics_sends"] = counted
        out["metrics_sends_ratio"] = round(counted / forwarded, 5) if forwarded else None
    if not per_worker:
        return out
    # Subscriber g joined worker (g mod N) + 1.
    by_worker = [{"subscribers": 0, "sends": 0} for _ in range(server_workers)]
    for g, (v, a) in zip(subscriber_ids, received, strict=True):
        by_worker[g % server_workers]["subscribers"] += 1
        by_worker[g % server_workers]["sends"] += v + a
    worker_cpu = [c1 - c0 for c0, c1 in zip(o0["workers"], o1["workers"], strict=True)]
    relayed = sum(p1["out"] - p0["out"] for p0, p1 in zip(o0["pipes"], o1["pipes"], strict=True))
    out["server_workers"] = server_workers
    out["per_worker"] = [
        {
            "subscribers": w["subscribers"],
            "cpu": round(c, 3),
            "sends": w["sends"],
            "share": round(w["sends"] / forwarded, 4) if forwarded else 0.0,
            "sends_per_core_second": round(w["sends"] / c) if c > 0 else None,
        }
        for w, c in zip(by_worker, worker_cpu, strict=True)
    ]
    out["relay_pps"] = round(relayed / wall, 1)
    out["pipe_pps"] = [
        {d: round((p1[d] - p0[d]) / wall, 1) for d in ("in", "out")}
        for p0, p1 in zip(o0["pipes"], o1["pipes"], strict=True)
    ]
    # CPU in the pipes' own per-packet work, where the target reports it (cores).
    out["pipe_cpu"] = [
        round((p1.get("cpu", 0) - p0.get("cpu", 0)) / wall, 5)
        for p0, p1 in zip(o0["pipes"], o1["pipes"], strict=True)
    ]
    out["pipe_ingest_cpu"] = [
        round((p1.get("ingest", 0) - p0.get("ingest", 0)) / wall, 5)
        for p0, p1 in zip(o0["pipes"], o1["pipes"], strict=True)
    ]
    out["supervisor_redis_cpu"] = round((cpu - sum(worker_cpu)) / wall, 4)
    return out


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--subscribers", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0, help="measuring window")
    p.add_argument("--peer", choices=["janus"], help="also run the same load against Janus")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--bitrate", type=int, default=1_000_000, help="VP8 target, bit/s")
    p.add_argument("--keyframe-seconds", type=float, default=2.0)
    p.add_argument("--clip-seconds", type=float, default=4.0, help="length of the looped clip")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds after all receive media")
    p.add_argument(
        "--drain",
        type=float,
        default=1.0,
        help="seconds the publisher pauses before each reading, so no packet is in flight",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="subscriber processes (the publisher has its own)"
    )
    p.add_argument(
        "--client-layout",
        choices=["blocks", "interleaved"],
        default="blocks",
        help="which subscribers each client process holds: consecutive blocks, or every P-th "
        "(with as many client processes as server workers, each process then receives from "
        "one worker only)",
    )
    p.add_argument("--join-concurrency", type=int, default=8, help="joins in flight per worker")
    p.add_argument(
        "--client-rcvbuf",
        type=int,
        default=4 << 20,
        help="SO_RCVBUF of the subscribers' sockets (capped by net.core.rmem_max; 0: default)",
    )
    p.add_argument(
        "--janus-event-loops",
        type=int,
        default=2,
        help="with --peer janus: also run Janus with this event_loops (0: skip that run)",
    )
    p.add_argument("--janus-rtp-ports", default="20000-20999", help="Janus's RTP port range")
    p.add_argument("--skip-ours", action="store_true", help="with --peer janus: only run Janus")
    p.add_argument(
        "--server-workers",
        help="comma-separated worker counts (e.g. 1,2): run our server with each, in this order, "
        "subscribers spread evenly over the workers; results under by_workers",
    )
    p.add_argument(
        "--server-cpus",
        help="run our server on these CPUs only (e.g. 0-7; the clients stay where this script "
        "runs: pin it with taskset to other CPUs)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0)
    args = p.parse_args(argv)
    if args.subscribers < 1 or args.seconds <= 0 or args.workers < 1:
        p.error("--subscribers, --seconds and --workers must be positive")
    if args.skip_ours and args.peer != "janus":
        p.error("--skip-ours needs --peer janus")
    if args.server_workers is not None:
        try:
            counts = [int(x) for x in args.server_workers.split(",")]
        except ValueError:
            counts = []
        if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
            p.error("--server-workers takes distinct positive counts, e.g. 1,2")
        if args.peer or args.skip_ours:
            p.error("--server-workers runs our server only (no --peer)")
        args.server_workers = counts
    try:
        args.server_cpus = _cpu_list(args.server_cpus) if args.server_cpus else None
    except ValueError:
        p.error("--server-cpus takes a CPU list such as 0-3,8")
    return args


@contextlib.contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    def raise_exit(signum: int, frame: Any) -> None:
        log.error("terminated by signal %d, cleaning up", signum)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, raise_exit)
    # Ctrl-C must stop the run even when started from a shell that ignores SIGINT
    # for background jobs.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    level = logging.DEBUG if args.verbose > 1 else logging.INFO
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.peer == "janus":
        try:
            _janus.janus_binary()
            _janus.janus_lib_dir()
        except _janus.JanusError as exc:
            log.error("%s", exc)
            return 2
    lo, _, hi = args.janus_rtp_ports.partition("-")
    rtp_ports = (int(lo), int(hi))
    settings = Settings(
        subscribers=args.subscribers,
        seconds=args.seconds,
        warmup=args.warmup,
        drain=args.drain,
        workers=args.workers,
        join_concurrency=args.join_concurrency,
        rcvbuf=args.client_rcvbuf,
        interleave=args.client_layout == "interleaved",
        setup_timeout=30 + 0.5 * args.subscribers,
        log_level=logging.INFO if args.verbose else logging.WARNING,
    )
    ctx = multiprocessing.get_context("spawn")
    tmp = Path(tempfile.mkdtemp(prefix="webinar-fanout-"))
    targets: list[Target] = []
    result: dict[str, Any] = {}
    try:
        with _terminate_on_sigterm():
            t = time.monotonic()
            video = make_vp8_clip(
                width=args.width,
                height=args.height,
                fps=args.fps,
                seconds=args.clip_seconds,
                bitrate=args.bitrate,
                keyframe_interval=max(1, round(args.keyframe_seconds * args.fps)),
            )
            audio = make_opus_clip(seconds=args.clip_seconds)
            log.info(
                "clip: %dx%d %d fps, VP8 %.0f kbit/s measured, encoded in %.1f s",
                args.width,
                args.height,
                args.fps,
                video.bitrate_bps / 1000,
                time.monotonic() - t,
            )
            clips = (video, audio)

            def run(target: Target, peer: Peer, per_worker: bool = False) -> dict[str, Any]:
                targets.append(target)
                try:
                    target.wait_ready()
                    out = run_load(target, peer, clips, settings, ctx, per_worker=per_worker)
                    if out["other_cpu"] > NOISE_CPU:
                        log.warning(
                            "%s: other processes kept %.2f cores busy during the window: "
                            "the machine is not quiet, treat this run with suspicion",
                            target.name,
                            out["other_cpu"],
                        )
                    return out
                except Exception:
                    log.error("%s log (last lines):\n%s", target.name, tail(target.log_path))
                    raise
                finally:
                    target.stop()
                    targets.remove(target)

            if args.server_workers is not None:
                by_workers: dict[str, Any] = {}
                for count in args.server_workers:
                    by_workers[str(count)] = run(
                        OurServer(tmp, count, args.server_cpus), "ours", per_worker=True
                    )
                    log.info("%d worker(s): %s", count, json.dumps(by_workers[str(count)]))
                result = {
                    "subscribers": args.subscribers,
                    "seconds": args.seconds,
                    "server_workers": args.server_workers,
                    "by_workers": by_workers,
                }
                if "1" in by_workers:
                    one = by_workers["1"]["sends_per_core_second"]
                    for count in sorted(args.server_workers):
                        if count > 1:
                            many = by_workers[str(count)]["sends_per_core_second"]
                            result[f"efficiency_{count}_vs_1"] = round(many / one, 3)
            elif not args.skip_ours:
                result = run(OurServer(tmp, cpus=args.server_cpus), "ours")
                log.info("ours: %s", json.dumps(result))
            else:
                result = {"subscribers": args.subscribers, "seconds": args.seconds}
            result["video_bitrate_bps"] = video.bitrate_bps
            if args.peer == "janus":
                janus = run(JanusServer(tmp, None, rtp_ports), "janus")
                log.info("janus: %s", json.dumps(janus))
                result["janus"] = janus
                if not args.skip_ours:
                    result["ratio_sends_per_core_second"] = round(
                        result["sends_per_core_second"] / janus["sends_per_core_second"], 3
                    )
                if args.janus_event_loops > 0:
                    loops = run(JanusServer(tmp, args.janus_event_loops, rtp_ports), "janus")
                    loops["event_loops"] = args.janus_event_loops
                    log.info("janus event_loops: %s", json.dumps(loops))
                    result["janus_event_loops"] = loops
                    if not args.skip_ours:
                        result["ratio_sends_per_core_second_event_loops"] = round(
                            result["sends_per_core_second"] / loops["sends_per_core_second"], 3
                        )
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as exc:
        log.error("benchmark failed: %s", exc, exc_info=args.verbose > 0)
        return 1
    finally:
        for target in targets:
            target.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result), flush=True)
    return 0 if metrics_agree(result) else 1


#: ``metrics_sends_ratio`` within this: the server's /metrics counts what was forwarded.
METRICS_RATIO_RANGE = (0.98, 1.02)


def metrics_agree(result: dict[str, Any]) -> bool:
    """Every run's ``metrics_sends_ratio`` (ours; top level or under ``by_workers``) is
    within :data:`METRICS_RATIO_RANGE`; logs each one that is not."""
    runs = [result, *result.get("by_workers", {}).values()]
    ok = True
    lo, hi = METRICS_RATIO_RANGE
    for run in runs:
        ratio = run.get("metrics_sends_ratio")
        if "metrics_sends" in run and (ratio is None or not lo <= ratio <= hi):
            log.error(
                "/metrics counted %s packets forwarded in the window: %s times what the "
                "subscribers received (expected %.2f-%.2f)",
                run["metrics_sends"],
                ratio,
                lo,
                hi,
            )
            ok = False
    return ok


if __name__ == "__main__":
    sys.exit(main())
