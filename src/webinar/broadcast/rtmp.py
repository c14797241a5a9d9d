"""The live stream out: the encoder's packets as FLV over RTMP or RTMPS to an ingest
(YouTube, Facebook, any RTMP server), reconnecting when the connection breaks.

:class:`RtmpSink` is a :class:`~webinar.broadcast.encoder.PacketSink`: ``write`` runs on the
encoder's thread and only copies the packet into a bounded queue; a thread of its own connects
(PyAV's FFmpeg ``flv`` muxer over ``rtmp://`` or ``rtmps://``), sends, and on any error closes
the connection and tries again after a back-off (1 s, 2 s, 4 s … at most
:data:`MAX_BACKOFF_S`, with jitter), forever until :meth:`RtmpSink.close`. Every connection
starts at a video keyframe (the encoder makes one every ``keyframe_seconds``; its parameter
sets are in band) with timestamps from zero, as an ingest expects of a new publish. When the
network is slower than the stream the queue fills; it is then emptied and sending resumes at
the next keyframe (the loss counted in ``dropped_packets``), so a live stream never falls
further behind than :data:`MAX_QUEUE_SECONDS`.

The state (``connecting``, ``live``, ``reconnecting``, ``stopped``), the bitrate sent, the
number of reconnects and the last error are in :meth:`RtmpSink.status`; ``on_status`` (if given)
is called from the sink's thread on every change of state — hand it to the event loop with
``loop.call_soon_threadsafe``.

The stream key is a secret: it is never logged nor put in an error message (:func:`redact`).
"""

from __future__ import annotations

import collections
import contextlib
import fractions
import logging
import random
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av

from webinar.broadcast.encoder import StreamFormat
from webinar.i18n import _

logger = logging.getLogger(__name__)

SCHEMES = ("rtmp", "rtmps")
MAX_URL_LENGTH = 500
MAX_KEY_LENGTH = 500
#: Back-off between connection attempts: doubles from the first to the last.
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
#: Packets waiting to be sent, in seconds of stream; beyond it the backlog is dropped.
MAX_QUEUE_SECONDS = 6.0
#: A send blocked longer than this is reported as an error in the status. (PyAV opens the
#: output's URL without options, so FFmpeg's ``rw_timeout`` cannot be set; its TCP connect
#: gives up after 5 s on its own, and a reset or closed connection fails the send at once.)
IO_TIMEOUT_S = 10.0
#: ``close`` waits this long for the thread (a send stalled on a dead ingest is left behind).
CLOSE_WAIT_S = 3.0
#: The bitrate shown is measured over this window.
BITRATE_WINDOW_S = 5.0

STATES = ("connecting", "live", "reconnecting", "stopped")


class IngestError(ValueError):
    """An ingest URL or stream key that cannot be used (the message says why)."""


def validate_ingest(url: str, key: str) -> tuple[str, str]:
    """``(url, key)`` cleaned, or :class:`IngestError`. The URL is the server's
    (``rtmp[s]://host[:port]/app``, as YouTube or Facebook show it), the key what they call
    the stream key (appended as the last path segment)."""
    url, key = url.strip(), key.strip()
    if not url:
        raise IngestError(_("the ingest URL is empty"))
    if len(url) > MAX_URL_LENGTH:
        raise IngestError(
            _("the ingest URL is longer than %(count)s characters") % {"count": MAX_URL_LENGTH}
        )
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise IngestError(_("the ingest URL contains spaces or control characters"))
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise IngestError(_("the ingest URL must start with rtmp:// or rtmps://"))
    if not parts.hostname:
        raise IngestError(_("the ingest URL has no host"))
    try:
        parts.port  # noqa: B018 — raises on a bad port
    except ValueError as exc:
        raise IngestError(_("the ingest URL has a bad port")) from exc
    if parts.username or parts.password:
        raise IngestError(_("the ingest URL must not contain a user name or password"))
    if not parts.path.strip("/"):
        raise IngestError(_("the ingest URL has no application path (such as /live2)"))
    if parts.query or parts.fragment:
        raise IngestError(_("the ingest URL must not have a query or fragment"))
    if not key:
        raise IngestError(_("the stream key is empty"))
    if len(key) > MAX_KEY_LENGTH:
        raise IngestError(
            _("the stream key is longer than %(count)s characters") % {"count": MAX_KEY_LENGTH}
        )
    if any(ord(c) < 33 or ord(c) == 127 or c in "/#" for c in key):
        raise IngestError(_("the stream key contains spaces, control characters, / or #"))
    return url.rstrip("/"), key


def target(url: str, key: str) -> str:
    """Where FFmpeg publishes: the URL with the key as its last segment."""
    return f"{url.rstrip('/')}/{key}"


def redact(text: str, key: str) -> str:
    """``text`` with the stream key replaced (for logs and error messages)."""
    return text.replace(key, "[key]") if key else text


