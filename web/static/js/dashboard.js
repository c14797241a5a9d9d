// @ts-check
// The organiser's pages (sign-in, events list, schedule/edit form): copy buttons, the
// "Saved" notice, the time-zone list and start preview, and inline form validation.
// Self-contained on purpose: the pages work without it (the server validates everything).

import { formatRelative, intlLocale, t } from "./i18n.js";

const WEB_ADDRESS = /^https?:\/\/[^\s/]+/i;

/** @param {string} selector @param {ParentNode} [root] */
const $ = (selector, root = document) => root.querySelector(selector);
/** @param {string} selector @param {ParentNode} [root] */
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// ------------------------------------------------------------------ copy buttons

const copyStatus = /** @type {HTMLElement | null} */ ($("[data-copy-status]"));

/** @param {string} text */
function announce(text) {
  if (!copyStatus) return;
  copyStatus.textContent = "";
  // a new text node after a tick, so screen readers announce a repeated message too
  setTimeout(() => {
    copyStatus.textContent = text;
  }, 50);
}

/** Copy without the async Clipboard API (plain-HTTP deployments have none). */
function legacyCopy(/** @type {string} */ text) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/** @param {string} text */
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through: permission refused or the document lost focus
    }
  }
  return legacyCopy(text);
}

for (const button of /** @type {HTMLButtonElement[]} */ ($$("button[data-copy]"))) {
  const label = /** @type {HTMLElement | null} */ ($("[data-copy-label]", button));
  const done = /** @type {HTMLElement | null} */ ($("[data-copied-label]", button));
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @param {string} text  empty: back to the button's own label */
  const feedback = (text) => {
    if (!label || !done) return;
    done.textContent = text;
    done.hidden = !text;
    label.hidden = Boolean(text);
  };
  button.addEventListener("click", async () => {
    const text = button.dataset.copy ?? "";
    const what = button.dataset.copyWhat ?? t("Link");
    const ok = await copyText(text);
    clearTimeout(timer);
    if (ok) {
      feedback(t("Copied"));
      button.dataset.copied = "true";
      // TRANSLATORS: {what} is what a copy button copies, e.g. "Attendee link"
      announce(t("{what} copied to the clipboard.", { what }));
    } else {
      // Could not copy: select the text so Ctrl+C / long-press works.
      const input = button.dataset.copyInput
        ? /** @type {HTMLInputElement | null} */ (document.getElementById(button.dataset.copyInput))
        : null;
      if (input) {
        input.focus();
        input.select();
      }
      feedback(input ? t("Press Ctrl+C") : t("Copy failed"));
      announce(
        input
          ? // TRANSLATORS: {what} is what a copy button copies, e.g. "Attendee link"
            t("{what} selected: press Control C to copy it.", { what })
          : // TRANSLATORS: {what} is in lower case here, e.g. "attendee link"
            t("Could not copy the {what}.", { what: what.toLowerCase() }),
      );
    }
    timer = setTimeout(() => {
      feedback("");
      delete button.dataset.copied;
    }, 2000);
  });
}

for (const input of /** @type {HTMLInputElement[]} */ ($$("input[data-select-all]"))) {
  input.addEventListener("focus", () => input.select());
  input.addEventListener("click", () => input.select());
}

// ------------------------------------------------------------------ relative start times

/** "in 3 days", "in 2 hours", "5 minutes ago" @param {number} ms */
function fromNow(ms) {
  const minutes = Math.round(ms / 60000);
  const abs = Math.abs(minutes);
  if (abs < 60) return formatRelative(minutes, "minute");
  if (abs < 48 * 60) return formatRelative(Math.round(minutes / 60), "hour");
  if (abs < 60 * 24 * 60) return formatRelative(Math.round(minutes / 1440), "day");
  return formatRelative(Math.round(minutes / (1440 * 30)), "month");
}

for (const node of /** @type {HTMLElement[]} */ ($$("[data-relative]"))) {
  const at = Date.parse(node.dataset.relative ?? "");
  if (Number.isNaN(at)) continue;
  const text = fromNow(at - Date.now());
  // TRANSLATORS: {when} is a relative time, e.g. "5 minutes ago"
  node.textContent = node.dataset.status === "live" ? t("started {when}", { when: text }) : text;
}

// ------------------------------------------------------------------ submitting

/**
 * Disable the form's submit button while the request is under way (no double posts).
 * @param {HTMLFormElement} form @param {string} text
 */
