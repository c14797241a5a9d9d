// The chat panel: messages, the composer, and the presenters' moderation tools.
//
// Text is only ever set with textContent; links become <a> elements only for
// http:// and https:// URLs (linkify), so no message can inject markup.

import { formatDate, nt, onLanguage, setText, t } from "./i18n.js";
import { el, errorMessage } from "./ui.js";

export const MAX_CHAT_CHARS = 2000; // the server's bound (rooms/chat.py)
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?)\]}]+$/;

/**
 * Text with http(s) links made clickable, as DOM nodes (never HTML).
 * @param {string} text
 * @returns {DocumentFragment}
 */
export function linkify(text) {
  const out = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let url = match[0];
    const trail = url.match(TRAILING);
    if (trail) url = url.slice(0, -trail[0].length);
    const start = match.index ?? 0;
    out.append(text.slice(last, start));
    let safe = null;
    try {
      const parsed = new URL(url);
      if (parsed.protocol === "http:" || parsed.protocol === "https:") safe = parsed.href;
    } catch {
      safe = null;
    }
    if (safe) {
      out.append(el("a", { href: safe, target: "_blank", rel: "noopener noreferrer nofollow", text: url })); // i18n-ignore
    } else {
      out.append(url);
    }
    last = start + url.length;
  }
  out.append(text.slice(last));
  return out;
}

/** @param {number} at epoch seconds */
export function clock(at) {
  return formatDate(at * 1000, { hour: "2-digit", minute: "2-digit" });
}

const SLOW_CHOICES = [0, 5, 10, 30, 60, 300];

/** The slow-mode choice's label. @param {number} seconds */
function slowLabel(seconds) {
  return seconds ? t("Slow mode: {seconds} s", { seconds }) : t("Slow mode off");
}

