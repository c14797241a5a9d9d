"""Encode the composed stage once (H.264 + AAC) and hand the packets to every output.

The compositor (:mod:`webinar.broadcast.compositor`) pushes raw frames — video
``av.VideoFrame`` (yuv420p, the output size) and audio ``av.AudioFrame`` (48 kHz stereo
``fltp``) — with presentation times in seconds on one clock. :class:`Encoder` encodes them on
its own thread (``libx264`` and ``aac`` from PyAV's FFmpeg; never on the event loop) and gives
each packet to every :class:`PacketSink` — the composed recording (MP4), the live stream out
(RTMP) and HLS. A sink muxes pre-encoded packets and must not block the encoder (its own queue
and thread for I/O). How, with PyAV (checked: the MP4 decodes, video and sound):

- video: ``out.add_mux_stream("h264", rate=fps, width=w, height=h)``, ``time_base`` the
  format's; the H.264 stream carries its parameter sets in band (Annex B, SPS/PPS before every
  keyframe), from which MP4, FLV and fMP4 muxers make their headers — and a sink that starts
  later starts at a keyframe with them;
- audio: ``out.add_stream("aac", rate=48000, layout="stereo")`` (its codec context, opened by
  the container with the same settings, gives the AudioSpecificConfig the muxer needs), then
  ``packet.stream = that_stream; out.mux(packet)`` for the encoder's packets.

:class:`TestPattern` makes frames to feed an encoder without a room (tests, benchmarks): a
moving bar, a white flash and a 1 kHz beep at the start of every second (to measure audio/video
sync), and the frame's time burnt in as a row of bits (to measure glass-to-glass latency).
"""

from __future__ import annotations

import array
import fractions
import logging
import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import av

logger = logging.getLogger(__name__)

VIDEO_CODEC = "libx264"
AUDIO_CODEC = "aac"
AUDIO_RATE = 48_000
AUDIO_LAYOUT = "stereo"
#: Samples per AAC frame: what the encoder takes at a time.
AUDIO_FRAME_SAMPLES = 1024
#: Raw frames waiting for the encoder thread; beyond this new ones are dropped (and counted).
QUEUE_FRAMES = 120


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    width: int = 1280
    height: int = 720
    fps: int = 30
    video_kbit: int = 2500
    audio_kbit: int = 128
    preset: str = "veryfast"
    #: Seconds between keyframes (HLS segments and RTMP ingest want 1–2 s).
    keyframe_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """What a sink needs to create its streams for the encoder's packets."""

    width: int
    height: int
    fps: int
    video_codec: str  # "h264", parameter sets in band
    video_time_base: fractions.Fraction
    audio_codec: str  # "aac"
    audio_rate: int
    audio_layout: str
    audio_time_base: fractions.Fraction


class PacketSink(Protocol):
    """An output of the encoder. Every method is called on the encoder's thread, in order:
    ``open`` once, ``write`` for each packet (video and audio interleaved by time), ``close``
    once. ``write`` must return quickly."""

    def open(self, fmt: StreamFormat) -> None: ...

    def write(self, packet: av.Packet[Any], kind: str) -> None:
        """``kind`` is ``"video"`` or ``"audio"``; ``packet.pts``/``dts`` are in the
        format's time base of that kind; ``packet.is_keyframe`` marks video keyframes."""
        ...

    def close(self) -> None: ...


