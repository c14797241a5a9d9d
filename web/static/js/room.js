// The room page (attendee, presenter, host): the UI on top of protocol.js.
//
// Views: prejoin (name, and a device check for presenters) → lobby (attendees, while
// the event has not started) or live (stage, side panel, controls) → ended.
// This file holds the room's shared state (the connection, our role, the view; see
// RoomContext in room/page.js), turns the connection's events into calls on the
// parts, and starts the page. The parts, each in room/:
//   page.js      the page's data (<body data-…>), RoomContext, small helpers
//   prejoin.js   the name / code / password form and the credential
//   devices.js   camera and microphone: device check, device choice, level meter
//   lobby.js     the lobby view and its countdown
//   stage.js     the video grid, the status line and the staff's banner
//   publish.js   what we publish: camera, microphone, screen; Go live and Stop
//   controls.js  the controls bar, the staff's commands, a person's row actions
//   panel.js     the side panel: tabs and the people list
//   status.js    the top bar: connection, quality, tier, badges, reconnecting
//   notices.js   the toasts about what happens in the room
//   reactions.js the React button (presenters: with the reactions switch), the floating emoji
//   captions.js  live captions over the stage, the Captions button, "make captioner"
//   audience.js  presenters: the audience strip (attendees, hands, new questions) and the
//                picture-in-picture copy of what attendees see
// Chat, Q&A, polls and calls to action are interaction.js's; the messages to a site that
// embeds the room (webinar:joined, …) embed.js's.
// window.__webinar exposes the live connection for tests and debugging.

import { EMBEDDED, notifyHost } from "./embed.js";
import { onLanguage, setText, t } from "./i18n.js";
import { Interaction } from "./interaction.js";
import { isStaff } from "./participants.js";
import { ByeReason, WebinarConnection } from "./protocol.js";
import { AUTOJOIN_KEY, Toasts, byId, cleanName, clientId, errorText, forget, formatTime, recall, saveName, savedName } from "./ui.js";
import { StageContent } from "./room/content.js";
import { ExternalPlayer } from "./room/external.js";
import { AudienceView } from "./room/audience.js";
import { Controls } from "./room/controls.js";
import { Devices } from "./room/devices.js";
import { HlsStage } from "./room/hls.js";
import { Lobby } from "./room/lobby.js";
import { Notices } from "./room/notices.js";
import { ACCESS, ENDED, EVENT_ID, JOIN_TOKEN, PAGE_ROLE, PRESENTER_KEY, REGISTRATION_REQUIRED, STARTS_AT, WIDE, inRoom, kindOf } from "./room/page.js";
import { SidePanel } from "./room/panel.js";
import { Prejoin } from "./room/prejoin.js";
import { Publisher } from "./room/publish.js";
import { Reactions } from "./room/reactions.js";
import { Captions } from "./room/captions.js";
import { askRating } from "./room/rating.js";
import { Stage } from "./room/stage.js";
import { StatusBar } from "./room/status.js";
import { Whiteboard } from "./room/whiteboard.js";
import { SharedVideo } from "./room/video.js";

/** @typedef {import("./room/page.js").Source} Source */
/** @typedef {import("./room/page.js").ParticipantInfo} ParticipantInfo */
/** @typedef {import("./room/page.js").View} View */
/** @typedef {import("./room/page.js").ErrorAction} ErrorAction */
/** @typedef {import("./room/page.js").RoomContext} RoomContext */

/**
 * Why the server said goodbye, in a sentence (null for a reason this page does not know).
 * @param {string | null} bye
 */
/**
 * Whether someone takes part beyond watching (staff, or granted the microphone or camera):
 * never on the HLS stage (the server's rule too: rooms/live.py `on_the_floor`).
 * @param {{role: string, grant_audio?: boolean, grant_video?: boolean}} participant
 */
function onTheFloor(participant) {
  return participant.role !== "attendee" || Boolean(participant.grant_audio) || Boolean(participant.grant_video);
}

