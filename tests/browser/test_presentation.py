"""Presentations, the laser pointer and files in the room, in real Chromium: a presenter uploads
a 10-page PDF from the room, presents it and turns to page 4; attendees show the rendered page 4
(its pixels, read through a canvas), a late joiner lands on it at once; a password event's page
images are refused without the event's content pass. The page-turn latency is measured and
printed here (benchmarks/slides.py is the timed figure)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.slides import (
    make_pdf,
    page_look,
    slide_shows,
    summary,
    turn_and_time,
    upload_and_render,
)
from tests.browser.support import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    OpenPage,
    PageErrors,
    join_attendee,
    join_presenter,
    wait_until,
)
from tests.helpers import Person, RunningServer, join_person
from webinar.accounts import hash_password
from webinar.ticketing import records
from webinar.ticketing.records import EventAccess

pytestmark = pytest.mark.browser

# Every data-page the slide image ever had, in order (set before the page's scripts run).
RECORD_PAGES_JS = """
window.__pagesShown = [];
new MutationObserver((changes) => {
  for (const change of changes) {
    const node = change.target;
    if (node.dataset && node.dataset.testid === "slide-image" && node.dataset.page) {
      window.__pagesShown.push(node.dataset.page);
    }
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-page"] });
"""


def slide(page: Page) -> Any:
    return page.get_by_test_id("slide-image")


async def shows_page(page: Page, number: int) -> None:
    """The slide image is page ``number``, loaded, and its pixels are that page's."""
    await expect(slide(page)).to_have_attribute("data-page", str(number))
    await wait_until(
        lambda: slide_shows(page, number),
        lambda result: result[0],
        within=5,
        what=f"the pixels of page {number}",
    )


async def open_tab(page: Page, tab: str) -> None:
    if await page.get_by_test_id(tab).is_hidden():
        await page.get_by_test_id("people-toggle").click()
    await page.get_by_test_id(tab).click()


async def test_presenter_uploads_a_pdf_and_attendees_follow_its_pages(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Quarterly review")
    pres = await open_page("presenter")
    ann = await open_page("ann")
    bob = await open_page("bob")
    await join_presenter(pres, server, event, "Pia Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")
    await join_attendee(bob, server, event, "Bob Attendee")
    # attendees have no Content menu
    await expect(ann.get_by_test_id("content-menu-toggle")).to_be_hidden()

    # The presenter uploads the PDF from the room; its pages are made on the server.
    await pres.get_by_test_id("content-menu-toggle").click()
    await expect(pres.get_by_test_id("content-menu")).to_be_visible()
    await pres.get_by_test_id("room-upload").set_input_files(
        {"name": "quarterly.pdf", "mimeType": "application/pdf", "buffer": make_pdf(10)}
    )
    item = pres.get_by_test_id("content-item").filter(has_text="quarterly.pdf")
    await expect(item).to_have_attribute("data-pages", "ready", timeout=30_000)
    await expect(item.get_by_test_id("content-item-facts")).to_contain_text("10 pages")
    await expect(pres.get_by_test_id("room-upload-error")).to_be_hidden()

    # It goes on stage at page 1 for everyone; the presenter turns to page 4.
    await item.get_by_test_id("presentation-start").click()
    await expect(pres.get_by_test_id("content-menu")).to_be_hidden()
    for page in (pres, ann, bob):
        await expect(page.locator("#stage")).to_have_attribute("data-content", "presentation")
        await shows_page(page, 1)
    for _ in range(3):
        await pres.get_by_test_id("slide-next").click()
    await shows_page(pres, 4)
    for page in (ann, bob):
        await shows_page(page, 4)
        await expect(page.get_by_test_id("slide-page-number")).to_have_text("4 / 10")
        # attendees follow; they do not turn, and no "waiting for the presenter" covers the slide
        await expect(page.get_by_test_id("slide-next")).to_be_hidden()
        await expect(page.locator("#stage")).to_have_attribute("data-empty", "false")
        await expect(page.get_by_test_id("room-status")).to_be_hidden()
    await expect(pres.get_by_test_id("slide-next")).to_be_enabled()

    # A late joiner lands on page 4 at once: no other page is ever shown first.
    cam = await open_page("cam")
    await cam.add_init_script(RECORD_PAGES_JS)
    await join_attendee(cam, server, event, "Cam Latecomer")
    await shows_page(cam, 4)
    assert await cam.evaluate("() => window.__pagesShown") == ["4"]

    # The arrow keys turn pages too (focus not in a text field).
    await pres.get_by_test_id("slide-page-number").click()
    await pres.keyboard.press("ArrowLeft")
    await shows_page(ann, 3)
    await pres.keyboard.press("PageDown")
    await shows_page(ann, 4)

    # Page-turn latency, presenter click -> attendee image loaded (the benchmark is the figure).
    samples = []
    for turn in range(10):
        samples.append(await turn_and_time(pres, ann, forward=turn % 2 == 0))
        await asyncio.sleep(0.2)
    print("slide turns:", summary(samples))
    # each page image came over the network once: turning back, and pages loaded ahead, are
    # the same URLs (one content pass kept), served from the browser's cache
    fetched = await ann.evaluate(
        "() => performance.getEntriesByType('resource')"
        ".filter((e) => e.name.includes('/pages/') && e.transferSize > 0)"
        ".map((e) => new URL(e.name).pathname)"
    )
    assert fetched and len(fetched) == len(set(fetched)), fetched

    # Stop presenting: the slide leaves everyone's stage, the cameras are back.
    await pres.get_by_test_id("presentation-stop").click()
    for page in (ann, bob, cam):
        await expect(page.locator("#stage")).to_have_attribute("data-content", "cameras")
        await expect(slide(page)).to_be_hidden()


async def test_laser_pointer_and_files_offered(server: RunningServer, open_page: OpenPage) -> None:
    """The presenter's mouse over the slide is a red dot for attendees; an offered file shows
    in their Files tab and downloads."""
    event = await server.create_event("Handouts")
    content_id = await upload_and_render(
        server, event.event_id, event.presenter_key, make_pdf(3), name="quarterly.pdf"
    )
    pres = await open_page("presenter")
    ann = await open_page("ann")
    await join_presenter(pres, server, event, "Pia Presenter", preview=False)
    await join_attendee(ann, server, event, "Ann Attendee")
    await pres.evaluate(
        "(id) => window.__webinar.room.content.request('presentation-show', {content_id: id})",
        content_id,
    )
    await shows_page(pres, 1)
    await shows_page(ann, 1)

    # The laser pointer: the presenter's mouse over the slide is a red dot for everyone.
    await pres.get_by_test_id("laser-pointer-toggle").click()
    await expect(pres.get_by_test_id("laser-pointer-toggle")).to_have_attribute(
        "aria-pressed", "true"
    )
    box = await pres.get_by_test_id("slide-box").bounding_box()
    assert box is not None
    await pres.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.6)
    await pres.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.5)
    dot = ann.get_by_test_id("laser-pointer")
    await expect(dot).to_be_visible()
    await expect(dot).to_have_attribute("data-x", re.compile(r"^0\.2[4-6]"))
    await expect(dot).to_have_attribute("data-y", re.compile(r"^0\.(49|5)"))
    await ann.screenshot(path=str(SCREENSHOTS / "laser-pointer-desktop.png"))
    await pres.mouse.move(2, 2)  # off the slide: the dot goes
    await expect(dot).to_be_hidden()
    await pres.get_by_test_id("laser-pointer-toggle").click()
    await ann.screenshot(path=str(SCREENSHOTS / "presentation-attendee-desktop.png"))
    await pres.screenshot(path=str(SCREENSHOTS / "presentation-presenter-desktop.png"))

    # Files in the room: the presenter offers the PDF; attendees get a toast and the Files tab.
    await pres.get_by_test_id("content-menu-toggle").click()
    item = pres.get_by_test_id("content-item").filter(has_text="quarterly.pdf")
    await item.get_by_test_id("file-offer").check()
    await expect(item).to_have_attribute("data-offered", "true")
    await expect(ann.get_by_test_id("toast").filter(has_text="quarterly.pdf")).to_be_visible()
    await expect(ann.get_by_test_id("tab-files")).to_have_attribute("data-unread", "1")
    await ann.get_by_test_id("file-toast-show").click()
    await expect(ann.get_by_test_id("tab-files")).to_have_attribute("data-unread", "0")
    row = ann.get_by_test_id("file-item")
    await expect(row).to_have_count(1)
    await expect(row.get_by_test_id("file-name")).to_have_text("quarterly.pdf")
    await expect(row.get_by_test_id("file-size")).to_have_text(re.compile(r"kB|MB"))
    async with ann.expect_download() as waiting:
        await row.get_by_test_id("file-download").click()
    download = await waiting.value
    assert download.suggested_filename == "quarterly.pdf"
    saved = await download.path()
    assert saved is not None and saved.read_bytes().startswith(b"%PDF-")
    await ann.screenshot(path=str(SCREENSHOTS / "files-attendee-desktop.png"))
    # withdrawn: the tab goes
    await item.get_by_test_id("file-offer").uncheck()
    await expect(ann.get_by_test_id("tab-files")).to_be_hidden()


async def test_presentation_on_a_phone(server: RunningServer, open_page: OpenPage) -> None:
    """On a phone the slide comes first, whole, with the page number under it."""
    event = await server.create_event("Phone slides")
    pdf = make_pdf(3)
    people: list[Person] = []
    try:
        pia = await join_person(server, people, Person, event, "Pia", event.presenter_key)
        content_id = await upload_and_render(server, event.event_id, event.presenter_key, pdf)
        await pia.request("presentation-show", content_id=content_id, page=2)
        phone = await open_page("phone", viewport=PHONE)
        await join_attendee(phone, server, event, "Pat Phone")
        await shows_page(phone, 2)
        image = await slide(phone).bounding_box()
        stage = await phone.locator("#stage").bounding_box()
        assert image is not None and stage is not None
        # the whole slide is on screen, as wide as the stage allows, at the top of the stage
        assert image["width"] >= stage["width"] - 40, (image, stage)
        assert image["y"] + image["height"] <= PHONE["height"]
        assert image["y"] - stage["y"] < 60, (image, stage)
        await phone.screenshot(path=str(SCREENSHOTS / "presentation-attendee-phone.png"))
        desk = await open_page("desk", viewport=DESKTOP)
        await join_attendee(desk, server, event, "Dee Desk")
        await shows_page(desk, 2)
    finally:
        for person in people:
            await person.close()


async def test_page_images_of_a_password_event_need_its_pass(
    server: RunningServer, open_page: OpenPage, page_errors: PageErrors
) -> None:
    page_errors.allow(r"status of 403")  # the refused fetch below
    event = await server.create_event("Board meeting", access_type="password")
    access = EventAccess(event.event_id, attendee_password_hash=hash_password("attend-me", n=2**10))
    await server.store.run(lambda core: records.put_access(core.connection, access))
    people: list[Person] = []
    try:
        pia = await join_person(server, people, Person, event, "Pia", event.presenter_key)
        content_id = await upload_and_render(
            server, event.event_id, event.presenter_key, make_pdf(3)
        )
        await pia.request("presentation-show", content_id=content_id, page=2)

        ann = await open_page("ann")
        await ann.goto(f"{server.base_url}/e/{event.event_id}")
        await ann.get_by_test_id("prejoin-name-input").fill("Ann")
        await ann.get_by_test_id("access-password-input").fill("attend-me")
        await ann.get_by_test_id("enter-room-button").click()
        await expect(ann.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")
        await shows_page(ann, 2)
        src = await slide(ann).get_attribute("src")
        assert src is not None and "pass=" in src, src
        bare = re.sub(r"[?&]pass=[^&]*", "", src)
        assert bare.endswith(f"/content/{content_id}/pages/2"), bare
        fetch_status = (
            "(url) => fetch(url, {credentials: 'omit', cache: 'no-store'}).then(r => r.status)"
        )
        assert await ann.evaluate(fetch_status, bare) == 403
        assert await ann.evaluate(fetch_status, src) == 200
        # the rendered page is the right one, not a blank picture
        look = page_look(2)
        ok, pixels = await slide_shows(ann, 2)
        assert ok, (look, pixels)
    finally:
        for person in people:
            await person.close()
