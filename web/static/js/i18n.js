// @ts-check
/**
 * The browser's side of translation: the page's message catalog, `t()` / `nt()` to translate,
 * `Intl` formatting in the page's language, and switching language in place.
 *
 * Strings are English in the source, marked `t("Raise hand")`, `t("{name} raised a hand",
 * {name})`, `nt("{n} person", "{n} people", count)` (always plain double-quoted literals: the
 * extraction reads them). The catalog comes from the server (`/i18n/<lang>.json`, compiled
 * from the same `.po` files as the pages); the page names it in `<meta name="webinar-i18n">`.
 *
 * Switching language (`setLanguage`) loads the new catalog, remembers the choice (cookie for
 * the server, localStorage for the browser), and translates the page in place: text set with
 * `setText()` is rendered again from its message, other texts and labels that are whole
 * catalog messages are looked up and replaced; listeners of `onLanguage()` redraw the rest.
 */

/** @typedef {string | Record<string, string>} Entry */
/** @typedef {{lang: string, messages: Record<string, Entry>, room?: string[]}} Catalog */

export const LANGUAGES = /** @type {const} */ (["en", "ru", "cs"]);
const COOKIE = "webinar_lang";
const STORAGE_KEY = "webinar.lang";

/** @type {Catalog} */
let catalog = { lang: "en", messages: {} };
/** @type {Intl.PluralRules} */
let plurals = new Intl.PluralRules("en");
/** @type {Set<(lang: string) => void>} */
const listeners = new Set();

/** @param {string} url */
async function fetchCatalog(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`catalog ${url}: HTTP ${response.status}`);
  return /** @type {Catalog} */ (await response.json());
}

/** @param {Catalog} next */
function install(next) {
  catalog = next;
  plurals = new Intl.PluralRules(next.lang);
}

async function loadInitial() {
  const lang = document.documentElement.lang || "en";
  if (lang === "en") return;
  const meta = /** @type {HTMLMetaElement | null} */ (document.querySelector('meta[name="webinar-i18n"]'));
  try {
    install(await fetchCatalog(meta?.content || `/i18n/${lang}.json`));
  } catch (error) {
    console.warn("translations could not load; showing English", error);
  }
}

await loadInitial();

/** The page's language ("en", "ru", "cs"). */
export function lang() {
  return catalog.lang;
}

/**
 * @param {string} text
 * @param {Record<string, unknown>} [params]
 */