function busy(form, text) {
  const submit = /** @type {HTMLButtonElement | null} */ ($("button[type=submit]", form));
  if (!submit) return;
  submit.dataset.label = submit.textContent ?? "";
  // after this task, so the form is still submitted
  setTimeout(() => {
    submit.disabled = true;
    submit.textContent = text;
  });
}

// Back to this page from the history cache: the buttons work again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  for (const submit of /** @type {HTMLButtonElement[]} */ ($$("button[type=submit][data-label]"))) {
    submit.disabled = false;
    submit.textContent = submit.dataset.label ?? "";
  }
});

// ------------------------------------------------------------------ sign-in page

const loginForm = /** @type {HTMLFormElement | null} */ ($("form[data-login]"));
if (loginForm) {
  const password = /** @type {HTMLInputElement} */ ($("#password", loginForm));
  const toggle = /** @type {HTMLButtonElement | null} */ ($("[data-password-toggle]", loginForm));
  if (toggle) {
    toggle.hidden = false;
    toggle.setAttribute("aria-label", t("Show password"));
    toggle.addEventListener("click", () => {
      const show = password.type === "password";
      password.type = show ? "text" : "password";
      toggle.textContent = show ? t("Hide") : t("Show");
      toggle.setAttribute("aria-label", show ? t("Hide password") : t("Show password"));
      toggle.setAttribute("aria-pressed", String(show));
      password.focus();
    });
  }
  for (const input of /** @type {HTMLInputElement[]} */ ($$("input[aria-invalid]", loginForm))) {
    input.addEventListener("input", () => input.removeAttribute("aria-invalid"), { once: true });
  }
  loginForm.addEventListener("submit", () => {
    password.type = "password";
    busy(loginForm, t("Signing in…"));
  });
}

// ------------------------------------------------------------------ "Saved" notice

const savedNotice = /** @type {HTMLElement | null} */ ($("[data-saved-notice]"));
if (savedNotice) {
  const params = new URLSearchParams(location.search);
  if (params.get("saved") === "1") {
    savedNotice.hidden = false;
    savedNotice.focus({ preventScroll: true });
    params.delete("saved");
    const rest = params.toString();
    // a reload should not claim a second save
    history.replaceState(history.state, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  }
}

// ------------------------------------------------------------------ time zones

/** @param {string} zone */
function isZone(zone) {
  if (!zone) return false;
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function browserZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return zone && isZone(zone) ? zone : "UTC";
}

/** @returns {string[]} */
function allZones() {
  const intl = /** @type {{supportedValuesOf?: (key: string) => string[]}} */ (Intl);
  let zones = [];
  try {
    zones = intl.supportedValuesOf ? intl.supportedValuesOf("timeZone") : [];
  } catch {
    zones = [];
  }
  return zones.includes("UTC") ? zones : ["UTC", ...zones];
}

/**
 * Minutes east of UTC of `zone` at the instant `ms`.
 * @param {number} ms @param {string} zone
 */
function offsetMinutes(ms, zone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    second: "numeric",
  }).formatToParts(new Date(ms));
  /** @param {string} type */
  const part = (type) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const wall = Date.UTC(part("year"), part("month") - 1, part("day"), part("hour"), part("minute"), part("second"));
  return Math.round((wall - (ms - (ms % 1000))) / 60000);
}

/**
 * The instant of a wall-clock time in `zone`, as Python's zoneinfo reads it (fold=0):
 * an ambiguous time is the first one; a time skipped by a clock change uses the offset
 * from before the change.
 * @param {string} local  "YYYY-MM-DDTHH:MM"
 * @param {string} zone
 */
function wallTimeToUtc(local, zone) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local);
  if (!m) return null;
  const asUtc = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  const day = 86_400_000;
  const before = offsetMinutes(asUtc - day, zone);
  const after = offsetMinutes(asUtc + day, zone);
  const candidates = [asUtc - before * 60000, asUtc - after * 60000]
    .filter((instant) => instant + offsetMinutes(instant, zone) * 60000 === asUtc)
    .sort((a, b) => a - b);
  return candidates.length ? candidates[0] : asUtc - before * 60000;
}

/** "Sun 30 Mar 2031", as the server writes dates. @param {number} ms @param {string} zone */
function dayIn(ms, zone) {
  const parts = new Intl.DateTimeFormat(intlLocale(), {
    timeZone: zone,
    weekday: "short",
    day: "2-digit",
    month: "short",
    year: "numeric",
  }).formatToParts(new Date(ms));
  /** @param {string} type */
  const part = (type) => parts.find((p) => p.type === type)?.value ?? "";
  return `${part("weekday")} ${part("day")} ${part("month")} ${part("year")}`;
}

