// The stage for an attendee who watches over HLS (the event's HLS setting: every attendee, or
// those beyond the overflow threshold; docs/protocol.md, `joined.hls`). The server sends such
// an attendee no WebRTC media: the stage is one <video> (data-testid "hls-video") playing the
// room's composed picture from `joined.hls.playlist`, a few seconds behind the room. Chat,
// Q&A, polls and calls to action stay in the side panel as for everyone.
//
// hls.js (vendored from npm in /static/vendor/hls.js/, loaded only here) plays it where the
// browser has Media Source Extensions; Safari on iPhone plays the playlist natively. Until
// the room streams (the playlist answers 404) it asks again every few seconds.

import { setText, t } from "../i18n.js";
import { byId } from "../ui.js";

/** Seconds between tries while the stream has not started (or broke off). */
const RETRY_SECONDS = 3;

export class HlsStage {
  constructor() {
    this.stage = byId("stage");
    this.view = byId("hls-view");
    this.video = /** @type {HTMLVideoElement} */ (byId("hls-video"));
    this.status = byId("hls-status");
    /** @type {string | null} */
    this.playlist = null;
    /** @type {any} an Hls instance */
    this.hls = null;
    /** @type {number | null} */
    this.retry = null;
    byId("sound-button").addEventListener("click", () => {
      if (this.playlist === null) return;
      this.video.muted = false;
      void this.video.play().catch(() => {});
    });
  }

  /**
   * Show the HLS stage for `playlist` (a path of this server), or the WebRTC stage (null).
   * @param {string | null} playlist
   */
  show(playlist) {
    if (playlist === this.playlist) return;
    this.stop();
    this.playlist = playlist;
    this.stage.dataset.hls = playlist ? "true" : "false";
    byId("room").dataset.hls = this.stage.dataset.hls; // no WebRTC quality menu for HLS
    this.view.hidden = !playlist;
    if (playlist) void this.start();
  }

  stop() {
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    if (this.hls) this.hls.destroy();
    this.hls = null;
    this.video.removeAttribute("src");
    this.video.load();
    this.playlist = null;
    this.stage.dataset.hls = "false";
    byId("room").dataset.hls = "false";
    this.view.hidden = true;
  }

  /** Try again in a moment (the stream has not started, or it broke off). */
  later() {
    const playlist = this.playlist;
    if (this.hls) this.hls.destroy();
    this.hls = null;
    this.setStatus(t("The live stream starts in a moment…"));
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = window.setTimeout(() => {
      this.retry = null;
      if (this.playlist === playlist) void this.start();
    }, RETRY_SECONDS * 1000);
  }

  /** @param {string} text */
  setStatus(text) {
    setText(this.status, text);
    this.status.hidden = !text;
  }

  async start() {
    const playlist = this.playlist;
    if (!playlist) return;
    const url = new URL(playlist, location.href).href;
    const found = await fetch(url, { cache: "no-store" }).then(
      (response) => response.ok,
      () => false,
    );
    if (this.playlist !== playlist) return;
    if (!found) {
      this.later();
      return;
    }
    const { default: Hls } = await import("../../vendor/hls.js/hls.light.min.mjs");
    if (this.playlist !== playlist) return;
    if (Hls.isSupported()) {
      const hls = new Hls({
        enableWorker: false, // the page's CSP allows no blob: workers; fMP4 needs no demuxing
        lowLatencyMode: true,
        liveSyncDurationCount: 2,
        liveMaxLatencyDurationCount: 5,
        backBufferLength: 30,
      });
      this.hls = hls;
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (data.fatal && this.hls === hls) this.later();
      });
      hls.loadSource(url);
      hls.attachMedia(this.video);
    } else if (this.video.canPlayType("application/vnd.apple.mpegurl")) {
      this.video.src = url;
    } else {
      this.setStatus(t("This browser cannot play the live stream."));
      return;
    }
    this.setStatus("");
    await this.play();
  }

  /** Play with sound if the browser lets us (the join click counts), else muted. */
  async play() {
    this.video.muted = false;
    try {
      await this.video.play();
    } catch {
      this.video.muted = true;
      byId("sound-button").hidden = false;
      await this.video.play().catch(() => {});
    }
  }
}
