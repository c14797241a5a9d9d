// What the room says in toasts when something happens: someone's streams ended or they
// left (collected for a moment into one toast), hands, grants, the room's mode, lock
// and phase, our own streams paused or closed by the server, a restart coming, a resume.

import { MODES, SOURCE_NOUN } from "../ui.js";
import { isStaff } from "../participants.js";

/** @typedef {import("./page.js").RoomContext} RoomContext */
/** @typedef {import("./page.js").ParticipantInfo} ParticipantInfo */
/** @typedef {import("./page.js").StreamInfo} StreamInfo */
/** @typedef {import("./page.js").Source} Source */
/** @typedef {{name: string, sources: Set<string>, reason: string, timer: number}} EndedNote */

/** Stream-ended reasons that mean the network, not the person, stopped it. */
const LOST_REASONS = new Set(["disconnected", "transport-closed", "producer-closed", "connection-failed"]);

/**
 * @typedef {object} NoticeActions  what a toast's button does
 * @property {(source: "microphone" | "camera") => void} turnOn  switch our microphone or camera on
 * @property {(person: ParticipantInfo) => void} allowMic  let a person with a raised hand speak
 */

export class Notices {
  /**
   * @param {RoomContext} room
   * @param {NoticeActions} actions
   */
  constructor(room, actions) {
    this.room = room;
    this.toasts = room.toasts;
    this.actions = actions;
    /** Stream-ended notices collected per participant for one toast. @type {Map<string, EndedNote>} */
    this.endedNotes = new Map();
  }

  /**
   * @param {string} text
   * @param {import("../ui.js").ToastOptions} [options]
   */
  show(text, options) {
    this.toasts.show(text, options);
  }

  /**
   * The toast button that switches our microphone or camera on.
   * @param {"microphone" | "camera"} source
   */
  turnOnAction(source) {
    return {
      label: source === "microphone" ? "Turn microphone on" : "Turn camera on",
      testid: source === "microphone" ? "toast-mic-on" : "toast-camera-on",
      run: () => this.actions.turnOn(source),
    };
  }

  /**
   * Collect what ended per participant for a moment, then say it in one toast.
   * @param {StreamInfo} info
   * @param {string} reason
   */
  streamEnded(info, reason) {
    let note = this.endedNotes.get(info.participant_id);
    if (!note) {
      note = {
        name: info.name || "The presenter",
        sources: new Set(),
        reason,
        timer: window.setTimeout(() => this.flushNote(info.participant_id), 250),
      };
      this.endedNotes.set(info.participant_id, note);
    }
    note.sources.add(info.source);
    if (reason === "left") note.reason = "left";
  }

  /**
   * Someone left: one toast with their streams ending, or for a presenter one of its own.
   * @param {{participant_id: string, participant?: ParticipantInfo | null}} detail
   */
  participantLeft(detail) {
    const note = this.endedNotes.get(detail.participant_id);
    if (note) note.reason = "left";
    else if (detail.participant && isStaff(detail.participant.role)) {
      this.show(`${detail.participant.name} left the webinar`);
    }
  }

  /** @param {string} participantId */
  flushNote(participantId) {
    const note = this.endedNotes.get(participantId);
    this.endedNotes.delete(participantId);
    if (!note) return;
    const { name, sources, reason } = note;
    if (reason === "left") {
      this.show(`${name} left the webinar`);
      return;
    }
    const own = [];
    if (sources.has("camera")) own.push("camera");
    if (sources.has("microphone")) own.push("microphone");
    const lost = LOST_REASONS.has(reason);
    /** @param {string} things  @param {string} stopped */
    const say = (things, stopped) => {
      if (reason === "unpublished") return `${name} ${stopped}`;
      return `${name}'s ${things} ${lost ? "stopped (connection lost)" : "ended"}`;
    };
    if (own.length) {
      this.show(say(own.join(" and "), `stopped their ${own.join(" and ")}`));
    }
    if (sources.has("screen")) {
      this.show(say("screen share", "stopped sharing their screen"));
    }
  }

  /**
   * Our own camera or microphone was paused by the mode or a presenter.
   * @param {StreamInfo} stream
   */
  ownStreamPaused(stream) {
    const noun = SOURCE_NOUN[stream.source];
    const why =
      stream.pause_reason === "mode-changed"
        ? `The mode changed to ${MODES[this.room.conn?.room?.mode ?? ""]?.label ?? "another mode"}, so your ${noun} was switched off. Turn it on again when you are ready.`
        : `A presenter muted your ${noun}.`;
    this.show(why, {
      kind: "warn",
      key: `paused-${stream.source}`,
      timeout: 12_000,
      action: stream.source === "microphone" ? this.turnOnAction("microphone") : undefined,
    });
  }

