// The dashboard's polls page: the same builder as the room's, saved over HTTP; prepared
// polls that never ran can be changed (loaded back into the builder) or deleted.

import { t } from "./i18n.js";
import { PollBuilder } from "./polls.js";

const root = /** @type {HTMLElement} */ (document.getElementById("poll-builder-root"));
const errorBox = /** @type {HTMLElement} */ (document.querySelector("[data-testid=poll-builder-error]"));
const eventId = root.dataset.eventId ?? "";
const base = `/dashboard/events/${encodeURIComponent(eventId)}/polls`;
const headers = { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf ?? "" };
/** @type {any[]} */
const prepared = JSON.parse(document.getElementById("prepared-polls-data")?.textContent || "[]");

/** @param {string} text */
function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

/**
 * @param {string} url
 * @param {RequestInit} init
 */
async function call(url, init) {
  const response = await fetch(url, { ...init, headers });
  const reply = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(reply.message ?? t("not saved ({status})", { status: response.status }));
  return reply;
}

const builder = new PollBuilder({
  eventId,
  presenterKey: root.dataset.presenterKey ?? null,
  toast: showError,
  save: async (/** @type {any} */ spec, /** @type {string | null} */ pollId) => {
    if (pollId) await call(`${base}/${encodeURIComponent(pollId)}`, { method: "PUT", body: JSON.stringify(spec) });
    else await call(base, { method: "POST", body: JSON.stringify(spec) });
    window.location.reload();
  },
});
builder.element.hidden = false;
root.append(builder.element);

for (const item of document.querySelectorAll("[data-testid=prepared-poll]")) {
  const pollId = /** @type {HTMLElement} */ (item).dataset.pollId ?? "";
  const poll = prepared.find((p) => p.poll_id === pollId);
  item.querySelector("[data-testid=prepared-poll-edit]")?.addEventListener("click", () => {
    if (!poll) return;
    errorBox.hidden = true;
    builder.edit(poll);
    document.getElementById("new-poll-title")?.scrollIntoView({ block: "start" });
  });
  item.querySelector("[data-testid=prepared-poll-delete]")?.addEventListener("click", async () => {
    const question = poll ? t("Delete “{title}”?", { title: poll.title }) : t("Delete “this poll”?");
    if (!window.confirm(question)) return;
    try {
      await call(`${base}/${encodeURIComponent(pollId)}`, { method: "DELETE" });
      window.location.reload();
    } catch (failure) {
      showError(failure instanceof Error ? failure.message : String(failure));
    }
  });
}
