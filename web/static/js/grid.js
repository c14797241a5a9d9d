// The video grid: one tile per remote video stream (plus one's own preview), sized so
// every tile fits the stage at 16:9 without reflowing when video metadata arrives.
// With a screen share the grid switches to a spotlight layout: the screen large, the
// cameras in a strip beside it (landscape) or below it (portrait). Remote audio plays
// through the tile of the same participant (one MediaStream carries both), or an
// <audio> element when that participant sends no video.

import { onLanguage, t } from "./i18n.js";
import { el, icon, initials } from "./ui.js";

const GAP_PX = 12;
const ASPECT = 16 / 9;
const MIN_TILE_PX = 120;

/** @typedef {import("./protocol.js").RemoteStream} RemoteStream */

/**
 * @typedef {object} Tile
 * @property {HTMLElement} root
 * @property {HTMLVideoElement} video
 * @property {string | null} producerId
 * @property {string | null} participantId
 * @property {string} source
 * @property {string | null} group
 * @property {string} [name]  the sender's name as the server gave it ("" when it gave none)
 */

/** What a remote tile says beside the name, by its source. @param {string} source */
function sourceLabel(source) {
  return source === "screen" ? t("Screen") : "";
}

export class VideoGrid {
  /**
   * @param {HTMLElement} container
   * @param {{onSoundBlocked?: () => void, onChange?: () => void, silent?: boolean, tileTestId?: string}} [hooks]
   *   silent: a copy of a stage that plays no sound (the presenters' audience view, room/audience.js),
   *   its tiles named by tileTestId
   */
  constructor(container, hooks = {}) {
    this.container = container;
    this.hooks = hooks;
    /** @type {Map<string, Tile>} tiles by producer ID, and "self" */
    this.tiles = new Map();
    /** @type {Map<string, {stream: MediaStream, videos: string[], audios: Set<string>, audio: HTMLAudioElement | null}>} */
    this.groups = new Map();
    /** @type {Map<string, string>} group of each producer */
    this.groupOf = new Map();
    /** Participants whose microphone is off (muted or paused). @type {Set<string>} */
    this.micOff = new Set();
    /** @type {string | null} */
    this.activeSpeaker = null;
    this.soundBlocked = false;
    /** Content is on stage: the tiles are a strip beside it (one row, no spotlight). */
    this.strip = false;
    this._reconcileQueued = false;
    this.audioHost = el("div", { class: "audio-sinks", hidden: true });
    if (!hooks.silent) container.after(this.audioHost);
    new ResizeObserver(() => this.layout()).observe(container);
    onLanguage(() => this.relabel());
  }

  /** The language changed: the remote tiles' words (our own tile's label is set by setSelf). */
  relabel() {
    for (const [key, tile] of this.tiles) {
      if (key === "self") continue;
      const name = tile.name || t("Presenter");
      const detail = sourceLabel(tile.source);
      const nameEl = tile.root.querySelector(".tile-name");
      if (nameEl) nameEl.textContent = name;
      const detailEl = tile.root.querySelector(".tile-detail");
      if (detailEl) detailEl.textContent = detail;
      tile.root.setAttribute("aria-label", tileLabel(name, detail));
      if (tile.root.dataset.bandwidthPaused === "true") tile.root.title = t("Paused to fit your connection");
      tile.root.querySelector(".tile-mic")?.setAttribute("title", t("Microphone off"));
    }
    const mine = this.tiles.get("self");
    mine?.root.querySelector(".tile-mic")?.setAttribute("title", t("Microphone off"));
  }

  /** Remote video tiles shown. */
  get remoteVideoCount() {
    let n = 0;
    for (const [key] of this.tiles) if (key !== "self") n += 1;
    return n;
  }

  /** Remote streams being played (video or audio). */
  get remoteCount() {
    return this.groupOf.size;
  }

  /** @param {RemoteStream} remote */
  add(remote) {
    const { info, track, stream } = remote;
    const key = stream.id;
    let group = this.groups.get(key);
    if (!group) {
      group = { stream, videos: [], audios: new Set(), audio: null };
      this.groups.set(key, group);
    }
    this.groupOf.set(info.producer_id, key);
    if (track.kind === "video") {
      group.videos.push(info.producer_id);
      const primary = group.videos.length === 1;
      const tile = this._makeTile({
        testid: "video-tile",
        name: info.name || t("Presenter"),
        detail: sourceLabel(info.source),
        stream: primary ? stream : new MediaStream([track]),
        muted: !primary,
        producerId: info.producer_id,
        participantId: info.participant_id,
        source: info.source,
      });
      tile.group = key;
      tile.name = info.name || "";
      this.tiles.set(info.producer_id, tile);
      this.container.append(tile.root);
      this.setPaused(info.producer_id, Boolean(info.paused));
      this.layout();
    } else {
      group.audios.add(info.producer_id);
    }
    this._queueReconcile();
    this.hooks.onChange?.();
  }

