"""Signalling glue for interaction: one small handler per message, and per-viewer rendering.

Each handler loads the room's persisted interaction once, runs one state-machine
command, persists its result through the store's thread, then lets the room
deliver the events; every connection renders them for its own viewer (what an
attendee sees differs from what a presenter sees: drafts, text answers, correct
options, anonymous names).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from webinar.i18n import N_, _
from webinar.interaction.service import click_token, person_key
from webinar.rooms import chat as ch
from webinar.rooms import cta as ct
from webinar.rooms import polls as pl
from webinar.rooms import qa as qa_
from webinar.rooms import reactions as rx
from webinar.rooms.interaction import InteractionEvent, PollResultsChanged, RoomInteraction
from webinar.rooms.interaction_errors import InteractionError, InteractionErrorCode
from webinar.rooms.live import LiveRoom
from webinar.rooms.roles import Capability, Role, may_not
from webinar.rooms.state import Participant

from . import captions as captions_
from . import schema as s
from . import stage as stage_
from .errors import wire_code

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger(__name__)

RESULT_TEXTS = 100  # latest text answers per question in live results (the export has all)


def to_protocol_error(exc: InteractionError) -> s.ProtocolError:
    return s.ProtocolError(wire_code(exc.code), exc.message)


# ----------------------------------------------------------------------------- rendering


def _chat(m: ch.ChatMessage) -> s.ChatInfo:
    return s.ChatInfo(
        message_id=m.message_id,
        seq=m.seq,
        participant_id=m.participant_id,
        name=m.name,
        role=m.role,
        text=m.text,
        at=m.at,
        question_id=m.question_id,
    )


class Viewer:
    """Who a message is rendered for."""

    __slots__ = ("key", "participant", "passes", "room", "secret")

    def __init__(
        self,
        participant: Participant,
        key: str,
        secret: bytes,
        room: LiveRoom | None = None,
        passes: Callable[[str, str], str] | None = None,
    ) -> None:
        self.participant = participant
        self.key = key
        self.secret = secret
        self.room = room
        #: Issues content passes: (event ID, person key) -> pass (webinar.http.content).
        self.passes = passes

    def content_pass(self, event_id: str) -> str | None:
        """A pass to this event's content (page images, videos, files) for this viewer."""
        return self.passes(event_id, self.key) if self.passes is not None else None

    def can(self, capability: Capability) -> bool:
        return self.participant.can(capability)

    def question(self, q: qa_.Question) -> s.QuestionInfo:
        mine = q.author_key == self.key or q.participant_id == self.participant.participant_id
        reveal = not q.anonymous or mine or self.can(Capability.MANAGE_QA)
        return s.QuestionInfo(
            question_id=q.question_id,
            text=q.text,
            name=q.name if reveal else None,
            participant_id=q.participant_id if reveal else None,
            anonymous=q.anonymous,
            state=q.state.value,
            votes=q.votes,
            voted=self.key in q.voters,
            mine=mine,
            asked_at=q.asked_at,
            message_id=q.message_id,
        )

    def sees_question(self, board: qa_.QuestionBoard, q: qa_.Question) -> bool:
        if self.can(Capability.MANAGE_QA):
            return True
        if not board.open:
            return False
        return q.state is not qa_.QuestionState.DISMISSED or q.author_key == self.key

    def questions(self, board: qa_.QuestionBoard) -> list[s.QuestionInfo]:
        return [
            self.question(q)
            for q in board.ordered(qa_.QuestionOrder.TIME)
            if self.sees_question(board, q)
        ]

    def poll(self, p: pl.Poll) -> s.PollInfo:
        runner = self.can(Capability.RUN_POLLS)
        reveal = runner or p.state is pl.PollState.CLOSED
        return s.PollInfo(
            poll_id=p.poll_id,
            title=p.title,
            kind=p.kind.value,
            state=p.state.value,
            results_shown=p.results_shown,
            launched_at=p.launched_at,
            closed_at=p.closed_at,
            questions=[
                s.PollQuestionInfo(
                    question_id=q.question_id,
                    text=q.text,
                    kind=q.kind.value,
                    accepted=list(q.accepted) if reveal and p.kind is pl.PollKind.TEST else None,
                    options=[
                        s.OptionInfo(
                            option_id=o.option_id,
                            text=o.text,
                            image_url=f"/images/{o.image_id}" if o.image_id else None,
                            correct=o.correct if reveal and p.kind is pl.PollKind.TEST else None,
                        )
                        for o in q.options
                    ],
                )
                for q in p.questions
            ],
        )

    def sees_poll(self, p: pl.Poll) -> bool:
        return self.can(Capability.RUN_POLLS) or p.state is not pl.PollState.DRAFT

    def sees_results(self, p: pl.Poll) -> bool:
        return self.can(Capability.RUN_POLLS) or (
            p.results_shown and p.state is not pl.PollState.DRAFT
        )

    def results(self, book: pl.PollBook, p: pl.Poll) -> s.PollResults:
        runner = self.can(Capability.RUN_POLLS)
        per_question = book.results(p.poll_id)
        respondents = {
            key for answers in book.answers.get(p.poll_id, {}).values() for key in answers
        }
        return s.PollResults(
            poll_id=p.poll_id,
            respondents=len(respondents),
            questions=[
                s.ResultInfo(
                    question_id=r.question_id,
                    responses=r.responses,
                    counts=r.counts,
                    texts=list(r.texts[-RESULT_TEXTS:]) if runner else None,
                )
                for r in per_question
            ],
        )

    def answers(self, book: pl.PollBook, p: pl.Poll) -> list[s.AnswerInfo]:
        reveal = p.state is pl.PollState.CLOSED and p.kind is pl.PollKind.TEST
        return [
            s.AnswerInfo(
                question_id=a.question_id,
                option_ids=list(a.option_ids),
                text=a.text,
                correct=a.correct if reveal else None,
            )
            for a in book.answers_of(p.poll_id, self.key)
        ]

    def score(self, book: pl.PollBook, p: pl.Poll) -> s.PollScore | None:
        if p.kind is not pl.PollKind.TEST or p.state is not pl.PollState.CLOSED:
            return None
        if not self.can(Capability.ANSWER_POLL):
            return None
        score = book.score(p.poll_id, self.key)
        return s.PollScore(
            poll_id=p.poll_id,
            correct=score.correct,
            total=score.total,
            answers=self.answers(book, p),
        )

    def cta(self, c: ct.CallToAction, clicks: int = 0) -> s.CtaInfo:
        token = click_token(self.secret, c.cta_id, self.participant.participant_id, self.name)
        return s.CtaInfo(
            cta_id=c.cta_id,
            message=c.message,
            button=c.button,
            url=c.url,
            click_url=f"/cta/{c.cta_id}?t={token}",
            duration_seconds=c.duration_seconds,
            shown_at=c.shown_at,
            closes_at=c.closes_at,
            clicks=clicks if self.can(Capability.RUN_CTA) else None,
        )

    @property
    def name(self) -> str:
        return self.participant.name

    def prepared_ctas(
        self, prepared: list[ct.PreparedCta] | None
    ) -> list[s.PreparedCtaInfo] | None:
        if prepared is None or not self.can(Capability.RUN_CTA):
            return None
        return [
            s.PreparedCtaInfo(
                prepared_id=p.prepared_id,
                message=p.message,
                button=p.button,
                url=p.url,
                duration_seconds=p.duration_seconds,
            )
            for p in prepared
        ]

    def chat_state(self, chat: ch.Chat, by: str | None = None) -> s.ChatState:
        muted_here: list[str] | None = None
        if self.room is not None and self.can(Capability.MODERATE_CHAT):
            room = self.room
            muted_here = [
                pid for pid in room.state.participants if chat.is_muted(person_key(room, pid))
            ]
        return s.ChatState(
            enabled=chat.enabled,
            slow_mode_seconds=chat.slow_mode_seconds,
            muted=chat.is_muted(self.key),
            by=by,
            muted_participants=muted_here,
        )

    def reactions_state(
        self, settings: rx.ReactionSettings, by: str | None = None
    ) -> s.ReactionsState:
        return s.ReactionsState(enabled=settings.enabled, by=by)

    def qa_state(self, board: qa_.QuestionBoard, by: str | None = None) -> s.QaState:
        return s.QaState(open=board.open, questions=self.questions(board), by=by)

    def snapshot(
        self,
        ia: RoomInteraction,
        cta_clicks: int = 0,
        prepared_ctas: list[ct.PreparedCta] | None = None,
    ) -> s.InteractionState:
        book = ia.polls
        visible = [p for p in book.polls.values() if self.sees_poll(p)]
        scores = [sc for p in visible if (sc := self.score(book, p)) is not None]
        published = ia.qa.published
        return s.InteractionState(
            chat=self.chat_state(ia.chat),
            messages=[_chat(m) for m in ia.chat.history()],
            qa=self.qa_state(ia.qa),
            published=self.question(published) if published is not None else None,
            polls=[self.poll(p) for p in visible],
            results=[self.results(book, p) for p in visible if self.sees_results(p)],
            my_answers={p.poll_id: a for p in visible if (a := self.answers(book, p))},
            scores=scores,
            cta=self.cta(ia.cta.current, cta_clicks) if ia.cta.current is not None else None,
            prepared_ctas=self.prepared_ctas(prepared_ctas),
            reactions=self.reactions_state(ia.reaction_settings),
        )

    def render(self, ia: RoomInteraction, event: InteractionEvent) -> list[s.ServerMessage]:
        me = self.participant.participant_id
        if isinstance(event, ch.ChatPosted):
            return [s.ChatMessage(message=_chat(event.message))]
        if isinstance(event, ch.ChatDeleted):
            return [s.ChatDeleted(message_id=event.message_id, by=event.by)]
        if isinstance(event, ch.ChatSettingsChanged):
            return [self.chat_state(ia.chat, event.by)]
        if isinstance(event, ch.ChatMuteChanged):
            out: list[s.ServerMessage] = []
            if event.participant_id == me:
                out.append(self.chat_state(ia.chat, event.by))
            if self.can(Capability.MODERATE_CHAT):
                out.append(
                    s.ChatMuteChanged(
                        participant_id=event.participant_id, muted=event.muted, by=event.by
                    )
                )
            return out
        if isinstance(event, rx.ReactionSettingsChanged):
            return [self.reactions_state(ia.reaction_settings, event.by)]
        if isinstance(event, qa_.QuestionChanged):
            q = event.question
            if self.sees_question(ia.qa, q):
                return [s.QuestionUpdate(question=self.question(q), cause=event.cause)]
            if ia.qa.open and q.state is qa_.QuestionState.DISMISSED:
                return [s.QuestionHidden(question_id=q.question_id)]
            return []
        if isinstance(event, qa_.QuestionPublished):
            info = self.question(event.question) if event.question is not None else None
            return [s.QuestionPublished(question=info, by=event.by)]
        if isinstance(event, qa_.QaSettingsChanged):
            return [self.qa_state(ia.qa, event.by)]
        if isinstance(event, pl.PollChanged):
            return self._poll_changed(ia, event)
        if isinstance(event, PollResultsChanged):
            poll = ia.polls.polls.get(event.poll_id)
            if poll is None or not self.sees_results(poll):
                return []
            return [self.results(ia.polls, poll)]
        if isinstance(event, ct.CtaShown):
            return [s.Cta(cta=self.cta(event.cta))]
        if isinstance(event, ct.CtaClosed):
            return [s.Cta(cta=None, reason=event.reason)]
        if isinstance(event, ct.CtaClicked):
            if self.can(Capability.RUN_CTA):
                return [s.CtaClicks(cta_id=event.cta_id, clicks=event.clicks)]
            return []
        if isinstance(event, ct.CtaPreparedChanged):
            prepared = self.prepared_ctas(list(event.prepared))
            return [s.CtaPrepared(prepared=prepared)] if prepared is not None else []
        return []

    def _poll_changed(self, ia: RoomInteraction, event: pl.PollChanged) -> list[s.ServerMessage]:
        poll = event.poll
        if event.cause == "deleted":
            return [s.PollDeleted(poll_id=poll.poll_id)] if self.sees_poll(poll) else []
        current = ia.polls.polls.get(poll.poll_id, poll)
        if not self.sees_poll(current):
            return []
        out: list[s.ServerMessage] = [s.PollUpdate(poll=self.poll(current), cause=event.cause)]
        if event.cause in ("closed", "results", "launched") and self.sees_results(current):
            out.append(self.results(ia.polls, current))
        if event.cause == "closed":
            score = self.score(ia.polls, current)
            if score is not None:
                out.append(score)
        return out


