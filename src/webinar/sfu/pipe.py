"""Pipes: one worker's producer copied into another worker's router.

A webinar spread over several workers keeps each producer on the worker its
publisher reached (the *origin*); every other worker with subscribers for it (an
*edge*) gets exactly one copy over a pipe, as mediasoup's ``pipeToRouter`` does
with a PipeTransport. A pipe is RTP/RTCP over UDP, one socket per end and per
producer, no ICE or DTLS: plain between the workers of one machine (loopback),
SRTP/SRTCP-protected both ways between machines (:meth:`_End.secure`, below).

Origin side, :class:`PipeOut`: a relay on the producer's ingest. Every packet of
every encoding (simulcast layers, all VP8 temporal layers) leaves as the publisher
sent it: same SSRC, sequence number, timestamp, payload type and payload, with the
audio level (audio) or the RID (simulcast) as header extension; RTX is unwrapped
(the edge repairs with NACK), padding and duplicates are gone. Sender reports
(the RTP/NTP mapping) follow each new publisher SR. From the edge it takes NACK
(answered from its own history, each packet at most once per 100 ms), PLI/FIR
(handed to the producer's keyframe request, which sends at most one PLI per layer per
:data:`~webinar.sfu.simulcast.LAYER_KEYFRAME_INTERVAL`, and one per publisher per
:data:`~webinar.sfu.simulcast.KEYFRAME_REQUEST_INTERVAL`, however many pipes and local
subscribers ask) and which simulcast layers the edge needs (its
dynacast, said again with each sender report of the lowest layer; until told, all).

Edge side, :class:`PipeIn`: a :class:`~webinar.sfu.producer.Producer` made from a
descriptor and registered with the edge's router; its packets take the same ingest
as a publisher's (sequence extension, duplicates, NACK upstream, keyframe requests
upstream, layers, audio level), so consumers, bandwidth tiers, the recorder and
active-speaker detection treat it as a local producer. It keeps the origin's
producer ID.

Both ends take datagrams only from the peer they were connected to (address and
port); others are counted in ``stats.refused`` and dropped.

Encryption (pipes between nodes). Given :class:`PipeKeys` (``open(..., keys=)``), an
end protects every RTP packet with SRTP and every RTCP packet with SRTCP, and takes
from its peer only what authenticates under the other direction's key: a datagram
from the right address that SRTP refuses (forged, altered, replayed, another key) is
counted in ``stats.unauthenticated`` and dropped. The keys are a fresh random master
key and salt per pipe and per direction, made by the origin and handed to the edge
by the control plane (over Redis, :mod:`webinar.cluster.pipes`); nothing else is
negotiated. The profile is AEAD_AES_128_GCM (:data:`SRTP_PROFILE`): measured with
pylibsrtp 1.0 on the 2-core VM (AES-NI), one 1,100-byte packet costs 2.5-2.7 µs to
protect or unprotect with GCM against 2.6-2.8 µs with AES_CM_128_HMAC_SHA1_80 (~1.5 µs
of either is the cffi call: 100-byte packets cost 1.55 and 1.68 µs), so GCM is no
dearer here, authenticates the whole packet with one primitive and is several times
cheaper where HMAC-SHA1 is not hidden behind the wrapper; its tag is 16 bytes a packet
(6 more than the HMAC's 10). The replay window is :data:`REPLAY_WINDOW` packets, so
that a retransmission of anything in the origin's history is still taken. A pipe closes from
either end: the producer closing at the origin closes the edge's producer (its
consumers are told as for an unpublish); the edge closing tells the origin, which
detaches. ``on_close`` tells the owner either way; ``PipeIn.on_idle`` tells it
when the edge's last consumer left, so the control plane can decide to close.

Use (the control plane carries the descriptor and the addresses between workers)::

    # origin worker                         # edge worker
    descriptor = pipe_descriptor(producer)  # a JSON-able dict
    pipe_out = await PipeOut.open(producer, host="127.0.0.1", ports=(40000, 40999))
    # -> descriptor, pipe_out.address
                                            pipe_in = await PipeIn.open(
                                                router, descriptor, peer=origin_address)
                                            pipe_in.on_idle(lambda p: p.close())
                                            transport.consume(pipe_in.producer, ...)
                                            # <- pipe_in.address
    pipe_out.connect(edge_address)          # media flows from here on

Nothing is relayed before :meth:`PipeOut.connect`, and a :class:`PipeIn` refuses what
arrives before it knows its peer, so the edge connects first, as above. Closing is
synchronous (``close()``); the sockets are released at the next turn of the event
loop. Neither end owns a task.

What a pipe does not carry: the origin producer's pause (the relay gets every packet,
so the edge's sequence stays whole: pause the edge's producer too), and liveness (an
origin worker that dies says no BYE: ``PipeIn.last_received`` tells how long the
pipe has been silent). The UDP peer check alone is no authentication: that is why a
pipe between machines is encrypted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import secrets
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from time import thread_time_ns
from typing import TYPE_CHECKING, Any

import pylibsrtp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtcrtpreceiver import NackGenerator
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
)

from .producer import Producer, ProducerCodec
from .rtp import MediaPacket, one_byte_extension, pad4
from .simulcast import MAX_LAYERS, MAX_RID_LENGTH, RID_URI
from .types import CloseReason, MediaKind, MediaSource

if TYPE_CHECKING:
    from .router import Router
    from .simulcast import ProducerLayer

__all__ = [
    "DESCRIPTOR_VERSION",
    "SRTP_PROFILE",
    "PipeIn",
    "PipeKeys",
    "PipeOut",
    "PipeStats",
    "pipe_descriptor",
]

logger = logging.getLogger(__name__)

Address = tuple[str, int]

DESCRIPTOR_VERSION = 1
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
AUDIO_LEVEL_ID = 1  # header extension IDs on the pipe (fixed: both ends are ours)
RID_ID = 2
HISTORY_SIZE = 1024  # packets kept per layer at the origin for the edge's NACKs
RESEND_INTERVAL = 0.1  # a packet is resent at most once per 100 ms
MAX_NACK_ITEMS = 128  # bound on the work done for one NACK
PIPE_SSRC = 0x70697065  # the SSRC a pipe's own RTCP is sent as ("pipe")
APP_LAYERS = b"LAYR"  # RTCP APP name: the simulcast layers the edge needs (bit mask)
RTCP_APP = 204
SOCKET_BUFFER = 4 * 1024 * 1024  # the kernel caps it at net.core.{r,w}mem_max
#: One packet in CPU_SAMPLE has its CPU time read (``stats.cpu_ns``, ``stats.ingest_ns``, as
#: that time × CPU_SAMPLE): each clock read is a system call (~0.8 µs), too dear for all.
CPU_SAMPLE = 8
LOSS_DEADLINE = 1.0  # a NACKed packet not arrived within this is counted lost

#: The SRTP protection of a pipe between nodes (see the module docstring for why).
SRTP_PROFILE = "AEAD_AES_128_GCM"
SRTP_KEY_LENGTH = 28  # 16-byte master key + 12-byte master salt
SRTP_OVERHEAD = 16  # the GCM tag on each RTP packet (no MKI)
#: libsrtp's replay window: a retransmission of any packet of the origin's history must
#: still be accepted by the edge (the default, 128, would refuse older ones as replays).
REPLAY_WINDOW = 2 * HISTORY_SIZE

_HDR = struct.Struct("!BBHII")
_HDR_LEVEL = struct.Struct("!BBHIIHHBB2x")  # with a one-byte audio-level extension
_HDR_LEN = _HDR.size
_LEVEL_EXT = AUDIO_LEVEL_ID << 4  # id, length 1 (written as length - 1 = 0)


@dataclass(slots=True)
class PipeStats:
    """What one end of a pipe did. ``packets``/``bytes``: RTP sent (out) or taken
    (in); ``wire_bytes``: the same packets' datagram octets (RTP header, extension,
    payload, SRTP tag); ``nacks``, ``nack_items``, ``keyframe_requests``: received
    (out) or sent (in); ``refused``: datagrams from anyone but the peer (before
    ``connect`` too); ``unauthenticated``: datagrams from the peer's address that SRTP
    did not accept (forged, altered, replayed, another key; encrypted pipes only).

    Loss, on the edge (in) only: ``gaps`` counts the sequence numbers the edge found
    missing and NACKed (each once), ``repaired`` those of them that arrived later
    (retransmitted, or just late), ``lost`` those that had not arrived
    :data:`LOSS_DEADLINE` after their first NACK (or when the pipe closed): packets
    the pipe failed to deliver. ``gaps - repaired - lost`` are still being repaired."""

    packets: int = 0
    bytes: int = 0  # RTP payload octets
    wire_bytes: int = 0  # RTP datagram octets
    retransmitted: int = 0
    resend_suppressed: int = 0
    nacks: int = 0
    nack_items: int = 0
    keyframe_requests: int = 0
    sender_reports: int = 0
    refused: int = 0
    unauthenticated: int = 0
    malformed: int = 0
    dropped: int = 0  # by ``keep`` (tests' loss on the pipe)
    gaps: int = 0
    repaired: int = 0
    lost: int = 0
    #: CPU time (ns, this thread) spent in the pipe's per-packet work: relaying out at the
    #: origin (header, history, SRTP, ``sendto``), taking in at the edge (SRTP, parsing,
    #: RTCP), the edge's ingest excluded (``ingest_ns``). Not the event loop's wake-up.
    #: Estimated from one packet in :data:`CPU_SAMPLE`.
    cpu_ns: int = 0
    #: At the edge: CPU time (ns) of the ingest its packets then take (the edge producer's
    #: sequence, NACK, keyframe and layer work, handing them to the consumers' queues).
    ingest_ns: int = 0


@dataclass(frozen=True, slots=True)
class PipeKeys:
    """The SRTP master keys (key + salt) of one end of an encrypted pipe: ``send``
    protects what this end sends, ``receive`` checks what it takes. The origin makes
    both with :meth:`fresh`; the edge uses :meth:`swapped`."""

    send: bytes
    receive: bytes

    def __post_init__(self) -> None:
        if len(self.send) != SRTP_KEY_LENGTH or len(self.receive) != SRTP_KEY_LENGTH:
            raise ValueError(f"SRTP master keys are {SRTP_KEY_LENGTH} bytes")

    @classmethod
    def fresh(cls) -> PipeKeys:
        """Two new random keys, one per direction."""
        return cls(secrets.token_bytes(SRTP_KEY_LENGTH), secrets.token_bytes(SRTP_KEY_LENGTH))

    def swapped(self) -> PipeKeys:
        """The other end's keys."""
        return PipeKeys(send=self.receive, receive=self.send)

    def to_json(self) -> dict[str, str]:
        return {"profile": SRTP_PROFILE, "send": self.send.hex(), "receive": self.receive.hex()}

    @classmethod
    def from_json(cls, value: Any) -> PipeKeys:
        """``ValueError`` for anything but :meth:`to_json`'s output (same profile)."""
        try:
            if value.get("profile") != SRTP_PROFILE:
                raise ValueError(f"unknown SRTP profile {value.get('profile')!r}")
            return cls(bytes.fromhex(value["send"]), bytes.fromhex(value["receive"]))
        except (AttributeError, KeyError, TypeError) as exc:
            raise ValueError(f"bad pipe keys: {exc!r}") from exc

    def __repr__(self) -> str:
        return "PipeKeys(...)"  # never in a log


