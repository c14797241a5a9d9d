// Small DOM helpers shared by the pages: element building, toasts, error texts, times.

import { formatDate, formatNumber, formatRelative as relativeTime, t } from "./i18n.js";
import { WebinarError } from "./protocol.js";

/**
 * Build an element.
 * @param {string} tag
 * @param {Record<string, string | boolean | number | null | undefined>} [attrs]
 *   `class`, `text`, anything else as an attribute (`true` → empty attribute)
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
 * An inline SVG icon from the page's sprite (`<symbol id="i-…">`).
 * @param {string} name  without the `i-` prefix
 */
export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", `icon icon-${name}`); // i18n-ignore
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#i-${name}`);
  svg.append(use);
  return svg;
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

/**
 * A button while what it started runs: disabled, and aria-busy for screen readers.
 * @param {HTMLButtonElement} button
 * @param {boolean} busy
 */
export function setBusy(button, busy) {
  button.disabled = busy;
  if (busy) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
}

/**
 * @typedef {object} ToastOptions
 * @property {"info" | "warn" | "error" | "success"} [kind]
 * @property {number} [timeout]  ms; 0 keeps it until dismissed
 * @property {{label: string, run: () => void, testid?: string}} [action]  a button in the toast
 * @property {string} [key]  a toast with the same key replaces the older one
 */

/** Transient notices in an aria-live region. */
export class Toasts {
  /**
   * @param {HTMLElement} region
   * @param {string} [avoid]  a selector of what the stack must not cover (the stage's
   *   published question, call-to-action, banners): placed clear of them, see place()
   */
  constructor(region, avoid) {
    this.region = region;
    this.avoid = avoid ?? null;
  }

  /**
   * Move the stack clear of what it must not cover: from the top (under the lowest of
   * those in the upper half of the window), or, where the stylesheet puts it at the
   * bottom (a phone), above the highest of those in the lower half.
   */
  place() {
    if (!this.avoid) return;
    const style = this.region.style;
    style.top = "";
    style.bottom = "";
    // the stylesheet says which edge the stack hangs from (app.css, .toasts)
    const fromTop = getComputedStyle(this.region).getPropertyValue("--toasts-from").trim() !== "bottom";
    const middle = window.innerHeight / 2;
    const boxes = [...document.querySelectorAll(this.avoid)]
      .filter((el) => el instanceof HTMLElement && el.offsetParent !== null)
      .map((el) => el.getBoundingClientRect())
      .filter((r) => r.height > 0);
    if (fromTop) {
      const below = Math.max(0, ...boxes.filter((r) => r.top < middle).map((r) => r.bottom));
      if (below + 8 > this.region.getBoundingClientRect().top) style.top = `${Math.round(below + 8)}px`;
    } else {
      const above = Math.min(window.innerHeight, ...boxes.filter((r) => r.bottom > middle).map((r) => r.top));
      const bottom = window.innerHeight - above + 8;
      if (bottom > parseFloat(getComputedStyle(this.region).bottom)) style.bottom = `${Math.round(bottom)}px`;
    }
  }

  /**
   * @param {string} text
   * @param {ToastOptions} [options]
   */
  show(text, { kind = "info", timeout = 6000, action, key } = {}) {
    if (key) {
      for (const old of this.region.querySelectorAll(`[data-key="${CSS.escape(key)}"]`)) old.remove();
    }
    const close = el("button", { class: "toast-close", type: "button", "aria-label": t("Dismiss") }, ["×"]);
    const button = action
      ? el("button", { class: "btn btn-small toast-action", type: "button", "data-testid": action.testid }, [
          action.label,
        ])
      : null;
    const toast = el("div", { class: `toast toast-${kind}`, "data-testid": "toast", "data-key": key }, [
      el("span", { class: "toast-text", text }),
      button,
      close,
    ]);
    const remove = () => toast.remove();
    close.addEventListener("click", remove);
    if (button && action) {
      button.addEventListener("click", () => {
        remove();
        action.run();
      });
    }
    this.region.append(toast);
    this.place();
    // a short stack: the oldest goes (three at most, two on a phone, so the stack never
    // reaches the tiles' names or the stage's question)
    const most = window.matchMedia("(max-width: 600px)").matches ? 2 : 3;
    while (this.region.childElementCount > most) this.region.firstElementChild?.remove();
    if (timeout > 0) window.setTimeout(remove, timeout);
    return toast;
  }

  /** Take every toast away (the room's notices mean nothing on the ended view). */
  clear() {
    this.region.replaceChildren();
  }

