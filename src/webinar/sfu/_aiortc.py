"""Every use of aiortc's and aioice's private API lives here, and only here.

The forwarding engine works on RTP packets: it never decodes or encodes. aiortc's
public API only offers decoded frames, so this module reaches into a few private
names of aiortc 1.16 / aioice 0.13 (pinned in pyproject.toml):

* ingress: the DTLS transport's ``_handle_rtp_data`` is replaced so packets are
  routed by MID (then SSRC) straight to the SFU, skipping the jitter buffer; the
  receiver's ``receive`` is replaced so no decoder thread is ever started, while
  its RTCP loop keeps sending truthful receiver reports fed from our statistics;
* direct receive: SRTP/SRTCP datagrams are unprotected and handled in the UDP
  socket's receive callback (:class:`DirectReceive`) instead of going through
  aioice's queue and aiortc's DTLS task;
* egress: packets are written into a C buffer, SRTP-protected in place with the
  transport's libsrtp session and handed to the nominated ICE pair's UDP socket
  synchronously (no coroutine per packet);
* feedback: the subscriber connection's ``_handle_rtcp_data`` is replaced so NACK,
  PLI/FIR, REMB and receiver reports reach the consumer synchronously, and each
  sender's RTCP loop is replaced: the SFU sends one compound SR per subscriber
  connection for all its streams;
* gathering: host addresses, the UDP port range and an announced public IP.

:func:`check_hooks` verifies every name this module touches; it runs at import
time of the server and in a test, so an aiortc upgrade fails loudly, not subtly.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import random
import socket
import struct
import sys
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, cast

import aioice.ice
import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import HEADER_EXTENSIONS
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rate import MIN_FRAME_PERIOD_HISTORY_LENGTH, RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as _DtlsState
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
    pack_remb_fci,
)
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

from . import native
from .twcc import split_rtcp

__all__ = [
    "DirectReceive",
    "HookError",
    "IngressTap",
    "PacketSink",
    "SenderTap",
    "SilentTrack",
    "check_hooks",
    "configure_gathering",
    "direct_receive",
    "install_feedback",
    "install_ingress",
    "install_rtp_filter",
    "release_sockets",
    "running_decoder_threads",
    "sender_reports",
    "set_negotiated_codecs",
    "subscriber_extension_ids",
    "watch_receiver_rtcp",
]


logger = logging.getLogger(__name__)

_NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP's epoch) to 1970-01-01


def current_ms() -> int:
    """What ``aiortc.clock.current_ms`` returns (milliseconds since the NTP epoch), read
    from ``time.time()``: aiortc's builds two datetimes a call (~3 us), once per RTP
    packet a publisher sends. The same epoch, so aiortc's own path (a datagram queued
    behind another) hands the estimator comparable arrival times."""
    return int((time.time() + _NTP_UNIX_OFFSET) * 1000)


class HookError(RuntimeError):
    """aiortc or aioice changed under us: a private name we rely on is gone."""


_R = "_RTCRtpReceiver__"
_S = "_RTCRtpSender__"

# (owner, attribute, what we use it for)
_RECEIVER_ATTRS = (
    "codecs",
    "rtx_ssrc",
    "remote_streams",
    "remote_bitrate_estimator",
    "rtcp_ssrc",
    "started",
    "rtcp_task",
    "transport",
    "decoder_thread",
)
_SENDER_ATTRS = ("rtcp_started", "rtcp_exited", "cname")


def check_hooks() -> None:
    """Raise :class:`HookError` naming every private hook that is missing."""
    missing: list[str] = []
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        pc = RTCPeerConnection()
        try:
            tr = pc.addTransceiver("video", direction="sendrecv")
            receiver, sender = tr.receiver, tr.sender
            dtls = receiver.transport
            for name in _RECEIVER_ATTRS:
                if not hasattr(receiver, _R + name):
                    missing.append(f"RTCRtpReceiver.__{name}")
            for name in _SENDER_ATTRS:
                if not hasattr(sender, _S + name):
                    missing.append(f"RTCRtpSender.__{name}")
            for obj, name in (
                (receiver, "_run_rtcp"),
                (receiver, "_handle_rtcp_packet"),
                (receiver, "_send_rtcp"),
                (sender, "_run_rtcp"),
                (sender, "_ssrc"),
                (sender, "_rtx_ssrc"),
                (sender, "_stream_id"),
                (tr, "_codecs"),
                (tr, "_headerExtensions"),
                (dtls, "_handle_rtp_data"),
                (dtls, "_handle_rtcp_data"),
                (dtls, "_rtp_header_extensions_map"),
                (dtls, "_rtp_router"),
                (dtls, "_tx_srtp"),
                (dtls, "_rx_srtp"),
                (dtls, _DTLS_RX_BYTES),
                (dtls, _DTLS_RX_PACKETS),
                (dtls, "_state"),
                (dtls, "_role"),
                (dtls, "_set_role"),
                (dtls, "transport"),
                (pc, "_RTCPeerConnection__createTransceiver"),
            ):
                if not hasattr(obj, name):
                    missing.append(f"{type(obj).__name__}.{name}")
            ids = getattr(getattr(dtls, "_rtp_header_extensions_map", None), _EXT_IDS, None)
            for name in (
                "mid",
                "repaired_rtp_stream_id",
                "rtp_stream_id",
                "abs_send_time",
                "transmission_offset",
                "audio_level",
                "transport_sequence_number",
            ):
                if not hasattr(ids, name):
                    missing.append(f"aiortc HeaderExtensionsMap.__ids.{name}")
            if not hasattr(getattr(dtls, "_rtp_router", None), "ssrc_table"):
                missing.append("aiortc RtpRouter.ssrc_table")
            # what speed_up_remb replaces in the publisher's REMB estimator
            remb: Any = getattr(receiver, _R + "remote_bitrate_estimator", None)
            inner: Any = getattr(remb, "estimator", None)
            for part, name in (
                (remb, "incoming_bitrate"),
                (inner, "ts_delta_hist"),
                (inner, "update_min_frame_period"),
            ):
                if not hasattr(part, name):
                    missing.append(f"aiortc RemoteBitrateEstimator: {name}")
            ice = dtls.transport
            gatherer = getattr(ice, "iceGatherer", None)
            conn = getattr(gatherer, "_connection", None)
            if conn is None:
                missing.append("RTCIceGatherer._connection")
            else:
                for name in (
                    "_closing",
                    "_nominated",
                    "_protocols",
                    "_local_candidates",
                    "_local_candidates_start",
                    "_local_candidates_end",
                    "_transport_policy",
                    "_components",
                    "stun_server",
                    "turn_server",
                    "gather_candidates",
                    "get_component_candidates",
                    "_queue",
                    "data_received",
                ):
                    if not hasattr(conn, name):
                        missing.append(f"aioice.Connection.{name}")
            loop.run_until_complete(pc.close())
        finally:
            if not loop.is_closed():
                loop.run_until_complete(asyncio.sleep(0))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    session = pylibsrtp.Session()
    for name in ("_srtp",):
        if not hasattr(session, name):
            missing.append(f"pylibsrtp.Session.{name}")
    for fn in (
        _srtp_protect,
        _srtp_protect_rtcp,
        _srtp_lib.srtp_unprotect,
        _srtp_lib.srtp_unprotect_rtcp,
    ):
        if str(_srtp_ffi.typeof(fn)) != (
            "<ctype 'srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)'>"
        ):
            missing.append(f"libsrtp {fn.__name__}(ctx, data, int *len) signature")
    if not hasattr(_DtlsState, "CONNECTED"):
        missing.append("aiortc.rtcdtlstransport.State.CONNECTED")
    for name in (
        "StunProtocol",
        "Candidate",
        "candidate_foundation",
        "candidate_priority",
        "server_reflexive_candidate",
        "get_host_addresses",
        "TransportPolicy",
    ):
        if not hasattr(aioice.ice, name):
            missing.append(f"aioice.ice.{name}")
    if not hasattr(aioice.ice.CandidatePair, "remote_addr"):
        missing.append("aioice.ice.CandidatePair.remote_addr")
    try:
        subscriber_extension_ids("video")
        subscriber_extension_ids("audio")
    except KeyError as exc:
        missing.append(f"aiortc.codecs.HEADER_EXTENSIONS: {exc}")
    if missing:
        raise HookError("aiortc/aioice private API changed; missing: " + ", ".join(missing))


# --------------------------------------------------------------------------- tracks


class SilentTrack(MediaStreamTrack):
    """A track whose ``recv`` never returns: the sender negotiates and sends RTCP
    but never encodes anything (a ``None`` track would poll every 20 ms)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._ended = asyncio.Event()

    async def recv(self) -> Any:
        await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._ended.set()
        super().stop()


