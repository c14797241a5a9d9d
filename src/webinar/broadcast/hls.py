"""HLS out of the broadcast encoder: fMP4 segments of one keyframe interval and a sliding
playlist, kept in memory for the HTTP layer to serve (webinar.http.hls).

:class:`HlsSink` is a :class:`~webinar.broadcast.encoder.PacketSink`. It muxes the encoder's
packets as they are into one fragmented MP4 (``empty_moov`` + a fragment at every video
keyframe, ``default_base_moof``) written to an in-memory stream, and cuts what FFmpeg writes
at the top-level boxes: ``ftyp`` + ``moov`` is the init section (``init-<stream>.mp4``), each
``moof`` + ``mdat`` one media segment (``<stream>-<n>.m4s``, n counting from 0; ``stream`` a
random id of this sink, so a URL never names two different bytes and caches may keep them).
A fragment is complete when the next keyframe starts, so a segment is published one keyframe
interval after its first frame (set ``EncoderSettings.keyframe_seconds`` to 1–2 s). The
newest ``window`` segments are listed in the playlist (HLS version 7, ``EXT-X-MAP``); older
ones are dropped from memory a little later than from the playlist, so a player that just read
the playlist still gets them.

Everything here runs on the encoder's thread (muxing into memory never blocks) except the
read side (:meth:`HlsSink.playlist`, :meth:`HlsSink.init`, :meth:`HlsSink.segment`), which the
event loop calls: one lock guards the published state, held only to copy references.
"""

from __future__ import annotations

import io
import logging
import math
import os
import queue
import re
import secrets
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from webinar.broadcast.encoder import StreamFormat

logger = logging.getLogger(__name__)

#: The media playlist's file name (in URLs and in a mirror directory).
PLAYLIST = "index.m3u8"
#: The names of an output's files: what may be asked for, and read from a mirror directory.
FILE_NAME = re.compile(r"index\.m3u8|init-[0-9a-f]{8}\.mp4|[0-9a-f]{8}-[0-9]{1,9}\.m4s")
#: Segments listed in the playlist (a sliding window).
WINDOW_SEGMENTS = 6
#: Segments kept beyond the window for players that read the playlist a moment ago.
GRACE_SEGMENTS = 3


@dataclass(frozen=True, slots=True)
class Segment:
    number: int
    duration: float
    data: bytes
    #: Wall clock (time.time()) when it became available.
    published: float


class _Boxes(io.RawIOBase):
    """A write-only stream that splits what the MP4 muxer writes into top-level boxes."""

    def __init__(self, on_box: Any) -> None:
        super().__init__()
        self._pending = bytearray()
        self._on_box = on_box

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._pending += chunk
        while len(self._pending) >= 8:
            size, kind = struct.unpack(">I4s", self._pending[:8])
            if size == 1 and len(self._pending) >= 16:
                size = struct.unpack(">Q", self._pending[8:16])[0]
            elif size == 1:
                break
            if size < 8:  # size 0 ("to the end") is never written by the fragmenting muxer
                raise ValueError(f"unexpected MP4 box size {size}")
            if len(self._pending) < size:
                break
            box = bytes(self._pending[:size])
            del self._pending[:size]
            self._on_box(kind.decode("latin-1"), box)
        return len(chunk)


