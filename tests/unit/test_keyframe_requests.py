"""Keyframe requests to a publisher under a storm of joiners: at most one PLI per layer
(SSRC) in any second and 0.32 s between any two, the first after a quiet second at once,
a held one dropped by a keyframe of its layer and sent when its window ends otherwise.

The clock is the SFU modules' ``time``, moved by the test; the publisher is modelled as
Chrome is: it answers a PLI (unless it answered one within 300 ms) with keyframes on all
its encodings, which arrive a little later."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from aiortc.rtcrtpreceiver import NackGenerator

import webinar.sfu.ingest as ingest
import webinar.sfu.producer as producer_module
import webinar.sfu.simulcast as simulcast
from tests.unit.test_recorder import FakeClock
from tests.unit.test_tiers import FakeTap, feed, make_ingress, rtp
from webinar.sfu.producer import Producer, ProducerCodec
from webinar.sfu.simulcast import KEYFRAME_REQUEST_INTERVAL, LAYER_KEYFRAME_INTERVAL
from webinar.sfu.types import MediaKind, MediaSource
from webinar.sfu.vp8 import build_descriptor

SSRCS = (111, 222, 333)
RIDS = ("q", "h", "f")
FPS = 30
CHROME_IGNORES = 0.3  # a request within this of the last one answered is ignored
ANSWER_DELAY = 0.05  # PLI to the keyframe's first packet at the SFU (RTT + encoding)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    c = FakeClock(5000.0)
    for module in (ingest, simulcast, producer_module):
        monkeypatch.setattr(module, "time", c)
    return c


class Chrome(FakeTap):
    """Writes down when each PLI came, and answers it as Chrome does."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.nack = NackGenerator()  # a single stream's (the m-line's)
        self.clock = clock
        self.sent: list[tuple[float, int]] = []  # (time, SSRC) of each PLI
        self.answered_at = -1e9
        self.keyframe_due: float | None = None  # keyframes of every layer from then on

    def send_pli(self, media_ssrc: int) -> None:
        super().send_pli(media_ssrc)
        now = self.clock.now
        self.sent.append((now, media_ssrc))
        if now - self.answered_at >= CHROME_IGNORES:
            self.answered_at = now
            self.keyframe_due = now + ANSWER_DELAY


def most_in_a_second(times: list[float]) -> int:
    """The most PLIs in any window of one second (half-open: [t, t + 1))."""
    return max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)


