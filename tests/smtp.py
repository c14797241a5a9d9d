"""A real SMTP server (aiosmtpd) on a loopback port in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Inbox:
    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    #: How long the server takes to accept each message (a slow mail server).
    delay: float = 0.0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self._arrived.set()
        return "250 OK"

    async def wait_count(self, count: int, within: float = 30.0) -> None:
        """Until at least ``count`` messages have arrived."""
        async with asyncio.timeout(within):
            while len(self.messages) < count:
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_for(self, to: str, subject: str, within: float = 5.0) -> EmailMessage:
        """The first message to ``to`` whose subject contains ``subject``."""
        async with asyncio.timeout(within):
            while True:
                for message in self.messages:
                    if to in str(message["To"]) and subject in str(message["Subject"]):
                        return message
                self._arrived.clear()
                await self._arrived.wait()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: Any = part.get_content()
    return str(content)


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def code_in(message: EmailMessage) -> str:
    match = re.search(r"Reservation code: ([2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4})", text_of(message))
    assert match, text_of(message)
    return match.group(1)


def token_link_in(message: EmailMessage) -> str:
    match = re.search(r"(https?://\S+/e/\d{3}-\d{3}-\d{3}#token=[\w-]+)", text_of(message))
    assert match, text_of(message)
    return match.group(1)


def calendar_of(message: EmailMessage) -> bytes | None:
    """The message's ``text/calendar`` attachment (the .ics), if any."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    return None


@contextlib.asynccontextmanager
async def smtp_server(delay: float = 0.0) -> AsyncIterator[Inbox]:
    """``delay``: seconds the server takes to accept each message."""
    inbox = Inbox(delay=delay)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="localhost", loop=loop), "127.0.0.1", 0
    )
    inbox.port = server.sockets[0].getsockname()[1]
    try:
        yield inbox
    finally:
        server.close()
        await server.wait_closed()
