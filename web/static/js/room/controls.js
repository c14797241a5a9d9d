// The controls: the bar under the stage (microphone, camera, screen share, raise hand,
// Devices, Go live / Stop, mode, REC, people, Leave, End for all), the staff's tools in
// the people tab (next speaker, mute attendees, lock) and the actions on a person's row
// (with the remove dialog). What the media buttons do is publish.js's.

import { formatNumber, t } from "../i18n.js";
import { byId } from "../ui.js";

/** @typedef {import("./page.js").RoomContext} RoomContext */
/** @typedef {import("./page.js").Source} Source */
/** @typedef {import("./page.js").ParticipantInfo} ParticipantInfo */
/** @typedef {import("./page.js").WebinarConnection} WebinarConnection */

/**
 * @typedef {object} ControlsHooks
 * @property {() => void} updateStatus  the status line says whether we are live
 * @property {() => void} leave  the Leave button
 */

export class Controls {
  /**
   * @param {RoomContext} room
   * @param {import("./publish.js").Publisher} publisher
   * @param {ControlsHooks} hooks
   */
  constructor(room, publisher, hooks) {
    this.room = room;
    this.publisher = publisher;
    this.hooks = hooks;
    /** Whom the remove dialog is about. @type {ParticipantInfo | null} */
    this.removing = null;
    this.bind();
  }

