"""The roster index: counts, the stage and pages, kept from the room's events alone."""

from __future__ import annotations

import dataclasses

from webinar.rooms.reasons import ByeReason
from webinar.rooms.roles import Role
from webinar.rooms.roster import RosterIndex
from webinar.rooms.state import (
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
)


def test_counts_stage_and_pages_follow_the_events() -> None:
    index = RosterIndex()
    people = {f"a{i}": Participant(f"a{i}", f"A{i}", Role.ATTENDEE) for i in range(10)}
    host = Participant("h", "Host", Role.HOST)
    seen = index.apply(ParticipantJoined(host))
    assert seen is not None and seen.stage
    for p in people.values():
        seen = index.apply(ParticipantJoined(p))
        assert seen is not None and not seen.stage and seen.roster
    assert index.viewers == {"h"} and list(index.stage) == ["h"]

    granted = dataclasses.replace(people["a3"], grant_audio=True)
    people["a3"] = granted
    seen = index.apply(ParticipantUpdated(granted, "grant"))
    assert seen is not None and seen.stage and "a3" in index.stage
    revoked = dataclasses.replace(granted, grant_audio=False)
    people["a3"] = revoked
    seen = index.apply(ParticipantUpdated(revoked, "grant"))
    assert seen is not None and seen.stage  # leaving the stage is shown to everyone too
    assert "a3" not in index.stage

    raised = dataclasses.replace(people["a5"], hand_raised=1)
    people["a5"] = raised
    seen = index.apply(ParticipantUpdated(raised, "hand"))
    assert seen is not None and not seen.stage
    index.apply(ParticipantLeft(people.pop("a2"), ByeReason.LEFT))
    counts = index.counts()
    assert (counts.total, counts.hosts, counts.attendees, counts.hands) == (10, 1, 9, 1)

    everyone = {"h": host, **people}
    ids: list[str] = []
    after = None
    while True:
        page = index.page(everyone, after, 3)
        ids += [p.participant_id for p in page.participants]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert ids == ["h", *(pid for pid in people)]  # join order, the one who left skipped
    assert index.page(everyone, "garbage", 500).participants[0] is host
