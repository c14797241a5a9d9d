// The stage of the live view: the video grid (remote tiles and our own), the status
// line over it ("Waiting for the presenter…"), the staff's banner (lobby, backstage)
// with Start event, and the button that unblocks sound. With content on stage
// (room/content.js) the grid is a strip of cameras beside it.

import { VideoGrid } from "../grid.js";
import { nt, t } from "../i18n.js";
import { deviceStates } from "../participants.js";
import { byId, formatTime } from "../ui.js";
import { STARTS_AT } from "./page.js";

/**
 * How many attendees are here: from the server's counts (an attendee does not know everyone).
 * @param {import("./page.js").WebinarConnection} conn
 */
export function attendeeCount(conn) {
  return conn.counts?.attendees ?? [...conn.participants.values()].filter((p) => p.role === "attendee").length;
}

/**
 * Whether content (a presentation, a video, the board, an external player) is on stage, or
 * the HLS stage of an attendee who watches over HLS (room/hls.js): the stage has a picture.
 */
function contentShown() {
  const box = document.getElementById("stage-content");
  const hls = document.getElementById("hls-view");
  return (box !== null && !box.hidden) || (hls !== null && !hls.hidden);
}

/**
 * What an attendee's stage says and shows besides the tiles and the content: the status line
 * ("Waiting for the presenter…", the backstage notice), whether it waits (a spinner), whether
 * it is backstage (presenters-only: no tiles, no content) and whether it is empty (the status
 * alone, centred). The attendees' own stage (Stage.renderStatus) and the presenters' preview of
 * it (room/audience.js) both draw from this.
 * @param {object} shown
 * @param {import("./page.js").WebinarConnection["room"]} shown.room  the room's state
 * @param {boolean} shown.reconnecting  the viewer's connection is being restored
 * @param {number} shown.tiles  video tiles on the stage
 * @param {number} shown.videos  remote video tiles
 * @param {number} shown.streams  remote streams played (audio or video)
 * @param {boolean} shown.content  content (a slide, a video, the board, a player) is on stage
 * @returns {{text: string, waiting: boolean, backstage: boolean, empty: boolean}}
 */
export function attendeeStage({ room, reconnecting, tiles, videos, streams, content }) {
  let text = "";
  let waiting = false;
  const backstage = room?.mode === "presenters-only" && room.phase === "live";
  if (reconnecting) {
    // the banner says it; the stage says it only when it has nothing else to show
    text = tiles || content ? "" : t("Reconnecting… The webinar continues; you will be back in a moment.");
    waiting = true;
  } else if (backstage) {
    text = t("The presenters are preparing backstage. You will see and hear them again in a moment.");
    waiting = true;
  } else if (content) {
    // a slide, a video, the board: the stage is not waiting for anyone
  } else if (videos === 0) {
    if (streams > 0) {
      text = t("Audio only: the presenter's camera is off.");
    } else {
      waiting = true;
      text =
        STARTS_AT && room?.phase !== "live"
          ? t("Waiting for the presenter… The webinar is scheduled for {time}.", { time: formatTime(STARTS_AT) })
          : t("Waiting for the presenter…");
    }
  }
  return { text, waiting, backstage, empty: (tiles === 0 && !content) || backstage };
}

/** @typedef {import("./page.js").RoomContext} RoomContext */
/** @typedef {import("../protocol.js").RemoteStream} RemoteStream */
/** @typedef {import("../tiers.js").AllocationMessage} AllocationMessage */

export class Stage {
  /**
   * @param {RoomContext} room
   * @param {() => void} onChange  tiles came or went (the status line follows)
   */
  constructor(room, onChange) {
    this.room = room;
    this.grid = new VideoGrid(byId("grid"), {
      onSoundBlocked: () => {
        byId("sound-button").hidden = false;
      },
      onChange,
    });
    byId("sound-button").addEventListener("click", async () => {
      byId("sound-button").hidden = true;
      await this.grid.unblockSound();
    });
  }

  /**
   * A remote stream's track arrived: its tile (paused already if the server paused it
   * for our bandwidth).
   * @param {RemoteStream} remote
   */
  addStream(remote) {
    this.grid.add(remote);
    const allocated = this.room.conn?.allocation?.streams.find((s) => s.producer_id === remote.info.producer_id);
    if (allocated) this.grid.setBandwidthPaused(remote.info.producer_id, allocated.paused);
    this.renderMicState(remote.info.participant_id);
  }

  /**
   * A remote stream ended: its tile goes.
   * @param {string} producerId
   * @returns {boolean}  whether it was shown
   */
  removeStream(producerId) {
    return this.grid.remove(producerId);
  }

  /**
   * Someone else's stream was paused or resumed (a video then shows the avatar).
   * @param {import("./page.js").StreamInfo} stream
   */
  renderStreamPaused(stream) {
    if (stream.kind === "video") this.grid.setPaused(stream.producer_id, Boolean(stream.paused));
    this.renderMicState(stream.participant_id);
  }

  /**
   * A video paused for our bandwidth shows the avatar, not a frozen picture.
   * @param {AllocationMessage} message
   */
  renderAllocation(message) {
    for (const stream of message.streams) this.grid.setBandwidthPaused(stream.producer_id, stream.paused);
  }

