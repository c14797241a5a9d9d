"""WHIP and WHEP with `webinar serve --workers 2` (real processes): an encoder publishing on
worker 1 reaches an attendee and a WHEP player on worker 2 (through a pipe), and its
session's PATCH and DELETE, sent to worker 2, are answered by worker 1 that holds it (over
the bus)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp

from tests.protocol.test_workers import http, start_workers, wait_workers
from tests.whip_support import HttpPeer, camera_and_mic, strip_candidates
from webinar.client.peer import WebinarClient

__all__ = ["http"]

LOOPBACK = ["127.0.0.1"]


async def until(check: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.1)


async def test_sessions_answer_on_the_worker_that_holds_them(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    server, base = start_workers(tmp_path)
    one, two = f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"
    viewer = WebinarClient(two, mode="count", host_addresses=LOOPBACK)
    encoder = HttpPeer(http, one)
    player = HttpPeer(http, two)
    try:
        await wait_workers(http, server)
        event = server.create_event("Across")
        key = parse_qs(urlparse(event["presenter_url"]).query)["key"][0]
        await viewer.join(event["event_id"], "V")
        encoder.send(camera_and_mic())
        offer, candidates = strip_candidates(await encoder.offer())
        created = await encoder.post(f"/whip/{event['event_id']}?name=OBS", offer, token=key)
        assert created.status == 201, created.text
        assert created.headers["Location"].split("/")[-1].startswith("1.")  # worker 1's
        # the trickled candidates go to worker 2, which passes them to worker 1
        encoder.base_url = two
        patched = await encoder.patch(encoder.ice_fragment(candidates), if_match=encoder.etag)
        assert patched.status == 204, patched.text
        stale = await encoder.patch(encoder.ice_fragment(candidates), if_match='"stale"')
        assert stale.status == 412 and "ETag" in stale.text
        await until(
            lambda: viewer.stats.packets["video"] > 30 and viewer.stats.packets["audio"] > 30,
            20,
            "the attendee on worker 2 receives the encoder on worker 1",
        )
        player.receive()
        played = await player.post(f"/whep/{event['event_id']}", await player.offer())
        assert played.status == 201, played.text
        await until(
            lambda: player.frames["video"] > 20 and player.frames["audio"] > 20,
            20,
            "the WHEP player on worker 2 decodes the encoder on worker 1",
        )
        assert viewer.signalling is not None
        deleted = await encoder.delete()  # on worker 2, for worker 1's session
        assert deleted.status == 200, deleted.text
        ended = [await viewer.signalling.wait_for("stream-ended", within=10) for _ in range(2)]
        assert len({m["producer_id"] for m in ended}) == 2  # its camera and microphone
        assert (await encoder.delete()).status == 404
        assert (await player.delete()).status == 200
    finally:
        await asyncio.gather(
            viewer.close(), encoder.close(), player.close(), return_exceptions=True
        )
        _out, err = server.stop()
    assert "Traceback" not in err, err
