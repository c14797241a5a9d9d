"""Catalog upkeep from a checkout: extract the marked strings, update the ``.po`` files,
compile them, and check that every language translates every string.

    python -m webinar.i18n.catalogs extract   # write build/messages.pot
    python -m webinar.i18n.catalogs update    # merge it into every language's .po
    python -m webinar.i18n.catalogs compile   # .mo and client.json beside each .po
    python -m webinar.i18n.catalogs check     # what is missing, per language (exit 1 if any)
    python -m webinar.i18n.catalogs init xx   # start a new language

``scripts/i18n`` runs these with the project's virtualenv. Extraction reads ``babel.cfg``
(which files, which extractor) and :data:`KEYWORDS` (which calls mark a string).
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from webinar.i18n import DOMAIN, LANGUAGES, LOCALE_DIR, compile_language, po_path

#: The calls that mark a string: gettext's own names, and the browser code's t() / nt() /
#: setText(element, message).
KEYWORDS = {**DEFAULT_KEYWORDS, "t": None, "nt": (1, 2), "setText": (2,)}
COMMENT_TAGS = ("TRANSLATORS:",)


def repository() -> Path:
    """The checkout this package runs from (src/webinar/i18n → the repository root)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "babel.cfg").is_file():
        raise SystemExit(f"babel.cfg not found under {root}: run this from a checkout")
    return root


def extract(root: Path | None = None) -> Catalog:
    """Every marked string of the Python code, the templates and the browser code."""
    root = root or repository()
    with (root / "babel.cfg").open(encoding="utf-8") as fp:
        method_map, options_map = parse_mapping_cfg(fp)  # type: ignore[no-untyped-call]
    catalog = Catalog(project="webinar", domain=DOMAIN, charset="utf-8", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        root,
        method_map,
        options_map,
        keywords=KEYWORDS,
        comment_tags=COMMENT_TAGS,
        strip_comment_tags=True,
        directory_filter=_wanted,
    ):
        catalog.add(
            message,
            None,
            [(filename, lineno)],
            auto_comments=comments,
            context=context,
        )
    return catalog


def _wanted(dirpath: str) -> bool:
    name = Path(dirpath).name
    return not name.startswith(".") and name not in {"node_modules", "build", "dist", "tests"}


@dataclass(frozen=True)
class Missing:
    language: str
    message: str
    why: str  # "absent", "untranslated", "fuzzy", "plural form missing"

    def __str__(self) -> str:
        return f"{self.language}: {self.why}: {self.message!r}"


def missing(template: Catalog, root: Path = LOCALE_DIR) -> list[Missing]:
    """Every message of ``template`` a language lacks or leaves untranslated."""
    found: list[Missing] = []
    for language in LANGUAGES:
        if language == "en":
            continue
        path = po_path(language, root)
        if not path.is_file():
            found.append(Missing(language, str(path), "no catalog"))
            continue
        with path.open("rb") as fp:
            catalog = read_po(fp, locale=language, domain=DOMAIN)
        for message in template:
            if not message.id:
                continue
            translated = catalog.get(message.id, message.context)
            key = message.id[0] if isinstance(message.id, tuple) else message.id
            if translated is None:
                found.append(Missing(language, str(key), "absent"))
            elif translated.fuzzy:
                found.append(Missing(language, str(key), "fuzzy"))
            elif isinstance(message.id, tuple):
                forms = translated.string if isinstance(translated.string, tuple) else ()
                if len(forms) < catalog.num_plurals or not all(forms):
                    found.append(Missing(language, str(key), "plural form missing"))
            elif not translated.string:
                found.append(Missing(language, str(key), "untranslated"))
    return found


def write_template(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, sort_output=False, omit_header=False)
    path.write_bytes(buffer.getvalue())


def update(template: Catalog, root: Path = LOCALE_DIR) -> None:
    """Merge the extracted strings into every language's .po (new ones untranslated;
    changed ones fuzzy, for a translator to look at)."""
    for language in LANGUAGES:
        if language == "en":
            continue
        path = po_path(language, root)
        if not path.is_file():
            init(template, language, root)
            continue
        with path.open("rb") as fp:
            catalog = read_po(fp, locale=language, domain=DOMAIN)
        catalog.update(template, no_fuzzy_matching=False, update_header_comment=False)
        catalog.obsolete.clear()
        _write_po(catalog, path)


def init(template: Catalog, language: str, root: Path = LOCALE_DIR) -> Path:
    path = po_path(language, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(locale=language, domain=DOMAIN, project="webinar", fuzzy=False)
    catalog.update(template, no_fuzzy_matching=True)
    _write_po(catalog, path)
    return path


def _write_po(catalog: Catalog, path: Path) -> None:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, sort_output=False, include_previous=False)
    path.write_bytes(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webinar.i18n.catalogs")
    parser.add_argument("command", choices=("extract", "update", "compile", "check", "init"))
    parser.add_argument("language", nargs="?")
    args = parser.parse_args(argv)
    if args.command == "compile":
        for language in LANGUAGES:
            if language != "en" and po_path(language).is_file():
                mo, client = compile_language(po_path(language), language)
                print(f"compiled {mo} and {client.name}")
        return 0
    template = extract()
    if args.command == "extract":
        out = repository() / "build" / "messages.pot"
        write_template(template, out)
        print(f"{len(template)} messages written to {out}")
    elif args.command == "update":
        update(template)
        print(f"{len(template)} messages merged into {', '.join(LANGUAGES[1:])}")
    elif args.command == "init":
        if not args.language:
            parser.error("init needs a language code, e.g. init de")
        print(f"started {init(template, args.language)}")
    else:
        gaps = missing(template)
        for gap in gaps:
            print(gap)
        print(f"{len(template)} messages; {len(gaps)} missing translations")
        return 1 if gaps else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
