// Camera and microphone: the local media, the presenters' device check on the prejoin
// view (preview, level meter, on/off when entering, retry), the device choice (which
// moves into the room's Devices menu after joining) and what to say when a device fails.

import { formatNumber, t } from "../i18n.js";
import { LevelMeter, LocalMedia, listDevices, mediaErrorMessage } from "../media.js";
import { byId, initials } from "../ui.js";

/** @typedef {import("./page.js").RoomContext} RoomContext */
/** @typedef {"audio" | "video"} Kind */

/** @param {string} kind  "audio", "video" or "both" @returns {import("../media.js").DeviceWhat} */
function deviceOf(kind) {
  return kind === "video" ? "camera" : kind === "audio" ? "microphone" : "both";
}

/** What went wrong, one sentence per failure. @param {{kind: string, error: unknown}[]} failures */
function failureText(failures) {
  return failures.map((f) => mediaErrorMessage(f.error, deviceOf(f.kind))).join(" ");
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
    /** The device failures the device check shows (said again when the language changes). @type {{kind: string, error: unknown}[]} */
    this.failures = [];
    /** The device lists were filled (until then they say "Not started"). */
    this.listed = false;
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
      room.toasts.show(kind === "video" ? t("Your camera stopped working.") : t("Your microphone stopped working."), { kind: "warn" });
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
    if (note) note.textContent = t("Starting your camera…");
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
    if (this.room.view === "prejoin" && box) {
      box.hidden = !failures.length;
      this.failures = failures;
      this.renderFailures();
      return;
    }
    if (failures.length) this.room.showError(() => failureText(failures));
  }

  /** The device check's message: what failed, and that entering works anyway. */
  renderFailures() {
    const failures = this.failures;
    if (!failures.length) return;
    // the sentences stay apart: each is whole in itself
    const still = this.local.live.length ? t("You can still enter.") : t("You can still enter without them.");
    byId("device-message-text").textContent = failureText(failures) + " " + still;
  }

  /** The language changed: the device check and the device lists say it again. */
  relabel() {
    if (this.room.view === "prejoin") this.renderFailures();
    if (this.listed) this.fillDevices();
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
        ? t("No camera")
        : local.cameraOn
          ? ""
          : t("You will enter with your camera off");
      const mic = byId("precheck-mic");
      mic.setAttribute("aria-pressed", String(local.micOn));
      mic.setAttribute("aria-label", local.micOn ? t("Microphone on when I enter") : t("Microphone off when I enter"));
      mic.title = local.micOn
        ? t("Microphone on when you enter: click to switch it off")
        : t("Microphone off when you enter: click to switch it on");
      const camera = byId("precheck-camera");
      camera.setAttribute("aria-pressed", String(local.cameraOn));
      camera.setAttribute("aria-label", local.cameraOn ? t("Camera on when I enter") : t("Camera off when I enter"));
      camera.title = local.cameraOn
        ? t("Camera on when you enter: click to switch it off")
        : t("Camera off when you enter: click to switch it on");
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
      this.room.showError(() => mediaErrorMessage(error, kind === "video" ? "camera" : "microphone"));
    }
    this.onChange();
  }

  async fillDevices() {
    const local = this.local;
    const devices = await listDevices().catch(() => ({ video: [], audio: [] }));
    this.listed = true;
    for (const [id, kind] of /** @type {const} */ ([
      ["camera-select", "video"],
      ["mic-select", "audio"],
    ])) {
      const select = /** @type {HTMLSelectElement | null} */ (document.getElementById(id));
      if (!select) continue;
      const list = devices[kind];
      const current = local.currentDevice(kind);
      /** A device without a name (no permission yet): "Camera 2". @param {number} n */
      const unnamed = (n) =>
        kind === "video" ? t("Camera {number}", { number: formatNumber(n) }) : t("Microphone {number}", { number: formatNumber(n) });
      select.replaceChildren(
        ...list.map((d, i) => {
          const option = new Option(d.label || unnamed(i + 1), d.deviceId);
          option.selected = d.deviceId === current;
          return option;
        }),
      );
      if (!list.length) select.append(new Option(kind === "video" ? t("No camera found") : t("No microphone found"), ""));
      select.disabled = list.length === 0;
    }
  }
}