  /**
   * Take away the toasts whose action button has this data-testid (what it offers is done).
   * @param {string} testid
   */
  dismissWith(testid) {
    for (const button of this.region.querySelectorAll(`[data-testid="${CSS.escape(testid)}"]`)) button.closest(".toast")?.remove();
  }
}

/**
 * What a mode is called, in the page's language (null for a mode this page does not know).
 * @param {string} mode
 */
export function modeLabel(mode) {
  switch (mode) {
    case "listen-only":
      return t("Listen only");
    case "discussion":
      return t("Discussion");
    case "presenters-only":
      return t("Presenters only");
    default:
      return null;
  }
}

/**
 * What a mode means, in a sentence ("" for a mode this page does not know).
 * @param {string} mode
 */
export function modeAbout(mode) {
  switch (mode) {
    case "listen-only":
      return t("Attendees watch and listen; presenters and invited speakers talk.");
    case "discussion":
      return t("Everyone may turn on their microphone and camera.");
    case "presenters-only":
      return t("Backstage: attendees see and hear nothing of the presenters.");
    default:
      return "";
  }
}

/**
 * A plain sentence for an error from the server or the connection.
 * @param {unknown} error
 * @param {{maxCameras?: number, startsAt?: string | null, access?: string, personal?: boolean, registration?: boolean}} [context]
 */
export function errorText(error, context = {}) {
  if (!(error instanceof WebinarError)) {
    return error instanceof Error ? error.message : String(error);
  }
  switch (error.code) {
    case "camera-limit":
      return context.maxCameras
        ? t("This webinar already shows the maximum number of cameras ({max}). Your camera was not published.", {
            max: formatNumber(context.maxCameras),
          })
        : t("This webinar already shows the maximum number of cameras. Your camera was not published.");
    case "unknown-event":
      return t("This event does not exist (any more). Check the event ID in your invitation.");
    case "bad-credential":
      if (context.personal) return t("This personal link is not valid for this webinar. Use the link from your own confirmation e-mail.");
      if (context.access === "paid") {
        return t("This reservation code is not valid for this event. Check the code in your confirmation e-mail (letters and digits, e.g. ABCD-EFGH-JKMN).");
      }
      if (context.access === "password") return t("That password is not right. Check your invitation and try again.");
      if (context.access === "token") return t("This invitation link is not valid for this webinar. Use the link from your own invitation e-mail.");
      return t("This presenter link is not valid. Ask the organiser for a new one.");
    case "credential-required":
      if (context.registration && context.access === "open") {
        return t("This webinar needs registration: register, then open the personal link from your confirmation e-mail.");
      }
      if (context.access === "token") return t("This webinar is by invitation only: open the personal link from your invitation e-mail.");
      return context.access === "paid" ? t("This webinar needs your reservation code.") : t("This webinar needs a password.");
    case "outside-window":
      return t("Your reservation code works only around the event's time: {detail}.", { detail: error.message });
    case "not-confirmed":
      if (context.personal) return t("Your registration does not let you in yet: {detail}.", { detail: error.message });
      return t("Your reservation cannot be used: {detail}. Contact the organiser if this is wrong.", { detail: error.message });
    case "revoked":
      return t("The organiser withdrew this invitation.");
    case "event-cancelled":
      return t("The organiser cancelled this webinar; it will not take place.");
    case "token-expired":
      return t("Your personal link to this webinar has expired. Open the webinar again from the site that sent you here to get a fresh one.");
    case "token-bad-signature":
      return t("Your personal link to this webinar is not valid: it was not signed by the organiser. Open the webinar again from the site that sent you here.");
    case "token-wrong-event":
      return t("Your personal link is for another webinar. Open this webinar again from the site that sent you here.");
    case "token-invalid":
      return t("Your personal link to this webinar is not valid ({detail}). Tell the organiser of the site that sent you here.", { detail: error.message });
    case "booking-expired":
    case "ticket-in-use":
    case "group-full":
      // the server's own sentence (in the connection's language), as a sentence
      return `${error.message.charAt(0).toUpperCase()}${error.message.slice(1)}.`;
    case "not-started":
      return context.startsAt
        ? t("This webinar has not opened yet. It starts {time} (your time); the room opens a few minutes before. Please come back then.", {
            time: formatTime(context.startsAt),
          })
        : t("This webinar has not opened yet. Come back a few minutes before it starts.");
    case "ended":
      return t("This webinar has ended. Thank you for your interest.");
    case "room-locked":
      return t("The organisers have locked the room: nobody new can join right now. Try again in a little while.");
    case "banned":
      return t("You were removed from this webinar and cannot join it again.");
    case "room-full":
      return t("The webinar is full: it holds no more people right now. Try again later.");
    case "too-many-for-discussion":
      return t("Discussion needs a smaller room: {detail}. The mode was not changed.", {
        detail: error.message || t("it allows at most 25 people"),
      });
    case "forbidden":
      return t("You may not do that in your role. ({detail})", { detail: error.message });
    case "unknown-participant":
      return t("That person is no longer in the room.");
    case "unsupported-codec":
      return t("Your browser did not offer the VP8 video or Opus audio codec this server needs.");
    case "closed":
    case "not-connected":
      return t("The connection to the server was lost.");
    case "timeout":
      return t("The server did not answer in time. Check your network and try again.");
    case "rate-limited": {
      // the wait in seconds is the only number of the server's (translated) sentence
      const wait = /(\d+)/.exec(error.message);
      return wait
        ? t("Too many wrong attempts: try again in {seconds} s.", { seconds: wait[1] })
        : t("Too many requests; slow down a little.");
    }
    case "draining":
      return t("The server is restarting and takes nobody new right now. Try again in a minute.");
    case "server-full":
      return t("The server is running as many webinars as it can right now. Try again later.");
    case "unavailable":
      return t("The server is briefly unable to coordinate this room. Nothing was changed; try again in a moment.");
    default:
      return error.message || error.code;
  }
}