def viewer_of(session: Session) -> Viewer | None:
    room, participant = session.room, session.participant
    if room is None or participant is None:
        return None
    current = room.state.participants.get(participant.participant_id, participant)
    key = person_key(room, current.participant_id)
    services = session.services
    return Viewer(current, key, services.interaction_secret, room, services.content_pass)


def deliver(session: Session, event: InteractionEvent) -> None:
    viewer, room = viewer_of(session), session.room
    if viewer is None or room is None:
        return
    if stage_.is_stage_event(event):  # encoded once for the whole room
        for frame in stage_.frames(viewer, room, event):
            session.send_frame(frame)
        return
    if captions_.is_captions_event(event):  # a caption line: encoded once for the room
        for frame in captions_.frames(room, viewer.participant, viewer.key, event):
            session.send_frame(frame)
        return
    for message in viewer.render(room.interaction, event):
        session.send(message)


# ----------------------------------------------------------------------------- handlers


@contextlib.asynccontextmanager
async def _command(
    session: Session, *, undo: bool = True
) -> AsyncIterator[tuple[LiveRoom, Participant, str, RoomInteraction]]:
    """The room, who asks (as the room knows them now), their person key and the room's
    interaction, for one command and its write: alone in the room, and undone if the write
    fails (:meth:`webinar.rooms.interaction.RoomInteraction.change`)."""
    room, me = session.joined()
    ia = await session.services.interaction.load(room)
    async with ia.change(undo=undo):
        current = room.state.participants.get(me.participant_id, me)
        yield room, current, person_key(room, me.participant_id), ia


