"""The native fan-out (``_fanout.c``): building it, loading it, and the switch to the
pure-Python path.

``pip install`` (editable or wheel) compiles ``_fanout.c`` with the system C compiler
(``hatch_build.py`` calls :func:`build`); without a compiler it warns and the SFU forwards
in Python. In a source tree, ``python -m webinar.sfu.native build`` compiles it in place.
``WEBINAR_NATIVE_FANOUT=0`` in the environment turns the native path off (the tests run
both paths); :func:`use` switches it at run time.

This module imports nothing of the SFU at import time, so the build hook can load it from
the source tree without the package's dependencies.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("_fanout.c")
ENV = "WEBINAR_NATIVE_FANOUT"

Forward = Callable[[list[Any], tuple[Any, ...]], tuple[Any, ...]]

_module: Any = None
_forward: Forward | None = None
_loaded = False
_chosen = False


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


def enabled_by_env() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in {"0", "no", "off", "false"}


def _load() -> Any:
    """Import and set up the compiled module; ``None`` when absent or unusable."""
    global _module, _loaded
    if _loaded:
        return _module
    _loaded = True
    try:
        module = importlib.import_module("webinar.sfu._fanout")
    except ImportError:
        return None
    from pylibsrtp._binding import ffi, lib

    from . import _aiortc
    from .consumer import Consumer

    address = int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect")))
    module.setup(address, Consumer, _aiortc.CONNECTED)
    _module = module
    return module


def use(on: bool) -> bool:
    """Turn the native path on (if it is built) or off; returns whether it is on."""
    global _forward, _chosen
    module = _load() if on else None
    _forward = module.forward if module is not None else None
    _chosen = True
    return _forward is not None


def forward() -> Forward | None:
    """The native ``forward(batch, consumers) -> left to Python``, or ``None`` (not built,
    or off: ``WEBINAR_NATIVE_FANOUT=0``, :func:`use`)."""
    if not _chosen:
        use(enabled_by_env())
    return _forward


def module() -> Any:
    """The loaded compiled module (``counters()``, ``rewrite()``), or ``None``."""
    return _load()


def main(argv: list[str]) -> int:
    """``build``: compile in place; ``build --if-stale``: only when missing or older than
    the source."""
    if argv[:1] != ["build"] or argv[1:] not in ([], ["--if-stale"]):
        print("usage: python -m webinar.sfu.native build [--if-stale]", file=sys.stderr)
        return 2
    if argv[1:] == ["--if-stale"] and not stale():
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
