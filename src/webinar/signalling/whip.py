"""WHIP and WHEP: an encoder goes on stage, a player watches, over plain HTTP.

WHIP (RFC 9725) lets OBS Studio, GStreamer or any WHIP encoder publish into a room; WHEP (the
IETF WHEP draft) lets any WHEP player watch an event. Each session is a participant of the room
with no WebSocket: a :class:`MediaSession` stands in for the connection (it implements the
room's :class:`~webinar.rooms.live.RoomPeer` and ticketing's holder), so the roster, the stage,
removal, "end for everyone", capacity, bans and attendance treat it like anyone else.

==============================================  ================================================
``POST /whip/{event}``                          an SDP offer (``application/sdp``) with
                                                ``Authorization: Bearer <presenter key>``:
                                                201 with the answer and ``Location``
``PATCH /whip/{event}/{session}``               trickled ICE candidates
                                                (``application/trickle-ice-sdpfrag``): 204
``DELETE /whip/{event}/{session}``              stop: the publisher leaves the room (200)
``POST /whep/{event}``                          a player's offer, the bearer what the event's
                                                access asks (none when open): 201
``PATCH``/``DELETE /whep/{event}/{session}``    as for WHIP
``OPTIONS`` on each                             CORS pre-flight, ``Accept-Post``/``Accept-Patch``
==============================================  ================================================

A WHIP bearer token is checked in one place, :func:`publisher_for`; a WHEP one by ticketing,
like the credential of a browser's join. Everything is answered in plain text (``text/plain``,
in the request's language) except the SDP. The session URL is the session's credential (128
random bits): PATCH and DELETE need nothing else. With several workers a session lives on
the worker that took its POST; a PATCH or DELETE reaching another worker is passed to it over
the bus (:attr:`MediaSessions.forward`). docs/api.md describes the endpoints.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from webinar import i18n
from webinar.ids import client_key, format_event_id, normalize_event_id, same_secret
from webinar.rooms import state as rs
from webinar.rooms.live import LiveRoom, OfferedStream
from webinar.rooms.reasons import ByeReason
from webinar.rooms.roles import Role
from webinar.rooms.roster import Counts
from webinar.rooms.state import (
    Participant,
    RoomError,
    RoomErrorCode,
    RoomEvent,
    Source,
    person_key_for,
)
from webinar.sfu import (
    AllocationReport,
    OfferedLine,
    OfferSummary,
    SfuError,
    SfuErrorCode,
    describe_offer,
)
from webinar.storage.records import Event, StoreUnavailable
from webinar.ticketing import Grant, Refusal
from webinar.ticketing.grants import RefusalCode
from webinar.ticketing.join_tokens import JoinTokens, TokenRefusal

from ..tasks import stop_tasks
from .session import Services
from .ws import AddressCount

logger = logging.getLogger(__name__)

SDP = "application/sdp"
SDP_FRAG = "application/trickle-ice-sdpfrag"
#: The largest offer and the largest ICE fragment accepted.
MAX_OFFER_BYTES = 64 * 1024
MAX_FRAG_BYTES = 16 * 1024
#: Candidates one PATCH may carry.
MAX_FRAG_CANDIDATES = 64
#: Seconds a new session has to connect its media before it is ended.
CONNECT_TIMEOUT = 30.0
#: The display name when the request names none (``?name=``).
DEFAULT_NAMES = {"whip": "WHIP", "whep": "WHEP"}
MAX_NAME = 64

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": (
        "Location, ETag, Link, Accept-Patch, Accept-Post, Retry-After, WWW-Authenticate"
    ),
}
#: Codecs that never carry the picture or sound themselves (named in no refusal).
_HELPERS = frozenset({"rtx", "red", "ulpfec", "flexfec-03", "telephone-event", "cn"})


class Kind(enum.StrEnum):
    WHIP = "whip"  # an encoder publishing
    WHEP = "whep"  # a player watching

    @property
    def target(self) -> str:
        """Which of the participant's connections trickled candidates are for."""
        return "publish" if self is Kind.WHIP else "subscribe"


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class Publisher:
    """Who a WHIP bearer token says is going on stage."""

    role: Role
    #: A display name the token binds (None: the request's ``?name=``, or the default).
    name: str | None = None
    #: What the token was: "presenter-key", "host-key", "join-token".
    via: str = "presenter-key"


