// The participant list: everyone in the room with role, raised hand (and place in the
// queue), microphone and camera state, connection quality; for presenters and hosts
// the actions their role allows on each row. The server enforces every rule anyway;
// the list only leaves out buttons that would be refused.
//
// Rows are keyed by participant ID and rebuilt only when what they show changed, so
// an open "More" menu or a focused button survives unrelated updates.

import { formatNumber, intlLocale, lang, t } from "./i18n.js";
import { el, icon, initials, roleLabel } from "./ui.js";

/** @typedef {import("./protocol.js").ParticipantInfo} ParticipantInfo */
/** @typedef {import("./protocol.js").StreamInfo} StreamInfo */

/**
 * @typedef {"grant-mic" | "grant-camera" | "revoke" | "lower-hand" | "mute" | "remove" | "make-presenter" | "make-attendee"} RowAction
 *
 * @typedef {"on" | "off" | "none"} DeviceState
 *
 * @typedef {object} ListState
 * @property {ParticipantInfo[]} participants
 * @property {StreamInfo[]} streams  everyone else's streams
 * @property {string | null} me  our participant ID
 * @property {string} myRole
 * @property {{mic: DeviceState, camera: DeviceState}} self  our own microphone and camera
 *
 * @typedef {object} ExtraRowAction  an action another part of the room adds to a row (in its
 *   "More" menu), with what it does: the whiteboard's "Allow drawing on the whiteboard"
 * @property {string} action  its data-action and data-testid
 * @property {string} label
 * @property {string} aria
 * @property {(person: ParticipantInfo) => void} run
 *
 * @typedef {object} RowExtras  what another part of the room adds to a person's row
 * @property {ExtraRowAction[]} [actions]
 * @property {string[]} [chips]  short states shown beside the grants ("May draw")
 *
 * @typedef {(person: ParticipantInfo, myRole: string, self: boolean) => RowExtras} RowExtension
 */

const ROLE_ORDER = /** @type {Record<string, number>} */ ({ host: 0, presenter: 1, attendee: 2 });

/** A participant's connection quality, in words. @param {string} quality */
function qualityText(quality) {
  switch (quality) {
    case "good":
      return t("Connection good");
    case "fair":
      return t("Connection fair");
    case "poor":
      return t("Connection poor");
    default:
      return t("Connection not measured yet");
  }
}

/** @param {string} role */
export function isStaff(role) {
  return role === "host" || role === "presenter";
}

/**
 * Raised hands first (in the order they were raised), then hosts and presenters,
 * then attendees, by name.
 * @param {ParticipantInfo[]} people
 */
export function sortParticipants(people) {
  return [...people].sort((a, b) => {
    const ha = a.hand_raised ?? null;
    const hb = b.hand_raised ?? null;
    if (ha !== null || hb !== null) {
      if (ha === null) return 1;
      if (hb === null) return -1;
      return ha - hb;
    }
    const ra = ROLE_ORDER[a.role] ?? 3;
    const rb = ROLE_ORDER[b.role] ?? 3;
    if (ra !== rb) return ra - rb;
    return a.name.localeCompare(b.name);
  });
}

/**
 * A place in the queue: "1st", "2nd", "3rd", "4th" (the form follows the language's ordinal rules).
 * @param {number} n
 */
function ordinal(n) {
  const params = { n: formatNumber(n) };
  switch (new Intl.PluralRules(intlLocale(), { type: "ordinal" }).select(n)) {
    case "one":
      // TRANSLATORS: a place in the queue ending like "1st", "21st"; languages without such endings write them all alike ("{n}.")
      return t("{n}st", params);
    case "two":
      // TRANSLATORS: a place in the queue ending like "2nd", "22nd"; languages without such endings write them all alike ("{n}.")
      return t("{n}nd", params);
    case "few":
      // TRANSLATORS: a place in the queue ending like "3rd", "23rd"; languages without such endings write them all alike ("{n}.")
      return t("{n}rd", params);
    default:
      // TRANSLATORS: a place in the queue: "4th", "11th" (Czech "4.", Russian "4-й")
      return t("{n}th", params);
  }
}

