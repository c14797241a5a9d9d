"""What one stage event costs the event loop to tell a room: a page turn (a ``stage`` frame,
each viewer with their own content pass) and a whiteboard stroke message, to N viewers, as
``webinar.signalling.interaction.deliver`` does per connection (the JSON text each connection's
writer makes afterwards is not counted: the same for every message).

    PYTHONPATH=src .venv/bin/python benchmarks/stage_fanout.py [--viewers 1000] [--runs 7]

One JSON line: ``page_ms``, ``stroke_ms`` (median milliseconds for all viewers), ``viewers``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from webinar.content import passes
from webinar.rooms import stage as st
from webinar.rooms.interaction import RoomInteraction
from webinar.rooms.roles import Role
from webinar.rooms.state import Participant
from webinar.signalling import stage as stage_frames
from webinar.signalling.interaction import Viewer


class _Room:
    """What the stage's frames read of a live room."""

    room_id = "123456789"

    def __init__(self) -> None:
        self.interaction = RoomInteraction(lambda: [])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    room: Any = _Room()
    stage = room.interaction.stage
    pres = Participant("p1", "Pres", Role.PRESENTER)
    stage.apply(
        stage.show_presentation(
            pres, content_id="cnt_" + "a" * 24, name="deck.pdf", pages=40, page=3, now=1.0
        )
    )
    for i in range(10):
        offered = st.OfferedFile(f"cnt_{i:024d}", f"handout-{i}.pdf", 1000, "application/pdf")
        stage.apply(stage.offer_file(pres, offered, True))
    pen = {"page": 0, "tool": "pen", "color": "#000000", "width": 3, "text": None, "done": False}
    stage.apply(stage.draw(pres, stroke_id="s", points=[[0.1, 0.1]], **pen))
    secret = b"k" * 32
    viewers = [
        Viewer(
            Participant(f"a{i}", "Attendee", Role.ATTENDEE),
            f"client:{i}",
            secret,
            room,
            lambda event_id, who: passes.issue(secret, event_id, who)[0],
        )
        for i in range(args.viewers)
    ]
    stroke = stage.draw(pres, stroke_id="s", points=[[0.2, 0.2]] * 20, **pen).events[0]
    result: dict[str, Any] = {"viewers": args.viewers}
    for name, event in (("page_ms", st.StageChanged("page", "p1")), ("stroke_ms", stroke)):
        runs = []
        for _ in range(args.runs):
            started = time.perf_counter()
            for viewer in viewers:
                stage_frames.frames(viewer, room, event)
            runs.append((time.perf_counter() - started) * 1000)
        result[name] = round(statistics.median(runs), 2)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
