// The whiteboard on stage: a shared white 16:9 board that presenters, hosts and the attendees
// they allow draw on (pen, line, rectangle, ellipse, text, eraser), with several pages; everyone
// sees every stroke as it is drawn, and can save the page as PNG or every page as PDF.
//
// The server keeps the strokes (docs/protocol.md, "Stage"): a stroke travels in several
// `whiteboard-stroke` messages while it is drawn (new points every 40 ms, appended; shapes send
// their two corners, replaced), and the `stage` state carries the page shown, the page count,
// who may draw, and the strokes of a page after a sync or a page change. Coordinates are
// fractions of the board (0..1), widths thousandths of its width, so every screen and every
// export draws the same picture from the same list.
//
// Drawing: the visible canvas is a copy of a "base" canvas holding every finished or growing
// stroke of the page, with the shapes still being dragged drawn on top. New points are drawn
// onto the base as they come; anything else (a page, a resize, a clear, a stroke finished out
// of order) draws the base again from the list.

import { formatNumber, nt, onLanguage, t } from "../i18n.js";
import { isStaff } from "../participants.js";
import { byId } from "../ui.js";

/** @typedef {import("./content.js").StageContent} StageContent */
/** @typedef {import("./content.js").StageState} StageState */
/** @typedef {import("../participants.js").ParticipantList} ParticipantList */
/** @typedef {import("../protocol.js").ParticipantInfo} ParticipantInfo */
/** @typedef {import("../protocol.js").WebinarConnection} WebinarConnection */

/** @typedef {"pen" | "line" | "rect" | "ellipse" | "text" | "eraser"} Tool */
/** @typedef {[number, number]} Point */

/**
 * A stroke as the server sends it (and as we keep it).
 * @typedef {object} Stroke
 * @property {string} stroke_id
 * @property {number} page
 * @property {string | null} by
 * @property {Tool} tool
 * @property {string} color  #rrggbb
 * @property {number} width  thousandths of the board's width
 * @property {Point[]} points
 * @property {string | null} text
 * @property {boolean} done
 */

/**
 * What the room gives the whiteboard.
 * @typedef {object} WhiteboardHost
 * @property {ParticipantList} people  the people list: the grant is a row action there
 * @property {() => void} renderPeople  draw the people list again
 * @property {{show: (text: string, options?: {kind?: string, key?: string}) => unknown}} toasts
 * @property {(error: unknown) => void} showFailure
 */

const TOOLS = /** @type {const} */ (["pen", "line", "rect", "ellipse", "text", "eraser"]);
const SHAPES = new Set(["line", "rect", "ellipse"]);
/** Line widths, in thousandths of the board's width; the eraser is four times as wide. */
const WIDTHS = /** @type {Record<string, number>} */ ({ thin: 2, medium: 5, thick: 10 });
const ERASER_FACTOR = 4;
const MAX_WIDTH = 40;
const BACKGROUND = "#ffffff";
const RATIO = 16 / 9;
/** New points go out this often while drawing, at first; then at most SEND_RATE messages a
 * second (the server refuses a client over 20 a second), so others see a stroke grow within
 * about 0.15 s. */
const FLUSH_MS = 40;
const SEND_BURST = 10;
const SEND_RATE = 8;
const MAX_POINTS_PER_MESSAGE = 500;
const MAX_POINTS_PER_STROKE = 20000;
const MAX_TEXT = 500;
const MAX_PAGES = 20;
/** Saved pages (PNG, and each page of the PDF) are this many pixels, whatever the screen. */
const EXPORT_WIDTH = 1920;
const EXPORT_HEIGHT = 1080;
/** The PDF's page: 13.33 × 7.5 inches, the widescreen slide size, in points. */
const PDF_WIDTH = 960;
const PDF_HEIGHT = 540;

/**
 * The height of a text stroke's letters, in thousandths of the board's width.
 * @param {number} width  the stroke's width
 */
function textSize(width) {
  return 12 + 3 * width;
}

/** @param {number} value */
function fraction(value) {
  return Math.round(Math.min(1, Math.max(0, value)) * 10000) / 10000;
}

/** A stroke ID: 16 random URL-safe characters (crypto.randomUUID needs a secure context). */
function newStrokeId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

/**
 * Draw one stroke (or, with `from`, only its points from that index on: the part that is new).
 * @param {CanvasRenderingContext2D} ctx
 * @param {Stroke} stroke
 * @param {number} w  the canvas's width in pixels
 * @param {number} h  its height
 * @param {number} [from]
 */
