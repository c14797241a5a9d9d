// The prejoin view: the name form (or the reservation code, or the password), the
// credential this page enters with, the Enter button while joining and join errors.
// A registrant's personal link (`#pass=rp-…`) is the credential on any event: the view then
// greets them by the registration's name and asks for no code or password.
// The presenters' device check on the same view is in devices.js.

import { setText, t } from "../i18n.js";
import { byId, errorText, forget, recall, remember, savedName, setBusy } from "../ui.js";
import { ACCESS, EVENT_ID, JOIN_TOKEN, PRESENTER_KEY, REGISTRATION_REQUIRED, STARTS_AT } from "./page.js";

const TOKEN_KEY = `webinar.token.${EVENT_ID}`;
const PASS_KEY = `webinar.pass.${EVENT_ID}`;

/** @param {string | null} credential */
function isPass(credential) {
  return credential !== null && credential.startsWith("rp-");
}

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
  const pass = fragment.get("pass");
  if (token || code || pass) history.replaceState(null, "", window.location.pathname + window.location.search);
  if (pass) {
    remember(PASS_KEY, pass, "session"); // a reload keeps it (not in private mode)
    return pass;
  }
  const kept = recall(PASS_KEY, "session");
  if (kept) return kept;
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
    /** A registrant's personal link this page enters with (see greet). @type {string | null} */
    this.pass = isPass(this.credential) ? this.credential : null;
    if (this.pass) this.greet(this.pass);
    /** Entering with a personal invitation (`#token=`): no password or code is asked. */
    this.invited = !PRESENTER_KEY && this.credential !== null && this.pass === null;
    if (this.invited) this.byInvitation(true);
    byId("prejoin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.pass) {
        // The name is the registration's (the server enters it); the link is all we need.
        this.credential = this.pass;
        onEnter(this.nameInput.value || savedName() || t("Guest"));
        return;
      }
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

  /**
   * Entering with a personal link: no code or password is asked, and the form shows the
   * name the link admits (looked up on the server; a link of no registration here is said so).
   * @param {string} pass
   */
  async greet(pass) {
    const codeCard = document.querySelector("#prejoin-form .access-card");
    const passwordField = document.querySelector("#prejoin-form .access-password-field");
    /** @param {boolean} on */
    const byLink = (on) => {
      for (const part of [codeCard, passwordField]) if (part instanceof HTMLElement) part.hidden = on;
      document.getElementById("prejoin-register")?.toggleAttribute("hidden", on);
      byId("prejoin-form").hidden = !on && REGISTRATION_REQUIRED && ACCESS === "open";
    };
    byLink(true);
    if (codeCard) setText(this.button, "Join webinar");
    /** @type {{name?: string, status?: string, message?: string} | null} */
    let answer = null;
    let ok = false;
    try {
      const response = await fetch(`/e/${encodeURIComponent(EVENT_ID)}/pass`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ pass }),
        credentials: "same-origin",
      });
      ok = response.ok;
      answer = await response.json().catch(() => null);
      if (!ok && response.status !== 404) return; // busy or rate-limited: the entry itself will say
    } catch {
      return; // offline: entering will say what is wrong
    }
    if (!ok || !answer?.name) {
      forget(PASS_KEY, "session");
      this.pass = null;
      this.credential = ACCESS === "token" ? recall(TOKEN_KEY, "session") : null;
      byLink(false);
      if (codeCard) setText(this.button, "Enter with my code");
      this.fail(() => t("This personal link is not valid for this webinar. Use the link from your own confirmation e-mail."));
      return;
    }
    const name = answer.name;
    this.nameInput.value = name;
    this.nameInput.readOnly = true;
    byId("prejoin-pass-name").textContent = name;
    byId("prejoin-pass").hidden = false;
    const status = answer.status;
    if (status === "waitlisted") {
      this.fail(() => t("You are on the waiting list: your link lets you in once a place frees for you (you get an e-mail)."));
    } else if (status === "pending") {
      this.fail(() => t("Your registration waits for payment confirmation: your link lets you in once it is confirmed."));
    } else if (status === "cancelled" || status === "rejected") {
      this.fail(() => t("This registration was cancelled: its link no longer lets you in."));
    }
  }

  /**
   * Entering with an invitation's personal link (or no more): the code or password field, and
   * the registration card of an open event that requires registration, give way to a hint.
   * @param {boolean} on
   */
  byInvitation(on) {
    const codeCard = document.querySelector("#prejoin-form .access-card");
    const passwordField = document.querySelector("#prejoin-form .access-password-field");
    for (const part of [codeCard, passwordField]) if (part instanceof HTMLElement) part.hidden = on;
    document.getElementById("prejoin-invited")?.toggleAttribute("hidden", !on);
    document.getElementById("prejoin-register")?.toggleAttribute("hidden", on);
    byId("prejoin-form").hidden = !on && REGISTRATION_REQUIRED && ACCESS === "open";
    if (codeCard && on) setText(this.button, "Join webinar");
    else if (codeCard) setText(this.button, "Enter with my code");
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
      // A withdrawn invitation: the event's own way in (password, code, registration) again.
      this.invited = false;
      this.credential = null;
      forget(TOKEN_KEY, "session");
      this.byInvitation(false);
    }
    this.fail(() =>
      errorText(failure, { startsAt: STARTS_AT, access: ACCESS, personal: this.pass !== null, registration: REGISTRATION_REQUIRED }),
    );
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
