"""A compositor's tap on a simulcast camera takes the encoding that fits its tile: real VP8
encodings of three sizes (made with PyAV here), packetized as a browser does, through a
real simulcast Producer into a FrameTap; the switch happens at a keyframe of the new
encoding, without a gap in the frames handed on."""

from __future__ import annotations

import fractions
import itertools

import av
from aiortc.rtp import RtpPacket

from tests.unit.test_recorder import packetize_vp8, video_producer
from tests.unit.test_tiers import FakeTap
from webinar.sfu.producer import Producer, ProducerCodec
from webinar.sfu.recorder import Frame, FrameTap, SyncGroup, _layer_sizes
from webinar.sfu.rtp import ntp_from_seconds, vp8_frame_size, vp8_keyframe_size
from webinar.sfu.types import MediaKind, MediaSource

SIZES = ((160, 90), (320, 180), (640, 360))
RIDS = ("q", "h", "f")
GOP = 10
FRAMES = 40


def encoding(
    size: tuple[int, int], *, frames: int = FRAMES, gop: int = GOP, fps: int = 30
) -> list[bytes]:
    """``frames`` VP8 frames of a changing grey at ``size``, a keyframe every ``gop``."""
    enc = av.CodecContext.create("libvpx", "w")
    assert isinstance(enc, av.VideoCodecContext)
    enc.width, enc.height = size
    enc.pix_fmt = "yuv420p"
    enc.time_base = fractions.Fraction(1, fps)
    enc.gop_size = gop
    enc.bit_rate = 300_000
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[bytes] = []
    for i in range(frames):
        frame = av.VideoFrame(size[0], size[1], "yuv420p")
        for j, plane in enumerate(frame.planes):
            plane.update(bytes([(i * 7 + j * 50) % 256]) * plane.buffer_size)
        frame.pts = i
        if i % gop == 0:
            frame.pict_type = av.video.frame.PictureType.I
        out += [bytes(p) for p in enc.encode(frame)]
    out += [bytes(p) for p in enc.encode(None)]
    return out[:frames]


class Camera:
    """Three encodings of one camera sent into a simulcast producer, frame by frame."""

    def __init__(self) -> None:
        self.tap = FakeTap()
        self.producer = Producer(
            kind=MediaKind.VIDEO,
            source=MediaSource.CAMERA,
            mid="0",
            tap=self.tap,  # type: ignore[arg-type]
            rids=RIDS,
        )
        self.producer.set_codec(ProducerCodec("video/VP8", 90000, 96, 97), None)
        self.streams = [encoding(size) for size in SIZES]
        self.seq = [100, 5000, 9000]
        self.sent = 0

    def ssrc(self, layer: int) -> int:
        return 1000 + layer

    def send_frame(self) -> None:
        i = self.sent
        for layer, stream in enumerate(self.streams):
            for payload, last in packetize_vp8(stream[i % FRAMES], i):
                packet = RtpPacket(
                    payload_type=96,
                    marker=int(last),
                    sequence_number=self.seq[layer] & 0xFFFF,
                    timestamp=(i * 3000) & 0xFFFFFFFF,
                    ssrc=self.ssrc(layer),
                    payload=payload,
                )
                if i == 0:
                    packet.extensions.rtp_stream_id = RIDS[layer]
                self.seq[layer] += 1
                self.producer.on_rtp(packet, 0)
        if i == 0:  # each encoding's own sender report
            ingress = self.producer.simulcast
            assert ingress is not None
            for layer in range(3):
                ingress.on_sender_report(self.ssrc(layer), ntp_from_seconds(1e9), 0, 1e9)
        self.sent += 1


def test_the_ingest_reads_each_encodings_size_from_its_keyframes() -> None:
    camera = Camera()
    assert camera.producer.layer_sizes() == [None, None, None]
    camera.send_frame()
    assert camera.producer.layer_sizes() == list(SIZES)


def test_vp8_keyframe_size_reads_past_the_payload_descriptor() -> None:
    key = encoding((320, 180))[0]
    payload = next(packetize_vp8(key, 5))[0]
    assert vp8_keyframe_size(payload) == (320, 180) == vp8_frame_size(key)
    delta = next(packetize_vp8(encoding((320, 180))[1], 6))[0]
    assert vp8_keyframe_size(delta) is None


