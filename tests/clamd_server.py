"""A real ClamAV daemon (Debian's ``clamav-daemon``; ``scripts/test`` installs it) for tests.

Started in the test's temporary folder with its own ``clamd.conf``: in the foreground, on a
Unix socket, with a database folder holding only signature files the fixture writes itself
(the EICAR test string as an ``.hdb`` hash and as an ``.ndb`` body signature, so it is found
inside any file, a PDF too). Nothing is downloaded; clamd starts in a second or two because
its database is two lines.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CLAMD = "/usr/sbin/clamd"
#: The industry's harmless test file (https://www.eicar.org): every scanner reports it.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Eicar-Test"


@dataclass
class ClamdServer:
    socket: Path
    process: subprocess.Popen[bytes]
    log: Path


def _pong(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(path))
            s.sendall(b"zPING\0")
            return s.recv(16) == b"PONG\0"
    except OSError:
        return False


@pytest.fixture
def clamd_server(tmp_path: Path) -> Iterator[ClamdServer]:
    if shutil.which(CLAMD) is None and not Path(CLAMD).exists():
        pytest.fail(f"{CLAMD} is missing: install Debian's clamav-daemon (scripts/test does)")
    folder = tmp_path / "clamd"
    db = folder / "db"
    temp = folder / "tmp"
    db.mkdir(parents=True)
    temp.mkdir()
    (db / "test.hdb").write_text(
        f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:{SIGNATURE}\n", encoding="ascii"
    )
    (db / "test.ndb").write_text(f"{SIGNATURE}-Body:0:*:{EICAR.hex()}\n", encoding="ascii")
    sock = folder / "clamd.sock"
    log = folder / "clamd.log"
    conf = folder / "clamd.conf"
    conf.write_text(
        "\n".join(
            [
                "Foreground yes",
                f"LocalSocket {sock}",
                f"DatabaseDirectory {db}",
                f"TemporaryDirectory {temp}",
                f"LogFile {log}",
                "StreamMaxLength 64M",
                "MaxThreads 4",
                "",
            ]
        ),
        encoding="ascii",
    )
    errors = folder / "clamd.stderr"
    with errors.open("wb") as err_out:
        process = subprocess.Popen(
            [CLAMD, f"--config-file={conf}"], stdout=subprocess.DEVNULL, stderr=err_out
        )
    try:
        deadline = time.monotonic() + 60
        while not _pong(sock):
            if process.poll() is not None:
                err = errors.read_text(errors="replace")
                text = log.read_text() if log.exists() else ""
                pytest.fail(f"clamd exited ({process.returncode}): {err}\n{text}")
            if time.monotonic() > deadline:
                pytest.fail("clamd did not answer PING within 60 s")
            time.sleep(0.1)
        yield ClamdServer(sock, process, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
