"""Command line: `webinar serve`, `webinar event create|list|show|update|delete|duplicate`,
`webinar recording list|download`, `webinar user ...`, `webinar token create|revoke|list`,
`webinar healthcheck`, ...

The configuration file is ``--config FILE``, else ``$WEBINAR_CONFIG``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import importlib
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from webinar import __version__
from webinar.accounts import check_password_rules, hash_password
from webinar.config import (
    Config,
    ConfigError,
    WorkerCount,
    example_toml,
    load_config,
    parse_workers,
)
from webinar.formats import iso_time
from webinar.i18n import LANGUAGES
from webinar.ids import format_event_id
from webinar.links import event_links, host_url
from webinar.storage.store import (
    ACCESS_TYPES,
    DB_FILENAME,
    Event,
    EventSettings,
    Store,
    StoreError,
    SyncStore,
    validate_title,
)

if TYPE_CHECKING:
    from webinar.recordings.library import RecordingInfo

T = TypeVar("T")

DEMO_TITLE = "Demo webinar"
#: The configuration file when ``--config`` is not given (docs/configuration.md).
CONFIG_ENV = "WEBINAR_CONFIG"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line input; reported with exit code 2."""


class _RunApp(Protocol):
    def __call__(self, config: Config, store: Store) -> None: ...


# ---------------------------------------------------------------------------------------------
# Helpers


def parse_start(text: str) -> datetime:
    """Parse ``--start``: ISO-8601 with a UTC offset or ``Z``. Returns an aware UTC datetime."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date and time, e.g. 2030-01-31T18:00Z"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset; add one, e.g. {value:%Y-%m-%dT%H:%M}Z for UTC"
            f" or {value:%Y-%m-%dT%H:%M}+01:00"
        )
    return value.astimezone(UTC)


def event_json(config: Config, event: Event) -> dict[str, str | None]:
    """The JSON form of an event printed by ``--json``."""
    attendee_url, presenter_url = event_links(config, event)
    return {
        "event_id": event.display_id,
        "title": event.title,
        "starts_at": iso_time(event.starts_at, zulu=True),
        "attendee_url": attendee_url,
        "presenter_url": presenter_url,
        "host_url": host_url(config, event),
    }


def _print_event(config: Config, event: Event) -> None:
    attendee_url, presenter_url = event_links(config, event)
    starts = "not set" if event.starts_at is None else f"{event.starts_at:%Y-%m-%d %H:%M} UTC"
    print(f"{event.display_id}  {event.title}")
    print(f"  Starts:         {starts}")
    print(f"  Attendee link:  {attendee_url}")
    print(f"  Presenter link: {presenter_url}")
    print(f"  Host link:      {host_url(config, event)}")


def _config_path(args: argparse.Namespace) -> Path | None:
    """``--config FILE``, else the environment's ``WEBINAR_CONFIG``, else none."""
    if args.config is not None:
        return cast(Path, args.config)
    from_env = os.environ.get(CONFIG_ENV, "").strip()
    return Path(from_env) if from_env else None


def _config(args: argparse.Namespace) -> Config:
    config = load_config(_config_path(args), os.environ)
    return config.with_overrides(
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=args.data_dir,
        workers=getattr(args, "workers", None),
    )


def _workers_arg(text: str) -> WorkerCount:
    try:
        return parse_workers(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _load_run_app() -> _RunApp:
    # Imported lazily: the event commands must work without loading the server stack.
    module = importlib.import_module("webinar.app")
    return cast(_RunApp, module.run_app)


# ---------------------------------------------------------------------------------------------
# Commands


def _cmd_serve(args: argparse.Namespace) -> int:
    config = _config(args)
    from webinar.cluster import worker
    from webinar.tls import check_tls

    try:
        identity = worker.current()
    except worker.WorkerError as exc:
        raise UsageError(str(exc)) from None
    check_tls(config.tls)  # a certificate problem stops us before anything is done
    if identity.clustered:  # a worker the supervisor started: the supervisor prepared the store
        run_app = _load_run_app()
        run_app(config, Store.from_config(config))
        return EXIT_OK
    if config.server.worker_count > 1 or config.cluster.is_node:
        return _supervise(args, config)
    run_app = _load_run_app()
    store = Store.from_config(config)

    async def prepare() -> tuple[Event | None, int]:
        await store.open()
        count = await store.count_events()
        if count == 0:
            demo = await store.create_event(DEMO_TITLE, None, camera_limit=config.rooms.max_cameras)
            return demo, 1
        return None, count

    try:
        demo, count = asyncio.run(prepare())
        if demo is not None:
            print(f"Created a demo event: {demo.title}")
            _print_event(config, demo)
        else:
            noun = "event" if count == 1 else "events"
            print(f"{count} {noun} in {store.path}; `webinar event list` shows their links.")
        sys.stdout.flush()
        run_app(config, store)
    finally:
        asyncio.run(store.close())
    return EXIT_OK


def _announce(config: Config, demo: Event | None, count: int, path: Path) -> None:
    if demo is not None:
        print(f"Created a demo event: {demo.title}")
        _print_event(config, demo)
    else:
        noun = "event" if count == 1 else "events"
        print(f"{count} {noun} in {path}; `webinar event list` shows their links.")
    sys.stdout.flush()


def _supervise(args: argparse.Namespace, config: Config) -> int:
    """``serve`` with several workers: check what they need, prepare the store once (migrations,
    the demo event, sessions a crash left open), then run the supervisor until it is stopped."""
    from webinar import logs
    from webinar.cluster import redis as cluster_redis
    from webinar.cluster import supervisor, worker

    workers = config.server.worker_count
    private: cluster_redis.PrivateRedis | None = None
    redis_url = config.cluster.redis_url
    node = 0
    if config.cluster.is_node:
        assert redis_url is not None  # the configuration says so
        node = _node_number(redis_url)
    elif redis_url is None:
        try:
            private = cluster_redis.PrivateRedis(config.data_dir)
        except cluster_redis.RedisMissing as exc:
            raise UsageError(str(exc)) from None
        redis_url = private.url
    try:
        shares = worker.split_udp_range(config.ice.udp_port_min, config.ice.udp_port_max, workers)
        ports = [
            worker.direct_port(config.server.worker_port_base, k) for k in range(1, workers + 1)
        ]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if config.server.worker_port_base is not None and config.http.port in ports:
        raise UsageError(
            f"server.worker_port_base: the workers' ports {ports[0]}-{ports[-1]} include"
            f" http.port {config.http.port}"
        )
    supervisor.check_port_free(config.http.host, config.http.port)
    identities = [
        worker.WorkerIdentity(
            worker_id=node * worker.NODE_STRIDE + k,
            workers=workers,
            redis_url=redis_url,
            pipe_host=config.cluster.node_address or config.cluster.pipe_host,
            direct_port=ports[k - 1],
            udp_port_min=share[0] if share else None,
            udp_port_max=share[1] if share else None,
        )
        for k, share in enumerate(shares, start=1)
    ]
    from webinar.attendance.service import AttendanceService
    from webinar.rooms.reasons import ByeReason

    store = Store.from_config(config)

    async def prepare() -> tuple[Event | None, int]:
        await store.open()  # migrations happen here, once, before any worker opens the file
        try:
            if node == 0:  # on a cluster of nodes the others' sessions are live
                await AttendanceService(store).close_open_sessions(ByeReason.SERVER_RESTART)
            count = await store.count_events()
            if count == 0 and node == 0:  # a cluster's database is the organisers' own
                demo = await store.create_event(
                    DEMO_TITLE, None, camera_limit=config.rooms.max_cameras
                )
                return demo, 1
            return None, count
        finally:
            await store.close()

    demo, count = asyncio.run(prepare())
    _announce(config, demo, count, store.path)
    logs.configure(config.log, worker=0)
    command = [
        *(sys.executable, "-m", "webinar", "serve"),
        *("--data-dir", str(config.data_dir.resolve())),
        *("--host", config.http.host, "--port", str(config.http.port)),
    ]
    config_path = _config_path(args)
    if config_path is not None:
        command += ["--config", str(config_path.resolve())]
    return supervisor.run(command, os.environ, identities, private)


def _node_number(redis_url: str) -> int:
    """A number for this node, new at every start (``webinar:node-seq`` in Redis): its
    workers' IDs are ``number * 1000 + k``, so a node started again is a new node, and the
    others end the places of its former life as they do for any worker that died."""
    import redis as redis_sync
    from redis.exceptions import RedisError

    from webinar.cluster.redis import KEY_PREFIX
    from webinar.cluster.registry import MEMBERS_KEY, worker_key
    from webinar.cluster.worker import NODE_STRIDE, node_of

    try:
        client = redis_sync.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=5)
        try:
            while True:
                number = client.incr(f"{KEY_PREFIX}node-seq")
                assert isinstance(number, int)
                # A Redis restarted without its data counts from 1 again: skip the numbers of
                # nodes that are still running.
                members = client.zrange(MEMBERS_KEY, 0, -1)
                assert isinstance(members, list)
                taken = [int(m) for m in members if node_of(int(m)) == number]
                if not taken or not client.exists(*(worker_key(w) for w in taken)):
                    if number * NODE_STRIDE > 2**62:
                        raise UsageError("webinar:node-seq in Redis is past its last number")
                    return number
        finally:
            client.close()
    except (RedisError, OSError) as exc:
        raise UsageError(f"cluster.redis_url: cannot reach Redis at {redis_url}: {exc}") from None


