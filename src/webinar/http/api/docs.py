"""``/api/openapi.json`` (the description) and ``/api/docs`` (the same, as a page).

The page is rendered on the server from the description, so it needs no script (the pages'
Content-Security-Policy allows scripts from this origin only) and cannot say anything the
description does not. Its headings are in the reader's language; the description itself is
English, like the API's names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from markupsafe import Markup, escape

from webinar.http.api.table import ApiPages, Call, operation

TAG = "Description"
Render = Callable[..., web.Response]
_METHODS = ("get", "post", "put", "patch", "delete")


def type_text(schema: dict[str, Any]) -> str:
    """A schema as a short type name: ``string``, ``Event``, ``array of Poll``,
    ``integer | null``."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(type_text(part) for part in schema["anyOf"])
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, dict):
            return "array of " + type_text(items)
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return "[" + ", ".join(type_text(p) for p in prefix) + "]"
        return "array"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of " + type_text(schema["additionalProperties"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    return str(kind or "any")


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("pattern", "matches"),
    ):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "default" in schema:
        parts.append(f"default {json.dumps(schema['default'])}")
    return ", ".join(parts)


_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*([^*]+)\*\*")
_EMPHASIS = re.compile(r"\*([^*]+)\*")


def prose(text: str) -> Markup:
    """The description's Markdown, the little of it that it uses: `code`, **strong**,
    *emphasis* (everything else is escaped text)."""
    html = str(escape(text))
    html = _CODE.sub(r"<code>\1</code>", html)
    html = _STRONG.sub(r"<strong>\1</strong>", html)
    html = _EMPHASIS.sub(r"<em>\1</em>", html)
    return Markup(html)  # built from escaped text


def _anchor(name: str) -> str:
    return "schema-" + name


def page_model(spec: dict[str, Any]) -> dict[str, Any]:
    """What the template shows: operations grouped by tag, and every schema."""
    groups: dict[str, list[dict[str, Any]]] = {tag["name"]: [] for tag in spec.get("tags", [])}
    for path, item in spec["paths"].items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            body = None
            if "requestBody" in op:
                media, content = next(iter(op["requestBody"]["content"].items()))
                body = {"media": media, "type": type_text(content.get("schema", {}))}
            responses = []
            for status, answer in op["responses"].items():
                content = answer.get("content", {})
                media = next(iter(content), None)
                schema = content[media].get("schema", {}) if media else {}
                responses.append(
                    {
                        "status": status,
                        "description": answer.get("description", ""),
                        "media": media,
                        "type": type_text(schema) if media == "application/json" else "",
                    }
                )
            groups.setdefault(op["tags"][0], []).append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": prose(op.get("description", "")),
                    "scope": op.get("x-scope"),
                    "security": [next(iter(req)) for req in op.get("security", [])],
                    "deprecated": op.get("deprecated", False),
                    "parameters": [
                        {
                            "name": p["name"],
                            "in": p["in"],
                            "required": p.get("required", False),
                            "type": type_text(p["schema"]),
                            "description": p.get("description", ""),
                            "constraints": _constraints(p["schema"]),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": body,
                    "responses": responses,
                }
            )
    schemas = []
    for name, schema in sorted(spec["components"]["schemas"].items()):
        required = set(schema.get("required", ()))
        schemas.append(
            {
                "name": name,
                "anchor": _anchor(name),
                "description": schema.get("description", ""),
                "type": type_text(schema) if schema.get("type") != "object" else "object",
                "fields": [
                    {
                        "name": field,
                        "type": type_text(value),
                        "required": field in required,
                        "description": value.get("description", ""),
                        "constraints": _constraints(value),
                        "deprecated": value.get("deprecated", False),
                    }
                    for field, value in schema.get("properties", {}).items()
                ],
            }
        )
    return {
        "info": spec["info"],
        "intro": [prose(part) for part in spec["info"]["description"].split("\n\n")],
        "groups": [(tag, ops) for tag, ops in groups.items() if ops],
        "schemas": schemas,
        "schema_names": {s["name"] for s in schemas},
    }


class DocsApi(ApiPages):
    def __init__(self, render: Render, spec: Callable[[], dict[str, Any]]) -> None:
        self._render = render
        self._spec = spec
        self._text: bytes | None = None

    @operation(
        "GET",
        "/api/openapi.json",
        scope=None,
        summary="This description",
        description="OpenAPI 3.1, made from the server's own route table and types.",
        tag=TAG,
        media="application/json",
    )
    async def openapi(self, _request: web.Request, _call: Call) -> web.Response:
        if self._text is None:
            self._text = json.dumps(self._spec(), ensure_ascii=False, indent=1).encode()
        return web.Response(
            body=self._text,
            content_type="application/json",
            headers={"Cache-Control": "no-cache"},
        )

    @operation(
        "GET",
        "/api/docs",
        scope=None,
        summary="This description as a page",
        tag=TAG,
        media="text/html",
    )
    async def docs(self, request: web.Request, _call: Call) -> web.Response:
        return self._render(request, "api_docs.html", api=page_model(self._spec()))
