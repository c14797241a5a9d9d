"""RTP helpers of the forwarding path: VP8 descriptors, unwrapping, duplicates."""

from __future__ import annotations

import pytest

from webinar.sfu.rtp import (
    DuplicateFilter,
    SeqUnwrapper,
    abs_send_time_bytes,
    one_byte_extension,
    pad4,
    parse_vp8_descriptor,
    vp8_is_keyframe_start,
)

# X=1 S=1 PID=0 | I=1 L=1 T=1 | M=1 picture id 0x1234 | TL0PICIDX 7 | TID=2 Y=1
DESC_FULL = bytes([0x90, 0xE0, 0x80 | 0x12, 0x34, 0x07, (2 << 6) | 0x20])


@pytest.mark.parametrize(
    ("payload", "start", "picture_id", "tl0", "tid", "sync", "size"),
    [
        (bytes([0x10, 0x00]), True, -1, -1, -1, False, 1),
        (bytes([0x00, 0x00]), False, -1, -1, -1, False, 1),
        (bytes([0x90, 0x80, 0x05, 0x00]), True, 5, -1, -1, False, 3),
        (DESC_FULL + b"\x00", True, 0x1234, 7, 2, True, 6),
    ],
)
def test_vp8_descriptor(
    payload: bytes, start: bool, picture_id: int, tl0: int, tid: int, sync: bool, size: int
) -> None:
    d = parse_vp8_descriptor(payload)
    assert (d.start_of_partition, d.picture_id, d.tl0picidx, d.temporal_id, d.layer_sync) == (
        start,
        picture_id,
        tl0,
        tid,
        sync,
    )
    assert d.header_size == size


@pytest.mark.parametrize("payload", [b"", bytes([0x80]), bytes([0x90, 0x80]), bytes([0x90, 0x40])])
def test_vp8_descriptor_truncated(payload: bytes) -> None:
    with pytest.raises(ValueError):
        parse_vp8_descriptor(payload)


@pytest.mark.parametrize(
    ("payload", "keyframe"),
    [
        (bytes([0x10, 0x00]), True),  # S=1, P bit 0: keyframe
        (bytes([0x10, 0x01]), False),  # interframe
        (bytes([0x00, 0x00]), False),  # not the start of a partition
        (bytes([0x11, 0x00]), False),  # partition 1
        (DESC_FULL + bytes([0x00]), True),
        (DESC_FULL + bytes([0x01]), False),
        (DESC_FULL, False),  # descriptor only
        (b"", False),
    ],
)
def test_keyframe_detection(payload: bytes, keyframe: bool) -> None:
    assert vp8_is_keyframe_start(payload) is keyframe


def test_unwrapper_handles_wrap_and_reordering() -> None:
    u = SeqUnwrapper()
    first = u.unwrap(65534)
    assert u.unwrap(65535) == first + 1
    assert u.unwrap(0) == first + 2
    assert u.unwrap(1) == first + 3
    assert u.unwrap(65535) == first + 1  # late packet from before the wrap
    assert u.unwrap(2) == first + 4


def test_duplicate_filter() -> None:
    f = DuplicateFilter(size=16)
    assert f.first_time(100)
    assert not f.first_time(100)
    assert f.first_time(99)  # reordered, still new
    assert not f.first_time(99)
    assert f.first_time(130)
    assert not f.first_time(110)  # too old to tell: treated as a duplicate
    with pytest.raises(ValueError):
        DuplicateFilter(size=10)


def test_extension_helpers() -> None:
    assert one_byte_extension(1, b"0") == bytes([0x10]) + b"0"
    assert pad4(b"\x01") == b"\x01\x00\x00\x00"
    assert len(abs_send_time_bytes(12.5)) == 3
    with pytest.raises(ValueError):
        one_byte_extension(15, b"x")
