"""No English text that people read is left unmarked in the Python code.

The catalog test (test_i18n_catalogs.py) checks that every *marked* string is translated, and
test_i18n_unmarked.py looks at the templates and the browser code; this one reads the Python
code (``ast``) for the places where a text is handed to a person:

- ``text=`` of an aiohttp ``web.HTTP*`` exception or response;
- the message of the JSON error helpers (``json_error``, the endpoints' own ``_json_error`` /
  ``_error``, the body readers' ``error(status, code, message)``);
- the message of the domain refusals (:data:`REFUSALS`), which the signalling connection and
  the pages pass on as they are;
- ``error=`` / ``done=`` of a page (a form's refusal or confirmation, rendered into it);
- a ``"message"`` of a JSON body (``web.json_response`` / ``json.dumps``).

Such a text is a string literal (or an f-string) only inside a marker: ``_()``,
``gettext()``, ``ngettext()``, ``N_()`` (also as ``i18n._()`` and the like). A marker's
message must itself be a plain literal: an f-string or a concatenation inside ``_()`` is
extracted as nothing (or as a message nobody can translate). A line that ends with
``# i18n-ignore`` is not checked (an operator's endpoint, like the CLI, stays English).

Not checked: the CLI and the configuration (``cli.py``, ``config.py``: the administrator's
tools), the media layer (``sfu/``: no texts for people), and ``i18n/`` itself.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "webinar"
EXCLUDED = ("cli.py", "config.py", "sfu/", "i18n/")
#: Files whose texts are being marked in another change: expected to fail until then (remove
#: a file from here once it passes).
PENDING: set[str] = set()

LETTERS = re.compile(r"[A-Za-z]{2,}")
#: The markers: a string inside one of these calls is extracted and translated.
MARKERS = {"_", "gettext", "ngettext", "pgettext", "N_"}
#: Markers whose message arguments must be literals (``gettext(x)`` translates a message
#: marked elsewhere with ``N_()``, so its argument may be a name).
LITERAL_MARKERS = {"_": 1, "N_": 1, "ngettext": 2}

#: Domain refusals and error helpers: callee name -> (position, keyword) of the message.
REFUSALS: dict[str, tuple[int, str]] = {
    # rooms/
    "RoomError": (1, "message"),
    "InteractionError": (1, "message"),
    "require": (2, "message"),  # rooms.interaction_errors.require(ok, code, message)
    "may_not": (1, "action"),  # rooms.roles.may_not(role, action): an N_() phrase
    "SfuError": (1, "message"),  # raised by the room, sent as it is
    # signalling/
    "ProtocolError": (1, "message"),
    "Unavailable": (0, "message"),
    "_refuse": (1, "message"),
    # ticketing/
    "Refusal": (1, "message"),
    "BookingRefused": (1, "message"),
    "DeskError": (0, "message"),
    "_wrong": (0, "message"),
    # http/
    "json_error": (2, "message"),
    "_json_error": (2, "message"),
    "_error": (2, "message"),
    "_back": (1, "message"),
    "api_error": (2, "message"),  # http/api/: the one API's envelope
    # storage/
    "TokenError": (1, "message"),
}
#: Keywords of page renderers and refusal helpers whose value people read.
PAGE_KEYWORDS = {"error", "done"}
#: Calls whose dict argument's "message" is shown (JSON error bodies).
JSON_BODIES = {"json_response", "dumps"}


@dataclass(frozen=True)
class Unmarked:
    path: str
    line: int
    where: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.where}: {self.text!r}"


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _is_marker(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _callee(node) in MARKERS


def _literal_text(node: ast.AST) -> str | None:
    """The text of a string literal or f-string that reads like words, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if LETTERS.search(node.value) else None
    if isinstance(node, ast.JoinedStr):
        parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
        text = "".join(str(p) for p in parts)
        return ast.unparse(node) if LETTERS.search(text) else None
    return None


def _unmarked_texts(node: ast.AST | None) -> list[tuple[int, str]]:
    """The English literals ``node`` hands on without a marker (line, text)."""
    if node is None or _is_marker(node):
        return []
    text = _literal_text(node)
    if text is not None:
        return [(getattr(node, "lineno", 0), text)]
    if isinstance(node, ast.IfExp):
        return _unmarked_texts(node.body) + _unmarked_texts(node.orelse)
    if isinstance(node, ast.BinOp):  # "..." % x, "..." + x, _("...") % {...}
        if isinstance(node.op, ast.Mod) and _is_marker(node.left):
            return []
        return _unmarked_texts(node.left) + _unmarked_texts(node.right)
    if isinstance(node, ast.BoolOp):  # a or "fallback"
        return [found for value in node.values for found in _unmarked_texts(value)]
    return []


def _argument(call: ast.Call, position: int, keyword: str) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if len(call.args) > position and not any(isinstance(a, ast.Starred) for a in call.args):
        return call.args[position]
    return None


