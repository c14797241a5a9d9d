// The browser side of the webinar signalling protocol, version 1 (docs/protocol.md).
//
// UI-free: a WebinarConnection owns the WebSocket and the two RTCPeerConnections
// (publish: the browser offers; subscribe: the server offers) and reports what
// happens as events (it is an EventTarget). It touches no DOM, no storage and no
// UI module: what it needs from the page (the `online` signal, the quality choice)
// the UI passes in. The UI lives in room.js and room/.
//
// The socket (`_socket*`), the request table (`request`, `_pending`), the publish
// side (`_publish*`) and the subscribe side (`_subscribe*`) are separate. When the
// socket drops without a `bye` that ends the session, the connection opens a new
// socket by itself (exponential backoff) and joins again with the `resume_token`;
// the server restores the same participant. Media is negotiated afresh then: the
// UI republishes what was live (the `resumed` event).

import { formatNumber, lang, onLanguage, t } from "./i18n.js";
import { adoptNegotiatedEncodings, applyActiveEncodings, sendEncodings } from "./tiers.js";

export const PROTOCOL_VERSION = 1;
export const CLIENT_NAME = "webinar-web/1";
export const PING_INTERVAL_MS = 15_000;
export const REQUEST_TIMEOUT_MS = 20_000;
/** Reconnect delays: 1 s, 2 s, 4 s … at most 60 s between attempts. */
export const RECONNECT_INITIAL_MS = 1000;
export const RECONNECT_MAX_MS = 60_000;
export const RECONNECT_ATTEMPTS = 12;

/**
 * Why the server ends a session: `bye.reason` (and the socket's close reason). Mirrors
 * `webinar.rooms.reasons.ByeReason` once; tests/unit/test_reasons.py keeps the two equal.
 */
export const ByeReason = Object.freeze({
  LEFT: "left",
  REMOVED: "removed",
  ENDED: "ended",
  REPLACED: "replaced",
  TAKEN_OVER: "taken-over",
  WINDOW_ENDED: "window-ended",
  REVOKED: "revoked",
  CANCELLED: "cancelled",
  SLOW_CLIENT: "slow-client",
  PROTOCOL_VIOLATION: "protocol-violation",
  SHUTDOWN: "shutdown",
  NO_HELLO: "no-hello",
  DISCONNECTED: "disconnected",
  SERVER_RESTART: "server-restart",
});

/** `bye` reasons after which coming back makes no sense (or is not allowed). */
const FINAL_BYE = /** @type {Set<string>} */ (new Set([
  ByeReason.LEFT,
  ByeReason.REMOVED,
  ByeReason.ENDED,
  ByeReason.REPLACED,
  ByeReason.PROTOCOL_VIOLATION,
  ByeReason.TAKEN_OVER,
  ByeReason.WINDOW_ENDED,
  ByeReason.REVOKED,
  ByeReason.CANCELLED,
]));
/** Join refusals that trying again later cannot fix. */
/** How long after a drop `ticket-in-use` may be our own former place (ms). */
const OWN_PLACE_MS = 30000;

const FINAL_JOIN_ERRORS = new Set([
  "unknown-event",
  "ended",
  "banned",
  "bad-credential",
  "room-locked",
  "protocol-version",
  "bad-message",
  "forbidden",
  "credential-required",
  "revoked",
  "not-confirmed",
  "outside-window",
  "booking-expired",
  "ticket-in-use",
  "group-full",
  "event-cancelled",
  "token-expired",
  "token-bad-signature",
  "token-wrong-event",
  "token-invalid",
]);

/**
 * @typedef {"camera" | "microphone" | "screen" | "screen-audio"} Source
 *
 * @typedef {object} ParticipantInfo
 * @property {string} participant_id
 * @property {string} name
 * @property {string} role  "host" | "presenter" | "attendee"
 * @property {number | null} [hand_raised]  order of raising; null when the hand is down
 * @property {boolean} [grant_audio]
 * @property {boolean} [grant_video]
 * @property {boolean} [listen_only]
 * @property {boolean} [connected]
 * @property {string} [quality]  "good" | "fair" | "poor" | "unknown"
 *
 * @typedef {object} ParticipantCounts
 * @property {number} total
 * @property {number} hosts
 * @property {number} presenters
 * @property {number} attendees
 * @property {number} hands  raised hands
 *
 * @typedef {object} StreamInfo
 * @property {string} producer_id
 * @property {string} participant_id
 * @property {string} name
 * @property {Source} source
 * @property {"audio" | "video"} kind
 * @property {boolean} [paused]
 * @property {string | null} [pause_reason]  "mode-changed" | "muted" | "self"
 *
 * @typedef {StreamInfo & {mid: string}} MidStream
 *
 * @typedef {object} RoomInfo
 * @property {"listen-only" | "discussion" | "presenters-only"} mode
 * @property {"lobby" | "live" | "ended"} phase
 * @property {boolean} locked
 * @property {boolean} recordable
 * @property {string} title
 * @property {string} agenda
 * @property {string} lobby_message
 * @property {string | null} starts_at
 * @property {number} join_window_minutes
 * @property {"off" | "recording" | "paused"} [recording]  the recording status (`recording-updated`)
 * @property {"off" | "on" | "paused"} [live_stream]  the live stream out (`live-stream-updated`)
 *
 * @typedef {object} LiveStreamOutput  how the live stream's connection to the ingest is doing
 * @property {"connecting" | "live" | "reconnecting" | "stopped"} state
 * @property {number} [bitrate_kbit]
 * @property {number} [reconnects]
 * @property {string | null} [error]
 *
 * @typedef {object} JoinedMessage
 * @property {string} participant_id
 * @property {string} role
 * @property {{event_id: string, title: string, starts_at: string | null}} event
 * @property {RTCIceServer[]} ice_servers
 * @property {number} max_cameras
 * @property {ParticipantInfo[]} participants
 * @property {StreamInfo[]} streams
 * @property {RoomInfo} room
 * @property {string} resume_token
 * @property {boolean} resumed
 * @property {string | null} active_speaker
 * @property {ParticipantCounts} [counts]
 * @property {{playlist: string} | null} [hls]  set when we watch over HLS (no WebRTC media)
 * @property {"full" | "paged" | "stage"} [roster]  "full": `participants` is everyone; "paged": we run
 *   the floor in a big room, and load everyone with `roster-page`; "stage": the stage and us
 *
 * @typedef {object} Producer
 * @property {string} producer_id
 * @property {string} mid
 * @property {Source} source
 * @property {MediaStreamTrack} track
 *
 * @typedef {Producer & {transceiver: RTCRtpTransceiver, paused: boolean, pause_reason: string | null}} OwnProducer
 *
 * @typedef {object} RemoteStream  detail of the `stream` event
 * @property {MidStream} info
 * @property {MediaStreamTrack} track
 * @property {MediaStream} stream  audio and video of one participant share it
 * @property {RTCRtpTransceiver} transceiver
 *
 * @typedef {"idle" | "connecting" | "connected" | "joined" | "reconnecting" | "closed"} ConnectionState
 *
 * @typedef {{resolve: (m: any) => void, reject: (e: Error) => void, timer: number, type: string}} Pending
 */

