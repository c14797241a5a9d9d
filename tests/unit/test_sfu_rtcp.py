"""The SFU's own RTCP: one compound SR + SDES per subscriber connection."""

from __future__ import annotations

from aiortc.rtp import RtcpPacket, RtcpSdesPacket, RtcpSenderInfo, RtcpSrPacket

from webinar.sfu._aiortc import sender_reports


def sr(ssrc: int) -> RtcpSrPacket:
    return RtcpSrPacket(
        ssrc=ssrc,
        sender_info=RtcpSenderInfo(
            ntp_timestamp=(3_900_000_000 << 32) + ssrc,
            rtp_timestamp=ssrc * 10,
            packet_count=ssrc,
            octet_count=ssrc * 100,
        ),
    )


def test_one_compound_packet_carries_every_stream_with_its_cname() -> None:
    (data,) = sender_reports([sr(1), sr(2), sr(3)], "cname-1")
    packets = RtcpPacket.parse(data)
    srs = [p for p in packets if isinstance(p, RtcpSrPacket)]
    (sdes,) = [p for p in packets if isinstance(p, RtcpSdesPacket)]
    assert [p.ssrc for p in srs] == [1, 2, 3]
    assert [p.sender_info.packet_count for p in srs] == [1, 2, 3]
    assert srs[1].sender_info.rtp_timestamp == 20
    assert [c.ssrc for c in sdes.chunks] == [1, 2, 3]
    assert all(c.items == [(1, b"cname-1")] for c in sdes.chunks)


def test_many_streams_are_split_under_the_mtu() -> None:
    out = sender_reports([sr(i) for i in range(1, 31)], "x" * 36)
    assert len(out) == 3
    assert all(len(d) < 1200 for d in out)
    ssrcs = [p.ssrc for d in out for p in RtcpPacket.parse(d) if isinstance(p, RtcpSrPacket)]
    assert ssrcs == list(range(1, 31))


def test_without_cname_only_sender_reports() -> None:
    (data,) = sender_reports([sr(7)], None)
    assert [type(p) for p in RtcpPacket.parse(data)] == [RtcpSrPacket]
