"""Pipes between workers (``webinar.sfu.pipe``): a producer on router A copied to
router B over real UDP, with real aiortc publishers and subscribers on loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import av
import pylibsrtp
import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import (
    RTCP_PSFB_PLI,
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
)

from tests.pipe_peers import Subscriber, make_router, publish
from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.sfu import CloseReason, Router
from webinar.sfu.pipe import (
    AUDIO_LEVEL_URI,
    SRTP_OVERHEAD,
    PipeIn,
    PipeKeys,
    PipeOut,
    pipe_descriptor,
)
from webinar.sfu.recorder import Recorder
from webinar.sfu.simulcast import LAYER_KEYFRAME_INTERVAL, RID_URI

pytestmark = pytest.mark.media
ROOT = Path(__file__).resolve().parents[2]


async def until(check: Callable[[], bool] | Callable[[], Awaitable[bool]], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result is True or (not isinstance(result, bool) and await result):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {within} s")


@pytest.fixture
async def routers() -> AsyncIterator[tuple[Router, Router]]:
    a, b = make_router(), make_router()
    try:
        yield a, b
    finally:
        await asyncio.gather(a.close(), b.close())


async def piped(
    origin: Any, edge: Router, ports: tuple[int, int] | None = None, keys: PipeKeys | None = None
) -> tuple[PipeOut, PipeIn]:
    """The control plane's part, in one process: descriptor, addresses (and, for an
    encrypted pipe, the origin's keys) across."""
    pipe_in = await PipeIn.open(
        edge, pipe_descriptor(origin), ports=ports, keys=keys.swapped() if keys else None
    )
    pipe_out = await PipeOut.open(origin, peer=pipe_in.address, ports=ports, keys=keys)
    pipe_in.connect(pipe_out.address)
    return pipe_out, pipe_in


def srtp_session(key: bytes, direction: int) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key, ssrc_type=direction, srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM
    )
    return pylibsrtp.Session(policy=policy)


def tracks(seconds: float = 2.0) -> tuple[ClipTrack, ClipTrack]:
    video = ClipTrack(make_vp8_clip(width=320, height=240, seconds=seconds, keyframe_interval=30))
    audio = ClipTrack(make_opus_clip(seconds=seconds))
    return video, audio


async def test_twenty_edge_subscribers_get_everything_through_one_pipe(
    routers: tuple[Router, Router],
) -> None:
    a, b = routers
    video, audio = tracks()
    publisher = await publish(a, [(video, "camera"), (audio, "microphone")])
    pipes = [await piped(p, b) for p in publisher.producers]
    counting = [Subscriber(b) for _ in range(20)]
    decoding = [Subscriber(b, decode=True) for _ in range(2)]
    try:
        for s in counting + decoding:
            for _out, pipe_in in pipes:
                s.consume(pipe_in.producer)
        assert {p.id for p in publisher.producers} <= set(b.producers)  # the origin's IDs
        await until(lambda: all(s.packets["video"] and s.packets["audio"] for s in counting), 20)
        await until(lambda: all(s.frames["video"] > 5 for s in decoding), 15)

        async def quiet_counts() -> tuple[int, list[int]]:
            video.pause()
            audio.pause()
            await asyncio.sleep(0.7)
            return await publisher.packets_sent(), [sum(s.packets.values()) for s in counting]

        sent0, got0 = await quiet_counts()
        frames0 = [s.frames["video"] for s in decoding]
        video.resume()
        audio.resume()
        await asyncio.sleep(6)
        sent1, got1 = await quiet_counts()
        expected = sent1 - sent0
        assert expected >= 400  # 6 s of 30 fps video (~1 packet a frame) and 50 audio packets/s
        ratios = [(y - x) / expected for x, y in zip(got0, got1, strict=True)]
        assert min(ratios) >= 0.99, ratios
        assert max(ratios) <= 1.0, ratios
        frames = [s.frames["video"] - f for s, f in zip(decoding, frames0, strict=True)]
        assert min(frames) >= 150, frames  # 6 s at 30 fps
        # exactly one copy crossed each pipe, however many subscribers
        for out, pipe_in in pipes:
            assert pipe_in.stats.packets == out.stats.packets - out.stats.retransmitted
            assert out.stats.refused == pipe_in.stats.refused == 0
        # the edge producers know what a local one knows: layers, speaker level, SR
        video_in = next(p for _o, p in pipes if p.producer.kind.value == "video").producer
        audio_in = next(p for _o, p in pipes if p.producer.kind.value == "audio").producer
        assert video_in.temporal_layers >= 1
        audio_out = next(p for p in publisher.producers if p.kind.value == "audio")
        assert audio_in.take_loudest() == audio_out.take_loudest()  # aiortc sends none
        assert audio_in.sender_report is not None and video_in.sender_report is not None
    finally:
        await asyncio.gather(*(s.close() for s in counting + decoding))
        for out, pipe_in in pipes:
            out.close()
            pipe_in.close()
        await publisher.close()