def _external_url(config: Config, text: str | None) -> str | None:
    """``--external-url``: checked against the providers (``[content]``); "" is none."""
    from webinar.content.external import ExternalLinkError, check_external

    try:
        return check_external(text, config.content.external_providers)
    except ExternalLinkError as exc:
        raise UsageError(f"--external-url: {exc}") from None


def _cmd_event_create(args: argparse.Namespace) -> int:
    try:
        title = validate_title(args.title)
    except ValueError as exc:
        raise UsageError(f"--title: {exc}") from None
    config = _config(args)
    external = _external_url(config, args.external_url)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        event = store.create_event(
            title, args.start, camera_limit=config.rooms.max_cameras, external_url=external
        )
    if args.json:
        print(json.dumps(event_json(config, event), ensure_ascii=False))
    else:
        print("Created event:")
        _print_event(config, event)
        print("Keep the presenter link secret: anyone who has it can present.")
    return EXIT_OK


def _cmd_event_list(args: argparse.Namespace) -> int:
    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        events = store.list_events()
    if args.json:
        print(json.dumps([event_json(config, event) for event in events], ensure_ascii=False))
    elif not events:
        print("No events yet. Create one with: webinar event create --title TITLE")
    else:
        for event in events:
            _print_event(config, event)
    return EXIT_OK


def _find_event(store: SyncStore, text: str) -> Event:
    event = store.get_event(text)
    if event is None:
        raise UsageError(f"no event {text!r} (IDs look like 123-456-789: `webinar event list`)")
    return event


def event_details_json(config: Config, store: SyncStore, event: Event) -> dict[str, object]:
    """What ``event show --json`` prints: the settings, the links and what the event holds."""
    from webinar.attendance.service import sql_people_in_room
    from webinar.interaction.store import count_setup
    from webinar.recordings.library import list_recordings, sql_auto_record
    from webinar.ticketing.records import count_people, get_access

    db = store.connection
    access = get_access(db, event.event_id)
    owner = None if event.owner_id is None else store.get_user(event.owner_id)
    registrations, invitees = count_people(db, event.event_id)
    polls, ctas = count_setup(store, event.event_id)
    recordings = list_recordings(db, event_id=event.event_id)
    return {
        **event_json(config, event),
        "status": event.status(datetime.now(UTC)),
        "created_at": iso_time(event.created_at, zulu=True),
        "timezone": event.timezone,
        "duration_minutes": event.duration_minutes,
        "join_window_minutes": event.join_window_minutes,
        "access_type": event.access_type,
        "camera_limit": event.camera_limit,
        "language": event.language,
        "agenda": event.agenda,
        "lobby_message": event.lobby_message,
        "thank_you_url": event.thank_you_url,
        "external_url": event.external_url,
        "hls_mode": event.hls_mode,
        "hls_overflow_after": event.hls_overflow_after,
        "owner": None if owner is None else owner.username,
        "cancelled_at": iso_time(access.cancelled_at, zulu=True),
        "access": {
            "has_attendee_password": access.attendee_password_hash is not None,
            "has_presenter_password": access.presenter_password_hash is not None,
            "price_minor": access.price_minor,
            "currency": access.currency,
            "capacity": access.capacity,
            "second_device": access.second_device.value,
            "payment_provider": access.payment_provider.value,
            "form_fields": [{"label": f.label, "required": f.required} for f in access.form_fields],
            "registration_required": access.registration_required,
            "waiting_list": access.waiting_list,
        },
        "auto_record": sql_auto_record(db, event.event_id),
        "counts": {
            "in_room": sql_people_in_room(db, event.event_id),
            "registrations": registrations,
            "invitees": invitees,
            "polls": polls,
            "calls_to_action": ctas,
            "recordings": len(recordings),
            "recording_bytes": sum(r.size for r in recordings),
        },
    }


