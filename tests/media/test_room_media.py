"""Room rules checked on packets: what the SFU forwards, not what a UI shows."""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from aiortc.mediastreams import MediaStreamTrack

from tests import media_support
from tests.helpers import RunningServer, running_server
from webinar.client.media import ClipTrack, make_opus_clip, make_vp8_clip
from webinar.client.peer import ClientError, WebinarClient

pytestmark = pytest.mark.media
clients = media_support.clients
client = media_support.client


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


async def grows(c: WebinarClient, kind: str, seconds: float = 1.5) -> int:
    """How many packets of ``kind`` arrive in ``seconds``."""
    before = c.stats.packets[kind]
    await asyncio.sleep(seconds)
    return c.stats.packets[kind] - before


async def until_packets(c: WebinarClient, kind: str, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while c.stats.packets[kind] == 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {kind} packets within {within} s")
        await asyncio.sleep(0.1)


def av_tracks() -> list[tuple[ClipTrack, str]]:
    return [
        (
            ClipTrack(make_vp8_clip(width=320, height=240, seconds=1, keyframe_interval=15)),
            "camera",
        ),
        (ClipTrack(make_opus_clip(seconds=1)), "microphone"),
    ]


async def test_presenters_only_stops_forwarding_to_attendees(
    server: RunningServer, clients: list[WebinarClient]
) -> None:
    event = await server.create_event()
    pres = client(clients, server.base_url, "decode")
    pres2 = client(clients, server.base_url)
    att = client(clients, server.base_url)
    await pres.join(event.event_id, "Pres", event.presenter_key)
    await pres2.join(event.event_id, "Pres2", event.presenter_key)
    await att.join(event.event_id, "Att")
    await pres.publish(av_tracks())  # type: ignore[arg-type]
    await until_packets(att, "video")
    await until_packets(pres2, "audio")
    assert pres.signalling is not None
    await pres.signalling.request("set-mode", mode="presenters-only")
    await asyncio.sleep(0.3)
    assert await grows(att, "video") <= 1
    assert await grows(att, "audio") <= 1
    assert await grows(pres2, "video") > 20  # presenters still see each other
    await pres.signalling.request("set-mode", mode="listen-only")
    await asyncio.sleep(1.5)  # video resumes at the next keyframe
    assert await grows(att, "video") > 20
    assert await grows(att, "audio") > 30


async def test_mode_change_pauses_other_presenters_microphones(
    server: RunningServer, clients: list[WebinarClient]
) -> None:
    event = await server.create_event()
    switcher = client(clients, server.base_url)
    other = client(clients, server.base_url)
    att = client(clients, server.base_url)
    await switcher.join(event.event_id, "Switcher", event.presenter_key)
    await other.join(event.event_id, "Other", event.presenter_key)
    await att.join(event.event_id, "Att")
    producers = await other.publish(av_tracks())  # type: ignore[arg-type]
    mic = next(p["producer_id"] for p in producers if p["source"] == "microphone")
    await until_packets(att, "audio")
    assert switcher.signalling is not None and other.signalling is not None
    await switcher.signalling.request("set-mode", mode="discussion")
    paused = await other.signalling.wait_for(
        "stream-updated", where=lambda m: m["stream"]["producer_id"] == mic
    )
    assert paused["stream"]["pause_reason"] == "mode-changed"
    await asyncio.sleep(0.3)
    assert await grows(att, "audio") <= 1
    assert await grows(att, "video") > 10  # the camera was not touched
    await other.signalling.request("set-stream-paused", producer_id=mic, paused=False)
    assert await grows(att, "audio") > 30


async def test_granted_attendee_is_heard_by_the_others(
    server: RunningServer, clients: list[WebinarClient]
) -> None:
    event = await server.create_event()
    pres = client(clients, server.base_url)
    speaker = client(clients, server.base_url)
    listener = client(clients, server.base_url)
    await pres.join(event.event_id, "Pres", event.presenter_key)
    joined = await speaker.join(event.event_id, "Speaker")
    await listener.join(event.event_id, "Listener")
    with pytest.raises(ClientError) as err:
        await speaker.publish([(ClipTrack(make_opus_clip(seconds=1)), "microphone")])
    assert err.value.code == "forbidden"  # listen-only: no grant, no publishing
    assert speaker.signalling is not None and pres.signalling is not None
    await speaker.signalling.request("raise-hand")
    await pres.signalling.request(
        "grant", participant_id=joined["participant_id"], audio=True, video=False
    )
    await speaker.publish([(ClipTrack(make_opus_clip(seconds=1)), "microphone")])
    await until_packets(listener, "audio")
    assert await grows(listener, "audio") > 30
    assert await grows(pres, "audio") > 30
    # taking the grant back ends the stream for everyone
    await pres.signalling.request(
        "grant", participant_id=joined["participant_id"], audio=False, video=False
    )
    ended = await listener.signalling.wait_for("stream-ended")  # type: ignore[union-attr]
    assert ended["reason"] == "grant-revoked"
    await asyncio.sleep(0.3)
    assert await grows(listener, "audio") <= 1


class ToneTrack(MediaStreamTrack):
    """A loud 440 Hz tone as raw audio frames: aiortc encodes it and stamps the
    audio-level header extension, as a browser does."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._pts / 48000 - time.monotonic()))
        samples = array.array(
            "h",
            (
                int(12000 * math.sin(2 * math.pi * 440 * (self._pts + i) / 48000))
                for i in range(960)
            ),
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._pts += 960
        return frame


async def test_active_speaker_follows_the_audio_level(
    server: RunningServer, clients: list[WebinarClient]
) -> None:
    event = await server.create_event()
    quiet = client(clients, server.base_url)
    loud = client(clients, server.base_url)
    att = client(clients, server.base_url)
    await quiet.join(event.event_id, "Quiet", event.presenter_key)
    joined = await loud.join(event.event_id, "Loud", event.presenter_key)
    await att.join(event.event_id, "Att")
    await quiet.publish([(ClipTrack(make_opus_clip(seconds=1)), "microphone")])  # no level
    await loud.publish([(ToneTrack(), "microphone")])
    assert att.signalling is not None
    speaker = await att.signalling.wait_for(
        "active-speaker", within=10, where=lambda m: m["participant_id"] is not None
    )
    assert speaker["participant_id"] == joined["participant_id"]
