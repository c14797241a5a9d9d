"""A pipe descriptor crosses workers as JSON; the edge checks it before it makes a
producer of it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from webinar.sfu.pipe import _parse_descriptor
from webinar.sfu.types import MediaKind, MediaSource

GOOD: dict[str, Any] = {
    "version": 1,
    "producer_id": "pr_0123456789ab",
    "kind": "video",
    "source": "camera",
    "mid": "0",
    "codec": {
        "mime_type": "video/VP8",
        "clock_rate": 90000,
        "payload_type": 96,
        "channels": None,
        "parameters": {},
    },
    "encodings": [
        {"rid": "q", "ssrc": 1},
        {"rid": "h", "ssrc": None},
        {"rid": "f", "ssrc": 3},
    ],
    "temporal_layers": 3,
}


def test_a_simulcast_descriptor_survives_json() -> None:
    d = _parse_descriptor(json.loads(json.dumps(GOOD)))
    assert d.kind is MediaKind.VIDEO and d.source is MediaSource.CAMERA
    assert d.rids == ("q", "h", "f") and d.ssrcs == (1, None, 3)
    assert d.codec.payload_type == 96 and d.codec.rtx_payload_type is None


def test_a_single_stream_has_no_rids() -> None:
    single = copy.deepcopy(GOOD)
    single["encodings"] = [{"rid": None, "ssrc": 7}]
    d = _parse_descriptor(single)
    assert d.rids == () and d.ssrcs == (7,)


def broken(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    d = copy.deepcopy(GOOD)
    target = d
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("version",), 2),
        (("producer_id",), ""),
        (("producer_id",), "x" * 65),
        (("kind",), "data"),
        (("source",), "microphone"),  # audio source on a video producer
        (("codec", "payload_type"), 72),  # reads as RTCP
        (("codec", "payload_type"), 128),
        (("codec", "clock_rate"), 0),
        (("codec",), KeyError),
        (("encodings",), []),
        (("encodings",), [{"rid": str(i), "ssrc": i} for i in range(4)]),
        (("encodings",), [{"rid": "q", "ssrc": 1 << 32}, {"rid": "h", "ssrc": 2}]),
        (("encodings",), [{"rid": "q", "ssrc": 1}, {"rid": None, "ssrc": 2}]),
        (("encodings",), [{"rid": "x" * 17, "ssrc": 1}, {"rid": "h", "ssrc": 2}]),
        (("encodings",), "q"),
    ],
)
def test_a_bad_descriptor_is_refused(path: tuple[str, ...], value: Any) -> None:
    with pytest.raises(ValueError):
        _parse_descriptor(broken(path, value))


def test_audio_is_never_simulcast() -> None:
    audio = broken(("kind",), "audio")
    audio["source"] = "microphone"
    with pytest.raises(ValueError, match="simulcast"):
        _parse_descriptor(audio)