/** A refused request or a failure of the connection; `code` is stable (see docs/protocol.md). */
export class WebinarError extends Error {
  /**
   * @param {string} code  a protocol error code, or one of the client's own:
   *   `timeout`, `closed`, `not-connected`, `media`, `bad-state`
   * @param {string} message  for people
   * @param {unknown} [cause]
   */
  constructor(code, message, cause) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "WebinarError"; // i18n-ignore
    this.code = code;
  }
}

/** Sources that travel together in one MediaStream on the publisher's side. */
const SYNC_GROUP = /** @type {Record<string, string>} */ ({
  camera: "main",
  microphone: "main",
  screen: "screen",
  "screen-audio": "screen",
});

/**
 * Whether a participant is on the stage (everyone sees them): hosts, presenters, and
 * attendees granted the microphone or camera. The same rule as the server's
 * (`webinar.rooms.roster.on_stage`).
 * @param {ParticipantInfo} p
 */
export function isOnStage(p) {
  return p.role === "host" || p.role === "presenter" || Boolean(p.grant_audio || p.grant_video);
}

/**
 * Whether a role runs the floor and so sees the whole roster (`roster-delta`, `roster-page`).
 * @param {string} role
 */
export function isFloorRole(role) {
  return role === "host" || role === "presenter";
}

/**
 * One participant's session.
 *
 * Events (all `CustomEvent`s, payload in `detail`):
 * - `statechange` `{state}` — see {@link ConnectionState}
 * - `stream` {@link RemoteStream} — a remote track can be played
 * - `stream-added` `{stream: StreamInfo}` — announced; its track follows with `stream`
 * - `stream-ended` `{producer_id, participant_id, reason, info, shown}` — remove its tile now
 *   (reason `reconnecting` when our own connection dropped)
 * - `stream-updated` `{stream: StreamInfo, own: boolean}` — paused or resumed
 * - `participant-joined` `{participant}`, `participant-left` `{participant_id, reason, participant}`
 * - `participant-updated` `{participant, previous, cause, self}` — hand, grant, role, connection, quality
 * - `participant-count` `{counts}` — how many are here, by role, and raised hands (coalesced)
 * - `roster-delta` `{joined, left, updated, changes}` — those who run the floor: the roster changed
 *   (batched); `changes` pairs each joined or updated `participant` with what we knew before
 *   (`previous`, or null); also after the roster was loaded a page at a time (all empty)
 * - `active-speaker` `{participant_id}` — the loudest microphone (null after silence)
 * - `producer-closed` `{producer_id, source, reason, ours}` — one of our own tracks ended server-side
 * - `mediastatechange` `{target: "publish" | "subscribe", state}`
 * - `room-updated` `{room, cause, by}`, `room-ended` `{thank_you_url, rating_token}` (attendees:
 *   the token of their rating link, `POST /rate/{token}`; else null)
 * - `recording-updated` `{status, by}`: status "off" | "recording" | "paused"
 * - `live-stream-updated` `{status, by, output}` (presenters, hosts): status "off" | "on" | "paused";
 *   output {@link LiveStreamOutput} or null
 * - `draining` `{deadline_seconds}`: the server is shutting down (no new joins; bye follows)
 * - `reconnecting` `{attempt, delay, code}` — the socket dropped; the next attempt is in `delay` ms
 * - `resumed` `{joined, resumed}` — back in; `resumed` false means a new participant (too late)
 * - `bye` `{reason}`, `error` `{error: WebinarError}`, `close` `{code, reason, bye, error}`
 * - `allocation` {@link import("./tiers.js").AllocationMessage} — our tier, bandwidth and paused streams
 * - `publisher-layers` `{producer_id, active}` — the server changed which of our encodings are sent
 */
export class WebinarConnection extends EventTarget {
  /**
   * @param {object} [options]
   * @param {number} [options.pingInterval]  ms between `ping`s
   * @param {number} [options.requestTimeout]  ms before a request fails with `timeout`
   * @param {boolean} [options.reconnect]  reconnect and resume after a drop (default true)
   * @param {number} [options.reconnectInitial]  first reconnect delay, ms
   * @param {number} [options.reconnectMax]  longest reconnect delay, ms
   * @param {number} [options.reconnectAttempts]  attempts before giving up
   * @param {string} [options.url]  the WebSocket URL (default: `/ws` of this page's host)
   * @param {EventTarget} [options.network]  fires `online` when the network is back (the page
   *   passes `window`): a reconnect waiting for its timer is tried at once
   */
  constructor(options = {}) {
    super();
    this.pingInterval = options.pingInterval ?? PING_INTERVAL_MS;
    this.requestTimeout = options.requestTimeout ?? REQUEST_TIMEOUT_MS;
    this.reconnect = options.reconnect ?? true;
    this.reconnectInitial = options.reconnectInitial ?? RECONNECT_INITIAL_MS;
    this.reconnectMax = options.reconnectMax ?? RECONNECT_MAX_MS;
    this.reconnectAttempts = options.reconnectAttempts ?? RECONNECT_ATTEMPTS;
    this.url = options.url ?? null;
    /** @type {ConnectionState} */
    this.state = "idle";
    /** @type {JoinedMessage | null} */
    this.joined = null;
    /** @type {any} */
    this.welcome = null;
    /** The room's state (`joined.room`, then `room-updated`). @type {RoomInfo | null} */
    this.room = null;
    /**
     * Who we know of: everyone when we run the floor (`rosterFull`), else the stage (those
     * who may publish) and ourselves; `counts` has how many are here.
     * @type {Map<string, ParticipantInfo>}
     */
    this.participants = new Map();
    /** @type {ParticipantCounts | null} */
    this.counts = null;
    /** Whether `participants` is the whole roster (hosts and presenters). */
    this.rosterFull = false;
    /** While the roster loads a page at a time: the changes that arrive meanwhile. @type {[string, ParticipantInfo | null][] | null} */
    this._rosterLog = null;
    /** Streams of others announced by the server, by producer_id. @type {Map<string, StreamInfo>} */
    this.streamInfo = new Map();
    /** Streams with a playable track, by producer_id. @type {Map<string, RemoteStream>} */
    this.remoteStreams = new Map();
    /** Our own published tracks, by producer_id. @type {Map<string, OwnProducer>} */
    this.producers = new Map();
    /** @type {string | null} */
    this.activeSpeaker = null;
    /** @type {RTCPeerConnection | null} */
    this.publishConnection = null;
    /** @type {RTCPeerConnection | null} */
    this.subscribeConnection = null;
    /** How many times this session resumed after a drop. */
    this.resumeCount = 0;
    /** What we receive (`set-video-quality`): "auto", "data-saver" or "high". */
    this.quality = "auto";
    /** The server's latest `allocation` for us. @type {import("./tiers.js").AllocationMessage | null} */
    this.allocation = null;
    /** The live stream's connection (`live-stream-updated`; presenters, hosts). @type {LiveStreamOutput | null} */
    this.liveStreamOutput = null;

    /** @type {WebSocket | null} */
    this._ws = null;
    this._nextId = 1;
    // Texts the server sends (error messages) follow the page's language.
    this._offLanguage = onLanguage((code) => {
      if (this.welcome) this.send("set-language", { language: code });
    });
    /** @type {Map<number, Pending>} */
    this._pending = new Map();
    /** @type {{eventId: string, name: string, credential?: string, joinToken?: string, clientId?: string} | null} */
    this._joinParams = null;
    /** @type {string | null} */
    this._resumeToken = null;
    this._pingTimer = 0;
    /** @type {string | null} */
    this._byeReason = null;
    /** Set when the close is ours (leave, close): no reconnect then. */
    this._closing = false;
    this._closeDispatched = false;
    this._reconnectTimer = 0;
    this._reconnectAttempt = 0;
    /** @type {string | null} The first address, when a `move` sent us to another node. */
    this._homeUrl = null;
    /** When the socket last dropped (ms), for `ticket-in-use` while reconnecting. */
    this._droppedAt = 0;
    this._attemptInFlight = false;
    /** Bumped whenever the media connections are torn down: late callbacks of the old
     * ones see the change and keep quiet. */
    this._epoch = 0;

    // publish side
    /** @type {Promise<unknown>} */
    this._publishChain = Promise.resolve();
    this._publishCandidates = new CandidateTrickle((candidate) => this._sendCandidate("publish", candidate));
    /** @type {Map<string, MediaStream>} */
    this._localStreams = new Map();
    /** Idle transceivers, reused before adding new m-lines: those of refused offers
     * (rolled back; they never carried a producer) and those whose producer closed
     * (the server lets an m-line carry a new track after its producer is gone).
     * @type {RTCRtpTransceiver[]} */
    this._spareTransceivers = [];

    // subscribe side: offers wait until `joined` is in (its ice_servers configure the connection)
    /** @type {() => void} */
    this._markJoined = () => {};
    /** @type {Promise<void>} */
    this._joinedReady = Promise.resolve();
    this._resetJoinedReady();
    /** @type {Promise<void>} */
    this._subscribeChain = Promise.resolve();
    this._subscribeCandidates = new CandidateTrickle((candidate) => this._sendCandidate("subscribe", candidate));
    /** MediaStream of each m-line, from `track` events. @type {Map<string, MediaStream>} */
    this._trackStreams = new Map();
    /** Producers that ended: never shown again even if a stale offer still carries them. */
    this._ended = new Set();

    this._network = options.network ?? null;
    this._onOnline = () => this.reconnectNow();
    this._network?.addEventListener("online", this._onOnline);
  }

