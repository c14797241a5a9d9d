// Emoji reactions (docs/protocol.md, "Reactions"): the React button with its six emoji
// (everyone's: attendees, presenters and hosts), everyone's reactions floating up over the
// stage, and the presenters' switch that turns attendees' reactions off and on (in the same
// bubble, "Attendees may react"; attendees then see a disabled "Reactions off" button).
//
// The server sends the room's reactions as counts per interval (`reactions` {counts,
// interval}), one message for the whole room, so a thousand claps are a few messages a
// second. Our own reactions float at once when we press; the counts that come back include
// them, so those are taken off before the rest floats. How many float at once is bounded:
// a big count floats a few emoji and one "×n" bubble. With prefers-reduced-motion the emoji
// fade in and out where they appear instead of rising (app's CSS, interaction.css).

import { formatNumber, onLanguage, setText, t } from "../i18n.js";
import { isStaff } from "../participants.js";
import { byId, el } from "../ui.js";

/** The reactions in screen order (the server's `rooms/reactions.py` REACTIONS). */
export const REACTIONS = [
  { name: "thumbs-up", emoji: "👍", label: () => t("Thumbs up") },
  { name: "clap", emoji: "👏", label: () => t("Applause") },
  { name: "heart", emoji: "❤️", label: () => t("Love it") },
  { name: "laugh", emoji: "😂", label: () => t("Laughing") },
  { name: "wow", emoji: "😮", label: () => t("Surprised") },
  { name: "party", emoji: "🎉", label: () => t("Celebrate") },
];
const EMOJI = new Map(REACTIONS.map((r) => [r.name, r.emoji]));

// The server's per-person limit (REACTION_BURST, REACTIONS_PER_SECOND): the buttons keep under it.
const BURST = 8;
const PER_SECOND = 3;
/** At most this many of one reaction float from one message; more show as one "×n" bubble. */
const FLOAT_EACH = 6;
/** At most this many emoji float at once on the page. */
const MAX_FLOATING = 40;
/** Our own reactions not seen back in a message after this long are forgotten (ms). */
const OWN_FORGET_MS = 3000;
/** How long one emoji floats (ms; the CSS animation's length). */
const FLOAT_MS = 2600;

