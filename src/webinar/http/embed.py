"""Join-token keys and embedding: the dashboard's *Join tokens* page, an event's embed
settings (the snippet and the sites allowed to frame it), and the same through ``/api/v1``.

The keys and their check are webinar.ticketing.join_tokens, the allowed origins
webinar.ticketing.embedding; docs/api.md ("Signed join tokens", "Embedding") is the
integrator's side of both.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from webinar.http.inputs import read_json
from webinar.http.site import Pages, Site, route
from webinar.i18n import _
from webinar.ids import format_event_id
from webinar.links import attendee_path
from webinar.storage.store import Event, SessionRecord, User
from webinar.ticketing import embedding, records
from webinar.ticketing.join_tokens import (
    JoinKey,
    public_key_algorithm,
    sql_add_key,
    sql_delete_key,
    sql_keys,
)

MAX_BODY_BYTES = 64 * 1024
#: What a frame of the room needs from the embedding page (camera and microphone for
#: presenters, screen sharing, sound without a click, full screen).
FRAME_ALLOW = "camera; microphone; display-capture; autoplay; fullscreen"


#: The claims of a join token, as the Join tokens page shows them.
EXAMPLE_CLAIMS = (
    '{"event": "123-456-789", "name": "Ann Smith", "role": "attendee",\n'
    ' "email": "ann@example.org", "sub": "user-42",\n'
    ' "iat": 1767225600, "exp": 1767225900, "jti": "a-new-random-id"}'
)


def snippet(base_url: str, event: Event) -> str:
    """The HTML an organiser pastes into their site to show the event's room."""
    src = html.escape(base_url.rstrip("/") + attendee_path(event), quote=True)
    title = html.escape(event.title, quote=True)
    return (
        f'<iframe src="{src}" title="{title}" allow="{FRAME_ALLOW}" allowfullscreen'
        ' style="width: 100%; height: 720px; border: 0"></iframe>'
    )


def _error(status: int, code: str, message: str) -> web.HTTPException:
    """The ``/api/v1`` error envelope (docs/api.md, "Errors")."""
    body = json.dumps({"error": {"code": code, "message": message}})
    exc = web.HTTPException(text=body, content_type="application/json")
    exc.set_status(status)
    return exc