async def publisher_for(
    event: Event, token: str, join_tokens: JoinTokens | None = None
) -> Publisher | None:
    """The one check of a WHIP bearer token: who may publish into ``event`` with it, or None.

    The event's presenter key and its host key (both publish as a presenter: an encoder runs
    no room), or a signed join token (JWT, docs/api.md) for this event whose role is
    presenter: it binds the display name."""
    if event.host_key and same_secret(token, event.host_key):
        return Publisher(Role.PRESENTER, via="host-key")
    if same_secret(token, event.presenter_key):
        return Publisher(Role.PRESENTER, via="presenter-key")
    if join_tokens is not None and token.count(".") == 2:
        try:
            claims = await join_tokens.check(event, token, datetime.now(UTC))
        except TokenRefusal:
            return None
        if claims.role == "presenter":
            return Publisher(Role.PRESENTER, name=claims.name, via="join-token")
    return None


# --------------------------------------------------------------------------- replies


@dataclass(slots=True)
class Reply:
    """An answer to a WHIP/WHEP request, before it is an HTTP response (it may cross the bus
    from the worker that holds the session)."""

    status: int
    text: str = ""
    content_type: str = "text/plain"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def response(self, allow: str) -> web.Response:
        response = web.Response(status=self.status)
        if self.status != 204:
            response.body = self.text.encode("utf-8")
            response.headers["Content-Type"] = (
                "text/plain; charset=utf-8"
                if self.content_type == "text/plain"
                else self.content_type
            )
        for name, value in self.headers:
            response.headers.add(name, value)
        for name, value in _CORS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Access-Control-Allow-Methods", allow)
        return response

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "text": self.text,
            "content_type": self.content_type,
            "headers": [list(h) for h in self.headers],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            status=int(data["status"]),
            text=str(data.get("text", "")),
            content_type=str(data.get("content_type", "text/plain")),
            headers=[(str(n), str(v)) for n, v in data.get("headers", [])],
        )


class Refused(Exception):
    """A request refused with ``reply`` (its text says why, in the request's language)."""

    def __init__(self, status: int, text: str, *headers: tuple[str, str]) -> None:
        super().__init__(text)
        self.reply = Reply(status, text.rstrip("\n") + "\n", headers=list(headers))


def _unauthorized(text: str, *, token_given: bool) -> Refused:
    challenge = 'Bearer realm="webinar"' + (', error="invalid_token"' if token_given else "")
    return Refused(401, text, ("WWW-Authenticate", challenge))


_ROOM_STATUS: dict[RoomErrorCode, int] = {
    RoomErrorCode.ROOM_FULL: 503,
    RoomErrorCode.SERVER_FULL: 503,
    RoomErrorCode.ROOM_LOCKED: 403,
    RoomErrorCode.BANNED: 403,
    RoomErrorCode.NOT_STARTED: 403,
    RoomErrorCode.FORBIDDEN: 403,
    RoomErrorCode.ENDED: 410,
}

_REFUSAL_STATUS: dict[RefusalCode, int] = {
    RefusalCode.CREDENTIAL_REQUIRED: 401,
    RefusalCode.BAD_CREDENTIAL: 401,
    RefusalCode.REVOKED: 403,
    RefusalCode.NOT_CONFIRMED: 403,
    RefusalCode.OUTSIDE_WINDOW: 403,
    RefusalCode.BOOKING_EXPIRED: 403,
    RefusalCode.TICKET_IN_USE: 409,
    RefusalCode.GROUP_FULL: 409,
    RefusalCode.RATE_LIMITED: 429,
    RefusalCode.EVENT_CANCELLED: 410,
    RefusalCode.UNAVAILABLE: 503,
}


def _room_refused(exc: RoomError) -> Refused:
    return Refused(_ROOM_STATUS.get(exc.code, 409), exc.message)


def _ticket_refused(refusal: Refusal, *, token_given: bool) -> Refused:
    status = _REFUSAL_STATUS.get(refusal.code, 403)
    if status == 401:
        return _unauthorized(refusal.message, token_given=token_given)
    if refusal.retry_after is not None:
        return Refused(status, refusal.message, ("Retry-After", str(refusal.retry_after)))
    return Refused(status, refusal.message)


def _sfu_refused(exc: SfuError, max_cameras: int) -> Refused:
    if exc.code is SfuErrorCode.CAMERA_LIMIT:
        return Refused(
            409,
            i18n.ngettext(
                "this room shows at most %(num)d camera, and it is on",
                "this room shows at most %(num)d cameras, and they are all on",
                max_cameras,
            )
            % {"num": max_cameras},
        )
    if exc.code is SfuErrorCode.CLOSED:
        return Refused(503, i18n._("the room is closing; try again in a moment"))
    status = 406 if exc.code is SfuErrorCode.UNSUPPORTED_CODEC else 400
    return Refused(status, i18n._("the offer cannot be used: %(reason)s") % {"reason": exc.message})


