"""Every explicit transaction in src/ takes the write lock at once (``immediate=True``).

Several worker processes share the SQLite file: a deferred transaction that reads and then
writes fails at once with SQLITE_BUSY when another process wrote in between (the busy
handler cannot help it; benchmarks/store_contention.py showed 118 such failures in 1,000
joins from two processes before this rule). Every transaction here writes, so each must be
``BEGIN IMMEDIATE``; a read-only one would need a comment and an entry below.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "webinar"


def test_every_transaction_is_immediate() -> None:
    deferred: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id != "transaction":
                continue
            immediate = any(
                k.arg == "immediate" and isinstance(k.value, ast.Constant) and k.value.value
                for k in node.keywords
            )
            if not immediate:
                deferred.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert deferred == [], "write transactions must be transaction(conn, immediate=True)"
