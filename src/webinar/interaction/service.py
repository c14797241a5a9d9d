"""The interaction service: restores and persists a room's chat, Q&A, polls and calls-to-action.

The state machines live in :mod:`webinar.rooms` and know nothing of storage; the signalling
handlers (:mod:`webinar.signalling.interaction`) and the HTTP pages
(:mod:`webinar.http.interaction`) run a command on them and then ask this service to write
what it produced, before anyone is told. Every SQL statement about interaction is in
:mod:`webinar.interaction.store`; this module runs them on the store's thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable

from webinar.i18n import _
from webinar.interaction import store as ist
from webinar.rooms import captions as cp
from webinar.rooms import chat as ch
from webinar.rooms import cta as ct
from webinar.rooms import polls as pl
from webinar.rooms import qa as qa_
from webinar.rooms.interaction import InteractionEvent, RoomInteraction
from webinar.rooms.interaction_errors import InteractionError, InteractionErrorCode
from webinar.rooms.live import LiveRoom
from webinar.storage.store import Store, SyncStore


def person_key(room: LiveRoom, participant_id: str) -> str:
    """Who someone is across reconnects and reloads: the same key attendance records
    (:func:`webinar.rooms.state.person_key_for`), so the export joins them up."""
    return room.state.person_key(participant_id)


def cta_clicked(room: LiveRoom | None, cta_id: str, clicks: int) -> None:
    """Tell a live room's presenters that a call-to-action was clicked ``clicks`` times."""
    if room is not None and room.interaction.loaded:
        room.interaction.emit([ct.CtaClicked(cta_id, clicks)])


# ----------------------------------------------------------------------------- click links


def click_token(secret: bytes, cta_id: str, participant_id: str, name: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps([participant_id, name]).encode()).rstrip(b"=")
    sig = hmac.new(secret, cta_id.encode() + b"." + payload, hashlib.sha256).digest()[:16]
    return payload.decode() + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def read_click_token(secret: bytes, cta_id: str, token: str) -> tuple[str, str] | None:
    """(participant id, name) from a genuine token, else None."""
    payload, _sep, sig = token.partition(".")
    if not payload or not sig or len(token) > 600:
        return None
    want = hmac.new(secret, cta_id.encode() + b"." + payload.encode(), hashlib.sha256).digest()
    try:
        given = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
        if not hmac.compare_digest(given, want[:16]):
            return None
        pid, name = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    return (pid, name) if isinstance(pid, str) and isinstance(name, str) else None


# ----------------------------------------------------------------------------- the service


