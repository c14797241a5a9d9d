"""Per-consumer layer switching for VP8 simulcast and temporal layers.

A :class:`LayerSelector` sits between a layered producer and one subscriber. It
forwards one spatial layer (a simulcast encoding) and, within it, the temporal
layers up to a target, and rewrites what the subscriber sees so the stream looks
like one continuous stream across every switch:

* sequence numbers have no gap where packets were dropped on purpose (pictures
  above the temporal target); holes from real loss stay, so NACKs still work;
* timestamps continue from the last forwarded picture across a spatial switch
  (each encoding has its own RTP clock offset);
* VP8 PictureID counts forwarded pictures only and TL0PICIDX continues across
  spatial switches (without this Chrome froze 3-6 s on every switch);
* spatial switches happen only at a keyframe of the target layer, which the
  selector asks for (``request_keyframe``) and keeps asking for until it comes;
* temporal switches go down at the next picture and up one layer at a time, at a
  picture with the layer-sync bit (or at a keyframe);
* duplicates and packets older than the tracking window are dropped; sequence
  numbers are unwrapped by the producer, PictureIDs here.

Pure logic with an injected clock; the consumer does the sending.
"""

from __future__ import annotations

import secrets
import time
from bisect import bisect_right
from collections.abc import Callable

from .rtp import MediaPacket
from .vp8 import Vp8Info, rewrite, scan

MAX_TEMPORAL = 2  # L1T3: temporal layers 0, 1, 2
DUP_WINDOW = 1024  # input sequence numbers remembered for duplicate detection
DROP_MEMORY = 256  # dropped sequence numbers / pictures remembered for late packets
KEYFRAME_RETRY = 1.0  # seconds between keyframe requests while a switch waits
# While a switch down waits for the lower layer's keyframe, the higher layer is sent up
# to this temporal layer: L1T3's TL0+TL1 is ~60 % of its rate at half the frame rate.
# Not TL0 alone: a quarter of the frame rate at once is a freeze by Chrome's count (a
# frame interval of at least 3x the average of the last 30, 200 ms at 20 fps).
STEP_DOWN_TEMPORAL = 1
# ... and TL0 alone after this long (the average frame interval has grown meanwhile:
# a quarter of the frame rate is no freeze then)
STEP_DOWN_TL0_AFTER = 0.3


def _random_seq_start() -> int:
    # Lower half of the 16-bit space (as browsers start) so an early wrap does not
    # trip SRTP's replay window; the value is "the one before the first".
    return (int.from_bytes(secrets.token_bytes(2), "big") % 32768) - 1 + (1 << 16)


