// Polls and tests: the presenters' builder and controls with live results, the
// attendees' answer form, shown results and their own test score.

import { formatNumber, nt, onLanguage, setText, t } from "./i18n.js";
import { el, errorMessage } from "./ui.js";

// The server's bounds (rooms/polls.py); the server checks them again.
export const MAX_QUESTIONS_PER_POLL = 20;
export const MAX_OPTIONS_PER_QUESTION = 10;
export const MAX_IMAGE_BYTES = 2 * 1024 * 1024;
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/** What a poll's state is called. @param {string} state */
function stateLabel(state) {
  if (state === "draft") return t("Ready");
  if (state === "open") return t("Running");
  if (state === "closed") return t("Closed");
  return state;
}

/** "Poll" or "Test". @param {any} poll */
function kindLabel(poll) {
  return poll.kind === "test" ? t("Test") : t("Poll");
}

export class PollPanel {
  /** @param {any} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    /** @type {Map<string, any>} */
    this.polls = new Map();
    /** @type {Map<string, any>} */
    this.results = new Map();
    /** @type {Map<string, any[]>} */
    this.answers = new Map();
    /** @type {Map<string, any>} */
    this.scores = new Map();
    const panel = /** @type {HTMLElement} */ (document.getElementById("panel-polls"));
    this.builder = new PollBuilder({
      toast: ctx.toast,
      eventId: ctx.eventId,
      presenterKey: ctx.presenterKey,
      save: async (/** @type {any} */ spec) => {
        const reply = await ctx.request("poll-create", spec);
        this.upsert(reply.poll, "created");
      },
    }).element;
    this.newButton = el("button", { type: "button", class: "btn btn-small", "data-testid": "poll-new", text: t("New poll or test") });
    this.newButton.addEventListener("click", () => {
      this.builder.hidden = !this.builder.hidden;
      if (!this.builder.hidden) /** @type {HTMLElement | null} */ (this.builder.querySelector("input"))?.focus();
    });
    this.staffBox = el("div", { class: "poll-staff", hidden: true }, [
      el("div", { class: "panel-tools" }, [this.newButton]),
      this.builder,
    ]);
    this.active = el("div", { class: "poll-active-box" });
    this.empty = el("p", { class: "hint", "data-testid": "poll-empty", text: t("No polls yet.") });
    this.list = el("ol", { class: "poll-list", "data-testid": "poll-list", "aria-label": t("Polls") });
    panel.append(this.staffBox, this.active, this.empty, this.list);
    // a language switch in the room: the list and the results with their counts again (an
    // open answer form keeps what is chosen; its labels are whole messages, translated in place)
    onLanguage(() => {
      this.render();
      for (const box of this.active.querySelectorAll("[data-results-for]")) {
        const poll = this.polls.get(/** @type {HTMLElement} */ (box).dataset.resultsFor ?? "");
        if (poll) box.replaceWith(this.resultsView(poll));
      }
    });
  }

  // ------------------------------------------------------------------ state

  /**
   * @param {any[]} polls
   * @param {any[]} results
   * @param {Record<string, any[]>} myAnswers
   * @param {any[]} scores
   */
  load(polls, results, myAnswers, scores) {
    this.polls.clear();
    this.results.clear();
    this.answers.clear();
    this.scores.clear();
    for (const p of polls) this.polls.set(p.poll_id, p);
    for (const r of results) this.results.set(r.poll_id, r);
    for (const [id, list] of Object.entries(myAnswers)) this.answers.set(id, list);
    for (const s of scores) this.scores.set(s.poll_id, s);
    this.render();
  }

  /**
   * @param {any} poll
   * @param {string} cause
   */
  upsert(poll, cause) {
    this.polls.set(poll.poll_id, poll);
    if (!poll.results_shown && !this.ctx.staff() && this.results.delete(poll.poll_id)) {
      for (const box of document.querySelectorAll(`[data-results-for="${CSS.escape(poll.poll_id)}"]`)) box.remove();
    }
    if (cause === "launched" && !this.ctx.staff()) {
      this.ctx.showTab("tab-polls");
      const text = poll.kind === "test" ? t("A test started: {title}", { title: poll.title }) : t("A poll started: {title}", { title: poll.title });
      this.ctx.toast(text, { key: "poll" });
    }
    this.render();
  }

  /** @param {string} pollId */
  remove(pollId) {
    this.polls.delete(pollId);
    this.render();
  }

  /** @param {any} results */
  setResults(results) {
    this.results.set(results.poll_id, results);
    this.renderResultsOf(results.poll_id);
  }

  /** @param {any} score */
  setScore(score) {
    this.scores.set(score.poll_id, score);
    this.answers.set(score.poll_id, score.answers);
    this.render();
  }

  // ------------------------------------------------------------------ rendering

  render() {
    const staff = this.ctx.staff();
    this.staffBox.hidden = !staff;
    const polls = [...this.polls.values()];
    const open = polls.find((p) => p.state === "open");
    const current = /** @type {HTMLElement | null} */ (this.active.querySelector("[data-testid=poll-active]"));
    if (!open || staff) {
      this.active.replaceChildren();
    } else if (!current || current.dataset.pollId !== open.poll_id) {
      this.active.replaceChildren(this.answerForm(open)); // keeps what is being chosen otherwise
    }
    const others = staff ? polls : polls.filter((p) => p !== open);
    this.empty.hidden = others.length > 0 || Boolean(open);
    this.list.replaceChildren(...others.reverse().map((p) => this.item(p, staff)));
    const tab = document.getElementById("tab-polls");
    if (tab && open) setText(tab, "Polls •");
    else if (tab) setText(tab, "Polls");
  }

  /** @param {string} pollId */
  renderResultsOf(pollId) {
    for (const box of document.querySelectorAll(`[data-results-for="${CSS.escape(pollId)}"]`)) {
      const poll = this.polls.get(pollId);
      if (poll) box.replaceWith(this.resultsView(poll));
    }
    if (document.querySelector(`[data-results-for="${CSS.escape(pollId)}"]`)) return;
    const poll = this.polls.get(pollId);
    const form = this.active.querySelector(`[data-testid=poll-active][data-poll-id="${CSS.escape(pollId)}"]`);
    if (poll && form?.parentElement) form.parentElement.append(this.resultsView(poll));
    else this.render();
  }

  /**
   * @param {any} poll
   * @param {boolean} staff
   */
  item(poll, staff) {
    const head = el("div", { class: "poll-head" }, [
      el("h3", { class: "poll-title", "data-testid": "poll-item-title", "data-no-translate": true, text: poll.title }),
      el("span", { class: `poll-state state-${poll.state}`, "data-testid": "poll-state" }, [kindLabel(poll), " · ", stateLabel(poll.state)]),
    ]);
    const tools = el("div", { class: "row poll-tools" });
    if (staff) {
      if (poll.state === "draft") {
        tools.append(this.button(t("Launch"), "poll-launch", "btn-primary", () => this.act("poll-launch", { poll_id: poll.poll_id })));
        tools.append(this.button(t("Delete"), "poll-delete", "btn-ghost", () => this.act("poll-delete", { poll_id: poll.poll_id })));
      }
      if (poll.state === "open") {
        tools.append(this.button(t("Close"), "poll-close", "btn-live", () => this.act("poll-close", { poll_id: poll.poll_id })));
      }
      if (poll.state !== "draft") {
        const label = poll.results_shown ? t("Hide results from attendees") : t("Show results to attendees");
        const show = this.button(label, "poll-show-results", "", () =>
          this.act("poll-show-results", { poll_id: poll.poll_id, shown: !poll.results_shown }),
        );
        show.setAttribute("aria-pressed", String(poll.results_shown));
        tools.append(show);
      }
    }
    const score = this.scores.get(poll.poll_id);
    return el("li", { class: "poll-item", "data-testid": "poll-item", "data-poll-id": poll.poll_id, "data-state": poll.state }, [
      head,
      tools,
      score ? this.scoreView(score) : null,
      this.results.has(poll.poll_id) ? this.resultsView(poll) : null,
    ]);
  }

  /**
   * @param {string} text
   * @param {string} testid
   * @param {string} kind
   * @param {() => void} run
   */
  button(text, testid, kind, run) {
    const b = el("button", { type: "button", class: `btn btn-small ${kind}`, "data-testid": testid, text });
    b.addEventListener("click", run);
    return b;
  }

  /** @param {any} score */
  scoreView(score) {
    return el("p", { class: "poll-score", "data-testid": "poll-score", text: t("Your score: {correct} of {total}", { correct: formatNumber(score.correct), total: formatNumber(score.total) }) });
  }

  /** @param {any} poll */
  resultsView(poll) {
    const results = this.results.get(poll.poll_id);
    const box = el("div", { class: "poll-results", "data-testid": "poll-results", "data-results-for": poll.poll_id });
    if (!results) return box;
    box.append(el("p", { class: "hint", "data-testid": "poll-respondents", text: nt("{n} answered", "{n} answered", results.respondents) }));
    const byQuestion = new Map(results.questions.map((/** @type {any} */ r) => [r.question_id, r]));
    for (const q of poll.questions) {
      const r = /** @type {any} */ (byQuestion.get(q.question_id));
      if (!r) continue;
      const block = el("div", { class: "poll-result-question", "data-question-id": q.question_id }, [
        el("p", { class: "poll-result-text", "data-no-translate": true, text: q.text }),
      ]);
      for (const o of q.options) {
        const count = r.counts[o.option_id] ?? 0;
        const share = r.responses ? Math.round((count / r.responses) * 100) : 0;
        const bar = el("span", { class: "poll-bar-fill" });
        bar.style.width = `${share}%`;
        block.append(
          el("div", { class: `poll-result-row${o.correct ? " correct" : ""}`, "data-option-id": o.option_id }, [
            el("span", { class: "poll-result-label", "data-no-translate": true, text: o.text + (o.correct ? " ✓" : "") }),
            el("span", { class: "poll-bar", "aria-hidden": "true" }, [bar]),
            el("span", { class: "poll-result-count", "data-testid": "poll-result-count", "data-option-id": o.option_id, text: formatNumber(count) }),
          ]),
        );
      }
      if (q.kind === "text") {
        block.append(el("p", { class: "hint", text: nt("{n} text answer", "{n} text answers", r.responses) }));
        if (r.texts) {
          block.append(el("ul", { class: "poll-texts", "data-testid": "poll-text-answers", "data-no-translate": true }, r.texts.map((/** @type {string} */ answer) => el("li", { text: answer }))));
        }
      }
      box.append(block);
    }
    return box;
  }

  /** @param {any} poll */
  answerForm(poll) {
    const mine = new Map((this.answers.get(poll.poll_id) ?? []).map((a) => [a.question_id, a]));
    const form = el("form", { class: "poll-active card", "data-testid": "poll-active", "data-poll-id": poll.poll_id }, [
      el("p", { class: "eyebrow", text: kindLabel(poll) }),
      el("h3", { class: "poll-title", "data-testid": "poll-active-title", "data-no-translate": true, text: poll.title }),
    ]);
    for (const q of poll.questions) {
      const prior = mine.get(q.question_id);
      const set = el("fieldset", { class: "poll-question", "data-question-id": q.question_id }, [
        el("legend", {}, [
          el("span", { "data-no-translate": true, text: q.text }),
          ...(q.kind === "multiple" ? [" ", t("(choose any)")] : []),
        ]),
      ]);
      if (q.kind === "text") {
        set.append(el("input", { type: "text", class: "poll-text-answer", "data-testid": "poll-text-answer", name: q.question_id, maxlength: 500, value: prior?.text ?? "", "aria-label": q.text }));
      }
      for (const o of q.options) {
        const input = el("input", {
          type: q.kind === "multiple" ? "checkbox" : "radio",
          name: q.question_id,
          value: o.option_id,
          "data-testid": "poll-choice",
          "data-option-id": o.option_id,
          checked: prior ? prior.option_ids.includes(o.option_id) : false,
        });
        set.append(
          el("label", { class: "poll-option" }, [
            input,
            o.image_url ? el("img", { src: o.image_url, alt: "", class: "poll-option-image", loading: "lazy" }) : null,
            el("span", { "data-no-translate": true, text: o.text }),
          ]),
        );
      }
      form.append(set);
    }
    const saved = el("p", { class: "hint", "data-testid": "poll-answer-saved", hidden: !mine.size, text: t("Your answer is saved. You can change it until the poll closes.") });
    form.append(
      el("div", { class: "row" }, [el("button", { type: "submit", class: "btn btn-primary", "data-testid": "poll-submit", text: mine.size ? t("Change answer") : t("Send answer") })]),
      saved,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const answers = [];
      for (const q of poll.questions) {
        if (q.kind === "text") {
          const input = /** @type {HTMLInputElement} */ (form.querySelector(`input[name="${q.question_id}"]`));
          if (input.value.trim()) answers.push({ question_id: q.question_id, text: input.value.trim() });
        } else {
          const chosen = [...form.querySelectorAll(`input[name="${q.question_id}"]:checked`)].map((i) => /** @type {HTMLInputElement} */ (i).value);
          if (chosen.length) answers.push({ question_id: q.question_id, option_ids: chosen });
        }
      }
      if (!answers.length) {
        this.ctx.toast(t("Choose an answer first."), { kind: "warn", key: "poll" });
        return;
      }
      try {
        const reply = await this.ctx.request("poll-answer", { poll_id: poll.poll_id, answers });
        const merged = new Map(mine);
        for (const a of reply.answers) merged.set(a.question_id, a);
        this.answers.set(poll.poll_id, [...merged.values()]);
        saved.hidden = false;
        this.ctx.toast(t("Answer sent."), { kind: "success", key: "poll", timeout: 2500 });
      } catch (failure) {
        this.ctx.toast(errorMessage(failure), { kind: "warn", key: "poll" });
      }
    });
    const wrap = el("div", {}, [form]);
    if (this.results.has(poll.poll_id)) wrap.append(this.resultsView(poll));
    return wrap;
  }

  /**
   * @param {string} type
   * @param {Record<string, unknown>} fields
   */
  async act(type, fields) {
    try {
      await this.ctx.request(type, fields);
    } catch (failure) {
      this.ctx.toast(errorMessage(failure), { kind: "warn", key: "poll" });
    }
  }
}


