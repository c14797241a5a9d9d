#!/usr/bin/env python3
"""Rates between two lines of a ``STAGE_COSTS_OUT`` file (see ``sitecustomize.py``).

    python benchmarks/stage_costs/summarize.py costs.jsonl [--from 4] [--to 12]

By default from the line 4 (8 s after the server started: ``fanout.py``'s window begins
~7 s in) to 8 lines later (16 s). One JSON line: ``seconds``, ``main_thread_ms_per_s``, and
per stage ``calls_per_s``, ``ms_per_s`` (CPU), ``us_per_call``, most expensive first; the
native fan-out's ``sent_per_s`` and ``calls_per_s``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("path")
    p.add_argument("--from", dest="first", type=int, default=4)
    p.add_argument("--to", dest="last", type=int, default=None)
    args = p.parse_args()
    with open(args.path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    last = args.last if args.last is not None else args.first + 8
    if not 0 <= args.first < last < len(lines):
        sys.exit(f"need lines {args.first}..{last}; the file has {len(lines)}")
    a, b = lines[args.first], lines[last]
    dt = b["t"] - a["t"]
    stages: dict[str, Any] = {}
    for key, (calls, ns) in b["stages"].items():
        c0, n0 = a["stages"].get(key, [0, 0])
        if calls > c0:
            stages[key] = {
                "calls_per_s": round((calls - c0) / dt, 1),
                "ms_per_s": round((ns - n0) / 1e6 / dt, 2),
                "us_per_call": round((ns - n0) / 1e3 / (calls - c0), 2),
            }
    ordered = dict(sorted(stages.items(), key=lambda kv: -kv[1]["ms_per_s"]))
    na, nb = a.get("native") or {}, b.get("native") or {}
    result = {
        "seconds": round(dt, 1),
        "main_thread_ms_per_s": round((b["main_cpu_ns"] - a["main_cpu_ns"]) / 1e6 / dt, 1),
        "stages": ordered,
        "native_sent_per_s": round((nb.get("sent", 0) - na.get("sent", 0)) / dt, 1),
        "native_calls_per_s": round((nb.get("calls", 0) - na.get("calls", 0)) / dt, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
