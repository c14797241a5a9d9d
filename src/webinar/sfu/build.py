"""Compiling the SFU's native fan-out (``_fanout.c``) with the system C compiler.

``python -m webinar.sfu.build`` compiles it in place (``--if-stale``: only when the module
is missing or older than its source); ``hatch_build.py`` loads this file from the source
tree on ``pip install``. Standard library only: it runs before the package's dependencies
are installed. Loading and switching: :mod:`webinar.sfu.native`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

SOURCE = Path(__file__).with_name("_fanout.c")


def target(directory: Path | None = None) -> Path:
    """Where the compiled module goes: beside its source, with this Python's suffix."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    return (directory or SOURCE.parent) / f"_fanout{suffix}"


def compiler() -> str | None:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    name = cc.split()[0] if cc.split() else "cc"
    if shutil.which(name) is None:
        name = "cc"
    return shutil.which(name)


def build(source: Path = SOURCE, out: Path | None = None) -> Path:
    """Compile ``source`` into ``out`` (default :func:`target`); raises on failure."""
    out = out or target(source.parent)
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler (cc) found")
    include = sysconfig.get_paths()["include"]
    tmp = out.with_name(out.name + ".tmp")
    cmd = [
        cc,
        "-shared",
        "-fPIC",
        "-O2",
        "-Wall",
        "-fno-strict-aliasing",
        f"-I{include}",
        str(source),
        "-o",
        str(tmp),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    tmp.replace(out)  # atomic: a running process keeps the old mapping
    return out


def stale() -> bool:
    """The compiled module is missing or older than its source."""
    out = target()
    return not out.exists() or out.stat().st_mtime < SOURCE.stat().st_mtime


def main(argv: list[str]) -> int:
    """Compile in place; ``--if-stale``: only when missing or older than the source."""
    if argv not in ([], ["--if-stale"]):
        print("usage: python -m webinar.sfu.build [--if-stale]", file=sys.stderr)
        return 2
    if argv == ["--if-stale"] and not stale():
        print(target())
        return 0
    try:
        out = build()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        print(f"native fan-out not built: {exc}\n{detail}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
