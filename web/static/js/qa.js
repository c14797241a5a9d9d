// Q&A: the question list (votes, states, sorting), asking (optionally anonymously),
// the presenters' tools, and the published question on everyone's stage.

import { clock, linkify } from "./chat.js";
import { formatNumber, onLanguage, setText, t } from "./i18n.js";
import { el, errorMessage } from "./ui.js";

export const MAX_QUESTION_CHARS = 2000;

/** What a question's state is called (a new question shows none). @param {string} state */
function stateLabel(state) {
  if (state === "answered") return t("Answered");
  if (state === "dismissed") return t("Dismissed");
  return state;
}

export class QaPanel {
  /** @param {any} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    /** @type {Map<string, any>} */
    this.questions = new Map();
    this.open = true;
    /** @type {any} */
    this.published = null;
    this.order = "votes";
    const panel = /** @type {HTMLElement} */ (document.getElementById("panel-qa"));
    this.openBox = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", "data-testid": "qa-open-toggle", checked: true }));
    this.openBox.addEventListener("change", () => this.act("qa-settings", { open: this.openBox.checked }));
    this.tools = el("div", { class: "panel-tools", hidden: true }, [
      el("label", { class: "check" }, [this.openBox, " ", t("Q&A open")]),
    ]);
    this.sort = /** @type {HTMLSelectElement} */ (
      el("select", { "data-testid": "qa-sort", "aria-label": t("Sort questions") }, [
        el("option", { value: "votes", text: t("Most votes first") }),
        el("option", { value: "time", text: t("Oldest first") }),
      ])
    );
    this.sort.addEventListener("change", () => {
      this.order = this.sort.value;
      this.render();
    });
    this.input = /** @type {HTMLTextAreaElement} */ (
      el("textarea", { rows: 2, maxlength: MAX_QUESTION_CHARS, "data-testid": "qa-input", placeholder: t("Ask the presenters a question"), "aria-label": t("Your question") })
    );
    this.anonymous = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", "data-testid": "qa-anonymous" }));
    this.askForm = el("form", { class: "qa-form", "data-testid": "qa-form" }, [
      this.input,
      el("div", { class: "row qa-form-row" }, [
        el("label", { class: "check" }, [this.anonymous, " ", t("Ask anonymously")]),
        el("button", { type: "submit", class: "btn btn-primary btn-small", "data-testid": "qa-ask", text: t("Ask") }),
      ]),
    ]);
    this.askForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask();
    });
    this.closedNote = el("p", { class: "hint", "data-testid": "qa-closed-note", hidden: true, text: t("Q&A is closed.") });
    this.empty = el("p", { class: "hint", "data-testid": "qa-empty", text: t("No questions yet.") });
    this.list = el("ol", { class: "qa-list", "data-testid": "qa-list", "aria-label": t("Questions") });
    panel.append(this.tools, this.closedNote, this.askForm, el("div", { class: "row qa-sort-row" }, [this.sort]), this.empty, this.list);

    // the published question, on the stage for everyone
    this.banner = el("div", { class: "published-question", "data-testid": "published-question", role: "status", hidden: true });
    this.bannerText = el("p", { class: "published-text", "data-testid": "published-question-text", "data-no-translate": true });
    this.bannerName = el("p", { class: "published-name hint" });
    this.clear = el("button", { type: "button", class: "btn btn-small", "data-testid": "published-question-clear", text: t("Clear"), hidden: true });
    this.clear.addEventListener("click", () => this.act("question-publish", { question_id: null }));
    this.banner.append(el("p", { class: "eyebrow", text: t("Now answering") }), this.bannerText, this.bannerName, this.clear);
    document.getElementById("stage")?.prepend(this.banner);
    // a language switch in the room: the list, the tab and the banner again
    onLanguage(() => this.setPublished(this.published));
  }

  /**
   * @param {any} state qa-state
   * @param {any} published
   */
  load(state, published) {
    this.questions.clear();
    this.setState(state);
    this.setPublished(published);
  }

  /** @param {any} state */
  setState(state) {
    this.open = state.open;
    this.questions.clear();
    for (const q of state.questions) this.questions.set(q.question_id, q);
    this.render();
  }

  /** @param {any} q */
  upsert(q) {
    this.questions.set(q.question_id, q);
    if (this.published?.question_id === q.question_id) this.setPublished(q);
    this.render();
  }

  /** @param {string} id */
  hide(id) {
    this.questions.delete(id);
    this.render();
  }

  /** @param {any} q */
  setPublished(q) {
    this.published = q;
    this.banner.hidden = !q;
    if (q) {
      this.bannerText.replaceChildren(linkify(q.text));
      this.bannerName.textContent = q.name ? t("Asked by {name}", { name: q.name }) : t("Asked anonymously");
    }
    this.clear.hidden = !this.ctx.staff();
    this.render();
  }

  /** @param {string} messageId */
  async markMessage(messageId) {
    try {
      await this.ctx.request("question-mark", { message_id: messageId });
      this.ctx.toast(t("Added to the questions."), { kind: "success", key: "qa", timeout: 3000 });
    } catch (failure) {
      this.ctx.toast(errorMessage(failure), { kind: "warn", key: "qa" });
    }
  }

  async ask() {
    const text = this.input.value.trim();
    if (!text) return;
    try {
      const reply = await this.ctx.request("question-ask", { text, anonymous: this.anonymous.checked });
      this.input.value = "";
      this.upsert(reply.question);
    } catch (failure) {
      this.ctx.toast(errorMessage(failure), { kind: "warn", key: "qa" });
    }
  }

  render() {
    const staff = this.ctx.staff();
    this.tools.hidden = !staff;
    this.openBox.checked = this.open;
    this.askForm.hidden = staff || !this.open;
    this.closedNote.hidden = this.open;
    const items = [...this.questions.values()].filter((q) => staff || q.state !== "dismissed" || q.mine);
    items.sort(
      this.order === "time"
        ? (a, b) => a.asked_at - b.asked_at
        : (a, b) => b.votes - a.votes || a.asked_at - b.asked_at,
    );
    this.empty.hidden = items.length > 0 || (!this.open && !staff);
    this.list.hidden = !this.open && !staff;
    this.list.replaceChildren(...items.map((q) => this.item(q, staff)));
    const tab = document.getElementById("tab-qa");
    if (tab && items.length) setText(tab, "Q&A ({count})", { count: formatNumber(items.length) });
    else if (tab) setText(tab, "Q&A");
  }

  /**
   * @param {any} q
   * @param {boolean} staff
   */
  item(q, staff) {
    const vote = el("button", {
      type: "button",
      class: "btn btn-small qa-upvote",
      "data-testid": "qa-upvote",
      "aria-pressed": String(q.voted),
      "aria-label": q.voted ? t("Take back your vote") : t("Vote for this question"),
      disabled: staff || !this.open,
    }, [el("span", { "aria-hidden": "true", text: "▲ " }), el("span", { "data-testid": "qa-votes", text: formatNumber(q.votes) })]);
    vote.addEventListener("click", () => this.act("question-vote", { question_id: q.question_id, up: !q.voted }));
    const tools = el("div", { class: "qa-tools" });
    if (staff) {
      const isPublished = this.published?.question_id === q.question_id;
      const publish = el("button", {
        type: "button",
        class: `btn btn-small${isPublished ? " btn-primary" : ""}`,
        "data-testid": "qa-publish",
        "aria-pressed": String(isPublished),
        text: isPublished ? t("Published") : t("Publish"),
        disabled: q.state === "dismissed",
      });
      publish.addEventListener("click", () =>
        this.act("question-publish", { question_id: isPublished ? null : q.question_id }),
      );
      const answered = el("button", { type: "button", class: "btn btn-small", "data-testid": "qa-answered", text: q.state === "answered" ? t("Reopen") : t("Answered") });
      answered.addEventListener("click", () =>
        this.act("question-state", { question_id: q.question_id, state: q.state === "answered" ? "new" : "answered" }),
      );
      const dismiss = el("button", { type: "button", class: "btn btn-small btn-ghost", "data-testid": "qa-dismiss", text: q.state === "dismissed" ? t("Restore") : t("Dismiss") });
      dismiss.addEventListener("click", () =>
        this.act("question-state", { question_id: q.question_id, state: q.state === "dismissed" ? "new" : "dismissed" }),
      );
      tools.append(publish, answered, dismiss);
    }
    let who = t("Anonymous");
    if (q.name) who = q.anonymous ? t("{name} (anonymous to others)", { name: q.name }) : q.name;
    return el("li", { class: `qa-item state-${q.state}`, "data-testid": "qa-item", "data-question-id": q.question_id, "data-state": q.state }, [
      vote,
      el("div", { class: "qa-body" }, [
        el("p", { class: "qa-text", "data-testid": "qa-text", "data-no-translate": true }, [linkify(q.text)]),
        el("p", { class: "qa-meta hint" }, [
          el("span", { "data-testid": "qa-name", "data-no-translate": true, text: who }),
          ` · ${clock(q.asked_at)}`,
          q.state !== "new" ? el("span", { class: "qa-state", "data-testid": "qa-state" }, [" · ", stateLabel(q.state)]) : null,
        ]),
        tools,
      ]),
    ]);
  }

  /**
   * @param {string} type
   * @param {Record<string, unknown>} fields
   */
  async act(type, fields) {
    try {
      await this.ctx.request(type, fields);
    } catch (failure) {
      this.ctx.toast(errorMessage(failure), { kind: "warn", key: "qa" });
    }
  }
}
