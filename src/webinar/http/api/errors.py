"""The one error envelope of the JSON API: ``{"error": {"code", "message", ...}}``.

Handlers raise :func:`api_error`; :func:`middleware` makes sure that every answer under
``/api/v1/`` that is an error carries the envelope, whatever raised it: aiohttp's own 404 and
405 (no such path, wrong method), a body too large, a refusal in the older envelope
(``{"error": code, "message"}``) of code the API reuses, or an unexpected exception (500,
logged; the client gets no internals).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from webinar.i18n import _

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Where the envelope is guaranteed.
API_PREFIX = "/api/v1/"


def api_error(status: int, code: str, message: str, **extra: Any) -> web.HTTPException:
    """The API's error answer (raise it)."""
    body = json.dumps({"error": {"code": code, "message": message, **extra}}, ensure_ascii=False)
    exc = web.HTTPException(text=body, content_type="application/json")
    exc.set_status(status)
    if status == 401:
        exc.headers["WWW-Authenticate"] = 'Bearer realm="webinar"'
    return exc


def error_factory(status: int, code: str, message: str) -> web.HTTPException:
    """:func:`api_error` as the ``ErrorFactory`` of :mod:`webinar.http.inputs`."""
    return api_error(status, code, message)


def _code_for(status: int) -> str:
    return {
        400: "bad-request",
        401: "unauthorized",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        409: "conflict",
        413: "too-large",
        415: "unsupported-type",
        422: "invalid",
        429: "too-many-requests",
        503: "unavailable",
    }.get(status, "internal" if status >= 500 else "error")


def _default_message(status: int) -> str:
    if status == 404:
        return _("there is no such path in the API")
    if status == 405:
        return _("this path does not take that method")
    if status == 413:
        return _("the body is too large")
    if status >= 500:
        return _("the server could not answer; try again later")
    return _("the request was refused")


def _in_envelope(exc: web.HTTPException) -> web.HTTPException:
    """``exc`` as the API's envelope (unchanged if it is one already)."""
    status = exc.status
    text = exc.text or ""
    code, message, extra = _code_for(status), "", {}
    if exc.content_type == "application/json" and text:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            inner = body.get("error")
            if isinstance(inner, dict) and "code" in inner and "message" in inner:
                return exc  # the envelope already
            if isinstance(inner, str):  # the older {"error": code, "message": ...}
                code = inner
                message = str(body.get("message", ""))
                extra = {k: v for k, v in body.items() if k not in ("error", "message")}
    if not message:
        message = _default_message(status)
    fresh = api_error(status, code, message, **extra)
    for name in ("Allow", "WWW-Authenticate", "Retry-After"):
        if name in exc.headers:
            fresh.headers[name] = exc.headers[name]
    return fresh


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer under ``/api/v1/`` in the envelope (see the module's description)."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        raise _in_envelope(exc) from None
    except Exception:
        logger.exception("the API failed on %s %s", request.method, request.path)
        raise api_error(500, "internal", _default_message(500)) from None