async def on_sync(session: Session, _msg: s.SyncInteraction) -> s.ServerMessage:
    async with _command(session, undo=False) as (room, me, key, ia):
        clicks = 0
        prepared: list[ct.PreparedCta] | None = None
        current = ia.cta.current
        if me.can(Capability.RUN_CTA):
            cta_id = current.cta_id if current is not None else None
            clicks, prepared = await session.services.interaction.cta_panel(room.room_id, cta_id)
        services = session.services
        viewer = Viewer(me, key, services.interaction_secret, room, services.content_pass)
        snapshot = viewer.snapshot(ia, clicks, prepared)
        captions = captions_.state_for(room, ia.captions, me, key)
        lines = captions_.history(room, ia.captions, me, key)
        captions_.announce_return(ia, me, key)
    stage = await stage_.sync_stage(session, viewer)
    return dataclasses.replace(snapshot, stage=stage, captions=captions, caption_lines=lines)


async def on_chat_send(session: Session, msg: s.ChatSend) -> s.ServerMessage:
    async with _command(session) as (room, me, key, ia):
        posted = ia.chat.post(me, key, msg.text, ia.now())
        m = posted.message
        await session.services.interaction.save_chat(room.room_id, m)
        session.services.interaction.count("chat_messages", 1)
        started = time.perf_counter()
        ia.emit([posted])
        session.services.on_chat_delivered(time.perf_counter() - started)
        return s.ChatSent(message_id=m.message_id, seq=m.seq)