/**
 * The form that makes a poll or test (the room's Polls tab, the dashboard's polls page).
 * `ctx`: `{toast(text, options), eventId, presenterKey, save: async (spec) => void}`;
 * `save` rejects with an Error whose message is shown.
 */
export class PollBuilder {
  /** @param {any} ctx */
  constructor(ctx) {
    this.ctx = ctx;
    /** the prepared poll being edited (its id), or null for a new one */
    this.editingId = /** @type {string | null} */ (null);
    this.element = this.makeForm();
  }

  /**
   * Load a prepared poll (PollInfo as the dashboard lists it) into the form to change it.
   * @param {any} poll
   */
  edit(poll) {
    this.editingId = poll.poll_id;
    this.titleInput.value = poll.title;
    this.kindSelect.value = poll.kind;
    this.questionsBox.replaceChildren(...poll.questions.map((/** @type {any} */ q) => this.questionEditor(q)));
    this.syncKind();
    this.saveButton.textContent = t("Save changes");
    this.cancelButton.hidden = false;
    this.element.hidden = false;
    this.titleInput.focus();
  }

  /** Back to an empty form for a new poll. */
  reset() {
    this.editingId = null;
    /** @type {HTMLFormElement} */ (this.element).reset();
    this.questionsBox.replaceChildren(this.questionEditor());
    this.syncKind();
    this.saveButton.textContent = t("Save");
    this.cancelButton.hidden = true;
  }

