// The shared video on stage: an uploaded MP4/WebM, a YouTube or a Vimeo video that the
// presenter plays for everyone (docs/protocol.md, "Stage"; the `video` of each `stage`).
//
// The server keeps the video's state — playing or paused, the position at a server time
// `at`, the rate — and every page computes where the video should be now:
// `position + (serverNow() - at) * rate` while it plays. Every SYNC_MS each page compares its
// player with that and corrects: more than HARD_DRIFT s off → jump there; 0.25–1 s off → play
// 5 % slower or faster until within 0.1 s (an uploaded file; the embedded players have no fine
// rate control, so they jump at EMBED_DRIFT instead). Late joiners start at the current
// position; attendees cannot seek (a seek of theirs snaps back), but they set their own volume,
// mute and go full screen. Presenters and hosts get play, pause, a seek bar and stop, which
// send `video-control` / `video-stop`; their own player follows the state the server sends
// back like everyone's, so what they see is what attendees see.
//
// Browsers refuse to start a video with sound before the person has interacted with the
// page: then the video starts muted and a large "Unmute video" button sits over it.
//
// YouTube and Vimeo are embedded as iframes and driven by postMessage only (no third-party
// scripts: the CSP forbids them): YouTube's widget protocol (`enablejsapi=1`, `{"event":
// "command","func":…}`, `infoDelivery` after `{"event":"listening"}`), Vimeo's player
// protocol (`{"method":"play"}`, `playProgress` events).
//
// Draws only inside #shared-video-view (its markup is in room.html).

import { onLanguage, setText, t } from "../i18n.js";
import { byId, el, errorText, setBusy } from "../ui.js";

/** @typedef {import("./content.js").StageContent} StageContent */
/** @typedef {import("./content.js").StageState} StageState */
/** @typedef {import("../ui.js").Toasts} Toasts */

/**
 * @typedef {object} VideoState  the stage's `video` (docs/protocol.md, "Stage")
 * @property {string} video_id
 * @property {"file" | "youtube" | "vimeo"} kind
 * @property {string} name
 * @property {string} src  a content URL of this event (file) or the provider's embed URL
 * @property {boolean} playing
 * @property {number} position  seconds, at the server time `at`
 * @property {number} at  server Unix seconds
 * @property {number} rate
 */

/** How often players are compared with the shared position (ms). */
export const SYNC_MS = 500;
/** Further off than this (s): jump to the shared position. */
export const HARD_DRIFT = 1.0;
/** Further off than this (s): play a little slower or faster … */
export const NUDGE_FROM = 0.25;
/** … until within this (s). */
export const NUDGE_UNTIL = 0.1;
/** How much slower or faster (a fraction of the rate). */
export const NUDGE = 0.05;
/** The embedded players (no fine rate control) jump when further off than this (s). */
export const EMBED_DRIFT = 0.75;
/** A paused player further off than this (s) from the paused position jumps there … */
export const PAUSED_DRIFT = 0.1;
/** … an embedded one (which reports its position less exactly) further than this. */
export const EMBED_PAUSED_DRIFT = 0.5;
/** A video we shared starts when our player is ready, or after this long (ms). */
const AUTO_PLAY_WAIT_MS = 3000;
/** How long an embedded player may take to start playing before we call it refused (ms). */
const EMBED_PLAY_WAIT_MS = 4000;

/**
 * Where the shared video should be at the server time `now` (seconds; never below 0, never
 * past the end when the duration is known).
 * @param {Pick<VideoState, "playing" | "position" | "at" | "rate">} video
 * @param {number} now  server Unix seconds
 * @param {number | null} [duration]
 */
export function sharedPosition(video, now, duration = null) {
  const rate = typeof video.rate === "number" && video.rate > 0 ? video.rate : 1;
  let position = video.position + (video.playing ? Math.max(0, now - video.at) * rate : 0);
  if (duration !== null && Number.isFinite(duration) && duration > 0) position = Math.min(position, duration);
  return Math.max(0, position);
}

/**
 * What a playing player should do, being at `local` when it should be at `target`.
 * @param {number} local  the player's position (s)
 * @param {number} target  the shared position (s)
 * @param {{ rate: number, current: number, canNudge: boolean }} how  the shared rate; the
 *   playback rate the player has now (a nudge in progress is kept until it is close enough);
 *   whether the player can play at 0.95/1.05
 * @returns {{ seek: number | null, rate: number }}  where to jump (null: stay), the playback rate
 */
