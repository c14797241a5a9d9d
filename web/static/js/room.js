// The room page (attendee, presenter, host): the UI on top of protocol.js.
//
// Views: prejoin (name, and a device check for presenters) → lobby (attendees, while
// the event has not started) or live (stage, side panel, controls) → ended.
// The page's <body> carries data-role, data-event-id, data-presenter-key and
// data-starts-at; the role can change live (a host promotes or demotes), so the UI
// follows the role the server reports, not the page's.
// window.__webinar exposes the live connection for tests and debugging.

import { VideoGrid } from "./grid.js";
import { Interaction } from "./interaction.js";
import { LevelMeter, LocalMedia, captureScreen, listDevices, mediaErrorMessage } from "./media.js";
import { ParticipantList, deviceStates, isStaff } from "./participants.js";
import { WebinarConnection, WebinarError } from "./protocol.js";
import { QualityMonitor, describeQuality } from "./quality.js";
import { ConnectionPanel } from "./room/status.js";
import {
  AUTOJOIN_KEY,
  MODES,
  SOURCE_NOUN,
  Toasts,
  byId,
  cleanName,
  clientId,
  errorText,
  formatCountdown,
  formatRelative,
  forget,
  formatTime,
  initials,
  recall,
  remember,
  roleLabel,
  saveName,
  savedName,
} from "./ui.js";

const body = document.body;
const PAGE_ROLE = body.dataset.role ?? "attendee";
const EVENT_ID = body.dataset.eventId ?? "";
const CREDENTIAL = body.dataset.presenterKey || null;
/** The event's access type: open, password, token (invitation link) or paid (reservation code). */
const ACCESS = body.dataset.access ?? "open";
const TOKEN_KEY = `webinar.token.${EVENT_ID}`;
const STARTS_AT = body.dataset.startsAt || null;
/** Wider than this, the side panel sits beside the stage; narrower, it covers it. */
const WIDE = window.matchMedia("(min-width: 1000px)");

const BYE_TEXT = /** @type {Record<string, string>} */ ({
  left: "You left the webinar.",
  shutdown: "The server is restarting. Try again in a moment.",
  replaced: "You joined this webinar from another tab or device.",
  "protocol-violation": "The server closed the connection because this page misbehaved. Reload the page.",
  removed: "You were removed from this webinar.",
  ended: "The webinar has ended. Thank you for joining.",
  "slow-client": "Your connection was too slow to keep up. Try again.",
  "taken-over": "Your code or invitation was used to enter on another device, so this one left the webinar.",
  "window-ended": "The time window of your ticket is over, so viewing has ended. Thank you for joining.",
  revoked: "The organiser withdrew your ticket or invitation.",
  cancelled: "The organiser cancelled this webinar; it will not take place.",
});

/**
 * The secret this page enters with: the presenter or host key, or for attendees of a
 * token event the invitation token from the link's fragment (`#token=…`, which never
 * reaches the server's logs; kept in sessionStorage so a reload works, then removed from
 * the address bar).
 * @returns {string | null}
 */
function initialCredential() {
  if (CREDENTIAL) return CREDENTIAL;
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get("token");
  const code = fragment.get("code");
  if (token || code) history.replaceState(null, "", window.location.pathname + window.location.search);
  if (token && ACCESS === "token") {
    remember(TOKEN_KEY, token, "session"); // if not (private mode), the token lives in this page only
    return token;
  }
  if (code && ACCESS === "paid") {
    const input = /** @type {HTMLInputElement | null} */ (document.getElementById("access-code"));
    if (input) input.value = code;
  }
  return ACCESS === "token" ? recall(TOKEN_KEY, "session") : null;
}

/** Stream-ended reasons that mean the network, not the person, stopped it. */
const LOST_REASONS = new Set(["disconnected", "transport-closed", "producer-closed", "connection-failed"]);

/** @typedef {import("./protocol.js").Source} Source */
/** @typedef {import("./protocol.js").ParticipantInfo} ParticipantInfo */
/** @typedef {{name: string, sources: Set<string>, reason: string, timer: number}} EndedNote */
/** @typedef {"prejoin" | "lobby" | "live" | "ended"} View */

/** @param {Source} source */
function kindOf(source) {
  return source === "camera" || source === "screen" ? "video" : "audio";
}

class Room {
  constructor() {
    /** @type {WebinarConnection | null} */
    this.conn = null;
    this.name = "";
    /** The role the server gave us (follows set-role). */
    this.role = PAGE_ROLE;
    this.leaving = false;
    this.rejoining = false;
    /** @type {View} */
    this.view = "prejoin";
    this.toasts = new Toasts(byId("toasts"));
    this.grid = new VideoGrid(byId("grid"), {
      onSoundBlocked: () => {
        byId("sound-button").hidden = false;
      },
      onChange: () => this.updateStatus(),
    });
    this.local = new LocalMedia();
    this.meter = new LevelMeter((level) => this.renderLevel(level));
    /** Camera and microphone the user wants published; survives a reconnect. @type {Set<Source>} */
    this.wanted = new Set();
    /** @type {{stream: MediaStream, producers: Map<string, string>} | null} */
    this.screen = null;
    /** Stream-ended notices collected per participant for one toast. @type {Map<string, EndedNote>} */
    this.endedNotes = new Map();
    this.busy = false;
    this.reconnectInfo = { attempt: 0, at: 0 };
    this.reconnectTimer = 0;
    this.countdownTimer = 0;
    /** @type {import("./quality.js").QualityReport | null} */
    this.lastQuality = null;
    this.quality = new QualityMonitor(
      () => [this.conn?.subscribeConnection ?? null, this.conn?.publishConnection ?? null],
      (report) => this.renderQuality(report),
    );
    this.connectionPanel = new ConnectionPanel({
      root: byId("connection-panel"),
      select: /** @type {HTMLSelectElement} */ (byId("quality-select")),
      tier: byId("connection-tier"),
      bandwidth: byId("connection-bandwidth"),
      paused: byId("connection-paused"),
      onQuality: (quality) => {
        this.conn?.setQuality(quality).catch(() => {});
      },
    });
    this.people = new ParticipantList(
      /** @type {HTMLUListElement} */ (byId("participant-list")),
      (action, person) => this.onRowAction(action, person),
    );
    /** Chat, Q&A, polls, call-to-action (interaction.js). */
    this.interaction = new Interaction({
      toasts: this.toasts,
      showTab: (id) => this.showTab(id),
      presenterKey: CREDENTIAL,
      eventId: EVENT_ID,
    });
    /** @type {ParticipantInfo | null} */
    this.removing = null;
    this.levelShown = -1;
    /** What `join` sends as `credential` (see initialCredential). @type {string | null} */
    this.credential = initialCredential();
    this.bindPage();
    this.bindControls();
    this.bindPanel();
    if (isStaff(PAGE_ROLE)) this.bindDeviceCheck();
  }

  get staff() {
    return isStaff(this.role);
  }

  /** Our producer ID per source that is live now. */
  get live() {
    /** @type {Map<string, string>} */
    const out = new Map();
    for (const p of this.conn?.producers.values() ?? []) {
      if (p.source === "camera" || p.source === "microphone") out.set(p.source, p.producer_id);
    }
    return out;
  }

