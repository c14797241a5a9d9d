// Local media: camera and microphone with device choice, a microphone level meter,
// screen capture.

import { t } from "./i18n.js";
import { recall, remember } from "./ui.js";

const DEVICE_KEY = { audio: "webinar.micDevice", video: "webinar.cameraDevice" };

/** @type {MediaTrackConstraints} */
const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
/** @type {MediaTrackConstraints} */
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/** Errors that mean "this kind of device cannot be used", worth retrying the other kind alone. */
const PER_DEVICE_ERRORS = new Set(["NotFoundError", "OverconstrainedError", "NotReadableError", "AbortError"]);

/** @typedef {"camera" | "microphone" | "both" | "screen"} DeviceWhat  "both": camera and microphone */

/**
 * A sentence for a getUserMedia/getDisplayMedia failure (a sentence per device: other
 * languages change the words around the device's name).
 * @param {unknown} error
 * @param {DeviceWhat} what
 */
export function mediaErrorMessage(error, what) {
  const name = error instanceof Error ? error.name : "";
  /** @param {{camera: string, microphone: string, both: string, screen: string}} texts */
  const pick = (texts) => texts[what];
  switch (name) {
    case "NotAllowedError":
      return pick({
        camera: t("Permission to use your camera was denied. Allow it in your browser's site settings, then try again."),
        microphone: t("Permission to use your microphone was denied. Allow it in your browser's site settings, then try again."),
        both: t("Permission to use your camera and microphone was denied. Allow it in your browser's site settings, then try again."),
        screen: t("Screen sharing was not allowed."),
      });
    case "NotFoundError":
      return pick({
        camera: t("No camera was found. Connect one and try again."),
        microphone: t("No microphone was found. Connect one and try again."),
        both: t("No camera and microphone was found. Connect one and try again."),
        screen: t("No screen was found. Connect one and try again."),
      });
    case "NotReadableError":
    case "AbortError":
      return pick({
        camera: t("Your camera could not be started; another application may be using it."),
        microphone: t("Your microphone could not be started; another application may be using it."),
        both: t("Your camera and microphone could not be started; another application may be using it."),
        screen: t("Your screen could not be started; another application may be using it."),
      });
    case "OverconstrainedError":
      return pick({
        camera: t("The selected camera is not available any more."),
        microphone: t("The selected microphone is not available any more."),
        both: t("The selected camera and microphone is not available any more."),
        screen: t("The selected screen is not available any more."),
      });
    case "SecurityError":
    case "TypeError":
      return pick({
        camera: t("Using your camera needs a secure (https) connection."),
        microphone: t("Using your microphone needs a secure (https) connection."),
        both: t("Using your camera and microphone needs a secure (https) connection."),
        screen: t("Using your screen needs a secure (https) connection."),
      });
    default: {
      // {detail} is the browser's own message
      const detail = error instanceof Error ? error.message : String(error);
      return pick({
        camera: t("Your camera could not be used: {detail}", { detail }),
        microphone: t("Your microphone could not be used: {detail}", { detail }),
        both: t("Your camera and microphone could not be used: {detail}", { detail }),
        screen: t("Your screen could not be used: {detail}", { detail }),
      });
    }
  }
}

/** @param {"audio" | "video"} kind */
function storedDevice(kind) {
  return recall(DEVICE_KEY[kind]) || "";
}

/**
 * @param {"audio" | "video"} kind
 * @param {string} deviceId
 */
function storeDevice(kind, deviceId) {
  remember(DEVICE_KEY[kind], deviceId);
}

/**
 * @param {"audio" | "video"} kind
 * @param {string} deviceId
 * @param {boolean} exact
 * @returns {MediaTrackConstraints}
 */
function constraints(kind, deviceId, exact) {
  const base = kind === "video" ? VIDEO : AUDIO;
  if (!deviceId) return { ...base };
  return { ...base, deviceId: exact ? { exact: deviceId } : { ideal: deviceId } };
}

/** Is capture possible at all here (secure context, API present)? */
export function mediaAvailable() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

/**
 * The presenter's camera and microphone. `stream` always holds the current tracks
 * (the preview plays it); toggles survive a change of device.
 */
