"""WHIP and WHEP over HTTP with aiortc offers: who may publish or watch, what is refused and
how (status, header, a reason in plain text), trickle ICE with PATCH and its rules, DELETE, and
the room's view of an encoder: a presenter on stage that a host can remove."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCRtpSender

from tests import protocol_fixtures, whip_support
from tests.helpers import RunningServer, make_config, running_server
from tests.join_tokens import backend, organiser
from tests.protocol.test_ticketing import set_access
from tests.protocol_fixtures import Entrance, MatchingPerson
from tests.whip_support import SDP, SDP_FRAG, HttpPeer, camera_and_mic, peer
from webinar.accounts import hash_password
from webinar.app import MEDIA_SESSIONS
from webinar.signalling import whip
from webinar.storage.store import Event
from webinar.ticketing.records import EventAccess

server = protocol_fixtures.server
people = protocol_fixtures.people
http_peers = whip_support.http_peers
enter = Entrance(MatchingPerson)

Peers = tuple[aiohttp.ClientSession, list[HttpPeer]]


async def publisher(peers: Peers, server: RunningServer, **kw: Any) -> tuple[HttpPeer, str]:
    p = peer(peers, server.base_url)
    p.send(camera_and_mic(), **kw)
    return p, await p.offer()


def room_people(server: RunningServer, event: Event) -> list[str]:
    room = server.rooms.get(event.event_id)
    return [] if room is None else [p.name for p in room.participants()]


async def test_whip_needs_the_presenter_or_host_key(
    server: RunningServer, http_peers: Peers
) -> None:
    event = await server.create_event("Launch")
    p, offer = await publisher(http_peers, server)
    path = f"/whip/{event.event_id}"
    missing = await p.post(path, offer)
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="webinar"'
    assert "presenter key" in missing.text
    assert missing.headers["Content-Type"].startswith("text/plain")
    wrong = await p.post(path, offer, token="not-the-key")
    assert wrong.status == 401
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    async with http_peers[0].post(
        server.base_url + path,
        data=offer,
        headers={"Content-Type": SDP, "Authorization": f"Basic {event.presenter_key}"},
    ) as resp:
        assert resp.status == 401
    assert room_people(server, event) == []
    # the host key publishes too, as a presenter
    ok = await p.post(path + "?name=Studio%20OBS", offer, token=event.host_key)
    assert ok.status == 201, ok.text
    assert ok.headers["Content-Type"] == SDP
    assert ok.text.startswith("v=0")
    assert ok.headers["Location"].startswith(f"/whip/{event.event_id[:3]}-")
    assert ok.headers["ETag"].startswith('"') and ok.headers["Accept-Patch"] == SDP_FRAG
    assert ok.headers["Access-Control-Allow-Origin"] == "*"
    room = server.rooms.get(event.event_id)
    assert room is not None
    [encoder] = room.participants()
    assert (encoder.name, encoder.role.value) == ("Studio OBS", "presenter")
    assert (await p.delete()).status == 200
    await asyncio.sleep(0.2)
    assert room_people(server, event) == []


async def test_whip_refuses_what_it_cannot_forward(
    server: RunningServer, http_peers: Peers
) -> None:
    event = await server.create_event("Launch")
    key = event.presenter_key
    path = f"/whip/{event.event_id}"
    h264, h264_offer = await publisher(http_peers, server, codec="h264")
    refused = await h264.post(path, h264_offer, token=key)
    assert refused.status == 406
    assert "VP8" in refused.text and "H264" in refused.text and "v=0" not in refused.text
    p, offer = await publisher(http_peers, server)
    wrong_type = await p.post(path, offer, token=key, content_type="text/plain")
    assert wrong_type.status == 415 and wrong_type.headers["Accept-Post"] == SDP
    assert (await p.post(path, "hello", token=key)).status == 400
    unknown = await p.post("/whip/000-000-001", offer, token=key)
    assert unknown.status == 404 and "no event" in unknown.text
    assert (await p.post(path + "?name=" + "x" * 65, offer, token=key)).status == 400
    assert (await p.post(path + "?video=window", offer, token=key)).status == 400
    two = peer(http_peers, server.base_url)
    two.send([*camera_and_mic(), camera_and_mic()[0]])
    assert (await two.post(path, await two.offer(), token=key)).status == 400
    nothing = peer(http_peers, server.base_url)
    nothing.receive()  # a player's offer sent to the WHIP endpoint
    sends_nothing = await nothing.post(path, await nothing.offer(), token=key)
    assert sends_nothing.status == 400 and "sends no audio or video" in sends_nothing.text
    assert room_people(server, event) == []


async def test_refusals_speak_the_requests_language(
    server: RunningServer, http_peers: Peers
) -> None:
    event = await server.create_event("Launch")
    _p, offer = await publisher(http_peers, server)
    async with http_peers[0].post(
        f"{server.base_url}/whip/{event.event_id}",
        data=offer,
        headers={"Content-Type": SDP, "Accept-Language": "cs"},
    ) as resp:
        assert resp.status == 401
        text = await resp.text()
    with whip.i18n.using("cs"):
        assert text.strip() == whip.i18n._(
            "send the event's presenter key as a bearer token (Authorization: Bearer)"
        )


async def test_whep_follows_the_events_access(server: RunningServer, http_peers: Peers) -> None:
    event = await server.create_event("Members", access_type="password")
    await set_access(
        server,
        EventAccess(event.event_id, attendee_password_hash=hash_password("attend-me", n=2**10)),
    )
    path = f"/whep/{event.event_id}?name=Lobby%20screen"
    player = peer(http_peers, server.base_url)
    player.receive()
    offer = await player.offer()
    missing = await player.post(path, offer)
    assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await player.post(path, offer, token="attend-you")
    assert wrong.status == 401 and "password" in wrong.text
    ok = await player.post(path, offer, token="attend-me")
    assert ok.status == 201, ok.text
    assert ok.headers["Location"].startswith("/whep/")
    assert "a=sendonly" in ok.text and "VP8" in ok.text and "opus" in ok.text
    [viewer] = server.rooms.get(event.event_id).participants()  # type: ignore[union-attr]
    assert (viewer.name, viewer.role.value) == ("Lobby screen", "attendee")
    h264 = peer(http_peers, server.base_url)
    h264.receive(("video",), codec="h264")
    refused = await h264.post(path, await h264.offer(), token="attend-me")
    assert refused.status == 406 and "VP8" in refused.text
    open_event = await server.create_event("Open house")
    anyone = peer(http_peers, server.base_url)
    anyone.receive()
    assert (await anyone.post(f"/whep/{open_event.event_id}", await anyone.offer())).status == 201
    assert room_people(server, open_event) == ["WHEP"]


async def test_options_answer_the_preflight(server: RunningServer, http_peers: Peers) -> None:
    http = http_peers[0]
    event = await server.create_event()
    async with http.options(f"{server.base_url}/whip/{event.event_id}") as resp:
        assert resp.status == 204
        assert resp.headers["Accept-Post"] == SDP
        assert "POST" in resp.headers["Allow"]
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
        assert "Location" in resp.headers["Access-Control-Expose-Headers"]
    async with http.options(f"{server.base_url}/whep/{event.event_id}/0.abc") as resp:
        assert resp.status == 204
        assert resp.headers["Accept-Patch"] == SDP_FRAG
        assert "DELETE" in resp.headers["Allow"]


async def test_trickle_patches_and_their_rules(server: RunningServer, http_peers: Peers) -> None:
    event = await server.create_event("Launch")
    p, offer = await publisher(http_peers, server)
    trimmed, candidates = whip_support.strip_candidates(offer)
    assert candidates
    created = await p.post(f"/whip/{event.event_id}", trimmed, token=event.presenter_key)
    assert created.status == 201
    fragment = p.ice_fragment(candidates)
    assert (await p.patch(fragment, content_type="text/plain")).status == 415
    stale = await p.patch(fragment, if_match='"not-this-one"')
    assert stale.status == 412
    restart = await p.patch(fragment, if_match="*")
    assert restart.status == 422 and "restart" in restart.text
    other_ufrag = await p.patch(p.ice_fragment(candidates, ufrag="abcd"), if_match=p.etag)
    assert other_ufrag.status == 422
    assert (await p.patch("this is no fragment", if_match=p.etag)).status == 400
    bad = await p.patch(p.ice_fragment(["a=candidate:nonsense"]), if_match=p.etag)
    assert bad.status == 400
    ok = await p.patch(fragment, if_match=p.etag)
    assert ok.status == 204 and ok.headers["ETag"] == p.etag
    assert (await p.patch(p.ice_fragment([]))).status == 204  # only end-of-candidates
    assert (await p.delete()).status == 200
    assert (await p.patch(fragment)).status == 404
    assert (await p.delete()).status == 404
    # a session of another kind, another event, or none at all is not found
    assert p.location is not None
    assert (await p.delete(p.location.replace("/whip/", "/whep/"))).status == 404
    assert (await p.delete(f"/whip/{event.event_id}/0.nothing")).status == 404


async def test_a_host_sees_the_encoder_on_stage_and_removes_it(
    server: RunningServer, people: list[MatchingPerson], http_peers: Peers
) -> None:
    event = await server.create_event("Launch")
    host = await enter(server, people, event, "Host", event.host_key)
    p, offer = await publisher(http_peers, server)
    created = await p.post(f"/whip/{event.event_id}?name=OBS", offer, token=event.presenter_key)
    assert created.status == 201
    joined = await host.wait("participant-joined")
    encoder = joined["participant"]
    assert (encoder["name"], encoder["role"]) == ("OBS", "presenter")
    await host.request("remove", participant_id=encoder["participant_id"])
    left = await host.wait("participant-left", participant_id=encoder["participant_id"])
    assert left["reason"] == "removed"
    await asyncio.sleep(0.1)
    assert len(server.server.app[MEDIA_SESSIONS]) == 0
    assert (await p.patch(p.ice_fragment([]))).status == 404
    assert (await p.delete()).status == 404


async def test_a_session_that_never_connects_ends(
    server: RunningServer,
    people: list[MatchingPerson],
    http_peers: Peers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(whip, "CONNECT_TIMEOUT", 0.5)
    event = await server.create_event("Launch")
    host = await enter(server, people, event, "Host", event.host_key)
    p, offer = await publisher(http_peers, server)
    created = await p.post(f"/whip/{event.event_id}", offer, token=event.presenter_key, apply=False)
    assert created.status == 201
    joined = await host.wait("participant-joined")
    left = await host.wait(
        "participant-left", participant_id=joined["participant"]["participant_id"]
    )
    assert left["reason"] == "disconnected"
    assert len(server.server.app[MEDIA_SESSIONS]) == 0


async def test_a_player_leaves_when_the_event_ends(
    server: RunningServer, people: list[MatchingPerson], http_peers: Peers
) -> None:
    event = await server.create_event("Launch")
    host = await enter(server, people, event, "Host", event.host_key)
    player = peer(http_peers, server.base_url)
    player.receive()
    assert (await player.post(f"/whep/{event.event_id}", await player.offer())).status == 201
    assert len(server.server.app[MEDIA_SESSIONS]) == 1
    await host.request("end-for-all")
    for _ in range(50):
        if len(server.server.app[MEDIA_SESSIONS]) == 0:
            break
        await asyncio.sleep(0.05)
    assert len(server.server.app[MEDIA_SESSIONS]) == 0
    assert (await player.delete()).status == 404
    again = peer(http_peers, server.base_url)
    again.receive()
    ended = await again.post(f"/whep/{event.event_id}", await again.offer())
    assert ended.status == 410


async def test_an_offer_with_vp8_among_others_is_answered_with_vp8(
    server: RunningServer, http_peers: Peers
) -> None:
    event = await server.create_event("Launch")
    p = peer(http_peers, server.base_url)
    p.send(camera_and_mic())
    video = p.pc.getTransceivers()[0]
    caps = RTCRtpSender.getCapabilities("video").codecs
    video.setCodecPreferences(  # H.264 first, as an encoder that prefers it offers
        [c for c in caps if c.mimeType.lower() == "video/h264"]
        + [c for c in caps if c.mimeType.lower() in ("video/vp8", "video/rtx")]
    )
    created = await p.post(f"/whip/{event.event_id}", await p.offer(), token=event.presenter_key)
    assert created.status == 201, created.text
    video_section = created.text.split("m=video", 1)[1].split("m=audio", 1)[0]
    assert "VP8/90000" in video_section and "H264" not in video_section


async def test_an_encoder_can_share_a_screen_and_start_the_event(
    server: RunningServer, http_peers: Peers
) -> None:
    later = datetime.now(UTC) + timedelta(minutes=3)
    event = await server.store.create_event("Keynote", later)
    p, offer = await publisher(http_peers, server)
    created = await p.post(
        f"/whip/{event.event_id}?name=Slides&video=screen&start=1", offer, token=event.presenter_key
    )
    assert created.status == 201, created.text
    room = server.rooms.get(event.event_id)
    assert room is not None and room.state.phase.value == "live"
    for _ in range(50):  # streams are added once the room's log has the op
        if len(room.streams()) == 2:
            break
        await asyncio.sleep(0.02)
    assert {s.source.value for s in room.streams()} == {"screen", "microphone"}


async def test_sessions_count_against_the_connections_of_an_address(
    tmp_path: Path, http_peers: Peers
) -> None:
    config = make_config(tmp_path / "data")
    config = dataclasses.replace(
        config, signalling=dataclasses.replace(config.signalling, max_sockets_per_address=2)
    )
    async with running_server(tmp_path / "data", config) as server:
        event = await server.create_event("Open house")
        players = []
        for _ in range(3):
            player = peer(http_peers, server.base_url)
            player.receive()
            players.append(player)
        path = f"/whep/{event.event_id}"
        assert (await players[0].post(path, await players[0].offer())).status == 201
        assert (await players[1].post(path, await players[1].offer())).status == 201
        third = await players[2].post(path, await players[2].offer(), apply=False)
        assert third.status == 429 and "too many" in third.text
        assert (await players[0].delete()).status == 200  # a place comes free
        assert (await players[2].post(path, await players[2].offer())).status == 201
        assert len(server.server.app[MEDIA_SESSIONS]) == 2


async def test_a_presenter_s_signed_join_token_publishes_under_its_name(
    server: RunningServer, http_peers: Peers
) -> None:
    """A WHIP bearer may be a signed join token (docs/api.md): role presenter, the name it
    binds; an attendee's token, or one for another event, does not let anyone publish."""
    owner = await organiser(server)
    event = await server.store.create_event("Members' launch", None, owner_id=owner)
    other = await server.store.create_event("Another", None, owner_id=owner)
    keys = await backend(server, owner)
    path = f"/whip/{event.event_id}"
    for refused in (
        keys.sign(event, name="Ann", role="attendee"),
        keys.sign(other, name="Ann", role="presenter"),
        keys.sign(event, name="Ann", role="presenter", lifetime=-120),
    ):
        p, offer = await publisher(http_peers, server)
        assert (await p.post(path, offer, token=refused)).status == 401
    assert room_people(server, event) == []
    p, offer = await publisher(http_peers, server)
    ok = await p.post(
        path + "?name=Ignored", offer, token=keys.sign(event, name="Studio Ann", role="presenter")
    )
    assert ok.status == 201, ok.text
    assert room_people(server, event) == ["Studio Ann"]  # the token's name, not ?name=
    assert (await p.delete()).status == 200