def _print_details(details: dict[str, object]) -> None:
    d = cast(dict[str, Any], details)
    counts, access = d["counts"], d["access"]
    starts = "not set (the room is open at any time)"
    if d["starts_at"] is not None:
        starts = f"{d['starts_at']} ({d['timezone']}), {d['duration_minutes']} minutes"
    entry = d["access_type"]
    if access["registration_required"]:
        entry += ", registration required"
    if access["capacity"] is not None:
        entry += f", {access['capacity']} places"
    if access["waiting_list"]:
        entry += " and a waiting list"
    if access["price_minor"] is not None:
        entry += f", price {access['price_minor']} minor units {access['currency']}"
    if d["cancelled_at"] is not None:
        entry += f"; CANCELLED at {d['cancelled_at']}"
    print(f"{d['event_id']}  {d['title']}")
    print(f"  Status:         {d['status']}")
    print(f"  Starts:         {starts}")
    print(f"  Lobby opens:    {d['join_window_minutes']} minutes before the start")
    print(f"  Access:         {entry}")
    print(f"  Cameras:        at most {d['camera_limit']} on stage")
    print(f"  Language:       {d['language'] or 'each attendee their own'}")
    hls = {
        "off": "nobody (everyone watches over WebRTC)",
        "all": "every attendee",
        "overflow": f"attendees beyond the first {d['hls_overflow_after']}",
    }
    print(f"  HLS:            {hls.get(d['hls_mode'], d['hls_mode'])}")
    print(f"  Owner:          {d['owner'] or 'none (admins see it)'}")
    print(f"  Attendee link:  {d['attendee_url']}")
    print(f"  Presenter link: {d['presenter_url']}")
    print(f"  Host link:      {d['host_url']}")
    if d["thank_you_url"]:
        print(f"  After the end:  {d['thank_you_url']}")
    if d["external_url"]:
        print(f"  External player: {d['external_url']}")
    print(
        f"  Holds:          {counts['registrations']} registrations, {counts['invitees']}"
        f" invitees, {counts['polls']} polls, {counts['calls_to_action']} calls-to-action,"
        f" {counts['recordings']} recordings ({_size(counts['recording_bytes'])})"
    )
    print(f"  In the room:    {counts['in_room']} now; automatic recording {_on(d['auto_record'])}")
    for label, key in (("Agenda", "agenda"), ("Lobby message", "lobby_message")):
        if d[key]:
            print(f"  {label}:")
            for line in str(d[key]).splitlines():
                print(f"    {line}")


def _on(flag: object) -> str:
    return "on" if flag else "off"