/** What the toasts must not cover (Toasts.place): the stage's notes, the controls, the chat's input. */
const TOASTS_AVOID =
  "#stage-banner, [data-testid=published-question], [data-testid=cta-popup], #controls, .stage[data-empty=true] > .status, [data-testid=chat-form], [data-testid=captions-overlay], #audience-view, [data-testid=presenter-strip]";

/**
 * A refusal to join that no retry changes: the event has ended for all or was cancelled.
 * @param {unknown} failure
 */
function isOver(failure) {
  const code = /** @type {{code?: string} | null} */ (failure)?.code;
  return code === "ended" || code === "event-cancelled";
}

function byeText(bye) {
  switch (bye) {
    case ByeReason.LEFT:
      return t("You left the webinar.");
    case ByeReason.SHUTDOWN:
      return t("The server is restarting. Try again in a moment.");
    case ByeReason.REPLACED:
      return t("You joined this webinar from another tab or device.");
    case ByeReason.PROTOCOL_VIOLATION:
      return t("The server closed the connection because this page misbehaved. Reload the page.");
    case ByeReason.REMOVED:
      return t("You were removed from this webinar.");
    case ByeReason.ENDED:
      return t("The webinar has ended. Thank you for joining.");
    case ByeReason.SLOW_CLIENT:
      return t("Your connection was too slow to keep up. Try again.");
    case ByeReason.TAKEN_OVER:
      return t("Your code or invitation was used to enter on another device, so this one left the webinar.");
    case ByeReason.WINDOW_ENDED:
      return t("The time window of your ticket is over, so viewing has ended. Thank you for joining.");
    case ByeReason.REVOKED:
      return t("The organiser withdrew your ticket or invitation.");
    case ByeReason.CANCELLED:
      return t("The organiser cancelled this webinar; it will not take place.");
    case ByeReason.NO_HELLO:
      return t("The connection was not set up in time. Reload the page.");
    default:
      return null;
  }
}

