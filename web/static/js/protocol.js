// The browser side of the webinar signalling protocol, version 1 (docs/protocol.md).
//
// UI-free: a WebinarConnection owns the WebSocket and the two RTCPeerConnections
// (publish: the browser offers; subscribe: the server offers) and reports what
// happens as DOM events. The UI lives in room.js.
//
// Structure, with reconnect/resume in mind: the socket (`_socket*`), the
// request table (`request`, `_pending`), the publish side (`_publish*`) and the
// subscribe side (`_subscribe*`) are separate, and `join()` keeps its arguments,
// so a later resume can open a new socket and re-run the handshake.

export const PROTOCOL_VERSION = 1;
export const CLIENT_NAME = "webinar-web/1";
export const PING_INTERVAL_MS = 15_000;
export const REQUEST_TIMEOUT_MS = 20_000;

/**
 * @typedef {"camera" | "microphone" | "screen" | "screen-audio"} Source
 *
 * @typedef {object} ParticipantInfo
 * @property {string} participant_id
 * @property {string} name
 * @property {string} role
 *
 * @typedef {object} StreamInfo
 * @property {string} producer_id
 * @property {string} participant_id
 * @property {string} name
 * @property {Source} source
 * @property {"audio" | "video"} kind
 *
 * @typedef {StreamInfo & {mid: string}} MidStream
 *
 * @typedef {object} JoinedMessage
 * @property {string} participant_id
 * @property {string} role
 * @property {{event_id: string, title: string, starts_at: string | null}} event
 * @property {RTCIceServer[]} ice_servers
 * @property {number} max_cameras
 * @property {ParticipantInfo[]} participants
 * @property {StreamInfo[]} streams
 *
 * @typedef {object} Producer
 * @property {string} producer_id
 * @property {string} mid
 * @property {Source} source
 * @property {MediaStreamTrack} track
 *
 * @typedef {object} RemoteStream  detail of the `stream` event
 * @property {MidStream} info
 * @property {MediaStreamTrack} track
 * @property {MediaStream} stream  audio and video of one participant share it
 * @property {RTCRtpTransceiver} transceiver
 *
 * @typedef {"idle" | "connecting" | "connected" | "joined" | "closed"} ConnectionState
 */

/** A refused request or a failure of the connection; `code` is stable (see docs/protocol.md). */
export class WebinarError extends Error {
  /**
   * @param {string} code  a protocol error code, or one of the client's own:
   *   `timeout`, `closed`, `not-connected`, `media`
   * @param {string} message  for people
   * @param {unknown} [cause]
   */
  constructor(code, message, cause) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "WebinarError";
    this.code = code;
  }
}

/** Sources that travel together in one MediaStream on the publisher's side. */
const SYNC_GROUP = { camera: "main", microphone: "main", screen: "screen", "screen-audio": "screen" };

/**
 * One participant's session.
 *
 * Events (all `CustomEvent`s, payload in `detail`):
 * - `statechange` `{state}` — see {@link ConnectionState}
 * - `stream` {@link RemoteStream} — a remote track can be played
 * - `stream-added` `{stream: StreamInfo}` — announced; its track follows with `stream`
 * - `stream-ended` `{producer_id, participant_id, reason, info}` — remove its tile now
 * - `participant-joined` `{participant}`, `participant-left` `{participant_id, reason, participant}`
 * - `producer-closed` `{producer_id, source}` — one of our own published tracks ended server-side
 * - `mediastatechange` `{target: "publish" | "subscribe", state}`
 * - `room-updated` `{room, cause, by}`, `room-ended` `{thank_you_url}`
 * - `bye` `{reason}`, `error` `{error: WebinarError}`, `close` `{code, reason, bye}`
 */