  // ------------------------------------------------------------------ socket

  /**
   * Open the signalling WebSocket.
   * @param {string} [url]  defaults to `/ws` on this page's host
   * @returns {Promise<void>}
   */
  connect(url) {
    if (this._ws) return Promise.reject(new WebinarError("bad-state", t("already connected")));
    if (url) this.url = url;
    this._closing = false;
    this._closeDispatched = false;
    this._byeReason = null;
    this._setState("connecting");
    return this._openSocket().then(() => this._setState("connected"));
  }

  /** @returns {Promise<void>} */
  _openSocket() {
    const target = this.url ?? defaultSocketUrl();
    return new Promise((resolve, reject) => {
      let opened = false;
      const ws = new WebSocket(target);
      this._ws = ws;
      ws.addEventListener("open", () => {
        opened = true;
        resolve();
      });
      ws.addEventListener("message", (event) => {
        if (ws === this._ws) this._onSocketMessage(event);
      });
      ws.addEventListener("close", (event) => {
        if (!opened) reject(new WebinarError("closed", t("could not reach the server")));
        this._onSocketClose(ws, event.code, event.reason);
      });
    });
  }

  /**
   * Send hello and join; resolves with the `joined` payload.
   * @param {{eventId: string, name: string, credential?: string | null, joinToken?: string | null, clientId?: string | null}} params
   *   `joinToken`: a signed join token (JWT) instead of `credential`
   * @returns {Promise<JoinedMessage>}
   */
  async join({ eventId, name, credential, joinToken, clientId }) {
    this._joinParams = {
      eventId,
      name,
      ...(credential ? { credential } : {}),
      ...(joinToken ? { joinToken } : {}),
      ...(clientId ? { clientId } : {}),
    };
    const joined = await this._handshake(null);
    this._adoptJoined(joined);
    return joined;
  }

  /**
   * hello + join on the current socket.
   * @param {string | null} resumeToken
   * @returns {Promise<JoinedMessage>}
   */
  async _handshake(resumeToken) {
    const params = this._joinParams;
    if (!params) throw new WebinarError("bad-state", t("join first"));
    /** @type {Record<string, unknown>} */
    const fields = { event_id: params.eventId, name: params.name };
    if (params.credential) fields.credential = params.credential;
    if (params.joinToken) fields.join_token = params.joinToken;
    if (params.clientId) fields.client_id = params.clientId;
    if (resumeToken) fields.resume_token = resumeToken;
    /** @type {any} */
    const reply = await this._greetAndJoin(fields);
    if (reply && reply.type === "move") return this._moveTo(String(reply.url), fields);
    return /** @type {JoinedMessage} */ (reply);
  }

  /**
   * `hello` and `join` in one go: the server handles a socket's messages in order, so the
   * join need not wait for `welcome` (one round trip less; docs/protocol.md). A refused
   * hello is the failure reported (the join after it is then refused as well).
   * @param {Record<string, unknown>} fields  the join's
   * @returns {Promise<any>}  the join's reply
   */
  async _greetAndJoin(fields) {
    const hello = this.request("hello", { protocol: PROTOCOL_VERSION, client: CLIENT_NAME, language: lang() });
    const join = this.request("join", fields);
    join.catch(() => {}); // awaited below, unless the hello failed first
    this.welcome = await hello;
    return join;
  }

  /**
   * On a cluster of nodes, the node we reached has another serve us (`move`): connect to it
   * and join there (`placed`: it takes us). A later reconnect starts from the first address
   * again, which places us anew (the node we were moved to may be the one that failed).
   * @param {string} url
   * @param {Record<string, unknown>} fields
   * @returns {Promise<JoinedMessage>}
   */
  async _moveTo(url, fields) {
    this._homeUrl ??= this.url ?? defaultSocketUrl();
    const old = this._ws;
    this._ws = null; // its close is not a drop
    old?.close(1000, "moved");
    this.url = url;
    await this._openSocket();
    return /** @type {JoinedMessage} */ (await this._greetAndJoin({ ...fields, placed: true }));
  }