/** @implements {RoomContext} */
class Room {
  constructor() {
    /** @type {WebinarConnection | null} */
    this.conn = null;
    this.name = "";
    /** The role the server gave us (follows set-role). */
    this.role = PAGE_ROLE;
    this.leaving = false;
    this.rejoining = false;
    /** Our participant ID in the room (kept after leaving, for the embedding page). @type {string | null} */
    this.participantId = null;
    /** @type {View} */
    this.view = "prejoin";
    /** What the ended view says (rendered again when the language changes). @type {(() => {title: string, text: string}) | null} */
    this.endedWords = null;
    /** What the error box says (rendered again when the language changes). @type {(() => string) | null} */
    this.errorWords = null;
    this.busy = false;
    // the toasts keep clear of the stage's published question, call-to-action and banners
    this.toasts = new Toasts(byId("toasts"), TOASTS_AVOID);
    this.prejoin = new Prejoin((name) => this.enter(name));
    this.devices = new Devices(this, () => this.renderLocal());
    this.stage = new Stage(this, () => this.updateStatus());
    this.lobby = new Lobby(() => this.leave());
    this.status = new StatusBar(() => this.conn);
    this.panel = new SidePanel({
      onRowAction: (action, person) => this.controls.onRowAction(action, person),
      onResize: () => this.stage.layout(),
    });
    this.publisher = new Publisher(this, this.devices, {
      renderLocal: () => this.renderLocal(),
      renderPeople: () => this.renderPeople(),
      renderControls: () => this.controls.render(),
      updateLive: () => {
        this.controls.updateLive();
        this.content?.screenShared(Boolean(this.publisher.screen));
      },
    });
    this.controls = new Controls(this, this.publisher, {
      updateStatus: () => this.updateStatus(),
      leave: () => this.leave(),
    });
    this.notices = new Notices(this, {
      turnOn: (source) => this.publisher.toggleSource(source),
      allowMic: (person) => this.controls.onRowAction("grant-mic", person),
    });
    /** Content on stage: presentation, shared video, whiteboard, external player, files. */
    this.content = new StageContent({
      eventId: EVENT_ID,
      presenterKey: PRESENTER_KEY ?? JOIN_TOKEN,
      onLayout: () => {
        this.stage.layout();
        this.updateStatus();
      },
      toasts: this.toasts,
      staff: () => this.staff,
      showTab: (id) => this.panel.showTab(id),
      showFailure: (error) => this.showFailure(error),
    });
    /** The shared video on stage (room/video.js). */
    this.video = new SharedVideo(this.content, { isStaff: () => this.staff, toasts: this.toasts });
    this.externalPlayer = new ExternalPlayer(this.content); // the event's external player
    this.hlsStage = new HlsStage(); // attendees who watch over HLS
    /** Chat, Q&A, polls, call-to-action (interaction.js). */
    this.interaction = new Interaction({
      onStage: (stage) => this.content.load(stage, true),
      toasts: this.toasts,
      showTab: (id) => this.panel.showTab(id),
      // a presenter who came with a join token uploads poll images with it
      presenterKey: PRESENTER_KEY ?? JOIN_TOKEN,
      eventId: EVENT_ID,
      onSync: (state) => {
        this.captions.load(state);
        this.reactions.load(state);
      },
    });
    /** Emoji reactions: the React button, its switch for presenters, everyone's floating emoji (room/reactions.js). */
    this.reactions = new Reactions({ showFailure: (error) => this.showFailure(error) });
    /** Live captions over the stage (room/captions.js). */
    this.captions = new Captions({
      people: this.panel.people,
      renderPeople: () => this.renderPeople(),
      showFailure: (error) => this.showFailure(error),
    });
    /** The whiteboard on stage (room/whiteboard.js). */
    this.whiteboard = new Whiteboard(this.content, {
      people: this.panel.people,
      renderPeople: () => this.renderPeople(),
      toasts: this.toasts,
      showFailure: (error) => this.showFailure(error),
    });
    /** Presenters: the audience strip and what attendees see (room/audience.js). */
    this.audience = new AudienceView({
      conn: () => this.conn,
      staff: () => this.staff,
      view: () => this.view,
      content: this.content,
      interaction: this.interaction,
      showTab: (id) => this.panel.showTab(id),
      layoutStage: () => this.stage.layout(),
      moved: () => this.toasts.place(),
    });
    // ...also when one of those appears or changes size after a toast showed
    const moved = new ResizeObserver(() => this.toasts.place());
    for (const el of document.querySelectorAll(TOASTS_AVOID)) moved.observe(el);
    moved.observe(byId("grid"));
    this.bindPage();
    if (isStaff(PAGE_ROLE)) this.devices.startDeviceCheck();
    // The language switches in place: everything with words in it is drawn again (the media runs on).
    onLanguage(() => this.relabel());
  }

  get staff() {
    return isStaff(this.role);
  }

  /** Camera and microphone (tests and debugging read them here). */
  get local() {
    return this.devices.local;
  }

  /** The device check's microphone level meter. */
  get meter() {
    return this.devices.meter;
  }

  /**
   * Switch to another camera or microphone (as the Devices menu does; tests call it).
   * @param {"audio" | "video"} kind
   * @param {string} deviceId
   */
  switchDevice(kind, deviceId) {
    return this.devices.switchDevice(kind, deviceId);
  }

  /** What `join` sends as `credential`. */
  get credential() {
    return this.prejoin.credential;
  }

  bindPage() {
    if (EMBEDDED) {
      // Framed by the organiser's site: our own pages open beside it, not in the frame.
      for (const link of document.querySelectorAll("a.brand-link, #ended-home")) {
        link.setAttribute("target", "_blank");
        link.setAttribute("rel", "noopener");
      }
    }
    byId("rejoin").addEventListener("click", () => {
      this.rejoining = true;
      this.enter(this.name);
    });
    byId("error-close").addEventListener("click", () => this.hideError());
    // Closing the tab or navigating away is leaving (not a drop the server waits 60 s for).
    window.addEventListener("pagehide", () => {
      this.conn?.send("leave");
      this.conn?.close();
    });
    this.renderLocalTimes();
    this.updateConnection();
  }

  renderLocalTimes() {
    for (const time of document.querySelectorAll("time[data-local-time]")) {
      time.textContent = formatTime(time.getAttribute("datetime") ?? "");
    }
  }