def test_sizes_not_seen_yet_are_estimated_by_halving() -> None:
    assert _layer_sizes([None, None, (1280, 720)]) == [(320, 180), (640, 360), (1280, 720)]
    assert _layer_sizes([None, (640, 360), None]) == [(320, 180), (640, 360), (1280, 720)]
    assert _layer_sizes([None, None]) == [None, None]


def test_a_tap_switches_to_the_encoding_that_fits_at_its_keyframe() -> None:
    camera = Camera()
    camera.send_frame()
    got: list[tuple[int, int, bool, int]] = []  # (width, height, keyframe, RTP time)

    def on_frame(tap: FrameTap, frame: Frame, wall: float) -> None:
        size = vp8_frame_size(frame.data) if frame.keyframe else None
        width, height = size or (got[-1][:2] if got else (0, 0))
        got.append((width, height, frame.keyframe, frame.rtp_timestamp))

    tap = FrameTap(camera.producer, SyncGroup(), on_frame)
    camera.producer.add_consumer(tap)
    assert camera.producer.pinned_layer(tap.id) == 2  # the best flowing
    for _ in range(GOP):  # the first keyframe of the top encoding, then its frames
        camera.send_frame()
    assert got and all((w, h) == SIZES[2] for w, h, _k, _t in got)

    plis = len(camera.tap.plis)
    tap.fit_size(316, 178)  # a 320x180 tile (a grid): the middle encoding fits
    ingress = camera.producer.simulcast
    assert ingress is not None  # its keyframe asked for (or held: the publisher's interval)
    assert camera.tap.plis[plis:] == [camera.ssrc(1)] or ingress.layers[1].pli_held
    assert camera.producer.pinned_layers() == {1, 2}  # both kept on while switching
    before = len(got)
    for _ in range(GOP):
        camera.send_frame()
    assert camera.producer.pinned_layer(tap.id) == 1
    assert camera.producer.pinned_layers() == {1}
    assert tap.switches == 1
    sizes = [(w, h) for w, h, _k, _t in got[before:]]
    first_mid = sizes.index(SIZES[1])
    assert set(sizes[:first_mid]) <= {SIZES[2]} and set(sizes[first_mid:]) == {SIZES[1]}
    assert got[before + first_mid][2]  # it starts at a keyframe
    times = [t for _w, _h, _k, t in got]
    assert times == sorted(times)
    assert all(b - a == 3000 for a, b in itertools.pairwise(times))  # no gap

    tap.fit_size(640, 360)  # one camera full: back to the top one
    for _ in range(GOP):
        camera.send_frame()
    assert camera.producer.pinned_layer(tap.id) == 2
    assert got[-1][:2] == SIZES[2]
    # No gap; the keyframe switched to may show the instant the old encoding just showed
    # (whichever encoding's packets come first): the decoder needs it all the same.
    times = [t for _w, _h, _k, t in got]
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert set(steps) <= {0, 3000} and steps.count(0) <= tap.switches - 1


def test_a_tile_larger_than_every_encoding_gets_the_largest() -> None:
    camera = Camera()
    camera.send_frame()
    tap = FrameTap(camera.producer, SyncGroup(), lambda t, f, w: None)
    camera.producer.add_consumer(tap)
    tap.fit_size(1920, 1080)
    assert camera.producer.pinned_layer(tap.id) == 2 and camera.producer.pinned_layers() == {2}
    tap.fit_size(100, 50)
    for _ in range(GOP + 1):
        camera.send_frame()
    assert camera.producer.pinned_layer(tap.id) == 0


def test_a_single_stream_is_left_as_it_is() -> None:
    producer = video_producer()
    tap = FrameTap(producer, SyncGroup(), lambda t, f, w: None)
    producer.add_consumer(tap)
    tap.fit_size(320, 180)
    assert producer.pinned_layer(tap.id) == 0 and producer.layer_sizes() == [None]
