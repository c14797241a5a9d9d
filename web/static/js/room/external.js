// The event's external player (#external-view): a YouTube, Vimeo or other allowed player the
// organiser linked to the event, framed at the largest 16:9 size that fits. The stage carries
// it only for people admitted to the room. A player that refuses to be framed (Zoom) is a card
// with a button that opens it in a new tab. The frame exists only while the layout shows it,
// so a stream does not play on unseen.

import { onLanguage, setText, t } from "../i18n.js";
import { byId, el } from "../ui.js";
import { fitInto } from "./presentation.js";

/** @typedef {import("./content.js").StageContent} StageContent */
/** @typedef {import("./content.js").StageState} StageState */

/** What a provider is called, for the card of a player that cannot be framed. @param {string} provider */
function providerName(provider) {
  if (provider === "zoom") return "Zoom"; // i18n-ignore
  if (provider === "youtube") return "YouTube"; // i18n-ignore
  if (provider === "vimeo") return "Vimeo"; // i18n-ignore
  return "";
}

export class ExternalPlayer {
  /** @param {StageContent} content */
  constructor(content) {
    this.content = content;
    this.root = byId("external-view");
    this.frameBox = el("div", { class: "external-frame" });
    this.root.append(this.frameBox);
    /** @type {HTMLIFrameElement | null} */
    this.iframe = null;
    /** @type {any} */
    this.player = null;
    new ResizeObserver(() => this.fit()).observe(this.root);
    onLanguage(() => this.render(true));
    content.onStage((state) => this.onStage(state));
  }

  /** @param {StageState} state */
  onStage(state) {
    const next = state.layout === "external" ? (state.external ?? null) : null;
    const same = next && this.player && next.url === this.player.url && next.framable === this.player.framable && next.link === this.player.link;
    this.player = next;
    if (!same) this.render(false);
  }

  /** @param {boolean} relabel  only the words changed (the language) */
  render(relabel) {
    const p = this.player;
    if (relabel && this.iframe) {
      this.iframe.title = t("External player");
      return;
    }
    if (!p) {
      this.iframe = null;
      this.frameBox.replaceChildren();
      return;
    }
    if (p.framable === false) {
      this.iframe = null;
      const name = providerName(String(p.provider ?? ""));
      const button = el("a", { class: "btn btn-primary", "data-testid": "external-open", href: String(p.link || p.url), target: "_blank", rel: "noopener noreferrer" }, [ // i18n-ignore
        name ? t("Open in {provider}", { provider: name }) : t("Open the player"),
      ]);
      const text = el("p", {});
      setText(text, "This player opens in a new tab; chat, Q&A and polls stay here.");
      this.frameBox.replaceChildren(el("div", { class: "external-card", "data-testid": "external-player", "data-framable": "false" }, [text, button]));
      return;
    }
    const iframe = /** @type {HTMLIFrameElement} */ (
      el("iframe", {
        class: "external-iframe",
        "data-testid": "external-player",
        src: String(p.url),
        title: t("External player"),
        allow: "autoplay; encrypted-media; fullscreen; picture-in-picture", // i18n-ignore
        allowfullscreen: true,
        referrerpolicy: "strict-origin-when-cross-origin",
      })
    );
    this.iframe = iframe;
    this.frameBox.replaceChildren(iframe);
    this.fit();
  }

  fit() {
    if (this.iframe) fitInto(this.root, this.iframe, 16 / 9);
  }
}
