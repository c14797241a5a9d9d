"""No English text that is not marked for translation, in the templates or the browser code.

The catalog test (test_i18n_catalogs.py) checks that every *marked* string is translated;
these checks find text that was never marked:

- templates: every text node and every readable attribute (title, alt, placeholder,
  aria-label, a button's value) must come from ``_()``/``ngettext()``, and no string literal
  inside ``{{ }}`` / ``{% %}`` may read like words unless it is a message;
- browser code: a string literal that reads like words (two words with a space between, or a
  capitalised word) must be a message (``t``, ``nt``, ``setText``), a log line, or end its
  line with ``// i18n-ignore`` (docs/translating.md).
"""

from __future__ import annotations

import re
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "web" / "templates"
SCRIPTS = ROOT / "web" / "static" / "js"

LETTERS = re.compile(r"[A-Za-z]{2,}")
WORDS = re.compile(r"[A-Za-z]{2,}[.,:;!?'’…)-]*\s+\(?[A-Za-z]{2,}")
CAPITALISED = re.compile(r"^[A-Z][a-z]{2,}")

# ---------------------------------------------------------------------------- templates

_EXPR = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}|\{#.*?#\}", re.S)
_MESSAGE_CALL = re.compile(
    r"""\b(?:_|gettext|ngettext|pgettext|N_)\(\s*(?:(["'])(?:\\.|(?!\1).)*\1\s*,?\s*){1,3}"""
)
_LITERAL = re.compile(r"""(["'])((?:\\.|(?!\1).)*)\1""")
READABLE_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label"}
# Statements whose literals are names, not text.
_NAME_STATEMENTS = re.compile(r"^\s*-?\s*(extends|include|import|from|block|endblock|macro)\b")


def _literals_read_like_text(expression: str) -> list[str]:
    rest = _MESSAGE_CALL.sub(" ", expression)
    found = []
    for _quote, text in _LITERAL.findall(rest):
        if WORDS.search(text) or CAPITALISED.match(text):
            found.append(text)
    return found


class _TextFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        values = dict(attrs)
        for name, value in attrs:
            if value and name in READABLE_ATTRIBUTES and _reads_like_text(value):
                self.found.append(f'<{tag} {name}="{value}">')
        if tag == "input" and values.get("type") in {"submit", "button", "reset"}:
            value = values.get("value") or ""
            if LETTERS.search(value):
                self.found.append(f'<input value="{value}">')

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and LETTERS.search(data):
            self.found.append(data.strip())


_ATTRIBUTE_BLOCK = re.compile(r"\{%-?\s*block body_attrs\s*-?%\}.*?\{%-?\s*endblock", re.S)


def _reads_like_text(value: str) -> bool:
    """Letters, and not a URL or an address (``https://``, ``name@example.com``)."""
    return bool(LETTERS.search(value)) and "://" not in value and "@" not in value


def unmarked_in_template(source: str, *, html: bool) -> list[str]:
    found: list[str] = []
    source = _ATTRIBUTE_BLOCK.sub("", source)  # attributes of <body>, not text
    for match in _EXPR.finditer(source):
        expression = match.group(1) or match.group(2)
        if expression is None:
            continue
        if match.group(2) is not None and _NAME_STATEMENTS.match(expression):
            continue
        found.extend(_literals_read_like_text(expression))
    # Each expression becomes one neutral character: what is left is the template's own text.
    plain = _EXPR.sub("\x00", source)
    if html:
        finder = _TextFinder()
        finder.feed(plain)
        finder.close()
        found.extend(finder.found)
    else:
        found.extend(line.strip() for line in plain.splitlines() if LETTERS.search(line))
    return found


def _templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in {".html", ".txt"})