  makeForm() {
    const title = el("input", { type: "text", "data-testid": "poll-title", maxlength: 200, required: true, "aria-label": t("Title") });
    const kind = /** @type {HTMLSelectElement} */ (
      el("select", { "data-testid": "poll-kind", "aria-label": t("Kind") }, [
        el("option", { value: "poll", text: t("Poll (no right answers)") }),
        el("option", { value: "test", text: t("Test (mark the right answers)") }),
      ])
    );
    const questions = el("div", { class: "poll-builder-questions" });
    const addQuestion = el("button", { type: "button", class: "btn btn-small", "data-testid": "poll-add-question", text: t("Add question") });
    const save = el("button", { type: "submit", class: "btn btn-primary btn-small", "data-testid": "poll-save", text: t("Save") });
    const cancel = el("button", { type: "button", class: "btn btn-ghost btn-small", "data-testid": "poll-edit-cancel", text: t("Cancel"), hidden: true });
    const form = el("form", { class: "poll-builder card", "data-testid": "poll-builder", hidden: true }, [
      el("div", { class: "field" }, [el("label", { text: t("Title") }), title]),
      el("div", { class: "field" }, [kind]),
      questions,
      el("div", { class: "row" }, [addQuestion, save, cancel]),
    ]);
    const sync = () => form.classList.toggle("is-test", kind.value === "test");
    this.titleInput = /** @type {HTMLInputElement} */ (title);
    this.kindSelect = kind;
    this.questionsBox = questions;
    this.syncKind = sync;
    this.saveButton = save;
    this.cancelButton = cancel;
    cancel.addEventListener("click", () => this.reset());
    kind.addEventListener("change", sync);
    this.bindAdd(addQuestion, questions, MAX_QUESTIONS_PER_POLL, (n) => nt("At most {n} question per poll.", "At most {n} questions per poll.", n), () => this.questionEditor());
    questions.append(this.questionEditor());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const spec = {
        title: /** @type {HTMLInputElement} */ (title).value.trim(),
        kind: kind.value,
        questions: [...questions.children].map((q) => this.readQuestion(/** @type {HTMLElement} */ (q), kind.value === "test")),
      };
      try {
        await this.ctx.save(spec, this.editingId);
        this.reset();
        form.hidden = true;
      } catch (failure) {
        this.ctx.toast(errorMessage(failure), { kind: "warn", key: "poll" });
      }
    });
    return form;
  }

  /**
   * An "add" button: appends a new editor to the list, at most `max` of them (then it
   * says so).
   * @param {HTMLElement} button
   * @param {HTMLElement} list
   * @param {number} max
   * @param {(max: number) => string} tooMany  what the toast says at `max`: "At most 20 questions per poll."
   * @param {() => HTMLElement} make
   */
  bindAdd(button, list, max, tooMany, make) {
    button.addEventListener("click", () => {
      if (list.childElementCount >= max) {
        this.ctx.toast(tooMany(max), { kind: "warn", key: "poll" });
        return;
      }
      list.append(make());
    });
  }

  /** @param {any} [q]  a prepared question to edit */
  questionEditor(q) {
    const text = el("input", { type: "text", "data-testid": "poll-question-text", maxlength: 500, placeholder: t("Question"), "aria-label": t("Question"), value: q?.text ?? "" });
    const kind = /** @type {HTMLSelectElement} */ (
      el("select", { "data-testid": "poll-question-kind", "aria-label": t("Answer type") }, [
        el("option", { value: "single", text: t("One choice") }),
        el("option", { value: "multiple", text: t("Several choices") }),
        el("option", { value: "text", text: t("Short text") }),
      ])
    );
    const options = el("div", { class: "poll-builder-options" });
    const addOption = el("button", { type: "button", class: "btn btn-ghost btn-tiny", "data-testid": "poll-add-option", text: t("Add option") });
    const accepted = el("input", { type: "text", class: "poll-accepted", "data-testid": "poll-accepted", placeholder: t("Right answers, separated by |"), "aria-label": t("Right answers"), value: (q?.accepted ?? []).join(" | ") });
    if (q) kind.value = q.kind;
    const remove = el("button", { type: "button", class: "btn btn-ghost btn-tiny", text: t("Remove question") });
    const box = el("fieldset", { class: "poll-question-editor", "data-testid": "poll-question-editor" }, [
      el("div", { class: "row" }, [text, kind]),
      options,
      el("div", { class: "row" }, [addOption, remove]),
      accepted,
    ]);
    const syncKind = () => {
      const isText = kind.value === "text";
      options.hidden = isText;
      addOption.hidden = isText;
      box.classList.toggle("is-text", isText);
    };
    kind.addEventListener("change", syncKind);
    this.bindAdd(addOption, options, MAX_OPTIONS_PER_QUESTION, (n) => nt("At most {n} option per question.", "At most {n} options per question.", n), () => this.optionEditor());
    remove.addEventListener("click", () => {
      if (box.parentElement && box.parentElement.childElementCount > 1) box.remove();
    });
    if (q && q.kind !== "text" && q.options?.length) options.append(...q.options.map((/** @type {any} */ o) => this.optionEditor(o)));
    else options.append(this.optionEditor(), this.optionEditor());
    syncKind();
    return box;
  }

  /** @param {any} [o]  a prepared option to edit */
  optionEditor(o) {
    const text = el("input", { type: "text", "data-testid": "poll-option-text", maxlength: 200, placeholder: t("Option"), "aria-label": t("Option"), value: o?.text ?? "" });
    const correct = /** @type {HTMLInputElement} */ (el("input", { type: "checkbox", "data-testid": "poll-option-correct", "aria-label": t("Right answer") }));
    correct.checked = Boolean(o?.correct);
    const file = /** @type {HTMLInputElement} */ (el("input", { type: "file", accept: IMAGE_TYPES.join(","), "data-testid": "poll-option-image", "aria-label": t("Image for this option") }));
    const thumb = el("img", { class: "poll-option-thumb", alt: "", hidden: true });
    const row = el("div", { class: "poll-option-editor", "data-testid": "poll-option-editor" }, [
      text,
      el("label", { class: "check poll-correct" }, [correct, " ", t("right")]),
      el("label", { class: "btn btn-ghost btn-tiny poll-image-button" }, [t("Image"), file]),
      thumb,
    ]);
    if (o?.image_id) {
      row.dataset.imageId = o.image_id;
      thumb.setAttribute("src", `/images/${encodeURIComponent(o.image_id)}`);
      thumb.hidden = false;
    }
    file.addEventListener("change", async () => {
      const chosen = file.files?.[0];
      if (!chosen) return;
      if (!IMAGE_TYPES.includes(chosen.type) || chosen.size > MAX_IMAGE_BYTES) {
        this.ctx.toast(t("Images must be PNG, JPEG, GIF or WebP and at most 2 MiB."), { kind: "warn", key: "poll" });
        file.value = "";
        return;
      }
      try {
        const uploaded = await uploadImage(this.ctx.eventId, this.ctx.presenterKey, chosen);
        row.dataset.imageId = uploaded.image_id;
        thumb.setAttribute("src", uploaded.url);
        thumb.hidden = false;
      } catch (failure) {
        this.ctx.toast(errorMessage(failure), { kind: "warn", key: "poll" });
      }
    });
    return row;
  }

  /**
   * @param {HTMLElement} box
   * @param {boolean} test
   */
  readQuestion(box, test) {
    const text = /** @type {HTMLInputElement} */ (box.querySelector("[data-testid=poll-question-text]")).value.trim();
    const kind = /** @type {HTMLSelectElement} */ (box.querySelector("[data-testid=poll-question-kind]")).value;
    if (kind === "text") {
      const accepted = /** @type {HTMLInputElement} */ (box.querySelector("[data-testid=poll-accepted]")).value;
      return { text, kind, accepted: test ? accepted.split("|").map((a) => a.trim()).filter(Boolean) : [] };
    }
    const options = [...box.querySelectorAll("[data-testid=poll-option-editor]")]
      .map((row) => {
        const r = /** @type {HTMLElement} */ (row);
        return {
          text: /** @type {HTMLInputElement} */ (r.querySelector("[data-testid=poll-option-text]")).value.trim(),
          correct: test && /** @type {HTMLInputElement} */ (r.querySelector("[data-testid=poll-option-correct]")).checked,
          image_id: r.dataset.imageId || null,
        };
      })
      .filter((o) => o.text);
    return { text, kind, options };
  }

}

/**
 * Upload an option's image; the server checks its type and size again.
 * @param {string} eventId
 * @param {string | null} key
 * @param {File} file
 * @returns {Promise<{image_id: string, url: string}>}
 */
export async function uploadImage(eventId, key, file) {
  const response = await fetch(`/api/v1/events/${encodeURIComponent(eventId.replace(/\D/g, ""))}/images`, {
    method: "POST",
    body: file,
    headers: { "Content-Type": file.type, "X-Presenter-Key": key ?? "" },
  });
  const reply = await response.json().catch(() => ({}));
  // The API's refusals: {"error": {"code", "message"}} (docs/api.md).
  if (!response.ok) throw new Error(reply.error?.message ?? t("upload failed ({status})", { status: response.status }));
  return reply;
}
