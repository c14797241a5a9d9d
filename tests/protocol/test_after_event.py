"""After the event over real HTTP and WebSockets: the recording control and its rules,
attendance rows from real sessions, the statistics pages, exports and admin API,
recordings in the dashboard (list, download, trim, delete, quota), personal-data deletion."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from tests.helpers import RunningServer, make_config, running_server
from tests.protocol.test_dashboard import add_user, csrf_of, sign_in
from tests.protocol.test_room_rules import Person, enter, refused
from tests.unit.test_recorder import (
    VideoSender,
    audio_producer,
    opus_frames,
    video_producer,
    vp8_frames,
)
from webinar.app import ATTENDANCE, RECORDINGS
from webinar.interaction import store as ist
from webinar.rooms.chat import ChatMessage
from webinar.rooms.recording import RecordingStarted
from webinar.sfu.producer import SenderReportMapping
from webinar.sfu.recorder import Recorder
from webinar.sfu.rtp import ntp_from_seconds
from webinar.storage.store import Event


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


@pytest.fixture
async def people(server: RunningServer) -> AsyncIterator[list[Person]]:
    made: list[Person] = []
    yield made
    await asyncio.gather(*(p.close() for p in made))


async def test_recording_control_rules(server: RunningServer, people: list[Person]) -> None:
    event = await server.create_event()
    host = await enter(server, people, event, "Host", event.host_key)
    att = await enter(server, people, event, "Att")
    assert att.joined["room"]["recording"] == "off"
    await refused("forbidden", att.request("set-recording", recording=True))
    await refused("bad-message", host.request("set-recording", recording="yes"))
    await refused("bad-message", host.request("set-recording"))
    await host.request("set-recording", recording=True)
    update = await att.wait("recording-updated")
    assert update["status"] == "recording" and update["by"] == host.pid
    await host.request("set-mode", mode="presenters-only")
    paused = await att.wait("recording-updated", status="paused")
    assert paused["by"] is None
    await host.request("set-mode", mode="listen-only")
    await att.wait("recording-updated", status="recording")
    late = await enter(server, people, event, "Late")
    assert late.joined["room"]["recording"] == "recording"
    await host.request("set-recording", recording=False)
    await att.wait("recording-updated", status="off")


async def test_recording_waits_for_the_lobby_to_open(
    server: RunningServer, people: list[Person]
) -> None:
    from datetime import UTC, datetime, timedelta

    event = await server.store.create_event("Later", datetime.now(UTC) + timedelta(minutes=2))
    host = await enter(server, people, event, "Host", event.host_key)
    await refused("invalid-request", host.request("set-recording", recording=True))


async def test_quota_refuses_new_recordings(tmp_path: Path) -> None:
    import dataclasses

    config = make_config(tmp_path / "data")
    config = dataclasses.replace(
        config, recording=dataclasses.replace(config.recording, quota_mb=1)
    )
    async with running_server(tmp_path / "data", config) as server:
        add_user(server, "olga")
        with server.store.connect_sync() as sync:
            owner = sync.get_user_by_name("olga")
            assert owner is not None
            event = sync.create_event("Full", None, owner_id=owner.user_id)
        service = server.server.app[RECORDINGS]
        await store_recording(server, event, size_mb=1.2)
        made: list[Person] = []
        try:
            host = await enter(server, made, event, "Host", event.host_key)
            with pytest.raises(Exception) as err:
                await host.request("set-recording", recording=True)
            assert getattr(err.value, "code", "") == "quota-exceeded"
            assert "quota" in str(err.value)
            assert await service.usage(owner.user_id) > 1024 * 1024
        finally:
            await asyncio.gather(*(p.close() for p in made))


async def store_recording(server: RunningServer, event: Event, size_mb: float = 0.0) -> str:
    """A real two-second recording made by the recorder from synthetic RTP."""
    service = server.server.app[RECORDINGS]
    recording_id = f"rec_{int(time.time() * 1000) % 10**12:012x}"
    directory = service.directory_for(event.event_id, recording_id)
    recorder = Recorder(directory)
    start = time.time()
    video, audio = video_producer(), audio_producer()
    recorder.attach(video, feed="pa_x", label="Presenter")
    recorder.attach(audio, feed="pa_x", label="Presenter")
    for p in (video, audio):
        p.sender_report = SenderReportMapping(ntp=ntp_from_seconds(start), rtp=0, arrived=start)
    frames = vp8_frames(60, gop=15)
    opus = opus_frames(100)
    sender = VideoSender(video, frames, 0)
    # Feed with a shifted clock: pretend the frames arrive in real time.
    import webinar.sfu.recorder as rec

    class Clock:
        now = start

        def time(self) -> float:
            return self.now

    clock = Clock()
    real = rec.time
    rec.time = clock  # type: ignore[assignment]
    try:
        from aiortc.rtp import RtpPacket

        for i in range(100):
            clock.now = start + i * 0.02
            if i % 5 < 3 and i * 3 // 5 < 60:
                for packet in sender.packets(min(59, i * 3 // 5)):
                    video.on_rtp(packet, 0)
            audio.on_rtp(
                RtpPacket(
                    payload_type=111,
                    sequence_number=i,
                    timestamp=i * 960,
                    ssrc=5678,
                    payload=opus[i],
                ),
                0,
            )
        result = await recorder.stop()
    finally:
        rec.time = real  # type: ignore[assignment]
    if size_mb:
        path = directory / result.files[0].name
        with path.open("ab") as f:  # pad the file so it counts against the quota
            f.write(b"\0" * int(size_mb * 1024 * 1024))
        result.files[0].size = path.stat().st_size
    await service.finished(RecordingStarted(recording_id, event.event_id, directory, start), result)
    return recording_id


async def test_attendance_is_recorded_from_real_sessions(
    server: RunningServer, people: list[Person]
) -> None:
    event = await server.create_event()
    ann = await enter(server, people, event, "Ann", client_id="browser-ann")
    await enter(server, people, event, "Bob")
    await ann.request("leave")
    await ann.close()
    people.remove(ann)
    again = await enter(server, people, event, "Ann", client_id="browser-ann")
    assert again.pid != ann.pid
    stats = await server.server.app[ATTENDANCE].stats(event.event_id)
    assert stats.attendees == 2
    ann_stats = next(p for p in stats.people if p.name == "Ann")
    assert ann_stats.sessions == 2 and ann_stats.last_leave is None
    assert stats.peak_concurrency == 2
    assert ann_stats.browser.startswith(("Python", "Other"))  # aiohttp's user agent


async def test_dashboard_recordings_stats_and_exports(server: RunningServer) -> None:
    add_user(server, "olga")
    add_user(server, "other")
    with server.store.connect_sync() as sync:
        owner = sync.get_user_by_name("olga")
        assert owner is not None
        event = sync.create_event("Launch", None, owner_id=owner.user_id)
    recording_id = await store_recording(server, event)
    attendance = server.server.app[ATTENDANCE]
    sid = await attendance.joined(
        event_id=event.event_id,
        participant_id="pa_1",
        person_key="k1",
        name='Zoë, "Z"',
        role="attendee",
        user_agent="Mozilla/5.0 (Windows NT 10.0) Firefox/133.0",
        at=time.time() - 120,
    )
    await attendance.left(sid, "left")
    chat = ChatMessage("m_1", 1, "pa_1", 'Zoë, "Z"', "attendee", "Hello", time.time() - 60)
    await server.store.run(lambda core: ist.save_chat(core, event.event_id, chat))
    base = server.base_url
    http = await sign_in(server, "olga")
    stranger = await sign_in(server, "other")
    try:
        async with http.get(base + "/dashboard/recordings") as resp:
            html = await resp.text()
            assert resp.status == 200
            assert 'data-testid="recording-card"' in html and "Launch" in html
            assert 'data-testid="recording-duration"' in html
            token = csrf_of(html)
        api = await (await http.get(base + "/api/recordings")).json()
        (listed,) = api["recordings"]
        assert listed["recording_id"] == recording_id
        assert 1.5 < listed["duration_seconds"] < 2.5
        name = listed["files"][0]["name"]
        async with http.get(f"{base}/dashboard/recordings/{recording_id}/files/{name}") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == "video/webm"
            assert (await resp.read())[:4] == b"\x1a\x45\xdf\xa3"  # EBML
        async with stranger.get(f"{base}/dashboard/recordings/{recording_id}/files/{name}") as resp:
            assert resp.status == 404
        async with http.get(f"{base}/dashboard/recordings/{recording_id}/files/..%2Fx") as resp:
            assert resp.status == 404
        # trim to 1.0..2.0 s: cut at a keyframe (every 0.5 s here), no re-encoding
        async with http.post(
            f"{base}/dashboard/recordings/{recording_id}/trim",
            data={"csrf": token, "start": "1.0", "end": "2.0"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303 and "trimmed" in resp.headers["Location"]
        trimmed = (await (await http.get(base + "/api/recordings")).json())["recordings"][0]
        # from the last keyframe at or before 1.0 s (keyframes are at most 0.5 s apart)
        assert 0.95 < trimmed["duration_seconds"] < 1.55, trimmed
        path = server.server.app[RECORDINGS].root / recording_id / name
        with av.open(str(path)) as container:
            first = next(p for p in container.demux(video=0) if p.pts is not None)
            assert first.is_keyframe and first.pts == 0
        # statistics pages, exports, API
        display = event.display_id
        async with http.get(base + "/dashboard/stats") as resp:
            html = await resp.text()
            assert resp.status == 200 and 'data-testid="chart-monthly"' in html
        async with http.get(f"{base}/dashboard/events/{display}/stats") as resp:
            html = await resp.text()
            assert 'data-testid="stat-attendees">1<' in html
            assert "Firefox 133" in html and 'data-testid="chart-concurrency"' in html
        async with http.get(f"{base}/dashboard/events/{display}/export.csv?bom=1") as resp:
            body = await resp.read()
            assert body.startswith(b"\xef\xbb\xbf") and "Zoë".encode() in body
        async with http.get(f"{base}/dashboard/events/{display}/sessions.csv") as resp:
            lines = (await resp.text()).splitlines()
            assert lines[0].startswith("name,email,role,joined_at,left_at,seconds")
            assert len(lines) == 2 and ",left," in lines[1]
        export = json.loads(
            await (await http.get(f"{base}/dashboard/events/{display}/export.json")).read()
        )
        assert export["attendees"][0]["name"] == 'Zoë, "Z"'
        stats: dict[str, Any] = await (await http.get(f"{base}/api/events/{display}/stats")).json()
        assert stats["attendees"] == 1 and stats["peak_concurrency"] == 1
        async with stranger.get(f"{base}/api/events/{display}/stats") as resp:
            assert resp.status == 404
        monthly = await (await http.get(base + "/api/stats/monthly")).json()
        assert monthly["months"][0]["events"] == 1
        assert export["attendees"][0]["chat_messages"] == 1
        # one action deletes the event's personal data: attendance, interaction, recordings
        async with http.post(
            f"{base}/dashboard/events/{display}/delete-personal-data",
            data={"csrf": token},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        assert (await (await http.get(base + "/api/recordings")).json())["recordings"] == []
        assert (await attendance.stats(event.event_id)).participants == 0
        ev = event.event_id
        assert await server.store.run(lambda core: ist.export_rows(core, ev, "chat")[1]) == []
        assert not (server.server.app[RECORDINGS].root / recording_id).exists()
    finally:
        await http.close()
        await stranger.close()


async def test_apis_need_a_sign_in(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/api/recordings", "/api/stats/monthly", "/api/events/123456789/stats"):
            async with http.get(server.base_url + path) as resp:
                assert resp.status == 401


async def test_automatic_recording_starts_when_the_event_is_live(
    server: RunningServer, people: list[Person]
) -> None:
    event = await server.create_event()
    await server.server.app[RECORDINGS].set_auto_record(event.event_id, True)
    host = await enter(server, people, event, "Host", event.host_key)
    assert host.joined["room"]["recording"] == "recording"
    att = await enter(server, people, event, "Att")
    assert att.joined["room"]["recording"] == "recording"
