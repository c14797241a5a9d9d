"""The direct receive path: which datagrams it takes, and which it leaves to aiortc."""

from __future__ import annotations

import asyncio
import types
from typing import Any

import aioice.ice
import aioice.stun
import pylibsrtp

from webinar.sfu import _aiortc as hooks

RTP = bytes([0x80, 96, 0, 1]) + bytes(8) + b"payload"
RTCP = bytes([0x80, 201, 0, 1]) + bytes(4)  # an empty receiver report
DTLS = bytes([22, 0xFE, 0xFD]) + bytes(10)


class FakeSession:
    def __init__(self) -> None:
        self.fail = False

    def unprotect(self, data: bytes) -> bytes:
        if self.fail:
            raise pylibsrtp.Error("authentication failure")
        return b"clear-rtp:" + data

    def unprotect_rtcp(self, data: bytes) -> bytes:
        return b"clear-rtcp:" + data


class Setup:
    """A stand-in DTLS transport with the attributes the path reads, and the real
    ingress and feedback hooks installed on it."""

    def __init__(self) -> None:
        self.conn = types.SimpleNamespace(_queue=asyncio.Queue(), _protocols=[])
        self.conn.data_received = lambda data, component: self.conn._queue.put_nowait(
            (data, component)
        )
        self.dtls: Any = types.SimpleNamespace(
            transport=types.SimpleNamespace(
                iceGatherer=types.SimpleNamespace(_connection=self.conn)
            ),
            _state=hooks._CONNECTED,
            _rx_srtp=FakeSession(),
            _rtp_header_extensions_map=None,
            _RTCDtlsTransport__rx_bytes=0,
            _RTCDtlsTransport__rx_packets=0,
        )
        self.rtp: list[Any] = []
        self.rtcp: list[Any] = []
        self.parsed: list[bytes] = []

        def parse_rtp(data: bytes, ext_map: Any) -> Any:
            self.parsed.append(data)
            return types.SimpleNamespace(data=data)

        self._parse = parse_rtp
        original = hooks.RtpPacket.parse
        hooks.RtpPacket.parse = parse_rtp  # type: ignore[method-assign,assignment]
        try:
            hooks.install_ingress(
                self.dtls, lambda packet: lambda p, arrival: self.rtp.append((p.data, arrival))
            )
        finally:
            hooks.RtpPacket.parse = original  # type: ignore[method-assign]
        original_rtcp = hooks.RtcpPacket.parse
        hooks.RtcpPacket.parse = staticmethod(lambda data: [data])  # type: ignore[method-assign,assignment]
        try:
            hooks.install_feedback(self.dtls, self.rtcp.append)
        finally:
            hooks.RtcpPacket.parse = original_rtcp  # type: ignore[method-assign]
        direct = hooks.direct_receive(self.dtls)
        assert direct is not None
        self.direct = direct

    def queued(self) -> list[bytes]:
        out = []
        while not self.conn._queue.empty():
            out.append(self.conn._queue.get_nowait()[0])
        return out


async def test_rtp_and_rtcp_go_straight_to_the_handlers() -> None:
    s = Setup()
    s.conn.data_received(RTP, 1)
    s.conn.data_received(RTCP, 1)
    assert [data for data, _ in s.rtp] == [b"clear-rtp:" + RTP]
    assert s.rtp[0][1] > 3_000_000_000_000  # arrival in ms since 1900, as aiortc's clock
    assert s.rtcp == [b"clear-rtcp:" + RTCP]
    assert s.queued() == []
    assert s.direct.handled == 2
    assert s.dtls._RTCDtlsTransport__rx_packets == 2
    assert s.dtls._RTCDtlsTransport__rx_bytes == len(RTP) + len(RTCP)


async def test_everything_else_keeps_aiortcs_path_and_order() -> None:
    s = Setup()
    s.conn.data_received(DTLS, 1)  # DTLS: aiortc's task
    s.conn.data_received(RTP, 1)  # queued behind it, so the order holds
    assert s.queued() == [DTLS, RTP]
    assert s.rtp == []
    s.dtls._state = object()  # not connected (closing, closed): aiortc decides
    s.conn.data_received(RTP, 1)
    assert s.queued() == [RTP]
    s.dtls._state = hooks._CONNECTED
    s.dtls._rx_srtp = None  # no SRTP keys yet
    s.conn.data_received(RTP, 1)
    assert s.queued() == [RTP] and s.direct.handled == 0


async def test_a_handler_replaced_after_ours_is_respected() -> None:
    s = Setup()

    async def filtered(data: bytes, arrival_time_ms: int) -> None:
        pass

    s.dtls._handle_rtp_data = filtered  # e.g. a test's loss filter wrapping ours
    s.conn.data_received(RTP, 1)
    assert s.queued() == [RTP] and s.rtp == []
    s.conn.data_received(RTCP, 1)  # the feedback hook is still ours
    assert s.rtcp == [b"clear-rtcp:" + RTCP]


async def test_a_packet_that_does_not_authenticate_is_dropped() -> None:
    s = Setup()
    s.dtls._rx_srtp.fail = True
    s.conn.data_received(RTP, 1)
    assert s.rtp == [] and s.queued() == []


async def test_media_datagrams_skip_the_stun_parse_and_stun_still_works() -> None:
    s = Setup()
    protocol = aioice.ice.StunProtocol(s.conn)  # type: ignore[arg-type]
    protocol.local_candidate = types.SimpleNamespace(component=1)  # type: ignore[assignment]
    requests: list[Any] = []
    s.conn.request_received = lambda message, addr, proto: requests.append(message)
    s.conn._protocols.append(protocol)
    s.conn.data_received(DTLS, 1)  # a datagram on the slow path patches new protocols
    s.queued()
    parsed: list[bytes] = []
    original = aioice.stun.parse_message

    def counting(data: bytes, *args: Any, **kwargs: Any) -> Any:
        parsed.append(data)
        return original(data, *args, **kwargs)

    aioice.stun.parse_message = counting  # type: ignore[assignment]
    try:
        protocol.datagram_received(RTP, ("127.0.0.1", 9))
        assert parsed == [] and [d for d, _ in s.rtp] == [b"clear-rtp:" + RTP]
        request = aioice.stun.Message(
            message_method=aioice.stun.Method.BINDING,
            message_class=aioice.stun.Class.REQUEST,
        )
        protocol.datagram_received(bytes(request), ("127.0.0.1", 9))
        assert len(parsed) == 1 and len(requests) == 1
    finally:
        aioice.stun.parse_message = original  # type: ignore[assignment]