  /** @param {JoinedMessage} joined */
  _adoptJoined(joined) {
    this.joined = joined;
    this.room = joined.room ?? null;
    this._resumeToken = joined.resume_token ?? null;
    this.activeSpeaker = joined.active_speaker ?? null;
    this.participants.clear();
    for (const p of joined.participants) this.participants.set(p.participant_id, p);
    this.rosterFull = joined.roster === "full" || joined.roster === "paged" || (joined.roster === undefined && isFloorRole(joined.role));
    this.counts = joined.counts ?? null;
    this._rosterLog = null;
    if (joined.roster === "paged") this.loadRoster().catch((error) => this._emit("error", { error }));
    this.streamInfo.clear();
    for (const s of joined.streams) {
      if (s.participant_id !== joined.participant_id) this.streamInfo.set(s.producer_id, s);
    }
    this._setState("joined");
    this._markJoined();
    this._startPing();
    if (this.quality !== "auto") this._sendQuality();
  }

  _resetJoinedReady() {
    this._joinedReady = new Promise((resolve) => {
      this._markJoined = resolve;
    });
  }

  /**
   * Set (or, with null, forget) one participant; logged while the roster loads.
   * @param {string} id
   * @param {ParticipantInfo | null} participant
   */
  _setParticipant(id, participant) {
    if (participant) this.participants.set(id, participant);
    else this.participants.delete(id);
    this._rosterLog?.push([id, participant]);
  }

  /** @param {{joined: ParticipantInfo[], left: {participant_id: string, reason: string}[], updated: ParticipantInfo[]}} message */
  _onRosterDelta(message) {
    if (!this.rosterFull) return;
    /** @type {{participant: ParticipantInfo, previous: ParticipantInfo | null}[]} */
    const changes = [];
    for (const p of [...message.joined, ...message.updated]) {
      changes.push({ participant: p, previous: this.participants.get(p.participant_id) ?? null });
      this._setParticipant(p.participant_id, p);
    }
    for (const gone of message.left) this._setParticipant(gone.participant_id, null);
    this._emit("roster-delta", { joined: message.joined, left: message.left, updated: message.updated, changes });
  }

  /**
   * Our role changed: running the floor, we load the whole roster (a page at a time);
   * no longer, we keep only the stage and ourselves.
   * @param {string} role
   */
  _roleChanged(role) {
    const full = isFloorRole(role);
    if (full === this.rosterFull) return;
    this.rosterFull = full;
    if (full) {
      this.loadRoster().catch((error) => this._emit("error", { error }));
      return;
    }
    for (const [id, p] of [...this.participants]) {
      if (id !== this.participantId && !isOnStage(p)) this.participants.delete(id);
    }
  }

  /**
   * Load the whole roster with `roster-page` (those who run the floor; `joined` already
   * carries it for them). Changes that arrive meanwhile are applied on top.
   */
  async loadRoster() {
    this._rosterLog = [];
    /** @type {Map<string, ParticipantInfo>} */
    const loaded = new Map();
    try {
      /** @type {string | null} */
      let after = null;
      do {
        const page = await this.request("roster-page", after ? { after, limit: 500 } : { limit: 500 });
        for (const p of page.participants) loaded.set(p.participant_id, p);
        this.counts = page.counts;
        after = page.next_cursor;
      } while (after);
      for (const [id, p] of this._rosterLog) {
        if (p) loaded.set(id, p);
        else loaded.delete(id);
      }
    } finally {
      this._rosterLog = null;
    }
    if (!this.rosterFull) return;
    this.participants.clear();
    for (const [id, p] of loaded) this.participants.set(id, p);
    this._emit("roster-delta", { joined: [], left: [], updated: [], changes: [] });
  }

  /** Our participant ID once joined. */
  get participantId() {
    return this.joined?.participant_id ?? null;
  }

  /** Our own participant record (role, hand, grants), once joined. */
  get me() {
    const id = this.participantId;
    return id ? (this.participants.get(id) ?? null) : null;
  }