class Encoder:
    """One H.264 + AAC encoder on its own thread, its packets fanned out to sinks."""

    def __init__(self, settings: EncoderSettings = EncoderSettings()) -> None:
        self.settings = settings
        video = av.CodecContext.create(VIDEO_CODEC, "w")
        assert isinstance(video, av.VideoCodecContext)
        video.width, video.height, video.pix_fmt = settings.width, settings.height, "yuv420p"
        video.time_base = fractions.Fraction(1, 90_000)
        video.framerate = fractions.Fraction(settings.fps, 1)
        video.bit_rate = settings.video_kbit * 1000
        video.gop_size = max(1, round(settings.keyframe_seconds * settings.fps))
        video.options = {
            "preset": settings.preset,
            "tune": "zerolatency",
            "sc_threshold": "0",  # keyframes on the clock only (segments line up)
            "bf": "0",
        }
        video.open()
        audio = av.CodecContext.create(AUDIO_CODEC, "w")
        assert isinstance(audio, av.AudioCodecContext)
        audio.sample_rate, audio.layout, audio.format = AUDIO_RATE, AUDIO_LAYOUT, "fltp"
        audio.time_base = fractions.Fraction(1, AUDIO_RATE)
        audio.bit_rate = settings.audio_kbit * 1000
        audio.open()
        self._video, self._audio = video, audio
        self.format = StreamFormat(
            width=settings.width,
            height=settings.height,
            fps=settings.fps,
            video_codec="h264",
            video_time_base=video.time_base,
            audio_codec="aac",
            audio_rate=AUDIO_RATE,
            audio_layout=AUDIO_LAYOUT,
            audio_time_base=audio.time_base,
        )
        self._sinks: list[PacketSink] = []
        self._keyframes_at: list[float] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, av.VideoFrame | av.AudioFrame, float] | None] = (
            queue.Queue(QUEUE_FRAMES)
        )
        self._audio_fifo = av.AudioFifo()
        self.dropped = 0
        self.encoded_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="broadcast-encoder", daemon=True)
        self._thread.start()

    # -------------------------------------------------------------- sinks

    def add_sink(self, sink: PacketSink) -> None:
        """``sink`` gets packets from the next video keyframe on (``open`` first)."""
        with self._lock:
            pending = list(self._sinks)
        if sink not in pending:
            sink.open(self.format)
            with self._lock:
                self._sinks.append(sink)
            self._force_keyframe = True

    def request_keyframe(self, at: float | None = None) -> None:
        """The first picture shown at ``at`` seconds or later (the next one: None) is encoded
        as a keyframe: an output starts (again) there."""
        if at is None:
            self._force_keyframe = True
        else:
            with self._lock:
                self._keyframes_at.append(at)

    def remove_sink_in_turn(self, sink: PacketSink) -> None:
        """Remove ``sink`` once the frames pushed so far are encoded and given to it (a
        recording that stops gets its last pictures); blocks: call it off the event loop."""
        done = threading.Event()
        while self._thread.is_alive():
            try:
                self._queue.put(("remove", sink, done), timeout=0.2)  # type: ignore[arg-type]
                break
            except queue.Full:
                continue
        while self._thread.is_alive() and not done.wait(0.2):
            pass
        self.remove_sink(sink)  # the thread died first: removed here

    def remove_sink(self, sink: PacketSink) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)
            else:
                return
        sink.close()

    # -------------------------------------------------------------- frames in

    def push_video(self, frame: av.VideoFrame, at: float, *, block: bool = False) -> None:
        """A composed picture (the output size, yuv420p) shown at ``at`` seconds. Live frames
        never wait (a full queue drops them, counted in ``dropped``); ``block`` waits for room
        (files, tests and benchmarks that make frames faster than real time)."""
        self._put(("video", frame, at), block)

    def push_audio(self, frame: av.AudioFrame, at: float, *, block: bool = False) -> None:
        """Mixed sound (48 kHz stereo fltp) starting at ``at`` seconds (on the video's clock)."""
        self._put(("audio", frame, at), block)

    def _put(self, item: tuple[str, av.VideoFrame | av.AudioFrame, float], block: bool) -> None:
        if block:
            self._queue.put(item)
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Flush the encoders, close every sink, end the thread (blocks: call it off the loop)."""
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.2)
                break
            except queue.Full:
                continue  # the thread is busy (or died: the loop ends when it has)
        self._thread.join()

    # -------------------------------------------------------------- the thread

    _force_keyframe = False

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                kind, frame, at = item
                if kind == "remove":
                    self.remove_sink(frame)  # type: ignore[arg-type]
                    at.set()  # type: ignore[attr-defined]
                elif kind == "video":
                    assert isinstance(frame, av.VideoFrame)
                    self._encode_video(frame, at)
                else:
                    assert isinstance(frame, av.AudioFrame)
                    self._encode_audio(frame, at)
            self._send("video", self._video.encode(None))
            self._send("audio", self._audio.encode(None))
        except Exception:
            logger.exception("the broadcast encoder failed")
        finally:
            with self._lock:
                sinks, self._sinks = self._sinks, []
            for sink in sinks:
                try:
                    sink.close()
                except Exception:
                    logger.exception("closing a broadcast output failed")

    def _encode_video(self, frame: av.VideoFrame, at: float) -> None:
        frame.pts = round(at * 90_000)
        frame.time_base = self._video.time_base
        wanted = False
        if self._keyframes_at:
            with self._lock:
                wanted = any(t <= at for t in self._keyframes_at)
                if wanted:
                    self._keyframes_at = [t for t in self._keyframes_at if t > at]
        if self._force_keyframe or wanted:
            frame.pict_type = av.video.frame.PictureType.I
            self._force_keyframe = False
        else:  # the compositor pushes an unchanged picture again as the same frame object
            frame.pict_type = av.video.frame.PictureType.NONE
        self._send("video", self._video.encode(frame))
        self.encoded_seconds = max(self.encoded_seconds, at)

    _audio_next: int | None = None  # the sample the FIFO's input continues at
    _audio_pts = 0  # the sample of the FIFO's first one

    def _encode_audio(self, frame: av.AudioFrame, at: float) -> None:
        start = round(at * AUDIO_RATE)
        expected = self._audio_next
        if expected is None or abs(start - expected) > AUDIO_FRAME_SAMPLES:
            # The first sound, or a jump (frames dropped, a cut): the FIFO starts anew at
            # this time. Within a frame of where it was, the sound continues (times rounded
            # from seconds differ by a sample or two). Times are kept here, not by the FIFO
            # (which refuses any frame whose time does not continue exactly).
            self._audio_fifo = av.AudioFifo()
            self._audio_pts = start
            expected = start
        frame.pts = None
        self._audio_next = expected + frame.samples
        self._audio_fifo.write(frame)
        while self._audio_fifo.samples >= AUDIO_FRAME_SAMPLES:
            chunk = self._audio_fifo.read(AUDIO_FRAME_SAMPLES)
            assert chunk is not None
            chunk.pts = self._audio_pts
            chunk.time_base = self._audio.time_base
            self._audio_pts += AUDIO_FRAME_SAMPLES
            self._send("audio", self._audio.encode(chunk))

    def _send(self, kind: str, packets: list[av.Packet[Any]]) -> None:
        if not packets:
            return
        with self._lock:
            sinks = list(self._sinks)
        for packet in packets:
            for n, sink in enumerate(sinks):
                try:
                    # each sink its own packet: muxing sets the packet's stream and may
                    # rescale its times, on the sink's own thread
                    sink.write(packet if n == 0 else _copy(packet), kind)
                except Exception:
                    logger.exception("a broadcast output failed; it is dropped")
                    self.remove_sink(sink)


def _copy(packet: av.Packet[Any]) -> av.Packet[Any]:
    copy = av.Packet(bytes(packet))
    copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
    copy.time_base = packet.time_base
    copy.is_keyframe = packet.is_keyframe
    return copy


class TestPattern:
    """Frames for an encoder without a room: see the module's docstring."""

    __test__ = False  # not a pytest class

    def __init__(self, width: int = 1280, height: int = 720, fps: int = 30) -> None:
        self.width, self.height, self.fps = width, height, fps

    def video(self, seconds: float) -> Iterator[tuple[av.VideoFrame, float]]:
        """``(frame, at)`` for ``seconds`` of video: a grey picture with a bar moving across,
        the whole picture white in the first frame of each second, and the frame's number
        written as 16 black/white blocks (most significant first) along the top edge."""
        w, h = self.width, self.height
        block = max(4, w // 32)
        for n in range(round(seconds * self.fps)):
            y = bytearray([80]) * (w * h)
            if n % self.fps == 0:
                y = bytearray([235]) * (w * h)
            else:
                x0 = (n * 8) % max(1, w - 40)
                for row in range(h // 3, h // 3 + 40):
                    y[row * w + x0 : row * w + x0 + 40] = b"\xeb" * 40
            for bit in range(16):
                value = 235 if (n >> (15 - bit)) & 1 else 16
                for row in range(block):
                    start = row * w + bit * block
                    y[start : start + block] = bytes([value]) * block
            frame = av.VideoFrame(w, h, "yuv420p")
            frame.planes[0].update(bytes(y))
            frame.planes[1].update(bytes([128]) * frame.planes[1].buffer_size)
            frame.planes[2].update(bytes([128]) * frame.planes[2].buffer_size)
            yield frame, n / self.fps

    @staticmethod
    def frame_number(frame: av.VideoFrame) -> int:
        """The number :meth:`video` wrote into ``frame`` (after encoding and decoding)."""
        plane = frame.planes[0]
        w = frame.width
        block = max(4, w // 32)
        data = bytes(plane)
        number = 0
        for bit in range(16):
            row, col = block // 2, bit * block + block // 2
            number = (number << 1) | (data[row * plane.line_size + col] > 128)
        return number

    def audio(self, seconds: float) -> Iterator[tuple[av.AudioFrame, float]]:
        """``(frame, at)`` for ``seconds`` of sound: silence with a 100 ms 1 kHz beep at the
        start of every second (with the white flash of :meth:`video`)."""
        per = 960  # 20 ms
        total = round(seconds * AUDIO_RATE)
        for start in range(0, total, per):
            samples = []
            for i in range(start, min(start + per, total)):
                t = i / AUDIO_RATE
                beep = (t % 1.0) < 0.1
                samples.append(0.5 * math.sin(2 * math.pi * 1000 * t) if beep else 0.0)
            mono = array.array("f", samples).tobytes()
            frame = av.AudioFrame(format="fltp", layout=AUDIO_LAYOUT, samples=len(samples))
            frame.planes[0].update(mono)
            frame.planes[1].update(mono)
            frame.sample_rate = AUDIO_RATE
            yield frame, start / AUDIO_RATE