/**
 * Format an ISO time for people, in their own time zone and language.
 * @param {string} iso
 */
export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return formatDate(date, { dateStyle: "medium", timeStyle: "short" });
}

/**
 * "2:05", "1:02:05", from milliseconds (never negative).
 * @param {number} ms
 */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

/**
 * "in 3 minutes" in the user's language.
 * @param {number} ms
 */
export function formatRelative(ms) {
  const minutes = Math.round(ms / 60_000);
  if (Math.abs(minutes) < 1) return relativeTime(Math.round(ms / 1000), "second");
  if (Math.abs(minutes) < 90) return relativeTime(minutes, "minute");
  const hours = Math.round(ms / 3_600_000);
  if (Math.abs(hours) < 36) return relativeTime(hours, "hour");
  return relativeTime(Math.round(ms / 86_400_000), "day");
}

const NAME_KEY = "webinar.name";
const CLIENT_KEY = "webinar.clientId";
/** sessionStorage: the home page's form sends the room page this event's ID to join at once. */
export const AUTOJOIN_KEY = "webinar.autojoin";

/** @typedef {"local" | "session"} StorageArea */

/**
 * A remembered value, or null when there is none or storage is disabled (private mode;
 * even reading `localStorage` can throw then).
 * @param {string} key
 * @param {StorageArea} [area]
 * @returns {string | null}
 */
export function recall(key, area = "local") {
  try {
    return (area === "session" ? sessionStorage : localStorage).getItem(key);
  } catch {
    return null;
  }
}

/**
 * Remember a value; not remembering (storage disabled) is fine for every caller.
 * @param {string} key
 * @param {string} value
 * @param {StorageArea} [area]
 * @returns {boolean}  whether it was stored
 */
export function remember(key, value, area = "local") {
  try {
    (area === "session" ? sessionStorage : localStorage).setItem(key, value);
    return true;
  } catch {
    return false;
  }
}

/**
 * @param {string} key
 * @param {StorageArea} [area]
 */
export function forget(key, area = "local") {
  try {
    (area === "session" ? sessionStorage : localStorage).removeItem(key);
  } catch {
    // nothing to forget
  }
}

/** The display name used last time, if any. */
export function savedName() {
  return recall(NAME_KEY) ?? "";
}

/** @param {string} name */
export function saveName(name) {
  remember(NAME_KEY, name);
}

/** This browser's opaque ID (the server applies a ban to it); kept in localStorage. */
export function clientId() {
  let id = recall(CLIENT_KEY);
  if (!id) {
    id = crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2);
    if (!remember(CLIENT_KEY, id)) return null;
  }
  return id;
}

/**
 * A failure's own message as a sentence (capitalised, with a full stop), for a toast.
 * @param {unknown} failure
 */
export function errorMessage(failure) {
  const message = /** @type {{message?: string}} */ (failure)?.message ?? String(failure);
  return message ? message.charAt(0).toUpperCase() + message.slice(1) + (message.endsWith(".") ? "" : ".") : t("That did not work.");
}

/** @param {string} name */
export function cleanName(name) {
  return name.split(/\s+/).filter(Boolean).join(" ").slice(0, 64);
}

/** @param {string} name */
export function initials(name) {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] ?? "?").slice(0, 2);
  return letters.toUpperCase();
}

/** What a role is called. @param {string} role */
export function roleLabel(role) {
  return role === "host" ? t("Host") : role === "presenter" ? t("Presenter") : t("Attendee");
}
