// The room page (attendee and presenter): the UI on top of protocol.js.
//
// The page's <body> carries data-role, data-event-id, data-presenter-key and
// data-starts-at. window.__webinar exposes the live connection for tests and
// debugging (window.__webinar.connection.subscribeConnection.getStats()).

import { VideoGrid } from "./grid.js";
import { LocalMedia, captureScreen, listDevices, mediaErrorMessage } from "./media.js";
import { WebinarConnection, WebinarError } from "./protocol.js";
import { Toasts, byId, cleanName, errorText, formatTime, saveName, savedName } from "./ui.js";

const body = document.body;
/** Hosts present too (and may run the room); everyone else attends. */
const ROLE = body.dataset.role === "presenter" || body.dataset.role === "host" ? "presenter" : "attendee";
const EVENT_ID = body.dataset.eventId ?? "";
const PRESENTER_KEY = body.dataset.presenterKey || null;
const STARTS_AT = body.dataset.startsAt || null;
export const AUTOJOIN_KEY = "webinar.autojoin";

const BYE_TEXT = /** @type {Record<string, string>} */ ({
  left: "You left the webinar.",
  shutdown: "The server is restarting. Try again in a moment.",
  replaced: "You joined this webinar from another tab or device.",
  "protocol-violation": "The server closed the connection because this page misbehaved. Reload the page.",
  removed: "You were removed from this webinar.",
  ended: "The webinar has ended. Thank you for joining.",
  "slow-client": "Your connection was too slow to keep up. Try again.",
});

/** Stream-ended reasons that mean the network, not the person, stopped it. */
const LOST_REASONS = new Set(["disconnected", "transport-closed", "producer-closed", "connection-failed"]);

/** @typedef {{name: string, sources: Set<string>, reason: string, timer: number}} EndedNote */

class Room {
  constructor() {
    /** @type {WebinarConnection | null} */
    this.conn = null;
    this.name = "";
    this.leaving = false;
    this.toasts = new Toasts(byId("toasts"));
    this.grid = new VideoGrid(byId("grid"), {
      onSoundBlocked: () => {
        byId("sound-button").hidden = false;
      },
      onChange: () => this.updateStatus(),
    });
    this.local = ROLE === "presenter" ? new LocalMedia() : null;
    /** Our live camera/microphone producers by source. @type {Map<string, string>} */
    this.live = new Map();
    /** @type {{stream: MediaStream, producers: Map<string, string>} | null} */
    this.screen = null;
    /** Stream-ended notices collected per participant for one toast. @type {Map<string, EndedNote>} */
    this.endedNotes = new Map();
    this.busy = false;
    this.bindPage();
    if (this.local) this.bindPresenter(this.local);
  }

  // ------------------------------------------------------------------ page

