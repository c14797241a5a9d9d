"""Captions beside a recording: kept lines mapped onto the recording's time (paused spans cut
out, trimming taken off), and the WebVTT written with escaping and HH:MM:SS.mmm."""

from __future__ import annotations

from webinar.recordings.captions import (
    MAX_CUE_SECONDS,
    MIN_CUE_SECONDS,
    Cue,
    cues,
    escape,
    recording_time,
    timestamp,
    webvtt,
)

T0 = 1_700_000_000.0
# ran 10 s, paused 20 s (presenters-only), ran 15 s more
SPANS = [(T0, T0 + 10), (T0 + 30, T0 + 45)]


def test_recording_time_skips_the_paused_span() -> None:
    assert recording_time(SPANS, T0 + 2.5) == (2.5, 10.0)
    assert recording_time(SPANS, T0 + 20) is None  # paused
    assert recording_time(SPANS, T0 - 1) is None and recording_time(SPANS, T0 + 46) is None
    assert recording_time(SPANS, T0 + 31) == (11.0, 25.0)


def test_cues_land_on_the_recordings_time_and_end_before_the_next() -> None:
    lines = [
        (T0 + 1.0, "Hello"),
        (T0 + 2.0, "and welcome"),
        (T0 + 20.0, "said backstage"),  # paused: not in the recording
        (T0 + 31.0, "after the break " * 10),
        (T0 + 44.5, "the end"),
        (T0 + 50.0, "after the stop"),
    ]
    got = cues(lines, SPANS)
    assert got == [
        Cue(1.0, 2.0, "Hello"),  # cut at the next line
        Cue(2.0, 2.0 + MIN_CUE_SECONDS, "and welcome"),
        Cue(11.0, 11.0 + MAX_CUE_SECONDS, "after the break " * 10),
        Cue(24.5, 25.0, "the end"),  # never past its span's end
    ]


def test_trimming_moves_cues_and_drops_those_cut_away() -> None:
    lines = [(T0 + 1.0, "cut away"), (T0 + 5.0, "kept"), (T0 + 31.0, "later")]
    got = cues(lines, SPANS, trimmed=3.0, duration=20.0)
    assert [(c.start, c.text) for c in got] == [(2.0, "kept"), (8.0, "later")]
    assert [c.text for c in cues(lines, SPANS, trimmed=3.0, duration=7.0)] == ["kept"]
    # a file of the recording that starts 4 s in
    assert [(c.start, c.text) for c in cues(lines, SPANS, shift=4.0)] == [
        (1.0, "kept"),
        (7.0, "later"),
    ]


def test_webvtt_is_escaped_and_timed() -> None:
    assert timestamp(0) == "00:00:00.000"
    assert timestamp(3723.4567) == "01:02:03.457"
    assert escape("a < b && c --> d\n\ne") == "a &lt; b &amp;&amp; c --&gt; d e"
    text = webvtt([Cue(1.0, 2.5, "Fish & <chips>"), Cue(61.0, 63.0, "Two")])
    assert text == (
        "WEBVTT\n\n"
        "1\n00:00:01.000 --> 00:00:02.500\nFish &amp; &lt;chips&gt;\n\n"
        "2\n00:01:01.000 --> 00:01:03.000\nTwo\n"
    )
    assert webvtt([]) == "WEBVTT\n"