  /**
   * Send a request and wait for the reply with the same `id`.
   * @param {string} type
   * @param {Record<string, unknown>} [fields]
   * @param {{timeout?: number}} [options]
   * @returns {Promise<any>}  the reply; an `error` reply rejects with a {@link WebinarError}
   */
  request(type, fields = {}, options = {}) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new WebinarError("not-connected", t("not connected to the server")));
    }
    const id = this._nextId++;
    const timeout = options.timeout ?? this.requestTimeout;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        // TRANSLATORS: {request} is the name of a request in the protocol (e.g. "chat-send")
        reject(new WebinarError("timeout", t("no reply to {request} within {seconds} s", { request: type, seconds: formatNumber(timeout / 1000) })));
      }, timeout);
      this._pending.set(id, { resolve, reject, timer, type });
      ws.send(JSON.stringify({ type, id, ...fields }));
    });
  }

  /**
   * Send a message that expects no reply.
   * @param {string} type
   * @param {Record<string, unknown>} [fields]
   */
  send(type, fields = {}) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ type, ...fields }));
    return true;
  }

  /** @param {MessageEvent} event */
  _onSocketMessage(event) {
    /** @type {any} */
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      console.warn("webinar: ignoring a frame that is not JSON");
      return;
    }
    if (message.id !== undefined && this._pending.has(message.id)) {
      const pending = /** @type {Pending} */ (this._pending.get(message.id));
      this._pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.type === "error") {
        pending.reject(new WebinarError(message.code, message.message));
      } else {
        pending.resolve(message);
      }
      if (message.type === "bye") this._onBye(message.reason);
      return;
    }
    switch (message.type) {
      case "subscriber-offer":
        this._queueSubscriberOffer(message);
        break;
      case "stream-added":
        this.streamInfo.set(message.stream.producer_id, message.stream);
        this._emit("stream-added", { stream: message.stream });
        break;
      case "stream-ended":
        this._onStreamEnded(message);
        break;
      case "stream-updated":
        this._onStreamUpdated(message.stream);
        break;
      case "participant-joined":
        this._setParticipant(message.participant.participant_id, message.participant);
        this._emit("participant-joined", { participant: message.participant });
        break;
      case "participant-left": {
        const participant = this.participants.get(message.participant_id) ?? null;
        this._setParticipant(message.participant_id, null);
        this._emit("participant-left", { ...message, participant });
        break;
      }
      case "participant-updated": {
        const participant = message.participant;
        const previous = this.participants.get(participant.participant_id) ?? null;
        const self = participant.participant_id === this.participantId;
        // Off the stage, someone else is no longer shown to an attendee (only counted).
        const shown = self || this.rosterFull || isOnStage(participant);
        this._setParticipant(participant.participant_id, shown ? participant : null);
        if (self && this.joined) this.joined.role = participant.role;
        if (self && message.cause === "role") this._roleChanged(participant.role);
        this._emit("participant-updated", { participant, previous, cause: message.cause, self });
        break;
      }
      case "participant-count":
        this.counts = message.counts;
        this._emit("participant-count", { counts: message.counts });
        break;
      case "roster-delta":
        this._onRosterDelta(message);
        break;
      case "active-speaker":
        this.activeSpeaker = message.participant_id ?? null;
        this._emit("active-speaker", { participant_id: this.activeSpeaker });
        break;
      case "room-updated":
        this.room = message.room;
        this._emit("room-updated", { room: message.room, cause: message.cause, by: message.by });
        break;
      case "recording-updated":
        if (this.room) this.room = { ...this.room, recording: message.status };
        this._emit("recording-updated", { status: message.status, by: message.by });
        break;
      case "live-stream-updated":
        if (this.room) this.room = { ...this.room, live_stream: message.status };
        this.liveStreamOutput = message.output ?? null;
        this._emit("live-stream-updated", { status: message.status, by: message.by, output: this.liveStreamOutput });
        break;
      case "room-ended":
        this._emit("room-ended", {
          thank_you_url: message.thank_you_url,
          rating_token: message.rating_token ?? null,
        });
        break;
      case "allocation":
        this.allocation = message;
        this._emit("allocation", message);
        break;
      case "publisher-layers":
        this._onPublisherLayers(message);
        break;
      case "bye":
        this._onBye(message.reason);
        break;
      case "draining":
        this._emit("draining", { deadline_seconds: message.deadline_seconds });
        break;
      case "error":
        this._emit("error", { error: new WebinarError(message.code, message.message) });
        break;
      case "pong":
      case "ok":
        break; // replies to requests we no longer wait for
      default:
        // Interaction messages (chat, Q&A, polls, CTA) go to their UI (interaction.js);
        // newer servers may add messages (docs/protocol.md, Versioning): others ignore them.
        this._emit("server-message", message);
        break;
    }
  }

  /** @param {string} reason */
  _onBye(reason) {
    this._byeReason = reason;
    this._emit("bye", { reason });
  }

  /**
   * @param {WebSocket} ws  the socket that closed
   * @param {number} code
   * @param {string} reason
   */
  _onSocketClose(ws, code, reason) {
    if (ws !== this._ws) return; // an older socket, already replaced
    this._ws = null;
    for (const [id, pending] of this._pending) {
      clearTimeout(pending.timer);
      // TRANSLATORS: {request} is the name of a request in the protocol (e.g. "chat-send")
      pending.reject(new WebinarError("closed", t("the connection closed before {request} was answered", { request: pending.type })));
      this._pending.delete(id);
    }
    this._stopPing();
    if (this._attemptInFlight) return; // the reconnect attempt sees its request fail
    const wasIn = this.state === "joined" || this.state === "reconnecting";
    const retry =
      wasIn &&
      this.reconnect &&
      !this._closing &&
      this._resumeToken !== null &&
      !(this._byeReason && FINAL_BYE.has(this._byeReason));
    if (retry) {
      this._teardownMedia("reconnecting");
      this._resetJoinedReady();
      this._byeReason = null;
      this._reconnectAttempt = 0;
      this._droppedAt = Date.now();
      this._setState("reconnecting");
      this._scheduleReconnect(code);
      return;
    }
    this._finish(code, reason, null);
  }

  /**
   * The session is over for good.
   * @param {number} code
   * @param {string} reason
   * @param {WebinarError | null} error  why reconnecting failed, if it did
   */
  _finish(code, reason, error) {
    this._teardownMedia();
    this._stopPing();
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = 0;
    this._network?.removeEventListener("online", this._onOnline);
    this._setState("closed");
    if (!this._closeDispatched) {
      this._closeDispatched = true;
      this._emit("close", { code, reason, bye: this._byeReason, error });
    }
  }

  /** @param {number} code  the close code of the socket that dropped */
  _scheduleReconnect(code = 1006) {
    if (this._reconnectTimer || this._attemptInFlight || this.state !== "reconnecting") return;
    if (this._reconnectAttempt >= this.reconnectAttempts) {
      this._finish(code, "gave up reconnecting", null); // i18n-ignore
      return;
    }
    const base = Math.min(this.reconnectMax, this.reconnectInitial * 2 ** this._reconnectAttempt);
    // a little jitter, so a restarted server is not hit by everyone at once
    const delay = this._reconnectAttempt === 0 ? Math.min(base, 500) : Math.round(base * (0.8 + Math.random() * 0.4));
    this._reconnectAttempt += 1;
    this._emit("reconnecting", { attempt: this._reconnectAttempt, delay, code });
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = 0;
      this._attemptReconnect();
    }, delay);
  }

  /** Try to reconnect at once (a "Try now" button, or the browser going online). */
  reconnectNow() {
    if (this.state !== "reconnecting" || this._attemptInFlight) return;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = 0;
    this._attemptReconnect();
  }

  async _attemptReconnect() {
    if (this.state !== "reconnecting") return;
    this._attemptInFlight = true;
    /** @type {JoinedMessage | null} */
    let joined = null;
    /** @type {unknown} */
    let failure = null;
    try {
      if (this._homeUrl) this.url = this._homeUrl; // placed again (see _moveTo)
      await this._openSocket();
      joined = await this._handshake(this._resumeToken);
    } catch (error) {
      failure = error;
    }
    this._attemptInFlight = false;
    if (this.state !== "reconnecting" || this._closing) {
      // closed by the page meanwhile
      if (this._ws) this._ws.close(1000, "closed by client"); // i18n-ignore
      return;
    }
    if (joined) {
      this.resumeCount += 1;
      this._adoptJoined(joined);
      this._emit("resumed", { joined, resumed: Boolean(joined.resumed) });
      return;
    }
    // Our own place may still look taken for a few seconds when the server that held it died
    // (a node of a cluster lost): "in use" is final only once that can no longer be the case.
    const ownPlace = failure instanceof WebinarError && failure.code === "ticket-in-use" && Date.now() - this._droppedAt < OWN_PLACE_MS;
    if (failure instanceof WebinarError && FINAL_JOIN_ERRORS.has(failure.code) && !ownPlace) {
      if (this._ws) this._ws.close(1000, "giving up"); // i18n-ignore
      this._ws = null;
      this._finish(1000, failure.message, failure);
      return;
    }
    if (this._ws) {
      const ws = this._ws;
      this._ws = null;
      ws.close(4000, "retry");
    }
    this._scheduleReconnect();
  }

  /** Test and debugging hook: drop the socket as a network failure would (no `leave`). */
  dropSocket() {
    this._ws?.close(4001, "dropped by test"); // i18n-ignore
  }

  _startPing() {
    this._stopPing();
    this._pingTimer = setInterval(() => {
      this.request("ping", {}, { timeout: this.pingInterval }).catch((error) => {
        if (error.code === "timeout" && this._ws) {
          // the server stopped answering: give up on this socket (and reconnect)
          this._ws.close(4000, "ping timeout"); // i18n-ignore
        }
      });
    }, this.pingInterval);
  }

  _stopPing() {
    if (this._pingTimer) clearInterval(this._pingTimer);
    this._pingTimer = 0;
  }

  // ------------------------------------------------------------------ leaving

  /** Leave the room politely (`leave` → `bye`), then close everything. */
  async leave() {
    this._closing = true;
    try {
      if (this._ws && this._ws.readyState === WebSocket.OPEN && this.state === "joined") {
        await this.request("leave", {}, { timeout: 5000 });
      }
    } catch (error) {
      console.warn("webinar: leave was not answered", error);
    } finally {
      this.close();
    }
  }

  /** Close the socket and both peer connections at once (no reconnect). */
  close() {
    this._closing = true;
    this._offLanguage();
    this._stopPing();
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = 0;
    this._teardownMedia();
    const ws = this._ws;
    if (this.state === "reconnecting") {
      this._ws = null;
      ws?.close(1000, "closed by client"); // i18n-ignore
      this._finish(1000, "closed by client", null); // i18n-ignore
    } else if (ws && ws.readyState <= WebSocket.OPEN) {
      ws.close(1000, "closed by client"); // i18n-ignore
    } else if (!ws) {
      this._setState("closed");
    }
  }

  /** @param {string} [reason]  what `stream-ended` says for the remote streams */
  _teardownMedia(reason = "transport-closed") {
    this._epoch += 1;
    for (const pc of [this.publishConnection, this.subscribeConnection]) {
      if (pc && pc.signalingState !== "closed") pc.close();
    }
    this.publishConnection = null;
    this.subscribeConnection = null;
    this._publishCandidates.reset();
    this._subscribeCandidates.reset();
    this._spareTransceivers = [];
    this._trackStreams.clear();
    this._localStreams.clear();
    this._publishChain = Promise.resolve();
    this._subscribeChain = Promise.resolve();
    for (const producerId of [...this.remoteStreams.keys()]) {
      this._endRemote(producerId, reason);
    }
    // A new subscribe connection carries those streams again (after a resume).
    this._ended.clear();
    this.producers.clear();
  }

  // ------------------------------------------------------------------ room commands

  /** Open the room for attendees (presenters and hosts; the room leaves its lobby phase). */
  async start() {
    await this.request("start");
  }

  /** @param {"listen-only" | "discussion" | "presenters-only"} mode */
  setMode(mode) {
    return this.request("set-mode", { mode });
  }

  /** @param {boolean} locked */
  lock(locked) {
    return this.request("lock", { locked });
  }

  /** Start or stop the room's recording (needs the `record` capability). @param {boolean} on */
  setRecording(on) {
    return this.request("set-recording", { recording: on });
  }

  /** Start or stop the live stream out (needs the `stream-out` capability). @param {boolean} on */
  setLiveStream(on) {
    return this.request("set-live-stream", { live: on });
  }

  endForAll() {
    return this.request("end-for-all");
  }

  raiseHand() {
    return this.request("raise-hand");
  }

  /** @param {string} [participantId]  someone else's hand (presenters, hosts) */
  lowerHand(participantId) {
    return this.request("lower-hand", participantId ? { participant_id: participantId } : {});
  }

  /**
   * @param {string} participantId
   * @param {{audio: boolean, video: boolean}} grant
   */
  grant(participantId, { audio, video }) {
    return this.request("grant", { participant_id: participantId, audio, video });
  }

  nextSpeaker() {
    return this.request("next-speaker");
  }

  /** @param {string} participantId */
  mute(participantId) {
    return this.request("mute", { participant_id: participantId });
  }

  muteAttendees() {
    return this.request("mute-attendees");
  }

  /**
   * Switch one of our own streams off or on for everyone.
   * @param {string} producerId
   * @param {boolean} paused
   */
  async setStreamPaused(producerId, paused) {
    await this.request("set-stream-paused", { producer_id: producerId, paused });
    const own = this.producers.get(producerId);
    if (own) {
      own.paused = paused;
      own.pause_reason = paused ? "self" : null;
    }
  }

  /**
   * @param {string} participantId
   * @param {"presenter" | "attendee"} role
   */
  setRole(participantId, role) {
    return this.request("set-role", { participant_id: participantId, role });
  }

  /**
   * @param {string} participantId
   * @param {{ban?: boolean}} [options]
   */
  remove(participantId, { ban = false } = {}) {
    return this.request("remove", { participant_id: participantId, ban });
  }

  // ------------------------------------------------------------------ publishing

  /** @returns {RTCConfiguration} */
  _rtcConfig() {
    return { iceServers: this.joined?.ice_servers ?? [], bundlePolicy: "max-bundle" };
  }

  _ensurePublishConnection() {
    if (this.publishConnection) return this.publishConnection;
    const pc = new RTCPeerConnection(this._rtcConfig());
    this.publishConnection = pc;
    this._watchConnection(pc, "publish", this._publishCandidates);
    return pc;
  }

  /**
   * Publish tracks (the first call creates the publish connection, later calls
   * renegotiate it). Refused offers are rolled back and the error rethrown.
   * @param {{track: MediaStreamTrack, source: Source}[]} tracks
   * @returns {Promise<Producer[]>}  the new producers, in the order given
   */
  publish(tracks) {
    const run = this._publishChain.then(() => this._publish(tracks));
    this._publishChain = run.catch(() => {});
    return run;
  }

  /** The producer of ours publishing `source`, if any. @param {Source} source */
  producerFor(source) {
    for (const p of this.producers.values()) if (p.source === source) return p;
    return null;
  }

  /** @param {{track: MediaStreamTrack, source: Source}[]} tracks */
  async _publish(tracks) {
    if (this.state !== "joined") throw new WebinarError("not-joined", t("join the event first"));
    const pc = this._ensurePublishConnection();
    /** @type {{transceiver: RTCRtpTransceiver, track: MediaStreamTrack, source: Source}[]} */
    const added = [];
    for (const { track, source } of tracks) {
      const transceiver = await this._sendingTransceiver(pc, track, this._localStream(source), source);
      added.push({ transceiver, track, source });
    }
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
    } catch (error) {
      await this._rollbackPublish(pc, added);
      throw new WebinarError("media", t("could not prepare the offer: {detail}", { detail: describe(error) }), error);
    }
    // Every sending m-line, by mid (known now, after setLocalDescription).
    const bySender = new Map([...this.producers.values()].map((p) => [p.transceiver, p.source]));
    /** @type {{mid: string, source: Source}[]} */
    const specs = [];
    for (const transceiver of pc.getTransceivers()) {
      if (!transceiver.mid || transceiver.direction !== "sendonly") continue;
      const mine = added.find((a) => a.transceiver === transceiver);
      const source = mine ? mine.source : bySender.get(transceiver);
      if (source) specs.push({ mid: transceiver.mid, source });
    }
    /** @type {any} */
    let reply;
    try {
      reply = await this.request("publish", { sdp: pc.localDescription?.sdp, tracks: specs });
    } catch (error) {
      await this._rollbackPublish(pc, added);
      throw error;
    }
    if (pc !== this.publishConnection) throw new WebinarError("closed", t("the connection dropped"));
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    } catch (error) {
      throw new WebinarError("media", t("the server's answer was not accepted: {detail}", { detail: describe(error) }), error);
    }
    for (const { transceiver, track } of added) {
      if (track.kind === "video") await adoptNegotiatedEncodings(transceiver.sender);
    }
    this._publishCandidates.release();
    /** @type {Producer[]} */
    const result = [];
    for (const { transceiver, track, source } of added) {
      const producer = (reply.producers ?? []).find(
        (/** @type {any} */ p) => p.mid === transceiver.mid,
      );
      if (!producer) continue;
      /** @type {OwnProducer} */
      const entry = {
        producer_id: producer.producer_id,
        mid: producer.mid,
        source,
        track,
        transceiver,
        paused: false,
        pause_reason: null,
      };
      this.producers.set(producer.producer_id, entry);
      result.push({ producer_id: producer.producer_id, mid: producer.mid, source, track });
    }
    return result;
  }

  /**
   * A transceiver sending `track`: an idle spare of the same kind, or a new one.
   * @param {RTCPeerConnection} pc
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   * @param {Source} [source]
   */
  async _sendingTransceiver(pc, track, stream, source) {
    const index = this._spareTransceivers.findIndex(
      (t) => t.receiver.track.kind === track.kind && t.currentDirection !== "stopped",
    );
    if (index >= 0) {
      const [spare] = this._spareTransceivers.splice(index, 1);
      await spare.sender.replaceTrack(track);
      spare.sender.setStreams?.(stream);
      spare.direction = "sendonly";
      return spare;
    }
    const encodings = track.kind === "video" && source ? sendEncodings(source) : undefined;
    const transceiver = pc.addTransceiver(track, {
      direction: "sendonly",
      streams: [stream],
      ...(encodings ? { sendEncodings: encodings } : {}),
    });
    if (track.kind === "video") preferCodec(transceiver, "video/VP8");
    return transceiver;
  }

  /** An m-line whose producer is gone waits, idle, to carry the next track of its kind.
   * @param {RTCRtpTransceiver} transceiver */
  _retire(transceiver) {
    transceiver.direction = "inactive";
    transceiver.sender.replaceTrack(null).catch(() => {});
    if (!this._spareTransceivers.includes(transceiver)) this._spareTransceivers.push(transceiver);
  }

  /**
   * Undo a refused offer: nothing of it was applied on the server.
   * @param {RTCPeerConnection} pc
   * @param {{transceiver: RTCRtpTransceiver}[]} added
   */
  async _rollbackPublish(pc, added) {
    try {
      if (pc.signalingState === "have-local-offer") {
        await pc.setLocalDescription({ type: "rollback" });
      }
    } catch (error) {
      console.warn("webinar: rollback failed", error);
    }
    // Transceivers survive a rollback (addTransceiver made them). Stopping them would
    // make Chromium recycle their m-line slots for the next offer, which it then
    // refuses when the kind differs; so they wait, idle, to be reused.
    for (const { transceiver } of added) {
      transceiver.direction = "inactive";
      await transceiver.sender.replaceTrack(null).catch(() => {});
      if (!this._spareTransceivers.includes(transceiver)) this._spareTransceivers.push(transceiver);
    }
  }

  /**
   * Stop one of our tracks. Its m-line stops sending now, is offered as inactive
   * with the next `publish`, and carries the next track of its kind.
   * @param {string} producerId
   */
  unpublish(producerId) {
    const run = this._publishChain.then(() => this._unpublish(producerId));
    this._publishChain = run.catch(() => {});
    return run;
  }

  /** @param {string} producerId */
  async _unpublish(producerId) {
    const entry = this.producers.get(producerId);
    this.producers.delete(producerId);
    if (entry) this._retire(entry.transceiver);
    try {
      await this.request("unpublish", { producer_id: producerId });
    } catch (error) {
      // already gone server-side (it ended there first, or the connection dropped)
      if (!(error instanceof WebinarError && ["unknown-stream", "not-connected", "closed"].includes(error.code))) {
        throw error;
      }
    }
  }

  /**
   * Send another track (a different camera or microphone) for a published producer,
   * without renegotiating.
   * @param {string} producerId
   * @param {MediaStreamTrack} track
   */
  async replaceTrack(producerId, track) {
    const entry = this.producers.get(producerId);
    if (!entry) throw new WebinarError("unknown-stream", t("no such producer of ours"));
    await entry.transceiver.sender.replaceTrack(track);
    entry.track = track;
  }

  /**
   * Choose what we receive: "auto", "data-saver" (one video, small) or "high" (fewer
   * videos rather than small ones). Kept across reconnects.
   * @param {"auto" | "data-saver" | "high"} quality
   */
  async setQuality(quality) {
    this.quality = quality;
    if (this.state === "joined") await this._sendQuality();
  }

  _sendQuality() {
    return this.request("set-video-quality", { quality: this.quality }).catch((error) => {
      if (error.code !== "closed" && error.code !== "not-connected") {
        console.warn(`webinar: set-video-quality refused: ${error.code} ${error.message}`);
      }
    });
  }

  /** Dynacast: the server says which of our encodings anyone needs.
   * @param {{producer_id: string, active: boolean[]}} message */
  _onPublisherLayers(message) {
    const own = this.producers.get(message.producer_id);
    if (!own) return;
    applyActiveEncodings(own.transceiver.sender, message.active)
      .then((changed) => {
        if (changed) this._emit("publisher-layers", message);
      })
      .catch((error) => console.warn("webinar: could not change the sent encodings", error));
  }

  /** @param {Source} source */
  _localStream(source) {
    const group = SYNC_GROUP[source] ?? source;
    let stream = this._localStreams.get(group);
    if (!stream) {
      stream = new MediaStream();
      this._localStreams.set(group, stream);
    }
    return stream;
  }

  /**
   * Trickle this connection's ICE candidates (while it is the current one) and report
   * its connection state as `mediastatechange`.
   * @param {RTCPeerConnection} pc
   * @param {"publish" | "subscribe"} target
   * @param {CandidateTrickle} candidates
   */
  _watchConnection(pc, target, candidates) {
    pc.addEventListener("icecandidate", (event) => {
      const current = target === "publish" ? this.publishConnection : this.subscribeConnection;
      if (pc !== current) return;
      if (!event.candidate || !event.candidate.candidate) return;
      candidates.add(event.candidate);
    });
    pc.addEventListener("connectionstatechange", () => {
      this._emit("mediastatechange", { target, state: pc.connectionState });
    });
  }

  /**
   * @param {"publish" | "subscribe"} target
   * @param {RTCIceCandidate} candidate
   */
  _sendCandidate(target, candidate) {
    /** @type {Record<string, unknown>} */
    const fields = { target, candidate: candidate.candidate };
    if (candidate.sdpMid != null) fields.sdp_mid = candidate.sdpMid;
    if (candidate.sdpMLineIndex != null) fields.sdp_mline_index = candidate.sdpMLineIndex;
    this.request("ice-candidate", fields).catch((error) => {
      if (error.code === "closed" || error.code === "not-connected") return;
      console.warn(`webinar: ${target} ICE candidate refused: ${error.code} ${error.message}`);
    });
  }

  // ------------------------------------------------------------------ subscribing

  _ensureSubscribeConnection() {
    if (this.subscribeConnection) return this.subscribeConnection;
    const pc = new RTCPeerConnection(this._rtcConfig());
    this.subscribeConnection = pc;
    pc.addEventListener("track", (event) => {
      const mid = event.transceiver.mid;
      if (mid) this._trackStreams.set(mid, event.streams[0] ?? new MediaStream([event.track]));
    });
    this._watchConnection(pc, "subscribe", this._subscribeCandidates);
    return pc;
  }

  /** Offers are answered one at a time, in order. @param {any} message */
  _queueSubscriberOffer(message) {
    const epoch = this._epoch;
    this._subscribeChain = this._subscribeChain
      .then(() => this._answerSubscriberOffer(message, epoch))
      .catch((error) => {
        if (epoch !== this._epoch) return; // the connection it was for is gone
        const wrapped =
          error instanceof WebinarError
            ? error
            : new WebinarError("media", t("could not receive the streams: {detail}", { detail: describe(error) }), error);
        if (wrapped.code !== "closed" && wrapped.code !== "not-connected" && this.state === "joined") {
          this._emit("error", { error: wrapped });
        }
      });
  }

  /**
   * @param {{sdp: string, streams: MidStream[]}} message
   * @param {number} epoch  the media generation the offer belongs to
   */
  async _answerSubscriberOffer(message, epoch) {
    await this._joinedReady;
    if (this.state !== "joined" || epoch !== this._epoch) return; // closed or dropped meanwhile
    const pc = this._ensureSubscribeConnection();
    const offered = new Map(message.streams.map((s) => [s.mid, s]));
    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await this.request("subscriber-answer", { sdp: pc.localDescription?.sdp ?? answer.sdp });
    if (pc !== this.subscribeConnection) return;
    this._subscribeCandidates.release();
    // Streams that the offer no longer carries are over.
    const carried = new Set([...offered.values()].map((s) => s.producer_id));
    for (const producerId of [...this.remoteStreams.keys()]) {
      if (!carried.has(producerId)) this._endRemote(producerId, "removed");
    }
    for (const transceiver of pc.getTransceivers()) {
      const offeredInfo = transceiver.mid ? offered.get(transceiver.mid) : undefined;
      if (
        !offeredInfo ||
        this._ended.has(offeredInfo.producer_id) ||
        this.remoteStreams.has(offeredInfo.producer_id)
      ) {
        continue;
      }
      // The offer's list lacks the paused state: take it from what was announced.
      const known = this.streamInfo.get(offeredInfo.producer_id);
      /** @type {MidStream} */
      const info = {
        ...offeredInfo,
        paused: known?.paused ?? false,
        pause_reason: known?.pause_reason ?? null,
      };
      const track = transceiver.receiver.track;
      const stream =
        this._trackStreams.get(/** @type {string} */ (transceiver.mid)) ?? new MediaStream([track]);
      /** @type {RemoteStream} */
      const remote = { info, track, stream, transceiver };
      this.remoteStreams.set(info.producer_id, remote);
      this._emit("stream", remote);
    }
  }

  /** @param {{producer_id: string, participant_id: string, reason: string}} message */
  _onStreamEnded(message) {
    if (message.participant_id === this.participantId) {
      // one of ours: closed by the server (or the echo of our own unpublish)
      const own = this.producers.get(message.producer_id);
      if (own) {
        this.producers.delete(message.producer_id);
        this._retire(own.transceiver);
      }
      this._emit("producer-closed", {
        producer_id: message.producer_id,
        source: own?.source ?? null,
        reason: message.reason,
        ours: Boolean(own),
      });
      return;
    }
    this._endRemote(message.producer_id, message.reason, message.participant_id);
  }

  /** @param {StreamInfo} stream */
  _onStreamUpdated(stream) {
    const own = stream.participant_id === this.participantId;
    if (own) {
      const entry = this.producers.get(stream.producer_id);
      if (entry) {
        entry.paused = Boolean(stream.paused);
        entry.pause_reason = stream.pause_reason ?? null;
      }
    } else {
      this.streamInfo.set(stream.producer_id, stream);
      const remote = this.remoteStreams.get(stream.producer_id);
      if (remote) {
        remote.info.paused = Boolean(stream.paused);
        remote.info.pause_reason = stream.pause_reason ?? null;
      }
    }
    this._emit("stream-updated", { stream, own });
  }

  /**
   * @param {string} producerId
   * @param {string} reason
   * @param {string} [participantId]
   */
  _endRemote(producerId, reason, participantId) {
    const wasShown = this.remoteStreams.get(producerId);
    const info = wasShown?.info ?? this.streamInfo.get(producerId) ?? null;
    this._ended.add(producerId);
    this.remoteStreams.delete(producerId);
    this.streamInfo.delete(producerId);
    this._emit("stream-ended", {
      producer_id: producerId,
      participant_id: participantId ?? info?.participant_id ?? null,
      reason,
      info,
      shown: Boolean(wasShown),
    });
  }

  // ------------------------------------------------------------------ helpers

  /** @param {ConnectionState} state */
  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("statechange", { state });
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * Our ICE candidates for one side (publish or subscribe): held until its first
 * negotiation is done (the server knows the connection then), sent at once after that.
 */
