"""Webhooks: signed HTTP callbacks to endpoints organisers add, with retries and a delivery log.

Other modules report what happened with :meth:`Webhooks.emit` (never blocks, never raises on
delivery trouble); live rooms report through :meth:`Webhooks.room_event` and
:meth:`Webhooks.room_closed`. Each emitted event becomes one *delivery* per endpoint that wants
it: the endpoints of the webinar event's owner and those of every admin account. Deliveries are
stored in SQLite before the first attempt, so a restart does not lose them, and retried with
exponential back-off (``webhooks.retry_base_seconds`` doubling, at most an hour apart) until
``webhooks.max_attempts``. Every attempt is logged (time, HTTP status or error, duration).

Each request is a ``POST`` of a JSON body::

    {"id": "whd_…", "event": "participant.joined", "created_at": "2030-01-31T18:00:05.123Z",
     "event_id": "123-456-789", "data": {...}}

with the headers ``Webinar-Webhook-Id`` (the delivery ID, the same on every retry),
``Webinar-Webhook-Timestamp`` (Unix seconds of this attempt) and ``Webinar-Webhook-Signature``
``v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``. See docs/api.md for verifying it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from webinar import __version__
from webinar.config import WebhooksConfig
from webinar.ids import format_event_id
from webinar.rooms import state as rs
from webinar.rooms.state import Phase
from webinar.storage.store import SessionRecord, Store, User
from webinar.tasks import stop_task

logger = logging.getLogger(__name__)


class WebhookEvent(enum.StrEnum):
    """Every event name a webhook can carry (docs/api.md lists their ``data``)."""

    EVENT_STARTED = "event.started"
    EVENT_ENDED = "event.ended"
    PARTICIPANT_JOINED = "participant.joined"
    PARTICIPANT_LEFT = "participant.left"
    RECORDING_READY = "recording.ready"
    REGISTRATION_CREATED = "registration.created"
    REGISTRATION_UPDATED = "registration.updated"
    REGISTRATION_CANCELLED = "registration.cancelled"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"
    #: Sent by the dashboard's "Send test" button to one endpoint only.
    TEST = "webhook.test"


SIGNATURE_HEADER = "Webinar-Webhook-Signature"
TIMESTAMP_HEADER = "Webinar-Webhook-Timestamp"
ID_HEADER = "Webinar-Webhook-Id"
EVENT_HEADER = "Webinar-Webhook-Event"

#: Endpoints one account may have.
MAX_ENDPOINTS_PER_OWNER = 10
#: Largest JSON body of one webhook.
MAX_BODY_BYTES = 64 * 1024
#: Events waiting to be written to the log; beyond that new ones are dropped (and logged).
MAX_QUEUED = 10_000
#: Deliveries attempted at once.
BATCH = 16
#: Longest wait between retries, whatever the back-off says.
MAX_RETRY_DELAY = 3600.0
#: How often finished deliveries older than the retention are deleted.
PRUNE_INTERVAL = 3600.0
#: Receivers should refuse signatures older than this (what :func:`verify` does).
SIGNATURE_TOLERANCE = 300
#: How much of an error message the log keeps.
MAX_ERROR_CHARS = 300


# ----------------------------------------------------------------------------- signing


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Webinar-Webhook-Signature`` value for one attempt."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    signature: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - ts) > tolerance:
        return False
    expected = sign(secret, ts, body)
    return any(hmac.compare_digest(expected, part.strip()) for part in signature.split(","))


def retry_delay(attempts: int, base: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: base, 2·base, 4·base, …"""
    return float(min(base * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# ----------------------------------------------------------------------------- endpoints


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_endpoint_url(url: str, *, allow_private: bool) -> str:
    """A webhook URL: absolute http(s), no credentials; ValueError says what is wrong."""
    url = url.strip()
    if len(url) > 2000:
        raise ValueError("the URL must have at most 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("the URL must start with https:// (or http://) and name a host")
    if parts.username or parts.password:
        raise ValueError("put no user name or password in the URL; the signature authenticates")
    if parts.fragment:
        raise ValueError("the URL must not have a #fragment")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("the URL has an invalid port") from None
    if not allow_private:
        host = parts.hostname
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise ValueError("the URL must point to a public host")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and not _is_public(address):
            raise ValueError("the URL must point to a public address, not a private one")
    return url


class PublicResolver(AbstractResolver):
    """Resolves names to public addresses only: a webhook cannot reach into the server's LAN."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if _is_public(ipaddress.ip_address(r["host"]))]
        if not public:
            raise OSError(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._inner.close()


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: int
    owner_id: int
    url: str
    secret: str
    events: frozenset[str]  # empty means every event
    created_at: float

    def wants(self, event: str) -> bool:
        return event != WebhookEvent.TEST and (not self.events or event in self.events)


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    attempt: int
    at: float
    http_status: int | None
    error: str | None
    duration_ms: int


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: str
    endpoint_id: int
    url: str
    event: str
    event_id: str | None
    body: str
    status: str  # "pending" | "delivered" | "failed"
    attempts: int
    next_attempt_at: float | None
    created_at: float
    finished_at: float | None
    history: tuple[Attempt, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "endpoint_id": self.endpoint_id,
            "url": self.url,
            "event": self.event,
            "event_id": format_event_id(self.event_id) if self.event_id else None,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at),
            "created_at": _iso(self.created_at),
            "finished_at": _iso(self.finished_at),
            "payload": json.loads(self.body),
            "history": [
                {
                    "attempt": a.attempt,
                    "at": _iso(a.at),
                    "http_status": a.http_status,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
                for a in self.history
            ],
        }


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    text = datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


# ----------------------------------------------------------------------------- SQL (store thread)


def _endpoint(row: tuple[Any, ...]) -> Endpoint:
    events = frozenset() if row[4] == "*" else frozenset(e for e in row[4].split(",") if e)
    return Endpoint(row[0], row[1], row[2], row[3], events, row[5])


_ENDPOINT_COLUMNS = "endpoint_id, owner_id, url, secret, events, created_at"
_DELIVERY_COLUMNS = (
    "d.delivery_id, d.endpoint_id, e.url, d.event, d.event_id, d.body, d.status, d.attempts,"
    " d.next_attempt_at, d.created_at, d.finished_at"
)


def sql_add_endpoint(
    db: sqlite3.Connection, owner_id: int, url: str, events: frozenset[str], now: float
) -> Endpoint:
    (count,) = db.execute(
        "SELECT count(*) FROM webhook_endpoints WHERE owner_id = ?", (owner_id,)
    ).fetchone()
    if count >= MAX_ENDPOINTS_PER_OWNER:
        raise ValueError(f"an account may have at most {MAX_ENDPOINTS_PER_OWNER} endpoints")
    secret = new_secret()
    text = ",".join(sorted(events)) if events else "*"
    cursor = db.execute(
        "INSERT INTO webhook_endpoints (owner_id, url, secret, events, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (owner_id, url, secret, text, now),
    )
    assert cursor.lastrowid is not None
    return Endpoint(cursor.lastrowid, owner_id, url, secret, events, now)


def sql_endpoints(db: sqlite3.Connection, owner_id: int | None) -> list[Endpoint]:
    """One account's endpoints, or every endpoint with None."""
    if owner_id is None:
        rows = db.execute(f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY endpoint_id")
    else:
        rows = db.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE owner_id = ?"
            " ORDER BY endpoint_id",
            (owner_id,),
        )
    return [_endpoint(row) for row in rows]


def sql_delete_endpoint(db: sqlite3.Connection, owner_id: int, endpoint_id: int) -> bool:
    cursor = db.execute(
        "DELETE FROM webhook_endpoints WHERE endpoint_id = ? AND owner_id = ?",
        (endpoint_id, owner_id),
    )
    return cursor.rowcount > 0


def sql_targets(db: sqlite3.Connection, event_id: str | None) -> list[Endpoint]:
    """Endpoints of the event's owner and of every admin."""
    rows = db.execute(
        f"SELECT {', '.join('w.' + c.strip() for c in _ENDPOINT_COLUMNS.split(','))}"
        " FROM webhook_endpoints w JOIN users u ON u.user_id = w.owner_id"
        " WHERE u.role = 'admin'"
        " OR w.owner_id = (SELECT owner_id FROM events WHERE event_id = ?)"
        " ORDER BY w.endpoint_id",
        (event_id,),
    )
    return [_endpoint(row) for row in rows]


@dataclasses.dataclass(frozen=True, slots=True)
class _Emitted:
    event: WebhookEvent
    event_id: str | None
    data: Mapping[str, Any]
    created_at: float
    only_endpoint: int | None = None


def _body(delivery_id: str, item: _Emitted) -> str:
    return json.dumps(
        {
            "id": delivery_id,
            "event": item.event.value,
            "created_at": _iso(item.created_at),
            "event_id": format_event_id(item.event_id) if item.event_id else None,
            "data": item.data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def sql_record(db: sqlite3.Connection, items: list[_Emitted]) -> int:
    """Turn emitted events into pending deliveries, one per interested endpoint."""
    created = 0
    db.execute("BEGIN")
    try:
        for item in items:
            if item.only_endpoint is not None:
                row = db.execute(
                    f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE endpoint_id = ?",
                    (item.only_endpoint,),
                ).fetchone()
                targets = [_endpoint(row)] if row else []
            else:
                targets = [e for e in sql_targets(db, item.event_id) if e.wants(item.event)]
            for endpoint in targets:
                delivery_id = "whd_" + secrets.token_hex(10)
                db.execute(
                    "INSERT INTO webhook_deliveries (delivery_id, endpoint_id, event, event_id,"
                    " body, status, attempts, next_attempt_at, created_at)"
                    " VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                    (
                        delivery_id,
                        endpoint.endpoint_id,
                        item.event.value,
                        item.event_id,
                        _body(delivery_id, item),
                        item.created_at,
                        item.created_at,
                    ),
                )
                created += 1
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return created


def sql_due(db: sqlite3.Connection, now: float, limit: int) -> list[tuple[Delivery, str]]:
    rows = db.execute(
        f"SELECT {_DELIVERY_COLUMNS}, e.secret FROM webhook_deliveries d"
        " JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id"
        " WHERE d.status = 'pending' AND d.next_attempt_at <= ?"
        " ORDER BY d.next_attempt_at LIMIT ?",
        (now, limit),
    ).fetchall()
    return [(Delivery(*row[:11]), row[11]) for row in rows]


def sql_next_due(db: sqlite3.Connection) -> float | None:
    (value,) = db.execute(
        "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'"
    ).fetchone()
    return None if value is None else float(value)


def sql_attempted(
    db: sqlite3.Connection,
    delivery: Delivery,
    attempt: Attempt,
    status: str,
    next_attempt_at: float | None,
) -> None:
    db.execute("BEGIN")
    try:
        db.execute(
            "INSERT INTO webhook_attempts (delivery_id, attempt, at, http_status, error,"
            " duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (
                delivery.delivery_id,
                attempt.attempt,
                attempt.at,
                attempt.http_status,
                attempt.error,
                attempt.duration_ms,
            ),
        )
        db.execute(
            "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?,"
            " finished_at = ? WHERE delivery_id = ?",
            (
                status,
                attempt.attempt,
                next_attempt_at,
                None if status == "pending" else attempt.at,
                delivery.delivery_id,
            ),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def sql_deliveries(
    db: sqlite3.Connection,
    owner_id: int | None,
    *,
    limit: int = 50,
    status: str | None = None,
    delivery_id: str | None = None,
) -> list[Delivery]:
    """The delivery log, newest first, with every attempt; one owner's or (None) all."""
    where: list[str] = []
    args: list[Any] = []
    if owner_id is not None:
        where.append("e.owner_id = ?")
        args.append(owner_id)
    if status is not None:
        where.append("d.status = ?")
        args.append(status)
    if delivery_id is not None:
        where.append("d.delivery_id = ?")
        args.append(delivery_id)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rows = db.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d"
        f" JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id{clause}"
        " ORDER BY d.created_at DESC, d.rowid DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    deliveries = [Delivery(*row) for row in rows]
    if not deliveries:
        return []
    marks = ",".join("?" * len(deliveries))
    history: dict[str, list[Attempt]] = {}
    for row in db.execute(
        "SELECT delivery_id, attempt, at, http_status, error, duration_ms FROM webhook_attempts"
        f" WHERE delivery_id IN ({marks}) ORDER BY attempt",
        [d.delivery_id for d in deliveries],
    ):
        history.setdefault(row[0], []).append(Attempt(*row[1:]))
    return [
        dataclasses.replace(d, history=tuple(history.get(d.delivery_id, ()))) for d in deliveries
    ]


def sql_retry(db: sqlite3.Connection, owner_id: int | None, delivery_id: str, now: float) -> bool:
    """Send a failed delivery again (attempts go on counting)."""
    owner_clause = (
        ""
        if owner_id is None
        else " AND endpoint_id IN (SELECT endpoint_id FROM webhook_endpoints WHERE owner_id = ?)"
    )
    args: tuple[Any, ...] = (now, delivery_id) if owner_id is None else (now, delivery_id, owner_id)
    cursor = db.execute(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, finished_at = NULL"
        f" WHERE delivery_id = ? AND status = 'failed'{owner_clause}",
        args,
    )
    return cursor.rowcount > 0


def sql_delete_event_deliveries(db: sqlite3.Connection, event_id: str) -> int:
    """The delivery log of one webinar event (its bodies name people), attempts included."""
    return db.execute("DELETE FROM webhook_deliveries WHERE event_id = ?", (event_id,)).rowcount


def sql_prune(db: sqlite3.Connection, before: float) -> int:
    cursor = db.execute(
        "DELETE FROM webhook_deliveries WHERE status != 'pending' AND finished_at < ?", (before,)
    )
    return cursor.rowcount


# ----------------------------------------------------------------------------- the service


class Webhooks:
    """Records emitted events as deliveries and sends them; one owned background task."""

    def __init__(self, store: Store, config: WebhooksConfig) -> None:
        self._store = store
        self._config = config
        self._queue: deque[_Emitted] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._closing = False
        self._last_prune = 0.0
        self._dropped = 0
        #: Deliveries finished since start, by outcome (for /metrics and tests).
        self.counts: dict[str, int] = {"delivered": 0, "failed": 0, "retried": 0}

    # ------------------------------------------------------------------ emitting

    def emit(
        self,
        event: WebhookEvent,
        data: Mapping[str, Any],
        *,
        event_id: str | None = None,
    ) -> None:
        """Report that ``event`` happened (``event_id``: the webinar event it concerns, if any).

        ``data`` must be JSON-serialisable (TypeError otherwise) and small (ValueError above
        64 KiB). Returns at once; delivery happens in the background.
        """
        self._enqueue(_Emitted(WebhookEvent(event), event_id, dict(data), time.time()))

    def send_test(self, endpoint_id: int) -> None:
        """A ``webhook.test`` to one endpoint (the dashboard's "Send test")."""
        data = {"message": "This is a test from the webinar server."}
        self._enqueue(_Emitted(WebhookEvent.TEST, None, data, time.time(), endpoint_id))

    def _enqueue(self, item: _Emitted) -> None:
        if len(json.dumps(item.data, ensure_ascii=False)) > MAX_BODY_BYTES:
            raise ValueError(f"webhook data is limited to {MAX_BODY_BYTES} bytes")
        if self._closing:
            logger.warning("webhook %s after close: not recorded", item.event.value)
            return
        if len(self._queue) >= MAX_QUEUED:
            self._dropped += 1
            logger.error("webhook queue full: dropped %s", item.event.value)
            return
        self._queue.append(item)
        self._wake.set()

    # Live rooms report here (see RoomManager's observer).

    def room_event(self, room_id: str, event: rs.RoomEvent) -> None:
        match event:
            case rs.RoomUpdated(cause="started", by=by):
                self.emit(WebhookEvent.EVENT_STARTED, {"by": by}, event_id=room_id)
            case rs.RoomEnded(by=by):
                self.emit(WebhookEvent.EVENT_ENDED, {"by": by, "reason": "ended"}, event_id=room_id)
            case rs.ParticipantJoined(participant=p):
                self.emit(WebhookEvent.PARTICIPANT_JOINED, _person(p), event_id=room_id)
            case rs.ParticipantLeft(participant=p, reason=reason):
                self.emit(
                    WebhookEvent.PARTICIPANT_LEFT,
                    {**_person(p), "reason": reason},
                    event_id=room_id,
                )
            case _:
                pass

    def room_opened(self, room_id: str, phase: Phase) -> None:
        """A room opened; without a start time (or past it) it is live at once."""
        if phase is Phase.LIVE:
            self.emit(WebhookEvent.EVENT_STARTED, {"by": None}, event_id=room_id)

    def room_closed(self, room_id: str, phase: Phase) -> None:
        """A room closed while live without being ended for all (everyone left, shutdown)."""
        if phase is Phase.LIVE:
            self.emit(
                WebhookEvent.EVENT_ENDED, {"by": None, "reason": "room-closed"}, event_id=room_id
            )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        resolver = None if self._config.allow_private_addresses else PublicResolver()
        connector = aiohttp.TCPConnector(resolver=resolver, limit=BATCH, ttl_dns_cache=60)
        self._http = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": f"webinar-webhooks/{__version__}"},
            timeout=aiohttp.ClientTimeout(total=self._config.timeout_seconds),
        )
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhooks")

    async def close(self) -> None:
        """Write what was emitted to the log, stop sending; pending deliveries resume on start."""
        self._closing = True
        task, self._task = self._task, None
        await stop_task(task)
        with contextlib.suppress(Exception):
            await self._record()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def wait_idle(self, within: float = 10.0) -> None:
        """Until nothing is queued or due now (tests, and the drain)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            due = await self._store.run_sql(lambda db: sql_next_due(db))
            if not self._queue and (due is None or due > time.time()):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("webhooks still busy")

    # ------------------------------------------------------------------ sending

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._record()
                now = time.time()
                due = await self._store.run_sql(functools.partial(sql_due, now=now, limit=BATCH))
                if due:
                    await asyncio.gather(*(self._attempt(d, secret) for d, secret in due))
                    continue
                if now - self._last_prune > PRUNE_INTERVAL:
                    self._last_prune = now
                    before = now - self._config.log_retention_days * 86400
                    await self._store.run_sql(functools.partial(sql_prune, before=before))
                next_at = await self._store.run_sql(sql_next_due)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("webhook delivery loop failed; trying again shortly")
                next_at = time.time() + 5
            wait = 60.0 if next_at is None else min(60.0, max(0.0, next_at - time.time()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _record(self) -> None:
        if not self._queue:
            return
        items = list(self._queue)
        self._queue.clear()
        await self._store.run_sql(lambda db: sql_record(db, items))

    async def _attempt(self, delivery: Delivery, secret: str) -> None:
        assert self._http is not None
        number = delivery.attempts + 1
        body = delivery.body.encode()
        started = time.monotonic()
        at = time.time()
        http_status: int | None = None
        error: str | None = None
        try:
            check_endpoint_url(delivery.url, allow_private=self._config.allow_private_addresses)
            timestamp = int(at)
            headers = {
                "Content-Type": "application/json",
                ID_HEADER: delivery.delivery_id,
                EVENT_HEADER: delivery.event,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(secret, timestamp, body),
            }
            async with self._http.post(
                delivery.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                http_status = response.status
                await response.content.read(4096)  # a little of the answer, then let go
            if not 200 <= http_status < 300:
                error = f"HTTP {http_status}"
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            error = f"no answer within {self._config.timeout_seconds:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = (str(exc) or type(exc).__name__)[:MAX_ERROR_CHARS]
        duration = int((time.monotonic() - started) * 1000)
        attempt = Attempt(number, at, http_status, error, duration)
        if error is None:
            status, next_at = "delivered", None
        elif number >= self._config.max_attempts:
            status, next_at = "failed", None
        else:
            status = "pending"
            next_at = time.time() + retry_delay(number, self._config.retry_base_seconds)
        await self._store.run_sql(lambda db: sql_attempted(db, delivery, attempt, status, next_at))
        if status == "pending":
            self.counts["retried"] += 1
            logger.info(
                "webhook %s to %s: %s; retry %d in %.0f s",
                delivery.event,
                delivery.url,
                error,
                number + 1,
                (next_at or 0) - time.time(),
            )
        else:
            self.counts[status] += 1
            if status == "failed":
                logger.warning(
                    "webhook %s to %s failed %d times; giving up: %s",
                    delivery.event,
                    delivery.url,
                    number,
                    error,
                )

    def retry_now(self) -> None:
        self._wake.set()

    def metrics_text(self) -> str:
        """Prometheus lines appended to /metrics."""
        lines = [
            "# HELP webinar_webhook_attempts_total Webhook delivery attempts by outcome.",
            "# TYPE webinar_webhook_attempts_total counter",
        ]
        outcomes = {"delivered": "delivered", "failed": "gave_up", "retried": "will_retry"}
        for key, label in outcomes.items():
            lines.append(f'webinar_webhook_attempts_total{{outcome="{label}"}} {self.counts[key]}')
        lines += [
            "# HELP webinar_webhook_dropped_total Emitted events dropped: the queue was full.",
            "# TYPE webinar_webhook_dropped_total counter",
            f"webinar_webhook_dropped_total {self._dropped}",
        ]
        return "\n".join(lines) + "\n"


def _person(p: rs.Participant) -> dict[str, Any]:
    return {"participant_id": p.participant_id, "name": p.name, "role": p.role.value}


# ----------------------------------------------------------------------------- web: dashboard + API

Require = Callable[[web.Request], Awaitable[tuple[SessionRecord, User]]]
Render = Callable[..., web.Response]


@dataclasses.dataclass
class WebhookPages:
    """The dashboard's Webhooks page, and the admin API's delivery log."""

    webhooks: Callable[[], Webhooks]
    store: Store
    require: Require
    render: Render
    allow_private: bool
    admin_token: str | None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/dashboard/webhooks", self.page),
            web.post("/dashboard/webhooks", self.add),
            web.post("/dashboard/webhooks/{endpoint_id}/delete", self.delete),
            web.post("/dashboard/webhooks/{endpoint_id}/test", self.test),
            web.post("/dashboard/webhooks/deliveries/{delivery_id}/retry", self.retry),
            web.get("/api/admin/webhooks/deliveries", self.api_deliveries),
        ]

    @staticmethod
    def _check_csrf(record: SessionRecord, form: Mapping[str, Any]) -> None:
        given = str(form.get("csrf", ""))
        if not given or not hmac.compare_digest(given, record.csrf_token):
            raise web.HTTPForbidden(text="The form expired or did not come from this site.")

    async def page(self, request: web.Request) -> web.Response:
        record, user = await self.require(request)
        return await self._page(request, record, user, error=None, url="")

    async def _page(
        self,
        request: web.Request,
        record: SessionRecord,
        user: User,
        *,
        error: str | None,
        url: str,
        status: int = 200,
    ) -> web.Response:
        owner = user.user_id
        endpoints = await self.store.run_sql(lambda db: sql_endpoints(db, owner))
        scope = None if user.is_admin else owner
        deliveries = await self.store.run_sql(lambda db: sql_deliveries(db, scope, limit=50))
        return self.render(
            request,
            "webhooks.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            endpoints=endpoints,
            deliveries=[d.as_json() for d in deliveries],
            events=[e.value for e in WebhookEvent if e is not WebhookEvent.TEST],
            error=error,
            url=url,
            notice=request.query.get("notice", ""),
        )

    async def add(self, request: web.Request) -> web.Response:
        record, user = await self.require(request)
        form = await request.post()
        self._check_csrf(record, form)
        url = str(form.get("url", ""))[:2100]
        chosen = frozenset(str(v) for v in form.getall("events", []))
        valid = {e.value for e in WebhookEvent} - {WebhookEvent.TEST.value}
        try:
            checked = check_endpoint_url(url, allow_private=self.allow_private)
            if chosen - valid:
                raise ValueError("unknown event name")
            events = frozenset() if chosen in (frozenset(), valid) else chosen
            now = time.time()
            await self.store.run_sql(
                lambda db: sql_add_endpoint(db, user.user_id, checked, events, now)
            )
        except ValueError as exc:
            return await self._page(request, record, user, error=str(exc), url=url, status=400)
        raise web.HTTPSeeOther("/dashboard/webhooks?notice=added")

    def _endpoint_id(self, request: web.Request) -> int:
        try:
            return int(request.match_info["endpoint_id"])
        except ValueError:
            raise web.HTTPNotFound(text="No such endpoint of yours.") from None

    async def delete(self, request: web.Request) -> web.Response:
        record, user = await self.require(request)
        self._check_csrf(record, await request.post())
        endpoint_id = self._endpoint_id(request)
        if not await self.store.run_sql(
            lambda db: sql_delete_endpoint(db, user.user_id, endpoint_id)
        ):
            raise web.HTTPNotFound(text="No such endpoint of yours.")
        raise web.HTTPSeeOther("/dashboard/webhooks?notice=deleted")

    async def test(self, request: web.Request) -> web.Response:
        record, user = await self.require(request)
        self._check_csrf(record, await request.post())
        endpoint_id = self._endpoint_id(request)
        mine = await self.store.run_sql(lambda db: sql_endpoints(db, user.user_id))
        if not any(e.endpoint_id == endpoint_id for e in mine):
            raise web.HTTPNotFound(text="No such endpoint of yours.")
        self.webhooks().send_test(endpoint_id)
        raise web.HTTPSeeOther("/dashboard/webhooks?notice=test-sent")

    async def retry(self, request: web.Request) -> web.Response:
        record, user = await self.require(request)
        self._check_csrf(record, await request.post())
        delivery_id = request.match_info["delivery_id"][:64]
        scope = None if user.is_admin else user.user_id
        now = time.time()
        if not await self.store.run_sql(lambda db: sql_retry(db, scope, delivery_id, now)):
            raise web.HTTPNotFound(text="No failed delivery of yours with that ID.")
        self.webhooks().retry_now()
        raise web.HTTPSeeOther("/dashboard/webhooks?notice=retrying")

    async def api_deliveries(self, request: web.Request) -> web.Response:
        """``GET /api/admin/webhooks/deliveries?status=&limit=``: Bearer admin.token."""
        if self.admin_token is None:
            raise web.HTTPForbidden(text="Set admin.token to use the admin API.")
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.admin_token.encode()):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})
        status = request.query.get("status") or None
        if status not in (None, "pending", "delivered", "failed"):
            return web.json_response(
                {"error": "bad-request", "message": "status must be pending, delivered or failed"},
                status=400,
            )
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 1000:
            return web.json_response(
                {"error": "bad-request", "message": "limit must be 1 to 1000"}, status=400
            )
        deliveries = await self.store.run_sql(
            lambda db: sql_deliveries(db, None, limit=limit, status=status)
        )
        return web.json_response({"deliveries": [d.as_json() for d in deliveries]})