function fill(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/**
 * `message` in the page's language, `{name}` placeholders filled from `params`.
 * @param {string} message
 * @param {Record<string, unknown>} [params]
 */
export function t(message, params) {
  const found = catalog.messages[message];
  return fill(typeof found === "string" && found ? found : message, params);
}

/**
 * The form of a message for the count `n` (`{n}` is filled with it, formatted).
 * @param {string} singular
 * @param {string} plural
 * @param {number} n
 * @param {Record<string, unknown>} [params]
 */
export function nt(singular, plural, n, params) {
  const found = catalog.messages[singular];
  const all = { n: formatNumber(n), ...params };
  if (found && typeof found === "object") {
    const text = found[plurals.select(n)] ?? found.other;
    if (text) return fill(text, all);
  }
  return fill(n === 1 ? singular : plural, all);
}

/**
 * Set an element's text from a message, so a language switch renders it again.
 * @param {Element} el
 * @param {string} message
 * @param {Record<string, unknown>} [params]
 */
export function setText(el, message, params) {
  const node = /** @type {HTMLElement} */ (el);
  node.dataset.i18n = message;
  if (params) node.dataset.i18nArgs = JSON.stringify(params);
  else delete node.dataset.i18nArgs;
  node.textContent = t(message, params);
}

/** @param {number} value @param {Intl.NumberFormatOptions} [options] */
export function formatNumber(value, options) {
  return new Intl.NumberFormat(intlLocale(), options).format(value);
}

/** @param {Date | number} when @param {Intl.DateTimeFormatOptions} [options] */
export function formatDate(when, options = { dateStyle: "medium", timeStyle: "short" }) {
  return new Intl.DateTimeFormat(intlLocale(), options).format(when);
}

/**
 * "in 5 minutes", "před 2 hodinami" …
 * @param {number} value @param {Intl.RelativeTimeFormatUnit} unit
 */
export function formatRelative(value, unit) {
  return new Intl.RelativeTimeFormat(intlLocale(), { numeric: "auto" }).format(value, unit);
}

/** The locale `Intl` formats with: British English, as the product always did. */
export function intlLocale() {
  return catalog.lang === "en" ? "en-GB" : catalog.lang;
}

/** @param {(lang: string) => void} listener  called after every language switch */
export function onLanguage(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const ATTRIBUTES = ["title", "aria-label", "placeholder", "alt"];

/**
 * Translate the page in place from the old catalog's texts to the new catalog's.
 * @param {Catalog} before
 */
function retranslate(before) {
  /** @type {Map<string, string>} */
  const reverse = new Map();
  // A text that is several messages' ("Выйти": "Leave" and "Sign out") is the room's own.
  const room = new Set(before.room ?? []);
  for (const [id, entry] of Object.entries(before.messages)) {
    if (typeof entry === "string") {
      const taken = reverse.get(entry);
      if (taken === undefined || (room.has(id) && !room.has(taken))) reverse.set(entry, id);
    }
  }
  /** @param {string} text */
  const lookup = (text) => {
    const trimmed = text.trim();
    if (!trimmed) return null;
    const id = before.lang === "en" ? trimmed : reverse.get(trimmed) ?? (catalog.messages[trimmed] ? trimmed : null);
    if (id === null || id === undefined) return null;
    const next = t(id);
    return next === trimmed ? null : text.replace(trimmed, next);
  };
  for (const el of document.querySelectorAll("[data-i18n]")) {
    const node = /** @type {HTMLElement} */ (el);
    const args = node.dataset.i18nArgs ? JSON.parse(node.dataset.i18nArgs) : undefined;
    node.textContent = t(/** @type {string} */ (node.dataset.i18n), args);
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      const parent = node.parentElement;
      if (!parent || parent.closest("[data-i18n], script, style, textarea, [data-no-translate]")) {
        return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    },
  });
  /** @type {Text[]} */
  const texts = [];
  while (walker.nextNode()) texts.push(/** @type {Text} */ (walker.currentNode));
  for (const node of texts) {
    const next = lookup(node.data);
    if (next !== null) node.data = next;
  }
  for (const el of document.querySelectorAll(ATTRIBUTES.map((a) => `[${a}]`).join(","))) {
    if (el.closest("[data-no-translate]")) continue;
    for (const name of ATTRIBUTES) {
      const value = el.getAttribute(name);
      if (value === null) continue;
      const next = lookup(value);
      if (next !== null) el.setAttribute(name, next);
    }
  }
  for (const el of document.querySelectorAll('input[type="submit"], input[type="button"]')) {
    const input = /** @type {HTMLInputElement} */ (el);
    const next = lookup(input.value);
    if (next !== null) input.value = next;
  }
}

/**
 * Remember `code` as the person's language (cookie and localStorage).
 * @param {string} code
 */
export function remember(code) {
  document.cookie = `${COOKIE}=${code}; path=/; max-age=31536000; samesite=lax`;
  try {
    localStorage.setItem(STORAGE_KEY, code);
  } catch {
    // storage may be disabled: the cookie still remembers
  }
}

/** Switches begun: a switch that a later one overtook stops where it is. */
let switches = 0;

/**
 * Switch the page to `code` without reloading it. The page's `lang` attribute changes last,
 * once every text is in the new language (the redrawn ones included). When switches overlap,
 * the last one begun wins.
 * @param {string} code
 */
export async function setLanguage(code) {
  if (!LANGUAGES.includes(/** @type {any} */ (code))) throw new Error(`unknown language ${code}`);
  const mine = ++switches;
  const current = () => mine === switches;
  const next = code === "en" ? { lang: "en", messages: {} } : await fetchCatalog(`/i18n/${code}.json`);
  if (!current()) return;
  const before = catalog;
  install(next);
  remember(code);
  document.documentElement.dir = "ltr";
  document.title = lookupTitle(before) ?? document.title;
  retranslate(before);
  for (const listener of listeners) {
    try {
      listener(code);
    } catch (error) {
      console.error("language listener failed", error);
    }
  }
  await refreshBlocks(current);
  if (current()) document.documentElement.lang = code;
}

/**
 * Sentences with markup inside (a link, a name in bold) are several text nodes, none of them a
 * whole message: the page marks their element `data-i18n-block` (with an id), and a switch
 * takes that element's content from the page rendered anew in the new language. Elements
 * with an id inside it are kept as they are (the script fills them: a name, a local time).
 * @param {() => boolean} current  whether this switch is still the last one begun
 */
async function refreshBlocks(current) {
  const blocks = [...document.querySelectorAll("[data-i18n-block][id]")];
  if (!blocks.length) return;
  let fresh;
  try {
    const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) return;
    fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  } catch (error) {
    console.warn("could not refresh the page's sentences", error);
    return;
  }
  if (!current()) return; // a later switch fetches its own
  for (const block of blocks) {
    const next = fresh.getElementById(block.id);
    if (!next) continue;
    for (const keep of block.querySelectorAll("[id]")) {
      const slot = next.querySelector(`#${CSS.escape(keep.id)}`);
      if (slot) slot.replaceWith(keep);
    }
    block.replaceChildren(...next.childNodes);
  }
}

/** @param {Catalog} before */
function lookupTitle(before) {
  const title = document.title;
  for (const [id, entry] of Object.entries(before.messages)) {
    if (entry === title) return t(id);
  }
  return before.lang === "en" && catalog.messages[title] ? t(title) : null;
}