@dataclass(frozen=True, slots=True)
class RtmpStatus:
    state: str
    #: Kilobits per second sent over the last :data:`BITRATE_WINDOW_S` seconds.
    bitrate_kbit: int
    #: Connections made after the first (each one a reconnect).
    reconnects: int
    #: The last error (the key redacted), ``None`` while none happened since the last
    #: successful connection.
    error: str | None
    #: Packets dropped because the network was slower than the stream.
    dropped_packets: int
    bytes_sent: int
    #: Seconds on air in the current connection (0 when not live).
    live_seconds: float

    def as_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "bitrate_kbit": self.bitrate_kbit,
            "reconnects": self.reconnects,
            "error": self.error,
            "dropped_packets": self.dropped_packets,
            "bytes_sent": self.bytes_sent,
            "live_seconds": round(self.live_seconds, 1),
        }


@dataclass(slots=True)
class _Item:
    kind: str
    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool


class _Broken(Exception):
    """The connection failed (the message says how)."""


class RtmpSink:
    """A :class:`~webinar.broadcast.encoder.PacketSink` publishing to ``url``/``key``."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        on_status: Callable[[RtmpStatus], None] | None = None,
        first_backoff: float = FIRST_BACKOFF_S,
        max_backoff: float = MAX_BACKOFF_S,
        io_timeout: float = IO_TIMEOUT_S,
    ) -> None:
        self.url, self.key = validate_ingest(url, key)
        self._on_status = on_status
        self._first_backoff, self._max_backoff = first_backoff, max_backoff
        self._io_timeout = io_timeout
        self._cond = threading.Condition()
        self._queue: collections.deque[_Item] = collections.deque()
        self._closing = False
        self._format: StreamFormat | None = None
        self._thread: threading.Thread | None = None
        self._state = "connecting"
        self._error: str | None = None
        self._reconnects = 0
        self._connections = 0
        self._dropped = 0
        self._bytes = 0
        self._sent: collections.deque[tuple[float, int]] = collections.deque()
        self._live_since: float | None = None
        self._max_queue = 1000
        self._muxing_since: float | None = None
        self._resync = False  # after dropping a backlog: wait for the next keyframe

    # ------------------------------------------------------------ PacketSink (encoder thread)

    def open(self, fmt: StreamFormat) -> None:
        self._format = fmt
        # video frames and ~47 AAC frames a second
        self._max_queue = max(64, round(MAX_QUEUE_SECONDS * (fmt.fps + fmt.audio_rate / 1024)))
        self._thread = threading.Thread(target=self._run, name="broadcast-rtmp", daemon=True)
        self._thread.start()

    def write(self, packet: av.Packet[Any], kind: str) -> None:
        item = _Item(kind, bytes(packet), packet.pts, packet.dts, bool(packet.is_keyframe))
        with self._cond:
            if self._closing:
                return
            if len(self._queue) >= self._max_queue:
                # the network is slower than the stream: drop the backlog, go on from a keyframe
                self._dropped += len(self._queue)
                self._queue.clear()
                self._resync = True
            if self._resync:
                if not (kind == "video" and item.keyframe):
                    self._dropped += 1
                    return
                self._resync = False
            self._queue.append(item)
            self._cond.notify()

    def close(self) -> None:
        """Stop sending and end the thread (waits at most :data:`CLOSE_WAIT_S`)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(CLOSE_WAIT_S)
        self._set_state("stopped")

    # ------------------------------------------------------------ status

    def status(self) -> RtmpStatus:
        now = time.monotonic()
        with self._cond:
            while self._sent and self._sent[0][0] < now - BITRATE_WINDOW_S:
                self._sent.popleft()
            window = sum(size for _at, size in self._sent)
            span = BITRATE_WINDOW_S
            if self._live_since is not None:
                span = min(span, max(0.5, now - self._live_since))
            error = self._error
            if self._muxing_since is not None and now - self._muxing_since > self._io_timeout:
                # FFmpeg's RTMP has no write timeout PyAV can set: a stalled ingest is reported
                error = f"the ingest has accepted no data for {now - self._muxing_since:.0f} s"
            return RtmpStatus(
                state=self._state,
                bitrate_kbit=round(window * 8 / 1000 / span) if self._state == "live" else 0,
                reconnects=self._reconnects,
                error=error,
                dropped_packets=self._dropped,
                bytes_sent=self._bytes,
                live_seconds=now - self._live_since if self._live_since is not None else 0.0,
            )

    def _set_state(self, state: str, error: str | None = None) -> None:
        with self._cond:
            changed = state != self._state or (error is not None and error != self._error)
            self._state = state
            if error is not None:
                self._error = error
            elif state == "live":
                self._error = None
            self._live_since = time.monotonic() if state == "live" else None
        if changed and self._on_status is not None:
            try:
                self._on_status(self.status())
            except Exception:
                logger.exception("an RTMP status callback failed")

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        backoff = self._first_backoff
        while not self._stopping():
            self._set_state("connecting" if self._connections == 0 else "reconnecting")
            started = time.monotonic()
            try:
                self._connection()
            except _Broken as exc:
                message = redact(str(exc), self.key)
                logger.warning("live stream to %s broke: %s", redact(self.url, self.key), message)
                if self._stopping():
                    break
                if time.monotonic() - started > 30:
                    backoff = self._first_backoff  # it had been working: try again soon
                self._set_state("reconnecting", message)
                with self._cond:
                    self._cond.wait_for(
                        lambda: self._closing, timeout=backoff * random.uniform(0.8, 1.2)
                    )
                    self._dropped += len(self._queue)
                    self._queue.clear()
                backoff = min(self._max_backoff, backoff * 2)
            except Exception:
                logger.exception("the live stream out failed")
                self._set_state("reconnecting", "internal error")
                break

    def _stopping(self) -> bool:
        with self._cond:
            return self._closing

    def _next(self) -> _Item | None:
        with self._cond:
            self._cond.wait_for(lambda: self._closing or bool(self._queue))
            if self._closing:
                return None
            return self._queue.popleft()

    def _connection(self) -> None:
        """One publish: a child process connects and sends (:mod:`.rtmp_push`); this thread
        muxes FLV into its stdin. A child that stalls is killed, which breaks the pipe."""
        fmt = self._format
        assert fmt is not None
        with self._cond:
            self._muxing_since = None
        child = subprocess.Popen(
            [sys.executable, "-m", "webinar.broadcast.rtmp_push"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        errors: list[bytes] = []
        done = threading.Event()
        threading.Thread(target=self._listen, args=(child, done), daemon=True).start()
        threading.Thread(
            target=lambda: errors.append(child.stderr.read() if child.stderr else b""),
            daemon=True,
        ).start()
        why: list[str] = []  # set when the watchdog killed it
        threading.Thread(target=self._watch, args=(child, done, why), daemon=True).start()
        try:
            child.stdin.write(target(self.url, self.key).encode() + b"\n")
            out = av.open(child.stdin, "w", format="flv")
            try:
                video = out.add_mux_stream(
                    fmt.video_codec, rate=fmt.fps, width=fmt.width, height=fmt.height
                )
                video.time_base = fmt.video_time_base
                audio = out.add_stream(fmt.audio_codec, rate=fmt.audio_rate)
                audio.time_base = fmt.audio_time_base
                self._send_all(out, video, audio, fmt)
            finally:
                with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                    out.close()
            with contextlib.suppress(OSError):
                child.stdin.close()
            if self._stopping():
                return
        except (av.FFmpegError, OSError, ValueError) as exc:
            if self._stopping():
                return
            self._end(child)
            said = b"".join(errors).decode("utf-8", "replace").strip().splitlines()
            raise _Broken(why[0] if why else said[-1] if said else str(exc)) from exc
        finally:
            done.set()
            self._end(child)

    def _end(self, child: subprocess.Popen[bytes]) -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(2)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def _listen(self, child: subprocess.Popen[bytes], done: threading.Event) -> None:
        """The child's ``connected``: the publish is on air."""
        assert child.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for line in child.stdout:
                if line.strip() == b"connected" and not done.is_set():
                    self._connections += 1
                    if self._connections > 1:
                        with self._cond:
                            self._reconnects += 1
                    self._set_state("live")

    def _watch(self, child: subprocess.Popen[bytes], done: threading.Event, why: list[str]) -> None:
        """Kill a child that stalls: no connection within the timeout, or a send that waits
        longer than it (its pipe then breaks, and the sink connects again)."""
        started = time.monotonic()
        while not done.wait(0.5):
            now = time.monotonic()
            with self._cond:
                muxing = self._muxing_since
            stalled = muxing is not None and now - muxing > self._io_timeout
            slow = self._state != "live" and now - started > self._io_timeout + 5
            if child.poll() is not None or stalled or slow:
                if stalled or slow:
                    why.append(f"the ingest did not answer within {round(self._io_timeout)} s")
                child.kill()
                return

    def _send_all(
        self,
        out: av.container.OutputContainer,
        video: av.stream.Stream,
        audio: av.stream.Stream,
        fmt: StreamFormat,
    ) -> None:
        # a new publish starts at a keyframe, with timestamps from zero
        start: float | None = None
        while True:
            item = self._next()
            if item is None:
                return
            base = fmt.video_time_base if item.kind == "video" else fmt.audio_time_base
            at = float((item.pts if item.pts is not None else 0) * base)
            if start is None:
                if not (item.kind == "video" and item.keyframe):
                    continue
                start = at
            if at < start:
                continue
            offset = round(start / base)
            packet = av.Packet(item.data)
            packet.stream = video if item.kind == "video" else audio
            packet.time_base = fractions.Fraction(base)
            packet.pts = item.pts - offset if item.pts is not None else None
            packet.dts = item.dts - offset if item.dts is not None else None
            packet.is_keyframe = item.keyframe
            with self._cond:
                self._muxing_since = time.monotonic()
            out.mux(packet)
            with self._cond:
                self._muxing_since = None
                self._bytes += len(item.data)
                self._sent.append((time.monotonic(), len(item.data)))