export function correction(local, target, { rate, current, canNudge }) {
  const drift = local - target;
  const off = Math.abs(drift);
  if (!canNudge) return { seek: off > EMBED_DRIFT ? target : null, rate };
  if (off > HARD_DRIFT) return { seek: target, rate };
  if (off > NUDGE_FROM) return { seek: null, rate: rate * (drift > 0 ? 1 - NUDGE : 1 + NUDGE) };
  if (off < NUDGE_UNTIL) return { seek: null, rate };
  // between: finish a nudge that is under way, start none
  const nudging = Math.abs(current - rate) > 1e-6;
  return { seek: null, rate: nudging ? rate * (drift > 0 ? 1 - NUDGE : 1 + NUDGE) : rate };
}

/**
 * "1:05", "1:02:03".
 * @param {number | null} seconds
 */
export function clock(seconds) {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return "0:00";
  const whole = Math.floor(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** An error that says the browser refused to start playing (like play()'s). */
function refused() {
  return new DOMException("play() refused", "NotAllowedError"); // i18n-ignore
}

// ---------------------------------------------------------------------------------- players

/**
 * One player of the shared video: an uploaded file in a <video>, or an embedded player.
 * @typedef {object} Player
 * @property {HTMLElement} element  what is shown (data-testid="shared-video")
 * @property {boolean} canNudge  can play at 0.95/1.05 of the rate
 * @property {() => boolean} ready  knows its position and can seek
 * @property {() => number | null} time  its position (s)
 * @property {() => number | null} duration
 * @property {() => boolean} paused
 * @property {() => boolean} ended  stopped at its end (play() would start it again from 0)
 * @property {() => boolean} seeking  a jump is under way (its position is not settled)
 * @property {() => Promise<void>} play  rejects with a NotAllowedError when the browser refuses
 * @property {() => void} pause
 * @property {(seconds: number) => void} seek
 * @property {(rate: number) => void} setRate
 * @property {() => number} rate
 * @property {(muted: boolean) => void} setMuted
 * @property {(volume: number) => void} setVolume  0..1
 * @property {() => void} destroy
 */

/**
 * What a player tells the controller.
 * @typedef {object} PlayerEvents
 * @property {() => void} changed  it became ready, played, paused or moved: look again now
 * @property {() => void} userSeek  someone moved it who was not us (an attendee seeking)
 * @property {(reason: "load" | "embed") => void} failed
 */

/** An uploaded MP4 or WebM in a <video>. @implements {Player} */
export class FilePlayer {
  /**
   * @param {string} url
   * @param {PlayerEvents} events
   */
  constructor(url, events) {
    this.canNudge = true;
    this.url = url;
    this.events = events;
    /** Where we last told it to go (a seek elsewhere is someone else's). */
    this.ownTarget = /** @type {number | null} */ (null);
    const video = /** @type {HTMLVideoElement} */ (
      el("video", { class: "shared-video", "data-testid": "shared-video", "data-kind": "file", playsinline: true, preload: "auto" })
    );
    video.controls = false;
    // No "Show controls" from the context menu: attendees seek through nothing but the state.
    video.addEventListener("contextmenu", (event) => event.preventDefault());
    for (const type of ["loadedmetadata", "play", "pause", "ended", "seeked"]) {
      video.addEventListener(type, () => events.changed());
    }
    video.addEventListener("seeking", () => {
      const own = this.ownTarget !== null && Math.abs(video.currentTime - this.ownTarget) < 0.05;
      if (!own) events.userSeek();
    });
    video.addEventListener("error", () => events.failed("load"));
    video.src = url;
    this.video = video;
    this.element = video;
  }

  ready() {
    return this.video.readyState >= HTMLMediaElement.HAVE_METADATA;
  }

  time() {
    return this.ready() ? this.video.currentTime : null;
  }

  duration() {
    const d = this.video.duration;
    return Number.isFinite(d) && d > 0 ? d : null;
  }

  paused() {
    return this.video.paused;
  }

  ended() {
    return this.video.ended;
  }

  seeking() {
    return this.video.seeking;
  }

  play() {
    return this.video.play();
  }

  pause() {
    this.video.pause();
  }

  /** @param {number} seconds */
  seek(seconds) {
    this.ownTarget = seconds;
    this.video.currentTime = seconds;
  }

  /** @param {number} rate */
  setRate(rate) {
    if (Math.abs(this.video.playbackRate - rate) > 1e-6) this.video.playbackRate = rate;
  }

  rate() {
    return this.video.playbackRate;
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    this.video.muted = muted;
  }

  /** @param {number} volume */
  setVolume(volume) {
    this.video.volume = Math.min(1, Math.max(0, volume));
  }

  destroy() {
    this.video.pause();
    this.video.removeAttribute("src");
    this.video.load(); // lets go of the connection and the decoder
    this.video.remove();
  }
}

/**
 * The embed URL we load: the server's, with what postMessage control needs.
 * @param {"youtube" | "vimeo"} kind
 * @param {string} src
 * @param {string} origin  this page's origin
 */
export function embedUrl(kind, src, origin) {
  const url = new URL(src, origin);
  const params = url.searchParams;
  if (kind === "youtube") {
    params.set("enablejsapi", "1");
    params.set("origin", origin); // YouTube answers postMessages to this origin only
    params.set("controls", "0"); // everyone uses our bar: attendees cannot seek or pause
    params.set("disablekb", "1");
    params.set("playsinline", "1");
    params.set("rel", "0");
    params.set("iv_load_policy", "3");
  } else {
    params.set("autopause", "0"); // another Vimeo player starting does not pause this one
    params.set("keyboard", "0");
    params.set("controls", "0");
    params.set("playsinline", "1");
    params.set("dnt", "1");
  }
  return url.href;
}

/**
 * A message from an embedded player (a JSON string or an object), or null.
 * @param {unknown} data
 * @returns {Record<string, any> | null}
 */
export function parseEmbedMessage(data) {
  if (typeof data === "string") {
    try {
      const parsed = JSON.parse(data);
      return parsed && typeof parsed === "object" ? parsed : null;
    } catch {
      return null;
    }
  }
  return data && typeof data === "object" ? /** @type {Record<string, any>} */ (data) : null;
}

/** What embedded players share: the iframe, its messages, the position they report. */
class EmbedPlayer {
  /**
   * @param {"youtube" | "vimeo"} kind
   * @param {string} src  the server's embed URL
   * @param {string} title
   * @param {PlayerEvents} events
   */
  constructor(kind, src, title, events) {
    this.kind = kind;
    this.canNudge = false;
    this.events = events;
    const url = embedUrl(kind, src, location.origin);
    this.origin = new URL(url).origin;
    const iframe = /** @type {HTMLIFrameElement} */ (
      el("iframe", {
        class: "shared-video",
        "data-testid": "shared-video",
        "data-kind": kind,
        title,
        allow: "autoplay; fullscreen; picture-in-picture; encrypted-media", // i18n-ignore
        allowfullscreen: true,
        // The page's own policy sends no referrer across origins; the players need the origin.
        referrerpolicy: "strict-origin-when-cross-origin",
        src: url,
      })
    );
    this.iframe = iframe;
    this.element = iframe;
    /** The last position the player reported, and when (performance.now()). */
    this.reported = /** @type {number | null} */ (null);
    this.reportedAt = 0;
    this.total = /** @type {number | null} */ (null);
    this.isPlaying = false;
    this.isEnded = false;
    this.isReady = false;
    this.mutedNow = false;
    /** When we last jumped (performance.now()), and where to. */
    this.seekAt = -Infinity;
    this.seekTarget = /** @type {number | null} */ (null);
    /** @type {{ resolve: (value?: any) => void, reject: (e: Error) => void, timer: number } | null} */
    this.pendingPlay = null;
    this.onMessage = (/** @type {MessageEvent} */ event) => {
      if (event.source !== iframe.contentWindow || event.origin !== this.origin) return;
      const message = parseEmbedMessage(event.data);
      if (message) this.receive(message);
    };
    window.addEventListener("message", this.onMessage);
  }

  /** @param {Record<string, any>} _message */
  receive(_message) {}

  /** @param {unknown} message */
  post(message) {
    this.iframe.contentWindow?.postMessage(message, this.origin);
  }

  /**
   * The player reports a position.
   * @param {number} seconds
   */
  report(seconds) {
    if (!Number.isFinite(seconds)) return;
    // a report from before our jump landed says where it was, not where it is
    if (this.seekTarget !== null && performance.now() - this.seekAt < 1500 && Math.abs(seconds - this.seekTarget) > 1.5) return;
    this.reported = seconds;
    this.reportedAt = performance.now();
  }

  /** @param {boolean} playing */
  setPlaying(playing) {
    const was = this.isPlaying;
    this.isPlaying = playing;
    if (playing) this.isEnded = false;
    if (playing && this.pendingPlay) {
      clearTimeout(this.pendingPlay.timer);
      this.pendingPlay.resolve();
      this.pendingPlay = null;
    }
    if (was !== playing) this.events.changed();
  }

  ready() {
    return this.isReady && this.reported !== null;
  }

  time() {
    if (this.reported === null) return null;
    const since = this.isPlaying ? (performance.now() - this.reportedAt) / 1000 : 0;
    const now = this.reported + since;
    return this.total !== null ? Math.min(now, this.total) : now;
  }

  duration() {
    return this.total;
  }

  paused() {
    return !this.isPlaying;
  }

  ended() {
    return this.isEnded;
  }

  seeking() {
    return performance.now() - this.seekAt < 700;
  }

  /** Ask the player to play; true once it plays, NotAllowedError when it does not start. */
  play() {
    if (this.isPlaying) return Promise.resolve();
    if (this.pendingPlay) {
      this.sendPlay();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.pendingPlay = null;
        reject(refused());
      }, EMBED_PLAY_WAIT_MS);
      this.pendingPlay = { resolve, reject, timer };
      this.sendPlay();
    });
  }

  /** The player said the browser refused to play. */
  playRefused() {
    if (!this.pendingPlay) return;
    clearTimeout(this.pendingPlay.timer);
    this.pendingPlay.reject(refused());
    this.pendingPlay = null;
  }

  sendPlay() {}

  pause() {}

  /** @param {number} seconds */
  seek(seconds) {
    this.isEnded = false;
    this.seekAt = performance.now();
    this.seekTarget = seconds;
    this.reported = seconds;
    this.reportedAt = performance.now();
  }

  /** @param {number} _rate */
  setRate(_rate) {}

  rate() {
    return 1;
  }

  /** @param {boolean} _muted */
  setMuted(_muted) {}

  /** @param {number} _volume */
  setVolume(_volume) {}

  destroy() {
    window.removeEventListener("message", this.onMessage);
    if (this.pendingPlay) clearTimeout(this.pendingPlay.timer);
    this.pendingPlay = null;
    this.iframe.remove();
  }
}

