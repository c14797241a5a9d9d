// Live captions (docs/protocol.md, "Live captions"): the lines over the bottom of the stage,
// the Captions button and its panel, and the presenters' "make captioner" in the people list.
//
// Everyone sees the room's captions over the stage while they are on, and may hide them for
// themselves (remembered in this browser). A presenter turns them on and captions their own
// speech with the browser's speech recognition (the Web Speech API, in the page's language)
// where the browser has it; where it has none, the panel says so and offers the typed mode.
// A presenter may make an attendee a *captioner*, who types the lines: Enter sends a final
// line, and while they type the text so far goes out as an interim line a few times a second.
// The overlay keeps clear of the tiles' name labels: it is lifted above those it would cover.

import { lang, onLanguage, setText, t } from "../i18n.js";
import { isStaff } from "../participants.js";
import { byId, el, errorText, recall, remember } from "../ui.js";

/** @typedef {import("./page.js").ParticipantInfo} ParticipantInfo */
/** @typedef {import("./page.js").WebinarConnection} WebinarConnection */

/**
 * @typedef {object} CaptionLine  a `caption` message's line
 * @property {string} line_id
 * @property {number} seq
 * @property {string} participant_id
 * @property {string} name
 * @property {string} text
 * @property {number} at
 * @property {boolean} final
 */

/**
 * @typedef {object} CaptionsHost
 * @property {import("../participants.js").ParticipantList} people
 * @property {() => void} renderPeople
 * @property {(error: unknown) => void} showFailure
 */

const HIDDEN_KEY = "webinar.captions.hidden";
/** A line stays this long after the last one (ms), then the overlay fades. */
const LINGER_MS = 8000;
/** Interim text goes out at most this often while typing or speaking (ms): under the server's
 * INTERIM_PER_SECOND. */
const INTERIM_EVERY_MS = 250;
/** The server's MAX_CAPTION_CHARS. */
const MAX_CHARS = 500;

/** The browser's speech recognition, if it has one (Chromium names it with a prefix). */
function recognitionClass() {
  const w = /** @type {any} */ (window);
  return w.SpeechRecognition ?? w.webkitSpeechRecognition ?? null;
}