  // ------------------------------------------------------------------ page

  bindPage() {
    const nameInput = /** @type {HTMLInputElement} */ (byId("prejoin-name"));
    nameInput.value = savedName();
    const codeInput = /** @type {HTMLInputElement | null} */ (document.getElementById("access-code"));
    const passwordInput = /** @type {HTMLInputElement | null} */ (document.getElementById("access-password"));
    byId("prejoin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const error = byId("prejoin-error");
      if (codeInput) {
        // The name comes from the reservation; the code is all we ask for.
        if (!codeInput.value.trim()) {
          error.textContent = "Please enter the reservation code from your confirmation e-mail.";
          error.hidden = false;
          codeInput.focus();
          return;
        }
        this.credential = codeInput.value.trim();
        this.enter(savedName() || "Guest");
        return;
      }
      if (passwordInput) {
        if (!passwordInput.value) {
          error.textContent = "Please enter the webinar's password.";
          error.hidden = false;
          passwordInput.focus();
          return;
        }
        this.credential = passwordInput.value;
      }
      this.enter(nameInput.value);
    });
    byId("rejoin").addEventListener("click", () => {
      this.rejoining = true;
      this.enter(this.name);
    });
    byId("error-close").addEventListener("click", () => this.hideError());
    byId("sound-button").addEventListener("click", async () => {
      byId("sound-button").hidden = true;
      await this.grid.unblockSound();
    });
    byId("reconnect-now").addEventListener("click", () => this.conn?.reconnectNow());
    byId("lobby-leave").addEventListener("click", () => this.leave());
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

  /** @param {View} which */
  showView(which) {
    const changed = this.view !== which;
    this.view = which;
    byId("room").dataset.view = which;
    byId("prejoin").hidden = which !== "prejoin";
    byId("lobby").hidden = which !== "lobby";
    byId("live").hidden = which !== "live";
    byId("ended").hidden = which !== "ended";
    byId("controls").hidden = which !== "live";
    if (which !== "lobby") this.stopCountdown();
    this.interaction?.setLobby(which === "lobby");
    if (!changed) return;
    if (which === "prejoin") (document.getElementById("access-code") ?? byId("prejoin-name")).focus();
    if (which === "ended") byId("rejoin").focus();
    if (which === "lobby") byId("lobby-title").focus?.();
    if (which === "live") this.grid.layout();
  }

  // ------------------------------------------------------------------ device check (presenters)

  bindDeviceCheck() {
    byId("precheck-mic").addEventListener("click", () => this.precheckToggle("audio"));
    byId("precheck-camera").addEventListener("click", () => this.precheckToggle("video"));
    byId("device-retry").addEventListener("click", () => this.startPreview());
    this.startPreview();
  }

  /** @param {"audio" | "video"} kind */
  async precheckToggle(kind) {
    const on = kind === "video" ? this.local.cameraOn : this.local.micOn;
    if (!on && !this.local.has(kind)) {
      const failures = await this.local.start({ video: kind === "video", audio: kind === "audio" });
      this.reportDeviceFailures(failures);
      await this.fillDevices();
    }
    this.local.setEnabled(kind, !on);
  }

  /** Start camera and microphone for the preview (the device check, or after a rejoin). */
  async startPreview() {
    const note = document.getElementById("preview-note");
    if (note) note.textContent = "Starting your camera…";
    const failures = await this.local.start();
    this.reportDeviceFailures(failures);
    this.renderLocal();
    await this.fillDevices();
    return failures;
  }

  /** @param {{kind: string, error: unknown}[]} failures */
  reportDeviceFailures(failures) {
    const box = document.getElementById("device-message");
    const text = failures.map((f) => mediaErrorMessage(f.error, deviceWords(f.kind))).join(" ");
    if (this.view === "prejoin" && box) {
      box.hidden = !failures.length;
      if (failures.length) {
        byId("device-message-text").textContent =
          `${text} You can still enter${this.local.live.length ? "" : " without them"}.`;
      }
      return;
    }
    if (failures.length) this.showError(text);
  }

  renderLevel(/** @type {number} */ level) {
    const bar = document.getElementById("mic-level-bar");
    if (!bar) return;
    bar.style.transform = `scaleX(${level.toFixed(3)})`;
    const percent = Math.round(level * 100);
    // screen readers need the value now and then, not 20 times a second
    if (Math.abs(percent - this.levelShown) >= 10 || (percent === 0 && this.levelShown !== 0)) {
      this.levelShown = percent;
      byId("mic-level").setAttribute("aria-valuenow", String(percent));
    }
  }

  // ------------------------------------------------------------------ joining

  /** @param {string} rawName */
  async enter(rawName) {
    const name = cleanName(rawName);
    const error = byId("prejoin-error");
    if (!name) {
      this.showView("prejoin");
      error.textContent = "Please enter your name.";
      error.hidden = false;
      byId("prejoin-name").focus();
      return;
    }
    if (this.busy) return;
    this.busy = true;
    error.hidden = true;
    saveName(name);
    this.name = name;
    this.leaving = false;
    const button = /** @type {HTMLButtonElement} */ (byId("enter-room"));
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    byId("rejoin").setAttribute("disabled", "");

    const conn = new WebinarConnection({ network: window });
    conn.quality = this.connectionPanel.quality;
    this.conn = conn;
    this.wire(conn);
    this.updateConnection();
    try {
      await conn.connect();
      await conn.join({ eventId: EVENT_ID, name, credential: this.credential, clientId: clientId() });
    } catch (failure) {
      conn.close();
      this.conn = null;
      this.updateConnection();
      this.showView("prejoin");
      error.textContent = errorText(failure, { startsAt: STARTS_AT, access: ACCESS });
      error.hidden = false;
      /** @type {HTMLInputElement | null} */ (document.getElementById("access-code"))?.select();
      return;
    } finally {
      this.busy = false;
      button.disabled = false;
      button.removeAttribute("aria-busy");
      byId("rejoin").removeAttribute("disabled");
    }
    this.hideError();
    this.onJoined();
    if (this.staff && this.rejoining && this.local.live.length === 0) await this.startPreview();
    this.rejoining = false;
  }

  /**
   * After `joined` (first time, or again after a resume).
   * @param {boolean} [first]
   */
  onJoined(first = true) {
    const conn = this.conn;
    if (!conn || !conn.joined) return;
    this.role = conn.joined.role;
    this.showView(conn.room?.phase === "lobby" && !this.staff ? "lobby" : "live");
    // The device choice moves into the room's Devices menu.
    const fields = document.getElementById("device-fields");
    if (fields && fields.parentElement !== byId("settings-panel")) byId("settings-panel").append(fields);
    if (first) this.setPanelOpen(this.staff && WIDE.matches, false);
    this.quality.start();
    byId("quality-wrap").hidden = false;
    byId("connection-menu").hidden = false;
    this.grid.setActiveSpeaker(conn.activeSpeaker);
    this.people.setActiveSpeaker(conn.activeSpeaker);
    this.renderRoom();
    this.renderLocal();
    this.interaction.joined(this.role);
  }