  /** The language changed: draw again every text that has values in it (times, counts, names). */
  relabel() {
    this.renderLocalTimes();
    this.prejoin.relabel();
    this.renderEnded();
    if (this.errorWords && !byId("error").hidden) byId("error-text").textContent = this.errorWords();
    this.status.relabel();
    this.updateConnection();
    this.renderRoom();
    this.renderLocal();
    this.devices.relabel();
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
    if (which !== "lobby") this.lobby.stop();
    this.interaction?.setLobby(which === "lobby");
    if (!changed) return;
    if (which === "prejoin") this.prejoin.focus();
    if (which === "ended") {
      this.toasts.clear(); // what happened in the room is over with it
      byId("rejoin").focus();
    }
    if (which === "lobby") this.lobby.focus();
    if (which === "live") this.stage.layout();
  }

  /** The view the room's phase asks for: attendees wait in the lobby until the start. */
  roomView() {
    return this.conn?.room?.phase === "lobby" && !this.staff ? "lobby" : "live";
  }

  // ------------------------------------------------------------------ joining and leaving

  /** @param {string} rawName */
  async enter(rawName) {
    const joinToken = this.prejoin.joinToken;
    // With a join token the name is the token's (the server puts it in); this one is a stand-in.
    const name = cleanName(rawName) || (joinToken ? t("Guest") : "");
    if (!name) {
      this.showView("prejoin");
      this.prejoin.askName();
      return;
    }
    if (this.busy) return;
    this.busy = true;
    this.prejoin.setBusy(true);
    if (!joinToken) saveName(name);
    this.name = name;
    this.leaving = false;

    const conn = new WebinarConnection({ network: window });
    conn.quality = this.status.panel.quality;
    this.conn = conn;
    this.wire(conn);
    this.updateConnection();
    try {
      await conn.connect();
      await conn.join({ eventId: EVENT_ID, name, credential: this.credential, joinToken, clientId: clientId() });
    } catch (failure) {
      conn.close();
      this.conn = null;
      this.updateConnection();
      if (isOver(failure)) {
        // nothing to join any more: the ended view, without the form and its Join button
        this.showOver(/** @type {{code: string, message: string}} */ (failure));
        return;
      }
      this.showView("prejoin");
      this.prejoin.joinFailed(failure);
      return;
    } finally {
      this.busy = false;
      this.prejoin.setBusy(false);
    }
    this.hideError();
    this.onJoined();
    if (this.staff && this.rejoining && this.local.live.length === 0) await this.devices.startPreview();
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
    if (first) {
      const me = conn.joined.participant_id;
      this.participantId = me;
      this.name = conn.participants.get(me)?.name ?? this.name;
      notifyHost("joined", { participant_id: me, name: this.name, role: this.role });
    }
    this.showView(this.roomView());
    // an attendee who watches over HLS: the video instead of the tiles (before the status line)
    const me = conn.participants.get(conn.joined.participant_id);
    this.hlsStage.show(me && onTheFloor(me) ? null : (conn.joined.hls?.playlist ?? null));
    this.devices.moveToSettings();
    // Wide screens show the side panel beside the stage from the start (for attendees the
    // chat, Q&A and polls); on a phone it is one tap away.
    if (first) this.panel.setOpen(WIDE.matches, false);
    this.status.start();
    this.setActiveSpeaker(conn.activeSpeaker);
    this.renderRoom();
    this.renderLocal();
    this.interaction.joined(this.role); // shows the chat, Q&A and polls tabs at once
    this.reactions.setRole(this.role);
    this.captions.setRole(this.role);
    if (first && !this.staff) this.panel.selectTab(byId("tab-chat"));
  }

