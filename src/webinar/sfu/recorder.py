"""Recording without transcoding: forwarded RTP -> frames -> WebM, no decoder, no encoder.

The recorder is just another consumer of the forwarding engine: each recorded
producer gets a :class:`RecorderTrack`, which the producer feeds with
``forward(mp)`` exactly as it feeds a subscriber's :class:`~webinar.sfu.Consumer`.

* **Depacketizing.** VP8 (RFC 7741): packets are put back in sequence order, the
  payload descriptor is stripped, a frame ends at the marker bit; recording starts
  at a keyframe, and after a loss that retransmission did not repair it waits for
  (and asks for) the next keyframe. Opus (RFC 7587): one packet is one frame.
* **Time.** Frame times come from the publisher's RTCP sender reports (RTP -> NTP),
  made relative to our clock once per feed, never from arrival times; so the
  camera and the microphone of one publisher stay in sync. Frames wait (bounded)
  for the first sender report; without one, arrival time is the fallback.
* **Files.** One WebM per *feed* (a publisher's camera + microphone; a screen share
  + its audio), each source its own track. A new producer for a source the feed
  already has (a reconnect, a camera switch) continues the same track; a source
  that was not in the file when it was opened starts a new part.
* **Simulcast.** A recorder's track takes the best encoding the publisher sends (the
  largest flowing one that has sender reports) and follows it: up when a larger one starts
  (a browser's top encoding starts seconds after the others), down when the one taken
  stops; always at a keyframe of the next one, which it asks for. The picture size then
  changes at that keyframe inside the same VP8 track, and the frames are timed by the new
  encoding's own sender reports (one timeline, in sync with the sound).
* **Pausing.** While paused (presenters-only mode) nothing is written and the
  recording clock stands still: the file plays on without the paused span.
* **I/O.** Muxing and file writes run in one writer thread fed by a bounded queue;
  the event loop only depacketizes. A full queue drops (and counts) frames.

This module imports nothing from rooms or signalling.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import fractions
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from ..tasks import stop_task
from .rtp import NTP_EPOCH_OFFSET, MediaPacket, parse_vp8_descriptor, vp8_frame_size
from .simulcast import STALLED_AFTER
from .types import MediaKind, new_id

if TYPE_CHECKING:
    from .producer import Producer

logger = logging.getLogger(__name__)

MAX_PENDING_PACKETS = 512  # video packets held for reordering/retransmission per track
MAX_FRAME_WAIT = 0.5  # seconds an incomplete video frame may wait for a retransmission
SENDER_REPORT_WAIT = 6.0  # seconds frames wait for the first RTCP sender report
MAX_BUFFERED_FRAMES = 1500  # per track while waiting for a sender report or a file
GATHER_WINDOW = 2.0  # seconds a new feed waits for all its tracks before its file opens
WRITE_QUEUE_SIZE = 4096  # frames in flight to the writer thread
# Seconds between keyframe requests while waiting for one, as for subscribers: the
# producer already holds a request that comes inside the publisher's keyframe window and
# sends it when the window ends, so a retry only covers a request lost on the way.
KEYFRAME_RETRY = 1.0
#: Seconds between two looks at which simulcast encoding fits a tap's wanted size.
CHOICE_INTERVAL = 1.0
#: Seconds without a packet of the encoding a best-following tap takes, while a lower one
#: has just sent, after which it moves down at once (not waiting for the encoding to
#: count as stopped): the picture then stands still for this and a keyframe at most. The
#: ingress's own rule (:meth:`~webinar.sfu.simulcast.SimulcastIngress.stalled`), which moves
#: subscribers off such an encoding too.
BEST_STALL = STALLED_AFTER
#: Seconds a switch to another encoding waits for its keyframe before asking again.
SWITCH_TIMEOUT = 2.0
#: Seconds between the recorder's looks at its feeds and tracks (:meth:`Recorder.tick`).
TICK_INTERVAL = 0.25
TIME_BASE = fractions.Fraction(1, 1000)  # WebM's millisecond ticks


class RecorderSource(enum.StrEnum):
    """How a producer's payload is depacketized."""

    VP8 = "video/vp8"
    OPUS = "audio/opus"


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes
    rtp_timestamp: int
    keyframe: bool
    arrived: float  # time.time() when its last packet arrived


# ----------------------------------------------------------------------------- depacketizers


