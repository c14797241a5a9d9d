"""Emoji reactions: the per-person limit, the window's counts, and the totals to save."""

from __future__ import annotations

import asyncio

import pytest

from webinar.rooms.interaction_errors import InteractionError, InteractionErrorCode
from webinar.rooms.reactions import (
    EMOJI,
    REACTION_BURST,
    REACTIONS,
    REACTIONS_PER_SECOND,
    ReactionBurst,
    ReactionLimiter,
    ReactionSettings,
    ReactionSettingsChanged,
    ReactionTally,
    RoomReactions,
    burst_of,
    remote_counts,
)
from webinar.rooms.roles import Role
from webinar.rooms.state import Participant

ANN = Participant("pa_ann", "Ann", Role.ATTENDEE)
PRES = Participant("pa_pres", "Piet", Role.PRESENTER)
HOST = Participant("pa_host", "Hana", Role.HOST)


def test_six_reactions_each_with_its_emoji() -> None:
    assert REACTIONS == ("thumbs-up", "clap", "heart", "laugh", "wow", "party")
    assert [EMOJI[r] for r in REACTIONS] == ["👍", "👏", "❤️", "😂", "😮", "🎉"]


def test_the_limit_is_a_burst_then_a_rate_per_person() -> None:
    limiter = ReactionLimiter()
    for _ in range(REACTION_BURST):
        limiter.take("client:ann", 100.0)
    with pytest.raises(InteractionError) as refused:
        limiter.take("client:ann", 100.0)
    assert refused.value.code is InteractionErrorCode.RATE_LIMITED
    assert refused.value.retry_after == pytest.approx(1 / REACTIONS_PER_SECOND)
    limiter.take("client:bob", 100.0)  # someone else is not held back by Ann
    # a refused attempt does not dig a hole: after one refill interval one more passes
    later = 100.0 + 1 / REACTIONS_PER_SECOND + 1e-9
    limiter.take("client:ann", later)
    with pytest.raises(InteractionError):
        limiter.take("client:ann", later)
    # a steady 3 a second passes, a 4th within the second does not
    passed = 0
    for i in range(40):
        try:
            limiter.take("client:ann", 200.0 + i * 0.25)  # 4 attempts a second for 10 s
            passed += 1
        except InteractionError:
            pass
    assert REACTIONS_PER_SECOND * 10 <= passed <= REACTIONS_PER_SECOND * 10 + REACTION_BURST


async def test_an_attempt_is_counted_before_it_is_checked() -> None:
    """Every attempt takes its token before anything else is looked at: a flood of bad names
    is held back like a flood of good ones."""
    room = RoomReactions("123456789", list)
    for _ in range(REACTION_BURST):
        with pytest.raises(InteractionError) as bad:
            room.react(ANN, "client:ann", "nope", 0.0)
        assert bad.value.code is InteractionErrorCode.INVALID
    with pytest.raises(InteractionError) as limited:
        room.react(ANN, "client:ann", "clap", 0.0)
    assert limited.value.code is InteractionErrorCode.RATE_LIMITED
    await room.close()


def test_the_tally_and_a_burst_add_windows_up_in_screen_order() -> None:
    tally = ReactionTally()
    assert not tally
    for reaction in ("party", "clap", "clap", "thumbs-up"):
        tally.add(reaction)
    assert tally
    local = tally.take()
    assert not tally and local == {"party": 1, "clap": 2, "thumbs-up": 1}
    burst = burst_of(local, {"clap": 5, "heart": 0, "bogus": 3})
    assert burst.counts == (("thumbs-up", 1), ("clap", 7), ("party", 1))
    assert burst.total == 9 and burst.as_dict() == {"thumbs-up": 1, "clap": 7, "party": 1}
    assert hash(burst) == hash(ReactionBurst(burst.counts, burst.interval))


def test_counts_from_another_worker_are_checked() -> None:
    assert remote_counts({"clap": 3, "heart": -1, "wow": True, "x": 9, "party": "2"}) == {"clap": 3}
    assert remote_counts(["clap"]) == {}


