"""Signalling glue for content on stage: one handler per message, and the ``stage`` message.

Each handler restores the room's stage once (:class:`webinar.content.stage.StageService`),
looks up the file a command names (only this event's, scanned), then, alone in the room
(the interaction's per-room turn), plans the command on the pure state machine
(:mod:`webinar.rooms.stage`), writes it, applies it and tells everyone. With several workers
the command is logged like an interaction command and replayed on the others
(webinar.signalling.session).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeGuard

from webinar.i18n import _
from webinar.rooms import stage as st
from webinar.rooms.interaction_errors import InteractionError, InteractionErrorCode
from webinar.rooms.live import LiveRoom
from webinar.rooms.state import Participant

from . import schema as s

if TYPE_CHECKING:
    from .interaction import Viewer
    from .session import Services, Session

E = InteractionErrorCode


# ----------------------------------------------------------------------------- rendering


def content_path(room_id: str, content_id: str) -> str:
    return f"/e/{room_id}/content/{content_id}"


def stage_message(
    room: LiveRoom,
    stage: st.StageContent,
    *,
    content_pass: str | None,
    now: float,
    cause: str,
    by: str | None = None,
    strokes: bool = False,
) -> s.Stage:
    """The ``stage`` message: the same for everyone but the content pass (and the strokes,
    only in a sync)."""
    room_id = room.room_id
    p, v = stage.presentation, stage.video
    presentation = None
    if p is not None:
        presentation = {
            "content_id": p.content_id,
            "name": p.name,
            "pages": p.pages,
            "page": p.page,
            "changed_at": p.changed_at,
            "page_url": f"{content_path(room_id, p.content_id)}/pages/{{page}}",
        }
    video = None
    if v is not None:
        video = {
            "video_id": v.video_id,
            "kind": v.kind,
            "name": v.name,
            "src": content_path(room_id, v.source)
            if v.kind == "file"
            else st.embed_url(v.kind, v.source),
            "playing": v.playing,
            "position": v.position,
            "at": v.at,
            "rate": v.rate,
        }
    board: dict[str, Any] = {
        "page": stage.board_page,
        "pages": stage.board_pages,
        "granted": sorted(stage.board_granted),
        "strokes": [x.to_json() for x in stage.strokes.values()] if strokes else None,
    }
    return s.Stage(
        layout=stage.layout,
        presentation=presentation,
        video=video,
        files=[
            {
                "content_id": f.content_id,
                "name": f.name,
                "size": f.size,
                "type": f.type,
                "url": content_path(room_id, f.content_id),
            }
            for f in stage.files
        ],
        whiteboard=board,
        external=stage.external_player,
        content_pass=content_pass,
        now=now,
        cause=cause,
        by=by,
    )


#: The last stage event encoded and its frame: a room tells every connection of one event in
#: a row (``RoomInteraction.emit``), so one slot encodes each event once, not once a viewer.
_encoded: tuple[st.StageEvent, dict[str, Any] | None] | None = None


def _frame(room: LiveRoom, event: st.StageEvent) -> dict[str, Any] | None:
    """``event``'s frame, the same for every viewer (read-only); the ``stage`` one without its
    content pass, which each viewer's copy gets."""
    global _encoded
    if _encoded is not None and _encoded[0] is event:
        return _encoded[1]
    message: s.ServerMessage | None = None
    if isinstance(event, st.StageChanged):
        ia = room.interaction
        message = stage_message(
            room, ia.stage, content_pass=None, now=ia.now(), cause=event.cause, by=event.by
        )
    elif isinstance(event, st.PointerMoved):
        message = s.PointerAt(x=event.x, y=event.y, by=event.by)
    elif isinstance(event, st.StrokeDrawn):
        stroke = event.stroke.to_json()
        stroke["points"] = [list(pt) for pt in event.points]
        message = s.StrokeUpdate(stroke=stroke, append=event.append)
    elif isinstance(event, st.BoardCleared):
        message = s.WhiteboardCleared(page=event.page, by=event.by)
    frame = s.encode(message) if message is not None else None
    _encoded = (event, frame)
    return frame


def frames(viewer: Viewer, room: LiveRoom, event: st.StageEvent) -> list[dict[str, Any]]:
    """What one viewer is told of a stage event, as encoded frames (shared: do not change)."""
    me = viewer.participant.participant_id
    if isinstance(event, st.PointerMoved) and event.by == me:
        return []
    if isinstance(event, st.StrokeDrawn) and event.stroke.by == me:
        return []  # drawn already where it was made
    frame = _frame(room, event)
    if frame is None:
        return []
    if isinstance(event, st.StageChanged):
        return [{**frame, "content_pass": viewer.content_pass(room.room_id)}]
    return [frame]


def is_stage_event(event: object) -> TypeGuard[st.StageEvent]:
    return isinstance(event, st.StageChanged | st.PointerMoved | st.StrokeDrawn | st.BoardCleared)


# ----------------------------------------------------------------------------- handlers


async def load(services: Services, room: LiveRoom) -> st.StageContent:
    """The room's stage, restored from the store the first time."""
    stage = room.interaction.stage
    if not stage.loaded:
        event = await services.get_event(room.room_id)
        external = services.external_player(event) if event is not None else None
        await services.stage.load(stage, room.room_id, external)
    return stage


def loader(services: Services) -> Callable[[LiveRoom], Awaitable[object]]:
    """Restores a room's interaction and stage: what a worker does when it opens its copy of
    a room shared with others, before it replays their log (webinar.signalling.replication)."""

    async def load_room(room: LiveRoom) -> object:
        await services.interaction.load(room)
        return await load(services, room)

    return load_room


