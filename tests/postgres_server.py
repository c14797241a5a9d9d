"""A real PostgreSQL server (Debian's ``postgresql`` package; ``scripts/test`` installs it).

:class:`PostgresServer` runs ``initdb`` into a fresh folder under /tmp and starts ``postgres``
listening only on a Unix socket in that folder (no TCP: it works inside the tests' network
namespace, and two runs never share a port). initdb and postgres refuse to run as root, so as
root they run as the ``postgres`` user the package made, the folder chowned to it.

* ``postgres_server`` (session-scoped) is one server for the whole run, started on first use:
  initdb costs about a second. ``postgres_url`` gives each test a fresh empty database on it.
* ``own_postgres`` is a server of the test's own, for tests that ``stop()`` and ``start()`` it.
* ``WEBINAR_TEST_DATABASE=postgresql`` makes ``tests.helpers.make_config`` give every server
  the tests start a database of its own on the shared server (:func:`database_for_tests`), to run
  the protocol suite against PostgreSQL: ``WEBINAR_TEST_DATABASE=postgresql pytest tests/protocol``.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
_PORT = 5432  # the socket's name (.s.PGSQL.5432) in the server's private folder
_names = itertools.count(1)


def _bin(name: str) -> str:
    for folder in BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the Debian package postgresql")
    return found


class PostgresServer:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pg-test-"))
        self.data = self.folder / "data"
        self._proc: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        subprocess.run(
            [
                _bin("initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                "postgres",
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            **self._as,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.folder}&port={_PORT}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, within: float = 30.0) -> None:
        if self.running:
            return
        with open(self.folder / "postgres.log", "ab") as log:  # the child keeps its own copy
            self._proc = self._popen(log)
        deadline = time.monotonic() + within
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (self.folder / "postgres.log").read_text(errors="replace")
                    raise RuntimeError(f"postgres did not start:\n{log_text[-2000:]}") from None
                time.sleep(0.05)

    def _popen(self, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                _bin("postgres"),
                "-D",
                str(self.data),
                "-k",
                str(self.folder),
                "-p",
                str(_PORT),
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            **self._as,
        )

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when the server is restarted."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(2)  # SIGINT: PostgreSQL's fast shutdown
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def create_database(self) -> str:
        """A fresh empty database; its URL."""
        name = f"test_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


_shared: PostgresServer | None = None


def shared_server() -> PostgresServer:
    """The run's one server, started on first use and stopped when the run ends."""
    global _shared
    if _shared is None:
        server = PostgresServer()
        server.start()
        _shared = server
    return _shared


def close_shared_server() -> None:
    global _shared
    if _shared is not None:
        _shared.close()
        _shared = None


_databases: dict[Path, str] = {}


def ensure_key(data_dir: Path) -> None:
    """Give the install at ``data_dir`` a secrets key file if it has none (a store on
    PostgreSQL never makes one: the nodes of a cluster must share one)."""
    from webinar.storage import sealing

    path = sealing.key_path(data_dir)
    if not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        sealing.write_key_file(path, [sealing.new_key()])


def database_for_tests(data_dir: Path) -> str | None:
    """With ``WEBINAR_TEST_DATABASE=postgresql``, the database of the install at ``data_dir``
    (a fresh one the first time: a server started again on the same folder finds its data);
    else None (the SQLite file in the folder)."""
    wanted = os.environ.get("WEBINAR_TEST_DATABASE", "sqlite")
    if wanted == "sqlite":
        return None
    if wanted != "postgresql":
        raise RuntimeError(f"WEBINAR_TEST_DATABASE must be sqlite or postgresql, not {wanted!r}")
    ensure_key(data_dir)
    key = data_dir.resolve()
    if key not in _databases:
        _databases[key] = shared_server().create_database()
    return _databases[key]


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    return shared_server()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh empty database on the run's server."""
    return postgres_server.create_database()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of the test's own (to stop and start), with one database ``webinar``."""
    server = PostgresServer()
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE webinar")
        yield server
    finally:
        server.close()