export class ParticipantList {
  /**
   * @param {HTMLUListElement} list
   * @param {(action: RowAction, participant: ParticipantInfo) => void} onAction
   */
  constructor(list, onAction) {
    this.list = list;
    this.onAction = onAction;
    /** @type {Map<string, {row: HTMLElement, sig: string}>} */
    this.rows = new Map();
    /** @type {string | null} */
    this.activeSpeaker = null;
    /** @type {RowExtension[]} */
    this.extensions = [];
    /** The added actions of each row, by participant ID. @type {Map<string, ExtraRowAction[]>} */
    this.extraActions = new Map();
    list.addEventListener("click", (event) => {
      const target = /** @type {HTMLElement} */ (event.target);
      const button = /** @type {HTMLButtonElement | null} */ (target.closest("button[data-action]"));
      if (!button || button.disabled) return;
      const row = /** @type {HTMLElement | null} */ (button.closest("[data-participant-id]"));
      const id = row?.dataset.participantId;
      const person = id ? this.people.get(id) : undefined;
      if (!person) return;
      const details = button.closest("details");
      if (details) details.open = false;
      const extra = this.extraActions.get(person.participant_id)?.find((a) => a.action === button.dataset.action);
      if (extra) extra.run(person);
      else this.onAction(/** @type {RowAction} */ (button.dataset.action), person);
    });
    /** @type {Map<string, ParticipantInfo>} */
    this.people = new Map();
  }

  /**
   * Let another part of the room add actions and chips to the rows (the whiteboard's grant);
   * the rows show them on the next render.
   * @param {RowExtension} extension
   */
  addRowExtension(extension) {
    this.extensions.push(extension);
  }

  /** @param {ListState} state */
  render(state) {
    const ordered = sortParticipants(state.participants);
    this.people = new Map(ordered.map((p) => [p.participant_id, p]));
    /** @type {Map<string, StreamInfo[]>} */
    const streamsOf = new Map();
    for (const stream of state.streams) {
      const list = streamsOf.get(stream.participant_id) ?? [];
      list.push(stream);
      streamsOf.set(stream.participant_id, list);
    }
    const queue = ordered.filter((p) => p.hand_raised != null);
    const seen = new Set();
    ordered.forEach((person, index) => {
      const id = person.participant_id;
      seen.add(id);
      const self = id === state.me;
      const devices = self ? state.self : deviceStates(streamsOf.get(id) ?? []);
      const position = person.hand_raised != null ? queue.indexOf(person) + 1 : 0;
      const actions = self ? [] : this.actionsFor(person, state.myRole, devices);
      const extras = this.extensions.map((extension) => extension(person, state.myRole, self));
      const extraActions = self || !isStaff(state.myRole) ? [] : extras.flatMap((x) => x.actions ?? []);
      const chips = extras.flatMap((x) => x.chips ?? []);
      this.extraActions.set(id, extraActions);
      const sig = JSON.stringify([person, devices, position, actions, extraActions, chips, self, lang()]);
      let entry = this.rows.get(id);
      if (!entry || entry.sig !== sig) {
        const row = this._buildRow(person, { self, devices, position, actions, extraActions, chips });
        if (entry) {
          carryOver(entry.row, row);
          entry.row.replaceWith(row);
        }
        entry = { row, sig };
        this.rows.set(id, entry);
      }
      const at = this.list.children[index];
      if (at !== entry.row) this.list.insertBefore(entry.row, at ?? null);
    });
    for (const [id, entry] of this.rows) {
      if (!seen.has(id)) {
        entry.row.remove();
        this.rows.delete(id);
        this.extraActions.delete(id);
      }
    }
    this.setActiveSpeaker(this.activeSpeaker);
  }

  /** @param {string | null} participantId */
  setActiveSpeaker(participantId) {
    this.activeSpeaker = participantId;
    for (const [id, { row }] of this.rows) row.dataset.speaking = String(id === participantId);
  }

