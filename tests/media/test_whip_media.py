"""WHIP and WHEP with media: an aiortc encoder publishing over WHIP reaches the room's
attendees (trickling its candidates with PATCH, or not) and leaves it with DELETE; an aiortc
player watching over WHEP decodes the stage, and its picture follows the stage (a screen share
takes it, the camera gets it back) on one m-line, without renegotiation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests import media_support, whip_support
from tests.helpers import RunningServer, running_server
from tests.media_support import until
from tests.whip_support import HttpPeer, camera_and_mic, peer
from webinar.client.media import ClipTrack, make_vp8_clip
from webinar.client.peer import WebinarClient

pytestmark = pytest.mark.media
clients = media_support.clients
client = media_support.client
http_peers = whip_support.http_peers

Peers = tuple[aiohttp.ClientSession, list[HttpPeer]]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


async def stream_messages(c: WebinarClient, type_: str, n: int) -> list[dict[str, object]]:
    assert c.signalling is not None
    return [await c.signalling.wait_for(type_, within=15) for _ in range(n)]


async def test_an_encoder_goes_on_stage_and_leaves_with_delete(
    server: RunningServer, clients: list[WebinarClient], http_peers: Peers
) -> None:
    event = await server.create_event("Launch")
    attendee = client(clients, server.base_url, "decode")
    await attendee.join(event.event_id, "Ann")
    encoder = peer(http_peers, server.base_url)
    encoder.send(camera_and_mic())
    created = await encoder.post(
        f"/whip/{event.event_id}?name=OBS", await encoder.offer(), token=event.presenter_key
    )
    assert created.status == 201, created.text
    added = await stream_messages(attendee, "stream-added", 2)
    assert {m["stream"]["name"] for m in added} == {"OBS"}  # type: ignore[index]
    assert {m["stream"]["source"] for m in added} == {"camera", "microphone"}  # type: ignore[index]
    await until(
        lambda: attendee.stats.frames["video"] > 20 and attendee.stats.frames["audio"] > 20,
        what="the attendee decodes the encoder's picture and sound",
    )
    assert (await encoder.delete()).status == 200
    ended = await stream_messages(attendee, "stream-ended", 2)
    assert {m["participant_id"] for m in ended} == {added[0]["stream"]["participant_id"]}  # type: ignore[index]
    await asyncio.sleep(0.5)
    room = server.rooms.get(event.event_id)
    assert room is not None and [p.name for p in room.participants()] == ["Ann"]
    frames = attendee.stats.frames["video"]
    await asyncio.sleep(1.0)
    assert attendee.stats.frames["video"] <= frames + 1


async def test_trickled_candidates_connect_the_encoder(
    server: RunningServer, clients: list[WebinarClient], http_peers: Peers
) -> None:
    event = await server.create_event("Launch")
    attendee = client(clients, server.base_url)
    await attendee.join(event.event_id, "Ann")
    encoder = peer(http_peers, server.base_url)
    encoder.send(camera_and_mic())
    trimmed, candidates = whip_support.strip_candidates(await encoder.offer())
    created = await encoder.post(f"/whip/{event.event_id}", trimmed, token=event.presenter_key)
    assert created.status == 201
    patched = await encoder.patch(encoder.ice_fragment(candidates), if_match=encoder.etag)
    assert patched.status == 204
    await until(
        lambda: attendee.stats.packets["video"] > 50 and attendee.stats.packets["audio"] > 50,
        what="media of the trickling encoder reaches the attendee",
    )
    room = server.rooms.get(event.event_id)
    assert room is not None
    [encoder_id] = [p.participant_id for p in room.participants() if p.name == "WHIP"]
    publish = room._members[encoder_id].publish
    assert publish is not None
    ice = publish.pc.getTransceivers()[0].receiver.transport.transport
    remote = ice._connection.remote_candidates
    assert len([c for c in remote if c.type == "host"]) >= len(candidates)  # the patched ones


async def test_a_player_watches_the_stage_and_follows_a_screen_share(
    server: RunningServer, clients: list[WebinarClient], http_peers: Peers
) -> None:
    event = await server.create_event("Launch")
    presenter = client(clients, server.base_url)
    await presenter.join(event.event_id, "Pia", event.presenter_key)
    await media_support.publish_camera_and_mic(presenter)  # 320x240
    player = peer(http_peers, server.base_url)
    player.receive()
    created = await player.post(f"/whep/{event.event_id}", await player.offer())
    assert created.status == 201, created.text
    await until(
        lambda: player.frames["video"] > 20 and player.frames["audio"] > 20,
        what="the player decodes the presenter",
    )
    assert player.sizes[-1] == (320, 240)
    # a second presenter shares a screen: it takes the player's picture, on the same m-line
    sharer = client(clients, server.base_url)
    await sharer.join(event.event_id, "Sam", event.presenter_key)
    screen = ClipTrack(make_vp8_clip(width=640, height=360, seconds=1, keyframe_interval=15))
    [shared] = await sharer.publish([(screen, "screen")])  # type: ignore[list-item]
    await until(lambda: player.sizes[-1] == (640, 360), what="the player shows the screen share")
    shown = player.frames["video"]
    await until(lambda: player.frames["video"] > shown + 20, what="the screen share keeps playing")
    await sharer.unpublish(shared["producer_id"])
    await until(lambda: player.sizes[-1] == (320, 240), what="the camera comes back")
    back = player.frames["video"]
    await until(lambda: player.frames["video"] > back + 20, what="the camera keeps playing")
    assert len(player.pc.getTransceivers()) == 2  # never renegotiated
    room = server.rooms.get(event.event_id)
    assert room is not None
    assert sorted(p.name for p in room.participants()) == ["Pia", "Sam", "WHEP"]
    assert (await player.delete()).status == 200
    await asyncio.sleep(0.3)
    assert sorted(p.name for p in room.participants()) == ["Pia", "Sam"]