# --------------------------------------------------------------------------- extensions

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def subscriber_extension_ids(kind: str) -> dict[str, int]:
    """Header extension IDs aiortc offers on a subscriber connection, by URI.

    The SFU writes forwarded headers in this layout; consumers check that what was
    negotiated matches it.
    """
    ids = {ext.uri: ext.id for ext in HEADER_EXTENSIONS[kind]}
    if MID_URI not in ids:
        raise KeyError(MID_URI)
    wanted = ABS_SEND_TIME_URI if kind == "video" else AUDIO_LEVEL_URI
    if wanted not in ids:
        raise KeyError(wanted)
    return ids


def negotiated_extension_ids(transceiver: RTCRtpTransceiver) -> dict[str, int]:
    return {ext.uri: ext.id for ext in transceiver._headerExtensions}


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[Any]:
    return list(transceiver._codecs)


def set_negotiated_codecs(transceiver: RTCRtpTransceiver, codecs: list[Any]) -> None:
    """The codecs the m-line keeps (what the answer offers and the receiver accepts)."""
    transceiver._codecs = list(codecs)


def negotiated_extensions(transceiver: RTCRtpTransceiver) -> list[Any]:
    return list(transceiver._headerExtensions)


def set_negotiated_extensions(transceiver: RTCRtpTransceiver, extensions: list[Any]) -> None:
    """What the answer accepts and the receiver parses (aiortc offers no RID ones)."""
    transceiver._headerExtensions = list(extensions)


def prefer_dtls_server(pc: RTCPeerConnection) -> None:
    """Answer an offer that lets us choose (``a=setup:actpass``) as the DTLS server
    (``a=setup:passive``). Call between applying the offer and creating the answer.

    As a DTLS client aiortc offers ECDSA cipher suites only, so a peer whose certificate is
    RSA (GStreamer's webrtcbin: simple-whip-client) finds no shared cipher; as the server it
    presents its own ECDSA certificate and the peer's client certificate may be of any type.
    """
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls._role == "auto":
            dtls._set_role("server")


