"""Bandwidth tiers over signalling: the quality choice and its validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import RunningServer, running_server
from webinar.client.peer import ClientError, SignallingClient
from webinar.sfu import VideoQuality
from webinar.storage.store import Event


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[SignallingClient]:
    async with aiohttp.ClientSession() as http:
        c = SignallingClient(http, server.base_url.replace("http", "ws") + "/ws")
        await c.connect()
        await c.request("hello", protocol=1)
        yield c
        await c.close()


async def test_set_video_quality_needs_a_join(client: SignallingClient) -> None:
    with pytest.raises(ClientError) as err:
        await client.request("set-video-quality", quality="high")
    assert err.value.code == "not-joined"


@pytest.mark.parametrize("quality", ["auto", "data-saver", "high"])
async def test_set_video_quality_is_kept_for_the_participant(
    client: SignallingClient, server: RunningServer, quality: str
) -> None:
    event: Event = await server.create_event("Tiers")
    joined = await client.request("join", event_id=event.event_id, name="Viewer")
    reply = await client.request("set-video-quality", quality=quality)
    assert reply["type"] == "ok"
    room = server.rooms.get(event.event_id)
    assert room is not None
    member = room._members[joined["participant_id"]]
    assert member.video_quality is VideoQuality(quality)


@pytest.mark.parametrize(
    "fields",
    [{"quality": "ultra"}, {"quality": 1}, {}, {"quality": "high", "extra": True}],
)
async def test_bad_video_quality_is_refused_and_the_session_goes_on(
    client: SignallingClient, server: RunningServer, fields: dict[str, object]
) -> None:
    event = await server.create_event("Tiers")
    await client.request("join", event_id=event.event_id, name="Viewer")
    with pytest.raises(ClientError) as err:
        await client.request("set-video-quality", **fields)
    assert err.value.code == "bad-message"
    assert (await client.request("ping"))["type"] == "pong"