def _size(size: int) -> str:
    """``size`` bytes for people: 812 bytes, 8.3 KiB, 1.2 GiB."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def _cmd_event_show(args: argparse.Namespace) -> int:
    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        details = event_details_json(config, store, _find_event(store, args.event))
    if args.json:
        print(json.dumps(details, ensure_ascii=False))
    else:
        _print_details(details)
    return EXIT_OK


#: ``event update`` flags and the EventSettings field each sets.
_UPDATE_FIELDS = {
    "title": "title",
    "start": "starts_at",
    "timezone": "timezone",
    "duration": "duration_minutes",
    "join_window": "join_window_minutes",
    "access_type": "access_type",
    "camera_limit": "camera_limit",
    "language": "language",
    "agenda": "agenda",
    "lobby_message": "lobby_message",
    "thank_you_url": "thank_you_url",
    "external_url": "external_url",
    "hls": "hls_mode",
    "hls_overflow_after": "hls_overflow_after",
}


def _settings_of(event: Event) -> EventSettings:
    return EventSettings(
        **{f.name: getattr(event, f.name) for f in dataclasses.fields(EventSettings)}
    )


def _check_access(store: SyncStore, settings: EventSettings, event_id: str) -> None:
    """What the access type needs that only the dashboard or the API sets (passwords, a
    price): an event cannot be switched to a type it would not work with."""
    from webinar.ticketing.records import get_access

    access = get_access(store.connection, event_id)
    where = "set it in the dashboard or through the API (docs/api.md) first"
    if settings.access_type == "password" and access.attendee_password_hash is None:
        raise UsageError(f"--access-type password: the event has no attendee password; {where}")
    if settings.access_type == "paid":
        if access.price_minor is None:
            raise UsageError(f"--access-type paid: the event has no ticket price; {where}")
        if settings.starts_at is None:
            raise UsageError("a paid event needs a start date and time (--start)")


def _cmd_event_update(args: argparse.Namespace) -> int:
    from webinar.storage.db import transaction
    from webinar.ticketing.records import note_event_change

    changes: dict[str, Any] = {
        field: getattr(args, flag)
        for flag, field in _UPDATE_FIELDS.items()
        if getattr(args, flag) is not None
    }
    if args.no_start:
        changes["starts_at"] = None
    if args.no_language:
        changes["language"] = None
    if "thank_you_url" in changes and not str(changes["thank_you_url"]).strip():
        changes["thank_you_url"] = None
    if not changes:
        raise UsageError("nothing to change: give at least one setting (see --help)")
    config = _config(args)
    if "external_url" in changes:
        changes["external_url"] = _external_url(config, changes["external_url"])
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        db = store.connection
        with transaction(db, immediate=True):  # read, check and write under the write lock
            before = _find_event(store, args.event)
            try:
                settings = dataclasses.replace(_settings_of(before), **changes).validated()
            except (ValueError, TypeError) as exc:
                raise UsageError(str(exc)) from None
            _check_access(store, settings, before.event_id)
            after = store.update_event(before.event_id, settings)
            note_event_change(db, before, after, datetime.now(UTC))
        details = event_details_json(config, store, after)
    if args.json:
        print(json.dumps(details, ensure_ascii=False))
    else:
        print("Updated event:")
        _print_details(details)
    return EXIT_OK


def _cmd_event_delete(args: argparse.Namespace) -> int:
    from webinar.http.event_ops import EventInUse, delete_event, remove_event_files

    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        found = _find_event(store, args.event)
        if not args.yes:
            details = event_details_json(config, store, found)
            counts = cast(dict[str, int], details["counts"])
            raise UsageError(
                f"deleting event {details['event_id']} ({details['title']!r}) also deletes its"
                f" {counts['registrations']} registrations, {counts['invitees']} invitees,"
                f" {counts['polls']} polls, its chat, questions and attendance, and"
                f" {counts['recordings']} recordings ({_size(counts['recording_bytes'])});"
                " this cannot be undone: add --yes to delete it"
            )
        try:
            deleted = delete_event(store, found.event_id)
        except LookupError:
            raise UsageError(f"no event {args.event!r} (deleted meanwhile?)") from None
        except EventInUse as busy:
            in_room = busy.people
            raise UsageError(
                f"event {busy.event.display_id} is live: {in_room} "
                f"{'person is' if in_room == 1 else 'people are'} in its room. End it for"
                " everyone first (the host's 'End for all'), then delete it. If the server"
                " stopped without closing the room, start it again once: it closes the"
                " sessions a stop cut short"
            ) from None
    # The rows are gone (committed): now their files. A file left behind by a failure here is
    # unreachable and harmless; a row without its file would not be.
    remove_event_files(config.shared_dir, deleted)
    event = deleted.event
    recordings = len(deleted.recording_ids)
    size = deleted.recording_bytes
    if args.json:
        body = {
            "deleted": event.display_id,
            "title": event.title,
            "recordings": recordings,
            "recording_bytes": size,
        }
        print(json.dumps(body, ensure_ascii=False))
    else:
        print(
            f"Deleted event {event.display_id} ({event.title}) with everything it held,"
            f" {recordings} recordings ({_size(size)}) included."
        )
    return EXIT_OK


def list_recordings_sync(store: SyncStore, event_id: str | None = None) -> list[RecordingInfo]:
    from webinar.recordings.library import list_recordings

    return list_recordings(store.connection, event_id=event_id)


def _cmd_event_duplicate(args: argparse.Namespace) -> int:
    from webinar.http.event_ops import duplicate_event

    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        source = _find_event(store, args.event)
        changes: dict[str, Any] = {}
        if args.title is not None:
            changes["title"] = args.title
        if args.start is not None:
            changes["starts_at"] = args.start
        if args.no_start:
            changes["starts_at"] = None
        try:
            settings = dataclasses.replace(_settings_of(source), **changes).validated()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        _check_access(store, settings, source.event_id)
        copy, copied = duplicate_event(store, source, settings, config.shared_dir / "images")
    if args.json:
        body: dict[str, object] = {
            **event_json(config, copy),
            "copied_from": source.display_id,
            "copied": {
                "polls": copied.polls,
                "images": copied.images,
                "calls_to_action": copied.calls_to_action,
                "interaction_settings": copied.interaction_settings,
                "auto_record": copied.auto_record,
                "co_organisers": copied.co_organisers,
            },
        }
        print(json.dumps(body, ensure_ascii=False))
    else:
        print(f"Created event (a copy of {source.display_id}):")
        _print_event(config, copy)
        print(
            f"Copied: the settings, the access settings and registration form, {copied.polls}"
            f" polls and tests ({copied.images} images), {copied.calls_to_action}"
            f" calls-to-action, chat and Q&A settings, automatic recording"
            f" ({_on(copied.auto_record)}), {copied.co_organisers} co-organisers. Not copied:"
            " registrations, invitees, presenters, chat, questions, answers, attendance,"
            " recordings."
        )
        print("The copy has its own ID and new presenter and host links.")
    return EXIT_OK


def recording_json(info: RecordingInfo, titles: dict[str, str]) -> dict[str, object]:
    return {**info.as_json(), "event_title": titles.get(info.event_id)}


def _cmd_recording_list(args: argparse.Namespace) -> int:
    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        event_id = None
        if args.event is not None:
            event_id = _find_event(store, args.event).event_id
        recordings = list_recordings_sync(store, event_id)
        titles = {e.event_id: e.title for e in store.list_events()}
    if args.json:
        print(json.dumps([recording_json(r, titles) for r in recordings], ensure_ascii=False))
        return EXIT_OK
    if not recordings:
        print("No recordings." if args.event is None else "No recordings of this event.")
        return EXIT_OK
    for info in recordings:
        title = titles.get(info.event_id, "")
        print(
            f"{info.recording_id}  {format_event_id(info.event_id)}  {title}\n"
            f"  {iso_time(info.started_at, zulu=True)}, {info.duration:.0f} s,"
            f" {_size(info.size)}, {len(info.files)} files:"
            f" {', '.join(str(f['name']) for f in info.files)}"
        )
    return EXIT_OK


def _cmd_recording_download(args: argparse.Namespace) -> int:
    import shutil

    from webinar.recordings.library import file_path, get_recording

    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        info = get_recording(store.connection, args.recording_id)
    if info is None:
        raise UsageError(f"no recording {args.recording_id!r} (`webinar recording list`)")
    root = config.shared_dir / "recordings"
    names = [str(f["name"]) for f in info.files]
    if args.file is not None:
        if args.file not in names:
            raise UsageError(
                f"--file: recording {info.recording_id} has no file {args.file!r};"
                f" it has {', '.join(names)}"
            )
        names = [args.file]
    output: Path = args.output if args.output is not None else Path(info.recording_id)
    sources: list[tuple[Path, Path]] = []
    for name in names:
        source = file_path(root, info, name)
        assert source is not None  # the name is in the manifest
        if not source.is_file():
            raise UsageError(f"{source} is missing: the recording's file is not in shared_dir")
        target = output / name
        if target.exists() and not args.force:
            raise UsageError(f"{target} exists already (--force replaces it)")
        sources.append((source, target))
    output.mkdir(parents=True, exist_ok=True)
    for source, target in sources:
        part = target.with_name(f".{target.name}.part")
        shutil.copyfile(source, part)
        part.replace(target)
        print(target)
    return EXIT_OK


def _cmd_healthcheck(args: argparse.Namespace) -> int:
    """GET /healthz of the server this configuration describes, on its own machine."""
    import ssl
    import urllib.error
    import urllib.request

    config = _config(args)
    host = config.http.host
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.tls.enabled else "http"
    url = f"{scheme}://{host}:{config.http.port}/healthz"
    context = None
    if scheme == "https":
        # The certificate names the public host, not this address: only liveness is checked.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=args.timeout, context=context) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"webinar: {url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return EXIT_FAILURE
    if status != 200:
        print(f"webinar: {url} answered {status}", file=sys.stderr)
        return EXIT_FAILURE
    if not args.quiet:
        print(f"{url}: OK")
    return EXIT_OK


def _read_password(args: argparse.Namespace) -> str:
    """From stdin with --password-stdin (scripts), else asked twice on the terminal."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise UsageError("the two passwords differ")
    try:
        check_password_rules(password)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return password


