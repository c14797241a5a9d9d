// What the room page's parts share: the page's own data (from <body>), the shape of
// the room's shared state (RoomContext), small helpers.
//
// The page's <body> carries data-role, data-event-id, data-presenter-key, data-access,
// data-starts-at, data-ended and data-join-token; the role can change live (a host promotes or demotes), so the UI
// follows the role the server reports (RoomContext.role), not PAGE_ROLE.

const body = document.body;
export const PAGE_ROLE = body.dataset.role ?? "attendee";
export const EVENT_ID = body.dataset.eventId ?? "";
/** The presenter or host key of a presenter link. */
export const PRESENTER_KEY = body.dataset.presenterKey || null;
/** The event's access type: open, password, token (invitation link) or paid (reservation code). */
export const ACCESS = body.dataset.access ?? "open";
export const STARTS_AT = body.dataset.startsAt || null;
/** The event was ended for all before the page was served (nothing left to join). */
export const ENDED = body.dataset.ended !== undefined;
/** The event requires registration: an open one then admits only registrants' personal links. */
export const REGISTRATION_REQUIRED = body.dataset.registration === "required";
/**
 * The signed join token this page was opened with (`/e/<id>?jwt=…`, from the organiser's
 * site): the name and role are the token's, and the page enters at once.
 */
export const JOIN_TOKEN = body.dataset.joinToken !== undefined ? new URLSearchParams(window.location.search).get("jwt") : null;
/** Wider than this, the side panel sits beside the stage; narrower, it covers it. */
export const WIDE = window.matchMedia("(min-width: 1000px)");

/** @typedef {import("../protocol.js").Source} Source */
/** @typedef {import("../protocol.js").ParticipantInfo} ParticipantInfo */
/** @typedef {import("../protocol.js").StreamInfo} StreamInfo */
/** @typedef {import("../protocol.js").WebinarConnection} WebinarConnection */
/** @typedef {"prejoin" | "lobby" | "live" | "ended"} View */
/** @typedef {{label: string, action: () => void}} ErrorAction */

/**
 * The room's shared state, as the parts see it (room.js's Room provides it).
 * @typedef {object} RoomContext
 * @property {WebinarConnection | null} conn  the connection of this visit, null before joining and after leaving
 * @property {string} role  the role the server gave us (follows set-role)
 * @property {boolean} staff  host or presenter now
 * @property {string} name  our display name
 * @property {View} view
 * @property {boolean} leaving  we are leaving on purpose: no "stopped working" notices
 * @property {boolean} busy  joining or publishing is under way (one at a time)
 * @property {import("../ui.js").Toasts} toasts
 * @property {(text: string | (() => string), action?: ErrorAction | null) => void} showError  the page's
 *   error box (a function when the text has values in it: it is asked again when the language changes)
 * @property {() => void} hideError
 * @property {(error: unknown) => void} showFailure  the error box with what failed, in plain words
 * @property {() => {maxCameras?: number, startsAt?: string | null}} context  for errorText
 */

/** @param {Source} source @returns {"audio" | "video"} */
export function kindOf(source) {
  return source === "camera" || source === "screen" ? "video" : "audio";
}

/** The connection has joined (or is resuming): the room is shown. @param {WebinarConnection | null} conn */
export function inRoom(conn) {
  return conn !== null && (conn.state === "joined" || conn.state === "reconnecting");
}