  /** @param {string} producerId */
  remove(producerId) {
    const key = this.groupOf.get(producerId);
    this.groupOf.delete(producerId);
    const tile = this.tiles.get(producerId);
    if (tile) {
      tile.video.srcObject = null;
      tile.root.remove();
      this.tiles.delete(producerId);
      this.layout();
    }
    if (key) {
      const group = this.groups.get(key);
      if (group) {
        group.videos = group.videos.filter((id) => id !== producerId);
        group.audios.delete(producerId);
      }
      this._queueReconcile();
    }
    this.hooks.onChange?.();
    return Boolean(tile);
  }

  /** Remove every remote tile and audio element. */
  clear() {
    for (const producerId of [...this.groupOf.keys()]) this.remove(producerId);
  }

  /**
   * A paused video shows the sender's avatar instead of a frozen picture.
   * @param {string} producerId
   * @param {boolean} paused
   */
  setPaused(producerId, paused) {
    const tile = this.tiles.get(producerId);
    if (!tile) return;
    tile.root.dataset.paused = String(paused);
    tile.root.classList.toggle("tile-off", paused || tile.root.dataset.bandwidthPaused === "true");
  }

  /**
   * The server stopped this video to fit our connection (see `allocation`): the
   * avatar shows until it sends the video again.
   * @param {string} producerId
   * @param {boolean} paused
   */
  setBandwidthPaused(producerId, paused) {
    const tile = this.tiles.get(producerId);
    if (!tile) return;
    tile.root.dataset.bandwidthPaused = String(paused);
    tile.root.classList.toggle("tile-off", paused || tile.root.dataset.paused === "true");
    tile.root.title = paused ? t("Paused to fit your connection") : "";
  }

  /**
   * Show a crossed-out microphone on a participant's camera tiles.
   * @param {string} participantId
   * @param {boolean} off
   */
  setMicOff(participantId, off) {
    if (off) this.micOff.add(participantId);
    else this.micOff.delete(participantId);
    for (const tile of this.tiles.values()) {
      if (tile.participantId === participantId) this._renderMic(tile);
    }
  }

  /** @param {Tile} tile */
  _renderMic(tile) {
    const mic = /** @type {HTMLElement | null} */ (tile.root.querySelector(".tile-mic"));
    if (mic) mic.hidden = tile.source === "screen" || !tile.participantId || !this.micOff.has(tile.participantId);
  }

  /**
   * Highlight the tiles of whoever speaks (null: nobody).
   * @param {string | null} participantId
   */
  setActiveSpeaker(participantId) {
    this.activeSpeaker = participantId;
    for (const tile of this.tiles.values()) {
      const on = participantId !== null && tile.participantId === participantId && tile.source !== "screen";
      tile.root.dataset.activeSpeaker = String(on);
    }
  }

  /**
   * Show (or hide, with `stream` null) one's own preview as the first tile.
   * @param {MediaStream | null} stream
   * @param {{label: string, name?: string, cameraOff: boolean, participantId?: string | null}} options
   */
  setSelf(stream, { label, name: person = label, cameraOff, participantId = null }) {
    let tile = this.tiles.get("self");
    if (!stream) {
      if (tile) {
        tile.video.srcObject = null;
        tile.root.remove();
        this.tiles.delete("self");
        this.layout();
        this.hooks.onChange?.();
      }
      return;
    }
    if (!tile) {
      tile = this._makeTile({
        testid: "self-view",
        name: label,
        initials: initials(person),
        detail: "",
        stream,
        muted: true,
        producerId: null,
        participantId,
        source: "camera",
      });
      tile.root.classList.add("tile-self");
      this.tiles.set("self", tile);
      this.container.prepend(tile.root);
      this.layout();
    } else if (tile.video.srcObject !== stream) {
      tile.video.srcObject = stream;
    }
    if (participantId && tile.participantId !== participantId) {
      tile.participantId = participantId;
      tile.root.dataset.participantId = participantId;
    }
    const name = tile.root.querySelector(".tile-name");
    if (name) name.textContent = label;
    const avatar = tile.root.querySelector(".avatar");
    if (avatar) avatar.textContent = initials(person);
    tile.root.setAttribute("aria-label", label);
    tile.root.classList.toggle("tile-off", cameraOff);
    this._renderMic(tile);
    this.setActiveSpeaker(this.activeSpeaker);
    this.hooks.onChange?.();
  }