/** YouTube's iframe, driven by its widget protocol. @implements {Player} */
export class YouTubePlayer extends EmbedPlayer {
  /**
   * @param {string} src
   * @param {string} title
   * @param {PlayerEvents} events
   */
  constructor(src, title, events) {
    super("youtube", src, title, events);
    this.volume = 100;
    this.extended = false;
    // "listening" until the player answers (it ignores it before its script has loaded)
    this.listenTimer = window.setInterval(() => this.post(JSON.stringify({ event: "listening", id: 1, channel: "widget" })), 250);
    this.iframe.addEventListener("load", () => this.post(JSON.stringify({ event: "listening", id: 1, channel: "widget" })));
  }

  /**
   * @param {string} func
   * @param {unknown[]} [args]
   */
  command(func, args = []) {
    this.post(JSON.stringify({ event: "command", func, args, id: 1, channel: "widget" }));
  }

  /** @param {Record<string, any>} message */
  receive(message) {
    if (this.listenTimer) {
      clearInterval(this.listenTimer);
      this.listenTimer = 0;
    }
    const info = message.info;
    switch (message.event) {
      case "onReady":
        this.markReady();
        break;
      case "initialDelivery":
      case "infoDelivery":
        if (info && typeof info === "object") {
          if (typeof info.duration === "number" && info.duration > 0) this.total = info.duration;
          if (typeof info.currentTime === "number") this.report(info.currentTime);
          if (typeof info.playerState === "number") this.state(info.playerState);
          if (message.event === "initialDelivery" || this.reported !== null) this.markReady();
        }
        break;
      case "onStateChange":
        if (typeof info === "number") this.state(info);
        break;
      case "onError":
        this.events.failed("embed");
        break;
      default:
    }
  }