class HlsSink:
    """A sliding-window fMP4 HLS output of an :class:`~webinar.broadcast.encoder.Encoder`."""

    def __init__(self, window: int = WINDOW_SEGMENTS, directory: Path | None = None) -> None:
        """``directory``: also write the files there (init section, segments, ``index.m3u8``),
        for the other processes of the server (:class:`HlsStreams`), on a thread of its own."""
        if window < 2:
            raise ValueError("an HLS window needs at least 2 segments")
        self.window = window
        self._mirror = _Mirror(directory) if directory is not None else None
        #: Names this output's files apart from an earlier or later one of the same room.
        self.stream_id = secrets.token_hex(4)
        self._lock = threading.Lock()
        self._init: bytes | None = None
        self._segments: list[Segment] = []
        self._ended = False
        self._header = bytearray()
        self._fragment = bytearray()
        self._next_number = 0
        self._fragment_start: float | None = None
        self._last_video_at = 0.0
        self._frame_seconds = 0.0
        self._target = 1
        self.started_at: float | None = None

    # -------------------------------------------------------------- encoder thread

    def open(self, fmt: StreamFormat) -> None:
        self._frame_seconds = 1 / fmt.fps
        self._out = av.open(
            _Boxes(self._on_box),
            "w",
            format="mp4",
            options={
                "movflags": "empty_moov+default_base_moof+frag_keyframe+skip_trailer",
            },
        )
        self._video = self._out.add_mux_stream(
            fmt.video_codec, rate=fmt.fps, width=fmt.width, height=fmt.height
        )
        self._video.time_base = fmt.video_time_base
        self._audio = self._out.add_stream(fmt.audio_codec, rate=fmt.audio_rate)
        self._audio.time_base = fmt.audio_time_base
        self._started = False

    def write(self, packet: av.Packet[Any], kind: str) -> None:
        if kind == "video":
            if not self._started:
                if not packet.is_keyframe:
                    return  # start at a keyframe (its parameter sets make the init section)
                self._started = True
                self.started_at = time.time()
            if packet.pts is not None and packet.time_base is not None:
                at = float(packet.pts * packet.time_base)
                if packet.is_keyframe:
                    self._keyframe_at(at)
                self._last_video_at = at
            packet.stream = self._video
        else:
            if not self._started:
                return
            packet.stream = self._audio
        self._out.mux(packet)

    def close(self) -> None:
        if getattr(self, "_out", None) is not None:
            try:
                self._out.close()  # writes the last fragment
            finally:
                end = self._last_video_at + self._frame_seconds
                self._finish_fragment(end)
                with self._lock:
                    self._ended = True
                if self._mirror is not None:
                    self._mirror.put(PLAYLIST, (self.playlist() or "").encode())
        if self._mirror is not None:
            self._mirror.stop()

    def _keyframe_at(self, at: float) -> None:
        if self._fragment_start is None:
            self._fragment_start = at
            return
        # The muxer writes the previous fragment when this keyframe comes in (just below,
        # inside mux()): remember where the fragment ended so its duration is known.
        self._pending_end = at

    _pending_end: float | None = None

    def _on_box(self, kind: str, box: bytes) -> None:
        if kind in ("ftyp", "moov"):
            self._header += box
            if kind == "moov":
                with self._lock:
                    self._init = bytes(self._header)
                if self._mirror is not None:
                    self._mirror.put(f"init-{self.stream_id}.mp4", self._init)
            return
        if kind == "moof" and self._fragment:
            self._finish_fragment(self._pending_end)
        self._fragment += box
        if kind == "mdat" and self._pending_end is not None:
            self._finish_fragment(self._pending_end)

    def _finish_fragment(self, end: float | None) -> None:
        if not self._fragment or self._fragment_start is None:
            return
        stop = end if end is not None else self._last_video_at + self._frame_seconds
        duration = max(self._frame_seconds, stop - self._fragment_start)
        segment = Segment(self._next_number, duration, bytes(self._fragment), time.time())
        self._next_number += 1
        self._fragment = bytearray()
        self._fragment_start = stop
        self._pending_end = None
        with self._lock:
            self._segments.append(segment)
            self._target = max(self._target, math.ceil(duration))
            dropped = self._segments[: max(0, len(self._segments) - self.window - GRACE_SEGMENTS)]
            del self._segments[: len(dropped)]
        if self._mirror is not None:
            self._mirror.put(self.segment_name(segment.number), segment.data)
            for old in dropped:
                self._mirror.delete(self.segment_name(old.number))
            self._mirror.put(PLAYLIST, (self.playlist() or "").encode())

    # -------------------------------------------------------------- read side (any thread)

    @property
    def ready(self) -> bool:
        """Whether a player can start (the init section and a segment are there)."""
        with self._lock:
            return self._init is not None and bool(self._segments)

    def file(self, name: str) -> bytes | None:
        """The playlist, the init section or a segment by its name in URLs (None if this
        output has no such file, or not now)."""
        if name == PLAYLIST:
            text = self.playlist()
            return text.encode() if text is not None else None
        if name == f"init-{self.stream_id}.mp4":
            return self.init()
        prefix = f"{self.stream_id}-"
        if name.startswith(prefix) and name.endswith(".m4s") and name[len(prefix) : -4].isdigit():
            found = self.segment(int(name[len(prefix) : -4]))
            return found.data if found is not None else None
        return None

    def init(self) -> bytes | None:
        with self._lock:
            return self._init

    def segment(self, number: int) -> Segment | None:
        with self._lock:
            for segment in self._segments:
                if segment.number == number:
                    return segment
        return None

    def segment_name(self, number: int) -> str:
        return f"{self.stream_id}-{number}.m4s"

    def newest(self) -> Segment | None:
        with self._lock:
            return self._segments[-1] if self._segments else None

    def playlist(self, suffix: str = "") -> str | None:
        """The media playlist (None before the first segment); ``suffix`` is appended to every
        URI (e.g. a query string), which are otherwise relative: ``init-<stream>.mp4``,
        ``<stream>-<n>.m4s``."""
        with self._lock:
            if self._init is None or not self._segments:
                return None
            listed = self._segments[-self.window :]
            target, ended = self._target, self._ended
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            f"#EXT-X-TARGETDURATION:{target}",
            f"#EXT-X-MEDIA-SEQUENCE:{listed[0].number}",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            f'#EXT-X-MAP:URI="init-{self.stream_id}.mp4{suffix}"',
        ]
        for segment in listed:
            lines.append(f"#EXTINF:{segment.duration:.3f},")
            lines.append(f"{self.segment_name(segment.number)}{suffix}")
        if ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


