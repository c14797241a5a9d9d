"""LiveRoom event delivery, with recording peers and no network."""

from __future__ import annotations

import asyncio

from webinar.rooms.live import LiveRoom, OfferedStream
from webinar.rooms.ops import state_op
from webinar.rooms.reasons import ByeReason
from webinar.rooms.roles import Role
from webinar.rooms.roster import Counts
from webinar.rooms.state import (
    LinkQuality,
    Participant,
    ParticipantUpdated,
    RoomEvent,
    RoomState,
)
from webinar.sfu import AllocationReport, Router, RouterConfig


class Peer:
    def __init__(self) -> None:
        self.events: list[RoomEvent] = []
        self.counts: list[Counts] = []
        self.deltas: list[
            tuple[list[Participant], list[tuple[str, ByeReason]], list[Participant]]
        ] = []

    def participant_count(self, counts: Counts) -> None:
        self.counts.append(counts)

    def roster_delta(
        self,
        joined: list[Participant],
        left: list[tuple[str, ByeReason]],
        updated: list[Participant],
    ) -> None:
        self.deltas.append((joined, left, updated))

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
        room.roster.flush_delta()  # the arrivals
        peers["p"].deltas.clear()
        room.apply(state_op("set_quality", "a", LinkQuality.POOR), origin=True)

        def quality(pid: str) -> list[RoomEvent]:
            return [
                e
                for e in peers[pid].events
                if isinstance(e, ParticipantUpdated) and e.cause == "quality"
            ]

        assert len(quality("a")) == 1  # at once to the participant concerned
        assert quality("b") == quality("p") == []  # nobody else at once
        room.roster.flush_delta()  # presenters: in the roster's next delta
        assert [[p.quality for p in d[2]] for d in peers["p"].deltas] == [["poor"]]
        assert peers["b"].deltas == []
    finally:
        await room.close()


async def test_an_attendee_arriving_is_counted_not_announced() -> None:
    room = LiveRoom("r", Router(RouterConfig()), RoomState(max_participants=100))
    room.roster._count_interval = room.roster._delta_interval = 0.05
    host, first = Peer(), Peer()
    room.join(Participant("h", "Host", Role.HOST), host)
    room.join(Participant("a0", "A0", Role.ATTENDEE), first)
    try:
        for i in range(1, 50):
            room.join(Participant(f"a{i}", f"A{i}", Role.ATTENDEE), Peer())
        await asyncio.sleep(0.2)
        assert first.events == []  # nobody's arrival announced to an attendee
        assert first.counts[-1].total == 51 and len(first.counts) <= 3
        arrived = [p.participant_id for d in host.deltas for p in d[0]]
        assert len(host.deltas) <= 3 and set(arrived) == {f"a{i}" for i in range(50)}
    finally:
        await room.close()


async def test_the_count_waits_until_the_newcomer_is_in() -> None:
    """The count of a join goes out an interval after it, never in the same turn of the
    loop: the newcomer's own reply and offer go first (benchmarks/join.py)."""
    room = LiveRoom("r", Router(RouterConfig()), RoomState(max_participants=100))
    room.roster._count_interval = 0.1
    host, seated = Peer(), Peer()
    room.join(Participant("h", "Host", Role.HOST), host)
    room.join(Participant("a0", "A0", Role.ATTENDEE), seated)
    try:
        await asyncio.sleep(0.25)  # a quiet spell: the counts so far went out
        before = len(seated.counts)
        room.join(Participant("a1", "A1", Role.ATTENDEE), Peer())
        await asyncio.sleep(0.03)
        assert len(seated.counts) == before  # not at once
        await asyncio.sleep(0.15)
        assert len(seated.counts) == before + 1 and seated.counts[-1].total == 3
    finally:
        await room.close()
