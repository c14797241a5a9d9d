"""benchmarks/sendpath.py runs and prints its one JSON line (its keys are a contract)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sendpath_prints_one_json_line_and_delivers_everything() -> None:
    for order, native in (("packet", False), ("consumer", False), ("packet", True)):
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "sendpath.py"),
                "--consumers",
                "4",
                "--frames",
                "20",
                "--gap",
                "0.001",
                "--order",
                order,
                *(["--native"] if native else []),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        lines = out.stdout.strip().splitlines()
        assert len(lines) == 1, out.stdout
        result = json.loads(lines[0])
        assert result["order"] == order
        assert result["native"] is native
        # the native run must have taken the native path, not handed everything back
        assert result["native_sent"] == (result["sends"] if native else 0)
        assert result["sends"] == 4 * 20 * 4
        assert result["sent_ok"] == result["sends"]
        assert result["received"] == result["sends"]  # every packet reached its socket
        assert result["us_per_send"] > 0
