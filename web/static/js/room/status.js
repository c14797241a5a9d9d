// The room's top bar: the connection's state, its quality (measured from the media
// connections' stats), the connection panel (quality menu, the tier and bandwidth the
// server measured for us), how many people are here, the role, mode and recording
// badges; and the "Reconnecting…" bar under it.

import { formatNumber, nt, t } from "../i18n.js";
import { QualityMonitor, describeQuality } from "../quality.js";
import { QUALITIES } from "../tiers.js";
import { byId, modeLabel, recall, remember, roleLabel } from "../ui.js";

/** @typedef {import("../tiers.js").QualityChoice} QualityChoice */
/** @typedef {import("../tiers.js").AllocationMessage} AllocationMessage */

const QUALITY_KEY = "webinar.quality";

/** The quality chosen last time in this browser. @returns {QualityChoice} */
export function storedQuality() {
  const value = recall(QUALITY_KEY);
  return QUALITIES.includes(/** @type {any} */ (value)) ? /** @type {QualityChoice} */ (value) : "auto";
}

/** @param {QualityChoice} quality */
export function storeQuality(quality) {
  remember(QUALITY_KEY, quality);
}

/** "1.8 Mbps", "640 kbps". @param {number | null | undefined} bps */
export function formatBitrate(bps) {
  if (bps === null || bps === undefined) return t("not measured yet");
  if (bps >= 1_000_000) {
    const rate = formatNumber(bps / 1_000_000, { minimumFractionDigits: 1, maximumFractionDigits: 1, useGrouping: false });
    return t("{rate} Mbps", { rate });
  }
  return t("{rate} kbps", { rate: formatNumber(Math.round(bps / 1000), { useGrouping: false }) });
}

/**
 * The tier the server chose for us, in words ("audio + 2 videos").
 * @param {{videos: number}} tier
 */
export function tierLabel(tier) {
  if (tier.videos === 0) return t("audio only");
  return nt("audio + {n} video", "audio + {n} videos", tier.videos);
}

/** The connection panel: quality menu, current tier, measured bandwidth. */
export class ConnectionPanel {
  /**
   * @param {{root: HTMLElement, select: HTMLSelectElement, tier: HTMLElement, bandwidth: HTMLElement, paused: HTMLElement, onQuality: (q: QualityChoice) => void}} parts
   */
  constructor({ root, select, tier, bandwidth, paused, onQuality }) {
    this.root = root;
    this.select = select;
    this.tierEl = tier;
    this.bandwidthEl = bandwidth;
    this.pausedEl = paused;
    /** The last allocation shown (drawn again when the language changes). @type {AllocationMessage | null} */
    this.last = null;
    this.select.value = storedQuality();
    this.select.addEventListener("change", () => {
      const value = /** @type {QualityChoice} */ (this.select.value);
      storeQuality(value);
      onQuality(value);
    });
    this.reset();
  }

  /** @returns {QualityChoice} */
  get quality() {
    return /** @type {QualityChoice} */ (this.select.value);
  }

  reset() {
    this.last = null;
    this.tierEl.textContent = t("not measured yet");
    this.root.dataset.tier = "";
    this.bandwidthEl.textContent = formatBitrate(null);
    this.pausedEl.hidden = true;
  }

  /** @param {AllocationMessage} message */
  render(message) {
    this.last = message;
    this.tierEl.textContent = tierLabel(message.tier);
    this.root.dataset.tier = String(message.tier.videos);
    this.root.dataset.quality = message.quality;
    this.bandwidthEl.textContent = formatBitrate(message.estimate_bps ?? message.budget_bps);
    this.bandwidthEl.dataset.bps = String(message.estimate_bps ?? message.budget_bps);
    const paused = message.streams.filter((s) => s.paused).length;
    this.pausedEl.hidden = paused === 0;
    this.pausedEl.textContent = nt("{n} video is paused to fit your connection.", "{n} videos are paused to fit your connection.", paused);
  }

  /** The language changed: say it all again. */
  relabel() {
    if (this.last) this.render(this.last);
    else this.reset();
  }
}

/** @typedef {import("./page.js").WebinarConnection} WebinarConnection */

export class StatusBar {
  /**
   * @param {() => WebinarConnection | null} connection  the connection now
   */
  constructor(connection) {
    this.connection = connection;
    this.reconnectInfo = { attempt: 0, at: 0 };
    this.reconnectTimer = 0;
    /** @type {import("../quality.js").QualityReport | null} */
    this.lastQuality = null;
    this.quality = new QualityMonitor(
      () => [connection()?.subscribeConnection ?? null, connection()?.publishConnection ?? null],
      (report) => this.renderQuality(report),
    );
    this.panel = new ConnectionPanel({
      root: byId("connection-panel"),
      select: /** @type {HTMLSelectElement} */ (byId("quality-select")),
      tier: byId("connection-tier"),
      bandwidth: byId("connection-bandwidth"),
      paused: byId("connection-paused"),
      onQuality: (quality) => {
        connection()?.setQuality(quality).catch(() => {});
      },
    });
    byId("reconnect-now").addEventListener("click", () => connection()?.reconnectNow());
  }

