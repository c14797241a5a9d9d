"""The worker identity the supervisor passes, the UDP range split, merged metrics, and a
worker outliving its supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from webinar import server
from webinar.cluster import worker
from webinar.cluster.registry import WorkerInfo, merge_metrics
from webinar.cluster.worker import WorkerError, WorkerIdentity


def test_no_variables_is_the_single_process_server() -> None:
    identity = worker.current({})
    assert identity == worker.SINGLE
    assert (identity.worker_id, identity.workers, identity.redis_url) == (0, 1, None)
    assert not identity.clustered
    assert identity.runs_jobs


def test_identity_round_trips_through_the_environment() -> None:
    identity = WorkerIdentity(
        worker_id=2,
        workers=3,
        redis_url="unix:///tmp/r.sock",
        pipe_host="127.0.0.1",
        direct_port=9101,
        udp_port_min=40500,
        udp_port_max=40999,
    )
    assert worker.current(identity.to_env()) == identity
    assert identity.clustered
    assert not identity.runs_jobs
    assert WorkerIdentity(worker_id=1, workers=3).runs_jobs


@pytest.mark.parametrize(
    "env",
    [
        {"WEBINAR_WORKER_ID": "x", "WEBINAR_WORKERS": "2"},
        {"WEBINAR_WORKER_ID": "3", "WEBINAR_WORKERS": "2"},
        {"WEBINAR_WORKER_ID": "1", "WEBINAR_WORKERS": "2", "WEBINAR_WORKER_UDP_MIN": "4000"},
    ],
)
def test_inconsistent_variables_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(WorkerError):
        worker.current(env)


def test_udp_range_split_covers_it_without_overlap() -> None:
    assert worker.split_udp_range(None, None, 2) == [None, None]
    assert worker.split_udp_range(40000, 40999, 2) == [(40000, 40499), (40500, 40999)]
    shares = worker.split_udp_range(40000, 40010, 3)
    assert shares == [(40000, 40003), (40004, 40007), (40008, 40010)]
    with pytest.raises(ValueError, match="fewer than the 3 workers"):
        worker.split_udp_range(40000, 40001, 3)


def test_direct_ports() -> None:
    assert worker.direct_port(None, 1) is None
    assert [worker.direct_port(9100, k) for k in (1, 2)] == [9100, 9101]
    with pytest.raises(ValueError):
        worker.direct_port(65535, 2)


def test_worker_info_json_round_trip() -> None:
    info = WorkerInfo(
        worker_id=1, pid=7, rooms=2, connections=3, port=None, pipe_host="::1", started_at=1.5
    )
    assert WorkerInfo.from_json(info.to_json()) == info


def test_merged_metrics_label_every_sample_with_its_worker() -> None:
    one = (
        "# HELP webinar_rooms Live rooms.\n# TYPE webinar_rooms gauge\nwebinar_rooms 1\n"
        "# HELP webinar_errors_total Errors.\n# TYPE webinar_errors_total counter\n"
        'webinar_errors_total{code="a"} 4\n'
        "# HELP h A histogram.\n# TYPE h histogram\n"
        'h_bucket{le="+Inf"} 2\nh_sum 5\nh_count 2\n'
    )
    two = one.replace("webinar_rooms 1", "webinar_rooms 3").replace("} 4", "} 9")
    merged = merge_metrics({2: two, 1: one})
    assert merged.count("# TYPE webinar_rooms gauge") == 1
    assert merged.splitlines()[:4] == [
        "# HELP webinar_rooms Live rooms.",
        "# TYPE webinar_rooms gauge",
        'webinar_rooms{worker="1"} 1',
        'webinar_rooms{worker="2"} 3',
    ]
    assert 'webinar_errors_total{worker="2",code="a"} 9' in merged
    assert 'h_bucket{worker="1",le="+Inf"} 2' in merged
    assert 'h_count{worker="2"} 2' in merged
    lines = merged.splitlines()  # each family: its header, then its samples, worker by worker
    assert lines.index("# TYPE h histogram") < lines.index('h_sum{worker="1"} 5')
    assert lines.index('h_count{worker="1"} 2') < lines.index('h_bucket{worker="2",le="+Inf"} 2')


def test_an_orphaned_worker_ends_even_if_its_stop_hangs(tmp_path: Path) -> None:
    """The supervisor dies; the worker's stop hangs (here: it ignores every signal and sleeps).
    The parent watch ends it within ORPHAN_LIMIT, so nothing keeps the shared port."""
    pid_file = tmp_path / "worker.pid"
    worker_code = (
        "import os, signal, sys, time\n"
        "from webinar import server\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "server._exit_when_orphaned(os.getppid())\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    # the "supervisor": starts the worker, waits until it is watching, and dies
    supervisor_code = (
        "import os, subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {worker_code!r}])\n"
        f"while not os.path.exists({str(pid_file)!r}): time.sleep(0.05)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", supervisor_code], check=True, timeout=30)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + server.ORPHAN_LIMIT + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":  # exited, not yet reaped by whoever adopted it
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("the orphaned worker was still running")
