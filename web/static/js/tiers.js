// Bandwidth tiers in the browser: what a presenter's camera sends (VP8 simulcast,
// three encodings, each with three temporal layers), the encodings the server asks
// for (dynacast), the attendee's quality choice and the connection panel showing
// the tier and bandwidth the server measured for us.

/** Simulcast encodings of a camera, lowest first; the bitrates fit the tier table
 * (one low video fits 512 kbps, three middle ones 2 Mbps). `rid`s are what the
 * server learns the layers by. */
export const CAMERA_ENCODINGS = Object.freeze([
  Object.freeze({ rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000, scalabilityMode: "L1T3" }),
  Object.freeze({ rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000, scalabilityMode: "L1T3" }),
  Object.freeze({ rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_200_000, scalabilityMode: "L1T3" }),
]);

/** A screen share is one encoding with temporal layers (text stays sharp). */
export const SCREEN_ENCODING = Object.freeze({ maxBitrate: 1_200_000, scalabilityMode: "L1T3" });

/** The top encoding alone, for a server that did not take simulcast. */
const SINGLE_ENCODING = { scaleResolutionDownBy: 1, maxBitrate: 1_200_000 };

export const QUALITIES = /** @type {const} */ (["auto", "data-saver", "high"]);
/** @typedef {typeof QUALITIES[number]} QualityChoice */
const QUALITY_KEY = "webinar.quality";

/**
 * `sendEncodings` for a new sending transceiver of this source.
 * @param {string} source
 * @returns {RTCRtpEncodingParameters[] | undefined}
 */
export function sendEncodings(source) {
  if (source === "camera") return CAMERA_ENCODINGS.map((e) => ({ ...e }));
  if (source === "screen") return [{ ...SCREEN_ENCODING }];
  return undefined;
}

/**
 * After the answer: if the server took only one of our simulcast encodings (the
 * browser then keeps the first, the smallest), send that one at full size.
 * @param {RTCRtpSender} sender
 */
export async function adoptNegotiatedEncodings(sender) {
  const params = sender.getParameters();
  if (!params.encodings || params.encodings.length !== 1) return;
  const [only] = params.encodings;
  if ((only.scaleResolutionDownBy ?? 1) === 1) return;
  Object.assign(only, SINGLE_ENCODING);
  try {
    await sender.setParameters(params);
  } catch (error) {
    console.warn("webinar: could not send the single stream at full size", error);
  }
}

/**
 * Dynacast: turn encodings on and off as the server asks (lowest first). The
 * lowest stays on so a new viewer starts at once.
 * @param {RTCRtpSender} sender
 * @param {boolean[]} active
 */
export async function applyActiveEncodings(sender, active) {
  const params = sender.getParameters();
  const encodings = params.encodings ?? [];
  if (encodings.length < 2) return false;
  /** @type {string[]} */
  const order = CAMERA_ENCODINGS.map((e) => e.rid);
  let changed = false;
  for (const encoding of encodings) {
    const index = encoding.rid ? order.indexOf(encoding.rid) : -1;
    if (index < 0) continue;
    const on = index === 0 || Boolean(active[index]);
    if (encoding.active !== on) {
      encoding.active = on;
      changed = true;
    }
  }
  if (!changed) return false;
  await sender.setParameters(params);
  return true;
}

/** @returns {QualityChoice} */
export function storedQuality() {
  try {
    const value = localStorage.getItem(QUALITY_KEY);
    return QUALITIES.includes(/** @type {any} */ (value)) ? /** @type {QualityChoice} */ (value) : "auto";
  } catch {
    return "auto";
  }
}

/** @param {QualityChoice} quality */
export function storeQuality(quality) {
  try {
    localStorage.setItem(QUALITY_KEY, quality);
  } catch {
    // not remembering is fine
  }
}

/** "1.8 Mbps", "640 kbps". @param {number | null | undefined} bps */
export function formatBitrate(bps) {
  if (bps === null || bps === undefined) return "not measured yet";
  if (bps >= 1_000_000) return `${(bps / 1_000_000).toFixed(1)} Mbps`;
  return `${Math.round(bps / 1000)} kbps`;
}

/**
 * @typedef {object} AllocationMessage
 * @property {QualityChoice} quality
 * @property {number | null} estimate_bps
 * @property {number} budget_bps
 * @property {{videos: number, down_kbps: number, label: string}} tier
 * @property {{producer_id: string, paused: boolean, spatial: number | null, temporal: number | null}[]} streams
 */

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