class _Mirror:
    """Writes an output's files to a directory on a thread of its own (each file whole: a
    temporary name, then renamed), deletes those that left the window."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._queue: queue.Queue[tuple[str, bytes | None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="hls-mirror", daemon=True)
        self._thread.start()

    def put(self, name: str, data: bytes) -> None:
        self._queue.put((name, data))

    def delete(self, name: str) -> None:
        self._queue.put((name, None))

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for old in self.directory.iterdir():  # an earlier output's files
                if FILE_NAME.fullmatch(old.name):
                    old.unlink(missing_ok=True)
        except OSError:
            logger.exception("cannot prepare the HLS folder %s", self.directory)
        while (item := self._queue.get()) is not None:
            name, data = item
            path = self.directory / name
            try:
                if data is None:
                    path.unlink(missing_ok=True)
                    continue
                temporary = path.with_name(f".{name}.tmp")
                temporary.write_bytes(data)
                os.replace(temporary, path)
            except OSError:
                logger.exception("cannot write the HLS file %s", path)


class HlsStreams:
    """The HLS outputs of this server's rooms, by event: what ``/e/<event>/hls/...`` serves.

    The process that runs a room's output (the compositor's, or a test's) makes its sink with
    :meth:`start` and ends it with :meth:`withdraw`; it serves from memory. With ``directory``
    (the shared folder, ``<shared_dir>/hls``) the sink also writes its files to
    ``<directory>/<event_id>/``, and the other processes of the server (workers, nodes sharing
    the folder) serve them from there."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._sinks: dict[str, HlsSink] = {}

    def start(self, event_id: str, window: int = WINDOW_SEGMENTS) -> HlsSink:
        """A new sink for ``event_id``'s output, published (add it to the Encoder)."""
        folder = self.directory / event_id if self.directory is not None else None
        sink = HlsSink(window, directory=folder)
        self.publish(event_id, sink)
        return sink

    def publish(self, event_id: str, sink: HlsSink) -> None:
        self._sinks[event_id] = sink

    def withdraw(self, event_id: str, sink: HlsSink | None = None) -> None:
        """Stop serving ``event_id``'s output from memory (only if it is still ``sink``, when
        given); its mirrored files stay, the playlist ended, until the next output."""
        if sink is None or self._sinks.get(event_id) is sink:
            self._sinks.pop(event_id, None)

    def get(self, event_id: str) -> HlsSink | None:
        return self._sinks.get(event_id)

    def read(self, event_id: str, name: str) -> bytes | None:
        """A file of ``event_id``'s output (``index.m3u8``, the init section, a segment): from
        this process's sink, else from the shared folder; None if neither has it. Blocking
        (the folder): call it off the event loop when the sink is not here."""
        if not FILE_NAME.fullmatch(name):
            return None
        sink = self._sinks.get(event_id)
        if sink is not None:
            return sink.file(name)
        if self.directory is None or not event_id.isdigit():
            return None
        try:
            return (self.directory / event_id / name).read_bytes()
        except OSError:
            return None
