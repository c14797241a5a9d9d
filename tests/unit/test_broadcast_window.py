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


def sound_drift(path: Path) -> list[float]:
    """Per sound frame: its time in the file less the time a player reaches it, playing the
    samples one after the other (players do not leave holes in sound)."""
    drift = []
    played = 0.0
    with av.open(str(path)) as box:
        for frame in box.decode(audio=0):
            drift.append(float(frame.time or 0) - played)
            played += frame.samples / frame.sample_rate
    return drift


def test_each_span_keeps_the_sound_the_encoder_handed_out_before_its_keyframe(
    tmp_path: Path,
) -> None:
    """The video encoder's delay hands out the sound of a moment before its picture; a span
    starting at a keyframe keeps that sound, so the file's sound, played sample after sample,
    lasts as long as its pictures and stays with them after every pause."""
    encoder = Encoder(EncoderSettings(width=320, height=180, fps=FPS, keyframe_seconds=2.0))
    mp4 = Mp4Sink(tmp_path / "spans.mp4")
    window = _Window(mp4, started=START, paused=False)
    window.bind(lambda wall: wall - START)
    for pause, resume in ((1.5, 2.5), (4.0, 5.2)):
        window.mark(on=False, wall=START + pause)
        at = window.mark(on=True, wall=START + resume)
        assert at is not None and abs(at - resume) < 1e-6
        encoder.request_keyframe(at)
    encoder.add_sink(window)
    feed(encoder, 7.0)
    encoder.remove_sink_in_turn(window)
    encoder.close()
    _numbers, times, _duration = read(mp4.path)
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] == 0.0 and max(steps) < 1.5 / FPS
    assert abs(times[-1] + 1 / FPS - 4.8) < 0.05  # the pictures of the three spans
    # the sound has no hole either: each sound frame is played at its time, so it stays with
    # its picture after each pause (to within an AAC frame, 21 ms, at each span's start)
    drift = sound_drift(mp4.path)
    assert drift[0] == 0.0 and max(abs(d) for d in drift) < 0.022, drift


def test_the_sound_of_a_span_s_last_moment_handed_out_after_the_next_keyframe_is_kept(
    tmp_path: Path,
) -> None:
    """The compositor's clock stands still while paused, so a span ends where the next one
    starts; the audio encoder hands out a span's last sound only with the next sound, after
    the next span's keyframe. That sound still belongs to its span: without it the file's
    sound had a hole of ~0.1 s and played ahead of the pictures from then on."""
    encoder = Encoder(EncoderSettings(width=320, height=180, fps=FPS, keyframe_seconds=5.0))
    mp4 = Mp4Sink(tmp_path / "still.mp4")
    window = _Window(mp4, started=START, paused=False)
    window.bind(lambda wall: wall - START)
    window.mark(on=False, wall=START + 2.0)
    at = window.mark(on=True, wall=START + 2.0)
    assert at is not None
    encoder.request_keyframe(at)
    encoder.add_sink(window)
    feed(encoder, 4.0)
    encoder.remove_sink_in_turn(window)
    encoder.close()
    drift = sound_drift(mp4.path)
    assert max(abs(d) for d in drift) < 0.022, drift
