"""The roster as each viewer sees it: the ``joined`` snapshot, counts, deltas and pages.

Who hears what is decided in :mod:`webinar.rooms.roster` (and ``LiveRoom._recipients``):
attendees see the stage and a count, those who manage the floor see everyone. This module
renders it for one session, and answers ``roster-page``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from webinar.i18n import _
from webinar.rooms.live import LiveRoom
from webinar.rooms.reasons import ByeReason
from webinar.rooms.roster import Counts, sees_roster
from webinar.rooms.state import Participant

from . import schema as s

if TYPE_CHECKING:
    from .session import Session

#: Up to this many people, ``joined`` carries the whole roster to those who run the floor;
#: in a bigger room it carries the stage and they load the rest with ``roster-page``.
SNAPSHOT_LIMIT = 1000


def participant_info(p: Participant) -> s.ParticipantInfo:
    return s.ParticipantInfo(
        participant_id=p.participant_id,
        name=p.name,
        role=p.role.value,
        hand_raised=p.hand_raised,
        grant_audio=p.grant_audio,
        grant_video=p.grant_video,
        listen_only=p.listen_only,
        connected=p.connected,
        quality=p.quality,
    )


def counts_info(c: Counts) -> s.ParticipantCounts:
    return s.ParticipantCounts(
        total=c.total,
        hosts=c.hosts,
        presenters=c.presenters,
        attendees=c.attendees,
        hands=c.hands,
    )


@functools.lru_cache(maxsize=4)
def count_message(counts: Counts) -> dict[str, Any]:
    """The ``participant-count`` frame, encoded once for everyone it goes to (read-only)."""
    return s.encode(s.ParticipantCount(counts=counts_info(counts)))


def snapshot(room: LiveRoom, me: Participant) -> tuple[list[s.ParticipantInfo], str]:
    """``joined.participants`` and ``joined.roster`` for ``me``: everyone for those who
    manage the floor (``full``; in a room above :data:`SNAPSHOT_LIMIT` the stage, and
    ``paged``: they page the rest); else the stage and themselves (``stage``: O(stage),
    whatever the room's size)."""
    viewer = sees_roster(me)
    if viewer and len(room.state.participants) <= SNAPSHOT_LIMIT:
        return [participant_info(p) for p in room.participants()], "full"
    people = room.stage()
    if all(p.participant_id != me.participant_id for p in people):
        people.append(me)
    return [participant_info(p) for p in people], "paged" if viewer else "stage"


def delta(
    joined: list[Participant],
    left: list[tuple[str, ByeReason]],
    updated: list[Participant],
) -> s.RosterDelta:
    return s.RosterDelta(
        joined=[participant_info(p) for p in joined],
        left=[s.LeftInfo(participant_id=pid, reason=reason.value) for pid, reason in left],
        updated=[participant_info(p) for p in updated],
    )


async def on_roster_page(session: Session, msg: s.RosterPage) -> s.ServerMessage:
    room, me = session.joined()
    current = room.state.participants.get(me.participant_id, me)
    if not sees_roster(current):
        raise s.ProtocolError(s.ErrorCode.FORBIDDEN, _("only those who run the floor see everyone"))
    page = room.roster.page(msg.after, msg.limit)
    return s.Roster(
        participants=[participant_info(p) for p in page.participants],
        next_cursor=page.next_cursor,
        counts=counts_info(room.counts()),
    )
