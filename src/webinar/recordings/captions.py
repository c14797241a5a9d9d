"""Live captions beside a recording, as WebVTT: the kept caption lines (wall-clock times,
:mod:`webinar.rooms.captions`) mapped onto the recording's own time.

A recording runs in wall-clock *spans* (it pauses in presenters-only mode: the file plays on
without the paused time), and trimming takes seconds off its start. Recording time of a
wall-clock instant is the length of the earlier spans plus the time into its span, less what
was trimmed; a line sent while the recording was paused (or outside it, or trimmed away) has
no place in it and is left out. A cue lasts until the next line, and at most
:data:`MAX_CUE_SECONDS` (at least :data:`MIN_CUE_SECONDS`, as reading takes time), never past
its span's end. Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MIN_CUE_SECONDS = 1.5
MAX_CUE_SECONDS = 7.0
READING_CHARS_PER_SECOND = 15.0  # a cue shows at least as long as reading it takes


@dataclass(frozen=True, slots=True)
class Cue:
    start: float  # seconds of recording time
    end: float
    text: str


def recording_time(spans: Sequence[tuple[float, float]], wall: float) -> tuple[float, float] | None:
    """(recording seconds of ``wall``, recording seconds where its span ends); None when the
    recording did not run at ``wall`` (paused, before or after it)."""
    elapsed = 0.0
    for start, end in spans:
        if start <= wall <= end:
            return elapsed + (wall - start), elapsed + (end - start)
        elapsed += end - start
    return None


def cues(
    lines: Iterable[tuple[float, str]],
    spans: Sequence[tuple[float, float]],
    *,
    trimmed: float = 0.0,
    duration: float | None = None,
    shift: float = 0.0,
) -> list[Cue]:
    """Cues of ``lines`` ((wall-clock time, text), oldest first) in a recording that ran in
    ``spans``, ``trimmed`` seconds taken off its start, ``duration`` seconds long now;
    ``shift`` seconds are taken off every cue (a file of the recording that starts later)."""
    placed: list[tuple[float, float, str]] = []
    for at, text in sorted(lines, key=lambda line: line[0]):
        where = recording_time(spans, at)
        if where is None:
            continue
        start, span_end = where[0] - trimmed, where[1] - trimmed
        if start < 0 or (duration is not None and start >= duration):
            continue
        placed.append((start, span_end, text))
    out: list[Cue] = []
    for index, (start, span_end, text) in enumerate(placed):
        reading = len(text) / READING_CHARS_PER_SECOND
        end = start + min(MAX_CUE_SECONDS, max(MIN_CUE_SECONDS, reading))
        if index + 1 < len(placed):
            end = min(end, max(placed[index + 1][0], start + 0.1))
        end = min(end, span_end)
        if duration is not None:
            end = min(end, duration)
        end = max(end, start + 0.1)
        if end - shift <= 0:
            continue
        out.append(Cue(round(max(0.0, start - shift), 3), round(end - shift, 3), text))
    return out


def timestamp(seconds: float) -> str:
    """WebVTT's ``HH:MM:SS.mmm``."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def escape(text: str) -> str:
    """Cue text as WebVTT reads it: ``&``, ``<`` and ``>`` escaped, on one line (a blank
    line would end the cue), so ``-->`` cannot appear either."""
    one_line = " ".join(text.split())
    return one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(cue_list: Iterable[Cue]) -> str:
    parts = ["WEBVTT", ""]
    for number, cue in enumerate(cue_list, start=1):
        parts += [
            str(number),
            f"{timestamp(cue.start)} --> {timestamp(cue.end)}",
            escape(cue.text),
            "",
        ]
    return "\n".join(parts[:-1]) + "\n"
