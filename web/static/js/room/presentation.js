// The presentation on stage (#presentation-view): the current page as large as fits,
// letterboxed; the page number; for presenters the page buttons, the arrow keys, the laser
// pointer and Stop presenting.
//
// Pages are images the server rendered (`page_url` of the stage's presentation, with
// {page}); the previous and the next pages are loaded ahead, so a turn shows at once.
// The image's `data-page` is set only once that page's image has loaded (tests wait for it).
// The laser pointer: a presenter moves it over the slide; `pointer {x, y}` (fractions of the
// image, at most 20 a second, null when it leaves) reaches everyone, who show a red dot.

import { formatNumber, onLanguage, setText, t } from "../i18n.js";
import { byId, el } from "../ui.js";

/** @typedef {import("./content.js").StageContent} StageContent */
/** @typedef {import("./content.js").StageState} StageState */

/** A phone held upright: the slide on top, as wide as the screen, the cameras below it. */
const PORTRAIT_PHONE = window.matchMedia("(max-width: 640px) and (orientation: portrait)"); // i18n-ignore
/** At most this many pointer messages a second. */
const POINTER_PER_SECOND = 10;
/** A presenter holding the pointer still says so this often (ms)… */
const POINTER_KEEPALIVE_MS = 5000;
/** …and a dot nobody moved for this long goes (the presenter left or lost the connection). */
const POINTER_STALE_MS = 15000;
/** Pages loaded ahead: this many before the current one, and after it. */
const AHEAD_BEFORE = 1;
const AHEAD_AFTER = 2;
/** A page that failed to load is asked again after this long (ms), a few times. */
const RETRY_MS = [1000, 3000, 8000];

/**
 * Size `inner` to the largest box of this shape (width ÷ height) that fits `outer`, less
 * `reserve` pixels of its height (a toolbar under it).
 * @param {HTMLElement} outer
 * @param {HTMLElement} inner
 * @param {number} aspect
 * @param {number} [reserve]
 */
export function fitInto(outer, inner, aspect, reserve = 0) {
  const width = outer.clientWidth;
  const height = outer.clientHeight - reserve;
  if (width <= 0 || height <= 0) return;
  let w = width;
  let h = w / aspect;
  if (h > height) {
    h = height;
    w = h * aspect;
  }
  inner.style.width = `${Math.floor(w)}px`;
  inner.style.height = `${Math.floor(h)}px`;
}

/**
 * Whether a key press belongs to a field (typing, choosing), not to the slides.
 * @param {EventTarget | null} target
 */
function inField(target) {
  const node = /** @type {HTMLElement | null} */ (target instanceof HTMLElement ? target : null);
  if (!node) return false;
  if (node.isContentEditable) return true;
  if (node.closest("input, textarea, select, [role=tablist], [role=slider], [role=menu], dialog")) return true;
  return false;
}

