// The lobby view: where attendees wait before a scheduled event starts (title, start
// time with a running countdown, the organiser's message and agenda, who else is here).
// The lobby chat is interaction.js's.

import { nt, t } from "../i18n.js";
import { byId, formatCountdown, formatRelative, formatTime } from "../ui.js";

/** @typedef {import("./page.js").WebinarConnection} WebinarConnection */

export class Lobby {
  /**
   * @param {(() => void) | null} onLeave  the lobby's Leave button
   * @param {HTMLElement | null} [root]  a copy of the lobby's card to draw into instead (the
   *   presenters' audience view, room/audience.js): its parts carry data-part="<the id>"
   */
  constructor(onLeave, root = null) {
    this.countdownTimer = 0;
    /** @param {string} id */
    this.part = (id) => (root ? /** @type {HTMLElement} */ (root.querySelector(`[data-part="${id}"]`)) : byId(id));
    if (onLeave) this.part("lobby-leave").addEventListener("click", () => onLeave());
  }

  /**
   * Show the room's lobby as the connection knows it; the countdown runs until stop().
   * @param {WebinarConnection} conn
   */
  render(conn) {
    const room = conn.room;
    if (!room) return;
    this.part("lobby-title").textContent = room.title || conn.joined?.event.title || "";
    const startsAt = room.starts_at ?? conn.joined?.event.starts_at ?? null;
    this.part("lobby-when").textContent = startsAt ? t("Starts {time} (your time)", { time: formatTime(startsAt) }) : "";
    const message = this.part("lobby-message");
    message.textContent = room.lobby_message || "";
    message.hidden = !room.lobby_message;
    this.part("lobby-agenda").textContent = room.agenda || "";
    this.part("lobby-agenda-box").hidden = !room.agenda;
    const others = (conn.counts?.total ?? conn.participants.size) - 1;
    this.part("lobby-people").textContent =
      others > 0 ? nt("{n} other person is here.", "{n} other people are here.", others) : t("You are the first one here.");
    this.startCountdown(startsAt);
  }

  /** Where focus goes when the view shows. */
  focus() {
    this.part("lobby-title").focus?.();
  }

  /** @param {string | null} startsAt */
  startCountdown(startsAt) {
    const target = startsAt ? new Date(startsAt).getTime() : NaN;
    const tick = () => {
      const left = target - Date.now();
      const countdown = this.part("lobby-countdown");
      const label = this.part("lobby-countdown-label");
      if (Number.isNaN(target)) {
        // TRANSLATORS: the lobby's countdown reads "Starting" (small, above) "soon" (large)
        label.textContent = t("Starting");
        // TRANSLATORS: the lobby's countdown reads "Starting" (small, above) "soon" (large)
        countdown.textContent = t("soon");
        countdown.setAttribute("aria-label", t("Starting soon"));
      } else if (left > 0) {
        // TRANSLATORS: above the lobby's countdown ("Starts in" 4:59)
        label.textContent = t("Starts in");
        countdown.textContent = formatCountdown(left);
        // TRANSLATORS: {when} is a relative time, e.g. "in 5 minutes"
        countdown.setAttribute("aria-label", t("Starts {when}", { when: formatRelative(left) }));
      } else {
        label.textContent = t("Starting");
        // TRANSLATORS: the lobby's countdown reads "Starting" (small, above) "any moment now" (large)
        countdown.textContent = t("any moment now");
        countdown.setAttribute("aria-label", t("Starting any moment now"));
      }
      countdown.dataset.remaining = String(Math.max(0, Math.round(left / 1000)));
    };
    tick();
    if (!this.countdownTimer) this.countdownTimer = window.setInterval(tick, 1000);
  }

  stop() {
    window.clearInterval(this.countdownTimer);
    this.countdownTimer = 0;
  }
}
