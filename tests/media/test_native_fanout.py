"""The native fan-out (``src/webinar/sfu/_fanout.c``) and the pure-Python path, side by side.

Every test runs on both paths (the ``native_path`` fixture of tests/conftest.py:
``native.use(True/False)``) through the real server with aiortc subscribers decrypting what
arrives: what the subscriber sees on the wire (sequence numbers, timestamps, marker, payload
type, SSRC, MID, abs-send-time, audio level, payload) must be the producer's packet
rewritten by one constant offset per stream, with nothing lost or duplicated;
retransmissions answer NACKs from the producer's history; a new SRTP session (DTLS) and a
new ICE pair are picked up. The unit tests compare the C rewrite with
:meth:`Consumer._write` byte for byte."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import shutil
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest
from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from tests.helpers import running_server
from tests.media.test_forwarding import LOOPBACK, until
from tests.unit.test_consumer import make_consumer
from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.client.peer import WebinarClient
from webinar.sfu import native
from webinar.sfu.consumer import Consumer, ConsumerLayout
from webinar.sfu.producer import Producer
from webinar.sfu.rtp import MediaPacket
from webinar.sfu.twcc import TwccSender
from webinar.sfu.types import MediaKind

BUILT = native.module() is not None


# --------------------------------------------------------------------------- the C rewrite


def media_packet(seq: int, *, level: int = -1, marker: int = 1, size: int = 50) -> MediaPacket:
    return MediaPacket(
        seq=seq,
        timestamp=0xFFFFFF00 + seq,  # wraps under the offset
        marker=marker,
        payload=bytes([0x10, seq & 0xFF]) + bytes(size),
        keyframe=False,
        audio_level=level,
        arrival=1.0,
        abs_send_time=b"\x0a\x0b\x0c",
    )


LAYOUTS = [
    {},
    {"mid_ext_id": None},
    {"abs_send_time_ext_id": None, "audio_level_ext_id": None},
    {"mid_ext_id": None, "abs_send_time_ext_id": None, "audio_level_ext_id": None},
    {"mid_ext_id": 14},
]


@pytest.mark.skipif(not BUILT, reason="the native fan-out is not built")
def test_the_numbers_struct_and_its_python_twin_agree() -> None:
    """A consumer's numbering lives in ``_fanout.Numbers`` when the module is built, in
    ``native.Numbers`` without it: the same attributes, the same start, both writable."""
    module = native.module()
    names = ("seq_offset", "base_seq", "highest_out", "ts_offset", "packets", "bytes", "last")
    c_side, py_side = module.Numbers(), native.Numbers()
    for nums in (c_side, py_side):
        assert [getattr(nums, n) for n in names] == [0, 0, 0, 0, 0, 0, None]
        nums.highest_out = (1 << 40) + 5
        nums.seq_offset = -70000
        nums.last = "x"
        assert (nums.highest_out, nums.seq_offset, nums.last) == ((1 << 40) + 5, -70000, "x")
    with pytest.raises(TypeError):
        module.Numbers(1)
    with pytest.raises(TypeError):
        c_side.packets = "many"
    consumer, _tap, _producer = make_consumer(MediaKind.AUDIO)
    assert type(consumer._n) is module.Numbers
    consumer._n.packets, consumer._n.bytes = 3, 300
    assert (consumer.stats.packets, consumer.stats.bytes) == (3, 300)  # one counter, two views


@pytest.mark.skipif(not BUILT, reason="the native fan-out is not built")
@pytest.mark.parametrize("kind", [MediaKind.VIDEO, MediaKind.AUDIO])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_c_rewrite_matches_consumer_write(kind: MediaKind, layout: dict[str, Any]) -> None:
    module = native.module()
    consumer, _tap, _producer = make_consumer(kind)
    video = kind is MediaKind.VIDEO
    base = ConsumerLayout(
        payload_type=97 if video else 111,
        rtx_payload_type=98 if video else None,
        mid="12" if layout.get("mid_ext_id") == 14 else "3",
        mid_ext_id=1,
        abs_send_time_ext_id=3 if video else None,
        audio_level_ext_id=None if video else 2,
    )
    consumer.set_layout(dataclasses.replace(base, **layout))
    consumer._n.seq_offset = 0x1234 - 70000
    consumer._n.ts_offset = 0x300
    for mp in [
        media_packet(70000),
        media_packet(70001, level=0x85, marker=0),
        media_packet(70002, level=-1, size=1100),
        media_packet(70003, level=0),
        media_packet(70004, size=1298),  # a full-size packet (aiortc: 1300 bytes of payload)
    ]:
        out_seq = (mp.seq + consumer._n.seq_offset) & 0xFFFF
        n = consumer._write(mp, consumer._pt, out_seq, consumer._ssrc, mp.payload, -1)
        python = bytes(consumer._out[:n])
        assert module.rewrite(consumer, mp) == python


@pytest.mark.skipif(not BUILT, reason="the native fan-out is not built")
@pytest.mark.parametrize("mid_ext_id", [1, None])
def test_c_rewrite_stamps_transport_wide_numbers_as_python_does(mid_ext_id: int | None) -> None:
    """With transport-cc the C path writes the next transport-wide number (shared by the
    subscriber's video consumers) and records its send time and size in the sender's own
    arrays, as TwccSender.stamp does for the Python path."""
    module = native.module()
    sender = TwccSender()
    consumer, _tap, _producer = make_consumer(twcc=sender)
    assert consumer._layout is not None
    consumer.set_layout(dataclasses.replace(consumer._layout, mid_ext_id=mid_ext_id))
    assert consumer._twcc is sender
    consumer._n.seq_offset = 0x1234 - 70000
    consumer._n.ts_offset = 0x300
    next_seq, sent_at, sent_seq, size = sender.native
    next_seq[0] = 0xFFFE  # wraps within the run
    for mp in [media_packet(70000), media_packet(70001, size=1100), media_packet(70002, size=1298)]:
        number = next_seq[0]
        slot = number & (len(sent_seq) - 1)
        out_seq = (mp.seq + consumer._n.seq_offset) & 0xFFFF
        n = consumer._write(mp, consumer._pt, out_seq, consumer._ssrc, mp.payload, -1)
        python = bytes(consumer._out[:n])
        python_record = (sent_seq[slot], size[slot], sent_at[slot])
        assert next_seq[0] == (number + 1) & 0xFFFF
        next_seq[0], sent_seq[slot], size[slot] = number, -1, 0
        assert module.rewrite(consumer, mp) == python
        assert next_seq[0] == (number + 1) & 0xFFFF
        assert (sent_seq[slot], size[slot]) == python_record[:2] == (number, n)
        assert 0 <= sent_at[slot] - python_record[2] < 1000.0  # ms, the same clock
        packet = RtpPacket.parse(python, ext_map_twcc(mid_ext_id))
        assert packet.extensions.transport_sequence_number == number


def ext_map_twcc(mid_ext_id: int | None) -> HeaderExtensionsMap:
    m = HeaderExtensionsMap()
    exts = [
        RTCRtpHeaderExtensionParameters(
            id=5, uri="http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
        )
    ]
    if mid_ext_id is not None:
        exts.append(
            RTCRtpHeaderExtensionParameters(
                id=mid_ext_id, uri="urn:ietf:params:rtp-hdrext:sdes:mid"
            )
        )
    m.configure(RTCRtpParameters(headerExtensions=exts))
    return m


# --------------------------------------------------------------------------- on the wire


@dataclasses.dataclass
class Seen:
    """Every RTP packet a subscriber decrypted."""

    packets: list[RtpPacket] = dataclasses.field(default_factory=list)

    def keep(self, packet: RtpPacket) -> bool:
        self.packets.append(packet)
        return True

    def of(self, consumer: Consumer) -> list[RtpPacket]:
        """The consumer's media packets (not RTX, not padding)."""
        return [
            p
            for p in self.packets
            if p.extensions.mid == consumer.mid and p.payload_type == consumer._pt and p.payload
        ]


def forwarded(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[int, MediaPacket]]:
    """Record every packet the producers fan out, by kind and 16-bit input sequence number."""
    seen: dict[str, dict[int, MediaPacket]] = {"video": {}, "audio": {}}
    original = Producer._fan_out

    def fan_out(self: Producer, batch: list[MediaPacket]) -> None:
        kind = "video" if self.kind is MediaKind.VIDEO else "audio"
        for mp in batch:
            seen[kind][mp.seq & 0xFFFF] = mp
        original(self, batch)

    monkeypatch.setattr(Producer, "_fan_out", fan_out)
    return seen


def check_stream(
    received: list[RtpPacket], sent: dict[int, MediaPacket], consumer: Consumer, kind: str
) -> None:
    """Each packet is the producer's, rewritten by the consumer's constant offsets."""
    assert len(received) > 20, (kind, len(received))
    seq_offsets, ts_offsets = set(), set()
    for packet in received:
        mp = None
        for candidate in sent.values():  # match by payload, then check the numbering
            if candidate.payload == packet.payload:
                delta = (packet.sequence_number - candidate.seq) & 0xFFFF
                if not seq_offsets or delta in seq_offsets:
                    mp = candidate
                    break
        assert mp is not None, (kind, packet.sequence_number)
        seq_offsets.add((packet.sequence_number - mp.seq) & 0xFFFF)
        ts_offsets.add((packet.timestamp - mp.timestamp) & 0xFFFFFFFF)
        assert packet.marker == mp.marker
        assert packet.ssrc == consumer.ssrc
        assert packet.extensions.mid == consumer.mid
        if kind == "video":
            assert packet.extensions.abs_send_time == int.from_bytes(mp.abs_send_time, "big")
        elif mp.audio_level >= 0:
            level = packet.extensions.audio_level
            assert level == (bool(mp.audio_level & 0x80), mp.audio_level & 0x7F)
    assert len(seq_offsets) == 1 and len(ts_offsets) == 1, (kind, seq_offsets, ts_offsets)
    seqs = [p.sequence_number for p in received]
    steps = {(b - a) & 0xFFFF for a, b in itertools.pairwise(seqs)}
    assert steps == {1}, (kind, sorted(steps)[:10])  # no gap, no duplicate, in order


async def test_wire_is_the_same_on_both_paths(
    tmp_path: Path, native_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = forwarded(monkeypatch)
    counters0 = native.module().counters() if BUILT else {"sent": 0, "rx_parsed": 0}
    async with running_server(tmp_path / "data") as server:
        event = await server.create_event()
        presenter = WebinarClient(server.base_url, host_addresses=LOOPBACK)
        seen = [Seen(), Seen()]
        subscribers = [
            WebinarClient(server.base_url, mode="count", host_addresses=LOOPBACK, rtp_filter=s.keep)
            for s in seen
        ]
        try:
            await presenter.join(event.event_id, "Presenter", event.presenter_key)
            for i, s in enumerate(subscribers):
                await s.join(event.event_id, f"S{i}")
            video = ClipTrack(make_vp8_clip(width=320, height=240, seconds=2, keyframe_interval=30))
            audio = ClipTrack(make_opus_clip(seconds=2))
            await presenter.publish([(video, "camera"), (audio, "microphone")])
            await until(lambda: all(len(s.packets) > 250 for s in seen), within=20)
            router = next(iter(server.rooms.rooms())).router
            consumers = [c for p in router.producers.values() for c in p.consumers]
            assert len(consumers) == 4
            for consumer in consumers:
                (s,) = [s for s in seen if any(p.ssrc == consumer.ssrc for p in s.packets)]
                packets = s.of(consumer)
                kind = consumer.kind.value
                check_stream(packets, sent[kind], consumer, kind)
                # the stats count what went out (a few more may be on their way)
                assert consumer.stats.packets >= len(packets)
            if native_path == "native":
                counters = native.module().counters()
                assert counters["sent"] - counters0["sent"] > 400
                # the publisher's packets were decrypted and read by the C receive path too
                assert counters["rx_parsed"] - counters0["rx_parsed"] > 250
        finally:
            await asyncio.gather(presenter.close(), *(s.close() for s in subscribers))


async def test_nacks_answered_from_the_producer_history(tmp_path: Path, native_path: str) -> None:
    dropped: set[int] = set()

    def lossy(packet: RtpPacket) -> bool:
        # drop every 10th video packet once: the retransmission (RTX) must bring it
        seq = packet.sequence_number
        if packet.payload_type == 97 and seq % 10 == 0 and seq not in dropped:
            dropped.add(seq)
            return False
        return True

    async with running_server(tmp_path / "data") as server:
        event = await server.create_event()
        presenter = WebinarClient(server.base_url, host_addresses=LOOPBACK)
        viewer = WebinarClient(
            server.base_url, mode="decode", host_addresses=LOOPBACK, rtp_filter=lossy
        )
        try:
            await presenter.join(event.event_id, "Presenter", event.presenter_key)
            await viewer.join(event.event_id, "Viewer")
            video = ClipTrack(
                make_vp8_clip(width=320, height=240, seconds=4, keyframe_interval=120)
            )
            await presenter.publish([(video, "camera")])
            await until(lambda: viewer.stats.frames["video"] > 0, within=15)
            sent0, decoded0 = video.frames_sent, viewer.stats.frames["video"]
            await asyncio.sleep(4)
            sent, decoded = video.frames_sent - sent0, viewer.stats.frames["video"] - decoded0
            router = next(iter(server.rooms.rooms())).router
            (consumer,) = [c for p in router.producers.values() for c in p.consumers]
            assert consumer.selector is None  # the plain path
            assert consumer._pt == 97  # what the loss filter drops
            assert len(dropped) > 10
            assert consumer.stats.retransmitted >= 0.8 * len(dropped), (
                consumer.stats,
                len(dropped),
            )
            assert decoded >= 0.9 * sent, (decoded, sent)
        finally:
            await asyncio.gather(presenter.close(), viewer.close())


async def test_new_srtp_session_and_new_ice_pair_are_picked_up(
    tmp_path: Path, native_path: str
) -> None:
    async with running_server(tmp_path / "data") as server:
        event = await server.create_event()
        presenter = WebinarClient(server.base_url, host_addresses=LOOPBACK)
        viewer = WebinarClient(server.base_url, mode="count", host_addresses=LOOPBACK)
        try:
            await presenter.join(event.event_id, "Presenter", event.presenter_key)
            await viewer.join(event.event_id, "Viewer")
            video = ClipTrack(make_vp8_clip(width=320, height=240, seconds=2, keyframe_interval=30))
            await presenter.publish([(video, "camera")])
            await until(lambda: viewer.stats.packets["video"] > 50, within=15)
            router = next(iter(server.rooms.rooms())).router
            (consumer,) = [c for p in router.producers.values() for c in p.consumers]
            sink: Any = consumer._sink
            dtls = sink._dtls
            # a new SRTP session with the same keys (what a DTLS restart hands over)
            old_session = dtls._tx_srtp
            dtls._setup_srtp()
            assert dtls._tx_srtp is not old_session
            before = viewer.stats.packets["video"]
            await until(lambda: viewer.stats.packets["video"] > before + 50, within=5)
            assert sink._session is dtls._tx_srtp
            # a new nominated pair object (same path): the sink resolves it again
            nominated = sink._nominated
            old_pair = nominated[1]
            new_pair = type(old_pair)(old_pair.protocol, old_pair.remote_candidate)
            nominated[1] = new_pair
            before = viewer.stats.packets["video"]
            await until(lambda: viewer.stats.packets["video"] > before + 50, within=5)
            assert sink._pair is new_pair
        finally:
            await asyncio.gather(presenter.close(), viewer.close())


async def test_a_refused_datagram_does_not_take_the_rest_of_the_frame(
    tmp_path: Path, native_path: str
) -> None:
    """A firewall on the server that refuses one datagram in five to a subscriber (an
    nftables drop in the output hook: that one ``sendto``/``sendmmsg`` fails with EPERM)
    loses that one datagram only, on both paths: the rest of the frame still goes out
    (the native path once stopped at the first refused message of a frame)."""
    if not shutil.which("nft"):
        pytest.fail("needs nft (scripts/test installs nftables)")
    seen = Seen()
    table = f"webinar_refuse_{os.getpid()}"
    async with running_server(tmp_path / "data") as server:
        event = await server.create_event()
        presenter = WebinarClient(server.base_url, host_addresses=LOOPBACK)
        viewer = WebinarClient(
            server.base_url, mode="count", host_addresses=LOOPBACK, rtp_filter=seen.keep
        )
        try:
            await presenter.join(event.event_id, "Presenter", event.presenter_key)
            await viewer.join(event.event_id, "Viewer")
            # big frames: several packets each, so a frame has a rest to lose
            video = ClipTrack(make_vp8_clip(width=640, height=480, seconds=2, keyframe_interval=5))
            await presenter.publish([(video, "camera")])
            await until(lambda: viewer.stats.packets["video"] > 50, within=15)
            router = next(iter(server.rooms.rooms())).router
            (consumer,) = [c for p in router.producers.values() for c in p.consumers]
            host, port = consumer._sink._addr  # type: ignore[union-attr]
            rules = (
                f"table inet {table} {{\n chain out {{\n"
                "  type filter hook output priority 0; policy accept;\n"
                f"  ip daddr {host} udp dport {port} numgen inc mod 5 == 0 drop\n }}\n}}\n"
            )
            nft = await asyncio.create_subprocess_exec(
                "nft", "-f", "-", stdin=PIPE, stderr=PIPE
            )  # fmt: skip
            _, err = await nft.communicate(rules.encode())
            assert nft.returncode == 0, err
            counters0 = native.module().counters() if native_path == "native" else {}
            # every packet the consumer numbered in the window, whether it went out or not
            out0, got0 = consumer._n.highest_out, len(seen.of(consumer))
            await asyncio.sleep(3)
            numbered, got = consumer._n.highest_out - out0, len(seen.of(consumer)) - got0
        finally:
            nft = await asyncio.create_subprocess_exec(
                "nft", "delete", "table", "inet", table, stderr=PIPE
            )  # fmt: skip
            await nft.communicate()
            await asyncio.gather(presenter.close(), viewer.close())
    assert numbered > 150, numbered
    # a fifth of the datagrams refused (media and retransmissions alike); NACKs repair
    assert got >= 0.7 * numbered, (got, numbered)
    if native_path == "native":
        counters = native.module().counters()
        refused = counters["refused"] - counters0["refused"]
        assert refused > 20, counters
        # nothing else dropped with them (before, each refusal dropped the frame's rest,
        # which only NACKs then repaired)
        assert counters["dropped"] - counters0["dropped"] < refused / 10, (counters, counters0)