async def _stage(session: Session) -> tuple[LiveRoom, st.StageContent]:
    room, _me = session.joined()
    return room, await load(session.services, room)


async def _run(
    session: Session, plan: Callable[[st.StageContent, Participant, float], st.StageChange]
) -> None:
    """Plan a command, write it, apply it, tell everyone: alone in the room."""
    room, stage = await _stage(session)
    _room, me = session.joined()
    ia = await session.services.interaction.load(room)
    async with ia.change(undo=False):
        current = room.state.participants.get(me.participant_id, me)
        now = ia.now()
        change = plan(stage, current, now)
        await session.services.stage.write(room.room_id, stage, change, current.participant_id, now)
        stage.apply(change)
        ia.emit(change.events)


async def on_layout(session: Session, msg: s.StageLayout) -> None:
    await _run(session, lambda stage, me, _now: stage.set_layout(me, msg.layout))


async def on_presentation_show(session: Session, msg: s.PresentationShow) -> None:
    room = (await _stage(session))[0]
    info, pages = await session.services.stage.presentation(room.room_id, msg.content_id)
    await _run(
        session,
        lambda stage, me, now: stage.show_presentation(
            me, content_id=info.content_id, name=info.file_name, pages=pages, page=msg.page, now=now
        ),
    )


async def on_presentation_page(session: Session, msg: s.PresentationPage) -> None:
    await _run(session, lambda stage, me, now: stage.turn_page(me, msg.page, now))


async def on_presentation_stop(session: Session, _msg: s.PresentationStop) -> None:
    await _run(session, lambda stage, me, _now: stage.stop_presentation(me))


async def on_pointer(session: Session, msg: s.Pointer) -> None:
    await _run(session, lambda stage, me, _now: stage.point(me, msg.x, msg.y))


async def on_video_share(session: Session, msg: s.VideoShare) -> None:
    room = (await _stage(session))[0]
    if (msg.url is None) == (msg.content_id is None):
        raise InteractionError(E.INVALID, _("give either a video link or an uploaded video"))
    if msg.content_id is not None:
        info = await session.services.stage.video(room.room_id, msg.content_id)
        kind, source, name = "file", info.content_id, info.file_name
    else:
        assert msg.url is not None
        kind, source = st.video_source(msg.url)
        name = msg.url.strip()[:200]
    await _run(
        session,
        lambda stage, me, now: stage.share_video(me, kind=kind, source=source, name=name, now=now),
    )


async def on_video_control(session: Session, msg: s.VideoControl) -> None:
    await _run(
        session, lambda stage, me, now: stage.control_video(me, msg.action, msg.position, now)
    )


async def on_video_stop(session: Session, _msg: s.VideoStop) -> None:
    await _run(session, lambda stage, me, _now: stage.stop_video(me))


async def on_file_offer(session: Session, msg: s.FileOffer) -> None:
    room, stage_now = await _stage(session)
    known = next((f for f in stage_now.files if f.content_id == msg.content_id), None)
    if msg.offered or known is None:
        offered = await session.services.stage.offered(room.room_id, msg.content_id)
    else:
        offered = known  # withdrawing a file deleted since
    await _run(session, lambda stage, me, _now: stage.offer_file(me, offered, msg.offered))


async def on_whiteboard_stroke(session: Session, msg: s.WhiteboardStroke) -> None:
    await _run(
        session,
        lambda stage, me, _now: stage.draw(
            me,
            stroke_id=msg.stroke_id,
            page=msg.page,
            tool=msg.tool,
            color=msg.color,
            width=msg.width,
            points=msg.points,
            text=msg.text,
            done=msg.done,
        ),
    )


async def on_whiteboard_clear(session: Session, msg: s.WhiteboardClear) -> None:
    await _run(session, lambda stage, me, _now: stage.clear_board(me, msg.page))


async def on_whiteboard_page(session: Session, msg: s.WhiteboardPage) -> None:
    await _run(session, lambda stage, me, _now: stage.board_to_page(me, msg.page))


async def on_whiteboard_grant(session: Session, msg: s.WhiteboardGrant) -> None:
    room = (await _stage(session))[0]
    target = room.state.participants.get(msg.participant_id)
    if target is None:
        raise InteractionError(E.NOT_FOUND, _("no such participant"))
    await _run(session, lambda stage, me, _now: stage.grant_board(me, target, msg.granted))


async def sync_stage(session: Session, viewer: Viewer) -> s.Stage:
    """The stage as it is, whole (with the whiteboard's strokes), for a sync."""
    room, stage = await _stage(session)
    return stage_message(
        room,
        stage,
        content_pass=viewer.content_pass(room.room_id),
        now=room.interaction.now(),
        cause="sync",
        strokes=True,
    )


HANDLERS: dict[type[Any], Callable[..., Any]] = {
    s.StageLayout: on_layout,
    s.PresentationShow: on_presentation_show,
    s.PresentationPage: on_presentation_page,
    s.PresentationStop: on_presentation_stop,
    s.Pointer: on_pointer,
    s.VideoShare: on_video_share,
    s.VideoControl: on_video_control,
    s.VideoStop: on_video_stop,
    s.FileOffer: on_file_offer,
    s.WhiteboardStroke: on_whiteboard_stroke,
    s.WhiteboardClear: on_whiteboard_clear,
    s.WhiteboardPage: on_whiteboard_page,
    s.WhiteboardGrant: on_whiteboard_grant,
}