  /** Joined (or resumed): measure the quality, show it and the connection menu. */
  start() {
    this.quality.start();
    byId("quality-wrap").hidden = false;
    byId("connection-menu").hidden = false;
  }

  /** We left: no quality any more. */
  stop() {
    this.quality.stop();
    byId("quality-wrap").hidden = true;
  }

  /** The connection closed: nothing measured, no connection menu. */
  reset() {
    this.stop();
    byId("connection-menu").hidden = true;
    this.panel.reset();
  }

  /** The language changed: the texts with values in them are drawn again. */
  relabel() {
    this.panel.relabel();
    if (this.lastQuality) this.renderQuality(this.lastQuality);
    if (!byId("reconnecting").hidden) this.renderReconnecting();
  }

  /** The connection's state in words, on the pill. */
  renderConnection() {
    const conn = this.connection();
    const pill = byId("connection-state");
    const label = byId("connection-label");
    let state = "idle";
    let text = t("Not connected");
    if (conn) {
      if (conn.state === "connecting" || conn.state === "connected") {
        state = "connecting";
        text = t("Connecting…");
      } else if (conn.state === "reconnecting") {
        state = "connecting";
        text = t("Reconnecting…");
      } else if (conn.state === "joined") {
        const pcs = [conn.subscribeConnection, conn.publishConnection].filter((pc) => pc !== null);
        if (pcs.some((pc) => pc.connectionState === "failed")) {
          state = "warn";
          text = t("Media connection failed");
        } else if (pcs.some((pc) => pc.connectionState === "disconnected")) {
          state = "warn";
          text = t("Media interrupted…");
        } else {
          state = "ok";
          text = t("Connected");
        }
      } else if (conn.state === "closed") {
        state = "closed";
        text = t("Disconnected");
      }
    }
    pill.dataset.state = state;
    label.textContent = text;
  }

  /** @param {import("../quality.js").QualityReport} report */
  renderQuality(report) {
    this.lastQuality = report;
    const button = byId("quality");
    button.dataset.quality = report.level;
    const text = describeQuality(report);
    byId("quality-label").textContent = text;
    byId("quality-tip").textContent = text;
  }

  /**
   * How many people are here (null: not in the room, nothing shown).
   * @param {number | null} count
   */
  renderCount(count) {
    const element = byId("participant-count");
    element.hidden = count === null;
    if (count !== null) element.textContent = nt("{n} person here", "{n} people here", count);
  }

  /**
   * The role, mode and recording badges.
   * @param {{role: string, staff: boolean, phase: string, mode: string, recording: string}} state
   */
  renderBadges({ role, staff, phase, mode, recording }) {
    // recording: everyone sees it; the record capability (host, presenter) has the control
    const recBadge = byId("recording-indicator");
    recBadge.hidden = recording === "off";
    recBadge.dataset.status = recording;
    // TRANSLATORS: the recording badge; "REC" as on a camera (keep it short)
    recBadge.textContent = recording === "paused" ? t("REC paused (backstage)") : t("REC");
    recBadge.title = recording === "paused" ? t("Recording is on, but backstage time is not recorded") : t("This event is being recorded");
    const roleBadge = byId("role-badge");
    roleBadge.hidden = !staff;
    roleBadge.textContent = roleLabel(role);
    const modeBadge = byId("mode-badge");
    modeBadge.hidden = phase !== "live" || mode === "listen-only";
    modeBadge.textContent = mode === "presenters-only" ? t("Backstage") : (modeLabel(mode) ?? mode);
  }

  /**
   * The connection dropped: the bar counts down to the next attempt.
   * @param {{attempt: number, delay: number}} detail
   */
  showReconnecting(detail) {
    this.reconnectInfo = { attempt: detail.attempt, at: Date.now() + detail.delay };
    this.quality.stop();
    byId("reconnecting").hidden = false;
    this.renderReconnecting();
    if (!this.reconnectTimer) {
      this.reconnectTimer = window.setInterval(() => this.renderReconnecting(), 1000);
    }
  }

  renderReconnecting() {
    const { attempt, at } = this.reconnectInfo;
    const seconds = Math.max(0, Math.ceil((at - Date.now()) / 1000));
    byId("reconnecting-text").textContent =
      seconds > 0
        ? t("Connection lost. Reconnecting… (attempt {attempt}, next try in {seconds} s)", { attempt, seconds })
        : t("Connection lost. Reconnecting… (attempt {attempt}, trying now)", { attempt });
  }

  hideReconnecting() {
    window.clearInterval(this.reconnectTimer);
    this.reconnectTimer = 0;
    byId("reconnecting").hidden = true;
  }
}
