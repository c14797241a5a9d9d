// How good our own connection is, from RTCPeerConnection.getStats(): packet loss and
// jitter of what we receive, packet loss the server reports for what we send, and the
// round-trip time of the selected candidate pair. Measured every 2 s.

import { formatNumber, t } from "./i18n.js";

export const QUALITY_INTERVAL_MS = 2000;

/**
 * @typedef {object} QualityReport
 * @property {"good" | "fair" | "poor" | "unknown"} level
 * @property {number | null} loss  fraction 0..1 over the last interval (worst direction)
 * @property {number | null} jitter  ms (inbound)
 * @property {number | null} rtt  ms
 */

/**
 * good: loss < 2 %, jitter < 30 ms, RTT < 250 ms; poor: loss ≥ 8 %, jitter ≥ 100 ms or
 * RTT ≥ 600 ms; fair in between; unknown while nothing flows.
 * @param {{loss: number | null, jitter: number | null, rtt: number | null}} m
 * @returns {QualityReport["level"]}
 */
export function judge({ loss, jitter, rtt }) {
  if (loss === null && jitter === null && rtt === null) return "unknown";
  if ((loss ?? 0) >= 0.08 || (jitter ?? 0) >= 100 || (rtt ?? 0) >= 600) return "poor";
  if ((loss ?? 0) >= 0.02 || (jitter ?? 0) >= 30 || (rtt ?? 0) >= 250) return "fair";
  return "good";
}

export class QualityMonitor {
  /**
   * @param {() => (RTCPeerConnection | null)[]} connections  subscribe and publish connections now
   * @param {(report: QualityReport) => void} onReport
   */
  constructor(connections, onReport) {
    this.connections = connections;
    this.onReport = onReport;
    this.timer = 0;
    /** Counters of the last measurement, by connection and stats id. @type {WeakMap<RTCPeerConnection, Map<string, {lost: number, received: number}>>} */
    this.last = new WeakMap();
    /** @type {QualityReport} */
    this.report = { level: "unknown", loss: null, jitter: null, rtt: null };
  }

  start() {
    if (this.timer) return;
    // a first reading soon after joining, then every interval
    window.setTimeout(() => {
      if (this.timer) this.measure().catch(() => {});
    }, 1000);
    this.timer = window.setInterval(() => {
      this.measure().catch(() => {});
    }, QUALITY_INTERVAL_MS);
  }

  stop() {
    window.clearInterval(this.timer);
    this.timer = 0;
    this.report = { level: "unknown", loss: null, jitter: null, rtt: null };
    this.onReport(this.report);
  }

  async measure() {
    let lost = 0;
    let total = 0;
    /** @type {number | null} */
    let worstRemoteLoss = null;
    /** @type {number | null} */
    let jitter = null;
    /** @type {number | null} */
    let rtt = null;
    for (const pc of this.connections()) {
      if (!pc || pc.connectionState === "closed") continue;
      const report = await pc.getStats();
      const previous = this.last.get(pc) ?? new Map();
      /** @type {Map<string, {lost: number, received: number}>} */
      const now = new Map();
      report.forEach((/** @type {any} */ r) => {
        if (r.type === "inbound-rtp") {
          const counters = { lost: Math.max(0, r.packetsLost ?? 0), received: r.packetsReceived ?? 0 };
          now.set(r.id, counters);
          const before = previous.get(r.id);
          if (before) {
            const dLost = Math.max(0, counters.lost - before.lost);
            const dReceived = Math.max(0, counters.received - before.received);
            lost += dLost;
            total += dLost + dReceived;
          }
          if (typeof r.jitter === "number" && counters.received > 0) {
            jitter = Math.max(jitter ?? 0, r.jitter * 1000);
          }
        } else if (r.type === "remote-inbound-rtp") {
          if (typeof r.fractionLost === "number") worstRemoteLoss = Math.max(worstRemoteLoss ?? 0, r.fractionLost);
          if (typeof r.roundTripTime === "number") rtt = Math.max(rtt ?? 0, r.roundTripTime * 1000);
        } else if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") {
          if (typeof r.currentRoundTripTime === "number") rtt = Math.max(rtt ?? 0, r.currentRoundTripTime * 1000);
        }
      });
      this.last.set(pc, now);
    }
    /** @type {number | null} */
    let loss = total > 0 ? lost / total : null;
    if (worstRemoteLoss !== null) loss = Math.max(loss ?? 0, worstRemoteLoss);
    const measured = { loss, jitter, rtt };
    this.report = { level: judge(measured), ...measured };
    this.onReport(this.report);
    return this.report;
  }
}

/**
 * A measurement for people: the number in the page's language, without thousands separators
 * ("1200 ms", as the product always wrote it).
 * @param {number} value
 * @param {number} [digits]  fraction digits
 */
function amount(value, digits = 0) {
  return formatNumber(value, { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false });
}

/**
 * "Connection quality: good (packet loss 0.4 %, jitter 3 ms, round trip 20 ms)".
 * @param {QualityReport} report
 */
export function describeQuality(report) {
  if (report.level === "unknown") return t("Connection quality: not measured yet (it is measured while audio or video flows)");
  const parts = [];
  if (report.loss !== null) parts.push(t("packet loss {percent} %", { percent: amount(report.loss * 100, 1) }));
  if (report.jitter !== null) parts.push(t("jitter {ms} ms", { ms: amount(Math.round(report.jitter)) }));
  if (report.rtt !== null) parts.push(t("round trip {ms} ms", { ms: amount(Math.round(report.rtt)) }));
  const details = parts.join(", ");
  if (!parts.length) {
    if (report.level === "good") return t("Connection quality: good");
    if (report.level === "fair") return t("Connection quality: fair");
    return t("Connection quality: poor");
  }
  // TRANSLATORS: {details} lists what was measured: "packet loss 0.4 %, jitter 3 ms, round trip 20 ms"
  if (report.level === "good") return t("Connection quality: good ({details})", { details });
  if (report.level === "fair") return t("Connection quality: fair ({details})", { details });
  return t("Connection quality: poor ({details})", { details });
}
