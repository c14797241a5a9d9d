"""/metrics moves while media flows, its counters never fall when people leave; /readyz; the
metrics token."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from pathlib import Path

import aiohttp
import pytest

from tests import media_support
from tests.helpers import make_config, running_server
from tests.media_support import publish_camera_and_mic, until
from tests.metrics_support import counter_types, cumulative, samples, value
from webinar import __version__
from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.client.peer import WebinarClient
from webinar.config import AdminConfig
from webinar.sfu import native

pytestmark = pytest.mark.media

clients = media_support.clients
client = media_support.client


async def scrape(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(base + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return await resp.text()


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
            first = await scrape(http, srv.base_url)
            await asyncio.sleep(1.5)
            second = await scrape(http, srv.base_url)
            assert value(second, "webinar_rooms") == 1
            assert value(second, "webinar_participants", role="presenter") == 1
            assert value(second, "webinar_participants", role="attendee") == 1
            assert value(second, "webinar_producers") == 2
            assert value(second, "webinar_consumers") == 2
            forwarded = "webinar_rtp_packets_forwarded_total"
            assert value(second, forwarded) > value(first, forwarded) > 0
            if native.forward() is not None:  # the compiled fan-out sends the plain streams
                datagrams = "webinar_native_fanout_datagrams_total"
                assert value(second, datagrams, outcome="sent") > 0
                assert value(second, "webinar_native_fanout_enabled") == 1
            assert value(second, "webinar_event_loop_lag_seconds") >= 0
            # the one subscriber's estimate now (once it has one): a gauge histogram
            assert value(second, "webinar_subscriber_bandwidth_bps_gcount") in (0, 1)
            assert value(second, "webinar_subscriber_bandwidth_bps_bucket", le="+Inf") in (0, 1)
            async with http.get(srv.base_url + "/readyz") as resp:
                assert resp.status == 200
                assert (await resp.json())["ready"] is True
        finally:
            await asyncio.gather(presenter.close(), viewer.close())


async def test_counters_never_fall_when_people_leave(
    tmp_path: Path, clients: list[WebinarClient]
) -> None:
    """Three viewers watch a presenter's camera and microphone; the scrapes taken while all
    watch, after two left and after everyone left (the room closed) never show a counter,
    or a histogram's buckets, count or sum, smaller than the scrape before. What the
    forwarding counted is what the viewers received."""
    async with running_server(tmp_path / "data") as srv, aiohttp.ClientSession() as http:
        event = await srv.create_event()
        presenter = client(clients, srv.base_url, mode="decode")
        await presenter.join(event.event_id, "Presenter", event.presenter_key)
        viewers = [client(clients, srv.base_url) for _ in range(3)]
        for i, viewer in enumerate(viewers):
            await viewer.join(event.event_id, f"Viewer {i + 1}")
        await publish_camera_and_mic(presenter)
        await until(
            lambda: all(v.stats.packets["video"] > 30 for v in viewers),
            what="every viewer receives video",
        )
        assert presenter.signalling is not None
        await presenter.signalling.request("chat-send", text="Welcome, everyone")
        await presenter.signalling.send({"type": "no-such-message"})  # an error by code
        await asyncio.sleep(1.0)
        scrapes = [await scrape(http, srv.base_url)]
        watching = scrapes[0]
        assert value(watching, "webinar_consumers") == 6
        assert value(watching, "webinar_joins_total", role="attendee") == 3
        assert value(watching, "webinar_joins_total", role="presenter") == 1
        assert value(watching, "webinar_join_seconds_count") == 4
        assert value(watching, "webinar_chat_messages_total") == 1
        assert value(watching, "webinar_chat_delivery_seconds_count") == 1
        assert value(watching, "webinar_allocation_seconds_count") > 0
        assert value(watching, "webinar_signalling_errors_total", code="unknown-type") == 1
        assert value(watching, "webinar_signalling_messages_total", direction="in") > 0
        assert value(watching, "webinar_signalling_messages_total", direction="out") > 0

        async def leave(who: WebinarClient) -> None:
            assert who.signalling is not None
            await who.signalling.request("leave")
            await who.close()

        # two viewers leave: their consumers close, what they were sent stays counted
        await asyncio.gather(*(leave(v) for v in viewers[:2]))
        await asyncio.sleep(0.5)
        scrapes.append(await scrape(http, srv.base_url))
        assert value(scrapes[-1], "webinar_consumers") == 2
        # everyone leaves: the room closes, no producer or consumer is left
        await asyncio.gather(leave(viewers[2]), leave(presenter))
        await until(lambda: srv.rooms.get(event.event_id) is None, what="the room closes")
        scrapes.append(await scrape(http, srv.base_url))
        gone = scrapes[-1]
        assert value(gone, "webinar_rooms") == 0
        assert value(gone, "webinar_consumers") == value(gone, "webinar_producers") == 0
        assert value(gone, "webinar_participants", role="attendee") == 0

        types = counter_types(watching)
        counters = {name for name, kind in types.items() if kind == "counter"}
        assert {
            "webinar_rtp_packets_received",
            "webinar_rtp_bytes_received",
            "webinar_rtp_packets_forwarded",
            "webinar_rtp_bytes_forwarded",
            "webinar_nacks",
            "webinar_retransmissions",
            "webinar_keyframe_requests",
            "webinar_publisher_keyframe_requests",
            "webinar_signalling_errors",
            "webinar_joins",
            "webinar_signalling_messages",
            "webinar_chat_messages",
            "webinar_webhook_attempts",
            "process_cpu_seconds",
        } <= counters, counters
        for before, after in itertools.pairwise(scrapes):
            earlier, later = cumulative(before), cumulative(after)
            for key, was in earlier.items():
                assert key in later, f"{key} vanished"
                assert later[key] >= was, f"{key} fell from {was} to {later[key]}"

        # the forwarding counted what the viewers got (a few in flight when they left)
        received = sum(v.stats.packets["video"] + v.stats.packets["audio"] for v in viewers)
        forwarded = value(gone, "webinar_rtp_packets_forwarded_total")
        resent = value(gone, "webinar_retransmissions_total")  # a viewer may count those too
        assert received <= forwarded + resent, (received, forwarded, resent)
        assert forwarded <= received * 1.02 + 50, (received, forwarded)
        assert value(gone, "webinar_rtp_packets_received_total") > 0
        # the viewers' first keyframes were asked of the presenter's one video layer
        assert value(gone, "webinar_publisher_keyframe_requests_total", layer="0") >= 1
        assert value(gone, "webinar_rtp_bytes_forwarded_total") > forwarded  # bytes, not packets

        # the build and the process
        assert value(gone, "webinar_build_info", version=__version__) == 1
        assert value(gone, "process_resident_memory_bytes") > 10_000_000
        assert value(gone, "process_open_fds") > 0
        assert value(gone, "process_cpu_seconds_total") > 0
        assert any(name == "python_info" for name, _labels in samples(gone))


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
        assert value(text, "webinar_signalling_errors_total", code="bad-json") == 1
