"""One compositor per live room, shared by its three outputs: the composed recording, the
live stream out (RTMP) and HLS.

:class:`RoomBroadcast` is the room's broadcast driver (``LiveRoom.broadcast``). After every
change of the room :meth:`RoomBroadcast.sync` looks at what is wanted, on the worker that
records the room (``room.records``; with several workers, one of them):

* **the composed recording** — while a recording runs (``[recording] composed``): the
  room's :class:`~webinar.rooms.recording.RoomRecording` asks :meth:`composer_for` for a
  :class:`RecordingOutput`, an MP4 of the shared encoder's packets that pauses with the
  recording;
* **the live stream out** — while ``room.state.live_stream`` is ``on`` or ``paused``: an
  :class:`~webinar.broadcast.rtmp.RtmpSink` to the event's ingest
  (:mod:`webinar.broadcast.settings`);
* **HLS** — while the room is live and the event's ``hls_mode`` is ``all``, or ``overflow``
  once the attendees watching over WebRTC come near ``hls_overflow_after`` (and from then on
  until the room ends, so the stream is warm when the first overflow attendee arrives): an
  :class:`~webinar.broadcast.hls.HlsSink` published in :class:`~webinar.broadcast.hls.HlsStreams`.

While any of them is wanted one :class:`~webinar.broadcast.compositor.Compositor` composes
the room's stage into one :class:`~webinar.broadcast.encoder.Encoder` (H.264 + AAC, encoded
once); each output is a sink of that encoder, added from the next keyframe and removed
alone. When none is wanted the compositor and the encoder are closed. Presenters-only mode
(and any time the room is not recordable) pauses the compositor: nothing of it is composed
into anything (the outputs' clock stands still). The content on stage (a presentation page,
the whiteboard) is shown large when the stage's layout puts it there (``pictures``).

The blocking parts (opening the encoder, adding and removing sinks, closing) run in threads
from one task per room, in order; :meth:`sync` itself only attaches producers and pauses or
resumes the compositor, which are cheap and thread-safe.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import av

from webinar.i18n import _
from webinar.rooms.live import LiveRoom
from webinar.rooms.recording import feed_of
from webinar.rooms.stage import StageContent
from webinar.rooms.state import LiveStreamStatus, Phase, Source
from webinar.sfu.recorder import RecordedFile, RecordedStream
from webinar.storage.store import Event

from ..tasks import stop_task
from .compositor import DEFAULT_DELAY, Compositor, Mp4Sink
from .encoder import Encoder, EncoderSettings, StreamFormat
from .hls import HlsSink, HlsStreams
from .live import LiveStreamService
from .recording import COMPOSED_FEED, COMPOSED_NAME
from .rtmp import RtmpSink, RtmpStatus

logger = logging.getLogger(__name__)

#: Presenters are told the live stream's state when it changes and this often while it runs.
REPORT_SECONDS = 5.0
#: How long an event's HLS setting is taken as read (the dashboard may change it mid-event).
SETTING_SECONDS = 5.0
#: In ``overflow`` mode HLS starts this share of the threshold early (at least 5 people).
OVERFLOW_WARM_SHARE = 0.1
#: The content picture is drawn again at most this often (a whiteboard being drawn on).
CONTENT_SECONDS = 0.25


class StagePictures(Protocol):
    """What the stage shows large besides cameras, as a picture (webinar.broadcast.picture)."""

    def key(self, stage: StageContent) -> object:
        """Changes when what :meth:`picture` would show changes."""
        ...

    async def picture(self, event_id: str, stage: StageContent) -> Any:
        """A ``PIL.Image`` to show large, or None (cameras, a screen share)."""
        ...

    def forget(self, event_id: str) -> None:
        """The room closed: what was kept drawn for it can go."""
        ...


@dataclass(frozen=True, slots=True)
class BroadcastSettings:
    """The composed stage's encoding (``[recording] composed_*``) and whether recordings
    hold it."""

    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    composed_recording: bool = True
    delay: float = DEFAULT_DELAY


class BroadcastService:
    """The application's side: each live room's :class:`RoomBroadcast`."""

    def __init__(
        self,
        settings: BroadcastSettings,
        *,
        live: LiveStreamService,
        hls: HlsStreams | None,
        event_of: Callable[[str], Awaitable[Event | None]],
        pictures: StagePictures | None = None,
    ) -> None:
        self.settings = settings
        self.live = live
        self.hls = hls
        self.event_of = event_of
        self.pictures = pictures

    def driver(self, room: LiveRoom) -> RoomBroadcast:
        return RoomBroadcast(room, self)


class RoomBroadcast:
    def __init__(self, room: LiveRoom, service: BroadcastService) -> None:
        self.room = room
        self.service = service
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._compositor: Compositor | None = None
        self._rtmp: RtmpSink | None = None
        self._hls: HlsSink | None = None
        self._hls_kept = False  # overflow: once started, HLS stays up to the room's end
        self._recordings: list[RecordingOutput] = []
        self._labels: dict[str, str] = {}  # attached producer -> its tile's name
        self._setting: tuple[float, Event | None] | None = None
        self._content_key: object = None
        self._content_task: asyncio.Task[None] | None = None
        self._closed = False
        #: Whether this worker needs the room's media (relayed here when published elsewhere).
        self.wants_media = False

    # -------------------------------------------------------------- the room's side

    def sync(self) -> None:
        if self._closed:
            return
        compositor = self._compositor
        if compositor is not None:
            self._follow_room(compositor)
        if self._task is None:
            self._task = self._loop.create_task(self._run(), name="room-broadcast")
        self._wake.set()

    def output(self) -> dict[str, object] | None:
        """The live stream's connection now (None while there is none)."""
        return self._rtmp.status().as_json() if self._rtmp is not None else None

    def composer_for(self, directory: Path, *, paused: bool) -> RecordingOutput | None:
        """The composed MP4 of a recording that starts now (None: not composed here)."""
        if not self.service.settings.composed_recording or self._closed:
            return None
        output = RecordingOutput(self, directory, paused=paused)
        self._recordings.append(output)
        self.sync()
        return output

    async def close(self) -> None:
        self._closed = True
        await stop_task(self._content_task)
        if self.service.pictures is not None:
            self.service.pictures.forget(self.room.room_id)
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        async with self._lock:
            for output in list(self._recordings):
                await self._drop_recording(output, flush=False)
            await self._close_compositor()

    # -------------------------------------------------------------- following the room

    def _follow_room(self, compositor: Compositor) -> None:
        """Producers attached, names kept, paused while nothing may be shown (on the loop)."""
        room = self.room
        if room.state.recordable:
            compositor.resume()
        else:
            compositor.pause()
        producers = room.stage_producers()
        for stream in room.state.streams.values():
            producer = producers.get(stream.stream_id)
            if producer is None or producer.closed:
                continue
            label = room.name_of(stream.participant_id)
            if not compositor.is_attached(producer.id):
                compositor.attach(
                    producer,
                    feed=feed_of(stream),
                    label=label,
                    screen=stream.source is Source.SCREEN,
                )
                self._labels[producer.id] = label
            elif self._labels.get(producer.id) != label:
                compositor.set_label(producer.id, label)
                self._labels[producer.id] = label
        self._follow_content(compositor)

    def _follow_content(self, compositor: Compositor) -> None:
        pictures = self.service.pictures
        if pictures is None:
            return
        key = pictures.key(self.room.interaction.stage)
        if key == self._content_key:
            return
        self._content_key = key
        if self._content_task is None or self._content_task.done():
            self._content_task = self._loop.create_task(
                self._draw_content(compositor), name="room-broadcast-content"
            )

    async def _draw_content(self, compositor: Compositor) -> None:
        """Draws the stage's content until it stops changing (at most every CONTENT_SECONDS)."""
        pictures = self.service.pictures
        assert pictures is not None
        drawn: object = None
        while not self._closed and compositor is self._compositor:
            stage = self.room.interaction.stage
            key = pictures.key(stage)
            if key == drawn:
                return
            try:
                image = await pictures.picture(self.room.room_id, stage)
            except Exception:
                logger.exception("drawing the stage of room %s failed", self.room.room_id)
                image = None
            compositor.set_content(image)
            drawn = key
            await asyncio.sleep(CONTENT_SECONDS)

    # -------------------------------------------------------------- the task

    async def _run(self) -> None:
        while True:
            if self._rtmp is not None:
                try:
                    await asyncio.wait_for(self._wake.wait(), REPORT_SECONDS)
                except TimeoutError:  # presenters see the bitrate move
                    if self._rtmp is not None:
                        self._tell(self._rtmp.status().as_json())
                    continue
            else:
                await self._wake.wait()
            self._wake.clear()
            try:
                async with self._lock:
                    await self._follow()
            except Exception as exc:
                logger.exception("the broadcast of room %s failed", self.room.room_id)
                async with self._lock:
                    await self._stop_rtmp()
                self._tell({"state": "stopped", "error": str(exc)[:200]})

    async def _follow(self) -> None:
        room = self.room
        here = room.records and not room.closed and not self._closed
        live = here and room.state.live_stream is not LiveStreamStatus.OFF
        hls = here and await self._hls_wanted()
        wanted = live or hls or bool(self._recordings)
        if wanted and self._compositor is None:
            await self._open_compositor()
        compositor = self._compositor
        if compositor is not None:
            encoder = compositor.encoder
            if live and self._rtmp is None:
                await self._start_rtmp(encoder)
            for output in self._recordings:
                if not output.added:
                    output.added_to(compositor)
                    await asyncio.to_thread(encoder.add_sink, output.sink)
            if hls and self._hls is None and self.service.hls is not None:
                sink = self.service.hls.start(room.room_id)
                await asyncio.to_thread(encoder.add_sink, sink)
                self._hls = sink
        if not live:
            await self._stop_rtmp()
        if not hls:
            await self._stop_hls()
        if not wanted:
            await self._close_compositor()
        if wanted != self.wants_media:
            self.wants_media = wanted
            room.broadcast_changed()  # with several workers: relay the streams here, or not

    async def _hls_wanted(self) -> bool:
        if self.service.hls is None or self.room.state.phase is not Phase.LIVE:
            self._hls_kept = False
            return False
        now = time.monotonic()
        if self._setting is None or now - self._setting[0] > SETTING_SECONDS:
            self._setting = (now, await self.service.event_of(self.room.room_id))
        event = self._setting[1]
        mode = event.hls_mode if event is not None else "off"
        if mode == "all":
            return True
        if mode != "overflow" or event is None:
            self._hls_kept = False
            return False
        if not self._hls_kept:
            after = event.hls_overflow_after
            warm = max(5, round(after * OVERFLOW_WARM_SHARE))
            self._hls_kept = bool(self.room.hls_viewers) or (
                self.room.webrtc_attendees() >= after - warm
            )
        return self._hls_kept

    async def _open_compositor(self) -> None:
        settings = self.service.settings
        encoder = await asyncio.to_thread(Encoder, settings.encoder)
        compositor = Compositor(
            encoder, delay=settings.delay, paused=not self.room.state.recordable
        )
        self._compositor = compositor
        self._labels.clear()
        self._content_key = None
        self._follow_room(compositor)
        logger.info("composing the stage of room %s", self.room.room_id)

    async def _close_compositor(self) -> None:
        compositor, self._compositor = self._compositor, None
        await stop_task(self._content_task)
        self._content_task = None
        await self._stop_rtmp(compositor)
        await self._stop_hls(compositor)
        if compositor is not None:
            await asyncio.to_thread(compositor.close)  # closes the encoder and its sinks
            logger.info("stopped composing the stage of room %s", self.room.room_id)

    # -------------------------------------------------------------- outputs

    async def _start_rtmp(self, encoder: Encoder) -> None:
        settings = await self.service.live.settings.get(self.room.room_id)
        if settings is None:
            self._tell({"state": "stopped", "error": _("no server URL and stream key")})
            return
        sink = RtmpSink(settings.url, settings.key, on_status=self._status)
        await asyncio.to_thread(encoder.add_sink, sink)
        self._rtmp = sink

    async def _stop_rtmp(self, compositor: Compositor | None = None) -> None:
        sink, self._rtmp = self._rtmp, None
        compositor = compositor or self._compositor
        if sink is not None and compositor is not None:
            await asyncio.to_thread(compositor.encoder.remove_sink, sink)  # closes it

    async def _stop_hls(self, compositor: Compositor | None = None) -> None:
        sink, self._hls = self._hls, None
        compositor = compositor or self._compositor
        if sink is not None:
            if compositor is not None:
                await asyncio.to_thread(compositor.encoder.remove_sink, sink)  # ends it
            if self.service.hls is not None:
                self.service.hls.withdraw(self.room.room_id, sink)

    async def _finish_recording(self, output: RecordingOutput) -> None:
        async with self._lock:
            await self._drop_recording(output, flush=True)
        self._wake.set()  # nothing else wanted: the compositor closes

    async def _drop_recording(self, output: RecordingOutput, *, flush: bool) -> None:
        if output in self._recordings:
            self._recordings.remove(output)
        compositor = self._compositor
        if output.added and compositor is not None:
            if flush:  # the compositor runs its delay behind: compose up to the stop
                await asyncio.sleep(compositor.delay + 2 / compositor.format.fps)
            await asyncio.to_thread(compositor.encoder.remove_sink_in_turn, output.sink)
        else:
            await asyncio.to_thread(output.sink.close)

    def _status(self, status: RtmpStatus) -> None:
        """From the sink's thread."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._tell, status.as_json())

    def _tell(self, output: dict[str, object]) -> None:
        if not self.room.closed:
            self.room.live_stream_output(output)


class RecordingOutput:
    """The composed MP4 of one recording (the rooms' ``StageComposer``): the room's encoded
    stage from the recording's start to its stop, the paused spans cut out. Its start, pauses
    and resumptions are taken at the moment the compositor's output shows them (it runs
    ``delay`` seconds behind the wall clock), not when its packets happen to be encoded."""

    def __init__(self, broadcast: RoomBroadcast, directory: Path, *, paused: bool) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._broadcast = broadcast
        self.mp4 = Mp4Sink(directory / COMPOSED_NAME)
        self.sink = _Window(self.mp4, started=time.time(), paused=paused)
        self.added = False
        self._finished: RecordedFile | None = None
        self._done = False

    def added_to(self, compositor: Compositor) -> None:
        """It takes this compositor's packets from now on (the task; before ``add_sink``)."""
        start = self.sink.bind(compositor.output_seconds)
        compositor.encoder.request_keyframe(start)
        self.added = True

    def pause(self) -> None:
        self.sink.mark(on=False, wall=time.time())

    def resume(self) -> None:
        at = self.sink.mark(on=True, wall=time.time())
        compositor = self._broadcast._compositor
        if at is not None and compositor is not None:
            compositor.encoder.request_keyframe(at)

    async def finish(self) -> RecordedFile | None:
        if not self._done:
            self._done = True
            await self._broadcast._finish_recording(self)
            sink = self.mp4
            if sink.error is not None or sink.size == 0:
                sink.path.unlink(missing_ok=True)
                return None
            self._finished = RecordedFile(
                name=COMPOSED_NAME,
                feed=COMPOSED_FEED,
                label="",
                part=1,
                offset=0.0,
                streams=[
                    RecordedStream(slot="composed", kind="video", codec="h264"),
                    RecordedStream(slot="composed", kind="audio", codec="aac"),
                ],
                size=sink.size,
                duration=round(sink.duration, 3),
            )
        return self._finished


