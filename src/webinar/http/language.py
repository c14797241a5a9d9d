"""The language of every request, the switcher's endpoint and the browser's catalogs.

Order (:func:`webinar.i18n.choose`): the person's own choice (the ``webinar_lang`` cookie the
switcher sets), then the event's language when the page belongs to an event whose organiser
set one (:func:`use_event_language`), then ``Accept-Language``, then English. The middleware
sets the language in effect for the handler, so ``_()`` in Python and templates translates
into it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from webinar import i18n

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

LANGUAGE = web.RequestKey("language", str)  # the language chosen for this request
COOKIE_MAX_AGE = 365 * 24 * 3600


def chosen(request: web.Request) -> str | None:
    """The language the person chose with the switcher, if any."""
    return i18n.supported(request.cookies.get(i18n.COOKIE))


def of_request(request: web.Request) -> str:
    found: str = request.get(LANGUAGE, i18n.DEFAULT)
    return found


def use_event_language(request: web.Request, event_language: str | None) -> str:
    """Re-choose this request's language now that its event is known."""
    lang = i18n.choose(chosen(request), event_language, request.headers.get("Accept-Language"))
    request[LANGUAGE] = lang
    i18n.set_current(lang)
    return lang


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    lang = i18n.choose(chosen(request), None, request.headers.get("Accept-Language"))
    request[LANGUAGE] = lang
    with i18n.using(lang):
        response = await handler(request)
    if "text/html" in (response.content_type or "") and "Vary" not in response.headers:
        response.headers["Vary"] = "Accept-Language, Cookie"
    return response


def _safe_next(target: str | None) -> str:
    """A path on this site to go back to (never another site)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or "\\" in target:
        return "/"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if not path.startswith("//") else "/"


class LanguageRoutes:
    """``POST /language`` (the switcher without JavaScript) and ``GET /i18n/{lang}.json``."""

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/language", self.choose),
            web.get("/i18n/{lang}.json", self.catalog),
        ]

    async def choose(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        lang = i18n.supported(str(form.get("lang", "")))
        if lang is None:
            raise web.HTTPBadRequest(text=i18n._("That language is not available."))
        referer = urlsplit(request.headers.get("Referer", ""))
        from_here = referer.path if referer.netloc == request.host else ""
        back = _safe_next(str(form.get("next", "")) or from_here)
        response = web.HTTPSeeOther(back)
        response.set_cookie(
            i18n.COOKIE, lang, max_age=COOKIE_MAX_AGE, path="/", samesite="Lax", httponly=False
        )
        raise response

    async def catalog(self, request: web.Request) -> web.StreamResponse:
        lang = request.match_info["lang"]
        if lang not in i18n.LANGUAGES:
            raise web.HTTPNotFound(text=i18n._("That language is not available."))
        compiled = i18n.compiled(lang)
        response = web.json_response(compiled.client)
        if request.query.get("v") == compiled.version:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def page_context(request: web.Request) -> dict[str, object]:
    """What ``base.html`` needs to speak the request's language."""
    lang = of_request(request)
    return {
        "lang": lang,
        "dir": i18n.direction(lang),
        "languages": [(code, i18n.NATIVE_NAMES[code]) for code in i18n.LANGUAGES],
        "catalog_url": f"/i18n/{lang}.json?v={i18n.compiled(lang).version}",
        "here": request.path_qs,
    }