async def test_loss_is_repaired_on_each_hop(routers: tuple[Router, Router]) -> None:
    """A subscriber's loss is answered from the edge's history; a loss on the pipe
    itself from the origin's, never from the publisher."""
    a, b = routers
    video, audio = tracks(seconds=4)
    publisher = await publish(a, [(video, "camera"), (audio, "microphone")])
    video_out = next(p for p in publisher.producers if p.kind.value == "video")
    audio_out = next(p for p in publisher.producers if p.kind.value == "audio")
    out, pipe_in = await piped(video_out, b)
    audio_pipe = await piped(audio_out, b)
    seen = [0]

    def lossy_pipe(data: bytes) -> bool:
        seen[0] += 1
        return seen[0] % 20 != 0  # one pipe datagram in 20, retransmissions included

    pipe_in.keep = lossy_pipe
    viewer_seen = [0]

    def lossy_viewer(packet: RtpPacket) -> bool:
        viewer_seen[0] += 1
        return viewer_seen[0] % 25 != 0

    viewer = Subscriber(b, decode=True, rtp_filter=lossy_viewer)
    counting = [Subscriber(b) for _ in range(3)]
    try:
        for s in [viewer, *counting]:
            s.consume(pipe_in.producer)
            s.consume(audio_pipe[1].producer)
        await until(lambda: viewer.frames["video"] > 0, 15)
        await until(lambda: all(s.packets["video"] for s in counting), 15)

        async def quiet() -> tuple[int, list[int], int, int]:
            video.pause()
            audio.pause()
            await asyncio.sleep(0.7)
            return (
                await publisher.packets_sent(),
                [sum(s.packets.values()) for s in counting],
                viewer.frames["video"],
                video.frames_sent,
            )

        sent0, got0, decoded0, frames0 = await quiet()
        video.resume()
        audio.resume()
        await asyncio.sleep(8)
        sent1, got1, decoded1, frames1 = await quiet()
        expected = sent1 - sent0
        ratios = [(y - x) / expected for x, y in zip(got0, got1, strict=True)]
        assert min(ratios) >= 0.99, ratios  # the pipe's loss was repaired for everyone
        assert decoded1 - decoded0 >= 0.9 * (frames1 - frames0), (decoded1, frames1)
        assert pipe_in.stats.dropped >= 10
        assert pipe_in.stats.nacks > 0
        assert out.stats.retransmitted >= 0.9 * pipe_in.stats.dropped, (out.stats, pipe_in.stats)
        assert video_out.stats.nacks_sent == 0  # nothing was asked of the publisher
        (edge_consumer,) = [c for c in viewer.consumers if c.kind.value == "video"]
        assert edge_consumer.stats.nacks > 0 and edge_consumer.stats.retransmitted > 0
        # the viewer's NACKs were answered at the edge: the origin answered only the
        # pipe's losses (its NACK items are about the pipe's drops, not the viewer's)
        assert out.stats.retransmitted <= pipe_in.stats.dropped + 5
    finally:
        await asyncio.gather(*(s.close() for s in [viewer, *counting]))
        for o, i in [(out, pipe_in), audio_pipe]:
            o.close()
            i.close()
        await publisher.close()


