"""Media through the real server with aiortc clients: fan-out, no decoder, loss."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiortc.rtcdtlstransport
import aiortc.rtcrtpreceiver
import pytest
from aiortc.rtp import RtpPacket

from tests.helpers import RunningServer, running_server
from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.client.peer import WebinarClient
from webinar.sfu import HookError, check_hooks, running_decoder_threads
from webinar.sfu._aiortc import direct_receive

pytestmark = pytest.mark.media
LOOPBACK = ["127.0.0.1"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


async def until(check: Callable[[], bool] | Callable[[], Awaitable[bool]], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result is True or (not isinstance(result, bool) and await result):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {within} s")


async def packets_sent(client: WebinarClient) -> int:
    assert client.publish_pc is not None
    stats = await client.publish_pc.getStats()
    return sum(s.packetsSent for s in stats.values() if s.type == "outbound-rtp")


def test_private_hooks_are_present() -> None:
    check_hooks()


def test_missing_hook_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(aiortc.rtcdtlstransport.RTCDtlsTransport, "_handle_rtp_data")
    with pytest.raises(HookError, match="_handle_rtp_data"):
        check_hooks()


async def test_one_presenter_to_twenty_subscribers(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoders: list[Any] = []

    def no_decoder(codec: Any) -> Any:
        decoders.append(codec)
        raise AssertionError("a decoder was created")

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", no_decoder)
    event = await server.create_event()
    presenter = WebinarClient(server.base_url, host_addresses=LOOPBACK)
    subscribers = [
        WebinarClient(server.base_url, mode="count", host_addresses=LOOPBACK) for _ in range(20)
    ]
    try:
        await presenter.join(event.event_id, "Presenter", event.presenter_key)
        await asyncio.gather(*(s.join(event.event_id, f"S{i}") for i, s in enumerate(subscribers)))
        video = ClipTrack(make_vp8_clip(width=640, height=480, seconds=2, keyframe_interval=30))
        audio = ClipTrack(make_opus_clip(seconds=2))
        await presenter.publish([(video, "camera"), (audio, "microphone")])
        await until(
            lambda: all(
                s.stats.packets["video"] > 0 and s.stats.packets["audio"] > 0 for s in subscribers
            ),
            within=15,
        )

        async def quiet_counts() -> tuple[int, list[int]]:
            """Pause the publisher and let what is in flight arrive, then count: a
            window between two quiet moments counts each packet on both sides."""
            video.pause()
            audio.pause()
            await asyncio.sleep(0.7)
            return await packets_sent(presenter), [
                sum(s.stats.packets.values()) for s in subscribers
            ]

        sent0, got0 = await quiet_counts()
        video.resume()
        audio.resume()
        await asyncio.sleep(10)
        sent1, got1 = await quiet_counts()
        expected = sent1 - sent0
        assert expected >= 1400  # 10 s of 30 fps video (~100 packets/s) and 50 audio packets/s
        ratios = [(b - a) / expected for a, b in zip(got0, got1, strict=True)]
        assert min(ratios) >= 0.99, ratios
        assert max(ratios) <= 1.0, ratios  # no duplicates
        assert decoders == []
        assert running_decoder_threads() == []
        # The media took the direct receive path (socket callback -> libsrtp -> the
        # producer), not aioice's queue and aiortc's DTLS task: the publisher's RTP
        # and the subscribers' RTCP.
        router = next(iter(server.rooms.rooms())).router
        for producer in router.producers.values():
            direct = direct_receive(producer._tap.receiver.transport)
            assert direct is not None and direct.handled >= expected, (direct, expected)
        consumers = [c for p in router.producers.values() for c in p.consumers]
        assert len(consumers) == 40
        for consumer in consumers:
            direct = direct_receive(consumer._tap.sender.transport)
            assert direct is not None and direct.handled > 0
    finally:
        await asyncio.gather(presenter.close(), *(s.close() for s in subscribers))


async def test_video_keeps_decoding_with_five_percent_loss(server: RunningServer) -> None:
    rng = random.Random(5)
    seen, dropped = [0], [0]

    def lossy(packet: RtpPacket) -> bool:
        seen[0] += 1
        if rng.random() < 0.05:
            dropped[0] += 1
            return False
        return True

    event = await server.create_event()
    presenter = WebinarClient(server.base_url, host_addresses=LOOPBACK)
    viewer = WebinarClient(
        server.base_url, mode="decode", host_addresses=LOOPBACK, rtp_filter=lossy
    )
    try:
        await presenter.join(event.event_id, "Presenter", event.presenter_key)
        await viewer.join(event.event_id, "Viewer")
        video = ClipTrack(
            make_vp8_clip(width=320, height=240, seconds=4, bitrate=400_000, keyframe_interval=120)
        )
        await presenter.publish([(video, "camera")])
        await until(lambda: viewer.stats.frames["video"] > 0, within=15)
        sent0, decoded0 = video.frames_sent, viewer.stats.frames["video"]
        await asyncio.sleep(10)
        sent, decoded = video.frames_sent - sent0, viewer.stats.frames["video"] - decoded0
        # The loss really happened (a count, not a guess at how many packets came). This
        # clip comes out at about one packet a frame: 240-260 packets seen in a run, so
        # "over 300" failed now and then while everything worked; the RNG is seeded, so
        # the share dropped depends on the count only (~7 % at that count).
        assert seen[0] > 200 and dropped[0] >= 0.02 * seen[0], (dropped[0], seen[0])
        assert sent > 250
        router = next(iter(server.rooms.rooms())).router
        consumer_stats = [c.stats for p in router.producers.values() for c in p.consumers]
        producer_stats = [p.stats for p in router.producers.values()]
        (controller,) = [router.tiers_of(t).controller for t in router.subscribers]
        # Random loss is no congestion: no report about ~25 packets with 3 lost (12 %,
        # one report in eight at 5 %) cut the budget, which paused the only video.
        assert not controller.limited, controller.budget_bps
        assert decoded >= 0.9 * sent, (decoded, sent, dropped[0], consumer_stats, producer_stats)
        assert sum(s.retransmitted for s in consumer_stats) > 0  # NACKs were answered
    finally:
        await asyncio.gather(presenter.close(), viewer.close())


async def test_stream_end_reaches_subscribers(server: RunningServer) -> None:
    event = await server.create_event()
    presenter = WebinarClient(server.base_url, host_addresses=LOOPBACK)
    viewer = WebinarClient(server.base_url, mode="count", host_addresses=LOOPBACK)
    try:
        await presenter.join(event.event_id, "Presenter", event.presenter_key)
        await viewer.join(event.event_id, "Viewer")
        video = ClipTrack(make_vp8_clip(width=160, height=120, seconds=1, keyframe_interval=10))
        producers = await presenter.publish([(video, "camera")])
        added = await viewer.signalling.wait_for("stream-added")  # type: ignore[union-attr]
        assert added["stream"]["source"] == "camera"
        assert added["stream"]["name"] == "Presenter"
        await until(lambda: viewer.stats.packets["video"] > 10, within=10)
        await presenter.close()  # a presenter that vanishes
        ended = await viewer.signalling.wait_for("stream-ended")  # type: ignore[union-attr]
        assert ended["producer_id"] == producers[0]["producer_id"]
        # not "left" yet: a dropped participant keeps their place for the resume grace
        update = await viewer.signalling.wait_for("participant-updated")  # type: ignore[union-attr]
        assert update["participant"]["connected"] is False
        count = viewer.stats.packets["video"]
        await asyncio.sleep(1)
        assert viewer.stats.packets["video"] - count <= 2
    finally:
        await asyncio.gather(presenter.close(), viewer.close())


async def test_camera_limit(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as srv:
        event = await srv.create_event(camera_limit=1)
        a = WebinarClient(srv.base_url, host_addresses=LOOPBACK)
        b = WebinarClient(srv.base_url, host_addresses=LOOPBACK)
        try:
            await a.join(event.event_id, "A", event.presenter_key)
            await b.join(event.event_id, "B", event.presenter_key)
            clip = make_vp8_clip(width=160, height=120, seconds=1)
            await a.publish([(ClipTrack(clip), "camera")])
            from webinar.client.peer import ClientError

            with pytest.raises(ClientError) as err:
                await b.publish([(ClipTrack(clip), "camera")])
            assert err.value.code == "camera-limit"
            # audio and screen share do not count
            await b.publish([(ClipTrack(make_opus_clip(seconds=1)), "microphone")])
        finally:
            await asyncio.gather(a.close(), b.close())


async def test_port_range_and_announced_ip(tmp_path: Path) -> None:
    """The admin's UDP port range and public IP show up in the server's candidates."""
    import dataclasses

    from tests.helpers import make_config
    from webinar.config import IceConfig

    base = make_config(tmp_path / "data")
    config = dataclasses.replace(
        base,
        ice=IceConfig(
            host_addresses=("127.0.0.1",),
            udp_port_min=41000,
            udp_port_max=41010,
            announced_ip="203.0.113.7",
        ),
    )
    async with running_server(tmp_path / "data", config) as srv:
        event = await srv.create_event()
        presenter = WebinarClient(srv.base_url, host_addresses=LOOPBACK)
        viewer = WebinarClient(srv.base_url, mode="count", host_addresses=LOOPBACK)
        try:
            await presenter.join(event.event_id, "P", event.presenter_key)
            await viewer.join(event.event_id, "V")
            await presenter.publish(
                [(ClipTrack(make_vp8_clip(width=160, height=120, seconds=1)), "camera")]
            )
            assert presenter.publish_pc is not None
            answer = presenter.publish_pc.remoteDescription.sdp
            candidates = [line for line in answer.splitlines() if line.startswith("a=candidate")]
            ports = {int(c.split()[5]) for c in candidates}
            assert ports and all(41000 <= p <= 41010 for p in ports), candidates
            assert any("203.0.113.7" in c and "typ srflx" in c for c in candidates), candidates
            await until(lambda: viewer.stats.packets["video"] > 5, within=10)  # still works
        finally:
            await asyncio.gather(presenter.close(), viewer.close())