  bind() {
    byId("mic-toggle").addEventListener("click", () => this.publisher.toggleSource("microphone"));
    byId("camera-toggle").addEventListener("click", () => this.publisher.toggleSource("camera"));
    byId("go-live").addEventListener("click", () => this.publisher.goLive());
    byId("stop-live").addEventListener("click", () => this.publisher.stopLive());
    byId("screen-share-toggle").addEventListener("click", () => this.publisher.toggleScreen());
    byId("leave").addEventListener("click", () => this.hooks.leave());
    byId("raise-hand").addEventListener("click", () => this.toggleHand());
    byId("start-event").addEventListener("click", () => this.startEvent());
    const select = /** @type {HTMLSelectElement} */ (byId("mode-select"));
    select.addEventListener("change", () => this.setMode(select));
    byId("next-speaker").addEventListener("click", () => this.command((conn) => conn.nextSpeaker()));
    byId("mute-attendees").addEventListener("click", async () => {
      if (await this.command((conn) => conn.muteAttendees())) {
        this.room.toasts.show(t("Every attendee's microphone is muted."), { key: "mute-all" });
      }
    });
    byId("lock-toggle").addEventListener("click", () => this.command((conn) => conn.lock(!conn.room?.locked)));
    byId("record-toggle").addEventListener("click", () =>
      this.command((conn) => conn.setRecording((conn.room?.recording ?? "off") === "off")),
    );
    byId("live-stream-toggle").addEventListener("click", () =>
      this.command((conn) => conn.setLiveStream((conn.room?.live_stream ?? "off") === "off")),
    );
    const endDialog = /** @type {HTMLDialogElement} */ (byId("end-dialog"));
    byId("end-for-all").addEventListener("click", () => {
      endDialog.returnValue = ""; // Escape keeps the last value otherwise
      endDialog.showModal();
      // focused from here, not with `autofocus`: a room framed by another site may not autofocus
      byId("end-dialog-cancel").focus();
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
          const text = ban
            ? t("{name} was removed and cannot join again.", { name: person.name })
            : t("{name} was removed.", { name: person.name });
          this.room.toasts.show(text, { key: "removed" });
        });
      }
    });
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
      this.room.showFailure(error);
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
      this.room.showFailure(error);
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
        this.room.toasts.show(t("Your hand is raised. A presenter will let you speak."), { key: "hand" });
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
        byId("remove-dialog-cancel").focus(); // the safe choice first (see the end dialog)
        break;
      }
    }
  }

  /** Which controls show, and their state: follows the role, the room and our grants. */
  render() {
    const conn = this.room.conn;
    const staff = this.room.staff;
    const me = conn?.me ?? null;
    const room = conn?.room ?? null;
    const mayMic = this.publisher.may("microphone") || Boolean(conn?.producerFor("microphone"));
    const mayCam = this.publisher.may("camera") || Boolean(conn?.producerFor("camera"));
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
    /** @type {HTMLElement} */ (hand.querySelector(".label")).textContent = raised ? t("Lower hand") : t("Raise hand");
    if (raised && conn) {
      const queue = [...conn.participants.values()].filter((p) => p.hand_raised != null).sort((a, b) => (a.hand_raised ?? 0) - (b.hand_raised ?? 0));
      const place = queue.findIndex((p) => p.participant_id === me?.participant_id) + 1;
      hand.title = t("Your hand is raised ({place} in the queue). Press to lower it.", { place: formatNumber(place) });
    } else {
      hand.title = t("Raise your hand to ask to speak");
    }
    const note = byId("listen-only-note");
    const listenOnly = !staff && Boolean(me?.listen_only) && room?.mode === "discussion";
    note.hidden = !listenOnly;
    note.textContent = listenOnly ? t("You joined when discussion was full, so you can listen but not speak.") : "";
    const select = /** @type {HTMLSelectElement} */ (byId("mode-select"));
    if (room && document.activeElement !== select) select.value = room.mode;
    const lock = byId("lock-toggle");
    lock.setAttribute("aria-pressed", String(Boolean(room?.locked)));
    lock.textContent = room?.locked ? t("Unlock room") : t("Lock room");
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
    // TRANSLATORS: the button that starts recording; "REC" as on a camera (keep it short)
    recButton.textContent = recording === "off" ? t("REC") : t("Stop recording");
  }

  /**
   * The live stream button and its state (the stream-out capability: host, presenter).
   * @param {string} phase
   * @param {string} status  "off", "on" or "paused"
   * @param {import("../protocol.js").LiveStreamOutput | null} output
   */
  renderLiveStream(phase, status, output) {
    const button = byId("live-stream-toggle");
    button.hidden = !this.room.staff || phase !== "live";
    button.setAttribute("aria-pressed", String(status !== "off"));
    button.textContent = status === "off" ? t("Stream out") : t("Stop the stream");
    const line = byId("live-stream-status");
    const state = status === "off" ? "off" : status === "paused" ? "paused" : (output?.state ?? "connecting");
    line.dataset.state = state;
    line.hidden = button.hidden || status === "off";
    if (state === "paused") line.textContent = t("Stream paused (backstage)");
    else if (state === "live")
      line.textContent = t("Streaming: {kbit} kbit/s", { kbit: formatNumber(output?.bitrate_kbit ?? 0) });
    else if (state === "reconnecting")
      line.textContent = output?.error
        ? t("Stream reconnecting: {error}", { error: output.error })
        : t("Stream reconnecting…");
    else if (state === "stopped")
      line.textContent = output?.error ? t("Stream stopped: {error}", { error: output.error }) : t("Stream stopped");
    else line.textContent = t("Stream connecting…");
  }

  renderToggles() {
    for (const [id, source] of /** @type {const} */ ([
      ["mic-toggle", "microphone"],
      ["camera-toggle", "camera"],
    ])) {
      const button = byId(id);
      const on = this.publisher.isOn(source);
      button.setAttribute("aria-pressed", String(on));
      const publishes = !this.room.staff && !this.room.conn?.producerFor(source);
      const camera = source === "camera";
      button.title = on
        ? camera
          ? t("Turn the camera off")
          : t("Turn the microphone off")
        : publishes
          ? camera
            ? t("Turn your camera on: everyone will see you")
            : t("Turn your microphone on: everyone will hear you")
          : camera
            ? t("Turn the camera on")
            : t("Turn the microphone on");
    }
  }

  /** Go live or Stop, the screen share button, the room's data-live. */
  updateLive() {
    // while reconnecting, what was live comes back by itself
    const resuming = this.room.conn?.state === "reconnecting" && (this.publisher.wanted.has("camera") || this.publisher.wanted.has("microphone"));
    const liveNow = this.publisher.live.size > 0 || resuming;
    const staff = this.room.staff;
    byId("go-live").hidden = !staff || liveNow;
    byId("stop-live").hidden = !staff || !liveNow;
    byId("room").dataset.live = String(liveNow);
    const share = byId("screen-share-toggle");
    share.setAttribute("aria-pressed", String(Boolean(this.publisher.screen)));
    /** @type {HTMLElement} */ (share.querySelector(".label")).textContent = this.publisher.screen ? t("Stop sharing") : t("Share screen");
    this.renderToggles();
    this.hooks.updateStatus();
  }
}
