"""Publishing a recording: the dashboard mails personal, signed, expiring links through a
real SMTP server (aiosmtpd); the public page plays it; lead capture asks for an e-mail;
expired, forged and revoked links are refused."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from aiosmtpd.controller import Controller

from tests.helpers import RunningServer
from tests.protocol.test_after_event import server, store_recording
from tests.protocol.test_dashboard import add_user, csrf_of, sign_in
from webinar.app import PUBLISHER
from webinar.config import MailConfig
from webinar.storage import branding
from webinar.ticketing.mail import Mailer

WEB_TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates"

__all__ = ["server"]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def setup(server: RunningServer, port: int) -> tuple[aiohttp.ClientSession, str, str]:
    add_user(server, "olga")
    with server.store.connect_sync() as sync:
        owner = sync.get_user_by_name("olga")
        assert owner is not None
        event = sync.create_event("Product launch", None, owner_id=owner.user_id)
        # the organiser's brand is on the recording's page too
        branding.sql_put_user_branding(
            sync.connection, owner.user_id, branding.Branding(organiser_name="Acme Academy")
        )
    recording_id = await store_recording(server, event)
    server.server.app[PUBLISHER].mailer = Mailer(
        MailConfig(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"),
        server.store.data_dir / "outbox",
        WEB_TEMPLATES / "email",
    )
    http = await sign_in(server, "olga")
    async with http.get(server.base_url + "/dashboard/recordings") as resp:
        token = csrf_of(await resp.text())
    return http, recording_id, token


async def test_links_are_mailed_and_play(server: RunningServer, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    http, recording_id, csrf = await setup(server, port)
    try:
        async with http.post(
            f"{server.base_url}/dashboard/recordings/{recording_id}/publish",
            data={"csrf": csrf, "days": "7", "recipients": "ann@example.org\nBob@Example.org"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
            assert "2 e-mails sent" in unquote(resp.headers["Location"])
        assert sorted(m["To"] for m in inbox.messages) == ["ann@example.org", "bob@example.org"]
        mail = next(m for m in inbox.messages if m["To"] == "ann@example.org")
        assert mail["Subject"] == "Recording: Product launch"
        parts = {
            part.get_content_type(): part.get_payload(decode=True).decode()  # type: ignore[union-attr]
            for part in mail.walk()
            if not part.is_multipart()
        }
        body = parts["text/plain"]
        assert "<a href=" in parts["text/html"]  # every e-mail has an HTML part too
        link = re.search(r"(http://\S+/r/\S+)", body)
        assert link, body
        async with aiohttp.ClientSession() as viewer:  # no sign-in: a recipient's browser
            async with viewer.get(link.group(1)) as resp:
                html = await resp.text()
                assert resp.status == 200 and 'data-testid="watch-video"' in html
            src = re.search(r'src="(/r/[^"]+/files/[^"]+)"', html)
            assert src
            async with viewer.get(server.base_url + src.group(1)) as resp:
                assert resp.status == 200
                assert (await resp.read())[:4] == b"\x1a\x45\xdf\xa3"
            async with viewer.get(
                server.base_url + src.group(1), headers={"Range": "bytes=0-99"}
            ) as resp:
                assert resp.status == 206 and len(await resp.read()) == 100
            # a link moved to another recipient or given a later expiry is refused
            pub, exp, who, sig = link.group(1).rsplit("/", 1)[1].split(".")
            forged = f"{pub}.{int(exp) + 86400}.{who}.{sig}"
            async with viewer.get(f"{server.base_url}/r/{forged}") as resp:
                assert resp.status == 404
        viewers = await server.server.app[PUBLISHER].viewers(
            (
                await server.server.app[PUBLISHER].open(link.group(1).rsplit("/", 1)[1])
            ).recording.event_id
        )
        assert [v[0] for v in viewers] == ["ann@example.org"]
        with pytest.raises(ValueError):
            await server.server.app[PUBLISHER].send(
                (await server.server.app[PUBLISHER].publications(recording_id))[0],
                ["not-an-address"],
                base_url="http://x",
                title="t",
            )
    finally:
        await http.close()


async def test_lead_capture_expiry_and_revocation(
    server: RunningServer, smtp: tuple[Inbox, int]
) -> None:
    _inbox, port = smtp
    http, recording_id, csrf = await setup(server, port)
    publisher = server.server.app[PUBLISHER]
    try:
        async with http.post(
            f"{server.base_url}/dashboard/recordings/{recording_id}/publish",
            data={"csrf": csrf, "days": "3", "require_email": "on"},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        async with http.get(server.base_url + "/dashboard/recordings") as resp:
            page = await resp.text()
        link = re.search(r'data-testid="publication-link"|value="(http://[^"]+/r/[^"]+)"', page)
        general = re.findall(r'value="(http://[^"]+/r/[^"]+)"', page)
        assert link and general
        url = general[0]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as viewer:
            async with viewer.get(url) as resp:
                html = await resp.text()
                assert 'data-testid="lead-form"' in html and "watch-video" not in html
                assert 'data-testid="brand-organiser">Acme Academy<' in html
            name = (await publisher.open(url.rsplit("/", 1)[1])).recording.files[0]["name"]
            async with viewer.get(f"{url}/files/{name}") as resp:
                assert resp.status == 403  # no e-mail given yet
            async with viewer.post(url, data={"email": "nope"}) as resp:
                html = await resp.text()
                assert resp.status == 400 and "lead-error" in html and "Acme Academy" in html
            async with viewer.post(url, data={"email": "Lead@Example.org"}) as resp:
                assert resp.status == 200 and 'data-testid="watch-video"' in await resp.text()
            async with viewer.get(f"{url}/files/{name}") as resp:
                assert resp.status == 200
        opened = await publisher.open(url.rsplit("/", 1)[1])
        assert [v[0] for v in await publisher.viewers(opened.recording.event_id)] == [
            "lead@example.org"
        ]
        # expired: a correctly signed link whose time is up
        old = dataclasses.replace(opened.publication, expires_at=time.time() - 1)
        expired = f"{server.base_url}/r/{await publisher.token(old)}"
        async with aiohttp.ClientSession() as viewer, viewer.get(expired) as resp:
            assert resp.status == 410 and "expired" in await resp.text()
        # revoked
        async with http.post(
            f"{server.base_url}/dashboard/publications/{opened.publication.publication_id}/revoke",
            data={"csrf": csrf},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
        async with aiohttp.ClientSession() as viewer, viewer.get(url) as resp:
            assert resp.status == 410 and "no longer published" in await resp.text()
        async with http.post(
            f"{server.base_url}/dashboard/recordings/{recording_id}/publish",
            data={"csrf": csrf, "days": "365"},
            allow_redirects=False,
        ) as resp:
            assert "error=" in resp.headers["Location"]
    finally:
        await http.close()


def test_outbox_is_the_fallback(tmp_path: Path) -> None:
    import asyncio
    from email.message import EmailMessage

    message = EmailMessage()
    message["To"] = "a@example.org"
    message["Subject"] = "link"
    message.set_content("hi")
    mailer = Mailer(MailConfig(), tmp_path / "outbox", WEB_TEMPLATES / "email")
    asyncio.run(mailer.send(message))
    (written,) = (tmp_path / "outbox").iterdir()
    assert written.suffix == ".eml" and b"a@example.org" in written.read_bytes()