  /** @param {WebinarConnection} conn */
  wire(conn) {
    this.interaction.attach(conn);
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
    on("stream", (remote) => {
      this.grid.add(remote);
      const allocated = conn.allocation?.streams.find((s) => s.producer_id === remote.info.producer_id);
      if (allocated) this.grid.setBandwidthPaused(remote.info.producer_id, allocated.paused);
      this.renderMicState(remote.info.participant_id);
    });
    on("stream-added", () => this.renderPeople());
    on("stream-ended", (detail) => {
      const shown = this.grid.remove(detail.producer_id);
      if (detail.reason !== "reconnecting" && (shown || detail.shown) && detail.info) {
        this.noteEnded(detail.info, detail.reason);
      }
      if (detail.participant_id) this.renderMicState(detail.participant_id);
      this.renderPeople();
    });
    on("stream-updated", (detail) => this.onStreamUpdated(detail.stream, detail.own));
    on("participant-joined", () => this.renderRoom());
    on("participant-left", (detail) => {
      const note = this.endedNotes.get(detail.participant_id);
      if (note) note.reason = "left";
      else if (detail.participant && isStaff(detail.participant.role)) {
        this.toasts.show(`${detail.participant.name} left the webinar`);
      }
      this.renderRoom();
    });
    on("participant-updated", (detail) => this.onParticipantUpdated(detail));
    on("active-speaker", (detail) => {
      this.grid.setActiveSpeaker(detail.participant_id);
      this.people.setActiveSpeaker(detail.participant_id);
    });
    on("producer-closed", (detail) => this.onProducerClosed(detail));
    on("room-updated", (detail) => this.onRoomUpdated(detail));
    on("allocation", (detail) => this.onAllocation(detail));
    on("recording-updated", () => this.renderRoom());
    on("room-ended", (detail) => {
      this.leaving = true;
      location.assign(detail.thank_you_url || "/thanks");
    });
    on("draining", (detail) => {
      const minutes = Math.max(1, Math.round(detail.deadline_seconds / 60));
      this.toasts.show(
        `The server is being restarted. The webinar can go on for up to ${minutes} more minute${minutes === 1 ? "" : "s"}; then you will be reconnected.`,
        { kind: "warn", key: "draining", timeout: 0 },
      );
    });
    on("reconnecting", (detail) => this.onReconnecting(detail));
    on("resumed", (detail) => this.onResumed(detail));
    on("error", (detail) => {
      const code = detail.error?.code;
      if (code === "closed" || code === "not-connected") return;
      this.showError(errorText(detail.error, this.context()));
    });
    on("close", (detail) => this.onClosed(detail));
  }

  /** @param {{bye: string | null, code: number, error: WebinarError | null}} detail */
  onClosed(detail) {
    this.grid.clear();
    this.wanted.clear();
    this.stopScreenTracks();
    this.local.stop();
    this.meter.detach();
    this.quality.stop();
    this.hideReconnecting();
    byId("quality-wrap").hidden = true;
    byId("connection-menu").hidden = true;
    this.connectionPanel.reset();
    this.grid.setSelf(null, { label: "", cameraOff: true });
    this.updateConnection();
    if (this.leaving) return;
    const text = detail.error
      ? errorText(detail.error, { startsAt: STARTS_AT })
      : (detail.bye && BYE_TEXT[detail.bye]) || "The connection to the server was lost.";
    const title = detail.bye === "removed" ? "Removed" : detail.bye === "ended" ? "The webinar has ended" : "Disconnected";
    this.showEnded(title, text);
    byId("rejoin").hidden = detail.bye === "removed" || detail.bye === "ended" || detail.error?.code === "banned";
  }

  /**
   * @param {string} title
   * @param {string} text
   */
  showEnded(title, text) {
    byId("ended-title").textContent = title;
    byId("ended-text").textContent = text;
    this.showView("ended");
  }

  async leave() {
    const conn = this.conn;
    this.leaving = true;
    this.stopScreenTracks();
    this.local.stop();
    this.meter.detach();
    this.wanted.clear();
    this.grid.clear();
    this.grid.setSelf(null, { label: "", cameraOff: true });
    this.quality.stop();
    byId("quality-wrap").hidden = true;
    this.hideReconnecting();
    byId("rejoin").hidden = false;
    this.showEnded("You left the webinar", "Thanks for joining. You can come back while it is running.");
    if (conn) await conn.leave();
    this.updateConnection();
  }

  context() {
    return { maxCameras: this.conn?.joined?.max_cameras, startsAt: STARTS_AT };
  }

  // ------------------------------------------------------------------ reconnecting

  /** @param {{attempt: number, delay: number}} detail */
  onReconnecting(detail) {
    this.reconnectInfo = { attempt: detail.attempt, at: Date.now() + detail.delay };
    this.quality.stop();
    byId("reconnecting").hidden = false;
    this.renderReconnecting();
    if (!this.reconnectTimer) {
      this.reconnectTimer = window.setInterval(() => this.renderReconnecting(), 1000);
    }
    this.updateConnection();
    this.renderPeople();
  }

  renderReconnecting() {
    const { attempt, at } = this.reconnectInfo;
    const seconds = Math.max(0, Math.ceil((at - Date.now()) / 1000));
    const when = seconds > 0 ? `next try in ${seconds} s` : "trying now";
    byId("reconnecting-text").textContent = `Connection lost. Reconnecting… (attempt ${attempt}, ${when})`;
  }

  hideReconnecting() {
    window.clearInterval(this.reconnectTimer);
    this.reconnectTimer = 0;
    byId("reconnecting").hidden = true;
  }

  /** @param {{resumed: boolean}} detail */
  async onResumed(detail) {
    this.hideReconnecting();
    if (detail.resumed) {
      this.toasts.show("Reconnected.", { kind: "success", key: "reconnect", timeout: 3000 });
    } else {
      this.toasts.show("Reconnected. You were away too long, so you joined again as a new participant.", {
        kind: "warn",
        key: "reconnect",
      });
    }
    this.onJoined(false);
    await this.republish();
  }