class Vp8Depacketizer:
    """RTP packets of one VP8 stream in, whole frames out (in decode order).

    A frame is emitted only when all its packets, from the one that starts
    partition 0 up to the one with the marker bit, are present without a gap.
    The first frame is a keyframe; after an unrepaired loss the next one is too.
    """

    def __init__(self, on_need_keyframe: Callable[[], None] = lambda: None) -> None:
        self._pending: dict[int, tuple[MediaPacket, float]] = {}
        self._expected: int | None = None
        self._need_key = True
        self._on_need_keyframe = on_need_keyframe
        self.frames = 0
        self.dropped_frames = 0  # frames given up (loss, corruption)

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._need_key

    def reset(self) -> None:
        """Start over at the next keyframe (after a pause or a new file)."""
        self._pending.clear()
        self._expected = None
        self._need_key = True

    def push(self, mp: MediaPacket, now: float) -> list[Frame]:
        if self._expected is not None and mp.seq < self._expected:
            return []  # late: its frame was emitted or given up
        if mp.seq in self._pending:
            return []
        self._pending[mp.seq] = (mp, now)
        if self._expected is None:
            if not mp.keyframe:
                self._trim()
                return []
            self._expected = mp.seq
            for seq in [s for s in self._pending if s < mp.seq]:
                del self._pending[seq]
        out = self._drain()
        if self._pending and self._stale(now):
            self._resync()
            out += self._drain()
        return out

    def _drain(self) -> list[Frame]:
        out: list[Frame] = []
        pending = self._pending
        while self._expected is not None:
            first = pending.get(self._expected)
            if first is None:
                break
            mp0 = first[0]
            seq = self._expected
            packets: list[MediaPacket] = []
            complete = False
            while True:
                entry = pending.get(seq)
                if entry is None:
                    break
                mp = entry[0]
                if mp.timestamp != mp0.timestamp:
                    complete = bool(packets)  # the next frame began: this one is whole
                    break
                packets.append(mp)
                if mp.marker:
                    complete = True
                    seq += 1
                    break
                seq += 1
            if not complete:
                break
            for s in range(self._expected, self._expected + len(packets)):
                arrived = pending.pop(s)[1]
            self._expected = self._expected + len(packets)
            frame = self._assemble(packets, arrived)
            if frame is None:
                self._resync()
                continue
            if self._need_key and not frame.keyframe:
                self.dropped_frames += 1
                continue
            self._need_key = False
            self.frames += 1
            out.append(frame)
        return out

    def _assemble(self, packets: list[MediaPacket], arrived: float) -> Frame | None:
        parts = []
        try:
            for i, mp in enumerate(packets):
                desc = parse_vp8_descriptor(mp.payload)
                if i == 0 and not (desc.start_of_partition and desc.partition_id == 0):
                    return None
                parts.append(mp.payload[desc.header_size :])
        except ValueError:
            return None
        data = b"".join(parts)
        if not data:
            return None
        keyframe = packets[0].keyframe
        return Frame(data, packets[0].timestamp, keyframe, arrived)

    def _stale(self, now: float) -> bool:
        if len(self._pending) > MAX_PENDING_PACKETS:
            return True
        oldest = min(arrived for _mp, arrived in self._pending.values())
        return now - oldest > MAX_FRAME_WAIT

    def _resync(self) -> None:
        """Give up the incomplete frame(s): continue at the next keyframe we hold."""
        self.dropped_frames += 1
        self._need_key = True
        self._on_need_keyframe()
        keys = sorted(s for s, (mp, _t) in self._pending.items() if mp.keyframe)
        if keys:
            self._expected = keys[0]
            for seq in [s for s in self._pending if s < keys[0]]:
                del self._pending[seq]
        else:
            self._expected = None
            self._pending.clear()

    def _trim(self) -> None:
        if len(self._pending) > MAX_PENDING_PACKETS:
            for seq in sorted(self._pending)[: len(self._pending) - MAX_PENDING_PACKETS]:
                del self._pending[seq]


class OpusDepacketizer:
    """One RTP packet is one Opus frame; late and repeated packets are dropped."""

    def __init__(self) -> None:
        self._last = -1
        self.frames = 0

    def reset(self) -> None:
        self._last = -1

    def push(self, mp: MediaPacket, now: float) -> list[Frame]:
        if mp.seq <= self._last:
            return []
        self._last = mp.seq
        self.frames += 1
        return [Frame(mp.payload, mp.timestamp, True, now)]


def _layer_sizes(known: list[tuple[int, int] | None]) -> list[tuple[int, int] | None]:
    """Each encoding's size; one whose keyframe was not seen yet is estimated from one
    that was, each encoding being half the size of the next (what browsers send: the
    web client's scaleResolutionDownBy 4, 2, 1, and Chrome's own default)."""
    anchor = next(((i, s) for i, s in enumerate(known) if s is not None), None)
    if anchor is None:
        return known
    at, (w, h) = anchor
    return [
        s if s is not None else (round(w * 2.0 ** (i - at)), round(h * 2.0 ** (i - at)))
        for i, s in enumerate(known)
    ]


def ntp_to_unix(ntp: int) -> float:
    return (ntp >> 32) - NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / (1 << 32)


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


# ----------------------------------------------------------------------------- tracks