  markReady() {
    if (this.isReady && this.reported !== null) return;
    this.isReady = true;
    if (this.reported === null) this.reported = 0;
    this.command("addEventListener", ["onStateChange"]);
    this.command("addEventListener", ["onError"]);
    this.command("setVolume", [this.volume]);
    this.command(this.mutedNow ? "mute" : "unMute");
    this.events.changed();
  }

  /** YouTube's player states: -1 unstarted, 0 ended, 1 playing, 2 paused, 3 buffering, 5 cued. */
  /** @param {number} code */
  state(code) {
    if (code === 0) this.isEnded = true;
    if (code === 3) {
      // buffering: neither started nor stopped; a play asked for gets its wait once more
      const pending = this.pendingPlay;
      if (pending && !this.extended) {
        this.extended = true;
        clearTimeout(pending.timer);
        pending.timer = window.setTimeout(() => {
          if (this.pendingPlay === pending) this.pendingPlay = null;
          pending.reject(refused());
        }, EMBED_PLAY_WAIT_MS);
      }
      return;
    }
    this.setPlaying(code === 1);
  }

  sendPlay() {
    this.extended = false;
    this.command("playVideo");
  }

  pause() {
    this.command("pauseVideo");
  }

  /** @param {number} seconds */
  seek(seconds) {
    super.seek(seconds);
    this.command("seekTo", [seconds, true]);
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    this.mutedNow = muted;
    this.command(muted ? "mute" : "unMute");
  }

