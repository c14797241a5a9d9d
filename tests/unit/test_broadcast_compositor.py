"""The compositor on synthetic RTP: real VP8/Opus bitstreams fed through real Producers in
real time, taps (the recorder's depacketizing and sender-report timing), decode, layout and
mix on the compositor's thread, encoded once and read back from the composed MP4."""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path

import av
from aiortc.rtp import RtpPacket

from tests.unit.test_recorder import (
    VideoSender,
    audio_producer,
    opus_frames,
    send,
    video_producer,
)
from webinar.broadcast.compositor import Compositor, Mp4Sink, Rect, fit, layout
from webinar.broadcast.encoder import Encoder, EncoderSettings
from webinar.recordings.library import trim_webm
from webinar.sfu.producer import SenderReportMapping
from webinar.sfu.rtp import ntp_from_seconds

FPS = 30


def test_layout_follows_the_stage() -> None:
    one = layout(1280, 720, 1, main=False)
    assert one.main is None and one.cameras == (Rect(0, 0, 1280, 720),)
    four = layout(1280, 720, 4, main=False)
    assert len(four.cameras) == 4 and len({(r.x, r.y) for r in four.cameras}) == 4
    assert all(r.w < 1280 // 2 + 1 and r.h < 720 // 2 + 1 for r in four.cameras)
    seven = layout(1280, 720, 7, main=False)
    assert len(seven.cameras) == 7
    assert all(r.x >= 0 and r.x + r.w <= 1280 and r.y + r.h <= 720 for r in seven.cameras)
    shared = layout(1280, 720, 2, main=True)
    assert shared.main is not None and shared.main.w > 1000
    assert all(r.x >= shared.main.w for r in shared.cameras)  # a strip beside the screen
    alone = layout(1280, 720, 0, main=True)
    assert alone.main == Rect(0, 0, 1280, 720) and alone.cameras == ()
    assert fit(Rect(0, 0, 1280, 720), 640, 480) == Rect(160, 0, 960, 720)


def bright_vp8(n: int, luma: int, size: tuple[int, int] = (320, 240)) -> list[bytes]:
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height = size
    enc.pix_fmt = "yuv420p"
    enc.time_base = fractions.Fraction(1, FPS)
    enc.gop_size = 30
    enc.bit_rate = 300_000
    out: list[bytes] = []
    for i in range(n):
        frame = av.VideoFrame(size[0], size[1], "yuv420p")
        frame.planes[0].update(bytes([luma]) * frame.planes[0].buffer_size)
        frame.planes[1].update(bytes([128]) * frame.planes[1].buffer_size)
        frame.planes[2].update(bytes([128]) * frame.planes[2].buffer_size)
        frame.pts = i
        out += [bytes(p) for p in enc.encode(frame)]
    out += [bytes(p) for p in enc.encode(None)]
    return out


async def publish(
    frames: list[bytes],
    opus: list[bytes],
    compositor: Compositor,
    *,
    pause: tuple[float, float] | None = None,
) -> None:
    """A camera and a microphone sent in real time, their sender reports in place."""
    video, audio = video_producer(), audio_producer()
    compositor.attach(video, feed="alice", label="Alice")
    compositor.attach(audio, feed="alice", label="Alice")
    start = time.time()
    v_ts0, a_ts0 = 1_000_000, 4_000_000_000
    video.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=v_ts0, arrived=start)
    audio.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=a_ts0, arrived=start)
    sender = VideoSender(video, frames, v_ts0)
    a_seq, v, a = 7, 0, 0
    while v < len(frames) or a < len(opus):
        now = time.time() - start
        if pause is not None:
            if pause[0] <= now < pause[1]:
                compositor.pause()
            elif now >= pause[1]:
                compositor.resume()
        while v < len(frames) and v / FPS <= now:
            send(video, sender.packets(v))
            v += 1
        while a < len(opus) and a * 0.02 <= now:
            packet = RtpPacket(
                payload_type=111,
                sequence_number=a_seq,
                timestamp=(a_ts0 + a * 960) & 0xFFFFFFFF,
                ssrc=audio.ssrc or 0,
                payload=opus[a],
            )
            audio.on_rtp(packet, 0)
            a_seq, a = a_seq + 1, a + 1
        await asyncio.sleep(0.005)


def compose(tmp_path: Path, seconds: float, pause: tuple[float, float] | None = None) -> Path:
    frames = bright_vp8(int(seconds * FPS), 200)
    opus = opus_frames(int(seconds * 50))
    settings = EncoderSettings(width=320, height=180, fps=FPS, keyframe_seconds=1.0)
    encoder = Encoder(settings)
    sink = Mp4Sink(tmp_path / "composed.mp4")
    encoder.add_sink(sink)
    compositor = Compositor(encoder, delay=0.3)

    async def run() -> None:
        await publish(frames, opus, compositor, pause=pause)
        await asyncio.sleep(0.4)  # the output runs behind by its delay
        await asyncio.to_thread(compositor.close)

    asyncio.run(run())
    assert sink.error is None
    assert compositor.stats.decode_errors == 0
    return sink.path


def test_a_camera_is_composed_full_and_its_sound_mixed(tmp_path: Path) -> None:
    path = compose(tmp_path, 3.0)
    with av.open(str(path)) as box:
        assert box.streams.video[0].codec_context.width == 320
        duration = (box.duration or 0) / 1e6
        frames = list(box.decode(video=0))
    assert 3.0 <= duration <= 3.9, duration
    last = frames[-5]
    plane = last.planes[0]
    data = bytes(plane)
    centre = data[90 * plane.line_size + 160]
    assert centre > 170, centre  # the camera's bright picture fills the stage
    with av.open(str(path)) as box:
        samples = sum(f.samples for f in box.decode(audio=0))
    assert samples / 48_000 > 2.5


def test_paused_time_is_not_composed(tmp_path: Path) -> None:
    path = compose(tmp_path, 4.0, pause=(1.0, 2.5))
    with av.open(str(path)) as box:
        duration = (box.duration or 0) / 1e6
    assert 2.3 <= duration <= 3.2, duration


def test_the_composed_mp4_is_trimmed_on_a_keyframe(tmp_path: Path) -> None:
    path = compose(tmp_path, 3.0)
    cut, duration = trim_webm(path, tmp_path / "composed.trim.mp4", 1.2, 2.5)
    assert cut == 1.0  # the keyframe before 1.2 s (one a second here)
    assert 1.4 <= duration <= 1.6, duration
    with av.open(str(tmp_path / "composed.trim.mp4")) as box:
        assert box.format.name.startswith("mov,mp4")
        frames = sum(1 for _ in box.decode(video=0))
    assert 40 <= frames <= 48, frames