export class LocalMedia extends EventTarget {
  constructor() {
    super();
    this.stream = new MediaStream();
    /** @type {MediaStreamTrack | null} */
    this.audio = null;
    /** @type {MediaStreamTrack | null} */
    this.video = null;
    this.micOn = true;
    this.cameraOn = true;
  }

  /** Tracks that are still running. */
  get live() {
    return [this.video, this.audio].filter((t) => t && t.readyState === "live");
  }

  /**
   * Start camera and microphone (or only the kinds asked for); a kind that fails is left out.
   * @param {{video?: boolean, audio?: boolean}} [kinds]
   * @returns {Promise<{kind: "audio" | "video" | "both", error: unknown}[]>}  what failed
   */
  async start({ video = true, audio = true } = {}) {
    if (!mediaAvailable()) {
      const error = new DOMException("no media devices API", "SecurityError"); // i18n-ignore
      return [{ kind: video && audio ? "both" : video ? "video" : "audio", error }];
    }
    /** @type {{kind: "audio" | "video" | "both", error: unknown}[]} */
    const failures = [];
    const wantVideo = video && (!this.video || this.video.readyState !== "live");
    const wantAudio = audio && (!this.audio || this.audio.readyState !== "live");
    if (!wantVideo && !wantAudio) return failures;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: wantVideo ? constraints("video", storedDevice("video"), false) : false,
        audio: wantAudio ? constraints("audio", storedDevice("audio"), false) : false,
      });
      for (const track of stream.getTracks()) this._adopt(track);
      return failures;
    } catch (error) {
      const name = error instanceof Error ? error.name : "";
      if (!PER_DEVICE_ERRORS.has(name) || !(wantVideo && wantAudio)) {
        failures.push({ kind: wantVideo && wantAudio ? "both" : wantVideo ? "video" : "audio", error });
        return failures;
      }
    }
    // One of the two is missing or busy: try each alone.
    for (const kind of /** @type {const} */ (["video", "audio"])) {
      if (kind === "video" ? !wantVideo : !wantAudio) continue;
      try {
        const stream = await navigator.mediaDevices.getUserMedia({
          [kind]: constraints(kind, storedDevice(kind), false),
        });
        for (const track of stream.getTracks()) this._adopt(track);
      } catch (error) {
        failures.push({ kind, error });
      }
    }
    return failures;
  }

  /**
   * Switch to another device of one kind; returns the new and the old track
   * (the old one is stopped already).
   * @param {"audio" | "video"} kind
   * @param {string} deviceId
   */
  async switchDevice(kind, deviceId) {
    const old = kind === "video" ? this.video : this.audio;
    // Some devices cannot be opened twice: release the old one first.
    if (old) old.stop();
    const stream = await navigator.mediaDevices.getUserMedia({ [kind]: constraints(kind, deviceId, true) });
    const track = stream.getTracks()[0];
    storeDevice(kind, deviceId);
    this._adopt(track);
    return { track, old };
  }

  /** @param {MediaStreamTrack} track */
  _adopt(track) {
    const kind = /** @type {"audio" | "video"} */ (track.kind);
    const old = kind === "video" ? this.video : this.audio;
    if (old) {
      this.stream.removeTrack(old);
      if (old !== track) old.stop();
    }
    track.enabled = kind === "video" ? this.cameraOn : this.micOn;
    if (kind === "video") this.video = track;
    else this.audio = track;
    this.stream.addTrack(track);
    track.addEventListener("ended", () => this.dispatchEvent(new CustomEvent("ended", { detail: { kind, track } })));
    this.dispatchEvent(new CustomEvent("change"));
  }

  /**
   * @param {"audio" | "video"} kind
   * @param {boolean} on
   */
  setEnabled(kind, on) {
    if (kind === "video") {
      this.cameraOn = on;
      if (this.video) this.video.enabled = on;
    } else {
      this.micOn = on;
      if (this.audio) this.audio.enabled = on;
    }
    this.dispatchEvent(new CustomEvent("change"));
  }

  /** The device in use for a kind, if known. @param {"audio" | "video"} kind */
  currentDevice(kind) {
    const track = kind === "video" ? this.video : this.audio;
    return track?.getSettings().deviceId || storedDevice(kind);
  }

  /** Is a track of this kind running? @param {"audio" | "video"} kind */
  has(kind) {
    const track = kind === "video" ? this.video : this.audio;
    return Boolean(track && track.readyState === "live");
  }

  /** Stop and forget the track of one kind. @param {"audio" | "video"} kind */
  stopKind(kind) {
    const track = kind === "video" ? this.video : this.audio;
    if (!track) return;
    track.stop();
    this.stream.removeTrack(track);
    if (kind === "video") this.video = null;
    else this.audio = null;
    this.dispatchEvent(new CustomEvent("change"));
  }

  /** Stop and forget both tracks. */
  stop() {
    for (const track of [this.video, this.audio]) {
      if (track) {
        track.stop();
        this.stream.removeTrack(track);
      }
    }
    this.video = this.audio = null;
    this.dispatchEvent(new CustomEvent("change"));
  }
}

