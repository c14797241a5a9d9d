"""Pure ticketing rules: booking limits, entry windows, price caps. No I/O, time passed in."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from webinar import i18n
from webinar.i18n import _, ngettext

#: Ticket price caps per currency, in major units (product reference, section 5).
PRICE_CAPS: dict[str, int] = {
    "USD": 1000,
    "EUR": 1000,
    "GBP": 1000,
    "PLN": 4000,
    "RUB": 100000,
    "AUD": 1500,
    "CAD": 1500,
    "CZK": 23000,
    "DKK": 6500,
    "HKD": 10000,
    "ILS": 37000,
    "MXN": 20000,
    "NOK": 8500,
    "NZD": 1500,
    "PHP": 53000,
    "SGD": 1400,
    "SEK": 9000,
    "CHF": 1000,
    "THB": 33000,
}
MINOR_UNITS = 100  # every currency above has two decimals


class BookingRule(enum.StrEnum):
    """The scheduling rule a refused booking broke (stable names for programs)."""

    START_REQUIRED = "start-required"  # paid events need a start (their codes have a window)
    MIN_LEAD = "min-lead"
    MAX_LEAD = "max-lead"
    MAX_ACTIVE = "max-active"


class BookingRefused(ValueError):
    """A booking rule refuses the event; the message says which rule and why."""

    def __init__(self, rule: BookingRule, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True, slots=True)
class BookingLimits:
    """The configurable booking rules (defaults from the product reference)."""

    min_lead: timedelta = timedelta(minutes=10)
    max_lead: timedelta = timedelta(days=30)
    max_active_events: int = 3
    usable_for: timedelta = timedelta(days=14)


def booking_end(
    starts_at: datetime | None, created_at: datetime, limits: BookingLimits
) -> datetime:
    """Until when a booking's ID and credentials work (several sessions inside)."""
    return (starts_at or created_at) + limits.usable_for


def check_booking(
    starts_at: datetime | None,
    now: datetime,
    limits: BookingLimits,
    *,
    active_events: int,
    editing: bool = False,
    previous_start: datetime | None = None,
) -> None:
    """Raise :class:`BookingRefused` when a new or moved booking breaks a rule.

    ``active_events`` counts the organiser's other bookings still usable at ``now``.
    ``editing`` an existing event (whose start was ``previous_start``): an unchanged start
    is always allowed (so a title can be fixed after the event began), and the count
    does not apply.
    """
    # An event without a start is a room open at once: only the count applies to it.
    if starts_at is not None and (not editing or starts_at != previous_start):
        if starts_at < now + limits.min_lead:
            raise BookingRefused(
                BookingRule.MIN_LEAD,
                _("the start must be at least %(span)s from now")
                % {"span": _span(limits.min_lead)},
            )
        if starts_at > now + limits.max_lead:
            raise BookingRefused(
                BookingRule.MAX_LEAD,
                _("the start must be at most %(span)s from now") % {"span": _span(limits.max_lead)},
            )
    if not editing and active_events >= limits.max_active_events:
        raise BookingRefused(
            BookingRule.MAX_ACTIVE,
            ngettext(
                "an organiser may have at most %(num)d active event at once; wait until it is over",
                "an organiser may have at most %(num)d active events at once;"
                " wait until one is over",
                limits.max_active_events,
            )
            % {"num": limits.max_active_events},
        )


def _span(delta: timedelta) -> str:
    """A span in whole days, hours or minutes ("30 days"), in the language in effect."""
    minutes = int(delta.total_seconds() // 60)
    if minutes % 1440 == 0:
        days = minutes // 1440
        return ngettext("%(num)d day", "%(num)d days", days) % {"num": days}
    if minutes % 60 == 0:
        hours = minutes // 60
        return ngettext("%(num)d hour", "%(num)d hours", hours) % {"num": hours}
    return ngettext("%(num)d minute", "%(num)d minutes", minutes) % {"num": minutes}


@dataclass(frozen=True, slots=True)
class Window:
    """A span in which a credential admits its holder: ``opens <= now < closes``."""

    opens: datetime | None
    closes: datetime | None

    def contains(self, now: datetime) -> bool:
        return (self.opens is None or now >= self.opens) and (
            self.closes is None or now < self.closes
        )


def code_window(
    starts_at: datetime | None,
    duration: timedelta,
    join_window: timedelta,
    *,
    early: timedelta,
    late: timedelta,
) -> Window:
    """When a reservation code works: from the lobby opening (join window) extended by
    ``early`` before, to the scheduled end extended by ``late``. No start: always."""
    if starts_at is None:
        return Window(None, None)
    return Window(starts_at - join_window - early, starts_at + duration + late)


def parse_price(text: str, currency: str) -> int:
    """A typed price (``"49.90"``) in minor units; ValueError when it breaks a rule."""
    code = currency.strip().upper()
    cap = PRICE_CAPS.get(code)
    if cap is None:
        raise ValueError(
            _("currency %(currency)s is not supported; use one of %(supported)s")
            % {"currency": repr(currency), "supported": ", ".join(PRICE_CAPS)}
        )
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(_("the price must be a number such as 25 or 19.90")) from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(_("a paid event needs a price above 0"))
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError(_("the price has at most two decimals"))
    if amount > cap:
        raise ValueError(
            _("the price may be at most %(cap)s (the cap for %(currency)s)")
            % {"cap": f"{cap} {code}", "currency": code}
        )
    return int(amount * MINOR_UNITS)


def check_price_minor(amount_minor: int, currency: str) -> None:
    cap = PRICE_CAPS.get(currency)
    if cap is None:
        raise ValueError(_("currency %(currency)s is not supported") % {"currency": repr(currency)})
    if not 0 < amount_minor <= cap * MINOR_UNITS:
        raise ValueError(
            _("the price must be above 0 and at most %(cap)s") % {"cap": f"{cap} {currency}"}
        )


def format_price(amount_minor: int, currency: str) -> str:
    """A price as people of the language in effect write it (``€49.90``, ``49,90 €``); a
    form's input takes :func:`webinar.i18n.format_amount` (``49.90``) instead."""
    return i18n.format_price(amount_minor, currency)