def test_500_joiners_in_a_minute_ask_each_layer_at_most_once_a_second(
    clock: FakeClock,
) -> None:
    """500 subscribers join at random moments of a minute, each watching one layer; each
    asks for a keyframe at once and again every second until one of its layer comes (as a
    consumer does), and a few ask again later (a subscriber's own PLI)."""
    ing, _, stats = make_ingress()
    chrome = Chrome(clock)
    ing._keyframes._tap = chrome  # type: ignore[assignment]
    rng = random.Random(24)
    start = clock.now
    joins = sorted(
        (start + rng.uniform(0, 60), rng.choices((0, 1, 2), (2, 3, 5))[0], i) for i in range(500)
    )
    extra = sorted((start + rng.uniform(0, 60), rng.randrange(3)) for _ in range(300))
    waiting: dict[int, tuple[int, float, float]] = {}  # joiner -> (layer, joined, asked)
    got_at: dict[int, float] = {}
    seq = [1, 1, 1]
    for ssrc, rid in zip(SSRCS, RIDS, strict=True):  # the SSRCs learned
        feed(ing, rtp(ssrc, 0, rid=rid, key=True))
    asked = 0
    for frame in range(int(62 * FPS)):
        clock.now = start + frame / FPS
        now = clock.now
        while joins and joins[0][0] <= now:
            _, layer, i = joins.pop(0)
            waiting[i] = (layer, now, now)
            ing.request_keyframe(layer)
            asked += 1
        while extra and extra[0][0] <= now:
            ing.request_keyframe(extra.pop(0)[1])
            asked += 1
        for i, (layer, joined, last) in list(waiting.items()):  # re-ask while waiting
            if now - last > 1.0:
                waiting[i] = (layer, joined, now)
                ing.request_keyframe(layer)
                asked += 1
        key = chrome.keyframe_due is not None and now >= chrome.keyframe_due
        if key:
            chrome.keyframe_due = None
        for layer, ssrc in enumerate(SSRCS):
            feed(ing, rtp(ssrc, seq[layer], key=key))
            seq[layer] += 1
            if key:
                for i in [i for i, (lay, _, _) in waiting.items() if lay == layer]:
                    got_at[i] = now - waiting.pop(i)[1]
    assert asked >= 800 and not waiting and len(got_at) == 500
    times = [t for t, _ in chrome.sent]
    for ssrc in SSRCS:
        own = [t for t, s in chrome.sent if s == ssrc]
        assert most_in_a_second(own) <= 1, ssrc
        assert all(b - a >= LAYER_KEYFRAME_INTERVAL for a, b in itertools.pairwise(own))
    assert all(b - a >= KEYFRAME_REQUEST_INTERVAL for a, b in itertools.pairwise(times))
    assert len(times) <= 3 * 62 and stats.keyframe_requests == len(times)
    assert stats.keyframe_requests_by_layer == [
        sum(1 for _, s in chrome.sent if s == ssrc) for ssrc in SSRCS
    ]
    # Every joiner had its keyframe within its layer's second (plus the answer's delay and
    # a frame), most much sooner.
    waits = sorted(got_at.values())
    assert waits[-1] <= LAYER_KEYFRAME_INTERVAL + ANSWER_DELAY + 2 / FPS, waits[-5:]
    assert waits[len(waits) // 2] <= 0.5, waits[len(waits) // 2]


def test_the_first_request_after_a_quiet_second_goes_at_once(clock: FakeClock) -> None:
    ing, tap, _ = make_ingress()
    for ssrc, rid in zip(SSRCS, RIDS, strict=True):
        feed(ing, rtp(ssrc, 1, rid=rid))
    assert ing.request_keyframe(2)
    clock.now += LAYER_KEYFRAME_INTERVAL + 0.001
    assert ing.request_keyframe(2)  # its layer's second is over: at once
    clock.now += KEYFRAME_REQUEST_INTERVAL + 0.001
    assert ing.request_keyframe(0)  # another layer, quiet, after the publisher's window
    assert tap.plis == [333, 333, 111]


def test_a_held_request_goes_when_its_window_ends_unless_a_keyframe_came(
    clock: FakeClock,
) -> None:
    ing, tap, _ = make_ingress()
    feed(ing, rtp(222, 1, rid="h"))
    t0 = clock.now
    assert ing.request_keyframe(1)
    clock.now = t0 + 0.5
    assert not ing.request_keyframe(1) and ing.layers[1].pli_held
    clock.now = t0 + LAYER_KEYFRAME_INTERVAL - 0.01
    feed(ing, rtp(222, 2))
    assert tap.plis == [222]  # not before the layer's second is over
    clock.now = t0 + LAYER_KEYFRAME_INTERVAL + 0.001
    feed(ing, rtp(222, 3))
    assert tap.plis == [222, 222] and not ing.layers[1].pli_held
    # held again, and a keyframe of the layer (another layer's PLI brought it) answers it
    clock.now += 0.2
    assert not ing.request_keyframe(1)
    feed(ing, rtp(222, 4, key=True))
    assert not ing.layers[1].pli_held
    clock.now = t0 + 3.0
    feed(ing, rtp(222, 5))
    assert tap.plis == [222, 222]
    # a keyframe of another layer does not answer it
    feed(ing, rtp(111, 1, rid="q"))
    assert ing.request_keyframe(1)
    clock.now = t0 + 3.5
    assert not ing.request_keyframe(1)
    feed(ing, rtp(111, 2, key=True))
    clock.now = t0 + 3.001 + LAYER_KEYFRAME_INTERVAL
    feed(ing, rtp(222, 6))
    assert tap.plis == [222, 222, 222, 222]


def single_stream(tap: Any) -> Producer:
    p = Producer(kind=MediaKind.VIDEO, source=MediaSource.CAMERA, mid="0", tap=tap)
    p.set_codec(ProducerCodec("video/VP8", 90000, 96, None), 4242)
    return p


def test_a_single_stream_is_asked_at_most_once_a_second(clock: FakeClock) -> None:
    tap = Chrome(clock)
    p = single_stream(tap)
    start = clock.now
    for frame in range(10 * FPS):  # a request with every frame for 10 s
        clock.now = start + frame / FPS
        p.request_keyframe()
        packet = rtp(4242, frame + 1)
        packet.payload = build_descriptor(picture_id=frame, keyframe=False)
        p.on_rtp(packet, 0)
    times = [t for t, _ in tap.sent]
    assert times[0] == start  # the first at once
    assert most_in_a_second(times) == 1 and 9 <= len(times) <= 10
    assert p.stats.keyframe_requests == len(times)
    assert p.stats.keyframe_requests_by_layer == [len(times)]