  /** Publish again what was live before the connection dropped. */
  async republish() {
    const conn = this.conn;
    if (!conn) return;
    const sources = [...this.wanted].filter((s) => this.may(s));
    for (const source of this.wanted) if (!sources.includes(source)) this.wanted.delete(source);
    /** @type {{track: MediaStreamTrack, source: Source}[]} */
    const tracks = [];
    for (const source of sources) {
      const track = source === "camera" ? this.local.video : this.local.audio;
      if (track && track.readyState === "live") tracks.push({ track, source });
    }
    const screen = this.screen;
    if (screen && this.staff) {
      for (const track of screen.stream.getVideoTracks()) if (track.readyState === "live") tracks.push({ track, source: "screen" });
      for (const track of screen.stream.getAudioTracks()) {
        if (track.readyState === "live") tracks.push({ track, source: "screen-audio" });
      }
    } else if (screen) {
      this.stopScreenTracks();
    }
    if (!tracks.length) {
      this.renderLocal();
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
        this.showError(errorText(error, this.context()));
      }
    }
    this.renderLocal();
    this.updateLive();
  }

  /** Tell the server about sources switched off locally (others then see an avatar). */
  async applyPauses() {
    const conn = this.conn;
    if (!conn) return;
    for (const source of /** @type {const} */ (["camera", "microphone"])) {
      const producer = conn.producerFor(source);
      const on = source === "camera" ? this.local.cameraOn : this.local.micOn;
      if (producer && !on && !producer.paused) {
        await conn.setStreamPaused(producer.producer_id, true).catch(() => {});
      }
    }
  }

  // ------------------------------------------------------------------ room events

  /**
   * @param {import("./protocol.js").StreamInfo} stream
   * @param {boolean} own
   */
  onStreamUpdated(stream, own) {
    if (own) {
      const kind = kindOf(stream.source);
      if (stream.paused && stream.pause_reason !== "self" && (stream.source === "microphone" || stream.source === "camera")) {
        this.local.setEnabled(kind, false);
        const noun = SOURCE_NOUN[stream.source];
        const why =
          stream.pause_reason === "mode-changed"
            ? `The mode changed to ${MODES[this.conn?.room?.mode ?? ""]?.label ?? "another mode"}, so your ${noun} was switched off. Turn it on again when you are ready.`
            : `A presenter muted your ${noun}.`;
        this.toasts.show(why, {
          kind: "warn",
          key: `paused-${stream.source}`,
          timeout: 12_000,
          action:
            stream.source === "microphone"
              ? { label: "Turn microphone on", testid: "toast-mic-on", run: () => this.toggleSource("microphone") }
              : undefined,
        });
      }
      this.renderLocal();
      this.renderPeople();
      return;
    }
    if (stream.kind === "video") this.grid.setPaused(stream.producer_id, Boolean(stream.paused));
    this.renderMicState(stream.participant_id);
    this.renderPeople();
  }

  /** @param {string} participantId */
  renderMicState(participantId) {
    const streams = [...(this.conn?.streamInfo.values() ?? [])].filter((s) => s.participant_id === participantId);
    this.grid.setMicOff(participantId, deviceStates(streams).mic === "off");
  }

  /** @param {{participant: ParticipantInfo, previous: ParticipantInfo | null, cause: string, self: boolean}} detail */
  onParticipantUpdated({ participant, previous, cause, self }) {
    if (self) {
      if (cause === "role" && previous && previous.role !== participant.role) this.onRoleChanged(participant.role);
      if (cause === "grant") this.onGrantChanged(participant, previous);
      if (cause === "hand" && participant.hand_raised == null && previous?.hand_raised != null && !participant.grant_audio) {
        this.toasts.show("Your hand was lowered.", { key: "hand" });
      }
    } else if (
      this.staff &&
      cause === "hand" &&
      participant.hand_raised != null &&
      (previous?.hand_raised ?? null) === null
    ) {
      this.toasts.show(`${participant.name} raised their hand`, {
        key: `hand-${participant.participant_id}`,
        action: {
          label: "Allow mic",
          run: () => this.onRowAction("grant-mic", this.conn?.participants.get(participant.participant_id) ?? participant),
        },
      });
    }
    this.renderRoom();
  }

  /** @param {string} role */
  onRoleChanged(role) {
    this.role = role;
    this.interaction.setRole(role);
    byId("room").dataset.role = role;
    if (isStaff(role)) {
      this.toasts.show("You are now a presenter: you can go live with your camera and microphone.", {
        kind: "success",
        key: "role",
      });
      this.setPanelOpen(WIDE.matches, false);
    } else {
      this.wanted.clear();
      this.stopScreenTracks();
      this.local.stop();
      this.toasts.show("You are an attendee again.", { key: "role" });
    }
    this.renderLocal();
  }

  /**
   * @param {ParticipantInfo} me
   * @param {ParticipantInfo | null} before
   */
  onGrantChanged(me, before) {
    const audioNow = Boolean(me.grant_audio) && !before?.grant_audio;
    const videoNow = Boolean(me.grant_video) && !before?.grant_video;
    if (audioNow) {
      this.toasts.show("You may speak now. Turn on your microphone when you are ready.", {
        kind: "success",
        key: "grant",
        timeout: 15_000,
        action: { label: "Turn microphone on", testid: "toast-mic-on", run: () => this.toggleSource("microphone") },
      });
    } else if (videoNow) {
      this.toasts.show("You may turn on your camera now.", {
        kind: "success",
        key: "grant",
        timeout: 15_000,
        action: { label: "Turn camera on", testid: "toast-camera-on", run: () => this.toggleSource("camera") },
      });
    } else if (!me.grant_audio && !me.grant_video && (before?.grant_audio || before?.grant_video)) {
      this.toasts.show("Your turn to speak has ended. Thank you!", { key: "grant" });
    }
  }

  /** @param {{producer_id: string, source: Source | null, reason: string, ours: boolean}} detail */
  onProducerClosed(detail) {
    if (!detail.ours) return; // the echo of our own unpublish
    const source = detail.source;
    if (this.screen) {
      for (const [s, id] of this.screen.producers) if (id === detail.producer_id) this.screen.producers.delete(s);
      if (this.screen.producers.size === 0) this.stopScreenTracks();
    }
    if (source === "camera" || source === "microphone") {
      this.wanted.delete(source);
      // The server took it away: release the device (its light goes off).
      if (!this.staff || detail.reason === "role-changed") this.local.stopKind(kindOf(source));
    }
    const noun = SOURCE_NOUN[source ?? ""] ?? "stream";
    const text =
      detail.reason === "grant-revoked"
        ? `A presenter took back your ${noun}.`
        : detail.reason === "mode-changed"
          ? `Your ${noun} was turned off: in this mode attendees cannot speak.`
          : detail.reason === "role-changed"
            ? `Your ${noun} stopped: you are no longer a presenter.`
            : `Your ${noun} stopped (${detail.reason}).`;
    if (detail.reason !== "grant-revoked" || !this.toasts.region.querySelector('[data-key="grant"]')) {
      this.toasts.show(text, { kind: "warn", key: `closed-${source}` });
    }
    this.renderControls();
    this.renderLocal();
    this.renderPeople();
  }

  /** @param {{room: import("./protocol.js").RoomInfo, cause: string, by: string | null}} detail */
  onRoomUpdated({ room, cause, by }) {
    const who = by ? (this.conn?.participants.get(by)?.name ?? "A presenter") : "A presenter";
    const mine = by !== null && by === this.conn?.participantId;
    if (cause === "started") {
      this.toasts.show(
        this.staff ? "The event has started: attendees are in the room now." : "The webinar has started.",
        { kind: "success", key: "phase" },
      );
    } else if (cause === "mode-changed") {
      const mode = MODES[room.mode];
      let text = `${mine ? "You" : who} switched to ${mode?.label ?? room.mode}. ${mode?.about ?? ""}`;
      const me = this.conn?.me;
      if (!this.staff && room.mode === "discussion" && me?.listen_only) {
        text += " You joined when the room was full, so you can only listen.";
      }
      this.toasts.show(text.trim(), { key: "mode" });
    } else if (cause === "locked" || cause === "unlocked") {
      this.toasts.show(
        cause === "locked"
          ? `${mine ? "You" : who} locked the room: nobody new can join.`
          : `${mine ? "You" : who} unlocked the room: people can join again.`,
        { key: "lock" },
      );
    }
    this.renderRoom();
  }

  // ------------------------------------------------------------------ rendering the room

  /** Everything that depends on the room's state, our role and the participant list. */
  renderRoom() {
    const conn = this.conn;
    if (!conn || !conn.joined) return;
    const room = conn.room;
    const phase = room?.phase ?? "live";
    const mode = room?.mode ?? "listen-only";
    const root = byId("room");
    root.dataset.role = this.role;
    root.dataset.phase = phase;
    root.dataset.mode = mode;
    if (this.view !== "ended") {
      this.showView(phase === "lobby" && !this.staff ? "lobby" : "live");
    }
    // recording: everyone sees it; the record capability (host, presenter) has the control
    const recording = room?.recording ?? "off";
    const recBadge = byId("recording-indicator");
    recBadge.hidden = recording === "off";
    recBadge.dataset.status = recording;
    recBadge.textContent = recording === "paused" ? "REC paused (backstage)" : "REC";
    recBadge.title = recording === "paused" ? "Recording is on, but backstage time is not recorded" : "This event is being recorded";
    const recButton = byId("record-toggle");
    recButton.hidden = !this.staff || phase !== "live";
    recButton.setAttribute("aria-pressed", String(recording !== "off"));
    recButton.textContent = recording === "off" ? "REC" : "Stop recording";
    // top bar
    const roleBadge = byId("role-badge");
    roleBadge.hidden = !this.staff;
    roleBadge.textContent = roleLabel(this.role);
    const modeBadge = byId("mode-badge");
    modeBadge.hidden = phase !== "live" || mode === "listen-only";
    modeBadge.textContent = mode === "presenters-only" ? "Backstage" : (MODES[mode]?.label ?? mode);
    if (this.view === "lobby") this.renderLobby();
    this.renderBanner();
    this.renderControls();
    this.renderPeople();
    this.updateStatus();
  }

  renderLobby() {
    const conn = this.conn;
    const room = conn?.room;
    if (!conn || !room) return;
    byId("lobby-title").textContent = room.title || conn.joined?.event.title || "";
    const startsAt = room.starts_at ?? conn.joined?.event.starts_at ?? null;
    byId("lobby-when").textContent = startsAt ? `Starts ${formatTime(startsAt)} (your time)` : "";
    const message = byId("lobby-message");
    message.textContent = room.lobby_message || "";
    message.hidden = !room.lobby_message;
    byId("lobby-agenda").textContent = room.agenda || "";
    byId("lobby-agenda-box").hidden = !room.agenda;
    const others = conn.participants.size - 1;
    byId("lobby-people").textContent =
      others > 0 ? `${others} other ${others === 1 ? "person is" : "people are"} here.` : "You are the first one here.";
    this.startCountdown(startsAt);
  }

  /** @param {string | null} startsAt */
  startCountdown(startsAt) {
    const target = startsAt ? new Date(startsAt).getTime() : NaN;
    const tick = () => {
      const left = target - Date.now();
      const countdown = byId("lobby-countdown");
      const label = byId("lobby-countdown-label");
      if (Number.isNaN(target)) {
        label.textContent = "Starting";
        countdown.textContent = "soon";
        countdown.setAttribute("aria-label", "Starting soon");
      } else if (left > 0) {
        label.textContent = "Starts in";
        countdown.textContent = formatCountdown(left);
        countdown.setAttribute("aria-label", `Starts ${formatRelative(left)}`);
      } else {
        label.textContent = "Starting";
        countdown.textContent = "any moment now";
        countdown.setAttribute("aria-label", "Starting any moment now");
      }
      countdown.dataset.remaining = String(Math.max(0, Math.round(left / 1000)));
    };
    tick();
    if (!this.countdownTimer) this.countdownTimer = window.setInterval(tick, 1000);
  }

  stopCountdown() {
    window.clearInterval(this.countdownTimer);
    this.countdownTimer = 0;
  }

  renderBanner() {
    const room = this.conn?.room;
    const banner = byId("stage-banner");
    const start = byId("start-event");
    let text = "";
    let canStart = false;
    if (this.staff && room) {
      const waiting = [...(this.conn?.participants.values() ?? [])].filter((p) => p.role === "attendee").length;
      if (room.phase === "lobby") {
        const who = waiting === 1 ? "1 attendee is" : `${waiting} attendees are`;
        const when = room.starts_at ? ` It is scheduled for ${formatTime(room.starts_at)}.` : "";
        text = `The event has not started: ${who} waiting in the lobby, seeing and hearing nothing yet. Presenters see and hear each other.${when}`;
        canStart = true;
      } else if (room.mode === "presenters-only") {
        text = "Backstage: attendees see and hear nothing of the presenters. Switch the mode to go back on air.";
      }
    }
    banner.hidden = !text;
    byId("stage-banner-text").textContent = text;
    start.hidden = !canStart;
  }

  /**
   * Whether we may publish this source now (the server's rule, mirrored).
   * @param {Source} source
   */
  may(source) {
    const conn = this.conn;
    const me = conn?.me;
    if (!conn || !me) return false;
    if (this.staff) return true;
    const room = conn.room;
    if (!room || room.phase !== "live" || room.mode === "presenters-only") return false;
    const granted = source === "microphone" ? me.grant_audio : source === "camera" ? me.grant_video : false;
    return Boolean(granted) || (room.mode === "discussion" && !me.listen_only);
  }

  renderControls() {
    const conn = this.conn;
    const staff = this.staff;
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
    byId("end-for-all").hidden = this.role !== "host";
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

  renderPeople() {
    const conn = this.conn;
    if (!conn || !conn.joined) return;
    const participants = [...conn.participants.values()];
    this.people.render({
      participants,
      streams: [...conn.streamInfo.values()],
      me: conn.participantId,
      myRole: this.role,
      self: { mic: this.selfState("microphone"), camera: this.selfState("camera") },
    });
    const hands = participants.filter((p) => p.hand_raised != null).length;
    byId("people-count").textContent = String(participants.length);
    const badge = byId("people-badge");
    badge.hidden = !(this.staff && hands > 0);
    badge.textContent = String(hands);
    badge.setAttribute("aria-label", `${hands} raised ${hands === 1 ? "hand" : "hands"}`);
    byId("hands-summary").textContent = hands
      ? `${hands} raised ${hands === 1 ? "hand" : "hands"}${this.staff ? ": first come, first served." : "."}`
      : this.staff
        ? "No raised hands."
        : "";
    /** @type {HTMLButtonElement} */ (byId("next-speaker")).disabled =
      hands === 0 && !participants.some((p) => p.role === "attendee" && (p.grant_audio || p.grant_video));
    const count = byId("participant-count");
    count.hidden = false;
    count.textContent = `${participants.length} ${participants.length === 1 ? "person" : "people"} here`;
    if (this.view === "lobby") this.renderLobby();
  }

  /** @param {Source} source @returns {"on" | "off" | "none"} */
  selfState(source) {
    const producer = this.conn?.producerFor(source);
    if (!producer) return "none";
    const on = source === "camera" ? this.local.cameraOn : this.local.micOn;
    return producer.paused || !on ? "off" : "on";
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
      } else if (conn.state === "reconnecting") {
        state = "connecting";
        text = "Reconnecting…";
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
    const stage = byId("stage");
    const conn = this.conn;
    if (!conn || (conn.state !== "joined" && conn.state !== "reconnecting")) {
      byId("participant-count").hidden = true;
      return;
    }
    let text = "";
    let waiting = false;
    const room = conn.room;
    const backstage = !this.staff && room?.mode === "presenters-only" && room.phase === "live";
    if (conn.state === "reconnecting") {
      // the banner says it; the stage says it only when it has nothing else to show
      text = this.grid.tiles.size ? "" : "Reconnecting… The webinar continues; you will be back in a moment.";
      waiting = true;
    } else if (this.staff) {
      const watching = [...conn.participants.values()].filter((p) => p.role === "attendee").length;
      const audience = `${watching} ${watching === 1 ? "attendee" : "attendees"}`;
      const backstageNow = room?.phase === "lobby" || room?.mode === "presenters-only";
      if (this.live.size && backstageNow) {
        text = "You are live backstage: only presenters see and hear you.";
      } else if (this.live.size) {
        text = `You are live. ${audience} watching.`;
      } else {
        text = `You are not live. Check your preview, then press Go live. ${audience} waiting.`;
      }
      if (this.screen) text += " You are sharing your screen.";
    } else if (backstage) {
      text = "The presenters are preparing backstage. You will see and hear them again in a moment.";
      waiting = true;
    } else if (this.grid.remoteVideoCount === 0) {
      if (this.grid.remoteCount > 0) {
        text = "Audio only: the presenter's camera is off.";
      } else {
        text = "Waiting for the presenter…";
        waiting = true;
        if (STARTS_AT && room?.phase !== "live") text += ` The webinar is scheduled for ${formatTime(STARTS_AT)}.`;
      }
    }
    status.textContent = text;
    status.hidden = text === "";
    stage.dataset.empty = String(this.grid.tiles.size === 0 || backstage);
    stage.dataset.waiting = String(waiting);
    stage.dataset.backstage = String(backstage);
  }

  /**
   * What the server sends us to fit our connection: the panel shows the tier and
   * bandwidth; a video paused for bandwidth shows the avatar, not a frozen picture.
   * @param {import("./tiers.js").AllocationMessage} message
   */
  onAllocation(message) {
    this.connectionPanel.render(message);
    for (const stream of message.streams) this.grid.setBandwidthPaused(stream.producer_id, stream.paused);
  }

  /** @param {import("./quality.js").QualityReport} report */
  renderQuality(report) {
    this.lastQuality = report;
    const button = byId("quality");
    button.dataset.quality = report.level;
    const text = describeQuality(report);
    byId("quality-label").textContent = text;
    byId("quality-tip").textContent = text;
  }

  // ------------------------------------------------------------------ controls

  bindControls() {
    byId("mic-toggle").addEventListener("click", () => this.toggleSource("microphone"));
    byId("camera-toggle").addEventListener("click", () => this.toggleSource("camera"));
    byId("go-live").addEventListener("click", () => this.goLive());
    byId("stop-live").addEventListener("click", () => this.stopLive());
    byId("screen-share-toggle").addEventListener("click", () => this.toggleScreen());
    byId("leave").addEventListener("click", () => this.leave());
    byId("raise-hand").addEventListener("click", () => this.toggleHand());
    byId("start-event").addEventListener("click", () => this.startEvent());
    const select = /** @type {HTMLSelectElement} */ (byId("mode-select"));
    select.addEventListener("change", () => this.setMode(select));
    byId("next-speaker").addEventListener("click", () =>
      this.command(() => /** @type {WebinarConnection} */ (this.conn).nextSpeaker()),
    );
    byId("mute-attendees").addEventListener("click", async () => {
      if (await this.command(() => /** @type {WebinarConnection} */ (this.conn).muteAttendees())) {
        this.toasts.show("Every attendee's microphone is muted.", { key: "mute-all" });
      }
    });
    byId("lock-toggle").addEventListener("click", () =>
      this.command(() => {
        const conn = /** @type {WebinarConnection} */ (this.conn);
        return conn.lock(!conn.room?.locked);
      }),
    );
    byId("record-toggle").addEventListener("click", () =>
      this.command(() => {
        const conn = /** @type {WebinarConnection} */ (this.conn);
        return conn.setRecording((conn.room?.recording ?? "off") === "off");
      }),
    );
    const endDialog = /** @type {HTMLDialogElement} */ (byId("end-dialog"));
    byId("end-for-all").addEventListener("click", () => {
      endDialog.returnValue = ""; // Escape keeps the last value otherwise
      endDialog.showModal();
    });
    endDialog.addEventListener("close", () => {
      if (endDialog.returnValue === "end") this.command(() => /** @type {WebinarConnection} */ (this.conn).endForAll());
      else byId("end-for-all").focus();
    });
    const removeDialog = /** @type {HTMLDialogElement} */ (byId("remove-dialog"));
    removeDialog.addEventListener("close", () => {
      const person = this.removing;
      this.removing = null;
      const ban = /** @type {HTMLInputElement} */ (byId("remove-ban")).checked;
      if (removeDialog.returnValue === "remove" && person) {
        this.command(async () => {
          await /** @type {WebinarConnection} */ (this.conn).remove(person.participant_id, { ban });
          this.toasts.show(`${person.name} was removed${ban ? " and cannot join again" : ""}.`, { key: "removed" });
        });
      }
    });
    for (const [id, kind] of /** @type {const} */ ([
      ["camera-select", "video"],
      ["mic-select", "audio"],
    ])) {
      const select = /** @type {HTMLSelectElement} */ (byId(id));
      select.addEventListener("change", () => this.switchDevice(kind, select.value));
    }
    this.local.addEventListener("change", () => this.renderLocal());
    this.local.addEventListener("ended", (event) => {
      const { kind } = /** @type {CustomEvent} */ (event).detail;
      if (this.leaving || !this.conn) return;
      this.toasts.show(`Your ${kind === "video" ? "camera" : "microphone"} stopped working.`, { kind: "warn" });
    });
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.fillDevices());
  }

  /**
   * Run a room command; say plainly when the server refuses it.
   * @param {() => Promise<unknown>} run
   */
  async command(run) {
    if (!this.conn) return false;
    try {
      await run();
      return true;
    } catch (error) {
      this.showError(errorText(error, this.context()));
      return false;
    }
  }

  /** @param {HTMLSelectElement} select */
  async setMode(select) {
    const conn = this.conn;
    if (!conn) return;
    const previous = conn.room?.mode ?? "listen-only";
    const mode = /** @type {"listen-only" | "discussion" | "presenters-only"} */ (select.value);
    if (mode === previous) return;
    select.disabled = true;
    try {
      await conn.setMode(mode);
    } catch (error) {
      select.value = conn.room?.mode ?? previous;
      this.showError(errorText(error, this.context()));
    } finally {
      select.disabled = false;
    }
  }

  async startEvent() {
    const button = /** @type {HTMLButtonElement} */ (byId("start-event"));
    button.disabled = true;
    await this.command(() => /** @type {WebinarConnection} */ (this.conn).start());
    button.disabled = false;
  }

  async toggleHand() {
    const conn = this.conn;
    if (!conn) return;
    const raised = conn.me?.hand_raised != null;
    if (await this.command(() => (raised ? conn.lowerHand() : conn.raiseHand()))) {
      if (!raised) {
        this.toasts.show("Your hand is raised. A presenter will let you speak.", { key: "hand" });
      }
    }
  }

  /**
   * @param {import("./participants.js").RowAction} action
   * @param {ParticipantInfo} person
   */
  onRowAction(action, person) {
    const conn = this.conn;
    if (!conn) return;
    const id = person.participant_id;
    switch (action) {
      case "grant-mic":
        this.command(() => conn.grant(id, { audio: true, video: Boolean(person.grant_video) }));
        break;
      case "grant-camera":
        this.command(() => conn.grant(id, { audio: Boolean(person.grant_audio), video: true }));
        break;
      case "revoke":
        this.command(() => conn.grant(id, { audio: false, video: false }));
        break;
      case "lower-hand":
        this.command(() => conn.lowerHand(id));
        break;
      case "mute":
        this.command(() => conn.mute(id));
        break;
      case "make-presenter":
        this.command(() => conn.setRole(id, "presenter"));
        break;
      case "make-attendee":
        this.command(() => conn.setRole(id, "attendee"));
        break;
      case "remove": {
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

  /** Is this source on, as the toggle should show it? @param {Source} source */
  isOn(source) {
    const kind = kindOf(source);
    const enabled = kind === "video" ? this.local.cameraOn : this.local.micOn;
    const producer = this.conn?.producerFor(source);
    if (producer) return enabled && !producer.paused;
    if (this.staff) return enabled;
    return false;
  }

  /**
   * The microphone or camera button: live, it switches the stream for everyone
   * (set-stream-paused); a presenter not live switches the preview; an attendee
   * allowed to speak publishes.
   * @param {"microphone" | "camera"} source
   */
  async toggleSource(source) {
    const conn = this.conn;
    const kind = kindOf(source);
    const want = !this.isOn(source);
    const producer = conn?.producerFor(source);
    if (conn && producer) {
      if (want && !this.local.has(kind)) {
        // the device went away meanwhile: start it again and send it on the same producer
        this.reportDeviceFailures(await this.local.start({ video: kind === "video", audio: kind === "audio" }));
        const track = kind === "video" ? this.local.video : this.local.audio;
        if (!track) return;
        await conn.replaceTrack(producer.producer_id, track).catch(() => {});
      }
      this.local.setEnabled(kind, want);
      try {
        await conn.setStreamPaused(producer.producer_id, !want);
      } catch (error) {
        this.local.setEnabled(kind, !want);
        this.showError(errorText(error, this.context()));
      }
      this.renderLocal();
      this.renderPeople();
      return;
    }
    if (this.staff || !conn) {
      if (want && !this.local.has(kind)) {
        this.reportDeviceFailures(await this.local.start({ video: kind === "video", audio: kind === "audio" }));
        await this.fillDevices();
      }
      this.local.setEnabled(kind, want);
      return;
    }
    if (!want) return;
    if (!this.may(source)) {
      this.showError(
        conn.me?.listen_only
          ? "You joined when discussion was full, so you can listen but not speak."
          : "You may not speak right now. Raise your hand to ask.",
      );
      return;
    }
    await this.publishSources([source]);
  }

  /**
   * An attendee allowed to speak publishes their microphone and/or camera.
   * @param {("microphone" | "camera")[]} sources
   */
  async publishSources(sources) {
    const conn = this.conn;
    if (!conn || this.busy) return;
    this.busy = true;
    try {
      /** @type {{track: MediaStreamTrack, source: Source}[]} */
      const tracks = [];
      for (const source of sources) {
        const kind = kindOf(source);
        if (!this.local.has(kind)) {
          const failures = await this.local.start({ video: kind === "video", audio: kind === "audio" });
          this.reportDeviceFailures(failures);
          await this.fillDevices();
        }
        const track = kind === "video" ? this.local.video : this.local.audio;
        if (!track) continue;
        this.local.setEnabled(kind, true);
        tracks.push({ track, source });
      }
      if (!tracks.length) return;
      try {
        const producers = await conn.publish(tracks);
        for (const p of producers) this.wanted.add(p.source);
      } catch (error) {
        for (const { source } of tracks) this.local.stopKind(kindOf(source));
        this.showError(errorText(error, this.context()));
      }
    } finally {
      this.busy = false;
      this.renderLocal();
      this.renderControls();
      this.renderPeople();
    }
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
      const publishes = !this.staff && !this.conn?.producerFor(source);
      button.title = on ? `Turn the ${noun} off` : publishes ? `Turn your ${noun} on: everyone will ${source === "camera" ? "see" : "hear"} you` : `Turn the ${noun} on`;
    }
  }

  renderLocal() {
    const local = this.local;
    this.renderToggles();
    // the device check's preview
    const preview = /** @type {HTMLVideoElement | null} */ (document.getElementById("preview-video"));
    if (preview) {
      if (preview.srcObject !== local.stream) preview.srcObject = local.stream;
      const cameraOff = !local.has("video") || !local.cameraOn;
      byId("preview-box").classList.toggle("tile-off", cameraOff);
      byId("preview-avatar").textContent = initials(/** @type {HTMLInputElement} */ (byId("prejoin-name")).value || "?");
      byId("preview-note").textContent = !local.has("video")
        ? "No camera"
        : local.cameraOn
          ? ""
          : "You will enter with your camera off";
      for (const [id, on, noun] of /** @type {const} */ ([
        ["precheck-mic", local.micOn, "Microphone"],
        ["precheck-camera", local.cameraOn, "Camera"],
      ])) {
        const button = byId(id);
        button.setAttribute("aria-pressed", String(on));
        button.setAttribute("aria-label", `${noun} ${on ? "on" : "off"} when I enter`);
        button.title = `${noun} ${on ? "on" : "off"} when you enter: click to switch it ${on ? "off" : "on"}`;
      }
    }
    this.meter.attach(local.audio && local.audio.readyState === "live" ? local.audio : null);
    const conn = this.conn;
    if (conn && (conn.state === "joined" || conn.state === "reconnecting")) {
      const liveNow = this.live.size > 0;
      const showSelf = this.staff || conn.producerFor("camera") !== null;
      const camera = conn.producerFor("camera");
      this.grid.setSelf(showSelf ? local.stream : null, {
        label: `${this.name} (you${this.staff ? (liveNow ? ", live" : ", preview") : ""})`,
        name: this.name,
        participantId: conn.participantId,
        cameraOff: !local.video || local.video.readyState !== "live" || !local.cameraOn || Boolean(camera?.paused),
      });
      this.grid.setMicOff(conn.participantId ?? "", this.selfState("microphone") === "off");
    }
  }

  updateLive() {
    // while reconnecting, what was live comes back by itself
    const resuming = this.conn?.state === "reconnecting" && (this.wanted.has("camera") || this.wanted.has("microphone"));
    const liveNow = this.live.size > 0 || resuming;
    byId("go-live").hidden = !this.staff || liveNow;
    byId("stop-live").hidden = !this.staff || !liveNow;
    byId("room").dataset.live = String(liveNow);
    const share = byId("screen-share-toggle");
    share.setAttribute("aria-pressed", String(Boolean(this.screen)));
    /** @type {HTMLElement} */ (share.querySelector(".label")).textContent = this.screen ? "Stop sharing" : "Share screen";
    this.renderToggles();
    this.updateStatus();
  }

  /** @param {{audioOnly?: boolean}} [options] */
  async goLive(options = {}) {
    const conn = this.conn;
    const local = this.local;
    if (!conn || this.live.size || this.busy) return;
    const button = /** @type {HTMLButtonElement} */ (byId("go-live"));
    this.busy = true;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    this.hideError();
    try {
      if (local.live.length < 2) {
        this.reportDeviceFailures(await local.start());
        await this.fillDevices();
      }
      /** @type {{track: MediaStreamTrack, source: Source}[]} */
      const tracks = [];
      if (local.video && !options.audioOnly) tracks.push({ track: local.video, source: "camera" });
      if (local.audio) tracks.push({ track: local.audio, source: "microphone" });
      if (!tracks.length) return;
      try {
        const producers = await conn.publish(tracks);
        for (const p of producers) this.wanted.add(p.source);
        // Whatever is switched off stays off for everyone: they see the avatar.
        await this.applyPauses();
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
      this.renderLocal();
      this.renderPeople();
    }
  }

  async stopLive() {
    const conn = this.conn;
    if (!conn) return;
    const ids = [...this.live.values()];
    this.wanted.delete("camera");
    this.wanted.delete("microphone");
    this.local.stop();
    const results = await Promise.allSettled(ids.map((id) => conn.unpublish(id)));
    for (const result of results) {
      if (result.status === "rejected") this.showError(errorText(result.reason));
    }
    this.updateLive();
    this.renderLocal();
    this.renderPeople();
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
    /** @type {{track: MediaStreamTrack, source: Source}[]} */
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
    if (!deviceId) return;
    try {
      const { track } = await local.switchDevice(kind, deviceId);
      const producer = this.conn?.producerFor(kind === "video" ? "camera" : "microphone");
      if (producer && this.conn) await this.conn.replaceTrack(producer.producer_id, track);
    } catch (error) {
      this.showError(mediaErrorMessage(error, kind === "video" ? "camera" : "microphone"));
    }
    this.renderLocal();
  }

  async fillDevices() {
    const local = this.local;
    const devices = await listDevices().catch(() => ({ video: [], audio: [] }));
    for (const [id, kind, noun] of /** @type {const} */ ([
      ["camera-select", "video", "Camera"],
      ["mic-select", "audio", "Microphone"],
    ])) {
      const select = /** @type {HTMLSelectElement | null} */ (document.getElementById(id));
      if (!select) continue;
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

  // ------------------------------------------------------------------ side panel

  bindPanel() {
    byId("people-toggle").addEventListener("click", () => {
      const open = byId("live").dataset.panel !== "open";
      this.setPanelOpen(open, true);
    });
    byId("panel-close").addEventListener("click", () => {
      this.setPanelOpen(false, true);
      byId("people-toggle").focus();
    });
    byId("side-panel").addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !WIDE.matches) {
        this.setPanelOpen(false, true);
        byId("people-toggle").focus();
      }
    });
    // Tabs: arrow keys move between the visible tabs (WAI-ARIA tabs pattern).
    const tablist = /** @type {HTMLElement} */ (document.querySelector("#side-panel [role=tablist]"));
    const tabs = () => /** @type {HTMLElement[]} */ ([...tablist.querySelectorAll("[role=tab]")].filter((t) => !(/** @type {HTMLElement} */ (t).hidden)));
    tablist.addEventListener("click", (event) => {
      const tab = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (event.target).closest("[role=tab]"));
      if (tab) this.selectTab(tab);
    });
    tablist.addEventListener("keydown", (event) => {
      const list = tabs();
      const index = list.indexOf(/** @type {HTMLElement} */ (document.activeElement));
      if (index < 0) return;
      let next = -1;
      if (event.key === "ArrowRight") next = (index + 1) % list.length;
      else if (event.key === "ArrowLeft") next = (index - 1 + list.length) % list.length;
      else if (event.key === "Home") next = 0;
      else if (event.key === "End") next = list.length - 1;
      if (next < 0) return;
      event.preventDefault();
      this.selectTab(list[next]);
      list[next].focus();
    });
    WIDE.addEventListener("change", () => this.grid.layout());
  }

  /**
   * Open the side panel on a tab (a poll starts, for instance).
   * @param {string} id
   */
  showTab(id) {
    const tab = document.getElementById(id);
    if (!tab || tab.hidden) return;
    this.selectTab(tab);
    if (byId("live").dataset.panel !== "open") this.setPanelOpen(true, false);
  }

  /** @param {HTMLElement} tab */
  selectTab(tab) {
    for (const other of document.querySelectorAll("#side-panel [role=tab]")) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.setAttribute("tabindex", selected ? "0" : "-1");
      const panel = document.getElementById(other.getAttribute("aria-controls") ?? "");
      if (panel) panel.hidden = !selected;
    }
  }

  /**
   * @param {boolean} open
   * @param {boolean} focus  move focus into the panel (when the user opened it)
   */
  setPanelOpen(open, focus) {
    const live = byId("live");
    live.dataset.panel = open ? "open" : "closed";
    byId("people-toggle").setAttribute("aria-expanded", String(open));
    if (open && focus) byId("tab-people").focus();
    // the stage changes size: the tiles follow
    requestAnimationFrame(() => this.grid.layout());
  }
}

/** @param {string} kind */
function deviceWords(kind) {
  return kind === "video" ? "camera" : kind === "audio" ? "microphone" : "camera and microphone";
}

const room = new Room();

/** Test and debugging hook. */
Object.defineProperty(window, "__webinar", {
  value: Object.freeze({
    room,
    get connection() {
      return room.conn;
    },
    /** Drop the signalling socket as a network failure would (the page reconnects). */
    dropConnection() {
      room.conn?.dropSocket();
    },
  }),
});

// Coming from the home page's form: join at once with the name typed there (with storage
// disabled, the page asks for the name).
const want = recall(AUTOJOIN_KEY, "session");
forget(AUTOJOIN_KEY, "session");
// Events that need a password or a code ask for it first: no joining at once there.
const ready = ACCESS === "open" || (ACCESS === "token" && room.credential !== null);
if (PAGE_ROLE === "attendee" && ready && want && want === EVENT_ID.replace(/\D/g, "") && savedName()) {
  room.enter(savedName());
}