class CandidateTrickle {
  /** @param {(candidate: RTCIceCandidate) => void} send */
  constructor(send) {
    this.send = send;
    this.open = false;
    /** @type {RTCIceCandidate[]} */
    this.held = [];
  }

  /** @param {RTCIceCandidate} candidate */
  add(candidate) {
    if (this.open) this.send(candidate);
    else this.held.push(candidate);
  }

  /** The first negotiation is done: send what was held, and from now on at once. */
  release() {
    if (this.open) return;
    this.open = true;
    for (const candidate of this.held.splice(0)) this.send(candidate);
  }

  /** A new connection: hold again. */
  reset() {
    this.open = false;
    this.held = [];
  }
}

/** The WebSocket URL of this page's server. */
export function defaultSocketUrl() {
  const { protocol, host } = globalThis.location;
  const scheme = protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${host}/ws`;
}

/**
 * Put `mimeType` first in the transceiver's codec list (the server forwards VP8 only).
 * @param {RTCRtpTransceiver} transceiver
 * @param {string} mimeType
 */
function preferCodec(transceiver, mimeType) {
  if (typeof RTCRtpSender.getCapabilities !== "function" || !transceiver.setCodecPreferences) return;
  const caps = RTCRtpSender.getCapabilities(transceiver.sender.track?.kind ?? "video");
  if (!caps) return;
  const wanted = mimeType.toLowerCase();
  const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  if (!first.length) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== wanted);
  try {
    transceiver.setCodecPreferences([...first, ...rest]);
  } catch {
    // not fatal: the browser's default order offers VP8 too
  }
}

/** @param {unknown} error */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}