  /** @param {string | null} participantId */
  setActiveSpeaker(participantId) {
    this.grid.setActiveSpeaker(participantId);
  }

  /** The crossed-out microphone on a participant's tiles. @param {string} participantId */
  renderMicState(participantId) {
    const streams = [...(this.room.conn?.streamInfo.values() ?? [])].filter((s) => s.participant_id === participantId);
    this.grid.setMicOff(participantId, deviceStates(streams).mic === "off");
  }

  /**
   * Our own tile: the presenters' always (preview or live), an attendee's while their
   * camera is published.
   * @param {import("../media.js").LocalMedia} local
   * @param {{live: boolean, micOff: boolean}} state  we are live; our published microphone is off
   */
  renderSelf(local, { live, micOff }) {
    const { conn, staff, name } = this.room;
    if (!conn) return;
    const camera = conn.producerFor("camera");
    const showSelf = staff || camera !== null;
    this.grid.setSelf(showSelf ? local.stream : null, {
      label: staff
        ? live
          ? t("{name} (you, live)", { name })
          : t("{name} (you, preview)", { name })
        : t("{name} (you)", { name }),
      name,
      participantId: conn.participantId,
      cameraOff: !local.video || local.video.readyState !== "live" || !local.cameraOn || Boolean(camera?.paused),
    });
    this.grid.setMicOff(conn.participantId ?? "", micOff);
  }

  /** No tiles any more (we left, or the connection closed). */
  clear() {
    this.grid.clear();
    this.grid.setSelf(null, { label: "", cameraOff: true });
  }

  /**
   * The status line over the stage, and the stage's data-empty, data-waiting and
   * data-backstage (the CSS shows the waiting picture by them).
   * @param {{live: boolean, sharing: boolean}} state  we are live; we share our screen
   */
  renderStatus({ live, sharing }) {
    const { conn, staff } = this.room;
    if (!conn) return;
    const status = byId("status");
    const stage = byId("stage");
    const room = conn.room;
    const content = contentShown();
    if (!staff) {
      // an attendee's stage: the same rule the presenters' audience view shows (room/audience.js)
      const shown = attendeeStage({
        room,
        reconnecting: conn.state === "reconnecting",
        tiles: this.grid.tiles.size,
        videos: this.grid.remoteVideoCount,
        streams: this.grid.remoteCount,
        content,
      });
      status.textContent = shown.text;
      status.hidden = shown.text === "";
      stage.dataset.empty = String(shown.empty);
      stage.dataset.waiting = String(shown.waiting);
      stage.dataset.backstage = String(shown.backstage);
      return;
    }
    let text = "";
    let waiting = false;
    if (conn.state === "reconnecting") {
      // the banner says it; the stage says it only when it has nothing else to show
      text = this.grid.tiles.size || content ? "" : t("Reconnecting… The webinar continues; you will be back in a moment.");
      waiting = true;
    } else {
      const watching = attendeeCount(conn);
      const backstageNow = room?.phase === "lobby" || room?.mode === "presenters-only";
      if (live && backstageNow) {
        text = t("You are live backstage: only presenters see and hear you.");
      } else if (live) {
        text = nt("You are live. {n} attendee watching.", "You are live. {n} attendees watching.", watching);
      } else {
        text = nt("You are not live. Check your preview, then press Go live. {n} attendee waiting.", "You are not live. Check your preview, then press Go live. {n} attendees waiting.", watching);
      }
      if (sharing) text += " " + t("You are sharing your screen.");
    }
    status.textContent = text;
    status.hidden = text === "";
    // content on stage (room/content.js) is something to show, cameras or not
    stage.dataset.empty = String(this.grid.tiles.size === 0 && !content);
    stage.dataset.waiting = String(waiting);
    stage.dataset.backstage = "false";
  }

  /** The staff's banner: the event has not started (with Start event), or backstage. */
  renderBanner() {
    const { conn, staff } = this.room;
    const room = conn?.room;
    const banner = byId("stage-banner");
    const start = byId("start-event");
    let text = "";
    let canStart = false;
    if (staff && room) {
      const waiting = conn ? attendeeCount(conn) : 0;
      if (room.phase === "lobby") {
        text = nt("The event has not started: {n} attendee is waiting in the lobby, seeing and hearing nothing yet. Presenters see and hear each other.", "The event has not started: {n} attendees are waiting in the lobby, seeing and hearing nothing yet. Presenters see and hear each other.", waiting);
        if (room.starts_at) text += " " + t("It is scheduled for {time}.", { time: formatTime(room.starts_at) });
        canStart = true;
      } else if (room.mode === "presenters-only") {
        text = t("Backstage: attendees see and hear nothing of the presenters. Switch the mode to go back on air.");
      }
    }
    banner.hidden = !text;
    byId("stage-banner-text").textContent = text;
    start.hidden = !canStart;
  }

  /** Size the tiles to the stage (it changed size, or content came on stage or went). */
  layout() {
    this.grid.strip = contentShown();
    this.grid.layout();
  }
}
