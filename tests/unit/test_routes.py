"""Page classes declare each route beside its handler (webinar.http.site.route)."""

from __future__ import annotations

from aiohttp import web

from webinar.http.site import Pages, route


class Example(Pages):
    @route("GET", "/things/{thing_id}")
    async def thing(self, request: web.Request) -> web.Response:
        return web.Response(text="thing")

    @route("GET", "/things/new")
    @route("POST", "/things")
    async def new(self, request: web.Request) -> web.Response:
        return web.Response(text="new")


def test_routes_are_collected_static_paths_first() -> None:
    pages = Example()
    found = [(r.method, r.path) for r in pages.routes()]  # type: ignore[attr-defined]
    # the handler's stacked routes as written (top first), static paths before dynamic ones
    assert found == [("GET", "/things/new"), ("POST", "/things"), ("GET", "/things/{thing_id}")]
    handlers = {r.handler for r in pages.routes()}  # type: ignore[attr-defined]
    assert handlers == {pages.thing, pages.new}
