// Content on stage: what a presenter shows instead of or beside the cameras — a presentation,
// a shared video, the whiteboard, an external player — and the files offered for download.
//
// The server keeps one `stage` state per room (docs/protocol.md, "Stage") and sends it whole
// on each change, and inside the `sync-interaction` reply. This module holds the latest, sets
// the layout (#stage[data-content]) and shows the matching view; each kind of content has its
// own module that draws into its view (#presentation-view, #shared-video-view,
// #whiteboard-view, #external-view) and registers here with onStage() / onMessage():
//   presentation.js   the slide, its page number, the presenter's page controls, the laser pointer
//   files.js          the Files tab: what the presenters offer for download
//   content_menu.js   the presenters' Content menu: upload, present, share, offer, layout
//   external.js, video.js, whiteboard.js (room.js makes them) register the same way.

import { t } from "../i18n.js";
import { byId } from "../ui.js";
import { ContentMenu } from "./content_menu.js";
import { FilesPanel } from "./files.js";
import { PresentationView } from "./presentation.js";

/** @typedef {import("../protocol.js").WebinarConnection} WebinarConnection */

/**
 * @typedef {object} StageState  the server's `stage` message (docs/protocol.md, "Stage")
 * @property {string} layout  cameras | screen | presentation | video | whiteboard | external
 * @property {any} presentation
 * @property {any} video
 * @property {any[]} files
 * @property {any} whiteboard
 * @property {any} external
 * @property {string} content_pass
 * @property {number} now
 * @property {string} cause
 * @property {string | null} by
 */

/**
 * @typedef {object} ContentHost  what the room gives the content modules
 * @property {string} eventId
 * @property {string | null} presenterKey  the presenter or host key (or a presenter's join token)
 * @property {(layout: string) => void} [onLayout]  the layout changed (the stage sizes its tiles)
 * @property {import("../ui.js").Toasts} [toasts]
 * @property {() => boolean} [staff]  we are a presenter or host now
 * @property {(tabId: string) => void} [showTab]  open the side panel on this tab
 * @property {(error: unknown) => void} [showFailure]  the page's error box, in plain words
 */

/** The layouts that show a content view (the others show only cameras). */
const VIEWS = /** @type {Record<string, string>} */ ({
  presentation: "presentation-view",
  video: "shared-video-view",
  whiteboard: "whiteboard-view",
  external: "external-view",
});

export class StageContent {
  /** @param {ContentHost} host */
  constructor(host) {
    this.host = host;
    /** @type {WebinarConnection | null} */
    this.conn = null;
    /** @type {StageState | null} */
    this.state = null;
    /** The server's clock minus ours, in seconds (from the `now` of each `stage`). */
    this.clockOffset = 0;
    /** The content pass in use (kept while it is good: see adoptPass). @type {string | null} */
    this.pass = null;
    /** When we took it (ms, our clock). */
    this.passTakenAt = 0;
    /** @type {((state: StageState, previous: StageState | null) => void)[]} */
    this._stageHandlers = [];
    /** @type {Map<string, ((message: any) => void)[]>} */
    this._messageHandlers = new Map();
    /** @type {((conn: WebinarConnection) => void)[]} */
    this._attachHandlers = [];
    this.presentation = new PresentationView(this);
    this.files = new FilesPanel(this);
    this.menu = new ContentMenu(this);
  }

  /**
   * Called with every new stage state (and the one before it, or null after a sync).
   * @param {(state: StageState, previous: StageState | null) => void} fn
   */
  onStage(fn) {
    this._stageHandlers.push(fn);
    if (this.state) fn(this.state, null);
  }

  /**
   * Called with every server message of this type (`pointer`, `whiteboard-stroke`, …).
   * @param {string} type
   * @param {(message: any) => void} fn
   */
  onMessage(type, fn) {
    const list = this._messageHandlers.get(type) ?? [];
    list.push(fn);
    this._messageHandlers.set(type, list);
  }

  /**
   * Called with each new connection (joining, rejoining).
   * @param {(conn: WebinarConnection) => void} fn
   */
  onAttach(fn) {
    this._attachHandlers.push(fn);
    if (this.conn) fn(this.conn);
  }

  /** @param {WebinarConnection} conn */
  attach(conn) {
    this.conn = conn;
    conn.addEventListener("server-message", (/** @type {any} */ event) => {
      if (this.conn !== conn) return;
      const message = event.detail;
      if (message.type === "stage") this.load(message);
      for (const fn of this._messageHandlers.get(message.type) ?? []) {
        try {
          fn(message);
        } catch (error) {
          console.error("webinar: content message handler failed", message.type, error);
        }
      }
    });
    for (const fn of this._attachHandlers) fn(conn);
  }

