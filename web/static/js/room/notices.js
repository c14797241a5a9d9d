// What the room says in toasts when something happens: someone's streams ended or they
// left (collected for a moment into one toast), hands, grants, the room's mode, lock
// and phase, our own streams paused or closed by the server, a restart coming, a resume.

import { nt, t } from "../i18n.js";
import { modeAbout, modeLabel } from "../ui.js";
import { isStaff } from "../participants.js";

/** @typedef {import("./page.js").RoomContext} RoomContext */
/** @typedef {import("./page.js").ParticipantInfo} ParticipantInfo */
/** @typedef {import("./page.js").StreamInfo} StreamInfo */
/** @typedef {import("./page.js").Source} Source */
/** @typedef {{name: string, sources: Set<string>, reason: string, timer: number}} EndedNote */

/** Stream-ended reasons that mean the network, not the person, stopped it. */
const LOST_REASONS = new Set(["disconnected", "transport-closed", "producer-closed", "connection-failed"]);

/**
 * The sentence for this source out of one per source (sentences, not a noun in a sentence:
 * other languages change the words around the noun).
 * @param {string | null | undefined} source
 * @param {{camera: string, microphone: string, screen: string, "screen-audio": string, other: string}} texts
 */
function forSource(source, texts) {
  return source === "camera" || source === "microphone" || source === "screen" || source === "screen-audio"
    ? texts[source]
    : texts.other;
}

/**
 * The server closed one of our streams: what happened, in a sentence.
 * @param {Source | null} source
 * @param {string} reason
 */
function closedText(source, reason) {
  if (reason === "grant-revoked") {
    return forSource(source, {
      camera: t("A presenter took back your camera."),
      microphone: t("A presenter took back your microphone."),
      screen: t("A presenter took back your screen share."),
      "screen-audio": t("A presenter took back your screen audio."),
      other: t("A presenter took back your stream."),
    });
  }
  if (reason === "mode-changed") {
    return forSource(source, {
      camera: t("Your camera was turned off: in this mode attendees cannot speak."),
      microphone: t("Your microphone was turned off: in this mode attendees cannot speak."),
      screen: t("Your screen share was turned off: in this mode attendees cannot speak."),
      "screen-audio": t("Your screen audio was turned off: in this mode attendees cannot speak."),
      other: t("Your stream was turned off: in this mode attendees cannot speak."),
    });
  }
  if (reason === "role-changed") {
    return forSource(source, {
      camera: t("Your camera stopped: you are no longer a presenter."),
      microphone: t("Your microphone stopped: you are no longer a presenter."),
      screen: t("Your screen share stopped: you are no longer a presenter."),
      "screen-audio": t("Your screen audio stopped: you are no longer a presenter."),
      other: t("Your stream stopped: you are no longer a presenter."),
    });
  }
  // any other reason: the server's code for it (e.g. "closed") in brackets
  return forSource(source, {
    camera: t("Your camera stopped ({reason}).", { reason }),
    microphone: t("Your microphone stopped ({reason}).", { reason }),
    screen: t("Your screen share stopped ({reason}).", { reason }),
    "screen-audio": t("Your screen audio stopped ({reason}).", { reason }),
    other: t("Your stream stopped ({reason}).", { reason }),
  });
}

/**
 * What ended of someone's streams, in a sentence.
 * @param {string} name
 * @param {"camera" | "microphone" | "both" | "screen"} what
 * @param {"unpublished" | "lost" | "ended"} how  stopped by them, by the network, or otherwise
 */
