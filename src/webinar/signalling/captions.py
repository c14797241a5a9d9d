"""Live captions over signalling: ``captions-set``, ``captioner-set``, ``caption-send`` in;
``captions-state`` and ``caption`` out.

The rules are :mod:`webinar.rooms.captions`'; each handler runs one command in the room's
interaction turn (:meth:`webinar.rooms.interaction.RoomInteraction.change`), writes what it
kept (final lines, the switch and the captioners) before anyone is told, and lets the room
deliver the event. Like chat, the commands are logged for the room's other workers, which
replay them (``session._LOGGED_INTERACTION``). A ``caption`` frame is encoded once for
everyone it goes to; attendees do not get it while the room is backstage.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeGuard

from webinar.interaction.service import person_key
from webinar.rooms import captions as cp
from webinar.rooms.interaction import RoomInteraction
from webinar.rooms.live import LiveRoom
from webinar.rooms.roles import Capability
from webinar.rooms.state import Participant

from . import schema as s

if TYPE_CHECKING:
    from .session import Session


def line_info(line: cp.CaptionLine) -> s.CaptionInfo:
    return s.CaptionInfo(
        line_id=line.line_id,
        seq=line.seq,
        participant_id=line.participant_id,
        name=line.name,
        text=line.text,
        at=line.at,
        final=line.final,
    )


@functools.lru_cache(maxsize=8)
def caption_frame(sent: cp.CaptionSent) -> dict[str, Any]:
    """The ``caption`` frame, encoded once for everyone it goes to (read-only)."""
    return s.encode(s.Caption(line=line_info(sent.line)))


def state_for(
    room: LiveRoom, captions: cp.Captions, viewer: Participant, key: str, by: str | None = None
) -> s.CaptionsState:
    captioners: list[str] | None = None
    if viewer.can(Capability.MANAGE_CAPTIONS):
        captioners = [
            pid for pid in room.state.participants if person_key(room, pid) in captions.captioners
        ]
    return s.CaptionsState(
        enabled=captions.enabled,
        captioner=captions.may_caption(viewer, key),
        by=by,
        captioners=captioners,
    )


def sees(room: LiveRoom, captions: cp.Captions, viewer: Participant, key: str) -> bool:
    return cp.reaches(room.state, viewer, captions.is_captioner(key))


def history(
    room: LiveRoom, captions: cp.Captions, viewer: Participant, key: str
) -> list[s.CaptionInfo]:
    """The last final lines, for a late joiner (none while they may not see captions)."""
    if not captions.enabled or not sees(room, captions, viewer, key):
        return []
    return [line_info(line) for line in captions.history()]


def frames(
    room: LiveRoom, viewer: Participant, key: str, event: cp.CaptionsEvent
) -> list[dict[str, Any]]:
    """What one connection is sent for a captions event."""
    captions = room.interaction.captions
    if isinstance(event, cp.CaptionSent):
        return [caption_frame(event)] if sees(room, captions, viewer, key) else []
    if isinstance(event, cp.CaptionsSwitched):
        return [s.encode(state_for(room, captions, viewer, key, event.by))]
    if isinstance(event, cp.CaptionerChanged):
        if event.key == key or viewer.can(Capability.MANAGE_CAPTIONS):
            return [s.encode(state_for(room, captions, viewer, key, event.by))]
        return []
    return []


def announce_return(ia: RoomInteraction, me: Participant, key: str) -> None:
    """A captioner (back) in the room, syncing: presenters learn their participant ID (the
    right follows the person key, their rows the participant ID). Presenters on other
    workers learn it with the room's next captions change."""
    if ia.captions.is_captioner(key) and not me.can(Capability.MANAGE_CAPTIONS):
        ia.emit([cp.CaptionerChanged(me.participant_id, key, True, me.participant_id)])


def is_captions_event(event: object) -> TypeGuard[cp.CaptionsEvent]:
    return isinstance(event, cp.CaptionSent | cp.CaptionsSwitched | cp.CaptionerChanged)


# ----------------------------------------------------------------------------- handlers


@contextlib.asynccontextmanager
async def _command(
    session: Session, *, undo: bool = True
) -> AsyncIterator[tuple[LiveRoom, Participant, str, RoomInteraction]]:
    """As :func:`webinar.signalling.interaction._command`: the room, who asks (as the room
    knows them now), their person key and the room's interaction, in the room's turn."""
    room, me = session.joined()
    ia = await session.services.interaction.load(room)
    async with ia.change(undo=undo):
        current = room.state.participants.get(me.participant_id, me)
        yield room, current, person_key(room, me.participant_id), ia


async def on_captions_set(session: Session, msg: s.CaptionsSet) -> None:
    async with _command(session) as (room, me, key, ia):
        switched = ia.captions.switch(me, key, msg.enabled)
        await session.services.interaction.save_caption_settings(room.room_id, ia)
        ia.emit([switched])


async def on_captioner_set(session: Session, msg: s.CaptionerSet) -> None:
    async with _command(session) as (room, me, _key, ia):
        target = room.state.get(msg.participant_id)
        changed = ia.captions.set_captioner(
            me, target, person_key(room, target.participant_id), msg.captioner
        )
        await session.services.interaction.save_caption_settings(room.room_id, ia)
        ia.emit([changed])


async def on_caption_send(session: Session, msg: s.CaptionSend) -> None:
    # An interim line changes nothing but the sender's limit (never undone): no checkpoint.
    async with _command(session, undo=msg.final) as (room, me, key, ia):
        sent = ia.captions.send(me, key, msg.text, final=msg.final, now=ia.now())
        if msg.final:
            await session.services.interaction.save_caption(room.room_id, sent.line)
            session.services.interaction.count("caption_lines", 1)
        ia.emit([sent])