class LayerSelector:
    """Chooses which packets of a layered producer reach one subscriber, and how
    they are numbered. :meth:`process` returns the payload to send (rewritten when
    needed) and sets :attr:`out_seq` / :attr:`out_ts`, or returns ``None``."""

    __slots__ = (
        "_adopting",
        "_asked_at",
        "_base",
        "_clock",
        "_clock_rate",
        "_down_at",
        "_drops",
        "_in_hi",
        "_last_arrival",
        "_need_keyframe",
        "_on_listen",
        "_out_hi",
        "_pic_forward",
        "_pid_base",
        "_pid_drops",
        "_pid_hi",
        "_pid_last_ext",
        "_pid_last_raw",
        "_pid_off",
        "_pid_out_hi",
        "_request_keyframe",
        "_seen",
        "_seq_off",
        "_started",
        "_tl0_off",
        "_tl0_out_last",
        "_ts_off",
        "dropped_temporal",
        "duplicates",
        "epoch_out",
        "last_ts",
        "out_seq",
        "out_ts",
        "spatial",
        "switches",
        "target_spatial",
        "target_temporal",
        "temporal",
    )

    def __init__(
        self,
        *,
        request_keyframe: Callable[[int], None],
        on_listen: Callable[[tuple[int, ...]], None] | None = None,
        clock_rate: int = 90000,
        clock: Callable[[], float] = time.monotonic,
        spatial: int = 0,
        temporal: int = MAX_TEMPORAL,
    ) -> None:
        self._request_keyframe = request_keyframe
        self._on_listen = on_listen
        self._clock_rate = clock_rate
        self._clock = clock
        self.target_spatial = spatial
        self.target_temporal = temporal
        self.spatial = -1  # the layer being forwarded; -1 before the first keyframe
        self.temporal = temporal
        self.out_seq = 0  # 16-bit sequence number of the last returned payload
        self.out_ts = 0  # 32-bit timestamp of the last returned payload
        self.last_ts = 0  # output timestamp of the latest forwarded picture
        self.switches = 0
        self.duplicates = 0
        # The first output number (extended) of the current epoch: since the latest switch
        # or restart at a keyframe. What went out before it cannot help the subscriber any
        # more (its decoder starts again at that keyframe): see :meth:`in_epoch`.
        self.epoch_out = -(1 << 62)
        self.dropped_temporal = 0
        self._started = False
        self._need_keyframe = True
        self._asked_at = -1e9
        self._down_at = 0.0  # when the current switch down began
        # sequence numbers (input: the producer's unwrapped numbers of the layer)
        self._out_hi = _random_seq_start()
        self._seq_off = 0
        self._base = 0
        self._in_hi = -1
        self._drops: list[int] = []
        self._seen = [-1] * DUP_WINDOW
        # timestamps
        self._ts_off = int.from_bytes(secrets.token_bytes(4), "big")
        self._last_arrival = 0.0
        # picture ids (unwrapped here, per layer epoch)
        self._pid_last_raw = -1
        self._pid_last_ext = -1
        self._pid_off = 0
        self._pid_base = 0
        self._pid_hi = -1
        self._pid_drops: list[int] = []
        self._pid_out_hi = -1
        self._pic_forward = True
        self._adopting = False
        # TL0PICIDX
        self._tl0_off = 0
        self._tl0_out_last = -1

    # ------------------------------------------------------------------ control

    def listening(self) -> tuple[int, ...]:
        """The spatial layers whose packets this selector needs now. Before its first
        picture: every layer up to the target (it starts at the first keyframe of any)."""
        if self.spatial < 0:
            return tuple(range(self.target_spatial + 1))
        if self.spatial == self.target_spatial:
            return (self.target_spatial,)
        return (self.spatial, self.target_spatial)

    @property
    def switching(self) -> bool:
        return self._need_keyframe or self.spatial != self.target_spatial

    @property
    def waiting(self) -> bool:
        """Nothing is forwarded until a keyframe of the target layer arrives."""
        return self._need_keyframe

    @property
    def highest_out(self) -> int:
        """Extended output sequence number of the last packet forwarded (or the start)."""
        return self._out_hi

    @property
    def last_arrival(self) -> float:
        """When the latest forwarded picture's packet arrived (time.monotonic())."""
        return self._last_arrival

    @property
    def ts_offset(self) -> int:
        """Output timestamp minus input timestamp in the current layer epoch."""
        return self._ts_off

    def seed_numbering(
        self,
        *,
        highest_out: int,
        ts_offset: int,
        last_ts: int,
        last_arrival: float,
        last_payload: bytes | None,
    ) -> None:
        """Continue the numbering of what a plain consumer sent (its last payload), or
        just share its random starting points; forwarding starts at a keyframe."""
        self._out_hi = highest_out
        self._ts_off = ts_offset & 0xFFFFFFFF
        if last_payload is None:
            return
        self.last_ts = last_ts
        self._last_arrival = last_arrival
        self._started = True
        info = scan(last_payload)
        if info is not None:
            if info.picture_id >= 0:
                self._pid_out_hi = info.picture_id
            if info.tl0picidx >= 0:
                self._tl0_out_last = info.tl0picidx

    def set_target(self, spatial: int, temporal: int, *, ask: bool = True) -> None:
        """Aim at a layer; a spatial change waits for that layer's keyframe (asked for
        now unless ``ask`` is False: a paused consumer's :meth:`restart` asks for it)."""
        temporal = min(max(temporal, 0), MAX_TEMPORAL)
        self.target_temporal = temporal
        if spatial == self.target_spatial:
            return
        if spatial < self.spatial <= self.target_spatial:
            self._down_at = self._clock()
        self.target_spatial = spatial
        self._listen_changed()
        if ask and (spatial != self.spatial or self._need_keyframe):
            self._ask(force=True)

    def in_epoch(self, seq: int) -> bool:
        """Was output number ``seq`` (16 bits) sent in the current epoch, that is at or
        after the keyframe of the latest switch or restart? A retransmission of a packet
        from before it is no use to the subscriber, whose decoder began again at that
        keyframe, and it can do harm: Chromium, handed the last packets before a pause
        after the keyframe that resumed the stream, decoded that keyframe and then
        nothing more until it asked for a keyframe itself 3 s later (benchmarks/README.md,
        "The 3 s freeze after the lift")."""
        back = (self._out_hi - seq) & 0xFFFF
        return back <= self._out_hi - self.epoch_out

    def restart(self) -> None:
        """Continue after a pause: from the next keyframe, numbering unbroken."""
        self._need_keyframe = True
        self._ask(force=True)

    def housekeeping(self) -> None:
        """Keep asking for the keyframe a pending switch waits for."""
        if self.switching:
            self._ask(force=False)

    def _ask(self, *, force: bool) -> None:
        now = self._clock()
        if not force and now - self._asked_at < KEYFRAME_RETRY:
            return
        self._asked_at = now
        self._request_keyframe(self.target_spatial)

    def _listen_changed(self) -> None:
        if self._on_listen is not None:
            self._on_listen(self.listening())

    def continue_from(
        self,
        *,
        highest_out: int,
        seq_offset: int,
        base_seq: int,
        ts_offset: int,
        last_ts: int,
        last_arrival: float,
    ) -> None:
        """Take over a stream a plain consumer was forwarding unchanged (layer 0,
        the publisher's PictureIDs): the subscriber sees no break. A picture the
        plain path began is finished whole."""
        self._out_hi = highest_out
        self._seq_off = seq_offset
        self._base = base_seq
        self._in_hi = highest_out - seq_offset
        self._ts_off = ts_offset & 0xFFFFFFFF
        self.last_ts = last_ts
        self._last_arrival = last_arrival
        self.spatial = 0
        self._need_keyframe = False
        self._started = True
        self._adopting = True

    # ------------------------------------------------------------------ hot path

    def process(self, mp: MediaPacket) -> bytes | None:
        info = mp.vp8
        if info is None:  # read once, by the first selector that needs it
            info = mp.vp8 = scan(mp.payload)
        if self._need_keyframe or mp.layer != self.spatial:
            if info is None or not info.keyframe:
                return None  # the old layer while a switch waits, or other layers
            # The first picture may come from a lower layer than the target, whichever
            # keyframe is first (the target may not be running yet: dynacast turns it on
            # at its next round, the encoder then starts it): a quicker first frame, and a
            # switch up at the target's keyframe as usual.
            first = self.spatial < 0 and mp.layer < self.target_spatial
            if mp.layer != self.target_spatial and not first:
                return None
            self._switch(mp, info)
        seq = mp.seq
        if seq < self._base or seq <= self._in_hi - DUP_WINDOW:
            return None  # from before this layer epoch, or too old to tell
        slot = seq & (DUP_WINDOW - 1)
        if self._seen[slot] == seq:
            self.duplicates += 1
            return None
        pid_ext = -1
        if info is not None and info.picture_id >= 0:
            pid_ext = self._unwrap_pid(info)
        if seq > self._in_hi:
            self._in_hi = seq
            if not self._decide(info, pid_ext):
                self._seq_off -= 1
                drops = self._drops
                drops.append(seq)
                if len(drops) > DROP_MEMORY:
                    del drops[: DROP_MEMORY // 2]
                self.dropped_temporal += 1
                return None
            out_ext = seq + self._seq_off
        else:  # late: forward only what belongs to a picture that was forwarded
            if pid_ext >= 0:
                if pid_ext < self._pid_base:
                    return None
                if pid_ext > self._pid_hi:
                    if not self._decide(info, pid_ext):
                        return None
                elif self._dropped_picture(pid_ext):
                    return None
            drops = self._drops
            out_ext = seq + self._seq_off + len(drops) - bisect_right(drops, seq)
        self._seen[slot] = seq
        out_ts = (mp.timestamp + self._ts_off) & 0xFFFFFFFF
        if out_ext > self._out_hi:
            self._out_hi = out_ext
            self._last_arrival = mp.arrival
            self.last_ts = out_ts
        self.out_seq = out_ext & 0xFFFF
        self.out_ts = out_ts
        if info is None:
            return mp.payload
        return self._payload(mp, info, pid_ext)

    def _payload(self, mp: MediaPacket, info: Vp8Info, pid_ext: int) -> bytes:
        pid = info.picture_id
        out_pid = pid
        if pid_ext >= 0:
            pd = self._pid_drops
            out_ext = pid_ext + self._pid_off
            if pid_ext < self._pid_hi:
                out_ext += len(pd) - bisect_right(pd, pid_ext)
            if out_ext > self._pid_out_hi:
                self._pid_out_hi = out_ext
            out_pid = out_ext & (info.picture_id_mod - 1)
        tl0 = info.tl0picidx
        out_tl0 = tl0
        if tl0 >= 0:
            out_tl0 = (tl0 + self._tl0_off) & 0xFF
            self._tl0_out_last = out_tl0
        if out_pid == pid and out_tl0 == tl0:
            return mp.payload
        return rewrite(mp.payload, info, out_pid, out_tl0)

    def _decide(self, info: Vp8Info | None, pid_ext: int) -> bool:
        """Forward this in-order packet? Decided once per picture."""
        if pid_ext < 0 or info is None:
            return True  # no PictureID: nothing can be dropped consistently
        if pid_ext == self._pid_hi:
            return self._pic_forward
        if pid_ext < self._pid_hi:
            return not self._dropped_picture(pid_ext)
        if self._adopting:
            self._adopting = False
            if self._pid_hi < 0:  # the first picture seen here
                self._pid_base = pid_ext if info.begin else pid_ext - 1
                if not info.begin:  # begun by the plain path: finish it
                    self._pid_hi = pid_ext
                    self._pic_forward = True
                    return True
        forward = self._temporal_ok(info)
        if not forward:
            self._pid_off -= 1
            pd = self._pid_drops
            pd.append(pid_ext)
            if len(pd) > DROP_MEMORY:
                del pd[: DROP_MEMORY // 2]
        self._pid_hi = pid_ext
        self._pic_forward = forward
        return forward

    def _temporal_ok(self, info: Vp8Info) -> bool:
        tid = info.temporal_id
        if tid < 0:
            return True
        if info.keyframe:
            self.temporal = self.target_temporal
            return True
        target = self.target_temporal
        if self.target_spatial < self.spatial:
            # Stepping down (the budget fell): until the lower layer's keyframe, the
            # higher one goes on at a lower frame rate, at once and without a keyframe;
            # half of it first, a quarter if the keyframe is slow (the lower layer may
            # have to start first).
            slow = self._clock() - self._down_at >= STEP_DOWN_TL0_AFTER
            target = min(target, 0 if slow else STEP_DOWN_TEMPORAL)
        current = self.temporal
        if target < current:
            current = self.temporal = target  # down: at once, at a picture boundary
        elif target > current and tid == current + 1 and info.layer_sync:
            current = self.temporal = tid  # up: one layer, where it only needs TL0
        return tid <= current

    def _dropped_picture(self, pid_ext: int) -> bool:
        pd = self._pid_drops
        i = bisect_right(pd, pid_ext)
        return i > 0 and pd[i - 1] == pid_ext

    def _unwrap_pid(self, info: Vp8Info) -> int:
        raw = info.picture_id
        mod = info.picture_id_mod
        last = self._pid_last_ext
        if last < 0:
            ext = raw + mod  # headroom so early reordering stays positive
            self._pid_last_ext = ext
            self._pid_last_raw = raw
            return ext
        delta = (raw - self._pid_last_raw) % mod
        if delta >= mod // 2:
            delta -= mod
        ext = last + delta
        if delta > 0:
            self._pid_last_ext = ext
            self._pid_last_raw = raw
        return ext

    def _switch(self, mp: MediaPacket, info: Vp8Info) -> None:
        """Start forwarding ``mp.layer`` at this keyframe, continuing the numbering."""
        seq = mp.seq
        self._seq_off = self._out_hi + 1 - seq
        self.epoch_out = self._out_hi + 1  # this keyframe's output number
        self._base = seq
        self._in_hi = seq - 1
        self._drops = []
        self._seen = [-1] * DUP_WINDOW
        if self._started:
            gap = int((mp.arrival - self._last_arrival) * self._clock_rate)
            self._ts_off = (self.last_ts + max(gap, 1) - mp.timestamp) & 0xFFFFFFFF
        self._pid_last_ext = -1
        self._pid_drops = []
        if info.picture_id >= 0:
            pid_ext = self._unwrap_pid(info)
            # Keep the publisher's numbering on the first start: no rewrite at all.
            self._pid_off = self._pid_out_hi + 1 - pid_ext if self._pid_out_hi >= 0 else 0
            self._pid_base = pid_ext
            self._pid_hi = pid_ext - 1
        else:
            self._pid_off = 0
            self._pid_base = 0
            self._pid_hi = -1
        if info.tl0picidx >= 0 and self._tl0_out_last >= 0:
            self._tl0_off = (self._tl0_out_last + 1 - info.tl0picidx) & 0xFF
        self._last_arrival = mp.arrival
        previous = self.spatial
        self.spatial = mp.layer
        self.temporal = self.target_temporal
        self._need_keyframe = False
        self._started = True
        self.switches += 1
        if previous != self.spatial:
            self._listen_changed()