class SyncGroup:
    """The clocks of one publisher's tracks (a feed): frames of all of them are put on our
    clock with one offset, fixed at the first sender report, so they stay in sync."""

    def __init__(self) -> None:
        self._offset: float | None = None
        self._anchors: dict[str, tuple[float, int]] = {}

    def clock_offset(self, candidate: float) -> float:
        """Our clock minus the publisher's, fixed at the first sender report."""
        if self._offset is None:
            self._offset = candidate
        return self._offset

    def arrival_anchor(self, track_id: str, frame: Frame) -> tuple[float, int]:
        anchor = self._anchors.get(track_id)
        if anchor is None:
            anchor = (frame.arrived, frame.rtp_timestamp)
            self._anchors[track_id] = anchor
        return anchor

    def forget(self, track_id: str) -> None:
        self._anchors.pop(track_id, None)


class FrameTap:
    """A consumer of one producer that turns its packets into whole frames with wall-clock
    times (the producer's consumer protocol, :class:`~webinar.sfu.types.PacketConsumer`):
    depacketized (VP8, Opus), timed by the publisher's sender reports on the clock of its
    :class:`SyncGroup`. The recorder's tracks are taps; so are the compositor's
    (:mod:`webinar.broadcast.compositor`), which pass ``on_frame``.

    ``on_frame(tap, frame, wall)`` runs on the event loop for each frame: it must only
    hand the frame on (decoding belongs on another thread). ``paused()`` true drops
    packets (the depacketizer restarts at a keyframe after :meth:`reset`)."""

    selects_layers = False  # the producer pins it to one simulcast encoding

    def __init__(
        self,
        producer: Producer,
        group: SyncGroup,
        on_frame: Callable[[FrameTap, Frame, float], None] | None = None,
        *,
        paused: Callable[[], bool] | None = None,
    ) -> None:
        self.id = new_id("rt")
        self.producer = producer
        self.kind: MediaKind = producer.kind
        self.closed = False
        self._group = group
        self._on_frame = on_frame
        self._is_paused = paused
        # The codec may not be known yet (a track is attached as soon as it is published);
        # it is read at the first packet, which the producer forwards only once it is.
        self.clock_rate = 90000 if producer.kind is MediaKind.VIDEO else 48000
        self.channels = 2
        self._resolved = False
        self._video = self.kind is MediaKind.VIDEO
        self._depack: Vp8Depacketizer | OpusDepacketizer = (
            Vp8Depacketizer(self.request_keyframe) if self._video else OpusDepacketizer()
        )
        self._waiting_sr: list[Frame] = []
        self._first_packet_at: float | None = None
        self._keyframe_asked = 0.0
        self.width = 0
        self.height = 0
        # Choosing a simulcast encoding by size (fit_size): the size wanted, the encoding
        # being switched to (at its next keyframe) and when that began.
        self._want: tuple[int, int] | None = None
        self._best = False  # follow_best: the largest encoding flowing, whatever the size
        self._switch_to: int | None = None
        self._switch_asked = 0.0
        self._next_choice = 0.0
        self.switches = 0

    def paused(self) -> bool:
        return self._is_paused is not None and self._is_paused()

    # -- the consumer interface the producer calls

    def forward(self, mp: MediaPacket) -> None:
        if self.closed or self.paused():
            return
        if not self._resolved and not self._resolve():
            return
        now = time.time()
        if self._first_packet_at is None:
            self._first_packet_at = now
        if self._want is not None or self._best:
            if now >= self._next_choice:
                self._next_choice = now + CHOICE_INTERVAL
                self._choose(now)
            target = self._switch_to
            if target is not None and mp.layer == target:
                if not mp.keyframe:
                    return  # the encoding switched to starts at its keyframe
                self._switch(target)
            elif mp.layer != self.producer.pinned_layer(self.id):
                return
        depack = self._depack
        if (
            self._video
            and isinstance(depack, Vp8Depacketizer)
            and depack.waiting_for_keyframe
            and now - self._keyframe_asked > KEYFRAME_RETRY
        ):
            self.request_keyframe()
        for frame in depack.push(mp, now):
            self._frame(frame, now)

    def _resolve(self) -> bool:
        codec = self.producer.codec
        if codec is None:
            return False
        wanted = RecorderSource.VP8 if self._video else RecorderSource.OPUS
        if codec.mime_type.lower() != wanted.value:
            logger.warning("not taking %s: codec %s", self.producer, codec.mime_type)
            self.detach()
            self._unsupported()
            return False
        self.clock_rate = codec.clock_rate
        self.channels = codec.channels or (2 if not self._video else 1)
        self._resolved = True
        return True

    def _unsupported(self) -> None:
        """The producer's codec is not one a tap reads (it has left the producer)."""

    def restart(self) -> None:
        """The producer resumed after a pause: start again at a keyframe."""
        self.reset()

    def producer_closed(self) -> None:
        self.flush()
        self.closed = True

    # -- choosing a simulcast encoding by size

    def fit_size(self, width: int, height: int) -> None:
        """Take the simulcast encoding that fits a ``width`` x ``height`` tile: the
        smallest at least that large (the largest flowing one if none is), switching
        at a keyframe of it. A single stream is left as it is."""
        if self.producer.simulcast is None or not self._video:
            return
        self._want = (width, height)
        self._choose(time.time())

    def follow_best(self) -> None:
        """Take the best encoding the publisher sends (the largest flowing one timed by its
        own sender reports), moving up when a larger one starts and down when the one
        taken stops, at a keyframe of the next one: what a recording wants. The top
        encoding is kept on for it (dynacast). A single stream is left as it is."""
        if self.producer.simulcast is None or not self._video:
            return
        self._best = True
        self._want = None
        self.producer.keep_top_layer(self)
        self._choose(time.time())

    def reconsider(self, now: float | None = None) -> None:
        """Look again which encoding to take (at most once a :data:`CHOICE_INTERVAL`): call
        it now and then, since a tap whose encoding stopped gets no packets to look at."""
        if self._want is None and not self._best:
            return
        now = time.time() if now is None else now
        if self._best and self._stalled(now) is not None and self._switch_to is None:
            self._next_choice = now  # the encoding taken stopped: look now, not in a second
        if now >= self._next_choice and not self.paused():
            self._next_choice = now + CHOICE_INTERVAL
            self._choose(now)

    def _choose(self, now: float) -> None:
        simulcast, want = self.producer.simulcast, self._want
        if simulcast is None or (want is None and not self._best) or self.closed:
            return
        current = self.producer.pinned_layer(self.id)
        sizes = _layer_sizes(self.producer.layer_sizes())
        # An encoding is timed by its own sender reports: switch only to one that has
        # them (unless the current one has none either).
        timed = self.producer.sender_report_of(current) is not None
        flowing = [
            layer.index
            for layer in simulcast.layers
            if layer.flowing(now)
            and (sizes[layer.index] is not None or want is None)
            and (not timed or self.producer.sender_report_of(layer.index) is not None)
        ]
        if not flowing:
            return
        if want is None:  # the best: encodings go from the smallest to the largest
            stalled = self._stalled(now)
            if stalled is not None:
                flowing = [i for i in flowing if i <= stalled]
            if flowing:
                self._aim(max(flowing), current, now)
            return

        def area(index: int) -> int:
            size = sizes[index]
            return size[0] * size[1] if size is not None else 0

        fits = [
            i
            for i in flowing
            if (s := sizes[i]) is not None and s[0] >= want[0] and s[1] >= want[1]
        ]
        target = min(fits, key=area) if fits else max(flowing, key=area)
        self._aim(target, current, now)

    def _stalled(self, now: float) -> int | None:
        """The best lower encoding still sending when the one taken has paused for
        :data:`BEST_STALL` s while that one sent just now (a stall of the whole stream, a
        busy loop, is no reason to switch); ``None`` when there is none."""
        simulcast = self.producer.simulcast
        if simulcast is None:
            return None
        current = self.producer.pinned_layer(self.id)
        layers = simulcast.layers
        if not 0 <= current < len(layers) or not simulcast.stalled(layers[current], now):
            return None
        recent = [
            layer.index
            for layer in layers[:current]
            if layer.packets and now - layer.last_arrival < BEST_STALL / 3
        ]
        return max(recent) if recent else None

    def _aim(self, target: int, current: int, now: float) -> None:
        """Stay on ``current`` or switch to ``target`` at its next keyframe (asked for)."""
        if target == current:
            if self._switch_to is not None:  # back to where it is: stop switching
                self._switch_to = None
                self.producer.pin_layer(self, current)
            return
        if target != self._switch_to or now - self._switch_asked > SWITCH_TIMEOUT:
            if target != self._switch_to:
                logger.debug("%s: encoding %d -> %d (%s)", self, current, target, self._want)
            self._switch_to = target
            self._switch_asked = now
            self.producer.pin_layer(self, current, switching_to=target)
            self.producer.request_keyframe(target)

    def _switch(self, target: int) -> None:
        """A keyframe of the encoding switched to came: continue on it."""
        self.flush()  # frames of the old one waiting for its sender report
        self._depack.reset()
        self._switch_to = None
        self.switches += 1
        self.producer.pin_layer(self, target)

    # -- control

    def reset(self) -> None:
        self._depack.reset()
        self._waiting_sr.clear()
        if self._video:
            self.request_keyframe()

    def request_keyframe(self) -> None:
        if self._video and not self.producer.closed:
            self._keyframe_asked = time.time()
            self.producer.request_keyframe(self.producer.pinned_layer(self.id))

    def detach(self) -> None:
        """Leave the producer (what still waits for a sender report is passed on first)."""
        if not self.closed:
            self.flush()
            self.closed = True
            with contextlib.suppress(Exception):
                self.producer.remove_consumer(self)

    def flush(self) -> None:
        """Map what still waits for a sender report by arrival time and pass it on."""
        if self._waiting_sr:
            frames, self._waiting_sr = self._waiting_sr, []
            for frame in frames:
                self._emit(frame, self._wall_time(frame, fallback=True))

    # -- timing

    def _frame(self, frame: Frame, now: float) -> None:
        if self._video and frame.keyframe:  # the size may change (another camera)
            size = vp8_frame_size(frame.data)
            if size is not None:
                self.width, self.height = size
        wall = self._wall_time(frame, fallback=False)
        if wall is None:
            waited = now - (self._first_packet_at or now)
            if waited < SENDER_REPORT_WAIT and len(self._waiting_sr) < MAX_BUFFERED_FRAMES:
                self._waiting_sr.append(frame)
                return
            wall = self._wall_time(frame, fallback=True)
        if self._waiting_sr:
            frames, self._waiting_sr = self._waiting_sr, []
            for early in frames:
                self._emit(early, self._wall_time(early, fallback=True))
        self._emit(frame, wall)

    def _wall_time(self, frame: Frame, *, fallback: bool) -> float | None:
        # A simulcast producer hands the tap one encoding: that one's SR.
        sr = self.producer.sender_report_of(self.producer.pinned_layer(self.id))
        if sr is not None:
            ntp = ntp_to_unix(sr.ntp)
            offset = self._group.clock_offset(sr.arrived - ntp)
            return ntp + offset + _signed32(frame.rtp_timestamp - sr.rtp) / self.clock_rate
        if not fallback:
            return None
        anchor = self._group.arrival_anchor(self.id, frame)
        return anchor[0] + _signed32(frame.rtp_timestamp - anchor[1]) / self.clock_rate

    def _emit(self, frame: Frame, wall: float | None) -> None:
        if wall is not None and self._on_frame is not None:
            self._on_frame(self, frame, wall)


