"""Outgoing e-mail: invitations, registration and payment confirmations, codes.

Sent through SMTP (``aiosmtplib``) when ``mail.smtp_host`` is set; otherwise each message
is written as an ``.eml`` file to the outbox folder and logged. Templates are jinja2, a
plain-text and an HTML part each (``web/templates/email/<name>.txt`` / ``.html``), and a
subject (``<name>.subject.txt``). Each message is rendered in its recipient's language
(:func:`webinar.i18n.using`): the templates translate with ``_()`` / ``ngettext()`` and
format dates and prices with ``|datetime(zone)`` / ``|price(currency)`` for that language.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib

from webinar import i18n
from webinar.config import MailConfig

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 20.0


class MailError(Exception):
    """The message could not be handed to the SMTP server."""


@dataclass(frozen=True, slots=True)
class Sent:
    to: str
    subject: str
    via: str  # "smtp" or the .eml path


class Mailer:
    def __init__(self, config: MailConfig, outbox: Path, templates: Path) -> None:
        self.config = config
        self.outbox = outbox
        #: The folder of the templates (web/templates/email).
        self.templates = templates
        self._env = i18n.environment(templates, strict=True)

    def new_message_id(self, idstring: str | None = None) -> str:
        """A fresh, globally unique Message-ID in our sender's domain."""
        return make_msgid(idstring, domain=self.config.from_address.rpartition("@")[2])

    def compose(
        self,
        template: str,
        to: str,
        *,
        language: str | None,
        message_id: str | None = None,
        **context: Any,
    ) -> EmailMessage:
        """The message, in ``language`` (English when None or not one of ours; templates
        also get it as ``lang``); ``message_id`` when given (a retry of a message that may
        have gone out already must carry the same one, so the recipient's side can drop
        the copy)."""
        with i18n.using(language) as lang:
            values = {"lang": lang, **context}
            subject = self._env.get_template(f"{template}.subject.txt").render(values)
            text = self._env.get_template(f"{template}.txt").render(values)
            html = self._env.get_template(f"{template}.html").render(values)
        message = EmailMessage()
        message["From"] = self.config.from_address
        message["To"] = to
        message["Subject"] = " ".join(subject.split())
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = message_id or self.new_message_id()
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        message["Content-Language"] = lang  # after the parts: set_content clears Content-*
        return message

    async def send_template(
        self,
        template: str,
        to: str,
        *,
        language: str | None,
        message_id: str | None = None,
        **context: Any,
    ) -> Sent:
        """Compose (see :meth:`compose`) and send."""
        return await self.send(
            self.compose(template, to, language=language, message_id=message_id, **context)
        )

    async def send(self, message: EmailMessage) -> Sent:
        to, subject = str(message["To"]), str(message["Subject"])
        config = self.config
        if config.smtp_host is None:
            path = await asyncio.to_thread(self._write_eml, message)
            logger.info("mail to %s (%s) written to %s", to, subject, path)
            return Sent(to, subject, str(path))
        try:
            await aiosmtplib.send(
                message,
                hostname=config.smtp_host,
                port=config.smtp_port,
                username=config.smtp_username,
                password=config.smtp_password,
                use_tls=config.smtp_security == "tls",
                start_tls=config.smtp_security == "starttls",
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            logger.warning("mail to %s (%s) failed: %s", to, subject, exc)
            raise MailError(f"the e-mail to {to} could not be sent: {exc}") from exc
        logger.info("mail to %s (%s) sent via %s", to, subject, config.smtp_host)
        return Sent(to, subject, "smtp")

    def _write_eml(self, message: EmailMessage) -> Path:
        self.outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.outbox / f"{stamp}-{secrets.token_hex(4)}.eml"
        path.write_bytes(message.as_bytes())
        return path