export function drawStroke(ctx, stroke, w, h, from = 0) {
  const points = stroke.points;
  if (!points.length) return;
  const color = stroke.tool === "eraser" ? BACKGROUND : stroke.color;
  const lineWidth = (stroke.width / 1000) * w;
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = lineWidth;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  /** @param {number} i */
  const x = (i) => points[i][0] * w;
  /** @param {number} i */
  const y = (i) => points[i][1] * h;
  switch (stroke.tool) {
    case "pen":
    case "eraser": {
      const start = Math.max(0, from - 1);
      if (start >= points.length) return;
      if (points.length - start === 1) {
        ctx.beginPath();
        ctx.arc(x(start), y(start), lineWidth / 2, 0, 2 * Math.PI);
        ctx.fill();
        return;
      }
      ctx.beginPath();
      ctx.moveTo(x(start), y(start));
      for (let i = start + 1; i < points.length; i++) ctx.lineTo(x(i), y(i));
      ctx.stroke();
      return;
    }
    case "line":
      if (points.length < 2) return;
      ctx.beginPath();
      ctx.moveTo(x(0), y(0));
      ctx.lineTo(x(1), y(1));
      ctx.stroke();
      return;
    case "rect":
      if (points.length < 2) return;
      ctx.strokeRect(Math.min(x(0), x(1)), Math.min(y(0), y(1)), Math.abs(x(1) - x(0)), Math.abs(y(1) - y(0)));
      return;
    case "ellipse":
      if (points.length < 2) return;
      ctx.beginPath();
      ctx.ellipse((x(0) + x(1)) / 2, (y(0) + y(1)) / 2, Math.abs(x(1) - x(0)) / 2, Math.abs(y(1) - y(0)) / 2, 0, 0, 2 * Math.PI);
      ctx.stroke();
      return;
    case "text":
      if (!stroke.text) return;
      ctx.font = `${(textSize(stroke.width) / 1000) * w}px sans-serif`; // i18n-ignore
      ctx.textBaseline = "top";
      ctx.fillText(stroke.text, x(0), y(0));
      return;
  }
}

/**
 * A page drawn whole: white, then every stroke in order.
 * @param {CanvasRenderingContext2D} ctx
 * @param {Stroke[]} strokes
 * @param {number} w
 * @param {number} h
 * @param {(stroke: Stroke) => boolean} [skip]
 */
export function drawPage(ctx, strokes, w, h, skip) {
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, w, h);
  for (const stroke of strokes) {
    if (!skip || !skip(stroke)) drawStroke(ctx, stroke, w, h);
  }
  ctx.restore();
}

/**
 * A PDF with one JPEG per page, each filling a 16:9 page: the smallest file a PDF reader
 * opens (catalog, page tree, and per page its content stream and a DCTDecode image).
 * @param {Uint8Array[]} jpegs
 * @param {number} width  each JPEG's width in pixels
 * @param {number} height
 * @returns {Blob}
 */
