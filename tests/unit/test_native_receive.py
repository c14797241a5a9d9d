"""The native receive path (``_fanout.unprotect_rtp`` / ``unprotect_rtcp`` / ``parse_rtp``)
against its Python twin: pylibsrtp's ``Session.unprotect`` and aiortc's ``RtpPacket.parse``.

The C parse reads the common shape of a packet and hands anything else back for aiortc to
parse: wherever it returns a packet, that packet must be the one aiortc makes, attribute for
attribute (in the same order), and it must never accept what aiortc rejects.
"""

from __future__ import annotations

import dataclasses
import os
import random
import struct
import types
from typing import Any

import pylibsrtp
import pytest
from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import (
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
)
from pylibsrtp._binding import ffi

from webinar.sfu import _aiortc as hooks
from webinar.sfu import native

BUILT = native.module() is not None
needs_c = pytest.mark.skipif(not BUILT, reason="the native module is not built")

URIS = {
    "mid": "urn:ietf:params:rtp-hdrext:sdes:mid",
    "rid": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "rrid": "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "ast": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "toffset": "urn:ietf:params:rtp-hdrext:toffset",
    "level": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "twcc": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
}


def ext_map(ids: dict[str, int]) -> HeaderExtensionsMap:
    m = HeaderExtensionsMap()
    m.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=i, uri=URIS[k]) for k, i in ids.items()
            ]
        )
    )
    return m


VIDEO_IDS = {"mid": 1, "rid": 2, "rrid": 3, "ast": 4, "twcc": 5, "toffset": 6}
AUDIO_IDS = {"mid": 1, "level": 10, "twcc": 5}


def ids_of(m: HeaderExtensionsMap) -> Any:
    return getattr(m, hooks._EXT_IDS)


def header(
    *,
    seq: int = 1,
    ts: int = 0xFFFFFFF0,
    ssrc: int = 0xDEADBEEF,
    pt: int = 96,
    marker: int = 1,
    elements: list[tuple[int, bytes]] | None = None,
    padding: int = 0,
    payload: bytes = b"\x90\xe0\x80\x01payload",
    raw_ext: bytes | None = None,
    profile: int = 0xBEDE,
    cc: int = 0,
) -> bytes:
    """An RTP packet written by hand (one-byte header extension elements as given)."""
    ext = b""
    if raw_ext is None and elements is not None:
        body = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in elements)
        raw_ext = body + bytes(-len(body) % 4)
    if raw_ext is not None:
        ext = struct.pack("!HH", profile, len(raw_ext) // 4) + raw_ext
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if raw_ext is not None else 0) | cc
    head = struct.pack("!BBHLL", b0, (marker << 7) | pt, seq, ts, ssrc)
    tail = bytes(padding - 1) + bytes([padding]) if padding else b""
    return head + bytes(4 * cc) + ext + payload + tail


def aiortc_parse(data: bytes, m: HeaderExtensionsMap) -> RtpPacket | None:
    try:
        return RtpPacket.parse(data, m)
    except Exception:  # ValueError, struct.error: what aiortc rejects
        return None


def same(a: RtpPacket, b: RtpPacket) -> None:
    assert type(a) is type(b) is RtpPacket
    assert list(vars(a)) == list(vars(b))  # the same attributes, set in the same order
    for name, value in vars(a).items():
        other = getattr(b, name)
        if name == "extensions":
            assert type(other) is type(value)
            assert list(vars(other)) == list(vars(value))
            assert dataclasses.asdict(other) == dataclasses.asdict(value)
            for field, v in vars(value).items():
                assert type(getattr(other, field)) is type(v), field
        else:
            assert other == value and type(other) is type(value), name