  bindPage() {
    const nameInput = /** @type {HTMLInputElement} */ (byId("lobby-name"));
    nameInput.value = savedName();
    byId("lobby-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.join(nameInput.value);
    });
    byId("leave").addEventListener("click", () => this.leave());
    byId("rejoin").addEventListener("click", () => this.join(this.name));
    byId("error-close").addEventListener("click", () => this.hideError());
    byId("sound-button").addEventListener("click", async () => {
      byId("sound-button").hidden = true;
      await this.grid.unblockSound();
    });
    // Closing the tab or navigating away is leaving (not a drop the server waits 60 s for).
    window.addEventListener("pagehide", () => {
      this.conn?.send("leave");
      this.conn?.close();
    });
    for (const time of document.querySelectorAll("time[data-local-time]")) {
      time.textContent = formatTime(time.getAttribute("datetime") ?? "");
    }
    this.updateConnection();
  }

  /** @param {string} rawName */
  async join(rawName) {
    const name = cleanName(rawName);
    const lobbyError = byId("lobby-error");
    if (!name) {
      lobbyError.textContent = "Please enter your name.";
      lobbyError.hidden = false;
      byId("lobby-name").focus();
      return;
    }
    if (this.busy) return;
    this.busy = true;
    lobbyError.hidden = true;
    saveName(name);
    this.name = name;
    this.leaving = false;
    const button = /** @type {HTMLButtonElement} */ (byId("lobby-join"));
    button.disabled = true;
    byId("rejoin").setAttribute("disabled", "");

    const conn = new WebinarConnection();
    this.conn = conn;
    this.wire(conn);
    this.updateConnection();
    try {
      await conn.connect();
      await conn.join({ eventId: EVENT_ID, name, credential: PRESENTER_KEY });
    } catch (error) {
      conn.close();
      this.conn = null;
      this.updateConnection();
      this.showPanel("lobby");
      lobbyError.textContent = errorText(error);
      lobbyError.hidden = false;
      return;
    } finally {
      this.busy = false;
      button.disabled = false;
      byId("rejoin").removeAttribute("disabled");
    }
    this.showPanel("stage");
    this.updateStatus();
    if (this.local) await this.startPreview();
  }

  /** @param {"lobby" | "stage" | "ended"} which */
  showPanel(which) {
    byId("lobby").hidden = which !== "lobby";
    byId("stage").hidden = which !== "stage";
    byId("ended").hidden = which !== "ended";
    byId("controls").hidden = which !== "stage";
    if (which === "lobby") byId("lobby-name").focus();
    if (which === "ended") byId("rejoin").focus();
  }

  /** @param {WebinarConnection} conn */
  wire(conn) {
    /**
     * @param {string} type
     * @param {(detail: any) => void} handler
     */
    const on = (type, handler) =>
      conn.addEventListener(type, (event) => {
        if (this.conn === conn) handler(/** @type {CustomEvent} */ (event).detail);
      });
    on("statechange", () => this.updateConnection());
    on("mediastatechange", () => this.updateConnection());
    on("stream", (remote) => this.grid.add(remote));
    on("stream-ended", (detail) => {
      const shown = this.grid.remove(detail.producer_id);
      if ((shown || detail.shown) && detail.info) this.noteEnded(detail.info, detail.reason);
    });
    on("participant-joined", () => this.updateStatus());
    on("participant-left", (detail) => {
      const note = this.endedNotes.get(detail.participant_id);
      if (note) note.reason = "left";
      else if (detail.participant?.role === "presenter") {
        this.toasts.show(`${detail.participant.name} left the webinar`);
      }
      this.updateStatus();
    });
    on("producer-closed", (detail) => {
      if (!detail.ours) return; // the echo of our own unpublish
      for (const [source, id] of this.live) if (id === detail.producer_id) this.live.delete(source);
      if (this.screen) {
        for (const [source, id] of this.screen.producers) {
          if (id === detail.producer_id) this.screen.producers.delete(source);
        }
      }
      this.toasts.show(`Your ${detail.source ?? "stream"} stopped (${detail.reason}).`, { kind: "warn" });
      this.updateLive();
    });
    on("room-updated", () => this.updateStatus());
    on("room-ended", (detail) => {
      this.leaving = true;
      location.assign(detail.thank_you_url || "/thanks");
    });
    on("error", (detail) => this.showError(errorText(detail.error, this.context())));
    on("close", (detail) => this.onClosed(detail));
  }

  /** @param {{bye: string | null, code: number}} detail */
  onClosed(detail) {
    this.grid.clear();
    this.live.clear();
    this.stopScreenTracks();
    this.local?.stop();
    this.grid.setSelf(null, { label: "", cameraOff: true });
    this.updateConnection();
    if (this.leaving) return;
    const text = (detail.bye && BYE_TEXT[detail.bye]) || "The connection to the server was lost.";
    this.showEnded("Disconnected", text);
  }

  /**
   * @param {string} title
   * @param {string} text
   */
  showEnded(title, text) {
    byId("ended-title").textContent = title;
    byId("ended-text").textContent = text;
    this.showPanel("ended");
  }

  async leave() {
    const conn = this.conn;
    this.leaving = true;
    this.stopScreenTracks();
    this.local?.stop();
    this.live.clear();
    this.grid.clear();
    this.grid.setSelf(null, { label: "", cameraOff: true });
    this.showEnded("You left the webinar", "Thanks for joining. You can come back while it is running.");
    if (conn) await conn.leave();
    this.updateConnection();
  }

  context() {
    return { maxCameras: this.conn?.joined?.max_cameras };
  }

  // ------------------------------------------------------------------ notices

  /**
   * Collect what ended per participant for a moment, then say it in one toast.
   * @param {import("./protocol.js").StreamInfo} info
   * @param {string} reason
   */
  noteEnded(info, reason) {
    let note = this.endedNotes.get(info.participant_id);
    if (!note) {
      note = {
        name: info.name || "The presenter",
        sources: new Set(),
        reason,
        timer: window.setTimeout(() => this.flushNote(info.participant_id), 250),
      };
      this.endedNotes.set(info.participant_id, note);
    }
    note.sources.add(info.source);
    if (reason === "left") note.reason = "left";
  }

  /** @param {string} participantId */
  flushNote(participantId) {
    const note = this.endedNotes.get(participantId);
    this.endedNotes.delete(participantId);
    if (!note) return;
    const { name, sources, reason } = note;
    if (reason === "left") {
      this.toasts.show(`${name} left the webinar`);
      return;
    }
    const own = [];
    if (sources.has("camera")) own.push("camera");
    if (sources.has("microphone")) own.push("microphone");
    const lost = LOST_REASONS.has(reason);
    /** @param {string} things  @param {string} stopped */
    const say = (things, stopped) => {
      if (reason === "unpublished") return `${name} ${stopped}`;
      return `${name}'s ${things} ${lost ? "stopped (connection lost)" : "ended"}`;
    };
    if (own.length) {
      this.toasts.show(say(own.join(" and "), `stopped their ${own.join(" and ")}`));
    }
    if (sources.has("screen")) {
      this.toasts.show(say("screen share", "stopped sharing their screen"));
    }
  }

  /**
   * @param {string} text
   * @param {{label: string, action: () => void} | null} [action]
   */
  showError(text, action = null) {
    byId("error-text").textContent = text;
    const button = /** @type {HTMLButtonElement} */ (byId("error-action"));
    button.hidden = !action;
    button.onclick = action
      ? () => {
          this.hideError();
          action.action();
        }
      : null;
    if (action) button.textContent = action.label;
    byId("error").hidden = false;
  }

  hideError() {
    byId("error").hidden = true;
  }

  // ------------------------------------------------------------------ status

  updateConnection() {
    const conn = this.conn;
    const pill = byId("connection-state");
    const label = byId("connection-label");
    let state = "idle";
    let text = "Not connected";
    if (conn) {
      if (conn.state === "connecting" || conn.state === "connected") {
        state = "connecting";
        text = "Connecting…";
      } else if (conn.state === "joined") {
        const pcs = [conn.subscribeConnection, conn.publishConnection].filter((pc) => pc !== null);
        if (pcs.some((pc) => pc.connectionState === "failed")) {
          state = "warn";
          text = "Media connection failed";
        } else if (pcs.some((pc) => pc.connectionState === "disconnected")) {
          state = "warn";
          text = "Media interrupted…";
        } else {
          state = "ok";
          text = "Connected";
        }
      } else if (conn.state === "closed") {
        state = "closed";
        text = "Disconnected";
      }
    }
    pill.dataset.state = state;
    label.textContent = text;
    this.updateStatus();
  }

  updateStatus() {
    const status = byId("status");
    const count = byId("participant-count");
    const conn = this.conn;
    if (!conn || conn.state !== "joined") {
      count.hidden = true;
      return;
    }
    const people = conn.participants.size;
    count.hidden = false;
    count.textContent = `${people} ${people === 1 ? "person" : "people"} here`;
    let text = "";
    let waiting = false;
    if (ROLE === "presenter") {
      const watching = [...conn.participants.values()].filter((p) => p.role === "attendee").length;
      const audience = `${watching} ${watching === 1 ? "attendee" : "attendees"}`;
      text = this.live.size
        ? `You are live. ${audience} watching.`
        : `You are not live. Check your preview, then press Go live. ${audience} waiting.`;
      if (this.screen) text += " You are sharing your screen.";
    } else if (this.grid.remoteVideoCount === 0) {
      if (this.grid.remoteCount > 0) {
        text = "Audio only: the presenter's camera is off.";
      } else if (conn.room?.phase === "lobby") {
        text = "The webinar has not started yet. It begins when a presenter goes live.";
        waiting = true;
      } else {
        text = "Waiting for the presenter…";
        waiting = true;
        if (STARTS_AT) text += ` The webinar is scheduled for ${formatTime(STARTS_AT)}.`;
      }
    }
    status.textContent = text;
    status.hidden = text === "";
    byId("stage").dataset.empty = String(this.grid.tiles.size === 0);
    byId("stage").dataset.waiting = String(waiting);
  }

  // ------------------------------------------------------------------ presenter

  /** @param {LocalMedia} local */
  bindPresenter(local) {
    byId("mic-toggle").addEventListener("click", () => {
      local.setEnabled("audio", !local.micOn);
    });
    byId("camera-toggle").addEventListener("click", () => {
      local.setEnabled("video", !local.cameraOn);
    });
    byId("go-live").addEventListener("click", () => this.goLive());
    byId("stop-live").addEventListener("click", () => this.stopLive());
    byId("screen-share-toggle").addEventListener("click", () => this.toggleScreen());
    for (const [id, kind] of /** @type {const} */ ([
      ["camera-select", "video"],
      ["mic-select", "audio"],
    ])) {
      const select = /** @type {HTMLSelectElement} */ (byId(id));
      select.addEventListener("change", () => this.switchDevice(kind, select.value));
    }
    local.addEventListener("change", () => this.renderLocal());
    local.addEventListener("ended", (event) => {
      const { kind } = /** @type {CustomEvent} */ (event).detail;
      if (this.leaving || !this.conn) return;
      this.toasts.show(`Your ${kind === "video" ? "camera" : "microphone"} stopped working.`, { kind: "warn" });
    });
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.fillDevices());
    this.renderLocal();
  }

  async startPreview() {
    if (!this.local) return;
    const failures = await this.local.start();
    this.reportMediaFailures(failures);
    this.renderLocal();
    await this.fillDevices();
  }

  /** @param {{kind: string, error: unknown}[]} failures */
  reportMediaFailures(failures) {
    if (!failures.length) return;
    const what = (/** @type {string} */ kind) =>
      kind === "video" ? "camera" : kind === "audio" ? "microphone" : "camera and microphone";
    this.showError(failures.map((f) => mediaErrorMessage(f.error, what(f.kind))).join(" "));
  }

  renderLocal() {
    const local = this.local;
    if (!local) return;
    const micButton = byId("mic-toggle");
    const camButton = byId("camera-toggle");
    micButton.setAttribute("aria-pressed", String(local.micOn));
    camButton.setAttribute("aria-pressed", String(local.cameraOn));
    micButton.title = local.micOn ? "Turn the microphone off" : "Turn the microphone on";
    camButton.title = local.cameraOn ? "Turn the camera off" : "Turn the camera on";
    if (this.conn && this.conn.state === "joined") {
      const liveNow = this.live.size > 0;
      this.grid.setSelf(local.stream, {
        label: `${this.name} (you${liveNow ? ", live" : ", preview"})`,
        name: this.name,
        cameraOff: !local.video || local.video.readyState !== "live" || !local.cameraOn,
      });
    }
  }

  updateLive() {
    const liveNow = this.live.size > 0;
    byId("go-live").hidden = liveNow;
    byId("stop-live").hidden = !liveNow;
    byId("room").dataset.live = String(liveNow);
    const share = byId("screen-share-toggle");
    share.setAttribute("aria-pressed", String(Boolean(this.screen)));
    share.querySelector(".label").textContent = this.screen ? "Stop sharing" : "Share screen";
    this.renderLocal();
    this.updateStatus();
  }

  /** @param {{audioOnly?: boolean}} [options] */
  async goLive(options = {}) {
    const conn = this.conn;
    const local = this.local;
    if (!conn || !local || this.live.size || this.busy) return;
    const button = /** @type {HTMLButtonElement} */ (byId("go-live"));
    this.busy = true;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    this.hideError();
    try {
      if (local.live.length < 2) {
        this.reportMediaFailures(await local.start());
        await this.fillDevices();
      }
      /** @type {{track: MediaStreamTrack, source: import("./protocol.js").Source}[]} */
      const tracks = [];
      if (local.video && !options.audioOnly) tracks.push({ track: local.video, source: "camera" });
      if (local.audio) tracks.push({ track: local.audio, source: "microphone" });
      if (!tracks.length) return;
      try {
        // Going live opens a scheduled event's lobby for the attendees.
        if (conn.room?.phase === "lobby") await conn.start();
        const producers = await conn.publish(tracks);
        for (const p of producers) this.live.set(p.source, p.producer_id);
      } catch (error) {
        const offerAudio = error instanceof WebinarError && error.code === "camera-limit" && local.audio;
        this.showError(
          errorText(error, this.context()),
          offerAudio ? { label: "Go live with microphone only", action: () => this.goLive({ audioOnly: true }) } : null,
        );
      }
    } finally {
      this.busy = false;
      button.disabled = false;
      button.removeAttribute("aria-busy");
      this.updateLive();
    }
  }

  async stopLive() {
    const conn = this.conn;
    if (!conn) return;
    const ids = [...this.live.values()];
    this.live.clear();
    this.local?.stop();
    this.updateLive();
    const results = await Promise.allSettled(ids.map((id) => conn.unpublish(id)));
    for (const result of results) {
      if (result.status === "rejected") this.showError(errorText(result.reason));
    }
    byId("go-live").focus();
  }

  async toggleScreen() {
    if (this.screen) {
      await this.stopScreen();
      return;
    }
    const conn = this.conn;
    if (!conn) return;
    /** @type {MediaStream} */
    let stream;
    try {
      stream = await captureScreen();
    } catch (error) {
      if (error instanceof Error && error.name === "NotAllowedError") {
        this.toasts.show("Screen sharing was cancelled.");
      } else {
        this.showError(mediaErrorMessage(error, "screen"));
      }
      return;
    }
    /** @type {{track: MediaStreamTrack, source: import("./protocol.js").Source}[]} */
    const tracks = [];
    for (const track of stream.getVideoTracks()) tracks.push({ track, source: "screen" });
    for (const track of stream.getAudioTracks()) tracks.push({ track, source: "screen-audio" });
    try {
      const producers = await conn.publish(tracks);
      this.screen = { stream, producers: new Map(producers.map((p) => [p.source, p.producer_id])) };
    } catch (error) {
      for (const track of stream.getTracks()) track.stop();
      this.showError(errorText(error, this.context()));
      return;
    }
    // The browser's own "Stop sharing" button ends the track.
    stream.getVideoTracks()[0]?.addEventListener("ended", () => this.stopScreen());
    this.updateLive();
  }

  async stopScreen() {
    const screen = this.screen;
    const conn = this.conn;
    if (!screen) return;
    this.screen = null;
    this.stopScreenTracks(screen);
    this.updateLive();
    if (!conn) return;
    const results = await Promise.allSettled([...screen.producers.values()].map((id) => conn.unpublish(id)));
    for (const result of results) {
      if (result.status === "rejected") this.showError(errorText(result.reason));
    }
  }

  /** @param {{stream: MediaStream} | null} [screen] */
  stopScreenTracks(screen = this.screen) {
    if (screen) for (const track of screen.stream.getTracks()) track.stop();
    if (screen === this.screen) this.screen = null;
  }

  /**
   * @param {"audio" | "video"} kind
   * @param {string} deviceId
   */
  async switchDevice(kind, deviceId) {
    const local = this.local;
    if (!local || !deviceId) return;
    try {
      const { track } = await local.switchDevice(kind, deviceId);
      const producerId = this.live.get(kind === "video" ? "camera" : "microphone");
      if (producerId && this.conn) await this.conn.replaceTrack(producerId, track);
    } catch (error) {
      this.showError(mediaErrorMessage(error, kind === "video" ? "camera" : "microphone"));
    }
    this.renderLocal();
  }

  async fillDevices() {
    const local = this.local;
    if (!local) return;
    const devices = await listDevices().catch(() => ({ video: [], audio: [] }));
    for (const [id, kind, noun] of /** @type {const} */ ([
      ["camera-select", "video", "Camera"],
      ["mic-select", "audio", "Microphone"],
    ])) {
      const select = /** @type {HTMLSelectElement} */ (byId(id));
      const list = devices[kind];
      const current = local.currentDevice(kind);
      select.replaceChildren(
        ...list.map((d, i) => {
          const option = new Option(d.label || `${noun} ${i + 1}`, d.deviceId);
          option.selected = d.deviceId === current;
          return option;
        }),
      );
      if (!list.length) select.append(new Option(`No ${noun.toLowerCase()} found`, ""));
      select.disabled = list.length === 0;
    }
  }
}

const room = new Room();

/** Test and debugging hook. */
Object.defineProperty(window, "__webinar", {
  value: Object.freeze({
    room,
    get connection() {
      return room.conn;
    },
  }),
});

// Coming from the home page's form: join at once with the name typed there.
try {
  const want = sessionStorage.getItem(AUTOJOIN_KEY);
  sessionStorage.removeItem(AUTOJOIN_KEY);
  if (ROLE === "attendee" && want && want === EVENT_ID.replace(/\D/g, "") && savedName()) {
    room.join(savedName());
  }
} catch {
  // storage disabled: the lobby asks for the name
}
