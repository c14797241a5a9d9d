// The presenters' Content menu (the Content button in the control bar): what is on stage
// (the layout), the event's files with what can be done with each — present a presentation,
// play a video for everyone, offer it for download — uploading a file from the room, sharing
// a YouTube or Vimeo link, opening the whiteboard.
//
// The list is the event's content (`GET /e/<event>/content`, with the presenter key); a
// presentation's pages are made on the server after the upload (each item's `render_status`
// says how far; the list is asked again while any is being made). Uploads go to `POST /e/<event>/content` (multipart), with their progress shown and the
// server's refusal (too large, over the quota, not what it claims, malware) said plainly.

import { formatNumber, nt, onLanguage, setText, t } from "../i18n.js";
import { byId, el } from "../ui.js";
import { formatSize, kindLabel } from "./files.js";

/** @typedef {import("./content.js").StageContent} StageContent */

/** Detected types a presentation is made from (its pages are rendered on the server). */
const PRESENTATION_TYPES = new Set([
  "application/pdf",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  "application/vnd.oasis.opendocument.presentation",
]);
/** Detected types played as a shared video. */
const VIDEO_TYPES = new Set(["video/mp4", "video/webm"]);
/** While a presentation's pages are being made, ask how far every this many ms. */
const PAGES_POLL_MS = 1500;

/** The layouts in the menu's order, with their names (a function: translated when shown). */
function layoutNames() {
  return /** @type {[string, string][]} */ ([
    ["cameras", t("Cameras")],
    ["screen", t("Screen share")],
    ["presentation", t("Presentation")],
    ["video", t("Shared video")],
    ["whiteboard", t("Whiteboard")],
    ["external", t("External player")],
  ]);
}

/**
 * The message of a JSON error body (`{"error": code, "message"}` or `{"error": {"code", "message"}}`).
 * @param {any} body
 * @param {number} status
 */
function refusalText(body, status) {
  const message = String((typeof body?.error === "object" ? body.error?.message : body?.message) ?? "");
  if (message) return message.charAt(0).toUpperCase() + message.slice(1) + (/[.!?]$/.test(message) ? "" : ".");
  return t("The upload failed (HTTP {status}). Try again.", { status });
}

