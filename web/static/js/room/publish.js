// What we publish: the camera and microphone we want live (they come back after a
// reconnect), the screen share, going live and stopping, an attendee allowed to speak
// switching their microphone or camera on, and what the server may allow us.

import { t } from "../i18n.js";
import { captureScreen, mediaErrorMessage } from "../media.js";
import { WebinarError } from "../protocol.js";
import { byId, errorText, setBusy } from "../ui.js";
import { kindOf } from "./page.js";

/** @typedef {import("./page.js").RoomContext} RoomContext */
/** @typedef {import("./page.js").Source} Source */
/** @typedef {import("./page.js").WebinarConnection} WebinarConnection */
/** @typedef {{track: MediaStreamTrack, source: Source}} TrackToPublish */

/**
 * @typedef {object} PublisherHooks
 * @property {() => void} renderLocal  what we publish changed (own tile, preview, toggles)
 * @property {() => void} renderPeople  the participant list shows our devices too
 * @property {() => void} renderControls  which controls show follows what we may publish
 * @property {() => void} updateLive  Go live or Stop, the share button, the status line
 */

export class Publisher {
  /**
   * @param {RoomContext} room
   * @param {import("./devices.js").Devices} devices
   * @param {PublisherHooks} hooks
   */
  constructor(room, devices, hooks) {
    this.room = room;
    this.devices = devices;
    this.hooks = hooks;
    /** Camera and microphone the user wants published; survives a reconnect. @type {Set<Source>} */
    this.wanted = new Set();
    /** @type {{stream: MediaStream, producers: Map<string, string>} | null} */
    this.screen = null;
  }

  get local() {
    return this.devices.local;
  }

  /** Our producer ID per source that is live now (camera, microphone). */
  get live() {
    /** @type {Map<string, string>} */
    const out = new Map();
    for (const p of this.room.conn?.producers.values() ?? []) {
      if (p.source === "camera" || p.source === "microphone") out.set(p.source, p.producer_id);
    }
    return out;
  }

  /**
   * Whether we may publish this source now (the server's rule, mirrored).
   * @param {Source} source
   */
  may(source) {
    const conn = this.room.conn;
    const me = conn?.me;
    if (!conn || !me) return false;
    if (this.room.staff) return true;
    const room = conn.room;
    if (!room || room.phase !== "live" || room.mode === "presenters-only") return false;
    const granted = source === "microphone" ? me.grant_audio : source === "camera" ? me.grant_video : false;
    return Boolean(granted) || (room.mode === "discussion" && !me.listen_only);
  }

  /** Is this source on, as the toggle should show it? @param {Source} source */
  isOn(source) {
    const kind = kindOf(source);
    const enabled = kind === "video" ? this.local.cameraOn : this.local.micOn;
    const producer = this.room.conn?.producerFor(source);
    if (producer) return enabled && !producer.paused;
    if (this.room.staff) return enabled;
    return false;
  }

  /** What the participant list shows for our own device. @param {Source} source @returns {"on" | "off" | "none"} */
  selfState(source) {
    const producer = this.room.conn?.producerFor(source);
    if (!producer) return "none";
    const on = source === "camera" ? this.local.cameraOn : this.local.micOn;
    return producer.paused || !on ? "off" : "on";
  }

  /**
   * The microphone or camera button: live, it switches the stream for everyone
   * (set-stream-paused); a presenter not live switches the preview; an attendee
   * allowed to speak publishes.
   * @param {"microphone" | "camera"} source
   */
  async toggleSource(source) {
    const conn = this.room.conn;
    const kind = kindOf(source);
    const want = !this.isOn(source);
    const producer = conn?.producerFor(source);
    if (conn && producer) {
      if (want && !this.local.has(kind)) {
        // the device went away meanwhile: start it again and send it on the same producer
        await this.devices.start(kind);
        const track = kind === "video" ? this.local.video : this.local.audio;
        if (!track) return;
        await conn.replaceTrack(producer.producer_id, track).catch(() => {});
      }
      this.local.setEnabled(kind, want);
      try {
        await conn.setStreamPaused(producer.producer_id, !want);
      } catch (error) {
        this.local.setEnabled(kind, !want);
        this.room.showFailure(error);
      }
      this.hooks.renderLocal();
      this.hooks.renderPeople();
      return;
    }
    if (this.room.staff || !conn) {
      if (want) await this.devices.ensure(kind);
      this.local.setEnabled(kind, want);
      return;
    }
    if (!want) return;
    if (!this.may(source)) {
      this.room.showError(
        conn.me?.listen_only
          ? t("You joined when discussion was full, so you can listen but not speak.")
          : t("You may not speak right now. Raise your hand to ask."),
      );
      return;
    }
    await this.publishSources([source]);
  }

