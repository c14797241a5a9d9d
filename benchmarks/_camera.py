"""A synthetic talking-head camera for the broadcast benchmarks, encoded as a browser sends it.

What a webinar camera shows is mostly still: a room behind a person who moves a little and
talks. :func:`talking_head` draws that with Pillow (synthetic, not filmed): a still room (a
wall with a soft gradient and a fine static texture, a bookshelf, a window, a plant), and
in front a person whose head and shoulders sway slowly, who blinks, and whose mouth moves
as if speaking — about a fifth of the picture changes from frame to frame, the rest never.
:func:`gradient` is the old hard case: a diagonal gradient that moves everywhere every frame.

:func:`simulcast_clips` encodes a clip the way the web client publishes a camera
(``web/static/js/tiers.js``: three VP8 encodings, ``q`` a quarter of the size at
150 kbit/s, ``h`` half at 500 kbit/s, ``f`` full at 1.2 Mbit/s; libvpx realtime, CBR, a
keyframe every second).
"""

from __future__ import annotations

import fractions
import math
import random
from dataclasses import dataclass

import av
from PIL import Image, ImageDraw, ImageFilter

#: The web client's camera encodings (rid, size divisor, bit/s), lowest first.
ENCODINGS = (("q", 4, 150_000), ("h", 2, 500_000), ("f", 1, 1_200_000))


@dataclass(frozen=True, slots=True)
class Vp8Clip:
    width: int
    height: int
    frames: tuple[bytes, ...]
    bitrate_bps: int


def _room(width: int, height: int) -> Image.Image:
    """The still background: a wall, a window, a bookshelf, a plant, a fine texture."""
    rng = random.Random(7)
    wall = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    wall = Image.blend(wall, Image.new("RGB", (width, height), (196, 182, 160)), 0.8)
    draw = ImageDraw.Draw(wall)
    sx, sy = width / 1280, height / 720
    draw.rectangle((int(60 * sx), int(60 * sy), int(360 * sx), int(330 * sy)), fill=(214, 228, 240))
    draw.line(
        (int(210 * sx), int(60 * sy), int(210 * sx), int(330 * sy)), fill=(120, 110, 100), width=6
    )
    shelf_x = int(880 * sx)
    for row in range(4):
        top = int((90 + row * 120) * sy)
        draw.rectangle(
            (shelf_x, top + int(100 * sy), int(1230 * sx), top + int(110 * sy)), fill=(110, 80, 50)
        )
        x = shelf_x + 6
        while x < int(1220 * sx):
            w = rng.randint(int(14 * sx), int(34 * sx))
            h = rng.randint(int(60 * sy), int(98 * sy))
            colour = (rng.randint(40, 200), rng.randint(40, 200), rng.randint(40, 200))
            draw.rectangle((x, top + int(100 * sy) - h, x + w, top + int(100 * sy)), fill=colour)
            x += w + 2
    for k in range(9):
        cx = int((120 + 40 * math.cos(k)) * sx)
        cy = int((470 + 50 * math.sin(k * 1.7)) * sy)
        draw.ellipse(
            (cx - int(40 * sx), cy - int(22 * sy), cx + int(40 * sx), cy + int(22 * sy)),
            fill=(50, 120 + k * 8, 60),
        )
    draw.rectangle((int(90 * sx), int(540 * sy), int(160 * sx), int(660 * sy)), fill=(150, 90, 60))
    # A camera's picture is never flat: a fine, still texture (sensor pattern, wall paint).
    noise = Image.effect_noise((width, height), 12).convert("RGB")
    return Image.blend(wall, noise, 0.06).filter(ImageFilter.SMOOTH)