  /** @param {number} volume */
  setVolume(volume) {
    this.volume = Math.round(Math.min(1, Math.max(0, volume)) * 100);
    this.command("setVolume", [this.volume]);
  }

  destroy() {
    clearInterval(this.listenTimer);
    super.destroy();
  }
}

/** Vimeo's iframe, driven by its player protocol. @implements {Player} */
export class VimeoPlayer extends EmbedPlayer {
  /**
   * @param {string} src
   * @param {string} title
   * @param {PlayerEvents} events
   */
  constructor(src, title, events) {
    super("vimeo", src, title, events);
    this.volume = 1;
  }

  /**
   * @param {string} method
   * @param {unknown} [value]
   */
  call(method, value) {
    this.post(value === undefined ? { method } : { method, value });
  }

  /** @param {Record<string, any>} message */
  receive(message) {
    const data = message.data && typeof message.data === "object" ? message.data : {};
    if (message.event === "ready") {
      for (const name of ["playProgress", "timeupdate", "play", "playing", "pause", "ended", "seeked", "loaded", "error"]) {
        this.call("addEventListener", name);
      }
      this.call("getDuration");
      this.call("getCurrentTime");
      this.call("getPaused");
      this.call("setVolume", this.mutedNow ? 0 : this.volume);
      this.isReady = true;
      if (this.reported === null) this.reported = 0;
      this.events.changed();
      return;
    }
    switch (message.event) {
      case "playProgress":
      case "timeupdate":
        if (typeof data.duration === "number" && data.duration > 0) this.total = data.duration;
        if (typeof data.seconds === "number") this.report(data.seconds);
        if (message.event === "playProgress") this.setPlaying(true);
        return;
      case "play":
      case "playing":
        if (typeof data.seconds === "number") this.report(data.seconds);
        this.setPlaying(true);
        return;
      case "pause":
      case "ended":
        if (typeof data.seconds === "number") this.report(data.seconds);
        if (message.event === "ended") this.isEnded = true;
        this.setPlaying(false);
        return;
      case "seeked":
        if (typeof data.seconds === "number") this.report(data.seconds);
        this.events.changed();
        return;
      case "error":
        if (data.method === "play" || data.name === "NotAllowedError") this.playRefused();
        else if (!data.method) this.events.failed("embed");
        return;
      default:
    }
    switch (message.method) {
      case "getCurrentTime":
        if (typeof message.value === "number") this.report(message.value);
        return;
      case "getDuration":
        if (typeof message.value === "number" && message.value > 0) this.total = message.value;
        return;
      case "getPaused":
        if (typeof message.value === "boolean") this.setPlaying(!message.value);
        return;
      default:
    }
  }

  /** Ask for the exact position now and then (the events come about every 250 ms). */
  refresh() {
    if (this.isReady) this.call("getCurrentTime");
  }

  sendPlay() {
    this.call("play");
  }

  pause() {
    this.call("pause");
  }

  /** @param {number} seconds */
  seek(seconds) {
    super.seek(seconds);
    this.call("setCurrentTime", seconds);
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    this.mutedNow = muted;
    this.call("setVolume", muted ? 0 : this.volume);
  }

  /** @param {number} volume */
  setVolume(volume) {
    this.volume = Math.min(1, Math.max(0, volume));
    if (!this.mutedNow) this.call("setVolume", this.volume);
  }
}

// ------------------------------------------------------------------------------ controller