export class Captions {
  /** @param {CaptionsHost} host */
  constructor(host) {
    this.host = host;
    /** @type {WebinarConnection | null} */
    this.conn = null;
    this.role = "attendee";
    this.enabled = false;
    this.mayCaption = false;
    /** Participant IDs of the captioners here (known to presenters). @type {string[]} */
    this.captioners = [];
    this.hidden = recall(HIDDEN_KEY) === "1";
    /** @type {CaptionLine | null} */
    this.finalLine = null;
    /** @type {CaptionLine | null} */
    this.interimLine = null;
    this.fadeTimer = 0;
    this.interimTimer = 0;
    this.interimSentAt = 0;
    /** @type {any} */
    this.recognition = null;
    this.listening = false;
    /** Why speech recognition does not run here ("" while it may). */
    this.speechProblem = "";

    // over the stage: the last final line and the interim one after it
    this.overlay = el("div", { class: "captions-overlay", "data-testid": "captions-overlay", hidden: true });
    byId("stage").append(this.overlay);
    // the Captions button, and its panel (stays open while someone types in it)
    this.toggle = el("button", {
      type: "button",
      class: "btn btn-toggle-plain captions-toggle",
      "data-testid": "captions-toggle",
      "aria-expanded": "false",
      "aria-controls": "captions-panel",
      hidden: true,
    });
    this.toggleLabel = el("span", { class: "label" });
    this.toggle.append(el("span", { class: "captions-icon", "aria-hidden": "true", text: "CC" }), this.toggleLabel);
    this.showBox = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", "data-testid": "captions-show" }));
    this.showLabel = el("span");
    this.enabledBox = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", "data-testid": "captions-enabled" }));
    this.enabledLabel = el("span");
    this.enabledRow = el("label", { class: "captions-row" }, [this.enabledBox, this.enabledLabel]);
    this.speechButton = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "btn btn-small", "data-testid": "captions-speech" }));
    this.speechStatus = el("p", { class: "hint captions-status", "data-testid": "captions-speech-status", role: "status" });
    this.speechRow = el("div", { class: "captions-speech" }, [this.speechButton, this.speechStatus]);
    this.input = /** @type {HTMLInputElement} */ (
      el("input", { type: "text", class: "captions-input", "data-testid": "captions-input", maxlength: String(MAX_CHARS), autocomplete: "off" })
    );
    this.sendButton = /** @type {HTMLButtonElement} */ (el("button", { type: "submit", class: "btn btn-small btn-primary", "data-testid": "captions-send" }));
    this.inputLabel = el("label", { class: "captions-input-label", for: "captions-input" });
    this.input.id = "captions-input";
    this.form = /** @type {HTMLFormElement} */ (
      el("form", { class: "captions-form", "data-testid": "captions-form" }, [this.inputLabel, el("div", { class: "captions-input-row" }, [this.input, this.sendButton])])
    );
    this.formHint = el("p", { class: "hint" });
    this.title = el("h3", { id: "captions-panel-title", class: "captions-title" });
    this.panel = el(
      "div",
      { id: "captions-panel", class: "captions-panel", "data-testid": "captions-panel", role: "dialog", "aria-labelledby": "captions-panel-title", hidden: true },
      [this.title, el("label", { class: "captions-row" }, [this.showBox, this.showLabel]), this.enabledRow, this.speechRow, this.form, this.formHint],
    );
    this.wrap = el("div", { class: "captions-wrap" }, [this.toggle, this.panel]);
    byId("raise-hand").parentElement?.append(this.wrap);

    this.toggle.addEventListener("click", () => this.setOpen(this.panel.hidden));
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        this.setOpen(false);
        this.toggle.focus();
      }
    });
    this.showBox.addEventListener("change", () => {
      this.hidden = !this.showBox.checked;
      remember(HIDDEN_KEY, this.hidden ? "1" : "0");
      this.renderOverlay();
    });
    this.enabledBox.addEventListener("change", () => {
      const on = this.enabledBox.checked;
      this.request("captions-set", { enabled: on }).catch(() => (this.enabledBox.checked = this.enabled));
      if (!on) this.stopSpeech();
    });
    this.speechButton.addEventListener("click", () => (this.listening ? this.stopSpeech() : this.startSpeech()));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendTyped();
    });
    this.input.addEventListener("input", () => this.typedSoFar());
    host.people.addRowExtension((person, myRole, self) => this.rowExtras(person, myRole, self));
    window.addEventListener("resize", () => this.place());
    this.relabel();
    onLanguage(() => {
      this.relabel();
      if (this.recognition) this.recognition.lang = lang();
    });
  }

  relabel() {
    setText(this.toggleLabel, "Captions");
    this.toggle.setAttribute("title", t("Live captions over the stage"));
    setText(this.title, "Live captions");
    setText(this.showLabel, "Show captions over the stage");
    setText(this.enabledLabel, "Captions on for everyone");
    setText(this.inputLabel, "Type captions: Enter sends the line");
    setText(this.sendButton, "Send");
    this.renderControls();
  }

  /** @param {WebinarConnection} conn */
  attach(conn) {
    this.conn = conn;
    conn.addEventListener("server-message", (event) => {
      if (this.conn !== conn) return;
      const message = /** @type {CustomEvent} */ (event).detail;
      if (message.type === "caption") this.show(message.line);
      else if (message.type === "captions-state") this.setState(message);
    });
  }

  /**
   * The sync reply (`interaction-state`): the switch, our right and the last lines.
   * @param {any} state
   */
  load(state) {
    if (state?.captions) this.setState(state.captions);
    const lines = /** @type {CaptionLine[]} */ (state?.caption_lines ?? []);
    if (lines.length) this.show(lines[lines.length - 1]);
  }

  /** @param {string} role */
  setRole(role) {
    this.role = role;
    this.renderControls();
  }

  /**
   * A `captions-state`.
   * @param {{enabled: boolean, captioner: boolean, captioners?: string[] | null}} state
   */
  setState(state) {
    const before = this.captioners.join();
    this.enabled = Boolean(state.enabled);
    this.mayCaption = Boolean(state.captioner);
    if (state.captioners) this.captioners = state.captioners;
    if (!this.enabled) {
      this.stopSpeech();
      this.finalLine = this.interimLine = null;
    }
    if (!this.mayCaption) this.stopSpeech();
    this.renderControls();
    this.renderOverlay();
    if (before !== this.captioners.join()) this.host.renderPeople();
  }

  renderControls() {
    const staff = isStaff(this.role);
    // attendees see the button while captions are on (to hide them); those who caption always
    this.toggle.hidden = !(this.enabled || this.mayCaption || staff);
    if (this.toggle.hidden) this.setOpen(false);
    this.toggle.setAttribute("aria-pressed", String(this.enabled && !this.hidden));
    this.showBox.checked = !this.hidden;
    this.enabledBox.checked = this.enabled;
    this.enabledRow.hidden = !this.mayCaption;
    this.speechRow.hidden = !(staff && this.mayCaption);
    if (this.listening) setText(this.speechButton, "Stop captioning my speech");
    else setText(this.speechButton, "Caption my speech");
    this.speechButton.setAttribute("aria-pressed", String(this.listening));
    this.speechStatus.textContent = this.speechProblem;
    this.speechStatus.hidden = !this.speechProblem && !this.listening;
    if (this.listening && !this.speechProblem) setText(this.speechStatus, "Listening: what you say appears as captions.");
    this.form.hidden = !this.mayCaption;
    this.formHint.hidden = this.mayCaption;
    if (!this.mayCaption) setText(this.formHint, "Captions appear over the stage while a presenter or a captioner provides them.");
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.panel.hidden = !open;
    this.toggle.setAttribute("aria-expanded", String(open));
    if (open) (this.mayCaption ? this.input : this.showBox).focus();
  }

  // ------------------------------------------------------------------ the overlay

  /** @param {CaptionLine} line */
  show(line) {
    if (!line || typeof line.text !== "string") return;
    if (line.final) {
      this.finalLine = line;
      // the interim text of the same person is what became this line
      if (this.interimLine?.participant_id === line.participant_id) this.interimLine = null;
    } else {
      this.interimLine = line;
    }
    this.renderOverlay();
    clearTimeout(this.fadeTimer);
    this.fadeTimer = window.setTimeout(() => {
      this.finalLine = this.interimLine = null;
      this.renderOverlay();
    }, LINGER_MS);
  }

  renderOverlay() {
    const lines = [this.finalLine, this.interimLine].filter((l) => l !== null);
    this.overlay.replaceChildren(
      ...lines.map((line) =>
        el("p", {
          class: line.final ? "caption-line" : "caption-line caption-interim", // i18n-ignore
          "data-testid": "caption-line",
          "data-final": String(line.final),
          "data-seq": String(line.seq),
          text: line.text,
        }),
      ),
    );
    this.overlay.hidden = this.hidden || !this.enabled || lines.length === 0;
    this.place();
  }

  /** Lift the overlay above the name labels it would cover (those of the bottom row of tiles). */
  place() {
    if (this.overlay.hidden) return;
    const stage = byId("stage").getBoundingClientRect();
    this.overlay.style.bottom = "";
    const box = this.overlay.getBoundingClientRect();
    let lift = 0;
    for (const label of document.querySelectorAll("#stage .tile-label")) {
      const r = label.getBoundingClientRect();
      if (r.width < 2 || r.height < 2 || r.right <= box.left || r.left >= box.right) continue;
      if (r.bottom <= box.top || r.top >= box.bottom + lift) continue;
      lift = Math.max(lift, box.bottom - r.top + 6);
    }
    if (lift > 0) {
      const base = stage.bottom - box.bottom;
      this.overlay.style.bottom = `${Math.round(base + lift)}px`;
    }
  }

  // ------------------------------------------------------------------ sending

  /**
   * @param {string} type
   * @param {Record<string, unknown>} fields
   */
  request(type, fields) {
    const conn = this.conn;
    if (!conn) return Promise.reject(new Error(t("not connected")));
    return conn.request(type, fields).catch((error) => {
      this.host.showFailure(error);
      throw error;
    });
  }

  /** Turn captions on for everyone first when they are off (a presenter or captioner may). */
  async ensureOn() {
    if (!this.enabled) await this.request("captions-set", { enabled: true });
  }

  /**
   * One line: `final` ones are kept; interim ones only shown.
   * @param {string} text
   * @param {boolean} final
   */
  async sendLine(text, final) {
    const clean = text.trim().slice(0, MAX_CHARS);
    if (!clean) return;
    await this.ensureOn();
    if (final) await this.request("caption-send", { text: clean, final: true });
    else this.conn?.send("caption-send", { text: clean, final: false });
  }

  sendTyped() {
    const text = this.input.value;
    if (!text.trim()) return;
    clearTimeout(this.interimTimer);
    this.interimTimer = 0;
    this.input.value = "";
    this.sendLine(text, true).catch(() => {
      if (!this.input.value) this.input.value = text; // nothing lost
    });
  }

  /** While typing: the text so far as an interim line, a few times a second. */
  typedSoFar() {
    if (this.interimTimer || !this.enabled) return;
    const wait = Math.max(0, this.interimSentAt + INTERIM_EVERY_MS - performance.now());
    this.interimTimer = window.setTimeout(() => {
      this.interimTimer = 0;
      this.interimSentAt = performance.now();
      if (this.input.value.trim()) this.sendLine(this.input.value, false).catch(() => {});
    }, wait);
  }

  // ------------------------------------------------------------------ speech

  startSpeech() {
    const Recognition = recognitionClass();
    if (!Recognition) {
      this.speechProblem = t("This browser has no speech recognition. Type the captions below, or make someone a captioner in the People list.");
      this.renderControls();
      this.input.focus();
      return;
    }
    this.speechProblem = "";
    let interimAt = 0;
    const recognition = new Recognition();
    recognition.lang = lang();
    recognition.continuous = true;
    recognition.interimResults = true;
    recognition.onresult = (/** @type {any} */ event) => {
      let interim = "";
      for (let i = event.resultIndex; i < event.results.length; i++) {
        const result = event.results[i];
        const text = String(result[0]?.transcript ?? "");
        if (result.isFinal) this.sendLine(text, true).catch(() => {});
        else interim += text;
      }
      const now = performance.now();
      if (interim.trim() && now - interimAt >= INTERIM_EVERY_MS) {
        interimAt = now;
        this.sendLine(interim, false).catch(() => {});
      }
    };
    recognition.onerror = (/** @type {any} */ event) => {
      const code = String(event?.error ?? "");
      if (code === "no-speech" || code === "aborted") return;
      this.speechProblem =
        code === "not-allowed" || code === "service-not-allowed"
          ? t("Speech recognition was not allowed in this browser. Type the captions below, or make someone a captioner in the People list.")
          : t("Speech recognition is not available in this browser ({reason}). Type the captions below, or make someone a captioner in the People list.", { reason: code || t("unknown error") });
      this.stopSpeech();
    };
    // recognition stops by itself after a silence: started again while wanted
    recognition.onend = () => {
      if (this.listening && this.recognition === recognition) {
        try {
          recognition.start();
        } catch {
          this.stopSpeech();
        }
      }
    };
    this.recognition = recognition;
    this.listening = true; // captions go on for everyone with the first line (sendLine)
    try {
      recognition.start();
    } catch (error) {
      this.speechProblem = t("Speech recognition could not start: {reason}", { reason: errorText(error) });
      this.stopSpeech();
      return;
    }
    this.renderControls();
  }

  stopSpeech() {
    const recognition = this.recognition;
    this.recognition = null;
    const was = this.listening;
    this.listening = false;
    if (recognition) {
      try {
        recognition.abort();
      } catch {
        // already stopped
      }
    }
    if (was || recognition) this.renderControls();
  }

  // ------------------------------------------------------------------ the people list

  /**
   * Presenters make an attendee a captioner and take it back; they see who captions.
   * @param {ParticipantInfo} person
   * @param {string} myRole
   * @param {boolean} self
   * @returns {import("../participants.js").RowExtras}
   */
  rowExtras(person, myRole, self) {
    const id = person.participant_id;
    const captioner = this.captioners.includes(id);
    const chips = captioner ? [t("Captioner")] : [];
    if (self || !isStaff(myRole) || person.role !== "attendee") return { chips };
    const who = { name: person.name };
    const action = captioner
      ? { action: "captioner-revoke", label: t("Stop captioning"), aria: t("Stop {name} typing captions", who) }
      : { action: "captioner-grant", label: t("Make captioner"), aria: t("Let {name} type live captions", who) };
    return {
      chips,
      actions: [{ ...action, run: () => void this.request("captioner-set", { participant_id: id, captioner: !captioner }).catch(() => {}) }],
    };
  }
}