  /**
   * A new state: from a `stage` message or the `stage` of the `sync-interaction` reply.
   * @param {StageState | null | undefined} state
   * @param {boolean} [sync]  from the sync reply (after joining or a reconnect): the handlers
   *   get no previous state, since what happened in between is unknown
   */
  load(state, sync = state?.cause === "sync") {
    if (!state) return;
    const previous = sync ? null : this.state;
    this.state = state;
    if (typeof state.now === "number") this.clockOffset = state.now - Date.now() / 1000;
    this.adoptPass(state.content_pass ?? null);
    this.applyLayout(state.layout);
    for (const fn of this._stageHandlers) {
      try {
        fn(state, previous);
      } catch (error) {
        console.error("webinar: stage view failed", error);
      }
    }
  }

  /** The server's clock now, in Unix seconds. */
  serverNow() {
    return Date.now() / 1000 + this.clockOffset;
  }

  /** @param {string} layout */
  applyLayout(layout) {
    const stage = byId("stage");
    stage.dataset.content = layout;
    const shown = VIEWS[layout] ?? null;
    // content shown: the cameras are a strip beside it (CSS and the grid's layout follow)
    stage.dataset.strip = String(shown !== null);
    byId("stage-content").hidden = shown === null;
    byId("stage-content").dataset.layout = layout;
    for (const id of Object.values(VIEWS)) byId(id).hidden = id !== shown;
    this.host.onLayout?.(layout);
  }

  /** The element of the content shown on stage now (null when only cameras are). */
  contentBox() {
    const id = VIEWS[this.state?.layout ?? ""];
    return id ? byId(id) : null;
  }

  /** Whether we may show content (presenter or host) now. */
  staff() {
    return this.host.staff?.() ?? false;
  }

  /** Our participant ID in the room (null before joining). */
  me() {
    return this.conn?.participantId ?? null;
  }

  /**
   * A notice at the corner of the page.
   * @param {string} text
   * @param {import("../ui.js").ToastOptions} [options]
   */
  toast(text, options) {
    this.host.toasts?.show(text, options);
  }

  /**
   * Say plainly what the server refused.
   * @param {unknown} error
   */
  fail(error) {
    if (this.host.showFailure) this.host.showFailure(error);
    else console.error("webinar:", error);
  }

  /**
   * Our own screen share started or stopped. A screen shared while content is on stage is
   * what the presenter wants large: the stage switches to it.
   * @param {boolean} sharing
   */
  screenShared(sharing) {
    const layout = this.state?.layout ?? "cameras";
    if (sharing && this.staff() && layout in VIEWS) {
      this.request("stage-layout", { layout: "screen" }).catch((error) => this.fail(error));
    }
  }

  /**
   * Each `stage` message carries a fresh content pass. Content URLs carry the pass, so a new
   * one would be a new URL for the same page image: nothing loaded ahead or cached would
   * match. So the pass in use is kept while it has more than an hour left
   * (`<event>.<expires>.…`), or, when its expiry cannot be read, for an hour.
   * @param {string | null} next
   */
  adoptPass(next) {
    if (!next) {
      this.pass = null;
      return;
    }
    if (this.pass === next) return;
    if (this.pass) {
      const expires = Number(this.pass.split(".")[1]);
      const left = Number.isFinite(expires) && expires > 0 ? expires - this.serverNow() : 3600 - (Date.now() - this.passTakenAt) / 1000;
      if (left > 3600) return;
    }
    this.pass = next;
    this.passTakenAt = Date.now();
  }

  /**
   * A content URL of this event that works for this participant (the content pass of a
   * password, token or paid event appended).
   * @param {string} path
   */
  url(path) {
    const pass = this.pass;
    if (!pass) return path;
    return `${path}${path.includes("?") ? "&" : "?"}pass=${encodeURIComponent(pass)}`;
  }

  /**
   * Headers that admit a request to this event's content: the presenter key, the content
   * pass, and our resume token in the room (docs/api.md, "Content").
   * @returns {Record<string, string>}
   */
  authHeaders() {
    /** @type {Record<string, string>} */
    const headers = {};
    if (this.host.presenterKey) headers["X-Presenter-Key"] = this.host.presenterKey;
    if (this.pass) headers["X-Content-Pass"] = this.pass;
    const resume = this.conn?.joined?.resume_token;
    if (resume) headers["X-Resume-Token"] = resume;
    return headers;
  }

  /** The event's content URLs start with this (`/e/<event>`). */
  get eventPath() {
    return `/e/${encodeURIComponent(this.host.eventId)}`;
  }

  /**
   * @param {string} type
   * @param {Record<string, unknown>} [fields]
   */
  request(type, fields = {}) {
    if (!this.conn) return Promise.reject(new Error(t("not connected")));
    return this.conn.request(type, fields);
  }
}
