"""The bye reasons are one enum on the server, mirrored once in the browser's protocol.js."""

from __future__ import annotations

import re
from pathlib import Path

from webinar.rooms.reasons import FINAL, ByeReason

PROTOCOL_JS = Path(__file__).resolve().parents[2] / "web" / "static" / "js" / "protocol.js"


def _js_object(name: str) -> str:
    text = PROTOCOL_JS.read_text(encoding="utf-8")
    cast = r"(?:/\*\*.*?\*/\s*\()?"  # a JSDoc type cast around the value
    found = re.search(
        name + r"\s*=\s*" + cast + r"(?:Object\.freeze\(\{|new Set\(\[)(.*?)[\]}]\)", text, re.S
    )
    assert found, f"{name} not found in protocol.js"
    return found.group(1)


def test_protocol_js_mirrors_every_bye_reason() -> None:
    pairs = dict(re.findall(r'(\w+):\s*"([^"]+)"', _js_object("ByeReason")))
    assert pairs == {member.name: member.value for member in ByeReason}


def test_the_browser_gives_up_after_exactly_the_final_reasons() -> None:
    names = set(re.findall(r"ByeReason\.(\w+)", _js_object("FINAL_BYE")))
    assert names == {member.name for member in FINAL}