def talking_head(
    width: int = 1280, height: int = 720, fps: int = 30, seconds: float = 4.0
) -> list[av.VideoFrame]:
    """Frames (yuv420p) of a person talking in front of a still room."""
    room = _room(width, height)
    rng = random.Random(11)
    sx, sy = width / 1280, height / 720
    frames = []
    n = round(seconds * fps)
    mouth = 0.0
    for i in range(n):
        t = i / fps
        # A slow sway that comes back to where it started when the clip loops.
        phase = 2 * math.pi * i / n
        dx = 18 * math.sin(phase) + 6 * math.sin(3 * phase)
        dy = 5 * math.sin(2 * phase)
        picture = room.copy()
        draw = ImageDraw.Draw(picture)
        cx, cy = (640 + dx) * sx, (330 + dy) * sy
        # Shoulders and body (a shirt with a little shading), neck, head, hair.
        draw.ellipse(
            (cx - 300 * sx, cy + 190 * sy, cx + 300 * sx, cy + 700 * sy), fill=(40, 70, 120)
        )
        draw.ellipse(
            (cx - 240 * sx, cy + 230 * sy, cx + 240 * sx, cy + 640 * sy), fill=(48, 82, 138)
        )
        draw.rectangle(
            (cx - 45 * sx, cy + 110 * sy, cx + 45 * sx, cy + 230 * sy), fill=(205, 160, 130)
        )
        draw.ellipse(
            (cx - 110 * sx, cy - 140 * sy, cx + 110 * sx, cy + 150 * sy), fill=(224, 178, 146)
        )
        draw.chord(
            (cx - 118 * sx, cy - 160 * sy, cx + 118 * sx, cy + 40 * sy), 180, 360, fill=(70, 45, 30)
        )
        # Eyes (closed for a blink every ~3 s) and the mouth, opening as if speaking.
        blink = (i % round(3.1 * fps)) < 4
        for ex in (-42, 42):
            x0, y0 = cx + (ex - 16) * sx, cy + (-10 - (2 if blink else 9)) * sy
            x1, y1 = cx + (ex + 16) * sx, cy + (-10 + (2 if blink else 9)) * sy
            draw.ellipse((x0, y0, x1, y1), fill=(255, 255, 255) if not blink else (200, 150, 120))
            if not blink:
                draw.ellipse(
                    (cx + (ex - 6) * sx, cy - 16 * sy, cx + (ex + 6) * sx, cy - 4 * sy),
                    fill=(60, 40, 30),
                )
        target = abs(math.sin(2 * math.pi * 3.3 * t)) * (0.4 + 0.6 * rng.random())
        mouth += (target - mouth) * 0.5
        h = 4 + 26 * mouth
        draw.ellipse(
            (cx - 34 * sx, cy + (78 - h / 2) * sy, cx + 34 * sx, cy + (78 + h / 2) * sy),
            fill=(120, 40, 45),
        )
        frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
        frames.append(frame.reformat(format="yuv420p"))
    return frames


def gradient(
    width: int = 1280, height: int = 720, fps: int = 30, seconds: float = 4.0
) -> list[av.VideoFrame]:
    """The hard case: a diagonal gradient that moves everywhere every frame."""
    ramp = bytes(range(256)) * (width // 256 + 2)
    frames = []
    for i in range(round(seconds * fps)):
        y = b"".join(
            ramp[(row + i * 4) % 256 : (row + i * 4) % 256 + width] for row in range(height)
        )
        picture = Image.frombytes("L", (width, height), y).convert("RGB")
        frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
        frames.append(frame.reformat(format="yuv420p"))
    return frames


def encode_vp8(
    frames: list[av.VideoFrame], width: int, height: int, bitrate: int, fps: int = 30
) -> Vp8Clip:
    """One encoding, as a browser's libvpx makes it (realtime, CBR)."""
    codec = av.CodecContext.create("libvpx", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.time_base = fractions.Fraction(1, fps)
    codec.framerate = fractions.Fraction(fps, 1)
    # A keyframe every second: a browser sends one when asked (a new subscriber, a tap, a
    # switch of encoding); this replay cannot answer a request, so it offers one often.
    codec.gop_size = fps
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
        "partitions": "0",
    }
    out: list[bytes] = []
    for i, source in enumerate(frames):
        frame = source.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
        frame.pts = i
        frame.time_base = codec.time_base
        if i % fps == 0:
            frame.pict_type = av.video.frame.PictureType.I
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    out = out[: len(frames)]
    bps = int(sum(len(f) for f in out) * 8 / (len(out) / fps)) if out else 0
    return Vp8Clip(width, height, tuple(out), bps)


def simulcast_clips(frames: list[av.VideoFrame], fps: int = 30) -> tuple[Vp8Clip, ...]:
    """The three encodings of the web client's camera, lowest first."""
    width, height = frames[0].width, frames[0].height
    return tuple(
        encode_vp8(frames, width // div // 2 * 2, height // div // 2 * 2, bps, fps)
        for _rid, div, bps in ENCODINGS
    )
