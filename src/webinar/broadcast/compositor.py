"""The stage as one picture: decode the stage's producers, lay them out, mix, encode once.

A :class:`Compositor` is one more consumer of a live room's producers: each stage producer
gets a :class:`~webinar.sfu.recorder.FrameTap` (the recorder's depacketizing and its
sender-report timing, shared), which hands whole VP8/Opus frames with wall-clock times to a
bounded queue. Everything else runs on the compositor's own thread, never on the event loop:

* **Decode** (PyAV: FFmpeg's ``vp8`` decoder, ``libopus``): each source's frames in order.
* **Time.** Output time follows the wall clock ``delay`` seconds behind (room for jitter
  and the wait for sender reports); a frame is shown from its capture time (RTCP sender
  reports map RTP to the publisher's clock, one offset per publisher), so a publisher's
  picture and sound stay in sync in the output as they were captured.
* **Layout** (:func:`layout`) as attendees see the stage: one camera full; 2–7 cameras in a
  grid; a screen share (or a content image: presentation page, whiteboard) large with the
  cameras in a strip beside it; each tile keeps its aspect (letterboxed) and carries its
  presenter's name.
* **Mix**: every audio source placed by its capture time on one 48 kHz sample clock, summed
  and clipped.
* **Encode**: frames go to an :class:`~webinar.broadcast.encoder.Encoder` (its own thread),
  whose packets go to its sinks (the composed MP4 :class:`Mp4Sink`, RTMP, HLS).
* **Pausing** (presenters-only mode): media captured while paused is never composed and the
  output clock stands still — the output plays on without the paused span.

This module sits above ``sfu`` (it imports it); ``sfu`` knows nothing of it.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from PIL import Image, ImageDraw

from webinar.sfu.producer import Producer
from webinar.sfu.recorder import Frame, FrameTap, SyncGroup
from webinar.sfu.types import MediaKind

from .encoder import AUDIO_LAYOUT, AUDIO_RATE, Encoder, StreamFormat
from .picture import sans

logger = logging.getLogger(__name__)

#: The thread composes what is due every this many seconds (fewer wake-ups: see ``_run``).
TURN_SECONDS = 0.05
#: Seconds the output runs behind the wall clock (jitter, retransmissions, sender reports).
DEFAULT_DELAY = 0.6
#: Seconds the thread may fall behind its clock before it skips pictures to catch up.
MAX_BEHIND = 0.5
#: Frames waiting for the compositor's thread; beyond this new ones are dropped (counted).
INPUT_QUEUE = 2000
#: Samples per mixed audio frame (20 ms).
AUDIO_CHUNK = 960
#: Decoded pictures kept per source for choosing by time.
KEEP_PICTURES = 30
#: A source's audio more than this many samples off where it should continue is re-placed.
AUDIO_SLACK = 960
#: Most samples of one source held for mixing (2 s): beyond that the oldest go.
AUDIO_HOLD = AUDIO_RATE * 2
BACKGROUND_LUMA = 30  # the stage's background (dark grey), where no tile is
TILE_LUMA = 16  # black behind a picture that does not fill its tile
GAP = 4  # pixels between tiles
STRIP_SHARE = 0.2  # width share of the cameras' strip beside a screen share


@dataclass(frozen=True, slots=True)
class Rect:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each tile goes: ``main`` (screen share or content, if any) and the cameras."""

    main: Rect | None
    cameras: tuple[Rect, ...]


