"""An aiortc peer that speaks WHIP or WHEP (RFC 9725, the WHEP draft) to a server, for tests:
it posts its offer, applies the answer, trickles candidates with PATCH when asked to, and
stops with DELETE. A WHEP peer counts the frames it decodes, per kind, and the last picture
size."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.sfu import _aiortc as hooks

SDP = "application/sdp"
SDP_FRAG = "application/trickle-ice-sdpfrag"


@dataclass
class Answered:
    status: int
    text: str
    headers: Mapping[str, str]
    links: list[str] = field(default_factory=list)


def camera_and_mic(width: int = 320, height: int = 240) -> list[MediaStreamTrack]:
    """A looped VP8 test picture (keyframe every 15 frames) and an Opus tone."""
    video = ClipTrack(make_vp8_clip(width=width, height=height, seconds=1, keyframe_interval=15))
    return [video, ClipTrack(make_opus_clip(seconds=1))]  # type: ignore[list-item]


def strip_candidates(sdp: str) -> tuple[str, list[str]]:
    """The offer without its candidates (as a trickling client sends it), and those lines."""
    lines = sdp.split("\r\n")
    candidates = [line for line in lines if line.startswith("a=candidate:")]
    kept = [
        line
        for line in lines
        if not line.startswith("a=candidate:") and line != "a=end-of-candidates"
    ]
    return "\r\n".join(kept), candidates


class HttpPeer:
    """One WHIP publisher (``tracks``) or WHEP player (``receive``) on aiortc."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.pc = RTCPeerConnection()
        hooks.configure_gathering(
            self.pc, host_addresses=["127.0.0.1"], port_min=None, port_max=None, announced_ip=None
        )
        self.location: str | None = None
        self.etag: str | None = None
        self.frames: Counter[str] = Counter()
        self.sizes: list[tuple[int, int]] = []
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    # ------------------------------------------------------------------ offers

    def send(self, tracks: list[MediaStreamTrack], *, codec: str | None = None) -> None:
        for track in tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            if codec is not None and track.kind == "video":
                caps = RTCRtpSender.getCapabilities("video").codecs
                transceiver.setCodecPreferences(
                    [c for c in caps if c.mimeType.lower() == f"video/{codec}"]
                )

    def receive(
        self, kinds: tuple[str, ...] = ("audio", "video"), *, codec: str | None = None
    ) -> None:
        for kind in kinds:
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            if codec is not None and kind == "video":
                caps = RTCRtpSender.getCapabilities("video").codecs
                transceiver.setCodecPreferences(
                    [c for c in caps if c.mimeType.lower() == f"video/{codec}"]
                )

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def post(
        self,
        path: str,
        sdp: str,
        *,
        token: str | None = None,
        content_type: str = SDP,
        apply: bool = True,
    ) -> Answered:
        """POST the offer; on 201 remember the session and apply the answer (``apply``)."""
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.post(
            self.base_url + path, data=sdp.encode(), headers=headers, allow_redirects=False
        ) as resp:
            text = await resp.text()
            answered = Answered(
                resp.status, text, resp.headers.copy(), resp.headers.getall("Link", [])
            )
        if answered.status == 201:
            self.location = answered.headers["Location"]
            self.etag = answered.headers.get("ETag")
            if apply:
                await self.pc.setRemoteDescription(RTCSessionDescription(text, "answer"))
        return answered

    async def patch(
        self,
        fragment: str,
        *,
        content_type: str = SDP_FRAG,
        if_match: str | None = None,
        location: str | None = None,
    ) -> Answered:
        headers = {"Content-Type": content_type}
        if if_match is not None:
            headers["If-Match"] = if_match
        target = location or self.location
        assert target is not None
        async with self.http.patch(self.base_url + target, data=fragment, headers=headers) as resp:
            return Answered(resp.status, await resp.text(), resp.headers.copy())

    async def delete(self, location: str | None = None) -> Answered:
        target = location or self.location
        assert target is not None
        async with self.http.delete(self.base_url + target) as resp:
            return Answered(resp.status, await resp.text(), resp.headers.copy())

    def ice_fragment(self, candidates: list[str], *, ufrag: str | None = None) -> str:
        """A trickle-ice-sdpfrag of this peer's first m-line with ``candidates``."""
        sdp = self.pc.localDescription.sdp
        own_ufrag = re.search(r"a=ice-ufrag:(\S+)", sdp)
        pwd = re.search(r"a=ice-pwd:(\S+)", sdp)
        mid = re.search(r"a=mid:(\S+)", sdp)
        assert own_ufrag and pwd and mid
        lines = [
            f"a=ice-ufrag:{ufrag or own_ufrag.group(1)}",
            f"a=ice-pwd:{pwd.group(1)}",
            "m=audio 9 RTP/AVP 0",
            f"a=mid:{mid.group(1)}",
            *candidates,
            "a=end-of-candidates",
        ]
        return "\r\n".join(lines) + "\r\n"

    # ------------------------------------------------------------------ receiving

    def _on_track(self, track: MediaStreamTrack) -> None:
        kind = track.kind

        async def read() -> None:
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                self.frames[kind] += 1
                width = getattr(frame, "width", None)
                if kind == "video" and width is not None:
                    self.sizes.append((int(width), int(frame.height)))

        self._readers.append(asyncio.get_running_loop().create_task(read()))

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await self.pc.close()
        hooks.release_sockets(self.pc)


@pytest.fixture
async def http_peers() -> AsyncIterator[tuple[aiohttp.ClientSession, list[HttpPeer]]]:
    """An HTTP session and the WHIP/WHEP peers a test makes, closed at its end."""
    made: list[HttpPeer] = []
    async with aiohttp.ClientSession() as http:
        yield http, made
        await asyncio.gather(*(p.close() for p in made), return_exceptions=True)


def peer(peers: tuple[aiohttp.ClientSession, list[HttpPeer]], base_url: str) -> HttpPeer:
    http, made = peers
    p = HttpPeer(http, base_url)
    made.append(p)
    return p
