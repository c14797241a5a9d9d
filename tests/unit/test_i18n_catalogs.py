"""Every marked string is translated into every language we ship (docs/translating.md).

The test extracts the marked strings of the Python code, the templates and the browser code
exactly as ``scripts/i18n update`` does, and compares them with each language's ``.po``: a
string a language lacks, leaves empty or fuzzy, or whose plural forms are incomplete fails
here, so a new feature cannot land English-only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from webinar import i18n
from webinar.i18n.catalogs import extract, missing

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template():  # type: ignore[no-untyped-def]
    return extract(ROOT)


def test_the_extraction_finds_the_product_s_strings(template) -> None:  # type: ignore[no-untyped-def]
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    # one from each kind of source: Python, a page template, an e-mail, the browser code
    assert "That language is not available." in ids
    assert "Skip to content" in ids
    assert len(ids) > 300


def test_every_language_translates_every_string(template) -> None:  # type: ignore[no-untyped-def]
    gaps = missing(template)
    report = "\n".join(str(g) for g in gaps[:60])
    assert not gaps, (
        f"{len(gaps)} strings are not translated (run scripts/i18n update, translate, and "
        f"see docs/translating.md):\n{report}"
    )


PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


@pytest.mark.parametrize("language", [lang for lang in i18n.LANGUAGES if lang != "en"])
def test_translations_keep_every_placeholder(language: str) -> None:
    """A translation that drops or misspells ``%(name)s`` / ``{name}`` would show a raw
    placeholder or crash the formatting."""
    with i18n.po_path(language).open("rb") as fp:
        catalog = read_po(fp, locale=language)
    wrong = []
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        want = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
        for text in strings:
            have = set(PLACEHOLDER.findall(text))
            # a plural form may leave the count out ("один участник"), nothing else
            if not have <= want or not (want - {"%(num)d", "{n}"}) <= have:
                wrong.append((ids[0], text))
    assert not wrong, "\n".join(f"{i!r} -> {s!r}" for i, s in wrong[:30])


@pytest.mark.parametrize("language", [lang for lang in i18n.LANGUAGES if lang != "en"])
def test_the_browser_catalog_maps_every_plural_category(language: str) -> None:
    with i18n.po_path(language).open("rb") as fp:
        data = i18n.client_catalog(read_po(fp, locale=language), language)
    plurals = {k: v for k, v in data["messages"].items() if isinstance(v, dict)}
    for forms in plurals.values():
        assert {"one", "few", "many", "other"} <= set(forms)
    json.dumps(data)  # serialisable as served


@pytest.mark.parametrize("language", [lang for lang in i18n.LANGUAGES if lang != "en"])
def test_translations_add_no_markup(language: str) -> None:
    """Templates trust a translation as HTML (Jinja's new-style gettext escapes only the
    arguments), and it lands in attributes too: a translation may not bring ``< > & "`` its
    English message does not have. Quotes in Russian are «», in Czech „“."""
    with i18n.po_path(language).open("rb") as fp:
        catalog = read_po(fp, locale=language)
    wrong = []
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = "".join(message.id if isinstance(message.id, tuple) else (message.id,))
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            if any(ch in text and ch not in ids for ch in '<>&"'):
                wrong.append((ids, text))
    assert not wrong, "\n".join(f"{i!r} -> {s!r}" for i, s in wrong[:30])