export class ContentMenu {
  /** @param {StageContent} content */
  constructor(content) {
    this.content = content;
    this.wrap = byId("content-menu-wrap");
    this.toggle = /** @type {HTMLButtonElement} */ (byId("content-toggle"));
    this.panel = byId("content-menu");
    this.open = false;
    /** The event's files. @type {any[]} */
    this.items = [];
    this.listLoaded = false;
    this.listError = "";
    /** @type {number | undefined} */
    this.pollTimer = undefined;
    /** The upload under way. @type {{xhr: XMLHttpRequest, name: string, loaded: number, total: number} | null} */
    this.upload = null;
    /** Presentations uploaded here whose pages we wait for (to say when they are ready). @type {Set<string>} */
    this.awaited = new Set();
    this.build();
    this.toggle.addEventListener("click", () => this.setOpen(!this.open));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.open) {
        this.setOpen(false);
        this.toggle.focus();
      }
    });
    document.addEventListener("pointerdown", (event) => {
      if (this.open && !this.wrap.contains(/** @type {Node} */ (event.target))) this.setOpen(false);
    });
    onLanguage(() => this.render());
    content.onStage(() => this.render());
    content.onAttach((conn) => {
      for (const type of ["stream-added", "stream-ended"]) conn.addEventListener(type, () => this.renderLayouts());
    });
  }

  build() {
    const title = el("h2", { id: "content-menu-title", class: "content-menu-title" });
    setText(title, "Content");
    const close = el("button", { type: "button", class: "btn btn-icon", "data-testid": "content-menu-close", "aria-label": t("Close the content menu") }, ["×"]);
    close.addEventListener("click", () => {
      this.setOpen(false);
      this.toggle.focus();
    });

    // what is on stage
    this.layoutSelect = /** @type {HTMLSelectElement} */ (el("select", { id: "stage-layout-select", "data-testid": "stage-layout" }));
    this.layoutSelect.addEventListener("change", () => this.setLayout(this.layoutSelect.value));
    const layoutLabel = el("label", { for: "stage-layout-select" });
    setText(layoutLabel, "On stage");

    // upload
    this.fileInput = /** @type {HTMLInputElement} */ (el("input", { type: "file", id: "room-upload", class: "sr-only", "data-testid": "room-upload" }));
    this.fileInput.addEventListener("change", () => {
      const file = this.fileInput.files?.[0];
      this.fileInput.value = "";
      if (file) this.startUpload(file);
    });
    this.uploadLabel = el("label", { for: "room-upload", class: "btn btn-small btn-primary content-upload-button", "data-testid": "room-upload-button" });
    setText(this.uploadLabel, "Upload a file…");
    this.progress = /** @type {HTMLProgressElement} */ (el("progress", { max: 1, value: 0, "data-testid": "room-upload-progress" }));
    this.progressText = el("span", { class: "hint", "data-testid": "room-upload-status", "data-no-translate": true });
    this.cancel = el("button", { type: "button", class: "btn btn-small btn-ghost", "data-testid": "room-upload-cancel" });
    setText(this.cancel, "Cancel");
    this.cancel.addEventListener("click", () => this.upload?.xhr.abort());
    this.progressBox = el("div", { class: "content-upload-progress", role: "status", hidden: true }, [this.progress, this.progressText, this.cancel]);
    this.uploadError = el("p", { class: "field-error", role: "alert", "data-testid": "room-upload-error", hidden: true });
    const hint = el("p", { class: "hint content-hint" });
    setText(hint, "Slides (PDF, PowerPoint, ODP), videos (MP4, WebM), images and documents. Attendees see nothing until you show or offer it.");

    this.list = el("ul", { class: "content-list", "data-testid": "content-list", "aria-label": t("The event's files") });
    this.listNote = el("p", { class: "hint", "data-testid": "content-menu-empty" });

    // a video link
    this.videoUrl = /** @type {HTMLInputElement} */ (
      el("input", { type: "url", id: "video-share-url", "data-testid": "video-share-url", inputmode: "url", autocomplete: "off", spellcheck: "false", placeholder: "https://www.youtube.com/watch?v=…", "aria-describedby": "video-share-error" }) // i18n-ignore
    );
    const videoLabel = el("label", { for: "video-share-url" });
    setText(videoLabel, "YouTube or Vimeo link");
    this.videoStart = /** @type {HTMLButtonElement} */ (el("button", { type: "submit", class: "btn btn-small btn-primary", "data-testid": "video-share-start" }));
    setText(this.videoStart, "Play for everyone");
    this.videoError = el("p", { id: "video-share-error", class: "field-error", role: "alert", "data-testid": "video-share-error", hidden: true });
    const videoForm = el("form", { class: "content-video-form", novalidate: true }, [
      videoLabel,
      el("div", { class: "content-video-row" }, [this.videoUrl, this.videoStart]),
      this.videoError,
    ]);
    videoForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.shareLink();
    });

    // the whiteboard
    this.boardButton = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "btn btn-small", "data-testid": "whiteboard-open" }));
    setText(this.boardButton, "Open the whiteboard");
    this.boardButton.addEventListener("click", () => this.act(this.boardButton, "stage-layout", { layout: "whiteboard" }, true));

    const heading = () => el("h3", { class: "content-menu-heading" });
    const [filesHeading, videoHeading, boardHeading] = [heading(), heading(), heading()];
    setText(filesHeading, "Files");
    setText(videoHeading, "Share a video");
    setText(boardHeading, "Whiteboard");
    const section = (/** @type {Node[]} */ children) => el("section", { class: "content-menu-section" }, children);
    this.panel.append(
      el("div", { class: "content-menu-head" }, [title, close]),
      el("div", { class: "content-menu-body" }, [
        el("div", { class: "field content-layout" }, [layoutLabel, this.layoutSelect]),
        section([filesHeading, hint, this.uploadRow(), this.progressBox, this.uploadError, this.listNote, this.list]),
        section([videoHeading, videoForm]),
        section([boardHeading, this.boardButton]),
      ]),
    );
  }

  /**
   * The upload button; uploading needs the presenter key (the presenter link, or a presenter's
   * join token): someone made a presenter in the room is told so.
   */
  uploadRow() {
    if (this.content.host.presenterKey) return el("div", { class: "content-upload-row" }, [this.fileInput, this.uploadLabel]);
    const note = el("p", { class: "hint content-hint", "data-testid": "room-upload-needs-key" });
    setText(note, "To upload files here, open the room with your presenter link. Files already uploaded can be shown and offered.");
    return note;
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.open = open && this.content.staff();
    this.panel.hidden = !this.open;
    this.toggle.setAttribute("aria-expanded", String(this.open));
    if (this.open) {
      this.render();
      this.loadList();
      this.layoutSelect.focus();
    } else {
      window.clearTimeout(this.pollTimer);
      this.pollTimer = undefined;
    }
  }

  render() {
    const staff = this.content.staff();
    this.wrap.hidden = !staff;
    if (!staff && this.open) this.setOpen(false);
    if (!staff) return;
    this.renderLayouts();
    this.renderList();
    this.renderUpload();
    const layout = this.content.state?.layout ?? "cameras";
    this.boardButton.disabled = layout === "whiteboard";
  }

  // ------------------------------------------------------------------ layout

  /** The layouts that can be chosen now (and the current one). */
  availableLayouts() {
    const state = this.content.state;
    const screen = [...(this.content.conn?.streamInfo.values() ?? [])].some((s) => s.source === "screen");
    /** @type {Record<string, boolean>} */
    const can = {
      cameras: true,
      screen,
      presentation: Boolean(state?.presentation),
      video: Boolean(state?.video),
      whiteboard: true,
      external: Boolean(state?.external),
    };
    const current = state?.layout ?? "cameras";
    return layoutNames().filter(([id]) => can[id] || id === current);
  }

  renderLayouts() {
    const select = this.layoutSelect;
    if (document.activeElement === select && select.dataset.busy === "true") return;
    const current = this.content.state?.layout ?? "cameras";
    select.replaceChildren(...this.availableLayouts().map(([id, name]) => el("option", { value: id, text: name })));
    select.value = current;
    select.disabled = !this.content.state;
  }

  /** @param {string} layout */
  async setLayout(layout) {
    const select = this.layoutSelect;
    select.dataset.busy = "true";
    select.disabled = true;
    try {
      await this.content.request("stage-layout", { layout });
    } catch (error) {
      this.content.fail(error);
    } finally {
      delete select.dataset.busy;
      select.disabled = false;
      this.renderLayouts();
    }
  }

  // ------------------------------------------------------------------ the event's files

  /** The event's files (with how far each presentation's pages are); asked again while pages are being made. */
  async loadList() {
    window.clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    try {
      const response = await fetch(`${this.content.eventPath}/content`, { headers: this.content.authHeaders(), cache: "no-store" });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(refusalText(body, response.status));
      this.items = Array.isArray(body.items) ? body.items : [];
      this.listError = "";
    } catch (error) {
      this.listError = t("The files could not be listed: {reason}", { reason: error instanceof Error ? error.message : String(error) });
    }
    this.listLoaded = true;
    this.notePages();
    this.renderList();
    const preparing = this.items.some((item) => PRESENTATION_TYPES.has(item.content_type) && this.pagesOf(item).status === "rendering");
    if (preparing && (this.open || this.awaited.size)) this.pollTimer = window.setTimeout(() => this.loadList(), PAGES_POLL_MS);
  }

  /**
   * How far a presentation's pages are (from the list: `render_status`, `pages`, `render_message`).
   * @param {any} item
   * @returns {{status: "ready" | "rendering" | "failed" | "unknown", pages: number, message: string}}
   */
  pagesOf(item) {
    const status = item.render_status;
    const pages = Number(item.pages) || 0;
    const message = String(item.render_message ?? "");
    if (status === "ready" && pages > 0) return { status: "ready", pages, message };
    if (status === "failed") return { status: "failed", pages: 0, message };
    // "none": accepted, its rendering about to start
    if (status === "rendering" || status === "none") return { status: "rendering", pages: 0, message };
    return { status: "unknown", pages: 0, message };
  }

  /** Presentations uploaded here whose pages are now ready (or failed): say so once. */
  notePages() {
    for (const item of this.items) {
      const id = String(item.content_id);
      if (!this.awaited.has(id)) continue;
      const pages = this.pagesOf(item);
      if (pages.status === "rendering") continue;
      this.awaited.delete(id);
      if (pages.status === "ready") {
        this.content.toast(t("{name} is ready to present.", { name: item.file_name }), { kind: "success", key: `pages-${id}` });
      } else if (pages.status === "failed") {
        const reason = pages.message || t("unknown error");
        this.content.toast(t("The pages of {name} could not be made: {reason}", { name: item.file_name, reason }), { kind: "warn", key: `pages-${id}`, timeout: 0 });
      }
    }
  }

  renderList() {
    if (!this.open) return;
    const state = this.content.state;
    const offered = new Set((state?.files ?? []).map((/** @type {any} */ f) => f.content_id));
    this.list.replaceChildren(...this.items.map((item) => this.row(item, offered.has(item.content_id))));
    const text = this.listError || (this.listLoaded && !this.items.length ? t("No files yet. Upload slides, a video or a handout.") : !this.listLoaded ? t("Loading the files…") : "");
    this.listNote.textContent = text;
    this.listNote.hidden = !text;
  }

  /**
   * One file: its name, kind, size, how far its pages are; what can be done with it.
   * @param {any} item
   * @param {boolean} offered
   */
  row(item, offered) {
    const id = String(item.content_id);
    const type = String(item.content_type ?? "");
    const state = this.content.state;
    /** @type {string[]} */
    const facts = [kindLabel(type), formatSize(Number(item.size_bytes) || 0)];
    /** @type {HTMLElement[]} */
    const actions = [];
    if (PRESENTATION_TYPES.has(type)) {
      const pages = this.pagesOf(item);
      if (pages.status === "ready") facts.push(nt("{n} page", "{n} pages", pages.pages));
      else if (pages.status === "rendering") facts.push(t("preparing the pages…"));
      else if (pages.status === "failed") {
        const reason = pages.message || t("unknown error");
        facts.push(t("the pages could not be made: {reason}", { reason }));
      }
      const onStage = state?.presentation?.content_id === id;
      const button = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "btn btn-small btn-primary", "data-testid": "presentation-start" }));
      if (onStage && state?.layout === "presentation") {
        button.textContent = t("On stage");
        button.disabled = true;
      } else if (onStage) {
        button.textContent = t("Show");
        button.addEventListener("click", () => this.act(button, "stage-layout", { layout: "presentation" }, true));
      } else {
        button.textContent = t("Present");
        button.disabled = pages.status === "rendering" || pages.status === "failed";
        button.addEventListener("click", () => this.act(button, "presentation-show", { content_id: id, page: 1 }, true));
      }
      actions.push(button);
    }
    if (VIDEO_TYPES.has(type)) {
      const playing = state?.video?.kind === "file" && String(state.video.src ?? "").endsWith(`/content/${id}`);
      const button = /** @type {HTMLButtonElement} */ (el("button", { type: "button", class: "btn btn-small btn-primary", "data-testid": "video-share-file" }));
      button.textContent = playing ? t("On stage") : t("Play for everyone");
      button.disabled = playing && state?.layout === "video";
      button.addEventListener("click", () => (playing ? this.act(button, "stage-layout", { layout: "video" }, true) : this.act(button, "video-share", { content_id: id }, true)));
      actions.push(button);
    }
    const offer = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", "data-testid": "file-offer", checked: offered }));
    offer.addEventListener("change", async () => {
      offer.disabled = true;
      try {
        await this.content.request("file-offer", { content_id: id, offered: offer.checked });
      } catch (error) {
        offer.checked = !offer.checked;
        this.content.fail(error);
      } finally {
        offer.disabled = false;
      }
    });
    actions.push(el("label", { class: "check content-offer" }, [offer, " ", t("Offer for download")]));
    return el("li", { class: "content-item", "data-testid": "content-item", "data-content-id": id, "data-offered": String(offered), "data-pages": PRESENTATION_TYPES.has(type) ? this.pagesOf(item).status : null }, [
      el("div", { class: "content-item-main" }, [
        el("span", { class: "content-item-name", "data-testid": "content-item-name", "data-no-translate": true, text: item.file_name, title: item.file_name }),
        el("span", { class: "hint content-item-facts", "data-testid": "content-item-facts", text: facts.join(" · ") }),
      ]),
      el("div", { class: "content-item-actions" }, actions),
    ]);
  }

  /**
   * Send a stage command from a button (busy meanwhile); say plainly when it is refused.
   * @param {HTMLButtonElement} button
   * @param {string} type
   * @param {Record<string, unknown>} fields
   * @param {boolean} close  close the menu when it worked (the presenter wants to see the stage)
   */
  async act(button, type, fields, close) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      await this.content.request(type, fields);
      if (close) this.setOpen(false);
    } catch (error) {
      this.content.fail(error);
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
      this.render();
    }
  }

  // ------------------------------------------------------------------ a video link

  async shareLink() {
    const url = this.videoUrl.value.trim();
    this.videoError.hidden = true;
    this.videoUrl.removeAttribute("aria-invalid");
    if (!url) {
      this.showVideoError(t("Paste a YouTube or Vimeo link first."));
      this.videoUrl.focus();
      return;
    }
    this.videoStart.disabled = true;
    try {
      await this.content.request("video-share", { url });
      this.videoUrl.value = "";
      this.setOpen(false);
    } catch (error) {
      const message = /** @type {any} */ (error)?.message ?? String(error);
      this.showVideoError(message.charAt(0).toUpperCase() + message.slice(1) + (/[.!?]$/.test(message) ? "" : "."));
      this.videoUrl.focus();
    } finally {
      this.videoStart.disabled = false;
    }
  }

  /** @param {string} text */
  showVideoError(text) {
    this.videoError.textContent = text;
    this.videoError.hidden = false;
    this.videoUrl.setAttribute("aria-invalid", "true");
  }

  // ------------------------------------------------------------------ upload

  /** @param {File} file */
  startUpload(file) {
    if (this.upload) return;
    this.uploadError.hidden = true;
    const xhr = new XMLHttpRequest();
    this.upload = { xhr, name: file.name, loaded: 0, total: file.size };
    xhr.open("POST", `${this.content.eventPath}/content`);
    for (const [name, value] of Object.entries(this.content.authHeaders())) xhr.setRequestHeader(name, value);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (!this.upload) return;
      this.upload.loaded = event.loaded;
      if (event.lengthComputable) this.upload.total = event.total;
      this.renderUpload();
    });
    xhr.addEventListener("load", () => {
      /** @type {any} */
      let body = {};
      try {
        body = JSON.parse(xhr.responseText || "{}");
      } catch {
        body = {};
      }
      if (xhr.status >= 200 && xhr.status < 300) this.uploaded(body, file.name);
      else this.uploadFailed(refusalText(body, xhr.status));
    });
    xhr.addEventListener("error", () => this.uploadFailed(t("The upload of {name} broke off: the connection failed. Try again.", { name: file.name })));
    xhr.addEventListener("abort", () => this.uploadFailed(t("The upload of {name} was cancelled.", { name: file.name })));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
    this.renderUpload();
  }

  renderUpload() {
    const up = this.upload;
    this.progressBox.hidden = !up;
    this.uploadLabel.toggleAttribute("aria-disabled", Boolean(up));
    this.fileInput.disabled = Boolean(up);
    if (!up) return;
    const fraction = up.total > 0 ? Math.min(1, up.loaded / up.total) : 0;
    this.progress.value = fraction;
    this.progressText.textContent =
      fraction < 1
        ? t("Uploading {name}: {percent}", { name: up.name, percent: formatNumber(fraction, { style: "percent" }) })
        : t("Checking {name}…", { name: up.name });
  }

  /**
   * @param {any} item  the stored file
   * @param {string} name
   */
  uploaded(item, name) {
    this.upload = null;
    this.renderUpload();
    this.content.toast(t("{name} is uploaded.", { name }), { kind: "success", key: "room-upload" });
    if (item?.content_id) {
      this.items = [...this.items.filter((i) => i.content_id !== item.content_id), item];
      if (PRESENTATION_TYPES.has(item.content_type)) this.awaited.add(String(item.content_id));
    }
    this.renderList();
    this.loadList();
  }

  /** @param {string} text */
  uploadFailed(text) {
    this.upload = null;
    this.renderUpload();
    this.uploadError.textContent = text;
    this.uploadError.hidden = false;
  }
}
