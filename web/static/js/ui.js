// Small DOM helpers shared by the pages: element building, toasts, error texts.

import { WebinarError } from "./protocol.js";

/**
 * Build an element.
 * @param {string} tag
 * @param {Record<string, string | boolean | number | null | undefined>} [attrs]
 *   `class`, `text`, `dataset` keys as data-*, anything else as an attribute
 * @param {(Node | string | null | undefined | false)[]} [children]
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child);
  }
  return node;
}

/**
 * The element with this id; throws when the template lacks it (a bug).
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from the page`);
  return /** @type {T} */ (node);
}

/** Transient notices in an aria-live region. */
export class Toasts {
  /** @param {HTMLElement} region */
  constructor(region) {
    this.region = region;
  }

  /**
   * @param {string} text
   * @param {{kind?: "info" | "warn" | "error", timeout?: number}} [options]
   */
  show(text, { kind = "info", timeout = 6000 } = {}) {
    const close = el("button", { class: "toast-close", type: "button", "aria-label": "Dismiss" }, [
      "×",
    ]);
    const toast = el("div", { class: `toast toast-${kind}`, "data-testid": "toast" }, [
      el("span", { class: "toast-text", text }),
      close,
    ]);
    const remove = () => toast.remove();
    close.addEventListener("click", remove);
    this.region.append(toast);
    while (this.region.childElementCount > 4) this.region.firstElementChild?.remove();
    if (timeout > 0) window.setTimeout(remove, timeout);
    return toast;
  }
}

/** What a source is called in sentences. @type {Record<string, string>} */
export const SOURCE_NOUN = {
  camera: "camera",
  microphone: "microphone",
  screen: "screen share",
  "screen-audio": "screen audio",
};

/**
 * A plain sentence for an error from the server or the connection.
 * @param {unknown} error
 * @param {{maxCameras?: number}} [context]
 */
export function errorText(error, context = {}) {
  if (!(error instanceof WebinarError)) {
    return error instanceof Error ? error.message : String(error);
  }
  switch (error.code) {
    case "camera-limit":
      return `This webinar already shows the maximum number of cameras${
        context.maxCameras ? ` (${context.maxCameras})` : ""
      }. Your camera was not published.`;
    case "unknown-event":
      return "This event does not exist (any more). Check the event ID.";
    case "bad-credential":
      return "This presenter link is not valid. Ask the organiser for a new one.";
    case "not-started":
      return "This webinar is not open yet. Come back a few minutes before it starts.";
    case "ended":
      return "This webinar has ended.";
    case "room-locked":
      return "The room is locked: no one new can join right now.";
    case "banned":
      return "You were removed from this webinar and cannot rejoin.";
    case "room-full":
      return "The webinar is full. Try again later.";
    case "forbidden":
      return "Your role may not do that.";
    case "unsupported-codec":
      return "Your browser did not offer the VP8 video or Opus audio codec this server needs.";
    case "closed":
    case "not-connected":
      return "The connection to the server was lost.";
    case "timeout":
      return "The server did not answer in time. Check your network and try again.";
    case "rate-limited":
      return "Too many requests; slow down a little.";
    default:
      return error.message || error.code;
  }
}

/**
 * Format an ISO time for people, in their own time zone.
 * @param {string} iso
 */
export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(date);
}

const NAME_KEY = "webinar.name";

/** The display name used last time, if any. */
export function savedName() {
  try {
    return localStorage.getItem(NAME_KEY) ?? "";
  } catch {
    return "";
  }
}

/** @param {string} name */
export function saveName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // private mode: not remembering the name is fine
  }
}

/** @param {string} name */
export function cleanName(name) {
  return name.split(/\s+/).filter(Boolean).join(" ").slice(0, 64);
}
