"""A room's live stream out: what presenters start and stop (``set-live-stream``), run on the
worker that records the room.

:class:`RoomLiveStream` follows ``room.state.live_stream``: ``on`` opens an
:class:`~webinar.broadcast.encoder.Encoder` with an :class:`~webinar.broadcast.rtmp.RtmpSink`
to the event's ingest (:mod:`webinar.broadcast.settings`) and attaches a *feed* — what pushes
the composed stage into the encoder (the compositor; a :class:`FeedFactory`); ``paused``
(presenters-only mode) detaches the feed, so nothing of the backstage is sent, and keeps the
connection; ``off`` closes it all. One task per room does the changes in order, the blocking
parts (opening and closing the encoder) in a thread. The sink's state reaches the room's
presenters through :meth:`webinar.rooms.live.LiveRoom.live_stream_output`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from webinar.i18n import _
from webinar.rooms.live import LiveRoom
from webinar.rooms.state import LiveStreamStatus
from webinar.storage.store import Event

from ..tasks import stop_task
from .encoder import Encoder, EncoderSettings
from .rtmp import RtmpSink, RtmpStatus
from .settings import LiveStreamSettingsService

logger = logging.getLogger(__name__)

#: Presenters are told the stream's state when it changes and this often while it runs.
REPORT_SECONDS = 5.0


class Feed(Protocol):
    """Pushes frames into an encoder until closed."""

    async def close(self) -> None: ...


#: ``factory(room, encoder, clock)``: start pushing ``room``'s composed stage into
#: ``encoder``, frame times from ``clock()`` (seconds, the same clock across pauses).
FeedFactory = Callable[[LiveRoom, Encoder, Callable[[], float]], Feed]


class LiveStreamService:
    """The application's side: signalling's ``LiveStreamPolicy`` and each room's driver."""

    def __init__(
        self,
        settings: LiveStreamSettingsService,
        encoder: EncoderSettings | None = None,
        feed: FeedFactory | None = None,
    ) -> None:
        self.settings = settings
        self.encoder = encoder or EncoderSettings()
        #: What composes the stage (set by the application once the compositor exists).
        self.feed = feed

    async def refusal(self, event: Event) -> str | None:
        if self.feed is None:
            return _("live streaming needs the composed stage, which this server cannot make")
        if await self.settings.get(event.event_id) is None:
            return _("set the live stream's server URL and stream key in the dashboard first")
        return None

    def driver(self, room: LiveRoom) -> RoomLiveStream:
        return RoomLiveStream(room, self)


class RoomLiveStream:
    def __init__(self, room: LiveRoom, service: LiveStreamService) -> None:
        self.room = room
        self.service = service
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._encoder: Encoder | None = None
        self._sink: RtmpSink | None = None
        self._feed: Feed | None = None
        self._started = 0.0
        self._loop = asyncio.get_running_loop()

    def output(self) -> dict[str, object] | None:
        return self._sink.status().as_json() if self._sink is not None else None

    def _wanted(self) -> LiveStreamStatus:
        """The room's wish, where the room is recorded (one worker of several)."""
        return self.room.state.live_stream if self.room.records else LiveStreamStatus.OFF

    def sync(self) -> None:
        wanted = self._wanted()
        if self._task is None:
            if wanted is LiveStreamStatus.OFF:
                return
            self._task = self._loop.create_task(self._run(), name="live-stream-out")
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        await self._stop()

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), REPORT_SECONDS)
            except TimeoutError:  # presenters see the bitrate move
                if self._sink is not None:
                    self._tell(self._sink.status().as_json())
                continue
            self._wake.clear()
            try:
                await self._follow(self._wanted())
            except Exception as exc:
                logger.exception("the live stream out of room %s failed", self.room.room_id)
                await self._stop()
                self._tell({"state": "stopped", "error": str(exc)[:200]})

    async def _follow(self, wanted: LiveStreamStatus) -> None:
        if wanted is LiveStreamStatus.OFF:
            await self._stop()
            return
        if self._encoder is None:
            settings = await self.service.settings.get(self.room.room_id)
            if settings is None:
                self._tell({"state": "stopped", "error": _("no server URL and stream key")})
                return
            sink = RtmpSink(settings.url, settings.key, on_status=self._status)
            encoder = await asyncio.to_thread(Encoder, self.service.encoder)
            await asyncio.to_thread(encoder.add_sink, sink)
            self._encoder, self._sink, self._started = encoder, sink, time.monotonic()
        if wanted is LiveStreamStatus.ON and self._feed is None and self.service.feed:
            self._feed = self.service.feed(self.room, self._encoder, self._clock)
        elif wanted is LiveStreamStatus.PAUSED and self._feed is not None:
            feed, self._feed = self._feed, None
            await feed.close()

    def _clock(self) -> float:
        return time.monotonic() - self._started

    async def _stop(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            await feed.close()
        encoder, self._encoder, self._sink = self._encoder, None, None
        if encoder is not None:
            await asyncio.to_thread(encoder.close)  # flushes, closes the sink

    def _status(self, status: RtmpStatus) -> None:
        """From the sink's thread."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._tell, status.as_json())

    def _tell(self, output: dict[str, object]) -> None:
        if not self.room.closed:
            self.room.live_stream_output(output)
