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

(``type`` and ``timestamp`` repeat ``event`` and ``created_at`` under the Standard Webhooks
names), signed per Standard Webhooks: ``webhook-id`` (the delivery ID, the same on every
retry), ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``), plus the deprecated
``Webinar-Webhook-*`` headers for one release (:mod:`webinar.webhooks.signing`). See
docs/api.md for verifying it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from webinar import __version__
from webinar.config import WebhooksConfig
from webinar.rooms import state as rs
from webinar.rooms.state import Phase
from webinar.storage.store import Store
from webinar.tasks import stop_task
from webinar.webhooks.records import (
    Attempt,
    Delivery,
    Emitted,
    sql_attempted,
    sql_due,
    sql_next_due,
    sql_prune,
    sql_record,
)
from webinar.webhooks.signing import (
    BATCH,
    MAX_BODY_BYTES,
    MAX_ERROR_CHARS,
    MAX_QUEUED,
    PRUNE_INTERVAL,
    PublicResolver,
    WebhookEvent,
    check_endpoint_url,
    request_headers,
    retry_delay,
)

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- the service


class Webhooks:
    """Records emitted events as deliveries and sends them; one owned background task."""

    def __init__(
        self,
        store: Store,
        config: WebhooksConfig,
        *,
        deliver: bool | Callable[[], bool] = True,
        poll_seconds: float = 60.0,
    ) -> None:
        """``deliver=False`` (every worker but the one running the periodic jobs): record
        emitted events in the delivery log, send nothing; a callable decides each time (on a
        cluster of nodes: whether this worker holds the jobs lease). ``poll_seconds``: the
        longest wait before the log is looked at again (short with several workers, whose
        deliveries the sending worker learns about only from the database)."""
        self._store = store
        self._config = config
        self._deliver: Callable[[], bool] = deliver if callable(deliver) else lambda: deliver
        self._poll = poll_seconds
        self._queue: deque[Emitted] = deque()
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
        self._enqueue(Emitted(WebhookEvent(event), event_id, dict(data), time.time()))

    def send_test(self, endpoint_id: int) -> None:
        """A ``webhook.test`` to one endpoint (the dashboard's "Send test")."""
        data = {"message": "This is a test from the webinar server."}
        self._enqueue(Emitted(WebhookEvent.TEST, None, data, time.time(), endpoint_id))

    def _enqueue(self, item: Emitted) -> None:
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
                if not self._deliver():
                    with contextlib.suppress(TimeoutError):  # looked at again: leases move
                        async with asyncio.timeout(self._poll):
                            await self._wake.wait()
                    continue
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
            wait = (
                self._poll if next_at is None else min(self._poll, max(0.0, next_at - time.time()))
            )
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
            headers = request_headers(secret, delivery.delivery_id, delivery.event, int(at), body)
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

    @property
    def dropped(self) -> int:
        """Emitted events dropped because the queue was full (``/metrics``)."""
        return self._dropped


def _person(p: rs.Participant) -> dict[str, Any]:
    return {"participant_id": p.participant_id, "name": p.name, "role": p.role.value}
