// The side panel of the live view: opening and closing it, its tabs (people, chat, Q&A,
// polls, call to action; the WAI-ARIA tabs pattern), the unread badge on the button that
// opens it, and the people tab's list with its counts and raised hands. What is inside the other tabs is interaction.js's.

import { formatNumber, nt, setText, t } from "../i18n.js";
import { ParticipantList } from "../participants.js";
import { byId } from "../ui.js";
import { WIDE } from "./page.js";

/** @typedef {import("./page.js").ParticipantInfo} ParticipantInfo */
/** @typedef {import("./page.js").WebinarConnection} WebinarConnection */
/** @typedef {import("../participants.js").RowAction} RowAction */
/** @typedef {"on" | "off" | "none"} DeviceState */

/**
 * Raised hands now: those who run the floor know everyone; attendees know the stage, and the counts.
 * @param {WebinarConnection} conn
 */
export function raisedHands(conn) {
  return conn.rosterFull || !conn.counts ? [...conn.participants.values()].filter((p) => p.hand_raised != null).length : conn.counts.hands;
}

export class SidePanel {
  /**
   * @param {{onRowAction: (action: RowAction, person: ParticipantInfo) => void, onResize: () => void}} hooks
   *   onRowAction: a button on a person's row; onResize: the stage changed size
   */
  constructor({ onRowAction, onResize }) {
    this.onResize = onResize;
    this.people = new ParticipantList(
      /** @type {HTMLUListElement} */ (byId("participant-list")),
      (action, person) => onRowAction(action, person),
    );
    byId("people-toggle").addEventListener("click", () => {
      const open = byId("live").dataset.panel !== "open";
      this.setOpen(open, true);
    });
    byId("panel-close").addEventListener("click", () => this.closeByUser());
    byId("side-panel").addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !WIDE.matches) this.closeByUser();
    });
    // Tabs: arrow keys move between the visible tabs (WAI-ARIA tabs pattern).
    const tablist = /** @type {HTMLElement} */ (document.querySelector("#side-panel [role=tablist]"));
    const tabs = () => /** @type {HTMLElement[]} */ ([...tablist.querySelectorAll("[role=tab]")].filter((t) => !(/** @type {HTMLElement} */ (t).hidden)));
    tablist.addEventListener("click", (event) => {
      const tab = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (event.target).closest("[role=tab]"));
      if (tab) this.selectTab(tab);
    });
    tablist.addEventListener("keydown", (event) => {
      const list = tabs();
      const index = list.indexOf(/** @type {HTMLElement} */ (document.activeElement));
      if (index < 0) return;
      let next = -1;
      if (event.key === "ArrowRight") next = (index + 1) % list.length;
      else if (event.key === "ArrowLeft") next = (index - 1 + list.length) % list.length;
      else if (event.key === "Home") next = 0;
      else if (event.key === "End") next = list.length - 1;
      if (next < 0) return;
      event.preventDefault();
      this.selectTab(list[next]);
      list[next].focus();
    });
    WIDE.addEventListener("change", () => onResize());
    // Unread chat while the panel is closed: a count on the button that opens it.
    const unread = new MutationObserver(() => this.renderUnread());
    unread.observe(byId("tab-chat"), { attributes: true, attributeFilter: ["data-unread"] });
    unread.observe(byId("live"), { attributes: true, attributeFilter: ["data-panel"] });
  }

  /** The toggle's unread badge: chat messages nobody has seen, shown while the panel is closed. */
  renderUnread() {
    const n = Number(byId("tab-chat").dataset.unread ?? 0);
    const badge = byId("panel-unread");
    badge.hidden = !(n > 0 && byId("live").dataset.panel !== "open");
    badge.textContent = n > 99 ? "99+" : formatNumber(n);
    badge.setAttribute("aria-label", nt("{n} unread message", "{n} unread messages", n));
  }

  /** The user closed the panel: focus goes back to the button that opens it. */
  closeByUser() {
    this.setOpen(false, true);
    byId("people-toggle").focus();
  }

  /**
   * Open the side panel on a tab (a poll starts, for instance).
   * @param {string} id
   */
  showTab(id) {
    const tab = document.getElementById(id);
    if (!tab || tab.hidden) return;
    this.selectTab(tab);
    if (byId("live").dataset.panel !== "open") this.setOpen(true, false);
  }

  /** @param {HTMLElement} tab */
  selectTab(tab) {
    for (const other of document.querySelectorAll("#side-panel [role=tab]")) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.setAttribute("tabindex", selected ? "0" : "-1");
      const panel = document.getElementById(other.getAttribute("aria-controls") ?? "");
      if (panel) panel.hidden = !selected;
    }
  }

  /**
   * @param {boolean} open
   * @param {boolean} focus  move focus into the panel (when the user opened it)
   */
  setOpen(open, focus) {
    const live = byId("live");
    live.dataset.panel = open ? "open" : "closed";
    byId("people-toggle").setAttribute("aria-expanded", String(open));
    const selected = /** @type {HTMLElement | null} */ (document.querySelector("#side-panel [role=tab][aria-selected=true]"));
    if (open && focus) (selected ?? byId("tab-people")).focus();
    // the stage changes size: the tiles follow
    requestAnimationFrame(() => this.onResize());
  }

  /** @param {string | null} participantId */
  setActiveSpeaker(participantId) {
    this.people.setActiveSpeaker(participantId);
  }

  /**
   * The people tab: the list, its count, the raised hands (a badge on the people
   * button for the staff) and whether there is a next speaker to call.
   * @param {WebinarConnection} conn
   * @param {{role: string, staff: boolean, self: {mic: DeviceState, camera: DeviceState}}} me
   */
  renderPeople(conn, { role, staff, self }) {
    const participants = [...conn.participants.values()];
    this.people.render({
      participants,
      streams: [...conn.streamInfo.values()],
      me: conn.participantId,
      myRole: role,
      self,
    });
    const hands = raisedHands(conn);
    byId("people-count").textContent = formatNumber(conn.counts?.total ?? participants.length);
    // The button says what the panel holds for this role: the staff run the people in it
    // (hands, the floor); attendees come for the chat, questions and polls.
    const label = /** @type {HTMLElement} */ (byId("people-toggle").querySelector(".label"));
    if (staff) setText(label, "People");
    else setText(label, "Chat");
    byId("people-toggle").querySelector("use")?.setAttribute("href", staff ? "#i-people" : "#i-chat");
    byId("people-toggle").title = staff ? t("People, chat, Q&A and polls") : t("Chat, Q&A and polls");
    const badge = byId("people-badge");
    badge.hidden = !(staff && hands > 0);
    badge.textContent = formatNumber(hands);
    badge.setAttribute("aria-label", nt("{n} raised hand", "{n} raised hands", hands));
    byId("hands-summary").textContent = hands
      ? staff
        ? nt("{n} raised hand: first come, first served.", "{n} raised hands: first come, first served.", hands)
        : nt("{n} raised hand.", "{n} raised hands.", hands)
      : staff
        ? t("No raised hands.")
        : "";
    /** @type {HTMLButtonElement} */ (byId("next-speaker")).disabled =
      hands === 0 && !participants.some((p) => p.role === "attendee" && (p.grant_audio || p.grant_video));
  }
}
