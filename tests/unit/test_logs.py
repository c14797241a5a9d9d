"""Log formats: JSON lines with room and participant IDs; tagged text lines."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging

from webinar import logs


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("webinar.test", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_lines_carry_the_bound_ids() -> None:
    def inside() -> str:
        logs.bind(room_id="123456789", participant_id="pa_abc", client="198.51.100.4")
        return logs.JsonFormatter().format(record("joined as host"))

    line = contextvars.copy_context().run(inside)
    entry = json.loads(line)
    assert entry["msg"] == "joined as host"
    assert entry["level"] == "info" and entry["logger"] == "webinar.test"
    assert entry["room_id"] == "123456789"
    assert entry["participant_id"] == "pa_abc"
    assert entry["client"] == "198.51.100.4"
    assert entry["ts"].endswith("+00:00")
    # Outside that context nothing leaks.
    assert "room_id" not in json.loads(logs.JsonFormatter().format(record("x")))


def test_extra_names_a_room_for_one_call_and_exceptions_are_kept() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("failed", room_id="987654321")
        rec.exc_info = sys.exc_info()
    entry = json.loads(logs.JsonFormatter().format(rec))
    assert entry["room_id"] == "987654321"
    assert "ValueError: boom" in entry["exc"]


def test_text_lines_are_tagged() -> None:
    line = logs.TextFormatter().format(record("hello", room_id="1", participant_id="pa_1"))
    assert line.endswith("webinar.test: hello [room_id=1 participant_id=pa_1]")


async def test_tasks_inherit_the_binding() -> None:
    async def connection() -> str:
        logs.bind(room_id="555000111")

        async def child() -> str | None:
            return logs.room_id_var.get()

        return str(await asyncio.get_running_loop().create_task(child()))

    assert await asyncio.get_running_loop().create_task(connection()) == "555000111"
    assert logs.room_id_var.get() is None
