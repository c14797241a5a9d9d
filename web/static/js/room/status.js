// The room's connection status: the connection panel (quality menu, the tier and
// bandwidth the server measured for us).

import { QUALITIES } from "../tiers.js";
import { recall, remember } from "../ui.js";

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
  if (bps === null || bps === undefined) return "not measured yet";
  if (bps >= 1_000_000) return `${(bps / 1_000_000).toFixed(1)} Mbps`;
  return `${Math.round(bps / 1000)} kbps`;
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
    this.tierEl.textContent = "not measured yet";
    this.root.dataset.tier = "";
    this.bandwidthEl.textContent = formatBitrate(null);
    this.pausedEl.hidden = true;
  }

  /** @param {AllocationMessage} message */
  render(message) {
    this.tierEl.textContent = message.tier.label;
    this.root.dataset.tier = String(message.tier.videos);
    this.root.dataset.quality = message.quality;
    this.bandwidthEl.textContent = formatBitrate(message.estimate_bps ?? message.budget_bps);
    this.bandwidthEl.dataset.bps = String(message.estimate_bps ?? message.budget_bps);
    const paused = message.streams.filter((s) => s.paused).length;
    this.pausedEl.hidden = paused === 0;
    this.pausedEl.textContent =
      paused === 1 ? "1 video is paused to fit your connection." : `${paused} videos are paused to fit your connection.`;
  }
}
