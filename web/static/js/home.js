// The home page: join an event by its ID.

import { t } from "./i18n.js";
import { AUTOJOIN_KEY, byId, cleanName, remember, saveName, savedName } from "./ui.js";

// The separators the server accepts between digit groups (webinar.ids).
const SEPARATORS = /[\s\-._\u00a0\u2010-\u2014\u2212]/g;

/**
 * The 9 digits of a typed event ID, or null.
 * @param {string} text
 */
export function normalizeEventId(text) {
  if (text.length > 40) return null;
  const digits = text.replace(SEPARATORS, "");
  return /^[0-9]{9}$/.test(digits) ? digits : null;
}

const form = /** @type {HTMLFormElement} */ (byId("join-form"));
const idInput = /** @type {HTMLInputElement} */ (byId("event-id"));
const nameInput = /** @type {HTMLInputElement} */ (byId("name"));
const idError = byId("event-id-error");
const nameError = byId("name-error");

if (!nameInput.value) nameInput.value = savedName();
if (!idInput.value) idInput.focus();
else if (!nameInput.value) nameInput.focus();

/**
 * @param {HTMLInputElement} input
 * @param {HTMLElement} message
 * @param {string} text  empty clears the error
 */
function setError(input, message, text) {
  message.textContent = text;
  message.hidden = !text;
  input.setAttribute("aria-invalid", text ? "true" : "false");
}

idInput.addEventListener("input", () => setError(idInput, idError, ""));
nameInput.addEventListener("input", () => setError(nameInput, nameError, ""));

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const eventId = normalizeEventId(idInput.value.trim());
  const name = cleanName(nameInput.value);
  setError(idInput, idError, eventId ? "" : t("An event ID has 9 digits, like 123\u2011456\u2011789."));
  setError(nameInput, nameError, name ? "" : t("Please enter your name."));
  if (!eventId) {
    idInput.focus();
    return;
  }
  if (!name) {
    nameInput.focus();
    return;
  }
  saveName(name);
  remember(AUTOJOIN_KEY, eventId, "session"); // if not, the room page asks for the name again
  const button = /** @type {HTMLButtonElement} */ (byId("join-button"));
  button.disabled = true;
  button.textContent = t("Joining…");
  location.assign(`/e/${eventId}`);
});

// Back/forward cache: re-enable the button when the page is shown again.
window.addEventListener("pageshow", () => {
  const button = /** @type {HTMLButtonElement} */ (byId("join-button"));
  button.disabled = false;
  button.textContent = t("Join");
});