def _srtp(key: bytes, direction: int) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=direction,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    )
    policy.window_size = REPLAY_WINDOW
    if direction == pylibsrtp.Policy.SSRC_ANY_OUTBOUND:
        policy.allow_repeat_tx = True  # a retransmission is the same packet again
    return pylibsrtp.Session(policy=policy)


# --------------------------------------------------------------------------- descriptor


def pipe_descriptor(producer: Producer) -> dict[str, Any]:
    """What an edge needs to make a copy of ``producer``: a JSON-able dict.

    Raises ``ValueError`` while the producer's codec is not known yet (its
    publisher's connection has not started): ask again once media flows."""
    codec = producer.codec
    if codec is None:
        raise ValueError(f"{producer.id} has no negotiated codec yet")
    if producer.simulcast is not None:
        encodings = [{"rid": layer.rid, "ssrc": layer.ssrc} for layer in producer.simulcast.layers]
        temporal = producer.simulcast.temporal_layers
    else:
        encodings = [{"rid": None, "ssrc": producer.ssrc}]
        temporal = producer.temporal_layers
    return {
        "version": DESCRIPTOR_VERSION,
        "producer_id": producer.id,
        "kind": producer.kind.value,
        "source": producer.source.value,
        "mid": producer.mid,
        "codec": {
            "mime_type": codec.mime_type,
            "clock_rate": codec.clock_rate,
            "payload_type": codec.payload_type,
            "channels": codec.channels,
            "parameters": {str(k): v for k, v in codec.parameters},
        },
        "encodings": encodings,
        "temporal_layers": temporal,
    }


