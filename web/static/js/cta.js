// Call-to-action: the presenters' form (message of at most 54 characters, button,
// http(s) URL, optional duration) and the attendees' popup. The popup's button opens
// our server's redirect link, which counts the click and forwards to the URL.

import { notifyHost } from "./embed.js";
import { formatNumber, onLanguage, t } from "./i18n.js";
import { el, errorMessage } from "./ui.js";

export const CTA_MESSAGE_CHARS = 54; // spaces included; the server checks it again
export const CTA_BUTTON_CHARS = 30;

/** @param {string} url */
export function isHttpUrl(url) {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === "http:" || parsed.protocol === "https:") && Boolean(parsed.hostname);
  } catch {
    return false;
  }
}

export class CtaView {
  /** @param {any} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    /** @type {any} */
    this.current = null;
    this.timer = 0;
    this.clicks = 0;
    this.dismissed = "";
    /** @type {any[]} */
    this.prepared = [];
    // attendees: the popup on the stage
    this.slot = /** @type {HTMLElement} */ (document.getElementById("cta-slot"));
    this.popupMessage = el("p", { class: "cta-message", "data-testid": "cta-popup-message", "data-no-translate": true });
    this.popupButton = /** @type {HTMLAnchorElement} */ (
      el("a", { class: "btn btn-primary", "data-testid": "cta-popup-button", "data-no-translate": true, target: "_blank", rel: "noopener noreferrer" }) // i18n-ignore
    );
    // The site that embeds the room hears of the click (the link itself counts it).
    this.popupButton.addEventListener("click", () => {
      const cta = this.current;
      if (cta) notifyHost("cta-clicked", { cta_id: cta.cta_id, url: cta.url, message: cta.message, button: cta.button });
    });
    const dismiss = el("button", { type: "button", class: "btn btn-icon cta-dismiss", "data-testid": "cta-popup-dismiss", "aria-label": t("Close"), text: "×" });
    dismiss.addEventListener("click", () => {
      this.dismissed = this.current?.cta_id ?? "";
      this.render();
    });
    this.popup = el("div", { class: "cta-popup", "data-testid": "cta-popup", role: "dialog", "aria-label": t("Offer"), hidden: true }, [
      this.popupMessage,
      this.popupButton,
      dismiss,
    ]);
    this.slot.append(this.popup);
    // presenters: the form in their CTA tab
    this.panel = document.getElementById("panel-cta");
    this.status = el("div", { class: "cta-status card", "data-testid": "cta-status", hidden: true });
    // calls-to-action prepared before the event (dashboard): one click shows one
    this.preparedList = el("ul", { class: "cta-prepared-list", "data-testid": "cta-prepared" });
    this.preparedBox = el("section", { class: "cta-prepared", "aria-label": t("Prepared calls-to-action"), hidden: true }, [
      el("p", { class: "eyebrow", text: t("Prepared") }),
      this.preparedList,
    ]);
    this.form = this.makeForm();
    this.panel?.append(this.status, this.preparedBox, this.form);
    // a language switch in the room: the lists with durations and counts again
    onLanguage(() => {
      this.setPrepared(this.prepared);
      this.render();
    });
  }

  /** @param {any[] | null | undefined} prepared  PreparedCtaInfo list (presenters) */
  setPrepared(prepared) {
    const items = prepared ?? [];
    this.prepared = items;
    this.preparedBox.hidden = items.length === 0;
    this.preparedList.replaceChildren(
      ...items.map((p) => {
        const show = el("button", { type: "button", class: "btn btn-small btn-primary", "data-testid": "cta-launch", text: t("Show") });
        show.addEventListener("click", async () => {
          try {
            await this.ctx.request("cta-launch", { prepared_id: p.prepared_id });
          } catch (failure) {
            this.ctx.toast(errorMessage(failure), { kind: "warn", key: "cta" });
          }
        });
        let where = `${p.button} → ${p.url}`;
        if (p.duration_seconds) where += " · " + t("{seconds} s", { seconds: p.duration_seconds });
        return el("li", { class: "cta-prepared-item", "data-testid": "cta-prepared-item", "data-prepared-id": p.prepared_id }, [
          el("div", {}, [
            el("strong", { "data-no-translate": true, text: p.message }),
            el("p", { class: "hint", "data-no-translate": true, text: where }),
          ]),
          show,
        ]);
      }),
    );
  }

  makeForm() {
    const message = /** @type {HTMLInputElement} */ (el("input", { type: "text", "data-testid": "cta-message", maxlength: CTA_MESSAGE_CHARS, required: true, "aria-describedby": "cta-message-count" }));
    const count = el("span", { id: "cta-message-count", class: "hint", "data-testid": "cta-message-count", text: `0 / ${CTA_MESSAGE_CHARS}` });
    const button = /** @type {HTMLInputElement} */ (el("input", { type: "text", "data-testid": "cta-button-text", maxlength: CTA_BUTTON_CHARS, required: true, value: t("Learn more") }));
    const url = /** @type {HTMLInputElement} */ (el("input", { type: "url", "data-testid": "cta-url", required: true, placeholder: "https://", maxlength: 2000 }));
    const duration = /** @type {HTMLInputElement} */ (el("input", { type: "number", "data-testid": "cta-duration", min: 5, max: 3600, placeholder: t("until closed") }));
    const form = el("form", { class: "cta-form", "data-testid": "cta-form" }, [
      el("div", { class: "field" }, [el("label", { text: t("Message (54 characters at most)") }), message, count]),
      el("div", { class: "field" }, [el("label", { text: t("Button text") }), button]),
      el("div", { class: "field" }, [el("label", { text: t("Link (http or https)") }), url]),
      el("div", { class: "field" }, [el("label", { text: t("Close by itself after (seconds, optional)") }), duration]),
      el("button", { type: "submit", class: "btn btn-primary", "data-testid": "cta-show", text: t("Show to attendees") }),
    ]);
    message.addEventListener("input", () => {
      count.textContent = `${message.value.length} / ${CTA_MESSAGE_CHARS}`;
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!isHttpUrl(url.value.trim())) {
        this.ctx.toast(t("The link must start with http:// or https://."), { kind: "warn", key: "cta" });
        return;
      }
      /** @type {Record<string, unknown>} */
      const fields = { message: message.value.trim(), button: button.value.trim(), url: url.value.trim() };
      if (duration.value) fields.duration_seconds = Number(duration.value);
      try {
        await this.ctx.request("cta-show", fields);
      } catch (failure) {
        this.ctx.toast(errorMessage(failure), { kind: "warn", key: "cta" });
      }
    });
    return form;
  }

  /** @param {any} cta */
  load(cta) {
    this.show(cta, null);
  }

  /**
   * @param {any} cta  CtaInfo or null
   * @param {string | null} _reason
   */
  show(cta, _reason) {
    if (cta === null && this.current && _reason === "replaced") return; // the new one follows
    this.current = cta;
    this.clicks = cta?.clicks ?? 0;
    this.render();
  }

  /**
   * @param {string} ctaId
   * @param {number} clicks
   */
  setClicks(ctaId, clicks) {
    if (this.current?.cta_id !== ctaId) return;
    this.clicks = clicks;
    this.render();
  }

  render() {
    const cta = this.current;
    const staff = this.ctx.staff();
    window.clearInterval(this.timer);
    // the popup: attendees only
    const showPopup = Boolean(cta) && !staff && this.dismissed !== cta?.cta_id;
    this.popup.hidden = !showPopup;
    this.slot.hidden = !showPopup;
    if (cta && showPopup) {
      this.popupMessage.textContent = cta.message;
      this.popupButton.textContent = cta.button;
      this.popupButton.href = cta.click_url; // our redirect: counted, then the stored URL
      this.popupButton.title = cta.url;
    }
    // the presenters' status
    this.status.hidden = !cta || !staff;
    if (cta && staff) {
      const close = el("button", { type: "button", class: "btn btn-small btn-live", "data-testid": "cta-close", text: t("Close now") });
      close.addEventListener("click", async () => {
        try {
          await this.ctx.request("cta-close");
        } catch (failure) {
          this.ctx.toast(errorMessage(failure), { kind: "warn", key: "cta" });
        }
      });
      const left = el("span", { class: "hint", "data-testid": "cta-time-left" });
      this.status.replaceChildren(
        el("p", { class: "eyebrow", text: t("Shown to attendees") }),
        el("p", { class: "cta-message", "data-no-translate": true, text: cta.message }),
        el("p", { class: "hint", "data-no-translate": true, text: `${cta.button} → ${cta.url}` }),
        el("p", {}, [t("Clicks:"), " ", el("strong", { "data-testid": "cta-clicks", text: formatNumber(this.clicks ?? 0) })]),
        left,
        close,
      );
      if (cta.closes_at) {
        const tick = () => {
          const seconds = Math.max(0, Math.round(cta.closes_at - Date.now() / 1000));
          left.textContent = t("Closes by itself in {seconds} s.", { seconds });
        };
        tick();
        this.timer = window.setInterval(tick, 1000);
      }
    }
  }
}
