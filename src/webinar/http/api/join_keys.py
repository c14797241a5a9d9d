"""Join-token keys and embedding in the API: an account's keys (``/api/v1/join-keys``) and an
event's embed settings (``/api/v1/events/{id}/embed``).

The rules are the dashboard's (:mod:`webinar.http.embed`): the keys and their checks are
:mod:`webinar.ticketing.join_tokens`, the allowed origins :mod:`webinar.ticketing.embedding`;
docs/api.md ("Signed join tokens", "Embedding") is the integrator's side. Keys belong to an
account: a token manages its own account's keys, and the configured admin token (no account)
is refused with ``account-required``. An event's embed settings are the event's: whoever may
see the event may read them, and change them with a ``write`` token.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from webinar.http.api import schema as s
from webinar.http.api.auth import Authenticator, Caller
from webinar.http.api.errors import api_error
from webinar.http.api.events import visible_event
from webinar.http.api.paging import paginate
from webinar.http.api.table import PAGE_QUERY, ApiPages, Call, operation
from webinar.http.embed import snippet
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.storage.api_tokens import Scope
from webinar.storage.store import Event, Store, User
from webinar.ticketing import embedding
from webinar.ticketing.join_tokens import (
    JoinKey,
    public_key_algorithm,
    sql_add_key,
    sql_delete_key,
    sql_keys,
)
from webinar.ticketing.records import to_db

KEYS = "Join tokens"
EMBED = "Embedding"
#: The longest key ID looked up (they are ``jk_`` and 16 hex digits).
KEY_ID_MAX_CHARS = 64


def key_json(k: JoinKey) -> s.JoinKey:
    return s.JoinKey(**k.as_json())


def _account(caller: Caller) -> User:
    """The token's account: join-token keys belong to one (403 for the configured admin
    token)."""
    if caller.user is None:
        raise api_error(
            403, "account-required", _("join-token keys belong to an account: use its token")
        )
    return caller.user


@dataclass
class JoinKeysApi(ApiPages):
    store: Store
    auth: Authenticator
    #: The global ``http.embed_origins``: every event's room may be framed by them.
    embed_origins: tuple[str, ...]
    public_url: str | None

    def _base(self, request: web.Request) -> str:
        return (self.public_url or str(request.url.origin())).rstrip("/")

    # ------------------------------------------------------------------ keys

    @operation(
        "GET",
        "/api/v1/join-keys",
        scope=Scope.READ,
        summary="List the account's join-token keys",
        description="Oldest first; never a secret. 403 account-required for the configured "
        "admin token.",
        tag=KEYS,
        response=s.JoinKeyPage,
        query=PAGE_QUERY,
    )
    async def list_join_keys(self, request: web.Request, call: Call) -> s.JoinKeyPage:
        owner = _account(call.who()).user_id
        keys = await self.store.run_sql(lambda db: sql_keys(db, owner))
        page = paginate(request, keys, lambda k: (to_db(k.created_at), k.key_id))
        return s.JoinKeyPage([key_json(k) for k in page.items], page.next_cursor)

    @operation(
        "POST",
        "/api/v1/join-keys",
        scope=Scope.WRITE,
        summary="Make a join-token key",
        description="An HS256 secret (answered in `secret`, shown only now), or a registered "
        "RS256 or EdDSA public key. At most 20 per account. 403 account-required for the "
        "configured admin token.",
        tag=KEYS,
        status=201,
        response=s.NewJoinKey,
        body=s.JoinKeyCreate,
        errors=(422,),
    )
    async def create_join_key(self, request: web.Request, call: Call) -> s.NewJoinKey:
        owner = _account(call.who()).user_id
        body = call.body_as(s.JoinKeyCreate)
        label, algorithm, pem = body.label, body.algorithm, body.public_key
        if pem is None and algorithm not in (None, "HS256"):
            raise api_error(
                422,
                "invalid",
                _("RS256 and EdDSA keys are registered with their public_key (PEM)"),
            )
        try:
            if pem is not None and algorithm is not None:
                found, _pem = public_key_algorithm(pem)
                if found.value != algorithm:
                    raise ValueError(
                        _("that public key is for %(alg)s, not %(asked)s")
                        % {"alg": found.value, "asked": algorithm}
                    )
            key = await self.store.run_sql(lambda db: sql_add_key(db, owner, label, public_key=pem))
        except ValueError as exc:
            raise api_error(422, "invalid", str(exc)) from None
        made = key.as_json()
        if key.secret is not None:
            made["secret"] = key.secret  # shown this once
        return s.NewJoinKey(**made)

    @operation(
        "DELETE",
        "/api/v1/join-keys/{key_id}",
        scope=Scope.WRITE,
        summary="Delete a join-token key",
        description="Tokens it signed stop working at once (people already in a room stay).",
        tag=KEYS,
        status=204,
        errors=(404,),
    )
    async def delete_join_key(self, request: web.Request, call: Call) -> None:
        owner = _account(call.who()).user_id
        key_id = request.match_info["key_id"][:KEY_ID_MAX_CHARS]
        if not await self.store.run_sql(lambda db: sql_delete_key(db, owner, key_id)):
            raise api_error(404, "not-found", _("no such key of yours"))

    # ------------------------------------------------------------------ embedding

    def _embed(self, request: web.Request, event: Event, own: tuple[str, ...]) -> s.Embed:
        return s.Embed(
            event_id=format_event_id(event.event_id),
            origins=list(own),
            frame_ancestors=[
                *self.embed_origins,
                *(o for o in own if o not in self.embed_origins),
            ],
            snippet=snippet(self._base(request), event),
        )

    @operation(
        "GET",
        "/api/v1/events/{event_id}/embed",
        scope=Scope.READ,
        summary="An event's embed code and allowed sites",
        description="The <iframe> snippet, the event's own allowed origins and every origin "
        "its pages may be framed by (the server's http.embed_origins, then the event's).",
        tag=EMBED,
        response=s.Embed,
        errors=(404,),
    )
    async def get_embed(self, request: web.Request, call: Call) -> s.Embed:
        event = await visible_event(self.store, request, call.who())
        event_id = event.event_id
        own = await self.store.run_sql(lambda db: embedding.sql_origins(db, event_id))
        return self._embed(request, event, own)

    @operation(
        "PUT",
        "/api/v1/events/{event_id}/embed",
        scope=Scope.WRITE,
        summary="Set the sites allowed to embed an event",
        description="The list replaces the event's (an empty list clears it). 422 invalid "
        "names an entry that is not an origin (a path, a wildcard, another scheme); nothing "
        "changes then.",
        tag=EMBED,
        response=s.Embed,
        body=s.EmbedSettings,
        errors=(404, 422),
    )
    async def set_embed(self, request: web.Request, call: Call) -> s.Embed:
        event = await visible_event(self.store, request, call.who())
        body = call.body_as(s.EmbedSettings)
        try:
            checked = embedding.parse_origins(body.origins)
        except ValueError as exc:
            raise api_error(422, "invalid", str(exc)) from None
        event_id = event.event_id
        await self.store.run_sql(lambda db: embedding.sql_set_origins(db, event_id, checked))
        return self._embed(request, event, tuple(sorted(checked)))
