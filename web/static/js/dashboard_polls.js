// The dashboard's polls page: the same builder as the room's, saved over HTTP.

import { PollBuilder } from "./polls.js";

const root = /** @type {HTMLElement} */ (document.getElementById("poll-builder-root"));
const errorBox = /** @type {HTMLElement} */ (document.querySelector("[data-testid=poll-builder-error]"));
const eventId = root.dataset.eventId ?? "";

const builder = new PollBuilder({
  eventId,
  presenterKey: root.dataset.presenterKey ?? null,
  toast: (/** @type {string} */ text) => {
    errorBox.textContent = text;
    errorBox.hidden = false;
  },
  save: async (/** @type {any} */ spec) => {
    const response = await fetch(`/dashboard/events/${encodeURIComponent(eventId)}/polls`, {
      method: "POST",
      body: JSON.stringify(spec),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf ?? "" },
    });
    const reply = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(reply.message ?? `not saved (${response.status})`);
    window.location.reload();
  },
});
builder.element.hidden = false;
root.append(builder.element);