class RecorderTrack(FrameTap):
    """The recorder's consumer of one producer: a :class:`FrameTap` whose frames go to its
    feed's file, on the recording's clock."""

    def __init__(self, recorder: Recorder, feed: _Feed, slot: str, producer: Producer) -> None:
        super().__init__(producer, feed, paused=lambda: recorder.paused)
        self._recorder = recorder
        self._feed = feed
        self.slot = slot

    def _unsupported(self) -> None:
        self._recorder._track_closed(self)

    def producer_closed(self) -> None:
        super().producer_closed()
        self._recorder._track_closed(self)

    def _emit(self, frame: Frame, wall: float | None) -> None:
        if wall is None:
            return
        self._feed.push(self, frame, self._recorder.recording_time(wall))


# ----------------------------------------------------------------------------- feeds


@dataclass(slots=True)
class _Slot:
    name: str  # "camera", "microphone", "screen", ... (a second one: "camera-2")
    kind: MediaKind
    track: RecorderTrack | None
    clock_rate: int
    channels: int
    width: int = 0
    height: int = 0


@dataclass(slots=True)
class RecordedStream:
    slot: str
    kind: str
    codec: str
    frames: int = 0
    first_ms: int | None = None
    last_ms: int | None = None


@dataclass(slots=True)
class RecordedFile:
    """One WebM of a recording, as the writer left it."""

    name: str  # file name inside the recording's folder
    feed: str
    label: str
    part: int
    offset: float  # seconds into the recording where this file's time 0 lies
    streams: list[RecordedStream] = field(default_factory=list)
    size: int = 0
    duration: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Feed(SyncGroup):
    """One publisher's sync group: the tracks that share a file."""

    def __init__(self, recorder: Recorder, key: str, label: str) -> None:
        super().__init__()
        self.recorder = recorder
        self.key = key
        self.label = label
        self.slots: dict[str, _Slot] = {}
        self.part = 0
        self.file: RecordedFile | None = None
        self.file_slots: list[str] = []  # stream order in the open file
        self.base = 0.0  # recording time of the open file's t=0
        self.last_ms: dict[str, int] = {}
        self.buffer: list[tuple[str, Frame, float]] = []
        self.buffer_since: float | None = None

    # -- tracks

    def add_track(self, track_factory: Callable[[str], RecorderTrack], source: str) -> None:
        name = source
        n = 1
        while name in self.slots and self.slots[name].track is not None:
            n += 1
            name = f"{source}-{n}"
        track = track_factory(name)
        slot = self.slots.get(name)
        if slot is None:
            self.slots[name] = _Slot(name, track.kind, track, track.clock_rate, track.channels)
        else:
            slot.track = track  # a reconnect or a camera switch: the same track goes on

    def track_closed(self, track: RecorderTrack) -> None:
        slot = self.slots.get(track.slot)
        if slot is not None and slot.track is track:
            slot.track = None
        self.forget(track.id)

    # -- frames

    def push(self, track: RecorderTrack, frame: Frame, rec_time: float) -> None:
        slot = self.slots.get(track.slot)
        if slot is None or slot.track is not track:
            return
        if track.width:
            slot.width, slot.height = track.width, track.height  # for the next file's header
        slot.clock_rate, slot.channels = track.clock_rate, track.channels
        if self.file is not None:
            if track.slot in self.file_slots:
                self._write(track.slot, frame, rec_time)
                return
            self.roll_over()
        if len(self.buffer) >= MAX_BUFFERED_FRAMES * max(1, len(self.slots)):
            self.recorder.stats.dropped_frames += 1
            return
        if self.buffer_since is None:
            self.buffer_since = time.time()
        self.buffer.append((track.slot, frame, rec_time))
        self.maybe_open(force=False)

    def maybe_open(self, *, force: bool) -> None:
        if self.file is not None or not self.buffer:
            return
        have = {name for name, _f, _t in self.buffer}
        live = {name for name, slot in self.slots.items() if slot.track is not None}
        waited = time.time() - (self.buffer_since or time.time())
        if not force and not live <= have and waited < GATHER_WINDOW:
            return
        # Streams with frames, and live microphones still silent (a muted microphone switched
        # on later then continues this file); video needs its size from a keyframe.
        names = [
            n
            for n, slot in self.slots.items()
            if (n in have and (slot.kind is MediaKind.AUDIO or slot.width))
            or (n in live and slot.kind is MediaKind.AUDIO)
        ]
        if not any(n in have for n in names):
            self.buffer.clear()  # nothing usable (video without a readable keyframe)
            self.buffer_since = None
            return
        self.part += 1
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.key)
        name = f"{safe}-{self.part}.webm"
        buffered = sorted(self.buffer, key=lambda item: item[2])
        self.buffer.clear()
        self.buffer_since = None
        self.base = min(t for n, _f, t in buffered if n in names)
        self.file = RecordedFile(
            name=name, feed=self.key, label=self.label, part=self.part, offset=self.base
        )
        self.file_slots = names
        self.last_ms = {}
        specs = []
        for n in names:
            slot = self.slots[n]
            codec = "vp8" if slot.kind is MediaKind.VIDEO else "opus"
            self.file.streams.append(RecordedStream(slot=n, kind=slot.kind.value, codec=codec))
            specs.append(
                _StreamSpec(
                    kind=slot.kind, width=slot.width, height=slot.height, channels=slot.channels
                )
            )
        self.recorder.writer.open(self.file, specs)
        for n, frame, t in buffered:
            if n in names:
                self._write(n, frame, t)

    def _write(self, slot_name: str, frame: Frame, rec_time: float) -> None:
        file = self.file
        assert file is not None
        index = self.file_slots.index(slot_name)
        ms = max(0, round((rec_time - self.base) * 1000))
        last = self.last_ms.get(slot_name)
        if last is not None and ms <= last:
            ms = last + 1  # WebM needs strictly increasing times per track
        self.last_ms[slot_name] = ms
        stream = file.streams[index]
        stream.frames += 1
        if stream.first_ms is None:
            stream.first_ms = ms
        stream.last_ms = ms
        if not self.recorder.writer.packet(file.name, index, frame.data, ms, frame.keyframe):
            self.recorder.stats.dropped_frames += 1
            track = self.slots[slot_name].track
            if track is not None and track.kind is MediaKind.VIDEO:
                track.reset()  # the decoder's references are broken: restart at a keyframe

    def roll_over(self) -> None:
        """Close the open file; the next frames start a new part (video at keyframes)."""
        self.close_file()
        for slot in self.slots.values():
            if slot.track is not None:
                slot.track.reset()

    def close_file(self) -> None:
        if self.file is not None:
            self.recorder.writer.close(self.file.name)
            self.recorder.files.append(self.file)
            self.file = None
            self.file_slots = []