/** @param {number} ms @param {string} zone */
function timeIn(ms, zone) {
  return new Intl.DateTimeFormat(intlLocale(), {
    timeZone: zone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(new Date(ms));
}

/** "23:00", or "Mon 31 Mar 2031, 02:00" when that is another day than `day`.
 * @param {number} ms @param {string} zone @param {string} day */
function timeOrDayIn(ms, zone, day) {
  const other = dayIn(ms, zone);
  return other === day ? timeIn(ms, zone) : [other, timeIn(ms, zone)].join(", ");
}

/** "A and B" in the page's language. @param {string[]} items */
function listOf(items) {
  return new Intl.ListFormat(intlLocale(), { type: "conjunction" }).format(items);
}

/** @param {string} zone */
const place = (zone) => zone.split("/").pop()?.replace(/_/g, " ") ?? zone;

/**
 * What the organiser typed, as a zone name: exact, case-insensitive, or a unique city match
 * ("new york" → "America/New_York").
 * @param {string} text @param {string[]} zones
 */
function resolveZone(text, zones) {
  const typed = text.trim();
  if (!typed) return typed;
  if (zones.includes(typed)) return typed;
  const key = typed.toLowerCase().replace(/\s+/g, "_");
  const exact = zones.filter((z) => z.toLowerCase() === key);
  if (exact.length === 1) return exact[0];
  const city = zones.filter((z) => z.toLowerCase().split("/").pop() === key);
  if (city.length === 1) return city[0];
  return typed;
}

// ------------------------------------------------------------------ the event form

const eventForm = /** @type {HTMLFormElement | null} */ ($("form[data-event-form]"));
if (eventForm) setUpEventForm(eventForm);

/** @param {HTMLFormElement} form */
function setUpEventForm(form) {
  const field = (/** @type {string} */ name) =>
    /** @type {HTMLInputElement} */ (form.elements.namedItem(name));
  const zoneInput = field("timezone");
  const startInput = field("start");
  const preview = /** @type {HTMLElement | null} */ ($("#start-preview"));
  const zones = allZones();

  // The searchable list: every zone the browser knows, with its current UTC offset.
  const list = /** @type {HTMLDataListElement | null} */ ($("#zones"));
  if (list && zones.length > 1) {
    const now = Date.now();
    const options = zones.map((zone) => {
      const option = document.createElement("option");
      option.value = zone;
      const minutes = offsetMinutes(now, zone);
      const sign = minutes < 0 ? "−" : "+";
      const abs = Math.abs(minutes);
      option.label = `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
      return option;
    });
    list.replaceChildren(...options);
  }
  if (form.dataset.defaultZone === "browser") zoneInput.value = browserZone();

  function updatePreview() {
    if (!preview) return;
    const zone = zoneInput.value.trim();
    if (!startInput.value || !isZone(zone)) {
      preview.hidden = !(!startInput.value && isZone(zone));
      preview.textContent = t("No start time: the room opens as soon as it is saved.");
      delete preview.dataset.past;
      return;
    }
    const at = wallTimeToUtc(startInput.value, zone);
    if (at === null) {
      preview.hidden = true;
      return;
    }
    const mine = browserZone();
    const day = dayIn(at, zone);
    const when = [day, timeIn(at, zone)].join(", ");
    const where = zone === "UTC" ? "UTC" : place(zone);
    const also = [];
    // TRANSLATORS: {time} is a time (or a date and time), e.g. "14:00"
    if (zone !== "UTC") also.push(t("{time} UTC", { time: timeOrDayIn(at, "UTC", day) }));
    if (mine !== zone && mine !== "UTC") {
      // TRANSLATORS: {place} is the city of the browser's time zone, e.g. "Tokyo"
      also.push(t("{time} your time ({place})", { time: timeOrDayIn(at, mine, day), place: place(mine) }));
    }
    // "… in New York is 14:00 UTC and 23:00 your time (Tokyo)."
    let text = also.length
      ? t("{when} in {place} is {others}.", { when, place: where, others: listOf(also) })
      : t("{when} in {place}.", { when, place: where });
    const past = at < Date.now();
    if (past) text += " " + t("That is in the past.");
    preview.dataset.past = String(past);
    preview.textContent = text;
    preview.hidden = false;
  }

  // ---------------------------------------------------------------- validation

  /** @type {Record<string, (input: HTMLInputElement) => string>} */
  const checks = {
    title: (input) => (input.value.trim() ? "" : t("Give the event a title.")),
    start: (input) => (input.validity.badInput ? t("Enter a complete date and time.") : ""),
    timezone: (input) => {
      const value = input.value.trim();
      if (!value) return t("Choose a time zone.");
      return isZone(value) ? "" : t("“{value}” is not a time zone. Pick one from the list, e.g. Europe/Berlin.", { value });
    },
    duration_minutes: (input) => wholeNumber(input, 1, 1440, t("The duration is 1 to 1440 minutes.")),
    join_window_minutes: (input) =>
      wholeNumber(input, 0, 1440, t("The lobby opens 0 to 1440 minutes before the start.")),
    camera_limit: (input) => wholeNumber(input, 1, 7, t("Choose 1 to 7 cameras.")),
    thank_you_url: (input) => {
      const value = input.value.trim();
      if (!value) return "";
      return WEB_ADDRESS.test(value) && value.length <= 2000
        ? ""
        : t("Enter a full web address starting with https://");
    },
    external_url: (input) => {
      const value = input.value.trim();
      if (!value) return "";
      return WEB_ADDRESS.test(value) && value.length <= 2000
        ? ""
        : t("Enter a full web address starting with https://");
    },
  };

  /** @param {HTMLInputElement} input @param {number} min @param {number} max @param {string} message */
  function wholeNumber(input, min, max, message) {
    const value = input.value.trim();
    if (!/^\d+$/.test(value)) return message;
    const n = Number(value);
    return n >= min && n <= max ? "" : message;
  }

  /** @param {string} name @param {string} message */
  function showError(name, message) {
    const input = field(name);
    const slot = document.getElementById(`${name}-error`);
    if (!input || !slot) return;
    slot.textContent = message;
    slot.hidden = !message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  /** @param {string} name */
  function check(name) {
    const input = field(name);
    const message = checks[name](input);
    showError(name, message);
    return message;
  }

  const touched = new Set();
  for (const name of Object.keys(checks)) {
    const input = field(name);
    input.addEventListener("blur", () => {
      if (name === "timezone") {
        const resolved = resolveZone(input.value, zones);
        if (resolved !== input.value) {
          input.value = resolved;
          updatePreview();
        }
      }
      if (input.value.trim() || touched.has(name)) {
        touched.add(name);
        check(name);
      }
    });
    input.addEventListener("input", () => {
      if (touched.has(name) || input.getAttribute("aria-invalid") === "true") check(name);
    });
  }
  zoneInput.addEventListener("input", updatePreview);
  zoneInput.addEventListener("change", updatePreview);
  startInput.addEventListener("input", updatePreview);
  startInput.addEventListener("change", updatePreview);

  // Our own messages instead of the browser's bubbles (those stay when scripts are off).
  form.noValidate = true;
  form.addEventListener("submit", (event) => {
    zoneInput.value = resolveZone(zoneInput.value, zones);
    let first = null;
    for (const name of Object.keys(checks)) {
      touched.add(name);
      if (check(name) && !first) first = field(name);
    }
    if (first) {
      event.preventDefault();
      first.focus();
      return;
    }
    busy(form, t("Saving…"));
  });

  // The server's message (one, about the first wrong field): also show it at that field.
  const serverError = $("[data-form-error-text]");
  if (serverError) {
    // The server names only the first problem; say the others the page can see, too.
    for (const name of Object.keys(checks)) {
      touched.add(name);
      check(name);
    }
    const text = (serverError.textContent ?? "").toLowerCase();
    // Words of the server's message that name a field (not shown: matched against it).
    /** @type {[string, string][]} */
    const topics = [
      ["time zone", "timezone"], // i18n-ignore
      ["title", "title"],
      ["agenda", "agenda"],
      ["lobby message", "lobby_message"], // i18n-ignore
      ["start", "start"],
      ["duration", "duration_minutes"],
      ["join window", "join_window_minutes"], // i18n-ignore
      ["camera limit", "camera_limit"], // i18n-ignore
      ["thank-you url", "thank_you_url"], // i18n-ignore
      ["external player", "external_url"], // i18n-ignore
      ["access type", "access_type"], // i18n-ignore
    ];
    const hit = topics.find(([words]) => text.includes(words));
    if (hit) {
      const message = serverError.textContent ?? "";
      showError(hit[1], message.charAt(0).toUpperCase() + message.slice(1));
      field(hit[1])?.focus();
    }
  }

  updatePreview();
}
