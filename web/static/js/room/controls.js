// The controls: the bar under the stage (microphone, camera, screen share, raise hand,
// Devices, Go live / Stop, mode, REC, people, Leave, End for all), the staff's tools in
// the people tab (next speaker, mute attendees, lock) and the actions on a person's row
// (with the remove dialog). It owns what we publish: the camera and microphone we want
// live (they come back after a reconnect) and the screen share.

import { captureScreen, mediaErrorMessage } from "../media.js";
import { WebinarError } from "../protocol.js";
import { byId, errorText, setBusy } from "../ui.js";
import { kindOf } from "./page.js";

/** @typedef {import("./page.js").RoomContext} RoomContext */
/** @typedef {import("./page.js").Source} Source */
/** @typedef {import("./page.js").ParticipantInfo} ParticipantInfo */
/** @typedef {import("./page.js").WebinarConnection} WebinarConnection */
/** @typedef {{track: MediaStreamTrack, source: Source}} TrackToPublish */

/**
 * @typedef {object} ControlsHooks
 * @property {() => void} renderLocal  what we publish changed (own tile, preview, toggles)
 * @property {() => void} renderPeople  the participant list shows our devices too
 * @property {() => void} updateStatus  the status line says whether we are live
 * @property {() => void} leave  the Leave button
 */

