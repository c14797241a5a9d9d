// Content on stage: what a presenter shows instead of or beside the cameras — a presentation,
// a shared video, the whiteboard, an external player — and the files offered for download.
//
// The server keeps one `stage` state per room (docs/protocol.md, "Stage") and sends it whole
// on each change, and inside the `sync-interaction` reply. This module holds the latest, sets
// the layout (#stage[data-content]) and shows the matching view; each kind of content has its
// own module that draws into its view (#presentation-view, #shared-video-view,
// #whiteboard-view, #external-view) and registers here with onStage() / onMessage().

import { byId } from "../ui.js";

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

/** The layouts that show a content view (the others show only cameras). */
const VIEWS = /** @type {Record<string, string>} */ ({
  presentation: "presentation-view",
  video: "shared-video-view",
  whiteboard: "whiteboard-view",
  external: "external-view",
});

export class StageContent {
  /**
   * @param {{ eventId: string, presenterKey: string | null, onLayout?: (layout: string) => void }} host
   */
  constructor(host) {
    this.host = host;
    /** @type {WebinarConnection | null} */
    this.conn = null;
    /** @type {StageState | null} */
    this.state = null;
    /** The server's clock minus ours, in seconds (from the `now` of each `stage`). */
    this.clockOffset = 0;
    /** @type {((state: StageState, previous: StageState | null) => void)[]} */
    this._stageHandlers = [];
    /** @type {Map<string, ((message: any) => void)[]>} */
    this._messageHandlers = new Map();
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

  /** @param {WebinarConnection} conn */
  attach(conn) {
    this.conn = conn;
    conn.addEventListener("server-message", (/** @type {any} */ event) => {
      const message = event.detail;
      if (message.type === "stage") this.load(message);
      for (const fn of this._messageHandlers.get(message.type) ?? []) fn(message);
    });
  }

  /**
   * A new state: from a `stage` message or the `stage` of the `sync-interaction` reply.
   * @param {StageState | null | undefined} state
   */
  load(state) {
    if (!state) return;
    const previous = this.state;
    this.state = state;
    if (typeof state.now === "number") this.clockOffset = state.now - Date.now() / 1000;
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
    byId("stage-content").hidden = shown === null;
    for (const id of Object.values(VIEWS)) byId(id).hidden = id !== shown;
    this.host.onLayout?.(layout);
  }

  /**
   * A content URL of this event that works for this participant (the content pass of a
   * password, token or paid event appended).
   * @param {string} path
   */
  url(path) {
    const pass = this.state?.content_pass;
    if (!pass) return path;
    return `${path}${path.includes("?") ? "&" : "?"}pass=${encodeURIComponent(pass)}`;
  }

  /**
   * @param {string} type
   * @param {Record<string, unknown>} [fields]
   */
  request(type, fields = {}) {
    if (!this.conn) return Promise.reject(new Error("not connected"));
    return this.conn.request(type, fields);
  }
}
