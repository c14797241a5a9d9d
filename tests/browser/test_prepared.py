"""In real Chromium: chat in the lobby while chat is on; prepared polls changed and deleted
on the dashboard; a call-to-action prepared on the dashboard, launched in the room and
clicked by an attendee; the click shows up in the event's statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Dialog, expect

from tests.browser.support import OpenPage, join_presenter
from tests.browser.test_dashboard import add_user, sign_in
from tests.browser.test_interaction import open_tab
from tests.helpers import RunningServer
from webinar.interaction import store as ist

pytestmark = pytest.mark.browser


async def test_attendees_in_the_lobby_chat_while_chat_is_on(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.store.create_event("Launch day", datetime.now(UTC) + timedelta(minutes=3))
    grace = await open_page("grace")
    pres = await open_page("presenter")
    await grace.goto(f"{server.base_url}/e/{event.event_id}")
    await grace.get_by_test_id("prejoin-name-input").fill("Grace")
    await grace.get_by_test_id("enter-room-button").click()
    await expect(grace.get_by_test_id("lobby")).to_be_visible()
    lobby_chat = grace.get_by_test_id("lobby-chat")
    await expect(lobby_chat).to_be_visible()
    await lobby_chat.get_by_test_id("chat-input").fill("Hello from the lobby")
    await lobby_chat.get_by_test_id("chat-send").click()
    await expect(lobby_chat.get_by_test_id("chat-message-text")).to_have_text(
        "Hello from the lobby"
    )

    await join_presenter(pres, server, event, "Piet", preview=False)
    await open_tab(pres, "tab-chat")
    await expect(pres.get_by_test_id("chat-message-text")).to_have_text("Hello from the lobby")
    await pres.get_by_test_id("chat-input").fill("Welcome, we start soon")
    await pres.get_by_test_id("chat-send").click()
    await expect(lobby_chat.get_by_test_id("chat-message")).to_have_count(2)

    # chat off: the lobby shows no chat; on again: it is back, history included
    await pres.get_by_test_id("chat-enabled-toggle").uncheck()
    await expect(lobby_chat).to_be_hidden()
    await pres.get_by_test_id("chat-enabled-toggle").check()
    await expect(lobby_chat).to_be_visible()
    await expect(lobby_chat.get_by_test_id("chat-message")).to_have_count(2)

    # the event starts: the same chat is in the room's side panel
    await pres.get_by_test_id("start-event").click()
    await expect(grace.get_by_test_id("lobby")).to_be_hidden()
    await open_tab(grace, "tab-chat")
    panel = grace.locator("#side-panel [data-testid=chat-messages]")
    await expect(panel.get_by_test_id("chat-message")).to_have_count(2)
    await grace.get_by_test_id("chat-input").fill("In the room now")
    await grace.get_by_test_id("chat-send").click()
    await expect(pres.get_by_test_id("chat-message")).to_have_count(3)


async def test_prepared_polls_are_edited_and_deleted_on_the_dashboard(
    server: RunningServer, open_page: OpenPage
) -> None:
    olga = add_user(server, "olga")
    event = await server.create_event("Quarterly", owner_id=olga.user_id)
    page = await open_page("olga")
    await sign_in(page, server, "olga")
    await page.goto(f"{server.base_url}/dashboard/events/{event.display_id}/polls")
    for title in ("Lunch?", "Drinks?"):
        await page.get_by_test_id("poll-title").fill(title)
        editor = page.get_by_test_id("poll-question-editor").first
        await editor.get_by_test_id("poll-question-text").fill("Which one")
        await editor.get_by_test_id("poll-option-text").nth(0).fill("Pizza")
        await editor.get_by_test_id("poll-option-text").nth(1).fill("Salad")
        await page.get_by_test_id("poll-save").click()
        await expect(page.get_by_test_id("prepared-poll-title").last).to_have_text(title)

    # edit the first: the builder is filled with it, the change is saved in place
    first = page.get_by_test_id("prepared-poll").first
    await first.get_by_test_id("prepared-poll-edit").click()
    await expect(page.get_by_test_id("poll-title")).to_have_value("Lunch?")
    options = page.get_by_test_id("poll-option-text")
    await expect(options.nth(1)).to_have_value("Salad")
    await page.get_by_test_id("poll-title").fill("Lunch on Friday?")
    await options.nth(1).fill("Soup")
    await page.get_by_test_id("poll-add-question").click()
    second = page.get_by_test_id("poll-question-editor").nth(1)
    await second.get_by_test_id("poll-question-kind").select_option("text")
    await second.get_by_test_id("poll-question-text").fill("Anything else?")
    await expect(page.get_by_test_id("poll-save")).to_have_text("Save changes")
    await page.get_by_test_id("poll-save").click()
    titles = page.get_by_test_id("prepared-poll-title")
    await expect(titles).to_have_text(["Lunch on Friday?", "Drinks?"])

    # delete the second, after the confirmation
    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)
    await page.get_by_test_id("prepared-poll").nth(1).get_by_test_id("prepared-poll-delete").click()
    await expect(titles).to_have_text(["Lunch on Friday?"])
    polls = await server.store.run(lambda core: ist.list_polls(core, event.event_id))
    assert [p.title for p in polls] == ["Lunch on Friday?"]
    (poll,) = polls
    assert [o.text for o in poll.questions[0].options] == ["Pizza", "Soup"]
    assert poll.questions[1].text == "Anything else?"


async def test_a_prepared_cta_is_launched_and_clicked(
    server: RunningServer, open_page: OpenPage
) -> None:
    olga = add_user(server, "olga")
    event = await server.create_event("Demo day", owner_id=olga.user_id)
    organiser = await open_page("olga")
    await sign_in(organiser, server, "olga")
    await organiser.goto(f"{server.base_url}/dashboard/events/{event.display_id}")
    await organiser.get_by_test_id("prepare-ctas").click()
    await expect(organiser.get_by_test_id("ctas-heading")).to_be_visible()
    await organiser.get_by_test_id("prepare-cta-message").fill("Book your demo today")
    await organiser.get_by_test_id("prepare-cta-button").fill("Book")
    await organiser.get_by_test_id("prepare-cta-url").fill(f"{server.base_url}/thanks?demo=1")
    await organiser.get_by_test_id("prepare-cta-save").click()
    await expect(organiser.get_by_test_id("prepared-cta-message")).to_have_text(
        "Book your demo today"
    )

    pres = await open_page("presenter")
    ann = await open_page("ann")
    await join_presenter(pres, server, event, "Piet", preview=False)
    await ann.goto(f"{server.base_url}/e/{event.event_id}")
    await ann.get_by_test_id("prejoin-name-input").fill("Ann")
    await ann.get_by_test_id("enter-room-button").click()
    await expect(ann.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")
    await open_tab(pres, "tab-cta")
    item = pres.get_by_test_id("cta-prepared-item")
    await expect(item).to_contain_text("Book your demo today")
    await item.get_by_test_id("cta-launch").click()
    popup = ann.get_by_test_id("cta-popup")
    await expect(popup.get_by_test_id("cta-popup-message")).to_have_text("Book your demo today")
    async with ann.context.expect_page() as opened:
        await popup.get_by_test_id("cta-popup-button").click()
    target = await opened.value
    await target.wait_for_load_state()
    assert target.url == f"{server.base_url}/thanks?demo=1"
    await expect(pres.get_by_test_id("cta-clicks")).to_have_text("1")

    # the click is Ann's in the event's statistics
    await organiser.goto(f"{server.base_url}/dashboard/events/{event.display_id}/stats")
    row = organiser.get_by_test_id("attendee-row").filter(has_text="Ann")
    await expect(row.get_by_test_id("attendee-clicks")).to_have_text("1")
    await expect(organiser.get_by_test_id("export-detail-cta")).to_be_visible()