def set_stream_id(sender: RTCRtpSender, stream_id: str) -> None:
    """The msid stream of the m-line: tracks in one stream are lip-synced."""
    sender._stream_id = stream_id


# --------------------------------------------------------------------------- egress


_CONNECTED = _DtlsState.CONNECTED
CONNECTED = _CONNECTED  # (the native fan-out compares the DTLS state with it)
_srtp_protect = _srtp_lib.srtp_protect
_srtp_protect_rtcp = _srtp_lib.srtp_protect_rtcp
_unpack = _srtp_ffi.unpack
_SRTP_MAX_TRAILER = 16 + 128  # pylibsrtp's SRTP_MAX_TRAILER_LEN
_SRTCP_MAX_TRAILER = 4 + 16 + 128  # pylibsrtp's SRTP_MAX_SRTCP_TRAILER_LEN
MAX_PACKET = 1500  # largest RTP packet (header included) the sink accepts


class PacketSink:
    """Synchronous SRTP/SRTCP send on one peer connection's DTLS transport.

    The forwarding path writes a packet straight into :attr:`out` (a writable view
    of the sink's own C buffer), then calls :meth:`send_out`: libsrtp protects it in
    place and the nominated ICE pair's UDP transport sends it. No coroutine, no
    intermediate ``bytes`` but the one handed to the socket. Everything that can
    change under a live connection (the SRTP session after a DTLS restart, the
    nominated pair after an ICE change) is re-resolved when it changes, checked
    by identity per packet.

    For the native fan-out (``_fanout.c``), which checks the same identities per batch,
    it keeps what it resolved in one tuple, ``_target``: the pair's UDP socket (-1 for a
    TURN/TCP pair, which only the Python path sends on), the remote address as a
    ``struct sockaddr``, and the libsrtp context's address (0: none yet).
    """

    __slots__ = (
        "_addr",
        "_cbuf",
        "_ctx",
        "_dtls",
        "_len",
        "_loop",
        "_nominated",
        "_pair",
        "_sendto",
        "_session",
        "_target",
        "_tasks",
        "out",
    )

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._nominated: dict[int, Any] = dtls.transport.iceGatherer._connection._nominated
        self._session: Any = None
        self._ctx: Any = None
        self._pair: Any = None
        self._addr: Any = None
        self._target: tuple[int, bytes, int] = (-1, b"", 0)
        self._sendto: Callable[[bytes, Any], None] | None = None
        self._loop = asyncio.get_event_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cbuf = _srtp_ffi.new("char[]", MAX_PACKET + _SRTCP_MAX_TRAILER)
        self._len = _srtp_ffi.new("int *")
        # One writer per sink: a consumer keeps constant header bytes in it between packets.
        self.out = memoryview(_srtp_ffi.buffer(self._cbuf))

    def send_out(self, n: int) -> bool:
        """Protect the first ``n`` bytes of :attr:`out` (an RTP packet) and send them."""
        dtls = self._dtls
        if dtls._state is not _CONNECTED:
            return False
        if dtls._tx_srtp is not self._session and not self._resolve_srtp():
            return False
        pair = self._nominated.get(1)
        if pair is not self._pair and not self._resolve_pair(pair):
            return False
        length = self._len
        length[0] = n
        if _srtp_protect(self._ctx, self._cbuf, length) != 0:
            return False  # e.g. an index libsrtp considers replayed: drop, never raise
        self._sendto(_unpack(self._cbuf, length[0]), self._addr)  # type: ignore[misc]
        return True

    def send_rtp(self, data: bytes) -> bool:
        """Protect and send a packet built elsewhere (retransmissions, tests)."""
        n = len(data)
        if n > MAX_PACKET:
            return False
        self.out[0:n] = data
        return self.send_out(n)

    def send_rtcp(self, data: bytes) -> bool:
        dtls = self._dtls
        n = len(data)
        if dtls._state is not _CONNECTED or n > MAX_PACKET:
            return False
        if dtls._tx_srtp is not self._session and not self._resolve_srtp():
            return False
        pair = self._nominated.get(1)
        if pair is not self._pair and not self._resolve_pair(pair):
            return False
        self.out[0:n] = data
        length = self._len
        length[0] = n
        if _srtp_protect_rtcp(self._ctx, self._cbuf, length) != 0:
            return False
        self._sendto(_unpack(self._cbuf, length[0]), self._addr)  # type: ignore[misc]
        return True

    def _resolve_srtp(self) -> bool:
        session = self._dtls._tx_srtp
        if session is None:
            return False
        self._session = session  # keeps the libsrtp context alive
        self._ctx = session._srtp[0]
        fd, sa, _ = self._target
        self._target = (fd, sa, int(_srtp_ffi.cast("uintptr_t", self._ctx)))
        return True

    def _resolve_pair(self, pair: Any) -> bool:
        if pair is None:
            return False
        self._pair = pair
        self._addr = pair.remote_addr
        protocol = pair.protocol
        fd, sa = -1, b""
        if type(protocol) is aioice.ice.StunProtocol:
            self._sendto = protocol.transport.sendto
            fd, sa = _socket_target(protocol.transport, self._addr)
        else:  # TURN-relayed or TCP protocol: its send is a coroutine
            self._sendto = self._send_via_task
        self._target = (fd, sa, self._target[2])
        return True

    def _send_via_task(self, data: bytes, addr: Any) -> None:
        task = self._loop.create_task(self._pair.protocol.send_data(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _socket_target(transport: Any, addr: Any) -> tuple[int, bytes]:
    """A UDP transport's socket and ``addr`` as a ``struct sockaddr``, for sending on the
    socket directly (``sendmmsg``); ``(-1, b"")`` when either is not to be had."""
    try:
        sock = transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        host, port = addr[0], int(addr[1])
        if ":" in host:
            flow = int(addr[2]) if len(addr) > 2 else 0
            scope = int(addr[3]) if len(addr) > 3 else 0
            sa = (
                struct.pack("=H", socket.AF_INET6)
                + struct.pack("!HI", port, flow)
                + socket.inet_pton(socket.AF_INET6, host)
                + struct.pack("=I", scope)
            )
        else:
            sa = (
                struct.pack("=H", socket.AF_INET)
                + struct.pack("!H", port)
                + socket.inet_pton(socket.AF_INET, host)
                + bytes(8)
            )
    except (OSError, ValueError, TypeError, IndexError, AttributeError):
        return -1, b""
    return fd, sa


class SenderTap:
    """Access to one aiortc sender used as a forwarding egress.

    The sender negotiates its m-line, but sends nothing itself: its RTCP loop is
    replaced by one that only says BYE at the end, because the SFU sends one
    compound SR per subscriber connection for all its streams (see
    :func:`sender_reports`) and handles their feedback itself
    (:func:`install_feedback`)."""

    def __init__(self, transceiver: RTCRtpTransceiver) -> None:
        self.transceiver = transceiver
        self.sender: RTCRtpSender = transceiver.sender
        sender = self.sender
        started: asyncio.Event = getattr(sender, _S + "rtcp_started")
        exited: asyncio.Event = getattr(sender, _S + "rtcp_exited")

        async def run_rtcp() -> None:
            started.set()
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.get_running_loop().create_future()
                dtls = sender.transport
                if dtls._state is _CONNECTED and dtls._tx_srtp is not None:
                    PacketSink(dtls).send_rtcp(bytes(RtcpByePacket(sources=[sender._ssrc])))
            finally:
                exited.set()  # RTCRtpSender.stop() waits for it

        sender._run_rtcp = run_rtcp  # type: ignore[method-assign]

    @property
    def ssrc(self) -> int:
        return self.sender._ssrc

    @property
    def rtx_ssrc(self) -> int:
        return self.sender._rtx_ssrc

    @property
    def cname(self) -> str | None:
        return cast("str | None", getattr(self.sender, _S + "cname"))

    def sink(self) -> PacketSink:
        return PacketSink(self.sender.transport)


def sender_reports(reports: list[RtcpSrPacket], cname: str | None) -> list[bytes]:
    """Compound RTCP packets (SR + SDES CNAME) for many streams, each under ~1200 bytes."""
    out: list[bytes] = []
    per_packet = 12
    for i in range(0, len(reports), per_packet):
        group = reports[i : i + per_packet]
        data = b"".join(bytes(r) for r in group)
        if cname is not None:
            data += bytes(
                RtcpSdesPacket(
                    chunks=[
                        RtcpSourceInfo(ssrc=r.ssrc, items=[(1, cname.encode("utf8"))])
                        for r in group
                    ]
                )
            )
        out.append(data)
    return out


def install_feedback(
    dtls: RTCDtlsTransport,
    on_packet: Callable[[AnyRtcpPacket], None],
    on_twcc: Callable[[bytes], None] | None = None,
) -> None:
    """Hand every RTCP packet a subscriber sends straight to ``on_packet``.

    aiortc would route each to its senders through two coroutines per packet and
    per recipient; the SFU routes by SSRC itself, synchronously. ``on_twcc`` gets each
    transport-wide feedback packet (RTPFB FMT 15) as bytes: aiortc would read it as NACKs."""
    parse = RtcpPacket.parse

    def handle_rtcp(data: bytes) -> None:
        if on_twcc is not None:
            twcc, data = split_rtcp(data)
            for part in twcc:
                on_twcc(part)
            if not data:
                return
        fast = native.receive()  # receiver reports, REMB, PLI, FIR, NACK read in C
        packets = fast.parse_rtcp(data) if fast is not None else None
        if packets is None:
            try:
                packets = parse(data)
            except ValueError:
                return
        for packet in packets:
            on_packet(packet)

    async def handle_rtcp_data(data: bytes) -> None:
        handle_rtcp(data)

    dtls._handle_rtcp_data = handle_rtcp_data  # type: ignore[method-assign]
    _direct(dtls).set_rtcp(handle_rtcp, handle_rtcp_data)


# --------------------------------------------------------------------------- REMB estimator


class WindowRate:
    """aiortc's ``RateCounter`` (the REMB estimator's incoming bitrate), with the same
    answers, without its walk over every elapsed millisecond's bucket: it keeps the
    window's arrivals in order and drops the old ones from the front. Fed once per
    publisher video packet, the walk was a fifth of the estimator's cost."""

    __slots__ = ("_count", "_entries", "_origin_ms", "_scale", "_total", "_window_size")

    def __init__(self, window_size: int, scale: int = 8000) -> None:
        self._window_size = window_size
        self._scale = scale
        self.reset()

    def reset(self) -> None:
        self._entries: collections.deque[tuple[int, int]] = collections.deque()
        self._origin_ms: int | None = None
        self._total = 0
        self._count = 0

    def add(self, value: int, now_ms: int) -> None:
        origin = self._origin_ms
        if origin is None:
            self._origin_ms = now_ms
        else:
            self._erase_old(now_ms)
            if now_ms < origin:  # the wall clock stepped back: counted at the window's start
                now_ms = origin
        self._entries.append((now_ms, value))
        self._count += 1
        self._total += value

    def rate(self, now_ms: int) -> int | None:
        origin = self._origin_ms
        if origin is not None:
            self._erase_old(now_ms)
            origin = self._origin_ms
            assert origin is not None
            active = now_ms - origin + 1
            if self._count > 0 and active > 1:
                return round(self._scale * self._total / active)
        return None

    def _erase_old(self, now_ms: int) -> None:
        start = now_ms - self._window_size + 1
        origin = self._origin_ms
        if origin is None or origin >= start:
            return
        self._origin_ms = start
        entries = self._entries
        while entries and entries[0][0] < start:
            _, value = entries.popleft()
            self._count -= 1
            self._total -= value


def _min_frame_period(estimator: Any, ts_delta: float) -> float:
    """aiortc's ``OveruseEstimator.update_min_frame_period`` with one ``min`` over the
    history instead of a Python loop calling ``min`` per entry (60 a frame)."""
    history: list[float] = estimator.ts_delta_hist
    if len(history) >= MIN_FRAME_PERIOD_HISTORY_LENGTH:
        history.pop(0)
    least = min(history, default=ts_delta)
    history.append(ts_delta)
    return least if least < ts_delta else ts_delta


def speed_up_remb(estimator: RemoteBitrateEstimator) -> None:
    """Give aiortc's receive-side bandwidth estimator the cheaper parts above; it then
    answers exactly as before (``tests/unit/test_remb_estimator.py`` compares them)."""
    estimator.incoming_bitrate = WindowRate(1000, 8000)  # type: ignore[assignment]
    inner = estimator.estimator
    inner.update_min_frame_period = functools.partial(_min_frame_period, inner)  # type: ignore[method-assign]


# --------------------------------------------------------------------------- ingress


class IngressTap:
    """One publisher-side aiortc receiver turned into a packet tap.

    No decoder thread is started; the receiver's RTCP loop keeps sending receiver
    reports from statistics this tap feeds, and REMB from aiortc's estimator.
    """

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        on_started: Callable[[Any], None],
    ) -> None:
        self.receiver = receiver
        self._on_started = on_started
        self._streams: dict[int, StreamStatistics] = getattr(receiver, _R + "remote_streams")
        self._estimator = getattr(receiver, _R + "remote_bitrate_estimator")
        if self._estimator is not None:
            speed_up_remb(self._estimator)
        self.nack = NackGenerator()
        self.remb_filter: Callable[[int], int] | None = None  # the REMB the publisher gets
        # RID -> [media SSRC, RTX SSRC] learned on this m-line: a browser sends the RID
        # only in a stream's first packets, so a later producer on it must know them.
        self.rid_ssrcs: dict[str, list[int | None]] = {}
        self._sink: PacketSink | None = None
        receiver.receive = self._receive  # type: ignore[method-assign]

    async def _receive(self, parameters: Any) -> None:
        r = self.receiver
        if getattr(r, _R + "started"):
            return
        codecs = getattr(r, _R + "codecs")
        for codec in parameters.codecs:
            codecs[codec.payloadType] = codec
        rtx = getattr(r, _R + "rtx_ssrc")
        for encoding in parameters.encodings:
            if encoding.rtx:
                rtx[encoding.rtx.ssrc] = encoding.ssrc
        transport: RTCDtlsTransport = getattr(r, _R + "transport")
        transport._register_rtp_receiver(r, parameters)
        setattr(r, _R + "rtcp_task", asyncio.ensure_future(r._run_rtcp()))
        setattr(r, _R + "started", True)
        self._sink = PacketSink(transport)
        self._on_started(parameters)

    @property
    def rtcp_ssrc(self) -> int | None:
        return cast("int | None", getattr(self.receiver, _R + "rtcp_ssrc"))

    def claim_ssrc(self, ssrc: int) -> None:
        """Route RTCP about ``ssrc`` (sender reports) to this receiver.

        aiortc's RTP router knows only the SSRCs the SDP named; simulcast encodings are
        learned from their RID extension, so their SRs would be dropped otherwise."""
        dtls: RTCDtlsTransport = getattr(self.receiver, _R + "transport")
        dtls._rtp_router.ssrc_table[ssrc] = self.receiver

    def account(self, packet: RtpPacket, arrival_time_ms: int, clock_rate: int) -> None:
        """Feed receiver statistics (for RR) and the REMB estimator."""
        ssrc = packet.ssrc
        stats = self._streams.get(ssrc)
        if stats is None:
            stats = self._streams[ssrc] = StreamStatistics(clock_rate)
        stats.add(packet)
        est = self._estimator
        if est is None:
            return
        abs_send_time = packet.extensions.abs_send_time
        if abs_send_time is None:
            return
        remb = est.add(
            arrival_time_ms, abs_send_time, len(packet.payload) + packet.padding_size, ssrc
        )
        if remb is not None:
            rtcp_ssrc = self.rtcp_ssrc
            if rtcp_ssrc is not None:
                bitrate, ssrcs = remb
                if self.remb_filter is not None:
                    bitrate = self.remb_filter(bitrate)
                self._send_rtcp(
                    bytes(
                        RtcpPsfbPacket(
                            fmt=15, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)
                        )
                    )
                )

    def send_nack(self, media_ssrc: int, lost: Iterable[int]) -> None:
        rtcp_ssrc = self.rtcp_ssrc
        if rtcp_ssrc is None:
            return
        packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=rtcp_ssrc, media_ssrc=media_ssrc)
        packet.lost = sorted(lost)
        self._send_rtcp(bytes(packet))

    def send_pli(self, media_ssrc: int) -> None:
        rtcp_ssrc = self.rtcp_ssrc
        if rtcp_ssrc is None:
            return
        self._send_rtcp(
            bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=rtcp_ssrc, media_ssrc=media_ssrc))
        )

    def _send_rtcp(self, data: bytes) -> None:
        if self._sink is not None:
            self._sink.send_rtcp(data)