  /**
   * Hands: ours lowered by someone else; for the staff, someone raised theirs.
   * @param {{participant: ParticipantInfo, previous: ParticipantInfo | null, cause: string, self: boolean}} detail
   */
  participantUpdated({ participant, previous, cause, self }) {
    if (self) {
      if (cause === "hand" && participant.hand_raised == null && previous?.hand_raised != null && !participant.grant_audio) {
        this.show("Your hand was lowered.", { key: "hand" });
      }
    } else if (
      this.room.staff &&
      cause === "hand" &&
      participant.hand_raised != null &&
      (previous?.hand_raised ?? null) === null
    ) {
      this.show(`${participant.name} raised their hand`, {
        key: `hand-${participant.participant_id}`,
        action: {
          label: "Allow mic",
          run: () => this.actions.allowMic(this.room.conn?.participants.get(participant.participant_id) ?? participant),
        },
      });
    }
  }

  /**
   * A batched roster delta (presenters, hosts): a toast for each hand just raised, or one for
   * them all when many came at once.
   * @param {{participant: ParticipantInfo, previous: ParticipantInfo | null}[]} changes
   */
  rosterChanged(changes) {
    const raised = changes.filter(
      ({ participant, previous }) => participant.hand_raised != null && (previous?.hand_raised ?? null) === null,
    );
    if (raised.length > 3) {
      this.show(`${raised.length} people raised their hands`, { key: "hands" });
      return;
    }
    for (const change of raised) this.participantUpdated({ ...change, cause: "hand", self: false });
  }

  /** @param {boolean} staff  we became a presenter (or host), or an attendee again */
  roleChanged(staff) {
    if (staff) {
      this.show("You are now a presenter: you can go live with your camera and microphone.", {
        kind: "success",
        key: "role",
      });
    } else {
      this.show("You are an attendee again.", { key: "role" });
    }
  }

  /**
   * @param {ParticipantInfo} me
   * @param {ParticipantInfo | null} before
   */
  grantChanged(me, before) {
    const audioNow = Boolean(me.grant_audio) && !before?.grant_audio;
    const videoNow = Boolean(me.grant_video) && !before?.grant_video;
    if (audioNow) {
      this.show("You may speak now. Turn on your microphone when you are ready.", {
        kind: "success",
        key: "grant",
        timeout: 15_000,
        action: this.turnOnAction("microphone"),
      });
    } else if (videoNow) {
      this.show("You may turn on your camera now.", {
        kind: "success",
        key: "grant",
        timeout: 15_000,
        action: this.turnOnAction("camera"),
      });
    } else if (!me.grant_audio && !me.grant_video && (before?.grant_audio || before?.grant_video)) {
      this.show("Your turn to speak has ended. Thank you!", { key: "grant" });
    }
  }

  /**
   * The server closed one of our producers.
   * @param {{source: Source | null, reason: string}} detail
   */
  producerClosed(detail) {
    const source = detail.source;
    const noun = SOURCE_NOUN[source ?? ""] ?? "stream";
    const text =
      detail.reason === "grant-revoked"
        ? `A presenter took back your ${noun}.`
        : detail.reason === "mode-changed"
          ? `Your ${noun} was turned off: in this mode attendees cannot speak.`
          : detail.reason === "role-changed"
            ? `Your ${noun} stopped: you are no longer a presenter.`
            : `Your ${noun} stopped (${detail.reason}).`;
    if (detail.reason !== "grant-revoked" || !this.toasts.region.querySelector('[data-key="grant"]')) {
      this.show(text, { kind: "warn", key: `closed-${source}` });
    }
  }

  /** @param {{room: import("../protocol.js").RoomInfo, cause: string, by: string | null}} detail */
  roomUpdated({ room, cause, by }) {
    const conn = this.room.conn;
    const staff = this.room.staff;
    const who = by ? (conn?.participants.get(by)?.name ?? "A presenter") : "A presenter";
    const mine = by !== null && by === conn?.participantId;
    if (cause === "started") {
      this.show(staff ? "The event has started: attendees are in the room now." : "The webinar has started.", {
        kind: "success",
        key: "phase",
      });
    } else if (cause === "mode-changed") {
      const mode = MODES[room.mode];
      let text = `${mine ? "You" : who} switched to ${mode?.label ?? room.mode}. ${mode?.about ?? ""}`;
      const me = conn?.me;
      if (!staff && room.mode === "discussion" && me?.listen_only) {
        text += " You joined when the room was full, so you can only listen.";
      }
      this.show(text.trim(), { key: "mode" });
    } else if (cause === "locked" || cause === "unlocked") {
      this.show(
        cause === "locked"
          ? `${mine ? "You" : who} locked the room: nobody new can join.`
          : `${mine ? "You" : who} unlocked the room: people can join again.`,
        { key: "lock" },
      );
    }
  }

  /** @param {{deadline_seconds: number}} detail */
  draining(detail) {
    const minutes = Math.max(1, Math.round(detail.deadline_seconds / 60));
    this.show(
      `The server is being restarted. The webinar can go on for up to ${minutes} more minute${minutes === 1 ? "" : "s"}; then you will be reconnected.`,
      { kind: "warn", key: "draining", timeout: 0 },
    );
  }

  /** @param {boolean} resumed  the same participant again (false: joined anew) */
  reconnected(resumed) {
    if (resumed) {
      this.show("Reconnected.", { kind: "success", key: "reconnect", timeout: 3000 });
    } else {
      this.show("Reconnected. You were away too long, so you joined again as a new participant.", {
        kind: "warn",
        key: "reconnect",
      });
    }
  }
}