  /** @param {WebinarConnection} conn */
  wire(conn) {
    this.interaction.attach(conn);
    this.content.attach(conn);
    this.reactions.attach(conn);
    this.captions.attach(conn);
    this.audience.attach(conn);
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
    on("stream", (remote) => this.stage.addStream(remote));
    on("stream-added", () => this.renderPeople());
    on("stream-ended", (detail) => {
      const shown = this.stage.removeStream(detail.producer_id);
      if (detail.reason !== "reconnecting" && (shown || detail.shown) && detail.info) {
        this.notices.streamEnded(detail.info, detail.reason);
      }
      if (detail.participant_id) this.stage.renderMicState(detail.participant_id);
      this.renderPeople();
    });
    on("stream-updated", (detail) => this.onStreamUpdated(detail.stream, detail.own));
    on("participant-joined", () => this.renderRoom());
    on("participant-left", (detail) => {
      this.notices.participantLeft(detail);
      this.renderRoom();
    });
    on("participant-updated", (detail) => this.onParticipantUpdated(detail));
    // batched (roster-delta, at most a few a second) and coalesced (participant-count)
    on("roster-delta", (detail) => {
      this.notices.rosterChanged(detail.changes);
      this.renderRoom();
    });
    on("participant-count", () => this.renderRoom());
    on("active-speaker", (detail) => this.setActiveSpeaker(detail.participant_id));
    on("producer-closed", (detail) => this.onProducerClosed(detail));
    on("room-updated", (detail) => {
      this.notices.roomUpdated(detail);
      this.renderRoom();
    });
    on("allocation", (detail) => {
      // the panel shows the tier and bandwidth; a video paused for bandwidth shows the avatar
      this.status.panel.render(detail);
      this.stage.renderAllocation(detail);
    });
    on("recording-updated", () => this.renderRoom());
    on("live-stream-updated", () => this.renderRoom());
    on("room-ended", (detail) => {
      this.leaving = true;
      notifyHost("ended", { participant_id: this.participantId });
      const next = detail.thank_you_url || "/thanks";
      if (EMBEDDED || detail.rating_token) {
        // In a frame the room says it has ended in place: the embedding page heard
        // `webinar:ended` and decides where its visitor goes next. An attendee is asked
        // for a rating first (then goes on to the organiser's own page, if there is one).
        this.stopMedia();
        byId("rejoin").hidden = true;
        this.showEnded(() => ({ title: t("The webinar has ended"), text: byeText(ByeReason.ENDED) ?? "" }));
        if (detail.rating_token) askRating(detail.rating_token, EMBEDDED || next === "/thanks" ? null : next);
        return;
      }
      location.assign(next);
    });
    on("draining", (detail) => this.notices.draining(detail));
    on("reconnecting", (detail) => {
      this.status.showReconnecting(detail);
      this.updateConnection();
      this.renderPeople();
    });
    on("resumed", (detail) => this.onResumed(detail));
    on("error", (detail) => {
      const code = detail.error?.code;
      if (code === "closed" || code === "not-connected") return;
      this.showFailure(detail.error);
    });
    on("close", (detail) => this.onClosed(detail));
  }

  /** Stop everything of ours on the page: media, tiles, measuring. */
  stopMedia() {
    this.hlsStage.stop();
    this.publisher.stopAll();
    this.devices.stop();
    this.stage.clear();
    this.status.hideReconnecting();
    this.audience.render();
  }

  /** @param {{bye: string | null, code: number, error: import("./protocol.js").WebinarError | null}} detail */
  onClosed(detail) {
    this.stopMedia();
    this.status.reset();
    this.updateConnection();
    if (this.leaving) return;
    if (this.participantId) {
      notifyHost("left", { participant_id: this.participantId, reason: detail.bye ?? detail.error?.code ?? "disconnected" });
    }
    const elsewhere = detail.bye === ByeReason.TAKEN_OVER || detail.bye === ByeReason.REPLACED;
    this.showEnded(() => ({
      title:
        detail.bye === "removed"
          ? t("Removed")
          : detail.bye === "ended"
            ? t("The webinar has ended")
            : elsewhere
              ? t("You are in the webinar on another device")
              : t("Disconnected"),
      text: detail.error
        ? errorText(detail.error, { startsAt: STARTS_AT })
        : byeText(detail.bye) || t("The connection to the server was lost."),
    }));
    byId("rejoin").hidden = detail.bye === "removed" || detail.bye === "ended" || detail.error?.code === "banned";
    // Another device (or tab) has the seat now: rejoining here takes it back from there.
    this.setRejoinLabel(elsewhere);
  }