# --------------------------------------------------------------------------- offers


def _codec_names(line: OfferedLine) -> str:
    names = [c.upper() for c in dict.fromkeys(line.codecs) if c not in _HELPERS]
    return ", ".join(names) or i18n._("no codec")


def _unforwardable(line: OfferedLine, *, sending: bool) -> Refused:
    codecs = _codec_names(line)
    if line.kind == "video":
        text = (
            i18n._("this server forwards VP8 video; the offer's video is %(codecs)s only")
            if sending
            else i18n._("this server sends VP8 video; the offer's video takes %(codecs)s only")
        )
    else:
        text = (
            i18n._("this server forwards Opus audio; the offer's audio is %(codecs)s only")
            if sending
            else i18n._("this server sends Opus audio; the offer's audio takes %(codecs)s only")
        )
    return Refused(406, text % {"codecs": codecs})


def _summary(sdp: str) -> OfferSummary:
    try:
        return describe_offer(sdp)
    except SfuError as exc:
        raise Refused(
            400, i18n._("the offer cannot be used: %(reason)s") % {"reason": exc.message}
        ) from None


def publish_tracks(summary: OfferSummary, video: Source) -> list[tuple[str, Source]]:
    """The tracks a WHIP offer publishes: (mid, source) for its sending m-lines; refused
    when it sends nothing the SFU can forward, or more than one audio and one video."""
    sends = [line for line in summary.lines if line.kind in ("audio", "video") and line.sends]
    if not sends:
        raise Refused(400, i18n._("the offer sends no audio or video"))
    kinds = [line.kind for line in sends]
    if kinds.count("audio") > 1 or kinds.count("video") > 1:
        raise Refused(400, i18n._("a WHIP offer may send one audio and one video track"))
    for line in sends:
        if not line.forwardable:
            raise _unforwardable(line, sending=True)
    return [(line.mid, Source.MICROPHONE if line.kind == "audio" else video) for line in sends]


def check_play_offer(summary: OfferSummary) -> None:
    """A WHEP offer must receive audio or video in codecs the SFU sends, bundled."""
    takes = [line for line in summary.lines if line.kind in ("audio", "video") and line.receives]
    if not takes:
        raise Refused(400, i18n._("the offer receives no audio or video"))
    for line in takes:
        if not line.forwardable:
            raise _unforwardable(line, sending=False)
    if not summary.bundled:
        raise Refused(400, i18n._("the offer must bundle its audio and video (a=group:BUNDLE)"))


def sha256_only(sdp: str) -> str:
    """The answer with only its SHA-256 certificate fingerprint. aiortc lists SHA-256,
    SHA-384 and SHA-512; GStreamer's webrtcbin (simple-whip-client, whipsink) checks the
    certificate against one of them with SHA-256 and fails DTLS on the others. Every WebRTC
    stack supports SHA-256 (RFC 8827)."""
    lines = sdp.split("\r\n")
    kept = [
        line
        for line in lines
        if not line.startswith("a=fingerprint:") or line.startswith("a=fingerprint:sha-256 ")
    ]
    return "\r\n".join(kept)


def _ice_ufrag(sdp: str) -> str | None:
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.removeprefix("a=ice-ufrag:").strip()
    return None


@dataclass(frozen=True, slots=True)
class Fragment:
    """A trickle-ice-sdpfrag (RFC 8840): ICE credentials and candidates per m-line."""

    ufrag: str | None
    pwd: str | None
    #: (mid or None, m-line index, "candidate:..." line)
    candidates: tuple[tuple[str | None, int, str], ...]
    end_of_candidates: bool


def parse_fragment(text: str) -> Fragment:
    """Read an SDP fragment; ValueError when it is none."""
    ufrag = pwd = None
    mid: str | None = None
    index = -1
    candidates: list[tuple[str | None, int, str]] = []
    end = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise ValueError(f"not an SDP line: {line[:40]!r}")
        if line.startswith("m="):
            index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line.removeprefix("a=mid:").strip() or None
        elif line.startswith("a=ice-ufrag:"):
            ufrag = line.removeprefix("a=ice-ufrag:").strip()
        elif line.startswith("a=ice-pwd:"):
            pwd = line.removeprefix("a=ice-pwd:").strip()
        elif line.startswith("a=candidate:"):
            if len(candidates) >= MAX_FRAG_CANDIDATES:
                raise ValueError(f"more than {MAX_FRAG_CANDIDATES} candidates")
            candidates.append((mid, max(index, 0), line.removeprefix("a=")))
        elif line == "a=end-of-candidates":
            end = True
    # a candidate's m-line is named by the a=mid that follows it too (a=mid may come last)
    named: list[tuple[str | None, int, str]] = []
    mids = _mids_by_index(text)
    for cand_mid, cand_index, candidate in candidates:
        named.append((cand_mid or mids.get(cand_index), cand_index, candidate))
    return Fragment(ufrag, pwd, tuple(named), end)