def watch_receiver_rtcp(receiver: RTCRtpReceiver, watch: Callable[[AnyRtcpPacket], None]) -> None:
    """Show ``watch`` every RTCP packet aiortc hands the receiver (a publisher's sender
    reports, say), before aiortc handles it as usual."""
    original = receiver._handle_rtcp_packet

    async def handle_rtcp(packet: AnyRtcpPacket) -> None:
        watch(packet)
        await original(packet)

    receiver._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]


RtpHandler = Callable[[RtpPacket, int], None]


def install_ingress(
    dtls: RTCDtlsTransport,
    route: Callable[[RtpPacket], RtpHandler | None],
) -> None:
    """Replace the transport's RTP handling: parse, route (by MID first), hand on.

    ``route`` returns the handler for a packet or ``None`` to drop it. aiortc's own
    router matches only SSRC and payload type, which mis-routes two video m-lines
    without ``a=ssrc`` lines in one bundle; the SFU routes by MID and learns SSRCs.
    """
    ext_map = dtls._rtp_header_extensions_map
    parse = RtpPacket.parse

    def handle_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        handler = route(packet)
        if handler is not None:
            handler(packet, arrival_time_ms)

    def handle_rtp(data: bytes, arrival_time_ms: int) -> None:
        try:
            packet = parse(data, ext_map)
        except ValueError:
            return
        handle_packet(packet, arrival_time_ms)

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        handle_rtp(data, arrival_time_ms)

    dtls._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]
    _direct(dtls).set_rtp(handle_rtp, handle_rtp_data, handle_packet)