async def on_chat_delete(session: Session, msg: s.ChatDelete) -> None:
    async with _command(session) as (_room, me, _key, ia):
        deleted = ia.chat.delete(me, msg.message_id)
        await session.services.interaction.delete_chat(msg.message_id, ia.now(), me.participant_id)
        ia.emit([deleted])


async def on_chat_settings(session: Session, msg: s.ChatSettings) -> None:
    async with _command(session) as (room, me, _key, ia):
        changed = ia.chat.configure(
            me, enabled=msg.enabled, slow_mode_seconds=msg.slow_mode_seconds
        )
        await session.services.interaction.save_settings(room.room_id, ia)
        ia.emit([changed])


async def on_chat_mute(session: Session, msg: s.ChatMute) -> None:
    async with _command(session) as (room, me, _key, ia):
        target = room.state.get(msg.participant_id)
        changed = ia.chat.set_muted(me, target, person_key(room, target.participant_id), msg.muted)
        await session.services.interaction.save_settings(room.room_id, ia)
        ia.emit([changed])


async def on_reactions_settings(session: Session, msg: s.ReactionsSettings) -> None:
    """Reactions on or off for attendees: written with the chat's switches, logged for the
    other workers like them (the reactions themselves are not: signalling/reactions.py)."""
    async with _command(session) as (room, me, _key, ia):
        changed = ia.reaction_settings.plan(me, enabled=msg.enabled)
        await session.services.interaction.save_settings(
            room.room_id, ia, reactions_enabled=changed.enabled
        )
        ia.reaction_settings.apply(changed)  # after its write: react does not take the lock
        ia.emit([changed])


