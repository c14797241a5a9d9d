// Messages to the page that embeds the room in a frame (docs/api.md, "Embedding").
//
// An event's room may be framed by the sites its organiser allowed (the server lists their
// origins in <body data-embed-origins>; the page's Content-Security-Policy `frame-ancestors`
// refuses every other). The room tells the embedding page what happens with
// `postMessage({type: "webinar:<what>", event_id, ...})`, sent only when the embedding page's
// origin is one of the allowed ones, and only to that origin.

const body = document.body;
const ORIGINS = (body.dataset.embedOrigins ?? "").split(/\s+/).filter(Boolean);
const EVENT_ID = body.dataset.eventId ?? "";

/**
 * The origin of the page that frames this one, when the browser tells it (null: not framed,
 * or not known).
 * @returns {string | null}
 */
function hostOrigin() {
  if (window.parent === window) return null;
  const ancestors = window.location.ancestorOrigins;
  if (ancestors && ancestors.length > 0) return ancestors[0];
  try {
    return document.referrer ? new URL(document.referrer).origin : null;
  } catch {
    return null;
  }
}

/** The allowed origin of the embedding page, or null (then nothing is posted). */
const HOST = (() => {
  const origin = hostOrigin();
  return origin !== null && ORIGINS.includes(origin) ? origin : null;
})();

/** Whether this room is embedded in a page of an allowed site. */
export const EMBEDDED = HOST !== null;

/**
 * Tell the embedding page what happened (nothing when the room is not embedded by an allowed
 * site).
 * @param {"joined" | "left" | "ended" | "cta-clicked"} what
 * @param {Record<string, unknown>} [details]  the message's other fields
 */
export function notifyHost(what, details = {}) {
  if (HOST === null) return;
  window.parent.postMessage({ type: `webinar:${what}`, event_id: EVENT_ID, ...details }, HOST);
}
