"""Server logs: readable lines or one JSON object a line, with room and participant IDs.

The IDs come from context variables that the signalling connection sets (its task and every
task it starts inherit them), or from ``extra={"room_id": ..., "participant_id": ...}`` on a
single call. JSON records carry ``ts`` (ISO-8601 UTC), ``level``, ``logger``, ``msg`` and,
when known, ``room_id``, ``participant_id``, ``client`` (the client's address) and ``exc``.
With several workers (``webinar serve --workers N``) every record also carries ``worker``:
1..N, or 0 for the supervisor; the single-process server leaves it out.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from webinar.config import LogConfig

room_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("room_id", default=None)
participant_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "participant_id", default=None
)
client_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("client", default=None)

_CONTEXT_FIELDS = (
    ("room_id", room_id_var),
    ("participant_id", participant_id_var),
    ("client", client_var),
)


def bind(
    *, room_id: str | None = None, participant_id: str | None = None, client: str | None = None
) -> None:
    """Name the room/participant/client in every later log line of this task (and its children)."""
    if room_id is not None:
        room_id_var.set(room_id)
    if participant_id is not None:
        participant_id_var.set(participant_id)
    if client is not None:
        client_var.set(client)


#: This process's worker ID in every record (None: the single-process server, no field).
_worker: int | None = None


def _context(record: logging.LogRecord) -> dict[str, str]:
    found: dict[str, str] = {}
    if _worker is not None:
        found["worker"] = str(_worker)
    for name, var in _CONTEXT_FIELDS:
        value = getattr(record, name, None) or var.get()
        if value:
            found[name] = str(value)
    return found


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_context(record))
        if _worker is not None:
            entry["worker"] = _worker
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context(record)
        if context:
            first, sep, rest = line.partition("\n")
            tags = " ".join(f"{k}={v}" for k, v in context.items())
            line = f"{first} [{tags}]{sep}{rest}"
        return line


def configure(config: LogConfig, *, worker: int | None = None) -> None:
    """Send the root logger to standard error in the configured format and level; with
    ``worker``, every record names that worker."""
    global _worker
    _worker = worker
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if config.format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.level.upper())
    # aiortc/aioice are chatty at INFO about every ICE pair; keep them to warnings unless debugging.
    if config.level != "debug":
        for name in ("aioice", "aiortc"):
            logging.getLogger(name).setLevel(logging.WARNING)