async def on_question_ask(session: Session, msg: s.QuestionAsk) -> s.ServerMessage:
    async with _command(session) as (room, me, key, ia):
        asked = ia.qa.ask(me, key, msg.text, ia.now(), anonymous=msg.anonymous)
        q = asked.question
        await session.services.interaction.save_question(room.room_id, q)
        session.services.interaction.count("questions", 1)
        ia.emit([asked])
        viewer = Viewer(me, key, session.services.interaction_secret)
        return s.QuestionUpdate(question=viewer.question(q), cause="asked")


async def on_question_mark(session: Session, msg: s.QuestionMark) -> s.ServerMessage:
    async with _command(session) as (room, me, key, ia):
        message = ia.chat.get(msg.message_id)
        if message.participant_id == me.participant_id:
            asked = ia.qa.ask(me, key, message.text, ia.now(), message_id=message.message_id)
        else:
            author = room.state.participants.get(message.participant_id) or Participant(
                message.participant_id, message.name, Role(message.role)
            )
            asked = ia.qa.ask(
                me,
                key,
                message.text,
                ia.now(),
                message_id=message.message_id,
                on_behalf=author,
                on_behalf_key=person_key(room, message.participant_id),
            )
        q = asked.question
        ia.chat.link_question(message.message_id, q.question_id)
        await session.services.interaction.save_question(
            room.room_id, q, from_message=message.message_id
        )
        session.services.interaction.count("questions", 1)
        ia.emit([asked])
        viewer = Viewer(me, key, session.services.interaction_secret)
        return s.QuestionUpdate(question=viewer.question(q), cause="asked")


async def on_question_vote(session: Session, msg: s.QuestionVote) -> None:
    async with _command(session) as (_room, me, key, ia):
        before = ia.qa.questions.get(msg.question_id)
        voted = ia.qa.vote(me, key, msg.question_id, msg.up)
        await session.services.interaction.set_vote(msg.question_id, key, msg.up, ia.now())
        if msg.up and before is not None and key not in before.voters:
            session.services.interaction.count("question_votes", 1)
        deliver(session, voted)  # the voter sees their vote at once, everyone the count soon
        ia.votes_changed(msg.question_id)


async def on_question_state(session: Session, msg: s.QuestionSetState) -> None:
    async with _command(session) as (room, me, _key, ia):
        events = ia.qa.set_state(me, msg.question_id, qa_.QuestionState(msg.state))
        await session.services.interaction.save_question(room.room_id, ia.qa.get(msg.question_id))
        await session.services.interaction.save_settings(room.room_id, ia)
        ia.emit(events)


async def on_question_publish(session: Session, msg: s.QuestionPublish) -> None:
    async with _command(session) as (room, me, _key, ia):
        published = ia.qa.publish(me, msg.question_id)
        now, qid = ia.now(), msg.question_id
        if qid is not None:
            await session.services.interaction.mark_published(qid, now)
        await session.services.interaction.save_settings(room.room_id, ia)
        ia.emit([published])


async def on_qa_settings(session: Session, msg: s.QaSettings) -> None:
    async with _command(session) as (room, me, _key, ia):
        events = ia.qa.set_open(me, msg.open)
        await session.services.interaction.save_settings(room.room_id, ia)
        ia.emit(events)


def poll_spec(msg: s.PollCreate) -> dict[str, object]:
    return {
        "title": msg.title,
        "kind": msg.kind,
        "questions": [
            {
                "text": q.text,
                "kind": q.kind,
                "accepted": list(q.accepted),
                "options": [
                    {"text": o.text, "image_id": o.image_id, "correct": o.correct}
                    for o in q.options
                ],
            }
            for q in msg.questions
        ],
    }