COMMON = [
    header(),
    header(elements=[(1, b"0"), (4, b"\x01\x02\x03"), (5, b"\x00\x07")]),
    header(elements=[(1, b"12"), (2, b"h"), (4, b"\xff\xff\xff")], marker=0),
    header(elements=[(3, b"l"), (1, b"3")], pt=97),
    header(elements=[(6, b"\xff\xff\xfe")]),  # a negative transmission offset
    header(elements=[(6, b"\x00\x00\x10"), (9, b"\x01\x02")]),  # an id nobody negotiated
    header(elements=[(1, b"0")], padding=4),
    header(elements=[(1, b"0")], padding=1, payload=b""),
    header(raw_ext=b"\x00\x00\x10\x30"),  # padding bytes before an element
    header(raw_ext=b""),  # an empty extension block
    header(payload=b""),
    header(seq=0xFFFF, ts=0, ssrc=0, pt=0, marker=0),
    header(payload=os.urandom(1200), elements=[(1, b"0"), (4, b"abc"), (5, b"\x12\x34")]),
]
AUDIO = [
    header(pt=111, elements=[(1, b"1"), (10, b"\x85"), (5, b"\x00\x01")]),
    header(pt=111, elements=[(10, b"\x7f")]),
    header(pt=111, elements=[(10, b"\x00")], padding=2),
]
ODD = [  # what C leaves to aiortc, or what aiortc rejects
    header(cc=2),  # CSRCs
    header(raw_ext=b"\x01\x02\x03\x04", profile=0x1000),  # two-byte elements
    header(raw_ext=b"\x01\x02\x03\x04", profile=0x1234),  # an unknown profile
    header(elements=[(4, b"\x01\x02")]),  # abs-send-time of 2 bytes: struct.error
    header(elements=[(5, b"\x01")]),  # a transport-wide number of 1 byte
    header(elements=[(1, b"\xff\xfe")]),  # a MID that is no UTF-8
    header(elements=[(2, b"\xc3\xa9")]),  # a RID that is no ASCII
    header(raw_ext=b"\x13\x00\x00\x00"),  # an element running past the block
    header(padding=3)[:12],  # header only, P set, nothing after it
    bytes([0x40]) + header()[1:],  # version 1
    header()[:11],  # short
    header(elements=[(1, b"0")])[:14],  # the extension header cut
    header(elements=[(1, b"0")])[:17],  # the extension body cut
    header(padding=8, payload=b"")[:-8] + bytes([0, 0, 0, 0, 0, 0, 0, 200]),  # too much padding
    header(padding=4)[:-1] + b"\x00",  # zero padding length
]


@pytest.fixture(scope="module")
def module() -> Any:
    if not BUILT:
        pytest.skip("the native module is not built")
    return native.module()


@needs_c
@pytest.mark.parametrize(
    ("data", "ids"),
    [(d, VIDEO_IDS) for d in COMMON] + [(d, AUDIO_IDS) for d in AUDIO + COMMON],
)
def test_the_common_shapes_are_read_in_c_as_aiortc_reads_them(
    module: Any, data: bytes, ids: dict[str, int]
) -> None:
    m = ext_map(ids)
    expected = aiortc_parse(data, m)
    assert expected is not None
    got = module.parse_rtp(data, ids_of(m))
    assert got is not None, "C declined a common packet"
    same(got, expected)


@needs_c
@pytest.mark.parametrize("data", ODD)
def test_anything_else_is_left_to_aiortc(module: Any, data: bytes) -> None:
    m = ext_map(VIDEO_IDS)
    got = module.parse_rtp(data, ids_of(m))
    if got is not None:  # read in C: then exactly as aiortc reads it
        expected = aiortc_parse(data, m)
        assert expected is not None
        same(got, expected)
    if aiortc_parse(data, m) is None:
        assert got is None  # never accept what aiortc rejects


