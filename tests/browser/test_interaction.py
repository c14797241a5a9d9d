"""Interaction in real Chromium: chat, polls with live results, Q&A publishing, CTA clicks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.support import OpenPage, join_attendee, join_presenter, wait_until
from tests.browser.test_dashboard import add_user, sign_in
from tests.helpers import RunningServer
from tests.protocol.test_interaction_http import png
from webinar.interaction import store as ist

pytestmark = pytest.mark.browser


async def open_tab(page: Page, tab: str) -> None:
    if await page.get_by_test_id(tab).is_hidden():
        await page.get_by_test_id("people-toggle").click()
    await page.get_by_test_id(tab).click()


async def test_chat_and_a_poll_with_live_results(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Product launch")
    pres = await open_page("presenter")
    ann = await open_page("ann")
    bob = await open_page("bob")
    await join_presenter(pres, server, event, "Piet Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")
    await join_attendee(bob, server, event, "Bob Attendee")

    # An attendee's chat message reaches the presenter, rendered as text. (Bob reads the
    # questions meanwhile: his side panel opens on the chat, so he looks away from it.)
    await open_tab(bob, "tab-qa")
    await open_tab(ann, "tab-chat")
    hostile = "Hi <img src=x onerror=alert(1)> see https://example.com/a. not javascript:alert(1)"
    await ann.get_by_test_id("chat-input").fill(hostile)
    await ann.get_by_test_id("chat-send").click()
    await expect(ann.get_by_test_id("chat-input")).to_have_value("")
    await open_tab(pres, "tab-chat")
    message = pres.get_by_test_id("chat-message").last
    await expect(message.get_by_test_id("chat-message-text")).to_have_text(hostile)
    await expect(message.get_by_test_id("chat-message-name")).to_have_text("Ann Attendee")
    assert await message.locator("img").count() == 0
    links = message.locator("a")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://example.com/a")
    await expect(bob.locator("[data-testid=chat-message]")).to_have_count(1)
    await expect(bob.get_by_test_id("tab-chat")).to_have_attribute("data-unread", "1")
    await open_tab(bob, "tab-chat")
    await expect(bob.get_by_test_id("tab-chat")).to_have_attribute("data-unread", "0")

    # The presenter prepares and launches a poll.
    await open_tab(pres, "tab-polls")
    await pres.get_by_test_id("poll-new").click()
    await pres.get_by_test_id("poll-title").fill("Which launch date?")
    editor = pres.get_by_test_id("poll-question-editor").first
    await editor.get_by_test_id("poll-question-text").fill("Pick one")
    options = editor.get_by_test_id("poll-option-text")
    await options.nth(0).fill("March")
    await options.nth(1).fill("April")
    await pres.get_by_test_id("poll-save").click()
    item = pres.get_by_test_id("poll-item").first
    await expect(item.get_by_test_id("poll-item-title")).to_have_text("Which launch date?")
    await item.get_by_test_id("poll-launch").click()
    await expect(item).to_have_attribute("data-state", "open")

    # Two attendees answer; the poll opens on their side panel by itself.
    for page, choice in ((ann, 0), (bob, 1)):
        active = page.get_by_test_id("poll-active")
        await expect(active.get_by_test_id("poll-active-title")).to_have_text("Which launch date?")
        await active.get_by_test_id("poll-choice").nth(choice).check()
        await active.get_by_test_id("poll-submit").click()
        await expect(active.get_by_test_id("poll-answer-saved")).to_be_visible()
    # Ann changes her mind: one answer per attendee, the new one replaces it.
    await ann.get_by_test_id("poll-choice").nth(1).check()
    await ann.get_by_test_id("poll-submit").click()

    results = pres.get_by_test_id("poll-item").first.get_by_test_id("poll-results")
    await expect(results.get_by_test_id("poll-respondents")).to_have_text("2 answered")
    counts = results.get_by_test_id("poll-result-count")
    await expect(counts.nth(0)).to_have_text("0")
    await expect(counts.nth(1)).to_have_text("2")

    # Results shown to attendees.
    await pres.get_by_test_id("poll-show-results").click()
    shown = bob.get_by_test_id("poll-results").get_by_test_id("poll-result-count")
    await expect(shown.nth(1)).to_have_text("2")


async def test_question_upvoted_published_and_cta_click_counted(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Town hall")
    pres = await open_page("presenter")
    ann = await open_page("ann")
    bob = await open_page("bob")
    await join_presenter(pres, server, event, "Piet Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")
    await join_attendee(bob, server, event, "Bob Attendee")

    await open_tab(ann, "tab-qa")
    await ann.get_by_test_id("qa-input").fill("When is the next release?")
    await ann.get_by_test_id("qa-ask").click()
    await open_tab(bob, "tab-qa")
    question = bob.get_by_test_id("qa-item").first
    await expect(question.get_by_test_id("qa-text")).to_have_text("When is the next release?")
    await question.get_by_test_id("qa-upvote").click()
    await expect(question.get_by_test_id("qa-upvote")).to_have_attribute("aria-pressed", "true")
    await question.get_by_test_id("qa-upvote").click()  # take it back ...
    await expect(question.get_by_test_id("qa-votes")).to_have_text("0")
    await question.get_by_test_id("qa-upvote").click()  # ... and vote again: still one vote

    await open_tab(pres, "tab-qa")
    seen = pres.get_by_test_id("qa-item").first
    await expect(seen.get_by_test_id("qa-votes")).to_have_text("1")
    await expect(seen.get_by_test_id("qa-name")).to_have_text("Ann Attendee")
    # Bob's connection drops while the question is published: he gets it when he is back.
    await bob.evaluate("() => window.__webinar.dropConnection()")
    await seen.get_by_test_id("qa-publish").click()
    for page in (ann, bob):
        banner = page.get_by_test_id("published-question")
        await expect(banner).to_be_visible()
        await expect(banner.get_by_test_id("published-question-text")).to_have_text(
            "When is the next release?"
        )

    # The call-to-action: shown on attendee pages, a click goes through our redirect.
    target = f"{server.base_url}/thanks"
    await open_tab(pres, "tab-cta")
    await pres.get_by_test_id("cta-message").fill("Register for the next webinar")
    await pres.get_by_test_id("cta-button-text").fill("Register")
    await pres.get_by_test_id("cta-url").fill(target)
    await pres.get_by_test_id("cta-show").click()
    for page in (ann, bob):
        popup = page.get_by_test_id("cta-popup")
        await expect(popup).to_be_visible()
        await expect(popup.get_by_test_id("cta-popup-message")).to_have_text(
            "Register for the next webinar"
        )
    await expect(pres.get_by_test_id("cta-popup")).to_be_hidden()
    await expect(pres.get_by_test_id("cta-clicks")).to_have_text("0")
    async with ann.context.expect_page() as opened:
        await ann.get_by_test_id("cta-popup-button").click()
    landing = await opened.value
    await landing.wait_for_load_state()
    assert landing.url == target
    await expect(pres.get_by_test_id("cta-clicks")).to_have_text("1")
    cta_id = await ann.evaluate("() => window.__webinar.room.interaction.cta.current.cta_id")

    async def clicks() -> int:
        return await server.store.run(lambda core: ist.click_count(core, cta_id))

    await wait_until(clicks, lambda n: n == 1, within=5, what="the click in the store")
    await pres.get_by_test_id("cta-close").click()
    await expect(bob.get_by_test_id("cta-popup")).to_be_hidden()


async def test_test_prepared_on_the_dashboard_with_an_image_is_scored(
    server: RunningServer, open_page: OpenPage, tmp_path: Path
) -> None:
    user = add_user(server, "olga")
    event = await server.create_event("Quiz night", owner_id=user.user_id)
    image = tmp_path / "red.png"
    image.write_bytes(png())
    org = await open_page("organiser")
    await sign_in(org, server, "olga")
    await org.goto(f"{server.base_url}/dashboard/events/{event.display_id}")
    await org.get_by_test_id("prepare-polls").click()
    await expect(org.get_by_test_id("no-prepared-polls")).to_be_visible()
    await org.get_by_test_id("poll-title").fill("Colours")
    await org.get_by_test_id("poll-kind").select_option("test")
    editor = org.get_by_test_id("poll-question-editor").first
    await editor.get_by_test_id("poll-question-text").fill("Which one is red?")
    rows = editor.get_by_test_id("poll-option-editor")
    await rows.nth(0).get_by_test_id("poll-option-text").fill("This one")
    await rows.nth(0).get_by_test_id("poll-option-image").set_input_files(image)
    await expect(rows.nth(0).locator("img")).to_have_attribute("src", re.compile(r"^/images/img_"))
    await rows.nth(0).get_by_test_id("poll-option-correct").check()
    await rows.nth(1).get_by_test_id("poll-option-text").fill("That one")
    await org.get_by_test_id("poll-save").click()
    await expect(org.get_by_test_id("prepared-poll")).to_contain_text("Colours")

    pres = await open_page("presenter")
    ann = await open_page("ann")
    await join_presenter(pres, server, event, "Piet Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")
    await open_tab(pres, "tab-polls")
    item = pres.get_by_test_id("poll-item").first
    await expect(item.get_by_test_id("poll-item-title")).to_have_text("Colours")
    await item.get_by_test_id("poll-launch").click()
    active = ann.get_by_test_id("poll-active")
    picture = active.locator("img.poll-option-image")
    await expect(picture).to_have_attribute("src", re.compile(r"^/images/img_"))
    await picture.evaluate("img => img.decode()")  # loaded and decodable (rejects if broken)
    assert await picture.evaluate("img => img.naturalWidth") == 2
    await active.get_by_test_id("poll-choice").nth(0).check()
    await active.get_by_test_id("poll-submit").click()
    await expect(active.get_by_test_id("poll-answer-saved")).to_be_visible()
    await item.get_by_test_id("poll-close").click()
    await expect(ann.get_by_test_id("poll-score")).to_have_text("Your score: 1 of 1")


async def test_chat_moderation_and_question_order(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Moderated")
    pres = await open_page("presenter")
    ann = await open_page("ann")
    bob = await open_page("bob")
    await join_presenter(pres, server, event, "Piet Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")
    await join_attendee(bob, server, event, "Bob Attendee")
    await open_tab(pres, "tab-chat")
    await open_tab(ann, "tab-chat")

    # chat off for attendees, and on again
    await pres.get_by_test_id("chat-enabled-toggle").uncheck()
    await expect(ann.get_by_test_id("chat-status")).to_have_text(
        "The presenters have switched chat off."
    )
    await expect(ann.get_by_test_id("chat-input")).to_be_disabled()
    await pres.get_by_test_id("chat-enabled-toggle").check()
    await expect(ann.get_by_test_id("chat-input")).to_be_enabled()

    # delete a message: it goes from every page
    await ann.get_by_test_id("chat-input").fill("buy cheap pills")
    await ann.get_by_test_id("chat-send").click()
    spam = pres.get_by_test_id("chat-message").filter(has_text="buy cheap pills")
    await spam.get_by_test_id("chat-delete").click()
    await expect(ann.get_by_test_id("chat-message")).to_have_count(0)

    # mute one attendee
    await ann.get_by_test_id("chat-input").fill("sorry")
    await ann.get_by_test_id("chat-send").click()
    row = pres.get_by_test_id("chat-message").filter(has_text="sorry")
    await row.get_by_test_id("chat-mute").click()
    await expect(row.get_by_test_id("chat-mute")).to_have_attribute("aria-pressed", "true")
    await expect(ann.get_by_test_id("chat-status")).to_have_text("A presenter muted you in chat.")
    await expect(ann.get_by_test_id("chat-input")).to_be_disabled()

    # slow mode, as attendees see it
    await pres.get_by_test_id("chat-slow-mode").select_option("30")
    await open_tab(bob, "tab-chat")
    await expect(bob.get_by_test_id("chat-status")).to_have_text(
        "Slow mode: one message every 30 seconds."
    )

    # Q&A sorted by votes or by time
    await open_tab(ann, "tab-qa")
    await open_tab(bob, "tab-qa")
    for text in ("First question", "Second question"):
        await bob.get_by_test_id("qa-input").fill(text)
        await bob.get_by_test_id("qa-ask").click()
        await expect(bob.get_by_test_id("qa-item").filter(has_text=text)).to_be_visible()
    second = ann.get_by_test_id("qa-item").filter(has_text="Second question")
    await second.get_by_test_id("qa-upvote").click()
    await expect(second.get_by_test_id("qa-votes")).to_have_text("1")
    texts = ann.get_by_test_id("qa-text")
    await expect(texts).to_have_text(["Second question", "First question"])
    await ann.get_by_test_id("qa-sort").select_option("time")
    await expect(texts).to_have_text(["First question", "Second question"])
    # an anonymous question shows no name to other attendees
    await bob.get_by_test_id("qa-input").fill("A shy one")
    await bob.get_by_test_id("qa-anonymous").check()
    await bob.get_by_test_id("qa-ask").click()
    shy = ann.get_by_test_id("qa-item").filter(has_text="A shy one")
    await expect(shy.get_by_test_id("qa-name")).to_have_text("Anonymous")
    await open_tab(pres, "tab-qa")
    named = pres.get_by_test_id("qa-item").filter(has_text="A shy one")
    await expect(named.get_by_test_id("qa-name")).to_have_text("Bob Attendee (anonymous to others)")