def layout(width: int, height: int, cameras: int, *, main: bool) -> Layout:
    """The stage as attendees see it: with a screen share or content (``main``) it is large
    on the left and the cameras are stacked in a strip on the right; without, one camera is
    full and 2–7 (or more) share a grid of near-square rows and columns."""
    if main:
        if cameras == 0:
            return Layout(Rect(0, 0, width, height), ())
        strip_w = _even(width * STRIP_SHARE)
        main_rect = Rect(0, 0, width - strip_w - GAP, height)
        tile_h = _even(min(strip_w * 9 / 16, (height - GAP * (cameras - 1)) / cameras))
        top = _at((height - (tile_h * cameras + GAP * (cameras - 1))) / 2)
        x = width - strip_w
        rects = tuple(Rect(x, top + i * (tile_h + GAP), strip_w, tile_h) for i in range(cameras))
        return Layout(main_rect, rects)
    if cameras <= 1:
        return Layout(None, (Rect(0, 0, width, height),) if cameras else ())
    cols = math.ceil(math.sqrt(cameras))
    rows = math.ceil(cameras / cols)
    tile_w = _even((width - GAP * (cols - 1)) / cols)
    tile_h = _even((height - GAP * (rows - 1)) / rows)
    top = _at((height - (rows * tile_h + (rows - 1) * GAP)) / 2)
    out: list[Rect] = []
    for i in range(cameras):
        row, col = divmod(i, cols)
        in_row = min(cols, cameras - row * cols)  # the last row is centred
        left = _at((width - (in_row * tile_w + (in_row - 1) * GAP)) / 2)
        out.append(Rect(left + col * (tile_w + GAP), top + row * (tile_h + GAP), tile_w, tile_h))
    return Layout(None, tuple(out))