  /** Try again to play everything with sound (after a click). */
  async unblockSound() {
    this.soundBlocked = false;
    const media = [
      ...[...this.tiles.values()].map((t) => t.video),
      ...[...this.groups.values()].map((g) => g.audio).filter((a) => a !== null),
    ];
    for (const element of media) {
      if (!element) continue;
      if (element.dataset.wantsSound === "1") element.muted = false;
      await element.play().catch(() => {});
    }
  }

  /**
   * @param {{testid: string, name: string, initials?: string, detail: string, stream: MediaStream, muted: boolean, producerId: string | null, participantId: string | null, source: string}} spec
   * @returns {Tile}
   */
  _makeTile(spec) {
    const video = /** @type {HTMLVideoElement} */ (
      el("video", { autoplay: true, playsinline: true, "aria-hidden": "true" })
    );
    const muted = spec.muted || Boolean(this.hooks.silent);
    video.muted = muted;
    video.dataset.wantsSound = muted ? "0" : "1";
    video.srcObject = spec.stream;
    this._play(video);
    const mic = el("span", { class: "tile-mic", title: t("Microphone off"), hidden: true }, [icon("mic-off")]);
    const root = el(
      "figure",
      {
        class: `tile tile-${spec.source}`,
        "data-testid": spec.testid === "video-tile" ? (this.hooks.tileTestId ?? spec.testid) : spec.testid,
        "data-producer-id": spec.producerId,
        "data-participant-id": spec.participantId,
        "data-source": spec.source,
        "data-active-speaker": "false",
        "data-paused": "false",
        "data-bandwidth-paused": "false",
      },
      [
        video,
        el("div", { class: "tile-placeholder", "aria-hidden": "true" }, [
          el("span", { class: "avatar", text: spec.initials ?? initials(spec.name) }),
        ]),
        el("figcaption", { class: "tile-label" }, [
          mic,
          el("span", { class: "tile-name", text: spec.name }),
          spec.detail ? el("span", { class: "tile-detail", text: spec.detail }) : null,
        ]),
      ],
    );
    root.setAttribute("aria-label", tileLabel(spec.name, spec.detail));
    /** @type {Tile} */
    const tile = {
      root,
      video,
      producerId: spec.producerId,
      participantId: spec.participantId,
      source: spec.source,
      group: null,
    };
    this._renderMic(tile);
    if (spec.participantId && spec.participantId === this.activeSpeaker && spec.source !== "screen") {
      root.dataset.activeSpeaker = "true";
    }
    return tile;
  }

  /** @param {HTMLMediaElement} element */
  _play(element) {
    const attempt = element.play();
    if (!attempt) return;
    attempt.catch((error) => {
      if (error && error.name === "NotAllowedError" && !element.muted) {
        // Autoplay with sound needs a click first: play muted now, offer sound.
        element.muted = true;
        element.play().catch(() => {});
        if (!this.soundBlocked) {
          this.soundBlocked = true;
          this.hooks.onSoundBlocked?.();
        }
      }
      // AbortError: a newer srcObject replaced this one; nothing to do.
    });
  }

  _queueReconcile() {
    if (this._reconcileQueued) return;
    this._reconcileQueued = true;
    queueMicrotask(() => {
      this._reconcileQueued = false;
      this._reconcileAudio();
    });
  }

  /** Each participant's audio plays exactly once: in their first video tile, or in an <audio>. */
  _reconcileAudio() {
    if (this.hooks.silent) return;
    for (const [key, group] of this.groups) {
      if (group.videos.length === 0 && group.audios.size === 0) {
        if (group.audio) {
          group.audio.srcObject = null;
          group.audio.remove();
        }
        this.groups.delete(key);
        continue;
      }
      if (group.videos.length > 0) {
        if (group.audio) {
          group.audio.srcObject = null;
          group.audio.remove();
          group.audio = null;
        }
        const primary = this.tiles.get(group.videos[0]);
        if (primary && primary.video.srcObject !== group.stream) {
          primary.video.srcObject = group.stream;
          primary.video.muted = false;
          primary.video.dataset.wantsSound = "1";
          this._play(primary.video);
        }
      } else if (!group.audio) {
        const audio = /** @type {HTMLAudioElement} */ (el("audio", { autoplay: true }));
        audio.dataset.wantsSound = "1";
        audio.dataset.testid = "remote-audio";
        audio.srcObject = group.stream;
        group.audio = audio;
        this.audioHost.append(audio);
        this._play(audio);
      }
    }
  }