export class WebinarConnection extends EventTarget {
  /**
   * @param {object} [options]
   * @param {number} [options.pingInterval]  ms between `ping`s
   * @param {number} [options.requestTimeout]  ms before a request fails with `timeout`
   */
  constructor(options = {}) {
    super();
    this.pingInterval = options.pingInterval ?? PING_INTERVAL_MS;
    this.requestTimeout = options.requestTimeout ?? REQUEST_TIMEOUT_MS;
    /** @type {ConnectionState} */
    this.state = "idle";
    /** @type {JoinedMessage | null} */
    this.joined = null;
    /** @type {any} */
    this.welcome = null;
    /** The room's state (`joined.room`, then `room-updated`), when the server sends it. @type {any} */
    this.room = null;
    /** @type {Map<string, ParticipantInfo>} */
    this.participants = new Map();
    /** Streams announced by the server, by producer_id. @type {Map<string, StreamInfo>} */
    this.streamInfo = new Map();
    /** Streams with a playable track, by producer_id. @type {Map<string, RemoteStream>} */
    this.remoteStreams = new Map();
    /** Our own published tracks, by producer_id. @type {Map<string, Producer & {transceiver: RTCRtpTransceiver}>} */
    this.producers = new Map();
    /** @type {RTCPeerConnection | null} */
    this.publishConnection = null;
    /** @type {RTCPeerConnection | null} */
    this.subscribeConnection = null;

    /** @type {WebSocket | null} */
    this._ws = null;
    this._nextId = 1;
    /** @type {Map<number, {resolve: (m: any) => void, reject: (e: Error) => void, timer: number, type: string}>} */
    this._pending = new Map();
    /** @type {{eventId: string, name: string, credential?: string} | null} */
    this._joinParams = null;
    this._pingTimer = 0;
    /** @type {string | null} */
    this._byeReason = null;
    this._closeDispatched = false;

    // publish side
    this._publishChain = Promise.resolve();
    this._publishNegotiated = false;
    /** @type {RTCIceCandidate[]} */
    this._publishCandidates = [];
    /** @type {Map<string, MediaStream>} */
    this._localStreams = new Map();
    /** Transceivers of refused offers, rolled back and idle: reused before adding new
     * m-lines (they never carried a producer, so the server accepts their mid later).
     * @type {RTCRtpTransceiver[]} */
    this._spareTransceivers = [];

    // subscribe side: offers wait until `joined` is in (its ice_servers configure the connection)
    /** @type {() => void} */
    this._markJoined = () => {};
    /** @type {Promise<void>} */
    this._joinedReady = new Promise((resolve) => {
      this._markJoined = resolve;
    });
    this._subscribeChain = Promise.resolve();
    this._subscribeAnswered = false;
    /** @type {RTCIceCandidate[]} */
    this._subscribeCandidates = [];
    /** MediaStream of each m-line, from `track` events. @type {Map<string, MediaStream>} */
    this._trackStreams = new Map();
    /** Producers that ended: never shown again even if a stale offer still carries them. */
    this._ended = new Set();
  }

  // ------------------------------------------------------------------ socket

  /**
   * Open the signalling WebSocket.
   * @param {string} [url]  defaults to `/ws` on this page's host
   * @returns {Promise<void>}
   */
  connect(url) {
    if (this._ws) return Promise.reject(new WebinarError("bad-state", "already connected"));
    const target = url ?? defaultSocketUrl();
    this._setState("connecting");
    return new Promise((resolve, reject) => {
      let opened = false;
      const ws = new WebSocket(target);
      this._ws = ws;
      ws.addEventListener("open", () => {
        opened = true;
        this._setState("connected");
        resolve();
      });
      ws.addEventListener("message", (event) => this._onSocketMessage(event));
      ws.addEventListener("close", (event) => {
        if (!opened) reject(new WebinarError("closed", "could not reach the server"));
        this._onSocketClose(event.code, event.reason);
      });
    });
  }

  /**
   * Send hello and join; resolves with the `joined` payload.
   * @param {{eventId: string, name: string, credential?: string | null}} params
   * @returns {Promise<JoinedMessage>}
   */
  async join({ eventId, name, credential }) {
    this.welcome = await this.request("hello", { protocol: PROTOCOL_VERSION, client: CLIENT_NAME });
    /** @type {Record<string, unknown>} */
    const fields = { event_id: eventId, name };
    if (credential) fields.credential = credential;
    this._joinParams = { eventId, name, ...(credential ? { credential } : {}) };
    const joined = /** @type {JoinedMessage} */ (await this.request("join", fields));
    this.joined = joined;
    this.room = /** @type {any} */ (joined).room ?? null;
    for (const p of joined.participants) this.participants.set(p.participant_id, p);
    for (const s of joined.streams) this.streamInfo.set(s.producer_id, s);
    this._setState("joined");
    this._markJoined();
    this._startPing();
    return joined;
  }

  /** Open the room for attendees (presenters and hosts; the room leaves its lobby phase). */
  async start() {
    await this.request("start");
  }

  /** Our participant ID once joined. */
  get participantId() {
    return this.joined?.participant_id ?? null;
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
      return Promise.reject(new WebinarError("not-connected", "not connected to the server"));
    }
    const id = this._nextId++;
    const timeout = options.timeout ?? this.requestTimeout;
    return new Promise((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this._pending.delete(id);
        reject(new WebinarError("timeout", `no reply to ${type} within ${timeout / 1000} s`));
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
      const pending = /** @type {any} */ (this._pending.get(message.id));
      this._pending.delete(message.id);
      window.clearTimeout(pending.timer);
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
      case "participant-joined":
        this.participants.set(message.participant.participant_id, message.participant);
        this._emit("participant-joined", { participant: message.participant });
        break;
      case "participant-left": {
        const participant = this.participants.get(message.participant_id) ?? null;
        this.participants.delete(message.participant_id);
        this._emit("participant-left", { ...message, participant });
        break;
      }
      case "room-updated":
        this.room = message.room;
        this._emit("room-updated", { room: message.room, cause: message.cause, by: message.by });
        break;
      case "room-ended":
        this._emit("room-ended", { thank_you_url: message.thank_you_url });
        break;
      case "bye":
        this._onBye(message.reason);
        break;
      case "error":
        this._emit("error", { error: new WebinarError(message.code, message.message) });
        break;
      case "pong":
      case "ok":
        break; // replies to requests we no longer wait for
      default:
        // newer servers may add messages (docs/protocol.md, Versioning): ignore them
        break;
    }
  }

