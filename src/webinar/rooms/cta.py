"""Call-to-action as a pure state machine: one popup at a time, shown and closed.

The message has at most 54 characters (spaces included); the target is an
http(s) URL. A display duration makes it close by itself (``expire``); the
live room owns the timer.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from webinar.i18n import N_, _

from . import replay
from .chat import clean_text
from .interaction_errors import InteractionError, InteractionErrorCode
from .roles import Capability, may_not
from .state import Participant

CTA_MESSAGE_CHARS = 54
CTA_BUTTON_CHARS = 30
CTA_URL_CHARS = 2000
MIN_DURATION_SECONDS = 5
MAX_DURATION_SECONDS = 3600

E = InteractionErrorCode


def validate_url(url: str) -> str:
    """An absolute http(s) URL with a host, no spaces or control characters."""
    url = url.strip()
    if not url or len(url) > CTA_URL_CHARS:
        raise InteractionError(
            E.BAD_URL, _("the URL must have 1 to %(max)d characters") % {"max": CTA_URL_CHARS}
        )
    if any(ch <= " " or ch == "\x7f" or ch in "\\<>\"'`" for ch in url):
        raise InteractionError(E.BAD_URL, _("the URL contains spaces or characters not allowed"))
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InteractionError(E.BAD_URL, _("this is not a valid URL")) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InteractionError(E.BAD_URL, _("only http:// and https:// links are allowed"))
    if not host or parts.username is not None or parts.password is not None:
        raise InteractionError(E.BAD_URL, _("the URL needs a host name and no user name"))
    return url


@dataclass(frozen=True, slots=True)
class CallToAction:
    cta_id: str
    message: str
    button: str
    url: str
    duration_seconds: int | None
    shown_at: float
    shown_by: str

    @property
    def closes_at(self) -> float | None:
        if self.duration_seconds is None:
            return None
        return self.shown_at + self.duration_seconds


@dataclass(frozen=True, slots=True)
class CtaShown:
    cta: CallToAction


@dataclass(frozen=True, slots=True)
class CtaClosed:
    cta: CallToAction
    reason: str  # "closed" | "expired" | "replaced"


@dataclass(frozen=True, slots=True)
class CtaClicked:
    cta_id: str
    clicks: int  # all clicks on it so far


@dataclass(frozen=True, slots=True)
class PreparedCta:
    """A call-to-action made ready before the event; a presenter launches it (which
    shows a :class:`CallToAction` with the same texts)."""

    prepared_id: str
    message: str
    button: str
    url: str
    duration_seconds: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class CtaPreparedChanged:
    """The prepared list changed (dashboard or API): presenters get the new list."""

    prepared: tuple[PreparedCta, ...]


CtaEvent = CtaShown | CtaClosed | CtaClicked | CtaPreparedChanged

MAX_PREPARED_CTAS = 50  # per event


def prepare_cta(
    *, message: str, button: str, url: str, duration_seconds: int | None, now: float
) -> PreparedCta:
    """Check a call-to-action made in advance with the same rules as one shown live."""
    checked = build_cta(
        message=message,
        button=button,
        url=url,
        duration_seconds=duration_seconds,
        now=now,
        by="",
    )
    return PreparedCta(
        prepared_id=f"cp_{replay.token_hex(8)}",
        message=checked.message,
        button=checked.button,
        url=checked.url,
        duration_seconds=checked.duration_seconds,
        created_at=now,
    )


def build_cta(
    *,
    message: str,
    button: str,
    url: str,
    duration_seconds: int | None,
    now: float,
    by: str,
) -> CallToAction:
    try:
        message = clean_text(message, CTA_MESSAGE_CHARS)
    except InteractionError as exc:
        # TRANSLATORS: the call-to-action's message (its text) is wrong: %(problem)s says how.
        problem = _("message: %(problem)s") % {"problem": exc.message}
        raise InteractionError(exc.code, problem) from None
    if "\n" in message:
        raise InteractionError(E.INVALID, _("the message is one line"))
    try:
        button = clean_text(button, CTA_BUTTON_CHARS)
    except InteractionError as exc:
        # TRANSLATORS: the call-to-action's button text is wrong: %(problem)s says how.
        problem = _("button: %(problem)s") % {"problem": exc.message}
        raise InteractionError(exc.code, problem) from None
    if duration_seconds is not None and not (
        MIN_DURATION_SECONDS <= duration_seconds <= MAX_DURATION_SECONDS
    ):
        raise InteractionError(
            E.INVALID,
            _("the duration must be %(min)d to %(max)d seconds")
            % {"min": MIN_DURATION_SECONDS, "max": MAX_DURATION_SECONDS},
        )
    return CallToAction(
        cta_id=f"ct_{replay.token_hex(8)}",
        message=message,
        button=button.replace("\n", " "),
        url=validate_url(url),
        duration_seconds=duration_seconds,
        shown_at=now,
        shown_by=by,
    )


class CtaBoard:
    __slots__ = ("current",)

    def __init__(self) -> None:
        self.current: CallToAction | None = None

    def show(
        self,
        actor: Participant,
        *,
        message: str,
        button: str,
        url: str,
        duration_seconds: int | None,
        now: float,
    ) -> list[CtaEvent]:
        self._runner(actor, N_("show a call-to-action"))
        cta = build_cta(
            message=message,
            button=button,
            url=url,
            duration_seconds=duration_seconds,
            now=now,
            by=actor.participant_id,
        )
        events: list[CtaEvent] = []
        if self.current is not None:
            events.append(CtaClosed(self.current, "replaced"))
        self.current = cta
        events.append(CtaShown(cta))
        return events

    def close(self, actor: Participant) -> list[CtaEvent]:
        self._runner(actor, N_("close the call-to-action"))
        if self.current is None:
            return []
        cta, self.current = self.current, None
        return [CtaClosed(cta, "closed")]

    def expire(self, now: float) -> list[CtaEvent]:
        cta = self.current
        if cta is None or cta.closes_at is None or now < cta.closes_at:
            return []
        self.current = None
        return [CtaClosed(cta, "expired")]

    def restore(self, cta: CallToAction | None, now: float) -> None:
        self.current = cta
        self.expire(now)

    def _runner(self, actor: Participant, what: str) -> None:
        """Refuse unless ``actor`` runs calls-to-action; ``what`` is ``N_()``-marked."""
        if not actor.can(Capability.RUN_CTA):
            raise InteractionError(E.FORBIDDEN, may_not(actor.role, what))