export class PresentationView {
  /** @param {StageContent} content */
  constructor(content) {
    this.content = content;
    /** The presentation shown (the stage's), or null. @type {any} */
    this.current = null;
    /** The page shown or being loaded (1-based). */
    this.page = 0;
    /** The URL the image should show now. */
    this.wanted = "";
    /** Page turns sent and not answered yet: stage messages wait until they are. */
    this.pendingTurns = 0;
    /** The width ÷ height of the pages (the last one loaded). */
    this.aspect = 16 / 9;
    /** Images of the neighbouring pages, by URL (kept so the browser keeps them decoded). @type {Map<string, HTMLImageElement>} */
    this.ahead = new Map();
    this.retries = 0;
    /** @type {number | undefined} */
    this.retryTimer = undefined;

    // laser pointer
    this.laserOn = false;
    /** @type {{x: number, y: number} | null} */
    this.pointerAt = null;
    this.pointerSentAt = 0;
    /** @type {number | undefined} */
    this.pointerTimer = undefined;
    /** @type {number | undefined} */
    this.keepalive = undefined;
    /** @type {number | undefined} */
    this.staleTimer = undefined;

    this.root = byId("presentation-view");
    this.image = /** @type {HTMLImageElement} */ (
      el("img", { class: "slide-image", "data-testid": "slide-image", alt: "", draggable: "false" })
    );
    this.dot = el("div", { class: "laser-dot", "data-testid": "laser-pointer", "aria-hidden": "true", hidden: true });
    this.note = el("p", { class: "slide-note", "data-testid": "slide-note", role: "status", hidden: true });
    this.box = el("div", { class: "slide-box", "data-testid": "slide-box" }, [this.image, this.dot]);
    this.frame = el("div", { class: "slide-frame" }, [this.box, this.note]);

    this.title = el("span", { class: "slide-title", "data-testid": "slide-title", "data-no-translate": true });
    this.number = el("span", { class: "slide-page-number", "data-testid": "slide-page-number", "aria-live": "polite" });
    this.prev = /** @type {HTMLButtonElement} */ (
      el("button", { type: "button", class: "btn btn-small slide-turn", "data-testid": "slide-prev", "aria-label": t("Previous page"), title: t("Previous page (Left arrow)") }, ["‹"])
    );
    this.next = /** @type {HTMLButtonElement} */ (
      el("button", { type: "button", class: "btn btn-small slide-turn", "data-testid": "slide-next", "aria-label": t("Next page"), title: t("Next page (Right arrow)") }, ["›"])
    );
    this.laser = /** @type {HTMLButtonElement} */ (
      el("button", { type: "button", class: "btn btn-small slide-laser", "data-testid": "laser-pointer-toggle", "aria-pressed": "false", title: t("Point at the slide for everyone: move the mouse over it") })
    );
    setText(this.laser, "Laser pointer");
    this.stop = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "btn btn-small slide-stop", "data-testid": "presentation-stop" }));
    setText(this.stop, "Stop presenting");
    this.staffTools = el("div", { class: "slide-tools" }, [this.laser, this.stop]);
    this.toolbar = el("div", { class: "slide-toolbar", role: "toolbar", "aria-label": t("Presentation") }, [
      this.title,
      el("div", { class: "slide-pager" }, [this.prev, this.number, this.next]),
      this.staffTools,
    ]);
    this.root.append(this.frame, this.toolbar);

    this.image.addEventListener("load", () => this.loaded());
    this.image.addEventListener("error", () => this.failed());
    this.prev.addEventListener("click", () => this.turn(this.page - 1));
    this.next.addEventListener("click", () => this.turn(this.page + 1));
    this.stop.addEventListener("click", () => this.stopPresenting());
    this.laser.addEventListener("click", () => this.setLaser(!this.laserOn));
    document.addEventListener("keydown", (event) => this.onKey(event));
    this.box.addEventListener("pointermove", (event) => this.onPointerMove(event));
    this.box.addEventListener("pointerleave", () => this.pointerOff());
    const resized = new ResizeObserver(() => this.fit());
    resized.observe(this.root);
    resized.observe(this.toolbar);
    resized.observe(byId("stage"));
    PORTRAIT_PHONE.addEventListener("change", () => this.fit());
    onLanguage(() => this.render());

    content.onStage((state, previous) => this.onStage(state, previous));
    content.onMessage("pointer", (message) => this.onPointer(message));
  }

  /**
   * @param {StageState} state
   * @param {StageState | null} previous
   */
  onStage(state, previous) {
    const shown = state.presentation ?? null;
    const was = this.current;
    if (!shown) {
      this.clear();
      return;
    }
    const sameDeck = was !== null && was.content_id === shown.content_id;
    this.current = shown;
    if (!sameDeck) this.aspect = 16 / 9;
    // our own turns show at once; the server's echoes of them would step back meanwhile
    if (this.pendingTurns === 0 || !sameDeck) this.show(shown.page);
    if (state.layout !== "presentation") {
      // the slide left the stage: no pointer on it any more
      if (this.pointerAt) this.pointerOff();
      else if (previous?.layout === "presentation") this.hideDot();
    }
    this.render();
  }

  /** No presentation any more. */
  clear() {
    this.current = null;
    this.page = 0;
    this.wanted = "";
    this.pendingTurns = 0;
    this.ahead.clear();
    window.clearTimeout(this.retryTimer);
    this.image.removeAttribute("src");
    delete this.image.dataset.page;
    this.note.hidden = true;
    this.setLaser(false);
    this.hideDot();
    this.render();
  }

  /**
   * The URL of one page's image (the content pass appended where the event needs one).
   * @param {number} page
   */
  pageUrl(page) {
    const template = String(this.current?.page_url ?? "");
    return this.content.url(template.replace("{page}", String(page)));
  }

  /**
   * Show this page: the image follows as soon as it is loaded (at once when loaded ahead).
   * @param {number} page
   */
  show(page) {
    if (!this.current) return;
    this.page = page;
    const url = this.pageUrl(page);
    if (url !== this.wanted) {
      this.wanted = url;
      this.retries = 0;
      window.clearTimeout(this.retryTimer);
      this.image.setAttribute("src", url);
      this.image.alt = t("Page {page} of {pages}: {name}", { page: formatNumber(page), pages: formatNumber(this.current.pages), name: this.current.name });
      if (this.image.complete && this.image.naturalWidth > 0) this.loaded();
    }
    this.loadAhead(page);
    this.render();
  }

  /** The image finished loading: if it is the page wanted, it is the page shown. */
  loaded() {
    if (!this.current || this.image.getAttribute("src") !== this.wanted) return;
    if (this.image.naturalWidth > 0 && this.image.naturalHeight > 0) {
      this.aspect = this.image.naturalWidth / this.image.naturalHeight;
    }
    this.image.dataset.page = String(this.page);
    this.note.hidden = true;
    this.fit();
  }

  /** The page's image did not load (a network hiccup, the pages still being made): again later. */
  failed() {
    if (!this.current || this.image.getAttribute("src") !== this.wanted) return;
    const delay = RETRY_MS[this.retries];
    if (delay === undefined) setText(this.note, "This page could not be loaded.");
    else setText(this.note, "Loading the page…");
    this.note.hidden = false;
    if (delay === undefined) return;
    this.retries += 1;
    const url = this.wanted;
    this.retryTimer = window.setTimeout(() => {
      if (this.wanted !== url) return;
      // the same URL again: a fresh request (the failed one is not cached)
      this.image.removeAttribute("src");
      this.image.setAttribute("src", url);
    }, delay);
  }

  /**
   * Load the pages around this one, so turning shows them at once.
   * @param {number} page
   */
  loadAhead(page) {
    const pages = Number(this.current?.pages ?? 0);
    /** @type {Map<string, HTMLImageElement>} */
    const keep = new Map();
    for (let n = page - AHEAD_BEFORE; n <= page + AHEAD_AFTER; n += 1) {
      if (n < 1 || n > pages || n === page) continue;
      const url = this.pageUrl(n);
      let img = this.ahead.get(url);
      if (!img) {
        img = new Image();
        img.decoding = "async";
        img.src = url;
        img.decode().catch(() => {}); // a failure shows when that page is turned to
      }
      keep.set(url, img);
    }
    this.ahead = keep;
  }

  /** Size the slide to the largest box of its shape that fits the view. */
  fit() {
    const toolbar = this.toolbar.hidden ? 0 : this.toolbar.offsetHeight;
    if (PORTRAIT_PHONE.matches) {
      // the view is as tall as what it shows (the cameras take the rest): as wide as the
      // stage, at most 60 % of its height
      const stage = byId("stage");
      const h = Math.min(this.root.clientWidth / this.aspect, stage.clientHeight * 0.6 - toolbar);
      if (h <= 0) return;
      this.box.style.width = `${Math.floor(h * this.aspect)}px`;
      this.box.style.height = `${Math.floor(h)}px`;
      return;
    }
    fitInto(this.root, this.box, this.aspect, toolbar);
  }

  /** The page number, the buttons (presenters), the title. */
  render() {
    const p = this.current;
    const staff = this.content.staff();
    this.toolbar.hidden = !p;
    if (!p) return;
    this.title.textContent = p.name ?? "";
    this.title.title = p.name ?? "";
    setText(this.number, "{page} / {pages}", { page: formatNumber(this.page), pages: formatNumber(p.pages) });
    this.number.setAttribute("aria-label", t("Page {page} of {pages}", { page: formatNumber(this.page), pages: formatNumber(p.pages) }));
    this.prev.hidden = !staff;
    this.next.hidden = !staff;
    // the (empty) tools keep their place: the page number stays in the middle
    this.laser.hidden = !staff;
    this.stop.hidden = !staff;
    this.prev.disabled = this.page <= 1;
    this.next.disabled = this.page >= p.pages;
    this.box.dataset.laser = this.laserOn && staff ? "on" : "off";
    if (!staff && this.laserOn) this.setLaser(false);
  }

  /**
   * A presenter turns to this page: shown here at once, then everyone follows the server.
   * @param {number} page
   */
  async turn(page) {
    const p = this.current;
    if (!p || !this.content.staff() || page < 1 || page > p.pages || page === this.page) return;
    this.show(page);
    this.pendingTurns += 1;
    try {
      await this.content.request("presentation-page", { page });
    } catch (error) {
      this.content.fail(error);
    } finally {
      this.pendingTurns -= 1;
      // the last answer is in: show what the server says the page is
      const latest = this.content.state?.presentation;
      if (this.pendingTurns === 0 && latest && latest.content_id === this.current?.content_id) this.show(latest.page);
    }
  }

  async stopPresenting() {
    this.stop.disabled = true;
    try {
      await this.content.request("presentation-stop");
    } catch (error) {
      this.content.fail(error);
    } finally {
      this.stop.disabled = false;
    }
  }

  /** @param {KeyboardEvent} event */
  onKey(event) {
    if (!this.current || this.content.state?.layout !== "presentation" || !this.content.staff()) return;
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || inField(event.target)) return;
    if (document.querySelector("dialog[open]")) return;
    let step = 0;
    if (event.key === "ArrowRight" || event.key === "PageDown") step = 1;
    else if (event.key === "ArrowLeft" || event.key === "PageUp") step = -1;
    if (!step) return;
    event.preventDefault();
    this.turn(this.page + step);
  }

  // ------------------------------------------------------------------ laser pointer

  /** @param {boolean} on */
  setLaser(on) {
    const was = this.laserOn;
    this.laserOn = on && this.content.staff();
    this.laser.setAttribute("aria-pressed", String(this.laserOn));
    this.box.dataset.laser = this.laserOn ? "on" : "off";
    if (was && !this.laserOn) this.pointerOff();
  }

  /** @param {PointerEvent} event */
  onPointerMove(event) {
    if (!this.laserOn || !this.current) return;
    const rect = this.box.getBoundingClientRect();
    if (rect.width <= 0 || rect.height <= 0) return;
    const clamp = (/** @type {number} */ v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
    const at = { x: clamp((event.clientX - rect.left) / rect.width), y: clamp((event.clientY - rect.top) / rect.height) };
    this.pointerAt = at;
    this.placeDot(at.x, at.y);
    this.sendPointer();
  }

  /** Send where the pointer is, at most POINTER_PER_SECOND times a second (the last position always goes). */
  sendPointer() {
    if (this.pointerTimer !== undefined) return; // the one waiting sends the latest position
    const gap = 1000 / POINTER_PER_SECOND;
    const wait = this.pointerSentAt + gap - performance.now();
    const send = () => {
      this.pointerTimer = undefined;
      const at = this.pointerAt;
      if (!at || !this.laserOn) return;
      this.pointerSentAt = performance.now();
      this.content.request("pointer", { x: at.x, y: at.y }).catch((error) => this.pointerFailed(error));
      window.clearTimeout(this.keepalive);
      this.keepalive = window.setTimeout(() => this.sendPointer(), POINTER_KEEPALIVE_MS);
    };
    if (wait <= 0) send();
    else this.pointerTimer = window.setTimeout(send, wait);
  }

  /** The pointer left the slide, or the laser was turned off: everyone's dot goes. */
  pointerOff() {
    window.clearTimeout(this.pointerTimer);
    window.clearTimeout(this.keepalive);
    this.pointerTimer = undefined;
    this.keepalive = undefined;
    const wasOn = this.pointerAt !== null;
    this.pointerAt = null;
    this.hideDot();
    if (wasOn) this.content.request("pointer", { x: null, y: null }).catch((error) => this.pointerFailed(error));
  }

  /** @param {unknown} error */
  pointerFailed(error) {
    // a refusal (our role changed) turns the laser off; a lost connection says so elsewhere
    console.warn("webinar: pointer not sent", error);
    if (/** @type {any} */ (error)?.code === "forbidden") this.setLaser(false);
  }

  /** @param {{x: number | null, y: number | null, by?: string}} message */
  onPointer(message) {
    if (message.by && message.by === this.content.me()) return; // ours shows as we move it
    if (message.x === null || message.y === null || message.x === undefined || message.y === undefined) {
      this.hideDot();
      return;
    }
    this.placeDot(message.x, message.y);
    window.clearTimeout(this.staleTimer);
    this.staleTimer = window.setTimeout(() => this.hideDot(), POINTER_STALE_MS);
  }

  /**
   * @param {number} x
   * @param {number} y
   */
  placeDot(x, y) {
    this.dot.style.left = `${x * 100}%`;
    this.dot.style.top = `${y * 100}%`;
    this.dot.dataset.x = String(x);
    this.dot.dataset.y = String(y);
    this.dot.hidden = false;
  }

  hideDot() {
    window.clearTimeout(this.staleTimer);
    this.dot.hidden = true;
  }
}
