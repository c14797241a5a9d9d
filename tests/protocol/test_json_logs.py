"""`log.format = "json"`: a real server process logs one JSON object a line, with IDs."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import aiohttp

from tests.serving import start_server
from webinar.client.peer import SignallingClient


async def test_json_logs_name_room_and_participant(tmp_path: Path) -> None:
    server = start_server(tmp_path, {"WEBINAR_LOG_FORMAT": "json"})
    try:
        await server.wait_healthy()
        event = server.create_event("Logged")
        async with aiohttp.ClientSession() as http:
            ws = SignallingClient(http, server.base_url.replace("http", "ws", 1) + "/ws")
            await ws.connect()
            await ws.request("hello", protocol=1)
            joined = await ws.request("join", event_id=event["event_id"], name="Ann")
            await ws.request("leave")
            await ws.close()
        server.proc.send_signal(signal.SIGINT)
        assert await server.wait_exit(15) == 0
    finally:
        _out, err = server.stop()
    entries = [json.loads(line) for line in err.splitlines() if line.strip()]  # all JSON
    assert any(e["msg"].startswith("listening on http://") for e in entries)
    mine = [e for e in entries if e.get("participant_id") == joined["participant_id"]]
    assert [e["msg"] for e in mine] == ["joined as attendee", "connection closed: left"]
    for entry in mine:
        assert entry["room_id"] == event["event_id"].replace("-", "")
        assert entry["client"] == "127.0.0.1"
        assert entry["level"] == "info"
