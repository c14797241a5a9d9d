"""Emoji reactions over signalling: ``react`` in, ``reactions`` out (encoded once a room).

The rules (who may react, the per-person limit, the window) are
:mod:`webinar.rooms.reactions`'; this module answers ``react`` (refused with
``reactions-off`` while presenters have switched reactions off for attendees: the switch is
an interaction command, ``reactions-settings`` in :mod:`webinar.signalling.interaction`) and
encodes each burst once for every connection it goes to. Reactions are not in the room's
log: each worker counts its own people's and hands its window's counts to the room's other
workers over the bus (``LiveRoom.reactions.relay``, set by the app), which add them to their
next burst.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from webinar.interaction.service import person_key
from webinar.rooms.reactions import ReactionBurst

from . import schema as s

if TYPE_CHECKING:
    from .session import Session


@functools.lru_cache(maxsize=4)
def burst_message(burst: ReactionBurst) -> dict[str, Any]:
    """The ``reactions`` frame, encoded once for everyone it goes to (read-only)."""
    return s.encode(s.Reactions(counts=burst.as_dict(), interval=burst.interval))


async def on_react(session: Session, msg: s.React) -> None:
    room, me = session.joined()
    # the room's switch (loaded once from the store, then kept with its interaction)
    settings = (await session.services.interaction.load(room)).reaction_settings
    current = room.state.participants.get(me.participant_id, me)
    settings.check(current)
    reactions = room.reactions
    reactions.react(current, person_key(room, me.participant_id), msg.reaction, reactions.now())
    session.services.interaction.count("reactions", 1)