async def on_poll_create(session: Session, msg: s.PollCreate) -> s.ServerMessage:
    async with _command(session) as (room, me, key, ia):
        if not me.can(Capability.RUN_POLLS):
            raise InteractionError(
                InteractionErrorCode.FORBIDDEN, may_not(me.role, N_("make polls"))
            )
        poll = pl.build_poll(poll_spec(msg), now=ia.now())
        await session.services.interaction.check_images(room.room_id, poll)
        created = ia.polls.add(me, poll)
        await session.services.interaction.save_poll(room.room_id, poll)
        ia.emit([created])
        return s.PollUpdate(
            poll=Viewer(me, key, session.services.interaction_secret).poll(poll), cause="created"
        )


async def on_poll_delete(session: Session, msg: s.PollDelete) -> None:
    async with _command(session) as (_room, me, _key, ia):
        deleted = ia.polls.delete(me, msg.poll_id)
        await session.services.interaction.delete_poll(msg.poll_id)
        ia.emit([deleted])


async def _poll_command(session: Session, changed: pl.PollChanged) -> None:
    room = session.room
    assert room is not None
    await session.services.interaction.save_poll(room.room_id, changed.poll)
    room.interaction.emit([changed])


async def on_poll_launch(session: Session, msg: s.PollLaunch) -> None:
    async with _command(session) as (_room, me, _key, ia):
        await _poll_command(session, ia.polls.launch(me, msg.poll_id, ia.now()))


async def on_poll_close(session: Session, msg: s.PollClose) -> None:
    async with _command(session) as (_room, me, _key, ia):
        await _poll_command(session, ia.polls.close(me, msg.poll_id, ia.now()))


async def on_poll_show_results(session: Session, msg: s.PollShowResults) -> None:
    async with _command(session) as (_room, me, _key, ia):
        await _poll_command(session, ia.polls.show_results(me, msg.poll_id, msg.shown))


async def on_poll_answer(session: Session, msg: s.PollAnswer) -> s.ServerMessage:
    async with _command(session, undo=False) as (_room, me, key, ia):
        answered = ia.polls.check_answer(
            me,
            key,
            msg.poll_id,
            [(a.question_id, tuple(a.option_ids), a.text) for a in msg.answers],
            ia.now(),
        )
        await session.services.interaction.save_answers(answered.answers)
        ia.polls.record(answered)  # after the write: answers are not in the checkpoint
        session.services.interaction.count("poll_answers", len(answered.answers))
        ia.results_changed(msg.poll_id)
        return s.PollAnswered(
            poll_id=msg.poll_id,
            answers=Viewer(me, key, session.services.interaction_secret).answers(
                ia.polls, answered.poll
            ),
        )


async def on_cta_show(session: Session, msg: s.CtaShow) -> None:
    await _show_cta(session, msg.message, msg.button, msg.url, msg.duration_seconds)


async def on_cta_launch(session: Session, msg: s.CtaLaunch) -> None:
    """Show a call-to-action prepared before the event, as it was prepared."""
    room, me = session.joined()
    if not me.can(Capability.RUN_CTA):
        raise InteractionError(InteractionErrorCode.FORBIDDEN, may_not(me.role, N_("do that")))
    prepared = await session.services.interaction.prepared_cta(room.room_id, msg.prepared_id)
    if prepared is None:
        raise InteractionError(InteractionErrorCode.NOT_FOUND, _("no such prepared call-to-action"))
    await _show_cta(
        session, prepared.message, prepared.button, prepared.url, prepared.duration_seconds
    )


async def _show_cta(
    session: Session, message: str, button: str, url: str, duration_seconds: int | None
) -> None:
    async with _command(session) as (room, me, _key, ia):
        events = ia.cta.show(
            me,
            message=message,
            button=button,
            url=url,
            duration_seconds=duration_seconds,
            now=ia.now(),
        )
        await session.services.interaction.save_cta_events(room.room_id, events, ia.now())
        ia.emit(events)


async def on_cta_close(session: Session, _msg: s.CtaClose) -> None:
    async with _command(session) as (room, me, _key, ia):
        events = ia.cta.close(me)
        await session.services.interaction.save_cta_events(room.room_id, events, ia.now())
        ia.emit(events)