  /**
   * The ended view's Rejoin button: plain, or saying that it takes the seat back from the
   * other device (after a taken-over or replaced goodbye).
   * @param {boolean} takesBack
   */
  setRejoinLabel(takesBack) {
    // two literal calls: the catalogs take messages from setText's own argument
    if (takesBack) setText(byId("rejoin"), "Continue here instead");
    else setText(byId("rejoin"), "Rejoin");
    byId("rejoin-note").hidden = !takesBack;
  }

  /**
   * The event is over (ended for all, or cancelled) before we got in: say so on the ended
   * view, with no way to join.
   * @param {{code: string, message: string}} error  the refusal (a WebinarError)
   */
  showOver(error) {
    this.setRejoinLabel(false);
    byId("rejoin").hidden = true;
    this.showEnded(() => ({
      title: error.code === "event-cancelled" ? t("The webinar was cancelled") : t("The webinar has ended"),
      text: error.code === "ended" ? t("This webinar has ended. Thank you for your interest.") : errorText(error, this.context()),
    }));
  }

  /**
   * The ended view, with what it says (a function: it is asked again when the language changes).
   * @param {() => {title: string, text: string}} words
   */
  showEnded(words) {
    this.endedWords = words;
    this.renderEnded();
    this.showView("ended");
  }

  renderEnded() {
    if (!this.endedWords) return;
    const { title, text } = this.endedWords();
    byId("ended-title").textContent = title;
    byId("ended-text").textContent = text;
  }

  async leave() {
    const conn = this.conn;
    this.leaving = true;
    this.stopMedia();
    this.status.stop();
    byId("rejoin").hidden = false;
    this.setRejoinLabel(false);
    this.showEnded(() => ({
      title: t("You left the webinar"),
      text: t("Thanks for joining. You can come back while it is running."),
    }));
    if (conn) await conn.leave();
    this.updateConnection();
    if (conn && this.participantId) notifyHost("left", { participant_id: this.participantId, reason: "left" });
  }

  context() {
    return { maxCameras: this.conn?.joined?.max_cameras, startsAt: STARTS_AT };
  }

  /** @param {{resumed: boolean}} detail */
  async onResumed(detail) {
    this.status.hideReconnecting();
    this.notices.reconnected(detail.resumed);
    this.onJoined(false);
    await this.publisher.republish();
  }

  // ------------------------------------------------------------------ room events

  /**
   * @param {import("./protocol.js").StreamInfo} stream
   * @param {boolean} own
   */
  onStreamUpdated(stream, own) {
    if (own) {
      if (stream.paused && stream.pause_reason !== "self" && (stream.source === "microphone" || stream.source === "camera")) {
        this.local.setEnabled(kindOf(stream.source), false);
        this.notices.ownStreamPaused(stream);
      }
      this.renderLocal();
    } else {
      this.stage.renderStreamPaused(stream);
    }
    this.renderPeople();
  }

  /** @param {{participant: ParticipantInfo, previous: ParticipantInfo | null, cause: string, self: boolean}} detail */
  onParticipantUpdated(detail) {
    const { participant, previous, cause, self } = detail;
    if (self) {
      if (cause === "role" && previous && previous.role !== participant.role) this.onRoleChanged(participant.role);
      if (cause === "grant") this.notices.grantChanged(participant, previous);
    }
    if (self && onTheFloor(participant)) this.hlsStage.show(null); // the server offers WebRTC now
    this.notices.participantUpdated(detail);
    this.renderRoom();
  }

  /** @param {string} role */
  onRoleChanged(role) {
    this.role = role;
    this.interaction.setRole(role);
    this.reactions.setRole(role);
    this.captions.setRole(role);
    byId("room").dataset.role = role;
    if (isStaff(role)) {
      this.notices.roleChanged(true);
      this.panel.setOpen(WIDE.matches, false);
    } else {
      this.publisher.stopAll();
      this.local.stop();
      this.notices.roleChanged(false);
    }
    this.renderLocal();
  }

