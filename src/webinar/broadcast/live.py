"""A room's live stream out: whether presenters may start it (``set-live-stream``), and where
it goes.

The stream itself is one output of the room's composed stage
(:class:`webinar.broadcast.room.RoomBroadcast`): while ``room.state.live_stream`` is ``on``
or ``paused`` an :class:`~webinar.broadcast.rtmp.RtmpSink` to the event's ingest
(:mod:`webinar.broadcast.settings`) takes the room's encoded packets, on the worker that
records the room; presenters-only mode (``paused``) pauses the compositor, so nothing of the
backstage is sent, and the connection is kept.
"""

from __future__ import annotations

from webinar.i18n import _
from webinar.storage.store import Event

from .settings import LiveStreamSettingsService


class LiveStreamService:
    """Signalling's ``LiveStreamPolicy``: a live stream needs the event's ingest set."""

    def __init__(self, settings: LiveStreamSettingsService) -> None:
        self.settings = settings

    async def refusal(self, event: Event) -> str | None:
        if await self.settings.get(event.event_id) is None:
            return _("set the live stream's server URL and stream key in the dashboard first")
        return None