# ----------------------------------------------------------------------------- the writer


@dataclass(frozen=True, slots=True)
class _StreamSpec:
    kind: MediaKind
    width: int
    height: int
    channels: int


class _Writer:
    """Muxes in its own thread; the loop side only enqueues."""

    def __init__(self, directory: Path, queue_size: int = WRITE_QUEUE_SIZE) -> None:
        self.directory = directory
        # Unbounded so that control messages never block the loop; frames are bounded below.
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._limit = queue_size
        self._thread = threading.Thread(target=self._run, name="webinar-recorder", daemon=True)
        self._files: dict[str, RecordedFile] = {}
        self.bytes_queued = 0
        self._thread.start()

    # -- loop side

    def open(self, file: RecordedFile, specs: list[_StreamSpec]) -> None:
        self._queue.put_nowait(("open", file, specs))  # control messages never drop

    def packet(self, name: str, index: int, data: bytes, ms: int, keyframe: bool) -> bool:
        if self._queue.qsize() >= self._limit:
            return False  # the disk is behind: drop (the caller restarts video at a keyframe)
        self._queue.put_nowait(("packet", name, index, data, ms, keyframe))
        self.bytes_queued += len(data)
        return True

    def close(self, name: str) -> None:
        self._queue.put_nowait(("close", name))

    def finish(self) -> None:
        """Blocking: wait for the thread to drain; call via ``asyncio.to_thread``."""
        self._queue.put_nowait(("stop",))
        self._thread.join()

    # -- thread side

    def _run(self) -> None:
        containers: dict[str, Any] = {}
        streams: dict[str, list[Any]] = {}
        held: dict[tuple[str, int], Any] = {}  # each stream's previous packet, for durations

        def mux(name: str, index: int, pkt: Any) -> None:
            key = (name, index)
            previous = held.get(key)
            if previous is not None:
                previous.duration = max(1, int(pkt.pts - previous.pts))
                containers[name].mux(previous)
            held[key] = pkt

        def close(name: str) -> None:
            container = containers.pop(name, None)
            file = self._files.pop(name, None)
            if container is None or file is None:
                return
            try:
                for index in range(len(streams.get(name, []))):
                    pkt = held.pop((name, index), None)
                    if pkt is not None:
                        pkt.duration = 20 if file.streams[index].kind == "audio" else 33
                        container.mux(pkt)
                container.close()
            except Exception as exc:
                logger.exception("closing %s failed", name)
                file.error = file.error or str(exc)
            streams.pop(name, None)
            path = self.directory / name
            file.size = path.stat().st_size if path.exists() else 0
            ends = [
                (s.last_ms or 0) + (20 if s.kind == "audio" else 33)
                for s in file.streams
                if s.frames
            ]
            file.duration = max(ends, default=0) / 1000

        while True:
            item = self._queue.get()
            op = item[0]
            try:
                if op == "packet":
                    _, name, index, data, ms, keyframe = item
                    container = containers.get(name)
                    if container is None:
                        continue
                    pkt = av.Packet(data)
                    pkt.stream = streams[name][index]
                    pkt.pts = pkt.dts = ms
                    pkt.time_base = TIME_BASE
                    pkt.is_keyframe = keyframe
                    mux(name, index, pkt)
                elif op == "open":
                    _, file, specs = item
                    self._files[file.name] = file
                    container = av.open(str(self.directory / file.name), "w", format="webm")
                    containers[file.name] = container
                    streams[file.name] = [_add_stream(container, spec) for spec in specs]
                elif op == "close":
                    close(item[1])
                elif op == "stop":
                    for name in list(containers):
                        close(name)
                    return
            except Exception as exc:  # one bad frame or file never stops the others
                logger.exception("recorder writer: %s failed", op)
                target = item[1].name if op == "open" else item[1] if op != "stop" else None
                if isinstance(target, str) and target in self._files:
                    self._files[target].error = self._files[target].error or str(exc)