  /** @param {{producer_id: string, source: Source | null, reason: string, ours: boolean}} detail */
  onProducerClosed(detail) {
    if (!detail.ours) return; // the echo of our own unpublish
    this.publisher.producerClosed(detail);
    this.notices.producerClosed(detail);
    this.controls.render();
    this.renderLocal();
    this.renderPeople();
  }

  // ------------------------------------------------------------------ rendering

  /** @param {string | null} participantId */
  setActiveSpeaker(participantId) {
    this.stage.setActiveSpeaker(participantId);
    this.panel.setActiveSpeaker(participantId);
  }

  /** Everything that depends on the room's state, our role and the participant list. */
  renderRoom() {
    const conn = this.conn;
    if (!conn || !conn.joined) return;
    const room = conn.room;
    const phase = room?.phase ?? "live";
    const mode = room?.mode ?? "listen-only";
    const recording = room?.recording ?? "off";
    const root = byId("room");
    root.dataset.role = this.role;
    root.dataset.phase = phase;
    root.dataset.mode = mode;
    if (this.view !== "ended") this.showView(this.roomView());
    this.status.renderBadges({ role: this.role, staff: this.staff, phase, mode, recording });
    this.controls.renderRecord(phase, recording);
    this.controls.renderLiveStream(phase, room?.live_stream ?? "off", conn.liveStreamOutput);
    if (this.view === "lobby") this.lobby.render(conn);
    this.stage.renderBanner();
    this.controls.render();
    this.renderPeople();
    this.updateStatus();
  }

  renderPeople() {
    const conn = this.conn;
    if (!conn || !conn.joined) return;
    this.panel.renderPeople(conn, {
      role: this.role,
      staff: this.staff,
      self: { mic: this.publisher.selfState("microphone"), camera: this.publisher.selfState("camera") },
    });
    this.status.renderCount(conn.counts?.total ?? conn.participants.size);
    if (this.view === "lobby") this.lobby.render(conn);
    this.audience.render();
  }

  /** Our own media changed: the toggles, the device check's preview, our tile. */
  renderLocal() {
    this.controls.renderToggles();
    // a "Turn camera on" / "Turn microphone on" toast has done its job once that is on
    if (this.publisher.selfState("camera") === "on") this.toasts.dismissWith("toast-camera-on");
    if (this.publisher.selfState("microphone") === "on") this.toasts.dismissWith("toast-mic-on");
    this.devices.renderPreview();
    this.audience.render();
    if (inRoom(this.conn)) {
      this.stage.renderSelf(this.local, {
        live: this.publisher.live.size > 0,
        micOff: this.publisher.selfState("microphone") === "off",
      });
    }
  }

  updateConnection() {
    this.status.renderConnection();
    this.updateStatus();
  }

  updateStatus() {
    if (!inRoom(this.conn)) {
      this.status.renderCount(null);
      return;
    }
    this.stage.renderStatus({ live: this.publisher.live.size > 0, sharing: Boolean(this.publisher.screen) });
  }

  /**
   * @param {string | (() => string)} text  a function when the text has values in it: it is
   *   asked again when the language changes
   * @param {ErrorAction | null} [action]
   */
  showError(text, action = null) {
    this.errorWords = typeof text === "function" ? text : null;
    byId("error-text").textContent = typeof text === "function" ? text() : text;
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

  /**
   * Say plainly what the server refused (or what failed).
   * @param {unknown} error
   */
  showFailure(error) {
    this.showError(() => errorText(error, this.context()));
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
const ready =
  (ACCESS === "open" && (!REGISTRATION_REQUIRED || room.credential !== null)) ||
  (ACCESS === "token" && room.credential !== null) ||
  room.prejoin.invited;
if (ENDED && PAGE_ROLE === "attendee") {
  // The event was ended for all before this page opened: say so, no form to fill in.
  room.showOver({ code: "ended", message: "" });
} else if (JOIN_TOKEN) {
  // A signed join token from the organiser's site names the person: in at once, no form.
  room.enter(/** @type {HTMLInputElement} */ (byId("prejoin-name")).value);
} else if (PAGE_ROLE === "attendee" && ready && want && want === EVENT_ID.replace(/\D/g, "") && savedName()) {
  room.enter(savedName());
}
