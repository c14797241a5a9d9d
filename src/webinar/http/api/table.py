"""The API's route table: each handler declares its operation beside it.

:func:`operation` records the method, path, scope, summary, statuses and the request and
response types (msgspec Structs, :mod:`.schema`) of a handler; :class:`ApiPages` turns the
declared operations into aiohttp routes whose handler authenticates the caller, checks the
scope, decodes and validates the body, calls the handler and encodes what it returns. The
OpenAPI description (:mod:`.openapi`) is made from the same table, so the two cannot differ.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from webinar.http.api.auth import Authenticator, Caller
from webinar.http.api.errors import api_error, error_factory
from webinar.http.inputs import read_json
from webinar.i18n import _
from webinar.storage.api_tokens import Scope

T = TypeVar("T")
_OPERATION_ATTR = "_webinar_api_operation"
_declared = itertools.count()
#: Largest JSON body unless an operation says otherwise.
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Query:
    """A query parameter an operation reads."""

    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


#: ``?limit=&cursor=`` of every list.
PAGE_QUERY = (
    Query(
        "limit",
        "How many items per page (1-1000, default 100).",
        {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    ),
    Query("cursor", "The `next_cursor` of the previous page; none for the first page."),
)


@dataclass(frozen=True, slots=True)
class Operation:
    """One documented operation of the API."""

    method: str
    path: str
    #: What the caller's token must allow; None: no token (public).
    scope: Scope | None
    summary: str
    tag: str
    #: The answer on success.
    status: int = 200
    #: The answer's body: a msgspec Struct type (JSON), or None (no body, or ``media``).
    response: type | None = None
    #: The answer's media type when it is not JSON (``text/csv``, ``video/webm``, ...).
    media: str | None = None
    #: The request's JSON body: a msgspec Struct type, decoded and validated before the
    #: handler runs (unknown fields are refused).
    body: type | None = None
    query: tuple[Query, ...] = ()
    #: Error statuses the handler may answer besides 400/401/403 (documented with the
    #: error envelope).
    errors: tuple[int, ...] = ()
    description: str = ""
    #: Also accepted: the event's presenter or host key in ``X-Presenter-Key``.
    presenter_key: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    #: A raw (non-JSON) request body of this media type (poll images).
    raw_body: str | None = None
    handler_name: str = ""
    order: int = 0


@dataclass(slots=True)
class Call:
    """What the route's wrapper hands a handler: who calls, and the decoded body."""

    caller: Caller | None
    body: Any = None

    def who(self) -> Caller:
        """The authenticated caller (every operation with a scope has one)."""
        assert self.caller is not None
        return self.caller

    def body_as(self, kind: type[T]) -> T:
        assert isinstance(self.body, kind)
        return self.body


ApiHandler = Callable[..., Awaitable[Any]]
_Handler = TypeVar("_Handler", bound=ApiHandler)


def operation(
    method: str,
    path: str,
    *,
    scope: Scope | None,
    summary: str,
    tag: str,
    status: int = 200,
    response: type | None = None,
    media: str | None = None,
    body: type | None = None,
    query: tuple[Query, ...] = (),
    errors: tuple[int, ...] = (),
    description: str = "",
    presenter_key: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    raw_body: str | None = None,
) -> Callable[[_Handler], _Handler]:
    """Declare the API operation a handler of an :class:`ApiPages` class serves."""
    order = next(_declared)

    def mark(handler: _Handler) -> _Handler:
        declared = Operation(
            method=method,
            path=path,
            scope=scope,
            summary=summary,
            tag=tag,
            status=status,
            response=response,
            media=media,
            body=body,
            query=query,
            errors=errors,
            description=description,
            presenter_key=presenter_key,
            max_body_bytes=max_body_bytes,
            raw_body=raw_body,
            handler_name=handler.__name__,
            order=order,
        )
        setattr(handler, _OPERATION_ATTR, declared)
        return handler

    return mark


def encode(value: Any, status: int = 200) -> web.Response:
    """A JSON answer from a Struct (or any value msgspec encodes)."""
    return web.Response(
        body=msgspec.json.encode(value), status=status, content_type="application/json"
    )


def _where(error: msgspec.ValidationError) -> str:
    text = str(error)
    return text.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in text else "$"


async def decode_body(request: web.Request, kind: type[T], max_bytes: int) -> T:
    """The request's JSON body as ``kind``: 400 ``bad-json`` when it is not a JSON object,
    400 ``unknown-field`` for a field the type does not have, 422 ``invalid`` for a value of
    the wrong type (the error names where)."""
    raw = await read_json(request, error_factory, max_bytes=max_bytes, empty={})
    if not isinstance(raw, dict):
        raise api_error(400, "bad-json", _("the body must be a JSON object"))
    try:
        return msgspec.convert(raw, kind, strict=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if text.startswith("Object contains unknown field"):
            field_name = text.split("`")[1] if "`" in text else "?"
            raise api_error(
                400,
                "unknown-field",
                _("unknown field %(field)s") % {"field": repr(field_name)},
                field=field_name,
            ) from None
        where = _where(exc)
        raise api_error(
            422,
            "invalid",
            _("%(where)s: %(problem)s") % {"where": where, "problem": text.split(" - at ")[0]},
            at=where,
        ) from None


class ApiPages:
    """A class of API handlers that carry their operations (:func:`operation`)."""

    auth: Authenticator

    def operations(self) -> list[Operation]:
        found: list[Operation] = []
        for cls in type(self).__mro__:
            for value in vars(cls).values():
                declared = getattr(value, _OPERATION_ATTR, None)
                if isinstance(declared, Operation):
                    found.append(declared)
        found.sort(key=lambda op: (op.path.count("{"), op.order))
        return found

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route(op.method, op.path, self._wrap(op, getattr(self, op.handler_name)))
            for op in self.operations()
        ]

    def _wrap(
        self, op: Operation, handler: ApiHandler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            caller = None
            if op.scope is not None:
                if op.presenter_key and "X-Presenter-Key" in request.headers:
                    caller = None  # the handler checks the key against the event
                else:
                    caller = await self.auth.caller(request)
                    self.auth.require(caller, op.scope)
            body: Any = None
            if op.body is not None:
                body = await decode_body(request, op.body, op.max_body_bytes)
            result = await handler(request, Call(caller, body))
            if isinstance(result, web.StreamResponse):
                return result
            if result is None:
                return web.Response(status=op.status if op.status == 204 else 204)
            return encode(result, op.status)

        serve.__name__ = op.handler_name
        return serve