  /** @param {string} reason */
  _onBye(reason) {
    this._byeReason = reason;
    this._emit("bye", { reason });
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  _onSocketClose(code, reason) {
    this._ws = null;
    for (const [id, pending] of this._pending) {
      window.clearTimeout(pending.timer);
      pending.reject(new WebinarError("closed", `the connection closed before ${pending.type} was answered`));
      this._pending.delete(id);
    }
    this._teardownMedia();
    this._stopPing();
    this._setState("closed");
    if (!this._closeDispatched) {
      this._closeDispatched = true;
      this._emit("close", { code, reason, bye: this._byeReason });
    }
  }

  _startPing() {
    this._stopPing();
    this._pingTimer = window.setInterval(() => {
      this.request("ping", {}, { timeout: this.pingInterval }).catch((error) => {
        if (error.code === "timeout" && this._ws) {
          // the server stopped answering: give up on this socket
          this._ws.close(4000, "ping timeout");
        }
      });
    }, this.pingInterval);
  }

  _stopPing() {
    if (this._pingTimer) window.clearInterval(this._pingTimer);
    this._pingTimer = 0;
  }

  // ------------------------------------------------------------------ leaving

  /** Leave the room politely (`leave` → `bye`), then close everything. */
  async leave() {
    try {
      if (this._ws && this._ws.readyState === WebSocket.OPEN && this.joined) {
        await this.request("leave", {}, { timeout: 5000 });
      }
    } catch (error) {
      console.warn("webinar: leave was not answered", error);
    } finally {
      this.close();
    }
  }

  /** Close the socket and both peer connections at once. */
  close() {
    this._stopPing();
    this._teardownMedia();
    const ws = this._ws;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      ws.close(1000, "closed by client");
    } else if (!ws) {
      this._setState("closed");
    }
  }