@dataclass(frozen=True, slots=True)
class _Descriptor:
    producer_id: str
    kind: MediaKind
    source: MediaSource
    mid: str
    codec: ProducerCodec
    rids: tuple[str, ...]  # simulcast: lowest first; () for a single stream
    ssrcs: tuple[int | None, ...]  # per encoding


def _parse_descriptor(d: Any) -> _Descriptor:
    """Check a descriptor from another worker; ``ValueError`` says what is wrong."""
    try:
        if not isinstance(d, dict) or d.get("version") != DESCRIPTOR_VERSION:
            raise ValueError("not a version-1 pipe descriptor")
        producer_id = d["producer_id"]
        if not isinstance(producer_id, str) or not 0 < len(producer_id) <= 64:
            raise ValueError("bad producer_id")
        kind = MediaKind(d["kind"])
        source = MediaSource(d["source"])
        if source.kind is not kind:
            raise ValueError(f"source {source} is not {kind}")
        mid = d.get("mid") or "pipe"
        c = d["codec"]
        pt, clock = c["payload_type"], c["clock_rate"]
        # 64-95 would read as RTCP on a socket that carries both (RFC 5761)
        if not (isinstance(pt, int) and (0 <= pt < 64 or 96 <= pt <= 127)):
            raise ValueError("bad codec payload type")
        if not (isinstance(clock, int) and clock > 0):
            raise ValueError("bad codec clock rate")
        channels = c.get("channels")
        params = c.get("parameters") or {}
        if not isinstance(params, dict):
            raise ValueError("bad codec parameters")
        codec = ProducerCodec(
            mime_type=str(c["mime_type"]),
            clock_rate=clock,
            payload_type=pt,
            rtx_payload_type=None,  # no RTX on a pipe: the edge repairs with NACK
            channels=channels if isinstance(channels, int) else None,
            parameters=tuple(sorted(params.items())),
        )
        encodings = d["encodings"]
        if not isinstance(encodings, list) or not 1 <= len(encodings) <= MAX_LAYERS:
            raise ValueError("encodings: 1 to 3 expected")
        ssrcs: list[int | None] = []
        rids: list[str] = []
        for e in encodings:
            ssrc = e.get("ssrc")
            if ssrc is not None and not (isinstance(ssrc, int) and 0 <= ssrc < 1 << 32):
                raise ValueError("bad SSRC")
            ssrcs.append(ssrc)
            rid = e.get("rid")
            if rid is not None:
                if not (isinstance(rid, str) and 0 < len(rid) <= MAX_RID_LENGTH):
                    raise ValueError("bad RID")
                rids.append(rid)
        if len(encodings) > 1 and (len(rids) != len(encodings) or kind is not MediaKind.VIDEO):
            raise ValueError("simulcast needs video and a RID per encoding")
        return _Descriptor(
            producer_id=producer_id,
            kind=kind,
            source=source,
            mid=str(mid),
            codec=codec,
            rids=tuple(rids) if len(encodings) > 1 else (),
            ssrcs=tuple(ssrcs),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"bad pipe descriptor: {exc!r}") from exc