class Peer:
    def __init__(self) -> None:
        self.bursts: list[ReactionBurst] = []

    def reactions(self, burst: ReactionBurst) -> None:
        self.bursts.append(burst)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_room_sends_one_burst_a_window_to_everyone() -> None:
    peers = [Peer() for _ in range(3)]
    saved: list[dict[tuple[str, str], int]] = []

    async def save(_room: str, batch: dict[tuple[str, str], int]) -> None:
        saved.append(batch)

    clock = Clock()
    room = RoomReactions("123456789", lambda: peers, clock=clock, interval=0.05, save=save)
    relayed: list[dict[str, int]] = []
    room.relay = relayed.append
    # 200 people clap at once, some twice
    for i in range(200):
        person = Participant(f"pa_{i}", f"P{i}", Role.ATTENDEE)
        room.react(person, f"client:{i}", "clap", clock())
        if i % 2 == 0:
            room.react(person, f"client:{i}", "heart", clock())
    room.merge({"clap": 50})  # another worker's window
    await asyncio.sleep(0.1)
    assert [len(p.bursts) for p in peers] == [1, 1, 1]  # the first goes out at once, alone
    assert peers[0].bursts[0].as_dict() == {"clap": 250, "heart": 100}
    assert peers[0].bursts[0] is peers[1].bursts[0]  # one object for everyone: encoded once
    assert relayed == [{"clap": 200, "heart": 100}]  # only our own people's to the others
    # nothing new: nothing sent
    await asyncio.sleep(0.1)
    assert len(peers[0].bursts) == 1
    # the totals per person are written when the room closes (or every few seconds)
    await room.close()
    assert len(saved) == 1 and saved[0][("client:0", "clap")] == 1
    assert sum(saved[0].values()) == 300


async def test_a_second_window_waits_for_the_interval() -> None:
    peer = Peer()
    loop = asyncio.get_running_loop()
    room = RoomReactions("123456789", lambda: [peer], clock=loop.time, interval=0.2)
    room.react(ANN, "client:ann", "clap", 0.0)
    await asyncio.sleep(0.01)
    assert len(peer.bursts) == 1  # at once after a quiet time
    room.react(PRES, "pa_pres", "party", 0.0)
    room.react(ANN, "client:ann", "clap", 0.0)
    await asyncio.sleep(0.05)
    assert len(peer.bursts) == 1  # coalesced ...
    await asyncio.sleep(0.25)
    assert len(peer.bursts) == 2  # ... into the next window
    assert peer.bursts[1].as_dict() == {"clap": 1, "party": 1}
    await room.close()


async def test_a_failed_save_keeps_the_counts_for_the_next() -> None:
    calls: list[dict[tuple[str, str], int]] = []
    fail = [True]

    async def save(_room: str, batch: dict[tuple[str, str], int]) -> None:
        calls.append(dict(batch))
        if fail[0]:
            raise OSError("the store is away")

    room = RoomReactions("123456789", list, save=save, save_interval=0.02)
    room.react(ANN, "client:ann", "clap", 0.0)
    await asyncio.sleep(0.05)
    assert calls[0] == {("client:ann", "clap"): 1}
    assert room.pending() == {("client:ann", "clap"): 1}  # kept
    fail[0] = False
    room.react(ANN, "client:ann", "clap", 10.0)
    await asyncio.sleep(0.1)
    assert calls[-1] == {("client:ann", "clap"): 2}  # written with the next batch
    assert room.pending() == {}
    await room.close()


async def test_refusals() -> None:
    room = RoomReactions("123456789", list)
    with pytest.raises(InteractionError) as bad:
        room.react(ANN, "client:ann", "thumbs-down", 0.0)
    assert bad.value.code is InteractionErrorCode.INVALID
    assert "thumbs-down" in bad.value.message
    await room.close()
    room.react(ANN, "client:ann", "clap", 1.0)  # after the close: nothing happens
    assert room.pending() == {}


def test_the_switch_is_planned_then_applied_and_spares_presenters() -> None:
    settings = ReactionSettings()
    settings.check(ANN)  # on by default
    with pytest.raises(InteractionError) as refused:
        settings.plan(ANN, enabled=False)
    assert refused.value.code is InteractionErrorCode.FORBIDDEN
    changed = settings.plan(HOST, enabled=False)
    assert changed == ReactionSettingsChanged(False, "pa_host")
    settings.check(ANN)  # nothing changes until it is applied (after its write)
    settings.apply(changed)
    with pytest.raises(InteractionError) as refused:
        settings.check(ANN)
    assert refused.value.code is InteractionErrorCode.REACTIONS_OFF
    settings.check(PRES)  # presenters and hosts may still react
    settings.check(HOST)
    settings.apply(settings.plan(PRES, enabled=True))
    settings.check(ANN)