def _change_users(config: Config, change: Callable[[SyncStore], T]) -> T:
    """One change to the accounts; the store's refusal (ValueError) is a usage error."""
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        try:
            return change(store)
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def _cmd_user_add(args: argparse.Namespace) -> int:
    config = _config(args)
    password = _read_password(args)
    role = "admin" if args.admin else "organiser"
    user = _change_users(
        config,
        lambda store: store.create_user(
            args.username, hash_password(password), role, email=args.email
        ),
    )
    print(f"Added {user.role} {user.username}" + (f" <{user.email}>." if user.email else "."))
    return EXIT_OK


def _cmd_user_email(args: argparse.Namespace) -> int:
    from webinar.storage import accounts

    config = _config(args)

    def change(store: SyncStore) -> str | None:
        user = store.get_user_by_name(args.username)
        if user is None:
            raise ValueError(f"no user named {args.username!r}")
        return accounts.set_email(store.connection, user.user_id, args.address or None)

    address = _change_users(config, change)
    if address is None:
        print(f"{args.username} has no e-mail address now (no password links by e-mail).")
    else:
        print(f"The e-mail address of {args.username} is {address}.")
    return EXIT_OK


def _cmd_user_list(args: argparse.Namespace) -> int:
    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        users = store.list_users()
    if args.json:
        print(
            json.dumps([{"username": u.username, "role": u.role, "email": u.email} for u in users])
        )
    else:
        for user in users:
            print(f"{user.username}\t{user.role}\t{user.email or '-'}")
    return EXIT_OK


def _cmd_user_passwd(args: argparse.Namespace) -> int:
    config = _config(args)
    password = _read_password(args)
    _change_users(
        config, lambda store: store.set_password_hash(args.username, hash_password(password))
    )
    print(f"Changed the password of {args.username}; their sessions were signed out.")
    return EXIT_OK


def _cmd_user_remove(args: argparse.Namespace) -> int:
    config = _config(args)
    _change_users(config, lambda store: store.delete_user(args.username))
    print(f"Removed {args.username}; their events remain (admins see them).")
    return EXIT_OK


def _cmd_user_token(args: argparse.Namespace) -> int:
    from webinar.ticketing.records import add_api_token, revoke_api_tokens

    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        user = store.get_user_by_name(args.username)
        if user is None:
            raise UsageError(f"no user named {args.username!r}")
        if args.revoke_all:
            count = revoke_api_tokens(store.connection, user.user_id)
            print(f"Revoked {count} API token{'s' if count != 1 else ''} of {user.username}.")
            return EXIT_OK
        token = add_api_token(store.connection, user.user_id, args.label)
    print(token)
    print(
        f"An API token for {user.username} ({user.role}); it is shown only now. Send it as"
        " 'Authorization: Bearer <token>' to /api/v1 (docs/api.md).",
        file=sys.stderr,
    )
    return EXIT_OK


def _cmd_token_create(args: argparse.Namespace) -> int:
    from webinar.storage import api_tokens

    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        user = store.get_user_by_name(args.user)
        if user is None:
            raise UsageError(f"--user: no account named {args.user!r}")
        user_id = user.user_id
        try:
            token, secret = api_tokens.create(
                store.connection, user_id, args.name, api_tokens.Scope(args.scope)
            )
        except api_tokens.TokenError as exc:
            raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"token_id": token.token_id, "scope": token.scope, "secret": secret}))
    else:
        print(secret)
        print(
            f"{token.token_id}: a {token.scope} token of {token.username} ({token.role}),"
            f" {token.name!r}. The secret above is shown only now; send it as"
            " 'Authorization: Bearer <secret>' to /api/v1 (docs/api.md). Revoke it with"
            f" `webinar token revoke {token.token_id}`.",
            file=sys.stderr,
        )
    return EXIT_OK


def _cmd_token_revoke(args: argparse.Namespace) -> int:
    from webinar.storage import api_tokens

    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        token = api_tokens.get(store.connection, args.token_id)
        if token is None or not api_tokens.revoke(store.connection, args.token_id):
            raise UsageError(f"no token with the ID {args.token_id!r} (`webinar token list`)")
    print(f"Revoked {token.token_id} ({token.scope} token of {token.username}, {token.name!r}).")
    return EXIT_OK