class InteractionService:
    """Reads and writes one event's interaction through the store's thread.

    Every ``save_*`` is awaited after a state machine accepted a command and before its
    events are emitted: a write that fails leaves nobody told of a change that was not kept.
    """

    def __init__(
        self, store: Store, on_count: Callable[[str, int], None] = lambda _kind, _n: None
    ) -> None:
        self._store = store
        #: Counts interaction as it happens (webinar.http.metrics.INTERACTION_COUNTERS).
        self.count = on_count

    async def load(self, room: LiveRoom) -> RoomInteraction:
        """Restore what the store holds for this event the first time the room needs it."""
        ia = room.interaction
        if ia.loaded:
            return ia
        event_id = room.room_id
        snap = await self._store.run(lambda core: ist.load(core, event_id, ch.CHAT_HISTORY))
        if not ia.loaded:  # another session may have loaded it meanwhile
            ia.chat.restore(snap.chat, snap.chat_seq)
            ia.chat.enabled = snap.chat_enabled
            ia.chat.slow_mode_seconds = snap.slow_mode_seconds
            ia.chat.muted = set(snap.chat_muted)
            ia.reaction_settings.enabled = snap.reactions_enabled
            ia.qa.restore(snap.questions)
            ia.qa.open = snap.qa_open
            ia.qa.published_id = snap.published_id if snap.published_id in ia.qa.questions else None
            for poll in snap.polls:
                ia.polls.add_prepared(poll)
            for answer in snap.answers:
                ia.polls.restore_answer(answer)
            ia.cta.restore(snap.cta, ia.now())
            ia.arm_restored_cta()
            ia.captions.restore(
                snap.captions, enabled=snap.captions_enabled, captioners=set(snap.captioners)
            )
            ia.captions.seq = max(ia.captions.seq, snap.captions_seq)
            ia.loaded = True
        return ia

    async def cta_panel(
        self, event_id: str, cta_id: str | None
    ) -> tuple[int, list[ct.PreparedCta]]:
        """What a presenter's CTA panel shows: clicks of the current CTA, the prepared ones."""

        def read(core: SyncStore) -> tuple[int, list[ct.PreparedCta]]:
            n = ist.click_count(core, cta_id) if cta_id is not None else 0
            return n, ist.list_prepared_ctas(core, event_id)

        return await self._store.run(read)

    # chat

    async def save_chat(self, event_id: str, message: ch.ChatMessage) -> None:
        await self._store.run(lambda core: ist.save_chat(core, event_id, message))

    async def delete_chat(self, message_id: str, now: float, by: str) -> None:
        await self._store.run(lambda core: ist.delete_chat(core, message_id, now, by))

    async def save_settings(
        self, event_id: str, ia: RoomInteraction, *, reactions_enabled: bool | None = None
    ) -> None:
        """The room's chat, Q&A and reactions switches, as they are now (the reactions
        switch as ``reactions_enabled`` says when given: it is applied after its write)."""
        enabled, slow, open_ = ia.chat.enabled, ia.chat.slow_mode_seconds, ia.qa.open
        published, muted = ia.qa.published_id, frozenset(ia.chat.muted)
        reactions = ia.reaction_settings.enabled if reactions_enabled is None else reactions_enabled
        await self._store.run(
            lambda core: ist.save_settings(
                core,
                event_id,
                chat_enabled=enabled,
                slow_mode_seconds=slow,
                qa_open=open_,
                published_question_id=published,
                chat_muted=muted,
                reactions_enabled=reactions,
            )
        )

    # Q&A

    async def save_question(
        self, event_id: str, question: qa_.Question, *, from_message: str | None = None
    ) -> None:
        """A question; ``from_message`` links the chat message it was made from."""

        def save(core: SyncStore) -> None:
            ist.save_question(core, event_id, question)
            if from_message is not None:
                ist.link_chat_question(core, from_message, question.question_id)

        await self._store.run(save)

    async def set_vote(self, question_id: str, key: str, up: bool, now: float) -> None:
        await self._store.run(lambda core: ist.set_vote(core, question_id, key, up, now))

    async def mark_published(self, question_id: str, now: float) -> None:
        await self._store.run(lambda core: ist.mark_published(core, question_id, now))

    # polls

    async def check_images(self, event_id: str, poll: pl.Poll) -> None:
        """Refuse a poll whose options show images not uploaded for this event."""
        await check_images(self._store, event_id, poll)

    async def save_poll(self, event_id: str, poll: pl.Poll) -> None:
        await self._store.run(lambda core: ist.save_poll(core, event_id, poll))

    async def delete_poll(self, poll_id: str) -> None:
        await self._store.run(lambda core: ist.delete_poll(core, poll_id))

    async def save_answers(self, answers: Iterable[pl.Answer]) -> None:
        kept = tuple(answers)
        await self._store.run(lambda core: ist.save_answers(core, kept))

    # captions

    async def save_caption(self, event_id: str, line: cp.CaptionLine) -> None:
        await self._store.run(lambda core: ist.save_caption(core, event_id, line))

    async def save_caption_settings(self, event_id: str, ia: RoomInteraction) -> None:
        """The room's captions switch and captioners, as they are now."""
        enabled, captioners = ia.captions.enabled, frozenset(ia.captions.captioners)
        await self._store.run(
            lambda core: ist.save_caption_settings(
                core, event_id, enabled=enabled, captioners=captioners
            )
        )

    async def caption_lines(
        self, event_id: str, since: float | None = None, until: float | None = None
    ) -> list[cp.CaptionLine]:
        """An event's kept caption lines between two times (epoch seconds), oldest first."""
        return await self._store.run(
            lambda core: ist.caption_lines(core, event_id, since=since, until=until)
        )

    # reactions

    async def save_reactions(self, event_id: str, counts: dict[tuple[str, str], int]) -> None:
        """A batch of per-person reaction counts (webinar.rooms.reactions), added up."""
        batch = dict(counts)
        await self._store.run(lambda core: ist.add_reactions(core, event_id, batch))

    # calls-to-action

    async def prepared_cta(self, event_id: str, prepared_id: str) -> ct.PreparedCta | None:
        return await self._store.run(lambda core: ist.get_prepared_cta(core, event_id, prepared_id))

    async def save_cta_events(
        self, event_id: str, events: Iterable[InteractionEvent], now: float
    ) -> None:
        """What showing or closing a call-to-action changed: shown ones saved, closed ones
        closed at ``now``."""
        changes = list(events)

        def save(core: SyncStore) -> None:
            for event in changes:
                if isinstance(event, ct.CtaClosed):
                    ist.close_cta(core, event.cta.cta_id, now)
                elif isinstance(event, ct.CtaShown):
                    ist.save_cta(core, event_id, event.cta)

        await self._store.run(save)

    def replica(self) -> InteractionService:
        """The same reads, no writes: for replaying on this worker a command another worker
        ran and wrote already (webinar.signalling.replication)."""
        return _ReplayService(self._store)


class _ReplayService(InteractionService):
    """Reads like :class:`InteractionService`; every write was made by the command's worker."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)

    async def save_chat(self, event_id: str, message: ch.ChatMessage) -> None:
        pass

    async def save_caption(self, event_id: str, line: cp.CaptionLine) -> None:
        pass

    async def save_caption_settings(self, event_id: str, ia: RoomInteraction) -> None:
        pass

    async def delete_chat(self, message_id: str, now: float, by: str) -> None:
        pass

    async def save_settings(
        self, event_id: str, ia: RoomInteraction, *, reactions_enabled: bool | None = None
    ) -> None:
        pass

    async def save_question(
        self, event_id: str, question: qa_.Question, *, from_message: str | None = None
    ) -> None:
        pass

    async def set_vote(self, question_id: str, key: str, up: bool, now: float) -> None:
        pass

    async def mark_published(self, question_id: str, now: float) -> None:
        pass

    async def save_poll(self, event_id: str, poll: pl.Poll) -> None:
        pass

    async def delete_poll(self, poll_id: str) -> None:
        pass

    async def save_answers(self, answers: Iterable[pl.Answer]) -> None:
        pass

    async def save_cta_events(
        self, event_id: str, events: Iterable[InteractionEvent], now: float
    ) -> None:
        pass

    async def check_images(self, event_id: str, poll: pl.Poll) -> None:
        pass  # checked where the poll was made


async def check_images(store: Store, event_id: str, poll: pl.Poll) -> None:
    """Refuse a poll whose options show images not uploaded for this event."""
    wanted = {o.image_id for q in poll.questions for o in q.options if o.image_id}
    if not wanted:
        return
    found = await store.run(lambda core: ist.images_of(core, event_id, wanted))
    if found != wanted:
        raise InteractionError(
            InteractionErrorCode.INVALID, _("an option's image was not uploaded for this event")
        )