  /**
   * Publish tracks; what went live is wanted (it comes back after a reconnect).
   * @param {WebinarConnection} conn
   * @param {TrackToPublish[]} tracks
   */
  async publishWanted(conn, tracks) {
    const producers = await conn.publish(tracks);
    for (const p of producers) this.wanted.add(p.source);
  }

  /**
   * An attendee allowed to speak publishes their microphone and/or camera.
   * @param {("microphone" | "camera")[]} sources
   */
  async publishSources(sources) {
    const conn = this.room.conn;
    if (!conn || this.room.busy) return;
    this.room.busy = true;
    try {
      /** @type {TrackToPublish[]} */
      const tracks = [];
      for (const source of sources) {
        const kind = kindOf(source);
        await this.devices.ensure(kind);
        const track = kind === "video" ? this.local.video : this.local.audio;
        if (!track) continue;
        this.local.setEnabled(kind, true);
        tracks.push({ track, source });
      }
      if (!tracks.length) return;
      try {
        await this.publishWanted(conn, tracks);
      } catch (error) {
        for (const { source } of tracks) this.local.stopKind(kindOf(source));
        this.room.showFailure(error);
      }
    } finally {
      this.room.busy = false;
      this.hooks.renderLocal();
      this.hooks.renderControls();
      this.hooks.renderPeople();
    }
  }

  /** @param {{audioOnly?: boolean}} [options] */
  async goLive(options = {}) {
    const conn = this.room.conn;
    const local = this.local;
    if (!conn || this.live.size || this.room.busy) return;
    const button = /** @type {HTMLButtonElement} */ (byId("go-live"));
    this.room.busy = true;
    setBusy(button, true);
    this.room.hideError();
    try {
      await this.devices.ensureBoth();
      /** @type {TrackToPublish[]} */
      const tracks = [];
      if (local.video && !options.audioOnly) tracks.push({ track: local.video, source: "camera" });
      if (local.audio) tracks.push({ track: local.audio, source: "microphone" });
      if (!tracks.length) return;
      try {
        await this.publishWanted(conn, tracks);
        // Whatever is switched off stays off for everyone: they see the avatar.
        await this.applyPauses();
      } catch (error) {
        const offerAudio = error instanceof WebinarError && error.code === "camera-limit" && local.audio;
        this.room.showError(
          () => errorText(error, this.room.context()),
          offerAudio ? { label: t("Go live with microphone only"), action: () => this.goLive({ audioOnly: true }) } : null,
        );
      }
    } finally {
      this.room.busy = false;
      setBusy(button, false);
      this.hooks.updateLive();
      this.hooks.renderLocal();
      this.hooks.renderPeople();
    }
  }

  async stopLive() {
    const conn = this.room.conn;
    if (!conn) return;
    const ids = [...this.live.values()];
    this.wanted.delete("camera");
    this.wanted.delete("microphone");
    this.local.stop();
    await this.unpublish(conn, ids);
    this.hooks.updateLive();
    this.hooks.renderLocal();
    this.hooks.renderPeople();
    byId("go-live").focus();
  }

  /**
   * Stop sending these producers; say what the server refused.
   * @param {WebinarConnection} conn
   * @param {string[]} ids
   */
  async unpublish(conn, ids) {
    const results = await Promise.allSettled(ids.map((id) => conn.unpublish(id)));
    for (const result of results) {
      if (result.status === "rejected") this.room.showError(() => errorText(result.reason));
    }
  }

  /** Tell the server about sources switched off locally (others then see an avatar). */
  async applyPauses() {
    const conn = this.room.conn;
    if (!conn) return;
    for (const source of /** @type {const} */ (["camera", "microphone"])) {
      const producer = conn.producerFor(source);
      const on = source === "camera" ? this.local.cameraOn : this.local.micOn;
      if (producer && !on && !producer.paused) {
        await conn.setStreamPaused(producer.producer_id, true).catch(() => {});
      }
    }
  }