export class SharedVideo {
  /**
   * @param {StageContent} content
   * @param {{ isStaff: () => boolean, toasts?: Toasts }} host  whether we may control the
   *   video (presenters and hosts; follows set-role), where to say that a control failed
   */
  constructor(content, host) {
    this.content = content;
    this.host = host;
    /** @type {VideoState | null} */
    this.video = null;
    this.layout = "cameras";
    /** @type {Player | null} */
    this.player = null;
    this.timer = 0;
    /** Muted by us because the browser refused to play with sound. */
    this.autoMuted = false;
    /** Muted or not, and the volume, as the person set them (kept across videos). */
    this.muted = false;
    this.volume = 1;
    /** A play() is under way (not asked again until it settles). */
    this.starting = false;
    /** Someone who is not us moved the player: jump back at once. */
    this.snapBack = false;
    /** The presenter drags the seek bar: the bar does not follow the video meanwhile. */
    this.dragging = false;
    this.failedOnce = false;
    /** A video we just shared (paused at 0): we start it once our player is ready. */
    this.autoPlay = /** @type {{ videoId: string, since: number } | null} */ (null);

    this.view = byId("shared-video-view");
    this.box = byId("shared-video-box");
    this.unmuteButton = /** @type {HTMLButtonElement} */ (byId("shared-video-unmute"));
    this.message = byId("shared-video-message");
    this.playButton = /** @type {HTMLButtonElement} */ (byId("shared-video-play"));
    this.pauseButton = /** @type {HTMLButtonElement} */ (byId("shared-video-pause"));
    this.stopButton = /** @type {HTMLButtonElement} */ (byId("shared-video-stop"));
    this.seekBar = /** @type {HTMLInputElement} */ (byId("shared-video-seek"));
    this.progress = /** @type {HTMLProgressElement} */ (byId("shared-video-progress"));
    this.timeText = byId("shared-video-time");
    this.nameText = byId("shared-video-name");
    this.muteButton = /** @type {HTMLButtonElement} */ (byId("shared-video-mute"));
    this.volumeBar = /** @type {HTMLInputElement} */ (byId("shared-video-volume"));
    this.fullscreenButton = /** @type {HTMLButtonElement} */ (byId("shared-video-fullscreen"));
    this.bind();
    this.relabel();
    content.onStage((state) => this.load(state));
    onLanguage(() => this.relabel());
  }

  bind() {
    this.unmuteButton.addEventListener("click", () => {
      this.autoMuted = false;
      this.setMuted(false);
    });
    this.muteButton.addEventListener("click", () => {
      this.autoMuted = false;
      this.setMuted(!this.muted);
    });
    this.volumeBar.addEventListener("input", () => {
      this.volume = Number(this.volumeBar.value);
      this.player?.setVolume(this.volume);
      if (this.muted && this.volume > 0) {
        this.autoMuted = false;
        this.setMuted(false);
      }
    });
    this.fullscreenButton.addEventListener("click", () => this.toggleFullscreen());
    document.addEventListener("fullscreenchange", () => this.relabel());
    this.playButton.addEventListener("click", () => {
      const duration = this.player?.duration() ?? null;
      let at = this.position();
      if (duration !== null && at >= duration - 0.25) at = 0; // at the end: from the start
      this.control(this.playButton, "play", at);
    });
    this.pauseButton.addEventListener("click", () => {
      // pause on the frame the presenter sees (within the drift of the shared position)
      const seen = this.player?.time() ?? null;
      this.control(this.pauseButton, "pause", seen ?? this.position());
    });
    this.seekBar.addEventListener("pointerdown", () => {
      this.dragging = true;
    });
    // released without moving it (no change event): the bar follows the video again
    for (const type of ["pointerup", "pointercancel", "blur"]) {
      this.seekBar.addEventListener(type, () => {
        this.dragging = false;
      });
    }
    this.seekBar.addEventListener("input", () => {
      this.dragging = true;
      this.renderTime(Number(this.seekBar.value));
    });
    this.seekBar.addEventListener("change", () => {
      this.dragging = false;
      this.control(null, "seek", Number(this.seekBar.value));
    });
    this.stopButton.addEventListener("click", () => {
      setBusy(this.stopButton, true);
      this.content
        .request("video-stop")
        .catch((error) => this.failed(error))
        .finally(() => setBusy(this.stopButton, false));
    });
  }