async def test_keyframe_requests_are_merged_at_the_origin(
    routers: tuple[Router, Router],
) -> None:
    """20 subscribers on two edges asking keyframes all at once, again and again: at
    most one PLI a second (the stream's one layer) reaches the publisher."""
    a, b = routers
    c = make_router()
    video = ClipTrack(make_vp8_clip(width=160, height=120, seconds=2, keyframe_interval=60))
    publisher = await publish(a, [(video, "camera")])
    (producer,) = publisher.producers
    plis: list[float] = []
    (sender,) = [t.sender for t in publisher.pc.getTransceivers()]
    original = sender._handle_rtcp_packet

    async def watch(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            plis.append(time.monotonic())
        await original(packet)

    sender._handle_rtcp_packet = watch  # type: ignore[method-assign]
    pipes = [await piped(producer, edge) for edge in (b, c)]
    subscribers = [Subscriber(edge) for edge in (b, c) for _ in range(10)]
    try:
        for s in subscribers:
            s.consume(b.producers[producer.id] if s.router is b else c.producers[producer.id])
        await until(lambda: all(s.packets["video"] for s in subscribers), 20)
        await asyncio.sleep(0.5)
        start, plis_before = time.monotonic(), len(plis)
        asks = 0
        while time.monotonic() - start < 4.0:
            await asyncio.gather(*(s.send_pli(s.consumers[0]) for s in subscribers))
            asks += len(subscribers)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        elapsed = time.monotonic() - start
        window = plis[plis_before:]
        edge_consumers = [s.consumers[0] for s in subscribers]
        assert sum(c.stats.plis for c in edge_consumers) >= 0.9 * asks  # they did ask
        assert 3 <= len(window) <= elapsed / LAYER_KEYFRAME_INTERVAL + 1, (len(window), elapsed)
        gaps = [y - x for x, y in itertools.pairwise(window)]
        assert min(gaps) >= 0.95 * LAYER_KEYFRAME_INTERVAL, gaps
        assert sum(o.stats.keyframe_requests for o, _ in pipes) > len(window)  # merged here
    finally:
        await asyncio.gather(*(s.close() for s in subscribers))
        for o, i in pipes:
            o.close()
            i.close()
        await c.close()
        await publisher.close()


async def test_a_node_gateway_feeds_its_node_merging_keyframe_requests(
    routers: tuple[Router, Router],
) -> None:
    """Origin a → (encrypted) → gateway b → (plain) → edge c, as between nodes: c's copy
    is piped from b's copy. Keyframe requests from subscribers on b and c reach the
    publisher at most once a second through one pipe; a loss on the b→c hop is
    repaired from b's history (nothing asked of a or the publisher); subscribers' own
    NACKs are answered on their own router."""
    a, b = routers
    c = make_router()
    video = ClipTrack(make_vp8_clip(width=160, height=120, seconds=2, keyframe_interval=60))
    publisher = await publish(a, [(video, "camera")])
    (producer,) = publisher.producers
    plis: list[float] = []
    (sender,) = [t.sender for t in publisher.pc.getTransceivers()]
    original = sender._handle_rtcp_packet

    async def watch(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            plis.append(time.monotonic())
        await original(packet)

    sender._handle_rtcp_packet = watch  # type: ignore[method-assign]
    cross = await piped(producer, b, keys=PipeKeys.fresh())
    local = await piped(cross[1].producer, c)  # from the gateway's copy
    seen = [0]

    def lossy(data: bytes) -> bool:
        seen[0] += 1
        return seen[0] % 25 != 0

    local[1].keep = lossy
    viewer_seen = [0]

    def lossy_viewer(packet: RtpPacket) -> bool:
        viewer_seen[0] += 1
        return viewer_seen[0] % 25 != 0

    subscribers = [Subscriber(router) for router in (b, c) for _ in range(5)]
    viewer = Subscriber(c, decode=True, rtp_filter=lossy_viewer)
    try:
        for s in [*subscribers, viewer]:
            s.consume(cross[1].producer if s.router is b else local[1].producer)
        await until(lambda: all(s.packets["video"] for s in subscribers), 20)
        await until(lambda: viewer.frames["video"] > 0, 10)
        await asyncio.sleep(0.5)
        start, plis_before = time.monotonic(), len(plis)
        requests_before = cross[0].stats.keyframe_requests
        asks = 0
        while time.monotonic() - start < 3.0:
            await asyncio.gather(*(s.send_pli(s.consumers[0]) for s in subscribers))
            asks += len(subscribers)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        elapsed = time.monotonic() - start
        window = plis[plis_before:]
        assert 2 <= len(window) <= elapsed / LAYER_KEYFRAME_INTERVAL + 1, (len(window), elapsed)
        crossed = cross[0].stats.keyframe_requests - requests_before
        assert crossed <= elapsed / LAYER_KEYFRAME_INTERVAL + 1, crossed  # merged on the gateway
        assert local[0].stats.keyframe_requests > crossed
        # the b→c loss: NACKed to b and answered there
        edge_in = local[1].stats
        assert edge_in.dropped >= 5
        # the newest drop is seen as a gap only when the packet after it arrives
        assert edge_in.gaps >= edge_in.dropped - 1
        assert local[0].stats.retransmitted >= 0.9 * edge_in.gaps
        assert cross[0].stats.retransmitted == 0 and producer.stats.nacks_sent == 0
        assert local[1].stats.lost == 0 and local[1].stats.repaired > 0
        (edge_consumer,) = viewer.consumers
        assert edge_consumer.stats.nacks > 0 and edge_consumer.stats.retransmitted > 0
        # the viewer's NACKs stayed on c: b resent only what its pipe lost
        assert local[0].stats.retransmitted <= local[1].stats.dropped + 5
        counts = [s.packets["video"] for s in subscribers]
        assert min(counts[5:]) >= 0.97 * max(counts[:5]), counts
    finally:
        await asyncio.gather(*(s.close() for s in [*subscribers, viewer]))
        for o, i in (local, cross):
            o.close()
            i.close()
        await c.close()
        await publisher.close()


async def test_datagrams_from_anyone_but_the_peer_are_refused(
    routers: tuple[Router, Router],
) -> None:
    a, b = routers
    audio = ClipTrack(make_opus_clip(seconds=2))
    publisher = await publish(a, [(audio, "microphone")])
    (producer,) = publisher.producers
    out, pipe_in = await piped(producer, b)
    stray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stray.bind(("127.0.0.1", 0))
    try:
        await until(lambda: pipe_in.stats.packets > 20, 10)
        edge = b.producers[producer.id]
        forged = RtpPacket(
            payload_type=producer.codec.payload_type,  # type: ignore[union-attr]
            sequence_number=1,
            timestamp=1,
            ssrc=producer.ssrc or 1,
            payload=b"\xff" * 40,
        ).serialize()
        bye = bytes(RtcpByePacket(sources=[1]))
        for _ in range(5):
            stray.sendto(forged, pipe_in.address)
            stray.sendto(bye, pipe_in.address)
            stray.sendto(bye, out.address)
        # the right host, the wrong port is as foreign as anyone
        await until(lambda: pipe_in.stats.refused == 10 and out.stats.refused == 5, 5)
        assert not pipe_in.closed and not out.closed and not edge.closed
        packets = pipe_in.stats.packets
        await until(lambda: pipe_in.stats.packets > packets + 10, 5)  # still flowing
        assert edge.stats.duplicates == 0
        # one copy per router: a second pipe of the same producer is refused, unbound
        fds = open_fds()
        with pytest.raises(ValueError, match="already"):
            await PipeIn.open(b, pipe_descriptor(producer))
        await asyncio.sleep(0.05)
        assert open_fds() == fds and b.producers[producer.id] is edge and not edge.closed
    finally:
        stray.close()
        out.close()
        pipe_in.close()
        await publisher.close()


async def test_an_encrypted_pipe_carries_the_stream_and_takes_nothing_it_cannot_authenticate(
    routers: tuple[Router, Router],
) -> None:
    """SRTP both ways: the stream crosses (decoded at the edge, NACK repaired), the bytes
    on the wire are not plain RTP, and a forged, altered, replayed or wrongly keyed
    datagram from the peer's own address is refused and counted, as is a spoofed port."""
    a, b = routers
    video, audio = tracks(seconds=3)
    publisher = await publish(a, [(video, "camera"), (audio, "microphone")])
    video_out = next(p for p in publisher.producers if p.kind.value == "video")
    audio_out = next(p for p in publisher.producers if p.kind.value == "audio")
    keys = PipeKeys.fresh()
    out, pipe_in = await piped(video_out, b, keys=keys)
    audio_pipe = await piped(audio_out, b, keys=PipeKeys.fresh())
    assert out.encrypted and pipe_in.encrypted
    seen = [0]

    def lossy_pipe(data: bytes) -> bool:  # after authentication: the pipe's own loss
        seen[0] += 1
        return seen[0] % 30 != 0

    pipe_in.keep = lossy_pipe
    viewer = Subscriber(b, decode=True)
    counting = Subscriber(b)
    # a second encrypted pipe of the same producer, to a plain socket: what the wire sees
    tap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tap.bind(("127.0.0.1", 0))
    tap.setblocking(False)
    wire_keys = PipeKeys.fresh()
    wire = await PipeOut.open(video_out, peer=tap.getsockname(), keys=wire_keys)
    stray = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stray.bind(("127.0.0.1", 0))
    try:
        for s in (viewer, counting):
            s.consume(pipe_in.producer)
            s.consume(audio_pipe[1].producer)
        await until(lambda: viewer.frames["video"] > 20 and viewer.frames["audio"] > 20, 15)
        await until(lambda: pipe_in.stats.dropped >= 5, 10)
        await until(lambda: pipe_in.stats.repaired >= 5, 5)
        # on the wire: SRTP, the payload unreadable; the right key gives the packet back
        loop = asyncio.get_running_loop()
        datagram = await asyncio.wait_for(loop.sock_recv(tap, 2048), 5)
        while datagram[1] >= 192:  # an SRTCP sender report: skip to RTP
            datagram = await asyncio.wait_for(loop.sock_recv(tap, 2048), 5)
        plain = srtp_session(wire_keys.send, pylibsrtp.Policy.SSRC_ANY_INBOUND).unprotect(datagram)
        assert len(datagram) == len(plain) + SRTP_OVERHEAD
        packet = RtpPacket.parse(plain)
        assert packet.ssrc == video_out.ssrc and len(packet.payload) > 16
        assert packet.payload[:16] not in datagram  # encrypted
        # forged and tampered datagrams from the peer's own address and port
        peer = out._transport  # the origin end's own socket
        assert peer is not None
        ssrc = 0xDEAD
        good = srtp_session(keys.send, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        wrong = srtp_session(PipeKeys.fresh().send, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)

        def rtp(seq: int) -> bytes:
            return RtpPacket(
                payload_type=96, sequence_number=seq, timestamp=seq, ssrc=ssrc, payload=b"x" * 40
            ).serialize()

        bye = bytes(RtcpByePacket(sources=[1]))
        authentic = good.protect(rtp(7))
        altered = bytearray(good.protect(rtp(8)))
        altered[20] ^= 0x01
        refused = pipe_in.stats.unauthenticated
        for datagram in (
            rtp(1),  # plain RTP
            bye,  # a plain BYE: it must not close the pipe
            wrong.protect(rtp(2)),  # another key
            wrong.protect_rtcp(bye),
            bytes(altered),  # the right key, one bit changed
            authentic,  # the right key: taken (an unknown SSRC, ignored by the producer)
            authentic,  # ... and once more: a replay
        ):
            peer.sendto(datagram, pipe_in.address)
        await until(lambda: pipe_in.stats.unauthenticated == refused + 6, 5)
        # a spoofed source: the right key, the wrong port
        stray.sendto(good.protect(rtp(9)), pipe_in.address)
        stray.sendto(bye, out.address)
        await until(lambda: pipe_in.stats.refused == 1 and out.stats.refused == 1, 5)
        assert out.stats.unauthenticated == 0
        assert not pipe_in.closed and not out.closed and not pipe_in.producer.closed
        frames = viewer.frames["video"]
        await until(lambda: viewer.frames["video"] > frames + 20, 5)  # still flowing
        # loss on the pipe: NACKed up the encrypted pipe, answered from the origin's history
        st = pipe_in.stats
        assert st.nacks > 0 and out.stats.retransmitted > 0
        assert st.gaps >= st.dropped - 2 and st.repaired + st.lost + 2 >= st.gaps
        # on the wire: a 12-byte header (no extension on a single video stream) and the tag
        assert st.wire_bytes == st.bytes + st.packets * (12 + SRTP_OVERHEAD)
    finally:
        tap.close()
        stray.close()
        wire.close()
        await asyncio.gather(viewer.close(), counting.close())
        for o, i in [(out, pipe_in), audio_pipe]:
            o.close()
            i.close()
        await publisher.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def socket_of(pipe: PipeIn | PipeOut) -> Any:
    transport = pipe._transport
    assert transport is not None
    return transport.get_extra_info("socket")


def port_free(address: tuple[str, int]) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(address)
        except OSError:
            return False
        return True


async def test_closing_at_the_origin_closes_the_edge(routers: tuple[Router, Router]) -> None:
    a, b = routers
    video, audio = tracks()
    publisher = await publish(a, [(video, "camera"), (audio, "microphone")])
    subscriber = Subscriber(b)
    try:
        fds, tasks = open_fds(), len(asyncio.all_tasks())
        pipes = [await piped(p, b, ports=(41000, 41099)) for p in publisher.producers]
        assert open_fds() == fds + 2 * len(pipes)
        sockets = [socket_of(x) for pair in pipes for x in pair]
        assert len(asyncio.all_tasks()) == tasks  # a pipe owns no task
        addresses = [x.address for pair in pipes for x in pair]
        assert all(41000 <= port <= 41099 for _, port in addresses)
        for _o, i in pipes:
            subscriber.consume(i.producer)
        await until(lambda: subscriber.packets["video"] > 10, 15)
        closed: list[Any] = []
        for o, i in pipes:
            o.on_close(closed.append)
            i.on_close(closed.append)
        for producer in publisher.producers:  # the publisher unpublishes at the origin
            publisher.transport.close_producer(producer, CloseReason.UNPUBLISHED)
        await until(lambda: len(closed) == 4, 5)
        assert all(i.producer.closed for _o, i in pipes)
        assert b.producers == {}
        assert sorted(r for _c, r in subscriber.closed) == [CloseReason.PRODUCER_CLOSED] * 2
        assert all(c.closed for c in subscriber.consumers)
        await asyncio.sleep(0.05)  # sockets close at the next turn of the loop
        assert [s.fileno() for s in sockets] == [-1] * 4
        assert all(port_free(address) for address in addresses)
        assert all(p.relays == 0 for p in publisher.producers)
    finally:
        await subscriber.close()
        await publisher.close()


async def test_the_edge_closes_when_its_last_consumer_leaves(
    routers: tuple[Router, Router],
) -> None:
    a, b = routers
    video = ClipTrack(make_vp8_clip(width=160, height=120, seconds=2, keyframe_interval=30))
    publisher = await publish(a, [(video, "camera")])
    (producer,) = publisher.producers
    out, pipe_in = await piped(producer, b)
    sockets = [socket_of(out), socket_of(pipe_in)]
    idle: list[PipeIn] = []

    def on_idle(pipe: PipeIn) -> None:  # the control plane's decision: close it
        idle.append(pipe)
        pipe.close()

    pipe_in.on_idle(on_idle)
    subscribers = [Subscriber(b) for _ in range(2)]
    try:
        consumers = [s.consume(pipe_in.producer) for s in subscribers]
        await until(lambda: all(s.packets["video"] > 5 for s in subscribers), 15)
        assert producer.relays == 1
        consumers[0].close()
        await asyncio.sleep(0.2)
        assert idle == [] and not out.closed
        consumers[1].close()
        assert idle == [pipe_in] and pipe_in.closed and b.producers == {}
        await until(lambda: out.closed, 5)  # told over the pipe
        assert producer.relays == 0 and not producer.closed  # the origin goes on
        await asyncio.sleep(0.05)
        assert [s.fileno() for s in sockets] == [-1, -1]
    finally:
        await asyncio.gather(*(s.close() for s in subscribers))
        out.close()
        pipe_in.close()
        await publisher.close()


async def test_an_edge_in_another_process(routers: tuple[Router, Router]) -> None:
    a, _b = routers
    video, audio = tracks()
    publisher = await publish(a, [(video, "camera"), (audio, "microphone")])
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.pipe_peers",
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    stdin, stdout = child.stdin, child.stdout

    async def ask(message: dict[str, Any]) -> dict[str, Any]:
        stdin.write((json.dumps(message) + "\n").encode())
        await stdin.drain()
        line = await asyncio.wait_for(stdout.readline(), 30)
        reply: dict[str, Any] = json.loads(line)
        return reply

    outs: list[PipeOut] = []
    try:
        descriptors = [pipe_descriptor(p) for p in publisher.producers]
        json.dumps(descriptors)  # crosses processes as JSON
        reply = await ask({"descriptors": descriptors, "subscribers": 22, "decode": 2})
        for producer, address in zip(publisher.producers, reply["addresses"], strict=True):
            outs.append(await PipeOut.open(producer, peer=(address[0], address[1])))
        stdin.write((json.dumps({"origins": [list(o.address) for o in outs]}) + "\n").encode())

        async def flowing() -> bool:
            counts = await ask({"measure": True})
            return min(counts["packets"]) > 0 and min(counts["frames"]) > 5

        await until(flowing, 30)

        async def quiet() -> tuple[int, dict[str, Any]]:
            video.pause()
            audio.pause()
            await asyncio.sleep(0.7)
            return await publisher.packets_sent(), await ask({"measure": True})

        sent0, got0 = await quiet()
        video.resume()
        audio.resume()
        await asyncio.sleep(6)
        sent1, got1 = await quiet()
        expected = sent1 - sent0
        assert expected >= 400
        ratios = [(y - x) / expected for x, y in zip(got0["packets"], got1["packets"], strict=True)]
        assert len(ratios) == 20 and min(ratios) >= 0.99 and max(ratios) <= 1.0, ratios
        frames = [y - x for x, y in zip(got0["frames"], got1["frames"], strict=True)]
        assert min(frames) >= 150, frames
        assert sum(o.stats.refused for o in outs) == 0
        stopped = await ask({"stop": True})
        assert stopped["stopped"] and all(s["refused"] == 0 for s in stopped["stats"])
        await until(lambda: all(o.closed for o in outs), 5)  # the edge said goodbye
        assert all(p.relays == 0 for p in publisher.producers)
        assert await asyncio.wait_for(child.wait(), 20) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        for o in outs:
            o.close()
        await publisher.close()


class RawPublisher(asyncio.DatagramProtocol):
    """A publisher as the origin's pipe sees one: RTP with the RID (video) or the
    audio level (audio) extension, on plain UDP, straight into a :class:`PipeIn` on
    the origin's router. What a browser's simulcast is to the ingest (three SSRCs,
    learned from the RID; VP8 L1T3 descriptors), without a browser. It answers a
    PLI with a keyframe of that layer."""

    def __init__(self, ssrcs: tuple[int, ...], rids: tuple[str, ...]) -> None:
        self.ssrcs, self.rids = ssrcs, rids
        self.sent = [0] * len(ssrcs)
        self.plis: list[int] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        self._seq = [1000 * (i + 1) for i in range(len(ssrcs))]
        self._frame = 0
        self._keyframe = [True] * len(ssrcs)
        self._ext = HeaderExtensionsMap()
        self._ext.configure(
            RTCRtpParameters(
                headerExtensions=[
                    RTCRtpHeaderExtensionParameters(id=1, uri=AUDIO_LEVEL_URI),
                    RTCRtpHeaderExtensionParameters(id=2, uri=RID_URI),
                ]
            )
        )

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        for packet in RtcpPacket.parse(data):
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
                index = self.ssrcs.index(packet.media_ssrc)
                self.plis.append(index)
                self._keyframe[index] = True

    def send_frame(self) -> None:
        """One video frame on every layer (one packet each), L1T3 temporal IDs."""
        assert self.transport is not None and self.peer is not None
        n = self._frame
        self._frame += 1
        tid = (0, 2, 1, 2)[n % 4]
        for i, ssrc in enumerate(self.ssrcs):
            key = self._keyframe[i] or n % 90 == 0
            self._keyframe[i] = False
            descriptor = bytes(
                [0x90, 0xE0, 0x80 | (n >> 8) & 0x7F, n & 0xFF, (n // 4) & 0xFF, tid << 6]
            )
            payload = descriptor + bytes([0x10 if key else 0x11]) + bytes(300 * (i + 1))
            packet = RtpPacket(
                payload_type=96,
                marker=1,
                sequence_number=self._seq[i] & 0xFFFF,
                timestamp=3000 * n,
                ssrc=ssrc,
                payload=payload,
            )
            packet.extensions.rtp_stream_id = self.rids[i]
            self._seq[i] += 1
            self.transport.sendto(packet.serialize(self._ext), self.peer)
            self.sent[i] += 1

    def send_audio(self, ssrc: int, seq: int, level: int) -> None:
        assert self.transport is not None and self.peer is not None
        packet = RtpPacket(
            payload_type=111,
            sequence_number=seq,
            timestamp=960 * seq,
            ssrc=ssrc,
            payload=b"\x01" * 60,
        )
        packet.extensions.audio_level = (True, level)
        self.transport.sendto(packet.serialize(self._ext), self.peer)

    def send_sender_report(self, index: int, ntp: int, rtp: int) -> None:
        assert self.transport is not None and self.peer is not None
        info = RtcpSenderInfo(ntp_timestamp=ntp, rtp_timestamp=rtp, packet_count=1, octet_count=1)
        self.transport.sendto(
            bytes(RtcpSrPacket(ssrc=self.ssrcs[index], sender_info=info)), self.peer
        )


def video_descriptor(rids: tuple[str, ...]) -> dict[str, Any]:
    return {
        "version": 1,
        "producer_id": "pr_synthetic",
        "kind": "video",
        "source": "camera",
        "mid": "0",
        "codec": {"mime_type": "video/VP8", "clock_rate": 90000, "payload_type": 96},
        "encodings": [{"rid": rid, "ssrc": None} for rid in rids],
    }


async def test_simulcast_layers_and_audio_level_cross_a_pipe(
    routers: tuple[Router, Router],
) -> None:
    """Three simulcast encodings (learned by RID at the origin) and an audio stream
    with levels go through origin and edge; the edge's producer learns the same
    SSRCs, the temporal layers and the level, keeps the sender report's mapping,
    and its subscribers get layers picked for them."""
    a, b = routers
    rids, ssrcs = ("q", "h", "f"), (0x1111, 0x2222, 0x3333)
    loop = asyncio.get_running_loop()
    raw = RawPublisher(ssrcs, rids)
    transport, _ = await loop.create_datagram_endpoint(lambda: raw, local_addr=("127.0.0.1", 0))
    ingress = await PipeIn.open(
        a, video_descriptor(rids), peer=transport.get_extra_info("sockname")
    )
    raw.peer = ingress.address
    audio_descriptor = {
        "version": 1,
        "producer_id": "pr_voice",
        "kind": "audio",
        "source": "microphone",
        "codec": {
            "mime_type": "audio/opus",
            "clock_rate": 48000,
            "payload_type": 111,
            "channels": 2,
        },
        "encodings": [{"rid": None, "ssrc": 0x4444}],
    }
    audio_ingress = await PipeIn.open(
        a, audio_descriptor, peer=transport.get_extra_info("sockname")
    )
    origin, voice = ingress.producer, audio_ingress.producer
    subscribers = [Subscriber(b) for _ in range(3)]
    pipes: list[tuple[PipeOut, PipeIn]] = []
    try:
        raw.send_frame()
        raw.peer = audio_ingress.address
        raw.send_audio(0x4444, 1, 60)
        raw.peer = ingress.address
        await until(lambda: all(layer.ssrc for layer in origin.simulcast.layers), 5)  # type: ignore[union-attr]
        await until(lambda: voice.stats.packets == 1, 5)
        pipes = [await piped(origin, b), await piped(voice, b)]
        (out, pipe_in), (_audio_out, audio_in) = pipes
        edge = pipe_in.producer
        assert edge.simulcast is not None and edge.id == "pr_synthetic"
        assert [layer.ssrc for layer in edge.simulcast.layers] == list(ssrcs)  # told up front
        assert origin.pinned_layers() == {0, 1, 2}  # dynacast keeps what the pipe relays
        for s in subscribers:
            s.consume(edge)
        raw.send_sender_report(1, ntp=(3_900_000_000 << 32), rtp=123_456)
        sent_before = list(raw.sent)
        for n in range(150):  # 5 s at 30 fps
            raw.send_frame()
            if n % 3 == 0:
                raw.peer = audio_ingress.address
                raw.send_audio(0x4444, 2 + n // 3, 25 if n == 60 else 70)
                raw.peer = ingress.address
            await asyncio.sleep(1 / 30)
        await asyncio.sleep(0.3)
        relayed = [layer.packets for layer in edge.simulcast.layers]
        sent = [x - y for x, y in zip(raw.sent, sent_before, strict=True)]
        assert all(r >= s for r, s in zip(relayed, sent, strict=True)), (relayed, sent)
        assert edge.simulcast.temporal_layers == 3
        assert [layer.ssrc for layer in edge.simulcast.layers] == list(ssrcs)
        assert edge.take_loudest() == 127 and audio_in.producer.take_loudest() == 25
        report = edge.sender_report_of(1)
        assert report is not None and 0 <= report.rtp - 123_456 < 90000  # moved to relay time
        assert abs((report.ntp >> 32) - 3_900_000_000) <= 1
        assert all(s.packets["video"] > 50 for s in subscribers)
        for s in subscribers:
            (consumer,) = s.consumers
            assert consumer.selector is not None and consumer.selector.spatial >= 0
        assert raw.plis  # the edge's subscribers' keyframe requests reached the publisher
        assert out.stats.refused == pipe_in.stats.refused == 0
        # Nobody at the edge needs the upper layers any more: its dynacast tells the
        # origin, whose own dynacast then needs them for nobody.
        for s in subscribers:
            s.consumers[0].close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and origin.pinned_layers() != {0}:
            raw.send_frame()
            await asyncio.sleep(1 / 30)
        assert origin.pinned_layers() == {0}  # what the origin's dynacast keeps on
        # had that message been lost, the next sender report of the lowest layer repeats it
        origin.relay_needs(out._relay, {0, 1, 2})
        raw.send_sender_report(0, ntp=(3_900_000_100 << 32), rtp=654_321)
        raw.send_frame()
        await until(lambda: origin.pinned_layers() == {0}, 2)
    finally:
        await asyncio.gather(*(s.close() for s in subscribers))
        for o, i in pipes:
            o.close()
            i.close()
        ingress.close()
        audio_ingress.close()
        transport.close()


async def test_a_recorder_on_the_edge(routers: tuple[Router, Router], tmp_path: Path) -> None:
    """The recorder, a consumer without a layer selector, records the edge's copies
    into a WebM that decodes, audio and video aligned by the relayed sender reports."""
    a, b = routers
    video, audio = tracks()
    publisher = await publish(a, [(video, "camera"), (audio, "microphone")])
    pipes = [await piped(p, b) for p in publisher.producers]
    recorder = Recorder(tmp_path / "rec")
    try:
        for _o, pipe_in in pipes:
            assert recorder.attach(pipe_in.producer, feed="pa_x", label="Presenter") is not None
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            recorder.tick()
            await asyncio.sleep(0.1)
        result = await recorder.stop()
    finally:
        for o, i in pipes:
            o.close()
            i.close()
        await publisher.close()
    assert len(result.files) == 1 and result.duration > 2.5, result
    with av.open(str(result.directory / result.files[0].name)) as container:
        kinds = sorted(s.type for s in container.streams)
        assert kinds == ["audio", "video"]
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 60, frames  # ~3+ s at 30 fps, decoded