@needs_c
def test_random_packets_agree_with_aiortc(module: Any) -> None:
    rng = random.Random(24)
    maps = [ext_map(VIDEO_IDS), ext_map(AUDIO_IDS), ext_map({}), ext_map({"mid": 15})]
    read = 0
    for i in range(6000):
        if i % 3 == 0:  # well formed, random elements
            elements = [
                (
                    rng.randrange(1, 16),
                    bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 3, 4]))),
                )
                for _ in range(rng.randrange(0, 5))
            ]
            data = header(
                seq=rng.randrange(1 << 16),
                ts=rng.randrange(1 << 32),
                ssrc=rng.randrange(1 << 32),
                pt=rng.randrange(128),
                marker=rng.randrange(2),
                elements=elements if elements or rng.random() < 0.5 else None,
                padding=rng.choice([0, 0, 1, 4]),
                payload=rng.randbytes(rng.randrange(0, 40)),
            )
        else:  # a valid header with random bytes after it, or anything at all
            data = bytes([0x80 | rng.randrange(0x40)]) + rng.randbytes(rng.randrange(0, 60))
            if i % 3 == 2:
                data = rng.randbytes(rng.randrange(0, 40))
        m = maps[i % len(maps)]
        got = module.parse_rtp(data, ids_of(m))
        expected = aiortc_parse(data, m)
        if got is not None:
            read += 1
            assert expected is not None, data.hex()
            same(got, expected)
    assert read > 1500


def sessions() -> tuple[pylibsrtp.Session, pylibsrtp.Session, pylibsrtp.Session]:
    """A sender and two receivers of the same keys (libsrtp refuses a replay, so each
    path unprotects with its own)."""
    key = os.urandom(30)

    def session(kind: int) -> pylibsrtp.Session:
        return pylibsrtp.Session(policy=pylibsrtp.Policy(key=key, ssrc_type=kind))

    inbound = pylibsrtp.Policy.SSRC_ANY_INBOUND
    return session(pylibsrtp.Policy.SSRC_ANY_OUTBOUND), session(inbound), session(inbound)


def ctx_of(session: pylibsrtp.Session) -> int:
    return int(ffi.cast("uintptr_t", session._srtp[0]))


@needs_c
def test_unprotect_agrees_with_pylibsrtp(module: Any) -> None:
    tx, rx_python, rx_c = sessions()
    m = ext_map(VIDEO_IDS)
    ids, ctx = ids_of(m), ctx_of(rx_c)
    for seq, data in enumerate(COMMON + ODD[:3]):
        data = data[:2] + struct.pack("!H", seq) + data[4:]  # libsrtp: a new index each
        protected = tx.protect(data)
        expected = aiortc_parse(rx_python.unprotect(protected), m)
        got = module.unprotect_rtp(ctx, protected, ids)
        if isinstance(got, bytes):  # left to aiortc
            assert got == data
        else:
            assert expected is not None
            same(got, expected)
    rr = bytes(RtcpRrPacket(ssrc=1, reports=[RtcpReceiverInfo(2, 3, 4, 5, 6, 7, 8)]))
    protected = tx.protect_rtcp(rr)
    assert module.unprotect_rtcp(ctx, protected) == rx_python.unprotect_rtcp(protected) == rr


@needs_c
def test_what_does_not_authenticate_is_none_and_misuse_raises(module: Any) -> None:
    tx, _rx, rx_c = sessions()
    ctx, ids = ctx_of(rx_c), ids_of(ext_map(VIDEO_IDS))
    protected = bytearray(tx.protect(header(seq=7)))
    protected[20] ^= 1
    before = module.counters()["rx_refused"]
    assert module.unprotect_rtp(ctx, bytes(protected), ids) is None
    rtcp = bytearray(tx.protect_rtcp(bytes(RtcpRrPacket(ssrc=1))))
    rtcp[5] ^= 1
    assert module.unprotect_rtcp(ctx, bytes(rtcp)) is None
    assert module.counters()["rx_refused"] == before + 2
    with pytest.raises(ValueError, match="too long"):  # as pylibsrtp
        module.unprotect_rtp(ctx, bytes(1501), ids)
    with pytest.raises(TypeError):
        module.unprotect_rtp(ctx, bytearray(20), ids)
    with pytest.raises(ValueError):
        module.unprotect_rtcp(0, bytes(20))


