"""Floor control and moderation from the participant list: raised hands, granting the
microphone, muting, taking it back, promoting, removing with a ban, locking."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Locator, Page, expect

from tests.browser.support import (
    OpenPage,
    growth,
    inbound_from,
    join_attendee,
    join_presenter,
    participant_id,
    wait_until,
)
from tests.helpers import RunningServer

pytestmark = pytest.mark.browser


def row_of(page: Page, pid: str) -> Locator:
    return page.locator(f"[data-testid=participant-row][data-participant-id={pid}]")


async def test_raised_hand_granted_microphone_is_heard(
    server: RunningServer, open_page: OpenPage
) -> None:
    event = await server.create_event("Town hall")
    host = await open_page("host")
    speaker = await open_page("speaker")
    listener = await open_page("listener")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key, preview=False)
    await join_attendee(speaker, server, event, "Sam Speaker")
    await join_attendee(listener, server, event, "Lee Listener")
    sam = await participant_id(speaker)

    # Attendees cannot speak: no microphone button, a hand to raise.
    await expect(speaker.get_by_test_id("mic-toggle")).to_be_hidden()
    hand = speaker.get_by_test_id("raise-hand")
    await hand.click()
    await expect(hand).to_have_attribute("aria-pressed", "true")
    await expect(hand).to_contain_text("Lower hand")
    # by keyboard: down and up again
    await hand.focus()
    await speaker.keyboard.press("Space")
    await expect(hand).to_have_attribute("aria-pressed", "false")
    await speaker.keyboard.press("Enter")
    await expect(hand).to_have_attribute("aria-pressed", "true")

    # The host sees the queue (first place, first row) and is told.
    await expect(host.get_by_test_id("toast").last).to_contain_text("Sam Speaker raised their hand")
    await expect(host.get_by_test_id("people-badge")).to_have_text("1")
    row = row_of(host, sam)
    await expect(row.get_by_test_id("hand-position")).to_have_text("1st in the queue")
    await expect(host.get_by_test_id("participant-row").first).to_have_attribute(
        "data-participant-id", sam
    )
    await expect(host.get_by_test_id("hands-summary")).to_contain_text("1 raised hand")

    await row.get_by_test_id("grant-mic").click()
    # Granting lowers the hand; the speaker is asked to turn the microphone on.
    await expect(hand).to_have_attribute("aria-pressed", "false")
    await expect(speaker.get_by_test_id("toast").last).to_contain_text("You may speak now")
    mic = speaker.get_by_test_id("mic-toggle")
    await expect(mic).to_be_visible()
    await expect(mic).to_have_attribute("aria-pressed", "false")
    await expect(row.get_by_test_id("revoke")).to_be_visible()
    await mic.click()
    await expect(mic).to_have_attribute("aria-pressed", "true")
    # the toast's "Turn microphone on" has done its job: it goes (so does "Turn camera on")
    await expect(speaker.get_by_test_id("toast-mic-on")).to_have_count(0)
    sources = await speaker.evaluate(
        "() => [...window.__webinar.connection.producers.values()].map((p) => p.source)"
    )
    assert sources == ["microphone"]

    # The other attendee hears Sam (their audio packets arrive from Sam's stream).
    from_sam = lambda: inbound_from(listener, sam)  # noqa: E731
    await wait_until(
        from_sam,
        lambda s: s["audio"]["packetsReceived"] > 25,
        within=10,
        what="Sam's audio at the listener",
    )
    await expect(row.locator("[data-device=mic]")).to_have_attribute("data-state", "on")

    # Muted by the host: the speaker is told and may switch it on again.
    await row.get_by_test_id("mute").click()
    await expect(mic).to_have_attribute("aria-pressed", "false")
    await expect(speaker.get_by_test_id("toast").last).to_contain_text("muted your microphone")
    await expect(row.locator("[data-device=mic]")).to_have_attribute("data-state", "off")
    await mic.click()
    await expect(mic).to_have_attribute("aria-pressed", "true")
    await wait_until(
        lambda: growth(from_sam, "audio", "packetsReceived", 0.5),
        lambda n: n > 10,
        within=10,
        what="Sam's audio after unmuting",
    )

    # Taken back: the stream ends for everyone and the speaker's microphone is released.
    await row.get_by_test_id("revoke").click()
    await expect(mic).to_be_hidden()
    await expect(speaker.get_by_test_id("toast").last).to_contain_text(
        "Your turn to speak has ended"
    )
    await wait_until(
        lambda: speaker.evaluate("() => window.__webinar.room.local.audio === null"),
        bool,
        within=5,
        what="the speaker's microphone track to stop",
    )
    await wait_until(
        lambda: listener.evaluate("() => window.__webinar.connection.remoteStreams.size"),
        lambda n: n == 0,
        within=5,
        what="Sam's stream to end at the listener",
    )


async def test_promote_remove_ban_and_lock(server: RunningServer, open_page: OpenPage) -> None:
    event = await server.create_event("Moderated")
    host = await open_page("host")
    ann = await open_page("ann")
    troll = await open_page("troll")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key, preview=False)
    await join_attendee(ann, server, event, "Ann")
    await join_attendee(troll, server, event, "Troll")
    ann_id = await participant_id(ann)
    troll_id = await participant_id(troll)

    # Attendees see the stage and themselves (the others only counted), and no actions.
    if await ann.get_by_test_id("tab-people").is_hidden():  # open beside the stage on a desktop
        await ann.get_by_test_id("people-toggle").click()
    await ann.get_by_test_id("tab-people").click()
    await expect(ann.get_by_test_id("participants")).to_be_visible()
    await expect(ann.get_by_test_id("participant-row")).to_have_count(2)
    await expect(ann.get_by_test_id("participant-count")).to_have_text("3 people here")
    await expect(host.get_by_test_id("participant-row")).to_have_count(3)
    await expect(ann.get_by_test_id("participants").get_by_role("button")).to_have_count(0)

    # The host makes Ann a presenter: her page gets the presenter controls, live.
    ann_row = row_of(host, ann_id)
    await ann_row.get_by_test_id("more-actions").click()
    await ann_row.get_by_test_id("make-presenter").click()
    await expect(ann.get_by_test_id("go-live")).to_be_visible()
    await expect(ann.get_by_test_id("raise-hand")).to_be_hidden()
    await expect(ann.get_by_test_id("role-badge")).to_have_text("Presenter")
    await expect(ann.get_by_test_id("toast").last).to_contain_text("You are now a presenter")
    await expect(ann_row).to_contain_text("Presenter")
    await ann_row.get_by_test_id("more-actions").click()
    await ann_row.get_by_test_id("make-attendee").click()
    await expect(ann.get_by_test_id("raise-hand")).to_be_visible()
    await expect(ann.get_by_test_id("go-live")).to_be_hidden()

    # Remove with a ban, after a confirmation. By keyboard first, changing one's mind:
    troll_row = row_of(host, troll_id)
    await troll_row.get_by_test_id("more-actions").focus()
    await host.keyboard.press("Enter")
    await troll_row.get_by_test_id("remove").focus()
    await host.keyboard.press("Enter")
    dialog = host.get_by_test_id("remove-dialog")
    await expect(dialog).to_be_visible()
    await expect(host.get_by_test_id("remove-cancel")).to_be_focused()
    await host.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(troll_row).to_have_count(1)
    await troll_row.get_by_test_id("more-actions").click()
    await troll_row.get_by_test_id("remove").click()
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Remove Troll?")
    await host.get_by_test_id("remove-ban").check()
    await host.get_by_test_id("remove-confirm").click()
    await expect(troll_row).to_have_count(0)
    await expect(troll.get_by_test_id("ended")).to_contain_text("You were removed")
    await expect(troll.get_by_test_id("rejoin")).to_be_hidden()
    # The same browser cannot come back (the ban applies to its client ID).
    await troll.goto(f"{server.base_url}/e/{event.event_id}")
    await troll.get_by_test_id("prejoin-name-input").fill("Troll again")
    await troll.get_by_test_id("enter-room-button").click()
    await expect(troll.get_by_test_id("prejoin-error")).to_contain_text(
        "removed from this webinar and cannot join it again"
    )

    # Locked: a newcomer is told so, plainly; everyone in the room was told too.
    lock = host.get_by_test_id("lock-toggle")
    await lock.click()
    await expect(lock).to_have_attribute("aria-pressed", "true")
    await expect(ann.get_by_test_id("toast").last).to_contain_text("locked the room")
    late = await open_page("late")
    await late.goto(f"{server.base_url}/e/{event.event_id}")
    await late.get_by_test_id("prejoin-name-input").fill("Late")
    await late.get_by_test_id("enter-room-button").click()
    await expect(late.get_by_test_id("prejoin-error")).to_contain_text(
        re.compile("locked the room")
    )
    await lock.click()
    await expect(lock).to_have_attribute("aria-pressed", "false")
    await late.get_by_test_id("enter-room-button").click()
    await expect(late.get_by_test_id("connection-state")).to_have_attribute("data-state", "ok")


async def test_a_host_in_a_big_room_loads_the_roster_by_pages(
    server: RunningServer, open_page: OpenPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Big" here is above one person: the host's `joined` then has the stage only, and the
    # page loads everyone with roster-page; an attendee who arrives later comes in a delta.
    monkeypatch.setattr("webinar.signalling.roster.SNAPSHOT_LIMIT", 1)
    event = await server.create_event("Big room")
    ann = await open_page("ann")
    host = await open_page("host")
    await join_attendee(ann, server, event, "Ann")
    await join_presenter(host, server, event, "Hana Host", key=event.host_key, preview=False)
    assert await host.evaluate("() => window.__webinar.connection.joined.roster") == "paged"
    ann_id = await participant_id(ann)
    await expect(row_of(host, ann_id)).to_be_visible()  # the panel is open for the host
    bob = await open_page("bob")
    await join_attendee(bob, server, event, "Bob")
    await expect(host.get_by_test_id("participant-row")).to_have_count(3)
    await expect(host.get_by_test_id("participant-count")).to_have_text("3 people here")
    await bob.get_by_test_id("raise-hand").click()
    bob_row = row_of(host, await participant_id(bob))
    await expect(bob_row.get_by_test_id("hand-position")).to_have_text("1st in the queue")
