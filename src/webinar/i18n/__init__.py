"""Languages: gettext catalogs (Babel), the language of this request or connection, and
formatting of dates, numbers and prices for it.

Every user-visible string is English in the source and marked: ``_("…")`` in Python and
templates, ``ngettext(singular, plural, n)`` where a count decides the form, ``N_("…")``
where the text is defined before anyone's language is known (translated at use with
:func:`gettext`). The browser code marks its strings with ``t("…")`` / ``nt(…)``
(``web/static/js/i18n.js``). Catalogs live in ``locale/<lang>/LC_MESSAGES/messages.po``;
``.mo`` files and the browser's JSON catalogs are compiled from them at build time
(``hatch_build.py``), or in memory when a ``.po`` is newer (a checkout being translated).

The language in effect is a context variable: the HTTP middleware sets it per request,
a signalling connection per message, the mailer per e-mail (:func:`using`).
"""

from __future__ import annotations

import contextlib
import contextvars
import gettext as _gettext
import hashlib
import io
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import babel
import babel.dates
import babel.numbers
import jinja2
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

logger = logging.getLogger(__name__)

#: The languages we ship, in the switcher's order; English is the source language.
LANGUAGES: tuple[str, ...] = ("en", "ru", "cs")
DEFAULT = "en"
#: Each language's name in itself (the switcher shows these).
NATIVE_NAMES: dict[str, str] = {"en": "English", "ru": "Русский", "cs": "Čeština"}
DOMAIN = "messages"
#: The cookie the switcher sets (also remembered in the browser's localStorage).
COOKIE = "webinar_lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: Where a message must come from to be in the browser's catalog.
CLIENT_SOURCES = ("web/static/js/", "web/templates/")
CLIENT_EXCLUDED = ("web/templates/email/",)

_current: contextvars.ContextVar[str] = contextvars.ContextVar("webinar_language", default=DEFAULT)


def N_(message: str) -> str:
    """Mark ``message`` for extraction; translate it later with :func:`gettext`."""
    return message


#: The Babel locale each language formats with (British English, as the product always did).
FORMAT_LOCALES: dict[str, str] = {"en": "en_GB", "ru": "ru_RU", "cs": "cs_CZ"}


def current() -> str:
    """The language in effect here."""
    return _current.get()


def _fmt() -> str:
    return FORMAT_LOCALES.get(_current.get(), "en_GB")


def set_current(language: str) -> contextvars.Token[str]:
    return _current.set(language if language in LANGUAGES else DEFAULT)


@contextlib.contextmanager
def using(language: str | None) -> Iterator[str]:
    """Run the block in ``language`` (English when it is not one of ours)."""
    lang = language if language in LANGUAGES else DEFAULT
    token = _current.set(lang)
    try:
        yield lang
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    """``message`` in the language in effect."""
    return translations(_current.get()).gettext(message)


