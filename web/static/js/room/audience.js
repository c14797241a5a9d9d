// The presenters' view of their audience (presenters and hosts only):
//   - the status strip under the top bar: how many attendees are here, raised hands (opens the
//     people tab) and new questions nobody has looked at yet (opens Q&A), live from the state
//     the page already receives, whatever tab the side panel shows;
//   - the audience view: a small picture-in-picture copy of the stage as an attendee sees it
//     right now ("What attendees see"), collapsible, in a corner of the stage that covers no
//     tile's name, no banner and no content toolbar (or, when no corner is free, beside them).
//
// The copy draws nothing of its own: it is the attendees' stage made again from the same
// parts, on a virtual 800×450 stage scaled down — a second VideoGrid (grid.js, silent) fed the
// streams this page has already (the others' remote streams, our own published camera and
// screen: no extra server stream, nothing decoded twice on the server), the status line,
// waiting and backstage rule attendees get (stage.js attendeeStage), the lobby card drawn by
// lobby.js into a copy of the card, and copies of what content.js, qa.js, cta.js and
// reactions.js show on the stage (the slide, the board and the shared video copied a few
// times a second; the published question, the call-to-action and the floating reactions as
// they come).

import { VideoGrid } from "../grid.js";
import { formatNumber, nt, onLanguage, t } from "../i18n.js";
import { deviceStates } from "../participants.js";
import { byId, el, recall, remember } from "../ui.js";
import { Lobby } from "./lobby.js";
import { inRoom } from "./page.js";
import { raisedHands } from "./panel.js";
import { fitInto } from "./presentation.js";
import { attendeeCount, attendeeStage } from "./stage.js";

/** The virtual attendee stage the copy is laid out on (CSS px), scaled to the panel's width. */
const VIRTUAL_W = 800;
const VIRTUAL_H = 450;
/** Whether the audience view was left open or closed on this device ("open" / "closed"). */
const OPEN_KEY = "webinar.audience-view";
/** Layouts that show a content view (room/content.js VIEWS). */
const CONTENT_VIEWS = new Set(["presentation", "video", "whiteboard", "external"]);
/** How often the copied slide, board and shared video are drawn again (ms). */
const COPY_MS = 250;
/** A phone: the audience view starts closed (one tap on the strip opens it). */
const NARROW = window.matchMedia("(max-width: 640px)"); // i18n-ignore
/**
 * What the audience view keeps clear of on the presenter's own stage; on a wide screen also the
 * presenter's status line (on a phone the view may cover it: the strip has the attendee count).
 */
const AVOID =
  "#grid .tile-label, #stage-banner, #sound-button, #stage > .published-question, #cta-slot, " + // i18n-ignore
  ".slide-toolbar > *, .wb-bar > *, .wb-foot .btn, .wb-page-label, .shared-video-bar > *, .shared-video-name, " + // i18n-ignore
  "[data-testid=captions-overlay], [data-avoid-overlays]"; // i18n-ignore
const AVOID_WIDE = ", #status"; // i18n-ignore
/** What other parts lay over the stage that attendees see too: the published question first. */
const OVERLAYS = [":scope > .published-question", ":scope > .captions-overlay"];
/** The corners the audience view may take, in the order tried. */
const CORNERS = ["bottom-right", "top-right", "bottom-left", "top-left"];

/** @typedef {import("./page.js").WebinarConnection} WebinarConnection */
/** @typedef {import("../protocol.js").RemoteStream} RemoteStream */

/**
 * What the room gives the audience view.
 * @typedef {object} AudienceHost
 * @property {() => WebinarConnection | null} conn
 * @property {() => boolean} staff  presenter or host now
 * @property {() => string} view  the room's view (prejoin, lobby, live, ended)
 * @property {import("./content.js").StageContent} content
 * @property {import("../interaction.js").Interaction} interaction
 * @property {(tabId: string) => void} showTab  open the side panel on a tab
 * @property {() => void} layoutStage  size the stage's tiles again (the stage changed size)
 * @property {() => void} [moved]  the audience view moved or docked (the toasts keep clear of it)
 */