  /**
   * What we may do to this person (empty for attendees).
   * @param {ParticipantInfo} person
   * @param {string} myRole
   * @param {{mic: DeviceState, camera: DeviceState}} devices
   * @returns {RowAction[]}
   */
  actionsFor(person, myRole, devices) {
    if (!isStaff(myRole)) return [];
    /** @type {RowAction[]} */
    const out = [];
    if (person.role === "attendee") {
      if (!person.grant_audio) out.push("grant-mic");
      if (!person.grant_video) out.push("grant-camera");
      if (person.grant_audio || person.grant_video) out.push("revoke");
      if (person.hand_raised != null) out.push("lower-hand");
    }
    if (devices.mic === "on") out.push("mute");
    if (myRole === "host" && person.role === "attendee") out.push("make-presenter");
    if (myRole === "host" && person.role === "presenter") out.push("make-attendee");
    if (person.role !== "host") out.push("remove");
    return out;
  }

  /**
   * @param {ParticipantInfo} person
   * @param {{self: boolean, devices: {mic: DeviceState, camera: DeviceState}, position: number, actions: RowAction[], extraActions: ExtraRowAction[], chips: string[]}} view
   */
  _buildRow(person, { self, devices, position, actions, extraActions, chips }) {
    const connected = person.connected !== false;
    const quality = person.quality ?? "unknown";
    const name = el("span", { class: "person-name" }, [person.name, self ? el("span", { class: "muted", text: " " + t("(you)") }) : null]);
    const status = el("div", { class: "person-status" }, [
      position ? handChip(ordinal(position)) : null,
      deviceChip("mic", devices.mic),
      deviceChip("camera", devices.camera),
      person.grant_audio || person.grant_video
        ? el("span", {
            class: "chip chip-grant",
            text:
              person.grant_audio && person.grant_video
                ? t("May speak and show video")
                : person.grant_audio
                  ? t("May speak")
                  : t("May show video"),
          })
        : null,
      person.listen_only ? el("span", { class: "chip", text: t("Listen only"), title: t("Joined when discussion was full") }) : null,
      ...chips.map((text) => el("span", { class: "chip chip-grant", text })),
    ]);
    const row = el(
      "li",
      {
        class: "person",
        "data-testid": "participant-row",
        "data-participant-id": person.participant_id,
        "data-role": person.role,
        "data-hand": person.hand_raised != null ? String(position) : "",
        "data-connected": String(connected),
        "data-self": String(self),
      },
      [
        el("span", { class: "avatar avatar-small", "aria-hidden": "true", text: initials(person.name) }),
        el("div", { class: "person-main" }, [
          el("div", { class: "person-line" }, [
            name,
            person.role !== "attendee" ? el("span", { class: "badge", text: roleLabel(person.role) }) : null,
            connected ? null : el("span", { class: "person-reconnecting", text: t("(reconnecting)") }),
            el("span", {
              class: "quality-dot",
              "data-quality": quality,
              "data-testid": "participant-quality",
              role: "img",
              "aria-label": qualityText(quality),
              title: qualityText(quality),
            }),
          ]),
          status.childElementCount ? status : null,
          actions.length || extraActions.length ? this._buildActions(person, actions, extraActions) : null,
        ]),
      ],
    );
    return row;
  }

