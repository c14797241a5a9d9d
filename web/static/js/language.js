// @ts-check
/**
 * The language switcher on every page (`templates/language.html`). Pages whose body has
 * `data-live-language` (the room) switch in place, keeping the media running; every other
 * page posts the form and comes back rendered in the new language.
 */
import { remember, setLanguage } from "./i18n.js";

for (const form of document.querySelectorAll(".lang-switch")) {
  const select = /** @type {HTMLSelectElement | null} */ (form.querySelector("select"));
  if (!select) continue;
  select.addEventListener("change", async () => {
    if (document.body.dataset.liveLanguage !== undefined) {
      select.disabled = true;
      try {
        await setLanguage(select.value);
      } catch (error) {
        console.error("language switch failed", error);
      } finally {
        select.disabled = false;
      }
      for (const other of document.querySelectorAll(".lang-switch select")) {
        /** @type {HTMLSelectElement} */ (other).value = select.value;
      }
    } else {
      remember(select.value);
      /** @type {HTMLFormElement} */ (form).submit();
    }
  });
}
