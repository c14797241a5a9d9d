"""The container image: `docker build` of the Dockerfile, then the container runs `webinar
serve` as its unprivileged user, turns healthy through its HEALTHCHECK and answers /healthz.

Needs a Docker engine (`docker info` answers); skipped with a message where none runs. The
requests go through `docker exec` inside the container, so the test works from a private
network namespace too."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


@pytest.fixture(scope="module")
def engine() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on this machine")
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("no Docker engine runs here (`docker info` did not answer)")
    if info.returncode != 0 or not info.stdout.strip():
        pytest.skip(
            "no Docker engine runs here (`docker info`: "
            f"{(info.stderr or info.stdout).strip().splitlines()[-1:]}); the image is built and"
            " run where one does"
        )


@pytest.fixture(scope="module")
def image(engine: None) -> Iterator[str]:
    tag = f"webinar-server-test:{secrets.token_hex(4)}"
    built = docker("build", "--pull=false", "-t", tag, str(ROOT), timeout=1800, check=False)
    assert built.returncode == 0, built.stderr[-4000:]
    yield tag
    docker("image", "rm", "-f", tag, check=False)


def test_image_serves_and_is_healthy(image: str) -> None:
    name = f"webinar-test-{secrets.token_hex(4)}"
    docker(
        *("run", "-d", "--name", name),
        # The image's HEALTHCHECK, only more often than every 30 s.
        *("--health-interval", "2s", "--health-start-period", "60s"),
        image,
    )
    try:
        deadline = time.monotonic() + 180
        status = ""
        while time.monotonic() < deadline:
            status = docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
            running = docker("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            if status == "healthy" or running != "true":
                break
            time.sleep(1)
        logs = docker("logs", name, check=False)
        assert status == "healthy", logs.stdout[-3000:] + logs.stderr[-3000:]

        # Inside: the unprivileged user, the data volume, and /healthz on 0.0.0.0:8080.
        assert docker("exec", name, "id", "-u").stdout.strip() == "10001"
        probe = docker(
            "exec",
            name,
            "python",
            "-c",
            "import json, urllib.request;"
            " r = urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=5);"
            " print(r.status); print(r.read().decode())",
        )
        status_line, body = probe.stdout.split("\n", 1)
        assert status_line == "200"
        health = json.loads(body)
        assert health["worker"] == 0
        # The first start made the demo event in the volume; the CLI in the image sees it.
        events = json.loads(docker("exec", name, "webinar", "event", "list", "--json").stdout)
        assert [e["title"] for e in events] == ["Demo webinar"]
        data = docker("exec", name, "ls", "-a", "/var/lib/webinar").stdout.split()
        assert "webinar.sqlite3" in data and "secrets.key" in data
        assert docker("exec", name, "webinar", "healthcheck").stdout.strip().endswith(": OK")

        # SIGTERM drains and exits 0 (no room is live).
        docker("stop", "-t", "90", name, timeout=120)
        code = docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "0"
    finally:
        docker("rm", "-f", "-v", name, check=False)