_FILTERED = "_webinar_filtered"


def install_rtp_filter(dtls: RTCDtlsTransport, keep: Callable[[RtpPacket], bool]) -> None:
    """Drop incoming RTP that ``keep`` rejects (loss simulation in tests) before aiortc,
    or an ingress installed earlier, sees it. Once per transport: later calls keep the
    first filter."""
    if getattr(dtls, _FILTERED, False):
        return
    setattr(dtls, _FILTERED, True)
    original = dtls._handle_rtp_data
    ext_map = dtls._rtp_header_extensions_map

    async def handle(data: bytes, arrival_time_ms: int) -> None:
        try:
            packet = RtpPacket.parse(data, ext_map)
        except ValueError:
            return
        if keep(packet):
            await original(data, arrival_time_ms)

    dtls._handle_rtp_data = handle  # type: ignore[method-assign]


# --------------------------------------------------------------------------- direct receive

_DIRECT = "_webinar_direct"
_DTLS_RX_BYTES = "_RTCDtlsTransport__rx_bytes"
_DTLS_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
_EXT_IDS = "_HeaderExtensionsMap__ids"  # the extension ids the map parses by


class DirectReceive:
    """SRTP and SRTCP datagrams of one DTLS transport, handled in the socket's
    receive callback.

    aioice first tries to parse every datagram as STUN (an exception for each media
    packet), then queues it; aiortc's DTLS task takes it from the queue through five
    coroutine frames, then unprotects and parses it. Here a datagram whose first byte
    says RTP/RTCP (RFC 7983: 128-191) goes straight to the same libsrtp session and
    the same synchronous handler that aiortc's path would reach, with the same
    transport statistics. Anything else (STUN, DTLS), anything while a datagram
    still waits in aioice's queue (so order is kept), and anything whose aiortc
    handler was replaced again after ours (a test's loss filter) takes aiortc's own
    path.
    """

    __slots__ = (
        "_conn",
        "_ctx",
        "_dtls",
        "_ids",
        "_on_packet",
        "_patched",
        "_queue",
        "_rtcp",
        "_rtcp_async",
        "_rtp",
        "_rtp_async",
        "_session",
        "handled",
    )

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._rtp: Callable[[bytes, int], None] | None = None
        self._rtp_async: Any = None
        self._rtcp: Callable[[bytes], None] | None = None
        self._rtcp_async: Any = None
        self._on_packet: Callable[[RtpPacket, int], None] | None = None
        # For the native receive path (_fanout.unprotect_rtp): the pylibsrtp session its
        # libsrtp context address was read from, and the extension ids the map parses by.
        self._session: Any = None
        self._ctx = 0
        self._ids: Any = None
        self.handled = 0  # datagrams that took the direct path
        conn = dtls.transport.iceGatherer._connection
        self._conn = conn
        self._queue: asyncio.Queue[Any] = conn._queue
        self._patched: weakref.WeakSet[Any] = weakref.WeakSet()
        conn.data_received = self.data_received  # type: ignore[method-assign]
        self._patch_protocols()

    def set_rtp(
        self,
        handler: Callable[[bytes, int], None],
        installed: Any,
        on_packet: Callable[[RtpPacket, int], None] | None = None,
    ) -> None:
        """``handler`` does what ``installed`` (now the transport's
        ``_handle_rtp_data``) does, synchronously; ``on_packet`` what ``handler`` does
        once it parsed the packet (the native path parses it itself)."""
        self._rtp, self._rtp_async, self._on_packet = handler, installed, on_packet

    def set_rtcp(self, handler: Callable[[bytes], None], installed: Any) -> None:
        self._rtcp, self._rtcp_async = handler, installed

    def _patch_protocols(self) -> None:
        """Media datagrams skip aioice's attempt to parse them as STUN."""
        for protocol in self._conn._protocols:
            if protocol in self._patched or type(protocol) is not aioice.ice.StunProtocol:
                continue
            self._patched.add(protocol)
            original = protocol.datagram_received

            def datagram_received(
                data: bytes, addr: Any, _p: Any = protocol, _orig: Any = original
            ) -> None:
                if data and 127 < data[0] < 192:
                    _p.receiver.data_received(data, _p.local_candidate.component)
                else:
                    _orig(data, addr)

            protocol.datagram_received = datagram_received  # type: ignore[method-assign,assignment]

    def data_received(self, data: bytes, component: int) -> None:
        dtls = self._dtls
        first = data[0] if data else 0
        if (
            127 < first < 192
            and dtls._state is _CONNECTED
            and dtls._rx_srtp is not None
            and self._queue.empty()
        ):
            rtcp = is_rtcp(data)
            handler: Any
            if rtcp:
                handler = self._rtcp if dtls._handle_rtcp_data is self._rtcp_async else None
            else:
                handler = self._rtp if dtls._handle_rtp_data is self._rtp_async else None
            if handler is not None:
                self.handled += 1
                self._handle(dtls, data, rtcp, handler)
                return
        self._queue.put_nowait((data, component))
        self._patch_protocols()  # a protocol gathered after us has said something

    def _handle(self, dtls: RTCDtlsTransport, data: bytes, rtcp: bool, handler: Any) -> None:
        setattr(dtls, _DTLS_RX_BYTES, getattr(dtls, _DTLS_RX_BYTES) + len(data))
        setattr(dtls, _DTLS_RX_PACKETS, getattr(dtls, _DTLS_RX_PACKETS) + 1)
        session = dtls._rx_srtp
        try:
            fast = native.receive()
            if fast is not None and (session is self._session or self._resolve(session)):
                # libsrtp on a stack buffer, the RTP header read in C (the same packet
                # aiortc's parse makes; what C does not read comes back as bytes)
                if rtcp:
                    clear = fast.unprotect_rtcp(self._ctx, data)
                    if clear is not None:  # None: it did not authenticate (dropped)
                        handler(clear)
                    return
                on_packet = self._on_packet
                if on_packet is not None:
                    out = fast.unprotect_rtp(self._ctx, data, self._ids)
                    if type(out) is bytes:
                        handler(out, current_ms())
                    elif out is not None:
                        on_packet(out, current_ms())
                    return
            if rtcp:
                handler(session.unprotect_rtcp(data))
            else:
                handler(session.unprotect(data), current_ms())
        except pylibsrtp.Error:
            pass  # as aiortc: a packet that does not authenticate is dropped
        except Exception:
            logger.exception("handling a %s datagram failed", "RTCP" if rtcp else "RTP")

    def _resolve(self, session: Any) -> bool:
        """Read a real pylibsrtp session's libsrtp context address (a stand-in session, as
        in tests, keeps the Python path)."""
        if type(session) is not pylibsrtp.Session:
            return False
        ids = getattr(self._dtls._rtp_header_extensions_map, _EXT_IDS, None)
        if ids is None:
            return False
        self._ids = ids
        self._ctx = int(_srtp_ffi.cast("uintptr_t", session._srtp[0]))
        self._session = session
        return True


