// @ts-check
// The pages an e-mailed account link opens (/login/reset, /login/welcome). The link carries
// its token in the fragment (#token=…), which never reaches a server or proxy log: this moves
// it into the form, takes it out of the address bar, and asks the server whose link it is
// (the e-mail address, a suggested user name) or why it cannot be used (used, expired).

const card = /** @type {HTMLElement | null} */ (document.querySelector("[data-account-link]"));
const field = /** @type {HTMLInputElement | null} */ (document.querySelector("[data-link-token]"));

/** @param {string} selector */
function show(selector) {
  const el = /** @type {HTMLElement | null} */ (document.querySelector(selector));
  if (el) el.hidden = false;
  return el;
}

/** The link cannot be used: say why, and take the form away. @param {string} message */
function refuse(message) {
  const text = document.querySelector("[data-link-error-text]");
  if (text) text.textContent = message;
  show("[data-link-error]");
  const form = /** @type {HTMLElement | null} */ (document.querySelector("[data-link-form]"));
  if (form) form.hidden = true;
}

async function start() {
  if (!card || !field) return;
  const kind = card.dataset.accountLink ?? "";
  const fromFragment = new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
  if (fromFragment) {
    field.value = fromFragment;
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = field.value;
  if (!token) {
    show("[data-link-missing]");
    return;
  }
  let answer;
  try {
    answer = await fetch("/login/link", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ kind, token }),
      credentials: "same-origin",
    });
  } catch {
    return; // offline: the form still works, the server checks the link on submit
  }
  /** @type {{email?: string, username?: string, message?: string}} */
  const body = await answer.json().catch(() => ({}));
  if (answer.status === 410) {
    refuse(body.message ?? "");
    return;
  }
  if (!answer.ok) return;
  const name = document.querySelector("[data-link-name]");
  if (name) name.textContent = (kind === "welcome" ? body.email : body.username) ?? "";
  show("[data-link-who]");
  const username = /** @type {HTMLInputElement | null} */ (document.querySelector("#new-username"));
  if (username && !username.value && body.username) username.value = body.username;
  const focus = /** @type {HTMLInputElement | null} */ (
    document.querySelector(username && !username.value ? "#new-username" : "#new-password")
  );
  focus?.focus();
}

start();