def _even(value: float) -> int:
    """A size: even (yuv420p), at least 2."""
    return max(2, int(value) // 2 * 2)


def _at(value: float) -> int:
    """A position: even, at least 0."""
    return max(0, int(value) // 2 * 2)


def _around(rect: Rect, box: Rect) -> list[Rect]:
    """The parts of ``rect`` outside ``box`` (inside it): bands above, below, left, right."""
    bands = [
        Rect(rect.x, rect.y, rect.w, box.y - rect.y),
        Rect(rect.x, box.y + box.h, rect.w, rect.y + rect.h - box.y - box.h),
        Rect(rect.x, box.y, box.x - rect.x, box.h),
        Rect(box.x + box.w, box.y, rect.x + rect.w - box.x - box.w, box.h),
    ]
    return [band for band in bands if band.w > 0 and band.h > 0]


def fit(rect: Rect, width: int, height: int) -> Rect:
    """The largest ``width``:``height`` box centred in ``rect`` (even sizes)."""
    scale = min(rect.w / width, rect.h / height)
    w, h = min(rect.w, _even(width * scale)), min(rect.h, _even(height * scale))
    return Rect(rect.x + _at((rect.w - w) / 2), rect.y + _at((rect.h - h) / 2), w, h)


# ----------------------------------------------------------------------------- sources


@dataclass(slots=True)
class _Picture:
    wall: float
    frame: av.VideoFrame


@dataclass(slots=True)
class _VideoSource:
    key: str
    label: str
    screen: bool
    order: int
    decoder: Any = None
    pictures: deque[_Picture] = field(default_factory=deque)
    shown: _Picture | None = None
    tile: av.VideoFrame | None = None  # the shown picture scaled for its tile
    tile_rect: Rect | None = None
    name_tag: tuple[tuple[str, int, int], Image.Image] | None = None
    decoded: int = 0
    errors: int = 0


@dataclass(slots=True)
class _AudioSource:
    key: str
    decoder: Any = None
    resampler: Any = None
    start: int = 0  # sample index (on the output's sample clock) of left[0]
    left: array.array[float] = field(default_factory=lambda: array.array("f"))
    right: array.array[float] = field(default_factory=lambda: array.array("f"))
    next_at: int | None = None  # where the next frame continues
    decoded: int = 0


@dataclass(slots=True)
class CompositorStats:
    frames_in: int = 0
    dropped_in: int = 0
    video_out: int = 0
    audio_out: int = 0
    decode_errors: int = 0
    skipped: int = 0  # pictures not composed to catch up after falling behind
    busy_seconds: float = 0.0  # thread CPU time spent on decode, compose and mix


# ----------------------------------------------------------------------------- compositor


class Compositor:
    """Composes producers into one picture and one sound, fed into ``encoder``.

    Call from the event loop: :meth:`attach` / :meth:`detach` producers, :meth:`set_label`,
    :meth:`set_content`, :meth:`pause` / :meth:`resume`; :meth:`close` (blocking: use
    ``asyncio.to_thread``) stops the thread and closes the encoder, which closes its sinks.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        delay: float = DEFAULT_DELAY,
        paused: bool = False,
        clock: Callable[[], float] = time.time,
        fit_layers: bool = True,
    ) -> None:
        """``fit_layers``: from a simulcast camera take the encoding that fits its tile
        (the smallest at least as large), not the best one (see :meth:`_fit_tiles`)."""
        self.encoder = encoder
        self.format: StreamFormat = encoder.format
        self.delay = delay
        self.stats = CompositorStats()
        self._clock = clock
        self._taps: dict[str, FrameTap] = {}  # by producer id
        self._groups: dict[str, SyncGroup] = {}  # by feed
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        # Frames from the taps: appended on the loop without a lock or a wake-up (a queue's
        # put cost the loop ~20 µs a frame), taken by the thread at each of its turns (at
        # least once a picture's time).
        self._frames: deque[tuple[Any, ...]] = deque()
        self._lock = threading.Lock()
        self.started_at = clock()
        # Paused spans on the wall clock: (start, end or None while paused).
        self._pauses: list[tuple[float, float | None]] = []
        if paused:
            self._pauses.append((self.started_at, None))
        self._stop = threading.Event()
        self._stop_wall = 0.0
        self._video: dict[str, _VideoSource] = {}
        self._audio: dict[str, _AudioSource] = {}
        self._order = 0
        self._content: Image.Image | None = None
        self._content_tile: tuple[Rect, av.VideoFrame] | None = None
        self._canvas: av.VideoFrame | None = None
        self._dirty = True
        self._font: Any = _font(max(12, self.format.height // 30))
        self._fit_layers = fit_layers
        self._loop: asyncio.AbstractEventLoop | None = None  # the producers' (attach's)
        self._tile_sizes: dict[str, tuple[int, int]] = {}  # last told, on the thread
        self._thread = threading.Thread(target=self._run, name="broadcast-compositor", daemon=True)
        self._thread.start()

    # -------------------------------------------------------------- the loop's side

    def attach(self, producer: Producer, *, feed: str, label: str, screen: bool = False) -> None:
        """Compose ``producer``: a camera (or, ``screen``, a screen share) tile, or a sound
        to mix. Producers of one ``feed`` (a publisher's camera and microphone) share a
        clock. Only VP8 and Opus are read (others are left, with a warning)."""
        if producer.closed or producer.id in self._taps or self._stop.is_set():
            return
        if self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()
        group = self._groups.setdefault(feed, SyncGroup())
        tap = _Tap(self, producer, group)
        self._taps[producer.id] = tap
        self._queue.put_nowait(("add", producer.id, producer.kind, label, screen))
        producer.add_consumer(tap)
        tap.request_keyframe()

    def detach(self, producer_id: str) -> None:
        tap = self._taps.pop(producer_id, None)
        if tap is not None:
            tap.detach()
            self._queue.put_nowait(("remove", producer_id))

    def _tap_closed(self, tap: FrameTap) -> None:
        """The producer closed (its publisher left or stopped it): its tile goes."""
        if self._taps.get(tap.producer.id) is tap:
            del self._taps[tap.producer.id]
            self._queue.put_nowait(("remove", tap.producer.id))

    def _fit_tiles(self, sizes: dict[str, tuple[int, int]]) -> None:
        """On the event loop: each camera's tap takes the simulcast encoding that fits its
        tile (a grid of four 640x360 tiles wants the 640x360 encoding, not 1280x720):
        decoding a quarter of the pixels, the same picture once scaled."""
        for key, (width, height) in sizes.items():
            tap = self._taps.get(key)
            if tap is not None and not tap.closed:
                tap.fit_size(width, height)

    def is_attached(self, producer_id: str) -> bool:
        tap = self._taps.get(producer_id)
        return tap is not None and not tap.closed

    def set_label(self, producer_id: str, label: str) -> None:
        self._queue.put_nowait(("label", producer_id, label))

    def set_content(self, image: Image.Image | None) -> None:
        """A picture shown large (a presentation page, the whiteboard), or None."""
        self._queue.put_nowait(("content", image))

    @property
    def paused(self) -> bool:
        with self._lock:
            return bool(self._pauses) and self._pauses[-1][1] is None

    def pause(self) -> None:
        """Presenters-only: what is captured from now on is not composed."""
        with self._lock:
            if not self._pauses or self._pauses[-1][1] is not None:
                self._pauses.append((self._clock(), None))

    def resume(self) -> None:
        with self._lock:
            if self._pauses and self._pauses[-1][1] is None:
                self._pauses[-1] = (self._pauses[-1][0], self._clock())

    def output_seconds(self, wall: float | None = None) -> float:
        """Seconds of output for the wall-clock time ``wall`` (paused spans cut out)."""
        wall = self._clock() if wall is None else wall
        return self._output_time(wall)

    def close(self) -> None:
        """Blocking: leave the producers, end the thread, flush and close the encoder."""
        self._stop_wall = self._clock()
        taps, self._taps = list(self._taps.values()), {}
        for tap in taps:  # their tiles stay up to the end
            tap.detach()
        self._stop.set()
        self._queue.put(None)
        self._thread.join()
        self.encoder.close()

    def _on_frame(self, tap: FrameTap, frame: Frame, wall: float) -> None:
        # On the event loop: hand the frame on, nothing else.
        if len(self._frames) >= INPUT_QUEUE:
            self.stats.dropped_in += 1
            if tap.kind is MediaKind.VIDEO:
                tap.reset()  # the decoder's references are broken: restart at a keyframe
            return
        self.stats.frames_in += 1
        self._frames.append(("frame", tap.producer.id, frame.data, frame.keyframe, wall))

    # -------------------------------------------------------------- time

    def _output_time(self, wall: float) -> float:
        """Output seconds of ``wall``: time since the start minus paused time before it."""
        paused = 0.0
        with self._lock:
            spans = list(self._pauses)
        for start, end in spans:
            if start >= wall:
                break
            paused += min(wall, end if end is not None else wall) - start
        return wall - self.started_at - paused

    def _is_paused_at(self, wall: float) -> bool:
        with self._lock:
            spans = list(self._pauses)
        return any(start <= wall and (end is None or wall < end) for start, end in spans)

    # -------------------------------------------------------------- the thread

    def _run(self) -> None:
        fps = self.format.fps
        frame_wall = self.started_at  # the wall time of the next output picture
        audio_wall = self.started_at  # ... and of the next mixed sound chunk
        chunk = AUDIO_CHUNK / AUDIO_RATE
        try:
            while True:
                stopping = self._stop.is_set()
                busy = time.thread_time()
                self._drain()
                # Behind the clock by the delay; when stopping, up to the moment of close().
                target = self._stop_wall if stopping else self._clock() - self.delay
                while frame_wall <= target:
                    if target - frame_wall > MAX_BEHIND and not stopping:
                        self.stats.skipped += 1  # overloaded: catch up (the picture holds)
                    elif not self._is_paused_at(frame_wall):
                        self._compose(frame_wall)
                    frame_wall += 1 / fps
                while audio_wall + chunk <= target:
                    if not self._is_paused_at(audio_wall):
                        self._mix(audio_wall)
                    audio_wall += chunk
                self.stats.busy_seconds += time.thread_time() - busy
                if stopping:
                    return
                # Composed in turns of TURN_SECONDS (the output runs ``delay`` behind anyway):
                # each wake-up takes the GIL from the event loop: waking for every picture
                # and sound chunk made it forward 15-19 % fewer packets per CPU-second.
                wait = min(frame_wall, audio_wall + chunk) - target
                self._wait(max(wait, TURN_SECONDS))
        except Exception:
            logger.exception("the compositor failed")

    def _wait(self, seconds: float) -> None:
        with contextlib.suppress(queue.Empty):
            item = self._queue.get(timeout=seconds)
            if item is not None:
                self._handle(item)

    def _drain(self) -> None:
        while True:  # control first: a frame's source is added before its frames come
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                break
            self._handle(item)
        frames = self._frames
        while frames:
            self._handle(frames.popleft())

    def _handle(self, item: tuple[Any, ...]) -> None:
        op = item[0]
        if op == "frame":
            _, key, data, _keyframe, wall = item
            if key in self._video:
                self._decode_video(self._video[key], data, wall)
            elif key in self._audio:
                self._decode_audio(self._audio[key], data, wall)
        elif op == "add":
            _, key, kind, label, screen = item
            if kind is MediaKind.VIDEO:
                self._order += 1
                vp8 = av.CodecContext.create("vp8", "r")
                vp8.thread_count = 1
                self._video[key] = _VideoSource(key, label, screen, self._order, vp8)
            else:
                decoder = av.CodecContext.create("libopus", "r")
                resampler = av.AudioResampler(format="fltp", layout=AUDIO_LAYOUT, rate=AUDIO_RATE)
                self._audio[key] = _AudioSource(key, decoder, resampler)
            self._dirty = True
        elif op == "remove":
            self._video.pop(item[1], None)
            self._audio.pop(item[1], None)
            self._dirty = True
        elif op == "label":
            source = self._video.get(item[1])
            if source is not None and source.label != item[2]:
                source.label = item[2]
                source.tile = None
                self._dirty = True
        elif op == "content":
            self._content = item[1]
            self._content_tile = None
            self._dirty = True

    # -------------------------------------------------------------- decoding

    def _decode_video(self, source: _VideoSource, data: bytes, wall: float) -> None:
        try:
            frames = source.decoder.decode(av.Packet(data))
        except av.FFmpegError:
            source.errors += 1
            self.stats.decode_errors += 1
            return
        for frame in frames:
            source.decoded += 1
            source.pictures.append(_Picture(wall, frame))
            while len(source.pictures) > KEEP_PICTURES:
                source.pictures.popleft()

    def _decode_audio(self, source: _AudioSource, data: bytes, wall: float) -> None:
        try:
            decoded = source.decoder.decode(av.Packet(data))
        except av.FFmpegError:
            self.stats.decode_errors += 1
            return
        for raw in decoded:
            for frame in source.resampler.resample(raw):
                n = frame.samples
                at = round((wall - self.started_at) * AUDIO_RATE)
                if source.next_at is not None and abs(at - source.next_at) <= AUDIO_SLACK:
                    at = source.next_at  # continue seamlessly through network jitter
                left = array.array("f", bytes(frame.planes[0])[: n * 4])
                right = array.array("f", bytes(frame.planes[1])[: n * 4])
                self._place(source, at, left, right)
                source.next_at = at + n
                source.decoded += 1
                wall += n / AUDIO_RATE

    @staticmethod
    def _place(
        source: _AudioSource, at: int, left: array.array[float], right: array.array[float]
    ) -> None:
        end = source.start + len(source.left)
        if not source.left or at < source.start or at > end + AUDIO_HOLD:
            if at < source.start and source.left:
                return  # older than what is held: too late
            source.start, source.left, source.right = at, left, right
            return
        if at > end:  # a gap: silence
            pad = array.array("f", bytes(4 * (at - end)))
            source.left.extend(pad)
            source.right.extend(pad)
            end = at
        offset = at - source.start
        n = len(left)
        source.left[offset : offset + n] = left
        source.right[offset : offset + n] = right
        excess = len(source.left) - AUDIO_HOLD
        if excess > 0:
            del source.left[:excess]
            del source.right[:excess]
            source.start += excess

    # -------------------------------------------------------------- video out

    def _compose(self, wall: float) -> None:
        cameras = sorted((s for s in self._video.values() if not s.screen), key=lambda s: s.order)
        screens = sorted((s for s in self._video.values() if s.screen), key=lambda s: s.order)
        for source in self._video.values():
            chosen = None
            while source.pictures and source.pictures[0].wall <= wall:
                chosen = source.pictures.popleft()
            if chosen is not None:
                source.shown = chosen
                source.tile = None
                self._dirty = True
        screen = next((s for s in reversed(screens) if s.shown is not None), None)
        shown = [c for c in cameras if c.shown is not None]
        # Screens other than the shown one count as cameras in the strip (two sharers).
        shown += [s for s in screens if s is not screen and s.shown is not None]
        main = screen is not None or self._content is not None
        plan = layout(self.format.width, self.format.height, len(shown), main=main)
        if self._dirty or self._canvas is None:
            self._canvas = self._draw(plan, screen, shown)
            self._dirty = False
            if self._fit_layers:
                self._tell_tile_sizes(plan, screen, shown)
        self.encoder.push_video(self._canvas, self._output_time(wall))
        self.stats.video_out += 1

    def _tell_tile_sizes(
        self, plan: Layout, screen: _VideoSource | None, cameras: list[_VideoSource]
    ) -> None:
        """When a tile's size changed, tell the loop (its tap chooses an encoding)."""
        placed = list(zip(cameras, plan.cameras, strict=False))
        if screen is not None and plan.main is not None:
            placed.append((screen, plan.main))
        sizes: dict[str, tuple[int, int]] = {}
        for source, rect in placed:
            if source.shown is not None:
                frame = source.shown.frame
                box = fit(rect, frame.width, frame.height)
                sizes[source.key] = (box.w, box.h)
        changed = {k: v for k, v in sizes.items() if self._tile_sizes.get(k) != v}
        self._tile_sizes = sizes
        if changed and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing to choose
                self._loop.call_soon_threadsafe(self._fit_tiles, changed)

    def _draw(
        self, plan: Layout, screen: _VideoSource | None, cameras: list[_VideoSource]
    ) -> av.VideoFrame:
        """The picture, made in yuv420p directly: each tile scaled by swscale and copied in
        row by row (no RGB round trip, no per-pixel Python)."""
        canvas = _Canvas(self.format.width, self.format.height)
        if plan.main is not None:
            if screen is not None:
                self._paste(canvas, screen, plan.main, name=False)
            elif self._content is not None:
                box = fit(plan.main, *self._content.size)
                if self._content_tile is None or self._content_tile[0] != box:
                    rgb = self._content.convert("RGB")
                    picture = av.VideoFrame.from_image(rgb)  # type: ignore[no-untyped-call]
                    scaled = picture.reformat(width=box.w, height=box.h, format="yuv420p")
                    self._content_tile = (box, scaled)
                canvas.put(self._content_tile[1], box.x, box.y)
        for source, rect in zip(cameras, plan.cameras, strict=False):
            self._paste(canvas, source, rect, name=True)
        return canvas.frame()

    def _paste(self, canvas: _Canvas, source: _VideoSource, rect: Rect, *, name: bool) -> None:
        picture = source.shown
        if picture is None:
            return
        frame = picture.frame
        box = fit(rect, frame.width, frame.height)
        if source.tile is None or source.tile_rect != box:
            # AREA averages when shrinking (no aliasing), at half the cost of the default.
            how = "AREA" if box.w < frame.width else "FAST_BILINEAR"
            source.tile = frame.reformat(
                width=box.w, height=box.h, format="yuv420p", interpolation=how
            )
            source.tile_rect = box
        # Black around the picture only (the picture covers the rest: half the copying).
        for band in _around(rect, box):
            canvas.fill(band, TILE_LUMA)
        canvas.put(source.tile, box.x, box.y)
        if name and source.label:
            key = (source.label, rect.w, rect.h)
            if source.name_tag is None or source.name_tag[0] != key:
                source.name_tag = (key, self._name_tag(source.label, rect))
            tag = source.name_tag[1]
            pad = _at(max(2, rect.h // 60))
            canvas.put_luma(tag, rect.x + pad, rect.y + rect.h - tag.height - pad)

    def _name_tag(self, label: str, rect: Rect) -> Image.Image:
        """White text on a black box, fitting the tile (a greyscale image, even sizes)."""
        pad = max(2, rect.h // 60)
        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        left, top, right, bottom = probe.textbbox((0, 0), label, font=self._font)
        w = min(rect.w - 2 * pad, right - left + 2 * pad)
        h = min(rect.h - 2 * pad, bottom - top + 2 * pad)
        tag = Image.new("L", (_even(w), _even(h)), 16)
        ImageDraw.Draw(tag).text((pad - left, pad - top), label, fill=235, font=self._font)
        return tag

    # -------------------------------------------------------------- audio out

    def _mix(self, wall: float) -> None:
        at = round((wall - self.started_at) * AUDIO_RATE)
        n = AUDIO_CHUNK
        left = array.array("f", bytes(4 * n))
        right = array.array("f", bytes(4 * n))
        sources = 0
        for source in self._audio.values():
            if not source.left:
                continue
            begin = at - source.start
            if begin + n <= 0 or begin >= len(source.left):
                continue
            lo, hi = max(0, begin), min(len(source.left), begin + n)
            part_l, part_r = source.left[lo:hi], source.right[lo:hi]
            dst = lo - begin
            if sources == 0:
                left[dst : dst + len(part_l)] = part_l
                right[dst : dst + len(part_r)] = part_r
            else:
                for i, value in enumerate(part_l):
                    left[dst + i] += value
                for i, value in enumerate(part_r):
                    right[dst + i] += value
            sources += 1
            # What is mixed is not needed again.
            if hi > 0:
                del source.left[:hi]
                del source.right[:hi]
                source.start += hi
        if sources > 1:
            left = array.array("f", (max(-1.0, min(1.0, v)) for v in left))
            right = array.array("f", (max(-1.0, min(1.0, v)) for v in right))
        frame = av.AudioFrame(format="fltp", layout=AUDIO_LAYOUT, samples=n)
        frame.planes[0].update(left.tobytes())
        frame.planes[1].update(right.tobytes())
        frame.sample_rate = AUDIO_RATE
        self.encoder.push_audio(frame, self._output_time(wall))
        self.stats.audio_out += 1


class _Canvas:
    """A yuv420p picture being put together in three byte arrays."""

    def __init__(self, width: int, height: int) -> None:
        template = av.VideoFrame(width, height, "yuv420p")
        self.width, self.height = width, height
        self.strides = [plane.line_size for plane in template.planes]
        self.planes = [
            bytearray([BACKGROUND_LUMA]) * template.planes[0].buffer_size,
            bytearray([128]) * template.planes[1].buffer_size,
            bytearray([128]) * template.planes[2].buffer_size,
        ]

    def fill(self, rect: Rect, luma: int) -> None:
        for index, value in enumerate((luma, 128, 128)):
            sub = 1 if index == 0 else 2
            w, stride, dst = rect.w // sub, self.strides[index], self.planes[index]
            row = bytes([value]) * w
            x, y = rect.x // sub, rect.y // sub
            for r in range(rect.h // sub):
                start = (y + r) * stride + x
                dst[start : start + w] = row

    def put(self, frame: av.VideoFrame, x: int, y: int) -> None:
        """Copy ``frame`` (yuv420p, even sizes) in at ``x``, ``y`` (even), clipped."""
        for index, plane in enumerate(frame.planes):
            sub = 1 if index == 0 else 2
            src, src_stride = memoryview(plane), plane.line_size
            dst, stride = self.planes[index], self.strides[index]
            px, py = x // sub, y // sub
            w = min(frame.width // sub, self.width // sub - px)
            rows = min(frame.height // sub, self.height // sub - py)
            for r in range(max(0, rows)):
                start = (py + r) * stride + px
                dst[start : start + w] = src[r * src_stride : r * src_stride + w]

    def put_luma(self, image: Image.Image, x: int, y: int) -> None:
        """A greyscale image (even sizes) at ``x``, ``y`` (even), without colour."""
        data, w = image.tobytes(), image.width
        for r in range(image.height):
            start = (y + r) * self.strides[0] + x
            self.planes[0][start : start + w] = data[r * w : (r + 1) * w]
        grey = bytes([128]) * (w // 2)
        for index in (1, 2):
            stride = self.strides[index]
            for r in range(image.height // 2):
                start = (y // 2 + r) * stride + x // 2
                self.planes[index][start : start + w // 2] = grey

    def frame(self) -> av.VideoFrame:
        out = av.VideoFrame(self.width, self.height, "yuv420p")
        for plane, data in zip(out.planes, self.planes, strict=True):
            plane.update(data)  # type: ignore[arg-type]  # any buffer
        return out


class _Tap(FrameTap):
    def __init__(self, compositor: Compositor, producer: Producer, group: SyncGroup) -> None:
        super().__init__(producer, group, compositor._on_frame)
        self._compositor = compositor

    def producer_closed(self) -> None:
        super().producer_closed()
        self._compositor._tap_closed(self)


def _font(size: int) -> Any:
    return sans(size)  # names in Cyrillic too, when such a face is installed


# ----------------------------------------------------------------------------- the MP4


class Mp4Sink:
    """The composed recording: the encoder's packets muxed as they are into an MP4 (written
    on its own thread, so the encoder never waits for the disk). ``duration`` and ``size``
    are known after :meth:`close`; ``error`` says why the file is unusable, if it is."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.duration = 0.0
        self.size = 0
        self.error: str | None = None
        self.video_packets = 0
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=2000)
        self._thread: threading.Thread | None = None
        self._first: float | None = None
        self._last = 0.0

    def open(self, fmt: StreamFormat) -> None:
        self._fmt = fmt
        self._thread = threading.Thread(target=self._run, name="composed-mp4", daemon=True)
        self._thread.start()

    def write(self, packet: av.Packet[Any], kind: str) -> None:
        try:
            self._queue.put_nowait((kind, packet))
        except queue.Full:
            self.error = self.error or "the disk fell behind: packets were lost"

    def close(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        fmt = self._fmt
        out: Any = None
        waiting_key = True
        try:
            out = av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
            video = out.add_mux_stream(
                fmt.video_codec, rate=fmt.fps, width=fmt.width, height=fmt.height
            )
            video.time_base = fmt.video_time_base
            audio = out.add_stream(fmt.audio_codec, rate=fmt.audio_rate, layout=fmt.audio_layout)
            audio.time_base = fmt.audio_time_base
            while (item := self._queue.get()) is not None:
                kind, packet = item
                if kind == "video":
                    if waiting_key and not packet.is_keyframe:
                        continue
                    waiting_key = False
                    self.video_packets += 1
                elif waiting_key:
                    continue  # sound starts with the first picture
                packet.stream = video if kind == "video" else audio
                if packet.pts is not None:
                    t = float(packet.pts * packet.time_base)
                    self._first = t if self._first is None else min(self._first, t)
                    end = t + float((packet.duration or 0) * packet.time_base)
                    self._last = max(self._last, end)
                out.mux(packet)
        except Exception as exc:
            logger.exception("writing the composed recording %s failed", self.path)
            self.error = str(exc)
            while self._queue.get() is not None:
                pass
        finally:
            if out is not None:
                try:
                    out.close()
                except Exception as exc:
                    logger.exception("closing the composed recording %s failed", self.path)
                    self.error = self.error or str(exc)
        self.size = self.path.stat().st_size if self.path.exists() else 0
        self.duration = max(0.0, self._last - (self._first or 0.0))
        if self.video_packets == 0:
            self.error = self.error or "nothing was composed"