def _mids_by_index(text: str) -> dict[int, str]:
    mids: dict[int, str] = {}
    index = -1
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            index += 1
        elif line.startswith("a=mid:") and index >= 0:
            mids.setdefault(index, line.removeprefix("a=mid:").strip())
    return mids


def _ice_links(servers: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """STUN/TURN servers as RFC 9725 Link headers (section 4.6)."""
    links: list[tuple[str, str]] = []
    for server in servers:
        urls = server.get("urls", [])
        for url in [urls] if isinstance(urls, str) else urls:
            value = f'<{url}>; rel="ice-server"'
            if server.get("username") is not None:
                value += (
                    f'; username="{server["username"]}"; credential="{server["credential"]}"'
                    '; credential-type="password"'
                )
            links.append(("Link", value))
    return links


def _http_base(socket_url: str) -> str:
    """The HTTP base URL of the node whose signalling WebSocket is ``socket_url``."""
    base = socket_url.removesuffix("/ws")
    if base.startswith("wss://"):
        return "https://" + base.removeprefix("wss://")
    return "http://" + base.removeprefix("ws://")


def _bearer(request: web.Request) -> tuple[bool, str | None]:
    """(whether an Authorization header came, the bearer token in it or None)."""
    header = request.headers.get("Authorization")
    if header is None:
        return False, None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return True, None
    return True, token


def _name(request: web.Request, kind: Kind) -> str:
    given = request.query.get("name")
    if given is None:
        return DEFAULT_NAMES[kind.value]
    name = " ".join(given.split())
    if not 1 <= len(name) <= MAX_NAME:
        raise Refused(400, i18n._("name must be 1-64 characters"))
    return name


def _video_source(request: web.Request) -> Source:
    value = request.query.get("video", "camera")
    if value == "camera":
        return Source.CAMERA
    if value == "screen":
        return Source.SCREEN
    raise Refused(400, i18n._("video must be camera or screen"))


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- sessions


class MediaSession:
    """One WHIP publisher or WHEP player: a participant of the room without a WebSocket.

    It implements :class:`~webinar.rooms.live.RoomPeer` (the room tells it what happens;
    it shows nothing of it) and ticketing's holder (a ticket's end evicts it)."""

    def __init__(
        self,
        owner: MediaSessions,
        kind: Kind,
        event: Event,
        *,
        remote_ufrag: str | None,
    ) -> None:
        self.owner = owner
        self.kind = kind
        self.event = event
        self.id = f"{owner.worker_id}.{secrets.token_urlsafe(16)}"
        #: Names this session's ICE session (RFC 9725: If-Match on PATCH).
        self.etag = f'"{secrets.token_hex(8)}"'
        self.remote_ufrag = remote_ufrag
        self.room: LiveRoom | None = None
        self.participant: Participant | None = None
        self.connected = False
        self.ended = False
        self._grant: Grant | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._attendance_id: int | None = None
        #: The client address this session counts under (``signalling.max_sockets_per_address``).
        self.address_key: str | None = None

    @property
    def location(self) -> str:
        return f"/{self.kind.value}/{format_event_id(self.event.event_id)}/{self.id}"

    # ------------------------------------------------------------------ room peer

    def room_event(self, event: RoomEvent) -> None:
        """An encoder whose streams the room ended (its role taken away) has nothing more
        to do there: it leaves."""
        me = self.participant.participant_id if self.participant else None
        room = self.room
        if (
            self.kind is Kind.WHIP
            and isinstance(event, rs.StreamRemoved)
            and event.stream.participant_id == me
            and room is not None
            and not any(s.participant_id == me for s in room.state.streams.values())
        ):
            self.end_soon(ByeReason.LEFT)

    def active_speaker(self, participant_id: str | None) -> None:
        pass

    async def subscriber_offer(self, sdp: str, streams: list[OfferedStream]) -> None:
        pass  # never made: it entered with offers=False

    def disconnect(self, reason: ByeReason) -> None:
        """The room ends this session (removed, the event ended): it has left already."""
        self.room = None
        self.end_soon(reason)

    def allocation(self, report: AllocationReport) -> None:
        pass

    def publisher_layers(self, producer_id: str, active: list[bool]) -> None:
        pass  # an encoder is not told which simulcast layers anyone needs

    def participant_count(self, counts: Counts) -> None:
        pass

    def roster_delta(
        self,
        joined: list[Participant],
        left: list[tuple[str, ByeReason]],
        updated: list[Participant],
    ) -> None:
        pass

    # ------------------------------------------------------------------ holder

    def evict(self, reason: ByeReason) -> None:
        """Ticketing ends this session (the ticket's window ended, it was revoked)."""
        self.end_soon(reason)

    # ------------------------------------------------------------------ lifecycle

    def connection_state(self, state: str) -> None:
        """The media connection's state: the session ends with it."""
        if state == "connected":
            self.connected = True
        elif state in ("failed", "closed"):
            self.end_soon(ByeReason.DISCONNECTED)

    def start_timers(self) -> None:
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(CONNECT_TIMEOUT, self._connect_deadline))
        grant = self._grant
        if grant is not None and grant.expires_at is not None:
            delay = (grant.expires_at - self.owner.services.ticketing.clock()).total_seconds()
            self._timers.append(
                loop.call_later(max(0.0, delay), self.evict, ByeReason.WINDOW_ENDED)
            )

    def _connect_deadline(self) -> None:
        if not self.connected:
            logger.info("%s session %s did not connect in time", self.kind.value, self.id)
            self.end_soon(ByeReason.DISCONNECTED)

    def end_soon(self, reason: ByeReason) -> None:
        if not self.ended:
            self.owner.spawn(self.end(reason))

    async def end(self, reason: ByeReason) -> None:
        """Leave the room (unless the room ended this already), free the ticket, close the
        attendance record. Idempotent."""
        if self.ended:
            return
        self.ended = True
        self.owner.forget(self)
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        grant, self._grant = self._grant, None
        if grant is not None:
            self.owner.services.ticketing.release(grant, dropped=False)
        key, self.address_key = self.address_key, None
        if key is not None and self.owner.per_address is not None:
            self.owner.per_address.give_back(key)
        room, participant = self.room, self.participant
        self.room = None
        try:
            if room is not None and participant is not None:
                await room.leave(participant.participant_id, reason)
        finally:
            attendance_id, self._attendance_id = self._attendance_id, None
            attendance = self.owner.services.attendance
            if attendance_id is not None and attendance is not None:
                try:
                    await attendance.left(attendance_id, reason)
                except Exception:
                    logger.exception("recording that a %s session left failed", self.kind.value)
        if participant is not None:
            logger.info("%s session %s ended: %s", self.kind.value, self.id, reason.value)