function endedText(name, what, how) {
  const params = { name };
  if (how === "unpublished") {
    if (what === "both") return t("{name} stopped their camera and microphone", params);
    if (what === "camera") return t("{name} stopped their camera", params);
    if (what === "microphone") return t("{name} stopped their microphone", params);
    return t("{name} stopped sharing their screen", params);
  }
  if (how === "lost") {
    if (what === "both") return t("{name}'s camera and microphone stopped (connection lost)", params);
    if (what === "camera") return t("{name}'s camera stopped (connection lost)", params);
    if (what === "microphone") return t("{name}'s microphone stopped (connection lost)", params);
    return t("{name}'s screen share stopped (connection lost)", params);
  }
  if (what === "both") return t("{name}'s camera and microphone ended", params);
  if (what === "camera") return t("{name}'s camera ended", params);
  if (what === "microphone") return t("{name}'s microphone ended", params);
  return t("{name}'s screen share ended", params);
}

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
      label: source === "microphone" ? t("Turn microphone on") : t("Turn camera on"),
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
        name: info.name || t("The presenter"),
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
      this.show(t("{name} left the webinar", { name: detail.participant.name }));
    }
  }

  /** @param {string} participantId */
  flushNote(participantId) {
    const note = this.endedNotes.get(participantId);
    this.endedNotes.delete(participantId);
    if (!note) return;
    const { name, sources, reason } = note;
    if (reason === "left") {
      this.show(t("{name} left the webinar", { name }));
      return;
    }
    const camera = sources.has("camera");
    const microphone = sources.has("microphone");
    const how = reason === "unpublished" ? "unpublished" : LOST_REASONS.has(reason) ? "lost" : "ended";
    if (camera || microphone) {
      this.show(endedText(name, camera && microphone ? "both" : camera ? "camera" : "microphone", how));
    }
    if (sources.has("screen")) {
      this.show(endedText(name, "screen", how));
    }
  }

  /**
   * Our own camera or microphone was paused by the mode or a presenter.
   * @param {StreamInfo} stream
   */
  ownStreamPaused(stream) {
    const camera = stream.source === "camera";
    const mode = modeLabel(this.room.conn?.room?.mode ?? "") ?? t("another mode");
    const why =
      stream.pause_reason === "mode-changed"
        ? camera
          ? t("The mode changed to {mode}, so your camera was switched off. Turn it on again when you are ready.", { mode })
          : t("The mode changed to {mode}, so your microphone was switched off. Turn it on again when you are ready.", { mode })
        : camera
          ? t("A presenter muted your camera.")
          : t("A presenter muted your microphone.");
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
        this.show(t("Your hand was lowered."), { key: "hand" });
      }
    } else if (
      this.room.staff &&
      cause === "hand" &&
      participant.hand_raised != null &&
      (previous?.hand_raised ?? null) === null
    ) {
      this.show(t("{name} raised their hand", { name: participant.name }), {
        key: `hand-${participant.participant_id}`,
        action: {
          label: t("Allow mic"),
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
      this.show(nt("{n} person raised their hand", "{n} people raised their hands", raised.length), { key: "hands" });
      return;
    }
    for (const change of raised) this.participantUpdated({ ...change, cause: "hand", self: false });
  }

  /** @param {boolean} staff  we became a presenter (or host), or an attendee again */
  roleChanged(staff) {
    if (staff) {
      this.show(t("You are now a presenter: you can go live with your camera and microphone."), {
        kind: "success",
        key: "role",
      });
    } else {
      this.show(t("You are an attendee again."), { key: "role" });
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
      this.show(t("You may speak now. Turn on your microphone when you are ready."), {
        kind: "success",
        key: "grant",
        timeout: 15_000,
        action: this.turnOnAction("microphone"),
      });
    } else if (videoNow) {
      this.show(t("You may turn on your camera now."), {
        kind: "success",
        key: "grant",
        timeout: 15_000,
        action: this.turnOnAction("camera"),
      });
    } else if (!me.grant_audio && !me.grant_video && (before?.grant_audio || before?.grant_video)) {
      this.show(t("Your turn to speak has ended. Thank you!"), { key: "grant" });
    }
  }

  /**
   * The server closed one of our producers.
   * @param {{source: Source | null, reason: string}} detail
   */
  producerClosed(detail) {
    const source = detail.source;
    const text = closedText(source, detail.reason);
    if (detail.reason !== "grant-revoked" || !this.toasts.region.querySelector('[data-key="grant"]')) {
      this.show(text, { kind: "warn", key: `closed-${source}` });
    }
  }

  /** @param {{room: import("../protocol.js").RoomInfo, cause: string, by: string | null}} detail */
  roomUpdated({ room, cause, by }) {
    const conn = this.room.conn;
    const staff = this.room.staff;
    const who = by ? (conn?.participants.get(by)?.name ?? t("A presenter")) : t("A presenter");
    const mine = by !== null && by === conn?.participantId;
    if (cause === "started") {
      this.show(staff ? t("The event has started: attendees are in the room now.") : t("The webinar has started."), {
        kind: "success",
        key: "phase",
      });
    } else if (cause === "mode-changed") {
      const mode = modeLabel(room.mode) ?? room.mode;
      let text = mine ? t("You switched to {mode}.", { mode }) : t("{name} switched to {mode}.", { name: who, mode });
      const about = modeAbout(room.mode);
      if (about) text += " " + about;
      const me = conn?.me;
      if (!staff && room.mode === "discussion" && me?.listen_only) {
        text += " " + t("You joined when the room was full, so you can only listen.");
      }
      this.show(text, { key: "mode" });
    } else if (cause === "locked" || cause === "unlocked") {
      const text =
        cause === "locked"
          ? mine
            ? t("You locked the room: nobody new can join.")
            : t("{name} locked the room: nobody new can join.", { name: who })
          : mine
            ? t("You unlocked the room: people can join again.")
            : t("{name} unlocked the room: people can join again.", { name: who });
      this.show(text, { key: "lock" });
    }
  }

  /** @param {{deadline_seconds: number}} detail */
  draining(detail) {
    const minutes = Math.max(1, Math.round(detail.deadline_seconds / 60));
    const text = nt("The server is being restarted. The webinar can go on for up to {n} more minute; then you will be reconnected.", "The server is being restarted. The webinar can go on for up to {n} more minutes; then you will be reconnected.", minutes);
    this.show(text, { kind: "warn", key: "draining", timeout: 0 });
  }

  /** @param {boolean} resumed  the same participant again (false: joined anew) */
  reconnected(resumed) {
    if (resumed) {
      this.show(t("Reconnected."), { kind: "success", key: "reconnect", timeout: 3000 });
    } else {
      this.show(t("Reconnected. You were away too long, so you joined again as a new participant."), {
        kind: "warn",
        key: "reconnect",
      });
    }
  }
}
