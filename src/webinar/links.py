"""Links to an event, shared by the CLI and the web app.

Contract: the attendee link is ``<public_url>/e/<123-456-789>``, the presenter link is
``<public_url>/e/<123-456-789>/present?key=<presenter_key>`` and the host link is the same
page with the host key.
"""

from __future__ import annotations

from urllib.parse import quote

from webinar.config import Config
from webinar.ids import format_event_id
from webinar.storage.store import Event


def attendee_path(event: Event) -> str:
    """Path of the attendee page, e.g. ``/e/123-456-789``."""
    return f"/e/{format_event_id(event.event_id)}"


def presenter_path(event: Event) -> str:
    """Path and query of the presenter page, including the presenter key."""
    return f"{attendee_path(event)}/present?key={quote(event.presenter_key, safe='')}"


def event_links(config: Config, event: Event) -> tuple[str, str]:
    """Return ``(attendee_url, presenter_url)`` for ``event`` under the configured base URL."""
    base = config.base_url
    return base + attendee_path(event), base + presenter_path(event)


def host_path(event: Event) -> str:
    """The host's page: the presenter page opened with the host key."""
    return f"{attendee_path(event)}/present?key={quote(event.host_key, safe='')}"


def host_url(config: Config, event: Event) -> str:
    return config.base_url + host_path(event)
