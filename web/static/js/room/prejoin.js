// The prejoin view: the name form (or the reservation code, or the password), the
// credential this page enters with, the Enter button while joining and join errors.
// The presenters' device check on the same view is in devices.js.

import { setText, t } from "../i18n.js";
import { byId, errorText, forget, recall, remember, savedName, setBusy } from "../ui.js";
import { ACCESS, EVENT_ID, JOIN_TOKEN, PRESENTER_KEY, STARTS_AT } from "./page.js";

const TOKEN_KEY = `webinar.token.${EVENT_ID}`;

/**
 * The secret this page enters with: the presenter or host key, or for attendees the
 * invitation token from their personal link's fragment (`#token=…`, which never reaches the
 * server's logs; kept in sessionStorage so a reload works, then removed from the address
 * bar). An invitation admits its invitee by name whatever the event's access type.
 * @returns {string | null}
 */
function initialCredential() {
  if (PRESENTER_KEY) return PRESENTER_KEY;
  if (JOIN_TOKEN) return null; // the join token is the credential (Prejoin.joinToken)
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get("token");
  const code = fragment.get("code");
  if (token || code) history.replaceState(null, "", window.location.pathname + window.location.search);
  if (token) {
    remember(TOKEN_KEY, token, "session"); // if not (private mode), the token lives in this page only
    return token;
  }
  if (code && ACCESS === "paid") {
    const input = /** @type {HTMLInputElement | null} */ (document.getElementById("access-code"));
    if (input) input.value = code;
  }
  return recall(TOKEN_KEY, "session");
}

export class Prejoin {
  /** @param {(name: string) => void} onEnter  the form was sent with this name */
  constructor(onEnter) {
    /** What `join` sends as `credential` (see initialCredential). @type {string | null} */
    this.credential = initialCredential();
    /** Entering with a personal invitation: no password or code is asked. */
    this.invited = !PRESENTER_KEY && this.credential !== null;
    /** The signed join token this page enters with (`?jwt=`), if any. */
    this.joinToken = JOIN_TOKEN;
    this.nameInput = /** @type {HTMLInputElement} */ (byId("prejoin-name"));
    this.nameInput.value = savedName();
    this.error = byId("prejoin-error");
    /** What the error line says (asked again when the language changes). @type {(() => string) | null} */
    this.errorWords = null;
    this.button = /** @type {HTMLButtonElement} */ (byId("enter-room"));
    const codeInput = /** @type {HTMLInputElement | null} */ (document.getElementById("access-code"));
    const passwordInput = /** @type {HTMLInputElement | null} */ (document.getElementById("access-password"));
    if (this.invited) {
      // The invitation is the ticket: the code or password field goes, the hint says why.
      for (const input of [codeInput, passwordInput]) input?.closest(".field")?.setAttribute("hidden", "");
      document.getElementById("prejoin-invited")?.removeAttribute("hidden");
      if (codeInput) setText(this.button, "Join webinar");
    }
    byId("prejoin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.invited) {
        onEnter(codeInput ? savedName() || t("Guest") : this.nameInput.value); // the server names them
        return;
      }
      if (codeInput) {
        // The name comes from the reservation; the code is all we ask for.
        if (!codeInput.value.trim()) {
          this.fail(() => t("Please enter the reservation code from your confirmation e-mail."), codeInput);
          return;
        }
        this.credential = codeInput.value.trim();
        onEnter(savedName() || t("Guest"));
        return;
      }
      if (passwordInput) {
        if (!passwordInput.value) {
          this.fail(() => t("Please enter the webinar's password."), passwordInput);
          return;
        }
        this.credential = passwordInput.value;
      }
      onEnter(this.nameInput.value);
    });
  }

  /** The name typed in the form (the preview's avatar shows its initials). */
  get typedName() {
    return this.nameInput.value;
  }

  /** Where focus goes when the view shows. */
  focus() {
    (document.getElementById("access-code") ?? this.nameInput).focus();
  }

  /**
   * Say what is wrong with the form.
   * @param {() => string} words  the text (asked again when the language changes)
   * @param {HTMLInputElement} [field]  focused
   */
  fail(words, field) {
    this.errorWords = words;
    this.error.textContent = words();
    this.error.hidden = false;
    field?.focus();
  }

  /** The language changed: the error line says it again in the new one. */
  relabel() {
    if (this.errorWords && !this.error.hidden) this.error.textContent = this.errorWords();
  }

  askName() {
    this.fail(() => t("Please enter your name."), this.nameInput);
  }

  /**
   * Joining failed: say why (a wrong code is selected to be typed again).
   * @param {unknown} failure
   */
  joinFailed(failure) {
    if (this.invited && ACCESS !== "token") {
      // A withdrawn invitation: the event's own way in (password, code) is asked again.
      this.invited = false;
      this.credential = null;
      forget(TOKEN_KEY, "session");
      for (const id of ["access-code", "access-password"]) document.getElementById(id)?.closest(".field")?.removeAttribute("hidden");
      document.getElementById("prejoin-invited")?.setAttribute("hidden", "");
      if (document.getElementById("access-code")) setText(this.button, "Enter with my code");
    }
    this.fail(() => errorText(failure, { startsAt: STARTS_AT, access: ACCESS }));
    /** @type {HTMLInputElement | null} */ (document.getElementById("access-code"))?.select();
  }

  /**
   * The Enter button (and the ended view's Rejoin) while joining.
   * @param {boolean} busy
   */
  setBusy(busy) {
    if (busy) this.error.hidden = true;
    setBusy(this.button, busy);
    byId("rejoin").toggleAttribute("disabled", busy);
  }
}