export function jpegPdf(jpegs, width, height) {
  const encoder = new TextEncoder();
  /** @type {(Uint8Array)[]} */
  const parts = [];
  /** @type {number[]} */
  const offsets = [];
  let length = 0;
  /** @param {string | Uint8Array} part */
  const write = (part) => {
    const bytes = typeof part === "string" ? encoder.encode(part) : part;
    parts.push(bytes);
    length += bytes.length;
  };
  /** @param {number} id @param {string} body */
  const object = (id, body) => {
    offsets[id] = length;
    write(`${id} 0 obj\n${body}\nendobj\n`);
  };
  write("%PDF-1.4\n");
  // a comment of bytes above 127 tells transfer tools that the file is binary
  write(new Uint8Array([0x25, 0xe2, 0xe3, 0xcf, 0xd3, 0x0a]));
  const count = jpegs.length;
  const pageId = (/** @type {number} */ i) => 3 + 3 * i;
  object(1, "<< /Type /Catalog /Pages 2 0 R >>");
  object(2, `<< /Type /Pages /Kids [${jpegs.map((_, i) => `${pageId(i)} 0 R`).join(" ")}] /Count ${count} >>`);
  jpegs.forEach((jpeg, i) => {
    const id = pageId(i);
    object(
      id,
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${PDF_WIDTH} ${PDF_HEIGHT}] ` +
        `/Resources << /XObject << /Im0 ${id + 2} 0 R >> >> /Contents ${id + 1} 0 R >>`,
    );
    const content = `q ${PDF_WIDTH} 0 0 ${PDF_HEIGHT} 0 0 cm /Im0 Do Q`;
    object(id + 1, `<< /Length ${content.length} >>\nstream\n${content}\nendstream`);
    offsets[id + 2] = length;
    write(
      `${id + 2} 0 obj\n<< /Type /XObject /Subtype /Image /Width ${width} /Height ${height} ` +
        `/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length ${jpeg.length} >>\nstream\n`,
    );
    write(jpeg);
    write("\nendstream\nendobj\n");
  });
  const xref = length;
  const size = 3 + 3 * count;
  let table = `xref\n0 ${size}\n0000000000 65535 f \n`;
  for (let id = 1; id < size; id++) table += `${String(offsets[id]).padStart(10, "0")} 00000 n \n`;
  write(table);
  write(`trailer\n<< /Size ${size} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return new Blob(/** @type {BlobPart[]} */ (parts), { type: "application/pdf" });
}

/**
 * The bytes of a data: URL (a canvas's JPEG).
 * @param {string} url
 */
function dataUrlBytes(url) {
  const binary = atob(url.slice(url.indexOf(",") + 1));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Offer a file for download.
 * @param {Blob} blob
 * @param {string} name
 */
function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // the download has its own copy once it started
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export class Whiteboard {
  /**
   * @param {StageContent} content
   * @param {WhiteboardHost} host
   */
  constructor(content, host) {
    this.content = content;
    this.host = host;
    this.canvas = /** @type {HTMLCanvasElement} */ (byId("wb-canvas"));
    this.ctx = /** @type {CanvasRenderingContext2D} */ (this.canvas.getContext("2d"));
    this.base = document.createElement("canvas");
    this.baseCtx = /** @type {CanvasRenderingContext2D} */ (this.base.getContext("2d"));
    this.board = byId("wb-board");
    this.area = byId("wb-area");
    this.textInput = /** @type {HTMLInputElement} */ (byId("wb-text"));
    /** Strokes by page, in the order they began. @type {Map<number, Stroke[]>} */
    this.pages = new Map();
    /** @type {Map<string, Stroke>} */
    this.strokes = new Map();
    /** IDs of the strokes we drew (their echo is skipped). @type {Set<string>} */
    this.mine = new Set();
    this.page = 0;
    this.pageCount = 1;
    /** @type {string[]} */
    this.granted = [];
    /** @type {Tool} */
    this.tool = "pen";
    this.color = "#1e1e1e";
    this.widthName = "medium";
    /**
     * The stroke being drawn here, and what of it is not sent yet.
     * @type {{stroke: Stroke, pointerId: number, pending: Point[], changed: boolean, sent: boolean, timer: number} | null}
     */
    this.drawing = null;
    /** Where the text being typed goes. @type {{x: number, y: number, page: number} | null} */
    this.typing = null;
    /** A press with the text tool: the click that follows opens a text field. */
    this.textClick = false;
    /** A redraw is asked for the next frame; `full` draws the base again. */
    this.frame = 0;
    this.full = false;
    /** @type {WebinarConnection | null} */
    this.watched = null;
    /** The last layout seen (the people list's action depends on it). */
    this.layout = "";
    /** Messages we may send now while drawing (a token bucket: SEND_BURST, SEND_RATE a second). */
    this.tokens = SEND_BURST;
    this.tokensAt = performance.now();

    this.bind();
    content.onStage((state, previous) => this.guard(() => this.onStage(state, previous)));
    content.onMessage("whiteboard-stroke", (message) => this.guard(() => this.onStroke(message)));
    content.onMessage("whiteboard-cleared", (message) => this.guard(() => this.onCleared(message.page)));
    host.people.addRowExtension((person, myRole, self) => this.rowExtras(person, myRole, self));
    onLanguage(() => this.renderBar());
    this.renderBar();
  }

  /**
   * A handler that cannot break the others (a malformed message is logged and dropped).
   * @param {() => void} run
   */
  guard(run) {
    try {
      run();
    } catch (error) {
      console.error("webinar: whiteboard", error);
    }
  }

  // ------------------------------------------------------------------ who we are

  get conn() {
    return this.content.conn;
  }

  get me() {
    return this.conn?.participantId ?? null;
  }

  get role() {
    return this.conn?.joined?.role ?? "attendee";
  }

  /** Presenters and hosts, and attendees a presenter allowed. */
  get canDraw() {
    const me = this.me;
    return Boolean(me) && (isStaff(this.role) || this.granted.includes(/** @type {string} */ (me)));
  }

  /** Our role can change while we are in: the tools follow. */
  watchConnection() {
    const conn = this.conn;
    if (!conn || conn === this.watched) return;
    this.watched = conn;
    conn.addEventListener("participant-updated", (/** @type {any} */ event) => {
      if (this.watched !== conn || !event.detail?.self || event.detail.cause !== "role") return;
      this.guard(() => this.permissionChanged());
    });
  }

  permissionChanged() {
    if (!this.canDraw) {
      this.endDrawing();
      this.closeText();
      const dialog = /** @type {HTMLDialogElement} */ (byId("wb-clear-dialog"));
      if (dialog.open) dialog.close();
    }
    this.renderBar();
  }

  // ------------------------------------------------------------------ the server's state

  /**
   * @param {StageState} state
   * @param {StageState | null} previous
   */
  onStage(state, previous) {
    this.watchConnection();
    const board = state.whiteboard;
    const layoutChanged = state.layout !== this.layout;
    this.layout = state.layout;
    if (state.layout !== "whiteboard") {
      // a dialog left open in a hidden view would keep the whole page inert
      const dialog = /** @type {HTMLDialogElement} */ (byId("wb-clear-dialog"));
      if (dialog.open) dialog.close();
      this.commitText();
    }
    if (!board) {
      if (layoutChanged) this.host.renderPeople();
      return;
    }
    const could = this.canDraw;
    const grantedBefore = this.granted;
    this.granted = Array.isArray(board.granted) ? board.granted : [];
    const page = Number.isInteger(board.page) ? board.page : 0;
    const pageChanged = page !== this.page;
    if (pageChanged) {
      this.endDrawing();
      this.commitText();
    }
    this.page = page;
    this.pageCount = Math.max(1, Number(board.pages) || 1, page + 1);
    if (Array.isArray(board.strokes)) this.loadStrokes(board.strokes);
    if (could !== this.canDraw) {
      this.permissionChanged();
      // an attendee hears that they may draw (presenters always may)
      if (previous && !isStaff(this.role)) {
        this.host.toasts.show(this.canDraw ? t("You may draw on the whiteboard now.") : t("You can no longer draw on the whiteboard."), {
          key: "whiteboard-grant",
        });
      }
    }
    this.renderBar();
    if (pageChanged || Array.isArray(board.strokes)) this.redraw(true);
    if (layoutChanged || grantedBefore.join() !== this.granted.join()) this.host.renderPeople();
  }

  /**
   * Every stroke of every page (the sync after joining or reconnecting) replaces what we had.
   * @param {any[]} list
   */
  loadStrokes(list) {
    this.pages.clear();
    this.strokes.clear();
    for (const raw of list) {
      const stroke = this.normalise(raw);
      if (stroke) this.add(stroke);
    }
    // the stroke we are drawing now stays, whether or not the server had it yet
    const own = this.drawing?.stroke;
    if (own && !this.strokes.has(own.stroke_id)) this.add(own);
  }

  /**
   * A stroke from the server, checked and copied (null when it makes no sense).
   * @param {any} raw
   * @returns {Stroke | null}
   */
  normalise(raw) {
    if (!raw || typeof raw.stroke_id !== "string" || !TOOLS.includes(raw.tool)) return null;
    const points = Array.isArray(raw.points)
      ? raw.points.filter((/** @type {any} */ p) => Array.isArray(p) && Number.isFinite(p[0]) && Number.isFinite(p[1]))
      : [];
    return {
      stroke_id: raw.stroke_id,
      page: Number.isInteger(raw.page) ? raw.page : 0,
      by: raw.by ?? null,
      tool: raw.tool,
      color: typeof raw.color === "string" && /^#[0-9a-fA-F]{6}$/.test(raw.color) ? raw.color : "#000000",
      width: Math.min(MAX_WIDTH, Math.max(1, Number(raw.width) || 1)),
      points: points.map((/** @type {number[]} */ p) => /** @type {Point} */ ([p[0], p[1]])),
      text: typeof raw.text === "string" ? raw.text : null,
      done: Boolean(raw.done),
    };
  }

  /** @param {Stroke} stroke */
  add(stroke) {
    const list = this.pages.get(stroke.page) ?? [];
    list.push(stroke);
    this.pages.set(stroke.page, list);
    this.strokes.set(stroke.stroke_id, stroke);
  }

  /** The strokes of the page shown. */
  get shown() {
    return this.pages.get(this.page) ?? [];
  }

  /** @param {{stroke: any, append: boolean}} message */
  onStroke(message) {
    const incoming = this.normalise(message.stroke);
    if (!incoming || this.mine.has(incoming.stroke_id)) return; // our own, drawn already
    const known = this.strokes.get(incoming.stroke_id);
    if (!known) {
      this.add(incoming);
      this.strokeChanged(incoming, 0, false);
      return;
    }
    const wasFloating = this.floating(known);
    if (message.append && !SHAPES.has(known.tool)) {
      const from = known.points.length;
      known.points.push(...incoming.points);
      known.done = incoming.done;
      this.strokeChanged(known, from, wasFloating);
    } else {
      // the whole stroke (shapes: the new corners)
      known.points = incoming.points;
      known.done = incoming.done;
      known.text = incoming.text ?? known.text;
      if (!wasFloating) this.redraw(true);
      else this.strokeChanged(known, 0, wasFloating);
    }
  }

  /**
   * Draw what changed in a stroke: new points onto the base, a dragged shape on top; once it is
   * done out of order (something began after it), the page is drawn again in order.
   * @param {Stroke} stroke
   * @param {number} from  the first new point
   * @param {boolean} wasFloating  it was a shape being dragged
   */
  strokeChanged(stroke, from, wasFloating) {
    if (stroke.page !== this.page) return;
    this.renderCount();
    const list = this.shown;
    const last = list[list.length - 1] === stroke;
    if (this.floating(stroke)) {
      this.redraw(false);
      return;
    }
    if (stroke.done && !last) {
      this.redraw(true);
      return;
    }
    if (!this.full && this.base.width) {
      drawStroke(this.baseCtx, stroke, this.base.width, this.base.height, wasFloating ? 0 : from);
    }
    this.redraw(false);
  }

  /**
   * A shape still being dragged: drawn over the base, not into it.
   * @param {Stroke} stroke
   */
  floating(stroke) {
    return SHAPES.has(stroke.tool) && !stroke.done;
  }

  /** @param {number} page */
  onCleared(page) {
    if (!Number.isInteger(page)) return;
    for (const stroke of this.pages.get(page) ?? []) this.strokes.delete(stroke.stroke_id);
    this.pages.set(page, []);
    const drawing = this.drawing;
    if (drawing?.stroke.page === page) {
      // what we were drawing went with the page: stop sending it
      clearInterval(drawing.timer);
      if (this.canvas.hasPointerCapture(drawing.pointerId)) this.canvas.releasePointerCapture(drawing.pointerId);
      this.drawing = null;
    }
    if (page === this.page) this.redraw(true);
  }

  // ------------------------------------------------------------------ drawing on screen

  /**
   * Ask for a redraw on the next frame.
   * @param {boolean} full  draw the base again from the list
   */
  redraw(full) {
    if (full) this.full = true;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.guard(() => this.paint());
    });
  }

  paint() {
    const { width, height } = this.canvas;
    if (!width || !height) return;
    if (this.full) {
      this.full = false;
      drawPage(this.baseCtx, this.shown, width, height, (s) => this.floating(s));
    }
    this.ctx.drawImage(this.base, 0, 0);
    for (const stroke of this.shown) {
      if (this.floating(stroke)) drawStroke(this.ctx, stroke, width, height);
    }
    this.renderCount();
  }

  /** Fit the board into the view: the largest 16:9 box, in device pixels. */
  resize() {
    const box = this.area.getBoundingClientRect();
    if (box.width < 2 || box.height < 2) return; // hidden
    const cssWidth = Math.floor(Math.min(box.width, box.height * RATIO));
    const cssHeight = Math.floor(cssWidth / RATIO);
    this.board.style.width = `${cssWidth}px`;
    this.board.style.height = `${cssHeight}px`;
    const dpr = window.devicePixelRatio || 1;
    const width = Math.round(cssWidth * dpr);
    const height = Math.round(cssHeight * dpr);
    if (width === this.canvas.width && height === this.canvas.height) return;
    // a new size clears a canvas: draw at once, so no blank frame shows
    this.canvas.width = this.base.width = width;
    this.canvas.height = this.base.height = height;
    this.full = true;
    this.paint();
    this.placeText();
  }

  // ------------------------------------------------------------------ the toolbar

  bind() {
    new ResizeObserver(() => this.guard(() => this.resize())).observe(this.area);
    // a zoom or a move to another screen changes the device pixel ratio
    window.addEventListener("resize", () => this.guard(() => this.resize()));

    for (const button of document.querySelectorAll("#wb-tools [data-tool]")) {
      button.addEventListener("click", () => {
        this.commitText();
        this.tool = /** @type {Tool} */ (/** @type {HTMLElement} */ (button).dataset.tool);
        this.renderBar();
      });
    }
    for (const button of document.querySelectorAll("#wb-colors [data-color]")) {
      button.addEventListener("click", () => {
        this.color = /** @type {string} */ (/** @type {HTMLElement} */ (button).dataset.color);
        this.textInput.style.color = this.color;
        this.renderBar();
      });
    }
    for (const button of document.querySelectorAll("#wb-widths [data-width]")) {
      button.addEventListener("click", () => {
        this.widthName = /** @type {string} */ (/** @type {HTMLElement} */ (button).dataset.width);
        this.placeText();
        this.renderBar();
      });
    }
    const dialog = /** @type {HTMLDialogElement} */ (byId("wb-clear-dialog"));
    byId("wb-clear").addEventListener("click", () => {
      this.commitText();
      dialog.returnValue = ""; // Escape keeps the last value otherwise
      dialog.showModal();
      byId("wb-clear-cancel").focus(); // the safe choice first
    });
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "clear") this.clearPage();
      else byId("wb-clear").focus();
    });
    byId("wb-page-prev").addEventListener("click", () => this.goTo(this.page - 1));
    byId("wb-page-next").addEventListener("click", () => this.goTo(this.page + 1));
    byId("wb-page-add").addEventListener("click", () => this.goTo(this.pageCount));
    byId("wb-save-png").addEventListener("click", () => this.savePng());
    byId("wb-save-pdf").addEventListener("click", () => this.savePdf());

    const canvas = this.canvas;
    canvas.addEventListener("pointerdown", (event) => this.guard(() => this.pointerDown(event)));
    canvas.addEventListener("pointermove", (event) => this.guard(() => this.pointerMove(event)));
    canvas.addEventListener("pointerup", (event) => this.guard(() => this.pointerUp(event)));
    canvas.addEventListener("pointercancel", (event) => this.guard(() => this.pointerUp(event)));
    canvas.addEventListener("lostpointercapture", (event) => this.guard(() => this.pointerUp(event)));
    // the text field opens on the click, after the press moved the focus
    canvas.addEventListener("click", (event) => {
      if (!this.textClick) return;
      this.textClick = false;
      if (this.canDraw && this.tool === "text") this.openText(this.pointAt(event));
    });

    this.textInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        this.commitText();
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.closeText();
      }
    });
    this.textInput.addEventListener("blur", () => this.commitText());
  }

  /** What the bar shows: tools for those who may draw, pages for presenters, the page label. */
  renderBar() {
    const draw = this.canDraw;
    const staff = isStaff(this.role) && Boolean(this.me);
    byId("wb-bar").hidden = !draw;
    for (const id of ["wb-page-prev", "wb-page-next", "wb-page-add"]) byId(id).hidden = !staff;
    for (const button of document.querySelectorAll("#wb-tools [data-tool]")) {
      button.setAttribute("aria-pressed", String(/** @type {HTMLElement} */ (button).dataset.tool === this.tool));
    }
    for (const button of document.querySelectorAll("#wb-colors [data-color]")) {
      button.setAttribute("aria-pressed", String(/** @type {HTMLElement} */ (button).dataset.color === this.color));
    }
    for (const button of document.querySelectorAll("#wb-widths [data-width]")) {
      button.setAttribute("aria-pressed", String(/** @type {HTMLElement} */ (button).dataset.width === this.widthName));
    }
    /** @type {HTMLButtonElement} */ (byId("wb-page-prev")).disabled = this.page <= 0;
    /** @type {HTMLButtonElement} */ (byId("wb-page-next")).disabled = this.page >= this.pageCount - 1;
    const add = /** @type {HTMLButtonElement} */ (byId("wb-page-add"));
    add.disabled = this.pageCount >= MAX_PAGES;
    add.title = add.disabled ? nt("A whiteboard has at most {n} page.", "A whiteboard has at most {n} pages.", MAX_PAGES) : t("Add a page");
    const numbers = { page: formatNumber(this.page + 1), pages: formatNumber(this.pageCount) };
    // TRANSLATORS: the whiteboard's page label, "2 / 3": the page shown and how many there are
    byId("wb-page-label").textContent = t("{page} / {pages}", numbers);
    this.canvas.setAttribute("aria-label", t("Whiteboard, page {page} of {pages}", numbers));
    this.canvas.dataset.page = String(this.page);
    this.canvas.dataset.pages = String(this.pageCount);
    this.canvas.dataset.canDraw = String(draw);
    this.canvas.dataset.tool = this.tool;
    this.renderCount();
  }

  renderCount() {
    this.canvas.dataset.strokes = String(this.shown.length);
  }

  /** The width the chosen tool sends. */
  get strokeWidth() {
    const width = WIDTHS[this.widthName] ?? WIDTHS.medium;
    return this.tool === "eraser" ? Math.min(MAX_WIDTH, width * ERASER_FACTOR) : width;
  }

  /** @param {number} page */
  goTo(page) {
    if (page < 0 || page > this.pageCount || page >= MAX_PAGES) return;
    this.commitText();
    this.content.request("whiteboard-page", { page }).catch((error) => this.host.showFailure(error));
  }

  clearPage() {
    const page = this.page;
    this.content
      .request("whiteboard-clear", { page })
      .then(() => this.onCleared(page))
      .catch((error) => this.host.showFailure(error));
  }

  // ------------------------------------------------------------------ drawing with the pointer

  /**
   * Where a pointer is on the board, in fractions (clamped to the board).
   * @param {MouseEvent} event
   * @returns {Point}
   */
  pointAt(event) {
    const box = this.canvas.getBoundingClientRect();
    return [fraction((event.clientX - box.left) / box.width), fraction((event.clientY - box.top) / box.height)];
  }

  /** @param {PointerEvent} event */
  pointerDown(event) {
    if (!this.canDraw || this.drawing) return;
    if (event.pointerType === "mouse" && event.button !== 0) return;
    if (this.tool === "text") {
      // a press while typing ends the text; a press otherwise starts one where it is
      this.textClick = !this.typing;
      this.commitText();
      return;
    }
    this.commitText();
    event.preventDefault(); // no text selection while drawing
    const point = this.pointAt(event);
    /** @type {Stroke} */
    const stroke = {
      stroke_id: newStrokeId(),
      page: this.page,
      by: this.me,
      tool: this.tool,
      color: this.tool === "eraser" ? BACKGROUND : this.color,
      width: this.strokeWidth,
      points: SHAPES.has(this.tool) ? [point, point] : [point],
      text: null,
      done: false,
    };
    this.mine.add(stroke.stroke_id);
    this.add(stroke);
    this.canvas.setPointerCapture(event.pointerId);
    this.drawing = {
      stroke,
      pointerId: event.pointerId,
      pending: SHAPES.has(stroke.tool) ? [] : [point],
      changed: false,
      sent: false,
      timer: window.setInterval(() => this.guard(() => this.flush(false)), FLUSH_MS),
    };
    this.strokeChanged(stroke, 0, false);
  }

  /** @param {PointerEvent} event */
  pointerMove(event) {
    const drawing = this.drawing;
    if (!drawing || event.pointerId !== drawing.pointerId) return;
    const stroke = drawing.stroke;
    const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    if (SHAPES.has(stroke.tool)) {
      const end = this.pointAt(event);
      const [, old] = stroke.points;
      if (old[0] === end[0] && old[1] === end[1]) return;
      stroke.points = [stroke.points[0], end];
      drawing.changed = true;
      this.strokeChanged(stroke, 0, true);
      return;
    }
    const from = stroke.points.length;
    for (const each of events.length ? events : [event]) {
      const point = this.pointAt(each);
      const last = stroke.points[stroke.points.length - 1];
      if (last[0] === point[0] && last[1] === point[1]) continue;
      if (stroke.points.length >= MAX_POINTS_PER_STROKE) break;
      stroke.points.push(point);
      drawing.pending.push(point);
    }
    if (stroke.points.length > from) this.strokeChanged(stroke, from, false);
    if (stroke.points.length >= MAX_POINTS_PER_STROKE) this.endDrawing();
  }

  /** @param {PointerEvent} event */
  pointerUp(event) {
    const drawing = this.drawing;
    if (!drawing || event.pointerId !== drawing.pointerId) return;
    if (event.type === "pointerup") this.pointerMove(event);
    this.endDrawing();
  }

  /** The stroke being drawn ends here (pointer up, page change, permission gone). */
  endDrawing() {
    const drawing = this.drawing;
    if (!drawing) return;
    clearInterval(drawing.timer);
    const stroke = drawing.stroke;
    if (this.canvas.hasPointerCapture(drawing.pointerId)) this.canvas.releasePointerCapture(drawing.pointerId);
    const [start, end] = stroke.points;
    if (SHAPES.has(stroke.tool) && !drawing.sent && start[0] === end[0] && start[1] === end[1]) {
      // a click with a shape tool draws nothing
      this.drawing = null;
      this.forget(stroke);
      return;
    }
    stroke.done = true;
    this.flush(true);
    this.drawing = null;
    // a shape goes into the base now; a line is there already (past its end: nothing to draw)
    const shape = SHAPES.has(stroke.tool);
    this.strokeChanged(stroke, shape ? 0 : stroke.points.length + 1, shape);
  }

  /**
   * Send what is new of the stroke being drawn.
   * @param {boolean} done  the last message of the stroke
   */
  flush(done) {
    const drawing = this.drawing;
    if (!drawing) return;
    const stroke = drawing.stroke;
    if (SHAPES.has(stroke.tool)) {
      const [start, end] = stroke.points;
      if (!done && (!drawing.changed || (start[0] === end[0] && start[1] === end[1]))) return;
      if (!this.mayMessage(done)) return;
      drawing.changed = false;
      this.send(stroke, stroke.points.slice(), done);
      drawing.sent = true;
      return;
    }
    const pending = drawing.pending;
    if (!pending.length && !done) return;
    if (!this.mayMessage(done)) return;
    drawing.pending = [];
    for (let i = 0; i === 0 || i < pending.length; i += MAX_POINTS_PER_MESSAGE) {
      const chunk = pending.slice(i, i + MAX_POINTS_PER_MESSAGE);
      this.send(stroke, chunk, done && i + MAX_POINTS_PER_MESSAGE >= pending.length);
    }
    drawing.sent = true;
  }

  /**
   * Spend a token to send a message while drawing: false when none is left (the points wait
   * for the next turn). A stroke's last message goes anyway (`force`), owing its token.
   * @param {boolean} [force]
   */
  mayMessage(force = false) {
    const now = performance.now();
    this.tokens = Math.min(SEND_BURST, this.tokens + ((now - this.tokensAt) / 1000) * SEND_RATE);
    this.tokensAt = now;
    if (this.tokens < 1 && !force) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * @param {Stroke} stroke
   * @param {Point[]} points
   * @param {boolean} done
   */
  send(stroke, points, done) {
    /** @type {Record<string, unknown>} */
    const message = {
      stroke_id: stroke.stroke_id,
      page: stroke.page,
      tool: stroke.tool,
      color: stroke.color,
      width: stroke.width,
      points,
      done,
    };
    if (stroke.tool === "text") message.text = stroke.text;
    this.content.request("whiteboard-stroke", message).catch((error) => this.refused(stroke, error));
  }

  /**
   * The server refused a stroke (no longer allowed, a limit): it goes, and we say why once.
   * @param {Stroke} stroke
   * @param {unknown} error
   */
  refused(stroke, error) {
    if (!this.strokes.has(stroke.stroke_id)) return;
    if (this.drawing?.stroke === stroke) {
      clearInterval(this.drawing.timer);
      this.drawing = null;
    }
    this.forget(stroke);
    this.host.showFailure(error);
  }

  /** @param {Stroke} stroke */
  forget(stroke) {
    this.strokes.delete(stroke.stroke_id);
    const list = this.pages.get(stroke.page);
    if (list) this.pages.set(stroke.page, list.filter((s) => s !== stroke));
    if (stroke.page === this.page) this.redraw(true);
  }

  // ------------------------------------------------------------------ text

  /** @param {Point} point */
  openText([x, y]) {
    this.typing = { x, y, page: this.page };
    const input = this.textInput;
    input.value = "";
    input.style.color = this.color;
    input.hidden = false;
    this.placeText();
    input.focus();
  }

  /** Put the text field where the text goes, in the size it will have. */
  placeText() {
    if (!this.typing) return;
    const box = this.board.getBoundingClientRect();
    const input = this.textInput;
    const size = (textSize(this.strokeWidth) / 1000) * box.width;
    input.style.fontSize = `${size}px`;
    input.style.left = `${this.typing.x * box.width - 3}px`;
    input.style.top = `${this.typing.y * box.height - 1}px`;
    input.style.maxWidth = `${Math.max(80, box.width * (1 - this.typing.x))}px`;
  }

  commitText() {
    const typing = this.typing;
    if (!typing) return;
    const text = this.textInput.value.trim().slice(0, MAX_TEXT);
    this.closeText();
    if (!text || !this.canDraw || typing.page !== this.page) return;
    /** @type {Stroke} */
    const stroke = {
      stroke_id: newStrokeId(),
      page: typing.page,
      by: this.me,
      tool: "text",
      color: this.color,
      width: this.strokeWidth,
      points: [[typing.x, typing.y]],
      text,
      done: true,
    };
    this.mine.add(stroke.stroke_id);
    this.add(stroke);
    this.send(stroke, stroke.points.slice(), true);
    this.strokeChanged(stroke, 0, false);
  }

  closeText() {
    if (!this.typing) return;
    this.typing = null;
    this.textInput.hidden = true;
    this.textInput.value = "";
  }

  // ------------------------------------------------------------------ saving

  /**
   * A page drawn on a canvas of the export size.
   * @param {number} page
   */
  renderExport(page) {
    const canvas = document.createElement("canvas");
    canvas.width = EXPORT_WIDTH;
    canvas.height = EXPORT_HEIGHT;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    drawPage(ctx, this.pages.get(page) ?? [], EXPORT_WIDTH, EXPORT_HEIGHT);
    return canvas;
  }

  /** A name for the saved file: the event and, for one page, its number. */
  fileName(/** @type {string} */ extension, /** @type {number | null} */ page = null) {
    const event = this.content.host.eventId.replace(/\D/g, "");
    return page === null ? `whiteboard-${event}.${extension}` : `whiteboard-${event}-page-${page + 1}.${extension}`;
  }

  savePng() {
    this.commitText();
    const page = this.page;
    this.renderExport(page).toBlob((blob) => {
      if (blob) download(blob, this.fileName("png", page));
      else this.host.showFailure(new Error(t("The whiteboard could not be saved.")));
    }, "image/png");
  }

  savePdf() {
    this.commitText();
    try {
      /** @type {Uint8Array[]} */
      const jpegs = [];
      for (let page = 0; page < this.pageCount; page++) {
        jpegs.push(dataUrlBytes(this.renderExport(page).toDataURL("image/jpeg", 0.92)));
      }
      download(jpegPdf(jpegs, EXPORT_WIDTH, EXPORT_HEIGHT), this.fileName("pdf"));
    } catch (error) {
      console.error("webinar: whiteboard PDF", error);
      this.host.showFailure(new Error(t("The whiteboard could not be saved.")));
    }
  }

  // ------------------------------------------------------------------ the people list

  /**
   * Presenters may let an attendee draw (while the whiteboard is on stage, or to stop them);
   * everyone sees who may draw.
   * @param {ParticipantInfo} person
   * @param {string} myRole
   * @param {boolean} self
   * @returns {import("../participants.js").RowExtras}
   */
  rowExtras(person, myRole, self) {
    const id = person.participant_id;
    const granted = person.role === "attendee" && this.granted.includes(id);
    const chips = granted ? [t("May draw")] : [];
    if (self || !isStaff(myRole) || person.role !== "attendee") return { chips };
    if (!granted && this.layout !== "whiteboard") return { chips };
    const who = { name: person.name };
    const action = granted
      ? { action: "whiteboard-revoke", label: t("Stop drawing"), aria: t("Stop {name} drawing on the whiteboard", who) }
      : { action: "whiteboard-grant", label: t("Allow drawing on the whiteboard"), aria: t("Let {name} draw on the whiteboard", who) };
    return {
      chips,
      actions: [
        {
          ...action,
          run: () => {
            this.content
              .request("whiteboard-grant", { participant_id: id, granted: !granted })
              .catch((error) => this.host.showFailure(error));
          },
        },
      ],
    };
  }
}
