"""Duplicating and deleting an event: one implementation for the dashboard, the API and the
CLI (``webinar event duplicate`` / ``delete``), so the three copy and delete the same.

Synchronous on purpose: each runs on a :class:`SyncStore` — the CLI's own, or the server's
store thread through :meth:`Store.run` — and the files a deletion leaves (recordings, poll
images, uploaded content) are removed afterwards with :func:`remove_event_files` (in a worker
thread on the server).

A copy gets a new ID and new presenter and host links, and the source's settings, access
settings (passwords, price, places, the registration form), polls and tests as drafts with
their images, prepared calls-to-action, chat and Q&A settings, automatic recording and
co-organisers. Registrations, invitees, presenters, chat, answers, attendance and recordings
are people's data of the source: never copied.
"""

from __future__ import annotations

import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from webinar.attendance.service import sql_people_in_room
from webinar.followup import records as followup
from webinar.interaction.store import copy_setup, list_images
from webinar.recordings.library import list_recordings, sql_auto_record, sql_set_auto_record
from webinar.storage import accounts, branding
from webinar.storage.db import transaction
from webinar.storage.store import Event, EventSettings, StoreError, SyncStore
from webinar.ticketing.records import copy_access
from webinar.webhooks.records import sql_delete_event_deliveries


@dataclass(frozen=True, slots=True)
class Copied:
    """What a duplicate took from its source (the JSON of ``event duplicate --json`` and of
    the API's answer name these)."""

    polls: int
    images: int
    calls_to_action: int
    interaction_settings: bool
    auto_record: bool
    co_organisers: int


@dataclass(frozen=True, slots=True)
class Deleted:
    """An event deleted with everything it held; the files are the caller's to remove."""

    event: Event
    recording_ids: tuple[str, ...]
    recording_bytes: int
    image_ids: tuple[str, ...]


class EventInUse(StoreError):
    """People are in the event's room: it cannot be deleted now."""

    def __init__(self, event: Event, people: int) -> None:
        super().__init__(f"{people} in the room of {event.display_id}")
        self.event = event
        self.people = people


def settings_of(event: Event) -> EventSettings:
    """An event's settings, to change some and make a copy (or an update) from."""
    return EventSettings(
        **{name: getattr(event, name) for name in EventSettings.__dataclass_fields__}
    )


def duplicate_event(
    store: SyncStore, source: Event, settings: EventSettings, images_dir: Path
) -> tuple[Event, Copied]:
    """Create a copy of ``source`` with ``settings`` (its own, some changed), owned by the
    source's owner. The poll images are copied first (a file without its row is harmless, a
    row without its file is not; each copy has its own ID, so deleting one event never takes
    the other's images), then everything else in one transaction."""
    checked = settings.validated()
    image_map: dict[str, str] = {}
    for image_id, _type, _size in list_images(store, source.event_id):
        original = images_dir / image_id
        if original.is_file():
            copy_id = "img_" + secrets.token_hex(12)
            part = images_dir / f"{copy_id}.part"
            shutil.copyfile(original, part)
            part.replace(images_dir / copy_id)
            image_map[image_id] = copy_id
    db = store.connection
    with transaction(db, immediate=True):
        copy = store.create_event_from(checked, owner_id=source.owner_id)
        copy_access(db, source.event_id, copy.event_id)
        setup = copy_setup(
            store,
            source.event_id,
            copy.event_id,
            now=time.time(),
            new_id=lambda prefix: prefix + secrets.token_hex(8),
            images=image_map,
        )
        auto_record = sql_auto_record(db, source.event_id)
        if auto_record:
            sql_set_auto_record(db, copy.event_id, True)
        team = accounts.copy_organisers(db, source.event_id, copy.event_id, datetime.now(UTC))
        followup.copy_settings(db, source.event_id, copy.event_id)
        # the event's own branding (logo, colour, background, name): files are shared by id
        own_brand = branding.sql_event_branding(db, source.event_id)
        if own_brand is not None and not own_brand.is_empty():
            branding.sql_put_event_branding(db, copy.event_id, own_brand)
    return copy, Copied(
        polls=setup.polls,
        images=setup.images,
        calls_to_action=setup.calls_to_action,
        interaction_settings=setup.settings,
        auto_record=auto_record,
        co_organisers=team,
    )


def delete_event(store: SyncStore, event_id: str) -> Deleted:
    """Delete the event and, through the schema's ``ON DELETE CASCADE``, everything that
    belongs to it: registrations, invitees, presenters, chat, questions, polls and answers,
    attendance, uploaded content, the recordings' rows and their viewers; its webhook
    deliveries too. Under the write lock, so nobody joins between the check and the delete (a
    join writes its attendance row first): :class:`EventInUse` while people are in its room.
    ``LookupError`` when there is no such event. The files are the caller's
    (:func:`remove_event_files`): rows first, so a failure leaves at worst a file nobody can
    reach, never a row without its file."""
    db = store.connection
    with transaction(db, immediate=True):
        event = store.get_event(event_id)
        if event is None:
            raise LookupError(event_id)
        in_room = sql_people_in_room(db, event.event_id)
        if in_room:
            raise EventInUse(event, in_room)
        recordings = list_recordings(db, event_id=event.event_id)
        images = tuple(image_id for image_id, _type, _size in list_images(store, event.event_id))
        sql_delete_event_deliveries(db, event.event_id)
        store.delete_event(event.event_id)
    return Deleted(
        event=event,
        recording_ids=tuple(r.recording_id for r in recordings),
        recording_bytes=sum(r.size for r in recordings),
        image_ids=images,
    )


def remove_event_files(shared_dir: Path, deleted: Deleted) -> None:
    """The files of a deleted event: its recordings, poll images and uploaded content."""
    for recording_id in deleted.recording_ids:
        shutil.rmtree(shared_dir / "recordings" / recording_id, ignore_errors=True)
    for image_id in deleted.image_ids:
        (shared_dir / "images" / image_id).unlink(missing_ok=True)
    shutil.rmtree(shared_dir / "content" / deleted.event.event_id, ignore_errors=True)
