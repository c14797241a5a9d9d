"""The package map of docs/architecture.md, enforced: every import of ``webinar.*`` in ``src/``
must point along the map (down a layer, or within its own package), never up or across.

The checker reads imports with :mod:`ast` (no module is imported), so a forbidden import fails
here even where it would never run, e.g. under ``TYPE_CHECKING`` or inside a function.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# Leaves: small modules anything may use; they import only other leaves.
LEAVES = frozenset(
    {"config", "ids", "tasks", "logs", "tls", "turn", "accounts", "links", "formats", "i18n"}
)
# Features: services that own a kind of data (and its SQL); below http/ and signalling/.
FEATURES = frozenset(
    {
        "storage",
        "ticketing",
        "interaction",
        "recordings",
        "attendance",
        "webhooks",
        "content",
        "followup",
        "broadcast",
    }
)
# Boot: wire everything together; may import anything.
BOOT = frozenset({"__init__", "__main__", "cli", "server", "app"})

# What each unit may import (besides itself and the leaves). A unit is a top-level package
# or module of webinar/. Read it as the layer map: http -> features -> rooms -> sfu.
ALLOWED: dict[str, frozenset[str]] = {
    "sfu": frozenset(),
    "client": frozenset({"sfu"}),  # the test and benchmark WebRTC client
    "rooms": frozenset({"sfu"}),
    "storage": frozenset(),
    # Workers on one machine: Redis, the supervisor, the worker registry and bus, media pipes.
    "cluster": frozenset({"sfu"}),
    "ticketing": frozenset({"storage", "rooms"}),
    "interaction": frozenset({"storage", "rooms", "attendance"}),
    "attendance": frozenset({"storage", "rooms"}),
    "recordings": frozenset({"storage", "rooms", "sfu"}),
    "webhooks": frozenset({"storage", "rooms"}),
    "content": frozenset({"storage", "rooms"}),
    # The stage as one picture (compositor, encoder, recording/RTMP/HLS outputs): it consumes
    # the room's media like a subscriber and follows its stage and mode.
    "broadcast": frozenset({"storage", "rooms", "sfu", "content"}),
    # After the event: when it ended (attendance), the thank-you e-mail (ticketing's mailer)
    # with the recording's link (recordings) and the rating link (attendance).
    "followup": frozenset({"storage", "rooms", "attendance", "ticketing", "recordings"}),
    # Signalling reads event records but writes nothing itself: the services do.
    "signalling": frozenset(
        {
            "rooms",
            "sfu",
            "cluster",
            "ticketing",
            "interaction",
            "attendance",
            "content",
            "storage.records",
        }
    ),
    "http": frozenset({"rooms", "sfu", "cluster", *FEATURES}),
}
# Leaves may import storage for its record types (links builds URLs from an Event).
LEAF_ALLOWED: dict[str, frozenset[str]] = {"links": frozenset({"storage"})}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    source: str
    target: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} may not import webinar.{self.target}"


def unit_of(parts: tuple[str, ...]) -> str:
    """The unit of a module path relative to the webinar package, e.g. ('sfu', 'rtp')."""
    head = parts[0]
    return head[:-3] if head.endswith(".py") else head


def _targets(tree: ast.Module, module: tuple[str, ...]) -> list[tuple[int, str]]:
    """(line, dotted name under webinar) of every import of the project's own code."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("webinar."):
                    found.append((node.lineno, alias.name.removeprefix("webinar.")))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(module[: len(module) - node.level])
                name = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and (node.module == "webinar" or node.module.startswith("webinar.")):
                name = node.module.removeprefix("webinar").removeprefix(".")
            else:
                continue
            if name:
                found.append((node.lineno, name))
            else:  # from webinar import x, y: each name is a unit
                found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def check(root: Path) -> list[Violation]:
    """Every import against the map, for the package at ``root`` (a ``webinar`` folder)."""
    violations: list[Violation] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        source = unit_of(rel)
        module = (*rel[:-1], rel[-1][:-3])
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, name in _targets(tree, module):
            target = name.split(".")[0]
            if target.startswith("__"):  # the package's face: __version__
                target = "__init__"
            if target == source or target == "__init__" or source in BOOT:
                continue
            if source in LEAVES:
                ok = target in LEAVES or target in LEAF_ALLOWED.get(source, frozenset())
            elif source in ALLOWED:
                ok = target in LEAVES or any(
                    name == entry or name.startswith(entry + ".") for entry in ALLOWED[source]
                )
            else:
                ok = False  # a new top-level unit must be placed on the map first
            if not ok:
                rel_path = path.relative_to(root.parent).as_posix()
                violations.append(Violation(rel_path, line, source, name))
    return violations


def test_every_import_follows_the_layer_map() -> None:
    # not vacuous: the package is where the map looks (no files, no violations)
    assert len(list((SRC / "webinar").rglob("*.py"))) >= 50, SRC
    violations = check(SRC / "webinar")
    assert not violations, "imports against docs/architecture.md:\n" + "\n".join(
        map(str, violations)
    )


def test_every_top_level_unit_is_on_the_map() -> None:
    units = {unit_of(p.relative_to(SRC / "webinar").parts) for p in (SRC / "webinar").iterdir()}
    units -= {"py.typed", "__pycache__", "web"}
    assert {"app", "rooms", "signalling", "http"} <= units, units
    unplaced = units - LEAVES - BOOT - set(ALLOWED)
    assert not unplaced, f"place these in docs/architecture.md and on the map: {unplaced}"
    assert len([u for u in units if u in LEAVES | BOOT]) <= 15


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "webinar"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("sfu/router.py", "from webinar.http import x\n"),
        ("sfu/router.py", "from webinar.rooms.state import RoomState\n"),
        ("sfu/router.py", "import webinar.signalling.session\n"),
        ("sfu/router.py", "def f():\n    from webinar.http import x\n"),
        ("rooms/live.py", "from webinar.http import x\n"),
        ("rooms/live.py", "from webinar import storage\n"),
        ("rooms/live.py", "from ..storage import store\n"),
        ("interaction/service.py", "from webinar.signalling import schema\n"),
        ("signalling/session.py", "from webinar.storage.store import Store\n"),
        ("signalling/session.py", "from webinar import storage\n"),
        ("ticketing/gate.py", "from webinar.http.dashboard import Dashboard\n"),
        ("http/pages.py", "from webinar.signalling.interaction import deliver\n"),
        ("ids.py", "from webinar.rooms import state\n"),
        ("newthing.py", "from webinar import ids\n"),
    ],
)
def test_the_checker_finds_an_upward_import(tmp_path: Path, name: str, text: str) -> None:
    """A synthetic tree: the checker is not vacuous, it names the file and the line."""
    root = _tree(tmp_path, {"ids.py": "", "sfu/__init__.py": "", name: "import os\n" + text})
    found = check(root)
    assert len(found) == 1, found
    assert found[0].path == f"webinar/{name}"
    assert found[0].line == text.count("\n") + 1  # below the "import os" line


def test_the_checker_allows_imports_down_the_map(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "sfu/router.py": "from webinar.sfu.rtp import x\nfrom webinar.tasks import y\n",
            "rooms/live.py": "from webinar.sfu import Router\nfrom .state import s\n",
            "http/pages.py": "from webinar.interaction import store\nfrom webinar.rooms import x\n",
            "app.py": "from webinar.http import pages\nfrom webinar.signalling import ws\n",
        },
    )
    assert check(root) == []
