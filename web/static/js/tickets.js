// The tickets page: while e-mails wait in the event's outbox (a CSV import being sent, the
// update after a move), the count follows the server's; once all are out the page reloads
// to show each invitation's state.

import { nt } from "./i18n.js";

const box = document.querySelector('[data-testid="mail-progress"]');
if (box instanceof HTMLElement && Number(box.dataset.waiting) > 0 && box.dataset.progressUrl) {
  const url = box.dataset.progressUrl;
  const waiting = box.querySelector('[data-testid="mail-waiting"]');
  const timer = window.setInterval(async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return;
      /** @type {{waiting: number, failed: number}} */
      const state = await response.json();
      box.dataset.waiting = String(state.waiting);
      if (waiting) waiting.textContent = nt("{n} e-mail is waiting to be sent.", "{n} e-mails are waiting to be sent.", state.waiting);
      if (state.waiting === 0) {
        window.clearInterval(timer);
        window.location.reload();
      }
    } catch {
      // offline for a moment: the next tick asks again
    }
  }, 2000);
}