_ = gettext


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the language in effect."""
    return translations(_current.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return translations(_current.get()).pgettext(context, message)


# ----------------------------------------------------------------------------- catalogs


@dataclass(frozen=True, slots=True)
class Compiled:
    translations: _gettext.NullTranslations
    client: dict[str, Any]  # the browser's catalog (client_catalog)
    version: str  # a hash of the browser's catalog, for cache-busting URLs


_cache: dict[str, Compiled] = {}
_lock = threading.Lock()


def po_path(language: str, root: Path = LOCALE_DIR) -> Path:
    return root / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def compiled(language: str) -> Compiled:
    """The catalogs of ``language``, loaded once per process."""
    found = _cache.get(language)
    if found is not None:
        return found
    with _lock:
        found = _cache.get(language)
        if found is None:
            found = _cache[language] = _load(language)
    return found


def translations(language: str) -> _gettext.NullTranslations:
    return compiled(language).translations


def _load(language: str) -> Compiled:
    if language == DEFAULT or language not in LANGUAGES:
        return _compiled_from(None, DEFAULT)
    po = po_path(language)
    if not po.is_file():
        logger.warning("no catalog for %s (%s): showing English", language, po)
        return _compiled_from(None, language)
    mo = po.with_suffix(".mo")
    client = po.parent / "client.json"
    source = _po_digest(po)
    if mo.is_file() and client.is_file():
        data = json.loads(client.read_text(encoding="utf-8"))
        # Compiled from this very .po? (A hash, not file times: an install may write the
        # .po after the .mo.)
        if data.pop("source", None) == source:
            with mo.open("rb") as fp:
                trans = _gettext.GNUTranslations(fp)
            return Compiled(trans, data, _digest(data))
    # No build yet, or a .po changed since the last one (a checkout being translated):
    # compile in memory.
    logger.debug("compiling %s in memory (no fresh .mo)", po)
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=language, domain=DOMAIN)
    return _compiled_from(catalog, language)


def _compiled_from(catalog: Catalog | None, language: str) -> Compiled:
    if catalog is None:
        data = client_catalog(None, language)
        return Compiled(_gettext.NullTranslations(), data, _digest(data))
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    data = client_catalog(catalog, language)
    return Compiled(_gettext.GNUTranslations(buffer), data, _digest(data))


def _digest(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(text).hexdigest()[:12]


def plural_categories(language: str) -> dict[str, int]:
    """CLDR plural category (what ``Intl.PluralRules`` answers) → gettext form index."""
    from babel.messages.plurals import get_plural

    rule = babel.Locale.parse(language).plural_form
    form = _gettext.c2py(get_plural(language).plural_expr)
    mapping: dict[str, int] = {}
    for n in range(0, 1000):
        mapping.setdefault(rule(n), form(n))
    mapping.setdefault("other", form(1000))
    for category in ("zero", "one", "two", "few", "many", "other"):
        mapping.setdefault(category, mapping["other"])
    return mapping


def is_client_location(path: str) -> bool:
    return path.startswith(CLIENT_SOURCES) and not path.startswith(CLIENT_EXCLUDED)


def client_catalog(catalog: Catalog | None, language: str) -> dict[str, Any]:
    """The browser's catalog: ``{"lang", "messages": {msgid: text | {category: text}}}`` for
    the messages used by the browser code and the page templates (the room translates its
    page in place when the language changes)."""
    messages: dict[str, Any] = {}
    if catalog is not None:
        categories = plural_categories(language)
        for message in catalog:
            if not message.id or message.fuzzy:
                continue
            if not any(is_client_location(path) for path, _line in message.locations):
                continue
            if isinstance(message.id, tuple):
                forms = message.string if isinstance(message.string, tuple) else ()
                if not forms or not all(forms):
                    continue
                messages[str(message.id[0])] = {
                    cat: forms[index] for cat, index in categories.items() if index < len(forms)
                }
            elif message.string:
                messages[str(message.id)] = message.string
    data: dict[str, Any] = {"lang": language, "messages": messages}
    if catalog is not None:
        data["room"] = _ambiguous_in_room(catalog, messages)
    return data


ROOM_SOURCES = ("web/templates/room.html", "web/templates/base.html", "web/templates/language.html")
NOT_ROOM_SCRIPTS = ("dashboard.js", "dashboard_polls.js", "home.js")


def _in_room(path: str) -> bool:
    if path.startswith(ROOM_SOURCES):
        return True
    return path.startswith("web/static/js/") and not path.endswith(NOT_ROOM_SCRIPTS)


def _ambiguous_in_room(catalog: Catalog, messages: dict[str, Any]) -> list[str]:
    """The room's messages whose text in this language is also another message's text.

    The room switches language in place by looking each shown text up in the old catalog
    (i18n.js): "Выйти" is both "Leave" and "Sign out" in Russian. For such texts the room's
    own message wins; this list names them."""
    by_text: dict[str, list[str]] = {}
    for msgid, text in messages.items():
        if isinstance(text, str):
            by_text.setdefault(text, []).append(msgid)
    ambiguous = {msgid for ids in by_text.values() if len(ids) > 1 for msgid in ids}
    return sorted(
        str(m.id)
        for m in catalog
        if isinstance(m.id, str)
        and m.id in ambiguous
        and any(_in_room(path) for path, _line in m.locations)
    )


def compile_language(po: Path, language: str) -> tuple[Path, Path]:
    """Write ``messages.mo`` and ``client.json`` beside ``po`` (the build does this)."""
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=language, domain=DOMAIN)
    mo = po.with_suffix(".mo")
    with mo.open("wb") as out:
        write_mo(out, catalog, use_fuzzy=False)
    client = po.parent / "client.json"
    data = {**client_catalog(catalog, language), "source": _po_digest(po)}
    client.write_text(json.dumps(data, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    return mo, client


def _po_digest(po: Path) -> str:
    return hashlib.sha256(po.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- choosing


def parse_accept_language(header: str | None) -> list[str]:
    """The languages of an ``Accept-Language`` header, best first (RFC 9110 q-values)."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:40]):
        tag, _sep, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        q = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0:
            ranked.append((-q, position, tag))
    ranked.sort()
    return [tag for _q, _p, tag in ranked]