# --------------------------------------------------------------------------- RTCP


def rr(*blocks: tuple[int, int, int]) -> RtcpRrPacket:
    return RtcpRrPacket(
        ssrc=0xA1B2C3D4,
        reports=[
            RtcpReceiverInfo(ssrc, lost_frac, lost, 0xFFFF0001, 33, 0x12345678, 65536)
            for ssrc, lost_frac, lost in blocks
        ],
    )


RTCP_READ = [  # compound packets C reads
    [rr()],
    [rr((1, 0, 0))],
    [rr((2, 255, -5), (0xFFFFFFFF, 7, (1 << 23) - 1), (3, 1, -(1 << 23)))],
    [RtcpPsfbPacket(fmt=15, ssrc=9, media_ssrc=0, fci=pack_remb_fci(950_000, [1, 2]))],
    [RtcpPsfbPacket(fmt=1, ssrc=9, media_ssrc=0xFFFFFFFF)],  # PLI
    [RtcpPsfbPacket(fmt=4, ssrc=9, media_ssrc=0, fci=bytes([0, 0, 0, 7, 3, 0, 0, 0]))],  # FIR
    [RtcpRtpfbPacket(fmt=1, ssrc=9, media_ssrc=5, lost=[10, 11, 14, 26, 27, 100])],  # NACK
    [RtcpRtpfbPacket(fmt=1, ssrc=9, media_ssrc=5, lost=[0xFFFF, 0x10000, 0x1000E])],
    [rr((1, 3, 4)), RtcpPsfbPacket(fmt=15, ssrc=9, media_ssrc=0, fci=pack_remb_fci(1, [1]))],
    [rr((1, 3, 4)), rr((2, 0, 0)), RtcpPsfbPacket(fmt=1, ssrc=9, media_ssrc=1)],
]
RTCP_LEFT = [  # compound packets aiortc reads (or rejects)
    [RtcpSrPacket(ssrc=1, sender_info=RtcpSenderInfo(1, 2, 3, 4), reports=[])],
    [rr((1, 2, 3)), RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=1, items=[(1, b"cname")])])],
    [rr((1, 2, 3)), RtcpByePacket(sources=[1])],
]


def compound(packets: list[Any]) -> bytes:
    return b"".join(bytes(p) for p in packets)


def same_rtcp(got: list[Any], expected: list[Any]) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert type(a) is type(b)
        assert list(vars(a)) == list(vars(b))
        assert a == b
        for name, value in vars(b).items():
            assert type(getattr(a, name)) is type(value), name
        for x, y in zip(getattr(a, "reports", []), getattr(b, "reports", []), strict=True):
            assert type(x) is type(y) and list(vars(x)) == list(vars(y))
            assert all(type(getattr(x, k)) is type(v) for k, v in vars(y).items())


def aiortc_rtcp(data: bytes) -> list[Any] | None:
    try:
        return RtcpPacket.parse(data)
    except Exception:
        return None


@needs_c
@pytest.mark.parametrize("packets", RTCP_READ)
def test_receiver_reports_and_feedback_are_read_in_c_as_aiortc_reads_them(
    module: Any, packets: list[Any]
) -> None:
    data = compound(packets)
    got = module.parse_rtcp(data)
    assert got is not None, "C declined a common compound packet"
    expected = RtcpPacket.parse(data)
    same_rtcp(got, expected)
    assert expected == packets or packets[0].__class__ is RtcpRtpfbPacket


@needs_c
@pytest.mark.parametrize(
    "data",
    [compound(p) for p in RTCP_LEFT]
    + [
        compound(RTCP_READ[1])[:-1],  # truncated
        compound(RTCP_READ[1])[:3],  # a header cut
        bytes([0x40]) + compound(RTCP_READ[1])[1:],  # version 1
        bytes([0x81, 201, 0, 1]) + bytes(4),  # an RR of one block without the block
        bytes([0x80, 206, 0, 1]) + bytes(4),  # a PSFB too short
        bytes([0x80, 205, 0, 1]) + bytes(4),  # an RTPFB too short
        bytes([0xA0, 201, 0, 2]) + bytes(4) + bytes([0, 0, 0, 4]),  # padding
        bytes([0x80, 204, 0, 0]),  # APP (aiortc skips it)
    ],
)
def test_other_rtcp_is_left_to_aiortc(module: Any, data: bytes) -> None:
    assert module.parse_rtcp(data) is None