/** Cameras and microphones, labelled once permission was given. */
export async function listDevices() {
  if (!navigator.mediaDevices?.enumerateDevices) return { video: [], audio: [] };
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    video: devices.filter((d) => d.kind === "videoinput" && d.deviceId),
    audio: devices.filter((d) => d.kind === "audioinput" && d.deviceId),
  };
}

/** Ask the user for a screen (or window, or tab), with its audio when offered. */
export async function captureScreen() {
  if (!navigator.mediaDevices?.getDisplayMedia) {
    // shown to people (mediaErrorMessage says "Your screen could not be used: …")
    throw new DOMException(t("screen capture is not supported"), "NotSupportedError");
  }
  return navigator.mediaDevices.getDisplayMedia({
    video: { frameRate: { ideal: 15, max: 30 } },
    audio: true,
  });
}

/**
 * The loudness of a microphone track (WebAudio AnalyserNode), 0..1, for a level meter.
 * `onLevel` is called about 20 times a second while the meter runs.
 */
export class LevelMeter {
  /** @param {(level: number) => void} onLevel */
  constructor(onLevel) {
    this.onLevel = onLevel;
    /** @type {AudioContext | null} */
    this.context = null;
    /** @type {MediaStreamAudioSourceNode | null} */
    this.source = null;
    /** @type {AnalyserNode | null} */
    this.analyser = null;
    /** @type {Float32Array<ArrayBuffer> | null} */
    this.samples = null;
    this.timer = 0;
    this.level = 0;
    /** @type {MediaStreamTrack | null} */
    this.track = null;
    this._resume = () => {
      this.context?.resume().catch(() => {});
    };
  }

  /** Measure this track (null stops measuring). @param {MediaStreamTrack | null} track */
  attach(track) {
    if (track === this.track) return;
    this.detach();
    if (!track || typeof AudioContext === "undefined") return;
    this.track = track;
    if (!this.context || this.context.state === "closed") {
      this.context = new AudioContext();
      // Browsers may start it suspended until the page gets a click or key press.
      document.addEventListener("pointerdown", this._resume, { capture: true });
      document.addEventListener("keydown", this._resume, { capture: true });
    }
    this._resume();
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 1024;
    this.analyser.smoothingTimeConstant = 0.3;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
    this.timer = window.setInterval(() => this._tick(), 50);
  }

  _tick() {
    const { analyser, samples, track } = this;
    if (!analyser || !samples) return;
    let level = 0;
    if (track && track.enabled && track.readyState === "live") {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const v of samples) sum += v * v;
      const rms = Math.sqrt(sum / samples.length);
      // -60 dBFS .. 0 dBFS onto 0..1: speech sits in the middle
      const db = 20 * Math.log10(rms || 1e-8);
      level = Math.min(1, Math.max(0, (db + 60) / 60));
    }
    // fall slowly, rise at once: easier to read
    this.level = level > this.level ? level : this.level * 0.85 + level * 0.15;
    this.onLevel(this.level);
  }

  detach() {
    window.clearInterval(this.timer);
    this.timer = 0;
    this.source?.disconnect();
    this.analyser?.disconnect();
    this.source = this.analyser = null;
    this.samples = null;
    this.track = null;
    this.level = 0;
    this.onLevel(0);
  }

  /** Stop for good: release the audio context. */
  close() {
    this.detach();
    document.removeEventListener("pointerdown", this._resume, { capture: true });
    document.removeEventListener("keydown", this._resume, { capture: true });
    this.context?.close().catch(() => {});
    this.context = null;
  }
}