def _add_stream(container: Any, spec: _StreamSpec) -> Any:
    if spec.kind is MediaKind.VIDEO:
        stream = container.add_stream("vp8")
        stream.width = spec.width
        stream.height = spec.height
        stream.pix_fmt = "yuv420p"
    else:
        stream = container.add_stream("libopus", rate=48000)
        stream.layout = "stereo" if spec.channels == 2 else "mono"
    stream.time_base = TIME_BASE
    return stream


# ----------------------------------------------------------------------------- the recorder


@dataclass(slots=True)
class RecorderStats:
    dropped_frames: int = 0


@dataclass(frozen=True, slots=True)
class RecordingResult:
    directory: Path
    files: list[RecordedFile]
    started_at: float  # time.time()
    ended_at: float
    duration: float  # recorded seconds (paused spans excluded)
    size: int
    dropped_frames: int
    #: The wall-clock spans the recording ran (start, end), in order: recording time t is
    #: the sum of the earlier spans' lengths plus the time into the span.
    spans: tuple[tuple[float, float], ...] = ()


class Recorder:
    """Records producers into WebM files in ``directory`` (created), without transcoding.

    ``attach(producer, feed=..., label=...)`` adds a producer; producers of one feed
    share a file and a clock. ``pause()``/``resume()`` stop and restart the recording
    clock; ``await stop()`` detaches, flushes, closes the files and reports them.
    """

    def __init__(self, directory: Path, *, paused: bool = False) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.started_at = time.time()
        self.stats = RecorderStats()
        self.files: list[RecordedFile] = []
        self.writer = _Writer(directory)
        self.stopped = False
        self._feeds: dict[str, _Feed] = {}
        self._tracks: dict[str, RecorderTrack] = {}  # by producer id
        #: Wall-clock spans recorded: (start, end), the last one's end None while it runs;
        #: the recording's clock (paused or not, seconds recorded) is read from them.
        self._spans: list[tuple[float, float | None]] = [] if paused else [(self.started_at, None)]
        self._ended_at = 0.0
        self._recorded = 0.0
        self._ticker: asyncio.Task[None] | None = None

    # -- producers

    def attach(self, producer: Producer, *, feed: str, label: str = "") -> RecorderTrack | None:
        """Record ``producer`` (once). Only VP8 video and Opus audio are recorded (checked at
        the first packet: a producer's codec is known only once its media flows)."""
        if self.stopped or producer.closed or producer.id in self._tracks:
            return self._tracks.get(producer.id)
        f = self._feeds.get(feed)
        if f is None:
            f = self._feeds[feed] = _Feed(self, feed, label or feed)
        created: list[RecorderTrack] = []

        def make(slot: str) -> RecorderTrack:
            track = RecorderTrack(self, f, slot, producer)
            created.append(track)
            return track

        f.add_track(make, str(producer.source))
        track = created[0]
        self._tracks[producer.id] = track
        producer.add_consumer(track)
        # Only now: a simulcast producer pins the track to an encoding in add_consumer,
        # and a keyframe of another encoding is of no use to it.
        track.request_keyframe()
        # A simulcast camera's top encoding starts seconds after the others (the sender's
        # bandwidth estimate ramps up): the file moves up to it when it comes.
        track.follow_best()
        self._start_ticker()
        return track

    def _start_ticker(self) -> None:
        if self._ticker is not None or self.stopped:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (synthetic tests call tick() themselves)
            return
        self._ticker = loop.create_task(self._tick_forever(), name="webinar-recorder-tick")

    async def _tick_forever(self) -> None:
        while not self.stopped:
            await asyncio.sleep(TICK_INTERVAL)
            try:
                self.tick()
            except Exception:
                logger.exception("recorder tick failed")

    def is_attached(self, producer_id: str) -> bool:
        return producer_id in self._tracks

    def _track_closed(self, track: RecorderTrack) -> None:
        if self._tracks.get(track.producer.id) is track:
            del self._tracks[track.producer.id]
        track._feed.track_closed(track)

    # -- clock

    @property
    def paused(self) -> bool:
        return not self._spans or self._spans[-1][1] is not None

    def pause(self) -> None:
        if not self.paused and not self.stopped:
            for track in self._tracks.values():
                track.flush()
            self._close_span(time.time())

    def resume(self) -> None:
        if not self.paused or self.stopped:
            return
        self._spans.append((time.time(), None))
        for track in self._tracks.values():
            track.reset()

    def _close_span(self, at: float) -> None:
        if self._spans and self._spans[-1][1] is None:
            self._spans[-1] = (self._spans[-1][0], at)

    def recording_time(self, wall: float) -> float:
        """Seconds into the recording for a wall-clock time (pauses cut out): the spans
        before the last one, and the time since the last one started."""
        if not self._spans:
            return wall - self.started_at
        done = sum(end - start for start, end in self._spans[:-1] if end is not None)
        return done + wall - self._spans[-1][0]

    def recorded_seconds(self, now: float | None = None) -> float:
        now = time.time() if now is None else now
        return max(
            0.0,
            sum(min(now, end if end is not None else now) - a for a, end in self._spans if a < now),
        )

    @property
    def bytes_written(self) -> int:
        """Payload bytes handed to the writer so far (the files' size, near enough)."""
        return self.writer.bytes_queued

    def tick(self) -> None:
        """Open feeds whose gather window passed and let simulcast tracks look for a
        better (or a still flowing) encoding; a task of the recorder calls it every
        :data:`TICK_INTERVAL` s while a loop runs."""
        now = time.time()
        for track in list(self._tracks.values()):
            track.reconsider(now)
        for feed in self._feeds.values():
            feed.maybe_open(force=False)

    # -- stopping

    async def stop(self) -> RecordingResult:
        if not self.stopped:
            self.stopped = True
            ended = time.time()
            self._ended_at = ended
            self._recorded = self.recorded_seconds(ended)
            self._close_span(ended)
            ticker, self._ticker = self._ticker, None
            await stop_task(ticker)
            for track in list(self._tracks.values()):
                track.detach()
            self._tracks.clear()
            for feed in self._feeds.values():
                feed.maybe_open(force=True)
                feed.close_file()
            await asyncio.to_thread(self.writer.finish)
        files = sorted(self.files, key=lambda f: (f.offset, f.name))
        return RecordingResult(
            directory=self.directory,
            files=files,
            started_at=self.started_at,
            ended_at=self._ended_at,
            duration=self._recorded,
            size=sum(f.size for f in files),
            dropped_frames=self.stats.dropped_frames,
            spans=tuple((a, b) for a, b in self._spans if b is not None and b > a),
        )
