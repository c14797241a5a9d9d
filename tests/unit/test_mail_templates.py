"""Every e-mail template (web/templates/email/) has a subject, a plain-text and an HTML part,
and renders with the sample values of the organiser's E-mails page (webinar.ticketing.samples)
in every language, with a start and without one. A template added without sample values for
what it needs fails here (add them to samples.CATALOG)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from webinar.config import MailConfig
from webinar.storage.records import Event
from webinar.ticketing.gate import Ticketing
from webinar.ticketing.mail import Mailer
from webinar.ticketing.records import EventAccess
from webinar.ticketing.samples import CATALOG, common_values, templates_in

EMAIL_TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates" / "email"
STARTS = datetime(2026, 12, 6, 13, 0, tzinfo=UTC)


def test_every_template_has_a_subject_a_text_and_an_html_part() -> None:
    names = templates_in(EMAIL_TEMPLATES)
    assert {"invitation", "presenter", "reminder", "updated", "cancelled"} <= set(names)
    for name in names:
        for part in (".txt", ".html"):
            assert (EMAIL_TEMPLATES / f"{name}{part}").is_file(), f"{name}{part} is missing"


@pytest.mark.parametrize("language", ["en", "ru", "cs"])
@pytest.mark.parametrize("starts", [STARTS, None], ids=["scheduled", "no start"])
def test_every_template_renders_with_the_sample_values(
    tmp_path: Path, language: str, starts: datetime | None
) -> None:
    mailer = Mailer(MailConfig(), tmp_path / "outbox", EMAIL_TEMPLATES)
    event = Event(
        "123456789",
        "Q&A <launch>",
        "k" * 24,
        starts,
        STARTS,
        timezone="Europe/Prague",
        agenda="One\nTwo",
        access_type="paid",
    )
    desk = SimpleNamespace(ticketing=Ticketing(cast(Any, None)))
    common = common_values(
        cast(Any, desk), event, "https://w.example", EventAccess(event.event_id), 60
    )
    entries = {e.template: e for e in CATALOG}
    for name in templates_in(EMAIL_TEMPLATES):
        extra = entries[name].values if name in entries else {}
        values = {**common, **extra}
        message = mailer.compose(name, "jane@example.org", language=language, **values)
        subject = str(message["Subject"])
        assert subject and "\n" not in subject, name
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert text is not None and html is not None, name
        plain = str(text.get_content())
        markup = str(html.get_content())
        assert plain.strip() and not re.search(r"<(p|a|br|strong|table)\b", plain), name
        assert f'<html lang="{language}"' in markup, name
        # the title is escaped in HTML, as it is in the plain text
        if "Q&A" in plain:
            assert "Q&amp;A &lt;launch&gt;" in markup and "<launch>" not in markup, name