  /**
   * Size the tiles: all of them as large as fits at 16:9, or, with a screen share,
   * the screen large and the others in a strip; with content on stage (`strip`), no
   * spotlight, and one row where the strip does not wrap (wide screens).
   */
  layout() {
    const tiles = [...this.tiles.values()];
    const n = tiles.length;
    const box = this.container;
    box.dataset.count = String(n);
    const spot = n > 1 && !this.strip ? tiles.find((t) => t.source === "screen" && t.producerId !== null) : undefined;
    for (const tile of tiles) {
      if (tile !== spot) delete tile.root.dataset.spotlight;
    }
    box.dataset.layout = spot ? "spotlight" : this.strip ? "strip" : "grid";
    if (n === 0) return;
    const width = box.clientWidth;
    const height = box.clientHeight;
    if (width <= 0 || height <= 0) return;
    if (this.strip && getComputedStyle(box).flexWrap === "nowrap") {
      // one row as high as the strip; narrower tiles when many (the strip scrolls past the minimum)
      const fit = (width - (n - 1) * GAP_PX) / n;
      const w = Math.min(height * ASPECT, Math.max(MIN_TILE_PX, fit));
      box.style.setProperty("--tile-w", `${Math.floor(w)}px`); // i18n-ignore
      box.dataset.cols = String(n);
      return;
    }
    if (spot) {
      spot.root.dataset.spotlight = "true";
      this._layoutSpotlight(width, height, n - 1);
      return;
    }
    let best = 0;
    let bestScore = 0;
    let bestCols = 1;
    const landscape = width > height;
    for (let cols = 1; cols <= n; cols += 1) {
      const rows = Math.ceil(n / cols);
      const w = Math.min(
        (width - (cols - 1) * GAP_PX) / cols,
        ((height - (rows - 1) * GAP_PX) / rows) * ASPECT,
      );
      // On a wide stage, taller-than-wide arrangements (two presenters stacked in a narrow
      // column) win only when their tiles are clearly larger: side by side reads better.
      const score = landscape && cols < rows ? w * 0.85 : w;
      if (score > bestScore) {
        best = w;
        bestScore = score;
        bestCols = cols;
      }
    }
    box.style.setProperty("--tile-w", `${Math.max(MIN_TILE_PX, Math.floor(best))}px`); // i18n-ignore
    box.dataset.cols = String(bestCols);
  }

  /**
   * @param {number} width
   * @param {number} height
   * @param {number} others  tiles in the strip
   */
  _layoutSpotlight(width, height, others) {
    const box = this.container;
    const landscape = width >= height;
    let strip;
    let spotW;
    let spotH;
    if (landscape) {
      // a column at the right: as wide as a fifth of the stage, narrower when many
      strip = Math.min(Math.max(160, width * 0.2), 300);
      const fit = ((height - (others - 1) * GAP_PX) / others) * ASPECT;
      strip = Math.max(MIN_TILE_PX, Math.min(strip, fit));
      spotW = width - strip - GAP_PX;
      spotH = height;
    } else {
      // a row below
      const fit = (width - (others - 1) * GAP_PX) / others;
      strip = Math.max(MIN_TILE_PX, Math.min(fit, width * 0.45));
      spotW = width;
      spotH = height - strip / ASPECT - GAP_PX;
    }
    box.dataset.orient = landscape ? "landscape" : "portrait";
    box.style.setProperty("--tile-w", `${Math.floor(strip)}px`);
    box.style.setProperty("--spot-w", `${Math.floor(spotW)}px`);
    box.style.setProperty("--spot-h", `${Math.max(80, Math.floor(spotH))}px`);
  }
}

/**
 * A tile's accessible name: "Ann: Screen", or the name alone.
 * @param {string} name
 * @param {string} detail
 */
function tileLabel(name, detail) {
  return detail ? t("{name}: {detail}", { name, detail }) : name;
}
