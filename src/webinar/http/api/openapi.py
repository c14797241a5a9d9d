"""The OpenAPI 3.1 description of the API, made from the route table and the Structs.

Nothing here is written by hand per endpoint: each :class:`~.table.Operation` gives its
path, method, scope, summary, statuses, query parameters, request and response types, and
``msgspec.json.schema_components`` turns the types into JSON Schema (OpenAPI 3.1 uses JSON
Schema 2020-12). The deprecated paths (:mod:`.legacy`) are listed as deprecated.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import msgspec

from webinar import __version__
from webinar.http.api import schema as s
from webinar.http.api.legacy import LEGACY, SUNSET_ON, Legacy
from webinar.http.api.table import Operation

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{name}"
_PARAM = re.compile(r"\{([^}]+)\}")

#: Path parameters, by name.
PATH_PARAMETERS: dict[str, tuple[dict[str, Any], str]] = {
    "event_id": (
        {"type": "string", "pattern": r"^\d{3}-?\d{3}-?\d{3}$", "examples": ["123-456-789"]},
        "The 9-digit event ID, with or without dashes.",
    ),
    "registration_id": ({"type": "integer", "minimum": 1}, "A registration's ID."),
    "invitee_id": ({"type": "integer", "minimum": 1}, "An invitee's ID."),
    "import_id": (
        {"type": "string", "pattern": "^imp_[A-Za-z0-9_-]{16}$"},
        "A CSV import's ID (its preview's import_id).",
    ),
    "poll_id": ({"type": "string", "examples": ["po_0123456789abcdef"]}, "A poll's ID."),
    "prepared_id": ({"type": "string"}, "A prepared call-to-action's ID."),
    "kind": (
        {
            "type": "string",
            "enum": ["chat", "questions", "polls", "scores", "cta", "engagement", "sessions"],
        },
        "Which export.",
    ),
    "recording_id": (
        {"type": "string", "pattern": "^rec_[0-9a-f]{12}$"},
        "A recording's ID.",
    ),
    "name": ({"type": "string"}, "A file name of the recording's files."),
    "content_id": (
        {"type": "string", "pattern": "^cnt_[0-9a-f]{24}$"},
        "An uploaded file's ID.",
    ),
    "publication_id": ({"type": "string"}, "A published link's ID."),
    "endpoint_id": ({"type": "integer", "minimum": 1}, "A webhook endpoint's ID."),
    "delivery_id": ({"type": "string", "examples": ["whd_3f2a9c0e1b7d44aa5e61"]}, "A delivery."),
    "token_id": ({"type": "string", "examples": ["tok_3f2a9c0e1b7d44aa"]}, "A token's ID."),
    "key_id": (
        {"type": "string", "examples": ["jk_3f2a9c0e1b7d44aa"]},
        "A join-token key's ID (the kid of the tokens it signs).",
    ),
    "user_id": ({"type": "integer", "minimum": 1}, "An account's ID (a co-organiser)."),
    "presenter_id": ({"type": "integer", "minimum": 1}, "A presenter's ID on the event."),
    "image": (
        {"type": "string", "enum": ["logo", "background"]},
        "Which branding image: the logo or the lobby and room background.",
    ),
}

DESCRIPTION = """\
The JSON API of a self-hosted webinar server: everything an organiser does on the dashboard.

**Authentication.** Every operation except this description takes
`Authorization: Bearer <token>`: an API token (`wbt_…`, made on the dashboard's *API tokens*
page, with `webinar token create`, or with `POST /api/v1/tokens`) or the server's configured
`admin.token`. A token has a scope: `read` looks, `write` also changes, `admin` also manages
tokens (admin accounts only; `admin.token` is an admin token of no account). An organiser's
token reaches that organiser's events, an admin's every event; another's event answers 404.
A token without the scope an operation needs gets 403 `insufficient-scope`.

**Errors** are `{"error": {"code", "message", ...}}`: `code` for programs, `message` for people
(in the language of `Accept-Language` or the `webinar_lang` cookie).

**Lists** take `?limit=` (1-1000, default 100) and `?cursor=` and answer
`{"items": [...], "next_cursor": ...}`; `next_cursor` is null on the last page.