@needs_c
def test_random_rtcp_agrees_with_aiortc(module: Any) -> None:
    rng = random.Random(2024)
    read = 0
    parts = [compound(p) for p in RTCP_READ + RTCP_LEFT]
    for i in range(6000):
        if i % 2:
            data = b"".join(rng.choice(parts) for _ in range(rng.randrange(1, 4)))
            if i % 4 == 1:  # flip a byte
                b = bytearray(data)
                b[rng.randrange(len(b))] = rng.randrange(256)
                data = bytes(b)
        else:
            data = bytes([0x80 | rng.randrange(0x40), rng.choice([200, 201, 205, 206, 99])])
            data += rng.randbytes(rng.randrange(0, 40))
        got = module.parse_rtcp(data)
        if got is not None:
            read += 1
            expected = aiortc_rtcp(data)
            assert expected is not None, data.hex()
            same_rtcp(got, expected)
    assert read > 1000
    with pytest.raises(TypeError):
        module.parse_rtcp(bytearray(8))


# --------------------------------------------------------------------------- DirectReceive


class Transport:
    """A stand-in DTLS transport with a real libsrtp session and extension map, and the
    real ingress and feedback hooks on it."""

    def __init__(self, rx: pylibsrtp.Session, m: HeaderExtensionsMap) -> None:
        import asyncio

        self.conn = types.SimpleNamespace(_queue=asyncio.Queue(), _protocols=[])
        self.dtls: Any = types.SimpleNamespace(
            transport=types.SimpleNamespace(
                iceGatherer=types.SimpleNamespace(_connection=self.conn)
            ),
            _state=hooks._CONNECTED,
            _rx_srtp=rx,
            _rtp_header_extensions_map=m,
            _RTCDtlsTransport__rx_bytes=0,
            _RTCDtlsTransport__rx_packets=0,
        )
        self.rtp: list[RtpPacket] = []
        self.rtcp: list[Any] = []
        hooks.install_ingress(self.dtls, lambda packet: lambda p, arrival: self.rtp.append(p))
        hooks.install_feedback(self.dtls, self.rtcp.append)


async def test_direct_receive_hands_on_the_same_packets_on_both_paths(native_path: str) -> None:
    tx, rx, _ = sessions()
    m = ext_map(VIDEO_IDS)
    t = Transport(rx, m)
    sent = []
    for seq, data in enumerate(COMMON + ODD[:2]):
        data = data[:2] + struct.pack("!H", seq) + data[4:]
        sent.append(data)
        t.conn.data_received(tx.protect(data), 1)
    bad = bytearray(tx.protect(header(seq=100)))
    bad[-1] ^= 1
    t.conn.data_received(bytes(bad), 1)  # does not authenticate: dropped
    rr = RtcpRrPacket(ssrc=1, reports=[RtcpReceiverInfo(2, 3, 4, 5, 6, 7, 8)])
    t.conn.data_received(tx.protect_rtcp(bytes(rr)), 1)
    assert len(t.rtp) == len(sent)
    for got, data in zip(t.rtp, sent, strict=True):
        expected = RtpPacket.parse(data, m)
        same(got, expected)
    assert [bytes(p) for p in t.rtcp] == [bytes(p) for p in RtcpPacket.parse(bytes(rr))]
    assert t.conn._queue.empty()
    direct = hooks.direct_receive(t.dtls)
    assert direct is not None and direct.handled == len(sent) + 2
    if native_path == "native":
        assert direct._session is rx  # the C path took them
    else:
        assert direct._session is None
