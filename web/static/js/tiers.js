// Bandwidth tiers in the browser: what a presenter's camera sends (VP8 simulcast,
// three encodings, each with three temporal layers), the encodings the server asks
// for (dynacast) and the quality choices an attendee has. UI-free (protocol.js uses
// it); the connection panel showing the tier and bandwidth is in room/status.js.

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

/**
 * @typedef {object} AllocationMessage
 * @property {QualityChoice} quality
 * @property {number | null} estimate_bps
 * @property {number} budget_bps
 * @property {{videos: number, down_kbps: number, label: string}} tier
 * @property {{producer_id: string, paused: boolean, spatial: number | null, temporal: number | null}[]} streams
 */