  /**
   * @param {HTMLButtonElement | null} button
   * @param {"play" | "pause" | "seek"} action
   * @param {number} position
   */
  control(button, action, position) {
    if (button) setBusy(button, true);
    const duration = this.player?.duration() ?? null;
    let at = Math.max(0, position);
    if (duration !== null) at = Math.min(at, duration);
    this.content
      .request("video-control", { action, position: Math.round(at * 1000) / 1000 })
      .catch((error) => this.failed(error))
      .finally(() => {
        if (button) setBusy(button, false);
      });
  }

  /** @param {unknown} error */
  failed(error) {
    const text = errorText(error);
    if (this.host.toasts) this.host.toasts.show(text, { kind: "error", key: "shared-video" });
    else console.warn("webinar: shared video", error);
  }

  /**
   * A new stage state.
   * @param {StageState} state
   */
  load(state) {
    this.layout = state.layout;
    const video = /** @type {VideoState | null} */ (state.video ?? null);
    if (!video || !video.src) {
      this.clear();
      return;
    }
    const same = this.video && this.player && this.video.video_id === video.video_id && this.video.src === video.src;
    this.video = video;
    if (!same) {
      this.start(video);
      // Shared by us just now: it plays as soon as our player can show it (a share starts paused).
      const me = this.content.conn?.participantId ?? null;
      const fresh = state.cause === "video" && me !== null && state.by === me && !video.playing && video.position === 0;
      this.autoPlay = fresh ? { videoId: video.video_id, since: performance.now() } : null;
    }
    if (this.autoPlay && this.autoPlay.videoId !== video.video_id) this.autoPlay = null;
    this.snapBack = false;
    this.tick();
  }

  /** @param {VideoState} video */
  start(video) {
    this.clear();
    this.video = video;
    this.failedOnce = false;
    /** @type {PlayerEvents} */
    const events = {
      changed: () => this.tick(),
      userSeek: () => {
        this.snapBack = true;
        this.tick();
      },
      failed: (reason) => this.loadFailed(reason),
    };
    const title = video.name || t("Shared video");
    if (video.kind === "youtube") this.player = new YouTubePlayer(video.src, title, events);
    else if (video.kind === "vimeo") this.player = new VimeoPlayer(video.src, title, events);
    else this.player = new FilePlayer(this.content.url(video.src), events);
    this.player.setVolume(this.volume);
    this.player.setMuted(this.muted);
    this.box.prepend(this.player.element);
    this.box.dataset.kind = video.kind;
    this.message.hidden = true;
    this.nameText.textContent = video.name || "";
    this.renderMute();
    this.timer = window.setInterval(() => this.tick(), SYNC_MS);
  }

  /** No shared video (any more). */
  clear() {
    if (this.timer) clearInterval(this.timer);
    this.timer = 0;
    this.player?.destroy();
    this.player = null;
    this.video = null;
    this.starting = false;
    this.unmuteButton.hidden = true;
    this.message.hidden = true;
    this.nameText.textContent = "";
    this.view.dataset.state = "none";
    delete this.box.dataset.kind;
    if (document.fullscreenElement === this.view) document.exitFullscreen().catch(() => {});
  }

  /** @param {"load" | "embed"} reason */
  loadFailed(reason) {
    const video = this.video;
    if (!video) return;
    if (reason === "load" && !this.failedOnce && this.player instanceof FilePlayer) {
      // once more, with the content pass we hold now (the first may have expired)
      this.failedOnce = true;
      const events = this.player.events;
      this.player.destroy();
      this.player = new FilePlayer(this.content.url(video.src), events);
      this.player.setVolume(this.volume);
      this.player.setMuted(this.muted);
      this.box.prepend(this.player.element);
      return;
    }
    setText(this.message, "The video could not be loaded.");
    this.message.hidden = false;
  }

  /** Where the shared video is now (s). */
  position() {
    if (!this.video) return 0;
    return sharedPosition(this.video, this.content.serverNow(), this.player?.duration() ?? null);
  }

  /** Shown on stage, and we are in the room (not in the lobby, not after leaving). */
  active() {
    return this.layout === "video" && !byId("live").hidden && !this.view.hidden;
  }

