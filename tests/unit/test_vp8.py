"""VP8 payload descriptor: reading the layer fields and rewriting them in place."""

from __future__ import annotations

import pytest

from webinar.sfu.vp8 import Vp8Info, build_descriptor, rewrite, scan


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # (descriptor fields, (begin, keyframe, pid, wide, tl0, tid, sync))
        ({}, (True, False, -1, False, -1, -1, False)),
        ({"keyframe": True}, (True, True, -1, False, -1, -1, False)),
        ({"picture_id": 0x1234}, (True, False, 0x1234, True, -1, -1, False)),
        ({"picture_id": 0x55, "wide": False}, (True, False, 0x55, False, -1, -1, False)),
        (
            {"picture_id": 7, "tl0picidx": 200, "temporal_id": 2, "layer_sync": True},
            (True, False, 7, True, 200, 2, True),
        ),
        (
            {"picture_id": 32767, "tl0picidx": 255, "temporal_id": 0, "keyframe": True},
            (True, True, 32767, True, 255, 0, False),
        ),
        (
            {"begin": False, "picture_id": 3, "temporal_id": 1},
            (False, False, 3, True, -1, 1, False),
        ),
        ({"begin": False, "keyframe": True}, (False, False, -1, False, -1, -1, False)),
    ],
)
def test_scan_reads_the_layer_fields(
    kwargs: dict[str, object], expected: tuple[object, ...]
) -> None:
    info = scan(build_descriptor(**kwargs))  # type: ignore[arg-type]
    assert info is not None
    got = (
        info.begin,
        info.keyframe,
        info.picture_id,
        info.pid_wide,
        info.tl0picidx,
        info.temporal_id,
        info.layer_sync,
    )
    assert got == expected


def test_scan_reads_a_chrome_packet() -> None:
    # X=1 S=1 | I L T | M + 15-bit pid 0x2345 | TL0PICIDX 9 | TID=1 Y=1 | keyframe header
    payload = bytes([0x90, 0xE0, 0xA3, 0x45, 0x09, 0x60, 0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A])
    info = scan(payload)
    assert info is not None
    assert (info.picture_id, info.tl0picidx, info.temporal_id, info.layer_sync) == (
        0x2345,
        9,
        1,
        True,
    )
    assert info.keyframe and info.begin
    assert (info.pid_pos, info.tl0_pos) == (2, 4)


def test_partition_other_than_zero_does_not_begin_a_picture() -> None:
    payload = bytearray(build_descriptor(picture_id=1, keyframe=True))
    payload[0] |= 0x01  # PID (partition index) 1
    info = scan(bytes(payload))
    assert info is not None and not info.begin and not info.keyframe


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x80", b"\x90\x80", b"\x90\x80\x80", b"\x90\x40", b"\x90\x20"],
)
def test_truncated_descriptors_are_refused(payload: bytes) -> None:
    assert scan(payload) is None


@pytest.mark.parametrize(
    ("wide", "new_pid", "written"),
    [(True, 0x7FFF + 5, 4), (True, 1000, 1000), (False, 130, 2), (False, 127, 127)],
)
def test_rewrite_changes_only_pid_and_tl0(wide: bool, new_pid: int, written: int) -> None:
    original = build_descriptor(
        picture_id=5, wide=wide, tl0picidx=10, temporal_id=1, body=b"\x9d\x01\x2a"
    )
    info = scan(original)
    assert info is not None
    out = rewrite(original, info, new_pid, 256 + 3)
    again = scan(bytes(out))
    assert again is not None
    assert again.picture_id == written
    assert again.tl0picidx == 3
    assert again.temporal_id == 1 and again.pid_wide == wide
    assert len(out) == len(original)
    assert out[again.tl0_pos + 2 :] == original[info.tl0_pos + 2 :]  # the VP8 payload untouched
    assert original == build_descriptor(
        picture_id=5, wide=wide, tl0picidx=10, temporal_id=1, body=b"\x9d\x01\x2a"
    )


def test_rewrite_leaves_absent_fields_alone() -> None:
    original = build_descriptor(temporal_id=2)
    info = scan(original)
    assert isinstance(info, Vp8Info)
    assert bytes(rewrite(original, info, 99, 99)) == original