def _messages_of(call: ast.Call) -> list[tuple[str, ast.AST | None]]:
    """The arguments of ``call`` that people read, with what they are."""
    name = _callee(call)
    found: list[tuple[str, ast.AST | None]] = []
    if name.startswith("HTTP"):  # web.HTTPNotFound(text=...), web.HTTPException(text=...)
        found += [(f"{name}(text=)", kw.value) for kw in call.keywords if kw.arg == "text"]
    if name in REFUSALS:
        position, keyword = REFUSALS[name]
        found.append((f"{name}()", _argument(call, position, keyword)))
    elif name == "error" and call.args:
        first = call.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, int):
            found.append(("error(status, code, message)", _argument(call, 2, "message")))
        else:  # session.error(code, message, request_id)
            found.append(("error(code, message)", _argument(call, 1, "message")))
    found += [(f"{name}({kw.arg}=)", kw.value) for kw in call.keywords if kw.arg in PAGE_KEYWORDS]
    if name in JSON_BODIES:
        for arg in call.args:
            for node in ast.walk(arg):
                if isinstance(node, ast.Dict):
                    for key, value in zip(node.keys, node.values, strict=True):
                        if isinstance(key, ast.Constant) and key.value == "message":
                            found.append((f'{name}({{"message": ...}})', value))
    return found


def _bad_marker(call: ast.Call) -> str | None:
    """Why a marker's message is no literal (an f-string, a concatenation), else None."""
    count = LITERAL_MARKERS.get(_callee(call))
    if count is None:
        return None
    for arg in call.args[:count]:
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return ast.unparse(arg)
    return None


def unmarked_in_source(source: str, path: str = "<source>") -> list[Unmarked]:
    ignored = {
        number
        for number, line in enumerate(source.splitlines(), start=1)
        if line.rstrip().endswith("# i18n-ignore")
    }
    found: list[Unmarked] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        bad = _bad_marker(node)
        if bad is not None and node.lineno not in ignored:
            found.append(Unmarked(path, node.lineno, f"{_callee(node)}() of no literal", bad))
        for where, argument in _messages_of(node):
            for line, text in _unmarked_texts(argument):
                if line not in ignored and node.lineno not in ignored:
                    found.append(Unmarked(path, line, where, text))
    return found


def _sources() -> list[object]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        name = path.relative_to(SRC).as_posix()
        if name.startswith(EXCLUDED):
            continue
        marks = [pytest.mark.xfail(reason="being marked elsewhere")] if name in PENDING else []
        found.append(pytest.param(path, id=name, marks=marks))
    return found


@pytest.mark.parametrize("path", _sources())
def test_python_hands_people_no_unmarked_text(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    found = unmarked_in_source(path.read_text(encoding="utf-8"), relative)
    assert not found, "text people read, not marked for translation:\n" + "\n".join(map(str, found))


def test_the_check_finds_unmarked_text() -> None:
    source = """
from aiohttp import web
from webinar.i18n import N_, _, gettext, ngettext

raise web.HTTPNotFound(text="No such thing.")
raise web.HTTPNotFound(text=_("No such thing."))
raise web.HTTPForbidden(text=f"No {thing} here.")
raise json_error(404, "not-found", "no such event")
raise json_error(404, "not-found", _("no such event"))
raise RoomError(RoomErrorCode.ENDED, "this event has ended")
raise RoomError(RoomErrorCode.ENDED, message=_("this event has ended"))
raise InteractionError(E.LIMIT, f"at most {n} polls")
raise InteractionError(E.LIMIT, ngettext("%(n)d poll", "%(n)d polls", n) % {"n": n})
raise Refusal(RefusalCode.REVOKED, "withdrawn" if x else _("gone"))
raise s.ProtocolError(s.ErrorCode.FORBIDDEN, i18n._("not you"))
raise error(400, "bad-json", "the body must be JSON")
self.error(s.ErrorCode.INTERNAL, "internal error", None)
page(request, error="Wrong user name or password.")
page(request, error=None, done=gettext(DONE))
web.json_response({"error": "bad-request", "message": "limit must be 1 to 1000"})
raise web.HTTPForbidden(text="Set admin.token first.")  # i18n-ignore
raise RoomError(RoomErrorCode.FORBIDDEN, _(f"a {role} may not {what}"))
REASONS = {"kicked": N_("A host removed you.")}
raise web.HTTPNotFound()
raise web.HTTPNotFound(text=page.text)
"""
    found = [(u.line, u.where) for u in unmarked_in_source(source)]
    assert found == [
        (5, "HTTPNotFound(text=)"),
        (7, "HTTPForbidden(text=)"),
        (8, "json_error()"),
        (10, "RoomError()"),
        (12, "InteractionError()"),
        (14, "Refusal()"),
        (16, "error(status, code, message)"),
        (17, "error(code, message)"),
        (18, "page(error=)"),
        (20, 'json_response({"message": ...})'),
        (22, "_() of no literal"),
    ]