def direct_receive(dtls: RTCDtlsTransport) -> DirectReceive | None:
    """The transport's direct receive path, once an ingress or feedback hook is in."""
    return cast("DirectReceive | None", getattr(dtls, _DIRECT, None))


def _direct(dtls: RTCDtlsTransport) -> DirectReceive:
    direct: DirectReceive | None = getattr(dtls, _DIRECT, None)
    if direct is None:
        direct = DirectReceive(dtls)
        setattr(dtls, _DIRECT, direct)
    return direct


def running_decoder_threads() -> list[str]:
    """Names of aiortc decoder threads alive in this process (tests assert none)."""
    import threading

    return [t.name for t in threading.enumerate() if t.name.endswith("-decoder")]


# --------------------------------------------------------------------------- gathering


def configure_gathering(
    pc: RTCPeerConnection,
    *,
    host_addresses: list[str],
    port_min: int | None,
    port_max: int | None,
    announced_ip: str | None,
) -> None:
    """Control host-candidate gathering of every ICE transport ``pc`` creates.

    Must be called before the first offer/answer. ``host_addresses`` empty means
    aioice's default (every non-loopback interface).
    """
    if not host_addresses and port_min is None and announced_ip is None:
        return

    private: Any = pc
    original = private._RTCPeerConnection__createTransceiver
    sockets = _Sockets()
    private._webinar_sockets = sockets

    def create(*args: Any, **kwargs: Any) -> Any:
        transceiver = original(*args, **kwargs)
        conn = transceiver.receiver.transport.transport.iceGatherer._connection
        if not getattr(conn, "_webinar_gather", False):
            _patch_gather(conn, sockets, host_addresses, port_min, port_max, announced_ip)
        return transceiver

    private._RTCPeerConnection__createTransceiver = create


