// Camera and microphone: the local media, the presenters' device check on the prejoin
// view (preview, level meter, on/off when entering, retry), the device choice (which
// moves into the room's Devices menu after joining) and what to say when a device fails.

import { LevelMeter, LocalMedia, listDevices, mediaErrorMessage } from "../media.js";
import { byId, initials } from "../ui.js";

/** @typedef {import("./page.js").RoomContext} RoomContext */
/** @typedef {"audio" | "video"} Kind */

/** @param {string} kind */
function deviceWords(kind) {
  return kind === "video" ? "camera" : kind === "audio" ? "microphone" : "camera and microphone";
}

export class Devices {
  /**
   * @param {RoomContext} room
   * @param {() => void} onChange  the local media changed (a device started, stopped, or
   *   was switched on or off or to another one)
   */
  constructor(room, onChange) {
    this.room = room;
    this.onChange = onChange;
    this.local = new LocalMedia();
    this.meter = new LevelMeter((level) => this.renderLevel(level));
    this.levelShown = -1;
    for (const [id, kind] of /** @type {const} */ ([
      ["camera-select", "video"],
      ["mic-select", "audio"],
    ])) {
      const select = /** @type {HTMLSelectElement} */ (byId(id));
      select.addEventListener("change", () => this.switchDevice(kind, select.value));
    }
    this.local.addEventListener("change", () => onChange());
    this.local.addEventListener("ended", (event) => {
      const { kind } = /** @type {CustomEvent} */ (event).detail;
      if (room.leaving || !room.conn) return;
      room.toasts.show(`Your ${kind === "video" ? "camera" : "microphone"} stopped working.`, { kind: "warn" });
    });
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.fillDevices());
  }

  /** The presenters' device check (their prejoin view has it): bind it, start the preview. */
  startDeviceCheck() {
    byId("precheck-mic").addEventListener("click", () => this.precheckToggle("audio"));
    byId("precheck-camera").addEventListener("click", () => this.precheckToggle("video"));
    byId("device-retry").addEventListener("click", () => this.startPreview());
    this.startPreview();
  }

  /** @param {Kind} kind */
  async precheckToggle(kind) {
    const on = kind === "video" ? this.local.cameraOn : this.local.micOn;
    if (!on) await this.ensure(kind);
    this.local.setEnabled(kind, !on);
  }

  /** Start camera and microphone for the preview (the device check, or after a rejoin). */
  async startPreview() {
    const note = document.getElementById("preview-note");
    if (note) note.textContent = "Starting your camera…";
    const failures = await this.local.start();
    this.reportFailures(failures);
    this.onChange();
    await this.fillDevices();
    return failures;
  }

  /**
   * Start this kind of device if it is not running; say so when it fails.
   * @param {Kind} kind
   */
  async start(kind) {
    if (this.local.has(kind)) return;
    this.reportFailures(await this.local.start({ video: kind === "video", audio: kind === "audio" }));
  }

  /**
   * Start this kind of device if it is not running, then list the devices (their
   * names are known once one runs).
   * @param {Kind} kind
   */
  async ensure(kind) {
    if (this.local.has(kind)) return;
    await this.start(kind);
    await this.fillDevices();
  }

  /**
   * Start camera and microphone if not both run (Go live).
   */
  async ensureBoth() {
    if (this.local.live.length >= 2) return;
    this.reportFailures(await this.local.start());
    await this.fillDevices();
  }

  /** @param {{kind: string, error: unknown}[]} failures */
  reportFailures(failures) {
    const box = document.getElementById("device-message");
    const text = failures.map((f) => mediaErrorMessage(f.error, deviceWords(f.kind))).join(" ");
    if (this.room.view === "prejoin" && box) {
      box.hidden = !failures.length;
      if (failures.length) {
        byId("device-message-text").textContent =
          `${text} You can still enter${this.local.live.length ? "" : " without them"}.`;
      }
      return;
    }
    if (failures.length) this.room.showError(text);
  }

  /** @param {number} level */
  renderLevel(level) {
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

  /** The device check's preview and on/off buttons; the level meter follows the microphone. */
  renderPreview() {
    const local = this.local;
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
  }

  /** After joining, the device choice moves into the room's Devices menu. */
  moveToSettings() {
    const fields = document.getElementById("device-fields");
    if (fields && fields.parentElement !== byId("settings-panel")) byId("settings-panel").append(fields);
  }

  /** Stop camera and microphone (their lights go off) and the level meter. */
  stop() {
    this.local.stop();
    this.meter.detach();
  }

  /**
   * Another camera or microphone chosen: it replaces the one sent, if live.
   * @param {Kind} kind
   * @param {string} deviceId
   */
  async switchDevice(kind, deviceId) {
    const local = this.local;
    const conn = this.room.conn;
    if (!deviceId) return;
    try {
      const { track } = await local.switchDevice(kind, deviceId);
      const producer = conn?.producerFor(kind === "video" ? "camera" : "microphone");
      if (producer && conn) await conn.replaceTrack(producer.producer_id, track);
    } catch (error) {
      this.room.showError(mediaErrorMessage(error, kind === "video" ? "camera" : "microphone"));
    }
    this.onChange();
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
}