  _teardownMedia() {
    for (const pc of [this.publishConnection, this.subscribeConnection]) {
      if (pc && pc.signalingState !== "closed") pc.close();
    }
    this.publishConnection = null;
    this.subscribeConnection = null;
    this._publishNegotiated = false;
    this._subscribeAnswered = false;
    this._publishCandidates = [];
    this._subscribeCandidates = [];
    this._spareTransceivers = [];
    for (const producerId of [...this.remoteStreams.keys()]) {
      this._endRemote(producerId, "transport-closed");
    }
    this.producers.clear();
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
    pc.addEventListener("icecandidate", (event) => {
      if (!event.candidate || !event.candidate.candidate) return;
      if (this._publishNegotiated) {
        this._sendCandidate("publish", event.candidate);
      } else {
        this._publishCandidates.push(event.candidate);
      }
    });
    pc.addEventListener("connectionstatechange", () => {
      this._emit("mediastatechange", { target: "publish", state: pc.connectionState });
    });
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

  /** @param {{track: MediaStreamTrack, source: Source}[]} tracks */
  async _publish(tracks) {
    if (this.state !== "joined") throw new WebinarError("not-joined", "join the event first");
    const pc = this._ensurePublishConnection();
    /** @type {{transceiver: RTCRtpTransceiver, track: MediaStreamTrack, source: Source}[]} */
    const added = [];
    for (const { track, source } of tracks) {
      const transceiver = await this._sendingTransceiver(pc, track, this._localStream(source));
      added.push({ transceiver, track, source });
    }
    /** @type {RTCSessionDescriptionInit} */
    let offer;
    try {
      offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
    } catch (error) {
      await this._rollbackPublish(pc, added);
      throw new WebinarError("media", `could not prepare the offer: ${describe(error)}`, error);
    }
    // Every sending m-line, by mid (known now, after setLocalDescription).
    const bySender = new Map(
      [...this.producers.values()].map((p) => [p.transceiver, p.source]),
    );
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
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    } catch (error) {
      throw new WebinarError("media", `the server's answer was not accepted: ${describe(error)}`, error);
    }
    if (!this._publishNegotiated) {
      this._publishNegotiated = true;
      const queued = this._publishCandidates.splice(0);
      for (const candidate of queued) this._sendCandidate("publish", candidate);
    }
    /** @type {Producer[]} */
    const result = [];
    for (const { transceiver, track, source } of added) {
      const producer = (reply.producers ?? []).find(
        (/** @type {any} */ p) => p.mid === transceiver.mid,
      );
      if (!producer) continue;
      const entry = { producer_id: producer.producer_id, mid: producer.mid, source, track, transceiver };
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
   */
  async _sendingTransceiver(pc, track, stream) {
    const index = this._spareTransceivers.findIndex((t) => t.receiver.track.kind === track.kind);
    if (index >= 0) {
      const [spare] = this._spareTransceivers.splice(index, 1);
      await spare.sender.replaceTrack(track);
      spare.sender.setStreams?.(stream);
      spare.direction = "sendonly";
      return spare;
    }
    const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    if (track.kind === "video") preferCodec(transceiver, "video/VP8");
    return transceiver;
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
      this._spareTransceivers.push(transceiver);
    }
  }

  /**
   * Stop one of our tracks. Its m-line stops sending now and is offered as
   * inactive with the next `publish`.
   * @param {string} producerId
   */
  async unpublish(producerId) {
    const entry = this.producers.get(producerId);
    this.producers.delete(producerId);
    if (entry) {
      entry.transceiver.direction = "inactive";
      await entry.transceiver.sender.replaceTrack(null).catch(() => {});
    }
    try {
      await this.request("unpublish", { producer_id: producerId });
    } catch (error) {
      // already gone server-side (it ended there first): nothing left to do
      if (!(error instanceof WebinarError && error.code === "unknown-stream")) throw error;
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
    if (!entry) throw new WebinarError("unknown-stream", "no such producer of ours");
    await entry.transceiver.sender.replaceTrack(track);
    entry.track = track;
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
   * @param {"publish" | "subscribe"} target
   * @param {RTCIceCandidate} candidate
   */
  _sendCandidate(target, candidate) {
    /** @type {Record<string, unknown>} */
    const fields = { target, candidate: candidate.candidate };
    if (candidate.sdpMid != null) fields.sdp_mid = candidate.sdpMid;
    if (candidate.sdpMLineIndex != null) fields.sdp_mline_index = candidate.sdpMLineIndex;
    this.request("ice-candidate", fields).catch((error) => {
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
    pc.addEventListener("icecandidate", (event) => {
      if (!event.candidate || !event.candidate.candidate) return;
      if (this._subscribeAnswered) {
        this._sendCandidate("subscribe", event.candidate);
      } else {
        this._subscribeCandidates.push(event.candidate);
      }
    });
    pc.addEventListener("connectionstatechange", () => {
      this._emit("mediastatechange", { target: "subscribe", state: pc.connectionState });
    });
    return pc;
  }

  /** Offers are answered one at a time, in order. @param {any} message */
  _queueSubscriberOffer(message) {
    this._subscribeChain = this._subscribeChain
      .then(() => this._answerSubscriberOffer(message))
      .catch((error) => {
        const wrapped =
          error instanceof WebinarError
            ? error
            : new WebinarError("media", `could not receive the streams: ${describe(error)}`, error);
        if (wrapped.code !== "closed") this._emit("error", { error: wrapped });
      });
  }

  /** @param {{sdp: string, streams: MidStream[]}} message */
  async _answerSubscriberOffer(message) {
    await this._joinedReady;
    if (this.state !== "joined") return; // closed meanwhile
    const pc = this._ensureSubscribeConnection();
    const offered = new Map(message.streams.map((s) => [s.mid, s]));
    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await this.request("subscriber-answer", { sdp: pc.localDescription?.sdp ?? answer.sdp });
    if (!this._subscribeAnswered) {
      this._subscribeAnswered = true;
      for (const candidate of this._subscribeCandidates.splice(0)) {
        this._sendCandidate("subscribe", candidate);
      }
    }
    // Streams that the offer no longer carries are over.
    const carried = new Set([...offered.values()].map((s) => s.producer_id));
    for (const producerId of [...this.remoteStreams.keys()]) {
      if (!carried.has(producerId)) this._endRemote(producerId, "removed");
    }
    for (const transceiver of pc.getTransceivers()) {
      const info = transceiver.mid ? offered.get(transceiver.mid) : undefined;
      if (!info || this._ended.has(info.producer_id) || this.remoteStreams.has(info.producer_id)) {
        continue;
      }
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
      // one of ours: closed by the server (or the reply to our own unpublish)
      const own = this.producers.get(message.producer_id);
      if (own) {
        this.producers.delete(message.producer_id);
        own.transceiver.direction = "inactive";
        own.transceiver.sender.replaceTrack(null).catch(() => {});
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

/** The WebSocket URL of this page's server. */
export function defaultSocketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
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
