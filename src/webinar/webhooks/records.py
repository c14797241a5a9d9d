"""What the delivery log holds (endpoints, deliveries, attempts) and every SQL statement about it;
the functions run on the store's thread."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Mapping
from typing import Any

from webinar.formats import iso_time
from webinar.i18n import ngettext
from webinar.ids import format_event_id
from webinar.storage.db import Database, transaction
from webinar.webhooks.signing import (
    MAX_ENDPOINTS_PER_OWNER,
    WebhookEvent,
    new_secret,
    standard_secret,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    endpoint_id: int
    owner_id: int
    url: str
    #: The secret as stored: a ``whsec_`` secret, or (made before Standard Webhooks) the old
    #: text, which the deprecated ``Webinar-Webhook-Signature`` header is keyed with.
    stored_secret: str
    events: frozenset[str]  # empty means every event
    created_at: float

    @property
    def secret(self) -> str:
        """The signing secret in the Standard Webhooks ``whsec_`` form: what organisers copy."""
        return standard_secret(self.stored_secret)

    @property
    def previous_secret(self) -> str | None:
        """How the secret was shown before Standard Webhooks (None for an endpoint made since)."""
        return None if self.secret == self.stored_secret else self.stored_secret

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
            "next_attempt_at": iso_time(self.next_attempt_at, timespec="milliseconds", zulu=True),
            "created_at": iso_time(self.created_at, timespec="milliseconds", zulu=True),
            "finished_at": iso_time(self.finished_at, timespec="milliseconds", zulu=True),
            "payload": json.loads(self.body),
            "history": [
                {
                    "attempt": a.attempt,
                    "at": iso_time(a.at, timespec="milliseconds", zulu=True),
                    "http_status": a.http_status,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                }
                for a in self.history
            ],
        }


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
    db: Database, owner_id: int, url: str, events: frozenset[str], now: float
) -> Endpoint:
    (count,) = db.execute(
        "SELECT count(*) FROM webhook_endpoints WHERE owner_id = ?", (owner_id,)
    ).fetchone()
    if count >= MAX_ENDPOINTS_PER_OWNER:
        raise ValueError(
            ngettext(
                "an account may have at most %(num)d endpoint",
                "an account may have at most %(num)d endpoints",
                MAX_ENDPOINTS_PER_OWNER,
            )
            % {"num": MAX_ENDPOINTS_PER_OWNER}
        )
    secret = new_secret()
    text = ",".join(sorted(events)) if events else "*"
    (endpoint_id,) = db.execute(
        "INSERT INTO webhook_endpoints (owner_id, url, secret, events, created_at)"
        " VALUES (?, ?, ?, ?, ?) RETURNING endpoint_id",
        (owner_id, url, secret, text, now),
    ).fetchone()
    return Endpoint(int(endpoint_id), owner_id, url, secret, events, now)


def sql_endpoints(db: Database, owner_id: int | None) -> list[Endpoint]:
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


def sql_delete_endpoint(db: Database, owner_id: int, endpoint_id: int) -> bool:
    cursor = db.execute(
        "DELETE FROM webhook_endpoints WHERE endpoint_id = ? AND owner_id = ?",
        (endpoint_id, owner_id),
    )
    return cursor.rowcount > 0


def sql_targets(db: Database, event_id: str | None) -> list[Endpoint]:
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
class Emitted:
    event: WebhookEvent
    event_id: str | None
    data: Mapping[str, Any]
    created_at: float
    only_endpoint: int | None = None


def _body(delivery_id: str, item: Emitted) -> str:
    return json.dumps(
        {
            "id": delivery_id,
            # "type" and "timestamp": the Standard Webhooks payload's names for the same values.
            "type": item.event.value,
            "timestamp": iso_time(item.created_at, timespec="milliseconds", zulu=True),
            "event": item.event.value,
            "created_at": iso_time(item.created_at, timespec="milliseconds", zulu=True),
            "event_id": format_event_id(item.event_id) if item.event_id else None,
            "data": item.data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def sql_record(db: Database, items: list[Emitted]) -> int:
    """Turn emitted events into pending deliveries, one per interested endpoint."""
    created = 0
    with transaction(db, immediate=True):
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
    return created


def sql_due(db: Database, now: float, limit: int) -> list[tuple[Delivery, str]]:
    rows = db.execute(
        f"SELECT {_DELIVERY_COLUMNS}, e.secret FROM webhook_deliveries d"
        " JOIN webhook_endpoints e ON e.endpoint_id = d.endpoint_id"
        " WHERE d.status = 'pending' AND d.next_attempt_at <= ?"
        " ORDER BY d.next_attempt_at LIMIT ?",
        (now, limit),
    ).fetchall()
    return [(Delivery(*row[:11]), row[11]) for row in rows]


def sql_next_due(db: Database) -> float | None:
    (value,) = db.execute(
        "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'"
    ).fetchone()
    return None if value is None else float(value)


def sql_attempted(
    db: Database,
    delivery: Delivery,
    attempt: Attempt,
    status: str,
    next_attempt_at: float | None,
) -> None:
    with transaction(db, immediate=True):
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


def sql_deliveries(
    db: Database,
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


def sql_retry(db: Database, owner_id: int | None, delivery_id: str, now: float) -> bool:
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


def sql_delete_event_deliveries(db: Database, event_id: str) -> int:
    """The delivery log of one webinar event (its bodies name people), attempts included."""
    return db.execute("DELETE FROM webhook_deliveries WHERE event_id = ?", (event_id,)).rowcount


def sql_prune(db: Database, before: float) -> int:
    cursor = db.execute(
        "DELETE FROM webhook_deliveries WHERE status != 'pending' AND finished_at < ?", (before,)
    )
    return cursor.rowcount
