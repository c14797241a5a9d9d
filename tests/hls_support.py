"""An HLS output fed in real time from the broadcast TestPattern through the Encoder (until the
compositor exists): for the HLS protocol and browser tests and benchmarks/broadcast_hls.py."""

from __future__ import annotations

import threading
import time

from webinar.broadcast.encoder import Encoder, EncoderSettings, TestPattern
from webinar.broadcast.hls import HlsSink


class LivePattern:
    """TestPattern frames pushed at the wall clock's pace (on a thread of its own) into an
    Encoder whose packets go to ``sink``. ``started`` is the wall clock of frame 0, so frame
    ``n`` was made at ``started + n / fps``."""

    def __init__(
        self,
        sink: HlsSink,
        *,
        width: int = 640,
        height: int = 360,
        fps: int = 25,
        keyframe_seconds: float = 1.0,
        seconds: float = 600.0,
    ) -> None:
        self.sink = sink
        self.fps = fps
        self.pattern = TestPattern(width, height, fps)
        self.encoder = Encoder(
            EncoderSettings(width=width, height=height, fps=fps, keyframe_seconds=keyframe_seconds)
        )
        self.encoder.add_sink(sink)
        self.seconds = seconds
        self._stop = threading.Event()
        self.started = time.time()
        self._thread = threading.Thread(target=self._run, name="live-pattern", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sound = self.pattern.audio(self.seconds)
        next_sound = next(sound, None)
        self.started = time.time()
        for frame, at in self.pattern.video(self.seconds):
            if self._stop.is_set():
                break
            delay = self.started + at - time.time()
            if delay > 0:
                time.sleep(delay)
            while next_sound is not None and next_sound[1] <= at:
                # sound waits for room (the encoder's audio FIFO takes no gaps); a late
                # picture is dropped, as the compositor's would be
                self.encoder.push_audio(*next_sound, block=True)
                next_sound = next(sound, None)
            self.encoder.push_video(frame, at)

    @property
    def dropped(self) -> int:
        """Pictures the encoder had no room for (it fell behind the clock)."""
        return self.encoder.dropped

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.encoder._thread.is_alive():  # a failed encoder would wait for room forever
            self.encoder.close()


#: In the page: the TestPattern frame number burnt into what the HLS <video> shows now (16
#: blocks along the top edge, most significant first), with the wall clock (ms) it was read at
#: and the video's currentTime; null before a picture. Drawn on a canvas at the video's size.
SHOWN_FRAME_JS = """
() => {
  const video = document.querySelector("[data-testid=hls-video]");
  if (!video || video.readyState < 2 || !video.videoWidth) return null;
  const w = video.videoWidth, h = video.videoHeight;
  const canvas = window.__hlsCanvas || (window.__hlsCanvas = document.createElement("canvas"));
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, w, h);
  const block = Math.max(4, Math.floor(w / 32));
  const row = ctx.getImageData(0, Math.floor(block / 2), 16 * block, 1).data;
  let n = 0;
  for (let bit = 0; bit < 16; bit++) {
    const x = bit * block + Math.floor(block / 2);
    n = (n << 1) | (row[x * 4 + 1] > 128 ? 1 : 0);
  }
  return { frame: n, at: performance.timeOrigin + performance.now(), time: video.currentTime };
}
"""
