"""The languages the store keeps (migration 11): an event's (the organiser's choice; none by
default) and a registration's (the one the person registered in; their e-mails use it)."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from webinar.storage.store import DB_FILENAME, EventSettings, Store
from webinar.ticketing import records

STARTS = datetime(2031, 3, 30, 14, 0, tzinfo=UTC)


def _settings(**changes: object) -> EventSettings:
    return dataclasses.replace(
        EventSettings(title="Babel", starts_at=STARTS, access_type="paid"), **changes
    )


async def test_event_language_round_trips(tmp_data_dir: Path) -> None:
    async with Store(tmp_data_dir) as store:
        plain = await store.create_event("No language", STARTS)
        assert plain.language is None  # a new event has none: each attendee's own
        czech = await store.create_event_from(_settings(language="cs"), owner_id=None)
        assert czech.language == "cs"
        assert (await store.get_event(czech.event_id)) == czech
        russian = await store.update_event(czech.event_id, _settings(language="ru"))
        assert russian.language == "ru"
        cleared = await store.update_event(czech.event_id, _settings(language=None))
        assert cleared.language is None
        with pytest.raises(ValueError, match="language"):
            await store.update_event(czech.event_id, _settings(language="de"))
        assert (await store.get_event(czech.event_id)) == cleared
    async with Store(tmp_data_dir) as store:  # kept across a restart
        await store.update_event(czech.event_id, _settings(language="cs"))
    async with Store(tmp_data_dir) as store:
        found = await store.get_event(czech.event_id)
        assert found is not None and found.language == "cs"
        assert [e.language for e in await store.list_events()] == [None, "cs"]


async def test_registration_language_round_trips(tmp_data_dir: Path) -> None:
    async with Store(tmp_data_dir) as store:
        event = await store.create_event_from(_settings(), owner_id=None)

        async def add(email: str, language: str | None) -> records.Registration:
            return await store.run(
                lambda core: records.add_registration(
                    core.connection,
                    event.event_id,
                    first_name="Ada",
                    last_name="Lovelace",
                    email=email,
                    seats=1,
                    amount_minor=2500,
                    currency="CZK",
                    provider=records.PaymentProvider.MANUAL,
                    capacity=None,
                    language=language,
                )
            )

        cs = await add("Ada@Example.org", "cs")
        ru = await add("ivan@example.org", "ru-RU")  # a tag: its language
        unknown = await add("nobody@example.org", "xx")  # not one of ours: none
        none = await add("old@example.org", None)
        assert (cs.language, ru.language, unknown.language, none.language) == (
            "cs",
            "ru",
            None,
            None,
        )
        again = await store.run(
            lambda core: records.get_registration(core.connection, cs.registration_id)
        )
        assert again is not None and again.language == "cs"
        listed = await store.run(
            lambda core: records.list_registrations(core.connection, event.event_id)
        )
        assert [r.language for r in listed] == ["cs", "ru", None, None]
        # By lower-case address, for other features' e-mails (recording links).
        languages = await store.run(
            lambda core: records.registrant_languages(core.connection, event.event_id)
        )
        assert languages == {"ada@example.org": "cs", "ivan@example.org": "ru"}


def test_the_columns_are_nullable_and_unchecked(tmp_data_dir: Path) -> None:
    """A language added later needs no migration: the store checks the value, not SQL."""
    Store.open_sync(tmp_data_dir).close()
    conn = sqlite3.connect(tmp_data_dir / DB_FILENAME)
    try:
        for table in ("events", "registrations"):
            columns = {row[1]: row for row in conn.execute(f"PRAGMA table_info({table})")}
            name, kind, notnull, default = columns["language"][1:5]
            assert (name, kind, notnull, default) == ("language", "TEXT", 0, None)
    finally:
        conn.close()