  /**
   * @param {ParticipantInfo} person
   * @param {RowAction[]} actions
   * @param {ExtraRowAction[]} [extraActions]  added by other parts of the room: in the menu
   */
  _buildActions(person, actions, extraActions = []) {
    const who = { name: person.name };
    /** @type {Record<RowAction, {label: string, aria: string, kind?: string}>} */
    const spec = {
      "grant-mic": { label: t("Allow mic"), aria: t("Let {name} speak (allow the microphone)", who), kind: "btn-primary" },
      "grant-camera": { label: t("Allow camera"), aria: t("Let {name} show their camera", who) },
      revoke: { label: t("Revoke"), aria: t("Take the microphone and camera back from {name}", who) },
      "lower-hand": { label: t("Lower hand"), aria: t("Lower {name}'s hand", who) },
      mute: { label: t("Mute"), aria: t("Mute {name}'s microphone", who) },
      "make-presenter": { label: t("Make presenter"), aria: t("Make {name} a presenter", who) },
      "make-attendee": { label: t("Make attendee"), aria: t("Make {name} an attendee", who) },
      remove: { label: t("Remove…"), aria: t("Remove {name} from the webinar", who) },
    };
    const inMenu = new Set(["grant-camera", "make-presenter", "make-attendee", "remove", "lower-hand"]);
    /** @param {RowAction} action @param {string} cls */
    const button = (action, cls) =>
      el(
        "button",
        {
          type: "button",
          class: `${cls} ${spec[action].kind ?? ""}`.trim(),
          "data-action": action,
          "data-testid": action,
          "aria-label": spec[action].aria,
        },
        [spec[action].label],
      );
    const main = actions.filter((a) => !inMenu.has(a)).map((a) => button(a, "btn btn-small")); // i18n-ignore
    const more = actions.filter((a) => inMenu.has(a)).map((a) => button(a, "menu-item"));
    for (const extra of extraActions) {
      more.push(
        el("button", { type: "button", class: "menu-item", "data-action": extra.action, "data-testid": extra.action, "aria-label": extra.aria }, [
          extra.label,
        ]),
      );
    }
    return el("div", { class: "person-actions" }, [
      ...main,
      more.length
        ? el("details", { class: "menu" }, [
            el("summary", { class: "btn btn-small", "aria-label": t("More actions for {name}", who), "data-testid": "more-actions" }, [
              t("More"),
            ]),
            el("div", { class: "menu-panel", role: "group", "aria-label": t("More actions for {name}", who) }, more),
          ])
        : null,
    ]);
  }
}

/**
 * A participant's microphone and camera, from their streams.
 * @param {StreamInfo[]} streams
 * @returns {{mic: DeviceState, camera: DeviceState}}
 */
export function deviceStates(streams) {
  /** @param {string} source @returns {DeviceState} */
  const state = (source) => {
    const s = streams.find((x) => x.source === source);
    return !s ? "none" : s.paused ? "off" : "on";
  };
  return { mic: state("microphone"), camera: state("camera") };
}

/**
 * @param {"mic" | "camera"} what
 * @param {DeviceState} state
 */
function deviceChip(what, state) {
  if (state === "none") return null;
  const on = state === "on";
  const text =
    what === "mic" ? (on ? t("Microphone on") : t("Microphone off")) : on ? t("Camera on") : t("Camera off");
  return el(
    "span",
    { class: `chip chip-device chip-${state}`, role: "img", "aria-label": text, title: text, "data-device": what, "data-state": state },
    [icon(state === "on" ? what : `${what}-off`)],
  );
}

/**
 * The raised hand's chip: the place shows ("1st"), the rest of the sentence is for screen
 * readers ("1st in the queue"), in the language's own order.
 * @param {string} place
 */
function handChip(place) {
  // the message without its value: split where the place goes
  const [before, after = ""] = t("{place} in the queue").split("{place}");
  return el(
    "span",
    {
      class: "chip chip-hand",
      "data-testid": "hand-position",
      title: t("Raised a hand: {place} in the queue", { place }),
    },
    [
      icon("hand"),
      before ? el("span", { class: "sr-only", text: before }) : null,
      el("span", { text: place }),
      after ? el("span", { class: "sr-only", text: after }) : null,
    ],
  );
}

/**
 * Keep an open menu open and the focused button focused across a row rebuild.
 * @param {HTMLElement} from
 * @param {HTMLElement} to
 */
function carryOver(from, to) {
  const open = from.querySelector("details[open]");
  if (open) to.querySelector("details")?.setAttribute("open", "");
  const active = document.activeElement;
  if (active instanceof HTMLElement && from.contains(active)) {
    const action = active.dataset.action ?? (active.tagName === "SUMMARY" ? "summary" : null);
    queueMicrotask(() => {
      const again =
        action === "summary"
          ? to.querySelector("summary")
          : action
            ? to.querySelector(`[data-action="${action}"]`)
            : null;
      const fallback = again ?? to.querySelector("button, summary");
      if (fallback instanceof HTMLElement) fallback.focus();
    });
  }
}
