"""Join-token keys and embedding on the dashboard: the *Join tokens* page and an event's
embed settings (the snippet and the sites allowed to frame it). The same through ``/api/v1``
is webinar.http.api.join_keys.

The keys and their check are webinar.ticketing.join_tokens, the allowed origins
webinar.ticketing.embedding; docs/api.md ("Signed join tokens", "Embedding") is the
integrator's side of both.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from webinar.http.site import Pages, Site, route
from webinar.i18n import _
from webinar.links import attendee_path
from webinar.storage.store import Event, SessionRecord, User
from webinar.ticketing import embedding
from webinar.ticketing.join_tokens import JoinKey, sql_add_key, sql_delete_key, sql_keys

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


@dataclass
class EmbedPages(Pages):
    """The *Join tokens* page and the event page's embed section."""

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