Forward = Callable[[int, dict[str, Any]], Awaitable[dict[str, Any]]]


class MediaSessions:
    """The WHIP and WHEP sessions of this worker, and their HTTP endpoints."""

    def __init__(
        self,
        services: Services,
        *,
        worker_id: int = 0,
        per_address: AddressCount | None = None,
    ) -> None:
        """``per_address``: the count of open connections per client address that the
        WebSockets use too; a session is one more (``signalling.max_sockets_per_address``)."""
        self.services = services
        self.worker_id = worker_id
        self.per_address = per_address
        self._sessions: dict[str, MediaSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: With several workers: asks worker ``n`` to answer a request about one of its
        #: sessions (the bus); the answer is :meth:`remote`'s.
        self.forward: Forward | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[MediaSession]:
        return list(self._sessions.values())

    def spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception:
                logger.exception("ending a WHIP/WHEP session failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, session: MediaSession) -> None:
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]

    async def close(self, reason: ByeReason = ByeReason.SHUTDOWN) -> None:
        """End every session (the server stops); idempotent."""
        self.closed = True
        await asyncio.gather(
            *(s.end(reason) for s in list(self._sessions.values())), return_exceptions=True
        )
        await stop_tasks(list(self._tasks))

    # ------------------------------------------------------------------ POST

    async def post(self, request: web.Request, kind: Kind) -> web.StreamResponse:
        """``POST /whip/{event}``, ``POST /whep/{event}``."""
        try:
            reply = await self._create(request, kind)
        except Refused as refused:
            reply = refused.reply
            logger.info(
                "%s offer for %s refused: %d %s",
                kind.value,
                request.match_info.get("event", "")[:32],
                reply.status,
                reply.text.strip(),
            )
        except StoreUnavailable:
            logger.warning("the database is unreachable: a %s session was refused", kind.value)
            reply = Refused(
                503,
                i18n._("the database cannot be reached just now; try again in a moment"),
                ("Retry-After", "5"),
            ).reply
        return reply.response("OPTIONS, POST")

    async def _create(self, request: web.Request, kind: Kind) -> Reply:
        services = self.services
        if self.closed or services.is_draining():
            raise Refused(
                503,
                i18n._("the server is shutting down; join again in a moment"),
                ("Retry-After", "10"),
            )
        if request.content_type != SDP:
            raise Refused(415, i18n._("send the offer as application/sdp"), ("Accept-Post", SDP))
        raw = await request.read()
        if len(raw) > MAX_OFFER_BYTES:
            raise Refused(413, i18n._("the offer is too large"))
        try:
            sdp = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, i18n._("the offer is not UTF-8 text")) from None
        given, token = _bearer(request)
        if kind is Kind.WHIP and token is None:
            raise _unauthorized(
                i18n._("send the event's presenter key as a bearer token (Authorization: Bearer)"),
                token_given=given,
            )
        event = await self._event(request)
        name = _name(request, kind)
        summary = _summary(sdp)
        session = MediaSession(self, kind, event, remote_ufrag=_ice_ufrag(sdp))
        if self.per_address is not None:
            key = client_key(request.remote)
            if not self.per_address.take(key):
                raise Refused(429, i18n._("too many open connections from your address"))
            session.address_key = key
        tracks: list[tuple[str, Source]] = []
        try:
            if kind is Kind.WHIP:
                assert token is not None
                publisher = await publisher_for(event, token, self.services.ticketing.join_tokens)
                if publisher is None:
                    raise _unauthorized(
                        i18n._("this token does not let anyone publish into this event"),
                        token_given=True,
                    )
                role, name = publisher.role, publisher.name or name
                tracks = publish_tracks(summary, _video_source(request))
            else:
                check_play_offer(summary)
                grant = await self._admit(request, event, token, session)
                session._grant = grant
                role, name = Role.ATTENDEE, grant.name or name
            reply = await self._open(request, session, role, name, sdp, tracks)
        except BaseException:
            if not session.ended:
                await session.end(ByeReason.LEFT)
            raise
        if reply.status != 201:  # moved to another node: nothing is held here
            await session.end(ByeReason.LEFT)
        return reply

    async def _event(self, request: web.Request) -> Event:
        """The event the path names. A look-up of an event that is not live counts against
        the client's address like a wrong credential (event IDs cannot be probed in bulk)."""
        raw = request.match_info["event"]
        services = self.services
        ticketing = services.ticketing
        event_id = normalize_event_id(raw)
        held_back: Refusal | None = None
        lookup = ticketing.limiter.uncounted()
        if event_id is None or services.rooms.get(event_id) is None:
            try:
                lookup = await ticketing.lookup(request.remote)
            except Refusal as refusal:
                held_back = refusal
        try:
            event = await services.get_event(event_id) if event_id else None
        except BaseException:
            await lookup.forgive()
            raise
        if event is None:
            await lookup.failed(ticketing.monotonic())
            if held_back is not None:
                raise _ticket_refused(held_back, token_given=False)
            raise Refused(404, i18n._("there is no event with ID %(id)s") % {"id": repr(raw[:32])})
        await lookup.forgive()
        return event

    async def _admit(
        self, request: web.Request, event: Event, token: str | None, session: MediaSession
    ) -> Grant:
        """A player enters under the event's access rules, the bearer its credential."""
        ticketing = self.services.ticketing
        try:
            grant = await ticketing.admit(
                event,
                token,
                client=request.remote,
                client_key=f"whep:{session.id}",
                holder=session,
            )
        except Refusal as refusal:
            raise _ticket_refused(refusal, token_given=token is not None) from None
        if not await ticketing.holds(grant):
            ticketing.release(grant, dropped=False)
            raise Refused(
                409, i18n._("this code or invitation was just used to enter on another device")
            )
        return grant

    async def _open(
        self,
        request: web.Request,
        session: MediaSession,
        role: Role,
        name: str,
        sdp: str,
        tracks: list[tuple[str, Source]],
    ) -> Reply:
        services = self.services
        event = session.event
        room = await self._room(event)
        placement = services.placement
        if placement is not None:
            try:
                move_to = await placement(room, role)
            except Exception:
                await services.rooms.release_if_empty(event.event_id)
                raise
            if move_to is not None:  # a cluster of nodes: this one is not where it belongs
                await services.rooms.release_if_empty(event.event_id)
                url = _http_base(move_to) + request.path_qs
                logger.info("%s session moved to %s", session.kind.value, url)
                return Reply(307, "", headers=[("Location", url)])
        participant = Participant(participant_id=f"pa_{secrets.token_hex(6)}", name=name, role=role)
        session.participant = participant
        try:
            await room.enter(
                participant,
                session,
                person_key=person_key_for(None, participant.participant_id),
                offers=False,
            )
        except RoomError as exc:
            session.participant = None
            await services.rooms.release_if_empty(event.event_id)
            raise _room_refused(exc) from None
        session.room = room
        self._sessions[session.id] = session
        pid = participant.participant_id
        try:
            if session.kind is Kind.WHIP:
                answer, _published = await room.publish(
                    pid, sdp, tracks, on_state=session.connection_state, encoder=True
                )
            else:
                answer = await room.play(pid, sdp, on_state=session.connection_state)
        except SfuError as exc:
            raise _sfu_refused(exc, room.router.config.max_cameras) from None
        except RoomError as exc:
            raise _room_refused(exc) from None
        if session.kind is Kind.WHIP and _truthy(request.query.get("start")):
            try:
                await room.do("start", pid)
            except RoomError as exc:
                logger.info("a WHIP publisher could not start the event: %s", exc.message)
        attendance = services.attendance
        if attendance is not None:
            session._attendance_id = await attendance.joined(
                event_id=event.event_id,
                participant_id=pid,
                person_key=room.state.person_key(pid),
                name=participant.name,
                role=participant.role.value,
                user_agent=request.headers.get("User-Agent", session.kind.value.upper()),
                email=session._grant.email if session._grant is not None else None,
            )
        session.start_timers()
        logger.info(
            "%s session %s: %s as %s in %s",
            session.kind.value,
            session.id,
            pid,
            role.value,
            event.event_id,
        )
        headers = [
            ("Location", session.location),
            ("ETag", session.etag),
            ("Accept-Patch", SDP_FRAG),
            *_ice_links(services.ice_servers(pid)),
        ]
        return Reply(201, sha256_only(answer), content_type=SDP, headers=headers)

    async def _room(self, event: Event) -> LiveRoom:
        services = self.services
        policy = services.recordings
        auto_record = (
            policy is not None
            and services.rooms.get(event.event_id) is None
            and await policy.auto_record(event)
            and await policy.refusal(event) is None
        )
        try:
            room = services.rooms.get_or_create(
                event.event_id,
                starts_at=event.starts_at.timestamp() if event.starts_at else None,
                join_window=services.ticketing.lobby_window_seconds(event),
                max_cameras=event.camera_limit,
                auto_record=auto_record,
            )
        except RoomError as exc:
            raise _room_refused(exc) from None
        await services.rooms.ready(room)
        return room

    # ------------------------------------------------------------------ PATCH, DELETE

    async def on_session(self, request: web.Request, kind: Kind) -> web.StreamResponse:
        """``PATCH`` or ``DELETE`` on a session."""
        session_id = request.match_info["session"]
        body = ""
        if request.method == "PATCH":
            raw = await request.read()
            if len(raw) > MAX_FRAG_BYTES:
                return Refused(413, i18n._("the fragment is too large")).reply.response(
                    "OPTIONS, PATCH, DELETE"
                )
            body = raw.decode("utf-8", errors="replace")
        asked = {
            "kind": kind.value,
            "event": request.match_info["event"],
            "session": session_id,
            "method": request.method,
            "content_type": request.content_type if request.method == "PATCH" else "",
            "if_match": request.headers.get("If-Match"),
            "body": body,
            "language": i18n.current(),
        }
        worker = _worker_of(session_id)
        if worker is not None and worker != self.worker_id and self.forward is not None:
            try:
                reply = Reply.from_json(await self.forward(worker, asked))
            except Exception as exc:
                logger.warning(
                    "worker %d did not answer for session %s: %s", worker, session_id, exc
                )
                reply = Refused(
                    503,
                    i18n._("this session cannot be reached just now; try again"),
                    ("Retry-After", "2"),
                ).reply
        else:
            reply = await self.answer(asked)
        return reply.response("OPTIONS, PATCH, DELETE")

    async def remote(self, asked: dict[str, Any], _sender: int) -> dict[str, Any]:
        """Answer a PATCH or DELETE another worker received for one of our sessions."""
        with i18n.using(str(asked.get("language") or i18n.DEFAULT)):
            return (await self.answer(asked)).to_json()

    async def answer(self, asked: dict[str, Any]) -> Reply:
        """A PATCH or DELETE on a session of this worker."""
        try:
            return await self._answer(asked)
        except Refused as refused:
            return refused.reply

    async def _answer(self, asked: dict[str, Any]) -> Reply:
        kind = Kind(asked["kind"])
        session = self._sessions.get(str(asked["session"]))
        if (
            session is None
            or session.kind is not kind
            or normalize_event_id(str(asked["event"])) != session.event.event_id
        ):
            raise Refused(
                404, i18n._("there is no such session: it ended, or the server restarted")
            )
        if asked["method"] == "DELETE":
            await session.end(ByeReason.LEFT)
            return Reply(200, "")
        if asked["content_type"] != SDP_FRAG:
            raise Refused(
                415,
                i18n._("send ICE candidates as application/trickle-ice-sdpfrag"),
                ("Accept-Patch", SDP_FRAG),
            )
        if_match = asked.get("if_match")
        if if_match == "*":
            raise Refused(422, i18n._("ICE restarts are not supported: start a new session"))
        if if_match is not None and if_match != session.etag:
            raise Refused(
                412, i18n._("If-Match names another ICE session than the current one (ETag)")
            )
        try:
            fragment = parse_fragment(str(asked["body"]))
        except ValueError as exc:
            raise Refused(
                400, i18n._("the fragment cannot be read: %(reason)s") % {"reason": str(exc)}
            ) from None
        if (
            fragment.ufrag is not None
            and session.remote_ufrag is not None
            and fragment.ufrag != session.remote_ufrag
        ):
            raise Refused(422, i18n._("ICE restarts are not supported: start a new session"))
        room, participant = session.room, session.participant
        if room is None or participant is None:
            raise Refused(
                404, i18n._("there is no such session: it ended, or the server restarted")
            )
        for mid, index, candidate in fragment.candidates:
            try:
                await room.add_ice_candidate(
                    participant.participant_id, kind.target, candidate, mid, index
                )
            except SfuError as exc:
                raise Refused(
                    400,
                    i18n._("the fragment cannot be read: %(reason)s") % {"reason": exc.message},
                ) from None
            except RoomError:
                raise Refused(
                    404, i18n._("there is no such session: it ended, or the server restarted")
                ) from None
        return Reply(204, "", headers=[("ETag", session.etag)])


