// @ts-check
/**
 * The rating an attendee is asked in the ended view after the host ended the event for
 * everyone: 1 to 5 stars and an optional comment, sent with the token the room handed over
 * (`room-ended`'s `rating_token`) as JSON to `POST /rate/{token}`. A second rating (here or
 * from the thank-you e-mail) replaces the first.
 */
import { t } from "../i18n.js";
import { byId } from "../ui.js";

/**
 * Show the rating form.
 * @param {string} token the attendee's rating token
 * @param {string | null} next the organiser's own thank-you page to go on to, or null
 */
export function askRating(token, next) {
  const form = /** @type {HTMLFormElement} */ (byId("rating"));
  const error = byId("rating-error");
  const thanks = byId("rating-thanks");
  const button = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
  const onward = /** @type {HTMLAnchorElement} */ (byId("ended-continue"));
  if (next) {
    onward.href = next;
    onward.hidden = false;
  }
  form.hidden = false;
  thanks.hidden = true;
  /** @param {string} text */
  const fail = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  let sending = false;
  form.addEventListener("change", () => {
    error.hidden = true;
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (sending) return;
    const data = new FormData(form);
    const stars = Number(data.get("stars") || 0);
    if (!stars) {
      fail(t("Choose 1 to 5 stars."));
      return;
    }
    sending = true;
    button.disabled = true;
    error.hidden = true;
    try {
      const response = await fetch(`/rate/${encodeURIComponent(token)}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ stars, comment: String(data.get("comment") ?? "") }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        fail(typeof body?.message === "string" ? body.message : t("The rating could not be sent. Try again."));
        return;
      }
      form.hidden = true;
      thanks.hidden = false;
      if (next) setTimeout(() => location.assign(next), 2500);
    } catch {
      fail(t("The rating could not be sent. Try again."));
    } finally {
      sending = false;
      button.disabled = false;
    }
  });
}
