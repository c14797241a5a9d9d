"""Where an event's room may be shown: the origins allowed to frame its pages.

An event's ``/e/...`` pages may be framed by the global ``http.embed_origins`` and by the
event's own list (this table, set on the dashboard's event page or through the API); every
other page of the site, and an event's pages for any other origin, refuse to be framed
(webinar.http.headers). The room page also posts its ``webinar:*`` messages to these origins
only (docs/api.md, "Embedding").
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from webinar.i18n import _, ngettext
from webinar.storage.db import Database, transaction

MAX_ORIGINS_PER_EVENT = 20
ORIGIN_MAX_CHARS = 200


def check_origin(text: str) -> str:
    """An origin as a browser writes it (``https://site.example`` or with a port; lower
    case, no path, no trailing slash); ValueError saying what is wrong."""
    origin = text.strip().rstrip("/")
    wrong = ValueError(
        _("%(origin)s is not an origin like https://site.example (no path)")
        % {"origin": repr(text.strip()[:80])}
    )
    if not origin or len(origin) > ORIGIN_MAX_CHARS or any(c in origin for c in " ;,'\"*"):
        raise wrong
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        raise wrong from None
    if (
        parts.scheme.lower() not in ("https", "http")
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise wrong
    host = parts.hostname.lower()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


def parse_origins(texts: Iterable[str]) -> tuple[str, ...]:
    """Origins (one per item; blank items skipped), checked, without repeats, in order."""
    found: list[str] = []
    for text in texts:
        if not text.strip():
            continue
        origin = check_origin(text)
        if origin not in found:
            found.append(origin)
    if len(found) > MAX_ORIGINS_PER_EVENT:
        raise ValueError(
            ngettext(
                "at most %(num)d site may embed an event",
                "at most %(num)d sites may embed an event",
                MAX_ORIGINS_PER_EVENT,
            )
            % {"num": MAX_ORIGINS_PER_EVENT}
        )
    return tuple(found)


def sql_origins(conn: Database, event_id: str) -> tuple[str, ...]:
    """The event's own allowed origins, in alphabetical order."""
    rows = conn.execute(
        "SELECT origin FROM embed_origins WHERE event_id = ? ORDER BY origin", (event_id,)
    ).fetchall()
    return tuple(row[0] for row in rows)


def sql_set_origins(conn: Database, event_id: str, origins: tuple[str, ...]) -> None:
    """Replace the event's allowed origins (already checked by :func:`parse_origins`)."""
    with transaction(conn, immediate=True):
        conn.execute("DELETE FROM embed_origins WHERE event_id = ?", (event_id,))
        for origin in origins:
            conn.execute(
                "INSERT INTO embed_origins (event_id, origin) VALUES (?, ?)", (event_id, origin)
            )