**Deprecated** paths (`/api/admin/...`, `/api/recordings`, `/api/stats/...`, `/api/events/...`)
answer as before until their `Sunset` date, with `Deprecation`, `Sunset` and `Link` headers
naming their successor here.
"""


def _parameters(path: str, query: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name in _PARAM.findall(path):
        schema, description = PATH_PARAMETERS[name]
        found.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": schema,
                "description": description,
            }
        )
    for q in query:
        found.append(
            {
                "name": q.name,
                "in": "query",
                "required": q.required,
                "schema": q.schema,
                "description": q.description,
            }
        )
    return found


def _ref(kind: type) -> dict[str, str]:
    return {"$ref": _REF.format(name=kind.__name__)}


def _error(status: int, legacy: bool = False) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {"application/json": {"schema": _ref(s.LegacyError if legacy else s.Error)}},
    }


def _success(status: int, response: type | None, media: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if response is not None:
        answer["content"] = {"application/json": {"schema": _ref(response)}}
    elif media is not None:
        answer["content"] = {media: {"schema": {"type": "string", "contentMediaType": media}}}
    return answer


def _operation(op: Operation) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.handler_name,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.description:
        doc["description"] = op.description
    parameters = _parameters(op.path, op.query)
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    elif op.raw_body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {
                op.raw_body: {
                    "schema": {
                        "type": "string",
                        "contentMediaType": "image/*" if op.path.endswith("/images") else "*/*",
                    }
                }
            },
        }
    responses = {str(op.status): _success(op.status, op.response, op.media)}
    errors = set(op.errors)
    if op.scope is not None:
        errors |= {400, 401, 403}
        doc["security"] = [{"bearerAuth": [op.scope.value]}]
        if op.presenter_key:
            doc["security"].append({"presenterKey": []})
        doc["x-scope"] = op.scope.value
    else:
        doc["security"] = []
    for status in sorted(errors):
        responses[str(status)] = _error(status)
    doc["responses"] = responses
    return doc


def _legacy(entry: Legacy) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": "legacy_"
        + re.sub(r"[^a-z0-9]+", "_", f"{entry.method} {entry.path}".lower()).strip("_"),
        "summary": f"{entry.summary} (deprecated: use {entry.successor})",
        "description": f"Answers as it did, with its older error envelope, until "
        f"{SUNSET_ON:%Y-%m-%d}; then it is gone. Use `{entry.method} {entry.successor}`.",
        "tags": ["Deprecated"],
        "deprecated": True,
        "security": [{name: []} for name in entry.security],
    }
    parameters = _parameters(entry.path)
    if parameters:
        doc["parameters"] = parameters
    if entry.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(entry.body)}},
        }
    elif entry.raw_body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {entry.raw_body: {"schema": {"type": "string"}}},
        }
    ok: dict[str, Any] = {"description": HTTPStatus(entry.status).phrase}
    media = entry.media or "application/json"
    ok["content"] = {media: {"schema": {"type": "object"} if media.endswith("json") else {}}}
    doc["responses"] = {
        str(entry.status): ok,
        **{str(code): _error(code, legacy=True) for code in (400, 401, 403, 404)},
    }
    return doc


def document(operations: list[Operation], legacy: tuple[Legacy, ...] = LEGACY) -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``operations`` (and the deprecated paths)."""
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    for entry in legacy:
        paths.setdefault(entry.path, {})[entry.method.lower()] = _legacy(entry)
    kinds = {*s.ALL}
    for op in operations:
        kinds |= {k for k in (op.body, op.response) if k is not None}
    _refs, components = msgspec.json.schema_components(
        sorted(kinds, key=lambda k: k.__name__), ref_template=_REF
    )
    tags: list[str] = []
    for op in operations:
        if op.tag not in tags:
            tags.append(op.tag)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Webinar API",
            "version": __version__,
            "description": DESCRIPTION,
        },
        "servers": [{"url": "/", "description": "This server"}],
        "tags": [{"name": tag} for tag in [*tags, "Deprecated"]],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (wbt_…) or the configured admin.token; "
                    "the scopes an operation lists are what its token must allow.",
                },
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Deprecated paths: the configured admin.token.",
                },
                "presenterKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Presenter-Key",
                    "description": "The event's presenter or host key (the presenter's page).",
                },
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "webinar_session",
                    "description": "Deprecated paths: the dashboard's sign-in.",
                },
            },
        },
    }