def _cmd_token_list(args: argparse.Namespace) -> int:
    from webinar.storage import api_tokens

    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        user_id = None
        if args.user is not None:
            user = store.get_user_by_name(args.user)
            if user is None:
                raise UsageError(f"--user: no account named {args.user!r}")
            user_id = user.user_id
        tokens = api_tokens.list_tokens(store.connection, user_id)
    rows = [
        {
            "token_id": t.token_id,
            "user": t.username,
            "scope": t.scope.value,
            "name": t.name,
            "created_at": iso_time(t.created_at, zulu=True),
            "last_used_at": iso_time(t.last_used_at, zulu=True),
        }
        for t in tokens
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    elif not rows:
        print("No API tokens. Make one with: webinar token create --user NAME --scope read")
    else:
        for row in rows:
            used = row["last_used_at"] or "never used"
            print(f"{row['token_id']}\t{row['user']}\t{row['scope']}\t{row['name']}\t{used}")
    return EXIT_OK


def _cmd_config_check(args: argparse.Namespace) -> int:
    config = _config(args)  # raises ConfigError naming the key and the problem
    from webinar.tls import check_tls

    cert = check_tls(config.tls)  # raises ConfigError if the pair does not load
    path = _config_path(args)
    source = "built-in defaults" if path is None else str(path)
    if path is not None and args.config is None:
        source += f" (from {CONFIG_ENV})"
    print(f"Configuration OK ({source} plus WEBINAR_* environment variables).")
    print(f"  listens on {config.http.host}:{config.http.port}, links use {config.base_url}")
    print(f"  data in {config.data_dir}")
    ice = config.ice
    ports = (
        f"UDP {ice.udp_port_min}-{ice.udp_port_max}" if ice.udp_port_min else "any free UDP port"
    )
    print(f"  media on {ports}; announced IP: {ice.announced_ip or 'none'}")
    if config.cluster.is_node:
        print(
            f"  a node of a cluster: pipes at {config.cluster.node_address}, browsers reach it"
            f" at {config.node_url}, takes {config.node_capacity} attendees"
        )
    workers = config.server.worker_count
    if workers == 1 and not config.cluster.is_node:
        print("  one process (no Redis needed)")
    else:
        redis = config.cluster.redis_url or "a private redis-server in the data dir"
        print(f"  {workers} worker processes sharing the port; Redis: {redis}")
    print(f"  ICE servers: {len(ice.servers) or 'none (no third party is contacted)'}")
    if cert is None:
        print("  TLS: off (serve behind a TLS reverse proxy, see docs/deployment.md)")
    else:
        print(f"  TLS: {cert.subject}, valid until {cert.not_after:%Y-%m-%d %H:%M} UTC")
    proxies = ", ".join(config.http.trusted_proxies) or "none"
    print(f"  trusted proxies: {proxies}; drain on SIGTERM: {config.lifecycle.drain_seconds:g} s")
    return EXIT_OK


def _cmd_db_migrate(args: argparse.Namespace) -> int:
    config = _config(args)
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        print(f"{store.where}: schema version {store.schema_version()} (up to date).")
    return EXIT_OK


def _cmd_db_copy(args: argparse.Namespace) -> int:
    from webinar.storage.copy import Copied, copy_to_postgresql
    from webinar.storage.db import check_database_url, redact

    config = _config(args)
    try:
        url = check_database_url(args.to)
    except ValueError as exc:
        raise UsageError(f"--to {exc}") from None
    source = config.data_dir / DB_FILENAME
    if not source.is_file():
        raise UsageError(f"no SQLite store to copy: {source} does not exist")

    def said(done: Copied) -> None:
        print(f"  {done.table}: {done.rows} rows")

    print(f"Copying {source} to {redact(url)}:")
    copied = copy_to_postgresql(config.data_dir, url, replace=args.replace, progress=said)
    total = sum(c.rows for c in copied)
    print(
        f"Copied {total} rows in {len(copied)} tables. Set [cluster] database_url to this URL"
        " on every node, with the same secrets key (docs/deployment.md)."
    )
    return EXIT_OK


def _cmd_backup(args: argparse.Namespace) -> int:
    from webinar.storage.backup import backup_database

    config = _config(args)
    if config.cluster.database_url is not None:
        raise UsageError(
            "the store is PostgreSQL (cluster.database_url): back it up with pg_dump"
            " (docs/deployment.md); `webinar backup` copies the SQLite file"
        )
    result = backup_database(config.data_dir, args.output)
    print(
        f"Backed up {config.data_dir / 'webinar.sqlite3'} to {result.path}"
        f" ({result.size_bytes} bytes, schema version {result.schema_version})."
    )
    return EXIT_OK


def _cmd_secrets_new(_args: argparse.Namespace) -> int:
    from webinar.storage import sealing

    print(sealing.new_key())
    return EXIT_OK


def _cmd_secrets_rotate(args: argparse.Namespace) -> int:
    from webinar.storage import sealing

    config = _config(args)
    # Opening checks that every value opens with the old key.
    with Store.open_sync(config.data_dir, config.cluster.database_url) as store:
        old = sealing.load_sealer(config.data_dir)
        fresh = sealing.new_key()
        from_env = bool(os.environ.get(sealing.KEY_ENV, "").strip())
        path = sealing.key_path(config.data_dir)
        if not from_env:
            # The new key first, the old ones still there: a rotation that stops half-way
            # (the transaction rolls back) leaves a key file that opens everything.
            old_keys = [line for line in path.read_text().splitlines() if line.strip()]
            sealing.write_key_file(path, [fresh, *old_keys])
        count = sealing.rotate(store.connection, old, sealing.Sealer.from_texts([fresh]))
    if from_env:
        print(f"Re-sealed {count} secrets with a new key. Before the server starts again, set")
        print(f"{sealing.KEY_ENV}={fresh}")
        print("(the old key no longer opens them; keep the new one with your backups).")
    else:
        sealing.write_key_file(path, [fresh])
        print(f"Re-sealed {count} secrets with a new key in {path}.")
        print("Restart the server; back the new key file up (older backups need the old key).")
    return EXIT_OK


def _cmd_config_example(_args: argparse.Namespace) -> int:
    print(example_toml(), end="")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"TOML configuration file (default: ${CONFIG_ENV} if set; see docs/configuration.md)",
    )
    common.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="folder of the database (overrides data_dir; default ./data)",
    )

    parser = argparse.ArgumentParser(
        prog="webinar", description="Self-hosted webinar server with its own WebRTC SFU."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the server",
        description="Run the server. With an empty database, first create a demo event "
        "and print its links.",
    )
    serve.add_argument("--host", help="address to listen on (overrides http.host)")
    serve.add_argument("--port", type=int, help="TCP port to listen on (overrides http.port)")
    serve.add_argument(
        "--workers",
        type=_workers_arg,
        metavar="N",
        help="worker processes: a number or 'auto' (one per CPU core); more than 1 runs a"
        " supervisor and needs Redis (overrides server.workers; default 1)",
    )
    serve.set_defaults(handler=_cmd_serve)

    event = commands.add_parser(
        "event", help="create, list, show, update, delete and duplicate events"
    )
    event_commands = event.add_subparsers(dest="event_command", required=True, metavar="ACTION")

    create = event_commands.add_parser(
        "create",
        parents=[common],
        help="create an event and print its links",
        description="Create an event and print its ID, attendee link and presenter link.",
    )
    create.add_argument("--title", required=True, help="title, 1 to 200 characters")
    create.add_argument(
        "--start",
        type=parse_start,
        metavar="ISO-8601",
        help="start time with a UTC offset, e.g. 2030-01-31T18:00Z or 2030-01-31T19:00+01:00",
    )
    create.add_argument(
        "--external-url",
        metavar="URL",
        help="an external player shown to admitted attendees in the room: a YouTube, Vimeo"
        " or Zoom link, or a player on a host in content.external_providers",
    )
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(handler=_cmd_event_create)

    list_ = event_commands.add_parser("list", parents=[common], help="list events with their links")
    list_.add_argument("--json", action="store_true", help="print one JSON array")
    list_.set_defaults(handler=_cmd_event_list)

    show = event_commands.add_parser(
        "show",
        parents=[common],
        help="print an event's settings, links and what it holds",
        description="Print one event: its settings, its attendee, presenter and host links, "
        "its access settings and how many registrations, invitees, polls, calls-to-action, "
        "recordings and people in the room it has.",
    )
    show.add_argument("event", metavar="EVENT", help="the event's ID, e.g. 123-456-789")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=_cmd_event_show)

    update = event_commands.add_parser(
        "update",
        parents=[common],
        help="change an event's settings",
        description="Change the settings given; the others stay. The ID and the links stay "
        "too. Pending reminders follow a new start, and when the time or the title changes "
        "after people were told, the dashboard offers to resend them the news. Passwords, "
        "prices, places and registration questions are set in the dashboard or the API.",
    )
    update.add_argument("event", metavar="EVENT", help="the event's ID, e.g. 123-456-789")
    update.add_argument("--title", help="title, 1 to 200 characters")
    start = update.add_mutually_exclusive_group()
    start.add_argument(
        "--start",
        type=parse_start,
        metavar="ISO-8601",
        help="start time with a UTC offset, e.g. 2030-01-31T18:00Z",
    )
    start.add_argument(
        "--no-start", action="store_true", help="no start time: the room is open at any time"
    )
    update.add_argument("--timezone", metavar="ZONE", help="IANA time zone, e.g. Europe/Prague")
    update.add_argument("--duration", type=int, metavar="MINUTES", help="1 to 1440 minutes")
    update.add_argument(
        "--join-window",
        type=int,
        metavar="MINUTES",
        help="how long before the start attendees may enter the lobby (0 to 1440)",
    )
    update.add_argument("--access-type", choices=ACCESS_TYPES, help="who may enter")
    update.add_argument("--camera-limit", type=int, metavar="N", help="cameras on stage, 1 to 7")
    update.add_argument(
        "--hls",
        choices=("off", "all", "overflow"),
        help="who watches over HLS instead of WebRTC: nobody, every attendee, or the overflow",
    )
    update.add_argument(
        "--hls-overflow-after",
        type=int,
        metavar="N",
        help="with --hls overflow: attendees over WebRTC before the overflow (0 to 100000)",
    )
    language = update.add_mutually_exclusive_group()
    language.add_argument(
        "--language", choices=LANGUAGES, help="the event's pages and e-mails in this language"
    )
    language.add_argument(
        "--no-language", action="store_true", help="each attendee sees their own language"
    )
    update.add_argument("--agenda", metavar="TEXT", help="the agenda shown in the lobby")
    update.add_argument("--lobby-message", metavar="TEXT", help="the message shown in the lobby")
    update.add_argument(
        "--thank-you-url",
        metavar="URL",
        help="where attendees go when the event ends ('' for the server's own page)",
    )
    update.add_argument(
        "--external-url",
        metavar="URL",
        help="the external player shown to admitted attendees in the room: a YouTube, Vimeo"
        " or Zoom link, or a player on a host in content.external_providers ('' for none)",
    )
    update.add_argument("--json", action="store_true", help="print one JSON object")
    update.set_defaults(handler=_cmd_event_update)

    delete = event_commands.add_parser(
        "delete",
        parents=[common],
        help="delete an event with everything it holds (needs --yes)",
        description="Delete an event and everything that belongs to it: registrations, "
        "invitees, chat, questions, polls, attendance, webhook deliveries about it, and its "
        "recordings and poll images on disk. Without --yes it only says what would go. A live "
        "event (people in its room) is refused.",
    )
    delete.add_argument("event", metavar="EVENT", help="the event's ID, e.g. 123-456-789")
    delete.add_argument("--yes", action="store_true", help="yes, delete it: it cannot be undone")
    delete.add_argument("--json", action="store_true", help="print one JSON object")
    delete.set_defaults(handler=_cmd_event_delete)

    duplicate = event_commands.add_parser(
        "duplicate",
        parents=[common],
        help="create a new event with another one's settings",
        description="Create a new event (a new ID, new presenter and host links) with the "
        "settings of EVENT: its schedule, texts, access settings (passwords, price, places, "
        "registration questions), polls and tests as drafts with their images, prepared "
        "calls-to-action, chat and Q&A settings and automatic recording. Registrations, "
        "invitees, chat, answers, attendance and recordings are not copied.",
    )
    duplicate.add_argument("event", metavar="EVENT", help="the event to copy, e.g. 123-456-789")
    duplicate.add_argument("--title", help="the copy's title (default: the same)")
    dup_start = duplicate.add_mutually_exclusive_group()
    dup_start.add_argument(
        "--start",
        type=parse_start,
        metavar="ISO-8601",
        help="the copy's start with a UTC offset (default: the same)",
    )
    dup_start.add_argument("--no-start", action="store_true", help="the copy has no start time")
    duplicate.add_argument("--json", action="store_true", help="print one JSON object")
    duplicate.set_defaults(handler=_cmd_event_duplicate)

    recording = commands.add_parser("recording", help="list and download recordings")
    recording_commands = recording.add_subparsers(
        dest="recording_command", required=True, metavar="ACTION"
    )
    rec_list = recording_commands.add_parser(
        "list", parents=[common], help="list recordings, newest first"
    )
    rec_list.add_argument("--event", metavar="EVENT", help="only this event's recordings")
    rec_list.add_argument("--json", action="store_true", help="print one JSON array")
    rec_list.set_defaults(handler=_cmd_recording_list)
    rec_download = recording_commands.add_parser(
        "download",
        parents=[common],
        help="copy a recording's WebM files out of the data folder",
        description="Copy the files of a recording (one WebM per camera, screen or sound) "
        "into DIR (default: ./RECORDING_ID/), printing each path. Run it where the server's "
        "data folder (or, on a cluster, cluster.shared_dir) is mounted.",
    )
    rec_download.add_argument("recording_id", metavar="RECORDING_ID", help="e.g. rec_0123456789ab")
    rec_download.add_argument("--output", "-o", type=Path, metavar="DIR", help="target folder")
    rec_download.add_argument("--file", metavar="NAME", help="only this file of the recording")
    rec_download.add_argument("--force", action="store_true", help="replace files in DIR")
    rec_download.set_defaults(handler=_cmd_recording_download)

    health = commands.add_parser(
        "healthcheck",
        parents=[common],
        help="ask the running server's /healthz (exit 0 if it answers 200)",
        description="GET /healthz of the server this configuration describes (http.host, "
        "http.port, TLS), on this machine: the container image's HEALTHCHECK.",
    )
    health.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS")
    health.add_argument("--quiet", "-q", action="store_true", help="print nothing when healthy")
    health.set_defaults(handler=_cmd_healthcheck)

    config = commands.add_parser("config", help="check or print the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser(
        "check", parents=[common], help="validate the configuration file and environment"
    )
    check.set_defaults(handler=_cmd_config_check)
    example = config_commands.add_parser(
        "example", help="print a commented configuration file with every key and its default"
    )
    example.set_defaults(handler=_cmd_config_example)

    backup = commands.add_parser(
        "backup",
        parents=[common],
        help="copy the database while the server runs (online SQLite backup)",
        description="Write a consistent copy of <data_dir>/webinar.sqlite3 to FILE; safe while "
        "the server runs. Restore: stop the server, replace webinar.sqlite3 with the copy "
        "(and delete webinar.sqlite3-wal and -shm), start it (docs/deployment.md).",
    )
    backup.add_argument("--output", "-o", type=Path, required=True, metavar="FILE")
    backup.set_defaults(handler=_cmd_backup)

    db = commands.add_parser("db", help="the database: migrate it, move it to PostgreSQL")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    migrate = db_commands.add_parser(
        "migrate",
        parents=[common],
        help="apply pending migrations to the configured database and print its version",
        description="Bring the configured store (PostgreSQL with cluster.database_url, else "
        "<data_dir>/webinar.sqlite3) to this version's schema. The server does it at start "
        "too; on a cluster, run it once before starting the nodes of a new version.",
    )
    migrate.set_defaults(handler=_cmd_db_migrate)
    copy = db_commands.add_parser(
        "copy",
        parents=[common],
        help="copy this install's SQLite store into an empty PostgreSQL database",
        description="Copy every table of <data_dir>/webinar.sqlite3 into the PostgreSQL "
        "database at URL (migrated to the same version first), keeping every ID; prints the "
        "rows per table. Stop the server first. The nodes using the copy need this install's "
        "secrets key (WEBINAR_SECRETS_KEY or <data_dir>/secrets.key).",
    )
    copy.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host/db")
    copy.add_argument(
        "--replace",
        action="store_true",
        help="delete everything the target database holds first (else it must be empty)",
    )
    copy.set_defaults(handler=_cmd_db_copy)

    secrets_cmd = commands.add_parser(
        "secrets", help="the key that seals presenter keys, invitation tokens and codes"
    )
    secrets_commands = secrets_cmd.add_subparsers(
        dest="secrets_command", required=True, metavar="ACTION"
    )
    rotate = secrets_commands.add_parser(
        "rotate",
        parents=[common],
        help="re-seal every stored secret with a new key, in one transaction",
        description="Make a new secrets key and re-encrypt every presenter and host key, "
        "invitation token and reservation code with it, in one transaction. With the key file "
        "(<data_dir>/secrets.key) the file is replaced; with WEBINAR_SECRETS_KEY the new key is "
        "printed for you to set. Stop the server first, start it after (docs/deployment.md).",
    )
    rotate.set_defaults(handler=_cmd_secrets_rotate)
    new = secrets_commands.add_parser(
        "new",
        help="print a fresh secrets key (for WEBINAR_SECRETS_KEY on every node of a cluster)",
        description="Print a new random secrets key. A cluster's nodes share one key: set it as "
        "WEBINAR_SECRETS_KEY on every node before the first one starts (a node with a "
        "PostgreSQL database never makes one itself).",
    )
    new.set_defaults(handler=_cmd_secrets_new)

    user = commands.add_parser("user", help="manage organiser accounts for the dashboard")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_commands.add_parser("add", parents=[common], help="add an organiser (or admin)")
    add.add_argument("username")
    add.add_argument("--admin", action="store_true", help="an admin sees every event")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument(
        "--email", metavar="ADDRESS", help="where password links and notices go (unique)"
    )
    add.set_defaults(handler=_cmd_user_add)
    email = user_commands.add_parser(
        "email",
        parents=[common],
        help="set (or, with '', clear) an account's e-mail address",
        description="The address password links (the sign-in page's 'Forgot your password?')"
        " and notices go to; one account per address. The dashboard's People page and each"
        " account's own page set it too.",
    )
    email.add_argument("username")
    email.add_argument("address", help="the e-mail address, or '' for none")
    email.set_defaults(handler=_cmd_user_email)
    users = user_commands.add_parser("list", parents=[common], help="list accounts")
    users.add_argument("--json", action="store_true")
    users.set_defaults(handler=_cmd_user_list)
    passwd = user_commands.add_parser("passwd", parents=[common], help="change a password")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(handler=_cmd_user_passwd)
    remove = user_commands.add_parser("remove", parents=[common], help="remove an account")
    remove.add_argument("username")
    remove.set_defaults(handler=_cmd_user_remove)
    token = user_commands.add_parser(
        "token", parents=[common], help="make an API token for the JSON admin API"
    )
    token.add_argument("username")
    token.add_argument("--label", default="api", help="what the token is for (kept with it)")
    token.add_argument(
        "--revoke-all", action="store_true", help="revoke every API token of this user instead"
    )
    token.set_defaults(handler=_cmd_user_token)
    _token_commands(commands, common)
    return parser


