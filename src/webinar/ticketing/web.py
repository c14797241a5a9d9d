"""Ticketing's HTTP side, mounted on the app by :func:`setup_ticketing`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from aiohttp import web

from webinar.config import Config
from webinar.store import Store

from .gate import Ticketing
from .rules import BookingLimits

Render = Callable[..., web.Response]


def booking_limits(config: Config) -> BookingLimits:
    t = config.ticketing
    return BookingLimits(
        min_lead=timedelta(minutes=t.min_lead_minutes),
        max_lead=timedelta(days=t.max_lead_days),
        max_active_events=t.max_active_events,
        usable_for=timedelta(days=t.usable_days),
    )


def make_ticketing(config: Config, store: Store) -> Ticketing:
    return Ticketing(
        store,
        limits=booking_limits(config),
        code_early=timedelta(minutes=config.ticketing.code_early_minutes),
        code_late=timedelta(minutes=config.ticketing.code_late_minutes),
    )


def setup_ticketing(
    app: web.Application, config: Config, store: Store, render: Render
) -> Ticketing:
    ticketing = make_ticketing(config, store)
    return ticketing
