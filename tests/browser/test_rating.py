"""The rating at the end of the room, in real Chromium: the host ends the event for everyone,
the attendee's ended view asks for 1 to 5 stars and a comment, she gives 4 stars with a
comment, and the organiser's statistics page shows it (average, distribution, the comment,
her row), then the After the event page takes a new thank-you text. Screenshots:
``rating-ended-desktop.png``, ``rating-ended-phone.png``, ``stats-ratings-desktop.png``,
``after-desktop.png``."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser.support import PHONE, SCREENSHOTS, OpenPage, join_attendee, join_presenter
from tests.browser.test_dashboard import add_user, sign_in
from tests.helpers import RunningServer


async def test_an_attendee_rates_after_end_for_all_and_the_statistics_show_it(
    server: RunningServer, open_page: OpenPage
) -> None:
    olga = add_user(server, "olga")
    event = await server.create_event("Quarterly review", owner_id=olga.user_id)
    host = await open_page("host")
    ann = await open_page("ann")
    phone = await open_page("bob", viewport=PHONE)
    await join_presenter(host, server, event, "Hana Host", key=event.host_key, preview=False)
    await join_attendee(ann, server, event, "Ann")
    await join_attendee(phone, server, event, "Bob")
    rating = ann.get_by_test_id("rating")
    await expect(rating).to_be_hidden()  # nothing to rate while it runs

    await host.get_by_test_id("end-for-all").click()
    await host.get_by_test_id("end-for-all-confirm").click()
    await expect(host).to_have_url(f"{server.base_url}/thanks")  # the host rates nothing
    await expect(ann.get_by_test_id("ended")).to_be_visible()
    await expect(ann.get_by_test_id("ended")).to_contain_text("The webinar has ended")
    await expect(rating).to_be_visible()
    await expect(phone.get_by_test_id("rating")).to_be_visible()
    assert ann.url.endswith(f"/e/{event.event_id}")  # she stays on the page to rate
    await phone.screenshot(path=str(SCREENSHOTS / "rating-ended-phone.png"))

    # Sending without stars says what is missing and sends nothing.
    await ann.get_by_test_id("rating-submit").click()
    await expect(ann.get_by_test_id("rating-error")).to_have_text("Choose 1 to 5 stars.")
    await ann.get_by_test_id("rating-star-4").click()
    await ann.get_by_test_id("rating-comment").fill("Clear slides, good answers to questions")
    await ann.screenshot(path=str(SCREENSHOTS / "rating-ended-desktop.png"))
    await ann.get_by_test_id("rating-submit").click()
    await expect(ann.get_by_test_id("rating-thanks")).to_be_visible()
    await expect(rating).to_be_hidden()

    organiser = await open_page("olga")
    await sign_in(organiser, server, "olga")
    await organiser.goto(f"{server.base_url}/dashboard/events/{event.display_id}/stats")
    await expect(organiser.get_by_test_id("stat-rating")).to_have_text("4.0 of 5")
    await expect(organiser.get_by_test_id("rating-count")).to_have_text("1 rating")
    bars = organiser.get_by_test_id("rating-bar")
    await expect(bars.and_(organiser.locator('[data-stars="4"]'))).to_have_attribute(
        "data-count", "1"
    )
    await expect(bars.and_(organiser.locator('[data-stars="5"]'))).to_have_attribute(
        "data-count", "0"
    )
    comment = organiser.get_by_test_id("rating-comment-item")
    await expect(comment).to_have_count(1)
    await expect(comment).to_contain_text("Clear slides, good answers to questions")
    await expect(comment).to_contain_text("Ann")
    row = organiser.get_by_test_id("attendee-row").filter(has_text="Ann")
    await expect(row.get_by_test_id("attendee-rating")).to_have_text("4")
    await expect(row.get_by_test_id("attendee-device")).to_have_text("Desktop")
    await expect(row.get_by_test_id("attendee-browser")).to_contain_text("Chrome")
    bob = organiser.get_by_test_id("attendee-row").filter(has_text="Bob")
    await expect(bob.get_by_test_id("attendee-rating")).to_have_text("")  # he did not rate
    await organiser.get_by_test_id("ratings").scroll_into_view_if_needed()
    await organiser.screenshot(path=str(SCREENSHOTS / "stats-ratings-desktop.png"))

    # The After the event page: the event has ended; its thank-you text is edited.
    await organiser.get_by_test_id("after-link").click()
    await expect(organiser.get_by_test_id("event-ended")).to_contain_text("Ended for everyone")
    await expect(organiser.get_by_test_id("thank-you-enabled")).to_be_checked()
    await organiser.get_by_test_id("thank-you-text").fill("Thanks for coming, {name}!")
    await organiser.get_by_test_id("thank-you-save").click()
    await expect(organiser.get_by_test_id("after-notice")).to_be_visible()
    await expect(organiser.get_by_test_id("thank-you-preview")).to_contain_text(
        "Thanks for coming, Ada Lovelace!"
    )
    await organiser.screenshot(path=str(SCREENSHOTS / "after-desktop.png"), full_page=True)