export class Controls {
  /**
   * @param {RoomContext} room
   * @param {import("./devices.js").Devices} devices
   * @param {ControlsHooks} hooks
   */
  constructor(room, devices, hooks) {
    this.room = room;
    this.devices = devices;
    this.hooks = hooks;
    /** Camera and microphone the user wants published; survives a reconnect. @type {Set<Source>} */
    this.wanted = new Set();
    /** @type {{stream: MediaStream, producers: Map<string, string>} | null} */
    this.screen = null;
    /** Whom the remove dialog is about. @type {ParticipantInfo | null} */
    this.removing = null;
    this.bind();
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

  bind() {
    byId("mic-toggle").addEventListener("click", () => this.toggleSource("microphone"));
    byId("camera-toggle").addEventListener("click", () => this.toggleSource("camera"));
    byId("go-live").addEventListener("click", () => this.goLive());
    byId("stop-live").addEventListener("click", () => this.stopLive());
    byId("screen-share-toggle").addEventListener("click", () => this.toggleScreen());
    byId("leave").addEventListener("click", () => this.hooks.leave());
    byId("raise-hand").addEventListener("click", () => this.toggleHand());
    byId("start-event").addEventListener("click", () => this.startEvent());
    const select = /** @type {HTMLSelectElement} */ (byId("mode-select"));
    select.addEventListener("change", () => this.setMode(select));
    byId("next-speaker").addEventListener("click", () => this.command((conn) => conn.nextSpeaker()));
    byId("mute-attendees").addEventListener("click", async () => {
      if (await this.command((conn) => conn.muteAttendees())) {
        this.room.toasts.show("Every attendee's microphone is muted.", { key: "mute-all" });
      }
    });
    byId("lock-toggle").addEventListener("click", () => this.command((conn) => conn.lock(!conn.room?.locked)));
    byId("record-toggle").addEventListener("click", () =>
      this.command((conn) => conn.setRecording((conn.room?.recording ?? "off") === "off")),
    );
    const endDialog = /** @type {HTMLDialogElement} */ (byId("end-dialog"));
    byId("end-for-all").addEventListener("click", () => {
      endDialog.returnValue = ""; // Escape keeps the last value otherwise
      endDialog.showModal();
    });
    endDialog.addEventListener("close", () => {
      if (endDialog.returnValue === "end") this.command((conn) => conn.endForAll());
      else byId("end-for-all").focus();
    });
    const removeDialog = /** @type {HTMLDialogElement} */ (byId("remove-dialog"));
    removeDialog.addEventListener("close", () => {
      const person = this.removing;
      this.removing = null;
      const ban = /** @type {HTMLInputElement} */ (byId("remove-ban")).checked;
      if (removeDialog.returnValue === "remove" && person) {
        this.command(async (conn) => {
          await conn.remove(person.participant_id, { ban });
          this.room.toasts.show(`${person.name} was removed${ban ? " and cannot join again" : ""}.`, { key: "removed" });
        });
      }
    });
  }

  /**
   * Say plainly what the server refused (or what failed).
   * @param {unknown} error
   */
  fail(error) {
    this.room.showError(errorText(error, this.room.context()));
  }

  /**
   * Run a room command; say plainly when the server refuses it.
   * @param {(conn: WebinarConnection) => Promise<unknown>} run
   */
  async command(run) {
    const conn = this.room.conn;
    if (!conn) return false;
    try {
      await run(conn);
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    }
  }

  /** @param {HTMLSelectElement} select */
  async setMode(select) {
    const conn = this.room.conn;
    if (!conn) return;
    const previous = conn.room?.mode ?? "listen-only";
    const mode = /** @type {"listen-only" | "discussion" | "presenters-only"} */ (select.value);
    if (mode === previous) return;
    select.disabled = true;
    try {
      await conn.setMode(mode);
    } catch (error) {
      select.value = conn.room?.mode ?? previous;
      this.fail(error);
    } finally {
      select.disabled = false;
    }
  }

  async startEvent() {
    const button = /** @type {HTMLButtonElement} */ (byId("start-event"));
    button.disabled = true;
    await this.command((conn) => conn.start());
    button.disabled = false;
  }

  async toggleHand() {
    const conn = this.room.conn;
    if (!conn) return;
    const raised = conn.me?.hand_raised != null;
    if (await this.command(() => (raised ? conn.lowerHand() : conn.raiseHand()))) {
      if (!raised) {
        this.room.toasts.show("Your hand is raised. A presenter will let you speak.", { key: "hand" });
      }
    }
  }

  /**
   * An action on a person's row in the participant list (or a toast's "Allow mic").
   * @param {import("../participants.js").RowAction} action
   * @param {ParticipantInfo} person
   */
  onRowAction(action, person) {
    const id = person.participant_id;
    switch (action) {
      case "grant-mic":
        this.command((conn) => conn.grant(id, { audio: true, video: Boolean(person.grant_video) }));
        break;
      case "grant-camera":
        this.command((conn) => conn.grant(id, { audio: Boolean(person.grant_audio), video: true }));
        break;
      case "revoke":
        this.command((conn) => conn.grant(id, { audio: false, video: false }));
        break;
      case "lower-hand":
        this.command((conn) => conn.lowerHand(id));
        break;
      case "mute":
        this.command((conn) => conn.mute(id));
        break;
      case "make-presenter":
        this.command((conn) => conn.setRole(id, "presenter"));
        break;
      case "make-attendee":
        this.command((conn) => conn.setRole(id, "attendee"));
        break;
      case "remove": {
        if (!this.room.conn) return;
        this.removing = person;
        byId("remove-name").textContent = person.name;
        /** @type {HTMLInputElement} */ (byId("remove-ban")).checked = false;
        const dialog = /** @type {HTMLDialogElement} */ (byId("remove-dialog"));
        dialog.returnValue = ""; // Escape keeps the last value otherwise
        dialog.showModal();
        break;
      }
    }
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
        this.fail(error);
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
          ? "You joined when discussion was full, so you can listen but not speak."
          : "You may not speak right now. Raise your hand to ask.",
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
        this.fail(error);
      }
    } finally {
      this.room.busy = false;
      this.hooks.renderLocal();
      this.render();
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
          errorText(error, this.room.context()),
          offerAudio ? { label: "Go live with microphone only", action: () => this.goLive({ audioOnly: true }) } : null,
        );
      }
    } finally {
      this.room.busy = false;
      setBusy(button, false);
      this.updateLive();
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
    this.updateLive();
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
      if (result.status === "rejected") this.room.showError(errorText(result.reason));
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
        this.fail(error);
      }
    }
    this.hooks.renderLocal();
    this.updateLive();
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
        this.room.toasts.show("Screen sharing was cancelled.");
      } else {
        this.room.showError(mediaErrorMessage(error, "screen"));
      }
      return;
    }
    try {
      const producers = await conn.publish(screenTracks(stream));
      this.screen = { stream, producers: new Map(producers.map((p) => [p.source, p.producer_id])) };
    } catch (error) {
      for (const track of stream.getTracks()) track.stop();
      this.fail(error);
      return;
    }
    // The browser's own "Stop sharing" button ends the track.
    stream.getVideoTracks()[0]?.addEventListener("ended", () => this.stopScreen());
    this.updateLive();
  }

  async stopScreen() {
    const screen = this.screen;
    const conn = this.room.conn;
    if (!screen) return;
    this.screen = null;
    this.stopScreenTracks(screen);
    this.updateLive();
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

  /** Which controls show, and their state: follows the role, the room and our grants. */
  render() {
    const conn = this.room.conn;
    const staff = this.room.staff;
    const me = conn?.me ?? null;
    const room = conn?.room ?? null;
    const mayMic = this.may("microphone") || Boolean(conn?.producerFor("microphone"));
    const mayCam = this.may("camera") || Boolean(conn?.producerFor("camera"));
    byId("mic-toggle").hidden = !mayMic;
    byId("camera-toggle").hidden = !mayCam;
    byId("screen-share-toggle").hidden = !staff;
    byId("settings").hidden = !(mayMic || mayCam);
    byId("staff-controls").hidden = !staff;
    byId("people-tools").hidden = !staff;
    byId("end-for-all").hidden = this.room.role !== "host";
    const hand = byId("raise-hand");
    hand.hidden = staff;
    const raised = me?.hand_raised != null;
    hand.setAttribute("aria-pressed", String(raised));
    /** @type {HTMLElement} */ (hand.querySelector(".label")).textContent = raised ? "Lower hand" : "Raise hand";
    if (raised && conn) {
      const queue = [...conn.participants.values()].filter((p) => p.hand_raised != null).sort((a, b) => (a.hand_raised ?? 0) - (b.hand_raised ?? 0));
      const place = queue.findIndex((p) => p.participant_id === me?.participant_id) + 1;
      hand.title = `Your hand is raised (${place} in the queue). Press to lower it.`;
    } else {
      hand.title = "Raise your hand to ask to speak";
    }
    const note = byId("listen-only-note");
    const listenOnly = !staff && Boolean(me?.listen_only) && room?.mode === "discussion";
    note.hidden = !listenOnly;
    note.textContent = listenOnly ? "You joined when discussion was full, so you can listen but not speak." : "";
    const select = /** @type {HTMLSelectElement} */ (byId("mode-select"));
    if (room && document.activeElement !== select) select.value = room.mode;
    const lock = byId("lock-toggle");
    lock.setAttribute("aria-pressed", String(Boolean(room?.locked)));
    lock.textContent = room?.locked ? "Unlock room" : "Lock room";
    this.renderToggles();
    this.updateLive();
  }

  /**
   * The REC button (the record capability: host, presenter).
   * @param {string} phase
   * @param {string} recording  "off", "recording" or "paused"
   */
  renderRecord(phase, recording) {
    const recButton = byId("record-toggle");
    recButton.hidden = !this.room.staff || phase !== "live";
    recButton.setAttribute("aria-pressed", String(recording !== "off"));
    recButton.textContent = recording === "off" ? "REC" : "Stop recording";
  }

  renderToggles() {
    /** @type {[string, Source, string][]} */
    const buttons = [
      ["mic-toggle", "microphone", "microphone"],
      ["camera-toggle", "camera", "camera"],
    ];
    for (const [id, source, noun] of buttons) {
      const button = byId(id);
      const on = this.isOn(source);
      button.setAttribute("aria-pressed", String(on));
      const publishes = !this.room.staff && !this.room.conn?.producerFor(source);
      button.title = on ? `Turn the ${noun} off` : publishes ? `Turn your ${noun} on: everyone will ${source === "camera" ? "see" : "hear"} you` : `Turn the ${noun} on`;
    }
  }

  /** Go live or Stop, the screen share button, the room's data-live. */
  updateLive() {
    // while reconnecting, what was live comes back by itself
    const resuming = this.room.conn?.state === "reconnecting" && (this.wanted.has("camera") || this.wanted.has("microphone"));
    const liveNow = this.live.size > 0 || resuming;
    const staff = this.room.staff;
    byId("go-live").hidden = !staff || liveNow;
    byId("stop-live").hidden = !staff || !liveNow;
    byId("room").dataset.live = String(liveNow);
    const share = byId("screen-share-toggle");
    share.setAttribute("aria-pressed", String(Boolean(this.screen)));
    /** @type {HTMLElement} */ (share.querySelector(".label")).textContent = this.screen ? "Stop sharing" : "Share screen";
    this.renderToggles();
    this.hooks.updateStatus();
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