/**
 * An SVG icon drawn from one path (the page's sprite has no eye or question mark).
 * @param {string} d
 */
function pathIcon(d) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "none");
  svg.append(path);
  return svg;
}

/** @param {string} name  a symbol of the page's sprite */
function spriteIcon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", `#i-${name}`);
  svg.append(use);
  return svg;
}

const EYE = "M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12Z M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6Z";
const QUESTION = "M4 5h16v11H9l-5 4z M9.5 8.5a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .8-1 1.5 M12 14.2v.1";

/**
 * A copy of a part of the page that is only to be looked at: no IDs (they stay unique), no
 * data-testid (tests find the original once), nothing focusable or clickable.
 * @template {Element} T
 * @param {T} node
 * @returns {T}
 */
export function lookAlike(node) {
  const copy = /** @type {T} */ (node.cloneNode(true));
  for (const part of [copy, ...copy.querySelectorAll("*")]) {
    if (part.id) {
      part.setAttribute("data-part", part.id);
      part.removeAttribute("id");
    }
    if (part.hasAttribute("data-testid")) {
      part.setAttribute("data-copy-of", part.getAttribute("data-testid") ?? "");
      part.removeAttribute("data-testid");
    }
    for (const name of ["aria-labelledby", "aria-describedby", "aria-controls", "for", "role", "aria-live"]) part.removeAttribute(name);
  }
  return copy;
}