def supported(tag: str | None) -> str | None:
    """One of :data:`LANGUAGES` for a language tag (``ru-RU`` → ``ru``), else None."""
    if not tag:
        return None
    base = tag.strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def choose(chosen: str | None, event_language: str | None, accept_language: str | None) -> str:
    """The language of a page: the person's own choice, then the event's language, then
    the browser's ``Accept-Language``, then English."""
    for candidate in (chosen, event_language):
        found = supported(candidate)
        if found:
            return found
    for tag in parse_accept_language(accept_language):
        found = supported(tag)
        if found:
            return found
    return DEFAULT


def direction(language: str) -> str:
    """``ltr`` or ``rtl`` for ``<html dir>``."""
    order = babel.Locale.parse(language).character_order
    return "rtl" if order == "right-to-left" else "ltr"


# ----------------------------------------------------------------------------- formatting


def format_datetime(when: datetime, zone: tzinfo | str | None = None) -> str:
    """``when`` in ``zone`` (UTC when None) for the language in effect, weekday and zone
    named: ``Sunday, 6 December 2026, 14:00 (Central European Time)``."""
    zone_info = babel.dates.get_timezone(zone) if zone is not None else babel.dates.UTC
    lang = _fmt()
    local = when.astimezone(zone_info)
    day = babel.dates.format_date(local, format="full", locale=lang)
    time = babel.dates.format_time(local, format="short", locale=lang)
    name = babel.dates.get_timezone_name(local, width="long", locale=lang)
    return f"{day}, {time} ({name})"


def format_time_of_day(when: datetime, zone: tzinfo | str | None = None) -> str:
    """The date and time, short (``6 Dec 2026, 14:00``), in ``zone``."""
    zone_info = babel.dates.get_timezone(zone) if zone is not None else babel.dates.UTC
    local = when.astimezone(zone_info)
    lang = _fmt()
    day = babel.dates.format_date(local, format="medium", locale=lang)
    return f"{day}, {babel.dates.format_time(local, format='short', locale=lang)}"


def format_date(when: date | datetime, *, format: str = "long") -> str:
    return babel.dates.format_date(when, format=format, locale=_fmt())


def format_number(value: int | float | Decimal) -> str:
    return babel.numbers.format_decimal(value, locale=_fmt())


def format_price(amount_minor: int, currency: str) -> str:
    """A price (minor units) as people of the language in effect write it:
    ``€49.90``, ``49,90 €``, ``1 234,00 Kč``."""
    amount = Decimal(amount_minor) / 100
    return babel.numbers.format_currency(amount, currency, locale=_fmt())


def format_amount(amount_minor: int) -> str:
    """The number of a price without its currency (a form's input: ``49.90``)."""
    return f"{amount_minor // 100}.{amount_minor % 100:02d}"


# ----------------------------------------------------------------------------- templates


def environment(folder: Path, *, strict: bool = False) -> jinja2.Environment:
    """A jinja2 environment whose templates translate (``_()``, ``ngettext()``, ``{% trans %}``
    in the language in effect) and format (``|datetime(zone)``, ``|price(currency)``,
    ``|number``)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined if strict else jinja2.Undefined,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True, pgettext=pgettext
    )
    env.filters["datetime"] = format_datetime
    env.filters["when"] = format_time_of_day
    env.filters["price"] = lambda minor, currency: format_price(int(minor), str(currency))
    env.filters["number"] = format_number
    env.globals["N_"] = N_
    return env