  /** Publish again what was live before the connection dropped. */
  async republish() {
    const conn = this.room.conn;
    if (!conn) return;
    const sources = [...this.wanted].filter((s) => this.may(s));
    for (const source of this.wanted) if (!sources.includes(source)) this.wanted.delete(source);
    /** @type {TrackToPublish[]} */
    const tracks = [];
    for (const source of sources) {
      const track = source === "camera" ? this.local.video : this.local.audio;
      if (track && track.readyState === "live") tracks.push({ track, source });
    }
    const screen = this.screen;
    if (screen && this.room.staff) {
      tracks.push(...screenTracks(screen.stream, (track) => track.readyState === "live"));
    } else if (screen) {
      this.stopScreenTracks();
    }
    if (!tracks.length) {
      this.hooks.renderLocal();
      return;
    }
    try {
      const producers = await conn.publish(tracks);
      if (screen) {
        screen.producers = new Map(
          producers.filter((p) => p.source === "screen" || p.source === "screen-audio").map((p) => [p.source, p.producer_id]),
        );
      }
      await this.applyPauses();
    } catch (error) {
      if (!(error instanceof WebinarError && (error.code === "closed" || error.code === "not-connected"))) {
        this.room.showFailure(error);
      }
    }
    this.hooks.renderLocal();
    this.hooks.updateLive();
  }

  async toggleScreen() {
    if (this.screen) {
      await this.stopScreen();
      return;
    }
    const conn = this.room.conn;
    if (!conn) return;
    /** @type {MediaStream} */
    let stream;
    try {
      stream = await captureScreen();
    } catch (error) {
      if (error instanceof Error && error.name === "NotAllowedError") {
        this.room.toasts.show(t("Screen sharing was cancelled."));
      } else {
        this.room.showError(() => mediaErrorMessage(error, "screen"));
      }
      return;
    }
    try {
      const producers = await conn.publish(screenTracks(stream));
      this.screen = { stream, producers: new Map(producers.map((p) => [p.source, p.producer_id])) };
    } catch (error) {
      for (const track of stream.getTracks()) track.stop();
      this.room.showFailure(error);
      return;
    }
    // The browser's own "Stop sharing" button ends the track.
    stream.getVideoTracks()[0]?.addEventListener("ended", () => this.stopScreen());
    this.hooks.updateLive();
  }

  async stopScreen() {
    const screen = this.screen;
    const conn = this.room.conn;
    if (!screen) return;
    this.screen = null;
    this.stopScreenTracks(screen);
    this.hooks.updateLive();
    if (!conn) return;
    await this.unpublish(conn, [...screen.producers.values()]);
  }

  /** @param {{stream: MediaStream} | null} [screen] */
  stopScreenTracks(screen = this.screen) {
    if (screen) for (const track of screen.stream.getTracks()) track.stop();
    if (screen === this.screen) this.screen = null;
  }

  /**
   * One of our producers closed on the server's side (not our own unpublish).
   * @param {{producer_id: string, source: Source | null, reason: string}} detail
   */
  producerClosed(detail) {
    const source = detail.source;
    if (this.screen) {
      for (const [s, id] of this.screen.producers) if (id === detail.producer_id) this.screen.producers.delete(s);
      if (this.screen.producers.size === 0) this.stopScreenTracks();
    }
    if (source === "camera" || source === "microphone") {
      this.wanted.delete(source);
      // The server took it away: release the device (its light goes off).
      if (!this.room.staff || detail.reason === "role-changed") this.local.stopKind(kindOf(source));
    }
  }

  /** Publish nothing any more, and forget what was wanted (left, closed, or no longer a presenter). */
  stopAll() {
    this.wanted.clear();
    this.stopScreenTracks();
  }
}

/**
 * A screen capture's tracks to publish: its video as `screen`, its audio (if the user
 * shared it) as `screen-audio`.
 * @param {MediaStream} stream
 * @param {(track: MediaStreamTrack) => boolean} [keep]
 * @returns {TrackToPublish[]}
 */
function screenTracks(stream, keep = () => true) {
  return [
    ...stream.getVideoTracks().filter(keep).map((track) => ({ track, source: /** @type {Source} */ ("screen") })),
    ...stream.getAudioTracks().filter(keep).map((track) => ({ track, source: /** @type {Source} */ ("screen-audio") })),
  ];
}