def _token_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``webinar token create|revoke|list``: API tokens with a scope (docs/api.md)."""
    token = commands.add_parser("token", help="make, list and revoke API tokens")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        parents=[common],
        help="make an API token and print its secret (shown only this once)",
        description="Make a bearer token for the JSON API (/api/v1). Its scope says what it "
        "may do: read (look), write (look and change), admin (also manage tokens; admin "
        "accounts only). The secret goes to standard output, the token's ID and what it is "
        "to standard error.",
    )
    create.add_argument("--user", required=True, metavar="NAME", help="the account it acts for")
    create.add_argument("--scope", required=True, choices=("read", "write", "admin"))
    create.add_argument("--name", default="api", help="what the token is for (default: api)")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(handler=_cmd_token_create)
    revoke = actions.add_parser(
        "revoke", parents=[common], help="revoke an API token by its ID (tok_…); at once"
    )
    revoke.add_argument("token_id", metavar="ID")
    revoke.set_defaults(handler=_cmd_token_revoke)
    listing = actions.add_parser(
        "list", parents=[common], help="list API tokens (never their secrets)"
    )
    listing.add_argument("--user", metavar="NAME", help="only this account's tokens")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.set_defaults(handler=_cmd_token_list)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return EXIT_OK
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on bad usage (code 2) and after --help (0)
        return _exit_code(exc)
    handler = cast(Callable[[argparse.Namespace], int], args.handler)
    try:
        return handler(args)
    except (UsageError, ConfigError) as exc:
        print(f"webinar: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreError, sqlite3.Error, OSError) as exc:
        print(f"webinar: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
