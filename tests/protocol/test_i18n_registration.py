"""Languages over real HTTP: the registration page's language (the person's choice, else the
event's, else the browser's) is stored with the registration and its e-mail goes out in it;
the organiser sets the event's language in the event form. Without SMTP the e-mails are
``.eml`` files in the outbox."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import RunningServer, running_server
from tests.protocol.test_dashboard import add_user, csrf_of, sign_in
from webinar.storage.store import Event
from webinar.ticketing import records
from webinar.ticketing.records import EventAccess

PERSON = {"first_name": "Ada", "last_name": "Lovelace", "seats": "2"}  # 2 × 1 234,00 Kč


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(tmp_path / "data") as srv:
        yield srv


async def paid_event(server: RunningServer, language: str | None = None) -> Event:
    event = await server.store.create_event(
        "Babel talk",
        datetime.now(UTC) + timedelta(days=2),
        access_type="paid",
        timezone="Europe/Prague",
        language=language,
    )
    access = EventAccess(event.event_id, price_minor=123400, currency="CZK")
    await server.store.run(lambda core: records.put_access(core.connection, access))
    return event


async def register(
    server: RunningServer,
    event: Event,
    address: str,
    *,
    cookie: str | None = None,
    accept: str | None = None,
) -> tuple[str, records.Registration]:
    """Open the registration page as a browser would, submit it; the page's HTML and the
    stored registration."""
    headers = {"Accept-Language": accept} if accept else {}
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers=headers) as visitor:
        if cookie:
            visitor.cookie_jar.update_cookies({"webinar_lang": cookie})
        url = f"{server.base_url}/e/{event.display_id}/register"
        async with visitor.get(url) as resp:
            assert resp.status == 200
            page = await resp.text()
        form = {"csrf": csrf_of(page), "email": address, **PERSON}
        async with visitor.post(url, data=form, allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
    found = await server.store.run(
        lambda core: records.list_registrations(core.connection, event.event_id)
    )
    return page, next(r for r in found if r.email == address)


def outbox_mail(server: RunningServer, to: str) -> EmailMessage:
    for path in sorted((server.store.data_dir / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if to in str(message["To"]):
            return message
    raise AssertionError(f"no e-mail to {to}")


def html_lang(page: str) -> str:
    match = re.search(r'<html lang="([a-z]+)"', page)
    assert match, page[:200]
    return match.group(1)


async def test_the_registration_keeps_the_page_language(server: RunningServer) -> None:
    event = await paid_event(server)
    # The person's own choice (the switcher's cookie) wins over the browser's.
    page, chose = await register(server, event, "ada@example.org", cookie="cs", accept="ru")
    assert html_lang(page) == "cs" and chose.language == "cs"
    mail = outbox_mail(server, "ada@example.org")
    assert mail["Content-Language"] == "cs"
    text = str(mail.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    assert "2 468,00 Kč" in text.replace("\xa0", " ").replace("\u202f", " ")
    # No choice, no event language: the browser's.
    page, browser = await register(server, event, "ivan@example.org", accept="ru-RU,ru;q=0.9")
    assert html_lang(page) == "ru" and browser.language == "ru"
    assert outbox_mail(server, "ivan@example.org")["Content-Language"] == "ru"
    # Nothing at all: English.
    page, plain = await register(server, event, "joe@example.org")
    assert html_lang(page) == "en" and plain.language == "en"
    assert outbox_mail(server, "joe@example.org")["Content-Language"] == "en"


async def test_the_event_language_comes_before_the_browser(server: RunningServer) -> None:
    event = await paid_event(server, language="cs")
    page, reg = await register(server, event, "ada@example.org", accept="ru")
    assert html_lang(page) == "cs" and reg.language == "cs"
    # ... but after the person's own choice.
    page, reg = await register(server, event, "ivan@example.org", cookie="ru", accept="en")
    assert html_lang(page) == "ru" and reg.language == "ru"
    room = f"{server.base_url}/e/{event.display_id}"
    async with (
        aiohttp.ClientSession(headers={"Accept-Language": "en"}) as visitor,
        visitor.get(room) as resp,
    ):
        assert html_lang(await resp.text()) == "cs"  # the room's page too


async def test_the_event_form_sets_the_language(server: RunningServer) -> None:
    add_user(server, "olga")
    http = await sign_in(server, "olga")
    base = server.base_url
    try:
        async with http.get(base + "/dashboard/events/new") as resp:
            page = await resp.text()
        assert 'data-testid="event-language-input"' in page
        assert '<option value="" selected>' in page  # none by default: each attendee's own
        form = {
            "csrf": csrf_of(page),
            "title": "Talk",
            "start": "",
            "timezone": "Europe/Prague",
            "duration_minutes": "60",
            "join_window_minutes": "5",
            "access_type": "open",
            "camera_limit": "4",
        }
        async with http.post(
            base + "/dashboard/events", data={**form, "language": "cs"}, allow_redirects=False
        ) as resp:
            assert resp.status == 303, await resp.text()
            edit = base + resp.headers["Location"].split("?")[0]
        (event,) = await server.store.list_events()
        assert event.language == "cs"
        async with http.get(edit) as resp:
            assert '<option value="cs" lang="cs" selected>' in await resp.text()
        async with http.post(edit, data={**form, "language": "de"}) as resp:
            assert resp.status == 400
            assert "choose the event&#39;s language from the list" in await resp.text()
        async with http.post(edit, data={**form, "language": ""}, allow_redirects=False) as resp:
            assert resp.status == 303
        (event,) = await server.store.list_events()
        assert event.language is None
    finally:
        await http.close()


async def test_the_dashboard_shows_starts_in_the_organisers_language(
    server: RunningServer,
) -> None:
    add_user(server, "olga")
    with server.store.connect_sync() as sync:
        owner = sync.get_user_by_name("olga")
        assert owner is not None
        start = datetime(2031, 3, 30, 8, 0, tzinfo=UTC)  # 10:00 in Prague (summer time)
        sync.create_event("Talk", start, owner_id=owner.user_id, timezone="Europe/Prague")
    http = await sign_in(server, "olga")
    try:
        async with http.get(server.base_url + "/dashboard") as resp:
            assert "Sun 30 Mar 2031, 10:00" in await resp.text()  # English as it always was
        http.cookie_jar.update_cookies({"webinar_lang": "cs"})
        async with http.get(server.base_url + "/dashboard") as resp:
            page = await resp.text()
        assert resp.status == 200 and html_lang(page) == "cs"
        assert "30. 3. 2031, 10:00" in page
    finally:
        await http.close()