class _Closed(Exception):
    """The ICE connection closed while candidates were being gathered."""


MEDIA_SOCKET_BUFFER = 4 * 1024 * 1024  # the kernel caps it at net.core.rmem_max

# Linux <linux/in.h>: the IPv4 media sockets send with Don't Fragment set. Every datagram
# they carry is far below an interface MTU (RTP and SCTP at <= 1,200 bytes of payload, as
# browsers send), and a datagram sent without DF costs the kernel an IP ID drawn from its
# shared hashed table per packet (__ip_select_ident, 2.2 % of the server's CPU in the fan-out
# benchmark); with DF on an unconnected socket the ID is 0. PROBE rather than DO: the kernel
# keeps no path MTU for the socket, so a learned smaller MTU never turns a send into EMSGSIZE.
_IP_MTU_DISCOVER = 10
_IP_PMTUDISC_PROBE = 3


def _tune_media_socket(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MEDIA_SOCKET_BUFFER)
    if sock.family == socket.AF_INET and sys.platform == "linux":
        sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_PROBE)


def release_sockets(pc: RTCPeerConnection) -> None:
    """After ``pc.close()``: close every UDP socket our gathering bound for ``pc``.

    aioice closes the sockets it knows of, but not one bound while its connection
    was closing, nor those of an ICE transport aiortc dropped without closing."""
    sockets: _Sockets | None = getattr(pc, "_webinar_sockets", None)
    if sockets is not None:
        sockets.release()


