"""The product in Russian and Czech, in real Chromium whose language is ru-RU.

An attendee whose browser speaks Russian goes through the home page, the lobby, the room
(chat, Q&A, a poll, the call-to-action, a raised hand) and the thank-you page: every page
is Russian and shows no English text from the catalog. In the room she switches to Czech:
the room changes language in place, while the video keeps playing on the same connection.
Screenshots of the room in each language at 1280x800 and 390x844 go to
artifacts/screenshots/ (room-<lang>-<size>.png), and no translated label is cut off or
overflows its box.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    OpenPage,
    go_live,
    inbound_stats,
    join_presenter,
    wait_for_media,
    wait_until,
)
from tests.helpers import RunningServer
from webinar import i18n

pytestmark = pytest.mark.browser

WORD = re.compile(r"[A-Za-z]{3,}")


def _catalog(language: str) -> dict[str, Any]:
    messages: dict[str, Any] = i18n.compiled(language).client["messages"]
    return messages


def _english_messages(language: str) -> list[str]:
    """The catalog's English messages that read as words and have a translation of their own
    (no placeholders: a filled-in message cannot be searched for)."""
    found = []
    for message, translated in _catalog(language).items():
        if "{" in message or "%(" in message or not isinstance(translated, str):
            continue
        if translated == message or not WORD.search(message):
            continue
        found.append(message)
    return found


async def visible_text(page: Page) -> str:
    text: str = await page.evaluate(
        """() => {
          const parts = [document.body.innerText, document.title];
          for (const el of document.querySelectorAll('[title],[aria-label],[placeholder]')) {
            if (el.closest('[hidden]') || !el.getClientRects().length) continue;
            for (const a of ['title', 'aria-label', 'placeholder']) {
              const v = el.getAttribute(a); if (v) parts.push(v);
            }
          }
          return parts.join('\\n');
        }"""
    )
    return text


async def english_left(page: Page, language: str) -> list[str]:
    """English catalog messages the page still shows (whole words), in ``language``'s page,
    each with the text around it."""
    text = await visible_text(page)
    found = []
    for message in _english_messages(language):
        match = re.search(rf"(?<![A-Za-z]){re.escape(message)}(?![A-Za-z])", text)
        if match:
            around = text[max(0, match.start() - 40) : match.end() + 40].replace("\n", " | ")
            found.append(f"{message!r} in …{around}…")
    return found


async def expect_speaks(page: Page, language: str, where: str) -> None:
    await expect(page.locator("html")).to_have_attribute("lang", language)
    left = await english_left(page, language)
    assert not left, f"{where}: English text left on a {language} page: {left}"


OVERFLOW = """(texts) => {
  const known = new Set(texts);
  const bad = [];
  const vw = document.documentElement.clientWidth;
  for (const el of document.querySelectorAll('body *')) {
    if (['SCRIPT', 'STYLE', 'OPTION', 'svg'].includes(el.tagName)) continue;
    const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.data).join('').trim();
    if (!own || !known.has(own)) continue;
    const rects = el.getClientRects();
    if (!rects.length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;  // nothing, or for screen readers only
    const [left, right] = [Math.round(box.left), Math.round(box.right)];
    if (box.right > vw + 1 || box.left < -1) bad.push(`${own} (off screen: ${left}..${right})`);
    else if (style.display !== 'inline' && el.scrollWidth > el.clientWidth + 1)
      bad.push(`${own} (${el.scrollWidth}px in ${el.clientWidth}px)`);
  }
  return bad;
}"""


async def expect_fits(page: Page, language: str, name: str) -> None:
    """No translated label is cut off or sticks out of its box or the screen."""
    texts: list[str] = []
    for entry in _catalog(language).values():
        texts.extend(entry.values() if isinstance(entry, dict) else [entry])
    bad = await page.evaluate(OVERFLOW, texts)
    assert not bad, f"{name}: text cut off or overflowing: {bad}"
    wider = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert wider <= 0, f"{name}: the page is {wider}px wider than the screen"


async def shoot_room(page: Page, language: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)
        await page.wait_for_timeout(300)  # layout settles (grid, panel)
        await page.screenshot(path=str(SCREENSHOTS / f"room-{language}-{size}.png"))
        await expect_fits(page, language, f"room-{language}-{size}")
    await page.set_viewport_size(DESKTOP)


async def switch_language(page: Page, language: str) -> None:
    await page.get_by_test_id("language-switcher").first.select_option(language)
    await expect(page.locator("html")).to_have_attribute("lang", language)


async def open_panel_tab(page: Page, tab: str) -> None:
    if await page.get_by_test_id(tab).is_hidden():
        await page.get_by_test_id("people-toggle").click()
    await page.get_by_test_id(tab).click()


async def test_a_russian_attendee_and_a_switch_to_czech(
    server: RunningServer, open_page: OpenPage
) -> None:
    starts = datetime.now(UTC) + timedelta(minutes=3)
    event = await server.store.create_event(
        "Запуск продукта",
        starts,
        agenda="1. Приветствие\n2. Демонстрация",
        lobby_message="Начинаем вовремя.",
    )
    anna = await open_page("anna", locale="ru-RU")
    host = await open_page("host")  # the host's browser speaks English: each their own

    # The home page, in Russian because the browser asks for it.
    await anna.goto(server.base_url + "/")
    await expect_speaks(anna, "ru", "home page")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await anna.screenshot(path=str(SCREENSHOTS / "home-ru-desktop.png"))
    await anna.get_by_test_id("event-id-input").fill(event.display_id)
    await anna.get_by_test_id("name-input").fill("Анна")
    await anna.get_by_test_id("join-button").click()

    # The lobby.
    await expect(anna.get_by_test_id("lobby")).to_be_visible()
    await expect(anna.get_by_test_id("lobby-countdown")).to_have_text(re.compile(r"^[23]:\d\d$"))
    await expect_speaks(anna, "ru", "lobby")
    await anna.screenshot(path=str(SCREENSHOTS / "lobby-ru-desktop.png"))

    # The host starts; Anna is moved into the room and sees and hears the host.
    await join_presenter(host, server, event, "Хана", key=event.host_key)
    await expect(host.locator("html")).to_have_attribute("lang", "en")
    await go_live(host)
    await host.get_by_test_id("start-event").click()
    await expect(anna.get_by_test_id("lobby")).to_be_hidden()
    await expect(anna.get_by_test_id("video-tile")).to_have_count(1)
    await wait_for_media(anna)
    await expect_speaks(anna, "ru", "room")

    # Chat, a question, a raised hand.
    await open_panel_tab(anna, "tab-chat")
    await anna.get_by_test_id("chat-input").fill("Всем привет!")
    await anna.get_by_test_id("chat-send").click()
    await expect(anna.get_by_test_id("chat-message")).to_have_count(1)
    await open_panel_tab(anna, "tab-qa")
    await anna.get_by_test_id("qa-input").fill("Когда выйдет запись?")
    await anna.get_by_test_id("qa-ask").click()
    await expect(anna.get_by_test_id("qa-item")).to_have_count(1)
    await anna.get_by_test_id("raise-hand").click()
    await expect(anna.get_by_test_id("raise-hand")).to_have_attribute("aria-pressed", "true")
    await expect_speaks(anna, "ru", "room with chat, Q&A and a raised hand")

    # A poll and a call-to-action from the host.
    await open_panel_tab(host, "tab-polls")
    await host.get_by_test_id("poll-new").click()
    await host.get_by_test_id("poll-title").fill("Опрос")
    editor = host.get_by_test_id("poll-question-editor").first
    await editor.get_by_test_id("poll-question-text").fill("Удобно ли время?")
    options = editor.get_by_test_id("poll-option-text")
    await options.nth(0).fill("Да")
    await options.nth(1).fill("Нет")
    await host.get_by_test_id("poll-save").click()
    await host.get_by_test_id("poll-item").first.get_by_test_id("poll-launch").click()
    active = anna.get_by_test_id("poll-active")
    await expect(active.get_by_test_id("poll-active-title")).to_have_text("Опрос")
    await expect_speaks(anna, "ru", "room with a poll open")
    await active.get_by_test_id("poll-choice").nth(0).check()
    await active.get_by_test_id("poll-submit").click()
    await expect(active.get_by_test_id("poll-answer-saved")).to_be_visible()
    await expect_speaks(anna, "ru", "room after answering the poll")

    await open_panel_tab(host, "tab-cta")
    await host.get_by_test_id("cta-message").fill("Регистрируйтесь на следующий вебинар")
    await host.get_by_test_id("cta-button-text").fill("Регистрация")
    await host.get_by_test_id("cta-url").fill(f"{server.base_url}/")
    await host.get_by_test_id("cta-show").click()
    await expect(anna.get_by_test_id("cta-popup")).to_be_visible()
    await expect_speaks(anna, "ru", "room with the call-to-action")
    await shoot_room(anna, "ru")

    # Switching to Czech changes the room in place: same page, same connection, the video
    # keeps playing.
    await anna.evaluate("() => { window.__samePage = window.__webinar.connection; }")
    before = await inbound_stats(anna)
    await switch_language(anna, "cs")
    await expect_speaks(anna, "cs", "room switched to Czech")
    assert await anna.evaluate("() => window.__samePage === window.__webinar.connection")
    await wait_until(
        lambda: inbound_stats(anna),
        lambda s: s["video"]["framesDecoded"] > before["video"]["framesDecoded"] + 30,
        within=10,
        what="the video to keep playing through the switch",
    )
    await expect(anna.get_by_test_id("raise-hand")).to_have_attribute("aria-pressed", "true")
    # "Выйти" is both "Leave" and "Sign out" in Russian: the room's own message wins
    with i18n.using("cs"):
        leave = i18n.gettext("Leave")
    await expect(anna.get_by_test_id("leave")).to_have_text(leave)
    await shoot_room(anna, "cs")
    await switch_language(anna, "en")
    await shoot_room(anna, "en")
    await switch_language(anna, "ru")
    await expect_speaks(anna, "ru", "room switched back to Russian")

    # The host ends the webinar: the ended view with its rating is Russian, and so is the
    # thank-you page the host goes to once she chose Russian too.
    await host.get_by_test_id("end-for-all").click()
    await host.get_by_test_id("end-for-all-confirm").click()
    await expect(anna.get_by_test_id("rating")).to_be_visible()
    await expect_speaks(anna, "ru", "ended view with the rating")
    await anna.screenshot(path=str(SCREENSHOTS / "thanks-ru-desktop.png"))
    await expect(host).to_have_url(re.compile(r"/thanks"))
    await expect(host.locator("html")).to_have_attribute("lang", "en")


async def test_the_switcher_remembers_the_choice_on_every_page(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Seminář")
    page = await open_page("visitor", locale="ru-RU")
    await page.goto(server.base_url + "/")
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await page.get_by_test_id("language-switcher").first.select_option("cs")
    await expect(page.locator("html")).to_have_attribute("lang", "cs")  # the page came back
    await expect_speaks(page, "cs", "home page after choosing Czech")
    await page.goto(f"{server.base_url}/e/{event.event_id}")
    await expect_speaks(page, "cs", "event page")
    assert await page.evaluate("() => localStorage.getItem('webinar.lang')") == "cs"