def routes(sessions_of: Callable[[web.Request], MediaSessions]) -> list[web.RouteDef]:
    """The WHIP and WHEP endpoints; ``sessions_of(request)`` is the app's :class:`MediaSessions`
    (made when the app starts, after the routes)."""
    found: list[web.RouteDef] = []
    for kind in Kind:
        base = f"/{kind.value}/{{event}}"

        async def post(request: web.Request, kind: Kind = kind) -> web.StreamResponse:
            return await sessions_of(request).post(request, kind)

        async def on_session(request: web.Request, kind: Kind = kind) -> web.StreamResponse:
            return await sessions_of(request).on_session(request, kind)

        async def endpoint_options(_request: web.Request) -> web.StreamResponse:
            return _options("OPTIONS, POST", ("Accept-Post", SDP))

        async def session_options(_request: web.Request) -> web.StreamResponse:
            return _options("OPTIONS, PATCH, DELETE", ("Accept-Patch", SDP_FRAG))

        found += [
            web.post(base, post),
            web.options(base, endpoint_options),
            web.patch(base + "/{session}", on_session),
            web.delete(base + "/{session}", on_session),
            web.options(base + "/{session}", session_options),
        ]
    return found


def _worker_of(session_id: str) -> int | None:
    head, dot, _ = session_id.partition(".")
    if not dot or not head.isdigit():
        return None
    return int(head)


def _options(allow: str, accept: tuple[str, str]) -> web.Response:
    response = web.Response(status=204)
    response.headers["Allow"] = allow
    response.headers[accept[0]] = accept[1]
    response.headers["Access-Control-Allow-Methods"] = allow
    response.headers["Access-Control-Max-Age"] = "600"
    for name, value in _CORS.items():
        response.headers[name] = value
    return response


__all__ = [
    "Fragment",
    "Kind",
    "MediaSession",
    "MediaSessions",
    "Publisher",
    "Reply",
    "check_play_offer",
    "parse_fragment",
    "publish_tracks",
    "publisher_for",
    "routes",
]