class _Sockets:
    """The UDP transports our gathering bound for one peer connection."""

    def __init__(self) -> None:
        self.released = False
        self._transports: list[asyncio.BaseTransport] = []

    def add(self, transport: asyncio.BaseTransport) -> bool:
        """Keep ``transport``; after :meth:`release` close it at once and say so."""
        if self.released:
            transport.close()
            return False
        self._transports.append(transport)
        return True

    def release(self) -> None:
        self.released = True
        for transport in self._transports:
            if not transport.is_closing():
                transport.close()
        self._transports.clear()


def _patch_gather(
    conn: Any,
    sockets: _Sockets,
    host_addresses: list[str],
    port_min: int | None,
    port_max: int | None,
    announced_ip: str | None,
) -> None:
    conn._webinar_gather = True
    ice: Any = aioice.ice

    async def bind(address: str) -> Any:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        if port_min is None or port_max is None:
            ports: list[int] = [0]
        else:
            ports = list(range(port_min, port_max + 1))
            random.shuffle(ports)
        last: OSError | None = None
        for port in ports:
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: ice.StunProtocol(conn), local_addr=(address, port), family=family
                )
                # Closed while we were binding? Then nobody else would close it.
                if not sockets.add(transport) or conn._closing:
                    transport.close()
                    raise _Closed
                sock = transport.get_extra_info("socket")
                if sock is not None:  # as aioice does: bursts must not overflow the socket
                    _tune_media_socket(sock)
                return protocol
            except OSError as exc:
                last = exc
        raise OSError(f"no free UDP port on {address} in {port_min}-{port_max}") from last

    async def gather_candidates() -> None:
        if conn._local_candidates_start:
            return
        conn._local_candidates_start = True
        with contextlib.suppress(_Closed):
            await gather()
        if conn._closing:
            # The connection closed while gathering: its close() may already have run
            # over _protocols, so close whatever we added (closing twice is harmless).
            for protocol in conn._protocols:
                protocol.transport.close()
            conn._protocols.clear()
        conn._local_candidates_end = True

    async def gather() -> None:
        relay_only = conn._transport_policy == ice.TransportPolicy.RELAY
        addresses = (
            []
            if relay_only
            else host_addresses
            or ice.get_host_addresses(use_ipv4=conn._use_ipv4, use_ipv6=conn._use_ipv6)
        )
        for component in conn._components:
            hosts = []
            for address in addresses:
                try:
                    protocol = await bind(address)
                except OSError:
                    continue
                host, port = protocol.transport.get_extra_info("sockname")[:2]
                protocol.local_candidate = ice.Candidate(
                    foundation=ice.candidate_foundation("host", "udp", host),
                    component=component,
                    transport="udp",
                    priority=ice.candidate_priority(component, "host"),
                    host=host,
                    port=port,
                    type="host",
                )
                hosts.append(protocol)
                conn._protocols.append(protocol)
                conn._local_candidates.append(protocol.local_candidate)
                if announced_ip:
                    conn._local_candidates.append(
                        ice.Candidate(
                            foundation=ice.candidate_foundation("srflx", "udp", announced_ip),
                            component=component,
                            transport="udp",
                            priority=ice.candidate_priority(component, "srflx"),
                            host=announced_ip,
                            port=port,
                            type="srflx",
                            related_address=host,
                            related_port=port,
                        )
                    )
            # STUN (server-reflexive) on our sockets, TURN (relayed) through aioice.
            tasks = []
            if conn.stun_server and not announced_ip:
                tasks += [ice.server_reflexive_candidate(p, conn.stun_server) for p in hosts]
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, tuple):
                    conn._local_candidates.append(result[0])
            if conn.turn_server and not conn._closing:
                conn._local_candidates += await conn.get_component_candidates(
                    component=component, addresses=[]
                )

    conn.gather_candidates = gather_candidates