export class Reactions {
  /** @param {{showFailure: (error: unknown) => void}} host */
  constructor(host) {
    this.host = host;
    /** @type {import("../protocol.js").WebinarConnection | null} */
    this.conn = null;
    /** The room's switch: whether attendees may react (`reactions-state`). */
    this.enabled = true;
    this.role = "attendee";
    this.tokens = BURST;
    this.tokensAt = performance.now();
    /** Our own reactions shown at once and not yet in a `reactions` message: name → times (ms). @type {Map<string, number[]>} */
    this.own = new Map();
    /** Reactions received (all, ours included): tests read it. */
    this.received = 0;
    this.layer = el("div", { class: "reaction-layer", "data-testid": "reaction-layer", "aria-hidden": "true" });
    byId("stage").append(this.layer);
    // the attendees' button and the picker it opens
    this.toggle = /** @type {HTMLButtonElement} */ (el("button", {
      type: "button",
      class: "btn btn-toggle-plain reactions-toggle",
      "data-testid": "reactions-toggle",
      "aria-expanded": "false",
      "aria-controls": "reaction-picker",
      hidden: true,
    }));
    this.toggleLabel = el("span", { class: "label" });
    this.toggle.append(el("span", { class: "reactions-icon", "aria-hidden": "true", text: "😊" }), this.toggleLabel);
    /** @type {HTMLButtonElement[]} */
    this.buttons = REACTIONS.map((r) => {
      const button = /** @type {HTMLButtonElement} */ (
        el("button", { type: "button", class: "reaction-button", "data-testid": "reaction-button", "data-reaction": r.name, text: r.emoji })
      );
      button.addEventListener("click", () => this.send(r.name, button));
      return button;
    });
    this.emojiRow = el("div", { class: "reaction-emoji" }, this.buttons);
    // presenters and hosts: attendees may react (the room's switch)
    this.enabledBox = /** @type {HTMLInputElement} */ (
      el("input", { type: "checkbox", "data-testid": "reactions-enabled-toggle", checked: true })
    );
    this.enabledLabel = el("span");
    this.switchRow = el("label", { class: "check reaction-switch" }, [this.enabledBox, this.enabledLabel]);
    this.enabledBox.addEventListener("change", () => this.setEnabled(this.enabledBox.checked));
    this.picker = el("div", { id: "reaction-picker", class: "reaction-picker", "data-testid": "reaction-picker", role: "group", hidden: true }, [
      this.emojiRow,
      this.switchRow,
    ]);
    this.wrap = el("div", { class: "reactions-wrap" }, [this.toggle, this.picker]);
    byId("raise-hand").after(this.wrap);
    this.toggle.addEventListener("click", () => this.setOpen(this.picker.hidden));
    this.picker.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        this.setOpen(false);
        this.toggle.focus();
      }
    });
    document.addEventListener("pointerdown", (event) => {
      if (!this.picker.hidden && !this.wrap.contains(/** @type {Node} */ (event.target))) this.setOpen(false);
    });
    this.relabel();
    onLanguage(() => this.relabel());
  }

  relabel() {
    this.picker.setAttribute("aria-label", t("Reactions"));
    setText(this.enabledLabel, "Attendees may react");
    REACTIONS.forEach((r, i) => {
      this.buttons[i].setAttribute("aria-label", r.label());
      this.buttons[i].setAttribute("title", r.label());
    });
    this.render();
  }

  /** Whether we may react now: attendees while the switch is on; presenters and hosts always. */
  mayReact() {
    return this.enabled || isStaff(this.role);
  }

  render() {
    const staff = isStaff(this.role);
    const off = !this.mayReact();
    this.toggle.disabled = off;
    this.toggle.dataset.enabled = String(this.enabled);
    if (off) {
      setText(this.toggleLabel, "Reactions off");
      this.toggle.setAttribute("title", t("The presenters turned reactions off"));
      this.setOpen(false);
    } else {
      setText(this.toggleLabel, "React");
      this.toggle.setAttribute(
        "title",
        staff && !this.enabled ? t("Reactions are off for attendees; yours still show") : t("Send a reaction everyone sees over the stage"),
      );
    }
    this.switchRow.hidden = !staff;
    this.enabledBox.checked = this.enabled;
    this.picker.classList.toggle("reaction-picker-tools", staff);
  }

  /** @param {string} role */
  setRole(role) {
    this.role = role;
    this.toggle.hidden = false;
    // attendees: beside Raise hand; presenters and hosts: after their media and Devices
    const anchor = byId(isStaff(role) ? "settings" : "raise-hand");
    if (anchor.nextElementSibling !== this.wrap) anchor.after(this.wrap);
    this.render();
  }

  /**
   * The sync reply (`interaction-state`): the switch.
   * @param {any} state
   */
  load(state) {
    if (state?.reactions) this.setState(state.reactions);
  }

  /** A `reactions-state`. @param {{enabled: boolean}} state */
  setState(state) {
    this.enabled = state.enabled !== false;
    this.render();
  }

  /**
   * A presenter switches attendees' reactions (the box goes back if the server refuses).
   * @param {boolean} on
   */
  setEnabled(on) {
    const conn = this.conn;
    if (!conn) {
      this.enabledBox.checked = this.enabled;
      return;
    }
    conn.request("reactions-settings", { enabled: on }).catch((/** @type {unknown} */ error) => {
      this.enabledBox.checked = this.enabled;
      this.host.showFailure(error);
    });
  }

  /** @param {import("../protocol.js").WebinarConnection} conn */
  attach(conn) {
    this.conn = conn;
    this.own.clear();
    conn.addEventListener("server-message", (event) => {
      const message = /** @type {CustomEvent} */ (event).detail;
      if (this.conn !== conn) return;
      if (message.type === "reactions") this.show(message.counts ?? {}, Number(message.interval) || 0.25);
      else if (message.type === "reactions-state") this.setState(message);
    });
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.picker.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    if (open) this.buttons[0].focus();
  }

  /**
   * Send one reaction (kept under the server's limit) and float it at once.
   * @param {string} name
   * @param {HTMLButtonElement} button
   */
  send(name, button) {
    const now = performance.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.tokensAt) / 1000) * PER_SECOND);
    this.tokensAt = now;
    if (!this.mayReact()) return;
    if (this.tokens < 1 || !this.conn?.send("react", { reaction: name })) {
      button.classList.remove("reaction-wait");
      void button.offsetWidth; // restart the "not so fast" shake
      button.classList.add("reaction-wait");
      return;
    }
    this.tokens -= 1;
    const times = this.own.get(name) ?? [];
    times.push(now);
    this.own.set(name, times);
    this.float(name, { own: true, delay: 0 });
  }

  /**
   * A `reactions` message: float what others sent (ours floated already).
   * @param {Record<string, number>} counts
   * @param {number} interval  seconds the counts cover: the emoji are spread over it
   */
  show(counts, interval) {
    const now = performance.now();
    for (const [name, raw] of Object.entries(counts)) {
      if (!EMOJI.has(name)) continue;
      let n = Math.max(0, Math.floor(Number(raw) || 0));
      this.received += n;
      const times = (this.own.get(name) ?? []).filter((at) => now - at < OWN_FORGET_MS);
      const mine = Math.min(n, times.length);
      times.splice(0, mine);
      this.own.set(name, times);
      n -= mine;
      if (n <= 0) continue;
      const floating = Math.min(n, FLOAT_EACH);
      for (let i = 0; i < floating; i++) this.float(name, { own: false, delay: Math.random() * interval * 1000 });
      if (n > FLOAT_EACH) this.float(name, { own: false, delay: 0, count: n });
    }
  }

  /**
   * One emoji rising over the stage (or, with reduced motion, fading where it appears).
   * @param {string} name
   * @param {{own: boolean, delay: number, count?: number}} options
   */
  float(name, { own, delay, count }) {
    if (this.layer.childElementCount >= MAX_FLOATING) return;
    const bubble = el("span", {
      class: count ? "reaction-float reaction-many" : "reaction-float", // i18n-ignore
      "data-testid": "reaction-float",
      "data-reaction": name,
      "data-own": own ? "true" : "false",
      text: count ? `${EMOJI.get(name)} ×${formatNumber(count)}` : EMOJI.get(name),
    });
    bubble.style.setProperty("--x", `${62 + Math.random() * 28}%`); // the right: clear of the tiles' names
    bubble.style.setProperty("--drift", `${Math.round((Math.random() - 0.5) * 60)}px`);
    bubble.style.animationDelay = `${Math.round(delay)}ms`;
    this.layer.append(bubble);
    // removed when its animation ends (and in any case a little after, should it not run)
    const done = () => bubble.remove();
    bubble.addEventListener("animationend", done, { once: true });
    setTimeout(done, FLOAT_MS + delay + 500);
  }
}