/** @param {DOMRect} a @param {DOMRect} b */
function overlaps(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

export class AudienceView {
  /** @param {AudienceHost} host */
  constructor(host) {
    this.host = host;
    /** @type {WebinarConnection | null} */
    this.conn = null;
    const stored = recall(OPEN_KEY);
    /** The audience view is shown (the strip's toggle); a phone starts with it closed. */
    this.open = stored ? stored === "open" : !NARROW.matches;
    /** Questions the presenter has had in view on the Q&A tab. @type {Set<string>} */
    this.seen = new Set();
    /** Our own published video, as the grid's streams. @type {Map<string, RemoteStream>} */
    this.own = new Map();
    /** The track each preview tile shows (a device switch brings a new track). @type {Map<string, MediaStreamTrack>} */
    this.shownTracks = new Map();
    this.frame = 0;
    this.copyTimer = 0;
    /** The content view copied now and whether it changed since. @type {HTMLElement | null} */
    this.copiedBox = null;
    this.contentDirty = true;
    /** When the content view was last copied (performance.now()), and a copy waiting for its turn. */
    this.copiedAt = 0;
    this.copyLater = 0;
    this.placedFor = "";

    this.buildStrip();
    this.buildPanel();
    this.grid = new VideoGrid(this.gridEl, { silent: true, tileTestId: "audience-tile" });
    this.lobby = new Lobby(null, this.lobbyCard);

    // what the presenters' own stage shows, copied as it changes
    const stage = byId("stage");
    new MutationObserver(() => this.render()).observe(stage, { childList: true });
    this.watchCopies();
    // the Q&A tab comes into view (its questions are seen), the panel opens or closes
    const looking = new MutationObserver(() => this.render());
    looking.observe(byId("panel-qa"), { attributes: true, attributeFilter: ["hidden"] });
    looking.observe(byId("live"), { attributes: true, attributeFilter: ["data-panel"] });
    document.addEventListener("visibilitychange", () => this.render());
    // the stage changes size: find the corner again
    new ResizeObserver(() => this.render()).observe(stage, { box: "border-box" });
    // ...and when something it keeps clear of appears or changes size (a presentation's
    // toolbar laid out after its page loaded, a banner, a tile's name)
    this.avoiding = new ResizeObserver(() => this.render());
    // ...or moves without changing size (a toolbar under a page image that loaded late):
    // looked at again every second while the view is open (nothing moves: nothing is done)
    window.setInterval(() => {
      if (!this.panel.hidden) this.place();
    }, 1000);
    new ResizeObserver(() => this.scale()).observe(this.screen);
    host.content.onStage(() => {
      this.contentDirty = true;
      this.render();
    });
    onLanguage(() => {
      this.relabel();
      this.render();
    });
    this.relabel();
  }

  // ------------------------------------------------------------------ building

  buildStrip() {
    /** @param {string} testid @param {SVGElement} svg @param {boolean} button */
    const item = (testid, svg, button) => {
      const full = el("span", { class: "strip-full" });
      const short = el("span", { class: "strip-short", "aria-hidden": "true" });
      const node = el(button ? "button" : "span", { class: `strip-item strip-${testid}`, "data-testid": testid, "data-count": "0" }, [svg, short, full]); // i18n-ignore
      if (button) node.setAttribute("type", "button");
      return { node, full, short };
    };
    this.attendees = item("strip-attendees", spriteIcon("people"), false);
    this.hands = item("strip-hands", spriteIcon("hand"), true);
    this.questions = item("strip-questions", pathIcon(QUESTION), true);
    this.hands.node.addEventListener("click", () => {
      this.host.showTab("tab-people");
      document.getElementById("hands-summary")?.scrollIntoView({ block: "nearest" });
    });
    this.questions.node.addEventListener("click", () => this.host.showTab("tab-qa"));
    this.toggleLabel = el("span", { class: "label" });
    this.toggle = el(
      "button",
      { type: "button", class: "strip-item strip-toggle", "data-testid": "audience-view-toggle", "aria-controls": "audience-view", "aria-expanded": "false" },
      [pathIcon(EYE), this.toggleLabel],
    );
    this.toggle.addEventListener("click", () => this.setOpen(!this.open, true));
    this.strip = el("div", { id: "presenter-strip", class: "presenter-strip", "data-testid": "presenter-strip", role: "region", hidden: true }, [
      this.attendees.node,
      this.hands.node,
      this.questions.node,
      this.toggle,
    ]);
    byId("main").before(this.strip);
  }

  buildPanel() {
    this.title = el("span", { id: "audience-view-title", class: "audience-title" });
    this.hide = el("button", { type: "button", class: "btn btn-icon audience-hide", "data-testid": "audience-view-hide", text: "×" });
    this.hide.addEventListener("click", () => this.setOpen(false, true));
    // the copy of an attendee's stage: the same classes as the real one (app.css draws it)
    this.statusEl = el("p", { class: "status", "data-testid": "audience-view-status" });
    this.contentEl = el("div", { class: "stage-content audience-content", hidden: true });
    this.gridEl = el("div", { class: "grid audience-grid", "data-count": "0" });
    this.ctaMessage = el("p", { class: "cta-message", "data-no-translate": true });
    this.ctaButton = el("span", { class: "btn btn-primary", "data-no-translate": true });
    this.ctaSlot = el("div", { class: "cta-slot", hidden: true }, [
      el("div", { class: "cta-popup", "data-testid": "audience-view-cta" }, [this.ctaMessage, this.ctaButton]),
    ]);
    this.reactionLayer = el("div", { class: "reaction-layer" });
    this.miniStage = el("div", { class: "stage audience-stage", "data-testid": "audience-view-stage", "data-empty": "true" }, [
      this.statusEl,
      this.contentEl,
      this.gridEl,
      this.ctaSlot,
      this.reactionLayer,
    ]);
    const card = byId("lobby").querySelector(".lobby-card");
    this.lobbyCard = lookAlike(/** @type {HTMLElement} */ (card));
    this.lobbyCard.querySelector("[data-part=lobby-leave]")?.remove(); // theirs, not ours
    this.lobbyBox = el("div", { class: "lobby audience-lobby", "data-testid": "audience-view-lobby", hidden: true }, [this.lobbyCard]);
    this.canvas = el("div", { class: "audience-canvas" }, [this.miniStage, this.lobbyBox]);
    this.canvas.style.width = `${VIRTUAL_W}px`;
    this.canvas.style.height = `${VIRTUAL_H}px`;
    this.canvas.inert = true;
    this.screen = el("div", { class: "audience-screen", "data-testid": "audience-view-screen", role: "img" }, [this.canvas]);
    this.panel = el(
      "aside",
      { id: "audience-view", class: "audience-view", "data-testid": "audience-view", "aria-labelledby": "audience-view-title", "data-corner": "bottom-right", "data-screen": "stage", hidden: true },
      [el("div", { class: "audience-head" }, [this.title, this.hide]), this.screen],
    );
    // beside the stage, not in it: its small tiles are no tiles of the stage (those who look
    // for "#stage .tile-label" find the presenter's own); placed over the stage by place()
    byId("live").append(this.panel);
  }

  /** Copies of what other parts draw on the presenters' own stage. */
  watchCopies() {
    const stage = byId("stage");
    // the published question (qa.js puts it first on the stage) and, where the room has them,
    // the live captions over its bottom: copied as they change
    /** @type {Map<string, HTMLElement>} copies by the original's selector */
    this.overlayCopies = new Map();
    for (const selector of OVERLAYS) {
      const original = stage.querySelector(selector);
      if (original) {
        new MutationObserver(() => this.render()).observe(original, { attributes: true, childList: true, subtree: true, characterData: true });
      }
    }
    // the content view: copied again when it changes (a new page, the board's strokes)
    new MutationObserver(() => {
      this.contentDirty = true;
      this.render();
    }).observe(byId("stage-content"), { attributes: true, childList: true, subtree: true, characterData: true });
    // the reactions floating over the stage (reactions.js): each one floats here too
    const layer = stage.querySelector(":scope > .reaction-layer");
    if (layer) {
      new MutationObserver((records) => {
        if (this.panel.hidden) return;
        for (const record of records) {
          for (const node of record.addedNodes) {
            if (!(node instanceof HTMLElement) || this.reactionLayer.childElementCount >= 20) continue;
            const copy = lookAlike(node);
            this.reactionLayer.append(copy);
            const done = () => copy.remove();
            copy.addEventListener("animationend", done, { once: true });
            setTimeout(done, 4000);
          }
        }
      }).observe(layer, { childList: true });
    }
  }

  relabel() {
    this.title.textContent = t("What attendees see");
    this.toggleLabel.textContent = t("What attendees see");
    this.hide.setAttribute("aria-label", t("Hide what attendees see"));
    this.hide.setAttribute("title", t("Hide what attendees see"));
    this.strip.setAttribute("aria-label", t("Your audience"));
  }

  // ------------------------------------------------------------------ the connection

  /** @param {WebinarConnection} conn */
  attach(conn) {
    this.conn = conn;
    this.seen.clear();
    const events = [
      "stream",
      "stream-ended",
      "stream-updated",
      "producer-closed",
      "active-speaker",
      "room-updated",
      "participant-count",
      "participant-updated",
      "roster-delta",
      "statechange",
    ];
    for (const type of events) conn.addEventListener(type, () => this.conn === conn && this.render());
    const watched = new Set(["question", "question-hidden", "qa-state", "question-published", "cta"]);
    conn.addEventListener("server-message", (event) => {
      const message = /** @type {CustomEvent} */ (event).detail;
      if (this.conn === conn && watched.has(message.type)) this.render();
    });
  }

  /**
   * Show or hide the audience view.
   * @param {boolean} open
   * @param {boolean} byUser  remembered on this device; focus follows
   */
  setOpen(open, byUser) {
    this.open = open;
    if (byUser) remember(OPEN_KEY, open ? "open" : "closed");
    this.renderNow();
    if (byUser && open) this.hide.focus();
    else if (byUser) this.toggle.focus();
  }

  // ------------------------------------------------------------------ drawing

  /** Draw again at the next frame (many changes in a row draw once). */
  render() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.renderNow();
    });
  }

  renderNow() {
    const conn = this.host.conn();
    const on = Boolean(conn && inRoom(conn) && this.host.staff() && this.host.view() === "live");
    this.strip.hidden = !on;
    this.toggle.setAttribute("aria-expanded", String(on && this.open));
    this.toggle.setAttribute("aria-pressed", String(on && this.open));
    const shown = on && this.open;
    this.panel.hidden = !shown;
    if (!conn || !on) {
      this.stopPreview();
      this.place();
      return;
    }
    this.renderStrip(conn);
    if (shown) this.renderPreview(conn);
    else this.stopPreview();
    this.place();
  }

  /** @param {WebinarConnection} conn */
  renderStrip(conn) {
    const attendees = attendeeCount(conn);
    const hands = raisedHands(conn);
    const questions = this.newQuestions();
    /**
     * @param {{node: HTMLElement, full: HTMLElement, short: HTMLElement}} item
     * @param {number} n
     * @param {string} words
     */
    const fill = (item, n, words) => {
      item.node.dataset.count = String(n);
      item.full.textContent = words;
      item.short.textContent = formatNumber(n);
      item.node.title = words;
    };
    fill(this.attendees, attendees, nt("{n} attendee", "{n} attendees", attendees));
    fill(this.hands, hands, nt("{n} raised hand", "{n} raised hands", hands));
    fill(this.questions, questions, nt("{n} new question", "{n} new questions", questions));
  }

  /** Questions of attendees, still open, that came while the Q&A tab was out of view. */
  newQuestions() {
    const qa = this.host.interaction.qa;
    const looking =
      !byId("panel-qa").hidden && byId("live").dataset.panel === "open" && document.visibilityState === "visible";
    let n = 0;
    for (const q of qa.questions.values()) {
      if (looking) this.seen.add(q.question_id);
      else if (q.state === "new" && !q.mine && !this.seen.has(q.question_id)) n += 1;
    }
    return n;
  }

  /** @param {WebinarConnection} conn */
  renderPreview(conn) {
    const room = conn.room;
    const lobby = room?.phase === "lobby";
    this.lobbyBox.hidden = !lobby;
    this.miniStage.hidden = lobby;
    if (lobby) {
      // attendees wait in the lobby: its card, drawn by lobby.js
      this.lobby.render(conn);
      this.clearTiles();
      this.stopCopying();
      this.panel.dataset.screen = "lobby";
      this.describe(t("Attendees are in the waiting room until the event starts."));
      return;
    }
    this.lobby.stop();
    this.syncTiles(conn);
    const layout = this.host.content.state?.layout ?? "cameras";
    const content = CONTENT_VIEWS.has(layout);
    const streams = conn.remoteStreams.size + conn.producers.size;
    const shown = attendeeStage({
      room,
      // while our own connection comes back we know nothing of the stage: say so, as theirs would
      reconnecting: conn.state === "reconnecting",
      tiles: this.grid.tiles.size,
      videos: this.grid.remoteVideoCount,
      streams,
      content,
    });
    this.statusEl.textContent = shown.text;
    this.statusEl.hidden = shown.text === "";
    const mini = this.miniStage;
    mini.dataset.empty = String(shown.empty);
    mini.dataset.waiting = String(shown.waiting);
    mini.dataset.backstage = String(shown.backstage);
    mini.dataset.content = layout;
    mini.dataset.strip = String(content);
    this.contentEl.hidden = !content;
    this.grid.strip = content;
    this.grid.layout();
    this.copyOverlays();
    this.copyCta();
    if (content && !shown.backstage) this.copyContent();
    else this.stopCopying();
    const screen = shown.backstage ? "backstage" : shown.empty ? "waiting" : content ? layout : "stage";
    this.panel.dataset.screen = screen;
    this.describe(this.summary(screen, shown.text));
  }

  /**
   * The screen's accessible name: what attendees see, in words.
   * @param {string} screen
   * @param {string} status
   */
  summary(screen, status) {
    if (screen === "backstage" || screen === "waiting") return t("Attendees see: {what}", { what: status });
    const names = [...this.grid.tiles.values()].map((tile) => tile.root.getAttribute("aria-label") ?? "").filter(Boolean);
    const parts = [];
    if (screen === "presentation") parts.push(t("the presentation"));
    else if (screen === "video") parts.push(t("the shared video"));
    else if (screen === "whiteboard") parts.push(t("the whiteboard"));
    else if (screen === "external") parts.push(t("the external player"));
    parts.push(...names);
    return t("Attendees see: {what}", { what: parts.join(", ") });
  }

  /** @param {string} text */
  describe(text) {
    this.screen.setAttribute("aria-label", text);
  }

  /**
   * The tiles attendees get: every video this page receives (attendees receive the same
   * streams: the server's RoomState.receives) and our own published camera and screen.
   * @param {WebinarConnection} conn
   */
  syncTiles(conn) {
    /** @type {Map<string, RemoteStream>} */
    const want = new Map();
    for (const [id, remote] of conn.remoteStreams) {
      if (remote.track.kind === "video" && remote.track.readyState !== "ended") want.set(id, remote);
    }
    const me = conn.participantId ?? "";
    const name = conn.participants.get(me)?.name ?? "";
    for (const producer of conn.producers.values()) {
      if (producer.source !== "camera" && producer.source !== "screen") continue;
      let own = this.own.get(producer.producer_id);
      if (!own || own.track !== producer.track) {
        own = /** @type {RemoteStream} */ ({
          info: { producer_id: producer.producer_id, participant_id: me, name, source: producer.source, kind: "video", mid: "" },
          track: producer.track,
          stream: new MediaStream([producer.track]),
          transceiver: producer.transceiver,
        });
        this.own.set(producer.producer_id, own);
      }
      own.info.paused = producer.paused;
      want.set(producer.producer_id, own);
    }
    for (const id of [...this.own.keys()]) if (!want.has(id)) this.own.delete(id);
    for (const [id, track] of [...this.shownTracks]) {
      if (want.get(id)?.track !== track) {
        this.grid.remove(id);
        this.shownTracks.delete(id);
      }
    }
    for (const [id, remote] of want) {
      if (!this.shownTracks.has(id)) {
        this.grid.add(remote);
        this.shownTracks.set(id, remote.track);
      }
      this.grid.setPaused(id, Boolean(remote.info.paused));
    }
    // the crossed-out microphone and the speaker's frame, as attendees see them
    const people = new Set([...want.values()].map((r) => r.info.participant_id));
    for (const pid of people) {
      if (pid === me) {
        this.grid.setMicOff(pid, Boolean(conn.producerFor("microphone")?.paused));
      } else {
        const streams = [...conn.streamInfo.values()].filter((s) => s.participant_id === pid);
        this.grid.setMicOff(pid, deviceStates(streams).mic === "off");
      }
    }
    this.grid.setActiveSpeaker(conn.activeSpeaker);
  }

  clearTiles() {
    for (const id of [...this.shownTracks.keys()]) this.grid.remove(id);
    this.shownTracks.clear();
  }

  /**
   * The published question (without the presenters' Clear) and the live captions, as on the
   * attendees' stage; the captions at their own place (the presenter's lift is theirs).
   */
  copyOverlays() {
    const stage = byId("stage");
    for (const selector of OVERLAYS) {
      this.overlayCopies.get(selector)?.remove();
      this.overlayCopies.delete(selector);
      const original = /** @type {HTMLElement | null} */ (stage.querySelector(selector));
      if (!original || original.hidden) continue;
      const copy = lookAlike(original);
      for (const button of copy.querySelectorAll("button")) button.remove();
      copy.style.removeProperty("bottom");
      this.overlayCopies.set(selector, copy);
      if (selector === OVERLAYS[0]) this.miniStage.prepend(copy);
      else this.miniStage.append(copy);
    }
  }

  /** The call-to-action attendees are shown now (the presenters' own page shows none). */
  copyCta() {
    const cta = this.host.interaction.cta.current;
    this.ctaSlot.hidden = !cta;
    if (!cta) return;
    this.ctaMessage.textContent = cta.message;
    this.ctaButton.textContent = cta.button;
  }

  /** The content on stage (slide, shared video, whiteboard, external player), copied. */
  copyContent() {
    const box = this.host.content.contentBox();
    if (!box) return;
    const wait = this.copiedAt + COPY_MS - performance.now();
    if (this.copiedBox === box && this.contentDirty && wait > 0) {
      // a laser pointer or a stroke changes the view many times a second: a copy at most every COPY_MS
      if (!this.copyLater) {
        this.copyLater = window.setTimeout(() => {
          this.copyLater = 0;
          this.render();
        }, wait);
      }
    } else if (this.contentDirty || this.copiedBox !== box) {
      this.contentDirty = false;
      this.copiedAt = performance.now();
      this.copiedBox = box;
      const copy = lookAlike(box);
      copy.hidden = false;
      copy.dataset.staff = "false"; // the shared video's bar as attendees have it
      // the presenters' own tools are not on the attendees' stage
      for (const tool of copy.querySelectorAll(".slide-tools, .slide-pager button, .staff-only, .wb-bar")) tool.remove();
      for (const frame of copy.querySelectorAll("iframe")) {
        frame.replaceWith(el("div", { class: "audience-external", text: t("External player") }));
      }
      for (const video of copy.querySelectorAll("video")) video.replaceWith(el("canvas", { class: "audience-video-copy" }));
      // boxes the content modules fitted to the presenter's stage (the slide, the board): fitted
      // again to the copy's stage, at the same shape (presentation.js fitInto)
      const fitted = [...copy.querySelectorAll("*")]
        .map((node) => /** @type {HTMLElement} */ (node))
        .filter((node) => node.style.width.endsWith("px") && node.style.height.endsWith("px"));
      const shapes = fitted.map((node) => parseFloat(node.style.width) / parseFloat(node.style.height));
      this.contentEl.replaceChildren(copy);
      fitted.forEach((node, i) => {
        node.style.width = "";
        node.style.height = "";
        if (node.parentElement && Number.isFinite(shapes[i]) && shapes[i] > 0) fitInto(node.parentElement, node, shapes[i]);
      });
    }
    this.drawCopies();
    if (!this.copyTimer) this.copyTimer = window.setInterval(() => this.drawCopies(), COPY_MS);
  }

  /** Draw the copied canvases and videos from the originals. */
  drawCopies() {
    const box = this.copiedBox;
    if (!box || this.panel.hidden) return;
    const sources = [...box.querySelectorAll("canvas, video")];
    const targets = [...this.contentEl.querySelectorAll("canvas")];
    sources.forEach((source, i) => {
      const target = /** @type {HTMLCanvasElement | undefined} */ (targets[i]);
      if (!target) return;
      const media = /** @type {HTMLCanvasElement | HTMLVideoElement} */ (source);
      const width = media instanceof HTMLVideoElement ? media.videoWidth : media.width;
      const height = media instanceof HTMLVideoElement ? media.videoHeight : media.height;
      if (!width || !height) return;
      const w = Math.min(width, 480);
      const h = Math.round((w * height) / width);
      if (target.width !== w) target.width = w;
      if (target.height !== h) target.height = h;
      try {
        target.getContext("2d")?.drawImage(media, 0, 0, w, h);
      } catch {
        // a video not ready to be drawn yet: the next round
      }
    });
  }

  stopCopying() {
    window.clearInterval(this.copyTimer);
    this.copyTimer = 0;
    if (this.copiedBox) {
      this.copiedBox = null;
      this.contentEl.replaceChildren();
    }
  }

  stopPreview() {
    this.clearTiles();
    this.stopCopying();
    this.lobby.stop();
  }

  /** The copy's scale: the virtual stage to the panel's width. */
  scale() {
    const width = this.screen.clientWidth;
    if (width > 0) this.canvas.style.setProperty("--audience-scale", String(width / VIRTUAL_W));
  }

  // ------------------------------------------------------------------ placing

  /**
   * A corner of the stage where the audience view covers no tile's name, no banner, status
   * line or content toolbar; when none is free, the stage makes room for it beside them
   * (stage[data-audience-dock]).
   */
  place() {
    const stage = byId("stage");
    if (this.panel.hidden) {
      this.placedFor = "";
      if (stage.dataset.audienceDock) {
        delete stage.dataset.audienceDock;
        this.host.layoutStage();
      }
      this.host.moved?.();
      return;
    }
    const box = stage.getBoundingClientRect();
    const avoid = [...stage.querySelectorAll(NARROW.matches ? AVOID : AVOID + AVOID_WIDE)].filter((node) => !this.panel.contains(node));
    for (const node of avoid) this.avoiding.observe(node);
    // the same stage, tiles and notes as last time: the same place
    const key = [
      Math.round(box.width),
      Math.round(box.height),
      this.panel.offsetWidth,
      this.panel.offsetHeight,
      ...avoid.map((node) => {
        const r = node.getBoundingClientRect();
        if (node.checkVisibility?.() === false) return "";
        return `${Math.round(r.left - box.left)}:${Math.round(r.top - box.top)}:${Math.round(r.width)}x${Math.round(r.height)}`;
      }),
      byId("grid").dataset.count,
      byId("grid").dataset.layout,
      stage.dataset.content,
      stage.dataset.empty,
    ].join(",");
    if (key === this.placedFor) return;
    this.placedFor = key;
    if (stage.dataset.audienceDock) {
      delete stage.dataset.audienceDock;
      this.host.layoutStage();
    }
    const rects = avoid
      .filter((node) => node.checkVisibility?.() !== false)
      .map((node) => node.getBoundingClientRect())
      .filter((r) => r.width > 0 && r.height > 0);
    const inset = parseFloat(getComputedStyle(stage).paddingTop) || 12;
    const w = this.panel.offsetWidth;
    const h = this.panel.offsetHeight;
    const live = byId("live").getBoundingClientRect();
    /** @param {string} corner */
    const at = (corner) => {
      const left = corner.endsWith("left") ? box.left + inset : box.right - inset - w;
      const top = corner.startsWith("top") ? box.top + inset : box.bottom - inset - h;
      return new DOMRect(left, top, w, h);
    };
    /** @param {string} corner */
    const put = (corner) => {
      const rect = at(corner);
      this.panel.dataset.corner = corner;
      this.panel.style.left = `${Math.round(rect.left - live.left)}px`;
      this.panel.style.top = `${Math.round(rect.top - live.top)}px`;
    };
    for (const corner of CORNERS) {
      if (!rects.some((r) => overlaps(at(corner), r))) {
        put(corner);
        this.host.moved?.();
        return;
      }
    }
    // no corner is free: the stage keeps room for it at the top right — a column beside the
    // rest on a wide stage, a band above it on a tall one
    put("top-right");
    stage.dataset.audienceDock = box.width > box.height * 1.2 ? "right" : "top";
    stage.style.setProperty("--audience-dock-w", `${w}px`);
    stage.style.setProperty("--audience-dock-h", `${h}px`);
    this.host.layoutStage();
    this.host.moved?.();
  }
}
