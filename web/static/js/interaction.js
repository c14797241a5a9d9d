// Interaction in the room: chat, Q&A, polls and tests, call-to-action.
//
// One coordinator per page. It asks the server for the current state after every
// join (first time, resume, new participant after a long drop) with
// `sync-interaction`, routes the interaction messages (docs/protocol.md,
// "Interaction") to the four panels, and tells them when our role changes.

import { ChatPanel } from "./chat.js";
import { CtaView } from "./cta.js";
import { PollPanel } from "./polls.js";
import { QaPanel } from "./qa.js";
import { t } from "./i18n.js";
import { errorText } from "./ui.js";

/** @typedef {import("./protocol.js").WebinarConnection} WebinarConnection */

/**
 * @typedef {object} InteractionHost
 * @property {import("./ui.js").Toasts} toasts
 * @property {(tabId: string) => void} showTab  open the side panel on this tab
 * @property {string | null} presenterKey  lets presenters upload poll images
 * @property {string} eventId
 * @property {(stage: any) => void} [onStage]  the `stage` of the sync reply (room/content.js)
 * @property {(state: any) => void} [onSync]  the whole sync reply (live captions: room/captions.js)
 */

export class Interaction {
  /** @param {InteractionHost} host */
  constructor(host) {
    this.host = host;
    /** @type {WebinarConnection | null} */
    this.conn = null;
    this.role = "attendee";
    /** @type {any} */
    this.state = null;
    const ctx = {
      request: (/** @type {string} */ type, /** @type {Record<string, unknown>} */ fields = {}) => this.request(type, fields),
      me: () => this.conn?.participantId ?? null,
      staff: () => this.role !== "attendee",
      toast: (/** @type {string} */ text, /** @type {any} */ options = {}) => this.host.toasts.show(text, options),
      showTab: (/** @type {string} */ id) => this.host.showTab(id),
      presenterKey: host.presenterKey,
      eventId: host.eventId,
      participantName: (/** @type {string} */ id) => this.conn?.participants.get(id)?.name ?? null,
    };
    this.chat = new ChatPanel(ctx);
    this.qa = new QaPanel(ctx);
    this.polls = new PollPanel(ctx);
    this.cta = new CtaView(ctx);
    this.chat.onMarkQuestion = (messageId) => this.qa.markMessage(messageId);
    this.inLobby = false;
  }

  /**
   * People waiting in the lobby see the chat while it is on: the chat panel moves into
   * the lobby, and back into the side panel when the event starts.
   * @param {boolean} inLobby
   */
  setLobby(inLobby) {
    this.inLobby = inLobby;
    this.placeChat();
  }

  placeChat() {
    const panel = document.getElementById("panel-chat");
    const box = document.getElementById("lobby-chat");
    const tab = document.getElementById("tab-chat");
    if (!panel || !box) return;
    const show = this.inLobby && this.state !== null && this.chat.state.enabled;
    if (show) {
      if (panel.parentElement !== box) box.append(panel);
      panel.hidden = false;
      box.hidden = false;
      return;
    }
    box.hidden = true;
    if (panel.parentElement === box) {
      document.getElementById("panel-qa")?.before(panel);
      panel.hidden = tab?.getAttribute("aria-selected") !== "true";
    }
  }

  /** @param {WebinarConnection} conn */
  attach(conn) {
    this.conn = conn;
    conn.addEventListener("server-message", (event) => {
      if (this.conn !== conn) return;
      this.onMessage(/** @type {CustomEvent} */ (event).detail);
    });
  }

  /**
   * After every `joined` (first or after a reconnect): show the panels, fetch the state.
   * @param {string} role
   */
  async joined(role) {
    this.role = role;
    for (const id of ["tab-chat", "tab-qa", "tab-polls"]) {
      const tab = document.getElementById(id);
      if (tab) tab.hidden = false;
    }
    const ctaTab = document.getElementById("tab-cta");
    if (ctaTab) ctaTab.hidden = role === "attendee";
    await this.sync();
  }

  /** @param {string} role */
  async setRole(role) {
    if (role === this.role) return;
    this.role = role;
    const ctaTab = document.getElementById("tab-cta");
    if (ctaTab) ctaTab.hidden = role === "attendee";
    await this.sync();
  }

  async sync() {
    try {
      const state = await this.request("sync-interaction");
      this.state = state;
      this.chat.load(state.chat, state.messages);
      this.qa.load(state.qa, state.published);
      this.polls.load(state.polls, state.results, state.my_answers, state.scores);
      this.cta.load(state.cta);
      this.cta.setPrepared(state.prepared_ctas);
      this.host.onStage?.(state.stage);
      this.host.onSync?.(state);
      this.placeChat();
    } catch (failure) {
      this.host.toasts.show(t("Chat and polls could not load: {reason}", { reason: errorText(failure) }), { kind: "warn", key: "interaction" });
    }
  }

  /**
   * @param {string} type
   * @param {Record<string, unknown>} [fields]
   */
  request(type, fields = {}) {
    // shown as a toast ("Not connected.") by the panel that asked
    if (!this.conn) return Promise.reject(new Error(t("not connected")));
    return this.conn.request(type, fields);
  }

  /** @param {any} message */
  onMessage(message) {
    switch (message.type) {
      case "chat-message":
        this.chat.add(message.message);
        break;
      case "chat-deleted":
        this.chat.remove(message.message_id);
        break;
      case "chat-state":
        this.chat.setState(message);
        this.placeChat();
        break;
      case "chat-mute-changed":
        this.chat.muteChanged(message.participant_id, message.muted);
        break;
      case "question":
        this.qa.upsert(message.question);
        this.chat.linkQuestion(message.question);
        break;
      case "question-hidden":
        this.qa.hide(message.question_id);
        break;
      case "question-published":
        this.qa.setPublished(message.question);
        break;
      case "qa-state":
        this.qa.setState(message);
        break;
      case "poll":
        this.polls.upsert(message.poll, message.cause);
        break;
      case "poll-deleted":
        this.polls.remove(message.poll_id);
        break;
      case "poll-results":
        this.polls.setResults(message);
        break;
      case "poll-score":
        this.polls.setScore(message);
        break;
      case "cta":
        this.cta.show(message.cta, message.reason);
        break;
      case "cta-clicks":
        this.cta.setClicks(message.cta_id, message.clicks);
        break;
      case "cta-prepared":
        this.cta.setPrepared(message.prepared);
        break;
      default:
        break;
    }
  }
}
