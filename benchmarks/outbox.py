"""How fast a CSV import's invitations go out: the outbox through a real SMTP server.

    .venv/bin/python benchmarks/outbox.py
    .venv/bin/python benchmarks/outbox.py --invitees 2000 --smtp-delay 0.01

A fresh data dir and an in-process server (the app as ``webinar serve`` builds it, its outbox
and reminders running), an event starting in three days, and a real SMTP server (aiosmtpd) on
loopback that takes ``--smtp-delay`` seconds to accept each message (0: as fast as it can; a
real provider takes 50 to 300 ms). The script imports a CSV of ``--invitees`` people (checked
and previewed as the dashboard does), sends it, and waits until the SMTP server has every
invitation.

Prints exactly one JSON line:

* ``invitees``; ``preview_ms``: reading and checking the file and keeping the preview;
  ``send_ms``: inviting everyone and queueing their invitations (one transaction);
* ``delivery_s``: from the send to the last message in the SMTP server's hands;
  ``messages_per_s``: invitations delivered per second (each with its .ics, one SMTP
  connection each, ``webinar.ticketing.outbox.SENDERS`` at a time);
* ``ms_per_message``: ``delivery_s`` ÷ invitees. With no SMTP delay it is the server's own
  work per message: composing, the calendar file, the store's writes (claim, Message-ID,
  sent).

Measured on the development machine (2 cores, shared): 500 invitees, no delay: about 100
messages/s (10 ms each); 200 invitees with a 100 ms mail server: about 27 messages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.helpers import make_config, running_server  # noqa: E402
from tests.smtp import smtp_server  # noqa: E402
from webinar.config import MailConfig  # noqa: E402
from webinar.http.tickets import TICKETS  # noqa: E402


def invitees_csv(count: int) -> bytes:
    lines = ["name,email,company"]
    lines += [f"Guest {n},guest{n}@example.org,Firm {n % 13}" for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


async def run(invitees: int, smtp_delay: float) -> dict[str, float]:
    async with smtp_server(delay=smtp_delay) as inbox:
        with tempfile.TemporaryDirectory(prefix="outbox-bench-") as folder:
            data = Path(folder) / "data"
            config = dataclasses.replace(
                make_config(data),
                mail=MailConfig(smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_security="none"),
            )
            async with running_server(data, config) as server:
                desk = server.server.app[TICKETS].desk
                event = await server.store.create_event(
                    "Benchmark", datetime.now(UTC) + timedelta(days=3)
                )
                started = time.perf_counter()
                preview = await desk.preview_import(event, invitees_csv(invitees))
                previewed = time.perf_counter()
                await desk.send_import(event, preview.import_id, server.base_url)
                sent = time.perf_counter()
                await inbox.wait_count(invitees, within=3600)
                delivered = time.perf_counter()
    delivery = delivered - sent
    return {
        "invitees": invitees,
        "smtp_delay_ms": smtp_delay * 1000,
        "preview_ms": round((previewed - started) * 1000, 1),
        "send_ms": round((sent - previewed) * 1000, 1),
        "delivery_s": round(delivery, 2),
        "messages_per_s": round(invitees / delivery, 1),
        "ms_per_message": round(delivery / invitees * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invitees", type=int, default=500)
    parser.add_argument("--smtp-delay", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.invitees, args.smtp_delay))))


if __name__ == "__main__":
    main()
