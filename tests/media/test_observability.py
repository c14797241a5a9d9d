"""/metrics moves while media flows; /readyz; the metrics token."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import make_config, running_server
from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.client.peer import WebinarClient
from webinar.config import AdminConfig

pytestmark = pytest.mark.media


def value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} missing"
    return float(match.group(1))


async def test_metrics_move_with_media(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as srv, aiohttp.ClientSession() as http:
        event = await srv.create_event()
        presenter = WebinarClient(srv.base_url, host_addresses=["127.0.0.1"])
        viewer = WebinarClient(srv.base_url, mode="count", host_addresses=["127.0.0.1"])
        try:
            await presenter.join(event.event_id, "P", event.presenter_key)
            await viewer.join(event.event_id, "V")
            await presenter.publish(
                [
                    (ClipTrack(make_vp8_clip(width=160, height=120, seconds=1)), "camera"),
                    (ClipTrack(make_opus_clip(seconds=1)), "microphone"),
                ]
            )
            await asyncio.sleep(2)
            async with http.get(srv.base_url + "/metrics") as resp:
                assert resp.status == 200
                first = await resp.text()
            await asyncio.sleep(1.5)
            async with http.get(srv.base_url + "/metrics") as resp:
                second = await resp.text()
            assert value(second, "webinar_rooms") == 1
            assert value(second, 'webinar_participants{role="presenter"}') == 1
            assert value(second, 'webinar_participants{role="attendee"}') == 1
            assert value(second, "webinar_producers") == 2
            assert value(second, "webinar_consumers") == 2
            forwarded = "webinar_rtp_packets_forwarded_total"
            assert value(second, forwarded) > value(first, forwarded) > 0
            assert "webinar_event_loop_lag_seconds" in second
            assert "webinar_subscriber_bandwidth_bps_count" in second
            async with http.get(srv.base_url + "/readyz") as resp:
                assert resp.status == 200
                assert (await resp.json())["ready"] is True
        finally:
            await asyncio.gather(presenter.close(), viewer.close())


async def test_metrics_token_and_error_counter(tmp_path: Path) -> None:
    config = dataclasses.replace(
        make_config(tmp_path / "data"), admin=AdminConfig(token="s3cret-metrics-token")
    )
    async with running_server(tmp_path / "data", config) as srv, aiohttp.ClientSession() as http:
        async with http.ws_connect(srv.base_url + "/ws") as ws:
            await ws.send_str("nonsense")
            assert (await ws.receive_json())["code"] == "bad-json"
        async with http.get(srv.base_url + "/metrics") as resp:
            assert resp.status == 401
        headers = {"Authorization": "Bearer s3cret-metrics-token"}
        async with http.get(srv.base_url + "/metrics", headers=headers) as resp:
            assert resp.status == 200
            text = await resp.text()
        assert value(text, 'webinar_signalling_errors_total{code="bad-json"}') == 1
