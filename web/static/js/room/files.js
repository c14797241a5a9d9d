// Files in the room: what the presenters offer for download (the stage's `files`), in the
// side panel's Files tab. A file newly offered shows a toast and a count on the tab until
// the tab is looked at. Links carry the content pass, so a password, token or paid event's
// files download for its participants (and count as theirs).

import { formatNumber, nt, onLanguage, t } from "../i18n.js";
import { byId, el } from "../ui.js";

/** @typedef {import("./content.js").StageContent} StageContent */
/** @typedef {import("./content.js").StageState} StageState */

const KIB = 1024;
const MIB = 1024 * 1024;
const GIB = 1024 * 1024 * 1024;

/**
 * A file size in the page's language ("840 kB", "2.4 MB").
 * @param {number} bytes
 */
export function formatSize(bytes) {
  const unit = (/** @type {string} */ name, /** @type {number} */ value, /** @type {number} */ digits) =>
    formatNumber(value, { style: "unit", unit: name, unitDisplay: "short", maximumFractionDigits: digits });
  if (bytes < KIB) return unit("byte", bytes, 0);
  if (bytes < MIB) return unit("kilobyte", Math.max(1, Math.round(bytes / KIB)), 0);
  if (bytes < GIB) return unit("megabyte", bytes / MIB, bytes < 10 * MIB ? 1 : 0);
  return unit("gigabyte", bytes / GIB, 1);
}

/**
 * What kind of file it is, in a word or two ("PDF", "Video") — from its detected type.
 * @param {string} type
 */
export function kindLabel(type) {
  if (type === "application/pdf") return t("PDF");
  if (type.startsWith("video/")) return t("Video");
  if (type.startsWith("image/")) return t("Image");
  if (type.includes("presentation")) return t("Slides");
  if (type.includes("spreadsheet")) return t("Spreadsheet");
  if (type.includes("wordprocessing") || type.includes("opendocument.text")) return t("Document");
  return t("File");
}

/**
 * The short badge before a file's name: its extension ("PDF", "XLSX"), or its kind.
 * @param {string} name
 * @param {string} type
 */
function badge(name, type) {
  const dot = name.lastIndexOf(".");
  const ext = dot > 0 ? name.slice(dot + 1) : "";
  return /^[A-Za-z0-9]{1,5}$/.test(ext) ? ext.toUpperCase() : kindLabel(type);
}

export class FilesPanel {
  /** @param {StageContent} content */
  constructor(content) {
    this.content = content;
    /** @type {any[]} */
    this.files = [];
    /** Files offered since the tab was last looked at. @type {Set<string>} */
    this.unseen = new Set();
    this.tab = byId("tab-files");
    this.count = byId("files-count");
    const panel = byId("panel-files");
    this.list = el("ul", { class: "file-list", "data-testid": "file-list", "aria-label": t("Files to download") });
    this.empty = el("p", { class: "hint", "data-testid": "file-list-empty", text: t("No files are offered right now.") });
    panel.append(el("p", { class: "hint files-about", text: t("The presenters offer these files for you to download.") }), this.empty, this.list);
    this.panel = panel;
    // looking at the tab is seeing the new files
    const seen = () => {
      if (this.visible() && this.unseen.size) {
        this.unseen.clear();
        this.renderCount();
      }
    };
    const observer = new MutationObserver(seen);
    observer.observe(panel, { attributes: true, attributeFilter: ["hidden"] });
    observer.observe(byId("live"), { attributes: true, attributeFilter: ["data-panel"] });
    onLanguage(() => this.render());
    content.onStage((state, previous) => this.onStage(state, previous));
  }

  /**
   * @param {StageState} state
   * @param {StageState | null} previous
   */
  onStage(state, previous) {
    const files = Array.isArray(state.files) ? state.files : [];
    const known = new Set(this.files.map((f) => f.content_id));
    this.files = files;
    const offered = new Set(files.map((f) => f.content_id));
    for (const id of [...this.unseen]) if (!offered.has(id)) this.unseen.delete(id);
    // new while we are here: say so (not after joining: the list is simply there)
    const fresh = previous !== null ? files.filter((f) => !known.has(f.content_id)) : [];
    const mine = state.by !== null && state.by === this.content.me();
    if (fresh.length && !mine && !this.content.staff()) {
      const looking = this.visible();
      if (!looking) for (const f of fresh) this.unseen.add(f.content_id);
      const text =
        fresh.length === 1
          ? t("New file to download: {name}", { name: fresh[0].name })
          : nt("{n} new file to download", "{n} new files to download", fresh.length);
      this.content.toast(text, {
        key: "files",
        timeout: 10000,
        action: looking ? undefined : { label: t("Show"), run: () => this.content.host.showTab?.("tab-files"), testid: "file-toast-show" },
      });
    }
    this.render();
  }

  /** Whether the Files tab is in view. */
  visible() {
    return !this.panel.hidden && byId("live").dataset.panel === "open";
  }

  render() {
    const files = this.files;
    // attendees' tab: presenters see (and change) what is offered in the Content menu
    this.tab.hidden = files.length === 0 || this.content.staff();
    if (this.tab.hidden && this.tab.getAttribute("aria-selected") === "true") {
      // the tab goes while it is open: back to the people
      byId("tab-people").click();
    }
    this.empty.hidden = files.length > 0;
    this.list.replaceChildren(...files.map((f) => this.row(f)));
    this.renderCount();
  }

  renderCount() {
    const n = this.unseen.size;
    this.count.hidden = n === 0;
    this.count.textContent = formatNumber(n);
    this.count.setAttribute("aria-label", nt("{n} new file", "{n} new files", n));
    this.tab.dataset.unread = String(n);
  }

  /** @param {any} file  {content_id, name, size, type, url} */
  row(file) {
    const href = this.content.url(String(file.url));
    const link = el("a", { class: "btn btn-small file-download", "data-testid": "file-download", href, download: String(file.name), "aria-label": t("Download {name}", { name: file.name }) }, [t("Download")]);
    return el("li", { class: "file-item", "data-testid": "file-item", "data-content-id": file.content_id, "data-new": this.unseen.has(file.content_id) ? "true" : null }, [
      el("span", { class: "file-kind", "aria-hidden": "true", text: badge(String(file.name ?? ""), String(file.type ?? "")) }),
      el("span", { class: "file-main" }, [
        el("span", { class: "file-name", "data-testid": "file-name", "data-no-translate": true, text: file.name, title: file.name }),
        el("span", { class: "file-size hint", "data-testid": "file-size", text: formatSize(Number(file.size) || 0) }),
      ]),
      link,
    ]);
  }
}
