"""The composed recording as one output of a room's shared encoder (webinar.broadcast.room):
its MP4 takes only the spans the recording ran, in the compositor's output time, each from a
keyframe, without gaps; and a sink removed "in turn" gets every frame pushed before."""

from __future__ import annotations

import itertools
from pathlib import Path

import av

from webinar.broadcast.compositor import Mp4Sink
from webinar.broadcast.encoder import Encoder, EncoderSettings, TestPattern
from webinar.broadcast.room import _Window

FPS = 30
#: The fake compositor's clock: output second 0 is wall time 1000.
START = 1000.0


def feed(encoder: Encoder, seconds: float) -> None:
    pattern = TestPattern(320, 180, fps=FPS)
    sound = list(pattern.audio(seconds))
    i = 0
    for frame, at in pattern.video(seconds):
        while i < len(sound) and sound[i][1] <= at:
            encoder.push_audio(*sound[i], block=True)
            i += 1
        encoder.push_video(frame, at, block=True)


def read(path: Path) -> tuple[list[int], list[float], float]:
    with av.open(str(path)) as box:
        frames = list(box.decode(video=0))
        duration = (box.duration or 0) / 1e6
    return (
        [TestPattern.frame_number(f) for f in frames],
        [float(f.time or 0) for f in frames],
        duration,
    )


def test_paused_spans_are_cut_out_and_the_file_has_no_gap(tmp_path: Path) -> None:
    encoder = Encoder(EncoderSettings(width=320, height=180, fps=FPS, keyframe_seconds=2.0))
    mp4 = Mp4Sink(tmp_path / "composed.mp4")
    window = _Window(mp4, started=START, paused=False)
    assert window.bind(lambda wall: wall - START) == 0.0
    # paused from output second 2 to 3.5 (a keyframe is asked for where it resumes)
    assert window.mark(on=False, wall=START + 2.0) == 2.0
    resume = window.mark(on=True, wall=START + 3.5)
    assert resume == 3.5 and window.mark(on=True, wall=START + 3.6) is None  # not paused
    encoder.request_keyframe(resume)
    encoder.add_sink(window)
    feed(encoder, 6.0)
    encoder.remove_sink_in_turn(window)  # every frame pushed is in the file
    encoder.close()

    numbers, times, duration = read(mp4.path)
    assert numbers == [*range(0, 60), *range(105, 180)]
    assert times[0] == 0.0
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert max(steps) < 1.5 / FPS  # no hole where the pause was
    assert abs(duration - 4.5) < 0.1
    assert abs(mp4.duration - 4.5) < 0.1 and mp4.error is None


def test_a_recording_that_starts_on_a_running_stage_starts_at_zero(tmp_path: Path) -> None:
    """HLS (say) runs from output second 0; a recording starts at second 2.5: its file
    starts at 0 with the picture of second 2.5, and sound with it."""
    encoder = Encoder(EncoderSettings(width=320, height=180, fps=FPS, keyframe_seconds=2.0))
    mp4 = Mp4Sink(tmp_path / "late.mp4")
    window = _Window(mp4, started=START + 2.5, paused=False)
    start = window.bind(lambda wall: wall - START)
    assert start == 2.5
    encoder.request_keyframe(start)
    encoder.add_sink(window)
    feed(encoder, 4.0)
    encoder.remove_sink_in_turn(window)
    encoder.close()
    numbers, times, _duration = read(mp4.path)
    assert numbers[0] == 75 and numbers == list(range(75, 120))
    assert times[0] == 0.0
    with av.open(str(mp4.path)) as box:
        sound = [float(f.time or 0) for f in box.decode(audio=0)]
    assert sound and 0.0 <= sound[0] < 0.05