export class ChatPanel {
  /** @param {any} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    /** @type {(messageId: string) => void} */
    this.onMarkQuestion = () => {};
    /** @type {Map<string, HTMLElement>} */
    this.rows = new Map();
    this.state = { enabled: true, slow_mode_seconds: 0, muted: false };
    /** participant ids muted in chat (as moderators learn of them) */
    this.mutedPeople = new Set();
    this.lastSeq = 0;
    const panel = /** @type {HTMLElement} */ (document.getElementById("panel-chat"));
    this.panel = panel;
    this.tools = el("div", { class: "panel-tools chat-tools", "data-testid": "chat-tools", hidden: true });
    this.enabledBox = /** @type {HTMLInputElement} */ (
      el("input", { type: "checkbox", "data-testid": "chat-enabled-toggle", checked: true })
    );
    this.slowSelect = /** @type {HTMLSelectElement} */ (el("select", { "data-testid": "chat-slow-mode", "aria-label": t("Slow mode") }));
    for (const seconds of SLOW_CHOICES) {
      this.slowSelect.append(el("option", { value: String(seconds), text: slowLabel(seconds) }));
    }
    this.tools.append(
      el("label", { class: "check" }, [this.enabledBox, " ", t("Attendees may chat")]),
      this.slowSelect,
    );
    this.enabledBox.addEventListener("change", () =>
      this.act("chat-settings", { enabled: this.enabledBox.checked }),
    );
    this.slowSelect.addEventListener("change", () =>
      this.act("chat-settings", { slow_mode_seconds: Number(this.slowSelect.value) }),
    );
    this.list = el("ol", {
      class: "chat-list",
      "data-testid": "chat-messages",
      "aria-live": "polite",
      "aria-label": t("Chat messages"),
      // shown while the list is empty (interaction.css)
      "data-empty": t("No messages yet. Say hello!"),
    });
    this.status = el("p", { class: "chat-status hint", "data-testid": "chat-status", hidden: true });
    this.input = /** @type {HTMLTextAreaElement} */ (
      el("textarea", {
        class: "chat-input",
        "data-testid": "chat-input",
        rows: 2,
        maxlength: MAX_CHAT_CHARS,
        placeholder: t("Write a message"),
        "aria-label": t("Chat message"),
      })
    );
    this.count = el("span", { class: "chat-count hint", "aria-live": "off" });
    this.send = el("button", { type: "submit", class: "btn btn-primary btn-small", "data-testid": "chat-send", text: t("Send") });
    const form = el("form", { class: "chat-form", "data-testid": "chat-form" }, [
      this.input,
      el("div", { class: "row chat-form-row" }, [this.count, this.send]),
    ]);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener("input", () => this.renderCount());
    panel.append(this.tools, this.list, this.status, form);
    this.renderCount();
    // unread messages while the chat is not in view: a count on the tab
    this.unread = 0;
    const seen = () => {
      if (this.visible()) this.setUnread(0);
    };
    const observer = new MutationObserver(seen);
    observer.observe(panel, { attributes: true, attributeFilter: ["hidden"] });
    const live = document.getElementById("live");
    if (live) observer.observe(live, { attributes: true, attributeFilter: ["data-panel"] });
    // a language switch in the room: the texts with numbers and the status line again
    onLanguage(() => {
      this.list.dataset.empty = t("No messages yet. Say hello!");
      for (const option of this.slowSelect.options) option.textContent = slowLabel(Number(option.value));
      this.renderCount();
      this.setUnread(this.unread);
      this.setState({ ...this.state });
    });
  }

  visible() {
    if (this.panel.parentElement?.id === "lobby-chat") return !this.panel.hidden;
    return !this.panel.hidden && document.getElementById("live")?.dataset.panel === "open";
  }

  /** @param {number} n */
  setUnread(n) {
    this.unread = n;
    const tab = document.getElementById("tab-chat");
    if (!tab) return;
    if (n) setText(tab, "Chat ({count})", { count: n > 99 ? "99+" : n });
    else setText(tab, "Chat");
    tab.dataset.unread = String(n);
  }

  renderCount() {
    const left = MAX_CHAT_CHARS - this.input.value.length;
    this.count.textContent = left < 200 ? nt("{n} character left", "{n} characters left", left) : "";
  }

  /**
   * @param {any} state  chat-state
   * @param {any[]} messages
   */
  load(state, messages) {
    this.list.replaceChildren();
    this.rows.clear();
    this.lastSeq = 0;
    for (const m of messages) this.add(m, false);
    this.setState(state);
  }

  /**
   * @param {any} m ChatInfo
   * @param {boolean} [fresh]  a new message (not history): counts as unread when out of view
   */
  add(m, fresh = true) {
    if (this.rows.has(m.message_id) || m.seq <= this.lastSeq) return;
    this.lastSeq = m.seq;
    const mine = m.participant_id === this.ctx.me();
    if (fresh && !mine && !this.visible()) this.setUnread(this.unread + 1);
    const actions = el("span", { class: "chat-actions" });
    const row = el(
      "li",
      {
        class: `chat-message${mine ? " mine" : ""}${m.role !== "attendee" ? " staff" : ""}`,
        "data-testid": "chat-message",
        "data-message-id": m.message_id,
        "data-participant-id": m.participant_id,
      },
      [
        el("div", { class: "chat-meta" }, [
          el("span", { class: "chat-name", "data-testid": "chat-message-name", "data-no-translate": true, text: m.name }),
          m.role !== "attendee" ? el("span", { class: "chat-badge", text: m.role === "host" ? t("Host") : t("Presenter") }) : null,
          el("time", { class: "chat-time", text: clock(m.at) }),
          actions,
        ]),
        el("p", { class: "chat-text", "data-testid": "chat-message-text", "data-no-translate": true }, [linkify(m.text)]),
      ],
    );
    this.rows.set(m.message_id, row);
    this.renderActions(row, m);
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    this.list.append(row);
    if (atBottom || mine) row.scrollIntoView({ block: "end" });
  }

  /**
   * @param {HTMLElement} row
   * @param {any} m
   */
  renderActions(row, m) {
    const actions = /** @type {HTMLElement} */ (row.querySelector(".chat-actions"));
    actions.replaceChildren();
    const staff = this.ctx.staff();
    const mine = m.participant_id === this.ctx.me();
    if (m.question_id) {
      actions.append(el("span", { class: "chat-badge question", "data-testid": "chat-is-question", text: t("Question") }));
    } else if (mine || staff) {
      const mark = el("button", { type: "button", class: "btn btn-ghost btn-tiny", "data-testid": "chat-mark-question", text: t("Ask as question"), title: t("Add to the Q&A list") });
      mark.addEventListener("click", () => this.onMarkQuestion(m.message_id));
      actions.append(mark);
    }
    if (!staff) return;
    const del = el("button", { type: "button", class: "btn btn-ghost btn-tiny", "data-testid": "chat-delete", text: t("Delete") });
    del.addEventListener("click", () => this.act("chat-delete", { message_id: m.message_id }));
    actions.append(del);
    if (m.role === "attendee") {
      const muted = this.mutedPeople.has(m.participant_id);
      const mute = el("button", { type: "button", class: "btn btn-ghost btn-tiny", "data-testid": "chat-mute", "aria-pressed": String(muted), text: muted ? t("Unmute") : t("Mute") });
      mute.addEventListener("click", () =>
        this.act("chat-mute", { participant_id: m.participant_id, muted: !this.mutedPeople.has(m.participant_id) }),
      );
      actions.append(mute);
    }
  }

  /** @param {any} q QuestionInfo */
  linkQuestion(q) {
    if (!q.message_id) return;
    const row = this.rows.get(q.message_id);
    if (!row || row.querySelector("[data-testid=chat-is-question]")) return;
    this.renderActions(row, { ...this.info(row), question_id: q.question_id });
  }

  /** @param {HTMLElement} row */
  info(row) {
    return {
      message_id: row.dataset.messageId,
      participant_id: row.dataset.participantId,
      role: row.classList.contains("staff") ? "presenter" : "attendee",
      question_id: null,
    };
  }

  /** @param {string} messageId */
  remove(messageId) {
    this.rows.get(messageId)?.remove();
    this.rows.delete(messageId);
  }

  /** @param {{enabled: boolean, slow_mode_seconds: number, muted: boolean, muted_participants?: string[] | null}} state */
  setState(state) {
    this.state = { enabled: state.enabled, slow_mode_seconds: state.slow_mode_seconds, muted: state.muted };
    if (Array.isArray(state.muted_participants)) this.mutedPeople = new Set(state.muted_participants);
    const staff = this.ctx.staff();
    this.tools.hidden = !staff;
    this.enabledBox.checked = state.enabled;
    this.slowSelect.value = String(state.slow_mode_seconds);
    if (!hasOption(this.slowSelect, state.slow_mode_seconds)) {
      this.slowSelect.append(el("option", { value: String(state.slow_mode_seconds), text: slowLabel(state.slow_mode_seconds) }));
      this.slowSelect.value = String(state.slow_mode_seconds);
    }
    let note = "";
    let blocked = false;
    if (!staff && !state.enabled) {
      note = t("The presenters have switched chat off.");
      blocked = true;
    } else if (!staff && state.muted) {
      note = t("A presenter muted you in chat.");
      blocked = true;
    } else if (state.slow_mode_seconds) {
      const n = state.slow_mode_seconds;
      note = staff
        ? nt("Slow mode: one message every {n} second for attendees.", "Slow mode: one message every {n} seconds for attendees.", n)
        : nt("Slow mode: one message every {n} second.", "Slow mode: one message every {n} seconds.", n);
    } else if (staff && !state.enabled) {
      note = t("Chat is off for attendees.");
    }
    this.status.textContent = note;
    this.status.hidden = !note;
    this.input.disabled = blocked;
    /** @type {HTMLButtonElement} */ (this.send).disabled = blocked;
    for (const [id, row] of this.rows) {
      const known = this.info(row);
      const q = row.querySelector("[data-testid=chat-is-question]");
      this.renderActions(row, { ...known, message_id: id, question_id: q ? "yes" : null });
    }
  }

  /**
   * @param {string} participantId
   * @param {boolean} muted
   */
  muteChanged(participantId, muted) {
    if (muted) this.mutedPeople.add(participantId);
    else this.mutedPeople.delete(participantId);
    const name = this.ctx.participantName(participantId);
    let text;
    if (name) text = muted ? t("{name} is muted in chat.", { name }) : t("{name} may chat again.", { name });
    else text = muted ? t("The attendee is muted in chat.") : t("The attendee may chat again.");
    this.ctx.toast(text, { key: `chat-mute-${participantId}` });
    this.setState({ ...this.state });
  }

  async submit() {
    const text = this.input.value.trim();
    if (!text) return;
    try {
      await this.ctx.request("chat-send", { text });
      this.input.value = "";
      this.renderCount();
    } catch (failure) {
      this.ctx.toast(errorMessage(failure), { kind: "warn", key: "chat" });
    }
  }

  /**
   * @param {string} type
   * @param {Record<string, unknown>} fields
   */
  async act(type, fields) {
    try {
      await this.ctx.request(type, fields);
    } catch (failure) {
      this.ctx.toast(errorMessage(failure), { kind: "warn", key: "chat" });
    }
  }
}

/**
 * @param {HTMLSelectElement} select
 * @param {number} value
 */
function hasOption(select, value) {
  return [...select.options].some((o) => o.value === String(value));
}