@dataclass
class EmbedPages(Pages):
    """The *Join tokens* page, the event page's embed form, and their JSON API."""

    site: Site
    #: The global ``http.embed_origins``: every event's room may be framed by them.
    embed_origins: tuple[str, ...] = ()

    # ------------------------------------------------------------------ what the event page shows

    async def event_embed(self, request: web.Request, event: Event) -> dict[str, Any]:
        """The event page's embed section: the snippet and the allowed origins."""
        event_id = event.event_id
        own = await self.site.store.run_sql(lambda db: embedding.sql_origins(db, event_id))
        return {
            "snippet": snippet(self.site.base_url(request), event),
            "origins": list(own),
            "global_origins": list(self.embed_origins),
        }

    async def save_origins(self, event: Event, text: str) -> tuple[str, ...]:
        """Replace the event's allowed origins with those of ``text`` (one per line);
        ValueError names what is wrong (nothing is changed then)."""
        origins = embedding.parse_origins(text.splitlines())
        event_id = event.event_id
        await self.site.store.run_sql(lambda db: embedding.sql_set_origins(db, event_id, origins))
        return origins

    # ------------------------------------------------------------------ dashboard: keys

    @route("GET", "/dashboard/join-keys")
    async def keys_page(self, request: web.Request) -> web.Response:
        record, user = await self.site.require(request)
        return await self._keys_page(request, record, user)

    async def _keys_page(
        self,
        request: web.Request,
        record: SessionRecord,
        user: User,
        *,
        created: JoinKey | None = None,
        error: str | None = None,
        label: str = "",
        public_key: str = "",
        status: int = 200,
    ) -> web.Response:
        owner = user.user_id
        keys = await self.site.store.run_sql(lambda db: sql_keys(db, owner))
        return self.site.render(
            request,
            "join_keys.html",
            status=status,
            user=user,
            csrf=record.csrf_token,
            keys=keys,
            created=created,
            error=error,
            label=label,
            public_key=public_key,
            notice=request.query.get("notice", ""),
            base_url=self.site.base_url(request),
            example_claims=EXAMPLE_CLAIMS,
            pem_placeholder="-----BEGIN PUBLIC KEY-----",
        )

    @route("POST", "/dashboard/join-keys")
    async def add_key(self, request: web.Request) -> web.Response:
        record, user, form = await self.site.require_form(request)
        label = str(form.get("label", ""))[:500]
        pem = str(form.get("public_key", ""))[:20_000]
        kind = str(form.get("kind", "secret"))
        try:
            created = await self.site.store.run_sql(
                lambda db: sql_add_key(
                    db, user.user_id, label, public_key=pem if kind == "public" else None
                )
            )
        except ValueError as exc:
            return await self._keys_page(
                request,
                record,
                user,
                error=str(exc),
                label=label,
                public_key=pem,
                status=400,
            )
        # An HS256 secret is shown on this answer only (it is never shown again).
        return await self._keys_page(request, record, user, created=created)

    @route("POST", "/dashboard/join-keys/{key_id}/delete")
    async def delete_key(self, request: web.Request) -> web.Response:
        _record, user, _form = await self.site.require_form(request)
        key_id = request.match_info["key_id"][:64]
        if not await self.site.store.run_sql(lambda db: sql_delete_key(db, user.user_id, key_id)):
            raise web.HTTPNotFound(text=_("No such key of yours."))
        raise web.HTTPSeeOther("/dashboard/join-keys?notice=deleted")

    # ------------------------------------------------------------------ API

    async def _api_user(self, request: web.Request) -> User:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        user = None
        if token and len(token) <= 200:
            user_id = await self.site.store.run(
                lambda core: records.user_id_for_api_token(core.connection, token)
            )
            if user_id:
                user = await self.site.store.run(lambda core: core.get_user(user_id))
        if user is None:
            exc = _error(401, "unauthorized", _("send Authorization: Bearer <API token>"))
            exc.headers["WWW-Authenticate"] = "Bearer"
            raise exc
        return user

    async def _api_event(self, request: web.Request) -> Event:
        user = await self._api_user(request)
        event = await self.site.store.get_event(request.match_info["event_id"])
        if event is None or not (user.is_admin or event.owner_id == user.user_id):
            raise _error(404, "not-found", _("no such event of yours"))
        return event

    @staticmethod
    async def _body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
        body = await read_json(request, _error, max_bytes=MAX_BODY_BYTES, empty={})
        if not isinstance(body, dict):
            raise _error(400, "bad-json", _("the body must be a JSON object"))
        unknown = set(body) - allowed
        if unknown:
            raise _error(
                400,
                "unknown-field",
                _("unknown field %(field)s") % {"field": repr(sorted(unknown)[0])},
            )
        return body

    @route("GET", "/api/v1/join-keys")
    async def api_keys(self, request: web.Request) -> web.Response:
        user = await self._api_user(request)
        keys = await self.site.store.run_sql(lambda db: sql_keys(db, user.user_id))
        return web.json_response({"keys": [k.as_json() for k in keys]})

    @route("POST", "/api/v1/join-keys")
    async def api_add_key(self, request: web.Request) -> web.Response:
        user = await self._api_user(request)
        body = await self._body(request, {"label", "algorithm", "public_key"})
        label, algorithm, pem = body.get("label"), body.get("algorithm"), body.get("public_key")
        if not isinstance(label, str):
            raise _error(400, "invalid", _("label must be text"))
        if pem is not None and not isinstance(pem, str):
            raise _error(400, "invalid", _("public_key must be a PEM text"))
        if pem is None and algorithm not in (None, "HS256"):
            raise _error(
                400,
                "invalid",
                _("RS256 and EdDSA keys are registered with their public_key (PEM)"),
            )
        try:
            if pem is not None and algorithm is not None:
                found, _pem = public_key_algorithm(pem)
                if found.value != algorithm:
                    raise ValueError(
                        _("that public key is for %(alg)s, not %(asked)s")
                        % {"alg": found.value, "asked": str(algorithm)[:20]}
                    )
            key = await self.site.store.run_sql(
                lambda db: sql_add_key(db, user.user_id, label, public_key=pem)
            )
        except ValueError as exc:
            raise _error(422, "invalid", str(exc)) from None
        answer = key.as_json()
        if key.secret is not None:
            answer["secret"] = key.secret  # shown this once
        return web.json_response(answer, status=201)

    @route("DELETE", "/api/v1/join-keys/{key_id}")
    async def api_delete_key(self, request: web.Request) -> web.Response:
        user = await self._api_user(request)
        key_id = request.match_info["key_id"][:64]
        if not await self.site.store.run_sql(lambda db: sql_delete_key(db, user.user_id, key_id)):
            raise _error(404, "not-found", _("no such key of yours"))
        return web.json_response({"deleted": key_id})

    def _embed_json(self, request: web.Request, event: Event, own: tuple[str, ...]) -> Any:
        return {
            "event_id": format_event_id(event.event_id),
            "origins": list(own),
            "frame_ancestors": [
                *self.embed_origins,
                *(o for o in own if o not in self.embed_origins),
            ],
            "snippet": snippet(self.site.base_url(request), event),
        }

    @route("GET", "/api/v1/events/{event_id}/embed")
    async def api_embed(self, request: web.Request) -> web.Response:
        event = await self._api_event(request)
        event_id = event.event_id
        own = await self.site.store.run_sql(lambda db: embedding.sql_origins(db, event_id))
        return web.json_response(self._embed_json(request, event, own))

    @route("PUT", "/api/v1/events/{event_id}/embed")
    async def api_set_embed(self, request: web.Request) -> web.Response:
        event = await self._api_event(request)
        body = await self._body(request, {"origins"})
        origins = body.get("origins")
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise _error(400, "invalid", _("origins must be a list of origins"))
        try:
            checked = embedding.parse_origins(origins)
        except ValueError as exc:
            raise _error(422, "invalid", str(exc)) from None
        event_id = event.event_id
        await self.site.store.run_sql(lambda db: embedding.sql_set_origins(db, event_id, checked))
        return web.json_response(self._embed_json(request, event, tuple(sorted(checked))))
