"""WebRTC transports of the SFU: one peer connection per direction per peer.

A :class:`PublishTransport` answers the peer's offers and turns each sending
m-line into a :class:`Producer`. A :class:`SubscribeTransport` makes the offers:
each :class:`Consumer` gets its own sendonly m-line, and a change of consumers
schedules a renegotiation through the owner's ``send_offer`` callback. Two
connections (as LiveKit does) avoid offer glare between publishing and
server-initiated subscription changes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    AnyRtcpPacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)
from aiortc.sdp import SessionDescription, candidate_from_sdp

from ..tasks import stop_task
from . import _aiortc as hooks
from .consumer import Consumer, ConsumerLayout, Handover
from .estimator import BandwidthEstimator, Estimate
from .producer import Producer, ProducerCodec
from .simulcast import answer_with_simulcast, extensions_with_rid, parse_simulcast
from .totals import MediaTotals
from .twcc import ENV as TWCC_ENV
from .twcc import TwccSender, answered_twcc, offer_twcc
from .types import (
    CloseReason,
    MediaKind,
    MediaSource,
    SfuError,
    SfuErrorCode,
    TransportId,
    new_id,
)

logger = logging.getLogger(__name__)

SUPPORTED_CODECS = {MediaKind.VIDEO: "video/vp8", MediaKind.AUDIO: "audio/opus"}
MAX_SDP_BYTES = 64 * 1024
PROBE_REPORT_HOLD = 1.5  # seconds regular SRs wait after a probe's SR
CLOSE_TIMEOUT = 10.0  # seconds a peer connection may take to close before we stop waiting
MAX_DEAD_MLINES = 32  # inactive m-lines a subscriber keeps before it must reconnect


@dataclass(frozen=True, slots=True)
class IceServer:
    urls: list[str]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class TransportConfig:
    ice_servers: list[IceServer] = field(default_factory=list)
    host_addresses: list[str] = field(default_factory=list)
    udp_port_min: int | None = None
    udp_port_max: int | None = None
    announced_ip: str | None = None


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """What the publisher says an m-line of its offer carries."""

    mid: str
    source: MediaSource


def _make_pc(config: TransportConfig, *, max_bundle: bool) -> RTCPeerConnection:
    rtc_config = RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in config.ice_servers
        ],
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE if max_bundle else RTCBundlePolicy.BALANCED,
    )
    pc = RTCPeerConnection(configuration=rtc_config)
    hooks.configure_gathering(
        pc,
        host_addresses=config.host_addresses,
        port_min=config.udp_port_min,
        port_max=config.udp_port_max,
        announced_ip=config.announced_ip,
    )
    return pc


def bundle_only_mids(sdp: str) -> set[str]:
    """The MIDs of m-lines marked ``a=bundle-only`` (RFC 8843): port 0 in an offer, yet
    active in its BUNDLE group (GStreamer's webrtcbin offers its second m-line so)."""
    found: set[str] = set()
    mid: str | None = None
    only = False
    for raw in [*sdp.splitlines(), "m="]:
        line = raw.strip()
        if line.startswith("m="):
            if only and mid:
                found.add(mid)
            mid, only = None, False
        elif line.startswith("a=mid:"):
            mid = line.removeprefix("a=mid:").strip()
        elif line == "a=bundle-only":
            only = True
    return found


def active_mids(sdp: str, desc: SessionDescription) -> set[str]:
    """The MIDs of the m-lines that are in use: a port other than 0, or bundle-only in a
    BUNDLE group."""
    bundled = {mid for g in desc.group if g.semantic == "BUNDLE" for mid in g.items}
    only = bundle_only_mids(sdp) & bundled
    return {
        str(m.rtp.muxId)
        for m in desc.media
        if m.rtp.muxId is not None and (m.port != 0 or m.rtp.muxId in only)
    }


def parse_sdp(sdp: str, expected_type: str) -> SessionDescription:
    if len(sdp) > MAX_SDP_BYTES:
        raise SfuError(SfuErrorCode.BAD_SDP, f"SDP larger than {MAX_SDP_BYTES} bytes")
    if not sdp.startswith("v=0"):
        raise SfuError(SfuErrorCode.BAD_SDP, f"the {expected_type} is not SDP (no 'v=0' line)")
    try:
        desc = SessionDescription.parse(sdp)
    except Exception as exc:
        raise SfuError(SfuErrorCode.BAD_SDP, f"unparseable {expected_type}: {exc}") from exc
    if not desc.media:
        raise SfuError(SfuErrorCode.BAD_SDP, f"the {expected_type} has no media section")
    return desc


class _Transport:
    def __init__(self, config: TransportConfig, *, max_bundle: bool) -> None:
        self.id = TransportId(new_id("tr"))
        self.pc = _make_pc(config, max_bundle=max_bundle)
        self.closed = False
        self._close_listeners: list[Callable[[], None]] = []
        self._state_listeners: list[Callable[[str], None]] = []
        self.pc.on("connectionstatechange", self._on_state)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        for listener in list(self._state_listeners):
            listener(state)

    def on_state(self, listener: Callable[[str], None]) -> None:
        self._state_listeners.append(listener)

    def on_close(self, listener: Callable[[], None]) -> None:
        self._close_listeners.append(listener)

    @property
    def connection_state(self) -> str:
        return str(self.pc.connectionState)

    async def add_ice_candidate(
        self, candidate: str, sdp_mid: str | None, index: int | None
    ) -> None:
        """Trickled remote candidate (``candidate:...`` line); empty means end."""
        if self.closed:
            return
        if not candidate:
            return  # aiortc needs no end-of-candidates signal
        text = candidate.removeprefix("a=").removeprefix("candidate:")
        try:
            ice = candidate_from_sdp(text)
        except Exception as exc:
            raise SfuError(SfuErrorCode.BAD_SDP, f"bad ICE candidate: {exc}") from exc
        ice.sdpMid = sdp_mid
        ice.sdpMLineIndex = index
        if ice.sdpMid is None and ice.sdpMLineIndex is None:
            ice.sdpMLineIndex = 0
        try:
            await self.pc.addIceCandidate(ice)
        except Exception as exc:
            raise SfuError(SfuErrorCode.BAD_SDP, f"ICE candidate refused: {exc}") from exc

    async def _close_pc(self) -> None:
        # Never cancel aiortc's close: a second close() awaits the first one's shared
        # future, and cancelling that waiter cancels the future itself, so the first
        # close then fails with InvalidStateError. On a timeout it goes on by itself.
        closing = asyncio.ensure_future(self.pc.close())
        try:
            await asyncio.wait_for(asyncio.shield(closing), CLOSE_TIMEOUT)
        except TimeoutError:
            logger.warning("closing %s's peer connection takes over %s s", self.id, CLOSE_TIMEOUT)
            closing.add_done_callback(_log_close_failure)
        except Exception:
            logger.warning("closing %s's peer connection failed", self.id, exc_info=True)
        finally:  # even when the closing task is cancelled
            hooks.release_sockets(self.pc)
        for listener in self._close_listeners:
            try:
                listener()
            except Exception:
                logger.exception("transport close listener failed")
        self._close_listeners.clear()


def _log_close_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("a peer connection failed to close", exc_info=task.exception())


class _Line:
    """One receiving m-line of a publish connection: its tap and negotiated codec."""

    def __init__(self, receiver: Any, transport: PublishTransport, mid: str) -> None:
        self.mid = mid
        self.codec: ProducerCodec | None = None
        self.ssrc: int | None = None
        self.rtx_ssrc: int | None = None
        self._transport = transport
        self.tap = hooks.IngressTap(receiver, self._started)

        def sender_report(packet: AnyRtcpPacket) -> None:
            # Publisher sender reports carry the RTP/NTP mapping consumers re-use.
            if isinstance(packet, RtcpSrPacket):
                producer = transport.producers.get(mid)
                if producer is not None:
                    producer.on_sender_report(packet)

        hooks.watch_receiver_rtcp(receiver, sender_report)

    def _started(self, parameters: Any) -> None:
        main = next((c for c in parameters.codecs if not c.mimeType.lower().endswith("/rtx")), None)
        if main is None:
            return
        rtx = next(
            (
                c
                for c in parameters.codecs
                if c.mimeType.lower().endswith("/rtx")
                and c.parameters.get("apt") == main.payloadType
            ),
            None,
        )
        if parameters.encodings:
            self.ssrc = parameters.encodings[0].ssrc
            if parameters.encodings[0].rtx:
                self.rtx_ssrc = parameters.encodings[0].rtx.ssrc
        self.codec = ProducerCodec(
            mime_type=main.mimeType,
            clock_rate=main.clockRate,
            payload_type=main.payloadType,
            rtx_payload_type=rtx.payloadType if rtx else None,
            channels=main.channels,
            parameters=tuple(sorted(main.parameters.items())),
        )
        self._transport._line_started(self)


class PublishTransport(_Transport):
    """Receives a peer's tracks. Offers come from the peer."""

    def __init__(
        self,
        config: TransportConfig,
        *,
        may_add: Callable[[list[TrackSpec]], None],
        on_producer: Callable[[Producer], None],
        dtls_server: bool = False,
    ) -> None:
        """``dtls_server``: answer as the DTLS server when the peer lets us choose
        (:func:`~webinar.sfu._aiortc.prefer_dtls_server`; encoders with RSA certificates)."""
        super().__init__(config, max_bundle=False)
        self._dtls_server = dtls_server
        self.producers: dict[str, Producer] = {}  # live producers by mid
        self._lines: dict[str, _Line] = {}
        self._may_add = may_add
        self._on_producer = on_producer
        self._routes_mid: dict[str, Producer] = {}
        self._routes_ssrc: dict[int, Producer] = {}
        self._ingress_installed: set[int] = set()
        self._lock = asyncio.Lock()

    async def handle_offer(self, sdp: str, tracks: list[TrackSpec]) -> tuple[str, list[Producer]]:
        """Apply the peer's offer; returns our answer and the new producers.

        The offer is checked before anything is applied: an m-line that sends
        needs a track spec and a supported codec, and the room's limits must allow
        the new tracks. A refused offer leaves the transport as it was."""
        async with self._lock:
            if self.closed:
                raise SfuError(SfuErrorCode.CLOSED, "transport is closed")
            desc = parse_sdp(sdp, "offer")
            simulcast = parse_simulcast(sdp)
            active = active_mids(sdp, desc)
            specs = {t.mid: t for t in tracks}
            new_specs: list[TrackSpec] = []
            sending_mids: set[str] = set()
            for media in desc.media:
                if media.kind not in ("audio", "video"):
                    continue
                mid = media.rtp.muxId
                if media.direction not in ("sendonly", "sendrecv") or mid not in active:
                    continue
                sending_mids.add(mid)
                if mid in self.producers:
                    continue
                spec = specs.get(mid)
                if spec is None:
                    raise SfuError(
                        SfuErrorCode.TRACK_MISMATCH, f"m-line {mid} sends but no track names it"
                    )
                if spec.source.kind.value != media.kind:
                    raise SfuError(
                        SfuErrorCode.TRACK_MISMATCH,
                        f"m-line {mid} is {media.kind} but was declared {spec.source}",
                    )
                wanted = SUPPORTED_CODECS[MediaKind(media.kind)]
                if not any(c.mimeType.lower() == wanted for c in media.rtp.codecs):
                    raise SfuError(
                        SfuErrorCode.UNSUPPORTED_CODEC,
                        f"m-line {mid}: the server forwards {wanted.split('/')[1]} only",
                    )
                new_specs.append(spec)
            self._may_add(new_specs)

            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except Exception as exc:
                raise SfuError(SfuErrorCode.BAD_SDP, f"offer refused: {exc}") from exc
            if self._dtls_server:
                hooks.prefer_dtls_server(self.pc)

            created: list[Producer] = []
            for transceiver in self.pc.getTransceivers():
                if transceiver.mid is None:
                    continue
                mid = transceiver.mid
                self._restrict_codecs(transceiver)
                if mid in simulcast and transceiver.kind == "video":
                    hooks.set_negotiated_extensions(
                        transceiver,
                        extensions_with_rid(
                            hooks.negotiated_extensions(transceiver), simulcast[mid]
                        ),
                    )
                self._install_ingress(transceiver)
                if mid in self.producers:
                    if mid not in sending_mids:
                        self.producers[mid].close(CloseReason.UNPUBLISHED)
                    continue
                spec = specs.get(mid)
                if spec is None or mid not in sending_mids:
                    continue
                offered = simulcast.get(mid)
                rids = offered.rids if offered is not None and len(offered.rids) > 1 else ()
                producer = self._make_producer(transceiver, spec, rids)
                created.append(producer)

            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
            for producer in created:
                self._on_producer(producer)
            # Accept the simulcast the browser offered (aiortc's SDP knows nothing of it).
            return answer_with_simulcast(self.pc.localDescription.sdp, simulcast), created

    def _restrict_codecs(self, transceiver: RTCRtpTransceiver) -> None:
        wanted = SUPPORTED_CODECS[MediaKind(transceiver.kind)]
        codecs = hooks.negotiated_codecs(transceiver)
        keep = [c for c in codecs if c.mimeType.lower() == wanted][:1]
        if keep:
            pt = keep[0].payloadType
            keep += [
                c
                for c in codecs
                if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == pt
            ][:1]
            hooks.set_negotiated_codecs(transceiver, keep)

    def _install_ingress(self, transceiver: RTCRtpTransceiver) -> None:
        dtls = transceiver.receiver.transport
        if id(dtls) in self._ingress_installed:
            return
        self._ingress_installed.add(id(dtls))
        hooks.install_ingress(dtls, self._route)

    def _route(self, packet: RtpPacket) -> hooks.RtpHandler | None:
        mid = packet.extensions.mid
        if mid is not None:
            producer = self._routes_mid.get(mid)
            if producer is not None:
                self._routes_ssrc[packet.ssrc] = producer
                return producer.on_rtp
        producer = self._routes_ssrc.get(packet.ssrc)
        return producer.on_rtp if producer is not None else None

    def _make_producer(
        self, transceiver: RTCRtpTransceiver, spec: TrackSpec, rids: tuple[str, ...] = ()
    ) -> Producer:
        """A producer for an m-line; an m-line may carry a new track after its last
        producer closed, so the tap (and what it learned) belongs to the m-line."""
        mid = spec.mid
        line = self._lines.get(mid)
        if line is None:
            line = self._lines[mid] = _Line(transceiver.receiver, self, mid)
        producer = Producer(
            kind=MediaKind(transceiver.kind),
            source=spec.source,
            mid=mid,
            tap=line.tap,
            rids=rids,
            batch=True,
        )
        if line.codec is not None:
            producer.set_codec(line.codec, line.ssrc)
        self.producers[mid] = producer
        self._routes_mid[mid] = producer
        # simulcast SSRCs the m-line's earlier producers learned (no MID in later packets)
        learned = [x for pair in line.tap.rid_ssrcs.values() for x in pair if x is not None]
        for ssrc in (line.ssrc, line.rtx_ssrc, *learned):
            if ssrc is not None:
                self._routes_ssrc[ssrc] = producer

        def forget(p: Producer, _reason: CloseReason) -> None:
            if self.producers.get(p.mid) is p:
                del self.producers[p.mid]
            if self._routes_mid.get(p.mid) is p:
                del self._routes_mid[p.mid]
            for ssrc, q in list(self._routes_ssrc.items()):
                if q is p:
                    del self._routes_ssrc[ssrc]

        producer.on_close(forget)
        return producer

    def _line_started(self, line: _Line) -> None:
        producer = self.producers.get(line.mid)
        if producer is None or line.codec is None:
            return
        producer.set_codec(line.codec, line.ssrc)
        for ssrc in (line.ssrc, line.rtx_ssrc):
            if ssrc is not None:
                self._routes_ssrc[ssrc] = producer

    def close_producer(self, producer: Producer, reason: CloseReason) -> None:
        if self.producers.get(producer.mid) is producer:
            producer.close(reason)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for producer in list(self.producers.values()):
            producer.close(CloseReason.TRANSPORT_CLOSED)
        await self._close_pc()


OfferSender = Callable[[str, list[Consumer]], Awaitable[None]]


class SubscribeTransport(_Transport):
    """Sends forwarded media to a peer. Offers come from the server."""

    #: Whether the server renegotiates (makes the offers); a :class:`PlayTransport` does not.
    _negotiates = True

    def __init__(
        self,
        config: TransportConfig,
        *,
        send_offer: OfferSender,
        on_consumer_closed: Callable[[Consumer, CloseReason], None],
        answer_timeout: float = 15.0,
        totals: MediaTotals | None = None,
    ) -> None:
        super().__init__(config, max_bundle=True)
        self.consumers: dict[str, Consumer] = {}
        self._totals = totals
        self.estimator = BandwidthEstimator()
        # Transport-wide congestion control (twcc.py) on the video this server offers:
        # WEBINAR_TWCC=0 turns it off (REMB and receiver reports alone, as before).
        self._twcc: TwccSender | None = (
            TwccSender(
                on_overuse=self._on_overuse,
                on_loss_burst=self._on_twcc_loss,
                on_loss_report=self._on_twcc_loss_report,
            )
            if self._negotiates and os.environ.get(TWCC_ENV, "1").strip() not in {"0", "off", "no"}
            else None
        )
        if self._twcc is not None:
            self.estimator.delivery = self._twcc.delivery
            self.estimator.delay_rise = self._twcc.delay_rise
        self._twcc_mids: dict[str, int] = {}  # mid -> extension id, as the answer took it
        self._send_offer = send_offer
        self._on_consumer_closed = on_consumer_closed
        # The owner's (the router's): allocate this subscriber's bandwidth now. With it, video
        # consumers start unallocated and this runs once they are negotiated, so a video the
        # budget does not afford is never shown and then paused (a freeze in the browser).
        self.on_allocate: Callable[[], None] | None = None
        self._answer_timeout = answer_timeout
        self._transceivers: dict[str, RTCRtpTransceiver] = {}  # by consumer id
        self._pending_answer: asyncio.Future[None] | None = None
        self._dirty = asyncio.Event()
        self._dead_mlines = 0
        self._by_ssrc: dict[int, Consumer] = {}  # our sender SSRCs (and RTX) -> consumer
        self._feedback_installed = False
        self._rtcp_sink: hooks.PacketSink | None = None
        self._cname: str | None = None
        self._next_report = 0.0
        self._task: asyncio.Task[None] | None = (
            asyncio.get_running_loop().create_task(self._negotiate_loop())
            if self._negotiates
            else None
        )
        self.on_state(self._state_changed)

    def consume(self, producer: Producer, *, stream_id: str) -> Consumer:
        """Add a paused consumer; it resumes once the subscriber answered."""
        if self.closed:
            raise SfuError(SfuErrorCode.CLOSED, "transport is closed")
        kind = producer.kind.value
        transceiver = self.pc.addTransceiver(hooks.SilentTrack(kind), direction="sendonly")
        wanted = SUPPORTED_CODECS[producer.kind]
        caps = RTCRtpSender.getCapabilities(kind).codecs
        main = [c for c in caps if c.mimeType.lower() == wanted]
        rtx = [c for c in caps if c.mimeType.lower().endswith("/rtx")]
        transceiver.setCodecPreferences(main + rtx if producer.kind is MediaKind.VIDEO else main)
        hooks.set_stream_id(transceiver.sender, stream_id)
        tap = hooks.SenderTap(transceiver)
        consumer = Consumer(
            producer=producer,
            tap=tap,
            estimator=self.estimator,
            on_closed=self._consumer_closed,
            twcc=self._twcc,
            allocate=self._allocate_now if self.on_allocate is not None else None,
        )
        producer.add_consumer(consumer)
        self.consumers[consumer.id] = consumer
        if self._totals is not None:
            self._totals.consumer_opened(consumer)
        self._by_ssrc[consumer.ssrc] = consumer
        self._by_ssrc[consumer.rtx_ssrc] = consumer
        if not self._feedback_installed:
            self._feedback_installed = True
            self._cname = tap.cname
            hooks.install_feedback(
                transceiver.sender.transport,
                self._on_rtcp,
                self._on_twcc_feedback if self._twcc is not None else None,
            )
        self._transceivers[consumer.id] = transceiver
        self._dirty.set()
        return consumer

    def _consumer_closed(self, consumer: Consumer, reason: CloseReason) -> None:
        self.consumers.pop(consumer.id, None)
        if self._totals is not None:
            self._totals.consumer_closed(consumer)
        for ssrc in (consumer.ssrc, consumer.rtx_ssrc):
            if self._by_ssrc.get(ssrc) is consumer:
                del self._by_ssrc[ssrc]
        transceiver = self._transceivers.pop(consumer.id, None)
        if transceiver is not None and not self.closed:
            transceiver.direction = "inactive"
            if transceiver.sender.track is not None:
                transceiver.sender.track.stop()
            self._dead_mlines += 1
            self._dirty.set()
        self._on_consumer_closed(consumer, reason)

    def mid_of(self, consumer: Consumer) -> str | None:
        transceiver = self._transceivers.get(consumer.id)
        return transceiver.mid if transceiver is not None else None

    @property
    def needs_restart(self) -> bool:
        """Too many dead m-lines: the owner should replace this transport."""
        return self._dead_mlines > MAX_DEAD_MLINES

    def estimate(self, now: float) -> Estimate:
        return self.estimator.estimate(now)

    async def handle_answer(self, sdp: str) -> None:
        """Apply the subscriber's answer; returns once it is applied, so what the peer
        sends next (trickled candidates) finds the connection ready."""
        fut = self._pending_answer
        if fut is None or fut.done():
            raise SfuError(SfuErrorCode.NEGOTIATION, "no subscriber offer is waiting for an answer")
        parse_sdp(sdp, "answer")
        if self._twcc is not None:
            self._twcc_mids = answered_twcc(sdp)
        self._pending_answer = None
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            fut.set_exception(SfuError(SfuErrorCode.NEGOTIATION, f"answer refused: {exc}"))
            raise SfuError(SfuErrorCode.NEGOTIATION, f"answer refused: {exc}") from exc
        fut.set_result(None)

    async def _negotiate_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self.closed:
                await self._dirty.wait()
                self._dirty.clear()
                if self.closed or self.pc.signalingState == "closed":  # closing or closed
                    return
                offer = await self.pc.createOffer()
                await self.pc.setLocalDescription(offer)
                included = [
                    c
                    for cid, c in self.consumers.items()
                    if self._transceivers[cid].mid is not None
                ]
                answered: asyncio.Future[None] = loop.create_future()
                self._pending_answer = answered
                offer_sdp = self.pc.localDescription.sdp
                if self._twcc is not None:
                    offer_sdp = offer_twcc(offer_sdp)
                await self._send_offer(offer_sdp, included)
                try:
                    await asyncio.wait_for(asyncio.shield(answered), self._answer_timeout)
                except TimeoutError:
                    logger.warning("subscriber %s did not answer in time", self.id)
                    await self.close()
                    return
                except SfuError:
                    logger.warning("subscriber %s sent a bad answer", self.id)
                    await self.close()
                    return
                finally:
                    self._pending_answer = None
                laid_out = False
                for consumer in included:
                    if not consumer.closed and consumer.mid is None:
                        consumer.set_layout(self._layout(consumer))
                        laid_out = True
                if laid_out:
                    # Allocated at once, before anything is forwarded: which videos the
                    # budget affords (and at which layer) is known before the first keyframe
                    # is asked for, and the first frame waits for no allocation round.
                    self._allocate_now()
                for consumer in included:
                    if not consumer.closed and self.pc.connectionState == "connected":
                        consumer.resume()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A peer connection that is closing (its signalling state says so at once, its
            # connection state only when done) refuses offers: that is no failure.
            if not self.closed and self.pc.signalingState != "closed":
                logger.exception("subscriber negotiation failed")
            await self.close()

    def _layout(self, consumer: Consumer) -> ConsumerLayout:
        transceiver = self._transceivers[consumer.id]
        codecs = hooks.negotiated_codecs(transceiver)
        wanted = SUPPORTED_CODECS[consumer.kind]
        main = next(c for c in codecs if c.mimeType.lower() == wanted)
        rtx = next(
            (
                c
                for c in codecs
                if c.mimeType.lower().endswith("/rtx")
                and c.parameters.get("apt") == main.payloadType
            ),
            None,
        )
        ext = hooks.negotiated_extension_ids(transceiver)
        mid_id = ext.get(hooks.MID_URI)
        if mid_id is None or transceiver.mid is None:
            raise SfuError(SfuErrorCode.NEGOTIATION, "subscriber did not accept the MID extension")
        return ConsumerLayout(
            payload_type=main.payloadType,
            rtx_payload_type=rtx.payloadType if rtx else None,
            mid=transceiver.mid,
            mid_ext_id=mid_id,
            abs_send_time_ext_id=ext.get(hooks.ABS_SEND_TIME_URI),
            audio_level_ext_id=ext.get(hooks.AUDIO_LEVEL_URI),
            twcc_ext_id=self._twcc_mids.get(transceiver.mid),
        )

    def _allocate_now(self) -> None:
        if self.on_allocate is not None and not self.closed:
            try:
                self.on_allocate()
            except Exception:
                logger.exception("allocation for subscriber %s failed", self.id)

    def _on_twcc_loss(self, rate: float) -> None:
        self.estimator.on_loss_burst(rate, time.monotonic())

    def _on_twcc_loss_report(self, lost: int, packets: int) -> None:
        # as a receiver report's video block: RTCP's 8-bit fraction over its packets
        self.estimator.on_receiver_report(
            min(lost * 256 // packets, 255), time.monotonic(), packets=packets
        )

    def _on_overuse(self, acked_bps: int) -> None:
        self.estimator.on_delay_overuse(acked_bps, time.monotonic())

    def _on_twcc_feedback(self, data: bytes) -> None:
        twcc = self._twcc
        if twcc is not None:
            now = time.monotonic()
            twcc.on_feedback(data, now)
            self.estimator.on_twcc(now, twcc.detector.clean, twcc.loss_wait(now))

    def _state_changed(self, state: str) -> None:
        if state == "connected":
            for consumer in self.consumers.values():
                if consumer.mid is not None:
                    consumer.resume()
        elif state == "failed" and not self.closed:
            asyncio.get_running_loop().create_task(self.close(CloseReason.CONNECTION_FAILED))

    def _on_rtcp(self, packet: AnyRtcpPacket) -> None:
        """Route the subscriber's feedback to the consumer it is about (synchronous)."""
        by_ssrc = self._by_ssrc
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for report in packet.reports:
                consumer = by_ssrc.get(report.ssrc)
                if consumer is not None:
                    consumer.on_report(report)
        elif isinstance(packet, RtcpRtpfbPacket | RtcpPsfbPacket):
            consumer = by_ssrc.get(packet.media_ssrc)
            if (
                consumer is None
                and isinstance(packet, RtcpPsfbPacket)
                and packet.fmt in (RTCP_PSFB_APP, RTCP_PSFB_FIR)
            ):
                # REMB names its streams in the FCI (one estimate for the whole
                # connection: handled once); FIR names its target there too.
                consumer = self._fci_consumer(packet)
            if consumer is not None:
                consumer.handle_rtcp(packet)

    def _fci_consumer(self, packet: RtcpPsfbPacket) -> Consumer | None:
        if packet.fmt == RTCP_PSFB_APP:
            try:
                ssrcs = unpack_remb_fci(packet.fci)[1]
            except ValueError:
                return None
        else:
            fci = packet.fci
            ssrcs = [int.from_bytes(fci[i : i + 4], "big") for i in range(0, len(fci) - 7, 8)]
        for ssrc in ssrcs:
            consumer = self._by_ssrc.get(ssrc)
            if consumer is not None:
                return consumer
        return None

    def housekeeping(self, now_wall: float, now_mono: float) -> None:
        for consumer in self.consumers.values():
            consumer.housekeeping(now_mono)
        if now_mono >= self._next_report:
            # One compound SR for every stream, every 0.5..1.5 s (as RFC 3550 varies it).
            self._next_report = now_mono + 0.5 + random.random()
            self.send_sender_reports(now_wall)

    def send_probe_reports(self, now_wall: float) -> None:
        """SRs for a bandwidth probe: the next regular ones wait, so the receiver's next
        report answers these (and so measures the probe's queueing)."""
        self.send_sender_reports(now_wall)
        self._next_report = max(self._next_report, time.monotonic() + PROBE_REPORT_HOLD)

    def send_sender_reports(self, now_wall: float) -> None:
        """One compound SR for every stream of this subscriber, now."""
        reports = [
            sr
            for consumer in self.consumers.values()
            if (sr := consumer.sender_report(now_wall)) is not None
        ]
        if not reports or not self.consumers:
            return
        if self._rtcp_sink is None:
            first = next(iter(self._transceivers.values()), None)
            if first is None:
                return
            self._rtcp_sink = hooks.PacketSink(first.sender.transport)
        for data in hooks.sender_reports(reports, self._cname):
            self._rtcp_sink.send_rtcp(data)

    async def close(self, reason: CloseReason = CloseReason.TRANSPORT_CLOSED) -> None:
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        try:
            if self._task is not current:
                await stop_task(self._task)
        finally:
            # Even when this close is cancelled while the negotiation stops (a room closing
            # under load): a transport marked closed must not keep its sockets.
            if self._pending_answer is not None and not self._pending_answer.done():
                self._pending_answer.cancel()
            for consumer in list(self.consumers.values()):
                consumer.close(reason)
            await self._close_pc()


# --------------------------------------------------------------------------- offers


@dataclass(frozen=True, slots=True)
class OfferedLine:
    """One m-line of a peer's offer, as the boundary checks it (WHIP, WHEP)."""

    mid: str
    kind: str  # "audio", "video", "application"
    direction: str  # the offerer's: "sendonly", "recvonly", "sendrecv", "inactive"
    codecs: tuple[str, ...]  # subtypes, lower case, in the offer's order: "vp8", "h264"
    active: bool  # a port other than 0

    @property
    def forwardable(self) -> bool:
        """The m-line offers the codec the SFU forwards for its kind (VP8, Opus)."""
        wanted = SUPPORTED_CODECS.get(MediaKind(self.kind)) if self.kind in _KINDS else None
        return wanted is not None and wanted.split("/")[1] in self.codecs

    @property
    def sends(self) -> bool:
        return self.active and self.direction in ("sendonly", "sendrecv")

    @property
    def receives(self) -> bool:
        return self.active and self.direction in ("recvonly", "sendrecv")


_KINDS = frozenset({"audio", "video"})


@dataclass(frozen=True, slots=True)
class OfferSummary:
    lines: tuple[OfferedLine, ...]
    #: Every active m-line is in one BUNDLE group (one transport for everything).
    bundled: bool


def describe_offer(sdp: str) -> OfferSummary:
    """What an offer asks for, without applying it; :class:`SfuError` (``bad-sdp``) when
    it is no SDP offer at all."""
    desc = parse_sdp(sdp, "offer")
    active = active_mids(sdp, desc)
    lines = tuple(
        OfferedLine(
            mid=str(m.rtp.muxId or ""),
            kind=m.kind,
            direction=str(m.direction or "sendrecv"),
            codecs=tuple(c.mimeType.split("/")[-1].lower() for c in m.rtp.codecs),
            active=str(m.rtp.muxId or "") in active,
        )
        for m in desc.media
    )
    active = {line.mid for line in lines if line.active}
    bundled = len(active) <= 1 or any(
        g.semantic == "BUNDLE" and active <= set(g.items) for g in desc.group
    )
    return OfferSummary(lines=lines, bundled=bundled)


# --------------------------------------------------------------------------- players


@dataclass(slots=True)
class _Slot:
    """One receiving m-line of a player's offer: what it shows, and the numbering the
    next consumer on it continues."""

    kind: MediaKind
    transceiver: RTCRtpTransceiver
    tap: hooks.SenderTap
    layout: ConsumerLayout | None = None
    consumer: Consumer | None = None  # what the m-line sends now
    #: What it will send from the next keyframe on (video: the current one sends until then).
    pending: Consumer | None = None
    handover: Handover | None = None


#: The msid stream every slot of a player belongs to: one MediaStream in a browser player.
PLAYER_STREAM = "webinar"


class PlayTransport(SubscribeTransport):
    """Sends forwarded media to a peer that makes the offer (a WHEP player).

    Each audio or video m-line the player offers to receive is a *slot* that shows one
    producer at a time. The server never renegotiates: :meth:`show` changes what a slot
    shows, and the new consumer continues the numbering of the last one on that m-line
    (:class:`~webinar.sfu.consumer.Handover`), so the player sees one continuous stream per
    slot and decodes the new picture from its keyframe. A video slot keeps sending the old
    picture until the new one's first keyframe (make before break): no gap, no freeze."""

    _negotiates = False

    def __init__(
        self,
        config: TransportConfig,
        *,
        on_consumer_closed: Callable[[Consumer, CloseReason], None],
    ) -> None:
        async def no_offers(_sdp: str, _consumers: list[Consumer]) -> None:
            raise SfuError(SfuErrorCode.NEGOTIATION, "a player's connection is not renegotiated")

        super().__init__(config, send_offer=no_offers, on_consumer_closed=on_consumer_closed)
        self._slots: list[_Slot] = []
        self._slot_of: dict[str, _Slot] = {}  # by consumer id
        self._negotiated = False

    async def handle_offer(self, sdp: str) -> str:
        """Answer the player's offer once: every audio/video m-line it receives on becomes a
        slot (the codec forwarded for its kind, sendonly), everything else inactive."""
        if self.closed:
            raise SfuError(SfuErrorCode.CLOSED, "transport is closed")
        if self._negotiated:
            raise SfuError(SfuErrorCode.NEGOTIATION, "this player has negotiated already")
        self._negotiated = True
        summary = describe_offer(sdp)
        wanted_lines = [line for line in summary.lines if line.kind in _KINDS and line.receives]
        if not wanted_lines:
            raise SfuError(SfuErrorCode.TRACK_MISMATCH, "the offer receives no audio or video")
        for line in wanted_lines:
            if not line.forwardable:
                codec = SUPPORTED_CODECS[MediaKind(line.kind)].split("/")[1]
                raise SfuError(
                    SfuErrorCode.UNSUPPORTED_CODEC,
                    f"m-line {line.mid}: the server forwards {codec} only",
                )
        if not summary.bundled:
            raise SfuError(SfuErrorCode.BAD_SDP, "the offer must bundle its m-lines")
        # Transceivers made before the offer is applied take its m-lines in order (aiortc
        # matches the first unassigned one of the same kind).
        for line in summary.lines:
            if line.kind not in _KINDS:
                continue
            kind = MediaKind(line.kind)
            sends = line in wanted_lines
            track = hooks.SilentTrack(kind.value)
            transceiver = self.pc.addTransceiver(
                track, direction="sendonly" if sends else "inactive"
            )
            wanted = SUPPORTED_CODECS[kind]
            caps = RTCRtpSender.getCapabilities(kind.value).codecs
            main = [c for c in caps if c.mimeType.lower() == wanted]
            rtx = [c for c in caps if c.mimeType.lower().endswith("/rtx")]
            transceiver.setCodecPreferences(main + rtx if kind is MediaKind.VIDEO else main)
            hooks.set_stream_id(transceiver.sender, PLAYER_STREAM)
            if sends:
                self._slots.append(_Slot(kind, transceiver, hooks.SenderTap(transceiver)))
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            hooks.prefer_dtls_server(self.pc)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except SfuError:
            raise
        except Exception as exc:
            raise SfuError(SfuErrorCode.BAD_SDP, f"offer refused: {exc}") from exc
        for slot in self._slots:
            slot.layout = self._slot_layout(slot)
        first = self._slots[0].transceiver.sender.transport
        self._feedback_installed = True
        self._cname = self._slots[0].tap.cname
        hooks.install_feedback(first, self._on_rtcp)
        self._rtcp_sink = hooks.PacketSink(first)
        answer: str = self.pc.localDescription.sdp
        return answer

    def _slot_layout(self, slot: _Slot) -> ConsumerLayout:
        transceiver = slot.transceiver
        codecs = hooks.negotiated_codecs(transceiver)
        wanted = SUPPORTED_CODECS[slot.kind]
        main = next((c for c in codecs if c.mimeType.lower() == wanted), None)
        if main is None or transceiver.mid is None:
            raise SfuError(SfuErrorCode.NEGOTIATION, f"no {wanted} on m-line {transceiver.mid}")
        rtx = next(
            (
                c
                for c in codecs
                if c.mimeType.lower().endswith("/rtx")
                and c.parameters.get("apt") == main.payloadType
            ),
            None,
        )
        ext = hooks.negotiated_extension_ids(transceiver)
        return ConsumerLayout(
            payload_type=main.payloadType,
            rtx_payload_type=rtx.payloadType if rtx else None,
            mid=transceiver.mid,
            mid_ext_id=ext.get(hooks.MID_URI),
            abs_send_time_ext_id=ext.get(hooks.ABS_SEND_TIME_URI),
            audio_level_ext_id=ext.get(hooks.AUDIO_LEVEL_URI),
        )

    def slot_count(self, kind: MediaKind) -> int:
        """How many slots of ``kind`` the player offered."""
        return sum(1 for slot in self._slots if slot.kind is kind)

    def showing(self, kind: MediaKind) -> list[Producer | None]:
        """What each slot of ``kind`` shows (or is switching to), in the offer's order."""
        shown: list[Producer | None] = []
        for slot in self._slots:
            if slot.kind is kind:
                consumer = slot.pending or slot.consumer
                shown.append(consumer.producer if consumer is not None else None)
        return shown

    def show(self, kind: MediaKind, index: int, producer: Producer | None) -> Consumer | None:
        """Make slot ``index`` of ``kind`` show ``producer`` (None: nothing); its consumer
        (for video, one that may still wait for its first keyframe to take over)."""
        if self.closed:
            return None
        slot = [s for s in self._slots if s.kind is kind][index]
        if producer is not None and producer.kind is not kind:
            raise ValueError(f"a {producer.kind} producer in a {kind} slot")
        current, pending = slot.consumer, slot.pending
        if pending is not None:
            if pending.producer is producer:
                return pending
            pending.close(CloseReason.UNSUBSCRIBED)  # it never sent: nothing to hand over
        if current is not None and current.producer is producer and not current.closed:
            return current
        if producer is None or producer.closed:
            if current is not None:
                current.close(CloseReason.UNSUBSCRIBED)  # its close keeps the handover
            return None
        assert slot.layout is not None
        if kind is MediaKind.VIDEO and current is not None and current.sending:
            consumer = Consumer(
                producer=producer,
                tap=slot.tap,
                estimator=self.estimator,
                on_closed=self._consumer_closed,
                take_over=lambda: self._take_over(slot),
            )
            slot.pending = consumer
        else:
            if current is not None:
                current.close(CloseReason.UNSUBSCRIBED)
            consumer = Consumer(
                producer=producer,
                tap=slot.tap,
                estimator=self.estimator,
                on_closed=self._consumer_closed,
                handover=slot.handover,
            )
            slot.handover = None
            slot.consumer = consumer
            self._by_ssrc[consumer.ssrc] = consumer
            self._by_ssrc[consumer.rtx_ssrc] = consumer
        self._slot_of[consumer.id] = slot
        producer.add_consumer(consumer)
        self.consumers[consumer.id] = consumer
        consumer.set_layout(slot.layout)
        if self.pc.connectionState == "connected":
            consumer.resume()
        return consumer

    def _take_over(self, slot: _Slot) -> Handover:
        """The slot's pending consumer has its keyframe: the current one stops and hands
        its numbering over."""
        pending = slot.pending
        assert pending is not None
        current = slot.consumer
        if current is not None:
            current.close(CloseReason.UNSUBSCRIBED)  # records the slot's handover
        handover = slot.handover or pending.handover()  # (nothing was sent before it)
        slot.handover = None
        slot.pending = None
        slot.consumer = pending
        self._by_ssrc[pending.ssrc] = pending
        self._by_ssrc[pending.rtx_ssrc] = pending
        return handover

    def _consumer_closed(self, consumer: Consumer, reason: CloseReason) -> None:
        slot = self._slot_of.pop(consumer.id, None)
        if slot is not None and slot.pending is consumer:
            slot.pending = None
            self.consumers.pop(consumer.id, None)  # it never sent: its SSRC is the current's
            self._on_consumer_closed(consumer, reason)
            return
        if slot is not None and slot.consumer is consumer:
            slot.consumer = None
            slot.handover = consumer.handover()
        super()._consumer_closed(consumer, reason)