# --------------------------------------------------------------------------- endpoint


def _peer(address: Address) -> Address:
    host, port = address
    if not (isinstance(port, int) and 0 < port < 65536):
        raise ValueError(f"bad port {port!r}")
    return str(ipaddress.ip_address(host)), port


class _End(asyncio.DatagramProtocol):
    """One UDP socket of a pipe: binding, the peer check, closing."""

    def __init__(self) -> None:
        self.stats = PipeStats()
        self.closed = False
        self._transport: asyncio.DatagramTransport | None = None
        self._sendto: Callable[[bytes, Address], None] | None = None
        self._peer: Address | None = None
        self._address: Address | None = None
        self._close_listeners: list[Callable[[Any], None]] = []
        self.keep: Callable[[bytes], bool] | None = None  # tests: drop the RTP it refuses
        self._tx: pylibsrtp.Session | None = None
        self._rx: pylibsrtp.Session | None = None
        self._overhead = 0  # octets SRTP adds to an RTP packet
        self._tick = 0  # packets since the last one whose CPU time was read
        self._ingest_raw = 0  # ns of the edge's ingest within the packet being timed

    async def _bind(self, host: str, ports: tuple[int, int] | None) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if ports is None:
            candidates = [0]
        elif not 0 < ports[0] <= ports[1] < 65536:
            raise ValueError(f"bad port range {ports}")
        else:
            candidates = list(range(ports[0], ports[1] + 1))
            random.shuffle(candidates)
        last: OSError | None = None
        for port in candidates:
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: self, local_addr=(host, port), family=family
                )
            except OSError as exc:
                last = exc
                continue
            sock = transport.get_extra_info("socket")
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
            self._transport = transport
            self._sendto = transport.sendto
            bound = transport.get_extra_info("sockname")
            self._address = (bound[0], bound[1])
            return
        raise OSError(f"no free UDP port on {host} in {ports}") from last

    @property
    def address(self) -> Address:
        """The bound (host, port), to hand to the other end."""
        if self._address is None:
            raise RuntimeError("pipe is not bound")
        return self._address

    @property
    def peer(self) -> Address | None:
        return self._peer

    @property
    def encrypted(self) -> bool:
        """SRTP-protected (:meth:`secure`): a pipe between nodes."""
        return self._tx is not None

    def secure(self, keys: PipeKeys) -> None:
        """Protect everything this end sends with ``keys.send`` and take only what
        ``keys.receive`` authenticates (before :meth:`connect`)."""
        if self._peer is not None:
            raise RuntimeError("secure a pipe before connecting it")
        self._tx = _srtp(keys.send, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._rx = _srtp(keys.receive, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self._overhead = SRTP_OVERHEAD

    def connect(self, peer: Address) -> None:
        """Send to, and take datagrams only from, ``peer`` (an IP address and port)."""
        self._peer = _peer(peer)

    def on_close(self, listener: Callable[[Any], None]) -> None:
        """``listener(pipe)`` once the pipe closed, from whichever end."""
        self._close_listeners.append(listener)

    # asyncio.DatagramProtocol
    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._tick = tick = (self._tick + 1) % CPU_SAMPLE
        if tick:
            self._datagram(data, addr)
            return
        self._ingest_raw = -1  # asks the edge's _received to time its ingest
        started = thread_time_ns()
        try:
            self._datagram(data, addr)
        finally:
            spent = thread_time_ns() - started - max(0, self._ingest_raw)
            self.stats.cpu_ns += spent * CPU_SAMPLE
            self._ingest_raw = 0

    def _datagram(self, data: bytes, addr: Any) -> None:
        if self._peer is None or (addr[0], addr[1]) != self._peer or self.closed:
            self.stats.refused += 1
            return
        keep = self.keep
        if keep is not None and not is_rtcp(data) and not keep(data):
            self.stats.dropped += 1  # as if lost on the way (before SRTP)
            return
        rx = self._rx
        if rx is not None:
            try:
                data = rx.unprotect_rtcp(data) if is_rtcp(data) else rx.unprotect(data)
            except pylibsrtp.Error:
                self.stats.unauthenticated += 1
                return
        self._received(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the other end is not (or no longer) bound
        logger.debug("pipe %s: %s", self._address, exc)

    def _received(self, data: bytes) -> None:
        raise NotImplementedError

    def _send(self, data: bytes) -> None:
        """Send an RTCP packet (SRTCP on an encrypted pipe)."""
        peer = self._peer
        if peer is not None and self._sendto is not None and not self.closed:
            if self._tx is not None:
                data = self._tx.protect_rtcp(data)
            self._sendto(data, peer)

    def _send_rtp(self, data: bytes) -> None:
        peer = self._peer
        if peer is not None and self._sendto is not None and not self.closed:
            if self._tx is not None:
                data = self._tx.protect(data)
            self._sendto(data, peer)

    def _close_socket(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            self._sendto = None
        listeners, self._close_listeners = self._close_listeners, []
        for listener in listeners:
            try:
                listener(self)
            except Exception:
                logger.exception("pipe close listener failed")

    def _bye(self) -> None:
        with contextlib.suppress(OSError):
            self._send(bytes(RtcpByePacket(sources=[PIPE_SSRC])))


# --------------------------------------------------------------------------- origin


class PipeOut(_End):
    """The origin's end: relays one producer to one edge."""

    def __init__(self, producer: Producer) -> None:
        super().__init__()
        codec = producer.codec
        if codec is None:
            raise ValueError(f"{producer.id} has no negotiated codec yet")
        if producer.closed:
            raise ValueError(f"{producer.id} is closed")
        self.producer = producer
        self._pt = codec.payload_type
        self._clock_rate = codec.clock_rate
        self._audio = producer.kind is MediaKind.AUDIO
        layers = producer.layer_count
        self._layer_of: dict[int, int] = {}  # SSRC -> layer index
        self._ssrc_of: list[int | None] = [None] * layers
        self._hist: list[list[MediaPacket | None]] = [[None] * HISTORY_SIZE for _ in range(layers)]
        self._resent: list[list[float]] = [[0.0] * HISTORY_SIZE for _ in range(layers)]
        self._sr_relayed: list[object] = [None] * layers  # the publisher SR last relayed
        self._ext: list[bytes] = []
        for index in range(layers):
            rid = producer.simulcast.layers[index].rid if producer.simulcast else None
            if rid:
                body = pad4(one_byte_extension(RID_ID, rid.encode()))
                self._ext.append(struct.pack("!HH", 0xBEDE, len(body) // 4) + body)
            else:
                self._ext.append(b"")

    @classmethod
    async def open(
        cls,
        producer: Producer,
        *,
        host: str = "127.0.0.1",
        ports: tuple[int, int] | None = None,
        peer: Address | None = None,
        keys: PipeKeys | None = None,
    ) -> PipeOut:
        """Bind a UDP socket on ``host`` (a port of ``ports``, inclusive, if given)
        and start relaying ``producer`` once connected; SRTP-protected with ``keys``."""
        pipe = cls(producer)
        if keys is not None:
            pipe.secure(keys)
        await pipe._bind(host, ports)
        if peer is not None:
            pipe.connect(peer)
        if producer.closed:  # closed while we were binding
            pipe._close_socket()
            raise ValueError(f"{producer.id} is closed")
        producer.add_relay(pipe._relay)
        producer.on_close(pipe._producer_closed)
        return pipe

    # ------------------------------------------------------------------ hot path

    def _relay(self, layer: ProducerLayer, mp: MediaPacket) -> None:
        self._tick = tick = (self._tick + 1) % CPU_SAMPLE
        if tick:
            self._relay_one(layer, mp)
            return
        started = thread_time_ns()
        try:
            self._relay_one(layer, mp)
        finally:
            self.stats.cpu_ns += (thread_time_ns() - started) * CPU_SAMPLE

    def _relay_one(self, layer: ProducerLayer, mp: MediaPacket) -> None:
        peer = self._peer
        sendto = self._sendto
        ssrc = layer.ssrc
        if peer is None or sendto is None or ssrc is None:
            return
        index = layer.index
        if self._ssrc_of[index] != ssrc:
            self._new_ssrc(index, ssrc)
        data = self._packet(mp, ssrc, index)
        tx = self._tx
        sendto(data if tx is None else tx.protect(data), peer)
        st = self.stats
        st.packets += 1
        st.bytes += len(mp.payload)
        st.wire_bytes += len(data) + self._overhead
        self._hist[index][mp.seq & (HISTORY_SIZE - 1)] = mp
        producer = self.producer
        sim = producer.simulcast
        sr = sim.sender_reports[index] if sim is not None else producer.sender_report
        if sr is not self._sr_relayed[index]:
            self._sr_relayed[index] = sr
            self._relay_sender_report(index, ssrc, layer)

    def _packet(self, mp: MediaPacket, ssrc: int, index: int) -> bytes:
        second = (mp.marker << 7) | self._pt
        seq = mp.seq & 0xFFFF
        if self._audio:
            level = mp.audio_level
            if level >= 0:
                head = _HDR_LEVEL.pack(
                    0x90, second, seq, mp.timestamp, ssrc, 0xBEDE, 1, _LEVEL_EXT, level
                )
                return head + mp.payload
            return _HDR.pack(0x80, second, seq, mp.timestamp, ssrc) + mp.payload
        ext = self._ext[index]
        if ext:
            return _HDR.pack(0x90, second, seq, mp.timestamp, ssrc) + ext + mp.payload
        return _HDR.pack(0x80, second, seq, mp.timestamp, ssrc) + mp.payload

    def _new_ssrc(self, index: int, ssrc: int) -> None:
        """A layer's (first, or a new encoder's) SSRC: its history starts over."""
        old = self._ssrc_of[index]
        if old is not None and self._layer_of.get(old) == index:
            del self._layer_of[old]
        self._ssrc_of[index] = ssrc
        self._layer_of[ssrc] = index
        self._hist[index] = [None] * HISTORY_SIZE
        self._resent[index] = [0.0] * HISTORY_SIZE

    def _relay_sender_report(self, index: int, ssrc: int, layer: ProducerLayer) -> None:
        """The publisher's newest RTP/NTP mapping of a layer, moved to now."""
        mapping = self.producer.sender_report_of(index)
        if mapping is None:
            return
        elapsed = max(time.time() - mapping.arrived, 0.0)
        ntp = (mapping.ntp + int(elapsed * (1 << 32))) & 0xFFFFFFFFFFFFFFFF
        rtp = (mapping.rtp + int(elapsed * self._clock_rate)) & 0xFFFFFFFF
        report = RtcpSrPacket(
            ssrc=ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp,
                rtp_timestamp=rtp,
                packet_count=layer.packets & 0xFFFFFFFF,
                octet_count=layer.bytes & 0xFFFFFFFF,
            ),
        )
        self._send(bytes(report))
        self.stats.sender_reports += 1

    # ------------------------------------------------------------------ feedback

    def _received(self, data: bytes) -> None:
        if len(data) >= 12 and data[1] == RTCP_APP and data[8:12] == APP_LAYERS:
            if len(data) >= 16:
                mask = data[15]
                self.producer.relay_needs(
                    self._relay, {i for i in range(self.producer.layer_count) if mask >> i & 1}
                )
            return
        if not is_rtcp(data):
            self.stats.malformed += 1
            return
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            self.stats.malformed += 1
            return
        for packet in packets:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self.stats.nacks += 1
                self.retransmit(packet.media_ssrc, packet.lost)
            elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (
                RTCP_PSFB_PLI,
                RTCP_PSFB_FIR,
            ):
                ssrc = packet.media_ssrc
                if packet.fmt == RTCP_PSFB_FIR and len(packet.fci) >= 4:
                    ssrc = int.from_bytes(packet.fci[:4], "big")
                index = self._layer_of.get(ssrc)
                if index is not None:
                    self.stats.keyframe_requests += 1
                    self.producer.request_keyframe(index)
            elif isinstance(packet, RtcpByePacket):
                self._close(tell_peer=False)
                return

    def retransmit(self, ssrc: int, lost: Iterable[int]) -> int:
        """Resend what the edge lost on the pipe, from this end's history."""
        index = self._layer_of.get(ssrc)
        if index is None:
            return 0
        hist, resent = self._hist[index], self._resent[index]
        now = time.monotonic()
        sent = 0
        st = self.stats
        for n, seq in enumerate(lost):
            if n >= MAX_NACK_ITEMS:
                break
            st.nack_items += 1
            slot = seq & (HISTORY_SIZE - 1)
            mp = hist[slot]
            if mp is None or mp.seq & 0xFFFF != seq:
                continue
            if now - resent[slot] < RESEND_INTERVAL:
                st.resend_suppressed += 1
                continue
            resent[slot] = now
            data = self._packet(mp, ssrc, index)
            self._send_rtp(data)
            st.wire_bytes += len(data) + self._overhead
            sent += 1
        st.retransmitted += sent
        return sent

    # ------------------------------------------------------------------ closing

    def _producer_closed(self, _producer: Producer, _reason: CloseReason) -> None:
        self._close(tell_peer=True)

    def close(self) -> None:
        """Stop relaying, tell the edge (its producer closes), free the socket."""
        self._close(tell_peer=True)

    def _close(self, *, tell_peer: bool) -> None:
        if self.closed:
            return
        if tell_peer:
            self._bye()
        self.producer.remove_relay(self._relay)
        self.producer.off_close(self._producer_closed)
        self._hist = []
        self._close_socket()

    def __repr__(self) -> str:
        return f"PipeOut({self.producer.id}, {self._address} -> {self._peer})"


# --------------------------------------------------------------------------- edge


class PipeIn(_End):
    """The edge's end: a producer on the edge's router, fed by the pipe. It is the
    producer's :class:`~webinar.sfu.ingest.Tap`: NACKs and keyframe requests of the
    ingest go up the pipe."""

    def __init__(self, router: Router, descriptor: dict[str, Any]) -> None:
        super().__init__()
        d = _parse_descriptor(descriptor)
        self._router = router
        # the Tap interface
        self.nack = NackGenerator()
        self.remb_filter: Callable[[int], int] | None = None
        self.rid_ssrcs: dict[str, list[int | None]] = {
            rid: [ssrc, None] for rid, ssrc in zip(d.rids, d.ssrcs, strict=False) if ssrc
        }
        self.last_received = 0.0  # time.monotonic() of the last datagram from the peer
        ext = HeaderExtensionsMap()
        ext.configure(
            RTCRtpParameters(
                headerExtensions=[
                    RTCRtpHeaderExtensionParameters(id=AUDIO_LEVEL_ID, uri=AUDIO_LEVEL_URI),
                    RTCRtpHeaderExtensionParameters(id=RID_ID, uri=RID_URI),
                ]
            )
        )
        self._ext_map = ext
        self._parse = RtpPacket.parse
        self.producer = Producer(
            kind=d.kind,
            source=d.source,
            mid=d.mid,
            tap=self,
            rids=d.rids,
            batch=True,
            producer_id=d.producer_id,
        )
        self.producer.set_codec(d.codec, None if d.rids else d.ssrcs[0])
        self._on_rtp = self.producer.on_rtp
        self._layers_sent: int | None = None
        # loss accounting: (SSRC << 16 | sequence number) NACKed -> when first NACKed
        self._missing: dict[int, float] = {}
        self._settled: dict[int, float] = {}  # counted lost: not counted again if NACKed again

    @classmethod
    async def open(
        cls,
        router: Router,
        descriptor: dict[str, Any],
        *,
        host: str = "127.0.0.1",
        ports: tuple[int, int] | None = None,
        peer: Address | None = None,
        keys: PipeKeys | None = None,
    ) -> PipeIn:
        """Bind a UDP socket on ``host`` and add the copy of the descriptor's producer
        to ``router`` (:attr:`producer`); SRTP-protected with ``keys`` (this end's:
        the origin's :meth:`PipeKeys.swapped`). ``ValueError`` for a bad descriptor."""
        pipe = cls(router, descriptor)
        if keys is not None:
            pipe.secure(keys)
        try:
            await pipe._bind(host, ports)
            if peer is not None:
                pipe.connect(peer)
            router.add_producer(pipe.producer, on_layers=pipe._layers_needed)
        except BaseException:
            pipe._close(tell_peer=False)
            raise
        pipe.producer.on_close(pipe._producer_closed)
        return pipe

    def on_idle(self, listener: Callable[[PipeIn], None]) -> None:
        """``listener(pipe)`` whenever the edge producer's last consumer leaves."""
        self.producer.on_idle(lambda _producer: listener(self))

    # ------------------------------------------------------------------ hot path

    def _received(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        if is_rtcp(data):
            self._rtcp(data)
            return
        try:
            packet = self._parse(data, self._ext_map)
        except ValueError:
            self.stats.malformed += 1
            return
        st = self.stats
        st.packets += 1
        st.bytes += len(packet.payload)
        st.wire_bytes += len(data) + self._overhead
        if self._missing:
            key = packet.ssrc << 16 | packet.sequence_number
            if self._missing.pop(key, None) is not None:
                st.repaired += 1
        if self._ingest_raw != -1:  # not a timed packet
            self._on_rtp(packet, 0)
            return
        started = thread_time_ns()
        try:
            self._on_rtp(packet, 0)
        finally:
            self._ingest_raw = spent = thread_time_ns() - started
            st.ingest_ns += spent * CPU_SAMPLE

    def _rtcp(self, data: bytes) -> None:
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            self.stats.malformed += 1
            return
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                self.stats.sender_reports += 1
                self.producer.on_sender_report(packet)
                if self._layers_sent is not None and packet.ssrc == self._first_ssrc():
                    # said again now and then: a lost datagram must not pin layers for good
                    self._send_layers(self._layers_sent)
            elif isinstance(packet, RtcpByePacket):
                self._close(tell_peer=False)  # the origin's producer closed
                return

    # ------------------------------------------------------------------ Tap

    def account(self, packet: RtpPacket, arrival_time_ms: int, clock_rate: int) -> None:
        pass  # no receiver reports or REMB on a pipe

    def claim_ssrc(self, ssrc: int) -> None:
        pass  # sender reports come by SSRC to the producer anyway

    def send_nack(self, media_ssrc: int, lost: Iterable[int]) -> None:
        packet = RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=PIPE_SSRC, media_ssrc=media_ssrc)
        packet.lost = sorted(lost)
        st = self.stats
        st.nacks += 1
        st.nack_items += len(packet.lost)
        now = time.monotonic()
        missing = self._missing
        for seq in packet.lost:
            key = media_ssrc << 16 | seq
            if key not in missing and key not in self._settled:
                missing[key] = now
                st.gaps += 1
        self.settle_losses(now)
        self._send(bytes(packet))

    def settle_losses(self, now: float | None = None) -> int:
        """Count as ``lost`` the NACKed packets older than :data:`LOSS_DEADLINE`;
        the number still being repaired."""
        missing, settled = self._missing, self._settled
        now = time.monotonic() if now is None else now
        if missing:
            deadline = now - LOSS_DEADLINE
            late = [key for key, since in missing.items() if since < deadline]
            for key in late:
                del missing[key]
                settled[key] = now
            self.stats.lost += len(late)
        if settled:  # the ingest stops NACKing a packet 128 packets later
            forget = now - 10 * LOSS_DEADLINE
            for key in [key for key, since in settled.items() if since < forget]:
                del settled[key]
        return len(missing)

    def send_pli(self, media_ssrc: int) -> None:
        self.stats.keyframe_requests += 1
        self._send(bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=PIPE_SSRC, media_ssrc=media_ssrc)))

    def _layers_needed(self, _producer: Producer, active: list[bool]) -> None:
        """The edge router's dynacast: tell the origin which layers anyone here needs."""
        mask = sum(1 << i for i, on in enumerate(active) if on)
        self._layers_sent = mask
        self._send_layers(mask)

    def _send_layers(self, mask: int) -> None:
        self._send(struct.pack("!BBHI4sI", 0x80, RTCP_APP, 3, PIPE_SSRC, APP_LAYERS, mask))

    def _first_ssrc(self) -> int | None:
        simulcast = self.producer.simulcast
        return simulcast.layers[0].ssrc if simulcast is not None else self.producer.ssrc

    # ------------------------------------------------------------------ closing

    def _producer_closed(self, _producer: Producer, _reason: CloseReason) -> None:
        self._close(tell_peer=True)

    def close(self) -> None:
        """Close the edge producer (its consumers are told as for an unpublish), tell
        the origin to stop relaying, free the socket."""
        self._close(tell_peer=True)

    def _close(self, *, tell_peer: bool) -> None:
        if self.closed:
            return
        if tell_peer:
            self._bye()
        self.closed = True
        self.stats.lost += len(self._missing)  # never repaired
        self._missing.clear()
        self.producer.off_close(self._producer_closed)
        self.producer.close(CloseReason.UNPUBLISHED)
        self._close_socket()

    def __repr__(self) -> str:
        return f"PipeIn({self.producer.id}, {self._address} <- {self._peer})"