  /** Compare the player with the shared state and correct it (every SYNC_MS, and on changes). */
  tick() {
    const video = this.video;
    const player = this.player;
    this.view.dataset.staff = String(this.host.isStaff());
    if (!video || !player) return;
    const auto = this.autoPlay;
    if (auto && (player.ready() || performance.now() - auto.since > AUTO_PLAY_WAIT_MS)) {
      this.autoPlay = null;
      if (!video.playing && this.host.isStaff()) this.control(null, "play", video.position);
    }
    const target = this.position();
    const duration = player.duration();
    const atEnd = duration !== null && target >= duration - 0.05;
    const playing = video.playing && !atEnd;
    this.view.dataset.state = playing ? "playing" : "paused";
    this.playButton.hidden = playing;
    this.pauseButton.hidden = !playing;
    this.renderBar(target, duration);
    if (player instanceof VimeoPlayer) player.refresh();
    if (!this.active()) {
      if (!player.paused()) player.pause();
      return;
    }
    if (!player.ready()) return; // it says when it is (changed): then to the position, then play
    if (player.seeking() && !this.snapBack) return;
    const local = player.time() ?? 0;
    if (!playing) {
      if (!player.paused()) player.pause();
      player.setRate(video.rate || 1);
      const tolerance = player.canNudge ? PAUSED_DRIFT : EMBED_PAUSED_DRIFT;
      if (Math.abs(local - target) > tolerance || this.snapBack) player.seek(target);
      this.snapBack = false;
      return;
    }
    if (this.snapBack) {
      this.snapBack = false;
      if (Math.abs(local - target) > NUDGE_UNTIL) {
        player.seek(target);
        if (player.paused()) this.startPlaying(player);
        return;
      }
    }
    const fix = correction(local, target, { rate: video.rate || 1, current: player.rate(), canNudge: player.canNudge });
    if (fix.seek !== null) player.seek(fix.seek);
    player.setRate(fix.rate);
    // at its end a little before the shared position gets there: play() would start it over
    const finished = player.ended() && fix.seek === null && duration !== null && target > duration - 1;
    if (player.paused() && !finished) this.startPlaying(player);
  }

  /**
   * play(); when the browser refuses sound without a click, muted with the Unmute button.
   * @param {Player} player
   */
  startPlaying(player) {
    if (this.starting) return;
    this.starting = true;
    player
      .play()
      .catch((error) => {
        if (player !== this.player) return;
        if (error?.name === "NotAllowedError" && !this.muted) {
          this.autoMuted = true;
          this.muted = true;
          player.setMuted(true);
          this.renderMute();
          return player.play().catch(() => {});
        }
        // AbortError: a pause or a jump interrupted it; the next tick tries again
        return undefined;
      })
      .finally(() => {
        this.starting = false;
      });
  }

  /** @param {boolean} muted */
  setMuted(muted) {
    this.muted = muted;
    this.player?.setMuted(muted);
    if (!muted && this.volume === 0) {
      this.volume = 1;
      this.player?.setVolume(1);
    }
    this.renderMute();
    // the click that unmuted lets the browser play with sound: start it now if it waits
    if (!muted && this.player && this.video?.playing && this.player.paused()) this.startPlaying(this.player);
  }

  renderMute() {
    this.unmuteButton.hidden = !(this.autoMuted && this.muted);
    if (this.muted) setText(this.muteButton, "Unmute video");
    else setText(this.muteButton, "Mute video");
    this.muteButton.setAttribute("aria-pressed", String(this.muted));
    this.volumeBar.value = String(this.muted ? 0 : this.volume);
  }

  /**
   * @param {number} target
   * @param {number | null} duration
   */
  renderBar(target, duration) {
    const max = duration ?? 0;
    this.seekBar.max = String(max);
    this.seekBar.disabled = max === 0;
    this.progress.max = max || 1;
    this.progress.value = Math.min(target, max || 1);
    if (!this.dragging) {
      this.seekBar.value = String(Math.min(target, max));
      this.renderTime(target);
    }
  }

  /** @param {number} at */
  renderTime(at) {
    const duration = this.player?.duration() ?? null;
    this.timeText.textContent = duration !== null ? `${clock(at)} / ${clock(duration)}` : clock(at);
  }

  toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
      return;
    }
    if (this.view.requestFullscreen) {
      this.view.requestFullscreen().catch(() => {});
      return;
    }
    // iPhone Safari: only a <video> itself goes full screen
    const video = /** @type {any} */ (this.player?.element);
    video?.webkitEnterFullscreen?.();
  }

  relabel() {
    this.renderMute();
    if (document.fullscreenElement) setText(this.fullscreenButton, "Exit full screen");
    else setText(this.fullscreenButton, "Full screen");
  }
}