class _Window:
    """A sink that passes on the encoder's packets shown while the recording ran (not
    paused), each span from a video keyframe, with times moved so that the file starts at 0
    and has no gaps. ``mark`` (on the loop) notes a pause or a resumption at a wall-clock
    time; the encoder's thread compares packet times with those marks in output seconds."""

    #: at most this many sound packets (~21 ms each) are held for a keyframe to come
    HOLD = 200

    def __init__(self, inner: Mp4Sink, *, started: float, paused: bool) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._marks: list[tuple[bool, float]] = [(True, started)]  # (recording?, wall time)
        if paused:
            self._marks.append((False, started))
        self._output: Callable[[float], float] | None = None
        self._spans: list[tuple[float, float | None]] = []
        self._span_start: float | None = None  # where the span being written starts
        self._end = 0.0  # the file's video end so far
        self._frame = 1 / 30
        # sound of a new span that came before its keyframe (see write)
        self._held: list[tuple[av.Packet[Any], float]] = []
        self._held_for: float | None = None
        self._key = 0.0  # the time of the span's first picture
        self._shifts: dict[float, float] = {}  # each span written so far: seconds taken off
        self._sound_end = 0.0  # the file's sound end so far

    def bind(self, output_seconds: Callable[[float], float]) -> float:
        """Marks are read on ``output_seconds``'s clock; returns where the file starts."""
        with self._lock:
            self._output = output_seconds
            self._spans = self._spans_of(self._marks)
            return self._spans[0][0] if self._spans else 0.0

    def mark(self, *, on: bool, wall: float) -> float | None:
        """A resumption (``on``) or a pause at ``wall``; its output time once bound."""
        with self._lock:
            if self._marks[-1][0] == on:
                return None
            self._marks.append((on, wall))
            if self._output is None:
                return None
            self._spans = self._spans_of(self._marks)
            return self._output(wall)

    def _spans_of(self, marks: list[tuple[bool, float]]) -> list[tuple[float, float | None]]:
        assert self._output is not None
        spans: list[tuple[float, float | None]] = []
        for on, wall in marks:
            at = max(0.0, self._output(wall))
            if on:
                spans.append((at, None))
            elif spans and spans[-1][1] is None:
                spans[-1] = (spans[-1][0], at)
        return [(a, b) for a, b in spans if b is None or b > a]

    def open(self, fmt: StreamFormat) -> None:
        self._frame = 1 / fmt.fps
        self.inner.open(fmt)

    def close(self) -> None:
        self.inner.close()

    def write(self, packet: av.Packet[Any], kind: str) -> None:
        if packet.pts is None or packet.time_base is None:
            return
        at = float(packet.pts * packet.time_base)
        held: list[tuple[av.Packet[Any], float]] = []
        with self._lock:
            start = next((a for a, b in self._spans if a <= at and (b is None or at < b)), None)
            if start is None:
                return
            if start not in self._shifts:
                # A new span starts at its first keyframe, its sound from that picture. The
                # encoder hands out sound before the picture of the same time (the video
                # encoder's delay): that sound is held until the keyframe comes, or the file's
                # sound would start late and play ahead of the pictures from then on.
                if kind != "video":
                    if self._held_for != start:
                        self._held, self._held_for = [], start
                    if len(self._held) < self.HOLD:
                        self._held.append((packet, at))
                    return
                if not packet.is_keyframe:
                    return
                self._shifts[start] = at - self._end
                self._span_start = start
                self._key = at
                if self._held_for == start:
                    held = [(p, t) for p, t in self._held if t >= at]
                self._held, self._held_for = [], None
            elif start == self._span_start and kind != "video" and at < self._key:
                return  # sound of a moment before the span's first picture, handed out late
            # (an earlier span's last sound comes after the next span's keyframe: the audio
            # encoder hands it out only with the next sound; it goes where its span put it)
            shift = self._shifts[start]
        self._write(packet, kind, at, shift)
        for sound, sound_at in held:
            self._write(sound, "audio", sound_at, shift)

    def _write(self, packet: av.Packet[Any], kind: str, at: float, shift: float) -> None:
        pts, time_base = packet.pts, packet.time_base
        assert pts is not None and time_base is not None  # checked by write
        if kind != "video":
            # The sound plays sample after sample: where a span's sound would overlap the
            # previous one's (by less than a frame), that packet is left out.
            if at - shift < self._sound_end - 0.001:
                return
            length = float((packet.duration or 0) * time_base)
            self._sound_end = at - shift + length
        copy = av.Packet(bytes(packet))
        copy.time_base = time_base
        moved = round(shift / time_base)
        copy.pts = pts - moved
        copy.dts = (packet.dts if packet.dts is not None else pts) - moved
        copy.duration = packet.duration
        copy.is_keyframe = packet.is_keyframe
        if kind == "video":
            length = float(packet.duration * packet.time_base) if packet.duration else self._frame
            with self._lock:
                self._end = at - shift + length
        self.inner.write(copy, kind)
