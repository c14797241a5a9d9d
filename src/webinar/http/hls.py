"""The room's HLS output over HTTP, under the event's access rules and cacheable by a CDN.

- ``GET /e/{event_id}/hls/{pass}/index.m3u8``: the live media playlist (fMP4, a sliding
  window; webinar.broadcast.hls);
- ``GET /e/{event_id}/hls/{pass}/init-{stream}.mp4`` and ``.../{stream}-{n}.m4s``: the init
  section and the media segments the playlist names (relative URIs, so they carry the pass).

``pass`` is a content pass of the event (webinar.content.passes) and sits in the *path*: a CDN
in front passes it through to us on a miss and keys its cache on it, and the relative URIs of
the playlist inherit it. The room hands attendees the pass that names nobody, whose expiry is
rounded to the hour, so everyone admitted within the same hour asks for the same URLs and the
CDN fetches each segment from us once. Without a valid pass: 403 ``not-admitted``, never
cached. The pass is checked before the database is asked (an HMAC), so a flood of bad URLs
costs no query.

The files come from the room's output in this process (webinar.broadcast.hls.HlsStreams), or,
when another process runs it, from the shared folder it mirrors them to (read on a thread).

Cache headers: the playlist ``public, max-age=1`` (it changes every segment); the init section
and segments ``public, max-age=<12 h>, immutable`` (a stream's files never change: new output,
new ``stream`` id); a file not (yet, or no longer) there: 404, ``max-age=1``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from webinar.broadcast.hls import PLAYLIST, HlsStreams
from webinar.content import passes
from webinar.http.content import ContentAccess
from webinar.http.inputs import json_error
from webinar.http.site import Pages, route
from webinar.i18n import _
from webinar.ids import normalize_event_id

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
_CORS = {"Access-Control-Allow-Origin": "*"}
_MISSING = {"Cache-Control": "public, max-age=1", **_CORS}


def _error(status: int, code: str, message: str, headers: dict[str, str]) -> web.HTTPException:
    exc = json_error(status, code, message)
    exc.headers.update(headers)
    return exc


def playlist_path(event_id: str, token: str) -> str:
    """Where the event's HLS playlist is for the holder of ``token`` (a content pass)."""
    return f"/e/{event_id}/hls/{token}/index.m3u8"


class HlsPages(Pages):
    def __init__(self, streams: HlsStreams, access: ContentAccess) -> None:
        self.streams = streams
        self.access = access

    def _admitted(self, request: web.Request) -> str:
        event_id = normalize_event_id(request.match_info["event_id"]) or ""
        token = request.match_info["pass"]
        if not event_id or not self.access.pass_holds(event_id, token):
            raise _error(
                403,
                "not-admitted",
                _("this event's stream is for its participants: enter the event first"),
                {"Cache-Control": "no-store", **_CORS},
            )
        return event_id

    async def _read(self, event_id: str, name: str) -> bytes | None:
        if self.streams.get(event_id) is not None:
            return self.streams.read(event_id, name)  # from memory
        return await asyncio.to_thread(self.streams.read, event_id, name)  # the shared folder

    @route("GET", "/e/{event_id}/hls/{pass}/{file}")
    async def media(self, request: web.Request) -> web.Response:
        event_id = self._admitted(request)
        name = request.match_info["file"]
        data = await self._read(event_id, name)
        if name == PLAYLIST:
            if data is None:
                raise _error(404, "no-stream", _("the event is not being streamed now"), _MISSING)
            return web.Response(
                body=data,
                content_type=PLAYLIST_TYPE,
                headers={"Cache-Control": "public, max-age=1", **_CORS},
            )
        if data is None:
            raise _error(404, "no-segment", _("no such part of the stream"), _MISSING)
        return web.Response(
            body=data,
            content_type="video/mp4" if name.endswith(".mp4") else "video/iso.segment",
            headers={
                "Cache-Control": f"public, max-age={passes.PASS_SECONDS}, immutable",
                **_CORS,
            },
        )
