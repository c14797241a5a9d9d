// The event's external player (reenio's model): a YouTube or Vimeo stream, a player on a host
// the administrator allowed, or a Zoom meeting, shown in #external-view while the stage's
// layout is "external". The server sends it only to admitted participants, in the `stage`
// message (`external`: {url, provider, framable, link}; docs/protocol.md, "Stage"); the page
// itself never carries it. Chat, Q&A, polls and calls-to-action stay in the side panel beside
// it.
//
// A framable player is an <iframe> (data-testid "external-player") in a sandbox that lets it
// run its scripts on its own origin and go fullscreen, nothing more (no popups, no navigating
// this page); the Content-Security-Policy's frame-src allows only the players' origins. Zoom
// forbids being framed: a card with an "Open in Zoom" button (a new tab) takes its place.
// The player is made when the layout turns to "external" and removed when it turns away, so
// a stream does not keep playing unseen under a presentation.

import { onLanguage, setText, t } from "../i18n.js";
import { byId, el } from "../ui.js";

/** @typedef {import("./content.js").StageContent} StageContent */
/** @typedef {{ url: string, provider: string, framable: boolean, link: string }} External */

/** The providers' own names (brands: not translated). */
const NAMES = /** @type {Record<string, string>} */ ({
  youtube: "YouTube", // i18n-ignore
  vimeo: "Vimeo", // i18n-ignore
  zoom: "Zoom", // i18n-ignore
});

export class ExternalPlayer {
  /** @param {StageContent} content */
  constructor(content) {
    this.view = byId("external-view");
    /** @type {External | null} what is shown now */
    this.shown = null;
    content.onStage((state) => {
      const external = /** @type {External | null} */ (state.external ?? null);
      this.show(state.layout === "external" && external?.url ? external : null);
    });
    onLanguage(() => this.relabel());
  }

  /** @param {External | null} external */
  show(external) {
    const same =
      external && this.shown && external.url === this.shown.url && external.framable === this.shown.framable;
    if (same || (!external && !this.shown)) return; // the stream keeps playing as it is
    this.shown = external;
    this.view.replaceChildren();
    if (!external) return;
    this.view.append(external.framable ? this.frame(external) : this.card(external));
  }

  /** @param {External} external */
  frame(external) {
    const iframe = /** @type {HTMLIFrameElement} */ (
      el("iframe", {
        class: "external-frame",
        src: external.url,
        allow: "autoplay; fullscreen; picture-in-picture", // i18n-ignore
        referrerpolicy: "strict-origin-when-cross-origin",
        sandbox: "allow-scripts allow-same-origin allow-presentation", // i18n-ignore
        "data-testid": "external-player",
        "data-provider": external.provider,
      })
    );
    const open = el("a", {
      class: "external-link",
      href: external.link,
      target: "_blank",
      rel: "noopener noreferrer", // i18n-ignore
      "data-testid": "external-link",
    });
    const box = el("div", { class: "external-player" }, [el("div", { class: "external-box" }, [iframe]), open]);
    this.label(iframe, open, external);
    return box;
  }

  /** @param {External} external */
  card(external) {
    const name = NAMES[external.provider];
    const title = el("h2", { class: "external-card-title", "data-testid": "external-card-title" });
    const text = el("p", { class: "external-card-text" });
    const open = el("a", {
      class: "btn btn-primary external-open",
      href: external.url,
      target: "_blank",
      rel: "noopener noreferrer", // i18n-ignore
      "data-testid": "external-open",
    });
    if (external.provider === "zoom") {
      setText(title, "This event takes place in Zoom");
      setText(text, "Zoom cannot be shown inside this page. Open it in a new tab; chat, questions and polls stay here.");
      setText(open, "Open in Zoom");
    } else {
      setText(title, "This event is streamed on another site");
      setText(text, "The stream opens in a new tab; chat, questions and polls stay here.");
      setText(open, "Open the stream");
    }
    if (name) open.dataset.provider = name;
    return el("div", { class: "external-card", "data-testid": "external-card" }, [title, text, open]);
  }

  /**
   * The player's accessible name and the link under it, in the page's language.
   * @param {Element} iframe @param {Element} open @param {External} external
   */
  label(iframe, open, external) {
    const name = NAMES[external.provider];
    iframe.setAttribute("title", name ? t("{name} player", { name }) : t("The event's player"));
    open.textContent = name ? t("Open on {name}", { name }) : t("Open in a new tab");
  }

  relabel() {
    const external = this.shown;
    const iframe = this.view.querySelector("iframe");
    const open = this.view.querySelector(".external-link");
    if (external && iframe && open) this.label(iframe, open, external);
  }
}
