"""LiveRoom event delivery, with recording peers and no network."""

from __future__ import annotations

from webinar.rooms.live import LiveRoom, OfferedStream
from webinar.rooms.roles import Role
from webinar.rooms.state import Participant, ParticipantUpdated, RoomEvent, RoomState
from webinar.sfu import AllocationReport, Router, RouterConfig


class Peer:
    def __init__(self) -> None:
        self.events: list[RoomEvent] = []

    def room_event(self, event: RoomEvent) -> None:
        self.events.append(event)

    def active_speaker(self, participant_id: str | None) -> None:
        pass

    async def subscriber_offer(self, sdp: str, streams: list[OfferedStream]) -> None:
        pass

    def disconnect(self, reason: str) -> None:
        pass

    def allocation(self, report: AllocationReport) -> None:
        pass

    def publisher_layers(self, producer_id: str, active: list[bool]) -> None:
        pass


async def test_quality_changes_reach_only_the_subject_and_presenters() -> None:
    room = LiveRoom("r", Router(RouterConfig()), RoomState(max_participants=10))
    peers = {pid: Peer() for pid in ("p", "a", "b")}
    room.join(Participant("p", "Pres", Role.PRESENTER), peers["p"])
    room.join(Participant("a", "A", Role.ATTENDEE), peers["a"])
    room.join(Participant("b", "B", Role.ATTENDEE), peers["b"])
    try:
        room.command(room.state.set_quality("a", "poor"))

        def quality(pid: str) -> list[RoomEvent]:
            return [
                e
                for e in peers[pid].events
                if isinstance(e, ParticipantUpdated) and e.cause == "quality"
            ]

        assert len(quality("a")) == 1 and len(quality("p")) == 1
        assert quality("b") == []  # other attendees are not told
    finally:
        await room.close()
