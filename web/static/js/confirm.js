// @ts-check
/**
 * Forms that ask before they submit: `<form data-confirm="Delete this for good?">`. The pages'
 * Content-Security-Policy runs scripts from this origin only, so no inline `onsubmit`.
 */
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    const question = form instanceof HTMLElement ? (form.dataset.confirm ?? "") : "";
    if (!window.confirm(question)) event.preventDefault();
  });
}
