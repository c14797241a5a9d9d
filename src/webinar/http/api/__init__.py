"""The one JSON API, ``/api/v1/…`` (docs/api.md), and its OpenAPI description.

- :mod:`.table`: the route table (each handler declares its operation) and the wrapper that
  authenticates, checks the scope and decodes the body;
- :mod:`.auth`: bearer tokens with scopes (``read``, ``write``, ``admin``);
- :mod:`.errors`: the one error envelope; :mod:`.paging`: cursor pagination;
- :mod:`.schema`: request and response types (msgspec Structs);
- :mod:`.events`, :mod:`.interaction`, :mod:`.recordings`, :mod:`.content`, :mod:`.webhooks`,
  :mod:`.tokens`, :mod:`.join_keys` (join-token keys and embedding), :mod:`.team` (an
  event's co-organisers and presenters, duplicating and deleting it, accounts),
  :mod:`.live_stream` (where an event's live stream goes): the operations;
  :mod:`.legacy`: the deprecated paths they replace;
- :mod:`.openapi` and :mod:`.docs`: ``/api/openapi.json`` and ``/api/docs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from webinar.attendance.service import AttendanceService
from webinar.broadcast.settings import LiveStreamSettingsService
from webinar.content.library import ContentService
from webinar.content.stage import StageService
from webinar.http.api import errors, legacy
from webinar.http.api.auth import Authenticator
from webinar.http.api.branding import BrandingApi
from webinar.http.api.content import ContentApi
from webinar.http.api.docs import DocsApi, Render
from webinar.http.api.events import EventsApi
from webinar.http.api.interaction import InteractionApi
from webinar.http.api.join_keys import JoinKeysApi
from webinar.http.api.live_stream import LiveStreamApi
from webinar.http.api.openapi import document
from webinar.http.api.recordings import RecordingsApi
from webinar.http.api.stage import StageApi
from webinar.http.api.table import ApiPages, Operation
from webinar.http.api.team import TeamApi
from webinar.http.api.tokens import TokensApi
from webinar.http.api.webhooks import WebhooksApi
from webinar.http.branding import BrandingService
from webinar.http.interaction import InteractionHttp
from webinar.http.stats import StatsPages
from webinar.http.team import EventTeam
from webinar.http.tickets import TicketingWeb
from webinar.recordings.library import RecordingService
from webinar.recordings.sharing import Publisher
from webinar.storage.store import Store
from webinar.webhooks.service import Webhooks

#: The middlewares the API needs (create_app puts them in the app's list).
MIDDLEWARES = (errors.middleware, legacy.middleware)


@dataclass
class Api:
    """Every part of the API, and its description."""

    parts: list[ApiPages]
    auth: Authenticator

    def operations(self) -> list[Operation]:
        return [op for part in self.parts for op in part.operations()]

    def description(self) -> dict[str, Any]:
        return document(self.operations())


def setup_api(
    app: web.Application,
    *,
    store: Store,
    auth: Authenticator,
    tickets: TicketingWeb,
    interaction: InteractionHttp,
    stats: StatsPages,
    attendance: AttendanceService,
    recordings: RecordingService,
    publisher: Publisher,
    content: ContentService,
    stage: StageService,
    webhooks: Callable[[], Webhooks],
    allow_private_webhooks: bool,
    public_url: str | None,
    embed_origins: tuple[str, ...],
    render: Render,
    external_providers: tuple[str, ...] = (),
    team: EventTeam | None = None,
    live_stream: LiveStreamSettingsService | None = None,
    branding: BrandingService | None = None,
) -> Api:
    """Build the API and add its routes (and those of its description) to ``app``."""
    events = EventsApi(tickets, auth, external_providers)
    parts: list[ApiPages] = [
        TokensApi(store, auth),
        events,
        InteractionApi(store, auth, interaction, stats, attendance),
        RecordingsApi(store, auth, recordings, publisher, public_url),
        ContentApi(store, auth, content, interaction),
        StageApi(store, auth, stage),
        WebhooksApi(store, auth, webhooks, allow_private_webhooks),
        JoinKeysApi(store, auth, embed_origins, public_url),
    ]
    if team is not None:
        parts.append(TeamApi(events, team, auth, team.mail))
    if live_stream is not None:
        parts.append(LiveStreamApi(store, auth, live_stream))
    if branding is not None:
        parts.append(BrandingApi(store, auth, branding))
    api = Api(parts, auth)
    spec: dict[str, Any] = {}

    def description() -> dict[str, Any]:
        if not spec:
            spec.update(api.description())
        return spec

    api.parts.append(DocsApi(render, description))
    for part in api.parts:
        app.router.add_routes(part.routes())
    return api


__all__ = ["MIDDLEWARES", "Api", "setup_api"]
