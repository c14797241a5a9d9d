"""An event's live stream settings (webinar.broadcast.settings): the ingest URL and the stream
key, the key sealed at rest, re-sealed by a key rotation, never shown back in full; bad input
refused with the reason and nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres_server import ensure_key
from webinar.broadcast import settings
from webinar.broadcast.rtmp import IngestError, redact, target, validate_ingest
from webinar.storage.sealing import Sealer, new_key, rotate
from webinar.storage.store import SyncStore

YOUTUBE = "rtmp://a.rtmp.youtube.com/live2"
KEY = "abcd-efgh-ijkl-mnop-qrst"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    ensure_key(request.getfixturevalue("tmp_data_dir"))
    return url


@pytest.fixture
def core(tmp_data_dir: Path, database_url: str | None) -> Iterator[SyncStore]:
    store = SyncStore.open(tmp_data_dir, database_url)
    try:
        yield store
    finally:
        store.close()


def test_saved_sealed_and_shown_only_as_a_hint(core: SyncStore) -> None:
    event = core.create_event("Launch", None)
    db = core.connection
    assert settings.sql_get(db, event.event_id) is None
    saved = settings.sql_save(db, event.event_id, f" {YOUTUBE}/ ", f" {KEY} ")
    assert (saved.url, saved.key) == (YOUTUBE, KEY)
    raw = db.execute("SELECT stream_key FROM event_stream_out").fetchone()[0]
    assert KEY not in raw and raw.startswith("s1.")
    got = settings.sql_get(db, event.event_id)
    assert got is not None and (got.url, got.key) == (YOUTUBE, KEY)
    shown = got.public_json()
    assert shown["key_hint"] == "…qrst" and KEY not in str(shown)
    # a blank key keeps the stored one; a new URL replaces the old
    other = "rtmps://live-api-s.facebook.com:443/rtmp"
    kept = settings.sql_save(db, event.event_id, other, "")
    assert (kept.url, kept.key) == (other, KEY)
    assert settings.sql_clear(db, event.event_id)
    assert settings.sql_get(db, event.event_id) is None
    assert not settings.sql_clear(db, event.event_id)


def test_bad_input_is_refused_and_nothing_changes(core: SyncStore) -> None:
    event = core.create_event("Launch", None)
    db = core.connection
    with pytest.raises(IngestError, match="stream key is empty"):
        settings.sql_save(db, event.event_id, YOUTUBE, None)  # no key stored yet
    settings.sql_save(db, event.event_id, YOUTUBE, KEY)
    for url, key, reason in [
        ("https://a.rtmp.youtube.com/live2", KEY, "rtmp:// or rtmps://"),
        ("rtmp:///live2", KEY, "no host"),
        ("rtmp://host", KEY, "application path"),
        ("rtmp://user:pw@host/live", KEY, "user name or password"),
        ("rtmp://host:99999/live", KEY, "bad port"),
        ("rtmp://host/live?x=1", KEY, "query"),
        ("rtmp://host/li ve", KEY, "spaces"),
        ("rtmp://host/live", "a b", "spaces"),
        ("rtmp://host/live", "a/b", "/"),
        ("rtmp://host/live", "k" * 501, "longer than 500"),
        ("rtmp://h/" + "x" * 500, KEY, "longer than 500"),
    ]:
        with pytest.raises(IngestError, match=reason):
            settings.sql_save(db, event.event_id, url, key)
    got = settings.sql_get(db, event.event_id)
    assert got is not None and (got.url, got.key) == (YOUTUBE, KEY)


def test_rotation_reseals_the_key_and_deleting_the_event_deletes_it(core: SyncStore) -> None:
    event = core.create_event("Launch", None)
    db = core.connection
    settings.sql_save(db, event.event_id, YOUTUBE, KEY)
    old = db.sealer
    new = Sealer.from_texts([new_key()])
    assert rotate(db, old, new) >= 1
    db.sealer = new
    got = settings.sql_get(db, event.event_id)
    assert got is not None and got.key == KEY
    core.delete_event(event.event_id)
    assert db.execute("SELECT count(*) FROM event_stream_out").fetchone()[0] == 0


def test_the_target_and_redaction() -> None:
    url, key = validate_ingest("rtmps://x.example/app/", "k3y")
    assert target(url, key) == "rtmps://x.example/app/k3y"
    assert redact("cannot open rtmps://x.example/app/k3y", key) == (
        "cannot open rtmps://x.example/app/[key]"
    )