@pytest.mark.parametrize("path", _templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_no_unmarked_text(path: Path) -> None:
    found = unmarked_in_template(path.read_text(encoding="utf-8"), html=path.suffix == ".html")
    assert not found, f"{path.relative_to(ROOT)} shows text not marked with _(): {found[:20]}"


def test_the_template_check_finds_unmarked_text() -> None:
    source = (
        '<p title="Leave the room">Hello</p> {{ _("Marked text") }} '
        '{{ "Presenter" if x else _("Host") }} <input type="submit" value="Send"> '
        '<script>var a = "Not text";</script>{% include "language.html" %}'
    )
    assert unmarked_in_template(source, html=True) == [
        "Presenter",
        '<p title="Leave the room">',
        "Hello",
        '<input value="Send">',
    ]


# ---------------------------------------------------------------------------- browser code

# Calls whose string arguments are messages or are not shown to people.
_MESSAGE_CALLEES = {"t", "nt", "setText"}
_QUIET_CALLEES = {
    "console.log",
    "console.warn",
    "console.error",
    "console.info",
    "console.debug",
    "Error",
    "TypeError",
    "RangeError",
    "querySelector",
    "querySelectorAll",
    "closest",
    "matches",
    "addEventListener",
    "removeEventListener",
}
# Identifiers that read like words but are key names, codec names and the like.
_NAMES = {
    "Enter",
    "Escape",
    "Space",
    "Tab",
    "Backspace",
    "Delete",
    "ArrowLeft",
    "ArrowRight",
    "ArrowUp",
    "ArrowDown",
    "Home",
    "End",
    "PageUp",
    "PageDown",
    "Content-Type",
    "Authorization",
    "Accept",
    "Accept-Language",
    "NotAllowedError",
    "NotFoundError",
    "NotReadableError",
    "OverconstrainedError",
    "AbortError",
    "SecurityError",
    "TypeError",
    "InvalidStateError",
    "NotSupportedError",
    "TimeoutError",
    "Webinar",  # the product's name in log lines; its visible uses are messages
}


def _tokens(source: str):  # type: ignore[no-untyped-def]
    from babel.messages import jslexer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return list(jslexer.tokenize(source, dotted=True, template_string=True))


def _unquote(token: str) -> str:
    return token[1:-1]


def unmarked_in_script(source: str) -> list[tuple[int, str]]:
    ignored = {
        number
        for number, line in enumerate(source.splitlines(), start=1)
        if line.rstrip().endswith("// i18n-ignore")
    }
    found: list[tuple[int, str]] = []
    callees: list[str] = []  # the callee of each open parenthesis ("" for grouping)
    previous = before = None
    for token in _tokens(source):
        if token.type in {"linecomment", "multilinecomment"}:
            continue
        if token.type == "operator" and token.value == "(":
            callee = previous.value if previous is not None and previous.type == "name" else ""
            callees.append(callee.rsplit(".", 1)[-1] if callee.startswith("document.") else callee)
        elif token.type == "operator" and token.value == "{":
            callees.append("{")  # a block or object: what is inside is no call's argument
        elif token.type == "operator" and token.value in {")", "}"}:
            if callees:
                callees.pop()
        elif token.type in {"string", "template_string"}:
            text = _unquote(token.value)
            reads_like_text = bool(WORDS.search(text) or CAPITALISED.match(text))
            # Only the innermost call counts: a string in a callback passed to
            # addEventListener(...) is no argument of addEventListener.
            c = callees[-1] if callees else ""
            quiet = (
                c in _MESSAGE_CALLEES
                or c in _QUIET_CALLEES
                or c.rsplit(".", 1)[-1] in _QUIET_CALLEES
                or ".classList." in c
                or _class_names(previous, before)
            )
            if reads_like_text and not quiet and text not in _NAMES and token.lineno not in ignored:
                found.append((token.lineno, text))
        before, previous = previous, token
    return found


def _class_names(previous, before) -> bool:  # type: ignore[no-untyped-def]
    """A string assigned to ``x.className`` or given as ``class:`` / ``className:``."""
    if previous is None or before is None or before.type != "name":
        return False
    if previous.value == "=":
        return str(before.value).endswith(".className")
    return previous.value == ":" and before.value in {"class", "className"}


def _scripts() -> list[Path]:
    return sorted(SCRIPTS.rglob("*.js"))


@pytest.mark.parametrize("path", _scripts(), ids=lambda p: str(p.relative_to(SCRIPTS)))
def test_browser_code_has_no_unmarked_text(path: Path) -> None:
    found = unmarked_in_script(path.read_text(encoding="utf-8"))
    listing = "\n".join(f"  line {line}: {text!r}" for line, text in found[:25])
    assert not found, (
        f"{path.relative_to(ROOT)} has text not marked with t()/nt() "
        f"(or not shown to people: end the line with // i18n-ignore):\n{listing}"
    )


def test_the_script_check_finds_unmarked_text() -> None:
    source = "\n".join(
        [
            'a.textContent = "Raise hand";',
            'b.textContent = t("Lower hand");',
            'console.warn("Something went wrong", error);',
            'if (event.key === "Enter") send();',
            'el.className = "btn btn-small";',
            "toast(`Chat could not load: ${why}`);",
            'log("Not for people"); // i18n-ignore',
            'setText(el, "Waiting for the presenter…");',
            'b.addEventListener("click", () => { b.title = "Copied to clipboard"; });',
            'x = nt("{n} person", "{n} people", n);',
        ]
    )
    assert unmarked_in_script(source) == [
        (1, "Raise hand"),
        (6, "Chat could not load: ${why}"),
        (9, "Copied to clipboard"),
    ]
